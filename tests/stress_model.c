/* Model-based stress test: every rank runs a long random sequence of all
 * operations on a small shared key set, logs what each call returned, and the
 * logs are checked against what a linearizable store may return (see
 * stress_model.h and stress_check.c; docs/testing.md "Stress test").
 *
 * Environment:
 *   STRESS_SECONDS  run time per store variant (default 3)
 *   STRESS_SEED     PRNG seed (default time-based; printed at start)
 *   STRESS_INJECT   torn|dupadd|lostdelete|dupcas|reorder: make the logging lie
 *                   about one result on rank 1, to prove the checker catches it
 *   STRESS_VARIANTS which store variants run, e.g. "2" or "01" (default all:
 *                   0 default, 1 small, 2 growing)
 *   STRESS_KILL     V: only the kill variant (3), under `mpiexec --with-ft
 *                   ulfm`: replicas = 1, rank V dies at a random point of the
 *                   run, the survivors shrink the store and check every
 *                   rank's log, V's included (stress_kill.h)
 */
#include "mpitest.h"
#include "stress_kill.h"
#include "stress_model.h"

#include <mpi.h>
#ifdef MPISTORE_HAVE_ULFM
#include <mpi-ext.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WRITE_TO 60.0 /* writes, check: a timeout is a failure */
#define LONG_TO 10.0  /* reads of keys known to exist: a timeout is a violation */
#define EPOCH_S 1.0   /* logs are checked and gathered after every epoch */
#define EPOCH_CAP ((size_t)1 << 17)
#define INJECT_AFTER 300 /* ops before an injected fault may fire */

enum { INJ_NONE, INJ_TORN, INJ_DUPADD, INJ_LOSTDEL, INJ_DUPCAS, INJ_REORDER };
static const char *const inj_names[] = {"", "torn", "dupadd", "lostdelete", "dupcas", "reorder"};

typedef struct run {
    st_ctx c;
    mpistore_t *s;
    uint64_t rng;
    st_log log;
    bool small;
    bool growing; /* variant 2: tiny initial sizes, fresh filler keys: growth all the time */
    long fills;
    size_t maxval, alimit;
    uint32_t seq;         /* next write sequence number of this rank */
    uint32_t aidx[ST_NK]; /* next append index of this rank per key */
    int64_t lastadd[ST_NK];
    unsigned known;             /* counter/token keys known to exist */
    unsigned char *last[ST_NK]; /* last value seen/written (compare_set expected) */
    size_t lastlen[ST_NK];
    size_t alen[ST_NK]; /* last length seen of an append key */
    unsigned char *buf;
    st_rec *recs;
    size_t reccap;
    uint64_t ops;
    /* counters reported at the end: calls per op, then outcomes */
    uint64_t calls[ST_OP_COUNT];
    uint64_t n_absent, n_busy, n_fail, n_won, n_deleted;
    /* fault injection */
    int inj;
    bool inj_done, inj_armed;
    int inj_key;
    st_rec inj_rec;
    size_t inj_len;
    /* the kill variant (3) */
    bool kill;
    int victim;
    int replicas;  /* 1; STRESS_KILL_REPLICAS=0: the checker must see the loss */
    bool stop;     /* a call failed with EPROCFAILED: this rank's run is over */
    MPI_Comm comm; /* the ranks that check: MPI_COMM_WORLD, the survivors after a kill */
    stk_log kl;    /* the log's file (R->log.e points into it) */
    size_t npend;  /* entries of the call in flight (kill: in the file after the log) */
    st_ent scratch;
    uint64_t n_dead;
} run_t;

static const char *keyname[ST_NK];

static uint64_t rnd(run_t *R)
{
    R->rng += 0x9E3779B97F4A7C15ull;
    return st_mix(R->rng);
}
static unsigned rndn(run_t *R, unsigned n)
{
    return (unsigned)(rnd(R) % n);
}

static st_ent *ent(run_t *R, int op, int ev, int key, double t0, double t1)
{
    st_log *l = &R->log;
    if (R->kill && l->n == l->cap)
        fail_msg("stress rank %d: the kill variant's log is full", R->c.rank);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4096;
        l->e = realloc(l->e, l->cap * sizeof *l->e);
        assert_non_null(l->e);
    }
    st_ent *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    e->t0 = t0;
    e->t1 = t1;
    e->op = (uint8_t)op;
    e->ev = (uint8_t)ev;
    e->key = (uint8_t)key;
    e->w = ST_NONE;
    if (R->kill)
        R->kl.hdr->n = l->n; /* filled in before the next RMA call: no death before */
    return e;
}

/* An entry of the call about to start, as if it failed with EPROCFAILED
 * (ST_DEAD, a write as ST_F_MAYBE): in the kill variant it is written after
 * the log and counted as pending, so that it is there if this rank dies
 * inside the call; settle() then drops it or makes it the call's log. */
static st_ent *maybe_ent(run_t *R, int op, int ev, int key, double t0)
{
    st_ent *e = &R->scratch;
    if (R->kill) {
        if (R->log.n + R->npend >= R->log.cap)
            fail_msg("stress rank %d: the kill variant's log is full", R->c.rank);
        e = &R->log.e[R->log.n + R->npend++];
    }
    memset(e, 0, sizeof *e);
    e->t0 = e->t1 = t0;
    e->op = (uint8_t)op;
    e->ev = (uint8_t)ev;
    e->key = (uint8_t)key;
    e->st = ST_DEAD;
    e->w = ST_NONE;
    if (R->kill)
        R->kl.hdr->pending = R->npend;
    return e;
}

/* A write of record seq (len bytes) to key k that may happen. */
static st_ent *maybe_write(run_t *R, int op, int k, uint32_t seq, size_t len, double t0)
{
    st_ent *e = maybe_ent(R, op, ST_EV_WRITE, k, t0);
    e->w = (uint16_t)R->c.rank;
    e->seq = seq;
    e->val = (int64_t)len;
    e->flags = (uint8_t)(ST_F_MAYBE | (len < ST_HDR ? ST_F_SHORT : 0));
    return e;
}

/* After a call: true if it failed with EPROCFAILED (kill variant only; then
 * its pending entries are its log and this rank's run is over), else false
 * (its pending entries are dropped, the caller logs what it returned). */
static bool settle(run_t *R, int rc)
{
    bool dead = R->kill && rc == -MPISTORE_EPROCFAILED;
    if (dead) {
        R->log.n += R->npend;
        R->stop = true;
        R->n_dead++;
    }
    R->npend = 0;
    if (R->kill) {
        R->kl.hdr->n = R->log.n;
        R->kl.hdr->pending = 0;
    }
    return dead;
}

/* A_TOOBIG: append, whose value other ranks lengthen at the same time, may
 * pass max_value_len in every variant (ETOOBIG changes nothing). */
enum { A_TIMEOUT = 1, A_SPACE = 2, A_TOOBIG = 4 };

