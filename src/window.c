/* The store's windows: the allocated window and the dynamic window (or, on
 * a one-rank store, one allocated window per piece of grown memory),
 * created, locked, unlocked and freed for open and close (store.c decides
 * when; docs/design.md, "Open and close"); the pages mapped and attached to
 * the dynamic window (docs/design.md, "Growth"), and the flushes of its
 * targets.  The RMA layer (rma.c) flushes through here; the allocator
 * (alloc.c) and the index levels (levels.c) get their grown memory here. */
#define _DEFAULT_SOURCE 1 /* MAP_ANONYMOUS (not in POSIX 2008; Linux and the BSDs have it) */
#include "errors.h"
#include "window.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef MPISTORE_HAVE_ULFM
#include <mpi-ext.h>
#endif

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

/* Every rank's part of a shared window, mapped in this process: w->peer
 * (0), or an MPI error code. */
static int shared_peers(mpistore__wins_t *w, size_t bytes)
{
    for (int t = 0; t < w->nranks; t++) {
        MPI_Aint size = 0;
        int unit = 0;
        void *p = NULL;
        int rc = MPI_Win_shared_query(w->win, t, &size, &unit, &p);
        if (rc != MPI_SUCCESS)
            return rc;
        if (!p || (size_t)size < bytes)
            return MPI_ERR_WIN;
        w->peers[t] = p;
    }
    w->peer = w->peers;
    return MPI_SUCCESS;
}

int mpistore__wins_allocate(mpistore__wins_t *w, size_t bytes, int shared)
{
    MPI_Info info;
    MPI_Info_create(&info);
    /* write after write in issue order, per origin and target: an insert's
     * hints, counter word and key count land before its descriptor and
     * unlock in one flush (design.md, "Inserts in two round trips") */
    MPI_Info_set(info, "accumulate_ordering", "waw");
    MPI_Info_set(info, "same_size", "true");
    MPI_Info_set(info, "same_disp_unit", "true");
    int rc;
    w->peer = NULL;
    if (shared) {
        /* each rank's part on pages of its own (no false sharing across
         * parts, first touch by its owner) */
        MPI_Info_set(info, "alloc_shared_noncontig", "true");
        rc = MPI_Win_allocate_shared((MPI_Aint)bytes, 1, info, w->comm, &w->base, &w->win);
        MPI_Info_free(&info);
        if (rc == MPI_SUCCESS) { /* a failed query returns, for the fallback */
            MPI_Win_set_errhandler(w->win, MPI_ERRORS_RETURN);
            return shared_peers(w, bytes); /* on failure the window stays, for the caller */
        }
    } else {
        rc = MPI_Win_allocate((MPI_Aint)bytes, 1, info, w->comm, &w->base, &w->win);
        MPI_Info_free(&info);
    }
    if (rc != MPI_SUCCESS) {
        w->win = MPI_WIN_NULL;
        w->base = NULL;
    }
    return rc;
}

int mpistore__wins_dynamic(mpistore__wins_t *w)
{
    /* one rank: Open MPI 4.1 cannot make a dynamic window on it, and every
     * "collective" is local, so grown memory gets windows of its own */
    w->dwin = MPI_WIN_NULL;
    if (w->nranks == 1)
        return MPI_SUCCESS;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "accumulate_ordering", "waw"); /* as the allocated window's */
    int rc = MPI_Win_create_dynamic(info, w->comm, &w->dwin);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) {
        w->dwin = MPI_WIN_NULL;
        return rc;
    }
    MPI_Win_set_errhandler(w->dwin, MPI_ERRORS_RETURN);
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, w->dwin);
    w->dlocked = rc == MPI_SUCCESS;
    return rc;
}

int mpistore__wins_lock(mpistore__wins_t *w, size_t first_bytes)
{
    MPI_Win_set_errhandler(w->win, MPI_ERRORS_RETURN);
    memset(w->base, 0, first_bytes);
    int rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, w->win);
    w->locked = rc == MPI_SUCCESS;
    if (rc == MPI_SUCCESS)
        rc = MPI_Win_sync(w->win);
    return rc;
}

void mpistore__wins_name(const mpistore__wins_t *w, char *name, size_t n)
{
    char buf[MPI_MAX_OBJECT_NAME] = "";
    int len = 0;
    if (MPI_Win_get_name(w->win, buf, &len) != MPI_SUCCESS)
        buf[0] = 0;
    snprintf(name, n, "%s", buf);
}

