/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib-etcd.h"
#include "reencrypt-helpers.h"
#include "reencrypt-internal.h"
#include "store-internal.h"

/* One kine database in a fresh directory, seeded with n secrets under spec's write key. */
typedef struct fixture {
        char *dir;
        char *db_path;
        sqlite3 *db;
        se_store *s;
        se_config *c;
        se_error e;
} fixture;

static void fx_init(fixture *f, size_t n, const char *seed_spec) {
        *f = (fixture){};
        f->dir = tl_tmpdir();
        f->db_path = tl_path(f->dir, "state.db");
        f->db = tk_create(f->db_path, true);
        if (n > 0)
                rt_seed(f->db, seed_spec, 0, n, 0, RT_PLAIN_SIZE);
        /* a value outside the prefix must never be touched */
        tk_put_str(f->db, TK_V016, "/registry/configmaps/default/cm", "plain-configmap");
        f->s = rt_store_open(f->db_path);
}

static void fx_done(fixture *f) {
        se_store_close(f->s);
        tk_close(f->db);
        se_config_free(f->c);
        se_error_done(&f->e);
        free(f->db_path);
        tl_tmpdir_remove(f->dir);
}

static void check_configmap_untouched(fixture *f) {
        uint8_t *v = NULL;
        size_t n = 0;

        ck_assert(tk_kine_get(f->db, "/registry/configmaps/default/cm", &v, &n, NULL, NULL));
        ck_assert_uint_eq(n, strlen("plain-configmap"));
        ck_assert(memcmp(v, "plain-configmap", n) == 0);
        free(v);
}

typedef struct progress_log {
        size_t n_calls;
        se_reencrypt_progress last, calls[256];
        uint64_t usec[256];
} progress_log;

static int log_progress(const se_reencrypt_progress *p, void *userdata) {
        progress_log *l = userdata;

        if (l->n_calls < ELEMENTSOF(l->calls)) {
                l->calls[l->n_calls] = *p;
                l->usec[l->n_calls] = se_now_usec(CLOCK_MONOTONIC);
        }
        l->n_calls++;
        l->last = *p;
        return 0;
}

START_TEST(test_rotate_a_to_b) {
        const size_t n = 1234;
        fixture f;
        se_reencrypt_result res = {};
        progress_log log = {};
        int64_t rows_before, rev_before;

        fx_init(&f, n, "aescbc:a");
        rows_before = tk_row_count(f.db);
        f.c = rt_config("aescbc:b,a");
        /* odd sizes so batches straddle pages */
        ck_assert_int_eq(se_reencrypt(f.s, f.c,
                                      &(se_reencrypt_options){ .page_size = 100, .batch_size = 37,
                                                               .progress = log_progress, .userdata = &log },
                                      &res, &f.e),
                         0);
        ck_assert_uint_eq(res.total, n);
        ck_assert_uint_eq(res.done, n);
        ck_assert_uint_eq(res.rewritten, n);
        ck_assert_uint_eq(res.skipped, 0);
        ck_assert_uint_eq(res.conflicts, 0);
        ck_assert(!res.resumed);
        ck_assert_int_eq(tk_kine_count(f.db, RT_PREFIX), n);
        ck_assert_int_eq(tk_row_count(f.db), rows_before + (int64_t) n);
        rt_check_store(f.s, "aescbc:b,a", n, NULL, RT_PLAIN_SIZE, "b");
        /* B alone reads everything: nothing needs A any more */
        rt_check_store(f.s, "aescbc:b", n, NULL, RT_PLAIN_SIZE, "b");
        check_configmap_untouched(&f);
        ck_assert_uint_ge(log.n_calls, 1);
        ck_assert(log.last.final);
        ck_assert_uint_eq(log.last.done, n);
        ck_assert_uint_eq(log.last.total, n);
        ck_assert_uint_eq(log.last.rewritten, n);
        se_reencrypt_result_done(&res);

        /* second run: nothing to rewrite, no new rows */
        rev_before = tk_revision(f.db);
        ck_assert_int_eq(se_reencrypt(f.s, f.c, NULL, &res, &f.e), 0);
        ck_assert_uint_eq(res.rewritten, 0);
        ck_assert_uint_eq(res.skipped, n);
        ck_assert_int_eq(tk_revision(f.db), rev_before);
        se_reencrypt_result_done(&res);
        fx_done(&f);
}
END_TEST

