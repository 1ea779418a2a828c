/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "se-error.h"
#include "se-settings.h"

/*
 * The hooks-dir setting (SPEC §8): on every stage change and every failure event, each executable
 * in the directory runs once, in name order, directly (no shell), with stdin from /dev/null, its
 * stdout sent to our stderr (stdout may be `ensure`'s JSON), in its own process group, and the
 * event in the environment:
 *
 *   SECRETS_ENCRYPT_EVENT           short event name: stage-changed, reencrypt-failed, …
 *   SECRETS_ENCRYPT_STAGE           the (new) stage
 *   SECRETS_ENCRYPT_PREVIOUS_STAGE  the stage before, empty when unknown
 *   SECRETS_ENCRYPT_HASH            the config hash
 *   SECRETS_ENCRYPT_NODE            this node
 *   SECRETS_ENCRYPT_MESSAGE_ID      the journal MESSAGE_ID of the event
 *   SECRETS_ENCRYPT_ERROR           the error text of a failure event (else unset)
 *
 * A hook that exits non-zero, dies, or outlives its timeout (then its process group is killed
 * with SIGKILL) is logged as a fleet-hook-failed event; it never fails the caller. Skipped:
 * dotfiles, directories, non-executable files, editor and package-manager leftovers (name~,
 * #name#, .bak, .swp, .orig, .rej, .tmp, .dpkg-*, .rpmnew, .rpmsave, .ucf-*).
 * The hooks run while the state-directory lock is held: they may call `secrets-encrypt facts`
 * (lock-free) but not the mutating commands.
 */

#define SE_FLEET_HOOK_TIMEOUT_USEC (30ULL * 1000000ULL)

typedef struct se_fleet_event {
        const char *event; /* short name */
        const char *message_id;
        const char *stage;
        const char *previous_stage;
        const char *hash;
        const char *node;
        const char *error; /* NULL: not set */
} se_fleet_event;

/* Whether a directory entry name is one we run (before looking at the file). */
bool se_fleet_hook_name_is_valid(const char *name);

/* Runs the hooks of dir for ev, each limited to timeout_usec (0 = SE_FLEET_HOOK_TIMEOUT_USEC).
 * Returns the number of hooks that failed (each logged), 0 when dir does not exist, or a negative
 * errno when dir cannot be read. *ret_ran (if given): how many were started. */
int se_fleet_hooks_run(const char *dir, const se_fleet_event *ev, uint64_t timeout_usec, unsigned *ret_ran);

/* Installs an event observer (se_event_set_observer()) that runs the settings' hooks-dir on
 * stage-changed and failure events and refreshes the metrics-file on every event, remembering
 * the latest re-encryption counts. s must outlive the observer. The per-hook timeout is
 * min(30 s, the timeout setting), or SECRETS_ENCRYPT_FLEET_HOOK_TIMEOUT (a duration) when set;
 * all hooks of the process together get a quarter of the timeout setting, later ones are logged
 * and not run, so hanging hooks never bring the hook to its deadline. */
void se_fleet_observer_install(const se_settings *s);
void se_fleet_observer_remove(void);
/* Writes the metrics-file now (with the counts the observer saw); 0 when it is unset. */
int se_fleet_metrics_refresh(const se_settings *s, se_error *e);
