/* Shared helpers for the MPI cmocka tests: run a group on every rank, make any
 * rank's failure end the whole job, and small store utilities. */
#ifndef MPISTORE_MPITEST_H
#define MPISTORE_MPITEST_H

#include <mpistore.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

extern int mt_rank, mt_size;

/* MPI_Init, cmocka run of the group on every rank, MPI_Finalize.  With more
 * than one rank a failed assertion aborts the job (CMOCKA_TEST_ABORT=1) so
 * that no rank hangs in a collective; ranks other than 0 keep only stderr. */
int mt_main(int argc, char **argv, const char *name, const struct CMUnitTest *tests, size_t n,
            int thread_level);
#define MT_MAIN(name, tests)                                                                       \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return mt_main(argc, argv, name, tests, sizeof(tests) / sizeof(tests[0]),                  \
                       MPI_THREAD_SERIALIZED);                                                     \
    }
#define MT_MAIN_THREADS(name, tests)                                                               \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        return mt_main(argc, argv, name, tests, sizeof(tests) / sizeof(tests[0]),                  \
                       MPI_THREAD_MULTIPLE);                                                       \
    }
extern int mt_thread_level; /* what MPI provided */

/* The store of the current test: cmocka setup/teardown that open a default
 * store on MPI_COMM_WORLD (collective) and close it. */
extern mpistore_t *mt_store;
int mt_setup_store(void **state);
int mt_teardown_store(void **state);
#define MT_TEST(fn) cmocka_unit_test_setup_teardown(fn, mt_setup_store, mt_teardown_store)

/* A store with default options (fresh per call) and a unique key prefix. */
mpistore_t *mt_open(const mpistore_options_t *opts);
void mt_close(mpistore_t *s);
/* A one-rank store on MPI_COMM_SELF (deterministic key placement) with the
 * given keys_per_rank, bytes_per_rank and max_value_len. */
mpistore_t *mt_open_self(size_t keys, size_t bytes, size_t maxval);
/* The same with growth limited: at most max_keys keys and max_bytes bytes
 * of value memory per rank (0: no limit). */
mpistore_t *mt_open_self_limited(size_t keys, size_t bytes, size_t maxval, size_t max_keys,
                                 size_t max_bytes);
/* "t<counter>/" style unique name, identical on all ranks when called in the
 * same order. */
const char *mt_unique(const char *tag);

/* assert that call returns code, printing the handle's message on failure */
#define MT_OK(s, call)                                                                             \
    do {                                                                                           \
        int mt_rc_ = (call);                                                                       \
        if (mt_rc_ != MPISTORE_OK)                                                                 \
            fail_msg("rank %d: %s -> %s: %s", mt_rank, #call, mpistore_errname(mt_rc_),            \
                     mpistore_errmsg(s));                                                          \
    } while (0)
#define MT_ERR(s, code, call)                                                                      \
    do {                                                                                           \
        int mt_rc_ = (call);                                                                       \
        if (mt_rc_ != -(code))                                                                     \
            fail_msg("rank %d: %s -> %s, expected %s (%s)", mt_rank, #call,                        \
                     mpistore_errname(mt_rc_), mpistore_errname(code), mpistore_errmsg(s));        \
    } while (0)

/* Slow mode: the transport cell sets MPISTORE_TEST_SLOW=1 (TCP, emulated
 * nodes, MPICH).  mt_slow() tells whether it is on; mt_scale(n) is n on fast
 * transports and n / 20 (at least 1) in slow mode, for long loops. */
int mt_slow(void);
long mt_scale(long n);
/* MPISTORE_TEST_EXPECT_STALL=1: the cell's transport needs the target's
 * progress, so a rank outside MPI stalls the reads aimed at it. */
int mt_expect_stall(void);

/* Names whose home rank is `home` (mpistore_key_rank): out = "<tag>/0",
 * "<tag>/1", ... the first for which the key out + suffix is homed on
 * `home` (suffix "" for a key; "/num_members" for an elastic barrier's
 * prefix).  The same on every rank.  mt_queue_on: a queue name whose
 * internal key is homed on `home`. */
void mt_key_on(mpistore_t *s, const char *tag, const char *suffix, int home, char *out, size_t n);
void mt_queue_on(mpistore_t *s, const char *tag, int home, char *out, size_t n);

/* get key and compare with an expected C string */
void mt_expect_str(mpistore_t *s, const char *key, const char *want);
/* Is every rank of the job on one node, and did nobody set MPISTORE_SHM=0?
 * (Then a store's window is shared memory: docs/design.md, "One node".) */
int mt_one_node_path(void);
void mt_barrier(void);

#endif