START_TEST(test_mixed_identity_and_keys) {
        fixture f;
        se_reencrypt_result res = {};

        fx_init(&f, 0, NULL);
        rt_seed(f.db, "identity", 0, 100, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "aescbc:a", 100, 200, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "secretbox:s", 200, 250, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "aescbc:b", 250, 300, 0, RT_PLAIN_SIZE);
        f.c = rt_config("aescbc:b,a;secretbox:s;identity");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, &(se_reencrypt_options){ .page_size = 64 }, &res, &f.e), 0);
        ck_assert_uint_eq(res.rewritten, 250);
        ck_assert_uint_eq(res.skipped, 50);
        ck_assert_int_eq(tk_kine_count(f.db, RT_PREFIX), 300);
        rt_check_store(f.s, "aescbc:b", 300, NULL, RT_PLAIN_SIZE, "b");
        se_reencrypt_result_done(&res);

        /* and back to plaintext: identity first decrypts everything */
        se_config_free(f.c);
        f.c = rt_config("identity;aescbc:b");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, NULL, &res, &f.e), 0);
        ck_assert_uint_eq(res.rewritten, 300);
        {
                _cleanup_free_ char *k = rt_key(7);
                uint8_t *v = NULL, plain[RT_PLAIN_SIZE];
                size_t sz = 0;

                ck_assert(tk_kine_get(f.db, k, &v, &sz, NULL, NULL));
                ck_assert_uint_eq(sz, rt_plaintext(7, 0, RT_PLAIN_SIZE, plain, sizeof(plain)));
                ck_assert(memcmp(v, plain, sz) == 0);
                free(v);
        }
        se_reencrypt_result_done(&res);
        fx_done(&f);
}
END_TEST

START_TEST(test_unreadable_stops_and_names_key) {
        _cleanup_free_ char *bad = rt_key(50), *before = rt_key(49), *after = rt_key(51);
        fixture f;
        se_reencrypt_result res = {};
        se_transformer *tb = rt_transformer("aescbc:b,a");

        fx_init(&f, 100, "aescbc:a");
        rt_seed(f.db, "aescbc:c", 50, 51, 0, RT_PLAIN_SIZE); /* a key the config does not have */
        f.c = rt_config("aescbc:b,a");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, &(se_reencrypt_options){ .page_size = 20, .batch_size = 20 }, &res,
                                      &f.e),
                         -ENOKEY);
        ck_assert_msg(strstr(se_error_message(&f.e), bad), "message: %s", se_error_message(&f.e));
        ck_assert_msg(strstr(se_error_message(&f.e), "aescbc key \"c\""), "message: %s", se_error_message(&f.e));
        /* what came before was written; what comes after was not */
        {
                se_kv kv = {};

                ck_assert_int_eq(se_store_get(f.s, before, &kv, NULL), 0);
                ck_assert(se_transformer_is_current(tb, kv.value, kv.value_size));
                se_kv_done(&kv);
                ck_assert_int_eq(se_store_get(f.s, after, &kv, NULL), 0);
                ck_assert(!se_transformer_is_current(tb, kv.value, kv.value_size));
                se_kv_done(&kv);
        }

        /* collecting: the run completes and lists it */
        se_error_done(&f.e);
        ck_assert_int_eq(se_reencrypt(f.s, f.c, &(se_reencrypt_options){ .collect_unreadable = true }, &res, &f.e), 0);
        ck_assert_uint_eq(res.unreadable, 1);
        ck_assert_uint_eq(res.n_unreadable_paths, 1);
        ck_assert_str_eq(res.unreadable_paths[0], bad);
        ck_assert_uint_eq(res.rewritten, 49);
        ck_assert_uint_eq(res.skipped, 50);
        se_reencrypt_result_done(&res);
        se_transformer_free(tb);
        fx_done(&f);
}
END_TEST

