/* src/alloc.c: the owner-only allocator of a rank's value memory, driven
 * through its internal calls on one-rank stores (MPI_COMM_SELF): sizes in
 * 32-byte units, reuse after free, coalescing with both neighbours,
 * ENOSPC when the arena is full and may not grow, reclamation of blocks
 * another rank marked dead, growth into arena segments, and mpistore__blk_at /
 * mpistore__alloc_of agreeing with the allocator's own view. */
#include "mpitest.h"
#include "ops.h" /* white-box: the core; alloc.h: mpistore__alloc_block, mpistore__free_block, mpistore__blk_at, ... */

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNIT 32u   /* bytes of an allocation unit (MS_UNIT_MIN_SHIFT) */
#define NUNITS 16u /* the arena of these tests: 512 bytes */

/* A store whose arena is NUNITS units and may not grow (max_bytes). */
static mpistore_t *open_fixed(void)
{
    mpistore_t *s = mt_open_self_limited(4, NUNITS * UNIT, 256, 0, NUNITS * UNIT);
    assert_int_equal(s->core->mem.alloc.shift, 5);
    assert_int_equal(s->core->mem.alloc.nunits, NUNITS);
    return s;
}

/* Allocate a block of `bytes` and check what the allocator says about it. */
static uint32_t alloc_ok(mpistore_t *s, size_t bytes)
{
    mpistore__mem_t *c = &s->core->mem;
    uint32_t u = UINT32_MAX;
    int rc = mpistore__alloc_block(&s->core->mem, &s->core->rma, bytes, &u);
    if (rc != 0)
        fail_msg("mpistore__alloc_block(%zu) -> %s: %s", bytes, mpistore_errname(rc),
                 mpistore_errmsg(s));
    mpistore__alloc_t *a = mpistore__alloc_of(c, u);
    assert_non_null(a);
    mpistore__blk_t *h = mpistore__blk_at(c, u);
    /* mpistore__blk_at is the allocator's own address of the chunk */
    assert_ptr_equal((unsigned char *)h, a->arena + ((size_t)(u - a->base) << a->shift));
    assert_int_equal(h->units, (bytes + UNIT - 1) / UNIT);
    assert_int_equal(h->dead, 0);
    return u;
}

static void expect_enospc(mpistore_t *s, size_t bytes)
{
    uint32_t u = UINT32_MAX;
    uint64_t used = s->core->mem.alloc.used_units;
    int rc = mpistore__alloc_block(&s->core->mem, &s->core->rma, bytes, &u);
    if (rc != -MPISTORE_ENOSPC)
        fail_msg("mpistore__alloc_block(%zu) -> %s (unit %u), expected ENOSPC", bytes,
                 mpistore_errname(rc), u);
    assert_int_equal(u, UINT32_MAX); /* not written */
    assert_int_equal(s->core->mem.alloc.used_units, used);
}

/* A fresh arena is one free run: the whole of it can be allocated at once,
 * at unit 0, and nothing more. */
static void alloc_fresh_arena_is_one_run(void **state)
{
    (void)state;
    mpistore_t *s = open_fixed();
    mpistore__mem_t *c = &s->core->mem;
    assert_int_equal(c->alloc.used_units, 0);
    assert_int_equal(c->alloc.base, 0);
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), 0);
    assert_int_equal(c->alloc.used_units, NUNITS);
    expect_enospc(s, 1);
    mpistore__free_block(c, 0);
    assert_int_equal(c->alloc.used_units, 0);
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), 0);
    MT_OK(s, mpistore_close(s));
}

/* Sizes round up to whole units; consecutive blocks are laid out one after
 * the other from unit 0; zero bytes or more than the unit space: ENOSPC. */
static void alloc_sizes_in_units(void **state)
{
    (void)state;
    mpistore_t *s = open_fixed();
    mpistore__mem_t *c = &s->core->mem;
    static const size_t sizes[] = {1, 32, 33, 64, 65, 100};
    uint32_t want = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t u = alloc_ok(s, sizes[i]);
        assert_int_equal(u, want);
        want += (uint32_t)((sizes[i] + UNIT - 1) / UNIT);
        assert_int_equal(c->alloc.used_units, want);
    }
    assert_int_equal(want, 1 + 1 + 2 + 2 + 3 + 4);
    expect_enospc(s, 0);
    expect_enospc(s, (size_t)MS_UNIT_SPACE * UNIT);
    MT_OK(s, mpistore_close(s));
}

