/* The core of a store (docs/design.md, "Window layout"): layout constants,
 * the descriptor and lock words, the state of a store (ms_core_t) and of a
 * handle (struct mpistore), a prepared key (ms_key_t), and the API mutex.
 * Types and inline helpers only: no .c file of its own. */
#ifndef MPISTORE_CORE_H
#define MPISTORE_CORE_H

#include "mpistore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define MS_ERRMSG_LEN 512 /* a handle's message, with its NUL */
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
#define MS_MAX_LEVELS 8u /* index levels per home rank: level 0 + 7 grown ones */
#define MS_LEVEL_GROWTH 2u /* level l has nslots << (2 l) buckets: 4x the last */
#define MS_MAX_SEGS 16u   /* arena segments per rank beyond the allocated arena */
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
#define MS_OFF_COUNT 0u  /* window displacement of the rank's key count */
#define MS_OFF_QCOUNT 8u /* ... and of how many of them are internal (queue) keys */
#define MS_OFF_REG 16u   /* uint64: the counter bucket this rank is adding to (counters.c) */
#define MS_OFF_FAIL 24u  /* uint64: a store-wide failure (fail.c) */
#define MS_OFF_NLEV 32u  /* uint32: grown index levels published for this home rank */
#define MS_OFF_CLAIM 64u /* uint32[16]: level l claimed by host rank + 1 */
#define MS_OFF_LADDR 128u /* uint64[16]: level l's address in its host's dynamic window */
#define MS_OFF_SADDR 256u /* uint64[16]: this rank's arena segment i's address */
#define MS_HEADER_BYTES 384u

/* ---- descriptor word: ver:22 | valid:1 | rank:17 | unit_offset:24 ---- */
#define MS_DESC_VER_BITS 22u
#define MS_DESC_VER_MASK ((1u << MS_DESC_VER_BITS) - 1u)
static inline uint64_t ms_desc_make(uint32_t ver, int valid, uint32_t rank, uint32_t uoff)
{
    return ((uint64_t)(ver & MS_DESC_VER_MASK) << 42) | ((uint64_t)(valid ? 1 : 0) << 41) |
           ((uint64_t)(rank & 0x1FFFFu) << 24) | (uint64_t)(uoff & 0xFFFFFFu);
}
static inline uint32_t ms_desc_ver(uint64_t d)
{
    return (uint32_t)(d >> 42) & MS_DESC_VER_MASK;
}
static inline int ms_desc_valid(uint64_t d)
{
    return (int)((d >> 41) & 1u);
}
static inline int ms_desc_rank(uint64_t d)
{
    return (int)((d >> 24) & 0x1FFFFu);
}
static inline uint32_t ms_desc_uoff(uint64_t d)
{
    return (uint32_t)(d & 0xFFFFFFu);
}

/* ---- lock word: ver:31 | locked:1 ---- */
static inline uint32_t ms_lock_ver(uint32_t l)
{
    return l >> 1;
}
static inline int ms_lock_held(uint32_t l)
{
    return (int)(l & 1u);
}

/* A block header as it sits in window memory (32 bytes). */
typedef struct ms_blk {
    uint64_t dead;       /* set remotely when unpublished by another rank */
    uint32_t units;      /* chunk size in allocation units */
    uint32_t prev_units; /* size of the previous chunk (allocator only) */
    uint32_t klen;
    uint32_t flags; /* CHUNK_FREE / CHUNK_USED (alloc.c only) */
    uint64_t vlen;  /* for free chunks: two uint32 free-list links */
} ms_blk_t;

/* Private allocator over this rank's arena (owner-only metadata). */
typedef struct ms_alloc {
    unsigned char *arena; /* local address of the arena */
    size_t arena_off;     /* window displacement of the arena */
    uint32_t nunits;
    unsigned shift; /* log2 of the unit size */
    uint32_t bins[MS_NBINS];
    uint64_t used_units;
    uint32_t base; /* unit number of this arena's unit 0 in the rank's unit space */
} ms_alloc_t;

/* Request-based reads (rma.c, design.md "Deadlines when a rank stops
 * answering"): requests in flight land in staging memory owned by the core. */
typedef struct ms_stage {
    struct ms_stage *next;
    size_t cap, used;
    unsigned char *data;
} ms_stage_t;
typedef struct ms_rqinfo {
    void *dst;         /* the caller's buffer, filled on completion */
    const void *stage; /* where MPI writes */
    size_t len;
    int target;
} ms_rqinfo_t;
typedef struct ms_orphan { /* requests abandoned at a deadline + their memory */
    struct ms_orphan *next;
    MPI_Request *reqs;
    size_t nreq;
    ms_stage_t *stages;
} ms_orphan_t;
/* What this rank knows of a home rank's grown index levels (its cache of
 * the home rank's level directory). */
