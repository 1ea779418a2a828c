/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "macro.h"
#include "se-cluster.h"
#include "se-facts.h"
#include "se-rotation.h"

_public_ void se_facts_done(se_facts *f) {
        if (!f)
                return;
        free(f->node);
        free(f->stage);
        free(f->provider);
        free(f->active_key);
        for (size_t i = 0; i < f->n_keys; i++)
                free(f->keys[i]);
        free(f->keys);
        free(f->config_hash);
        for (size_t i = 0; i < f->n_nodes; i++) {
                free(f->nodes[i].name);
                free(f->nodes[i].stage);
                free(f->nodes[i].hash);
        }
        free(f->nodes);
        *f = (se_facts){};
}

static bool all_digits(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (p[i] < '0' || p[i] > '9')
                        return false;
        return true;
}

static int num(const char *p, size_t n) {
        int v = 0;

        for (size_t i = 0; i < n; i++)
                v = v * 10 + (p[i] - '0');
        return v;
}

_public_ int se_key_name_time(const char *name, int64_t *ret) {
        const char *t, *z;
        struct tm tm = {};
        int64_t off = 0;
        time_t v;

        if (!name || !ret)
                return -EINVAL;
        t = strchr(name, '-');
        if (!t)
                return -ENOENT;
        t++;
        /* 2006-01-02T15:04:05 then Z or ±07:00 */
        if (strlen(t) < 20 || !all_digits(t, 4) || t[4] != '-' || !all_digits(t + 5, 2) || t[7] != '-' ||
            !all_digits(t + 8, 2) || t[10] != 'T' || !all_digits(t + 11, 2) || t[13] != ':' ||
            !all_digits(t + 14, 2) || t[16] != ':' || !all_digits(t + 17, 2))
                return -EINVAL;
        z = t + 19;
        if (streq(z, "Z"))
                off = 0;
        else if ((z[0] == '+' || z[0] == '-') && strlen(z) == 6 && all_digits(z + 1, 2) && z[3] == ':' &&
                 all_digits(z + 4, 2))
                off = (z[0] == '-' ? -1 : 1) * (int64_t) (num(z + 1, 2) * 3600 + num(z + 4, 2) * 60);
        else
                return -EINVAL;
        tm.tm_year = num(t, 4) - 1900;
        tm.tm_mon = num(t + 5, 2) - 1;
        tm.tm_mday = num(t + 8, 2);
        tm.tm_hour = num(t + 11, 2);
        tm.tm_min = num(t + 14, 2);
        tm.tm_sec = num(t + 17, 2);
        if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                return -EINVAL;
        v = timegm(&tm);
        if (v == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) v - off;
        return 0;
}

_public_ int64_t se_facts_active_key_age(const se_facts *f) {
        if (!f || f->active_key_time < 0)
                return -1;
        return f->now > f->active_key_time ? f->now - f->active_key_time : 0;
}

/* The resources entry for secrets, as k3s picks it. */
static const se_resource_config *secrets_entry(const se_config *c) {
        for (size_t i = 0; i < c->n_resources; i++)
                for (size_t j = 0; j < c->resources[i].n_resources; j++)
                        if (streq(c->resources[i].resources[j], "secrets") ||
                            streq(c->resources[i].resources[j], "secrets."))
                                return &c->resources[i];
        return c->n_resources > 0 ? &c->resources[0] : NULL;
}

static int add_key(se_facts *f, const char *name) {
        char **n = realloc(f->keys, (f->n_keys + 1) * sizeof(char *));

        if (!n)
                return -ENOMEM;
        f->keys = n;
        n[f->n_keys] = strdup(name ? name : "");
        if (!n[f->n_keys])
                return -ENOMEM;
        f->n_keys++;
        return 0;
}

