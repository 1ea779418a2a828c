/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The check before `reencrypt` removes a key (safety.c removal_proven(), then the full scan), on
 * real kine SQLite databases through se_op_reencrypt(): a value under the old key written while
 * the pass runs (after its watermark), one outside the prefixes it walks, and one written while a
 * crashed pass was down, each keep the key; without them the key goes.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "se-ops.h"
#include "se-reencrypt.h"
#include "se-util.h"
#include "lib-kine.h"
#include "reencrypt-helpers.h"

#define N_SECRETS 1200 /* more than two pages and batches */

typedef struct fixture {
        char *dir, *db, *secret_a;
        se_settings s;
        se_ctx ctx;
        bool open;
        /* planted by the final progress call (after the pass walked everything), or with
         * plant_mid by the first one during the pass, between two of its batches */
        const char *plant_key;
        bool plant_mid, planted;
} fixture;

/* A value under old key a, as a server that still writes with it stores it. */
static void plant(const char *db_path, const char *key) {
        se_transformer *t = rt_transformer("aescbc:a");
        se_buf out = {};
        sqlite3 *db;

        ck_assert_int_eq(se_transformer_write(t, key, (const uint8_t *) "late write", 10, &out, NULL), 0);
        db = tk_open(db_path);
        tk_put(db, TK_V016, key, out.data, out.len);
        tk_close(db);
        se_buf_free(&out);
        se_transformer_free(t);
}

static int on_progress(const se_reencrypt_progress *p, void *userdata) {
        fixture *f = userdata;

        if (f->plant_key && !f->planted && p->final != f->plant_mid) {
                plant(f->db, f->plant_key);
                f->planted = true;
        }
        return 0;
}

static void open_ctx(fixture *f) {
        se_error e = SE_ERROR_NULL;

        f->ctx = (se_ctx){};
        ck_assert_msg(se_ctx_open(&f->ctx, &f->s, 0, &e) == 0, "%s", se_error_message(&e));
        f->ctx.server_stopped = true; /* as the hook: no running server's config to wait for */
        f->ctx.progress = on_progress;
        f->ctx.progress_userdata = f;
        f->open = true;
}

static void close_ctx(fixture *f) {
        if (f->open)
                se_ctx_close(&f->ctx);
        f->open = false;
}

/* Secrets under a, the config rotated to [b, a]. */
static void fixture_init(fixture *f) {
        _cleanup_free_ char *cpath = NULL, *spath = NULL, *state = NULL, *endpoint = NULL, *json = NULL;
        se_config *c = rt_config("aescbc:b,a");
        se_error e = SE_ERROR_NULL;
        size_t size = 0;
        char hash[65];
        sqlite3 *db;

        *f = (fixture){};
        f->dir = tl_tmpdir();
        f->db = tl_path(f->dir, "db.sqlite");
        f->secret_a = rt_secret("a");
        db = tk_create(f->db, true);
        rt_seed(db, "aescbc:a", 0, N_SECRETS, 0, RT_PLAIN_SIZE);
        tk_close(db);

        ck_assert_int_eq(se_config_to_json(c, &json, &size), 0);
        se_config_free(c);
        cpath = tl_path(f->dir, "encryption-config.json");
        spath = tl_path(f->dir, "encryption-state.json");
        tl_write_str(cpath, json);
        ck_assert_int_eq(se_sha256_hex(json, size, hash), 0);
        ck_assert_int_ge(asprintf(&state, "rotate-%s", hash), 0);
        tl_write_str(spath, state);

        ck_assert_int_eq(se_settings_init(&f->s), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "state-dir", f->dir, &e), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "node-name", "node-1", &e), 0);
        ck_assert_int_ge(asprintf(&endpoint, "sqlite://%s", f->db), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "datastore-endpoint", endpoint, &e), 0);
        se_error_done(&e);
        open_ctx(f);
}

static void fixture_done(fixture *f) {
        close_ctx(f);
        se_settings_done(&f->s);
        tl_tmpdir_remove(f->dir);
        free(f->db);
        free(f->secret_a);
}

static bool key_a_configured(fixture *f) {
        _cleanup_free_ char *path = tl_path(f->dir, "encryption-config.json");
        _cleanup_free_ char *json = tl_read_file(path, NULL);

        return strstr(json, f->secret_a) != NULL;
}

/* Values under a in the datastore (current rows). */
static uint64_t values_under_a(fixture *f) {
        static const char *const a[] = {"k8s:enc:aescbc:v1:a:", NULL};
        _cleanup_free_ char *endpoint = NULL;
        se_store *s;
        uint64_t n = 0;

        ck_assert_int_ge(asprintf(&endpoint, "sqlite://%s", f->db), 0);
        s = rt_store_open_endpoint(endpoint);
        ck_assert_int_eq(se_scan_value_prefixes(s, "/registry/", a, &n, NULL, NULL), 0);
        se_store_close(s);
        return n;
}

