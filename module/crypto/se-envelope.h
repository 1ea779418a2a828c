/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "se-config.h"
#include "se-error.h"
#include "se-util.h"

/*
 * kube-apiserver's value transformers for one resource (normally "secrets"): the read path picks
 * providers and keys by prefix in config order; the write path uses the first provider's first
 * key. A transformer owns reusable cipher contexts: it is not thread-safe, make one per thread.
 */

typedef struct se_transformer se_transformer;

typedef struct se_read_info {
        se_provider_type provider; /* which provider decrypted the value */
        const char *key_name;      /* key name, NULL for identity; points into the transformer */
        bool stale;                /* not under the write provider's write key */
} se_read_info;

/* Builds the transformer for group_resource ("secrets") from a validated config, with kube's
 * override lookup (exact, then "<group>.*"-style wildcards, then "*.*", else identity). */
int se_transformer_new(const se_config *c, const char *group_resource, se_transformer **ret, se_error *e);
se_transformer *se_transformer_free(se_transformer *t);

/* Decrypts a stored value. dskey is the datastore key (AAD for aesgcm, and named in messages).
 * out is cleared first; on failure -ENOKEY (undecryptable) or -EBADMSG (malformed) with kube's
 * error text plus the key. */
int se_transformer_read(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                        se_read_info *ret_info, se_error *e);

/* Encrypts plaintext with the write provider/key; out is cleared first. KMS as write provider
 * gives -EOPNOTSUPP. */
int se_transformer_write(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                         se_error *e);

/* True if the stored value already carries the write provider's write-key prefix (or, for an
 * identity write provider, is not k8s:enc: data). Cheap: no decryption. */
bool se_transformer_is_current(const se_transformer *t, const uint8_t *in, size_t in_size);

/* Fixed-IV/nonce write for known-answer tests only. */
int se_transformer_write_with_iv(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size,
                                 const uint8_t *iv, size_t iv_size, se_buf *out, se_error *e);

/* 32 random bytes (RAND_bytes), standard base64 in *ret_secret (caller wipes). */
int se_key_secret_generate(char **ret_secret);
/* k3s's key names: "aescbckey" / "secretboxkey" when first, else "<base>-<RFC 3339 local time>". */
int se_key_name_new(se_provider_type t, bool first, time_t now, char **ret);
