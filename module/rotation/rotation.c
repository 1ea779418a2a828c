/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "se-envelope.h"
#include "se-rotation.h"
#include "coverage-internal.h"

/* The key material of the entry that covers secrets, in an editable form. aesgcm keys and KMS
 * providers are carried as read providers: aesgcm values are re-encrypted and its keys pruned like
 * any old key; KMS is never touched. */
typedef struct keyset {
        se_key_list aescbc;
        se_key_list secretbox;
        se_key_list aesgcm;
        se_kms **kms; /* borrowed from the source config */
        size_t n_kms;
        bool identity;
        size_t entry; /* index of the entry in the config */
} keyset;

static void key_list_done(se_key_list *l) {
        for (size_t i = 0; i < l->n_keys; i++) {
                free(l->keys[i].name);
                erase_and_freep(&l->keys[i].secret);
        }
        free(l->keys);
        *l = (se_key_list){};
}

static void keyset_done(keyset *k) {
        key_list_done(&k->aescbc);
        key_list_done(&k->secretbox);
        key_list_done(&k->aesgcm);
        free(k->kms);
        k->kms = NULL;
}

static int key_list_append(se_key_list *l, const char *name, const char *secret) {
        se_key *n = realloc(l->keys, (l->n_keys + 1) * sizeof(se_key));

        if (!n)
                return -ENOMEM;
        l->keys = n;
        n[l->n_keys] = (se_key){.name = strdup(name), .secret = strdup(secret)};
        if (!n[l->n_keys].name || !n[l->n_keys].secret) {
                free(n[l->n_keys].name);
                erase_and_freep(&n[l->n_keys].secret);
                return -ENOMEM;
        }
        l->n_keys++;
        return 0;
}

static const se_resource_config *secrets_entry(const se_config *c) {
        size_t i;

        return se_config_secrets_entry(c, &i, NULL) < 0 ? NULL : &c->resources[i];
}

/* k3s's GetEncryptionKeys(), over the entry that covers secrets only. */
static int keyset_from_config(const se_config *c, keyset *ret, se_error *e) {
        keyset k = {};
        const se_resource_config *rc;
        int r;

        r = se_config_secrets_entry(c, &k.entry, e);
        if (r < 0)
                return r;
        rc = &c->resources[k.entry];
        for (size_t i = 0; i < rc->n_providers; i++) {
                const se_provider *p = &rc->providers[i];
                se_key_list *dst;
                const se_key_list *src;

                switch (se_provider_get_type(p, NULL)) {
                case SE_PROVIDER_AESCBC:
                        dst = &k.aescbc;
                        src = p->aescbc;
                        break;
                case SE_PROVIDER_SECRETBOX:
                        dst = &k.secretbox;
                        src = p->secretbox;
                        break;
                case SE_PROVIDER_AESGCM:
                        dst = &k.aesgcm;
                        src = p->aesgcm;
                        break;
                case SE_PROVIDER_IDENTITY:
                        k.identity = true;
                        continue;
                case SE_PROVIDER_KMS: {
                        se_kms **n;

                        if (i == 0) {
                                keyset_done(&k);
                                return se_error_set(e, -ESTALE,
                                                    "the write provider for secrets is KMS provider \"%s\": its keys "
                                                    "live in the KMS plugin and are rotated there, not by "
                                                    "secrets-encrypt",
                                                    p->kms->name ?: "");
                        }
                        n = reallocarray(k.kms, k.n_kms + 1, sizeof(se_kms *));
                        if (!n) {
                                keyset_done(&k);
                                return se_error_set(e, -ENOMEM, "out of memory");
                        }
                        k.kms = n;
                        k.kms[k.n_kms++] = p->kms;
                        continue;
                }
                default:
                        keyset_done(&k);
                        return se_error_set(e, -EBADMSG, "unknown provider in the entry that covers secrets");
                }
                for (size_t j = 0; src && j < src->n_keys; j++) {
                        r = key_list_append(dst, src->keys[j].name, src->keys[j].secret);
                        if (r < 0) {
                                keyset_done(&k);
                                return se_error_set(e, r, "out of memory");
                        }
                }
        }
        *ret = k;
        return 0;
}

