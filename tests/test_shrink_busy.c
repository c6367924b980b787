/* mpistore_shrink after a rank died in the middle of writes (docs/design.md,
 * "Shrink", "Replicas"): under `mpiexec --with-ft ulfm -n N test_shrink_busy
 * V [rep] [timer]`.
 *
 * Every rank owns NOWN string keys, which only it sets, each time with a
 * higher sequence number ("w:i:seq"), and all ranks add 1 to NCNT shared
 * counters, round-robin, as fast as they can.  Rank V kills itself (SIGKILL)
 * entering a random one of its next 2000-8000 MPI_Win_flush calls (timer: at
 * a random instant, see arm_death), so it may
 * die holding a slot lock, with a block written but not published, between
 * an insert's claim and its publication, or registered for a lock-free add.  Each survivor stops
 * once MPI reports the death (mpistore_failed_ranks), all shrink, and each checks:
 *   - its own keys: present exactly when their home survived, each with the
 *     value of the last set it completed (no write lost, none torn);
 *   - V's keys: absent (their values were in V's memory);
 *   - a counter, if present: at least the adds the survivors completed
 *     (added up in the new store): no completed add is lost (how many of
 *     V's landed is not known);
 *   - present + lost_keys + homed on V = every key before.
 * With rep (replicas = 1) nothing may be lost: every key is present, a
 * survivor's with its last completed set (or the one that failed with
 * EPROCFAILED, which may have reached the copy), V's with one of the values
 * V wrote (not torn), and lost_keys is 0.
 * The survivors add up their failed checks in the new store and the lowest
 * prints the verdict. */
#include <mpistore.h>
#include <mpistore_elastic.h>

#define ULFMTEST_TAG "shrinkbusy"
#include "ulfmtest.h"

#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NOWN 8
#define NCNT 4

/* The victim dies entering its n-th MPI_Win_flush from now (MPI's profiling
 * interface, or the one-node path's flush hook): in the middle of a store operation (a slot locked,
 * a block written, a publication issued but not flushed), but never inside an atomic RMA call.  A
 * rank killed inside one leaves Open MPI 5.0.11's osc/sm lock of the target taken, and every later
 * atomic on that target spins for ever (seen 1 run in 9 with a SIGKILL from a timer; README, "When
 * a rank dies"). */
static long countdown = -1;
static void flush_point(void)
{
    if (countdown >= 0 && countdown-- == 0)
        raise(SIGKILL);
}

int MPI_Win_flush(int target, MPI_Win win)
{
    flush_point();
    return PMPI_Win_flush(target, win);
}

/* On one node the store's flushes are fences, not MPI calls: the library
 * calls this hook at each (src/rma.h). */
extern void (*mpistore__flush_hook)(void);

/* timer: the death at a random instant 20-200 ms into the busy loop, at
 * whatever instruction the victim is (inside an atomic operation too).  Only
 * on the one-node path (the test skips itself on MPI's): there the store's
 * atomics are single instructions that leave nothing half done, while an
 * MPI atomic cut short can leave its implementation's lock taken (above). */
static void die_now(int sig)
{
    (void)sig;
    raise(SIGKILL);
}

static void arm_death(int timer)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    srand((unsigned)ts.tv_nsec ^ (unsigned)getpid());
    if (timer) {
        struct itimerval it = {.it_value = {.tv_sec = 0, .tv_usec = 20000 + rand() % 180000}};
        signal(SIGALRM, die_now);
        setitimer(ITIMER_REAL, &it, NULL);
        return;
    }
    mpistore__flush_hook = flush_point;
    countdown = 2000 + rand() % 6000;
}

/* rep's fresh keys: set "n/<rank>/<turn>", delete the previous turn's.
 * fresh_ok[0]: the last set completed; fresh_ok[1]: the delete of the one
 * before it too (a call may fail with EPROCFAILED: the loop's own check
 * then ends it). */
