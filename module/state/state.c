/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "macro.h"
#include "se-state.h"
#include "se-trust.h"
#include "se-util.h"

#define OWN_STATE_MAX_SIZE (64u * 1024u)

static char *dir_path(const char *dir, const char *name) {
        char *p;

        return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static int load_config(se_state *st, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "encryption-config.json");
        int r;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_read_trusted_file(path, SE_CONFIG_MAX_SIZE, "encryption configuration", &st->config_bytes,
                                 &st->config_size, e);
        if (r == -ENOENT)
                return 0;
        if (r == -EPERM)
                return r;
        if (r < 0)
                return se_error_set(e, r, "cannot read %s: %s", path, strerror(-r));
        se_dontdump(st->config_bytes, st->config_size + 1); /* the keys, base64, for the state's life */
        if (st->config_size == 0) { /* k3s regenerates an empty file; we only do when nothing else exists */
                st->config_empty = true;
                return 0;
        }

        r = se_sha256_hex(st->config_bytes, st->config_size, st->hash);
        if (r < 0)
                return se_error_set(e, r, "cannot hash %s", path);
        r = se_config_parse(path, st->config_bytes, st->config_size, &st->config, e);
        if (r >= 0) {
                r = se_config_validate(st->config, false, e);
                if (r < 0)
                        st->config = se_config_free(st->config);
        }
        /* kube's layers: building errors carry their own "error while building transformers" */
        if (r < 0 && e && e->message && startswith(e->message, "error while building transformers"))
                return se_error_prefix(e, r, "%s", path);
        if (r < 0)
                return se_error_prefix(e, r, "%s: error while parsing file", path);
        st->has_config = true;
        return 0;
}

static int load_stage(se_state *st, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "encryption-state.json");
        _cleanup_free_ uint8_t *data = NULL;
        size_t size;
        int r;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_read_trusted_file(path, 4096, "stage file", &data, &size, e);
        if (r == -ENOENT)
                return 0;
        if (r == -EPERM)
                return r;
        if (r < 0)
                return se_error_set(e, r, "cannot read %s: %s", path, strerror(-r));
        r = se_annotation_parse((const char *) data, &st->stage, st->stage_hash);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        if (r < 0)
                return se_error_set(e, -EBADMSG,
                                    "%s: invalid content (expected \"<stage>-<sha256 hex>\"); restore it or remove it "
                                    "so the next start recreates it from the config",
                                    path);
        st->has_stage = true;
        return 0;
}

static int load_own(se_state *st, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "secrets-encrypt.json");
        _cleanup_free_ uint8_t *data = NULL;
        json_object *root, *v;
        size_t size;
        int r;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_read_trusted_file(path, OWN_STATE_MAX_SIZE, "state file", &data, &size, e);
        if (r == -ENOENT)
                return 0;
        if (r == -EPERM)
                return r;
        if (r < 0)
                return se_error_set(e, r, "cannot read %s: %s", path, strerror(-r));

        root = json_tokener_parse((const char *) data);
        if (!root || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return se_error_set(e, -EBADMSG,
                                    "%s: not a JSON object; remove it to reset secrets-encrypt's own state", path);
        }
        if (json_object_object_get_ex(root, "generation", &v))
                st->generation = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(root, "annotation", &v) && json_object_is_type(v, json_type_string)) {
                st->annotation = strdup(json_object_get_string(v));
                if (!st->annotation) {
                        json_object_put(root);
                        return se_error_set(e, -ENOMEM, "out of memory");
                }
        }
        if (json_object_object_get_ex(root, "pending_reencrypt", &v))
                st->pending_reencrypt = json_object_get_boolean(v);
        if (json_object_object_get_ex(root, "pending_skip", &v))
                st->pending_skip = json_object_get_boolean(v);
        if (json_object_object_get_ex(root, "pending_rotate_keys", &v))
                st->pending_rotate_keys = json_object_get_boolean(v);
        if (json_object_object_get_ex(root, "last_rotation", &v))
                st->last_rotation = json_object_get_int64(v);
        if (json_object_object_get_ex(root, "running", &v) && json_object_is_type(v, json_type_string)) {
                st->running = strdup(json_object_get_string(v));
                if (!st->running) {
                        json_object_put(root);
                        return se_error_set(e, -ENOMEM, "out of memory");
                }
        }
        if (json_object_object_get_ex(root, "annotation_time", &v))
                st->annotation_time = json_object_get_int64(v);
        if (json_object_object_get_ex(root, "rolling", &v))
                st->rolling = json_object_get_boolean(v);
        if (json_object_object_get_ex(root, "intent_stage", &v) && json_object_is_type(v, json_type_string)) {
                json_object *h, *g;

                st->intent_stage = se_stage_from_string(json_object_get_string(v));
                if (json_object_object_get_ex(root, "intent_hash", &h) && json_object_is_type(h, json_type_string) &&
                    strlen(json_object_get_string(h)) == 64)
                        memcpy(st->intent_hash, json_object_get_string(h), 65);
                else
                        st->intent_stage = SE_STAGE_INVALID;
                if (json_object_object_get_ex(root, "intent_generation", &g))
                        st->intent_generation = (uint64_t) json_object_get_int64(g);
        }
        json_object_put(root);
        return 0;
}