static int provider_from_list(const se_key_list *l, se_provider_type t, se_provider *p) {
        se_key_list *copy = calloc(1, sizeof(*copy));

        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_keys; i++)
                if (key_list_append(copy, l->keys[i].name, l->keys[i].secret) < 0) {
                        key_list_done(copy);
                        free(copy);
                        return -ENOMEM;
                }
        *p = (se_provider){};
        if (t == SE_PROVIDER_AESCBC)
                p->aescbc = copy;
        else if (t == SE_PROVIDER_AESGCM)
                p->aesgcm = copy;
        else
                p->secretbox = copy;
        return 0;
}

static int kms_copy(const se_kms *k, se_provider *p) {
        se_kms *n = calloc(1, sizeof(*n));

        if (!n)
                return -ENOMEM;
        *n = *k;
        n->api_version = strdup_null(k->api_version);
        n->name = strdup_null(k->name);
        n->endpoint = strdup_null(k->endpoint);
        *p = (se_provider){.kms = n};
        if ((k->api_version && !n->api_version) || (k->name && !n->name) || (k->endpoint && !n->endpoint))
                return -ENOMEM; /* freed with the provider */
        return 0;
}

/* k3s's WriteEncryptionConfig() for the entry that covers secrets: enabled = [primary, secondary,
 * aesgcm, kms…, identity], disabled = [identity, primary, secondary, aesgcm, kms…]; a type without
 * keys is left out. Every other entry, and the entry's resources, are copied unchanged. */
static int config_from_keyset(const se_config *src, const keyset *k, const char *provider, bool enabled,
                              se_config **ret, se_error *e) {
        se_provider_type primary = streq(provider, "secretbox") ? SE_PROVIDER_SECRETBOX : SE_PROVIDER_AESCBC;
        se_provider_type secondary = primary == SE_PROVIDER_AESCBC ? SE_PROVIDER_SECRETBOX : SE_PROVIDER_AESCBC;
        const se_key_list *lists[3] = {
                primary == SE_PROVIDER_AESCBC ? &k->aescbc : &k->secretbox,
                primary == SE_PROVIDER_AESCBC ? &k->secretbox : &k->aescbc,
                &k->aesgcm,
        };
        const se_provider_type types[3] = {primary, secondary, SE_PROVIDER_AESGCM};
        se_provider *providers = NULL;
        se_resource_config *rc;
        se_config *c = NULL;
        size_t n = 0;

        if (se_config_copy(src, &c) < 0)
                goto oom;
        providers = calloc(4 + k->n_kms, sizeof(se_provider));
        if (!providers)
                goto oom;
        if (!enabled)
                providers[n++] = (se_provider){.identity = true};
        for (size_t i = 0; i < 3; i++) {
                if (lists[i]->n_keys == 0)
                        continue;
                if (provider_from_list(lists[i], types[i], &providers[n]) < 0)
                        goto oom;
                n++;
        }
        for (size_t i = 0; i < k->n_kms; i++)
                if (kms_copy(k->kms[i], &providers[n++]) < 0)
                        goto oom;
        if (enabled)
                providers[n++] = (se_provider){.identity = true};

        rc = &c->resources[k->entry];
        for (size_t i = 0; i < rc->n_providers; i++)
                se_provider_done(&rc->providers[i]);
        free(rc->providers);
        rc->providers = TAKE_PTR(providers);
        rc->n_providers = n;
        *ret = c;
        return 0;
oom:
        if (providers)
                for (size_t i = 0; i < 4 + k->n_kms; i++)
                        se_provider_done(&providers[i]);
        free(providers);
        se_config_free(c);
        return se_error_set(e, -ENOMEM, "out of memory");
}

