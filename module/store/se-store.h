/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"

/*
 * The datastore behind the API server: kine's SQLite schema (sqlite://PATH) or etcd v3 through
 * its JSON gateway (http[s]://h1:2379,…). Reads return current values only; updates are
 * compare-and-swap on the revision the value was read at, as kube-apiserver writes.
 */

typedef struct se_store se_store;

typedef enum se_plain_http {
        SE_PLAIN_HTTP_ALLOW,
        SE_PLAIN_HTTP_REFUSE,
        SE_PLAIN_HTTP_LOOPBACK,
} se_plain_http;

typedef struct se_store_options {
        /* "sqlite:///path/state.db", "https://h1:2379,https://h2:2379",
         * "postgres://user:pass@host:5432/db?sslmode=…" or "mysql://user:pass@tcp(host:3306)/db" */
        const char *endpoint;
        const char *cafile;
        const char *certfile;
        const char *keyfile;
        uint64_t timeout_usec; /* per request / busy timeout; 0 = backend default */
        /* The datastore must exist and hold Kubernetes data (keys under /registry/): a mistyped
         * path or an unmounted disk is -ENOMEDIUM (-EMEDIUMTYPE: not kine's schema), never an empty
         * store. Every operation on a cluster's data sets it. */
        bool require_data;
        /* http:// etcd endpoints (no TLS: the sealed config, node records and every secret cross the
         * network in clear, to whoever answers): ALLOW for library callers that decide themselves
         * (tests, tools); the settings (se_ctx_store) give REFUSE, or LOOPBACK with
         * datastore-allow-plain-http: 127.0.0.0/8, ::1 and localhost only. */
        se_plain_http plain_http;
} se_store_options;

typedef struct se_kv {
        char *key;
        uint8_t *value;
        size_t value_size;
        int64_t mod_revision; /* kine: row id; etcd: mod_revision */
        int64_t create_revision;
} se_kv;

typedef struct se_kv_list {
        se_kv *items;
        size_t n_items;
        bool more; /* further keys exist after the last one returned */
} se_kv_list;

typedef struct se_kv_update {
        const char *key;
        const uint8_t *value;
        size_t value_size;
        int64_t expected_mod_revision; /* 0 = the key must not exist (create) */
        /* out: */
        bool conflict;        /* a newer write won; nothing was written for this key */
        int64_t new_revision; /* when written */
} se_kv_update;

typedef enum se_store_kind {
        SE_STORE_KINE,
        SE_STORE_ETCD,
        SE_STORE_PGSQL, /* kine on PostgreSQL: postgres://… */
        SE_STORE_MYSQL, /* kine on MySQL/MariaDB: mysql://… */
} se_store_kind;

int se_store_open(const se_store_options *o, se_store **ret, se_error *e);
se_store *se_store_close(se_store *s);
se_store_kind se_store_get_kind(const se_store *s);

/* Current values with key >= start (or >= prefix when start is NULL) and key under prefix, in key
 * order, at most limit (0 = backend default page). ret is replaced (freed first). */
int se_store_range(se_store *s, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e);
/* Number of current keys under prefix. */
int se_store_count(se_store *s, const char *prefix, uint64_t *ret, se_error *e);
/* se_store_count() of each of prefixes (NULL-terminated), summed, on a second handle of s's
 * datastore and on a thread of its own: s stays free for other work meanwhile. -EOPNOTSUPP when
 * the backend has no second handle (etcd: count with se_store_count()). */
typedef struct se_store_counter se_store_counter;
int se_store_counter_start(se_store *s, const char *const *prefixes, se_store_counter **ret);
/* 1 and *ret_total when the count is done (waiting for it if wait), 0 when it is not yet (only
 * without wait), or the count's error. */
int se_store_counter_result(se_store_counter *c, bool wait, uint64_t *ret_total, se_error *e);
se_store_counter *se_store_counter_free(se_store_counter *c);

/* One key; -ENOENT if absent or deleted. */
int se_store_get(se_store *s, const char *key, se_kv *ret, se_error *e);

/* The store's revision now (kine: MAX(id); etcd: the header revision): every write after this
 * call gets a larger mod_revision. -EOPNOTSUPP when the backend cannot promise that (a kine table
 * without AUTOINCREMENT may reuse the id of a deleted last row). */
int se_store_revision(se_store *s, int64_t *ret, se_error *e);
/* Counts, in the datastore itself (no value is copied out), the current values with key in
 * [key_from, key_to) (key_to NULL: no upper bound) and min_rev <= mod_revision <= max_rev
 * (max_rev 0: no upper bound) whose bytes start with one of value_prefixes (NULL: any value).
 * -EOPNOTSUPP when the backend has no such query: the caller then reads the values itself. */
int se_store_count_values(se_store *s, const char *key_from, const char *key_to, int64_t min_rev, int64_t max_rev,
                          const char *const *value_prefixes, uint64_t *ret, se_error *e);

/* Compare-and-swap each update. A conflict on one key never blocks the others; it is reported in
 * u[i].conflict. The keys of one call are distinct (a SQL store may fail the call otherwise).
 * Returns the number written, or a negative errno if the store failed (then nothing is known
 * about partial progress beyond the flags already set). */
int se_store_update(se_store *s, se_kv_update *u, size_t n, se_error *e);
/* A hint: the next call will be se_store_range() with these arguments, and the caller accepts its
 * answer as of any moment from now on (a compare-and-swap of each value it writes back makes an
 * early read safe: a change in between is a conflict). etcd sends the range now, so that it
 * travels while the caller's updates are in flight; kine (SQLite, PostgreSQL, MySQL) reads it on
 * a second connection, on a thread of its own, while the caller writes. Any other request but an
 * update of keys outside the range drops it. */
void se_store_read_ahead(se_store *s, const char *prefix, const char *start, size_t limit);

/* Whether an http(s):// URL's host is 127.0.0.0/8, [::1] or localhost. */
bool se_store_url_is_loopback(const char *url);

void se_kv_done(se_kv *kv);
void se_kv_list_done(se_kv_list *l);
