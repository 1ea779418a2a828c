/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"
#include "store-internal.h"

/* The reader's options: the same datastore, no require_data (the main instance checked it). */
static int reader_options_copy(se_store_options *r, const se_store_options *o) {
        *r = (se_store_options){
                .endpoint = strdup(o->endpoint),
                .cafile = o->cafile ? strdup(o->cafile) : NULL,
                .certfile = o->certfile ? strdup(o->certfile) : NULL,
                .keyfile = o->keyfile ? strdup(o->keyfile) : NULL,
                .timeout_usec = o->timeout_usec,
                .plain_http = o->plain_http,
        };
        if (!r->endpoint || (o->cafile && !r->cafile) || (o->certfile && !r->certfile) || (o->keyfile && !r->keyfile))
                return -ENOMEM;
        return 0;
}

static void reader_options_free(se_store_options *r) {
        /* the endpoint may hold a password */
        if (r->endpoint)
                explicit_bzero((char *) r->endpoint, strlen(r->endpoint));
        free((char *) r->endpoint);
        free((char *) r->cafile);
        free((char *) r->certfile);
        free((char *) r->keyfile);
        *r = (se_store_options){};
}

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
        if (ops->open_reader && reader_options_copy(&s->reader_options, o) < 0) {
                reader_options_free(&s->reader_options);
                free(s);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        r = ops->open(o, &s->impl, e);
        if (r < 0) {
                reader_options_free(&s->reader_options);
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
        se_read_ahead_free(s->ahead);
        if (s->reader)
                s->ops->close(s->reader);
        reader_options_free(&s->reader_options);
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
        if (s->ahead && se_read_ahead_take(s->ahead, prefix ?: "", start, limit, ret) == 0)
                return 0;
        return s->ops->range(s->impl, prefix, start, limit, ret, e);
}

_public_ int se_store_count(se_store *s, const char *prefix, uint64_t *ret, se_error *e) {
        se_read_ahead_drop(s->ahead); /* a read ahead must not straddle another request */
        return s->ops->count(s->impl, prefix, ret, e);
}

_public_ int se_store_get(se_store *s, const char *key, se_kv *ret, se_error *e) {
        se_read_ahead_drop(s->ahead);
        return s->ops->get(s->impl, key, ret, e);
}

/* read-ahead.c's reader: the range on the second instance */
static int reader_range(void *userdata, const char *prefix, const char *start, size_t limit, se_kv_list *ret) {
        se_store *s = userdata;

        return s->ops->range(s->reader, prefix, start, limit, ret, NULL);
}

_public_ void se_store_read_ahead(se_store *s, const char *prefix, const char *start, size_t limit) {
        if (s->ops->read_ahead) {
                s->ops->read_ahead(s->impl, prefix, start, limit);
                return;
        }
        se_read_ahead_drop(s->ahead);
        if (!s->ops->open_reader || !prefix)
                return;
        /* Only a hint: if the second instance cannot be had, ranges are read the usual way. */
        if (!s->ahead && !s->ahead_unavailable) {
                s->ahead_unavailable = true;
                if (s->ops->open_reader(&s->reader_options, &s->reader, NULL) < 0) {
                        s->reader = NULL;
                        return;
                }
                if (se_read_ahead_new(reader_range, s, &s->ahead) < 0) {
                        s->ops->close(TAKE_PTR(s->reader));
                        return;
                }
                s->ahead_unavailable = false;
        }
        if (s->ahead)
                se_read_ahead_ask(s->ahead, prefix, start, limit);
}

_public_ int se_store_update(se_store *s, se_kv_update *u, size_t n, se_error *e) {
        if (n == 0)
                return 0;
        /* the range read ahead is of keys after those written, unless the caller says otherwise */
        for (size_t i = 0; i < n && s->ahead; i++)
                if (se_read_ahead_covers(s->ahead, u[i].key)) {
                        se_read_ahead_drop(s->ahead);
                        break;
                }
        return s->ops->update(s->impl, u, n, e);
}

_public_ int se_store_revision(se_store *s, int64_t *ret, se_error *e) {
        se_read_ahead_drop(s->ahead);
        if (!s->ops->revision)
                return se_error_set(e, -EOPNOTSUPP, "the datastore has no revision watermark");
        return s->ops->revision(s->impl, ret, e);
}

_public_ int se_store_count_values(se_store *s, const char *key_from, const char *key_to, int64_t min_rev,
                                   int64_t max_rev, const char *const *value_prefixes, uint64_t *ret, se_error *e) {
        se_read_ahead_drop(s->ahead);
        if (!s->ops->count_values)
                return se_error_set(e, -EOPNOTSUPP, "the datastore cannot count values by prefix");
        return s->ops->count_values(s->impl, key_from, key_to, min_rev, max_rev, value_prefixes, ret, e);
}
