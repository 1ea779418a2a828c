/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* module/host: k3s's config merge, unit files as systemd reads them, the reads-config check, and
 * userinfo stripping. Whole hosts are in tests/integration/test-setup.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-host.h"
#include "se-strv.h"
#include "se-util.h"
#include "testlib.h"

START_TEST(test_dist_config_merge) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *main_path = tl_path(dir, "config.yaml"), *d = tl_path(dir, "config.yaml.d");
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *skip = NULL;
        se_error e = SE_ERROR_NULL;
        se_dist_config cfg;
        char *const *l;

        ck_assert_int_eq(mkdir(d, 0755), 0);
        a = tl_path(d, "10-a.yaml");
        b = tl_path(d, "20-b.yml");
        c = tl_path(d, "30-c.yaml");
        skip = tl_path(d, "40-ignored.conf");
        tl_write_str(main_path, "data-dir: /srv/k3s\nkube-apiserver-arg:\n  - audit-log-maxage=30\n"
                                "secrets-encryption: true\nnested:\n  a: [1, 2]\n");
        tl_write_str(a, "kube-apiserver-arg+:\n  - encryption-provider-config=/x.json\n");
        tl_write_str(b, "secrets-encryption: false\n--token: abc\n");
        tl_write_str(c, "data-dir: /srv/other\n");
        tl_write_str(skip, "data-dir: /never\n");

        ck_assert_int_eq(se_dist_config_load(main_path, NULL, &cfg, &e), 0);
        ck_assert_str_eq(se_dist_config_get(&cfg, "data-dir"), "/srv/other");    /* replaced */
        ck_assert_str_eq(se_dist_config_get(&cfg, "secrets-encryption"), "false"); /* later file */
        ck_assert_str_eq(se_dist_config_get(&cfg, "token"), "abc");                 /* dashes off */
        l = se_dist_config_list(&cfg, "kube-apiserver-arg");
        ck_assert_uint_eq(se_strv_length(l), 2); /* "+" appended */
        ck_assert_str_eq(l[0], "audit-log-maxage=30");
        ck_assert_str_eq(l[1], "encryption-provider-config=/x.json");
        ck_assert_ptr_null(se_dist_config_get(&cfg, "a")); /* nested mappings skipped */
        ck_assert_uint_eq(se_strv_length(cfg.files), 4);
        se_dist_config_done(&cfg);

        /* without a file: what the host is without it (setup --undo) */
        {
                char *ignore[] = {a, NULL};

                ck_assert_int_eq(se_dist_config_load(main_path, ignore, &cfg, &e), 0);
                ck_assert_uint_eq(se_strv_length(se_dist_config_list(&cfg, "kube-apiserver-arg")), 1);
                se_dist_config_done(&cfg);
        }

        /* a list replaces a list unless appended */
        tl_write_str(c, "kube-apiserver-arg: [only=1]\n");
        ck_assert_int_eq(se_dist_config_load(main_path, NULL, &cfg, &e), 0);
        l = se_dist_config_list(&cfg, "kube-apiserver-arg");
        ck_assert_uint_eq(se_strv_length(l), 1);
        ck_assert_str_eq(l[0], "only=1");
        se_dist_config_done(&cfg);

        tl_write_str(c, "a: [unclosed\n");
        ck_assert_int_eq(se_dist_config_load(main_path, NULL, &cfg, &e), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "30-c.yaml"));
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_unit_file) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *units = tl_path(dir, "units"), *envf = tl_path(dir, "env");
        _cleanup_free_ char *tmpl = NULL, *dd = NULL, *dropin = NULL, *path = NULL;
        se_error e = SE_ERROR_NULL;
        se_unit_file u;

        ck_assert_int_eq(mkdir(units, 0755), 0);
        tmpl = tl_path(units, "api@.service");
        {
                _cleanup_free_ char *text = NULL;

                ck_assert_int_ge(asprintf(&text,
                                          "[Unit]\nExecStart=/not/in/the/service/section\n"
                                          "[Service]\nEnvironment=\"A=1 2\" B=3\nEnvironmentFile=-/nonexistent\n"
                                          "EnvironmentFile=-%s\n"
                                          "ExecStart=-/usr/bin/api \\\n  --encryption-provider-config=/etc/%%i/enc.json "
                                          "\\\n  --name \"with space\" 100%%%%\n",
                                          envf),
                                 0);
                tl_write_str(tmpl, text);
        }
        tl_write_str(envf, "# comment\nK3S_DATASTORE_ENDPOINT=\"postgres://db/k\"\n");
        ck_assert_int_eq(setenv("SYSTEMD_UNIT_PATH", units, 1), 0);

        ck_assert_int_eq(se_unit_file_load("api@blue.service", false, NULL, &u, &e), 0);
        ck_assert_str_eq(u.path, tmpl);
        ck_assert_uint_eq(se_strv_length(u.exec_start), 5);
        ck_assert_str_eq(u.exec_start[0], "/usr/bin/api");
        ck_assert_str_eq(u.exec_start[1], "--encryption-provider-config=/etc/blue/enc.json");
        ck_assert_str_eq(u.exec_start[3], "with space");
        ck_assert_str_eq(u.exec_start[4], "100%");
        ck_assert(se_strv_contains(u.environment, "A=1 2"));
        ck_assert(se_strv_contains(u.environment, "B=3"));
        ck_assert(se_strv_contains(u.environment, "K3S_DATASTORE_ENDPOINT=postgres://db/k"));
        se_unit_file_done(&u);

        /* a drop-in of the instance resets ExecStart= and sets another */
        dd = tl_path(units, "api@blue.service.d");
        ck_assert_int_eq(mkdir(dd, 0755), 0);
        dropin = tl_path(dd, "60-x.conf");
        tl_write_str(dropin, "[Service]\nExecStart=\nExecStart=/usr/bin/api --encryption-provider-config /ours.json\n");
        ck_assert_int_eq(se_unit_file_load("api@blue.service", false, NULL, &u, &e), 0);
        ck_assert_uint_eq(se_strv_length(u.exec_start), 3);
        ck_assert_str_eq(u.exec_start[2], "/ours.json");
        ck_assert_uint_eq(se_strv_length(u.dropin_paths), 1);
        se_unit_file_done(&u);
        {
                char *ignore[] = {dropin, NULL};

                ck_assert_int_eq(se_unit_file_load("api@blue.service", false, ignore, &u, &e), 0);
                ck_assert_str_eq(u.exec_start[1], "--encryption-provider-config=/etc/blue/enc.json");
                se_unit_file_done(&u);
        }

        ck_assert_int_eq(se_unit_file_load("missing.service", false, NULL, &u, &e), -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "missing.service"));
        se_error_done(&e);
        ck_assert_int_eq(se_unit_admin_dir(false, &path), 0);
        ck_assert_str_eq(path, units);
        unsetenv("SYSTEMD_UNIT_PATH");
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_check_reads_config) {
        se_host h = {.kind = SE_HOST_KUBE_APISERVER, .unit = (char *) "kube-apiserver.service"};
        char *configs[] = {(char *) "/var/lib/secrets-encrypt/encryption-config.json", NULL};
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), -ESTALE); /* no unit file */
        se_error_done(&e);
        h.unit_file.path = (char *) "/etc/systemd/system/kube-apiserver.service";
        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "--encryption-provider-config"));
        se_error_done(&e);
        h.encryption_configs = configs;
        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), 0);
        ck_assert_int_eq(se_host_check_reads_config(&h, "/elsewhere.json", &e), -ESTALE);
        se_error_done(&e);

        h.kind = SE_HOST_K3S;
        h.config_path = (char *) "/etc/rancher/k3s/config.yaml";
        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), 0);
        h.secrets_encryption = true; /* k3s manages its own keys too: refused */
        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "secrets-encryption is on"));
        se_error_done(&e);
        h.secrets_encryption_flag = true; /* from the unit's command line: no config file can undo it */
        ck_assert_int_eq(se_host_check_reads_config(&h, configs[0], &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "Remove the flag"));
        se_error_done(&e);

        ck_assert_int_eq(se_host_kind_from_unit("k3s.service"), SE_HOST_K3S);
        ck_assert_int_eq(se_host_kind_from_unit("rke2-server.service"), SE_HOST_RKE2);
        ck_assert_int_eq(se_host_kind_from_unit("stand-in@1.service"), SE_HOST_KUBE_APISERVER);
        ck_assert_int_eq(se_host_kind_from_name("rke2"), SE_HOST_RKE2);
        ck_assert_int_eq(se_host_kind_from_name("k8s"), SE_HOST_NONE);
}
END_TEST

START_TEST(test_url_strip_userinfo) {
        static const char *const cases[][2] = {
                {"postgres://u:p@h:5432/db?sslmode=require", "postgres://h:5432/db?sslmode=require"},
                {"mysql://root:s/e@cr@t@tcp(127.0.0.1:3306)/k", "mysql://tcp(127.0.0.1:3306)/k"},
                {"sqlite:///a@b/state.db", "sqlite:///a@b/state.db"},
                {"https://a:b@h1:2379,https://h2:2379", "https://h1:2379,https://h2:2379"},
                {"http://h/?x=@y", "http://h/?x=@y"},
                {"https://h1:2379/x@y", "https://h1:2379/x@y"},
                {"postgres://u:p@h/db?x=a@b", "postgres://h/db?x=a@b"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = se_url_strip_userinfo(cases[i][0]);

                ck_assert_str_eq(s, cases[i][1]);
        }
}
END_TEST

static Suite *host_suite(void) {
        Suite *s = suite_create("host");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_dist_config_merge);
        tcase_add_test(tc, test_unit_file);
        tcase_add_test(tc, test_check_reads_config);
        tcase_add_test(tc, test_url_strip_userinfo);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(host_suite)
