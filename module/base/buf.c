/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"

_public_ int se_buf_reserve(se_buf *b, size_t extra) {
        size_t max = b->max ? b->max : SE_BUF_DEFAULT_MAX, want, ncap;
        uint8_t *n;

        if (extra > max || b->len > max - extra)
                return -E2BIG;
        want = b->len + extra + 1; /* room for a NUL so text users can treat data as a string */
        if (want <= b->cap)
                return 0;

        ncap = b->cap ? b->cap : 256;
        while (ncap < want)
                ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;

        /* Not realloc(): the old block may hold plaintext and must be wiped before it is freed. */
        n = malloc(ncap);
        if (!n)
                return -ENOMEM;
        if (b->data) {
                memcpy(n, b->data, b->len);
                explicit_wipe(b->data, b->cap);
                free(b->data);
        }
        b->data = n;
        b->cap = ncap;
        return 0;
}

_public_ int se_buf_append(se_buf *b, const void *p, size_t n) {
        int r = se_buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

_public_ int se_buf_append_str(se_buf *b, const char *s) {
        return se_buf_append(b, s, strlen(s));
}

_public_ void se_buf_clear(se_buf *b) {
        if (b->data)
                explicit_wipe(b->data, b->len);
        b->len = 0;
}

_public_ void se_buf_free(se_buf *b) {
        size_t max = b->max;

        if (b->data) {
                explicit_wipe(b->data, b->cap);
                free(b->data);
        }
        *b = (se_buf){.max = max};
}

_public_ int se_buf_take_str(se_buf *b, int r, char **ret) {
        if (r >= 0)
                r = se_buf_append(b, "", 1);
        if (r < 0) {
                se_buf_free(b);
                return r;
        }
        *ret = (char *) b->data;
        *b = (se_buf){.max = b->max};
        return 0;
}

/* Formats straight into the buffer: no temporary copy that would need wiping. */
_public_ int se_buf_printf(se_buf *b, const char *fmt, ...) {
        va_list ap, aq;
        int n, r;

        va_start(ap, fmt);
        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0) {
                va_end(ap);
                return -EINVAL;
        }
        r = se_buf_reserve(b, (size_t) n);
        if (r >= 0) {
                (void) vsnprintf((char *) b->data + b->len, (size_t) n + 1, fmt, ap);
                b->len += (size_t) n;
        }
        va_end(ap);
        return r;
}
