/* The cost of every operation, frozen: RMA calls and round trips that
 * mpistore_stats reports for each public operation in a fixed, uncontended
 * scenario, compared with tests/opcounts.golden.  A change of the library's
 * structure must not change these numbers (issue "Renovation"); a change
 * that means to change them regenerates the golden and says why.
 *
 * Rank 0 alone calls the store while the other ranks wait in MPI_Barrier;
 * keys are chosen by their home rank (mt_key_on): "local" keys live on rank
 * 0, "remote" keys on rank 1.  Every key name is fixed, so every probe
 * window, block size and cache state is the same in every run.  The whole
 * sequence runs twice on fresh stores and must give the same table both
 * times before it is compared with the golden's rows for this number of
 * ranks ("np<N> op scenario rma_calls round_trips").
 *
 * Golden file: OPCOUNTS_GOLDEN (set by tests/CMakeLists.txt), or the
 * environment variable MPISTORE_OPCOUNTS_GOLDEN; where the store reads with
 * requests (every cell but Open MPI's one-node default, and
 * MPISTORE_RMA_REQUESTS=1) and the home slot is not in the one-node
 * shared-memory window, OPCOUNTS_GOLDEN_RQ: there a write's first look
 * cannot claim a home slot (docs/design.md, "Inserts in two round trips"),
 * so new keys cost one round trip more.  (White-box: the test reads the
 * core's rq.use and window to choose.)  To regenerate it, run the
 * test at 1 and 2 ranks with MPISTORE_OPCOUNTS_OUT=<file>: rank 0 appends
 * its rows there instead of comparing. */
#include "mpitest.h"
#include "ops.h" /* white-box: does the store read with requests? */

#include <mpistore_elastic.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef OPCOUNTS_GOLDEN
#define OPCOUNTS_GOLDEN "opcounts.golden"
#endif
#ifndef OPCOUNTS_GOLDEN_RQ
#define OPCOUNTS_GOLDEN_RQ "opcounts_requests.golden"
#endif
#ifndef OPCOUNTS_GOLDEN_REP
#define OPCOUNTS_GOLDEN_REP "opcounts_replicas.golden"
#endif

#define MAX_ROWS 256
#define ROW_LEN 128

typedef struct table {
    char row[MAX_ROWS][ROW_LEN];
    int n;
} table_t;

static table_t *cur;        /* the table being filled */
static mpistore_t *counted; /* the store whose counters are read */
static mpistore_stats_t st_before;

static void begin(void)
{
    MT_OK(counted, mpistore_stats(counted, &st_before, true));
}

static void end(const char *op, const char *scen)
{
    mpistore_stats_t st;
    MT_OK(counted, mpistore_stats(counted, &st, true));
    if (cur->n == MAX_ROWS)
        fail_msg("more than %d rows", MAX_ROWS);
    snprintf(cur->row[cur->n++], ROW_LEN, "np%d %s %s %llu %llu", mt_size, op, scen,
             (unsigned long long)st.rma_calls, (unsigned long long)st.round_trips);
}

/* One measured call: counters reset before, read after. */
#define COUNT(h, op, scen, call)                                                                   \
    do {                                                                                           \
        begin();                                                                                   \
        MT_OK(h, call);                                                                            \
        end(op, scen);                                                                             \
    } while (0)
#define COUNT_ERR(h, code, op, scen, call)                                                         \
    do {                                                                                           \
        begin();                                                                                   \
        MT_ERR(h, code, call);                                                                     \
        end(op, scen);                                                                             \
    } while (0)

static void want_value(const void *v, size_t len, const char *want)
{
    if (len != strlen(want) || memcmp(v, want, len) != 0)
        fail_msg("value '%.*s', expected '%s'", (int)len, (const char *)v, want);
}

static const char *scen(char *buf, size_t n, const char *what, const char *where)
{
    snprintf(buf, n, "%s:%s", what, where);
    return buf;
}

/* Every key operation on keys homed on `home`, through handle h (the store,
 * a view or a clone); op names carry `via` ("" or "view." / "clone."). */
