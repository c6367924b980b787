/* Options: the defaults (mpistore_options_init), the sizes the environment
 * overrides (README, "Limits and defaults"), their checks, and the layout of
 * every rank's window that they make. */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

void mpistore_options_init(mpistore_options_t *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->version = MPISTORE_OPTIONS_VERSION;
    opts->timeout_s = 300.0;
    opts->max_key_len = 1024;
    opts->max_value_len = MIB;
    opts->keys_per_rank = 4096;
    opts->bytes_per_rank = 7 * MIB;
    opts->max_keys_per_rank = 0;
    opts->max_bytes_per_rank = 0;
    opts->replicas = 0;
}

/* The sizes from the environment override the options (for users who never
 * see the options struct): decimal, with an optional k/m/g (x1024^n). */
static int env_size(const char *name, size_t *out, char *why, size_t n)
{
    const char *v = getenv(name);
    char *end = NULL;
    if (!v || !*v)
        return 0;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    int shift = 0;
    if (end && (*end == 'k' || *end == 'K'))
        shift = 10, end++;
    else if (end && (*end == 'm' || *end == 'M'))
        shift = 20, end++;
    else if (end && (*end == 'g' || *end == 'G'))
        shift = 30, end++;
    if (errno || end == v || *end || v[0] == '-' || (shift && x > (ULLONG_MAX >> shift))) {
        snprintf(why, n, "environment %s='%.32s' is not a size (decimal, optional k/m/g)", name, v);
        return -1;
    }
    *out = (size_t)(x << shift);
    return 0;
}

int mpistore__options_env(mpistore_options_t *o, char *why, size_t n)
{
    if (env_size("MPISTORE_KEYS_PER_RANK", &o->keys_per_rank, why, n) ||
        env_size("MPISTORE_BYTES_PER_RANK", &o->bytes_per_rank, why, n) ||
        env_size("MPISTORE_MAX_KEYS_PER_RANK", &o->max_keys_per_rank, why, n) ||
        env_size("MPISTORE_MAX_BYTES_PER_RANK", &o->max_bytes_per_rank, why, n))
        return -1;
    const char *rep = getenv("MPISTORE_REPLICAS");
    if (rep && *rep) {
        if (strcmp(rep, "0") != 0 && strcmp(rep, "1") != 0) {
            snprintf(why, n, "environment MPISTORE_REPLICAS='%.32s' must be 0 or 1", rep);
            return -1;
        }
        o->replicas = rep[0] - '0';
    }
    return 0;
}

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

static size_t align64(size_t x)
{
    return (x + 63) & ~(size_t)63;
}

int mpistore__options_check(const mpistore_options_t *o, char *why, size_t n)
{
    if (o->version < 1 || o->version > MPISTORE_OPTIONS_VERSION)
        snprintf(why, n, "options version %u, expected 1 to %u (call mpistore_options_init)",
                 o->version, MPISTORE_OPTIONS_VERSION);
    else if (!(o->timeout_s >= 0) || !isfinite(o->timeout_s))
        snprintf(why, n, "timeout_s %g must be finite and >= 0", o->timeout_s);
    else if (o->max_key_len < 1 || o->max_key_len > 64 * KIB)
        snprintf(why, n, "max_key_len %zu must be in [1, 65536]", o->max_key_len);
    else if (o->max_value_len < 1 || o->max_value_len > ((size_t)1 << 40))
        snprintf(why, n, "max_value_len %zu must be in [1, 2^40]", o->max_value_len);
    else if (o->keys_per_rank < 1 || o->keys_per_rank > ((size_t)1 << 26))
        snprintf(why, n, "keys_per_rank %zu must be in [1, 2^26]", o->keys_per_rank);
    else if (o->bytes_per_rank < 256 || o->bytes_per_rank > ((size_t)1 << 44))
        snprintf(why, n, "bytes_per_rank %zu must be in [256, 2^44]", o->bytes_per_rank);
    else if (o->replicas != 0 && o->replicas != 1)
        snprintf(why, n, "replicas %d must be 0 or 1", o->replicas);
    else if (o->max_bytes_per_rank && o->max_bytes_per_rank < o->bytes_per_rank)
        snprintf(why, n, "max_bytes_per_rank %zu must be 0 (no limit) or >= bytes_per_rank %zu",
                 o->max_bytes_per_rank, o->bytes_per_rank);
    else
        return 0;
    return -1;
}

void mpistore__layout_make(const mpistore_options_t *o, mpistore__layout_t *y, unsigned *shift,
                           uint32_t *max_units)
{
    unsigned sh = MS_UNIT_MIN_SHIFT;
    while ((o->bytes_per_rank >> sh) > 0xFFFFFFu)
        sh++;
    y->max_key_len = o->max_key_len;
    y->max_value_len = o->max_value_len;
    y->keys_per_rank = o->keys_per_rank;
    y->bytes_per_rank = o->bytes_per_rank;
    y->nslots = next_pow2(2 * o->keys_per_rank);
    y->probe = y->nslots < MS_PROBE_MAX ? y->nslots : MS_PROBE_MAX;
    y->nphys = y->nslots + y->probe - 1;
    y->off_ctl = MS_HEADER_BYTES;
    y->off_desc = align64(y->off_ctl + y->nphys * MS_CTL_WORDS * sizeof(uint32_t));
    y->off_cnt = align64(y->off_desc + y->nphys * sizeof(uint64_t));
    y->off_arena = align64(y->off_cnt + y->nphys * sizeof(int64_t));
    y->win_bytes = y->off_arena + ((o->bytes_per_rank >> sh) << sh);
    y->arena_bytes = y->win_bytes - y->off_arena;
    y->mirror = 0;
    if (o->replicas) { /* a mirror of the previous rank's window after this one's */
        y->mirror = align64(y->win_bytes);
        y->win_bytes = 2 * y->mirror;
    }
    y->max_keys = o->max_keys_per_rank;
    size_t mu = o->max_bytes_per_rank ? o->max_bytes_per_rank >> sh : MS_UNIT_SPACE;
    if (o->replicas) /* no segments: they would need mirrors of their own */
        mu = o->bytes_per_rank >> sh;
    if (mu > MS_UNIT_SPACE)
        mu = MS_UNIT_SPACE;
    if (mu < (o->bytes_per_rank >> sh))
        mu = o->bytes_per_rank >> sh;
    *shift = sh;
    *max_units = (uint32_t)mu;
}
