/* Open MPI's idle yield (src/mpiyield.c): the store turns it off while it
 * works and every call, a failed one and a wait that sleeps included, puts
 * back what the MPI had.  The switch is read through Open MPI's own
 * function, as the library finds it; on an MPI without it (MPICH) the tests
 * are skipped. */
#define _GNU_SOURCE
#include "mpitest.h"

#include <mpistore_elastic.h>

#include <dlfcn.h>
#include <mpi.h>
#include <stdbool.h>
#include <string.h>

typedef bool (*set_yield_fn)(bool);
static set_yield_fn set_yield;

static set_yield_fn find_switch(void)
{
    int (*init)(int *, char ***) = MPI_Init;
    void *addr, *sym = NULL;
    memcpy(&addr, &init, sizeof addr);
    Dl_info info;
    if (dladdr(addr, &info) && info.dli_fname) {
        void *lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (lib) {
            sym = dlsym(lib, "opal_progress_set_yield_when_idle");
            dlclose(lib);
        }
    }
    set_yield_fn fn = NULL;
    memcpy(&fn, &sym, sizeof fn);
    return fn;
}

static bool yield_now(void)
{
    bool was = set_yield(false);
    set_yield(was);
    return was;
}

/* Every kind of call: a hit, a write, a counter, a miss that waits and
 * times out (the backoff gives the API mutex up and sleeps), a bad
 * argument, an elastic barrier; after each the MPI's setting is `want`. */
static void calls_keep(mpistore_t *s, bool want)
{
    const char *k = mt_unique("y");
    MT_OK(s, mpistore_set(s, k, "v", 1));
    assert_int_equal(yield_now(), want);
    void *val = NULL;
    size_t n = 0;
    MT_OK(s, mpistore_get(s, k, &val, &n));
    mpistore_free(val);
    assert_int_equal(yield_now(), want);
    int64_t v = 0;
    MT_OK(s, mpistore_add(s, "ycount", 1, &v));
    assert_int_equal(yield_now(), want);
    const char *missing[] = {"y-missing"};
    MT_ERR(s, MPISTORE_ETIMEDOUT, mpistore_wait(s, missing, 1, 0.02));
    assert_int_equal(yield_now(), want);
    MT_ERR(s, MPISTORE_EINVAL, mpistore_set(s, NULL, "v", 1));
    assert_int_equal(yield_now(), want);
    MT_OK(s, mpistore_barrier(s, mt_rank, mt_size, mt_unique("yb"), 30.0));
    assert_int_equal(yield_now(), want);
}

/* The first test of the binary: the setting is on before the first open
 * (as Open MPI sets it when ranks outnumber cores), so the store switches
 * it; then the user turns it off and on again and the store follows. */
static void test_setting_is_put_back(void **state)
{
    (void)state;
    set_yield = find_switch();
    if (!set_yield)
        skip(); /* not Open MPI: nothing to switch */
    set_yield(true);
    mpistore_t *s = mt_open(NULL);
    assert_true(yield_now());
    calls_keep(s, true);
    set_yield(false);
    calls_keep(s, false);
    set_yield(true);
    calls_keep(s, true);
    mt_close(s);
    assert_true(yield_now());
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_setting_is_put_back),
    };
    return mt_main(argc, argv, "mpiyield", tests, sizeof tests / sizeof tests[0],
                   MPI_THREAD_SERIALIZED);
}
