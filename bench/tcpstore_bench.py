#!/usr/bin/python3
"""The peer of mpistore_bench: elastic barrier and synchronize over PyTorch's TCPStore.

    mpiexec -n N /usr/bin/python3 bench/tcpstore_bench.py --port-file F [-n iters] [-c out.csv]

Rank and size come from the launcher (OMPI_COMM_WORLD_RANK/SIZE, or PMI_RANK/PMI_SIZE for
MPICH).  Rank 0 hosts the TCPStore server on a port the kernel picks (port 0) and writes it
to --port-file (atomically, via rename); the others wait for that file.  The caller must
remove the file before the launch.

Two algorithms are timed, each with a fresh key prefix per iteration:
  tcpstore        the algorithm mpistore's C helpers implement, i.e. PyTorch >= 2.x
                  torch/distributed/elastic/utils/store.py: barrier = add(P/num_members),
                  the last member sets P/last_member, everyone waits for it;
                  synchronize = set(P<rank>), get every P<i>, the same barrier-nonblocking
                  under P/finished, rank 0 waits for its last_member.  TCPStore 1.13 has
                  no multi_get, so the gets are one by one (as 1.13's own get_all).
  tcpstore-torch113  Debian's torch 1.13 helpers themselves
                  (torch.distributed.elastic.utils.store.barrier / synchronize): there a
                  barrier is a synchronize of each rank's number, with per-rank P<i>.FIN keys
                  that rank 0 reads one by one.
Rows have the CSV schema of mpistore_bench (impl,op,bytes,placement,nprocs,iters,median_us,
p99_us,rma_calls,round_trips,note); rank 0 collects every rank's samples through the store.
"""
import argparse
import datetime
import os
import struct
import sys
import time

import torch.distributed as dist
from torch.distributed.elastic.utils import store as store_util

TIMEOUT = datetime.timedelta(seconds=120)


def env_int(*names):
    for n in names:
        if n in os.environ:
            return int(os.environ[n])
    sys.exit("tcpstore_bench: run me under mpiexec (no %s in the environment)" % names[0])


def connect(rank, port_file):
    if rank == 0:
        store = dist.TCPStore("127.0.0.1", 0, None, True, TIMEOUT, wait_for_workers=False)
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(store.port))
        os.rename(tmp, port_file)
        return store
    deadline = time.monotonic() + 120
    while not os.path.exists(port_file):
        if time.monotonic() > deadline:
            sys.exit("tcpstore_bench: rank %d: no port file %s after 120 s" % (rank, port_file))
        time.sleep(0.01)
    with open(port_file) as f:
        port = int(f.read())
    return dist.TCPStore("127.0.0.1", port, None, False, TIMEOUT)


# ---- the algorithm of mpistore's C helpers (PyTorch >= 2.x store.py) ----
def barrier_nonblocking(store, world_size, prefix):
    last = prefix + "/last_member"
    if store.add(prefix + "/num_members", 1) == world_size:
        store.set(last, "<val_ignored>")
    return last


def barrier(store, rank, world_size, prefix):
    store.wait([barrier_nonblocking(store, world_size, prefix)])


def synchronize(store, data, rank, world_size, prefix):
    store.set(prefix + str(rank), data)
    values = [store.get(prefix + str(i)) for i in range(world_size)]
    last = barrier_nonblocking(store, world_size, prefix + "/finished")
    if rank == 0:
        store.wait([last])
    return values


class Bench:
    def __init__(self, store, rank, size, iters, csv):
        self.store, self.rank, self.size, self.iters, self.csv = store, rank, size, iters, csv
        self.seq = 0

    def align(self):
        """A barrier outside the timed loops (a plain counter and a wait)."""
        self.seq += 1
        barrier(self.store, self.rank, self.size, "align/%d" % self.seq)

    def measure(self, impl, op, nbytes, fn):
        warm = self.iters // 10 + 1
        tag = "%s/%s/%s" % (impl, op, nbytes)
        self.align()
        for i in range(warm):
            fn("%s/w%d/" % (tag, i))
        self.align()
        samples = []
        for i in range(self.iters):
            prefix = "%s/%d/" % (tag, i)
            t0 = time.perf_counter()
            fn(prefix)
            samples.append(time.perf_counter() - t0)
        self.store.set("%s/samples/%d" % (tag, self.rank), struct.pack("%dd" % len(samples), *samples))
        if self.rank != 0:
            return
        every = []
        for r in range(self.size):
            raw = self.store.get("%s/samples/%d" % (tag, r))
            every.extend(struct.unpack("%dd" % (len(raw) // 8), raw))
        every.sort()
        n = len(every)
        med, p99 = every[n // 2] * 1e6, every[int((n - 1) * 0.99)] * 1e6
        print("%-18s %-12s %6s %4d %6d %11.2f %11.2f" % (impl, op, nbytes or "-", self.size,
                                                        self.iters, med, p99), flush=True)
        if self.csv:
            with open(self.csv, "a") as f:
                f.write("%s,%s,%s,-,%d,%d,%.3f,%.3f,,,torch %s\n" % (
                    impl, op, nbytes or "", self.size, self.iters, med, p99, torch_version()))


def torch_version():
    import torch
    return torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("-n", "--iters", type=int, default=500)
    ap.add_argument("-c", "--csv")
    a = ap.parse_args()
    rank = env_int("OMPI_COMM_WORLD_RANK", "PMI_RANK")
    size = env_int("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
    store = connect(rank, a.port_file)
    b = Bench(store, rank, size, max(a.iters, 10), a.csv)
    s, r, n = store, rank, size
    d64, d4k = bytes([65 + r % 26]) * 64, bytes([65 + r % 26]) * 4096

    def check(values, nbytes):
        if len(values) != n or any(len(v) != nbytes or v[0] != 65 + i % 26
                                   for i, v in enumerate(values)):
            sys.exit("tcpstore_bench: synchronize returned wrong data on rank %d" % r)

    if rank == 0:
        print("%-18s %-12s %6s %4s %6s %11s %11s" % ("impl", "op", "bytes", "np", "iters",
                                                    "median_us", "p99_us"), flush=True)
    b.measure("tcpstore", "barrier", 0, lambda p: barrier(s, r, n, p))
    b.measure("tcpstore", "synchronize", 64, lambda p: check(synchronize(s, d64, r, n, p), 64))
    b.measure("tcpstore", "synchronize", 4096,
              lambda p: check(synchronize(s, d4k, r, n, p), 4096))
    t = 120  # barrier_timeout of PyTorch's helpers (they set the store timeout)
    b.measure("tcpstore-torch113", "barrier", 0, lambda p: store_util.barrier(s, r, n, p, t))
    b.measure("tcpstore-torch113", "synchronize", 64,
              lambda p: check(store_util.synchronize(s, d64, r, n, p, t), 64))
    b.measure("tcpstore-torch113", "synchronize", 4096,
              lambda p: check(store_util.synchronize(s, d4k, r, n, p, t), 4096))
    # rank 0 hosts the server: it leaves last
    b.align()
    if rank == 0:
        for i in range(1, n):
            s.wait(["bye/%d" % i])
    else:
        s.set("bye/%d" % rank, "1")


if __name__ == "__main__":
    main()
