/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config-parse-internal.h"
#include "go-json.h"
#include "macro.h"
#include "se-util.h"

/*
 * YAML front end, as sigs.k8s.io/yaml's YAMLToJSON over go-yaml v2: first document only, YAML 1.1
 * scalar resolution, mapping keys stringified, later duplicates win. go-yaml's strict pass (which
 * kube-apiserver runs only to find duplicate keys) is reproduced alongside: its message lists
 * every duplicate as "line N: key "k" already set in map".
 *
 * A scalar is bytes plus a length, never a C string: a "\0" escape or a !!binary tag gives text with
 * NUL bytes, and a decoded !!binary buffer has no terminator at all.
 */

typedef enum scalar_type {
        SCALAR_NULL,
        SCALAR_BOOL,
        SCALAR_INT,
        SCALAR_UINT,
        SCALAR_FLOAT,
        SCALAR_STRING,
        SCALAR_MERGE,
} scalar_type;

typedef struct scalar {
        scalar_type type;
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        const char *s;
        size_t len;
} scalar;

typedef struct frame {
        json_object *node;
        bool is_map;
        char *anchor;
        size_t start_nodes;
        unsigned long start_line;
        /* map state */
        bool have_key;
        bool key_merge;
        bool key_dup;
        char *key;
        char *key_render;
        char **seen; /* typed keys, for go-yaml's strict duplicate check */
        size_t n_seen;
} frame;

typedef struct anchor {
        char *name;
        json_object *node;
        size_t nodes;
} yanchor;

typedef struct yctx {
        frame stack[SE_CONFIG_MAX_DEPTH + 1];
        size_t depth;
        json_object *root;
        bool have_root;
        yanchor *anchors;
        size_t n_anchors;
        size_t nodes;
        char *strict; /* accumulated duplicate-key lines */
        size_t strict_len;
        char *err;
        const char *unsupported_float;
        char *binary; /* decoded !!binary scalar of the current event, not NUL-terminated */
        size_t binary_len;
} yctx;

static void binary_free(yctx *c) {
        if (c->binary) {
                explicit_wipe(c->binary, c->binary_len);
                free(c->binary);
        }
        c->binary = NULL;
        c->binary_len = 0;
}

static void frame_done(frame *f) {
        json_object_put(f->node);
        free(f->anchor);
        free(f->key);
        free(f->key_render);
        for (size_t i = 0; i < f->n_seen; i++)
                free(f->seen[i]);
        free(f->seen);
        *f = (frame){};
}

