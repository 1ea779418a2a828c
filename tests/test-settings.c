/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-settings.h"
#include "testlib.h"

static int load_str(se_settings *s, const char *yaml, se_error *e) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *p = tl_path(dir, "config.yaml");
        int r;

        tl_write_str(p, yaml);
        r = se_settings_load(s, p, false, e);
        tl_tmpdir_remove(dir);
        return r;
}

START_TEST(test_defaults) {
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_str_eq(s.state_dir, "/var/lib/secrets-encrypt");
        ck_assert_str_eq(s.provider, "aescbc");
        ck_assert_str_eq(s.datastore_endpoint, "sqlite:///var/lib/rancher/k3s/server/db/state.db");
        ck_assert_str_eq(s.unit, "k3s.service");
        ck_assert_str_eq(s.hooks_dir, "/etc/secrets-encrypt/hooks.d");
        ck_assert_uint_eq(s.timeout_usec, 600ULL * 1000000ULL);
        ck_assert(!s.auto_advance);
        ck_assert_ptr_null(s.metrics_file);
        ck_assert(!isempty(s.node_name));
        se_settings_done(&s);
}
END_TEST

START_TEST(test_load_all_keys) {
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(load_str(&s,
                                  "state-dir: /var/lib/rancher/k3s/server/cred\n"
                                  "node-name: server-1\n"
                                  "secrets-encryption-provider: secretbox\n"
                                  "datastore-endpoint: https://10.0.0.1:2379,https://10.0.0.2:2379\n"
                                  "datastore-cafile: /ca.pem\n"
                                  "datastore-certfile: /c.pem\n"
                                  "datastore-keyfile: /k.pem\n"
                                  "token-file: /tok\n"
                                  "unit: rke2-server.service\n"
                                  "hooks-dir: /h\n"
                                  "metrics-file: /m.prom\n"
                                  "timeout: 1h30m\n"
                                  "reencrypt-rate: 250\n"
                                  "auto-advance: true\n",
                                  &e),
                         14); /* the number of keys set */
        ck_assert_str_eq(s.state_dir, "/var/lib/rancher/k3s/server/cred");
        ck_assert_str_eq(s.node_name, "server-1");
        ck_assert_str_eq(s.provider, "secretbox");
        ck_assert_str_eq(s.datastore_endpoint, "https://10.0.0.1:2379,https://10.0.0.2:2379");
        ck_assert_str_eq(s.datastore_keyfile, "/k.pem");
        ck_assert_str_eq(s.unit, "rke2-server.service");
        ck_assert_str_eq(s.metrics_file, "/m.prom");
        ck_assert_uint_eq(s.timeout_usec, 5400ULL * 1000000ULL);
        ck_assert(s.reencrypt_rate == 250.0);
        ck_assert(s.auto_advance);
        ck_assert(!s.kms_v1); /* kube-apiserver's default gate */
        se_settings_done(&s);
        se_error_done(&e);

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(load_str(&s, "kms-v1: true\n", &e), 1);
        ck_assert(s.kms_v1);
        se_settings_done(&s);
        se_error_done(&e);
}
END_TEST

/* rotate-after: the age for ensure --rotate-due (the rotation timer) */
START_TEST(test_rotate_after) {
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_uint_eq(s.rotate_after_usec, 90ULL * 86400ULL * 1000000ULL);
        ck_assert(se_settings_is_key("rotate-after"));
        ck_assert_int_eq(load_str(&s, "rotate-after: 30d\n", &e), 1);
        ck_assert_uint_eq(s.rotate_after_usec, 30ULL * 86400ULL * 1000000ULL);
        ck_assert_int_eq(se_settings_set(&s, "rotate-after", "36h", &e), 0);
        ck_assert_uint_eq(s.rotate_after_usec, 36ULL * 3600ULL * 1000000ULL);

        /* 0 would rotate at every run of the timer; a malformed value names the setting */
        ck_assert_int_eq(se_settings_set(&s, "rotate-after", "0", &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "rotate-after: invalid duration \"0\""));
        se_error_done(&e);
        ck_assert_int_eq(load_str(&s, "rotate-after: quarterly\n", &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "config.yaml:1"));
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "rotate-after: invalid duration \"quarterly\""));
        ck_assert_uint_eq(s.rotate_after_usec, 36ULL * 3600ULL * 1000000ULL); /* unchanged */
        se_settings_done(&s);
        se_error_done(&e);
}
END_TEST

START_TEST(test_errors_name_key_and_line) {
        static const struct {
                const char *yaml;
                const char *needle;
        } cases[] = {
                { "state-dir: /x\nbogus-key: 1\n", ":2: unknown key \"bogus-key\"" },
                { "unit: a\nunit: b\n", ":2: duplicate key \"unit\"" },
                { "secrets-encryption-provider: aesgcm\n", "unsupported secrets-encryption-provider aesgcm" },
                { "timeout: soon\n", "timeout: invalid duration \"soon\"" },
                { "reencrypt-rate: -3\n", "reencrypt-rate: invalid value \"-3\"" },
                { "auto-advance: maybe\n", "auto-advance: invalid boolean \"maybe\"" },
                { "kms-v1: perhaps\n", "kms-v1: invalid boolean \"perhaps\"" },
                { "unit:\n  - a\n", "must be a plain value, not a list" },
                { "node-name: a/b\n", "node-name: invalid value" },
                { "state-dir: a: b\n", "invalid YAML" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                se_error e = SE_ERROR_NULL;
                se_settings s;

                ck_assert_int_eq(se_settings_init(&s), 0);
                ck_assert_int_eq(load_str(&s, cases[i].yaml, &e), -EINVAL);
                ck_assert_msg(strstr(se_error_message(&e), cases[i].needle), "case %zu: %s", i,
                              se_error_message(&e));
                ck_assert_msg(strstr(se_error_message(&e), "config.yaml"), "no file name: %s", se_error_message(&e));
                se_error_done(&e);
                se_settings_done(&s);
        }
}
END_TEST

START_TEST(test_missing_file) {
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(se_settings_load(&s, "/nonexistent/config.yaml", true, &e), 0);
        ck_assert_int_eq(se_settings_load(&s, "/nonexistent/config.yaml", false, &e), -ENOENT);
        se_error_done(&e);
        se_settings_done(&s);
}
END_TEST

START_TEST(test_token) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *p = tl_path(dir, "token");
        _cleanup_erase_free_ char *tok = NULL;
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        tl_write_str(p, "K10abc::server:secret\n");
        ck_assert_int_eq(se_settings_set(&s, "token-file", p, &e), 0);
        ck_assert_int_eq(se_settings_read_token(&s, &tok, &e), 0);
        ck_assert_str_eq(tok, "K10abc::server:secret");
        tl_write_str(p, "\n");
        free(TAKE_PTR(tok));
        ck_assert_int_eq(se_settings_read_token(&s, &tok, &e), -EINVAL);
        se_error_done(&e);
        se_settings_done(&s);
        tl_tmpdir_remove(dir);
}
END_TEST

static Suite *settings_suite(void) {
        Suite *s = suite_create("settings");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_load_all_keys);
        tcase_add_test(tc, test_rotate_after);
        tcase_add_test(tc, test_errors_name_key_and_line);
        tcase_add_test(tc, test_missing_file);
        tcase_add_test(tc, test_token);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(settings_suite)
