/* Internal declarations shared by the library's source files.  Nothing here is
 * public; see docs/design.md for the layout and the concurrency argument. */
#ifndef MPISTORE_INTERNAL_H
#define MPISTORE_INTERNAL_H

#include "mpistore.h"
#include "ops_status.h"

#include <pthread.h>
#include <stdatomic.h>

#define MS_ERRMSG_LEN 512
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
    /* growth (grow.c): the dynamic window, this rank's arena segments, the
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

/* ---- errors.c ---- */
int ms_err(mpistore_t *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int ms_mpierr(mpistore_t *s, int mpirc, const char *call, int target);
const char *ms_orphan_errmsg(void); /* last failed open/close of this thread */
/* A public call got a NULL handle: say so in the thread's handle-less message
 * (mpistore_errmsg(NULL)) and return -MPISTORE_EINVAL. */
int ms_null_handle(const char *fn);

/* ---- progress.c: the optional progress thread ---- */
/* 1 if the thread is wanted (env MPISTORE_PROGRESS_THREAD=0/1 overrides the
 * option), 0 if not, -1 with a reason in why if the variable is malformed. */
int ms_progress_requested(int option, char *why, size_t n);
/* The period (env MPISTORE_PROGRESS_PERIOD_US, default 50), or -1 with why. */
long ms_progress_period_us(char *why, size_t n);
int ms_progress_start(ms_core_t *c); /* 0, or -1 if the thread cannot start */
void ms_progress_stop(ms_core_t *c); /* joins the thread; no-op if not running */

/* ---- rma.c: counted RMA primitives, progress, backoff, deadlines ---- */
int ms_flush(mpistore_t *s, int target);
int ms_flush2(mpistore_t *s, int a, int b);
int ms_flush_all(mpistore_t *s); /* every rank, one by one (see rma.c) */
/* The same on an error path: uncounted, errors ignored (no Get may still
 * write into a buffer the caller is about to free). */
void ms_complete_all(ms_core_t *c);
/* ranks[0..n) (NULL: ranks 0..n-1), one round trip in the counters */
int ms_flush_ranks(mpistore_t *s, const int *ranks, size_t n);
int ms_rget(mpistore_t *s, int target, size_t off, void *buf, size_t len);
int ms_getacc_u32(mpistore_t *s, int target, size_t off, uint32_t *buf, size_t count);
int ms_getacc_u64(mpistore_t *s, int target, size_t off, uint64_t *buf, size_t count);
int ms_cas_u32(mpistore_t *s, int target, size_t off, const uint32_t *desired,
               const uint32_t *expected, uint32_t *result);
int ms_put_u32(mpistore_t *s, int target, size_t off, const uint32_t *val);
int ms_or_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits);  /* MPI_BOR */
int ms_and_u32(mpistore_t *s, int target, size_t off, const uint32_t *bits); /* MPI_BAND */
int ms_put_u64(mpistore_t *s, int target, size_t off, const uint64_t *val);
int ms_put_i64(mpistore_t *s, int target, size_t off, const int64_t *val);
int ms_add_i64(mpistore_t *s, int target, size_t off, const int64_t *delta);
int ms_fao_i64(mpistore_t *s, int target, size_t off, const int64_t *delta, int64_t *result);
int ms_read_u64(mpistore_t *s, int target, size_t off, uint64_t *result);
int ms_getacc_i64(mpistore_t *s, int target, size_t off, int64_t *buf);
#define MS_OFF_COUNT 0u  /* window displacement of the rank's key count */
#define MS_OFF_QCOUNT 8u /* ... and of how many of them are internal (queue) keys */
#define MS_OFF_REG 16u   /* uint64: the counter bucket this rank is adding to (counters.c) */
#define MS_OFF_FAIL 24u  /* uint64: a store-wide failure (grow.c) */
#define MS_OFF_NLEV 32u  /* uint32: grown index levels published for this home rank */
#define MS_OFF_CLAIM 64u /* uint32[16]: level l claimed by host rank + 1 */
#define MS_OFF_LADDR 128u /* uint64[16]: level l's address in its host's dynamic window */
#define MS_OFF_SADDR 256u /* uint64[16]: this rank's arena segment i's address */
#define MS_HEADER_BYTES 384u
/* Flush of operations on this rank's own window: not a round trip. */
int ms_flush_self(mpistore_t *s);

/* Deadline scope (design.md, "Deadlines when a rank stops answering"):
 * until ms_rq_end, reads are MPI_Rget / MPI_Rget_accumulate into staging
 * memory and flushes wait for them with MPI_Test until the deadline (or
 * 0.5 s after the flush started, whichever is later), failing with ETIMEDOUT
 * and ms_rq_late(s) = the rank that did not answer.  Scopes nest; begin
 * returns what end restores.  deadline from ms_deadline (INFINITY: none). */
