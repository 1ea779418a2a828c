/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kine's SQLite datastore (k3s's embedded default), written as a direct writer following kine's
 * own rules: current value = row with MAX(id) per name unless deleted, updates are new rows
 * superseding the current one inside BEGIN IMMEDIATE, name bound as TEXT, values as BLOB, never
 * UPDATE or DELETE, journal mode left as found, no VACUUM.
 *
 * In WAL mode, once we write, a thread of the store's checkpoints, on a connection of its own,
 * what our commits leave in the WAL (sqlite-checkpointer.c). se_store_read_ahead() and
 * se_store_counter read on a second instance (kine_open_reader()).
 */
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-util.h"
#include "sqlite-checkpointer.h"
#include "store-internal.h"

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

#define KINE_DEFAULT_TIMEOUT_USEC (30ULL * 1000000ULL)
#define KINE_DEFAULT_PAGE         1000u
#define KINE_MAX_VALUE            (64u * 1024u * 1024u)
/* Page cache for our connection, in KiB. Big enough to keep kine's indexes hot while a pass
 * walks the table, small enough for the engine's bounded-memory target. No mmap: touched mapped
 * pages count in the process's RSS and the database can be many times that size. */
#define KINE_CACHE_KIB 16384
/* The read-ahead instance's: it reads each page once, for the main connection to write. */
#define KINE_READER_CACHE_KIB 4096

enum {
        ST_RANGE,
        ST_COUNT,
        ST_GET,
        ST_UPDATE,
        ST_CREATE,
        ST_BEGIN,
        ST_COMMIT,
        ST_ROLLBACK,
        _ST_MAX,
};

/* Range and count walk the name index in key order and keep the row whose id is the name's
 * MAX(id) (one probe of kine_name_id_index per row), so a page costs O(limit), not O(all rows),
 * and no temporary sort is needed. */
#define CURRENT_ROW_FILTER "kv.id = (SELECT MAX(mkv.id) FROM kine AS mkv WHERE mkv.name = kv.name) AND kv.deleted = 0"

static const char *const kine_sql[_ST_MAX] = {
        [ST_RANGE] = "SELECT kv.id, kv.name, kv.created, kv.create_revision, kv.value FROM kine AS kv "
                     "WHERE kv.name >= ?1 AND kv.name < ?2 AND " CURRENT_ROW_FILTER " "
                     "ORDER BY kv.name LIMIT ?3",
        /* Both steps on covering indexes, never the table's rows: each name's MAX(id) from the
         * name index, then whether that row is a deletion from kine_id_deleted_index. Several
         * times faster than CURRENT_ROW_FILTER, which reads each row (KINE_COUNT_FALLBACK). */
        [ST_COUNT] = "SELECT COUNT(*) FROM (SELECT MAX(id) AS id FROM kine WHERE name >= ?1 AND name < ?2 GROUP BY "
                     "name) AS m WHERE EXISTS (SELECT 1 FROM kine AS d INDEXED BY kine_id_deleted_index WHERE d.id "
                     "= m.id AND d.deleted = 0)",
        [ST_GET] = "SELECT id, created, deleted, create_revision, value FROM kine "
                   "WHERE id = (SELECT MAX(id) FROM kine WHERE name = ?1)",
        /* OR FAIL, not the default ABORT: each statement inserts one row, so the outcome on a
         * unique-index conflict is the same, but SQLite then needs no statement journal (a temp
         * file copy of every page touched, per statement), which tripled the I/O of a batch. */
        /* kine's update row: create_revision carried over (the row's own id if it was a create),
         * prev_revision = current id, same lease, old_value = current value. The WHERE makes it a
         * compare-and-swap: nothing is inserted unless ?3 is still the current, live row. */
        [ST_UPDATE] = "INSERT OR FAIL INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                      "old_value) "
                      "SELECT ?1, 0, 0, CASE WHEN c.created != 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, "
                      "?2, c.value "
                      "FROM kine AS c WHERE c.id = (SELECT MAX(id) FROM kine WHERE name = ?1) AND c.id = ?3 AND "
                      "c.deleted = 0",
        /* kine's create row: prev_revision/old_value from the tombstone if the key was deleted,
         * 0/NULL if it never existed; nothing is inserted if a live row exists. */
        [ST_CREATE] = "INSERT OR FAIL INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                      "old_value) "
                      "SELECT ?1, 1, 0, 0, COALESCE(t.id, 0), 0, ?2, t.value "
                      "FROM (SELECT 1) LEFT JOIN kine AS t ON t.id = (SELECT MAX(id) FROM kine WHERE name = ?1) "
                      "WHERE t.id IS NULL OR t.deleted != 0",
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
};