static void fresh(mpistore_t *s, long turn, int *fresh_ok)
{
    char key[48];
    snprintf(key, sizeof key, "n/%d/%ld", rank, turn);
    int rc = mpistore_set(s, key, key, strlen(key));
    if (rc != 0 && rc != -MPISTORE_EPROCFAILED)
        CHECK(0, "set %s: %s", key, mpistore_errmsg(s));
    fresh_ok[0] = rc == 0;
    if (turn == 0)
        return;
    snprintf(key, sizeof key, "n/%d/%ld", rank, turn - 1);
    int drc = mpistore_delete_key(s, key, NULL);
    if (drc != 0 && drc != -MPISTORE_EPROCFAILED)
        CHECK(0, "delete %s: %s", key, mpistore_errmsg(s));
    fresh_ok[1] = drc == 0;
}

static int victim_known(mpistore_t *s, int victim)
{
    int *dead = NULL;
    size_t n = 0;
    int known = mpistore_failed_ranks(s, &dead, &n) == 0 && n == 1 && dead[0] == victim;
    mpistore_free(dead);
    return known;
}

int main(int argc, char **argv)
{
    int victim = argc > 1 ? atoi(argv[1]) : 1;
    int rep = 0, timer = 0;
    for (int a = 2; a < argc; a++) {
        rep |= strcmp(argv[a], "rep") == 0;
        timer |= strcmp(argv[a], "timer") == 0;
    }
    if (ulfm_start(&argc, &argv, 3, victim))
        return 2;
    const char *shm = getenv("MPISTORE_SHM");
    if (timer && shm && strcmp(shm, "0") == 0) {
        if (rank == 0)
            printf(ULFMTEST_TAG ": skipped: a death at any instant needs the one-node path\n");
        MPI_Finalize();
        return 77;
    }
    mpistore_t *s = ulfm_open(0, rep);
    char key[32], val[48];
    int home[NOWN], vhome = 0, nhomed_v = 0;
    long last[NOWN] = {0}, adds[NCNT] = {0};
    int failed[NOWN] = {0}; /* a set of last + 1 failed (EPROCFAILED) */
    int fresh_ok[2] = {0, 0};
    /* every key exists before the loop: the count of keys is known */
    for (int i = 0; i < NOWN; i++) {
        snprintf(key, sizeof key, "o/%d/%d", rank, i);
        snprintf(val, sizeof val, "%d:%d:0", rank, i);
        CHECK(mpistore_set(s, key, val, strlen(val)) == 0, "set %s: %s", key, mpistore_errmsg(s));
        mpistore_key_rank(s, key, &home[i]);
    }
    for (int w = 0; w < size; w++) /* keys homed on the victim, of every rank */
        for (int i = 0; i < NOWN; i++) {
            snprintf(key, sizeof key, "o/%d/%d", w, i);
            mpistore_key_rank(s, key, &vhome);
            nhomed_v += vhome == victim;
        }
    int64_t sum = 0;
    for (int c = 0; c < NCNT && rank == 0; c++) {
        snprintf(key, sizeof key, "cnt/%d", c);
        CHECK(mpistore_add(s, key, 0, &sum) == 0, "add %s: %s", key, mpistore_errmsg(s));
    }
    for (int c = 0; c < NCNT; c++) {
        snprintf(key, sizeof key, "cnt/%d", c);
        mpistore_key_rank(s, key, &vhome);
        nhomed_v += vhome == victim;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == victim)
        arm_death(timer);

    /* the busy loop: a set of one of its own keys and an add, each turn */
    long turn = 0;
    for (;; turn++) {
        int i = (int)(turn % NOWN), c = (int)(turn % NCNT);
        snprintf(key, sizeof key, "o/%d/%d", rank, i);
        snprintf(val, sizeof val, "%d:%d:%ld", rank, i, last[i] + 1);
        int rc = mpistore_set(s, key, val, strlen(val));
        if (rc == 0)
            last[i]++, failed[i] = 0;
        else if (rc == -MPISTORE_EPROCFAILED)
            failed[i] = 1;
        else
            CHECK(0, "set %s: %s", key, mpistore_errmsg(s));
        snprintf(key, sizeof key, "cnt/%d", c);
        rc = mpistore_add(s, key, 1, &sum);
        if (rc == 0)
            adds[c]++;
        else if (rc != -MPISTORE_EPROCFAILED)
            CHECK(0, "add %s: %s", key, mpistore_errmsg(s));
        /* rep: a fresh key inserted each turn, the last turn's deleted:
         * inserts and deletes in flight when V dies (their key counts and
         * descriptors must stay in step: lost_keys 0) */
        if (rep)
            fresh(s, turn, fresh_ok);
        if (turn % 16 == 0 && victim_known(s, victim))
            break;
    }

    mpistore_t *ns = NULL;
    size_t lost = 99999;
    int rc = mpistore_shrink(&ns, s, &lost);
    CHECK(rc == 0, "shrink: %s", mpistore_errmsg(s));
    if (rc != 0) {
        fflush(NULL);
        _exit(1);
    }
    int nr = -1, nsz = -1;
    mpistore_rank(ns, &nr, &nsz);
    CHECK(nsz == size - 1 && nr == rank - (victim < rank), "new store: rank %d of %d", nr, nsz);
    /* own keys: present iff their home survived, with the last value set */
    int present = 0;
    for (int i = 0; i < NOWN; i++) {
        const char *k = key;
        bool there = false;
        snprintf(key, sizeof key, "o/%d/%d", rank, i);
        CHECK(mpistore_check(ns, &k, 1, &there) == 0, "check %s: %s", key, mpistore_errmsg(ns));
        CHECK(there == (rep || home[i] != victim), "%s (home %d) is %s", key, home[i],
              there ? "present" : "absent");
        void *v = NULL;
        size_t len = 0;
        char alt[48];
        snprintf(val, sizeof val, "%d:%d:%ld", rank, i, last[i]);
        snprintf(alt, sizeof alt, "%d:%d:%ld", rank, i, last[i] + 1);
        if (there && mpistore_get(ns, key, &v, &len) == 0) {
            int ok = len == strlen(val) && memcmp(v, val, len) == 0;
            ok |= rep && failed[i] && len == strlen(alt) && memcmp(v, alt, len) == 0;
            CHECK(ok, "%s is %.*s, last set %s%s", key, (int)len, (char *)v, val,
                  failed[i] ? " (the next one failed)" : "");
            mpistore_free(v);
        }
        present += there;
    }
    /* the victim's keys: their values died with it, or (rep) one of them
     * survives whole on the victim's mirror */
    for (int i = 0; i < NOWN && rank == (victim == 0 ? 1 : 0); i++) {
        const char *k = key;
        bool there = !rep;
        snprintf(key, sizeof key, "o/%d/%d", victim, i);
        CHECK(mpistore_check(ns, &k, 1, &there) == 0 && there == rep, "%s of the victim is %s", key,
              there ? "present" : "absent");
        void *v = NULL;
        size_t len = 0;
        char head[24];
        int hn = snprintf(head, sizeof head, "%d:%d:", victim, i);
        if (rep && there && mpistore_get(ns, key, &v, &len) == 0) {
            char *end = NULL;
            int ok = len > (size_t)hn && memcmp(v, head, (size_t)hn) == 0;
            if (ok)
                ok = strtol((char *)v + hn, &end, 10) >= 0 && end == (char *)v + len;
            CHECK(ok, "%s of the victim is '%.*s', not one of the values it set", key, (int)len,
                  (char *)v);
            mpistore_free(v);
        }
    }
    /* rep: the last fresh key, present with its value if its set
     * completed; the one before absent if its delete completed */
    if (rep && fresh_ok[0]) {
        void *v = NULL;
        size_t len = 0;
        snprintf(key, sizeof key, "n/%d/%ld", rank, turn);
        int rc2 = mpistore_get(ns, key, &v, &len);
        CHECK(rc2 == 0 && len == strlen(key) && memcmp(v, key, len) == 0,
              "fresh key %s after the shrink: %s", key, rc2 ? mpistore_errmsg(ns) : "wrong value");
        if (rc2 == 0)
            mpistore_free(v);
    }
    if (rep && fresh_ok[1] && turn > 0) {
        const char *k = key;
        bool there = true;
        snprintf(key, sizeof key, "n/%d/%ld", rank, turn - 1);
        CHECK(mpistore_check(ns, &k, 1, &there) == 0 && !there, "deleted key %s is present", key);
    }
    /* counters: the survivors' completed adds, added up in the new store */
    for (int c = 0; c < NCNT; c++) {
        snprintf(key, sizeof key, "sum/%d", c);
        CHECK(mpistore_add(ns, key, adds[c], &sum) == 0, "add %s: %s", key, mpistore_errmsg(ns));
    }
    char pk[32];
    snprintf(pk, sizeof pk, "present/%d", nr);
    snprintf(val, sizeof val, "%d", present);
    CHECK(mpistore_set(ns, pk, val, strlen(val)) == 0, "set: %s", mpistore_errmsg(ns));
    CHECK(mpistore_barrier(ns, nr, nsz, "b/sums", 60) == 0, "barrier: %s", mpistore_errmsg(ns));
    if (nr == 0) {
        int cpresent = 0, allpresent = 0;
        for (int c = 0; c < NCNT; c++) {
            void *v = NULL, *m = NULL;
            size_t len = 0, mlen = 0;
            const char *k = key;
            bool there = false;
            snprintf(key, sizeof key, "cnt/%d", c);
            mpistore_check(ns, &k, 1, &there);
            cpresent += there;
            char skey[32];
            snprintf(skey, sizeof skey, "sum/%d", c);
            if (!there || mpistore_get(ns, key, &v, &len) != 0 ||
                mpistore_get(ns, skey, &m, &mlen) != 0)
                continue;
            long got = atol((char *)v), min = atol((char *)m);
            CHECK(got >= min, "counter %s is %ld; the survivors completed %ld adds", key, got, min);
            printf("shrinkbusy: %s = %ld, the survivors' adds %ld\n", key, got, min);
            mpistore_free(v);
            mpistore_free(m);
        }
        for (int r = 0; r < nsz; r++) {
            void *v = NULL;
            size_t len = 0;
            snprintf(pk, sizeof pk, "present/%d", r);
            if (mpistore_get(ns, pk, &v, &len) == 0) {
                allpresent += atoi((char *)v);
                mpistore_free(v);
            }
        }
        int before = size * NOWN + NCNT;
        CHECK(!rep || (lost == 0 && allpresent + cpresent == before - NOWN),
              "replicas: %zu keys lost, %d of %d survivors' keys present", lost,
              allpresent + cpresent, before - NOWN);
        /* (with rep the victim's keys were checked present above) */
        CHECK(rep || allpresent + cpresent + (int)lost + nhomed_v == before,
              "%d strings + %d counters present + %zu lost + %d homed on the victim != %d keys",
              allpresent, cpresent, lost, nhomed_v, before);
        printf("shrinkbusy: victim %d died after %ld turns of rank 0's loop; %d of %d keys "
               "present, %zu counted lost, %d homed on the victim\n",
               victim, turn, allpresent + cpresent + (rep ? NOWN : 0), before, lost, nhomed_v);
    }
    int64_t all = 0;
    CHECK(mpistore_add(ns, "verdict", failures, &all) == 0, "verdict: %s", mpistore_errmsg(ns));
    CHECK(mpistore_barrier(ns, nr, nsz, "b/verdict", 60) == 0, "barrier: %s", mpistore_errmsg(ns));
    void *fv = NULL;
    size_t fl = 0;
    if (nr == 0 && mpistore_get(ns, "verdict", &fv, &fl) == 0) {
        int total = atoi((char *)fv);
        mpistore_free(fv);
        printf("shrinkbusy: %d survivors, %d failed checks: %s\n", nsz, total,
               total == 0 ? "all passed" : "FAILED");
    }
    (void)mpistore_barrier(ns, nr, nsz, "b/exit", 60);
    CHECK(mpistore_close(ns) == 0, "close: %s", mpistore_errmsg(NULL));
    (void)mpistore_close(s);
    /* No MPI_Finalize: docs/testing.md, "Rank failures". */
    fflush(NULL);
    _exit(failures ? 1 : 0);
}
