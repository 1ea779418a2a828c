/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "go-json.h"
#include "macro.h"
#include "se-config.h"
#include "se-util.h"

/*
 * kube-apiserver's ValidateEncryptionConfiguration (k8s.io/apiserver validation_encryption.go),
 * with its traversal order and its field.Error rendering, then the build step's masking check,
 * then our stricter rotation checks. Messages never carry key material: kube prints "REDACTED"
 * for secrets, and where kube would dump the provider struct with its secrets we print the same
 * JSON with every secret replaced by "REDACTED".
 */

/* Defined in config-write.c (Go's encoding/json string encoder and utf8.DecodeRune). */

#define STRICT_HINT "(secrets-encrypt refuses this because a rotation could remove the wrong key)"

/* ---- field.ErrorList ---- */

typedef struct errlist {
        char **msgs;
        size_t n, cap;
        bool oom;
} errlist;

static void errlist_done(errlist *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->msgs[i]);
        free(l->msgs);
        *l = (errlist){};
}

static void errlist_push(errlist *l, char *msg) {
        if (!msg) {
                l->oom = true;
                return;
        }
        if (l->n == l->cap) {
                size_t ncap = l->cap ? l->cap * 2 : 8;
                char **n = realloc(l->msgs, ncap * sizeof(char *));

                if (!n) {
                        free(msg);
                        l->oom = true;
                        return;
                }
                l->msgs = n;
                l->cap = ncap;
        }
        l->msgs[l->n++] = msg;
}

static void errlist_addf(errlist *l, const char *fmt, ...) _printf_(2, 3);
static void errlist_addf(errlist *l, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&m, fmt, ap);
        va_end(ap);
        errlist_push(l, k < 0 ? NULL : m);
}

/* field.Required: "<path>: Required value: <detail>" */
static void add_required(errlist *l, const char *path, const char *detail) {
        if (!path) {
                l->oom = true;
                return;
        }
        errlist_addf(l, "%s: Required value: %s", path, detail);
}

/* field.Invalid with an already rendered value: "<path>: Invalid value: <value>: <detail>" */
static void add_invalid(errlist *l, const char *path, const char *value, const char *detail) {
        if (!path || !value || !detail) {
                l->oom = true;
                return;
        }
        errlist_addf(l, "%s: Invalid value: %s: %s", path, value, detail);
}

/* ErrorList.ToAggregate().Error(): repeated messages dropped, one message alone, else
 * "[m1, m2, …]". */
static int errlist_finish(errlist *l, const char *prefix, se_error *e) {
        se_buf b = {};
        size_t kept = 0;
        int r = 0;

        if (l->oom)
                return se_error_set(e, -ENOMEM, "out of memory while validating the encryption configuration");
        if (l->n == 0)
                return 0;

        for (size_t i = 0; i < l->n && r >= 0; i++) {
                bool dup = false;

                for (size_t j = 0; j < i && !dup; j++)
                        dup = streq(l->msgs[i], l->msgs[j]);
                if (dup)
                        continue;
                if (kept++ > 0)
                        r = se_buf_append_str(&b, ", ");
                if (r >= 0)
                        r = se_buf_append_str(&b, l->msgs[i]);
        }
        if (r < 0) {
                se_buf_free(&b);
                return se_error_set(e, r, "out of memory while validating the encryption configuration");
        }
        r = se_error_set(e, -EBADMSG, "%s%s%s%s", prefix ?: "", kept > 1 ? "[" : "", (const char *) b.data,
                         kept > 1 ? "]" : "");
        se_buf_free(&b);
        return r;
}

/* ---- Go value rendering ---- */

/* unicode.IsPrint for the runes that matter in practice: letters, marks, numbers, punctuation
 * and symbols print; other spaces, format characters, private use and noncharacters do not. */
static bool go_is_print(uint32_t r) {
        static const uint32_t ranges[][2] = {
                {0x0080, 0x00A0},   {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},    {0x06DD, 0x06DD},
                {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x1680, 0x1680},    {0x180E, 0x180E},
                {0x2000, 0x200F},   {0x2028, 0x202F},   {0x205F, 0x206F},   {0x3000, 0x3000},    {0xD800, 0xF8FF},
                {0xFEFF, 0xFEFF},   {0xFFF0, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},  {0x13430, 0x1343F},
                {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF}, {0xF0000, 0x10FFFF},
        };

        if (r < 0x80)
                return r >= 0x20 && r < 0x7F;
        if ((r & 0xFFFE) == 0xFFFE)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++)
                if (r >= ranges[i][0] && r <= ranges[i][1])
                        return false;
        return true;
}

