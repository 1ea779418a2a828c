/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Which distribution runs the API server, with which flags, on which datastore (SPEC §11). The
 * precedence is k3s's: a command-line flag of the unit, then its environment (K3S_… / RKE2_…),
 * then the merged config files; list flags (kube-apiserver-arg) collect all of them. */
#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-host.h"
#include "se-settings.h"
#include "se-strv.h"
#include "se-util.h"

static const char *const kind_names[_SE_HOST_KIND_MAX] = {
        [SE_HOST_NONE] = "none",
        [SE_HOST_K3S] = "k3s",
        [SE_HOST_RKE2] = "rke2",
        [SE_HOST_KUBE_APISERVER] = "kube-apiserver",
};

static const char *const default_units[_SE_HOST_KIND_MAX] = {
        [SE_HOST_K3S] = "k3s.service",
        [SE_HOST_RKE2] = "rke2-server.service",
        [SE_HOST_KUBE_APISERVER] = "kube-apiserver.service",
};

_public_ const char *se_host_kind_name(se_host_kind k) {
        return k >= 0 && k < _SE_HOST_KIND_MAX ? kind_names[k] : NULL;
}

_public_ se_host_kind se_host_kind_from_name(const char *s) {
        for (int k = SE_HOST_K3S; k < _SE_HOST_KIND_MAX; k++)
                if (s && streq(s, kind_names[k]))
                        return (se_host_kind) k;
        return SE_HOST_NONE;
}

_public_ se_host_kind se_host_kind_from_unit(const char *unit) {
        if (fnmatch("k3s*.service", unit, 0) == 0)
                return SE_HOST_K3S;
        if (fnmatch("rke2-server*.service", unit, 0) == 0)
                return SE_HOST_RKE2;
        return SE_HOST_KUBE_APISERVER;
}

