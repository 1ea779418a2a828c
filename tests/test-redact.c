/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Redaction by field (module/base/redact.c): every secret value, whatever form it is written in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-config.h"
#include "se-fleet-hooks.h"
#include "se-redact.h"
#include "testlib.h"

#define KEY_A "c2VjcmV0c2VjcmV0"
#define KEY_B "c2VjcmV0c2VjcmV1"

/* Masks a copy of text; checks that none of the gone pieces and all of the kept ones remain. */
static void check(const char *text, const char *const *gone, const char *const *kept) {
        _cleanup_free_ char *t = strdup(text);

        ck_assert_ptr_nonnull(t);
        (void) se_redact_fields(t);
        ck_assert_uint_eq(strlen(t), strlen(text));
        for (size_t i = 0; gone && gone[i]; i++)
                ck_assert_msg(!strstr(t, gone[i]), "\"%s\" left in:\n%s", gone[i], t);
        for (size_t i = 0; kept && kept[i]; i++)
                ck_assert_msg(strstr(t, kept[i]), "\"%s\" lost in:\n%s", kept[i], t);
}

START_TEST(test_yaml_forms) {
        /* folded and literal block scalars, with their more-indented lines */
        check("resources:\n"
              "- resources: [secrets]\n"
              "  providers:\n"
              "  - aescbc:\n"
              "      keys:\n"
              "      - name: k\n"
              "        secret: >-\n"
              "          c2VjcmV0c2Vj\n"
              "\n"
              "          cmV0c2VjcmV0\n"
              "      - name: j\n"
              "        secret: |+2\n"
              "          QUFBQUFBQUFB\n"
              "  - identity: {}\n",
              (const char *[]){"c2VjcmV0c2Vj", "cmV0c2VjcmV0", "QUFBQUFBQUFB", NULL},
              (const char *[]){"- name: j\n", "  - identity: {}\n", "      - name: k\n", NULL});
        /* plain with continuation lines, the value on the next line, quotes, tags, a comment */
        check("- name: a\n  secret: c2VjcmV0\n    c2Vj\n  other: x\n"
              "- name: b\n  secret:\n    dmFsdWVv\n"
              "- name: c\n  secret: 'it''s bXlrZXk'\n"
              "- name: d\n  secret: !!str \"a\\\"bc\\u0041ZGVm\" # comment\n"
              "- {name: e, secret: ZWVlZWVl, x: y}\n"
              "- name: f\n  Secret: RkZGRkZG\n"
              "- name: g\n  \"s\\x65cret\": R0dHR0dH\n",
              (const char *[]){"c2VjcmV0", "c2Vj", "dmFsdWVv", "bXlrZXk", "ZGVm", "ZWVlZWVl", "RkZGRkZG", "R0dHR0dH",
                               NULL},
              (const char *[]){"other: x\n", "- name: b\n", "- name: c\n", "# comment", "x: y}", NULL});
        /* an alias: the anchored value goes too, in whatever form */
        check("x: &k >-\n  YWxpYXNl\n  ZGtleQ\n- name: a\n  secret: *k\n",
              (const char *[]){"YWxpYXNl", "ZGtleQ", NULL}, (const char *[]){"- name: a\n", NULL});
}
END_TEST

START_TEST(test_json_forms) {
        /* escapes in the value and in the name */
        check("{\"kind\":\"EncryptionConfiguration\",\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":"
              "\"k\",\"s\\u0065cret\":\"\\u0063\\u0032VjcmV0c2VjcmV0\"},{\"name\":\"j\",\"secret\":\n"
              "      \"c2Vjc\\/mV0\"}]}}]}]}",
              (const char *[]){"\\u0063\\u0032VjcmV0c2VjcmV0", "c2Vjc\\/mV0", NULL},
              (const char *[]){"\"name\":\"k\"", "\"name\":\"j\"", "}]}}]}]}", NULL});
        /* a value that is no string, in a message */
        check("Object 'Kind' is missing in '{\"secret\":{\"a\":\"QkJCQkJC\"},\"name\":\"x\"}'",
              (const char *[]){"QkJCQkJC", NULL}, (const char *[]){"\"name\":\"x\"}'", "Object 'Kind' is missing", NULL});
}
END_TEST

