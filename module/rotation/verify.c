/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "reencrypt-internal.h"
#include "se-envelope.h"

typedef struct verify_run {
        se_transformer *t;
        se_buf plain;
        size_t max_paths;
        const se_config *c;
        bool kms_must_be_configured; /* a KMS value needs its provider in c */
        bool only_encrypted;         /* skip plaintext values (resources no entry may cover) */
        const char *skip_prefix;     /* keys already verified by an earlier pass */
        char *first_path;            /* first unreadable value */
        char *first_what;            /* what it is encrypted with */
        se_verify_report rep;
} verify_run;

static int count_add(se_verify_report *rep, se_provider_type p, const char *name) {
        se_verify_count *n;

        for (size_t i = 0; i < rep->n_counts; i++) {
                se_verify_count *c = &rep->counts[i];

                if (c->provider == p &&
                    ((!c->key_name && !name) || (c->key_name && name && streq(c->key_name, name)))) {
                        c->count++;
                        return 0;
                }
        }
        n = reallocarray(rep->counts, rep->n_counts + 1, sizeof(se_verify_count));
        if (!n)
                return -ENOMEM;
        rep->counts = n;
        n[rep->n_counts] = (se_verify_count){.provider = p, .count = 1};
        if (name) {
                n[rep->n_counts].key_name = strdup(name);
                if (!n[rep->n_counts].key_name)
                        return -ENOMEM;
        }
        rep->n_counts++;
        return 0;
}

static bool config_has_kms(const se_config *c, const char *name) {
        for (size_t i = 0; i < c->n_resources; i++)
                for (size_t j = 0; j < c->resources[i].n_providers; j++) {
                        const se_kms *k = c->resources[i].providers[j].kms;

                        if (k && k->name && streq(k->name, name))
                                return true;
                }
        return false;
}

static int unreadable(verify_run *v, const char *key, const uint8_t *value, size_t size) {
        int r;

        v->rep.unreadable++;
        r = se_path_list_add(&v->rep.unreadable_paths, &v->rep.n_unreadable_paths, v->max_paths, key);
        if (r < 0)
                return r;
        if (!v->first_path) {
                v->first_path = strdup(key);
                v->first_what = se_value_describe(value, size);
                if (!v->first_path || !v->first_what)
                        return -ENOMEM;
        }
        return 0;
}

static int verify_one(verify_run *v, const se_kv *kv, se_error *e) {
        _cleanup_free_ char *kms = NULL;
        se_read_info info = {};
        se_error err = SE_ERROR_NULL;
        int r;

        if (v->skip_prefix && startswith(kv->key, v->skip_prefix))
                return 0;
        if (v->only_encrypted && !(kv->value_size >= 8 && memcmp(kv->value, "k8s:enc:", 8) == 0))
                return 0;

        v->rep.total++;
        if (!se_transformer_is_current(v->t, kv->value, kv->value_size))
                v->rep.not_current++;

        if (se_value_is_kms(kv->value, kv->value_size, &kms)) {
                if (!kms)
                        return -ENOMEM;
                v->rep.kms++;
                if (v->kms_must_be_configured && !config_has_kms(v->c, kms))
                        return unreadable(v, kv->key, kv->value, kv->value_size);
                return count_add(&v->rep, SE_PROVIDER_KMS, kms);
        }

        r = se_transformer_read(v->t, kv->key, kv->value, kv->value_size, &v->plain, &info, &err);
        se_buf_clear(&v->plain);
        if (r == -ENOKEY || r == -EBADMSG) {
                se_error_done(&err);
                return unreadable(v, kv->key, kv->value, kv->value_size);
        }
        if (r < 0) {
                if (e) {
                        se_error_done(e);
                        *e = err;
                } else
                        se_error_done(&err);
                return se_error_prefix(e, r, "%s", kv->key);
        }
        if (info.provider == SE_PROVIDER_IDENTITY) {
                v->rep.identity++;
                return count_add(&v->rep, SE_PROVIDER_IDENTITY, NULL);
        }
        return count_add(&v->rep, info.provider, info.key_name);
}

