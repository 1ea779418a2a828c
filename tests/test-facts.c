/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "macro.h"
#include "se-facts.h"
#include "se-state.h"
#include "se-status.h"
#include "testlib.h"

#define KEY1 "c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIzNDU2Nzg5YWI="
#define KEY2 "YW5vdGhlci1rZXktbWF0ZXJpYWwtMDEyMzQ1Njc4OWE="

static char *write_config(const char *dir, const char *first_name, const char *second_name) {
        _cleanup_free_ char *path = tl_path(dir, "encryption-config.json");
        char *text = NULL;

        ck_assert_int_ge(asprintf(&text,
                                  "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                                  "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":["
                                  "{\"name\":\"%s\",\"secret\":\"" KEY1 "\"}%s%s%s]}},{\"identity\":{}}]}]}",
                                  first_name, second_name ? ",{\"name\":\"" : "", second_name ? second_name : "",
                                  second_name ? "\",\"secret\":\"" KEY2 "\"}" : ""),
                         0);
        tl_write_str(path, text);
        free(text);
        return TAKE_PTR(path);
}

START_TEST(test_key_name_time) {
        int64_t t = 0;

        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01T10:00:00Z", &t), 0);
        ck_assert_int_eq(t, 1714557600);
        ck_assert_int_eq(se_key_name_time("secretboxkey-2024-05-01T12:00:00+02:00", &t), 0);
        ck_assert_int_eq(t, 1714557600);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01T04:30:00-05:30", &t), 0);
        ck_assert_int_eq(t, 1714557600);
        ck_assert_int_eq(se_key_name_time("aescbckey", &t), -ENOENT);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01", &t), -EINVAL);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-13-01T10:00:00Z", &t), -EINVAL);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01T10:00:00", &t), -EINVAL);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01T10:00:00+0200", &t), -EINVAL);
        ck_assert_int_eq(se_key_name_time("aescbckey-2024-05-01T10:00:00Zjunk", &t), -EINVAL);
        ck_assert_int_eq(t, 1714557600); /* untouched on failure */
}
END_TEST

START_TEST(test_facts_from_state) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *cfg = write_config(dir, "aescbckey-2024-05-01T10:00:00Z", "aescbckey");
        se_error e = SE_ERROR_NULL;
        se_state st = {};
        se_status s = { .hash_match = false, .stage = (char *) "rotate", .reencrypt_pending = true,
                        .progress_done = 7, .progress_total = 9 };
        se_facts f = {};

        ck_assert_int_eq(se_state_load(dir, &st, &e), 0);
        st.last_rotation = 1700000000;
        ck_assert_int_eq(se_facts_from_state(&st, &s, "node-a", 1714557600 + 3 * 86400, &f), 0);
        ck_assert(f.configured);
        ck_assert_str_eq(f.node, "node-a");
        ck_assert_str_eq(f.stage, "rotate");
        ck_assert_int_eq(f.enabled, 1);
        ck_assert_str_eq(f.provider, "aescbc");
        ck_assert_str_eq(f.active_key, "aescbckey-2024-05-01T10:00:00Z");
        ck_assert_int_eq(f.active_key_time, 1714557600);
        ck_assert_int_eq(se_facts_active_key_age(&f), 3 * 86400);
        ck_assert_uint_eq(f.n_keys, 2);
        ck_assert_str_eq(f.keys[1], "aescbckey");
        ck_assert_str_eq(f.config_hash, st.hash);
        ck_assert(!f.hashes_match);
        ck_assert(f.reencrypt_pending);
        ck_assert_uint_eq(f.reencrypt_done, 7);
        ck_assert_uint_eq(f.reencrypt_total, 9);
        ck_assert_int_eq(f.last_rotation, 1700000000);
        se_facts_done(&f);
        se_state_done(&st);
        tl_tmpdir_remove(dir);
}
END_TEST

