/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "secrets-encrypt.h"
#include "se-ops.h"
#include "se-settings.h"

/* The parsed command line of the helper, shared by the command implementations. */
typedef struct cli {
        se_settings settings;
        const char *settings_path;
        bool force;
        bool skip;
        bool restart;
        bool rolling;      /* rotate-keys --rolling */
        bool purge;        /* rotate-keys --purge: the old key is not archived */
        bool discard_keys; /* reset-state --discard-keys */
        bool from_cluster; /* sync */
        bool from_local;
        bool user; /* --user: the calling user's service manager (tests) */
        bool json;
        const char *file; /* validate/hash FILE */
        /* ensure */
        const char *rotated_within;
        bool want_enabled, want_disabled;
        const char *want_provider;
        bool check;
        bool salt;
        /* sync --from-cluster --allow-rollback */
        bool allow_rollback;
} cli;

/* Each command returns 0 or a negative errno with e filled; main() prints the message once and
 * maps it to the exit code. */
int cmd_status(cli *c, se_error *e);
int cmd_enable(cli *c, se_error *e);
int cmd_disable(cli *c, se_error *e);
int cmd_prepare(cli *c, se_error *e);
int cmd_rotate(cli *c, se_error *e);
int cmd_reencrypt(cli *c, se_error *e);
int cmd_rotate_keys(cli *c, se_error *e);
int cmd_sync(cli *c, se_error *e);
int cmd_validate(cli *c, se_error *e);
int cmd_hash(cli *c, se_error *e);
int cmd_verify(cli *c, se_error *e);
int cmd_facts(cli *c, se_error *e);
int cmd_ensure(cli *c, se_error *e);
int cmd_restore_key(cli *c, se_error *e); /* NAME in file */
int cmd_reset_state(cli *c, se_error *e);
int cmd_forget_node(cli *c, se_error *e); /* NAME in file */

/* Progress on stderr: a bar on a terminal, a line per 10% otherwise. */
int cli_progress(const se_reencrypt_progress *p, void *userdata);
