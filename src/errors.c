/* Errors, the bottom layer: error codes, their names and texts (one table),
 * per-handle messages, the calling thread's handle-less ("orphan") message,
 * and the one formatter of MPI error codes.  Calls nothing of the library. */
#include "errors.h"
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const ms_texts[] = {"success",
#define XX(name, text) text,
                                       MPISTORE_ERRNO_MAP(XX)
#undef XX
};

static const char *const ms_names[] = {"MPISTORE_OK",
#define XX(name, text) "MPISTORE_" #name,
                                       MPISTORE_ERRNO_MAP(XX)
#undef XX
};

static int ms_code_index(int code)
{
    if (code < 0 && code > -MPISTORE_ERRNO_COUNT_) /* not -code: INT_MIN has no negation */
        return -code;
    return code >= 0 && code < MPISTORE_ERRNO_COUNT_ ? code : -1;
}

const char *mpistore_strerror(int code)
{
    int i = ms_code_index(code);
    return i < 0 ? "unknown error" : ms_texts[i];
}

const char *mpistore_errname(int code)
{
    int i = ms_code_index(code);
    return i < 0 ? "MPISTORE_UNKNOWN" : ms_names[i];
}

/* Message of the calling thread's last failed open/close or call with a NULL
 * handle (no handle to keep it then). */
static _Thread_local char ms_orphan[MS_ERRMSG_LEN];

const char *mpistore_errmsg(const mpistore_t *s)
{
    return s ? s->errmsg : ms_orphan_errmsg();
}

const char *ms_orphan_errmsg(void)
{
    return ms_orphan;
}

void ms_orphan_clear(void)
{
    ms_orphan[0] = 0;
}

int ms_orphan_verr(int code, const char *fmt, va_list ap)
{
    vsnprintf(ms_orphan, sizeof ms_orphan, fmt, ap);
    return -code;
}

int ms_orphan_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ms_orphan_verr(code, fmt, ap);
    va_end(ap);
    return rc;
}

int ms_null_handle(const char *fn)
{
    return ms_orphan_err(MPISTORE_EINVAL, "%s: the handle is NULL", fn);
}

int ms_err(mpistore_t *s, int code, const char *fmt, ...)
{
    if (s) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
        va_end(ap);
    }
    return -code;
}

const char *ms_mpi_text(int mpirc, char text[MPI_MAX_ERROR_STRING])
{
    int len = 0;
    if (MPI_Error_string(mpirc, text, &len) != MPI_SUCCESS)
        snprintf(text, MPI_MAX_ERROR_STRING, "MPI error %d", mpirc);
    return text;
}

int ms_mpierr(mpistore_t *s, int mpirc, const char *call, int target)
{
    char text[MPI_MAX_ERROR_STRING];
    ms_mpi_text(mpirc, text);
    if (target >= 0)
        return ms_err(s, MPISTORE_EMPI, "%s (target rank %d) failed: %s", call, target, text);
    return ms_err(s, MPISTORE_EMPI, "%s failed: %s", call, text);
}
