/* A store's options (options.c): defaults, the environment's overrides, their
 * checks, and the window layout they make (docs/design.md, "Window layout"). */
#ifndef MPISTORE_OPTIONS_H
#define MPISTORE_OPTIONS_H

#include "layout.h"
#include "mpistore.h"

/* The sizes from the environment (MPISTORE_KEYS_PER_RANK, ...) override
 * the options: 0, or -1 with a reason in why. */
int mpistore__options_env(mpistore_options_t *o, char *why, size_t n);
/* 0 if the options are valid, -1 with a reason in why. */
int mpistore__options_check(const mpistore_options_t *o, char *why, size_t n);
/* The window layout and limits of valid options; *shift is log2 of the
 * allocation unit, *max_units the units each rank may use. */
void mpistore__layout_make(const mpistore_options_t *o, mpistore__layout_t *y, unsigned *shift,
                           uint32_t *max_units);

#endif /* MPISTORE_OPTIONS_H */
