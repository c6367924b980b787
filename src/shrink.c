/* mpistore_shrink: after a rank died, a new store over the survivors with
 * every key that survived (docs/design.md, "Shrink").  ULFM's pattern:
 * revoke the store's communicator (the survivors' waits fail and they join),
 * MPIX_Comm_shrink it, copy, and MPIX_Comm_agree on the outcome; a death
 * during any step makes every survivor start again over fewer ranks.
 *
 * The copy: once MPIX_Comm_shrink has returned, every survivor is inside
 * this call, so no live rank writes the old store any more.  Each survivor
 * reads the keys homed on it (level 0 in its own window, grown levels
 * wherever they are hosted) through the old windows, from live ranks only,
 * and writes them into the new store: a counter by an add of its value on
 * the absent key (it is created a counter), anything else (strings, a
 * queue's internal key with its records in order) by a set of the same
 * bytes.  A slot that a dead rank left locked holds either the value before
 * the dead rank's write (its block is intact) or one the dead rank wrote in
 * its own memory (lost): the write never completed, so either is a value
 * the key had. */
#include "clock.h"
#include "errors.h"
#include "ops.h"
#include "write_plan.h"

#include <stdlib.h>
#include <string.h>

#ifdef MPISTORE_HAVE_ULFM
#include <mpi-ext.h>
#endif

#ifdef MPISTORE_HAVE_ULFM

/* One key read from the old store. */
typedef struct entry {
    char *key; /* klen bytes and a NUL (a queue's internal key contains one more) */
    size_t klen;
    int counter; /* a counter: its value is cnt */
    int64_t cnt;
    unsigned char *val; /* otherwise its value */
    size_t vlen;
} entry_t;

typedef struct entries {
    entry_t *v;
    size_t n, cap;
    size_t lost; /* keys homed here that could not be read */
    size_t seen; /* valid descriptors in the tables read */
} entries_t;

static void entries_free(entries_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].key);
        free(e->v[i].val);
    }
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* One index table of this rank's keys: where it is, how many slots. */
typedef struct table {
    int target;
    size_t ctl, desc, cnt; /* displacements of slot 0's words */
    size_t nphys;
} table_t;

static int entry_add(mpistore__core_t *c, entries_t *e, const mpistore__block_t *b, int64_t cnt)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        entry_t *nv = realloc(e->v, cap * sizeof *nv);
        if (!nv)
            return mpistore__err(&c->err, MPISTORE_ENOMEM, "shrink: out of memory");
        e->v = nv;
        e->cap = cap;
    }
    entry_t *x = &e->v[e->n];
    memset(x, 0, sizeof *x);
    const char *key = mpistore__block_key(b, &x->klen);
    x->key = mpistore__dup_value(key, x->klen);
    x->counter = b->counter;
    x->cnt = cnt;
    if (!b->counter) {
        const unsigned char *v = mpistore__block_value(b, &x->vlen);
        x->val = mpistore__dup_value(v, x->vlen);
    }
    if (!x->key || (!b->counter && !x->val)) {
        free(x->key);
        free(x->val);
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "shrink: out of memory");
    }
    e->n++;
    return 0;
}

/* The key of slot i of table tb (descriptor d), if its block is on a live
 * rank: read whole, with the counter word for a counter. */
static int read_slot(mpistore__core_t *c, const table_t *tb, size_t i, uint64_t d,
                     const unsigned char *alive, entries_t *out)
{
    int br = mpistore__desc_rank(d), torn = 1;
    int64_t cnt = 0;
    mpistore__block_t b = {0};
    if (!alive[br]) { /* replicas: its copy on br's mirror */
        int mr = c->lay.mirror ? mpistore__mirror_of(&c->rma, br) : br;
        if (!alive[mr]) {
            out->lost++; /* its value died with rank br */
            return 0;
        }
        b.mirror = 1;
        br = mr;
    }
    int rc = mpistore__block_issue(c, d, 0, &b);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, br);
    if (rc == 0)
        rc = mpistore__block_complete(c, d, &b, 1, &torn);
    if (rc == 0 && !torn && b.counter) {
        rc = mpistore__read_i64(&c->rma, tb->target, tb->cnt + i * sizeof(int64_t), &cnt);
        if (rc == 0)
            rc = mpistore__flush(&c->rma, tb->target);
    }
    if (rc == 0 && torn)
        out->lost++; /* a block the dead rank was writing */
    else if (rc == 0)
        rc = entry_add(c, out, &b, cnt);
    mpistore__block_release(&b);
    return rc;
}

