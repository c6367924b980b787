/* Open MPI's idle yield, off while a thread works inside the store: see
 * mpiyield.h and docs/design.md, "More ranks than cores". */
#define _GNU_SOURCE /* dladdr, RTLD_NOLOAD */
#include "mpiyield.h"

#include <dlfcn.h>
#include <mpi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef bool (*set_yield_fn)(bool);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static set_yield_fn set_yield; /* opal_progress_set_yield_when_idle, or NULL */
static int active;             /* the yield was on at init and we may switch it */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned depth; /* holds not yet released, every thread (under mu) */
static bool saved;     /* the MPI's setting before the first hold (under mu) */

/* Open MPI's libmpi and what it links (libopen-pal) export the switch; look
 * it up through the library that holds MPI_Init, because a Python extension
 * loads us and MPI with RTLD_LOCAL, out of the global scope. */
static void find(void)
{
    const char *keep = getenv("MPISTORE_MPI_YIELD");
    if (keep && !strcmp(keep, "keep"))
        return;
    int (*init)(int *, char ***) = MPI_Init;
    void *addr;
    memcpy(&addr, &init, sizeof addr); /* function to object pointer */
    Dl_info info;
    if (!dladdr(addr, &info) || !info.dli_fname)
        return;
    void *lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!lib)
        return;
    void *sym = dlsym(lib, "opal_progress_set_yield_when_idle");
    dlclose(lib); /* RTLD_NOLOAD took a reference; MPI stays loaded */
    if (!sym)
        return;
    memcpy(&set_yield, &sym, sizeof set_yield); /* object to function pointer */
    bool was = set_yield(false);
    set_yield(was);
    active = was;
}

void mpistore__mpiyield_init(void)
{
    pthread_once(&once, find);
}

void mpistore__mpiyield_hold(void)
{
    if (!active)
        return;
    pthread_mutex_lock(&mu);
    if (depth++ == 0)
        saved = set_yield(false);
    pthread_mutex_unlock(&mu);
}

void mpistore__mpiyield_release(void)
{
    if (!active)
        return;
    pthread_mutex_lock(&mu);
    if (depth && --depth == 0)
        set_yield(saved);
    pthread_mutex_unlock(&mu);
}
