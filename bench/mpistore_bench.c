/*
 * mpistore_bench: mpistore beside MPI itself, measured in the same run.
 *
 *   mpiexec -n N build/bench/mpistore_bench [-n iters] [-c results.csv] [-C]
 *
 * Every rank takes part in every measurement (all ranks issue the same
 * operation at the same time, on their own keys).  Each figure is the median
 * and p99 over the single-call timings of all ranks, after a warm-up, and the
 * RMA calls and round trips (flushes) each call issued on the calling rank
 * (mpistore_stats), averaged over calls and ranks:
 *
 *  - set, get (hit), add, compare_set (always succeeding), multi_get of 16
 *    keys, for 8 B, 1 KiB and 64 KiB values (add: one row, its value is a
 *    number), with keys "spread" (rank r's keys live on rank r+1, multi_get's
 *    16 keys on ranks r+1, r+2, ...) and "hot" (every key lives on rank 0);
 *  - the elastic barrier (fresh key prefix each iteration) beside
 *    MPI_Barrier, and synchronize of 64 B and 4 KiB per rank beside
 *    MPI_Allgather of the same data;
 *  - the barrier split in its two halves (barrier_nonblocking, then the get
 *    of the last_member key), to separate the arrival's RMA cost from
 *    polling.
 *
 * -C (counters-only) runs only the barrier measurements, with fewer
 * iterations: for rank counts above the core count, where timings mean little
 * but the operation counts still do.  Rows go to stdout as a table and, with
 * -c, are appended to a CSV file (header written if the file is empty):
 *   impl,op,bytes,placement,nprocs,iters,median_us,p99_us,rma_calls,round_trips,note
 * Not run by the test suite: timings on a shared machine are noisy, ratios
 * measured in one run are what count.
 */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MULTI 16
#define TIMEOUT_S 120.0

static int rank, size;
static FILE *csv;
static const char *mode_note = "";

