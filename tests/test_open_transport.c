/* mpistore_open on a transport where Open MPI 4.1 cannot create the window
 * must fail cleanly, on every rank, with a message naming the setting that
 * fixes it.  The cell passes the expected substring in
 * MPISTORE_TEST_EXPECT_OPEN_ERROR (tests/CMakeLists.txt):
 *   two emulated nodes with default settings -> "--mca osc sm,pt2pt"
 *   osc/pt2pt under MPI_THREAD_MULTIPLE      -> "--mca osc ucx" */
#include "mpitest.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static void open_fails_with_the_fix(void **state)
{
    (void)state;
    const char *want = getenv("MPISTORE_TEST_EXPECT_OPEN_ERROR");
    assert_non_null(want);
    mpistore_t *s = (mpistore_t *)0x1;
    int rc = mpistore_open(&s, MPI_COMM_WORLD, NULL);
    if (rc != -MPISTORE_EMPI)
        fail_msg("rank %d: open returned %s (%s), expected EMPI", mt_rank, mpistore_errname(rc),
                 mpistore_errmsg(NULL));
    assert_ptr_equal(s, (mpistore_t *)0x1);
    if (!strstr(mpistore_errmsg(NULL), want))
        fail_msg("rank %d: message lacks '%s': %s", mt_rank, want, mpistore_errmsg(NULL));
    if (mt_rank == 0)
        print_message("open failed as expected: %s\n", mpistore_errmsg(NULL));
    /* MPI still works for the application afterwards */
    int one = 1, sum = 0;
    assert_int_equal(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD), MPI_SUCCESS);
    assert_int_equal(sum, mt_size);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(open_fails_with_the_fix),
};

MT_MAIN_THREADS("open_transport", tests)
