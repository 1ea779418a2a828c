/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"
#include "testlib.h"

#define PREFIX "error decoding encryption provider configuration file \"t\": "
#define HDR "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n"
#define JHDR "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
#define SECRET "c2VjcmV0IGlzIHNlY3VyZQ=="
#define SCHEME "k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go:142"
/* kube-apiserver echoes the whole file in these two; we never do (issue 16) */
#define NO_KIND "Object 'Kind' is missing in '…' " SE_CONFIG_NOT_ECHOED "; set kind to EncryptionConfiguration"
#define NO_VERSION                                                                                                     \
        "Object 'apiVersion' is missing in '…' " SE_CONFIG_NOT_ECHOED "; set apiVersion to apiserver.config.k8s.io/v1"

/* Parses s; on failure returns the message (caller frees) in *ret_msg. */
static int parse_mem(const char *s, size_t n, se_config **ret, char **ret_msg) {
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        int r = se_config_parse("t", s, n, &c, &e);

        if (r < 0) {
                ck_assert_ptr_null(c);
                ck_assert_ptr_nonnull(e.message);
                if (ret_msg)
                        *ret_msg = strdup(e.message);
        } else {
                ck_assert_ptr_nonnull(c);
                if (ret)
                        *ret = c;
                else
                        se_config_free(c);
        }
        se_error_done(&e);
        return r;
}

/* the failure detail after PREFIX, or NULL when the input decodes */
static void expect(const char *in, size_t n, const char *want);
#define expect_lit(lit, want) expect(lit, sizeof(lit) - 1, want)

static int parse_str(const char *s, se_config **ret, char **ret_msg) {
        return parse_mem(s, strlen(s), ret, ret_msg);
}

static se_provider *provider(se_config *c, size_t r, size_t p) {
        ck_assert_uint_gt(c->n_resources, r);
        ck_assert_uint_gt(c->resources[r].n_providers, p);
        return &c->resources[r].providers[p];
}

/* ---- conformance files (decode stage) ---- */

static const struct {
        const char *file;
        const char *error; /* detail after the prefix; NULL = decodes */
} conformance[] = {
        { "encryptionconfig/controller/testdata/ec_config.yaml", NULL },
        { "encryptionconfig/testdata/invalid-configs/invalid-aes-gcm.yaml", NULL },
        { "encryptionconfig/testdata/invalid-configs/invalid-typo.yaml",
          "strict decoding error: unknown field \"resources[0].providers[3].kms.pandas\"" },
        { "encryptionconfig/testdata/invalid-configs/kms/invalid-apiversion.yaml", NULL },
        { "encryptionconfig/testdata/invalid-configs/kms/invalid-config-type.yaml",
          "no kind \"EncryptionConfigurations\" is registered for version \"apiserver.config.k8s.io/v1\" in scheme "
          "\"" SCHEME "\"" },
        { "encryptionconfig/testdata/invalid-configs/kms/invalid-content.yaml", NO_KIND },
        { "encryptionconfig/testdata/invalid-configs/kms/invalid-gvk.yaml", "" /* checked below */ },
        { "encryptionconfig/testdata/valid-configs/aes-cbc-first.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/aes-gcm-first.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-keys-reversed.json", NULL },
        { "encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-keys.json", NULL },
        { "encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-providers-reversed.json", NULL },
        { "encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-providers.json", NULL },
        { "encryptionconfig/testdata/valid-configs/aes/aes-gcm.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/identity-first.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kms-first.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kms/default-timeout.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kms/multiple-providers-kmsv2.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kms/multiple-providers-mixed.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kms/multiple-providers.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/kmsv2-first.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/legacy.yaml", NULL },
        { "encryptionconfig/testdata/valid-configs/secret-box-first.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/invalid-configs/aes/invalid-key.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/invalid-configs/aes/no-key.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/invalid-configs/kms/negative-timeout.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/invalid-configs/kms/no-endpoint.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/invalid-configs/kms/zero-timeout.yaml", NULL },
        { "historical-2019/encryptionconfig/testdata/valid-configs/kms/valid-timeout.yaml", NULL },
        { "testdata/encryption-configs/multiple-kms-providers-with-v2.yaml", NULL },
        { "testdata/encryption-configs/multiple-kms-providers.yaml", NULL },
        { "testdata/encryption-configs/multiple-kms-v2-providers.yaml", NULL },
        { "testdata/encryption-configs/no-kms-provider.yaml", NULL },
        { "testdata/encryption-configs/single-kms-provider.yaml", NULL },
};

static se_config *load_conformance(const char *file) {
        _cleanup_free_ char *rel = NULL, *path = NULL, *data = NULL;
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        size_t n;

        ck_assert_int_ge(asprintf(&rel, "k8s-encryption-config/%s", file), 0);
        path = tl_data_path(rel);
        data = tl_read_file(path, &n);
        ck_assert_msg(se_config_parse(path, data, n, &c, &e) == 0, "%s: %s", file, se_error_message(&e));
        se_error_done(&e);
        return c;
}

START_TEST(test_conformance_verdicts) {
        for (size_t i = 0; i < ELEMENTSOF(conformance); i++) {
                _cleanup_free_ char *rel = NULL, *path = NULL, *data = NULL, *want = NULL;
                se_error e = SE_ERROR_NULL;
                se_config *c = NULL;
                size_t n;
                int r;

                ck_assert_int_ge(asprintf(&rel, "k8s-encryption-config/%s", conformance[i].file), 0);
                path = tl_data_path(rel);
                data = tl_read_file(path, &n);
                r = se_config_parse(path, data, n, &c, &e);
                if (!conformance[i].error) {
                        ck_assert_msg(r == 0, "%s: %s", path, se_error_message(&e));
                        ck_assert_ptr_nonnull(c);
                        ck_assert_uint_eq(c->n_resources, 1);
                        se_config_free(c);
                        continue;
                }
                ck_assert_msg(r == -EBADMSG, "%s: expected failure, got %d", path, r);
                ck_assert_ptr_null(c);
                if (conformance[i].error[0] == '\0') {
                        /* invalid-gvk.yaml: kube echoes the whole file, we don't */
                        _cleanup_free_ char *w = NULL;
                        ck_assert_int_ge(asprintf(&w, "error decoding encryption provider configuration file \"%s\": " NO_KIND,
                                                  path),
                                         0);
                        ck_assert_str_eq(se_error_message(&e), w);
                } else {
                        ck_assert_int_ge(asprintf(&want, "error decoding encryption provider configuration file \"%s\": %s",
                                                  path, conformance[i].error), 0);
                        ck_assert_str_eq(se_error_message(&e), want);
                }
                se_error_done(&e);
        }
}
END_TEST

