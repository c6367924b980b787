/* A store's life cycle: open (collective: options agreed, the host checked,
 * windows made, locked and settled on every rank; docs/design.md, "Open and
 * close") and close (collective for a store, local for a view or clone). */
#include "errors.h"
#include "mpienv.h"
#include "mpiyield.h"
#include "options.h"
#include "ops.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Agree on options across ranks: every rank returns the same verdict. */
static int agree(MPI_Comm comm, const mpistore_options_t *o, int bad, int *differ, int *anybad)
{
    double tmo = o->timeout_s;
    uint64_t mine[10], lo[10], hi[10];
    memcpy(&mine[0], &tmo, sizeof tmo);
    mine[1] = o->max_key_len;
    mine[2] = o->max_value_len;
    mine[3] = o->keys_per_rank;
    mine[4] = o->bytes_per_rank;
    mine[5] = o->version;
    mine[6] = o->max_keys_per_rank;
    mine[7] = o->max_bytes_per_rank;
    mine[8] = (uint64_t)o->replicas;
    mine[9] = (uint64_t)bad;
    int rc = MPI_Allreduce(mine, lo, 10, MPI_UINT64_T, MPI_MIN, comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allreduce(mine, hi, 10, MPI_UINT64_T, MPI_MAX, comm);
    if (rc != MPI_SUCCESS)
        return rc;
    *differ = hi[9] != 0 ? 2 : memcmp(lo, hi, 9 * sizeof lo[0]) != 0;
    *anybad = (int)hi[9]; /* bits of every rank: the same verdict everywhere */
    return MPI_SUCCESS;
}

static int open_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int open_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mpistore__orphan_verr(code, fmt, ap);
    va_end(ap);
    return rc;
}

static int open_mpi_fail(int mpirc, const char *call, size_t bytes)
{
    char text[MPI_MAX_ERROR_STRING];
    mpistore__mpi_text(mpirc, text);
    if (bytes)
        return mpistore__orphan_err(MPISTORE_EMPI, "%s of %zu bytes per rank failed: %.200s", call,
                                    bytes, text);
    return mpistore__orphan_err(MPISTORE_EMPI, "%s failed: %.200s", call, text);
}

/* Open MPI before 5.0: osc/rdma cannot use TCP, osc/pt2pt is the network
 * path and refuses MPI_THREAD_MULTIPLE (5.0 has neither limit). */
static int is_open_mpi4(void)
{
    char lib[96];
    mpistore__mpi_library(lib, sizeof lib);
    return strncmp(lib, "Open MPI v", 10) == 0 && atoi(lib + 10) < 5;
}

/* MPI_Win_allocate failed: say which setting fixes the known causes. */
static int window_fail(int mpirc, size_t bytes, int nodes, int level)
{
    char text[MPI_MAX_ERROR_STRING];
    mpistore__mpi_text(mpirc, text);
    int ompi = is_open_mpi4(), multiple = level == MPI_THREAD_MULTIPLE;
    if (ompi && nodes > 1)
        return mpistore__orphan_err(
            MPISTORE_EMPI,
            "MPI_Win_allocate failed: %.96s. The job spans %d nodes and Open MPI 4.x's "
            "default one-sided component (osc/rdma) cannot use TCP between nodes: run with "
            "'--mca osc sm,pt2pt' (or export OMPI_MCA_osc=sm,pt2pt)%s",
            text, nodes,
            multiple ? "; osc/pt2pt refuses MPI_THREAD_MULTIPLE, so with that thread level "
                       "use '--mca osc ucx' (plus UCX_TLS=tcp,self over plain TCP)"
                     : "");
    if (ompi && multiple)
        return mpistore__orphan_err(
            MPISTORE_EMPI,
            "MPI_Win_allocate of %zu bytes per rank failed: %.96s. Under "
            "MPI_THREAD_MULTIPLE, Open MPI 4.x's osc/pt2pt (its TCP path) cannot create "
            "windows: run with '--mca osc ucx' (plus UCX_TLS=tcp,self over plain TCP) or "
            "initialise MPI with MPI_THREAD_SERIALIZED; else lower bytes_per_rank",
            bytes, text);
    return mpistore__orphan_err(MPISTORE_EMPI,
                                "MPI_Win_allocate of %zu bytes per rank failed: %.96s (lower "
                                "bytes_per_rank or keys_per_rank)",
                                bytes, text);
}