START_TEST(test_kms_refused) {
        static const char kms_value[] = "k8s:enc:kms:v2:vault:\x0a\x03xyz";
        _cleanup_free_ char *k = rt_key(5);
        fixture f;
        se_reencrypt_result res = {};

        fx_init(&f, 10, "aescbc:a");
        tk_put(f.db, TK_V016, k, kms_value, sizeof(kms_value) - 1);
        f.c = rt_config("aescbc:b,a");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, NULL, &res, &f.e), -EOPNOTSUPP);
        ck_assert_msg(strstr(se_error_message(&f.e), "KMS data cannot be re-encrypted"), "message: %s",
                      se_error_message(&f.e));
        ck_assert_msg(strstr(se_error_message(&f.e), k), "message: %s", se_error_message(&f.e));
        ck_assert_msg(strstr(se_error_message(&f.e), "\"vault\""), "message: %s", se_error_message(&f.e));
        fx_done(&f);
}
END_TEST

/* A store whose first update call is preceded by API-server writes to two of the batch's keys:
 * one under the current key (must survive untouched) and one under the old key (must be
 * re-encrypted from the new plaintext). */
typedef struct inject {
        se_store *inner;
        unsigned calls;
        char *key_current, *key_old;
} inject;

static void inject_write(se_store *s, const char *key, size_t i, const char *spec) {
        se_transformer *t = rt_transformer(spec);
        uint8_t plain[RT_PLAIN_SIZE];
        se_buf out = {};
        se_kv kv = {};
        se_kv_update u;

        ck_assert_int_eq(se_store_get(s, key, &kv, NULL), 0);
        rt_plaintext(i, 1, RT_PLAIN_SIZE, plain, sizeof(plain));
        ck_assert_int_eq(se_transformer_write(t, key, plain, sizeof(plain), &out, NULL), 0);
        u = (se_kv_update){ .key = key, .value = out.data, .value_size = out.len,
                            .expected_mod_revision = kv.mod_revision };
        ck_assert_int_eq(se_store_update(s, &u, 1, NULL), 1);
        ck_assert(!u.conflict);
        se_kv_done(&kv);
        se_buf_free(&out);
        se_transformer_free(t);
}

static int inj_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        return se_store_range(((inject *) impl)->inner, prefix, start, limit, ret, e);
}
static int inj_count(void *impl, const char *prefix, uint64_t *ret, se_error *e) {
        return se_store_count(((inject *) impl)->inner, prefix, ret, e);
}
static int inj_get(void *impl, const char *key, se_kv *ret, se_error *e) {
        return se_store_get(((inject *) impl)->inner, key, ret, e);
}
static int inj_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        inject *x = impl;

        if (x->calls++ == 0) {
                ck_assert_uint_ge(n, 4);
                x->key_current = rt_strdup(u[1].key);
                x->key_old = rt_strdup(u[3].key);
                inject_write(x->inner, u[1].key, 1, "aescbc:b,a");
                inject_write(x->inner, u[3].key, 3, "aescbc:a");
        }
        return se_store_update(x->inner, u, n, e);
}

static const se_store_ops inject_ops = {
        .kind = SE_STORE_KINE, .range = inj_range, .count = inj_count, .get = inj_get, .update = inj_update,
};

START_TEST(test_conflicts_never_overwrite) {
        fixture f;
        inject x = {};
        se_store wrapped;
        se_reencrypt_result res = {};
        unsigned gens[40] = {};

        fx_init(&f, 40, "aescbc:a");
        x.inner = f.s;
        wrapped = (se_store){ .ops = &inject_ops, .impl = &x };
        f.c = rt_config("aescbc:b,a");
        ck_assert_int_eq(se_reencrypt(&wrapped, f.c, &(se_reencrypt_options){ .page_size = 10 }, &res, &f.e), 0);
        ck_assert_uint_eq(res.conflicts, 2);
        ck_assert_uint_eq(res.rewritten, 39); /* all but the one the API server wrote under b */
        {
                _cleanup_free_ char *k1 = rt_key(1), *k3 = rt_key(3);
                ck_assert_str_eq(x.key_current, k1);
                ck_assert_str_eq(x.key_old, k3);
        }
        gens[1] = gens[3] = 1;
        rt_check_store(f.s, "aescbc:b", 40, gens, RT_PLAIN_SIZE, "b");
        free(x.key_current);
        free(x.key_old);
        se_reencrypt_result_done(&res);
        fx_done(&f);
}
END_TEST