_public_ se_layout se_config_layout(const se_config *c) {
        const se_resource_config *rc = secrets_entry(c);
        se_provider_type first, second = SE_PROVIDER_NONE, last;

        if (!rc || rc->n_providers == 0)
                return SE_LAYOUT_UNKNOWN;
        first = se_provider_get_type(&rc->providers[0], NULL);
        last = se_provider_get_type(&rc->providers[rc->n_providers - 1], NULL);
        if (rc->n_providers > 1)
                second = se_provider_get_type(&rc->providers[1], NULL);

        if (last == SE_PROVIDER_IDENTITY && (first == SE_PROVIDER_AESCBC || first == SE_PROVIDER_SECRETBOX))
                return SE_LAYOUT_ENABLED;
        if (first == SE_PROVIDER_IDENTITY && rc->n_providers == 1)
                return SE_LAYOUT_IDENTITY_ONLY;
        if (first == SE_PROVIDER_IDENTITY && (second == SE_PROVIDER_AESCBC || second == SE_PROVIDER_SECRETBOX))
                return SE_LAYOUT_DISABLED;
        return SE_LAYOUT_UNKNOWN;
}

static bool keyset_has_name(const keyset *k, const char *name) {
        for (size_t i = 0; i < k->aescbc.n_keys; i++)
                if (streq(k->aescbc.keys[i].name, name))
                        return true;
        for (size_t i = 0; i < k->secretbox.n_keys; i++)
                if (streq(k->secretbox.keys[i].name, name))
                        return true;
        return false;
}

/* k3s's AppendNewEncryptionKey(). Names carry a one-second timestamp: two rotations within the
 * same second would collide, so wait for the next second rather than invent a new format. */
static int keyset_append_new(keyset *k, se_provider_type t, time_t now, char **ret_name, se_error *e) {
        _cleanup_erase_free_ char *secret = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        for (;;) {
                free(TAKE_PTR(name));
                r = se_key_name_new(t, false, now, &name);
                if (r < 0)
                        return se_error_set(e, r, "cannot name the new key: %s", strerror(-r));
                if (!keyset_has_name(k, name))
                        break;
                (void) sleep(1);
                now = time(NULL);
        }
        r = se_key_secret_generate(&secret);
        if (r < 0)
                return se_error_set(e, r, "cannot generate a key: %s", strerror(-r));
        r = key_list_append(t == SE_PROVIDER_AESCBC ? &k->aescbc : &k->secretbox, name, secret);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        if (ret_name)
                *ret_name = TAKE_PTR(name);
        return 0;
}

static void key_list_right_rotate(se_key_list *l) {
        se_key last;

        if (l->n_keys < 2)
                return;
        last = l->keys[l->n_keys - 1];
        memmove(l->keys + 1, l->keys, (l->n_keys - 1) * sizeof(se_key));
        l->keys[0] = last;
}