/* Map a return code to a status; anything not allowed ends the test. */
static int outcome(run_t *R, int rc, unsigned allow, const char *call, int key)
{
    if (rc == MPISTORE_OK)
        return ST_OK;
    if (rc == -MPISTORE_ETIMEDOUT && (allow & A_TIMEOUT)) {
        /* Only "timeout ... waiting for key" proves the key was missing (at the
         * last poll); a read that timed out because the key "kept changing"
         * under its validation saw nothing. */
        if (strstr(mpistore_errmsg(R->s), "kept changing")) {
            R->n_busy++;
            return ST_BUSY;
        }
        R->n_absent++;
        return ST_ABSENT;
    }
    if (rc == -MPISTORE_ENOSPC && (allow & A_TIMEOUT) && R->small &&
        strstr(mpistore_errmsg(R->s), "store is full")) {
        /* a wait that failed fast because a write found the store full: it
         * returns so only after a poll found the key absent (ops_read.c),
         * which is what a timeout proves too */
        R->n_absent++;
        return ST_ABSENT;
    }
    if (rc == -MPISTORE_ETOOBIG && (allow & A_TOOBIG)) {
        R->n_fail++;
        return ST_FAIL;
    }
    if ((rc == -MPISTORE_ENOSPC || rc == -MPISTORE_ETOOBIG) && (allow & A_SPACE) && R->small) {
        R->n_fail++;
        return ST_FAIL;
    }
    fail_msg("stress rank %d seed %llu variant %d: %s on '%s' -> %s: %s", R->c.rank,
             (unsigned long long)R->c.seed, R->c.variant, call, key >= 0 ? keyname[key] : "-",
             mpistore_errname(rc), mpistore_errmsg(R->s));
    return ST_FAIL;
}

static double short_timeout(run_t *R)
{
    return 0.001 * (1 + rndn(R, 20));
}

static void timeout_to(run_t *R, double t)
{
    MT_OK(R->s, mpistore_set_timeout(R->s, t));
}

static bool can_inject(run_t *R, int kind)
{
    return R->inj == kind && !R->inj_done && R->ops > INJECT_AFTER;
}

static void remember(run_t *R, int key, const void *v, size_t len)
{
    free(R->last[key]);
    R->last[key] = malloc(len + 1);
    assert_non_null(R->last[key]);
    if (len > 0) /* an empty value may come as NULL: memcpy(.., NULL, 0) is undefined */
        memcpy(R->last[key], v, len);
    R->lastlen[key] = len;
}

static void own_write(run_t *R, int key)
{
    if (R->inj_armed && R->inj_key == key)
        R->inj_armed = false; /* lostdelete: a write of our own in between, re-arm later */
}

/* Length of a register value: 0/1 byte up to several KiB. */
static size_t reg_len(run_t *R, size_t min)
{
    unsigned p = rndn(R, 100);
    size_t len;
    if (p < 4)
        len = rndn(R, 2);
    else if (p < 8)
        len = 2 + rndn(R, ST_HDR - 2);
    else if (p < 60)
        len = ST_HDR + rndn(R, 237);
    else if (p < 90)
        len = 257 + rndn(R, 768);
    else
        len = 1025 + rndn(R, (unsigned)(R->maxval - 1024));
    return len < min ? min : len;
}

static void make_value(unsigned char *buf, size_t len, int key, int w, uint32_t seq, uint32_t gen)
{
    if (len < ST_HDR)
        st_make_short(buf, len, key);
    else
        st_make_record(buf, len, key, w, seq, gen);
}

/* Log the absence of key (timeout, or compare_set saying it is missing). */
static void log_absent(run_t *R, int op, int key, double t0, double t1, int st, unsigned flags)
{
    int cls = st_class(key);
    int ev = cls == ST_CLS_C ? ST_EV_CREAD : cls == ST_CLS_A ? ST_EV_AREAD : ST_EV_READ;
    st_ent *e = ent(R, op, ev, key, t0, t1);
    e->st = (uint8_t)st;
    e->flags = (uint8_t)flags;
    if (cls == ST_CLS_R && R->inj_armed && R->inj_key == key) {
        /* lostdelete: log the value seen before our delete instead */
        e->st = ST_OK;
        e->flags = ST_F_VALID;
        e->w = (uint16_t)R->inj_rec.w;
        e->seq = R->inj_rec.seq;
        e->aux = R->inj_rec.gen;
        e->val = (int64_t)R->inj_len;
        R->inj_armed = false;
        R->inj_done = true;
    }
}

static void log_append_value(run_t *R, int op, int key, double t0, double t1, unsigned char *v,
                             size_t len)
{
    size_t need = len / ST_AREC_HDR + 1, nrec = 0;
    if (need > R->reccap) {
        R->reccap = 2 * need;
        R->recs = realloc(R->recs, R->reccap * sizeof *R->recs);
        assert_non_null(R->recs);
    }
    st_rec *rec = R->recs;
    int ok = st_decode_append(v, len, key, R->c.size, rec, &nrec);
    if (ok && can_inject(R, INJ_REORDER)) {
        for (size_t i = 0; i + 1 < nrec && !R->inj_done; i++)
            for (size_t j = i + 1; j < nrec; j++)
                if (rec[j].w == rec[i].w) { /* swap two records of one writer */
                    st_rec t = rec[i];
                    rec[i] = rec[j];
                    rec[j] = t;
                    R->inj_done = true;
                    break;
                }
    }
    st_ent *h = ent(R, op, ST_EV_AREAD, key, t0, t1);
    h->val = (int64_t)len;
    R->alen[key] = len;
    if (!ok)
        return; /* no ST_F_VALID: the checker reports it */
    h->flags = ST_F_VALID | ST_F_ORDER;
    /* per writer: records must be consecutive indexes in value order */
    int n = R->c.size;
    int64_t lo[n], hi[n];
    for (int w = 0; w < n; w++)
        lo[w] = hi[w] = -1;
    for (size_t i = 0; i < nrec; i++) {
        int w = rec[i].w;
        if (hi[w] < 0)
            lo[w] = rec[i].seq;
        else if (rec[i].seq != (uint64_t)hi[w] + 1)
            h->flags &= (uint8_t)~ST_F_ORDER;
        hi[w] = rec[i].seq;
    }
    for (int w = 0; w < n; w++)
        if (hi[w] >= 0) {
            st_ent *r = ent(R, op, ST_EV_AREC, key, t0, t1);
            r->w = (uint16_t)w;
            r->aux = (uint32_t)lo[w];
            r->seq = (uint32_t)hi[w];
        }
}

