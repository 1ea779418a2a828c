/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>

#include "macro.h"
#include "se-util.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

_public_ int se_base64_encode(const void *data, size_t size, char **ret) {
        const uint8_t *in = data;
        char *out, *p;

        if (size > (SIZE_MAX - 1) / 4 * 3 - 3)
                return -E2BIG;
        out = p = malloc((size + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < size; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16;
                size_t left = size - i;

                if (left > 1)
                        v |= (uint32_t) in[i + 1] << 8;
                if (left > 2)
                        v |= in[i + 2];
                *p++ = alphabet[(v >> 18) & 63];
                *p++ = alphabet[(v >> 12) & 63];
                *p++ = left > 1 ? alphabet[(v >> 6) & 63] : '=';
                *p++ = left > 2 ? alphabet[v & 63] : '=';
        }
        *p = 0;
        *ret = out;
        return 0;
}

static int decode_char(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Go's base64.StdEncoding.DecodeString: CR/LF skipped anywhere, '=' padding mandatory, nothing
 * but newlines after the padding; non-zero trailing bits accepted. Output is wiped on failure
 * because it is usually key material. */
_public_ int se_base64_decode(const char *text, size_t len, uint8_t **ret, size_t *ret_size) {
        uint8_t *out;
        size_t n = 0;
        uint32_t acc = 0;
        unsigned quad = 0, pad = 0;
        int r = -EINVAL;

        out = malloc(len / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len; i++) {
                char c = text[i];
                int v;

                if (c == '\r' || c == '\n')
                        continue;
                if (pad > 0) {
                        /* after the first '=', only the rest of the padding may follow */
                        if (c != '=' || quad == 0)
                                goto fail;
                        pad++;
                        quad = (quad + 1) % 4;
                        continue;
                }
                if (c == '=') {
                        if (quad < 2)
                                goto fail;
                        pad = 1;
                        quad = (quad + 1) % 4;
                        continue;
                }
                v = decode_char(c);
                if (v < 0)
                        goto fail;
                acc = (acc << 6) | (uint32_t) v;
                if (++quad == 4) {
                        out[n++] = (uint8_t) (acc >> 16);
                        out[n++] = (uint8_t) (acc >> 8);
                        out[n++] = (uint8_t) acc;
                        acc = 0;
                        quad = 0;
                }
        }

        if (pad > 0) {
                if (quad != 0)
                        goto fail;
                /* pad == 1: three data chars were seen; pad == 2: two */
                if (pad == 1) {
                        out[n++] = (uint8_t) (acc >> 10);
                        out[n++] = (uint8_t) (acc >> 2);
                } else if (pad == 2)
                        out[n++] = (uint8_t) (acc >> 4);
                else
                        goto fail;
        } else if (quad != 0)
                goto fail;

        *ret = out;
        *ret_size = n;
        return 0;

fail:
        explicit_wipe(out, len / 4 * 3 + 3);
        free(out);
        return r;
}
