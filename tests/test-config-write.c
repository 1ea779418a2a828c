/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"
#include "testlib.h"

/* k3s's encryption-config.json layouts (reference/k3s-secrets-encrypt.md §2.3), byte for byte. */

#define K1 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="
#define K2 "Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4="
#define HEAD "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{\"resources\":[\"secrets\"],\"providers\":["
#define TAIL "]}]}"

/* ---- building models by hand ---- */

static se_config *mk_config(void) {
        se_config *c = se_config_new();

        ck_assert_ptr_nonnull(c);
        c->kind = strdup("EncryptionConfiguration");
        c->api_version = strdup("apiserver.config.k8s.io/v1");
        ck_assert(c->kind && c->api_version);
        return c;
}

/* A resources[] entry with the given resource names (NULL-terminated); returns its index. */
static size_t mk_entry(se_config *c, ...) {
        se_resource_config *rc;
        const char *s;
        va_list ap;

        c->resources = realloc(c->resources, (c->n_resources + 1) * sizeof(se_resource_config));
        ck_assert_ptr_nonnull(c->resources);
        rc = &c->resources[c->n_resources];
        *rc = (se_resource_config){};
        va_start(ap, c);
        while ((s = va_arg(ap, const char *))) {
                rc->resources = realloc(rc->resources, (rc->n_resources + 1) * sizeof(char *));
                ck_assert_ptr_nonnull(rc->resources);
                rc->resources[rc->n_resources++] = strdup(s);
        }
        va_end(ap);
        return c->n_resources++;
}

static se_provider *mk_provider(se_config *c, size_t entry) {
        se_resource_config *rc = &c->resources[entry];

        rc->providers = realloc(rc->providers, (rc->n_providers + 1) * sizeof(se_provider));
        ck_assert_ptr_nonnull(rc->providers);
        rc->providers[rc->n_providers] = (se_provider){};
        return &rc->providers[rc->n_providers++];
}

/* name, secret, name, secret, …, NULL */
static se_key_list *mk_keys(const char *name, ...) {
        se_key_list *l = calloc(1, sizeof(se_key_list));
        va_list ap;

        ck_assert_ptr_nonnull(l);
        va_start(ap, name);
        for (const char *n = name; n; n = va_arg(ap, const char *)) {
                const char *secret = va_arg(ap, const char *);

                l->keys = realloc(l->keys, (l->n_keys + 1) * sizeof(se_key));
                ck_assert_ptr_nonnull(l->keys);
                l->keys[l->n_keys++] = (se_key){ .name = strdup(n), .secret = strdup(secret) };
        }
        va_end(ap);
        return l;
}

static se_kms *mk_kms(const char *version, const char *name, const char *endpoint, bool has_cachesize,
                      int32_t cachesize, int64_t timeout_ns) {
        se_kms *k = calloc(1, sizeof(se_kms));

        ck_assert_ptr_nonnull(k);
        *k = (se_kms){ .api_version = strdup_null(version),
                       .name = strdup_null(name),
                       .endpoint = strdup_null(endpoint),
                       .has_cachesize = has_cachesize,
                       .cachesize = cachesize,
                       .timeout_ns = timeout_ns };
        return k;
}

static void assert_json(const se_config *c, const char *expected) {
        _cleanup_free_ char *json = NULL;
        size_t size = 0;

        ck_assert_int_eq(se_config_to_json(c, &json, &size), 0);
        ck_assert_str_eq(json, expected);
        ck_assert_uint_eq(size, strlen(expected));
}

/* parse → to_json gives the same bytes */
static void assert_roundtrip(const char *text) {
        _cleanup_free_ char *json = NULL;
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        size_t size = 0;
        int r;

        r = se_config_parse("encryption-config.json", text, strlen(text), &c, &e);
        ck_assert_msg(r == 0, "parse failed: %s", se_error_message(&e));
        r = se_config_validate(c, false, &e);
        ck_assert_msg(r == 0, "validate failed: %s", se_error_message(&e));
        ck_assert_int_eq(se_config_to_json(c, &json, &size), 0);
        ck_assert_str_eq(json, text);
        ck_assert_uint_eq(size, strlen(text));
        se_config_free(c);
        se_error_done(&e);
}

START_TEST(test_fresh_aescbc) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->aescbc = mk_keys("aescbckey", K1, NULL);
        mk_provider(c, i)->identity = true;
        assert_json(c, HEAD "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K1 "\"}]}},{\"identity\":{}}" TAIL);
        se_config_free(c);
}
END_TEST