/* ST_COUNT for a database without kine_id_deleted_index (not one kine made, but still valid) */
#define KINE_COUNT_FALLBACK                                                                                           \
        "SELECT COUNT(*) FROM kine AS kv WHERE kv.name >= ?1 AND kv.name < ?2 AND " CURRENT_ROW_FILTER

typedef struct kine {
        char *path;
        sqlite3 *db; /* NULL while the database file does not exist */
        sqlite3_stmt *st[_ST_MAX];
        /* started by the first write on a connection; NULL: SQLite auto-checkpoints (not WAL,
         * or no thread could be had) */
        se_wal_checkpointer *checkpointer;
        bool checkpointer_tried;
        bool reader; /* a second instance (open_reader): query_only, a smaller cache */
        uint64_t timeout_usec;
        /* The prepared statements are shared state: one operation at a time per store. */
        pthread_mutex_t lock;
} kine;

/*
 * The one place SQLite's result codes become errnos. The SQLite message is always kept in the
 * se_error. Choices:
 *   BUSY, LOCKED          -EBUSY   another writer held the lock past our busy timeout; retry
 *   CORRUPT, NOTADB       -EIO     the file is damaged or not SQLite (-EBADMSG is reserved for
 *                                  invalid encryption configuration in this library)
 *   CANTOPEN, IOERR       the OS errno SQLite saw, else -EACCES / -EIO
 *   FULL -ENOSPC, READONLY -EROFS, PERM/AUTH -EACCES, NOMEM -ENOMEM, TOOBIG -EFBIG,
 *   CONSTRAINT -EEXIST (update() treats the unique index as a conflict before this is reached),
 *   anything else (SQL errors: schema is not kine's) -EIO.
 */
static int kine_errno(sqlite3 *db, int rc) {
        int sys = db ? sqlite3_system_errno(db) : 0;

        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return sys > 0 ? -sys : -EACCES;
        case SQLITE_IOERR:
                return sys > 0 ? -sys : -EIO;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EIO;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_TOOBIG:
        case SQLITE_NOLFS:
                return -EFBIG;
        case SQLITE_INTERRUPT:
                return -EINTR;
        default:
                return -EIO;
        }
}

static int kine_fail(kine *k, int rc, se_error *e, const char *what) {
        const char *msg = k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(rc);
        int r = kine_errno(k->db, rc);

        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
                return se_error_set(e, r, "kine database %s: %s: %s (still locked by another writer after %llu ms)",
                                    k->path, what, msg, (unsigned long long) (k->timeout_usec / 1000));
        if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB)
                return se_error_set(e, r, "kine database %s: %s: %s (the file is damaged or not an SQLite database)",
                                    k->path, what, msg);
        return se_error_set(e, r, "kine database %s: %s: %s", k->path, what, msg);
}

static void kine_disconnect(kine *k) {
        se_wal_checkpointer_stop(TAKE_PTR(k->checkpointer));
        k->checkpointer_tried = false;
        for (size_t i = 0; i < _ST_MAX; i++) {
                sqlite3_finalize(k->st[i]);
                k->st[i] = NULL;
        }
        if (k->db) {
                sqlite3_close_v2(k->db);
                k->db = NULL;
        }
}

/* Opens the database if the file exists. Returns 1 when open, 0 when there is no database yet
 * (missing file, or an SQLite file with no tables at all): an empty store. Never creates it. */
