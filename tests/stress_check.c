/* Checker of the model-based stress test: self-describing values, and the
 * replay of the logs against what a linearizable store may return.
 *
 * Local (per rank, program order = real-time order of that rank's calls):
 *  - every value read is whole and self-consistent (no torn value);
 *  - registers: a rank never sees writer w's record s after it saw a newer
 *    record of w, nor after it saw the key hold anything else (records are
 *    unique, so an overwritten record never comes back), nor after its own
 *    delete_key or a read that found the key missing;
 *  - appends: each writer's records appear in program order without gaps; a
 *    writer's records seen once stay (only a delete removes them, and then
 *    they never come back);
 *  - counters: what a rank sees never decreases; its own +1 returns more
 *    than anything it saw before; tokens: the chain generation never goes back;
 *  - counter and token keys, once seen, exist: check() is true, get/wait with
 *    the long timeout do not time out; num_keys() is at least their number.
 * Global (rank 0, all logs of an epoch):
 *  - every value read was written by the rank and sequence number it names,
 *    to that key, by a call that did not fail (an append record: appended);
 *  - the +1 results of a counter are all distinct; after the run they are
 *    exactly 1..N and the counter holds N;
 *  - the compare_set chain of a token key: one winner per generation, each
 *    win's expected value is the previous win; the key ends on the last win;
 *  - no key was deleted (delete_key true) more often than it was written;
 *  - after the run all ranks read the same bytes for every key.
 * A call that ended with EPROCFAILED, or inside which its rank died (the
 * kill variant: status ST_DEAD), observed nothing, and a write of it may or
 * may not have happened (it was its rank's last call): its record may be
 * read, its +1 may be in a counter's final value without having returned a
 * claim, its append record may be the writer's last, its compare_set may be
 * a link of the token chain (or its end); nothing requires any of them. */
#include "mpitest.h"
#include "stress_model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const st_op_names[ST_OP_COUNT] = {"set",        "get",      "add",       "compare_set",
                                              "delete_key", "check",    "multi_get", "multi_set",
                                              "append",     "num_keys", "wait",      "final_get"};
static const char *const ev_names[ST_EV_COUNT] = {
    "write",       "read",   "add",   "counter-read", "append",  "append-read",
    "append-recs", "delete", "check", "wait",         "num_keys"};
static const char *const st_names[] = {"ok", "absent(timeout waiting for the key)",
                                       "failed(nospc/toobig)", "busy(timeout: key kept changing)",
                                       "dead(EPROCFAILED or died inside: maybe)"};

int st_class(int key)
{
    return key < ST_K_T ? ST_CLS_C : key < ST_K_R ? ST_CLS_T : key < ST_K_A ? ST_CLS_R : ST_CLS_A;
}

const char *st_key_name(int key)
{
    static const char *const names[ST_NK] = {"c0", "c1", "c2", "t0", "t1", "r0", "r1", "r2",
                                             "r3", "r4", "r5", "r6", "r7", "a0", "a1", "a2"};
    return key >= 0 && key < ST_NK ? names[key] : "-";
}

uint64_t st_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint32_t st_digest(const void *v, size_t len)
{
    const unsigned char *p = v;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h ^ (uint32_t)len ^ 0x80000000u; /* never 0: 0 stands for absent */
}

/* ---- self-describing values ---- */

static void put32(unsigned char *p, uint32_t x)
{
    memcpy(p, &x, 4);
}
static uint32_t get32(const unsigned char *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}
static void put16(unsigned char *p, uint16_t x)
{
    memcpy(p, &x, 2);
}
static uint16_t get16(const unsigned char *p)
{
    uint16_t x;
    memcpy(&x, p, 2);
    return x;
}

/* Pattern bytes derived from a seed; 0 if p differs from it (check) */
static int pattern(unsigned char *p, size_t n, uint64_t seed, bool check)
{
    for (size_t i = 0; i < n; i += 8) {
        seed += 0x9E3779B97F4A7C15ull;
        uint64_t x = st_mix(seed);
        size_t m = n - i < 8 ? n - i : 8;
        if (check) {
            if (memcmp(p + i, &x, m) != 0)
                return 0;
        } else {
            memcpy(p + i, &x, m);
        }
    }
    return 1;
}

static uint64_t rec_seed(int key, int w, uint32_t seq, uint32_t gen, size_t len)
{
    return st_mix(((uint64_t)key << 56 | (uint64_t)(uint16_t)w << 32 | seq) ^
                  st_mix((uint64_t)gen << 32 ^ len));
}

void st_make_record(unsigned char *buf, size_t len, int key, int w, uint32_t seq, uint32_t gen)
{
    put32(buf, ST_MAGIC);
    buf[4] = (unsigned char)key;
    buf[5] = 0;
    put16(buf + 6, (uint16_t)w);
    put32(buf + 8, seq);
    put32(buf + 12, (uint32_t)len);
    put32(buf + 16, gen);
    pattern(buf + ST_HDR, len - ST_HDR, rec_seed(key, w, seq, gen, len), false);
}

void st_make_short(unsigned char *buf, size_t len, int key)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(0x5A + 37 * i + 11 * (size_t)key + 3 * len);
}

