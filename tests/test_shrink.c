/* mpistore_shrink after rank deaths (docs/design.md, "Shrink"): under
 * `mpiexec --with-ft ulfm -n N test_shrink V1 [V2 after|dup|agree] [grow] [rep]`.
 *
 * Every rank writes string keys, a counter and a queue; rank V1 kills
 * itself.  The lowest survivor learns of it from a get of a key homed on
 * V1; every other survivor waits for a key homed on a live rank that nobody
 * sets (60 s timeout): it must fail with EPROCFAILED when the lowest starts
 * the shrink (the revoke), whatever order the survivors learn of the death
 * in.  Then all shrink, and each checks, key by key, against a model of
 * where each key's index slot (its home) and its value block (its writer's
 * memory) were: a key survives exactly when both were on live ranks, with
 * its value and kind (a counter stays a counter, white-box; a queue keeps
 * its order); and the survivors' count of lost keys plus the keys homed on
 * dead ranks is every key that did not survive.
 *   after:  V2 dies after the first shrink; the survivors' barrier fails
 *           and they shrink again (two deaths, a shrink between them).
 *   dup:    V2 dies inside the first shrink, in the survivors' new store's
 *           open (after MPIX_Comm_shrink); agree: after the keys were
 *           copied, before the outcome is agreed.  The shrink starts again
 *           over fewer ranks and loses only what V2 held.
 *   grow:   tiny index levels, so that grown levels sit on other ranks;
 *           checks the count identity and values, not each key's fate.
 *   rep:    replicas = 1: a key's index slot and value block also live on
 *           the next rank (mod the size); a key is lost only if both copies
 *           of one of them died, so a single death (or two that are not
 *           neighbours) loses nothing.
 * Every wait has a 60 s timeout: a call that returns EPROCFAILED returned
 * before its deadline, the order of events this test asserts.  The last
 * store's survivors add up their failed checks; the lowest prints the
 * verdict ctest looks for. */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include "ops.h" /* white-box: a counter's block, a queue's internal key */
#define ULFMTEST_TAG "shrink"
#include "ulfmtest.h"

#include <mpi.h>
#include <mpi-ext.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NSTR 12 /* string keys per writer */
#define NQ 4    /* queue elements per writer */
enum { K_STR, K_CNT, K_QUEUE };

/* What the test knows of one key, in the numbering of the current store. */
typedef struct key {
    char name[32];
    int kind, writer;
    int home, block; /* ranks holding its index slot and its value */
    int copier;      /* the survivor that copies it in a shrink */
    int present;     /* 1: present in the current store */
} key_t_;

static key_t_ *keys;
static int nkeys;
static int replicas; /* rep */
static int cur_size; /* ranks of the current store */

static int home_of(mpistore_t *s, const key_t_ *k)
{
    int r = -1;
    if (k->kind != K_QUEUE) {
        mpistore_key_rank(s, k->name, &r);
        return r;
    }
    char b[40];
    size_t n = strlen(k->name);
    memcpy(b, k->name, n);
    b[n] = 0, b[n + 1] = 'q';
    mpistore__key_t ik;
    mpistore__key_internal(s->core, b, n + 2, &ik);
    return ik.rank;
}

static void expected_value(const key_t_ *k, char *out, size_t n)
{
    if (k->kind == K_STR)
        snprintf(out, n, "v-%s", k->name);
    else
        snprintf(out, n, "%d", 3 * (k->writer + 1));
}

/* White-box: is key's slot a counter's (vlen marks it)? */
static int is_counter(mpistore_t *s, const char *key)
{
    mpistore__key_t k;
    mpistore__snap_t *sn = malloc(sizeof *sn);
    mpistore__block_t b = {0};
    int found = 0, rc = mpistore__key_of(s, key, &k);
    if (rc == 0)
        rc = mpistore__snapshot(s->core, &k, sn);
    if (rc == 0)
        rc = mpistore__lookup(s->core, &k, sn, &found, &b);
    int counter = rc >= 0 && found && b.counter;
    mpistore__block_release(&b);
    mpistore__key_release(&k);
    free(sn);
    return counter;
}

