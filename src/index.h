/* The index (index.c): keys, probe-window snapshots of every level, and the
 * validated lookup of a key. */
#ifndef MPISTORE_INDEX_H
#define MPISTORE_INDEX_H

#include "block.h"
#include "core.h"

/* ---- keys (ms_key_t is in core.h) ---- */
int ms_key_prepare(mpistore_t *s, const char *key, ms_key_t *k);
/* An internal key: len bytes (containing a NUL) owned by the caller. */
void ms_key_internal(mpistore_t *s, const char *bytes, size_t len, ms_key_t *k);
void ms_key_release(ms_key_t *k);
/* Every key of an array argument: keys may be NULL only when nkeys is 0;
 * each must be a valid key (ms_key_prepare).  0 or <0 with the message
 * ("<op>: ..."). */
int ms_keys_check(mpistore_t *s, const char *const *keys, size_t nkeys, const char *op);

/* A snapshot: the key's probe window at every index level known, level 0
 * first (slots lstart[l] .. lstart[l+1]-1 are level l's).  Slot 0 is the
 * level-0 home slot. */
#define MS_SNAP_MAX (MS_PROBE_MAX * MS_MAX_LEVELS)
typedef struct ms_snap {
    int rank;     /* home rank */
    size_t first; /* level-0 home bucket */
    size_t n;     /* slots, all levels */
    unsigned nlev;      /* levels read */
    uint32_t nlev_word; /* grown levels the home rank had published (the home
                         * slot's level mask), set by ms_snapshot_fix */
    size_t lstart[MS_MAX_LEVELS + 1];
    int ltarget[MS_MAX_LEVELS];                            /* rank holding the level */
    size_t lctl[MS_MAX_LEVELS], ldesc[MS_MAX_LEVELS], lcnt[MS_MAX_LEVELS]; /* first slot's */
    uint32_t ctl[MS_SNAP_MAX * MS_CTL_WORDS];
    uint64_t desc[MS_SNAP_MAX];
} ms_snap_t;

static inline unsigned ms_snap_level(const ms_snap_t *sn, size_t i)
{
    unsigned l = 0;
    while (l + 1 < sn->nlev && i >= sn->lstart[l + 1])
        l++;
    return l;
}
/* where slot i of a snapshot lives: target rank and displacements */
static inline int ms_snap_target(const ms_snap_t *sn, size_t i)
{
    return sn->ltarget[ms_snap_level(sn, i)];
}
static inline size_t ms_snap_ctl_off(const ms_snap_t *sn, size_t i, unsigned word)
{
    unsigned l = ms_snap_level(sn, i);
    return sn->lctl[l] + ((i - sn->lstart[l]) * MS_CTL_WORDS + word) * sizeof(uint32_t);
}
static inline size_t ms_snap_desc_off(const ms_snap_t *sn, size_t i)
{
    unsigned l = ms_snap_level(sn, i);
    return sn->ldesc[l] + (i - sn->lstart[l]) * sizeof(uint64_t);
}
static inline size_t ms_snap_cnt_off(const ms_snap_t *sn, size_t i)
{
    unsigned l = ms_snap_level(sn, i);
    return sn->lcnt[l] + (i - sn->lstart[l]) * sizeof(int64_t);
}
static inline uint32_t ms_snap_lock(const ms_snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_LOCK];
}
static inline uint32_t ms_snap_fp(const ms_snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_FP];
}
static inline uint32_t ms_snap_blen(const ms_snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_BLEN];
}
static inline uint32_t ms_snap_kind(const ms_snap_t *sn, size_t i)
{
    return sn->ctl[i * MS_CTL_WORDS + MS_CTL_KIND] & MS_KIND_BITS;
}
/* grown levels of the key's home rank, from the home slot's level mask */
static inline uint32_t ms_snap_levels(const ms_snap_t *sn)
{
    uint32_t m = sn->ctl[MS_CTL_KIND] >> MS_KIND_LEVEL_SHIFT, n = 0;
    while (m >> (n + 1))
        n++;
    return n;
}
/* lock free and lock version matching the descriptor's */
static inline int ms_snap_stable(const ms_snap_t *sn, size_t i)
{
    uint32_t l = ms_snap_lock(sn, i);
    return !ms_lock_held(l) && (ms_lock_ver(l) & MS_DESC_VER_MASK) == ms_desc_ver(sn->desc[i]);
}
static inline int ms_snap_candidate(const ms_snap_t *sn, size_t i, uint32_t fp)
{
    return ms_desc_valid(sn->desc[i]) && ms_snap_fp(sn, i) == fp;
}

/* Read the probe windows of key k at every level (one round trip); _issue
 * does not flush.  After the flush of an _issue, ms_snapshot_fix re-reads
 * (and refreshes the level cache) when the home rank had levels the
 * snapshot did not cover. */
int ms_snapshot(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn);
int ms_snapshot_issue(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn);
/* ms_snapshot in a deadline scope (ms_rq_begin): a write's first look */
int ms_snapshot_until(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, double deadline);
int ms_snapshot_fix(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn);

/* Reader validation (design.md, "Reader validation") of one candidate
 * slot: block b (after ms_block_complete, torn as it said) was fetched for
 * the descriptor read d1, the slot's counter word cnt was read after d1 and
 * before the descriptor was read again as d3.  MS_SLOT_MOVED: a publication
 * happened meanwhile (read again); MS_SLOT_OTHER: another key's block;
 * MS_SLOT_KEY: k's block (a counter's value set from cnt); <0: corrupt. */
enum { MS_SLOT_OTHER = 1, MS_SLOT_KEY, MS_SLOT_MOVED }; /* never 0: compare by name */
int ms_validate(mpistore_t *s, const ms_key_t *k, uint64_t d1, uint64_t d3, int torn, int64_t cnt,
                ms_block_t *b);
/* Validated read of key k from a snapshot (reader path).
 * Returns 0 and sets *found; on found, *b holds the block (caller releases).
 * Returns 1 when a concurrent change was seen (caller retries). */
int ms_lookup(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, int *found, ms_block_t *b);

#endif /* MPISTORE_INDEX_H */
