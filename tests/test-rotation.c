/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The key-list edits on configs with several resources entries (coverage.c, rotation.c): only the
 * providers of the entry that covers secrets change, every other entry is carried through byte
 * for byte, aesgcm keys are migrated away from, KMS is never touched, the write key is never
 * pruned, and the rotation's scope is what kube-apiserver stores for the entry's resources. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coverage-internal.h"
#include "macro.h"
#include "se-config.h"
#include "se-rotation.h"
#include "testlib.h"

#define K1 "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="
#define K2 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY="
#define K3 "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpBQkNERUY="

static se_config *parse(const char *json) {
        se_config *c = NULL;
        se_error e = SE_ERROR_NULL;
        int r = se_config_parse("test", json, strlen(json), &c, &e);

        ck_assert_msg(r >= 0, "parse: %s", se_error_message(&e));
        se_error_done(&e);
        return c;
}

/* One entry of a config as k3s's JSON, to compare entries byte for byte. */
static char *entry_json(const se_config *c, size_t i) {
        se_config one = *c;
        char *json = NULL;
        size_t size;

        one.resources = &c->resources[i];
        one.n_resources = 1;
        ck_assert_int_ge(se_config_to_json(&one, &json, &size), 0);
        return json;
}

static const char *const three_entries =
        "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":["
        "{\"resources\":[\"configmaps\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"cm1\",\"secret\":\"" K1
        "\"}]}},{\"identity\":{}}]},"
        "{\"resources\":[\"secrets\",\"leases.coordination.k8s.io\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":"
        "\"aescbckey\",\"secret\":\"" K2 "\"}]}},{\"identity\":{}}]},"
        "{\"resources\":[\"*.*\"],\"providers\":[{\"secretbox\":{\"keys\":[{\"name\":\"sb1\",\"secret\":\"" K3
        "\"}]}},{\"identity\":{}}]}]}";

START_TEST(test_edits_keep_other_entries) {
        se_config *c = parse(three_entries);
        _cleanup_free_ char *e0 = entry_json(c, 0), *e2 = entry_json(c, 2);
        se_config *n[5] = {};
        char *name = NULL;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_ge(se_rotation_prepare(c, "aescbc", 1700000000, &n[0], &name, &e), 0);
        free(name);
        ck_assert_int_ge(se_rotation_rotate(n[0], "aescbc", &n[1], &name, &e), 0);
        free(name);
        ck_assert_int_ge(se_rotation_add_and_rotate(c, "secretbox", 1700000000, &n[2], &name, &e), 0);
        free(name);
        ck_assert_int_ge(se_rotation_set_enabled(c, "aescbc", false, 1700000000, &n[3], &e), 0);
        ck_assert_int_ge(se_rotation_prune(n[1], &n[4], &name, &e), 0);
        ck_assert_str_eq(name, "aescbckey");
        free(name);

        for (size_t i = 0; i < ELEMENTSOF(n); i++) {
                _cleanup_free_ char *a = NULL, *b = NULL;

                ck_assert_ptr_nonnull(n[i]);
                ck_assert_int_eq(n[i]->n_resources, 3);
                a = entry_json(n[i], 0);
                b = entry_json(n[i], 2);
                ck_assert_str_eq(a, e0);
                ck_assert_str_eq(b, e2);
                ck_assert_int_eq(n[i]->resources[1].n_resources, 2);
                ck_assert_str_eq(n[i]->resources[1].resources[1], "leases.coordination.k8s.io");
                ck_assert_int_ge(se_config_validate(n[i], false, &e), 0);
        }
        /* prepare adds a read key: the write key stays */
        ck_assert_str_eq(n[0]->resources[1].providers[0].aescbc->keys[0].name, "aescbckey");
        ck_assert_int_eq(n[0]->resources[1].providers[0].aescbc->n_keys, 2);
        /* disable puts identity first in the rotated entry only */
        ck_assert_int_eq(se_provider_get_type(&n[3]->resources[1].providers[0], NULL), SE_PROVIDER_IDENTITY);
        for (size_t i = 0; i < ELEMENTSOF(n); i++)
                se_config_free(n[i]);
        se_config_free(c);
}
END_TEST

START_TEST(test_prune_migrates_aesgcm_never_write_key_or_kms) {
        se_config *c = parse(
                "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{"
                "\"resources\":[\"secrets\"],\"providers\":[{\"secretbox\":{\"keys\":[{\"name\":\"sb\",\"secret\":"
                "\"" K1 "\"}]}},{\"aescbc\":{\"keys\":[{\"name\":\"cbc\",\"secret\":\"" K2
                "\"}]}},{\"aesgcm\":{\"keys\":[{\"name\":\"gcm\",\"secret\":\"" K3
                "\"}]}},{\"kms\":{\"name\":\"vault\",\"endpoint\":\"unix:///k.sock\"}},{\"identity\":{}}]}]}");
        se_config *p = NULL;
        char *removed = NULL;
        se_error e = SE_ERROR_NULL;

        /* a secretbox write key (k3s's rule with provider aescbc would drop it): everything else
         * but KMS goes */
        ck_assert_int_ge(se_rotation_prune(c, &p, &removed, &e), 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(removed, "gcm, cbc");
        ck_assert_int_eq(se_provider_get_type(&p->resources[0].providers[0], NULL), SE_PROVIDER_SECRETBOX);
        ck_assert_str_eq(p->resources[0].providers[0].secretbox->keys[0].name, "sb");
        ck_assert(!se_entry_has_key(&p->resources[0], SE_PROVIDER_AESCBC, "cbc"));
        ck_assert(se_entry_has_key(&p->resources[0], SE_PROVIDER_KMS, "vault"));
        ck_assert(!se_entry_has_key(&p->resources[0], SE_PROVIDER_AESGCM, "gcm"));
        free(removed);
        se_config_free(p);
        se_config_free(c);
}
END_TEST

/* With identity first (disabled) the key enable would promote stays, as in k3s. */
START_TEST(test_prune_disabled_keeps_enable_key) {
        se_config *c = parse(
                "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{"
                "\"resources\":[\"secrets\"],\"providers\":[{\"identity\":{}},{\"aescbc\":{\"keys\":[{\"name\":\"k1\","
                "\"secret\":\"" K1 "\"},{\"name\":\"k2\",\"secret\":\"" K2 "\"}]}}]}]}");
        se_config *p = NULL;
        char *removed = NULL;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_ge(se_rotation_prune(c, &p, &removed, &e), 0);
        ck_assert_str_eq(removed, "k2");
        ck_assert(se_entry_has_key(&p->resources[0], SE_PROVIDER_AESCBC, "k1"));
        free(removed);
        se_config_free(p);
        se_config_free(c);
}
END_TEST

START_TEST(test_write_provider_kms_refused) {
        se_config *c = parse(
                "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{"
                "\"resources\":[\"secrets\"],\"providers\":[{\"kms\":{\"apiVersion\":\"v2\",\"name\":\"vault\","
                "\"endpoint\":\"unix:///k.sock\"}},{\"identity\":{}}]}]}");
        se_config *n = NULL;
        char *name = NULL;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_rotation_add_and_rotate(c, "aescbc", 1700000000, &n, &name, &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "KMS"));
        ck_assert_ptr_null(n);
        se_error_done(&e);
        se_config_free(c);
}
END_TEST

START_TEST(test_secrets_entry) {
        se_config *c = parse(three_entries);
        size_t i = 99;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_config_secrets_entry(c, &i, &e), 0);
        ck_assert_uint_eq(i, 1);
        se_config_free(c);
        /* the wildcard when no entry names secrets; none at all is refused */
        c = parse("{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":["
                  "{\"resources\":[\"configmaps\"],\"providers\":[{\"identity\":{}}]},"
                  "{\"resources\":[\"*.\"],\"providers\":[{\"identity\":{}}]}]}");
        ck_assert_int_eq(se_config_secrets_entry(c, &i, &e), 0);
        ck_assert_uint_eq(i, 1);
        se_config_free(c);
        c = parse("{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":["
                  "{\"resources\":[\"configmaps\"],\"providers\":[{\"identity\":{}}]}]}");
        ck_assert_int_eq(se_config_secrets_entry(c, &i, &e), -ESTALE);
        se_error_done(&e);
        se_config_free(c);
}
END_TEST

START_TEST(test_storage_prefixes) {
        static const struct {
                const char *gr, *prefix;
        } cases[] = {
                {"secrets", "/registry/secrets/"},
                {"secrets.", "/registry/secrets/"},
                {"configmaps", "/registry/configmaps/"},
                {"services", "/registry/services/specs/"},
                {"endpoints", "/registry/services/endpoints/"},
                {"nodes", "/registry/minions/"},
                {"deployments.apps", "/registry/deployments/"},
                {"leases.coordination.k8s.io", "/registry/leases/"},
                {"ingresses.networking.k8s.io", "/registry/ingress/"},
                {"widgets.example.com", "/registry/example.com/widgets/"},
                {"*.*", NULL},
                {"*.apps", NULL},
                {"*.", NULL},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *p = NULL;

                ck_assert_int_eq(se_resource_storage_prefix(cases[i].gr, &p), 0);
                if (cases[i].prefix)
                        ck_assert_str_eq(p, cases[i].prefix);
                else
                        ck_assert_ptr_null(p);
                free(p);
        }
}
END_TEST

START_TEST(test_scope_and_owned_keys) {
        se_config *c = parse(three_entries);
        se_rotation_scope sc = {};
        se_error e = SE_ERROR_NULL;
        char **removed = NULL;
        se_config *n = NULL;

        ck_assert_int_eq(se_rotation_scope_init(c, &sc, &e), 0);
        ck_assert_str_eq(sc.strict[0], "/registry/secrets/");
        ck_assert_str_eq(sc.strict[1], "/registry/leases/");
        ck_assert_ptr_null(sc.strict[2]);
        ck_assert_ptr_null(sc.owned); /* no wildcard in the rotated entry */
        se_rotation_scope_done(&sc);

        /* a key of the same name in another entry is not owned */
        ck_assert_int_eq(se_entry_owned_value_prefixes(c, 1, &removed), 0);
        ck_assert_str_eq(removed[0], "k8s:enc:aescbc:v1:aescbckey:");
        ck_assert_ptr_null(removed[1]);
        se_strv_free(removed);

        ck_assert_int_ge(se_config_copy(c, &n), 0);
        se_provider_done(&n->resources[2].providers[0]);
        n->resources[2].providers[0] = (se_provider){.identity = true};
        ck_assert_int_eq(se_config_removed_keys(c, n, &removed), 0);
        ck_assert_str_eq(removed[0], "k8s:enc:secretbox:v1:sb1:");
        ck_assert_ptr_null(removed[1]);
        se_strv_free(removed);
        ck_assert_int_eq(se_config_removed_keys(c, c, &removed), 0);
        ck_assert_ptr_null(removed);
        se_config_free(n);
        se_config_free(c);
}
END_TEST

static Suite *rotation_suite(void) {
        Suite *s = suite_create("rotation");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_edits_keep_other_entries);
        tcase_add_test(tc, test_prune_migrates_aesgcm_never_write_key_or_kms);
        tcase_add_test(tc, test_prune_disabled_keeps_enable_key);
        tcase_add_test(tc, test_write_provider_kms_refused);
        tcase_add_test(tc, test_secrets_entry);
        tcase_add_test(tc, test_storage_prefixes);
        tcase_add_test(tc, test_scope_and_owned_keys);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(rotation_suite)
