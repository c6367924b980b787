/* Value blocks (block.c): fetch a block into local memory, read its key
 * and value; build one in this rank's value memory. */
#ifndef MPISTORE_BLOCK_H
#define MPISTORE_BLOCK_H

#include "core.h"

/* A block fetched into local memory.  A counter's block holds only the key
 * (vlen == MS_VLEN_COUNTER); its value is the slot's int64 counter word,
 * read along with the block (cnt) and formatted as decimal (num). */
#define MS_VLEN_COUNTER UINT64_MAX
typedef struct ms_block {
    unsigned char *buf; /* header + key + value */
    size_t got;         /* bytes fetched */
    int counter;        /* after ms_block_complete: a counter's block */
    int64_t cnt;        /* the counter word, read between the two descriptor reads */
    char num[24];       /* cnt in decimal: the value ms_block_value returns */
} ms_block_t;
/* A counter value of a block becomes its value (formats num). */
void ms_block_set_counter(ms_block_t *b, int64_t v);

/* Allocate the local buffer for the block named by desc, sized by the hint
 * (block bytes); then issue (no flush) its fetch.  ms_block_issue does both. */
int ms_block_alloc(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b);
int ms_block_fetch(mpistore_t *s, uint64_t desc, ms_block_t *b);
int ms_block_issue(mpistore_t *s, uint64_t desc, size_t hint, ms_block_t *b);
/* After the flush: fetch the rest if the header says the block is longer
 * (only up to the key unless need_value).  *torn when the header is
 * impossible (the caller revalidates). */
int ms_block_complete(mpistore_t *s, uint64_t desc, ms_block_t *b, int need_value, int *torn);
int ms_block_is_key(const ms_block_t *b, const ms_key_t *k);
/* EMPI for a validated block whose header is impossible (a bug, not a race) */
int ms_err_corrupt(mpistore_t *s, uint64_t desc, const ms_key_t *k);
const unsigned char *ms_block_value(const ms_block_t *b, size_t *vlen);
const char *ms_block_key(const ms_block_t *b, size_t *klen); /* after ms_block_complete */
void ms_block_release(ms_block_t *b);

/* Build a block locally: header + key + a + b (value = a||b). */
int ms_block_build(mpistore_t *s, const ms_key_t *k, const void *a, size_t alen, const void *b2,
                   size_t blen, uint32_t *uoff, uint32_t *total);
/* Build a counter's block: header + key, vlen = MS_VLEN_COUNTER. */
int ms_block_build_counter(mpistore_t *s, const ms_key_t *k, uint32_t *uoff, uint32_t *total);

void *ms_dup_value(const void *v, size_t len); /* malloc len+1, NUL-terminated */

#endif /* MPISTORE_BLOCK_H */
