/*
 * mpistore: a c10d-compatible key-value store for MPI jobs, built on MPI-3
 * one-sided RMA windows.  No server process and no socket: every rank of
 * the communicator hosts a slice of the store.  (A progress thread is an
 * option, off by default: see mpistore_options_t.progress_thread.)
 *
 * Conventions
 *  - Every function returning int returns MPISTORE_OK (0) or a negative code
 *    -MPISTORE_Exxx.  mpistore_strerror() names a code; mpistore_errmsg()
 *    gives a one-line description of the handle's last failure (which key,
 *    which rank, how long it waited, MPI's own error string).  A NULL handle
 *    gives -MPISTORE_EINVAL (mpistore_close: OK) and a message in
 *    mpistore_errmsg(NULL).
 *  - Output parameters are written only on success.  A failed call leaves the
 *    store unchanged.
 *  - Every buffer the library returns is malloc'ed, carries one extra NUL byte
 *    after its length (not counted), and is released with mpistore_free().
 *  - Keys are non-empty C strings of at most max_key_len bytes (the full key,
 *    prefix included for views).  Values are arbitrary bytes, possibly empty,
 *    possibly containing NUL.
 *  - Threads: a handle is used by one thread at a time, unless MPI was
 *    initialised with MPI_THREAD_MULTIPLE; then one handle may be shared by
 *    threads (calls are serialised by an internal mutex that blocking calls
 *    release while they back off).  With a shared handle, mpistore_errmsg()
 *    may describe another thread's failure.
 *  - The library never aborts, exits or prints.
 */
#ifndef MPISTORE_H
#define MPISTORE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * MPISTORE_EXTERN marks the public API: the only symbols the shared library
 * exports (it is built with hidden visibility and MPISTORE_BUILDING_SHARED).
 */
#if defined(MPISTORE_BUILDING_SHARED) && defined(__GNUC__)
#define MPISTORE_EXTERN __attribute__((visibility("default")))
#else
#define MPISTORE_EXTERN /* nothing */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque handle: a store (from mpistore_open) or a prefix view. */
typedef struct mpistore mpistore_t;

/*
 * Error codes, generated from one table so that the enum, the names and the
 * texts never drift apart.  Functions return them negated.
 */
#define MPISTORE_ERRNO_MAP(XX)                                                                     \
    XX(EINVAL, "invalid argument (NULL pointer, empty key, bad count, timeout or option)")         \
    XX(ETIMEDOUT, "timeout: a blocking call reached its deadline")                                 \
    XX(EKEYTOOLONG, "key longer than the store's max_key_len")                                     \
    XX(ETOOBIG, "value longer than the store's max_value_len")                                     \
    XX(ENOSPC, "the store is full (a max_*_per_rank limit, or its index cannot grow)")             \
    XX(ENOTINT, "value is not a decimal int64, or the add would overflow")                         \
    XX(ENOMEM, "local memory allocation failed")                                                   \
    XX(EMPI, "an MPI call failed")                                                                 \
    XX(ESTATE, "invalid state (MPI not initialised, open views at close, ...)")                    \
    XX(EEMPTY, "the queue is empty (non-blocking queue_pop)")                                      \
    XX(EPROCFAILED, "a rank the call needs has died (MPI fault tolerance, ULFM)")

enum {
    MPISTORE_OK = 0,
#define MPISTORE_XX_ENUM(name, text) MPISTORE_##name,
    MPISTORE_ERRNO_MAP(MPISTORE_XX_ENUM)
#undef MPISTORE_XX_ENUM
        MPISTORE_ERRNO_COUNT_ /* not a code */
};

/** "Use the store's timeout" for mpistore_wait(). */
#define MPISTORE_TIMEOUT_DEFAULT (-1.0)

/** The version of mpistore_options_t this header describes (version 1 had no
 *  progress_thread field, version 2 no max_keys_per_rank / max_bytes_per_rank,
 *  version 3 no replicas; all are still accepted, the missing fields taking
 *  their defaults). */
#define MPISTORE_OPTIONS_VERSION 4u

