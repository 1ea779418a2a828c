/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"
#include "ops-internal.h"
#include "se-event.h"
#include "se-etcd.h"
#include "se-util.h"

#define LEASE_TTL_SEC 60
/* The generation high-water mark (see mark_read). */
#define MARK_FILE     "cluster-generation"
#define MARK_MAX_SIZE 256
/* The token's record key, cached (se_cluster_cache_record_key). */
#define KEY_CACHE_FILE ".record-key"

_public_ bool se_ha_enabled(const se_ctx *ctx) {
        const char *ep = ctx->settings->datastore_endpoint;

        return ep && (startswith(ep, "http://") || startswith(ep, "https://"));
}

static char *key_cache_path(se_ctx *ctx) {
        char *p;

        return asprintf(&p, "%s/" KEY_CACHE_FILE, ctx->settings->state_dir) < 0 ? NULL : p;
}

_public_ int se_ha_cluster(se_ctx *ctx, se_cluster **ret, se_error *e) {
        _cleanup_erase_free_ char *token = NULL;
        _cleanup_free_ char *path = NULL;
        se_store *store;
        int r;

        *ret = NULL;
        if (!se_ha_enabled(ctx))
                return 0;
        if (!ctx->cluster) {
                r = se_ctx_store(ctx, &store, e);
                if (r < 0)
                        return r;
                r = se_settings_read_token(ctx->settings, &token, e);
                if (r < 0)
                        return r;
                r = se_cluster_open(store, token, &ctx->cluster, e);
                if (r < 0)
                        return r;
                path = key_cache_path(ctx);
                if (!path)
                        return se_error_set(e, -ENOMEM, "out of memory");
                r = se_cluster_cache_record_key(ctx->cluster, path, e);
                if (r < 0)
                        return r;
        }
        *ret = ctx->cluster;
        return 0;
}

/*
 * The generation high-water mark: the highest generation of the cluster's sealed config this
 * server has seen authenticated (opened with the token, or written by itself), kept in
 * <state-dir>/cluster-generation (root-only, written atomically) as
 *
 *   token=<se_cluster_token_id()>
 *   generation=<N>
 *
 * so anyone able to write /secrets-encrypt/config in etcd cannot put an older sealed config back
 * (it is authentic, the token opens it) without every server noticing. A mark written with another
 * token is no mark: a new token starts a new cluster history.
 */
static char *mark_path(se_ctx *ctx) {
        char *p;

        return asprintf(&p, "%s/" MARK_FILE, ctx->settings->state_dir) < 0 ? NULL : p;
}

static int mark_read(se_ctx *ctx, se_cluster *cl, uint64_t *ret, se_error *e) {
        _cleanup_free_ char *path = mark_path(ctx);
        _cleanup_free_ uint8_t *data = NULL;
        char id[65], file_id[65];
        unsigned long long gen;
        size_t size;
        int r, n = 0;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_read_file(path, MARK_MAX_SIZE, &data, &size);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return se_error_set(e, r, "cannot read %s: %s", path, strerror(-r));
        if (sscanf((const char *) data, "token=%64[0-9a-f]\ngeneration=%llu\n%n", file_id, &gen, &n) != 2 ||
            (size_t) n != size || strlen(file_id) != 64)
                return se_error_set(e, -EIO,
                                    "%s is damaged: remove it (the next start records the cluster's current "
                                    "generation again)",
                                    path);
        r = se_cluster_token_id(cl, id, e);
        if (r < 0)
                return r;
        *ret = streq(id, file_id) ? (uint64_t) gen : 0;
        return 0;
}

