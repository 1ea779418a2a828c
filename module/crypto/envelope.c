/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "cipher.h"
#include "macro.h"
#include "se-envelope.h"

/*
 * kube-apiserver's value transformers (k8s.io/apiserver pkg/storage/value): two nested prefix
 * lists, outer one per provider ("k8s:enc:aescbc:v1:", identity ""), inner one per key ("name:").
 * Every entry whose prefix matches is tried in order; failures fall through to later entries and
 * are reported together only if nothing succeeds.
 */

#define ENC_PREFIX "k8s:enc:"

/* ---- transformer ------------------------------------------------------------------------------ */

typedef struct tkey {
        char *name; /* the inner prefix is name + ":" */
        size_t name_len;
        se_cipher_key cipher;
} tkey;

typedef struct tprovider {
        se_provider_type type;
        char *prefix; /* "" for identity */
        size_t prefix_len;
        char *kms_name;
        char *kms_message; /* the error a KMS candidate contributes */
        tkey *keys;
        size_t n_keys;
} tprovider;

/* One failed candidate: kube's message and our errno for it. */
typedef struct leaf {
        const char *message;
        int error;
} leaf;

/* IVs are public, but each RAND_bytes() costs a getpid() syscall in OpenSSL 3.0: draw them in
 * batches. A fork empties every pool so parent and child never share a nonce. */
#define IV_POOL_SIZE 1536u

struct se_transformer {
        tprovider *providers; /* none: kube's default identity, which is not wrapped in a prefix list */
        size_t n_providers;
        leaf *leaves; /* scratch for one read, sized for every candidate at once */
        size_t n_leaves, max_leaves;
        uint8_t iv_pool[IV_POOL_SIZE];
        size_t iv_used; /* IV_POOL_SIZE = empty */
        unsigned iv_generation;
};

static unsigned fork_generation = 1;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
        __atomic_add_fetch(&fork_generation, 1, __ATOMIC_SEQ_CST);
}

static void fork_register(void) {
        (void) pthread_atfork(NULL, NULL, on_fork_child);
}

static int iv_take(se_transformer *t, uint8_t *iv, size_t n) {
        unsigned gen = __atomic_load_n(&fork_generation, __ATOMIC_SEQ_CST);

        if (gen != t->iv_generation || t->iv_used + n > IV_POOL_SIZE) {
                if (RAND_bytes(t->iv_pool, IV_POOL_SIZE) != 1)
                        return -EIO;
                t->iv_used = 0;
                t->iv_generation = gen;
        }
        memcpy(iv, t->iv_pool + t->iv_used, n);
        /* never hand out the same bytes twice */
        explicit_bzero(t->iv_pool + t->iv_used, n);
        t->iv_used += n;
        return 0;
}

/* se_buf_clear() with a fast wipe: values are cleared on every call. */
static void buf_reset(se_buf *b) {
        if (b->data && b->len > 0)
                explicit_bzero(b->data, b->len);
        b->len = 0;
}

static const char *provider_prefix(se_provider_type t) {
        switch (t) {
        case SE_PROVIDER_AESCBC:
                return ENC_PREFIX "aescbc:v1:";
        case SE_PROVIDER_AESGCM:
                return ENC_PREFIX "aesgcm:v1:";
        case SE_PROVIDER_SECRETBOX:
                return ENC_PREFIX "secretbox:v1:";
        default:
                return "";
        }
}

static bool has_prefix(const uint8_t *in, size_t n, const char *prefix, size_t len) {
        return n >= len && memcmp(in, prefix, len) == 0;
}

static bool is_encrypted(const uint8_t *in, size_t n) {
        return has_prefix(in, n, ENC_PREFIX, STRLEN(ENC_PREFIX));
}

static void provider_done(tprovider *p) {
        for (size_t i = 0; i < p->n_keys; i++) {
                se_cipher_key_done(&p->keys[i].cipher);
                free(p->keys[i].name);
        }
        free(p->keys);
        free(p->prefix);
        free(p->kms_name);
        free(p->kms_message);
        *p = (tprovider){};
}

