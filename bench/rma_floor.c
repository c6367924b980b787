/*
 * rma_floor: barriers built from bare one-sided operations, beside
 * MPI_Barrier and mpistore's barriers, in the same run.
 *
 *   mpiexec -n N build/bench/rma_floor [-n iters] [-c results.csv]
 *
 * Issue #22 asks for mpistore's barriers within a few times MPI_Barrier.
 * This program measures, on a window made as mpistore makes its own
 * (MPI_Win_allocate with accumulate_ordering=waw, same_size and
 * same_disp_unit, MPI_Win_lock_all with MPI_MODE_NOCHECK), the same kind of
 * barrier with nothing but the atomics: a lower bound for a barrier of
 * one-sided operations on this MPI, not for a store, which must also find
 * and create keys (mpistore's elastic barrier creates two per barrier).
 *
 *  - rma_counter_barrier: every rank adds 1 to one int64 word on rank 0
 *    (MPI_Fetch_and_op + MPI_Win_flush), then looks at the word
 *    (MPI_Fetch_and_op NO_OP + flush, sched_yield between looks, as
 *    mpistore's waits do) until it reaches the barrier's count: the shape
 *    of c10d's Store.barrier (one counter key), without the key.
 *  - rma_c10d_barrier: the shape of c10d's elastic barrier: a fresh counter
 *    word per barrier (num_members), the rank whose add returns N writes a
 *    fresh flag word (accumulate REPLACE + flush: last_member), the others
 *    look at the flag until it is set.
 *  - one operation + flush to the next rank, all ranks at once (so no two
 *    ranks aim at the same window: uncontended): MPI_Fetch_and_op (int64),
 *    MPI_Compare_and_swap (uint32), MPI_Get_accumulate NO_OP of 1 int64 and
 *    of 64 slots' worth of index words (256 uint32: one of mpistore's
 *    probe-window reads), MPI_Get of 8 bytes.
 *  - mpistore_store_barrier (one key reused) and mpistore_barrier (fresh
 *    prefix), the store's own figures.
 *
 * Every loop runs back to back, as bench/mpistore_bench does (no
 * MPI_Barrier between samples).  Each figure is the median (and p99) over
 * all ranks' single-call timings; ratios are against MPI_Barrier of the
 * same run.  Meant for ranks <= cores: when ranks outnumber cores the bare
 * operations meet Open MPI's idle yield, which the store holds off.  Not
 * run by the test suite.
 */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_S 120.0
#define FRESH 4096 /* fresh counter and flag words, used round robin */

static int rank, size;

static void check(int rc, const char *what)
{
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "rma_floor rank %d: %s failed (%d)\n", rank, what, rc);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and p99 over every rank's samples (collective); valid on rank 0. */
typedef struct {
    const char *name;
    double med, p99;
} row_t;

static void median_all(const double *t, int n, row_t *row, const char *name)
{
    double *all = rank == 0 ? malloc(sizeof(double) * (size_t)n * (size_t)size) : NULL;
    if (rank == 0 && !all)
        check(MPI_ERR_NO_MEM, "malloc");
    check(MPI_Gather(t, n, MPI_DOUBLE, all, n, MPI_DOUBLE, 0, MPI_COMM_WORLD), "gather");
    row->name = name;
    row->med = row->p99 = 0;
    if (rank == 0) {
        size_t m = (size_t)n * (size_t)size;
        qsort(all, m, sizeof(double), cmp_d);
        row->med = all[m / 2];
        row->p99 = all[m * 99 / 100];
        free(all);
    }
}

/* Window layout (int64 units): [0] the reused counter, [1, 1+FRESH) fresh
 * counters, [1+FRESH, 1+2*FRESH) fresh flags, then 256 uint32 of "index". */
#define W_COUNT 0
#define W_FRESH 1
#define W_FLAG (1 + FRESH)
#define W_INDEX (1 + 2 * FRESH)
#define W_BYTES ((size_t)(W_INDEX * 8 + 256 * 4))

static int64_t fetch_add(MPI_Win w, int target, MPI_Aint disp, int64_t v)
{
    int64_t got = 0;
    check(MPI_Fetch_and_op(&v, &got, MPI_INT64_T, target, disp, MPI_SUM, w), "fetch_and_op");
    check(MPI_Win_flush(target, w), "flush");
    return got;
}

