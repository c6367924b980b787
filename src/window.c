/* The store's windows (docs/design.md, "Growth"): the dynamic window (or,
 * on a one-rank store, one allocated window per piece of grown memory), the
 * pages mapped and attached to it, their release at close, and the flushes
 * of the dynamic window's targets.  The RMA layer (rma.c) flushes through
 * here; the allocator (alloc.c) and the index levels (levels.c) get their
 * grown memory from here. */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS (not in POSIX 2008; Linux and the BSDs have it) */
#include "errors.h"
#include "core.h"
#include "window.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Grown memory comes from mmap: whole pages that share nothing with the
 * heap (osc/ucx registers attached memory by page and crashed in
 * MPI_Win_free when small heap segments had been attached), zero, and
 * resident only as touched. */
static size_t page_round(size_t n)
{
    long p = sysconf(_SC_PAGESIZE);
    size_t ps = p > 0 ? (size_t)p : 4096;
    return (n + ps - 1) / ps * ps;
}

static void *map_pages(size_t n)
{
    void *m = mmap(NULL, page_round(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

int ms_grow_init(ms_core_t *c)
{
    size_t n = (size_t)c->nranks;
    c->levc = calloc(n, sizeof *c->levc);
    c->segaddr = calloc(n * MS_MAX_SEGS, sizeof *c->segaddr);
    c->dyn_list = calloc(n, sizeof *c->dyn_list);
    c->dyn_mark = calloc(n, 1);
    return c->levc && c->segaddr && c->dyn_list && c->dyn_mark ? 0 : -1;
}

void ms_grow_free(ms_core_t *c)
{
    for (unsigned i = 0; c->nxwin == 0 && i < MS_MAX_SEGS; i++)
        if (c->segmem[i])
            munmap(c->segmem[i], page_round((size_t)c->seg[i].nunits << c->seg[i].shift));
    for (unsigned i = 0; c->nxwin == 0 && i < c->npools; i++)
        munmap(c->pools[i].mem, page_round(c->pools[i].size));
    if (c->dwarm) /* ms_rq_warmup's page, attached until the window was freed */
        munmap(c->dwarm, page_round(sizeof *c->dwarm));
    free(c->levc);
    free(c->segaddr);
    free(c->dyn_list);
    free(c->dyn_mark);
}

MPI_Aint ms_win_warm_word(ms_core_t *c)
{
    MPI_Aint a = 0;
    unsigned char *m = map_pages(sizeof *c->dwarm);
    if (!m)
        return 0;
    if (MPI_Win_attach(c->dwin, m, (MPI_Aint)page_round(sizeof *c->dwarm)) != MPI_SUCCESS ||
        MPI_Get_address(m, &a) != MPI_SUCCESS) {
        munmap(m, page_round(sizeof *c->dwarm));
        return 0;
    }
    c->dwarm = (int64_t *)(void *)m;
    return a;
}

/* Grown memory of n bytes (zeroed if zero): attached to the dynamic window,
 * or on a one-rank store a window of its own.  *addr is what goes after
 * MS_DYN in a displacement. */
int ms_win_mem(mpistore_t *s, size_t n, int zero, unsigned char **mem, uint64_t *addr)
{
    ms_core_t *c = s->core;
    unsigned char *m = NULL;
    MPI_Aint a = 0;
    int rc;
    if (c->dwin == MPI_WIN_NULL) {
        MPI_Win w = MPI_WIN_NULL;
        if (c->nxwin == MS_MAX_XWIN)
            return -MPISTORE_ENOMEM;
        rc = MPI_Win_allocate((MPI_Aint)n, 1, MPI_INFO_NULL, c->comm, &m, &w);
        if (rc == MPI_SUCCESS) {
            MPI_Win_set_errhandler(w, MPI_ERRORS_RETURN);
            rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, w);
            if (rc != MPI_SUCCESS)
                MPI_Win_free(&w);
        }
        if (rc != MPI_SUCCESS)
            return -MPISTORE_ENOMEM; /* most likely memory */
        if (zero)
            memset(m, 0, n);
        if (zero && (rc = MPI_Win_sync(w)) != MPI_SUCCESS) {
            MPI_Win_unlock_all(w);
            MPI_Win_free(&w);
            return ms_mpierr(s, rc, "MPI_Win_sync", c->rank);
        }
        c->xwin[c->nxwin++] = w;
        *mem = m;
        *addr = (uint64_t)c->nxwin << MS_XWIN_SHIFT;
        return 0;
    }
    (void)zero; /* mapped pages are zero */
    m = map_pages(n);
    if (!m)
        return -MPISTORE_ENOMEM;
    rc = MPI_Win_attach(c->dwin, m, (MPI_Aint)page_round(n));
    if (rc == MPI_SUCCESS)
        rc = MPI_Get_address(m, &a);
    if (rc != MPI_SUCCESS) {
        munmap(m, page_round(n));
        return ms_mpierr(s, rc, "MPI_Win_attach", c->rank);
    }
    *mem = m;
    *addr = (uint64_t)a;
    return 0;
}

/* Attached memory is not detached: MPI_Win_free of the dynamic window
 * (after which it is freed) ends its attachment, and Open MPI 4.1's osc/ucx
 * crashed in MPI_Win_free (ucp_mem_unmap) when segments had been detached
 * first. */
void ms_grow_detach(ms_core_t *c)
{
    for (unsigned i = 0; i < c->nxwin; i++) {
        (void)MPI_Win_unlock_all(c->xwin[i]);
        (void)MPI_Win_free(&c->xwin[i]);
    }
}

int ms_dyn_flush(mpistore_t *s)
{
    ms_core_t *c = s->core;
    int rc = MPI_SUCCESS, bad = -1;
    for (unsigned x = 0; c->dwin == MPI_WIN_NULL && c->dyn_n && x < c->nxwin; x++) {
        int e = MPI_Win_flush(0, c->xwin[x]);
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = 0;
    }
    for (size_t i = 0; i < c->dyn_n; i++) {
        int r = c->dyn_list[i];
        int e = c->dwin == MPI_WIN_NULL ? MPI_SUCCESS : MPI_Win_flush(r, c->dwin);
        c->dyn_mark[r] = 0;
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = r;
    }
    c->dyn_n = 0;
    return rc == MPI_SUCCESS ? 0 : ms_mpierr(s, rc, "MPI_Win_flush (dynamic window)", bad);
}

void ms_dyn_complete(ms_core_t *c)
{
    for (unsigned x = 0; c->dwin == MPI_WIN_NULL && c->dyn_n && x < c->nxwin; x++)
        (void)MPI_Win_flush(0, c->xwin[x]);
    for (size_t i = 0; i < c->dyn_n; i++) {
        if (c->dwin != MPI_WIN_NULL)
            (void)MPI_Win_flush(c->dyn_list[i], c->dwin);
        c->dyn_mark[c->dyn_list[i]] = 0;
    }
    c->dyn_n = 0;
}
