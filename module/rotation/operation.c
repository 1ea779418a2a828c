/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coverage-internal.h"
#include "macro.h"
#include "ops-internal.h"
#include "safety-internal.h"
#include "se-key-archive.h"
#include "se-ops.h"
#include "se-envelope.h"
#include "se-event.h"
#include "se-rotation.h"
#include "se-util.h"

/* Before a command changes anything: a config to work on, in sync with the cluster's (keys added
 * elsewhere would be dropped otherwise), and the datastore really there (a mistyped
 * datastore-endpoint changes nothing). */
static int require_config(se_ctx *ctx, se_error *e) {
        se_store *store;
        int r;

        if (!ctx->state.has_config)
                return se_error_set(e, -ESTALE,
                                    "no encryption configuration in %s: secrets encryption is not set up on this "
                                    "node (run `secrets-encrypt enable` or start the server once with the hook)",
                                    ctx->state.dir);
        r = se_ha_require_in_sync(ctx, e);
        if (r >= 0)
                r = se_ctx_store(ctx, &store, e);
        return r;
}

/* The time a new key is named after (k3s's "<provider>key-<RFC 3339>"): never a name an archived
 * key had, so restore-key NAME always means one key. */
static time_t key_time(se_ctx *ctx, se_provider_type t) {
        time_t now = time(NULL);

        for (unsigned i = 0; i < 5; i++) {
                _cleanup_free_ char *name = NULL;

                if (se_key_name_new(t, false, now, &name) < 0 ||
                    se_key_archive_find(ctx->state.dir, name, NULL, NULL, NULL, NULL) < 0)
                        break;
                (void) sleep(1);
                now = time(NULL);
        }
        return now;
}

/* This node's published "<stage>-<hash>"; k3s copies the state file there at startup, so a
 * node that never published has the state file's content. */
static int local_annotation(se_ctx *ctx, se_stage *ret_stage, char ret_hash[static 65], se_error *e) {
        const char *node = ctx->settings->node_name;

        if (ctx->state.annotation) {
                if (se_annotation_parse(ctx->state.annotation, ret_stage, ret_hash) < 0)
                        return se_error_set(e, -ESTALE, "invalid annotation %s found on node %s",
                                            ctx->state.annotation, node);
                return 0;
        }
        if (!ctx->state.has_stage)
                return se_error_set(e, -ESTALE, "missing annotation on node %s", node);
        *ret_stage = ctx->state.stage;
        memcpy(ret_hash, ctx->state.stage_hash, 65);
        return 0;
}

/* Where a command runs, in words (k3s prints its internal range, e.g. start-reencrypt_finished);
 * --force is offered only where the command takes it. */
static const char *stage_refusal_hint(se_command cmd) {
        switch (cmd) {
        case SE_COMMAND_PREPARE:
                return "prepare runs after start or a finished rotation, or with --force";
        case SE_COMMAND_ROTATE:
                return "rotate runs after prepare, or with --force";
        case SE_COMMAND_REENCRYPT:
                return "reencrypt runs after rotate, or with --force";
        default:
                return "rotate-keys runs after start or a finished rotation";
        }
}

/* What to do instead, from the stage the node is at. */
static const char *stage_next_hint(se_ctx *ctx, se_stage stage) {
        switch (stage) {
        case SE_STAGE_PREPARE:
                return "next: restart the servers, then `secrets-encrypt rotate`";
        case SE_STAGE_ROTATE:
        case SE_STAGE_REENCRYPT_REQUEST:
                return "next: restart the servers, then `secrets-encrypt reencrypt`";
        case SE_STAGE_REENCRYPT_ACTIVE:
                return ctx->state.pending_reencrypt
                               ? "next: `secrets-encrypt reencrypt` resumes the interrupted re-encryption"
                               : "a re-encryption is running; wait for it (`secrets-encrypt status`)";
        default:
                return "next: `secrets-encrypt prepare` or `secrets-encrypt rotate-keys` starts a rotation";
        }
}

/* k3s's verifyEncryptionHashAnnotation(): every server's annotation equal, then this node's stage
 * and hash. */
static int verify_stage_and_hash(se_ctx *ctx, se_command cmd, se_error *e) {
        const char *node = ctx->settings->node_name, *required = NULL;
        _cleanup_free_ char *mismatch = NULL;
        se_node_record *nodes = NULL;
        size_t n_nodes = 0;
        se_stage stage;
        char hash[65];
        int r;

        r = se_ha_nodes(ctx, &nodes, &n_nodes, e);
        if (r < 0)
                return r;
        r = se_cluster_check_hashes(nodes, n_nodes, &mismatch);
        se_node_records_free(nodes, n_nodes);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        if (mismatch)
                return se_error_set(e, -ESTALE,
                                    "%s (restart the servers still on the previous stage so their hooks install "
                                    "the current configuration; see `secrets-encrypt status -o json` next_action)",
                                    mismatch);

        r = local_annotation(ctx, &stage, hash, e);
        if (r < 0)
                return r;
        if (se_stage_next(stage, cmd, NULL, &required) < 0)
                return se_error_set(e, -ESTALE, "incorrect stage: %s found on node %s (%s; %s)",
                                    se_stage_to_string(stage), node, stage_refusal_hint(cmd),
                                    stage_next_hint(ctx, stage));
        if (!streq(hash, ctx->state.hash))
                return se_error_set(e, -ESTALE,
                                    "invalid hash: %s found on node %s (the configuration changed since the node "
                                    "published its stage: restart the server so it loads the current file)",
                                    hash, node);
        return 0;
}

