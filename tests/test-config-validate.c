/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"
#include "testlib.h"

/*
 * kube-apiserver's EncryptionConfiguration validation (reference/k8s-encryption-at-rest.md §1.4,
 * §1.5, §1.6, §1.8) with its exact messages, and our stricter rotation checks (SPEC §3).
 */

#define S16 "c2VjcmV0IGlzIHNlY3VyZQ=="                     /* "secret is secure" */
#define S17 "YSBzZWNyZXQgYSBzZWNyZXQ="                     /* 17 bytes */
#define S32 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=" /* 32 bytes */
#define S32B "Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4="

#define H "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
/* one entry for secrets with the given provider list items (each "      - …\n") */
#define ENTRY(providers) "  - resources: [secrets]\n    providers:\n" providers
#define ONE(providers) H ENTRY(providers)
#define KMS2(extra) "      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///k.sock\"" extra "}\n"

#define NONE_JSON "{\"AESGCM\":null,\"AESCBC\":null,\"Secretbox\":null,\"Identity\":null,\"KMS\":null}"
#define NONE_DETAIL "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"
#define MORE_DETAIL "more than one provider specified in a single element, should split into different list elements"
#define OVERLAP "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"
#define DUPRES "the same resource cannot be specified multiple times"
#define HINT "(secrets-encrypt refuses this because a rotation could remove the wrong key)"
#define P0 "resources[0].providers[0]"
#define K0 P0 ".kms"
/* kube-apiserver ≥ 1.29 with its default gates, then our pointer to the setting (issue 16) */
#define KMSV1                                                                                                          \
        "error while building transformers: KMSv1 is deprecated and will only receive security updates going "       \
        "forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature. "           \
        SE_CONFIG_KMS_V1_HINT

typedef struct vcase {
        const char *name;
        const char *yaml;
        bool reload;
        const char *kube; /* expected kube message, NULL = kube accepts */
        const char *full; /* expected se_config_validate message when kube accepts, NULL = accepted */
} vcase;

