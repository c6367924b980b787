/* A rank dies (SIGKILL on itself) and the survivors' calls that need it fail
 * with EPROCFAILED instead of waiting out their timeout (docs/design.md,
 * "Rank failures").  Needs MPI's fault-tolerance extension: run under
 * `mpiexec --with-ft ulfm -n 4 test_rankfail [victim] [rep]` (Open MPI 5;
 * rep: replicas = 1, whose writes pay more steps but must fail alike).
 *
 * Every wait runs under a 60 s timeout: a call that returns EPROCFAILED has
 * returned before its deadline, which is the order of events this test
 * asserts (no wall-clock bound).  The survivors then agree, over a shrunken
 * communicator, that each passed; the lowest prints the verdict.
 *
 * White-box (the library's internal headers): before it dies the victim
 * also leaves an add registered on a counter and a slot lock taken, as a
 * rank killed in the middle of those writes would, and in a second store
 * a never used slot claimed, as a rank killed in the middle of an insert
 * would. */
#include <mpistore.h>
#include <mpistore_elastic.h>

#include "ops.h" /* white-box: a registration and a slot lock left by the victim */
#define ULFMTEST_TAG "rankfail"
#include "ulfmtest.h"

#include <mpi.h>
#include <mpi-ext.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int victim;

/* rc must be EPROCFAILED, and the message must name the victim and `what` */
static void expect_died(mpistore_t *s, int rc, const char *call, const char *what)
{
    const char *msg = mpistore_errmsg(s);
    char dead[32];
    snprintf(dead, sizeof dead, "rank %d died", victim);
    CHECK(rc == -MPISTORE_EPROCFAILED, "%s returned %s, expected MPISTORE_EPROCFAILED: %s", call,
          mpistore_errname(rc), msg);
    CHECK(strstr(msg, dead) && strstr(msg, what), "%s: message '%s' should name '%s' and '%s'",
          call, msg, dead, what);
}

/* A key name whose home is rank `home` (and that this rank has not used). */
static void key_on(mpistore_t *s, int home, const char *tag, char *out, size_t n)
{
    for (int i = 0;; i++) {
        int r = -1;
        snprintf(out, n, "%s-%d", tag, i);
        if (mpistore_key_rank(s, out, &r) == 0 && r == home)
            return;
    }
}

/* The victim, before it dies: an add registered on counter key `cnt`
 * (counters.c) and the slot of key `held` locked (both homed on live
 * ranks), never given back. */
static void leave_registration_and_lock(mpistore_t *s, const char *cnt, const char *held)
{
    mpistore__key_t k;
    mpistore__snap_t *sn = malloc(sizeof *sn);
    int rc = sn ? mpistore__key_of(s, cnt, &k) : -1;
    if (rc == 0)
        rc = mpistore__reg_set(s->core, &k);
    mpistore__key_release(&k);
    if (rc == 0)
        rc = mpistore__key_of(s, held, &k);
    if (rc == 0)
        rc = mpistore__snapshot(s->core, &k, sn);
    size_t i = 0;
    while (rc == 0 && i < sn->n && !mpistore__snap_candidate(sn, i, k.fp))
        i++;
    if (rc == 0 && i < sn->n) {
        uint32_t exp = mpistore__snap_lock(sn, i), locked = exp | 1u, got = 0;
        int t = mpistore__snap_target(sn, i);
        rc = mpistore__cas_u32(&s->core->rma, t, mpistore__snap_ctl_off(sn, i, MS_CTL_LOCK),
                               &locked, &exp, &got);
        if (rc == 0)
            rc = mpistore__flush(&s->core->rma, t);
        if (rc == 0 && got != exp)
            rc = -1;
    } else if (rc == 0) {
        rc = -1;
    }
    mpistore__key_release(&k);
    free(sn);
    CHECK(rc == 0, "the victim could not leave its registration and lock (%d)", rc);
}

/* Keys a and b of store s with one home rank (`home`) and home bucket: a
 * is set before the death, and the victim claims the slot after a's (never
 * used) as an insert does, then dies holding it. */
static void same_bucket(mpistore_t *s, int home, char *a, char *b, size_t n, size_t *lockoff)
{
    mpistore__key_t ka, kb;
    key_on(s, home, "nbr-a", a, n);
    CHECK(mpistore__key_of(s, a, &ka) == 0, "key_of %s", a);
    for (int i = 0;; i++) {
        snprintf(b, n, "nbr-b-%d", i);
        CHECK(mpistore__key_of(s, b, &kb) == 0, "key_of %s", b);
        int same = kb.rank == ka.rank && kb.home == ka.home;
        mpistore__key_release(&kb);
        if (same)
            break;
    }
    *lockoff = mpistore__ctl_off(&s->core->lay, ka.home + 1, MS_CTL_LOCK);
    mpistore__key_release(&ka);
}

/* A queue whose internal key the victim hosts: its host is only named by a
 * blocking pop's timeout ("hosted by rank N"); tried with 1 ms timeouts. */
