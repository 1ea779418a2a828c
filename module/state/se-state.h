/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "se-config.h"
#include "se-error.h"

/*
 * The rotation stages and the state directory.
 *
 * k3s-compatible files (byte for byte):
 *   encryption-config.json  the EncryptionConfiguration (0600, compact JSON)
 *   encryption-state.json   "<stage>-<sha256 hex of the config bytes>", no newline; only persisted
 *                           stages (never reencrypt_active), exactly as k3s writes it
 * Our own file:
 *   secrets-encrypt.json    generation, this node's published "<stage>-<hash>" (k3s's node
 *                           annotation), a pending/interrupted re-encryption, last rotation time
 */

typedef enum se_stage {
        SE_STAGE_START,
        SE_STAGE_PREPARE,
        SE_STAGE_ROTATE,
        SE_STAGE_REENCRYPT_REQUEST,
        SE_STAGE_REENCRYPT_ACTIVE,
        SE_STAGE_REENCRYPT_FINISHED,
        _SE_STAGE_MAX,
        SE_STAGE_INVALID = -1,
} se_stage;

const char *se_stage_to_string(se_stage s);
se_stage se_stage_from_string(const char *s);

typedef enum se_command {
        SE_COMMAND_PREPARE,
        SE_COMMAND_ROTATE,
        SE_COMMAND_REENCRYPT,
        SE_COMMAND_ROTATE_KEYS,
        _SE_COMMAND_MAX,
} se_command;

const char *se_command_to_string(se_command c);

/* The stage machine: k3s's allowed (stage, command) pairs. Returns the stage the command moves
 * to (reencrypt and rotate-keys → reencrypt_active), or -ESTALE when the command is not allowed
 * in that stage; *ret_required (if given) then names the stage(s) k3s requires, e.g.
 * "start-reencrypt_finished". */
int se_stage_next(se_stage from, se_command cmd, se_stage *ret_next, const char **ret_required);

/* "<stage>-<hash>" parsing as k3s does (split at '-', exactly 2 parts). */
int se_annotation_parse(const char *s, se_stage *ret_stage, char ret_hash[static 65]);

typedef struct se_state {
        char *dir;
        /* encryption-config.json; has_config false when absent */
        bool has_config;
        uint8_t *config_bytes;
        size_t config_size;
        se_config *config; /* parsed and validated; NULL when absent */
        char hash[65];     /* sha256 hex of config_bytes */
        /* encryption-state.json */
        bool has_stage;
        se_stage stage;
        char stage_hash[65];
        /* secrets-encrypt.json */
        uint64_t generation;     /* bumped on every config write */
        char *annotation;        /* this node's published "<stage>-<hash>", NULL if never */
        int64_t annotation_time; /* unix seconds it was last set */
        char *running;           /* the annotation the API server last started with (set by the hook) */
        bool pending_reencrypt;  /* a re-encryption was requested or interrupted */
        bool pending_skip;       /* ... with --skip: keep keys, revert to the persisted stage */
        bool pending_rotate_keys;
        int64_t last_rotation; /* unix seconds of the last finished rotation, 0 = never */
        bool rolling;          /* a rolling rotation was requested (single server; HA keeps it in etcd) */
        /* Write-ahead intent of a commit: the config with this hash is to be at intent_stage and
         * intent_generation. A crash between the config and the stage write is finished from it
         * (se_state_recover()), so a retried command never applies its edit twice. */
        se_stage intent_stage; /* SE_STAGE_INVALID = none */
        char intent_hash[65];
        uint64_t intent_generation;
        bool config_empty; /* encryption-config.json exists but is empty */
} se_state;

/* Reads the state directory (which must exist). A missing config or state file is not an
 * error. An unparsable or invalid config: -EBADMSG naming the file. */
int se_state_load(const char *dir, se_state *ret, se_error *e);
void se_state_done(se_state *st);

/* Atomically writes encryption-config.json (0600) from the model (k3s's JSON) or as exact bytes,
 * after parsing and validating them; updates config, config_bytes and hash. The generation is the
 * caller's to manage (persisted with se_state_save_own()). */
int se_state_write_config(se_state *st, const se_config *c, se_error *e);
int se_state_write_config_bytes(se_state *st, const uint8_t *bytes, size_t size, se_error *e);
/* encryption-state.json := "<stage>-<current config hash>", and the annotation to match. */
int se_state_write_stage(se_state *st, se_stage stage, se_error *e);
/* Writes secrets-encrypt.json from the fields above. */
int se_state_save_own(se_state *st, se_error *e);
/* Sets the published annotation to "<stage>-<current hash>" (not saved). */
int se_state_set_annotation(se_state *st, se_stage stage);

/* Finishes an interrupted commit from the intent (under the lock). *ret_recovered tells whether it
 * did anything. */
int se_state_recover(se_state *st, bool *ret_recovered, se_error *e);
/* Removes temporary files left in the state directory by a killed writer (under the lock). */
void se_state_remove_temporaries(const char *dir);

/* The stage shown by status: the annotation's stage, else the persisted stage. */
se_stage se_state_current_stage(const se_state *st);
