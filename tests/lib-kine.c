/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib-kine.h"
#include "macro.h"

bool tk_exit_on_error = false;

/* kine's DDL, verbatim (reference §5.2; the last index exists since v0.15). */
static const char kine_ddl[] =
        "CREATE TABLE IF NOT EXISTS kine (\n"
        "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "  name TEXT,\n"
        "  created INTEGER,\n"
        "  deleted INTEGER,\n"
        "  create_revision INTEGER,\n"
        "  prev_revision INTEGER,\n"
        "  lease INTEGER,\n"
        "  value BLOB,\n"
        "  old_value BLOB);\n"
        "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name);\n"
        "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id);\n"
        "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted);\n"
        "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision);\n"
        "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);\n"
        "CREATE INDEX IF NOT EXISTS kine_id_compact_rev_key_with_prev_revision_index\n"
        "  ON kine(id, name, prev_revision) WHERE name != 'compact_rev_key' AND prev_revision != 0;\n";

_printf_(1, 2) static _noreturn_ void tk_fail(const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (tk_exit_on_error) {
                fprintf(stderr, "%s\n", buf);
                exit(EXIT_FAILURE);
        }
        ck_abort_msg("%s", buf);
        abort(); /* not reached */
}

static void tk_check(sqlite3 *db, int rc, const char *what) {
        if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
                tk_fail("kine test helper: %s: %s (%d)", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
}

static sqlite3_stmt *tk_prepare(sqlite3 *db, const char *sql) {
        sqlite3_stmt *s = NULL;

        tk_check(db, sqlite3_prepare_v2(db, sql, -1, &s, NULL), sql);
        return s;
}

void tk_exec(sqlite3 *db, const char *sql) {
        char *err = NULL;

        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
                char msg[512];
                snprintf(msg, sizeof(msg), "%s", err ? err : "?");
                sqlite3_free(err);
                tk_fail("kine test helper: %s: %s", sql, msg);
        }
}

sqlite3 *tk_open(const char *path) {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);

        if (rc != SQLITE_OK) {
                char msg[512];
                snprintf(msg, sizeof(msg), "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close(db);
                tk_fail("kine test helper: cannot open %s: %s", path, msg);
        }
        sqlite3_busy_timeout(db, 5000);
        return db;
}

void tk_close(sqlite3 *db) {
        if (db)
                tk_check(db, sqlite3_close(db), "close");
}

void tk_ensure_schema(sqlite3 *db) {
        tk_exec(db, kine_ddl);
}

sqlite3 *tk_create(const char *path, bool wal) {
        sqlite3 *db = NULL;
        int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);

        if (rc != SQLITE_OK) {
                sqlite3_close(db);
                tk_fail("kine test helper: cannot create %s: %s", path, sqlite3_errstr(rc));
        }
        sqlite3_busy_timeout(db, 5000);
        if (wal)
                tk_exec(db, "PRAGMA journal_mode=WAL");
        tk_exec(db, kine_ddl);
        /* kine at start: compact_rev_key is created once (value ''), k3s then writes its health key. */
        tk_put_str(db, TK_V016, "compact_rev_key", "");
        tk_put_str(db, TK_V016, "/registry/health", "{\"health\":\"true\"}");
        return db;
}

typedef struct tk_current {
        bool exists;
        int64_t id, created, deleted, create_revision, lease;
} tk_current;

/* The name's MAX(id) row, read kine's way. */
static tk_current tk_current_row(sqlite3 *db, const char *key) {
        sqlite3_stmt *s = tk_prepare(db, "SELECT id, created, deleted, create_revision, lease FROM kine "
                                         "WHERE id = (SELECT MAX(id) FROM kine WHERE name = ?)");
        tk_current c = {};
        int rc;

        sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(s);
        tk_check(db, rc, "read current row");
        if (rc == SQLITE_ROW) {
                c.exists = true;
                c.id = sqlite3_column_int64(s, 0);
                c.created = sqlite3_column_int64(s, 1);
                c.deleted = sqlite3_column_int64(s, 2);
                c.create_revision = sqlite3_column_int64(s, 3);
                c.lease = sqlite3_column_int64(s, 4);
        }
        sqlite3_finalize(s);
        return c;
}

