/* The store's windows (window.c): which window an encoded displacement is
 * in, grown memory attached to the dynamic window, its flushes. */
#ifndef MPISTORE_WINDOW_H
#define MPISTORE_WINDOW_H

#include "core.h"

int ms_grow_init(ms_core_t *c);  /* caches (after rank and size are known) */
void ms_grow_free(ms_core_t *c); /* after the dynamic window is freed: unmaps grown memory */
/* A page attached to the dynamic window for the first contact of
 * ms_rq_warmup (kept until ms_grow_free); its address, 0 on failure. */
MPI_Aint ms_win_warm_word(ms_core_t *c);
/* Grown memory of n bytes (zeroed if zero): mapped pages attached to the
 * dynamic window, or on a one-rank store a window of its own.  *addr is
 * what goes after MS_DYN in a displacement.  0, -MPISTORE_ENOMEM (no
 * message) or another error. */
int ms_win_mem(mpistore_t *s, size_t n, int zero, unsigned char **mem, uint64_t *addr);
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

#endif /* MPISTORE_WINDOW_H */
