/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib-kine.h"
#include "macro.h"
#include "se-store.h"
#include "se-util.h"
#include "testlib.h"

#define PREFIX "/registry/secrets/"

/* The suite's directory is made and removed by the parent process (unchecked fixture), so a
 * failing test, whose forked child never reaches its teardown, leaves nothing behind. */
static char *topdir;
static char *dir;
static char *dbpath;

static void suite_setup(void) {
        topdir = tl_tmpdir();
}

static void suite_teardown(void) {
        tl_tmpdir_remove(topdir);
        topdir = NULL;
}

static void setup(void) {
        dir = tl_path(topdir, "t.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(dir));
        dbpath = tl_path(dir, "state.db");
}

static void teardown(void) {
        free(dbpath);
        dbpath = NULL;
        tl_tmpdir_remove(dir);
        dir = NULL;
}

static se_store *store_open_timeout(const char *path, uint64_t timeout_usec) {
        _cleanup_free_ char *ep = NULL;
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        int r;

        ck_assert_int_ge(asprintf(&ep, "sqlite://%s", path), 0);
        r = se_store_open(&(se_store_options){.endpoint = ep, .timeout_usec = timeout_usec}, &s, &e);
        ck_assert_msg(r == 0, "open %s: %s", ep, se_error_message(&e));
        ck_assert_int_eq(se_store_get_kind(s), SE_STORE_KINE);
        se_error_done(&e);
        return s;
}

static se_store *store_open(const char *path) {
        return store_open_timeout(path, 0);
}

/* Every key under prefix through se_store_range in pages of `page`, checked against kine's own
 * semantics key by key; returns the number of keys seen. */
static size_t check_view(se_store *s, sqlite3 *db, const char *prefix, size_t page) {
        _cleanup_free_ char *last = NULL;
        se_kv_list l = {};
        size_t total = 0;

        for (;;) {
                se_error e = SE_ERROR_NULL;
                int r = se_store_range(s, prefix, last, page, &l, &e);

                ck_assert_msg(r == 0, "range: %s", se_error_message(&e));
                ck_assert_uint_le(l.n_items, page);
                for (size_t i = 0; i < l.n_items; i++) {
                        _cleanup_free_ uint8_t *v = NULL;
                        size_t n = 0;
                        int64_t mod = 0, create = 0;
                        se_kv g = {};

                        ck_assert(startswith(l.items[i].key, prefix));
                        if (last)
                                ck_assert_int_ge(strcmp(l.items[i].key, last), 0);
                        if (i > 0)
                                ck_assert_int_lt(strcmp(l.items[i - 1].key, l.items[i].key), 0);
                        ck_assert_msg(tk_kine_get(db, l.items[i].key, &v, &n, &mod, &create),
                                      "%s returned but kine would not serve it", l.items[i].key);
                        ck_assert_uint_eq(l.items[i].value_size, n);
                        ck_assert(n == 0 || memcmp(l.items[i].value, v, n) == 0);
                        ck_assert_int_eq(l.items[i].mod_revision, mod);
                        ck_assert_int_eq(l.items[i].create_revision, create);

                        ck_assert_int_eq(se_store_get(s, l.items[i].key, &g, NULL), 0);
                        ck_assert_int_eq(g.mod_revision, mod);
                        ck_assert_int_eq(g.create_revision, create);
                        ck_assert_uint_eq(g.value_size, n);
                        se_kv_done(&g);
                }
                total += l.n_items;
                if (!l.more) {
                        se_kv_list_done(&l);
                        break;
                }
                ck_assert_uint_eq(l.n_items, page);
                free(last);
                /* start is inclusive: resume at the smallest key after the last one */
                ck_assert_int_ge(asprintf(&last, "%s\x01", l.items[l.n_items - 1].key), 0);
        }
        ck_assert_int_eq((int64_t) total, tk_kine_count(db, prefix));
        {
                uint64_t c = 0;
                ck_assert_int_eq(se_store_count(s, prefix, &c, NULL), 0);
                ck_assert_uint_eq(c, total);
        }
        return total;
}

static void put_secret(sqlite3 *db, tk_style st, const char *name, const char *value) {
        _cleanup_free_ char *k = NULL;

        ck_assert_int_ge(asprintf(&k, PREFIX "%s", name), 0);
        tk_put_str(db, st, k, value);
}

START_TEST(test_missing_db_is_empty) {
        se_store *s = store_open(dbpath);
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_kv kv = {};
        uint64_t c = 99;
        se_kv_update u = {.key = PREFIX "ns/a", .value = (const uint8_t *) "x", .value_size = 1};
        struct stat st;
        sqlite3 *db;

        ck_assert_int_eq(se_store_range(s, PREFIX, NULL, 0, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 0);
        ck_assert(!l.more);
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 0);
        ck_assert_int_eq(se_store_get(s, PREFIX "ns/a", &kv, NULL), -ENOENT);
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), -ENOENT);
        ck_assert_msg(strstr(se_error_message(&e), dbpath) && strstr(se_error_message(&e), "does not exist"), "%s",
                      se_error_message(&e));
        se_error_done(&e);
        /* reads never create the file */
        ck_assert_int_eq(stat(dbpath, &st), -1);
        ck_assert_int_eq(errno, ENOENT);

        /* the database appearing later (k3s's first start) is picked up by the same store */
        db = tk_create(dbpath, true);
        tk_put_str(db, TK_V016, PREFIX "ns/a", "v1");
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 1);
        ck_assert_int_eq(se_store_get(s, PREFIX "ns/a", &kv, NULL), 0);
        ck_assert_uint_eq(kv.value_size, 2);
        se_kv_done(&kv);
        se_store_close(s);
        tk_close(db);

        /* an empty SQLite file (no tables yet) is an empty store too */
        ck_assert_int_eq(unlink(dbpath), 0);
        tl_write_str(dbpath, "");
        s = store_open(dbpath);
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 0);
        se_store_close(s);
}
END_TEST

/* A name with a NUL byte (kine never writes one) is an error, never a key cut at the NUL: rows
 * "k\0a", "k\0b", … would all list as "k" and a pager resuming after the last key would never end
 * (found by fuzz-kine-rows). A UTF-16 database is not kine's: its name ranges do not follow key
 * order. And with require_data, a missing file is an error, not an empty store. */
