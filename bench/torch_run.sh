#!/usr/bin/env bash
# PyTorch 2.13's elastic barrier, synchronize and init_process_group over
# MPIStore and over TCPStore, in the same runs, at 1, 2 and 4 ranks.
#
#   bench/torch_run.sh            (makes .venv with scripts/venv.sh if missing)
#
# Writes bench/results/torch.{csv,md,env}.  Environment: ITERS (barrier and
# synchronize samples per store and rank count, default 2000), PG_ITERS
# (init_process_group samples, default 20), NP_LIST (default "1 2 4"),
# FLOOR_ROUNDS (rounds of bench/torch_floor.py per rank count, default 5000).
# At every rank count above 1 it also runs bench/torch_floor.py: torch's own
# code for each row over no store at all, in that many processes taking turns
# on the cores, without the turns' hand-offs: a lower bound for any store (the
# "floor" column).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
[ -x .venv/bin/python ] || scripts/venv.sh
PY=$PWD/.venv/bin/python
out=bench/results
ITERS=${ITERS:-2000}
PG_ITERS=${PG_ITERS:-20}
FLOOR_ROUNDS=${FLOOR_ROUNDS:-5000}
read -r -a NPS <<<"${NP_LIST:-1 2 4}"
csv=$out/torch.csv
mkdir -p "$out"
echo "impl,op,bytes,placement,nprocs,iters,median_us,p99_us,rma_calls,round_trips,note" >"$csv"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: bench/torch_run.sh (ITERS=$ITERS PG_ITERS=$PG_ITERS NP_LIST=\"${NPS[*]}\")"
  echo "cpu: $(nproc) cores"
  echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "mpi: $(mpirun --version | head -1)"
  echo "python: $($PY -c 'import sys, torch, mpistore; print(sys.version.split()[0], "torch", torch.__version__, "mpistore", mpistore.version(), mpistore.call_layer)')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/torch.env"
cat "$out/torch.env"
for np in "${NPS[@]}"; do
  # from /tmp: the installed package, not python/
  (cd /tmp && mpirun -n "$np" --oversubscribe "$PY" "$OLDPWD/bench/torch_bench.py" \
     -n "$ITERS" --pg-iters "$PG_ITERS" -c "$OLDPWD/$csv")
  if [ "$np" -gt 1 ]; then
    "$PY" bench/torch_floor.py "$np" -n "$FLOOR_ROUNDS" -c "$csv"
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/torch.env"
"$PY" - "$csv" >"$out/torch.md" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
by = {(r["impl"], r["op"], r["nprocs"]): r for r in rows}
print("| op | ranks | MPIStore median / p99 (us) | TCPStore median / p99 (us) | TCPStore / MPIStore (median) "
      "| floor: torch's code, no store (us) | 10x TCPStore needs (us) | 10x above the floor |")
print("|---|---|---|---|---|---|---|---|")
for op in ("elastic_barrier", "store_barrier", "elastic_synchronize", "init_process_group"):
    for np_ in sorted({r["nprocs"] for r in rows}, key=int):
        m, t = by.get(("torch-mpistore", op, np_)), by.get(("torch-tcpstore", op, np_))
        if not m or not t:
            continue
        fm, ft = float(m["median_us"]), float(t["median_us"])
        fl = by.get(("torch-floor", op, np_)) if np_ != "1" else None
        floor = float(fl["median_us"]) if fl else None
        need = ft / 10
        print(f"| {op} | {np_} | {fm:.1f} / {float(m['p99_us']):.1f} | "
              f"{ft:.1f} / {float(t['p99_us']):.1f} | {ft / fm:.1f}x | "
              + (f"{floor:.1f} | {need:.1f} | {'yes' if floor < need else 'no'} |" if floor
                 else "- | - | - |"))
f = by.get(("torch-floor", "elastic_barrier", "1"))
if f:
    print()
    print(f"torch's elastic barrier over a Python dict store (no store work at all, 1 process): "
          f"median {float(f['median_us']):.1f} us, p99 {float(f['p99_us']):.1f} us")
PYEOF
cat "$out/torch.md"
