/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"

/*
 * Strict decode of the generic tree into the model, reproducing kube-apiserver's codec:
 * apiVersion/kind sniffing (case-insensitive, Go encoding/json), then sigs.k8s.io/json's strict
 * unmarshal (case-sensitive; unknown and duplicate fields collected as strict errors, the first
 * type mismatch fatal, metav1.Duration errors fatal at once), then the v1 defaults.
 */

typedef struct strbuf {
        char *s;
        size_t len, cap;
} strbuf;

typedef struct decoder {
        bool yaml;
        strbuf path;   /* "resources[0].providers[3].kms" (strict error paths) */
        strbuf fields; /* "resources.providers.kms" (Go's type error field stack) */
        const char *struct_name;
        char *saved; /* Go's savedError: first type mismatch */
        char *fatal; /* returned at once (Unmarshaler errors, limits) */
        char **strict;
        size_t n_strict;
        size_t n_keys;
} decoder;

static void *mfree(void *p) {
        free(p);
        return NULL;
}

static int sb_append(strbuf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 64);
                char *p = realloc(b->s, cap);

                if (!p)
                        return -ENOMEM;
                b->s = p;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = '\0';
        return 0;
}

static const char *sb_str(const strbuf *b) {
        return b->s ? b->s : "";
}

static void sb_truncate(strbuf *b, size_t len) {
        b->len = len;
        if (b->s)
                b->s[len] = '\0';
}

static const char *kind_of(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "bool";
        case json_type_int:
        case json_type_double:
                return "number";
        case json_type_string:
                return "string";
        case json_type_array:
                return "array";
        case json_type_object:
        default:
                return "object";
        }
}