START_TEST(test_conformance_models) {
        se_config *c;
        se_provider *p;

        c = load_conformance("encryptionconfig/testdata/valid-configs/aes/aes-gcm.yaml");
        ck_assert_str_eq(c->kind, "EncryptionConfiguration");
        ck_assert_str_eq(c->api_version, "apiserver.config.k8s.io/v1");
        ck_assert_uint_eq(c->resources[0].n_resources, 1);
        ck_assert_str_eq(c->resources[0].resources[0], "secrets");
        p = provider(c, 0, 0);
        ck_assert_ptr_nonnull(p->aesgcm);
        ck_assert_uint_eq(p->aesgcm->n_keys, 1);
        ck_assert_str_eq(p->aesgcm->keys[0].name, "key1");
        ck_assert_str_eq(p->aesgcm->keys[0].secret, SECRET);
        se_config_free(c);

        c = load_conformance("encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-keys.json");
        p = provider(c, 0, 0);
        ck_assert_ptr_nonnull(p->aescbc);
        ck_assert_uint_eq(p->aescbc->n_keys, 2);
        ck_assert_str_eq(p->aescbc->keys[0].name, "A");
        ck_assert_str_eq(p->aescbc->keys[1].name, "B");
        ck_assert_str_eq(p->aescbc->keys[1].secret, "+qcnfOFX3aRXM9PuY7lQXDWYIQ3GWUdBc3nYBo91SCA=");
        ck_assert_str_eq(c->resources[0].resources[0], "ignored");
        se_config_free(c);

        /* legacy GVK; TestLegacyConfig: kms apiVersion v1, cachesize 10, timeout 3s */
        c = load_conformance("encryptionconfig/testdata/valid-configs/legacy.yaml");
        ck_assert_str_eq(c->kind, "EncryptionConfig");
        ck_assert_str_eq(c->api_version, "v1");
        ck_assert_uint_eq(c->resources[0].n_resources, 2);
        ck_assert_uint_eq(c->resources[0].n_providers, 5);
        ck_assert(provider(c, 0, 0)->identity);
        ck_assert_uint_eq(provider(c, 0, 1)->aesgcm->n_keys, 2);
        p = provider(c, 0, 2);
        ck_assert_ptr_nonnull(p->kms);
        ck_assert_str_eq(p->kms->api_version, "v1");
        ck_assert_str_eq(p->kms->name, "testprovider");
        ck_assert_str_eq(p->kms->endpoint, "unix:///tmp/testprovider.sock");
        ck_assert(p->kms->has_cachesize);
        ck_assert_int_eq(p->kms->cachesize, 10);
        ck_assert_int_eq(p->kms->timeout_ns, 3000000000LL);
        ck_assert_uint_eq(provider(c, 0, 3)->aescbc->n_keys, 2);
        ck_assert_uint_eq(provider(c, 0, 4)->secretbox->n_keys, 1);
        se_config_free(c);

        /* keys: (null) is an aesgcm provider with zero keys */
        c = load_conformance("encryptionconfig/testdata/invalid-configs/invalid-aes-gcm.yaml");
        p = provider(c, 0, 0);
        ck_assert_ptr_nonnull(p->aesgcm);
        ck_assert_uint_eq(p->aesgcm->n_keys, 0);
        ck_assert_ptr_null(p->aesgcm->keys);
        se_config_free(c);

        c = load_conformance("encryptionconfig/testdata/valid-configs/kms/default-timeout.yaml");
        p = provider(c, 0, 0);
        ck_assert_str_eq(p->kms->api_version, "v1");
        ck_assert(p->kms->has_cachesize);
        ck_assert_int_eq(p->kms->cachesize, 1000);
        ck_assert_int_eq(p->kms->timeout_ns, 3000000000LL);
        se_config_free(c);

        c = load_conformance("encryptionconfig/testdata/valid-configs/kms/multiple-providers-kmsv2.yaml");
        p = provider(c, 0, 1);
        ck_assert_str_eq(p->kms->api_version, "v2");
        ck_assert_str_eq(p->kms->name, "bar");
        ck_assert(!p->kms->has_cachesize);
        ck_assert_int_eq(p->kms->timeout_ns, 15000000000LL);
        se_config_free(c);

        c = load_conformance("encryptionconfig/testdata/invalid-configs/kms/invalid-apiversion.yaml");
        ck_assert_str_eq(provider(c, 0, 0)->kms->api_version, "v3");
        ck_assert(!provider(c, 0, 0)->kms->has_cachesize);
        se_config_free(c);

        c = load_conformance("historical-2019/encryptionconfig/testdata/invalid-configs/kms/negative-timeout.yaml");
        ck_assert_int_eq(provider(c, 0, 0)->kms->timeout_ns, -15000000000LL);
        se_config_free(c);

        c = load_conformance("historical-2019/encryptionconfig/testdata/invalid-configs/kms/zero-timeout.yaml");
        ck_assert_int_eq(provider(c, 0, 0)->kms->timeout_ns, 0);
        se_config_free(c);

        c = load_conformance("historical-2019/encryptionconfig/testdata/invalid-configs/kms/no-endpoint.yaml");
        ck_assert_str_eq(provider(c, 0, 0)->kms->endpoint, "");
        se_config_free(c);

        c = load_conformance("historical-2019/encryptionconfig/testdata/invalid-configs/aes/no-key.yaml");
        ck_assert_uint_eq(provider(c, 0, 0)->aesgcm->n_keys, 1);
        ck_assert_str_eq(provider(c, 0, 0)->aesgcm->keys[0].secret, "");
        se_config_free(c);

        c = load_conformance("historical-2019/encryptionconfig/testdata/valid-configs/kms/valid-timeout.yaml");
        ck_assert_int_eq(provider(c, 0, 0)->kms->timeout_ns, 15000000000LL);
        se_config_free(c);

        c = load_conformance("testdata/encryption-configs/multiple-kms-v2-providers.yaml");
        ck_assert_uint_eq(c->resources[0].n_providers, 3);
        ck_assert_int_eq(provider(c, 0, 2)->kms->timeout_ns, 100000000LL);
        se_config_free(c);
}
END_TEST

/* ---- table: expected failures ---- */

