/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "macro.h"
#include "seal-internal.h"
#include "se-util.h"

/* Bounds on the KDF parameters read back from etcd: anyone able to write there must not be able
 * to make every server allocate gigabytes or spin for minutes. */
#define SCRYPT_N_MIN   16384u
#define SCRYPT_N_MAX   1048576u
#define SCRYPT_R_MAX   16u
#define SCRYPT_P_MAX   4u
#define SCRYPT_MEM_MAX (256u * 1024u * 1024u)

#define TOKEN_MESSAGE                                                                                                 \
        "the cluster token does not open the sealed configuration in etcd: check token-file / the "                   \
        "secrets-encrypt-token credential on this node"

static int derive(const char *token, const uint8_t salt[static SE_SEAL_SALT_SIZE], uint64_t n, uint64_t r, uint64_t p,
                  uint8_t out[static SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE], se_error *e) {
        uint64_t mem = 128u * r * n;

        /* OpenSSL also counts p*r*128 bytes of B and some slack beyond V */
        if (EVP_PBE_scrypt(token, strlen(token), salt, SE_SEAL_SALT_SIZE, n, r, p, mem + 128u * r * p + 1024u * 1024u,
                           out, SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE) != 1) {
                explicit_wipe(out, SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE);
                return se_error_set(e, -ENOMEM,
                                    "scrypt key derivation failed (N=%" PRIu64 ", r=%" PRIu64 ", p=%" PRIu64 ")", n, r,
                                    p);
        }
        return 0;
}

static char *make_aad(uint64_t version, uint64_t generation, se_stage stage, const char *hash, uint64_t n, uint64_t r,
                      uint64_t p, const uint8_t salt[static SE_SEAL_SALT_SIZE]) {
        _cleanup_free_ char *salt64 = NULL;
        char *aad = NULL;

        if (se_base64_encode(salt, SE_SEAL_SALT_SIZE, &salt64) < 0)
                return NULL;
        if (asprintf(&aad,
                     "secrets-encrypt sealed config\nversion=%" PRIu64 "\ngeneration=%" PRIu64 "\nstage=%s\nhash=%s\n"
                     "kdf=scrypt:%" PRIu64 ":%" PRIu64 ":%" PRIu64 ":%s\ncipher=aes-256-gcm\n",
                     version, generation, se_stage_to_string(stage), hash, n, r, p, salt64) < 0)
                return NULL;
        return aad;
}

static void cipher_ctx_freep(EVP_CIPHER_CTX **p) {
        EVP_CIPHER_CTX_free(*p);
}

static int gcm(bool encrypt, const uint8_t key[static SE_SEAL_KEY_SIZE],
               const uint8_t nonce[static SE_SEAL_NONCE_SIZE], const char *aad, const uint8_t *in, size_t n,
               uint8_t *out, uint8_t tag[static SE_SEAL_TAG_SIZE]) {
        _cleanup_(cipher_ctx_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        int l = 0;

        if (!ctx)
                return -ENOMEM;
        if (n > INT32_MAX)
                return -E2BIG;
        if (EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, encrypt ? 1 : 0, NULL) != 1)
                return -EIO;
        if (EVP_CipherUpdate(ctx, NULL, &l, (const uint8_t *) aad, (int) strlen(aad)) != 1)
                return -EIO;
        if (n > 0 && (EVP_CipherUpdate(ctx, out, &l, in, (int) n) != 1 || (size_t) l != n))
                goto fail;
        if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SE_SEAL_TAG_SIZE, tag) != 1)
                goto fail;
        if (EVP_CipherFinal_ex(ctx, out + n, &l) != 1) {
                explicit_wipe(out, n);
                return encrypt ? -EIO : -EBADMSG;
        }
        if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SE_SEAL_TAG_SIZE, tag) != 1)
                goto fail;
        return 0;
fail:
        explicit_wipe(out, n);
        return -EIO;
}

static int add_b64(json_object *o, const char *name, const void *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = se_base64_encode(data, size, &s);
        if (r < 0)
                return r;
        return json_object_object_add(o, name, json_object_new_string(s)) < 0 ? -ENOMEM : 0;
}

