/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "macro.h"

const char *cli_started_line;
bool cli_did_start;

static volatile sig_atomic_t interrupted;
static uint64_t last_done, last_total;
static struct sigaction saved_int, saved_term, saved_hup;

static void on_interrupt(int sig) {
        interrupted = sig;
        /* a second Ctrl-C kills at once */
        (void) signal(sig, SIG_DFL);
}

void cli_work_begin(cli *c) {
        struct sigaction sa = {.sa_handler = on_interrupt};

        (void) c;
        interrupted = 0;
        cli_did_start = false;
        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, &saved_int);
        (void) sigaction(SIGTERM, &sa, &saved_term);
        sa.sa_handler = SIG_IGN;
        (void) sigaction(SIGHUP, &sa, &saved_hup);
}

void cli_work_end(cli *c) {
        (void) c;
        (void) sigaction(SIGINT, &saved_int, NULL);
        (void) sigaction(SIGTERM, &saved_term, NULL);
        (void) sigaction(SIGHUP, &saved_hup, NULL);
}

void cli_started(void *userdata) {
        (void) userdata;
        cli_did_start = true;
        if (cli_started_line) {
                puts(cli_started_line);
                (void) fflush(stdout);
        }
}

int cli_interrupted_error(cli *c, se_error *e) {
        char at[64] = "";

        if (last_total > 0)
                (void) snprintf(at, sizeof(at), " at %" PRIu64 "/%" PRIu64 " secrets", last_done, last_total);
        return se_error_set(e, -ECANCELED,
                            "re-encryption interrupted by %s%s; it stopped at a checkpoint: run `secrets-encrypt "
                            "reencrypt` to resume it (or restart %s)",
                            interrupted == SIGTERM ? "SIGTERM" : "SIGINT", at, c->settings.unit);
}

int cli_progress(const se_reencrypt_progress *p, void *userdata) {
        static int last_decile = -1;
        const cli *c = userdata;
        unsigned pct = p->total > 0 ? (unsigned) (p->done * 100 / p->total) : 100;

        last_done = p->done;
        last_total = p->total;
        if (interrupted)
                return -ECANCELED;
        if (p->done > p->total)
                pct = 100;
        /* nothing for --quiet, nor once the reader is gone (EPIPE after `| head`, a closed tty) */
        if ((c && c->quiet) || ferror(stderr))
                return 0;
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