/* One kine row; old_value copied from row old_id (NULL if 0). value NULL+size 0 binds SQL NULL. */
static int64_t tk_insert(sqlite3 *db, const char *key, int created, int deleted, int64_t create_revision,
                         int64_t prev_revision, int64_t lease, const void *value, size_t size, bool value_null,
                         int64_t old_id) {
        sqlite3_stmt *s = tk_prepare(
                db,
                "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, (SELECT value FROM kine WHERE id = ?))");
        int64_t id;

        sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 2, created);
        sqlite3_bind_int(s, 3, deleted);
        sqlite3_bind_int64(s, 4, create_revision);
        sqlite3_bind_int64(s, 5, prev_revision);
        sqlite3_bind_int64(s, 6, lease);
        if (value_null)
                sqlite3_bind_null(s, 7);
        else
                sqlite3_bind_blob(s, 7, size > 0 ? value : "", (int) size, SQLITE_TRANSIENT);
        if (old_id > 0)
                sqlite3_bind_int64(s, 8, old_id);
        else
                sqlite3_bind_null(s, 8);
        tk_check(db, sqlite3_step(s), "insert kine row");
        sqlite3_finalize(s);
        id = sqlite3_last_insert_rowid(db);
        return id;
}

int64_t tk_create_key(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size) {
        tk_current c = tk_current_row(db, key);

        if (c.exists && c.deleted == 0)
                tk_fail("kine test helper: create %s: key exists (row %lld)", key, (long long) c.id);
        /* both styles: prev_revision and old_value from the tombstone, 0/NULL if never existed */
        return tk_insert(db, key, 1, 0, 0, c.exists ? c.id : 0, 0, value, size, false, c.exists ? c.id : 0);
}

int64_t tk_update_key(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size) {
        tk_current c = tk_current_row(db, key);

        if (!c.exists || c.deleted != 0)
                tk_fail("kine test helper: update %s: no live row", key);
        return tk_insert(db, key, 0, 0, c.created ? c.id : c.create_revision, c.id, c.lease, value, size, false, c.id);
}

int64_t tk_put(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size) {
        tk_current c = tk_current_row(db, key);

        if (c.exists && c.deleted == 0)
                return tk_update_key(db, style, key, value, size);
        return tk_create_key(db, style, key, value, size);
}

int64_t tk_delete_key(sqlite3 *db, tk_style style, const char *key) {
        tk_current c = tk_current_row(db, key);
        sqlite3_stmt *s;
        uint8_t *v = NULL;
        size_t n = 0;
        int64_t id;

        if (!c.exists || c.deleted != 0)
                tk_fail("kine test helper: delete %s: no live row", key);
        if (style == TK_V016)
                return tk_insert(db, key, 0, 1, 0, c.id, 0, NULL, 0, true, c.id);

        /* ≤ v0.15: the tombstone repeats the last value in both value and old_value */
        s = tk_prepare(db, "SELECT value FROM kine WHERE id = ?");
        sqlite3_bind_int64(s, 1, c.id);
        tk_check(db, sqlite3_step(s), "read value");
        n = (size_t) sqlite3_column_bytes(s, 0);
        v = malloc(n + 1);
        if (!v)
                tk_fail("out of memory");
        if (n > 0)
                memcpy(v, sqlite3_column_blob(s, 0), n);
        sqlite3_finalize(s);
        id = tk_insert(db, key, 0, 1, c.created ? c.id : c.create_revision, c.id, c.lease, v, n, false, c.id);
        free(v);
        return id;
}

int64_t tk_gap(sqlite3 *db) {
        sqlite3_stmt *s;
        int64_t id;
        char name[64];

        tk_exec(db, "UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'kine'");
        s = tk_prepare(db, "SELECT seq FROM sqlite_sequence WHERE name = 'kine'");
        tk_check(db, sqlite3_step(s), "read sqlite_sequence");
        id = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);

        snprintf(name, sizeof(name), "gap-%lld", (long long) id);
        s = tk_prepare(db,
                       "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value, "
                       "old_value) VALUES(?, ?, 0, 1, 0, 0, 0, NULL, NULL)");
        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT);
        tk_check(db, sqlite3_step(s), "insert gap row");
        sqlite3_finalize(s);
        return id;
}

void tk_compact(sqlite3 *db, int64_t target) {
        sqlite3_stmt *s;

        tk_exec(db, "BEGIN IMMEDIATE");
        s = tk_prepare(db, "DELETE FROM kine WHERE id IN ("
                           "SELECT prev_revision FROM kine WHERE name != 'compact_rev_key' AND prev_revision != 0 "
                           "AND id <= ?1 UNION SELECT id FROM kine WHERE deleted != 0 AND id <= ?1)");
        sqlite3_bind_int64(s, 1, target);
        tk_check(db, sqlite3_step(s), "compact");
        sqlite3_finalize(s);
        s = tk_prepare(db, "UPDATE kine SET prev_revision = ? WHERE name = 'compact_rev_key'");
        sqlite3_bind_int64(s, 1, target);
        tk_check(db, sqlite3_step(s), "update compact_rev_key");
        sqlite3_finalize(s);
        tk_exec(db, "COMMIT");
}