static const char *provider(se_ctx *ctx) {
        return ctx->settings->provider;
}

static const char *node(se_ctx *ctx) {
        return ctx->settings->node_name;
}

static void event_stage(se_ctx *ctx, se_stage prev, se_stage next) {
        const char *p = prev == SE_STAGE_INVALID ? "" : se_stage_to_string(prev);

        (void) se_event(SE_EVENT_STAGE_CHANGED,
                        SE_MESSAGE("Secrets encryption stage on %s changed from %s to %s.", node(ctx),
                                   isempty(p) ? "(none)" : p, se_stage_to_string(next)),
                        SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", se_stage_to_string(next)),
                        SE_FIELD("SECRETS_ENCRYPT_PREVIOUS_STAGE=%s", p),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_GENERATION=%llu", (unsigned long long) ctx->state.generation));
}

static void event_key(se_ctx *ctx, se_event_type type, const char *verb, const char *key_name) {
        (void) se_event(type, SE_MESSAGE("Secrets encryption key %s %s on %s.", key_name, verb, node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_KEY_NAME=%s", key_name),
                        SE_FIELD("SECRETS_ENCRYPT_PROVIDER=%s", provider(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)));
}

/* Journal progress events ride on the engine's throttled callback (every 50 values or second,
 * whichever is rarer), then the caller's own callback runs. */
static int progress_event(const se_reencrypt_progress *p, void *userdata) {
        se_ctx *ctx = userdata;
        int r;

        r = se_ha_lease_keepalive(ctx, ctx->lease, NULL);
        if (r < 0)
                return r; /* lost the lease: stop, the checkpoint lets the next holder resume */

        if (!p->final)
                (void) se_event(SE_EVENT_REENCRYPT_PROGRESS,
                                SE_MESSAGE("reencrypted %llu of %llu secrets (%.0f/s)", (unsigned long long) p->done,
                                           (unsigned long long) p->total, p->rate),
                                SE_FIELD("SECRETS_ENCRYPT_DONE=%llu", (unsigned long long) p->done),
                                SE_FIELD("SECRETS_ENCRYPT_TOTAL=%llu", (unsigned long long) p->total),
                                SE_FIELD("SECRETS_ENCRYPT_RATE=%.1f", p->rate),
                                SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)));
        return ctx->progress ? ctx->progress(p, ctx->progress_userdata) : 0;
}

int se_ops_save_own(se_ctx *ctx, se_error *e) {
        int r = se_state_save_own(&ctx->state, e);

        return r < 0 ? r : se_ha_publish(ctx, e);
}

/* Writes the new config and moves the persisted stage. Order: the cluster first (so a crash
 * leaves it newer and the next start installs it), then the config, then the stage (a crash
 * between those leaves a hash mismatch that is refused, never a lost key), then this node's record. */