double ms_rq_begin(mpistore_t *s, double deadline);
void ms_rq_end(mpistore_t *s, double saved);
/* The rank that did not answer an RMA read in the last scope, or -1. */
static inline int ms_rq_late(const mpistore_t *s)
{
    return s->rq_late - 1;
}
/* After a timeout: prefix the handle's message with "<what>: " if the
 * timeout was a rank that did not answer (ms_rq_late(s) >= 0); returns rc. */
int ms_rq_context(mpistore_t *s, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* open, once the window exists: do reads in deadline scopes need requests?
 * Not on a one-node job whose window is Open MPI's osc/rdma (every read is
 * done by the origin in shared memory, whatever the target does); yes
 * everywhere else.  Env MPISTORE_RMA_REQUESTS=0/1 decides instead. */
int ms_rq_wanted(const ms_core_t *c, int nodes);
/* open, collective, when rq_use: one read of every peer and a barrier.  On
 * Open MPI's osc/pt2pt the first operation of a window towards a peer waits
 * inside the call (even MPI_Rget) until that peer enters MPI: it must not be
 * a read with a deadline.  Best effort: errors show up in later calls. */
void ms_rq_warmup(ms_core_t *c);
/* close: after MPI_Win_unlock_all, before MPI_Win_free.  Frees the staging
 * memory and the requests that have completed; leaks (never frees) what an
 * incomplete request could still write into. */
void ms_rq_fini(ms_core_t *c);

typedef struct ms_backoff { /* initialise with {0} */
    unsigned round;
    unsigned sleeps; /* rounds spent sleeping */
    double start;    /* time of the first round */
} ms_backoff_t;
/* Drive MPI progress, then yield (the first 500 us of a wait) or sleep a
 * growing step (10 us .. 1 ms). */
void ms_backoff(mpistore_t *s, ms_backoff_t *b);
double ms_now(void);
/* deadline for a timeout in seconds (0 = none -> +inf) */
double ms_deadline(double timeout_s);
int ms_expired(double deadline);

/* ---- alloc.c ---- */
void ms_alloc_init(ms_alloc_t *a, unsigned char *arena, size_t arena_off, size_t bytes,
                   unsigned shift);
/* allocate a block of at least `bytes` (header included); reclaims blocks
 * other ranks marked dead when the arena is full.  0 or -MPISTORE_ENOSPC /
 * -MPISTORE_EMPI. *uoff receives the unit offset. */
int ms_alloc_block(mpistore_t *s, size_t bytes, uint32_t *uoff);
void ms_free_block(ms_core_t *c, uint32_t uoff);
/* the allocator (arena or segment) holding unit uoff of this rank, or NULL */
ms_alloc_t *ms_alloc_of(ms_core_t *c, uint32_t uoff);
/* this rank's block at unit uoff (which must be allocated) */
ms_blk_t *ms_blk_at(ms_core_t *c, uint32_t uoff);

/* ---- grow.c: the dynamic window, segments, levels, the failure word ---- */
int ms_grow_init(ms_core_t *c);  /* caches (after rank and size are known) */
void ms_grow_free(ms_core_t *c); /* after the dynamic window is freed */
/* A page attached to the dynamic window for the first contact of
 * ms_rq_warmup (kept until ms_grow_free); its address, 0 on failure. */
MPI_Aint ms_grow_warm_word(ms_core_t *c);
static inline void ms_dyn_touch(ms_core_t *c, int r)
{
    if (!c->dyn_mark[r]) {
        c->dyn_mark[r] = 1;
        c->dyn_list[c->dyn_n++] = r;
    }
}
/* The window that holds encoded offset off. */
static inline MPI_Win ms_win_of(const ms_core_t *c, size_t off)
{
    if (off & MS_DYN)
        return c->dwin != MPI_WIN_NULL ? c->dwin
                                       : c->xwin[((off & ~MS_DYN) >> MS_XWIN_SHIFT) - 1u];
    return c->win;
}
/* The same for a blocking operation: a target in the dynamic window is
 * remembered, so that the next flush round completes it there too.
 * (Request-based reads complete through their requests and do not mark.) */