START_TEST(test_hostile_names_and_encoding) {
        se_error e = SE_ERROR_NULL;
        _cleanup_free_ char *ep = NULL;
        sqlite3 *db = tk_create(dbpath, true);
        se_kv_list l = {};
        se_store *s;

        tk_exec(db, "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                    "old_value) VALUES(CAST(x'2f72656769737472792f736563726574732f6b00' || x'61' AS TEXT), 1, 0, "
                    "0, 0, 0, x'00', NULL)");
        tk_close(db);
        s = store_open(dbpath);
        ck_assert_int_eq(se_store_range(s, "/registry/secrets/", NULL, 10, &l, &e), -EIO);
        ck_assert_msg(strstr(se_error_message(&e), "NUL byte"), "%s", se_error_message(&e));
        se_error_done(&e);
        se_kv_list_done(&l);
        se_store_close(s);

        ck_assert_int_eq(unlink(dbpath), 0);
        ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
        tk_exec(db, "PRAGMA encoding = 'UTF-16le'");
        tk_ensure_schema(db);
        tk_close(db);
        ck_assert_int_ge(asprintf(&ep, "sqlite://%s", dbpath), 0);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep}, &s, &e), -EMEDIUMTYPE);
        ck_assert_msg(strstr(se_error_message(&e), "UTF-8"), "%s", se_error_message(&e));
        se_error_done(&e);

        ck_assert_int_eq(unlink(dbpath), 0);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep, .require_data = true}, &s, &e),
                         -ENOMEDIUM);
        ck_assert_msg(strstr(se_error_message(&e), "does not exist"), "%s", se_error_message(&e));
        se_error_done(&e);
}
END_TEST

START_TEST(test_endpoint_forms) {
        _cleanup_free_ char *ep = NULL;
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        sqlite3 *db = tk_create(dbpath, true);
        uint64_t c = 0;

        tk_put_str(db, TK_V016, PREFIX "ns/a", "v1");
        tk_close(db);

        /* sqlite:///abs with kine's DSN options after '?' */
        ck_assert_int_ge(asprintf(&ep, "sqlite://%s?_journal=WAL&cache=shared&_busy_timeout=30000", dbpath), 0);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep}, &s, &e), 0);
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 1);
        se_store_close(s);

        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = "sqlite://"}, &s, &e), -EINVAL);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = "sqlite://?x=y"}, &s, &e), -EINVAL);
        se_error_done(&e);

        /* a directory is not a database */
        free(ep);
        ck_assert_int_ge(asprintf(&ep, "sqlite://%s", dir), 0);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep}, &s, &e), -EISDIR);
        se_error_done(&e);
}
END_TEST