typedef struct writer {
        const char *endpoint;
        size_t n;
        unsigned *gens;
        atomic_bool stop;
        atomic_uint writes;
        unsigned conflicts;
} writer;

/* An API server: read-modify-write of random secrets under the write key, CAS, retry on conflict. */
static void *writer_main(void *userdata) {
        writer *w = userdata;
        se_store *s = rt_store_open_endpoint(w->endpoint);
        se_transformer *t = rt_transformer("aescbc:b,a");
        uint8_t plain[RT_PLAIN_SIZE];
        se_buf out = {};
        unsigned seed = 12345;

        while (!atomic_load(&w->stop)) {
                size_t i = (size_t) rand_r(&seed) % w->n;
                _cleanup_free_ char *key = rt_key(i);
                se_kv kv = {};
                se_kv_update u;
                se_error e = SE_ERROR_NULL;

                if (se_store_get(s, key, &kv, &e) < 0) {
                        fprintf(stderr, "writer get: %s\n", se_error_message(&e));
                        abort();
                }
                rt_plaintext(i, w->gens[i] + 1, RT_PLAIN_SIZE, plain, sizeof(plain));
                if (se_transformer_write(t, key, plain, sizeof(plain), &out, NULL) < 0)
                        abort();
                u = (se_kv_update){ .key = key, .value = out.data, .value_size = out.len,
                                    .expected_mod_revision = kv.mod_revision };
                if (se_store_update(s, &u, 1, &e) < 0) {
                        fprintf(stderr, "writer update: %s\n", se_error_message(&e));
                        abort();
                }
                if (u.conflict)
                        w->conflicts++;
                else {
                        w->gens[i]++;
                        atomic_fetch_add(&w->writes, 1);
                }
                se_kv_done(&kv);
                se_error_done(&e);
        }
        se_buf_free(&out);
        se_transformer_free(t);
        se_store_close(s);
        return NULL;
}

/* Runs the pass while a writer thread updates random secrets; checks the writer's values won. */
static void concurrent_pass(se_store *s, const char *endpoint, size_t n, double rate, const char *what) {
        se_reencrypt_result res = {};
        se_config *c = rt_config("aescbc:b,a");
        se_error e = SE_ERROR_NULL;
        writer w = { .n = n, .endpoint = endpoint };
        pthread_t th;
        unsigned before, during;
        uint64_t count = 0;

        w.gens = rt_calloc(n, sizeof(unsigned));
        ck_assert_int_eq(pthread_create(&th, NULL, writer_main, &w), 0);
        while (atomic_load(&w.writes) < 20)
                usleep(1000);
        before = atomic_load(&w.writes);
        /* slowed down so the writer gets many writes in while the pass runs */
        ck_assert_msg(se_reencrypt(s, c,
                                   &(se_reencrypt_options){ .page_size = 50, .batch_size = 25, .rate_limit = rate },
                                   &res, &e) == 0,
                      "%s", se_error_message(&e));
        during = atomic_load(&w.writes) - before;
        atomic_store(&w.stop, true);
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        fprintf(stderr, "concurrent (%s): %u writer writes during the pass, %" PRIu64 " engine conflicts, %" PRIu64
                        " rewritten, %" PRIu64 " skipped\n",
                what, during, res.conflicts, res.rewritten, res.skipped);
        /* enough interleaving to matter, with slack for slow sanitizer builds on a loaded machine */
        ck_assert_uint_ge(during, 10);
        ck_assert_int_eq(se_store_count(s, RT_PREFIX, &count, NULL), 0);
        ck_assert_uint_eq(count, n);
        rt_check_store(s, "aescbc:b", n, w.gens, RT_PLAIN_SIZE, "b");
        free(w.gens);
        se_reencrypt_result_done(&res);
        se_config_free(c);
}