static int kine_connect(kine *k, se_error *e) {
        sqlite3_stmt *q = NULL;
        struct stat st;
        int r, rc, n_tables = 0;
        bool has_kine = false;

        if (k->db)
                return 1;

        if (stat(k->path, &st) < 0) {
                r = -errno;
                if (r == -ENOENT)
                        return 0;
                return se_error_set(e, r, "kine database %s: %s", k->path, strerror(-r));
        }
        if (S_ISDIR(st.st_mode))
                return se_error_set(e, -EISDIR, "kine database %s: is a directory", k->path);

        rc = sqlite3_open_v2(k->path, &k->db, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                r = kine_fail(k, rc, e, "cannot open");
                kine_disconnect(k);
                return r;
        }
        sqlite3_extended_result_codes(k->db, 1);
        sqlite3_busy_timeout(k->db, (int) MIN(MAX(k->timeout_usec / 1000, 1u), (uint64_t) INT_MAX));
        /* Only our connection's cache; journal mode, synchronous and the file are left as kine set them. */
        rc = sqlite3_exec(k->db,
                          k->reader ? "PRAGMA query_only = 1; PRAGMA cache_size = -" STRINGIFY(KINE_READER_CACHE_KIB)
                                    : "PRAGMA cache_size = -" STRINGIFY(KINE_CACHE_KIB),
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;
        /* Statement journals in memory: on disk they cost several writes per superseding row. */
        rc = sqlite3_exec(k->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;

        /* The first read of the schema is where a damaged or foreign file shows. */
        rc = sqlite3_prepare_v2(k->db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &q, NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(q, 0);
                n_tables++;
                if (name && streq(name, "kine"))
                        has_kine = true;
        }
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE)
                goto fail_rc;

        /* kine's databases are UTF-8; in a UTF-16 one the name ranges would not match key order */
        rc = sqlite3_prepare_v2(k->db, "PRAGMA encoding", -1, &q, NULL);
        if (rc != SQLITE_OK)
                goto fail_rc;
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW &&
            (!sqlite3_column_text(q, 0) || !streq((const char *) sqlite3_column_text(q, 0), "UTF-8"))) {
                sqlite3_finalize(q);
                kine_disconnect(k);
                return se_error_set(e, -EMEDIUMTYPE,
                                    "kine database %s: not a kine database (text encoding is not "
                                    "UTF-8)",
                                    k->path);
        }
        sqlite3_finalize(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                goto fail_rc;

        if (!has_kine) {
                kine_disconnect(k);
                if (n_tables == 0)
                        return 0;
                return se_error_set(e, -EMEDIUMTYPE, "kine database %s: not a kine database (no table \"kine\")",
                                    k->path);
        }

        for (size_t i = 0; i < _ST_MAX; i++) {
                rc = sqlite3_prepare_v3(k->db, kine_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &k->st[i], NULL);
                if (rc != SQLITE_OK && i == ST_COUNT)
                        rc = sqlite3_prepare_v3(k->db, KINE_COUNT_FALLBACK, -1, SQLITE_PREPARE_PERSISTENT, &k->st[i],
                                                NULL);
                if (rc != SQLITE_OK)
                        goto fail_rc;
        }
        return 1;

fail_rc:
        r = kine_fail(k, rc, e, "cannot read the kine schema");
        kine_disconnect(k);
        return r;
}

static int kine_parse_endpoint(const char *endpoint, char **ret, se_error *e) {
        const char *p;
        char *path;

        if (!startswith(endpoint, "sqlite://"))
                return se_error_set(e, -EINVAL, "datastore-endpoint \"%s\": expected sqlite://PATH", endpoint);
        p = endpoint + STRLEN("sqlite://");
        /* kine DSNs carry driver options after '?' (_journal=WAL&cache=shared…); they are kine's, not ours. */
        path = strndup(p, strcspn(p, "?"));
        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        if (isempty(path)) {
                free(path);
                return se_error_set(e, -EINVAL, "datastore-endpoint \"%s\": no database path", endpoint);
        }
        *ret = path;
        return 0;
}

static int kine_open_as(const se_store_options *o, bool reader, void **ret_impl, se_error *e) {
        kine *k;
        int r;

        k = calloc(1, sizeof(*k));
        if (!k)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = kine_parse_endpoint(o->endpoint, &k->path, e);
        if (r < 0) {
                free(k);
                return r;
        }
        k->timeout_usec = o->timeout_usec > 0 ? o->timeout_usec : KINE_DEFAULT_TIMEOUT_USEC;
        k->reader = reader;
        pthread_mutex_init(&k->lock, NULL);

        r = kine_connect(k, e);
        if (r == 0 && o->require_data)
                r = se_error_set(e, -ENOMEDIUM,
                                 access(k->path, F_OK) < 0
                                         ? "kine database %s does not exist: check datastore-endpoint (a mistyped "
                                           "path or an unmounted disk); secrets-encrypt never creates a datastore"
                                         : "%s is an empty SQLite file, not a kine database: check datastore-endpoint",
                                 k->path);
        if (r < 0) {
                pthread_mutex_destroy(&k->lock);
                free(k->path);
                free(k);
                return r;
        }
        *ret_impl = k;
        return 0;
}

static int kine_open(const se_store_options *o, void **ret_impl, se_error *e) {
        return kine_open_as(o, false, ret_impl, e);
}

static int kine_open_reader(const se_store_options *o, void **ret_impl, se_error *e) {
        return kine_open_as(o, true, ret_impl, e);
}

static void kine_close(void *impl) {
        kine *k = impl;

        if (!k)
                return;
        kine_disconnect(k);
        pthread_mutex_destroy(&k->lock);
        free(k->path);
        free(k);
}

/* Binds [lo, hi) for prefix/start. A prefix with no successor (empty, or all 0xff) has no upper
 * bound: an empty BLOB sorts after every TEXT value, so "name < x''" keeps the index range. */
static int kine_bind_range(kine *k, sqlite3_stmt *s, const char *prefix, const char *start, char **ret_end,
                           se_error *e) {
        const char *lo = prefix;
        char *end = NULL;
        bool bounded = false;
        int rc;

        for (const char *c = prefix; *c; c++)
                if ((unsigned char) *c != 0xff)
                        bounded = true;
        if (bounded) {
                end = se_prefix_range_end(prefix);
                if (!end)
                        return se_error_set(e, -ENOMEM, "out of memory");
        }
        if (start && strcmp(start, prefix) > 0)
                lo = start;

        rc = sqlite3_bind_text(s, 1, lo, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = end ? sqlite3_bind_text(s, 2, end, -1, SQLITE_STATIC) : sqlite3_bind_zeroblob(s, 2, 0);
        if (rc != SQLITE_OK) {
                free(end);
                return kine_fail(k, rc, e, "cannot bind the key range");
        }
        *ret_end = end; /* bound STATIC: the caller frees it after the statement is reset */
        return 0;
}

static int kv_fill(sqlite3_stmt *s, int col_id, int col_created, int col_create_rev, int col_value, const char *key,
                   size_t key_size, se_kv *ret) {
        const void *v = sqlite3_column_blob(s, col_value);
        size_t n = (size_t) sqlite3_column_bytes(s, col_value);
        se_kv kv = {};

        if (n > KINE_MAX_VALUE)
                return -EFBIG;
        kv.key = strndup(key, key_size);
        kv.value = malloc(MAX(n, 1u));
        if (!kv.key || !kv.value) {
                se_kv_done(&kv);
                return -ENOMEM;
        }
        if (n > 0)
                memcpy(kv.value, v, n);
        kv.value_size = n;
        kv.mod_revision = sqlite3_column_int64(s, col_id);
        /* kine reports a create row's own id as its create_revision (the column holds 0). */
        kv.create_revision =
                sqlite3_column_int64(s, col_created) != 0 ? kv.mod_revision : sqlite3_column_int64(s, col_create_rev);
        *ret = kv;
        return 0;
}

static int kine_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        kine *k = impl;
        sqlite3_stmt *s;
        _cleanup_free_ char *end = NULL;
        se_kv_list l = {};
        size_t cap = 0;
        int r, rc;

        if (!prefix)
                prefix = "";
        if (limit == 0)
                limit = KINE_DEFAULT_PAGE;
        if (limit >= (size_t) INT64_MAX)
                limit = (size_t) INT64_MAX - 1;

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r <= 0)
                goto finish;

        s = k->st[ST_RANGE];
        r = kine_bind_range(k, s, prefix, start, &end, e);
        if (r < 0)
                goto finish;
        /* One row more than asked tells whether there is a next page. */
        sqlite3_bind_int64(s, 3, (sqlite3_int64) limit + 1);

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *name = (const char *) sqlite3_column_text(s, 1);
                size_t name_size = (size_t) sqlite3_column_bytes(s, 1);

                if (l.n_items == limit) {
                        l.more = true;
                        break;
                }
                /* kine never writes one; cut at the NUL, such names would repeat and a pager that
                 * resumes after the last key would never end */
                if (name && memchr(name, 0, name_size)) {
                        r = se_error_set(e, -EIO,
                                         "kine database %s: a key under %s holds a NUL byte: the database is "
                                         "damaged or not kine's",
                                         k->path, prefix);
                        goto reset;
                }
                if (se_kv_list_grow(&l, &cap, limit) < 0) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto reset;
                }
                r = kv_fill(s, 0, 2, 3, 4, name ? name : "", name ? name_size : 0, &l.items[l.n_items]);
                if (r < 0) {
                        r = r == -EFBIG ? se_error_set(e, r, "kine database %s: value of %s exceeds %u bytes", k->path,
                                                       name, KINE_MAX_VALUE)
                                        : se_error_set(e, r, "out of memory");
                        goto reset;
                }
                l.n_items++;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                r = kine_fail(k, rc, e, "range read failed");
                goto reset;
        }
        r = 0;
