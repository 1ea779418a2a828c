/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "se-cluster.h"
#include "se-ops.h"

/*
 * The glue between the single-server operations and the cluster state in etcd (ha.c). With a
 * kine SQLite datastore every function is a no-op that reports this node alone: the local state
 * directory is the whole cluster.
 */

/* Opens the store and the cluster handle (reads the token) on first use; *ret NULL without HA. */
int se_ha_cluster(se_ctx *ctx, se_cluster **ret, se_error *e);

/* Seals bytes as the cluster's config at generation (compare-and-swap: the cluster must still be
 * at generation - 1, or empty). Before any local write, so a crash leaves the cluster newer and
 * the next start installs it. */
int se_ha_push_config(se_ctx *ctx, const uint8_t *bytes, size_t size, uint64_t generation, se_stage stage,
                      se_error *e);
/* Publishes this node's annotation and generation (k3s's node annotation). */
int se_ha_publish(se_ctx *ctx, se_error *e);
/* Every server's record, sorted by name; without HA, this node's own. */
int se_ha_nodes(se_ctx *ctx, se_node_record **ret, size_t *ret_n, se_error *e);
/* Comma-separated names of the servers not yet running this node's config at its persisted
 * stage (they must restart), or NULL when every server has caught up. */
int se_ha_lagging(se_ctx *ctx, const se_node_record *nodes, size_t n, char **ret);
/* Refuses a command on a server whose config is not the cluster's (restart it first). */
int se_ha_require_in_sync(se_ctx *ctx, se_error *e);
/* The hook's step 3: install a newer cluster config, publish a first one, or refuse with the
 * remedy. *ret_installed tells whether the local files changed. */
int se_ha_sync(se_ctx *ctx, bool *ret_installed, se_error *e);
/* Replaces one side with the other (`secrets-encrypt sync`); *ret_message says what changed. */
int se_ha_sync_force(se_ctx *ctx, bool from_cluster, bool allow_rollback, char **ret_message, se_error *e);

/* The re-encryption lease; *ret NULL without HA. */
int se_ha_lease_acquire(se_ctx *ctx, se_cluster_lease **ret, se_error *e);
int se_ha_lease_keepalive(se_ctx *ctx, se_cluster_lease *l, se_error *e);
void se_ha_lease_release(se_cluster_lease *l);

/* The rolling-rotation request (`rotate-keys --rolling`): a flag in the cluster, or in the local
 * state without HA. */
int se_ha_set_rolling(se_ctx *ctx, bool on, se_error *e);
/* Clears the request when one is recorded (a finished rotation ends it, however it got here). */
int se_ha_end_rolling(se_ctx *ctx, se_error *e);

/* Writes the state after a change of config and/or stage: cluster first (generation + 1), then
 * the local files, then this node's record. c NULL keeps the config bytes. */
int se_ops_commit(se_ctx *ctx, const se_config *c, se_stage stage, se_error *e);
/* se_state_save_own() plus publishing the annotation. */
int se_ops_save_own(se_ctx *ctx, se_error *e);