static int64_t tk_query_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *s = tk_prepare(db, sql);
        int64_t v;

        tk_check(db, sqlite3_step(s), sql);
        v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
}

int64_t tk_revision(sqlite3 *db) {
        return tk_query_int(db, "SELECT COALESCE(MAX(id), 0) FROM kine");
}

int64_t tk_row_count(sqlite3 *db) {
        return tk_query_int(db, "SELECT COUNT(*) FROM kine");
}

static uint8_t *tk_column_dup(sqlite3_stmt *s, int col, size_t *ret_size) {
        size_t n;
        uint8_t *p;

        *ret_size = 0;
        if (sqlite3_column_type(s, col) == SQLITE_NULL)
                return NULL;
        n = (size_t) sqlite3_column_bytes(s, col);
        p = malloc(n + 1);
        if (!p)
                tk_fail("out of memory");
        if (n > 0)
                memcpy(p, sqlite3_column_blob(s, col), n);
        p[n] = 0;
        *ret_size = n;
        return p;
}

bool tk_row_get(sqlite3 *db, int64_t id, tk_row *ret) {
        sqlite3_stmt *s = tk_prepare(db, "SELECT id, name, created, deleted, create_revision, prev_revision, lease, "
                                         "value, old_value FROM kine WHERE id = ?");
        tk_row r = {};
        int rc;

        sqlite3_bind_int64(s, 1, id);
        rc = sqlite3_step(s);
        tk_check(db, rc, "read row");
        if (rc != SQLITE_ROW) {
                sqlite3_finalize(s);
                return false;
        }
        r.id = sqlite3_column_int64(s, 0);
        r.name = strdup_null((const char *) sqlite3_column_text(s, 1));
        r.created = sqlite3_column_int64(s, 2);
        r.deleted = sqlite3_column_int64(s, 3);
        r.create_revision = sqlite3_column_int64(s, 4);
        r.prev_revision = sqlite3_column_int64(s, 5);
        r.lease = sqlite3_column_int64(s, 6);
        r.value = tk_column_dup(s, 7, &r.value_size);
        r.old_value = tk_column_dup(s, 8, &r.old_value_size);
        sqlite3_finalize(s);
        *ret = r;
        return true;
}

void tk_row_done(tk_row *r) {
        if (!r)
                return;
        free(r->name);
        free(r->value);
        free(r->old_value);
        *r = (tk_row){};
}

bool tk_kine_get(sqlite3 *db, const char *key, uint8_t **ret_value, size_t *ret_size, int64_t *ret_mod_revision,
                 int64_t *ret_create_revision) {
        sqlite3_stmt *s = tk_prepare(db, "SELECT MAX(id) FROM kine WHERE name = ?");
        int64_t id;
        tk_row r;

        sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
        tk_check(db, sqlite3_step(s), "read max id");
        id = sqlite3_column_int64(s, 0); /* NULL → 0 */
        sqlite3_finalize(s);
        if (id == 0 || !tk_row_get(db, id, &r))
                return false;
        if (r.deleted != 0) {
                tk_row_done(&r);
                return false;
        }
        if (ret_mod_revision)
                *ret_mod_revision = r.id;
        if (ret_create_revision)
                *ret_create_revision = r.created ? r.id : r.create_revision;
        if (ret_size)
                *ret_size = r.value_size;
        if (ret_value)
                *ret_value = r.value ? TAKE_PTR(r.value) : calloc(1, 1);
        tk_row_done(&r);
        return true;
}

int64_t tk_kine_count(sqlite3 *db, const char *prefix) {
        sqlite3_stmt *s = tk_prepare(
                db, "SELECT DISTINCT name FROM kine WHERE substr(CAST(name AS BLOB), 1, ?2) = CAST(?1 AS BLOB)");
        int64_t n = 0;
        int rc;

        sqlite3_bind_text(s, 1, prefix, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, (int64_t) strlen(prefix));
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                char *name = strdup_null((const char *) sqlite3_column_text(s, 0));
                if (name && tk_kine_get(db, name, NULL, NULL, NULL, NULL))
                        n++;
                free(name);
        }
        tk_check(db, rc, "list names");
        sqlite3_finalize(s);
        return n;
}
