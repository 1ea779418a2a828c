/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "secrets-encrypt.h"
#include "se-ops.h"
#include "se-host.h"
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
        bool quiet;      /* -q: only the result line (events still reach the journal) */
        bool foreground; /* --foreground: reencrypt in this process, never in a transient unit */
        int argc;        /* the command line, for the transient unit */
        char **argv;
        int exit_status;  /* set: exit with it, the message was already printed (by the unit) */
        const char *file; /* validate/hash FILE */
        /* ensure */
        const char *rotated_within;
        bool rotate_due; /* --rotate-due: --rotated-within the rotate-after setting */
        bool want_enabled, want_disabled;
        const char *want_provider;
        bool check;
        bool salt;
        /* setup */
        const char *setup_for;
        bool dry_run, undo;
        bool unit_given;      /* --unit or a settings file named the unit */
        bool datastore_given; /* ... the datastore-endpoint */
        bool have_settings;   /* a settings file exists (--config, $SECRETS_ENCRYPT_CONFIG or the default) */
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
int cmd_setup(cli *c, se_error *e);

/* Before a command runs: mutating commands need settings and an API server that reads the config
 * they change (exit 79 otherwise); read-only ones without settings use what detection finds. */
int cli_check_host(cli *c, const char *command, se_error *e);
/* The datastore a detection found (endpoint, and TLS files where it names them), as settings. */
int cli_settings_set_datastore(se_settings *s, const se_host *h, se_error *e);

/* Progress on stderr: a bar on a terminal, a line per 10% otherwise; nothing with --quiet or
 * once stderr is gone. Returns -ECANCELED after SIGINT/SIGTERM: the work stops at a checkpoint. */
int cli_progress(const se_reencrypt_progress *p, void *userdata);
/* Around work that may re-encrypt: SIGHUP and SIGPIPE ignored (a lost terminal or `| head` does
 * not stop it), SIGINT/SIGTERM ask it to stop at the next checkpoint (a second one kills). */
void cli_work_begin(cli *c);
void cli_work_end(cli *c);
/* se_ctx.started: prints cli_started_line once the re-encryption really started. */
void cli_started(void *userdata);
extern const char *cli_started_line;
extern bool cli_did_start;
/* Where systemd runs: `reencrypt` in the transient unit secrets-encrypt-reencrypt.service, its
 * output and exit status relayed; Ctrl-C detaches. *ret_used false: run it here. */
int cli_reencrypt_in_unit(cli *c, bool *ret_used, se_error *e);
/* The one line after an interruption: where it stopped and how to resume. */
int cli_interrupted_error(cli *c, se_error *e);
