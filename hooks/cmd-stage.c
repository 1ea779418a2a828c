/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli.h"
#include "macro.h"

/* The mutating k3s commands: same success lines as k3s. */

static int run_locked(cli *c, int (*op)(se_ctx *ctx, cli *c, se_error *e), se_error *e) {
        se_ctx ctx;
        int r;

        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        ctx.progress = cli_progress;
        r = op(&ctx, c, e);
        se_ctx_close(&ctx);
        return r;
}

static int do_prepare(se_ctx *ctx, cli *c, se_error *e) {
        int r = se_op_prepare(ctx, c->force, e);
        if (r >= 0)
                puts("prepare completed successfully");
        return r;
}

static int do_rotate(se_ctx *ctx, cli *c, se_error *e) {
        int r = se_op_rotate(ctx, c->force, e);
        if (r >= 0)
                puts("rotate completed successfully");
        return r;
}

static int do_reencrypt(se_ctx *ctx, cli *c, se_error *e) {
        int r;

        puts("reencryption started");
        fflush(stdout);
        r = se_op_reencrypt(ctx, c->force, c->skip, e);
        if (r >= 0)
                puts("reencryption finished");
        return r;
}

static int do_rotate_keys(se_ctx *ctx, cli *c, se_error *e) {
        int r = se_op_rotate_keys(ctx, e);
        if (r >= 0)
                puts("keys rotated, reencryption finished");
        return r;
}

static int do_set_enabled(se_ctx *ctx, bool enable, se_error *e) {
        bool changed = false;
        int r;

        r = se_op_set_enabled(ctx, enable, &changed, e);
        if (r < 0)
                return r;
        if (changed && ctx->state.has_stage && ctx->state.config) {
                /* k3s re-encrypts with skip after enable/disable so values follow the new write provider */
                r = se_op_reencrypt(ctx, true, true, e);
                if (r < 0)
                        return r;
        }
        puts(enable ? "secrets-encryption enabled" : "secrets-encryption disabled");
        return 0;
}

static int do_enable(se_ctx *ctx, cli *c, se_error *e) {
        return do_set_enabled(ctx, true, e);
}

static int do_disable(se_ctx *ctx, cli *c, se_error *e) {
        return do_set_enabled(ctx, false, e);
}

int cmd_prepare(cli *c, se_error *e) {
        return run_locked(c, do_prepare, e);
}

int cmd_rotate(cli *c, se_error *e) {
        return run_locked(c, do_rotate, e);
}

int cmd_reencrypt(cli *c, se_error *e) {
        return run_locked(c, do_reencrypt, e);
}

int cmd_rotate_keys(cli *c, se_error *e) {
        return run_locked(c, do_rotate_keys, e);
}

int cmd_enable(cli *c, se_error *e) {
        return run_locked(c, do_enable, e);
}

int cmd_disable(cli *c, se_error *e) {
        return run_locked(c, do_disable, e);
}
