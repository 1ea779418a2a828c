/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* setup: takes a k3s, rke2 or kube-apiserver host from "installed" to "in charge", and --undo
 * gives it back. Every change is planned first (file, old content, new content), so --dry-run
 * shows exactly what a real run writes, a re-run with nothing to do writes nothing, and a refusal
 * leaves every file as it was. The distribution's own files (k3s's server/cred) are only read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "macro.h"
#include "se-cluster.h"
#include "se-config.h"
#include "se-hook.h"
#include "se-host.h"
#include "se-state.h"
#include "se-store.h"
#include "se-strv.h"
#include "se-util.h"

#ifndef SE_LIBEXECDIR
#define SE_LIBEXECDIR "/usr/local/libexec"
#endif

#define SETUP_SNIPPET          "50-secrets-encrypt.yaml"
#define SETUP_DROPIN           "50-secrets-encrypt.conf"
#define SETUP_EXECSTART_DROPIN "60-secrets-encrypt-config.conf"
#define DEFAULT_STATE_DIR      "/var/lib/secrets-encrypt"

/* Planned contents can be key material (an imported config): wiped when dropped. */
static void erase_and_free(char *s) {
        erase_and_freep(&s);
}

typedef struct change {
        char *path;
        char *content; /* NULL: remove the file */
        char *old;     /* current content, NULL when absent */
        mode_t mode;
        bool unit_file; /* read by systemd: daemon-reload afterwards */
} change;

typedef struct plan {
        change *v;
        size_t n;
} plan;

static void plan_done(plan *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->v[i].path);
                erase_and_free(p->v[i].content);
                erase_and_free(p->v[i].old);
        }
        free(p->v);
        *p = (plan){};
}

static int read_text(const char *path, char **ret) {
        uint8_t *data = NULL;
        size_t size;
        int r;

        r = se_read_file(path, 1024 * 1024, &data, &size);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = (char *) data;
        return 0;
}