/* Go's strconv.Quote (what %q prints for a string). */
static char *go_quote(const char *s) {
        size_t n = s ? strlen(s) : 0;
        se_buf b = {};
        char tmp[16];
        int r;

        r = se_buf_append(&b, "\"", 1);
        for (size_t i = 0; r >= 0 && i < n;) {
                uint32_t rune;
                int w = se_go_utf8_decode(s + i, n - i, &rune);

                if (rune == 0xFFFD && w == 1) {
                        snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned char) s[i]);
                        r = se_buf_append_str(&b, tmp);
                } else if (rune == '"' || rune == '\\') {
                        tmp[0] = '\\';
                        tmp[1] = (char) rune;
                        r = se_buf_append(&b, tmp, 2);
                } else if (go_is_print(rune))
                        r = se_buf_append(&b, s + i, (size_t) w);
                else {
                        switch (rune) {
                        case '\a':
                                r = se_buf_append_str(&b, "\\a");
                                break;
                        case '\b':
                                r = se_buf_append_str(&b, "\\b");
                                break;
                        case '\f':
                                r = se_buf_append_str(&b, "\\f");
                                break;
                        case '\n':
                                r = se_buf_append_str(&b, "\\n");
                                break;
                        case '\r':
                                r = se_buf_append_str(&b, "\\r");
                                break;
                        case '\t':
                                r = se_buf_append_str(&b, "\\t");
                                break;
                        case '\v':
                                r = se_buf_append_str(&b, "\\v");
                                break;
                        default:
                                if (rune < 0x20 || rune == 0x7F)
                                        snprintf(tmp, sizeof(tmp), "\\x%02" PRIx32, rune);
                                else if (rune < 0x10000)
                                        snprintf(tmp, sizeof(tmp), "\\u%04" PRIx32, rune);
                                else
                                        snprintf(tmp, sizeof(tmp), "\\U%08" PRIx32, rune);
                                r = se_buf_append_str(&b, tmp);
                        }
                }
                i += (size_t) w;
        }
        if (r >= 0)
                r = se_buf_append(&b, "\"", 1);
        if (r < 0) {
                se_buf_free(&b);
                return NULL;
        }
        return (char *) b.data;
}

/* json.Marshal of a []string. */
static char *json_string_list(char *const *v, size_t n) {
        se_buf b = {};
        int r;

        if (!v && n == 0)
                return strdup("null");
        r = se_buf_append(&b, "[", 1);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (i > 0)
                        r = se_buf_append(&b, ",", 1);
                if (r >= 0)
                        r = se_go_json_append_string(&b, v[i] ?: "");
        }
        if (r >= 0)
                r = se_buf_append(&b, "]", 1);
        if (r < 0) {
                se_buf_free(&b);
                return NULL;
        }
        return (char *) b.data;
}

/* json.Marshal of *metav1.Duration: the Go duration text as a JSON string. */
static char *json_duration(int64_t ns) {
        char d[64];
        char *s = NULL;

        if (se_format_go_duration(ns, d, sizeof(d)) < 0)
                return NULL;
        return asprintf(&s, "\"%s\"", d) < 0 ? NULL : s;
}

/* A key name that holds a key (name and secret swapped, a pasted key, "<key>:x") is printed as
 * REDACTED like a secret: any run of 20 or more base64 characters counts. k3s's names
 * ("aescbckey-<RFC 3339>") and kube's ("key1") have none. */
static const char *key_name_for_message(const char *name) {
        size_t run = 0;

        for (const char *p = name ?: ""; *p; p++) {
                bool b64 = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                           *p == '+' || *p == '/' || *p == '=';

                run = b64 ? run + 1 : 0;
                if (run >= 20)
                        return "REDACTED";
        }
        return name ?: "";
}

static int json_keys_redacted(se_buf *b, const se_key_list *l) {
        int r;

        if (!l)
                return se_buf_append_str(b, "null");
        r = se_buf_append_str(b, "{\"Keys\":");
        if (r < 0)
                return r;
        if (!l->keys && l->n_keys == 0)
                return se_buf_append_str(b, "null}");
        r = se_buf_append(b, "[", 1);
        for (size_t i = 0; r >= 0 && i < l->n_keys; i++) {
                if (i > 0)
                        r = se_buf_append(b, ",", 1);
                if (r >= 0)
                        r = se_buf_append_str(b, "{\"Name\":");
                if (r >= 0)
                        r = se_go_json_append_string(b, key_name_for_message(l->keys[i].name));
                /* kube prints the secret here; we never do */
                if (r >= 0)
                        r = se_buf_append_str(b, ",\"Secret\":\"REDACTED\"}");
        }
        if (r < 0)
                return r;
        return se_buf_append_str(b, "]}");
}

static int json_kms(se_buf *b, const se_kms *k) {
        char num[32], d[64];
        int r;

        if (!k)
                return se_buf_append_str(b, "null");
        r = se_buf_append_str(b, "{\"APIVersion\":");
        if (r >= 0)
                r = se_go_json_append_string(b, k->api_version);
        if (r >= 0)
                r = se_buf_append_str(b, ",\"Name\":");
        if (r >= 0)
                r = se_go_json_append_string(b, k->name);
        if (r >= 0)
                r = se_buf_append_str(b, ",\"CacheSize\":");
        if (r >= 0) {
                if (k->has_cachesize) {
                        snprintf(num, sizeof(num), "%" PRId32, k->cachesize);
                        r = se_buf_append_str(b, num);
                } else
                        r = se_buf_append_str(b, "null");
        }
        if (r >= 0)
                r = se_buf_append_str(b, ",\"Endpoint\":");
        if (r >= 0)
                r = se_go_json_append_string(b, k->endpoint);
        if (r >= 0)
                r = se_buf_append_str(b, ",\"Timeout\":");
        if (r >= 0)
                r = se_format_go_duration(k->timeout_ns, d, sizeof(d));
        if (r >= 0)
                r = se_go_json_append_string(b, d);
        if (r < 0)
                return r;
        return se_buf_append(b, "}", 1);
}

/* json.Marshal of the internal ProviderConfiguration (no json tags, Go field names), which kube
 * uses as the bad value of the exactly-one-provider errors; secrets redacted. */
