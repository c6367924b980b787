#!/usr/bin/python3
"""Turn bench/run.sh's CSV into the Markdown report and the plot's data files.

    report.py latest.csv latest.env latest.md datadir

Every ratio is between two figures of the same run (same machine, same minutes).
"""
import csv
import os
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (r["impl"], r["op"], r["bytes"], r["placement"], int(r["nprocs"]),
                   r["note"] == "counters-only")
            rows[key] = r
    return rows


def fnum(x):
    return float(x) if x not in ("", None) else None


class Report:
    def __init__(self, rows):
        self.rows = rows
        self.nps = sorted({k[4] for k in rows if not k[5]})
        self.all_nps = sorted({k[4] for k in rows})

    def get(self, impl, op, nbytes="", placement="-", np=2, counters=False):
        return self.rows.get((impl, op, str(nbytes), placement, np, counters))

    def med(self, *a, **k):
        r = self.get(*a, **k)
        return fnum(r["median_us"]) if r else None


def us(x):
    if x is None:
        return "-"
    return "%.0f" % x if x >= 100 else ("%.1f" % x if x >= 10 else "%.2f" % x)


def cell(r):
    if not r:
        return "-"
    return "%s (%s)" % (us(fnum(r["median_us"])), us(fnum(r["p99_us"])))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rx(x):
    return "-" if x is None else ("%.0fx" % x if x >= 10 else "%.1fx" % x)