/* k3s's first key has no timestamp: its age comes from the config file's mtime. */
START_TEST(test_untimestamped_key_uses_mtime) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *cfg = write_config(dir, "aescbckey", NULL);
        struct timespec ts[2] = { { .tv_sec = 1600000000 }, { .tv_sec = 1600000000 } };
        se_error e = SE_ERROR_NULL;
        se_state st = {};
        se_facts f = {};

        ck_assert_int_eq(utimensat(AT_FDCWD, cfg, ts, 0), 0);
        ck_assert_int_eq(se_state_load(dir, &st, &e), 0);
        ck_assert_int_eq(se_facts_from_state(&st, NULL, "n", 1600000100, &f), 0);
        ck_assert_str_eq(f.active_key, "aescbckey");
        ck_assert_int_eq(f.active_key_time, 1600000000);
        ck_assert_int_eq(se_facts_active_key_age(&f), 100);
        se_facts_done(&f);
        se_state_done(&st);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_json_has_values_and_no_key_material) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *cfg = write_config(dir, "aescbckey-2024-05-01T10:00:00Z", "aescbckey-2024-06-01T10:00:00Z");
        _cleanup_free_ char *json = NULL;
        se_error e = SE_ERROR_NULL;
        se_node_status node = { .name = (char *) "node-a", .annotation = NULL };
        se_status s = { .hash_match = true, .stage = (char *) "start", .nodes = &node, .n_nodes = 1 };
        se_state st = {};
        se_facts f = {};
        json_object *o, *v;

        ck_assert_int_eq(se_state_load(dir, &st, &e), 0);
        ck_assert_int_ge(asprintf(&node.annotation, "start-%s", st.hash), 0);
        ck_assert_int_eq(se_facts_from_state(&st, &s, "node-a", 1714557600 + 90 * 86400, &f), 0);
        ck_assert_int_eq(se_facts_to_json(&f, true, &json), 0);
        ck_assert_ptr_null(strstr(json, KEY1));
        ck_assert_ptr_null(strstr(json, KEY2));
        ck_assert_ptr_null(strstr(json, "secret"));
        ck_assert(json[strlen(json) - 1] == '\n');

        o = json_tokener_parse(json);
        ck_assert_ptr_nonnull(o);
        ck_assert(json_object_object_get_ex(o, "stage", &v));
        ck_assert_str_eq(json_object_get_string(v), "start");
        ck_assert(json_object_object_get_ex(o, "enabled", &v));
        ck_assert(json_object_get_boolean(v));
        ck_assert(json_object_object_get_ex(o, "active_key", &v));
        ck_assert_str_eq(json_object_get_string(v), "aescbckey-2024-05-01T10:00:00Z");
        ck_assert(json_object_object_get_ex(o, "active_key_age_days", &v));
        ck_assert_int_eq(json_object_get_int64(v), 90);
        ck_assert(json_object_object_get_ex(o, "active_key_created", &v));
        ck_assert_str_eq(json_object_get_string(v), "2024-05-01T10:00:00Z");
        ck_assert(json_object_object_get_ex(o, "keys", &v));
        ck_assert_int_eq(json_object_array_length(v), 2);
        ck_assert(json_object_object_get_ex(o, "key_count", &v));
        ck_assert_int_eq(json_object_get_int(v), 2);
        ck_assert(json_object_object_get_ex(o, "config_hash", &v));
        ck_assert_str_eq(json_object_get_string(v), st.hash);
        ck_assert(json_object_object_get_ex(o, "nodes", &v));
        ck_assert_int_eq(json_object_array_length(v), 1);
        v = json_object_array_get_idx(v, 0);
        ck_assert(json_object_object_get_ex(v, "stage", &v));
        ck_assert_str_eq(json_object_get_string(v), "start");
        ck_assert(json_object_object_get_ex(o, "last_rotation", &v));
        ck_assert_ptr_null(v); /* never rotated: JSON null */
        ck_assert(json_object_object_get_ex(o, "version", &v));
        ck_assert_str_eq(json_object_get_string(v), SE_VERSION);
        json_object_put(o);
        free(node.annotation);
        se_facts_done(&f);
        se_state_done(&st);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_read_missing_state_dir) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *missing = tl_path(dir, "nope");
        _cleanup_free_ char *json = NULL;
        se_error e = SE_ERROR_NULL;
        se_settings s;
        se_facts f = {};
        struct stat sb;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(se_settings_set(&s, "state-dir", missing, &e), 0);
        ck_assert_int_eq(se_settings_set(&s, "node-name", "n1", &e), 0);
        ck_assert_int_eq(se_facts_read(&s, 1000, &f, &e), 0);
        ck_assert(!f.configured);
        ck_assert_ptr_null(f.stage);
        ck_assert_uint_eq(f.n_keys, 0);
        /* a reader never creates the state directory */
        ck_assert_int_lt(stat(missing, &sb), 0);
        ck_assert_int_eq(se_facts_to_json(&f, false, &json), 0);
        ck_assert_ptr_nonnull(strstr(json, "\"configured\":false"));
        ck_assert_ptr_eq(strchr(json, '\n'), json + strlen(json) - 1); /* one line */
        se_facts_done(&f);
        se_settings_done(&s);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

static Suite *facts_suite(void) {
        Suite *s = suite_create("facts");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_key_name_time);
        tcase_add_test(tc, test_facts_from_state);
        tcase_add_test(tc, test_untimestamped_key_uses_mtime);
        tcase_add_test(tc, test_json_has_values_and_no_key_material);
        tcase_add_test(tc, test_read_missing_state_dir);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(facts_suite)