/*
 * Store options.  Initialise with mpistore_options_init(), then change fields.
 * Every rank must pass identical options to mpistore_open().
 *
 * Defaults: timeout_s 300, max_key_len 1024, max_value_len 1 MiB,
 * keys_per_rank 4096, bytes_per_rank 7 MiB (the index adds about 260 KiB, so
 * a default store uses less than 8 MiB of window memory per rank),
 * progress_thread 0, max_keys_per_rank 0, max_bytes_per_rank 0, replicas 0.
 *
 * keys_per_rank and bytes_per_rank are the INITIAL sizes, allocated at open
 * (the fast path).  The store grows beyond them on demand, without any
 * collective call: a rank whose index is full around a key adds an index
 * level (up to 7, each 4x the last), a rank whose value memory is full
 * adds a segment (up to 2^24 allocation units in all); keys and values
 * there are slower on Open MPI's default one-node transport (README,
 * "Limits and defaults").  max_keys_per_rank and max_bytes_per_rank (0: no
 * limit) cap the growth: a write beyond them fails with ENOSPC.
 * Environment variables override these four fields: MPISTORE_KEYS_PER_RANK,
 * MPISTORE_BYTES_PER_RANK, MPISTORE_MAX_KEYS_PER_RANK,
 * MPISTORE_MAX_BYTES_PER_RANK (decimal, optional k/m/g suffix; a malformed
 * value makes open fail with EINVAL).
 *
 * A write that fails because the store is full (ENOSPC: a limit, or every
 * index level full; ENOMEM: no memory to grow) tells every rank: from then
 * on, until a delete_key succeeds, every wait for an absent key (get, wait,
 * multi_get, a blocking queue_pop, the elastic helpers) returns that code at
 * once with "the store is full: rank r failed a write ..." instead of
 * waiting out its timeout.
 *
 * progress_thread: start a thread that drives MPI progress every 50 us
 * (environment MPISTORE_PROGRESS_PERIOD_US, 1..1000000) while the store is
 * open, so that ranks reading or writing keys hosted by this rank are not
 * stalled while this rank computes outside MPI.  Needed only on transports
 * without hardware one-sided support: Open MPI osc/pt2pt and osc/ucx over
 * TCP, MPICH without MPIR_CVAR_ASYNC_PROGRESS=1 (see README, "Supported MPI
 * implementations").  Requires MPI_THREAD_MULTIPLE (open fails with EINVAL
 * otherwise).  The environment variable MPISTORE_PROGRESS_THREAD=1 or =0
 * overrides this field.  Ranks may differ in this field.
 *
 * replicas (version 4): 0, or 1: every key's index entry and value block
 * also live on a second rank (the next one, mod the store's size), so that
 * after the death of any one rank mpistore_shrink() loses no key (README,
 * "When a rank dies").  Reads cost the same; a write pays one or two more
 * round trips; the window is twice as large; the store does not grow
 * (keys_per_rank and bytes_per_rank are hard limits: ENOSPC beyond them).
 * Accepted with or without MPI fault tolerance (ULFM), useful only with it.
 * Any other value makes open fail with EINVAL.  The environment variable
 * MPISTORE_REPLICAS=0 or =1 overrides this field.
 */
typedef struct mpistore_options {
    unsigned version;          /**< MPISTORE_OPTIONS_VERSION */
    double timeout_s;          /**< default deadline of blocking calls; 0 = none */
    size_t max_key_len;        /**< bytes (full key, prefix included) */
    size_t max_value_len;      /**< bytes */
    size_t keys_per_rank;      /**< keys each rank's index can host */
    size_t bytes_per_rank;     /**< value memory each rank hosts for its writes */
    int progress_thread;       /**< 1: run a progress thread (version 2) */
    size_t max_keys_per_rank;  /**< limit on keys hosted per rank, 0 = none (version 3) */
    size_t max_bytes_per_rank; /**< limit on value memory per rank, 0 = none (version 3) */
    int replicas;              /**< 0 or 1: a second copy of every key (version 4) */
} mpistore_options_t;

/** Fill *opts with the defaults above (NULL is ignored). */
MPISTORE_EXTERN void mpistore_options_init(mpistore_options_t *opts);

