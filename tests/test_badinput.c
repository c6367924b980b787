/* Bad input, end to end: every public function of mpistore.h and
 * mpistore_elastic.h with each kind of bad argument, from one table.
 *
 * A row names the function, the kind of bad argument, the handle whose
 * message is checked (NONE: mpistore_errmsg(NULL)), the expected code, a
 * substring the message must contain, and the call itself.  For every row the
 * test checks:
 *   - the return code;
 *   - the message is rewritten by this call (a marker message is planted
 *     first), is non-empty and contains the substring;
 *   - every output parameter is untouched (all outputs start as sentinels);
 *   - the store is unchanged: the snapshot keys hold their values, num_keys
 *     is the same, and the keys a wrongly accepted call would create are
 *     absent.
 * Rows expecting MPISTORE_OK (zero counts) check their own outputs inside the
 * call and return -999 if they are wrong.
 *
 * To add a row: one BAD(...) line in BAD_ROWS below (function, kind, handle,
 * code, message substring, call expression using S, V, W and the globals). */
#include "mpitest.h"

#include <mpistore_elastic.h>

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY 32
#define MAX_VALUE 19 /* INT64_MAX fits, INT64_MIN's 20 bytes do not */
#define LIMIT_KEY "max_key_len is 32"
#define LIMIT_VALUE "max_value_len is 19"
#define NULL_HANDLE "the handle is NULL"

/* the handles: the store, a view "v" of it and a view "w" of the view */
static mpistore_t *S, *V, *W;
enum who { ON_S, ON_V, ON_W, NONE };

static char KEY_LONG[MAX_KEY + 2];    /* MAX_KEY + 1 bytes */
static char VKEY_LONG[MAX_KEY];       /* fits alone, not behind "v/" */
static char PREFIX_LONG[MAX_KEY + 1]; /* makes every key too long */
static unsigned char VAL_LONG[MAX_VALUE + 1];

/* output parameters, reset to sentinels before every row */
#define SENT_PTR ((void *)&S)
#define SENT_LEN ((size_t)0x5a5a)
#define SENT_I64 ((int64_t)0x5a5a5a)
static void *o_val;
static size_t o_len;
static int64_t o_i64;
static bool o_bool;
static int o_int;
static double o_dbl;
static char *o_str;
static char **o_keys;
static mpistore_t *o_h;
static int *o_ints;
static void *o_vals[2];
static size_t o_lens[2];
static mpistore_stats_t o_stats;
static mpistore_options_t o_opts; /* options of the open rows */

static void reset_outputs(void)
{
    o_val = SENT_PTR;
    o_len = SENT_LEN;
    o_i64 = SENT_I64;
    o_bool = false;
    o_int = -77;
    o_dbl = -77.0;
    o_str = SENT_PTR;
    o_keys = SENT_PTR;
    o_h = SENT_PTR;
    o_ints = SENT_PTR;
    o_vals[0] = o_vals[1] = SENT_PTR;
    o_lens[0] = o_lens[1] = SENT_LEN;
    memset(&o_stats, 0x5a, sizeof o_stats);
}

static int outputs_untouched(void)
{
    mpistore_stats_t st;
    memset(&st, 0x5a, sizeof st);
    return o_val == SENT_PTR && o_len == SENT_LEN && o_i64 == SENT_I64 && !o_bool && o_int == -77 &&
           o_dbl == -77.0 && o_str == SENT_PTR && o_keys == SENT_PTR && o_h == SENT_PTR && o_ints == SENT_PTR && o_vals[0] == SENT_PTR &&
           o_vals[1] == SENT_PTR && o_lens[0] == SENT_LEN && o_lens[1] == SENT_LEN &&
           memcmp(&st, &o_stats, sizeof st) == 0;
}

/* open rows: options with one field broken */
static const mpistore_options_t *opts_with(int field)
{
    mpistore_options_init(&o_opts);
    switch (field) {
    case 0:
        o_opts.version = 99;
        break;
    case 1:
        o_opts.timeout_s = NAN;
        break;
    case 2:
        o_opts.timeout_s = -1.0;
        break;
    case 3:
        o_opts.timeout_s = INFINITY;
        break;
    case 4:
        o_opts.max_key_len = 0;
        break;
    case 5:
        o_opts.max_value_len = 0;
        break;
    case 6:
        o_opts.keys_per_rank = 0;
        break;
    case 7:
        o_opts.bytes_per_rank = 10;
        break;
    case 8:
        o_opts.replicas = 2;
        break;
    case 9:
        o_opts.replicas = -1;
        break;
    }
    return &o_opts;
}

/* arrays for the multi-key calls ("snap/0" exists) */
static const char *const K_NULL[] = {"snap/0", NULL};
static const char *const K_EMPTY[] = {"snap/0", ""};
static const char *const K_LONG[] = {"snap/0", KEY_LONG};
static const char *const K_MISSING[] = {"victim", "victim2"};
static const char *const K_ONE[] = {"snap/0"};
static const void *const V_OK[] = {"a", "b"};
static const void *const V_NULL[] = {"a", NULL};
static const void *const V_LONG[] = {"a", VAL_LONG};
static const size_t L_OK[] = {1, 1};
static const size_t L_NULL[] = {1, 3};
static const size_t L_LONG[] = {1, MAX_VALUE + 1};