int se_ops_commit(se_ctx *ctx, const se_config *c, se_stage stage, se_error *e) {
        se_stage prev = se_state_current_stage(&ctx->state);
        uint64_t generation = ctx->state.generation + 1;
        const uint8_t *bytes;
        char *json = NULL;
        size_t size = 0;
        int r = 0;

        if (c) {
                _cleanup_(se_strv_freep) char **removed = NULL;

                r = se_config_validate(c, false, e);
                if (r < 0)
                        return se_error_prefix(e, r, "refusing to write an invalid configuration");
                if (ctx->state.has_config && se_config_removed_keys(ctx->state.config, c, &removed) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                r = se_safety_check(ctx, removed ? SE_SAFETY_REMOVE_KEYS : SE_SAFETY_WRITE_CONFIG, c, e);
                if (r < 0)
                        return r;
                r = se_config_to_json(c, &json, &size);
                if (r < 0)
                        return se_error_set(e, r, "cannot serialize the encryption configuration");
        }
        bytes = json ? (const uint8_t *) json : ctx->state.config_bytes;
        size = json ? size : ctx->state.config_size;

        /* Write-ahead: what this commit will have done, so a crash after the config write is
         * finished by the next run instead of being applied again. */
        ctx->state.intent_stage = stage;
        ctx->state.intent_generation = generation;
        r = se_sha256_hex(bytes, size, ctx->state.intent_hash);
        if (r >= 0)
                r = se_state_save_own(&ctx->state, e);
        if (r >= 0)
                r = se_ha_push_config(ctx, bytes, size, generation, stage, e);
        if (r >= 0 && json)
                r = se_state_write_config_bytes(&ctx->state, bytes, size, e);
        if (json) {
                explicit_wipe(json, size);
                free(json);
        }
        if (r < 0)
                return r;
        ctx->state.generation = generation;
        r = se_state_write_stage(&ctx->state, stage, e);
        if (r < 0)
                return r;
        ctx->state.intent_stage = SE_STAGE_INVALID;
        r = se_ops_save_own(ctx, e);
        if (r >= 0 && prev != stage)
                event_stage(ctx, prev, stage);
        return r;
}

_public_ int se_op_prepare(se_ctx *ctx, bool force, se_error *e) {
        se_config *n = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        r = require_config(ctx, e);
        if (r >= 0 && !force)
                r = verify_stage_and_hash(ctx, SE_COMMAND_PREPARE, e);
        if (r >= 0)
                r = se_rotation_prepare(ctx->state.config, provider(ctx), key_time(ctx, SE_PROVIDER_AESCBC), &n, &name,
                                        e);
        if (r >= 0)
                r = se_ops_commit(ctx, n, SE_STAGE_PREPARE, e);
        if (r >= 0)
                event_key(ctx, SE_EVENT_KEY_ADDED, "added as a read key", name);
        se_config_free(n);
        return r;
}

/* "AES-CBC <name>" of the write key, NULL when none. */
static int write_key_label(const se_config *c, char **ret, se_error *e) {
        char **inactive = NULL;
        size_t n = 0;

        if (se_config_status_keys(c, ret, &inactive, &n) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                free(inactive[i]);
        free(inactive);
        return 0;
}

_public_ int se_op_rotate(se_ctx *ctx, bool force, se_error *e) {
        se_config *n = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        _cleanup_free_ char *before = NULL, *after = NULL;

        r = require_config(ctx, e);
        if (r >= 0 && !force)
                r = verify_stage_and_hash(ctx, SE_COMMAND_ROTATE, e);
        if (r >= 0)
                r = write_key_label(ctx->state.config, &before, e);
        if (r >= 0)
                r = se_rotation_rotate(ctx->state.config, provider(ctx), &n, &name, e);
        if (r >= 0)
                r = se_ops_commit(ctx, n, SE_STAGE_ROTATE, e);
        if (r >= 0)
                r = write_key_label(ctx->state.config, &after, e);
        /* with one key (rotate -f) the write key stays what it was: nothing was promoted */
        if (r >= 0 && name && !streq(before ?: "", after ?: ""))
                event_key(ctx, SE_EVENT_KEY_PROMOTED, "promoted to write key", name);
        se_config_free(n);
        return r;
}

static int reencrypt_failed(se_ctx *ctx, int r, se_error *e) {
        (void) se_event_full(SE_EVENT_REENCRYPT_FAILED, -1, r,
                             SE_MESSAGE("Re-encryption on %s failed: %s", node(ctx), se_error_message(e)),
                             SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", se_error_message(e)),
                             SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)),
                             SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash));
        return r;
}

/* The keys the prune removes go to the archive first, so `restore-key` can bring one back (not
 * with --purge: a compromised key is dropped). Old archive entries expire here too. */
static int archive_removed(se_ctx *ctx, const se_config *before, const se_config *after, se_error *e) {
        uint64_t retention = ctx->purge ? 0 : ctx->settings->removed_key_retention_usec;
        int64_t now = (int64_t) time(NULL);
        int r;

        for (size_t i = 0; i < before->n_resources; i++) {
                const se_resource_config *rc = &before->resources[i];

                for (size_t p = 0; p < rc->n_providers; p++) {
                        se_provider_type t = se_provider_get_type(&rc->providers[p], NULL);
                        const se_key_list *l = se_provider_keys(&rc->providers[p]);

                        for (size_t k = 0; l && k < l->n_keys; k++) {
                                if (i < after->n_resources &&
                                    se_entry_has_key(&after->resources[i], t, l->keys[k].name))
                                        continue;
                                r = se_key_archive_add(ctx->state.dir, t, &l->keys[k], ctx->state.hash, now, retention,
                                                       e);
                                if (r < 0)
                                        return se_error_prefix(e, r, "cannot archive key %s", l->keys[k].name);
                        }
                }
        }
        r = se_key_archive_expire(ctx->state.dir, now, ctx->settings->removed_key_retention_usec, NULL);
        (void) r; /* an old entry left behind is harmless */
        return 0;
}

/* The value prefixes of the keys the prune after the pass will remove, for the pass to watch
 * (see removal_proven() in safety.c); NULL when none, or on any error: the full scan runs then. */
static char **prune_watch(const se_config *c) {
        se_config *pruned = NULL;
        _cleanup_free_ char *names = NULL;
        char **watch = NULL;

        if (se_rotation_prune(c, &pruned, &names, NULL) >= 0 && pruned &&
            se_config_removed_keys(c, pruned, &watch) < 0)
                watch = NULL;
        se_config_free(pruned);
        return watch;
}

