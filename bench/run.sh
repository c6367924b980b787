#!/usr/bin/env bash
# mpistore vs MPI vs PyTorch's TCPStore, in one run, on this machine.
#
#   bench/run.sh [extra rank counts...]        e.g. bench/run.sh 16
#
# Builds the project (build-bench/, Release), then at 1, 2, 4 and 8 ranks (and any
# extra counts given) runs bench/mpistore_bench (every store operation, the elastic
# barrier beside MPI_Barrier, synchronize beside MPI_Allgather), from 2 ranks up
# to the core count bench/rma_floor (the same barriers built from bare one-sided
# operations, beside the store's own) and
# bench/tcpstore_bench.py (the same barrier and synchronize over TCPStore) under the
# same `mpiexec -n N`.  At 16 and 32 ranks (COUNTERS_NP) it runs the barrier in
# counters-only mode: RMA operations per rank still mean something when ranks
# outnumber cores, timings do not.  Writes bench/results/latest.{csv,md,png}.
#
# Environment: ITERS (C iterations, default 2000), PY_ITERS (TCPStore iterations,
# default 300), NP_LIST (default "1 2 4 8"), COUNTERS_NP (default "16 32"),
# COUNTERS_ITERS (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=bench/results
PY=/usr/bin/python3
ITERS=${ITERS:-2000}
PY_ITERS=${PY_ITERS:-300}
COUNTERS_NP=${COUNTERS_NP:-"16 32"}
COUNTERS_ITERS=${COUNTERS_ITERS:-100}
read -r -a NPS <<<"${NP_LIST:-1 2 4 8}"
NPS+=("$@")

# ---- what we need: a C toolchain + Open MPI (scripts/deps.sh), torch, gnuplot ----
need=()
command -v mpicc >/dev/null && command -v cmake >/dev/null || need+=(build-essential cmake
    pkg-config libopenmpi-dev openmpi-bin libcmocka-dev)
$PY -c 'import torch.distributed' 2>/dev/null || need+=(python3-torch)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if ((${#need[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench/run.sh: missing Debian packages: ${need[*]}" >&2
        echo "  install them as root: apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "bench: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
. scripts/env.sh

echo "== build (build-bench, Release)"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMPISTORE_BUILD_TESTS=OFF \
    -DMPISTORE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-bench -j "$JOBS" --target mpistore_bench rma_floor >/dev/null

mkdir -p "$out"
csv=$out/latest.csv
rm -f "$csv"
portfile=$(mktemp -u /tmp/mpistore-bench-port.XXXXXX)
datadir=$(mktemp -d /tmp/mpistore-bench-plot.XXXXXX)
trap 'rm -rf "$portfile" "$portfile.tmp" "$datadir"' EXIT
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: bench/run.sh $*"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc)"
    echo "kernel: $(uname -sr)"
    echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "mpi: $(mpirun --version 2>/dev/null | head -1)"
    # one node: the store's shared-memory window unless MPISTORE_SHM=0 (docs/design.md)
    echo "store window on one node: $([ "${MPISTORE_SHM:-1}" = 0 ] && echo "MPI's (MPISTORE_SHM=0)" || echo "shared memory")"
    echo "torch: $($PY -c 'import torch; print(torch.__version__)')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "iterations: C $ITERS (64 KiB values and multi_get: $((ITERS / 4)); barrier $((ITERS / 2)); synchronize $((ITERS / 4))), TCPStore $PY_ITERS"
} >"$out/latest.env"
cat "$out/latest.env"

for np in "${NPS[@]}"; do
    echo "== $np ranks: mpistore + MPI"
    mpiexec -n "$np" build-bench/bench/mpistore_bench -n "$ITERS" -c "$csv"
    if [ "$np" -gt 1 ] && [ "$np" -le "$(nproc)" ]; then # its bare operations yield when ranks outnumber cores
        echo "== $np ranks: barriers of bare one-sided operations (bench/rma_floor)"
        mpiexec -n "$np" build-bench/bench/rma_floor -n "$((ITERS / 2))" -c "$csv"
    fi
    echo "== $np ranks: TCPStore"
    rm -f "$portfile"
    mpiexec -n "$np" $PY bench/tcpstore_bench.py --port-file "$portfile" -n "$PY_ITERS" -c "$csv"
done
for np in $COUNTERS_NP; do
    echo "== $np ranks: barrier RMA counters only"
    mpiexec -n "$np" build-bench/bench/mpistore_bench -C -n "$COUNTERS_ITERS" -c "$csv"
done

echo "== report"
$PY bench/report.py "$csv" "$out/latest.env" "$out/latest.md" "$datadir"
gnuplot -e "datadir='$datadir'; outfile='$out/latest.png'" bench/plot.gp
echo "bench: wrote $csv $out/latest.md $out/latest.png"
