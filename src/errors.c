/* Error codes, their names and texts (one table), and per-handle messages. */
#include "internal.h"

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

const char *mpistore_errmsg(const mpistore_t *s)
{
    return s ? s->errmsg : ms_orphan_errmsg();
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

int ms_mpierr(mpistore_t *s, int mpirc, const char *call, int target)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpirc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", mpirc);
    if (target >= 0)
        return ms_err(s, MPISTORE_EMPI, "%s (target rank %d) failed: %s", call, target, text);
    return ms_err(s, MPISTORE_EMPI, "%s failed: %s", call, text);
}
