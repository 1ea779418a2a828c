/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"
#include "se-config.h"

/*
 * se_config_parse(): the limits, the JSON/YAML choice (kube's utilyaml.IsJSONBuffer) and the
 * outer message layer; the front ends and the decoder do the rest. Also small Go-compatible
 * helpers the decoder needs (durations, float text, quoting, redaction).
 */

/* ---- Go helpers ---- */

/* time.quote(): like strconv.Quote for ASCII, non-ASCII and control bytes as \xNN. The text is
 * decoded data and may hold NUL bytes, so it comes with its length. */
static char *time_quote(const char *s, size_t n) {
        char *o = malloc(n * 4 + 3), *q = o;

        if (!o)
                return NULL;
        *q++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; p < (const unsigned char *) s + n; p++) {
                if (*p >= 0x80 || *p < 0x20)
                        q += sprintf(q, "\\x%02x", *p);
                else {
                        if (*p == '"' || *p == '\\')
                                *q++ = '\\';
                        *q++ = (char) *p;
                }
        }
        *q++ = '"';
        *q = '\0';
        return o;
}

static int duration_error(const char *what, const char *unit, size_t unit_len, const char *orig, size_t orig_len,
                          char **ret_err) {
        _cleanup_free_ char *qo = time_quote(orig, orig_len), *qu = unit ? time_quote(unit, unit_len) : NULL;

        if (!qo || (unit && !qu))
                return -ENOMEM;
        if (unit) {
                if (asprintf(ret_err, "time: unknown unit %s in duration %s", qu, qo) < 0)
                        return -ENOMEM;
        } else if (asprintf(ret_err, "time: %s %s", what, qo) < 0)
                return -ENOMEM;
        return -EINVAL;
}

static bool is_digit_at(const char *s, const char *end) {
        return s < end && *s >= '0' && *s <= '9';
}