static int set_err(yctx *c, const char *fmt, ...) _printf_(2, 3);
static int set_err(yctx *c, const char *fmt, ...) {
        va_list ap;
        int r;

        free(c->err);
        va_start(ap, fmt);
        r = vasprintf(&c->err, fmt, ap);
        va_end(ap);
        if (r < 0) {
                c->err = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

/* strconv.ParseInt/ParseUint(s, 0, 64) after go-yaml removed the underscores. */
static bool go_parse_uint(const char *s, size_t n, uint64_t *ret) {
        unsigned base = 10;
        uint64_t v = 0;

        if (n == 0)
                return false;
        if (s[0] == '0') {
                if (n >= 3 && (s[1] == 'b' || s[1] == 'B'))
                        base = 2, s += 2, n -= 2;
                else if (n >= 3 && (s[1] == 'o' || s[1] == 'O'))
                        base = 8, s += 2, n -= 2;
                else if (n >= 3 && (s[1] == 'x' || s[1] == 'X'))
                        base = 16, s += 2, n -= 2;
                else
                        base = 8, s += 1, n -= 1;
        }
        for (size_t k = 0; k < n; k++) {
                unsigned dgt;
                char ch = s[k];

                if (ch >= '0' && ch <= '9')
                        dgt = (unsigned) (ch - '0');
                else if (ch >= 'a' && ch <= 'z')
                        dgt = (unsigned) (ch - 'a' + 10);
                else if (ch >= 'A' && ch <= 'Z')
                        dgt = (unsigned) (ch - 'A' + 10);
                else
                        return false;
                if (dgt >= base)
                        return false;
                if (v > (UINT64_MAX - dgt) / base)
                        return false;
                v = v * base + dgt;
        }
        *ret = v;
        return true;
}

static bool go_parse_int(const char *s, size_t n, int64_t *ret) {
        bool neg = false;
        uint64_t u;

        if (n > 0 && (s[0] == '+' || s[0] == '-')) {
                neg = s[0] == '-';
                s++, n--;
        }
        if (!go_parse_uint(s, n, &u))
                return false;
        if (neg) {
                if (u > (uint64_t) INT64_MAX + 1)
                        return false;
                *ret = u == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) u;
        } else {
                if (u > (uint64_t) INT64_MAX)
                        return false;
                *ret = (int64_t) u;
        }
        return true;
}

/* ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s) {
        const char *p = s;

        if (*p == '+' || *p == '-')
                p++;
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        } else {
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
                if (*p == '.') {
                        p++;
                        while (*p >= '0' && *p <= '9')
                                p++;
                }
        }
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '+' || *p == '-')
                        p++;
                if (*p < '0' || *p > '9')
                        return false;
                while (*p >= '0' && *p <= '9')
                        p++;
        }
        return *p == '\0';
}

static bool parse_float(const char *s, double *ret) {
        char *end = NULL;
        double d;

        if (isempty(s) || strpbrk(s, "xXpP_"))
                return false;
        errno = 0;
        d = strtod(s, &end);
        if (!end || *end != '\0' || isinf(d) || isnan(d))
                return false;
        *ret = d;
        return true;
}

static bool mem_is(const char *s, size_t len, const char *lit) {
        return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static bool in_list(const char *s, size_t len, const char *const *l) {
        for (; *l; l++)
                if (mem_is(s, len, *l))
                        return true;
        return false;
}

/* go-yaml v2's resolve() for an untagged plain scalar (or an explicitly tagged one): len bytes at s,
 * which need not be NUL-terminated. The numeric parsers get a terminated copy. */
static int resolve_plain(yctx *c, const char *s, size_t len, scalar *ret) {
        static const char *const yes[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                          "True", "TRUE", "on",  "On",  "ON",  NULL};
        static const char *const no[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                         "False", "FALSE", "off", "Off", "OFF", NULL};
        static const char *const null[] = {"", "~", "null", "Null", "NULL", NULL};
        static const char *const nan[] = {".nan", ".NaN", ".NAN", NULL};
        static const char *const pinf[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", NULL};
        static const char *const ninf[] = {"-.inf", "-.Inf", "-.INF", NULL};
        char h = len > 0 ? s[0] : 'N';

        *ret = (scalar){.type = SCALAR_STRING, .s = s, .len = len};
        if (memchr(s, '\0', len)) /* embedded NUL: never a special value */
                return 0;
        if (!(strchr("+-.0123456789yYnNtTfFoO~<", h) && h != '\0') && len > 0)
                return 0;

        if (in_list(s, len, yes)) {
                *ret = (scalar){.type = SCALAR_BOOL, .b = true};
                return 0;
        }
        if (in_list(s, len, no)) {
                *ret = (scalar){.type = SCALAR_BOOL, .b = false};
                return 0;
        }
        if (in_list(s, len, null)) {
                *ret = (scalar){.type = SCALAR_NULL};
                return 0;
        }
        if (in_list(s, len, nan) || in_list(s, len, pinf) || in_list(s, len, ninf)) {
                *ret = (scalar){.type = SCALAR_FLOAT,
                                .d = in_list(s, len, nan)    ? NAN
                                     : in_list(s, len, pinf) ? INFINITY
                                                             : -INFINITY};
                return 0;
        }
        if (mem_is(s, len, "<<")) {
                *ret = (scalar){.type = SCALAR_MERGE};
                return 0;
        }
        if (h == '.') {
                _cleanup_free_ char *copy = strndup(s, len);
                double d;

                if (!copy)
                        return -ENOMEM;
                if (parse_float(copy, &d))
                        *ret = (scalar){.type = SCALAR_FLOAT, .d = d};
                return 0;
        }
        if (h == '+' || h == '-' || (h >= '0' && h <= '9')) {
                _cleanup_free_ char *plain = malloc(len + 1);
                size_t n = 0;
                int64_t i;
                uint64_t u;
                double d;

                if (!plain)
                        return -ENOMEM;
                for (size_t k = 0; k < len; k++)
                        if (s[k] != '_')
                                plain[n++] = s[k];
                plain[n] = '\0';
                if (go_parse_int(plain, n, &i)) {
                        *ret = (scalar){.type = SCALAR_INT, .i = i};
                        return 0;
                }
                if (plain[0] != '+' && plain[0] != '-' && go_parse_uint(plain, n, &u)) {
                        *ret = (scalar){.type = SCALAR_UINT, .u = u};
                        return 0;
                }
                if (yaml_style_float(plain) && parse_float(plain, &d)) {
                        *ret = (scalar){.type = SCALAR_FLOAT, .d = d};
                        return 0;
                }
        }
        return 0;
}

/* The decoded bytes of a !!binary scalar are any bytes; sigs.k8s.io/yaml's json.Marshal then writes
 * each byte that is not valid UTF-8 as U+FFFD, and that is what kube-apiserver decodes. (Every other
 * scalar is valid UTF-8 already: libyaml checks the input and its escapes.) */
static int coerce_utf8(yctx *c) {
        size_t bad = 0, n = 0;
        char *o;

        for (size_t i = 0; i < c->binary_len;) {
                uint32_t rune;
                int step = se_go_utf8_decode(c->binary + i, c->binary_len - i, &rune);

                if (rune == 0xFFFD && step == 1)
                        bad++;
                i += (size_t) step;
        }
        if (bad == 0)
                return 0;
        o = malloc(c->binary_len + 2 * bad);
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < c->binary_len;) {
                uint32_t rune;
                int step = se_go_utf8_decode(c->binary + i, c->binary_len - i, &rune);

                if (rune == 0xFFFD && step == 1) {
                        memcpy(o + n, "\xef\xbf\xbd", 3);
                        n += 3;
                } else {
                        memcpy(o + n, c->binary + i, (size_t) step);
                        n += (size_t) step;
                }
                i += (size_t) step;
        }
        binary_free(c);
        c->binary = o;
        c->binary_len = n;
        return 0;
}

static int resolve_scalar(yctx *c, const yaml_event_t *ev, scalar *ret) {
        const char *s = (const char *) ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *) ev->data.scalar.tag;
        scalar r;
        int k;

        if (!tag) {
                if (!ev->data.scalar.plain_implicit) {
                        *ret = (scalar){.type = SCALAR_STRING, .s = s, .len = len};
                        return 0;
                }
                return resolve_plain(c, s, len, ret);
        }
        if (streq(tag, YAML_STR_TAG) || streq(tag, "tag:yaml.org,2002:binary") || streq(tag, YAML_TIMESTAMP_TAG) ||
            !startswith(tag, "tag:yaml.org,2002:") || streq(tag, YAML_MAP_TAG) || streq(tag, YAML_SEQ_TAG)) {
                if (streq(tag, "tag:yaml.org,2002:binary")) {
                        uint8_t *dec = NULL;
                        size_t n = 0;
                        int k2;

                        if (se_base64_decode(s, len, &dec, &n) < 0)
                                return set_err(c, "yaml: !!binary value contains invalid base64 data");
                        binary_free(c);
                        c->binary = (char *) dec;
                        c->binary_len = n;
                        k2 = coerce_utf8(c);
                        if (k2 < 0)
                                return k2;
                        s = c->binary;
                        len = c->binary_len;
                }
                *ret = (scalar){.type = SCALAR_STRING, .s = s, .len = len};
                return 0;
        }
        k = resolve_plain(c, s, len, &r);
        if (k < 0)
                return k;
        if ((streq(tag, YAML_NULL_TAG) && r.type != SCALAR_NULL) ||
            (streq(tag, YAML_BOOL_TAG) && r.type != SCALAR_BOOL) ||
            (streq(tag, YAML_INT_TAG) && r.type != SCALAR_INT && r.type != SCALAR_UINT) ||
            (streq(tag, YAML_FLOAT_TAG) && r.type != SCALAR_FLOAT && r.type != SCALAR_INT && r.type != SCALAR_UINT))
                /* go-yaml quotes the value here; we do not, it may be key material */
                return set_err(c, "yaml: line %lu: cannot decode a scalar as a !!%s",
                               (unsigned long) ev->start_mark.line + 1, tag + STRLEN("tag:yaml.org,2002:"));
        if (streq(tag, YAML_FLOAT_TAG) && r.type == SCALAR_INT)
                r = (scalar){.type = SCALAR_FLOAT, .d = (double) r.i};
        else if (streq(tag, YAML_FLOAT_TAG) && r.type == SCALAR_UINT)
                r = (scalar){.type = SCALAR_FLOAT, .d = (double) r.u};
        *ret = r;
        return 0;
}