int st_decode(const unsigned char *v, size_t len, int key, st_rec *r)
{
    if (len < ST_HDR) {
        for (size_t i = 0; i < len; i++)
            if (v[i] != (unsigned char)(0x5A + 37 * i + 11 * (size_t)key + 3 * len))
                return 0;
        return 2;
    }
    if (get32(v) != ST_MAGIC || v[4] != key || v[5] != 0 || get32(v + 12) != len)
        return 0;
    int w = get16(v + 6);
    uint32_t seq = get32(v + 8), gen = get32(v + 16);
    if (!pattern((unsigned char *)(uintptr_t)(v + ST_HDR), len - ST_HDR,
                 rec_seed(key, w, seq, gen, len), true))
        return 0;
    r->w = w;
    r->seq = seq;
    r->gen = gen;
    return 1;
}

static uint64_t arec_seed(int key, int w, uint32_t idx, size_t plen)
{
    return st_mix(0xA11E ^ ((uint64_t)key << 56 | (uint64_t)(uint16_t)w << 32 | idx) ^
                  st_mix(plen + 7));
}

size_t st_make_arec(unsigned char *buf, size_t plen, int key, int w, uint32_t idx)
{
    buf[0] = 'A';
    buf[1] = (unsigned char)key;
    put16(buf + 2, (uint16_t)w);
    put32(buf + 4, idx);
    put16(buf + 8, (uint16_t)plen);
    pattern(buf + 10, plen, arec_seed(key, w, idx, plen), false);
    buf[10 + plen] = 'Z';
    return ST_AREC_HDR + plen;
}

int st_decode_append(const unsigned char *v, size_t len, int key, int nranks, st_rec *recs,
                     size_t *nrec)
{
    size_t pos = 0, n = 0;
    while (pos < len) {
        const unsigned char *p = v + pos;
        if (len - pos < ST_AREC_HDR || p[0] != 'A' || p[1] != key)
            return 0;
        int w = get16(p + 2);
        uint32_t idx = get32(p + 4);
        size_t plen = get16(p + 8);
        if (w >= nranks || len - pos < ST_AREC_HDR + plen || p[10 + plen] != 'Z' ||
            !pattern((unsigned char *)(uintptr_t)(p + 10), plen, arec_seed(key, w, idx, plen),
                     true))
            return 0;
        recs[n].w = w;
        recs[n].seq = idx;
        recs[n].gen = 0;
        n++;
        pos += ST_AREC_HDR + plen;
    }
    *nrec = n;
    return 1;
}

/* ---- reporting ---- */

static int nviol;

void st_print_ent(const char *prefix, int rank, const st_ent *e)
{
    char fl[96] = "";
    static const char *const fn[] = {"VALID", "SHORT", "WON",    "TRUE",
                                     "MAYBE", "ORDER", "LONGTO", "CAS-GOT-EXPECTED"};
    for (int i = 0; i < 8; i++)
        if (e->flags & (1 << i)) {
            strcat(fl, fl[0] ? "|" : "");
            strcat(fl, fn[i]);
        }
    fprintf(stderr,
            "  %s rank %d: %s -> %s key=%s status=%s writer=%d seq=%u aux=%u val=%lld "
            "flags=%s t=[%.6f, %.6f]\n",
            prefix, rank, e->op < ST_OP_COUNT ? st_op_names[e->op] : "?",
            e->ev < ST_EV_COUNT ? ev_names[e->ev] : "?", st_key_name(e->key),
            e->st <= ST_DEAD ? st_names[e->st] : "?", e->w == ST_NONE ? -1 : (int)e->w, e->seq,
            e->aux, (long long)e->val, fl[0] ? fl : "-", e->t0, e->t1);
}