static void key_ops(mpistore_t *h, const char *via, int home, const char *where)
{
    char a[64], c[64], d[64], e[64], f[64], g[64], m[64], q[64], tag[64], op[64], sc[64];
    void *v = NULL, *vals[2] = {NULL, NULL};
    size_t len = 0, lens[2] = {0, 0};
    int64_t r = 0;
    bool b = false;
#define TAG(x) (snprintf(tag, sizeof tag, "%s" x, via), tag)
#define OP(x) (snprintf(op, sizeof op, "%s%s", via, x), op)
#define SC(x) scen(sc, sizeof sc, x, where)
    mt_key_on(h, TAG("a"), "", home, a, sizeof a);
    mt_key_on(h, TAG("c"), "", home, c, sizeof c);
    mt_key_on(h, TAG("d"), "", home, d, sizeof d);
    mt_key_on(h, TAG("e"), "", home, e, sizeof e);
    mt_key_on(h, TAG("f"), "", home, f, sizeof f);
    mt_key_on(h, TAG("g"), "", home, g, sizeof g);
    mt_key_on(h, TAG("m"), "", home, m, sizeof m); /* never written */

    COUNT(h, OP("set"), SC("new"), mpistore_set(h, a, "v1", 2));
    COUNT(h, OP("set"), SC("existing"), mpistore_set(h, a, "v1", 2));
    COUNT(h, OP("get"), SC("present"), mpistore_get(h, a, &v, &len));
    want_value(v, len, "v1");
    mpistore_free(v);
    COUNT(h, OP("add"), SC("new"), mpistore_add(h, c, 5, &r));
    assert_int_equal(r, 5);
    COUNT(h, OP("add"), SC("existing"), mpistore_add(h, c, 2, &r));
    assert_int_equal(r, 7);
    COUNT(h, OP("get"), SC("counter"), mpistore_get(h, c, &v, &len));
    want_value(v, len, "7");
    mpistore_free(v);
    COUNT(h, OP("compare_set"), SC("success"),
          mpistore_compare_set(h, a, "v1", 2, "v2", 2, &v, &len));
    want_value(v, len, "v2");
    mpistore_free(v);
    COUNT(h, OP("compare_set"), SC("mismatch"),
          mpistore_compare_set(h, a, "zz", 2, "v3", 2, &v, &len));
    want_value(v, len, "v2");
    mpistore_free(v);
    COUNT(h, OP("compare_set"), SC("missing"), mpistore_compare_set(h, d, "", 0, "n", 1, &v, &len));
    want_value(v, len, "n");
    mpistore_free(v);
    COUNT(h, OP("append"), SC("existing"), mpistore_append(h, a, "+x", 2));
    COUNT(h, OP("append"), SC("new"), mpistore_append(h, e, "e", 1));
    {
        const char *k1[] = {a}, *km[] = {m};
        COUNT(h, OP("check"), SC("present"), mpistore_check(h, k1, 1, &b));
        assert_true(b);
        COUNT(h, OP("check"), SC("missing"), mpistore_check(h, km, 1, &b));
        assert_false(b);
        COUNT(h, OP("wait"), SC("present"), mpistore_wait(h, k1, 1, MPISTORE_TIMEOUT_DEFAULT));
    }
    {
        const char *k2[] = {a, c};
        COUNT(h, OP("multi_get"), SC("2keys"), mpistore_multi_get(h, k2, 2, vals, lens));
        want_value(vals[0], lens[0], "v2+x");
        want_value(vals[1], lens[1], "7");
        mpistore_free(vals[0]);
        mpistore_free(vals[1]);
    }
    {
        const char *k2[] = {f, g};
        const void *v2[] = {"F", "G"};
        const size_t l2[] = {1, 1};
        COUNT(h, OP("multi_set"), SC("2new"), mpistore_multi_set(h, k2, v2, l2, 2));
        COUNT(h, OP("multi_set"), SC("2existing"), mpistore_multi_set(h, k2, v2, l2, 2));
    }
    COUNT(h, OP("delete_key"), SC("present"), mpistore_delete_key(h, e, &b));
    assert_true(b);
    COUNT(h, OP("delete_key"), SC("missing"), mpistore_delete_key(h, m, &b));
    assert_false(b);

    /* queues (through the store only: a view's prefix moves the queue key) */
    if (via[0] == 0) {
        mt_queue_on(h, "q", home, q, sizeof q);
        COUNT(h, "queue_push", SC("empty"), mpistore_queue_push(h, q, "1", 1));
        COUNT(h, "queue_push", SC("nonempty"), mpistore_queue_push(h, q, "2", 1));
        COUNT(h, "queue_len", SC("2"), mpistore_queue_len(h, q, &r));
        assert_int_equal(r, 2);
        COUNT(h, "queue_pop", SC("2"), mpistore_queue_pop(h, q, false, &v, &len));
        want_value(v, len, "1");
        mpistore_free(v);
        COUNT(h, "queue_pop", SC("last"), mpistore_queue_pop(h, q, true, &v, &len));
        want_value(v, len, "2");
        mpistore_free(v);
        COUNT_ERR(h, MPISTORE_EEMPTY, "queue_pop", SC("empty"),
                  mpistore_queue_pop(h, q, false, &v, &len));
        COUNT(h, "queue_len", SC("empty"), mpistore_queue_len(h, q, &r));
        assert_int_equal(r, 0);
    }
#undef TAG
#undef OP
#undef SC
}