static int type_error(decoder *d, const char *value, const char *go_type) {
        if (d->saved)
                return 0;
        if (asprintf(&d->saved, "json: cannot unmarshal %s into Go struct field %s.%s of type %s", value,
                     d->struct_name, sb_str(&d->fields), go_type) < 0) {
                d->saved = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int set_fatal(decoder *d, const char *fmt, ...) _printf_(2, 3);
static int set_fatal(decoder *d, const char *fmt, ...) {
        va_list ap;
        int r;

        free(d->fatal);
        va_start(ap, fmt);
        r = vasprintf(&d->fatal, fmt, ap);
        va_end(ap);
        if (r < 0) {
                d->fatal = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

/* An unknown field's name may be key material: a flow mapping with a missing colon,
 * "{name: k, secret c2VjcmV0…}", makes the whole "secret c2VjcmV0…" a field name. Field names
 * (and their typos) are short or plain words; anything else is printed as REDACTED, as kube-apiserver
 * prints secrets. */
static const char *printable_field(const char *key) {
        size_t n = strlen(key);

        if (n <= 8)
                return key;
        if (n > 24)
                return "REDACTED";
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-'))
                        return "REDACTED";
        return key;
}

/* sigs.k8s.io/json: strict errors are deduplicated and capped at 100. */
static int strict_error(decoder *d, const char *what, const char *key) {
        _cleanup_free_ char *msg = NULL;
        char **n;

        if (d->n_strict >= 100)
                return 0;
        if (asprintf(&msg, "%s field \"%s%s%s\"", what, sb_str(&d->path), d->path.len > 0 ? "." : "",
                     printable_field(key)) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_strict; i++)
                if (streq(d->strict[i], msg))
                        return 0;
        n = reallocarray(d->strict, d->n_strict + 1, sizeof(char *));
        if (!n)
                return -ENOMEM;
        d->strict = n;
        d->strict[d->n_strict++] = TAKE_PTR(msg);
        return 0;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* The keys of an object in the order kube-apiserver's decoder sees them. */
static int object_keys(decoder *d, json_object *obj, const char ***ret, size_t *ret_n, bool *ret_owned) {
        const se_key_order *ko = d->yaml ? NULL : se_json_key_order(obj);
        const char **keys;
        size_t n = 0;

        if (ko) {
                *ret = (const char **) ko->keys;
                *ret_n = ko->n;
                *ret_owned = false;
                return 0;
        }
        keys = calloc((size_t) json_object_object_length(obj) + 1, sizeof(char *));
        if (!keys)
                return -ENOMEM;
        json_object_object_foreach(obj, k, v) {
                (void) v;
                keys[n++] = k;
        }
        /* YAML went through a Go map and json.Marshal, which sorts keys */
        if (d->yaml)
                qsort(keys, n, sizeof(char *), cmp_str);
        *ret = keys;
        *ret_n = n;
        *ret_owned = true;
        return 0;
}

typedef int (*field_fn)(decoder *d, size_t idx, json_object *v, void *userdata);

static int decode_struct(decoder *d, json_object *obj, const char *struct_name, const char *const *fields,
                         size_t n_fields, field_fn fn, void *userdata) {
        const char *saved_struct = d->struct_name;
        const char **keys = NULL;
        bool owned = false, seen[8] = {};
        size_t n = 0;
        int r;

        r = object_keys(d, obj, &keys, &n, &owned);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                size_t plen = d->path.len, flen = d->fields.len, idx = SIZE_MAX;
                json_object *v = NULL;

                for (size_t j = 0; j < n_fields; j++)
                        if (streq(keys[i], fields[j]))
                                idx = j;
                if (idx == SIZE_MAX) {
                        r = strict_error(d, "unknown", keys[i]);
                        if (r < 0)
                                break;
                        continue;
                }
                if (seen[idx]) {
                        r = strict_error(d, "duplicate", keys[i]);
                        if (r < 0)
                                break;
                        continue;
                }
                seen[idx] = true;
                (void) json_object_object_get_ex(obj, keys[i], &v);

                if ((d->path.len > 0 && sb_append(&d->path, ".", 1) < 0) ||
                    sb_append(&d->path, keys[i], strlen(keys[i])) < 0 ||
                    (d->fields.len > 0 && sb_append(&d->fields, ".", 1) < 0) ||
                    sb_append(&d->fields, keys[i], strlen(keys[i])) < 0) {
                        r = -ENOMEM;
                        break;
                }
                d->struct_name = struct_name;
                r = fn(d, idx, v, userdata);
                d->struct_name = saved_struct;
                sb_truncate(&d->path, plen);
                sb_truncate(&d->fields, flen);
                if (r < 0)
                        break;
        }
        if (owned)
                free(keys);
        return r < 0 ? r : 0;
}

/* Pushes "[i]" on the strict path for array elements; Go's field stack has no indices. */
static int push_index(decoder *d, size_t i) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "[%zu]", i);

        return sb_append(&d->path, buf, (size_t) n);
}

/* Go strings may hold NUL bytes (JSON "\u0000", a YAML "\0" escape, !!binary); the model's C strings
 * cannot. kube-apiserver takes such a name (its envelope prefix then holds the NUL byte) and refuses
 * such a secret as bad base64; a NUL byte cannot be carried through a rotation, so we refuse both,
 * without printing the value (it may be key material). */
static int nul_error(decoder *d) {
        return set_fatal(d, "%s: Invalid value: contains a NUL character, which cannot be carried through a rotation",
                         sb_str(&d->path));
}

static int decode_string(decoder *d, json_object *v, char **out) {
        const char *p;
        size_t n;
        char *s;

        if (!v)
                return 0; /* null leaves a Go string untouched */
        if (!json_object_is_type(v, json_type_string))
                return type_error(d, kind_of(v), "string");
        p = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (memchr(p, '\0', n))
                return nul_error(d);
        s = strndup(p, n);
        if (!s)
                return -ENOMEM;
        erase_and_freep(out);
        *out = s;
        return 0;
}

/* ---- Key, AESConfiguration/SecretboxConfiguration ---- */

static const char *const key_fields[] = {"name", "secret"};

static int key_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        se_key *k = userdata;

        return decode_string(d, v, idx == 0 ? &k->name : &k->secret);
}

/* One element of a []struct: a non-object element is a type error (Go goes on with the next one);
 * the path gets "[i]" while the element is decoded. */
static int decode_element(decoder *d, json_object *e, size_t i, const char *go_type, const char *struct_name,
                          const char *const *fields, size_t n_fields, field_fn fn, void *userdata) {
        size_t plen = d->path.len;
        int r;

        if (!e)
                return 0;
        if (!json_object_is_type(e, json_type_object))
                return type_error(d, kind_of(e), go_type);
        r = push_index(d, i);
        if (r < 0)
                return r;
        r = decode_struct(d, e, struct_name, fields, n_fields, fn, userdata);
        sb_truncate(&d->path, plen);
        return r;
}

static int decode_keys(decoder *d, json_object *v, se_key_list *l) {
        size_t n;
        int r;

        for (size_t i = 0; i < l->n_keys; i++) {
                free(l->keys[i].name);
                erase_and_freep(&l->keys[i].secret);
        }
        l->keys = mfree(l->keys);
        l->n_keys = 0;
        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return type_error(d, kind_of(v), "[]v1.Key");
        n = json_object_array_length(v);
        if (n == 0) {
                /* keys: [] is an empty, non-nil slice to Go: kube prints it as [], not null */
                l->keys = calloc(1, sizeof(se_key));
                return l->keys ? 0 : -ENOMEM;
        }
        if (d->n_keys + n > SE_CONFIG_MAX_KEYS)
                return set_fatal(d, "more than %u keys over all providers are not allowed", SE_CONFIG_MAX_KEYS);
        d->n_keys += n;
        l->keys = calloc(n, sizeof(se_key));
        if (!l->keys)
                return -ENOMEM;
        l->n_keys = n;
        for (size_t i = 0; i < n; i++) {
                r = decode_element(d, json_object_array_get_idx(v, i), i, "v1.Key", "Key", key_fields,
                                   ELEMENTSOF(key_fields), key_field, &l->keys[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *const aes_fields[] = {"keys"};

static int aes_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        return decode_keys(d, v, userdata);
}

/* ---- KMSConfiguration ---- */

typedef struct kms_state {
        se_kms *kms;
        bool has_timeout;
} kms_state;

static const char *const kms_fields[] = {"apiVersion", "name", "cachesize", "endpoint", "timeout"};

static int decode_int32(decoder *d, json_object *v, int32_t *out, bool *has) {
        const char *lit;
        char *end = NULL;
        long long n;

        if (!v) {
                *has = false;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return type_error(d, kind_of(v), "int32");
        lit = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        if (!lit)
                return -ENOMEM;
        /* strconv.ParseInt(literal, 10, 64) and the int32 range */
        errno = 0;
        n = strtoll(lit, &end, 10);
        if (!lit[0] || lit[0] == '+' || lit[0] == ' ' || !end || *end != '\0' || errno == ERANGE || n < INT32_MIN ||
            n > INT32_MAX) {
                _cleanup_free_ char *what = NULL;

                if (asprintf(&what, "number %s", lit) < 0)
                        return -ENOMEM;
                return type_error(d, what, "int32");
        }
        *out = (int32_t) n;
        *has = true;
        return 0;
}

static int kms_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        kms_state *st = userdata;
        se_kms *k = st->kms;

        switch (idx) {
        case 0:
                return decode_string(d, v, &k->api_version);
        case 1:
                return decode_string(d, v, &k->name);
        case 2:
                return decode_int32(d, v, &k->cachesize, &k->has_cachesize);
        case 3:
                return decode_string(d, v, &k->endpoint);
        default: {
                _cleanup_free_ char *err = NULL;
                int64_t ns;
                int r;

                if (!v) {
                        st->has_timeout = false;
                        return 0;
                }
                /* metav1.Duration's UnmarshalJSON: its error ends decoding at once, and Go adds
                 * the field context to a type mismatch */
                if (!json_object_is_type(v, json_type_string))
                        return set_fatal(d, "json: cannot unmarshal %s into Go struct field %s.%s of type string",
                                         kind_of(v), d->struct_name, sb_str(&d->fields));
                r = se_go_parse_duration(json_object_get_string(v), (size_t) json_object_get_string_len(v), &ns, &err);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return set_fatal(d, "%s", err);
                k->timeout_ns = ns;
                st->has_timeout = true;
                return 0;
        }
        }
}

/* ---- ProviderConfiguration ---- */

static const char *const provider_fields[] = {"aesgcm", "aescbc", "secretbox", "identity", "kms"};

static int no_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        return 0;
}

typedef struct provider_state {
        se_provider *p;
        bool has_timeout;
} provider_state;

static int provider_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        provider_state *ps = userdata;
        se_provider *p = ps->p;
        int r;

        switch (idx) {
        case 0:
        case 1:
        case 2: {
                se_key_list **l = idx == 0 ? &p->aesgcm : idx == 1 ? &p->aescbc : &p->secretbox;
                bool aes = idx < 2;

                if (!v) {
                        *l = se_key_list_free(*l);
                        return 0;
                }
                if (!json_object_is_type(v, json_type_object))
                        return type_error(d, kind_of(v), aes ? "v1.AESConfiguration" : "v1.SecretboxConfiguration");
                if (!*l) {
                        *l = calloc(1, sizeof(se_key_list));
                        if (!*l)
                                return -ENOMEM;
                }
                return decode_struct(d, v, aes ? "AESConfiguration" : "SecretboxConfiguration", aes_fields,
                                     ELEMENTSOF(aes_fields), aes_field, *l);
        }
        case 3:
                if (!v) {
                        p->identity = false;
                        return 0;
                }
                if (!json_object_is_type(v, json_type_object))
                        return type_error(d, kind_of(v), "v1.IdentityConfiguration");
                p->identity = true;
                return decode_struct(d, v, "IdentityConfiguration", NULL, 0, no_field, NULL);
        default: {
                kms_state st;

                if (!v) {
                        p->kms = se_kms_free(p->kms);
                        return 0;
                }
                if (!json_object_is_type(v, json_type_object))
                        return type_error(d, kind_of(v), "v1.KMSConfiguration");
                if (!p->kms) {
                        p->kms = calloc(1, sizeof(se_kms));
                        if (!p->kms)
                                return -ENOMEM;
                }
                st = (kms_state){.kms = p->kms, .has_timeout = ps->has_timeout};
                r = decode_struct(d, v, "KMSConfiguration", kms_fields, ELEMENTSOF(kms_fields), kms_field, &st);
                ps->has_timeout = st.has_timeout;
                return r;
        }
        }
}

/* ---- ResourceConfiguration ---- */

static const char *const resource_fields[] = {"resources", "providers"};

static int defaults_kms(se_kms *k, bool has_timeout) {
        /* kube v1/defaults.go */
        if (!has_timeout)
                k->timeout_ns = INT64_C(3000000000);
        if (isempty(k->api_version)) {
                free(k->api_version);
                k->api_version = strdup("v1");
                if (!k->api_version)
                        return -ENOMEM;
        }
        if (!k->has_cachesize && streq(k->api_version, "v1")) {
                k->has_cachesize = true;
                k->cachesize = 1000;
        }
        return 0;
}

static int resource_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        se_resource_config *rc = userdata;
        size_t n;
        int r;

        if (idx == 0) {
                for (size_t i = 0; i < rc->n_resources; i++)
                        free(rc->resources[i]);
                rc->resources = mfree(rc->resources);
                rc->n_resources = 0;
                if (!v)
                        return 0;
                if (!json_object_is_type(v, json_type_array))
                        return type_error(d, kind_of(v), "[]string");
                n = json_object_array_length(v);
                if (n == 0)
                        return 0;
                rc->resources = calloc(n, sizeof(char *));
                if (!rc->resources)
                        return -ENOMEM;
                rc->n_resources = n;
                for (size_t i = 0; i < n; i++) {
                        size_t plen = d->path.len;

                        r = push_index(d, i);
                        if (r >= 0)
                                r = decode_string(d, json_object_array_get_idx(v, i), &rc->resources[i]);
                        sb_truncate(&d->path, plen);
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        for (size_t i = 0; i < rc->n_providers; i++)
                se_provider_done(&rc->providers[i]);
        rc->providers = mfree(rc->providers);
        rc->n_providers = 0;
        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return type_error(d, kind_of(v), "[]v1.ProviderConfiguration");
        n = json_object_array_length(v);
        if (n == 0)
                return 0;
        rc->providers = calloc(n, sizeof(se_provider));
        if (!rc->providers)
                return -ENOMEM;
        rc->n_providers = n;
        for (size_t i = 0; i < n; i++) {
                provider_state ps = {.p = &rc->providers[i]};

                r = decode_element(d, json_object_array_get_idx(v, i), i, "v1.ProviderConfiguration",
                                   "ProviderConfiguration", provider_fields, ELEMENTSOF(provider_fields),
                                   provider_field, &ps);
                if (r < 0)
                        return r;
                if (rc->providers[i].kms) {
                        r = defaults_kms(rc->providers[i].kms, ps.has_timeout);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- EncryptionConfiguration ---- */

static const char *const root_fields[] = {"kind", "apiVersion", "resources"};

static int root_field(decoder *d, size_t idx, json_object *v, void *userdata) {
        se_config *c = userdata;
        _cleanup_free_ char *ignored = NULL;
        size_t n;
        int r;

        if (idx < 2) /* TypeMeta: already taken from the sniffing step */
                return decode_string(d, v, &ignored);

        for (size_t i = 0; i < c->n_resources; i++) {
                se_resource_config *rc = &c->resources[i];

                r = resource_field(d, 0, NULL, rc);
                if (r >= 0)
                        r = resource_field(d, 1, NULL, rc);
                if (r < 0)
                        return r;
        }
        c->resources = mfree(c->resources);
        c->n_resources = 0;
        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return type_error(d, kind_of(v), "[]v1.ResourceConfiguration");
        n = json_object_array_length(v);
        if (n == 0)
                return 0;
        c->resources = calloc(n, sizeof(se_resource_config));
        if (!c->resources)
                return -ENOMEM;
        c->n_resources = n;
        for (size_t i = 0; i < n; i++) {
                r = decode_element(d, json_object_array_get_idx(v, i), i, "v1.ResourceConfiguration",
                                   "ResourceConfiguration", resource_fields, ELEMENTSOF(resource_fields),
                                   resource_field, &c->resources[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Go's zero values: absent strings are "", so the model never holds NULL names. */
static int fill_empty(char **s) {
        if (*s)
                return 0;
        *s = strdup("");
        return *s ? 0 : -ENOMEM;
}

static int finalize(se_config *c) {
        for (size_t i = 0; i < c->n_resources; i++) {
                se_resource_config *rc = &c->resources[i];

                for (size_t j = 0; j < rc->n_resources; j++)
                        if (fill_empty(&rc->resources[j]) < 0)
                                return -ENOMEM;
                for (size_t j = 0; j < rc->n_providers; j++) {
                        se_provider *p = &rc->providers[j];
                        se_key_list *lists[] = {p->aesgcm, p->aescbc, p->secretbox};

                        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                                for (size_t k = 0; lists[l] && k < lists[l]->n_keys; k++)
                                        if (fill_empty(&lists[l]->keys[k].name) < 0 ||
                                            fill_empty(&lists[l]->keys[k].secret) < 0)
                                                return -ENOMEM;
                        if (p->kms && (fill_empty(&p->kms->name) < 0 || fill_empty(&p->kms->endpoint) < 0))
                                return -ENOMEM;
                }
        }
        return 0;
}

/* ---- apiVersion/kind sniffing (apimachinery SimpleMetaFactory.Interpret) ---- */

/* A Go string: the sniffed kind and apiVersion are decoded text and may hold NUL bytes. */
typedef struct gostr {
        char *s; /* NUL-terminated copy of n bytes */
        size_t n;
} gostr;

static void gostr_done(gostr *g) {
        free(g->s);
        *g = (gostr){};
}

static int gostr_set(gostr *g, const char *s, size_t n) {
        char *c = malloc(n + 1);

        if (!c)
                return -ENOMEM;
        memcpy(c, s, n);
        c[n] = '\0';
        free(g->s);
        *g = (gostr){.s = c, .n = n};
        return 0;
}

static bool gostr_eq(const char *s, size_t n, const char *lit) {
        return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* strconv.Quote over n bytes, for the ASCII this can hold (other bytes are passed through). */
static char *go_quote(const char *s, size_t n) {
        char *o = malloc(n * 4 + 3), *q = o;

        if (!o)
                return NULL;
        *q++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; p < (const unsigned char *) s + n; p++) {
                if (*p == '"' || *p == '\\') {
                        *q++ = '\\';
                        *q++ = (char) *p;
                } else if (*p == '\n') {
                        *q++ = '\\';
                        *q++ = 'n';
                } else if (*p == '\t') {
                        *q++ = '\\';
                        *q++ = 't';
                } else if (*p == '\r') {
                        *q++ = '\\';
                        *q++ = 'r';
                } else if (*p < 0x20 || *p == 0x7f)
                        q += sprintf(q, "\\x%02x", *p);
                else
                        *q++ = (char) *p;
        }
        *q++ = '"';
        *q = '\0';
        return o;
}

static int interpret(decoder *d, json_object *root, gostr *ret_kind, gostr *ret_version, char **ret_err) {
        _cleanup_free_ char *saved = NULL;
        const char **keys = NULL;
        bool owned = false;
        size_t n = 0;
        int r;

        if (root && !json_object_is_type(root, json_type_object)) {
                if (asprintf(ret_err,
                             "couldn't get version/kind; json parse error: json: cannot unmarshal %s into Go value of "
                             "type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string "
                             "\"json:\\\"kind,omitempty\\\"\" }",
                             kind_of(root)) < 0)
                        return -ENOMEM;
                return -EBADMSG;
        }
        if (root) {
                r = object_keys(d, root, &keys, &n, &owned);
                if (r < 0)
                        return r;
        }
        /* tree keys are C strings without NUL bytes: the front ends refuse other keys */
        for (size_t i = 0; i < n; i++) {
                const char *field = strcasecmp(keys[i], "kind") == 0         ? "kind"
                                    : strcasecmp(keys[i], "apiVersion") == 0 ? "apiVersion"
                                                                             : NULL;
                gostr *target = field && field[0] == 'k' ? ret_kind : ret_version;
                json_object *v = NULL;

                if (!field)
                        continue;
                (void) json_object_object_get_ex(root, keys[i], &v);
                if (!v)
                        continue;
                if (!json_object_is_type(v, json_type_string)) {
                        if (!saved &&
                            asprintf(&saved, "json: cannot unmarshal %s into Go struct field .%s of type string",
                                     kind_of(v), field) < 0) {
                                saved = NULL;
                                r = -ENOMEM;
                                goto finish;
                        }
                        continue;
                }
                r = gostr_set(target, json_object_get_string(v), (size_t) json_object_get_string_len(v));
                if (r < 0)
                        goto finish;
        }
        if (saved) {
                if (asprintf(ret_err, "couldn't get version/kind; json parse error: %s", saved) < 0)
                        r = -ENOMEM;
                else
                        r = -EBADMSG;
                goto finish;
        }
        r = 0;
        if (!ret_kind->s)
                r = gostr_set(ret_kind, "", 0);
        if (r >= 0 && !ret_version->s)
                r = gostr_set(ret_version, "", 0);
finish:
        if (owned)
                free(keys);
        if (r < 0) {
                gostr_done(ret_kind);
                gostr_done(ret_version);
        }
        return r;
}

/* Checks the sniffed kind and apiVersion the way the scheme does (schema.ParseGroupVersion, then
 * the registered kinds), with explicit lengths throughout. */
static int check_gvk(const gostr *kind, const gostr *version, char **ret_err) {
        const char *v = version->s, *slash, *group, *ver;
        size_t group_len, ver_len;
        int r;

        if (version->n == 0 || gostr_eq(v, version->n, "/")) {
                group = ver = "";
                group_len = ver_len = 0;
        } else if (!(slash = memchr(v, '/', version->n))) {
                group = "";
                group_len = 0;
                ver = v;
                ver_len = version->n;
        } else if (memchr(slash + 1, '/', version->n - (size_t) (slash + 1 - v))) {
                /* Go prints the text as is (%s); a C string cannot, so text with a NUL byte is quoted */
                _cleanup_free_ char *q = memchr(v, '\0', version->n) ? go_quote(v, version->n) : strdup(v);

                if (!q)
                        return -ENOMEM;
                r = asprintf(ret_err, "unexpected GroupVersion string: %s", q);
                return r < 0 ? -ENOMEM : -EBADMSG;
        } else {
                group = v;
                group_len = (size_t) (slash - v);
                ver = slash + 1;
                ver_len = version->n - group_len - 1;
        }

        if (kind->n == 0 || ver_len == 0) {
                /* kube-apiserver echoes the whole file here; we never do: whatever the redaction,
                 * a key written in some other form would leak to the journal and STATUS=. */
                if (asprintf(ret_err, "Object '%s' is missing in '…' " SE_CONFIG_NOT_ECHOED "; set %s",
                             kind->n == 0 ? "Kind" : "apiVersion",
                             kind->n == 0 ? "kind to EncryptionConfiguration"
                                          : "apiVersion to apiserver.config.k8s.io/v1") < 0)
                        return -ENOMEM;
                return -EBADMSG;
        }
        if (!((gostr_eq(group, group_len, "apiserver.config.k8s.io") && gostr_eq(ver, ver_len, "v1") &&
               gostr_eq(kind->s, kind->n, "EncryptionConfiguration")) ||
              (group_len == 0 && gostr_eq(ver, ver_len, "v1") && gostr_eq(kind->s, kind->n, "EncryptionConfig")))) {
                _cleanup_free_ char *qk = go_quote(kind->s, kind->n), *qg = go_quote(group, group_len),
                                    *qv = go_quote(v, version->n);

                if (!qk || !qg || !qv)
                        return -ENOMEM;
                if (gostr_eq(ver, ver_len, "__internal"))
                        r = asprintf(ret_err,
                                     "no kind %s is registered for the internal version of group %s in scheme \"%s\"",
                                     qk, qg, SE_CONFIG_SCHEME_NAME);
                else
                        r = asprintf(ret_err, "no kind %s is registered for version %s in scheme \"%s\"", qk, qv,
                                     SE_CONFIG_SCHEME_NAME);
                return r < 0 ? -ENOMEM : -EBADMSG;
        }
        return 0;
}

int se_config_decode_tree(json_object *root, bool from_yaml, const char *yaml_strict, se_config **ret,
                          char **ret_err) {
        decoder d = {.yaml = from_yaml, .struct_name = "EncryptionConfiguration"};
        gostr kind = {}, version = {};
        se_config *c = NULL;
        int r;

        *ret_err = NULL;
        r = interpret(&d, root, &kind, &version, ret_err);
        if (r < 0)
                return r;
        r = check_gvk(&kind, &version, ret_err);
        if (r < 0) {
                gostr_done(&kind);
                gostr_done(&version);
                return r;
        }

        /* both now equal registered, NUL-free names */
        c = se_config_new();
        if (!c) {
                gostr_done(&kind);
                gostr_done(&version);
                return -ENOMEM;
        }
        c->kind = TAKE_PTR(kind.s);
        c->api_version = TAKE_PTR(version.s);

        r = decode_struct(&d, root, "EncryptionConfiguration", root_fields, ELEMENTSOF(root_fields), root_field, c);
        if (r == -ENOMEM)
                goto finish;
        if (d.fatal) {
                *ret_err = TAKE_PTR(d.fatal);
                r = -EBADMSG;
                goto finish;
        }
        if (r < 0)
                goto finish;
        if (d.saved) {
                *ret_err = TAKE_PTR(d.saved);
                r = -EBADMSG;
                goto finish;
        }
        if (yaml_strict || d.n_strict > 0) {
                strbuf b = {};

                r = sb_append(&b, "strict decoding error: ", STRLEN("strict decoding error: "));
                if (r >= 0 && yaml_strict)
                        r = sb_append(&b, yaml_strict, strlen(yaml_strict));
                for (size_t i = 0; r >= 0 && i < d.n_strict; i++) {
                        if ((i > 0 || yaml_strict) && sb_append(&b, ", ", 2) < 0)
                                r = -ENOMEM;
                        else
                                r = sb_append(&b, d.strict[i], strlen(d.strict[i]));
                }
                if (r < 0) {
                        free(b.s);
                        goto finish;
                }
                *ret_err = b.s;
                r = -EBADMSG;
                goto finish;
        }
        r = finalize(c);
        if (r < 0)
                goto finish;
        *ret = TAKE_PTR(c);
        r = 0;

finish:
        se_config_free(c);
        free(d.path.s);
        free(d.fields.s);
        free(d.saved);
        free(d.fatal);
        for (size_t i = 0; i < d.n_strict; i++)
                free(d.strict[i]);
        free(d.strict);
        return r;
}