static const struct {
        const char *name;
        const char *input;
        const char *detail; /* exact text after the prefix */
} failures[] = {
        /* unknown fields: YAML keys come sorted (Go map + json.Marshal), JSON in written order */
        { "yaml unknown fields",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n    foo: 1\n  - aescbc:\n      keys:\n"
              "      - name: k\n        secret: " SECRET "\n        zzz: 1\n        aaa: 2\n",
          "strict decoding error: unknown field \"resources[0].providers[0].foo\", unknown field "
          "\"resources[0].providers[1].aescbc.keys[0].aaa\", unknown field "
          "\"resources[0].providers[1].aescbc.keys[0].zzz\"" },
        { "json unknown fields",
          JHDR "\"zzz\":1,\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"identity\":{\"x\":1}}]}],\"aaa\":2}",
          "strict decoding error: unknown field \"zzz\", unknown field \"resources[0].providers[0].identity.x\", "
          "unknown field \"aaa\"" },
        { "json unknown field case-sensitive",
          "{\"Kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[]}",
          "strict decoding error: unknown field \"Kind\"" },
        { "json duplicate fields",
          JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"a\","
               "\"name\":\"b\",\"secret\":\"" SECRET "\"}]}}]}],\"kind\":\"EncryptionConfiguration\"}",
          "strict decoding error: duplicate field \"resources[0].providers[0].aescbc.keys[0].name\", duplicate field "
          "\"kind\"" },
        { "json duplicate escaped key",
          JHDR "\"resources\":[],\"res\\u006furces\":[]}", "strict decoding error: duplicate field \"resources\"" },
        { "yaml duplicate field",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n  resources: [configmaps]\n",
          "strict decoding error: yaml: unmarshal errors:\n  line 7: key \"resources\" already set in map" },
        { "yaml duplicates and unknown",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n    identity: {}\n    bogus: 1\n",
          "strict decoding error: yaml: unmarshal errors:\n  line 7: key \"identity\" already set in map, unknown "
          "field \"resources[0].providers[0].bogus\"" },
        /* type mismatches: Go's encoding/json text */
        { "yaml name number",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: 1\n        secret: " SECRET "\n",
          "json: cannot unmarshal number into Go struct field Key.resources.providers.aescbc.keys.name of type string" },
        { "yaml name bool (YAML 1.1 yes)",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: yes\n        secret: " SECRET "\n",
          "json: cannot unmarshal bool into Go struct field Key.resources.providers.aesgcm.keys.name of type string" },
        { "yaml name bool (off)",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: off\n        secret: " SECRET "\n",
          "json: cannot unmarshal bool into Go struct field Key.resources.providers.secretbox.keys.name of type string" },
        { "yaml name hex number",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: 0x1F\n        secret: " SECRET "\n",
          "json: cannot unmarshal number into Go struct field Key.resources.providers.aesgcm.keys.name of type string" },
        { "type error beats strict errors",
          HDR "bogus: 1\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: [a]\n",
          "json: cannot unmarshal array into Go struct field Key.resources.providers.aescbc.keys.name of type string" },
        { "cachesize string",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      name: a\n      endpoint: unix:///a\n      cachesize: \"10\"\n",
          "json: cannot unmarshal string into Go struct field KMSConfiguration.resources.providers.kms.cachesize of type "
          "int32" },
        { "cachesize float",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      name: a\n      cachesize: 1.5\n",
          "json: cannot unmarshal number 1.5 into Go struct field KMSConfiguration.resources.providers.kms.cachesize of "
          "type int32" },
        { "cachesize overflow json",
          JHDR "\"resources\":[{\"resources\":[\"s\"],\"providers\":[{\"kms\":{\"cachesize\":99999999999}}]}]}",
          "json: cannot unmarshal number 99999999999 into Go struct field KMSConfiguration.resources.providers.kms.cachesize "
          "of type int32" },
        { "timeout invalid",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      name: a\n      timeout: abc\n",
          "time: invalid duration \"abc\"" },
        { "timeout missing unit",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      timeout: \"5\"\n",
          "time: missing unit in duration \"5\"" },
        { "timeout unknown unit",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      timeout: 5x\n",
          "time: unknown unit \"x\" in duration \"5x\"" },
        { "timeout number",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms:\n      timeout: 5\n",
          "json: cannot unmarshal number into Go struct field KMSConfiguration.resources.providers.kms.timeout of type "
          "string" },
        { "resources not a list",
          HDR "resources:\n- resources: secrets\n  providers:\n  - identity: {}\n",
          "json: cannot unmarshal string into Go struct field ResourceConfiguration.resources.resources of type []string" },
        { "provider not an object",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity\n",
          "json: cannot unmarshal string into Go struct field ResourceConfiguration.resources.providers of type "
          "v1.ProviderConfiguration" },
        { "keys not a list",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys: {}\n",
          "json: cannot unmarshal object into Go struct field AESConfiguration.resources.providers.aesgcm.keys of type "
          "[]v1.Key" },
        { "identity scalar",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: yes\n",
          "json: cannot unmarshal bool into Go struct field ProviderConfiguration.resources.providers.identity of type "
          "v1.IdentityConfiguration" },
        { "top-level resources object", HDR "resources: {}\n",
          "json: cannot unmarshal object into Go struct field EncryptionConfiguration.resources of type "
          "[]v1.ResourceConfiguration" },
        { "yaml bool key becomes \"true\"",
          HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n    yes: 1\n",
          "strict decoding error: unknown field \"resources[0].providers[0].true\"" },
        /* apiVersion/kind */
        { "kind number", "kind: 5\napiVersion: v1\n",
          "couldn't get version/kind; json parse error: json: cannot unmarshal number into Go struct field .kind of type "
          "string" },
        { "top-level list", "- a\n- b\n",
          "couldn't get version/kind; json parse error: json: cannot unmarshal array into Go value of type struct { "
          "APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }" },
        { "missing apiVersion", "kind: EncryptionConfiguration\nresources: []\n",
          NO_VERSION },
        { "missing kind json", "{\"apiVersion\":\"v1\"}", NO_KIND },
        { "unregistered legacy version", "kind: EncryptionConfig\napiVersion: v2\n",
          "no kind \"EncryptionConfig\" is registered for version \"v2\" in scheme \"" SCHEME "\"" },
        { "new kind under legacy version", "kind: EncryptionConfiguration\napiVersion: v1\n",
          "no kind \"EncryptionConfiguration\" is registered for version \"v1\" in scheme \"" SCHEME "\"" },
        { "bad group version", "kind: EncryptionConfiguration\napiVersion: a/b/c\n", "unexpected GroupVersion string: a/b/c" },
        /* syntax */
        { "yaml syntax", HDR "resources: a: b\n", "yaml: line 3: mapping values are not allowed in this context" },
        { "yaml syntax line 1", "kind: a: b\n", "yaml: mapping values are not allowed in this context" },
        { "json truncated", JHDR "\"resources\":[", "couldn't get version/kind; json parse error: unexpected end of JSON input" },
        { "json NaN", JHDR "\"resources\":NaN}", NULL },
        { "yaml NaN value", HDR "resources: .nan\n", "json: unsupported value: NaN" },
        { "yaml unknown anchor", HDR "resources: *nope\n", "yaml: unknown anchor 'nope' referenced" },
};

START_TEST(test_failures) {
        for (size_t i = 0; i < ELEMENTSOF(failures); i++) {
                _cleanup_free_ char *msg = NULL, *want = NULL;
                int r = parse_str(failures[i].input, NULL, &msg);

                ck_assert_msg(r == -EBADMSG, "%s: expected -EBADMSG, got %d", failures[i].name, r);
                ck_assert_msg(startswith(msg, PREFIX), "%s: %s", failures[i].name, msg);
                if (!failures[i].detail)
                        continue;
                ck_assert_int_ge(asprintf(&want, PREFIX "%s", failures[i].detail), 0);
                ck_assert_msg(streq(msg, want), "%s:\n got: %s\nwant: %s", failures[i].name, msg, want);
        }
}
END_TEST

/* ---- null vs empty, defaults, YAML scalars, documents ---- */

START_TEST(test_null_vs_empty) {
        static const char *const inputs[] = {
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n  - identity:\n  - identity: null\n"
                    "  - aesgcm: {keys: null}\n  - aesgcm:\n  - aescbc: {}\n  - secretbox:\n      keys:\n  - kms:\n  - {}\n",
                JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"identity\":{}},{\"identity\":null},"
                     "{\"identity\":null},{\"aesgcm\":{\"keys\":null}},{\"aesgcm\":null},{\"aescbc\":{}},"
                     "{\"secretbox\":{\"keys\":null}},{\"kms\":null},{}]}]}",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_free_ char *msg = NULL;
                se_config *c = NULL;
                unsigned n;

                ck_assert_msg(parse_str(inputs[i], &c, &msg) == 0, "%s", msg);
                ck_assert_uint_eq(c->resources[0].n_providers, 9);
                ck_assert(provider(c, 0, 0)->identity);
                ck_assert_int_eq(se_provider_get_type(provider(c, 0, 1), &n), SE_PROVIDER_NONE);
                ck_assert_uint_eq(n, 0);
                ck_assert_int_eq(se_provider_get_type(provider(c, 0, 2), NULL), SE_PROVIDER_NONE);
                ck_assert_ptr_nonnull(provider(c, 0, 3)->aesgcm);
                ck_assert_uint_eq(provider(c, 0, 3)->aesgcm->n_keys, 0);
                ck_assert_int_eq(se_provider_get_type(provider(c, 0, 4), NULL), SE_PROVIDER_NONE);
                ck_assert_ptr_nonnull(provider(c, 0, 5)->aescbc);
                ck_assert_uint_eq(provider(c, 0, 5)->aescbc->n_keys, 0);
                ck_assert_ptr_nonnull(provider(c, 0, 6)->secretbox);
                ck_assert_int_eq(se_provider_get_type(provider(c, 0, 7), NULL), SE_PROVIDER_NONE);
                ck_assert_int_eq(se_provider_get_type(provider(c, 0, 8), NULL), SE_PROVIDER_NONE);
                se_config_free(c);
        }
}
END_TEST

