/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Redaction by field (module/base/redact.c): every secret value, whatever form it is written in. */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-redact.h"
#include "testlib.h"

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

static Suite *redact_suite(void) {
        Suite *s = suite_create("redact");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_yaml_forms);
        tcase_add_test(tc, test_json_forms);
        tcase_add_test(tc, test_no_false_alarm);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(redact_suite)
