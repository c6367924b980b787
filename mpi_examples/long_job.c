/* long_job: the store of a long training job that never deletes keys.
 *
 *   mpirun -np 4 ./long_job [steps] [timeout_s] [report_every] [seconds]
 *   (defaults: 100000 steps, 60 s, a progress line from rank 0 every 20000
 *   steps, no time limit; with seconds > 0 the job also stops at the first
 *   report after that many seconds: bench/soak.sh runs it for an hour)
 *
 * Every step calls the elastic barrier with a fresh prefix ("step<i>"), as
 * PyTorch's elastic helpers do (they never delete keys), and every 10th
 * step each rank also sets a 256-byte status value under a fresh key.  The
 * store is opened with DEFAULT options: it has to grow (docs/design.md,
 * "Growth").  Prints per rank the resident memory (VmRSS) after open and at
 * the end, the keys in the store and the time per step; exits non-zero on
 * any failure (the first failing rank aborts the job). */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long vmrss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static void die(mpistore_t *s, int rank, long step, const char *what, int rc)
{
    fprintf(stderr, "long_job: rank %d, step %ld: %s -> %s: %s\n", rank, step, what,
            mpistore_errname(rc), mpistore_errmsg(s));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long steps = argc > 1 ? atol(argv[1]) : 100000;
    double timeout = argc > 2 ? atof(argv[2]) : 60.0;
    long every = argc > 3 ? atol(argv[3]) : 20000; /* progress lines of rank 0 */
    double seconds = argc > 4 ? atof(argv[4]) : 0.0;
    if (every < 1)
        every = 20000;
    mpistore_t *s = NULL;
    int rc = mpistore_open(&s, MPI_COMM_WORLD, NULL);
    if (rc != MPISTORE_OK)
        die(NULL, rank, 0, "mpistore_open", rc);
    long rss0 = vmrss_kib();
    char prefix[64], key[64], status[256];
    memset(status, 's', sizeof status);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), tlast = t0;
    for (long i = 0; i < steps; i++) {
        snprintf(prefix, sizeof prefix, "step%ld", i);
        if ((rc = mpistore_barrier(s, rank, size, prefix, timeout)) != MPISTORE_OK)
            die(s, rank, i, "mpistore_barrier", rc);
        if (i % 10 == 0) {
            snprintf(key, sizeof key, "status/%ld/%d", i, rank);
            int n = snprintf(status, sizeof status, "rank %d step %ld ", rank, i);
            status[n] = 's';
            if ((rc = mpistore_set(s, key, status, sizeof status)) != MPISTORE_OK)
                die(s, rank, i, "mpistore_set (status)", rc);
        }
        if ((i + 1) % every == 0) { /* every rank: the steps are in lockstep */
            double now = MPI_Wtime();
            long rss = vmrss_kib(), rss_max = 0;
            MPI_Reduce(&rss, &rss_max, 1, MPI_LONG, MPI_MAX, 0, MPI_COMM_WORLD);
            mpistore_stats_t st;
            mpistore_stats(s, &st, true);
            int stop = seconds > 0 && now - t0 >= seconds;
            MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD);
            if (rank == 0) {
                printf("long_job: %ld steps, %.1f s, %.1f us/step over the last %ld (%.1f RMA "
                       "calls, %.1f round trips per step), VmRSS %ld KiB (largest of the ranks)\n",
                       i + 1, now - t0, (now - tlast) / (double)every * 1e6, every,
                       (double)st.rma_calls / (double)every, (double)st.round_trips / (double)every,
                       rss_max);
                fflush(stdout);
            }
            tlast = now;
            if (stop) {
                steps = i + 1;
                break;
            }
        }
    }
    double t1 = MPI_Wtime();
    int64_t keys = -1;
    if ((rc = mpistore_num_keys(s, &keys)) != MPISTORE_OK)
        die(s, rank, steps, "mpistore_num_keys", rc);
    /* everything is still there: the last step's keys and a status value */
    void *v = NULL;
    size_t len = 0;
    snprintf(key, sizeof key, "status/0/%d", (rank + 1) % size);
    if (steps > 0 && (rc = mpistore_get(s, key, &v, &len)) != MPISTORE_OK)
        die(s, rank, steps, "mpistore_get (status of step 0)", rc);
    mpistore_free(v);
    long rss1 = vmrss_kib();
    for (int r = 0; r < size; r++) {
        if (r == rank)
            printf("long_job: rank %d: %ld steps at %d ranks in %.1f s (%.1f us/step), %lld keys, "
                   "VmRSS %ld KiB after open, %ld KiB at the end\n",
                   rank, steps, size, t1 - t0, steps ? (t1 - t0) / (double)steps * 1e6 : 0.0,
                   (long long)keys, rss0, rss1);
        fflush(stdout);
        MPI_Barrier(MPI_COMM_WORLD);
    }
    if ((rc = mpistore_close(s)) != MPISTORE_OK)
        die(NULL, rank, steps, "mpistore_close", rc);
    MPI_Finalize();
    return 0;
}
