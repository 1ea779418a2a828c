/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "cli.h"
#include "macro.h"

static void print_text(const se_verify_report *rep) {
        printf("%" PRIu64 " secrets\n", rep->total);
        if (rep->other_values > 0)
                printf("%" PRIu64 " encrypted values of other resources\n", rep->other_values);
        for (size_t i = 0; i < rep->n_counts; i++)
                printf("  %-10s %-40s %" PRIu64 "\n", se_provider_type_to_string(rep->counts[i].provider),
                       rep->counts[i].key_name ? rep->counts[i].key_name : "-", rep->counts[i].count);
        printf("%" PRIu64 " not under the write key, %" PRIu64 " unreadable\n", rep->not_current, rep->unreadable);
        for (size_t i = 0; i < rep->n_unreadable_paths; i++)
                printf("  unreadable: %s\n", rep->unreadable_paths[i]);
}

/* The same counts as JSON, for fleet tools. */
static int print_json(const se_verify_report *rep) {
        json_object *o = json_object_new_object(), *keys = json_object_new_array(), *paths = json_object_new_array();
        int r = 0;

        if (!o || !keys || !paths) {
                json_object_put(o);
                json_object_put(keys);
                json_object_put(paths);
                return -ENOMEM;
        }
        for (size_t i = 0; i < rep->n_counts; i++) {
                json_object *k = json_object_new_object();

                if (!k) {
                        r = -ENOMEM;
                        break;
                }
                (void) json_object_object_add(
                        k, "provider", json_object_new_string(se_provider_type_to_string(rep->counts[i].provider)));
                (void) json_object_object_add(
                        k, "key", rep->counts[i].key_name ? json_object_new_string(rep->counts[i].key_name) : NULL);
                (void) json_object_object_add(k, "count", json_object_new_int64((int64_t) rep->counts[i].count));
                (void) json_object_array_add(keys, k);
        }
        for (size_t i = 0; i < rep->n_unreadable_paths; i++)
                (void) json_object_array_add(paths, json_object_new_string(rep->unreadable_paths[i]));
        (void) json_object_object_add(o, "total", json_object_new_int64((int64_t) rep->total));
        (void) json_object_object_add(o, "other_values", json_object_new_int64((int64_t) rep->other_values));
        (void) json_object_object_add(o, "keys", keys);
        (void) json_object_object_add(o, "not_current", json_object_new_int64((int64_t) rep->not_current));
        (void) json_object_object_add(o, "unreadable", json_object_new_int64((int64_t) rep->unreadable));
        (void) json_object_object_add(o, "unreadable_paths", paths);
        if (r >= 0)
                printf("%s\n",
                       json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return r;
}

int cmd_verify(cli *c, se_error *e) {
        se_verify_options o = {.all_resources = true};
        se_verify_report rep = {};
        se_store *store;
        se_ctx ctx;
        int r;

        r = se_ctx_open_read(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        if (!ctx.state.has_config)
                r = se_error_set(e, -ESTALE, "no encryption configuration in %s", ctx.state.dir);
        if (r >= 0)
                r = se_ctx_store(&ctx, &store, e);
        if (r >= 0)
                r = se_verify(store, ctx.state.config, &o, &rep, e);
        se_ctx_close(&ctx);
        if (r < 0)
                return r;

        if (c->json)
                r = print_json(&rep);
        else
                print_text(&rep);
        if (r < 0)
                r = se_error_set(e, r, "out of memory");
        else if (rep.unreadable > 0)
                r = se_error_set(e, -ENOKEY, "%" PRIu64 " stored values cannot be decrypted with the configured keys",
                                 rep.unreadable);
        se_verify_report_done(&rep);
        return r;
}