reset:
        sqlite3_reset(s);
finish:
        pthread_mutex_unlock(&k->lock);
        if (r < 0) {
                se_kv_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

static int kine_count(void *impl, const char *prefix, uint64_t *ret, se_error *e) {
        kine *k = impl;
        sqlite3_stmt *s;
        _cleanup_free_ char *end = NULL;
        uint64_t n = 0;
        int r, rc;

        if (!prefix)
                prefix = "";

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r <= 0)
                goto finish;
        s = k->st[ST_COUNT];
        r = kine_bind_range(k, s, prefix, NULL, &end, e);
        if (r < 0)
                goto finish;
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                n = (uint64_t) sqlite3_column_int64(s, 0);
                r = 0;
        } else
                r = kine_fail(k, rc, e, "count failed");
        sqlite3_reset(s);
finish:
        pthread_mutex_unlock(&k->lock);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

static int kine_get(void *impl, const char *key, se_kv *ret, se_error *e) {
        kine *k = impl;
        sqlite3_stmt *s;
        int r, rc;

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r < 0)
                goto finish;
        if (r == 0) {
                r = se_error_set(e, -ENOENT, "%s: not found (kine database %s does not exist)", key, k->path);
                goto finish;
        }
        s = k->st[ST_GET];
        rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && sqlite3_column_int64(s, 2) == 0) {
                r = kv_fill(s, 0, 1, 3, 4, key, strlen(key), ret);
                if (r < 0)
                        r = se_error_set(e, r, "kine database %s: cannot read %s", k->path, key);
        } else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
                r = se_error_set(e, -ENOENT, "%s: not found", key);
        else
                r = kine_fail(k, rc, e, "read failed");
        sqlite3_reset(s);