/* A freed block's units are reused by the next block that fits there. */
static void alloc_reuse_after_free(void **state)
{
    (void)state;
    mpistore_t *s = open_fixed();
    mpistore__mem_t *c = &s->core->mem;
    uint32_t a = alloc_ok(s, 2 * UNIT), b = alloc_ok(s, 3 * UNIT), d = alloc_ok(s, 2 * UNIT);
    assert_int_equal(a, 0);
    assert_int_equal(b, 2);
    assert_int_equal(d, 5);
    uint32_t rest = alloc_ok(s, (NUNITS - 7) * UNIT); /* the arena is full */
    assert_int_equal(rest, 7);
    expect_enospc(s, 1);
    mpistore__free_block(c, b);
    assert_int_equal(c->alloc.used_units, NUNITS - 3);
    expect_enospc(s, 4 * UNIT); /* three free units only */
    assert_int_equal(alloc_ok(s, 3 * UNIT), b);
    mpistore__free_block(c, b);
    assert_int_equal(alloc_ok(s, 1 * UNIT), b); /* a smaller block splits the run */
    assert_int_equal(alloc_ok(s, 2 * UNIT), b + 1);
    expect_enospc(s, 1);
    MT_OK(s, mpistore_close(s));
}

/* Freed neighbours merge: with the following run, with the preceding run,
 * and with both; in the end the arena is one run again. */
static void alloc_coalescing(void **state)
{
    (void)state;
    mpistore_t *s = open_fixed();
    mpistore__mem_t *c = &s->core->mem;
    uint32_t u[4];
    for (int i = 0; i < 4; i++) {
        u[i] = alloc_ok(s, 4 * UNIT);
        assert_int_equal(u[i], 4u * (uint32_t)i);
    }
    expect_enospc(s, 1);
    mpistore__free_block(c, u[2]);
    mpistore__free_block(c, u[1]); /* merges with the following free run */
    expect_enospc(s, 9 * UNIT);
    assert_int_equal(alloc_ok(s, 8 * UNIT), u[1]);
    mpistore__free_block(c, u[1]);
    mpistore__free_block(c, u[0]); /* ... with the following one, at unit 0 */
    assert_int_equal(alloc_ok(s, 12 * UNIT), 0);
    mpistore__free_block(c, 0);
    mpistore__free_block(c, u[3]); /* with the preceding one */
    assert_int_equal(c->alloc.used_units, 0);
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), 0);
    mpistore__free_block(c, 0);
    /* both neighbours at once: free the outer two, then the middle */
    for (int i = 0; i < 3; i++)
        u[i] = alloc_ok(s, 5 * UNIT);
    assert_int_equal(u[2], 10);
    mpistore__free_block(c, u[0]);
    mpistore__free_block(c, u[2]);
    expect_enospc(s, 7 * UNIT); /* 5 + 6 free units, not adjacent */
    mpistore__free_block(c, u[1]);
    assert_int_equal(c->alloc.used_units, 0);
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), 0);
    MT_OK(s, mpistore_close(s));
}

/* The largest run of units in [0, total) not covered by the n blocks. */
static uint32_t largest_gap(const uint32_t *live, const uint32_t *units, int n, uint32_t total)
{
    uint32_t best = 0;
    for (uint32_t start = 0; start < total;) {
        uint32_t end = total; /* the gap from start ends at the next block */
        int inside = 0;
        for (int i = 0; i < n; i++) {
            if (live[i] <= start && start < live[i] + units[i]) {
                start = live[i] + units[i];
                inside = 1;
                break;
            }
            if (live[i] > start && live[i] < end)
                end = live[i];
        }
        if (inside)
            continue;
        if (end - start > best)
            best = end - start;
        start = end;
    }
    return best;
}

/* Many allocate/free patterns keep used_units equal to the sum of the
 * blocks alive, and freeing everything gives back one whole run. */
static void alloc_patterns_keep_accounts(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self_limited(4, 64 * UNIT, 256, 0, 64 * UNIT);
    mpistore__mem_t *c = &s->core->mem;
    uint32_t live[64], units[64];
    int n = 0;
    uint64_t sum = 0;
    unsigned x = 12345;
    for (int step = 0; step < 2000; step++) {
        x = x * 1103515245u + 12345u;
        unsigned r = (x >> 16) & 0x7FFF;
        if (n > 0 && (r % 3 == 0 || n == 64)) { /* free a random live block */
            int i = (int)(r / 3 % (unsigned)n);
            mpistore__free_block(c, live[i]);
            sum -= units[i];
            live[i] = live[n - 1];
            units[i] = units[n - 1];
            n--;
        } else {
            uint32_t want = 1 + r % 6, u = UINT32_MAX;
            int rc =
                mpistore__alloc_block(&s->core->mem, &s->core->rma, want * UNIT - r % UNIT, &u);
            if (rc == 0) {
                assert_int_equal(mpistore__blk_at(c, u)->units, want);
                for (int i = 0; i < n; i++) /* no overlap with a live block */
                    assert_true(u + want <= live[i] || live[i] + units[i] <= u);
                live[n] = u;
                units[n++] = want;
                sum += want;
            } else {
                assert_int_equal(rc, -MPISTORE_ENOSPC);
            }
            /* free runs are maximal (coalesced) and any run that fits is
             * found: ENOSPC exactly when the largest gap is too small */
            if ((rc == 0) != (largest_gap(live, units, n - (rc == 0), 64) >= want))
                fail_msg("step %d: %u units -> %s with a largest free run of %u", step, want,
                         mpistore_errname(rc), largest_gap(live, units, n - (rc == 0), 64));
        }
        assert_int_equal(c->alloc.used_units, sum);
    }
    while (n > 0)
        mpistore__free_block(c, live[--n]);
    assert_int_equal(c->alloc.used_units, 0);
    assert_int_equal(alloc_ok(s, 64 * UNIT), 0);
    MT_OK(s, mpistore_close(s));
}

