/*
 * mpistore_bench: per-operation latency of the store beside MPI_Barrier,
 * measured in the same run, plus the RMA round trips each call issued.
 *
 *   mpiexec -n 2 build/bench/mpistore_bench [iterations] [value_bytes]
 *
 * Rank 0 times set, get (hit) and add on a key whose home rank is the last
 * rank (remote when there are 2+ ranks), while the other ranks wait in a store
 * wait() (they poll with backoff, as real peers would).  Every figure is the
 * median and p99 of single-operation timings after a warm-up.  Not run by the
 * test suite: timings on a shared machine are noisy, ratios are what count.
 */
#include <mpistore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(mpistore_t *s, int rc, const char *what)
{
    if (rc) {
        fprintf(stderr, "bench: %s: %s\n", what, mpistore_errmsg(s));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

typedef struct result {
    double med, p99, rts, calls;
} result_t;

static void stats(double *t, int n, result_t *r)
{
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    r->med = t[n / 2] * 1e6;
    r->p99 = t[(int)(n * 0.99)] * 1e6;
}

int main(int argc, char **argv)
{
    int rank, size;
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    size_t vbytes = argc > 2 ? (size_t)atol(argv[2]) : 8;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mpistore_t *s = NULL;
    die(NULL, mpistore_open(&s, MPI_COMM_WORLD, NULL), "open");
    double *t = malloc((size_t)iters * sizeof *t);
    char *val = calloc(1, vbytes + 1);
    memset(val, 'v', vbytes);

    /* keys homed on the last rank */
    char kset[64], kadd[64];
    int home = -1, want = size - 1;
    for (int i = 0; home != want; i++) {
        snprintf(kset, sizeof kset, "bench/set/%d", i);
        die(s, mpistore_key_rank(s, kset, &home), "key_rank");
    }
    home = -1;
    for (int i = 0; home != want; i++) {
        snprintf(kadd, sizeof kadd, "bench/add/%d", i);
        die(s, mpistore_key_rank(s, kadd, &home), "key_rank");
    }

    result_t rb = {0}, rs = {0}, rg = {0}, ra = {0};
    /* MPI_Barrier baseline, all ranks */
    for (int i = 0; i < iters / 10; i++)
        MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < iters; i++) {
        double t0 = MPI_Wtime();
        MPI_Barrier(MPI_COMM_WORLD);
        t[i] = MPI_Wtime() - t0;
    }
    stats(t, iters, &rb);

    if (rank == 0) {
        mpistore_stats_t st;
        struct {
            const char *name;
            result_t *r;
        } ops[] = {{"set", &rs}, {"get", &rg}, {"add", &ra}};
        for (int o = 0; o < 3; o++) {
            for (int w = 0; w < iters / 10 + iters; w++) {
                int measure = w >= iters / 10;
                if (w == iters / 10)
                    mpistore_stats(s, &st, true);
                double t0 = MPI_Wtime();
                if (o == 0)
                    die(s, mpistore_set(s, kset, val, vbytes), "set");
                else if (o == 1) {
                    void *v;
                    size_t n;
                    die(s, mpistore_get(s, kset, &v, &n), "get");
                    mpistore_free(v);
                } else
                    die(s, mpistore_add(s, kadd, 1, NULL), "add");
                if (measure)
                    t[w - iters / 10] = MPI_Wtime() - t0;
            }
            mpistore_stats(s, &st, true);
            stats(t, iters, ops[o].r);
            ops[o].r->rts = (double)st.round_trips / iters;
            ops[o].r->calls = (double)st.rma_calls / iters;
        }
        die(s, mpistore_set(s, "bench/done", "1", 1), "set done");
        printf("mpistore_bench: %d ranks, %d iterations, %zu-byte values, keys homed on rank %d\n",
               size, iters, vbytes, want);
        printf("%-12s %10s %10s %12s %14s %12s\n", "operation", "median_us", "p99_us", "x_barrier",
               "round_trips", "rma_calls");
        printf("%-12s %10.3f %10.3f %12s %14s %12s\n", "MPI_Barrier", rb.med, rb.p99, "1.0", "-",
               "-");
        for (int o = 0; o < 3; o++)
            printf("%-12s %10.3f %10.3f %12.1f %14.2f %12.2f\n", ops[o].name, ops[o].r->med,
                   ops[o].r->p99, ops[o].r->med / rb.med, ops[o].r->rts, ops[o].r->calls);
    } else {
        const char *keys[] = {"bench/done"};
        die(s, mpistore_wait(s, keys, 1, 0), "wait");
    }
    MPI_Barrier(MPI_COMM_WORLD);
    die(s, mpistore_close(s), "close");
    free(t);
    free(val);
    MPI_Finalize();
    return 0;
}
