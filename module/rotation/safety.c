/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coverage-internal.h"
#include "macro.h"
#include "ops-internal.h"
#include "se-util.h"
#include "safety-internal.h"
#include "store-internal.h"

/*
 * The safety invariant (SPEC §5.0), in one place. At every moment every value stored under
 * /registry/ that an entry covers must be readable with the config on disk and with the config
 * each running API server loaded at its start: the local one is what the hook recorded when it last
 * let the server start (running-config.json, and its hash in secrets-encrypt.json), the others are
 * their node records. Every config write goes through se_ops_commit(), which calls this; every
 * rewrite of stored values calls it before the first write.
 */

#define RUNNING_CONFIG_FILE "running-config.json"

static bool annotation_has_hash(const char *annotation, const char *hash) {
        char h[65];
        se_stage stage;

        return annotation && se_annotation_parse(annotation, &stage, h) >= 0 && streq(h, hash);
}

int se_safety_record_running(se_ctx *ctx, se_error *e) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "%s/" RUNNING_CONFIG_FILE, ctx->state.dir) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        /* A start with the config the server already ran (most starts) writes nothing: the hook
         * with nothing to do stays cheap. */
        if (annotation_has_hash(ctx->state.running, ctx->state.hash) && access(path, F_OK) == 0)
                return 0;
        r = se_write_file_atomic(path, ctx->state.config_bytes, ctx->state.config_size, 0600);
        if (r < 0)
                return se_error_set(e, r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

/* The config the local API server loaded, NULL when no start was recorded. */
static int running_config(se_ctx *ctx, se_config **ret, se_error *e) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *bytes = NULL;
        size_t size = 0;
        int r;

        *ret = NULL;
        if (asprintf(&path, "%s/" RUNNING_CONFIG_FILE, ctx->state.dir) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_read_file(path, SE_CONFIG_MAX_SIZE, &bytes, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return se_error_set(e, r, "cannot read %s: %s", path, strerror(-r));
        r = se_config_parse(path, bytes, size, ret, e);
        explicit_wipe(bytes, size);
        return r;
}

/* The servers (the local one included unless it is stopped) whose API server has not started with
 * the config on disk; NULL when every one has. */
static int not_running_current(se_ctx *ctx, char **ret, se_error *e) {
        se_node_record *nodes = NULL;
        size_t n = 0;
        se_buf b = {};
        int r = 0;

        if (!ctx->server_stopped && !annotation_has_hash(ctx->state.running, ctx->state.hash))
                r = se_buf_printf(&b, "%s on %s", ctx->settings->unit, ctx->settings->node_name);
        if (r >= 0 && se_ha_enabled(ctx)) {
                r = se_ha_nodes(ctx, &nodes, &n, e);
                if (r < 0) {
                        se_buf_free(&b);
                        return r;
                }
                for (size_t i = 0; i < n && r >= 0; i++) {
                        if (streq(nodes[i].name, ctx->settings->node_name) ||
                            annotation_has_hash(nodes[i].running ?: nodes[i].annotation, ctx->state.hash))
                                continue;
                        r = se_buf_printf(&b, "%s%s on %s", b.len > 0 ? ", " : "", ctx->settings->unit, nodes[i].name);
                }
                se_node_records_free(nodes, n);
        }
        if (r < 0) {
                se_buf_free(&b);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        *ret = b.len > 0 ? (char *) b.data : NULL;
        if (!*ret)
                se_buf_free(&b);
        return 0;
}

static bool write_key(const se_resource_config *rc, se_provider_type *ret_type, const char **ret_name) {
        const se_key_list *l;

        if (rc->n_providers == 0)
                return false;
        *ret_type = se_provider_get_type(&rc->providers[0], NULL);
        l = se_provider_keys(&rc->providers[0]);
        *ret_name = *ret_type == SE_PROVIDER_KMS ? rc->providers[0].kms->name
                    : l && l->n_keys > 0         ? l->keys[0].name
                                                 : "";
        return true;
}

static bool same_resources(const se_resource_config *a, const se_resource_config *b) {
        if (a->n_resources != b->n_resources)
                return false;
        for (size_t j = 0; j < a->n_resources; j++)
                if (!streq(a->resources[j] ?: "", b->resources[j] ?: ""))
                        return false;
        return true;
}

/* Every entry survives with its resources; and what `reader` writes with stays readable. */
static int check_shape(const se_config *cur, const se_config *next, const se_config *writer, const char *who,
                       se_error *e) {
        if (cur && cur->n_resources != next->n_resources)
                return se_error_set(e, -ESTALE,
                                    "refusing to write a configuration with %zu resources entries in place of %zu: "
                                    "every entry must be carried through unchanged",
                                    next->n_resources, cur->n_resources);
        for (size_t i = 0; cur && i < cur->n_resources; i++)
                if (!same_resources(&cur->resources[i], &next->resources[i]))
                        return se_error_set(e, -ESTALE,
                                            "refusing to change the resources of entry %zu: only providers are "
                                            "rotated",
                                            i);
        for (size_t i = 0; writer && i < writer->n_resources; i++) {
                size_t j = i;
                se_provider_type t;
                const char *name;

                if (!write_key(&writer->resources[i], &t, &name))
                        continue;
                /* the entry at the same place if it is for the same resources, else the first one
                 * that is (the config on disk may have been edited since the server started) */
                for (size_t k = 0; k < next->n_resources; k++)
                        if (!(i < next->n_resources && same_resources(&writer->resources[i], &next->resources[i])) &&
                            same_resources(&writer->resources[i], &next->resources[k])) {
                                j = k;
                                break;
                        }
                if (j < next->n_resources && se_entry_has_key(&next->resources[j], t, name))
                        continue;
                return se_error_set(e, -ESTALE,
                                    "refusing to write a configuration without %s key %s: %s writes with it and "
                                    "values it wrote would become unreadable",
                                    se_provider_type_to_string(t), name, who);
        }
        return 0;
}

/* In HA, a new write key must already be readable by every other server: they run the current
 * config, and it has the key. That is what prepare, then a restart of every server, guarantees. */
static int check_write_key_known(se_ctx *ctx, const se_config *cur, const se_config *next, se_error *e) {
        _cleanup_free_ char *lagging = NULL;
        int r;

        if (!se_ha_enabled(ctx) || !cur)
                return 0;
        for (size_t i = 0; i < next->n_resources && i < cur->n_resources; i++) {
                se_provider_type tn, tc;
                const char *nn, *nc;

                if (!write_key(&next->resources[i], &tn, &nn) ||
                    (write_key(&cur->resources[i], &tc, &nc) && tc == tn && streq(nc, nn)))
                        continue;
                if (!se_entry_has_key(&cur->resources[i], tn, nn))
                        return se_error_set(e, -ESTALE,
                                            "refusing to make %s key %s the write key: the other servers do not have "
                                            "it yet (add it as a read key first: `secrets-encrypt prepare`, or "
                                            "`rotate-keys --rolling`, then restart every server)",
                                            se_provider_type_to_string(tn), nn);
                if (!lagging) {
                        bool stopped = ctx->server_stopped;

                        ctx->server_stopped = true; /* only the others matter: this one restarts */
                        r = not_running_current(ctx, &lagging, e);
                        ctx->server_stopped = stopped;
                        if (r < 0)
                                return r;
                }
                if (lagging)
                        return se_error_set(e, -ESTALE,
                                            "refusing to make %s key %s the write key while %s still run%s a "
                                            "configuration without it: restart %s there first",
                                            se_provider_type_to_string(tn), nn, lagging,
                                            strchr(lagging, ',') ? "" : "s", ctx->settings->unit);
        }
        return 0;
}

se_removal_proof *se_removal_proof_free(se_removal_proof *p) {
        if (p) {
                se_strv_free(p->walked);
                se_strv_free(p->watch);
                free(p->written);
                free(p);
        }
        return NULL;
}

typedef struct key_range {
        char *from, *to; /* [from, to) */
} key_range;

static int range_cmp(const void *a, const void *b) {
        return strcmp(((const key_range *) a)->from, ((const key_range *) b)->from);
}

static void key_ranges_free(key_range *k, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(k[i].from);
                free(k[i].to);
        }
        free(k);
}

/* The walked prefixes as sorted, disjoint key ranges inside /registry/. */
static int walked_ranges(char **walked, key_range **ret, size_t *ret_n) {
        size_t n = se_strv_length(walked), m = 0;
        key_range *k = calloc(MAX(n, (size_t) 1), sizeof(key_range));

        if (!k)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                /* "/" or "/registry" walks the whole registry; a prefix elsewhere none of it */
                const char *from = startswith(walked[i], SE_REGISTRY_PREFIX)   ? walked[i]
                                   : startswith(SE_REGISTRY_PREFIX, walked[i]) ? SE_REGISTRY_PREFIX
                                                                               : NULL;

                if (!from)
                        continue;
                k[m].from = strdup(from);
                k[m].to = se_prefix_range_end(from);
                m++;
                if (!k[m - 1].from || !k[m - 1].to) {
                        key_ranges_free(k, m);
                        return -ENOMEM;
                }
        }
        qsort(k, m, sizeof(key_range), range_cmp);
        n = 0; /* ranges kept */
        for (size_t i = 0; i < m; i++) {
                if (n > 0 && strcmp(k[i].from, k[n - 1].to) <= 0) {
                        /* overlaps or touches the last one kept: merged into it */
                        if (strcmp(k[i].to, k[n - 1].to) > 0) {
                                free(k[n - 1].to);
                                k[n - 1].to = TAKE_PTR(k[i].to);
                        }
                        free(TAKE_PTR(k[i].from));
                        free(TAKE_PTR(k[i].to));
                        continue;
                }
                k[n++] = (key_range){TAKE_PTR(k[i].from), TAKE_PTR(k[i].to)};
        }
        *ret = k;
        *ret_n = n;
        return 0;
}

/*
 * Whether the pass that just completed proves that no current value under /registry/ is stored
 * under a removed key, as the full scan would find: 1 proven, 0 not (then the full scan runs),
 * never an error (a store that fails here fails the full scan too, with its message).
 *
 * Let W be the revision the pass took before its first read, P the prefixes it walked, R the
 * removed value prefixes, and x the current row of any key k under /registry/ at this check.
 *  (a) rev(x) > W: x was written after the pass began. Statements inside the store count every
 *      current value under /registry/ with a revision above W that starts with a prefix of R,
 *      except the revisions the pass wrote itself: the store returned them for the rows it
 *      inserted, with the value it wrote under the write key, and a row never changes once
 *      written (kine supersedes with new rows; compaction only deletes). Nothing is paged, so
 *      nothing is skipped. Revisions only grow (kine: AUTOINCREMENT ids, which
 *      se_store_revision() checks), so every such row is counted, whoever wrote it, when.
 *  (b) rev(x) <= W, k outside P: counted whatever its revision, in the store, over every part of
 *      /registry/ the pass did not walk: the full scan, restricted to what the pass did not see.
 *  (c) rev(x) <= W, k under P: x existed before the pass began and is still current, so nothing
 *      was written to k since (a write or a delete adds a row above W, which would be current).
 *      The pass walked P to its end in key order reading current rows, so it read x; it did not
 *      supersede x (that row would be above W), so it left x in place, and counted x as watched
 *      if x starts with a prefix of R. The proof needs that count to be zero with R a subset of
 *      what it watched. And a count checks the walk itself: the current rows under P at or below
 *      W can only be rows the pass left in place, so there can be no more of them than it left;
 *      more would mean it missed a key, and the full scan runs.
 * The proof is bound to that pass: it completed in this process on this very store handle, did
 * not resume another run's checkpoint (the watermark is 0 then: the datastore may have been
 * restored from a backup in between), ran with the config being pruned now (hash), and the store
 * has not gone back behind its last write. A compaction removes rows that are not current and
 * changes no current value. Anything else, and any value found, falls back to the full scan
 * (which names the first value).
 */
static int removal_proven(se_ctx *ctx, se_store *store, char **removed) {
        const se_removal_proof *p = ctx->removal_proof;
        static const char registry_end[] = "/registry0";
        key_range *walked = NULL;
        size_t n_walked = 0;
        const char *cursor = SE_REGISTRY_PREFIX;
        uint64_t n, in_place = 0;
        int64_t now, from;
        int r = 0;

        if (!p || p->store != store || p->watermark <= 0 || p->end < p->watermark || p->watched > 0 ||
            !streq(p->hash, ctx->state.hash))
                return 0;
        for (size_t i = 0; removed[i]; i++)
                if (!se_strv_contains(p->watch, removed[i]))
                        return 0;
        if (se_store_revision(store, &now, NULL) < 0 || now < p->end)
                return 0;
        from = p->watermark + 1;
        /* (a): above W, between and after the ranges the pass wrote */
        for (size_t i = 0; i <= p->n_written; i++) {
                int64_t to = i < p->n_written ? p->written[i].first - 1 : 0; /* 0: no end */

                if ((to == 0 || to >= from) &&
                    (se_store_count_values(store, SE_REGISTRY_PREFIX, registry_end, from, to,
                                           (const char *const *) removed, &n, NULL) < 0 ||
                     n > 0))
                        return 0;
                if (i < p->n_written)
                        from = MAX(from, p->written[i].last + 1);
        }
        if (walked_ranges(p->walked, &walked, &n_walked) < 0)
                return 0;
        /* (b): the gaps between the walked ranges */
        for (size_t i = 0; i <= n_walked; i++) {
                const char *to = i < n_walked ? walked[i].from : registry_end;

                if (strcmp(cursor, to) < 0 &&
                    (se_store_count_values(store, cursor, to, 0, 0, (const char *const *) removed, &n, NULL) < 0 ||
                     n > 0))
                        goto out;
                if (i < n_walked && strcmp(walked[i].to, cursor) > 0)
                        cursor = walked[i].to;
        }
        /* (c) */
        for (size_t i = 0; i < n_walked; i++) {
                if (se_store_count_values(store, walked[i].from, walked[i].to, 0, p->watermark, NULL, &n, NULL) < 0)
                        goto out;
                in_place += n;
        }
        r = in_place <= p->left;
out:
        key_ranges_free(walked, n_walked);
        return r;
}

static int check_removal(se_ctx *ctx, char **removed, se_error *e) {
        _cleanup_free_ char *first = NULL;
        se_store *store;
        uint64_t n = 0;
        int r;

        for (size_t i = 0; removed[i]; i++)
                if (startswith(removed[i], "k8s:enc:kms:"))
                        return se_error_set(e, -ESTALE,
                                            "refusing to remove a KMS provider (%s): its values are left as they "
                                            "are",
                                            removed[i]);
        r = se_ctx_store(ctx, &store, e);
        if (r < 0)
                return r;
        if (removal_proven(ctx, store, removed) > 0)
                return 0;
        /* The whole registry, not only the resources the entry names: a value under a removed key
         * anywhere would be lost, whichever entry it was written through. */
        r = se_scan_value_prefixes(store, SE_REGISTRY_PREFIX, (const char *const *) removed, &n, &first, e);
        if (r < 0)
                return se_error_prefix(e, r, "cannot scan the stored values before removing a key");
        if (n > 0)
                return se_error_set(e, -ENOKEY,
                                    "refusing to remove a key: %" PRIu64 " stored value(s) still use it, first %s; "
                                    "re-encrypt first",
                                    n, first);
        return 0;
}

int se_safety_check(se_ctx *ctx, se_safety_action a, const se_config *next, se_error *e) {
        const se_config *cur = ctx->state.has_config ? ctx->state.config : NULL;
        _cleanup_free_ char *lagging = NULL;
        se_config *running = NULL;
        char **removed = NULL;
        int r;

        if (a == SE_SAFETY_REWRITE_VALUES || a == SE_SAFETY_REMOVE_KEYS) {
                r = not_running_current(ctx, &lagging, e);
                if (r < 0)
                        return r;
                if (lagging)
                        return se_error_set(e, -ESTALE,
                                            "%s %s not started with the current configuration (sha256:%.12s…); "
                                            "values are rewritten and keys removed only when every running API "
                                            "server can read the write key: restart %s",
                                            lagging, strchr(lagging, ',') ? "have" : "has", ctx->state.hash,
                                            strchr(lagging, ',') ? "them" : "it");
        }
        if (a == SE_SAFETY_REWRITE_VALUES)
                return 0;

        r = running_config(ctx, &running, e);
        if (r >= 0)
                r = check_shape(cur, next, ctx->server_stopped ? NULL : running,
                                ctx->server_stopped ? "" : ctx->settings->unit, e);
        if (r >= 0)
                r = check_write_key_known(ctx, cur, next, e);
        if (r >= 0 && cur && se_config_removed_keys(cur, next, &removed) < 0)
                r = se_error_set(e, -ENOMEM, "out of memory");
        if (r >= 0 && removed) {
                if (a != SE_SAFETY_REMOVE_KEYS)
                        r = se_error_set(e, -ESTALE,
                                         "refusing to write a configuration that drops a key (%s) outside a "
                                         "re-encryption's prune",
                                         removed[0]);
                else
                        r = check_removal(ctx, removed, e);
        }
        se_strv_free(removed);
        se_config_free(running);
        return r;
}