/**
 * Open a store over comm.  Collective over comm: every rank must call it with
 * identical options (opts NULL = defaults).  Duplicates comm and allocates
 * the window memory (MPI_Win_allocate).
 * Errors: EINVAL (NULL out, MPI_COMM_NULL, bad or differing options, a
 * progress thread without MPI_THREAD_MULTIPLE), ESTATE (MPI not initialised),
 * ENOMEM (out of memory, or the window does not fit a rank's host: the
 * windows of the ranks that share a host must fit its /dev/shm and memory;
 * checked before MPI is asked, the message names the sizes), EMPI (window
 * allocation failed, the message names the MPI setting that fixes known
 * transport problems; or the process was started by another MPI's launcher,
 * so that MPI_COMM_WORLD is not the job the launcher started: the message
 * names both MPIs; MPISTORE_LAUNCHER_CHECK=0 skips that check).
 * On error *out is untouched and, except for EINVAL on a NULL comm, every
 * rank returns the same code.
 */
MPISTORE_EXTERN int mpistore_open(mpistore_t **out, MPI_Comm comm, const mpistore_options_t *opts);

/**
 * Close a handle.  For a store: collective over its communicator, frees the
 * window; if prefix views or clones of it are open on any rank, every rank
 * fails with ESTATE (the ranks agree first, so none is left waiting).  For a
 * view or clone: local; fails with ESTATE while views of it are open.  After
 * ESTATE the handle and its views stay usable.
 * NULL is a no-op returning OK.  A close that returns anything but ESTATE
 * frees the handle (a store's EMPI message is then in mpistore_errmsg(NULL)):
 * passing it to any function afterwards is undefined behaviour (as free()).
 */
MPISTORE_EXTERN int mpistore_close(mpistore_t *store);

/**
 * Create a local view that maps every key k to prefix "/" k over the same
 * store (PrefixStore).  Views of views nest.  The view starts with its
 * parent's timeout and must be closed before its parent.
 * Errors: EINVAL (NULL argument, empty prefix), EKEYTOOLONG, ENOMEM.
 */
MPISTORE_EXTERN int mpistore_prefix(mpistore_t **out, mpistore_t *store, const char *prefix);

/** Store value under key, replacing any old value; wakes waiters.  Non-blocking
 *  except for short lock waits bounded by the timeout.
 *  Errors: EINVAL, EKEYTOOLONG, ETOOBIG, ENOSPC, ETIMEDOUT, ENOMEM, EMPI. */
MPISTORE_EXTERN int mpistore_set(mpistore_t *s, const char *key, const void *value, size_t len);

/*
 * Deadlines.  A blocking read or wait (get, check, wait, multi_get,
 * queue_len, a blocking queue_pop, the elastic barrier's wait) returns
 * ETIMEDOUT within its timeout (plus at most 0.5 s for an answer already on
 * its way) also when the rank it needs does not answer: its host became
 * unreachable, or it computes outside MPI on a transport without
 * asynchronous progress (Open MPI osc/pt2pt, MPICH).  The message then says
 * "rank R did not answer an RMA read".  The same holds for the first look of
 * every write (set, add, ...) at its key, before it locks anything.
 * Not covered: a write that has locked its slot (it waits for its
 * MPI_Compare_and_swap and accumulates with blocking flushes, and hangs if
 * the rank becomes unreachable meanwhile), num_keys, list_keys, close, and
 * every call on Open MPI's osc/ucx, whose accumulate-family operations wait
 * inside MPI for the target.  After such an ETIMEDOUT the handle may be
 * unusable: reads abandoned in flight stay in flight (their memory is kept
 * until they complete or the store is closed), a later call to that rank
 * may time out again, a write to it may hang, and close (collective) cannot
 * finish without that rank: end the job (MPI_Abort).
 */

/** Get key's value, blocking until some rank sets it or the handle's timeout
 *  expires (ETIMEDOUT; the message names the key, its home rank and the
 *  seconds waited, or the rank that did not answer).  ENOSPC/ENOMEM at once,
 *  with the key absent, after a write failed because the store is full (see
 *  mpistore_options_t).  *value is freed with mpistore_free(). */
MPISTORE_EXTERN int mpistore_get(mpistore_t *s, const char *key, void **value, size_t *len);