START_TEST(test_concurrent_writer_survives) {
        const size_t n = 3000;
        _cleanup_free_ char *ep = NULL;
        fixture f;

        fx_init(&f, n, "aescbc:a");
        ep = rt_sqlite_endpoint(f.db_path);
        /* at least 1 s: the engine's five threads (pass, crypto, read ahead, count, checkpoint)
         * share 2 cores with the writer, which a sanitizer build slows most */
        concurrent_pass(f.s, ep, n, 3000, "kine");
        ck_assert_int_eq(tk_kine_count(f.db, RT_PREFIX), n);
        fx_done(&f);
}
END_TEST

static tl_etcd *etcd_single(void) {
        tl_etcd *c;

        ck_assert_msg(tl_etcd_available(), "etcd is not installed");
        c = tl_etcd_start(1);
        ck_assert_msg(c, "etcd did not start");
        return c;
}

START_TEST(test_etcd_rotate_a_to_b) {
        const size_t n = 1500;
        tl_etcd *c = etcd_single();
        se_store *s = rt_store_open_endpoint(c->endpoints);
        se_config *cfg = rt_config("aescbc:b,a");
        se_reencrypt_result res = {};
        se_error e = SE_ERROR_NULL;
        uint64_t count = 0;

        rt_seed_store(s, "aescbc:a", 0, n, 0, RT_PLAIN_SIZE);
        ck_assert_msg(se_reencrypt(s, cfg, &(se_reencrypt_options){ .page_size = 200, .batch_size = 150 }, &res, &e) ==
                              0,
                      "%s", se_error_message(&e));
        ck_assert_uint_eq(res.total, n);
        ck_assert_uint_eq(res.rewritten, n);
        ck_assert_int_eq(se_store_count(s, RT_PREFIX, &count, NULL), 0);
        ck_assert_uint_eq(count, n);
        rt_check_store(s, "aescbc:b", n, NULL, RT_PLAIN_SIZE, "b");
        se_reencrypt_result_done(&res);
        ck_assert_int_eq(se_reencrypt(s, cfg, NULL, &res, &e), 0);
        ck_assert_uint_eq(res.rewritten, 0);
        ck_assert_uint_eq(res.skipped, n);
        se_reencrypt_result_done(&res);
        se_config_free(cfg);
        se_store_close(s);
        tl_etcd_free(c);
}
END_TEST

START_TEST(test_etcd_concurrent_writer_survives) {
        const size_t n = 1500;
        tl_etcd *c = etcd_single();
        se_store *s = rt_store_open_endpoint(c->endpoints);

        rt_seed_store(s, "aescbc:a", 0, n, 0, RT_PLAIN_SIZE);
        concurrent_pass(s, c->endpoints, n, 1000, "etcd");
        se_store_close(s);
        tl_etcd_free(c);
}
END_TEST

static void write_checkpoint(const char *dir, const char *config_hash, const char *last_key, uint64_t done) {
        se_checkpoint cp = { .key = (char *) last_key, .done = done };
        const char *const prefixes[] = { RT_PREFIX, NULL };

        strcpy(cp.config, config_hash);
        ck_assert_int_eq(se_prefixes_fingerprint(prefixes, "secrets", cp.prefixes), 0);
        ck_assert_int_eq(se_checkpoint_save(dir, &cp), 0);
}

