/* mpistore_shrink when the survivors' store cannot hold the keys
 * (docs/design.md, "Shrink", step 6): under
 * `mpiexec --with-ft ulfm -n N test_shrink_full [V] [rep]` (rep: replicas = 1,
 * whose survivors' store cannot grow either).
 *
 * The store allows 16 keys per rank (max_keys_per_rank).  The survivors
 * pick 20 keys that their own store of N-1 ranks will home on one rank (a
 * store opened over them tells), at most 12 homed now on each live rank,
 * and the home rank writes it.  V dies; every survivor's shrink must fail with
 * ENOSPC, the same code on every one (only the ranks that copy into the full
 * rank see the failure themselves), none waiting in a collective the others
 * left, and *out untouched.  Each survivor sends its failed checks to the
 * lowest, which prints the verdict. */
#include <mpistore.h>

#define ULFMTEST_TAG "shrinkfull"
#include "ulfmtest.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NKEYS 20

int main(int argc, char **argv)
{
    int victim = argc > 1 ? atoi(argv[1]) : 1;
    if (ulfm_start(&argc, &argv, 3, victim))
        return 2;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = 60;
    o.keys_per_rank = 16;
    o.max_keys_per_rank = 16;
    o.replicas = argc > 2 && strcmp(argv[2], "rep") == 0;
    mpistore_t *s = NULL, *t = NULL;
    if (mpistore_open(&s, MPI_COMM_WORLD, &o) != 0) {
        fprintf(stderr, "shrinkfull: rank %d FAILED: open: %s\n", rank, mpistore_errmsg(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* the survivors' numbering: a store over them places keys as theirs will */
    MPI_Comm surv = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank == victim ? MPI_UNDEFINED : 0, rank, &surv);
    /* the new rank that gets too many keys: its keys' old homes must be
     * alive (homes are ranges of the hash: the new rank 0 covers old ranks
     * 0 and 1, the last one the last two) */
    int picked = 0, per_home[64] = {0}, full = victim < size / 2 ? size - 2 : 0;
    char key[32];
    if (surv != MPI_COMM_NULL) {
        CHECK(mpistore_open(&t, surv, &o) == 0, "open over the survivors: %s",
              mpistore_errmsg(NULL));
        for (int i = 0; t && picked < NKEYS && i < 100000; i++) {
            int h = -1, nh = -1;
            snprintf(key, sizeof key, "f/%d", i);
            mpistore_key_rank(s, key, &h);
            mpistore_key_rank(t, key, &nh);
            if (nh != full || h == victim || h >= 64 || per_home[h] >= 12)
                continue;
            per_home[h]++, picked++;
            if (h == rank)
                CHECK(mpistore_set(s, key, "v", 1) == 0, "set %s: %s", key, mpistore_errmsg(s));
        }
        CHECK(picked == NKEYS, "picked %d keys", picked);
        mpistore_close(t);
        MPI_Comm_free(&surv);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == victim)
        raise(SIGKILL);
    for (int known = 0; !known;) { /* MPI reports the death */
        int *dead = NULL;
        size_t n = 0;
        known = mpistore_failed_ranks(s, &dead, &n) == 0 && n == 1 && dead[0] == victim;
        mpistore_free(dead);
        if (!known)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    mpistore_t *ns = NULL;
    size_t lost = 12345;
    int rc = mpistore_shrink(&ns, s, &lost);
    CHECK(rc == -MPISTORE_ENOSPC && ns == NULL && lost == 12345,
          "shrink returned %s (out %s, lost %zu), expected ENOSPC and nothing set: %s",
          mpistore_errname(rc), ns ? "set" : "NULL", lost, mpistore_errmsg(s));
    if (rank == (victim == 0 ? 1 : 0))
        printf("shrinkfull: shrink: %s: %s\n", mpistore_errname(rc), mpistore_errmsg(s));

    ulfm_verdict_exit(victim);
}