/* MPISTORE_SHM=0: this rank asks for the MPI path on one node. */
static int shm_off(void)
{
    const char *e = getenv("MPISTORE_SHM");
    return e && strcmp(e, "0") == 0;
}

/* Collective: the shared-memory nodes comm spans (or -1), the ranks of comm
 * on this rank's node, whether the window may be shared memory (one node
 * and no rank set MPISTORE_SHM=0: *shm), and whether every rank's windows
 * fit its host (mpistore__window_fits): 0, or 1 with why set on the ranks
 * whose host is too small, 2 on the others. */
static int host_check(MPI_Comm comm, size_t win_bytes, int *nodes, int *local, int *shm, char *why,
                      size_t n)
{
    MPI_Comm node = MPI_COMM_NULL;
    int lrank = 0, mine[3] = {0, 0, 0}, sum[3] = {0, 0, 0};
    *local = 1;
    *shm = 0;
    /* the reduction runs on every rank, even if the split failed here */
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &lrank);
        MPI_Comm_size(node, local);
        MPI_Comm_free(&node);
    }
    mine[0] = lrank == 0;
    mine[1] = mpistore__window_fits(win_bytes, *local, why, n) != 0;
    mine[2] = shm_off();
    if (MPI_Allreduce(mine, sum, 3, MPI_INT, MPI_SUM, comm) != MPI_SUCCESS) {
        *nodes = -1;
        return 0;
    }
    *nodes = sum[0];
    *shm = sum[0] == 1 && sum[2] == 0;
    return mine[1] ? 1 : sum[1] ? 2 : 0;
}

static const char *thread_level_name(int level)
{
    switch (level) {
    case MPI_THREAD_SINGLE:
        return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
        return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
        return "MPI_THREAD_SERIALIZED";
    default:
        return "MPI_THREAD_MULTIPLE";
    }
}

/* What is wrong on a rank before any window exists.  agree() reduces it with
 * MPI_MAX, so the highest bit set anywhere reaches every rank: a launcher
 * of another MPI first, then memory, then arguments. */
enum {
    OPEN_BAD_ARGS = 1,   /* arguments, environment or thread level (why says which) */
    OPEN_BAD_NOMEM = 2,  /* the handle or growth's per-rank caches */
    OPEN_BAD_LAUNCH = 4, /* started by another MPI's launcher (mpistore__launch_check) */
};

/* What failed on a rank while the windows were built.  One MPI_BOR reduction
 * tells every rank, so that every rank unwinds the same way and none is left
 * in a collective. */
enum {
    OPEN_FAILED_WINDOW = 1,   /* MPI_Win_allocate: this rank has no window */
    OPEN_FAILED_LOCK = 2,     /* MPI_Win_lock_all (or MPI_Win_sync) on the window */
    OPEN_FAILED_PROGRESS = 4, /* the progress thread did not start */
    OPEN_FAILED_DYNWIN = 8,   /* MPI_Win_create_dynamic (or its MPI_Win_lock_all) */
};
/* the failures that are MPI errors (MPISTORE_EMPI); the rest are ENOMEM */
#define OPEN_FAILED_MPI (OPEN_FAILED_WINDOW | OPEN_FAILED_LOCK | OPEN_FAILED_DYNWIN)

/* What an open has learnt and built so far: the steps below fill it in, top
 * to bottom, and open_cleanup() frees what a failed open leaves. */
typedef struct {
    MPI_Comm comm;        /* the caller's */
    mpistore_options_t o; /* the caller's options, completed and overridden */
    char why[400];        /* this rank's reason for OPEN_BAD_ARGS or _LAUNCH */
    int bad;              /* OPEN_BAD_* of this rank */
    int level;            /* MPI's thread level */
    int progress;         /* > 0: start the progress thread */
    long period;          /* its period (us) */
    mpistore__core_t *c;
    mpistore_t *s;
    MPI_Comm dup; /* the store's communicator, once duplicated */
    int nodes;    /* shared-memory nodes the store spans, or -1 */
    int shm;      /* one node, no rank opted out: try a shared window (open_window) */
} open_state_t;

