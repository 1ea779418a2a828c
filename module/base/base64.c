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

/* each alphabet character's value + 1; 0: not in the alphabet */
static const uint8_t decode_table[256] = {
        ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
        ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
        ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
        ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
        ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
        ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
        ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
        ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64};

static int decode_char(char c) {
        return (int) decode_table[(unsigned char) c] - 1;
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

                /* four alphabet characters at a quad's start: three bytes at once */
                if (quad == 0 && pad == 0 && len - i >= 4) {
                        const uint8_t *q = (const uint8_t *) text + i;
                        unsigned a = decode_table[q[0]], b = decode_table[q[1]], d = decode_table[q[2]],
                                 f = decode_table[q[3]];

                        if (a && b && d && f) {
                                uint32_t w = (a - 1) << 18 | (b - 1) << 12 | (d - 1) << 6 | (f - 1);

                                out[n++] = (uint8_t) (w >> 16);
                                out[n++] = (uint8_t) (w >> 8);
                                out[n++] = (uint8_t) w;
                                i += 3;
                                continue;
                        }
                }

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