static int mark_write(se_ctx *ctx, se_cluster *cl, uint64_t generation, se_error *e) {
        _cleanup_free_ char *path = mark_path(ctx);
        char id[65], text[160];
        int r;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_cluster_token_id(cl, id, e);
        if (r < 0)
                return r;
        snprintf(text, sizeof(text), "token=%s\ngeneration=%" PRIu64 "\n", id, generation);
        r = se_write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                return se_error_set(e, r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

/* Records an authenticated generation: the mark only goes up. */
static int mark_raise(se_ctx *ctx, se_cluster *cl, uint64_t generation, se_error *e) {
        uint64_t mark;
        int r;

        r = mark_read(ctx, cl, &mark, e);
        if (r < 0 || generation <= mark)
                return r;
        return mark_write(ctx, cl, generation, e);
}

/* The lowest generation this server accepts from the cluster, and why (for the message): its own
 * mark; a server joining with no config and no mark takes the highest generation the other
 * servers' authenticated node records report (they only publish what the cluster had). */
static int rollback_floor(se_ctx *ctx, se_cluster *cl, uint64_t *ret, char **ret_why, se_error *e) {
        se_node_record *nodes = NULL;
        uint64_t mark, best = 0;
        const char *who = NULL;
        size_t n = 0;
        int r;

        r = mark_read(ctx, cl, &mark, e);
        if (r < 0)
                return r;
        if (mark > 0 || ctx->state.has_config) {
                _cleanup_free_ char *path = mark_path(ctx);

                *ret = mark;
                if (!path ||
                    asprintf(ret_why, "this server has already seen generation %" PRIu64 " (%s)", mark, path) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                return 0;
        }
        r = se_cluster_list_nodes(cl, &nodes, &n, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!nodes[i].invalid && nodes[i].generation > best) {
                        best = nodes[i].generation;
                        who = nodes[i].name;
                }
        *ret = best;
        r = asprintf(ret_why,
                     "the authenticated node record of %s reports generation %" PRIu64
                     " (this server has no configuration yet)",
                     who ? who : "(none)", best);
        se_node_records_free(nodes, n);
        if (r < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        return 0;
}

/* Refuses a cluster config older than what this server has seen: a replay or a restore. The
 * remedy is never a plain `sync --from-cluster`, which would spread it. */
static int refuse_rollback(se_ctx *ctx, se_cluster *cl, uint64_t generation, const char *hash, bool sync_command,
                           se_error *e) {
        _cleanup_free_ char *why = NULL, *msg = NULL;
        uint64_t floor = 0;
        int r;

        r = rollback_floor(ctx, cl, &floor, &why, e);
        if (r < 0 || generation >= floor)
                return r;
        if (asprintf(&msg,
                     "the cluster's encryption configuration went backwards: etcd holds generation %" PRIu64
                     " (hash %s), but %s. An older sealed configuration was put back in etcd (possible replay) or "
                     "etcd was restored from a backup (possible restore); %s. Do not install the cluster's "
                     "configuration: if a server's configuration is the current one, run `secrets-encrypt sync "
                     "--from-local` on it to publish it as a new generation; only if etcd was restored on purpose, "
                     "run `secrets-encrypt sync --from-cluster --allow-rollback` on every server",
                     generation, hash, why, sync_command ? "refusing to install it" : "nothing was installed") < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        (void) se_event(SE_EVENT_CONFIG_SYNC_REFUSED, SE_MESSAGE("%s", msg), SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", msg),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                        SE_FIELD("SECRETS_ENCRYPT_GENERATION=%" PRIu64, ctx->state.generation));
        return se_error_set(e, -ESTALE, "%s", msg);
}

/* A server with no config finds none in etcd either: a first start, unless servers of this token
 * already published records (then the sealed config was deleted): generating a key then would
 * replace the cluster's. */
static int refuse_vanished(se_ctx *ctx, se_cluster *cl, se_error *e) {
        _cleanup_free_ char *why = NULL, *msg = NULL;
        uint64_t floor = 0;
        int r;

        r = rollback_floor(ctx, cl, &floor, &why, e);
        if (r < 0 || floor == 0)
                return r;
        if (asprintf(&msg,
                     "the cluster's sealed encryption configuration is missing from etcd, but %s: it was deleted "
                     "(or etcd restored from an older backup). Not generating a new key, which would replace the "
                     "cluster's keys: run `secrets-encrypt sync --from-local` on a server with the current "
                     "configuration, then restart this one",
                     why) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        (void) se_event(SE_EVENT_CONFIG_SYNC_REFUSED, SE_MESSAGE("%s", msg), SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", msg),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                        SE_FIELD("SECRETS_ENCRYPT_GENERATION=%" PRIu64, ctx->state.generation));
        return se_error_set(e, -ESTALE, "%s", msg);
}

/* The cluster's config, or an empty one (generation 0, no bytes) when it has none yet. */
static int cluster_get(se_cluster *cl, se_cluster_config *ret, se_error *e) {
        int r = se_cluster_get_config(cl, ret, e);

        if (r == -ENOENT) {
                se_error_done(e);
                *ret = (se_cluster_config){};
                return 0;
        }
        return r;
}

_public_ int se_ha_push_config(se_ctx *ctx, const uint8_t *bytes, size_t size, uint64_t generation, se_stage stage,
                               se_error *e) {
        se_cluster_config cur = {};
        se_cluster *cl;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0 || !cl)
                return r;
        /* Opening (not just peeking) proves this node's token is the cluster's before it re-seals:
         * a wrong token must never replace the config with one the other servers cannot open. */
        r = cluster_get(cl, &cur, e);
        if (r < 0)
                return r;
        if (cur.bytes) {
                r = refuse_rollback(ctx, cl, cur.generation, cur.hash, false, e);
                if (r < 0) {
                        se_cluster_config_done(&cur);
                        return r;
                }
        }
        if (cur.bytes && cur.generation + 1 != generation) {
                r = se_error_set(e, -ESTALE,
                                 "the cluster's configuration is at generation %" PRIu64 " but this server's is at "
                                 "%" PRIu64 ": another server changed it; restart %s on %s so it installs the "
                                 "cluster's configuration, then re-run the command",
                                 cur.generation, generation - 1, ctx->settings->unit, ctx->settings->node_name);
                se_cluster_config_done(&cur);
                return r;
        }
        r = se_cluster_put_config(cl, bytes, size, generation, stage, cur.mod_revision, NULL, e);
        se_cluster_config_done(&cur);
        if (r < 0)
                return r;
        return mark_raise(ctx, cl, generation, e);
}

_public_ int se_ha_publish(se_ctx *ctx, se_error *e) {
        se_cluster *cl;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0 || !cl || !ctx->state.annotation)
                return r;
        return se_cluster_publish_node_running(cl, ctx->settings->node_name, ctx->state.annotation, ctx->state.running,
                                               ctx->state.generation, NULL, e);
}

_public_ int se_ha_nodes(se_ctx *ctx, se_node_record **ret, size_t *ret_n, se_error *e) {
        se_node_record *n;
        se_cluster *cl;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0)
                return r;
        if (cl)
                return se_cluster_list_nodes(cl, ret, ret_n, e);

        n = calloc(1, sizeof(*n));
        if (!n)
                return se_error_set(e, -ENOMEM, "out of memory");
        n->name = strdup(ctx->settings->node_name);
        n->annotation = strdup_null(ctx->state.annotation);
        n->running = strdup_null(ctx->state.running);
        /* never published: k3s's annotation is the state file's content */
        if (!ctx->state.annotation && ctx->state.has_stage &&
            asprintf(&n->annotation, "%s-%s", se_stage_to_string(ctx->state.stage), ctx->state.stage_hash) < 0)
                n->annotation = NULL;
        n->version = strdup(SE_VERSION);
        n->generation = ctx->state.generation;
        n->time = ctx->state.annotation_time;
        if (!n->name || !n->version || ((ctx->state.annotation || ctx->state.has_stage) && !n->annotation)) {
                se_node_records_free(n, 1);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        *ret = n;
        *ret_n = 1;
        return 0;
}

_public_ int se_ha_require_in_sync(se_ctx *ctx, se_error *e) {
        _cleanup_free_ char *msg = NULL;
        se_cluster_config cur = {};
        se_cluster_sync sync;
        se_cluster *cl;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0 || !cl)
                return r;
        r = se_cluster_peek_config(cl, &cur, e);
        if (r == -ENOENT) {
                se_error_done(e);
                return 0;
        }
        if (r < 0)
                return r;
        r = refuse_rollback(ctx, cl, cur.generation, cur.hash, false, e);
        if (r < 0)
                return r;
        r = se_cluster_classify(ctx->state.generation, ctx->state.has_config ? ctx->state.hash : NULL, cur.generation,
                                cur.hash, &sync, &msg);
        se_cluster_config_done(&cur);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        switch (sync) {
        case SE_CLUSTER_SYNC_SAME:
        case SE_CLUSTER_SYNC_CLUSTER_EMPTY:
                return 0;
        case SE_CLUSTER_SYNC_CLUSTER_NEWER:
                return se_error_set(e, -ESTALE, "%s; restart %s on %s first so its hook installs it", msg,
                                    ctx->settings->unit, ctx->settings->node_name);
        default:
                return se_error_set(e, -ESTALE, "%s", msg);
        }
}

static int install(se_ctx *ctx, const se_cluster_config *cfg, se_error *e) {
        int r;

        r = se_state_write_config_bytes(&ctx->state, cfg->bytes, cfg->size, e);
        if (r < 0)
                return se_error_prefix(e, r, "the cluster's configuration (generation %" PRIu64 ") is not usable",
                                       cfg->generation);
        ctx->state.generation = cfg->generation;
        /* another server finished the re-encryption this one had pending */
        if (cfg->stage == SE_STAGE_START || cfg->stage == SE_STAGE_REENCRYPT_FINISHED)
                ctx->state.pending_reencrypt = ctx->state.pending_skip = ctx->state.pending_rotate_keys = false;
        r = se_state_write_stage(&ctx->state, cfg->stage, e);
        if (r < 0)
                return r;
        (void) se_event(SE_EVENT_CONFIG_INSTALLED,
                        SE_MESSAGE("Installed the cluster's encryption configuration (generation %" PRIu64
                                   ", stage %s) on %s.",
                                   cfg->generation, se_stage_to_string(cfg->stage), ctx->settings->node_name),
                        SE_FIELD("SECRETS_ENCRYPT_GENERATION=%" PRIu64, cfg->generation),
                        SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", se_stage_to_string(cfg->stage)),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name));
        return se_state_save_own(&ctx->state, e);
}

_public_ int se_ha_sync(se_ctx *ctx, bool *ret_installed, se_error *e) {
        _cleanup_free_ char *msg = NULL;
        se_cluster_config cur = {};
        se_cluster_sync sync;
        se_cluster *cl;
        int r;

        *ret_installed = false;
        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0 || !cl)
                return r;
        r = cluster_get(cl, &cur, e);
        if (r < 0)
                return r;
        if (cur.bytes) {
                /* authentic (the token opened it) but maybe old: never below what was seen */
                r = refuse_rollback(ctx, cl, cur.generation, cur.hash, false, e);
                if (r >= 0)
                        r = mark_raise(ctx, cl, cur.generation, e);
                if (r < 0) {
                        se_cluster_config_done(&cur);
                        return r;
                }
        }

        r = se_cluster_classify(ctx->state.generation, ctx->state.has_config ? ctx->state.hash : NULL, cur.generation,
                                cur.bytes ? cur.hash : NULL, &sync, &msg);
        if (r < 0) {
                se_cluster_config_done(&cur);
                return se_error_set(e, r, "out of memory");
        }
        switch (sync) {
        case SE_CLUSTER_SYNC_SAME:
                break;
        case SE_CLUSTER_SYNC_CLUSTER_EMPTY:
                /* The first server to start seeds the cluster (generated below if absent). */
                if (!ctx->state.has_config) {
                        r = refuse_vanished(ctx, cl, e);
                        if (r < 0)
                                break;
                }
                if (ctx->state.has_config) {
                        if (ctx->state.generation == 0)
                                ctx->state.generation = 1;
                        r = se_cluster_put_config(
                                cl, ctx->state.config_bytes, ctx->state.config_size, ctx->state.generation,
                                ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START, 0, NULL, e);
                        if (r >= 0)
                                r = mark_raise(ctx, cl, ctx->state.generation, e);
                        if (r >= 0)
                                r = se_state_save_own(&ctx->state, e);
                }
                break;
        case SE_CLUSTER_SYNC_CLUSTER_NEWER:
                r = install(ctx, &cur, e);
                if (r >= 0)
                        *ret_installed = true;
                break;
        default:
                (void) se_event(SE_EVENT_CONFIG_SYNC_REFUSED, SE_MESSAGE("%s", msg),
                                SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", msg),
                                SE_FIELD("SECRETS_ENCRYPT_NODE=%s", ctx->settings->node_name),
                                SE_FIELD("SECRETS_ENCRYPT_GENERATION=%" PRIu64, ctx->state.generation));
                r = se_error_set(e, -ESTALE, "%s", msg);
        }
        se_cluster_config_done(&cur);
        return r;
}

_public_ int se_ha_sync_force(se_ctx *ctx, bool from_cluster, bool allow_rollback, char **ret_message, se_error *e) {
        se_cluster_config cur = {};
        se_cluster *cl;
        char *m = NULL;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0)
                return r;
        if (!cl)
                return se_error_set(e, -ESTALE,
                                    "sync needs an etcd datastore: with SQLite this server is the whole cluster");
        r = from_cluster ? se_cluster_get_config(cl, &cur, e) : cluster_get(cl, &cur, e);
        if (r < 0)
                return r;

        if (from_cluster) {
                uint64_t old_gen = ctx->state.generation;
                char old_hash[65];

                snprintf(old_hash, sizeof(old_hash), "%s", ctx->state.has_config ? ctx->state.hash : "(none)");
                /* --allow-rollback: the operator restored etcd on purpose; the mark follows */
                r = allow_rollback ? mark_write(ctx, cl, cur.generation, e)
                                   : refuse_rollback(ctx, cl, cur.generation, cur.hash, true, e);
                if (r >= 0 && !allow_rollback)
                        r = mark_raise(ctx, cl, cur.generation, e);
                if (r >= 0)
                        r = install(ctx, &cur, e);
                if (r >= 0)
                        r = asprintf(&m,
                                     "installed the cluster's configuration on %s: generation %" PRIu64
                                     " sha256:%s (stage %s) replaced generation %" PRIu64 " sha256:%s",
                                     ctx->settings->node_name, cur.generation, cur.hash, se_stage_to_string(cur.stage),
                                     old_gen, old_hash) < 0
                                    ? -ENOMEM
                                    : 0;
        } else {
                uint64_t gen;

                if (!ctx->state.has_config) {
                        se_cluster_config_done(&cur);
                        return se_error_set(e, -ENOENT, "this server has no configuration to publish");
                }
                gen = MAX(ctx->state.generation, cur.generation) + 1;
                r = se_cluster_put_config(cl, ctx->state.config_bytes, ctx->state.config_size, gen,
                                          ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START, cur.mod_revision,
                                          NULL, e);
                if (r >= 0)
                        r = mark_raise(ctx, cl, gen, e);
                if (r >= 0) {
                        ctx->state.generation = gen;
                        r = se_state_save_own(&ctx->state, e);
                }
                if (r >= 0)
                        r = asprintf(&m,
                                     "published %s's configuration to the cluster as generation %" PRIu64
                                     " sha256:%s (replacing generation %" PRIu64 " sha256:%s); restart every "
                                     "other server so it installs it",
                                     ctx->settings->node_name, gen, ctx->state.hash, cur.generation,
                                     cur.bytes ? cur.hash : "(none)") < 0
                                    ? -ENOMEM
                                    : 0;
        }
        se_cluster_config_done(&cur);
        if (r < 0)
                return r;
        r = se_ha_publish(ctx, e);
        if (r < 0) {
                free(m);
                return r;
        }
        *ret_message = m;
        return 0;
}

_public_ int se_ha_lease_acquire(se_ctx *ctx, se_cluster_lease **ret, se_error *e) {
        se_cluster *cl;
        int r;

        *ret = NULL;
        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0 || !cl)
                return r;
        r = se_cluster_lease_acquire(cl, ctx->settings->node_name, LEASE_TTL_SEC, ret, e);
        return r < 0 ? r : 0;
}

_public_ int se_ha_lease_keepalive(se_ctx *ctx, se_cluster_lease *l, se_error *e) {
        uint64_t now = se_now_usec(CLOCK_MONOTONIC);

        if (!l || now - ctx->lease_refreshed_usec < LEASE_TTL_SEC * 1000000ULL / 3)
                return 0;
        ctx->lease_refreshed_usec = now;
        return se_cluster_lease_keepalive(l, e);
}

_public_ void se_ha_lease_release(se_cluster_lease *l) {
        if (l)
                (void) se_cluster_lease_release(l, NULL);
}

/* The authenticated request; -ENOENT/-EBADMSG are "none" (a forged or old-format record is
 * reported, never obeyed). */
static int rolling_record(se_ctx *ctx, bool *ret_on, uint64_t *ret_generation, se_error *e) {
        se_error e2 = SE_ERROR_NULL;
        se_cluster *cl;
        int r;

        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0)
                return r;
        r = se_cluster_get_rolling(cl, ret_on, ret_generation, &e2);
        if (r == -ENOENT || r == -EBADMSG) {
                if (r == -EBADMSG)
                        se_log_warning("%s", se_error_message(&e2));
                se_error_done(&e2);
                *ret_on = false;
                *ret_generation = 0;
                return 0;
        }
        if (r < 0) {
                r = se_error_set(e, r, "%s", se_error_message(&e2));
                se_error_done(&e2);
        }
        return r;
}

_public_ int se_ha_get_rolling(se_ctx *ctx, bool *ret, se_error *e) {
        uint64_t gen = 0;
        bool on = false;
        int r;

        if (!se_ha_enabled(ctx)) {
                *ret = ctx->state.rolling;
                return 0;
        }
        r = rolling_record(ctx, &on, &gen, e);
        if (r < 0)
                return r;
        /* A request made at generation G starts its rotation at G (stage start or
         * reencrypt_finished) and is cleared when it finishes: at rest with a later generation it
         * is an old, authentic record put back (a replay). */
        if (on && ctx->state.generation > gen &&
            (!ctx->state.has_stage || ctx->state.stage == SE_STAGE_START ||
             ctx->state.stage == SE_STAGE_REENCRYPT_FINISHED)) {
                se_log_warning("%s in etcd asks for a rolling rotation made at generation %" PRIu64
                               ", which has finished (this server is at generation %" PRIu64
                               "): ignored (an old record put back?)",
                               SE_CLUSTER_ROLLING_KEY, gen, ctx->state.generation);
                on = false;
        }
        *ret = on;
        return 0;
}

_public_ int se_ha_end_rolling(se_ctx *ctx, se_error *e) {
        uint64_t gen = 0;
        bool on = false;
        int r;

        if (!se_ha_enabled(ctx))
                return ctx->state.rolling ? se_ha_set_rolling(ctx, false, e) : 0;
        r = rolling_record(ctx, &on, &gen, e);
        if (r < 0 || !on)
                return r;
        return se_ha_set_rolling(ctx, false, e);
}

_public_ int se_ha_set_rolling(se_ctx *ctx, bool on, se_error *e) {
        se_cluster *cl;
        int r;

        ctx->state.rolling = on;
        if (!se_ha_enabled(ctx))
                return se_state_save_own(&ctx->state, e);
        r = se_ha_cluster(ctx, &cl, e);
        if (r < 0)
                return r;
        /* another server setting it at the same time has the same intent */
        return se_cluster_set_rolling(cl, on, ctx->state.generation, e);
}

_public_ int se_op_sync(se_ctx *ctx, bool from_cluster, char **ret_message, se_error *e) {
        return se_ha_sync_force(ctx, from_cluster, false, ret_message, e);
}

_public_ int se_op_sync_rollback(se_ctx *ctx, char **ret_message, se_error *e) {
        return se_ha_sync_force(ctx, true, true, ret_message, e);
}

/* A server gone for good stops counting for the safety checks and the rolling rotation: the way a
 * stuck HA rotation resumes (SPEC 5.0), never --force. */
_public_ int se_op_forget_node(se_ctx *ctx, const char *name, se_error *e) {
        se_node_record *nodes = NULL;
        se_cluster *cl = NULL;
        size_t n = 0;
        bool known = false;
        int r;

        if (!se_ha_enabled(ctx))
                return se_error_set(e, -ESTALE,
                                    "forget-node needs the etcd datastore: with SQLite this node is the "
                                    "whole cluster");
        if (streq(name, ctx->settings->node_name))
                return se_error_set(e, -EINVAL, "%s is this server: run forget-node on another one", name);
        r = se_ha_nodes(ctx, &nodes, &n, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                known = known || streq(nodes[i].name, name);
        se_node_records_free(nodes, n);
        if (!known)
                return se_error_set(e, -ENOENT, "no server named %s in the cluster registry", name);
        r = se_ha_cluster(ctx, &cl, e);
        if (r >= 0)
                r = se_cluster_remove_node(cl, name, e);
        return r;
}

_public_ int se_ha_lagging(se_ctx *ctx, const se_node_record *nodes, size_t n, char **ret) {
        _cleanup_free_ char *want = NULL;
        se_buf b = {};
        int r = 0;

        if (asprintf(&want, "%s-%s", se_stage_to_string(ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START),
                     ctx->state.hash) < 0)
                return -ENOMEM;
        /* What each server's API server runs with, not what commands announced: only a start
         * proves a server can read the current keys. */
        for (size_t i = 0; i < n && r >= 0; i++) {
                const char *running = nodes[i].running ?: nodes[i].annotation;

                if (running && streq(running, want))
                        continue;
                if (b.len > 0)
                        r = se_buf_append_str(&b, ", ");
                if (r >= 0)
                        r = se_buf_append_str(&b, nodes[i].name);
        }
        if (r < 0 || b.len == 0) {
                se_buf_free(&b);
                *ret = NULL;
                return r;
        }
        *ret = (char *) b.data;
        return 0;
}
