/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * secrets-encrypt-hook: ExecStartPre= of the API server's unit. Exit 0 lets the server start;
 * anything else blocks it, with a sysexits code systemctl status names (never >= 200).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "macro.h"
#include "secrets-encrypt.h"
#include "se-config.h"
#include "se-event.h"
#include "se-fleet-hooks.h"
#include "se-hook.h"
#include "se-host.h"
#include "se-metrics.h"
#include "se-settings.h"
#include "se-util.h"

static void on_deadline(int sig) {
        static const char msg[] = "<3>secrets-encrypt-hook: deadline (timeout setting) reached, giving up; "
                                  "the work done so far is kept and resumes on the next start\n";

        (void) !write(STDERR_FILENO, msg, sizeof(msg) - 1);
        _exit(SE_EXIT_BUSY);
}

static int notify_progress(const se_reencrypt_progress *p, void *userdata) {
        /* Each progress report buys another minute from a finite TimeoutStartSec=. */
        (void) sd_notifyf(0,
                          "STATUS=Re-encrypting secrets: %" PRIu64 "/%" PRIu64 " (%.0f/s)\n"
                          "EXTEND_TIMEOUT_USEC=%" PRIu64,
                          p->done, p->total, p->rate, (uint64_t) 60 * 1000000);
        return 0;
}

static void help(void) {
        printf("Usage: secrets-encrypt-hook [--config FILE]\n\n"
               "Runs before the Kubernetes API server (ExecStartPre=): validates and hashes the encryption\n"
               "configuration, brings this node to the cluster's stage and finishes pending re-encryption.\n\n"
               "  --config FILE   Settings file (default %s, env SECRETS_ENCRYPT_CONFIG)\n"
               "  --unit UNIT     The unit this hook guards (the drop-ins pass %%n)\n"
               "  -h, --help      Show this help\n"
               "      --version   Show the version\n",
               SE_SETTINGS_DEFAULT_PATH);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {"config", required_argument, NULL, 'c'},
                {"unit", required_argument, NULL, 'u'},
                {},
        };
        const char *config = secure_getenv("SECRETS_ENCRYPT_CONFIG"), *unit = NULL;
        se_hook_result res = {};
        se_error e = SE_ERROR_NULL;
        se_settings s;
        int opt, r, status;

        /* The drop-in cannot sandbox us without sandboxing the server too. */
        (void) prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        (void) se_process_harden(); /* keys never land in a core dump */
        umask(0077);

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (opt) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("secrets-encrypt-hook %s\n", SE_VERSION);
                        return 0;
                case 'c':
                        config = optarg;
                        break;
                case 'u':
                        unit = optarg;
                        break;
                default:
                        return SE_EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "secrets-encrypt-hook: unexpected argument \"%s\"\n", argv[optind]);
                return SE_EXIT_USAGE;
        }

        if (se_settings_init(&s) < 0)
                return SE_EXIT_SOFTWARE;
        r = se_settings_load(&s, config ? config : SE_SETTINGS_DEFAULT_PATH, !config, &e);
        /* Installed but not set up (no settings, or the packaged example of comments only): change
         * nothing, so that installing never alters a start. */
        if (r == 0) {
                se_event(SE_EVENT_NOT_CONFIGURED,
                         SE_MESSAGE("secrets-encrypt is not set up here (no settings in %s): the API server starts "
                                    "unchanged. Run `secrets-encrypt setup` to manage its encryption keys.",
                                    config ? config : SE_SETTINGS_DEFAULT_PATH));
                se_settings_done(&s);
                return 0;
        }
        if (r >= 0 && unit)
                r = se_settings_set(&s, "unit", unit, &e);
        if (r < 0) {
                (void) se_hook_report_failure(&s, r, se_error_message(&e));
                status = SE_EXIT_USAGE;
                goto finish;
        }
        /* A config no server reads must not be changed, nor its values re-encrypted (SPEC §5.0). */
        /* under a user manager ($MANAGERPID is set for user services only) its units are per-user */
        r = se_host_check_settings(&s, secure_getenv("MANAGERPID") != NULL, &e);
        if (r < 0) {
                (void) se_hook_report_failure(&s, r, se_error_message(&e));
                status = se_exit_code_from_errno(r);
                goto finish;
        }

        /* kube-apiserver's KMSv1 gate as this cluster runs it: a config it would refuse never passes */
        se_config_set_kms_v1_gate(s.kms_v1);

        /* events name the unit they guard (`journalctl -u UNIT`) */
        se_log_set_object_unit(s.unit);
        /* hooks-dir and metrics-file follow every event; a failing hook never blocks the start */
        se_fleet_observer_install(&s);

        if (signal(SIGALRM, on_deadline) != SIG_ERR)
                (void) alarm((unsigned) MAX(s.timeout_usec / 1000000, 1));

        (void) sd_notify(0, "STATUS=Checking the secrets encryption configuration");
        r = se_hook_run(&s, notify_progress, NULL, &res, &e);
        (void) alarm(0);
        if (r < 0) {
                (void) se_hook_report_failure(&s, r, se_error_message(&e));
                (void) sd_notifyf(0, "STATUS=secrets-encrypt: %s\nERRNO=%i", se_hook_status_text(r), -r);
                status = se_exit_code_from_errno(r);
                goto finish;
        }
        se_hook_clear_failure(&s);
        (void) sd_notifyf(0, "STATUS=Secrets encryption ready: stage %s, sha256:%s%s", se_stage_to_string(res.stage),
                          res.hash, res.resumed ? " (re-encryption completed)" : "");
        status = 0;

finish:
        if (r >= 0 || status != SE_EXIT_USAGE) {
                se_error me = SE_ERROR_NULL;

                /* the result of this start, for the SecretsEncryptionHookFailing alert */
                se_metrics_set_hook_result(status != 0, (int64_t) time(NULL));
                if (se_fleet_metrics_refresh(&s, &me) < 0) {
                        fprintf(stderr, "<4>secrets-encrypt-hook: %s\n", se_error_message(&me));
                        se_error_done(&me);
                        /* the state cannot be read (an invalid config): the hook's lines at least */
                        if (!isempty(s.metrics_file) && se_metrics_write_hook_result(s.metrics_file, &me) < 0)
                                fprintf(stderr, "<4>secrets-encrypt-hook: %s\n", se_error_message(&me));
                }
                se_error_done(&me);
        }
        se_fleet_observer_remove();
        (void) sd_notify_barrier(0, 5 * 1000000);
        se_error_done(&e);
        se_settings_done(&s);
        return status;
}
