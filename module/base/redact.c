/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "se-redact.h"

/*
 * Redaction by field, not by shape: text that may echo a YAML or JSON file (an error message, a
 * config) has the value of every field named like key material masked, whatever form the value
 * is written in. The scan is textual (the text need not parse) and errs on the side of masking
 * too much: a plain value runs to the end of its line and over every more-indented line after it.
 */

static const char *const secret_fields[] = {"secret"};

#define KEY_MAX 32u

/* Aliases whose anchor is looked up (a scan of the whole text each): more fail the search. */
#define ALIASES_MAX 64u

typedef struct spans {
        se_redact_span *v;
        size_t n, cap;
        unsigned aliases;
        bool oom, too_many;
} spans;

static void span_add(spans *s, size_t start, size_t end) {
        if (s->oom || end <= start)
                return;
        if (s->n == s->cap) {
                size_t cap = MAX(s->cap * 2, 8u);
                se_redact_span *nv = reallocarray(s->v, cap, sizeof(*nv));

                if (!nv) {
                        s->oom = true;
                        return;
                }
                s->v = nv;
                s->cap = cap;
        }
        s->v[s->n++] = (se_redact_span){start, end};
}

static bool is_secret_name(const char *k, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(secret_fields); i++)
                if (strlen(secret_fields[i]) == n && strncasecmp(k, secret_fields[i], n) == 0)
                        return true;
        return false;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool is_break(char c) {
        return c == '\n' || c == '\r';
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* The closing quote of the quoted string opening at d[i], size if it has none. */
static size_t quoted_close(const char *d, size_t size, size_t i) {
        char q = d[i];

        for (size_t m = i + 1; m < size; m++) {
                if (q == '"' && d[m] == '\\') {
                        m++;
                        continue;
                }
                if (d[m] != q)
                        continue;
                if (q == '\'' && m + 1 < size && d[m + 1] == '\'') {
                        m++; /* '' inside single quotes */
                        continue;
                }
                return m;
        }
        return size;
}

/* Index after the quoted string opening at d[i]. */
static size_t quoted_end(const char *d, size_t size, size_t i) {
        size_t c = quoted_close(d, size, i);

        return c < size ? c + 1 : size;
}

/* The quoted string at d[i] decoded (JSON/YAML escapes, up to KEY_MAX bytes; a non-ASCII escape
 * becomes 0xff, which matches no name). Returns its end, and the name in buf. */
static size_t quoted_name(const char *d, size_t size, size_t i, char buf[static KEY_MAX + 1], size_t *ret_len) {
        /* a name is short even escaped (\U0000XXXX per byte): look no further, so that the text's
         * quotes (apostrophes among them) cost a bounded scan each */
        size_t close = quoted_close(d, MIN(size, i + 1 + 10 * (KEY_MAX + 1)), i), n = 0;
        char q = d[i];

        if (close >= MIN(size, i + 1 + 10 * (KEY_MAX + 1))) {
                *ret_len = KEY_MAX + 1; /* no name */
                return i + 1;
        }

        for (size_t m = i + 1; m < close && n <= KEY_MAX; m++) {
                char c = d[m];

                if (q == '\'' && c == '\'') {
                        m++; /* '' */
                } else if (q == '"' && c == '\\' && m + 1 < close) {
                        unsigned v = 0;
                        size_t digits = d[m + 1] == 'x' ? 2 : d[m + 1] == 'u' ? 4 : d[m + 1] == 'U' ? 8 : 0;

                        m++;
                        c = d[m];
                        if (digits > 0) {
                                bool ok = m + digits < close;

                                for (size_t j = 1; ok && j <= digits; j++) {
                                        int h = hexval(d[m + j]);

                                        ok = h >= 0;
                                        v = v * 16 + (unsigned) (h < 0 ? 0 : h);
                                }
                                if (ok)
                                        m += digits;
                                c = ok && v > 0 && v < 0x80 ? (char) v : (char) 0xff;
                        }
                }
                buf[n++] = c;
        }
        *ret_len = n;
        return close < size ? close + 1 : size;
}

/* The column of d[i] in its line, and the line's start. */
static size_t column(const char *d, size_t i, size_t *ret_line) {
        size_t l = i;

        while (l > 0 && !is_break(d[l - 1]))
                l--;
        if (ret_line)
                *ret_line = l;
        return i - l;
}

/* From the start of line l: the following lines that are blank or indented more than col. Returns
 * the end of the last such line (before its line break), or 0 when there is none. */
static size_t indented_lines(const char *d, size_t size, size_t l, size_t col) {
        size_t end = 0;

        while (l < size) {
                size_t m = l, indent;

                while (m < size && is_blank(d[m]))
                        m++;
                indent = m - l;
                if (m < size && !is_break(d[m]) && indent <= col)
                        break;
                while (m < size && !is_break(d[m]))
                        m++;
                if (indent > col)
                        end = m;
                if (m < size && d[m] == '\r' && m + 1 < size && d[m + 1] == '\n')
                        m++;
                l = m + 1;
        }
        return end;
}

static size_t line_end(const char *d, size_t size, size_t i) {
        while (i < size && !is_break(d[i]))
                i++;
        return i;
}

static size_t next_line(const char *d, size_t size, size_t i) {
        i = line_end(d, size, i);
        if (i < size && d[i] == '\r' && i + 1 < size && d[i + 1] == '\n')
                i++;
        return i < size ? i + 1 : size;
}

/* Matching close of the flow collection opening at d[i]. */
static size_t flow_end(const char *d, size_t size, size_t i) {
        unsigned depth = 0;

        for (size_t m = i; m < size; m++) {
                if (d[m] == '"' || d[m] == '\'') {
                        m = quoted_end(d, size, m) - 1;
                        continue;
                }
                if (d[m] == '{' || d[m] == '[')
                        depth++;
                else if ((d[m] == '}' || d[m] == ']') && --depth == 0)
                        return m + 1;
        }
        return size;
}

static size_t token_end(const char *d, size_t size, size_t i) {
        while (i < size && !is_blank(d[i]) && !is_break(d[i]) && !strchr(",]}", d[i]))
                i++;
        return i;
}

static void find_anchor(const char *d, size_t size, const char *name, size_t n, spans *s, unsigned depth);

/* The value that starts at or after k (just past the key's colon); col is the key's column, flow
 * whether the key sits in a flow mapping (its plain values end at , } ]). */
static void value_at(const char *d, size_t size, size_t k, size_t col, bool flow, spans *s, unsigned depth) {
        size_t end;

        while (k < size && is_blank(d[k]))
                k++;
        /* properties: a tag, an anchor */
        while (k < size && (d[k] == '!' || d[k] == '&')) {
                k = token_end(d, size, k);
                while (k < size && is_blank(d[k]))
                        k++;
        }
        if (k >= size)
                return;
        if (is_break(d[k]) || d[k] == '#') {
                /* the value on a later line: JSON's next token, or YAML's more-indented lines */
                size_t l = next_line(d, size, k), m = l;

                while (m < size && (is_blank(d[m]) || is_break(d[m])))
                        m++;
                if (m < size && strchr("\"'{[", d[m]))
                        value_at(d, size, m, col, flow, s, depth);
                else
                        span_add(s, l, indented_lines(d, size, l, col));
                return;
        }
        switch (d[k]) {
        case '"':
        case '\'':
                span_add(s, k + 1, quoted_close(d, size, k));
                return;
        case '{':
        case '[':
                span_add(s, k, flow_end(d, size, k));
                return;
        case '|':
        case '>':
                /* a block scalar: the header and every more-indented line after it */
                span_add(s, k, MAX(line_end(d, size, k), indented_lines(d, size, next_line(d, size, k), col)));
                return;
        case '*': {
                end = token_end(d, size, k);
                span_add(s, k + 1, end);
                if (depth == 0 && ++s->aliases > ALIASES_MAX)
                        s->too_many = true;
                else if (depth == 0)
                        find_anchor(d, size, d + k + 1, end - k - 1, s, depth + 1);
                return;
        }
        default:
                break;
        }
        if (flow) {
                for (end = k; end < size && !is_break(d[end]) && !strchr(",]}", d[end]); end++)
                        ;
        } else {
                end = line_end(d, size, k);
                end = MAX(end, indented_lines(d, size, next_line(d, size, k), col));
        }
        while (end > k && is_blank(d[end - 1]))
                end--;
        span_add(s, k, end);
}

/* The value of anchor &name (the target of an alias used as a secret). */
static void find_anchor(const char *d, size_t size, const char *name, size_t n, spans *s, unsigned depth) {
        if (n == 0)
                return;
        for (size_t i = 0; i + n < size; i++) {
                size_t line, e;

                if (d[i] != '&' || memcmp(d + i + 1, name, n) != 0)
                        continue;
                e = i + 1 + n;
                if (e < size && !is_blank(d[e]) && !is_break(d[e]) && !strchr(",]}", d[e]))
                        continue;
                (void) column(d, i, &line);
                {
                        size_t c = line;

                        while (c < i && (is_blank(d[c]) || d[c] == '-'))
                                c++;
                        value_at(d, size, e, c - line, false, s, depth);
                }
        }
}

/* Whether a key ends at e (before optional blanks and the colon); returns the index after the
 * colon, or 0. */
static size_t colon_after(const char *d, size_t size, size_t e) {
        while (e < size && is_blank(d[e]))
                e++;
        return e < size && d[e] == ':' ? e + 1 : 0;
}

/* Whether the key at i sits in a flow mapping: the previous token is { or ,. */
static bool in_flow(const char *d, size_t i) {
        while (i > 0 && (is_blank(d[i - 1]) || is_break(d[i - 1])))
                i--;
        return i > 0 && (d[i - 1] == '{' || d[i - 1] == ',');
}

static int cmp_span(const void *a, const void *b) {
        const se_redact_span *x = a, *y = b;

        return x->start < y->start ? -1 : x->start > y->start;
}

/* The end of the spans added since n_before (0 if none). */
static size_t spans_end(const spans *s, size_t n_before) {
        size_t end = 0;

        for (size_t j = n_before; j < s->n; j++)
                end = MAX(end, s->v[j].end);
        return end;
}

_public_ int se_redact_find(const char *d, size_t size, se_redact_span **ret, size_t *ret_n) {
        spans s = {};
        size_t n = 0, line = 0;

        for (size_t i = 0; i < size && !s.oom && !s.too_many; i++) {
                char name[KEY_MAX + 1];
                size_t len, end, k, before = s.n;

                if (i > 0 && is_break(d[i - 1]))
                        line = i;
                if (d[i] == '"' || d[i] == '\'') {
                        end = quoted_name(d, size, i, name, &len);
                        k = colon_after(d, size, end);
                        if (k > 0 && is_secret_name(name, len))
                                value_at(d, size, k, i - line, in_flow(d, i), &s, 0);
                        /* not skipped: a quote may be prose's apostrophe, and masking too much is safe */
                } else if (i == 0 || strchr(" \t\r\n{,[?", d[i - 1])) {
                        for (len = 0;
                             i + len < size && len <= KEY_MAX &&
                             ((d[i + len] >= 'a' && d[i + len] <= 'z') || (d[i + len] >= 'A' && d[i + len] <= 'Z'));
                             len++)
                                ;
                        if (len > 0 && is_secret_name(d + i, len) && (k = colon_after(d, size, i + len)) > 0)
                                value_at(d, size, k, i - line, in_flow(d, i), &s, 0);
                }
                /* on past the value: what it holds is masked anyway, and each byte is looked at once */
                end = spans_end(&s, before);
                if (end > i + 1) {
                        for (size_t j = i + 1; j < end; j++)
                                if (is_break(d[j - 1]))
                                        line = j;
                        i = end - 1;
                }
        }
        if (s.too_many) {
                free(s.v);
                return -E2BIG;
        }
        if (s.oom) {
                free(s.v);
                return -ENOMEM;
        }
        /* in order, overlaps merged */
        if (s.n > 1)
                qsort(s.v, s.n, sizeof(*s.v), cmp_span);
        for (size_t i = 0; i < s.n; i++) {
                if (n > 0 && s.v[i].start <= s.v[n - 1].end)
                        s.v[n - 1].end = MAX(s.v[n - 1].end, s.v[i].end);
                else
                        s.v[n++] = s.v[i];
        }
        *ret = s.v;
        *ret_n = n;
        return 0;
}

_public_ size_t se_redact_fields(char *text) {
        se_redact_span *v = NULL;
        size_t n = 0, size;

        if (!text)
                return 0;
        size = strlen(text);
        if (se_redact_find(text, size, &v, &n) < 0) {
                /* cannot tell where the values are: nothing of the text may stay */
                for (size_t i = 0; i < size; i++)
                        if (!is_break(text[i]))
                                text[i] = '*';
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                /* already redacted (kube-apiserver's word for it) */
                if (v[i].end - v[i].start == STRLEN("REDACTED") && strneq(text + v[i].start, "REDACTED", 8))
                        continue;
                for (size_t j = v[i].start; j < v[i].end; j++)
                        if (!is_break(text[j]))
                                text[j] = '*';
        }
        free(v);
        return n;
}