START_TEST(test_checkpoint_resume_and_foreign) {
        static const char hash1[] = "1111111111111111111111111111111111111111111111111111111111111111";
        static const char hash2[] = "2222222222222222222222222222222222222222222222222222222222222222";
        _cleanup_free_ char *k49 = rt_key(49), *cp_path = NULL, *state = NULL;
        fixture f;
        se_reencrypt_result res = {};
        se_transformer *tb = rt_transformer("aescbc:b");

        fx_init(&f, 100, "aescbc:a");
        f.c = rt_config("aescbc:b,a");
        state = tl_path(f.dir, "state");
        ck_assert_int_eq(mkdir(state, 0700), 0);
        cp_path = tl_path(state, SE_REENCRYPT_CHECKPOINT_FILE);

        /* a checkpoint for another config is ignored: full pass */
        write_checkpoint(state, hash2, k49, 50);
        ck_assert_int_eq(se_reencrypt(f.s, f.c,
                                      &(se_reencrypt_options){ .state_dir = state, .config_hash = hash1 }, &res,
                                      &f.e),
                         0);
        ck_assert(!res.resumed);
        ck_assert_uint_eq(res.rewritten, 100);
        ck_assert_int_eq(access(cp_path, F_OK), -1); /* removed when complete */
        se_reencrypt_result_done(&res);

        /* a matching checkpoint resumes after its key: keys up to it are not looked at */
        fx_done(&f);
        fx_init(&f, 100, "aescbc:a");
        f.c = rt_config("aescbc:b,a");
        free(state);
        state = tl_path(f.dir, "state");
        ck_assert_int_eq(mkdir(state, 0700), 0);
        write_checkpoint(state, hash1, k49, 50);
        ck_assert_int_eq(se_reencrypt(f.s, f.c,
                                      &(se_reencrypt_options){ .state_dir = state, .config_hash = hash1, .page_size = 7 },
                                      &res, &f.e),
                         0);
        ck_assert(res.resumed);
        ck_assert_uint_eq(res.rewritten, 50);
        ck_assert_uint_eq(res.done, 100);
        for (size_t i = 0; i < 100; i++) {
                _cleanup_free_ char *k = rt_key(i);
                se_kv kv = {};

                ck_assert_int_eq(se_store_get(f.s, k, &kv, NULL), 0);
                ck_assert_int_eq(se_transformer_is_current(tb, kv.value, kv.value_size), i >= 50);
                se_kv_done(&kv);
        }
        se_reencrypt_result_done(&res);

        /* a damaged checkpoint is ignored too */
        free(cp_path);
        cp_path = tl_path(state, SE_REENCRYPT_CHECKPOINT_FILE);
        tl_write_str(cp_path, "secrets-encrypt reencrypt checkpoint v1\nconfig=");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, &(se_reencrypt_options){ .state_dir = state, .config_hash = hash1 },
                                      &res, &f.e),
                         0);
        ck_assert(!res.resumed);
        ck_assert_uint_eq(res.rewritten, 50);
        rt_check_store(f.s, "aescbc:b", 100, NULL, RT_PLAIN_SIZE, "b");
        se_reencrypt_result_done(&res);
        se_transformer_free(tb);
        fx_done(&f);
}
END_TEST

START_TEST(test_rate_limit_and_progress_cadence) {
        const size_t n = 2500;
        fixture f;
        se_reencrypt_result res = {};
        progress_log log = {};
        uint64_t t0, elapsed;

        fx_init(&f, n, "aescbc:a");
        f.c = rt_config("aescbc:b,a");
        t0 = se_now_usec(CLOCK_MONOTONIC);
        ck_assert_int_eq(se_reencrypt(f.s, f.c,
                                      &(se_reencrypt_options){ .rate_limit = 1000, .progress = log_progress,
                                                               .userdata = &log },
                                      &res, &f.e),
                         0);
        elapsed = se_now_usec(CLOCK_MONOTONIC) - t0;
        ck_assert_uint_ge(elapsed, 2300000);
        ck_assert_uint_eq(res.rewritten, n);
        /* at most every 50 values or every second, whichever is rarer, plus a final call */
        ck_assert_uint_ge(log.n_calls, 2);
        ck_assert_uint_le(log.n_calls, elapsed / 1000000 + 1);
        for (size_t i = 0; i + 1 < log.n_calls; i++) {
                ck_assert(!log.calls[i].final);
                ck_assert_uint_ge(log.calls[i].done - (i ? log.calls[i - 1].done : 0), 50);
                ck_assert_uint_eq(log.calls[i].total, n);
                ck_assert(log.calls[i].rate > 0 && log.calls[i].rate < 1150); /* never above the limit */
                if (i > 0)
                        ck_assert_uint_ge(log.usec[i] - log.usec[i - 1], 999000); /* the engine and the test read the clock apart */
        }
        ck_assert(log.last.final);
        ck_assert_uint_eq(log.last.done, n);
        se_reencrypt_result_done(&res);
        fx_done(&f);
}
END_TEST

