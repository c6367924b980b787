#include "mpitest.h"
#include "ops.h" /* mt_queue_on: the home rank of a queue's internal key */

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mt_rank = 0, mt_size = 1;
static unsigned mt_counter;

int mt_thread_level = MPI_THREAD_SINGLE;

int mt_main(int argc, char **argv, const char *name, const struct CMUnitTest *tests, size_t n,
            int thread_level)
{
    /* A transport cell can lower the level (Open MPI's osc/pt2pt refuses
     * windows under MPI_THREAD_MULTIPLE). */
    const char *lvl = getenv("MPISTORE_TEST_THREAD_LEVEL");
    if (lvl && strcmp(lvl, "serialized") == 0 && thread_level > MPI_THREAD_SERIALIZED)
        thread_level = MPI_THREAD_SERIALIZED;
    MPI_Init_thread(&argc, &argv, thread_level, &mt_thread_level);
    MPI_Comm_rank(MPI_COMM_WORLD, &mt_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &mt_size);
    if (mt_size > 1)
        setenv("CMOCKA_TEST_ABORT", "1", 1);
    if (mt_rank != 0 && !getenv("MT_ALL_OUTPUT"))
        (void)freopen("/dev/null", "w", stdout);
    int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}

int mt_slow(void)
{
    const char *slow = getenv("MPISTORE_TEST_SLOW");
    return slow && strcmp(slow, "1") == 0;
}

int mt_expect_stall(void)
{
    const char *e = getenv("MPISTORE_TEST_EXPECT_STALL");
    return e && strcmp(e, "1") == 0;
}

long mt_scale(long n)
{
    if (!mt_slow())
        return n;
    return n / 20 > 0 ? n / 20 : 1;
}

mpistore_t *mt_open(const mpistore_options_t *opts)
{
    mpistore_t *s = NULL;
    int rc = mpistore_open(&s, MPI_COMM_WORLD, opts);
    if (rc != MPISTORE_OK)
        fail_msg("rank %d: mpistore_open -> %s: %s", mt_rank, mpistore_errname(rc),
                 mpistore_errmsg(NULL));
    return s;
}

mpistore_t *mt_open_self(size_t keys, size_t bytes, size_t maxval)
{
    return mt_open_self_limited(keys, bytes, maxval, 0, 0);
}

mpistore_t *mt_open_self_limited(size_t keys, size_t bytes, size_t maxval, size_t max_keys,
                                 size_t max_bytes)
{
    mpistore_options_t o;
    mpistore_t *s = NULL;
    mpistore_options_init(&o);
    o.keys_per_rank = keys;
    o.bytes_per_rank = bytes;
    o.max_value_len = maxval;
    o.max_keys_per_rank = max_keys;
    o.max_bytes_per_rank = max_bytes;
    int rc = mpistore_open(&s, MPI_COMM_SELF, &o);
    if (rc != MPISTORE_OK)
        fail_msg("rank %d: open on MPI_COMM_SELF -> %s: %s", mt_rank, mpistore_errname(rc),
                 mpistore_errmsg(NULL));
    return s;
}

mpistore_t *mt_store;

int mt_setup_store(void **state)
{
    (void)state;
    mt_store = mt_open(NULL);
    return mt_store ? 0 : -1;
}

int mt_teardown_store(void **state)
{
    (void)state;
    mt_close(mt_store);
    mt_store = NULL;
    return 0;
}

void mt_close(mpistore_t *s)
{
    int rc = mpistore_close(s);
    if (rc != MPISTORE_OK)
        fail_msg("rank %d: mpistore_close -> %s: %s", mt_rank, mpistore_errname(rc),
                 mpistore_errmsg(NULL));
}

const char *mt_unique(const char *tag)
{
    static char buf[8][96];
    char *b = buf[mt_counter % 8];
    snprintf(b, sizeof buf[0], "%s#%u", tag, mt_counter++);
    return b;
}

int mt_one_node_path(void)
{
    MPI_Comm node;
    int local = 0;
    assert_int_equal(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
        MPI_SUCCESS);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    const char *off = getenv("MPISTORE_SHM");
    return local == mt_size && !(off && strcmp(off, "0") == 0);
}

void mt_expect_str(mpistore_t *s, const char *key, const char *want)
{
    void *v = NULL;
    size_t len = 0;
    MT_OK(s, mpistore_get(s, key, &v, &len));
    if (len != strlen(want) || memcmp(v, want, len) != 0)
        fail_msg("rank %d: key '%s' holds '%.*s', expected '%s'", mt_rank, key, (int)len, (char *)v,
                 want);
    assert_int_equal(((char *)v)[len], 0);
    mpistore_free(v);
}

void mt_key_on(mpistore_t *s, const char *tag, const char *suffix, int home, char *out, size_t n)
{
    char key[512];
    for (unsigned i = 0; i < 1000000; i++) {
        int h = -1;
        snprintf(out, n, "%.200s/%u", tag, i);
        snprintf(key, sizeof key, "%s%.200s", out, suffix);
        MT_OK(s, mpistore_key_rank(s, key, &h));
        if (h == home)
            return;
    }
    fail_msg("rank %d: no name '%s/<i>%s' is homed on rank %d", mt_rank, tag, suffix, home);
}

void mt_queue_on(mpistore_t *s, const char *tag, int home, char *out, size_t n)
{
    char ikey[512]; /* queue.c: the queue name, NUL, 'q' */
    for (unsigned i = 0; i < 1000000; i++) {
        snprintf(out, n, "%.200s/%u", tag, i);
        size_t len = strlen(out);
        memcpy(ikey, out, len);
        ikey[len] = 0;
        ikey[len + 1] = 'q';
        mpistore__key_t k;
        mpistore__key_internal(s->core, ikey, len + 2, &k);
        if (k.rank == home)
            return;
    }
    fail_msg("rank %d: no queue '%s/<i>' is homed on rank %d", mt_rank, tag, home);
}

void mt_barrier(void)
{
    MPI_Barrier(MPI_COMM_WORLD);
}

#ifdef MPISTORE_TEST_NO_DLCLOSE
/* Sanitizer builds: keep MPI's plugins mapped at exit so that LeakSanitizer
 * can name the module of MPI's own leaks and tests/lsan.supp can match them
 * (Open MPI 4.1 has no parameter to stop unloading them). */
int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
#endif