/* Local: MPI is usable and comm is a communicator (a rank that fails here
 * makes no collective call). */
static int open_check_mpi(MPI_Comm comm)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (!init || fin)
        return open_fail(MPISTORE_ESTATE, "%s", "mpistore_open: MPI is not initialised");
    if (comm == MPI_COMM_NULL)
        return open_fail(MPISTORE_EINVAL, "%s", "mpistore_open: comm is MPI_COMM_NULL");
    mpistore__mpiyield_init();
    return MPISTORE_OK;
}

/* The options in effect: the defaults, the fields the caller's options
 * version has, then the environment's sizes; checked (OPEN_BAD_ARGS). */
static void open_options(open_state_t *st, mpistore_t **out, const mpistore_options_t *opts)
{
    mpistore_options_t *o = &st->o;
    mpistore_options_init(o);
    if (opts && opts->version == 1) /* fields before progress_thread only */
        memcpy(o, opts, offsetof(mpistore_options_t, progress_thread));
    else if (opts && opts->version == 2) /* ... before max_keys_per_rank */
        memcpy(o, opts, offsetof(mpistore_options_t, max_keys_per_rank));
    else if (opts && opts->version == 3) /* ... before replicas */
        memcpy(o, opts, offsetof(mpistore_options_t, replicas));
    else if (opts)
        *o = *opts;
    if (!out)
        snprintf(st->why, sizeof st->why, "out is NULL");
    else if (mpistore__options_env(o, st->why, sizeof st->why) == 0 &&
             mpistore__options_check(o, st->why, sizeof st->why) == 0)
        return;
    st->bad = OPEN_BAD_ARGS;
}

/* Whether to start a progress thread (option or environment), and whether
 * MPI's thread level allows it (OPEN_BAD_ARGS if not). */
static void open_thread_policy(open_state_t *st)
{
    st->level = MPI_THREAD_SINGLE;
    MPI_Query_thread(&st->level);
    if (st->bad)
        return;
    st->progress = mpistore__progress_requested(st->o.progress_thread, st->why, sizeof st->why);
    st->period = st->progress > 0 ? mpistore__progress_period_us(st->why, sizeof st->why) : 0;
    if (st->progress < 0 || st->period < 0)
        st->bad = OPEN_BAD_ARGS;
    else if (st->progress && st->level != MPI_THREAD_MULTIPLE) {
        snprintf(st->why, sizeof st->why,
                 "the progress thread needs MPI_THREAD_MULTIPLE but MPI provides %s (initialise "
                 "with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...) or unset "
                 "MPISTORE_PROGRESS_THREAD)",
                 thread_level_name(st->level));
        st->bad = OPEN_BAD_ARGS;
    }
}

/* Local: a process started by another MPI's launcher is a singleton job of
 * its own; say so (OPEN_BAD_LAUNCH) instead of opening a one-rank store. */
static void open_launcher(open_state_t *st)
{
    if (mpistore__launch_check(st->why, sizeof st->why) != 0)
        st->bad |= OPEN_BAD_LAUNCH;
}

/* The handle, its core and growth's per-rank caches (OPEN_BAD_NOMEM: agreed
 * on like the arguments). */
static void open_alloc(open_state_t *st)
{
    mpistore__core_t *c = st->c = calloc(1, sizeof *st->c);
    st->s = calloc(1, sizeof *st->s);
    int n = 0, ok = c && st->s;
    MPI_Comm_size(st->comm, &n);
    if (c) {
        c->rma.w = (mpistore__wins_t){.nranks = n,
                                      .err = &c->err,
                                      .win = MPI_WIN_NULL,
                                      .dwin = MPI_WIN_NULL,
                                      .comm = MPI_COMM_NULL};
        ok = ok && mpistore__grow_init(&c->rma.w) == 0;
        ok = ok && mpistore__mem_init(&c->mem, n) == 0;
        ok = ok && mpistore__levels_init(&c->lev, n) == 0;
    }
    if (!ok)
        st->bad |= OPEN_BAD_NOMEM;
}