typedef struct ms_levc {
    unsigned n; /* levels 1..n known */
    int host[MS_MAX_LEVELS];
    uint64_t addr[MS_MAX_LEVELS];
} ms_levc_t;

/* Attached memory that hosts grown index levels (bump-allocated). */
typedef struct ms_pool {
    unsigned char *mem;
    size_t size, used;
    MPI_Aint addr;
} ms_pool_t;

typedef struct ms_core {
    MPI_Comm comm;
    MPI_Win win;
    int rank, nranks;
    unsigned char *base;
    size_t nslots, probe, nphys;
    size_t off_ctl, off_desc, off_cnt, off_arena, win_bytes;
    size_t max_key_len, max_value_len, keys_per_rank, bytes_per_rank;
    ms_alloc_t alloc;
    /* growth (window.c, alloc.c, levels.c): the dynamic window, this rank's arena segments, the
     * memory hosting index levels, caches of other ranks' directories */
    MPI_Win dwin;          /* MPI_WIN_NULL on a one-rank store: xwin instead */
    MPI_Win xwin[MS_MAX_XWIN];
    unsigned nxwin;
    size_t max_keys;      /* 0: no limit but the index levels */
    uint32_t max_units;   /* units of the unit space this rank may use */
    ms_alloc_t seg[MS_MAX_SEGS];
    unsigned char *segmem[MS_MAX_SEGS];
    ms_pool_t pools[32];
    unsigned npools;
    ms_levc_t *levc;      /* [nranks] */
    uint64_t *segaddr;    /* [nranks * MS_MAX_SEGS]: 0 = not known yet */
    int *dyn_list;        /* ranks with dynamic-window operations in flight */
    unsigned char *dyn_mark;
    size_t dyn_n;
    int thread_multiple;
    pthread_mutex_t mu;
    mpistore_stats_t stats;
    int progress_on;         /* progress thread running (progress.c) */
    long progress_period_us; /* its period */
    atomic_int progress_stop;
    pthread_t progress;
    /* request-based reads in flight (rma.c) */
    MPI_Request *rqv;
    ms_rqinfo_t *rqi;
    size_t nrq, caprq;
    ms_stage_t *stage;    /* staging chunks of the requests in flight */
    ms_orphan_t *orphans; /* abandoned at a deadline, freed once complete */
    unsigned char *dirty; /* per rank: a blocking RMA op not flushed yet */
    int64_t *dwarm; /* a mapped page attached to the dynamic window: the first contact's target */
    int rq_use;           /* deadline scopes use requests (ms_rq_wanted) */
} ms_core_t;

struct mpistore {
    ms_core_t *core;
    mpistore_t *parent; /* NULL for a store */
    char *prefix;       /* "p/" for a view (trailing slash), NULL for a store */
    size_t prefix_len;
    double timeout;
    double rq_deadline; /* 0: blocking reads; else reads are requests waited for until then */
    int rq_late;        /* 1 + the rank that did not answer in the last scope, 0: none */
    int nviews;         /* open views created from this handle */
    char errmsg[MS_ERRMSG_LEN];
};

/* A key of a handle, prepared for the store (index.c: ms_key_prepare). */
typedef struct ms_key {
    const char *full; /* prefix + key, NUL-terminated */
    size_t len;
    char *owned; /* heap copy when a prefix was added */
    int rank;    /* home rank */
    size_t home; /* home bucket */
    uint32_t fp;
    int internal; /* contains a NUL: a queue entry (queue.c), never a user key */
    uint64_t hash; /* its bucket at level l is hash mod (nslots << l) */
} ms_key_t;

/* Displacements of level-0 slot words in a rank's allocated window. */
static inline size_t ms_ctl_off(const ms_core_t *c, size_t slot, unsigned word)
{
    return c->off_ctl + (slot * MS_CTL_WORDS + word) * sizeof(uint32_t);
}
static inline size_t ms_desc_off(const ms_core_t *c, size_t slot)
{
    return c->off_desc + slot * sizeof(uint64_t);
}
static inline size_t ms_cnt_off(const ms_core_t *c, size_t slot)
{
    return c->off_cnt + slot * sizeof(int64_t);
}

/* ---- locking around public calls ---- */
static inline void ms_enter(ms_core_t *c)
{
    if (c->thread_multiple)
        pthread_mutex_lock(&c->mu);
}
static inline void ms_leave(ms_core_t *c)
{
    if (c->thread_multiple)
        pthread_mutex_unlock(&c->mu);
}


#endif /* MPISTORE_CORE_H */