/* What the completed pass proves, handed to the removal check; NULL when it proves nothing. */
static se_removal_proof *pass_proof(se_ctx *ctx, se_store *store, se_reencrypt_result *res, char **walk,
                                    char ***watch) {
        se_removal_proof *p;
        size_t n = 0;

        if (res->watermark <= 0 || res->resumed || !*watch)
                return NULL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        *p = (se_removal_proof){
                .store = store,
                .watermark = res->watermark,
                .left = res->left,
                .watched = res->watched_left,
                .watch = TAKE_PTR(*watch),
                .written = TAKE_PTR(res->written),
                .n_written = res->n_written,
        };
        res->n_written = 0;
        memcpy(p->hash, ctx->state.hash, sizeof(p->hash));
        for (size_t i = 0; walk && walk[i]; i++)
                if (se_strv_push(&p->walked, &n, walk[i]) < 0)
                        return se_removal_proof_free(p);
        if (!p->walked || se_store_revision(store, &p->end, NULL) < 0)
                return se_removal_proof_free(p);
        return p;
}

/* Re-encrypt everything with the current write key, then (unless skip) prune per k3s's rules
 * behind the safety check, and reach reencrypt_finished. The pending flags are persisted first so
 * that a crash leaves a visible, resumable reencrypt_active. */
static int run_reencrypt_leased(se_ctx *ctx, bool skip, se_error *e) {
        se_store *store;
        se_config *pruned = NULL;
        _cleanup_free_ char *removed = NULL;
        _cleanup_strv_free_ char **watch = NULL;
        se_reencrypt_result res = {};
        se_rotation_scope sc = {};
        int64_t last_rotation;
        se_reencrypt_options o = {
                .state_dir = ctx->state.dir,
                .config_hash = ctx->state.hash,
                .rate_limit = ctx->settings->reencrypt_rate,
                .progress = progress_event,
                .userdata = ctx,
        };
        int r;

        r = se_ctx_store(ctx, &store, e);
        if (r >= 0)
                r = se_rotation_scope_init(ctx->state.config, &sc, e);
        if (r < 0)
                return reencrypt_failed(ctx, r, e);
        o.prefixes = (const char *const *) sc.walk;
        o.strict_prefixes = (const char *const *) sc.strict;
        o.owned_value_prefixes = (const char *const *) sc.owned;
        if (!skip) {
                watch = prune_watch(ctx->state.config);
                o.watch_value_prefixes = (const char *const *) watch;
        }
        (void) se_event(SE_EVENT_REENCRYPT_STARTED, SE_MESSAGE("Re-encryption of secrets started on %s.", node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash));
        if (ctx->started)
                ctx->started(ctx->progress_userdata);
        r = se_reencrypt(store, ctx->state.config, &o, &res, e);
        ctx->removal_proof = se_removal_proof_free(ctx->removal_proof);
        if (r >= 0 && !skip)
                ctx->removal_proof = pass_proof(ctx, store, &res, sc.walk, &watch);
        se_rotation_scope_done(&sc);
        if (r < 0) {
                se_reencrypt_result_done(&res);
                return reencrypt_failed(ctx, r, e);
        }
        (void) se_event(SE_EVENT_REENCRYPT_FINISHED,
                        SE_MESSAGE("reencrypted %llu secrets (%llu rewritten, %llu already current, %llu newer "
                                   "writes by the server left as they were) on %s",
                                   (unsigned long long) res.total, (unsigned long long) res.rewritten,
                                   (unsigned long long) res.skipped, (unsigned long long) res.conflicts, node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_DONE=%llu", (unsigned long long) res.done),
                        SE_FIELD("SECRETS_ENCRYPT_TOTAL=%llu", (unsigned long long) res.total),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)));
        se_reencrypt_result_done(&res);

        if (skip) {
                /* k3s: the annotation goes back to the persisted stage, keys untouched */
                se_stage prev = se_state_current_stage(&ctx->state);
                se_stage back = ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START;

                ctx->state.pending_reencrypt = ctx->state.pending_skip = ctx->state.pending_rotate_keys = false;
                r = se_state_set_annotation(&ctx->state, back);
                if (r < 0)
                        return se_error_set(e, r, "out of memory");
                r = se_ops_save_own(ctx, e);
                if (r >= 0 && prev != back)
                        event_stage(ctx, prev, back);
                return r;
        }

        r = se_rotation_prune(ctx->state.config, &pruned, &removed, e);
        if (r < 0) {
                ctx->removal_proof = se_removal_proof_free(ctx->removal_proof);
                return reencrypt_failed(ctx, r, e);
        }
        /* The pending flags stay set through the commit: a crash inside it resumes, and a resume
         * after a completed prune finds nothing left to remove. The commit's safety check first makes
         * sure no value anywhere in the registry is under a removed key (with what the pass saw,
         * or by reading every value). */
        last_rotation = ctx->state.last_rotation;
        ctx->state.last_rotation = (int64_t) time(NULL);
        if (pruned)
                r = archive_removed(ctx, ctx->state.config, pruned, e);
        if (r >= 0)
                r = se_ops_commit(ctx, pruned, SE_STAGE_REENCRYPT_FINISHED, e);
        /* for this commit only: anything written later was not seen by the pass */
        ctx->removal_proof = se_removal_proof_free(ctx->removal_proof);
        se_config_free(pruned);
        if (r < 0) {
                ctx->state.last_rotation = last_rotation; /* nothing was finished */
                if (removed)
                        se_error_prefix(e, r, "not removing key %s", removed);
                return reencrypt_failed(ctx, r, e);
        }
        ctx->state.pending_reencrypt = ctx->state.pending_skip = ctx->state.pending_rotate_keys = false;
        r = se_ops_save_own(ctx, e);
        if (r >= 0 && removed)
                event_key(ctx, SE_EVENT_KEY_REMOVED, "removed", removed);
        if (r >= 0) /* a finished rotation ends a rolling one, however it got here */
                r = se_ha_end_rolling(ctx, e);
        return r;
}

