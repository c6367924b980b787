/* libFuzzer harness: arbitrary operation sequences on a one-rank store
 * (MPI_COMM_SELF) with small limits, checked against a plain in-memory model.
 *
 * Input layout: 4 bytes of store options (keys_per_rank and, in its top
 * bit, whether the store may grow; max_key_len, max_value_len,
 * bytes_per_rank), then operations, each an opcode byte
 * followed by its arguments (handle, keys, values, deltas, timeouts), read
 * with fuzz_byte() and friends; a short input simply ends the sequence.
 *
 * The model is the specification: include/mpistore.h and
 * shared/docs/store-semantics.md.  ENOSPC is the one outcome the model cannot
 * always predict (the arena can be fragmented), so it is bounded from both
 * sides (see enospc_bounds()).  A growing store (max_keys_per_rank and
 * max_bytes_per_rank 0: index levels and arena segments are added as
 * needed, docs/design.md "Growth") must never fail with ENOSPC.  A store
 * limited to its initial sizes (max_* = keys_per_rank, bytes_per_rank):
 *   - must fail:  a new key when keys_per_rank keys exist, or a block that
 *                 needs more 32-byte units than are free in total;
 *   - may fail:   additionally when the free units, split into at most L+1
 *                 runs around the L live blocks, need not contain a run of
 *                 the block's size (free / (L+1) < need);
 *   - otherwise ENOSPC is a bug.
 * A failed call must leave the store unchanged and outputs untouched; the
 * whole store is compared with the model after every failure and at the end.
 * Any disagreement prints what differed and aborts, so libFuzzer keeps the
 * input. */
#include <mpistore.h>

#include <math.h>
#include <mpi.h>
#include <sanitizer/lsan_interface.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXH 6         /* handles: the store and up to 5 views */
#define MAXE 400       /* model entries (MAXOPS x MAXMULTI + margin) */
#define MAXT 64        /* keys ever touched, checked for absence */
#define KBUF 128       /* key buffers */
#define VBUF 160       /* value buffers */
#define MAXOPS 96      /* operations per input */
#define MAXMULTI 4     /* keys per check/wait/multi_* call */
#define UNIT 32u       /* allocation unit (bytes_per_rank < 2^29) */
#define BLK_HDR 32u    /* block header */
#define TINY_T 1.5e-4  /* handle timeout used for blocking calls */
#define SENTINEL 0x5au /* fill of output parameters */

/* ---- input reader ---- */
typedef struct fin {
    const uint8_t *p;
    size_t n;
} fin_t;

static uint8_t fuzz_byte(fin_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static size_t fuzz_bytes(fin_t *in, void *dst, size_t want)
{
    size_t n = want < in->n ? want : in->n;
    memcpy(dst, in->p, n);
    memset((uint8_t *)dst + n, 0, want - n);
    in->p += n;
    in->n -= n;
    return n;
}

/* ---- the model ---- */
typedef struct ent {
    char key[KBUF]; /* full key */
    unsigned char val[VBUF];
    size_t vlen;
    int counter; /* created by add: its block holds only the key (design.md "Counters") */
} ent_t;

typedef struct hnd {
    mpistore_t *h;
    int parent; /* -1 for the store */
    char prefix[KBUF];
    size_t plen;
    double timeout;
    int nviews;
} hnd_t;

static struct model {
    mpistore_options_t o;
    hnd_t hs[MAXH];
    ent_t e[MAXE];
    size_t ne;
    char touched[MAXT][KBUF];
    size_t nt;
    const uint8_t *input; /* for the failure report */
    size_t input_len;
    int op_index;
    int full; /* a write failed with ENOSPC: waits for absent keys fail so too */
} M;

static void fail(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

static void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr,
            "\nfuzz_store: model mismatch at op %d (options: keys_per_rank=%zu max_key_len=%zu "
            "max_value_len=%zu bytes_per_rank=%zu)\n  ",
            M.op_index, M.o.keys_per_rank, M.o.max_key_len, M.o.max_value_len, M.o.bytes_per_rank);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(__VA_ARGS__);                                                                     \
    } while (0)

static ent_t *find(const char *full)
{
    for (size_t i = 0; i < M.ne; i++)
        if (strcmp(M.e[i].key, full) == 0)
            return &M.e[i];
    return NULL;
}

static void touch(const char *full)
{
    for (size_t i = 0; i < M.nt; i++)
        if (strcmp(M.touched[i], full) == 0)
            return;
    if (M.nt < MAXT)
        snprintf(M.touched[M.nt++], KBUF, "%s", full);
}

static size_t units(size_t klen, size_t vlen)
{
    return (BLK_HDR + klen + vlen + UNIT - 1) / UNIT;
}

static void model_put(const char *full, const void *v, size_t len)
{
    ent_t *e = find(full);
    if (!e) {
        if (M.ne >= MAXE)
            fail("model overflow");
        e = &M.e[M.ne++];
        snprintf(e->key, KBUF, "%s", full);
    }
    if (len > VBUF)
        fail("model value of %zu bytes", len);
    memmove(e->val, v, len);
    e->vlen = len;
    e->counter = 0;
}

static void model_del(const char *full)
{
    ent_t *e = find(full);
    if (e)
        *e = M.e[--M.ne];
}

/* ENOSPC bounds of writing newlen value bytes under full (see top).  A
 * counter's block holds no value bytes (newlen 0 for an add that creates one). */