static inline MPI_Win ms_win(ms_core_t *c, size_t off, int target)
{
    if (off & MS_DYN)
        ms_dyn_touch(c, target);
    return ms_win_of(c, off);
}
static inline MPI_Aint ms_disp(size_t off)
{
    return (MPI_Aint)(off & MS_DISP_MASK); /* user-space addresses are below 2^56 */
}
int ms_dyn_flush(mpistore_t *s);   /* flush the dynamic window where used */
void ms_grow_detach(ms_core_t *c);  /* at close, after the last access */
void ms_dyn_complete(ms_core_t *c); /* the same on an error path */
/* Where unit uoff of rank r's unit space is: *off the displacement of the
 * unit (encoded), *room the bytes from there to the end of its arena or
 * segment (0: no such unit).  May read r's segment directory (one round
 * trip, once per segment). */
int ms_unit_addr(mpistore_t *s, int r, uint32_t uoff, size_t *off, size_t *room);
/* Create this rank's arena segment i (owner only; publishes its address). */
int ms_seg_create(mpistore_t *s, unsigned i);
uint32_t ms_seg_base(const ms_core_t *c, unsigned i); /* == its size in units */
/* Read home rank r's level directory into the cache (one round trip). */
int ms_levels_refresh(mpistore_t *s, int r);
/* Holding the level-0 home lock of a key of home rank r whose every level
 * is full: host level l.  1 created and published, 0 another rank claimed
 * it (its publication may still be on the way), or <0. */
int ms_level_create(mpistore_t *s, int r, unsigned l);
/* geometry of level l (any home rank) */
size_t ms_level_nslots(const ms_core_t *c, unsigned l);
size_t ms_level_probe(const ms_core_t *c, unsigned l);
size_t ms_level_nphys(const ms_core_t *c, unsigned l);
void ms_level_offsets(const ms_core_t *c, unsigned l, size_t *ctl, size_t *desc, size_t *cnt,
                      size_t *total);
/* A write failed for lack of space (or memory to grow): tell every rank
 * (the fail word).  kind: MS_FAIL_*.  Returns code (negative). */
#define MS_FAIL_KEYS 1u   /* max_keys_per_rank */
#define MS_FAIL_BYTES 2u  /* value memory limit */
#define MS_FAIL_LEVELS 3u /* every index level full */
#define MS_FAIL_MEMORY 4u /* malloc or MPI_Win_attach failed */
int ms_fail_publish(mpistore_t *s, int code, unsigned kind);
/* In a wait loop: 0, or the failure another rank published (negative code,
 * message in the handle).  A local read, not a round trip. */
int ms_fail_check(mpistore_t *s, const char *what);
const char *ms_fail_advice(unsigned kind); /* "raise ... (MPISTORE_...)" */
/* A key was deleted (room again): clear the failure word everywhere, if set. */
int ms_fail_clear(mpistore_t *s);

/* ---- index.c: keys, snapshots, blocks ---- */
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

int ms_key_prepare(mpistore_t *s, const char *key, ms_key_t *k);
/* An internal key: len bytes (containing a NUL) owned by the caller. */
void ms_key_internal(mpistore_t *s, const char *bytes, size_t len, ms_key_t *k);
void ms_key_release(ms_key_t *k);

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
/* ms_snapshot in a deadline scope (rma.c): a write's first look */
int ms_snapshot_until(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, double deadline);
int ms_snapshot_fix(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn);

/* A block fetched into local memory.  A counter's block holds only the key
 * (vlen == MS_VLEN_COUNTER); its value is the slot's int64 counter word,
 * read along with the block (cnt) and formatted as decimal (num). */
#define MS_VLEN_COUNTER UINT64_MAX
typedef struct ms_block {
    unsigned char *buf; /* header + key + value */
    size_t got;         /* bytes fetched */
    int counter;        /* after ms_block_complete: a counter's block */
    int64_t cnt;        /* the counter word, read between the two descriptor reads */
    char num[24];       /* cnt in decimal: the value ms_block_value returns */
} ms_block_t;
/* A counter value of a block becomes its value (formats num). */
void ms_block_set_counter(ms_block_t *b, int64_t v);

/* Allocate the local buffer for the block named by desc, sized by the hint
 * (block bytes); then issue (no flush) its fetch.  ms_block_issue does both. */
int ms_block_alloc(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b);
int ms_block_fetch(mpistore_t *s, uint64_t desc, ms_block_t *b);
int ms_block_issue(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b);
/* After the flush: fetch the rest if the header says the block is longer
 * (only up to the key unless need_value).  *torn when the header is
 * impossible (the caller revalidates). */
int ms_block_complete(mpistore_t *s, uint64_t desc, ms_block_t *b, int need_value, int *torn);
int ms_block_is_key(const ms_block_t *b, const ms_key_t *k);
/* EMPI for a validated block whose header is impossible (a bug, not a race) */
int ms_err_corrupt(mpistore_t *s, uint64_t desc, const ms_key_t *k);
const unsigned char *ms_block_value(const ms_block_t *b, size_t *vlen);
const char *ms_block_key(const ms_block_t *b, size_t *klen); /* after ms_block_complete */
void ms_block_release(ms_block_t *b);