static int mark_active(se_ctx *ctx, bool skip, bool rotate_keys, se_error *e) {
        se_stage prev = se_state_current_stage(&ctx->state);
        int r;

        ctx->state.pending_reencrypt = true;
        ctx->state.pending_skip = skip;
        ctx->state.pending_rotate_keys = rotate_keys;
        r = se_state_set_annotation(&ctx->state, SE_STAGE_REENCRYPT_ACTIVE);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        r = se_ops_save_own(ctx, e);
        if (r >= 0 && prev != SE_STAGE_REENCRYPT_ACTIVE)
                event_stage(ctx, prev, SE_STAGE_REENCRYPT_ACTIVE);
        return r;
}

/* A helper command that failed puts the annotation and pending flags back: it leaves the stage as
 * it found it (the checkpoint stays, so a retry resumes). The hook keeps them: the work is
 * pending and a later start finishes it. */
static void unmark_active(se_ctx *ctx, const char *annotation, bool pending, bool skip, bool rotate_keys) {
        se_stage prev = se_state_current_stage(&ctx->state), now;
        char *a = strdup_null(annotation);

        if (annotation && !a)
                return;
        free(ctx->state.annotation);
        ctx->state.annotation = a;
        ctx->state.pending_reencrypt = pending;
        ctx->state.pending_skip = skip;
        ctx->state.pending_rotate_keys = rotate_keys;
        now = se_state_current_stage(&ctx->state);
        if (se_ops_save_own(ctx, NULL) >= 0 && prev != now)
                event_stage(ctx, prev, now);
}

/* Marks reencrypt_active and re-encrypts. The datastore is opened first: a command that cannot
 * reach it changes nothing. Values are rewritten only when every running API server has loaded
 * the write key (safety.c); otherwise the work is left pending for the hook, which does it while
 * the server is down, and ctx->deferred says which restart completes it. In HA only the holder of
 * the cluster's lease re-encrypts, and the lease is taken first, so a server that loses it changes
 * nothing; a dead holder's lease expires. */
static int run_reencrypt(se_ctx *ctx, bool skip, bool rotate_keys, se_error *e) {
        _cleanup_free_ char *annotation = strdup_null(ctx->state.annotation);
        bool pending = ctx->state.pending_reencrypt, pskip = ctx->state.pending_skip,
             prk = ctx->state.pending_rotate_keys;
        se_error why = SE_ERROR_NULL;
        se_store *store;
        int r;

        if (ctx->state.annotation && !annotation)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_ctx_store(ctx, &store, e);
        if (r < 0)
                return reencrypt_failed(ctx, r, e);
        if (ctx->defer_reencrypt) /* the hook finishes it at the next start */
                return mark_active(ctx, skip, rotate_keys, e);
        r = se_safety_check(ctx, SE_SAFETY_REWRITE_VALUES, NULL, &why);
        if (r == -ESTALE && !ctx->server_stopped) {
                r = mark_active(ctx, skip, rotate_keys, e);
                if (r >= 0 && asprintf(&ctx->deferred, "%s; the re-encryption then runs in its hook while it is down",
                                       se_error_message(&why)) < 0)
                        ctx->deferred = NULL;
                se_error_done(&why);
                return r;
        }
        if (r < 0) {
                se_error_done(e);
                *e = why;
                return reencrypt_failed(ctx, r, e);
        }
        r = se_ha_lease_acquire(ctx, &ctx->lease, e);
        if (r < 0)
                return reencrypt_failed(ctx, r, e);
        r = mark_active(ctx, skip, rotate_keys, e);
        if (r >= 0)
                r = run_reencrypt_leased(ctx, skip, e);
        se_ha_lease_release(TAKE_PTR(ctx->lease));
        /* interrupted on request (Ctrl-C): reencrypt_active stays, so `reencrypt` or the next start
         * resumes from the checkpoint */
        if (r < 0 && !ctx->server_stopped && r != -ECANCELED)
                unmark_active(ctx, annotation, pending, pskip, prk);
        return r;
}

/* This node is at reencrypt_active with the current config and the work still pending: an
 * earlier run stopped before it finished. */
static bool reencrypt_interrupted(se_ctx *ctx) {
        se_stage stage;
        char hash[65];

        return ctx->state.pending_reencrypt && local_annotation(ctx, &stage, hash, NULL) >= 0 &&
               stage == SE_STAGE_REENCRYPT_ACTIVE && streq(hash, ctx->state.hash);
}

