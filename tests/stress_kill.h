/* The stress model's kill variant (stress_kill.c): a rank dies at a random
 * point of the run, under MPI's fault tolerance (ULFM) and replicas = 1,
 * and the survivors shrink the store and check every rank's log, the dead
 * rank's included (docs/testing.md, "Stress test").
 *
 * Every rank logs into a file mapping (MAP_SHARED) of its own, so that its
 * log outlives it: the count of entries of completed calls is updated with
 * each entry, and the entries of the call in flight (its writes, as
 * "maybe", ST_DEAD) are written after them before the call starts, counted
 * separately.  A rank that dies inside a call leaves both; one that returns
 * drops the pending entries and logs what the call returned. */
#ifndef MPISTORE_STRESS_KILL_H
#define MPISTORE_STRESS_KILL_H

#include "stress_model.h"

#include <mpistore.h>

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct stk_hdr {
    uint64_t magic;
    uint64_t n;       /* entries of completed calls */
    uint64_t pending; /* entries of the call in flight, after them */
    int64_t call;     /* the ST_OP_* of the call in flight, -1 between calls */
} stk_hdr;

typedef struct stk_log {
    stk_hdr *hdr;
    st_ent *e;
    size_t cap;
    void *base;
    size_t bytes;
    char path[256];
} stk_log;

/* STRESS_KILL: the victim rank (-1: no kill variant). */
int stk_victim(void);
/* A name shared by the job's ranks (collective over MPI_COMM_WORLD, before
 * any death). */
uint64_t stk_job_id(void);
/* Create and map rank's log file of cap entries; fails the test on error. */
void stk_create(stk_log *l, uint64_t job, int rank, size_t cap);
/* Map another rank's log (read-only), after its rank died or finished:
 * 0, or -1 (message on stderr). */
int stk_open(stk_log *l, uint64_t job, int rank);
void stk_unmap(stk_log *l);
void stk_remove(stk_log *l);

/* The victim: from `at` (MPI_Wtime) on, stk_tick, called before each store
 * call, arms a death at an MPI_Win_flush (inside a store call, never inside
 * an atomic RMA call: README, "When a rank dies"): with chance 1/4 at one
 * of the next 64, else at one of the first 4 of the next write call (set,
 * add, compare_set, delete_key, multi_set, append), where a death leaves
 * the most behind. */
void stk_plan_death(double at, uint64_t rng);
void stk_tick(bool write_call);
/* The victim outlived its run: it dies now, between calls. */
void stk_die_now(void);

/* Is the victim known dead (mpistore_failed_ranks lists exactly it)? */
bool stk_victim_known(mpistore_t *s, int victim);
/* A survivor waits (sleeping, polling) until the death is known: true, or
 * false after max_s. */
bool stk_await_death(mpistore_t *s, int victim, double max_s);

#endif