START_TEST(test_fresh_secretbox) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->secretbox = mk_keys("secretboxkey", K1, NULL);
        mk_provider(c, i)->identity = true;
        assert_json(c, HEAD "{\"secretbox\":{\"keys\":[{\"name\":\"secretboxkey\",\"secret\":\"" K1
                            "\"}]}},{\"identity\":{}}" TAIL);
        se_config_free(c);
}
END_TEST

START_TEST(test_disabled) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->identity = true;
        mk_provider(c, i)->aescbc = mk_keys("aescbckey-2024-05-01T10:00:00Z", K2, "aescbckey", K1, NULL);
        assert_json(c, HEAD "{\"identity\":{}},{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey-2024-05-01T10:00:00Z\",\"secret\":\"" K2
                            "\"},{\"name\":\"aescbckey\",\"secret\":\"" K1 "\"}]}}" TAIL);
        se_config_free(c);
}
END_TEST

START_TEST(test_identity_only) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->identity = true;
        assert_json(c, HEAD "{\"identity\":{}}" TAIL);
        se_config_free(c);
}
END_TEST

START_TEST(test_primary_secondary_identity) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->secretbox = mk_keys("secretboxkey", K1, NULL);
        mk_provider(c, i)->aescbc = mk_keys("aescbckey", K2, NULL);
        mk_provider(c, i)->identity = true;
        assert_json(c, HEAD "{\"secretbox\":{\"keys\":[{\"name\":\"secretboxkey\",\"secret\":\"" K1
                            "\"}]}},{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K2
                            "\"}]}},{\"identity\":{}}" TAIL);
        se_config_free(c);
}
END_TEST

/* Go's struct order inside one element (only reachable for invalid configs, but the writer must
 * not invent an order) and omitempty of every member. */
START_TEST(test_member_order_and_kms) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", "configmaps", NULL);
        se_provider *p = mk_provider(c, i);

        p->kms = mk_kms("v1", "k", "unix:///k.sock", true, 1000, INT64_C(3000000000));
        p->identity = true;
        p->secretbox = mk_keys("s", K1, NULL);
        p->aescbc = mk_keys("c", K1, NULL);
        p->aesgcm = mk_keys("g", K1, NULL);
        mk_provider(c, i)->kms = mk_kms("v2", "k2", "unix:///k2.sock", false, 0, INT64_C(100000000));
        mk_provider(c, i)->kms = mk_kms("v1", "k3", "unix:///k3.sock", true, -1, INT64_C(90000000000));
        assert_json(c, "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                       "\"resources\":[{\"resources\":[\"secrets\",\"configmaps\"],\"providers\":["
                       "{\"aesgcm\":{\"keys\":[{\"name\":\"g\",\"secret\":\"" K1 "\"}]},"
                       "\"aescbc\":{\"keys\":[{\"name\":\"c\",\"secret\":\"" K1 "\"}]},"
                       "\"secretbox\":{\"keys\":[{\"name\":\"s\",\"secret\":\"" K1 "\"}]},"
                       "\"identity\":{},"
                       "\"kms\":{\"apiVersion\":\"v1\",\"name\":\"k\",\"cachesize\":1000,\"endpoint\":\"unix:///k.sock\",\"timeout\":\"3s\"}},"
                       "{\"kms\":{\"apiVersion\":\"v2\",\"name\":\"k2\",\"endpoint\":\"unix:///k2.sock\",\"timeout\":\"100ms\"}},"
                       "{\"kms\":{\"apiVersion\":\"v1\",\"name\":\"k3\",\"cachesize\":-1,\"endpoint\":\"unix:///k3.sock\",\"timeout\":\"1m30s\"}}"
                       "]}]}");
        se_config_free(c);
}
END_TEST

START_TEST(test_nulls_and_omitempty) {
        se_config *c = se_config_new();
        size_t i;

        /* kind/apiVersion are omitempty; nil slices are null */
        assert_json(c, "{\"resources\":null}");
        i = mk_entry(c, NULL);
        assert_json(c, "{\"resources\":[{\"resources\":null,\"providers\":null}]}");
        mk_provider(c, i)->aescbc = calloc(1, sizeof(se_key_list));
        mk_provider(c, i);
        assert_json(c, "{\"resources\":[{\"resources\":null,\"providers\":[{\"aescbc\":{\"keys\":null}},{}]}]}");
        se_config_free(c);
}
END_TEST