static json_object *scalar_to_json(yctx *c, const scalar *v) {
        char buf[64];

        switch (v->type) {
        case SCALAR_NULL:
                return NULL;
        case SCALAR_BOOL:
                return json_object_new_boolean(v->b);
        case SCALAR_INT:
                return json_object_new_int64(v->i);
        case SCALAR_UINT:
                return json_object_new_uint64(v->u);
        case SCALAR_FLOAT:
                if (isnan(v->d) || isinf(v->d)) {
                        /* json.Marshal refuses these; reported once the tree is built */
                        if (!c->unsupported_float)
                                c->unsupported_float = isnan(v->d) ? "NaN" : v->d > 0 ? "+Inf" : "-Inf";
                        return json_object_new_double(0);
                }
                se_go_format_float(v->d, buf, sizeof(buf));
                return json_object_new_double_s(v->d, buf);
        case SCALAR_MERGE:
                return json_object_new_string("<<");
        case SCALAR_STRING:
        default:
                return json_object_new_string_len(v->s, (int) v->len);
        }
}

/* Go's %#v of the key, as in go-yaml's "key %#v already set in map". */
static char *render_key(const scalar *v) {
        char *s = NULL;
        int r = -1;

        switch (v->type) {
        case SCALAR_NULL:
                return strdup("<nil>");
        case SCALAR_BOOL:
                return strdup(v->b ? "true" : "false");
        case SCALAR_INT:
                r = asprintf(&s, "%" PRIi64, v->i);
                break;
        case SCALAR_UINT:
                r = asprintf(&s, "0x%" PRIx64, v->u);
                break;
        case SCALAR_FLOAT: {
                char buf[64];
                se_go_format_float(v->d, buf, sizeof(buf));
                return strdup(buf);
        }
        case SCALAR_MERGE:
                return strdup("\"<<\"");
        case SCALAR_STRING: {
                char *q;

                s = malloc(v->len * 4 + 3);
                if (!s)
                        return NULL;
                q = s;
                *q++ = '"';
                for (size_t i = 0; i < v->len; i++) {
                        unsigned char ch = (unsigned char) v->s[i];

                        if (ch == '"' || ch == '\\') {
                                *q++ = '\\';
                                *q++ = (char) ch;
                        } else if (ch == '\n') {
                                *q++ = '\\';
                                *q++ = 'n';
                        } else if (ch == '\t') {
                                *q++ = '\\';
                                *q++ = 't';
                        } else if (ch < 0x20 || ch == 0x7f)
                                q += sprintf(q, "\\x%02x", ch);
                        else
                                *q++ = (char) ch;
                }
                *q++ = '"';
                *q = '\0';
                return s;
        }
        }
        return r < 0 ? NULL : s;
}