START_TEST(test_kms_defaults) {
        _cleanup_free_ char *msg = NULL;
        se_config *c = NULL;
        const char *in = HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms: {name: a, endpoint: unix:///a}\n"
                             "  - kms: {apiVersion: v2, name: b, timeout: 1m30s}\n  - kms: {apiVersion: \"\", cachesize: -1, "
                             "timeout: 100ms}\n  - kms: {apiVersion: v2, cachesize: 5, timeout: null}\n";

        ck_assert_msg(parse_str(in, &c, &msg) == 0, "%s", msg);
        ck_assert_str_eq(provider(c, 0, 0)->kms->api_version, "v1");
        ck_assert(provider(c, 0, 0)->kms->has_cachesize);
        ck_assert_int_eq(provider(c, 0, 0)->kms->cachesize, 1000);
        ck_assert_int_eq(provider(c, 0, 0)->kms->timeout_ns, 3000000000LL);
        ck_assert_str_eq(provider(c, 0, 1)->kms->api_version, "v2");
        ck_assert(!provider(c, 0, 1)->kms->has_cachesize);
        ck_assert_int_eq(provider(c, 0, 1)->kms->timeout_ns, 90000000000LL);
        ck_assert_str_eq(provider(c, 0, 1)->kms->endpoint, "");
        ck_assert_str_eq(provider(c, 0, 2)->kms->api_version, "v1");
        ck_assert_int_eq(provider(c, 0, 2)->kms->cachesize, -1);
        ck_assert_int_eq(provider(c, 0, 2)->kms->timeout_ns, 100000000LL);
        ck_assert(provider(c, 0, 3)->kms->has_cachesize);
        ck_assert_int_eq(provider(c, 0, 3)->kms->cachesize, 5);
        ck_assert_int_eq(provider(c, 0, 3)->kms->timeout_ns, 3000000000LL);
        se_config_free(c);
}
END_TEST

START_TEST(test_yaml_scalars) {
        _cleanup_free_ char *msg = NULL;
        se_config *c = NULL;
        /* quoted booleans/numbers stay strings; ~ is null (empty name); anchors and merges work */
        const char *in = HDR "resources:\n- resources: [\"yes\", 'on', \"1\", ~]\n  providers:\n"
                             "  - aescbc:\n      keys: &k\n      - name: \"no\"\n        secret: !!str " SECRET "\n"
                             "      - name: ~\n        secret: |-\n          dGhpcyBpcyBwYXNzd29yZA==\n"
                             "  - aesgcm: {keys: *k}\n  - kms: &base {name: m, endpoint: unix:///m, cachesize: 0x10}\n"
                             "  - kms:\n      <<: *base\n      timeout: 2s\n";

        ck_assert_msg(parse_str(in, &c, &msg) == 0, "%s", msg);
        ck_assert_uint_eq(c->resources[0].n_resources, 4);
        ck_assert_str_eq(c->resources[0].resources[0], "yes");
        ck_assert_str_eq(c->resources[0].resources[1], "on");
        ck_assert_str_eq(c->resources[0].resources[2], "1");
        ck_assert_str_eq(c->resources[0].resources[3], "");
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[0].name, "no");
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[0].secret, SECRET);
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[1].name, "");
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[1].secret, "dGhpcyBpcyBwYXNzd29yZA==");
        ck_assert_uint_eq(provider(c, 0, 1)->aesgcm->n_keys, 2);
        ck_assert_int_eq(provider(c, 0, 2)->kms->cachesize, 16);
        ck_assert_str_eq(provider(c, 0, 3)->kms->name, "m");
        ck_assert_int_eq(provider(c, 0, 3)->kms->cachesize, 16);
        ck_assert_int_eq(provider(c, 0, 3)->kms->timeout_ns, 2000000000LL);
        se_config_free(c);
}
END_TEST

START_TEST(test_multi_document) {
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        se_config *c = NULL;

        ck_assert_int_eq(parse_str("---\n" HDR "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n"
                                   "---\nkind: Other\napiVersion: v9\nbogus: [\n",
                                   &c, &msg),
                         0);
        ck_assert_str_eq(c->kind, "EncryptionConfiguration");
        ck_assert(provider(c, 0, 0)->identity);
        se_config_free(c);

        /* a first document without kind fails even if the second one has it */
        ck_assert_int_eq(parse_str("resources: []\n---\n" HDR, NULL, &msg2), -EBADMSG);
        ck_assert_str_eq(msg2, PREFIX NO_KIND);
}
END_TEST

START_TEST(test_json_leading_whitespace) {
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        se_config *c = NULL;

        ck_assert_int_eq(parse_str(" \n\t\r\n" JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":"
                                   "[{\"identity\":{}}]}]}\n",
                                   &c, &msg),
                         0);
        ck_assert(provider(c, 0, 0)->identity);
        se_config_free(c);
        /* decided as JSON: the duplicate is reported the JSON way, not go-yaml's */
        ck_assert_int_eq(parse_str("\n  " JHDR "\"resources\":[],\"resources\":[]}", NULL, &msg2), -EBADMSG);
        ck_assert_str_eq(msg2, PREFIX "strict decoding error: duplicate field \"resources\"");
}
END_TEST

/* ---- hostile input ---- */

START_TEST(test_too_large) {
        size_t n = 10u * 1024u * 1024u;
        _cleanup_free_ char *big = malloc(n), *msg = NULL;

        ck_assert_ptr_nonnull(big);
        memset(big, ' ', n);
        memcpy(big, HDR, strlen(HDR));
        ck_assert_int_eq(parse_mem(big, n, NULL, &msg), -E2BIG);
        ck_assert_ptr_nonnull(strstr(msg, "larger than the limit of 1048576 bytes"));
        free(msg);
        msg = NULL;
        ck_assert_int_eq(parse_mem(big, SE_CONFIG_MAX_SIZE + 1, NULL, &msg), -E2BIG);
}
END_TEST

static char *many_keys(unsigned n, bool json) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        ck_assert_ptr_nonnull(f);
        if (json)
                fputs(JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":[", f);
        else
                fputs(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n", f);
        for (unsigned i = 0; i < n; i++)
                if (json)
                        fprintf(f, "%s{\"name\":\"k%u\",\"secret\":\"" SECRET "\"}", i ? "," : "", i);
                else
                        fprintf(f, "      - {name: k%u, secret: " SECRET "}\n", i);
        if (json)
                fputs("]}}]}]}", f);
        ck_assert_int_eq(fclose(f), 0);
        return s;
}

START_TEST(test_too_many_keys) {
        for (int json = 0; json <= 1; json++) {
                _cleanup_free_ char *ok = many_keys(1000, json), *bad = many_keys(1001, json), *msg = NULL, *msg2 = NULL;
                se_config *c = NULL;

                ck_assert_msg(parse_str(ok, &c, &msg) == 0, "%s", msg);
                ck_assert_uint_eq(provider(c, 0, 0)->aescbc->n_keys, 1000);
                se_config_free(c);
                ck_assert_int_eq(parse_str(bad, NULL, &msg2), -EBADMSG);
                ck_assert_str_eq(msg2, PREFIX "more than 1000 keys over all providers are not allowed");
        }
}
END_TEST

START_TEST(test_deep_nesting) {
        char yaml[512], json[512];
        size_t y = 0, j = 0;

        y += (size_t) snprintf(yaml + y, sizeof(yaml) - y, "%s", HDR "resources: ");
        j += (size_t) snprintf(json + j, sizeof(json) - j, "%s", JHDR "\"resources\":");
        for (int i = 0; i < 100; i++)
                yaml[y++] = '[', json[j++] = '[';
        for (int i = 0; i < 100; i++)
                yaml[y++] = ']', json[j++] = ']';
        yaml[y] = '\0';
        json[j++] = '}';
        json[j] = '\0';

        for (int k = 0; k < 2; k++) {
                _cleanup_free_ char *msg = NULL;

                ck_assert_int_eq(parse_str(k ? json : yaml, NULL, &msg), -EBADMSG);
                ck_assert_msg(strstr(msg, "nesting deeper than 32 levels"), "%s", msg);
        }
}
END_TEST