/* kube-apiserver's paths name the field without being one; prose keeps its words. */
START_TEST(test_no_false_alarm) {
        const char *msg = "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must "
                          "be base64 encoded";
        const char *prose = "the secret key was rotated; secrets: 12 re-encrypted";
        se_redact_span *v = NULL;
        size_t n = 7;

        check(msg, NULL, (const char *[]){msg, NULL});
        check(prose, NULL, (const char *[]){"the secret key was rotated; secrets: 12 re-encrypted", NULL});
        ck_assert_int_eq(se_redact_find("", 0, &v, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(v);
        /* NUL bytes are text like any other */
        ck_assert_int_eq(se_redact_find("secret: a\0b\nx: y", 16, &v, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(v[0].start, 8);
        ck_assert_uint_eq(v[0].end, 11);
        free(v);
}
END_TEST

/* The decoder's echo of a file ("Object 'Kind' is missing in '…'") shows no secret, in any form. */
START_TEST(test_config_echo) {
        static const char *const files[] = {
                "apiVersion: apiserver.config.k8s.io/v1\nresources:\n- resources: [secrets]\n  providers:\n"
                "  - aescbc:\n      keys:\n      - name: k1\n        secret: >-\n          " KEY_A "\n          " KEY_B
                "\n",
                "{\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{\"resources\":[\"secrets\"],"
                "\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"k1\",\"s\\u0065cret\":"
                "\"\\u0063\\u0032VjcmV0c2VjcmV0\"}]}}]}]}",
        };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                se_error e = SE_ERROR_NULL;
                const char *m;

                ck_assert_int_eq(se_config_parse("x", files[i], strlen(files[i]), NULL, &e), -EBADMSG);
                m = se_error_message(&e);
                ck_assert_msg(!strstr(m, KEY_A) && !strstr(m, KEY_B) && !strstr(m, "\\u0063\\u0032VjcmV0"),
                              "key in: %s", m);
                se_error_done(&e);
        }
}
END_TEST

/* A fleet hook's SECRETS_ENCRYPT_ERROR passes through the redaction too. */
START_TEST(test_fleet_hook_error) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *hook = tl_path(dir, "10-dump"), *out = tl_path(dir, "env"), *body = NULL, *got = NULL;
        se_fleet_event ev = {
                .event = "config-invalid",
                .node = "n",
                .error = "Object 'Kind' is missing in 'keys:\n- name: k\n  secret: >-\n    " KEY_A "\n    " KEY_B "\n'",
        };

        ck_assert_int_ge(asprintf(&body, "#!/bin/sh\nprintf '%%s' \"$SECRETS_ENCRYPT_ERROR\" > %s\n", out), 0);
        tl_write_str(hook, body);
        ck_assert_int_eq(chmod(hook, 0755), 0);
        ck_assert_int_eq(chmod(dir, 0755), 0);
        ck_assert_int_eq(se_fleet_hooks_run(dir, &ev, 10 * 1000000ULL, NULL), 0);
        got = tl_read_file(out, NULL);
        ck_assert_msg(!strstr(got, KEY_A) && !strstr(got, KEY_B), "key in SECRETS_ENCRYPT_ERROR: %s", got);
        ck_assert_ptr_nonnull(strstr(got, "Object 'Kind' is missing"));
        tl_tmpdir_remove(dir);
}
END_TEST

/* Past 64 aliases used as secrets the anchors are not looked up: nothing of the text is shown. */
START_TEST(test_too_many_aliases) {
        _cleanup_free_ char *t = NULL;
        se_redact_span *v = NULL;
        size_t n = 0;
        char *p;

        t = malloc(65 * 16 + 32);
        ck_assert_ptr_nonnull(t);
        p = stpcpy(t, "a: &k QUFBQUFB\n");
        for (int i = 0; i < 65; i++)
                p = stpcpy(p, "- secret: *k\n");
        ck_assert_int_eq(se_redact_find(t, strlen(t), &v, &n), -E2BIG);
        (void) se_redact_fields(t);
        ck_assert_ptr_null(strstr(t, "QUFBQUFB"));
        ck_assert_ptr_null(strchr(t, 'a'));
}
END_TEST

static Suite *redact_suite(void) {
        Suite *s = suite_create("redact");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_yaml_forms);
        tcase_add_test(tc, test_json_forms);
        tcase_add_test(tc, test_no_false_alarm);
        tcase_add_test(tc, test_config_echo);
        tcase_add_test(tc, test_fleet_hook_error);
        tcase_add_test(tc, test_too_many_aliases);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(redact_suite)