static char *json_provider_redacted(const se_provider *p) {
        se_buf b = {};
        int r;

        r = se_buf_append_str(&b, "{\"AESGCM\":");
        if (r >= 0)
                r = json_keys_redacted(&b, p->aesgcm);
        if (r >= 0)
                r = se_buf_append_str(&b, ",\"AESCBC\":");
        if (r >= 0)
                r = json_keys_redacted(&b, p->aescbc);
        if (r >= 0)
                r = se_buf_append_str(&b, ",\"Secretbox\":");
        if (r >= 0)
                r = json_keys_redacted(&b, p->secretbox);
        if (r >= 0)
                r = se_buf_append_str(&b, p->identity ? ",\"Identity\":{}" : ",\"Identity\":null");
        if (r >= 0)
                r = se_buf_append_str(&b, ",\"KMS\":");
        if (r >= 0)
                r = json_kms(&b, p->kms);
        if (r >= 0)
                r = se_buf_append(&b, "}", 1);
        if (r < 0) {
                se_buf_free(&b);
                return NULL;
        }
        return (char *) b.data;
}

static char *pathf(const char *fmt, ...) _printf_(1, 2);
static char *pathf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return k < 0 ? NULL : s;
}

/* ---- resources ---- */

typedef struct group_resource {
        const char *group; /* points into the string, or "" */
        size_t resource_len;
        const char *resource;
} group_resource;

/* schema.ParseGroupResource: split at the first '.'. */
static group_resource parse_group_resource(const char *s) {
        const char *dot;

        s = s ?: "";
        dot = strchr(s, '.');
        if (!dot)
                return (group_resource){.group = "", .resource = s, .resource_len = strlen(s)};
        return (group_resource){.group = dot + 1, .resource = s, .resource_len = (size_t) (dot - s)};
}

static bool gr_resource_is(const group_resource *g, const char *res) {
        return g->resource_len == strlen(res) && strneq(g->resource, res, g->resource_len);
}

static bool gr_equal(const group_resource *a, const group_resource *b) {
        return a->resource_len == b->resource_len && strneq(a->resource, b->resource, a->resource_len) &&
               streq(a->group, b->group);
}

/* strings.ToLower(s) != s, including Go's handling of invalid UTF-8 (rewritten to U+FFFD, so
 * the string "changes"). */
static bool has_capital(const char *s) {
        size_t n = strlen(s);
        bool ascii = true, upper = false;
        locale_t loc;

        for (size_t i = 0; i < n; i++) {
                if ((unsigned char) s[i] >= 0x80)
                        ascii = false;
                else if (s[i] >= 'A' && s[i] <= 'Z')
                        upper = true;
        }
        if (ascii || upper)
                return upper;

        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
        for (size_t i = 0; i < n && !upper;) {
                uint32_t rune;
                int w = se_go_utf8_decode(s + i, n - i, &rune);

                if (rune == 0xFFFD && w == 1)
                        upper = true;
                else if (rune >= 0x80 && loc != (locale_t) 0 && (uint32_t) towlower_l((wint_t) rune, loc) != rune)
                        upper = true;
                i += (size_t) w;
        }
        if (loc != (locale_t) 0)
                freelocale(loc);
        return upper;
}

static void validate_resource_overlap(errlist *l, const se_resource_config *rc, size_t i) {
        _cleanup_free_ group_resource *gr = NULL;
        bool overlap = false, duplicate = false;

        if (rc->n_resources < 2)
                return;
        gr = calloc(rc->n_resources, sizeof(group_resource));
        if (!gr) {
                l->oom = true;
                return;
        }
        for (size_t k = 0; k < rc->n_resources; k++)
                gr[k] = parse_group_resource(rc->resources[k]);

        for (size_t a = 0; a < rc->n_resources; a++)
                for (size_t b = 0; b < rc->n_resources; b++) {
                        if (a == b)
                                continue;
                        if (gr_equal(&gr[a], &gr[b]) && !duplicate) {
                                duplicate = true;
                                continue;
                        }
                        if (overlap)
                                continue;
                        if (streq(gr[a].group, "*") && gr_resource_is(&gr[a], "*")) {
                                overlap = true;
                                continue;
                        }
                        if (!streq(gr[a].group, gr[b].group))
                                continue;
                        if (gr_resource_is(&gr[a], "*") || gr_resource_is(&gr[b], "*"))
                                overlap = true;
                }

        if (duplicate || overlap) {
                _cleanup_free_ char *path = pathf("resources[%zu].resources", i);
                _cleanup_free_ char *value = json_string_list(rc->resources, rc->n_resources);

                if (duplicate)
                        add_invalid(l, path, value, "the same resource cannot be specified multiple times");
                if (overlap)
                        add_invalid(l, path, value,
                                    "using overlapping resources such as 'secrets' and '*.' in the same resource "
                                    "list is not allowed as they will be masked");
        }
}

