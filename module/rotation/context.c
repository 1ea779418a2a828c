/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-cluster.h"
#include "se-ops.h"
#include "se-trust.h"
#include "se-util.h"

/* The context every operation runs in: the state-directory lock, the loaded state, and the
 * datastore and cluster handles opened on first use. */

static int ctx_open(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, bool read_only, se_error *e) {
        bool recovered;
        pid_t holder = 0;
        int r;

        *ctx = (se_ctx){.settings = s, .lock_fd = -1};
        /* a reader never creates anything: a missing state-dir reads as no state at all */
        if (!read_only && mkdir(s->state_dir, 0700) < 0 && errno != EEXIST)
                return se_error_set(e, -errno, "cannot create state-dir %s: %m", s->state_dir);
        /* before the lock file is created in it: a directory others can write is nobody's lock */
        r = se_trust_check_at(AT_FDCWD, s->state_dir, NULL, "state-dir", e);
        if (r < 0 && !(read_only && r == -ENOENT))
                return r;
        if (r < 0)
                se_error_done(e);

        r = se_lock_dir(s->state_dir, lock_wait_usec, &ctx->lock_fd, &holder);
        if (r == -EBUSY) {
                if (holder > 0)
                        return se_error_set(e, r,
                                            "%s is locked by another secrets-encrypt process (pid %d); wait for it "
                                            "to finish and retry",
                                            s->state_dir, (int) holder);
                return se_error_set(e, r, "%s is locked by another secrets-encrypt process; retry later",
                                    s->state_dir);
        }
        if (r == -EPERM) {
                _cleanup_free_ char *lock = NULL;

                /* the lock file is not root's alone: the check again, for its message */
                if (asprintf(&lock, "%s/.secrets-encrypt.lock", s->state_dir) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (se_trust_check_at(AT_FDCWD, lock, NULL, "lock file", e) == -EPERM)
                        return -EPERM;
                return se_error_set(e, -EPERM, "%s: refusing the lock file; fix: chown root:root %s; chmod go-w %s",
                                    lock, lock, lock);
        }
        /* a reader on a read-only, foreign or missing state directory reads without the lock */
        if (r < 0 && !(read_only && (r == -EROFS || r == -EACCES || r == -ENOENT)))
                return se_error_set(e, r, "cannot lock state-dir %s: %s", s->state_dir, strerror(-r));

        r = se_state_load(s->state_dir, &ctx->state, e);
        if (r >= 0 && ctx->lock_fd >= 0 && !read_only) {
                /* under the lock: what a killed writer left behind */
                se_state_remove_temporaries(s->state_dir);
                r = se_state_recover(&ctx->state, &recovered, e);
        }
        if (r < 0) {
                se_state_done(&ctx->state);
                se_unlock_dir(TAKE_FD(ctx->lock_fd));
                return r;
        }
        return 0;
}

_public_ int se_ctx_open(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, se_error *e) {
        return ctx_open(ctx, s, lock_wait_usec, false, e);
}

static bool state_same(const se_state *a, const se_state *b) {
        return a->has_config == b->has_config && streq(a->hash, b->hash) && a->has_stage == b->has_stage &&
               (!a->has_stage || (a->stage == b->stage && streq(a->stage_hash, b->stage_hash))) &&
               a->generation == b->generation &&
               (a->annotation && b->annotation ? streq(a->annotation, b->annotation)
                                               : a->annotation == b->annotation) &&
               a->pending_reencrypt == b->pending_reencrypt && a->pending_skip == b->pending_skip &&
               a->pending_rotate_keys == b->pending_rotate_keys && streq(a->intent_hash, b->intent_hash);
}

/* Readers (status, verify, facts) never wait for the lock: a writer replaces each state file by
 * rename, so every file read is whole; the files are read twice and a read that saw a commit half
 * done (the config of one and the stage of another) is taken again. */
_public_ int se_state_load_snapshot(const char *dir, se_state *ret, se_error *e) {
        for (unsigned attempt = 0; attempt < 50; attempt++) {
                se_state a = {}, b = {};
                int r;

                r = se_state_load(dir, &a, e);
                if (r < 0)
                        return r;
                r = se_state_load(dir, &b, e);
                if (r < 0) {
                        se_state_done(&a);
                        return r;
                }
                /* a commit in flight (its write-ahead intent recorded) is waited out for a moment;
                 * one that a killed writer left stays as it is */
                if (state_same(&a, &b) && (a.intent_hash[0] == '\0' || attempt >= 25)) {
                        se_state_done(&b);
                        *ret = a;
                        return 0;
                }
                se_state_done(&a);
                se_state_done(&b);
                (void) usleep(20 * 1000);
        }
        return se_error_set(e, -EBUSY, "the state in %s kept changing while it was read; retry", dir);
}

_public_ int se_ctx_open_read(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, se_error *e) {
        (void) lock_wait_usec;
        *ctx = (se_ctx){.settings = s, .lock_fd = -1};
        return se_state_load_snapshot(s->state_dir, &ctx->state, e);
}

_public_ void se_ctx_close(se_ctx *ctx) {
        free(TAKE_PTR(ctx->deferred));
        se_cluster_close(TAKE_PTR(ctx->cluster));
        se_store_close(TAKE_PTR(ctx->store));
        se_state_done(&ctx->state);
        se_unlock_dir(TAKE_FD(ctx->lock_fd));
}

_public_ int se_ctx_store(se_ctx *ctx, se_store **ret, se_error *e) {
        const se_settings *s = ctx->settings;
        int r;

        if (!ctx->store) {
                se_store_options o = {
                        .endpoint = s->datastore_endpoint,
                        .cafile = s->datastore_cafile,
                        .certfile = s->datastore_certfile,
                        .keyfile = s->datastore_keyfile,
                        .require_data = true,
                        .plain_http = s->datastore_allow_plain_http ? SE_PLAIN_HTTP_LOOPBACK : SE_PLAIN_HTTP_REFUSE,
                };
                r = se_store_open(&o, &ctx->store, e);
                if (r < 0) {
                        _cleanup_free_ char *shown = se_url_strip_userinfo(s->datastore_endpoint);

                        return se_error_prefix(e, r, "datastore %s", shown ? shown : "(endpoint)");
                }
        }
        *ret = ctx->store;
        return 0;
}
