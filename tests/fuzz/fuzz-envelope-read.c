/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the envelope read path: arbitrary stored values through kube's prefix
 * dispatch and every cipher. The first input byte picks one of a few configurations; a value that
 * reads back is re-written and must read back to the same plaintext.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-envelope.h"

#define K32 "e0/+tts8FS254BZimFZWtUsOCOUDSkvzB72PyimMlkY="
#define K16 "c2VjcmV0IGlzIHNlY3VyZQ=="

typedef struct fz_provider {
        se_provider_type type;
        const char *names[2];
        const char *secrets[2];
} fz_provider;

/* Key names overlap on purpose ("a" is a prefix of "a:b") so several candidates are tried. */
static const fz_provider configs[][4] = {
        { { SE_PROVIDER_AESCBC, { "key1", "a" }, { K32, K16 } },
          { SE_PROVIDER_AESGCM, { "key1", "a:b" }, { K16, K32 } },
          { SE_PROVIDER_SECRETBOX, { "key1", NULL }, { K32, NULL } },
          { SE_PROVIDER_IDENTITY, {}, {} } },
        { { SE_PROVIDER_IDENTITY, {}, {} },
          { SE_PROVIDER_KMS, { "vault", NULL }, {} },
          { SE_PROVIDER_AESGCM, { "a", "a:b" }, { K32, K16 } },
          { SE_PROVIDER_AESCBC, { "key1", NULL }, { K16, NULL } } },
        { { SE_PROVIDER_SECRETBOX, { "s", "s:" }, { K32, K32 } },
          { SE_PROVIDER_AESCBC, { "key1", "key1" }, { K16, K32 } },
          { SE_PROVIDER_NONE, {}, {} },
          { SE_PROVIDER_NONE, {}, {} } },
};

static se_transformer *transformers[ELEMENTSOF(configs) + 1];

static se_key_list *keys(const fz_provider *p) {
        se_key_list *l = calloc(1, sizeof(*l));

        if (!l)
                abort();
        l->keys = calloc(2, sizeof(se_key));
        if (!l->keys)
                abort();
        for (size_t i = 0; i < 2 && p->names[i]; i++) {
                l->keys[i].name = strdup(p->names[i]);
                l->keys[i].secret = strdup(p->secrets[i]);
                l->n_keys++;
        }
        return l;
}

static se_transformer *build(const fz_provider *ps, size_t n) {
        se_config *c = se_config_new();
        se_resource_config *rc;
        se_transformer *t = NULL;

        if (!c || !(c->resources = calloc(1, sizeof(*rc))))
                abort();
        c->n_resources = 1;
        rc = &c->resources[0];
        rc->resources = calloc(1, sizeof(char *));
        rc->providers = calloc(n, sizeof(se_provider));
        if (!rc->resources || !rc->providers)
                abort();
        rc->resources[0] = strdup("secrets");
        rc->n_resources = 1;
        for (size_t i = 0; i < n && ps[i].type != SE_PROVIDER_NONE; i++) {
                se_provider *p = &rc->providers[rc->n_providers++];

                switch (ps[i].type) {
                case SE_PROVIDER_AESCBC:
                        p->aescbc = keys(&ps[i]);
                        break;
                case SE_PROVIDER_AESGCM:
                        p->aesgcm = keys(&ps[i]);
                        break;
                case SE_PROVIDER_SECRETBOX:
                        p->secretbox = keys(&ps[i]);
                        break;
                case SE_PROVIDER_KMS:
                        p->kms = calloc(1, sizeof(se_kms));
                        if (!p->kms)
                                abort();
                        p->kms->api_version = strdup("v2");
                        p->kms->name = strdup(ps[i].names[0]);
                        p->kms->endpoint = strdup("unix:///kms.sock");
                        break;
                default:
                        p->identity = true;
                }
        }
        if (se_transformer_new(c, "secrets", &t, NULL) < 0)
                abort();
        se_config_free(c);
        return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        se_buf plain = {}, enc = {}, again = {};
        se_read_info info;
        se_transformer *t;
        int r;

        if (!transformers[0]) {
                for (size_t i = 0; i < ELEMENTSOF(configs); i++)
                        transformers[i] = build(configs[i], ELEMENTSOF(configs[i]));
                /* no rule for secrets: kube's default identity */
                transformers[ELEMENTSOF(configs)] = build(configs[0], 0);
        }
        if (size < 1)
                return 0;
        t = transformers[data[0] % ELEMENTSOF(transformers)];

        r = se_transformer_read(t, "/registry/secrets/default/fuzz", data + 1, size - 1, &plain, &info, NULL);
        /* an identity writer stores such a plaintext as is, and it then reads as ciphertext */
        if (r == 0 && !(plain.len >= 8 && memcmp(plain.data, "k8s:enc:", 8) == 0)) {
                if (se_transformer_write(t, "/registry/secrets/default/fuzz", plain.data, plain.len, &enc, NULL) ==
                    0) {
                        if (!se_transformer_is_current(t, enc.data, enc.len))
                                abort();
                        if (se_transformer_read(t, "/registry/secrets/default/fuzz", enc.data, enc.len, &again, &info,
                                                NULL) != 0)
                                abort();
                        if (again.len != plain.len || (plain.len > 0 && memcmp(again.data, plain.data, plain.len)))
                                abort();
                }
        } else if (r != -ENOKEY && r != -EBADMSG && r != -EOPNOTSUPP && r != -E2BIG)
                abort();

        se_buf_free(&plain);
        se_buf_free(&enc);
        se_buf_free(&again);
        return 0;
}
