/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "macro.h"

_public_ void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
        *fd = -1;
}

_public_ void fclosep(void *f) {
        FILE **fp = f;

        if (*fp)
                fclose(*fp);
        *fp = NULL;
}

_public_ void explicit_wipe(void *p, size_t n) {
        if (p && n > 0)
                OPENSSL_cleanse(p, n);
}

_public_ void erase_and_freep(void *p) {
        char **s = p;

        if (*s) {
                explicit_wipe(*s, strlen(*s));
                free(*s);
                *s = NULL;
        }
}
