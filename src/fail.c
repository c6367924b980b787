/* The store-wide failure word (docs/design.md, "Limits and a store that is
 * truly full"): a write that failed for lack of space tells every rank, so
 * that waits for keys that can never come end at once. */
#include "errors.h"
#include "core.h"
#include "rma.h"
#include "fail.h"

#include <string.h>

int ms_fail_publish(mpistore_t *s, int code, unsigned kind)
{
    ms_core_t *c = s->core;
    uint64_t w = ((uint64_t)kind << 40) | ((uint64_t)(uint32_t)-code << 32) |
                 (uint64_t)(c->rank + 1);
    char keep[MS_ERRMSG_LEN];
    memcpy(keep, s->errmsg, sizeof keep); /* the caller's message stays */
    int rc = 0;
    for (int r = 0; r < c->nranks && rc == 0; r++)
        rc = ms_put_u64(s, r, MS_OFF_FAIL, &w);
    if (rc == 0)
        (void)ms_flush_all(s);
    memcpy(s->errmsg, keep, sizeof keep);
    return code;
}

static const char *fail_advice(unsigned kind)
{
    switch (kind) {
    case MS_FAIL_KEYS:
        return "raise max_keys_per_rank (environment MPISTORE_MAX_KEYS_PER_RANK; 0 = no limit)";
    case MS_FAIL_BYTES:
        return "raise max_bytes_per_rank (MPISTORE_MAX_BYTES_PER_RANK) or bytes_per_rank "
               "(MPISTORE_BYTES_PER_RANK)";
    case MS_FAIL_LEVELS:
        return "raise keys_per_rank (environment MPISTORE_KEYS_PER_RANK)";
    default:
        return "the machine's memory is exhausted";
    }
}

/* This rank's copy of the failure word: a local read, not counted as an
 * operation's round trip. */
static int fail_word(mpistore_t *s, uint64_t *w)
{
    ms_core_t *c = s->core;
    uint64_t unused = 0;
    int rc = MPI_Fetch_and_op(&unused, w, MPI_UINT64_T, c->rank, MS_OFF_FAIL, MPI_NO_OP, c->win);
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_flush(c->rank, c->win);
    return rc == MPI_SUCCESS ? 0 : ms_mpierr(s, rc, "MPI_Fetch_and_op (failure word)", c->rank);
}

int ms_fail_clear(mpistore_t *s)
{
    static const uint64_t zero = 0;
    ms_core_t *c = s->core;
    uint64_t w = 0;
    int rc = fail_word(s, &w);
    for (int r = 0; rc == 0 && w != 0 && r < c->nranks; r++)
        rc = ms_put_u64(s, r, MS_OFF_FAIL, &zero);
    if (rc == 0 && w != 0)
        rc = ms_flush_all(s);
    return rc;
}

int ms_fail_check(mpistore_t *s, const char *what)
{
    uint64_t w = 0;
    int rc = fail_word(s, &w);
    if (rc || w == 0)
        return rc;
    int code = (int)((w >> 32) & 0xFFu), rank = (int)(w & 0xFFFFFFFFu) - 1;
    unsigned kind = (unsigned)(w >> 40) & 0xFFu;
    if (code <= 0 || code >= MPISTORE_ERRNO_COUNT_)
        code = MPISTORE_ENOSPC;
    return ms_err(s, code,
                  "the store is full: rank %d failed a write with %s, so %s cannot complete; %s",
                  rank, mpistore_errname(code), what, fail_advice(kind));
}

const char *ms_fail_advice(unsigned kind)
{
    return fail_advice(kind);
}
