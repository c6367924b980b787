/* Model-based stress test: shared definitions of the driver (stress_model.c)
 * and the checker (stress_check.c).
 *
 * Every rank runs random operations on a small shared key set and logs, for
 * every call, what it returned (decoded into st_ent entries).  The checker
 * then replays the logs against what a linearizable store may return: per
 * rank in program order (stress_check_local) and over all ranks' logs on rank
 * 0 (stress_check_global). */
#ifndef MPISTORE_STRESS_MODEL_H
#define MPISTORE_STRESS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Key classes.  Counters: only add (+1 or +0) until the final sweep.  Tokens:
 * a compare_set chain, never deleted during the run.  Registers: set,
 * multi_set, compare_set, delete.  Appends: append and delete. */
enum { ST_NC = 3, ST_NT = 2, ST_NR = 8, ST_NA = 3 };
enum {
    ST_K_C = 0,
    ST_K_T = ST_K_C + ST_NC,
    ST_K_R = ST_K_T + ST_NT,
    ST_K_A = ST_K_R + ST_NR,
    ST_NK = ST_K_A + ST_NA
};
enum { ST_CLS_C, ST_CLS_T, ST_CLS_R, ST_CLS_A };
int st_class(int key);
const char *st_key_name(int key);

/* Operation kinds (what was called). */
enum {
    ST_OP_SET,
    ST_OP_GET,
    ST_OP_ADD,
    ST_OP_CAS,
    ST_OP_DELETE,
    ST_OP_CHECK,
    ST_OP_MULTI_GET,
    ST_OP_MULTI_SET,
    ST_OP_APPEND,
    ST_OP_NUM_KEYS,
    ST_OP_WAIT,
    ST_OP_FINAL, /* read after the run, all ranks quiet */
    ST_OP_COUNT
};
extern const char *const st_op_names[ST_OP_COUNT];

/* Events (what an entry records). */
enum {
    ST_EV_WRITE,   /* a record (w=me, seq) written to a register/token key */
    ST_EV_READ,    /* register/token value observed (or absent) */
    ST_EV_ADD,     /* add on a counter: aux=delta, val=result */
    ST_EV_CREAD,   /* counter value observed: val */
    ST_EV_APPEND,  /* own append: seq=index (SHORT: empty append, no index) */
    ST_EV_AREAD,   /* append value observed: val=length; followed by ST_EV_AREC */
    ST_EV_AREC,    /* writer w's records in that value: indexes aux..seq */
    ST_EV_DELETE,  /* delete_key: F_TRUE if a key was removed */
    ST_EV_CHECK,   /* check: val=key mask, F_TRUE if all present */
    ST_EV_WAIT,    /* wait: val=key mask, aux=timeout ms, st */
    ST_EV_NUMKEYS, /* num_keys: val */
    ST_EV_COUNT
};

/* Status. */
enum {
    ST_OK,
    ST_ABSENT, /* timed out / reported missing */
    ST_FAIL,   /* ENOSPC or ETOOBIG: the call says it changed nothing */
    ST_BUSY,   /* timed out while the key "kept changing": present, but no stable read */
    ST_DEAD    /* failed with EPROCFAILED, or the caller died inside it (the kill
                * variant): a read saw nothing, a write (ST_F_MAYBE) may or may
                * not have happened, and it was its rank's last call */
};

/* Flags. */
enum {
    ST_F_VALID = 1,   /* value decoded as a whole, self-consistent record */
    ST_F_SHORT = 2,   /* value shorter than a record header (pattern only) */
    ST_F_WON = 4,     /* compare_set stored our desired value */
    ST_F_TRUE = 8,    /* delete removed a key / check found all */
    ST_F_MAYBE = 16,  /* write of a failed multi_set: may or may not have landed */
    ST_F_ORDER = 32,  /* append value: every writer's records in program order, no gaps */
    ST_F_LONGTO = 64, /* read with the long timeout (key known to exist) */
    ST_F_CASEXP = 128 /* compare_set returned our (non-empty) expected: key missing */
};

#define ST_NONE 0xFFFFu

typedef struct st_ent {
    double t0, t1; /* MPI_Wtime before/after the call (local order only) */
    int64_t val;   /* see events */
    uint32_t seq;  /* writer's sequence number / append index */
    uint32_t aux;  /* token generation / append low index / delta / timeout ms */
    uint16_t w;    /* writer of the observed or written value; ST_NONE */
    uint8_t op, ev, key, st, flags, pad;
} st_ent;

/* A growable log of one rank for one epoch. */
typedef struct st_log {
    st_ent *e;
    size_t n, cap;
} st_log;

/* What the checker needs to know about the run. */
typedef struct st_ctx {
    int rank, size;
    int variant; /* 0 default store, 1 small store, 2 growing, 3 kill (a rank dies) */
    int epoch;
    uint64_t seed;
    const char *inject; /* "" or the injected fault */
} st_ctx;

/* Per-rank state of the local check, kept across epochs. */
typedef struct st_local st_local;
st_local *st_local_new(const st_ctx *c);
void st_local_free(st_local *l);
/* Replays one epoch of this rank's log in program order; fails the test
 * (printing the offending entries) on a violation. */
void st_check_local(st_local *l, const st_ctx *c, const st_log *log);

/* Rank 0's state of the global check, kept across epochs. */
typedef struct st_global st_global;
st_global *st_global_new(const st_ctx *c);
void st_global_free(st_global *g);
/* All ranks' entries of one epoch: logs[r] has counts[r] entries. */
void st_check_global(st_global *g, const st_ctx *c, st_ent *const *logs, const int *counts);
/* After the run: final[r*ST_NK + k] is rank r's final read of key k (an
 * ST_OP_FINAL entry), digest the hash of the bytes read.  Checks counters,
 * the token chain, agreement of all ranks; sets present[k]. */
void st_check_final(st_global *g, const st_ctx *c, const st_ent *final, const uint32_t *digest,
                    int *present);

/* Print one entry to stderr, prefixed. */
void st_print_ent(const char *prefix, int rank, const st_ent *e);
/* Report a violation of check `name` (stderr), then fail the test. */
void st_violation(const st_ctx *c, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
void st_fail(const st_ctx *c); /* ends the test after violations were printed */

/* Self-describing values. */
enum { ST_HDR = 20, ST_AREC_HDR = 11 };
#define ST_MAGIC 0x4D525453u /* "STRM" */
/* register/token record of total length len (>= ST_HDR) */
void st_make_record(unsigned char *buf, size_t len, int key, int w, uint32_t seq, uint32_t gen);
/* value shorter than a header: a pattern of key and length */
void st_make_short(unsigned char *buf, size_t len, int key);
typedef struct st_rec {
    int w;
    uint32_t seq, gen;
} st_rec;
/* Decode a register/token value: 1 = record (r filled), 2 = short pattern,
 * 0 = invalid (torn, foreign or garbled). */
int st_decode(const unsigned char *v, size_t len, int key, st_rec *r);
/* append record with plen payload bytes; returns its length */
size_t st_make_arec(unsigned char *buf, size_t plen, int key, int w, uint32_t idx);
/* Decode an append value into its records: *nrec records (w, idx) in value
 * order go to recs (sized len / ST_AREC_HDR + 1).  Returns 0 if the value is
 * not a concatenation of whole, intact records of this key. */
int st_decode_append(const unsigned char *v, size_t len, int key, int nranks, st_rec *recs,
                     size_t *nrec);

uint64_t st_mix(uint64_t x);
uint32_t st_digest(const void *v, size_t len);

#endif