static void validate_resource_names(errlist *l, const se_resource_config *rc, size_t i) {
        for (size_t j = 0; j < rc->n_resources; j++) {
                const char *res = rc->resources[j] ?: "", *detail = NULL;
                group_resource gr;

                if (has_capital(res))
                        detail = "resource name should not contain capital letters";
                else if (streq(res, "*"))
                        detail = "use '*.' to encrypt all the resources from core API group or *.* to encrypt all "
                                 "resources";
                else if (streq(res, "apiserveripinfo") || streq(res, "serviceipallocations") ||
                         streq(res, "servicenodeportallocations"))
                        detail = "resources which do not have REST API/s cannot be encrypted";
                else {
                        gr = parse_group_resource(res);
                        if (streq(gr.group, "events.k8s.io"))
                                detail = "'*.events.k8s.io' objects are stored using the 'events' API group in "
                                         "etcd. Use 'events' instead in the config file";
                        else if (streq(gr.group, "extensions"))
                                detail = "'extensions' group has been removed and cannot be used for encryption";
                        else if (streq(gr.group, "*") && !gr_resource_is(&gr, "*"))
                                detail = "encrypting the same resource across groups is not supported";
                }
                if (detail) {
                        _cleanup_free_ char *path = pathf("resources[%zu].resources[%zu]", i, j);
                        _cleanup_free_ char *value = go_quote(res);

                        add_invalid(l, path, value, detail);
                }
        }
}

/* ---- providers ---- */

static void validate_single_provider(errlist *l, const se_provider *p, size_t i, size_t j) {
        _cleanup_free_ char *path = NULL, *value = NULL;
        unsigned count = 0;
        const char *detail;

        (void) se_provider_get_type(p, &count);
        if (count == 1)
                return;
        detail = count == 0 ? "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, "
                              "Secretbox, Identity"
                            : "more than one provider specified in a single element, should split into different "
                              "list elements";
        path = pathf("resources[%zu].providers[%zu]", i, j);
        value = json_provider_redacted(p);
        add_invalid(l, path, value, detail);
}

static void validate_keys(errlist *l, const se_key_list *kl, const char *base, const size_t *sizes, size_t n_sizes,
                          const char *sizes_text) {
        if (kl->n_keys == 0) {
                add_required(l, base, "at least one keys is required");
                return;
        }
        for (size_t k = 0; k < kl->n_keys; k++) {
                const se_key *key = &kl->keys[k];
                _cleanup_free_ char *spath = pathf("%s[%zu].secret", base, k);
                uint8_t *raw = NULL;
                size_t raw_len = 0;
                bool ok = false;
                int r;

                if (isempty(key->name)) {
                        _cleanup_free_ char *npath = pathf("%s[%zu].name", base, k);

                        add_required(l, npath, "name is a mandatory field for a key");
                }
                if (isempty(key->secret)) {
                        add_required(l, spath, "secret is a mandatory field for a key");
                        continue;
                }
                r = se_base64_decode(key->secret, strlen(key->secret), &raw, &raw_len);
                if (r == -ENOMEM) {
                        l->oom = true;
                        return;
                }
                if (r < 0) {
                        add_invalid(l, spath, "\"REDACTED\"", "secrets must be base64 encoded");
                        continue;
                }
                explicit_wipe(raw, raw_len);
                free(raw);
                for (size_t s = 0; s < n_sizes; s++)
                        ok = ok || raw_len == sizes[s];
                if (!ok)
                        errlist_addf(l,
                                     "%s: Invalid value: \"REDACTED\": secret is not of the expected length, got %zu, "
                                     "expected one of %s",
                                     spath ?: "", raw_len, sizes_text);
                if (!spath)
                        l->oom = true;
        }
}

/* ---- the parts of Go's net/url Parse that can fail for a KMS endpoint ---- */

static bool ishex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return c - 'A' + 10;
}

typedef enum url_mode { URL_PATH, URL_HOST, URL_USER, URL_FRAGMENT } url_mode;

static bool host_char_ok(char c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                return true;
        return strchr("!$&'()*+,;=:[]<>\"-_.~", c) != NULL;
}

/* net/url unescape()'s validation: returns a malloc'd error detail, NULL when fine; *oom on
 * allocation failure. */
static char *url_unescape_check(const char *s, size_t n, url_mode mode, bool *oom) {
        char *err = NULL;

        for (size_t i = 0; i < n;) {
                if (s[i] == '%') {
                        if (i + 2 >= n || !ishex(s[i + 1]) || !ishex(s[i + 2])) {
                                _cleanup_free_ char *bad = strndup(s + i, MIN((size_t) 3, n - i)), *q = NULL;

                                q = bad ? go_quote(bad) : NULL;
                                if (!q || asprintf(&err, "invalid URL escape %s", q) < 0) {
                                        *oom = true;
                                        return NULL;
                                }
                                return err;
                        }
                        if (mode == URL_HOST && unhex(s[i + 1]) < 8 && !strneq(s + i, "%25", 3)) {
                                _cleanup_free_ char *bad = strndup(s + i, 3), *q = NULL;

                                q = bad ? go_quote(bad) : NULL;
                                if (!q || asprintf(&err, "invalid URL escape %s", q) < 0) {
                                        *oom = true;
                                        return NULL;
                                }
                                return err;
                        }
                        i += 3;
                        continue;
                }
                if (mode == URL_HOST && (unsigned char) s[i] < 0x80 && !host_char_ok(s[i])) {
                        char bad[2] = {s[i], 0};
                        _cleanup_free_ char *q = go_quote(bad);

                        if (!q || asprintf(&err, "invalid character %s in host name", q) < 0) {
                                *oom = true;
                                return NULL;
                        }
                        return err;
                }
                i++;
        }
        return NULL;
}

static bool valid_optional_port(const char *p, size_t n) {
        if (n == 0)
                return true;
        if (p[0] != ':')
                return false;
        for (size_t i = 1; i < n; i++)
                if (p[i] < '0' || p[i] > '9')
                        return false;
        return true;
}

