/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "macro.h"
#include "se-facts.h"

/* Lock-free, so fact gathering never waits for (or blocks) a running rotation. */
int cmd_facts(cli *c, se_error *e) {
        _cleanup_free_ char *out = NULL;
        se_facts f = {};
        int r;

        r = se_facts_read(&c->settings, (int64_t) time(NULL), &f, e);
        if (r < 0)
                return r;
        r = se_facts_to_json(&f, true, &out);
        se_facts_done(&f);
        if (r < 0)
                return se_error_set(e, r, "cannot format the facts");
        fputs(out, stdout);
        return 0;
}
