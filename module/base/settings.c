/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "macro.h"
#include "se-settings.h"
#include "se-trust.h"
#include "se-util.h"

#define SETTINGS_MAX_SIZE (64u * 1024u)

_public_ const char *const se_settings_keys[] = {
        "state-dir",
        "node-name",
        "secrets-encryption-provider",
        "datastore-endpoint",
        "datastore-cafile",
        "datastore-certfile",
        "datastore-keyfile",
        "token-file",
        "unit",
        "hooks-dir",
        "metrics-file",
        "timeout",
        "reencrypt-rate",
        "auto-advance",
        "removed-key-retention",
        "kms-v1",
        "rotate-after",
        "datastore-allow-plain-http",
        "single-server",
        NULL,
};

_public_ bool se_settings_is_key(const char *key) {
        for (size_t i = 0; se_settings_keys[i]; i++)
                if (streq(key, se_settings_keys[i]))
                        return true;
        return false;
}

static int set_str(char **field, const char *value) {
        char *n = strdup(value);

        if (!n)
                return -ENOMEM;
        free(*field);
        *field = n;
        return 0;
}

_public_ int se_settings_init(se_settings *s) {
        char host[256] = "";

        *s = (se_settings){
                .timeout_usec = 10ULL * 60ULL * 1000000ULL,
                .removed_key_retention_usec = SE_SETTINGS_DEFAULT_REMOVED_KEY_RETENTION_USEC,
                .keep_removed_keys = true,
                .rotate_after_usec = SE_SETTINGS_DEFAULT_ROTATE_AFTER_USEC,
        };
        if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
                strcpy(host, "localhost");
        if (set_str(&s->state_dir, "/var/lib/secrets-encrypt") < 0 || set_str(&s->node_name, host) < 0 ||
            set_str(&s->provider, "aescbc") < 0 ||
            set_str(&s->datastore_endpoint, SE_SETTINGS_DEFAULT_DATASTORE) < 0 ||
            set_str(&s->unit, SE_SETTINGS_DEFAULT_UNIT) < 0 ||
            set_str(&s->hooks_dir, "/etc/secrets-encrypt/hooks.d") < 0) {
                se_settings_done(s);
                return -ENOMEM;
        }
        return 0;
}