/* The elastic helpers at world_size 1 (nobody to wait for), their counter
 * (or data key) homed on `home`. */
static void elastic_ops(mpistore_t *s, int home, const char *where)
{
    char p[64], sc[64];
    char *last = NULL;
    void *vals[1] = {NULL};
    size_t lens[1] = {0};
    mt_key_on(s, "bn", "/num_members", home, p, sizeof p);
    COUNT(s, "barrier_nonblocking", scen(sc, sizeof sc, "world1", where),
          mpistore_barrier_nonblocking(s, 1, p, &last));
    assert_non_null(last);
    mpistore_free(last);
    mt_key_on(s, "br", "/num_members", home, p, sizeof p);
    COUNT(s, "barrier", scen(sc, sizeof sc, "world1", where), mpistore_barrier(s, 0, 1, p, 60));
    mt_key_on(s, "sb", "", home, p, sizeof p); /* Store.barrier: new counter, then reused */
    COUNT(s, "store_barrier", scen(sc, sizeof sc, "new", where),
          mpistore_store_barrier(s, p, 1, 60));
    COUNT(s, "store_barrier", scen(sc, sizeof sc, "again", where),
          mpistore_store_barrier(s, p, 2, 60));
    mt_key_on(s, "sy", "0", home, p, sizeof p);
    COUNT(s, "synchronize", scen(sc, sizeof sc, "world1", where),
          mpistore_synchronize(s, "d", 1, 0, 1, p, 60, vals, lens));
    want_value(vals[0], lens[0], "d");
    mpistore_free(vals[0]);
    COUNT(s, "get_all", scen(sc, sizeof sc, "world1", where),
          mpistore_get_all(s, 0, p, 1, vals, lens));
    want_value(vals[0], lens[0], "d");
    mpistore_free(vals[0]);
}