/* The typed identity go-yaml compares keys by (1 and "1" differ). */
static char *typed_key(const scalar *v) {
        char *s = NULL;
        int r;

        switch (v->type) {
        case SCALAR_NULL:
                return strdup("n");
        case SCALAR_BOOL:
                return strdup(v->b ? "b1" : "b0");
        case SCALAR_INT:
                r = asprintf(&s, "i%" PRIi64, v->i);
                break;
        case SCALAR_UINT:
                r = asprintf(&s, "u%" PRIu64, v->u);
                break;
        case SCALAR_FLOAT:
                r = asprintf(&s, "f%.17g", v->d);
                break;
        default:
                s = malloc(v->len + 2);
                if (!s)
                        return NULL;
                s[0] = 's';
                memcpy(s + 1, v->s, v->len);
                s[v->len + 1] = '\0';
                return s;
        }
        return r < 0 ? NULL : s;
}

/* sigs.k8s.io/yaml's stringification of map keys. The tree's keys are C strings, so a key with a
 * NUL byte is refused here; Go keeps it, and its strict decoder then refuses it as an unknown
 * field (no field name has one), so the verdict is the same. */
static int json_key(yctx *c, const scalar *v, unsigned long line, char **ret) {
        char *s = NULL;
        int r = 0;

        switch (v->type) {
        case SCALAR_NULL:
                return set_err(c, "unsupported map key of type: %%!s(<nil>), key: <nil>");
        case SCALAR_UINT:
                return set_err(c, "unsupported map key of type: uint64, key: 0x%" PRIx64, v->u);
        case SCALAR_BOOL:
                s = strdup(v->b ? "true" : "false");
                break;
        case SCALAR_INT:
                r = asprintf(&s, "%" PRIi64, v->i);
                break;
        case SCALAR_FLOAT:
                if (isnan(v->d))
                        s = strdup(".nan");
                else if (isinf(v->d))
                        s = strdup(v->d > 0 ? ".inf" : "-.inf");
                else
                        r = asprintf(&s, "%g", (double) (float) v->d);
                break;
        case SCALAR_MERGE:
                s = strdup("<<");
                break;
        default:
                if (memchr(v->s, '\0', v->len))
                        return set_err(c, "yaml: line %lu: invalid map key: contains a NUL character", line);
                s = strndup(v->s, v->len);
        }
        if (r < 0 || !s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int add_strict_dup(yctx *c, unsigned long line, const char *render) {
        char *n = NULL;
        int r;

        r = asprintf(&n, "%s\n  line %lu: key %s already set in map",
                     c->strict ? c->strict : "yaml: unmarshal errors:", line, render);
        if (r < 0)
                return -ENOMEM;
        free(c->strict);
        c->strict = n;
        return 0;
}

static int map_set(yctx *c, frame *f, const char *key, json_object *v) {
        /* json_object_object_add replaces an existing key in place: the last duplicate wins */
        if (json_object_object_add(f->node, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int merge_into(yctx *c, frame *f, json_object *src, unsigned long line) {
        json_object_object_foreach(src, k, v) {
                _cleanup_free_ char *tk = NULL;
                bool dup = false;
                char **n;

                if (asprintf(&tk, "s%s", k) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < f->n_seen; i++)
                        if (streq(f->seen[i], tk))
                                dup = true;
                if (dup) {
                        /* tree keys are C strings without NUL bytes (json_key) */
                        scalar sk = {.type = SCALAR_STRING, .s = k, .len = strlen(k)};
                        _cleanup_free_ char *render = render_key(&sk);

                        if (!render || add_strict_dup(c, line, render) < 0)
                                return -ENOMEM;
                } else {
                        n = reallocarray(f->seen, f->n_seen + 1, sizeof(char *));
                        if (!n)
                                return -ENOMEM;
                        f->seen = n;
                        f->seen[f->n_seen++] = TAKE_PTR(tk);
                }
                if (map_set(c, f, k, json_object_get(v)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* Places a finished value (owned) into its parent; sc is set when the value is a scalar. */
static int add_value(yctx *c, json_object *v, const scalar *sc, bool is_container, unsigned long line) {
        frame *f;
        int r;

        if (c->depth == 0) {
                c->root = v;
                c->have_root = true;
                return 0;
        }
        f = &c->stack[c->depth - 1];
        if (!f->is_map) {
                if (json_object_array_add(f->node, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
                return 0;
        }
        if (!f->have_key) {
                _cleanup_free_ char *tk = NULL;

                if (is_container || !sc) {
                        json_object_put(v);
                        return set_err(c, "yaml: line %lu: invalid map key: a mapping or sequence cannot be a key",
                                       line);
                }
                json_object_put(v);
                f->have_key = true;
                f->key_dup = false;
                f->key_merge = sc->type == SCALAR_MERGE;
                if (f->key_merge)
                        return 0;
                r = json_key(c, sc, line, &f->key);
                if (r < 0)
                        return r;
                tk = typed_key(sc);
                if (!tk)
                        return -ENOMEM;
                for (size_t i = 0; i < f->n_seen; i++)
                        if (streq(f->seen[i], tk)) {
                                f->key_dup = true;
                                break;
                        }
                if (f->key_dup) {
                        f->key_render = render_key(sc);
                        if (!f->key_render)
                                return -ENOMEM;
                } else {
                        char **n = reallocarray(f->seen, f->n_seen + 1, sizeof(char *));

                        if (!n)
                                return -ENOMEM;
                        f->seen = n;
                        f->seen[f->n_seen++] = TAKE_PTR(tk);
                }
                return 0;
        }

        f->have_key = false;
        if (f->key_merge) {
                f->key_merge = false;
                if (v && json_object_is_type(v, json_type_object))
                        r = merge_into(c, f, v, line);
                else if (v && json_object_is_type(v, json_type_array)) {
                        size_t n = json_object_array_length(v);

                        r = 0;
                        for (size_t i = n; i > 0 && r >= 0; i--) {
                                json_object *m = json_object_array_get_idx(v, i - 1);

                                if (!m || !json_object_is_type(m, json_type_object))
                                        r = set_err(c,
                                                    "yaml: map merge requires map or sequence of maps as the value");
                                else
                                        r = merge_into(c, f, m, line);
                        }
                } else
                        r = set_err(c, "yaml: map merge requires map or sequence of maps as the value");
                json_object_put(v);
                return r;
        }
        if (f->key_dup) {
                r = add_strict_dup(c, line, f->key_render);
                free(f->key_render);
                f->key_render = NULL;
                if (r < 0) {
                        json_object_put(v);
                        return r;
                }
        }
        r = map_set(c, f, f->key, v);
        free(f->key);
        f->key = NULL;
        return r;
}

static int add_anchor(yctx *c, const char *name, json_object *node, size_t nodes) {
        yanchor *n;
        char *dup;

        if (!name)
                return 0;
        dup = strdup(name);
        if (!dup)
                return -ENOMEM;
        n = reallocarray(c->anchors, c->n_anchors + 1, sizeof(yanchor));
        if (!n) {
                free(dup);
                return -ENOMEM;
        }
        c->anchors = n;
        c->anchors[c->n_anchors++] = (yanchor){.name = dup, .node = json_object_get(node), .nodes = nodes};
        return 0;
}

static int count_node(yctx *c, size_t n) {
        c->nodes += n;
        if (c->nodes > SE_CONFIG_MAX_NODES)
                return set_err(c, "yaml: document contains excessive aliasing or too many nodes");
        return 0;
}

static int handle_event(yctx *c, yaml_event_t *ev) {
        unsigned long line = (unsigned long) ev->start_mark.line + 1;
        int r;

        switch (ev->type) {
        case YAML_SCALAR_EVENT: {
                scalar sc;
                json_object *v;
                r = count_node(c, 1);
                if (r < 0)
                        return r;
                r = resolve_scalar(c, ev, &sc);
                if (r < 0)
                        return r;
                v = scalar_to_json(c, &sc);
                if (!v && sc.type != SCALAR_NULL)
                        return -ENOMEM;
                if (ev->data.scalar.anchor) {
                        r = add_anchor(c, (const char *) ev->data.scalar.anchor, v, 1);
                        if (r < 0) {
                                json_object_put(v);
                                return r;
                        }
                }
                return add_value(c, v, &sc, false, line);
        }
        case YAML_ALIAS_EVENT: {
                const char *name = (const char *) ev->data.alias.anchor;
                const yanchor *a = NULL;

                for (size_t i = c->n_anchors; i > 0; i--)
                        if (streq(c->anchors[i - 1].name, name)) {
                                a = &c->anchors[i - 1];
                                break;
                        }
                if (!a) {
                        for (size_t i = 0; i < c->depth; i++)
                                if (c->stack[i].anchor && streq(c->stack[i].anchor, name))
                                        return set_err(c, "yaml: anchor '%s' value contains itself", name);
                        return set_err(c, "yaml: unknown anchor '%s' referenced", name);
                }
                r = count_node(c, a->nodes);
                if (r < 0)
                        return r;
                if (!a->node || (!json_object_is_type(a->node, json_type_object) &&
                                 !json_object_is_type(a->node, json_type_array))) {
                        /* a scalar alias may serve as a key: rebuild its scalar view */
                        scalar sc = {.type = SCALAR_NULL};
                        _cleanup_free_ char *tmp = NULL;

                        if (a->node) {
                                switch (json_object_get_type(a->node)) {
                                case json_type_boolean:
                                        sc = (scalar){.type = SCALAR_BOOL, .b = json_object_get_boolean(a->node)};
                                        break;
                                case json_type_double:
                                        sc = (scalar){.type = SCALAR_FLOAT, .d = json_object_get_double(a->node)};
                                        break;
                                case json_type_int:
                                        sc = (scalar){.type = SCALAR_INT, .i = json_object_get_int64(a->node)};
                                        break;
                                default:
                                        sc = (scalar){.type = SCALAR_STRING,
                                                      .s = json_object_get_string(a->node),
                                                      .len = (size_t) json_object_get_string_len(a->node)};
                                }
                        }
                        return add_value(c, json_object_get(a->node), &sc, false, line);
                }
                return add_value(c, json_object_get(a->node), NULL, true, line);
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
                bool is_map = ev->type == YAML_MAPPING_START_EVENT;
                const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
                frame *f;

                if (c->depth > 0 && c->stack[c->depth - 1].is_map && !c->stack[c->depth - 1].have_key)
                        return set_err(c, "yaml: line %lu: invalid map key: a mapping or sequence cannot be a key",
                                       line);
                if (c->depth >= SE_CONFIG_MAX_DEPTH)
                        return set_err(c, "nesting deeper than %u levels is not allowed", SE_CONFIG_MAX_DEPTH);
                r = count_node(c, 1);
                if (r < 0)
                        return r;
                f = &c->stack[c->depth];
                *f = (frame){.is_map = is_map, .start_nodes = c->nodes, .start_line = line};
                f->node = is_map ? json_object_new_object() : json_object_new_array();
                if (!f->node)
                        return -ENOMEM;
                if (anchor) {
                        f->anchor = strdup((const char *) anchor);
                        if (!f->anchor) {
                                json_object_put(f->node);
                                f->node = NULL;
                                return -ENOMEM;
                        }
                }
                c->depth++;
                return 0;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
                frame *f = &c->stack[c->depth - 1];
                json_object *node = TAKE_PTR(f->node);
                unsigned long start_line = f->start_line;

                if (f->anchor) {
                        r = add_anchor(c, f->anchor, node, c->nodes - f->start_nodes + 1);
                        if (r < 0) {
                                json_object_put(node);
                                return r;
                        }
                }
                frame_done(f);
                c->depth--;
                return add_value(c, node, NULL, true, start_line);
        }
        default:
                return 0;
        }
}

static int parser_error(yctx *c, const yaml_parser_t *p) {
        size_t line = 0;

        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        /* go-yaml v2's parser.fail() */
        if (p->problem_mark.line != 0) {
                line = p->problem_mark.line;
                if (p->error == YAML_SCANNER_ERROR)
                        line++;
        } else if (p->context_mark.line != 0)
                line = p->context_mark.line;
        if (line != 0)
                return set_err(c, "yaml: line %zu: %s", line,
                               p->problem ? p->problem : "unknown problem parsing YAML content");
        return set_err(c, "yaml: %s", p->problem ? p->problem : "unknown problem parsing YAML content");
}

/* A byte-order mark that starts a later line (or follows the leading one). libyaml skips it; go-yaml
 * v2's is_bom() looks at the start of its buffer instead of the current position, so kube-apiserver
 * keeps it as part of a key or value, or skips some other character, and refuses the file in
 * practice. We refuse it outright, naming the line (issue 16). 0 = none. */
static size_t later_bom_line(const char *data, size_t size) {
        const unsigned char *p = (const unsigned char *) data;
        size_t line = 1;

        for (size_t i = 0; i + 3 <= size; i++) {
                bool after_break =
                        i > 0 &&
                        (p[i - 1] == '\n' || p[i - 1] == '\r' || (i >= 2 && p[i - 2] == 0xC2 && p[i - 1] == 0x85) ||
                         (i >= 3 && p[i - 3] == 0xE2 && p[i - 2] == 0x80 && (p[i - 1] == 0xA8 || p[i - 1] == 0xA9)));
                bool second = i == 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF;

                if (p[i] == '\n' || (p[i] == '\r' && (i + 1 >= size || p[i + 1] != '\n')))
                        line++;
                if (p[i] == 0xEF && p[i + 1] == 0xBB && p[i + 2] == 0xBF && (after_break || second))
                        return line;
        }
        return 0;
}

int se_config_yaml_to_tree(const char *data, size_t size, json_object **ret, char **ret_strict, char **ret_err) {
        yaml_parser_t parser;
        yctx c = {};
        bool in_doc = false, done = false;
        int r = 0;

        *ret_err = NULL;
        *ret_strict = NULL;
        {
                size_t bom = later_bom_line(data, size);

                if (bom > 0)
                        return asprintf(ret_err,
                                        "yaml: line %zu: a byte-order mark (U+FEFF) at the start of a line is not "
                                        "allowed; remove it",
                                        bom) < 0
                                       ? -ENOMEM
                                       : -EBADMSG;
        }
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) data, size);

        while (!done) {
                yaml_event_t ev;

                if (!yaml_parser_parse(&parser, &ev)) {
                        r = parser_error(&c, &parser);
                        break;
                }
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT: {
                        const yaml_version_directive_t *v = ev.data.document_start.version_directive;

                        /* go-yaml v2 knows YAML 1.1 only; libyaml also takes %YAML 1.2. As its
                         * parser.fail(): the directive's 0-based line, none on the first line. */
                        if (v && (v->major != 1 || v->minor != 1)) {
                                r = ev.start_mark.line > 0
                                            ? set_err(&c, "yaml: line %zu: found incompatible YAML document",
                                                      (size_t) ev.start_mark.line)
                                            : set_err(&c, "yaml: found incompatible YAML document");
                                break;
                        }
                        in_doc = true;
                        break;
                }
                case YAML_DOCUMENT_END_EVENT:
                        /* only the first document counts */
                        done = true;
                        break;
                default:
                        if (in_doc)
                                r = handle_event(&c, &ev);
                }
                binary_free(&c);
                if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.value)
                        explicit_wipe(ev.data.scalar.value, ev.data.scalar.length);
                yaml_event_delete(&ev);
                if (r < 0)
                        break;
        }
        /* libyaml keeps decoded copies of the input, key material included */
        if (parser.buffer.start)
                explicit_wipe(parser.buffer.start, (size_t) (parser.buffer.end - parser.buffer.start));
        if (parser.raw_buffer.start)
                explicit_wipe(parser.raw_buffer.start, (size_t) (parser.raw_buffer.end - parser.raw_buffer.start));
        yaml_parser_delete(&parser);

        if (r >= 0 && c.unsupported_float)
                r = set_err(&c, "json: unsupported value: %s", c.unsupported_float);

        while (c.depth > 0)
                frame_done(&c.stack[--c.depth]);
        for (size_t i = 0; i < c.n_anchors; i++) {
                free(c.anchors[i].name);
                json_object_put(c.anchors[i].node);
        }
        free(c.anchors);

        if (r < 0) {
                if (c.root)
                        se_json_wipe_secrets(c.root);
                json_object_put(c.root);
                free(c.strict);
                if (r == -ENOMEM) {
                        free(c.err);
                        return r;
                }
                if (!c.err)
                        return -ENOMEM;
                *ret_err = c.err;
                return r;
        }
        free(c.err);
        *ret = c.root;
        *ret_strict = c.strict;
        return 0;
}
