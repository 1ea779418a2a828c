/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "se-error.h"

/* /etc/secrets-encrypt/config.yaml: keys named like k3s's flags; every key is also a CLI flag. */

#define SE_SETTINGS_DEFAULT_PATH "/etc/secrets-encrypt/config.yaml"

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
        /* removed-key-retention: how long removed keys stay in <state-dir>/removed-keys/ for
         * restore-key (se-key-archive.h); default 7d. keep_removed_keys is false when it is 0. */
        uint64_t removed_key_retention_usec;
        bool keep_removed_keys;
        /* datastore-allow-plain-http: http:// etcd endpoints on loopback only (default false:
         * https:// is required) */
        bool datastore_allow_plain_http;
} se_settings;

#define SE_SETTINGS_DEFAULT_REMOVED_KEY_RETENTION_USEC (7ULL * 24ULL * 3600ULL * 1000000ULL)

/* Defaults of SPEC §2 (node-name = hostname). */
int se_settings_init(se_settings *s);
void se_settings_done(se_settings *s);

/* Loads a YAML settings file over the current values. A missing file is not an error when
 * missing_ok. Unknown or duplicate keys and bad values: -EINVAL with a message naming the file,
 * line and key. */
int se_settings_load(se_settings *s, const char *path, bool missing_ok, se_error *e);

/* Sets one key from a string (a CLI flag or a YAML value). -ENOENT for an unknown key. */
int se_settings_set(se_settings *s, const char *key, const char *value, se_error *e);

/* True if key is a known settings key; the list is NULL-terminated. */
bool se_settings_is_key(const char *key);
extern const char *const se_settings_keys[];

/* The cluster token: $CREDENTIALS_DIRECTORY/secrets-encrypt-token, else token-file. Trailing
 * newlines trimmed. Caller wipes (erase_and_freep). */
int se_settings_read_token(const se_settings *s, char **ret, se_error *e);
