#!/usr/bin/env bash
# The cost of replicas = 1 (issue #21; docs/design.md, "Replicas"):
# bench/mpistore_bench with MPISTORE_REPLICAS=0 and =1, alternating, ROUNDS
# runs of each in the same invocation, at NP ranks (default 2) on Open MPI
# 4.1's default transport; prints, per operation, the median of the runs'
# medians, RMA calls and round trips of each, and the ratio.  Run from the
# repository root after scripts/deps.sh (bench/run.sh installs the same).
#   ROUNDS=3 NP=2 ITERS=2000 bench/replicas.sh
# Output: bench/results/replicas.md (and .csv).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ROUNDS=${ROUNDS:-3}
NP=${NP:-2}
ITERS=${ITERS:-2000}
out=bench/results
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMPISTORE_BUILD_TESTS=OFF \
    -DMPISTORE_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-bench -j "$JOBS" --target mpistore_bench >/dev/null
mkdir -p "$out"
csv=$out/replicas.csv
rm -f "$csv" "$csv".r*
for round in $(seq "$ROUNDS"); do
    for rep in 0 1; do
        echo "== round $round, replicas $rep"
        MPISTORE_REPLICAS=$rep mpiexec -n "$NP" build-bench/bench/mpistore_bench -n "$ITERS" \
            -c "$csv.r$rep" >/dev/null
    done
done
python3 - "$csv" "$NP" "$ROUNDS" "$ITERS" <<'EOF' | tee "$out/replicas.md"
import csv, statistics, sys, datetime, subprocess
path, np, rounds, iters = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = {}
for rep in ("0", "1"):
    with open(f"{path}.r{rep}") as f:
        for r in csv.DictReader(f):
            if r["impl"] != "mpistore":
                continue
            k = (r["op"], r["bytes"], r["placement"])
            rows.setdefault(k, {}).setdefault(rep, []).append(r)
with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["op", "bytes", "placement", "replicas", "median_us", "rma_calls", "round_trips"])
    for k, by in rows.items():
        for rep, rs in by.items():
            for r in rs:
                w.writerow([*k, rep, r["median_us"], r["rma_calls"], r["round_trips"]])
mpi = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout.splitlines()
print(f"date: {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; {mpi[0] if mpi else ''}; "
      f"{np} ranks; {rounds} runs of each, alternating; {iters} iterations\n")
print("| op | bytes | placement | replicas=0 median us | replicas=1 median us | ratio "
      "| RMA calls 0 -> 1 | round trips 0 -> 1 |")
print("|---|---|---|---|---|---|---|---|")
want = [("get", "8", "spread"), ("get", "65536", "spread"), ("set", "8", "spread"),
        ("set", "65536", "spread"), ("add", "", "spread"), ("compare_set", "8", "spread"),
        ("get", "8", "hot"), ("set", "8", "hot"), ("add", "", "hot"), ("barrier", "", "-"),
        ("store_barrier", "", "-"), ("synchronize", "64", "-")]
for k in want:
    by = rows.get(k)
    if not by or "0" not in by or "1" not in by:
        continue
    med = {rep: statistics.median(float(r["median_us"]) for r in by[rep]) for rep in by}
    calls = {rep: float(by[rep][0]["rma_calls"]) for rep in by}
    rts = {rep: float(by[rep][0]["round_trips"]) for rep in by}
    print(f"| {k[0]} | {k[1]} | {k[2]} | {med['0']:.2f} | {med['1']:.2f} | "
          f"{med['1'] / med['0']:.2f}x | {calls['0']:.2f} -> {calls['1']:.2f} | "
          f"{rts['0']:.2f} -> {rts['1']:.2f} |")
EOF
rm -f "$csv".r*
