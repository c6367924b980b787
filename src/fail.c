/* The store-wide failure word (docs/design.md, "Limits and a store that is
 * truly full"): a write that failed for lack of space tells every rank, so
 * that waits for keys that can never come end at once. */
#include "errors.h"
#include "fail.h"

int mpistore__fail_publish(mpistore__rma_t *r, int code, unsigned kind)
{
    uint64_t w =
        ((uint64_t)kind << 40) | ((uint64_t)(uint32_t)-code << 32) | (uint64_t)(r->w.rank + 1);
    mpistore__err_t keep = *r->w.err; /* the failure being published stays the message */
    int rc = 0;
    for (int t = 0; t < r->w.nranks && rc == 0; t++)
        rc = mpistore__replace_u64(r, t, MS_OFF_FAIL, &w);
    if (rc == 0)
        (void)mpistore__flush_all(r);
    *r->w.err = keep;
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

int mpistore__fail_clear(mpistore__rma_t *r)
{
    static const uint64_t zero = 0;
    uint64_t w = 0; /* this rank's copy: a local read, not an operation's round trip */
    int rc = mpistore__read_local_u64(r, MS_OFF_FAIL, &w);
    for (int t = 0; rc == 0 && w != 0 && t < r->w.nranks; t++)
        rc = mpistore__replace_u64(r, t, MS_OFF_FAIL, &zero);
    if (rc == 0 && w != 0)
        rc = mpistore__flush_all(r);
    return rc;
}

int mpistore__fail_check(mpistore__rma_t *r, const char *what)
{
    uint64_t w = 0;
    int rc = mpistore__read_local_u64(r, MS_OFF_FAIL, &w);
    if (rc || w == 0)
        return rc;
    int code = (int)((w >> 32) & 0xFFu), rank = (int)(w & 0xFFFFFFFFu) - 1;
    unsigned kind = (unsigned)(w >> 40) & 0xFFu;
    if (code <= 0 || code >= MPISTORE_ERRNO_COUNT_)
        code = MPISTORE_ENOSPC;
    return mpistore__err(
        r->w.err, code,
        "the store is full: rank %d failed a write with %s, so %s cannot complete; %s", rank,
        mpistore_errname(code), what, fail_advice(kind));
}

const char *mpistore__fail_advice(unsigned kind)
{
    return fail_advice(kind);
}
