/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "se-config.h"
#include "macro.h"
#include "se-host.h"
#include "se-event.h"
#include "se-fleet-hooks.h"
#include "se-redact.h"
#include "se-util.h"

static const struct {
        const char *name;
        int (*run)(cli *c, se_error *e);
        const char *options; /* command options it accepts, for the usage check */
        const char *help;
} commands[] = {
        {"status", cmd_status, "o", "Print the current status of secrets encryption"},
        {"enable", cmd_enable, "", "Enable secrets encryption"},
        {"disable", cmd_disable, "", "Disable secrets encryption"},
        {"prepare", cmd_prepare, "f", "Prepare for encryption keys rotation"},
        {"rotate", cmd_rotate, "f", "Rotate secrets encryption keys"},
        {"reencrypt", cmd_reencrypt, "fs", "Reencrypt all data with the latest encryption key"},
        {"rotate-keys", cmd_rotate_keys, "RU", "Dynamically rotate secrets encryption keys and re-encrypt secrets"},
        {"sync", cmd_sync, "FLB",
         "Resolve a config that differs from the cluster's (HA): --from-cluster or --from-local"},
        {"validate", cmd_validate, "", "Check an EncryptionConfiguration file as kube-apiserver would"},
        {"hash", cmd_hash, "", "Print the sha256 hash of a configuration file as kube-apiserver reports it"},
        {"verify", cmd_verify, "o", "Decrypt every stored secret read-only and count them per key"},
        {"facts", cmd_facts, "", "Print the state as JSON facts (Ansible local fact, Facter external fact)"},
        {"ensure", cmd_ensure, "WEDPCT", "Reach a wanted state idempotently, as fleet tools expect"},
        {"forget-node", cmd_forget_node, "",
         "HA: remove a server gone for good from the registry so a stuck rotation resumes: forget-node NAME"},
        {"reset-state", cmd_reset_state, "X",
         "After a lost configuration: forget the old keys' state so a new config can be generated"},
        {"restore-key", cmd_restore_key, "",
         "Bring a removed key back from the archive as a read key: restore-key NAME"},
        {"setup", cmd_setup, "GNV",
         "Connect this host's API server (k3s, rke2, kube-apiserver) to secrets-encrypt; --undo gives it back"},
};

/* Help lines of the command options, by the letter the commands table uses. */
static const struct {
        char letter;
        const char *text;
} option_help[] = {
        {'f', "  -f, --force              Force this stage (skips k3s's stage and hash checks, never the safety "
              "invariant)"},
        {'s', "      --skip               Skip removing the old key"},
        {'o', "  -o, --output FORMAT      Output: text or json (any case, as k3s; anything else is text)"},
        {'R', "      --rolling            Start a rolling rotation driven by restarts (HA)"},
        {'U', "      --purge              Drop the old key without archiving it (compromised key)"},
        {'X', "      --discard-keys       Confirm that values under the lost keys stay unreadable"},
        {'F', "      --from-cluster       Replace this server's config with the cluster's"},
        {'L', "      --from-local         Publish this server's config as the cluster's"},
        {'B', "      --allow-rollback     With --from-cluster: accept a generation below this server's mark\n"
              "                           (etcd restored from a backup on purpose; never for a replay)"},
        {'W', "      --rotated-within DURATION  Rotate when the active key is older (e.g. 90d)\n"
              "      --rotate-due               --rotated-within the rotate-after setting (the timer)"},
        {'E', "      --enabled                  Encryption on"},
        {'D', "      --disabled                 Encryption off"},
        {'P', "      --provider P               aescbc or secretbox; a change rotates (migration)"},
        {'C', "      --check                    Report what would be done, change nothing"},
        {'T', "      --salt                     Add Salt's stateful last line changed=… comment=…"},
        {'G', "      --for k3s|rke2|kube-apiserver  The distribution (default: detected from the units)"},
        {'N', "      --dry-run            Print the changes as a diff, write nothing"},
        {'V', "      --undo               Give key management back, only when that is safe"},
};