void st_violation(const st_ctx *c, const char *name, const char *fmt, ...)
{
    nviol++;
    if (nviol > 20)
        return;
    va_list ap;
    fprintf(stderr,
            "STRESS VIOLATION [%s] (rank %d, seed %llu, %d ranks, %s store, epoch %d): ", name,
            c->rank, (unsigned long long)c->seed, c->size,
            c->variant == 1   ? "small"
            : c->variant == 2 ? "growing"
            : c->variant == 3 ? "kill"
                              : "default",
            c->epoch);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void st_fail(const st_ctx *c)
{
    if (nviol == 0)
        return;
    fflush(stderr);
    fail_msg("stress: %d violation(s) of the store model on rank %d (seed %llu); see above", nviol,
             c->rank, (unsigned long long)c->seed);
}

/* ---- local check ---- */

enum { WHY_NONE, WHY_OVERWRITTEN, WHY_ABSENT, WHY_VANISHED, WHY_DELETED };
static const char *const why_names[] = {
    "", "it saw the key hold another value since", "it saw the key missing since",
    "it saw the writer's records gone since", "it deleted the key since"};

struct st_local {
    int size;
    int64_t *seen;   /* [key][writer]: last seq / append index seen, -1 none */
    uint8_t *why;    /* [key][writer]: why it must now be newer (WHY_*) */
    st_ent *seen_at; /* the entries behind seen and why */
    st_ent *why_at;
    int64_t floor[ST_NK]; /* counters: value; tokens: generation; -1 none */
    st_ent floor_at[ST_NK];
    unsigned known; /* counter/token keys seen to exist */
    st_ent known_at[ST_NK];
};

st_local *st_local_new(const st_ctx *c)
{
    st_local *l = calloc(1, sizeof *l);
    size_t n = (size_t)ST_NK * (size_t)c->size;
    assert_non_null(l);
    l->size = c->size;
    l->seen = malloc(n * sizeof *l->seen);
    l->why = calloc(n, 1);
    l->seen_at = calloc(n, sizeof *l->seen_at);
    l->why_at = calloc(n, sizeof *l->why_at);
    assert_true(l->seen && l->why && l->seen_at && l->why_at);
    for (size_t i = 0; i < n; i++)
        l->seen[i] = -1;
    for (int k = 0; k < ST_NK; k++)
        l->floor[k] = -1;
    return l;
}

void st_local_free(st_local *l)
{
    if (!l)
        return;
    free(l->seen);
    free(l->why);
    free(l->seen_at);
    free(l->why_at);
    free(l);
}

/* After e, no record of key seen so far may come back (for writer `except`, records
 * up to the one seen may still be current). */
static void all_must_be_newer(st_local *l, int key, int except, int why, const st_ent *e)
{
    for (int w = 0; w < l->size; w++) {
        size_t i = (size_t)key * (size_t)l->size + (size_t)w;
        if (w == except || l->seen[i] < 0)
            continue;
        if (l->why[i] == WHY_NONE || why == WHY_DELETED) {
            l->why[i] = (uint8_t)why;
            l->why_at[i] = *e;
        }
    }
}

static void stale(st_local *l, const st_ctx *c, size_t i, const st_ent *e, const char *what)
{
    bool del = l->why[i] == WHY_DELETED;
    st_violation(c, del ? "deleted-reappeared" : "stale", "%s%s%s", what, l->why[i] ? ": " : "",
                 why_names[l->why[i]]);
    st_print_ent("seen before:", c->rank, &l->seen_at[i]);
    if (l->why[i])
        st_print_ent("since then: ", c->rank, &l->why_at[i]);
    st_print_ent("offending:  ", c->rank, e);
}

/* Register key: the rank sees (or wrote) record seq of writer w. */
static void reg_seen(st_local *l, const st_ctx *c, const st_ent *e, int w, uint32_t seq)
{
    size_t i = (size_t)e->key * (size_t)l->size + (size_t)w;
    if (l->seen[i] >= 0) {
        if (l->why[i] != WHY_NONE && (int64_t)seq <= l->seen[i])
            stale(l, c, i, e, "a register record came back");
        else if ((int64_t)seq < l->seen[i])
            stale(l, c, i, e, "an older record of the same writer after a newer one");
    }
    l->seen[i] = seq;
    l->seen_at[i] = *e;
    l->why[i] = WHY_NONE;
    all_must_be_newer(l, e->key, w, WHY_OVERWRITTEN, e);
}

static void torn(const st_ctx *c, const st_ent *e, const char *what)
{
    st_violation(c, "torn", "%s", what);
    st_print_ent("offending:", c->rank, e);
}

static void know(st_local *l, int key, const st_ent *e)
{
    if (!(l->known & (1u << key)))
        l->known_at[key] = *e;
    l->known |= 1u << key;
}

static void presence(st_local *l, const st_ctx *c, const st_ent *e, unsigned mask, const char *what)
{
    st_violation(c, "presence", "%s, although every key named was seen to exist before", what);
    for (int k = 0; k < ST_NK; k++)
        if (mask & (1u << k))
            st_print_ent("seen to exist:", c->rank, &l->known_at[k]);
    st_print_ent("offending:    ", c->rank, e);
}

/* A read of keys known to exist timed out because they kept changing under
 * its validation for the whole (long) timeout: a liveness failure. */
static void starved(st_local *l, const st_ctx *c, const st_ent *e, unsigned mask)
{
    st_violation(
        c, "starved", "a read of keys known to exist timed out after %s because they kept changing",
        (e->flags & ST_F_LONGTO) || e->aux >= 1000 ? "the long timeout" : "a short timeout");
    for (int k = 0; k < ST_NK; k++)
        if (mask & (1u << k))
            st_print_ent("seen to exist:", c->rank, &l->known_at[k]);
    st_print_ent("offending:    ", c->rank, e);
}

static void floor_seen(st_local *l, const st_ctx *c, const st_ent *e, int64_t v, bool strict,
                       const char *what)
{
    int k = e->key;
    if (l->floor[k] >= 0 && (strict ? v <= l->floor[k] : v < l->floor[k])) {
        st_violation(c, st_class(k) == ST_CLS_C && e->ev == ST_EV_ADD ? "counter" : "stale",
                     "%s %lld after this rank saw %lld", what, (long long)v,
                     (long long)l->floor[k]);
        st_print_ent("seen before:", c->rank, &l->floor_at[k]);
        st_print_ent("offending:  ", c->rank, e);
    }
    l->floor[k] = v;
    l->floor_at[k] = *e;
    know(l, k, e);
}

/* An append value and its per-writer record ranges e[1..nrec]. */
static void append_seen(st_local *l, const st_ctx *c, const st_ent *h, const st_ent *r, size_t nr)
{
    if (!(h->flags & ST_F_VALID)) {
        torn(c, h, "an append value that is not a concatenation of whole records");
        return;
    }
    if (!(h->flags & ST_F_ORDER)) {
        st_violation(c, "append",
                     "an append value whose records of one writer are out of program order "
                     "or have a gap");
        st_print_ent("offending:", c->rank, h);
        for (size_t j = 0; j < nr; j++)
            st_print_ent("  records:", c->rank, &r[j]);
    }
    for (int w = 0; w < l->size; w++) {
        size_t i = (size_t)h->key * (size_t)l->size + (size_t)w;
        const st_ent *p = NULL;
        for (size_t j = 0; j < nr; j++)
            if (r[j].w == w)
                p = &r[j];
        if (!p) {
            if (l->seen[i] >= 0 && l->why[i] == WHY_NONE) {
                l->why[i] = WHY_VANISHED;
                l->why_at[i] = *h;
            }
            continue;
        }
        if (l->seen[i] >= 0) {
            if (l->why[i] != WHY_NONE && (int64_t)p->aux <= l->seen[i])
                stale(l, c, i, p, "appended records came back");
            else if (l->why[i] == WHY_NONE && (int64_t)p->seq < l->seen[i])
                stale(l, c, i, p, "appended records were lost (no delete seen)");
        }
        l->seen[i] = p->seq;
        l->seen_at[i] = *p;
        l->why[i] = WHY_NONE;
    }
}

static int popcount(unsigned x)
{
    int n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

void st_check_local(st_local *l, const st_ctx *c, const st_log *log)
{
    for (size_t i = 0; i < log->n; i++) {
        const st_ent *e = &log->e[i];
        int k = e->key, cls = st_class(k);
        unsigned mask = (unsigned)e->val;
        if (e->st == ST_DEAD)
            continue; /* saw nothing; its write may not have happened */
        switch (e->ev) {
        case ST_EV_WRITE:
            if (e->st != ST_OK || (e->flags & ST_F_MAYBE))
                break;
            if (cls == ST_CLS_T) {
                floor_seen(l, c, e, e->aux, true, "own compare_set win of generation");
            } else if (e->flags & ST_F_SHORT) {
                all_must_be_newer(l, k, -1, WHY_OVERWRITTEN, e);
            } else {
                reg_seen(l, c, e, e->w, e->seq);
            }
            break;
        case ST_EV_READ:
            if (e->st == ST_BUSY) {
                if (l->known & (1u << k))
                    starved(l, c, e, 1u << k);
            } else if (e->st == ST_ABSENT) {
                if (cls == ST_CLS_T && (l->known & (1u << k)))
                    presence(l, c, e, 1u << k, "a token key read as missing");
                all_must_be_newer(l, k, -1, WHY_ABSENT, e);
            } else if (!(e->flags & ST_F_VALID) || (e->w != ST_NONE && e->w >= c->size)) {
                torn(c, e, "a value that is not one whole record written to this key");
            } else if (cls == ST_CLS_T) {
                if (e->flags & ST_F_SHORT)
                    torn(c, e, "a token key holding a value nobody writes there");
                else
                    floor_seen(l, c, e, e->aux, false, "token generation");
            } else if (e->flags & ST_F_SHORT) {
                all_must_be_newer(l, k, -1, WHY_OVERWRITTEN, e);
            } else {
                reg_seen(l, c, e, e->w, e->seq);
            }
            break;
        case ST_EV_CREAD:
            if (e->st == ST_BUSY) {
                if (l->known & (1u << k))
                    starved(l, c, e, 1u << k);
            } else if (e->st == ST_ABSENT) {
                if (l->known & (1u << k))
                    presence(l, c, e, 1u << k, "a counter read as missing");
            } else if (!(e->flags & ST_F_VALID)) {
                torn(c, e, "a counter value that is not decimal");
            } else {
                floor_seen(l, c, e, e->val, false, "counter value");
            }
            break;
        case ST_EV_ADD:
            if (e->st != ST_OK)
                break;
            if (e->aux == 1 && e->val < 1) {
                st_violation(c, "counter", "add(+1) returned %lld", (long long)e->val);
                st_print_ent("offending:", c->rank, e);
            }
            floor_seen(l, c, e, e->val, e->aux == 1, "add returned");
            break;
        case ST_EV_APPEND:
            if (e->st == ST_OK && !(e->flags & ST_F_SHORT)) {
                size_t j = (size_t)k * (size_t)l->size + e->w;
                l->seen[j] = e->seq;
                l->seen_at[j] = *e;
                l->why[j] = WHY_NONE;
            }
            break;
        case ST_EV_AREAD: {
            size_t nr = 0;
            while (i + 1 + nr < log->n && log->e[i + 1 + nr].ev == ST_EV_AREC)
                nr++;
            if (e->st == ST_ABSENT)
                all_must_be_newer(l, k, -1, WHY_ABSENT, e);
            else if (e->st == ST_OK)
                append_seen(l, c, e, e + 1, nr);
            i += nr;
            break;
        }
        case ST_EV_DELETE:
            all_must_be_newer(l, k, -1, WHY_DELETED, e);
            break;
        case ST_EV_CHECK:
            if (!(e->flags & ST_F_TRUE) && (mask & ~l->known) == 0)
                presence(l, c, e, mask, "check() returned false");
            break;
        case ST_EV_WAIT:
            if (e->st == ST_ABSENT && (mask & ~l->known) == 0)
                presence(l, c, e, mask, "a wait/multi_get timed out");
            else if (e->st == ST_BUSY && (mask & ~l->known) == 0)
                starved(l, c, e, mask);
            break;
        case ST_EV_NUMKEYS:
            if (e->val < popcount(l->known) || e->val > ST_NK + c->size) {
                st_violation(c, "numkeys",
                             "num_keys() = %lld, but %d keys that are never deleted exist "
                             "and at most %d keys (+%d in-flight) can",
                             (long long)e->val, popcount(l->known), ST_NK, c->size);
                st_print_ent("offending:", c->rank, e);
            }
            break;
        default:
            break;
        }
    }
    st_fail(c);
}

/* ---- global check (rank 0) ---- */

enum { W_OK = 1, W_MAYBE = 2, W_FAIL = 3 };

typedef struct st_win {
    st_ent e;
    int rank, epoch;
} st_win;

struct st_global {
    int size;
    uint8_t **wmap; /* [writer][seq]: (key + 1) | state << 5 */
    size_t *wcap;
    uint32_t shortmask[ST_NK];
    uint64_t *acount; /* [key][writer] successful appends */
    uint8_t *claims[ST_NC];
    size_t ccap[ST_NC];
    int64_t ninc[ST_NC];
    bool created[ST_NC];
    st_win *wins[ST_NT]; /* this epoch's compare_set wins per token key */
    size_t nwins[ST_NT], capwins[ST_NT];
    st_win last[ST_NT]; /* the last win of earlier epochs (checked) */
    bool has_last[ST_NT];
    uint64_t dels[ST_NK], writes[ST_NK];
    /* ST_DEAD calls (maybe): +1 adds, any add (may have created the key),
     * append records [key][writer], compare_set transitions of tokens */
    int64_t maybe_inc[ST_NC];
    bool maybe_add[ST_NC];
    uint64_t *amaybe;
    st_win *mwins[ST_NT];
    size_t nmwins[ST_NT], capmwins[ST_NT];
    /* what completed calls of the run saw or did, for the final state:
     * counter values, token generations, newest record per [key][writer] */
    int64_t cmax[ST_NC];
    uint32_t gmax[ST_NT];
    int64_t *rmax;
};

st_global *st_global_new(const st_ctx *c)
{
    st_global *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->size = c->size;
    g->wmap = calloc((size_t)c->size, sizeof *g->wmap);
    g->wcap = calloc((size_t)c->size, sizeof *g->wcap);
    g->acount = calloc((size_t)ST_NK * (size_t)c->size, sizeof *g->acount);
    g->amaybe = calloc((size_t)ST_NK * (size_t)c->size, sizeof *g->amaybe);
    g->rmax = malloc((size_t)ST_NK * (size_t)c->size * sizeof *g->rmax);
    assert_true(g->wmap && g->wcap && g->acount && g->amaybe && g->rmax);
    for (size_t i = 0; i < (size_t)ST_NK * (size_t)c->size; i++)
        g->rmax[i] = -1;
    return g;
}

void st_global_free(st_global *g)
{
    if (!g)
        return;
    for (int w = 0; w < g->size; w++)
        free(g->wmap[w]);
    for (int k = 0; k < ST_NC; k++)
        free(g->claims[k]);
    for (int k = 0; k < ST_NT; k++) {
        free(g->wins[k]);
        free(g->mwins[k]);
    }
    free(g->amaybe);
    free(g->rmax);
    free(g->wmap);
    free(g->wcap);
    free(g->acount);
    free(g);
}

static void grow(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    *p = realloc(*p, n);
    assert_non_null(*p);
    memset(*p + *cap, 0, n - *cap);
    *cap = n;
}

/* Find another +1 add on counter key that returned v (to print it). */
static void print_other_claim(const st_ctx *c, st_ent *const *logs, const int *counts,
                              const st_ent *mine, int key, int64_t v)
{
    for (int r = 0; r < c->size; r++)
        for (int i = 0; i < counts[r]; i++) {
            const st_ent *e = &logs[r][i];
            if (e != mine && e->ev == ST_EV_ADD && e->st == ST_OK && e->aux == 1 && e->key == key &&
                e->val == v) {
                st_print_ent("also:     ", r, e);
                return;
            }
        }
    fprintf(stderr, "  also: an add(+1) of an earlier epoch returned %lld\n", (long long)v);
}

static int cmp_win(const void *a, const void *b)
{
    const st_win *x = a, *y = b;
    return (x->e.aux > y->e.aux) - (x->e.aux < y->e.aux);
}

/* Append w to the growable list *v of *n entries (capacity *cap). */
static void push_win(st_win **v, size_t *n, size_t *cap, st_win w)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        *v = realloc(*v, *cap * sizeof **v);
        assert_non_null(*v);
    }
    (*v)[(*n)++] = w;
}

