/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* k3s's and rke2's config files, merged the way k3s's pkg/configfilearg merges them: config.yaml,
 * then config.yaml.d/ *.yaml and *.yml in lexical order; a later file replaces a key's value, and
 * "key+:" appends to it. Values are kept as strings (scalars) or lists of strings. Nested
 * mappings are skipped: no key k3s reads from these files is one. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "macro.h"
#include "se-host.h"
#include "se-strv.h"
#include "se-util.h"

#define DIST_CONFIG_MAX (1024u * 1024u)

static ssize_t find_key(const se_dist_config *c, const char *key) {
        for (size_t i = 0; i < c->n; i++)
                if (streq(c->keys[i], key))
                        return (ssize_t) i;
        return -1;
}

static int set_values(se_dist_config *c, const char *key, char **values, bool append) {
        ssize_t i = find_key(c, key);
        size_t n;
        int r;

        if (i < 0) {
                char **k = reallocarray(c->keys, c->n + 1, sizeof(char *));
                char ***v;

                if (!k)
                        return -ENOMEM;
                c->keys = k;
                v = reallocarray(c->values, c->n + 1, sizeof(char **));
                if (!v)
                        return -ENOMEM;
                c->values = v;
                c->keys[c->n] = strdup(key);
                if (!c->keys[c->n])
                        return -ENOMEM;
                c->values[c->n] = NULL;
                i = (ssize_t) c->n++;
        }
        if (!append)
                c->values[i] = se_strv_free(c->values[i]);
        n = se_strv_length(c->values[i]);
        for (char **p = values; p && *p; p++)
                if ((r = se_strv_push(&c->values[i], &n, *p)) < 0)
                        return r;
        if (!c->values[i] && !(c->values[i] = calloc(1, sizeof(char *))))
                return -ENOMEM;
        return 0;
}

/* One file: a mapping of key to scalar or list of scalars. */
static int load_one(se_dist_config *c, const char *path, se_error *e) {
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_free_ char *key = NULL;
        _cleanup_strv_free_ char **list = NULL;
        yaml_parser_t parser;
        yaml_event_t ev;
        size_t size, n_list = 0;
        int depth = 0, skip = 0, r = 0;
        bool in_list = false, done = false;

        r = se_read_file(path, DIST_CONFIG_MAX, &data, &size);
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read: %s", path, strerror(-r));
        if (!yaml_parser_initialize(&parser))
                return se_error_set(e, -ENOMEM, "out of memory");
        yaml_parser_set_input_string(&parser, data, size);

        while (!done && r >= 0) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        r = se_error_set(e, -EBADMSG, "%s:%zu: invalid YAML: %s", path, parser.problem_mark.line + 1,
                                         parser.problem ? parser.problem : "parse error");
                        break;
                }
                if (skip > 0) { /* inside a nested value being skipped */
                        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT)
                                skip++;
                        else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT)
                                skip--;
                        if (skip == 0)
                                free(TAKE_PTR(key));
                        yaml_event_delete(&ev);
                        continue;
                }
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        done = true;
                        break;
                case YAML_MAPPING_START_EVENT:
                        if (depth == 0)
                                depth = 1;
                        else
                                skip = 1;
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        if (depth != 1 || !key || in_list)
                                skip = 1;
                        else
                                in_list = true;
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_SCALAR_EVENT: {
                        size_t len;
                        bool append;

                        if (ev.type == YAML_SCALAR_EVENT && depth == 1 && !key) {
                                const char *k = (const char *) ev.data.scalar.value;

                                while (*k == '-')
                                        k++;
                                key = strdup(k);
                                if (!key)
                                        r = -ENOMEM;
                                break;
                        }
                        if (ev.type == YAML_SCALAR_EVENT &&
                            (r = se_strv_push(&list, &n_list, (const char *) ev.data.scalar.value)) < 0)
                                break;
                        if (ev.type == YAML_SCALAR_EVENT && in_list)
                                break;
                        in_list = false;
                        len = strlen(key);
                        append = len > 0 && key[len - 1] == '+';
                        if (append)
                                key[len - 1] = 0;
                        r = set_values(c, key, list, append);
                        list = se_strv_free(list);
                        n_list = 0;
                        free(TAKE_PTR(key));
                        break;
                }
                case YAML_ALIAS_EVENT:
                        r = se_error_set(e, -EBADMSG, "%s:%zu: YAML aliases are not supported here", path,
                                         ev.start_mark.line + 1);
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        return r < 0 ? r : 0;
}

static bool yaml_name(const char *f) {
        size_t n = strlen(f);

        return (n > 5 && streq(f + n - 5, ".yaml")) || (n > 4 && streq(f + n - 4, ".yml"));
}

_public_ int se_dist_config_load(const char *main_path, char *const *ignore, se_dist_config *ret, se_error *e) {
        _cleanup_free_ char *dropin_dir = NULL;
        se_dist_config c = {};
        struct dirent **ents = NULL;
        size_t n_files = 0;
        int m, r = 0;

        if (access(main_path, F_OK) == 0 && !se_strv_contains(ignore, main_path)) {
                r = se_strv_push(&c.files, &n_files, main_path);
                if (r >= 0)
                        r = load_one(&c, main_path, e);
        }
        if (r >= 0 && asprintf(&dropin_dir, "%s.d", main_path) < 0)
                r = -ENOMEM;
        m = r >= 0 ? scandir(dropin_dir, &ents, NULL, alphasort) : 0;
        for (int i = 0; i < m; i++) {
                _cleanup_free_ char *p = NULL;

                if (r >= 0 && yaml_name(ents[i]->d_name)) {
                        if (asprintf(&p, "%s/%s", dropin_dir, ents[i]->d_name) < 0)
                                r = -ENOMEM;
                        if (r >= 0 && se_strv_contains(ignore, p)) {
                                free(ents[i]);
                                continue;
                        }
                        if (r >= 0)
                                r = se_strv_push(&c.files, &n_files, p);
                        if (r >= 0)
                                r = load_one(&c, p, e);
                }
                free(ents[i]);
        }
        free(ents);
        if (r == -ENOMEM)
                se_error_set(e, r, "out of memory");
        if (r < 0) {
                se_dist_config_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

_public_ void se_dist_config_done(se_dist_config *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->keys[i]);
                se_strv_free(c->values[i]);
        }
        free(c->keys);
        free(c->values);
        se_strv_free(c->files);
        *c = (se_dist_config){};
}

_public_ char *const *se_dist_config_list(const se_dist_config *c, const char *key) {
        ssize_t i = find_key(c, key);

        return i < 0 ? NULL : c->values[i];
}

_public_ const char *se_dist_config_get(const se_dist_config *c, const char *key) {
        char *const *l = se_dist_config_list(c, key);
        size_t n = se_strv_length(l);

        return n > 0 ? l[n - 1] : NULL;
}
