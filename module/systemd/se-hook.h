/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "se-error.h"
#include "se-reencrypt.h"
#include "se-settings.h"
#include "se-state.h"

/* What secrets-encrypt-hook does before the API server starts (SPEC §5.2). */

typedef struct se_hook_result {
        bool generated; /* first start: a config was generated */
        bool resumed;   /* a pending or interrupted re-encryption was completed */
        se_stage stage; /* the stage published for this node */
        char hash[65];
} se_hook_result;

/* Steps 1–8 for one server: lock (waiting up to the settings' timeout), generate on first start,
 * validate, hash, publish this node's "<stage>-<hash>", finish pending data work. Invalid config:
 * -EBADMSG and nothing changed. progress (may be NULL) sees re-encryption progress. */
int se_hook_run(const se_settings *s, se_reencrypt_progress_fn progress, void *userdata, se_hook_result *ret,
                se_error *e);

/* Journal reporting of a hook failure under Restart=always: the full event when the failure
 * differs from the last one recorded in the state directory, a short line when it repeats.
 * Returns true when the full event was logged. */
bool se_hook_report_failure(const se_settings *s, int error, const char *message);
/* Forgets the recorded failure after a successful run. */
void se_hook_clear_failure(const se_settings *s);
/* The fixed STATUS= phrase for a failure (negative errno): never the error text, which may echo
 * input and which any local user can read with systemctl status. */
const char *se_hook_status_text(int error);

/* Restarts a systemd unit through the manager's D-Bus API and waits for the job (up to
 * timeout_usec). user: the calling user's manager ($XDG_RUNTIME_DIR/systemd/private) instead of
 * the system manager. A failed start: -ENOEXEC… with the unit's Result in the message. */
int se_unit_restart(const char *unit, bool user, uint64_t timeout_usec, se_error *e);
/* systemctl daemon-reload: the manager rereads unit files and drop-ins (waits until done). */
int se_manager_reload(bool user, se_error *e);
/* Starts argv (argv[0] an absolute path) as the transient service name (StartTransientUnit), with
 * the environment ("K=V", NULL-terminated; may be NULL), working directory and stdout/stderr
 * descriptors given (-1: the manager's defaults), and returns once it was queued. -EBUSY when a
 * unit of that name is already loaded and not failed; -ENOTCONN when the manager cannot be
 * reached. A successful run is unloaded when it ends; a failed one stays, with its exit status. */
int se_unit_start_transient(const char *name, const char *description, char *const *argv, char *const *environment,
                            const char *working_directory, int stdout_fd, int stderr_fd, bool user, se_error *e);
/* ActiveState of name ("active", "failed", …) and ExecMainStatus; -ENOENT when it is not loaded
 * (a successful run ended). */
int se_unit_get_state(const char *name, bool user, char **ret_active_state, int *ret_exit_status, se_error *e);