/* Commands that change the state, and so take --restart. */
static bool takes_restart(const char *name) {
        static const char *const mutating[] = {"enable",      "disable", "prepare", "rotate",      "reencrypt",
                                               "rotate-keys", "sync",    "ensure",  "restore-key", "forget-node"};

        for (size_t i = 0; i < ELEMENTSOF(mutating); i++)
                if (streq(name, mutating[i]))
                        return true;
        return false;
}

static void help_command(size_t cmd) {
        printf("Usage: secrets-encrypt [GLOBAL OPTIONS] %s [OPTIONS]%s\n\n%s.\n", commands[cmd].name,
               streq(commands[cmd].name, "validate") || streq(commands[cmd].name, "hash") ? " [FILE]" : "",
               commands[cmd].help);
        if (streq(commands[cmd].name, "reencrypt"))
                printf("In stage reencrypt_active it resumes an interrupted re-encryption from its checkpoint.\n"
                       "Where systemd runs, the work runs in the transient unit secrets-encrypt-reencrypt.service "
                       "and\n"
                       "this command follows it: Ctrl-C detaches (the work goes on). --foreground runs it here.\n");
        printf("\nOptions:\n");
        for (const char *o = commands[cmd].options; *o; o++)
                for (size_t i = 0; i < ELEMENTSOF(option_help); i++)
                        if (option_help[i].letter == *o)
                                printf("%s\n", option_help[i].text);
        if (takes_restart(commands[cmd].name))
                printf("      --restart            Restart the server unit afterwards and wait for it\n");
        printf("  -q, --quiet              Only the result line (events still go to the journal)\n"
               "  -h, --help               Show this help\n"
               "\nGlobal options and settings: secrets-encrypt --help. See secrets-encrypt(8).\n");
}

static void help(void) {
        printf("Usage: secrets-encrypt [OPTIONS] COMMAND [ARGS]\n\n"
               "Manage Kubernetes secrets encryption keys, as `k3s secrets-encrypt`.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-12s %s\n", commands[i].name, commands[i].help);
        printf("  %-12s %s\n", "help", "Show a command's flags: help COMMAND (or COMMAND --help)");
        printf("\nCommand options:\n"
               "  -f, --force              Force this stage (prepare, rotate, reencrypt)\n"
               "      --skip               Skip removing the old key (reencrypt)\n"
               "  -o, --output FORMAT      Status output: text or json\n"
               "      --rolling            rotate-keys: start a rolling rotation driven by restarts (HA)\n"
               "      --purge              rotate-keys: drop the old key without archiving it (compromised key)\n"
               "      --discard-keys       reset-state: confirm that values under the lost keys stay unreadable\n"
               "      --from-cluster       sync: replace this server's config with the cluster's\n"
               "      --from-local         sync: publish this server's config as the cluster's\n"
               "      --allow-rollback     sync --from-cluster: install it even if older than seen before\n"
               "      --restart            Restart the server unit afterwards and wait for it; pending\n"
               "                           re-encryption then runs in the hook while the server is down\n"
               "      --user               Talk to the calling user's service manager (for tests)\n"
               "      --rotated-within DURATION  ensure: rotate when the active key is older (e.g. 90d)\n"
               "      --rotate-due               ensure: --rotated-within the rotate-after setting (timer)\n"
               "      --enabled, --disabled      ensure: encryption on or off\n"
               "      --provider P               ensure: aescbc or secretbox; a change rotates (migration)\n"
               "      --check                    ensure: report what would be done, change nothing\n"
               "      --salt                     ensure: add Salt's stateful last line changed=… comment=…\n"
               "      --for k3s|rke2|kube-apiserver  setup: the distribution (default: detected)\n"
               "      --dry-run                  setup: print the changes as a diff, write nothing\n"
               "      --undo                     setup: give key management back when that is safe\n"
               "\nSettings (each also a key in the settings file):\n"
               "  --config FILE  Settings file (default %s, env SECRETS_ENCRYPT_CONFIG)\n",
               SE_SETTINGS_DEFAULT_PATH);
        for (size_t i = 0; se_settings_keys[i]; i++) {
                const se_settings_doc *d = se_settings_doc_get(se_settings_keys[i]);

                printf("  --%s VALUE\n        %s%s%s%s\n", se_settings_keys[i], d ? d->meaning : "",
                       d ? " (default: " : "", d ? d->default_value : "", d ? ")" : "");
        }
        printf("\nk3s's global flags:\n"
               "  -d, --data-dir DIR                     k3s's data directory: the datastore is its\n"
               "                                         server/db/state.db, or its embedded etcd\n"
               "  -s, --server URL                       Accepted for k3s scripts: only this server can be\n"
               "                                         acted on (another server's URL is an error)\n"
               "  -t, --token TOKEN                      The cluster token (instead of token-file); never printed\n"
               "  -q, --quiet                            Only the result line (events still go to the journal)\n"
               "\n  -h, --help     Show this help (COMMAND --help, help COMMAND: the command's)\n"
               "      --version  Show the version\n"
               "\nExit codes: 0 ok, 1 failure, 64 usage, 65 undecryptable data, 66 missing input,\n"
               "69 datastore or systemd unavailable, 70 internal, 73 cannot write, 74 I/O error, 75 busy,\n"
               "77 permission denied, 78 invalid configuration, 79 precondition not met.\n"
               "See secrets-encrypt(8).\n");
}