static int64_t look(MPI_Win w, int target, MPI_Aint disp)
{
    int64_t got = 0, unused = 0;
    check(MPI_Fetch_and_op(&unused, &got, MPI_INT64_T, target, disp, MPI_NO_OP, w), "look");
    check(MPI_Win_flush(target, w), "flush");
    return got;
}

static void wait_count(MPI_Win w, MPI_Aint disp, int64_t until)
{
    while (look(w, 0, disp) < until)
        sched_yield();
}

/* What every measured operation may use. */
typedef struct {
    MPI_Win w;
    void *base;
    mpistore_t *s;
    int next;      /* the next rank */
    int64_t epoch; /* rma_counter_barrier: barriers so far */
} ctx_t;

/* One sample of an operation: call i (warm-up calls included). */
typedef void (*op_fn)(ctx_t *x, int i);

static void op_mpi_barrier(ctx_t *x, int i)
{
    (void)x, (void)i;
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

/* one counter word, reused: count up to (k+1)*size */
static void op_counter_barrier(ctx_t *x, int i)
{
    (void)i;
    x->epoch++;
    if (fetch_add(x->w, 0, W_COUNT * 8, 1) + 1 < x->epoch * size)
        wait_count(x->w, W_COUNT * 8, x->epoch * size);
}

/* c10d's shape: a fresh counter, the last member writes a fresh flag */
static void op_c10d_barrier(ctx_t *x, int i)
{
    MPI_Aint cnt = (MPI_Aint)(W_FRESH + i % FRESH) * 8, flag = (MPI_Aint)(W_FLAG + i % FRESH) * 8;
    if (fetch_add(x->w, 0, cnt, 1) + 1 == size) {
        int64_t one = 1;
        check(MPI_Accumulate(&one, 1, MPI_INT64_T, 0, flag, 1, MPI_INT64_T, MPI_REPLACE, x->w),
              "accumulate");
        check(MPI_Win_flush(0, x->w), "flush");
    } else {
        wait_count(x->w, flag, 1); /* last_member */
    }
}

/* before call i of op_c10d_barrier, untimed: reset the words before reuse */
static void pre_c10d_barrier(ctx_t *x, int i)
{
    if (i % FRESH == 0 && i > 0) {
        MPI_Barrier(MPI_COMM_WORLD);
        if (rank == 0)
            memset((char *)x->base + W_FRESH * 8, 0, 2 * FRESH * 8);
        check(MPI_Win_sync(x->w), "win_sync");
        MPI_Barrier(MPI_COMM_WORLD);
    }
}

/* single operations to the next rank, all ranks at once */
static void op_fetch_and_op(ctx_t *x, int i)
{
    (void)i;
    int64_t one = 1, got = 0;
    check(MPI_Fetch_and_op(&one, &got, MPI_INT64_T, x->next, W_COUNT * 8, MPI_SUM, x->w), "fao");
    check(MPI_Win_flush(x->next, x->w), "flush");
}

static void op_cas_u32(ctx_t *x, int i)
{
    (void)i;
    uint32_t cmp = 0, nw = 0, old = 0;
    check(MPI_Compare_and_swap(&nw, &cmp, &old, MPI_UINT32_T, x->next, W_INDEX * 8, x->w), "cas");
    check(MPI_Win_flush(x->next, x->w), "flush");
}

static void op_get_accumulate_1(ctx_t *x, int i)
{
    (void)i;
    int64_t got = 0;
    check(MPI_Get_accumulate(NULL, 0, MPI_INT64_T, &got, 1, MPI_INT64_T, x->next, W_COUNT * 8, 1,
                             MPI_INT64_T, MPI_NO_OP, x->w),
          "get_accumulate");
    check(MPI_Win_flush(x->next, x->w), "flush");
}

static void op_get_accumulate_256(ctx_t *x, int i)
{
    (void)i;
    uint32_t idx[256];
    check(MPI_Get_accumulate(NULL, 0, MPI_UINT32_T, idx, 256, MPI_UINT32_T, x->next, W_INDEX * 8,
                             256, MPI_UINT32_T, MPI_NO_OP, x->w),
          "get_accumulate");
    check(MPI_Win_flush(x->next, x->w), "flush");
}

static void op_get_8(ctx_t *x, int i)
{
    (void)i;
    int64_t got = 0;
    check(MPI_Get(&got, 1, MPI_INT64_T, x->next, W_COUNT * 8, 1, MPI_INT64_T, x->w), "get");
    check(MPI_Win_flush(x->next, x->w), "flush");
}

/* the store's own barriers */
static void op_store_barrier(ctx_t *x, int i)
{
    if (mpistore_store_barrier(x->s, "floor/sb", (int64_t)(i + 1) * size, TIMEOUT_S) != MPISTORE_OK)
        check(MPI_ERR_OTHER, mpistore_errmsg(x->s));
}

static void op_barrier(ctx_t *x, int i)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "floor/b/%d", i);
    if (mpistore_barrier(x->s, rank, size, prefix, TIMEOUT_S) != MPISTORE_OK)
        check(MPI_ERR_OTHER, mpistore_errmsg(x->s));
}