/* A full arena reclaims blocks whose dead word another rank has set (here
 * through the window, as a remote rank would) before it gives up. */
static void alloc_reclaims_dead_blocks(void **state)
{
    (void)state;
    mpistore_t *s = open_fixed();
    mpistore__mem_t *c = &s->core->mem;
    uint32_t u[4];
    for (int i = 0; i < 4; i++)
        u[i] = alloc_ok(s, 4 * UNIT);
    expect_enospc(s, 1);
    const uint64_t one = 1;
    MT_OK(s, mpistore__replace_u64(&s->core->rma, s->core->rma.w.rank,
                                   c->alloc.arena_off + (size_t)u[1] * UNIT, &one));
    MT_OK(s, mpistore__replace_u64(&s->core->rma, s->core->rma.w.rank,
                                   c->alloc.arena_off + (size_t)u[2] * UNIT, &one));
    MT_OK(s, mpistore__flush_self(&s->core->rma));
    /* both dead blocks are freed and merge: 8 units at u[1] */
    assert_int_equal(alloc_ok(s, 8 * UNIT), u[1]);
    assert_int_equal(c->alloc.used_units, NUNITS);
    expect_enospc(s, 1);
    MT_OK(s, mpistore_close(s));
}

/* With room to grow, a full arena adds segment 0 (units nunits .. 2 nunits)
 * and a block too big for it goes to the first segment that can hold it. */
static void alloc_grows_into_segments(void **state)
{
    (void)state;
    mpistore_t *s = mt_open_self(4, NUNITS * UNIT, 4096);
    mpistore__mem_t *c = &s->core->mem;
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), 0);
    assert_null(c->segmem[0]);
    assert_null(mpistore__alloc_of(c, NUNITS)); /* no segment yet */
    uint32_t u = alloc_ok(s, 3 * UNIT);
    assert_non_null(c->segmem[0]);
    assert_int_equal(mpistore__seg_base(c, 0), NUNITS);
    assert_int_equal(u, NUNITS); /* the first unit of segment 0 */
    assert_ptr_equal(mpistore__alloc_of(c, u), &c->seg[0]);
    assert_ptr_equal((unsigned char *)mpistore__blk_at(c, u), c->segmem[0]);
    assert_int_equal(c->seg[0].used_units, 3);
    assert_int_equal(c->alloc.used_units, NUNITS);
    /* 2 nunits units fit no existing allocator: segment 1 (base 2 nunits) */
    uint32_t big = alloc_ok(s, 2 * NUNITS * UNIT);
    assert_null(c->segmem[2]);
    assert_non_null(c->segmem[1]);
    assert_int_equal(big, mpistore__seg_base(c, 1));
    assert_int_equal(big, 2 * NUNITS);
    assert_ptr_equal(mpistore__alloc_of(c, big), &c->seg[1]);
    /* the next small block goes into segment 0's free run */
    uint32_t v = alloc_ok(s, 1 * UNIT);
    assert_int_equal(v, NUNITS + 3);
    mpistore__free_block(c, u);
    mpistore__free_block(c, v);
    mpistore__free_block(c, big);
    assert_int_equal(c->seg[0].used_units, 0);
    assert_int_equal(c->seg[1].used_units, 0);
    /* the freed segment run is whole again */
    assert_int_equal(alloc_ok(s, NUNITS * UNIT), NUNITS);
    MT_OK(s, mpistore_close(s));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(alloc_fresh_arena_is_one_run), cmocka_unit_test(alloc_sizes_in_units),
    cmocka_unit_test(alloc_reuse_after_free),       cmocka_unit_test(alloc_coalescing),
    cmocka_unit_test(alloc_patterns_keep_accounts), cmocka_unit_test(alloc_reclaims_dead_blocks),
    cmocka_unit_test(alloc_grows_into_segments),
};

MT_MAIN("alloc", tests)
