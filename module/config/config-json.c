/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"

/*
 * JSON front end: json-c (strict, UTF-8 validated, depth-limited) builds the tree; a second walk
 * over the now known-valid text records each object's keys in written order, duplicates included,
 * because json-c silently keeps only the last duplicate (checked with json-c 0.16).
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

                        if (!n)
                                return -ENOMEM;
                        ko->keys = n;
                        (void) json_object_object_get_ex(jo, key, &child);
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

        /* json-c stops at NUL; Go's scanner rejects it. */
        p = memchr(data, '\0', size);
        if (p) {
                err = describe_char(data, size, (size_t) (p - data), "NUL byte");
                goto fail;
        }

        /* json-c's depth counts the outermost container as well */
        tok = json_tokener_new_ex(SE_CONFIG_MAX_DEPTH + 1);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
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
