/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "se-envelope.h"
#include "se-rotation.h"

/* The key material of a k3s-shaped config, in an editable form. */
typedef struct keyset {
        se_key_list aescbc;
        se_key_list secretbox;
        bool identity;
        bool has_aescbc, has_secretbox;
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
        for (size_t i = 0; i < c->n_resources; i++)
                for (size_t j = 0; j < c->resources[i].n_resources; j++)
                        if (streq(c->resources[i].resources[j], "secrets") ||
                            streq(c->resources[i].resources[j], "secrets."))
                                return &c->resources[i];
        return c->n_resources > 0 ? &c->resources[0] : NULL;
}

/* k3s's GetEncryptionKeys(): aescbc and secretbox keys; aesgcm/kms are not supported. */
static int keyset_from_config(const se_config *c, keyset *ret, se_error *e) {
        const se_resource_config *rc = secrets_entry(c);
        keyset k = {};
        int r;

        if (!rc)
                return se_error_set(e, -EBADMSG, "unable to enable/disable secrets encryption, unknown configuration");
        if (rc->n_providers > 3)
                return se_error_set(e, -EBADMSG, "more than 3 providers (%zu) found in secrets encryption",
                                    rc->n_providers);
        for (size_t i = 0; i < rc->n_providers; i++) {
                const se_provider *p = &rc->providers[i];
                se_key_list *dst;
                const se_key_list *src;

                switch (se_provider_get_type(p, NULL)) {
                case SE_PROVIDER_AESCBC:
                        dst = &k.aescbc;
                        src = p->aescbc;
                        k.has_aescbc = true;
                        break;
                case SE_PROVIDER_SECRETBOX:
                        dst = &k.secretbox;
                        src = p->secretbox;
                        k.has_secretbox = true;
                        break;
                case SE_PROVIDER_IDENTITY:
                        k.identity = true;
                        continue;
                default:
                        keyset_done(&k);
                        return se_error_set(e, -EBADMSG,
                                            "unsupported encryption keys found (only aescbc, secretbox and identity "
                                            "providers can be rotated; aesgcm and kms cannot)");
                }
                for (size_t j = 0; j < src->n_keys; j++) {
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
        else
                p->secretbox = copy;
        return 0;
}

/* k3s's WriteEncryptionConfig(): enabled = [primary, secondary, identity], disabled =
 * [identity, primary, secondary]; a type without keys is left out. */
static int config_from_keyset(const keyset *k, const char *provider, bool enabled, se_config **ret, se_error *e) {
        se_provider_type primary = streq(provider, "secretbox") ? SE_PROVIDER_SECRETBOX : SE_PROVIDER_AESCBC;
        se_provider_type secondary = primary == SE_PROVIDER_AESCBC ? SE_PROVIDER_SECRETBOX : SE_PROVIDER_AESCBC;
        const se_key_list *lists[2] = {
                primary == SE_PROVIDER_AESCBC ? &k->aescbc : &k->secretbox,
                primary == SE_PROVIDER_AESCBC ? &k->secretbox : &k->aescbc,
        };
        const se_provider_type types[2] = {primary, secondary};
        se_config *c = se_config_new();
        se_resource_config *rc;
        size_t n = 0;

        if (!c)
                goto oom;
        c->kind = strdup("EncryptionConfiguration");
        c->api_version = strdup("apiserver.config.k8s.io/v1");
        c->resources = calloc(1, sizeof(se_resource_config));
        if (!c->kind || !c->api_version || !c->resources)
                goto oom;
        c->n_resources = 1;
        rc = &c->resources[0];
        rc->resources = calloc(1, sizeof(char *));
        rc->providers = calloc(3, sizeof(se_provider));
        if (!rc->resources || !rc->providers)
                goto oom;
        rc->resources[0] = strdup("secrets");
        if (!rc->resources[0])
                goto oom;
        rc->n_resources = 1;

        if (!enabled)
                rc->providers[n++] = (se_provider){.identity = true};
        for (size_t i = 0; i < 2; i++) {
                if (lists[i]->n_keys == 0)
                        continue;
                if (provider_from_list(lists[i], types[i], &rc->providers[n]) < 0)
                        goto oom;
                rc->n_providers = ++n;
        }
        if (enabled)
                rc->providers[n++] = (se_provider){.identity = true};
        rc->n_providers = n;
        *ret = c;
        return 0;
oom:
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

static void key_list_drop_last(se_key_list *l, char **ret_name) {
        se_key *k = &l->keys[l->n_keys - 1];

        *ret_name = k->name;
        erase_and_freep(&k->secret);
        l->n_keys--;
}

_public_ int se_config_generate(const char *provider, se_config **ret, se_error *e) {
        se_provider_type t = se_provider_type_from_string(provider);
        _cleanup_erase_free_ char *secret = NULL;
        _cleanup_free_ char *name = NULL;
        keyset k = {};
        int r;

        if (t != SE_PROVIDER_AESCBC && t != SE_PROVIDER_SECRETBOX)
                return se_error_set(e, -EINVAL, "unsupported secrets-encryption-provider %s", provider);
        r = se_key_name_new(t, true, time(NULL), &name);
        if (r >= 0)
                r = se_key_secret_generate(&secret);
        if (r < 0)
                return se_error_set(e, r, "cannot generate a key: %s", strerror(-r));
        r = key_list_append(t == SE_PROVIDER_AESCBC ? &k.aescbc : &k.secretbox, name, secret);
        if (r >= 0)
                r = config_from_keyset(&k, provider, true, ret, e);
        else
                r = se_error_set(e, r, "out of memory");
        keyset_done(&k);
        return r;
}

_public_ int se_config_generate_identity(se_config **ret, se_error *e) {
        keyset k = {};

        return config_from_keyset(&k, "aescbc", false, ret, e);
}

_public_ int se_rotation_prepare(const se_config *c, const char *provider, time_t now, se_config **ret,
                                 char **ret_key_name, se_error *e) {
        keyset k;
        int r;

        if (streq(provider, "secretbox"))
                return se_error_set(e, -ESTALE,
                                    "prepare does not support secretbox key type, use rotate-keys instead");
        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        r = keyset_append_new(&k, SE_PROVIDER_AESCBC, now, ret_key_name, e);
        if (r >= 0)
                r = config_from_keyset(&k, provider, true, ret, e);
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
                r = config_from_keyset(&k, provider, true, ret, e);
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
                r = config_from_keyset(&k, provider, true, ret, e);
        }
        keyset_done(&k);
        return r;
}

_public_ int se_rotation_prune(const se_config *c, const char *provider, se_config **ret, char **ret_removed,
                               se_error *e) {
        bool aescbc = !streq(provider, "secretbox");
        se_key_list *mine, *other;
        char *removed = NULL;
        keyset k;
        int r;

        r = keyset_from_config(c, &k, e);
        if (r < 0)
                return r;
        mine = aescbc ? &k.aescbc : &k.secretbox;
        other = aescbc ? &k.secretbox : &k.aescbc;

        if (mine->n_keys == 1 && other->n_keys > 0)
                key_list_drop_last(other, &removed); /* migration between types */
        else if (mine->n_keys > 1)
                key_list_drop_last(mine, &removed);
        /* else: one key and nothing else — "No keys to remove, switched from identity provider" */

        if (!removed) {
                keyset_done(&k);
                *ret = NULL;
                *ret_removed = NULL;
                return 0;
        }
        r = config_from_keyset(&k, provider, se_config_layout(c) != SE_LAYOUT_DISABLED, ret, e);
        keyset_done(&k);
        if (r < 0) {
                free(removed);
                return r;
        }
        *ret_removed = removed;
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
                r = config_from_keyset(&k, provider, enable, ret, e);
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
