/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "read-ahead.h"
#include "se-store.h"

/* Each backend fills one of these; store.c dispatches on the endpoint's scheme. */
typedef struct se_store_ops {
        se_store_kind kind;
        int (*open)(const se_store_options *o, void **ret_impl, se_error *e);
        void (*close)(void *impl);
        int (*range)(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e);
        int (*count)(void *impl, const char *prefix, uint64_t *ret, se_error *e);
        int (*get)(void *impl, const char *key, se_kv *ret, se_error *e);
        int (*update)(void *impl, se_kv_update *u, size_t n, se_error *e);
        /* se_store_read_ahead(), one of two ways, or neither (optional):
         *   read_ahead   the backend's own (etcd: the range request sent now, answered later);
         *   open_reader  opens a second instance (its own connection) for store.c to read the
         *                next range on, on a thread of its own (read-ahead.c), while the caller
         *                writes on the first: for backends whose client blocks. The instance
         *                se_store_counter counts on (store-counter.c) is one too. */
        void (*read_ahead)(void *impl, const char *prefix, const char *start, size_t limit);
        int (*open_reader)(const se_store_options *o, void **ret_impl, se_error *e);
        /* optional (NULL: -EOPNOTSUPP); see se_store_revision() and se_store_count_values() */
        int (*revision)(void *impl, int64_t *ret, se_error *e);
        int (*count_values)(void *impl, const char *key_from, const char *key_to, int64_t min_rev, int64_t max_rev,
                            const char *const *value_prefixes, uint64_t *ret, se_error *e);
} se_store_ops;

extern const se_store_ops se_store_kine_ops;
extern const se_store_ops se_store_etcd_ops;
extern const se_store_ops se_store_pgsql_ops;
extern const se_store_ops se_store_mysql_ops;

struct se_store {
        const se_store_ops *ops;
        void *impl;
        /* open_reader's: the options it is opened with (copies), its instance, the thread */
        se_store_options reader_options;
        void *reader;
        se_read_ahead *ahead;
        bool ahead_unavailable; /* could not be started: not tried again */
};

/* Room for one more item in a range page being filled (capacity *cap, doubling from
 * MIN(limit, 64)); -ENOMEM when there is none. */
int se_kv_list_grow(se_kv_list *l, size_t *cap, size_t limit);

/* The first key after every key that starts with prefix ("/a/" → "/a0"); NULL if none. */
char *se_prefix_range_end(const char *prefix);

/* A LIKE pattern for every key that starts with prefix: prefix with \\, % and _ escaped, then %.
 * kine selects key prefixes with LIKE, in the column's own collation. */
char *se_like_prefix_pattern(const char *prefix);

/* The creates (expected_mod_revision 0) or the updates among u[0..n) that SQL statements write,
 * each telling by the rows it returns which it wrote (sql-batch.c). order[0..n) are their indexes
 * in u, in batch order until results are looked up. */
typedef struct se_sql_batch {
        se_kv_update *u;
        size_t *order, n;
        bool creates;
        size_t from, to; /* order[from..to): the statement whose results are being read */
} se_sql_batch;

int se_sql_batch_init(se_sql_batch *b, se_kv_update *u, size_t n, bool creates);
/* Before a statement's returned rows, for the writes order[from..to) it carried: each is a
 * conflict until a returned row names it (order[from..to) is sorted for the look-up). */
void se_sql_batch_results_begin(se_sql_batch *b, size_t from, size_t to);
/* The index in u of the create of key, or of the update that expects revision prev, among
 * order[from..to); SIZE_MAX if none. */
size_t se_sql_batch_find(const se_sql_batch *b, const char *key, int64_t prev);
/* A returned row: the create of key, or the update that superseded revision prev; written as id.
 * false when it names none of the writes (or one already named). */
bool se_sql_batch_written(se_sql_batch *b, const char *key, int64_t prev, int64_t id);
void se_sql_batch_done(se_sql_batch *b);