_public_ const char *se_host_default_unit(se_host_kind k) {
        return k > SE_HOST_NONE && k < _SE_HOST_KIND_MAX ? default_units[k] : NULL;
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

_printf_(2, 3) static int set_printf(char **field, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int set_str(char **field, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

/* The value of --name in argv ("--name=v", "--name v"; with a short alias "-d v"). NULL if absent;
 * with list, every occurrence is appended. */
static const char *flag_value(char *const *argv, const char *name, const char *alias, char ***list, int *r) {
        const char *last = NULL;
        size_t n = se_strv_length(list ? *list : NULL), len = strlen(name);

        for (size_t i = 0; argv && argv[i]; i++) {
                const char *a = argv[i], *v = NULL;

                if (a[0] == '-' && a[1] == '-' && strneq(a + 2, name, len) && a[2 + len] == '=')
                        v = a + 3 + len;
                else if (((a[0] == '-' && a[1] == '-' && streq(a + 2, name)) || (alias && streq(a, alias))) &&
                         argv[i + 1])
                        v = argv[++i];
                if (!v)
                        continue;
                last = v;
                if (list && (*r = se_strv_push(list, &n, v)) < 0)
                        return NULL;
        }
        return last;
}

static const char *env_value(char *const *env, const char *name) {
        const char *last = NULL;
        size_t len = strlen(name);

        for (size_t i = 0; env && env[i]; i++)
                if (strneq(env[i], name, len) && env[i][len] == '=')
                        last = env[i] + len + 1;
        return last;
}

/* A Go/urfave boolean flag: "--x", "--x=true", "--x=false"; else the config value. */
static bool bool_setting(char *const *argv, const char *name, const char *config_value) {
        size_t len = strlen(name);
        int v = -1;

        for (size_t i = 0; argv && argv[i]; i++) {
                const char *a = argv[i];

                if (!startswith(a, "--") || !strneq(a + 2, name, len))
                        continue;
                if (a[2 + len] == '\0')
                        v = 1;
                else if (a[2 + len] == '=')
                        v = streq(a + 3 + len, "true") || streq(a + 3 + len, "1");
        }
        if (v >= 0)
                return v;
        return config_value && (streq(config_value, "true") || streq(config_value, "1"));
}

/* The first URL of a comma list, preferring a loopback https one (the JSON gateway). */
static int first_url(const char *list, char **ret) {
        _cleanup_free_ char *copy = strdup(list);
        char *save = NULL, *pick = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *u = strtok_r(copy, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
                if (!pick)
                        pick = u;
                if (startswith(u, "https://127.0.0.1") || startswith(u, "https://localhost") ||
                    startswith(u, "https://[::1]")) {
                        pick = u;
                        break;
                }
        }
        if (!pick)
                return -ENOENT;
        *ret = strdup(pick);
        return *ret ? 0 : -ENOMEM;
}

static int detect_datastore(se_host *h, const char *prefix, se_error *e) {
        char *const *argv = h->unit_file.exec_start, *const *env = h->unit_file.environment;
        static const struct {
                const char *flag;
                size_t field;
        } tls[] = {
                {"datastore-cafile", offsetof(se_host, datastore_cafile)},
                {"datastore-certfile", offsetof(se_host, datastore_certfile)},
                {"datastore-keyfile", offsetof(se_host, datastore_keyfile)},
        };
        _cleanup_free_ char *env_name = NULL, *etcd_config = NULL;
        const char *ep;
        int r = 0;

        if (asprintf(&env_name, "%s_DATASTORE_ENDPOINT", prefix) < 0)
                return -ENOMEM;
        ep = flag_value(argv, "datastore-endpoint", NULL, NULL, &r);
        if (!ep)
                ep = env_value(env, env_name);
        if (!ep)
                ep = se_dist_config_get(&h->config, "datastore-endpoint");

        if (ep && !isempty(ep)) {
                const char *kind = startswith(ep, "postgres://") || startswith(ep, "postgresql://") ? "postgres"
                                   : startswith(ep, "mysql://")                                     ? "mysql"
                                   : startswith(ep, "sqlite://")                                    ? "sqlite"
                                   : startswith(ep, "https://") || startswith(ep, "http://")        ? "etcd"
                                                                                                    : NULL;
                if (!kind)
                        return se_error_set(e, -EOPNOTSUPP,
                                            "%s's datastore-endpoint has a scheme secrets-encrypt does not serve "
                                            "(expected sqlite://, https://, postgres:// or mysql://)",
                                            se_host_kind_name(h->kind));
                if ((r = set_str(&h->datastore, kind)) < 0 || (r = set_str(&h->datastore_endpoint, ep)) < 0)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(tls); i++) {
                        const char *v = flag_value(argv, tls[i].flag, NULL, NULL, &r);
                        char **field = (char **) ((uint8_t *) h + tls[i].field);

                        if (!v)
                                v = se_dist_config_get(&h->config, tls[i].flag);
                        if (v && (r = set_str(field, v)) < 0)
                                return r;
                }
                return 0;
        }

        /* Embedded etcd: k3s writes etcd's config file; the JSON gateway is the HTTP listener. */
        if (asprintf(&etcd_config, "%s/server/db/etcd/config", h->data_dir) < 0)
                return -ENOMEM;
        if (exists(etcd_config)) {
                se_dist_config ec = {};
                const char *urls;

                r = se_dist_config_load(etcd_config, NULL, &ec, e);
                if (r < 0)
                        return r;
                urls = se_dist_config_get(&ec, "listen-client-http-urls");
                if (isempty(urls))
                        urls = se_dist_config_get(&ec, "listen-client-urls");
                r = urls ? first_url(urls, &h->datastore_endpoint) : -ENOENT;
                se_dist_config_done(&ec);
                if (r == -ENOENT)
                        return se_error_set(e, -EBADMSG, "%s: no listen-client-http-urls", etcd_config);
                if (r < 0 || (r = set_str(&h->datastore, "embedded-etcd")) < 0 ||
                    (r = set_printf(&h->datastore_cafile, "%s/server/tls/etcd/server-ca.crt", h->data_dir)) < 0 ||
                    (r = set_printf(&h->datastore_certfile, "%s/server/tls/etcd/client.crt", h->data_dir)) < 0 ||
                    (r = set_printf(&h->datastore_keyfile, "%s/server/tls/etcd/client.key", h->data_dir)) < 0)
                        return r;
                return 0;
        }
        if (h->kind == SE_HOST_RKE2 ||
            bool_setting(argv, "cluster-init", se_dist_config_get(&h->config, "cluster-init")))
                return 0; /* etcd that has not run yet: nothing to point at */
        if ((r = set_str(&h->datastore, "sqlite")) < 0 ||
            (r = set_printf(&h->datastore_endpoint, "sqlite://%s/server/db/state.db", h->data_dir)) < 0)
                return r;
        return 0;
}

/* kube-apiserver's own flags name its etcd; a kine in front of it (unix:// or a local port)
 * hides the real datastore, which the operator then names. */
static int detect_kube_etcd(se_host *h) {
        static const struct {
                const char *flag;
                size_t field;
        } flags[] = {
                {"etcd-servers", offsetof(se_host, datastore_endpoint)},
                {"etcd-cafile", offsetof(se_host, datastore_cafile)},
                {"etcd-certfile", offsetof(se_host, datastore_certfile)},
                {"etcd-keyfile", offsetof(se_host, datastore_keyfile)},
        };
        const char *servers;
        int r = 0;

        servers = flag_value(h->apiserver_args, "etcd-servers", NULL, NULL, &r);
        if (!servers || !(startswith(servers, "https://") || startswith(servers, "http://")))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                const char *v = flag_value(h->apiserver_args, flags[i].flag, NULL, NULL, &r);

                if (v && (r = set_str((char **) ((uint8_t *) h + flags[i].field), v)) < 0)
                        return r;
        }
        return set_str(&h->datastore, "etcd");
}

static int detect_dist(se_host *h, char *const *ignore, se_error *e) {
        const char *dist = h->kind == SE_HOST_K3S ? "k3s" : "rke2", *prefix = h->kind == SE_HOST_K3S ? "K3S" : "RKE2";
        char *const *argv = h->unit_file.exec_start, *const *env = h->unit_file.environment;
        _cleanup_free_ char *env_name = NULL, *path = NULL;
        const char *v;
        int r = 0;

        /* --config/-c and K3S_CONFIG_FILE name another main file */
        if (asprintf(&env_name, "%s_CONFIG_FILE", prefix) < 0)
                return -ENOMEM;
        v = flag_value(argv, "config", "-c", NULL, &r);
        if (!v)
                v = env_value(env, env_name);
        if (v)
                r = set_str(&h->config_path, v);
        else
                r = set_printf(&h->config_path, "/etc/rancher/%s/config.yaml", dist);
        if (r < 0)
                return r;
        r = se_dist_config_load(h->config_path, ignore, &h->config, e);
        if (r < 0)
                return r;

        free(env_name);
        if (asprintf(&env_name, "%s_DATA_DIR", prefix) < 0)
                return -ENOMEM;
        v = flag_value(argv, "data-dir", "-d", NULL, &r);
        if (!v)
                v = env_value(env, env_name);
        if (!v)
                v = se_dist_config_get(&h->config, "data-dir");
        if (v)
                r = set_str(&h->data_dir, v);
        else
                r = set_printf(&h->data_dir, "/var/lib/rancher/%s", dist);
        if (r < 0)
                return r;

        h->secrets_encryption =
                bool_setting(argv, "secrets-encryption", se_dist_config_get(&h->config, "secrets-encryption"));
        h->secrets_encryption_flag = bool_setting(argv, "secrets-encryption", NULL);
        v = flag_value(argv, "secrets-encryption-provider", NULL, NULL, &r);
        if (!v)
                v = se_dist_config_get(&h->config, "secrets-encryption-provider");
        if (v && (r = set_str(&h->secrets_encryption_provider, v)) < 0)
                return r;

        /* kube-apiserver-arg: the config's list, then the unit's flags */
        for (char *const *a = se_dist_config_list(&h->config, "kube-apiserver-arg"); a && *a; a++) {
                size_t n = se_strv_length(h->apiserver_args);

                if ((r = se_strv_push(&h->apiserver_args, &n, *a)) < 0)
                        return r;
        }
        (void) flag_value(argv, "kube-apiserver-arg", NULL, &h->apiserver_args, &r);
        if (r < 0)
                return r;

        if (asprintf(&path, "%s/server/token", h->data_dir) < 0)
                return -ENOMEM;
        if (exists(path))
                h->token_file = TAKE_PTR(path);
        if ((r = set_printf(&h->dist_cred_dir, "%s/server/cred", h->data_dir)) < 0)
                return r;
        return detect_datastore(h, prefix, e);
}

/* Every --encryption-provider-config in these flags, in order (kube-apiserver uses the last; a
 * oneshot unit's commands each have their own). */
static int encryption_configs_of(char *const *args, bool bare, char ***ret) {
        static const char item[] = "encryption-provider-config=";
        size_t n = 0;
        int r = 0;

        if (!bare) { /* a command line: --name=v or --name v */
                (void) flag_value(args, "encryption-provider-config", NULL, ret, &r);
                return r;
        }
        for (size_t i = 0; r >= 0 && args && args[i]; i++) {
                const char *a = args[i];

                while (*a == '-') /* kube-apiserver-arg items: name=v, also written --name=v */
                        a++;
                if (startswith(a, item))
                        r = se_strv_push(ret, &n, a + STRLEN(item));
        }
        return r;
}

_public_ int se_host_detect(se_host_kind kind, const char *unit, bool user, char *const *ignore, se_host *ret,
                            se_error *e) {
        se_host h = {};
        int r = 0;

        if (kind == SE_HOST_NONE && !unit) {
                for (int k = SE_HOST_K3S; k < _SE_HOST_KIND_MAX && kind == SE_HOST_NONE; k++) {
                        se_unit_file u;

                        if (se_unit_file_load(default_units[k], user, ignore, &u, NULL) >= 0) {
                                se_unit_file_done(&u);
                                kind = (se_host_kind) k;
                        }
                }
                if (kind == SE_HOST_NONE)
                        return se_error_set(e, -ENOENT,
                                            "no k3s.service, rke2-server.service or kube-apiserver.service unit file "
                                            "found: name the server with --for and --unit");
        }
        if (kind == SE_HOST_NONE)
                kind = se_host_kind_from_unit(unit);
        h.kind = kind;
        r = set_str(&h.unit, unit ? unit : default_units[kind]);
        if (r < 0)
                goto fail;
        r = se_unit_file_load(h.unit, user, ignore, &h.unit_file, e);
        if (r == -ENOENT && kind != SE_HOST_KUBE_APISERVER)
                r = 0; /* k3s and rke2 are also configured by their files; the unit may come later */
        if (r < 0)
                goto fail;

        if (kind == SE_HOST_K3S || kind == SE_HOST_RKE2)
                r = detect_dist(&h, ignore, e);
        else {
                size_t n = 0;

                for (char **a = h.unit_file.exec_start; a && *a && r >= 0; a++)
                        if (a != h.unit_file.exec_start)
                                r = se_strv_push(&h.apiserver_args, &n, *a);
                if (r >= 0)
                        r = detect_kube_etcd(&h);
        }
        if (r >= 0)
                r = encryption_configs_of(h.apiserver_args, kind != SE_HOST_KUBE_APISERVER, &h.encryption_configs);
        if (r >= 0 && h.encryption_configs &&
            !(h.encryption_config = strdup(h.encryption_configs[se_strv_length(h.encryption_configs) - 1])))
                r = -ENOMEM;
        if (r < 0)
                goto fail;
        *ret = h;
        return 0;
fail:
        if (r == -ENOMEM)
                se_error_set(e, r, "out of memory");
        se_host_done(&h);
        return r;
}

_public_ int se_host_detect_data_dir(se_host_kind kind, const char *data_dir, se_host *ret, se_error *e) {
        se_host h = {.kind = kind};
        int r;

        h.data_dir = strdup(data_dir);
        if (!h.data_dir)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = detect_datastore(&h, kind == SE_HOST_RKE2 ? "RKE2" : "K3S", e);
        if (r < 0) {
                if (r == -ENOMEM)
                        se_error_set(e, r, "out of memory");
                se_host_done(&h);
                return r;
        }
        *ret = h;
        return 0;
}

_public_ void se_host_done(se_host *h) {
        free(h->unit);
        se_unit_file_done(&h->unit_file);
        free(h->config_path);
        se_dist_config_done(&h->config);
        free(h->data_dir);
        free(h->secrets_encryption_provider);
        se_strv_free(h->apiserver_args);
        free(h->datastore);
        free(h->datastore_endpoint);
        free(h->datastore_cafile);
        free(h->datastore_certfile);
        free(h->datastore_keyfile);
        free(h->token_file);
        free(h->dist_cred_dir);
        free(h->encryption_config);
        se_strv_free(h->encryption_configs);
        *h = (se_host){};
}

static bool same_file(const char *a, const char *b) {
        struct stat sa, sb;

        if (streq(a, b))
                return true;
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool names_config(const se_host *h, const char *config_path) {
        for (char **c = h->encryption_configs; c && *c; c++)
                if (same_file(*c, config_path))
                        return true;
        return false;
}

_public_ int se_host_check_reads_config(const se_host *h, const char *config_path, se_error *e) {
        if (h->kind == SE_HOST_K3S || h->kind == SE_HOST_RKE2) {
                const char *dist = se_host_kind_name(h->kind);

                if (h->secrets_encryption_flag)
                        return se_error_set(e, -ESTALE,
                                            "%s manages secrets encryption itself (--secrets-encryption in the "
                                            "ExecStart= of %s): a key changed here would never be loaded. Remove "
                                            "the flag from the unit, then run `secrets-encrypt setup`",
                                            dist, h->unit_file.path ? h->unit_file.path : h->unit);
                if (h->secrets_encryption)
                        return se_error_set(e, -ESTALE,
                                            "%s manages secrets encryption itself (secrets-encryption is on in %s): "
                                            "a key changed here would never be loaded. Run `secrets-encrypt setup` "
                                            "to take over from %s",
                                            dist, h->config_path, dist);
                if (!names_config(h, config_path))
                        return se_error_set(
                                e, -ESTALE,
                                "%s's API server does not read %s (%s): a key changed here would never be loaded. Run "
                                "`secrets-encrypt setup`, or add \"kube-apiserver-arg+: "
                                "[encryption-provider-config=%s]\" to %s.d/50-secrets-encrypt.yaml",
                                dist, config_path,
                                h->encryption_config ? h->encryption_config : "no encryption-provider-config",
                                config_path, h->config_path);
                return 0;
        }
        if (!h->unit_file.path)
                return se_error_set(e, -ESTALE,
                                    "%s has no unit file: cannot tell whether its API server reads %s. Run "
                                    "`secrets-encrypt setup`, or set `unit` to the API server's unit",
                                    h->unit, config_path);
        if (!names_config(h, config_path))
                return se_error_set(e, -ESTALE,
                                    "%s does not start the API server with --encryption-provider-config=%s (%s, "
                                    "its ExecStart= in %s): a key changed here would never be loaded. Run "
                                    "`secrets-encrypt setup`, or add the flag to its ExecStart=",
                                    h->unit, config_path, h->encryption_config ? h->encryption_config : "no such flag",
                                    h->unit_file.path);
        return 0;
}

_public_ int se_host_check_settings(const se_settings *s, bool user, se_error *e) {
        _cleanup_free_ char *config = NULL;
        se_host h = {};
        int r;

        /* Servers sharing kine on SQL have no registry to agree through (HA is coordinated over
         * etcd only): a key one of them generates or promotes, the others never load. */
        if (s->datastore_endpoint && !s->single_server &&
            (startswith(s->datastore_endpoint, "postgres://") || startswith(s->datastore_endpoint, "postgresql://") ||
             startswith(s->datastore_endpoint, "mysql://")))
                return se_error_set(e, -ESTALE,
                                    "kine on PostgreSQL/MySQL: several API servers sharing this datastore are not "
                                    "coordinated by secrets-encrypt, and a key one of them changes the others would "
                                    "never load. If %s is the only server on it, set `single-server: true` in the "
                                    "settings",
                                    s->unit);

        r = se_host_detect(se_host_kind_from_unit(s->unit), s->unit, user, NULL, &h, e);
        if (r < 0)
                return r == -ENOENT ? se_error_prefix(e, -ESTALE, "cannot tell how %s starts", s->unit) : r;
        if (asprintf(&config, "%s/encryption-config.json", s->state_dir) < 0)
                r = se_error_set(e, -ENOMEM, "out of memory");
        else
                r = se_host_check_reads_config(&h, config, e);
        se_host_done(&h);
        return r;
}
