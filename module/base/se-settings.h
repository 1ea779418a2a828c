/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "se-error.h"

/* /etc/secrets-encrypt/config.yaml: keys named like k3s's flags; every key is also a CLI flag. */

#define SE_SETTINGS_DEFAULT_PATH      "/etc/secrets-encrypt/config.yaml"
#define SE_SETTINGS_DEFAULT_UNIT      "k3s.service"
#define SE_SETTINGS_DEFAULT_DATASTORE "sqlite:///var/lib/rancher/k3s/server/db/state.db"

typedef struct se_settings {
        char *state_dir;
        char *node_name;
        char *provider; /* "aescbc" or "secretbox" */
        char *datastore_endpoint;
        char *datastore_cafile;
        char *datastore_certfile;
        char *datastore_keyfile;
        char *token_file; /* NULL = systemd credential, else /etc/secrets-encrypt/token */
        char *unit;
        char *hooks_dir;
        char *metrics_file;
        uint64_t timeout_usec;
        double reencrypt_rate; /* secrets/s, 0 = unlimited */
        bool auto_advance;
        /* single-server: the only API server on its datastore (kine on PostgreSQL/MySQL, where
         * servers are not coordinated: each would generate and write with keys of its own) */
        bool single_server;
        /* removed-key-retention: how long removed keys stay in <state-dir>/removed-keys/ for
         * restore-key (se-key-archive.h); default 7d. keep_removed_keys is false when it is 0. */
        uint64_t removed_key_retention_usec;
        bool keep_removed_keys;
        /* kms-v1: kube-apiserver runs with --feature-gates=KMSv1=true, so KMS v1 providers are
         * accepted (default false, as kube-apiserver ≥ 1.29; se_config_set_kms_v1_gate) */
        bool kms_v1;
        /* rotate-after: the age at which `ensure --rotate-due` (the rotation timer) rotates the
         * active key; default 90d. */
        uint64_t rotate_after_usec;
        /* The cluster token given as a value (k3s's --token), not a key: read before token-file,
         * wiped by se_settings_done(), never printed. */
        char *token;
        /* datastore-allow-plain-http: http:// etcd endpoints on loopback only (default false:
         * https:// is required) */
        bool datastore_allow_plain_http;
} se_settings;

#define SE_SETTINGS_DEFAULT_REMOVED_KEY_RETENTION_USEC (7ULL * 24ULL * 3600ULL * 1000000ULL)
#define SE_SETTINGS_DEFAULT_ROTATE_AFTER_USEC          (90ULL * 24ULL * 3600ULL * 1000000ULL)

/* Defaults of SPEC §2 (node-name = hostname). */
int se_settings_init(se_settings *s);
void se_settings_done(se_settings *s);

/* Loads a YAML settings file over the current values; returns how many keys it set (0 for a
 * missing file when missing_ok, or a file of comments only: not set up). Unknown or duplicate
 * keys and bad values: -EINVAL with a message naming the file, line and key. */
int se_settings_load(se_settings *s, const char *path, bool missing_ok, se_error *e);

/* Sets one key from a string (a CLI flag or a YAML value). -ENOENT for an unknown key. */
int se_settings_set(se_settings *s, const char *key, const char *value, se_error *e);

/* True if key is a known settings key; the list is NULL-terminated. */
bool se_settings_is_key(const char *key);
extern const char *const se_settings_keys[];

/* The cluster token: $CREDENTIALS_DIRECTORY/secrets-encrypt-token, else token-file. Trailing
 * newlines trimmed. Caller wipes (erase_and_freep). */
int se_settings_read_token(const se_settings *s, char **ret, se_error *e);

/* The documentation of each key (settings-doc.c): the one source of --help, README and the man
 * page. The list ends with an entry whose key is NULL. */
typedef struct se_settings_doc {
        const char *key;
        const char *default_value; /* as documented: "none", "hostname", "0 (unlimited)" … */
        const char *meaning;
} se_settings_doc;

extern const se_settings_doc se_settings_docs[];
/* NULL when the key has no entry. */
const se_settings_doc *se_settings_doc_get(const char *key);
