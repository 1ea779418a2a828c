/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"
#include "se-state.h"

/*
 * The encryption config sealed with the cluster token, as stored at /secrets-encrypt/config:
 *
 *   {"version":1,"generation":N,"stage":"prepare","hash":"<sha256 hex of the config bytes>",
 *    "kdf":{"name":"scrypt","N":32768,"r":8,"p":1,"salt":"<b64 16 bytes>"},
 *    "cipher":"aes-256-gcm","check":"<b64 32 bytes>","nonce":"<b64 12 bytes>",
 *    "ciphertext":"<b64 ciphertext ‖ 16-byte tag>"}
 *
 * scrypt(token, salt) gives 64 bytes: the first 32 are the AES-256-GCM key, the last 32 are
 * stored as "check" so a wrong token (check differs) is told apart from a record edited in etcd
 * (check matches, the tag does not). The two halves are independent PBKDF2 blocks, so "check"
 * reveals nothing about the key beyond what guessing the token against the ciphertext would.
 * The AAD binds version, generation, stage, hash and the KDF parameters.
 */

#define SE_SEAL_SALT_SIZE  16
#define SE_SEAL_CHECK_SIZE 32
#define SE_SEAL_NONCE_SIZE 12
#define SE_SEAL_TAG_SIZE   16
#define SE_SEAL_KEY_SIZE   32
/* etcd refuses requests over 1.5 MiB; base64 of 1 MiB plus the JSON stays below. */
#define SE_SEAL_PLAINTEXT_MAX (1024u * 1024u)
#define SE_SEAL_RECORD_MAX    (2u * 1024u * 1024u)

/* scrypt cost: N=2^15, r=8 → 32 MiB and ~50-100 ms per derivation (RFC 7914's interactive level). */
#define SE_SEAL_SCRYPT_N 32768u
#define SE_SEAL_SCRYPT_R 8u
#define SE_SEAL_SCRYPT_P 1u

typedef struct se_sealed {
        uint64_t version;
        uint64_t generation;
        se_stage stage;
        char hash[65];
        uint64_t kdf_n, kdf_r, kdf_p;
        uint8_t salt[SE_SEAL_SALT_SIZE];
        uint8_t check[SE_SEAL_CHECK_SIZE];
        uint8_t nonce[SE_SEAL_NONCE_SIZE];
        uint8_t *ciphertext; /* ciphertext ‖ tag */
        size_t ciphertext_size;
} se_sealed;

/* Seals bytes (the exact encryption-config.json) with a fresh salt and nonce; *ret_json is the
 * record, NUL-terminated. */
int se_seal(const char *token, const uint8_t *bytes, size_t size, uint64_t generation, se_stage stage, char **ret_json,
            size_t *ret_size, se_error *e);

/* Parses a record without opening it (no token needed). Malformed: -EBADMSG. */
int se_sealed_parse(const void *json, size_t size, se_sealed *ret, se_error *e);

/* Opens a parsed record: -EKEYREJECTED when the token is not the one it was sealed with, -EBADMSG
 * when the record was altered. *ret is NUL-terminated (not counted); wipe it after use. */
int se_sealed_open(const se_sealed *s, const char *token, uint8_t **ret, size_t *ret_size, se_error *e);

void se_sealed_done(se_sealed *s);

/*
 * The record key: authenticates the small records beside the sealed config (node records, the
 * rolling flag) and names the token for the local generation high-water mark. scrypt over the
 * token with the same cost as the sealed config and a fixed salt derived from a label (records are
 * checked on every listing, so one derivation per process, not one per record), 32 bytes. Records
 * are HMAC-SHA256 under it; each use has its own label inside the MACed text.
 */
int se_seal_record_key(const char *token, uint8_t ret[static SE_SEAL_KEY_SIZE], se_error *e);
/* HMAC-SHA256(key, data) as 64 lowercase hex digits and a NUL. */
int se_seal_mac_hex(const uint8_t key[static SE_SEAL_KEY_SIZE], const void *data, size_t size, char ret[static 65]);
/* Constant-time comparison of two 64-digit hex MACs; false when either is not 64 characters. */
bool se_seal_mac_equal(const char *a, const char *b);
