/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "se-error.h"
#include "se-reencrypt.h"
#include "se-settings.h"
#include "se-state.h"
#include "se-status.h"
#include "se-store.h"

/*
 * The k3s secrets-encrypt operations on one server, shared by the helper CLI and the hook: each
 * takes the state-directory lock, checks k3s's preconditions, edits the config with
 * se-rotation.h, writes the state files, and re-encrypts through the datastore.
 */

typedef struct se_cluster se_cluster;

typedef struct se_ctx {
        const se_settings *settings;
        int lock_fd;
        se_state state;
        se_store *store;                /* opened on first use */
        se_cluster *cluster;            /* HA (etcd) only, opened on first use */
        struct se_cluster_lease *lease; /* held while re-encrypting in HA */
        uint64_t lease_refreshed_usec;
        se_reencrypt_progress_fn progress; /* returning -ECANCELED stops at a checkpoint, resumable */
        void *progress_userdata;
        /* Called with progress_userdata once the re-encryption really starts (checks passed, stage
         * marked reencrypt_active). */
        void (*started)(void *userdata);
        /* Leave re-encryption pending for the hook (the helper's --restart): the server is then
         * down while values are rewritten. */
        bool defer_reencrypt;
        /* The hook: the local API server is down, so only the other servers' configs count. */
        bool server_stopped;
        /* rotate-keys --purge: a removed key is not archived (it was compromised). */
        bool purge;
        /* Set when a command did the safe part only: why, and the restart that completes it. */
        char *deferred;
        /* Internal: what a re-encryption pass that just completed saw, for the removal check of
         * the prune that follows it (safety.c); set and freed within that operation (operation.c). */
        struct se_removal_proof *removal_proof;
} se_ctx;

#define SE_LOCK_WAIT_USEC (5ULL * 1000000ULL)

/* Locks the state directory (waiting up to lock_wait_usec; -EBUSY with the holder's pid in the
 * message) and loads the state. The directory is created (0700) when missing. */
int se_ctx_open(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, se_error *e);
/* The same for readers (status, verify): no lock is taken or waited for (a running re-encryption
 * holds it for its whole run); the state is a consistent snapshot (se_state_load_snapshot()).
 * lock_wait_usec is ignored. Never writes. */
int se_ctx_open_read(se_ctx *ctx, const se_settings *s, uint64_t lock_wait_usec, se_error *e);
void se_ctx_close(se_ctx *ctx);
/* A consistent state without the lock: every file is replaced atomically, and the directory is
 * read again until two reads agree. */
int se_state_load_snapshot(const char *dir, se_state *ret, se_error *e);
int se_ctx_store(se_ctx *ctx, se_store **ret, se_error *e);

int se_op_status(se_ctx *ctx, se_status *ret, se_error *e);
int se_op_prepare(se_ctx *ctx, bool force, se_error *e);
int se_op_rotate(se_ctx *ctx, bool force, se_error *e);
/* Marks reencrypt_active, re-encrypts, prunes (unless skip), reaches reencrypt_finished. Without
 * force, at reencrypt_active with the work pending it resumes the interrupted re-encryption. */
int se_op_reencrypt(se_ctx *ctx, bool force, bool skip, se_error *e);
int se_op_rotate_keys(se_ctx *ctx, se_error *e);
/* *ret_changed false when already in that state. */
int se_op_set_enabled(se_ctx *ctx, bool enable, bool *ret_changed, se_error *e);
/* First start: generate the config when there is none (k3s's genEncryptionConfigAndState).
 * *ret_generated tells whether it did. */
int se_op_ensure_config(se_ctx *ctx, bool *ret_generated, se_error *e);
/* The hook's step 7: advance one stage when a rolling rotation is under way and every server has
 * caught up (advance.c). */
int se_op_auto_advance(se_ctx *ctx, bool *ret_advanced, se_error *e);
/* `rotate-keys --rolling`: prepare now, and let each restart advance one stage. */
int se_op_start_rolling(se_ctx *ctx, se_error *e);
/* True when datastore-endpoint is etcd (http:// or https://): several servers share the state. */
bool se_ha_enabled(const se_ctx *ctx);
/* Whether a rolling rotation is under way (requested and not finished). */
int se_ha_get_rolling(se_ctx *ctx, bool *ret, se_error *e);
/* `forget-node NAME` (HA): removes a server gone for good from the registry, so it no longer has
 * to restart before keys are rewritten or removed. */
int se_op_forget_node(se_ctx *ctx, const char *name, se_error *e);
/* `sync --from-cluster` / `--from-local` (HA). */
int se_op_sync(se_ctx *ctx, bool from_cluster, char **ret_message, se_error *e);
/* `sync --from-cluster --allow-rollback`: installs the cluster's config even when its generation is
 * below this server's high-water mark (etcd restored on purpose), and lowers the mark to it. */
int se_op_sync_rollback(se_ctx *ctx, char **ret_message, se_error *e);
/* After a lost configuration: forgets the stage, generation and pending work, so the next start
 * generates a new config (every value under the lost keys stays unreadable). Refused while a
 * config exists, and with etcd. Keeps the archive of removed keys. */
int se_op_reset_state(se_ctx *ctx, se_error *e);
/* Completes a pending or interrupted re-encryption (the hook's step 6). */
int se_op_resume(se_ctx *ctx, bool *ret_ran, se_error *e);