static void store_ops(table_t *t)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.timeout_s = 60;
    mpistore_t *s = mt_open(&o);
    cur = t;
    counted = s;
    if (mt_rank == 0) {
        static const char *where[2] = {"local", "remote"};
        for (int home = 0; home < (mt_size > 1 ? 2 : 1); home++)
            key_ops(s, "", home, where[home]);
        int64_t n = 0;
        COUNT(s, "num_keys", "all", mpistore_num_keys(s, &n));
        assert_int_equal(n, mt_size > 1 ? 10 : 5); /* a c d f g per home */
        char **keys = NULL;
        size_t nk = 0;
        COUNT(s, "list_keys", "all", mpistore_list_keys(s, &keys, &nk));
        assert_int_equal(nk, (size_t)n);
        for (size_t i = 0; i < nk; i++)
            mpistore_free(keys[i]);
        mpistore_free(keys);
        if (mt_size > 1) { /* one key on each side */
            char kl[64], kr[64];
            mt_key_on(s, "a", "", 0, kl, sizeof kl);
            mt_key_on(s, "a", "", 1, kr, sizeof kr);
            const char *k2[] = {kl, kr};
            void *vals[2] = {NULL, NULL};
            size_t lens[2] = {0, 0};
            COUNT(s, "multi_get", "2keys:local+remote", mpistore_multi_get(s, k2, 2, vals, lens));
            mpistore_free(vals[0]);
            mpistore_free(vals[1]);
        }
        for (int home = 0; home < (mt_size > 1 ? 2 : 1); home++)
            elastic_ops(s, home, where[home]);

        mpistore_t *v = NULL, *c = NULL;
        MT_OK(s, mpistore_prefix(&v, s, "vw"));
        for (int home = 0; home < (mt_size > 1 ? 2 : 1); home++)
            key_ops(v, "view.", home, where[home]);
        COUNT(v, "view.list_keys", "view", mpistore_list_keys(v, &keys, &nk));
        assert_int_equal(nk, (size_t)(mt_size > 1 ? 10 : 5));
        for (size_t i = 0; i < nk; i++)
            mpistore_free(keys[i]);
        mpistore_free(keys);
        MT_OK(v, mpistore_close(v));
        MT_OK(s, mpistore_clone(&c, s));
        for (int home = 0; home < (mt_size > 1 ? 2 : 1); home++)
            key_ops(c, "clone.", home, where[home]);
        MT_OK(c, mpistore_close(c));
    }
    mt_barrier();
    mt_close(s);
}

/* A key in a grown index level: a store sized for 2 keys per rank, rank 0
 * inserts GROWN_KEYS keys homed on `home`; the last of them lives in the
 * newest level.  Then the same operations on it as on a level-0 key. */
#define GROWN_KEYS 100
static void grown_ops(table_t *t)
{
    mpistore_options_t o;
    mpistore_options_init(&o);
    o.keys_per_rank = 2;
    o.bytes_per_rank = 1024;
    o.timeout_s = 60;
    mpistore_t *s = mt_open(&o);
    cur = t;
    counted = s;
    if (mt_rank == 0) {
        static const char *where[2] = {"grown-local", "grown-remote"};
        for (int home = 0; home < (mt_size > 1 ? 2 : 1); home++) {
            char key[64], tag[32], sc[64];
            for (int i = 0; i < GROWN_KEYS; i++) {
                snprintf(tag, sizeof tag, "g%d.%d", home, i);
                mt_key_on(s, tag, "", home, key, sizeof key);
                MT_OK(s, mpistore_add(s, key, 1, NULL));
            }
            void *v = NULL;
            size_t len = 0;
            int64_t r = 0;
            COUNT(s, "get", scen(sc, sizeof sc, "counter", where[home]),
                  mpistore_get(s, key, &v, &len));
            want_value(v, len, "1");
            mpistore_free(v);
            COUNT(s, "add", scen(sc, sizeof sc, "existing", where[home]),
                  mpistore_add(s, key, 1, &r));
            assert_int_equal(r, 2);
            COUNT(s, "set", scen(sc, sizeof sc, "existing", where[home]),
                  mpistore_set(s, key, "s", 1));
            snprintf(tag, sizeof tag, "g%d.new", home);
            mt_key_on(s, tag, "", home, key, sizeof key);
            COUNT(s, "set", scen(sc, sizeof sc, "new", where[home]), mpistore_set(s, key, "n", 1));
            COUNT(s, "get", scen(sc, sizeof sc, "present", where[home]),
                  mpistore_get(s, key, &v, &len));
            want_value(v, len, "n");
            mpistore_free(v);
        }
    }
    mt_barrier();
    mt_close(s);
}

/* MPISTORE_REPLICAS=1 (every store of the run with replicas = 1, a table
 * of its own: opcounts_replicas.golden); such a store does not grow. */
static int replicas(void)
{
    const char *r = getenv("MPISTORE_REPLICAS");
    return r && strcmp(r, "1") == 0;
}

static table_t *run(void)
{
    table_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    store_ops(t);
    if (!replicas())
        grown_ops(t);
    return t;
}