_public_ int se_state_load(const char *dir, se_state *ret, se_error *e) {
        se_state st = {.stage = SE_STAGE_INVALID};
        int r;

        /* a missing directory holds nothing yet; anything else must be root's alone */
        r = se_trust_check_at(AT_FDCWD, dir, NULL, "state-dir", e);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r == -ENOENT)
                se_error_done(e);
        st.dir = strdup(dir);
        if (!st.dir)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = load_config(&st, e);
        if (r >= 0)
                r = load_stage(&st, e);
        if (r >= 0)
                r = load_own(&st, e);
        if (r < 0) {
                se_state_done(&st);
                return r;
        }
        *ret = st;
        return 0;
}

_public_ void se_state_done(se_state *st) {
        if (!st)
                return;
        free(st->dir);
        if (st->config_bytes) {
                explicit_wipe(st->config_bytes, st->config_size);
                free(st->config_bytes);
        }
        se_config_free(st->config);
        free(st->annotation);
        free(st->running);
        *st = (se_state){.stage = SE_STAGE_INVALID};
}

_public_ int se_state_write_config_bytes(se_state *st, const uint8_t *bytes, size_t size, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "encryption-config.json");
        se_config *parsed = NULL;
        uint8_t *copy;
        int r;

        if (!path)
                return se_error_set(e, -ENOMEM, "out of memory");
        /* Never put a file on disk that kube-apiserver (or we) would refuse. */
        r = se_config_parse(path, bytes, size, &parsed, e);
        if (r >= 0)
                r = se_config_validate(parsed, false, e);
        if (r < 0) {
                se_config_free(parsed);
                return se_error_prefix(e, r, "refusing to write an invalid configuration to %s", path);
        }
        copy = malloc(size + 1);
        if (!copy) {
                se_config_free(parsed);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        se_dontdump(copy, size + 1);
        memcpy(copy, bytes, size);
        copy[size] = 0;

        r = se_write_file_atomic(path, bytes, size, 0600);
        if (r < 0) {
                explicit_wipe(copy, size);
                free(copy);
                se_config_free(parsed);
                return se_error_set(e, r, "cannot write %s: %s", path, strerror(-r));
        }

        if (st->config_bytes) {
                explicit_wipe(st->config_bytes, st->config_size);
                free(st->config_bytes);
        }
        se_config_free(st->config);
        st->config_bytes = copy;
        st->config_size = size;
        st->config = parsed;
        st->has_config = true;
        return se_sha256_hex(copy, size, st->hash);
}

_public_ int se_state_write_config(se_state *st, const se_config *c, se_error *e) {
        char *json = NULL;
        size_t size;
        int r;

        r = se_config_to_json(c, &json, &size);
        if (r < 0)
                return se_error_set(e, r, "cannot serialize the encryption configuration: %s", strerror(-r));
        r = se_state_write_config_bytes(st, (const uint8_t *) json, size, e);
        explicit_wipe(json, size);
        free(json);
        return r;
}