START_TEST(test_alias_bomb) {
        _cleanup_free_ char *msg = NULL;
        const char *in = HDR "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                             "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                             "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                             "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";

        ck_assert_int_eq(parse_str(in, NULL, &msg), -EBADMSG);
        ck_assert_msg(strstr(msg, "excessive aliasing"), "%s", msg);
}
END_TEST

START_TEST(test_invalid_utf8) {
        /* YAML: go-yaml refuses invalid UTF-8 anywhere */
        static const char *const yaml[] = {
                HDR "resources:\n- resources: [secr\xff\xfets]\n",
                HDR "resources:\n- resources: [\xc3]\n",
                "\xfe\xff\x00k\x00i",
        };
        /* JSON: Go's decoder takes it inside strings, each bad byte becoming U+FFFD (decided in
         * issue 16: the names then are the ones kube-apiserver uses, and a rewrite keeps them) */
        static const struct {
                const char *in, *resource, *name;
        } json[] = {
                { JHDR "\"resources\":[{\"resources\":[\"secr\xffts\"]}]}", "secr\xef\xbf\xbdts", NULL },
                { JHDR "\"resources\":[{\"resources\":[\"\xe2\x82\"]}]}", "\xef\xbf\xbd\xef\xbf\xbd", NULL },
                { JHDR "\"resources\":[{\"resources\":[\"\xed\xa0\x80\"]}]}", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", NULL },
                { JHDR "\"resources\":[{\"resources\":[\"s\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"k\xc0\xaf\","
                       "\"secret\":\"" SECRET "\"}]}}]}]}",
                  "s", "k\xef\xbf\xbd\xef\xbf\xbd" },
        };

        for (size_t i = 0; i < ELEMENTSOF(yaml); i++) {
                _cleanup_free_ char *msg = NULL;

                ck_assert_msg(parse_str(yaml[i], NULL, &msg) == -EBADMSG, "input %zu", i);
                ck_assert(startswith(msg, PREFIX));
        }
        for (size_t i = 0; i < ELEMENTSOF(json); i++) {
                _cleanup_free_ char *msg = NULL;
                se_config *c = NULL;

                ck_assert_msg(parse_str(json[i].in, &c, &msg) == 0, "json %zu: %s", i, msg);
                ck_assert_str_eq(c->resources[0].resources[0], json[i].resource);
                if (json[i].name)
                        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[0].name, json[i].name);
                se_config_free(c);
        }
        /* a key with invalid UTF-8 is an unknown field under its replaced name; outside a string it
         * is a syntax error */
        expect_lit(JHDR "\"resources\":[],\"x\xff\":1}", "strict decoding error: unknown field \"x\xef\xbf\xbd\"");
        expect_lit(JHDR "\"resources\":\xff}",
                   "couldn't get version/kind; json parse error: invalid character '\xc3\xbf' looking for beginning "
                   "of value");
}
END_TEST

START_TEST(test_binary_and_nul) {
        uint32_t x = 0x12345678;
        char buf[4096];

        for (int round = 0; round < 300; round++) {
                size_t n = (size_t) (round * 13) % sizeof(buf);
                char *msg = NULL;
                se_config *c = NULL;
                int r;

                for (size_t i = 0; i < n; i++) {
                        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                        buf[i] = (char) (x & 0xff);
                }
                if (round % 2)
                        buf[0] = '{';
                r = parse_mem(buf, n, &c, &msg);
                ck_assert(r == 0 || r == -EBADMSG);
                se_config_free(c);
                free(msg);
        }

        {
                _cleanup_free_ char *m1 = NULL, *m2 = NULL;
                static const char yaml_nul[] = HDR "resources: []\n\0bogus";
                static const char json_nul[] = "{\"kind\":\"EncryptionConfiguration\"\0}";

                ck_assert_int_eq(parse_mem(yaml_nul, sizeof(yaml_nul) - 1, NULL, &m1), -EBADMSG);
                ck_assert_int_eq(parse_mem(json_nul, sizeof(json_nul) - 1, NULL, &m2), -EBADMSG);
        }
}
END_TEST

START_TEST(test_truncated) {
        static const char *const files[] = {
                "encryptionconfig/testdata/valid-configs/aes-cbc-first.yaml",
                "encryptionconfig/testdata/valid-configs/aes/aes-cbc-multiple-keys.json",
        };

        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                _cleanup_free_ char *rel = NULL, *path = NULL, *data = NULL;
                size_t n;

                ck_assert_int_ge(asprintf(&rel, "k8s-encryption-config/%s", files[f]), 0);
                path = tl_data_path(rel);
                data = tl_read_file(path, &n);
                for (size_t len = 0; len < n; len++) {
                        /* copy so that a read past len is caught by ASan */
                        _cleanup_free_ char *part = malloc(len + 1), *msg = NULL;
                        se_config *c = NULL;
                        int r;

                        ck_assert_ptr_nonnull(part);
                        memcpy(part, data, len);
                        r = parse_mem(part, len, &c, &msg);
                        ck_assert_msg(r == 0 || r == -EBADMSG, "%s truncated at %zu: %d", files[f], len, r);
                        if (r < 0 && f == 1 && len > 0)
                                ck_assert_msg(strstr(msg, "unexpected end of JSON input"), "%zu: %s", len, msg);
                        if (r < 0)
                                ck_assert_msg(!strstr(msg, "Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4="), "%s", msg);
                        se_config_free(c);
                }
        }
}
END_TEST

/* ---- key material never in messages ---- */

START_TEST(test_no_secret_in_messages) {
        static const char *const inputs[] = {
                /* kind missing: kube echoes the whole file; we echo none of it */
                "apiVersion: apiserver.config.k8s.io/v1\nresources:\n- resources: [secrets]\n  providers:\n"
                "  - aescbc:\n      keys:\n      - name: k\n        secret: " SECRET "\n"
                "      - {name: k2, secret: \"" SECRET "\"}\n      - name: k3\n        \"secret\"  :  '" SECRET "'  # c\n"
                "      - name: k4\n        secret:\n          " SECRET "\n",
                "{\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":"
                "[{\"name\":\"k\",\"secret\":\"" SECRET "\"}]}}]}]}",
                "kind: EncryptionConfiguration\nresources:\n- providers:\n  - secretbox:\n      keys:\n      - secret: " SECRET "\n",
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: 1\n        secret: " SECRET "\n",
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: " SECRET "\n        secret: " SECRET "\n",
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: !!int " SECRET "\n",
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: [" SECRET "]\n",
                HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: " SECRET "\n  bad indent: x\n",
                JHDR "\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"a\",\"secret\":\"" SECRET "\",\"secret\":1}]}}]}]}",
                JHDR "\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"a\",\"secret\":\"" SECRET "\"}]}}]}]",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_free_ char *msg = NULL;

                ck_assert_msg(parse_str(inputs[i], NULL, &msg) == -EBADMSG, "input %zu parsed", i);
                ck_assert_msg(!strstr(msg, SECRET), "input %zu leaks: %s", i, msg);
                if (i < 3) {
                        ck_assert_msg(strstr(msg, "is missing in '…' " SE_CONFIG_NOT_ECHOED), "%zu: %s", i, msg);
                        ck_assert_msg(!strstr(msg, "resources"), "%zu echoes the file: %s", i, msg);
                }
        }
}
END_TEST

START_TEST(test_ret_untouched_on_failure) {
        se_config *c = (se_config *) 0x1;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_config_parse("t", "kind: x\n", 8, &c, &e), -EBADMSG);
        ck_assert_ptr_eq(c, (se_config *) 0x1);
        se_error_done(&e);
        /* a NULL se_error and NULL ret are accepted */
        ck_assert_int_eq(se_config_parse("t", "kind: x\n", 8, NULL, NULL), -EBADMSG);
        ck_assert_int_eq(se_config_parse("t", HDR, strlen(HDR), NULL, NULL), 0);
}
END_TEST