static const se_verify_count *find_count(const se_verify_report *r, se_provider_type p, const char *name) {
        for (size_t i = 0; i < r->n_counts; i++)
                if (r->counts[i].provider == p &&
                    ((!name && !r->counts[i].key_name) ||
                     (name && r->counts[i].key_name && streq(name, r->counts[i].key_name))))
                        return &r->counts[i];
        return NULL;
}

START_TEST(test_verify_counts) {
        _cleanup_free_ char *bad1 = rt_key(300), *bad2 = rt_key(301);
        fixture f;
        se_verify_report rep = {};
        se_config *c;

        fx_init(&f, 0, NULL);
        rt_seed(f.db, "identity", 0, 30, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "aescbc:a", 30, 130, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "aescbc:b", 130, 300, 0, RT_PLAIN_SIZE);
        rt_seed(f.db, "aescbc:zz", 300, 302, 0, RT_PLAIN_SIZE);
        c = rt_config("aescbc:b,a;identity");
        ck_assert_int_eq(se_verify(f.s, c, &(se_verify_options){ .page_size = 33, .max_unreadable_paths = 1 }, &rep,
                                   &f.e),
                         0);
        ck_assert_uint_eq(rep.total, 302);
        ck_assert_uint_eq(rep.identity, 30);
        ck_assert_uint_eq(rep.not_current, 132);
        ck_assert_uint_eq(rep.unreadable, 2);
        ck_assert_uint_eq(rep.n_unreadable_paths, 1); /* bounded */
        ck_assert_str_eq(rep.unreadable_paths[0], bad1);
        ck_assert_ptr_nonnull(find_count(&rep, SE_PROVIDER_AESCBC, "a"));
        ck_assert_uint_eq(find_count(&rep, SE_PROVIDER_AESCBC, "a")->count, 100);
        ck_assert_uint_eq(find_count(&rep, SE_PROVIDER_AESCBC, "b")->count, 170);
        ck_assert_uint_eq(find_count(&rep, SE_PROVIDER_IDENTITY, NULL)->count, 30);
        ck_assert_ptr_null(find_count(&rep, SE_PROVIDER_AESCBC, "zz"));
        se_verify_report_done(&rep);
        se_config_free(c);
        fx_done(&f);
}
END_TEST

START_TEST(test_prune_gate) {
        _cleanup_free_ char *first = rt_key(0);
        fixture f;
        se_verify_report rep = {};
        se_reencrypt_result res = {};
        se_config *after = rt_config("aescbc:b;identity");

        fx_init(&f, 200, "aescbc:a");
        /* A is still needed: refused, naming the first value and the key it needs */
        ck_assert_int_eq(se_prune_check(f.s, after, NULL, &rep, &f.e), -ENOKEY);
        ck_assert_msg(strstr(se_error_message(&f.e), first), "message: %s", se_error_message(&f.e));
        ck_assert_msg(strstr(se_error_message(&f.e), "aescbc key \"a\""), "message: %s", se_error_message(&f.e));
        ck_assert_msg(strstr(se_error_message(&f.e), "200 of 200"), "message: %s", se_error_message(&f.e));
        ck_assert_uint_eq(rep.total, 0); /* untouched on failure */

        /* one value left behind is enough to refuse */
        f.c = rt_config("aescbc:b,a");
        ck_assert_int_eq(se_reencrypt(f.s, f.c, NULL, &res, &f.e), 0);
        rt_seed(f.db, "aescbc:a", 150, 151, 0, RT_PLAIN_SIZE);
        ck_assert_int_eq(se_prune_check(f.s, after, NULL, &rep, &f.e), -ENOKEY);
        ck_assert_msg(strstr(se_error_message(&f.e), "1 of 200"), "message: %s", se_error_message(&f.e));
        {
                _cleanup_free_ char *k150 = rt_key(150);
                ck_assert_msg(strstr(se_error_message(&f.e), k150), "message: %s", se_error_message(&f.e));
        }

        /* after a complete pass it passes */
        se_reencrypt_result_done(&res);
        ck_assert_int_eq(se_reencrypt(f.s, f.c, NULL, &res, &f.e), 0);
        ck_assert_uint_eq(res.rewritten, 1);
        ck_assert_int_eq(se_prune_check(f.s, after, NULL, &rep, &f.e), 0);
        ck_assert_uint_eq(rep.total, 200);
        ck_assert_uint_eq(rep.not_current, 0);
        ck_assert_uint_eq(rep.unreadable, 0);
        se_verify_report_done(&rep);
        se_reencrypt_result_done(&res);
        se_config_free(after);
        fx_done(&f);
}
END_TEST

