/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "se-config.h"
#include "se-error.h"

/*
 * k3s's key-list edits (reference k3s-secrets-encrypt.md §1.4–§1.5, §2.3, §4.3, §5.1), as pure
 * functions from one config model to a new one. Configs are k3s-shaped: one resources entry for
 * "secrets" with aescbc and/or secretbox providers and identity; anything else (aesgcm, kms) is
 * refused with k3s's `unsupported encryption keys found`.
 */

typedef enum se_layout {
        SE_LAYOUT_ENABLED,       /* [primary, (secondary), identity] */
        SE_LAYOUT_DISABLED,      /* [identity, primary, (secondary)] */
        SE_LAYOUT_IDENTITY_ONLY, /* [identity] */
        SE_LAYOUT_UNKNOWN,
} se_layout;

se_layout se_config_layout(const se_config *c);

/* First start: [<provider>{<provider>key}, identity]. provider is "aescbc" or "secretbox". */
int se_config_generate(const char *provider, se_config **ret, se_error *e);
/* k3s's `enable` on a cluster without encryption: [identity]. */
int se_config_generate_identity(se_config **ret, se_error *e);

/* prepare: a new aescbc key appended at the end (read-only until rotate). *ret_key_name = its name. */
int se_rotation_prepare(const se_config *c, const char *provider, time_t now, se_config **ret, char **ret_key_name,
                        se_error *e);
/* rotate: right-rotate the aescbc keys (the last becomes the write key). */
int se_rotation_rotate(const se_config *c, const char *provider, se_config **ret, char **ret_key_name, se_error *e);
/* rotate-keys: new key of provider's type, made the write key at once; the other type stays as
 * secondary for reads. */
int se_rotation_add_and_rotate(const se_config *c, const char *provider, time_t now, se_config **ret,
                               char **ret_key_name, se_error *e);
/* The prune after re-encryption (k3s §4.3): every aescbc, secretbox and aesgcm key of the entry
 * that covers secrets except its write key (with identity first: except the key `enable` would
 * promote); never KMS. *ret (NULL when nothing is removed) and the removed keys' names, joined
 * with ", ". */
int se_rotation_prune(const se_config *c, se_config **ret, char **ret_removed, se_error *e);
/* enable/disable (k3s §1.5, minus its bugs: identity-only enable creates a key; disable keeps the
 * secondary provider). *ret NULL = already in that state. */
int se_rotation_set_enabled(const se_config *c, const char *provider, bool enable, time_t now, se_config **ret,
                            se_error *e);

/* "AES-CBC <name>" / "XSalsa20-POLY1305 <name>" lists as k3s's status. ret_active NULL when none. */
int se_config_status_keys(const se_config *c, char **ret_active, char ***ret_inactive, size_t *ret_n_inactive);
