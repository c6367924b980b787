/* Value blocks (block.c): fetch a block into local memory, read its key
 * and value; build one in this rank's value memory. */
#ifndef MPISTORE_BLOCK_H
#define MPISTORE_BLOCK_H

#include "core.h"

/* A block fetched into local memory.  A counter's block holds only the key
 * (vlen == MS_VLEN_COUNTER); its value is the slot's int64 counter word,
 * read along with the block (cnt) and formatted as decimal (num). */
#define MS_VLEN_COUNTER UINT64_MAX
typedef struct mpistore__block {
    unsigned char *buf; /* header + key + value */
    size_t got;         /* bytes fetched */
    int counter;        /* after mpistore__block_complete: a counter's block */
    int64_t cnt;        /* the counter word, read between the two descriptor reads */
    char num[24];       /* cnt in decimal: the value mpistore__block_value returns */
    int mirror;         /* set before the fetch: read the copy on the writer's mirror (replicas) */
} mpistore__block_t;
/* A counter value of a block becomes its value (formats num). */
void mpistore__block_set_counter(mpistore__block_t *b, int64_t v);

/* Allocate the local buffer for the block named by desc, sized by the hint
 * (block bytes); then issue (no flush) its fetch.  mpistore__block_issue does both. */
int mpistore__block_alloc(mpistore__core_t *c, uint64_t desc, size_t hint, mpistore__block_t *b);
int mpistore__block_fetch(mpistore__core_t *c, uint64_t desc, mpistore__block_t *b);
int mpistore__block_issue(mpistore__core_t *c, uint64_t desc, size_t hint, mpistore__block_t *b);
/* After the flush: fetch the rest if the header says the block is longer
 * (only up to the key unless need_value).  *torn when the header is
 * impossible (the caller revalidates). */
int mpistore__block_complete(mpistore__core_t *c, uint64_t desc, mpistore__block_t *b,
                             int need_value, int *torn);
int mpistore__block_is_key(const mpistore__block_t *b, const mpistore__key_t *k);
/* EMPI for a validated block whose header is impossible (a bug, not a race) */
int mpistore__err_corrupt(mpistore__core_t *c, uint64_t desc, const mpistore__key_t *k);
const unsigned char *mpistore__block_value(const mpistore__block_t *b, size_t *vlen);
const char *mpistore__block_key(const mpistore__block_t *b,
                                size_t *klen); /* after mpistore__block_complete */
void mpistore__block_release(mpistore__block_t *b);

/* Build a block locally: header + key + a + b (value = a||b). */
int mpistore__block_build(mpistore__core_t *c, const mpistore__key_t *k, const void *a, size_t alen,
                          const void *b2, size_t blen, uint32_t *uoff, uint32_t *total);
/* Build a counter's block: header + key, vlen = MS_VLEN_COUNTER. */
int mpistore__block_build_counter(mpistore__core_t *c, const mpistore__key_t *k, uint32_t *uoff,
                                  uint32_t *total);

void *mpistore__dup_value(const void *v, size_t len); /* malloc len+1, NUL-terminated */

#endif /* MPISTORE_BLOCK_H */