/* Decode and log a value read from key. */
static void log_value(run_t *R, int op, int key, double t0, double t1, unsigned char *v, size_t len,
                      unsigned flags)
{
    int cls = st_class(key);
    if (cls == ST_CLS_A) {
        log_append_value(R, op, key, t0, t1, v, len);
        return;
    }
    if (cls == ST_CLS_C) {
        st_ent *e = ent(R, op, ST_EV_CREAD, key, t0, t1);
        e->flags = (uint8_t)flags;
        int64_t x = 0;
        bool ok = len >= 1 && len <= 18;
        for (size_t i = 0; ok && i < len; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            x = 10 * x + (v[i] - '0');
        }
        if (ok) {
            e->flags |= ST_F_VALID;
            e->val = x;
            R->known |= 1u << key;
        } else {
            e->val = (int64_t)len;
        }
        return;
    }
    if (cls == ST_CLS_R && len >= ST_HDR + 8 && can_inject(R, INJ_TORN)) {
        v[ST_HDR + (len - ST_HDR) / 2] ^= 0x40; /* one flipped bit in the payload */
        R->inj_done = true;
    }
    st_ent *e = ent(R, op, ST_EV_READ, key, t0, t1);
    e->flags = (uint8_t)flags;
    e->val = (int64_t)len;
    st_rec r;
    int d = st_decode(v, len, key, &r);
    if (d == 1) {
        e->flags |= ST_F_VALID;
        e->w = (uint16_t)r.w;
        e->seq = r.seq;
        e->aux = r.gen;
    } else if (d == 2) {
        e->flags |= ST_F_VALID | ST_F_SHORT;
    }
    if (d)
        remember(R, key, v, len);
    if (d && cls == ST_CLS_T)
        R->known |= 1u << key;
    if (cls == ST_CLS_R && R->inj_armed && R->inj_key == key) {
        e->flags = ST_F_VALID;
        e->w = (uint16_t)R->inj_rec.w;
        e->seq = R->inj_rec.seq;
        e->aux = R->inj_rec.gen;
        e->val = (int64_t)R->inj_len;
        R->inj_armed = false;
        R->inj_done = true;
    }
}

static int pick(run_t *R, int first, int n)
{
    return first + (int)rndn(R, (unsigned)n);
}

/* n distinct keys from [first, first+count) */
static unsigned pick_keys(run_t *R, int first, int count, int n, const char **names, int *ids)
{
    unsigned mask = 0;
    for (int i = 0; i < n; i++) {
        int k;
        do
            k = pick(R, first, count);
        while (mask & (1u << k));
        mask |= 1u << k;
        ids[i] = k;
        names[i] = keyname[k];
    }
    return mask;
}

static bool all_known(run_t *R, unsigned mask)
{
    return (mask & ~R->known) == 0;
}

static void op_set(run_t *R)
{
    int k = pick(R, ST_K_R, ST_NR);
    size_t len = reg_len(R, 0);
    make_value(R->buf, len, k, R->c.rank, R->seq, 0);
    timeout_to(R, WRITE_TO);
    own_write(R, k);
    double t0 = MPI_Wtime();
    maybe_write(R, ST_OP_SET, k, R->seq, len, t0);
    int rc = mpistore_set(R->s, keyname[k], R->buf, len);
    double t1 = MPI_Wtime();
    if (settle(R, rc)) {
        R->seq++;
        return;
    }
    st_ent *e = ent(R, ST_OP_SET, ST_EV_WRITE, k, t0, t1);
    e->st = (uint8_t)outcome(R, rc, A_SPACE, "set", k);
    e->w = (uint16_t)R->c.rank;
    e->seq = R->seq++;
    e->val = (int64_t)len;
    if (len < ST_HDR)
        e->flags = ST_F_SHORT;
    if (e->st == ST_OK)
        remember(R, k, R->buf, len);
}

static void op_get(run_t *R)
{
    int k = pick(R, 0, ST_NK);
    bool lng = all_known(R, 1u << k);
    timeout_to(R, lng ? LONG_TO : short_timeout(R));
    void *v = NULL;
    size_t len = 0;
    double t0 = MPI_Wtime();
    int rc = mpistore_get(R->s, keyname[k], &v, &len);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return; /* (no value on failure) */
    int st = outcome(R, rc, A_TIMEOUT, "get", k);
    if (st == ST_OK)
        log_value(R, ST_OP_GET, k, t0, t1, v, len, lng ? ST_F_LONGTO : 0);
    else
        log_absent(R, ST_OP_GET, k, t0, t1, st, lng ? ST_F_LONGTO : 0);
    mpistore_free(v);
}

static void op_add(run_t *R)
{
    int k = pick(R, ST_K_C, ST_NC);
    int64_t delta = rndn(R, 10) == 0 ? 0 : 1, res = 0;
    timeout_to(R, WRITE_TO);
    double t0 = MPI_Wtime();
    maybe_ent(R, ST_OP_ADD, ST_EV_ADD, k, t0)->aux = (uint32_t)delta;
    int rc = mpistore_add(R->s, keyname[k], delta, &res);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    st_ent *e = ent(R, ST_OP_ADD, ST_EV_ADD, k, t0, t1);
    e->st = (uint8_t)outcome(R, rc, A_SPACE, "add", k);
    e->aux = (uint32_t)delta;
    if (e->st != ST_OK)
        return;
    e->val = res;
    R->known |= 1u << k;
    if (delta == 1 && res - 1 > R->lastadd[k] + 1 && can_inject(R, INJ_DUPADD)) {
        e->val = res - 1; /* claim a result some other add returned */
        R->inj_done = true;
    }
    if (delta == 1)
        R->lastadd[k] = res;
}

static void op_cas(run_t *R)
{
    bool token = rndn(R, 2) == 0;
    int k = token ? pick(R, ST_K_T, ST_NT) : pick(R, ST_K_R, ST_NR);
    const unsigned char *exp = R->last[k];
    size_t explen = R->last[k] ? R->lastlen[k] : 0;
    st_rec er = {ST_NONE, 0, 0};
    size_t len;
    if (token) {
        if (explen && st_decode(exp, explen, k, &er) != 1)
            er = (st_rec){ST_NONE, 0, 0};
        len = ST_HDR + rndn(R, 48);
        st_make_record(R->buf, len, k, R->c.rank, R->seq, er.gen + 1);
    } else {
        if (rndn(R, 5) == 0) {
            exp = (const unsigned char *)"nope!"; /* never stored by anyone */
            explen = 5;
        }
        len = reg_len(R, 1);
        if (len == explen && len < ST_HDR) /* a short desired must differ from expected */
            len = len + 1 < ST_HDR ? len + 1 : len - 1;
        make_value(R->buf, len, k, R->c.rank, R->seq, 0);
        own_write(R, k);
    }
    timeout_to(R, WRITE_TO);
    void *cur = NULL;
    size_t curlen = 0;
    double t0 = MPI_Wtime();
    st_ent *m = maybe_write(R, ST_OP_CAS, k, R->seq, len, t0);
    if (token) {
        m->aux = er.gen + 1;
        m->val = (int64_t)((uint64_t)(uint16_t)er.w << 32 | er.seq);
    }
    int rc = mpistore_compare_set(R->s, keyname[k], exp, explen, R->buf, len, &cur, &curlen);
    double t1 = MPI_Wtime();
    if (settle(R, rc)) {
        R->seq++;
        return; /* (no current value on failure) */
    }
    int st = outcome(R, rc, A_SPACE, "compare_set", k);
    bool won = st == ST_OK && curlen == len && memcmp(cur, R->buf, len) == 0;
    st_rec got;
    if (st == ST_OK && !won && token && can_inject(R, INJ_DUPCAS) &&
        st_decode(cur, curlen, k, &got) == 1 && got.gen == er.gen + 1) {
        won = true; /* claim the transition another rank won */
        R->inj_done = true;
    }
    if (st != ST_OK || won) {
        st_ent *e = ent(R, ST_OP_CAS, ST_EV_WRITE, k, t0, t1);
        e->st = (uint8_t)st;
        e->w = (uint16_t)R->c.rank;
        e->seq = R->seq;
        e->val = (int64_t)len;
        if (len < ST_HDR)
            e->flags = ST_F_SHORT;
        if (won) {
            e->flags |= ST_F_WON;
            R->n_won++;
            remember(R, k, R->buf, len);
        }
        if (token) {
            e->aux = er.gen + 1;
            e->val = (int64_t)((uint64_t)(uint16_t)er.w << 32 | er.seq);
            if (won)
                R->known |= 1u << k;
        }
    } else if (explen > 0 && curlen == explen && memcmp(cur, exp, explen) == 0) {
        log_absent(R, ST_OP_CAS, k, t0, t1, ST_ABSENT, ST_F_CASEXP);
    } else {
        log_value(R, ST_OP_CAS, k, t0, t1, cur, curlen, 0);
    }
    R->seq++;
    mpistore_free(cur);
}

