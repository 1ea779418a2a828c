/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"

/* Key material in a parsed config: wiped from the generic tree, and replaced by REDACTED in the
 * text of an error message that echoes the file, as kube-apiserver does. */

static void wipe_walk(json_object *o, unsigned depth, size_t *budget) {
        if (!o || depth > SE_CONFIG_MAX_DEPTH + 1 || *budget == 0)
                return;
        (*budget)--;
        if (json_object_is_type(o, json_type_array)) {
                size_t n = json_object_array_length(o);
                for (size_t i = 0; i < n; i++)
                        wipe_walk(json_object_array_get_idx(o, i), depth + 1, budget);
                return;
        }
        if (!json_object_is_type(o, json_type_object))
                return;
        json_object_object_foreach(o, k, v) {
                if (streq(k, "secret") && v && json_object_is_type(v, json_type_string))
                        explicit_wipe((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
                else
                        wipe_walk(v, depth + 1, budget);
        }
}

void se_json_wipe_secrets(json_object *o) {
        size_t budget = 4 * SE_CONFIG_MAX_NODES;

        wipe_walk(o, 0, &budget);
}

typedef struct outbuf {
        char *s;
        size_t len, cap;
        bool oom;
} outbuf;

static void out_add(outbuf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 256);
                char *p = realloc(b->s, cap);

                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
}

/* Replaces every occurrence of needle (nlen > 0 bytes, NUL bytes allowed) in b by REDACTED. */
static void replace_all(outbuf *b, const char *needle, size_t nlen) {
        outbuf o = {};
        const char *p = b->s, *end = b->s + b->len, *m;

        if (b->oom || !b->s || nlen == 0)
                return;
        while ((m = memmem(p, (size_t) (end - p), needle, nlen))) {
                out_add(&o, p, (size_t) (m - p));
                out_add(&o, "REDACTED", STRLEN("REDACTED"));
                p = m + nlen;
        }
        out_add(&o, p, (size_t) (end - p));
        free(b->s);
        *b = o;
}

static void collect_secrets(json_object *o, unsigned depth, size_t *budget, outbuf *out) {
        if (!o || depth > SE_CONFIG_MAX_DEPTH + 1 || *budget == 0 || out->oom)
                return;
        (*budget)--;
        if (json_object_is_type(o, json_type_array)) {
                size_t n = json_object_array_length(o);
                for (size_t i = 0; i < n; i++)
                        collect_secrets(json_object_array_get_idx(o, i), depth + 1, budget, out);
                return;
        }
        if (!json_object_is_type(o, json_type_object))
                return;
        json_object_object_foreach(o, k, v) {
                /* tree keys are C strings without NUL bytes (the front ends refuse others) */
                if (streq(k, "secret") && v && json_object_is_type(v, json_type_string) &&
                    json_object_get_string_len(v) >= 4)
                        replace_all(out, json_object_get_string(v), (size_t) json_object_get_string_len(v));
                else
                        collect_secrets(v, depth + 1, budget, out);
        }
}

/* strchr(set, c) also finds the terminator when c is a NUL byte, which the file may hold. */
static bool in_set(char c, const char *set) {
        return c != '\0' && strchr(set, c);
}

static bool secret_key_at(const char *d, size_t size, size_t i, size_t *ret_value) {
        size_t k = i + STRLEN("secret");

        if (size - i < STRLEN("secret") || !strneq(d + i, "secret", STRLEN("secret")))
                return false;
        if (i > 0 && !in_set(d[i - 1], " \t\r\n{,\"'-?"))
                return false;
        if (k < size && (d[k] == '"' || d[k] == '\''))
                k++;
        while (k < size && (d[k] == ' ' || d[k] == '\t'))
                k++;
        if (k >= size || d[k] != ':')
                return false;
        k++;
        while (k < size && (d[k] == ' ' || d[k] == '\t'))
                k++;
        *ret_value = k;
        return true;
}

char *se_config_redact(const char *d, size_t size, json_object *root) {
        outbuf b = {};
        size_t i = 0, budget = 4 * SE_CONFIG_MAX_NODES;

        /* textual pass: the value after every `secret:` key */
        while (i < size) {
                size_t k, m;

                if (!secret_key_at(d, size, i, &k)) {
                        out_add(&b, d + i, 1);
                        i++;
                        continue;
                }
                out_add(&b, d + i, k - i);
                if (k >= size || in_set(d[k], "\r\n#|>")) {
                        i = k;
                        continue;
                }
                if (d[k] == '"' || d[k] == '\'') {
                        char q = d[k];

                        for (m = k + 1; m < size && d[m] != q; m++)
                                if (q == '"' && d[m] == '\\')
                                        m++;
                        out_add(&b, &q, 1);
                        out_add(&b, "REDACTED", STRLEN("REDACTED"));
                        if (m < size)
                                out_add(&b, &q, 1);
                        i = m < size ? m + 1 : size;
                        continue;
                }
                for (m = k; m < size && !in_set(d[m], "\r\n,}]") && !(d[m] == '#' && in_set(d[m - 1], " \t")); m++)
                        ;
                i = m;
                while (m > k && (d[m - 1] == ' ' || d[m - 1] == '\t'))
                        m--;
                out_add(&b, "REDACTED", STRLEN("REDACTED"));
                out_add(&b, d + m, i - m);
        }
        if (!b.s)
                out_add(&b, "", 0);
        if (b.oom) {
                free(b.s);
                return NULL;
        }

        /* and every secret the tree holds, wherever the text has it (multi-line values) */
        collect_secrets(root, 0, &budget, &b);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}
