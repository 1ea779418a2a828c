/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

#include "se-error.h"
#include "se-settings.h"

/* What runs the API server on this host, how it is configured and where its datastore is:
 * read from the unit files and the distribution's own config, never by starting anything.
 * SPEC §11 lists the facts this follows. */

typedef enum se_host_kind {
        SE_HOST_NONE = 0, /* nothing detected */
        SE_HOST_K3S,
        SE_HOST_RKE2,
        SE_HOST_KUBE_APISERVER, /* a plain unit whose ExecStart runs kube-apiserver */
        _SE_HOST_KIND_MAX,
} se_host_kind;

const char *se_host_kind_name(se_host_kind k);
se_host_kind se_host_kind_from_name(const char *s); /* SE_HOST_NONE when unknown */
/* k3s*.service is k3s, rke2-server.service rke2, any other unit a plain kube-apiserver unit. */
se_host_kind se_host_kind_from_unit(const char *unit);
const char *se_host_default_unit(se_host_kind k);

/* A unit as systemd would load it from its files: the unit file, then drop-ins by name. */
typedef struct se_unit_file {
        char *path;          /* the unit file found */
        char **exec_start;   /* argv of the ExecStart= command, specifiers expanded (a oneshot
                              * unit's several commands one after the other) */
        char **environment;  /* KEY=VALUE, from Environment= and EnvironmentFile=, in order */
        char **dropin_paths; /* drop-ins applied */
} se_unit_file;

/* Loads UNIT from the search path: $SYSTEMD_UNIT_PATH when set (a trailing ':' appends the
 * defaults), else systemd's system (or, with user, per-user) directories. Files listed in ignore
 * (NULL-terminated, may be NULL) are skipped: what the unit would be without them. -ENOENT when
 * no file. */
int se_unit_file_load(const char *unit, bool user, char *const *ignore, se_unit_file *ret, se_error *e);
void se_unit_file_done(se_unit_file *u);
/* The directory where an administrator's files for the unit go (/etc/systemd/system, or the
 * first directory of $SYSTEMD_UNIT_PATH; per-user: $XDG_CONFIG_HOME/systemd/user). */
int se_unit_admin_dir(bool user, char **ret);

/* A k3s/rke2 config: config.yaml then config.yaml.d/ *.yaml|*.yml in lexical order, a later file
 * replacing a key's value and "key+:" appending to it (k3s pkg/configfilearg). */
typedef struct se_dist_config {
        char **keys;
        char ***values; /* each a NULL-terminated list */
        size_t n;
        char **files; /* the files read, in merge order */
} se_dist_config;

int se_dist_config_load(const char *main_path, char *const *ignore, se_dist_config *ret, se_error *e);
void se_dist_config_done(se_dist_config *c);
/* The last value of key (a scalar's value, a list's last item), NULL when absent. */
const char *se_dist_config_get(const se_dist_config *c, const char *key);
char *const *se_dist_config_list(const se_dist_config *c, const char *key);

typedef struct se_host {
        se_host_kind kind;
        char *unit;
        se_unit_file unit_file;       /* .path NULL when the unit has no file */
        char *config_path;            /* k3s/rke2: /etc/rancher/<dist>/config.yaml (may not exist) */
        se_dist_config config;        /* k3s/rke2: merged config */
        char *data_dir;               /* k3s/rke2 */
        bool secrets_encryption;      /* k3s/rke2 manage encryption themselves (--secrets-encryption) */
        bool secrets_encryption_flag; /* ... because the unit's command line says so (a config file
                                       * cannot turn that off) */
        char *secrets_encryption_provider;
        char **apiserver_args; /* kube-apiserver flags: kube-apiserver-arg values (k3s/rke2) or
                                * the unit's ExecStart arguments */
        char *datastore;       /* "sqlite", "embedded-etcd", "etcd", "postgres", "mysql" or NULL */
        char *datastore_endpoint;
        char *datastore_cafile;
        char *datastore_certfile;
        char *datastore_keyfile;
        char *token_file;          /* <data-dir>/server/token when present */
        char *dist_cred_dir;       /* <data-dir>/server/cred: the distribution's own encryption files */
        char *encryption_config;   /* the --encryption-provider-config the server reads, or NULL */
        char **encryption_configs; /* every one named (a oneshot unit's commands have several) */
} se_host;

/* Detects the host. kind SE_HOST_NONE: the first of k3s.service, rke2-server.service and
 * kube-apiserver.service that has a unit file (-ENOENT if none). unit NULL: the kind's default.
 * ignore: files to leave out (the host as it would be without them), may be NULL. */
int se_host_detect(se_host_kind kind, const char *unit, bool user, char *const *ignore, se_host *ret, se_error *e);
void se_host_done(se_host *h);
/* Only the datastore of a k3s/rke2 data directory (k3s's --data-dir): embedded etcd's gateway and
 * TLS files when its etcd config exists, else SQLite; datastore NULL for etcd not run yet. */
int se_host_detect_data_dir(se_host_kind kind, const char *data_dir, se_host *ret, se_error *e);

/* 0 when the API server is configured to read config_path as its encryption config, else
 * -ESTALE with the fix: for k3s/rke2 the merged config (or the unit's flags) must name it with
 * kube-apiserver-arg and leave secrets-encryption off; for a plain unit its ExecStart. */
int se_host_check_reads_config(const se_host *h, const char *config_path, se_error *e);

/* The same for the settings' unit (its kind from its name) and state-dir's encryption-config.json. */
int se_host_check_settings(const se_settings *s, bool user, se_error *e);
