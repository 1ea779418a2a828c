/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-facts.h"
#include "se-metrics.h"
#include "testlib.h"

static se_facts sample(void) {
        static char *keys[] = { (char *) "aescbckey-2024-05-01T10:00:00Z", (char *) "aescbckey" };

        return (se_facts){
                .node = (char *) "node \"a\"\\b\nc",
                .configured = true,
                .stage = (char *) "rotate",
                .enabled = 1,
                .provider = (char *) "aescbc",
                .active_key = keys[0],
                .active_key_time = 1714557600,
                .keys = keys,
                .n_keys = 2,
                .hashes_match = false,
                .last_rotation = 1700000000,
                .reencrypt_pending = true,
                .reencrypt_done = 12,
                .reencrypt_total = 40,
                .now = 1714557600 + 60,
        };
}

/* Every sample line is NAME{labels} VALUE, and its name had HELP and TYPE lines before it. */
static void check_exposition(const char *text) {
        regex_t sample_re;
        _cleanup_free_ char *copy = strdup(text);
        char *save = NULL, helped[64][96] = {}, typed[64][96] = {};
        size_t n_help = 0, n_type = 0;

        ck_assert_int_eq(regcomp(&sample_re,
                                 "^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\",?)*\\})? "
                                 "-?[0-9]+$",
                                 REG_EXTENDED),
                         0);
        ck_assert(text[strlen(text) - 1] == '\n');
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char name[96];

                if (sscanf(line, "# HELP %95s ", name) == 1) {
                        ck_assert_uint_lt(n_help, 64);
                        strcpy(helped[n_help++], name);
                        continue;
                }
                if (sscanf(line, "# TYPE %95s ", name) == 1) {
                        ck_assert_ptr_nonnull(strstr(line, " gauge"));
                        strcpy(typed[n_type++], name);
                        continue;
                }
                ck_assert_msg(regexec(&sample_re, line, 0, NULL, 0) == 0, "bad sample line: %s", line);
                {
                        size_t l = strcspn(line, "{ ");
                        bool h = false, t = false;

                        for (size_t i = 0; i < n_help; i++)
                                h = h || (strlen(helped[i]) == l && strneq(helped[i], line, l));
                        for (size_t i = 0; i < n_type; i++)
                                t = t || (strlen(typed[i]) == l && strneq(typed[i], line, l));
                        ck_assert_msg(h && t, "no HELP/TYPE before %s", line);
                }
        }
        regfree(&sample_re);
}

START_TEST(test_format) {
        se_facts f = sample();
        _cleanup_free_ char *text = NULL;
        int ones = 0;

        ck_assert_int_eq(se_metrics_format(&f, &text), 0);
        check_exposition(text);
        for (int s = 0; s < _SE_STAGE_MAX; s++) {
                char line[128];

                snprintf(line, sizeof(line), "secrets_encrypt_stage{stage=\"%s\"} %d\n", se_stage_to_string(s),
                         streq(se_stage_to_string(s), "rotate"));
                ck_assert_msg(strstr(text, line), "missing %s", line);
                ones += streq(se_stage_to_string(s), "rotate");
        }
        ck_assert_int_eq(ones, 1);
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_keys 2\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_last_rotation_timestamp_seconds 1700000000\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_reencrypt_done 12\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_reencrypt_total 40\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_hashes_match 0\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_active_key_age_seconds 60\n"));
        ck_assert_ptr_nonnull(strstr(text, "# TYPE secrets_encrypt_hashes_match gauge\n"));
        /* label values escaped */
        ck_assert_ptr_nonnull(strstr(text, "secrets_encrypt_info{version=\"" SE_VERSION
                                           "\",node=\"node \\\"a\\\"\\\\b\\nc\",provider=\"aescbc\"} 1\n"));
}
END_TEST

START_TEST(test_format_unconfigured) {
        se_facts f = { .node = (char *) "n", .enabled = -1, .active_key_time = -1, .hashes_match = true };
        _cleanup_free_ char *text = NULL;

        ck_assert_int_eq(se_metrics_format(&f, &text), 0);
        check_exposition(text);
        ck_assert_ptr_null(strstr(text, "} 1\nsecrets_encrypt_stage")); /* no current stage */
        ck_assert_ptr_nonnull(strstr(text, "secrets_encrypt_stage{stage=\"start\"} 0\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_keys 0\n"));
        ck_assert_ptr_null(strstr(text, "active_key_age"));
        ck_assert_ptr_nonnull(strstr(text, "provider=\"none\"} 1\n"));
}
END_TEST

START_TEST(test_write_atomic_0644) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *path = tl_path(dir, "secrets-encrypt.prom"), *text = NULL, *got = NULL;
        se_error e = SE_ERROR_NULL;
        se_facts f = sample();
        struct stat st;
        DIR *d;
        struct dirent *de;
        int entries = 0;

        umask(0077); /* as the CLI runs: the file must still be readable by node-exporter */
        tl_write_str(path, "stale\n");
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 07777, 0644);
        ck_assert_int_eq(se_metrics_format(&f, &text), 0);
        got = tl_read_file(path, NULL);
        ck_assert_str_eq(got, text);
        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        entries++;
        closedir(d);
        ck_assert_int_eq(entries, 1); /* no temp file left behind */

        /* an unwritable target is an error with a message, not a crash */
        ck_assert_int_lt(se_metrics_write("/nonexistent-dir/x.prom", &f, &e), 0);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "/nonexistent-dir/x.prom"));
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

static Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_format_unconfigured);
        tcase_add_test(tc, test_write_atomic_0644);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(metrics_suite)
