/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "store-internal.h"

/* The key-value records every backend returns, and key-range arithmetic they share. */

_public_ void se_kv_done(se_kv *kv) {
        if (!kv)
                return;
        free(kv->key);
        free(kv->value);
        *kv = (se_kv){};
}

_public_ void se_kv_list_done(se_kv_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n_items; i++)
                se_kv_done(&l->items[i]);
        free(l->items);
        *l = (se_kv_list){};
}

int se_kv_list_grow(se_kv_list *l, size_t *cap, size_t limit) {
        size_t ncap;
        se_kv *grown;

        if (l->n_items < *cap)
                return 0;
        ncap = *cap ? *cap * 2 : MIN(limit, 64u);
        grown = reallocarray(l->items, ncap, sizeof(se_kv));
        if (!grown)
                return -ENOMEM;
        l->items = grown;
        *cap = ncap;
        return 0;
}

char *se_prefix_range_end(const char *prefix) {
        size_t n = strlen(prefix);
        char *end = strdup(prefix);

        if (!end)
                return NULL;
        while (n > 0) {
                unsigned char c = (unsigned char) end[n - 1];
                if (c < 0xff) {
                        end[n - 1] = (char) (c + 1);
                        end[n] = '\0';
                        return end;
                }
                n--;
        }
        free(end);
        return NULL;
}

char *se_like_prefix_pattern(const char *prefix) {
        size_t n = strlen(prefix);
        char *p = malloc(n * 2 + 2), *q = p;

        if (!p)
                return NULL;
        for (const char *c = prefix; *c; c++) {
                if (*c == '\\' || *c == '%' || *c == '_')
                        *q++ = '\\';
                *q++ = *c;
        }
        *q++ = '%';
        *q = '\0';
        return p;
}