static char *invalid_port_error(const char *p, size_t n, bool *oom) {
        _cleanup_free_ char *port = strndup(p, n), *q = NULL;
        char *err = NULL;

        q = port ? go_quote(port) : NULL;
        if (!q || asprintf(&err, "invalid port %s after host", q) < 0) {
                *oom = true;
                return NULL;
        }
        return err;
}

static char *url_parse_host(const char *h, size_t n, bool *oom) {
        if (n > 0 && h[0] == '[') {
                const char *close = NULL;

                for (size_t i = 0; i < n; i++)
                        if (h[i] == ']')
                                close = h + i;
                if (!close) {
                        char *err = strdup("missing ']' in host");

                        if (!err)
                                *oom = true;
                        return err;
                }
                if (!valid_optional_port(close + 1, (size_t) (h + n - (close + 1))))
                        return invalid_port_error(close + 1, (size_t) (h + n - (close + 1)), oom);
        } else {
                const char *colon = NULL;

                for (size_t i = 0; i < n; i++)
                        if (h[i] == ':')
                                colon = h + i;
                if (colon && !valid_optional_port(colon, (size_t) (h + n - colon)))
                        return invalid_port_error(colon, (size_t) (h + n - colon), oom);
        }
        return url_unescape_check(h, n, URL_HOST, oom);
}

static bool valid_userinfo(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if ((unsigned char) c >= 0x80)
                        return false;
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
                        continue;
                if (!strchr("-._:~!$&'()*+,;=%@", c) || c == 0)
                        return false;
        }
        return true;
}

static char *url_parse_authority(const char *a, size_t n, bool *oom) {
        const char *at = NULL;
        char *err;

        for (size_t i = 0; i < n; i++)
                if (a[i] == '@')
                        at = a + i;
        err = at ? url_parse_host(at + 1, (size_t) (a + n - (at + 1)), oom) : url_parse_host(a, n, oom);
        if (err || *oom || !at)
                return err;
        if (!valid_userinfo(a, (size_t) (at - a))) {
                err = strdup("net/url: invalid userinfo");
                if (!err)
                        *oom = true;
                return err;
        }
        /* username and password (split at the first ':') are unescaped separately */
        {
                const char *colon = memchr(a, ':', (size_t) (at - a));
                size_t ulen = colon ? (size_t) (colon - a) : (size_t) (at - a);

                err = url_unescape_check(a, ulen, URL_USER, oom);
                if (err || *oom || !colon)
                        return err;
                return url_unescape_check(colon + 1, (size_t) (at - (colon + 1)), URL_USER, oom);
        }
}

/* url.Parse's parse() for rawURL (no fragment). Returns the error detail or NULL; on success
 * *ret_scheme is the lower-cased scheme. */
static char *url_parse_inner(const char *raw, char **ret_scheme, bool *oom) {
        size_t n = strlen(raw), scheme_len = 0;
        const char *rest = raw;
        char *err = NULL, *scheme;
        size_t rest_len;

        for (size_t i = 0; i < n; i++)
                if ((unsigned char) raw[i] < 0x20 || raw[i] == 0x7f) {
                        err = strdup("net/url: invalid control character in URL");
                        goto out;
                }
        if (streq(raw, "*"))
                goto ok;

        /* getScheme */
        for (size_t i = 0; i < n; i++) {
                char c = raw[i];

                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                        continue;
                if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
                        if (i == 0)
                                break;
                        continue;
                }
                if (c == ':') {
                        if (i == 0) {
                                err = strdup("missing protocol scheme");
                                goto out;
                        }
                        scheme_len = i;
                        rest = raw + i + 1;
                }
                break;
        }

        /* query: "x?" forces an empty query, otherwise cut at the first '?' */
        rest_len = strlen(rest);
        {
                const char *q = memchr(rest, '?', rest_len);

                if (q)
                        rest_len = (size_t) (q - rest);
        }

        if (rest_len == 0 || rest[0] != '/') {
                if (scheme_len > 0)
                        goto ok; /* opaque */
                {
                        const char *slash = memchr(rest, '/', rest_len);
                        size_t seg = slash ? (size_t) (slash - rest) : rest_len;

                        if (memchr(rest, ':', seg)) {
                                err = strdup("first path segment in URL cannot contain colon");
                                goto out;
                        }
                }
        }
        if ((scheme_len > 0 || !(rest_len >= 3 && strneq(rest, "///", 3))) && rest_len >= 2 && strneq(rest, "//", 2)) {
                const char *auth = rest + 2, *slash = memchr(auth, '/', rest_len - 2);
                size_t auth_len = slash ? (size_t) (slash - auth) : rest_len - 2;

                err = url_parse_authority(auth, auth_len, oom);
                if (err || *oom)
                        goto out;
                rest_len -= 2 + auth_len;
                rest = auth + auth_len;
        }
        err = url_unescape_check(rest, rest_len, URL_PATH, oom);
        if (err || *oom)
                goto out;
ok:
        scheme = strndup(raw, scheme_len);
        if (!scheme) {
                *oom = true;
                return NULL;
        }
        for (char *p = scheme; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        *ret_scheme = scheme;
        return NULL;
out:
        if (!err)
                *oom = true;
        return err;
}

