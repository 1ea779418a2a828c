/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "reencrypt-internal.h"
#include "se-envelope.h"

/*
 * Two stages: the calling thread does all datastore I/O (read page N+1, write page N-1) while a
 * worker thread with its own transformer decrypts and re-encrypts page N. Pages are bounded, so
 * memory does not depend on the number of values.
 */

#define CONFLICT_ATTEMPTS   16
#define PROGRESS_MIN_VALUES 50
#define PROGRESS_MIN_USEC   (1000u * 1000u)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

#define SWAP_TWO(a, b)                                                                                                \
        do {                                                                                                          \
                __typeof__(a) _t_ = (a);                                                                              \
                (a) = (b);                                                                                            \
                (b) = _t_;                                                                                            \
        } while (0)

typedef enum item_action {
        ITEM_SKIP,
        ITEM_REWRITE,
        ITEM_UNREADABLE,
} item_action;

typedef struct item {
        item_action action;
        se_buf out;  /* ITEM_REWRITE: the value under the write key */
        char *error; /* ITEM_UNREADABLE: why */
} item;

typedef struct page {
        se_kv_list kvs;
        item *items;
        size_t n_items_alloc;
        size_t prefix_index;
        size_t n_ok; /* items before a fatal error (== kvs.n_items when none) */
        se_error error;
} page;

typedef struct worker {
        pthread_t thread;
        bool running;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        se_transformer *t;
        const se_reencrypt_options *o;
        se_buf plain;
        page *job; /* submitted and not finished */
        bool quit;
} worker;

/* Test hook: SE_TEST_REENCRYPT_KILL=<point>:<n> sends SIGKILL to the process at the n-th time
 * the run passes <point> (read, update, checkpoint), for the crash tests. */
typedef enum kill_point {
        KILL_NONE,
        KILL_READ,
        KILL_UPDATE,
        KILL_CHECKPOINT,
} kill_point;

typedef struct run {
        se_store *store;
        const se_reencrypt_options *o;
        const char *const *prefixes;
        size_t n_prefixes;
        se_transformer *t; /* the calling thread's, for conflicts */
        se_buf plain, out;

        size_t page_size, batch_size, max_paths;
        bool collect;

        /* reader position: next key after rd_after under prefixes[rd_prefix] */
        size_t rd_prefix;
        char *rd_after;

        se_kv_update *upd;
        size_t n_upd;

        se_checkpoint cp; /* committed state; cp.key is the last key finished */
        bool checkpointing, cp_frozen, cp_dirty;
        uint64_t cp_last_usec;

        se_reencrypt_result res;
        /* res.total's count, while it runs beside the pass; total_known once it is in res.total */
        se_store_counter *counter;
        bool total_known;
        uint64_t done_at_start, start_usec, last_progress_done, last_progress_usec;

        kill_point kill_at;
        unsigned kill_n, n_reads, n_updates, n_checkpoints;
} run;

static void test_kill_hook(run *r, kill_point p, unsigned count) {
        if (_unlikely_(r->kill_at == p && count == r->kill_n))
                (void) raise(SIGKILL);
}

static void test_kill_parse(run *r) {
        const char *v = secure_getenv("SE_TEST_REENCRYPT_KILL");
        const char *colon;
        unsigned n;

        if (!v || !(colon = strchr(v, ':')) || sscanf(colon + 1, "%u", &n) != 1 || n == 0)
                return;
        if (strneq(v, "read:", 5))
                r->kill_at = KILL_READ;
        else if (strneq(v, "update:", 7))
                r->kill_at = KILL_UPDATE;
        else if (strneq(v, "checkpoint:", 11))
                r->kill_at = KILL_CHECKPOINT;
        r->kill_n = n;
}

/* Outside strict_prefixes only values under a key of owned_value_prefixes are the rotated entry's to
 * rewrite: anything else may belong to a resource another entry covers. */
static bool in_scope(const se_reencrypt_options *o, const char *key, const uint8_t *v, size_t n) {
        if (!o->owned_value_prefixes)
                return true;
        for (const char *const *p = o->strict_prefixes; p && *p; p++)
                if (startswith(key, *p))
                        return true;
        for (const char *const *p = o->owned_value_prefixes; *p; p++) {
                size_t len = strlen(*p);

                if (n >= len && memcmp(v, *p, len) == 0)
                        return true;
        }
        return false;
}