static int read_table(mpistore__core_t *c, const table_t *tb, const unsigned char *alive,
                      entries_t *out)
{
    uint64_t *desc = malloc(tb->nphys * sizeof *desc);
    if (!desc)
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "shrink: out of memory");
    int rc = mpistore__read_u64s(&c->rma, tb->target, tb->desc, desc, tb->nphys);
    if (rc == 0)
        rc = mpistore__flush(&c->rma, tb->target);
    for (size_t i = 0; rc == 0 && i < tb->nphys; i++) {
        if (!mpistore__desc_valid(desc[i]))
            continue;
        out->seen++;
        rc = read_slot(c, tb, i, desc[i], alive, out);
    }
    free(desc);
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return memcmp(x->key, y->key, x->klen);
}

/* The key count at off of this rank's window (its own, or a mirror's), less
 * the seen keys read for it, is what could not be read. */
static int count_lost(mpistore__core_t *c, size_t off, size_t seen, entries_t *out)
{
    int64_t count = 0;
    int rc = mpistore__read_i64(&c->rma, c->rma.w.rank, off, &count);
    if (rc == 0)
        rc = mpistore__flush_self(&c->rma);
    if (rc == 0 && count > 0 && (size_t)count > seen)
        out->lost += (size_t)count - seen;
    return rc;
}

/* Every key homed on this rank of the old store, read from live ranks:
 * level 0 here, then each grown level on its host.  The key count of this
 * home rank, less the keys found, is what sat in levels on dead hosts.
 * With replicas, if the previous rank died, its keys too, from the mirror
 * of its window that this rank holds (blocks of dead writers from theirs). */
static int collect(mpistore__core_t *c, const unsigned char *alive, entries_t *out)
{
    const mpistore__layout_t *y = &c->lay;
    int me = c->rma.w.rank;
    table_t t0 = {me, mpistore__ctl_off(y, 0, 0), mpistore__desc_off(y, 0), mpistore__cnt_off(y, 0),
                  y->nphys};
    int rc = read_table(c, &t0, alive, out);
    if (rc == 0)
        rc = mpistore__levels_refresh(&c->lev, &c->rma, me);
    const mpistore__levc_t *lc = &c->lev.cache[me];
    for (unsigned l = 1; rc == 0 && l <= lc->n; l++) {
        if (!alive[lc->host[l]])
            continue; /* counted below */
        size_t co, dof, cn, total;
        mpistore__level_offsets(y, l, &co, &dof, &cn, &total);
        table_t tb = {lc->host[l], MS_DYN | (size_t)(lc->addr[l] + co),
                      MS_DYN | (size_t)(lc->addr[l] + dof), MS_DYN | (size_t)(lc->addr[l] + cn),
                      mpistore__level_nphys(y, l)};
        rc = read_table(c, &tb, alive, out);
    }
    if (rc == 0)
        rc = count_lost(c, MS_OFF_COUNT, out->seen, out);
    /* replicas: the keys of a dead previous rank, from its mirror here */
    int prev = me > 0 ? me - 1 : c->rma.w.nranks - 1;
    if (rc == 0 && y->mirror && !alive[prev]) {
        size_t seen = out->seen;
        table_t tm = {me, t0.ctl + y->mirror, t0.desc + y->mirror, t0.cnt + y->mirror, y->nphys};
        rc = read_table(c, &tm, alive, out);
        if (rc == 0)
            rc = count_lost(c, y->mirror + MS_OFF_COUNT, out->seen - seen, out);
    }
    if (rc == 0 && out->n > 1) { /* a key is written once, whatever a dead writer left */
        qsort(out->v, out->n, sizeof *out->v, cmp_entry);
        size_t u = 1;
        for (size_t i = 1; i < out->n; i++) {
            if (cmp_entry(&out->v[i], &out->v[u - 1]) == 0) {
                free(out->v[i].key);
                free(out->v[i].val);
            } else {
                out->v[u++] = out->v[i];
            }
        }
        out->n = u;
    }
    return rc;
}