int mpistore__wins_unlock(mpistore__wins_t *w, int flush_all)
{
    int rc = MPI_SUCCESS, r;
    /* every call runs, whatever failed before it */
    if (flush_all && w->locked && (r = MPI_Win_flush_all(w->win)) != MPI_SUCCESS)
        rc = r;
    if (w->locked && (r = MPI_Win_unlock_all(w->win)) != MPI_SUCCESS && rc == MPI_SUCCESS)
        rc = r;
    if (w->dlocked && (r = MPI_Win_unlock_all(w->dwin)) != MPI_SUCCESS && rc == MPI_SUCCESS)
        rc = r;
    w->locked = w->dlocked = 0;
    return rc;
}

/* Attached memory is not detached: MPI_Win_free of the dynamic window
 * (after which it is freed) ends its attachment, and Open MPI 4.1's osc/ucx
 * crashed in MPI_Win_free (ucp_mem_unmap) when segments had been detached
 * first. */
int mpistore__wins_free(mpistore__wins_t *w, int dyn_everywhere, int win_everywhere)
{
    int rc = MPI_SUCCESS, r;
    if (w->win != MPI_WIN_NULL && win_everywhere && (r = MPI_Win_free(&w->win)) != MPI_SUCCESS)
        rc = r;
    w->win = MPI_WIN_NULL;
    w->peer = NULL;
    /* every rank is past its last access (MPI_Win_free above synchronizes):
     * the grown memory can go */
    for (unsigned i = 0; i < w->nxwin; i++) {
        (void)MPI_Win_unlock_all(w->xwin[i]);
        (void)MPI_Win_free(&w->xwin[i]);
    }
    if (w->dwin != MPI_WIN_NULL && dyn_everywhere && (r = MPI_Win_free(&w->dwin)) != MPI_SUCCESS &&
        rc == MPI_SUCCESS)
        rc = r;
    w->dwin = MPI_WIN_NULL;
    return rc;
}

int mpistore__grow_init(mpistore__wins_t *w)
{
    size_t n = (size_t)w->nranks;
    w->dyn_list = calloc(n, sizeof *w->dyn_list);
    w->dyn_mark = calloc(n, 1);
    w->peers = calloc(n, sizeof *w->peers);
    return w->dyn_list && w->dyn_mark && w->peers ? 0 : -1;
}

void mpistore__win_unmap(const mpistore__wins_t *w, void *m, size_t n)
{
    if (m && w->nxwin == 0) /* pieces of a one-rank store are windows of their own */
        munmap(m, page_round(n));
}

void mpistore__grow_free(mpistore__wins_t *w)
{
    if (w->dwarm) /* mpistore__rq_warmup's page, attached until the window was freed */
        munmap(w->dwarm, page_round(sizeof *w->dwarm));
    w->dwarm = NULL;
    free(w->dyn_list);
    free(w->dyn_mark);
    free(w->peers);
    w->dyn_list = NULL;
    w->dyn_mark = NULL;
    w->peers = w->peer = NULL;
}

MPI_Aint mpistore__win_warm_word(mpistore__wins_t *w)
{
    MPI_Aint a = 0;
    unsigned char *m = map_pages(sizeof *w->dwarm);
    if (!m)
        return 0;
    if (MPI_Win_attach(w->dwin, m, (MPI_Aint)page_round(sizeof *w->dwarm)) != MPI_SUCCESS ||
        MPI_Get_address(m, &a) != MPI_SUCCESS) {
        munmap(m, page_round(sizeof *w->dwarm));
        return 0;
    }
    w->dwarm = (int64_t *)(void *)m;
    return a;
}

int mpistore__win_sync(mpistore__wins_t *w, size_t off)
{
    if (mpistore__wins_direct(w, off)) { /* one node: the next atomic publishes them */
        atomic_thread_fence(memory_order_seq_cst);
        return 0;
    }
    int rc = MPI_Win_sync(mpistore__win_of(w, off));
    return rc == MPI_SUCCESS ? 0 : mpistore__mpierr(w->err, rc, "MPI_Win_sync", w->rank);
}

/* Grown memory of n bytes (zeroed if zero): attached to the dynamic window,
 * or on a one-rank store a window of its own.  *addr is what goes after
 * MS_DYN in a displacement. */
