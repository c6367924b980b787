/* list_keys: scan every rank's index through MPI atomics and validated block
 * reads (docs/design.md, "list_keys"). */
#include "errors.h"
#include "wait.h"
#include "ops.h"

#include <stdlib.h>
#include <string.h>

typedef struct keylist {
    char **v;
    size_t n, cap;
} keylist_t;

static int keylist_add(mpistore_t *s, keylist_t *l, const char *key, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "list_keys: out of memory");
        l->v = nv;
        l->cap = cap;
    }
    char *k = mpistore__dup_value(key, len);
    if (!k)
        return mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "list_keys: out of memory");
    l->v[l->n++] = k;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keylist_free(keylist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* One index table (level 0 of a rank, or a grown level on its host): where
 * it is and how many slots it has. */
typedef struct table {
    int target;
    size_t ctl, desc; /* displacements of slot 0's words */
    size_t nphys;
} table_t;

/* A table, read atomically element by element (one round trip). */
static int read_index(mpistore_t *s, const table_t *tb, uint32_t *ctl, uint64_t *desc)
{
    int rc = mpistore__read_u32s(&s->core->rma, tb->target, tb->ctl, ctl, tb->nphys * MS_CTL_WORDS);
    if (rc == 0)
        rc = mpistore__read_u64s(&s->core->rma, tb->target, tb->desc, desc, tb->nphys);
    return rc ? rc : mpistore__flush(&s->core->rma, tb->target);
}

static int stable(const uint32_t *ctl, const uint64_t *desc, size_t i)
{
    uint32_t l = ctl[i * MS_CTL_WORDS + MS_CTL_LOCK];
    return !mpistore__lock_held(l) &&
           (mpistore__lock_ver(l) & MS_DESC_VER_MASK) == mpistore__desc_ver(desc[i]);
}

/* Accept a validated block's key if it is a user key under the view. */
static int accept(mpistore_t *s, const mpistore__block_t *b, keylist_t *out)
{
    size_t klen = 0;
    const char *key = mpistore__block_key(b, &klen);
    if (memchr(key, 0, klen)) /* internal (queue) entry */
        return 0;
    if (klen <= s->prefix_len || memcmp(key, s->prefix ? s->prefix : "", s->prefix_len) != 0)
        return 0;
    return keylist_add(s, out, key + s->prefix_len, klen - s->prefix_len);
}

/* Rounds over a table until every slot was read stable and validated. */
static int scan_table(mpistore_t *s, const table_t *tb, double deadline, uint32_t *ctl,
                      uint64_t *desc, uint64_t *desc2, mpistore__block_t *blk,
                      unsigned char *pending, keylist_t *out)
{
    mpistore__core_t *c = s->core;
    mpistore__backoff_t bo = {0};
    size_t left = tb->nphys;
    int rc = 0, r = tb->target;
    memset(pending, 1, tb->nphys);
    while (rc == 0 && left > 0) {
        rc = read_index(s, tb, ctl, desc);
        for (size_t i = 0; rc == 0 && i < tb->nphys; i++) {
            if (!pending[i] || !stable(ctl, desc, i))
                continue;
            if (!mpistore__desc_valid(desc[i])) {
                pending[i] = 0;
                left--;
                continue;
            }
            rc = mpistore__block_issue(s->core, desc[i], 0, &blk[i]); /* header + 64 key bytes */
        }
        if (rc == 0)
            rc = mpistore__flush_all(&s->core->rma);
        for (size_t i = 0; rc == 0 && i < tb->nphys; i++) {
            int torn = 0;
            if (blk[i].buf)
                rc = mpistore__block_complete(s->core, desc[i], &blk[i], 0, &torn);
            if (torn)
                mpistore__block_release(&blk[i]); /* reused block: the validation fails */
        }
        if (rc == 0)
            rc = mpistore__read_u64s(&s->core->rma, r, tb->desc, desc2, tb->nphys);
        if (rc == 0)
            rc = mpistore__flush(&s->core->rma, r);
        if (rc) /* no Get may still write into a buffer released below */
            mpistore__complete_all(&c->rma.rq, &c->rma.w);
        for (size_t i = 0; i < tb->nphys; i++) {
            if (rc == 0 && blk[i].buf && desc2[i] == desc[i]) { /* seqlock held */
                rc = accept(s, &blk[i], out);
                pending[i] = 0;
                left--;
            }
            mpistore__block_release(&blk[i]);
        }
        if (rc == 0 && left > 0) {
            if (mpistore__expired(deadline))
                rc = mpistore__err(mpistore__sink(s), MPISTORE_ETIMEDOUT,
                                   "timeout in list_keys: %zu slots of rank %d kept changing", left,
                                   r);
            else
                mpistore__backoff(s->core->rma.w.comm, &s->core->lock, &bo);
        }
    }
    return rc;
}

/* Every table of home rank r: level 0, then the grown levels it had
 * published when this scan began (a key inserted into a later level during
 * the call was not present during the whole call). */
static int scan_rank(mpistore_t *s, int r, double deadline, uint32_t **ctl, uint64_t **desc,
                     uint64_t **desc2, mpistore__block_t **blk, unsigned char **pending,
                     size_t *cap, keylist_t *out)
{
    mpistore__core_t *c = s->core;
    int rc = mpistore__levels_refresh(&s->core->lev, &s->core->rma, r);
    for (unsigned l = 0; rc == 0 && l <= c->lev.cache[r].n; l++) {
        table_t tb = {r, mpistore__ctl_off(&s->core->lay, 0, 0),
                      mpistore__desc_off(&s->core->lay, 0), c->lay.nphys};
        if (l > 0) {
            size_t co, dof, cn, total;
            mpistore__level_offsets(&s->core->lay, l, &co, &dof, &cn, &total);
            tb.target = c->lev.cache[r].host[l];
            tb.ctl = MS_DYN | (size_t)(c->lev.cache[r].addr[l] + co);
            tb.desc = MS_DYN | (size_t)(c->lev.cache[r].addr[l] + dof);
            tb.nphys = mpistore__level_nphys(&s->core->lay, l);
        }
        if (tb.nphys > *cap) {
            size_t n = tb.nphys;
            free(*ctl);
            free(*desc);
            free(*desc2);
            free(*blk);
            free(*pending);
            *ctl = malloc(n * MS_CTL_WORDS * sizeof **ctl);
            *desc = malloc(n * sizeof **desc);
            *desc2 = malloc(n * sizeof **desc2);
            *blk = calloc(n, sizeof **blk);
            *pending = malloc(n);
            *cap = n;
            if (!*ctl || !*desc || !*desc2 || !*blk || !*pending) {
                *cap = 0;
                return mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                                     "list_keys: out of memory");
            }
        }
        rc = scan_table(s, &tb, deadline, *ctl, *desc, *desc2, *blk, *pending, out);
    }
    return rc;
}