_public_ se_transformer *se_transformer_free(se_transformer *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_providers; i++)
                provider_done(&t->providers[i]);
        free(t->providers);
        free(t->leaves);
        explicit_bzero(t->iv_pool, sizeof(t->iv_pool));
        free(t);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(se_transformer *, se_transformer_free);

/* schema.ParseGroupResource: everything after the first '.' is the group. */
typedef struct gr_t {
        const char *resource;
        size_t resource_len;
        const char *group;
} gr_t;

static gr_t gr_parse(const char *s) {
        const char *dot = strchr(s, '.');

        if (!dot)
                return (gr_t){s, strlen(s), ""};
        return (gr_t){s, (size_t) (dot - s), dot + 1};
}

static bool gr_eq(gr_t a, const char *group, const char *resource) {
        return streq(a.group, group) && a.resource_len == strlen(resource) &&
               memcmp(a.resource, resource, a.resource_len) == 0;
}

/* kube's grYAMLString: "*." for every resource in the core group, else resource[.group]. */
static char *gr_string(const char *group, const char *resource, size_t resource_len) {
        char *s;

        if (isempty(group) && resource_len == 1 && resource[0] == '*')
                return strdup("*.");
        if (asprintf(&s, "%.*s%s%s", (int) resource_len, resource, isempty(group) ? "" : ".", group) < 0)
                return NULL;
        return s;
}

static bool gr_seen(const se_config *c, size_t upto_rc, size_t upto_res, const char *group, const char *resource) {
        for (size_t i = 0; i <= upto_rc && i < c->n_resources; i++) {
                const se_resource_config *rc = &c->resources[i];
                size_t n = i == upto_rc ? upto_res : rc->n_resources;

                for (size_t j = 0; j < n; j++)
                        if (rc->resources[j] && gr_eq(gr_parse(rc->resources[j]), group, resource))
                                return true;
        }
        return false;
}

/* The build-time check of getTransformerOverridesAndKMSPluginProbes: a rule after "*.<group>" or
 * "*.*" can never apply. */
static int check_masking(const se_config *c, se_error *e) {
        for (size_t i = 0; i < c->n_resources; i++) {
                const se_resource_config *rc = &c->resources[i];

                for (size_t j = 0; j < rc->n_resources; j++) {
                        gr_t gr;
                        const char *mg = NULL;

                        if (!rc->resources[j])
                                continue;
                        gr = gr_parse(rc->resources[j]);
                        if (gr_seen(c, i, j, gr.group, "*"))
                                mg = gr.group;
                        else if (gr_seen(c, i, j, "*", "*"))
                                mg = "*";
                        if (mg) {
                                _cleanup_free_ char *a = gr_string(gr.group, gr.resource, gr.resource_len);
                                _cleanup_free_ char *b = gr_string(mg, "*", 1);

                                if (!a || !b)
                                        return -ENOMEM;
                                return se_error_set(e, -EBADMSG, "resource \"%s\" is masked by earlier rule \"%s\"", a,
                                                    b);
                        }
                }
        }
        return 0;
}

static int key_build(tkey *k, se_provider_type type, const se_key *src, se_error *e) {
        uint8_t *raw = NULL;
        size_t raw_size = 0;
        int r;

        if (isempty(src->name))
                return se_error_set(e, -EBADMSG, "a key of the %s provider has no name",
                                    se_provider_type_to_string(type));
        r = se_base64_decode(src->secret ?: "", src->secret ? strlen(src->secret) : 0, &raw, &raw_size);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return se_error_set(e, -EBADMSG, "could not obtain secret for named key %s: illegal base64 data",
                                    src->name);

        r = se_cipher_key_init(&k->cipher, type, raw, raw_size);
        explicit_wipe(raw, raw_size);
        free(raw);
        if (r == -EINVAL) {
                if (type == SE_PROVIDER_SECRETBOX)
                        return se_error_set(e, -EBADMSG, "expected key size 32 for secretbox provider, got %zu",
                                            raw_size);
                return se_error_set(e, -EBADMSG,
                                    "error while creating cipher for named key %s: crypto/aes: invalid key size %zu",
                                    src->name, raw_size);
        }
        if (r < 0)
                return r;

        k->name = strdup(src->name);
        if (!k->name)
                return -ENOMEM;
        k->name_len = strlen(k->name);
        return 0;
}

