/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"
#include "store-internal.h"

_public_ int se_store_open(const se_store_options *o, se_store **ret, se_error *e) {
        const se_store_ops *ops;
        se_store *s;
        int r;

        if (!o || isempty(o->endpoint) || !ret)
                return se_error_set(e, -EINVAL, "datastore-endpoint is empty");

        if (startswith(o->endpoint, "sqlite://"))
                ops = &se_store_kine_ops;
        else if (startswith(o->endpoint, "http://") || startswith(o->endpoint, "https://"))
                ops = &se_store_etcd_ops;
        else if (startswith(o->endpoint, "postgres://") || startswith(o->endpoint, "postgresql://"))
                ops = &se_store_pgsql_ops;
        else if (startswith(o->endpoint, "mysql://"))
                ops = &se_store_mysql_ops;
        else {
                _cleanup_free_ char *shown = se_url_strip_userinfo(o->endpoint);

                return se_error_set(e, -EINVAL,
                                    "datastore-endpoint \"%s\": unsupported scheme, expected sqlite://PATH, "
                                    "http(s)://HOST:PORT[,…], postgres://USER:PASS@HOST:PORT/DB or "
                                    "mysql://USER:PASS@tcp(HOST:PORT)/DB",
                                    shown ? shown : "");
        }

        s = calloc(1, sizeof(*s));
        if (!s)
                return se_error_set(e, -ENOMEM, "out of memory");
        s->ops = ops;
        r = ops->open(o, &s->impl, e);
        if (r < 0) {
                free(s);
                return r;
        }
        if (o->require_data) {
                se_kv_list l = {};

                r = se_store_range(s, "/registry/", NULL, 1, &l, e);
                if (r >= 0 && l.n_items == 0) {
                        _cleanup_free_ char *shown = se_url_strip_userinfo(o->endpoint);

                        r = se_error_set(e, -ENOMEDIUM,
                                         "%s holds no Kubernetes data (no key under /registry/): check "
                                         "datastore-endpoint; an empty store is never assumed",
                                         shown ? shown : "the datastore");
                }
                se_kv_list_done(&l);
                if (r < 0) {
                        se_store_close(s);
                        return r;
                }
        }
        *ret = s;
        return 0;
}

_public_ se_store *se_store_close(se_store *s) {
        if (!s)
                return NULL;
        s->ops->close(s->impl);
        free(s);
        return NULL;
}

_public_ se_store_kind se_store_get_kind(const se_store *s) {
        return s->ops->kind;
}

_public_ int se_store_range(se_store *s, const char *prefix, const char *start, size_t limit, se_kv_list *ret,
                            se_error *e) {
        se_kv_list_done(ret);
        return s->ops->range(s->impl, prefix, start, limit, ret, e);
}

_public_ int se_store_count(se_store *s, const char *prefix, uint64_t *ret, se_error *e) {
        return s->ops->count(s->impl, prefix, ret, e);
}

_public_ int se_store_get(se_store *s, const char *key, se_kv *ret, se_error *e) {
        return s->ops->get(s->impl, key, ret, e);
}

_public_ void se_store_read_ahead(se_store *s, const char *prefix, const char *start, size_t limit) {
        if (s->ops->read_ahead)
                s->ops->read_ahead(s->impl, prefix, start, limit);
}

_public_ int se_store_update(se_store *s, se_kv_update *u, size_t n, se_error *e) {
        if (n == 0)
                return 0;
        return s->ops->update(s->impl, u, n, e);
}

_public_ int se_store_revision(se_store *s, int64_t *ret, se_error *e) {
        if (!s->ops->revision)
                return se_error_set(e, -EOPNOTSUPP, "the datastore has no revision watermark");
        return s->ops->revision(s->impl, ret, e);
}

_public_ int se_store_count_values(se_store *s, const char *key_from, const char *key_to, int64_t min_rev,
                                   int64_t max_rev, const char *const *value_prefixes, uint64_t *ret, se_error *e) {
        if (!s->ops->count_values)
                return se_error_set(e, -EOPNOTSUPP, "the datastore cannot count values by prefix");
        return s->ops->count_values(s->impl, key_from, key_to, min_rev, max_rev, value_prefixes, ret, e);
}
