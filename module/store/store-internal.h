/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

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
};

/* The first key after every key that starts with prefix ("/a/" → "/a0"); NULL if none. */
char *se_prefix_range_end(const char *prefix);

/* A LIKE pattern for every key that starts with prefix: prefix with \\, % and _ escaped, then %.
 * kine selects key prefixes with LIKE, in the column's own collation. */
char *se_like_prefix_pattern(const char *prefix);
