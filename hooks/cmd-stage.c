/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli.h"
#include "macro.h"

/* The mutating k3s commands: same success lines as k3s. With --restart the re-encryption is left
 * pending, the unit is restarted (its hook does the work while the server is down), and the
 * success line is printed only once the state shows it is done. */

typedef int (*op_fn)(se_ctx *ctx, cli *c, se_error *e);

static int restart_and_check(cli *c, se_error *e) {
        se_ctx ctx;
        int r;

        r = se_unit_restart(c->settings.unit, c->user, c->settings.timeout_usec, e);
        if (r < 0)
                return r;
        r = se_ctx_open_read(&ctx, &c->settings, 0, e);
        if (r < 0)
                return r;
        if (ctx.state.pending_reencrypt)
                r = se_error_set(e, -EIO,
                                 "%s restarted but the re-encryption is still pending; see `journalctl -u %s "
                                 "SYSLOG_IDENTIFIER=secrets-encrypt`",
                                 c->settings.unit, c->settings.unit);
        se_ctx_close(&ctx);
        return r;
}

/* The stage already moved when --restart fails: say so, and what finishes the command. */
static int restart_failed(cli *c, int r, se_error *e) {
        _cleanup_free_ char *why = strdup(se_error_message(e));
        se_error ignore = SE_ERROR_NULL;
        const char *stage = "(unknown)";
        bool pending = false;
        se_ctx ctx;

        if (se_ctx_open_read(&ctx, &c->settings, 0, &ignore) >= 0) {
                stage = se_stage_to_string(se_state_current_stage(&ctx.state)) ?: stage;
                pending = ctx.state.pending_reencrypt;
                r = se_error_set(e, r,
                                 "the stage changed to %s, but --restart failed: %s. Next: `systemctl restart %s`%s "
                                 "(do not repeat this command)",
                                 stage, why ?: "out of memory", c->settings.unit,
                                 pending ? " so its hook finishes the re-encryption, or `secrets-encrypt reencrypt`"
                                         : "");
                se_ctx_close(&ctx);
        }
        se_error_done(&ignore);
        return r;
}

/* pending: the line printed instead of success when the command could do the safe part only (a
 * running API server has not loaded the write key yet), followed by the restart that completes it.
 * started: printed as the re-encryption really starts (k3s's "reencryption started"), success at
 * the end. */
static int run_full(cli *c, op_fn op, const char *started, const char *success, const char *pending, se_error *e) {
        _cleanup_free_ char *deferred = NULL;
        bool did_start = false;
        se_ctx ctx;
        int r;

        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        cli_work_begin(c);
        ctx.progress = cli_progress;
        ctx.progress_userdata = c;
        ctx.started = cli_started;
        ctx.defer_reencrypt = c->restart;
        ctx.purge = c->purge;
        cli_started_line = c->quiet ? NULL : started;
        r = op(&ctx, c, e);
        did_start = cli_did_start;
        deferred = TAKE_PTR(ctx.deferred);
        se_ctx_close(&ctx); /* the hook needs the lock */
        cli_work_end(c);
        if (r == -ECANCELED)
                return cli_interrupted_error(c, e);
        if (r >= 0 && c->restart) {
                r = restart_and_check(c, e);
                if (r < 0)
                        return restart_failed(c, r, e);
        }
        if (r < 0)
                return r;
        if (started && !did_start && !c->quiet)
                puts(started); /* the work was left to a restart, or ran in it */
        if (deferred && !c->restart)
                printf("%s: %s\n", pending ?: "reencryption pending", deferred);
        else if (success)
                puts(success);
        return r;
}

static int run(cli *c, op_fn op, const char *success, const char *pending, se_error *e) {
        return run_full(c, op, NULL, success, pending, e);
}

static int do_prepare(se_ctx *ctx, cli *c, se_error *e) {
        return se_op_prepare(ctx, c->force, e);
}

static int do_rotate(se_ctx *ctx, cli *c, se_error *e) {
        return se_op_rotate(ctx, c->force, e);
}

static int do_reencrypt(se_ctx *ctx, cli *c, se_error *e) {
        return se_op_reencrypt(ctx, c->force, c->skip, e);
}

static int do_rotate_keys(se_ctx *ctx, cli *c, se_error *e) {
        return c->rolling ? se_op_start_rolling(ctx, e) : se_op_rotate_keys(ctx, e);
}

static int do_enable(se_ctx *ctx, cli *c, se_error *e) {
        bool changed;

        return se_op_set_enabled(ctx, true, &changed, e);
}

static int do_disable(se_ctx *ctx, cli *c, se_error *e) {
        bool changed;

        if (!ctx->state.has_config)
                return se_error_set(e, -ESTALE,
                                    "nothing to disable: no encryption configuration in %s (secrets encryption was "
                                    "never set up on this node)",
                                    ctx->state.dir);

        return se_op_set_enabled(ctx, false, &changed, e);
}

int cmd_prepare(cli *c, se_error *e) {
        return run(c, do_prepare, "prepare completed successfully", NULL, e);
}

int cmd_rotate(cli *c, se_error *e) {
        return run(c, do_rotate, "rotate completed successfully", NULL, e);
}

/* k3s prints "reencryption started" as it begins; here it comes once the preconditions and the
 * datastore were checked and the work really started, so a refused command prints no success
 * line. In stage reencrypt_active it resumes an interrupted re-encryption. */
int cmd_reencrypt(cli *c, se_error *e) {
        bool used;
        int r;

        r = cli_reencrypt_in_unit(c, &used, e);
        if (r < 0 || used)
                return r;
        return run_full(c, do_reencrypt, "reencryption started", "reencryption finished", "reencryption pending", e);
}

int cmd_rotate_keys(cli *c, se_error *e) {
        int r;

        if (c->rolling)
                return run(c, do_rotate_keys,
                           "rolling rotation started: restart the server unit on every server, one at a time; each "
                           "restart advances one stage once all servers have caught up",
                           NULL, e);
        /* HA: a new write key needs every server to have it first, so rotate-keys is the rolling
         * rotation there */
        if (startswith(c->settings.datastore_endpoint, "http://") ||
            startswith(c->settings.datastore_endpoint, "https://"))
                return run(c, do_rotate_keys,
                           "rolling rotation started (a new write key must reach every server first): restart "
                           "the server unit on every server, one at a time, three rounds; `secrets-encrypt status "
                           "-o json` shows next_action",
                           NULL, e);
        r = run(c, do_rotate_keys, "keys rotated, reencryption finished", "keys rotated, reencryption pending", e);
        return r;
}

int cmd_enable(cli *c, se_error *e) {
        return run(c, do_enable, "secrets-encryption enabled", "secrets-encryption enabled, reencryption pending", e);
}

int cmd_disable(cli *c, se_error *e) {
        return run(c, do_disable, "secrets-encryption disabled", "secrets-encryption disabled, reencryption pending",
                   e);
}

int cmd_reset_state(cli *c, se_error *e) {
        se_ctx ctx;
        int r;

        if (!c->discard_keys)
                return se_error_set(e, -EINVAL,
                                    "reset-state forgets that keys existed: every value still under them stays "
                                    "unreadable. Restore encryption-config.json from a backup if you can; otherwise "
                                    "confirm with --discard-keys");
        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        r = se_op_reset_state(&ctx, e);
        se_ctx_close(&ctx);
        if (r >= 0)
                printf("state reset: the next start of %s generates a new encryption configuration\n",
                       c->settings.unit);
        return r;
}