/* Write the entries into the new store ns (its core entered here). */
static int copy_into(mpistore_t *ns, const entries_t *e)
{
    mpistore__core_t *nc = ns->core;
    int rc = 0;
    mpistore__api_enter(ns);
    for (size_t i = 0; rc == 0 && i < e->n; i++) {
        const entry_t *x = &e->v[i];
        mpistore__key_t k;
        if (memchr(x->key, 0, x->klen))
            mpistore__key_internal(nc, x->key, x->klen, &k);
        else
            rc = mpistore__key_prepare(nc, (mpistore__prefix_t){.str = NULL, .len = 0}, x->key, &k);
        if (rc)
            break;
        mpistore__wreq_t w = {
            .kind = x->counter ? W_ADD : W_SET, .delta = x->cnt, .val = x->val, .vlen = x->vlen};
        rc = mpistore__kwrite(nc, &k, &w, mpistore__deadline(ns->timeout));
        free(w.cur);
        mpistore__key_release(&k);
    }
    return mpistore__api_leave(ns, rc);
}

/* Which ranks of old are in nc (the survivors): alive[r] for r in old. */
static int survivors(MPI_Comm old, MPI_Comm nc, unsigned char *alive, int nold)
{
    MPI_Group go = MPI_GROUP_NULL, gn = MPI_GROUP_NULL;
    int nn = 0, rc = MPI_Comm_group(old, &go);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_group(nc, &gn);
    if (rc == MPI_SUCCESS)
        rc = MPI_Group_size(gn, &nn);
    int *in = rc == MPI_SUCCESS ? malloc(2 * (size_t)nn * sizeof *in) : NULL;
    if (rc == MPI_SUCCESS && !in)
        rc = MPI_ERR_NO_MEM;
    for (int i = 0; rc == MPI_SUCCESS && i < nn; i++)
        in[i] = i;
    if (rc == MPI_SUCCESS)
        rc = MPI_Group_translate_ranks(gn, nn, in, go, in + nn);
    memset(alive, 0, (size_t)nold);
    for (int i = 0; rc == MPI_SUCCESS && i < nn; i++)
        if (in[nn + i] >= 0 && in[nn + i] < nold)
            alive[in[nn + i]] = 1;
    free(in);
    if (go != MPI_GROUP_NULL)
        MPI_Group_free(&go);
    if (gn != MPI_GROUP_NULL)
        MPI_Group_free(&gn);
    return rc;
}

/* Did a rank of comm die (MPI knows of it)? */
static int any_failed(MPI_Comm comm)
{
    MPI_Group g = MPI_GROUP_NULL;
    int n = 0;
    if (MPIX_Comm_get_failed(comm, &g) == MPI_SUCCESS)
        MPI_Group_size(g, &n);
    if (g != MPI_GROUP_NULL)
        MPI_Group_free(&g);
    return n > 0;
}

/* A new store that will not be used: its communicator revoked, so that no
 * survivor waits in it; closed only once the shrink is over.  Closed at
 * once, before the next attempt's windows are made, Open MPI 5.0.11 aborted
 * the survivors inside that MPI_Win_create_dynamic (an error handler of the
 * freed windows' communicator, run from its progress loop). */
static void drop_store(mpistore_t *ns, mpistore_t **dropped)
{
    if (!ns)
        return;
    MPIX_Comm_revoke(ns->core->rma.w.comm);
    *dropped = ns;
}