/* an OK row: the call, then its own check of the outputs */
static int o_rc;
#define OKIF(call, post) (o_rc = (call), o_rc != 0 ? o_rc : (post) ? 0 : -999)

/* clang-format off */
#define BAD_ROWS(BAD)                                                                              \
/*  function       kind              handle code      message substring     call */                \
BAD(open,          null_out,         NONE, EINVAL,    "out is NULL",        mpistore_open(NULL, MPI_COMM_SELF, NULL)) \
BAD(open,          comm_null,        NONE, EINVAL,    "MPI_COMM_NULL",      mpistore_open(&o_h, MPI_COMM_NULL, NULL)) \
BAD(open,          opt_version,      NONE, EINVAL,    "version 99",         mpistore_open(&o_h, MPI_COMM_SELF, opts_with(0))) \
BAD(open,          opt_timeout_nan,  NONE, EINVAL,    "timeout_s nan",      mpistore_open(&o_h, MPI_COMM_SELF, opts_with(1))) \
BAD(open,          opt_timeout_neg,  NONE, EINVAL,    "timeout_s -1",       mpistore_open(&o_h, MPI_COMM_SELF, opts_with(2))) \
BAD(open,          opt_timeout_inf,  NONE, EINVAL,    "timeout_s inf",      mpistore_open(&o_h, MPI_COMM_SELF, opts_with(3))) \
BAD(open,          opt_key_len_0,    NONE, EINVAL,    "max_key_len 0",      mpistore_open(&o_h, MPI_COMM_SELF, opts_with(4))) \
BAD(open,          opt_value_len_0,  NONE, EINVAL,    "max_value_len 0",    mpistore_open(&o_h, MPI_COMM_SELF, opts_with(5))) \
BAD(open,          opt_keys_0,       NONE, EINVAL,    "keys_per_rank 0",    mpistore_open(&o_h, MPI_COMM_SELF, opts_with(6))) \
BAD(open,          opt_bytes_small,  NONE, EINVAL,    "bytes_per_rank 10",  mpistore_open(&o_h, MPI_COMM_SELF, opts_with(7))) \
BAD(open,          opt_replicas_2,   NONE, EINVAL,    "replicas 2 must be", mpistore_open(&o_h, MPI_COMM_SELF, opts_with(8))) \
BAD(open,          opt_replicas_neg, NONE, EINVAL,    "replicas -1 must",   mpistore_open(&o_h, MPI_COMM_SELF, opts_with(9))) \
BAD(close,         store_with_views, ON_S, ESTATE,    "view",               mpistore_close(S)) \
BAD(close,         view_with_views,  ON_V, ESTATE,    "view",               mpistore_close(V)) \
BAD(prefix,        null_store,       NONE, EINVAL,    NULL_HANDLE,          mpistore_prefix(&o_h, NULL, "p")) \
BAD(prefix,        null_out,         ON_S, EINVAL,    "NULL",               mpistore_prefix(NULL, S, "p")) \
BAD(prefix,        null_prefix,      ON_S, EINVAL,    "NULL",               mpistore_prefix(&o_h, S, NULL)) \
BAD(prefix,        empty_prefix,     ON_S, EINVAL,    "empty",              mpistore_prefix(&o_h, S, "")) \
BAD(prefix,        long_prefix,      ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_prefix(&o_h, S, PREFIX_LONG)) \
BAD(prefix,        long_on_view,     ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_prefix(&o_h, V, VKEY_LONG)) \
BAD(set,           null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_set(NULL, "victim", "x", 1)) \
BAD(set,           null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_set(S, NULL, "x", 1)) \
BAD(set,           empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_set(S, "", "x", 1)) \
BAD(set,           long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_set(S, KEY_LONG, "x", 1)) \
BAD(set,           long_key_view,    ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_set(V, VKEY_LONG, "x", 1)) \
BAD(set,           null_value,       ON_S, EINVAL,    "value is NULL",      mpistore_set(S, "victim", NULL, 3)) \
BAD(set,           long_value,       ON_S, ETOOBIG,   LIMIT_VALUE,          mpistore_set(S, "victim", VAL_LONG, MAX_VALUE + 1)) \
BAD(set,           long_value_view,  ON_W, ETOOBIG,   LIMIT_VALUE,          mpistore_set(W, "victim", VAL_LONG, MAX_VALUE + 1)) \
BAD(get,           null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_get(NULL, "snap/0", &o_val, &o_len)) \
BAD(get,           null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_get(S, NULL, &o_val, &o_len)) \
BAD(get,           empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_get(S, "", &o_val, &o_len)) \
BAD(get,           long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_get(S, KEY_LONG, &o_val, &o_len)) \
BAD(get,           long_key_view,    ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_get(V, VKEY_LONG, &o_val, &o_len)) \
BAD(get,           null_value_out,   ON_S, EINVAL,    "value or len is NULL", mpistore_get(S, "snap/0", NULL, &o_len)) \
BAD(get,           null_len_out,     ON_S, EINVAL,    "value or len is NULL", mpistore_get(S, "snap/0", &o_val, NULL)) \
BAD(add,           null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_add(NULL, "victim", 1, &o_i64)) \
BAD(add,           null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_add(S, NULL, 1, &o_i64)) \
BAD(add,           empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_add(S, "", 1, &o_i64)) \
BAD(add,           long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_add(S, KEY_LONG, 1, &o_i64)) \
BAD(add,           not_an_integer,   ON_S, ENOTINT,   "not a decimal int64", mpistore_add(S, "snap/0", 1, &o_i64)) \
BAD(add,           overflow,         ON_S, ENOTINT,   "overflows",          mpistore_add(S, "snap/int", 1, &o_i64)) \
BAD(add,           result_too_long,  ON_S, ETOOBIG,   LIMIT_VALUE,          mpistore_add(S, "snap/neg", INT64_MIN + 9, &o_i64)) \
BAD(compare_set,   null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_compare_set(NULL, "victim", "", 0, "x", 1, &o_val, &o_len)) \
BAD(compare_set,   null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_compare_set(S, NULL, "", 0, "x", 1, &o_val, &o_len)) \
BAD(compare_set,   empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_compare_set(S, "", "", 0, "x", 1, &o_val, &o_len)) \
BAD(compare_set,   long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_compare_set(S, KEY_LONG, "", 0, "x", 1, &o_val, &o_len)) \
BAD(compare_set,   null_expected,    ON_S, EINVAL,    "expected is NULL",   mpistore_compare_set(S, "victim", NULL, 2, "x", 1, &o_val, &o_len)) \
BAD(compare_set,   null_desired,     ON_S, EINVAL,    "desired value is NULL", mpistore_compare_set(S, "victim", "", 0, NULL, 2, &o_val, &o_len)) \
BAD(compare_set,   long_desired,     ON_S, ETOOBIG,   LIMIT_VALUE,          mpistore_compare_set(S, "victim", "", 0, VAL_LONG, MAX_VALUE + 1, &o_val, &o_len)) \
BAD(compare_set,   null_current_out, ON_S, EINVAL,    "current",            mpistore_compare_set(S, "victim", "", 0, "x", 1, NULL, &o_len)) \
BAD(compare_set,   null_len_out,     ON_S, EINVAL,    "current_len",        mpistore_compare_set(S, "victim", "", 0, "x", 1, &o_val, NULL)) \
BAD(delete_key,    null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_delete_key(NULL, "snap/0", &o_bool)) \
BAD(delete_key,    null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_delete_key(S, NULL, &o_bool)) \
BAD(delete_key,    empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_delete_key(S, "", &o_bool)) \
BAD(delete_key,    long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_delete_key(S, KEY_LONG, &o_bool)) \
BAD(delete_key,    long_key_view,    ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_delete_key(V, VKEY_LONG, &o_bool)) \
BAD(check,         null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_check(NULL, K_ONE, 1, &o_bool)) \
BAD(check,         null_keys,        ON_S, EINVAL,    "keys is NULL",       mpistore_check(S, NULL, 2, &o_bool)) \
BAD(check,         null_key_in_keys, ON_S, EINVAL,    "key is NULL",        mpistore_check(S, K_NULL, 2, &o_bool)) \
BAD(check,         empty_key_in_keys, ON_S, EINVAL,   "key is empty",       mpistore_check(S, K_EMPTY, 2, &o_bool)) \
BAD(check,         long_key_in_keys, ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_check(S, K_LONG, 2, &o_bool)) \
BAD(check,         null_result_out,  ON_S, EINVAL,    "all_present is NULL", mpistore_check(S, K_ONE, 1, NULL)) \
BAD(check,         zero_count,       ON_S, OK,        NULL,                 OKIF(mpistore_check(S, NULL, 0, &o_bool), o_bool)) \
BAD(wait,          null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_wait(NULL, K_ONE, 1, 1.0)) \
BAD(wait,          null_keys,        ON_S, EINVAL,    "keys is NULL",       mpistore_wait(S, NULL, 2, 1.0)) \
BAD(wait,          null_key_in_keys, ON_S, EINVAL,    "key is NULL",        mpistore_wait(S, K_NULL, 2, 1.0)) \
BAD(wait,          long_key_in_keys, ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_wait(S, K_LONG, 2, 1.0)) \
BAD(wait,          negative_timeout, ON_S, EINVAL,    "timeout -2",         mpistore_wait(S, K_MISSING, 2, -2.0)) \
BAD(wait,          nan_timeout,      ON_S, EINVAL,    "timeout nan",        mpistore_wait(S, K_MISSING, 2, NAN)) \
BAD(wait,          inf_timeout,      ON_S, EINVAL,    "timeout inf",        mpistore_wait(S, K_MISSING, 2, INFINITY)) \
BAD(wait,          minus_inf_timeout, ON_S, EINVAL,   "timeout -inf",       mpistore_wait(S, K_MISSING, 2, -INFINITY)) \
BAD(wait,          zero_count,       ON_S, OK,        NULL,                 mpistore_wait(S, NULL, 0, 0.0)) \
BAD(num_keys,      null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_num_keys(NULL, &o_i64)) \
BAD(num_keys,      null_count_out,   ON_S, EINVAL,    "count is NULL",      mpistore_num_keys(S, NULL)) \
BAD(multi_get,     null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_multi_get(NULL, K_ONE, 1, o_vals, o_lens)) \
BAD(multi_get,     null_keys,        ON_S, EINVAL,    "keys is NULL",       mpistore_multi_get(S, NULL, 2, o_vals, o_lens)) \
BAD(multi_get,     null_key_in_keys, ON_S, EINVAL,    "key is NULL",        mpistore_multi_get(S, K_NULL, 2, o_vals, o_lens)) \
BAD(multi_get,     empty_key_in_keys, ON_S, EINVAL,   "key is empty",       mpistore_multi_get(S, K_EMPTY, 2, o_vals, o_lens)) \
BAD(multi_get,     long_key_in_keys, ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_multi_get(S, K_LONG, 2, o_vals, o_lens)) \
BAD(multi_get,     null_values_out,  ON_S, EINVAL,    "values or lens is NULL", mpistore_multi_get(S, K_ONE, 1, NULL, o_lens)) \
BAD(multi_get,     null_lens_out,    ON_S, EINVAL,    "values or lens is NULL", mpistore_multi_get(S, K_ONE, 1, o_vals, NULL)) \
BAD(multi_get,     zero_count,       ON_S, OK,        NULL,                 mpistore_multi_get(S, NULL, 0, NULL, NULL)) \
BAD(multi_set,     null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_multi_set(NULL, K_MISSING, V_OK, L_OK, 2)) \
BAD(multi_set,     null_keys,        ON_S, EINVAL,    "keys is NULL",       mpistore_multi_set(S, NULL, V_OK, L_OK, 2)) \
BAD(multi_set,     null_key_in_keys, ON_S, EINVAL,    "key is NULL",        mpistore_multi_set(S, K_NULL, V_OK, L_OK, 2)) \
BAD(multi_set,     long_key_in_keys, ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_multi_set(S, K_LONG, V_OK, L_OK, 2)) \
BAD(multi_set,     null_values,      ON_S, EINVAL,    "values or lens is NULL", mpistore_multi_set(S, K_MISSING, NULL, L_OK, 2)) \
BAD(multi_set,     null_lens,        ON_S, EINVAL,    "values or lens is NULL", mpistore_multi_set(S, K_MISSING, V_OK, NULL, 2)) \
BAD(multi_set,     null_value_in_values, ON_S, EINVAL, "value 1 is NULL",   mpistore_multi_set(S, K_MISSING, V_NULL, L_NULL, 2)) \
BAD(multi_set,     long_value_in_values, ON_S, ETOOBIG, LIMIT_VALUE,        mpistore_multi_set(S, K_MISSING, V_LONG, L_LONG, 2)) \
BAD(multi_set,     zero_count,       ON_S, OK,        NULL,                 mpistore_multi_set(S, NULL, NULL, NULL, 0)) \
BAD(append,        null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_append(NULL, "victim", "x", 1)) \
BAD(append,        null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_append(S, NULL, "x", 1)) \
BAD(append,        empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_append(S, "", "x", 1)) \
BAD(append,        long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_append(S, KEY_LONG, "x", 1)) \
BAD(append,        null_value,       ON_S, EINVAL,    "value is NULL",      mpistore_append(S, "victim", NULL, 3)) \
BAD(append,        long_value,       ON_S, ETOOBIG,   LIMIT_VALUE,          mpistore_append(S, "victim", VAL_LONG, MAX_VALUE + 1)) \
BAD(append,        result_too_long,  ON_S, ETOOBIG,   "exceeds max_value_len 19", mpistore_append(S, "snap/int", "7", 1)) \
BAD(set_timeout,   null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_set_timeout(NULL, 1.0)) \
BAD(set_timeout,   negative,         ON_S, EINVAL,    "-1 s must be finite and >= 0", mpistore_set_timeout(S, -1.0)) \
BAD(set_timeout,   nan,              ON_V, EINVAL,    "nan s must be finite", mpistore_set_timeout(V, NAN)) \
BAD(set_timeout,   inf,              ON_S, EINVAL,    "inf s must be finite", mpistore_set_timeout(S, INFINITY)) \
BAD(set_timeout,   minus_inf,        ON_S, EINVAL,    "-inf s must be finite", mpistore_set_timeout(S, -INFINITY)) \
BAD(stats,         null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_stats(NULL, &o_stats, false)) \
BAD(stats,         null_out,         ON_S, EINVAL,    "out is NULL",        mpistore_stats(S, NULL, true)) \
BAD(key_rank,      null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_key_rank(NULL, "snap/0", &o_int)) \
BAD(key_rank,      null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_key_rank(S, NULL, &o_int)) \
BAD(key_rank,      empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_key_rank(S, "", &o_int)) \
BAD(key_rank,      long_key,         ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_key_rank(V, VKEY_LONG, &o_int)) \
BAD(key_rank,      null_rank_out,    ON_S, EINVAL,    "rank is NULL",       mpistore_key_rank(S, "snap/0", NULL)) \
BAD(failed_ranks,  null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_failed_ranks(NULL, &o_ints, &o_len)) \
BAD(failed_ranks,  null_ranks_out,   ON_S, EINVAL,    "ranks or count is NULL", mpistore_failed_ranks(S, NULL, &o_len)) \
BAD(failed_ranks,  null_count_out,   ON_V, EINVAL,    "ranks or count is NULL", mpistore_failed_ranks(V, &o_ints, NULL)) \
BAD(shrink,        null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_shrink(&o_h, NULL, &o_len)) \
BAD(shrink,        null_out,         ON_S, EINVAL,    "out is NULL",        mpistore_shrink(NULL, S, &o_len)) \
BAD(shrink,        on_a_view,        ON_V, EINVAL,    "prefix view or clone", mpistore_shrink(&o_h, V, &o_len)) \
BAD(shrink,        nothing_failed,   ON_S, ESTATE,    "shrink: ",           mpistore_shrink(&o_h, S, &o_len)) \
BAD(rank,          null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_rank(NULL, &o_int, &o_int)) \
BAD(swap_timeout,  null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_swap_timeout(NULL, 1.0, &o_dbl)) \
BAD(swap_timeout,  negative,         ON_S, EINVAL,    "must be finite",     mpistore_swap_timeout(S, -3.0, &o_dbl)) \
BAD(swap_timeout,  nan,              ON_S, EINVAL,    "must be finite",     mpistore_swap_timeout(S, NAN, &o_dbl)) \
BAD(swap_timeout,  inf,              ON_V, EINVAL,    "must be finite",     mpistore_swap_timeout(V, INFINITY, &o_dbl)) \
BAD(barrier_nonblocking, null_handle, NONE, EINVAL,   NULL_HANDLE,          mpistore_barrier_nonblocking(NULL, 1, "bp", &o_str)) \
BAD(barrier_nonblocking, world_size_0, ON_S, EINVAL,  "world_size 0 < 1",   mpistore_barrier_nonblocking(S, 0, "bp", &o_str)) \
BAD(barrier_nonblocking, world_size_negative, ON_S, EINVAL, "world_size -4 < 1", mpistore_barrier_nonblocking(S, -4, "bp", &o_str)) \
BAD(barrier_nonblocking, null_prefix, ON_S, EINVAL,   "key prefix is NULL", mpistore_barrier_nonblocking(S, 1, NULL, &o_str)) \
BAD(barrier_nonblocking, empty_prefix, ON_S, EINVAL,  "key prefix is empty", mpistore_barrier_nonblocking(S, 1, "", &o_str)) \
BAD(barrier_nonblocking, long_prefix, ON_V, EKEYTOOLONG, LIMIT_KEY,         mpistore_barrier_nonblocking(V, 1, VKEY_LONG, &o_str)) \
BAD(barrier_nonblocking, null_key_out, ON_S, EINVAL,  "last_member_key is NULL", mpistore_barrier_nonblocking(S, 1, "bp", NULL)) \
BAD(barrier,       null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_barrier(NULL, 0, 1, "bp", 1.0)) \
BAD(barrier,       world_size_0,     ON_S, EINVAL,    "world_size 0 < 1",   mpistore_barrier(S, 0, 0, "bp", 1.0)) \
BAD(barrier,       rank_too_big,     ON_S, EINVAL,    "rank 3 outside [0, world_size=3)", mpistore_barrier(S, 3, 3, "bp", 1.0)) \
BAD(barrier,       null_prefix,      ON_S, EINVAL,    "key prefix is NULL", mpistore_barrier(S, 0, 1, NULL, 1.0)) \
BAD(barrier,       empty_prefix,     ON_S, EINVAL,    "key prefix is empty", mpistore_barrier(S, 0, 1, "", 1.0)) \
BAD(barrier,       long_prefix,      ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_barrier(S, 0, 1, PREFIX_LONG, 1.0)) \
BAD(barrier,       negative_timeout, ON_S, EINVAL,    "timeout -1 s",       mpistore_barrier(S, 0, 1, "bp", -1.0)) \
BAD(barrier,       nan_timeout,      ON_S, EINVAL,    "timeout nan s",      mpistore_barrier(S, 0, 1, "bp", NAN)) \
BAD(barrier,       inf_timeout,      ON_W, EINVAL,    "timeout inf s",      mpistore_barrier(W, 0, 1, "bp", INFINITY)) \
BAD(store_barrier, null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_store_barrier(NULL, "bp", 1, 1.0)) \
BAD(store_barrier, null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_store_barrier(S, NULL, 1, 1.0)) \
BAD(store_barrier, empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_store_barrier(S, "", 1, 1.0)) \
BAD(store_barrier, long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_store_barrier(S, KEY_LONG, 1, 1.0)) \
BAD(store_barrier, world_size_0,     ON_S, EINVAL,    "world_size 0 < 1",   mpistore_store_barrier(S, "bp", 0, 1.0)) \
BAD(store_barrier, negative_timeout, ON_S, EINVAL,    "timeout -3 s",       mpistore_store_barrier(S, "bp", 1, -3.0)) \
BAD(store_barrier, nan_timeout,      ON_W, EINVAL,    "timeout nan s",      mpistore_store_barrier(W, "bp", 1, NAN)) \
BAD(store_barrier, not_an_integer,   ON_S, ENOTINT,   "not a decimal int64", mpistore_store_barrier(S, "snap/0", 1, 1.0)) \
BAD(get_all,       null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_get_all(NULL, 0, "bp", 1, o_vals, o_lens)) \
BAD(queue_push,    null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_queue_push(NULL, "victim", "x", 1)) \
BAD(queue_push,    null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_queue_push(S, NULL, "x", 1)) \
BAD(queue_push,    empty_key,        ON_S, EINVAL,    "key is empty",       mpistore_queue_push(S, "", "x", 1)) \
BAD(queue_push,    long_key,         ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_queue_push(S, KEY_LONG, "x", 1)) \
BAD(queue_push,    long_queue_key,   ON_S, EKEYTOOLONG, "queue keys may have at most max_key_len - 2 = 30", mpistore_queue_push(S, VKEY_LONG, "x", 1)) \
BAD(queue_push,    null_value,       ON_S, EINVAL,    "value is NULL",      mpistore_queue_push(S, "victim", NULL, 3)) \
BAD(queue_push,    long_value,       ON_S, ETOOBIG,   "max_value_len - 4 = 15", mpistore_queue_push(S, "victim", VAL_LONG, 16)) \
BAD(queue_pop,     null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_queue_pop(NULL, "victim", false, &o_val, &o_len)) \
BAD(queue_pop,     null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_queue_pop(S, NULL, false, &o_val, &o_len)) \
BAD(queue_pop,     long_key,         ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_queue_pop(V, VKEY_LONG, false, &o_val, &o_len)) \
BAD(queue_pop,     null_value_out,   ON_S, EINVAL,    "value or len is NULL", mpistore_queue_pop(S, "victim", false, NULL, &o_len)) \
BAD(queue_pop,     null_len_out,     ON_S, EINVAL,    "value or len is NULL", mpistore_queue_pop(S, "victim", false, &o_val, NULL)) \
BAD(queue_pop,     empty_queue,      ON_S, EEMPTY,    "is empty",           mpistore_queue_pop(S, "victim", false, &o_val, &o_len)) \
BAD(queue_len,     null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_queue_len(NULL, "victim", &o_i64)) \
BAD(queue_len,     null_key,         ON_S, EINVAL,    "key is NULL",        mpistore_queue_len(S, NULL, &o_i64)) \
BAD(queue_len,     null_out,         ON_S, EINVAL,    "len is NULL",        mpistore_queue_len(S, "victim", NULL)) \
BAD(list_keys,     null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_list_keys(NULL, &o_keys, &o_len)) \
BAD(list_keys,     null_keys_out,    ON_S, EINVAL,    "keys or nkeys is NULL", mpistore_list_keys(S, NULL, &o_len)) \
BAD(list_keys,     null_n_out,       ON_V, EINVAL,    "keys or nkeys is NULL", mpistore_list_keys(V, &o_keys, NULL)) \
BAD(clone,         null_store,       NONE, EINVAL,    NULL_HANDLE,          mpistore_clone(&o_h, NULL)) \
BAD(clone,         null_out,         ON_W, EINVAL,    "out is NULL",        mpistore_clone(NULL, W)) \
BAD(get_all,       negative_rank,    ON_S, EINVAL,    "rank -1 outside",    mpistore_get_all(S, -1, "bp", 1, o_vals, o_lens)) \
BAD(get_all,       rank_too_big,     ON_S, EINVAL,    "rank 2 outside",     mpistore_get_all(S, 2, "bp", 2, o_vals, o_lens)) \
BAD(get_all,       world_size_0,     ON_S, EINVAL,    "world_size 0 < 1",   mpistore_get_all(S, 0, "bp", 0, o_vals, o_lens)) \
BAD(get_all,       null_prefix,      ON_S, EINVAL,    "key prefix is NULL", mpistore_get_all(S, 0, NULL, 1, o_vals, o_lens)) \
BAD(get_all,       empty_prefix,     ON_S, EINVAL,    "key prefix is empty", mpistore_get_all(S, 0, "", 1, o_vals, o_lens)) \
BAD(get_all,       long_prefix,      ON_S, EKEYTOOLONG, LIMIT_KEY,          mpistore_get_all(S, 0, PREFIX_LONG, 1, o_vals, o_lens)) \
BAD(get_all,       null_values_out,  ON_S, EINVAL,    "values or lens is NULL", mpistore_get_all(S, 0, "bp", 1, NULL, o_lens)) \
BAD(get_all,       null_lens_out,    ON_S, EINVAL,    "values or lens is NULL", mpistore_get_all(S, 0, "bp", 1, o_vals, NULL)) \
BAD(synchronize,   null_handle,      NONE, EINVAL,    NULL_HANDLE,          mpistore_synchronize(NULL, "d", 1, 0, 1, "bp", 1.0, o_vals, o_lens)) \
BAD(synchronize,   negative_rank,    ON_S, EINVAL,    "rank -1 outside",    mpistore_synchronize(S, "d", 1, -1, 1, "bp", 1.0, o_vals, o_lens)) \
BAD(synchronize,   world_size_0,     ON_S, EINVAL,    "world_size 0 < 1",   mpistore_synchronize(S, "d", 1, 0, 0, "bp", 1.0, o_vals, o_lens)) \
BAD(synchronize,   null_prefix,      ON_S, EINVAL,    "key prefix is NULL", mpistore_synchronize(S, "d", 1, 0, 1, NULL, 1.0, o_vals, o_lens)) \
BAD(synchronize,   empty_prefix,     ON_S, EINVAL,    "key prefix is empty", mpistore_synchronize(S, "d", 1, 0, 1, "", 1.0, o_vals, o_lens)) \
BAD(synchronize,   long_prefix,      ON_V, EKEYTOOLONG, LIMIT_KEY,          mpistore_synchronize(V, "d", 1, 0, 1, VKEY_LONG, 1.0, o_vals, o_lens)) \
BAD(synchronize,   null_values_out,  ON_S, EINVAL,    "values or lens is NULL", mpistore_synchronize(S, "d", 1, 0, 1, "bp", 1.0, NULL, o_lens)) \
BAD(synchronize,   null_lens_out,    ON_S, EINVAL,    "values or lens is NULL", mpistore_synchronize(S, "d", 1, 0, 1, "bp", 1.0, o_vals, NULL)) \
BAD(synchronize,   null_data,        ON_S, EINVAL,    "data is NULL",       mpistore_synchronize(S, NULL, 2, 0, 1, "bp", 1.0, o_vals, o_lens)) \
BAD(synchronize,   long_data,        ON_S, ETOOBIG,   LIMIT_VALUE,          mpistore_synchronize(S, VAL_LONG, MAX_VALUE + 1, 0, 1, "bp", 1.0, o_vals, o_lens)) \
BAD(synchronize,   nan_timeout,      ON_S, EINVAL,    "timeout nan s",      mpistore_synchronize(S, "d", 1, 0, 1, "bp", NAN, o_vals, o_lens)) \
BAD(synchronize,   negative_timeout, ON_S, EINVAL,    "timeout -5 s",       mpistore_synchronize(S, "d", 1, 0, 1, "bp", -5.0, o_vals, o_lens))
/* clang-format on */

