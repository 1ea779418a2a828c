/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "se-ops.h"
#include "se-reencrypt.h"

/* The safety invariant (SPEC §5.0), checked in one place (safety.c). */

typedef enum se_safety_action {
        SE_SAFETY_WRITE_CONFIG,   /* next: the config about to be written; no key may go */
        SE_SAFETY_REWRITE_VALUES, /* stored values rewritten under the config on disk */
        SE_SAFETY_REMOVE_KEYS,    /* next: the config without some keys */
} se_safety_action;

/* 0 when the action keeps every stored value readable by the config on disk and by every running
 * API server; otherwise -ESTALE (a restart or step must come first), -ENOKEY (values still use a
 * key to be removed) or a datastore error, with a message naming what has to happen first. */
int se_safety_check(se_ctx *ctx, se_safety_action a, const se_config *next, se_error *e);
/* The hook, as it lets the API server start: records the config it loads. */
int se_safety_record_running(se_ctx *ctx, se_error *e);

/* What a re-encryption pass that ran to its end in this process saw (run_reencrypt_leased()); the
 * removal check of the prune right after it may use it in place of a full scan. */
typedef struct se_removal_proof {
        char hash[65];              /* the config the pass ran with */
        se_store *store;            /* the handle it ran on */
        int64_t watermark;          /* the store's revision before its first read */
        int64_t end;                /* the store's revision after its last write */
        uint64_t left;              /* values it read and left as they were */
        uint64_t watched;           /* of those, values under one of watch[] */
        char **walked;              /* the prefixes it walked to their end */
        char **watch;               /* the value prefixes it counted */
        se_revision_range *written; /* revisions of rows it wrote, ascending */
        size_t n_written;
} se_removal_proof;

se_removal_proof *se_removal_proof_free(se_removal_proof *p);
