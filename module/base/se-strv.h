/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* NULL-terminated string lists, as systemd's strv. */

/* Appends a copy of s; *n is the current length (kept in step). */
int se_strv_push(char ***l, size_t *n, const char *s);
/* Appends s itself (freed on failure; NULL s is -ENOMEM, for strdup()/asprintf() results). */
int se_strv_consume(char ***l, size_t *n, char *s);
char **se_strv_free(char **l);
bool se_strv_contains(char *const *l, const char *s);
size_t se_strv_length(char *const *l);

static inline void se_strv_freep(char ***l) {
        *l = se_strv_free(*l);
}
#define _cleanup_strv_free_ __attribute__((cleanup(se_strv_freep)))
