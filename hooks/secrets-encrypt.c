/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "macro.h"
#include "se-fleet-hooks.h"

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
        {"verify", cmd_verify, "", "Decrypt every stored secret read-only and count them per key"},
        {"facts", cmd_facts, "", "Print the state as JSON facts (Ansible local fact, Facter external fact)"},
        {"ensure", cmd_ensure, "WEDPCT", "Reach a wanted state idempotently, as fleet tools expect"},
        {"forget-node", cmd_forget_node, "",
         "HA: remove a server gone for good from the registry so a stuck rotation resumes: forget-node NAME"},
        {"reset-state", cmd_reset_state, "X",
         "After a lost configuration: forget the old keys' state so a new config can be generated"},
        {"restore-key", cmd_restore_key, "",
         "Bring a removed key back from the archive as a read key: restore-key NAME"},
};

static void help(void) {
        printf("Usage: secrets-encrypt [OPTIONS] COMMAND [ARGS]\n\n"
               "Manage Kubernetes secrets encryption keys, as `k3s secrets-encrypt`.\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-12s %s\n", commands[i].name, commands[i].help);
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
               "      --enabled, --disabled      ensure: encryption on or off\n"
               "      --provider P               ensure: aescbc or secretbox; a change rotates (migration)\n"
               "      --check                    ensure: report what would be done, change nothing\n"
               "      --salt                     ensure: add Salt's stateful last line changed=… comment=…\n"
               "\nSettings (each also a key in the settings file):\n"
               "      --config FILE                      Settings file (default %s, env SECRETS_ENCRYPT_CONFIG)\n"
               "      --state-dir DIR                    Holds encryption-config.json and encryption-state.json\n"
               "      --node-name NAME                   This server's name (default: hostname)\n"
               "      --secrets-encryption-provider P    aescbc or secretbox, for new keys\n"
               "      --datastore-endpoint URL           sqlite://PATH or http(s)://h1:2379,…\n"
               "      --datastore-cafile/-certfile/-keyfile FILE   TLS for etcd\n"
               "      --token-file FILE                  Cluster token (default: credential, "
               "/etc/secrets-encrypt/token)\n"
               "      --unit UNIT                        The API server unit (default k3s.service)\n"
               "      --hooks-dir DIR  --metrics-file FILE  --timeout DURATION\n"
               "      --reencrypt-rate N                 Secrets per second, 0 = unlimited\n"
               "      --auto-advance BOOL                Rolling rotation driven by restarts\n"
               "      --removed-key-retention DURATION   How long removed keys stay archived for restore-key\n"
               "                                         (default 7d, 0 = not kept)\n"
               "\n  -h, --help     Show this help\n      --version  Show the version\n"
               "\nExit codes: 0 ok, 1 failure, 64 usage, 65 undecryptable data, 66 missing input,\n"
               "69 datastore unavailable, 70 internal, 73 cannot write, 74 I/O error, 75 busy,\n"
               "77 permission denied, 78 invalid configuration, 79 precondition not met.\n"
               "See secrets-encrypt(8).\n",
               SE_SETTINGS_DEFAULT_PATH);
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
        ARG_ALLOW_ROLLBACK,
        ARG_SETTING, /* + index into se_settings_keys */
};

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
                {"allow-rollback", no_argument, NULL, ARG_ALLOW_ROLLBACK},
        };
        _cleanup_free_ char *seen_opts = calloc(1, 32);
        const char *settings_args[32] = {};
        se_error e = SE_ERROR_NULL;
        cli c = {};
        size_t n = 0, cmd;
        int opt, r, status;

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

        while ((opt = getopt_long(argc, argv, "hfo:", options, NULL)) >= 0) {
                switch (opt) {
                case 'h':
                        help();
                        se_settings_done(&c.settings);
                        return 0;
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
                        if (!streq(optarg, "json") && !streq(optarg, "text")) {
                                status = usage_error(&e, "invalid --output %s: expected text or json", optarg);
                                goto finish;
                        }
                        c.json = streq(optarg, "json");
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
                        status = usage_error(&e, "invalid option (see --help)");
                        goto finish;
                default:
                        if (opt >= ARG_SETTING && opt < ARG_SETTING + 32)
                                settings_args[opt - ARG_SETTING] = optarg;
                }
        }

        if (optind >= argc) {
                help();
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
        r = se_settings_load(&c.settings, c.settings_path ? c.settings_path : SE_SETTINGS_DEFAULT_PATH,
                             !c.settings_path, &e);
        if (r < 0) {
                status = r == -EINVAL ? SE_EXIT_USAGE : se_exit_code_from_errno(r);
                goto finish;
        }
        for (size_t i = 0; se_settings_keys[i]; i++)
                if (settings_args[i]) {
                        r = se_settings_set(&c.settings, se_settings_keys[i], settings_args[i], &e);
                        if (r < 0) {
                                se_error_prefix(&e, r, "--%s", se_settings_keys[i]);
                                status = SE_EXIT_USAGE;
                                goto finish;
                        }
                }

        umask(0077);
        /* hooks-dir and metrics-file follow every event of the command */
        se_fleet_observer_install(&c.settings);
        r = commands[cmd].run(&c, &e);
        status = r < 0 ? se_exit_code_from_errno(r) : 0;
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
        if (status != 0)
                fprintf(stderr, "secrets-encrypt: %s\n", se_error_message(&e));
        se_error_done(&e);
        se_settings_done(&c.settings);
        return status;
}