static const vcase cases[] = {
        /* ---- structure ---- */
        { "valid", ONE("      - aescbc:\n          keys:\n            - {name: k1, secret: " S32 "}\n      - identity: {}\n"),
          false, NULL, NULL },
        { "resources-empty", H "  []\n", false, "resources: Required value: at least one resources is required", NULL },
        { "resources-missing", "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n", false,
          "resources: Required value: at least one resources is required", NULL },
        { "entry-without-resources", H "  - providers:\n      - identity: {}\n", false,
          "resources[0].resources: Required value: at least one resources[0].resources is required", NULL },
        { "entry-without-providers", H "  - resources: [secrets]\n", false,
          "resources[0].providers: Required value: at least one resources[0].providers is required", NULL },
        { "second-entry-empty", H ENTRY("      - identity: {}\n") "  - resources: []\n    providers: []\n", false,
          "[resources[1].resources: Required value: at least one resources[1].resources is required, "
          "resources[1].providers: Required value: at least one resources[1].providers is required]",
          NULL },
        { "provider-empty", H "  - resources: [secrets]\n    providers: [{}]\n", false,
          P0 ": Invalid value: " NONE_JSON ": " NONE_DETAIL, NULL },
        { "provider-identity-null", ONE("      - identity:\n"), false, P0 ": Invalid value: " NONE_JSON ": " NONE_DETAIL,
          NULL },
        { "provider-aescbc-null", ONE("      - aescbc: null\n"), false,
          P0 ": Invalid value: " NONE_JSON ": " NONE_DETAIL, NULL },
        { "more-than-one", ONE("      - aescbc:\n          keys:\n            - {name: k1, secret: " S16 "}\n        identity: {}\n"),
          false,
          P0 ": Invalid value: {\"AESGCM\":null,\"AESCBC\":{\"Keys\":[{\"Name\":\"k1\",\"Secret\":\"REDACTED\"}]},"
             "\"Secretbox\":null,\"Identity\":{},\"KMS\":null}: " MORE_DETAIL,
          NULL },
        /* (f) runs after (e) and validates the first of KMS, AESGCM, AESCBC, Secretbox only */
        { "more-than-one-kms-first",
          ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"tcp://x\"}\n        aesgcm: {keys: [{name: a, secret: " S17 "}]}\n"),
          false,
          "[" P0 ": Invalid value: {\"AESGCM\":{\"Keys\":[{\"Name\":\"a\",\"Secret\":\"REDACTED\"}]},\"AESCBC\":null,"
          "\"Secretbox\":null,\"Identity\":null,\"KMS\":{\"APIVersion\":\"v2\",\"Name\":\"k\",\"CacheSize\":null,"
          "\"Endpoint\":\"tcp://x\",\"Timeout\":\"3s\"}}: " MORE_DETAIL ", " K0 ".endpoint: Invalid value: \"tcp://x\": "
          "unsupported scheme \"tcp\" for KMS provider, only unix is supported]",
          NULL },
        { "more-than-one-aesgcm-before-secretbox",
          ONE("      - secretbox: {keys: [{name: s, secret: " S16 "}]}\n        aesgcm: {keys: [{name: a, secret: " S17 "}]}\n"),
          false,
          "[" P0 ": Invalid value: {\"AESGCM\":{\"Keys\":[{\"Name\":\"a\",\"Secret\":\"REDACTED\"}]},\"AESCBC\":null,"
          "\"Secretbox\":{\"Keys\":[{\"Name\":\"s\",\"Secret\":\"REDACTED\"}]},\"Identity\":null,\"KMS\":null}: " MORE_DETAIL
          ", " P0 ".aesgcm.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 17, "
          "expected one of [16 24 32]]",
          NULL },
        { "more-than-one-kms-v1", ONE("      - kms: {name: k, endpoint: \"unix:///k\", cachesize: 5, timeout: 2s}\n        identity: {}\n"),
          false,
          P0 ": Invalid value: {\"AESGCM\":null,\"AESCBC\":null,\"Secretbox\":null,\"Identity\":{},\"KMS\":{\"APIVersion\":"
             "\"v1\",\"Name\":\"k\",\"CacheSize\":5,\"Endpoint\":\"unix:///k\",\"Timeout\":\"2s\"}}: " MORE_DETAIL,
          NULL },

        /* ---- keys ---- */
        { "keys-empty", ONE("      - aesgcm: {keys: []}\n"), false,
          P0 ".aesgcm.keys: Required value: at least one keys is required", NULL },
        { "keys-missing", ONE("      - aescbc: {}\n"), false, P0 ".aescbc.keys: Required value: at least one keys is required",
          NULL },
        { "keys-null-secretbox", ONE("      - secretbox:\n          keys:\n"), false,
          P0 ".secretbox.keys: Required value: at least one keys is required", NULL },
        { "key-name-and-secret-empty", ONE("      - aescbc: {keys: [{name: \"\", secret: \"\"}]}\n"), false,
          "[" P0 ".aescbc.keys[0].name: Required value: name is a mandatory field for a key, " P0
          ".aescbc.keys[0].secret: Required value: secret is a mandatory field for a key]",
          NULL },
        { "key-name-missing", ONE("      - aescbc: {keys: [{secret: " S32 "}]}\n"), false,
          P0 ".aescbc.keys[0].name: Required value: name is a mandatory field for a key", NULL },
        { "key-secret-not-base64", ONE("      - aescbc: {keys: [{name: k, secret: \"not base64!\"}]}\n"), false,
          P0 ".aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded", NULL },
        { "key-secret-no-padding", ONE("      - aescbc: {keys: [{name: k, secret: c2VjcmV0IGlzIHNlY3VyZQ}]}\n"), false,
          P0 ".aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded", NULL },
        { "key-aes-17", ONE("      - aesgcm: {keys: [{name: k1, secret: " S16 "}, {name: k2, secret: " S17 "}]}\n"), false,
          P0 ".aesgcm.keys[1].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 17, "
             "expected one of [16 24 32]",
          NULL },
        { "key-secretbox-16", ONE("      - secretbox: {keys: [{name: k, secret: " S16 "}]}\n"), false,
          P0 ".secretbox.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 16, "
             "expected one of [32]",
          NULL },
        { "key-secret-only-newline", ONE("      - aescbc: {keys: [{name: k, secret: \"\\n\"}]}\n"), false,
          P0 ".aescbc.keys[0].secret: Invalid value: \"REDACTED\": secret is not of the expected length, got 0, "
             "expected one of [16 24 32]",
          NULL },
        { "key-secret-with-newlines", ONE("      - aescbc: {keys: [{name: k, secret: \"YWJjZGVmZ2hpamtsbW5v\\ncHFyc3R1dnd4eXoxMjM0NTY=\\r\\n\"}]}\n"),
          false, NULL, NULL },
        { "key-aes-24", ONE("      - aescbc: {keys: [{name: k, secret: MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0}]}\n"), false, NULL,
          NULL },

        /* ---- resource names ---- */
        { "resource-names-all-rules",
          H "  - resources: [Secrets, \"*\", apiserveripinfo, serviceipallocations, servicenodeportallocations, "
            "foo.events.k8s.io, foo.extensions, \"foos.*\", \"FOO.*\"]\n    providers:\n      - identity: {}\n",
          false,
          "[resources[0].resources: Invalid value: [\"Secrets\",\"*\",\"apiserveripinfo\",\"serviceipallocations\","
          "\"servicenodeportallocations\",\"foo.events.k8s.io\",\"foo.extensions\",\"foos.*\",\"FOO.*\"]: " OVERLAP ", "
          "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters, "
          "resources[0].resources[1]: Invalid value: \"*\": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources, "
          "resources[0].resources[2]: Invalid value: \"apiserveripinfo\": resources which do not have REST API/s cannot be encrypted, "
          "resources[0].resources[3]: Invalid value: \"serviceipallocations\": resources which do not have REST API/s cannot be encrypted, "
          "resources[0].resources[4]: Invalid value: \"servicenodeportallocations\": resources which do not have REST API/s cannot be encrypted, "
          "resources[0].resources[5]: Invalid value: \"foo.events.k8s.io\": '*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file, "
          "resources[0].resources[6]: Invalid value: \"foo.extensions\": 'extensions' group has been removed and cannot be used for encryption, "
          "resources[0].resources[7]: Invalid value: \"foos.*\": encrypting the same resource across groups is not supported, "
          "resources[0].resources[8]: Invalid value: \"FOO.*\": resource name should not contain capital letters]",
          NULL },
        { "resource-capital-single", H "  - resources: [Secrets]\n    providers:\n      - identity: {}\n", false,
          "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters", NULL },
        { "resource-unicode-capital", H "  - resources: [\"\xc3\x84rzte\"]\n    providers:\n      - identity: {}\n", false,
          "resources[0].resources[0]: Invalid value: \"\xc3\x84rzte\": resource name should not contain capital letters",
          NULL },
        { "resource-unicode-lower", H "  - resources: [\"\xc3\xa4rzte\", ignored, \"\"]\n    providers:\n      - identity: {}\n",
          false, NULL, NULL },
        { "resource-wildcards-ok", H "  - resources: [\"*.apps\", \"*.\"]\n    providers:\n      - identity: {}\n"
                                     "  - resources: [\"deployments.apps\", \"*.\"]\n    providers:\n      - identity: {}\n",
          false, NULL,
          /* the build step then rejects the second entry */
          "error while building transformers: resource \"deployments.apps\" is masked by earlier rule \"*.apps\"" },
        { "resource-duplicate", H "  - resources: [secrets, secrets, secrets]\n    providers:\n      - identity: {}\n", false,
          "resources[0].resources: Invalid value: [\"secrets\",\"secrets\",\"secrets\"]: " DUPRES, NULL },
        { "resource-duplicate-trailing-dot", H "  - resources: [secrets, \"secrets.\"]\n    providers:\n      - identity: {}\n",
          false, "resources[0].resources: Invalid value: [\"secrets\",\"secrets.\"]: " DUPRES, NULL },
        { "resource-duplicate-and-overlap", H "  - resources: [\"*.\", \"*.\"]\n    providers:\n      - identity: {}\n", false,
          "[resources[0].resources: Invalid value: [\"*.\",\"*.\"]: " DUPRES ", resources[0].resources: Invalid value: "
          "[\"*.\",\"*.\"]: " OVERLAP "]",
          NULL },
        { "resource-overlap-core", H "  - resources: [secrets, \"*.\"]\n    providers:\n      - identity: {}\n", false,
          "resources[0].resources: Invalid value: [\"secrets\",\"*.\"]: " OVERLAP, NULL },
        { "resource-overlap-group", H "  - resources: [deployments.apps, \"*.apps\"]\n    providers:\n      - identity: {}\n",
          false, "resources[0].resources: Invalid value: [\"deployments.apps\",\"*.apps\"]: " OVERLAP, NULL },
        { "resource-overlap-anyany-first", H "  - resources: [\"*.*\", configmaps]\n    providers:\n      - identity: {}\n",
          false, "resources[0].resources: Invalid value: [\"*.*\",\"configmaps\"]: " OVERLAP, NULL },
        { "resource-overlap-anyany-last", H "  - resources: [configmaps, \"*.*\"]\n    providers:\n      - identity: {}\n",
          false, "resources[0].resources: Invalid value: [\"configmaps\",\"*.*\"]: " OVERLAP, NULL },
        { "resource-list-json-escaping", H "  - resources: [\"<a>&\", \"<a>&\"]\n    providers:\n      - identity: {}\n", false,
          "resources[0].resources: Invalid value: [\"\\u003ca\\u003e\\u0026\",\"\\u003ca\\u003e\\u0026\"]: " DUPRES, NULL },

        /* ---- KMS ---- */
        { "kms-v1-defaults-ok", ONE("      - kms: {name: k, endpoint: \"unix:///k.sock\"}\n"), false, NULL, KMSV1 },
        { "kms-name-empty", ONE("      - kms: {apiVersion: v2, name: \"\", endpoint: \"unix:///k.sock\"}\n"), false,
          K0 ".name: Required value: name is a mandatory field for a provider", NULL },
        { "kms-v2-name-colon", ONE("      - kms: {apiVersion: v2, name: \"a:b\", endpoint: \"unix:///k.sock\"}\n"), false,
          K0 ".name: Invalid value: \"a:b\": invalid KMS provider name a:b, must not contain ':'", NULL },
        { "kms-v1-name-colon-ok", ONE("      - kms: {apiVersion: v1, name: \"a:b\", endpoint: \"unix:///k.sock\"}\n"), false,
          NULL, KMSV1 },
        { "kms-name-go-quoting", ONE("      - kms: {apiVersion: v2, name: \"\xc3\xa9:\\u00a0\\t\\\"\", endpoint: \"unix:///k\"}\n"),
          false, K0 ".name: Invalid value: \"\xc3\xa9:\\u00a0\\t\\\"\": invalid KMS provider name \xc3\xa9:\xc2\xa0\t\", must not contain ':'",
          NULL },
        { "kms-v2-duplicate", ONE(KMS2("") KMS2("")), false,
          "resources[0].providers[1].kms.name: Invalid value: \"k\": duplicate KMS provider name k, names must be unique", NULL },
        { "kms-v2-duplicate-across-entries", H ENTRY(KMS2("")) "  - resources: [configmaps]\n    providers:\n" KMS2(""), false,
          "resources[1].providers[0].kms.name: Invalid value: \"k\": duplicate KMS provider name k, names must be unique", NULL },
        { "kms-v1-duplicate-no-reload",
          ONE("      - kms: {name: k, endpoint: \"unix:///a\"}\n      - kms: {name: k, endpoint: \"unix:///b\"}\n"), false, NULL,
          KMSV1 },
        { "kms-v1-duplicate-reload",
          ONE("      - kms: {name: k, endpoint: \"unix:///a\"}\n      - kms: {name: k, endpoint: \"unix:///b\"}\n"), true,
          "resources[0].providers[1].kms.name: Invalid value: \"k\": duplicate KMS provider name k, names must be unique", NULL },
        { "kms-v1-then-v2-same-name", ONE("      - kms: {name: k, endpoint: \"unix:///a\"}\n" KMS2("")), false,
          "resources[0].providers[1].kms.name: Invalid value: \"k\": duplicate KMS provider name k, names must be unique", NULL },
        { "kms-v2-then-v1-same-name", ONE(KMS2("") "      - kms: {name: k, endpoint: \"unix:///a\"}\n"), false, NULL, KMSV1 },
        /* an invalid name is still recorded */
        { "kms-empty-names-twice",
          ONE("      - kms: {apiVersion: v2, name: \"\", endpoint: \"unix:///a\"}\n      - kms: {apiVersion: v2, name: \"\", endpoint: \"unix:///a\"}\n"),
          false,
          "[" K0 ".name: Required value: name is a mandatory field for a provider, resources[0].providers[1].kms.name: "
          "Required value: name is a mandatory field for a provider, resources[0].providers[1].kms.name: Invalid value: "
          "\"\": duplicate KMS provider name , names must be unique]",
          NULL },
        { "kms-timeout-zero", ONE(KMS2(", timeout: 0s")), false,
          K0 ".timeout: Invalid value: \"0s\": timeout should be a positive value", NULL },
        { "kms-timeout-negative", ONE(KMS2(", timeout: -15s")), false,
          K0 ".timeout: Invalid value: \"-15s\": timeout should be a positive value", NULL },
        { "kms-timeout-negative-mixed", ONE(KMS2(", timeout: -1.5h")), false,
          K0 ".timeout: Invalid value: \"-1h30m0s\": timeout should be a positive value", NULL },
        { "kms-endpoint-empty", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"\"}\n"), false,
          K0 ".endpoint: Invalid value: \"\": endpoint is a mandatory field for a kms", NULL },
        { "kms-endpoint-missing", ONE("      - kms: {apiVersion: v2, name: k}\n"), false,
          K0 ".endpoint: Invalid value: \"\": endpoint is a mandatory field for a kms", NULL },
        { "kms-endpoint-tcp", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"tcp://x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"tcp://x\": unsupported scheme \"tcp\" for KMS provider, only unix is supported", NULL },
        { "kms-endpoint-https-uppercase", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"HTTPS://x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"HTTPS://x\": unsupported scheme \"https\" for KMS provider, only unix is supported",
          NULL },
        { "kms-endpoint-unix-uppercase-ok", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"UNIX:///k.sock\"}\n"), false,
          NULL, NULL },
        { "kms-endpoint-unix-opaque-ok", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:k.sock\"}\n"), false,
          NULL, NULL },
        { "kms-endpoint-no-scheme", ONE("      - kms: {apiVersion: v2, name: k, endpoint: /var/run/kms.sock}\n"), false,
          K0 ".endpoint: Invalid value: \"/var/run/kms.sock\": unsupported scheme \"\" for KMS provider, only unix is supported",
          NULL },
        { "kms-endpoint-control-char", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///foo\\n.socket\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix:///foo\\n.socket\": invalid endpoint for kms provider, error: parse "
             "\"unix:///foo\\n.socket\": net/url: invalid control character in URL",
          NULL },
        { "kms-endpoint-missing-scheme", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \":foo\"}\n"), false,
          K0 ".endpoint: Invalid value: \":foo\": invalid endpoint for kms provider, error: parse \":foo\": missing protocol scheme",
          NULL },
        { "kms-endpoint-colon-in-first-segment", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"1unix:x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"1unix:x\": invalid endpoint for kms provider, error: parse \"1unix:x\": first path "
             "segment in URL cannot contain colon",
          NULL },
        { "kms-endpoint-bad-port", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix://host:abc/x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix://host:abc/x\": invalid endpoint for kms provider, error: parse "
             "\"unix://host:abc/x\": invalid port \":abc\" after host",
          NULL },
        { "kms-endpoint-bad-escape", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///a%zz\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix:///a%zz\": invalid endpoint for kms provider, error: parse \"unix:///a%zz\": "
             "invalid URL escape \"%zz\"",
          NULL },
        { "kms-endpoint-short-escape", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///a%z\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix:///a%z\": invalid endpoint for kms provider, error: parse \"unix:///a%z\": "
             "invalid URL escape \"%z\"",
          NULL },
        { "kms-endpoint-host-space", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix://a b/x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix://a b/x\": invalid endpoint for kms provider, error: parse \"unix://a b/x\": "
             "invalid character \" \" in host name",
          NULL },
        { "kms-endpoint-missing-bracket", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix://[::1/x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix://[::1/x\": invalid endpoint for kms provider, error: parse \"unix://[::1/x\": "
             "missing ']' in host",
          NULL },
        { "kms-endpoint-fragment-escape", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///x#%zz\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix:///x#%zz\": invalid endpoint for kms provider, error: parse \"unix:///x#%zz\": "
             "invalid URL escape \"%zz\"",
          NULL },
        { "kms-endpoint-error-omits-fragment", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix:///a%zz#frag\"}\n"),
          false,
          K0 ".endpoint: Invalid value: \"unix:///a%zz#frag\": invalid endpoint for kms provider, error: parse "
             "\"unix:///a%zz\": invalid URL escape \"%zz\"",
          NULL },
        { "kms-endpoint-userinfo-escape", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix://u%zz@h/x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix://u%zz@h/x\": invalid endpoint for kms provider, error: parse "
             "\"unix://u%zz@h/x\": invalid URL escape \"%zz\"",
          NULL },
        { "kms-endpoint-userinfo-invalid", ONE("      - kms: {apiVersion: v2, name: k, endpoint: \"unix://u^@h/x\"}\n"), false,
          K0 ".endpoint: Invalid value: \"unix://u^@h/x\": invalid endpoint for kms provider, error: parse \"unix://u^@h/x\": "
             "net/url: invalid userinfo",
          NULL },
        { "kms-v2-cachesize", ONE(KMS2(", cachesize: 10")), false,
          K0 ".cachesize: Invalid value: 10: cachesize is not supported in v2", NULL },
        { "kms-v1-cachesize-zero", ONE("      - kms: {name: k, endpoint: \"unix:///k\", cachesize: 0}\n"), false,
          K0 ".cachesize: Invalid value: 0: cachesize should be a positive value, or negative to disable", NULL },
        { "kms-v1-cachesize-negative-ok", ONE("      - kms: {name: k, endpoint: \"unix:///k\", cachesize: -1}\n"), false, NULL,
          KMSV1 },
        { "kms-apiversion-v3", ONE("      - kms: {apiVersion: v3, name: k, endpoint: \"unix:///k\"}\n"), false,
          K0 ".apiVersion: Invalid value: \"v3\": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported",
          NULL },
        { "kms-check-order",
          ONE("      - kms: {apiVersion: v3, name: \"a:b\", endpoint: \"tcp://x\", cachesize: 5, timeout: 0s}\n"), false,
          "[" K0 ".name: Invalid value: \"a:b\": invalid KMS provider name a:b, must not contain ':', " K0
          ".timeout: Invalid value: \"0s\": timeout should be a positive value, " K0
          ".endpoint: Invalid value: \"tcp://x\": unsupported scheme \"tcp\" for KMS provider, only unix is supported, " K0
          ".cachesize: Invalid value: 5: cachesize is not supported in v2, " K0
          ".apiVersion: Invalid value: \"v3\": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported]",
          NULL },

        /* ---- traversal order over a whole file ---- */
        { "traversal-order",
          H "  - resources: [secrets, secrets, Foo]\n    providers:\n"
            "      - aescbc: {keys: [{name: \"\", secret: \"!!!\"}]}\n"
            "      - kms: {apiVersion: v2, name: \"a:b\", endpoint: \"tcp://x\", cachesize: 5, timeout: 0s}\n"
            "  - resources: []\n    providers: []\n",
          false,
          "[resources[0].resources: Invalid value: [\"secrets\",\"secrets\",\"Foo\"]: " DUPRES ", "
          "resources[0].resources[2]: Invalid value: \"Foo\": resource name should not contain capital letters, "
          P0 ".aescbc.keys[0].name: Required value: name is a mandatory field for a key, "
          P0 ".aescbc.keys[0].secret: Invalid value: \"REDACTED\": secrets must be base64 encoded, "
          "resources[0].providers[1].kms.name: Invalid value: \"a:b\": invalid KMS provider name a:b, must not contain ':', "
          "resources[0].providers[1].kms.timeout: Invalid value: \"0s\": timeout should be a positive value, "
          "resources[0].providers[1].kms.endpoint: Invalid value: \"tcp://x\": unsupported scheme \"tcp\" for KMS provider, only unix is supported, "
          "resources[0].providers[1].kms.cachesize: Invalid value: 5: cachesize is not supported in v2, "
          "resources[1].resources: Required value: at least one resources[1].resources is required, "
          "resources[1].providers: Required value: at least one resources[1].providers is required]",
          NULL },

        /* ---- build step: masking (§1.6), upstream-asserted examples ---- */
        { "masked-by-core-wildcard",
          H "  - resources: [configmaps, \"*.\"]\n    providers:\n      - identity: {}\n"
            "  - resources: [\"*.*\", secrets]\n    providers:\n      - identity: {}\n",
          /* upstream asserts the build-step text on a Go struct; through validation the overlap rule wins */
          false,
          "[resources[0].resources: Invalid value: [\"configmaps\",\"*.\"]: " OVERLAP ", resources[1].resources: Invalid "
          "value: [\"*.*\",\"secrets\"]: " OVERLAP "]",
          NULL },
        { "masked-by-group-wildcard",
          H "  - resources: [\"*.apps\"]\n    providers:\n      - identity: {}\n  - resources: [configmaps, deployments.apps]\n    providers:\n      - identity: {}\n",
          false, NULL, "error while building transformers: resource \"deployments.apps\" is masked by earlier rule \"*.apps\"" },
        { "masked-core-twice",
          H "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n",
          false, NULL, "error while building transformers: resource \"*.\" is masked by earlier rule \"*.\"" },
        { "masked-by-anyany",
          H "  - resources: [\"*.*\"]\n    providers:\n      - identity: {}\n  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n",
          false, NULL, "error while building transformers: resource \"*.\" is masked by earlier rule \"*.*\"" },
        { "masked-trailing-dot-name",
          H "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n  - resources: [\"secrets.\"]\n    providers:\n      - identity: {}\n",
          false, NULL, "error while building transformers: resource \"secrets\" is masked by earlier rule \"*.\"" },
        { "same-resource-twice-concatenates",
          H ENTRY("      - identity: {}\n") ENTRY("      - aescbc: {keys: [{name: k, secret: " S32 "}]}\n"), false, NULL, NULL },
        { "specific-before-wildcard-ok",
          H ENTRY("      - identity: {}\n") "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n", false, NULL, NULL },

        /* ---- our stricter checks (SPEC §3) ---- */
        { "strict-duplicate-key-name", ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}, {name: a, secret: " S32B "}]}\n"),
          false, NULL,
          P0 ".aescbc.keys[1].name: Invalid value: \"a\": duplicate key name within provider; rename one key " HINT },
        { "strict-duplicate-secretbox", ONE("      - identity: {}\n      - secretbox: {keys: [{name: s, secret: " S32 "}, {name: t, secret: " S32B
                                            "}, {name: s, secret: " S32B "}]}\n"),
          false, NULL,
          "resources[0].providers[1].secretbox.keys[2].name: Invalid value: \"s\": duplicate key name within provider; "
          "rename one key " HINT },
        /* issue 16: one prefix for two keys, so aescbc decrypted 0.2-0.6 % of values with the wrong key */
        /* keys: [] is Go's empty, non-nil slice: kube prints [] where null would be absent (issue 16) */
        { "keys-empty-list-printed-as-list", ONE("      - aescbc: {keys: []}\n        identity: {}\n"), false,
          "[" P0 ": Invalid value: {\"AESGCM\":null,\"AESCBC\":{\"Keys\":[]},\"Secretbox\":null,\"Identity\":{},"
          "\"KMS\":null}: " MORE_DETAIL ", " P0 ".aescbc.keys: Required value: at least one keys is required]",
          NULL },
        { "keys-null-printed-as-null", ONE("      - aescbc: {keys: null}\n        identity: {}\n"), false,
          "[" P0 ": Invalid value: {\"AESGCM\":null,\"AESCBC\":{\"Keys\":null},\"Secretbox\":null,\"Identity\":{},"
          "\"KMS\":null}: " MORE_DETAIL ", " P0 ".aescbc.keys: Required value: at least one keys is required]",
          NULL },
        { "strict-duplicate-across-providers",
          ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}]}\n      - aescbc: {keys: [{name: a, secret: " S32B "}]}\n"),
          false, NULL,
          "resources[0].providers[1].aescbc.keys[0].name: Invalid value: \"a\": duplicate key name: key "
          "resources[0].providers[0].aescbc.keys[0] has the same name, so values stored under either key carry the "
          "prefix k8s:enc:aescbc:v1:a: and could be decrypted with the wrong key; rename one key " HINT },
        { "strict-duplicate-across-providers-secretbox",
          ONE("      - secretbox: {keys: [{name: x, secret: " S32 "}]}\n      - identity: {}\n"
              "      - secretbox: {keys: [{name: z1, secret: " S32 "}, {name: x, secret: " S32B "}]}\n"),
          false, NULL,
          "resources[0].providers[2].secretbox.keys[1].name: Invalid value: \"x\": duplicate key name: key "
          "resources[0].providers[0].secretbox.keys[0] has the same name, so values stored under either key carry the "
          "prefix k8s:enc:secretbox:v1:x: and could be decrypted with the wrong key; rename one key " HINT },
        /* other types, other entries: other prefixes or other data */
        { "strict-same-name-other-type-ok",
          ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}]}\n      - aesgcm: {keys: [{name: a, secret: " S32B "}]}\n"),
          false, NULL, NULL },
        { "strict-same-name-other-entry-ok",
          H ENTRY("      - aescbc: {keys: [{name: a, secret: " S32 "}]}\n")
            "  - resources: [configmaps]\n    providers:\n      - aescbc: {keys: [{name: a, secret: " S32B "}]}\n",
          false, NULL, NULL },
        { "strict-colon-shadow", ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}, {name: \"a:b\", secret: " S32B "}]}\n"),
          false, NULL,
          P0 ".aescbc.keys[1].name: Invalid value: \"a:b\": key name starts with the name of key \"a\" "
             "(resources[0].providers[0].aescbc.keys[0]) followed by ':', so values stored under this key also carry that "
             "key's prefix k8s:enc:aescbc:v1:a: and could be decrypted with the wrong key; rename one key " HINT },
        { "strict-colon-shadow-across-providers",
          ONE("      - aesgcm: {keys: [{name: \"x:y:z\", secret: " S32 "}]}\n      - aesgcm: {keys: [{name: \"x:y\", secret: " S32B "}]}\n"),
          false, NULL,
          P0 ".aesgcm.keys[0].name: Invalid value: \"x:y:z\": key name starts with the name of key \"x:y\" "
             "(resources[0].providers[1].aesgcm.keys[0]) followed by ':', so values stored under this key also carry that "
             "key's prefix k8s:enc:aesgcm:v1:x:y: and could be decrypted with the wrong key; rename one key " HINT },
        { "strict-colon-other-type-ok",
          ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}]}\n      - secretbox: {keys: [{name: \"a:b\", secret: " S32B "}]}\n"),
          false, NULL, NULL },
        /* k3s's own names carry RFC 3339 times and must pass */
        { "strict-k3s-names-ok",
          ONE("      - aescbc:\n          keys:\n            - {name: \"aescbckey-2026-03-09T09:46:54+01:00\", secret: " S32B "}\n"
              "            - {name: \"aescbckey-2021-12-10T22:54:38Z\", secret: " S32 "}\n"
              "            - {name: aescbckey, secret: " S32 "}\n      - identity: {}\n"),
          false, NULL, NULL },
        { "strict-both-aggregated",
          ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}, {name: a, secret: " S32 "}, {name: \"a:\", secret: " S32 "}]}\n"),
          false, NULL,
          "[" P0 ".aescbc.keys[1].name: Invalid value: \"a\": duplicate key name within provider; rename one key " HINT ", "
          P0 ".aescbc.keys[2].name: Invalid value: \"a:\": key name starts with the name of key \"a\" "
          "(resources[0].providers[0].aescbc.keys[0]) followed by ':', so values stored under this key also carry that "
          "key's prefix k8s:enc:aescbc:v1:a: and could be decrypted with the wrong key; rename one key " HINT "]" },
        /* kube's verdict comes first: our checks do not run on a config kube rejects */
        { "strict-after-kube",
          H "  - resources: [Secrets]\n    providers:\n      - aescbc: {keys: [{name: a, secret: " S32 "}, {name: a, secret: " S32 "}]}\n",
          false, "resources[0].resources[0]: Invalid value: \"Secrets\": resource name should not contain capital letters",
          NULL },
};

