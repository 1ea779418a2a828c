/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * One range read ahead on a thread of its own (see se_store_read_ahead()). The caller's thread
 * asks, takes or drops; the reader's thread only reads. Reading early is the caller's choice:
 * it writes each value back by compare-and-swap, so a change after the read is a conflict.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "read-ahead.h"
#include "se-util.h"

struct se_read_ahead {
        se_read_ahead_range_fn range;
        void *conn;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* the one request: asked (by the caller) → running → done (by the thread) */
        char *prefix, *start;
        size_t limit;
        bool asked, running, done, quit;
        int r;
        se_kv_list result;
};

static void *reader_main(void *userdata) {
        se_read_ahead *a = userdata;

        pthread_mutex_lock(&a->lock);
        for (;;) {
                while (!a->asked && !a->quit)
                        pthread_cond_wait(&a->cond, &a->lock);
                if (a->quit)
                        break;
                a->asked = false;
                a->running = true;
                pthread_mutex_unlock(&a->lock);
                /* prefix, start and limit do not change while running */
                a->r = a->range(a->conn, a->prefix, a->start, a->limit, &a->result);
                pthread_mutex_lock(&a->lock);
                a->running = false;
                a->done = true;
                pthread_cond_broadcast(&a->cond);
        }
        pthread_mutex_unlock(&a->lock);
        return NULL;
}

int se_read_ahead_new(se_read_ahead_range_fn range, void *conn, se_read_ahead **ret) {
        se_read_ahead *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->range = range;
        a->conn = conn;
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->cond, NULL);
        r = pthread_create(&a->thread, NULL, reader_main, a);
        if (r != 0) {
                pthread_cond_destroy(&a->cond);
                pthread_mutex_destroy(&a->lock);
                free(a);
                return -r;
        }
        *ret = a;
        return 0;
}

void se_read_ahead_drop(se_read_ahead *a) {
        if (!a)
                return;
        pthread_mutex_lock(&a->lock);
        while (a->running)
                pthread_cond_wait(&a->cond, &a->lock);
        a->asked = a->done = false;
        pthread_mutex_unlock(&a->lock);
        se_kv_list_done(&a->result);
        a->result = (se_kv_list){};
        free(a->prefix);
        free(a->start);
        a->prefix = a->start = NULL;
}

void se_read_ahead_free(se_read_ahead *a) {
        if (!a)
                return;
        se_read_ahead_drop(a);
        pthread_mutex_lock(&a->lock);
        a->quit = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        free(a);
}

void se_read_ahead_ask(se_read_ahead *a, const char *prefix, const char *start, size_t limit) {
        se_read_ahead_drop(a);
        a->prefix = strdup(prefix);
        a->start = start ? strdup(start) : NULL;
        a->limit = limit;
        if (!a->prefix || (start && !a->start)) {
                se_read_ahead_drop(a);
                return;
        }
        pthread_mutex_lock(&a->lock);
        a->asked = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
}

int se_read_ahead_take(se_read_ahead *a, const char *prefix, const char *start, size_t limit, se_kv_list *ret) {
        int r = -ESTALE;

        if (!a->prefix || !streq(a->prefix, prefix) ||
            !(a->start && start ? streq(a->start, start) : a->start == start) || a->limit != limit)
                goto drop;
        pthread_mutex_lock(&a->lock);
        while (a->asked || a->running)
                pthread_cond_wait(&a->cond, &a->lock);
        pthread_mutex_unlock(&a->lock);
        if (a->done && a->r == 0) {
                *ret = a->result;
                a->result = (se_kv_list){};
                r = 0;
        }
drop:
        se_read_ahead_drop(a);
        return r;
}

bool se_read_ahead_covers(const se_read_ahead *a, const char *key) {
        /* the range is [start, end of prefix) */
        return a && a->prefix && startswith(key, a->prefix) && !(a->start && strcmp(key, a->start) < 0);
}
