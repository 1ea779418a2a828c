/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli.h"
#include "macro.h"
#include "se-key-archive.h"

/* `secrets-encrypt restore-key NAME`: an archived key back as a read key. The API server reads
 * the config only at its start, so the key is usable once the unit restarts (--restart does it
 * here, after the state-directory lock is released for the hook). */
int cmd_restore_key(cli *c, se_error *e) {
        const char *name = c->file; /* the command's one argument */
        se_ctx ctx;
        int r;

        if (isempty(name))
                return se_error_set(e, -EINVAL, "restore-key needs the name of a removed key: restore-key NAME");

        r = se_ctx_open(&ctx, &c->settings, SE_LOCK_WAIT_USEC, e);
        if (r < 0)
                return r;
        r = se_op_restore_key(&ctx, name, e);
        se_ctx_close(&ctx); /* the hook needs the lock */
        if (r < 0)
                return r;

        if (!c->restart) {
                printf("key %s restored as a read key: restart %s to load it\n", name, c->settings.unit);
                return 0;
        }
        r = se_unit_restart(c->settings.unit, c->user, c->settings.timeout_usec, e);
        if (r < 0)
                return se_error_prefix(e, r, "key %s restored as a read key, but restarting %s failed", name,
                                       c->settings.unit);
        printf("key %s restored as a read key: %s restarted with it\n", name, c->settings.unit);
        return 0;
}
