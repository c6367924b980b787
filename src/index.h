/* The index (index.c): keys, probe-window snapshots of every level, and the
 * validated lookup of a key. */
#ifndef MPISTORE_INDEX_H
#define MPISTORE_INDEX_H

#include "block.h"
#include "core.h"
#include "status.h"

/* ---- keys (mpistore__key_t is in layout.h) ---- */
/* The key of a handle with prefix pre: validated (EINVAL, EKEYTOOLONG with
 * the message), prefixed, placed. */
int mpistore__key_prepare(mpistore__core_t *c, mpistore__prefix_t pre, const char *key,
                          mpistore__key_t *k);
/* An internal key: len bytes (containing a NUL) owned by the caller. */
void mpistore__key_internal(mpistore__core_t *c, const char *bytes, size_t len, mpistore__key_t *k);
void mpistore__key_release(mpistore__key_t *k);
/* Every key of an array argument: keys may be NULL only when nkeys is 0;
 * each must be a valid key (mpistore__key_prepare).  0 or <0 with the message
 * ("<op>: ..."). */
int mpistore__keys_check(mpistore__core_t *c, mpistore__prefix_t pre, const char *const *keys,
                         size_t nkeys, const char *op);

/* A snapshot: the key's probe window at every index level known, level 0
 * first (slots lstart[l] .. lstart[l+1]-1 are level l's).  Slot 0 is the
 * level-0 home slot. */
#define MS_SNAP_MAX (MS_PROBE_MAX * MS_MAX_LEVELS)
typedef struct mpistore__snap {
    int rank;           /* home rank */
    size_t first;       /* level-0 home bucket */
    size_t n;           /* slots, all levels */
    unsigned nlev;      /* levels read */
    uint32_t nlev_word; /* grown levels the home rank had published (the home
                         * slot's level mask), set by mpistore__snapshot_fix */
    size_t lstart[MS_MAX_LEVELS + 1];
    int ltarget[MS_MAX_LEVELS]; /* rank holding the level */
    size_t lctl[MS_MAX_LEVELS], ldesc[MS_MAX_LEVELS], lcnt[MS_MAX_LEVELS]; /* first slot's */
    uint32_t ctl[MS_SNAP_MAX * MS_CTL_WORDS];
    uint64_t desc[MS_SNAP_MAX];
} mpistore__snap_t;

static inline unsigned mpistore__snap_level(const mpistore__snap_t *sn, size_t i)
{
    unsigned l = 0;
    while (l + 1 < sn->nlev && i >= sn->lstart[l + 1])
        l++;
    return l;
}
/* where slot i of a snapshot lives: target rank and displacements */
static inline int mpistore__snap_target(const mpistore__snap_t *sn, size_t i)
{
    return sn->ltarget[mpistore__snap_level(sn, i)];
}
static inline size_t mpistore__snap_ctl_off(const mpistore__snap_t *sn, size_t i, unsigned word)
{
    unsigned l = mpistore__snap_level(sn, i);
    return sn->lctl[l] + ((i - sn->lstart[l]) * MS_CTL_WORDS + word) * sizeof(uint32_t);
}
static inline size_t mpistore__snap_desc_off(const mpistore__snap_t *sn, size_t i)
{
    unsigned l = mpistore__snap_level(sn, i);
    return sn->ldesc[l] + (i - sn->lstart[l]) * sizeof(uint64_t);
}
static inline size_t mpistore__snap_cnt_off(const mpistore__snap_t *sn, size_t i)
{
    unsigned l = mpistore__snap_level(sn, i);
    return sn->lcnt[l] + (i - sn->lstart[l]) * sizeof(int64_t);
}
static inline uint32_t mpistore__snap_lock(const mpistore__snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_LOCK];
}
static inline uint32_t mpistore__snap_fp(const mpistore__snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_FP];
}
static inline uint32_t mpistore__snap_blen(const mpistore__snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_BLEN];
}
static inline uint32_t mpistore__snap_kind(const mpistore__snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_KIND] & MS_KIND_BITS;
}
/* grown levels of the key's home rank, from the home slot's level mask */
static inline uint32_t mpistore__snap_levels(const mpistore__snap_t *sn)
{
    uint32_t m = sn->ctl[MS_CTL_KIND] >> MS_KIND_LEVEL_SHIFT, n = 0;
    while (m >> (n + 1))
        n++;
    return n;
}
/* lock free and lock version matching the descriptor's */
static inline int mpistore__snap_stable(const mpistore__snap_t *sn, size_t i)
{
    uint32_t l = mpistore__snap_lock(sn, i);
    return !mpistore__lock_held(l) &&
           (mpistore__lock_ver(l) & MS_DESC_VER_MASK) == mpistore__desc_ver(sn->desc[i]);
}
static inline int mpistore__snap_candidate(const mpistore__snap_t *sn, size_t i, uint32_t fp)
{
    return mpistore__desc_valid(sn->desc[i]) && mpistore__snap_fp(sn, i) == fp;
}

/* Read the probe windows of key k at every level (one round trip); _issue
 * does not flush.  After the flush of an _issue, mpistore__snapshot_fix re-reads
 * (and refreshes the level cache) when the home rank had levels the
 * snapshot did not cover. */
int mpistore__snapshot(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn);
int mpistore__snapshot_issue(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn);
/* mpistore__snapshot in a deadline scope (mpistore__rq_begin): a write's first look */
int mpistore__snapshot_until(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                             double deadline);
int mpistore__snapshot_fix(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn);
/* A write's first look that may also claim the key's home slot (design.md,
 * "Inserts in two round trips"): a compare-and-swap of the home lock from
 * 0 (a slot never used) to locked, in the flush of the snapshot.  *claimed:
 * the swap succeeded, the caller holds the home lock (word 0 before) and
 * the key is absent.  Only where flushes cannot block (no request-based
 * reads): it runs in no deadline scope. */
int mpistore__snapshot_claim(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                             int *claimed);

/* Reader validation (design.md, "Reader validation") of one candidate
 * slot: block b (after mpistore__block_complete, torn as it said) was fetched for
 * the descriptor read d1, the slot's counter word cnt was read after d1 and
 * before the descriptor was read again as d3.  MS_RETRY: a publication
 * happened meanwhile (read again); MS_OTHER_KEY: another key's block;
 * MS_DONE: k's block (a counter's value set from cnt); <0: corrupt. */
int mpistore__validate(mpistore__core_t *c, const mpistore__key_t *k, uint64_t d1, uint64_t d3,
                       int torn, int64_t cnt, mpistore__block_t *b);
/* Validated read of key k from a snapshot (reader path).
 * MS_DONE and *found; on found, *b holds the block (the caller releases it).
 * MS_RETRY when a concurrent change was seen (the caller looks again); <0. */
int mpistore__lookup(mpistore__core_t *c, const mpistore__key_t *k, mpistore__snap_t *sn,
                     int *found, mpistore__block_t *b);

/* After a timeout in a deadline scope: if a rank did not answer, prefix
 * the sink's message with "<what>: ".  Returns rc. */
int mpistore__late_prefix(mpistore__core_t *c, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* MPISTORE_INDEX_H */
