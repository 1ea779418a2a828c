/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Private: the per-key ciphers behind se-envelope.h. Each function works on the body after the
 * "k8s:enc:<provider>:v1:<key>:" prefix and appends to an se_buf; on failure nothing is left
 * appended (partial plaintext is wiped).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "se-config.h"
#include "se-util.h"

#define SE_AES_BLOCK_SIZE       16u
#define SE_AESCBC_IV_SIZE       16u
#define SE_AESGCM_NONCE_SIZE    12u
#define SE_AESGCM_TAG_SIZE      16u
#define SE_SECRETBOX_NONCE_SIZE 24u
#define SE_SECRETBOX_MAC_SIZE   16u
#define SE_SECRETBOX_KEY_SIZE   32u
#define SE_CIPHER_KEY_MAX       32u

/* Values are passed to EVP in one call, whose lengths are int. */
#define SE_CIPHER_VALUE_MAX (256u * 1024u * 1024u)

/* Why one decryption attempt failed; each maps to kube-apiserver's exact text. */
typedef enum se_cipher_err {
        SE_CIPHER_OK,
        SE_CIPHER_SHORT,          /* body shorter than IV/nonce (+ MAC) */
        SE_CIPHER_NOT_BLOCKS,     /* CBC body not a multiple of the block size */
        SE_CIPHER_IV_ONLY,        /* CBC body is exactly one IV: Go panics, we refuse */
        SE_CIPHER_PKCS7_DATA,     /* last byte 0 or larger than the data */
        SE_CIPHER_PKCS7_PADDING,  /* padding bytes differ */
        SE_CIPHER_GCM_AUTH,       /* GCM open failed */
        SE_CIPHER_SECRETBOX_AUTH, /* secretbox open failed */
        _SE_CIPHER_ERR_MAX,
} se_cipher_err;

const char *se_cipher_err_message(se_cipher_err err);
/* -EBADMSG for a malformed body (lengths), -ENOKEY for a failed decryption. */
int se_cipher_err_errno(se_cipher_err err);

/* One key of an aescbc/aesgcm/secretbox provider. The EVP contexts are set up with the key once
 * and then only get a fresh IV per value. */
typedef struct se_cipher_key {
        se_provider_type type;
        uint8_t key[SE_CIPHER_KEY_MAX];
        size_t key_size;
        EVP_CIPHER_CTX *enc;
        EVP_CIPHER_CTX *dec;
} se_cipher_key;

/* Copies the key; -EINVAL if the size does not suit the provider. */
int se_cipher_key_init(se_cipher_key *k, se_provider_type type, const uint8_t *key, size_t key_size);
/* Wipes the key and frees the contexts. */
void se_cipher_key_done(se_cipher_key *k);

/* The key's EVP context for one direction, created and keyed on first use; NULL on failure. */
EVP_CIPHER_CTX *se_cipher_ctx(se_cipher_key *k, bool encrypt);

/* IV/nonce size of the provider's body (0 for others). */
size_t se_cipher_iv_size(se_provider_type type);

/* One provider's cipher (cipher-<provider>.c); cipher.c lists them. encrypt appends IV/nonce ‖
 * ciphertext (‖ tag), iv being iv_size bytes; decrypt appends the plaintext, and a failed attempt
 * returns -EBADMSG/-ENOKEY with *ret_err set (other negative errnos, -ENOMEM, -E2BIG, -EIO, are
 * not about the data). The AAD is the datastore key, bound by aesgcm and ignored by the others;
 * on failure nothing is left appended. */
typedef struct se_cipher_ops {
        se_provider_type type;
        size_t iv_size;
        int (*encrypt)(se_cipher_key *k, const uint8_t *iv, const uint8_t *aad, size_t aad_size, const uint8_t *in,
                       size_t n, se_buf *out);
        int (*decrypt)(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n, se_buf *out,
                       se_cipher_err *ret_err);
} se_cipher_ops;

extern const se_cipher_ops se_cipher_aescbc, se_cipher_aesgcm, se_cipher_secretbox;

/* The cipher of a provider type; NULL for identity and KMS. */
const se_cipher_ops *se_cipher_ops_for(se_provider_type type);
/* The key's cipher's encrypt and decrypt; -EINVAL for a type without one. */
int se_cipher_encrypt(se_cipher_key *k, const uint8_t *iv, const uint8_t *aad, size_t aad_size, const uint8_t *in,
                      size_t n, se_buf *out);
int se_cipher_decrypt(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n, se_buf *out,
                      se_cipher_err *ret_err);