static void op_delete_key(run_t *R, int k)
{
    timeout_to(R, WRITE_TO);
    bool del = false;
    double t0 = MPI_Wtime();
    int rc = mpistore_delete_key(R->s, keyname[k], &del);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return; /* it may have deleted the key: nothing to log, it requires nothing */
    st_ent *e = ent(R, ST_OP_DELETE, ST_EV_DELETE, k, t0, t1);
    e->st = (uint8_t)outcome(R, rc, 0, "delete_key", k);
    if (del) {
        e->flags = ST_F_TRUE;
        R->n_deleted++;
    }
    if (st_class(k) == ST_CLS_A)
        R->alen[k] = 0;
    st_rec r;
    if (st_class(k) == ST_CLS_R && can_inject(R, INJ_LOSTDEL) && R->last[k] &&
        st_decode(R->last[k], R->lastlen[k], k, &r) == 1) {
        R->inj_armed = true; /* the next read of k logs this old value */
        R->inj_key = k;
        R->inj_rec = r;
        R->inj_len = R->lastlen[k];
    }
}

static void op_delete(run_t *R)
{
    unsigned p = rndn(R, ST_NR + ST_NA);
    op_delete_key(R, p < ST_NR ? ST_K_R + (int)p : ST_K_A + (int)(p - ST_NR));
}

static void op_check(run_t *R)
{
    const char *names[4];
    int ids[4];
    int n = 1 + (int)rndn(R, 4);
    unsigned mask = pick_keys(R, 0, ST_NK, n, names, ids);
    timeout_to(R, WRITE_TO);
    bool all = false;
    double t0 = MPI_Wtime();
    int rc = mpistore_check(R->s, names, (size_t)n, &all);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    st_ent *e = ent(R, ST_OP_CHECK, ST_EV_CHECK, -1, t0, t1);
    e->st = (uint8_t)outcome(R, rc, 0, "check", ids[0]);
    e->val = mask;
    if (all)
        e->flags = ST_F_TRUE;
}

static void op_multi_get(run_t *R)
{
    const char *names[4];
    int ids[4];
    void *v[4] = {0};
    size_t lens[4];
    int n = 1 + (int)rndn(R, 4);
    unsigned mask = pick_keys(R, 0, ST_NK, n, names, ids);
    bool lng = all_known(R, mask);
    double to = lng ? LONG_TO : short_timeout(R);
    timeout_to(R, to);
    double t0 = MPI_Wtime();
    int rc = mpistore_multi_get(R->s, names, (size_t)n, v, lens);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    int st = outcome(R, rc, A_TIMEOUT, "multi_get", ids[0]);
    if (st != ST_OK) {
        st_ent *e = ent(R, ST_OP_MULTI_GET, ST_EV_WAIT, -1, t0, t1);
        e->st = (uint8_t)st;
        e->val = mask;
        e->aux = (uint32_t)(to * 1000);
        e->flags = lng ? ST_F_LONGTO : 0;
        return;
    }
    for (int i = 0; i < n; i++) {
        log_value(R, ST_OP_MULTI_GET, ids[i], t0, t1, v[i], lens[i], lng ? ST_F_LONGTO : 0);
        mpistore_free(v[i]);
    }
}

static void op_multi_set(run_t *R)
{
    const char *names[4];
    int ids[4];
    const void *vals[4];
    size_t lens[4];
    uint32_t seqs[4];
    int n = 1 + (int)rndn(R, 4);
    pick_keys(R, ST_K_R, ST_NR, n, names, ids);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        lens[i] = reg_len(R, 0) / 2; /* 4 values share the scratch buffer */
        seqs[i] = R->seq++;
        make_value(R->buf + off, lens[i], ids[i], R->c.rank, seqs[i], 0);
        vals[i] = R->buf + off;
        off += lens[i];
        own_write(R, ids[i]);
    }
    timeout_to(R, WRITE_TO);
    double t0 = MPI_Wtime();
    for (int i = 0; i < n; i++)
        maybe_write(R, ST_OP_MULTI_SET, ids[i], seqs[i], lens[i], t0);
    int rc = mpistore_multi_set(R->s, names, vals, lens, (size_t)n);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    int st = outcome(R, rc, A_SPACE, "multi_set", ids[0]);
    for (int i = 0; i < n; i++) {
        st_ent *e = ent(R, ST_OP_MULTI_SET, ST_EV_WRITE, ids[i], t0, t1);
        e->st = (uint8_t)st;
        e->w = (uint16_t)R->c.rank;
        e->seq = seqs[i];
        e->val = (int64_t)lens[i];
        e->flags = (uint8_t)((lens[i] < ST_HDR ? ST_F_SHORT : 0) | (st != ST_OK ? ST_F_MAYBE : 0));
        if (st == ST_OK)
            remember(R, ids[i], vals[i], lens[i]);
    }
}

static void op_append(run_t *R)
{
    int k = pick(R, ST_K_A, ST_NA);
    if (R->alen[k] > R->alimit && rndn(R, 2) == 0) {
        R->calls[ST_OP_APPEND]--;
        R->calls[ST_OP_DELETE]++;
        if (R->kill)
            R->kl.hdr->call = ST_OP_DELETE;
        op_delete_key(R, k); /* keep append values from growing without bound */
        return;
    }
    size_t len = 0;
    bool empty = rndn(R, 20) == 0;
    if (!empty)
        len =
            st_make_arec(R->buf, rndn(R, 8) ? rndn(R, 64) : rndn(R, 512), k, R->c.rank, R->aidx[k]);
    timeout_to(R, WRITE_TO);
    double t0 = MPI_Wtime();
    st_ent *m = maybe_ent(R, ST_OP_APPEND, ST_EV_APPEND, k, t0);
    m->w = (uint16_t)R->c.rank;
    m->val = (int64_t)len;
    m->seq = empty ? 0 : R->aidx[k];
    m->flags = (uint8_t)(ST_F_MAYBE | (empty ? ST_F_SHORT : 0));
    int rc = mpistore_append(R->s, keyname[k], R->buf, len);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    st_ent *e = ent(R, ST_OP_APPEND, ST_EV_APPEND, k, t0, t1);
    e->st = (uint8_t)outcome(R, rc, A_SPACE | A_TOOBIG, "append", k);
    e->w = (uint16_t)R->c.rank;
    e->val = (int64_t)len;
    if (empty)
        e->flags = ST_F_SHORT;
    else if (e->st == ST_OK)
        e->seq = R->aidx[k]++;
}