static int verify_pass(verify_run *v, se_store *s, const se_config *c, const se_verify_options *o,
                       const char *const *prefixes, const char *resource, se_error *e) {
        size_t page = o && o->page_size ? MAX(o->page_size, 2u) : SE_REENCRYPT_DEFAULT_PAGE;
        se_kv_list l = {};
        int r;

        v->c = c;
        v->max_paths = o && o->max_unreadable_paths ? o->max_unreadable_paths : SE_REENCRYPT_DEFAULT_MAX_PATHS;
        v->t = se_transformer_free(v->t);
        r = se_transformer_new(c, resource, &v->t, e);
        if (r < 0)
                return r;

        for (size_t p = 0; prefixes[p]; p++) {
                _cleanup_free_ char *after = NULL;

                for (;;) {
                        size_t first = 0;

                        r = se_store_range(s, prefixes[p], after, page + (after ? 1 : 0), &l, e);
                        if (r < 0)
                                goto out;
                        if (after && l.n_items > 0 && streq(l.items[0].key, after))
                                first = 1;
                        for (size_t i = first; i < l.n_items; i++) {
                                r = verify_one(v, &l.items[i], e);
                                if (r == -ENOMEM)
                                        r = se_error_set(e, r, "out of memory");
                                if (r < 0)
                                        goto out;
                        }
                        if (!l.more || l.n_items <= first)
                                break;
                        free(after);
                        after = strdup(l.items[l.n_items - 1].key);
                        if (!after) {
                                r = se_error_set(e, -ENOMEM, "out of memory");
                                goto out;
                        }
                }
        }
        r = 0;
out:
        se_kv_list_done(&l);
        return r;
}

static void verify_run_done(verify_run *v) {
        v->t = se_transformer_free(v->t);
        se_buf_free(&v->plain);
        free(v->first_path);
        free(v->first_what);
        se_verify_report_done(&v->rep);
}

/* One entry, "-", with every provider of every entry: what any entry could read. */
static int union_config(const se_config *c, se_config **ret) {
        se_config *u = NULL;
        se_resource_config *rc;
        size_t n = 0;

        if (se_config_copy(c, &u) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_resources; i++)
                n += u->resources[i].n_providers;
        rc = calloc(1, sizeof(*rc));
        if (rc) {
                rc->resources = calloc(1, sizeof(char *));
                rc->providers = calloc(MAX(n, (size_t) 1), sizeof(se_provider));
        }
        if (!rc || !rc->resources || !rc->providers || !(rc->resources[0] = strdup("-"))) {
                if (rc) {
                        free(rc->resources);
                        free(rc->providers);
                }
                free(rc);
                se_config_free(u);
                return -ENOMEM;
        }
        rc->n_resources = 1;
        for (size_t i = 0; i < u->n_resources; i++) {
                se_resource_config *src = &u->resources[i];

                memcpy(rc->providers + rc->n_providers, src->providers, src->n_providers * sizeof(se_provider));
                rc->n_providers += src->n_providers;
                src->n_providers = 0; /* moved */
        }
        for (size_t i = 0; i < u->n_resources; i++) {
                free(u->resources[i].providers);
                for (size_t j = 0; j < u->resources[i].n_resources; j++)
                        free(u->resources[i].resources[j]);
                free(u->resources[i].resources);
        }
        free(u->resources);
        u->resources = rc;
        u->n_resources = 1;
        *ret = u;
        return 0;
}