/* encoding/json escaping: HTML-safe, \u2028/\u2029, short escapes incl. \b \f (Go ≥ 1.22),
 * other controls as \u00XX, DEL raw, invalid UTF-8 as \ufffd, valid UTF-8 raw. */
START_TEST(test_go_string_escaping) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "a<b>&c", "q\"\\/", "\b\f\n\r\t\x01\x1f\x7f", "\xe2\x80\xa8\xe2\x80\xa9",
                            "\xff\xc3(\xed\xa0\x80x", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91", NULL);

        mk_provider(c, i)->identity = true;
        assert_json(c, "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                       "\"resources\":[{\"resources\":["
                       "\"a\\u003cb\\u003e\\u0026c\","
                       "\"q\\\"\\\\/\","
                       "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\","
                       "\"\\u2028\\u2029\","
                       "\"\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffdx\","
                       "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\""
                       "],\"providers\":[{\"identity\":{}}]}]}");
        se_config_free(c);
}
END_TEST

START_TEST(test_roundtrip_k3s_files) {
        assert_roundtrip(HEAD "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K1 "\"}]}},{\"identity\":{}}" TAIL);
        assert_roundtrip(HEAD "{\"secretbox\":{\"keys\":[{\"name\":\"secretboxkey\",\"secret\":\"" K1 "\"}]}},{\"identity\":{}}" TAIL);
        assert_roundtrip(HEAD "{\"identity\":{}}" TAIL);
        assert_roundtrip(HEAD "{\"identity\":{}},{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K1 "\"}]}}" TAIL);
        /* after prepare, then after rotate (right rotation) */
        assert_roundtrip(HEAD "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K1
                              "\"},{\"name\":\"aescbckey-2024-05-01T10:00:00Z\",\"secret\":\"" K2 "\"}]}},{\"identity\":{}}" TAIL);
        assert_roundtrip(HEAD "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey-2024-05-01T10:00:00Z\",\"secret\":\"" K2
                              "\"},{\"name\":\"aescbckey\",\"secret\":\"" K1 "\"}]}},{\"identity\":{}}" TAIL);
        assert_roundtrip(HEAD "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey\",\"secret\":\"" K1
                              "\"}]}},{\"secretbox\":{\"keys\":[{\"name\":\"secretboxkey\",\"secret\":\"" K2
                              "\"}]}},{\"identity\":{}}" TAIL);
}
END_TEST

/* A model written, parsed back and written again is stable (the writer emits what the parser
 * reads), including KMS and escaped text. */
START_TEST(test_roundtrip_model) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        se_error e = SE_ERROR_NULL;
        se_config *c = mk_config(), *d = NULL;
        size_t i = mk_entry(c, "secrets", "<odd>&", NULL), na, nb;

        mk_provider(c, i)->aesgcm = mk_keys("k\u00e9y", K1, NULL);
        mk_provider(c, i)->kms = mk_kms("v2", "kms", "unix:///run/kms.sock", false, 0, INT64_C(1500000000));
        mk_provider(c, i)->identity = true;
        ck_assert_int_eq(se_config_to_json(c, &a, &na), 0);
        ck_assert_int_eq(se_config_parse("x.json", a, na, &d, &e), 0);
        ck_assert_int_eq(se_config_to_json(d, &b, &nb), 0);
        ck_assert_str_eq(a, b);
        ck_assert(tl_memmem(a, na, "\"timeout\":\"1.5s\"", 16));
        se_config_free(c);
        se_config_free(d);
        se_error_done(&e);
}
END_TEST

START_TEST(test_invalid_args) {
        char *json = NULL;
        size_t n = 0;

        ck_assert_int_eq(se_config_to_json(NULL, &json, &n), -EINVAL);
        ck_assert_ptr_null(json);
}
END_TEST

static Suite *config_write_suite(void) {
        Suite *s = suite_create("config-write");
        TCase *tc = tcase_create("k3s-json");

        tcase_add_test(tc, test_fresh_aescbc);
        tcase_add_test(tc, test_fresh_secretbox);
        tcase_add_test(tc, test_disabled);
        tcase_add_test(tc, test_identity_only);
        tcase_add_test(tc, test_primary_secondary_identity);
        tcase_add_test(tc, test_member_order_and_kms);
        tcase_add_test(tc, test_nulls_and_omitempty);
        tcase_add_test(tc, test_go_string_escaping);
        tcase_add_test(tc, test_roundtrip_k3s_files);
        tcase_add_test(tc, test_roundtrip_model);
        tcase_add_test(tc, test_invalid_args);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(config_write_suite)
