/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Reads a unit the way systemd would load it from disk, for the few settings setup and the
 * safety check need (ExecStart=, Environment=, EnvironmentFile=). Reading files rather than
 * asking the manager works where systemd does not run (setup in a chroot, a host being
 * prepared, the tests), and gives the same answer for a unit that is not loaded yet. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-host.h"
#include "se-strv.h"
#include "se-util.h"

#define UNIT_FILE_MAX (1024u * 1024u)

static const char *const system_dirs[] = {
        "/etc/systemd/system",     "/run/systemd/system", "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system", "/lib/systemd/system",
};

_printf_(3, 4) static int push_printf(char ***l, size_t *n, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return se_strv_push(l, n, s);
}

static int search_path(bool user, char ***ret) {
        const char *env = secure_getenv("SYSTEMD_UNIT_PATH");
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        bool defaults = true;
        int r;

        if (env) {
                _cleanup_free_ char *copy = strdup(env);
                char *save = NULL;

                if (!copy)
                        return -ENOMEM;
                defaults = env[0] == '\0' || env[strlen(env) - 1] == ':';
                for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
                        if ((r = se_strv_push(&l, &n, d)) < 0)
                                return r;
        }
        if (defaults && !user) {
                for (size_t i = 0; i < ELEMENTSOF(system_dirs); i++)
                        if ((r = se_strv_push(&l, &n, system_dirs[i])) < 0)
                                return r;
        } else if (defaults) {
                const char *home = secure_getenv("HOME"), *cfg = secure_getenv("XDG_CONFIG_HOME");
                const char *rt = secure_getenv("XDG_RUNTIME_DIR"), *data = secure_getenv("XDG_DATA_HOME");

                if (cfg)
                        r = push_printf(&l, &n, "%s%s", cfg, "/systemd/user");
                else
                        r = home ? push_printf(&l, &n, "%s%s", home, "/.config/systemd/user") : 0;
                if (r < 0 || (r = se_strv_push(&l, &n, "/etc/systemd/user")) < 0)
                        return r;
                if (rt && (r = push_printf(&l, &n, "%s%s", rt, "/systemd/user")) < 0)
                        return r;
                if (data)
                        r = push_printf(&l, &n, "%s%s", data, "/systemd/user");
                else
                        r = home ? push_printf(&l, &n, "%s%s", home, "/.local/share/systemd/user") : 0;
                if (r < 0 || (r = se_strv_push(&l, &n, "/usr/local/lib/systemd/user")) < 0 ||
                    (r = se_strv_push(&l, &n, "/usr/lib/systemd/user")) < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

_public_ int se_unit_admin_dir(bool user, char **ret) {
        _cleanup_strv_free_ char **dirs = NULL;
        const char *env = secure_getenv("SYSTEMD_UNIT_PATH");
        int r;

        if (!env && !user) {
                *ret = strdup("/etc/systemd/system");
                return *ret ? 0 : -ENOMEM;
        }
        r = search_path(user, &dirs);
        if (r < 0)
                return r;
        if (!dirs || !dirs[0])
                return -ENOENT;
        *ret = strdup(dirs[0]);
        return *ret ? 0 : -ENOMEM;
}

/* name: prefix@instance.suffix → template prefix@.suffix */
typedef struct unit_name {
        const char *name;
        char *template; /* NULL unless an instance */
        char *instance;
        char *prefix; /* before '@' or the suffix */
} unit_name;

static int unit_name_parse(const char *name, unit_name *ret) {
        const char *at = strchr(name, '@'), *dot = strrchr(name, '.');

        *ret = (unit_name){.name = name};
        if (!dot || dot == name || strchr(name, '/'))
                return -EINVAL;
        ret->prefix = strndup(name, (size_t) ((at && at < dot ? at : dot) - name));
        if (!ret->prefix)
                return -ENOMEM;
        if (at && at < dot && at + 1 < dot) {
                ret->instance = strndup(at + 1, (size_t) (dot - at - 1));
                if (!ret->instance || asprintf(&ret->template, "%s@%s", ret->prefix, dot) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void unit_name_done(unit_name *u) {
        free(u->template);
        free(u->instance);
        free(u->prefix);
}

/* %i %I %n %N %p %P %%; any other specifier stays as written. */
static int expand_specifiers(const char *s, const unit_name *u, char **ret) {
        se_buf b = {};
        int r = 0;

        for (; *s && r >= 0; s++) {
                if (*s != '%' || !s[1]) {
                        r = se_buf_append(&b, s, 1);
                        continue;
                }
                s++;
                switch (*s) {
                case 'i':
                case 'I':
                        r = se_buf_append_str(&b, u->instance ? u->instance : "");
                        break;
                case 'n':
                        r = se_buf_append_str(&b, u->name);
                        break;
                case 'N': {
                        const char *dot = strrchr(u->name, '.');
                        r = se_buf_append(&b, u->name, (size_t) (dot - u->name));
                        break;
                }
                case 'p':
                case 'P':
                        r = se_buf_append_str(&b, u->prefix);
                        break;
                case '%':
                        r = se_buf_append(&b, "%", 1);
                        break;
                default:
                        r = se_buf_printf(&b, "%%%c", *s);
                }
        }
        return se_buf_take_str(&b, r, ret);
}

/* Splits a command line or an Environment= value into words: "…" and '…' quote, \ escapes. */
static int split_words(const char *s, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r = 0;

        for (;;) {
                se_buf w = {};
                char quote = 0, *word;

                while (*s && isspace((unsigned char) *s))
                        s++;
                if (!*s)
                        break;
                for (; *s && (quote || !isspace((unsigned char) *s)); s++) {
                        if (!quote && (*s == '"' || *s == '\'')) {
                                quote = *s;
                                continue;
                        }
                        if (quote && *s == quote) {
                                quote = 0;
                                continue;
                        }
                        if (*s == '\\' && s[1])
                                s++;
                        if ((r = se_buf_append(&w, s, 1)) < 0)
                                break;
                }
                r = se_buf_take_str(&w, r, &word);
                if (r >= 0)
                        r = se_strv_consume(&l, &n, word);
                if (r < 0)
                        return r;
        }
        if (!l && !(l = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static int push_all(char ***l, char **items) {
        size_t n = se_strv_length(*l);
        int r;

        for (char **p = items; p && *p; p++)
                if ((r = se_strv_push(l, &n, *p)) < 0)
                        return r;
        return 0;
}

static int read_environment_file(const char *spec, char ***env) {
        const char *path = spec[0] == '-' ? spec + 1 : spec;
        _cleanup_free_ uint8_t *data = NULL;
        size_t size, n = se_strv_length(*env);
        char *save = NULL;
        int r;

        r = se_read_file(path, UNIT_FILE_MAX, &data, &size);
        if (r < 0)
                return spec[0] == '-' || r == -ENOENT ? 0 : r;
        for (char *line = strtok_r((char *) data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *eq, *v;
                size_t len;

                while (isspace((unsigned char) *line))
                        line++;
                if (*line == '#' || *line == ';' || !(eq = strchr(line, '=')))
                        continue;
                v = eq + 1;
                len = strlen(v);
                while (len > 0 && isspace((unsigned char) v[len - 1]))
                        v[--len] = 0;
                if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
                        v[len - 1] = 0;
                        memmove(v, v + 1, len - 1);
                }
                if ((r = se_strv_push(env, &n, line)) < 0)
                        return r;
        }
        return 0;
}

static int apply_file(const char *path, const unit_name *name, se_unit_file *u) {
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;
        bool service = false;
        char *p, *end;
        int r;

        r = se_read_file(path, UNIT_FILE_MAX, &data, &size);
        if (r < 0)
                return r;
        /* continuation lines: a trailing backslash joins the next line with a space */
        for (p = (char *) data; (p = strstr(p, "\\\n")); p += 2)
                p[0] = p[1] = ' ';

        for (p = (char *) data; p && *p; p = end) {
                _cleanup_free_ char *value = NULL;
                char *line = p, *eq, *key;

                end = strchr(p, '\n');
                if (end)
                        *end++ = 0;
                while (isspace((unsigned char) *line))
                        line++;
                if (*line == '#' || *line == ';' || !*line)
                        continue;
                if (*line == '[') {
                        service = startswith(line, "[Service]");
                        continue;
                }
                if (!service || !(eq = strchr(line, '=')))
                        continue;
                *eq = 0;
                key = line;
                for (char *k = eq - 1; k >= key && isspace((unsigned char) *k); k--)
                        *k = 0;
                r = expand_specifiers(eq + 1, name, &value);
                if (r < 0)
                        return r;
                if (streq(key, "ExecStart")) {
                        char *v = value, **argv = NULL;
                        bool at = false;

                        while (isspace((unsigned char) *v))
                                v++;
                        for (; *v && strchr("@-:+!", *v); v++)
                                at = at || *v == '@';
                        if (!*v) { /* ExecStart= resets */
                                u->exec_start = se_strv_free(u->exec_start);
                                continue;
                        }
                        r = split_words(v, &argv);
                        if (r >= 0 && at && argv[0] && argv[1]) { /* "@path argv0 args": drop the argv[0] */
                                free(argv[1]);
                                memmove(argv + 1, argv + 2, (se_strv_length(argv) - 1) * sizeof(char *));
                        }
                        if (r >= 0)
                                r = push_all(&u->exec_start, argv);
                        se_strv_free(argv);
                        if (r < 0)
                                return r;
                } else if (streq(key, "Environment")) {
                        _cleanup_strv_free_ char **words = NULL;

                        if ((r = split_words(value, &words)) < 0 || (r = push_all(&u->environment, words)) < 0)
                                return r;
                } else if (streq(key, "EnvironmentFile")) {
                        char *v = value;

                        while (isspace((unsigned char) *v))
                                v++;
                        if (*v && (r = read_environment_file(v, &u->environment)) < 0)
                                return r;
                }
        }
        return 0;
}

static int cmp_basename(const void *a, const void *b) {
        const char *x = strrchr(*(char *const *) a, '/'), *y = strrchr(*(char *const *) b, '/');

        return strcmp(x, y);
}

/* Drop-ins of name (and of its template): by file name, a name in an earlier directory masking
 * the same name in a later one. */
static int collect_dropins(char **dirs, const unit_name *name, char ***ret) {
        _cleanup_strv_free_ char **l = NULL, **seen = NULL;
        size_t n = 0, n_seen = 0;
        int r;

        for (char **d = dirs; *d; d++)
                for (int t = 0; t < 2; t++) {
                        const char *unit = t == 0 ? name->name : name->template;
                        _cleanup_free_ char *dir = NULL;
                        struct dirent **ents = NULL;
                        int m;

                        if (!unit || asprintf(&dir, "%s/%s.d", *d, unit) < 0) {
                                if (unit)
                                        return -ENOMEM;
                                continue;
                        }
                        m = scandir(dir, &ents, NULL, alphasort);
                        for (int i = 0; i < m; i++) {
                                const char *f = ents[i]->d_name;
                                size_t len = strlen(f);

                                if (r = 0, len > 5 && streq(f + len - 5, ".conf") && !se_strv_contains(seen, f)) {
                                        r = se_strv_push(&seen, &n_seen, f);
                                        if (r >= 0)
                                                r = push_printf(&l, &n, "%s/%s", dir, f);
                                }
                                free(ents[i]);
                                if (r < 0) {
                                        while (++i < m)
                                                free(ents[i]);
                                        free(ents);
                                        return r;
                                }
                        }
                        free(ents);
                }
        if (l)
                qsort(l, n, sizeof(char *), cmp_basename);
        *ret = TAKE_PTR(l);
        return 0;
}

_public_ int se_unit_file_load(const char *unit, bool user, char *const *ignore, se_unit_file *ret, se_error *e) {
        _cleanup_strv_free_ char **dirs = NULL;
        se_unit_file u = {};
        unit_name name;
        int r;

        r = unit_name_parse(unit, &name);
        if (r < 0) {
                unit_name_done(&name);
                return se_error_set(e, r, "\"%s\" is not a unit name", unit);
        }
        r = search_path(user, &dirs);
        for (char **d = dirs; r >= 0 && d && *d && !u.path; d++)
                for (int t = 0; t < 2 && !u.path; t++) {
                        const char *f = t == 0 ? name.name : name.template;
                        _cleanup_free_ char *p = NULL;
                        struct stat st;

                        if (!f)
                                continue;
                        if (asprintf(&p, "%s/%s", *d, f) < 0)
                                r = -ENOMEM;
                        else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && !se_strv_contains(ignore, p))
                                u.path = TAKE_PTR(p);
                }
        if (r >= 0 && !u.path)
                r = se_error_set(e, -ENOENT, "no unit file for %s in %s", unit,
                                 secure_getenv("SYSTEMD_UNIT_PATH") ? "$SYSTEMD_UNIT_PATH"
                                 : user                             ? "the user unit directories"
                                        : "/etc/systemd/system or /usr/lib/systemd/system");
        else if (r >= 0 && (r = apply_file(u.path, &name, &u)) < 0)
                se_error_set(e, r, "%s: cannot read: %s", u.path, strerror(-r));
        if (r >= 0 && (r = collect_dropins(dirs, &name, &u.dropin_paths)) < 0)
                se_error_set(e, r, "cannot list drop-ins of %s: %s", unit, strerror(-r));
        for (char **d = u.dropin_paths; r >= 0 && d && *d; d++)
                if (!se_strv_contains(ignore, *d) && (r = apply_file(*d, &name, &u)) < 0)
                        se_error_set(e, r, "%s: cannot read: %s", *d, strerror(-r));
        unit_name_done(&name);
        if (r < 0 && e && !e->message)
                se_error_set(e, r, "%s", strerror(-r));
        if (r < 0) {
                se_unit_file_done(&u);
                return r;
        }
        *ret = u;
        return 0;
}

_public_ void se_unit_file_done(se_unit_file *u) {
        free(u->path);
        se_strv_free(u->exec_start);
        se_strv_free(u->environment);
        se_strv_free(u->dropin_paths);
        *u = (se_unit_file){};
}