/* A config with one entry for secrets and no providers yet, for the first start. */
static int secrets_only_config(se_config **ret) {
        se_config *c = se_config_new();

        if (!c)
                return -ENOMEM;
        c->kind = strdup("EncryptionConfiguration");
        c->api_version = strdup("apiserver.config.k8s.io/v1");
        c->resources = calloc(1, sizeof(se_resource_config));
        if (c->resources) {
                c->n_resources = 1;
                c->resources[0].resources = calloc(1, sizeof(char *));
                if (c->resources[0].resources) {
                        c->resources[0].resources[0] = strdup("secrets");
                        c->resources[0].n_resources = 1;
                }
        }
        if (!c->kind || !c->api_version || !c->resources || !c->resources[0].resources ||
            !c->resources[0].resources[0]) {
                se_config_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

static int generate(const char *provider, bool with_key, se_config **ret, se_error *e) {
        se_provider_type t = se_provider_type_from_string(provider);
        _cleanup_erase_free_ char *secret = NULL;
        _cleanup_free_ char *name = NULL;
        se_config *empty = NULL;
        keyset k = {};
        int r;

        if (t != SE_PROVIDER_AESCBC && t != SE_PROVIDER_SECRETBOX)
                return se_error_set(e, -EINVAL, "unsupported secrets-encryption-provider %s", provider);
        if (with_key) {
                r = se_key_name_new(t, true, time(NULL), &name);
                if (r >= 0)
                        r = se_key_secret_generate(&secret);
                if (r < 0)
                        return se_error_set(e, r, "cannot generate a key: %s", strerror(-r));
                r = key_list_append(t == SE_PROVIDER_AESCBC ? &k.aescbc : &k.secretbox, name, secret);
                if (r < 0) {
                        keyset_done(&k);
                        return se_error_set(e, r, "out of memory");
                }
        }
        r = secrets_only_config(&empty);
        if (r < 0)
                r = se_error_set(e, r, "out of memory");
        else
                r = config_from_keyset(empty, &k, provider, with_key, ret, e);
        se_config_free(empty);
        keyset_done(&k);
        return r;
}

_public_ int se_config_generate(const char *provider, se_config **ret, se_error *e) {
        return generate(provider, true, ret, e);
}

_public_ int se_config_generate_identity(se_config **ret, se_error *e) {
        return generate("aescbc", false, ret, e);
}

/* prepare only adds a read key: the new aescbc key goes last in the entry's aescbc provider (a new
 * aescbc provider goes right after the write provider), so the write key never changes here. With
 * k3s's configs this is byte for byte k3s's result. */
_public_ int se_rotation_prepare(const se_config *c, const char *provider, time_t now, se_config **ret,
                                 char **ret_key_name, se_error *e) {
        se_config *n = NULL;
        se_resource_config *rc;
        se_key_list *l = NULL;
        keyset k;
        int r;

        if (streq(provider, "secretbox"))
                return se_error_set(e, -ESTALE,
                                    "prepare does not support secretbox key type, use rotate-keys instead");
        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        r = keyset_append_new(&k, SE_PROVIDER_AESCBC, now, ret_key_name, e);
        if (r >= 0 && se_config_copy(c, &n) < 0)
                r = se_error_set(e, -ENOMEM, "out of memory");
        if (r < 0)
                goto finish;

        rc = &n->resources[k.entry];
        for (size_t i = 0; i < rc->n_providers && !l; i++)
                if (se_provider_get_type(&rc->providers[i], NULL) == SE_PROVIDER_AESCBC)
                        l = rc->providers[i].aescbc;
        if (!l) {
                se_provider *np = reallocarray(rc->providers, rc->n_providers + 1, sizeof(se_provider));
                size_t at = MIN(rc->n_providers, (size_t) 1);

                if (!np) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
                rc->providers = np;
                memmove(np + at + 1, np + at, (rc->n_providers - at) * sizeof(se_provider));
                np[at] = (se_provider){.aescbc = l = calloc(1, sizeof(se_key_list))};
                rc->n_providers++;
                if (!l) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
        }
        r = key_list_append(l, k.aescbc.keys[k.aescbc.n_keys - 1].name, k.aescbc.keys[k.aescbc.n_keys - 1].secret);
        if (r < 0) {
                r = se_error_set(e, r, "out of memory");
                goto finish;
        }
        *ret = TAKE_PTR(n);
finish:
        se_config_free(n);
        keyset_done(&k);
        return r;
}

_public_ int se_rotation_rotate(const se_config *c, const char *provider, se_config **ret, char **ret_key_name,
                                se_error *e) {
        keyset k;
        int r;

        if (streq(provider, "secretbox"))
                return se_error_set(e, -ESTALE, "rotate does not support secretbox key type, use rotate-keys instead");
        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        key_list_right_rotate(&k.aescbc);
        if (ret_key_name && k.aescbc.n_keys > 0) {
                *ret_key_name = strdup(k.aescbc.keys[0].name);
                if (!*ret_key_name)
                        r = se_error_set(e, -ENOMEM, "out of memory");
        }
        if (r >= 0)
                r = config_from_keyset(c, &k, provider, true, ret, e);
        keyset_done(&k);
        return r;
}

_public_ int se_rotation_add_and_rotate(const se_config *c, const char *provider, time_t now, se_config **ret,
                                        char **ret_key_name, se_error *e) {
        se_provider_type t = se_provider_type_from_string(provider);
        keyset k;
        int r;

        if (t != SE_PROVIDER_AESCBC && t != SE_PROVIDER_SECRETBOX)
                return se_error_set(e, -EINVAL, "unsupported secrets-encryption-provider %s", provider);
        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        r = keyset_append_new(&k, t, now, ret_key_name, e);
        if (r >= 0) {
                key_list_right_rotate(t == SE_PROVIDER_AESCBC ? &k.aescbc : &k.secretbox);
                r = config_from_keyset(c, &k, provider, true, ret, e);
        }
        keyset_done(&k);
        return r;
}

/* Removes the named key of type t from the entry, in place; a provider left without keys goes. */
static void entry_remove_key(se_resource_config *rc, se_provider_type t, const char *name) {
        for (size_t i = 0; i < rc->n_providers; i++) {
                se_key_list *l;

                if (se_provider_get_type(&rc->providers[i], NULL) != t)
                        continue;
                l = se_provider_keys(&rc->providers[i]);
                for (size_t j = 0; l && j < l->n_keys; j++) {
                        if (!streq(l->keys[j].name, name))
                                continue;
                        free(l->keys[j].name);
                        erase_and_freep(&l->keys[j].secret);
                        memmove(l->keys + j, l->keys + j + 1, (l->n_keys - j - 1) * sizeof(se_key));
                        l->n_keys--;
                        if (l->n_keys == 0) {
                                se_provider_done(&rc->providers[i]);
                                memmove(rc->providers + i, rc->providers + i + 1,
                                        (rc->n_providers - i - 1) * sizeof(se_provider));
                                rc->n_providers--;
                        }
                        return;
                }
        }
}

static int names_join(char **joined, const char *name) {
        char *n;

        if (asprintf(&n, "%s%s%s", *joined ?: "", *joined ? ", " : "", name) < 0)
                return -ENOMEM;
        free(*joined);
        *joined = n;
        return 0;
}

/* The key the entry keeps: its write key, or, when identity writes (encryption disabled), the key
 * `enable` would promote (the first key of the first encrypting provider). */
static bool is_kept_key(const se_resource_config *rc, size_t provider, size_t key) {
        size_t first = 0;

        if (rc->n_providers > 0 && se_provider_get_type(&rc->providers[0], NULL) == SE_PROVIDER_IDENTITY)
                first = 1;
        return provider == first && key == 0;
}

/* The prune after a completed re-encryption: every aescbc, secretbox and aesgcm key of the entry
 * that covers secrets except the one it keeps. With k3s's configs that is exactly k3s's prune (the
 * old key after rotate, the other type's key after a migration), whatever the provider setting was
 * when the rotation started; aesgcm keys are migrated away from too. KMS providers are never
 * removed. Done in place: the order of what stays is kept. */
_public_ int se_rotation_prune(const se_config *c, se_config **ret, char **ret_removed, se_error *e) {
        _cleanup_free_ char *removed = NULL;
        se_config *n = NULL;
        size_t entry;
        int r;

        r = se_config_secrets_entry(c, &entry, e);
        if (r < 0)
                return r;
        if (se_config_copy(c, &n) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        for (size_t p = c->resources[entry].n_providers; p-- > 0;) {
                const se_provider *src = &c->resources[entry].providers[p];
                se_provider_type t = se_provider_get_type(src, NULL);
                const se_key_list *l = se_provider_keys(src);

                if (t != SE_PROVIDER_AESCBC && t != SE_PROVIDER_SECRETBOX && t != SE_PROVIDER_AESGCM)
                        continue;
                for (size_t k = l ? l->n_keys : 0; k-- > 0 && r >= 0;) {
                        if (is_kept_key(&c->resources[entry], p, k))
                                continue;
                        r = names_join(&removed, l->keys[k].name);
                        if (r >= 0)
                                entry_remove_key(&n->resources[entry], t, l->keys[k].name);
                }
        }
        if (r < 0 || !removed) {
                se_config_free(n);
                if (r < 0)
                        return se_error_set(e, r, "out of memory");
                /* one key and nothing else — "No keys to remove, switched from identity provider" */
                *ret = NULL;
                *ret_removed = NULL;
                return 0;
        }
        *ret = n;
        *ret_removed = TAKE_PTR(removed);
        return 0;
}

_public_ int se_rotation_set_enabled(const se_config *c, const char *provider, bool enable, time_t now,
                                     se_config **ret, se_error *e) {
        se_layout layout = se_config_layout(c);
        se_provider_type t = se_provider_type_from_string(provider);
        keyset k;
        int r;

        if (layout == SE_LAYOUT_UNKNOWN)
                return se_error_set(e, -EBADMSG, "unable to enable/disable secrets encryption, unknown configuration");
        if ((enable && layout == SE_LAYOUT_ENABLED) ||
            (!enable && (layout == SE_LAYOUT_DISABLED || layout == SE_LAYOUT_IDENTITY_ONLY))) {
                *ret = NULL;
                return 0;
        }
        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        if (enable) {
                se_key_list *mine = t == SE_PROVIDER_SECRETBOX ? &k.secretbox : &k.aescbc;

                /* k3s panics on an identity-only config here; we create the first key instead. */
                if (layout == SE_LAYOUT_IDENTITY_ONLY)
                        r = keyset_append_new(&k, t, now, NULL, e);
                else if (mine->n_keys == 0)
                        r = se_error_set(e, -ESTALE,
                                         "cannot enable secrets encryption with %s key type, no keys found", provider);
        }
        if (r >= 0)
                r = config_from_keyset(c, &k, provider, enable, ret, e);
        keyset_done(&k);
        return r;
}

_public_ int se_config_status_keys(const se_config *c, char **ret_active, char ***ret_inactive,
                                   size_t *ret_n_inactive) {
        const se_resource_config *rc = secrets_entry(c);
        char *active = NULL, **inactive = NULL;
        size_t n = 0;
        bool can_be_active = true;

        for (size_t i = 0; rc && i < rc->n_providers; i++) {
                se_provider_type t = se_provider_get_type(&rc->providers[i], NULL);
                const se_key_list *l = se_provider_keys(&rc->providers[i]);
                const char *label = t == SE_PROVIDER_AESCBC      ? "AES-CBC"
                                    : t == SE_PROVIDER_SECRETBOX ? "XSalsa20-POLY1305"
                                                                 : NULL;

                if (t == SE_PROVIDER_IDENTITY) {
                        can_be_active = false;
                        continue;
                }
                if (!label || !l)
                        continue;
                for (size_t j = 0; j < l->n_keys; j++) {
                        char *s, **ni;

                        if (asprintf(&s, "%s %s", label, l->keys[j].name) < 0)
                                goto oom;
                        if (can_be_active && !active) {
                                active = s;
                                continue;
                        }
                        ni = realloc(inactive, (n + 1) * sizeof(char *));
                        if (!ni) {
                                free(s);
                                goto oom;
                        }
                        inactive = ni;
                        inactive[n++] = s;
                }
        }
        *ret_active = active;
        *ret_inactive = inactive;
        *ret_n_inactive = n;
        return 0;
oom:
        free(active);
        for (size_t i = 0; i < n; i++)
                free(inactive[i]);
        free(inactive);
        return -ENOMEM;
}