/* Collective: the store's communicator, then every rank's verdict on the
 * options and its own arguments and memory, so that all go on or all fail
 * with the same code (each with its own message). */
static int open_agree(open_state_t *st)
{
    int differ = 0, anybad = 0;
    int rc = MPI_Comm_dup(st->comm, &st->dup);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(st->dup, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = agree(st->dup, &st->o, st->bad, &differ, &anybad);
    if (rc != MPI_SUCCESS)
        return open_mpi_fail(rc, "MPI_Comm_dup/MPI_Allreduce", 0);
    if (!differ)
        return MPISTORE_OK;
    if (anybad & OPEN_BAD_LAUNCH)
        return open_fail(MPISTORE_EMPI, "mpistore_open: %s",
                         st->bad & OPEN_BAD_LAUNCH
                             ? st->why
                             : "another rank was started by another MPI's launcher");
    if (anybad & OPEN_BAD_NOMEM)
        return open_fail(MPISTORE_ENOMEM, "%s",
                         st->bad & OPEN_BAD_NOMEM ? "mpistore_open: out of memory"
                                                  : "mpistore_open: out of memory on another rank");
    if (differ == 2 && st->why[0])
        return open_fail(MPISTORE_EINVAL, "mpistore_open: %s", st->why);
    if (differ == 2)
        return open_fail(MPISTORE_EINVAL, "%s", "mpistore_open: invalid arguments on another rank");
    return open_fail(MPISTORE_EINVAL, "%s",
                     "mpistore_open: ranks passed different options (every rank must pass "
                     "identical options)");
}

/* Rank, size and the window layout (every rank has the same size, so all
 * refuse too many ranks alike). */
static int open_layout(open_state_t *st)
{
    mpistore__core_t *c = st->c;
    mpistore__wins_t *w = &c->rma.w;
    w->comm = st->dup;
    MPI_Comm_rank(st->dup, &w->rank);
    MPI_Comm_size(st->dup, &w->nranks);
    if ((unsigned)w->nranks > MS_MAX_RANKS)
        return open_fail(MPISTORE_EINVAL, "mpistore_open: %d ranks, at most %u are supported",
                         w->nranks, MS_MAX_RANKS);
    mpistore__layout_make(&st->o, &c->lay, &c->mem.alloc.shift, &c->mem.max_units);
    return MPISTORE_OK;
}

/* Collective: the nodes the store spans, and whether its windows fit every
 * rank's host.  A window that does not fit is refused here, on every rank,
 * before MPI_Win_allocate: Open MPI 5's osc/sm fails it on one rank and
 * leaves the others waiting for ever, MPICH 5 "succeeds" and the first
 * touch of the memory is a SIGBUS. */
static int open_host(open_state_t *st)
{
    char why[300];
    int local = 1;
    int fit =
        host_check(st->dup, st->c->lay.win_bytes, &st->nodes, &local, &st->shm, why, sizeof why);
    if (fit == 1)
        return open_fail(MPISTORE_ENOMEM, "mpistore_open: %s", why);
    if (fit == 2)
        return open_fail(MPISTORE_ENOMEM, "%s",
                         "mpistore_open: the store's window does not fit another rank's host "
                         "(lower bytes_per_rank or keys_per_rank)");
    return MPISTORE_OK;
}

/* Collective, one node (st->shm): the window in shared memory, mapped by
 * every rank (design.md, "One node").  1 if every rank has it; 0 if no
 * rank uses it (MPI could not make it everywhere, e.g. a one-sided
 * component forced with --mca osc that has no shared windows): the caller
 * then makes the ordinary window. */
static int open_shared_window(open_state_t *st)
{
    mpistore__wins_t *w = &st->c->rma.w;
    int rc = mpistore__wins_allocate(w, st->c->lay.win_bytes, 1);
    int mine[2] = {w->win != MPI_WIN_NULL, rc == MPI_SUCCESS}, all[2] = {0, 0};
    if (MPI_Allreduce(mine, all, 2, MPI_INT, MPI_MIN, st->dup) != MPI_SUCCESS)
        all[0] = all[1] = 0;
    if (all[1])
        return 1;
    /* every rank has a window to free together; a rank without one leaves
     * the others' to the end of the job rather than a collective that
     * could not complete */
    if (all[0])
        (void)mpistore__wins_free(w, 0, 1);
    w->win = MPI_WIN_NULL;
    w->base = NULL;
    w->peer = NULL;
    return 0;
}

/* Collective: the store's window, with its hints.  0 or OPEN_FAILED_WINDOW
 * (the reason, with the setting that fixes it, in this rank's message). */
static int open_window(open_state_t *st)
{
    size_t bytes = st->c->lay.win_bytes;
    if (st->shm && open_shared_window(st))
        return 0;
    int rc = mpistore__wins_allocate(&st->c->rma.w, bytes, 0);
    if (rc == MPI_SUCCESS)
        return 0;
    (void)window_fail(rc, bytes, st->nodes, st->level);
    return OPEN_FAILED_WINDOW;
}

/* Collective: the dynamic window for growth (design.md, "Growth"), created
 * once, here; memory is attached to it locally later.  0 or
 * OPEN_FAILED_DYNWIN (quiet: the allocated window failed on this rank
 * already, whose message is kept). */
static int open_dynamic_window(open_state_t *st, int quiet)
{
    int rc = mpistore__wins_dynamic(&st->c->rma.w);
    if (rc == MPI_SUCCESS)
        return 0;
    if (!quiet)
        (void)open_mpi_fail(rc, "MPI_Win_create_dynamic", 0);
    return OPEN_FAILED_DYNWIN;
}

/* This rank's part of the window zeroed, its allocator set up, and the
 * window locked for the store's lifetime.  0 or OPEN_FAILED_LOCK. */
static int open_lock_window(open_state_t *st)
{
    mpistore__core_t *c = st->c;
    const mpistore__layout_t *y = &c->lay;
    mpistore__alloc_init(&c->mem.alloc, c->rma.w.base + y->off_arena, y->off_arena, y->arena_bytes,
                         c->mem.alloc.shift);
    if (y->mirror) { /* the mirror's header and index start empty too (rma.h) */
        memset(c->rma.w.base + y->mirror, 0, y->off_arena);
        if (mpistore__mirror_init(&c->rma, y->mirror, y->off_ctl, y->off_desc, y->off_arena)) {
            (void)open_fail(MPISTORE_ENOMEM, "mpistore_open: out of memory (replicas)");
            return OPEN_FAILED_LOCK;
        }
    }
    c->rma.rq.use = mpistore__rq_wanted(&c->rma.w, st->nodes); /* deadlines on reads: rq.c */
    int rc = mpistore__wins_lock(&c->rma.w, y->off_arena);
    if (rc == MPI_SUCCESS)
        return 0;
    (void)open_mpi_fail(rc, "MPI_Win_lock_all", 0);
    return OPEN_FAILED_LOCK;
}

/* The progress thread, if asked for.  0 or OPEN_FAILED_PROGRESS. */
static int open_progress(open_state_t *st)
{
    if (!st->progress || mpistore__progress_start(&st->c->prog) == 0)
        return 0;
    (void)open_fail(MPISTORE_ENOMEM, "%s",
                    "mpistore_open: cannot start the progress thread (pthread_create failed)");
    return OPEN_FAILED_PROGRESS;
}

/* The step that failed on some rank, for the ranks where all went well. */
static const char *open_failed_step(int anyfail)
{
    return anyfail & OPEN_FAILED_WINDOW   ? "MPI_Win_allocate"
           : anyfail & OPEN_FAILED_DYNWIN ? "MPI_Win_create_dynamic"
           : anyfail & OPEN_FAILED_LOCK   ? "MPI_Win_lock_all"
                                          : "starting the progress thread";
}

/* Collective: every rank learns what failed anywhere (failed: this rank's
 * OPEN_FAILED_*) in one reduction, which doubles as the barrier that keeps
 * every rank off the windows until all are zeroed.  On any failure every
 * rank unwinds the same way and returns the same code. */
static int open_settle(open_state_t *st, int failed)
{
    mpistore__core_t *c = st->c;
    int anyfail = 0, rc;
    int arc = MPI_Allreduce(&failed, &anyfail, 1, MPI_INT, MPI_BOR, st->dup);
    if (arc == MPI_SUCCESS && !anyfail)
        return MPISTORE_OK;
    mpistore__progress_stop(&c->prog);
    (void)mpistore__wins_unlock(&c->rma.w, 0);
    if (arc != MPI_SUCCESS)
        rc = open_mpi_fail(arc, "MPI_Allreduce", 0);
    else if (!failed) /* this rank did fine: say what happened elsewhere */
        rc = open_fail(anyfail & OPEN_FAILED_MPI ? MPISTORE_EMPI : MPISTORE_ENOMEM,
                       "mpistore_open: %s failed on another rank", open_failed_step(anyfail));
    else /* same code on every rank, this rank's own message */
        rc = anyfail & OPEN_FAILED_MPI ? -MPISTORE_EMPI : -MPISTORE_ENOMEM;
    /* MPI_Win_free is collective: only if every rank has the window;
     * otherwise this rank's window is leaked rather than hang. */
    (void)mpistore__wins_free(&c->rma.w, arc == MPI_SUCCESS && !(anyfail & OPEN_FAILED_DYNWIN),
                              arc == MPI_SUCCESS && !(anyfail & OPEN_FAILED_WINDOW));
    c->rma.w.win = c->rma.w.dwin = MPI_WIN_NULL; /* (a leaked one is forgotten) */
    return rc;
}

/* Collective: the windows and the progress thread.  Each rank goes as far as
 * its first failure, then all agree (open_settle). */
static int open_windows(open_state_t *st)
{
    /* Both windows are collective: every rank creates the dynamic window,
     * also one whose allocated window failed (keeping that message), so
     * that the calls of all ranks match.  A rank that skipped it left the
     * others inside it until the job was killed (test_errors,
     * errors_empi_one_rank). */
    int failed = open_window(st);
    failed |= open_dynamic_window(st, failed);
    if (!failed)
        failed = open_lock_window(st);
    st->c->prog.period_us = st->period;
    st->c->prog.comm = st->dup;
    if (!failed)
        failed = open_progress(st);
    return open_settle(st, failed);
}

/* The store is up: its mutex, first contact with every peer (now, not in a
 * read with a deadline), and the handle. */
static void open_finish(open_state_t *st, mpistore_t **out)
{
    mpistore__core_t *c = st->c;
    c->lock.on = st->level == MPI_THREAD_MULTIPLE;
    /* no request-based reads: Open MPI's osc/rdma or osc/sm on one node, where
     * the origin reads and does atomics in shared memory (rq.c) and Open
     * MPI's idle yield only gives the core away (mpiyield.h) */
    c->lock.quiet = c->rma.w.quiet = !c->rma.rq.use;
    c->rma.w.ft = mpistore__wins_ft_enabled();
    if (c->lock.on)
        pthread_mutex_init(&c->lock.mu, NULL);
    if (c->rma.rq.use)
        mpistore__rq_warmup(&c->rma.rq, &c->rma.w);
    c->opts = st->o;
    st->s->core = c;
    st->s->timeout = st->o.timeout_s;
    *out = st->s;
}

/* What a failed open leaves: the communicator, the caches, the handle. */
static void open_cleanup(open_state_t *st)
{
    mpistore__core_t *c = st->c;
    if (c && c->rma.w.win != MPI_WIN_NULL && c->rma.w.base)
        (void)mpistore__wins_free(&c->rma.w, 0, 1);
    if (st->dup != MPI_COMM_NULL)
        MPI_Comm_free(&st->dup);
    if (c) {
        mpistore__levels_free(&c->lev, &c->rma.w);
        mpistore__mem_free(&c->mem, &c->rma.w);
        mpistore__grow_free(&c->rma.w);
        mpistore__mirror_free(&c->rma);
    }
    free(c);
    free(st->s);
}

/* Local checks first, then collective steps that every rank makes alike,
 * whatever failed on it: the ranks agree on each failure before going on. */
int mpistore_open(mpistore_t **out, MPI_Comm comm, const mpistore_options_t *opts)
{
    open_state_t st = {.comm = comm, .dup = MPI_COMM_NULL};
    mpistore__orphan_clear();
    int rc = open_check_mpi(comm);
    if (rc != MPISTORE_OK)
        return rc;
    open_options(&st, out, opts);
    open_thread_policy(&st);
    open_launcher(&st);
    open_alloc(&st);
    if ((rc = open_agree(&st)) != MPISTORE_OK)
        goto fail;
    if ((rc = open_layout(&st)) != MPISTORE_OK || (rc = open_host(&st)) != MPISTORE_OK)
        goto fail;
    if ((rc = open_windows(&st)) != MPISTORE_OK)
        goto fail;
    open_finish(&st, out);
    return MPISTORE_OK;

fail:
    open_cleanup(&st);
    return rc;
}

int mpistore_close(mpistore_t *s)
{
    if (!s)
        return MPISTORE_OK;
    mpistore__apilock_take(&s->core->lock); /* a view or clone may be closing on another thread */
    int views = s->nviews;
    mpistore__apilock_give(&s->core->lock);
    if (s->parent && views > 0)
        return mpistore__err(&s->err, MPISTORE_ESTATE,
                             "close: %d prefix view(s) or clone(s) of this handle are still open",
                             views);
    if (s->parent) {
        mpistore__apilock_take(&s->core->lock);
        s->parent->nviews--;
        mpistore__apilock_give(&s->core->lock);
        free(s->prefix);
        free(s);
        return MPISTORE_OK;
    }
    mpistore__core_t *c = s->core;
    /* Collective: a rank with views or clones still open must not leave the
     * others waiting in MPI_Win_free, so the ranks agree first. */
    int mine = views > 0, any = 0;
    int rc = MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, c->rma.w.comm);
    if (mpistore__ft_mpi_failed(rc)) /* which ranks died, for the message */
        (void)mpistore__ft_poll(&c->ft, c->rma.w.comm, NULL);
    if (rc == MPI_SUCCESS && any) {
        if (mine)
            return mpistore__err(
                &s->err, MPISTORE_ESTATE,
                "close: %d prefix view(s) or clone(s) of this handle are still open "
                "(no rank closed the store)",
                views);
        return mpistore__err(
            &s->err, MPISTORE_ESTATE,
            "close: another rank still has prefix views or clones of the store open "
            "(no rank closed the store)");
    }
    mpistore__progress_stop(&c->prog); /* before the window and communicator go away */
    const char *call = "MPI_Allreduce";
    int r;
    /* every collective runs on every rank, whatever failed before it */
    if ((r = mpistore__wins_unlock(&c->rma.w, 1)) != MPI_SUCCESS && rc == MPI_SUCCESS)
        rc = r, call = "MPI_Win_unlock_all";
    mpistore__rq_fini(
        &c->rma.rq); /* requests: completed by the unlocks, freed before the windows */
    if ((r = mpistore__wins_free(&c->rma.w, 1, 1)) != MPI_SUCCESS && rc == MPI_SUCCESS)
        rc = r, call = "MPI_Win_free";
    if ((r = MPI_Comm_free(&c->rma.w.comm)) != MPI_SUCCESS && rc == MPI_SUCCESS)
        rc = r, call = "MPI_Comm_free";
    if (c->lock.on)
        pthread_mutex_destroy(&c->lock.mu);
    mpistore__levels_free(&c->lev, &c->rma.w);
    mpistore__mem_free(&c->mem, &c->rma.w);
    mpistore__grow_free(&c->rma.w);
    mpistore__mirror_free(&c->rma);
    int died = mpistore__ft_mpi_failed(rc); /* a rank died: said as such */
    char names[96] = "unknown";
    if (died && c->ft.ndead > 0)
        mpistore__ft_names(&c->ft, names, sizeof names);
    mpistore__ft_free(&c->ft);
    free(c);
    free(s);
    if (died)
        return mpistore__orphan_err(MPISTORE_EPROCFAILED,
                                    "close: %s failed because rank(s) %s died; this rank's "
                                    "windows and memory are released",
                                    call, names);
    return rc == MPI_SUCCESS ? MPISTORE_OK : open_mpi_fail(rc, call, 0);
}
