/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one description of every settings key: `secrets-encrypt --help` prints it, and
 * `secrets-encrypt --list-settings` hands it to tests/tools/settings-doc.py, which writes the
 * tables of README.md and man/secrets-encrypt.8 from it (and `make check` fails when they differ). */

#include <stddef.h>

#include "macro.h"
#include "se-settings.h"

_public_ const se_settings_doc se_settings_docs[] = {
        {"state-dir", "/var/lib/secrets-encrypt",
         "holds encryption-config.json and encryption-state.json (k3s's format), running-config.json (what the API "
         "server loaded), reencrypt.checkpoint and removed-keys/. Never k3s's server/cred, which k3s's bootstrap "
         "sync owns"},
        {"node-name", "hostname", "this server's name in the cluster registry"},
        {"secrets-encryption-provider", "aescbc", "provider for new keys: aescbc or secretbox"},
        {"datastore-endpoint", "what setup detected",
         "sqlite://PATH (kine schema), https://h1:2379,https://h2:2379 (etcd v3), postgres://… or mysql://… (kine "
         "on SQL); --data-dir DIR sets it from k3s's data directory"},
        {"datastore-cafile", "none", "CA for the datastore's TLS"},
        {"datastore-certfile", "none", "client certificate for the datastore's TLS"},
        {"datastore-keyfile", "none", "client key for the datastore's TLS"},
        {"datastore-allow-plain-http", "false",
         "etcd endpoints must be https://; true allows http:// to 127.0.0.0/8, [::1] and localhost only (an etcd "
         "on the same machine)"},
        {"token-file", "credential secrets-encrypt-token, else /etc/secrets-encrypt/token",
         "cluster token that seals the shared config (HA); --token VALUE gives it directly"},
        {"unit", "k3s.service", "the API server unit the hook guards, --restart restarts and events name"},
        {"hooks-dir", "/etc/secrets-encrypt/hooks.d", "executables run on every stage change"},
        {"metrics-file", "none", "Prometheus textfile-collector output"},
        {"timeout", "10m", "the hook's own deadline"},
        {"reencrypt-rate", "0 (unlimited)", "secrets/s throttle for weak disks"},
        {"auto-advance", "false", "rolling rotation driven by restarts"},
        {"single-server", "false",
         "kine on PostgreSQL or MySQL: this is the only API server on the datastore. Several servers on one SQL "
         "datastore are not coordinated yet, so without it every change is refused"},
        {"removed-key-retention", "7d",
         "how long removed keys stay in the root-only archive for restore-key (0: not kept)"},
        {"kms-v1", "false",
         "kube-apiserver runs with --feature-gates=KMSv1=true, so configs with a KMS v1 provider are accepted"},
        {"rotate-after", "90d", "the active key's age at which ensure --rotate-due (the rotation timer) rotates it"},
        {},
};

_public_ const se_settings_doc *se_settings_doc_get(const char *key) {
        for (const se_settings_doc *d = se_settings_docs; key && d->key; d++)
                if (streq(d->key, key))
                        return d;
        return NULL;
}