enum {
    AGREE_OK = 1,       /* this rank's attempt succeeded */
    AGREE_DEATHS = 2,   /* ... or failed only because a rank died */
    AGREE_NO_NOSPC = 4, /* this rank did not fail with ENOSPC */
    AGREE_NO_NOMEM = 8, /* ... nor with ENOMEM */
};

/* One attempt over communicator nc (a shrunk copy of the store's): 0 and
 * *out, or a negative code with *retry set when a death caused it (every
 * survivor then decides the same, by MPIX_Comm_agree) and the new store
 * made in vain, if any, in *dropped. */
static int attempt(mpistore_t *s, MPI_Comm nc, unsigned char *alive, mpistore_t **out, size_t *lost,
                   int *retry, mpistore_t **dropped)
{
    mpistore__core_t *c = s->core;
    entries_t e = {0};
    mpistore_t *ns = NULL;
    unsigned long long mine = 0, sum = 0;
    int rc = survivors(c->rma.w.comm, nc, alive, c->rma.w.nranks) == MPI_SUCCESS
                 ? 0
                 : mpistore__err(&c->err, MPISTORE_EMPI, "shrink: cannot name the survivors");
    if (rc == 0)
        rc = collect(c, alive, &e);
    if (rc == 0 && (rc = mpistore_open(&ns, nc, &c->opts)) != 0)
        (void)mpistore__err(&c->err, -rc, "shrink: opening the survivors' store: %s",
                            mpistore_errmsg(NULL));
    if (rc == 0 && (rc = copy_into(ns, &e)) != 0)
        (void)mpistore__err(&c->err, -rc, "shrink: copying the keys: %s", mpistore_errmsg(ns));
    mine = e.lost;
    if (rc == 0) {
        int mrc = MPI_Allreduce(&mine, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, nc);
        if (mrc != MPI_SUCCESS)
            rc = mpistore__mpierr(&c->err, mrc, "MPI_Allreduce (shrink)", -1);
    }
    entries_free(&e);
    /* A rank that failed here may have left the others in a collective on
     * nc (the new store's open, the sum above): revoked, those return. */
    if (rc != 0)
        (void)MPIX_Comm_revoke(nc);
    int flag = rc == 0 ? AGREE_OK | AGREE_DEATHS : any_failed(nc) ? AGREE_DEATHS : 0;
    flag |= (rc != -MPISTORE_ENOSPC ? AGREE_NO_NOSPC : 0) |
            (rc != -MPISTORE_ENOMEM ? AGREE_NO_NOMEM : 0);
    int arc = MPIX_Comm_agree(nc, &flag);
    if (arc == MPI_SUCCESS && (flag & AGREE_OK)) {
        *out = ns;
        *lost = (size_t)sum;
        return 0;
    }
    drop_store(ns, dropped);
    *retry = arc != MPI_SUCCESS || (flag & AGREE_DEATHS);
    if (*retry)
        return rc ? rc
                  : mpistore__err(&c->err, MPISTORE_EPROCFAILED,
                                  "shrink: a rank died during the shrink");
    /* every survivor returns the same code: that of the rank that failed */
    if (!(flag & AGREE_NO_NOSPC))
        return rc == -MPISTORE_ENOSPC
                   ? rc
                   : mpistore__err(&c->err, MPISTORE_ENOSPC,
                                   "shrink: the survivors' store cannot hold the keys (another "
                                   "rank's write failed)");
    if (!(flag & AGREE_NO_NOMEM))
        return rc == -MPISTORE_ENOMEM ? rc
                                      : mpistore__err(&c->err, MPISTORE_ENOMEM,
                                                      "shrink: out of memory on another rank");
    return rc ? rc : mpistore__err(&c->err, MPISTORE_EMPI, "shrink: it failed on another rank");
}