/* one function per row ("lambda"), then the table */
#define BAD_FN(fn, kind, who, code, msg, call)                                                     \
    static int bad_##fn##_##kind(void)                                                             \
    {                                                                                              \
        return (call);                                                                             \
    }
BAD_ROWS(BAD_FN)

typedef struct bad_row {
    const char *fn, *kind;
    int (*call)(void);
    enum who who;
    int code;        /* MPISTORE_Exxx (positive) or MPISTORE_OK */
    const char *msg; /* NULL for OK rows */
} bad_row_t;

#define BAD_ROW(fn, kind, who, code, msg, call)                                                    \
    {"mpistore_" #fn, #kind, bad_##fn##_##kind, who, MPISTORE_##code, msg},
static const bad_row_t ROWS[] = {BAD_ROWS(BAD_ROW)};

/* ---- the snapshot: keys whose values must survive every row ---- */
typedef struct snap_key {
    const char *key; /* full key, read through S */
    const char *val;
    size_t len;
} snap_key_t;

static const snap_key_t SNAP[] = {
    {"snap/0", "a\0b", 3},                       /* embedded NUL, not an integer */
    {"snap/int", "9223372036854775807", 19},     /* INT64_MAX, exactly max_value_len */
    {"snap/neg", "-9", 2},                       /* add of INT64_MIN + 9 -> 20 bytes */
    {"snap/empty", "", 0},                       /* empty value */
    {"v/k", "through the view", 16},             /* set through V */
    {"v/w/k", "through the view of a view", 19}, /* set through W (cut at 19) */
};
/* keys a wrongly accepted row would create */
static const char *const ABSENT[] = {
    "victim",         "victim2",        "v/victim", "v/w/victim",
    "bp/num_members", "bp/last_member", "bp0",      "bp/finished/num_members"};
static int64_t snap_count;

static void snapshot_check(const char *after)
{
    int64_t n = -1;
    MT_OK(S, mpistore_num_keys(S, &n));
    if (n != snap_count)
        fail_msg("rank %d: after %s: num_keys %lld, was %lld", mt_rank, after, (long long)n,
                 (long long)snap_count);
    for (size_t i = 0; i < sizeof SNAP / sizeof SNAP[0]; i++) {
        void *v = NULL;
        size_t len = 0;
        MT_OK(S, mpistore_get(S, SNAP[i].key, &v, &len));
        if (len != SNAP[i].len || memcmp(v, SNAP[i].val, len) != 0)
            fail_msg("rank %d: after %s: key '%s' changed (%zu bytes)", mt_rank, after, SNAP[i].key,
                     len);
        mpistore_free(v);
    }
    bool any = false;
    for (size_t i = 0; i < sizeof ABSENT / sizeof ABSENT[0]; i++) {
        const char *keys[] = {ABSENT[i]};
        MT_OK(S, mpistore_check(S, keys, 1, &any));
        if (any)
            fail_msg("rank %d: after %s: key '%s' was created", mt_rank, after, ABSENT[i]);
    }
    if (mpistore_timeout(S) != 30.0 || mpistore_timeout(V) != 30.0 || mpistore_timeout(W) != 30.0)
        fail_msg("rank %d: after %s: a timeout changed", mt_rank, after);
}

static int setup(void **state)
{
    (void)state;
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.max_key_len = MAX_KEY;
    o.max_value_len = MAX_VALUE;
    o.keys_per_rank = 64;
    o.bytes_per_rank = 64 * 1024;
    o.timeout_s = 30.0;
    S = mt_open(&o);
    MT_OK(S, mpistore_prefix(&V, S, "v"));
    MT_OK(V, mpistore_prefix(&W, V, "w"));
    memset(KEY_LONG, 'K', MAX_KEY + 1);
    memset(VKEY_LONG, 'k', MAX_KEY - 1); /* 31 bytes + "v/" = 33 */
    memset(PREFIX_LONG, 'P', MAX_KEY);
    memset(VAL_LONG, 'x', sizeof VAL_LONG);
    if (mt_rank == 0) {
        for (size_t i = 0; i < 4; i++)
            MT_OK(S, mpistore_set(S, SNAP[i].key, SNAP[i].val, SNAP[i].len));
        MT_OK(V, mpistore_set(V, "k", SNAP[4].val, SNAP[4].len));
        MT_OK(W, mpistore_set(W, "k", SNAP[5].val, SNAP[5].len));
    }
    mt_barrier();
    MT_OK(S, mpistore_num_keys(S, &snap_count));
    assert_int_equal(snap_count, 6);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mt_barrier(); /* nobody still reads the snapshot */
    MT_OK(W, mpistore_close(W));
    MT_OK(V, mpistore_close(V));
    mt_close(S);
    return 0;
}

static mpistore_t *handle_of(enum who w)
{
    return w == ON_S ? S : w == ON_V ? V : w == ON_W ? W : NULL;
}

/* Plant a marker message (a failure unlike the row's own) so that a row that
 * sets no message of its own is caught; copies the marker into marker[]. */
static void plant_marker(const bad_row_t *r, char *marker, size_t n)
{
    mpistore_t *h = handle_of(r->who), *x = NULL;
    if (h)
        assert_int_equal(mpistore_set_timeout(h, -12345.0), -MPISTORE_EINVAL);
    else if (strcmp(r->kind, "comm_null") == 0)
        assert_int_equal(mpistore_stats(NULL, NULL, false), -MPISTORE_EINVAL);
    else
        assert_int_equal(mpistore_open(&x, MPI_COMM_NULL, NULL), -MPISTORE_EINVAL);
    snprintf(marker, n, "%s", mpistore_errmsg(h));
    assert_true(marker[0]);
}

static void badinput_table(void **state)
{
    (void)state;
    char what[160], marker[600];
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        const bad_row_t *r = &ROWS[i];
        snprintf(what, sizeof what, "%s (%s)", r->fn, r->kind);
        plant_marker(r, marker, sizeof marker);
        reset_outputs();
        int rc = r->call();
        const char *msg = mpistore_errmsg(handle_of(r->who));
        if (rc != -r->code)
            fail_msg("rank %d: %s returned %s, expected %s (message: %s)", mt_rank, what,
                     mpistore_errname(rc), mpistore_errname(r->code), msg);
        if (r->code != MPISTORE_OK) {
            if (!msg[0] || strcmp(msg, marker) == 0)
                fail_msg("rank %d: %s left no message of its own: '%s'", mt_rank, what, msg);
            if (!strstr(msg, r->msg))
                fail_msg("rank %d: %s: message '%s' lacks '%s'", mt_rank, what, msg, r->msg);
            if (strcmp(r->msg, NULL_HANDLE) == 0 && strncmp(msg, r->fn, strlen(r->fn)) != 0)
                fail_msg("rank %d: %s: message '%s' does not name the function", mt_rank, what,
                         msg);
            if (!outputs_untouched())
                fail_msg("rank %d: %s wrote an output parameter on failure", mt_rank, what);
        }
        snapshot_check(what);
    }
    print_message("rank %d: %zu bad-input rows checked\n", mt_rank, sizeof ROWS / sizeof ROWS[0]);
}

