"""The Python binding's own cost per call, at 1 rank (the library's work is
the same before and after a change of the binding, so a difference here is
the binding's).

    mpirun -n 1 python bench/py_calls.py [-n ITERS] [-r REPEATS] [--compare DIR]

  store_get         mpistore.Store.get of an existing 8-byte key
  mpistore_get      mpistore.torch.MPIStore.get (Python calls it directly)
  trampoline_get    torch.distributed.PrefixStore("p", MPIStore).get: C++
                    calls MPIStore.get through torch's Store trampoline
  trampoline_set    the same for set (8 bytes)
  elastic_barrier   torch.distributed.elastic.utils.store.barrier at
                    world_size 1 (fresh prefix per call; ITERS // 10 calls)
  store_barrier     PrefixStore.barrier (torch 2.x), through the
                    trampoline into the native barrier (fresh key per call)

Each figure is the median over REPEATS timing loops of the mean time per
call (ns) of ITERS calls, in CPU time of the calling thread
(time.thread_time_ns), and the smallest loop.

--compare DIR loads a second copy of the package, DIR/mpistore (e.g. the
installed package of the commit before a change, copied there), under the
name mpistore_base into the same process, and alternates the two loop by
loop: base, this, base, this, ...  A change of the machine's speed then hits
both, and the ratio this/base is taken loop by loop (its median is printed).
Both copies call one libmpistore (the first one loaded: they have the same
SONAME), so only the bindings differ.
"""
import argparse
import datetime
import importlib.util
import os
import statistics
import sys
import time

from mpi4py import MPI


def load_as(name, pkgdir):
    """The package in pkgdir imported as `name` (its relative imports follow)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(pkgdir, "__init__.py"), submodule_search_locations=[pkgdir])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def scenario(pkg, torch_mod):
    """name -> (loop function, iterations factor) over stores of package pkg."""
    comm = MPI.COMM_SELF
    ops = {}
    s = pkg.Store(comm, timeout=60)
    s.set("k", b"v" * 8)

    def store_get(n):
        g = s.get
        for _ in range(n):
            g("k")

    ops["store_get"] = (store_get, 1)
    closers = [s.close]
    if torch_mod is not None:
        import torch.distributed as dist
        from torch.distributed.elastic.utils import store as elastic

        ms = torch_mod.MPIStore(comm, timeout=datetime.timedelta(seconds=60),
                                keys_per_rank=1 << 16, bytes_per_rank=1 << 24)
        ms.set("k", b"v" * 8)
        ms.set("p/k", b"v" * 8)
        p = dist.PrefixStore("p", ms)
        seq = [0]

        def mpistore_get(n):
            g = ms.get
            for _ in range(n):
                g("k")

        def trampoline_get(n):
            g = p.get
            for _ in range(n):
                g("k")

        def trampoline_set(n):
            f = p.set
            v = b"v" * 8
            for _ in range(n):
                f("k", v)

        def elastic_barrier(n):
            for _ in range(n):
                seq[0] += 1
                elastic.barrier(ms, world_size=1, key_prefix=f"eb/{seq[0]}",
                                barrier_timeout=60, rank=0)

        def store_barrier(n):
            for _ in range(n):
                seq[0] += 1
                p.barrier(f"sb/{seq[0]}", 1)

        ops["mpistore_get"] = (mpistore_get, 1)
        ops["trampoline_get"] = (trampoline_get, 1)
        ops["trampoline_set"] = (trampoline_set, 1)
        ops["elastic_barrier"] = (elastic_barrier, 10)
        if hasattr(dist.Store, "barrier"):
            ops["store_barrier"] = (store_barrier, 10)
        closers.insert(0, ms.close)
    return ops, closers


def per_call(fn, n):
    c0 = time.thread_time_ns()
    fn(n)
    return (time.thread_time_ns() - c0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--iters", type=int, default=100000)
    ap.add_argument("-r", "--repeats", type=int, default=7)
    ap.add_argument("--ops", help="comma-separated operations to time (default: all)")
    ap.add_argument("--compare", metavar="DIR",
                    help="a directory holding another copy of the mpistore package")
    a = ap.parse_args()
    pkgs = []
    if a.compare:
        base = load_as("mpistore_base", os.path.join(a.compare, "mpistore"))
        pkgs.append(("base", base))
    import mpistore
    pkgs.append(("this", mpistore))
    try:
        import torch.distributed  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    runs = []
    for label, pkg in pkgs:
        tm = importlib.import_module(pkg.__name__ + ".torch") if have_torch else None
        print(f"# {label}: mpistore {pkg.version()} ({pkg.call_layer}) from {pkg.__file__}")
        runs.append(scenario(pkg, tm))
    wanted = a.ops.split(",") if a.ops else list(runs[-1][0])
    times = {op: [[] for _ in pkgs] for op in wanted if op in runs[-1][0]}
    for op in times:
        n = max(a.iters // runs[-1][0][op][1], 1)
        for i, (ops, _) in enumerate(runs):  # warm-up
            ops[op][0](max(n // 10, 1))
        for _ in range(a.repeats):
            for i, (ops, _) in enumerate(runs):
                times[op][i].append(per_call(ops[op][0], n))
    for ops, closers in runs:
        for c in closers:
            c()
    for op, ts in times.items():
        n = max(a.iters // runs[-1][0][op][1], 1)
        line = f"{op:16s} iters={n:7d}"
        for (label, _), t in zip(pkgs, ts):
            line += f"  {label} median {statistics.median(t):8.1f} min {min(t):8.1f}"
        if len(pkgs) == 2:
            ratio = statistics.median(b / a_ for a_, b in zip(ts[0], ts[1]))
            line += f"  this/base {ratio:.3f}"
        print(line + " (ns/call, CPU)")


if __name__ == "__main__":
    main()