/** Atomic add on a decimal int64 value (missing key starts at 0).  A value
 *  is a decimal int64 if it is an optional sign and digits (leading zeros
 *  allowed, no spaces) within the int64 range.
 *  *result (may be NULL) gets the new value.  ENOTINT if the value is not a
 *  decimal int64 or the sum would overflow; ETOOBIG if the sum's decimal text
 *  is longer than max_value_len (up to 20 bytes); the value is then unchanged.
 *  A key created by add is a counter: later adds on it are one
 *  MPI_Fetch_and_op (3 round trips, no lock), and every operation sees its
 *  decimal value.  Any other write makes it an ordinary value again. */
MPISTORE_EXTERN int mpistore_add(mpistore_t *s, const char *key, int64_t delta, int64_t *result);

/**
 * Atomic compare-and-set with c10d's truth table:
 *  key missing, expected empty      -> store desired, return desired;
 *  key missing, expected non-empty  -> store nothing, return expected;
 *  key equal to expected            -> store desired, return desired;
 *  key different                    -> store nothing, return current value.
 * current and current_len receive the returned value (free with mpistore_free).
 */
MPISTORE_EXTERN int mpistore_compare_set(mpistore_t *s, const char *key, const void *expected,
                                         size_t expected_len, const void *desired,
                                         size_t desired_len, void **current, size_t *current_len);

/** Remove key; *deleted (may be NULL) tells whether a key was removed. */
MPISTORE_EXTERN int mpistore_delete_key(mpistore_t *s, const char *key, bool *deleted);

/** Non-blocking: *all_present is true if every key exists.  nkeys may be 0. */
MPISTORE_EXTERN int mpistore_check(mpistore_t *s, const char *const *keys, size_t nkeys,
                                   bool *all_present);

/** Block until every key exists.  timeout_s: MPISTORE_TIMEOUT_DEFAULT = the
 *  handle's timeout, 0 = forever, > 0 = seconds.  ETIMEDOUT names the keys
 *  still missing. */
MPISTORE_EXTERN int mpistore_wait(mpistore_t *s, const char *const *keys, size_t nkeys,
                                  double timeout_s);

/**
 * c10d's Store.barrier, as torch 2.13's TCPStore does it: add(key, 1), then
 * block until the counter key reaches world_size.  One key, holding the
 * count as add does ("4" after four calls); nothing else is written.  A key
 * counts callers for ever, so a second barrier of the same world_size on it
 * returns at once: use a fresh key, or raise world_size (the n-th barrier of
 * w callers on one key passes n * w).  timeout_s: MPISTORE_TIMEOUT_DEFAULT =
 * the handle's, 0 = forever, > 0 = seconds, for the whole call.  Errors: those
 * of add (EINVAL, EKEYTOOLONG, ENOTINT for a key that is no decimal int64),
 * EINVAL for world_size < 1 or a bad timeout, ETIMEDOUT with the count
 * reached, EPROCFAILED when a rank of the store died (ULFM).  While the key
 * stays the counter this call's add left, a wait costs one round trip per
 * look at it.
 */
MPISTORE_EXTERN int mpistore_store_barrier(mpistore_t *s, const char *key, int64_t world_size,
                                           double timeout_s);

/** Number of keys in the store now (exact when no insert/delete is in flight). */
MPISTORE_EXTERN int mpistore_num_keys(mpistore_t *s, int64_t *count);

/** get() for each key under one deadline; values[i]/lens[i] in order, each
 *  freed with mpistore_free().  On failure nothing is written.  Keys are read
 *  in batches of up to 64 (3 round trips per batch when they all exist); each
 *  value is a validated read of its own key, not a snapshot of all keys. */
MPISTORE_EXTERN int mpistore_multi_get(mpistore_t *s, const char *const *keys, size_t nkeys,
                                       void **values, size_t *lens);

/** set() for each pair, in order.  Validates every argument before writing.
 *  Each set is atomic; on a failure midway, the earlier pairs stay set. */
MPISTORE_EXTERN int mpistore_multi_set(mpistore_t *s, const char *const *keys,
                                       const void *const *values, const size_t *lens, size_t nkeys);

/** Create key with value, or append value to it atomically; wakes waiters. */
MPISTORE_EXTERN int mpistore_append(mpistore_t *s, const char *key, const void *value, size_t len);

