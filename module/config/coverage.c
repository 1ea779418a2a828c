/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coverage-internal.h"
#include "macro.h"

/*
 * Which part of a config a rotation owns. kube-apiserver picks the providers for secrets from the
 * entries naming "secrets", else "*.", else "*.*"; that entry is the one k3s's commands edit. Every
 * other entry is carried through unchanged, and stored values are only rewritten where the rotated
 * entry is certainly the one that reads them.
 */

static bool names_core(const char *r, const char *resource) {
        size_t n = strlen(resource);

        /* "secrets" and "secrets." both mean group "" (schema.ParseGroupResource) */
        return strneq(r, resource, n) && (r[n] == '\0' || (r[n] == '.' && r[n + 1] == '\0'));
}

int se_config_secrets_entry(const se_config *c, size_t *ret, se_error *e) {
        static const char *const levels[] = {"secrets", "*", NULL}; /* then "*.*" */
        size_t found = SIZE_MAX, n_found = 0;

        for (size_t level = 0; level < 3 && n_found == 0; level++)
                for (size_t i = 0; i < c->n_resources; i++)
                        for (size_t j = 0; j < c->resources[i].n_resources; j++) {
                                const char *r = c->resources[i].resources[j];

                                if (!r || !(levels[level] ? names_core(r, levels[level]) : streq(r, "*.*")))
                                        continue;
                                if (found != i)
                                        n_found++;
                                if (found == SIZE_MAX)
                                        found = i;
                                break;
                        }

        if (n_found == 0)
                return se_error_set(e, -ESTALE,
                                    "no resources entry of the configuration covers secrets: add one (e.g. "
                                    "resources: [secrets]) before rotating keys");
        if (n_found > 1)
                return se_error_set(e, -ESTALE,
                                    "more than one resources entry covers secrets (kube-apiserver chains their "
                                    "providers): merge them into one entry before rotating keys");
        *ret = found;
        return 0;
}

bool se_entry_has_key(const se_resource_config *rc, se_provider_type t, const char *name) {
        for (size_t p = 0; p < rc->n_providers; p++) {
                const se_key_list *l;

                if (se_provider_get_type(&rc->providers[p], NULL) != t)
                        continue;
                if (t == SE_PROVIDER_IDENTITY)
                        return true;
                if (t == SE_PROVIDER_KMS) {
                        if (rc->providers[p].kms->name && streq(rc->providers[p].kms->name, name))
                                return true;
                        continue;
                }
                l = se_provider_keys(&rc->providers[p]);
                for (size_t k = 0; l && k < l->n_keys; k++)
                        if (streq(l->keys[k].name, name))
                                return true;
        }
        return false;
}

int se_value_prefix(se_provider_type t, const char *name, char **ret) {
        return asprintf(ret, "k8s:enc:%s:v1:%s:", se_provider_type_to_string(t), name) < 0 ? -ENOMEM : 0;
}

int se_entry_owned_value_prefixes(const se_config *c, size_t entry, char ***ret) {
        const se_resource_config *rc = &c->resources[entry];
        char **l = NULL;
        size_t n = 0;
        int r;

        for (size_t p = 0; p < rc->n_providers; p++) {
                se_provider_type t = se_provider_get_type(&rc->providers[p], NULL);
                const se_key_list *keys = se_provider_keys(&rc->providers[p]);

                for (size_t k = 0; keys && k < keys->n_keys; k++) {
                        bool shared = false;
                        char *s;

                        for (size_t o = 0; o < c->n_resources && !shared; o++)
                                shared = o != entry && se_entry_has_key(&c->resources[o], t, keys->keys[k].name);
                        if (shared)
                                continue;
                        r = se_value_prefix(t, keys->keys[k].name, &s);
                        if (r >= 0)
                                r = se_strv_consume(&l, &n, s);
                        if (r < 0) {
                                se_strv_free(l);
                                return r;
                        }
                }
        }
        if (!l && !(l = calloc(1, sizeof(char *)))) /* an empty list, not "no filter" */
                return -ENOMEM;
        *ret = l;
        return 0;
}

bool se_entry_covers_only_secrets(const se_resource_config *rc) {
        for (size_t j = 0; j < rc->n_resources; j++)
                if (!rc->resources[j] || !names_core(rc->resources[j], "secrets"))
                        return false;
        return true;
}

