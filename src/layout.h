/* The store's layout (docs/design.md, "Window layout"): constants, the
 * descriptor and lock words, a block header, the geometry of a store's
 * window (mpistore__layout_t) and a prepared key (mpistore__key_t).  Types and inline
 * helpers only, included by every layer from the RMA layer up. */
#ifndef MPISTORE_LAYOUT_H
#define MPISTORE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define MS_PROBE_MAX 64u /* probe window, in slots */
#define MS_CTL_WORDS 4u  /* lock, fp, blen, kind */
#define MS_CTL_LOCK 0u
#define MS_CTL_FP 1u
#define MS_CTL_BLEN 2u
#define MS_CTL_KIND 3u /* hint: what the slot's value is (MS_KIND_*) */
#define MS_KIND_STR 0u
#define MS_KIND_CNT 1u
#define MS_KIND_BITS 0xFFu /* the kind; above it, in level-0 slots, the level mask */
/* Bit 8 + l of every level-0 slot's kind word is set once grown level l of
 * that home rank is published (design.md, "Growth"): the snapshot's read of
 * the probe window tells how many levels there are, at no extra cost. */
#define MS_KIND_LEVEL_SHIFT 8u
#define MS_BLK_HDR 32u       /* bytes of a block header */
#define MS_UNIT_MIN_SHIFT 5u /* 32-byte allocation units */
#define MS_MAX_RANKS (1u << 17)
#define MS_NBINS 32u
#define MS_MAX_LEVELS 8u         /* index levels per home rank: level 0 + 7 grown ones */
#define MS_LEVEL_GROWTH 2u       /* level l has nslots << (2 l) buckets: 4x the last */
#define MS_MAX_SEGS 16u          /* arena segments per rank beyond the allocated arena */
#define MS_UNIT_SPACE (1u << 24) /* units a descriptor can address per rank */
/* A displacement with this bit set is an address in the dynamic window
 * (design.md, "Growth"); otherwise an offset in the allocated window.  On a
 * one-rank store (where Open MPI cannot create a dynamic window) grown
 * memory is one allocated window per piece instead, bits 56..62 naming it. */
#define MS_DYN ((size_t)1 << 63)
#define MS_XWIN_SHIFT 56u
#define MS_DISP_MASK (((size_t)1 << MS_XWIN_SHIFT) - 1)
#define MS_MAX_XWIN 64u

/* Header of each rank's allocated window (design.md, "Window layout" and
 * "Header"): displacements of its words. */
#define MS_OFF_COUNT 0u   /* window displacement of the rank's key count */
#define MS_OFF_QCOUNT 8u  /* ... and of how many of them are internal (queue) keys */
#define MS_OFF_REG 16u    /* uint64: the counter bucket this rank is adding to (counters.c) */
#define MS_OFF_FAIL 24u   /* uint64: a store-wide failure (fail.c) */
#define MS_OFF_NLEV 32u   /* uint32: grown index levels published for this home rank */
#define MS_OFF_CLAIM 64u  /* uint32[16]: level l claimed by host rank + 1 */
#define MS_OFF_LADDR 128u /* uint64[16]: level l's address in its host's dynamic window */
#define MS_OFF_SADDR 256u /* uint64[16]: this rank's arena segment i's address */
#define MS_HEADER_BYTES 384u

/* ---- descriptor word: ver:22 | valid:1 | rank:17 | unit_offset:24 ---- */
#define MS_DESC_VER_BITS 22u
#define MS_DESC_VER_MASK ((1u << MS_DESC_VER_BITS) - 1u)
static inline uint64_t mpistore__desc_make(uint32_t ver, int valid, uint32_t rank, uint32_t uoff)
{
    return ((uint64_t)(ver & MS_DESC_VER_MASK) << 42) | ((uint64_t)(valid ? 1 : 0) << 41) |
           ((uint64_t)(rank & 0x1FFFFu) << 24) | (uint64_t)(uoff & 0xFFFFFFu);
}
static inline uint32_t mpistore__desc_ver(uint64_t d)
{
    return (uint32_t)(d >> 42) & MS_DESC_VER_MASK;
}
static inline int mpistore__desc_valid(uint64_t d)
{
    return (int)((d >> 41) & 1u);
}
static inline int mpistore__desc_rank(uint64_t d)
{
    return (int)((d >> 24) & 0x1FFFFu);
}
static inline uint32_t mpistore__desc_uoff(uint64_t d)
{
    return (uint32_t)(d & 0xFFFFFFu);
}

