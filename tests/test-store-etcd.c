/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The etcd backend against a real Debian etcd: one member shared by most tests, a 3-member
 * cluster for failover, a TLS member with openssl-made certificates. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib-etcd.h"
#include "macro.h"
#include "se-util.h"
#include "se-etcd.h"
#include "se-store.h"
#include "store-internal.h"
#include "testlib.h"

static tl_etcd *single;

/* SE_TEST_VERBOSE=1 shows the error messages the tests check, to review their wording. */
static void show(const char *what, const se_error *e) {
        if (getenv("SE_TEST_VERBOSE"))
                fprintf(stderr, "%s: %s\n", what, se_error_message(e));
}
static tl_etcd *tls;

static void single_setup(void) {
        single = tl_etcd_start(1);
        ck_assert_msg(single, "cannot start an etcd member");
}

static void single_teardown(void) {
        single = tl_etcd_free(single);
}

static void tls_setup(void) {
        tls = tl_etcd_start_tls();
        ck_assert_msg(tls, "cannot start a TLS etcd member");
}

static void tls_teardown(void) {
        tls = tl_etcd_free(tls);
}

static se_store *open_store_full(const char *endpoints, const char *ca, const char *cert, const char *key,
                                 uint64_t timeout_usec) {
        se_store_options o = {
                .endpoint = endpoints,
                .cafile = ca,
                .certfile = cert,
                .keyfile = key,
                .timeout_usec = timeout_usec,
        };
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        int r;

        r = se_store_open(&o, &s, &e);
        ck_assert_msg(r == 0, "open %s: %s", endpoints, se_error_message(&e));
        ck_assert_int_eq(se_store_get_kind(s), SE_STORE_ETCD);
        se_error_done(&e);
        return s;
}

static se_store *open_store(tl_etcd *c) {
        return open_store_full(c->endpoints, c->cafile, c->certfile, c->keyfile, 0);
}

static char *key_of(const char *prefix, unsigned i) {
        char *k;

        ck_assert_int_ge(asprintf(&k, "%s%05u", prefix, i), 0);
        return k;
}

/* Binary values with NUL bytes, distinct per key and generation. */
static void value_of(unsigned i, unsigned gen, uint8_t *buf, size_t n) {
        for (size_t j = 0; j < n; j++)
                buf[j] = (uint8_t) ((i * 31u + gen * 7u + j * 13u) % 251u);
        if (n > 3)
                buf[1] = 0;
}

/* Creates n keys prefix00000… with expected revision 0 through our own transactions. */
static void create_keys(se_store *s, const char *prefix, unsigned n, size_t value_size) {
        se_kv_update *u = calloc(n, sizeof(*u));
        uint8_t *vals = malloc((size_t) n * value_size);
        se_error e = SE_ERROR_NULL;
        int r;

        ck_assert_ptr_nonnull(u);
        ck_assert_ptr_nonnull(vals);
        for (unsigned i = 0; i < n; i++) {
                value_of(i, 0, vals + (size_t) i * value_size, value_size);
                u[i] = (se_kv_update){
                        .key = key_of(prefix, i),
                        .value = vals + (size_t) i * value_size,
                        .value_size = value_size,
                        .expected_mod_revision = 0,
                };
        }
        r = se_store_update(s, u, n, &e);
        ck_assert_msg(r == (int) n, "create %u keys: %d %s", n, r, se_error_message(&e));
        for (unsigned i = 0; i < n; i++) {
                ck_assert(!u[i].conflict);
                ck_assert_int_gt(u[i].new_revision, 0);
                free((char *) u[i].key);
        }
        free(u);
        free(vals);
        se_error_done(&e);
}

static void put_ctl(tl_etcd *c, const char *key, const char *value) {
        char *args, *out = NULL;

        ck_assert_int_ge(asprintf(&args, "put -- '%s' '%s'", key, value), 0);
        ck_assert_msg(tl_etcdctl(c, args, &out) == 0, "etcdctl %s: %s", args, out);
        free(args);
        free(out);
}

static char *get_ctl(tl_etcd *c, const char *key) {
        char *args, *out = NULL;
        size_t n;

        ck_assert_int_ge(asprintf(&args, "get --print-value-only -- '%s'", key), 0);
        ck_assert_msg(tl_etcdctl(c, args, &out) == 0, "etcdctl %s: %s", args, out);
        free(args);
        n = strlen(out);
        while (n > 0 && out[n - 1] == '\n')
                out[--n] = 0;
        return out;
}

static int64_t mod_rev(se_store *s, const char *key) {
        se_error e = SE_ERROR_NULL;
        se_kv kv = {};
        int64_t rev;
        int r;

        r = se_store_get(s, key, &kv, &e);
        ck_assert_msg(r == 0, "get %s: %s", key, se_error_message(&e));
        rev = kv.mod_revision;
        se_kv_done(&kv);
        return rev;
}

