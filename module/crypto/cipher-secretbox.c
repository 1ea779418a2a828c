/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "cipher.h"
#include "macro.h"

/* kube-apiserver's secretbox: nonce(24) ‖ NaCl secretbox.Seal (Poly1305 tag(16) ‖ XSalsa20
 * ciphertext), which is libsodium's crypto_secretbox_easy layout. */

static int secretbox_encrypt(se_cipher_key *k, const uint8_t *nonce, const uint8_t *aad, size_t aad_size,
                             const uint8_t *in, size_t n, se_buf *out) {
        size_t total = SE_SECRETBOX_NONCE_SIZE + SE_SECRETBOX_MAC_SIZE + n;
        uint8_t *dst;
        int r;

        if (n > SE_CIPHER_VALUE_MAX)
                return -E2BIG;
        r = se_buf_reserve(out, total);
        if (r < 0)
                return r;

        dst = out->data + out->len;
        memcpy(dst, nonce, SE_SECRETBOX_NONCE_SIZE);
        if (crypto_secretbox_easy(dst + SE_SECRETBOX_NONCE_SIZE, in, n, nonce, k->key) != 0) {
                explicit_wipe(dst, total);
                return -EIO;
        }

        out->len += total;
        out->data[out->len] = 0;
        return 0;
}

static int secretbox_decrypt(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n,
                             se_buf *out, se_cipher_err *ret_err) {
        size_t pt;
        uint8_t *dst;
        int r;

        if (n < SE_SECRETBOX_NONCE_SIZE + SE_SECRETBOX_MAC_SIZE) {
                *ret_err = SE_CIPHER_SHORT;
                return -EBADMSG;
        }
        pt = n - SE_SECRETBOX_NONCE_SIZE - SE_SECRETBOX_MAC_SIZE;
        if (pt > SE_CIPHER_VALUE_MAX)
                return -E2BIG;
        r = se_buf_reserve(out, pt);
        if (r < 0)
                return r;

        dst = out->data + out->len;
        if (crypto_secretbox_open_easy(dst, in + SE_SECRETBOX_NONCE_SIZE, n - SE_SECRETBOX_NONCE_SIZE, in, k->key) !=
            0) {
                explicit_wipe(dst, pt);
                *ret_err = SE_CIPHER_SECRETBOX_AUTH;
                return -ENOKEY;
        }

        out->len += pt;
        out->data[out->len] = 0;
        return 0;
}

const se_cipher_ops se_cipher_secretbox = {
        .type = SE_PROVIDER_SECRETBOX,
        .iv_size = SE_SECRETBOX_NONCE_SIZE,
        .encrypt = secretbox_encrypt,
        .decrypt = secretbox_decrypt,
};