typedef struct member_killer {
        tl_etcd *c;
        size_t victim;
        useconds_t delay;
} member_killer;

static void *killer_main(void *userdata) {
        member_killer *k = userdata;

        usleep(k->delay);
        tl_etcd_kill(k->c, k->victim);
        return NULL;
}

/* The member the pass talks to dies mid-run: it completes through another endpoint. */
START_TEST(test_etcd_member_killed_mid_run) {
        const size_t n = 1500;
        tl_etcd *c;
        se_store *s;
        se_config *cfg = rt_config("aescbc:b,a");
        se_reencrypt_result res = {};
        se_error e = SE_ERROR_NULL;
        member_killer k = { .victim = 0, .delay = 700 * 1000 };
        pthread_t th;
        uint64_t count = 0;

        ck_assert_msg(tl_etcd_available(), "etcd is not installed");
        c = tl_etcd_start(3);
        ck_assert_msg(c, "etcd cluster did not start");
        k.c = c;
        s = rt_store_open_endpoint(c->endpoints); /* member 0 first: the one we kill */
        rt_seed_store(s, "aescbc:a", 0, n, 0, RT_PLAIN_SIZE);
        ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
        ck_assert_msg(se_reencrypt(s, cfg,
                                   &(se_reencrypt_options){ .page_size = 100, .batch_size = 50, .rate_limit = 750 },
                                   &res, &e) == 0,
                      "%s", se_error_message(&e));
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert(!tl_etcd_member_healthy(c, 0));
        ck_assert_uint_eq(res.done, n);
        ck_assert_int_eq(se_store_count(s, RT_PREFIX, &count, NULL), 0);
        ck_assert_uint_eq(count, n);
        rt_check_store(s, "aescbc:b", n, NULL, RT_PLAIN_SIZE, "b");
        se_reencrypt_result_done(&res);
        se_config_free(cfg);
        se_store_close(s);
        tl_etcd_free(c);
}
END_TEST

static Suite *reencrypt_suite(void) {
        Suite *s = suite_create("reencrypt");
        TCase *tc = tcase_create("kine");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_rotate_a_to_b);
        tcase_add_test(tc, test_mixed_identity_and_keys);
        tcase_add_test(tc, test_unreadable_stops_and_names_key);
        tcase_add_test(tc, test_kms_refused);
        tcase_add_test(tc, test_conflicts_never_overwrite);
        tcase_add_test(tc, test_concurrent_writer_survives);
        tcase_add_test(tc, test_checkpoint_resume_and_foreign);
        tcase_add_test(tc, test_rate_limit_and_progress_cadence);
        tcase_add_test(tc, test_verify_counts);
        tcase_add_test(tc, test_prune_gate);
        suite_add_tcase(s, tc);

        tc = tcase_create("etcd");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_etcd_rotate_a_to_b);
        tcase_add_test(tc, test_etcd_concurrent_writer_survives);
        tcase_add_test(tc, test_etcd_member_killed_mid_run);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(reencrypt_suite)