static void enospc_bounds(const char *full, size_t newlen, int *must, int *may)
{
    size_t nunits = M.o.bytes_per_rank / UNIT, live = 0;
    if (M.o.max_keys_per_rank == 0) { /* a growing store */
        *must = *may = 0;
        return;
    }
    for (size_t i = 0; i < M.ne; i++)
        live += units(strlen(M.e[i].key), M.e[i].counter ? 0 : M.e[i].vlen);
    size_t freeu = nunits - live, need = units(strlen(full), newlen);
    int exists = find(full) != NULL;
    *must = need > freeu || (!exists && M.ne >= M.o.keys_per_rank);
    *may = *must || freeu / (M.ne + 1) < need;
}

/* ---- calling the store ---- */
static const char *errname(int rc)
{
    return mpistore_errname(rc);
}

#define ERRBIT(code) (1u << (code))

/* Check a call that the model says fails with one of the codes in `allowed`
 * (a bit set, several when the order of checks is not documented). */
static void expect_fail(int rc, unsigned allowed, mpistore_t *h, const char *what)
{
    CHECK(rc < 0 && -rc < 32 && (allowed & ERRBIT(-rc)),
          "%s returned %s, expected failure mask %#x", what, errname(rc), allowed);
    const char *msg = mpistore_errmsg(h);
    if (h)
        CHECK(msg && msg[0], "%s failed with %s but left an empty message", what, errname(rc));
    else /* a NULL handle: the message goes to mpistore_errmsg(NULL) */
        CHECK(strstr(msg, "the handle is NULL"), "%s with a NULL handle: message '%s'", what, msg);
}

static void expect_ok(int rc, mpistore_t *h, const char *what)
{
    CHECK(rc == MPISTORE_OK, "%s returned %s (%s), expected OK", what, errname(rc),
          h ? mpistore_errmsg(h) : "");
}

/* Compare the whole store with the model through the store handle. */
static void verify_all(const char *after)
{
    mpistore_t *s = M.hs[0].h;
    int64_t n = -1;
    /* a key the store lost must not block forever */
    expect_ok(mpistore_set_timeout(s, TINY_T), s, "verify set_timeout");
    expect_ok(mpistore_num_keys(s, &n), s, "verify num_keys");
    CHECK(n == (int64_t)M.ne, "after %s: num_keys %lld, model has %zu keys", after, (long long)n,
          M.ne);
    for (size_t i = 0; i < M.ne; i++) {
        void *v = NULL;
        size_t len = 0;
        int rc = mpistore_get(s, M.e[i].key, &v, &len);
        CHECK(rc == 0, "after %s: get('%s') returned %s (%s), model has %zu bytes", after,
              M.e[i].key, errname(rc), mpistore_errmsg(s), M.e[i].vlen);
        CHECK(len == M.e[i].vlen && memcmp(v, M.e[i].val, len) == 0 && ((char *)v)[len] == 0,
              "after %s: key '%s' holds %zu bytes, model %zu bytes (or bytes differ)", after,
              M.e[i].key, len, M.e[i].vlen);
        mpistore_free(v);
    }
    for (size_t i = 0; i < M.nt; i++) {
        if (find(M.touched[i]))
            continue;
        const char *keys[] = {M.touched[i]};
        bool all = true;
        expect_ok(mpistore_check(s, keys, 1, &all), s, "verify check");
        CHECK(!all, "after %s: key '%s' exists, model says deleted or never set", after,
              M.touched[i]);
    }
    expect_ok(mpistore_set_timeout(s, M.hs[0].timeout), s, "verify set_timeout");
}

/* ---- arguments ---- */
typedef struct karg {
    char buf[KBUF];
    const char *key; /* NULL or buf */
    char full[2 * KBUF];
    unsigned err; /* ERRBIT of the key's own error, 0 if valid */
} karg_t;

static const char *const POOL[] = {"a", "b", "cnt", "p/a", "p/q/b", "n", "x/y", "p"};
static const char *const PREFIXES[] = {"p", "q", "p/q", "x"};

static void key_arg(fin_t *in, const hnd_t *hd, karg_t *k)
{
    uint8_t sel = fuzz_byte(in);
    size_t room = M.o.max_key_len > hd->plen ? M.o.max_key_len - hd->plen : 0, len;
    memset(k, 0, sizeof *k);
    k->key = k->buf;
    switch (sel % 16) {
    case 8:
        k->key = NULL;
        break;
    case 9:
        break; /* empty */
    case 10:   /* exactly at the limit */
    case 11:   /* one beyond */
        len = (room ? room : 1) + (sel % 16 == 11);
        for (size_t i = 0; i < len && i + 1 < KBUF; i++)
            k->buf[i] = (char)('A' + i % 26);
        break;
    case 12:
    case 13:
    case 14:
    case 15: /* raw bytes: any byte, a NUL ends the key early */
        fuzz_bytes(in, k->buf, fuzz_byte(in) % 48);
        break;
    default:
        snprintf(k->buf, KBUF, "%s", POOL[sel % 8]);
    }
    if (!k->key)
        k->err = ERRBIT(MPISTORE_EINVAL);
    else if (!k->key[0])
        k->err = ERRBIT(MPISTORE_EINVAL);
    else if (hd->plen + strlen(k->key) > M.o.max_key_len)
        k->err = ERRBIT(MPISTORE_EKEYTOOLONG);
    if (k->key)
        snprintf(k->full, sizeof k->full, "%s%s", hd->prefix, k->key);
}

