/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

#include "cipher.h"
#include "macro.h"

/* kube-apiserver's aescbc: IV(16) ‖ AES-CBC(PKCS#7(plaintext)), no integrity. Padding is done here
 * rather than by EVP so that reads reject exactly what kube rejects, with its messages. */

static int aescbc_encrypt(se_cipher_key *k, const uint8_t *iv, const uint8_t *aad, size_t aad_size, const uint8_t *in,
                          size_t n, se_buf *out) {
        size_t full = n / SE_AES_BLOCK_SIZE * SE_AES_BLOCK_SIZE, rest = n - full, total;
        uint8_t last[SE_AES_BLOCK_SIZE];
        EVP_CIPHER_CTX *ctx;
        uint8_t *dst;
        int l = 0, r;

        if (n > SE_CIPHER_VALUE_MAX)
                return -E2BIG;
        total = SE_AESCBC_IV_SIZE + full + SE_AES_BLOCK_SIZE;
        r = se_buf_reserve(out, total);
        if (r < 0)
                return r;
        ctx = se_cipher_ctx(k, true);
        if (!ctx)
                return -ENOMEM;
        if (EVP_EncryptInit_ex2(ctx, NULL, NULL, iv, NULL) != 1)
                return -EIO;

        dst = out->data + out->len;
        memcpy(dst, iv, SE_AESCBC_IV_SIZE);
        if (full > 0 &&
            (EVP_EncryptUpdate(ctx, dst + SE_AESCBC_IV_SIZE, &l, in, (int) full) != 1 || (size_t) l != full))
                goto fail;

        /* pad = 1..16: a block-aligned value gets a whole block of 0x10 */
        if (rest > 0)
                memcpy(last, in + full, rest);
        memset(last + rest, (int) (SE_AES_BLOCK_SIZE - rest), SE_AES_BLOCK_SIZE - rest);
        r = EVP_EncryptUpdate(ctx, dst + SE_AESCBC_IV_SIZE + full, &l, last, SE_AES_BLOCK_SIZE);
        explicit_wipe(last, sizeof(last));
        if (r != 1 || l != SE_AES_BLOCK_SIZE)
                goto fail;

        out->len += total;
        out->data[out->len] = 0;
        return 0;

fail:
        explicit_wipe(dst, total);
        return -EIO;
}

static int aescbc_decrypt(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n,
                          se_buf *out, se_cipher_err *ret_err) {
        EVP_CIPHER_CTX *ctx;
        size_t body, pad;
        uint8_t *dst, diff = 0;
        int l = 0, r;

        if (n < SE_AESCBC_IV_SIZE) {
                *ret_err = SE_CIPHER_SHORT;
                return -EBADMSG;
        }
        body = n - SE_AESCBC_IV_SIZE;
        if (body % SE_AES_BLOCK_SIZE != 0) {
                *ret_err = SE_CIPHER_NOT_BLOCKS;
                return -EBADMSG;
        }
        if (body == 0) {
                /* Go reads result[-1] and panics here */
                *ret_err = SE_CIPHER_IV_ONLY;
                return -EBADMSG;
        }
        if (body > SE_CIPHER_VALUE_MAX)
                return -E2BIG;

        r = se_buf_reserve(out, body);
        if (r < 0)
                return r;
        ctx = se_cipher_ctx(k, false);
        if (!ctx)
                return -ENOMEM;
        if (EVP_DecryptInit_ex2(ctx, NULL, NULL, in, NULL) != 1)
                return -EIO;

        dst = out->data + out->len;
        if (EVP_DecryptUpdate(ctx, dst, &l, in + SE_AESCBC_IV_SIZE, (int) body) != 1 || (size_t) l != body) {
                explicit_wipe(dst, body);
                return -EIO;
        }

        /* Like Go: any pad value up to the whole decrypted length is accepted, not just 1..16. */
        pad = dst[body - 1];
        if (pad == 0 || pad > body) {
                explicit_wipe(dst, body);
                *ret_err = SE_CIPHER_PKCS7_DATA;
                return -ENOKEY;
        }
        for (size_t i = body - pad; i < body; i++)
                diff |= (uint8_t) (dst[i] ^ pad);
        if (diff != 0) {
                explicit_wipe(dst, body);
                *ret_err = SE_CIPHER_PKCS7_PADDING;
                return -ENOKEY;
        }

        explicit_wipe(dst + body - pad, pad);
        out->len += body - pad;
        out->data[out->len] = 0;
        return 0;
}

const se_cipher_ops se_cipher_aescbc = {
        .type = SE_PROVIDER_AESCBC,
        .iv_size = SE_AESCBC_IV_SIZE,
        .encrypt = aescbc_encrypt,
        .decrypt = aescbc_decrypt,
};