/* Every secret in the model: none of them may appear in a message. */
static void assert_no_secrets(const se_config *c, const char *msg) {
        for (size_t i = 0; c && i < c->n_resources; i++)
                for (size_t j = 0; j < c->resources[i].n_providers; j++) {
                        const se_provider *p = &c->resources[i].providers[j];
                        const se_key_list *lists[] = { p->aesgcm, p->aescbc, p->secretbox };

                        for (size_t k = 0; k < ELEMENTSOF(lists); k++)
                                for (size_t m = 0; lists[k] && m < lists[k]->n_keys; m++) {
                                        const char *s = lists[k]->keys[m].secret;

                                        if (s && strlen(s) >= 4)
                                                ck_assert_msg(!strstr(msg, s), "secret %s leaked into: %s", s, msg);
                                }
                }
}

static se_config *parse_yaml(const char *yaml) {
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        int r;

        r = se_config_parse("test.yaml", yaml, strlen(yaml), &c, &e);
        ck_assert_msg(r == 0, "parse failed: %s\n%s", se_error_message(&e), yaml);
        se_error_done(&e);
        return c;
}

static void check_model(const char *name, const se_config *c, bool reload, const char *kube, const char *full) {
        se_error e = SE_ERROR_NULL;
        int r;

        r = se_config_validate_kube(c, reload, &e);
        if (kube) {
                ck_assert_msg(r == -EBADMSG, "%s: kube rules accepted (r=%d)", name, r);
                ck_assert_str_eq(se_error_message(&e), kube);
                assert_no_secrets(c, se_error_message(&e));
        } else
                ck_assert_msg(r == 0, "%s: kube rules rejected: %s", name, se_error_message(&e));
        se_error_done(&e);

        r = se_config_validate(c, reload, &e);
        if (kube || full) {
                ck_assert_msg(r == -EBADMSG, "%s: se_config_validate accepted (r=%d)", name, r);
                ck_assert_str_eq(se_error_message(&e), kube ?: full);
                assert_no_secrets(c, se_error_message(&e));
        } else
                ck_assert_msg(r == 0, "%s: se_config_validate rejected: %s", name, se_error_message(&e));
        se_error_done(&e);
}