int se_seal(const char *token, const uint8_t *bytes, size_t size, uint64_t generation, se_stage stage, char **ret_json,
            size_t *ret_size, se_error *e) {
        uint8_t derived[SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE], salt[SE_SEAL_SALT_SIZE], nonce[SE_SEAL_NONCE_SIZE];
        _cleanup_free_ uint8_t *ct = NULL;
        _cleanup_free_ char *aad = NULL;
        char hash[SE_SHA256_HEX_SIZE];
        json_object *root = NULL, *kdf;
        const char *text;
        size_t len;
        int r;

        if (isempty(token))
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential");
        if (size > SE_SEAL_PLAINTEXT_MAX)
                return se_error_set(e, -E2BIG,
                                    "the encryption configuration is %zu bytes, over the %u-byte limit for etcd", size,
                                    SE_SEAL_PLAINTEXT_MAX);
        if (generation < 1 || generation > INT64_MAX)
                return se_error_set(e, -EINVAL, "invalid generation %" PRIu64, generation);
        if (!se_stage_to_string(stage))
                return se_error_set(e, -EINVAL, "invalid stage %d", (int) stage);

        r = se_sha256_hex(bytes, size, hash);
        if (r < 0)
                return se_error_set(e, r, "cannot hash the encryption configuration");
        if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(nonce, sizeof(nonce)) != 1)
                return se_error_set(e, -EIO, "no random bytes for the sealed configuration");
        aad = make_aad(1, generation, stage, hash, SE_SEAL_SCRYPT_N, SE_SEAL_SCRYPT_R, SE_SEAL_SCRYPT_P, salt);
        ct = malloc(size + SE_SEAL_TAG_SIZE);
        if (!aad || !ct)
                return se_error_set(e, -ENOMEM, "out of memory");

        r = derive(token, salt, SE_SEAL_SCRYPT_N, SE_SEAL_SCRYPT_R, SE_SEAL_SCRYPT_P, derived, e);
        if (r < 0)
                return r;
        r = gcm(true, derived, nonce, aad, bytes, size, ct, ct + size);
        explicit_wipe(derived, SE_SEAL_KEY_SIZE); /* the check half is published */
        if (r < 0) {
                explicit_wipe(derived, sizeof(derived));
                return se_error_set(e, r, "AES-256-GCM sealing failed");
        }

        root = json_object_new_object();
        kdf = json_object_new_object();
        if (!root || !kdf) {
                json_object_put(root);
                json_object_put(kdf);
                explicit_wipe(derived, sizeof(derived));
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        json_object_object_add(root, "version", json_object_new_int64(1));
        json_object_object_add(root, "generation", json_object_new_int64((int64_t) generation));
        json_object_object_add(root, "stage", json_object_new_string(se_stage_to_string(stage)));
        json_object_object_add(root, "hash", json_object_new_string(hash));
        json_object_object_add(kdf, "name", json_object_new_string("scrypt"));
        json_object_object_add(kdf, "N", json_object_new_int64(SE_SEAL_SCRYPT_N));
        json_object_object_add(kdf, "r", json_object_new_int64(SE_SEAL_SCRYPT_R));
        json_object_object_add(kdf, "p", json_object_new_int64(SE_SEAL_SCRYPT_P));
        r = add_b64(kdf, "salt", salt, sizeof(salt));
        json_object_object_add(root, "kdf", kdf);
        json_object_object_add(root, "cipher", json_object_new_string("aes-256-gcm"));
        if (r >= 0)
                r = add_b64(root, "check", derived + SE_SEAL_KEY_SIZE, SE_SEAL_CHECK_SIZE);
        explicit_wipe(derived, sizeof(derived));
        if (r >= 0)
                r = add_b64(root, "nonce", nonce, sizeof(nonce));
        if (r >= 0)
                r = add_b64(root, "ciphertext", ct, size + SE_SEAL_TAG_SIZE);
        if (r < 0) {
                json_object_put(root);
                return se_error_set(e, r, "cannot encode the sealed configuration");
        }

        text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        *ret_json = text ? strndup(text, len) : NULL;
        json_object_put(root);
        if (!*ret_json)
                return se_error_set(e, -ENOMEM, "out of memory");
        if (ret_size)
                *ret_size = len;
        return 0;
}

static int get_u64(json_object *o, const char *name, uint64_t *ret) {
        json_object *v;
        int64_t i;

        if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        errno = 0;
        i = json_object_get_int64(v);
        if (i < 0 || errno != 0)
                return -EBADMSG;
        *ret = (uint64_t) i;
        return 0;
}

