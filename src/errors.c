/* Errors, the bottom layer: error codes, their names and texts (one table),
 * error sinks, the calling thread's handle-less ("orphan") message, and the
 * one formatter of MPI error codes.  Calls nothing of the library. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const mpistore__texts[] = {"success",
#define XX(name, text) text,
                                              MPISTORE_ERRNO_MAP(XX)
#undef XX
};

static const char *const mpistore__names[] = {"MPISTORE_OK",
#define XX(name, text) "MPISTORE_" #name,
                                              MPISTORE_ERRNO_MAP(XX)
#undef XX
};

static int mpistore__code_index(int code)
{
    if (code < 0 && code > -MPISTORE_ERRNO_COUNT_) /* not -code: INT_MIN has no negation */
        return -code;
    return code >= 0 && code < MPISTORE_ERRNO_COUNT_ ? code : -1;
}

const char *mpistore_strerror(int code)
{
    int i = mpistore__code_index(code);
    return i < 0 ? "unknown error" : mpistore__texts[i];
}

const char *mpistore_errname(int code)
{
    int i = mpistore__code_index(code);
    return i < 0 ? "MPISTORE_UNKNOWN" : mpistore__names[i];
}

/* Message of the calling thread's last failed open/close or call with a NULL
 * handle (no handle to keep it then). */
static _Thread_local char mpistore__orphan[MS_ERRMSG_LEN];

const char *mpistore__orphan_errmsg(void)
{
    return mpistore__orphan;
}

void mpistore__orphan_clear(void)
{
    mpistore__orphan[0] = 0;
}

int mpistore__orphan_verr(int code, const char *fmt, va_list ap)
{
    vsnprintf(mpistore__orphan, sizeof mpistore__orphan, fmt, ap);
    return -code;
}

int mpistore__orphan_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mpistore__orphan_verr(code, fmt, ap);
    va_end(ap);
    return rc;
}

int mpistore__null_handle(const char *fn)
{
    return mpistore__orphan_err(MPISTORE_EINVAL, "%s: the handle is NULL", fn);
}

int mpistore__err(mpistore__err_t *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -code;
}

int mpistore__err_prefix(mpistore__err_t *e, int rc, const char *fmt, ...)
{
    char what[MS_ERRMSG_LEN], cause[MS_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    memcpy(cause, e->msg, sizeof cause);
    (void)mpistore__err(e, 0, "%s: %s", what, cause);
    return rc;
}

const char *mpistore__mpi_text(int mpirc, char text[MPI_MAX_ERROR_STRING])
{
    int len = 0;
    if (MPI_Error_string(mpirc, text, &len) != MPI_SUCCESS)
        snprintf(text, MPI_MAX_ERROR_STRING, "MPI error %d", mpirc);
    return text;
}

int mpistore__mpierr(mpistore__err_t *e, int mpirc, const char *call, int target)
{
    char text[MPI_MAX_ERROR_STRING];
    mpistore__mpi_text(mpirc, text);
    if (target >= 0)
        return mpistore__err(e, MPISTORE_EMPI, "%s (target rank %d) failed: %s", call, target,
                             text);
    return mpistore__err(e, MPISTORE_EMPI, "%s failed: %s", call, text);
}

int mpistore__shrunk_err(mpistore__err_t *e, const char *fn)
{
    return mpistore__err(e, MPISTORE_ESTATE,
                         "%s: this store was shrunk (mpistore_shrink); use the store that call "
                         "returned, this handle can only be closed",
                         fn);
}