START_TEST(test_table) {
        const vcase *t = &cases[_i];
        se_config *c = parse_yaml(t->yaml);

        check_model(t->name, c, t->reload, t->kube, t->full);
        se_config_free(c);
}
END_TEST

/* ---- models built by hand: what YAML cannot express ---- */

static se_config *mk_config(void) {
        se_config *c = se_config_new();

        ck_assert_ptr_nonnull(c);
        c->kind = strdup("EncryptionConfiguration");
        c->api_version = strdup("apiserver.config.k8s.io/v1");
        return c;
}

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

static se_kms *mk_kms(const char *version, const char *name, const char *endpoint) {
        se_kms *k = calloc(1, sizeof(se_kms));

        ck_assert_ptr_nonnull(k);
        *k = (se_kms){ .api_version = strdup_null(version),
                       .name = strdup_null(name),
                       .endpoint = strdup_null(endpoint),
                       .timeout_ns = INT64_C(3000000000) };
        return k;
}

START_TEST(test_nil_config) {
        check_model("nil", NULL, false, "resources: Required value: EncryptionConfiguration can't be nil", NULL);
}
END_TEST

/* Go's strings.ToLower rewrites invalid UTF-8 to U+FFFD, so such a name "has capitals"; %q
 * prints the byte as \xff. */