static uint64_t link_id(const st_ent *e)
{
    return (uint64_t)e->w << 32 | e->seq;
}

/* Are generations from..gen of token t, walking back from the link of
 * generation gen that must be record `want`, all maybe transitions (each
 * the value the next one expected), down to the link `prev_id`?  A maybe
 * compare_set is its rank's last call, so the links are few. */
static bool bridged(const st_global *g, int t, uint64_t want, uint32_t gen, uint64_t prev_id,
                    uint32_t from)
{
    for (; gen >= from && gen > 0; gen--) {
        const st_win *m = NULL;
        for (size_t i = 0; i < g->nmwins[t] && !m; i++)
            if (g->mwins[t][i].e.aux == gen && link_id(&g->mwins[t][i].e) == want)
                m = &g->mwins[t][i];
        if (!m)
            return false;
        want = (uint64_t)m->e.val; /* what that link expected */
    }
    return want == prev_id;
}

/* The compare_set chain of each token key: generations 1..G, one winner
 * each, each win's expected value the previous win.  The wins of an epoch
 * come after all wins of earlier epochs (an epoch ends with a gather that
 * rank 0 answers only after it has all logs), so only the last win of the
 * earlier epochs is kept. */
static void check_chain(st_global *g, const st_ctx *c)
{
    for (int t = 0; t < ST_NT; t++) {
        st_win *w = g->wins[t];
        size_t n = g->nwins[t];
        qsort(w, n, sizeof *w, cmp_win);
        const st_win *prev = g->has_last[t] ? &g->last[t] : NULL; /* previous generation */
        for (size_t i = 0; i < n; i++) {
            if (prev && w[i].e.aux <= prev->e.aux) {
                st_violation(c, "cas",
                             "two ranks won compare_set transitions of %s to generation %u%s",
                             st_key_name(ST_K_T + t), w[i].e.aux,
                             w[i].e.aux == prev->e.aux ? "" : " (after a newer one)");
                st_print_ent("winner:", prev->rank, &prev->e);
                st_print_ent("winner:", w[i].rank, &w[i].e);
                continue;
            }
            uint32_t gen = prev ? prev->e.aux + 1 : 1;
            uint64_t prev_id = prev ? link_id(&prev->e) : (uint64_t)ST_NONE << 32;
            if (w[i].e.aux > gen &&
                bridged(g, t, (uint64_t)w[i].e.val, w[i].e.aux - 1, prev_id, gen)) {
                prev = &w[i]; /* the generations between were maybe transitions */
                continue;
            }
            if (w[i].e.aux != gen) {
                st_violation(c, "cas", "compare_set chain of %s has no win of generation %u",
                             st_key_name(ST_K_T + t), gen);
                st_print_ent("next win:", w[i].rank, &w[i].e);
                break;
            }
            uint64_t want =
                prev ? (uint64_t)prev->e.w << 32 | prev->e.seq : (uint64_t)ST_NONE << 32;
            if ((uint64_t)w[i].e.val != want) {
                st_violation(c, "cas",
                             "compare_set win of generation %u on %s expected a value that was "
                             "not the previous win",
                             w[i].e.aux, st_key_name(ST_K_T + t));
                if (prev)
                    st_print_ent("previous:", prev->rank, &prev->e);
                st_print_ent("win:     ", w[i].rank, &w[i].e);
            }
            prev = &w[i];
        }
        if (prev) {
            g->last[t] = *prev;
            g->has_last[t] = true;
        }
        g->nwins[t] = 0;
    }
}