finish:
        pthread_mutex_unlock(&k->lock);
        return r;
}

/* kine's schema declares id AUTOINCREMENT: a new row's id is larger than any id the table ever
 * had, so MAX(id) is a watermark. Without it SQLite may hand out the id of a deleted last row
 * again; then there is no watermark. */
static int kine_revision(void *impl, int64_t *ret, se_error *e) {
        kine *k = impl;
        sqlite3_stmt *q = NULL;
        bool autoincrement = false;
        int64_t max = 0;
        int r, rc;

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r == 0)
                r = se_error_set(e, -ENOENT, "kine database %s does not exist", k->path);
        if (r < 0)
                goto finish;
        rc = sqlite3_prepare_v2(k->db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kine'", -1, &q,
                                NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
                autoincrement = sqlite3_column_text(q, 0) &&
                                strcasestr((const char *) sqlite3_column_text(q, 0), "AUTOINCREMENT");
        sqlite3_finalize(q);
        q = NULL;
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                r = kine_fail(k, rc, e, "cannot read the kine schema");
                goto finish;
        }
        if (!autoincrement) {
                r = se_error_set(e, -EOPNOTSUPP, "kine database %s: table kine has no AUTOINCREMENT id", k->path);
                goto finish;
        }
        rc = sqlite3_prepare_v2(k->db, "SELECT MAX(id) FROM kine", -1, &q, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
                max = sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        r = rc == SQLITE_ROW ? 0 : kine_fail(k, rc, e, "cannot read the last revision");
finish:
        pthread_mutex_unlock(&k->lock);
        if (r < 0)
                return r;
        *ret = max;
        return 0;
}

