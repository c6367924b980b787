#!/usr/bin/env bash
# Create (or update) the Python virtualenv .venv/ at the repository root:
# torch 2.13.0 (CPU), mpi4py (compiled against the system MPI), pytest, numpy,
# and this package installed with pip (pip install . compiles libmpistore
# with CMake against the same MPI).
#   scripts/venv.sh            # then: .venv/bin/python, or . .venv/bin/activate
# VENV_PYTHON picks the interpreter (default: a python3.11 on PATH, else
# python3); it must be a version for which the torch 2.13.0 wheel exists.
# Needs scripts/deps.sh's packages (libopenmpi-dev) and python3-venv for a
# Debian interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${VENV_PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1; then py=$(command -v "$c"); break; fi
  done
fi
[ -n "$py" ] || { echo "venv.sh: no python3 on PATH" >&2; exit 1; }
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "venv.sh: .venv from $py (Python $ver)"
if [ "$ver" != "3.11" ] && [ -z "${VENV_ANY_PYTHON:-}" ]; then
  # torch==2.13.0 for another Python would be a multi-GB download of a CUDA build
  echo "venv.sh: Python $ver is not 3.11, the version of the torch 2.13.0 CPU wheel this" \
       "project installs; set VENV_PYTHON to a python3.11 (or VENV_ANY_PYTHON=1 to try anyway)" >&2
  exit 3
fi
if [ -x .venv/bin/python ] &&
   [ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$ver" ]; then
  echo "venv.sh: .venv has another Python version: making it anew"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv || {
    echo "venv.sh: '$py -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)
# torch: exactly 2.13.0 (the CPU wheel); never a range (that pulls a CUDA build)
"${pip[@]}" install -q torch==2.13.0 mpi4py pytest numpy
# the package itself: a real (non-editable) install, as a user would do it
"${pip[@]}" install -q --force-reinstall --no-deps .
.venv/bin/python -c 'import torch, mpi4py, mpistore; print("venv.sh: torch", torch.__version__,
  "mpi4py", mpi4py.__version__, "mpistore", mpistore.version(), "from", mpistore.library_path)'