static void queue_on(mpistore_t *s, int host, char *out, size_t n)
{
    mpistore_set_timeout(s, 0.001);
    for (int i = 0;; i++) {
        void *v = NULL;
        size_t len = 0;
        int r = -1;
        snprintf(out, n, "queue-%d", i);
        const char *m = mpistore_queue_pop(s, out, true, &v, &len) == -MPISTORE_ETIMEDOUT
                            ? strstr(mpistore_errmsg(s), "hosted by rank ")
                            : NULL;
        if (m && sscanf(m, "hosted by rank %d", &r) == 1 && r == host)
            break;
    }
    mpistore_set_timeout(s, 60);
}

int main(int argc, char **argv)
{
    victim = argc > 1 ? atoi(argv[1]) : 2;
    if (ulfm_start(&argc, &argv, 3, victim))
        return 2;
    mpistore_t *s = ulfm_open(0, argc > 2 && strcmp(argv[2], "rep") == 0);
    /* a second store for case 11, where no other key can meet its two */
    mpistore_t *s2 = ulfm_open(0, argc > 2 && strcmp(argv[2], "rep") == 0);
    int live = (victim + 1) % size; /* a survivor */
    char nbr_a[64], nbr_b[64], on_dead2[64];
    size_t nbr_lock = 0;
    same_bucket(s2, live, nbr_a, nbr_b, sizeof nbr_a, &nbr_lock);
    key_on(s2, victim, "absent", on_dead2, sizeof on_dead2);
    if (rank == live)
        CHECK(mpistore_set(s2, nbr_a, "a", 1) == 0, "set %s: %s", nbr_a, mpistore_errmsg(s2));
    char on_dead[64], on_live[64], q_dead[64], kept[64], cnt[64], held[64];
    key_on(s, live, "counter", cnt, sizeof cnt);
    key_on(s, live, "held", held, sizeof held);
    key_on(s, victim, "absent", on_dead, sizeof on_dead);
    key_on(s, victim, "kept", kept, sizeof kept); /* set, on the victim */
    key_on(s, live, "present", on_live, sizeof on_live);
    queue_on(s, victim, q_dead, sizeof q_dead);
    int64_t three = 0;
    if (rank == live && (mpistore_set(s, on_live, "v", 1) != 0 || mpistore_set(s, kept, "k", 1) ||
                         mpistore_add(s, cnt, 3, &three) || mpistore_set(s, held, "h", 1)))
        CHECK(0, "set %s, %s, %s, %s: %s", on_live, kept, cnt, held, mpistore_errmsg(s));
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == victim) {
        leave_registration_and_lock(s, cnt, held);
        const uint32_t never = 0, locked = 1;
        uint32_t got = 7;
        int crc = mpistore__cas_u32(&s2->core->rma, live, nbr_lock, &locked, &never, &got);
        if (crc == 0)
            crc = mpistore__flush(&s2->core->rma, live);
        CHECK(crc == 0 && got == never, "the victim could not claim the slot after %s (%d, %u)",
              nbr_a, crc, got);
        raise(SIGKILL);
    }

    /* 1. a get of an absent key homed on the dead rank */
    void *v = NULL;
    size_t len = 0;
    expect_died(s, mpistore_get(s, on_dead, &v, &len), "get", on_dead);
    /* 2. the dead rank is listed */
    int *dead = NULL;
    size_t ndead = 0;
    int rc = mpistore_failed_ranks(s, &dead, &ndead);
    CHECK(rc == 0 && ndead == 1 && dead[0] == victim, "failed_ranks: rc %s, %zu ranks, first %d",
          mpistore_errname(rc), ndead, ndead ? dead[0] : -1);
    mpistore_free(dead);
    /* 3. calls that need only live ranks work */
    rc = mpistore_get(s, on_live, &v, &len);
    CHECK(rc == 0 && len == 1, "get of %s on live rank %d: %s", on_live, live, mpistore_errmsg(s));
    mpistore_free(v);
    char mine[64];
    snprintf(mine, sizeof mine, "mine-%d", rank);
    int home = -1;
    mpistore_key_rank(s, mine, &home);
    if (home != victim) {
        CHECK(mpistore_set(s, mine, "x", 1) == 0, "set %s (home %d): %s", mine, home,
              mpistore_errmsg(s));
    }
    /* 4. once known dead, any read or write of a key homed there fails */
    expect_died(s, mpistore_get(s, kept, &v, &len), "get of a key that was set", kept);
    expect_died(s, mpistore_set(s, kept, "w", 1), "set", kept);
    int64_t sum = 0;
    expect_died(s, mpistore_add(s, kept, 1, &sum), "add", kept);
    /* 5. wait and multi_get with one key on the dead rank */
    const char *both[] = {on_live, on_dead};
    expect_died(s, mpistore_wait(s, both, 2, MPISTORE_TIMEOUT_DEFAULT), "wait", on_dead);
    void *vals[2];
    size_t lens[2];
    expect_died(s, mpistore_multi_get(s, both, 2, vals, lens), "multi_get", on_dead);
    /* 6. a blocking pop of a queue on the dead rank */
    expect_died(s, mpistore_queue_pop(s, q_dead, true, &v, &len), "queue_pop", q_dead);
    /* 7. the elastic helpers wait for every rank: any death fails them */
    rc = mpistore_barrier(s, rank, size, "rf/bar", 60);
    CHECK(rc == -MPISTORE_EPROCFAILED, "barrier returned %s: %s", mpistore_errname(rc),
          mpistore_errmsg(s));
    CHECK(strstr(mpistore_errmsg(s), "died") != NULL, "barrier's message: %s", mpistore_errmsg(s));
    void *all[8];
    size_t alls[8];
    rc = mpistore_synchronize(s, "d", 1, rank, size, "rf/sync", 60, all, alls);
    CHECK(rc == -MPISTORE_EPROCFAILED, "synchronize returned %s: %s", mpistore_errname(rc),
          mpistore_errmsg(s));
    /* 7b. the barrier's message: who died, and which live rank did not
     * arrive (the highest live rank stays away; the lowest collects) */
    int straggler = size - 1 == victim ? size - 2 : size - 1;
    char strag[32], trace[64];
    for (int i = 0, at = victim; at == victim; i++) { /* its TRACE key on a live rank */
        snprintf(strag, sizeof strag, "rf/strag%d", i);
        snprintf(trace, sizeof trace, "%s%d/TRACE", strag, straggler);
        mpistore_key_rank(s, trace, &at);
    }
    if (rank != straggler) {
        char want_dead[32], want_late[48];
        snprintf(want_dead, sizeof want_dead, "died: [%d]", victim);
        snprintf(want_late, sizeof want_late, "did not arrive: [%d]", straggler);
        rc = mpistore_barrier(s, rank, size, strag, 60);
        CHECK(rc == -MPISTORE_EPROCFAILED && strstr(mpistore_errmsg(s), want_dead) &&
                  strstr(mpistore_errmsg(s), want_late),
              "barrier with rank %d away returned %s: %s", straggler, mpistore_errname(rc),
              mpistore_errmsg(s));
        if (rank == (victim == 0 ? 1 : 0))
            printf("rankfail: the barrier's message: %s\n", mpistore_errmsg(s));
    }
    /* 9. a counter with the dead rank's add still registered: a set, which
     * waits for the adders of the counter's bucket, does not wait for it */
    rc = mpistore_set(s, cnt, "7", 1);
    CHECK(rc == 0, "set of counter %s (victim's add registered): %s", cnt, mpistore_errmsg(s));
    rc = mpistore_get(s, cnt, &v, &len);
    CHECK(rc == 0 && len == 1 && memcmp(v, "7", 1) == 0, "get of %s: %s", cnt,
          rc ? mpistore_errmsg(s) : "another value");
    if (rc == 0)
        mpistore_free(v);
    /* 10. a key whose slot lock the dead rank holds: a write fails soon
     * (EPROCFAILED, about a second), not at its 60 s deadline */
    rc = mpistore_set(s, held, "w", 1);
    CHECK(rc == -MPISTORE_EPROCFAILED && strstr(mpistore_errmsg(s), "may hold it"),
          "set of %s (slot locked by the victim) returned %s: %s", held, mpistore_errname(rc),
          mpistore_errmsg(s));
    /* 11. one node (design.md, "A look stops at a slot never published"):
     * an insert whose probe window runs into a slot the dead rank was
     * claiming waits for it, and fails like case 10; on MPI's path it goes
     * past the slot */
    expect_died(s2, mpistore_get(s2, on_dead2, &v, &len), "get (second store)", on_dead2);
    int stops = mpistore__rma_immediate(&s2->core->rma, nbr_lock);
    if (rank == live)
        printf("rankfail: case 11 on %s\n", stops ? "one node's path" : "MPI's path");
    rc = mpistore_set(s2, nbr_b, "b", 1);
    if (stops)
        CHECK(rc == -MPISTORE_EPROCFAILED && strstr(mpistore_errmsg(s2), "may hold it"),
              "set of %s (next slot claimed by the victim) returned %s: %s", nbr_b,
              mpistore_errname(rc), mpistore_errmsg(s2));
    else
        CHECK(rc == 0, "set of %s (MPI's path) returned %s: %s", nbr_b, mpistore_errname(rc),
              mpistore_errmsg(s2));
    rc = mpistore_close(s2);
    CHECK(rc == -MPISTORE_EPROCFAILED, "close of the second store returned %s: %s",
          mpistore_errname(rc), mpistore_errmsg(NULL));
    /* 8. close returns (a documented code) instead of hanging in a collective */
    rc = mpistore_close(s);
    CHECK(rc == -MPISTORE_EPROCFAILED && strstr(mpistore_errmsg(NULL), "died"),
          "close returned %s: %s", mpistore_errname(rc), mpistore_errmsg(NULL));

    ulfm_verdict_exit(victim);
}