START_TEST(test_range_pages_and_count) {
        const char *prefix = "/registry/secrets-pages/";
        /* neighbours of the prefix on both sides, and the range end itself */
        const char *outside[] = { "/registry/secrets-pages", "/registry/secrets-pages.", "/registry/secrets-pages0",
                                  "/registry/secrets-pages0/x", "/registry/secrets-page/z" };
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        int64_t before[ELEMENTSOF(outside)];
        se_kv_list l = {};
        char *start = NULL;
        unsigned seen = 0, pages = 0;
        uint64_t count = 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(outside); i++) {
                put_ctl(single, outside[i], "keep");
                before[i] = mod_rev(s, outside[i]);
        }
        create_keys(s, prefix, 350, 64); /* three transactions of ≤ 128 */

        r = se_store_count(s, prefix, &count, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(count, 350);

        for (;;) {
                r = se_store_range(s, prefix, start, 100, &l, &e);
                ck_assert_msg(r == 0, "range: %s", se_error_message(&e));
                pages++;
                ck_assert_uint_le(l.n_items, 100);
                for (size_t i = 0; i < l.n_items; i++) {
                        char *want = key_of(prefix, seen);
                        uint8_t v[64];

                        ck_assert_str_eq(l.items[i].key, want);
                        value_of(seen, 0, v, sizeof(v));
                        ck_assert_uint_eq(l.items[i].value_size, sizeof(v));
                        ck_assert_mem_eq(l.items[i].value, v, sizeof(v));
                        ck_assert_int_gt(l.items[i].mod_revision, 0);
                        ck_assert_int_eq(l.items[i].create_revision, l.items[i].mod_revision);
                        free(want);
                        seen++;
                }
                if (!l.more)
                        break;
                ck_assert_uint_eq(l.n_items, 100);
                free(start);
                /* the next key after the last one */
                ck_assert_int_ge(asprintf(&start, "%s\x01", l.items[l.n_items - 1].key), 0);
        }
        ck_assert_uint_eq(seen, 350);
        ck_assert_uint_eq(pages, 4);

        /* start before the prefix means the prefix; start past the range means nothing */
        r = se_store_range(s, prefix, "/registry/a", 5, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, 5);
        ck_assert(l.more);
        ck_assert_str_eq(l.items[0].key, "/registry/secrets-pages/00000");
        r = se_store_range(s, prefix, "/registry/secrets-pages/00348", 0, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, 2);
        ck_assert(!l.more);
        r = se_store_range(s, prefix, "/registry/secrets-pages0", 0, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, 0);

        /* an empty prefix has no range end: "\0" = every key */
        r = se_store_count(s, "/registry/secrets-empty/", &count, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(count, 0);

        for (size_t i = 0; i < ELEMENTSOF(outside); i++) {
                char *v = get_ctl(single, outside[i]);

                ck_assert_str_eq(v, "keep");
                ck_assert_int_eq(mod_rev(s, outside[i]), before[i]);
                free(v);
        }
        se_kv_list_done(&l);
        free(start);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_get_interop_with_etcdctl) {
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv kv = {};
        se_kv_update u = {};
        char *v;
        int r;

        put_ctl(single, "/registry/secrets/ctl/a", "written by etcdctl");
        r = se_store_get(s, "/registry/secrets/ctl/a", &kv, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_str_eq(kv.key, "/registry/secrets/ctl/a");
        ck_assert_uint_eq(kv.value_size, strlen("written by etcdctl"));
        ck_assert_mem_eq(kv.value, "written by etcdctl", kv.value_size);

        u = (se_kv_update){ .key = kv.key, .value = (const uint8_t *) "ours", .value_size = 4,
                            .expected_mod_revision = kv.mod_revision };
        r = se_store_update(s, &u, 1, &e);
        ck_assert_msg(r == 1, "%d %s", r, se_error_message(&e));
        ck_assert(!u.conflict);
        ck_assert_int_gt(u.new_revision, kv.mod_revision);
        v = get_ctl(single, "/registry/secrets/ctl/a");
        ck_assert_str_eq(v, "ours");
        free(v);
        ck_assert_int_eq(mod_rev(s, "/registry/secrets/ctl/a"), u.new_revision);

        r = se_store_get(s, "/registry/secrets/ctl/missing", &kv, &e);
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "/registry/secrets/ctl/missing"));

        se_kv_done(&kv);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_cas_concurrent_writer_survives) {
        const char *key = "/registry/secrets/cas/one";
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv kv = {};
        se_kv_update u;
        char *v;
        int r;

        put_ctl(single, key, "v1");
        r = se_store_get(s, key, &kv, &e);
        ck_assert_int_eq(r, 0);

        /* an API server writes between our read and our update */
        put_ctl(single, key, "theirs");
        u = (se_kv_update){ .key = key, .value = (const uint8_t *) "reencrypted-v1", .value_size = 14,
                            .expected_mod_revision = kv.mod_revision };
        r = se_store_update(s, &u, 1, &e);
        ck_assert_msg(r == 0, "%d %s", r, se_error_message(&e));
        ck_assert(u.conflict);
        ck_assert_int_eq(u.new_revision, 0);
        v = get_ctl(single, key);
        ck_assert_str_eq(v, "theirs");
        free(v);

        /* create-if-absent on an existing key conflicts too */
        u = (se_kv_update){ .key = key, .value = (const uint8_t *) "x", .value_size = 1 };
        r = se_store_update(s, &u, 1, &e);
        ck_assert_int_eq(r, 0);
        ck_assert(u.conflict);

        /* re-read, then the update goes through */
        se_kv_done(&kv);
        r = se_store_get(s, key, &kv, &e);
        ck_assert_int_eq(r, 0);
        u = (se_kv_update){ .key = key, .value = (const uint8_t *) "reencrypted-theirs", .value_size = 18,
                            .expected_mod_revision = kv.mod_revision };
        r = se_store_update(s, &u, 1, &e);
        ck_assert_int_eq(r, 1);
        ck_assert(!u.conflict);
        v = get_ctl(single, key);
        ck_assert_str_eq(v, "reencrypted-theirs");
        free(v);

        se_kv_done(&kv);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_batch_with_one_conflict) {
        const char *prefix = "/registry/secrets/batch/";
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv_update u[10];
        char *conflicting;
        int r;

        create_keys(s, prefix, 10, 32);
        r = se_store_range(s, prefix, NULL, 0, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, 10);

        conflicting = key_of(prefix, 5);
        put_ctl(single, conflicting, "concurrent");

        for (size_t i = 0; i < 10; i++)
                u[i] = (se_kv_update){ .key = l.items[i].key, .value = (const uint8_t *) "new", .value_size = 3,
                                       .expected_mod_revision = l.items[i].mod_revision };
        r = se_store_update(s, u, 10, &e);
        ck_assert_msg(r == 9, "%d %s", r, se_error_message(&e));
        for (size_t i = 0; i < 10; i++) {
                char *v = get_ctl(single, l.items[i].key);

                if (i == 5) {
                        ck_assert(u[i].conflict);
                        ck_assert_str_eq(v, "concurrent");
                } else {
                        ck_assert(!u[i].conflict);
                        ck_assert_str_eq(v, "new");
                        ck_assert_int_eq(u[i].new_revision, u[0].new_revision); /* one transaction */
                }
                free(v);
        }

        /* the same key twice in one call: the second one's revision is stale by then */
        {
                int64_t rev = mod_rev(s, l.items[0].key);
                se_kv_update d[2] = {
                        { .key = l.items[0].key, .value = (const uint8_t *) "d1", .value_size = 2,
                          .expected_mod_revision = rev },
                        { .key = l.items[0].key, .value = (const uint8_t *) "d2", .value_size = 2,
                          .expected_mod_revision = rev },
                };
                char *v;

                r = se_store_update(s, d, 2, &e);
                ck_assert_msg(r == 1, "%d %s", r, se_error_message(&e));
                ck_assert(!d[0].conflict);
                ck_assert(d[1].conflict);
                v = get_ctl(single, l.items[0].key);
                ck_assert_str_eq(v, "d1");
                free(v);
        }

        free(conflicting);
        se_kv_list_done(&l);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

/* The concurrent writer of test_in_flight_conflicts: get + compare-and-swap each of its keys
 * until its own value is in, so it always ends up last. */
typedef struct writer_args {
        const char *endpoints;
        char **keys;
        size_t n;
        int64_t *rev; /* out: the revision of the writer's value */
        int result;
} writer_args;

static void *writer_main(void *p) {
        writer_args *w = p;
        se_store_options o = { .endpoint = w->endpoints };
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;

        w->result = se_store_open(&o, &s, &e);
        for (size_t i = 0; w->result >= 0 && i < w->n; i++)
                for (;;) {
                        se_kv kv = {};
                        se_kv_update u;
                        int r;

                        r = se_store_get(s, w->keys[i], &kv, &e);
                        if (r < 0) {
                                w->result = r;
                                break;
                        }
                        u = (se_kv_update){ .key = w->keys[i], .value = (const uint8_t *) "writer", .value_size = 6,
                                            .expected_mod_revision = kv.mod_revision };
                        se_kv_done(&kv);
                        r = se_store_update(s, &u, 1, &e);
                        if (r < 0) {
                                w->result = r;
                                break;
                        }
                        if (r == 1) {
                                w->rev[i] = u.new_revision;
                                break;
                        }
                }
        se_store_close(s);
        se_error_done(&e);
        return NULL;
}

/* An update of 700 keys is six txns, four in flight at once. Keys changed before it (stale
 * revisions in several txns) and by a writer racing with it keep their per-key outcome: the
 * other writer's value wins, our update counts it as a conflict unless ours landed first, and
 * nothing else is lost. */
START_TEST(test_in_flight_conflicts) {
        const char *prefix = "/registry/secrets/inflight/";
        enum { N = 700, N_WRITER = 60 };
        static const unsigned planted[] = { 3, 130, 200, 390, 520, 699 };
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv_update *u = calloc(N, sizeof(*u));
        char *wkeys[N_WRITER];
        int64_t wrev[N_WRITER] = {};
        writer_args w = { .endpoints = single->endpoints, .keys = wkeys, .n = N_WRITER, .rev = wrev };
        uint8_t value[1000];
        pthread_t th;
        size_t conflicts = 0;
        int r, written;

        ck_assert_ptr_nonnull(u);
        create_keys(s, prefix, N, 100);
        r = se_store_range(s, prefix, NULL, N, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, N);
        for (size_t i = 0; i < ELEMENTSOF(planted); i++) {
                char *k = key_of(prefix, planted[i]);

                put_ctl(single, k, "before");
                free(k);
        }
        /* the writer takes every tenth key from 100 on: spread over the txns in flight */
        for (size_t i = 0; i < N_WRITER; i++)
                wkeys[i] = key_of(prefix, 100 + 10 * (unsigned) i);
        memset(value, 'n', sizeof(value));
        for (size_t i = 0; i < N; i++)
                u[i] = (se_kv_update){ .key = l.items[i].key, .value = value, .value_size = sizeof(value),
                                       .expected_mod_revision = l.items[i].mod_revision };

        ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
        written = se_store_update(s, u, N, &e);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_msg(written >= 0, "%d %s", written, se_error_message(&e));
        ck_assert_msg(w.result >= 0, "writer: %d", w.result);

        for (size_t i = 0; i < N; i++) {
                se_kv kv = {};
                bool by_writer = false, by_planting = false;
                int64_t writer_rev = 0;

                for (size_t k = 0; k < N_WRITER; k++)
                        if (streq(wkeys[k], u[i].key)) {
                                by_writer = true;
                                writer_rev = wrev[k];
                        }
                for (size_t k = 0; k < ELEMENTSOF(planted); k++)
                        by_planting = by_planting || planted[k] == i;
                r = se_store_get(s, u[i].key, &kv, &e);
                ck_assert_msg(r == 0, "%s", se_error_message(&e));
                if (u[i].conflict)
                        conflicts++;
                if (by_writer) {
                        /* the writer's value is never lost; ours either conflicted or came first */
                        ck_assert_int_eq(kv.value_size, 6);
                        ck_assert_mem_eq(kv.value, "writer", 6);
                        ck_assert_int_eq(kv.mod_revision, writer_rev);
                        if (!u[i].conflict)
                                ck_assert_int_lt(u[i].new_revision, writer_rev);
                        else
                                ck_assert_int_eq(u[i].new_revision, 0);
                } else if (by_planting) {
                        ck_assert_msg(u[i].conflict, "key %zu: a stale revision was not a conflict", i);
                        ck_assert_int_eq(kv.value_size, 6);
                        ck_assert_mem_eq(kv.value, "before", 6);
                } else {
                        ck_assert_msg(!u[i].conflict, "key %zu: a conflict nobody caused", i);
                        ck_assert_int_eq(kv.value_size, sizeof(value));
                        ck_assert_mem_eq(kv.value, value, sizeof(value));
                        ck_assert_int_eq(kv.mod_revision, u[i].new_revision);
                }
                se_kv_done(&kv);
        }
        ck_assert_int_eq(written, N - (int) conflicts);
        ck_assert_uint_ge(conflicts, ELEMENTSOF(planted));
        for (size_t i = 0; i < N_WRITER; i++)
                free(wkeys[i]);
        free(u);
        se_kv_list_done(&l);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

typedef struct killer_args {
        tl_etcd *c;
        unsigned delay_ms;
} killer_args;

static void *killer_main(void *p) {
        killer_args *k = p;

        (void) usleep(k->delay_ms * 1000u);
        (void) kill(k->c->members[0].pid, SIGKILL);
        return NULL;
}

/* The only member stops answering with several txns of one update sent to it, then dies: the
 * update fails with an "unavailable" error, never a partial success. */
START_TEST(test_in_flight_server_failure) {
        const char *prefix = "/registry/secrets/inflight-fail/";
        enum { N = 600 };
        tl_etcd *c = tl_etcd_start(1);
        se_store *s;
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv_update *u = calloc(N, sizeof(*u));
        killer_args k;
        pthread_t th;
        int r;

        ck_assert_msg(c, "cannot start an etcd member");
        ck_assert_ptr_nonnull(u);
        s = open_store_full(c->endpoints, NULL, NULL, NULL, 3 * 1000000ULL);
        create_keys(s, prefix, N, 100);
        r = se_store_range(s, prefix, NULL, N, &l, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(l.n_items, N);
        for (size_t i = 0; i < N; i++)
                u[i] = (se_kv_update){ .key = l.items[i].key, .value = (const uint8_t *) "lost?", .value_size = 5,
                                       .expected_mod_revision = l.items[i].mod_revision };

        /* stopped: the requests are accepted by the kernel and wait; then the member dies */
        ck_assert(tl_etcd_pause(c, 0));
        k = (killer_args){ .c = c, .delay_ms = 500 };
        ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
        r = se_store_update(s, u, N, &e);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        show("member died with txns in flight", &e);
        ck_assert_msg(r < 0 && se_errno_is_unavailable(r), "%d %s", r, se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), c->members[0].client_url), "%s", se_error_message(&e));

        free(u);
        se_kv_list_done(&l);
        se_error_done(&e);
        se_store_close(s);
        tl_etcd_free(c);
}
END_TEST

/* An update of the keys of other, all outside the range read ahead, with two txns in flight:
 * it drives the read ahead to its answer. */
static void ahead_drive(se_store *s, se_kv_list *other, const se_kv_update *extra) {
        se_kv_update u[130];
        se_error e = SE_ERROR_NULL;
        size_t n = other->n_items;
        int r;

        ck_assert_uint_eq(n, 129);
        for (size_t i = 0; i < n; i++)
                u[i] = (se_kv_update){ .key = other->items[i].key, .value = (const uint8_t *) "x", .value_size = 1,
                                       .expected_mod_revision = other->items[i].mod_revision };
        if (extra)
                u[n++] = *extra;
        r = se_store_update(s, u, n, &e);
        ck_assert_msg(r == (int) n, "%d %s", r, se_error_message(&e));
        for (size_t i = 0; i < other->n_items; i++)
                other->items[i].mod_revision = u[i].new_revision;
}

/* se_store_read_ahead(): the range sent early answers the range asked next, unless something
 * this client did in between could have changed or seen what it covers. */
START_TEST(test_read_ahead) {
        const char *prefix = "/registry/secrets/ahead/", *other_prefix = "/registry/secrets/ahead-other/";
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv_list plain = {}, l = {}, other = {};
        se_kv kv = {};
        se_kv_update own;
        char *k5 = key_of(prefix, 5), *k50 = key_of(prefix, 50);
        int r;

        create_keys(s, prefix, 100, 16);
        create_keys(s, other_prefix, 129, 8);
        r = se_store_range(s, other_prefix, NULL, 0, &other, &e);
        ck_assert_int_eq(r, 0);
        r = se_store_range(s, prefix, k5, 100, &plain, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(plain.n_items, 95);

        /* the early answer is the usual one */
        se_store_read_ahead(s, prefix, k5, 100);
        ahead_drive(s, &other, NULL);
        r = se_store_range(s, prefix, k5, 100, &l, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(l.n_items, plain.n_items);
        for (size_t i = 0; i < l.n_items; i++) {
                ck_assert_str_eq(l.items[i].key, plain.items[i].key);
                ck_assert_int_eq(l.items[i].mod_revision, plain.items[i].mod_revision);
        }

        /* our own write into the range is seen */
        se_store_read_ahead(s, prefix, k5, 100);
        own = (se_kv_update){ .key = k50, .value = (const uint8_t *) "own", .value_size = 3,
                              .expected_mod_revision = l.items[45].mod_revision };
        ck_assert_str_eq(l.items[45].key, k50);
        ahead_drive(s, &other, &own);
        r = se_store_range(s, prefix, k5, 100, &l, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        tl_ck_range_value(&l, k50, "own");

        /* another request in between drops it: what that one saw, the range sees too */
        se_store_read_ahead(s, prefix, k5, 100);
        ahead_drive(s, &other, NULL);
        put_ctl(single, k50, "seen by get");
        r = se_store_get(s, k50, &kv, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_mem_eq(kv.value, "seen by get", 11);
        r = se_store_range(s, prefix, k5, 100, &l, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        tl_ck_range_value(&l, k50, "seen by get");

        /* a range with other arguments is read the usual way */
        se_store_read_ahead(s, prefix, k5, 100);
        ahead_drive(s, &other, NULL);
        r = se_store_range(s, prefix, k50, 3, &l, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(l.n_items, 3);
        ck_assert_str_eq(l.items[0].key, k50);

        free(k5);
        free(k50);
        se_kv_done(&kv);
        se_kv_list_done(&plain);
        se_kv_list_done(&l);
        se_kv_list_done(&other);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_large_values_split_batches) {
        const char *prefix = "/registry/secrets/large/";
        enum { N = 300, SIZE = 8192 };
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        uint8_t *big;
        se_kv_update u = {};
        size_t total = 0;
        char *start = NULL;
        int r;

        /* 300 × 8 KiB = 2.4 MiB: more than one request may carry (--max-request-bytes 1.5 MiB) */
        create_keys(s, prefix, N, SIZE);
        for (;;) {
                r = se_store_range(s, prefix, start, 0, &l, &e);
                ck_assert_msg(r == 0, "%s", se_error_message(&e));
                for (size_t i = 0; i < l.n_items; i++)
                        ck_assert_uint_eq(l.items[i].value_size, SIZE);
                total += l.n_items;
                if (!l.more)
                        break;
                free(start);
                ck_assert_int_ge(asprintf(&start, "%s\x01", l.items[l.n_items - 1].key), 0);
        }
        ck_assert_uint_eq(total, N);

        /* a single value above etcd's request limit: etcd's own error, kept in the message */
        big = calloc(1, 1700 * 1024);
        ck_assert_ptr_nonnull(big);
        u = (se_kv_update){ .key = "/registry/secrets/large/huge", .value = big, .value_size = 1700 * 1024 };
        r = se_store_update(s, &u, 1, &e);
        ck_assert_msg(r == -EINVAL, "%d %s", r, se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), "request is too large"), "%s", se_error_message(&e));
        show("too large", &e);
        ck_assert_msg(strstr(se_error_message(&e), single->members[0].client_url), "%s", se_error_message(&e));
        free(big);

        free(start);
        se_kv_list_done(&l);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_single_key_helpers_and_leases) {
        const char *key = "/secrets-encrypt/test/lock";
        se_store *s = open_store(single);
        se_error e = SE_ERROR_NULL;
        int64_t rev = 0, rev2 = 0, cur = 0, lease = 0, ttl = 0;
        se_kv kv = {};
        int r;

        r = se_etcd_put_cas(s, key, "a", 1, 0, &rev, &e);
        ck_assert_msg(r == 1, "%d %s", r, se_error_message(&e));
        ck_assert_int_gt(rev, 0);
        r = se_etcd_put_cas_lease(s, key, "b", 1, 0, 0, &rev2, &cur, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(cur, rev);
        r = se_etcd_put_cas(s, key, "c", 1, rev, &rev2, &e);
        ck_assert_int_eq(r, 1);
        ck_assert_int_gt(rev2, rev);
        r = se_etcd_delete_cas(s, key, rev, &e);
        ck_assert_int_eq(r, 0);
        r = se_etcd_delete_cas(s, key, rev2, &e);
        ck_assert_int_eq(r, 1);
        r = se_store_get(s, key, &kv, &e);
        ck_assert_int_eq(r, -ENOENT);

        r = se_etcd_lease_grant(s, 30, &lease, &ttl, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_int_ne(lease, 0);
        ck_assert_int_gt(ttl, 0);
        r = se_etcd_put_cas_lease(s, key, "held", 4, 0, lease, &rev, NULL, &e);
        ck_assert_msg(r == 1, "%d %s", r, se_error_message(&e));
        ttl = 0;
        r = se_etcd_lease_keepalive(s, lease, &ttl, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_int_gt(ttl, 0);
        r = se_etcd_lease_revoke(s, lease, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        r = se_store_get(s, key, &kv, &e);
        ck_assert_int_eq(r, -ENOENT); /* the key went with its lease */
        r = se_etcd_lease_keepalive(s, lease, &ttl, &e);
        ck_assert_int_eq(r, -ENOENT);
        r = se_etcd_lease_revoke(s, lease, &e);
        ck_assert_int_eq(r, 0);
        /* a lease that never existed cannot carry a key */
        r = se_etcd_put_cas_lease(s, key, "x", 1, 0, 12345, &rev, NULL, &e);
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_msg(strstr(se_error_message(&e), "lease not found"), "%s", se_error_message(&e));

        ck_assert_str_eq(se_etcd_current_endpoint(s), single->members[0].client_url);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_helpers_refuse_other_stores) {
        se_store fake = { .ops = &se_store_kine_ops };
        se_error e = SE_ERROR_NULL;
        int64_t x;

        ck_assert_int_eq(se_etcd_put_cas(&fake, "/k", "v", 1, 0, &x, &e), -EOPNOTSUPP);
        ck_assert_int_eq(se_etcd_delete_cas(&fake, "/k", 1, &e), -EOPNOTSUPP);
        ck_assert_int_eq(se_etcd_lease_grant(&fake, 10, &x, NULL, &e), -EOPNOTSUPP);
        ck_assert_int_eq(se_etcd_lease_keepalive(&fake, 1, &x, &e), -EOPNOTSUPP);
        ck_assert_int_eq(se_etcd_lease_revoke(&fake, 1, &e), -EOPNOTSUPP);
        ck_assert_ptr_null(se_etcd_current_endpoint(&fake));
        se_error_done(&e);
}
END_TEST

START_TEST(test_not_a_gateway) {
        /* the peer port speaks HTTP but has no /v3/kv/range */
        se_store *s = open_store_full(single->members[0].peer_url, NULL, NULL, NULL, 0);
        se_error e = SE_ERROR_NULL;
        uint64_t n;
        int r;

        r = se_store_count(s, "/registry/secrets/", &n, &e);
        ck_assert_int_eq(r, -EOPNOTSUPP);
        ck_assert_msg(strstr(se_error_message(&e), "HTTP 404"), "%s", se_error_message(&e));
        show("peer port", &e);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_bad_endpoints_rejected) {
        const char *bad[] = { "http://", "ftp://x:1", "http://127.0.0.1:1,,", "https://a:1, tcp://b:2" };
        se_error e = SE_ERROR_NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                se_store_options o = { .endpoint = bad[i] };
                se_store *s = NULL;
                int r = se_store_open(&o, &s, &e);

                ck_assert_msg(r == -EINVAL, "%s accepted (%d)", bad[i], r);
                ck_assert_ptr_null(s);
        }
        {
                se_store_options o = { .endpoint = "https://127.0.0.1:1", .cafile = "/nonexistent/ca.crt" };
                se_store *s = NULL;

                ck_assert_int_eq(se_store_open(&o, &s, &e), -ENOENT);
                ck_assert_ptr_nonnull(strstr(se_error_message(&e), "datastore-cafile /nonexistent/ca.crt"));
        }
        se_error_done(&e);
}
END_TEST

/* http:// only when the caller allows it, and then (settings' datastore-allow-plain-http) only
 * on loopback; TLS files with http:// are an error, not silently ignored. */
START_TEST(test_plain_http_policy) {
        const char *loopback[] = { "http://127.0.0.1:1", "http://127.3.4.5:1", "http://[::1]:1", "http://localhost:1",
                                   "http://LOCALHOST:1/", "http://u:p@127.0.0.1:1", "https://10.0.0.1:1,http://127.0.0.1:1" };
        const char *remote[] = { "http://10.0.0.1:2379", "http://127.example.com:1", "http://localhost.example.com:1",
                                 "http://128.0.0.1:1", "http://[::2]:1", "http://127.0.0.1@10.0.0.1:1",
                                 "https://127.0.0.1:1,http://10.0.0.1:1" };
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;

        for (size_t i = 0; i < ELEMENTSOF(loopback); i++) {
                se_store_options o = { .endpoint = loopback[i], .plain_http = SE_PLAIN_HTTP_LOOPBACK };

                ck_assert_msg(se_store_open(&o, &s, &e) == 0, "%s: %s", loopback[i], se_error_message(&e));
                s = se_store_close(s);
                o.plain_http = SE_PLAIN_HTTP_REFUSE;
                ck_assert_int_eq(se_store_open(&o, &s, &e), -EINVAL);
                ck_assert_msg(strstr(se_error_message(&e), "datastore-allow-plain-http: true"), "%s",
                              se_error_message(&e));
                ck_assert_msg(!strstr(se_error_message(&e), "u:p@"), "%s", se_error_message(&e));
                show("refused", &e);
        }
        for (size_t i = 0; i < ELEMENTSOF(remote); i++) {
                se_store_options o = { .endpoint = remote[i], .plain_http = SE_PLAIN_HTTP_LOOPBACK };

                ck_assert_msg(se_store_open(&o, &s, &e) == -EINVAL, "%s accepted", remote[i]);
                ck_assert_msg(strstr(se_error_message(&e), "only 127.0.0.0/8"), "%s", se_error_message(&e));
                show("remote", &e);
        }
        /* https is never affected */
        {
                se_store_options o = { .endpoint = "https://10.0.0.1:1", .plain_http = SE_PLAIN_HTTP_REFUSE };

                ck_assert_int_eq(se_store_open(&o, &s, &e), 0);
                s = se_store_close(s);
        }
        /* cert/key/CA settings with http:// would be ignored: an error, whatever the policy */
        {
                se_store_options o = { .endpoint = "http://127.0.0.1:1", .certfile = "/etc/hostname" };

                ck_assert_int_eq(se_store_open(&o, &s, &e), -EINVAL);
                ck_assert_msg(strstr(se_error_message(&e), "datastore-certfile is set but"), "%s",
                              se_error_message(&e));
                o = (se_store_options){ .endpoint = "https://127.0.0.1:1,http://127.0.0.1:2", .cafile = "/etc/hostname" };
                ck_assert_int_eq(se_store_open(&o, &s, &e), -EINVAL);
                ck_assert_msg(strstr(se_error_message(&e), "datastore-cafile is set but"), "%s", se_error_message(&e));
        }
        se_error_done(&e);
}
END_TEST

/* user:password@ in an endpoint never reaches a message. */
START_TEST(test_userinfo_never_echoed) {
        const char *eps[] = { "ftp://admin:s3cret@127.0.0.1:1", "http://admin:s3cret@10.0.0.1:1",
                              "https://admin:s3cret@127.0.0.1:1" };
        se_error e = SE_ERROR_NULL;
        char *shown;
        se_kv kv = {};

        for (size_t i = 0; i < ELEMENTSOF(eps); i++) {
                se_store_options o = { .endpoint = eps[i], .plain_http = SE_PLAIN_HTTP_REFUSE, .timeout_usec = 1000000 };
                se_store *s = NULL;
                int r = se_store_open(&o, &s, &e);

                if (r >= 0) {
                        r = se_store_get(s, "/registry/x", &kv, &e);
                        se_store_close(s);
                }
                ck_assert_int_lt(r, 0);
                show("userinfo", &e);
                ck_assert_msg(!strstr(se_error_message(&e), "s3cret") && !strstr(se_error_message(&e), "admin"),
                              "%s: %s", eps[i], se_error_message(&e));
                ck_assert_msg(strstr(se_error_message(&e), "127.0.0.1:1") || strstr(se_error_message(&e), "10.0.0.1:1"),
                              "%s", se_error_message(&e));
        }
        shown = se_url_strip_userinfo("https://a:b@h1:2379/x@y,http://h2:1, https://c@[::1]:3");
        ck_assert_str_eq(shown, "https://h1:2379/x@y,http://h2:1, https://[::1]:3");
        free(shown);
        se_error_done(&e);
}
END_TEST

/* Two loopback ports nobody listens on. */
static char *dead_endpoints(void) {
        char *list;
        int ports[2], fds[2];

        for (size_t i = 0; i < 2; i++) {
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof(a);

                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ck_assert_int_ge(fds[i], 0);
                ck_assert_int_eq(bind(fds[i], (struct sockaddr *) &a, sizeof(a)), 0);
                ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *) &a, &len), 0);
                ports[i] = ntohs(a.sin_port);
        }
        close(fds[0]);
        close(fds[1]);
        ck_assert_int_ge(asprintf(&list, "http://127.0.0.1:%d, http://127.0.0.1:%d/", ports[0], ports[1]), 0);
        return list;
}

START_TEST(test_unreachable_endpoints) {
        char *list = dead_endpoints();
        se_store *s = open_store_full(list, NULL, NULL, NULL, 2 * 1000000ULL);
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv_update u = { .key = "/registry/secrets/x", .value = (const uint8_t *) "v", .value_size = 1 };
        const char *m;
        char *first;
        int r;

        r = se_store_range(s, "/registry/secrets/", NULL, 0, &l, &e);
        ck_assert_int_eq(r, -ECONNREFUSED);
        ck_assert(se_errno_is_unavailable(r));
        ck_assert_int_eq(se_exit_code_from_errno(r), SE_EXIT_UNAVAILABLE);
        m = se_error_message(&e);
        show("unreachable", &e);
        ck_assert_msg(strstr(m, "no etcd endpoint answered"), "%s", m);
        first = strndup(list, strchr(list, ',') - list);
        ck_assert_msg(strstr(m, first), "%s", m);
        ck_assert_msg(strstr(m, "onnect"), "%s", m); /* curl's "Failed to connect…" / "Couldn't connect" */

        r = se_store_update(s, &u, 1, &e);
        ck_assert_int_eq(r, -ECONNREFUSED);
        ck_assert(!u.conflict);

        free(first);
        free(list);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_cluster_failover) {
        const char *prefix = "/registry/secrets/failover/";
        tl_etcd *c = tl_etcd_start(3);
        se_store *s;
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv_update *u;
        char *start = NULL, *list = NULL;
        uint64_t count;
        int victim, second, r;
        size_t total = 0;

        ck_assert_msg(c, "cannot start a 3-member cluster");
        /* one dead URL first: skipped on the way to a live one */
        {
                char *dead = dead_endpoints();

                *strchr(dead, ',') = 0;
                ck_assert_int_ge(asprintf(&list, "%s,%s", dead, c->endpoints), 0);
                free(dead);
        }
        s = open_store_full(list, NULL, NULL, NULL, 10 * 1000000ULL);
        create_keys(s, prefix, 200, 128);
        ck_assert_int_eq(tl_etcd_member_by_url(c, se_etcd_current_endpoint(s)), 0);

        /* a member that hangs (SIGSTOP): the request times out there and moves on */
        {
                se_store *s3 = open_store_full(c->endpoints, NULL, NULL, NULL, 2 * 1000000ULL);
                uint64_t n = 0;

                r = se_store_count(s3, prefix, &n, &e);
                ck_assert_msg(r == 0, "%s", se_error_message(&e));
                ck_assert_int_eq(tl_etcd_member_by_url(c, se_etcd_current_endpoint(s3)), 0);
                ck_assert(tl_etcd_pause(c, 0));
                n = 0;
                r = se_store_count(s3, prefix, &n, &e);
                (void) kill(c->members[0].pid, SIGCONT);
                ck_assert_msg(r == 0, "count with a hung member: %s", se_error_message(&e));
                ck_assert_uint_eq(n, 200);
                ck_assert_int_ne(tl_etcd_member_by_url(c, se_etcd_current_endpoint(s3)), 0);
                se_store_close(s3);
        }

        /* first page, then the member we talk to dies mid-run */
        r = se_store_range(s, prefix, NULL, 50, &l, &e);
        ck_assert_int_eq(r, 0);
        total += l.n_items;
        ck_assert_int_ge(asprintf(&start, "%s\x01", l.items[l.n_items - 1].key), 0);
        victim = tl_etcd_member_by_url(c, se_etcd_current_endpoint(s));
        ck_assert_int_ge(victim, 0);
        tl_etcd_kill(c, (size_t) victim);

        for (;;) {
                r = se_store_range(s, prefix, start, 50, &l, &e);
                ck_assert_msg(r == 0, "range after kill: %s", se_error_message(&e));
                total += l.n_items;
                if (!l.more)
                        break;
                free(start);
                ck_assert_int_ge(asprintf(&start, "%s\x01", l.items[l.n_items - 1].key), 0);
        }
        ck_assert_uint_eq(total, 200);
        ck_assert_int_ne(tl_etcd_member_by_url(c, se_etcd_current_endpoint(s)), victim);

        /* writes go through the survivors */
        r = se_store_range(s, prefix, NULL, 200, &l, &e);
        ck_assert_int_eq(r, 0);
        u = calloc(l.n_items, sizeof(*u));
        for (size_t i = 0; i < l.n_items; i++)
                u[i] = (se_kv_update){ .key = l.items[i].key, .value = (const uint8_t *) "after", .value_size = 5,
                                       .expected_mod_revision = l.items[i].mod_revision };
        r = se_store_update(s, u, l.n_items, &e);
        ck_assert_msg(r == 200, "%d %s", r, se_error_message(&e));
        free(u);
        r = se_store_count(s, prefix, &count, &e);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(count, 200);

        /* a fresh store whose first listed member is the dead one */
        {
                se_store *s2;
                se_kv kv = {};
                char *list2;

                ck_assert_int_ge(asprintf(&list2, "%s,%s", c->members[victim].client_url, c->endpoints), 0);
                s2 = open_store_full(list2, NULL, NULL, NULL, 10 * 1000000ULL);
                r = se_store_get(s2, l.items[0].key, &kv, &e);
                ck_assert_msg(r == 0, "%s", se_error_message(&e));
                ck_assert_mem_eq(kv.value, "after", 5);
                se_kv_done(&kv);
                se_store_close(s2);
                free(list2);
        }

        /* lose quorum: still a clear "unavailable" class error, within the timeout */
        second = tl_etcd_member_by_url(c, se_etcd_current_endpoint(s));
        ck_assert_int_ge(second, 0);
        tl_etcd_kill(c, (size_t) second);
        se_store_close(s);
        s = open_store_full(c->endpoints, NULL, NULL, NULL, 3 * 1000000ULL);
        r = se_store_count(s, prefix, &count, &e);
        ck_assert_msg(r < 0 && se_errno_is_unavailable(r), "%d %s", r, se_error_message(&e));
        show("quorum lost", &e);

        se_store_close(s);
        se_kv_list_done(&l);
        se_error_done(&e);
        free(start);
        free(list);
        tl_etcd_free(c);
}
END_TEST

START_TEST(test_tls_with_certificates) {
        se_store *s = open_store(tls);
        se_error e = SE_ERROR_NULL;
        se_kv kv = {};
        se_kv_update u = { .key = "/registry/secrets/tls/a", .value = (const uint8_t *) "over tls", .value_size = 8 };
        int r;

        ck_assert(startswith(tls->endpoints, "https://"));
        /* three txns in flight over TLS (HTTP/2 when the server offers it) */
        create_keys(s, "/registry/secrets/tls/many/", 300, 64);
        r = se_store_update(s, &u, 1, &e);
        ck_assert_msg(r == 1, "%d %s", r, se_error_message(&e));
        r = se_store_get(s, u.key, &kv, &e);
        ck_assert_msg(r == 0, "%s", se_error_message(&e));
        ck_assert_mem_eq(kv.value, "over tls", 8);
        se_kv_done(&kv);
        se_error_done(&e);
        se_store_close(s);
}
END_TEST

START_TEST(test_tls_without_ca_fails_clearly) {
        se_store *s = open_store_full(tls->endpoints, NULL, tls->certfile, tls->keyfile, 5 * 1000000ULL);
        se_error e = SE_ERROR_NULL;
        uint64_t n;
        int r;

        r = se_store_count(s, "/registry/secrets/", &n, &e);
        ck_assert_msg(r == -EPROTO, "%d %s", r, se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), "certificate"), "%s", se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), "datastore-cafile"), "%s", se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), tls->members[0].client_url), "%s", se_error_message(&e));
        ck_assert(!se_errno_is_unavailable(r));
        show("no CA", &e);
        se_store_close(s);

        /* the right CA but no client certificate: the server refuses us */
        s = open_store_full(tls->endpoints, tls->cafile, NULL, NULL, 5 * 1000000ULL);
        r = se_store_count(s, "/registry/secrets/", &n, &e);
        ck_assert_msg(r == -EPROTO, "counted without a client certificate (%d)", r);
        ck_assert_msg(strstr(se_error_message(&e), "datastore-certfile"), "%s", se_error_message(&e));
        show("no client certificate", &e);
        ck_assert_msg(strstr(se_error_message(&e), tls->members[0].client_url), "%s", se_error_message(&e));
        se_store_close(s);

        se_error_done(&e);
}
END_TEST

