/* Dead ranks: MPI's fault-tolerance extension (ULFM) asked from wait loops
 * (docs/design.md, "Rank failures").  RMA does not tell an origin that its
 * target died (an MPI_Fetch_and_op on a dead rank's window returns
 * MPI_SUCCESS), so a wait that depends on a rank asks MPI about it, at most
 * every MS_FT_POLL_S: never on a call that does not wait, so the operations'
 * RMA calls and round trips stay what they are. */
#include "clock.h"
#include "ft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef MPISTORE_HAVE_ULFM
#include <mpi-ext.h>
#endif

#define MS_FT_POLL_S 0.02
/* A revoked communicator means that a survivor knew of a death and started
 * mpistore_shrink; the revoke can reach this rank before MPI's failure
 * detector does (ranks [] in a Python CI run): a wait fails after MPI has
 * named the dead, or after this long. */
#define MS_FT_NAME_S 2.0

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int mpistore__ft_poll(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err)
{
#ifdef MPISTORE_HAVE_ULFM
    MPI_Group failed = MPI_GROUP_NULL, all = MPI_GROUP_NULL;
    int n = 0, rc = MPIX_Comm_get_failed(comm, &failed);
    if (rc == MPI_SUCCESS)
        rc = MPI_Group_size(failed, &n);
    if (rc == MPI_SUCCESS && n > f->ndead) {
        int *in = malloc(2 * (size_t)n * sizeof *in);
        if (!in) {
            MPI_Group_free(&failed);
            return mpistore__err(err, MPISTORE_ENOMEM, "out of memory for %d dead ranks", n);
        }
        for (int i = 0; i < n; i++)
            in[i] = i;
        rc = MPI_Comm_group(comm, &all);
        if (rc == MPI_SUCCESS)
            rc = MPI_Group_translate_ranks(failed, n, in, all, in + n);
        if (rc == MPI_SUCCESS) {
            memmove(in, in + n, (size_t)n * sizeof *in);
            qsort(in, (size_t)n, sizeof *in, cmp_int);
            free(f->dead);
            f->dead = in; /* the 2n ints' first half */
            f->ndead = n;
        } else {
            free(in);
        }
        if (all != MPI_GROUP_NULL)
            MPI_Group_free(&all);
    }
    if (failed != MPI_GROUP_NULL)
        MPI_Group_free(&failed);
    return rc == MPI_SUCCESS ? 0 : mpistore__mpierr(err, rc, "MPIX_Comm_get_failed", -1);
#else
    (void)f, (void)comm, (void)err;
    return 0;
#endif
}

int mpistore__ft_await(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err, double seconds,
                       int *revoked)
{
    double t0 = mpistore__now();
    for (;;) {
        int flag = 0, rc, rv = 0; /* MPI learns of deaths while it progresses */
        (void)MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_SELF, &flag, MPI_STATUS_IGNORE);
        if ((rc = mpistore__ft_poll(f, comm, err)) != 0)
            return rc;
#ifdef MPISTORE_HAVE_ULFM
        if (revoked && MPIX_Comm_is_revoked(comm, &rv) == MPI_SUCCESS && rv)
            *revoked = 1;
#else
        (void)revoked;
#endif
        if (f->ndead > 0 || rv || mpistore__now() - t0 >= seconds)
            return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

int mpistore__ft_dead(const mpistore__ft_t *f, int rank)
{
    return f->ndead > 0 && bsearch(&rank, f->dead, (size_t)f->ndead, sizeof rank, cmp_int) != NULL;
}

/* EPROCFAILED if home is known dead (waited >= 0: how long the call waited) */
static int homed_on_dead(const mpistore__ft_t *f, mpistore__err_t *err, int home, const char *kind,
                         const char *name, double waited)
{
    if (home < 0 || !mpistore__ft_dead(f, home))
        return 0;
    if (waited < 0)
        return mpistore__err(err, MPISTORE_EPROCFAILED,
                             "rank %d died (MPI reports it failed): %s '%.64s' is homed there",
                             home, kind, name);
    return mpistore__err(err, MPISTORE_EPROCFAILED,
                         "rank %d died (MPI reports it failed): %s '%.64s' is homed there "
                         "(waited %.3f s)",
                         home, kind, name, waited);
}

int mpistore__ft_known(const mpistore__ft_t *f, mpistore__err_t *err, int home, const char *kind,
                       const char *name)
{
    return homed_on_dead(f, err, home, kind, name, -1);
}

int mpistore__ft_mpi_failed(int mpirc)
{
#ifdef MPISTORE_HAVE_ULFM
    int cls = MPI_SUCCESS;
    if (mpirc != MPI_SUCCESS && MPI_Error_class(mpirc, &cls) == MPI_SUCCESS)
        return cls == MPIX_ERR_PROC_FAILED || cls == MPIX_ERR_REVOKED;
#else
    (void)mpirc;
#endif
    return 0;
}

void mpistore__ft_names(const mpistore__ft_t *f, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < f->ndead && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%d", i ? ", " : "", f->dead[i]);
        if (w < 0 || (size_t)w >= n - used) {
            if (n >= 4)
                memcpy(buf + n - 4, "...", 4);
            return;
        }
        used += (size_t)w;
    }
}