/* The newest state a completed call of the run saw or made: the final
 * state, read after every call of the run ended (the dead rank's too), may
 * not be older (st_check_final). */
static void seen_max(st_global *g, const st_ent *e)
{
    int k = e->key, cls = st_class(k);
    bool rec = e->st == ST_OK && !(e->flags & (ST_F_SHORT | ST_F_MAYBE)) && e->w < g->size &&
               ((e->ev == ST_EV_READ && (e->flags & ST_F_VALID)) || e->ev == ST_EV_WRITE);
    if (rec && (cls == ST_CLS_R || cls == ST_CLS_T)) {
        int64_t *m = &g->rmax[(size_t)k * (size_t)g->size + e->w];
        if ((int64_t)e->seq > *m)
            *m = e->seq;
        if (cls == ST_CLS_T && e->aux > g->gmax[k - ST_K_T])
            g->gmax[k - ST_K_T] = e->aux;
    }
    if (cls == ST_CLS_C && e->st == ST_OK &&
        (e->ev == ST_EV_ADD || (e->ev == ST_EV_CREAD && (e->flags & ST_F_VALID))) &&
        e->val > g->cmax[k])
        g->cmax[k] = e->val;
}

void st_check_global(st_global *g, const st_ctx *c, st_ent *const *logs, const int *counts)
{
    /* pass 1: what was written */
    for (int r = 0; r < c->size; r++)
        for (int i = 0; i < counts[r]; i++) {
            const st_ent *e = &logs[r][i];
            int k = e->key;
            if (e->op != ST_OP_FINAL)
                seen_max(g, e);
            if (e->ev == ST_EV_WRITE) {
                int state = e->st == ST_OK ? W_OK : (e->flags & ST_F_MAYBE) ? W_MAYBE : W_FAIL;
                grow(&g->wmap[r], &g->wcap[r], (size_t)e->seq + 1);
                if (g->wmap[r][e->seq] != 0 || e->w != r) {
                    st_violation(c, "internal", "sequence number %u of rank %d logged twice",
                                 e->seq, r);
                    st_print_ent("entry:", r, e);
                }
                g->wmap[r][e->seq] = (uint8_t)((k + 1) | state << 5);
                if (state != W_FAIL) {
                    g->writes[k]++;
                    if (e->flags & ST_F_SHORT)
                        g->shortmask[k] |= 1u << e->val;
                }
                if (st_class(k) == ST_CLS_T && state == W_OK) {
                    int t = k - ST_K_T;
                    push_win(&g->wins[t], &g->nwins[t], &g->capwins[t], (st_win){*e, r, c->epoch});
                } else if (st_class(k) == ST_CLS_T && e->st == ST_DEAD) {
                    int t = k - ST_K_T;
                    push_win(&g->mwins[t], &g->nmwins[t], &g->capmwins[t],
                             (st_win){*e, r, c->epoch});
                }
            } else if (e->ev == ST_EV_ADD && e->st == ST_DEAD) {
                g->maybe_add[k] = true;
                g->maybe_inc[k] += e->aux == 1;
            } else if (e->ev == ST_EV_APPEND && e->st == ST_DEAD) {
                g->writes[k]++;
                if (!(e->flags & ST_F_SHORT))
                    g->amaybe[(size_t)k * (size_t)c->size + (size_t)r]++;
            } else if (e->ev == ST_EV_ADD && e->st == ST_OK) {
                g->created[k] = true;
                if (e->aux != 1)
                    continue;
                g->ninc[k]++;
                if (e->val < 1)
                    continue; /* reported by the local check */
                size_t v = (size_t)e->val;
                grow(&g->claims[k], &g->ccap[k], v / 8 + 1);
                if (g->claims[k][v / 8] & (1u << (v % 8))) {
                    st_violation(c, "counter", "two add(+1) calls on %s returned %lld",
                                 st_key_name(k), (long long)e->val);
                    st_print_ent("offending:", r, e);
                    print_other_claim(c, logs, counts, e, k, e->val);
                }
                g->claims[k][v / 8] |= (uint8_t)(1u << (v % 8));
            } else if (e->ev == ST_EV_APPEND && e->st == ST_OK) {
                g->writes[k]++;
                if (!(e->flags & ST_F_SHORT))
                    g->acount[(size_t)k * (size_t)c->size + (size_t)r]++;
            } else if (e->ev == ST_EV_DELETE && (e->flags & ST_F_TRUE)) {
                g->dels[k]++;
            }
        }
    /* pass 2: everything read was written */
    static const char *const wstate[] = {"was never written by that rank",
                                         "was written by a call that succeeded",
                                         "was written by a failed multi_set",
                                         ("was written by a call that failed or lost its "
                                          "compare_set")};
    for (int r = 0; r < c->size; r++)
        for (int i = 0; i < counts[r]; i++) {
            const st_ent *e = &logs[r][i];
            int k = e->key;
            if (e->ev == ST_EV_READ && e->st == ST_OK && (e->flags & ST_F_VALID)) {
                if (e->flags & ST_F_SHORT) {
                    if (!(g->shortmask[k] & (1u << e->val))) {
                        st_violation(c, "unwritten", "a %lld-byte value nobody wrote to %s",
                                     (long long)e->val, st_key_name(k));
                        st_print_ent("offending:", r, e);
                    }
                    continue;
                }
                uint8_t m = e->w < c->size && e->seq < g->wcap[e->w] ? g->wmap[e->w][e->seq] : 0;
                int state = m >> 5;
                if ((m & 31) != k + 1 || state == W_FAIL) {
                    st_violation(c, "unwritten", "value read from %s: record %u of rank %d %s",
                                 st_key_name(k), e->seq, e->w,
                                 (m & 31) == 0       ? wstate[0]
                                 : (m & 31) != k + 1 ? "went to another key"
                                                     : wstate[state]);
                    st_print_ent("offending:", r, e);
                }
            } else if (e->ev == ST_EV_AREC) {
                uint64_t n = g->acount[(size_t)k * (size_t)c->size + e->w];
                uint64_t maybe = g->amaybe[(size_t)k * (size_t)c->size + e->w];
                if (e->seq >= n + maybe) {
                    st_violation(c, "unwritten",
                                 "append value of %s holds record %u of rank %d, which made "
                                 "only %llu successful appends there",
                                 st_key_name(k), e->seq, e->w, (unsigned long long)n);
                    st_print_ent("offending:", r, e);
                }
            }
        }
    for (int k = 0; k < ST_NK; k++)
        if (g->dels[k] > g->writes[k])
            st_violation(c, "delete", "%s was deleted %llu times but written only %llu times",
                         st_key_name(k), (unsigned long long)g->dels[k],
                         (unsigned long long)g->writes[k]);
    check_chain(g, c);
    st_fail(c);
}

