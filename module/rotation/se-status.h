/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"

/* What `secrets-encrypt status` shows: k3s's EncryptionState plus our additions. */

typedef struct se_node_status {
        char *name;
        char *annotation; /* "<stage>-<hash>" the node last published, NULL if none */
        int64_t generation;
        int64_t time; /* unix seconds of the publication */
        char *version;
} se_node_status;

typedef struct se_status {
        bool has_config; /* false: "Disabled, no configuration file found" */
        int enable;      /* 1 enabled, 0 disabled, -1 unknown layout (k3s's nil) */
        char *stage;     /* this node's current stage */
        bool hash_match;
        char *hash_error; /* "hash does not match between <a> and <b>" */
        char *active_key; /* "AES-CBC aescbckey", NULL when none */
        char **inactive_keys;
        size_t n_inactive_keys;
        /* additions */
        char *config_hash;
        se_node_status *nodes;
        size_t n_nodes;
        bool reencrypt_pending;
        bool reencrypt_running; /* another process holds the state lock and is re-encrypting */
        uint64_t progress_done, progress_total;
        char *note; /* one line after k3s's text output (a running or interrupted re-encryption) */
        char *next_action;
        bool safe_to_proceed;
        /* where this answer was read from; userinfo is stripped from the datastore URL */
        char *state_dir;
        char *datastore;
} se_status;

void se_status_done(se_status *s);
/* k3s's text output, byte for byte (tabwriter table, trailing blank line). */
int se_status_format_text(const se_status *s, char **ret);
/* k3s's json.MarshalIndent(status, "", "\t") field order and omissions, plus our fields. */
int se_status_format_json(const se_status *s, char **ret);
