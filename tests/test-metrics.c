/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The stage-since timestamp and the hook result survive in the file from one write to the next. */
START_TEST(test_history_carried_over) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *path = tl_path(dir, "secrets-encrypt.prom");
        se_error e = SE_ERROR_NULL;
        se_facts f = sample();
        se_metrics_history h;
        char *got;

        /* first write: the stage is entered now; no hook result known yet */
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        got = tl_read_file(path, NULL);
        check_exposition(got);
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_stage_since_timestamp_seconds 1714557660\n"));
        ck_assert_ptr_nonnull(strstr(got, "# TYPE secrets_encrypt_stage_since_timestamp_seconds gauge\n"));
        ck_assert_ptr_null(strstr(got, "secrets_encrypt_hook_"));
        free(got);

        /* same stage later: the time it was entered stays */
        f.now += 3600;
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        got = tl_read_file(path, NULL);
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_stage_since_timestamp_seconds 1714557660\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_metrics_timestamp_seconds 1714561260\n"));
        free(got);

        /* a failed hook run, reported by this process */
        se_metrics_set_hook_result(true, 1714561000);
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        got = tl_read_file(path, NULL);
        check_exposition(got);
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_failed 1\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_last_run_timestamp_seconds 1714561000\n"));
        ck_assert_ptr_nonnull(strstr(got, "# TYPE secrets_encrypt_hook_failed gauge\n"));
        free(got);

        /* another process (none reported here) keeps it; a new stage is entered now */
        se_metrics_set_hook_result(false, -1);
        f.stage = (char *) "reencrypt_finished";
        f.now += 60;
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        got = tl_read_file(path, NULL);
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_failed 1\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_stage_since_timestamp_seconds 1714561320\n"));
        free(got);

        /* the next successful hook run */
        se_metrics_set_hook_result(false, 1714561400);
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        got = tl_read_file(path, NULL);
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_failed 0\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_last_run_timestamp_seconds 1714561400\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_stage_since_timestamp_seconds 1714561320\n"));
        free(got);
        se_metrics_set_hook_result(false, -1);

        /* text that is not ours, or another stage: nothing carried */
        se_metrics_history_parse("stale\nsecrets_encrypt_hook_failed 7\n", "rotate", &h);
        ck_assert_int_eq(h.stage_since, -1);
        ck_assert_int_eq(h.hook_failed, -1);
        se_metrics_history_parse("secrets_encrypt_stage{stage=\"prepare\"} 1\n"
                                 "secrets_encrypt_stage_since_timestamp_seconds 5\n",
                                 "rotate", &h);
        ck_assert_int_eq(h.stage_since, -1);
        se_metrics_history_parse("secrets_encrypt_stage{stage=\"rotate\"} 1\n"
                                 "secrets_encrypt_stage_since_timestamp_seconds 5\n",
                                 "rotate", &h);
        ck_assert_int_eq(h.stage_since, 5);
        se_metrics_history_parse("secrets_encrypt_stage{stage=\"rotate\"} 1\n"
                                 "secrets_encrypt_stage_since_timestamp_seconds 5\n",
                                 NULL, &h);
        ck_assert_int_eq(h.stage_since, -1);

        /* unconfigured: no stage, so no stage-since */
        {
                se_facts u = { .node = (char *) "n", .enabled = -1, .active_key_time = -1, .hashes_match = true };
                _cleanup_free_ char *text = NULL;

                ck_assert_int_eq(se_metrics_format(&u, &text), 0);
                ck_assert_ptr_null(strstr(text, "stage_since"));
        }
        tl_tmpdir_remove(dir);
}
END_TEST

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;

        for (const char *p = haystack; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* The facts cannot be read (the hook failed on an invalid config): only the hook metrics change. */
START_TEST(test_write_hook_result_only) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *path = tl_path(dir, "secrets-encrypt.prom"), *missing = tl_path(dir, "none.prom"),
                            *before = NULL;
        se_error e = SE_ERROR_NULL;
        se_facts f = sample();
        char *got;

        se_metrics_set_hook_result(false, -1);
        ck_assert_int_eq(se_metrics_write(path, &f, &e), 0);
        before = tl_read_file(path, NULL);
        ck_assert_int_eq(se_metrics_write_hook_result(path, &e), 0); /* no result: nothing written */
        got = tl_read_file(path, NULL);
        ck_assert_str_eq(got, before);
        free(got);

        se_metrics_set_hook_result(true, 1714561000);
        ck_assert_int_eq(se_metrics_write_hook_result(path, &e), 0);
        se_metrics_set_hook_result(true, 1714561100); /* a retry: replaced, not added */
        ck_assert_int_eq(se_metrics_write_hook_result(path, &e), 0);
        got = tl_read_file(path, NULL);
        check_exposition(got);
        ck_assert_uint_eq(count(got, "secrets_encrypt_hook_failed"), 3); /* HELP, TYPE, sample */
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_failed 1\n"));
        ck_assert_ptr_nonnull(strstr(got, "\nsecrets_encrypt_hook_last_run_timestamp_seconds 1714561100\n"));
        ck_assert(strneq(got, before, strlen(before))); /* the rest as it was */
        free(got);

        /* no file yet: nothing names the node, nothing written */
        ck_assert_int_eq(se_metrics_write_hook_result(missing, &e), 0);
        ck_assert_int_lt(access(missing, F_OK), 0);
        se_metrics_set_hook_result(false, -1);
        tl_tmpdir_remove(dir);
}
END_TEST

static Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_format_unconfigured);
        tcase_add_test(tc, test_write_atomic_0644);
        tcase_add_test(tc, test_history_carried_over);
        tcase_add_test(tc, test_write_hook_result_only);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(metrics_suite)
