/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"

static const char *const provider_names[_SE_PROVIDER_MAX] = {
        [SE_PROVIDER_AESGCM] = "aesgcm",     [SE_PROVIDER_AESCBC] = "aescbc", [SE_PROVIDER_SECRETBOX] = "secretbox",
        [SE_PROVIDER_IDENTITY] = "identity", [SE_PROVIDER_KMS] = "kms",
};

_public_ const char *se_provider_type_to_string(se_provider_type t) {
        if (t < 0 || t >= _SE_PROVIDER_MAX)
                return NULL;
        return provider_names[t];
}

_public_ se_provider_type se_provider_type_from_string(const char *s) {
        for (int t = 0; s && t < _SE_PROVIDER_MAX; t++)
                if (streq(s, provider_names[t]))
                        return (se_provider_type) t;
        return SE_PROVIDER_NONE;
}

_public_ se_provider_type se_provider_get_type(const se_provider *p, unsigned *ret_count) {
        const bool set[_SE_PROVIDER_MAX] = {
                [SE_PROVIDER_AESGCM] = p->aesgcm,
                [SE_PROVIDER_AESCBC] = p->aescbc,
                [SE_PROVIDER_SECRETBOX] = p->secretbox,
                [SE_PROVIDER_IDENTITY] = p->identity,
                [SE_PROVIDER_KMS] = p->kms,
        };
        se_provider_type first = SE_PROVIDER_NONE;
        unsigned n = 0;

        for (int t = 0; t < _SE_PROVIDER_MAX; t++)
                if (set[t]) {
                        if (n++ == 0)
                                first = (se_provider_type) t;
                }
        if (ret_count)
                *ret_count = n;
        return first;
}

_public_ se_key_list *se_provider_keys(const se_provider *p) {
        switch (se_provider_get_type(p, NULL)) {
        case SE_PROVIDER_AESGCM:
                return p->aesgcm;
        case SE_PROVIDER_AESCBC:
                return p->aescbc;
        case SE_PROVIDER_SECRETBOX:
                return p->secretbox;
        default:
                return NULL;
        }
}

_public_ se_config *se_config_new(void) {
        return calloc(1, sizeof(se_config));
}

_public_ se_key_list *se_key_list_free(se_key_list *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_keys; i++) {
                free(l->keys[i].name);
                erase_and_freep(&l->keys[i].secret);
        }
        free(l->keys);
        free(l);
        return NULL;
}

_public_ se_kms *se_kms_free(se_kms *k) {
        if (!k)
                return NULL;
        free(k->api_version);
        free(k->name);
        free(k->endpoint);
        free(k);
        return NULL;
}

_public_ void se_provider_done(se_provider *p) {
        se_key_list_free(p->aesgcm);
        se_key_list_free(p->aescbc);
        se_key_list_free(p->secretbox);
        se_kms_free(p->kms);
        *p = (se_provider){};
}

_public_ se_config *se_config_free(se_config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_resources; i++) {
                se_resource_config *rc = &c->resources[i];

                for (size_t j = 0; j < rc->n_resources; j++)
                        free(rc->resources[j]);
                free(rc->resources);
                for (size_t j = 0; j < rc->n_providers; j++)
                        se_provider_done(&rc->providers[j]);
                free(rc->providers);
        }
        free(c->resources);
        free(c->kind);
        free(c->api_version);
        free(c);
        return NULL;
}

static int copy_str(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int key_list_copy(const se_key_list *l, se_key_list **ret) {
        se_key_list *n;

        *ret = NULL;
        if (!l)
                return 0;
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        if (l->keys) { /* an empty, non-nil list stays one (Go's [] vs null) */
                n->keys = calloc(MAX(l->n_keys, (size_t) 1), sizeof(se_key));
                if (!n->keys) {
                        free(n);
                        return -ENOMEM;
                }
        }
        n->n_keys = l->n_keys;
        for (size_t i = 0; i < l->n_keys; i++)
                if (copy_str(l->keys[i].name, &n->keys[i].name) < 0 ||
                    copy_str(l->keys[i].secret, &n->keys[i].secret) < 0) {
                        se_key_list_free(n);
                        return -ENOMEM;
                }
        *ret = n;
        return 0;
}

static int provider_copy(const se_provider *p, se_provider *n) {
        *n = (se_provider){.identity = p->identity};
        if (key_list_copy(p->aesgcm, &n->aesgcm) < 0 || key_list_copy(p->aescbc, &n->aescbc) < 0 ||
            key_list_copy(p->secretbox, &n->secretbox) < 0)
                return -ENOMEM;
        if (p->kms) {
                n->kms = calloc(1, sizeof(se_kms));
                if (!n->kms)
                        return -ENOMEM;
                *n->kms = (se_kms){.has_cachesize = p->kms->has_cachesize,
                                   .cachesize = p->kms->cachesize,
                                   .timeout_ns = p->kms->timeout_ns};
                if (copy_str(p->kms->api_version, &n->kms->api_version) < 0 ||
                    copy_str(p->kms->name, &n->kms->name) < 0 || copy_str(p->kms->endpoint, &n->kms->endpoint) < 0)
                        return -ENOMEM;
        }
        return 0;
}

_public_ int se_config_copy(const se_config *c, se_config **ret) {
        se_config *n = se_config_new();

        if (!n)
                return -ENOMEM;
        if (copy_str(c->kind, &n->kind) < 0 || copy_str(c->api_version, &n->api_version) < 0)
                goto oom;
        if (c->n_resources > 0) {
                n->resources = calloc(c->n_resources, sizeof(se_resource_config));
                if (!n->resources)
                        goto oom;
        }
        n->n_resources = c->n_resources;
        for (size_t i = 0; i < c->n_resources; i++) {
                const se_resource_config *rc = &c->resources[i];
                se_resource_config *nrc = &n->resources[i];

                if (rc->n_resources > 0) {
                        nrc->resources = calloc(rc->n_resources, sizeof(char *));
                        if (!nrc->resources)
                                goto oom;
                }
                nrc->n_resources = rc->n_resources;
                for (size_t j = 0; j < rc->n_resources; j++)
                        if (copy_str(rc->resources[j], &nrc->resources[j]) < 0)
                                goto oom;
                if (rc->n_providers > 0) {
                        nrc->providers = calloc(rc->n_providers, sizeof(se_provider));
                        if (!nrc->providers)
                                goto oom;
                }
                nrc->n_providers = rc->n_providers;
                for (size_t j = 0; j < rc->n_providers; j++)
                        if (provider_copy(&rc->providers[j], &nrc->providers[j]) < 0)
                                goto oom;
        }
        *ret = n;
        return 0;
oom:
        se_config_free(n);
        return -ENOMEM;
}
