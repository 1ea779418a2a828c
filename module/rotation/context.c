/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-cluster.h"
#include "se-ops.h"
#include "se-util.h"

/* The context every operation runs in: the state-directory lock, the loaded state, and the
 * datastore and cluster handles opened on first use. */

static int ctx_open(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, bool read_only, se_error *e) {
        bool recovered;
        pid_t holder = 0;
        int r;

        *ctx = (se_ctx){.settings = s, .lock_fd = -1};
        if (mkdir(s->state_dir, 0700) < 0 && errno != EEXIST && !(read_only && errno == EROFS))
                return se_error_set(e, -errno, "cannot create state-dir %s: %m", s->state_dir);

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
        /* a reader on a read-only or foreign state directory reads without the lock */
        if (r < 0 && !(read_only && (r == -EROFS || r == -EACCES)))
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

_public_ int se_ctx_open_read(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, se_error *e) {
        return ctx_open(ctx, s, lock_wait_usec, true, e);
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
                };
                r = se_store_open(&o, &ctx->store, e);
                if (r < 0) {
                        /* never the password an SQL endpoint carries */
                        _cleanup_free_ char *shown = se_store_redact_endpoint(s->datastore_endpoint);
                        return se_error_prefix(e, r, "datastore %s", shown ?: "(endpoint)");
                }
        }
        *ret = ctx->store;
        return 0;
}