/* url.Parse: returns the url.Error text or NULL; *ret_scheme set on success. */
static char *go_url_parse(const char *raw, char **ret_scheme, bool *oom) {
        _cleanup_free_ char *u = NULL, *detail = NULL, *q = NULL;
        const char *hash = strchr(raw, '#');
        char *err = NULL;

        u = hash ? strndup(raw, (size_t) (hash - raw)) : strdup(raw);
        if (!u) {
                *oom = true;
                return NULL;
        }
        detail = url_parse_inner(u, ret_scheme, oom);
        if (*oom)
                return NULL;
        if (!detail && hash) {
                detail = url_unescape_check(hash + 1, strlen(hash + 1), URL_FRAGMENT, oom);
                if (*oom) {
                        free(*ret_scheme);
                        *ret_scheme = NULL;
                        return NULL;
                }
                if (detail) {
                        free(*ret_scheme);
                        *ret_scheme = NULL;
                        free(u);
                        u = strdup(raw); /* a fragment error names the whole URL */
                        if (!u) {
                                *oom = true;
                                return NULL;
                        }
                }
        }
        if (!detail)
                return NULL;
        q = go_quote(u);
        if (!q || asprintf(&err, "parse %s: %s", q, detail) < 0) {
                *oom = true;
                return NULL;
        }
        return err;
}

typedef struct name_set {
        const char **names;
        size_t n, cap;
} name_set;

static bool name_set_has(const name_set *s, const char *name) {
        for (size_t i = 0; i < s->n; i++)
                if (streq(s->names[i], name))
                        return true;
        return false;
}

static int name_set_add(name_set *s, const char *name) {
        if (name_set_has(s, name))
                return 0;
        if (s->n == s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 8;
                const char **n = realloc(s->names, ncap * sizeof(char *));

                if (!n)
                        return -ENOMEM;
                s->names = n;
                s->cap = ncap;
        }
        s->names[s->n++] = name;
        return 0;
}

static void validate_kms(errlist *l, const se_kms *k, const char *base, const name_set *names, bool reload) {
        const char *name = k->name ?: "", *version = k->api_version ?: "", *endpoint = k->endpoint ?: "";
        bool v1 = streq(version, "v1");

        /* name */
        {
                _cleanup_free_ char *path = pathf("%s.name", base), *q = go_quote(name);

                if (isempty(name))
                        add_required(l, path, "name is a mandatory field for a provider");
                if (!v1 && strchr(name, ':')) {
                        _cleanup_free_ char *d = pathf("invalid KMS provider name %s, must not contain ':'", name);

                        add_invalid(l, path, q, d);
                }
                if ((reload || !v1) && name_set_has(names, name)) {
                        _cleanup_free_ char *d = pathf("duplicate KMS provider name %s, names must be unique", name);

                        add_invalid(l, path, q, d);
                }
        }
        /* timeout */
        if (k->timeout_ns <= 0) {
                _cleanup_free_ char *path = pathf("%s.timeout", base), *v = json_duration(k->timeout_ns);

                add_invalid(l, path, v, "timeout should be a positive value");
        }
        /* endpoint */
        {
                _cleanup_free_ char *path = pathf("%s.endpoint", base), *q = go_quote(endpoint), *scheme = NULL,
                                    *err = NULL, *d = NULL;
                bool oom = false;

                if (isempty(endpoint))
                        add_invalid(l, path, "\"\"", "endpoint is a mandatory field for a kms");
                else {
                        err = go_url_parse(endpoint, &scheme, &oom);
                        if (oom)
                                l->oom = true;
                        else if (err) {
                                d = pathf("invalid endpoint for kms provider, error: %s", err);
                                add_invalid(l, path, q, d);
                        } else if (!streq(scheme, "unix")) {
                                _cleanup_free_ char *qs = go_quote(scheme);

                                d = qs ? pathf("unsupported scheme %s for KMS provider, only unix is supported", qs)
                                       : NULL;
                                add_invalid(l, path, q, d);
                        }
                }
        }
        /* cachesize: kube dereferences it for v1, where defaulting always set it */
        if ((!v1 && k->has_cachesize) || (v1 && k->has_cachesize && k->cachesize == 0)) {
                _cleanup_free_ char *path = pathf("%s.cachesize", base), *v = pathf("%" PRId32, k->cachesize);

                if (!v1)
                        add_invalid(l, path, v, "cachesize is not supported in v2");
                if (v1 && k->cachesize == 0)
                        add_invalid(l, path, v, "cachesize should be a positive value, or negative to disable");
        }
        /* apiVersion; sic: kube formats the literal word "apiVersion" into the message */
        if (!v1 && !streq(version, "v2")) {
                _cleanup_free_ char *path = pathf("%s.apiVersion", base), *q = go_quote(version);

                add_invalid(l, path, q,
                            "unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported");
        }
}

static const size_t aes_sizes[] = {16, 24, 32};
static const size_t secretbox_sizes[] = {32};