static int provider_build(tprovider *p, const se_provider *src, se_error *e) {
        se_provider_type type = se_provider_get_type(src, NULL);
        const se_key_list *l;
        int r;

        p->type = type;
        switch (type) {
        case SE_PROVIDER_IDENTITY:
                p->prefix = strdup("");
                break;

        case SE_PROVIDER_KMS:
                if (asprintf(&p->prefix, ENC_PREFIX "kms:%s:%s:",
                             isempty(src->kms->api_version) ? "v1" : src->kms->api_version, src->kms->name ?: "") < 0)
                        p->prefix = NULL;
                p->kms_name = strdup(src->kms->name ?: "");
                if (!p->prefix || !p->kms_name)
                        return -ENOMEM;
                if (asprintf(&p->kms_message,
                             "the value is encrypted by KMS provider \"%s\": KMS values cannot be decrypted by "
                             "secrets-encrypt",
                             p->kms_name) < 0) {
                        p->kms_message = NULL;
                        return -ENOMEM;
                }
                break;

        case SE_PROVIDER_AESCBC:
        case SE_PROVIDER_AESGCM:
        case SE_PROVIDER_SECRETBOX:
                l = se_provider_keys(src);
                if (!l || l->n_keys == 0)
                        return se_error_set(e, -EBADMSG, "the %s provider has no keys",
                                            se_provider_type_to_string(type));
                p->prefix = strdup(provider_prefix(type));
                p->keys = calloc(l->n_keys, sizeof(tkey));
                if (!p->prefix || !p->keys)
                        return -ENOMEM;
                se_dontdump(p->keys, l->n_keys * sizeof(tkey)); /* raw keys for the transformer's life */
                for (size_t i = 0; i < l->n_keys; i++) {
                        r = key_build(&p->keys[i], type, &l->keys[i], e);
                        p->n_keys = i + 1; /* so provider_done() releases it */
                        if (r < 0)
                                return r;
                }
                break;

        default:
                return se_error_set(e, -EBADMSG, "provider does not contain any of the expected providers");
        }
        if (!p->prefix)
                return -ENOMEM;
        p->prefix_len = strlen(p->prefix);
        return 0;
}

/* Appends the providers of every entry that names (group, resource), in config order; an entry
 * naming it twice contributes twice, like kube's append. */