typedef struct varg {
    unsigned char buf[VBUF];
    const void *v;
    size_t len;
    unsigned err;
} varg_t;

static void value_arg(fin_t *in, varg_t *a)
{
    uint8_t sel = fuzz_byte(in);
    size_t maxv = M.o.max_value_len;
    memset(a, 0, sizeof *a);
    a->v = a->buf;
    switch (sel % 8) {
    case 0:
        break; /* empty, non-NULL */
    case 1:
        a->v = NULL;
        break;
    case 2:
        a->v = NULL;
        a->len = 1 + sel / 8 % 5;
        break;
    case 3:
    case 4:
        a->len = maxv + (sel % 8 == 4);
        for (size_t i = 0; i < a->len; i++)
            a->buf[i] = (unsigned char)(i * 7 + sel);
        break;
    case 5: /* a small decimal, so that add continues from it */
        a->len = (size_t)snprintf((char *)a->buf, VBUF, "%d", (int)(sel / 8) - 12);
        break;
    default:
        a->len = fuzz_bytes(in, a->buf, fuzz_byte(in) % (maxv + 8 < VBUF ? maxv + 8 : VBUF));
    }
    if (!a->v && a->len > 0)
        a->err = ERRBIT(MPISTORE_EINVAL);
    else if (a->len > maxv)
        a->err = ERRBIT(MPISTORE_ETOOBIG);
}

/* A handle slot: mostly open ones, sometimes NULL (returns -1). */
static int handle_arg(fin_t *in)
{
    uint8_t b = fuzz_byte(in);
    if (b % 16 == 15)
        return -1;
    int i = b % MAXH;
    return M.hs[i].h ? i : 0;
}

static const hnd_t NULL_HANDLE = {0};

static const hnd_t *hd_of(int hi)
{
    return hi < 0 ? &NULL_HANDLE : &M.hs[hi];
}

static mpistore_t *h_of(int hi)
{
    return hi < 0 ? NULL : M.hs[hi].h;
}

