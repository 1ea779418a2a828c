/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-strv.h"

_public_ int se_strv_consume(char ***l, size_t *n, char *s) {
        char **m;

        if (!s)
                return -ENOMEM;
        m = reallocarray(*l, *n + 2, sizeof(char *));
        if (!m) {
                free(s);
                return -ENOMEM;
        }
        m[(*n)++] = s;
        m[*n] = NULL;
        *l = m;
        return 0;
}

_public_ int se_strv_push(char ***l, size_t *n, const char *s) {
        return se_strv_consume(l, n, strdup(s));
}

_public_ char **se_strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
        return NULL;
}

_public_ bool se_strv_contains(char *const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

_public_ size_t se_strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}