int mpistore_list_keys(mpistore_t *s, char ***keys, size_t *nkeys)
{
    MS_ENTER(s);
    mpistore__core_t *c = s->core;
    keylist_t out = {0};
    int rc = 0;
    uint32_t *ctl = NULL;
    uint64_t *desc = NULL, *desc2 = NULL;
    mpistore__block_t *blk = NULL;
    unsigned char *pending = NULL;
    size_t cap = 0;
    if (!keys || !nkeys) {
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "list_keys: keys or nkeys is NULL");
        goto out;
    }
    out.v = malloc(sizeof *out.v);
    out.cap = 1;
    if (!out.v) {
        rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM, "list_keys: out of memory");
        goto out;
    }
    double deadline = mpistore__deadline(s->timeout);
    for (int r = 0; rc == 0 && r < c->rma.w.nranks; r++)
        rc = scan_rank(s, r, deadline, &ctl, &desc, &desc2, &blk, &pending, &cap, &out);
    if (rc == 0 && out.n > 1) {
        /* A key deleted and re-inserted into a slot not yet scanned can be
         * seen twice: list each key once. */
        qsort(out.v, out.n, sizeof *out.v, cmp_key);
        size_t u = 1;
        for (size_t i = 1; i < out.n; i++) {
            if (strcmp(out.v[i], out.v[u - 1]) == 0)
                free(out.v[i]);
            else
                out.v[u++] = out.v[i];
        }
        out.n = u;
    }
    if (rc == 0) {
        *keys = out.v;
        *nkeys = out.n;
        out.v = NULL;
        out.n = 0;
    }
out:
    keylist_free(&out);
    free(ctl);
    free(desc);
    free(desc2);
    free(blk);
    free(pending);
    return mpistore__api_leave(s, rc);
}