START_TEST(test_clean_pass_removes_key) {
        se_error e = SE_ERROR_NULL;
        fixture f;

        fixture_init(&f);
        ck_assert(key_a_configured(&f));
        ck_assert_msg(se_op_reencrypt(&f.ctx, true, false, &e) == 0, "%s", se_error_message(&e));
        ck_assert(!key_a_configured(&f));
        ck_assert_uint_eq(values_under_a(&f), 0);
        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

/* A server still writing with the old key, after the pass went past that key: the write has a
 * revision above the watermark, and the key must stay. */
START_TEST(test_write_after_watermark_keeps_key) {
        static const char *const keys[] = {"/registry/secrets/ns-0/secret-0000003", "/registry/secrets/zz/new",
                                           "/registry/configmaps/default/late"};
        const char *key = keys[_i];
        se_error e = SE_ERROR_NULL;
        fixture f;
        int r;

        fixture_init(&f);
        f.plant_key = key;
        r = se_op_reencrypt(&f.ctx, true, false, &e);
        ck_assert_msg(r == -ENOKEY, "%s: %d %s", key, r, se_error_message(&e));
        ck_assert_msg(strstr(se_error_message(&e), key), "%s", se_error_message(&e));
        ck_assert(key_a_configured(&f));
        ck_assert_uint_eq(values_under_a(&f), 1);
        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

/* The same write between two batches of the pass, to a key it has finished: its revision lies
 * between two ranges of rows the pass wrote itself. */
START_TEST(test_write_between_batches_keeps_key) {
        _cleanup_free_ char *key = rt_key(3);
        se_error e = SE_ERROR_NULL;
        fixture f;
        int r;

        fixture_init(&f);
        /* slow enough for a progress call during the pass (at most one a second), in batches of
         * 100 values (a tenth of the rate) */
        ck_assert_int_eq(se_settings_set(&f.s, "reencrypt-rate", "1000", &e), 0);
        f.plant_key = key;
        f.plant_mid = true;
        r = se_op_reencrypt(&f.ctx, true, false, &e);
        ck_assert_msg(f.planted, "no progress call during the pass");
        ck_assert_msg(r == -ENOKEY, "%d %s", r, se_error_message(&e));
        ck_assert(key_a_configured(&f));
        ck_assert_uint_eq(values_under_a(&f), 1);
        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

/* Under the old key where the pass does not walk, written before it began: the key must stay. */
START_TEST(test_value_outside_walk_keeps_key) {
        se_error e = SE_ERROR_NULL;
        fixture f;
        int r;

        fixture_init(&f);
        plant(f.db, "/registry/configmaps/default/cm");
        r = se_op_reencrypt(&f.ctx, true, false, &e);
        ck_assert_msg(r == -ENOKEY, "%d %s", r, se_error_message(&e));
        ck_assert(key_a_configured(&f));
        ck_assert_uint_eq(values_under_a(&f), 1);
        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

/* Killed at its second checkpoint, then resumed: a value under the old key written while it was
 * down, in the part the first run had finished, keeps the key (_i = 1); without it the key goes. */
START_TEST(test_resume_after_crash) {
        bool planted = _i == 1;
        se_error e = SE_ERROR_NULL;
        _cleanup_free_ char *cp = NULL;
        fixture f;
        pid_t pid;
        int status, r;

        fixture_init(&f);
        close_ctx(&f);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                setenv("SE_TEST_REENCRYPT_KILL", "checkpoint:2", 1);
                open_ctx(&f);
                (void) se_op_reencrypt(&f.ctx, true, false, NULL);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the pass was not killed (%d)", status);
        cp = tl_path(f.dir, SE_REENCRYPT_CHECKPOINT_FILE);
        ck_assert_msg(access(cp, F_OK) == 0, "no checkpoint left by the killed pass");

        if (planted)
                plant(f.db, "/registry/secrets/ns-0/secret-0000001");
        open_ctx(&f);
        r = se_op_reencrypt(&f.ctx, false, false, &e); /* resumes the interrupted one */
        if (planted) {
                ck_assert_msg(r == -ENOKEY, "%d %s", r, se_error_message(&e));
                ck_assert(key_a_configured(&f));
                ck_assert_uint_eq(values_under_a(&f), 1);
        } else {
                ck_assert_msg(r == 0, "%s", se_error_message(&e));
                ck_assert(!key_a_configured(&f));
                ck_assert_uint_eq(values_under_a(&f), 0);
        }
        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

/* se_store_count_values() against the full scan it stands in for: the current live row of each
 * key only (not a superseded one, not a tombstone's predecessor), a TEXT value as its bytes, the
 * key and revision bounds, compaction. */
START_TEST(test_count_values_matches_scan) {
        static const char *const a[] = {"k8s:enc:aescbc:v1:a:", NULL}, *const ab[] = {"k8s:enc:aescbc:v1:a:",
                                                                                       "k8s:enc:aescbc:v1:b:", NULL};
        _cleanup_free_ char *dir = tl_tmpdir(), *path = tl_path(dir, "db.sqlite"), *endpoint = NULL;
        se_error e = SE_ERROR_NULL;
        int64_t w, rev = 0;
        uint64_t n = 0, scan = 0;
        sqlite3 *db = tk_create(path, true);
        se_store *s;

        tk_put_str(db, TK_V016, "/registry/secrets/ns/current-a", "k8s:enc:aescbc:v1:a:1");
        tk_put_str(db, TK_V016, "/registry/secrets/ns/superseded", "k8s:enc:aescbc:v1:a:2");
        tk_put_str(db, TK_V016, "/registry/secrets/ns/superseded", "k8s:enc:aescbc:v1:b:2");
        tk_put_str(db, TK_V016, "/registry/secrets/ns/deleted", "k8s:enc:aescbc:v1:a:3");
        tk_delete_key(db, TK_V016, "/registry/secrets/ns/deleted");
        tk_put_str(db, TK_V016, "/registry/secrets/ns/short", "k8s:enc:aescbc:v1:a");
        tk_put_str(db, TK_V016, "/registry/configmaps/ns/cm", "k8s:enc:aescbc:v1:a:4");
        tk_put_str(db, TK_V016, "/registry0", "k8s:enc:aescbc:v1:a:outside");
        w = tk_revision(db);
        /* a value kine stored as TEXT, after the watermark */
        tk_put_str(db, TK_V016, "/registry/secrets/ns/text", "placeholder");
        tk_exec(db, "UPDATE kine SET value = CAST('k8s:enc:aescbc:v1:a:5' AS TEXT) WHERE id = (SELECT MAX(id) FROM kine)");
        tk_compact(db, w);
        tk_close(db);

        ck_assert_int_ge(asprintf(&endpoint, "sqlite://%s", path), 0);
        s = rt_store_open_endpoint(endpoint);
        ck_assert_int_eq(se_store_revision(s, &rev, &e), 0);
        ck_assert_int_eq(rev, w + 1);

        ck_assert_int_eq(se_scan_value_prefixes(s, "/registry/", a, &scan, NULL, &e), 0);
        ck_assert_uint_eq(scan, 3); /* current-a, configmaps, text */
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", 0, 0, a, &n, &e), 0);
        ck_assert_uint_eq(n, scan);
        ck_assert_int_eq(se_store_count_values(s, "/registry/", NULL, 0, 0, a, &n, &e), 0);
        ck_assert_uint_eq(n, scan + 1); /* and /registry0 */
        ck_assert_int_eq(se_store_count_values(s, "/registry/secrets/", "/registry/secrets0", 0, 0, a, &n, &e), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", w + 1, 0, a, &n, &e), 0);
        ck_assert_uint_eq(n, 1); /* only the TEXT one is newer */
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", 0, w, a, &n, &e), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", 0, 0, ab, &n, &e), 0);
        ck_assert_uint_eq(n, 4);
        /* every current live value: health, the four live secrets keys, the configmap */
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", 0, 0, NULL, &n, &e), 0);
        ck_assert_uint_eq(n, 6);
        ck_assert_int_eq(se_store_count_values(s, "/registry/", "/registry0", w + 1, 0, NULL, &n, &e), 0);
        ck_assert_uint_eq(n, 1);
        se_store_close(s);
        se_error_done(&e);
        tl_tmpdir_remove(TAKE_PTR(dir));
}
END_TEST

/* A kine table without AUTOINCREMENT may hand out a deleted last row's id again: no watermark
 * (the pass then proves nothing and the full scan runs). */
START_TEST(test_no_watermark_without_autoincrement) {
        _cleanup_free_ char *dir = tl_tmpdir(), *path = tl_path(dir, "db.sqlite"), *endpoint = rt_sqlite_endpoint(path);
        se_error e = SE_ERROR_NULL;
        int64_t rev = 0;
        sqlite3 *db;
        se_store *s;

        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        tk_exec(db, "CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, created INTEGER, deleted INTEGER, "
                    "create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB)");
        tk_exec(db, "INSERT INTO kine VALUES (1, '/registry/health', 1, 0, 0, 0, 0, '{}', NULL)");
        tk_close(db);
        s = rt_store_open_endpoint(endpoint);
        ck_assert_int_eq(se_store_revision(s, &rev, &e), -EOPNOTSUPP);
        ck_assert_int_eq(rev, 0);
        se_store_close(s);
        se_error_done(&e);
        tl_tmpdir_remove(TAKE_PTR(dir));
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("removal-check");
        TCase *tc = tcase_create("sqlite");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_count_values_matches_scan);
        tcase_add_test(tc, test_no_watermark_without_autoincrement);
        tcase_add_test(tc, test_clean_pass_removes_key);
        tcase_add_loop_test(tc, test_write_after_watermark_keeps_key, 0, 3);
        tcase_add_test(tc, test_write_between_batches_keeps_key);
        tcase_add_test(tc, test_value_outside_walk_keeps_key);
        tcase_add_loop_test(tc, test_resume_after_crash, 0, 2);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(suite)