static void die(mpistore_t *s, int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "bench rank %d: %s: %s\n", rank, what, mpistore_errmsg(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One measurement in progress: samples of this rank and counter deltas. */
typedef struct meas {
    double *t;
    int n, cap;
    mpistore_stats_t st;
} meas_t;

static void meas_start(meas_t *m, mpistore_t *s)
{
    m->n = 0;
    if (s)
        mpistore_stats(s, &m->st, true);
    else
        memset(&m->st, 0, sizeof m->st);
    MPI_Barrier(MPI_COMM_WORLD);
}

/* Gather every rank's samples on rank 0, print and write one row.  rma and rt
 * are this rank's RMA calls and round trips per call (negative: none). */
static void row(const meas_t *m, const char *impl, const char *op, long bytes,
                const char *placement, double rma, double rt)
{
    double mine[2] = {rma, rt}, sum[2] = {0, 0};
    MPI_Reduce(mine, sum, 2, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    double *all = rank == 0 ? malloc((size_t)m->n * (size_t)size * sizeof *all) : NULL;
    if (rank == 0 && !all)
        die(NULL, -MPISTORE_ENOMEM, "samples");
    MPI_Gather(m->t, m->n, MPI_DOUBLE, all, m->n, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    if (rank != 0)
        return;
    int n = m->n * size;
    qsort(all, (size_t)n, sizeof *all, cmp_d);
    double med = all[n / 2] * 1e6, p99 = all[(int)((n - 1) * 0.99)] * 1e6;
    char b[24] = "-", crma[24] = "", crt[24] = "";
    if (bytes >= 0)
        snprintf(b, sizeof b, "%ld", bytes);
    if (rma >= 0) {
        snprintf(crma, sizeof crma, "%.2f", sum[0] / size);
        snprintf(crt, sizeof crt, "%.2f", sum[1] / size);
    }
    printf("%-9s %-15s %6s %-7s %4d %6d %11.2f %11.2f %9s %9s\n", impl, op, b, placement, size,
           m->n, med, p99, crma[0] ? crma : "-", crt[0] ? crt : "-");
    fflush(stdout);
    if (csv)
        fprintf(csv, "%s,%s,%s,%s,%d,%d,%.3f,%.3f,%s,%s,%s\n", impl, op, bytes >= 0 ? b : "",
                placement, size, m->n, med, p99, crma, crt, mode_note);
    free(all);
}

/* End of a measurement: the row with the counters since meas_start. */
static void report(meas_t *m, mpistore_t *s, const char *impl, const char *op, long bytes,
                   const char *placement)
{
    double rma = -1, rt = -1;
    if (s) {
        mpistore_stats(s, &m->st, true);
        rma = (double)m->st.rma_calls / (m->n ? m->n : 1);
        rt = (double)m->st.round_trips / (m->n ? m->n : 1);
    }
    row(m, impl, op, bytes, placement, rma, rt);
}

static void sample(meas_t *m, double dt)
{
    if (m->n < m->cap)
        m->t[m->n++] = dt;
}

/* A key named <base>/<i> whose home rank is `home`. */
static void key_on(mpistore_t *s, char *out, size_t n, const char *base, int home)
{
    int h = -1;
    for (int i = 0; h != home; i++) {
        snprintf(out, n, "%s/%d", base, i);
        die(s, mpistore_key_rank(s, out, &h), "key_rank");
    }
}

enum op { OP_SET, OP_GET, OP_ADD, OP_CAS, OP_MGET, OP_COUNT };
static const char *op_names[OP_COUNT] = {"set", "get", "add", "compare_set", "multi_get16"};

typedef struct opctx {
    mpistore_t *s;
    char keys[MULTI][96];
    const char *kp[MULTI];
    char *va, *vb; /* two values of the size measured */
    size_t len;
    int flip;
} opctx_t;

static void run_op(opctx_t *o, enum op op)
{
    mpistore_t *s = o->s;
    void *v = NULL, *vals[MULTI];
    size_t n = 0, lens[MULTI];
    switch (op) {
    case OP_SET:
        die(s, mpistore_set(s, o->keys[0], o->va, o->len), "set");
        break;
    case OP_GET:
        die(s, mpistore_get(s, o->keys[0], &v, &n), "get");
        mpistore_free(v);
        break;
    case OP_ADD:
        die(s, mpistore_add(s, o->keys[0], 1, NULL), "add");
        break;
    case OP_CAS: { /* the key holds va or vb: swap it, so that every call succeeds */
        const char *exp = o->flip ? o->vb : o->va, *des = o->flip ? o->va : o->vb;
        die(s, mpistore_compare_set(s, o->keys[0], exp, o->len, des, o->len, &v, &n),
            "compare_set");
        if (n != o->len || memcmp(v, des, n) != 0)
            die(s, -MPISTORE_ESTATE, "compare_set did not succeed");
        mpistore_free(v);
        o->flip = !o->flip;
        break;
    }
    case OP_MGET:
        die(s, mpistore_multi_get(s, o->kp, MULTI, vals, lens), "multi_get");
        for (int i = 0; i < MULTI; i++)
            mpistore_free(vals[i]);
        break;
    default:
        break;
    }
}

static void bench_op(mpistore_t *s, meas_t *m, enum op op, size_t len, int hot, int iters)
{
    opctx_t o = {.s = s, .len = len};
    o.va = malloc(len + 1);
    o.vb = malloc(len + 1);
    if (!o.va || !o.vb)
        die(NULL, -MPISTORE_ENOMEM, "values");
    memset(o.va, 'a', len);
    memset(o.vb, 'b', len);
    int nk = op == OP_MGET ? MULTI : 1;
    for (int j = 0; j < nk; j++) {
        char base[64];
        snprintf(base, sizeof base, "op/%s/%zu/%s/r%d/%d", op_names[op], len, hot ? "h" : "s", rank,
                 j);
        key_on(s, o.keys[j], sizeof o.keys[j], base, hot ? 0 : (rank + 1 + j) % size);
        o.kp[j] = o.keys[j];
        if (op != OP_ADD) /* every read hits, every compare_set matches */
            die(s, mpistore_set(s, o.keys[j], o.va, len), "prepare");
    }
    int warm = iters / 10 + 1;
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < warm; i++)
        run_op(&o, op);
    meas_start(m, s);
    for (int i = 0; i < iters; i++) {
        double t0 = MPI_Wtime();
        run_op(&o, op);
        sample(m, MPI_Wtime() - t0);
    }
    report(m, s, "mpistore", op_names[op], op == OP_ADD ? -1 : (long)len, hot ? "hot" : "spread");
    free(o.va);
    free(o.vb);
}

static void bench_barriers(mpistore_t *s, meas_t *m, int iters, int timed)
{
    char prefix[64];
    int warm = iters / 10 + 1;
    if (timed) {
        for (int i = 0; i < warm; i++)
            MPI_Barrier(MPI_COMM_WORLD);
        meas_start(m, NULL);
        for (int i = 0; i < iters; i++) {
            double t0 = MPI_Wtime();
            MPI_Barrier(MPI_COMM_WORLD);
            sample(m, MPI_Wtime() - t0);
        }
        report(m, NULL, "mpi", "barrier", -1, "-");
    }
    for (int i = 0; i < warm; i++) {
        snprintf(prefix, sizeof prefix, "bw/%d", i);
        die(s, mpistore_barrier(s, rank, size, prefix, TIMEOUT_S), "barrier");
    }
    meas_start(m, s);
    for (int i = 0; i < iters; i++) {
        snprintf(prefix, sizeof prefix, "b/%d", i);
        double t0 = MPI_Wtime();
        die(s, mpistore_barrier(s, rank, size, prefix, TIMEOUT_S), "barrier");
        sample(m, MPI_Wtime() - t0);
    }
    report(m, s, "mpistore", "barrier", -1, "-");
    double whole_rma = (double)m->st.rma_calls / (m->n ? m->n : 1);
    double whole_rt = (double)m->st.round_trips / (m->n ? m->n : 1);

    /* The arrival half alone (barrier_nonblocking: the add, and the last
     * member's set) to count it apart; the wait half's counts are the whole
     * barrier's minus the arrival's (inside mpistore_barrier a waiting member
     * watches the counter, 1 round trip per look).  Each iteration still
     * waits (a get of last_member, not counted) so that the arrivals contend
     * as in a real barrier; its time is the wait row's. */
    meas_t w = {.t = malloc((size_t)iters * sizeof(double)), .cap = iters};
    mpistore_stats_t st;
    double rma_get = 0, rt_get = 0;
    if (!w.t)
        die(NULL, -MPISTORE_ENOMEM, "samples");
    meas_start(m, s);
    for (int i = 0; i < iters; i++) {
        char *last = NULL;
        void *v = NULL;
        size_t n = 0;
        snprintf(prefix, sizeof prefix, "bs/%d", i);
        double t0 = MPI_Wtime();
        die(s, mpistore_barrier_nonblocking(s, size, prefix, &last), "barrier_nonblocking");
        double t1 = MPI_Wtime();
        mpistore_stats(s, &st, false);
        uint64_t calls0 = st.rma_calls, rts0 = st.round_trips;
        die(s, mpistore_get(s, last, &v, &n), "barrier get");
        sample(&w, MPI_Wtime() - t1);
        mpistore_stats(s, &st, false);
        rma_get += (double)(st.rma_calls - calls0);
        rt_get += (double)(st.round_trips - rts0);
        mpistore_free(v);
        mpistore_free(last);
        sample(m, t1 - t0);
    }
    /* the counters since meas_start minus the wait half: the arrival half */
    mpistore_stats(s, &st, true);
    double rma_arr = ((double)st.rma_calls - rma_get) / iters;
    double rt_arr = ((double)st.round_trips - rt_get) / iters;
    row(m, "mpistore", "barrier_arrive", -1, "-", rma_arr, rt_arr);
    row(&w, "mpistore", "barrier_wait", -1, "-", whole_rma - rma_arr, whole_rt - rt_arr);
    free(w.t);
    /* c10d's Store.barrier (mpistore_store_barrier), one key reused: the
     * i-th barrier of size ranks waits for the count (i + 1) * size */
    for (int i = 0; i < warm; i++)
        die(s, mpistore_store_barrier(s, "sbw", (int64_t)(i + 1) * size, TIMEOUT_S),
            "store_barrier");
    meas_start(m, s);
    for (int i = 0; i < iters; i++) {
        double t0 = MPI_Wtime();
        die(s, mpistore_store_barrier(s, "sb", (int64_t)(i + 1) * size, TIMEOUT_S),
            "store_barrier");
        sample(m, MPI_Wtime() - t0);
    }
    report(m, s, "mpistore", "store_barrier", -1, "-");
}

static void bench_sync(mpistore_t *s, meas_t *m, size_t len, int iters)
{
    char prefix[64];
    char *data = malloc(len), *recv = malloc(len * (size_t)size);
    void **vals = calloc((size_t)size, sizeof *vals);
    size_t *lens = calloc((size_t)size, sizeof *lens);
    if (!data || !recv || !vals || !lens)
        die(NULL, -MPISTORE_ENOMEM, "sync buffers");
    memset(data, 'a' + rank % 26, len);
    int warm = iters / 10 + 1;
    for (int i = 0; i < warm; i++)
        MPI_Allgather(data, (int)len, MPI_BYTE, recv, (int)len, MPI_BYTE, MPI_COMM_WORLD);
    meas_start(m, NULL);
    for (int i = 0; i < iters; i++) {
        double t0 = MPI_Wtime();
        MPI_Allgather(data, (int)len, MPI_BYTE, recv, (int)len, MPI_BYTE, MPI_COMM_WORLD);
        sample(m, MPI_Wtime() - t0);
    }
    report(m, NULL, "mpi", "synchronize", (long)len, "-");
    for (int i = -warm; i < iters; i++) {
        if (i == 0)
            meas_start(m, s);
        snprintf(prefix, sizeof prefix, "sync%zu/%d/", len, i);
        double t0 = MPI_Wtime();
        die(s, mpistore_synchronize(s, data, len, rank, size, prefix, TIMEOUT_S, vals, lens),
            "synchronize");
        if (i >= 0)
            sample(m, MPI_Wtime() - t0);
        for (int r = 0; r < size; r++) {
            if (lens[r] != len || ((char *)vals[r])[0] != 'a' + r % 26)
                die(s, -MPISTORE_ESTATE, "synchronize returned wrong data");
            mpistore_free(vals[r]);
        }
    }
    report(m, s, "mpistore", "synchronize", (long)len, "-");
    free(data);
    free(recv);
    free(vals);
    free(lens);
}

int main(int argc, char **argv)
{
    int iters = 2000, counters_only = 0;
    const char *csv_path = NULL;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc)
            csv_path = argv[++i];
        else if (!strcmp(argv[i], "-C"))
            counters_only = 1;
        else {
            if (rank == 0)
                fprintf(stderr, "usage: %s [-n iters] [-c results.csv] [-C]\n", argv[0]);
            MPI_Finalize();
            return 2;
        }
    }
    if (iters < 10)
        iters = 10;
    if (counters_only)
        mode_note = "counters-only";
    if (rank == 0 && csv_path) {
        csv = fopen(csv_path, "a");
        if (!csv)
            die(NULL, -MPISTORE_EINVAL, "cannot open the CSV file");
        fseek(csv, 0, SEEK_END);
        if (ftell(csv) == 0)
            fprintf(csv, "impl,op,bytes,placement,nprocs,iters,median_us,p99_us,rma_calls,"
                         "round_trips,note\n");
    }

    mpistore_options_t opt;
    mpistore_options_init(&opt);
    opt.keys_per_rank = 1u << 16; /* every barrier and synchronize leaves its keys */
    opt.bytes_per_rank = counters_only ? (8u << 20) : (48u << 20);
    opt.timeout_s = TIMEOUT_S;
    mpistore_t *s = NULL;
    die(NULL, mpistore_open(&s, MPI_COMM_WORLD, &opt), "open");
    meas_t m = {.t = malloc((size_t)iters * sizeof(double)), .cap = iters};
    if (!m.t)
        die(NULL, -MPISTORE_ENOMEM, "samples");

    if (rank == 0)
        printf("%-9s %-15s %6s %-7s %4s %6s %11s %11s %9s %9s\n", "impl", "op", "bytes", "keys",
               "np", "iters", "median_us", "p99_us", "rma/call", "rt/call");
    if (counters_only) {
        bench_barriers(s, &m, iters, 0);
    } else {
        static const size_t sizes[] = {8, 1024, 65536};
        for (int hot = 0; hot < 2; hot++) {
            bench_op(s, &m, OP_ADD, 8, hot, iters);
            for (int z = 0; z < 3; z++)
                for (enum op op = OP_SET; op < OP_COUNT; op++)
                    if (op != OP_ADD)
                        bench_op(s, &m, op, sizes[z], hot,
                                 sizes[z] > 4096 || op == OP_MGET ? iters / 4 : iters);
        }
        bench_barriers(s, &m, iters / 2, 1);
        bench_sync(s, &m, 64, iters / 4);
        bench_sync(s, &m, 4096, iters / 4);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    die(s, mpistore_close(s), "close");
    if (csv)
        fclose(csv);
    free(m.t);
    MPI_Finalize();
    return 0;
}