START_TEST(test_invalid_utf8_resource) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "se\xffrets", NULL);

        mk_provider(c, i)->identity = true;
        check_model("utf8", c, false,
                    "resources[0].resources[0]: Invalid value: \"se\\xffrets\": resource name should not contain capital "
                    "letters",
                    NULL);
        se_config_free(c);
}
END_TEST

/* A control character after '#' is not checked by url.Parse (only the part before it is). */
START_TEST(test_kms_control_char_in_fragment) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);

        mk_provider(c, i)->kms = mk_kms("v2", "k", "unix:///x#\x01");
        check_model("fragment", c, false, NULL, NULL);
        mk_provider(c, i)->kms = mk_kms("v2", "k2", "unix:///x\x7f#y");
        check_model("del", c, false,
                    "resources[0].providers[1].kms.endpoint: Invalid value: \"unix:///x\\x7f#y\": invalid endpoint for kms "
                    "provider, error: parse \"unix:///x\\x7f\": net/url: invalid control character in URL",
                    NULL);
        se_config_free(c);
}
END_TEST

/* keys: [] (non-nil, empty) renders as [] in the provider struct; a missing cachesize on v1 (not
 * reachable after defaulting) is not treated as zero. */
START_TEST(test_model_edge_values) {
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);
        se_provider *p = mk_provider(c, i);

        p->aescbc = calloc(1, sizeof(se_key_list));
        p->aescbc->keys = calloc(1, sizeof(se_key));
        p->identity = true;
        check_model("empty-keys", c, false,
                    "[resources[0].providers[0]: Invalid value: {\"AESGCM\":null,\"AESCBC\":{\"Keys\":[]},\"Secretbox\":null,"
                    "\"Identity\":{},\"KMS\":null}: " MORE_DETAIL
                    ", resources[0].providers[0].aescbc.keys: Required value: at least one keys is required]",
                    NULL);
        se_config_free(c);

        c = mk_config();
        i = mk_entry(c, "secrets", NULL);
        mk_provider(c, i)->kms = mk_kms("v1", "k", "unix:///k");
        check_model("v1-no-cachesize", c, false, NULL, KMSV1);
        se_config_free(c);
}
END_TEST