int mpistore__win_mem(mpistore__wins_t *w, size_t n, int zero, unsigned char **mem, uint64_t *addr)
{
    unsigned char *m = NULL;
    MPI_Aint a = 0;
    int rc;
    if (w->dwin == MPI_WIN_NULL) {
        MPI_Win x = MPI_WIN_NULL;
        if (w->nxwin == MS_MAX_XWIN)
            return -MPISTORE_ENOMEM;
        rc = MPI_Win_allocate((MPI_Aint)n, 1, MPI_INFO_NULL, w->comm, &m, &x);
        if (rc == MPI_SUCCESS) {
            MPI_Win_set_errhandler(x, MPI_ERRORS_RETURN);
            rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, x);
            if (rc != MPI_SUCCESS)
                MPI_Win_free(&x);
        }
        if (rc != MPI_SUCCESS)
            return -MPISTORE_ENOMEM; /* most likely memory */
        if (zero)
            memset(m, 0, n);
        if (zero && (rc = MPI_Win_sync(x)) != MPI_SUCCESS) {
            MPI_Win_unlock_all(x);
            MPI_Win_free(&x);
            return mpistore__mpierr(w->err, rc, "MPI_Win_sync", w->rank);
        }
        w->xwin[w->nxwin++] = x;
        *mem = m;
        *addr = (uint64_t)w->nxwin << MS_XWIN_SHIFT;
        return 0;
    }
    (void)zero; /* mapped pages are zero */
    m = map_pages(n);
    if (!m)
        return -MPISTORE_ENOMEM;
    rc = MPI_Win_attach(w->dwin, m, (MPI_Aint)page_round(n));
    if (rc == MPI_SUCCESS)
        rc = MPI_Get_address(m, &a);
    if (rc != MPI_SUCCESS) {
        munmap(m, page_round(n));
        return mpistore__mpierr(w->err, rc, "MPI_Win_attach", w->rank);
    }
    *mem = m;
    *addr = (uint64_t)a;
    return 0;
}

int mpistore__dyn_flush(mpistore__wins_t *w)
{
    int rc = MPI_SUCCESS, bad = -1;
    if (w->dyn_n == 0)
        return 0;
    mpistore__dyn_enter(w, MS_DYN); /* the target's progress: let Open MPI yield */
    for (unsigned x = 0; w->dwin == MPI_WIN_NULL && w->dyn_n && x < w->nxwin; x++) {
        int e = MPI_Win_flush(0, w->xwin[x]);
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = 0;
    }
    for (size_t i = 0; i < w->dyn_n; i++) {
        int r = w->dyn_list[i];
        int e = w->dwin == MPI_WIN_NULL ? MPI_SUCCESS : MPI_Win_flush(r, w->dwin);
        w->dyn_mark[r] = 0;
        if (e != MPI_SUCCESS && rc == MPI_SUCCESS)
            rc = e, bad = r;
    }
    w->dyn_n = 0;
    mpistore__dyn_leave(w, MS_DYN);
    return rc == MPI_SUCCESS ? 0
                             : mpistore__mpierr(w->err, rc, "MPI_Win_flush (dynamic window)", bad);
}

void mpistore__dyn_complete(mpistore__wins_t *w)
{
    if (w->dyn_n == 0)
        return;
    mpistore__dyn_enter(w, MS_DYN);
    for (unsigned x = 0; w->dwin == MPI_WIN_NULL && w->dyn_n && x < w->nxwin; x++)
        (void)MPI_Win_flush(0, w->xwin[x]);
    for (size_t i = 0; i < w->dyn_n; i++) {
        if (w->dwin != MPI_WIN_NULL)
            (void)MPI_Win_flush(w->dyn_list[i], w->dwin);
        w->dyn_mark[w->dyn_list[i]] = 0;
    }
    w->dyn_n = 0;
    mpistore__dyn_leave(w, MS_DYN);
}

int mpistore__wins_ft_enabled(void)
{
#ifdef MPISTORE_HAVE_ULFM
    /* Open MPI's boolean spellings, any case */
    static const char *const yes[] = {"1", "true", "t", "yes", "y", "on", "enabled"};
    const char *e = getenv("OMPI_MCA_mpi_ft_enable");
    for (size_t i = 0; e && i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(e, yes[i]) == 0)
            return 1;
    return 0;
#else
    return 0;
#endif
}

int mpistore__wins_dead(mpistore__wins_t *w, int target)
{
#ifdef MPISTORE_HAVE_ULFM
    MPI_Group failed = MPI_GROUP_NULL, all = MPI_GROUP_NULL;
    int n = 0, dead = 0;
    if (MPIX_Comm_get_failed(w->comm, &failed) == MPI_SUCCESS && failed != MPI_GROUP_NULL &&
        MPI_Group_size(failed, &n) == MPI_SUCCESS && n > 0 &&
        MPI_Comm_group(w->comm, &all) == MPI_SUCCESS) {
        int in = -1;
        if (MPI_Group_translate_ranks(all, 1, &target, failed, &in) == MPI_SUCCESS)
            dead = in != MPI_UNDEFINED;
    }
    if (all != MPI_GROUP_NULL)
        MPI_Group_free(&all);
    if (failed != MPI_GROUP_NULL)
        MPI_Group_free(&failed);
    return dead;
#else
    (void)w, (void)target;
    return 0;
#endif
}