static int facts_from_config(se_facts *f, const se_state *st) {
        const se_resource_config *rc = st->config ? secrets_entry(st->config) : NULL;
        int r;

        if (!rc)
                return 0;
        for (size_t i = 0; i < rc->n_providers; i++) {
                se_provider_type t = se_provider_get_type(&rc->providers[i], NULL);
                const se_key_list *l = se_provider_keys(&rc->providers[i]);

                if ((t != SE_PROVIDER_AESCBC && t != SE_PROVIDER_SECRETBOX) || !l)
                        continue;
                if (!f->provider && l->n_keys > 0) {
                        f->provider = strdup(se_provider_type_to_string(t));
                        f->active_key = strdup(l->keys[0].name ? l->keys[0].name : "");
                        if (!f->provider || !f->active_key)
                                return -ENOMEM;
                }
                for (size_t j = 0; j < l->n_keys; j++) {
                        r = add_key(f, l->keys[j].name);
                        if (r < 0)
                                return r;
                }
        }
        if (f->active_key && se_key_name_time(f->active_key, &f->active_key_time) < 0) {
                _cleanup_free_ char *path = NULL;
                struct stat sb;

                /* k3s's first key has no timestamp: the file is at least that old */
                f->active_key_time = -1;
                if (asprintf(&path, "%s/encryption-config.json", st->dir) < 0)
                        return -ENOMEM;
                if (stat(path, &sb) >= 0)
                        f->active_key_time = (int64_t) sb.st_mtim.tv_sec;
        }
        return 0;
}

static int facts_from_status(se_facts *f, const se_status *s) {
        f->hashes_match = s->hash_match;
        f->reencrypt_pending = s->reencrypt_pending;
        f->reencrypt_done = s->progress_done;
        f->reencrypt_total = s->progress_total;
        if (s->stage && !(f->stage = strdup(s->stage)))
                return -ENOMEM;
        if (s->n_nodes > 0) {
                f->nodes = calloc(s->n_nodes, sizeof(se_facts_node));
                if (!f->nodes)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_nodes; i++) {
                se_facts_node *n = &f->nodes[f->n_nodes++];
                se_stage stage;
                char hash[65];

                n->name = strdup(s->nodes[i].name ? s->nodes[i].name : "");
                if (!n->name)
                        return -ENOMEM;
                if (s->nodes[i].annotation && se_annotation_parse(s->nodes[i].annotation, &stage, hash) >= 0) {
                        n->stage = strdup(se_stage_to_string(stage));
                        n->hash = strdup(hash);
                        if (!n->stage || !n->hash)
                                return -ENOMEM;
                }
        }
        return 0;
}

_public_ int se_facts_from_state(const se_state *st, const se_status *status, const char *node, int64_t now,
                                 se_facts *ret) {
        se_facts f = {.enabled = -1, .active_key_time = -1, .hashes_match = true, .now = now};
        int r;

        f.node = strdup(node ? node : "");
        if (!f.node)
                goto oom;
        f.configured = st->has_config;
        f.last_rotation = st->last_rotation;
        if (st->has_config) {
                f.config_hash = strdup(st->hash);
                if (!f.config_hash)
                        goto oom;
                switch (se_config_layout(st->config)) {
                case SE_LAYOUT_ENABLED:
                        f.enabled = 1;
                        break;
                case SE_LAYOUT_DISABLED:
                case SE_LAYOUT_IDENTITY_ONLY:
                        f.enabled = 0;
                        break;
                default:
                        f.enabled = -1;
                }
                r = facts_from_config(&f, st);
                if (r < 0)
                        goto oom;
        }
        if (status) {
                r = facts_from_status(&f, status);
                if (r < 0)
                        goto oom;
        }
        if (st->pending_reencrypt)
                f.reencrypt_pending = true;
        *ret = f;
        return 0;
oom:
        se_facts_done(&f);
        return -ENOMEM;
}

_public_ int se_facts_collect(se_ctx *ctx, int64_t now, se_facts *ret, se_error *e) {
        se_status s = {};
        int r;

        r = se_op_status(ctx, &s, e);
        if (r < 0)
                return r;
        r = se_facts_from_state(&ctx->state, &s, ctx->settings->node_name, now, ret);
        se_status_done(&s);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        return 0;
}