int main(int argc, char **argv)
{
    int iters = 2000;
    const char *csvpath = NULL;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n"))
            iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c"))
            csvpath = argv[i + 1];
    }
    if (iters < 10)
        iters = 10;
    double *t = calloc((size_t)iters, sizeof(double));
    if (!t)
        check(MPI_ERR_NO_MEM, "calloc");
    void *base = NULL;
    MPI_Win w;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "accumulate_ordering", "waw"); /* as src/window.c */
    MPI_Info_set(info, "same_size", "true");
    MPI_Info_set(info, "same_disp_unit", "true");
    check(MPI_Win_allocate((MPI_Aint)W_BYTES, 1, info, MPI_COMM_WORLD, &base, &w), "win_allocate");
    MPI_Info_free(&info);
    MPI_Win_set_errhandler(w, MPI_ERRORS_RETURN);
    memset(base, 0, W_BYTES);
    check(MPI_Win_lock_all(MPI_MODE_NOCHECK, w), "lock_all");
    MPI_Barrier(MPI_COMM_WORLD);

    mpistore_t *s = NULL;
    mpistore_options_t opt;
    mpistore_options_init(&opt);
    if (mpistore_open(&s, MPI_COMM_WORLD, &opt) != MPISTORE_OK)
        check(MPI_ERR_OTHER, "mpistore_open");

    static const struct {
        const char *name;
        op_fn pre, op; /* pre: untimed, before each call (may be NULL) */
    } ops[] = {
        {"MPI_Barrier", NULL, op_mpi_barrier},
        {"rma_counter_barrier", NULL, op_counter_barrier},
        {"rma_c10d_barrier", pre_c10d_barrier, op_c10d_barrier},
        {"fetch_and_op+flush", NULL, op_fetch_and_op},
        {"cas_u32+flush", NULL, op_cas_u32},
        {"get_accumulate_1+flush", NULL, op_get_accumulate_1},
        {"get_accumulate_256u32+flush", NULL, op_get_accumulate_256},
        {"get_8B+flush", NULL, op_get_8},
        {"mpistore_store_barrier", NULL, op_store_barrier},
        {"mpistore_barrier", NULL, op_barrier},
    };
    enum { NOPS = sizeof ops / sizeof ops[0] };
    row_t row[NOPS];
    ctx_t x = {.w = w, .base = base, .s = s, .next = (rank + 1) % size};
    int warm = iters / 10 + 2;
    /* every operation back to back, after a warm-up; only the samples after
     * the warm-up count */
    for (int k = 0; k < NOPS; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        for (int i = 0; i < warm + iters; i++) {
            if (ops[k].pre)
                ops[k].pre(&x, i);
            double t0 = MPI_Wtime();
            ops[k].op(&x, i);
            if (i >= warm)
                t[i - warm] = (MPI_Wtime() - t0) * 1e6;
        }
        median_all(t, iters, &row[k], ops[k].name);
    }

    if (rank == 0) {
        FILE *csv = csvpath ? fopen(csvpath, "a") : NULL;
        printf("| op (%d ranks, %d samples per rank) | median (p99) us | / MPI_Barrier |\n", size,
               iters);
        printf("|---|---|---|\n");
        for (int r = 0; r < NOPS; r++) {
            printf("| %s | %.2f (%.2f) | %.1fx |\n", row[r].name, row[r].med, row[r].p99,
                   row[r].med / row[0].med);
            if (csv)
                fprintf(csv, "rma_floor,%s,,-,%d,%d,%.3f,%.3f,,,\n", row[r].name, size, iters,
                        row[r].med, row[r].p99);
        }
        if (csv)
            fclose(csv);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (mpistore_close(s) != MPISTORE_OK)
        check(MPI_ERR_OTHER, "mpistore_close");
    check(MPI_Win_unlock_all(w), "unlock_all");
    MPI_Win_free(&w);
    free(t);
    MPI_Finalize();
    return 0;
}
