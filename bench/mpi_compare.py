"""Side-by-side table of bench/mpi_compare.sh's CSV: median microseconds of
each operation per MPI and rank count, with each MPI's own MPI_Barrier and
MPI_Allgather as the baseline of its barrier and synchronize.

    python3 bench/mpi_compare.py mpi-compare.csv mpi-compare.env > mpi-compare.md
"""
import csv
import sys

ROWS = [  # (label, impl, op, bytes, placement)
    ("get 8 B", "mpistore", "get", "8", "spread"),
    ("set 8 B", "mpistore", "set", "8", "spread"),
    ("add", "mpistore", "add", "", "spread"),
    ("compare_set 8 B", "mpistore", "compare_set", "8", "spread"),
    ("get 64 KiB", "mpistore", "get", "65536", "spread"),
    ("multi_get 16 x 8 B", "mpistore", "multi_get16", "8", "spread"),
    ("set 8 B, hot key", "mpistore", "set", "8", "hot"),
    ("elastic barrier", "mpistore", "barrier", "", "-"),
    ("MPI_Barrier", "mpi", "barrier", "", "-"),
    ("synchronize 64 B", "mpistore", "synchronize", "64", "-"),
    ("MPI_Allgather 64 B", "mpi", "synchronize", "64", "-"),
]
NAMES = {"ompi4": "Open MPI 4.1", "ompi5": "Open MPI 5.0", "mpich4": "MPICH 4.0",
         "mpich5": "MPICH 5.0"}


def main(path, env):
    med = {}
    mpis, nps = [], []
    with open(path) as f:
        for r in csv.DictReader(f):
            key = (r["mpi"], r["impl"], r["op"], r["bytes"], r["placement"], int(r["nprocs"]))
            med[key] = float(r["median_us"])
            if r["mpi"] not in mpis:
                mpis.append(r["mpi"])
            if int(r["nprocs"]) not in nps:
                nps.append(int(r["nprocs"]))
    print("# mpistore on each MPI, side by side\n")
    print("Median microseconds (`bench/mpi_compare.sh`; each MPI's own baseline in the same run).\n")
    for line in open(env):
        print("- " + line.rstrip())
    for np in sorted(nps):
        print(f"\n## {np} rank{'s' if np > 1 else ''}\n")
        print("| operation | " + " | ".join(NAMES.get(m, m) for m in mpis) + " |")
        print("|---" * (len(mpis) + 1) + "|")
        for label, impl, op, b, pl in ROWS:
            cells = []
            for m in mpis:
                v = med.get((m, impl, op, b, pl, np))
                cells.append("-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}")
            print(f"| {label} | " + " | ".join(cells) + " |")
        for what, ours, base in (("barrier / MPI_Barrier", "barrier", "barrier"),
                                 ("synchronize / MPI_Allgather", "synchronize", "synchronize")):
            cells = []
            for m in mpis:
                b = "64" if ours == "synchronize" else ""
                a, c = med.get((m, "mpistore", ours, b, "-", np)), med.get((m, "mpi", base, b, "-", np))
                cells.append((f"{a / c:.1f}x" if a / c >= 0.1 else f"{a / c:.3f}x") if a and c else "-")
            print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