static void write_mine(mpistore_t *s)
{
    for (int i = 0; i < nkeys; i++) {
        key_t_ *k = &keys[i];
        if (k->writer != rank)
            continue;
        char v[48];
        int64_t sum = 0;
        int rc = 0;
        expected_value(k, v, sizeof v);
        if (k->kind == K_STR)
            rc = mpistore_set(s, k->name, v, strlen(v));
        for (int j = 0; k->kind == K_CNT && rc == 0 && j < 3; j++)
            rc = mpistore_add(s, k->name, rank + 1, &sum);
        for (int j = 0; k->kind == K_QUEUE && rc == 0 && j < NQ; j++) {
            snprintf(v, sizeof v, "%d:%d", rank, j);
            rc = mpistore_queue_push(s, k->name, v, strlen(v));
        }
        CHECK(rc == 0, "writing %s: %s", k->name, mpistore_errmsg(s));
    }
}

/* Look at every key in store s: present or not; if present, its value and
 * kind.  Queues are popped (and checked in order) only when pop is set.
 * Returns the number present, or -1 if a call failed with EPROCFAILED (a
 * rank of s died: the caller shrinks again). */
static int observe(mpistore_t *s, int *seen, int pop)
{
    int n = 0;
    for (int i = 0; i < nkeys; i++) {
        key_t_ *k = &keys[i];
        const char *name = k->name;
        bool there = false;
        int64_t qlen = 0;
        int rc = k->kind == K_QUEUE ? mpistore_queue_len(s, name, &qlen)
                                    : mpistore_check(s, &name, 1, &there);
        if (rc == -MPISTORE_EPROCFAILED)
            return -1;
        CHECK(rc == 0, "looking at %s: %s", name, mpistore_errmsg(s));
        if (k->kind == K_QUEUE)
            there = qlen > 0;
        seen[i] = there;
        n += there;
        if (!there)
            continue;
        if (k->kind == K_QUEUE) {
            CHECK(qlen == NQ, "queue %s has %lld elements, not %d", name, (long long)qlen, NQ);
            for (int j = 0; pop && j < NQ; j++) {
                void *v = NULL;
                size_t len = 0;
                char want[24];
                snprintf(want, sizeof want, "%d:%d", k->writer, j);
                rc = mpistore_queue_pop(s, name, false, &v, &len);
                CHECK(rc == 0 && len == strlen(want) && memcmp(v, want, len) == 0,
                      "pop %d of queue %s: %s", j, name, rc ? mpistore_errmsg(s) : "wrong value");
                if (rc == 0)
                    mpistore_free(v);
            }
            continue;
        }
        void *v = NULL;
        size_t len = 0;
        char want[48];
        expected_value(k, want, sizeof want);
        rc = mpistore_get(s, name, &v, &len);
        if (rc == -MPISTORE_EPROCFAILED)
            return -1;
        CHECK(rc == 0 && len == strlen(want) && memcmp(v, want, len) == 0, "get %s: %s (%.*s)",
              name, rc ? mpistore_errmsg(s) : "wrong value", rc ? 0 : (int)len,
              rc ? "" : (char *)v);
        if (rc == 0)
            mpistore_free(v);
        if (k->kind == K_CNT)
            CHECK(is_counter(s, name), "%s is no longer a counter", name);
    }
    return n;
}

/* A shrink that removed the ranks dead[0..ndead) of the old numbering:
 * the model's prediction, the count identity, and the new numbering. */