int se_config_removed_keys(const se_config *before, const se_config *after, char ***ret) {
        char **l = NULL;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < before->n_resources; i++) {
                const se_resource_config *rc = &before->resources[i];

                for (size_t p = 0; p < rc->n_providers; p++) {
                        se_provider_type t = se_provider_get_type(&rc->providers[p], NULL);
                        const se_key_list *keys = se_provider_keys(&rc->providers[p]);
                        const se_kms *kms = rc->providers[p].kms;

                        if (t == SE_PROVIDER_KMS && kms->name &&
                            !(i < after->n_resources && se_entry_has_key(&after->resources[i], t, kms->name))) {
                                char *s;

                                r = asprintf(&s,
                                             "k8s:enc:kms:%s:%s:", isempty(kms->api_version) ? "v1" : kms->api_version,
                                             kms->name) < 0
                                            ? -ENOMEM
                                            : 0;
                                if (r >= 0)
                                        r = se_strv_consume(&l, &n, s);
                                if (r < 0) {
                                        se_strv_free(l);
                                        return r;
                                }
                        }
                        for (size_t k = 0; keys && k < keys->n_keys; k++) {
                                char *s;

                                if (i < after->n_resources &&
                                    se_entry_has_key(&after->resources[i], t, keys->keys[k].name))
                                        continue;
                                r = se_value_prefix(t, keys->keys[k].name, &s);
                                if (r >= 0)
                                        r = se_strv_consume(&l, &n, s);
                                if (r < 0) {
                                        se_strv_free(l);
                                        return r;
                                }
                        }
                }
        }
        *ret = l; /* NULL: nothing removed */
        return 0;
}

/* API groups whose resources kube-apiserver stores at /registry/<resource>/ (custom resources go to
 * /registry/<group>/<resource>/). */
static const char *const builtin_groups[] = {
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "extensions",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
        "networking.k8s.io",
        "scheduling.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "certificates.k8s.io",
        "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "events.k8s.io",
        "resource.k8s.io",
        "internal.apiserver.k8s.io",
        "storagemigration.k8s.io",
        NULL,
};

/* kube-apiserver's storage paths that are not /registry/<resource>/. */
static const struct {
        const char *group_resource;
        const char *prefix;
} storage_overrides[] = {
        {"services", "/registry/services/specs/"},
        {"endpoints", "/registry/services/endpoints/"},
        {"nodes", "/registry/minions/"},
        {"ingresses.networking.k8s.io", "/registry/ingress/"},
        {"ingresses.extensions", "/registry/ingress/"},
        {"customresourcedefinitions.apiextensions.k8s.io",
         "/registry/apiextensions.k8s.io/customresourcedefinitions/"},
        {"apiservices.apiregistration.k8s.io", "/registry/apiregistration.k8s.io/apiservices/"},
};

int se_resource_storage_prefix(const char *group_resource, char **ret) {
        const char *dot = strchr(group_resource, '.');
        const char *group = dot ? dot + 1 : "";
        int len = dot ? (int) (dot - group_resource) : (int) strlen(group_resource);
        bool builtin = isempty(group);

        *ret = NULL;
        if (len == 0 || (len == 1 && group_resource[0] == '*'))
                return 0; /* a wildcard: no one prefix */
        for (size_t i = 0; i < ELEMENTSOF(storage_overrides); i++)
                if (streq(group_resource, storage_overrides[i].group_resource) ||
                    (isempty(group) && strneq(group_resource, storage_overrides[i].group_resource, (size_t) len) &&
                     storage_overrides[i].group_resource[len] == '\0'))
                        return (*ret = strdup(storage_overrides[i].prefix)) ? 0 : -ENOMEM;
        for (size_t i = 0; !builtin && builtin_groups[i]; i++)
                builtin = streq(group, builtin_groups[i]);
        if (builtin)
                return asprintf(ret, "/registry/%.*s/", len, group_resource) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "/registry/%s/%.*s/", group, len, group_resource) < 0 ? -ENOMEM : 0;
}

void se_rotation_scope_done(se_rotation_scope *sc) {
        se_strv_free(sc->walk);
        se_strv_free(sc->strict);
        se_strv_free(sc->owned);
        *sc = (se_rotation_scope){};
}

int se_rotation_scope_init(const se_config *c, se_rotation_scope *ret, se_error *e) {
        se_rotation_scope sc = {};
        const se_resource_config *rc;
        size_t entry, n_walk = 0, n_strict = 0;
        bool wildcard = false;
        int r;

        r = se_config_secrets_entry(c, &entry, e);
        if (r < 0)
                return r;
        rc = &c->resources[entry];
        for (size_t j = 0; j < rc->n_resources && r >= 0; j++) {
                char *p = NULL;

                r = se_resource_storage_prefix(rc->resources[j] ?: "", &p);
                if (r < 0)
                        break;
                if (!p) {
                        wildcard = true;
                        continue;
                }
                r = se_strv_consume(&sc.strict, &n_strict, p);
                if (r >= 0 && (p = strdup(p)))
                        r = se_strv_consume(&sc.walk, &n_walk, p);
                else if (r >= 0)
                        r = -ENOMEM;
        }
        if (r >= 0 && wildcard)
                r = se_strv_consume(&sc.walk, &n_walk, strdup(SE_REGISTRY_PREFIX));
        if (r >= 0 && wildcard)
                r = se_entry_owned_value_prefixes(c, entry, &sc.owned);
        if (r >= 0 && !sc.walk)
                r = se_strv_consume(&sc.walk, &n_walk, strdup(SE_REGISTRY_PREFIX "secrets/"));
        if (r < 0) {
                se_rotation_scope_done(&sc);
                return se_error_set(e, r, "out of memory");
        }
        *ret = sc;
        return 0;
}
