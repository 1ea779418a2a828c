/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"

/* The way out of k3s's "newer than datastore" and "hash does not match" dead ends: one side wins,
 * explicitly, and the output says what changed. */
int cmd_sync(cli *c, se_error *e) {
        _cleanup_free_ char *msg = NULL;
        se_ctx ctx;
        int r;

        if (c->from_cluster == c->from_local)
                return se_error_set(e, -EINVAL, "sync needs exactly one of --from-cluster or --from-local");
        if (c->allow_rollback && !c->from_cluster)
                return se_error_set(e, -EINVAL, "--allow-rollback goes with sync --from-cluster");
        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        r = c->allow_rollback ? se_op_sync_rollback(&ctx, &msg, e) : se_op_sync(&ctx, c->from_cluster, &msg, e);
        se_ctx_close(&ctx);
        if (r < 0)
                return r;
        puts(msg);
        return 0;
}

int cmd_forget_node(cli *c, se_error *e) {
        se_ctx ctx;
        int r;

        if (!c->file)
                return se_error_set(e, -EINVAL, "forget-node needs the server's node name");
        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        r = se_op_forget_node(&ctx, c->file, e);
        se_ctx_close(&ctx);
        if (r >= 0)
                printf("server %s removed from the cluster registry: it no longer has to restart before keys are "
                       "rewritten or removed\n",
                       c->file);
        return r;
}