void st_check_final(st_global *g, const st_ctx *c, const st_ent *final, const uint32_t *digest,
                    int *present)
{
    for (int k = 0; k < ST_NK; k++) {
        const st_ent *f0 = &final[k];
        present[k] = f0->st == ST_OK;
        for (int r = 1; r < c->size; r++) {
            const st_ent *f = &final[(size_t)r * ST_NK + (size_t)k];
            if (f->st != f0->st || digest[(size_t)r * ST_NK + (size_t)k] != digest[k]) {
                st_violation(c, "final",
                             "ranks 0 and %d read different values of %s after "
                             "the run",
                             r, st_key_name(k));
                st_print_ent("rank 0:", 0, f0);
                st_print_ent("other: ", r, f);
            }
        }
    }
    for (int k = 0; k < ST_NK; k++) { /* not older than the run saw */
        const st_ent *f = &final[k];
        int cls = st_class(k);
        if (f->st != ST_OK)
            continue;
        if (cls == ST_CLS_C && (f->flags & ST_F_VALID) && f->val < g->cmax[k])
            st_violation(c, "counter", "%s ends at %lld, below %lld, which a call of the run saw",
                         st_key_name(k), (long long)f->val, (long long)g->cmax[k]);
        if ((cls != ST_CLS_R && cls != ST_CLS_T) || !(f->flags & ST_F_VALID) ||
            (f->flags & ST_F_SHORT) || f->w >= g->size)
            continue;
        if ((int64_t)f->seq < g->rmax[(size_t)k * (size_t)g->size + f->w]) {
            st_violation(c, "stale",
                         "%s ends on record %u of rank %d, but a call of the run saw or wrote its "
                         "record %lld there",
                         st_key_name(k), f->seq, f->w,
                         (long long)g->rmax[(size_t)k * (size_t)g->size + f->w]);
            st_print_ent("final:", 0, f);
        }
        if (cls == ST_CLS_T && f->aux < g->gmax[k - ST_K_T])
            st_violation(c, "cas", "%s ends on generation %u, but a call of the run saw %u",
                         st_key_name(k), f->aux, g->gmax[k - ST_K_T]);
    }
    for (int k = 0; k < ST_NC; k++) {
        const st_ent *f = &final[k];
        if (!g->created[k] && !(g->maybe_add[k] && f->st == ST_OK)) {
            if (f->st != ST_ABSENT) {
                st_violation(c, "counter", "%s exists but no add succeeded", st_key_name(k));
                st_print_ent("final:", 0, f);
            }
            continue;
        }
        /* N succeeded +1s and M maybe ones: the counter ends between N and
         * N + M, and the succeeded ones returned N distinct values of 1..end */
        if (f->st != ST_OK || f->val < g->ninc[k] || f->val > g->ninc[k] + g->maybe_inc[k]) {
            st_violation(c, "counter",
                         "%s ends at %lld, but %lld add(+1) calls succeeded and %lld "
                         "failed with EPROCFAILED or died",
                         st_key_name(k), (long long)f->val, (long long)g->ninc[k],
                         (long long)g->maybe_inc[k]);
            st_print_ent("final:", 0, f);
            continue;
        }
        int64_t claimed = 0, missing = 0;
        for (int64_t v = 1; v <= f->val; v++) {
            if ((size_t)v / 8 < g->ccap[k] && (g->claims[k][v / 8] & (1u << (v % 8))))
                claimed++;
            else if (missing == 0)
                missing = v;
        }
        if (claimed != g->ninc[k]) /* (distinct claims: pass 1) */
            st_violation(c, "counter",
                         "%s ends at %lld, but only %lld of the %lld add(+1) calls that "
                         "succeeded returned a value up to it (first value none returned: %lld)",
                         st_key_name(k), (long long)f->val, (long long)claimed,
                         (long long)g->ninc[k], (long long)missing);
    }
    for (int t = 0; t < ST_NT; t++) {
        const st_ent *f = &final[ST_K_T + t];
        const st_ent *last = g->has_last[t] ? &g->last[t].e : NULL;
        bool ok =
            last ? f->st == ST_OK && f->w == last->w && f->seq == last->seq : f->st == ST_ABSENT;
        uint32_t from = last ? last->aux + 1 : 1;
        if (!ok && f->st == ST_OK && f->aux >= from) /* ends on maybe transitions */
            ok = bridged(g, t, link_id(f), f->aux, last ? link_id(last) : (uint64_t)ST_NONE << 32,
                         from);
        if (!ok) {
            st_violation(c, "cas", "%s does not end on the last compare_set win",
                         st_key_name(ST_K_T + t));
            st_print_ent("final:   ", 0, f);
            if (last)
                st_print_ent("last win:", g->last[t].rank, last);
        }
    }
    st_fail(c);
}
