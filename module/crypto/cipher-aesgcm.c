/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "cipher.h"
#include "macro.h"

/* kube-apiserver's aesgcm: nonce(12) ‖ ciphertext ‖ tag(16), AAD = the datastore key (Go's
 * cipher.NewGCM defaults). */

static int aesgcm_encrypt(se_cipher_key *k, const uint8_t *nonce, const uint8_t *aad, size_t aad_size,
                          const uint8_t *in, size_t n, se_buf *out) {
        size_t total = SE_AESGCM_NONCE_SIZE + n + SE_AESGCM_TAG_SIZE;
        EVP_CIPHER_CTX *ctx;
        uint8_t *dst;
        int l = 0, r;

        if (n > SE_CIPHER_VALUE_MAX || aad_size > SE_CIPHER_VALUE_MAX)
                return -E2BIG;
        r = se_buf_reserve(out, total);
        if (r < 0)
                return r;
        ctx = se_cipher_ctx(k, true);
        if (!ctx)
                return -ENOMEM;
        if (EVP_EncryptInit_ex2(ctx, NULL, NULL, nonce, NULL) != 1)
                return -EIO;

        dst = out->data + out->len;
        memcpy(dst, nonce, SE_AESGCM_NONCE_SIZE);
        if (aad_size > 0 && EVP_EncryptUpdate(ctx, NULL, &l, aad, (int) aad_size) != 1)
                goto fail;
        if (n > 0 && (EVP_EncryptUpdate(ctx, dst + SE_AESGCM_NONCE_SIZE, &l, in, (int) n) != 1 || (size_t) l != n))
                goto fail;
        if (EVP_EncryptFinal_ex(ctx, dst + SE_AESGCM_NONCE_SIZE + n, &l) != 1 || l != 0)
                goto fail;
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SE_AESGCM_TAG_SIZE, dst + SE_AESGCM_NONCE_SIZE + n) != 1)
                goto fail;

        out->len += total;
        out->data[out->len] = 0;
        return 0;

fail:
        explicit_wipe(dst, total);
        return -EIO;
}

static int aesgcm_decrypt(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n,
                          se_buf *out, se_cipher_err *ret_err) {
        uint8_t tag[SE_AESGCM_TAG_SIZE], *dst;
        EVP_CIPHER_CTX *ctx;
        size_t ct;
        int l = 0, r;

        if (n < SE_AESGCM_NONCE_SIZE) {
                *ret_err = SE_CIPHER_SHORT;
                return -EBADMSG;
        }
        if (n < SE_AESGCM_NONCE_SIZE + SE_AESGCM_TAG_SIZE) {
                /* Go's gcm.Open reports a missing tag as an authentication failure */
                *ret_err = SE_CIPHER_GCM_AUTH;
                return -ENOKEY;
        }
        ct = n - SE_AESGCM_NONCE_SIZE - SE_AESGCM_TAG_SIZE;
        if (ct > SE_CIPHER_VALUE_MAX || aad_size > SE_CIPHER_VALUE_MAX)
                return -E2BIG;

        r = se_buf_reserve(out, ct);
        if (r < 0)
                return r;
        ctx = se_cipher_ctx(k, false);
        if (!ctx)
                return -ENOMEM;
        if (EVP_DecryptInit_ex2(ctx, NULL, NULL, in, NULL) != 1)
                return -EIO;

        dst = out->data + out->len;
        if (aad_size > 0 && EVP_DecryptUpdate(ctx, NULL, &l, aad, (int) aad_size) != 1)
                goto fail_io;
        if (ct > 0 && (EVP_DecryptUpdate(ctx, dst, &l, in + SE_AESGCM_NONCE_SIZE, (int) ct) != 1 || (size_t) l != ct))
                goto fail_io;
        memcpy(tag, in + n - SE_AESGCM_TAG_SIZE, sizeof(tag));
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) != 1)
                goto fail_io;
        if (EVP_DecryptFinal_ex(ctx, dst + ct, &l) != 1) {
                /* the plaintext was produced before the tag was checked */
                explicit_wipe(dst, ct);
                *ret_err = SE_CIPHER_GCM_AUTH;
                return -ENOKEY;
        }

        out->len += ct;
        out->data[out->len] = 0;
        return 0;

fail_io:
        explicit_wipe(dst, ct);
        return -EIO;
}

const se_cipher_ops se_cipher_aesgcm = {
        .type = SE_PROVIDER_AESGCM,
        .iv_size = SE_AESGCM_NONCE_SIZE,
        .encrypt = aesgcm_encrypt,
        .decrypt = aesgcm_decrypt,
};