/* --list-settings: key, default and meaning, tab-separated, for tests/tools/settings-doc.py. */
static void list_settings(void) {
        for (size_t i = 0; se_settings_keys[i]; i++) {
                const se_settings_doc *d = se_settings_doc_get(se_settings_keys[i]);

                printf("%s\t%s\t%s\n", se_settings_keys[i], d ? d->default_value : "", d ? d->meaning : "");
        }
}

enum {
        ARG_VERSION = 0x100,
        ARG_CONFIG,
        ARG_SKIP,
        ARG_RESTART,
        ARG_USER,
        ARG_ROTATED_WITHIN,
        ARG_ENABLED,
        ARG_DISABLED,
        ARG_PROVIDER,
        ARG_CHECK,
        ARG_SALT,
        ARG_ROLLING,
        ARG_PURGE,
        ARG_DISCARD_KEYS,
        ARG_FROM_CLUSTER,
        ARG_FROM_LOCAL,
        ARG_FOR,
        ARG_DRY_RUN,
        ARG_UNDO,
        ARG_ROTATE_DUE,
        ARG_LIST_SETTINGS,
        ARG_FOREGROUND,
        ARG_ALLOW_ROLLBACK,
        ARG_SETTING, /* + index into se_settings_keys */
};

/* getopt_long() takes any unambiguous abbreviation (`--token` would be `--token-file`, and its
 * value echoed in the error): every long option must be spelled out. Only the option's name is
 * ever printed, never a value. */
static int check_long_options(int argc, char *argv[], const struct option *options, se_error *e) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                size_t n;
                const struct option *o = NULL;

                if (streq(a, "--"))
                        break;
                if (a[0] == '-' && a[1] != '-' && a[1] && strchr("odst", a[1]) && a[2] == '\0') {
                        i++; /* a short option's separate value */
                        continue;
                }
                if (!startswith(a, "--"))
                        continue;
                n = strcspn(a + 2, "=");
                for (size_t k = 0; options[k].name; k++)
                        if (strlen(options[k].name) == n && strncmp(options[k].name, a + 2, n) == 0) {
                                o = &options[k];
                                break;
                        }
                if (!o)
                        return se_error_set(e, -EINVAL, "unknown option --%.*s (see --help)", (int) MIN(n, 64u),
                                            a + 2);
                if (o->has_arg == required_argument && !a[2 + n])
                        i++;
        }
        return 0;
}