/*
 * One statement, run inside SQLite: nothing is paged, so nothing can be skipped between pages.
 * The same rows as a range read: name bound as TEXT in [from, to), the current live row of each
 * name. The value test compares bytes: a value kine stored as TEXT is cast to its UTF-8 bytes,
 * and substr() of TEXT counts characters, but the prefixes are ASCII, so "the first n characters
 * are the prefix" and "the first n bytes are the prefix" are the same test.
 * With min_rev the rows are found by id (+name keeps SQLite off the name index). Else by name: the
 * newest id of each name from kine_name_index alone, then that one row (CROSS JOIN keeps the
 * grouping the outer loop, a co-routine: no temporary table as large as the range), so rows that
 * are superseded are never read; ten times faster than testing each row for being the newest.
 */
static int kine_count_values(void *impl, const char *from, const char *to, int64_t min_rev, int64_t max_rev,
                             const char *const *value_prefixes, uint64_t *ret, se_error *e) {
        kine *k = impl;
        sqlite3_stmt *q = NULL;
        se_buf sql = {};
        uint64_t n = 0;
        int r, rc, i = 5;

        if (min_rev > 0)
                r = se_buf_printf(&sql, "SELECT COUNT(*) FROM kine AS kv WHERE kv.id >= ?3 AND kv.id <= ?4 AND "
                                        "+kv.name >= ?1 AND +kv.name < ?2");
        else
                r = se_buf_printf(&sql, "SELECT COUNT(*) FROM (SELECT MAX(id) AS m FROM kine WHERE name >= ?1 AND "
                                        "name < ?2 GROUP BY name) AS c CROSS JOIN kine AS kv ON kv.id = c.m "
                                        "WHERE c.m >= ?3 AND c.m <= ?4 AND kv.deleted = 0");
        for (const char *const *p = value_prefixes; p && *p && r >= 0; p++)
                r = se_buf_printf(&sql, "%s CAST(substr(kv.value, 1, %zu) AS BLOB) = ?%d",
                                  p == value_prefixes ? " AND (" : " OR", strlen(*p), i++);
        if (r >= 0 && value_prefixes && *value_prefixes)
                r = se_buf_printf(&sql, ")");
        if (r >= 0 && min_rev > 0) /* last: the probe runs only for rows that passed the cheap tests */
                r = se_buf_printf(&sql, " AND " CURRENT_ROW_FILTER);
        if (r >= 0)
                r = se_buf_append(&sql, "", 1);
        if (r < 0) {
                se_buf_free(&sql);
                return se_error_set(e, -ENOMEM, "out of memory");
        }

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r == 0)
                r = se_error_set(e, -ENOENT, "kine database %s does not exist", k->path);
        if (r < 0)
                goto finish;
        rc = sqlite3_prepare_v2(k->db, (const char *) sql.data, -1, &q, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(q, 1, from, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                /* an empty BLOB sorts after every TEXT value: no upper bound, index range kept */
                rc = to ? sqlite3_bind_text(q, 2, to, -1, SQLITE_STATIC) : sqlite3_bind_zeroblob(q, 2, 0);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(q, 3, min_rev);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(q, 4, max_rev > 0 ? max_rev : INT64_MAX);
        i = 5;
        for (const char *const *p = value_prefixes; p && *p && rc == SQLITE_OK; p++)
                rc = sqlite3_bind_blob(q, i++, *p, (int) strlen(*p), SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
                n = (uint64_t) sqlite3_column_int64(q, 0);
                r = 0;
        } else
                r = kine_fail(k, rc, e, "cannot count the stored values");
        sqlite3_finalize(q);
finish:
        pthread_mutex_unlock(&k->lock);
        se_buf_free(&sql);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

static void kine_rollback(kine *k) {
        /* After some errors (FULL, IOERR) SQLite has already rolled back by itself. */
        if (sqlite3_get_autocommit(k->db))
                return;
        (void) sqlite3_step(k->st[ST_ROLLBACK]);
        sqlite3_reset(k->st[ST_ROLLBACK]);
}

static int kine_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        kine *k = impl;
        int r, rc, written = 0;

        for (size_t i = 0; i < n; i++) {
                u[i].conflict = false;
                u[i].new_revision = 0;
        }
        if (n > INT_MAX)
                return se_error_set(e, -E2BIG, "kine: too many updates in one batch");

        pthread_mutex_lock(&k->lock);
        r = kine_connect(k, e);
        if (r < 0)
                goto finish;
        if (r == 0) {
                r = se_error_set(e, -ENOENT, "kine database %s does not exist: cannot write %s", k->path, u[0].key);
                goto finish;
        }

        if (!k->checkpointer_tried) {
                k->checkpointer_tried = true;
                (void) se_wal_checkpointer_start(k->db, k->path, &k->checkpointer);
        }

        /* Take the write lock up front (waiting up to the busy timeout), as kine does with
         * _txlock=immediate: the current-row reads and inserts below then see no interleaving writer. */
        rc = sqlite3_step(k->st[ST_BEGIN]);
        sqlite3_reset(k->st[ST_BEGIN]);
        if (rc != SQLITE_DONE) {
                r = kine_fail(k, rc, e, "cannot begin a write transaction");
                goto finish;
        }

        for (size_t i = 0; i < n; i++) {
                sqlite3_stmt *s = k->st[u[i].expected_mod_revision == 0 ? ST_CREATE : ST_UPDATE];
                static const uint8_t empty[1];

                if (u[i].value_size > KINE_MAX_VALUE) {
                        r = se_error_set(e, -EFBIG, "kine: value for %s exceeds %u bytes", u[i].key, KINE_MAX_VALUE);
                        goto rollback;
                }
                rc = sqlite3_bind_text(s, 1, u[i].key, -1, SQLITE_STATIC);
                if (rc == SQLITE_OK)
                        /* never NULL: a zero-length value is an empty BLOB, as kine stores it */
                        rc = sqlite3_bind_blob(s, 2, u[i].value ? (const void *) u[i].value : empty,
                                               (int) u[i].value_size, SQLITE_STATIC);
                if (rc == SQLITE_OK && u[i].expected_mod_revision != 0)
                        rc = sqlite3_bind_int64(s, 3, u[i].expected_mod_revision);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(s);

                if (rc == SQLITE_DONE) {
                        if (sqlite3_changes(k->db) > 0) {
                                u[i].new_revision = sqlite3_last_insert_rowid(k->db);
                                written++;
                        } else
                                u[i].conflict = true;
                } else if ((rc & 0xff) == SQLITE_CONSTRAINT) {
                        /* kine_name_prev_revision_uindex: another row already supersedes the one
                         * we read. Only this statement is undone; the transaction goes on. */
                        u[i].conflict = true;
                } else {
                        r = kine_fail(k, rc, e, "write failed");
                        sqlite3_reset(s);
                        goto rollback;
                }
                sqlite3_reset(s);
        }

        rc = sqlite3_step(k->st[ST_COMMIT]);
        sqlite3_reset(k->st[ST_COMMIT]);
        if (rc != SQLITE_DONE) {
                r = kine_fail(k, rc, e, "commit failed");
                goto rollback;
        }
        r = written;
        goto finish;

rollback:
        kine_rollback(k);
        for (size_t i = 0; i < n; i++)
                u[i].new_revision = 0;
finish:
        pthread_mutex_unlock(&k->lock);
        return r;
}

const se_store_ops se_store_kine_ops = {
        .kind = SE_STORE_KINE,
        .open = kine_open,
        .close = kine_close,
        .range = kine_range,
        .count = kine_count,
        .get = kine_get,
        .update = kine_update,
        .open_reader = kine_open_reader,
        .revision = kine_revision,
        .count_values = kine_count_values,
};