_public_ int se_config_validate_kube(const se_config *c, bool reload, se_error *e) {
        name_set names = {};
        errlist l = {};
        int r;

        if (!c) {
                add_required(&l, "resources", "EncryptionConfiguration can't be nil");
                goto finish;
        }
        if (c->n_resources == 0) {
                add_required(&l, "resources", "at least one resources is required");
                goto finish;
        }

        for (size_t i = 0; i < c->n_resources && !l.oom; i++) {
                const se_resource_config *rc = &c->resources[i];

                if (rc->n_resources == 0) {
                        _cleanup_free_ char *path = pathf("resources[%zu].resources", i);
                        _cleanup_free_ char *d = pathf("at least one resources[%zu].resources is required", i);

                        if (!d)
                                l.oom = true;
                        else
                                add_required(&l, path, d);
                }
                validate_resource_overlap(&l, rc, i);
                validate_resource_names(&l, rc, i);
                if (rc->n_providers == 0) {
                        _cleanup_free_ char *path = pathf("resources[%zu].providers", i);
                        _cleanup_free_ char *d = pathf("at least one resources[%zu].providers is required", i);

                        if (!d)
                                l.oom = true;
                        else
                                add_required(&l, path, d);
                }

                for (size_t j = 0; j < rc->n_providers && !l.oom; j++) {
                        const se_provider *p = &rc->providers[j];
                        _cleanup_free_ char *base = NULL;

                        validate_single_provider(&l, p, i, j);

                        /* kube validates the first of KMS, AESGCM, AESCBC, Secretbox that is set */
                        if (p->kms) {
                                base = pathf("resources[%zu].providers[%zu].kms", i, j);
                                if (!base) {
                                        l.oom = true;
                                        break;
                                }
                                validate_kms(&l, p->kms, base, &names, reload);
                                if (name_set_add(&names, p->kms->name ?: "") < 0)
                                        l.oom = true;
                        } else if (p->aesgcm || p->aescbc || p->secretbox) {
                                const se_key_list *kl = p->aesgcm ?: p->aescbc ?: p->secretbox;
                                const char *type = p->aesgcm ? "aesgcm" : p->aescbc ? "aescbc" : "secretbox";
                                bool sb = kl == p->secretbox;

                                base = pathf("resources[%zu].providers[%zu].%s.keys", i, j, type);
                                if (!base) {
                                        l.oom = true;
                                        break;
                                }
                                validate_keys(&l, kl, base, sb ? secretbox_sizes : aes_sizes,
                                              sb ? ELEMENTSOF(secretbox_sizes) : ELEMENTSOF(aes_sizes),
                                              sb ? "[32]" : "[16 24 32]");
                        }
                }
        }

finish:
        r = errlist_finish(&l, NULL, e);
        errlist_done(&l);
        free(names.names);
        return r;
}

/* ---- build step (getTransformerOverridesAndKMSPluginProbes) ---- */

/* grYAMLString: "*." for {"" ,"*"}, else resource[.group]. */
static char *gr_yaml_string(const group_resource *g) {
        char *s = NULL;

        if (isempty(g->group) && gr_resource_is(g, "*"))
                return strdup("*.");
        if (isempty(g->group))
                return strndup(g->resource, g->resource_len);
        return asprintf(&s, "%.*s.%s", (int) g->resource_len, g->resource, g->group) < 0 ? NULL : s;
}

/* kube-apiserver's KMSv1 feature gate: off by default since Kubernetes 1.29. Process-wide, set
 * once from the settings (kms-v1) before any config is checked. */
static bool kms_v1_gate = false;

_public_ void se_config_set_kms_v1_gate(bool enabled) {
        kms_v1_gate = enabled;
}

_public_ bool se_config_get_kms_v1_gate(void) {
        return kms_v1_gate;
}

/* kmsPrefixTransformer: with the gate off, kube-apiserver refuses to start on a KMS v1 provider
 * (written "apiVersion: v1" or defaulted). */
static bool entry_has_kms_v1(const se_resource_config *rc) {
        for (size_t j = 0; j < rc->n_providers; j++)
                if (rc->providers[j].kms && streq(rc->providers[j].kms->api_version ?: "v1", "v1"))
                        return true;
        return false;
}

/* getTransformerOverridesAndKMSPluginProbes, entry by entry: the entry's providers are built (the
 * KMSv1 gate), then each of its resources is checked against the earlier "*.group" and "*.*" rules. */
_public_ int se_config_validate_build(const se_config *c, se_error *e) {
        _cleanup_free_ group_resource *seen = NULL;
        size_t n_seen = 0, total = 0;

        if (!c)
                return 0;

        for (size_t i = 0; i < c->n_resources; i++)
                total += c->resources[i].n_resources;
        seen = calloc(MAX(total, (size_t) 1), sizeof(group_resource));
        if (!seen)
                return se_error_set(e, -ENOMEM, "out of memory while validating the encryption configuration");

        for (size_t i = 0; i < c->n_resources; i++) {
                if (!kms_v1_gate && entry_has_kms_v1(&c->resources[i]))
                        return se_error_set(e, -EBADMSG,
                                            "error while building transformers: KMSv1 is deprecated and will only "
                                            "receive security updates going forward. Use KMSv2 instead.  Set "
                                            "--feature-gates=KMSv1=true to use the deprecated KMSv1 "
                                            "feature. " SE_CONFIG_KMS_V1_HINT);
                for (size_t j = 0; j < c->resources[i].n_resources; j++) {
                        group_resource gr = parse_group_resource(c->resources[i].resources[j]);
                        group_resource any_in_group = {.group = gr.group, .resource = "*", .resource_len = 1};
                        group_resource any = {.group = "*", .resource = "*", .resource_len = 1};
                        const group_resource *mask = NULL;

                        for (size_t k = 0; k < n_seen && !mask; k++)
                                if (gr_equal(&seen[k], &any_in_group))
                                        mask = &any_in_group;
                        for (size_t k = 0; k < n_seen && !mask; k++)
                                if (gr_equal(&seen[k], &any))
                                        mask = &any;
                        if (mask) {
                                _cleanup_free_ char *a = gr_yaml_string(&gr), *b = gr_yaml_string(mask);
                                _cleanup_free_ char *qa = a ? go_quote(a) : NULL, *qb = b ? go_quote(b) : NULL;

                                if (!qa || !qb)
                                        return se_error_set(e, -ENOMEM,
                                                            "out of memory while validating the "
                                                            "encryption configuration");
                                return se_error_set(e, -EBADMSG,
                                                    "error while building transformers: resource %s is masked by "
                                                    "earlier rule %s",
                                                    qa, qb);
                        }
                        seen[n_seen++] = gr;
                }
        }
        return 0;
}