static void op_num_keys(run_t *R)
{
    int64_t n = -1;
    timeout_to(R, WRITE_TO);
    double t0 = MPI_Wtime();
    int rc = mpistore_num_keys(R->s, &n);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    st_ent *e = ent(R, ST_OP_NUM_KEYS, ST_EV_NUMKEYS, -1, t0, t1);
    e->st = (uint8_t)outcome(R, rc, 0, "num_keys", -1);
    e->val = n;
}

static void op_wait(run_t *R)
{
    const char *names[3];
    int ids[3];
    int n = 1 + (int)rndn(R, 3);
    unsigned mask = pick_keys(R, 0, ST_NK, n, names, ids);
    bool lng = all_known(R, mask);
    double to = lng ? LONG_TO : short_timeout(R);
    timeout_to(R, WRITE_TO);
    double t0 = MPI_Wtime();
    int rc = mpistore_wait(R->s, names, (size_t)n, to);
    double t1 = MPI_Wtime();
    if (settle(R, rc))
        return;
    st_ent *e = ent(R, ST_OP_WAIT, ST_EV_WAIT, -1, t0, t1);
    e->st = (uint8_t)outcome(R, rc, A_TIMEOUT, "wait", ids[0]);
    e->val = mask;
    e->aux = (uint32_t)(to * 1000);
    e->flags = lng ? ST_F_LONGTO : 0;
}

typedef void (*op_fn)(run_t *);
static const struct {
    int op;
    op_fn fn;
    unsigned weight;
} ops[] = {
    {ST_OP_SET, op_set, 12},
    {ST_OP_GET, op_get, 14},
    {ST_OP_ADD, op_add, 12},
    {ST_OP_CAS, op_cas, 12},
    {ST_OP_DELETE, op_delete, 5},
    {ST_OP_CHECK, op_check, 6},
    {ST_OP_MULTI_GET, op_multi_get, 8},
    {ST_OP_MULTI_SET, op_multi_set, 6},
    {ST_OP_APPEND, op_append, 12},
    {ST_OP_NUM_KEYS, op_num_keys, 4},
    {ST_OP_WAIT, op_wait, 6},
};

static void one_op(run_t *R)
{
    unsigned total = 0;
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        total += ops[i].weight;
    unsigned p = rndn(R, total);
    size_t i = 0;
    while (p >= ops[i].weight)
        p -= ops[i++].weight;
    R->calls[ops[i].op]++;
    R->ops++;
    if (R->kill && R->c.rank == R->victim) {
        int op = ops[i].op;
        stk_tick(op == ST_OP_SET || op == ST_OP_ADD || op == ST_OP_CAS || op == ST_OP_DELETE ||
                 op == ST_OP_MULTI_SET || op == ST_OP_APPEND);
    }
    if (R->kill)
        R->kl.hdr->call = ops[i].op;
    ops[i].fn(R);
    if (R->kill)
        R->kl.hdr->call = -1;
}

/* Gather every rank's log of one epoch to rank 0 and check it there. */
static void gather_check(run_t *R, st_global *g)
{
    int n = (int)R->log.n, size = R->c.size;
    int *counts = NULL, *bytes = NULL, *displs = NULL;
    st_ent *all = NULL, **logs = NULL;
    if (R->c.rank == 0) {
        counts = calloc((size_t)size, sizeof *counts);
        bytes = calloc((size_t)size, sizeof *bytes);
        displs = calloc((size_t)size, sizeof *displs);
        logs = calloc((size_t)size, sizeof *logs);
        assert_true(counts && bytes && displs && logs);
    }
    MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, R->comm);
    if (R->c.rank == 0) {
        size_t tot = 0;
        for (int r = 0; r < size; r++) {
            bytes[r] = counts[r] * (int)sizeof(st_ent);
            displs[r] = (int)(tot * sizeof(st_ent));
            tot += (size_t)counts[r];
        }
        all = malloc((tot + 1) * sizeof *all);
        assert_non_null(all);
        for (int r = 0; r < size; r++)
            logs[r] = all + displs[r] / (int)sizeof(st_ent);
    }
    MPI_Gatherv(R->log.e, n * (int)sizeof(st_ent), MPI_BYTE, all, bytes, displs, MPI_BYTE, 0,
                R->comm);
    if (R->c.rank == 0)
        st_check_global(g, &R->c, logs, counts);
    free(all);
    free(logs);
    free(counts);
    free(bytes);
    free(displs);
}

/* The kill variant, after the survivors' final reads: the lowest survivor
 * checks every rank's whole log, the run and the final reads, the dead
 * rank's from its file (with the writes of the call it died in, as maybe). */
static void kill_check(run_t *R, st_global *g, uint64_t job)
{
    int me = -1, size = R->c.size;
    MPI_Barrier(R->comm); /* every survivor's log is complete */
    MPI_Comm_rank(R->comm, &me);
    if (me != 0)
        return;
    stk_log *f = calloc((size_t)size, sizeof *f);
    st_ent **logs = calloc((size_t)size, sizeof *logs);
    int *counts = calloc((size_t)size, sizeof *counts);
    assert_true(f && logs && counts);
    for (int r = 0; r < size; r++) {
        if (stk_open(&f[r], job, r) != 0)
            fail_msg("stress kill: rank %d's log cannot be read", r);
        counts[r] = (int)(f[r].hdr->n + f[r].hdr->pending);
        logs[r] = f[r].e;
        st_ctx cr = R->c;
        cr.rank = r;
        st_local *l = st_local_new(&cr);
        st_log one = {f[r].e, (size_t)counts[r], f[r].cap};
        st_check_local(l, &cr, &one);
        st_local_free(l);
        if (r == R->victim)
            printf("stress kill: victim %d logged %llu entries and died %s%s with %llu "
                   "pending (its writes, maybe)\n",
                   r, (unsigned long long)f[r].hdr->n,
                   f[r].hdr->call >= 0 ? "inside a call of " : "between calls",
                   f[r].hdr->call >= 0 && f[r].hdr->call < ST_OP_COUNT ? st_op_names[f[r].hdr->call]
                                                                       : "",
                   (unsigned long long)f[r].hdr->pending);
    }
    st_check_global(g, &R->c, logs, counts);
    for (int r = 0; r < size; r++) {
        stk_unmap(&f[r]);
        if (r != R->c.rank)
            stk_remove(&f[r]); /* (this rank's own: at its end) */
    }
    free(f);
    free(logs);
    free(counts);
}

/* After the run: every rank reads every key; all must agree and match the
 * model; then a deletion sweep must remove each present key exactly once.
 * (The kill variant: the survivors, on the shrunk store.) */
