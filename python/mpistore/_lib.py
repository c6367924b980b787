"""Locate and load libmpistore with ctypes (no compiler needed at import time)."""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from typing import Any, Iterator, Tuple

from mpi4py import MPI  # initialises MPI and loads libmpi globally first

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates() -> Iterator[str]:
    env = os.environ.get("MPISTORE_LIBRARY")
    if env:
        yield env
        return
    # next to the package (a wheel or an install that copied the library in)
    yield from sorted(glob.glob(os.path.join(_HERE, "libmpistore.so*")))
    # the source tree's build directories (python/mpistore -> repo root)
    root = os.path.dirname(os.path.dirname(_HERE))
    # (build-asan is left out: its library needs the sanitizer runtime)
    for build in ("build", "build-test"):
        yield from sorted(glob.glob(os.path.join(root, build, "libmpistore.so*")))
    found = ctypes.util.find_library("mpistore")
    if found:
        yield found
    yield "libmpistore.so.0"
    yield "libmpistore.so"


def _load() -> Tuple[ctypes.CDLL, str]:
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL), path
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError(
        "mpistore: cannot load libmpistore; set MPISTORE_LIBRARY to the path of "
        "libmpistore.so, or install it on the library path. Tried: " + "; ".join(errors)
    )


lib, path = _load()

c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_voidp_p = ctypes.POINTER(ctypes.c_void_p)
_handle_size = MPI._sizeof(MPI.Comm)
c_comm = ctypes.c_void_p if _handle_size == ctypes.sizeof(ctypes.c_void_p) else ctypes.c_int


class Options(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("timeout_s", ctypes.c_double),
        ("max_key_len", ctypes.c_size_t),
        ("max_value_len", ctypes.c_size_t),
        ("keys_per_rank", ctypes.c_size_t),
        ("bytes_per_rank", ctypes.c_size_t),
        ("progress_thread", ctypes.c_int),  # MPISTORE_OPTIONS_VERSION 2
        ("max_keys_per_rank", ctypes.c_size_t),  # version 3 (mpistore_options_init writes it)
        ("max_bytes_per_rank", ctypes.c_size_t),
    ]


class Stats(ctypes.Structure):
    _fields_ = [
        ("rma_calls", ctypes.c_uint64),
        ("round_trips", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
    ]


def _sig(name: str, restype: Any, *argtypes: Any) -> None:
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


H = ctypes.c_void_p
I, P, S, B = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_bool
_sig("mpistore_options_init", None, ctypes.POINTER(Options))
_sig("mpistore_open", I, c_voidp_p, c_comm, ctypes.POINTER(Options))
_sig("mpistore_close", I, H)
_sig("mpistore_prefix", I, c_voidp_p, H, P)
_sig("mpistore_clone", I, c_voidp_p, H)
_sig("mpistore_set", I, H, P, P, S)
_sig("mpistore_get", I, H, P, c_voidp_p, c_size_p)
_sig("mpistore_add", I, H, P, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64))
_sig("mpistore_compare_set", I, H, P, P, S, P, S, c_voidp_p, c_size_p)
_sig("mpistore_delete_key", I, H, P, ctypes.POINTER(B))
_sig("mpistore_check", I, H, ctypes.POINTER(P), S, ctypes.POINTER(B))
_sig("mpistore_wait", I, H, ctypes.POINTER(P), S, ctypes.c_double)
_sig("mpistore_num_keys", I, H, ctypes.POINTER(ctypes.c_int64))
_sig("mpistore_multi_get", I, H, ctypes.POINTER(P), S, c_voidp_p, c_size_p)
_sig("mpistore_multi_set", I, H, ctypes.POINTER(P), c_voidp_p, c_size_p, S)
_sig("mpistore_append", I, H, P, P, S)
_sig("mpistore_queue_push", I, H, P, P, S)
_sig("mpistore_queue_pop", I, H, P, B, c_voidp_p, c_size_p)
_sig("mpistore_queue_len", I, H, P, ctypes.POINTER(ctypes.c_int64))
_sig("mpistore_list_keys", I, H, ctypes.POINTER(c_voidp_p), c_size_p)
_sig("mpistore_set_timeout", I, H, ctypes.c_double)
_sig("mpistore_timeout", ctypes.c_double, H)
_sig("mpistore_stats", I, H, ctypes.POINTER(Stats), B)
_sig("mpistore_key_rank", I, H, P, ctypes.POINTER(I))
_sig("mpistore_barrier", I, H, I, I, P, ctypes.c_double)
_sig("mpistore_free", None, ctypes.c_void_p)
_sig("mpistore_strerror", P, I)
_sig("mpistore_errname", P, I)
_sig("mpistore_errmsg", P, H)
_sig("mpistore_version", P)
