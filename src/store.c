/* Handles: prefix views and clones of a store, the handle's settings
 * (timeout), its counters (mpistore_stats), a key's home rank, its last
 * message, and the library's version. */
#include "errors.h"
#include "ops.h"
#include "mpistore_version.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *mpistore_errmsg(const mpistore_t *s)
{
    return s ? s->err.msg : mpistore__orphan_errmsg();
}

/* A new handle on parent's store, counted in parent's views until it is
 * closed.  Its key prefix is parent's, plus add and '/' if add is not NULL
 * (a prefix view; a clone has add NULL).  NULL if out of memory. */
static mpistore_t *new_handle(mpistore_t *parent, const char *add, size_t addlen)
{
    size_t len = parent->prefix_len + (add ? addlen + 1 : 0);
    mpistore_t *v = calloc(1, sizeof *v);
    char *p = len ? malloc(len + 1) : NULL;
    if (!v || (len && !p)) {
        free(v);
        free(p);
        return NULL;
    }
    if (parent->prefix_len)
        memcpy(p, parent->prefix, parent->prefix_len);
    if (add) {
        memcpy(p + parent->prefix_len, add, addlen);
        p[len - 1] = '/';
    }
    if (p)
        p[len] = 0;
    v->core = parent->core;
    v->parent = parent;
    v->prefix = p;
    v->prefix_len = len;
    v->timeout = parent->timeout;
    mpistore__apilock_take(&parent->core->lock);
    parent->nviews++;
    mpistore__apilock_give(&parent->core->lock);
    return v;
}

/* Was the handle's store shrunk (read under the API mutex: a shrink on
 * another thread writes it)? */
static int shrunk(mpistore_t *s)
{
    mpistore__apilock_take(&s->core->lock);
    int v = s->core->shrunk;
    mpistore__apilock_give(&s->core->lock);
    return v;
}

int mpistore_prefix(mpistore_t **out, mpistore_t *store, const char *prefix)
{
    if (!store)
        return mpistore__null_handle(__func__);
    if (shrunk(store))
        return mpistore__shrunk_err(&store->err, __func__);
    if (!out || !prefix)
        return mpistore__err(&store->err, MPISTORE_EINVAL, "prefix: out or prefix is NULL");
    size_t plen = strlen(prefix);
    if (plen == 0)
        return mpistore__err(&store->err, MPISTORE_EINVAL, "prefix: prefix is empty");
    size_t total = store->prefix_len + plen + 1;
    if (total >= store->core->lay.max_key_len)
        return mpistore__err(&store->err, MPISTORE_EKEYTOOLONG,
                             "prefix '%.64s' makes keys of at least %zu bytes, max_key_len is %zu",
                             prefix, total + 1, store->core->lay.max_key_len);
    mpistore_t *v = new_handle(store, prefix, plen);
    if (!v)
        return mpistore__err(&store->err, MPISTORE_ENOMEM, "prefix: out of memory");
    *out = v;
    return MPISTORE_OK;
}

/* A clone is accounted like a view of s (same prefix): see mpistore.h. */
int mpistore_clone(mpistore_t **out, mpistore_t *s)
{
    if (!s)
        return mpistore__null_handle(__func__);
    if (shrunk(s))
        return mpistore__shrunk_err(&s->err, __func__);
    if (!out)
        return mpistore__err(&s->err, MPISTORE_EINVAL, "clone: out is NULL");
    mpistore_t *v = new_handle(s, NULL, 0);
    if (!v)
        return mpistore__err(&s->err, MPISTORE_ENOMEM, "clone: out of memory");
    *out = v;
    return MPISTORE_OK;
}

int mpistore_set_timeout(mpistore_t *s, double seconds)
{
    if (!s)
        return mpistore__null_handle(__func__);
    if (!(seconds >= 0) || !isfinite(seconds))
        return mpistore__err(&s->err, MPISTORE_EINVAL, "set_timeout: %g s must be finite and >= 0",
                             seconds);
    s->timeout = seconds;
    return MPISTORE_OK;
}

double mpistore_timeout(const mpistore_t *s)
{
    return s ? s->timeout : -1.0;
}

int mpistore_stats(mpistore_t *s, mpistore_stats_t *out, bool reset)
{
    if (!s)
        return mpistore__null_handle(__func__);
    if (!out)
        return mpistore__err(&s->err, MPISTORE_EINVAL, "stats: out is NULL");
    mpistore__apilock_take(&s->core->lock);
    *out = s->core->rma.stats;
    if (reset)
        memset(&s->core->rma.stats, 0, sizeof s->core->rma.stats);
    mpistore__apilock_give(&s->core->lock);
    return MPISTORE_OK;
}

int mpistore_key_rank(mpistore_t *s, const char *key, int *rank)
{
    MS_ENTER(s);
    mpistore__key_t k = {0};
    int rc = rank ? mpistore__key_of(s, key, &k)
                  : mpistore__err(mpistore__sink(s), MPISTORE_EINVAL, "key_rank: rank is NULL");
    if (rc == 0)
        *rank = k.rank;
    mpistore__key_release(&k);
    return mpistore__api_leave(s, rc);
}

int mpistore_rank(mpistore_t *s, int *rank, int *size)
{
    MS_ENTER(s);
    if (rank)
        *rank = s->core->rma.w.rank;
    if (size)
        *size = s->core->rma.w.nranks;
    return mpistore__api_leave(s, MPISTORE_OK);
}

int mpistore_failed_ranks(mpistore_t *s, int **ranks, size_t *count)
{
    MS_ENTER(s);
    mpistore__core_t *c = s->core;
    /* MPI learns of deaths while it progresses: let it, once (on
     * MPI_COMM_SELF: on a revoked communicator MPI_Iprobe returns at once) */
    int flag = 0;
    (void)MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_SELF, &flag, MPI_STATUS_IGNORE);
    int rc = ranks && count ? mpistore__ft_poll(&c->ft, c->rma.w.comm, &c->err)
                            : mpistore__err(mpistore__sink(s), MPISTORE_EINVAL,
                                            "failed_ranks: ranks or count is NULL");
    int *out = NULL;
    if (rc == 0 && c->ft.ndead > 0) {
        out = malloc((size_t)c->ft.ndead * sizeof *out);
        if (out)
            memcpy(out, c->ft.dead, (size_t)c->ft.ndead * sizeof *out);
        else
            rc = mpistore__err(mpistore__sink(s), MPISTORE_ENOMEM,
                               "failed_ranks: out of memory for %d ranks", c->ft.ndead);
    }
    if (rc == 0) {
        *ranks = out;
        *count = (size_t)c->ft.ndead;
    }
    return mpistore__api_leave(s, rc);
}

void mpistore_free(void *p)
{
    free(p);
}

const char *mpistore_version(void)
{
    return MPISTORE_VERSION_STRING;
}
