#!/usr/bin/env bash
# Soak: the long job of a training run that never deletes keys, for an hour,
# beside the stress checker on a second store.  Not part of CI.
#
#   bench/soak.sh                  # 3600 s, 4 ranks each, results in bench/results/soak/
#   SOAK_SECONDS=600 bench/soak.sh # shorter
#
# Runs side by side, each with its own store:
#  - mpi_examples/long_job at SOAK_NP ranks on a store opened with default
#    options: an elastic barrier with a fresh prefix every step and a 256-byte
#    status value under a fresh key every 10 steps, until SOAK_SECONDS have
#    passed (it prints a progress line every 20000 steps);
#  - tests/stress_model at 4 ranks (its three store variants, one of them
#    growing all the time), SOAK_SECONDS / 3 each, checking every history it
#    logs for linearizability.
# Samples the resident memory of every rank of both jobs once a minute
# (rss.csv) and writes summary.txt: steps, keys, memory per rank at the start
# and the end, and the growth per key hosted.  Exits non-zero if either job
# failed or the checker reported a violation.
set -euo pipefail
cd "$(dirname "$0")/.."
total=${SOAK_SECONDS:-3600}
np=${SOAK_NP:-4}
build=${BUILD:-build-soak}
out=${SOAK_OUT:-bench/results/soak}
. scripts/env.sh
if [ ! -x "$build/mpi_examples/long_job" ] || [ ! -x "$build/tests/stress_model" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build "$build" -j "$JOBS" --target long_job stress_model
fi
mkdir -p "$out"
echo "soak: ${total} s, long_job at ${np} ranks + stress_model at 4 ranks; results in $out"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print $2}') KiB"
  echo "mpi: $(mpiexec --version 2>&1 | head -1)"
} > "$out/env.txt"

mpiexec -n "$np" --oversubscribe "$build/mpi_examples/long_job" 1000000000 600 20000 "$total" \
  > "$out/long_job.log" 2>&1 &
job=$!
STRESS_SECONDS=$(( total / 3 )) mpiexec -n 4 --oversubscribe "$build/tests/stress_model" \
  > "$out/stress.log" 2>&1 &
stress=$!

echo "t_s,program,pid,rss_kib" > "$out/rss.csv"
t0=$SECONDS
while kill -0 "$job" 2>/dev/null || kill -0 "$stress" 2>/dev/null; do
  # Only this script's own ranks (children of its two mpiexec), so that a
  # long_job of a test suite running beside the soak is not sampled too.
  { ps --ppid "$job,$stress" -o pid=,comm=,rss= 2>/dev/null || true; } | while read -r pid prog rss; do
    echo "$(( SECONDS - t0 )),$prog,$pid,$rss" >> "$out/rss.csv"
  done
  for _ in $(seq 60); do
    kill -0 "$job" 2>/dev/null || kill -0 "$stress" 2>/dev/null || break
    sleep 1
  done
done
status=0
wait "$job" || { echo "soak: long_job FAILED"; status=1; }
wait "$stress" || { echo "soak: stress_model FAILED"; status=1; }
if grep -q "STRESS VIOLATION" "$out/stress.log"; then
  echo "soak: the stress checker reported a violation"; status=1
fi

# long_job's last lines: "rank R: S steps ... K keys, VmRSS A KiB after open, B KiB at the end"
awk -v np="$np" '
  /^long_job: rank [0-9]+:/ {
    for (i = 1; i <= NF; i++) {
      if ($i == "steps") steps = $(i - 1)
      if ($i == "keys,") keys = $(i - 1)
      if ($i == "after") a = $(i - 2)
      if ($i == "at" && $(i + 1) == "the") b = $(i - 2)
    }
    n++; grow += b - a
    sub(/:$/, "", $3)
    printf "rank %s: VmRSS %d KiB after open, %d KiB at the end (+%d KiB)\n", $3, a, b, b - a
  }
  END {
    if (n == 0) { print "no final report from long_job"; exit 1 }
    printf "%d steps, %d keys in the store (%d per rank), %.0f bytes of resident memory per key hosted\n",
           steps, keys, keys / np, (grow / n) * 1024 / (keys / np)
  }' "$out/long_job.log" > "$out/summary.txt" || status=1
grep -E "^stress|operations|checked|VIOLATION" "$out/stress.log" | head -20 >> "$out/summary.txt" || true
echo "wall time: $(( SECONDS - t0 )) s, exit status $status" >> "$out/summary.txt"
cat "$out/summary.txt"
exit "$status"