/* k3s's --server: this helper acts on the local server only. */
static bool server_is_local(const char *url) {
        char host[256] = {}, self[256] = {};
        const char *p = strstr(url, "://");
        size_t n;

        p = p ? p + 3 : url;
        if (*p == '[') { /* [::1]:6443 */
                p++;
                n = strcspn(p, "]");
        } else
                n = strcspn(p, ":/");
        if (n == 0 || n >= sizeof(host))
                return false;
        memcpy(host, p, n);
        if (streq(host, "localhost") || startswith(host, "127.") || streq(host, "::1"))
                return true;
        return gethostname(self, sizeof(self) - 1) >= 0 && strcasecmp(host, self) == 0;
}

/* k3s's --data-dir: its datastore, found as setup finds it (never its server/cred as state-dir). */
static int apply_data_dir(se_settings *s, const char *dir, bool endpoint_given, se_error *e) {
        se_host h;
        int r;

        if (endpoint_given)
                return 0;
        r = se_host_detect_data_dir(SE_HOST_K3S, dir, &h, e);
        if (r < 0)
                return r;
        if (!h.datastore_endpoint)
                r = se_error_set(e, -EINVAL, "%s: no datastore (k3s has not started on it yet)", dir);
        if (r >= 0)
                r = cli_settings_set_datastore(s, &h, e);
        se_host_done(&h);
        return r;
}

#define usage_error(e, ...) (se_error_set((e), -EINVAL, __VA_ARGS__), SE_EXIT_USAGE)

/* Each option letter once, so repeated options cannot overrun the buffer. */
static void seen(char *opts, char c) {
        if (!strchr(opts, c))
                strncat(opts, &c, 1);
}

/* Commands that only read a named file or the datastore leave the metrics alone. */
static bool refreshes_metrics(const char *name) {
        return !streq(name, "validate") && !streq(name, "hash") && !streq(name, "verify");
}