/* Functions without a code to return: no crash, documented values. */
static void badinput_no_code(void **state)
{
    (void)state;
    mpistore_options_init(NULL);
    mpistore_free(NULL);
    assert_int_equal(mpistore_close(NULL), MPISTORE_OK);
    assert_true(mpistore_timeout(NULL) == -1.0);
    const int codes[] = {INT_MIN, INT_MIN + 1, -1000, -MPISTORE_ERRNO_COUNT_, MPISTORE_ERRNO_COUNT_,
                         1000,    INT_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_string_equal(mpistore_strerror(codes[i]), "unknown error");
        assert_string_equal(mpistore_errname(codes[i]), "MPISTORE_UNKNOWN");
    }
    assert_string_equal(mpistore_errname(-MPISTORE_EINVAL), "MPISTORE_EINVAL");
    assert_string_equal(mpistore_errname(MPISTORE_ESTATE), "MPISTORE_ESTATE");
    assert_string_equal(mpistore_errname(0), "MPISTORE_OK");
    assert_non_null(mpistore_errmsg(NULL));
    assert_non_null(mpistore_version());
}

/* Closing in the wrong order is refused and leaves every handle usable;
 * closing in the right order then works (a view never outlives its base). */
static void badinput_close_order(void **state)
{
    (void)state;
    mpistore_t *a = NULL, *b = NULL;
    MT_OK(S, mpistore_prefix(&a, S, "order"));
    MT_OK(a, mpistore_prefix(&b, a, "inner"));
    MT_ERR(a, MPISTORE_ESTATE, mpistore_close(a));
    assert_non_null(strstr(mpistore_errmsg(a), "1 prefix view(s)"));
    MT_ERR(S, MPISTORE_ESTATE, mpistore_close(S));
    assert_non_null(strstr(mpistore_errmsg(S), "2 prefix view(s)")); /* V and a */
    bool all = false;
    const char *keys[] = {"k"};
    MT_OK(b, mpistore_check(b, keys, 1, &all)); /* still usable */
    MT_OK(b, mpistore_close(b));
    MT_OK(a, mpistore_close(a));
    snapshot_check("close order");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(badinput_table, setup, teardown),
    cmocka_unit_test(badinput_no_code),
    cmocka_unit_test_setup_teardown(badinput_close_order, setup, teardown),
};

MT_MAIN("badinput", tests)