/* strict decimal int64: [+-]?[0-9]+ in range (the model's own parser) */
static int parse_i64(const unsigned char *p, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t mag = 0, lim;
    if (n > 0 && (p[0] == '+' || p[0] == '-'))
        neg = p[i++] == '-';
    if (i == n)
        return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        unsigned d = p[i] - '0';
        if (mag > (lim - d) / 10)
            return -1;
        mag = mag * 10 + d;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

/* A write the model accepts: check the ENOSPC bounds against rc, then apply. */
/* Outcome counters, printed at exit when FUZZ_STORE_STATS is set (to see
 * that a corpus reaches the limits at all). */
static struct {
    unsigned long writes, enospc_keys, enospc_memory, enospc_slots, may_but_ok;
} ST;

/* How an add writes (design.md "Counters"): an ordinary value, a new
 * counter (a key-only block), or an add on a counter (no allocation). */
enum { W_VALUE, W_NEW_COUNTER, W_COUNTER_ADD };

static void model_write_as(int rc, mpistore_t *h, const char *full, const void *v, size_t len,
                           const char *what, int how)
{
    int must = 0, may = 0;
    if (how != W_COUNTER_ADD)
        enospc_bounds(full, how == W_NEW_COUNTER ? 0 : len, &must, &may);
    ST.writes++;
    if (rc == -MPISTORE_ENOSPC) {
        const char *m = mpistore_errmsg(h);
        ST.enospc_keys += strstr(m, "key slots") != NULL;
        ST.enospc_memory += strstr(m, "value memory") != NULL;
        ST.enospc_slots += strstr(m, "no free slot") != NULL;
    } else if (may && !must) {
        ST.may_but_ok++;
    }
    if (rc == -MPISTORE_ENOSPC) {
        M.full = 1;
        CHECK(may, "%s on '%s' (%zu bytes): ENOSPC although the model has room (%s)", what, full,
              len, mpistore_errmsg(h));
        CHECK(mpistore_errmsg(h)[0], "ENOSPC without a message");
        verify_all("ENOSPC");
        return;
    }
    CHECK(rc == 0, "%s on '%s': %s (%s), expected OK%s", what, full, errname(rc),
          mpistore_errmsg(h), may ? " or ENOSPC" : "");
    CHECK(!must, "%s on '%s' (%zu bytes) succeeded although the model says ENOSPC", what, full,
          len);
    touch(full);
    model_put(full, v, len);
    find(full)->counter = how != W_VALUE;
}

static void model_write(int rc, mpistore_t *h, const char *full, const void *v, size_t len,
                        const char *what)
{
    model_write_as(rc, h, full, v, len, what, W_VALUE);
}

/* ---- operations ---- */
enum {
    OP_SET,
    OP_GET,
    OP_ADD,
    OP_CAS,
    OP_DELETE,
    OP_CHECK,
    OP_WAIT,
    OP_NUMKEYS,
    OP_MGET,
    OP_MSET,
    OP_APPEND,
    OP_TIMEOUT,
    OP_PREFIX,
    OP_CLOSE,
    OP_MISC,
    OP_COUNT
};

static void op_set(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    varg_t v;
    key_arg(in, hd_of(hi), &k);
    value_arg(in, &v);
    mpistore_t *h = h_of(hi);
    int rc = mpistore_set(h, k.key, v.v, v.len);
    if (!h || k.err || v.err) {
        expect_fail(rc, h ? k.err | v.err : ERRBIT(MPISTORE_EINVAL), h, "set");
        return;
    }
    model_write(rc, h, k.full, v.buf, v.len, "set");
}

static void op_get(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    key_arg(in, hd_of(hi), &k);
    uint8_t nulls = fuzz_byte(in) % 8; /* 1: value NULL, 2: len NULL */
    mpistore_t *h = h_of(hi);
    void *v = (void *)&M, **pv = nulls == 1 ? NULL : &v;
    size_t len = SENTINEL, *pl = nulls == 2 ? NULL : &len;
    const ent_t *e = k.key ? find(k.full) : NULL;
    if (h && !k.err && pv && pl && !e && hd_of(hi)->timeout == 0)
        return; /* would block forever */
    int rc = mpistore_get(h, k.key, pv, pl);
    if (!h || k.err || !pv || !pl)
        expect_fail(rc, h ? k.err | ERRBIT(MPISTORE_EINVAL) : ERRBIT(MPISTORE_EINVAL), h, "get");
    else if (!e)
        expect_fail(rc, ERRBIT(MPISTORE_ETIMEDOUT) | (M.full ? ERRBIT(MPISTORE_ENOSPC) : 0), h,
                    "get of a missing key");
    else {
        expect_ok(rc, h, "get");
        CHECK(len == e->vlen && memcmp(v, e->val, len) == 0 && ((char *)v)[len] == 0,
              "get('%s'): %zu bytes, model %zu", k.full, len, e->vlen);
        mpistore_free(v);
        return;
    }
    CHECK(v == (void *)&M && len == SENTINEL, "get wrote its outputs on failure");
}

static void op_add(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    key_arg(in, hd_of(hi), &k);
    int64_t delta = 0, res = 0x5a5a, base = 0;
    uint8_t sel = fuzz_byte(in);
    switch (sel % 4) {
    case 0:
        delta = (int64_t)(sel / 4 % 7) - 3;
        break;
    case 1:
        delta = INT64_MAX;
        break;
    case 2:
        delta = INT64_MIN;
        break;
    default:
        fuzz_bytes(in, &delta, sizeof delta);
    }
    mpistore_t *h = h_of(hi);
    int64_t *pres = sel & 0x80 ? NULL : &res;
    int rc = mpistore_add(h, k.key, delta, pres);
    if (!h || k.err) {
        expect_fail(rc, h ? k.err : ERRBIT(MPISTORE_EINVAL), h, "add");
        CHECK(res == 0x5a5a, "add wrote *result on failure");
        return;
    }
    const ent_t *e = find(k.full);
    int notint = e && parse_i64(e->val, e->vlen, &base) != 0;
    if (!notint &&
        ((delta > 0 && base > INT64_MAX - delta) || (delta < 0 && base < INT64_MIN - delta)))
        notint = 1;
    if (notint) {
        expect_fail(rc, ERRBIT(MPISTORE_ENOTINT), h, "add");
        CHECK(res == 0x5a5a, "add wrote *result on failure");
        return;
    }
    char num[32];
    size_t n = (size_t)snprintf(num, sizeof num, "%lld", (long long)(base + delta));
    if (n > M.o.max_value_len) { /* the result would not be a storable value */
        expect_fail(rc, ERRBIT(MPISTORE_ETOOBIG), h, "add with a too long result");
        return;
    }
    /* a counter is created by an add when any int64 fits a value; an add on
     * it allocates nothing and keeps it a counter (design.md "Counters") */
    int how = W_VALUE;
    if (!e && M.o.max_value_len >= 20)
        how = W_NEW_COUNTER;
    else if (e && e->counter) /* lock-free within the bounds, else locked: still a counter */
        how = W_COUNTER_ADD;
    model_write_as(rc, h, k.full, num, n, "add", how);
    if (rc == 0 && pres)
        CHECK(res == base + delta, "add result %lld, model %lld", (long long)res,
              (long long)(base + delta));
}

static void op_cas(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    varg_t ex, de;
    key_arg(in, hd_of(hi), &k);
    value_arg(in, &ex);
    value_arg(in, &de);
    uint8_t nulls = fuzz_byte(in) % 8;
    if (fuzz_byte(in) % 2 && k.key) { /* expected = the current value */
        const ent_t *e = find(k.full);
        if (e) {
            memcpy(ex.buf, e->val, e->vlen);
            ex.v = ex.buf;
            ex.len = e->vlen;
            ex.err = 0;
        }
    }
    mpistore_t *h = h_of(hi);
    void *cur = (void *)&M, **pc = nulls == 1 ? NULL : &cur;
    size_t clen = SENTINEL, *pl = nulls == 2 ? NULL : &clen;
    int rc = mpistore_compare_set(h, k.key, ex.v, ex.len, de.v, de.len, pc, pl);
    unsigned err = k.err | de.err;
    if (!pc || !pl)
        err |= ERRBIT(MPISTORE_EINVAL);
    if (!ex.v && ex.len > 0)
        err |= ERRBIT(MPISTORE_EINVAL); /* an over-long expected is no error */
    if (!h || err) {
        expect_fail(rc, h ? err : ERRBIT(MPISTORE_EINVAL), h, "compare_set");
        CHECK(cur == (void *)&M && clen == SENTINEL, "compare_set wrote outputs on failure");
        return;
    }
    const ent_t *e = find(k.full);
    const void *ret;
    size_t retlen;
    unsigned char old[VBUF];
    if (!e && ex.len > 0) {
        expect_ok(rc, h, "compare_set (missing key, expected non-empty)");
        ret = ex.buf;
        retlen = ex.len;
    } else if (!e || (e->vlen == ex.len && memcmp(e->val, ex.buf, ex.len) == 0)) {
        model_write(rc, h, k.full, de.buf, de.len, "compare_set");
        if (rc)
            return;
        ret = de.buf;
        retlen = de.len;
    } else {
        expect_ok(rc, h, "compare_set (mismatch)");
        memcpy(old, e->val, e->vlen);
        ret = old;
        retlen = e->vlen;
    }
    CHECK(clen == retlen && memcmp(cur, ret, retlen) == 0 && ((char *)cur)[clen] == 0,
          "compare_set('%s') returned %zu bytes, model %zu", k.full, clen, retlen);
    mpistore_free(cur);
}

static void op_delete(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    key_arg(in, hd_of(hi), &k);
    mpistore_t *h = h_of(hi);
    bool del = (bool)SENTINEL, *pd = fuzz_byte(in) % 4 == 0 ? NULL : &del;
    int rc = mpistore_delete_key(h, k.key, pd);
    if (!h || k.err) {
        expect_fail(rc, h ? k.err : ERRBIT(MPISTORE_EINVAL), h, "delete_key");
        CHECK(del == (bool)SENTINEL, "delete_key wrote *deleted on failure");
        return;
    }
    expect_ok(rc, h, "delete_key");
    int was = find(k.full) != NULL;
    if (pd)
        CHECK(del == was, "delete_key('%s') says %d, model %d", k.full, del, was);
    touch(k.full);
    model_del(k.full);
}

/* Keys for check/wait/multi_*: count, array (maybe NULL), their errors. */
typedef struct kset {
    karg_t k[MAXMULTI];
    const char *keys[MAXMULTI];
    const char *const *arr;
    size_t n;
    unsigned err;
    int all_present;
} kset_t;

static void keys_arg(fin_t *in, const hnd_t *hd, kset_t *ks)
{
    uint8_t b = fuzz_byte(in);
    ks->n = b % (MAXMULTI + 1);
    ks->arr = ks->keys;
    ks->err = 0;
    ks->all_present = 1;
    for (size_t i = 0; i < ks->n; i++) {
        key_arg(in, hd, &ks->k[i]);
        ks->keys[i] = ks->k[i].key;
        ks->err |= ks->k[i].err;
        if (!ks->k[i].err && !find(ks->k[i].full))
            ks->all_present = 0;
    }
    if (b & 0x80) { /* NULL array: an error unless the count is 0 */
        ks->arr = NULL;
        ks->err = ks->n ? ERRBIT(MPISTORE_EINVAL) : 0;
        ks->all_present = 1;
    }
}

static void op_check(fin_t *in)
{
    int hi = handle_arg(in);
    kset_t ks;
    keys_arg(in, hd_of(hi), &ks);
    bool all = (bool)SENTINEL, *pa = fuzz_byte(in) % 8 == 0 ? NULL : &all;
    mpistore_t *h = h_of(hi);
    int rc = mpistore_check(h, ks.arr, ks.n, pa);
    unsigned err = ks.err | (pa ? 0 : ERRBIT(MPISTORE_EINVAL));
    if (!h || err) {
        expect_fail(rc, h ? err : ERRBIT(MPISTORE_EINVAL), h, "check");
        return;
    }
    expect_ok(rc, h, "check");
    CHECK(all == (ks.all_present != 0), "check says %d, model %d", all, ks.all_present);
}

static void op_wait(fin_t *in)
{
    static const double T[] = {
        MPISTORE_TIMEOUT_DEFAULT, TINY_T, 0.0, -2.0, NAN, INFINITY, -INFINITY, 1e-4};
    int hi = handle_arg(in);
    kset_t ks;
    keys_arg(in, hd_of(hi), &ks);
    double t = T[fuzz_byte(in) % 8];
    mpistore_t *h = h_of(hi);
    unsigned err = ks.err;
    if (!(t == MPISTORE_TIMEOUT_DEFAULT || (t >= 0 && isfinite(t))))
        err |= ERRBIT(MPISTORE_EINVAL);
    double eff = t == MPISTORE_TIMEOUT_DEFAULT ? hd_of(hi)->timeout : t;
    if (h && !err && !ks.all_present && eff == 0)
        return; /* would wait forever */
    int rc = mpistore_wait(h, ks.arr, ks.n, t);
    if (!h || err) {
        expect_fail(rc, h ? err : ERRBIT(MPISTORE_EINVAL), h, "wait");
        return;
    }
    if (ks.all_present) {
        expect_ok(rc, h, "wait");
        return;
    }
    expect_fail(rc, ERRBIT(MPISTORE_ETIMEDOUT) | (M.full ? ERRBIT(MPISTORE_ENOSPC) : 0), h,
                "wait on missing keys");
    CHECK(strstr(mpistore_errmsg(h), rc == -MPISTORE_ENOSPC ? "store is full" : "timeout"),
          "wait failure message '%s' lacks 'timeout' or 'store is full'", mpistore_errmsg(h));
}

static void op_num_keys(fin_t *in)
{
    int hi = handle_arg(in);
    mpistore_t *h = h_of(hi);
    int64_t n = -7, *pn = fuzz_byte(in) % 8 == 0 ? NULL : &n;
    int rc = mpistore_num_keys(h, pn);
    if (!h || !pn) {
        expect_fail(rc, ERRBIT(MPISTORE_EINVAL), h, "num_keys");
        CHECK(n == -7, "num_keys wrote *count on failure");
        return;
    }
    expect_ok(rc, h, "num_keys");
    CHECK(n == (int64_t)M.ne, "num_keys %lld, model %zu", (long long)n, M.ne);
}

static void op_multi_get(fin_t *in)
{
    int hi = handle_arg(in);
    kset_t ks;
    keys_arg(in, hd_of(hi), &ks);
    uint8_t nulls = fuzz_byte(in) % 8;
    void *vals[MAXMULTI];
    size_t lens[MAXMULTI];
    for (size_t i = 0; i < MAXMULTI; i++) {
        vals[i] = (void *)&M;
        lens[i] = SENTINEL;
    }
    void **pv = nulls == 1 ? NULL : vals;
    size_t *pl = nulls == 2 ? NULL : lens;
    mpistore_t *h = h_of(hi);
    unsigned err = ks.err | (ks.n && (!pv || !pl) ? ERRBIT(MPISTORE_EINVAL) : 0);
    if (h && !err && !ks.all_present && hd_of(hi)->timeout == 0)
        return; /* would block forever */
    int rc = mpistore_multi_get(h, ks.arr, ks.n, pv, pl);
    if (!h || err || !ks.all_present) {
        expect_fail(rc,
                    !h    ? ERRBIT(MPISTORE_EINVAL)
                    : err ? err
                          : ERRBIT(MPISTORE_ETIMEDOUT) | (M.full ? ERRBIT(MPISTORE_ENOSPC) : 0),
                    h, "multi_get");
        for (size_t i = 0; i < MAXMULTI; i++)
            CHECK(vals[i] == (void *)&M && lens[i] == SENTINEL, "multi_get wrote on failure");
        return;
    }
    expect_ok(rc, h, "multi_get");
    for (size_t i = 0; i < ks.n; i++) {
        const ent_t *e = find(ks.k[i].full);
        CHECK(lens[i] == e->vlen && memcmp(vals[i], e->val, e->vlen) == 0 &&
                  ((char *)vals[i])[lens[i]] == 0,
              "multi_get key %zu '%s': %zu bytes, model %zu", i, ks.k[i].full, lens[i], e->vlen);
        mpistore_free(vals[i]);
    }
    for (size_t i = ks.n; i < MAXMULTI; i++)
        CHECK(vals[i] == (void *)&M, "multi_get wrote beyond nkeys");
}

/* Does the store hold exactly what the model holds?  (no abort) */
static int store_matches_model(void)
{
    mpistore_t *s = M.hs[0].h;
    int64_t n = -1;
    int same = mpistore_num_keys(s, &n) == 0 && n == (int64_t)M.ne;
    expect_ok(mpistore_set_timeout(s, TINY_T), s, "match set_timeout");
    for (size_t i = 0; same && i < M.ne; i++) {
        void *v = NULL;
        size_t len = 0;
        same = mpistore_get(s, M.e[i].key, &v, &len) == 0 && len == M.e[i].vlen &&
               memcmp(v, M.e[i].val, len) == 0;
        mpistore_free(v);
    }
    expect_ok(mpistore_set_timeout(s, M.hs[0].timeout), s, "match set_timeout");
    return same;
}

static void op_multi_set(fin_t *in)
{
    int hi = handle_arg(in);
    kset_t ks;
    varg_t va[MAXMULTI];
    const void *vals[MAXMULTI];
    size_t lens[MAXMULTI];
    keys_arg(in, hd_of(hi), &ks);
    unsigned err = ks.err;
    for (size_t i = 0; i < ks.n; i++) {
        value_arg(in, &va[i]);
        vals[i] = va[i].v;
        lens[i] = va[i].len;
        err |= va[i].err;
    }
    uint8_t nulls = fuzz_byte(in) % 8;
    const void *const *pv = nulls == 1 ? NULL : vals;
    const size_t *pl = nulls == 2 ? NULL : lens;
    if (ks.n && (!pv || !pl))
        err |= ERRBIT(MPISTORE_EINVAL);
    mpistore_t *h = h_of(hi);
    int rc = mpistore_multi_set(h, ks.arr, pv, pl, ks.n);
    if (!h || err) {
        expect_fail(rc, h ? err : ERRBIT(MPISTORE_EINVAL), h, "multi_set");
        return;
    }
    if (rc == 0) { /* every pair set, in order; none may have had to fail */
        for (size_t i = 0; i < ks.n; i++)
            model_write(0, h, ks.k[i].full, va[i].buf, va[i].len, "multi_set");
        return;
    }
    /* ENOSPC at some pair j: pairs before j are set (documented).  Find the
     * j whose predicted state is the store's, among those allowed to fail. */
    CHECK(rc == -MPISTORE_ENOSPC, "multi_set: %s (%s)", errname(rc), mpistore_errmsg(h));
    M.full = 1;
    static ent_t save[MAXE];
    size_t save_n = M.ne;
    memcpy(save, M.e, sizeof save);
    for (size_t j = 0; j < ks.n; j++) {
        int must, may;
        enospc_bounds(ks.k[j].full, va[j].len, &must, &may);
        if (may && store_matches_model()) {
            for (size_t i = 0; i < ks.n; i++)
                touch(ks.k[i].full);
            return;
        }
        CHECK(!must, "multi_set: pair %zu had to fail with ENOSPC, the store says a later one did",
              j);
        touch(ks.k[j].full);
        model_put(ks.k[j].full, va[j].buf, va[j].len);
    }
    M.ne = save_n;
    memcpy(M.e, save, sizeof save);
    fail("multi_set returned ENOSPC, but no pair that may fail explains the store's state (%s)",
         mpistore_errmsg(h));
}

static void op_append(fin_t *in)
{
    int hi = handle_arg(in);
    karg_t k;
    varg_t v;
    key_arg(in, hd_of(hi), &k);
    value_arg(in, &v);
    mpistore_t *h = h_of(hi);
    int rc = mpistore_append(h, k.key, v.v, v.len);
    if (!h || k.err || v.err) {
        expect_fail(rc, h ? k.err | v.err : ERRBIT(MPISTORE_EINVAL), h, "append");
        return;
    }
    const ent_t *e = find(k.full);
    unsigned char nv[2 * VBUF];
    size_t n = 0;
    if (e) {
        memcpy(nv, e->val, e->vlen);
        n = e->vlen;
    }
    memcpy(nv + n, v.buf, v.len);
    n += v.len;
    if (n > M.o.max_value_len) {
        expect_fail(rc, ERRBIT(MPISTORE_ETOOBIG), h, "append beyond max_value_len");
        {
            verify_all("append ETOOBIG");
            return;
        }
    }
    model_write(rc, h, k.full, nv, n, "append");
}

static void op_timeout(fin_t *in)
{
    static const double T[] = {TINY_T, 1e-4, 0.0, -1.0, NAN, INFINITY, -INFINITY, 2e-4};
    int hi = handle_arg(in);
    double t = T[fuzz_byte(in) % 8];
    mpistore_t *h = h_of(hi);
    int rc = mpistore_set_timeout(h, t);
    if (!h || !(t >= 0 && isfinite(t))) {
        expect_fail(rc, ERRBIT(MPISTORE_EINVAL), h, "set_timeout");
    } else {
        expect_ok(rc, h, "set_timeout");
        M.hs[hi].timeout = t;
    }
    if (h)
        CHECK(mpistore_timeout(h) == M.hs[hi].timeout, "timeout %g, model %g", mpistore_timeout(h),
              M.hs[hi].timeout);
    else
        CHECK(mpistore_timeout(NULL) == -1.0, "timeout(NULL) is not -1");
}

static void op_prefix(fin_t *in)
{
    int hi = handle_arg(in);
    uint8_t sel = fuzz_byte(in);
    char p[KBUF] = "";
    const char *pp = p;
    int slot = -1;
    for (int i = 1; i < MAXH && slot < 0; i++)
        if (!M.hs[i].h)
            slot = i;
    if (slot < 0)
        return; /* no room in the model */
    switch (sel % 8) {
    case 0:
        pp = NULL;
        break;
    case 1:
        break; /* empty */
    case 2:
        fuzz_bytes(in, p, fuzz_byte(in) % 48);
        break;
    case 3: /* as long as it may be, and one more */
    case 4: {
        const hnd_t *hd = hd_of(hi);
        size_t len = M.o.max_key_len > hd->plen + 2 ? M.o.max_key_len - hd->plen - 2 : 1;
        len += sel % 8 == 4;
        memset(p, 'v', len < KBUF - 1 ? len : KBUF - 1);
        break;
    }
    default:
        snprintf(p, sizeof p, "%s", PREFIXES[sel % 4]);
    }
    mpistore_t *h = h_of(hi), *v = (mpistore_t *)&M, **pv = sel & 0x80 ? NULL : &v;
    int rc = mpistore_prefix(pv, h, pp);
    unsigned err = 0;
    const hnd_t *hd = hd_of(hi);
    if (!h || !pv || !pp || !pp[0])
        err = ERRBIT(MPISTORE_EINVAL);
    else if (hd->plen + strlen(pp) + 1 >= M.o.max_key_len)
        err = ERRBIT(MPISTORE_EKEYTOOLONG);
    if (err) {
        expect_fail(rc, err, h, "prefix");
        CHECK(v == (mpistore_t *)&M, "prefix wrote *out on failure");
        return;
    }
    expect_ok(rc, h, "prefix");
    hnd_t *nh = &M.hs[slot];
    memset(nh, 0, sizeof *nh);
    nh->h = v;
    nh->parent = hi;
    nh->plen = (size_t)snprintf(nh->prefix, KBUF, "%s%s/", hd->prefix, pp);
    nh->timeout = hd->timeout;
    M.hs[hi].nviews++;
    CHECK(mpistore_timeout(v) == nh->timeout, "a new view's timeout is not its parent's");
}

static void open_store(void)
{
    mpistore_t *s = NULL;
    int rc = mpistore_open(&s, MPI_COMM_SELF, &M.o);
    CHECK(rc == 0, "open: %s (%s)", errname(rc), mpistore_errmsg(NULL));
    memset(M.hs, 0, sizeof M.hs);
    M.hs[0].h = s;
    M.hs[0].parent = -1;
    M.hs[0].timeout = M.o.timeout_s;
    M.ne = 0;
    M.nt = 0;
}

static void op_close(fin_t *in)
{
    int hi = handle_arg(in);
    mpistore_t *h = h_of(hi);
    int rc = mpistore_close(h);
    if (!h) {
        expect_ok(rc, NULL, "close(NULL)");
        return;
    }
    hnd_t *hd = &M.hs[hi];
    if (hd->nviews > 0) {
        expect_fail(rc, ERRBIT(MPISTORE_ESTATE), h, "close with open views");
        return;
    }
    expect_ok(rc, NULL, "close");
    if (hi == 0) { /* the store is gone: start a fresh one */
        open_store();
        return;
    }
    M.hs[hd->parent].nviews--;
    memset(hd, 0, sizeof *hd);
}

static void op_misc(fin_t *in)
{
    int hi = handle_arg(in);
    mpistore_t *h = h_of(hi);
    uint8_t sel = fuzz_byte(in);
    if (sel % 2 == 0) {
        karg_t k;
        int rank = -5;
        key_arg(in, hd_of(hi), &k);
        int rc = mpistore_key_rank(h, k.key, sel & 2 ? NULL : &rank);
        unsigned err = k.err | (sel & 2 ? ERRBIT(MPISTORE_EINVAL) : 0);
        if (!h || err)
            expect_fail(rc, h ? err : ERRBIT(MPISTORE_EINVAL), h, "key_rank");
        else
            CHECK(rc == 0 && rank == 0, "key_rank: %s rank %d", errname(rc), rank);
    } else {
        mpistore_stats_t st;
        int rc = mpistore_stats(h, sel & 2 ? NULL : &st, sel & 4);
        if (!h || sel & 2)
            expect_fail(rc, ERRBIT(MPISTORE_EINVAL), h, "stats");
        else
            expect_ok(rc, h, "stats");
    }
    CHECK(mpistore_strerror((int)sel - 128)[0] && mpistore_errname((int)sel - 128)[0],
          "empty error text");
}

static void (*const OPS[OP_COUNT])(fin_t *) = {
    [OP_SET] = op_set,        [OP_GET] = op_get,          [OP_ADD] = op_add,
    [OP_CAS] = op_cas,        [OP_DELETE] = op_delete,    [OP_CHECK] = op_check,
    [OP_WAIT] = op_wait,      [OP_NUMKEYS] = op_num_keys, [OP_MGET] = op_multi_get,
    [OP_MSET] = op_multi_set, [OP_APPEND] = op_append,    [OP_TIMEOUT] = op_timeout,
    [OP_PREFIX] = op_prefix,  [OP_CLOSE] = op_close,      [OP_MISC] = op_misc,
};

static void close_all(void)
{
    /* views before their parents: repeat until only the store is left */
    for (int round = 0; round < MAXH; round++)
        for (int i = MAXH - 1; i >= 1; i--) {
            hnd_t *hd = &M.hs[i];
            if (!hd->h || hd->nviews)
                continue;
            expect_ok(mpistore_close(hd->h), hd->h, "final close of a view");
            M.hs[hd->parent].nviews--;
            memset(hd, 0, sizeof *hd);
        }
    expect_ok(mpistore_close(M.hs[0].h), NULL, "final close of the store");
    M.hs[0].h = NULL;
}

/* Keep MPI's plugins mapped at exit so that LeakSanitizer can name the module
 * of MPI's own leaks and tests/lsan.supp can match them (Open MPI 4.1 unloads
 * them whatever its parameters say); as tests/mpitest.c does. */
int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* MPI_Init and MPI_Finalize keep or drop some of their own allocations (Open
 * MPI's singleton start-up leaks a locality string).  LeakSanitizer's fast
 * unwinder cannot see through glibc and MPI frames to match tests/lsan.supp,
 * so exactly these two calls run with leak tracking off; every allocation of
 * the store, made while an input runs, stays checked. */
static void finalize(void)
{
    int fin = 0;
    if (getenv("FUZZ_STORE_STATS"))
        fprintf(stderr,
                "fuzz_store: %lu accepted writes; ENOSPC: %lu key limit, %lu value memory, "
                "%lu probe window; %lu fragmentation-possible writes that fit\n",
                ST.writes, ST.enospc_keys, ST.enospc_memory, ST.enospc_slots, ST.may_but_ok);
    MPI_Finalized(&fin);
    if (!fin) {
        __lsan_disable();
        MPI_Finalize();
        __lsan_enable();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int provided = 0;
    __lsan_disable();
    MPI_Init_thread(argc, argv, MPI_THREAD_SINGLE, &provided);
    __lsan_enable();
    atexit(finalize);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fin_t in = {data, size};
    memset(&M, 0, sizeof M);
    M.input = data;
    M.input_len = size;
    mpistore_options_init(&M.o);
    uint8_t kb = fuzz_byte(&in);
    M.o.keys_per_rank = 1 + kb % 8;
    M.o.max_key_len = 1 + fuzz_byte(&in) % 40;
    M.o.max_value_len = 1 + fuzz_byte(&in) % 64;
    M.o.bytes_per_rank = 256 + (size_t)(fuzz_byte(&in) % 8) * 64;
    if (!(kb & 0x80)) { /* limited to the initial sizes; else it grows */
        M.o.max_keys_per_rank = M.o.keys_per_rank;
        M.o.max_bytes_per_rank = M.o.bytes_per_rank;
    }
    M.o.timeout_s = TINY_T;
    open_store();
    M.op_index = -1;
    for (int i = 0; i < MAXOPS && in.n > 0; i++) {
        M.op_index = i;
        int op = fuzz_byte(&in) % OP_COUNT;
        if (getenv("FUZZ_STORE_TRACE")) /* which operation ran: for reading a crash */
            fprintf(stderr, "fuzz_store: op %d: opcode %d\n", i, op);
        OPS[op](&in);
    }
    M.op_index = MAXOPS;
    verify_all("the last operation");
    close_all();
    return 0;
}