/* ---- lock word: ver:31 | locked:1 ---- */
static inline uint32_t mpistore__lock_ver(uint32_t l)
{
    return l >> 1;
}
static inline int mpistore__lock_held(uint32_t l)
{
    return (int)(l & 1u);
}
/* The version a publication from lock word l writes: one more, except that
 * after 2^31 - 1 it goes on at 2^22, never at 0.  Version 0 means "never
 * published" (the claims from 0, "A look stops at a slot never published"
 * in design.md), and 2^22 keeps the descriptor's 22 bits in step. */
static inline uint32_t mpistore__lock_next_ver(uint32_t l)
{
    uint32_t v = mpistore__lock_ver(l);
    return v < 0x7FFFFFFFu ? v + 1u : (MS_DESC_VER_MASK + 1u);
}

/* A block header as it sits in window memory (32 bytes). */
typedef struct mpistore__blk {
    uint64_t dead;       /* set remotely when unpublished by another rank */
    uint32_t units;      /* chunk size in allocation units */
    uint32_t prev_units; /* size of the previous chunk (allocator only) */
    uint32_t klen;
    uint32_t flags; /* CHUNK_FREE / CHUNK_USED (alloc.c only) */
    uint64_t vlen;  /* for free chunks: two uint32 free-list links */
} mpistore__blk_t;

/* The geometry of every rank's allocated window and the limits of the
 * store, fixed at open (store.c, layout()). */
typedef struct mpistore__layout {
    size_t nslots, probe, nphys; /* level-0 home buckets, probe window, slots */
    size_t off_ctl, off_desc, off_cnt, off_arena, win_bytes; /* displacements, size */
    size_t arena_bytes; /* the allocated arena (win_bytes less the index, less a mirror) */
    size_t mirror;      /* replicas = 1: the mirror of rank r - 1's window starts here; else 0 */
    size_t max_key_len, max_value_len, keys_per_rank, bytes_per_rank;
    size_t max_keys; /* 0: no limit but the index levels */
} mpistore__layout_t;

/* A handle's key prefix ("p/" for a prefix view, empty for a store). */
typedef struct mpistore__prefix {
    const char *str;
    size_t len;
} mpistore__prefix_t;

/* A key of a handle, prepared for the store (index.c: mpistore__key_prepare). */
typedef struct mpistore__key {
    const char *full; /* prefix + key, NUL-terminated */
    size_t len;
    char *owned; /* heap copy when a prefix was added */
    int rank;    /* home rank */
    size_t home; /* home bucket */
    uint32_t fp;
    int internal;  /* contains a NUL: a queue entry (queue.c), never a user key */
    uint64_t hash; /* its bucket at level l is hash mod (nslots << l) */
} mpistore__key_t;

/* Displacements of level-0 slot words in a rank's allocated window. */
static inline size_t mpistore__ctl_off(const mpistore__layout_t *y, size_t slot, unsigned word)
{
    return y->off_ctl + (slot * MS_CTL_WORDS + word) * sizeof(uint32_t);
}
static inline size_t mpistore__desc_off(const mpistore__layout_t *y, size_t slot)
{
    return y->off_desc + slot * sizeof(uint64_t);
}
static inline size_t mpistore__cnt_off(const mpistore__layout_t *y, size_t slot)
{
    return y->off_cnt + slot * sizeof(int64_t);
}

#endif /* MPISTORE_LAYOUT_H */
