/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ops-internal.h"
#include "se-event.h"

/*
 * Automatic advancement on restart (SPEC §5.4): one stage per start, and only when every
 * registered server already reports the current stage's hash, so no server ever writes with a
 * key another cannot read. Restarts in any order converge; a server that was down catches up
 * (it installs the cluster's config) before anything moves on.
 */

static int all_caught_up(se_ctx *ctx, char **ret_waiting, se_error *e) {
        se_node_record *nodes = NULL;
        size_t n = 0;
        int r;

        r = se_ha_nodes(ctx, &nodes, &n, e);
        if (r < 0)
                return r;
        r = se_ha_lagging(ctx, nodes, n, ret_waiting);
        se_node_records_free(nodes, n);
        return r < 0 ? se_error_set(e, r, "out of memory") : 0;
}

_public_ int se_op_auto_advance(se_ctx *ctx, bool *ret_advanced, se_error *e) {
        _cleanup_free_ char *waiting = NULL;
        bool rolling = false;
        int r;

        *ret_advanced = false;
        if (!ctx->state.has_config || !ctx->state.has_stage || ctx->state.pending_reencrypt)
                return 0;
        r = se_ha_get_rolling(ctx, &rolling, e);
        if (r < 0)
                return r;
        /* auto-advance carries a rotation that was started; only a rolling request starts one */
        if (!rolling && !(ctx->settings->auto_advance && ctx->state.stage != SE_STAGE_START &&
                          ctx->state.stage != SE_STAGE_REENCRYPT_FINISHED))
                return 0;

        r = all_caught_up(ctx, &waiting, e);
        if (r < 0)
                return r;
        if (waiting) {
                se_log_info("Rolling rotation at stage %s: waiting for %s to restart with the current "
                            "configuration before advancing.",
                            se_stage_to_string(ctx->state.stage), waiting);
                return 0;
        }

        switch (ctx->state.stage) {
        case SE_STAGE_START:
        case SE_STAGE_REENCRYPT_FINISHED:
                r = se_op_prepare(ctx, false, e);
                break;
        case SE_STAGE_PREPARE:
                r = se_op_rotate(ctx, false, e);
                break;
        case SE_STAGE_ROTATE:
        case SE_STAGE_REENCRYPT_REQUEST:
                r = se_op_reencrypt(ctx, false, false, e);
                break;
        default:
                return 0;
        }
        /* Another server restarting at the same moment advanced first or holds the lease: this
         * one starts as it is and catches up on its next start. */
        if (r == -ESTALE || r == -EBUSY) {
                se_log_notice("Rolling rotation: %s; starting without advancing.", se_error_message(e));
                se_error_done(e);
                return 0;
        }
        if (r < 0)
                return se_error_prefix(e, r, "rolling rotation could not advance from stage %s",
                                       se_stage_to_string(ctx->state.stage));
        *ret_advanced = true;
        return 0;
}
