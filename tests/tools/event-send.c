/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test helper: emits one event through the se_event API, optionally sends STATUS= to the service
 * manager (as the hook does from ExecStartPre=), waits, and exits with a chosen code.
 *
 *   event-send [--target=auto|journal|stderr|console|null] [--priority=N] [--errno=N]
 *              [--status=TEXT] [--sleep=SECONDS] [--exit=CODE]
 *              EVENT-NAME MESSAGE [SECRETS_ENCRYPT_FIELD=VALUE...]
 *
 * Prints the event's MESSAGE_ID on stdout. Exit 2 on bad usage, 3 if the event was refused. */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"

#define MAX_FIELDS 12

static int usage(void) {
        fprintf(stderr, "usage: event-send [--target=T] [--priority=N] [--errno=N] [--status=TEXT] "
                        "[--sleep=S] [--exit=CODE] EVENT-NAME MESSAGE [FIELD=VALUE...]\n");
        return 2;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "target", required_argument, NULL, 't' }, { "priority", required_argument, NULL, 'p' },
                { "errno", required_argument, NULL, 'e' },  { "status", required_argument, NULL, 's' },
                { "sleep", required_argument, NULL, 'w' },  { "exit", required_argument, NULL, 'x' },
                {},
        };
        const char *f[MAX_FIELDS] = {}, *status = NULL;
        int priority = -1, error = 0, exit_code = 0, c, type, r, nf;
        double sleep_s = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 't': {
                        se_log_target t = se_log_target_from_string(optarg);
                        if (t < 0)
                                return usage();
                        se_log_set_target(t);
                        break;
                }
                case 'p':
                        priority = atoi(optarg);
                        break;
                case 'e':
                        error = atoi(optarg);
                        break;
                case 's':
                        status = optarg;
                        break;
                case 'w':
                        sleep_s = atof(optarg);
                        break;
                case 'x':
                        exit_code = atoi(optarg);
                        break;
                default:
                        return usage();
                }
        if (argc - optind < 2)
                return usage();
        type = se_event_from_name(argv[optind]);
        if (type < 0) {
                fprintf(stderr, "event-send: unknown event '%s'\n", argv[optind]);
                return 2;
        }
        nf = argc - optind - 2;
        if (nf > MAX_FIELDS)
                return usage();
        for (int i = 0; i < nf; i++)
                f[i] = argv[optind + 2 + i];

        if (status) {
                /* never READY=1: that is the server's job */
                (void) sd_notifyf(0, "STATUS=%s", status);
                (void) sd_notify_barrier(0, 5 * 1000000ULL);
        }

        /* A NULL format ends the list, so unused slots stop it. */
        r = se_event_full(type, priority, error, "MESSAGE=%s", argv[optind + 1], f[0] ? "%s" : NULL, f[0],
                          f[1] ? "%s" : NULL, f[1], f[2] ? "%s" : NULL, f[2], f[3] ? "%s" : NULL, f[3],
                          f[4] ? "%s" : NULL, f[4], f[5] ? "%s" : NULL, f[5], f[6] ? "%s" : NULL, f[6],
                          f[7] ? "%s" : NULL, f[7], f[8] ? "%s" : NULL, f[8], f[9] ? "%s" : NULL, f[9],
                          f[10] ? "%s" : NULL, f[10], f[11] ? "%s" : NULL, f[11]);
        printf("%s\n", se_event_get_info(type)->id);
        fflush(stdout);
        if (r < 0) {
                fprintf(stderr, "event-send: event refused in part: %s\n", strerror(-r));
                return 3;
        }
        if (sleep_s > 0)
                usleep((useconds_t) (sleep_s * 1e6));
        return exit_code;
}
