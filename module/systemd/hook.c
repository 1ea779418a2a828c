/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"
#include "se-hook.h"
#include "ops-internal.h"
#include "se-ops.h"
#include "se-util.h"
#include "safety-internal.h"
#include "se-key-archive.h"

static void event_convergence(se_ctx *ctx) {
        _cleanup_free_ char *mismatch = NULL;
        se_node_record *nodes = NULL;
        size_t n = 0;

        if (se_ha_nodes(ctx, &nodes, &n, NULL) < 0)
                return;
        if (se_cluster_check_hashes(nodes, n, &mismatch) >= 0) {
                if (mismatch)
                        (void) se_event(SE_EVENT_HASHES_MISMATCH, SE_MESSAGE("Server Encryption Hashes: %s", mismatch),
                                        SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", mismatch),
                                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                                        SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", se_stage_to_string(ctx->state.stage)));
                else
                        (void) se_event(SE_EVENT_HASHES_CONVERGED,
                                        SE_MESSAGE("Server Encryption Hashes: All hashes match (%zu server%s).", n,
                                                   n == 1 ? "" : "s"),
                                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                                        SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", se_stage_to_string(ctx->state.stage)),
                                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash));
        }
        se_node_records_free(nodes, n);
}

/* What the API server is about to load: its hash in the node record, its bytes for the safety
 * checks of the commands run while it is up. */
static int set_running(se_ctx *ctx, se_error *e) {
        char *n = strdup(ctx->state.annotation);
        int r;

        if (!n)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_safety_record_running(ctx, e);
        if (r < 0) {
                free(n);
                return r;
        }
        free(ctx->state.running);
        ctx->state.running = n;
        return 0;
}

/* Pending work that cannot finish now (a key still in use, a server that has to restart first)
 * must not keep the server down: when the config reads every stored value, it starts, and the work
 * stays pending with its reason in the journal. */
