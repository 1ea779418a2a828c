/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the envelope read path: arbitrary stored values through kube's prefix
 * dispatch and every cipher. The first input byte picks one of a few configurations; a value that
 * reads back is re-written and must read back to the same plaintext.
 *
 * SE_FUZZ_WRITE_SEEDS=DIR build-fuzz/fuzz-envelope-read writes, instead of fuzzing, the library's own
 * values for every provider and key of every configuration (fixed IVs, so the output is stable)
 * into DIR, each prefixed with its configuration byte; tests/fuzz/gen-seeds-data.py adds corrupted
 * variants and the reference vectors.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#define DSKEY "/registry/secrets/default/fuzz"

static void write_file(const char *dir, const char *name, uint8_t config, const uint8_t *p, size_t n) {
        char path[4096];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, &config, 1) != 1 || (n > 0 && write(fd, p, n) != (ssize_t) n) || close(fd) < 0) {
                perror(path);
                exit(EXIT_FAILURE);
        }
}

static void write_seeds(const char *dir) {
        static const char secret[] = "k8s\0\n\x0c\n\x02v1\x12\x06Secret\x12\x2a\n\x1c\n\x04" "fuzz\x12\x00\x1a\x07"
                                     "default\"\x00*\x00\x32\x00\x38\x00\x42\x00\x12\x0a\n\x01k\x12\x05value"
                                     "\x1a\x06Opaque\x1a\x00\"\x00";
        static char big[4100];
        static const struct {
                const char *name;
                const char *text;
                size_t len;
        } plains[] = {
                { "empty", "", 0 },
                { "short", "pandas are the best", 19 },
                { "block", "0123456789abcdef", 16 },
                { "secret", secret, sizeof(secret) - 1 },
                { "encprefix", "k8s:enc:aescbc:v1:key1:plaintext", 32 },
                { "nul", "\0\0\0", 3 },
                { "4k", big, sizeof(big) },
        };
        static const char *const type_names[] = {
                [SE_PROVIDER_IDENTITY] = "identity",   [SE_PROVIDER_AESCBC] = "aescbc", [SE_PROVIDER_AESGCM] = "aesgcm",
                [SE_PROVIDER_SECRETBOX] = "secretbox", [SE_PROVIDER_KMS] = "kms",
        };
        uint8_t iv[24];

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char) ('a' + i % 26);
        for (size_t i = 0; i < sizeof(iv); i++)
                iv[i] = (uint8_t) i;
        for (size_t c = 0; c < ELEMENTSOF(configs); c++)
                for (size_t p = 0; p < ELEMENTSOF(configs[c]); p++) {
                        const fz_provider *fp = &configs[c][p];

                        if (fp->type == SE_PROVIDER_NONE || fp->type == SE_PROVIDER_KMS)
                                continue; /* KMS values are made by gen-seeds-data.py */
                        for (size_t k = 0; k < 2; k++) {
                                fz_provider one = { fp->type, { fp->names[k] }, { fp->secrets[k] } };
                                size_t iv_size = fp->type == SE_PROVIDER_AESCBC   ? 16
                                                 : fp->type == SE_PROVIDER_AESGCM ? 12
                                                 : fp->type == SE_PROVIDER_SECRETBOX ? 24
                                                                                     : 0;
                                se_transformer *t;

                                if (fp->type != SE_PROVIDER_IDENTITY && !fp->names[k])
                                        break;
                                if (fp->type == SE_PROVIDER_IDENTITY && k > 0)
                                        break;
                                t = build(&one, 1);
                                for (size_t j = 0; j < ELEMENTSOF(plains); j++) {
                                        se_buf out = {};
                                        char name[256];

                                        if (se_transformer_write_with_iv(t, DSKEY, (const uint8_t *) plains[j].text,
                                                                         plains[j].len, iv_size ? iv : NULL, iv_size,
                                                                         &out, NULL) < 0)
                                                abort();
                                        snprintf(name, sizeof(name), "c%zu-%s-%s-%s", c, type_names[fp->type],
                                                 fp->names[k] ?: "none", plains[j].name);
                                        write_file(dir, name, (uint8_t) c, out.data, out.len);
                                        se_buf_free(&out);
                                }
                                se_transformer_free(t);
                        }
                }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        const char *dir = getenv("SE_FUZZ_WRITE_SEEDS");

        (void) argc;
        (void) argv;
        if (dir) {
                write_seeds(dir);
                exit(EXIT_SUCCESS);
        }
        return 0;
}

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

        r = se_transformer_read(t, DSKEY, data + 1, size - 1, &plain, &info, NULL);
        if (r == 0) {
                /* an identity writer stores such a plaintext as is, and it then reads as ciphertext:
                 * no round trip for it */
                if (!(plain.len >= 8 && memcmp(plain.data, "k8s:enc:", 8) == 0) &&
                    se_transformer_write(t, DSKEY, plain.data, plain.len, &enc, NULL) == 0) {
                        if (!se_transformer_is_current(t, enc.data, enc.len))
                                abort();
                        if (se_transformer_read(t, DSKEY, enc.data, enc.len, &again, &info, NULL) != 0)
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