/* A key name that is a key (name and secret swapped) is never printed either. */
START_TEST(test_key_shaped_name_redacted) {
        static const char *const inputs[] = {
                /* more than one provider in an element: kube dumps the element */
                ONE("      - aescbc: {keys: [{name: " S32 ", secret: k1}]}\n        identity: {}\n"),
                /* our duplicate-name and prefix checks quote names */
                ONE("      - aescbc: {keys: [{name: " S32 ", secret: " S32B "}]}\n"
                    "      - aescbc: {keys: [{name: " S32 ", secret: " S32B "}]}\n"),
                ONE("      - aescbc: {keys: [{name: " S32 ", secret: " S32B "}, {name: \"" S32 ":x\", secret: " S32B "}]}\n"),
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                se_config *c = parse_yaml(inputs[i]);
                se_error e = SE_ERROR_NULL;

                ck_assert_int_eq(se_config_validate(c, false, &e), -EBADMSG);
                ck_assert_msg(!strstr(se_error_message(&e), S32) && !strstr(se_error_message(&e), "YWJjZGVm"),
                              "%zu leaks: %s", i, se_error_message(&e));
                ck_assert_msg(strstr(se_error_message(&e), "REDACTED"), "%zu: %s", i, se_error_message(&e));
                se_error_done(&e);
                se_config_free(c);
        }
}
END_TEST