/* Go's time.ParseDuration over exactly len bytes (a NUL byte is just an unknown unit character). */
int se_go_parse_duration(const char *orig, size_t len, int64_t *ret_ns, char **ret_err) {
        static const struct {
                const char *name;
                uint64_t ns;
        } units[] = {
                {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 */
                {"\xce\xbcs", 1000},                                         /* U+03BC */
                {"ms", 1000000},     {"s", 1000000000}, {"m", UINT64_C(60000000000)}, {"h", UINT64_C(3600000000000)},
        };
        const uint64_t limit = UINT64_C(1) << 63;
        const char *s = orig, *end = orig + len;
        uint64_t d = 0;
        bool neg = false;

#define INVALID(what) duration_error(what, NULL, 0, orig, len, ret_err)
        *ret_err = NULL;
        if (s < end && (*s == '-' || *s == '+')) {
                neg = *s == '-';
                s++;
        }
        if (end - s == 1 && *s == '0') {
                *ret_ns = 0;
                return 0;
        }
        if (s == end)
                return INVALID("invalid duration");
        while (s < end) {
                uint64_t v = 0, f = 0, unit = 0;
                double scale = 1;
                bool pre = false, post = false, overflow = false;
                const char *u;
                size_t ul;

                if (!(*s == '.' || is_digit_at(s, end)))
                        return INVALID("invalid duration");
                while (is_digit_at(s, end)) {
                        if (v > limit / 10)
                                return INVALID("invalid duration");
                        v = v * 10 + (uint64_t) (*s - '0');
                        if (v > limit)
                                return INVALID("invalid duration");
                        s++;
                        pre = true;
                }
                if (s < end && *s == '.') {
                        s++;
                        while (is_digit_at(s, end)) {
                                post = true;
                                if (!overflow) {
                                        if (f > (limit - 1) / 10)
                                                overflow = true;
                                        else {
                                                uint64_t y = f * 10 + (uint64_t) (*s - '0');
                                                if (y > limit)
                                                        overflow = true;
                                                else {
                                                        f = y;
                                                        scale *= 10;
                                                }
                                        }
                                }
                                s++;
                        }
                }
                if (!pre && !post)
                        return INVALID("invalid duration");
                u = s;
                while (s < end && *s != '.' && !is_digit_at(s, end))
                        s++;
                ul = (size_t) (s - u);
                if (ul == 0)
                        return INVALID("missing unit in duration");
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (strlen(units[i].name) == ul && memcmp(u, units[i].name, ul) == 0)
                                unit = units[i].ns;
                if (unit == 0)
                        return duration_error(NULL, u, ul, orig, len, ret_err);
                if (v > limit / unit)
                        return INVALID("invalid duration");
                v *= unit;
                if (f > 0) {
                        v += (uint64_t) ((double) f * ((double) unit / scale));
                        if (v > limit)
                                return INVALID("invalid duration");
                }
                d += v;
                if (d > limit)
                        return INVALID("invalid duration");
        }
        if (neg) {
                *ret_ns = d == limit ? INT64_MIN : -(int64_t) d;
                return 0;
        }
        if (d > limit - 1)
                return INVALID("invalid duration");
        *ret_ns = (int64_t) d;
        return 0;
#undef INVALID
}

void se_go_format_float(double v, char *buf, size_t size) {
        char tmp[64];
        int p, exp;
        double a = fabs(v);
        const char *e;

        for (p = 1; p < 17; p++) {
                snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        e = strchr(tmp, 'e');
        exp = e ? atoi(e + 1) : 0;
        if (a == 0 || (a >= 1e-6 && a < 1e21)) {
                int decimals = p - 1 - exp;

                snprintf(buf, size, "%.*f", decimals < 0 ? 0 : decimals, v);
                return;
        }
        /* Go's encoding/json turns "e-07" into "e-7" */
        if (e && e[1] == '-' && e[2] == '0' && e[3] != '\0' && e[4] == '\0')
                memmove((char *) e + 2, e + 3, 2);
        snprintf(buf, size, "%s", tmp);
}

/* ---- secrets ---- */

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

/* ---- entry point ---- */

/* unicode.IsSpace over UTF-8; returns the length of the space at p, 0 if none. */
static size_t go_space(const unsigned char *p, size_t n) {
        if (n >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
                return 1;
        if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0))
                return 2;
        if (n >= 3 && p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
                return 3;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
                return 3;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
                return 3;
        if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
                return 3;
        return 0;
}

static bool is_json_buffer(const char *data, size_t size) {
        size_t i = 0, n;

        while (i < size && (n = go_space((const unsigned char *) data + i, size - i)) > 0)
                i += n;
        return i < size && data[i] == '{';
}

/* Go's %q of the path for the message prefix. */
static char *quote_path(const char *path) {
        size_t n = strlen(path);
        char *o = malloc(n * 4 + 3), *q = o;

        if (!o)
                return NULL;
        *q++ = '"';
        for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        *q++ = '\\';
                        *q++ = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f)
                        q += sprintf(q, "\\x%02x", *p);
                else
                        *q++ = (char) *p;
        }
        *q++ = '"';
        *q = '\0';
        return o;
}

_public_ int se_config_parse(const char *path, const void *data, size_t size, se_config **ret, se_error *e) {
        _cleanup_free_ char *qpath = NULL, *err = NULL, *strict = NULL;
        json_object *root = NULL;
        se_config *c = NULL;
        bool yaml;
        int r;

        if (!data && size > 0)
                return se_error_set(e, -EINVAL, "no data");
        if (!data)
                data = "";
        qpath = quote_path(path ? path : "");
        if (!qpath)
                return se_error_set(e, -ENOMEM, "out of memory");

        if (size > SE_CONFIG_MAX_SIZE)
                return se_error_set(
                        e, -E2BIG,
                        "error decoding encryption provider configuration file %s: file is %zu bytes, larger "
                        "than the limit of %u bytes",
                        qpath, size, SE_CONFIG_MAX_SIZE);

        yaml = !is_json_buffer(data, size);
        if (yaml)
                r = se_config_yaml_to_tree(data, size, &root, &strict, &err);
        else
                r = se_config_json_to_tree(data, size, &root, &err);
        if (r >= 0) {
                r = se_config_decode_tree(root, yaml, strict, data, size, &c, &err);
                se_json_wipe_secrets(root);
                json_object_put(root);
        }
        if (r == -ENOMEM)
                return se_error_set(e, -ENOMEM,
                                    "error decoding encryption provider configuration file %s: out of memory", qpath);
        if (r < 0)
                return se_error_set(e, r == -E2BIG ? -E2BIG : -EBADMSG,
                                    "error decoding encryption provider configuration file %s: %s", qpath,
                                    err ? err : "invalid input");
        if (ret)
                *ret = c;
        else
                se_config_free(c);
        return 0;
}
