/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"
#include "se-ops.h"
#include "se-settings.h"
#include "se-state.h"
#include "se-status.h"

/*
 * What fleet tools see (SPEC §8): `secrets-encrypt facts` (an Ansible local fact, a Facter
 * external fact), the metrics file and `ensure` all read this one summary of the state directory
 * and the status. Key names only: key material never enters it.
 */

typedef struct se_facts_node {
        char *name;
        char *stage; /* from the node's "<stage>-<hash>", NULL if it never published */
        char *hash;
} se_facts_node;

typedef struct se_facts {
        char *node;
        bool configured;         /* an encryption-config.json exists */
        char *stage;             /* this node's stage, NULL when not configured */
        int enabled;             /* 1, 0, or -1 for a layout k3s does not know */
        char *provider;          /* type of the first keyed provider: "aescbc", "secretbox"; NULL if none */
        char *active_key;        /* name of that provider's first key (the write key when enabled) */
        int64_t active_key_time; /* unix seconds the key was made; -1 unknown */
        char **keys;             /* every aescbc/secretbox key name, config order */
        size_t n_keys;
        char *config_hash; /* sha256 hex of encryption-config.json */
        bool hashes_match;
        se_facts_node *nodes;
        size_t n_nodes;
        int64_t last_rotation; /* unix seconds, 0 = never */
        bool reencrypt_pending;
        uint64_t reencrypt_done, reencrypt_total;
        int64_t now; /* when the facts were taken */
} se_facts;

void se_facts_done(se_facts *f);

/* From a state and its status (se_op_status()). now: unix seconds (ages are relative to it). The
 * untimestamped first key's time is the config file's mtime. */
int se_facts_from_state(const se_state *st, const se_status *status, const char *node, int64_t now, se_facts *ret);
/* From an open context (the lock is held). */
int se_facts_collect(se_ctx *ctx, int64_t now, se_facts *ret, se_error *e);
/* Without the lock (readers such as `facts` and the metrics refresh must not wait for a running
 * rotation; every state file is replaced atomically). A missing state-dir: not configured. */
int se_facts_read(const se_settings *s, int64_t now, se_facts *ret, se_error *e);

/* Age of the active key in seconds, -1 when unknown. */
int64_t se_facts_active_key_age(const se_facts *f);

/* The creation time in a k3s key name "<type>key-<RFC 3339>" (Go's time.RFC3339 layout, "Z" or
 * ±hh:mm). -ENOENT for a name without a timestamp, -EINVAL for a malformed one. */
int se_key_name_time(const char *name, int64_t *ret);

/* JSON object (pretty when pretty, else one line), newline-terminated. */
int se_facts_to_json(const se_facts *f, bool pretty, char **ret);