static void final_phase(run_t *R, st_local *L, st_global *g, uint64_t job)
{
    st_ent fin[ST_NK];
    uint32_t dig[ST_NK];
    int me = -1, nr = 0;
    MPI_Comm_rank(R->comm, &me);
    MPI_Comm_size(R->comm, &nr);
    MPI_Barrier(R->comm); /* fixed point: every rank has stopped writing */
    if (!R->kill) {       /* (kill: the final reads go on the run's log, checked as one) */
        R->log.n = 0;
        R->c.epoch++;
    }
    for (int k = 0; k < ST_NK; k++) {
        bool lng = all_known(R, 1u << k);
        timeout_to(R, lng ? LONG_TO : 0.05);
        void *v = NULL;
        size_t len = 0, at = R->log.n;
        double t0 = MPI_Wtime();
        int rc = mpistore_get(R->s, keyname[k], &v, &len);
        double t1 = MPI_Wtime();
        int st = outcome(R, rc, A_TIMEOUT, "final get", k);
        if (st == ST_OK) {
            dig[k] = st_digest(v, len);
            log_value(R, ST_OP_FINAL, k, t0, t1, v, len, lng ? ST_F_LONGTO : 0);
        } else {
            dig[k] = 0;
            log_absent(R, ST_OP_FINAL, k, t0, t1, st, lng ? ST_F_LONGTO : 0);
        }
        fin[k] = R->log.e[at];
        mpistore_free(v);
    }
    if (R->kill) {
        kill_check(R, g, job);
    } else {
        st_check_local(L, &R->c, &R->log);
        gather_check(R, g);
    }
    st_ent *allfin = NULL;
    uint32_t *alldig = NULL;
    int present[ST_NK] = {0}, deleted[ST_NK] = {0}, total[ST_NK] = {0};
    if (me == 0) {
        allfin = malloc((size_t)nr * ST_NK * sizeof *allfin);
        alldig = malloc((size_t)nr * ST_NK * sizeof *alldig);
        assert_true(allfin && alldig);
    }
    MPI_Gather(fin, (int)sizeof fin, MPI_BYTE, allfin, (int)sizeof fin, MPI_BYTE, 0, R->comm);
    MPI_Gather(dig, ST_NK, MPI_UINT32_T, alldig, ST_NK, MPI_UINT32_T, 0, R->comm);
    if (me == 0) {
        st_ctx cf = R->c; /* the final reads of the ranks of R->comm */
        cf.size = nr;
        st_check_final(g, &cf, allfin, alldig, present);
    }
    free(allfin);
    free(alldig);

    /* deletion sweep: all ranks delete every key, in different orders */
    MPI_Barrier(R->comm);
    timeout_to(R, WRITE_TO);
    for (int i = 0; i < ST_NK; i++) {
        int k = (i + R->c.rank) % ST_NK;
        bool del = false;
        MT_OK(R->s, mpistore_delete_key(R->s, keyname[k], &del));
        deleted[k] = del;
    }
    MPI_Reduce(deleted, total, ST_NK, MPI_INT, MPI_SUM, 0, R->comm);
    if (me == 0)
        for (int k = 0; k < ST_NK; k++)
            if (total[k] != present[k])
                st_violation(&R->c, "delete",
                             "final sweep: key %s was %s after the run but %d ranks' "
                             "delete_key returned true",
                             keyname[k], present[k] ? "present" : "absent", total[k]);
    MPI_Barrier(R->comm);
    int64_t nk = -1;
    MT_OK(R->s, mpistore_num_keys(R->s, &nk));
    if (nk != 0)
        st_violation(&R->c, "delete", "num_keys() is %lld after the final deletion sweep",
                     (long long)nk);
    bool any = true;
    for (int k = 0; k < ST_NK; k++) {
        void *v = NULL;
        size_t len = 0;
        timeout_to(R, 0.01); /* the key is absent: get waits out its timeout */
        int rc = mpistore_get(R->s, keyname[k], &v, &len);
        if (rc != -MPISTORE_ETIMEDOUT)
            st_violation(&R->c, "delete", "get('%s') after the sweep -> %s (%zu bytes)", keyname[k],
                         mpistore_errname(rc), len);
        mpistore_free(v);
        /* check does not wait for the key, but its reads are bounded by
         * the handle's timeout too: on a busy machine the home rank may not
         * answer within 0.01 s (or the 0.5 s a request gets at least) */
        timeout_to(R, WRITE_TO);
        MT_OK(R->s, mpistore_check(R->s, &keyname[k], 1, &any));
        if (any)
            st_violation(&R->c, "delete", "check('%s') is true after the sweep", keyname[k]);
    }
    void *vals[ST_NK];
    size_t lens[ST_NK];
    timeout_to(R, 0.01);
    int rc = mpistore_multi_get(R->s, keyname, ST_NK, vals, lens);
    if (rc != -MPISTORE_ETIMEDOUT)
        st_violation(&R->c, "delete", "multi_get(all keys) after the sweep -> %s",
                     mpistore_errname(rc));
    st_fail(&R->c);
}

/* Rank 0 prints per-rank and total operation counts. */
static void report(run_t *R, double secs)
{
    enum { NC = ST_OP_COUNT + 7 };
    uint64_t mine[NC], *all = NULL;
    int me = -1, nr = 0;
    MPI_Comm_rank(R->comm, &me);
    MPI_Comm_size(R->comm, &nr);
    memcpy(mine, R->calls, sizeof R->calls);
    mine[ST_OP_COUNT] = R->ops;
    mine[ST_OP_COUNT + 1] = R->n_won;
    mine[ST_OP_COUNT + 2] = R->n_deleted;
    mine[ST_OP_COUNT + 3] = R->n_absent;
    mine[ST_OP_COUNT + 4] = R->n_busy;
    mine[ST_OP_COUNT + 5] = R->n_fail;
    mine[ST_OP_COUNT + 6] = R->n_dead;
    if (me == 0)
        all = calloc((size_t)nr * NC, sizeof *all);
    MPI_Gather(mine, NC, MPI_UINT64_T, all, NC, MPI_UINT64_T, 0, R->comm);
    if (me != 0)
        return;
    const char *ttl[NC] = {"set",    "get",       "add",       "cas",     "delete",
                           "check",  "multi_get", "multi_set", "append",  "num_keys",
                           "wait",   "final",     "total",     "cas_won", "deleted",
                           "absent", "busy",      "nospc",     "dead"};
    uint64_t sum[NC] = {0};
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int liblen = 0;
    MPI_Get_library_version(lib, &liblen);
    lib[strcspn(lib, ",\n")] = 0; /* first phrase: "Open MPI v4.1.4" / "MPICH Version: 4.0.2" */
    const char *osc = getenv("OMPI_MCA_osc");
    printf("stress variant %s, %d ranks, %.1f s, %s, osc=%s%s: operation counts\n",
           R->small     ? "small-store"
           : R->growing ? "growing-store"
           : R->kill    ? "kill (rows: the survivors)"
                        : "default",
           nr, secs, lib, osc ? osc : "default", mt_slow() ? " (MPISTORE_TEST_SLOW)" : "");
    printf("%6s", "rank");
    for (int i = 0; i < NC; i++)
        if (i != ST_OP_FINAL)
            printf(" %9s", ttl[i]);
    printf("\n");
    for (int r = 0; r <= nr; r++) {
        uint64_t *row = r < nr ? all + (size_t)r * NC : sum;
        if (r < nr)
            printf("%6d", r);
        else
            printf("%6s", "total");
        for (int i = 0; i < NC; i++) {
            if (r < nr)
                sum[i] += row[i];
            if (i != ST_OP_FINAL)
                printf(" %9llu", (unsigned long long)row[i]);
        }
        printf("\n");
    }
    printf("stress totals: %llu ops in %.1f s = %.0f ops/s over %d ranks\n",
           (unsigned long long)sum[ST_OP_COUNT], secs, (double)sum[ST_OP_COUNT] / secs, nr);
    fflush(stdout);
    free(all);
}