/* keys: [] survives a copy (rotations copy the config) and a write as an empty list, as in Go */
START_TEST(test_empty_keys_copy_and_write) {
        se_config *c = parse_yaml(ONE("      - aescbc: {keys: []}\n        identity: {}\n")), *copy = NULL;
        _cleanup_free_ char *json = NULL;
        se_error e = SE_ERROR_NULL;
        size_t n = 0;

        ck_assert_int_eq(se_config_copy(c, &copy), 0);
        ck_assert_int_eq(se_config_validate_kube(copy, false, &e), -EBADMSG);
        ck_assert_msg(strstr(se_error_message(&e), "\"AESCBC\":{\"Keys\":[]}"), "%s", se_error_message(&e));
        se_error_done(&e);
        ck_assert_int_eq(se_config_to_json(copy, &json, &n), 0);
        ck_assert_msg(strstr(json, "{\"aescbc\":{\"keys\":[]}"), "%s", json);
        se_config_free(copy);
        se_config_free(c);
}
END_TEST

/* KMS v1 (written or defaulted) stops kube-apiserver ≥ 1.29 unless its KMSv1 gate is on; the
 * kms-v1 setting turns our gate on (issue 16). */
START_TEST(test_kms_v1_gate) {
        static const char *const v1[] = {
                ONE("      - kms: {name: k, endpoint: \"unix:///k\"}\n"),
                ONE("      - kms: {apiVersion: v1, name: k, endpoint: \"unix:///k\"}\n"),
                ONE("      - kms: {apiVersion: \"\", name: k, endpoint: \"unix:///k\"}\n"),
                /* behind a v2 provider and a write key: still built, still refused */
                ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}]}\n" KMS2("")
                    "      - kms: {name: old, endpoint: \"unix:///o\"}\n"),
                /* in a later entry */
                H ENTRY("      - identity: {}\n") "  - resources: [configmaps]\n    providers:\n"
                  "      - kms: {name: k, endpoint: \"unix:///k\"}\n",
        };

        ck_assert(!se_config_get_kms_v1_gate());
        for (size_t i = 0; i < ELEMENTSOF(v1); i++) {
                se_config *c = parse_yaml(v1[i]);

                se_config_set_kms_v1_gate(false);
                check_model("kms-v1 gate off", c, false, NULL, KMSV1);
                se_config_set_kms_v1_gate(true);
                check_model("kms-v1 gate on", c, false, NULL, NULL);
                se_config_set_kms_v1_gate(false);
                se_config_free(c);
        }

        /* v2 needs no gate */
        {
                se_config *c = parse_yaml(ONE(KMS2("")));

                check_model("kms-v2", c, false, NULL, NULL);
                se_config_free(c);
        }
        /* kube builds entry by entry: the first entry's KMS v1 comes before a later masking, and a
         * masking found before a later entry's KMS v1 comes first */
        {
                se_config *c = parse_yaml(H "  - resources: [\"*.\"]\n    providers:\n      - kms: {name: k, endpoint: "
                                            "\"unix:///k\"}\n  - resources: [secrets]\n    providers:\n      - identity: {}\n");

                check_model("kms-v1 before masking", c, false, NULL, KMSV1);
                se_config_free(c);
                c = parse_yaml(H "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n  - resources: [secrets]\n"
                                 "    providers:\n      - kms: {name: k, endpoint: \"unix:///k\"}\n");
                check_model("kms-v1 of a masked entry", c, false, NULL, KMSV1);
                se_config_free(c);
                c = parse_yaml(H "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n  - resources: [secrets]\n"
                                 "    providers:\n      - identity: {}\n  - resources: [pods]\n    providers:\n"
                                 "      - kms: {name: k, endpoint: \"unix:///k\"}\n");
                check_model("masking before a later kms-v1", c, false, NULL,
                            "error while building transformers: resource \"secrets\" is masked by earlier rule \"*.\"");
                se_config_free(c);
        }
}
END_TEST

