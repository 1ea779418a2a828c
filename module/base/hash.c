/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sodium.h>

#include "macro.h"
#include "se-util.h"

/* libsodium's SHA-256, not OpenSSL's EVP: the first EVP digest initialises OpenSSL's provider
 * machinery (about five million instructions), which the hook would pay on every server start
 * when there is nothing else to do. */
_public_ int se_sha256_hex(const void *data, size_t size, char ret[static SE_SHA256_HEX_SIZE]) {
        unsigned char md[crypto_hash_sha256_BYTES];

        if (crypto_hash_sha256(md, data, size) != 0)
                return -EIO;
        sodium_bin2hex(ret, SE_SHA256_HEX_SIZE, md, sizeof(md));
        return 0;
}