/* ---- tags, !!binary and NUL bytes (issue 19) ---- */

/* Parses an exact-size heap copy, so that ASan catches a read past the input. */
static int parse_exact(const char *s, size_t n, se_config **ret, char **ret_msg) {
        _cleanup_free_ char *copy = malloc(n > 0 ? n : 1);

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, s, n);
        return parse_mem(copy, n, ret, ret_msg);
}

#define parse_lit(lit, ret, msg) parse_exact(lit, sizeof(lit) - 1, ret, msg)

/* the failure detail after PREFIX, or NULL when the input decodes */
static void expect(const char *in, size_t n, const char *want) {
        _cleanup_free_ char *msg = NULL;
        se_config *c = NULL;
        int r = parse_exact(in, n, &c, &msg);

        if (!want) {
                ck_assert_msg(r == 0, "%s: %s", in, msg);
                se_config_free(c);
                return;
        }
        ck_assert_msg(r == -EBADMSG, "%s: parsed", in);
        ck_assert_msg(startswith(msg, PREFIX) && streq(msg + strlen(PREFIX), want), "%s:\n got: %s\nwant: %s", in, msg,
                      want);
}


START_TEST(test_binary_key) {
        /* the reported input: a decoded !!binary key has no NUL terminator */
        expect_lit("!!binary aGVsbG8=: 1\n", NO_KIND);
        expect_lit("!!binary aGVsbG8=: 1", NO_KIND);
        expect_lit("a: {!!binary aGVsbG8=: 1}", NO_KIND);
        expect_lit("? !!binary aGVsbG8=\n: 1\n", NO_KIND);
        /* lengths 1..3 of decoded bytes, every padding */
        expect_lit("!!binary YQ==: 1\n" HDR, "strict decoding error: unknown field \"a\"");
        expect_lit("!!binary YWI=: 1\n" HDR, "strict decoding error: unknown field \"ab\"");
        expect_lit("!!binary YWJj: 1\n" HDR, "strict decoding error: unknown field \"abc\"");
        /* empty binary: the key "" */
        expect_lit(HDR "!!binary : 1\n", "strict decoding error: unknown field \"\"");
        expect_lit(HDR "!!binary \"\": 1\n", "strict decoding error: unknown field \"\"");
        /* decoding to a known field name: it is that field */
        expect_lit("!!binary a2luZA==: EncryptionConfiguration\n"
                   "!!binary YXBpVmVyc2lvbg==: apiserver.config.k8s.io/v1\n!!binary cmVzb3VyY2Vz: []\n",
                   NULL);
        expect_lit(HDR "resources:\n- !!binary cmVzb3VyY2Vz: [secrets]\n  !!binary cHJvdmlkZXJz:\n"
                       "  - {!!binary aWRlbnRpdHk=: {}}\n",
                   NULL);
        /* ... and a duplicate of a plain one, the go-yaml way */
        expect_lit(HDR "!!binary cmVzb3VyY2Vz: []\nresources: []\n",
                   "strict decoding error: yaml: unmarshal errors:\n  line 4: key \"resources\" already set in map");
        /* decoding to a name with a NUL byte: refused, where Go would report an unknown field */
        expect_lit("!!binary a2luZABY: 1\n", "yaml: line 1: invalid map key: contains a NUL character");
        expect_lit(HDR "!!binary AA==: 1\n", "yaml: line 3: invalid map key: contains a NUL character");
        expect_lit(HDR "!!binary cmVzb3VyY2VzAA==: []\n", "yaml: line 3: invalid map key: contains a NUL character");
        expect_lit(HDR "!!binary AHJlc291cmNlcw==: []\n", "yaml: line 3: invalid map key: contains a NUL character");
        expect_lit(HDR "resources:\n- {!!binary AA==: x}\n",
                   "yaml: line 4: invalid map key: contains a NUL character");
        /* the same through an escape, an alias and a merge */
        expect_lit(HDR "\"resources\\0\": []\n", "yaml: line 3: invalid map key: contains a NUL character");
        expect_lit(HDR "x: &k !!binary AA==\n*k : 1\n", "yaml: line 4: invalid map key: contains a NUL character");
        expect_lit("x: &k !!binary a2luZA==\n*k : EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n",
                   "strict decoding error: unknown field \"x\"");
        expect_lit("<<: {!!binary a2luZA==: EncryptionConfiguration}\napiVersion: apiserver.config.k8s.io/v1\n", NULL);
        /* not base64 */
        expect_lit(HDR "!!binary a2luZA: 1\n", "yaml: !!binary value contains invalid base64 data");
        expect_lit(HDR "!!binary \"*\": 1\n", "yaml: !!binary value contains invalid base64 data");
}
END_TEST

START_TEST(test_tagged_keys) {
        expect_lit("!!str kind: EncryptionConfiguration\n!!str apiVersion: apiserver.config.k8s.io/v1\n", NULL);
        expect_lit(HDR "!!int 1: x\n", "strict decoding error: unknown field \"1\"");
        expect_lit(HDR "!!bool true: x\n", "strict decoding error: unknown field \"true\"");
        expect_lit(HDR "!!float 1.5: x\n", "strict decoding error: unknown field \"1.5\"");
        expect_lit(HDR "!!null ~: x\n", "unsupported map key of type: %!s(<nil>), key: <nil>");
        expect_lit(HDR "!!null : x\n", "unsupported map key of type: %!s(<nil>), key: <nil>");
        expect_lit(HDR "!!int x: x\n", "yaml: line 3: cannot decode a scalar as a !!int");
        expect_lit(HDR "!!bool 1: x\n", "yaml: line 3: cannot decode a scalar as a !!bool");
        expect_lit(HDR "!!null x: x\n", "yaml: line 3: cannot decode a scalar as a !!null");
        expect_lit(HDR "!foo bar: x\n", "strict decoding error: unknown field \"bar\"");
}
END_TEST

