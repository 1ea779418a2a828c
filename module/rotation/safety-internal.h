/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "se-ops.h"

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