/* Validated read of key k from a snapshot (reader path).
 * Returns 0 and sets *found; on found, *b holds the block (caller releases).
 * Returns 1 when a concurrent change was seen (caller retries). */
int ms_lookup(mpistore_t *s, const ms_key_t *k, ms_snap_t *sn, int *found, ms_block_t *b);

/* Build a block locally: header + key + a + b (value = a||b). */
int ms_block_build(mpistore_t *s, const ms_key_t *k, const void *a, size_t alen, const void *b2,
                   size_t blen, uint32_t *uoff, uint32_t *total);
/* Build a counter's block: header + key, vlen = MS_VLEN_COUNTER. */
int ms_block_build_counter(mpistore_t *s, const ms_key_t *k, uint32_t *uoff, uint32_t *total);

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

/* Start of a public call: a NULL handle is EINVAL, else enter the core. */
#define MS_ENTER(s)                                                                                \
    do {                                                                                           \
        if (!(s))                                                                                  \
            return ms_null_handle(__func__);                                                       \
        ms_enter((s)->core);                                                                       \
    } while (0)

void *ms_dup_value(const void *v, size_t len); /* malloc len+1, NUL-terminated */

/* ---- shared by the operation files (called with the core entered) ---- */

/* Write-engine operations on a queue's internal key, for queue.c: append
 * one record (4-byte length + bytes; creates the key), and take the first
 * record (*popped = 0: the queue is empty; the last record deletes the key),
 * lock waits bounded by deadline (ms_deadline). */
int ms_kqpush(mpistore_t *s, const ms_key_t *k, const void *record, size_t len);
int ms_kqpop(mpistore_t *s, const ms_key_t *k, double deadline, int *popped, void **value,
             size_t *len);

/* ---- counters.c: lock-free add on counter keys (design.md, "Counters") ---- */
/* Where an add left a counter: enough to read it again in one round trip
 * (ms_counter_watch) while it stays the same publication. */
typedef struct ms_watch {
    int valid;                /* the add was on (or created) a counter */
    int rank;                 /* rank holding the slot */
    size_t lock, dsc, cnt;    /* displacements of its lock, descriptor, counter */
    uint64_t desc;            /* the counter's descriptor */
    uint64_t reg;             /* registration word of the key */
} ms_watch_t;
void ms_watch_make(const ms_key_t *k, const ms_snap_t *sn, size_t i, uint64_t desc,
                   ms_watch_t *w);
/* Registered read of a watched counter (1 round trip): MS_DONE and *value;
 * MS_GONE the slot no longer holds that publication; MS_BUSY it is locked or
 * a publication is landing (peek next time).  peek: an unregistered look at
 * lock and descriptor only, MS_STABLE when the slot is stable again. */
int ms_counter_watch(mpistore_t *s, const ms_watch_t *w, int peek, int64_t *value);
/* add (the public call's semantics, core entered) that also says where the
 * counter is (*watch valid only for counters). */
int ms_add_locked(mpistore_t *s, const char *key, int64_t delta, int64_t *result,
                  ms_watch_t *watch);

/* Can this store keep counters (a decimal int64 fits max_value_len)? */
int ms_counters_enabled(const ms_core_t *c);
/* Announce / withdraw an add on key k's home bucket (this rank's MS_OFF_REG). */
int ms_reg_set(mpistore_t *s, const ms_key_t *k);
int ms_reg_clear(mpistore_t *s);
/* The registered add on the counter in slot i of sn (taken after ms_reg_set).
 * MS_DONE (*sum), MS_OTHER_KEY, MS_LOCKED_PATH (not possible here), <0. */
int ms_counter_add(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i, int64_t delta,
                   int64_t *sum, ms_watch_t *watch);
/* Holding the lock of counter slot i of sn (key k): wait until no rank is
 * registered on k's bucket, then read the counter into b (ms_block_set_counter). */
int ms_counter_drain(mpistore_t *s, const ms_key_t *k, const ms_snap_t *sn, size_t i,
                     double deadline, ms_block_t *b);

/* queue.c: is the queue under user key `key` (of handle s) non-empty? */
int ms_queue_nonempty(mpistore_t *s, const char *key, double deadline, int *nonempty);
/* number of records in a queue value, -1 if malformed */
int64_t ms_queue_count(const unsigned char *p, size_t n);

#endif /* MPISTORE_INTERNAL_H */
