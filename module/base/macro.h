/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Private helpers shared by the library, the executables and the tests. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define _public_       __attribute__((visibility("default")))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_       __attribute__((unused))
#define _noreturn_     __attribute__((noreturn))
#define _pure_         __attribute__((pure))
#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _likely_(x)    __builtin_expect(!!(x), 1)
#define _unlikely_(x)  __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b)     ((a) < (b) ? (a) : (b))
#define MAX(a, b)     ((a) > (b) ? (a) : (b))
#define STRLEN(s)     (sizeof(s) - 1)

#define streq(a, b)     (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)
#define isempty(s)      (!(s) || (s)[0] == '\0')

/* Move ownership out of a _cleanup_ variable. */
#define TAKE_PTR(p)                                                                                                   \
        ({                                                                                                            \
                __typeof__(p) _tp_ = (p);                                                                             \
                (p) = NULL;                                                                                           \
                _tp_;                                                                                                 \
        })

#define TAKE_FD(fd)                                                                                                   \
        ({                                                                                                            \
                int _tfd_ = (fd);                                                                                     \
                (fd) = -1;                                                                                            \
                _tfd_;                                                                                                \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

void closep(int *fd);
#define _cleanup_close_ _cleanup_(closep)

void fclosep(void *f);
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Wipes then frees a NUL-terminated string holding key material. */
void erase_and_freep(void *p);
#define _cleanup_erase_free_ _cleanup_(erase_and_freep)

void explicit_wipe(void *p, size_t n);

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                                       \
        static inline void func##p(type *p) {                                                                         \
                if (*p)                                                                                               \
                        *p = func(*p);                                                                                \
        }

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* strdup() that accepts NULL. */
static inline char *strdup_null(const char *s) {
        return s ? strdup(s) : NULL;
}

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}