int main(int argc, char *argv[]) {
        struct option options[64] = {
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {"config", required_argument, NULL, ARG_CONFIG},
                {"force", no_argument, NULL, 'f'},
                {"skip", no_argument, NULL, ARG_SKIP},
                {"output", required_argument, NULL, 'o'},
                {"restart", no_argument, NULL, ARG_RESTART},
                {"user", no_argument, NULL, ARG_USER},
                {"rotated-within", required_argument, NULL, ARG_ROTATED_WITHIN},
                {"enabled", no_argument, NULL, ARG_ENABLED},
                {"disabled", no_argument, NULL, ARG_DISABLED},
                {"provider", required_argument, NULL, ARG_PROVIDER},
                {"check", no_argument, NULL, ARG_CHECK},
                {"salt", no_argument, NULL, ARG_SALT},
                {"rolling", no_argument, NULL, ARG_ROLLING},
                {"purge", no_argument, NULL, ARG_PURGE},
                {"discard-keys", no_argument, NULL, ARG_DISCARD_KEYS},
                {"from-cluster", no_argument, NULL, ARG_FROM_CLUSTER},
                {"from-local", no_argument, NULL, ARG_FROM_LOCAL},
                {"for", required_argument, NULL, ARG_FOR},
                {"dry-run", no_argument, NULL, ARG_DRY_RUN},
                {"undo", no_argument, NULL, ARG_UNDO},
                {"rotate-due", no_argument, NULL, ARG_ROTATE_DUE},
                {"quiet", no_argument, NULL, 'q'},
                {"list-settings", no_argument, NULL, ARG_LIST_SETTINGS},
                {"foreground", no_argument, NULL, ARG_FOREGROUND},
                {"data-dir", required_argument, NULL, 'd'},
                {"server", required_argument, NULL, 's'},
                {"token", required_argument, NULL, 't'},
                {"allow-rollback", no_argument, NULL, ARG_ALLOW_ROLLBACK},
        };
        _cleanup_free_ char *seen_opts = calloc(1, 32);
        const char *settings_args[32] = {}, *data_dir = NULL, *server = NULL;
        se_error e = SE_ERROR_NULL;
        bool want_help = false;
        cli c = {};
        size_t n = 0, cmd;
        int opt, r, status;

        (void) se_process_harden(); /* keys never land in a core dump */
        /* a reader that leaves (`| head`) must not kill a re-encryption: writes fail with EPIPE */
        (void) signal(SIGPIPE, SIG_IGN);

        while (options[n].name)
                n++;
        for (size_t i = 0; se_settings_keys[i]; i++)
                options[n++] = (struct option){se_settings_keys[i], required_argument, NULL, ARG_SETTING + (int) i};
        options[n] = (struct option){};

        if (se_settings_init(&c.settings) < 0) {
                fprintf(stderr, "secrets-encrypt: out of memory\n");
                return SE_EXIT_SOFTWARE;
        }
        c.settings_path = secure_getenv("SECRETS_ENCRYPT_CONFIG");
        c.argc = argc;
        c.argv = argv;

        if (check_long_options(argc, argv, options, &e) < 0) {
                status = SE_EXIT_USAGE;
                goto finish;
        }
        opterr = 0; /* our own messages: getopt's would echo a mistyped option's value */
        while ((opt = getopt_long(argc, argv, "hfo:qd:s:t:", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        want_help = true;
                        break;
                case 'q':
                        c.quiet = true;
                        break;
                case ARG_FOREGROUND:
                        c.foreground = true;
                        break;
                case ARG_LIST_SETTINGS:
                        list_settings();
                        status = 0;
                        goto finish;
                case 'd':
                        data_dir = optarg;
                        break;
                case 's':
                        server = optarg;
                        break;
                case 't':
                        free(c.settings.token);
                        c.settings.token = strdup(optarg);
                        if (!c.settings.token) {
                                status = SE_EXIT_SOFTWARE;
                                se_error_set(&e, -ENOMEM, "out of memory");
                                goto finish;
                        }
                        break;
                case ARG_VERSION:
                        printf("secrets-encrypt %s\n", SE_VERSION);
                        se_settings_done(&c.settings);
                        return 0;
                case ARG_CONFIG:
                        c.settings_path = optarg;
                        break;
                case 'f':
                        c.force = true;
                        seen(seen_opts, 'f');
                        break;
                case ARG_SKIP:
                        c.skip = true;
                        seen(seen_opts, 's');
                        break;
                case 'o':
                        /* as k3s: compared in lower case, anything but json is text */
                        c.json = strcasecmp(optarg, "json") == 0;
                        seen(seen_opts, 'o');
                        break;
                case ARG_ROLLING:
                        c.rolling = true;
                        seen(seen_opts, 'R');
                        break;
                case ARG_PURGE:
                        c.purge = true;
                        seen(seen_opts, 'U');
                        break;
                case ARG_DISCARD_KEYS:
                        c.discard_keys = true;
                        seen(seen_opts, 'X');
                        break;
                case ARG_FROM_CLUSTER:
                        c.from_cluster = true;
                        seen(seen_opts, 'F');
                        break;
                case ARG_FROM_LOCAL:
                        c.from_local = true;
                        seen(seen_opts, 'L');
                        break;
                case ARG_FOR:
                        c.setup_for = optarg;
                        seen(seen_opts, 'G');
                        break;
                case ARG_DRY_RUN:
                        c.dry_run = true;
                        seen(seen_opts, 'N');
                        break;
                case ARG_UNDO:
                        c.undo = true;
                        seen(seen_opts, 'V');
                        break;
                case ARG_ALLOW_ROLLBACK:
                        c.allow_rollback = true;
                        seen(seen_opts, 'B');
                        break;
                case ARG_RESTART:
                        c.restart = true;
                        break;
                case ARG_USER:
                        c.user = true;
                        break;
                case ARG_ROTATED_WITHIN:
                        c.rotated_within = optarg;
                        seen(seen_opts, 'W');
                        break;
                case ARG_ROTATE_DUE:
                        c.rotate_due = true;
                        seen(seen_opts, 'W');
                        break;
                case ARG_ENABLED:
                        c.want_enabled = true;
                        seen(seen_opts, 'E');
                        break;
                case ARG_DISABLED:
                        c.want_disabled = true;
                        seen(seen_opts, 'D');
                        break;
                case ARG_PROVIDER:
                        c.want_provider = optarg;
                        seen(seen_opts, 'P');
                        break;
                case ARG_CHECK:
                        c.check = true;
                        seen(seen_opts, 'C');
                        break;
                case ARG_SALT:
                        c.salt = true;
                        seen(seen_opts, 'T');
                        break;
                case '?':
                        if (optopt > 0 && optopt < 0x100 && strchr("odst", optopt))
                                status = usage_error(&e, "option -%c needs a value (see --help)", optopt);
                        else if (optopt > 0 && optopt < 0x100)
                                status = usage_error(&e, "unknown option -%c (see --help)", optopt);
                        else
                                status = usage_error(&e, "invalid option or missing value (see --help)");
                        goto finish;
                default:
                        if (opt >= ARG_SETTING && opt < ARG_SETTING + 32)
                                settings_args[opt - ARG_SETTING] = optarg;
                }
        }

        if (optind < argc && streq(argv[optind], "help")) {
                /* help [COMMAND] */
                want_help = true;
                optind++;
        }
        if (optind >= argc) {
                help();
                if (want_help) {
                        status = 0;
                        goto finish;
                }
                status = usage_error(&e, "no command given");
                goto finish;
        }
        for (cmd = 0; cmd < ELEMENTSOF(commands); cmd++)
                if (streq(argv[optind], commands[cmd].name))
                        break;
        if (cmd == ELEMENTSOF(commands)) {
                status = usage_error(&e, "unknown command \"%s\" (see --help)", argv[optind]);
                goto finish;
        }
        if (want_help) {
                help_command(cmd);
                status = 0;
                goto finish;
        }
        if (server && !server_is_local(server)) {
                status = usage_error(&e,
                                     "--server names another server: secrets-encrypt acts on the server it runs on; "
                                     "run it there (k3s's --server reaches a remote server's API)");
                goto finish;
        }
        for (const char *o = seen_opts; *o; o++)
                if (!strchr(commands[cmd].options, *o)) {
                        status = usage_error(&e, "option not valid for %s (see --help)", commands[cmd].name);
                        goto finish;
                }
        if (optind + 1 < argc) {
                if (!streq(commands[cmd].name, "validate") && !streq(commands[cmd].name, "hash") &&
                    !streq(commands[cmd].name, "restore-key") && !streq(commands[cmd].name, "forget-node")) {
                        status = usage_error(&e, "unexpected argument \"%s\"", argv[optind + 1]);
                        goto finish;
                }
                c.file = argv[optind + 1];
                if (optind + 2 < argc) {
                        status = usage_error(&e, "unexpected argument \"%s\"", argv[optind + 2]);
                        goto finish;
                }
        }

        /* Settings: defaults < file < flags. The default file may be absent; a named one may not. */
        /* NULL until a file or a flag names them: setup detects what is not given */
        free(c.settings.unit);
        free(c.settings.datastore_endpoint);
        c.settings.unit = c.settings.datastore_endpoint = NULL;
        r = se_settings_load(&c.settings, c.settings_path ? c.settings_path : SE_SETTINGS_DEFAULT_PATH,
                             !c.settings_path, &e);
        if (r < 0) {
                /* a named file that is missing: 66; one that is not a settings file: 64 */
                status = r == -ENOENT                                                     ? SE_EXIT_NOINPUT
                         : r == -EINVAL || r == -EISDIR || r == -ENOTDIR || r == -EBADMSG ? SE_EXIT_USAGE
                                                                                          : se_exit_code_from_errno(r);
                goto finish;
        }
        c.have_settings = r > 0; /* the packaged example, all comments, is no settings; flags are */
        if (data_dir) {
                size_t ep = 0;

                while (se_settings_keys[ep] && !streq(se_settings_keys[ep], "datastore-endpoint"))
                        ep++;
                r = apply_data_dir(&c.settings, data_dir, se_settings_keys[ep] && settings_args[ep], &e);
                if (r < 0) {
                        se_error_prefix(&e, r, "--data-dir");
                        status = SE_EXIT_USAGE;
                        goto finish;
                }
        }
        for (size_t i = 0; se_settings_keys[i]; i++)
                if (settings_args[i]) {
                        c.have_settings = true;
                        r = se_settings_set(&c.settings, se_settings_keys[i], settings_args[i], &e);
                        if (r < 0) {
                                se_error_prefix(&e, r, "--%s", se_settings_keys[i]);
                                status = SE_EXIT_USAGE;
                                goto finish;
                        }
                }

        /* kube-apiserver's KMSv1 gate as this cluster runs it (settings: kms-v1) */
        se_config_set_kms_v1_gate(c.settings.kms_v1);
        c.unit_given = c.settings.unit;
        c.datastore_given = c.settings.datastore_endpoint;
        if ((!c.unit_given && se_settings_set(&c.settings, "unit", SE_SETTINGS_DEFAULT_UNIT, &e) < 0) ||
            (!c.datastore_given &&
             se_settings_set(&c.settings, "datastore-endpoint", SE_SETTINGS_DEFAULT_DATASTORE, &e) < 0)) {
                status = SE_EXIT_SOFTWARE;
                goto finish;
        }
        /* ensure reports a refusal in its JSON answer: it checks for itself */
        r = streq(commands[cmd].name, "ensure") ? 0 : cli_check_host(&c, commands[cmd].name, &e);
        if (r < 0) {
                status = se_exit_code_from_errno(r);
                goto finish;
        }

        umask(0077);
        /* events concern the API server's unit (`journalctl -u UNIT` shows them); the terminal
         * shows progress once (the bar, not the progress events), and nothing but the result with
         * --quiet */
        se_log_set_object_unit(c.settings.unit);
        if (c.quiet)
                se_log_set_terminal_filter(0, LOG_WARNING);
        else
                se_log_set_terminal_filter(~(UINT64_C(1) << SE_EVENT_REENCRYPT_PROGRESS), LOG_DEBUG);
        /* hooks-dir and metrics-file follow every event of the command */
        se_fleet_observer_install(&c.settings);
        r = commands[cmd].run(&c, &e);
        status = r < 0 ? se_exit_code_from_errno(r) : 0;
        if (r < 0 && c.exit_status > 0) /* the transient unit's, its message already shown */
                status = c.exit_status;
        if (r < 0 && r == -EINVAL && !e.message)
                status = SE_EXIT_USAGE;
        if (refreshes_metrics(commands[cmd].name)) {
                se_error me = SE_ERROR_NULL;

                if (se_fleet_metrics_refresh(&c.settings, &me) < 0)
                        fprintf(stderr, "secrets-encrypt: warning: %s\n", se_error_message(&me));
                se_error_done(&me);
        }
        se_fleet_observer_remove();

finish:
        if (status != 0 && e.message)
                (void) se_redact_fields(e.message); /* the message may echo a file: no secret in it */
        if (status != 0 && c.exit_status == 0)
                fprintf(stderr, "secrets-encrypt: %s\n", se_error_message(&e));
        se_error_done(&e);
        se_settings_done(&c.settings);
        return status;
}