def main():
    csv_path, env_path, md_path, datadir = sys.argv[1:5]
    rep = Report(load(csv_path))
    env = open(env_path).read().strip().splitlines()
    out = []
    w = out.append
    w("# mpistore vs MPI vs TCPStore: one run of `bench/run.sh`\n")
    for line in env:
        w("- " + line)
    w("\nMedian (p99) latency in microseconds over the single-call timings of all ranks; "
      "ratios are medians of the same run. `tcpstore` runs mpistore's algorithm "
      "(PyTorch >= 2's `elastic/utils/store.py`) over TCPStore; `torch 1.13` calls Debian "
      "torch 1.13's own `barrier`/`synchronize`, an older algorithm (a synchronize with "
      "per-rank `.FIN` keys).\n")

    def group(title, op, nbytes, base_op, base_name):
        w("## %s\n" % title)
        w("| ranks | mpistore | %s | mpistore / %s | TCPStore | TCPStore / mpistore "
          "| torch 1.13 helper | torch 1.13 / mpistore |" % (base_name, base_name))
        w("|---|---|---|---|---|---|---|---|")
        for np in rep.nps:
            m = rep.get("mpistore", op, nbytes, np=np)
            b = rep.get("mpi", base_op, nbytes, np=np)
            t = rep.get("tcpstore", op, nbytes, np=np)
            t1 = rep.get("tcpstore-torch113", op, nbytes, np=np)
            mm = rep.med("mpistore", op, nbytes, np=np)
            w("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
                np, cell(m), cell(b), rx(ratio(mm, rep.med("mpi", base_op, nbytes, np=np))),
                cell(t), rx(ratio(rep.med("tcpstore", op, nbytes, np=np), mm)), cell(t1),
                rx(ratio(rep.med("tcpstore-torch113", op, nbytes, np=np), mm))))
        w("")

    group("Elastic barrier (fresh prefix each call) vs MPI_Barrier", "barrier", "", "barrier",
          "MPI_Barrier")
    group("synchronize, 64 B per rank, vs MPI_Allgather", "synchronize", 64, "synchronize",
          "MPI_Allgather")
    group("synchronize, 4 KiB per rank, vs MPI_Allgather", "synchronize", 4096, "synchronize",
          "MPI_Allgather")

    w("## RMA cost of one elastic barrier, per rank\n")
    w("Counted by `mpistore_stats` on every rank, averaged over ranks and barriers. "
      "*Arrival* is `barrier_nonblocking` (the `add` on `num_members`; the last member "
      "also sets `last_member`), measured alone; *wait* is the whole barrier minus the "
      "arrival: a waiting member watches the `num_members` counter, 1 round trip per look. "
      "Above 8 ranks: counters-only mode "
      "(ranks outnumber cores 16:1, timings meaningless).\n")
    w("| ranks | RMA calls, whole barrier | round trips, whole barrier | arrival RMA calls "
      "| arrival round trips | wait round trips | mode |")
    w("|---|---|---|---|---|---|---|")
    for np in rep.all_nps:
        if np < 2:
            continue
        for counters in (False, True):
            a = rep.get("mpistore", "barrier_arrive", np=np, counters=counters)
            if not a:
                continue
            t = rep.get("mpistore", "barrier", np=np, counters=counters)
            wt = rep.get("mpistore", "barrier_wait", np=np, counters=counters)
            w("| %d | %s | %s | %s | %s | %s | %s |" % (
                np, t["rma_calls"] if t else "-", t["round_trips"] if t else "-",
                a["rma_calls"], a["round_trips"], wt["round_trips"] if wt else "-",
                "counters only" if counters else "timed"))
    w("")

    w("## Store operations\n")
    w("Every rank issues the call at the same time on its own keys: *spread* = rank r's "
      "keys live on rank r+1 (`multi_get16`: 16 keys on ranks r+1, r+2, ...), *hot* = all "
      "keys live on rank 0. `add` has no value size. Last columns: RMA calls and round trips "
      "per call at 2 ranks.\n")
    w("| op | value B | keys | " + " | ".join("%d rank%s" % (n, "s" if n > 1 else "")
                                             for n in rep.nps) + " | RMA calls | round trips |")
    w("|---|---|---|" + "---|" * len(rep.nps) + "---|---|")
    ops = [k for k in rep.rows if k[0] == "mpistore" and k[3] in ("spread", "hot")]
    order = {"set": 0, "get": 1, "add": 2, "compare_set": 3, "multi_get16": 4}
    seen = sorted({(k[3], k[1], k[2]) for k in ops},
                  key=lambda x: (x[0] != "spread", int(x[2] or 0), order.get(x[1], 9)))
    for placement, op, nbytes in seen:
        ref = rep.get("mpistore", op, nbytes, placement, 2) or rep.get(
            "mpistore", op, nbytes, placement, rep.nps[0])
        w("| %s | %s | %s | %s | %s | %s |" % (
            op, nbytes or "-", placement,
            " | ".join(cell(rep.get("mpistore", op, nbytes, placement, n)) for n in rep.nps),
            ref["rma_calls"] if ref else "-", ref["round_trips"] if ref else "-"))
    w("")

    # ---- targets of issue #5 ----
    w("## Targets\n")

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    b2 = ratio(rep.med("mpistore", "barrier", np=2), rep.med("mpi", "barrier", np=2))
    w("- barrier at 2 ranks <= 3x MPI_Barrier: %s (%s)" % (rx(b2), verdict(b2 is not None
                                                                         and b2 <= 3)))
    for np in (2, 4, 8):
        t = ratio(rep.med("tcpstore", "barrier", np=np), rep.med("mpistore", "barrier", np=np))
        t1 = ratio(rep.med("tcpstore-torch113", "barrier", np=np),
                   rep.med("mpistore", "barrier", np=np))
        if t is not None:
            w("- barrier at %d ranks >= 100x faster than TCPStore: %s (torch 1.13 helper: %s) "
              "(%s)" % (np, rx(t), rx(t1), verdict(t >= 100)))
    s2 = ratio(rep.med("mpistore", "synchronize", 64, np=2),
               rep.med("mpi", "synchronize", 64, np=2))
    w("- synchronize 64 B at 2 ranks <= 4x MPI_Allgather: %s (%s)" % (
        rx(s2), verdict(s2 is not None and s2 <= 4)))
    for np in rep.nps:
        if np < 2:
            continue
        t = ratio(rep.med("tcpstore", "synchronize", 64, np=np),
                  rep.med("mpistore", "synchronize", 64, np=np))
        if t is not None:
            w("- synchronize 64 B at %d ranks >= 50x faster than TCPStore: %s (%s)" % (
                np, rx(t), verdict(t >= 50)))
    for op, nbytes in (("get", 8), ("add", "")):
        r = rep.get("mpistore", op, nbytes, "spread", 2)
        if r:
            rt = fnum(r["round_trips"])
            w("- `%s` at 2 ranks <= 3 round trips: %.2f (%s)" % (op, rt, verdict(rt <= 3.0)))
    arr = [(np, fnum(a["round_trips"]), fnum(a["rma_calls"])) for np in rep.all_nps
           for counters in (False, True)
           for a in [rep.get("mpistore", "barrier_arrive", np=np, counters=counters)] if a]
    if arr:
        w("- barrier <= 3 round trips per rank plus polling (the arrival; the wait is 1 "
          "round trip per look): %s (%s)" % (
              ", ".join("%.2f at %d" % (rt, np) for np, rt, _ in arr),
              verdict(all(rt <= 3 for _, rt, _ in arr))))
        # "must not grow with the process count": every count above 2 ranks
        # within 10% (noise) of the count at 2 ranks
        whole = [(np, fnum(t["rma_calls"])) for np in rep.all_nps if np >= 2
                 for counters in (False, True)
                 for t in [rep.get("mpistore", "barrier", np=np, counters=counters)] if t]

        def grows(pts):
            base = [c for np, c in pts if np == 2]
            return not base or any(c > base[0] * 1.1 for np, c in pts if np > 2)

        arr2 = [(np, c) for np, _, c in arr if np >= 2]
        w("- barrier RMA operations per rank do not grow with the rank count (each count "
          "above 2 ranks within 10%% of the count at 2): arrival %s (%s); whole barrier, "
          "polling included, %s (%s)" % (
              ", ".join("%.2f at %d" % (c, np) for np, c in arr2), verdict(not grows(arr2)),
              ", ".join("%.2f at %d" % (c, np) for np, c in whole), verdict(not grows(whole))))
    w("")

    # ---- targets of issue #22 (C side; the torch side is bench/torch_run.sh) ----
    w("## Targets of issue #22 (C, 2 ranks)\n")
    w("- barrier at 2 ranks <= 8x MPI_Barrier: %s (%s)" % (
        rx(b2), verdict(b2 is not None and b2 <= 8)))
    w("- synchronize 64 B at 2 ranks <= 10x MPI_Allgather: %s (%s)" % (
        rx(s2), verdict(s2 is not None and s2 <= 10)))
    sb2 = ratio(rep.med("mpistore", "store_barrier", np=2), rep.med("mpi", "barrier", np=2))
    w("- `Store.barrier` (`mpistore_store_barrier`, one key reused) at 2 ranks <= 3x "
      "MPI_Barrier: %s (%s)" % (rx(sb2), verdict(sb2 is not None and sb2 <= 3)))
    for np in rep.nps:
        if np < 2:
            continue
        m, t = rep.med("mpistore", "store_barrier", np=np), rep.med("mpi", "barrier", np=np)
        if m is not None and t is not None:
            w("- `Store.barrier` at %d ranks: %.2f us, %s MPI_Barrier" % (np, m, rx(ratio(m, t))))
    def floor2(op):  # an rma_floor row at 2 ranks / that program's MPI_Barrier
        return ratio(rep.med("rma_floor", op, np=2), rep.med("rma_floor", "MPI_Barrier", np=2))

    fb, fc = floor2("rma_counter_barrier"), floor2("rma_c10d_barrier")
    if fb is not None and fc is not None:
        w("- barriers of bare one-sided operations (`bench/rma_floor`, below) at 2 ranks: "
          "one counter %s MPI_Barrier, c10d's two-key shape %s (no key to find or create); "
          "the store's barriers %s and %s in the same program" % (
              rx(fb), rx(fc), rx(floor2("mpistore_store_barrier")),
              rx(floor2("mpistore_barrier"))))
    w("")

    # ---- the floor: bench/rma_floor ----
    fnps = [np for np in rep.nps if rep.get("rma_floor", "MPI_Barrier", np=np)]
    if fnps:
        w("## Barriers of bare one-sided operations (`bench/rma_floor`)\n")
        w("A window made as the store makes its own, without the store: "
          "`rma_counter_barrier` is one int64 counter (`MPI_Fetch_and_op` + flush, then "
          "looks with `sched_yield` between them), `rma_c10d_barrier` a fresh counter per "
          "barrier whose last member writes a fresh flag word that the others look at (the "
          "shape of c10d's `num_members` and `last_member`, with no key to find or create); "
          "the single operations go to the next rank, all ranks at once (uncontended). "
          "Back to back, as `mpistore_bench`; run up to the core count.  Median (p99) us, "
          "ratio to this program's MPI_Barrier.\n")
        names = ("MPI_Barrier", "rma_counter_barrier", "rma_c10d_barrier",
                 "mpistore_store_barrier", "mpistore_barrier", "fetch_and_op+flush",
                 "cas_u32+flush", "get_accumulate_1+flush", "get_accumulate_256u32+flush",
                 "get_8B+flush")
        w("| op | " + " | ".join("%d ranks" % np for np in fnps) + " |")
        w("|---|" + "---|" * len(fnps))
        for name in names:
            cells = []
            for np in fnps:
                r = rep.get("rma_floor", name, np=np)
                base = rep.med("rma_floor", "MPI_Barrier", np=np)
                cells.append("%s, %s" % (cell(r), rx(ratio(fnum(r["median_us"]), base)))
                             if r else "-")
            w("| %s | %s |" % (name, " | ".join(cells)))
        w("")
    with open(md_path, "w") as f:
        f.write("\n".join(out))

    # ---- plot data: ranks, mpistore, MPI, TCPStore, torch 1.13 ----
    os.makedirs(datadir, exist_ok=True)
    for name, op, nbytes, base in (("barrier", "barrier", "", "barrier"),
                                   ("sync64", "synchronize", 64, "synchronize")):
        with open(os.path.join(datadir, name + ".dat"), "w") as f:
            f.write("# ranks mpistore mpi tcpstore torch113\n")
            for np in rep.nps:
                vals = [rep.med("mpistore", op, nbytes, np=np), rep.med("mpi", base, nbytes, np=np),
                        rep.med("tcpstore", op, nbytes, np=np),
                        rep.med("tcpstore-torch113", op, nbytes, np=np)]
                f.write("%d %s\n" % (np, " ".join("NaN" if v is None else "%.4f" % v
                                                  for v in vals)))


if __name__ == "__main__":
    main()