START_TEST(test_row_styles) {
        tk_style st = _i == 0 ? TK_V015 : TK_V016;
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_kv kv = {};
        int64_t tomb;

        put_secret(db, st, "default/a", "a1");
        put_secret(db, st, "default/b", "b1");
        put_secret(db, st, "default/a", "a2");
        put_secret(db, st, "kube-system/c", "c1");
        put_secret(db, st, "default/d", "d1");
        tk_delete_key(db, st, PREFIX "default/d");
        put_secret(db, st, "default/e", "e1");
        put_secret(db, st, "default/e", "e2");
        tomb = tk_delete_key(db, st, PREFIX "default/e");
        put_secret(db, st, "default/e", "e3"); /* re-created after a tombstone */
        put_secret(db, st, "default/e", "e4");
        put_secret(db, st, "default/f", ""); /* empty value */
        /* a tombstone as the very first and very last key */
        put_secret(db, st, "aaa/first", "x");
        tk_delete_key(db, st, PREFIX "aaa/first");
        put_secret(db, st, "zzz/last", "x");
        tk_delete_key(db, st, PREFIX "zzz/last");

        s = store_open(dbpath);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 1000), 5); /* a b c e f */
        ck_assert_uint_eq(check_view(s, db, PREFIX, 1), 5);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 2), 5);

        /* tombstones hidden */
        ck_assert_int_eq(se_store_get(s, PREFIX "default/d", &kv, NULL), -ENOENT);
        ck_assert_int_eq(se_store_get(s, PREFIX "aaa/first", &kv, NULL), -ENOENT);
        /* the re-created key: current value, create_revision of the new life */
        ck_assert_int_eq(se_store_get(s, PREFIX "default/e", &kv, NULL), 0);
        ck_assert_uint_eq(kv.value_size, 2);
        ck_assert(memcmp(kv.value, "e4", 2) == 0);
        ck_assert_int_eq(kv.create_revision, tomb + 1);
        ck_assert_int_eq(kv.mod_revision, tomb + 2);
        se_kv_done(&kv);
        ck_assert_int_eq(se_store_get(s, PREFIX "default/f", &kv, NULL), 0);
        ck_assert_uint_eq(kv.value_size, 0);
        ck_assert_ptr_nonnull(kv.value);
        se_kv_done(&kv);

        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_special_rows) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_kv_list l = {};
        uint64_t c = 0;

        put_secret(db, TK_V016, "ns/a", "a");
        tk_gap(db);
        put_secret(db, TK_V016, "ns/b", "b");
        tk_put_str(db, TK_V016, "compact_rev_key_apiserver", "1|x");
        /* neighbours of the prefix that are not under it */
        tk_put_str(db, TK_V016, "/registry/secrets", "no");
        tk_put_str(db, TK_V016, "/registry/secrets0", "no");
        tk_put_str(db, TK_V016, "/registry/secretsX/a", "no");
        tk_put_str(db, TK_V016, "/registry/configmaps/ns/a", "cm");
        tk_gap(db);
        tk_compact(db, tk_revision(db) - 1);
        /* the second run: a database without the index the count reads (it falls back) */
        if (_i == 1)
                tk_exec(db, "DROP INDEX kine_id_deleted_index");

        s = store_open(dbpath);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 1000), 2);
        ck_assert_int_eq(se_store_range(s, PREFIX, NULL, 0, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 2);
        ck_assert_str_eq(l.items[0].key, PREFIX "ns/a");
        ck_assert_str_eq(l.items[1].key, PREFIX "ns/b");

        /* the whole /registry/ tree: health, configmap, secrets, neighbours; never kine's own rows */
        ck_assert_int_eq(se_store_range(s, "/registry/", NULL, 0, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 7);
        for (size_t i = 0; i < l.n_items; i++) {
                ck_assert(startswith(l.items[i].key, "/registry/"));
                ck_assert(!strstr(l.items[i].key, "compact_rev_key") && !startswith(l.items[i].key, "gap-"));
        }
        ck_assert_uint_eq(check_view(s, db, "/registry/", 3), 7);
        /* an empty prefix is unbounded: everything kine serves, kine's own live rows included */
        ck_assert_int_eq(se_store_count(s, "", &c, NULL), 0);
        ck_assert_uint_eq(c, (uint64_t) tk_kine_count(db, ""));
        ck_assert_uint_eq(c, 9); /* 7 + compact_rev_key + compact_rev_key_apiserver; gap rows are tombstones */
        se_kv_list_done(&l);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_compacted_history) {
        tk_style st = _i == 0 ? TK_V015 : TK_V016;
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        int64_t before, mid;

        for (int round = 0; round < 5; round++)
                for (int k = 0; k < 30; k++) {
                        char name[32], key[64], val[32];
                        snprintf(name, sizeof(name), "ns%d/s%02d", k % 3, k);
                        snprintf(key, sizeof(key), PREFIX "%s", name);
                        snprintf(val, sizeof(val), "v%d-%d", k, round);
                        if (round == 2 && k % 4 == 0)
                                tk_delete_key(db, st, key); /* the put below re-creates it */
                        put_secret(db, st, name, val);
                }
        mid = tk_revision(db);
        for (int k = 0; k < 30; k += 5) {
                char key[64];
                snprintf(key, sizeof(key), PREFIX "ns%d/s%02d", k % 3, k);
                tk_delete_key(db, st, key);
        }
        put_secret(db, st, "ns0/s00", "back");

        s = store_open(dbpath);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 7), 25);

        before = tk_row_count(db);
        tk_compact(db, mid);
        ck_assert_int_lt(tk_row_count(db), before);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 7), 25);
        tk_compact(db, tk_revision(db));
        ck_assert_uint_eq(check_view(s, db, PREFIX, 4), 25);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_paging) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_kv_list l = {};
        char key[64];

        tk_exec(db, "BEGIN");
        for (int i = 0; i < 21; i++) {
                snprintf(key, sizeof(key), PREFIX "ns/k%02d", i);
                tk_put_str(db, TK_V015, key, "v");
                if (i % 2 == 1)
                        tk_put_str(db, TK_V015, key, "v2");
        }
        for (int i = 0; i < 21; i += 3) { /* tombstones across page boundaries */
                snprintf(key, sizeof(key), PREFIX "ns/d%02d", i);
                tk_put_str(db, TK_V015, key, "v");
                tk_delete_key(db, TK_V015, key);
        }
        tk_exec(db, "COMMIT");

        s = store_open(dbpath);
        for (size_t page = 1; page <= 22; page++)
                ck_assert_uint_eq(check_view(s, db, PREFIX, page), 21);

        /* 21 keys, pages of 7: exactly full last page has more=false */
        ck_assert_int_eq(se_store_range(s, PREFIX, PREFIX "ns/k14", 7, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 7);
        ck_assert_str_eq(l.items[0].key, PREFIX "ns/k14");
        ck_assert_str_eq(l.items[6].key, PREFIX "ns/k20");
        ck_assert(!l.more);
        ck_assert_int_eq(se_store_range(s, PREFIX, PREFIX "ns/k13", 7, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 7);
        ck_assert(l.more);
        /* start between keys, start past the end, start before the prefix */
        ck_assert_int_eq(se_store_range(s, PREFIX, PREFIX "ns/k13x", 100, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 7);
        ck_assert_str_eq(l.items[0].key, PREFIX "ns/k14");
        ck_assert_int_eq(se_store_range(s, PREFIX, PREFIX "zzz", 100, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 0);
        ck_assert(!l.more);
        ck_assert_int_eq(se_store_range(s, PREFIX, "/a", 100, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 21);
        se_kv_list_done(&l);
        se_store_close(s);
        tk_close(db);
}
END_TEST

static void check_row(sqlite3 *db, int64_t id, const char *name, int64_t created, int64_t deleted, int64_t create_rev,
                      int64_t prev, int64_t lease, const char *value, const char *old_value) {
        tk_row r;

        ck_assert_msg(tk_row_get(db, id, &r), "row %lld missing", (long long) id);
        ck_assert_str_eq(r.name, name);
        ck_assert_int_eq(r.created, created);
        ck_assert_int_eq(r.deleted, deleted);
        ck_assert_int_eq(r.create_revision, create_rev);
        ck_assert_int_eq(r.prev_revision, prev);
        ck_assert_int_eq(r.lease, lease);
        if (value) {
                ck_assert_ptr_nonnull(r.value);
                ck_assert_uint_eq(r.value_size, strlen(value));
                ck_assert(memcmp(r.value, value, r.value_size) == 0);
        } else
                ck_assert_ptr_null(r.value);
        if (old_value) {
                ck_assert_ptr_nonnull(r.old_value);
                ck_assert_uint_eq(r.old_value_size, strlen(old_value));
                ck_assert(memcmp(r.old_value, old_value, r.old_value_size) == 0);
        } else
                ck_assert_ptr_null(r.old_value);
        tk_row_done(&r);
}

static int64_t row_id_of(sqlite3 *db, const char *key) {
        int64_t mod = 0;

        ck_assert(tk_kine_get(db, key, NULL, NULL, &mod, NULL));
        return mod;
}

START_TEST(test_cas_rows) {
        tk_style st = _i == 0 ? TK_V015 : TK_V016;
        sqlite3 *db = tk_create(dbpath, true);
        se_error e = SE_ERROR_NULL;
        se_store *s;
        int64_t a1, b2, t, rev;
        sqlite3_stmt *q;

        a1 = tk_put_str(db, st, PREFIX "ns/a", "a1");
        tk_put_str(db, st, PREFIX "ns/b", "b1");
        b2 = tk_put_str(db, st, PREFIX "ns/b", "b2");
        tk_put_str(db, st, PREFIX "ns/c", "c1");
        t = tk_delete_key(db, st, PREFIX "ns/c");
        /* a lease on a row is carried over by updates, as kine does */
        tk_exec(db, "UPDATE kine SET lease = 7 WHERE name = '" PREFIX "ns/b'");
        rev = tk_revision(db);

        s = store_open(dbpath);
        {
                se_kv_update u[] = {
                        {.key = PREFIX "ns/a",
                         .value = (const uint8_t *) "A",
                         .value_size = 1,
                         .expected_mod_revision = a1},
                        {.key = PREFIX "ns/b",
                         .value = (const uint8_t *) "B",
                         .value_size = 1,
                         .expected_mod_revision = b2},
                        {.key = PREFIX "ns/c", .value = (const uint8_t *) "C", .value_size = 1}, /* after tombstone */
                        {.key = PREFIX "ns/n", .value = (const uint8_t *) "N", .value_size = 1}, /* never existed */
                        {.key = PREFIX "ns/z", .value = NULL, .value_size = 0},                  /* empty value */
                };

                ck_assert_int_eq(se_store_update(s, u, ELEMENTSOF(u), &e), 5);
                for (size_t i = 0; i < ELEMENTSOF(u); i++) {
                        ck_assert(!u[i].conflict);
                        ck_assert_int_eq(u[i].new_revision, rev + 1 + (int64_t) i); /* AUTOINCREMENT picked */
                }
                /* update of a create row: create_revision = its id */
                check_row(db, u[0].new_revision, PREFIX "ns/a", 0, 0, a1, a1, 0, "A", "a1");
                /* update of an update row: its create_revision column carried over; lease kept */
                check_row(db, u[1].new_revision, PREFIX "ns/b", 0, 0, b2 - 1, b2, 7, "B", "b2");
                /* create after a tombstone: prev = tombstone, old_value = the tombstone's value */
                check_row(db, u[2].new_revision, PREFIX "ns/c", 1, 0, 0, t, 0, "C", st == TK_V015 ? "c1" : NULL);
                check_row(db, u[3].new_revision, PREFIX "ns/n", 1, 0, 0, 0, 0, "N", NULL);
                check_row(db, u[4].new_revision, PREFIX "ns/z", 1, 0, 0, 0, 0, "", NULL);
        }
        /* value bound as BLOB, name as TEXT (a BLOB name would never match kine's name = ?) */
        q = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(db,
                                            "SELECT COUNT(*) FROM kine WHERE id > ? AND (typeof(name) != 'text' "
                                            "OR typeof(value) != 'blob')",
                                            -1, &q, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(q, 1, rev);
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int64(q, 0), 0);
        sqlite3_finalize(q);
        ck_assert_int_eq(tk_revision(db), rev + 5);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 2), 5);
        /* kine's next write after ours chains on correctly */
        ck_assert_int_eq(tk_put_str(db, st, PREFIX "ns/a", "a3"), rev + 6);
        check_row(db, rev + 6, PREFIX "ns/a", 0, 0, a1, rev + 1, 0, "a3", "A");
        se_error_done(&e);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_cas_conflict) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_kv_list l = {};
        se_kv kv = {};
        int64_t rows;

        tk_put_str(db, TK_V016, PREFIX "ns/a", "a1");
        tk_put_str(db, TK_V016, PREFIX "ns/b", "b1");
        tk_put_str(db, TK_V016, PREFIX "ns/c", "c1");
        tk_put_str(db, TK_V016, PREFIX "ns/d", "d1");

        s = store_open(dbpath);
        ck_assert_int_eq(se_store_range(s, PREFIX, NULL, 0, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 4);

        /* between our read and our write, an API server updates a, deletes c */
        tk_put_str(db, TK_V016, PREFIX "ns/a", "a2-from-apiserver");
        tk_delete_key(db, TK_V016, PREFIX "ns/c");
        rows = tk_row_count(db);
        {
                se_kv_update u[] = {
                        {.key = l.items[0].key,
                         .value = (const uint8_t *) "A",
                         .value_size = 1,
                         .expected_mod_revision = l.items[0].mod_revision},
                        {.key = l.items[1].key,
                         .value = (const uint8_t *) "B",
                         .value_size = 1,
                         .expected_mod_revision = l.items[1].mod_revision},
                        {.key = l.items[2].key,
                         .value = (const uint8_t *) "C",
                         .value_size = 1,
                         .expected_mod_revision = l.items[2].mod_revision},
                        /* create of a key that exists */
                        {.key = l.items[3].key, .value = (const uint8_t *) "D", .value_size = 1},
                        /* the same key twice in one batch: the second read is stale */
                        {.key = l.items[1].key,
                         .value = (const uint8_t *) "B2",
                         .value_size = 2,
                         .expected_mod_revision = l.items[1].mod_revision},
                        /* update of a key that never existed */
                        {.key = PREFIX "ns/none",
                         .value = (const uint8_t *) "X",
                         .value_size = 1,
                         .expected_mod_revision = 3},
                };

                ck_assert_int_eq(se_store_update(s, u, ELEMENTSOF(u), NULL), 1);
                ck_assert(u[0].conflict && u[0].new_revision == 0);
                ck_assert(!u[1].conflict && u[1].new_revision == tk_revision(db));
                ck_assert(u[2].conflict);
                ck_assert(u[3].conflict);
                ck_assert(u[4].conflict);
                ck_assert(u[5].conflict);
        }
        ck_assert_int_eq(tk_row_count(db), rows + 1);
        /* the API server's writes survive */
        ck_assert_int_eq(se_store_get(s, PREFIX "ns/a", &kv, NULL), 0);
        ck_assert_uint_eq(kv.value_size, strlen("a2-from-apiserver"));
        se_kv_done(&kv);
        ck_assert_int_eq(se_store_get(s, PREFIX "ns/c", &kv, NULL), -ENOENT);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 10), 3);
        se_kv_list_done(&l);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_unique_index_conflict) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        int64_t a1, a2, rows;
        char sql[256];

        a1 = tk_put_str(db, TK_V016, PREFIX "ns/a", "a1");
        a2 = tk_put_str(db, TK_V016, PREFIX "ns/a", "a2");
        tk_put_str(db, TK_V016, PREFIX "ns/b", "b1");
        tk_compact(db, a2); /* row a1 goes: its id is free again */
        ck_assert(!tk_row_get(db, a1, &(tk_row){}));
        /* a row superseding a2 that is not MAX(id) (a writer that supplied its own id): the
         * compare on MAX(id) passes, kine_name_prev_revision_uindex must stop us */
        snprintf(sql, sizeof(sql),
                 "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value, "
                 "old_value) "
                 "VALUES(%lld, '" PREFIX "ns/a', 0, 0, %lld, %lld, 0, x'00', x'00')",
                 (long long) a1, (long long) a1, (long long) a2);
        tk_exec(db, sql);
        ck_assert_int_eq(row_id_of(db, PREFIX "ns/a"), a2);
        rows = tk_row_count(db);

        s = store_open(dbpath);
        {
                se_kv_update u[] = {
                        {.key = PREFIX "ns/a",
                         .value = (const uint8_t *) "A",
                         .value_size = 1,
                         .expected_mod_revision = a2},
                        {.key = PREFIX "ns/b",
                         .value = (const uint8_t *) "B",
                         .value_size = 1,
                         .expected_mod_revision = row_id_of(db, PREFIX "ns/b")},
                };
                ck_assert_int_eq(se_store_update(s, u, 2, NULL), 1);
                ck_assert(u[0].conflict);
                ck_assert_int_eq(u[0].new_revision, 0);
                ck_assert(!u[1].conflict);
                ck_assert_int_gt(u[1].new_revision, 0);
        }
        ck_assert_int_eq(tk_row_count(db), rows + 1);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_corrupt_db) {
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        _cleanup_free_ char *ep = NULL;
        char junk[8192];
        sqlite3 *db;

        ck_assert_int_ge(asprintf(&ep, "sqlite://%s", dbpath), 0);
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (char) ('a' + i % 26);
        tl_write_file(dbpath, junk, sizeof(junk));
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep}, &s, &e), -EIO);
        ck_assert_msg(strstr(se_error_message(&e), dbpath) && strstr(se_error_message(&e), "not an SQLite database"),
                      "%s", se_error_message(&e));
        se_error_done(&e);

        /* a valid kine database with its pages damaged */
        ck_assert_int_eq(unlink(dbpath), 0);
        db = tk_create(dbpath, false);
        tk_exec(db, "BEGIN");
        for (int i = 0; i < 300; i++) {
                char k[64];
                snprintf(k, sizeof(k), PREFIX "ns/s%03d", i);
                tk_put_str(db, TK_V016, k, "some value that fills pages of the table and its indexes");
        }
        tk_exec(db, "COMMIT");
        tk_close(db);
        {
                FILE *f = fopen(dbpath, "r+e");
                ck_assert_ptr_nonnull(f);
                for (long off = 4096; off < 40960; off += 4096) {
                        ck_assert_int_eq(fseek(f, off, SEEK_SET), 0);
                        ck_assert_uint_eq(fwrite(junk, 1, 4096, f), 4096);
                }
                ck_assert_int_eq(fclose(f), 0);
        }
        {
                int r = se_store_open(&(se_store_options){.endpoint = ep}, &s, &e);
                if (r == 0) {
                        uint64_t c;
                        r = se_store_count(s, PREFIX, &c, &e);
                        se_store_close(s);
                }
                ck_assert_int_eq(r, -EIO);
                ck_assert_msg(strstr(se_error_message(&e), dbpath) && (strstr(se_error_message(&e), "malformed") ||
                                                                       strstr(se_error_message(&e), "damaged")),
                              "%s", se_error_message(&e));
        }
        se_error_done(&e);

        /* an SQLite database that is not kine's */
        ck_assert_int_eq(unlink(dbpath), 0);
        ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
        tk_exec(db, "CREATE TABLE other (x)");
        tk_close(db);
        ck_assert_int_eq(se_store_open(&(se_store_options){.endpoint = ep}, &s, &e), -EMEDIUMTYPE);
        ck_assert(strstr(se_error_message(&e), "not a kine database"));
        se_error_done(&e);
}
END_TEST

