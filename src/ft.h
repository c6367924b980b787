/* Dead ranks (ft.c): what MPI's fault-tolerance extension (ULFM,
 * MPIX_Comm_get_failed) reports about the store's communicator, asked by
 * wait loops only (docs/design.md, "Rank failures").  Without ULFM
 * (MPISTORE_HAVE_ULFM unset) nothing is ever dead. */
#ifndef MPISTORE_FT_H
#define MPISTORE_FT_H

#include "errors.h"

#include <mpi.h>
#include <stddef.h>

typedef struct mpistore__ft {
    double next_poll; /* a wait loop asks MPI again from this time on */
    int every;        /* > 0: the running call waits for every rank (a helper's scope) */
    int *dead;        /* ranks of the store's communicator known dead, ascending */
    int ndead;
} mpistore__ft_t;

/* Ask MPI now which ranks of comm failed (the list only grows): 0, or a
 * negative code with the message in err. */
int mpistore__ft_poll(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err);
/* Ask MPI, progressing it, until it names a dead rank of comm, or (with
 * revoked non-NULL, then set to 1) comm is revoked, or `seconds` pass: 0
 * (f->ndead may still be 0), or a negative code with the message in err. */
int mpistore__ft_await(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err, double seconds,
                       int *revoked);
/* In a wait loop, for a wait on rank `home` (-1: on no rank in particular):
 * asks MPI at most every MS_FT_POLL_S, then fails with EPROCFAILED if home
 * died, or, inside an every-rank scope, if any rank died.  What is waited
 * for is `kind` 'name' ("key", "k"); waited: seconds so far. */
int mpistore__ft_check(mpistore__ft_t *f, MPI_Comm comm, mpistore__err_t *err, int home,
                       const char *kind, const char *name, double waited);
/* Without asking MPI (no cost on a call that does not wait): fail with
 * EPROCFAILED if rank `home` is already known dead. */
int mpistore__ft_known(const mpistore__ft_t *f, mpistore__err_t *err, int home, const char *kind,
                       const char *name);
/* Is rank known dead (no question to MPI)? */
int mpistore__ft_dead(const mpistore__ft_t *f, int rank);
/* A write that has waited MS_FT_STUCK_S or more for a slot lock while some
 * rank is known dead fails with EPROCFAILED: the lock word names no
 * holder, a live holder holds a lock for microseconds, and a dead one for
 * ever.  what 'name' (home rank home) is the write's key. */
#define MS_FT_STUCK_S 1.0
int mpistore__ft_stuck(const mpistore__ft_t *f, mpistore__err_t *err, const char *what,
                       const char *name, int home, double waited);
/* The elastic helpers wait for every rank: a death of any fails them. */
static inline void mpistore__ft_every_begin(mpistore__ft_t *f)
{
    f->every++;
}
static inline void mpistore__ft_every_end(mpistore__ft_t *f)
{
    f->every--;
}
/* Is an MPI return code ULFM's "a process failed" (or "revoked")? */
int mpistore__ft_mpi_failed(int mpirc);
/* "2, 5" (at most n bytes, "..." when cut). */
void mpistore__ft_names(const mpistore__ft_t *f, char *buf, size_t n);
void mpistore__ft_free(mpistore__ft_t *f);

#endif /* MPISTORE_FT_H */
