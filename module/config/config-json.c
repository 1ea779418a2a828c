/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "go-json.h"
#include "macro.h"

/*
 * JSON front end. First Go's encoding/json scanner (checkValid) runs over the whole input, so a
 * syntax error is refused exactly where kube-apiserver refuses it, in Go's words. Then json-c
 * (strict, depth-limited) builds the tree; a second walk over the now known-valid text records
 * each object's keys in written order, duplicates included, because json-c silently keeps only the
 * last duplicate (checked with json-c 0.16). Invalid UTF-8 inside strings is accepted and replaced
 * by U+FFFD, byte by byte, as Go's decoder does: the names we then use are the names
 * kube-apiserver uses.
 */

static void key_order_free(json_object *o, void *userdata) {
        se_key_order *ko = userdata;

        if (!ko)
                return;
        for (size_t i = 0; i < ko->n; i++)
                free(ko->keys[i]);
        free(ko->keys);
        free(ko);
}

const se_key_order *se_json_key_order(json_object *o) {
        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        if (json_object_get_userdata(o) == NULL)
                return NULL;
        return json_object_get_userdata(o);
}

static const char *skip_ws(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

static void put_utf8(char **q, unsigned c) {
        char *o = *q;

        if (c < 0x80)
                *o++ = (char) c;
        else if (c < 0x800) {
                *o++ = (char) (0xC0 | (c >> 6));
                *o++ = (char) (0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
                *o++ = (char) (0xE0 | (c >> 12));
                *o++ = (char) (0x80 | ((c >> 6) & 0x3F));
                *o++ = (char) (0x80 | (c & 0x3F));
        } else {
                *o++ = (char) (0xF0 | (c >> 18));
                *o++ = (char) (0x80 | ((c >> 12) & 0x3F));
                *o++ = (char) (0x80 | ((c >> 6) & 0x3F));
                *o++ = (char) (0x80 | (c & 0x3F));
        }
        *q = o;
}

static int hex4(const char *p, const char *end, unsigned *ret) {
        unsigned v = 0;

        if (end - p < 4)
                return -EBADMSG;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned) (c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

/* Scans a string starting at '"'. With ret, also decodes it (as json-c does: lone surrogates
 * become U+FFFD) and sets *ret_len: "\u0000" decodes to a NUL byte. Rejects raw control characters,
 * which Go's scanner refuses and json-c takes. */
static int scan_string(const char **pp, const char *end, char **ret, size_t *ret_len, char **ret_err) {
        const char *p = *pp + 1;
        const char *close = p;
        _cleanup_free_ char *s = NULL;
        char *q = NULL;

        for (const char *t = p;; t++) {
                if (t >= end)
                        return -EBADMSG;
                if (*t == '"') {
                        close = t;
                        break;
                }
                if (*t == '\\')
                        t++;
                else if ((unsigned char) *t < 0x20) {
                        if (asprintf(ret_err, "invalid character '\\x%02x' in string literal", (unsigned char) *t) < 0)
                                *ret_err = NULL;
                        return -EBADMSG;
                }
        }
        if (ret) {
                /* decoding never lengthens: \uXXXX gives at most 3 bytes, a surrogate pair 4 of 12 */
                s = malloc((size_t) (close - p) + 1);
                if (!s)
                        return -ENOMEM;
                q = s;
        }
        while (*p != '"') {
                if (*p != '\\') {
                        if (q)
                                *q++ = *p;
                        p++;
                        continue;
                }
                p++;
                if (*p == 'u') {
                        unsigned c, c2;

                        if (hex4(p + 1, end, &c) < 0)
                                return -EBADMSG;
                        p += 5;
                        if (c >= 0xD800 && c < 0xDC00) {
                                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, end, &c2) >= 0 &&
                                    c2 >= 0xDC00 && c2 < 0xE000) {
                                        c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
                                        p += 6;
                                } else
                                        c = 0xFFFD;
                        } else if (c >= 0xDC00 && c < 0xE000)
                                c = 0xFFFD;
                        if (q)
                                put_utf8(&q, c);
                        continue;
                }
                if (q) {
                        switch (*p) {
                        case 'b':
                                *q++ = '\b';
                                break;
                        case 'f':
                                *q++ = '\f';
                                break;
                        case 'n':
                                *q++ = '\n';
                                break;
                        case 'r':
                                *q++ = '\r';
                                break;
                        case 't':
                                *q++ = '\t';
                                break;
                        default:
                                *q++ = *p;
                        }
                }
                p++;
        }
        if (q) {
                *q = '\0';
                *ret_len = (size_t) (q - s);
                *ret = TAKE_PTR(s);
        }
        *pp = p + 1;
        return 0;
}

static int scan_value(const char *base, const char **pp, const char *end, json_object *jo, char **ret_err);
static char *go_fix_utf8(const char *s, size_t n, size_t *ret_len, bool *oom);

/* -EILSEQ: a key holds a NUL byte, *ret_err says where. json-c cuts such a key at the NUL
 * ("kind\u0000x" would become "kind"), while Go keeps it whole and its strict decoder refuses it as an
 * unknown field (no field name has a NUL byte). */
static int scan_object(const char *base, const char **pp, const char *end, json_object *jo, char **ret_err) {
        const char *p = *pp + 1;
        se_key_order *ko = NULL;
        int r;

        if (jo && !json_object_is_type(jo, json_type_object))
                jo = NULL;
        if (jo) {
                ko = calloc(1, sizeof(*ko));
                if (!ko)
                        return -ENOMEM;
                /* Replaces the order a discarded duplicate occurrence may have attached. */
                json_object_set_userdata(jo, ko, key_order_free);
        }

        p = skip_ws(p, end);
        if (p < end && *p == '}') {
                *pp = p + 1;
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *key = NULL;
                json_object *child = NULL;
                const char *key_start;
                size_t key_len = 0;

                p = skip_ws(p, end);
                if (p >= end || *p != '"')
                        return -EBADMSG;
                key_start = p;
                r = scan_string(&p, end, &key, &key_len, ret_err);
                if (r < 0)
                        return r;
                if (memchr(key, '\0', key_len)) {
                        if (asprintf(ret_err, "invalid object key at offset %zu: contains a NUL character (\\u0000)",
                                     (size_t) (key_start - base)) < 0) {
                                *ret_err = NULL;
                                return -ENOMEM;
                        }
                        return -EILSEQ;
                }
                if (jo) {
                        char **n = reallocarray(ko->keys, ko->n + 1, sizeof(char *));
                        bool oom = false;
                        size_t fixed_len;
                        char *fixed;

                        if (!n)
                                return -ENOMEM;
                        ko->keys = n;
                        (void) json_object_object_get_ex(jo, key, &child);
                        /* the name Go sees; one with U+FFFD matches no field, so it is never looked up */
                        fixed = go_fix_utf8(key, key_len, &fixed_len, &oom);
                        if (oom)
                                return -ENOMEM;
                        if (fixed) {
                                free(key);
                                key = fixed;
                        }
                        ko->keys[ko->n++] = TAKE_PTR(key);
                }
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                        return -EBADMSG;
                p = skip_ws(p + 1, end);
                r = scan_value(base, &p, end, child, ret_err);
                if (r < 0)
                        return r;
                p = skip_ws(p, end);
                if (p < end && *p == ',') {
                        p++;
                        continue;
                }
                if (p < end && *p == '}') {
                        *pp = p + 1;
                        return 0;
                }
                return -EBADMSG;
        }
}

static int scan_value(const char *base, const char **pp, const char *end, json_object *jo, char **ret_err) {
        const char *p = *pp;
        int r;

        if (p >= end)
                return -EBADMSG;
        switch (*p) {
        case '{':
                return scan_object(base, pp, end, jo, ret_err);
        case '[': {
                size_t i = 0;

                if (jo && !json_object_is_type(jo, json_type_array))
                        jo = NULL;
                p = skip_ws(p + 1, end);
                if (p < end && *p == ']') {
                        *pp = p + 1;
                        return 0;
                }
                for (;; i++) {
                        json_object *child =
                                jo && i < json_object_array_length(jo) ? json_object_array_get_idx(jo, i) : NULL;

                        p = skip_ws(p, end);
                        r = scan_value(base, &p, end, child, ret_err);
                        if (r < 0)
                                return r;
                        p = skip_ws(p, end);
                        if (p < end && *p == ',') {
                                p++;
                                continue;
                        }
                        if (p < end && *p == ']') {
                                *pp = p + 1;
                                return 0;
                        }
                        return -EBADMSG;
                }
        }
        case '"':
                return scan_string(pp, end, NULL, NULL, ret_err);
        case 't':
        case 'f':
        case 'n':
                while (p < end && *p >= 'a' && *p <= 'z')
                        p++;
                *pp = p;
                return 0;
        default: {
                /* Go's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? — json-c also takes
                 * NaN, Infinity and "1.". */
                const char *s = p;

                if (p < end && *p == '-')
                        p++;
                if (p >= end || *p < '0' || *p > '9')
                        goto bad_char;
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
                if (p < end && *p == '.') {
                        p++;
                        if (p >= end || *p < '0' || *p > '9')
                                goto bad_char;
                        while (p < end && *p >= '0' && *p <= '9')
                                p++;
                }
                if (p < end && (*p == 'e' || *p == 'E')) {
                        p++;
                        if (p < end && (*p == '+' || *p == '-'))
                                p++;
                        if (p >= end || *p < '0' || *p > '9')
                                goto bad_char;
                        while (p < end && *p >= '0' && *p <= '9')
                                p++;
                }
                /* Keep the literal so errors can quote it like Go ("number 99999999999"). */
                if (jo && json_object_is_type(jo, json_type_int)) {
                        char *lit = strndup(s, (size_t) (p - s));

                        if (!lit)
                                return -ENOMEM;
                        json_object_set_serializer(jo, json_object_userdata_to_json_string, lit,
                                                   json_object_free_userdata);
                }
                *pp = p;
                return 0;
        bad_char:
                if (p >= end) {
                        *ret_err = strdup("unexpected end of JSON input");
                        return *ret_err ? -EBADMSG : -ENOMEM;
                }
                if ((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f) {
                        if (asprintf(ret_err, "invalid character '%c' looking for beginning of value", *p) < 0)
                                return -ENOMEM;
                } else if (asprintf(ret_err, "invalid character '\\x%02x' looking for beginning of value",
                                    (unsigned char) *p) < 0)
                        return -ENOMEM;
                return -EBADMSG;
        }
        }
}

/* ---- Go's encoding/json scanner (scanner.go), for its verdict and its error text ---- */

typedef enum go_state {
        GO_BEGIN_VALUE_OR_EMPTY,
        GO_BEGIN_VALUE,
        GO_BEGIN_STRING_OR_EMPTY,
        GO_BEGIN_STRING,
        GO_END_VALUE,
        GO_END_TOP,
        GO_IN_STRING,
        GO_IN_STRING_ESC,
        GO_IN_STRING_ESC_U, /* u_left hex digits to go */
        GO_NEG,
        GO_1,
        GO_0,
        GO_DOT,
        GO_DOT0,
        GO_E,
        GO_E_SIGN,
        GO_E0,
        GO_LITERAL, /* the rest of true, false or null */
        GO_ERROR,
} go_state;

typedef enum go_parse {
        GO_PARSE_OBJECT_KEY,
        GO_PARSE_OBJECT_VALUE,
        GO_PARSE_ARRAY_VALUE,
} go_parse;

typedef struct go_scanner {
        go_state state;
        bool end_top;
        go_parse stack[SE_CONFIG_MAX_DEPTH];
        size_t depth;
        unsigned u_left;
        const char *literal; /* "true", "false" or "null" */
        size_t literal_pos;  /* next expected byte */
        char *err;           /* the message; NULL = out of memory when error is set */
        bool error;
} go_scanner;

/* Go's quoteChar: the byte as a rune (so 0x80..0xFF are U+0080..U+00FF) in strconv.Quote's form. */
static void go_quote_char(unsigned char c, char buf[static 16]) {
        static const char esc[] = {
                ['\a'] = 'a', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v'};

        if (c == '\'' || c == '"')
                snprintf(buf, 16, "'%s%c'", c == '\'' ? "\\" : "", c);
        else if (c == '\\')
                snprintf(buf, 16, "'\\\\'");
        else if (c < sizeof(esc) && esc[c])
                snprintf(buf, 16, "'\\%c'", esc[c]);
        else if (c < 0x20 || c == 0x7f)
                snprintf(buf, 16, "'\\x%02x'", c);
        else if (c < 0x80)
                snprintf(buf, 16, "'%c'", c);
        else if (c < 0xA0 || c == 0xA0 || c == 0xAD) /* not unicode.IsPrint */
                snprintf(buf, 16, "'\\u%04x'", c);
        else
                snprintf(buf, 16, "'%c%c'", (char) (0xC0 | (c >> 6)), (char) (0x80 | (c & 0x3F)));
}

static void go_error(go_scanner *s, unsigned char c, const char *context) {
        char q[16];

        go_quote_char(c, q);
        s->state = GO_ERROR;
        s->error = true;
        if (asprintf(&s->err, "invalid character %s %s", q, context) < 0)
                s->err = NULL;
}

static bool go_is_space(unsigned char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool go_is_hex(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void go_push(go_scanner *s, go_parse p) {
        /* Go allows 10000 levels; we refuse what the schema never needs, as for YAML */
        if (s->depth >= SE_CONFIG_MAX_DEPTH) {
                s->state = GO_ERROR;
                s->error = true;
                if (asprintf(&s->err, "nesting deeper than %u levels is not allowed", SE_CONFIG_MAX_DEPTH) < 0)
                        s->err = NULL;
                return;
        }
        s->stack[s->depth++] = p;
}

static void go_pop(go_scanner *s) {
        s->depth--;
        if (s->depth == 0) {
                s->state = GO_END_TOP;
                s->end_top = true;
        } else
                s->state = GO_END_VALUE;
}

/* One byte; the state functions of scanner.go, where one state hands the byte to the next. */
static void go_step(go_scanner *s, unsigned char c) {
        for (;;)
                switch (s->state) {
                case GO_BEGIN_VALUE_OR_EMPTY:
                        if (go_is_space(c))
                                return;
                        if (c == ']') {
                                s->state = GO_END_VALUE;
                                continue;
                        }
                        s->state = GO_BEGIN_VALUE;
                        continue;
                case GO_BEGIN_VALUE:
                        if (go_is_space(c))
                                return;
                        switch (c) {
                        case '{':
                                s->state = GO_BEGIN_STRING_OR_EMPTY;
                                go_push(s, GO_PARSE_OBJECT_KEY);
                                return;
                        case '[':
                                s->state = GO_BEGIN_VALUE_OR_EMPTY;
                                go_push(s, GO_PARSE_ARRAY_VALUE);
                                return;
                        case '"':
                                s->state = GO_IN_STRING;
                                return;
                        case '-':
                                s->state = GO_NEG;
                                return;
                        case '0':
                                s->state = GO_0;
                                return;
                        case 't':
                        case 'f':
                        case 'n':
                                s->literal = c == 't' ? "true" : c == 'f' ? "false" : "null";
                                s->literal_pos = 1;
                                s->state = GO_LITERAL;
                                return;
                        }
                        if (c >= '1' && c <= '9') {
                                s->state = GO_1;
                                return;
                        }
                        go_error(s, c, "looking for beginning of value");
                        return;
                case GO_BEGIN_STRING_OR_EMPTY:
                        if (go_is_space(c))
                                return;
                        if (c == '}') {
                                s->stack[s->depth - 1] = GO_PARSE_OBJECT_VALUE;
                                s->state = GO_END_VALUE;
                                continue;
                        }
                        s->state = GO_BEGIN_STRING;
                        continue;
                case GO_BEGIN_STRING:
                        if (go_is_space(c))
                                return;
                        if (c == '"') {
                                s->state = GO_IN_STRING;
                                return;
                        }
                        go_error(s, c, "looking for beginning of object key string");
                        return;
                case GO_END_VALUE:
                        if (s->depth == 0) {
                                s->state = GO_END_TOP;
                                s->end_top = true;
                                continue;
                        }
                        if (go_is_space(c))
                                return;
                        switch (s->stack[s->depth - 1]) {
                        case GO_PARSE_OBJECT_KEY:
                                if (c == ':') {
                                        s->stack[s->depth - 1] = GO_PARSE_OBJECT_VALUE;
                                        s->state = GO_BEGIN_VALUE;
                                        return;
                                }
                                go_error(s, c, "after object key");
                                return;
                        case GO_PARSE_OBJECT_VALUE:
                                if (c == ',') {
                                        s->stack[s->depth - 1] = GO_PARSE_OBJECT_KEY;
                                        s->state = GO_BEGIN_STRING;
                                        return;
                                }
                                if (c == '}') {
                                        go_pop(s);
                                        return;
                                }
                                go_error(s, c, "after object key:value pair");
                                return;
                        case GO_PARSE_ARRAY_VALUE:
                        default:
                                if (c == ',') {
                                        s->state = GO_BEGIN_VALUE;
                                        return;
                                }
                                if (c == ']') {
                                        go_pop(s);
                                        return;
                                }
                                go_error(s, c, "after array element");
                                return;
                        }
                case GO_END_TOP:
                        if (!go_is_space(c))
                                go_error(s, c, "after top-level value");
                        return;
                case GO_IN_STRING:
                        if (c == '"')
                                s->state = GO_END_VALUE;
                        else if (c == '\\')
                                s->state = GO_IN_STRING_ESC;
                        else if (c < 0x20)
                                go_error(s, c, "in string literal");
                        return;
                case GO_IN_STRING_ESC:
                        if (strchr("bfnrt\\/\"", c) && c != '\0')
                                s->state = GO_IN_STRING;
                        else if (c == 'u') {
                                s->state = GO_IN_STRING_ESC_U;
                                s->u_left = 4;
                        } else
                                go_error(s, c, "in string escape code");
                        return;
                case GO_IN_STRING_ESC_U:
                        if (!go_is_hex(c))
                                go_error(s, c, "in \\u hexadecimal character escape");
                        else if (--s->u_left == 0)
                                s->state = GO_IN_STRING;
                        return;
                case GO_NEG:
                        if (c == '0')
                                s->state = GO_0;
                        else if (c >= '1' && c <= '9')
                                s->state = GO_1;
                        else
                                go_error(s, c, "in numeric literal");
                        return;
                case GO_1:
                        if (c >= '0' && c <= '9')
                                return;
                        s->state = GO_0;
                        continue;
                case GO_0:
                        if (c == '.') {
                                s->state = GO_DOT;
                                return;
                        }
                        if (c == 'e' || c == 'E') {
                                s->state = GO_E;
                                return;
                        }
                        s->state = GO_END_VALUE;
                        continue;
                case GO_DOT:
                        if (c >= '0' && c <= '9')
                                s->state = GO_DOT0;
                        else
                                go_error(s, c, "after decimal point in numeric literal");
                        return;
                case GO_DOT0:
                        if (c >= '0' && c <= '9')
                                return;
                        if (c == 'e' || c == 'E') {
                                s->state = GO_E;
                                return;
                        }
                        s->state = GO_END_VALUE;
                        continue;
                case GO_E:
                        s->state = GO_E_SIGN;
                        if (c == '+' || c == '-')
                                return;
                        continue;
                case GO_E_SIGN:
                        if (c >= '0' && c <= '9')
                                s->state = GO_E0;
                        else
                                go_error(s, c, "in exponent of numeric literal");
                        return;
                case GO_E0:
                        if (c >= '0' && c <= '9')
                                return;
                        s->state = GO_END_VALUE;
                        continue;
                case GO_LITERAL: {
                        char want = s->literal[s->literal_pos];

                        if (c == (unsigned char) want) {
                                if (s->literal[++s->literal_pos] == '\0')
                                        s->state = GO_END_VALUE;
                                return;
                        }
                        {
                                char ctx[48];

                                snprintf(ctx, sizeof(ctx), "in literal %s (expecting '%c')", s->literal, want);
                                go_error(s, c, ctx);
                        }
                        return;
                }
                case GO_ERROR:
                default:
                        return;
                }
}

/* checkValid: NULL if data is one valid JSON value, else Go's SyntaxError text (or, beyond the
 * depth limit, ours). -ENOMEM if the message cannot be built. */
static int go_check_valid(const char *data, size_t size, char **ret_err) {
        go_scanner s = {.state = GO_BEGIN_VALUE};

        *ret_err = NULL;
        for (size_t i = 0; i < size && !s.error; i++)
                go_step(&s, (unsigned char) data[i]);
        /* eof(): a last ' ' ends a number, or shows what is missing */
        if (!s.error && !s.end_top) {
                go_step(&s, ' ');
                if (!s.error && !s.end_top) {
                        s.error = true;
                        s.err = strdup("unexpected end of JSON input");
                }
        }
        if (!s.error)
                return 0;
        if (!s.err)
                return -ENOMEM;
        *ret_err = s.err;
        return -EBADMSG;
}

/* Go's decoder replaces each byte of invalid UTF-8 inside a string by U+FFFD. NULL if s is valid
 * UTF-8 (nothing to replace), else a malloc'd copy with *ret_len; *oom on allocation failure. */
static char *go_fix_utf8(const char *s, size_t n, size_t *ret_len, bool *oom) {
        size_t i = 0, o = 0;
        bool bad = false;
        char *out;

        for (size_t k = 0; k < n && !bad;) {
                uint32_t rune;
                int w = se_go_utf8_decode(s + k, n - k, &rune);

                bad = rune == 0xFFFD && w == 1;
                k += (size_t) w;
        }
        if (!bad)
                return NULL;
        out = malloc(n * 3 + 1);
        if (!out) {
                *oom = true;
                return NULL;
        }
        while (i < n) {
                uint32_t rune;
                int w = se_go_utf8_decode(s + i, n - i, &rune);

                if (rune == 0xFFFD && w == 1)
                        memcpy(out + o, "\xef\xbf\xbd", 3), o += 3;
                else
                        memcpy(out + o, s + i, (size_t) w), o += (size_t) w;
                i += (size_t) w;
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

/* Every string value in the tree, as Go decodes it. */
static int fix_tree_utf8(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_string: {
                bool oom = false;
                size_t n = 0;
                char *fixed = go_fix_utf8(json_object_get_string(o), (size_t) json_object_get_string_len(o), &n, &oom);
                int r = 0;

                if (oom)
                        return -ENOMEM;
                if (!fixed)
                        return 0;
                /* any string may be a secret: json-c frees the old text without wiping it */
                explicit_wipe((char *) json_object_get_string(o), (size_t) json_object_get_string_len(o));
                if (!json_object_set_string_len(o, fixed, (int) n))
                        r = -ENOMEM;
                explicit_wipe(fixed, n);
                free(fixed);
                return r;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        int r = fix_tree_utf8(json_object_array_get_idx(o, i));

                        if (r < 0)
                                return r;
                }
                return 0;
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        int r;

                        (void) k;
                        r = fix_tree_utf8(v);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        default:
                return 0;
        }
}

static char *describe_char(const char *data, size_t size, size_t off, const char *what) {
        char *s = NULL;
        int r;

        if (off >= size)
                return strdup("unexpected end of JSON input");
        if ((unsigned char) data[off] >= 0x20 && (unsigned char) data[off] < 0x7f && data[off] != '\'')
                r = asprintf(&s, "invalid character '%c' at offset %zu (%s)", data[off], off, what);
        else
                r = asprintf(&s, "invalid character '\\x%02x' at offset %zu (%s)", (unsigned char) data[off], off,
                             what);
        return r < 0 ? NULL : s;
}

int se_config_json_to_tree(const char *data, size_t size, json_object **ret, char **ret_err) {
        struct json_tokener *tok = NULL;
        json_object *root = NULL;
        enum json_tokener_error jerr;
        const char *p, *end = data + size;
        char *err = NULL;
        int r;

        *ret_err = NULL;
        if (size > (size_t) INT32_MAX)
                return -E2BIG;

        /* Go's checkValid runs over the whole input before anything is decoded */
        r = go_check_valid(data, size, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                goto fail;

        /* json-c's depth counts the outermost container as well */
        tok = json_tokener_new_ex(SE_CONFIG_MAX_DEPTH + 1);
        if (!tok)
                return -ENOMEM;
        /* not JSON_TOKENER_VALIDATE_UTF8: Go takes invalid UTF-8 in strings (fix_tree_utf8) */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, data, (int) size);
        jerr = json_tokener_get_error(tok);
        if (!root || jerr != json_tokener_success) {
                size_t off = json_tokener_get_parse_end(tok);

                json_object_put(root);
                root = NULL;
                if (jerr == json_tokener_continue || (jerr == json_tokener_success && !root))
                        err = strdup("unexpected end of JSON input");
                else if (jerr == json_tokener_error_depth) {
                        if (asprintf(&err, "nesting deeper than %u levels is not allowed", SE_CONFIG_MAX_DEPTH) < 0)
                                err = NULL;
                } else if (jerr == json_tokener_error_parse_utf8_string)
                        err = strdup("invalid UTF-8 in JSON input");
                else
                        err = describe_char(data, size, off > 0 && off <= size ? off - 1 : off,
                                            json_tokener_error_desc(jerr));
                json_tokener_free(tok);
                goto fail;
        }
        json_tokener_free(tok);

        p = skip_ws(data, end);
        r = scan_value(data, &p, end, root, &err);
        if (r == -ENOMEM) {
                free(err);
                json_object_put(root);
                return -ENOMEM;
        }
        if (r == -EILSEQ) {
                /* not a syntax error: reported without the version/kind prefix */
                json_object_put(root);
                *ret_err = err;
                return -EBADMSG;
        }
        if (r < 0) {
                json_object_put(root);
                if (!err)
                        err = strdup("invalid JSON input");
                goto fail;
        }
        r = fix_tree_utf8(root);
        if (r < 0) {
                json_object_put(root);
                return r;
        }
        *ret = root;
        return 0;

fail:
        if (!err)
                return -ENOMEM;
        /* Go's meta sniffing reads the document first, so kube reports syntax errors like this. */
        if (asprintf(ret_err, "couldn't get version/kind; json parse error: %s", err) < 0) {
                free(err);
                return -ENOMEM;
        }
        free(err);
        return -EBADMSG;
}
