/* Errors, the bottom layer (errors.c): per-handle messages, the calling
 * thread's handle-less message, the one formatter of MPI error codes, the
 * start of a public call (MS_ENTER).  errors.c calls nothing else of the
 * library; core.h gives it the handle's message buffer. */
#ifndef MPISTORE_ERRORS_H
#define MPISTORE_ERRORS_H

#include "core.h"

#include <stdarg.h>

int ms_err(mpistore_t *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int ms_mpierr(mpistore_t *s, int mpirc, const char *call, int target);
/* The calling thread's handle-less message: its last failed open/close or
 * call with a NULL handle (mpistore_errmsg(NULL)).  mpistore_open clears it
 * (ms_orphan_clear). */
const char *ms_orphan_errmsg(void);
void ms_orphan_clear(void);
/* Write the handle-less message; return -code. */
int ms_orphan_err(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int ms_orphan_verr(int code, const char *fmt, va_list ap);
/* The one formatter of MPI error codes: MPI_Error_string's text, or
 * "MPI error <code>" if even that fails.  Returns text. */
const char *ms_mpi_text(int mpirc, char text[MPI_MAX_ERROR_STRING]);
/* A public call got a NULL handle: say so in the thread's handle-less message
 * (mpistore_errmsg(NULL)) and return -MPISTORE_EINVAL. */
int ms_null_handle(const char *fn);

/* Start of a public call: a NULL handle is EINVAL, else enter the core. */
#define MS_ENTER(s)                                                                                \
    do {                                                                                           \
        if (!(s))                                                                                  \
            return ms_null_handle(__func__);                                                       \
        ms_enter((s)->core);                                                                       \
    } while (0)

#endif /* MPISTORE_ERRORS_H */
