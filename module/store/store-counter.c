/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * se_store_count() of several prefixes on a second handle of the same datastore, on a thread of
 * its own, while the first handle is busy with the pass the count sizes. On the SQL servers the
 * exact count of a large table took as long as a sixth of the pass it only reports on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "macro.h"
#include "se-strv.h"
#include "se-util.h"
#include "store-internal.h"

struct se_store_counter {
        se_store *store; /* the second handle, used by the thread only */
        char **prefixes;
        pthread_t thread;
        pthread_mutex_t lock;
        bool finished, joined;
        int r;
        uint64_t total;
        se_error error;
};

static void *counter_main(void *userdata) {
        se_store_counter *c = userdata;
        se_error e = SE_ERROR_NULL;
        uint64_t total = 0;
        int r = 0;

        for (char **p = c->prefixes; *p && r >= 0; p++) {
                uint64_t n = 0;

                r = se_store_count(c->store, *p, &n, &e);
                if (r >= 0)
                        total += n;
                else
                        r = se_error_prefix(&e, r, "cannot count the values under %s", *p);
        }
        pthread_mutex_lock(&c->lock);
        c->r = r;
        c->total = total;
        c->error = e;
        c->finished = true;
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

_public_ int se_store_counter_start(se_store *s, const char *const *prefixes, se_store_counter **ret) {
        se_store_counter *c;
        size_t n = 0;
        int r;

        if (!s->ops->open_reader)
                return -EOPNOTSUPP;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        while (prefixes[n])
                n++;
        c->prefixes = calloc(n + 1, sizeof(char *));
        c->store = calloc(1, sizeof(se_store));
        if (!c->prefixes || !c->store) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n; i++)
                if (!(c->prefixes[i] = strdup(prefixes[i]))) {
                        r = -ENOMEM;
                        goto fail;
                }
        c->store->ops = s->ops;
        r = s->ops->open_reader(&s->reader_options, &c->store->impl, NULL);
        if (r < 0) {
                c->store->impl = NULL;
                goto fail;
        }
        pthread_mutex_init(&c->lock, NULL);
        r = -pthread_create(&c->thread, NULL, counter_main, c);
        if (r < 0) {
                pthread_mutex_destroy(&c->lock);
                goto fail;
        }
        *ret = c;
        return 0;

fail:
        if (c->store && c->store->impl)
                c->store->ops->close(c->store->impl);
        free(c->store);
        se_strv_free(c->prefixes);
        free(c);
        return r;
}

_public_ int se_store_counter_result(se_store_counter *c, bool wait, uint64_t *ret_total, se_error *e) {
        bool finished;

        pthread_mutex_lock(&c->lock);
        finished = c->finished;
        pthread_mutex_unlock(&c->lock);
        if (!finished && !wait)
                return 0;
        if (!c->joined) {
                pthread_join(c->thread, NULL);
                c->joined = true;
        }
        if (c->r < 0) {
                if (e) {
                        se_error_done(e);
                        *e = c->error;
                        c->error = SE_ERROR_NULL;
                }
                return c->r;
        }
        *ret_total = c->total;
        return 1;
}

_public_ se_store_counter *se_store_counter_free(se_store_counter *c) {
        if (!c)
                return NULL;
        if (!c->joined)
                pthread_join(c->thread, NULL);
        pthread_mutex_destroy(&c->lock);
        se_error_done(&c->error);
        se_store_close(c->store);
        se_strv_free(c->prefixes);
        free(c);
        return NULL;
}