START_TEST(test_binary_values) {
        _cleanup_free_ char *msg = NULL;
        se_config *c = NULL;
        /* every string field as !!binary: "secrets", "k1", SECRET, "m", "unix:///m", "2s", "v2" */
        static const char in[] = HDR "resources:\n- resources: [!!binary c2VjcmV0cw==]\n  providers:\n"
                                     "  - aescbc:\n      keys:\n      - name: !!binary azE=\n"
                                     "        secret: !!binary YzJWamNtVjBJR2x6SUhObFkzVnlaUT09\n"
                                     "  - kms: {name: !!binary bQ==, endpoint: !!binary dW5peDovLy9t, "
                                     "timeout: !!binary MnM=, apiVersion: !!binary djI=}\n"
                                     "  - secretbox:\n      keys:\n      - name: !!binary \"\"\n"
                                     "        secret: !!binary " SECRET "\n"
                                     "  - aesgcm:\n      keys:\n      - {name: !!binary /w==, secret: x}\n";

        ck_assert_msg(parse_lit(in, &c, &msg) == 0, "%s", msg);
        ck_assert_str_eq(c->resources[0].resources[0], "secrets");
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[0].name, "k1");
        ck_assert_str_eq(provider(c, 0, 0)->aescbc->keys[0].secret, SECRET);
        ck_assert_str_eq(provider(c, 0, 1)->kms->name, "m");
        ck_assert_str_eq(provider(c, 0, 1)->kms->endpoint, "unix:///m");
        ck_assert_str_eq(provider(c, 0, 1)->kms->api_version, "v2");
        ck_assert_int_eq(provider(c, 0, 1)->kms->timeout_ns, 2000000000LL);
        /* empty binary is "", and the decoded secret is the secret's own bytes */
        ck_assert_str_eq(provider(c, 0, 2)->secretbox->keys[0].name, "");
        ck_assert_str_eq(provider(c, 0, 2)->secretbox->keys[0].secret, "secret is secure");
        /* bytes that are not UTF-8 become U+FFFD, as sigs.k8s.io/yaml's json.Marshal writes them */
        ck_assert_str_eq(provider(c, 0, 3)->aesgcm->keys[0].name, "\xef\xbf\xbd");
        se_config_free(c);

        /* kind and apiVersion as !!binary: decoded and compared by length */
        expect_lit("kind: !!binary RW5jcnlwdGlvbkNvbmZpZ3VyYXRpb24=\n"
                   "apiVersion: !!binary YXBpc2VydmVyLmNvbmZpZy5rOHMuaW8vdjE=\n",
                   NULL);
        expect_lit("kind: !!binary RW5jcnlwdGlvbkNvbmZpZ3VyYXRpb24A\napiVersion: apiserver.config.k8s.io/v1\n",
                   "no kind \"EncryptionConfiguration\\x00\" is registered for version "
                   "\"apiserver.config.k8s.io/v1\" in scheme \"" SCHEME "\"");
        expect_lit("kind: EncryptionConfiguration\napiVersion: !!binary YXBpc2VydmVyLmNvbmZpZy5rOHMuaW8vdjEA\n",
                   "no kind \"EncryptionConfiguration\" is registered for version "
                   "\"apiserver.config.k8s.io/v1\\x00\" in scheme \"" SCHEME "\"");
        expect_lit("kind: EncryptionConfiguration\napiVersion: \"a/b\\0/c\"\n",
                   "unexpected GroupVersion string: \"a/b\\x00/c\"");
        expect_lit("kind: !!binary AA==\napiVersion: v1\n",
                   "no kind \"\\x00\" is registered for version \"v1\" in scheme \"" SCHEME "\"");
        expect_lit("kind: !!binary \"\"\napiVersion: v1\n",
                   NO_KIND);
}
END_TEST

START_TEST(test_nul_in_values) {
        /* a NUL byte in a string field: refused by path, the value never printed */
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                       "      - name: !!binary YQBi\n        secret: " SECRET "\n",
                   "resources[0].providers[0].aescbc.keys[0].name: Invalid value: contains a NUL character, which "
                   "cannot be carried through a rotation");
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                       "      - name: a\n        secret: \"" SECRET "\\0\"\n",
                   "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: contains a NUL character, "
                   "which cannot be carried through a rotation");
        expect_lit(HDR "resources:\n- resources: [secrets, \"a\\0\"]\n",
                   "resources[0].resources[1]: Invalid value: contains a NUL character, which cannot be carried "
                   "through a rotation");
        expect_lit(JHDR
                   "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"kms\":{\"name\":\"k\\u0000\"}}]}]}",
                   "resources[0].providers[0].kms.name: Invalid value: contains a NUL character, which cannot be "
                   "carried through a rotation");
        /* a duration is Go's parser over every byte */
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms: {name: k, endpoint: unix:///k, "
                       "timeout: \"3s\\0x\"}\n",
                   "time: unknown unit \"s\\x00x\" in duration \"3s\\x00x\"");
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms: {name: k, endpoint: unix:///k, "
                       "timeout: !!binary ADNz}\n",
                   "time: invalid duration \"\\x003s\"");
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - kms: {name: k, endpoint: unix:///k, "
                       "timeout: !!binary MHMA}\n",
                   "time: unknown unit \"s\\x00\" in duration \"0s\\x00\"");

        /* JSON keys: json-c would cut "kind\u0000x" to "kind" */
        expect_lit("{\"kind\\u0000x\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\"}",
                   "invalid object key at offset 1: contains a NUL character (\\u0000)");
        expect_lit(JHDR "\"resources\":[{\"resources\":[],\"x\":{\"\\u0000\":1}}]}",
                   "invalid object key at offset 110: contains a NUL character (\\u0000)");
        /* in the occurrence of a duplicate that json-c drops, too */
        expect_lit(JHDR "\"resources\":[{\"a\\u0000\":1}],\"resources\":[]}",
                   "invalid object key at offset 90: contains a NUL character (\\u0000)");
        expect_lit("{\"kind\":\"EncryptionConfiguration\\u0000\",\"apiVersion\":\"apiserver.config.k8s.io/v1\"}",
                   "no kind \"EncryptionConfiguration\\x00\" is registered for version "
                   "\"apiserver.config.k8s.io/v1\" in scheme \"" SCHEME "\"");
}
END_TEST

START_TEST(test_nul_secret_redacted) {
        /* kind missing: kube-apiserver echoes the file, we print none of it, whatever form the key
         * has (a secret that starts with a NUL byte once made the redaction loop forever) */
        static const char *const inputs[] = {
                "apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n"
                "        secret: \"\\0" SECRET "\"\n",
                "apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n"
                "        secret: \"\\0abc\"\n",
                "apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n"
                "        secret: !!binary AGMyVmpjbVYw\n",
                "{\"apiVersion\":\"v1\",\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"a\","
                "\"secret\":\"\\u0000" SECRET "\"}]}}]}]}",
                /* the forms issue 16 found leaking through a redaction by shape: a folded scalar,
                 * \u escapes */
                "apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n"
                "        secret: >-\n          c2VjcmV0IGlz\n          IHNlY3VyZQ==\n",
                "{\"apiVersion\":\"v1\",\"resources\":[{\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"a\","
                "\"secret\":\"\\u0063\\u0032VjcmV0IGlzIHNlY3VyZQ==\"}]}}]}]}",
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                _cleanup_free_ char *msg = NULL;

                ck_assert_msg(parse_exact(inputs[i], strlen(inputs[i]), NULL, &msg) == -EBADMSG, "input %zu", i);
                ck_assert_str_eq(msg, PREFIX NO_KIND);
        }
}
END_TEST

