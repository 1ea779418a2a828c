/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"
#include "se-redact.h"

/* Key material in a parsed config: wiped from the generic tree, and replaced by REDACTED in the
 * text of an error message that echoes the file, as kube-apiserver does: by field (se-redact.h),
 * then every secret the tree holds wherever the text still has it verbatim. */

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

char *se_config_redact(const char *d, size_t size, json_object *root) {
        se_redact_span *v = NULL;
        outbuf b = {};
        size_t n = 0, at = 0, budget = 4 * SE_CONFIG_MAX_NODES;
        int r;

        /* by field: the value of every secret, whatever form the file writes it in */
        r = se_redact_find(d, size, &v, &n);
        if (r == -E2BIG)
                return strdup("REDACTED"); /* cannot tell where every value is: none of the file */
        if (r < 0)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                out_add(&b, d + at, v[i].start - at);
                out_add(&b, "REDACTED", STRLEN("REDACTED"));
                at = v[i].end;
        }
        free(v);
        out_add(&b, d + at, size - at);
        if (b.oom) {
                free(b.s);
                return NULL;
        }

        /* and every secret the tree holds, wherever the text still has it */
        collect_secrets(root, 0, &budget, &b);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}