_public_ int se_op_reencrypt(se_ctx *ctx, bool force, bool skip, se_error *e) {
        int r;

        r = require_config(ctx, e);
        if (r >= 0 && !force && reencrypt_interrupted(ctx))
                /* an interrupted re-encryption (a lost terminal, kill, a crash) resumes from its
                 * checkpoint, with what was asked when it started */
                return run_reencrypt(ctx, skip || ctx->state.pending_skip, ctx->state.pending_rotate_keys, e);
        if (r >= 0 && !force)
                r = verify_stage_and_hash(ctx, SE_COMMAND_REENCRYPT, e);
        if (r >= 0 && streq(provider(ctx), "secretbox"))
                r = se_error_set(e, -ESTALE, "reencrypt does not support secretbox key type, use rotate-keys instead");
        if (r >= 0)
                r = run_reencrypt(ctx, skip, false, e);
        return r;
}

_public_ int se_op_start_rolling(se_ctx *ctx, se_error *e) {
        int r;

        if (streq(ctx->settings->provider, "secretbox"))
                return se_error_set(e, -ESTALE,
                                    "a rolling rotation uses prepare/rotate, which k3s limits to aescbc keys; use "
                                    "rotate-keys for secretbox");
        /* The request first: killed right after the prepare is published, the restarts must still
         * know to carry the rotation on. */
        r = se_ha_set_rolling(ctx, true, e);
        if (r < 0)
                return r;
        r = se_op_prepare(ctx, false, e);
        if (r < 0)
                (void) se_ha_set_rolling(ctx, false, NULL); /* refused: nothing was started */
        return r;
}

_public_ int se_op_rotate_keys(se_ctx *ctx, se_error *e) {
        se_config *n = NULL;
        _cleanup_free_ char *name = NULL;
        se_store *store;
        int r;

        /* In HA a new write key may only be used once every server can read it: that is the
         * rolling rotation (prepare, and each round of restarts advances one stage). */
        if (se_ha_enabled(ctx))
                return se_op_start_rolling(ctx, e);

        r = require_config(ctx, e);
        if (r >= 0)
                r = verify_stage_and_hash(ctx, SE_COMMAND_ROTATE_KEYS, e);
        if (r >= 0) /* before anything changes: a datastore that is not there stops here */
                r = se_ctx_store(ctx, &store, e);
        if (r >= 0)
                r = se_rotation_add_and_rotate(ctx->state.config, provider(ctx),
                                               key_time(ctx, se_provider_type_from_string(provider(ctx))), &n, &name,
                                               e);
        /* The new config reaches disk before any value is rewritten (k3s #13763), and the pending
         * re-encryption is recorded with the commit's intent: a crash from here on leaves a
         * readable state that the hook resumes and prunes. */
        if (r >= 0) {
                ctx->state.pending_reencrypt = ctx->state.pending_rotate_keys = true;
                ctx->state.pending_skip = false;
                r = se_ops_commit(ctx, n, ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START, e);
                if (r < 0)
                        ctx->state.pending_reencrypt = ctx->state.pending_rotate_keys = false;
        }
        se_config_free(n);
        if (r >= 0) {
                event_key(ctx, SE_EVENT_KEY_ADDED, "added", name);
                event_key(ctx, SE_EVENT_KEY_PROMOTED, "promoted to write key", name);
                r = run_reencrypt(ctx, false, true, e);
        }
        return r;
}

/* k3s's enable/disable: the write provider switches, then values follow it (a re-encryption with
 * --skip: no key is removed). The datastore is checked first, and a pending re-encryption must
 * finish before the provider changes under it. */