static int resume_or_defer(se_ctx *ctx, bool *ret_ran, se_error *e) {
        se_verify_options o = {.all_resources = true};
        se_verify_report rep = {};
        se_store *store;
        int r, k;

        r = se_op_resume(ctx, ret_ran, e);
        if (r >= 0 || (r != -ESTALE && r != -ENOKEY && r != -EOPNOTSUPP))
                return r;
        k = se_ctx_store(ctx, &store, NULL);
        if (k >= 0)
                k = se_verify(store, ctx->state.config, &o, &rep, NULL);
        if (k < 0 || rep.unreadable > 0) {
                se_verify_report_done(&rep);
                return r;
        }
        se_verify_report_done(&rep);
        (void) se_event(SE_EVENT_REENCRYPT_PENDING,
                        SE_MESSAGE("Pending re-encryption on %s cannot finish yet: %s. Every stored value is "
                                   "readable with the current configuration, so the server starts; the work is "
                                   "retried at the next start.",
                                   ctx->settings->node_name, se_error_message(e)),
                        SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", se_error_message(e)),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash));
        se_error_done(e);
        *ret_ran = false;
        return 0;
}

_public_ int se_hook_run(const se_settings *s, se_reencrypt_progress_fn progress, void *userdata, se_hook_result *ret,
                         se_error *e) {
        se_hook_result res = {.stage = SE_STAGE_INVALID};
        bool installed = false, advanced = false;
        se_ctx ctx;
        int r;

        /* Step 1: the lock, waiting up to our own deadline. */
        r = se_ctx_open(&ctx, s, s->timeout_usec, e);
        if (r < 0)
                return r;
        ctx.progress = progress;
        ctx.progress_userdata = userdata;
        ctx.server_stopped = true; /* ExecStartPre=: the API server is not running */

        /* Step 3 (HA): a newer cluster config is installed, a newer local one refused. */
        r = se_ha_sync(&ctx, &installed, e);
        if (r < 0)
                goto finish;

        /* Step 2: first start (no local config and none in the cluster). */
        r = se_op_ensure_config(&ctx, &res.generated, e);
        if (r < 0)
                goto finish;

        /* Step 4 happened in se_state_load() / the install: an invalid file never gets here. */
        (void) se_event(SE_EVENT_CONFIG_VALIDATED,
                        SE_MESSAGE("Encryption configuration %s/encryption-config.json is valid (sha256:%s).",
                                   s->state_dir, ctx.state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx.state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", s->node_name),
                        SE_FIELD("SECRETS_ENCRYPT_GENERATION=%llu", (unsigned long long) ctx.state.generation));

        /* Archived keys older than removed-key-retention go, whether or not a rotation runs. */
        (void) se_key_archive_expire(s->state_dir, (int64_t) time(NULL), s->removed_key_retention_usec, NULL);

        /* Step 6: data work while the server is down. */
        r = resume_or_defer(&ctx, &res.resumed, e);
        if (r < 0)
                goto finish;

        /* Step 5: publish, as k3s sets the node annotation from encryption-state.json at start, and
         * record that this server now runs it. Unchanged, nothing is rewritten locally: nothing to
         * do must stay cheap. */
        {
                _cleanup_free_ char *old = TAKE_PTR(ctx.state.annotation);
                bool same;

                r = se_state_set_annotation(&ctx.state, ctx.state.stage);
                if (r < 0) {
                        r = se_error_set(e, r, "out of memory");
                        goto finish;
                }
                same = old && streq(old, ctx.state.annotation) && ctx.state.running &&
                       streq(ctx.state.running, ctx.state.annotation);
                r = set_running(&ctx, e);
                if (r >= 0 && (!same || se_ha_enabled(&ctx)))
                        r = se_ops_save_own(&ctx, e);
                if (r < 0)
                        goto finish;
        }
        event_convergence(&ctx);

        /* Step 7: one stage further when a rolling rotation is under way and everyone caught up. */
        r = se_op_auto_advance(&ctx, &advanced, e);
        if (r >= 0 && advanced) {
                /* the server starts with the advanced config */
                r = set_running(&ctx, e);
                if (r >= 0)
                        r = se_ops_save_own(&ctx, e);
        }
        if (r < 0)
                goto finish;

        res.stage = ctx.state.stage;
        memcpy(res.hash, ctx.state.hash, sizeof(res.hash));
        *ret = res;
finish:
        se_ctx_close(&ctx);
        return r;
}

static char *failure_path(const se_settings *s) {
        char *p;

        return asprintf(&p, "%s/.hook-last-failure", s->state_dir) < 0 ? NULL : p;
}

_public_ bool se_hook_report_failure(const se_settings *s, int error, const char *message) {
        _cleanup_free_ char *path = failure_path(s);
        _cleanup_free_ uint8_t *old = NULL;
        char digest[SE_SHA256_HEX_SIZE];
        bool invalid = error == -EBADMSG;
        size_t size;

        if (se_sha256_hex(message, strlen(message), digest) >= 0 && path &&
            se_read_file(path, 128, &old, &size) >= 0 && size == 64 && memcmp(old, digest, 64) == 0) {
                (void) se_event_full(SE_EVENT_HOOK_FAILED_REPEAT, -1, error,
                                     SE_MESSAGE("secrets-encrypt-hook still failing (same error as before)."),
                                     SE_FIELD("SECRETS_ENCRYPT_NODE=%s", s->node_name));
                return false;
        }

        (void) se_event_full(invalid ? SE_EVENT_CONFIG_INVALID : SE_EVENT_HOOK_FAILED, -1, error,
                             SE_MESSAGE("%s", message), SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", message),
                             SE_FIELD("SECRETS_ENCRYPT_NODE=%s", s->node_name));
        if (path)
                (void) se_write_file_atomic(path, digest, 64, 0600);
        return true;
}

_public_ void se_hook_clear_failure(const se_settings *s) {
        _cleanup_free_ char *path = failure_path(s);

        if (path)
                (void) unlink(path);
}

/* STATUS= is readable by every local user (systemctl status): a fixed phrase per failure class,
 * never the error text, which may echo input. The journal has the details. */
_public_ const char *se_hook_status_text(int error) {
        switch (se_exit_code_from_errno(error)) {
        case SE_EXIT_CONFIG:
                return "the encryption configuration is invalid; see the journal";
        case SE_EXIT_UNDECRYPTABLE:
                return "stored secrets cannot be decrypted with the configured keys; see the journal";
        case SE_EXIT_UNAVAILABLE:
                return "the datastore is unavailable; see the journal";
        case SE_EXIT_PRECONDITION:
                return "a rotation precondition is not met; see the journal";
        case SE_EXIT_BUSY:
                return "another secrets-encrypt command holds the state directory; see the journal";
        case SE_EXIT_NOPERM:
                return "permission denied or an untrusted file; see the journal";
        case SE_EXIT_NOINPUT:
                return "a required file is missing; see the journal";
        case SE_EXIT_CANTCREAT:
        case SE_EXIT_IOERR:
                return "cannot read or write the state; see the journal";
        case SE_EXIT_SOFTWARE:
                return "internal error; see the journal";
        default:
                return "failed; see the journal";
        }
}