/* "rank 2 died (MPI reports it failed)", "ranks 2, 3 died (MPI reports them
 * failed)": the head of a message about every known death. */
static void deaths(const mpistore__ft_t *f, char *buf, size_t n)
{
    char names[96];
    mpistore__ft_names(f, names, sizeof names);
    snprintf(buf, n, "rank%s %s died (MPI reports %s failed)", f->ndead > 1 ? "s" : "", names,
             f->ndead > 1 ? "them" : "it");
}

int mpistore__ft_check(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err, int home,
                       const char *kind, const char *name, double waited)
{
#ifdef MPISTORE_HAVE_ULFM
    double now = mpistore__now();
    if (now >= f->next_poll) {
        f->next_poll = now + MS_FT_POLL_S;
        int rc = mpistore__ft_poll(f, comm, err), revoked = 0;
        if (rc)
            return rc;
        /* another survivor started mpistore_shrink: join it */
        if (MPIX_Comm_is_revoked(comm, &revoked) == MPI_SUCCESS && revoked) {
            /* a survivor knew of a death; MPI's detector may tell this
             * rank after the revoke: wait for it to name the dead, so
             * that every survivor's error names them */
            if (f->ndead == 0 && (rc = mpistore__ft_await(f, comm, err, MS_FT_NAME_S, NULL)) != 0)
                return rc;
            char head[160] = "a rank died";
            if (f->ndead > 0)
                deaths(f, head, sizeof head);
            return mpistore__err(err, MPISTORE_EPROCFAILED,
                                 "%s and another rank started mpistore_shrink (the store's "
                                 "communicator is revoked): %s '%.64s' (waited %.3f s)",
                                 head, kind, name, waited);
        }
    }
#else
    (void)comm;
#endif
    if (f->ndead == 0)
        return 0;
    int rc = homed_on_dead(f, err, home, kind, name, waited);
    if (rc)
        return rc;
    if (f->every > 0) {
        char head[160];
        deaths(f, head, sizeof head);
        return mpistore__err(err, MPISTORE_EPROCFAILED,
                             "%s: %s '%.64s' waits for every rank (waited %.3f s)", head, kind,
                             name, waited);
    }
    return 0;
}

int mpistore__ft_stuck(const mpistore__ft_t *f, mpistore__err_t *err, const char *what,
                       const char *name, int home, double waited)
{
    if (f->ndead == 0 || waited < MS_FT_STUCK_S)
        return 0;
    char head[160];
    deaths(f, head, sizeof head);
    return mpistore__err(err, MPISTORE_EPROCFAILED,
                         "%s and %s '%.64s' (home rank %d) has waited %.3f s for a slot lock: a "
                         "dead rank may hold it",
                         head, what, name, home, waited);
}

void mpistore__ft_free(mpistore__ft_t *f)
{
    free(f->dead);
    f->dead = NULL;
    f->ndead = 0;
}
