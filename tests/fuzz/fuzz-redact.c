/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for redaction by field (module/base/redact.c), which reads error text that may
 * echo any file: the spans it finds are in order, do not overlap and stay inside the input, and
 * masking changes nothing but bytes inside them (to '*') and keeps the length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "se-redact.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        se_redact_span *v = NULL;
        size_t n = 0, len;
        char *text;

        if (se_redact_find((const char *) data, size, &v, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (v[i].start >= v[i].end || v[i].end > size || (i > 0 && v[i].start <= v[i - 1].end))
                        abort();
        free(v);

        /* the in-place masking, over the text up to the first NUL byte */
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        len = strlen(text);
        (void) se_redact_fields(text);
        if (strlen(text) != len)
                abort();
        if (se_redact_find((const char *) data, len, &v, &n) >= 0) {
                size_t at = 0;

                for (size_t i = 0; i <= n; i++) {
                        size_t end = i < n ? v[i].start : len;

                        if (memcmp(text + at, data + at, end - at) != 0)
                                abort(); /* outside every value: untouched */
                        at = i < n ? v[i].end : len;
                }
                free(v);
        }
        free(text);
        return 0;
}