static void *commit_later(void *p) {
        usleep(200 * 1000);
        (void) sqlite3_exec(p, "COMMIT", NULL, NULL, NULL);
        return NULL;
}

START_TEST(test_busy) {
        sqlite3 *db = tk_create(dbpath, true), *other;
        se_error e = SE_ERROR_NULL;
        se_store *s;
        se_kv_update u = {.key = PREFIX "ns/a", .value = (const uint8_t *) "A", .value_size = 1};
        uint64_t t0, dt, c = 0;

        tk_put_str(db, TK_V016, PREFIX "ns/b", "b");
        other = tk_open(dbpath);
        tk_exec(other, "BEGIN IMMEDIATE");

        s = store_open_timeout(dbpath, 300 * 1000);
        /* WAL: readers are not blocked by the writer */
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 1);

        t0 = se_now_usec(CLOCK_MONOTONIC);
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), -EBUSY);
        dt = se_now_usec(CLOCK_MONOTONIC) - t0;
        ck_assert_msg(dt >= 250 * 1000 && dt < 5 * 1000 * 1000, "waited %llu us", (unsigned long long) dt);
        ck_assert_msg(strstr(se_error_message(&e), "locked"), "%s", se_error_message(&e));
        ck_assert_int_eq(u.new_revision, 0);
        se_error_done(&e);

        tk_exec(other, "COMMIT");
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), 1);
        ck_assert_int_eq(u.new_revision, tk_revision(db));

        /* a writer that lets go within the timeout: we wait for it */
        tk_exec(other, "BEGIN IMMEDIATE");
        se_store_close(s);
        s = store_open_timeout(dbpath, 10 * 1000 * 1000);
        {
                pthread_t th;
                ck_assert_int_eq(pthread_create(&th, NULL, commit_later, other), 0);
                u.expected_mod_revision = u.new_revision;
                t0 = se_now_usec(CLOCK_MONOTONIC);
                ck_assert_int_eq(se_store_update(s, &u, 1, &e), 1);
                dt = se_now_usec(CLOCK_MONOTONIC) - t0;
                ck_assert_int_eq(pthread_join(th, NULL), 0);
                ck_assert_msg(dt >= 150 * 1000, "did not wait: %llu us", (unsigned long long) dt);
        }
        se_store_close(s);
        tk_close(other);
        tk_close(db);
}
END_TEST