/* Variant 2: a fresh one-element queue no model operation touches (an
 * internal key: num_keys and list_keys do not see it; checked at once), so
 * that index levels and arena segments are created while the model's keys
 * are read and written. */
static void fill_one(run_t *R)
{
    char key[48], val[96];
    int64_t n = -1;
    snprintf(key, sizeof key, "fill/%d/%ld", R->c.rank, R->fills);
    int len = snprintf(val, sizeof val, "filler %d %ld %.40s", R->c.rank, R->fills,
                       "........................................");
    timeout_to(R, WRITE_TO); /* the last model operation may have left a tiny one */
    int rc = mpistore_queue_push(R->s, key, val, (size_t)len);
    if (rc == 0)
        rc = mpistore_queue_len(R->s, key, &n);
    if (rc)
        fail_msg("stress rank %d seed %llu growing store: filler '%s' -> %s: %s", R->c.rank,
                 (unsigned long long)R->c.seed, key, mpistore_errname(rc), mpistore_errmsg(R->s));
    if (n != 1)
        fail_msg("stress rank %d: filler queue '%s' has %lld elements, not 1", R->c.rank, key,
                 (long long)n);
    R->fills++;
}

static double env_double(const char *name, double dflt)
{
    const char *s = getenv(name);
    return s && *s ? atof(s) : dflt;
}

#ifdef MPISTORE_HAVE_ULFM
/* An MPI call on the survivors' communicator failed (a survivor died: its
 * check failed): this rank ends now, said on stderr. */
static void survivors_failed(MPI_Comm *comm, int *code, ...)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    (void)comm;
    MPI_Error_string(*code, msg, &len);
    fprintf(stderr,
            "stress kill: rank %d: an MPI call among the survivors failed (%s): this rank ends\n",
            mt_rank, msg);
    fflush(NULL);
    _exit(1);
}
#endif

/* The kill variant after the run: the victim dies (if it has not died
 * inside a call yet); each survivor waits until MPI reports the death, then
 * all shrink the store (replicas = 1: no key may be lost) and MPI_COMM_WORLD
 * for the checks.  Returns the global checker's state on the lowest survivor. */
static st_global *kill_recover(run_t *R)
{
    if (R->c.rank == R->victim)
        stk_die_now();
    if (!stk_await_death(R->s, R->victim, 60))
        fail_msg("stress kill: rank %d: MPI has not reported rank %d dead after 60 s", R->c.rank,
                 R->victim);
    mpistore_t *ns = NULL;
    size_t lost = 0;
    double t0 = MPI_Wtime();
    int rc = mpistore_shrink(&ns, R->s, &lost);
    double took = MPI_Wtime() - t0;
    if (rc != 0)
        fail_msg("stress kill: rank %d: mpistore_shrink -> %s: %s", R->c.rank, mpistore_errname(rc),
                 mpistore_errmsg(R->s));
    if (lost != 0 && R->replicas)
        st_violation(&R->c, "lost", "mpistore_shrink lost %zu keys with replicas = 1", lost);
    int me = -1, nc = 0, nr = -1, ns_size = 0;
#ifdef MPISTORE_HAVE_ULFM
    MPI_Comm comm = MPI_COMM_NULL;
    if (MPIX_Comm_shrink(MPI_COMM_WORLD, &comm) != MPI_SUCCESS)
        fail_msg("stress kill: rank %d: MPIX_Comm_shrink failed", R->c.rank);
    R->comm = comm;
    /* a survivor that fails from here on ends, and so do the others at
     * their next call on comm: they must not go on to "all passed" without
     * it (MPI_ERRORS_ARE_FATAL was seen to leave the job hanging in its
     * abort under --with-ft ulfm, 1 run in 15) */
    MPI_Errhandler eh;
    MPI_Comm_create_errhandler(survivors_failed, &eh);
    MPI_Comm_set_errhandler(comm, eh);
    MPI_Errhandler_free(&eh);
#endif
    MPI_Comm_rank(R->comm, &me);
    MPI_Comm_size(R->comm, &nc);
    mpistore_rank(ns, &nr, &ns_size);
    if (nr != me || ns_size != nc || nc != R->c.size - 1)
        fail_msg("stress kill: rank %d: the shrunk store is rank %d of %d, MPI's shrunk "
                 "communicator rank %d of %d",
                 R->c.rank, nr, ns_size, me, nc);
    mpistore_close(R->s); /* (the old handle can only be closed) */
    R->s = ns;
    if (me == 0)
        printf("stress kill: victim %d died; %d survivors shrank the store in %.3f s, "
               "replicas %d, lost_keys %zu\n",
               R->victim, nc, took, R->replicas, lost);
    return me == 0 ? st_global_new(&R->c) : NULL;
}

/* The kill variant's run: until STRESS_SECONDS pass, a call fails with
 * EPROCFAILED, or MPI reports the death (looked at every 8 calls); the
 * victim dies at a random MPI_Win_flush after a random 15-75 % of the run. */
static void kill_run(run_t *R, double start, double secs)
{
    if (R->c.rank == R->victim)
        stk_plan_death(start + secs * (0.15 + 0.6 * (double)rndn(R, 1000) / 1000), rnd(R));
    /* room for one call (at most 3 entries per rank + 4) and the final
     * reads (16 keys, an append read up to 1 + ranks entries) */
    size_t margin = 64 + 8 * ((size_t)R->c.size + 1);
    while (MPI_Wtime() < start + secs && R->log.n + margin < R->log.cap && !R->stop) {
        if (R->c.rank == R->victim && R->log.n > R->log.cap / 4 * 3)
            stk_plan_death(0, rnd(R)); /* a fast machine: die before the log is full */
        one_op(R);
        if (R->c.rank != R->victim && R->ops % 8 == 0 && stk_victim_known(R->s, R->victim))
            break;
    }
}

