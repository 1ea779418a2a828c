/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"
#include "se-util.h"

int cmd_status(cli *c, se_error *e) {
        _cleanup_free_ char *out = NULL;
        se_status s = {};
        se_ctx ctx;
        int r;

        r = se_ctx_open_read(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        r = se_op_status(&ctx, &s, e);
        se_ctx_close(&ctx);
        if (r < 0)
                return r;
        s.state_dir = strdup(c->settings.state_dir);
        s.datastore = se_url_strip_userinfo(c->settings.datastore_endpoint);
        if (!s.state_dir || !s.datastore) {
                se_status_done(&s);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        r = c->json ? se_status_format_json(&s, &out) : se_status_format_text(&s, &out);
        se_status_done(&s);
        if (r < 0)
                return se_error_set(e, r, "cannot format the status");
        fputs(out, stdout);
        return 0;
}
