/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "macro.h"

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

        printf("%" PRIu64 " secrets\n", rep.total);
        if (rep.other_values > 0)
                printf("%" PRIu64 " encrypted values of other resources\n", rep.other_values);
        for (size_t i = 0; i < rep.n_counts; i++)
                printf("  %-10s %-40s %" PRIu64 "\n", se_provider_type_to_string(rep.counts[i].provider),
                       rep.counts[i].key_name ? rep.counts[i].key_name : "-", rep.counts[i].count);
        printf("%" PRIu64 " not under the write key, %" PRIu64 " unreadable\n", rep.not_current, rep.unreadable);
        for (size_t i = 0; i < rep.n_unreadable_paths; i++)
                printf("  unreadable: %s\n", rep.unreadable_paths[i]);
        if (rep.unreadable > 0)
                r = se_error_set(e, -ENOKEY, "%" PRIu64 " stored values cannot be decrypted with the configured keys",
                                 rep.unreadable);
        se_verify_report_done(&rep);
        return r;
}