static const char *get_str(json_object *o, const char *name) {
        json_object *v;

        if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* A base64 field of exactly size bytes (size 0 = any, returned in *ret_alloc). */
static int get_b64(json_object *o, const char *name, uint8_t *fixed, size_t size, uint8_t **ret_alloc,
                   size_t *ret_size) {
        _cleanup_free_ uint8_t *d = NULL;
        const char *s = get_str(o, name);
        size_t n = 0;
        int r;

        if (!s)
                return -EBADMSG;
        r = se_base64_decode(s, strlen(s), &d, &n);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (fixed) {
                if (n != size)
                        return -EBADMSG;
                memcpy(fixed, d, n);
                return 0;
        }
        *ret_alloc = TAKE_PTR(d);
        *ret_size = n;
        return 0;
}

static int parse_tree(json_object *root, se_sealed *s, const char **ret_field) {
        json_object *kdf;
        const char *v;
        int r;

#define FIELD(name, expr)                                                                                             \
        do {                                                                                                          \
                *ret_field = (name);                                                                                  \
                r = (expr);                                                                                           \
                if (r < 0)                                                                                            \
                        return r;                                                                                     \
        } while (0)

        FIELD("version", get_u64(root, "version", &s->version));
        if (s->version != 1)
                return -EPROTONOSUPPORT;
        FIELD("generation", get_u64(root, "generation", &s->generation));
        if (s->generation < 1)
                return -EBADMSG;
        *ret_field = "stage";
        s->stage = se_stage_from_string(get_str(root, "stage"));
        if (s->stage == SE_STAGE_INVALID)
                return -EBADMSG;
        *ret_field = "hash";
        v = get_str(root, "hash");
        if (!v || strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64)
                return -EBADMSG;
        memcpy(s->hash, v, 65);

        *ret_field = "kdf";
        if (!json_object_object_get_ex(root, "kdf", &kdf) || !json_object_is_type(kdf, json_type_object))
                return -EBADMSG;
        v = get_str(kdf, "name");
        if (!v || !streq(v, "scrypt"))
                return -EBADMSG;
        FIELD("kdf.N", get_u64(kdf, "N", &s->kdf_n));
        FIELD("kdf.r", get_u64(kdf, "r", &s->kdf_r));
        FIELD("kdf.p", get_u64(kdf, "p", &s->kdf_p));
        *ret_field = "kdf";
        if (s->kdf_n < SCRYPT_N_MIN || s->kdf_n > SCRYPT_N_MAX || (s->kdf_n & (s->kdf_n - 1)) != 0 || s->kdf_r < 1 ||
            s->kdf_r > SCRYPT_R_MAX || s->kdf_p < 1 || s->kdf_p > SCRYPT_P_MAX ||
            128u * s->kdf_r * s->kdf_n > SCRYPT_MEM_MAX)
                return -EBADMSG;
        FIELD("kdf.salt", get_b64(kdf, "salt", s->salt, sizeof(s->salt), NULL, NULL));

        *ret_field = "cipher";
        v = get_str(root, "cipher");
        if (!v || !streq(v, "aes-256-gcm"))
                return -EBADMSG;
        FIELD("check", get_b64(root, "check", s->check, sizeof(s->check), NULL, NULL));
        FIELD("nonce", get_b64(root, "nonce", s->nonce, sizeof(s->nonce), NULL, NULL));
        FIELD("ciphertext", get_b64(root, "ciphertext", NULL, 0, &s->ciphertext, &s->ciphertext_size));
        if (s->ciphertext_size < SE_SEAL_TAG_SIZE || s->ciphertext_size > SE_SEAL_PLAINTEXT_MAX + SE_SEAL_TAG_SIZE)
                return -EBADMSG;
#undef FIELD
        return 0;
}

int se_sealed_parse(const void *json, size_t size, se_sealed *ret, se_error *e) {
        json_tokener *tok;
        json_object *root;
        se_sealed s = {.stage = SE_STAGE_INVALID};
        const char *field = NULL;
        int r;

        if (size > SE_SEAL_RECORD_MAX)
                return se_error_set(e, -EBADMSG,
                                    "the sealed configuration in etcd is %zu bytes, over the %u-byte limit", size,
                                    SE_SEAL_RECORD_MAX);
        tok = json_tokener_new();
        if (!tok)
                return se_error_set(e, -ENOMEM, "out of memory");
        root = json_tokener_parse_ex(tok, json, (int) size);
        if (!root || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != size ||
            !json_object_is_type(root, json_type_object)) {
                json_tokener_free(tok);
                json_object_put(root);
                return se_error_set(e, -EBADMSG, "the sealed configuration in etcd is not a JSON object");
        }
        json_tokener_free(tok);

        r = parse_tree(root, &s, &field);
        json_object_put(root);
        if (r == -ENOMEM) {
                se_sealed_done(&s);
                return se_error_set(e, r, "out of memory");
        }
        if (r == -EPROTONOSUPPORT) {
                se_sealed_done(&s);
                return se_error_set(e, -EBADMSG,
                                    "the sealed configuration in etcd has version %" PRIu64
                                    ", which this secrets-encrypt (%s) does not know: upgrade this server",
                                    s.version, SE_VERSION);
        }
        if (r < 0) {
                se_sealed_done(&s);
                return se_error_set(e, -EBADMSG,
                                    "the sealed configuration in etcd has a missing or invalid \"%s\" field", field);
        }
        *ret = s;
        return 0;
}

int se_sealed_open(const se_sealed *s, const char *token, uint8_t **ret, size_t *ret_size, se_error *e) {
        uint8_t derived[SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE], tag[SE_SEAL_TAG_SIZE];
        _cleanup_free_ char *aad = NULL;
        char hash[SE_SHA256_HEX_SIZE];
        uint8_t *pt;
        size_t n;
        int r;

        if (isempty(token))
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential");
        if (s->ciphertext_size < SE_SEAL_TAG_SIZE)
                return se_error_set(e, -EBADMSG, "the sealed configuration in etcd is truncated");
        n = s->ciphertext_size - SE_SEAL_TAG_SIZE;
        aad = make_aad(s->version, s->generation, s->stage, s->hash, s->kdf_n, s->kdf_r, s->kdf_p, s->salt);
        pt = malloc(n + 1);
        if (!aad || !pt) {
                free(pt);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        se_dontdump(pt, n + 1); /* the config with its keys, kept by the caller */

        r = derive(token, s->salt, s->kdf_n, s->kdf_r, s->kdf_p, derived, e);
        if (r < 0) {
                free(pt);
                return r;
        }
        if (CRYPTO_memcmp(derived + SE_SEAL_KEY_SIZE, s->check, SE_SEAL_CHECK_SIZE) != 0) {
                explicit_wipe(derived, sizeof(derived));
                free(pt);
                return se_error_set(e, -EKEYREJECTED, TOKEN_MESSAGE);
        }
        memcpy(tag, s->ciphertext + n, sizeof(tag));
        r = gcm(false, derived, s->nonce, aad, s->ciphertext, n, pt, tag);
        explicit_wipe(derived, sizeof(derived));
        if (r < 0) {
                free(pt);
                if (r == -EBADMSG)
                        return se_error_set(e, r,
                                            "the sealed configuration in etcd (generation %" PRIu64
                                            ") fails authentication although the token is right: it was altered "
                                            "outside secrets-encrypt; run `secrets-encrypt sync --from-local` on a "
                                            "server with a good configuration",
                                            s->generation);
                return se_error_set(e, r, "AES-256-GCM opening failed");
        }
        pt[n] = 0;
        r = se_sha256_hex(pt, n, hash);
        if (r < 0 || !streq(hash, s->hash)) {
                explicit_wipe(pt, n);
                free(pt);
                return se_error_set(e, r < 0 ? r : -EBADMSG,
                                    "the sealed configuration in etcd does not match its recorded hash");
        }
        *ret = pt;
        *ret_size = n;
        return 0;
}

void se_sealed_done(se_sealed *s) {
        if (!s)
                return;
        free(s->ciphertext);
        s->ciphertext = NULL;
        s->ciphertext_size = 0;
}

#define RECORD_KEY_LABEL "secrets-encrypt record key v1"

int se_seal_record_key(const char *token, uint8_t ret[static SE_SEAL_KEY_SIZE], se_error *e) {
        uint8_t derived[SE_SEAL_KEY_SIZE + SE_SEAL_CHECK_SIZE], salt[SE_SEAL_SALT_SIZE], digest[32];
        unsigned len = 0;
        int r;

        if (isempty(token))
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential");
        if (!EVP_Digest(RECORD_KEY_LABEL, strlen(RECORD_KEY_LABEL), digest, &len, EVP_sha256(), NULL) ||
            len != sizeof(digest))
                return se_error_set(e, -EIO, "SHA-256 failed");
        memcpy(salt, digest, sizeof(salt));
        r = derive(token, salt, SE_SEAL_SCRYPT_N, SE_SEAL_SCRYPT_R, SE_SEAL_SCRYPT_P, derived, e);
        if (r < 0)
                return r;
        memcpy(ret, derived, SE_SEAL_KEY_SIZE);
        explicit_wipe(derived, sizeof(derived));
        return 0;
}

int se_seal_mac_hex(const uint8_t key[static SE_SEAL_KEY_SIZE], const void *data, size_t size, char ret[static 65]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t mac[32];
        unsigned len = 0;

        if (!HMAC(EVP_sha256(), key, SE_SEAL_KEY_SIZE, data, size, mac, &len) || len != sizeof(mac))
                return -EIO;
        for (size_t i = 0; i < sizeof(mac); i++) {
                ret[2 * i] = hex[mac[i] >> 4];
                ret[2 * i + 1] = hex[mac[i] & 15];
        }
        ret[64] = 0;
        return 0;
}

bool se_seal_mac_equal(const char *a, const char *b) {
        return a && b && strlen(a) == 64 && strlen(b) == 64 && CRYPTO_memcmp(a, b, 64) == 0;
}