_public_ int se_facts_read(const se_settings *s, int64_t now, se_facts *ret, se_error *e) {
        se_ctx ctx = {.settings = s, .lock_fd = -1};
        struct stat sb;
        int r;

        if (stat(s->state_dir, &sb) < 0) {
                se_state empty = {};

                if (errno != ENOENT)
                        return se_error_set(e, -errno, "cannot access state-dir %s: %m", s->state_dir);
                r = se_facts_from_state(&empty, NULL, s->node_name, now, ret);
                return r < 0 ? se_error_set(e, r, "out of memory") : 0;
        }
        r = se_state_load_snapshot(s->state_dir, &ctx.state, e);
        if (r < 0)
                return r;
        r = se_facts_collect(&ctx, now, ret, e);
        se_cluster_close(TAKE_PTR(ctx.cluster));
        se_store_close(TAKE_PTR(ctx.store));
        se_state_done(&ctx.state);
        return r;
}

static json_object *str_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *time_or_null(int64_t t) {
        char buf[32];
        struct tm tm;
        time_t v = (time_t) t;

        if (t <= 0 || !gmtime_r(&v, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return NULL;
        return json_object_new_string(buf);
}

/* json-c's add functions take ownership even of NULL (JSON null). */
static void add(json_object *o, const char *k, json_object *v) {
        (void) json_object_object_add(o, k, v);
}

_public_ int se_facts_to_json(const se_facts *f, bool pretty, char **ret) {
        json_object *o = json_object_new_object(), *keys = json_object_new_array(), *nodes = json_object_new_array();
        int64_t age = se_facts_active_key_age(f);
        const char *text;
        char *s = NULL;

        if (!o || !keys || !nodes) {
                json_object_put(o);
                json_object_put(keys);
                json_object_put(nodes);
                return -ENOMEM;
        }
        for (size_t i = 0; i < f->n_keys; i++)
                (void) json_object_array_add(keys, json_object_new_string(f->keys[i]));
        for (size_t i = 0; i < f->n_nodes; i++) {
                json_object *n = json_object_new_object();

                if (!n)
                        continue;
                add(n, "name", json_object_new_string(f->nodes[i].name));
                add(n, "stage", str_or_null(f->nodes[i].stage));
                add(n, "hash", str_or_null(f->nodes[i].hash));
                (void) json_object_array_add(nodes, n);
        }

        add(o, "version", json_object_new_string(SE_VERSION));
        add(o, "node", json_object_new_string(f->node ? f->node : ""));
        add(o, "configured", json_object_new_boolean(f->configured));
        add(o, "stage", str_or_null(f->stage));
        add(o, "enabled", f->enabled < 0 ? NULL : json_object_new_boolean(f->enabled));
        add(o, "provider", str_or_null(f->provider));
        add(o, "active_key", str_or_null(f->active_key));
        add(o, "active_key_created", time_or_null(f->active_key_time));
        add(o, "active_key_age_seconds", age < 0 ? NULL : json_object_new_int64(age));
        add(o, "active_key_age_days", age < 0 ? NULL : json_object_new_int64(age / 86400));
        add(o, "key_count", json_object_new_int64((int64_t) f->n_keys));
        add(o, "keys", keys);
        add(o, "config_hash", str_or_null(f->config_hash));
        add(o, "hashes_match", json_object_new_boolean(f->hashes_match));
        add(o, "nodes", nodes);
        add(o, "last_rotation", time_or_null(f->last_rotation));
        add(o, "last_rotation_timestamp", json_object_new_int64(f->last_rotation));
        add(o, "reencrypt_pending", json_object_new_boolean(f->reencrypt_pending));
        add(o, "reencrypt_done", json_object_new_int64((int64_t) f->reencrypt_done));
        add(o, "reencrypt_total", json_object_new_int64((int64_t) f->reencrypt_total));

        text = json_object_to_json_string_ext(
                o, (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN) |
                           JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text && asprintf(&s, "%s\n", text) < 0)
                s = NULL;
        json_object_put(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