_public_ int se_verify(se_store *s, const se_config *c, const se_verify_options *o, se_verify_report *ret,
                       se_error *e) {
        verify_run v = {.kms_must_be_configured = true};
        int r;

        if (!s || !c)
                return se_error_set(e, -EINVAL, "no datastore or config");
        r = verify_pass(&v, s, c, o, se_reencrypt_prefixes(o ? o->prefixes : NULL),
                        o && o->resource ? o->resource : SE_REENCRYPT_DEFAULT_RESOURCE, e);
        if (r >= 0 && o && o->all_resources) {
                /* Every other resource: an encrypted value there must be readable by a configured key
                 * (which entry reads it depends on its resource, which the key path does not tell
                 * exactly); plaintext outside secrets is what an unencrypted resource looks like. */
                static const char *const registry[] = {"/registry/", NULL};
                se_config *u = NULL;

                r = union_config(c, &u);
                if (r < 0)
                        r = se_error_set(e, r, "out of memory");
                else {
                        uint64_t secrets = v.rep.total, not_current = v.rep.not_current;

                        v.only_encrypted = true;
                        v.skip_prefix = SE_REENCRYPT_DEFAULT_PREFIX;
                        r = verify_pass(&v, s, u, o, registry, "-", e);
                        v.rep.other_values = v.rep.total - secrets;
                        v.rep.total = secrets;
                        v.rep.not_current = not_current; /* "current" is per entry: secrets' only */
                        se_config_free(u);
                }
        }
        if (r >= 0 && ret) {
                *ret = v.rep;
                v.rep = (se_verify_report){};
        }
        verify_run_done(&v);
        return r < 0 ? r : 0;
}

_public_ int se_prune_check(se_store *s, const se_config *config_after_prune, const se_verify_options *o,
                            se_verify_report *ret, se_error *e) {
        verify_run v = {.kms_must_be_configured = true};
        int r;

        if (!s || !config_after_prune)
                return se_error_set(e, -EINVAL, "no datastore or config");
        r = verify_pass(&v, s, config_after_prune, o, se_reencrypt_prefixes(o ? o->prefixes : NULL),
                        o && o->resource ? o->resource : SE_REENCRYPT_DEFAULT_RESOURCE, e);
        if (r < 0)
                r = se_error_prefix(e, r, "cannot verify the stored values before removing a key");
        else if (v.rep.unreadable > 0)
                r = se_error_set(e, -ENOKEY,
                                 "refusing to remove the key: %" PRIu64 " of %" PRIu64
                                 " value(s) would not be readable with the keys that remain; first: %s (%s). "
                                 "Re-encrypt first",
                                 v.rep.unreadable, v.rep.total, v.first_path, v.first_what);
        else if (ret) {
                *ret = v.rep;
                v.rep = (se_verify_report){};
        }
        verify_run_done(&v);
        return r < 0 ? r : 0;
}

_public_ void se_verify_report_done(se_verify_report *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_counts; i++)
                free(r->counts[i].key_name);
        free(r->counts);
        se_path_list_free(r->unreadable_paths, r->n_unreadable_paths);
        *r = (se_verify_report){};
}

_public_ int se_scan_value_prefixes(se_store *s, const char *key_prefix, const char *const *value_prefixes,
                                    uint64_t *ret_count, char **ret_first_key, se_error *e) {
        _cleanup_free_ char *after = NULL, *first = NULL;
        se_kv_list l = {};
        uint64_t n = 0;
        int r = 0;

        for (;;) {
                size_t skip = 0;

                r = se_store_range(s, key_prefix, after, SE_REENCRYPT_DEFAULT_PAGE + (after ? 1 : 0), &l, e);
                if (r < 0)
                        break;
                if (after && l.n_items > 0 && streq(l.items[0].key, after))
                        skip = 1;
                for (size_t i = skip; i < l.n_items; i++)
                        for (size_t p = 0; value_prefixes[p]; p++) {
                                size_t len = strlen(value_prefixes[p]);

                                if (l.items[i].value_size < len ||
                                    memcmp(l.items[i].value, value_prefixes[p], len) != 0)
                                        continue;
                                if (n++ == 0 && !(first = strdup(l.items[i].key)))
                                        r = -ENOMEM;
                                break;
                        }
                if (r < 0 || !l.more || l.n_items <= skip)
                        break;
                free(after);
                after = strdup(l.items[l.n_items - 1].key);
                if (!after) {
                        r = -ENOMEM;
                        break;
                }
        }
        se_kv_list_done(&l);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        if (r < 0)
                return r;
        *ret_count = n;
        if (ret_first_key)
                *ret_first_key = TAKE_PTR(first);
        return 0;
}