static void after_shrink(mpistore_t *ns, const int *dead, int ndead, size_t lost, int exact,
                         int verify)
{
    int before = 0, homed_dead = 0, survive = 0;
    int *seen = calloc((size_t)nkeys, sizeof *seen);
    for (int i = 0; i < nkeys; i++) {
        key_t_ *k = &keys[i];
        if (!k->present)
            continue;
        /* a part is gone when its rank died and, with replicas, its mirror
         * (the next rank of the store) too */
        int hm = (k->home + 1) % cur_size, bm = (k->block + 1) % cur_size;
        int hd = 0, bd = 0, hmd = 0, bmd = 0;
        for (int d = 0; d < ndead; d++) {
            hd |= k->home == dead[d], bd |= k->block == dead[d];
            hmd |= hm == dead[d], bmd |= bm == dead[d];
        }
        if (replicas) {
            k->copier = hd ? hm : k->home; /* who reads it in the shrink */
            hd = hd && hmd, bd = bd && bmd;
        } else {
            k->copier = k->home;
        }
        before++;
        homed_dead += hd;
        survive += !hd && !bd;
        k->present = !hd && !bd; /* the prediction (exact without grown levels) */
    }
    int n = verify ? observe(ns, seen, 0) : -1;
    if (n >= 0) {
        CHECK((size_t)n + lost + (size_t)homed_dead == (size_t)before,
              "%d keys present + %zu lost + %d homed on dead ranks != %d keys before", n, lost,
              homed_dead, before);
        for (int i = 0; exact && i < nkeys; i++)
            CHECK(seen[i] == keys[i].present, "key %s: %s, expected %s (home %d, value on %d)",
                  keys[i].name, seen[i] ? "present" : "absent",
                  keys[i].present ? "present" : "absent", keys[i].home, keys[i].block);
        for (int i = 0; !exact && i < nkeys; i++)
            keys[i].present = seen[i];
    }
    if (rank == 0 || (rank == 1 && dead[0] == 0))
        printf("shrink: %d dead, %d keys before, %d homed on dead ranks, %zu counted lost, %d "
               "predicted to survive, %d present\n",
               ndead, before, homed_dead, lost, survive, n);
    /* the new numbering: a value block is now on the rank that copied it
     * (its old home), renumbered */
    for (int i = 0; i < nkeys; i++) {
        key_t_ *k = &keys[i];
        int below = 0;
        for (int d = 0; d < ndead; d++)
            below += dead[d] < k->copier;
        k->block = k->copier - below;
        k->home = home_of(ns, k);
    }
    mpistore_rank(ns, NULL, &cur_size);
    free(seen);
}

/* V2 of "dup" and "agree" dies inside its mpistore_shrink, through MPI's
 * profiling interface: on entering the new store's first MPI_Comm_dup (its
 * open, after MPIX_Comm_shrink succeeded) or MPIX_Comm_agree (after the
 * keys were copied).  Not in the windows' creation: a rank dying inside
 * MPI_Win_create_dynamic makes Open MPI 5.0.11 segfault on the others
 * (docs/design.md, "Shrink"). */
