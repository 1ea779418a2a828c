/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "cipher.h"
#include "macro.h"

/* The ciphers the envelope reads and writes, by provider type: adding one is a cipher-*.c file
 * with its se_cipher_ops and a line here. */
static const se_cipher_ops *const ciphers[] = {
        &se_cipher_aescbc,
        &se_cipher_aesgcm,
        &se_cipher_secretbox,
};

const se_cipher_ops *se_cipher_ops_for(se_provider_type type) {
        for (size_t i = 0; i < ELEMENTSOF(ciphers); i++)
                if (ciphers[i]->type == type)
                        return ciphers[i];
        return NULL;
}

size_t se_cipher_iv_size(se_provider_type type) {
        const se_cipher_ops *c = se_cipher_ops_for(type);

        return c ? c->iv_size : 0;
}

int se_cipher_encrypt(se_cipher_key *k, const uint8_t *iv, const uint8_t *aad, size_t aad_size, const uint8_t *in,
                      size_t n, se_buf *out) {
        const se_cipher_ops *c = se_cipher_ops_for(k->type);

        return c ? c->encrypt(k, iv, aad, aad_size, in, n, out) : -EINVAL;
}

int se_cipher_decrypt(se_cipher_key *k, const uint8_t *aad, size_t aad_size, const uint8_t *in, size_t n, se_buf *out,
                      se_cipher_err *ret_err) {
        const se_cipher_ops *c = se_cipher_ops_for(k->type);

        return c ? c->decrypt(k, aad, aad_size, in, n, out, ret_err) : -EINVAL;
}