static void run_variant(int variant)
{
    const char *only = getenv("STRESS_VARIANTS");
    if (only && *only && !strchr(only, '0' + variant))
        skip();
    if ((stk_victim() >= 0) != (variant == 3))
        skip(); /* STRESS_KILL: the kill variant alone; without it, not that one */
#ifndef MPISTORE_HAVE_ULFM
    if (variant == 3)
        fail_msg("STRESS_KILL: this MPI has no fault-tolerance extension (ULFM)");
#endif
    run_t *R = calloc(1, sizeof *R);
    assert_non_null(R);
    R->comm = MPI_COMM_WORLD;
    R->kill = variant == 3;
    R->victim = stk_victim();
    if (R->kill && (R->victim < 0 || R->victim >= mt_size || mt_size < 3))
        fail_msg("STRESS_KILL=%d: needs 3 or more ranks and a victim below %d", R->victim, mt_size);
    R->c.rank = mt_rank;
    R->c.size = mt_size;
    R->c.variant = variant;
    R->small = variant == 1;
    R->growing = variant == 2;
    R->maxval = R->small ? 4096 : 6144;
    /* half of max_value_len (8192 in the small and growing variants) */
    R->alimit = R->small || R->growing ? 4096 : 16384;

    uint64_t seed = 0;
    if (mt_rank == 0) {
        const char *s = getenv("STRESS_SEED");
        seed = s && *s ? strtoull(s, NULL, 0)
                       : st_mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
    }
    MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    R->c.seed = seed;
    R->rng = st_mix(seed ^ st_mix((uint64_t)(mt_rank * 2 + variant + 1)));
    const char *inj = getenv("STRESS_INJECT");
    R->c.inject = inj ? inj : "";
    for (int i = 1; i < (int)(sizeof inj_names / sizeof inj_names[0]); i++)
        if (inj && strcmp(inj, inj_names[i]) == 0)
            R->inj = i;
    if (inj && *inj && !R->inj)
        fail_msg("STRESS_INJECT=%s: unknown (torn|dupadd|lostdelete|dupcas|reorder)", inj);
    if (variant != 0 || mt_rank != (mt_size > 1 ? 1 : 0))
        R->inj = INJ_NONE; /* one liar: rank 1, default store */
    double secs = env_double("STRESS_SECONDS", 3.0);
    if (mt_rank == 0)
        printf("stress variant %s: seed=%llu (STRESS_SEED=%llu reproduces each rank's "
               "operation sequence) ranks=%d seconds=%.1f inject=%s\n",
               R->small     ? "small-store"
               : R->growing ? "growing-store"
               : R->kill    ? "kill"
                            : "default",
               (unsigned long long)seed, (unsigned long long)seed, mt_size, secs,
               R->c.inject[0] ? R->c.inject : "none");
    fflush(stdout);

    mpistore_options_t o;
    mpistore_options_init(&o);
    if (R->small) { /* the allocator's reclamation path runs all the time */
        o.keys_per_rank = ST_NK;
        o.bytes_per_rank = 16 * 1024;
        o.max_value_len = 8192;
        o.max_keys_per_rank = ST_NK; /* no growth: the fixed sizes and ENOSPC */
        o.max_bytes_per_rank = 16 * 1024;
    }
    if (R->growing) { /* index levels and arena segments grow under the model's
                       * operations; ENOSPC is a bug here */
        o.keys_per_rank = 2;
        o.bytes_per_rank = 256;
        o.max_value_len = 8192;
    }
    uint64_t job = 0;
    if (R->kill) { /* logs in files that outlive their rank; errors returned */
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        const char *rep = getenv("STRESS_KILL_REPLICAS");
        R->replicas = rep && strcmp(rep, "0") == 0 ? 0 : 1;
        o.replicas = R->replicas;
        job = stk_job_id();
        stk_create(&R->kl, job, mt_rank, EPOCH_CAP);
        R->log.e = R->kl.e;
        R->log.cap = R->kl.cap;
    }
    R->s = mt_open(&o);
    R->buf = malloc(4 * 8192 + 64);
    assert_non_null(R->buf);
    for (int k = 0; k < ST_NK; k++)
        keyname[k] = st_key_name(k);

    st_local *L = st_local_new(&R->c);
    st_global *g = mt_rank == 0 && !R->kill ? st_global_new(&R->c) : NULL;
    mt_barrier();
    double start = MPI_Wtime(), elapsed = 0;
    if (R->kill) {
        kill_run(R, start, secs);
        elapsed = MPI_Wtime() - start;
        g = kill_recover(R);
    }
    for (int cont = !R->kill; cont;) {
        R->log.n = 0;
        double end = MPI_Wtime() + (secs < EPOCH_S ? secs : EPOCH_S);
        size_t margin = 16 + 4 * ((size_t)mt_size + 1);
        while (MPI_Wtime() < end && R->log.n + margin < EPOCH_CAP) {
            one_op(R);
            if (R->growing && R->fills < 600 && (st_mix(R->rng + (uint64_t)R->fills) & 3) == 0)
                fill_one(R); /* a fresh key, outside the model: the index keeps growing */
        }
        st_check_local(L, &R->c, &R->log);
        gather_check(R, g);
        elapsed = MPI_Wtime() - start;
        cont = elapsed < secs;
        if (variant == 0 && R->c.inject[0] && mt_size > 1) {
            /* A run that must catch an injected lie goes on until the lie
             * was told: on a busy machine the liar may not reach
             * INJECT_AFTER operations in STRESS_SECONDS (ctest's TIMEOUT
             * bounds the run). */
            int fired = R->inj_done;
            MPI_Allreduce(MPI_IN_PLACE, &fired, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
            cont = cont || !fired;
        }
        MPI_Bcast(&cont, 1, MPI_INT, 0, MPI_COMM_WORLD); /* rank 0's clock decides */
        R->c.epoch++;
    }
    final_phase(R, L, g, job);
    report(R, elapsed);
    if (R->kill) {
        /* no collective over MPI_COMM_WORLD any more, no MPI_Finalize
         * after a death (docs/testing.md, "Rank failures"): the verdict,
         * then _exit */
        int me = -1;
        MPI_Comm_rank(R->comm, &me);
        MPI_Barrier(R->comm);
        if (me == 0)
            printf("stress kill: victim %d, %d ranks, seed %llu: all passed\n", R->victim,
                   R->c.size, (unsigned long long)R->c.seed);
        fflush(NULL);
        MPI_Barrier(R->comm);
        mpistore_close(R->s);
        stk_unmap(&R->kl);
        stk_remove(&R->kl);
        _exit(0);
    }
    int injected = R->inj_done, any = 0;
    MPI_Allreduce(&injected, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (variant == 0 && R->c.inject[0] && mt_size > 1) {
        /* reaching this point means the checker missed the lie */
        fail_msg("STRESS_INJECT=%s: fault %s but no check caught it", R->c.inject,
                 any ? "injected" : "never triggered");
    }
    st_local_free(L);
    st_global_free(g);
    mt_close(R->s);
    for (int k = 0; k < ST_NK; k++)
        free(R->last[k]);
    free(R->log.e);
    free(R->buf);
    free(R->recs);
    free(R);
}

static void stress_default_store(void **state)
{
    (void)state;
    run_variant(0);
}

static void stress_small_store(void **state)
{
    (void)state;
    run_variant(1);
}

static void stress_growing_store(void **state)
{
    (void)state;
    run_variant(2);
}

static void stress_kill_replicas(void **state)
{
    (void)state;
    run_variant(3);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(stress_default_store),
    cmocka_unit_test(stress_small_store),
    cmocka_unit_test(stress_growing_store),
    cmocka_unit_test(stress_kill_replicas),
};

MT_MAIN("stress_model", tests)