static Suite *store_etcd_suite(void) {
        Suite *s = suite_create("store-etcd");
        TCase *tc;

        tc = tcase_create("offline");
        tcase_add_test(tc, test_helpers_refuse_other_stores);
        tcase_add_test(tc, test_bad_endpoints_rejected);
        tcase_add_test(tc, test_plain_http_policy);
        tcase_add_test(tc, test_userinfo_never_echoed);
        tcase_add_test(tc, test_unreachable_endpoints);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);

        if (!tl_etcd_available()) {
                fprintf(stderr, "etcd not installed: etcd tests fail\n");
        }

        tc = tcase_create("single");
        tcase_add_unchecked_fixture(tc, single_setup, single_teardown);
        tcase_add_test(tc, test_range_pages_and_count);
        tcase_add_test(tc, test_get_interop_with_etcdctl);
        tcase_add_test(tc, test_cas_concurrent_writer_survives);
        tcase_add_test(tc, test_batch_with_one_conflict);
        tcase_add_test(tc, test_in_flight_conflicts);
        tcase_add_test(tc, test_read_ahead);
        tcase_add_test(tc, test_large_values_split_batches);
        tcase_add_test(tc, test_single_key_helpers_and_leases);
        tcase_add_test(tc, test_not_a_gateway);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        tc = tcase_create("cluster");
        tcase_add_test(tc, test_cluster_failover);
        tcase_add_test(tc, test_in_flight_server_failure);
        tcase_set_timeout(tc, 180);
        suite_add_tcase(s, tc);

        tc = tcase_create("tls");
        tcase_add_unchecked_fixture(tc, tls_setup, tls_teardown);
        tcase_add_test(tc, test_tls_with_certificates);
        tcase_add_test(tc, test_tls_without_ca_fails_clearly);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);

        return s;
}

SE_TEST_MAIN(store_etcd_suite)
