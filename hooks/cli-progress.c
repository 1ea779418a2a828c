/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "macro.h"

int cli_progress(const se_reencrypt_progress *p, void *userdata) {
        static int last_decile = -1;
        unsigned pct = p->total > 0 ? (unsigned) (p->done * 100 / p->total) : 100;

        if (p->done > p->total)
                pct = 100;
        if (isatty(STDERR_FILENO)) {
                char bar[41];
                unsigned fill = pct * 40 / 100;

                for (unsigned i = 0; i < 40; i++)
                        bar[i] = i < fill ? '#' : '.';
                bar[40] = 0;
                fprintf(stderr, "\r[%s] %3u%% %" PRIu64 "/%" PRIu64 " secrets, %.0f/s%s", bar, pct, p->done, p->total,
                        p->rate, p->final ? "\n" : "");
        } else if ((int) (pct / 10) != last_decile || p->final) {
                last_decile = (int) (pct / 10);
                fprintf(stderr, "reencrypted %" PRIu64 "/%" PRIu64 " secrets (%u%%, %.0f/s)\n", p->done, p->total, pct,
                        p->rate);
        }
        return 0;
}