/* Key material never appears, however the provider is broken. */
START_TEST(test_no_secret_in_any_message) {
        static const char *const secrets[] = { S16, S17, S32, S32B, "bm90IGEgdmFsaWQga2V5IGF0IGFsbA==", "!!!notbase64!!!" };
        se_error e = SE_ERROR_NULL;
        se_config *c = mk_config();
        size_t i = mk_entry(c, "secrets", NULL);
        se_provider *p = mk_provider(c, i);

        p->identity = true;
        p->aescbc = calloc(1, sizeof(se_key_list));
        p->aescbc->n_keys = ELEMENTSOF(secrets);
        p->aescbc->keys = calloc(ELEMENTSOF(secrets), sizeof(se_key));
        for (size_t k = 0; k < ELEMENTSOF(secrets); k++)
                p->aescbc->keys[k] = (se_key){ .name = strdup("k"), .secret = strdup(secrets[k]) };
        p->secretbox = calloc(1, sizeof(se_key_list));
        p->secretbox->n_keys = 1;
        p->secretbox->keys = calloc(1, sizeof(se_key));
        p->secretbox->keys[0] = (se_key){ .name = strdup("s"), .secret = strdup(S16) };

        ck_assert_int_eq(se_config_validate(c, false, &e), -EBADMSG);
        for (size_t k = 0; k < ELEMENTSOF(secrets); k++)
                ck_assert_msg(!strstr(se_error_message(&e), secrets[k]), "leaked %s", secrets[k]);
        ck_assert(strstr(se_error_message(&e), "\"Secret\":\"REDACTED\""));
        ck_assert(strstr(se_error_message(&e), "secret is not of the expected length, got 17"));
        ck_assert(strstr(se_error_message(&e), "secrets must be base64 encoded"));
        se_error_done(&e);
        se_config_free(c);
}
END_TEST

/* se_config_load wraps the same text the way kube-apiserver's LoadEncryptionConfig does. */
START_TEST(test_through_load) {
        _cleanup_free_ char *path = NULL, *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL;
        char *dir = tl_tmpdir();
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        int r1, r2, r3, r4;

        /* everything that touches the directory first, then remove it, then assert */
        path = tl_path(dir, "enc.yaml");
        tl_write_str(path, ONE("      - secretbox: {keys: [{name: k, secret: " S16 "}]}\n"));
        r1 = se_config_load(path, &c, NULL, &e);
        m1 = strdup(se_error_message(&e));
        se_error_done(&e);
        tl_write_str(path, ONE("      - aescbc: {keys: [{name: a, secret: " S32 "}, {name: a, secret: " S32 "}]}\n"));
        r2 = se_config_load(path, &c, NULL, &e);
        m2 = strdup(se_error_message(&e));
        se_error_done(&e);
        /* building errors are not parse errors: kube prints them without "error while parsing file: " */
        tl_write_str(path, H "  - resources: [\"*.\"]\n    providers:\n      - identity: {}\n"
                             "  - resources: [secrets]\n    providers:\n      - identity: {}\n");
        r3 = se_config_load(path, &c, NULL, &e);
        m3 = strdup(se_error_message(&e));
        se_error_done(&e);
        tl_write_str(path, ONE("      - kms: {name: k, endpoint: \"unix:///k\"}\n"));
        r4 = se_config_load(path, &c, NULL, &e);
        m4 = strdup(se_error_message(&e));
        se_error_done(&e);
        tl_tmpdir_remove(dir);

        ck_assert_int_eq(r1, -EBADMSG);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(m1, "error while parsing file: " P0 ".secretbox.keys[0].secret: Invalid value: \"REDACTED\": "
                             "secret is not of the expected length, got 16, expected one of [32]");
        ck_assert_int_eq(r2, -EBADMSG);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(m2, "error while parsing file: " P0 ".aescbc.keys[1].name: Invalid value: \"a\": duplicate key "
                             "name within provider; rename one key " HINT);
        ck_assert_int_eq(r3, -EBADMSG);
        ck_assert_str_eq(m3, "error while building transformers: resource \"secrets\" is masked by earlier rule \"*.\"");
        ck_assert_int_eq(r4, -EBADMSG);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(m4, KMSV1);
}
END_TEST

static Suite *config_validate_suite(void) {
        Suite *s = suite_create("config-validate");
        TCase *tc = tcase_create("kube-rules");

        tcase_add_loop_test(tc, test_table, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_nil_config);
        tcase_add_test(tc, test_invalid_utf8_resource);
        tcase_add_test(tc, test_kms_control_char_in_fragment);
        tcase_add_test(tc, test_model_edge_values);
        tcase_add_test(tc, test_kms_v1_gate);
        tcase_add_test(tc, test_empty_keys_copy_and_write);
        tcase_add_test(tc, test_key_shaped_name_redacted);
        tcase_add_test(tc, test_no_secret_in_any_message);
        tcase_add_test(tc, test_through_load);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(config_validate_suite)