/* ---- our stricter checks ---- */

/* True if data stored under key name b would also carry the prefix of key name a
 * ("k8s:enc:<type>:v1:" + a + ":"), i.e. b starts with a + ":". kube tries such keys in turn and
 * an aescbc decryption with the wrong key can pass the padding check by chance. A ':' alone is
 * harmless (k3s names keys "aescbckey-<RFC 3339 time>"), so only the ambiguity is refused. */
static bool name_shadows(const char *a, const char *b) {
        size_t n = strlen(a);

        return strneq(a, b, n) && b[n] == ':';
}

static void check_entry_keys(errlist *l, const se_resource_config *rc, size_t i) {
        for (size_t j = 0; j < rc->n_providers; j++) {
                const se_provider *p = &rc->providers[j];
                se_provider_type t = se_provider_get_type(p, NULL);
                const se_key_list *kl = se_provider_keys(p);

                if (!kl)
                        continue;
                for (size_t k = 0; k < kl->n_keys; k++) {
                        const char *name = kl->keys[k].name ?: "", *shown = key_name_for_message(name);
                        _cleanup_free_ char *path = pathf("resources[%zu].providers[%zu].%s.keys[%zu].name", i, j,
                                                          se_provider_type_to_string(t), k);
                        _cleanup_free_ char *q = go_quote(shown);
                        bool dup = false, shadowed = false;

                        for (size_t m = 0; m < k && !dup; m++)
                                dup = streq(name, kl->keys[m].name ?: "");
                        if (dup)
                                add_invalid(l, path, q,
                                            "duplicate key name within provider; rename one key " STRICT_HINT);

                        /* the same name in an earlier provider of this type: both keys write and
                         * read one prefix, so aescbc can "decrypt" a value with the wrong key when
                         * the padding happens to check out, and re-encryption makes that permanent */
                        for (size_t j2 = 0; j2 < j && !dup; j2++) {
                                const se_provider *p2 = &rc->providers[j2];
                                const se_key_list *kl2 = se_provider_keys(p2);

                                if (!kl2 || se_provider_get_type(p2, NULL) != t)
                                        continue;
                                for (size_t k2 = 0; k2 < kl2->n_keys && !dup; k2++) {
                                        _cleanup_free_ char *d = NULL;

                                        if (!streq(name, kl2->keys[k2].name ?: ""))
                                                continue;
                                        dup = true;
                                        d = pathf("duplicate key name: key resources[%zu].providers[%zu].%s.keys[%zu] "
                                                  "has the same name, so values stored under either key carry the "
                                                  "prefix k8s:enc:%s:v1:%s: and could be decrypted with the wrong "
                                                  "key; rename one key " STRICT_HINT,
                                                  i, j2, se_provider_type_to_string(t), k2,
                                                  se_provider_type_to_string(t), shown);
                                        add_invalid(l, path, q, d);
                                }
                        }

                        /* every key of the same provider type in this entry shares one prefix list */
                        for (size_t j2 = 0; j2 < rc->n_providers && !shadowed; j2++) {
                                const se_provider *p2 = &rc->providers[j2];
                                const se_key_list *kl2 = se_provider_keys(p2);

                                if (!kl2 || se_provider_get_type(p2, NULL) != t)
                                        continue;
                                for (size_t k2 = 0; k2 < kl2->n_keys && !shadowed; k2++) {
                                        const char *other = kl2->keys[k2].name ?: "";
                                        _cleanup_free_ char *d = NULL, *qo = NULL;

                                        if (!name_shadows(other, name))
                                                continue;
                                        shadowed = true;
                                        qo = go_quote(key_name_for_message(other));
                                        d = qo ? pathf("key name starts with the name of key %s "
                                                       "(resources[%zu].providers[%zu].%s.keys[%zu]) "
                                                       "followed by ':', so values stored under this key also carry "
                                                       "that key's prefix k8s:enc:%s:v1:%s: and could be decrypted "
                                                       "with the wrong key; rename one key " STRICT_HINT,
                                                       qo, i, j2, se_provider_type_to_string(t), k2,
                                                       se_provider_type_to_string(t), key_name_for_message(other))
                                               : NULL;
                                        add_invalid(l, path, q, d);
                                }
                        }
                }
        }
}

_public_ int se_config_validate_strict(const se_config *c, se_error *e) {
        errlist l = {};
        int r;

        if (!c)
                return 0;
        for (size_t i = 0; i < c->n_resources && !l.oom; i++)
                check_entry_keys(&l, &c->resources[i], i);
        r = errlist_finish(&l, NULL, e);
        errlist_done(&l);
        return r;
}

_public_ int se_config_validate(const se_config *c, bool reload, se_error *e) {
        int r;

        r = se_config_validate_kube(c, reload, e);
        if (r < 0)
                return r;
        r = se_config_validate_build(c, e);
        if (r < 0)
                return r;
        return se_config_validate_strict(c, e);
}
