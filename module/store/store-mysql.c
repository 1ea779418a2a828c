/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kine's MySQL/MariaDB datastore (k3s --datastore-endpoint=mysql://…), a direct writer under
 * kine's rules as store-kine.c is for SQLite: the current value is the row with the name's
 * MAX(id) unless deleted; an update is a new row superseding it (created 0, create_revision
 * carried over, prev_revision = the superseded id, old_value = its value); never UPDATE or DELETE.
 * Keys are selected as kine selects them: name LIKE 'prefix%', in the column's collation (kine
 * makes it ASCII, case-insensitive).
 *
 * The endpoint is k3s's Go-driver DSN, mysql://[user[:password]@][tcp(host[:port])|unix(path)]/[db].
 * The MariaDB Connector/C speaks to MySQL and MariaDB alike. On MariaDB >= 10.5 a batch of
 * updates is two round trips (my_write_updates): a SELECT of which expected rows are still
 * current (and what their successors carry over), then one INSERT … VALUES … RETURNING (with the
 * COMMIT) for those. Elsewhere (MySQL has no RETURNING), and for creates, a batch is one round
 * trip of one INSERT … SELECT per key (multi-statements), each statement's affected-rows and
 * insert id saying whether it was written and as which revision. The unique (name, prev_revision)
 * index is the compare-and-swap: where another writer superseded the row first the insert fails
 * with a duplicate key (as kine's own does); only that statement is undone, the key is reported as
 * a conflict and the batch goes on.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-util.h"
#include "sql-dlopen.h"
#include "store-internal.h"

#define MY_DEFAULT_TIMEOUT_USEC (30ULL * 1000000ULL)
#define MY_DEFAULT_PAGE         1000u
/* kine stores values as MEDIUMBLOB */
#define MY_MAX_VALUE (16u * 1024u * 1024u - 1u)
/* A multi-statement batch is sent in pieces of about this size (below max_allowed_packet). */
#define MY_QUERY_CHUNK (4u * 1024u * 1024u)

#define ER_DBACCESS_DENIED_ERROR 1044
#define ER_ACCESS_DENIED_ERROR   1045
#define ER_BAD_DB_ERROR          1049
#define ER_BAD_FIELD_ERROR       1054
#define ER_DUP_ENTRY             1062
#define ER_NO_SUCH_TABLE         1146
#define ER_LOCK_WAIT_TIMEOUT     1205
#define ER_LOCK_DEADLOCK         1213

static const char sql_schema[] =
        "SELECT (SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()), "
        "(SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'kine'), "
        "(SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'kine' "
        "AND column_name IN ('id', 'name', 'created', 'deleted', 'create_revision', 'prev_revision', 'lease', "
        "'value', 'old_value')), "
        "(SELECT COUNT(DISTINCT index_name) FROM information_schema.statistics WHERE table_schema = DATABASE() AND "
        "table_name = 'kine' AND index_name = 'kine_name_prev_revision_uindex' AND non_unique = 0), "
        "@@max_allowed_packet, @@version";

typedef struct mysql_store {
        char *display; /* the endpoint with its password masked */
        char *user, *password, *host, *socket, *db;
        unsigned port;
        char *cafile, *certfile, *keyfile;
        bool tls_required, tls_verify;
        MYSQL *conn;
        uint64_t timeout_usec;
        size_t max_query;
        bool returning;     /* MariaDB >= 10.5: INSERT … SELECT … RETURNING */
        MYSQL_STMT *insert; /* the prepared INSERT … VALUES of build_insert, for insert_rows rows */
        size_t insert_rows;
        char *q; /* query buffer */
        size_t q_size, q_cap;
        pthread_mutex_t lock; /* one operation at a time per store */
} mysql_store;

/*
 * The one place MySQL's error numbers become errnos:
 *   1044, 1045, 1142, 1143, 1698 -EACCES    1049 (unknown database) -ENOMEDIUM
 *   1146, 1054 (no such table/column) -EMEDIUMTYPE    2002, 2003 -ECONNREFUSED   2005 -EHOSTUNREACH
 *   1053, 1927, 2006, 2013, 2055 -ECONNRESET    2026 (TLS) -EPROTO    1205, 1213, 1040 -EBUSY
 *   1153, 1301 (packet too large) -EFBIG    1021, 1114 -ENOSPC    1290, 1792 -EROFS   else -EIO.
 */
static int my_errno(unsigned n, const char *msg) {
        switch (n) {
        case ER_DBACCESS_DENIED_ERROR:
        case ER_ACCESS_DENIED_ERROR:
        case 1142:
        case 1143:
        case 1698:
                return -EACCES;
        case ER_BAD_DB_ERROR:
                return -ENOMEDIUM;
        case ER_NO_SUCH_TABLE:
        case ER_BAD_FIELD_ERROR:
                return -EMEDIUMTYPE;
        case 2002:
        case 2003:
                return strstr(msg, "SSL") || strstr(msg, "TLS") ? -EPROTO : -ECONNREFUSED;
        case 2005:
                return -EHOSTUNREACH;
        case 1053: /* server shutdown in progress */
        case 1927: /* connection killed */
        case 2006:
        case 2013:
        case 2055:
                return -ECONNRESET;
        case 2026:
                return -EPROTO;
        case ER_LOCK_WAIT_TIMEOUT:
        case ER_LOCK_DEADLOCK:
        case 1040:
                return -EBUSY;
        case 1153:
        case 1301:
                return -EFBIG;
        case 1021:
        case 1114:
                return -ENOSPC;
        case 1290:
        case 1792:
                return -EROFS;
        default:
                return -EIO;
        }
}

static int my_fail_with(mysql_store *m, unsigned n, const char *msg, se_error *e, const char *what) {
        int r = my_errno(n, msg);

        switch (r) {
        case -EMEDIUMTYPE:
                return se_error_set(e, r, "MySQL %s: %s: %s (not kine's schema)", m->display, what, msg);
        case -ECONNRESET:
                return se_error_set(e, r, "MySQL %s: %s: connection lost: %s", m->display, what, msg);
        case -EFBIG:
                return se_error_set(e, r, "MySQL %s: %s: %s (raise the server's max_allowed_packet)", m->display, what,
                                    msg);
        default:
                return se_error_set(e, r, "MySQL %s: %s: %s", m->display, what, msg);
        }
}

static int my_fail(mysql_store *m, se_error *e, const char *what) {
        return my_fail_with(m, m->conn ? sym_mysql_errno(m->conn) : 0,
                            m->conn ? sym_mysql_error(m->conn) : "no connection", e, what);
}

static int my_stmt_fail(mysql_store *m, MYSQL_STMT *st, se_error *e, const char *what) {
        return my_fail_with(m, sym_mysql_stmt_errno(st), sym_mysql_stmt_error(st), e, what);
}

static void my_disconnect(mysql_store *m) {
        if (m->insert) {
                sym_mysql_stmt_close(m->insert);
                m->insert = NULL;
                m->insert_rows = 0;
        }
        if (m->conn) {
                sym_mysql_close(m->conn);
                m->conn = NULL;
        }
}

static int my_exec(mysql_store *m, const char *sql, se_error *e, const char *what) {
        MYSQL_RES *res;

        if (sym_mysql_real_query(m->conn, sql, strlen(sql)) != 0)
                return my_fail(m, e, what);
        res = sym_mysql_store_result(m->conn);
        sym_mysql_free_result(res);
        return 0;
}

/* MariaDB's version is "10.11.6-MariaDB-…"; MySQL's has no "MariaDB" and no RETURNING. */
static bool server_has_returning(const char *version) {
        unsigned major = 0, minor = 0;

        if (!strstr(version, "MariaDB") || secure_getenv("SE_TEST_MYSQL_NO_RETURNING"))
                return false;
        if (sscanf(version, "%u.%u", &major, &minor) != 2)
                return false;
        return major > 10 || (major == 10 && minor >= 5);
}

/* 1 = connected to a database holding kine's table, 0 = a database with no table at all (an empty
 * store), < 0 error. Never creates anything. */
static int my_connect(mysql_store *m, se_error *e) {
        unsigned timeout = (unsigned) MIN(MAX(m->timeout_usec / 1000000u, 2u), 3600u);
        char sql[128];
        MYSQL_RES *res;
        MYSQL_ROW row;
        long long n_tables, n_cols, n_kine_cols, n_uindex, max_packet;
        int r;

        if (m->conn)
                return 1;
        m->conn = sym_mysql_init(NULL);
        if (!m->conn)
                return se_error_set(e, -ENOMEM, "out of memory");
        sym_mysql_options(m->conn, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
        sym_mysql_options(m->conn, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (m->cafile)
                sym_mysql_options(m->conn, MYSQL_OPT_SSL_CA, m->cafile);
        if (m->certfile)
                sym_mysql_options(m->conn, MYSQL_OPT_SSL_CERT, m->certfile);
        if (m->keyfile)
                sym_mysql_options(m->conn, MYSQL_OPT_SSL_KEY, m->keyfile);
        if (m->tls_required) {
                my_bool yes = 1, verify = m->tls_verify;
                sym_mysql_options(m->conn, MYSQL_OPT_SSL_ENFORCE, &yes);
                sym_mysql_options(m->conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        }

        if (!sym_mysql_real_connect(m->conn, m->socket ? NULL : m->host, m->user, m->password, m->db, m->port,
                                    m->socket, CLIENT_MULTI_STATEMENTS)) {
                unsigned n = sym_mysql_errno(m->conn);
                _cleanup_free_ char *msg = strdup(sym_mysql_error(m->conn));

                my_disconnect(m);
                if (!msg)
                        return se_error_set(e, -ENOMEM, "out of memory");
                r = my_errno(n, msg);
                /* a TLS handshake failure comes as a generic client error on some versions */
                if (r == -EIO && (strstr(msg, "SSL") || strstr(msg, "TLS") || strstr(msg, "certificate")))
                        r = -EPROTO;
                switch (r) {
                case -ENOMEDIUM:
                        return se_error_set(e, r,
                                            "MySQL %s: %s: check datastore-endpoint (secrets-encrypt never creates "
                                            "a datastore)",
                                            m->display, msg);
                case -EACCES:
                        return se_error_set(e, r, "MySQL %s: %s: check the user and password in datastore-endpoint",
                                            m->display, msg);
                case -EPROTO:
                        return se_error_set(e, r,
                                            "MySQL %s: TLS failed: %s: check datastore-cafile, datastore-certfile "
                                            "and datastore-keyfile",
                                            m->display, msg);
                case -EIO:
                        return se_error_set(e, -ECONNREFUSED, "MySQL %s: cannot connect: %s", m->display, msg);
                default:
                        return se_error_set(e, r, "MySQL %s: cannot connect: %s", m->display, msg);
                }
        }

        /* kine's LIKE patterns escape with a backslash; lock waits end at our timeout */
        snprintf(sql, sizeof(sql),
                 "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', ''), "
                 "SESSION innodb_lock_wait_timeout = %u",
                 timeout);
        r = my_exec(m, sql, e, "cannot set up the session");
        if (r < 0)
                goto fail;

        if (sym_mysql_real_query(m->conn, sql_schema, strlen(sql_schema)) != 0 ||
            !(res = sym_mysql_store_result(m->conn))) {
                r = my_fail(m, e, "cannot read the schema");
                goto fail;
        }
        row = sym_mysql_fetch_row(res);
        if (!row || !row[0] || !row[1] || !row[2] || !row[3] || !row[4] || !row[5]) {
                sym_mysql_free_result(res);
                r = se_error_set(e, -EIO, "MySQL %s: cannot read the schema", m->display);
                goto fail;
        }
        n_tables = strtoll(row[0], NULL, 10);
        n_cols = strtoll(row[1], NULL, 10);
        n_kine_cols = strtoll(row[2], NULL, 10);
        n_uindex = strtoll(row[3], NULL, 10);
        max_packet = strtoll(row[4], NULL, 10);
        m->returning = server_has_returning(row[5]);
        sym_mysql_free_result(res);

        if (n_cols == 0) {
                if (n_tables == 0) {
                        my_disconnect(m);
                        return 0;
                }
                r = se_error_set(e, -EMEDIUMTYPE, "MySQL %s: not a kine database (no table \"kine\")", m->display);
                goto fail;
        }
        if (n_kine_cols != 9) {
                r = se_error_set(
                        e, -EMEDIUMTYPE,
                        "MySQL %s: table \"kine\" is not kine's (it lacks some of id, name, created, deleted, "
                        "create_revision, prev_revision, lease, value, old_value)",
                        m->display);
                goto fail;
        }
        if (n_uindex != 1) {
                r = se_error_set(e, -EMEDIUMTYPE,
                                 "MySQL %s: table \"kine\" lacks kine's unique index kine_name_prev_revision_uindex, "
                                 "which every write relies on",
                                 m->display);
                goto fail;
        }
        m->max_query = max_packet > 1024 ? MIN((size_t) max_packet / 2, (size_t) MY_QUERY_CHUNK) : 512;
        return 1;

fail:
        my_disconnect(m);
        return r;
}

/* ---- the query buffer: SQL text with escaped strings and hex literals ---- */

static int q_reserve(mysql_store *m, size_t n) {
        if (m->q_size + n + 1 > m->q_cap) {
                size_t cap = MAX(m->q_cap * 2, m->q_size + n + 4096);
                char *q = realloc(m->q, cap);

                if (!q)
                        return -ENOMEM;
                m->q = q;
                m->q_cap = cap;
        }
        return 0;
}

static int q_add(mysql_store *m, const char *s) {
        size_t n = strlen(s);

        if (q_reserve(m, n) < 0)
                return -ENOMEM;
        memcpy(m->q + m->q_size, s, n + 1);
        m->q_size += n;
        return 0;
}

static int q_add_int(mysql_store *m, long long v) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%lld", v);
        return q_add(m, buf);
}

/* 'escaped' */
static int q_add_string(mysql_store *m, const char *s) {
        size_t n = strlen(s);

        if (q_reserve(m, n * 2 + 2) < 0)
                return -ENOMEM;
        m->q[m->q_size++] = '\'';
        m->q_size += sym_mysql_real_escape_string(m->conn, m->q + m->q_size, s, n);
        m->q[m->q_size++] = '\'';
        m->q[m->q_size] = '\0';
        return 0;
}

/* X'hex': binary as it is, whatever the connection's character set */
static int q_add_blob(mysql_store *m, const uint8_t *p, size_t n) {
        if (q_reserve(m, n * 2 + 3) < 0)
                return -ENOMEM;
        m->q[m->q_size++] = 'X';
        m->q[m->q_size++] = '\'';
        if (n > 0)
                m->q_size += sym_mysql_hex_string(m->q + m->q_size, (const char *) p, n);
        m->q[m->q_size++] = '\'';
        m->q[m->q_size] = '\0';
        return 0;
}

static void q_reset(mysql_store *m) {
        m->q_size = 0;
        if (m->q)
                m->q[0] = '\0';
}

/* ---- endpoint ---- */

static char *unescape_dup(const char *s, size_t n) {
        return strndup(s, n);
}

/* mysql://[user[:password]@][proto[(addr)]]/[db][?params], as github.com/go-sql-driver/mysql
 * parses it: the database follows the last '/', the credentials end at the last '@' before it. */
static int my_parse_endpoint(mysql_store *m, const char *endpoint, se_error *e) {
        const char *s = endpoint + STRLEN("mysql://"), *query, *slash, *at, *net, *open, *close;
        size_t len;

        query = strchr(s, '?');
        len = query ? (size_t) (query - s) : strlen(s);
        slash = memrchr(s, '/', len);
        if (!slash)
                return se_error_set(
                        e, -EINVAL,
                        "datastore-endpoint \"%s\": expected mysql://USER:PASSWORD@tcp(HOST:PORT)/DATABASE",
                        m->display);
        at = memrchr(s, '@', (size_t) (slash - s));
        if (at) {
                const char *colon = memchr(s, ':', (size_t) (at - s));

                m->user = unescape_dup(s, (size_t) ((colon ?: at) - s));
                if (colon)
                        m->password = unescape_dup(colon + 1, (size_t) (at - colon - 1));
                if (!m->user || (colon && !m->password))
                        return se_error_set(e, -ENOMEM, "out of memory");
                net = at + 1;
        } else
                net = s;

        /* kine's database when none is named */
        m->db = slash + 1 < s + len ? strndup(slash + 1, (size_t) (s + len - slash - 1)) : strdup("kubernetes");
        if (!m->db)
                return se_error_set(e, -ENOMEM, "out of memory");

        open = memchr(net, '(', (size_t) (slash - net));
        close = open ? memchr(open, ')', (size_t) (slash - open)) : NULL;
        if ((open && !close) || (!open && net != slash))
                return se_error_set(e, -EINVAL,
                                    "datastore-endpoint \"%s\": expected tcp(HOST:PORT) or unix(PATH) before the "
                                    "database",
                                    m->display);
        m->port = 3306;
        if (!open || (strneq(net, "tcp", 3) && open == net + 3)) {
                const char *h = open ? open + 1 : "127.0.0.1", *hend = open ? close : h + strlen(h), *colon;

                if (h < hend && *h == '[') {
                        const char *rb = memchr(h, ']', (size_t) (hend - h));
                        if (!rb)
                                return se_error_set(e, -EINVAL, "datastore-endpoint \"%s\": bad IPv6 address",
                                                    m->display);
                        m->host = strndup(h + 1, (size_t) (rb - h - 1));
                        colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
                } else {
                        colon = memrchr(h, ':', (size_t) (hend - h));
                        m->host = strndup(h, (size_t) ((colon ?: hend) - h));
                }
                if (!m->host)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (isempty(m->host)) {
                        free(m->host);
                        m->host = strdup("127.0.0.1");
                        if (!m->host)
                                return se_error_set(e, -ENOMEM, "out of memory");
                }
                if (colon) {
                        char *end;
                        unsigned long p = strtoul(colon + 1, &end, 10);

                        if (end != hend || p == 0 || p > 65535)
                                return se_error_set(e, -EINVAL, "datastore-endpoint \"%s\": bad port", m->display);
                        m->port = (unsigned) p;
                }
        } else if (strneq(net, "unix", 4) && open == net + 4) {
                m->socket = strndup(open + 1, (size_t) (close - open - 1));
                if (!m->socket)
                        return se_error_set(e, -ENOMEM, "out of memory");
        } else
                return se_error_set(e, -EINVAL,
                                    "datastore-endpoint \"%s\": unsupported protocol, expected tcp or unix",
                                    m->display);

        /* the Go driver's tls=true|skip-verify|preferred|false|<registered name> */
        if (query) {
                const char *t = strstr(query, "tls=");
                if (t && (t == query + 1 || t[-1] == '&')) {
                        t += 4;
                        m->tls_required = !strneq(t, "false", 5) && !strneq(t, "preferred", 9);
                        m->tls_verify = m->tls_required && !strneq(t, "skip-verify", 11);
                }
        }
        return 0;
}

static void my_free(mysql_store *m) {
        if (!m)
                return;
        my_disconnect(m);
        free(m->display);
        free(m->user);
        if (m->password)
                explicit_bzero(m->password, strlen(m->password));
        free(m->password);
        free(m->host);
        free(m->socket);
        free(m->db);
        free(m->cafile);
        free(m->certfile);
        free(m->keyfile);
        free(m->q);
        free(m);
}

static int my_open(const se_store_options *o, void **ret_impl, se_error *e) {
        mysql_store *m;
        int r;

        r = se_dlopen_mariadb(e);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return se_error_set(e, -ENOMEM, "out of memory");
        m->display = se_url_strip_userinfo(o->endpoint);
        if (!m->display) {
                free(m);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        r = my_parse_endpoint(m, o->endpoint, e);
        if (r < 0) {
                my_free(m);
                return r;
        }
        if ((!isempty(o->cafile) && !(m->cafile = strdup(o->cafile))) ||
            (!isempty(o->certfile) && !(m->certfile = strdup(o->certfile))) ||
            (!isempty(o->keyfile) && !(m->keyfile = strdup(o->keyfile)))) {
                my_free(m);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        /* as kine: a CA configured means TLS with a verified server */
        if (m->cafile)
                m->tls_required = m->tls_verify = true;
        m->timeout_usec = o->timeout_usec > 0 ? o->timeout_usec : MY_DEFAULT_TIMEOUT_USEC;
        pthread_mutex_init(&m->lock, NULL);

        r = my_connect(m, e);
        if (r == 0 && o->require_data)
                r = se_error_set(
                        e, -ENOMEDIUM,
                        "MySQL %s: the database has no tables, not a kine database: check datastore-endpoint; "
                        "secrets-encrypt never creates a datastore",
                        m->display);
        if (r < 0) {
                pthread_mutex_destroy(&m->lock);
                my_free(m);
                return r;
        }
        *ret_impl = m;
        return 0;
}

static void my_close(void *impl) {
        mysql_store *m = impl;

        if (!m)
                return;
        pthread_mutex_destroy(&m->lock);
        my_free(m);
}

/* After the connection broke or the server refused it (a restart), an operation is tried again,
 * every RETRY_PAUSE_USEC until the timeout has passed since the first failure. Reads are safe to
 * repeat; so is a batch, whose rows are compare-and-swap on the revisions read: if a lost COMMIT
 * did go through, the repeat finds them superseded (conflicts, which the engine resolves by
 * reading the values again). */
#define RETRY_PAUSE_USEC (200u * 1000u)

static bool my_retry(mysql_store *m, int r, uint64_t *deadline) {
        uint64_t now;

        if (r != -ECONNRESET && r != -ECONNREFUSED)
                return false;
        my_disconnect(m);
        now = se_now_usec(CLOCK_MONOTONIC);
        if (*deadline == 0)
                *deadline = now + m->timeout_usec;
        if (now >= *deadline)
                return false;
        (void) usleep(RETRY_PAUSE_USEC);
        return true;
}

/* Runs the query build() writes into m->q (after every reconnect: escaping depends on the
 * connection). 1 = *ret holds the rows, 0 = no kine table (empty store). */
static int my_query(mysql_store *m, int (*build)(mysql_store *m, const void *arg), const void *arg, MYSQL_RES **ret,
                    se_error *e, const char *what) {
        uint64_t deadline = 0;

        for (;;) {
                MYSQL_RES *res;
                int r;

                r = my_connect(m, e);
                if (r == 0)
                        return 0;
                if (r > 0) {
                        q_reset(m);
                        r = build(m, arg);
                        if (r < 0)
                                return se_error_set(e, r, "out of memory");
                        if (sym_mysql_real_query(m->conn, m->q, m->q_size) == 0 &&
                            (res = sym_mysql_store_result(m->conn))) {
                                *ret = res;
                                return 1;
                        }
                        r = my_fail(m, e, what);
                }
                if (!my_retry(m, r, &deadline))
                        return r;
        }
}

static int kv_from_row(MYSQL_ROW row, const unsigned long *len, int col_id, int col_created, int col_create_rev,
                       int col_value, const char *key, size_t key_size, se_kv *ret) {
        size_t n = row[col_value] ? (size_t) len[col_value] : 0;
        se_kv kv = {};

        if (n > MY_MAX_VALUE)
                return -EFBIG;
        kv.key = strndup(key, key_size);
        kv.value = malloc(MAX(n, 1u));
        if (!kv.key || !kv.value) {
                se_kv_done(&kv);
                return -ENOMEM;
        }
        if (n > 0)
                memcpy(kv.value, row[col_value], n);
        kv.value_size = n;
        kv.mod_revision = row[col_id] ? strtoll(row[col_id], NULL, 10) : 0;
        /* kine reports a create row's own id as its create_revision (the column holds 0). */
        kv.create_revision = row[col_created] && strtoll(row[col_created], NULL, 10) != 0
                                     ? kv.mod_revision
                                     : (row[col_create_rev] ? strtoll(row[col_create_rev], NULL, 10) : 0);
        *ret = kv;
        return 0;
}

typedef struct range_args {
        const char *pattern, *start;
        bool after; /* names > start, not >= */
        size_t limit;
} range_args;

/* A page: the current row (the name's MAX(id), as kine's own list query finds it) of up to `limit`
 * names from start on, deleted ones included so the caller sees how far the names went; their
 * values are left out. The LIMIT on the grouped names, read from the name index alone, bounds the
 * work to the page, where a MAX(id) subquery a row (the previous form) cost ~10x (110 against 10
 * ms a page of 1000 at 200k rows). */
static int build_range(mysql_store *m, const void *arg) {
        const range_args *a = arg;
        int r = q_add(m, "SELECT kv.id, kv.name, kv.created, kv.create_revision, "
                         "CASE WHEN kv.deleted = 0 THEN kv.value END, kv.deleted = 0 FROM kine AS kv "
                         "JOIN (SELECT MAX(mkv.id) AS id FROM kine AS mkv WHERE mkv.name LIKE ");
        if (r >= 0)
                r = q_add_string(m, a->pattern);
        if (r >= 0)
                r = q_add(m, a->after ? " AND mkv.name > " : " AND mkv.name >= ");
        if (r >= 0)
                r = q_add_string(m, a->start);
        if (r >= 0)
                r = q_add(m, " GROUP BY mkv.name ORDER BY mkv.name LIMIT ");
        if (r >= 0)
                r = q_add_int(m, (long long) a->limit);
        if (r >= 0)
                r = q_add(m, ") AS m ON m.id = kv.id ORDER BY kv.name");
        return r;
}

static int my_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        mysql_store *m = impl;
        _cleanup_free_ char *pattern = NULL, *after = NULL;
        MYSQL_RES *res = NULL;
        MYSQL_ROW row;
        se_kv_list l = {};
        size_t cap = 0, n;
        const char *last = NULL;
        unsigned long last_len = 0;
        int r;

        if (!prefix)
                prefix = "";
        if (limit == 0)
                limit = MY_DEFAULT_PAGE;
        if (limit >= (size_t) INT_MAX)
                limit = (size_t) INT_MAX - 1;
        pattern = se_like_prefix_pattern(prefix);
        if (!pattern)
                return se_error_set(e, -ENOMEM, "out of memory");

        /* Deleted names take places in a query's LIMIT: while they leave the page short, go on
         * after the last name read, until it is full or the names end. */
        for (;;) {
                pthread_mutex_lock(&m->lock);
                /* one name more than asked tells whether there is a next page */
                r = my_query(m, build_range,
                             &(range_args){pattern, after ?: (start && strcmp(start, prefix) > 0 ? start : prefix),
                                           !!after, limit + 1},
                             &res, e, "range read failed");
                pthread_mutex_unlock(&m->lock);
                if (r <= 0)
                        goto finish;

                n = 0;
                while ((row = sym_mysql_fetch_row(res))) {
                        unsigned long *len = sym_mysql_fetch_lengths(res);

                        n++;
                        if (!row[1] || memchr(row[1], 0, len[1])) {
                                r = se_error_set(
                                        e, -EIO,
                                        "MySQL %s: a key under %s is NULL or holds a NUL byte: not kine's data",
                                        m->display, prefix);
                                goto finish;
                        }
                        last = row[1];
                        last_len = len[1];
                        if (!row[5] || !streq(row[5], "1")) /* deleted */
                                continue;
                        if (l.n_items == limit) {
                                l.more = true;
                                break;
                        }
                        if (se_kv_list_grow(&l, &cap, limit) < 0) {
                                r = se_error_set(e, -ENOMEM, "out of memory");
                                goto finish;
                        }
                        r = kv_from_row(row, len, 0, 2, 3, 4, row[1], len[1], &l.items[l.n_items]);
                        if (r < 0) {
                                r = r == -EFBIG ? se_error_set(e, r, "MySQL %s: value of %s exceeds %u bytes",
                                                               m->display, row[1], MY_MAX_VALUE)
                                                : se_error_set(e, r, "out of memory");
                                goto finish;
                        }
                        l.n_items++;
                }
                if (l.more || n <= limit)
                        break;
                free(after);
                after = strndup(last, last_len);
                if (!after) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
                sym_mysql_free_result(res);
                res = NULL;
        }
        r = 0;
finish:
        if (res)
                sym_mysql_free_result(res);
        if (r < 0) {
                se_kv_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* Exact, as the range reads: the names' MAX(id) from the name index alone (which holds the id),
 * then one lookup by id a name for deleted; about half the time of a MAX(id) subquery a row. */
static int build_count(mysql_store *m, const void *arg) {
        int r = q_add(m, "SELECT COUNT(*) FROM kine AS kv JOIN (SELECT MAX(mkv.id) AS id FROM kine AS mkv "
                         "WHERE mkv.name LIKE ");
        if (r >= 0)
                r = q_add_string(m, arg);
        if (r >= 0)
                r = q_add(m, " GROUP BY mkv.name) AS m ON m.id = kv.id WHERE kv.deleted = 0");
        return r;
}

static int my_count(void *impl, const char *prefix, uint64_t *ret, se_error *e) {
        mysql_store *m = impl;
        _cleanup_free_ char *pattern = se_like_prefix_pattern(prefix ?: "");
        MYSQL_RES *res = NULL;
        MYSQL_ROW row;
        uint64_t n = 0;
        int r;

        if (!pattern)
                return se_error_set(e, -ENOMEM, "out of memory");
        pthread_mutex_lock(&m->lock);
        r = my_query(m, build_count, pattern, &res, e, "count failed");
        pthread_mutex_unlock(&m->lock);
        if (r < 0)
                return r;
        if (r > 0) {
                row = sym_mysql_fetch_row(res);
                if (row && row[0])
                        n = strtoull(row[0], NULL, 10);
                sym_mysql_free_result(res);
        }
        *ret = n;
        return 0;
}

static int build_get(mysql_store *m, const void *arg) {
        int r = q_add(m, "SELECT id, created, deleted, create_revision, value FROM kine WHERE name = ");
        if (r >= 0)
                r = q_add_string(m, arg);
        if (r >= 0)
                r = q_add(m, " ORDER BY id DESC LIMIT 1");
        return r;
}

static int my_get(void *impl, const char *key, se_kv *ret, se_error *e) {
        mysql_store *m = impl;
        MYSQL_RES *res = NULL;
        MYSQL_ROW row = NULL;
        int r;

        pthread_mutex_lock(&m->lock);
        r = my_query(m, build_get, key, &res, e, "read failed");
        pthread_mutex_unlock(&m->lock);
        if (r < 0)
                return r;
        if (r > 0)
                row = sym_mysql_fetch_row(res);
        if (!row || (row[2] && strtoll(row[2], NULL, 10) != 0))
                r = se_error_set(e, -ENOENT, "%s: not found", key);
        else {
                r = kv_from_row(row, sym_mysql_fetch_lengths(res), 0, 1, 3, 4, key, strlen(key), ret);
                if (r < 0)
                        r = se_error_set(e, r, "MySQL %s: cannot read %s", m->display, key);
        }
        if (res)
                sym_mysql_free_result(res);
        return r;
}

/* One INSERT … SELECT for u: kine's update row (compare-and-swap on the expected id), or kine's
 * create row (prev_revision/old_value from the tombstone, if the key was deleted). */
static int build_write(mysql_store *m, const se_kv_update *u) {
        int r;

        r = q_add(m, "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                     "old_value) SELECT ");
        if (u->expected_mod_revision != 0) {
                if (r >= 0)
                        r = q_add(m, "c.name, 0, 0, CASE WHEN c.created != 0 THEN c.id ELSE c.create_revision END, "
                                     "c.id, c.lease, ");
                if (r >= 0)
                        r = q_add_blob(m, u->value, u->value_size);
                if (r >= 0)
                        r = q_add(m, ", c.value FROM kine AS c WHERE c.id = ");
                if (r >= 0)
                        r = q_add_int(m, (long long) u->expected_mod_revision);
                if (r >= 0)
                        r = q_add(m, " AND c.name = ");
                if (r >= 0)
                        r = q_add_string(m, u->key);
                if (r >= 0)
                        r = q_add(m, " AND c.deleted = 0 AND c.id = (SELECT MAX(mx.id) FROM kine AS mx WHERE "
                                     "mx.name = ");
                if (r >= 0)
                        r = q_add_string(m, u->key);
                if (r >= 0)
                        r = q_add(m, ");");
        } else {
                if (r >= 0)
                        r = q_add_string(m, u->key);
                if (r >= 0)
                        r = q_add(m, ", 1, 0, 0, COALESCE(t.id, 0), 0, ");
                if (r >= 0)
                        r = q_add_blob(m, u->value, u->value_size);
                if (r >= 0)
                        r = q_add(m, ", t.value FROM (SELECT 1 AS one) AS o LEFT JOIN kine AS t ON t.id = (SELECT "
                                     "MAX(mx.id) FROM kine AS mx WHERE mx.name = ");
                if (r >= 0)
                        r = q_add_string(m, u->key);
                if (r >= 0)
                        r = q_add(m, ") WHERE t.id IS NULL OR t.deleted != 0;");
        }
        return r;
}

/* Sends the writes u[idx[from..to)] as one multi-statement query and records each statement's
 * outcome. Returns the position after the last statement that ran (a duplicate key stops the rest
 * of the query: the caller sends them again), or a negative errno. */
static ssize_t my_send(mysql_store *m, se_kv_update *u, const size_t *idx, size_t from, size_t to, int *written,
                       se_error *e) {
        size_t i = from;
        int status;

        if (sym_mysql_real_query(m->conn, m->q, m->q_size) != 0)
                goto failed;
        for (;;) {
                MYSQL_RES *res = sym_mysql_store_result(m->conn);

                sym_mysql_free_result(res);
                if (sym_mysql_affected_rows(m->conn) == 1) {
                        u[idx[i]].new_revision = (int64_t) sym_mysql_insert_id(m->conn);
                        (*written)++;
                } else
                        u[idx[i]].conflict = true;
                i++;
                status = sym_mysql_next_result(m->conn);
                if (status < 0)
                        break;
                if (status > 0)
                        goto failed;
        }
        if (i != to)
                return se_error_set(e, -EIO, "MySQL %s: %zu results for %zu statements", m->display, i - from,
                                    to - from);
        return (ssize_t) i;

failed:
        if (sym_mysql_errno(m->conn) == ER_DUP_ENTRY) {
                /* kine_name_prev_revision_uindex: another writer superseded the row first; only this
                 * statement was undone */
                u[idx[i]].conflict = true;
                return (ssize_t) (i + 1);
        }
        return my_fail(m, e, "write failed");
}

/* The writes u[idx[0..k)], one INSERT … SELECT each, as many per round trip as fit in a query. */
static int my_write_each(mysql_store *m, se_kv_update *u, const size_t *idx, size_t k, int *written, se_error *e) {
        size_t i = 0;

        while (i < k) {
                size_t to = i;
                ssize_t r;

                q_reset(m);
                /* at least one statement, then more while the query stays below the chunk size */
                do {
                        if (build_write(m, &u[idx[to]]) < 0)
                                return se_error_set(e, -ENOMEM, "out of memory");
                        to++;
                } while (to < k && m->q_size + u[idx[to]].value_size * 2 + 1024 < m->max_query);

                r = my_send(m, u, idx, i, to, written, e);
                if (r < 0)
                        return (int) r;
                i = (size_t) r;
        }
        return 0;
}

static void my_free_resultp(MYSQL_RES **res) {
        if (*res)
                sym_mysql_free_result(*res);
}

typedef struct check_row {
        long long id, create_revision, lease;
        const char *value; /* in the check's result; NULL for NULL */
        unsigned long value_size;
} check_row;

/* Which of the batch's expected rows are still their name's current, live row (as build_write's
 * compare-and-swap reads it): id, name, and the create_revision, lease and old_value (its value) a
 * row superseding it carries. */
static int build_check(mysql_store *m, const se_sql_batch *b, bool begin) {
        int r = begin ? q_add(m, "START TRANSACTION; ") : 0;

        if (r >= 0)
                r = q_add(m, "SELECT c.id, c.name, CASE WHEN c.created != 0 THEN c.id ELSE c.create_revision END, "
                             "c.lease, c.value FROM kine AS c WHERE c.id IN (");
        for (size_t j = 0; r >= 0 && j < b->n; j++) {
                if (j > 0)
                        r = q_add(m, ",");
                if (r >= 0)
                        r = q_add_int(m, (long long) b->u[b->order[j]].expected_mod_revision);
        }
        if (r >= 0)
                r = q_add(m,
                          ") AND c.deleted = 0 AND c.id = (SELECT MAX(mx.id) FROM kine AS mx WHERE mx.name = c.name)");
        return r;
}

#define INSERT_PARAMS   6
#define INSERT_MAX_ROWS 1000u

/* kine's update rows for k rows in one INSERT … VALUES that returns them, prepared (the values go
 * as binary parameters: hex literals cost the server about as much again as the insert). VALUES,
 * not INSERT … SELECT: InnoDB gives a statement whose row count it knows exactly that many
 * consecutive ids, where INSERT … SELECT reserves them in growing blocks and loses what it did not
 * use, a gap after every batch that kine's pollers would wait on and fill. create_revision, lease
 * and old_value come from build_check's read of the superseded row (rows are never changed, and
 * the unique index refuses the insert if that row was superseded since): a subquery a row reading
 * old_value by id made the whole re-encryption 15-25 % slower, the server preparing 500 subqueries
 * a batch. */
static int my_prepare_insert(mysql_store *m, size_t k, se_error *e) {
        int r;

        if (m->insert && m->insert_rows == k)
                return 0;
        if (m->insert) {
                sym_mysql_stmt_close(m->insert);
                m->insert = NULL;
                m->insert_rows = 0;
        }
        q_reset(m);
        r = q_add(m, "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                     "old_value) VALUES ");
        for (size_t j = 0; r >= 0 && j < k; j++)
                r = q_add(m, j == 0 ? "(?, 0, 0, ?, ?, ?, ?, ?)" : ", (?, 0, 0, ?, ?, ?, ?, ?)");
        if (r >= 0)
                r = q_add(m, " RETURNING prev_revision, id");
        if (r < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        m->insert = sym_mysql_stmt_init(m->conn);
        if (!m->insert)
                return se_error_set(e, -ENOMEM, "out of memory");
        if (sym_mysql_stmt_prepare(m->insert, m->q, m->q_size) != 0) {
                r = my_stmt_fail(m, m->insert, e, "cannot prepare the write");
                sym_mysql_stmt_close(m->insert);
                m->insert = NULL;
                return r;
        }
        m->insert_rows = k;
        return 0;
}

/* MariaDB: the updates of u in two round trips: one reads which expected rows are still current
 * (the others are conflicts, nothing written), one inserts kine's rows for those (one INSERT per
 * packet-size chunk). A writer that adds its row for a name in between makes the chunk's INSERT
 * fail on kine's unique index; only that statement is undone (its ids are lost: a gap, as after
 * any failed insert of kine's own), and its updates are then written one by one, which tells
 * which lost. With begin, the first query starts the transaction. */
static int my_write_updates(mysql_store *m, se_kv_update *u, size_t n, bool begin, int *written, se_error *e) {
        _cleanup_(se_sql_batch_done) se_sql_batch b = {};
        _cleanup_free_ size_t *todo = NULL;
        _cleanup_free_ check_row *cur = NULL;
        _cleanup_(my_free_resultp) MYSQL_RES *res = NULL;
        MYSQL_ROW row;
        size_t k = 0, from = 0;
        int r;

        if (se_sql_batch_init(&b, u, n, false) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        todo = calloc(MAX(b.n, 1u), sizeof(size_t));
        cur = calloc(MAX(n, 1u), sizeof(check_row));
        if (!todo || !cur)
                return se_error_set(e, -ENOMEM, "out of memory");

        q_reset(m);
        if (build_check(m, &b, begin) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        if (sym_mysql_real_query(m->conn, m->q, m->q_size) != 0)
                return my_fail(m, e, begin ? "cannot begin a write transaction" : "read failed");
        if (begin) {
                sym_mysql_free_result(sym_mysql_store_result(m->conn));
                if (sym_mysql_next_result(m->conn) != 0)
                        return my_fail(m, e, "read failed");
        }
        res = sym_mysql_store_result(m->conn);
        if (!res)
                return my_fail(m, e, "read failed");
        /* every update is a conflict unless its row is current under its own key */
        se_sql_batch_results_begin(&b, 0, b.n);
        while ((row = sym_mysql_fetch_row(res))) {
                unsigned long *len = sym_mysql_fetch_lengths(res);
                size_t i = row[0] && row[1] && row[2] && row[3]
                                   ? se_sql_batch_find(&b, NULL, strtoll(row[0], NULL, 10))
                                   : SIZE_MAX;

                if (i != SIZE_MAX && streq(u[i].key, row[1])) {
                        u[i].conflict = false;
                        cur[i] = (check_row){u[i].expected_mod_revision, strtoll(row[2], NULL, 10),
                                             strtoll(row[3], NULL, 10), row[4], len[4]};
                }
        }
        /* the result stays: the rows' values are bound below */
        for (size_t i = 0; i < n; i++)
                if (u[i].expected_mod_revision != 0 && !u[i].conflict)
                        todo[k++] = i;

        while (from < k) {
                _cleanup_free_ MYSQL_BIND *bind = NULL;
                long long ret_prev = 0, ret_id = 0;
                MYSQL_BIND out[2] = {};
                size_t to = from, size = 0;
                int status;

                /* as many rows as fit in a packet */
                do {
                        size += u[todo[to]].value_size + strlen(u[todo[to]].key) + 64;
                        to++;
                } while (to < k && to - from < INSERT_MAX_ROWS &&
                         size + u[todo[to]].value_size + strlen(u[todo[to]].key) + 64 < m->max_query);

                r = my_prepare_insert(m, to - from, e);
                if (r < 0)
                        return r;
                bind = calloc((to - from) * INSERT_PARAMS, sizeof(MYSQL_BIND));
                if (!bind)
                        return se_error_set(e, -ENOMEM, "out of memory");
                for (size_t j = from; j < to; j++) {
                        MYSQL_BIND *p = &bind[(j - from) * INSERT_PARAMS];
                        se_kv_update *w = &u[todo[j]];

                        p[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_STRING,
                                            .buffer = (void *) w->key,
                                            .buffer_length = strlen(w->key)};
                        p[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG,
                                            .buffer = &cur[todo[j]].create_revision};
                        p[2] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &cur[todo[j]].id};
                        p[3] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &cur[todo[j]].lease};
                        p[4] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_BLOB,
                                            .buffer = (void *) w->value,
                                            .buffer_length = w->value_size};
                        p[5] = cur[todo[j]].value ? (MYSQL_BIND){.buffer_type = MYSQL_TYPE_BLOB,
                                                                 .buffer = (void *) cur[todo[j]].value,
                                                                 .buffer_length = cur[todo[j]].value_size}
                                                  : (MYSQL_BIND){.buffer_type = MYSQL_TYPE_NULL};
                }
                if (sym_mysql_stmt_bind_param(m->insert, bind) != 0)
                        return my_stmt_fail(m, m->insert, e, "write failed");
                out[0] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &ret_prev};
                out[1] = (MYSQL_BIND){.buffer_type = MYSQL_TYPE_LONGLONG, .buffer = &ret_id};
                /* With RETURNING the rows stream back: the duplicate key of a writer that got in
                 * since the check may come with the execute or only with the result. */
                if (sym_mysql_stmt_execute(m->insert) != 0 || sym_mysql_stmt_bind_result(m->insert, out) != 0 ||
                    sym_mysql_stmt_store_result(m->insert) != 0) {
                        if (sym_mysql_stmt_errno(m->insert) != ER_DUP_ENTRY)
                                return my_stmt_fail(m, m->insert, e, "write failed");
                        sym_mysql_stmt_free_result(m->insert);
                        r = my_write_each(m, u, todo + from, to - from, written, e);
                        if (r < 0)
                                return r;
                        from = to;
                        continue;
                }
                for (size_t j = from; j < to; j++)
                        u[todo[j]].conflict = true;
                while ((status = sym_mysql_stmt_fetch(m->insert)) == 0)
                        if (se_sql_batch_written(&b, NULL, ret_prev, ret_id))
                                (*written)++;
                sym_mysql_stmt_free_result(m->insert);
                if (status != MYSQL_NO_DATA)
                        return my_stmt_fail(m, m->insert, e, "write failed");
                from = to;
        }
        return 0;
}

static int my_update_once(mysql_store *m, se_kv_update *u, size_t n, se_error *e) {
        _cleanup_free_ size_t *idx = NULL;
        size_t k = 0;
        int r, written = 0;

        r = my_connect(m, e);
        if (r == 0)
                r = se_error_set(e, -ENOENT, "MySQL %s has no kine table: cannot write %s", m->display, u[0].key);
        if (r < 0)
                goto finish;

        idx = calloc(MAX(n, 1u), sizeof(size_t));
        if (!idx) {
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto finish;
        }
        /* with RETURNING, the updates go as whole statements and only the creates one by one */
        for (size_t i = 0; i < n; i++)
                if (!m->returning || u[i].expected_mod_revision == 0)
                        idx[k++] = i;

        if (k > 0 || !m->returning) {
                r = my_exec(m, "START TRANSACTION", e, "cannot begin a write transaction");
                if (r >= 0)
                        r = my_write_each(m, u, idx, k, &written, e);
        }
        if (r >= 0 && m->returning && k < n)
                r = my_write_updates(m, u, n, k == 0, &written, e);
        if (r < 0)
                goto rollback;

        r = my_exec(m, "COMMIT", e, "commit failed");
        if (r < 0)
                goto rollback;
        r = written;
        goto finish;

rollback:
        if (m->conn && my_exec(m, "ROLLBACK", NULL, "rollback failed") < 0)
                my_disconnect(m);
        if (r == -ECONNRESET)
                my_disconnect(m);
        for (size_t j = 0; j < n; j++)
                u[j].new_revision = 0;
finish:
        return r;
}

static int my_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        mysql_store *m = impl;
        uint64_t deadline = 0;
        int r;

        for (size_t j = 0; j < n; j++)
                if (u[j].value_size > MY_MAX_VALUE)
                        return se_error_set(e, -EFBIG, "MySQL: value for %s exceeds %u bytes (kine's MEDIUMBLOB)",
                                            u[j].key, MY_MAX_VALUE);
        if (n > INT_MAX)
                return se_error_set(e, -E2BIG, "MySQL: too many updates in one batch");

        pthread_mutex_lock(&m->lock);
        do {
                for (size_t j = 0; j < n; j++) {
                        u[j].conflict = false;
                        u[j].new_revision = 0;
                }
                r = my_update_once(m, u, n, e);
        } while (r < 0 && my_retry(m, r, &deadline));
        pthread_mutex_unlock(&m->lock);
        return r;
}

const se_store_ops se_store_mysql_ops = {
        .kind = SE_STORE_MYSQL,
        .open = my_open,
        .open_reader = my_open, /* a second connection for se_store_read_ahead() */
        .close = my_close,
        .range = my_range,
        .count = my_count,
        .get = my_get,
        .update = my_update,
};