_public_ int se_state_set_annotation(se_state *st, se_stage stage) {
        char *a;

        if (asprintf(&a, "%s-%s", se_stage_to_string(stage), st->hash) < 0)
                return -ENOMEM;
        free(st->annotation);
        st->annotation = a;
        st->annotation_time = (int64_t) time(NULL);
        return 0;
}

_public_ int se_state_write_stage(se_state *st, se_stage stage, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "encryption-state.json"), *content = NULL;
        int r;

        if (!path || asprintf(&content, "%s-%s", se_stage_to_string(stage), st->hash) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        r = se_write_file_atomic(path, content, strlen(content), 0600);
        if (r < 0)
                return se_error_set(e, r, "cannot write %s: %s", path, strerror(-r));
        st->has_stage = true;
        st->stage = stage;
        memcpy(st->stage_hash, st->hash, sizeof(st->hash));
        if (se_state_set_annotation(st, stage) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        return 0;
}

_public_ int se_state_save_own(se_state *st, se_error *e) {
        _cleanup_free_ char *path = dir_path(st->dir, "secrets-encrypt.json");
        json_object *root = json_object_new_object();
        const char *text;
        int r;

        if (!path || !root) {
                json_object_put(root);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        json_object_object_add(root, "generation", json_object_new_int64((int64_t) st->generation));
        if (st->annotation)
                json_object_object_add(root, "annotation", json_object_new_string(st->annotation));
        if (st->running)
                json_object_object_add(root, "running", json_object_new_string(st->running));
        json_object_object_add(root, "pending_reencrypt", json_object_new_boolean(st->pending_reencrypt));
        json_object_object_add(root, "pending_skip", json_object_new_boolean(st->pending_skip));
        json_object_object_add(root, "pending_rotate_keys", json_object_new_boolean(st->pending_rotate_keys));
        json_object_object_add(root, "last_rotation", json_object_new_int64(st->last_rotation));
        json_object_object_add(root, "rolling", json_object_new_boolean(st->rolling));
        if (st->intent_stage != SE_STAGE_INVALID) {
                json_object_object_add(root, "intent_stage",
                                       json_object_new_string(se_stage_to_string(st->intent_stage)));
                json_object_object_add(root, "intent_hash", json_object_new_string(st->intent_hash));
                json_object_object_add(root, "intent_generation",
                                       json_object_new_int64((int64_t) st->intent_generation));
        }
        json_object_object_add(root, "annotation_time", json_object_new_int64(st->annotation_time));
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        r = se_write_file_atomic(path, text, strlen(text), 0600);
        json_object_put(root);
        if (r < 0)
                return se_error_set(e, r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

_public_ se_stage se_state_current_stage(const se_state *st) {
        se_stage s;
        char h[65];

        if (st->annotation && se_annotation_parse(st->annotation, &s, h) >= 0)
                return s;
        return st->has_stage ? st->stage : SE_STAGE_INVALID;
}

_public_ int se_state_recover(se_state *st, bool *ret_recovered, se_error *e) {
        int r;

        *ret_recovered = false;
        if (st->intent_stage == SE_STAGE_INVALID)
                return 0;
        /* The config reached disk: finish the commit. Otherwise it never happened: forget it. */
        if (st->has_config && streq(st->hash, st->intent_hash)) {
                if (st->intent_generation > st->generation)
                        st->generation = st->intent_generation;
                r = se_state_write_stage(st, st->intent_stage, e);
                if (r < 0)
                        return r;
                *ret_recovered = true;
        }
        st->intent_stage = SE_STAGE_INVALID;
        return se_state_save_own(st, e);
}

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

_public_ void se_state_remove_temporaries(const char *dir) {
        static const char *const prefixes[] = {
                "encryption-config.json.tmp", "encryption-state.json.tmp", "secrets-encrypt.json.tmp",
                "reencrypt.checkpoint.tmp",   ".hook-last-failure.tmp",
        };
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                        if (startswith(de->d_name, prefixes[i]) &&
                            strlen(de->d_name) == strlen(prefixes[i]) + 6) /* mkostemp's XXXXXX */
                                (void) unlinkat(dirfd(d), de->d_name, 0);
}
