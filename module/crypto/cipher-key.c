/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "cipher.h"
#include "macro.h"

/* What every cipher shares: the key with its EVP contexts, and kube-apiserver's words for a
 * failed decryption. */

static const char *const cipher_err_messages[_SE_CIPHER_ERR_MAX] = {
        [SE_CIPHER_OK] = "success",
        [SE_CIPHER_SHORT] = "the stored data was shorter than the required size",
        [SE_CIPHER_NOT_BLOCKS] = "the stored data is not a multiple of the block size",
        /* Go panics on an IV-only body; the nearest of kube's own messages */
        [SE_CIPHER_IV_ONLY] = "invalid PKCS7 data (empty or not padded)",
        [SE_CIPHER_PKCS7_DATA] = "invalid PKCS7 data (empty or not padded)",
        [SE_CIPHER_PKCS7_PADDING] = "invalid padding on input",
        [SE_CIPHER_GCM_AUTH] = "cipher: message authentication failed",
        [SE_CIPHER_SECRETBOX_AUTH] = "output array was not large enough for encryption",
};

const char *se_cipher_err_message(se_cipher_err err) {
        if (err < 0 || err >= _SE_CIPHER_ERR_MAX)
                return "unknown error";
        return cipher_err_messages[err];
}

int se_cipher_err_errno(se_cipher_err err) {
        switch (err) {
        case SE_CIPHER_SHORT:
        case SE_CIPHER_NOT_BLOCKS:
        case SE_CIPHER_IV_ONLY:
                return -EBADMSG;
        default:
                return -ENOKEY;
        }
}

int se_cipher_key_init(se_cipher_key *k, se_provider_type type, const uint8_t *key, size_t key_size) {
        switch (type) {
        case SE_PROVIDER_AESCBC:
        case SE_PROVIDER_AESGCM:
                if (key_size != 16 && key_size != 24 && key_size != 32)
                        return -EINVAL;
                break;
        case SE_PROVIDER_SECRETBOX:
                if (key_size != SE_SECRETBOX_KEY_SIZE)
                        return -EINVAL;
                if (sodium_init() < 0)
                        return -EIO;
                break;
        default:
                return -EINVAL;
        }

        *k = (se_cipher_key){.type = type, .key_size = key_size};
        memcpy(k->key, key, key_size);
        return 0;
}

void se_cipher_key_done(se_cipher_key *k) {
        if (!k)
                return;
        /* EVP_CIPHER_CTX_free() cleanses the expanded key schedule */
        EVP_CIPHER_CTX_free(k->enc);
        EVP_CIPHER_CTX_free(k->dec);
        OPENSSL_cleanse(k->key, sizeof(k->key));
        *k = (se_cipher_key){};
}

static const EVP_CIPHER *aes_cipher(se_provider_type type, size_t key_size) {
        bool cbc = type == SE_PROVIDER_AESCBC;

        switch (key_size) {
        case 16:
                return cbc ? EVP_aes_128_cbc() : EVP_aes_128_gcm();
        case 24:
                return cbc ? EVP_aes_192_cbc() : EVP_aes_192_gcm();
        case 32:
                return cbc ? EVP_aes_256_cbc() : EVP_aes_256_gcm();
        default:
                return NULL;
        }
}

EVP_CIPHER_CTX *se_cipher_ctx(se_cipher_key *k, bool encrypt) {
        EVP_CIPHER_CTX **p = encrypt ? &k->enc : &k->dec, *ctx;
        const EVP_CIPHER *cipher;

        if (*p)
                return *p;
        if (k->type != SE_PROVIDER_AESCBC && k->type != SE_PROVIDER_AESGCM)
                return NULL;
        cipher = aes_cipher(k->type, k->key_size);
        if (!cipher)
                return NULL;
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return NULL;
        /* The key schedule is computed here once; each value then only sets its IV. */
        if (EVP_CipherInit_ex2(ctx, cipher, k->key, NULL, encrypt ? 1 : 0, NULL) != 1 ||
            EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
                EVP_CIPHER_CTX_free(ctx);
                return NULL;
        }
        *p = ctx;
        return ctx;
}