enum { DIE_NOWHERE, DIE_IN_DUP, DIE_IN_AGREE };
static int die_in;
int MPI_Comm_dup(MPI_Comm comm, MPI_Comm *newcomm)
{
    if (die_in == DIE_IN_DUP)
        raise(SIGKILL);
    return PMPI_Comm_dup(comm, newcomm);
}
int MPIX_Comm_agree(MPI_Comm comm, int *flag)
{
    if (die_in == DIE_IN_AGREE)
        raise(SIGKILL);
    return PMPIX_Comm_agree(comm, flag);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the same clock on every rank of one node */
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A survivor learns of the death: EPROCFAILED from a get that waits.  With
 * grown levels (grow), first until MPI names the victim: an operation on
 * the dynamic window of a rank that died and that MPI does not report yet
 * waits inside Open MPI 5 for ever (design.md, "Rank failures"). */
static void learn(mpistore_t *s, int victim, int lowest, int grow, double *detect)
{
    for (int known = 0; grow && !known;) {
        int *dead = NULL;
        size_t n = 0;
        CHECK(mpistore_failed_ranks(s, &dead, &n) == 0, "failed_ranks: %s", mpistore_errmsg(s));
        known = n == 1 && dead[0] == victim;
        mpistore_free(dead);
        if (!known)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    char key[48];
    int want = rank == lowest ? victim : rank; /* the others: a key on a live rank */
    for (int i = 0;; i++) {
        int r = -1;
        snprintf(key, sizeof key, "never-%d-%d", rank, i);
        if (mpistore_key_rank(s, key, &r) == 0 && r == want)
            break;
    }
    void *v = NULL;
    size_t len = 0;
    double t0 = now();
    int rc = mpistore_get(s, key, &v, &len);
    *detect = now();
    CHECK(rc == -MPISTORE_EPROCFAILED, "get of %s (home %d) returned %s, expected EPROCFAILED: %s",
          key, want, mpistore_errname(rc), mpistore_errmsg(s));
    if (rank != lowest && !grow)
        CHECK(strstr(mpistore_errmsg(s), "mpistore_shrink") != NULL,
              "a survivor's wait should fail by the revoke: %s", mpistore_errmsg(s));
    /* the revoke may reach a rank before MPI's failure detector: the
     * error still names the dead (a CI run's ProcessFailedError had
     * .ranks []) */
    CHECK(strstr(mpistore_errmsg(s), " died (MPI reports ") != NULL,
          "the error should name the dead rank: %s", mpistore_errmsg(s));
    int *dead = NULL, named = 0;
    size_t n = 0;
    CHECK(mpistore_failed_ranks(s, &dead, &n) == 0, "failed_ranks: %s", mpistore_errmsg(s));
    for (size_t i = 0; i < n; i++)
        named |= dead[i] == victim;
    mpistore_free(dead);
    CHECK(named, "failed_ranks after EPROCFAILED: %zu ranks, without the victim %d", n, victim);
    (void)t0;
}

/* Shrink s into *out (timed), or end this rank: nothing to check without
 * a store. */
static void shrink_or_exit(mpistore_t *s, mpistore_t **out, size_t *lost, double *took)
{
    double t0 = now();
    int rc = mpistore_shrink(out, s, lost);
    *took = now() - t0;
    CHECK(rc == 0, "shrink: %s", mpistore_errmsg(s));
    if (rc != 0) {
        fflush(NULL);
        _exit(1);
    }
}

int main(int argc, char **argv)
{
    int v1 = argc > 1 ? atoi(argv[1]) : 2, v2 = -1, during = 0, grow = 0;
    for (int a = 2; a < argc; a++) {
        if (strcmp(argv[a], "grow") == 0)
            grow = 1;
        else if (strcmp(argv[a], "rep") == 0)
            replicas = 1;
        else if (strcmp(argv[a], "dup") == 0)
            during = DIE_IN_DUP;
        else if (strcmp(argv[a], "agree") == 0)
            during = DIE_IN_AGREE;
        else if (strcmp(argv[a], "after") != 0)
            v2 = atoi(argv[a]);
    }
    int need = 3 + (v2 >= 0); /* ranks: V2 is one of them too */
    if (v2 + 1 > need)
        need = v2 + 1;
    if (ulfm_start(&argc, &argv, need, v2 == v1 ? -1 : v1))
        return 2;
    mpistore_t *s = ulfm_open(grow ? 4 : 0, replicas);
    cur_size = size;
    nkeys = size * (NSTR + 2);
    keys = calloc((size_t)nkeys, sizeof *keys);
    for (int w = 0, i = 0; w < size; w++) {
        for (int j = 0; j < NSTR; j++, i++)
            snprintf(keys[i].name, sizeof keys[i].name, "s/%d/%d", w, j), keys[i].kind = K_STR;
        snprintf(keys[i].name, sizeof keys[i].name, "c/%d", w), keys[i++].kind = K_CNT;
        snprintf(keys[i].name, sizeof keys[i].name, "q/%d", w), keys[i++].kind = K_QUEUE;
        for (int j = i - NSTR - 2; j < i; j++) {
            keys[j].writer = keys[j].block = w;
            keys[j].present = 1;
        }
    }
    for (int i = 0; i < nkeys; i++)
        keys[i].home = home_of(s, &keys[i]);
    write_mine(s);
    int lowest = v1 == 0 ? 1 : 0;
    double detect = 0, killed = 0;
    MPI_Request req = MPI_REQUEST_NULL; /* the victim's time of death, posted before it */
    if (rank == lowest)
        MPI_Irecv(&killed, 1, MPI_DOUBLE, v1, 9, MPI_COMM_WORLD, &req);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == v1) {
        double t = now();
        MPI_Send(&t, 1, MPI_DOUBLE, lowest, 9, MPI_COMM_WORLD);
        raise(SIGKILL);
    }
    learn(s, v1, lowest, grow, &detect);
    if (rank == lowest && MPI_Wait(&req, MPI_STATUS_IGNORE) == MPI_SUCCESS) {
        printf("shrink: %d ranks, victim %d: EPROCFAILED %.3f s after the kill\n", size, v1,
               detect - killed);
    }
    if (during && rank == v2)
        die_in = during;

    /* the first shrink */
    mpistore_t *ns = NULL;
    size_t lost = 99999;
    double took = 0;
    shrink_or_exit(s, &ns, &lost, &took);
    if (rank == v2 && during)
        raise(SIGKILL); /* (it cannot outlive the shrink) */
    int nr = -1, nsz = -1;
    mpistore_rank(ns, &nr, &nsz);
    int dead1[2] = {v1, v2}, ndead1 = nsz == size - 2 ? 2 : 1;
    if (dead1[0] > dead1[1] && ndead1 == 2)
        dead1[0] = v2, dead1[1] = v1;
    int below = 0;
    for (int d = 0; d < ndead1; d++)
        below += dead1[d] < rank;
    CHECK(nr == rank - below && nsz == size - 1 - (v2 >= 0 && during),
          "new store: rank %d of %d, expected %d of %d", nr, nsz, rank - below,
          size - 1 - (v2 >= 0 && during));
    if (nr == 0)
        printf("shrink: %d -> %d ranks in %.3f s (rank 0 of the new store)\n", size, nsz, took);
    /* the old handle: only close is left */
    void *v = NULL;
    size_t len = 0;
    int rc = mpistore_get(s, "s/0/0", &v, &len);
    CHECK(rc == -MPISTORE_ESTATE, "get on the shrunk handle returned %s", mpistore_errname(rc));
    mpistore_t *again = NULL;
    rc = mpistore_shrink(&again, s, &lost);
    CHECK(rc == -MPISTORE_ESTATE && again == NULL, "shrink of a shrunk handle returned %s",
          mpistore_errname(rc));
    rc = mpistore_prefix(&again, s, "p");
    CHECK(rc == -MPISTORE_ESTATE && again == NULL, "prefix of a shrunk handle returned %s",
          mpistore_errname(rc));
    rc = mpistore_clone(&again, s);
    CHECK(rc == -MPISTORE_ESTATE && again == NULL, "clone of a shrunk handle returned %s",
          mpistore_errname(rc));
    CHECK(mpistore_rank(s, &nr, NULL) == -MPISTORE_ESTATE, "rank of a shrunk handle");
    /* the ranks whose V2 outlives the first store: V2 checks like a survivor,
     * then dies; the others find out and shrink again */
    int second = v2 >= 0 && ndead1 == 1;
    after_shrink(ns, dead1, ndead1, lost, !grow, 1);
    if (second) {
        int v2n = v2 - (v1 < v2);
        /* after: V2 dies once every survivor has looked (point-to-point:
         * a barrier of the store would leave keys that V2 wrote) */
        if (rank != v2) {
            int done = 1;
            CHECK(MPI_Send(&done, 1, MPI_INT, v2, 11, MPI_COMM_WORLD) == MPI_SUCCESS,
                  "send to rank %d", v2);
        }
        for (int r = 0; rank == v2 && r < size; r++) {
            int done = 0;
            if (r != v1 && r != v2)
                MPI_Recv(&done, 1, MPI_INT, r, 11, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        if (rank == v2)
            raise(SIGKILL);
        rc = mpistore_barrier(ns, nr, nsz, "b/after", 60);
        CHECK(rc == -MPISTORE_EPROCFAILED, "barrier after the second death returned %s: %s",
              mpistore_errname(rc), mpistore_errmsg(ns));
        mpistore_t *n2 = NULL;
        size_t lost2 = 99999;
        shrink_or_exit(ns, &n2, &lost2, &took);
        int r2 = -1, sz2 = -1;
        mpistore_rank(n2, &r2, &sz2);
        CHECK(r2 == nr - (v2n < nr) && sz2 == nsz - 1, "second store: rank %d of %d", r2, sz2);
        if (r2 == 0)
            printf("shrink: %d -> %d ranks in %.3f s (second)\n", nsz, sz2, took);
        after_shrink(n2, &v2n, 1, lost2, !grow, 1);
        rc = mpistore_close(ns);
        CHECK(rc == 0 || rc == -MPISTORE_EPROCFAILED, "close of the first new store: %s",
              mpistore_errname(rc));
        ns = n2;
        mpistore_rank(ns, &nr, &nsz);
    }
    /* the queues in order, then everyone's store works: a barrier */
    int *seen = calloc((size_t)nkeys, sizeof *seen);
    rc = mpistore_barrier(ns, nr, nsz, "b/looked", 60); /* every rank looked: now pop */
    CHECK(rc == 0, "barrier on the new store: %s", mpistore_errmsg(ns));
    if (nr == 0) /* one rank pops */
        CHECK(observe(ns, seen, 1) >= 0, "the last look failed: %s", mpistore_errmsg(ns));
    free(seen);
    rc = mpistore_barrier(ns, nr, nsz, "b/end", 60);
    CHECK(rc == 0, "barrier on the new store: %s", mpistore_errmsg(ns));
    int64_t total = 0, n = 0;
    CHECK(mpistore_add(ns, "verdict/failures", failures, &total) == 0, "verdict: %s",
          mpistore_errmsg(ns));
    CHECK(mpistore_add(ns, "verdict/ranks", 1, &n) == 0, "verdict: %s", mpistore_errmsg(ns));
    rc = mpistore_barrier(ns, nr, nsz, "b/verdict", 60);
    CHECK(rc == 0, "verdict barrier: %s", mpistore_errmsg(ns));
    void *fv = NULL;
    size_t fl = 0;
    if (nr == 0 && mpistore_get(ns, "verdict/failures", &fv, &fl) == 0) {
        int all = atoi((char *)fv);
        mpistore_free(fv);
        printf("shrink: %d survivors, %d failed checks: %s\n", nsz, all,
               all == 0 && failures == 0 ? "all passed" : "FAILED");
    }
    rc = mpistore_barrier(ns, nr, nsz, "b/exit", 60);
    rc = mpistore_close(ns);
    CHECK(rc == 0, "close of the new store: %s", mpistore_errmsg(NULL));
    rc = mpistore_close(s);
    CHECK(rc == 0 || rc == -MPISTORE_EPROCFAILED, "close of the old store: %s",
          mpistore_errname(rc));
    /* No MPI_Finalize: after a death Open MPI 5.0.11's hangs now and then
     * (docs/testing.md, "Rank failures"). */
    fflush(NULL);
    _exit(failures ? 1 : 0);
}
