/* Errors, the bottom layer (errors.c): the error codes' names and texts,
 * the error sink every internal layer writes its failures into (mpistore__err_t:
 * the core has one, the public API layer copies it into the calling
 * handle's message, ops.h), the calling thread's handle-less message, and
 * the one formatter of MPI error codes.  errors.c calls nothing else of the
 * library. */
#ifndef MPISTORE_ERRORS_H
#define MPISTORE_ERRORS_H

#include "mpistore.h"

#include <stdarg.h>

#define MS_ERRMSG_LEN 512 /* a message, with its NUL */

/* An error sink: the one-line message of the last failure written to it. */
typedef struct mpistore__err {
    char msg[MS_ERRMSG_LEN];
} mpistore__err_t;

/* Write the message (e may be NULL: nothing written); return -code. */
int mpistore__err(mpistore__err_t *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* "<call> (target rank <target>) failed: <MPI's text>"; -MPISTORE_EMPI. */
int mpistore__mpierr(mpistore__err_t *e, int mpirc, const char *call, int target);
/* Prefix the message with "<what>: " and return rc. */
int mpistore__err_prefix(mpistore__err_t *e, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The calling thread's handle-less message: its last failed open/close or
 * call with a NULL handle (mpistore_errmsg(NULL)).  mpistore_open clears it
 * (mpistore__orphan_clear). */
const char *mpistore__orphan_errmsg(void);
void mpistore__orphan_clear(void);
/* Write the handle-less message; return -code. */
int mpistore__orphan_err(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int mpistore__orphan_verr(int code, const char *fmt, va_list ap);
/* The one formatter of MPI error codes: MPI_Error_string's text, or
 * "MPI error <code>" if even that fails.  Returns text. */
const char *mpistore__mpi_text(int mpirc, char text[MPI_MAX_ERROR_STRING]);
/* A public call got a NULL handle: say so in the thread's handle-less message
 * (mpistore_errmsg(NULL)) and return -MPISTORE_EINVAL. */
int mpistore__null_handle(const char *fn);
/* ESTATE: a handle whose store was shrunk (shrink.c, MS_ENTER in ops.h);
 * only close is left. */
int mpistore__shrunk_err(mpistore__err_t *e, const char *fn);

#endif /* MPISTORE_ERRORS_H */