static char *journal_mode(const char *path) {
        sqlite3 *db = tk_open(path);
        sqlite3_stmt *q = NULL;
        char *m;

        ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
        m = strdup((const char *) sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        tk_close(db);
        return m;
}

START_TEST(test_journal_mode_kept) {
        for (int wal = 0; wal <= 1; wal++) {
                sqlite3 *db = tk_create(dbpath, wal);
                se_store *s;
                int64_t id = tk_put_str(db, TK_V016, PREFIX "ns/a", "a");
                se_kv_update u = {.key = PREFIX "ns/a",
                                  .value = (const uint8_t *) "A",
                                  .value_size = 1,
                                  .expected_mod_revision = id};
                _cleanup_free_ char *m = NULL;

                tk_close(db);
                s = store_open(dbpath);
                ck_assert_int_eq(se_store_update(s, &u, 1, NULL), 1);
                se_store_close(s);
                m = journal_mode(dbpath);
                ck_assert_str_eq(m, wal ? "wal" : "delete");
                ck_assert_int_eq(unlink(dbpath), 0);
                for (int j = 0; j < 2; j++) {
                        _cleanup_free_ char *p = tl_path(dir, j ? "state.db-wal" : "state.db-shm");
                        (void) unlink(p);
                }
        }
}
END_TEST

START_TEST(test_big_batch) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_kv_list l = {};
        se_kv_update *u;
        size_t n = 0;
        int64_t rev;
        uint8_t val[1024];

        memset(val, 'v', sizeof(val));
        tk_exec(db, "BEGIN");
        for (int i = 0; i < 1500; i++) {
                char k[64];
                snprintf(k, sizeof(k), PREFIX "ns%d/s%05d", i % 7, i);
                tk_put(db, i % 2 ? TK_V015 : TK_V016, k, val, sizeof(val));
        }
        tk_exec(db, "COMMIT");
        rev = tk_revision(db);

        s = store_open(dbpath);
        ck_assert_int_eq(se_store_range(s, PREFIX, NULL, 1000, &l, NULL), 0);
        ck_assert_uint_eq(l.n_items, 1000);
        ck_assert(l.more);
        u = calloc(l.n_items, sizeof(*u));
        ck_assert_ptr_nonnull(u);
        for (size_t i = 0; i < l.n_items; i++) {
                l.items[i].value[0] = 'V';
                u[n++] = (se_kv_update){.key = l.items[i].key,
                                        .value = l.items[i].value,
                                        .value_size = l.items[i].value_size,
                                        .expected_mod_revision = l.items[i].mod_revision};
        }
        ck_assert_int_eq(se_store_update(s, u, n, NULL), 1000);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(u[i].new_revision, rev + 1 + (int64_t) i);
        /* a second pass with the same (now stale) revisions: all conflicts, nothing written */
        ck_assert_int_eq(se_store_update(s, u, n, NULL), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert(u[i].conflict);
        ck_assert_int_eq(tk_revision(db), rev + 1000);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 333), 1500);
        free(u);
        se_kv_list_done(&l);
        se_store_close(s);
        tk_close(db);
}
END_TEST