/*
 * Queues (c10d queue_push / queue_pop / queue_len).  A queue lives under a key
 * but apart from the plain keys: a plain key and a queue may share a name,
 * num_keys and list_keys do not count queues, and check/wait treat a
 * non-empty queue as present.  FIFO across all ranks and linearizable: every
 * pushed element is popped exactly once, by one rank, in push order.  A queue
 * is one entry of the store (one key slot, value memory of the last writer):
 * all its elements, with 4 bytes of length each, must fit in max_value_len
 * (a push that would overflow fails with ETOOBIG and changes nothing), each
 * push or pop copies the queued bytes, and an empty queue takes no memory.
 * Meant for control messages, not bulk data.  A queue key (prefix included)
 * must leave 2 bytes of max_key_len free (EKEYTOOLONG).  See docs/design.md,
 * "Queues".
 */

/** Append value to the queue under key (3 round trips; 4-6 for the first
 *  element of an empty queue).  Non-blocking except for short lock waits.
 *  Errors: EINVAL, EKEYTOOLONG, ETOOBIG (the element or the queue would
 *  exceed max_value_len), ENOSPC, ETIMEDOUT, ENOMEM, EMPI; on error the
 *  queue is unchanged. */
MPISTORE_EXTERN int mpistore_queue_push(mpistore_t *s, const char *key, const void *value,
                                        size_t len);

/** Remove the oldest element of the queue under key into *value and *len (free
 *  with mpistore_free).  block=true waits for an element up to the handle's
 *  timeout (ETIMEDOUT); block=false fails with EEMPTY on an empty queue.
 *  Lock waits are bounded by the same timeout.  Errors: EINVAL, EKEYTOOLONG,
 *  EEMPTY, ETIMEDOUT, ENOMEM, EMPI (also for a corrupt queue value). */
MPISTORE_EXTERN int mpistore_queue_pop(mpistore_t *s, const char *key, bool block, void **value,
                                       size_t *len);

/** Number of elements in the queue under key (0 for an empty queue).
 *  Errors: EINVAL, EKEYTOOLONG, ETIMEDOUT (kept changing), ENOMEM, EMPI. */
MPISTORE_EXTERN int mpistore_queue_len(mpistore_t *s, const char *key, int64_t *len);

/**
 * List the plain keys (queues excluded).  On a prefix view: the view's keys
 * only, with its prefix stripped.  *keys receives a malloc'ed array of
 * *nkeys NUL-terminated strings (non-NULL even when empty); free each string
 * and then the array with mpistore_free.  Not collective; reads every rank's
 * index.  Each key listed was present at some moment during the call, and a
 * key present during the whole call is listed.  ETIMEDOUT if slots kept
 * changing for the handle's timeout.  Errors: EINVAL, ENOMEM, EMPI.
 */
MPISTORE_EXTERN int mpistore_list_keys(mpistore_t *s, char ***keys, size_t *nkeys);

/**
 * A second handle to the same store (same prefix, the handle's current
 * timeout; its own timeout and error message), e.g. for another thread.
 * Local.  Like a prefix view it must be closed (locally) before the handle
 * it was cloned from: closing that handle fails with ESTATE while clones or
 * views of it are open.  Sharing the store between threads needs
 * MPI_THREAD_MULTIPLE (see Conventions).  Errors: EINVAL, ENOMEM.
 */
MPISTORE_EXTERN int mpistore_clone(mpistore_t **out, mpistore_t *s);

/** Set the handle's default deadline for blocking calls (seconds, finite,
 *  >= 0; 0 = no deadline). */
MPISTORE_EXTERN int mpistore_set_timeout(mpistore_t *s, double seconds);

/** The handle's timeout in seconds (-1.0 for a NULL handle). */
MPISTORE_EXTERN double mpistore_timeout(const mpistore_t *s);

/** Per-store operation counters (shared by a store and its views). */
typedef struct mpistore_stats {
    uint64_t rma_calls;   /**< RMA calls issued (get, put, atomics) */
    uint64_t round_trips; /**< completions waited for (flushes of remote
                               operations; an add's flushes of its own
                               registration word are local, not counted) */
    uint64_t bytes;       /**< payload bytes moved by RMA */
} mpistore_stats_t;