/* Adds a change unless the file already has that content (or is already absent). Takes content. */
static int plan_add(plan *p, const char *path, char *content, mode_t mode, bool unit_file, se_error *e) {
        char *old = NULL;
        change *v;
        int r;

        r = read_text(path, &old);
        if (r < 0) {
                erase_and_free(content);
                return se_error_set(e, r, "%s: cannot read: %s", path, strerror(-r));
        }
        if ((!old && !content) || (old && content && streq(old, content))) {
                erase_and_free(old);
                erase_and_free(content);
                return 0;
        }
        v = reallocarray(p->v, p->n + 1, sizeof(change));
        if (!v) {
                erase_and_free(old);
                erase_and_free(content);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        p->v = v;
        p->v[p->n] =
                (change){.path = strdup(path), .content = content, .old = old, .mode = mode, .unit_file = unit_file};
        if (!p->v[p->n].path) {
                erase_and_free(old);
                erase_and_free(content);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        p->n++;
        return 0;
}

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *d = strdup(path);

        if (!d)
                return -ENOMEM;
        for (char *s = strchr(d + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = 0;
                if (mkdir(d, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        return 0;
}

static int plan_apply(const plan *p, se_error *e) {
        for (size_t i = 0; i < p->n; i++) {
                const change *c = &p->v[i];
                int r;

                if (!c->content) {
                        if (unlink(c->path) < 0 && errno != ENOENT)
                                return se_error_set(e, -errno, "cannot remove %s: %m", c->path);
                        continue;
                }
                r = mkdir_parents(c->path, c->mode & 0077 ? 0755 : 0700);
                if (r >= 0)
                        r = se_write_file_atomic(c->path, c->content, strlen(c->content), c->mode);
                if (r < 0)
                        return se_error_set(e, r, "cannot write %s: %s", c->path, strerror(-r));
        }
        return 0;
}

/* Key material never reaches the terminal: the state directory's files are shown by name. */
static bool secret_file(const char *path) {
        return strstr(path, "/encryption-config.json") != NULL;
}

static void print_lines(const char *prefix, const char *text) {
        for (const char *l = text; l && *l;) {
                const char *nl = strchr(l, '\n');
                int len = nl ? (int) (nl - l) : (int) strlen(l);

                printf("%s%.*s\n", prefix, len, l);
                l = nl ? nl + 1 : l + len;
        }
}

static void plan_print_diff(const plan *p) {
        for (size_t i = 0; i < p->n; i++) {
                const change *c = &p->v[i];

                printf("--- %s%s\n+++ %s%s\n", c->old ? c->path : "/dev/null", c->old ? "" : "",
                       c->content ? c->path : "/dev/null", "");
                if (secret_file(c->path)) {
                        printf("%s\n", c->content ? "+(encryption config imported; keys not shown)"
                                                  : "-(encryption config; keys not shown)");
                        continue;
                }
                print_lines("-", c->old);
                print_lines("+", c->content);
        }
}

static bool is_unit_dropin(const char *path) {
        size_t n = strlen(path);

        return n > 5 && streq(path + n - 5, ".conf");
}

/* The content a path will have after the plan (planned, else on disk); NULL when none. */
static int plan_content(const plan *p, const char *path, char **ret) {
        for (size_t i = 0; i < p->n; i++)
                if (streq(p->v[i].path, path)) {
                        *ret = strdup_null(p->v[i].content);
                        return !p->v[i].content || *ret ? 0 : -ENOMEM;
                }
        return read_text(path, ret);
}

static bool plan_has_unit_files(const plan *p) {
        for (size_t i = 0; i < p->n; i++)
                if (p->v[i].unit_file)
                        return true;
        return false;
}

/* The hook beside this program (a build tree, a test's copy), else the installed one. */
static int hook_path(char **ret) {
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
        char *p = NULL;

        if (self) {
                char *slash = strrchr(self, '/');

                *slash = 0;
                if (asprintf(&p, "%s/secrets-encrypt-hook", self) < 0)
                        return -ENOMEM;
                if (access(p, X_OK) == 0) {
                        *ret = p;
                        return 0;
                }
                free(p);
        }
        if (asprintf(&p, "%s/secrets-encrypt/secrets-encrypt-hook", SE_LIBEXECDIR) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

static char *hook_dropin(const char *hook, const char *state_dir, const char *dist) {
        char *s = NULL;

        if (asprintf(&s,
                     "# Written by `secrets-encrypt setup` (removed by `secrets-encrypt setup --undo`).\n"
                     "# Validates the encryption config and advances key rotation before %s starts.\n"
                     "[Unit]\n"
                     "Documentation=man:secrets-encrypt(8)\n"
                     "RequiresMountsFor=%s\n"
                     "\n"
                     "[Service]\n"
                     "# No \"-\" prefix: a non-zero exit stops the server from starting on a config that would\n"
                     "# break it. Appended after the unit's own ExecStartPre= lines.\n"
                     "ExecStartPre=%s --unit=%%n\n"
                     "NotifyAccess=exec\n"
                     "LoadCredential=secrets-encrypt-token\n",
                     dist, state_dir, hook) < 0)
                return NULL;
        return s;
}

/* One ExecStart argument, quoted for a unit file: specifiers and variables escaped. */
static int append_unit_arg(se_buf *b, const char *a) {
        int r = se_buf_append(b, " \"", 2);

        for (; r >= 0 && *a; a++)
                r = *a == '"' || *a == '\\' ? se_buf_printf(b, "\\%c", *a)
                    : *a == '%'             ? se_buf_append(b, "%%", 2)
                    : *a == '$'             ? se_buf_append(b, "$$", 2)
                                            : se_buf_append(b, a, 1);
        return r < 0 ? r : se_buf_append(b, "\"", 1);
}

/* A drop-in that restarts ExecStart= with --encryption-provider-config set to ours. */
static int execstart_dropin(const se_host *h, const char *config, char **ret) {
        se_buf b = {};
        bool replaced = false;
        int r;

        r = se_buf_printf(&b, "# Written by `secrets-encrypt setup` (removed by `secrets-encrypt setup --undo`): the\n"
                              "# unit's own command with --encryption-provider-config naming the config\n"
                              "# secrets-encrypt manages.\n"
                              "[Service]\nExecStart=\nExecStart=");
        for (char **a = h->unit_file.exec_start; r >= 0 && a && *a; a++) {
                if (a != h->unit_file.exec_start && startswith(*a, "--encryption-provider-config=")) {
                        _cleanup_free_ char *f = NULL;

                        if (asprintf(&f, "--encryption-provider-config=%s", config) < 0)
                                r = -ENOMEM;
                        else
                                r = append_unit_arg(&b, f);
                        replaced = true;
                } else if (a != h->unit_file.exec_start && streq(*a, "--encryption-provider-config") && a[1]) {
                        r = append_unit_arg(&b, *a);
                        if (r >= 0)
                                r = append_unit_arg(&b, config);
                        a++;
                        replaced = true;
                } else
                        r = a == h->unit_file.exec_start ? se_buf_append_str(&b, *a) : append_unit_arg(&b, *a);
        }
        if (r >= 0 && !replaced) {
                _cleanup_free_ char *f = NULL;

                if (asprintf(&f, "--encryption-provider-config=%s", config) < 0)
                        r = -ENOMEM;
                else
                        r = append_unit_arg(&b, f);
        }
        if (r >= 0)
                r = se_buf_append(&b, "\n", 1);
        return se_buf_take_str(&b, r, ret);
}

static char *dist_snippet(const se_host *h, const char *state_dir, const char *config) {
        char *s = NULL;
        int r;

        if (h->kind == SE_HOST_RKE2)
                /* kube-apiserver is a static pod: the state directory must be mounted into it */
                r = asprintf(&s,
                             "# Written by `secrets-encrypt setup` (removed by `secrets-encrypt setup --undo`):\n"
                             "# secrets-encrypt manages the encryption keys; rke2's own management is off.\n"
                             "secrets-encryption: false\n"
                             "kube-apiserver-arg+:\n"
                             "  - encryption-provider-config=%s\n"
                             "kube-apiserver-extra-mount+:\n"
                             "  - %s:%s:ro\n",
                             config, state_dir, state_dir);
        else
                r = asprintf(&s,
                             "# Written by `secrets-encrypt setup` (removed by `secrets-encrypt setup --undo`):\n"
                             "# secrets-encrypt manages the encryption keys; k3s's own management is off.\n"
                             "secrets-encryption: false\n"
                             "kube-apiserver-arg+:\n"
                             "  - encryption-provider-config=%s\n",
                             config);
        return r < 0 ? NULL : s;
}

/* The settings file: the operator's lines are kept, the keys setup owns are rewritten. */
static int settings_text(const char *path, const se_host *h, const char *state_dir, char **ret) {
        static const char *const owned[] = {
                "state-dir",         "unit",      "datastore-endpoint", "datastore-cafile", "datastore-certfile",
                "datastore-keyfile", "token-file"};
        _cleanup_free_ char *old = NULL;
        se_buf b = {};
        int r;

        r = read_text(path, &old);
        if (r < 0)
                return r;
        if (!old)
                r = se_buf_printf(&b, "# secrets-encrypt settings (secrets-encrypt(8)). `secrets-encrypt setup` "
                                      "rewrites the\n# keys it detected and keeps every other line.\n");
        for (char *l = old, *nl; r >= 0 && l && *l; l = nl ? nl + 1 : l + strlen(l)) {
                bool mine = false;

                nl = strchr(l, '\n');
                for (size_t i = 0; i < ELEMENTSOF(owned); i++)
                        if (strneq(l, owned[i], strlen(owned[i])) && l[strlen(owned[i])] == ':')
                                mine = true;
                if (!mine)
                        r = se_buf_append(&b, l, nl ? (size_t) (nl - l) + 1 : strlen(l));
                if (!mine && !nl)
                        r = se_buf_append(&b, "\n", 1);
        }
        if (r >= 0)
                r = se_buf_printf(&b, "state-dir: %s\nunit: %s\n", state_dir, h->unit);
        if (r >= 0 && h->datastore_endpoint)
                r = se_buf_printf(&b, "datastore-endpoint: \"%s\"\n", h->datastore_endpoint);
        if (r >= 0 && h->datastore_cafile)
                r = se_buf_printf(&b, "datastore-cafile: %s\n", h->datastore_cafile);
        if (r >= 0 && h->datastore_certfile)
                r = se_buf_printf(&b, "datastore-certfile: %s\n", h->datastore_certfile);
        if (r >= 0 && h->datastore_keyfile)
                r = se_buf_printf(&b, "datastore-keyfile: %s\n", h->datastore_keyfile);
        if (r >= 0 && h->token_file && h->datastore && strstr(h->datastore, "etcd"))
                r = se_buf_printf(&b, "token-file: %s\n", h->token_file);
        return se_buf_take_str(&b, r, ret);
}

static bool at_rest(se_stage s) {
        return s == SE_STAGE_START || s == SE_STAGE_REENCRYPT_FINISHED;
}

/* Plans the import of the encryption config the server reads today (k3s's server/cred, or a
 * plain unit's own --encryption-provider-config) into our state directory, byte for byte, so the
 * first start under secrets-encrypt reads the very same keys. */
static int plan_import(plan *p, const char *src_config, const char *src_state, const char *state_dir, se_error *e) {
        _cleanup_free_ char *ours = NULL, *ours_state = NULL, *bytes = NULL, *existing = NULL, *stage_text = NULL;
        se_config *cfg = NULL;
        char hash[SE_SHA256_HEX_SIZE];
        int r;

        if (asprintf(&ours, "%s/encryption-config.json", state_dir) < 0 ||
            asprintf(&ours_state, "%s/encryption-state.json", state_dir) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = read_text(src_config, &bytes);
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read: %s", src_config, strerror(-r));
        if (!bytes)
                return 0; /* nothing to import */
        r = se_config_parse(src_config, bytes, strlen(bytes), &cfg, e);
        if (r >= 0)
                r = se_config_validate(cfg, false, e);
        se_config_free(cfg);
        if (r < 0)
                return se_error_prefix(e, r, "cannot import %s", src_config);
        r = se_sha256_hex(bytes, strlen(bytes), hash);
        if (r < 0)
                return se_error_set(e, r, "cannot hash %s", src_config);

        r = read_text(ours, &existing);
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read: %s", ours, strerror(-r));
        if (existing) {
                bool same = streq(existing, bytes);

                erase_and_free(TAKE_PTR(existing));
                if (same)
                        return 0;
                erase_and_free(TAKE_PTR(bytes));
                return se_error_set(e, -ESTALE,
                                    "%s holds other keys than %s, which the API server reads today: importing "
                                    "would lose one set. Move %s away if it is stale, then run setup again",
                                    ours, src_config, state_dir);
        }

        r = src_state ? read_text(src_state, &stage_text) : 0;
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read: %s", src_state, strerror(-r));
        if (stage_text) {
                se_stage stage;
                char stage_hash[SE_SHA256_HEX_SIZE];

                if (se_annotation_parse(stage_text, &stage, stage_hash) < 0 || !streq(stage_hash, hash) ||
                    !at_rest(stage)) {
                        erase_and_free(TAKE_PTR(bytes));
                        return se_error_set(e, -ESTALE,
                                            "%s: a key rotation is under way (%s): finish it with the "
                                            "distribution's own `secrets-encrypt` command, then run setup again",
                                            src_state, stage_text);
                }
        } else if (asprintf(&stage_text, "start-%s", hash) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");

        r = plan_add(p, ours, TAKE_PTR(bytes), 0600, false, e);
        if (r >= 0)
                r = plan_add(p, ours_state, TAKE_PTR(stage_text), 0600, false, e);
        return r;
}

/* HA: the first server publishes its config at its next start; the others must import the same. */
static int check_cluster(const se_settings *s, const plan *p, const char *config, se_error *e) {
        _cleanup_free_ char *bytes = NULL;
        se_store_options o = {.endpoint = s->datastore_endpoint,
                              .cafile = s->datastore_cafile,
                              .certfile = s->datastore_certfile,
                              .keyfile = s->datastore_keyfile,
                              .timeout_usec = 10ULL * 1000000ULL};
        se_cluster_config cc = {};
        se_cluster *cl = NULL;
        se_store *st = NULL;
        char hash[SE_SHA256_HEX_SIZE];
        int r;

        r = plan_content(p, config, &bytes);
        if (r < 0 || !bytes)
                return 0;
        r = se_sha256_hex(bytes, strlen(bytes), hash);
        erase_and_free(TAKE_PTR(bytes));
        if (r < 0)
                return r;
        r = se_store_open(&o, &st, NULL);
        if (r >= 0)
                r = se_cluster_open(st, NULL, &cl, NULL);
        if (r >= 0)
                r = se_cluster_peek_config(cl, &cc, NULL);
        if (r >= 0 && !streq(cc.hash, hash))
                r = se_error_set(e, -ESTALE,
                                 "the cluster already runs another encryption config (generation %" PRIu64
                                 ", hash %.12s…) than the one imported here (%.12s…): this server's k3s config does "
                                 "not match the cluster's. Make its secrets-encryption files match the first "
                                 "server's, then run setup again",
                                 cc.generation, cc.hash, hash);
        else if (r < 0)
                r = 0; /* no record yet (this server publishes at its next start) or etcd not up */
        se_cluster_config_done(&cc);
        se_cluster_close(cl);
        se_store_close(st);
        return r;
}

/* Every aescbc/aesgcm/secretbox key (type, name, secret) of ours that theirs lacks, by name. */
static int keys_missing(const se_config *ours, const se_config *theirs, char ***ret) {
        _cleanup_strv_free_ char **missing = NULL;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < ours->n_resources; i++)
                for (size_t j = 0; j < ours->resources[i].n_providers; j++) {
                        const se_provider *p = &ours->resources[i].providers[j];
                        const se_key_list *lists[] = {p->aescbc, p->aesgcm, p->secretbox};

                        for (size_t l = 0; l < ELEMENTSOF(lists); l++)
                                for (size_t k = 0; lists[l] && k < lists[l]->n_keys; k++) {
                                        const se_key *key = &lists[l]->keys[k];
                                        bool found = false;

                                        for (size_t a = 0; theirs && a < theirs->n_resources && !found; a++)
                                                for (size_t b = 0; b < theirs->resources[a].n_providers && !found;
                                                     b++) {
                                                        const se_provider *q = &theirs->resources[a].providers[b];
                                                        const se_key_list *t = l == 0   ? q->aescbc
                                                                               : l == 1 ? q->aesgcm
                                                                                        : q->secretbox;

                                                        for (size_t c = 0; t && c < t->n_keys && !found; c++)
                                                                found = streq(t->keys[c].name, key->name) &&
                                                                        streq(t->keys[c].secret, key->secret);
                                                }
                                        if (!found && !se_strv_contains(missing, key->name) &&
                                            (r = se_strv_push(&missing, &n, key->name)) < 0)
                                                return r;
                                }
                }
        *ret = TAKE_PTR(missing);
        return 0;
}

static int load_config_file(const char *path, se_config **ret, se_error *e) {
        _cleanup_free_ char *bytes = NULL;
        int r;

        r = read_text(path, &bytes);
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read: %s", path, strerror(-r));
        if (!bytes) {
                *ret = NULL;
                return 0;
        }
        r = se_config_parse(path, bytes, strlen(bytes), ret, e);
        erase_and_free(TAKE_PTR(bytes));
        return r;
}

/* --undo is safe when, without our files, the API server still reads every key we use, or when
 * nothing is encrypted with them (encryption disabled and its re-encryption finished). */
static int check_undo_safe(cli *c, const se_host *without, const char *state_dir, se_error *e) {
        _cleanup_free_ char *ours_path = NULL, *after = NULL, *names = NULL;
        _cleanup_strv_free_ char **missing = NULL;
        se_config *ours = NULL, *theirs = NULL;
        se_state st = {};
        int r;

        if (asprintf(&ours_path, "%s/encryption-config.json", state_dir) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = load_config_file(ours_path, &ours, e);
        if (r < 0 || !ours)
                return r;

        if ((without->kind == SE_HOST_K3S || without->kind == SE_HOST_RKE2) && without->secrets_encryption)
                r = asprintf(&after, "%s/encryption-config.json", without->dist_cred_dir) < 0 ? -ENOMEM : 0;
        else if (without->encryption_config)
                r = (after = strdup(without->encryption_config)) ? 0 : -ENOMEM;
        if (r >= 0 && after)
                r = load_config_file(after, &theirs, e);
        if (r >= 0)
                r = keys_missing(ours, theirs, &missing);
        if (r < 0)
                goto finish;
        if (!missing)
                goto finish;

        if (!theirs && se_state_load(state_dir, &st, NULL) >= 0 && st.config && st.config->n_resources > 0 &&
            st.config->resources[0].n_providers > 0 && st.config->resources[0].providers[0].identity && st.has_stage &&
            at_rest(st.stage) && !st.pending_reencrypt) {
                r = 0; /* disabled and re-encrypted: every value is plain text */
                goto finish;
        }
        for (char **m = missing; *m; m++)
                if (asprintf(&ours_path, "%s%s%s", names ? names : "", names ? ", " : "", *m) >= 0) {
                        free(names);
                        names = TAKE_PTR(ours_path);
                }
        r = se_error_set(e, -ESTALE,
                         "without secrets-encrypt, %s would read %s, which lacks key(s) %s: every value written "
                         "with them would become unreadable. Either run `secrets-encrypt disable` and let its "
                         "re-encryption finish, or make %s hold the same keys, then run setup --undo again",
                         without->unit, after ? after : "no encryption config at all", names ? names : "?",
                         after ? after : "the server's encryption config");
finish:
        (void) c;
        se_state_done(&st);
        se_config_free(ours);
        se_config_free(theirs);
        return r;
}

/* Our files on this host, whether they exist or not. */
static int our_files(const se_host *h, bool user, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *admin = NULL;
        size_t n = 0;
        int r;

        r = se_unit_admin_dir(user, &admin);
        if (r < 0)
                return r;
        if (h->kind == SE_HOST_K3S || h->kind == SE_HOST_RKE2) {
                char *s = NULL;

                if (asprintf(&s, "%s.d/%s", h->config_path, SETUP_SNIPPET) < 0 || (r = se_strv_consume(&l, &n, s)) < 0)
                        return -ENOMEM;
        } else {
                char *s = NULL;

                if (asprintf(&s, "%s/%s.d/%s", admin, h->unit, SETUP_EXECSTART_DROPIN) < 0 ||
                    (r = se_strv_consume(&l, &n, s)) < 0)
                        return -ENOMEM;
        }
        {
                char *s = NULL;

                if (asprintf(&s, "%s/%s.d/%s", admin, h->unit, SETUP_DROPIN) < 0 ||
                    (r = se_strv_consume(&l, &n, s)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static bool systemd_runs(bool user) {
        _cleanup_free_ char *p = NULL;
        const char *rt = secure_getenv("XDG_RUNTIME_DIR");

        if (!user)
                return access("/run/systemd/system", F_OK) == 0;
        return rt && asprintf(&p, "%s/systemd/private", rt) >= 0 && access(p, F_OK) == 0;
}

static int finish_plan(cli *c, plan *p, const se_host *h, const char *what, se_error *e) {
        int r;

        if (c->dry_run) {
                plan_print_diff(p);
                printf("%s: %zu file(s) would change (dry run, nothing written)\n", what, p->n);
                return 0;
        }
        if (p->n == 0) {
                printf("%s: nothing to change, %s is already %s\n", what, h->unit,
                       streq(what, "setup") ? "set up" : "back to its own management");
                return 0;
        }
        r = plan_apply(p, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n; i++)
                printf("%s %s\n", p->v[i].content ? "wrote" : "removed", p->v[i].path);
        if (plan_has_unit_files(p)) {
                if (systemd_runs(c->user)) {
                        r = se_manager_reload(c->user, e);
                        if (r < 0)
                                return se_error_prefix(e, r, "files written");
                        printf("reloaded the %s service manager\n", c->user ? "user" : "system");
                } else
                        printf("systemd is not running: run `systemctl daemon-reload` once it is\n");
        }
        printf("To take effect: systemctl %srestart %s\n", c->user ? "--user " : "", h->unit);
        return 0;
}

static int setup_undo(cli *c, const se_host *h, const char *state_dir, se_error *e) {
        _cleanup_strv_free_ char **mine = NULL;
        se_host without = {};
        plan p = {};
        int r;

        r = our_files(h, c->user, &mine);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        r = se_host_detect(h->kind, h->unit, c->user, mine, &without, e);
        if (r >= 0)
                r = check_undo_safe(c, &without, state_dir, e);
        for (char **f = mine; r >= 0 && *f; f++)
                r = plan_add(&p, *f, NULL, 0644, is_unit_dropin(*f), e);
        if (r >= 0)
                r = finish_plan(c, &p, h, "setup --undo", e);
        plan_done(&p);
        se_host_done(&without);
        return r;
}

static int take_datastore(se_host *h, const se_settings *s) {
        const char *const from[] = {s->datastore_endpoint, s->datastore_cafile, s->datastore_certfile,
                                    s->datastore_keyfile};
        char **const to[] = {&h->datastore_endpoint, &h->datastore_cafile, &h->datastore_certfile,
                             &h->datastore_keyfile};

        for (size_t i = 0; i < ELEMENTSOF(from); i++) {
                free(*to[i]);
                *to[i] = NULL;
                if (from[i] && !(*to[i] = strdup(from[i])))
                        return -ENOMEM;
        }
        free(h->datastore);
        h->datastore = strdup(startswith(s->datastore_endpoint, "sqlite://") ? "sqlite" : "given");
        return h->datastore ? 0 : -ENOMEM;
}

int cmd_setup(cli *c, se_error *e) {
        se_host_kind kind = c->setup_for ? se_host_kind_from_name(c->setup_for) : SE_HOST_NONE;
        _cleanup_free_ char *state_dir = NULL, *config = NULL, *admin = NULL, *hook = NULL, *text = NULL;
        const char *settings_path = c->settings_path ? c->settings_path : SE_SETTINGS_DEFAULT_PATH;
        const char *dist;
        se_host h = {};
        plan p = {};
        int r;

        if (c->setup_for && kind == SE_HOST_NONE)
                return se_error_set(e, -EINVAL, "--for %s: expected k3s, rke2 or kube-apiserver", c->setup_for);
        r = se_host_detect(kind, c->unit_given ? c->settings.unit : NULL, c->user, NULL, &h, e);
        if (r < 0)
                return r;
        dist = se_host_kind_name(h.kind);

        /* Never k3s's server/cred: it belongs to k3s's bootstrap sync. */
        if (h.dist_cred_dir &&
            (startswith(c->settings.state_dir, h.dist_cred_dir) || startswith(c->settings.state_dir, h.data_dir)))
                state_dir = strdup(DEFAULT_STATE_DIR);
        else
                state_dir = strdup(c->settings.state_dir);
        if (!state_dir || asprintf(&config, "%s/encryption-config.json", state_dir) < 0) {
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto finish;
        }

        if (c->undo) {
                r = setup_undo(c, &h, state_dir, e);
                goto finish;
        }
        /* a config file cannot turn off what the unit's command line turns on */
        if (h.secrets_encryption_flag) {
                r = se_error_set(e, -ESTALE,
                                 "%s runs with --secrets-encryption on its command line (%s): remove the flag from "
                                 "its ExecStart= (setup imports %s's keys and turns its own management off in "
                                 "config.yaml.d), then run setup again",
                                 dist, h.unit_file.path ? h.unit_file.path : h.unit, dist);
                goto finish;
        }

        /* the operator's --datastore-endpoint (and TLS files) win over detection */
        if (c->datastore_given) {
                r = take_datastore(&h, &c->settings);
                if (r < 0) {
                        r = se_error_set(e, r, "out of memory");
                        goto finish;
                }
        }
        if (!h.datastore_endpoint) {
                if (h.kind == SE_HOST_K3S || h.kind == SE_HOST_RKE2)
                        r = se_error_set(e, -ENOENT,
                                         "%s has no datastore yet (no %s/server/db/etcd/config): start %s once so it "
                                         "creates its datastore, then run setup again (or pass --datastore-endpoint)",
                                         dist, h.data_dir, h.unit);
                else
                        r = se_error_set(e, -ENOENT,
                                         "cannot tell where %s keeps its data (no --etcd-servers in its ExecStart=): "
                                         "pass --datastore-endpoint (and --datastore-cafile/-certfile/-keyfile)",
                                         h.unit);
                goto finish;
        }

        /* 1. the keys the server reads today, imported byte for byte */
        if (h.kind == SE_HOST_K3S || h.kind == SE_HOST_RKE2) {
                if (h.secrets_encryption || streq(c->settings.state_dir, h.dist_cred_dir)) {
                        _cleanup_free_ char *src = NULL, *src_state = NULL;

                        if (asprintf(&src, "%s/encryption-config.json", h.dist_cred_dir) < 0 ||
                            asprintf(&src_state, "%s/encryption-state.json", h.dist_cred_dir) < 0) {
                                r = se_error_set(e, -ENOMEM, "out of memory");
                                goto finish;
                        }
                        r = plan_import(&p, src, src_state, state_dir, e);
                } else if (h.encryption_config && !streq(h.encryption_config, config))
                        r = plan_import(&p, h.encryption_config, NULL, state_dir, e);
        } else if (h.encryption_config && !streq(h.encryption_config, config))
                r = plan_import(&p, h.encryption_config, NULL, state_dir, e);
        if (r < 0)
                goto finish;

        /* 2. our settings */
        r = settings_text(settings_path, &h, state_dir, &text);
        if (r < 0) {
                r = se_error_set(e, r, "%s: %s", settings_path, strerror(-r));
                goto finish;
        }
        r = plan_add(&p, settings_path, TAKE_PTR(text), 0644, false, e);
        if (r < 0)
                goto finish;

        /* 3. the API server reads our config */
        r = se_unit_admin_dir(c->user, &admin);
        if (r < 0) {
                r = se_error_set(e, r, "cannot find the unit directory: %s", strerror(-r));
                goto finish;
        }
        if (h.kind == SE_HOST_K3S || h.kind == SE_HOST_RKE2) {
                _cleanup_free_ char *path = NULL;
                char *snippet = dist_snippet(&h, state_dir, config);

                if (!snippet || asprintf(&path, "%s.d/%s", h.config_path, SETUP_SNIPPET) < 0) {
                        free(snippet);
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
                r = plan_add(&p, path, snippet, 0600, false, e);
        } else {
                _cleanup_free_ char *path = NULL;
                char *dropin = NULL;

                if (!h.unit_file.exec_start) {
                        r = se_error_set(e, -ENOENT, "%s has no ExecStart= to add --encryption-provider-config to",
                                         h.unit_file.path);
                        goto finish;
                }
                r = execstart_dropin(&h, config, &dropin);
                if (r >= 0 && asprintf(&path, "%s/%s.d/%s", admin, h.unit, SETUP_EXECSTART_DROPIN) < 0)
                        r = -ENOMEM;
                if (r < 0) {
                        free(dropin);
                        r = se_error_set(e, r, "out of memory");
                        goto finish;
                }
                r = plan_add(&p, path, dropin, 0644, true, e);
        }
        if (r < 0)
                goto finish;

        /* 4. the hook before every start */
        {
                _cleanup_free_ char *path = NULL;
                char *dropin;

                r = hook_path(&hook);
                if (r < 0 || asprintf(&path, "%s/%s.d/%s", admin, h.unit, SETUP_DROPIN) < 0 ||
                    !(dropin = hook_dropin(hook, state_dir, dist))) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto finish;
                }
                r = plan_add(&p, path, dropin, 0644, true, e);
                if (r < 0)
                        goto finish;
        }

        /* 5. HA: the same keys as the cluster's */
        if (h.datastore && strstr(h.datastore, "etcd")) {
                se_settings s = c->settings;

                s.datastore_endpoint = h.datastore_endpoint;
                s.datastore_cafile = h.datastore_cafile;
                s.datastore_certfile = h.datastore_certfile;
                s.datastore_keyfile = h.datastore_keyfile;
                r = check_cluster(&s, &p, config, e);
                if (r < 0)
                        goto finish;
        }

        printf("Detected %s (%s), datastore %s%s%s\n", dist, h.unit_file.path ? h.unit_file.path : h.unit,
               h.datastore ? h.datastore : "unknown", h.datastore_endpoint ? " " : "",
               h.datastore_endpoint ? h.datastore_endpoint : "");
        r = finish_plan(c, &p, &h, "setup", e);
        if (r >= 0 && h.datastore && (streq(h.datastore, "postgres") || streq(h.datastore, "mysql")))
                printf("Note: kine on %s. Several servers on one SQL datastore are not coordinated yet: if %s is "
                       "the only one, add `single-server: true` to %s; otherwise every change is refused.\n",
                       h.datastore, h.unit, settings_path);
finish:
        plan_done(&p);
        se_host_done(&h);
        return r;
}