/* se_store_read_ahead(): the range read on the second connection answers the range asked next,
 * unless something this store did in between could have changed or seen what it covers. */
START_TEST(test_read_ahead) {
        sqlite3 *db = tk_create(dbpath, true);
        se_store *s;
        se_error e = SE_ERROR_NULL;
        se_kv_list plain = {}, l = {};
        se_kv kv = {};
        char k5[64], k50[64], k2[64];
        se_kv_update u;
        uint64_t c = 0;

        tk_exec(db, "BEGIN");
        for (int i = 0; i < 100; i++) {
                char k[64], v[32];
                snprintf(k, sizeof(k), PREFIX "ahead/s%03d", i);
                snprintf(v, sizeof(v), "value %d", i);
                tk_put_str(db, i % 2 ? TK_V015 : TK_V016, k, v);
        }
        tk_exec(db, "COMMIT");
        snprintf(k2, sizeof(k2), PREFIX "ahead/s%03d", 2);
        snprintf(k5, sizeof(k5), PREFIX "ahead/s%03d", 5);
        snprintf(k50, sizeof(k50), PREFIX "ahead/s%03d", 50);
        s = store_open(dbpath);
        ck_assert_int_eq(se_store_range(s, PREFIX, k5, 100, &plain, &e), 0);
        ck_assert_uint_eq(plain.n_items, 95);

        /* the early answer is the usual one, also after a write of a key before the range */
        se_store_read_ahead(s, PREFIX, k5, 100);
        ck_assert_int_eq(se_store_get(s, k2, &kv, &e), 0);
        se_store_read_ahead(s, PREFIX, k5, 100);
        u = (se_kv_update){.key = k2, .value = (const uint8_t *) "two", .value_size = 3,
                           .expected_mod_revision = kv.mod_revision};
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), 1);
        ck_assert_msg(se_store_range(s, PREFIX, k5, 100, &l, &e) == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(l.n_items, plain.n_items);
        ck_assert(!l.more);
        for (size_t i = 0; i < l.n_items; i++) {
                ck_assert_str_eq(l.items[i].key, plain.items[i].key);
                ck_assert_int_eq(l.items[i].mod_revision, plain.items[i].mod_revision);
                ck_assert_uint_eq(l.items[i].value_size, plain.items[i].value_size);
                ck_assert_mem_eq(l.items[i].value, plain.items[i].value, l.items[i].value_size);
        }
        se_kv_list_done(&l);

        /* our own write into the range is seen */
        se_store_read_ahead(s, PREFIX, k5, 100);
        u = (se_kv_update){.key = k50, .value = (const uint8_t *) "own", .value_size = 3,
                           .expected_mod_revision = plain.items[45].mod_revision};
        ck_assert_str_eq(plain.items[45].key, k50);
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), 1);
        ck_assert_msg(se_store_range(s, PREFIX, k5, 100, &l, &e) == 0, "%s", se_error_message(&e));
        tl_ck_range_value(&l, k50, "own");
        se_kv_list_done(&l);

        /* another request in between drops it: what that one saw, the range sees too */
        se_store_read_ahead(s, PREFIX, k5, 100);
        tk_put_str(db, TK_V016, k50, "seen by get");
        se_kv_done(&kv);
        ck_assert_int_eq(se_store_get(s, k50, &kv, &e), 0);
        ck_assert_mem_eq(kv.value, "seen by get", 11);
        ck_assert_msg(se_store_range(s, PREFIX, k5, 100, &l, &e) == 0, "%s", se_error_message(&e));
        tl_ck_range_value(&l, k50, "seen by get");
        se_kv_list_done(&l);

        se_store_read_ahead(s, PREFIX, k5, 100);
        tk_put_str(db, TK_V016, k50, "seen by count");
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, &e), 0);
        ck_assert_uint_eq(c, 100);
        ck_assert_msg(se_store_range(s, PREFIX, k5, 100, &l, &e) == 0, "%s", se_error_message(&e));
        tl_ck_range_value(&l, k50, "seen by count");
        se_kv_list_done(&l);

        /* a range with other arguments is read the usual way; so is one asked twice */
        se_store_read_ahead(s, PREFIX, k5, 100);
        ck_assert_msg(se_store_range(s, PREFIX, k50, 3, &l, &e) == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(l.n_items, 3);
        ck_assert(l.more);
        ck_assert_str_eq(l.items[0].key, k50);
        se_kv_list_done(&l);
        ck_assert_msg(se_store_range(s, PREFIX, k5, 100, &l, &e) == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(l.n_items, 95);
        se_kv_list_done(&l);

        /* a read ahead left unused is dropped at close */
        se_store_read_ahead(s, PREFIX, NULL, 10);
        se_store_close(s);

        se_kv_done(&kv);
        se_kv_list_done(&plain);
        se_error_done(&e);
        tk_close(db);
}
END_TEST

static off_t file_size(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 ? st.st_size : -1;
}

/* count values of size bytes under PREFIX "wal/", then their rewrite in batches of 100 */
static void rewrite_all(se_store *s, size_t count, size_t size, char fill) {
        _cleanup_free_ char *last = NULL;
        _cleanup_free_ se_kv_update *u = calloc(100, sizeof(*u));
        se_error e = SE_ERROR_NULL;
        size_t seen = 0;

        ck_assert_ptr_nonnull(u);
        for (;;) {
                se_kv_list l = {};

                ck_assert_msg(se_store_range(s, PREFIX "wal/", last, 100, &l, &e) == 0, "%s", se_error_message(&e));
                for (size_t i = 0; i < l.n_items; i++) {
                        ck_assert_uint_eq(l.items[i].value_size, size);
                        memset(l.items[i].value, fill, size);
                        u[i] = (se_kv_update){.key = l.items[i].key, .value = l.items[i].value, .value_size = size,
                                              .expected_mod_revision = l.items[i].mod_revision};
                }
                ck_assert_int_eq(se_store_update(s, u, l.n_items, &e), (int) l.n_items);
                seen += l.n_items;
                free(last);
                last = NULL;
                if (l.n_items)
                        ck_assert_int_ge(asprintf(&last, "%s\x01", l.items[l.n_items - 1].key), 0);
                if (!l.more) {
                        se_kv_list_done(&l);
                        break;
                }
                se_kv_list_done(&l);
        }
        ck_assert_uint_eq(seen, count);
        se_error_done(&e);
}

static sqlite3 *seed_wal_db(size_t count, size_t size) {
        sqlite3 *db = tk_create(dbpath, true);
        _cleanup_free_ uint8_t *v = malloc(size);

        ck_assert_ptr_nonnull(v);
        memset(v, 'a', size);
        tk_exec(db, "BEGIN");
        for (size_t i = 0; i < count; i++) {
                char k[64];
                snprintf(k, sizeof(k), PREFIX "wal/s%05zu", i);
                tk_put(db, TK_V016, k, v, size);
        }
        tk_exec(db, "COMMIT");
        tk_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        return db;
}

/* Our commits leave the checkpoint to a thread of the store's: the WAL's pages reach the
 * database file while the store is open and idle, and every value is there after close. */
START_TEST(test_wal_checkpointed_in_background) {
        sqlite3 *db = seed_wal_db(1000, 4096);
        _cleanup_free_ char *wal = tl_path(dir, "state.db-wal");
        off_t before = file_size(dbpath);
        uint64_t deadline;
        se_store *s;

        tk_close(db);
        s = store_open(dbpath);
        /* 1000 superseding rows of 4 KiB (more than 1000 WAL pages): the database file grows
         * only when a checkpoint copies them */
        rewrite_all(s, 1000, 4096, 'b');
        ck_assert_int_gt(file_size(wal), 0);
        deadline = se_now_usec(CLOCK_MONOTONIC) + 30 * 1000 * 1000;
        while (file_size(dbpath) <= before && se_now_usec(CLOCK_MONOTONIC) < deadline)
                usleep(10 * 1000);
        ck_assert_msg(file_size(dbpath) > before, "no checkpoint while the store was open: %lld bytes",
                      (long long) file_size(dbpath));
        se_store_close(s);

        db = tk_open(dbpath);
        ck_assert_int_eq(tk_kine_count(db, PREFIX "wal/"), 1000);
        {
                _cleanup_free_ uint8_t *v = NULL;
                size_t n = 0;
                int64_t mod = 0, create = 0;

                ck_assert(tk_kine_get(db, PREFIX "wal/s00999", &v, &n, &mod, &create));
                ck_assert_uint_eq(n, 4096);
                ck_assert_int_eq(v[0], 'b');
                ck_assert_int_eq(v[4095], 'b');
        }
        tk_close(db);
}
END_TEST

/* A reader that holds its snapshot (kine serving a long list) keeps every checkpoint from
 * copying past it. Our writes still complete: past the WAL's bound each commit waits for one
 * checkpoint pass, which never waits for a lock, so it ends. */
START_TEST(test_wal_reader_holds_snapshot) {
        enum { N = 1200, SIZE = 64 * 1024 }; /* 75 MiB: past the 64 MiB bound */
        sqlite3 *db = seed_wal_db(N, SIZE), *reader = tk_open(dbpath);
        _cleanup_free_ char *wal = tl_path(dir, "state.db-wal");
        sqlite3_stmt *q = NULL;
        se_store *s;

        tk_close(db);
        ck_assert_int_eq(sqlite3_prepare_v2(reader, "SELECT name FROM kine ORDER BY id", -1, &q, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW); /* its read transaction is open */

        s = store_open(dbpath);
        rewrite_all(s, N, SIZE, 'c');
        /* nothing could be copied: the WAL holds every page written */
        ck_assert_int_gt(file_size(wal), (off_t) N * SIZE);
        sqlite3_finalize(q);
        tk_close(reader);
        se_store_close(s);

        db = tk_open(dbpath);
        ck_assert_int_eq(tk_kine_count(db, PREFIX "wal/"), N);
        {
                _cleanup_free_ uint8_t *v = NULL;
                size_t n = 0;
                int64_t mod = 0, create = 0;

                ck_assert(tk_kine_get(db, PREFIX "wal/s01199", &v, &n, &mod, &create));
                ck_assert_uint_eq(n, SIZE);
                ck_assert_int_eq(v[SIZE - 1], 'c');
        }
        tk_close(db);
}
END_TEST

/* se_store_counter: the counts of several prefixes on a second handle, on its own thread, while
 * the first one writes; the same total as se_store_count(), deleted keys not counted. */
START_TEST(test_counter) {
        static const char *const prefixes[] = {PREFIX, "/registry/configmaps/", NULL};
        sqlite3 *db = tk_create(dbpath, true);
        se_store_counter *c = NULL;
        se_error e = SE_ERROR_NULL;
        se_kv_update u;
        se_kv kv = {};
        uint64_t total = 0, n1 = 0, n2 = 0;
        se_store *s;
        int r = 0;

        tk_exec(db, "BEGIN");
        for (int i = 0; i < 300; i++) {
                char k[64];
                snprintf(k, sizeof(k), PREFIX "ns/s%04d", i);
                tk_put_str(db, TK_V016, k, "v");
                if (i % 10 == 3)
                        tk_delete_key(db, TK_V016, k);
                snprintf(k, sizeof(k), "/registry/configmaps/ns/c%04d", i);
                if (i < 120)
                        tk_put_str(db, TK_V015, k, "c");
        }
        tk_exec(db, "COMMIT");
        s = store_open(dbpath);
        ck_assert_int_eq(se_store_count(s, PREFIX, &n1, NULL), 0);
        ck_assert_int_eq(se_store_count(s, "/registry/configmaps/", &n2, NULL), 0);
        ck_assert_uint_eq(n1, 270);
        ck_assert_uint_eq(n2, 120);

        ck_assert_int_eq(se_store_counter_start(s, prefixes, &c), 0);
        /* the first handle is free meanwhile */
        ck_assert_int_eq(se_store_get(s, PREFIX "ns/s0000", &kv, &e), 0);
        u = (se_kv_update){.key = kv.key, .value = (const uint8_t *) "w", .value_size = 1,
                           .expected_mod_revision = kv.mod_revision};
        ck_assert_int_eq(se_store_update(s, &u, 1, &e), 1);
        for (uint64_t deadline = se_now_usec(CLOCK_MONOTONIC) + 30 * 1000 * 1000;
             (r = se_store_counter_result(c, false, &total, &e)) == 0 && se_now_usec(CLOCK_MONOTONIC) < deadline;)
                usleep(1000);
        ck_assert_msg(r == 1, "%d: %s", r, se_error_message(&e));
        ck_assert_uint_eq(total, n1 + n2);
        c = se_store_counter_free(c);

        /* waiting for it, and freeing it unasked */
        ck_assert_int_eq(se_store_counter_start(s, prefixes, &c), 0);
        ck_assert_int_eq(se_store_counter_result(c, true, &total, &e), 1);
        ck_assert_uint_eq(total, n1 + n2);
        c = se_store_counter_free(c);
        ck_assert_int_eq(se_store_counter_start(s, prefixes, &c), 0);
        c = se_store_counter_free(c);

        se_kv_done(&kv);
        se_error_done(&e);
        se_store_close(s);
        tk_close(db);
}
END_TEST

START_TEST(test_kine_seed_tool) {
        const char *b = getenv("SE_BUILD");
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        se_kv_list l = {};
        se_store *s;
        uint64_t c = 0;
        sqlite3 *db;

        ck_assert_int_ge(asprintf(&cmd, "%s/tests/tools/kine-seed '%s' 250 --value-size 700 --namespaces 3 2>&1",
                                  b ? b : "build", dbpath),
                         0);
        ck_assert_msg(tl_run(cmd, &out) == 0, "%s: %s", cmd, out);
        /* a second run supersedes the first 10 keys and adds 10 under another prefix */
        free(cmd);
        ck_assert_int_ge(
                asprintf(
                        &cmd,
                        "%s/tests/tools/kine-seed '%s' 10 --namespaces 3 --seed 2 && %s/tests/tools/kine-seed '%s' 10 "
                        "--prefix /registry/configmaps/ 2>&1",
                        b ? b : "build", dbpath, b ? b : "build", dbpath),
                0);
        free(out);
        out = NULL;
        ck_assert_msg(tl_run(cmd, &out) == 0, "%s: %s", cmd, out);

        s = store_open(dbpath);
        db = tk_open(dbpath);
        ck_assert_int_eq(se_store_count(s, PREFIX, &c, NULL), 0);
        ck_assert_uint_eq(c, 250);
        ck_assert_int_eq(se_store_count(s, "/registry/configmaps/", &c, NULL), 0);
        ck_assert_uint_eq(c, 10);
        ck_assert_uint_eq(check_view(s, db, PREFIX, 100), 250);
        ck_assert_int_eq(se_store_range(s, PREFIX, NULL, 0, &l, NULL), 0);
        ck_assert_str_eq(l.items[0].key, PREFIX "ns-0/secret-0000000");
        for (size_t i = 0; i < l.n_items; i++) {
                ck_assert(l.items[i].value_size >= 4 && memcmp(l.items[i].value, "k8s\0", 4) == 0);
                ck_assert(tl_memmem(l.items[i].value, l.items[i].value_size, "Secret", 6));
                /* the re-seeded keys are updates (1 KiB default), the others creates of 700 bytes */
                if (l.items[i].mod_revision != l.items[i].create_revision)
                        ck_assert_uint_eq(l.items[i].value_size, 1024);
                else
                        ck_assert_uint_eq(l.items[i].value_size, 700);
        }
        ck_assert_int_eq(tk_row_count(db), 2 + 250 + 10 + 10);
        se_kv_list_done(&l);
        tk_close(db);
        se_store_close(s);
}
END_TEST

static Suite *store_kine_suite(void) {
        Suite *s = suite_create("store-kine");
        TCase *tc = tcase_create("kine");

        tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_missing_db_is_empty);
        tcase_add_test(tc, test_endpoint_forms);
        tcase_add_test(tc, test_hostile_names_and_encoding);
        tcase_add_loop_test(tc, test_row_styles, 0, 2);
        tcase_add_loop_test(tc, test_special_rows, 0, 2);
        tcase_add_loop_test(tc, test_compacted_history, 0, 2);
        tcase_add_test(tc, test_paging);
        tcase_add_loop_test(tc, test_cas_rows, 0, 2);
        tcase_add_test(tc, test_cas_conflict);
        tcase_add_test(tc, test_unique_index_conflict);
        tcase_add_test(tc, test_corrupt_db);
        tcase_add_test(tc, test_busy);
        tcase_add_test(tc, test_journal_mode_kept);
        tcase_add_test(tc, test_big_batch);
        tcase_add_test(tc, test_read_ahead);
        tcase_add_test(tc, test_counter);
        tcase_add_test(tc, test_wal_checkpointed_in_background);
        tcase_add_test(tc, test_wal_reader_holds_snapshot);
        tcase_add_test(tc, test_kine_seed_tool);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(store_kine_suite)
