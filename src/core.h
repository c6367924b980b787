/* The state of one store (docs/design.md, "Code map"): the parts that each
 * module owns, side by side.  The index layer and the operations work on
 * the whole; the layers below take only their own part (the RMA layer its
 * mpistore__rma_t, value memory its mpistore__mem_t, the levels their mpistore__levels_t).
 * Types only: no .c file of its own. */
#ifndef MPISTORE_CORE_H
#define MPISTORE_CORE_H

#include "alloc.h"
#include "apilock.h"
#include "errors.h"
#include "ft.h"
#include "layout.h"
#include "levels.h"
#include "progress.h"
#include "rma.h"

typedef struct mpistore__core {
    mpistore__rma_t rma;       /* windows, counters, requests (rma.h) */
    mpistore__layout_t lay;    /* geometry and limits (layout.h) */
    mpistore__mem_t mem;       /* this rank's value memory (alloc.h) */
    mpistore__levels_t lev;    /* index levels (levels.h) */
    mpistore__progress_t prog; /* the optional progress thread (progress.h) */
    mpistore__apilock_t lock;  /* the API mutex (apilock.h) */
    mpistore__err_t err;       /* the sink of every layer's failure messages (errors.h) */
    mpistore__ft_t ft;         /* ranks known dead (ft.h) */
    mpistore_options_t opts;   /* the options in effect at open (a shrink reopens with them) */
    int shrunk; /* mpistore_shrink made a new store of it: only close is left (shrink.c) */
} mpistore__core_t;

#endif /* MPISTORE_CORE_H */
