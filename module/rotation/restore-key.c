/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "ops-internal.h"
#include "se-event.h"
#include "se-key-archive.h"

/* kube-apiserver's choice of the entry for secrets (group "", resource "secrets"): the first
 * entry that names it or a wildcard covering it. */
static bool covers_secrets(const se_resource_config *rc) {
        for (size_t j = 0; j < rc->n_resources; j++) {
                const char *r = rc->resources[j];

                if (streq(r, "secrets") || streq(r, "secrets.") || streq(r, "*.") || streq(r, "*.*"))
                        return true;
        }
        return false;
}

static int secrets_entry(const se_config *c, size_t *ret) {
        for (size_t i = 0; i < c->n_resources; i++)
                if (covers_secrets(&c->resources[i])) {
                        *ret = i;
                        return 0;
                }
        return -ENOENT;
}

/* Where a key named name already is: "resources[i].providers[j].<type>.keys[k]", or NULL. */
static int find_key(const se_config *c, const char *name, char **ret) {
        for (size_t i = 0; i < c->n_resources; i++)
                for (size_t j = 0; j < c->resources[i].n_providers; j++) {
                        const se_provider *p = &c->resources[i].providers[j];
                        const se_key_list *l = se_provider_keys(p);

                        for (size_t k = 0; l && k < l->n_keys; k++)
                                if (l->keys[k].name && streq(l->keys[k].name, name))
                                        return asprintf(ret, "resources[%zu].providers[%zu].%s.keys[%zu]", i, j,
                                                        se_provider_type_to_string(se_provider_get_type(p, NULL)),
                                                        k) < 0
                                                       ? -ENOMEM
                                                       : 1;
                }
        *ret = NULL;
        return 0;
}

static se_key_list **provider_list(se_provider *p, se_provider_type t) {
        switch (t) {
        case SE_PROVIDER_AESGCM:
                return &p->aesgcm;
        case SE_PROVIDER_AESCBC:
                return &p->aescbc;
        case SE_PROVIDER_SECRETBOX:
                return &p->secretbox;
        default:
                return NULL;
        }
}

/* Adds key (ownership taken only on success) to rc as a read key: the last key of the first
 * provider of its type, or a new provider of its type right after the first provider. */
static int add_read_key(se_resource_config *rc, se_provider_type type, se_key *key) {
        se_provider *np;
        se_key_list *l;
        se_key *keys;

        for (size_t j = 0; j < rc->n_providers; j++) {
                if (se_provider_get_type(&rc->providers[j], NULL) != type)
                        continue;
                l = *provider_list(&rc->providers[j], type);
                keys = reallocarray(l->keys, l->n_keys + 1, sizeof(se_key));
                if (!keys)
                        return -ENOMEM;
                l->keys = keys;
                l->keys[l->n_keys++] = *key;
                *key = (se_key){};
                return 0;
        }

        /* validation guarantees a first provider; be safe with an empty list anyway */
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->keys = calloc(1, sizeof(se_key));
        np = reallocarray(rc->providers, rc->n_providers + 1, sizeof(se_provider));
        if (!l->keys || !np) {
                free(l->keys);
                free(l);
                if (np)
                        rc->providers = np;
                return -ENOMEM;
        }
        rc->providers = np;
        if (rc->n_providers > 0)
                memmove(&np[2], &np[1], (rc->n_providers - 1) * sizeof(se_provider));
        np[MIN(rc->n_providers, (size_t) 1)] = (se_provider){};
        *provider_list(&np[MIN(rc->n_providers, (size_t) 1)], type) = l;
        rc->n_providers++;
        l->keys[0] = *key;
        l->n_keys = 1;
        *key = (se_key){};
        return 0;
}

_public_ int se_op_restore_key(se_ctx *ctx, const char *name, se_error *e) {
        const char *node = ctx->settings->node_name;
        _cleanup_free_ char *existing = NULL;
        se_store *store;
        se_key key = {};
        se_provider_type type = SE_PROVIDER_NONE;
        se_config *n = NULL;
        size_t entry;
        int r;

        if (isempty(name))
                return se_error_set(e, -EINVAL, "restore-key needs the name of a removed key");
        if (!ctx->state.has_config)
                return se_error_set(e, -ESTALE,
                                    "no encryption configuration in %s: secrets encryption is not set up on this "
                                    "node, so there is nothing to restore a key into",
                                    ctx->state.dir);
        /* never edit a config older than the cluster's: keys added elsewhere would be dropped */
        r = se_ha_require_in_sync(ctx, e);
        if (r >= 0) /* a mistyped datastore-endpoint changes nothing */
                r = se_ctx_store(ctx, &store, e);
        if (r < 0)
                return r;

        r = find_key(ctx->state.config, name, &existing);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        if (r > 0)
                return se_error_set(e, -ESTALE, "key %s is already in the encryption configuration (%s)", name,
                                    existing);
        if (secrets_entry(ctx->state.config, &entry) < 0)
                return se_error_set(e, -ESTALE,
                                    "no resources entry of the encryption configuration covers secrets (\"secrets\", "
                                    "\"secrets.\", \"*.\" or \"*.*\"): there is no provider to restore key %s into",
                                    name);

        r = se_key_archive_find(ctx->state.dir, name, &type, &key, NULL, e);
        if (r < 0)
                return r;

        r = se_config_copy(ctx->state.config, &n);
        if (r >= 0)
                r = add_read_key(&n->resources[entry], type, &key);
        se_key_archive_key_done(&key); /* a no-op once the config owns it */
        if (r < 0) {
                se_config_free(n);
                return se_error_set(e, r, "out of memory");
        }
        /* Adding a read key makes nothing unreadable (SPEC §5.0): the write key, the stage and every
         * other entry stay as they are. */
        r = se_ops_commit(ctx, n, ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START, e);
        se_config_free(n);
        if (r < 0)
                return r;

        (void) se_event(
                SE_EVENT_KEY_ADDED, SE_MESSAGE("Secrets encryption key %s restored as a read key on %s.", name, node),
                SE_FIELD("SECRETS_ENCRYPT_KEY_NAME=%s", name),
                SE_FIELD("SECRETS_ENCRYPT_PROVIDER=%s", se_provider_type_to_string(type)),
                SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash), SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node));
        return 0;
}