/* A value the run leaves in place: counted for the removal check (safety.c). */
static void note_left(run *r, const uint8_t *v, size_t n) {
        r->res.left++;
        for (const char *const *p = r->o->watch_value_prefixes; p && *p; p++) {
                size_t len = strlen(*p);

                if (n >= len && memcmp(v, *p, len) == 0) {
                        r->res.watched_left++;
                        return;
                }
        }
}

/* A row this run wrote, for the removal check (safety.c), which need not read it again. Only
 * ascending revisions are listed, so the list stays sorted; one not listed (out of memory, past
 * the bound) is merely read again. */
static void note_written(run *r, int64_t rev) {
        se_revision_range *w = r->res.n_written > 0 ? &r->res.written[r->res.n_written - 1] : NULL;

        if (rev <= 0 || (w && rev <= w->last))
                return;
        if (w && rev == w->last + 1) {
                w->last = rev;
                return;
        }
        if (r->res.n_written >= SE_REENCRYPT_MAX_WRITTEN_RANGES)
                return;
        w = reallocarray(r->res.written, r->res.n_written + 1, sizeof(se_revision_range));
        if (!w)
                return;
        r->res.written = w;
        w[r->res.n_written++] = (se_revision_range){rev, rev};
}

/* 0: already current or not in scope, nothing to write. 1: out holds the value under the write key.
 * -ENOKEY: no configured key reads it (message names the key path). Other errors are fatal. */
static int transform_one(se_transformer *t, const se_reencrypt_options *o, const char *key, const uint8_t *v, size_t n,
                         se_buf *plain, se_buf *out, se_error *e) {
        se_read_info info = {};
        se_error err = SE_ERROR_NULL;
        int r;

        if (!in_scope(o, key, v, n) || se_transformer_is_current(t, v, n))
                return 0;

        if (se_value_is_kms(v, n, NULL)) {
                _cleanup_free_ char *what = se_value_describe(v, n);
                return se_error_set(e, -EOPNOTSUPP,
                                    "%s: value is encrypted by %s: KMS data cannot be re-encrypted by "
                                    "secrets-encrypt (keys live in the KMS plugin; use the KMS provider's own "
                                    "rotation)",
                                    key, what ?: "a KMS provider");
        }

        r = se_transformer_read(t, key, v, n, plain, &info, &err);
        if (r == -ENOKEY || r == -EBADMSG) {
                _cleanup_free_ char *what = se_value_describe(v, n);
                r = se_error_set(e, -ENOKEY, "%s: cannot decrypt %s with the configured keys: %s", key,
                                 what ?: "value", se_error_message(&err));
                se_error_done(&err);
                return r;
        }
        if (r < 0) {
                if (e) {
                        se_error_done(e);
                        *e = err;
                } else
                        se_error_done(&err);
                return se_error_prefix(e, r, "%s", key);
        }

        r = se_transformer_write(t, key, plain->data, plain->len, out, e);
        se_buf_clear(plain);
        if (r == -EOPNOTSUPP)
                return se_error_set(e, r,
                                    "%s: the write provider is KMS: KMS data cannot be re-encrypted by "
                                    "secrets-encrypt",
                                    key);
        if (r < 0)
                return se_error_prefix(e, r, "%s: cannot encrypt", key);
        return 1;
}

static void page_process(page *p, se_transformer *t, const se_reencrypt_options *o, se_buf *plain) {
        p->n_ok = p->kvs.n_items;
        se_error_done(&p->error);

        for (size_t i = 0; i < p->kvs.n_items; i++) {
                const se_kv *kv = &p->kvs.items[i];
                item *it = &p->items[i];
                se_error err = SE_ERROR_NULL;
                int r;

                se_buf_clear(&it->out);
                it->error = mfree(it->error);
                r = transform_one(t, o, kv->key, kv->value, kv->value_size, plain, &it->out, &err);
                if (r == 0)
                        it->action = ITEM_SKIP;
                else if (r > 0)
                        it->action = ITEM_REWRITE;
                else if (r == -ENOKEY) {
                        it->action = ITEM_UNREADABLE;
                        it->error = TAKE_PTR(err.message);
                        if (!it->error) {
                                p->n_ok = i;
                                p->error = (se_error){.error = -ENOMEM};
                                break;
                        }
                } else {
                        p->n_ok = i;
                        p->error = err;
                        break;
                }
                se_error_done(&err);
        }
}

