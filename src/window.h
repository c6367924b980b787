/* The store's windows (window.c): the allocated window and the dynamic
 * window for growth over one communicator, created, locked and freed here;
 * grown memory attached to the dynamic window; which window an encoded
 * displacement is in; the dynamic window's flushes.  The RMA layer
 * (rma.h) holds one mpistore__wins_t. */
#ifndef MPISTORE_WINDOW_H
#define MPISTORE_WINDOW_H

#include "errors.h"
#include "layout.h"
#include "mpiyield.h"

#include <mpi.h>

typedef struct mpistore__wins {
    MPI_Comm comm; /* the store's communicator (a duplicate) */
    int rank, nranks;
    mpistore__err_t *err;  /* where failures are described (the core's sink) */
    MPI_Win win;           /* the allocated window: header, index, arena */
    unsigned char *base;   /* this rank's part of it */
    unsigned char **peer;  /* one node (mpistore__wins_allocate, shared): every rank's part of the
                              allocated window, mapped here (peer[rank] == base); the RMA layer
                              reaches it with C11 atomics instead of MPI calls (design.md, "One
                              node").  NULL: every operation goes through MPI */
    unsigned char **peers; /* the array peer points to, nranks entries (mpistore__grow_init) */
    MPI_Win dwin;          /* the dynamic window; MPI_WIN_NULL on a one-rank store: xwin */
    MPI_Win xwin[MS_MAX_XWIN];
    unsigned nxwin;
    int *dyn_list; /* ranks with dynamic-window operations in flight */
    unsigned char *dyn_mark;
    size_t dyn_n;
    int64_t *dwarm;      /* a mapped page attached to the dynamic window: first contacts' target */
    int locked, dlocked; /* MPI_Win_lock_all holds on win, dwin */
    int quiet;           /* calls hold Open MPI's idle yield off (apilock.h): give it back for the
                            dynamic window, whose operations wait for the target's progress */
    int ft; /* MPI's fault tolerance is on (ULFM): dynamic-window operations first ask whether
               their target died (mpistore__wins_dead) */
} mpistore__wins_t;

/* ---- open and close (collective; store.c decides, here is the MPI) ---- */
/* The allocated window of bytes per rank with the store's hints (0 or the
 * MPI error code; the window stays MPI_WIN_NULL on failure).  shared (every
 * rank on one node, agreed by all): MPI_Win_allocate_shared, and w->peer
 * set; if the window was made but a rank's part could not be mapped, the
 * error code with w->win kept (the caller frees it collectively). */
int mpistore__wins_allocate(mpistore__wins_t *w, size_t bytes, int shared);
/* The dynamic window (on more than one rank), locked for the store's
 * lifetime: 0 or the MPI error code. */
int mpistore__wins_dynamic(mpistore__wins_t *w);
/* This rank's header and index zeroed (first_bytes), the allocated window
 * locked for the store's lifetime: 0 or the MPI error code. */
int mpistore__wins_lock(mpistore__wins_t *w, size_t first_bytes);
/* The name Open MPI gives the allocated window (its one-sided component). */
void mpistore__wins_name(const mpistore__wins_t *w, char *name, size_t n);
/* Unlock what is locked (after a failed open or at close; flush_all first
 * at close, when nothing of ours is in flight).  0 or the MPI error code. */
int mpistore__wins_unlock(mpistore__wins_t *w, int flush_all);
/* Free the windows that every rank has (collective): dynamic and extra
 * windows, then the allocated one.  0 or the first MPI error code. */
int mpistore__wins_free(mpistore__wins_t *w, int dyn_everywhere, int win_everywhere);

/* ---- grown memory ---- */
int mpistore__grow_init(mpistore__wins_t *w);  /* per-rank lists (after rank and size are known) */
void mpistore__grow_free(mpistore__wins_t *w); /* after the dynamic window is freed */
/* Unmap n bytes of grown memory at m (after the windows are freed). */
void mpistore__win_unmap(const mpistore__wins_t *w, void *m, size_t n);
/* A page attached to the dynamic window for the first contact of
 * mpistore__rq_warmup (kept until mpistore__grow_free); its address, 0 on failure. */
MPI_Aint mpistore__win_warm_word(mpistore__wins_t *w);
/* Grown memory of n bytes (zeroed if zero): mapped pages attached to the
 * dynamic window, or on a one-rank store a window of its own.  *addr is
 * what goes after MS_DYN in a displacement.  0, -MPISTORE_ENOMEM (no
 * message) or another error. */
int mpistore__win_mem(mpistore__wins_t *w, size_t n, int zero, unsigned char **mem, uint64_t *addr);
/* Local stores into this rank's memory at encoded displacement off become
 * visible to one-sided reads (MPI_Win_sync on the window holding it). */
int mpistore__win_sync(mpistore__wins_t *w, size_t off);

static inline void mpistore__dyn_touch(mpistore__wins_t *w, int r)
{
    if (!w->dyn_mark[r]) {
        w->dyn_mark[r] = 1;
        w->dyn_list[w->dyn_n++] = r;
    }
}
/* The window that holds encoded offset off. */
static inline MPI_Win mpistore__win_of(const mpistore__wins_t *w, size_t off)
{
    if (off & MS_DYN)
        return w->dwin != MPI_WIN_NULL ? w->dwin : w->xwin[((off & ~MS_DYN) >> MS_XWIN_SHIFT) - 1u];
    return w->win;
}
/* The same for a blocking operation: a target in the dynamic window is
 * remembered, so that the next flush round completes it there too.
 * (Request-based reads complete through their requests and do not mark.) */
static inline MPI_Win mpistore__win(mpistore__wins_t *w, size_t off, int target)
{
    if (off & MS_DYN)
        mpistore__dyn_touch(w, target);
    return mpistore__win_of(w, off);
}
/* Around an operation or flush that may wait for a target's progress (the
 * dynamic window on Open MPI's osc/rdma): let Open MPI yield while it waits,
 * else a waiting rank keeps the core from the target it waits for. */
static inline void mpistore__dyn_enter(const mpistore__wins_t *w, size_t off)
{
    if (w->quiet && (off & MS_DYN))
        mpistore__mpiyield_release();
}
static inline void mpistore__dyn_leave(const mpistore__wins_t *w, size_t off)
{
    if (w->quiet && (off & MS_DYN))
        mpistore__mpiyield_hold();
}
/* One node (w->peer): is the word at encoded displacement off in the
 * shared-memory window, reached with the library's own atomics rather than
 * MPI (design.md, "One node")?  Grown memory never is. */
static inline int mpistore__wins_direct(const mpistore__wins_t *w, size_t off)
{
    return w->peer && !(off & MS_DYN);
}
static inline MPI_Aint mpistore__disp(size_t off)
{
    return (MPI_Aint)(off & MS_DISP_MASK); /* user-space addresses are below 2^56 */
}
/* Under ULFM (w->ft): does MPI report rank target of the store's
 * communicator failed?  Asked before every dynamic-window operation: on
 * Open MPI 5 one aimed at a dead rank waits inside MPI for ever (design.md,
 * "Rank failures").  0 without ULFM. */
int mpistore__wins_dead(mpistore__wins_t *w, int target);
/* open: is MPI's fault tolerance on for this job (ULFM built in and
 * OMPI_MCA_mpi_ft_enable set, as `mpiexec --with-ft ulfm` does)? */
int mpistore__wins_ft_enabled(void);
int mpistore__dyn_flush(mpistore__wins_t *w);     /* flush the dynamic window where used */
void mpistore__dyn_complete(mpistore__wins_t *w); /* the same on an error path */

#endif /* MPISTORE_WINDOW_H */