/* The shrink proper, with the core entered and a failure known. */
static int shrink(mpistore_t *s, mpistore_t **out, size_t *lost)
{
    mpistore__core_t *c = s->core;
    MPI_Comm comm = c->rma.w.comm, cur = comm;
    unsigned char *alive = malloc((size_t)c->rma.w.nranks);
    if (!alive)
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "shrink: out of memory");
    mpistore_t **dropped = calloc((size_t)c->rma.w.nranks + 1, sizeof *dropped);
    if (!dropped) {
        free(alive);
        return mpistore__err(&c->err, MPISTORE_ENOMEM, "shrink: out of memory");
    }
    int rc = 0, retry = 1, ndropped = 0;
    (void)MPIX_Comm_revoke(comm); /* the others' waits fail, and they come here */
    for (int round = 0; retry && round <= c->rma.w.nranks; round++) {
        MPI_Comm nc = MPI_COMM_NULL;
        retry = 0;
        int mrc = MPIX_Comm_shrink(cur, &nc);
        if (cur != comm)
            MPI_Comm_free(&cur);
        if (mrc != MPI_SUCCESS) {
            rc = mpistore__mpierr(&c->err, mrc, "MPIX_Comm_shrink", -1);
            break;
        }
        MPI_Comm_set_errhandler(nc, MPI_ERRORS_RETURN);
        mpistore_t *ns = NULL;
        size_t n = 0;
        rc = attempt(s, nc, alive, &ns, &n, &retry, &dropped[ndropped]);
        ndropped += dropped[ndropped] != NULL;
        if (rc == 0) {
            MPI_Comm_free(&nc); /* the new store has its own */
            ns->timeout = s->timeout;
            c->shrunk = 1;
            *out = ns;
            if (lost)
                *lost = n;
            break;
        }
        if (retry) { /* the others start again too */
            (void)MPIX_Comm_revoke(nc);
            cur = nc;
        } else {
            MPI_Comm_free(&nc);
        }
    }
    if (cur != comm && cur != MPI_COMM_NULL)
        MPI_Comm_free(&cur);
    for (int i = 0; i < ndropped; i++)
        (void)mpistore_close(dropped[i]);
    free(dropped);
    free(alive);
    return rc;
}

/* A caller may learn of a death before MPI does (gloo's socket to the dead
 * rank closes at once; MPI reports it 60-260 ms later): a shrink with no
 * failure known waits up to this long for MPI to report one. */
#define MS_SHRINK_GRACE_S 2.0

/* A failure known (within MS_SHRINK_GRACE_S) or the communicator revoked:
 * shrink. */
static int shrink_known(mpistore_t *s, mpistore_t **out, size_t *lost_keys)
{
    mpistore__core_t *c = s->core;
    int revoked = 0,
        rc = mpistore__ft_await(&c->ft, c->rma.w.comm, &c->err, MS_SHRINK_GRACE_S, &revoked);
    if (rc == 0 && c->ft.ndead == 0 && !revoked)
        rc = mpistore__err(&c->err, MPISTORE_ESTATE,
                           "shrink: no rank of the store has failed (MPI reported none within "
                           "%.1f s; nothing to shrink)",
                           MS_SHRINK_GRACE_S);
    if (rc == 0) {
        if (c->lock.quiet) /* collectives inside: Open MPI's idle yield back on */
            mpistore__mpiyield_release();
        rc = shrink(s, out, lost_keys);
        if (c->lock.quiet)
            mpistore__mpiyield_hold();
    }
    return rc;
}

#else /* no ULFM */

static int shrink_known(mpistore_t *s, mpistore_t **out, size_t *lost_keys)
{
    (void)out, (void)lost_keys;
    return mpistore__err(mpistore__sink(s), MPISTORE_ESTATE,
                         "shrink: this MPI has no fault-tolerance extension (ULFM), where a "
                         "dead rank ends the job (Open MPI 5 under 'mpiexec --with-ft ulfm' has "
                         "it)");
}

#endif

int mpistore_shrink(mpistore_t **out, mpistore_t *s, size_t *lost_keys)
{
    MS_ENTER(s);
    int rc = 0;
    if (!out)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "shrink: out is NULL");
    else if (s->parent)
        rc = mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                           "shrink: the handle is a prefix view or clone; shrink the store "
                           "mpistore_open returned");
    else
        rc = shrink_known(s, out, lost_keys);
    return mpistore__api_leave(s, rc);
}