_public_ void se_settings_done(se_settings *s) {
        free(s->state_dir);
        free(s->node_name);
        free(s->provider);
        free(s->datastore_endpoint);
        free(s->datastore_cafile);
        free(s->datastore_certfile);
        free(s->datastore_keyfile);
        free(s->token_file);
        free(s->unit);
        free(s->hooks_dir);
        free(s->metrics_file);
        if (s->token) {
                explicit_wipe(s->token, strlen(s->token));
                free(s->token);
        }
        *s = (se_settings){};
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = {"true", "yes", "on", "1", "True", "TRUE", "Yes", "On"};
        static const char *const no[] = {"false", "no", "off", "0", "False", "FALSE", "No", "Off"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (streq(v, yes[i])) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (streq(v, no[i])) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

_public_ int se_settings_set(se_settings *s, const char *key, const char *value, se_error *e) {
        static const struct {
                const char *key;
                size_t offset;
        } strings[] = {
                {"state-dir", offsetof(se_settings, state_dir)},
                {"node-name", offsetof(se_settings, node_name)},
                {"datastore-endpoint", offsetof(se_settings, datastore_endpoint)},
                {"datastore-cafile", offsetof(se_settings, datastore_cafile)},
                {"datastore-certfile", offsetof(se_settings, datastore_certfile)},
                {"datastore-keyfile", offsetof(se_settings, datastore_keyfile)},
                {"token-file", offsetof(se_settings, token_file)},
                {"unit", offsetof(se_settings, unit)},
                {"hooks-dir", offsetof(se_settings, hooks_dir)},
                {"metrics-file", offsetof(se_settings, metrics_file)},
        };

        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (streq(key, strings[i].key)) {
                        if (isempty(value) && !streq(key, "metrics-file") && !streq(key, "hooks-dir"))
                                return se_error_set(e, -EINVAL, "%s: value must not be empty", key);
                        if (streq(key, "node-name") && (strchr(value, '/') || strchr(value, '-') == value))
                                return se_error_set(e, -EINVAL,
                                                    "node-name: invalid value \"%s\": must not contain '/' or start "
                                                    "with '-'",
                                                    value);
                        return set_str((char **) ((uint8_t *) s + strings[i].offset), value) < 0
                                       ? se_error_set(e, -ENOMEM, "out of memory")
                                       : 0;
                }

        if (streq(key, "secrets-encryption-provider")) {
                if (!streq(value, "aescbc") && !streq(value, "secretbox"))
                        return se_error_set(e, -EINVAL,
                                            "secrets-encryption-provider: unsupported secrets-encryption-provider %s "
                                            "(expected aescbc or secretbox)",
                                            value);
                return set_str(&s->provider, value) < 0 ? se_error_set(e, -ENOMEM, "out of memory") : 0;
        }
        if (streq(key, "timeout")) {
                uint64_t u;

                if (se_parse_duration(value, &u) < 0 || u == 0)
                        return se_error_set(e, -EINVAL, "timeout: invalid duration \"%s\" (examples: 10m, 90s, 1h30m)",
                                            value);
                s->timeout_usec = u;
                return 0;
        }
        if (streq(key, "reencrypt-rate")) {
                char *end = NULL;
                double d;

                errno = 0;
                d = strtod(value, &end);
                if (errno != 0 || !end || *end != '\0' || end == value || d < 0 || d != d)
                        return se_error_set(e, -EINVAL,
                                            "reencrypt-rate: invalid value \"%s\" (secrets per second, 0 = unlimited)",
                                            value);
                s->reencrypt_rate = d;
                return 0;
        }
        if (streq(key, "removed-key-retention")) {
                uint64_t u;

                /* 0 is valid here: removed keys are then not kept at all */
                if (se_parse_duration(value, &u) < 0)
                        return se_error_set(e, -EINVAL,
                                            "removed-key-retention: invalid duration \"%s\" (examples: 7d, 36h, 0 to "
                                            "keep no removed keys)",
                                            value);
                s->removed_key_retention_usec = u;
                s->keep_removed_keys = u > 0;
                return 0;
        }
        if (streq(key, "kms-v1")) {
                if (parse_bool(value, &s->kms_v1) < 0)
                        return se_error_set(e, -EINVAL, "kms-v1: invalid boolean \"%s\" (true or false)", value);
                return 0;
        }
        if (streq(key, "rotate-after")) {
                uint64_t u;

                if (se_parse_duration(value, &u) < 0 || u < 1000000ULL)
                        return se_error_set(e, -EINVAL,
                                            "rotate-after: invalid duration \"%s\" (examples: 90d, 30d, 12h; at least "
                                            "1s)",
                                            value);
                s->rotate_after_usec = u;
                return 0;
        }
        if (streq(key, "single-server")) {
                if (parse_bool(value, &s->single_server) < 0)
                        return se_error_set(e, -EINVAL, "single-server: invalid boolean \"%s\" (true or false)",
                                            value);
                return 0;
        }
        if (streq(key, "auto-advance")) {
                if (parse_bool(value, &s->auto_advance) < 0)
                        return se_error_set(e, -EINVAL, "auto-advance: invalid boolean \"%s\" (true or false)", value);
                return 0;
        }
        if (streq(key, "datastore-allow-plain-http")) {
                if (parse_bool(value, &s->datastore_allow_plain_http) < 0)
                        return se_error_set(e, -EINVAL,
                                            "datastore-allow-plain-http: invalid boolean \"%s\" (true or false)",
                                            value);
                return 0;
        }
        return se_error_set(e, -ENOENT, "unknown setting \"%s\"", key);
}

/* A flat YAML mapping of scalars; anything else is an error naming the line. */
_public_ int se_settings_load(se_settings *s, const char *path, bool missing_ok, se_error *e) {
        _cleanup_free_ uint8_t *data = NULL;
        yaml_parser_t parser;
        yaml_event_t ev;
        char *seen[ELEMENTSOF(se_settings_keys)] = {};
        _cleanup_free_ char *key = NULL;
        size_t size, n_seen = 0, n_set = 0;
        int depth = 0, r = 0;
        bool done = false;

        r = se_read_trusted_file(path, SETTINGS_MAX_SIZE, "settings file", &data, &size, e);
        if (r == -ENOENT && missing_ok)
                return 0;
        if (r == -EPERM)
                return r; /* the message names the owner or mode and the fix */
        if (r == -EFBIG)
                return se_error_set(e, -EINVAL, "%s: settings file larger than %u bytes", path, SETTINGS_MAX_SIZE);
        if (r < 0)
                return se_error_set(e, r, "%s: cannot read settings: %s", path, strerror(-r));

        if (!yaml_parser_initialize(&parser))
                return se_error_set(e, -ENOMEM, "out of memory");
        yaml_parser_set_input_string(&parser, data, size);

        while (!done) {
                unsigned line;

                if (!yaml_parser_parse(&parser, &ev)) {
                        r = se_error_set(e, -EINVAL, "%s:%zu: invalid YAML: %s", path, parser.problem_mark.line + 1,
                                         parser.problem ? parser.problem : "parse error");
                        break;
                }
                line = (unsigned) ev.start_mark.line + 1;

                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        done = true;
                        break;
                case YAML_MAPPING_START_EVENT:
                        if (++depth > 1 || key)
                                r = se_error_set(e, -EINVAL, "%s:%u: %s%s%smust be a plain value, not a mapping", path,
                                                 line, key ? "\"" : "", key ? key : "", key ? "\" " : "");
                        break;
                case YAML_MAPPING_END_EVENT:
                        depth--;
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        r = se_error_set(e, -EINVAL, "%s:%u: %s%s%smust be a plain value, not a list", path, line,
                                         key ? "\"" : "", key ? key : "", key ? "\" " : "");
                        break;
                case YAML_ALIAS_EVENT:
                        r = se_error_set(e, -EINVAL, "%s:%u: YAML aliases are not supported", path, line);
                        break;
                case YAML_SCALAR_EVENT: {
                        const char *v = (const char *) ev.data.scalar.value;

                        if (depth != 1) {
                                r = se_error_set(e, -EINVAL, "%s:%u: expected a mapping of settings", path, line);
                                break;
                        }
                        if (!key) {
                                if (!se_settings_is_key(v)) {
                                        r = se_error_set(
                                                e, -EINVAL,
                                                "%s:%u: unknown key \"%s\" (known keys: state-dir, "
                                                "node-name, secrets-encryption-provider, datastore-endpoint, "
                                                "datastore-cafile, datastore-certfile, datastore-keyfile, "
                                                "token-file, unit, hooks-dir, metrics-file, timeout, "
                                                "reencrypt-rate, auto-advance, removed-key-retention, "
                                                "kms-v1, rotate-after, datastore-allow-plain-http, single-server)",
                                                path, line, v);
                                        break;
                                }
                                for (size_t i = 0; i < n_seen; i++)
                                        if (streq(seen[i], v)) {
                                                r = se_error_set(e, -EINVAL, "%s:%u: duplicate key \"%s\"", path, line,
                                                                 v);
                                                break;
                                        }
                                if (r < 0)
                                        break;
                                key = strdup(v);
                                if (!key) {
                                        r = se_error_set(e, -ENOMEM, "out of memory");
                                        break;
                                }
                                for (size_t i = 0; se_settings_keys[i]; i++)
                                        if (streq(se_settings_keys[i], v))
                                                seen[n_seen++] = (char *) se_settings_keys[i];
                        } else {
                                r = se_settings_set(s, key, v, e);
                                n_set += r >= 0;
                                if (r < 0)
                                        r = se_error_prefix(e, r == -ENOENT ? -EINVAL : r, "%s:%u", path, line);
                                free(TAKE_PTR(key));
                        }
                        break;
                }
                default:
                        break;
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        break;
        }
        yaml_parser_delete(&parser);
        if (r >= 0 && key)
                r = se_error_set(e, -EINVAL, "%s: key \"%s\" has no value", path, key);
        return r < 0 ? r : (int) n_set;
}

_public_ int se_settings_read_token(const se_settings *s, char **ret, se_error *e) {
        _cleanup_free_ char *cred = NULL;
        const char *dir = secure_getenv("CREDENTIALS_DIRECTORY");
        const char *path;
        uint8_t *data = NULL;
        size_t size;
        int r;

        if (s->token) { /* --token VALUE on the command line */
                *ret = strdup(s->token);
                return *ret ? 0 : se_error_set(e, -ENOMEM, "out of memory");
        }
        if (!s->token_file && dir) {
                if (asprintf(&cred, "%s/secrets-encrypt-token", dir) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (access(cred, F_OK) < 0)
                        free(TAKE_PTR(cred));
        }
        path = cred ? cred : s->token_file ? s->token_file : "/etc/secrets-encrypt/token";

        r = se_read_file(path, 4096, &data, &size);
        if (r < 0)
                return se_error_set(e, r,
                                    "cannot read the cluster token from %s: %s (set token-file, or pass the systemd "
                                    "credential secrets-encrypt-token)",
                                    path, strerror(-r));
        while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
                data[--size] = 0;
        if (size == 0) {
                free(data);
                return se_error_set(e, -EINVAL, "the cluster token in %s is empty", path);
        }
        *ret = (char *) data;
        return 0;
}
