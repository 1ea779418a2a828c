/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kine's PostgreSQL datastore (k3s --datastore-endpoint=postgres://…), written as a direct writer
 * under kine's own rules, as store-kine.c does for SQLite: the current value is the row with the
 * name's MAX(id) unless deleted; an update is a new row superseding the current one (created 0,
 * create_revision carried over, prev_revision = the superseded id, old_value = its value); never
 * UPDATE or DELETE. Keys are selected as kine selects them (name LIKE 'prefix%', ordered by name
 * in the column's collation). An update is written only if the row it supersedes is still the
 * name's current one; a row that another writer superseded first is skipped and reported as a
 * conflict.
 *
 * A batch holds SHARE ROW EXCLUSIVE on the table, as kine's SQLite writers hold the database
 * lock: kine's inserts wait for the batch, so ids are committed in order and kine's pollers,
 * which read rows by ascending id, never see a gap our open transaction would later fill, and the
 * current-row check inside the batch is exact (the unique (name, prev_revision) index, kine's own
 * compare-and-swap, could not refuse a row that passed it). Reads (kine's and the API server's)
 * are not blocked.
 */
#include <endian.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-util.h"
#include "sql-dlopen.h"
#include "store-internal.h"

#define PG_DEFAULT_TIMEOUT_USEC (30ULL * 1000000ULL)
#define PG_DEFAULT_PAGE         1000u
#define PG_MAX_VALUE            (64u * 1024u * 1024u)
#define PG_MAX_PARAMS           16

#define OID_INT8        20
#define OID_TEXT        25
#define OID_BYTEA       17
#define OID_INT8_ARRAY  1016
#define OID_TEXT_ARRAY  1009
#define OID_BYTEA_ARRAY 1001

/* A page: the current row (the name's MAX(id)) of each of up to $3 names from $2 on, deleted ones
 * included so the caller sees how far the names went; their values are left out. $1 LIKE pattern.
 * One walk of the name index from $2, each name's rows in id order: a row whose next row has
 * another name is its name's current one. Every row of the page's names is read (the superseded
 * ones too, until kine compacts them), where the previous form, a walk of the names one index
 * probe each and a backward probe of (name, id) per name, cost twice the server time (1.7 against
 * 0.8 s for 100,000 secrets) on the second core the writes need. Without sorts (the session's
 * enable_sort) the planner has only the index walk, whatever the table's statistics say; names
 * with several rows are ordered by id in groups (incremental sort). A filter on each row
 * (id = its name's MAX(id)) or a GROUP BY … LIMIT let the planner scan and sort every remaining
 * row per page. Columns cast so the binary results have one layout whatever integer widths the
 * table was created with. */
#define RANGE_SQL(cmp)                                                                                                \
        "SELECT s.id::int8, s.name, s.created::int8, s.create_revision::int8, "                                       \
        "CASE WHEN s.deleted = 0 THEN s.value END, (s.deleted = 0)::int4::int8 "                                      \
        "FROM (SELECT kv.*, lead(kv.name) OVER (ORDER BY kv.name, kv.id) AS next FROM kine AS kv "                    \
        "WHERE kv.name LIKE $1 AND kv.name " cmp " $2) AS s "                                                         \
        "WHERE s.next IS DISTINCT FROM s.name ORDER BY s.name LIMIT $3"
static const char sql_range[] = RANGE_SQL(">=");
static const char sql_range_after[] = RANGE_SQL(">");
/* Exact: a live row with no later row of its name is the name's current one (id is the key, never
 * NULL). An anti-join the planner can hash, where the per-row MAX(id) was an index probe a row. */
static const char sql_count[] =
        "SELECT COUNT(*)::int8 FROM kine AS kv WHERE kv.name LIKE $1 AND kv.name >= $2 AND kv.deleted = 0 AND "
        "NOT EXISTS (SELECT 1 FROM kine AS n WHERE n.name = kv.name AND n.id > kv.id)";
static const char sql_get[] = "SELECT id::int8, created::int8, deleted::int8, create_revision::int8, value FROM kine "
                              "WHERE name = $1 ORDER BY id DESC LIMIT 1";
/* One statement for the whole batch: each (name, expected id, value) becomes kine's update row if
 * the expected id is still the name's current, live row, which one backward probe of (name, id)
 * both finds and reads (old_value, lease, create_revision). Ids follow the batch order. No ON
 * CONFLICT: under the batch's table lock nobody else inserts, so a row that passed the check has
 * no successor the unique index could hold (a speculative insertion cost 7 % of the statement). */
static const char sql_update[] =
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
        "SELECT c.name, 0, 0, CASE WHEN c.created != 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, "
        "u.value, c.value "
        "FROM unnest($1::text[], $2::int8[], $3::bytea[]) WITH ORDINALITY AS u(name, rev, value, ord) "
        "CROSS JOIN LATERAL (SELECT * FROM kine AS m WHERE m.name = u.name ORDER BY m.id DESC LIMIT 1) AS c "
        "WHERE c.id = u.rev AND c.deleted = 0 "
        "ORDER BY u.ord RETURNING prev_revision::int8, id::int8";
/* kine's create rows, for the whole batch: prev_revision/old_value from the tombstone if the key was
 * deleted, 0/NULL if it never existed; nothing is inserted for a key with a live row. */
static const char sql_create[] =
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
        "SELECT u.name, 1, 0, 0, COALESCE(t.id, 0), 0, u.value, t.value "
        "FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(name, value, ord) "
        "LEFT JOIN kine AS t ON t.id = (SELECT MAX(m.id) FROM kine AS m WHERE m.name = u.name) "
        "WHERE t.id IS NULL OR t.deleted != 0 "
        "ORDER BY u.ord RETURNING name, id::int8";
/* The batch statements, prepared as name on each connection (pg_prepare). */
typedef enum batch_sql_kind {
        BATCH_SQL_CREATE,
        BATCH_SQL_UPDATE,
        _BATCH_SQL_MAX,
} batch_sql_kind;

static const struct {
        const char *name, *sql;
        int n_params;
        Oid types[3];
} batch_sql[_BATCH_SQL_MAX] = {
        [BATCH_SQL_CREATE] = {"secrets_encrypt_create", sql_create, 2, {OID_TEXT_ARRAY, OID_BYTEA_ARRAY}},
        [BATCH_SQL_UPDATE] = {"secrets_encrypt_update",
                              sql_update,
                              3,
                              {OID_TEXT_ARRAY, OID_INT8_ARRAY, OID_BYTEA_ARRAY}},
};

/* pg_catalog, not information_schema: it shows a table our role has no rights on (to be refused
 * by name rather than taken for a database without kine). "kine" is resolved on the search path,
 * as kine's own unqualified statements resolve it. */
static const char sql_schema[] =
        "SELECT (SELECT COUNT(*) FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS ns "
        "ON ns.oid = c.relnamespace WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')), "
        "(SELECT COUNT(*) FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass('kine') AND attnum > 0 AND "
        "NOT attisdropped), "
        "(SELECT COUNT(*) FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass('kine') AND attnum > 0 AND "
        "NOT attisdropped AND attname IN ('id', 'name', 'created', 'deleted', 'create_revision', 'prev_revision', "
        "'lease', 'value', 'old_value')), "
        "(SELECT COUNT(*) FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass('kine') AND i.indisunique AND ic.relname = 'kine_name_prev_revision_uindex')";

typedef struct pgsql {
        char *display; /* the endpoint with its password masked, for messages */
        const char *kw[PG_MAX_PARAMS + 1];
        char *val[PG_MAX_PARAMS + 1];
        PGconn *conn;
        bool prepared[_BATCH_SQL_MAX]; /* batch_sql[i] is prepared on conn */
        uint64_t timeout_usec;
        pthread_mutex_t lock; /* one operation at a time per store */
} pgsql;

static int64_t get_int8(const PGresult *res, int row, int col) {
        uint64_t v;

        if (sym_PQgetisnull(res, row, col) || sym_PQgetlength(res, row, col) != 8)
                return 0;
        memcpy(&v, sym_PQgetvalue(res, row, col), 8);
        return (int64_t) be64toh(v);
}

/*
 * The one place PostgreSQL's SQLSTATEs become errnos:
 *   28xxx (bad password, no pg_hba entry), 42501 -EACCES   3D000 (no such database) -ENOMEDIUM
 *   42P01, 42703 (no such table/column) -EMEDIUMTYPE        08xxx, 57P0x -ECONNRESET (server gone)
 *   40001, 40P01, 55P03 -EBUSY      57014 -ETIMEDOUT      53100 -ENOSPC   25006 -EROFS
 *   anything else -EIO.
 */
static int pg_sqlstate_errno(const char *st) {
        if (!st)
                return -EIO;
        if (startswith(st, "28") || streq(st, "42501"))
                return -EACCES;
        if (streq(st, "3D000"))
                return -ENOMEDIUM;
        if (streq(st, "42P01") || streq(st, "42703"))
                return -EMEDIUMTYPE;
        if (startswith(st, "08") || startswith(st, "57P"))
                return -ECONNRESET;
        if (streq(st, "40001") || streq(st, "40P01") || streq(st, "55P03"))
                return -EBUSY;
        if (streq(st, "57014"))
                return -ETIMEDOUT;
        if (streq(st, "53100"))
                return -ENOSPC;
        if (streq(st, "25006"))
                return -EROFS;
        return -EIO;
}

/* libpq reports a failed connection without an SQLSTATE: its message is all there is. */
static int pg_connect_errno(const char *msg) {
        if (strstr(msg, "password") || strstr(msg, "authentication failed") || strstr(msg, "pg_hba.conf") ||
            strstr(msg, "permission denied"))
                return -EACCES;
        if (strstr(msg, "does not exist") && strstr(msg, "database"))
                return -ENOMEDIUM;
        if (strstr(msg, "SSL") || strstr(msg, "certificate") || strstr(msg, "ssl"))
                return -EPROTO;
        if (strstr(msg, "timeout expired"))
                return -ETIMEDOUT;
        if (strstr(msg, "could not translate host name"))
                return -EHOSTUNREACH;
        return -ECONNREFUSED;
}

static void chomp(char *s) {
        size_t n = strlen(s);

        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
}

static int pg_fail(pgsql *p, PGresult *res, se_error *e, const char *what) {
        _cleanup_free_ char *msg = NULL;
        int r;

        if (p->conn && sym_PQstatus(p->conn) == CONNECTION_BAD) {
                msg = strdup(sym_PQerrorMessage(p->conn));
                r = -ECONNRESET;
        } else if (res) {
                msg = strdup(sym_PQresultErrorMessage(res));
                r = pg_sqlstate_errno(sym_PQresultErrorField(res, PG_DIAG_SQLSTATE));
        } else {
                msg = strdup(p->conn ? sym_PQerrorMessage(p->conn) : "no connection");
                r = -EIO;
        }
        if (!msg)
                return se_error_set(e, -ENOMEM, "out of memory");
        chomp(msg);
        if (r == -EMEDIUMTYPE)
                return se_error_set(e, r, "PostgreSQL %s: %s: %s (not kine's schema)", p->display, what, msg);
        if (r == -ECONNRESET)
                return se_error_set(e, r, "PostgreSQL %s: %s: connection lost: %s", p->display, what,
                                    isempty(msg) ? "server closed the connection" : msg);
        return se_error_set(e, r, "PostgreSQL %s: %s: %s", p->display, what, msg);
}

static void pg_disconnect(pgsql *p) {
        if (p->conn) {
                sym_PQfinish(p->conn);
                p->conn = NULL;
        }
}

/* Runs a statement with no result rows; the PGresult is cleared. */
static int pg_exec(pgsql *p, const char *sql, se_error *e, const char *what) {
        PGresult *res = sym_PQexec(p->conn, sql);
        int r = 0;

        if (!res || (sym_PQresultStatus(res) != PGRES_COMMAND_OK && sym_PQresultStatus(res) != PGRES_TUPLES_OK))
                r = pg_fail(p, res, e, what);
        sym_PQclear(res);
        return r;
}

/* Connects if not connected (or the connection broke). 1 = connected to a database holding kine's
 * table, 0 = a database with no table at all (an empty store), < 0 error. Never creates anything. */
static int pg_connect(pgsql *p, se_error *e) {
        PGresult *res;
        int64_t n_tables, n_cols, n_kine_cols, n_uindex;
        char sql[512];
        int r;

        if (p->conn && sym_PQstatus(p->conn) == CONNECTION_OK)
                return 1;
        pg_disconnect(p);

        memset(p->prepared, 0, sizeof(p->prepared));
        p->conn = sym_PQconnectdbParams(p->kw, (const char *const *) p->val, 1);
        if (!p->conn)
                return se_error_set(e, -ENOMEM, "out of memory");
        if (sym_PQstatus(p->conn) != CONNECTION_OK) {
                _cleanup_free_ char *msg = strdup(sym_PQerrorMessage(p->conn));

                pg_disconnect(p);
                if (!msg)
                        return se_error_set(e, -ENOMEM, "out of memory");
                chomp(msg);
                r = pg_connect_errno(msg);
                switch (r) {
                case -ENOMEDIUM:
                        return se_error_set(e, r,
                                            "PostgreSQL %s: %s: check datastore-endpoint (secrets-encrypt never "
                                            "creates a datastore)",
                                            p->display, msg);
                case -EACCES:
                        return se_error_set(e, r,
                                            "PostgreSQL %s: %s: check the user and password in "
                                            "datastore-endpoint",
                                            p->display, msg);
                case -EPROTO:
                        return se_error_set(e, r,
                                            "PostgreSQL %s: TLS failed: %s: check datastore-cafile, "
                                            "datastore-certfile, datastore-keyfile and sslmode",
                                            p->display, msg);
                default:
                        return se_error_set(e, r, "PostgreSQL %s: cannot connect: %s", p->display, msg);
                }
        }

        /* A page must walk kine_name_index in key order from the first key: a plan that gathers
         * every row after it and sorts them (which stale statistics on kine's append-only table
         * make look cheap) would cost O(rows) per page. Without sorts and bitmap scans the
         * planner has only the ordered index walk; this session only. No JIT: that plan's
         * cost estimate passes jit_above_cost, and compiling took longer than running it. lz4
         * for the values this session writes, where the server offers it (PostgreSQL >= 14 built
         * with it): an update row holds two values (value, old_value), together over the size at
         * which the server tries to compress them, and ciphertext never compresses; pglz took a
         * quarter of the insert's time to find that out, lz4 gives up at once. A value that does
         * compress (identity) is stored with lz4, which the server decompresses for every reader
         * (pg_dump and logical replication carry it decompressed). */
        snprintf(sql, sizeof(sql),
                 "SET lock_timeout = %llu; SET enable_sort = off; SET enable_bitmapscan = off; "
                 "SELECT set_config('jit', 'off', false) FROM pg_settings WHERE name = 'jit'; "
                 "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings "
                 "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)",
                 (unsigned long long) MAX(p->timeout_usec / 1000, 1u));
        r = pg_exec(p, sql, e, "cannot set up the session");
        if (r < 0)
                goto fail;

        res = sym_PQexecParams(p->conn, sql_schema, 0, NULL, NULL, NULL, NULL, 0);
        if (!res || sym_PQresultStatus(res) != PGRES_TUPLES_OK || sym_PQntuples(res) != 1) {
                r = pg_fail(p, res, e, "cannot read the schema");
                sym_PQclear(res);
                goto fail;
        }
        n_tables = strtoll(sym_PQgetvalue(res, 0, 0), NULL, 10);
        n_cols = strtoll(sym_PQgetvalue(res, 0, 1), NULL, 10);
        n_kine_cols = strtoll(sym_PQgetvalue(res, 0, 2), NULL, 10);
        n_uindex = strtoll(sym_PQgetvalue(res, 0, 3), NULL, 10);
        sym_PQclear(res);

        if (n_cols == 0) {
                if (n_tables == 0) {
                        pg_disconnect(p);
                        return 0;
                }
                r = se_error_set(e, -EMEDIUMTYPE, "PostgreSQL %s: not a kine database (no table \"kine\")",
                                 p->display);
                goto fail;
        }
        if (n_kine_cols != 9) {
                r = se_error_set(e, -EMEDIUMTYPE,
                                 "PostgreSQL %s: table \"kine\" is not kine's (it lacks some of id, name, created, "
                                 "deleted, create_revision, prev_revision, lease, value, old_value)",
                                 p->display);
                goto fail;
        }
        if (n_uindex != 1) {
                r = se_error_set(e, -EMEDIUMTYPE,
                                 "PostgreSQL %s: table \"kine\" lacks kine's unique index "
                                 "kine_name_prev_revision_uindex, which every write relies on",
                                 p->display);
                goto fail;
        }
        return 1;

fail:
        pg_disconnect(p);
        return r;
}

static int add_param(pgsql *p, size_t *n, const char *kw, const char *val) {
        if (*n >= PG_MAX_PARAMS)
                return -E2BIG;
        p->val[*n] = strdup(val);
        if (!p->val[*n])
                return -ENOMEM;
        p->kw[(*n)++] = kw;
        return 0;
}

static void pg_free(pgsql *p) {
        if (!p)
                return;
        pg_disconnect(p);
        for (size_t i = 0; i < PG_MAX_PARAMS; i++)
                free(p->val[i]);
        free(p->display);
        free(p);
}

static int pg_open(const se_store_options *o, void **ret_impl, se_error *e) {
        const char *rest, *query;
        char timeout[32];
        bool has_db, tls;
        size_t n = 0;
        pgsql *p;
        int r;

        r = se_dlopen_libpq(e);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return se_error_set(e, -ENOMEM, "out of memory");
        p->display = se_url_strip_userinfo(o->endpoint);
        if (!p->display) {
                free(p);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        p->timeout_usec = o->timeout_usec > 0 ? o->timeout_usec : PG_DEFAULT_TIMEOUT_USEC;

        /* libpq reads postgres:// and postgresql:// URIs itself. As kine: no database in the URI
         * means "kubernetes", and any TLS file given means sslmode=verify-full unless the URI says. */
        rest = strstr(o->endpoint, "://") + 3;
        rest += strcspn(rest, "/?");
        has_db = rest[0] == '/' && rest[1] != '\0' && rest[1] != '?';
        query = strchr(o->endpoint, '?');
        tls = !isempty(o->cafile) || !isempty(o->certfile) || !isempty(o->keyfile);
        snprintf(timeout, sizeof(timeout), "%llu", (unsigned long long) MAX(p->timeout_usec / 1000000u, 2u));

        r = add_param(p, &n, "dbname", o->endpoint);
        if (r >= 0 && !has_db)
                r = add_param(p, &n, "dbname", "kubernetes");
        if (r >= 0 && !(query && strstr(query, "connect_timeout=")))
                r = add_param(p, &n, "connect_timeout", timeout);
        if (r >= 0)
                r = add_param(p, &n, "fallback_application_name", "secrets-encrypt");
        if (r >= 0 && !isempty(o->cafile) && !(query && strstr(query, "sslrootcert=")))
                r = add_param(p, &n, "sslrootcert", o->cafile);
        if (r >= 0 && !isempty(o->certfile) && !(query && strstr(query, "sslcert=")))
                r = add_param(p, &n, "sslcert", o->certfile);
        if (r >= 0 && !isempty(o->keyfile) && !(query && strstr(query, "sslkey=")))
                r = add_param(p, &n, "sslkey", o->keyfile);
        if (r >= 0 && tls && !(query && strstr(query, "sslmode=")))
                r = add_param(p, &n, "sslmode", "verify-full");
        if (r < 0) {
                r = se_error_set(e, r, "datastore-endpoint \"%s\": cannot build the connection parameters",
                                 p->display);
                pg_free(p);
                return r;
        }
        pthread_mutex_init(&p->lock, NULL);

        r = pg_connect(p, e);
        if (r == 0 && o->require_data)
                r = se_error_set(e, -ENOMEDIUM,
                                 "PostgreSQL %s: the database has no tables, not a kine database: check "
                                 "datastore-endpoint; secrets-encrypt never creates a datastore",
                                 p->display);
        if (r < 0) {
                pthread_mutex_destroy(&p->lock);
                pg_free(p);
                return r;
        }
        *ret_impl = p;
        return 0;
}

static void pg_close(void *impl) {
        pgsql *p = impl;

        if (!p)
                return;
        pthread_mutex_destroy(&p->lock);
        pg_free(p);
}

static int kv_from_row(const PGresult *res, int row, int col_id, int col_created, int col_create_rev, int col_value,
                       const char *key, size_t key_size, se_kv *ret) {
        size_t n = sym_PQgetisnull(res, row, col_value) ? 0 : (size_t) sym_PQgetlength(res, row, col_value);
        se_kv kv = {};

        if (n > PG_MAX_VALUE)
                return -EFBIG;
        kv.key = strndup(key, key_size);
        kv.value = malloc(MAX(n, 1u));
        if (!kv.key || !kv.value) {
                se_kv_done(&kv);
                return -ENOMEM;
        }
        if (n > 0)
                memcpy(kv.value, sym_PQgetvalue(res, row, col_value), n);
        kv.value_size = n;
        kv.mod_revision = get_int8(res, row, col_id);
        /* kine reports a create row's own id as its create_revision (the column holds 0). */
        kv.create_revision =
                get_int8(res, row, col_created) != 0 ? kv.mod_revision : get_int8(res, row, col_create_rev);
        *ret = kv;
        return 0;
}

/* After the connection broke or the server refused it (a restart: shutting down, starting up), an
 * operation is tried again, every RETRY_PAUSE_USEC until the timeout has passed since the first
 * failure. Reads are safe to repeat; so is a batch, whose rows are compare-and-swap on the
 * revisions read: if a lost COMMIT did go through, the repeat finds them superseded (conflicts,
 * which the engine resolves by reading the values again). */
#define RETRY_PAUSE_USEC (200u * 1000u)

static bool pg_retry(pgsql *p, int r, uint64_t *deadline) {
        uint64_t now;

        if (r != -ECONNRESET && r != -ECONNREFUSED)
                return false;
        pg_disconnect(p);
        now = se_now_usec(CLOCK_MONOTONIC);
        if (*deadline == 0)
                *deadline = now + p->timeout_usec;
        if (now >= *deadline)
                return false;
        (void) usleep(RETRY_PAUSE_USEC);
        return true;
}

/* Runs a read. 1 = *ret holds the rows, 0 = no kine table (empty store). */
static int pg_query(pgsql *p, const char *sql, int n_params, const Oid *types, const char *const *values,
                    const int *lengths, const int *formats, PGresult **ret, se_error *e, const char *what) {
        uint64_t deadline = 0;

        for (;;) {
                PGresult *res;
                int r;

                r = pg_connect(p, e);
                if (r == 0)
                        return 0;
                if (r > 0) {
                        res = sym_PQexecParams(p->conn, sql, n_params, types, values, lengths, formats, 1);
                        if (res && sym_PQresultStatus(res) == PGRES_TUPLES_OK) {
                                *ret = res;
                                return 1;
                        }
                        r = pg_fail(p, res, e, what);
                        sym_PQclear(res);
                }
                if (!pg_retry(p, r, &deadline))
                        return r;
        }
}

static int pg_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        pgsql *p = impl;
        _cleanup_free_ char *pattern = NULL, *after = NULL;
        char lim[32];
        const char *values[3];
        PGresult *res = NULL;
        se_kv_list l = {};
        size_t cap = 0;
        int r, n;

        if (!prefix)
                prefix = "";
        if (limit == 0)
                limit = PG_DEFAULT_PAGE;
        if (limit >= (size_t) INT_MAX)
                limit = (size_t) INT_MAX - 1;
        pattern = se_like_prefix_pattern(prefix);
        if (!pattern)
                return se_error_set(e, -ENOMEM, "out of memory");
        /* one name more than asked tells whether there is a next page */
        snprintf(lim, sizeof(lim), "%zu", limit + 1);
        values[0] = pattern;
        values[1] = start && strcmp(start, prefix) > 0 ? start : prefix;
        values[2] = lim;

        /* Deleted names take places in a query's LIMIT: while they leave the page short, go on
         * after the last name read, until it is full or the names end. */
        for (;;) {
                pthread_mutex_lock(&p->lock);
                r = pg_query(p, after ? sql_range_after : sql_range, 3, NULL, values, NULL, NULL, &res, e,
                             "range read failed");
                pthread_mutex_unlock(&p->lock);
                if (r <= 0)
                        goto finish;

                n = sym_PQntuples(res);
                for (int i = 0; i < n && !l.more; i++) {
                        if (get_int8(res, i, 5) == 0) /* deleted */
                                continue;
                        if (l.n_items == limit) {
                                l.more = true;
                                break;
                        }
                        if (se_kv_list_grow(&l, &cap, limit) < 0) {
                                r = se_error_set(e, -ENOMEM, "out of memory");
                                goto finish;
                        }
                        r = kv_from_row(res, i, 0, 2, 3, 4, sym_PQgetvalue(res, i, 1),
                                        (size_t) sym_PQgetlength(res, i, 1), &l.items[l.n_items]);
                        if (r < 0) {
                                r = r == -EFBIG ? se_error_set(e, r, "PostgreSQL %s: value of %s exceeds %u bytes",
                                                               p->display, sym_PQgetvalue(res, i, 1), PG_MAX_VALUE)
                                                : se_error_set(e, r, "out of memory");
                                goto finish;
                        }
                        l.n_items++;
                }
                if (l.more || (size_t) n <= limit)
                        break;
                free(after);
                after = strdup(sym_PQgetvalue(res, n - 1, 1));
                if (!after) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
                values[1] = after;
                sym_PQclear(res);
                res = NULL;
        }
        r = 0;
finish:
        sym_PQclear(res);
        if (r < 0) {
                se_kv_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

static int pg_count(void *impl, const char *prefix, uint64_t *ret, se_error *e) {
        pgsql *p = impl;
        _cleanup_free_ char *pattern = se_like_prefix_pattern(prefix ?: "");
        const char *values[2] = {pattern, prefix ?: ""};
        PGresult *res = NULL;
        uint64_t n = 0;
        int r;

        if (!pattern)
                return se_error_set(e, -ENOMEM, "out of memory");
        pthread_mutex_lock(&p->lock);
        r = pg_query(p, sql_count, 2, NULL, values, NULL, NULL, &res, e, "count failed");
        pthread_mutex_unlock(&p->lock);
        if (r < 0)
                return r;
        if (r > 0 && sym_PQntuples(res) == 1)
                n = (uint64_t) get_int8(res, 0, 0);
        sym_PQclear(res);
        *ret = n;
        return 0;
}

static int pg_get(void *impl, const char *key, se_kv *ret, se_error *e) {
        pgsql *p = impl;
        const char *values[1] = {key};
        PGresult *res = NULL;
        int r;

        pthread_mutex_lock(&p->lock);
        r = pg_query(p, sql_get, 1, NULL, values, NULL, NULL, &res, e, "read failed");
        pthread_mutex_unlock(&p->lock);
        if (r < 0)
                return r;
        if (r == 0 || sym_PQntuples(res) == 0 || get_int8(res, 0, 2) != 0)
                r = se_error_set(e, -ENOENT, "%s: not found", key);
        else {
                r = kv_from_row(res, 0, 0, 1, 3, 4, key, strlen(key), ret);
                if (r < 0)
                        r = se_error_set(e, r, "PostgreSQL %s: cannot read %s", p->display, key);
        }
        sym_PQclear(res);
        return r;
}

/* PostgreSQL's binary array format: ndim, has-nulls, element type, then (length, lower bound) per
 * dimension, then each element as a 32-bit length and its bytes, all big-endian. */
typedef struct array {
        uint8_t *data;
        size_t size, cap;
} array;

static int array_put(array *a, const void *p, size_t n) {
        if (a->size + n > a->cap) {
                size_t cap = MAX(a->cap * 2, a->size + n + 4096);
                uint8_t *d;

                if (cap > INT_MAX)
                        return -E2BIG;
                d = realloc(a->data, cap);
                if (!d)
                        return -ENOMEM;
                a->data = d;
                a->cap = cap;
        }
        memcpy(a->data + a->size, p, n);
        a->size += n;
        return 0;
}

static int array_put_u32(array *a, uint32_t v) {
        v = htobe32(v);
        return array_put(a, &v, 4);
}

static int array_begin(array *a, uint32_t elem_oid, size_t n) {
        int r = array_put_u32(a, 1);
        if (r >= 0)
                r = array_put_u32(a, 0);
        if (r >= 0)
                r = array_put_u32(a, elem_oid);
        if (r >= 0)
                r = array_put_u32(a, (uint32_t) n);
        if (r >= 0)
                r = array_put_u32(a, 1);
        return r;
}

static int array_put_elem(array *a, const void *p, size_t n) {
        int r = array_put_u32(a, (uint32_t) n);
        if (r >= 0 && n > 0)
                r = array_put(a, p, n);
        return r;
}

/* The creates or the updates of a batch as one statement, with the values as binary arrays. */
typedef struct pg_stmt {
        se_sql_batch b;
        array names, revs, vals;
        batch_sql_kind kind;
        int n_params;
        const char *values[3];
        int lengths[3];
} pg_stmt;

static void pg_stmt_done(pg_stmt *s) {
        se_sql_batch_done(&s->b);
        free(s->names.data);
        free(s->revs.data);
        free(s->vals.data);
        *s = (pg_stmt){};
}

/* Each batch statement is prepared on a connection the first time it is used there: from its
 * sixth batch the server runs its generic plan, where an unnamed statement was planned again for
 * every batch (1.5 ms of ~20). */
static int pg_prepare(pgsql *p, batch_sql_kind kind, se_error *e) {
        PGresult *res;
        int r = 0;

        if (p->prepared[kind])
                return 0;
        res = sym_PQprepare(p->conn, batch_sql[kind].name, batch_sql[kind].sql, batch_sql[kind].n_params,
                            batch_sql[kind].types);
        if (res && sym_PQresultStatus(res) == PGRES_COMMAND_OK)
                p->prepared[kind] = true;
        else
                r = pg_fail(p, res, e, "cannot prepare the write");
        sym_PQclear(res);
        return r;
}

static int pg_stmt_build(pg_stmt *s, se_kv_update *u, size_t n, bool create, se_error *e) {
        int r;

        r = se_sql_batch_init(&s->b, u, n, create);
        if (r >= 0)
                r = array_begin(&s->names, OID_TEXT, s->b.n);
        if (r >= 0 && !create)
                r = array_begin(&s->revs, OID_INT8, s->b.n);
        if (r >= 0)
                r = array_begin(&s->vals, OID_BYTEA, s->b.n);
        for (size_t j = 0; r >= 0 && j < s->b.n; j++) {
                const se_kv_update *w = &u[s->b.order[j]];
                uint64_t be;

                r = array_put_elem(&s->names, w->key, strlen(w->key));
                if (r >= 0 && !create) {
                        be = htobe64((uint64_t) w->expected_mod_revision);
                        r = array_put_elem(&s->revs, &be, 8);
                }
                if (r >= 0)
                        r = array_put_elem(&s->vals, w->value, w->value_size);
        }
        if (r < 0)
                return se_error_set(e, r, r == -E2BIG ? "PostgreSQL: batch too large" : "out of memory");

        s->kind = create ? BATCH_SQL_CREATE : BATCH_SQL_UPDATE;
        s->values[s->n_params] = (const char *) s->names.data;
        s->lengths[s->n_params++] = (int) s->names.size;
        if (!create) {
                s->values[s->n_params] = (const char *) s->revs.data;
                s->lengths[s->n_params++] = (int) s->revs.size;
        }
        s->values[s->n_params] = (const char *) s->vals.data;
        s->lengths[s->n_params++] = (int) s->vals.size;
        return 0;
}

/* Marks the writes a statement's RETURNING rows name; the others are conflicts. */
static int pg_stmt_results(pg_stmt *s, const PGresult *res) {
        int written = 0;

        se_sql_batch_results_begin(&s->b, 0, s->b.n);
        for (int row = 0; row < sym_PQntuples(res); row++)
                if (se_sql_batch_written(&s->b, s->b.creates ? sym_PQgetvalue(res, row, 0) : NULL,
                                         s->b.creates ? 0 : get_int8(res, row, 0), get_int8(res, row, 1)))
                        written++;
        return written;
}

static const int binary_formats[3] = {1, 1, 1};

static int pg_rollback(pgsql *p) {
        if (p->conn && sym_PQstatus(p->conn) == CONNECTION_OK && sym_PQtransactionStatus(p->conn) != PQTRANS_IDLE) {
                PGresult *res = sym_PQexec(p->conn, "ROLLBACK");
                sym_PQclear(res);
        }
        return 0;
}

/* The transaction's statements one round trip each (libpq without pipeline mode). */
static int pg_write_serial(pgsql *p, pg_stmt *st, size_t n_st, se_error *e) {
        int r, written = 0;

        r = pg_exec(p, "BEGIN; LOCK TABLE kine IN SHARE ROW EXCLUSIVE MODE", e, "cannot begin a write transaction");
        for (size_t i = 0; r >= 0 && i < n_st; i++) {
                PGresult *res = sym_PQexecPrepared(p->conn, batch_sql[st[i].kind].name, st[i].n_params, st[i].values,
                                                   st[i].lengths, binary_formats, 1);

                if (res && sym_PQresultStatus(res) == PGRES_TUPLES_OK)
                        written += pg_stmt_results(&st[i], res);
                else
                        r = pg_fail(p, res, e, "write failed");
                sym_PQclear(res);
        }
        if (r >= 0)
                r = pg_exec(p, "COMMIT", e, "commit failed");
        return r < 0 ? r : written;
}

/* The whole transaction (BEGIN, LOCK, the statements, COMMIT) in one round trip: a batch costs the
 * server's time, not three waits for the client's next time slice. After a failed statement the
 * server skips the rest up to the sync point; the transaction is then rolled back. */
static int pg_write_pipelined(pgsql *p, pg_stmt *st, size_t n_st, se_error *e) {
        const char *sql[2 + 2 + 1]; /* NULL: st's statement */
        size_t n_sql = 0;
        int r = 0, written = 0;

        sql[n_sql++] = "BEGIN";
        sql[n_sql++] = "LOCK TABLE kine IN SHARE ROW EXCLUSIVE MODE";
        for (size_t i = 0; i < n_st; i++)
                sql[n_sql++] = NULL;
        sql[n_sql++] = "COMMIT";

        if (!sym_PQenterPipelineMode(p->conn))
                return pg_fail(p, NULL, e, "cannot enter pipeline mode");
        for (size_t q = 0; q < n_sql; q++) {
                const pg_stmt *s = q >= 2 && q - 2 < n_st ? &st[q - 2] : NULL;

                if (!(s ? sym_PQsendQueryPrepared(p->conn, batch_sql[s->kind].name, s->n_params, s->values, s->lengths,
                                                  binary_formats, 1)
                        : sym_PQsendQueryParams(p->conn, sql[q], 0, NULL, NULL, NULL, NULL, 1))) {
                        r = pg_fail(p, NULL, e, "write failed");
                        goto finish;
                }
        }
        if (!sym_PQpipelineSync(p->conn)) {
                r = pg_fail(p, NULL, e, "write failed");
                goto finish;
        }

        /* every statement's result, then a NULL, then the sync point's */
        for (size_t q = 0; q <= n_sql; q++) {
                PGresult *res = sym_PQgetResult(p->conn);
                ExecStatusType status;

                if (!res) {
                        if (r >= 0)
                                r = pg_fail(p, NULL, e, "write failed");
                        goto finish;
                }
                status = sym_PQresultStatus(res);
                if (q == n_sql) {
                        sym_PQclear(res);
                        if (status != PGRES_PIPELINE_SYNC && r >= 0)
                                r = se_error_set(e, -EIO, "PostgreSQL %s: write failed: no pipeline sync point",
                                                 p->display);
                        break;
                }
                if (r >= 0) {
                        if (status == PGRES_TUPLES_OK && q >= 2 && q - 2 < n_st)
                                written += pg_stmt_results(&st[q - 2], res);
                        else if (status != PGRES_COMMAND_OK)
                                r = pg_fail(p, res, e, q + 1 == n_sql ? "commit failed" : "write failed");
                }
                sym_PQclear(res);
                res = sym_PQgetResult(p->conn); /* the NULL ending this statement's results */
                sym_PQclear(res);
        }
finish:
        if (sym_PQstatus(p->conn) == CONNECTION_OK && !sym_PQexitPipelineMode(p->conn) && r >= 0)
                r = pg_fail(p, NULL, e, "cannot leave pipeline mode");
        if (sym_PQstatus(p->conn) != CONNECTION_OK && r >= 0)
                r = pg_fail(p, NULL, e, "write failed");
        return r < 0 ? r : written;
}

static int pg_update_once(pgsql *p, se_kv_update *u, size_t n, size_t n_updates, se_error *e) {
        pg_stmt st[2] = {};
        size_t n_st = 0;
        int r;

        r = pg_connect(p, e);
        if (r == 0)
                r = se_error_set(e, -ENOENT, "PostgreSQL %s has no kine table: cannot write %s", p->display, u[0].key);
        if (r < 0)
                return r;

        if (n_updates < n) {
                r = pg_stmt_build(&st[n_st++], u, n, true, e);
                if (r < 0)
                        goto finish;
        }
        if (n_updates > 0) {
                r = pg_stmt_build(&st[n_st++], u, n, false, e);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < n_st; i++) {
                r = pg_prepare(p, st[i].kind, e);
                if (r < 0)
                        goto finish;
        }

        r = sym_PQenterPipelineMode ? pg_write_pipelined(p, st, n_st, e) : pg_write_serial(p, st, n_st, e);
        if (r < 0) {
                pg_rollback(p);
                for (size_t i = 0; i < n; i++)
                        u[i].new_revision = 0;
        }
finish:
        for (size_t i = 0; i < n_st; i++)
                pg_stmt_done(&st[i]);
        return r;
}

static int pg_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        pgsql *p = impl;
        size_t n_updates = 0;
        uint64_t deadline = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                u[i].conflict = false;
                u[i].new_revision = 0;
                if (u[i].value_size > PG_MAX_VALUE)
                        return se_error_set(e, -EFBIG, "PostgreSQL: value for %s exceeds %u bytes", u[i].key,
                                            PG_MAX_VALUE);
                if (u[i].expected_mod_revision != 0)
                        n_updates++;
        }
        if (n > INT_MAX)
                return se_error_set(e, -E2BIG, "PostgreSQL: too many updates in one batch");

        pthread_mutex_lock(&p->lock);
        do {
                for (size_t i = 0; i < n; i++) {
                        u[i].conflict = false;
                        u[i].new_revision = 0;
                }
                r = pg_update_once(p, u, n, n_updates, e);
        } while (r < 0 && pg_retry(p, r, &deadline));
        pthread_mutex_unlock(&p->lock);
        return r;
}

const se_store_ops se_store_pgsql_ops = {
        .kind = SE_STORE_PGSQL,
        .open = pg_open,
        .open_reader = pg_open, /* a second connection for se_store_read_ahead() */
        .close = pg_close,
        .range = pg_range,
        .count = pg_count,
        .get = pg_get,
        .update = pg_update,
};