static void *worker_main(void *userdata) {
        worker *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->job && !w->quit)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->quit)
                        break;
                pthread_mutex_unlock(&w->lock);
                page_process(w->job, w->t, w->o, &w->plain);
                pthread_mutex_lock(&w->lock);
                w->job = NULL;
                pthread_cond_broadcast(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

static int worker_start(worker *w, const se_config *c, const char *resource, se_error *e) {
        int r;

        r = se_transformer_new(c, resource, &w->t, e);
        if (r < 0)
                return r;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        /* Without a thread the pages are processed inline: slower, same result. */
        w->running = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        return 0;
}

static void worker_submit(worker *w, page *p) {
        if (!w->running) {
                page_process(p, w->t, w->o, &w->plain);
                return;
        }
        pthread_mutex_lock(&w->lock);
        w->job = p;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

static void worker_wait(worker *w) {
        if (!w->running)
                return;
        pthread_mutex_lock(&w->lock);
        while (w->job)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
}

static void worker_stop(worker *w) {
        if (w->running) {
                worker_wait(w);
                pthread_mutex_lock(&w->lock);
                w->quit = true;
                pthread_cond_broadcast(&w->cond);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
                w->running = false;
        }
        if (w->t) {
                pthread_mutex_destroy(&w->lock);
                pthread_cond_destroy(&w->cond);
        }
        w->t = se_transformer_free(w->t);
        se_buf_free(&w->plain);
}

static void page_free(page *p) {
        for (size_t i = 0; i < p->n_items_alloc; i++) {
                se_buf_free(&p->items[i].out);
                free(p->items[i].error);
        }
        free(p->items);
        se_kv_list_done(&p->kvs);
        se_error_done(&p->error);
        *p = (page){};
}

/* Fills p with the next non-empty page. 1 = got one, 0 = every prefix is done. */
static int read_page(run *r, page *p, se_error *e) {
        int k;

        for (;;) {
                size_t limit;

                if (r->rd_prefix >= r->n_prefixes) {
                        se_kv_list_done(&p->kvs);
                        return 0;
                }

                /* range is inclusive of start: ask one more and drop the key already done */
                limit = r->page_size + (r->rd_after ? 1 : 0);
                k = se_store_range(r->store, r->prefixes[r->rd_prefix], r->rd_after, limit, &p->kvs, e);
                if (k < 0)
                        return k;
                if (r->rd_after && p->kvs.n_items > 0 && streq(p->kvs.items[0].key, r->rd_after)) {
                        se_kv_done(&p->kvs.items[0]);
                        memmove(p->kvs.items, p->kvs.items + 1, (p->kvs.n_items - 1) * sizeof(se_kv));
                        p->kvs.n_items--;
                }
                p->prefix_index = r->rd_prefix;

                if (p->kvs.n_items == 0) {
                        if (p->kvs.more)
                                return se_error_set(e, -EIO, "datastore returned an empty page after \"%s\"",
                                                    r->rd_after);
                        r->rd_prefix++;
                        r->rd_after = mfree(r->rd_after);
                        continue;
                }

                free(r->rd_after);
                r->rd_after = strdup(p->kvs.items[p->kvs.n_items - 1].key);
                if (!r->rd_after)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (!p->kvs.more) {
                        r->rd_prefix++;
                        r->rd_after = mfree(r->rd_after);
                }

                if (p->kvs.n_items > p->n_items_alloc) {
                        item *n = reallocarray(p->items, p->kvs.n_items, sizeof(item));

                        if (!n)
                                return se_error_set(e, -ENOMEM, "out of memory");
                        memset(n + p->n_items_alloc, 0, (p->kvs.n_items - p->n_items_alloc) * sizeof(item));
                        p->items = n;
                        p->n_items_alloc = p->kvs.n_items;
                }
                test_kill_hook(r, KILL_READ, ++r->n_reads);
                return 1;
        }
}

/* Adds the count running beside the pass to res.total once it is done (waiting for it if wait).
 * A count that failed leaves the total unknown: it only sizes the progress report, and the pass
 * meets any fault of the datastore itself. */
static void take_count(run *r, bool wait) {
        uint64_t n = 0;
        int k;

        if (!r->counter)
                return;
        k = se_store_counter_result(r->counter, wait, &n, NULL);
        if (k == 0)
                return;
        r->counter = se_store_counter_free(r->counter);
        if (k > 0) {
                r->res.total += n;
                r->total_known = true;
        }
}

static int report_progress(run *r, bool final) {
        uint64_t now = se_now_usec(CLOCK_MONOTONIC), done = r->res.done;
        double secs;
        se_reencrypt_progress p;

        if (!r->o->progress)
                return 0;
        take_count(r, final);
        if (!r->total_known && !final)
                return 0; /* a percentage of nothing yet */
        /* every 50 values or every second, whichever is rarer */
        if (!final &&
            (done - r->last_progress_done < PROGRESS_MIN_VALUES || now - r->last_progress_usec < PROGRESS_MIN_USEC))
                return 0;
        r->last_progress_done = done;
        r->last_progress_usec = now;

        secs = (double) (now - r->start_usec) / 1e6;
        p = (se_reencrypt_progress){
                .done = done,
                .total = MAX(r->res.total, done),
                .rate = secs > 0 ? (double) (done - r->done_at_start) / secs : 0,
                .rewritten = r->res.rewritten,
                .skipped = r->res.skipped,
                .conflicts = r->res.conflicts,
                .final = final,
        };
        return r->o->progress(&p, r->o->userdata);
}

static int save_checkpoint(run *r, bool force) {
        uint64_t now;
        int k;

        if (!r->checkpointing || r->cp_frozen || !r->cp_dirty)
                return 0;
        now = se_now_usec(CLOCK_MONOTONIC);
        if (!force && r->o->checkpoint_interval_usec > 0 && now - r->cp_last_usec < r->o->checkpoint_interval_usec)
                return 0;

        r->cp.done = r->res.done;
        r->cp.rewritten = r->res.rewritten;
        r->cp.skipped = r->res.skipped;
        r->cp.conflicts = r->res.conflicts;
        take_count(r, false);
        r->cp.total = r->total_known ? MAX(r->res.total, r->res.done) : 0; /* 0: not known yet */
        k = se_checkpoint_save(r->o->state_dir, &r->cp);
        if (k < 0)
                return k;
        r->cp_dirty = false;
        r->cp_last_usec = now;
        test_kill_hook(r, KILL_CHECKPOINT, ++r->n_checkpoints);
        return 0;
}

static int note_unreadable(run *r, const char *key, se_error *e) {
        int k;

        if (!r->collect)
                return -ENOKEY; /* transform_one's message names the key */
        r->res.unreadable++;
        /* a resumed run must meet it again, so the checkpoint stops moving */
        r->cp_frozen = true;
        k = se_path_list_add(&r->res.unreadable_paths, &r->res.n_unreadable_paths, r->max_paths, key);
        if (k < 0)
                return se_error_set(e, k, "out of memory");
        return 0;
}

/* Someone else wrote key after we read it. Their value wins unless it still needs rewriting. */
static int resolve_conflict(run *r, const char *key, se_error *e) {
        r->res.conflicts++;

        for (unsigned attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
                se_kv kv = {};
                se_kv_update u;
                int k;

                k = se_store_get(r->store, key, &kv, e);
                if (k == -ENOENT)
                        return 0; /* deleted meanwhile */
                if (k < 0)
                        return se_error_prefix(e, k, "%s: cannot re-read after a conflict", key);

                k = transform_one(r->t, r->o, key, kv.value, kv.value_size, &r->plain, &r->out, e);
                if (k == 0 || k == -ENOKEY)
                        note_left(r, kv.value, kv.value_size);
                if (k <= 0) {
                        se_kv_done(&kv);
                        if (k == -ENOKEY)
                                return note_unreadable(r, key, e);
                        return k;
                }

                u = (se_kv_update){
                        .key = key,
                        .value = r->out.data,
                        .value_size = r->out.len,
                        .expected_mod_revision = kv.mod_revision,
                };
                k = se_store_update(r->store, &u, 1, e);
                se_kv_done(&kv);
                se_buf_clear(&r->out);
                if (k < 0)
                        return k;
                if (!u.conflict) {
                        r->res.rewritten++;
                        note_written(r, u.new_revision);
                        return 0;
                }
        }
        return se_error_set(e, -EAGAIN, "%s: still changing after %d attempts to re-encrypt it", key,
                            CONFLICT_ATTEMPTS);
}

static void rate_limit(run *r) {
        uint64_t target, now;
        struct timespec ts;

        if (r->o->rate_limit <= 0)
                return;
        target = r->start_usec + (uint64_t) ((double) (r->res.done - r->done_at_start) * 1e6 / r->o->rate_limit);
        now = se_now_usec(CLOCK_MONOTONIC);
        if (now >= target)
                return;
        ts = (struct timespec){.tv_sec = (time_t) ((target - now) / 1000000u),
                               .tv_nsec = (long) ((target - now) % 1000000u) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Writes the pending updates; items[..upto] of p are then finished. */
static int flush(run *r, page *p, size_t upto, uint64_t n_skipped, uint64_t n_unreadable, se_error *e) {
        int k;

        if (r->n_upd > 0) {
                k = se_store_update(r->store, r->upd, r->n_upd, e);
                if (k < 0)
                        return k;
                test_kill_hook(r, KILL_UPDATE, ++r->n_updates);
                for (size_t i = 0; i < r->n_upd; i++) {
                        if (!r->upd[i].conflict) {
                                r->res.rewritten++;
                                note_written(r, r->upd[i].new_revision);
                                continue;
                        }
                        k = resolve_conflict(r, r->upd[i].key, e);
                        if (k < 0)
                                return k;
                }
        }
        r->res.skipped += n_skipped;
        r->res.done += r->n_upd + n_skipped + n_unreadable;
        r->n_upd = 0;

        free(r->cp.key);
        r->cp.key = strdup(p->kvs.items[upto].key);
        if (!r->cp.key)
                return se_error_set(e, -ENOMEM, "out of memory");
        r->cp.prefix_index = p->prefix_index;
        r->cp_dirty = true;

        k = save_checkpoint(r, false);
        if (k < 0)
                return se_error_set(e, k, "cannot write the re-encryption checkpoint in %s: %s", r->o->state_dir,
                                    strerror(-k));
        rate_limit(r);
        k = report_progress(r, false);
        if (k < 0)
                return se_error_set(e, k, "re-encryption aborted");
        return 0;
}

static int write_page(run *r, page *p, se_error *e) {
        uint64_t n_skipped = 0, n_unreadable = 0;
        int k;

        for (size_t i = 0; i < p->n_ok; i++) {
                const se_kv *kv = &p->kvs.items[i];
                item *it = &p->items[i];

                switch (it->action) {
                case ITEM_SKIP:
                        note_left(r, kv->value, kv->value_size);
                        n_skipped++;
                        break;
                case ITEM_REWRITE:
                        r->upd[r->n_upd++] = (se_kv_update){
                                .key = kv->key,
                                .value = it->out.data,
                                .value_size = it->out.len,
                                .expected_mod_revision = kv->mod_revision,
                        };
                        break;
                case ITEM_UNREADABLE:
                        if (!r->collect) {
                                if (i > 0) {
                                        k = flush(r, p, i - 1, n_skipped, n_unreadable, e);
                                        if (k < 0)
                                                return k;
                                }
                                (void) save_checkpoint(r, true);
                                return se_error_set(e, -ENOKEY, "%s", it->error);
                        }
                        k = note_unreadable(r, kv->key, e);
                        if (k < 0)
                                return k;
                        note_left(r, kv->value, kv->value_size);
                        n_unreadable++;
                        break;
                }

                if (r->n_upd >= r->batch_size || i + 1 == p->n_ok) {
                        k = flush(r, p, i, n_skipped, n_unreadable, e);
                        if (k < 0)
                                return k;
                        n_skipped = n_unreadable = 0;
                }
        }

        if (p->error.error < 0) {
                int err = p->error.error;

                (void) save_checkpoint(r, true);
                if (e) {
                        se_error_done(e);
                        *e = p->error;
                        p->error = SE_ERROR_NULL;
                        if (!e->message)
                                return se_error_set(e, err, "%s", strerror(-err));
                }
                return err;
        }
        return 0;
}

static int run_init(run *r, se_store *s, const se_config *c, const se_reencrypt_options *o, se_error *e) {
        const char *resource = o->resource ?: SE_REENCRYPT_DEFAULT_RESOURCE;
        int k;

        r->store = s;
        r->o = o;
        r->prefixes = se_reencrypt_prefixes(o->prefixes);
        while (r->prefixes[r->n_prefixes])
                r->n_prefixes++;
        r->page_size = o->page_size ?: SE_REENCRYPT_DEFAULT_PAGE;
        r->page_size = MAX(r->page_size, 2u);
        r->batch_size = MIN(o->batch_size ?: SE_REENCRYPT_DEFAULT_BATCH, r->page_size);
        if (o->rate_limit > 0)
                /* keep bursts short: about ten batches a second */
                r->batch_size = MAX(MIN(r->batch_size, (size_t) (o->rate_limit / 10)), 1u);
        r->max_paths = o->max_unreadable_paths ?: SE_REENCRYPT_DEFAULT_MAX_PATHS;
        r->collect = o->collect_unreadable;
        test_kill_parse(r);

        r->upd = calloc(r->batch_size, sizeof(se_kv_update));
        if (!r->upd)
                return se_error_set(e, -ENOMEM, "out of memory");

        k = se_transformer_new(c, resource, &r->t, e);
        if (k < 0)
                return k;

        if (o->config_hash) {
                if (strlen(o->config_hash) >= SE_SHA256_HEX_SIZE)
                        return se_error_set(e, -EINVAL, "config hash is too long");
                strcpy(r->cp.config, o->config_hash);
        } else {
                k = se_config_fingerprint(c, r->cp.config);
                if (k < 0)
                        return se_error_set(e, k, "cannot fingerprint the config");
        }
        k = se_prefixes_fingerprint(r->prefixes, resource, r->cp.prefixes);
        if (k < 0)
                return se_error_set(e, k, "cannot fingerprint the prefixes");

        if (o->state_dir) {
                se_checkpoint old = {};

                r->checkpointing = true;
                k = se_checkpoint_load(o->state_dir, &old);
                /* a checkpoint for another config or prefix list, or a damaged one, starts over */
                if (k >= 0 && streq(old.config, r->cp.config) && streq(old.prefixes, r->cp.prefixes)) {
                        r->rd_prefix = old.prefix_index;
                        r->rd_after = TAKE_PTR(old.key);
                        r->res.done = old.done;
                        r->res.rewritten = old.rewritten;
                        r->res.skipped = old.skipped;
                        r->res.conflicts = old.conflicts;
                        r->res.resumed = true;
                } else if (k < 0 && k != -ENOENT && k != -EBADMSG)
                        return se_error_set(e, k, "cannot read the re-encryption checkpoint in %s: %s", o->state_dir,
                                            strerror(-k));
                se_checkpoint_done(&old);
        }
        /* Before the first read: every row written after it has a larger revision. A resumed run
         * has none: its first part ran in another process, against a datastore this one cannot
         * tell unchanged since (a backup restored in between). */
        if (!r->res.resumed && se_store_revision(s, &r->res.watermark, NULL) < 0)
                r->res.watermark = 0;

        /* On a second handle beside the pass where the datastore has one; here otherwise. */
        if (se_store_counter_start(s, r->prefixes, &r->counter) < 0) {
                for (size_t i = 0; i < r->n_prefixes; i++) {
                        uint64_t n = 0;

                        k = se_store_count(s, r->prefixes[i], &n, e);
                        if (k < 0)
                                return se_error_prefix(e, k, "cannot count the values under %s", r->prefixes[i]);
                        r->res.total += n;
                }
                r->total_known = true;
        }
        r->done_at_start = r->res.done;
        r->start_usec = r->last_progress_usec = se_now_usec(CLOCK_MONOTONIC);
        r->last_progress_done = r->res.done;
        return 0;
}

static void run_done(run *r) {
        r->counter = se_store_counter_free(r->counter);
        r->t = se_transformer_free(r->t);
        se_buf_free(&r->plain);
        se_buf_free(&r->out);
        free(r->rd_after);
        free(r->upd);
        se_checkpoint_done(&r->cp);
        se_reencrypt_result_done(&r->res);
}

/* Asks the store to send now the range read_page() asks next, so that on etcd it travels while
 * this page is written. Reading early is safe here: every value goes back by compare-and-swap
 * on the mod_revision read, so a change in between is a conflict, re-read and redone. */
static void read_ahead(run *r) {
        if (r->rd_prefix < r->n_prefixes)
                se_store_read_ahead(r->store, r->prefixes[r->rd_prefix], r->rd_after,
                                    r->page_size + (r->rd_after ? 1 : 0));
}

static int pipeline(run *r, worker *w, se_error *e) {
        page pages[2] = {}, *cur = &pages[0], *other = &pages[1];
        int k, have_next;

        k = read_page(r, cur, e);
        if (k <= 0)
                goto out;
        worker_submit(w, cur);

        for (;;) {
                have_next = read_page(r, other, e); /* overlaps the crypto of cur */
                worker_wait(w);
                if (have_next < 0) {
                        k = have_next;
                        goto out;
                }
                if (have_next) {
                        worker_submit(w, other); /* its crypto overlaps the writes of cur */
                        read_ahead(r);
                }
                k = write_page(r, cur, e);
                if (k < 0 || !have_next)
                        goto out;
                SWAP_TWO(cur, other);
        }
out:
        worker_wait(w);
        page_free(&pages[0]);
        page_free(&pages[1]);
        return k;
}

_public_ int se_reencrypt(se_store *s, const se_config *c, const se_reencrypt_options *o, se_reencrypt_result *ret,
                          se_error *e) {
        static const se_reencrypt_options defaults = {};
        run r = {};
        worker w = {};
        int k;

        if (!s || !c)
                return se_error_set(e, -EINVAL, "no datastore or config");
        if (!o)
                o = &defaults;

        k = run_init(&r, s, c, o, e);
        if (k < 0)
                goto out;
        w.o = o;
        k = worker_start(&w, c, o->resource ?: SE_REENCRYPT_DEFAULT_RESOURCE, e);
        if (k < 0)
                goto out;

        k = pipeline(&r, &w, e);
        worker_stop(&w);
        if (k < 0) {
                /* keep what was committed, even when checkpoints are rate-limited */
                (void) save_checkpoint(&r, true);
                goto out;
        }

        if (r.checkpointing) {
                k = se_checkpoint_remove(o->state_dir);
                if (k < 0) {
                        k = se_error_set(e, k, "cannot remove the re-encryption checkpoint in %s: %s", o->state_dir,
                                         strerror(-k));
                        goto out;
                }
        }
        take_count(&r, true);
        r.res.total = MAX(r.res.total, r.res.done);
        k = report_progress(&r, true);
        if (k < 0) {
                k = se_error_set(e, k, "re-encryption aborted");
                goto out;
        }
        r.res.elapsed_usec = se_now_usec(CLOCK_MONOTONIC) - r.start_usec;
        if (ret) {
                *ret = r.res;
                r.res = (se_reencrypt_result){};
        }
        k = 0;
out:
        worker_stop(&w);
        run_done(&r);
        return k;
}

_public_ void se_reencrypt_result_done(se_reencrypt_result *r) {
        if (!r)
                return;
        se_path_list_free(r->unreadable_paths, r->n_unreadable_paths);
        free(r->written);
        *r = (se_reencrypt_result){};
}