_public_ int se_op_set_enabled(se_ctx *ctx, bool enable, bool *ret_changed, se_error *e) {
        se_config *n = NULL;
        se_store *store;
        se_stage stage;
        int r;

        r = se_ctx_store(ctx, &store, e);
        if (r < 0)
                return r;
        if (ctx->state.pending_reencrypt)
                return se_error_set(e, -ESTALE,
                                    "a re-encryption is pending on %s: restart %s so its hook finishes it (or run "
                                    "`secrets-encrypt reencrypt`), then %s",
                                    node(ctx), ctx->settings->unit, enable ? "enable" : "disable");
        if (!ctx->state.has_config) {
                if (!enable) {
                        *ret_changed = false;
                        return 0;
                }
                /* k3s #13370: an identity-only config, so encryption can be turned on later */
                r = se_config_generate_identity(&n, e);
        } else {
                se_provider_type t = se_provider_type_from_string(provider(ctx));

                r = se_rotation_set_enabled(ctx->state.config, provider(ctx), enable, key_time(ctx, t), &n, e);
                if (r >= 0 && !n) {
                        *ret_changed = false;
                        return 0;
                }
        }
        /* Unlike k3s, keep stage and hash consistent: the persisted stage is rewritten with the new
         * hash, so the next command is not refused with `invalid hash`. */
        stage = ctx->state.has_stage ? ctx->state.stage : SE_STAGE_START;
        if (r >= 0)
                r = se_ops_commit(ctx, n, stage, e);
        se_config_free(n);
        if (r < 0)
                return r;
        (void) se_event(enable ? SE_EVENT_ENCRYPTION_ENABLED : SE_EVENT_ENCRYPTION_DISABLED,
                        SE_MESSAGE("Secrets encryption %s on %s.", enable ? "enabled" : "disabled", node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_PROVIDER=%s", provider(ctx)));
        *ret_changed = true;
        if (se_config_layout(ctx->state.config) == SE_LAYOUT_IDENTITY_ONLY)
                return 0;
        return run_reencrypt(ctx, true, false, e);
}

_public_ int se_op_ensure_config(se_ctx *ctx, bool *ret_generated, se_error *e) {
        se_config *n = NULL;
        int r;

        /* k3s regenerates a missing or empty file; with state saying keys existed, that would make
         * every stored secret unreadable. */
        if (!ctx->state.has_config && (ctx->state.has_stage || ctx->state.generation > 0))
                return se_error_set(e, -EBADMSG,
                                    "%s/encryption-config.json is %s but the state files say keys existed (stage "
                                    "%s, generation %" PRIu64 "): generating a new key would leave every stored "
                                    "secret unreadable. Restore the file from a backup (with etcd: `secrets-encrypt "
                                    "sync --from-cluster`), or bring back archived keys with `secrets-encrypt "
                                    "restore-key`; to start over deliberately, run `secrets-encrypt reset-state "
                                    "--discard-keys`",
                                    ctx->state.dir, ctx->state.config_empty ? "empty" : "missing",
                                    ctx->state.has_stage ? se_stage_to_string(ctx->state.stage) : "(unknown)",
                                    ctx->state.generation);

        if (ctx->state.has_config) {
                /* k3s: an existing config is kept; a missing state file becomes start-<hash> */
                if (!ctx->state.has_stage) {
                        r = se_ops_commit(ctx, NULL, SE_STAGE_START, e);
                        if (r < 0)
                                return r;
                }
                *ret_generated = false;
                return 0;
        }
        r = se_config_generate(provider(ctx), &n, e);
        if (r >= 0)
                r = se_ops_commit(ctx, n, SE_STAGE_START, e);
        se_config_free(n);
        if (r < 0)
                return r;
        (void) se_event(SE_EVENT_CONFIG_GENERATED,
                        SE_MESSAGE("Generated a new encryption configuration with one %s key on %s.", provider(ctx),
                                   node(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_PROVIDER=%s", provider(ctx)),
                        SE_FIELD("SECRETS_ENCRYPT_HASH=%s", ctx->state.hash),
                        SE_FIELD("SECRETS_ENCRYPT_NODE=%s", node(ctx)), SE_FIELD("SECRETS_ENCRYPT_STAGE=start"));
        *ret_generated = true;
        return 0;
}

_public_ int se_op_resume(se_ctx *ctx, bool *ret_ran, se_error *e) {
        int r;

        if (!ctx->state.pending_reencrypt &&
            !(ctx->state.has_stage && ctx->state.stage == SE_STAGE_REENCRYPT_REQUEST)) {
                *ret_ran = false;
                return 0;
        }
        r = require_config(ctx, e);
        if (r >= 0)
                r = run_reencrypt(ctx, ctx->state.pending_skip, ctx->state.pending_rotate_keys, e);
        if (r >= 0)
                *ret_ran = true;
        return r;
}

_public_ int se_op_status(se_ctx *ctx, se_status *ret, se_error *e) {
        se_status s = {.enable = -1, .hash_match = true};
        _cleanup_free_ char *restart = NULL;
        se_node_record *nodes = NULL;
        size_t n_nodes = 0;
        se_stage stage;
        char hash[65];
        int r;

        if (!ctx->state.has_config) {
                *ret = s;
                return 0;
        }
        s.has_config = true;
        switch (se_config_layout(ctx->state.config)) {
        case SE_LAYOUT_ENABLED:
                s.enable = 1;
                break;
        case SE_LAYOUT_DISABLED:
        case SE_LAYOUT_IDENTITY_ONLY:
                s.enable = 0;
                break;
        default:
                s.enable = -1;
        }

        r = local_annotation(ctx, &stage, hash, e);
        if (r < 0)
                return r;
        r = se_ha_nodes(ctx, &nodes, &n_nodes, e);
        if (r < 0)
                return r;

        s.stage = strdup(se_stage_to_string(stage));
        s.config_hash = strdup(ctx->state.hash);
        s.nodes = calloc(MAX(n_nodes, 1u), sizeof(se_node_status));
        if (!s.stage || !s.config_hash || !s.nodes)
                goto oom;
        for (size_t i = 0; i < n_nodes; i++) {
                se_node_status *ns = &s.nodes[s.n_nodes++];

                ns->name = strdup(nodes[i].name);
                ns->annotation = strdup_null(nodes[i].annotation);
                ns->generation = (int64_t) nodes[i].generation;
                ns->time = nodes[i].time;
                ns->version = strdup_null(nodes[i].version);
                if (!ns->name)
                        goto oom;
        }
        if (se_cluster_check_hashes(nodes, n_nodes, &s.hash_error) < 0)
                goto oom;
        s.hash_match = !s.hash_error;
        r = se_ha_lagging(ctx, nodes, n_nodes, &restart);
        if (r < 0)
                goto oom;
        if (se_config_status_keys(ctx->state.config, &s.active_key, &s.inactive_keys, &s.n_inactive_keys) < 0)
                goto oom;

        s.reencrypt_pending = ctx->state.pending_reencrypt;
        if (s.reencrypt_pending) {
                _cleanup_free_ char *count = NULL;
                pid_t holder = 0;

                /* readers never take the lock: its holder is the command or hook doing the work */
                if (ctx->lock_fd < 0)
                        (void) se_lock_dir_holder(ctx->state.dir, &holder);
                s.reencrypt_running = holder > 0 && stage == SE_STAGE_REENCRYPT_ACTIVE;
                bool has_checkpoint =
                        se_reencrypt_checkpoint_progress(ctx->state.dir, &s.progress_done, &s.progress_total) >= 0;
                if (s.progress_total > 0)
                        r = asprintf(&count, "%" PRIu64 "/%" PRIu64 " secrets (%" PRIu64 "%%)", s.progress_done,
                                     s.progress_total, s.progress_done * 100 / s.progress_total);
                else
                        r = asprintf(&count, "%" PRIu64 " secrets", s.progress_done);
                if (r < 0)
                        goto oom;
                if (s.reencrypt_running) {
                        r = asprintf(&s.next_action,
                                     "wait for the re-encryption to finish (pid %d): "
                                     "`journalctl -f SYSLOG_IDENTIFIER=secrets-encrypt`",
                                     (int) holder);
                        if (r >= 0)
                                r = asprintf(&s.note, "Re-encryption running (pid %d): %s done", (int) holder, count);
                } else {
                        r = asprintf(&s.next_action,
                                     "run `secrets-encrypt reencrypt` (or restart %s on %s) to finish the interrupted "
                                     "re-encryption",
                                     ctx->settings->unit, ctx->settings->node_name);
                        if (r >= 0)
                                r = has_checkpoint
                                            ? asprintf(&s.note,
                                                       "Re-encryption interrupted at %s: run `secrets-encrypt "
                                                       "reencrypt` to resume it (or restart %s)",
                                                       count, ctx->settings->unit)
                                            : asprintf(&s.note,
                                                       "Re-encryption pending: restart %s (its hook runs it), or run "
                                                       "`secrets-encrypt reencrypt`",
                                                       ctx->settings->unit);
                }
        } else if (restart)
                r = asprintf(&s.next_action, "restart %s on %s", ctx->settings->unit, restart);
        else
                switch (stage) {
                case SE_STAGE_START:
                case SE_STAGE_REENCRYPT_FINISHED:
                        r = asprintf(&s.next_action, "none (run rotate-keys or prepare to rotate)");
                        break;
                case SE_STAGE_PREPARE:
                        r = asprintf(&s.next_action, "run `secrets-encrypt rotate`");
                        break;
                case SE_STAGE_ROTATE:
                case SE_STAGE_REENCRYPT_REQUEST:
                        r = asprintf(&s.next_action, "run `secrets-encrypt reencrypt`");
                        break;
                default:
                        r = asprintf(&s.next_action, "wait for the re-encryption to finish");
                }
        if (r < 0)
                goto oom;
        s.safe_to_proceed = !s.reencrypt_pending && !restart && s.hash_match;
        se_node_records_free(nodes, n_nodes);
        *ret = s;
        return 0;
oom:
        se_node_records_free(nodes, n_nodes);
        se_status_done(&s);
        return se_error_set(e, -ENOMEM, "out of memory");
}

_public_ int se_op_reset_state(se_ctx *ctx, se_error *e) {
        static const char *const files[] = {
                "encryption-state.json",
                "secrets-encrypt.json",
                "running-config.json",
                SE_REENCRYPT_CHECKPOINT_FILE,
        };

        if (ctx->state.has_config)
                return se_error_set(e, -ESTALE,
                                    "%s/encryption-config.json exists: reset-state only clears the state a lost "
                                    "configuration left behind",
                                    ctx->state.dir);
        if (se_ha_enabled(ctx))
                return se_error_set(e, -ESTALE,
                                    "with etcd, run `secrets-encrypt sync --from-cluster` to get the cluster's "
                                    "configuration back instead");
        /* The archive of removed keys stays: restore-key can still bring them back. */
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = NULL;

                if (asprintf(&p, "%s/%s", ctx->state.dir, files[i]) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (unlink(p) < 0 && errno != ENOENT)
                        return se_error_set(e, -errno, "cannot remove %s: %m", p);
        }
        se_state_done(&ctx->state);
        return se_state_load(ctx->settings->state_dir, &ctx->state, e);
}