static void print_table(const char *title, char (*rows)[ROW_LEN], int n)
{
    printf("%s\n%-4s %-24s %-26s %9s %11s\n", title, "np", "op", "scenario", "rma_calls",
           "round_trips");
    for (int i = 0; i < n; i++) {
        char np[16], op[48], sc[48];
        unsigned long long rma = 0, rt = 0;
        if (sscanf(rows[i], "%15s %47s %47s %llu %llu", np, op, sc, &rma, &rt) == 5)
            printf("%-4s %-24s %-26s %9llu %11llu\n", np, op, sc, rma, rt);
        else
            printf("%s\n", rows[i]);
    }
    fflush(stdout);
}

/* The golden's rows for this number of ranks, whitespace normalised. */
static int load_golden(const char *path, table_t *g)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open the golden file %s", path);
    char line[512], np[16], op[48], sc[48], want[16];
    unsigned long long rma = 0, rt = 0;
    snprintf(want, sizeof want, "np%d", mt_size);
    g->n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%15s %47s %47s %llu %llu", np, op, sc, &rma, &rt) != 5)
            continue;
        if (strcmp(np, want) != 0)
            continue;
        if (g->n == MAX_ROWS)
            fail_msg("%s: more than %d rows for %s", path, MAX_ROWS, want);
        snprintf(g->row[g->n++], ROW_LEN, "%s %s %s %llu %llu", np, op, sc, rma, rt);
    }
    fclose(f);
    return g->n;
}

static void opcounts_match_golden(void **state)
{
    (void)state;
    if (mt_size > 2)
        skip(); /* the golden has rows for 1 and 2 ranks */
    mpistore_t *probe = mt_open(NULL);
    /* requests, and a home slot's claim could be abandoned at a deadline:
     * no claims (on one node the claim completes at its call: claims) */
    int requests = probe->core->rma.rq.use && !mpistore__rma_immediate(&probe->core->rma, 0);
    mt_close(probe);
    table_t *first = run(), *second = run();
    if (mt_rank == 0) {
        assert_int_equal(first->n, second->n);
        for (int i = 0; i < first->n; i++)
            if (strcmp(first->row[i], second->row[i]) != 0)
                fail_msg("not deterministic: '%s' in the first run, '%s' in the second",
                         first->row[i], second->row[i]);
        print_table("operation counts (rank 0 alone, the others in MPI_Barrier):", first->row,
                    first->n);
        const char *out = getenv("MPISTORE_OPCOUNTS_OUT");
        if (out && out[0]) {
            FILE *f = fopen(out, "a");
            assert_non_null(f);
            for (int i = 0; i < first->n; i++)
                fprintf(f, "%s\n", first->row[i]);
            fclose(f);
            printf("rows appended to %s (not compared)\n", out);
        } else {
            const char *path = getenv("MPISTORE_OPCOUNTS_GOLDEN");
            if (!path || !path[0])
                path = replicas() ? OPCOUNTS_GOLDEN_REP
                       : requests ? OPCOUNTS_GOLDEN_RQ
                                  : OPCOUNTS_GOLDEN;
            printf("golden: %s (reads %s requests)\n", path, requests ? "with" : "without");
            table_t *g = calloc(1, sizeof *g);
            assert_non_null(g);
            load_golden(path, g);
            int bad = g->n != first->n;
            for (int i = 0; !bad && i < g->n; i++)
                bad = strcmp(g->row[i], first->row[i]) != 0;
            if (bad) {
                print_table("golden:", g->row, g->n);
                for (int i = 0; i < g->n || i < first->n; i++) {
                    const char *w = i < g->n ? g->row[i] : "(none)";
                    const char *h = i < first->n ? first->row[i] : "(none)";
                    if (strcmp(w, h) != 0)
                        printf("row %d: golden '%s', measured '%s'\n", i + 1, w, h);
                }
                fflush(stdout);
                fail_msg("operation counts differ from %s (%d golden rows for np%d, %d measured)",
                         path, g->n, mt_size, first->n);
            }
            free(g);
        }
    }
    free(first);
    free(second);
    mt_barrier();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(opcounts_match_golden),
};

MT_MAIN("opcounts", tests)