static int collect(se_transformer *t, const se_config *c, const char *group, const char *resource, se_error *e) {
        for (size_t i = 0; i < c->n_resources; i++) {
                const se_resource_config *rc = &c->resources[i];

                for (size_t j = 0; j < rc->n_resources; j++) {
                        tprovider *np;

                        if (!rc->resources[j] || !gr_eq(gr_parse(rc->resources[j]), group, resource))
                                continue;
                        if (rc->n_providers == 0)
                                continue;
                        np = reallocarray(t->providers, t->n_providers + rc->n_providers, sizeof(tprovider));
                        if (!np)
                                return -ENOMEM;
                        t->providers = np;
                        for (size_t k = 0; k < rc->n_providers; k++) {
                                int r;

                                t->providers[t->n_providers] = (tprovider){};
                                r = provider_build(&t->providers[t->n_providers], &rc->providers[k], e);
                                t->n_providers++;
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

_public_ int se_transformer_new(const se_config *c, const char *group_resource, se_transformer **ret, se_error *e) {
        _cleanup_(se_transformer_freep) se_transformer *t = NULL;
        _cleanup_free_ char *group = NULL, *resource = NULL;
        gr_t gr;
        size_t max = 1;
        int r;

        if (!c || isempty(group_resource) || !ret)
                return se_error_set(e, -EINVAL, "invalid arguments");

        r = check_masking(c, e);
        if (r < 0)
                return r;

        gr = gr_parse(group_resource);
        resource = strndup(gr.resource, gr.resource_len);
        group = strdup(gr.group);
        t = calloc(1, sizeof(*t));
        if (!resource || !group || !t)
                return se_error_set(e, -ENOMEM, "out of memory");

        /* transformerFromOverrides: exact, then "<group>.*"-style, then "*.*", else identity */
        r = collect(t, c, group, resource, e);
        if (r >= 0 && t->n_providers == 0)
                r = collect(t, c, group, "*", e);
        if (r >= 0 && t->n_providers == 0)
                r = collect(t, c, "*", "*", e);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        if (r < 0)
                return r;

        for (size_t i = 0; i < t->n_providers; i++)
                max += 1 + t->providers[i].n_keys;
        (void) pthread_once(&fork_once, fork_register);
        t->iv_used = IV_POOL_SIZE;
        t->leaves = calloc(max, sizeof(leaf));
        if (!t->leaves)
                return se_error_set(e, -ENOMEM, "out of memory");
        t->max_leaves = max;

        *ret = TAKE_PTR(t);
        return 0;
}

static void leaf_add(se_transformer *t, const char *message, int error) {
        /* max_leaves covers every provider and key at once, so this cannot overflow */
        if (t->n_leaves < t->max_leaves)
                t->leaves[t->n_leaves++] = (leaf){message, error};
}

/* Go's %q for the datastore key, enough for the printable ASCII keys etcd holds. */
static int quote(se_buf *b, const char *s) {
        int r = se_buf_append(b, "\"", 1);

        for (; r >= 0 && *s; s++) {
                unsigned char ch = (unsigned char) *s;
                char esc[5];

                switch (ch) {
                case '"':
                        r = se_buf_append_str(b, "\\\"");
                        break;
                case '\\':
                        r = se_buf_append_str(b, "\\\\");
                        break;
                case '\n':
                        r = se_buf_append_str(b, "\\n");
                        break;
                case '\r':
                        r = se_buf_append_str(b, "\\r");
                        break;
                case '\t':
                        r = se_buf_append_str(b, "\\t");
                        break;
                default:
                        if (ch < 0x20 || ch == 0x7f) {
                                snprintf(esc, sizeof(esc), "\\x%02x", ch);
                                r = se_buf_append_str(b, esc);
                        } else
                                r = se_buf_append(b, &ch, 1);
                }
        }
        return r < 0 ? r : se_buf_append(b, "\"", 1);
}

/* Kube's aggregate: messages flattened and deduplicated; "[a, b]" when more than one is left.
 * The datastore key goes first, as in kube's "unable to transform key %q: %v". */
static int leaves_report(se_transformer *t, const char *dskey, se_error *e) {
        se_buf key = {.max = 64u * 1024u}, msg = {.max = 1024u * 1024u};
        bool any_kms = false, any_nokey = false;
        size_t unique = 0;
        int err, r = 0;

        for (size_t i = 0; i < t->n_leaves; i++) {
                any_kms = any_kms || t->leaves[i].error == -EOPNOTSUPP;
                any_nokey = any_nokey || t->leaves[i].error == -ENOKEY;
        }
        err = any_kms ? -EOPNOTSUPP : any_nokey ? -ENOKEY : -EBADMSG;
        if (!e)
                return err;

        if (dskey) {
                r = se_buf_append_str(&key, "unable to transform key ");
                if (r >= 0)
                        r = quote(&key, dskey);
                if (r >= 0)
                        r = se_buf_append_str(&key, ": ");
        } else
                r = se_buf_append(&key, "", 0);
        for (size_t i = 0; r >= 0 && i < t->n_leaves; i++) {
                bool dup = false;

                for (size_t j = 0; j < i && !dup; j++)
                        dup = streq(t->leaves[j].message, t->leaves[i].message);
                if (dup)
                        continue;
                if (unique++ > 0)
                        r = se_buf_append_str(&msg, ", ");
                if (r >= 0)
                        r = se_buf_append_str(&msg, t->leaves[i].message);
        }

        if (r < 0)
                err = se_error_set(e, r, "out of memory");
        else
                err = se_error_set(e, err, "%s%s%s%s", (char *) key.data, unique > 1 ? "[" : "",
                                   unique > 0 ? (char *) msg.data : "", unique > 1 ? "]" : "");
        se_buf_free(&key);
        se_buf_free(&msg);
        return err;
}

static bool is_data_error(int r) {
        return r == -EBADMSG || r == -ENOKEY;
}

/* The inner list of an aescbc/aesgcm/secretbox provider. 1 = decrypted, 0 = every candidate
 * failed (leaves recorded), <0 = not about the data. */
static int read_keys(se_transformer *t, tprovider *p, const char *dskey, const uint8_t *in, size_t n, se_buf *out,
                     size_t *ret_index) {
        bool matched = false;

        for (size_t i = 0; i < p->n_keys; i++) {
                tkey *k = &p->keys[i];
                se_cipher_err ce = SE_CIPHER_OK;
                int r;

                if (n < k->name_len + 1 || memcmp(in, k->name, k->name_len) != 0 || in[k->name_len] != ':')
                        continue;
                matched = true;
                r = se_cipher_decrypt(&k->cipher, (const uint8_t *) dskey, dskey ? strlen(dskey) : 0,
                                      in + k->name_len + 1, n - k->name_len - 1, out, &ce);
                if (r >= 0) {
                        *ret_index = i;
                        return 1;
                }
                if (!is_data_error(r))
                        return r;
                leaf_add(t, se_cipher_err_message(ce), se_cipher_err_errno(ce));
        }
        if (!matched)
                leaf_add(t,
                         p->type == SE_PROVIDER_SECRETBOX
                                 ? "no matching key was found for the provided Secretbox transformer"
                                 : "no matching key was found for the provided AES transformer",
                         -ENOKEY);
        return 0;
}

static int read_plain(const uint8_t *in, size_t n, se_buf *out, se_read_info *ret_info, bool stale) {
        int r = se_buf_append(out, in, n);

        if (r < 0)
                return r;
        if (ret_info)
                *ret_info = (se_read_info){.provider = SE_PROVIDER_IDENTITY, .key_name = NULL, .stale = stale};
        return 0;
}

_public_ int se_transformer_read(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                                 se_read_info *ret_info, se_error *e) {
        int r;

        if (!t || !out || (!in && in_size > 0))
                return se_error_set(e, -EINVAL, "invalid arguments");
        if (!in)
                in = (const uint8_t *) "";
        buf_reset(out);
        t->n_leaves = 0;

        if (t->n_providers == 0) {
                if (is_encrypted(in, in_size)) {
                        leaf_add(t, "identity transformer tried to read encrypted data", -ENOKEY);
                        return leaves_report(t, dskey, e);
                }
                return read_plain(in, in_size, out, ret_info, false);
        }

        for (size_t i = 0; i < t->n_providers; i++) {
                tprovider *p = &t->providers[i];
                size_t ki = 0;

                if (!has_prefix(in, in_size, p->prefix, p->prefix_len))
                        continue;

                switch (p->type) {
                case SE_PROVIDER_IDENTITY:
                        /* kube skips a failing empty-prefix entry without recording its error */
                        if (is_encrypted(in, in_size))
                                continue;
                        return read_plain(in, in_size, out, ret_info, i != 0);

                case SE_PROVIDER_KMS:
                        leaf_add(t, p->kms_message, -EOPNOTSUPP);
                        continue;

                default:
                        r = read_keys(t, p, dskey, in + p->prefix_len, in_size - p->prefix_len, out, &ki);
                        if (r < 0) {
                                buf_reset(out);
                                return se_error_set(e, r, "cannot decrypt: %s",
                                                    r == -E2BIG ? "the value is too large" : strerror(-r));
                        }
                        if (r == 0)
                                continue;
                        if (ret_info)
                                *ret_info = (se_read_info){
                                        .provider = p->type,
                                        .key_name = p->keys[ki].name,
                                        .stale = i != 0 || ki != 0,
                                };
                        return 0;
                }
        }

        if (t->n_leaves == 0)
                leaf_add(t, "no matching prefix found", -ENOKEY);
        return leaves_report(t, dskey, e);
}

static int write_value(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, const uint8_t *iv,
                       size_t iv_size, se_buf *out, se_error *e) {
        uint8_t random_iv[SE_SECRETBOX_NONCE_SIZE];
        tprovider *p;
        tkey *k;
        int r;

        if (!t || !out || (!in && in_size > 0))
                return se_error_set(e, -EINVAL, "invalid arguments");
        if (!in)
                in = (const uint8_t *) "";
        buf_reset(out);

        p = t->n_providers > 0 ? &t->providers[0] : NULL;
        if (!p || p->type == SE_PROVIDER_IDENTITY) {
                if (iv && iv_size > 0)
                        return se_error_set(e, -EINVAL, "the identity provider takes no IV");
                r = se_buf_append(out, in, in_size);
                return r < 0 ? se_error_set(e, r, "cannot store the value: %s", strerror(-r)) : 0;
        }
        if (p->type == SE_PROVIDER_KMS)
                return se_error_set(e, -EOPNOTSUPP,
                                    "the write provider is KMS provider \"%s\": KMS values cannot be encrypted by "
                                    "secrets-encrypt",
                                    p->kms_name);

        k = &p->keys[0];
        if (iv) {
                if (iv_size != se_cipher_iv_size(p->type))
                        return se_error_set(e, -EINVAL, "the %s provider needs a %zu-byte IV, got %zu",
                                            se_provider_type_to_string(p->type), se_cipher_iv_size(p->type), iv_size);
        } else {
                iv_size = se_cipher_iv_size(p->type);
                if (iv_take(t, random_iv, iv_size) < 0)
                        return se_error_set(e, -EIO, "cannot generate a random IV");
                iv = random_iv;
        }

        r = se_buf_append(out, p->prefix, p->prefix_len);
        if (r >= 0)
                r = se_buf_append(out, k->name, k->name_len);
        if (r >= 0)
                r = se_buf_append(out, ":", 1);
        if (r >= 0)
                r = se_cipher_encrypt(&k->cipher, iv, (const uint8_t *) dskey, dskey ? strlen(dskey) : 0, in, in_size,
                                      out);
        if (r < 0) {
                buf_reset(out);
                return se_error_set(e, r, "cannot encrypt the value with %s key \"%s\": %s",
                                    se_provider_type_to_string(p->type), k->name, strerror(-r));
        }
        return 0;
}

_public_ int se_transformer_write(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size, se_buf *out,
                                  se_error *e) {
        return write_value(t, dskey, in, in_size, NULL, 0, out, e);
}

_public_ int se_transformer_write_with_iv(se_transformer *t, const char *dskey, const uint8_t *in, size_t in_size,
                                          const uint8_t *iv, size_t iv_size, se_buf *out, se_error *e) {
        if (!iv && iv_size > 0)
                return se_error_set(e, -EINVAL, "invalid arguments");
        if (t && t->n_providers > 0 && se_cipher_iv_size(t->providers[0].type) > 0 && !iv)
                return se_error_set(e, -EINVAL, "an IV is required");
        return write_value(t, dskey, in, in_size, iv, iv_size, out, e);
}

_public_ bool se_transformer_is_current(const se_transformer *t, const uint8_t *in, size_t in_size) {
        const tprovider *p;
        const tkey *k;

        if (!t || (!in && in_size > 0))
                return false;
        if (!in)
                in = (const uint8_t *) "";
        p = t->n_providers > 0 ? &t->providers[0] : NULL;
        if (!p || p->type == SE_PROVIDER_IDENTITY)
                return !is_encrypted(in, in_size);
        if (!has_prefix(in, in_size, p->prefix, p->prefix_len))
                return false;
        if (p->type == SE_PROVIDER_KMS)
                return true;

        k = &p->keys[0];
        in += p->prefix_len;
        in_size -= p->prefix_len;
        return in_size > k->name_len && memcmp(in, k->name, k->name_len) == 0 && in[k->name_len] == ':';
}