/* JSON syntax errors in Go's encoding/json words (scanner.go), as kube-apiserver prints them (issue 16) */
START_TEST(test_json_syntax_go_wording) {
        static const struct {
                const char *in, *msg;
        } cases[] = {
                { "{\"a\":1} t", "invalid character 't' after top-level value" },
                { "{}{", "invalid character '{' after top-level value" },
                { "\v{}", "invalid character '\\v' looking for beginning of value" },
                { "\f{}", "invalid character '\\f' looking for beginning of value" },
                /* U+00A0 is space to kube's JSON sniffing, but Go's scanner sees its first byte */
                { "\xc2\xa0{}", "invalid character '\xc3\x82' looking for beginning of value" },
                { "{\"a\":\xa0}", "invalid character '\\u00a0' looking for beginning of value" },
                { "{\"a\":1", "unexpected end of JSON input" },
                { "{\"a\":", "unexpected end of JSON input" },
                { "{\"a\":1,}", "invalid character '}' looking for beginning of object key string" },
                { "{'a':1}", "invalid character '\\'' looking for beginning of object key string" },
                { "{\"a\" 1}", "invalid character '1' after object key" },
                { "{\"a\":1 \"b\":2}", "invalid character '\"' after object key:value pair" },
                { "{\"a\":[1 2]}", "invalid character '2' after array element" },
                { "{\"a\":tru}", "invalid character '}' in literal true (expecting 'e')" },
                { "{\"a\":nul", "invalid character ' ' in literal null (expecting 'l')" },
                { "{\"a\":fals3}", "invalid character '3' in literal false (expecting 'e')" },
                { "{\"a\":1.}", "invalid character '}' after decimal point in numeric literal" },
                { "{\"a\":-}", "invalid character '}' in numeric literal" },
                { "{\"a\":1e+}", "invalid character '}' in exponent of numeric literal" },
                { "{\"a\":01}", "invalid character '1' after object key:value pair" },
                { "{\"a\":\"\\q\"}", "invalid character 'q' in string escape code" },
                { "{\"a\":\"\\u12g4\"}", "invalid character 'g' in \\u hexadecimal character escape" },
                { "{\"a\":\"x\ny\"}", "invalid character '\\n' in string literal" },
                { "{\"a\":\"\\\\\x01\"}", "invalid character '\\x01' in string literal" },
                { "{\"a\":\\}", "invalid character '\\\\' looking for beginning of value" },
                { "{\"a\":NaN}", "invalid character 'N' looking for beginning of value" },
                { "{\"a\":\x7f}", "invalid character '\\x7f' looking for beginning of value" },
                { "{\"a\":\x85}", "invalid character '\\u0085' looking for beginning of value" },
                { "{\"a\":\xe9}", "invalid character '\xc3\xa9' looking for beginning of value" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *want = NULL;

                ck_assert_int_ge(asprintf(&want, "couldn't get version/kind; json parse error: %s", cases[i].msg), 0);
                expect(cases[i].in, strlen(cases[i].in), want);
        }
        /* a raw NUL byte: Go's scanner sees it like any control byte */
        expect_lit("{\"a\":\"\0\"}", "couldn't get version/kind; json parse error: invalid character '\\x00' in string "
                                        "literal");
        expect_lit("{\"a\":1}\0", "couldn't get version/kind; json parse error: invalid character '\\x00' after "
                                     "top-level value");
}
END_TEST

/* Issue 16, decided like kube-apiserver: go-yaml v2 refuses %YAML other than 1.1, and keeps (so
 * refuses) a byte-order mark at the start of a later line, where libyaml skips both. */
START_TEST(test_yaml_version_and_bom) {
        static const char body[] = "resources:\n- resources: [secrets]\n  providers:\n  - identity: {}\n";
        _cleanup_free_ char *v11 = NULL, *v12 = NULL, *v12_late = NULL, *v10 = NULL, *bom = NULL;

        ck_assert_int_ge(asprintf(&v11, "%%YAML 1.1\n---\n" HDR "%s", body), 0);
        ck_assert_int_ge(asprintf(&v12, "%%YAML 1.2\n---\n" HDR "%s", body), 0);
        ck_assert_int_ge(asprintf(&v12_late, "# a comment\n\n%%YAML 1.2\n---\n" HDR "%s", body), 0);
        ck_assert_int_ge(asprintf(&v10, "%%YAML 1.0\n---\n" HDR "%s", body), 0);
        ck_assert_int_ge(asprintf(&bom, "\xef\xbb\xbf" HDR "%s", body), 0);
        expect(v11, strlen(v11), NULL);
        expect(v12, strlen(v12), "yaml: found incompatible YAML document");
        /* go-yaml's parser errors give the 0-based line */
        expect(v12_late, strlen(v12_late), "yaml: line 2: found incompatible YAML document");
        expect(v10, strlen(v10), "yaml: found incompatible YAML document");
        /* only the first document is read: a later directive is never seen */
        expect_lit("---\n" HDR "resources: []\n...\n%YAML 1.2\n---\nx: 1\n", NULL);

        /* the leading byte-order mark is the encoding's, as everywhere */
        expect(bom, strlen(bom), NULL);
        expect_lit("kind: EncryptionConfiguration\n\xef\xbb\xbf" "apiVersion: apiserver.config.k8s.io/v1\n",
                   "yaml: line 2: a byte-order mark (U+FEFF) at the start of a line is not allowed; remove it");
        expect_lit(HDR "resources:\n\xef\xbb\xbf- resources: [secrets]\n  providers:\n  - identity: {}\n",
                   "yaml: line 4: a byte-order mark (U+FEFF) at the start of a line is not allowed; remove it");
        expect_lit(HDR "resources: []\r\xef\xbb\xbf# c\n",
                   "yaml: line 4: a byte-order mark (U+FEFF) at the start of a line is not allowed; remove it");
        expect_lit("\xef\xbb\xbf\xef\xbb\xbf" HDR,
                   "yaml: line 1: a byte-order mark (U+FEFF) at the start of a line is not allowed; remove it");
        /* inside a line it is text for both (here in a comment) */
        expect_lit(HDR "resources: [] # \xef\xbb\xbf\n", NULL);
}
END_TEST

/* Issue 16: an unknown field's name is echoed only when it cannot be key material. */
START_TEST(test_unknown_field_not_key_material) {
        /* a flow mapping with a missing colon: the whole "secret <key>" becomes a field name */
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                       "      - {name: k, secret " SECRET "}\n",
                   "strict decoding error: unknown field \"resources[0].providers[0].aescbc.keys[0].REDACTED\"");
        expect_lit(JHDR "\"resources\":[{\"resources\":[\"s\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"k\","
                        "\"" SECRET "\":\"\"}]}}]}]}",
                   "strict decoding error: unknown field \"resources[0].providers[0].aescbc.keys[0].REDACTED\"");
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                       "      - name: k\n        YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY: 1\n",
                   "strict decoding error: unknown field \"resources[0].providers[0].aescbc.keys[0].REDACTED\"");
        /* typos of field names are printed */
        expect_lit(HDR "resources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n"
                       "      - {name: k, secert: " SECRET "}\n      - {name: j, secret: " SECRET ", encryption_Key-name: 1}\n",
                   "strict decoding error: unknown field \"resources[0].providers[0].aescbc.keys[0].secert\", unknown "
                   "field \"resources[0].providers[0].aescbc.keys[1].encryption_Key-name\"");
}
END_TEST

/* Issue 16: a NUL byte never truncates a string; both reported inputs are refused by field. */
START_TEST(test_nul_issue_inputs) {
        expect_lit(JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":"
                        "\"k1\",\"secret\":\"" SECRET "\\u0000junk\"}]}}]}]}",
                   "resources[0].providers[0].aescbc.keys[0].secret: Invalid value: contains a NUL character, which "
                   "cannot be carried through a rotation");
        expect_lit(JHDR "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":"
                        "\"k\\u0000x\",\"secret\":\"" SECRET "\"}]}}]}]}",
                   "resources[0].providers[0].aescbc.keys[0].name: Invalid value: contains a NUL character, which "
                   "cannot be carried through a rotation");
}
END_TEST

static Suite *config_parse_suite(void) {
        Suite *s = suite_create("config-parse");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_conformance_verdicts);
        tcase_add_test(tc, test_conformance_models);
        tcase_add_test(tc, test_failures);
        tcase_add_test(tc, test_null_vs_empty);
        tcase_add_test(tc, test_kms_defaults);
        tcase_add_test(tc, test_yaml_scalars);
        tcase_add_test(tc, test_multi_document);
        tcase_add_test(tc, test_json_leading_whitespace);
        tcase_add_test(tc, test_too_large);
        tcase_add_test(tc, test_too_many_keys);
        tcase_add_test(tc, test_deep_nesting);
        tcase_add_test(tc, test_alias_bomb);
        tcase_add_test(tc, test_invalid_utf8);
        tcase_add_test(tc, test_binary_and_nul);
        tcase_add_test(tc, test_truncated);
        tcase_add_test(tc, test_no_secret_in_messages);
        tcase_add_test(tc, test_ret_untouched_on_failure);
        tcase_add_test(tc, test_binary_key);
        tcase_add_test(tc, test_tagged_keys);
        tcase_add_test(tc, test_binary_values);
        tcase_add_test(tc, test_nul_in_values);
        tcase_add_test(tc, test_nul_secret_redacted);
        tcase_add_test(tc, test_json_syntax_go_wording);
        tcase_add_test(tc, test_nul_issue_inputs);
        tcase_add_test(tc, test_yaml_version_and_bom);
        tcase_add_test(tc, test_unknown_field_not_key_material);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(config_parse_suite)