/** Read (and with reset=true, zero) the counters.  Local. */
MPISTORE_EXTERN int mpistore_stats(mpistore_t *s, mpistore_stats_t *out, bool reset);

/** The rank whose window holds key's index slot (its "home rank", named in
 *  timeout messages).  Local; for diagnostics and benchmarks. */
MPISTORE_EXTERN int mpistore_key_rank(mpistore_t *s, const char *key, int *rank);

/** The ranks of the store's communicator that this rank knows to have died,
 *  ascending: *ranks (freed with mpistore_free; NULL when *count is 0) and
 *  *count.  Asks MPI first where it has the fault-tolerance extension
 *  (ULFM: Open MPI 5 under `mpiexec --with-ft ulfm`); elsewhere a death ends
 *  the job and the list is always empty.  Local.  Calls that wait for a dead
 *  rank fail with EPROCFAILED (README, "When a rank dies").
 *  Errors: EINVAL, ENOMEM, EMPI. */
MPISTORE_EXTERN int mpistore_failed_ranks(mpistore_t *s, int **ranks, size_t *count);

/** This rank's rank in the store's communicator, and its size (either
 *  pointer may be NULL).  Local.  After mpistore_shrink, the new store's
 *  ranks are the survivors' in their old order.  Errors: EINVAL, ESTATE (a
 *  shrunk-away handle). */
MPISTORE_EXTERN int mpistore_rank(mpistore_t *s, int *rank, int *size);

/** After a rank died: a new store over the survivors of s's communicator,
 *  holding every key of s that survived, with its value and kind (a counter
 *  stays a counter, a queue keeps its order), and the old handle s can then
 *  only be closed (every other call returns ESTATE; close it on every
 *  survivor).  Collective over the survivors, whatever order they learn of
 *  the death in: the first to call it revokes s's communicator, so that the
 *  others' waiting calls fail with EPROCFAILED and they can join; a rank
 *  that dies during the shrink makes it start again over fewer ranks.  The
 *  survivors keep their order: rank r becomes r minus the number of dead
 *  ranks below it (mpistore_rank).  The new store has s's options, its own
 *  communicator and s's handle timeout.
 *  *lost_keys (may be NULL) counts the keys (a queue is one) that did not
 *  survive and that the survivors can count: keys homed on a live rank
 *  whose value or index level was on a dead rank.  Keys homed on a dead
 *  rank are lost too and cannot be counted, because their count died with
 *  the rank: then *lost_keys is a lower bound (README, "When a rank dies").
 *  Needs MPI's fault-tolerance extension (ULFM: Open MPI 5 under
 *  `mpiexec --with-ft ulfm`).
 *  A caller that learnt of a death elsewhere (a socket of gloo) may call
 *  it before MPI reports the death: it waits up to 2 s for MPI to.
 *  Errors: EINVAL (s or out NULL, s a prefix view or clone), ESTATE (MPI
 *  reported no failed rank of s within 2 s and its communicator is not
 *  revoked; s shrunk already; an MPI without ULFM), ENOMEM, ENOSPC (the
 *  survivors' store cannot hold the keys), EPROCFAILED (ranks kept dying),
 *  EMPI.  On error *out is unchanged. */
MPISTORE_EXTERN int mpistore_shrink(mpistore_t **out, mpistore_t *s, size_t *lost_keys);

/** Free a buffer returned by the library (NULL ok). */
MPISTORE_EXTERN void mpistore_free(void *p);

/** Static text for a code, positive or negative ("unknown error" otherwise). */
MPISTORE_EXTERN const char *mpistore_strerror(int code);

/** Static name of a code ("MPISTORE_ETIMEDOUT"), positive or negative. */
MPISTORE_EXTERN const char *mpistore_errname(int code);

/** One line on the handle's last failure, "" if none.  With NULL: the calling
 *  thread's last failed mpistore_open(), store close, or call that was given a
 *  NULL handle (those leave no handle to hold the message). */
MPISTORE_EXTERN const char *mpistore_errmsg(const mpistore_t *s);

/** Runtime library version, "MAJOR.MINOR.PATCH". */
MPISTORE_EXTERN const char *mpistore_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MPISTORE_H */
