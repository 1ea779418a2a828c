/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "macro.h"
#include "testlib.h"

/*
 * kube-apiserver's value transformers: known answers (golden .exp files, libsodium style), kube's
 * exact errors, rotation staleness, round trips, cross-checks with independent implementations
 * (openssl enc, python3 cryptography) and malformed input.
 */

#define DSKEY "/registry/secrets/default/s1"

/* ---- helpers ------------------------------------------------------------------------------------ */

static uint8_t *unhex(const char *h, size_t *ret_n) {
        size_t n = strlen(h) / 2;
        uint8_t *b = malloc(n + 1);

        ck_assert_ptr_nonnull(b);
        ck_assert_uint_eq(strlen(h) % 2, 0);
        for (size_t i = 0; i < n; i++) {
                unsigned v;

                ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
                b[i] = (uint8_t) v;
        }
        *ret_n = n;
        return b;
}

static char *hex(const uint8_t *b, size_t n) {
        char *s = malloc(2 * n + 1);

        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < n; i++)
                sprintf(s + 2 * i, "%02x", b[i]);
        s[2 * n] = 0;
        return s;
}

static char *b64(const void *p, size_t n) {
        char *s = NULL;

        ck_assert_int_eq(se_base64_encode(p, n, &s), 0);
        return s;
}

static void add_str(char ***list, size_t *n, const char *s) {
        *list = reallocarray(*list, *n + 1, sizeof(char *));
        ck_assert_ptr_nonnull(*list);
        (*list)[(*n)++] = strdup(s);
}

/*
 * A tiny config language so every case states its EncryptionConfiguration in one line:
 *   entry ('|' entry)*            entry    = resources ':' provider (';' provider)*
 *   provider = identity | kms <apiVersion> <name> | aescbc|aesgcm|secretbox <name>=<base64> …
 * Key names may contain ':' (kube does not forbid it); only the first ':' splits an entry.
 */
static se_config *cfg(const char *spec) {
        _cleanup_free_ char *copy = strdup(spec);
        se_config *c = se_config_new();
        char *save_e = NULL, *entry;

        ck_assert_ptr_nonnull(c);
        for (entry = strtok_r(copy, "|", &save_e); entry; entry = strtok_r(NULL, "|", &save_e)) {
                char *colon = strchr(entry, ':'), *save_r = NULL, *save_p = NULL, *tok, *prov;
                se_resource_config *rc;

                ck_assert_ptr_nonnull(colon);
                *colon = 0;
                c->resources = reallocarray(c->resources, c->n_resources + 1, sizeof(se_resource_config));
                ck_assert_ptr_nonnull(c->resources);
                rc = &c->resources[c->n_resources++];
                *rc = (se_resource_config){};
                for (tok = strtok_r(entry, ", ", &save_r); tok; tok = strtok_r(NULL, ", ", &save_r))
                        add_str(&rc->resources, &rc->n_resources, tok);

                for (prov = strtok_r(colon + 1, ";", &save_p); prov; prov = strtok_r(NULL, ";", &save_p)) {
                        char *save_w = NULL, *w = strtok_r(prov, " ", &save_w);
                        se_provider *p;

                        ck_assert_ptr_nonnull(w);
                        rc->providers = reallocarray(rc->providers, rc->n_providers + 1, sizeof(se_provider));
                        ck_assert_ptr_nonnull(rc->providers);
                        p = &rc->providers[rc->n_providers++];
                        *p = (se_provider){};
                        if (streq(w, "identity"))
                                p->identity = true;
                        else if (streq(w, "kms")) {
                                p->kms = calloc(1, sizeof(se_kms));
                                ck_assert_ptr_nonnull(p->kms);
                                p->kms->api_version = strdup(strtok_r(NULL, " ", &save_w));
                                p->kms->name = strdup(strtok_r(NULL, " ", &save_w));
                                p->kms->endpoint = strdup("unix:///tmp/kms.sock");
                        } else {
                                se_key_list *l = calloc(1, sizeof(se_key_list));

                                ck_assert_ptr_nonnull(l);
                                if (streq(w, "aescbc"))
                                        p->aescbc = l;
                                else if (streq(w, "aesgcm"))
                                        p->aesgcm = l;
                                else if (streq(w, "secretbox"))
                                        p->secretbox = l;
                                else
                                        ck_abort_msg("bad provider %s", w);
                                while ((w = strtok_r(NULL, " ", &save_w))) {
                                        char *eq = strchr(w, '=');

                                        ck_assert_ptr_nonnull(eq);
                                        l->keys = reallocarray(l->keys, l->n_keys + 1, sizeof(se_key));
                                        ck_assert_ptr_nonnull(l->keys);
                                        l->keys[l->n_keys++] = (se_key){ strndup(w, (size_t) (eq - w)),
                                                                         strdup(eq + 1) };
                                }
                        }
                }
        }
        return c;
}

static se_transformer *tr(const char *spec, const char *resource) {
        se_config *c = cfg(spec);
        se_transformer *t = NULL;
        se_error e = SE_ERROR_NULL;
        int r = se_transformer_new(c, resource, &t, &e);

        ck_assert_msg(r == 0, "%s: %s", spec, se_error_message(&e));
        se_error_done(&e);
        se_config_free(c);
        return t;
}

static const char *errname(int r) {
        switch (r) {
        case 0:
                return "OK";
        case -ENOKEY:
                return "ENOKEY";
        case -EBADMSG:
                return "EBADMSG";
        case -EOPNOTSUPP:
                return "EOPNOTSUPP";
        case -EINVAL:
                return "EINVAL";
        default:
                return "OTHER";
        }
}

/* Compares printed output with a committed golden file; shows a diff when they differ. */
static void golden(const char *actual, const char *rel) {
        _cleanup_free_ char *path = tl_data_path(rel);
        _cleanup_free_ char *exp = tl_read_file(path, NULL);

        if (!streq(exp, actual)) {
                char *dir = tl_tmpdir();
                _cleanup_free_ char *a = tl_path(dir, "actual"), *cmd = NULL, *out = NULL;

                tl_write_str(a, actual);
                ck_assert_int_ge(asprintf(&cmd, "diff -u '%s' '%s'", path, a), 0);
                tl_run(cmd, &out);
                tl_tmpdir_remove(dir);
                ck_abort_msg("%s differs:\n%s", rel, out ?: "");
        }
}

static const char *provider_name(se_provider_type t) {
        return se_provider_type_to_string(t) ?: "?";
}

/* ---- known answers ------------------------------------------------------------------------------ */

static void vector_line(FILE *f, const char *name, se_transformer *t, const char *dskey, const uint8_t *stored,
                        size_t n) {
        se_buf out = {};
        se_read_info info = {};
        se_error e = SE_ERROR_NULL;
        _cleanup_free_ char *h = NULL;
        int r = se_transformer_read(t, dskey, stored, n, &out, &info, &e);

        ck_assert_msg(r == 0, "%s: %s", name, se_error_message(&e));
        h = hex(out.data, out.len);
        fprintf(f, "%s: read %s/%s stale=%s len=%zu %s\n", name, provider_name(info.provider), info.key_name,
                info.stale ? "yes" : "no", out.len, h);
        se_buf_free(&out);
        se_error_done(&e);
}

START_TEST(test_vectors_golden) {
        _cleanup_free_ char *path = tl_data_path("k8s-encryption-vectors.json");
        json_object *root = json_object_from_file(path);
        char *text = NULL;
        size_t text_size = 0;
        FILE *f = open_memstream(&text, &text_size);

        ck_assert_ptr_nonnull(root);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(json_object_array_length(root), 12);

        for (size_t i = 0; i < json_object_array_length(root); i++) {
                json_object *v = json_object_array_get_idx(root, i), *o;
                const char *name, *key_name, *key_b64, *aad = NULL, *iv_hex;
                _cleanup_free_ uint8_t *stored = NULL, *iv = NULL, *pt = NULL;
                _cleanup_free_ char *spec = NULL, *wh = NULL, *wb = NULL;
                size_t stored_n, iv_n, pt_n;
                const char *type;
                se_transformer *t;
                se_buf out = {};
                se_error e = SE_ERROR_NULL;

#define FIELD(k) (json_object_object_get_ex(v, k, &o) ? json_object_get_string(o) : NULL)
                name = FIELD("name");
                key_name = FIELD("key_name");
                key_b64 = FIELD("key_b64");
                if (json_object_object_get_ex(v, "aad", &o) && !json_object_is_type(o, json_type_null))
                        aad = json_object_get_string(o);
                iv_hex = FIELD("iv_hex") ?: FIELD("nonce_hex");
                stored = unhex(FIELD("stored_hex"), &stored_n);
                pt = unhex(FIELD("plaintext_hex"), &pt_n);
#undef FIELD
                ck_assert_ptr_nonnull(iv_hex);
                iv = unhex(iv_hex, &iv_n);
                type = startswith(name, "cbc-") ? "aescbc" : startswith(name, "gcm-") ? "aesgcm" : "secretbox";

                ck_assert_int_ge(asprintf(&spec, "secrets:%s %s=%s", type, key_name, key_b64), 0);
                t = tr(spec, "secrets");

                /* aescbc and secretbox ignore the datastore key; aesgcm authenticates it */
                vector_line(f, name, t, aad ?: DSKEY, stored, stored_n);

                ck_assert_int_eq(se_transformer_write_with_iv(t, aad ?: DSKEY, pt, pt_n, iv, iv_n, &out, &e), 0);
                ck_assert_uint_eq(out.len, stored_n);
                ck_assert_msg(memcmp(out.data, stored, stored_n) == 0, "%s: write differs", name);
                wh = hex(out.data, out.len);
                wb = b64(out.data, out.len);
                fprintf(f, "%s: write %s\n%s: base64 %s\n", name, wh, name, wb);

                se_buf_free(&out);
                se_transformer_free(t);
        }

        /* upstream TestGCMLegacyDataCompatibility body, under a stored prefix */
        {
                static const char body[] = "9f27c8fcea8a58c467d8e437dbf2d85955f9b4bd912f4ef967d788a0cb07797dac0a3f0a0845"
                                           "605ca85ac8562b4ae1";
                _cleanup_free_ uint8_t *raw = NULL;
                _cleanup_free_ char *kb = b64("snorlax_awesomes", 16), *spec = NULL;
                se_buf v = {};
                size_t n;
                se_transformer *t;

                raw = unhex(body, &n);
                ck_assert_int_ge(asprintf(&spec, "secrets:aesgcm key1=%s", kb), 0);
                t = tr(spec, "secrets");
                ck_assert_int_eq(se_buf_append_str(&v, "k8s:enc:aesgcm:v1:key1:"), 0);
                ck_assert_int_eq(se_buf_append(&v, raw, n), 0);
                vector_line(f, "upstream-gcm-legacy", t, "bamboo", v.data, v.len);
                se_buf_free(&v);
                se_transformer_free(t);
        }

        ck_assert_int_eq(fclose(f), 0);
        golden(text, "envelope/vectors.exp");
        free(text);
        json_object_put(root);
}
END_TEST

START_TEST(test_gcm_aad_is_bound) {
        /* D2b under another datastore key must not open; the right key opens */
        static const char stored_hex[] = "6b38733a656e633a61657367636d3a76313a6b6579313a000102030405060708090a0b3c43fbe48c"
                                         "2cb2c18d65dccef996081c6b4405c81a7081c6df1690bb540c9ba19cd6a7";
        se_transformer *t = tr("secrets:aesgcm key1=e0/+tts8FS254BZimFZWtUsOCOUDSkvzB72PyimMlkY=", "secrets");
        _cleanup_free_ uint8_t *s = NULL;
        se_buf out = {};
        size_t n;

        s = unhex(stored_hex, &n);
        ck_assert_int_eq(se_transformer_read(t, "/registry/secrets/default/other", s, n, &out, NULL, NULL), -ENOKEY);
        ck_assert_uint_eq(out.len, 0);
        ck_assert_int_eq(se_transformer_read(t, "/registry/secrets/default/mysecret", s, n, &out, NULL, NULL), 0);
        ck_assert_uint_eq(out.len, 19);
        ck_assert(memcmp(out.data, "pandas are the best", 19) == 0);
        se_buf_free(&out);
        se_transformer_free(t);
}
END_TEST

/* ---- kube's errors ----------------------------------------------------------------------------- */

#define K32A "e0/+tts8FS254BZimFZWtUsOCOUDSkvzB72PyimMlkY="
#define K16  "c2VjcmV0IGlzIHNlY3VyZQ=="
#define KSB  "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="

/* CBC without padding, to forge bodies whose padding is wrong in a chosen way. */
static void raw_cbc(const char *key_b64, const uint8_t *pt, size_t n, se_buf *out) {
        _cleanup_free_ uint8_t *key = NULL;
        uint8_t iv[16] = { 0 };
        size_t kn;
        int l = 0;
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

        ck_assert_int_eq(se_base64_decode(key_b64, strlen(key_b64), &key, &kn), 0);
        ck_assert_uint_eq(kn, 32);
        ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, EVP_aes_256_cbc(), key, iv, NULL), 1);
        EVP_CIPHER_CTX_set_padding(ctx, 0);
        ck_assert_int_eq(se_buf_append(out, iv, 16), 0);
        ck_assert_int_eq(se_buf_reserve(out, n), 0);
        ck_assert_int_eq(EVP_EncryptUpdate(ctx, out->data + out->len, &l, pt, (int) n), 1);
        ck_assert_int_eq(l, (int) n);
        out->len += n;
        EVP_CIPHER_CTX_free(ctx);
}

static void err_case(FILE *f, const char *name, const char *spec, const char *resource, const char *dskey,
                     const void *v, size_t n) {
        se_transformer *t = tr(spec, resource);
        se_buf out = {};
        se_read_info info = { .provider = SE_PROVIDER_NONE };
        se_error e = SE_ERROR_NULL;
        int r = se_transformer_read(t, dskey, v, n, &out, &info, &e);

        if (r == 0)
                fprintf(f, "%s: OK %s/%s stale=%s len=%zu\n", name, provider_name(info.provider),
                        info.key_name ?: "-", info.stale ? "yes" : "no", out.len);
        else {
                ck_assert_uint_eq(out.len, 0);
                ck_assert_int_eq(e.error, r);
                fprintf(f, "%s: %s %s\n", name, errname(r), se_error_message(&e));
        }
        se_buf_free(&out);
        se_error_done(&e);
        se_transformer_free(t);
}

/* prefix ‖ n body bytes of value fill */
static void body(se_buf *b, const char *prefix, size_t n, uint8_t fill) {
        se_buf_clear(b);
        ck_assert_int_eq(se_buf_append_str(b, prefix), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_int_eq(se_buf_append(b, &fill, 1), 0);
}

START_TEST(test_errors_golden) {
        static const char d1b[] = "6b38733a656e633a6165736362633a76313a6b6579313a000102030405060708090a0b0c0d0e0ffc6f40"
                                  "1fa077f9a994c2984def784079240096ad6c73ffc34bab6a8ece797ad5";
        static const char d2b[] = "6b38733a656e633a61657367636d3a76313a6b6579313a000102030405060708090a0b3c43fbe48c2cb2"
                                  "c18d65dccef996081c6b4405c81a7081c6df1690bb540c9ba19cd6a7";
        static const char d3b[] = "6b38733a656e633a736563726574626f783a76313a6b6579313a000102030405060708090a0b0c0d0e0f"
                                  "1011121314151617c4b58e66504340882fb6987dd29468c96594e2c560104eba21fa993027fe912f2bd914";
        const char *cbc = "secrets:aescbc key1=" K32A " key2=" K16;
        const char *gcm = "secrets:aesgcm key1=" K32A;
        const char *sb = "secrets:secretbox key1=" KSB;
        _cleanup_free_ uint8_t *v1 = NULL, *v2 = NULL, *v3 = NULL;
        size_t n1, n2, n3;
        char *text = NULL;
        size_t text_size = 0;
        FILE *f = open_memstream(&text, &text_size);
        uint8_t blk[32];
        se_buf b = {};

        ck_assert_ptr_nonnull(f);
        v1 = unhex(d1b, &n1);
        v2 = unhex(d2b, &n2);
        v3 = unhex(d3b, &n3);

        /* aescbc */
        err_case(f, "cbc-ok", cbc, "secrets", DSKEY, v1, n1);
        err_case(f, "cbc-truncated-by-1", cbc, "secrets", DSKEY, v1, n1 - 1);
        err_case(f, "cbc-truncated-by-16", cbc, "secrets", DSKEY, v1, n1 - 16);
        body(&b, "k8s:enc:aescbc:v1:key1:", 15, 7);
        err_case(f, "cbc-short-iv", cbc, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aescbc:v1:key1:", 0, 0);
        err_case(f, "cbc-empty-body", cbc, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aescbc:v1:key1:", 16, 1);
        err_case(f, "cbc-iv-only", cbc, "secrets", DSKEY, b.data, b.len);

        memset(blk, 'x', sizeof(blk));
        blk[15] = 0;
        body(&b, "k8s:enc:aescbc:v1:key1:", 0, 0);
        raw_cbc(K32A, blk, 16, &b);
        err_case(f, "cbc-pad-zero", cbc, "secrets", DSKEY, b.data, b.len);
        blk[15] = 17;
        body(&b, "k8s:enc:aescbc:v1:key1:", 0, 0);
        raw_cbc(K32A, blk, 16, &b);
        err_case(f, "cbc-pad-longer-than-data", cbc, "secrets", DSKEY, b.data, b.len);
        blk[15] = 2;
        blk[14] = 3;
        body(&b, "k8s:enc:aescbc:v1:key1:", 0, 0);
        raw_cbc(K32A, blk, 16, &b);
        err_case(f, "cbc-pad-mismatch", cbc, "secrets", DSKEY, b.data, b.len);
        /* Go accepts any pad value up to the data length, here 20 over two blocks */
        memset(blk, 20, sizeof(blk));
        blk[0] = 'a';
        blk[11] = 'z';
        body(&b, "k8s:enc:aescbc:v1:key1:", 0, 0);
        raw_cbc(K32A, blk, 32, &b);
        err_case(f, "cbc-pad-20-accepted", cbc, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aescbc:v1:nosuchkey:", 32, 1);
        err_case(f, "cbc-unknown-key", cbc, "secrets", DSKEY, b.data, b.len);

        /* aesgcm */
        err_case(f, "gcm-ok", gcm, "secrets", "/registry/secrets/default/mysecret", v2, n2);
        err_case(f, "gcm-wrong-aad", gcm, "secrets", "/registry/secrets/default/other", v2, n2);
        err_case(f, "gcm-no-dskey", gcm, "secrets", NULL, v2, n2);
        v2[n2 - 1] ^= 1;
        err_case(f, "gcm-bad-tag", gcm, "secrets", "/registry/secrets/default/mysecret", v2, n2);
        v2[n2 - 1] ^= 1;
        body(&b, "k8s:enc:aesgcm:v1:key1:", 11, 0);
        err_case(f, "gcm-short-nonce", gcm, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aesgcm:v1:key1:", 12, 0);
        err_case(f, "gcm-nonce-only", gcm, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aesgcm:v1:key1:", 27, 0);
        err_case(f, "gcm-tag-truncated", gcm, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aesgcm:v1:key2:", 40, 0);
        err_case(f, "gcm-unknown-key", gcm, "secrets", DSKEY, b.data, b.len);

        /* secretbox */
        err_case(f, "secretbox-ok", sb, "secrets", DSKEY, v3, n3);
        v3[n3 - 1] ^= 0x80;
        err_case(f, "secretbox-bad-mac", sb, "secrets", DSKEY, v3, n3);
        v3[n3 - 1] ^= 0x80;
        body(&b, "k8s:enc:secretbox:v1:key1:", 39, 0);
        err_case(f, "secretbox-short", sb, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:secretbox:v1:key1:", 40, 0);
        err_case(f, "secretbox-nonce-and-mac-only", sb, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:secretbox:v1:other:", 40, 0);
        err_case(f, "secretbox-unknown-key", sb, "secrets", DSKEY, b.data, b.len);

        /* prefix dispatch */
        err_case(f, "plaintext-without-identity", cbc, "secrets", DSKEY, "k8s\0abc", 7);
        err_case(f, "empty-without-identity", cbc, "secrets", DSKEY, "", 0);
        err_case(f, "empty-with-identity", "secrets:identity", "secrets", DSKEY, "", 0);
        err_case(f, "unknown-provider-with-identity", "secrets:aescbc key1=" K32A ";identity", "secrets", DSKEY,
                 "k8s:enc:foo:v1:x:abc", 20);
        err_case(f, "default-identity-encrypted", "configmaps:aescbc key1=" K32A, "secrets", DSKEY, v1, n1);
        err_case(f, "default-identity-plain", "configmaps:aescbc key1=" K32A, "secrets", DSKEY, "k8s\0x", 5);
        err_case(f, "identity-only-encrypted", "secrets:identity", "secrets", DSKEY, v1, n1);

        /* several candidates: kube's aggregate, deduplicated */
        body(&b, "k8s:enc:aesgcm:v1:a:b:", 10, 0);
        err_case(f, "aggregate-two-keys", "secrets:aesgcm a=" K32A " a:b=" K16, "secrets", DSKEY, b.data, b.len);
        body(&b, "k8s:enc:aesgcm:v1:a:b:", 5, 0);
        err_case(f, "aggregate-deduplicated", "secrets:aesgcm a=" K32A " a:b=" K16, "secrets", DSKEY, b.data,
                 b.len);
        body(&b, "k8s:enc:aescbc:v1:key1:", 8, 0);
        err_case(f, "aggregate-two-providers", "secrets:aescbc x=" K32A "|secrets:aescbc key1=" K16, "secrets",
                 DSKEY, b.data, b.len);
        /* duplicate key names are not validated: the first fails, the second is tried */
        err_case(f, "same-name-falls-through", "secrets:aesgcm key1=" K16 " key1=" K32A, "secrets",
                 "/registry/secrets/default/mysecret", v2, n2);
        err_case(f, "quoted-dskey", cbc, "secrets", "/registry/secrets/\"q\"\n", "k8s\0", 4);

        /* KMS */
        body(&b, "k8s:enc:kms:v2:vault:", 30, 0);
        err_case(f, "kms-v2-value", "secrets:kms v2 vault;aescbc key1=" K32A ";identity", "secrets", DSKEY,
                 b.data, b.len);
        body(&b, "k8s:enc:kms:v1:vault:", 30, 0);
        err_case(f, "kms-v1-value", "secrets:aescbc key1=" K32A ";kms v1 vault", "secrets", DSKEY, b.data, b.len);
        err_case(f, "kms-value-no-kms-provider", cbc, "secrets", DSKEY, b.data, b.len);
        err_case(f, "kms-config-aescbc-value", "secrets:kms v2 vault;aescbc key1=" K32A, "secrets", DSKEY, v1, n1);

        ck_assert_int_eq(fclose(f), 0);
        golden(text, "envelope/errors.exp");
        free(text);
        se_buf_free(&b);
}
END_TEST

/* ---- rotation: stale flags ---------------------------------------------------------------------- */

#define KA "Owq7A4JrJpSjrvH8kXkvl4JmOLzvZ6j9BcGRkR8OPQ4="
#define KB "+qcnfOFX3aRXM9PuY7lQXDWYIQ3GWUdBc3nYBo91SCA="

static void expect_read(const char *spec, const uint8_t *v, size_t n, se_provider_type prov, const char *key,
                        bool stale) {
        se_transformer *t = tr(spec, "secrets");
        se_buf out = {};
        se_read_info info = {};
        se_error e = SE_ERROR_NULL;

        ck_assert_msg(se_transformer_read(t, DSKEY, v, n, &out, &info, &e) == 0, "%s: %s", spec,
                      se_error_message(&e));
        ck_assert_int_eq(info.provider, prov);
        if (key)
                ck_assert_str_eq(info.key_name, key);
        else
                ck_assert_ptr_null(info.key_name);
        ck_assert_msg(info.stale == stale, "%s: stale=%d", spec, info.stale);
        se_buf_free(&out);
        se_transformer_free(t);
}

START_TEST(test_stale_rotation) {
        /* D1e (key A) and D1f (key B), "firstvalue" */
        _cleanup_free_ uint8_t *a = NULL, *b = NULL;
        size_t na, nb;

        a = unhex("6b38733a656e633a6165736362633a76313a413a000102030405060708090a0b0c0d0e0f062d67a41ab0946ccd88028d"
                  "11e1bf42",
                  &na);
        b = unhex("6b38733a656e633a6165736362633a76313a423a000102030405060708090a0b0c0d0e0fdcca6c097cab528745584ce3"
                  "3ced2905",
                  &nb);

        /* aes-cbc-multiple-keys.json and its reversed twin */
        expect_read("secrets:aescbc A=" KA " B=" KB, a, na, SE_PROVIDER_AESCBC, "A", false);
        expect_read("secrets:aescbc A=" KA " B=" KB, b, nb, SE_PROVIDER_AESCBC, "B", true);
        expect_read("secrets:aescbc B=" KB " A=" KA, a, na, SE_PROVIDER_AESCBC, "A", true);
        expect_read("secrets:aescbc B=" KB " A=" KA, b, nb, SE_PROVIDER_AESCBC, "B", false);
        /* k3s rotation stages: new key first, identity last */
        expect_read("secrets:aescbc B=" KB " A=" KA ";identity", a, na, SE_PROVIDER_AESCBC, "A", true);
        expect_read("secrets:aescbc A=" KA ";identity", (const uint8_t *) "k8s\0plain", 9, SE_PROVIDER_IDENTITY,
                    NULL, true);
        expect_read("secrets:identity;aescbc A=" KA, (const uint8_t *) "k8s\0plain", 9, SE_PROVIDER_IDENTITY, NULL,
                    false);
        /* identity first (decrypting away): encrypted data is still read, and stale */
        expect_read("secrets:identity;aescbc A=" KA, a, na, SE_PROVIDER_AESCBC, "A", true);
        /* second provider of the same type */
        expect_read("secrets:secretbox k=" KSB ";aescbc B=" KB " A=" KA, a, na, SE_PROVIDER_AESCBC, "A", true);
        /* a repeated resource concatenates providers; the earlier entry writes */
        expect_read("secrets:aescbc A=" KA "|secrets:aescbc B=" KB, b, nb, SE_PROVIDER_AESCBC, "B", true);
        expect_read("secrets:aescbc A=" KA "|secrets:aescbc B=" KB, a, na, SE_PROVIDER_AESCBC, "A", false);
}
END_TEST

/* ---- round trips -------------------------------------------------------------------------------- */

static void round_trip(const char *spec, se_provider_type type, size_t iv_size, const char *prefix) {
        se_transformer *t = tr(spec, "secrets");
        static const size_t lens[] = { 0, 1, 15, 16, 17, 31, 32, 33, 100, 1024, 4095, 65536 + 3 };
        se_buf enc = {}, enc2 = {}, dec = {};

        for (size_t i = 0; i < ELEMENTSOF(lens); i++) {
                size_t n = lens[i];
                _cleanup_free_ uint8_t *pt = malloc(n + 1);
                se_read_info info = {};
                se_error e = SE_ERROR_NULL;
                size_t body_len;

                ck_assert_ptr_nonnull(pt);
                ck_assert_int_eq(RAND_bytes(pt, (int) n + 1), 1);
                ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, n, &enc, &e), 0);
                ck_assert(startswith((const char *) enc.data, prefix));
                ck_assert(se_transformer_is_current(t, enc.data, enc.len));
                body_len = enc.len - strlen(prefix);
                if (type == SE_PROVIDER_AESCBC)
                        ck_assert_uint_eq(body_len, iv_size + (n / 16 + 1) * 16);
                else if (type != SE_PROVIDER_IDENTITY)
                        ck_assert_uint_eq(body_len, iv_size + n + 16);
                else
                        ck_assert_uint_eq(body_len, n);

                ck_assert_int_eq(se_transformer_read(t, DSKEY, enc.data, enc.len, &dec, &info, &e), 0);
                ck_assert_uint_eq(dec.len, n);
                ck_assert(n == 0 || memcmp(dec.data, pt, n) == 0);
                ck_assert_int_eq(info.provider, type);
                ck_assert(!info.stale);

                if (type != SE_PROVIDER_IDENTITY) {
                        /* a fresh IV/nonce each time */
                        ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, n, &enc2, &e), 0);
                        ck_assert_uint_eq(enc2.len, enc.len);
                        ck_assert(memcmp(enc.data, enc2.data, enc.len) != 0);
                        /* the write buffer is cleared first, and a read clears its output */
                        ck_assert_int_eq(se_transformer_read(t, DSKEY, enc2.data, enc2.len, &dec, NULL, &e), 0);
                        ck_assert_uint_eq(dec.len, n);
                }
                se_error_done(&e);
        }
        se_buf_free(&enc);
        se_buf_free(&enc2);
        se_buf_free(&dec);
        se_transformer_free(t);
}

START_TEST(test_round_trip) {
        static const size_t sizes[] = { 16, 24, 32 };

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint8_t key[32];
                _cleanup_free_ char *kb = NULL, *s1 = NULL, *s2 = NULL;

                ck_assert_int_eq(RAND_bytes(key, sizeof(key)), 1);
                kb = b64(key, sizes[i]);
                ck_assert_int_ge(asprintf(&s1, "secrets:aescbc k%zu=%s;identity", sizes[i], kb), 0);
                ck_assert_int_ge(asprintf(&s2, "secrets:aesgcm k%zu=%s;identity", sizes[i], kb), 0);
                round_trip(s1, SE_PROVIDER_AESCBC, 16, sizes[i] == 16 ? "k8s:enc:aescbc:v1:k16:" :
                                                       sizes[i] == 24 ? "k8s:enc:aescbc:v1:k24:" :
                                                                        "k8s:enc:aescbc:v1:k32:");
                round_trip(s2, SE_PROVIDER_AESGCM, 12, sizes[i] == 16 ? "k8s:enc:aesgcm:v1:k16:" :
                                                       sizes[i] == 24 ? "k8s:enc:aesgcm:v1:k24:" :
                                                                        "k8s:enc:aesgcm:v1:k32:");
        }
        round_trip("secrets:secretbox sb=" KSB, SE_PROVIDER_SECRETBOX, 24, "k8s:enc:secretbox:v1:sb:");
        round_trip("secrets:identity;aescbc k=" K32A, SE_PROVIDER_IDENTITY, 0, "");
}
END_TEST

/* Contexts are reused per key: interleave keys, directions and sizes and check every value. */
START_TEST(test_context_reuse) {
        se_transformer *w1 = tr("secrets:aescbc n=" K16 " o=" K32A, "secrets");
        se_transformer *w2 = tr("secrets:aescbc o=" K32A " n=" K16, "secrets");
        se_transformer *g = tr("secrets:aesgcm n=" K16 " o=" K32A, "secrets");
        se_buf a = {}, b = {}, d = {};

        for (unsigned i = 0; i < 300; i++) {
                uint8_t pt[200];
                size_t n = i % sizeof(pt);
                se_transformer *w = i % 2 ? w1 : w2;
                se_read_info info = {};

                memset(pt, (int) i, sizeof(pt));
                ck_assert_int_eq(se_transformer_write(w, DSKEY, pt, n, &a, NULL), 0);
                ck_assert_int_eq(se_transformer_write(g, DSKEY, pt, n, &b, NULL), 0);
                /* read with the other transformer: the key is second there, so stale */
                ck_assert_int_eq(se_transformer_read(i % 2 ? w2 : w1, DSKEY, a.data, a.len, &d, &info, NULL), 0);
                ck_assert_uint_eq(d.len, n);
                ck_assert(n == 0 || memcmp(d.data, pt, n) == 0);
                ck_assert(info.stale);
                ck_assert_int_eq(se_transformer_read(g, DSKEY, b.data, b.len, &d, &info, NULL), 0);
                ck_assert_uint_eq(d.len, n);
                ck_assert(n == 0 || memcmp(d.data, pt, n) == 0);
                /* a failed open in between must not poison the context */
                b.data[b.len - 1] ^= 1;
                ck_assert_int_eq(se_transformer_read(g, DSKEY, b.data, b.len, &d, NULL, NULL), -ENOKEY);
        }
        se_buf_free(&a);
        se_buf_free(&b);
        se_buf_free(&d);
        se_transformer_free(w1);
        se_transformer_free(w2);
        se_transformer_free(g);
}
END_TEST

/* IVs come from a per-transformer pool: a forked child must not reuse the parent's next IV. */
START_TEST(test_iv_pool_fork) {
        se_transformer *t = tr("secrets:aesgcm k=" K32A, "secrets");
        const size_t off = strlen("k8s:enc:aesgcm:v1:k:");
        uint8_t child_iv[12] = { 0 };
        se_buf v = {};
        int fds[2], status;
        pid_t pid;

        ck_assert_int_eq(se_transformer_write(t, DSKEY, (const uint8_t *) "x", 1, &v, NULL), 0);
        ck_assert_int_eq(pipe(fds), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                se_buf c = {};
                int ok;

                if (se_transformer_write(t, DSKEY, (const uint8_t *) "x", 1, &c, NULL) < 0)
                        _exit(1);
                ok = write(fds[1], c.data + off, 12) == 12;
                /* the child frees what it holds, so a leak checker (valgrind) has nothing to report */
                se_buf_free(&c);
                se_buf_free(&v);
                se_transformer_free(t);
                _exit(ok ? 0 : 1);
        }
        close(fds[1]);
        ck_assert_int_eq(read(fds[0], child_iv, sizeof(child_iv)), 12);
        close(fds[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ck_assert_int_eq(se_transformer_write(t, DSKEY, (const uint8_t *) "x", 1, &v, NULL), 0);
        ck_assert(memcmp(v.data + off, child_iv, 12) != 0);
        se_buf_free(&v);
        se_transformer_free(t);
}
END_TEST

/* ---- independent implementations ---------------------------------------------------------------- */

START_TEST(test_openssl_cli_aescbc) {
        static const size_t sizes[] = { 16, 24, 32 };
        char *dir = tl_tmpdir();

        if (tl_run("openssl version >/dev/null 2>&1", NULL) != 0) {
                tl_tmpdir_remove(dir);
                ck_abort_msg("openssl CLI missing");
        }

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint8_t key[32], pt[1000];
                size_t pn = 333 + i * 100;
                _cleanup_free_ char *kb = NULL, *kh = NULL, *spec = NULL, *ivh = NULL, *cmd = NULL;
                _cleanup_free_ char *ctf = tl_path(dir, "ct"), *ptf = tl_path(dir, "pt"), *outf = tl_path(dir, "out");
                _cleanup_free_ char *got = NULL;
                const char *prefix = "k8s:enc:aescbc:v1:k:";
                se_transformer *t;
                se_buf enc = {}, dec = {};
                size_t gn;

                ck_assert_int_eq(RAND_bytes(key, sizeof(key)), 1);
                ck_assert_int_eq(RAND_bytes(pt, sizeof(pt)), 1);
                kb = b64(key, sizes[i]);
                kh = hex(key, sizes[i]);
                ck_assert_int_ge(asprintf(&spec, "secrets:aescbc k=%s", kb), 0);
                t = tr(spec, "secrets");

                /* ours → openssl enc -d */
                ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, pn, &enc, NULL), 0);
                ivh = hex(enc.data + strlen(prefix), 16);
                tl_write_file(ctf, enc.data + strlen(prefix) + 16, enc.len - strlen(prefix) - 16);
                ck_assert_int_ge(asprintf(&cmd, "openssl enc -d -aes-%zu-cbc -K %s -iv %s -in '%s' -out '%s'",
                                          sizes[i] * 8, kh, ivh, ctf, outf),
                                 0);
                ck_assert_int_eq(tl_run(cmd, NULL), 0);
                got = tl_read_file(outf, &gn);
                ck_assert_uint_eq(gn, pn);
                ck_assert(memcmp(got, pt, pn) == 0);

                /* openssl enc -e → ours */
                free(cmd);
                tl_write_file(ptf, pt, pn);
                ck_assert_int_ge(asprintf(&cmd, "openssl enc -e -aes-%zu-cbc -K %s -iv %s -in '%s' -out '%s'",
                                          sizes[i] * 8, kh, ivh, ptf, ctf),
                                 0);
                ck_assert_int_eq(tl_run(cmd, NULL), 0);
                free(got);
                got = tl_read_file(ctf, &gn);
                se_buf_clear(&enc);
                ck_assert_int_eq(se_buf_append_str(&enc, prefix), 0);
                ck_assert_int_eq(se_buf_append(&enc, key, 0), 0);
                {
                        size_t ivn;
                        _cleanup_free_ uint8_t *iv = unhex(ivh, &ivn);

                        ck_assert_int_eq(se_buf_append(&enc, iv, ivn), 0);
                }
                ck_assert_int_eq(se_buf_append(&enc, got, gn), 0);
                ck_assert_int_eq(se_transformer_read(t, DSKEY, enc.data, enc.len, &dec, NULL, NULL), 0);
                ck_assert_uint_eq(dec.len, pn);
                ck_assert(memcmp(dec.data, pt, pn) == 0);

                se_buf_free(&enc);
                se_buf_free(&dec);
                se_transformer_free(t);
        }
        tl_tmpdir_remove(dir);
}
END_TEST

/* openssl enc has no AEAD mode; python3's cryptography (OpenSSL-backed, but a separate GCM
 * driver and framing) is the independent path when present. */
START_TEST(test_python_aesgcm) {
        static const char script[] =
                "import sys,binascii\n"
                "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n"
                "mode,key,aad,path=sys.argv[1],binascii.unhexlify(sys.argv[2]),sys.argv[3].encode(),sys.argv[4]\n"
                "data=open(path,'rb').read()\n"
                "if mode=='open':\n"
                "    sys.stdout.write(binascii.hexlify(AESGCM(key).decrypt(data[:12],data[12:],aad)).decode())\n"
                "else:\n"
                "    import os\n"
                "    n=os.urandom(12)\n"
                "    sys.stdout.write(binascii.hexlify(n+AESGCM(key).encrypt(n,data,aad)).decode())\n";
        static const size_t sizes[] = { 16, 24, 32 };
        char *dir;
        _cleanup_free_ char *py = NULL;

        if (tl_run("python3 -c 'import cryptography.hazmat.primitives.ciphers.aead' 2>/dev/null", NULL) != 0) {
                fprintf(stderr, "SKIP: python3 cryptography not available; aesgcm checked against vectors only\n");
                return;
        }
        dir = tl_tmpdir();
        py = tl_path(dir, "gcm.py");
        tl_write_str(py, script);

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint8_t key[32], pt[777];
                _cleanup_free_ char *kb = NULL, *kh = NULL, *spec = NULL, *cmd = NULL, *out = NULL, *pth = NULL;
                _cleanup_free_ char *f = tl_path(dir, "data");
                const char *prefix = "k8s:enc:aesgcm:v1:g:";
                _cleanup_free_ uint8_t *raw = NULL;
                se_transformer *t;
                se_buf enc = {}, dec = {};
                size_t rn;

                ck_assert_int_eq(RAND_bytes(key, sizeof(key)), 1);
                ck_assert_int_eq(RAND_bytes(pt, sizeof(pt)), 1);
                kb = b64(key, sizes[i]);
                kh = hex(key, sizes[i]);
                pth = hex(pt, sizeof(pt));
                ck_assert_int_ge(asprintf(&spec, "secrets:aesgcm g=%s", kb), 0);
                t = tr(spec, "secrets");

                ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, sizeof(pt), &enc, NULL), 0);
                tl_write_file(f, enc.data + strlen(prefix), enc.len - strlen(prefix));
                ck_assert_int_ge(asprintf(&cmd, "python3 '%s' open %s '%s' '%s'", py, kh, DSKEY, f), 0);
                ck_assert_int_eq(tl_run(cmd, &out), 0);
                ck_assert_str_eq(out, pth);

                free(cmd);
                free(out);
                out = NULL;
                tl_write_file(f, pt, sizeof(pt));
                ck_assert_int_ge(asprintf(&cmd, "python3 '%s' seal %s '%s' '%s'", py, kh, DSKEY, f), 0);
                ck_assert_int_eq(tl_run(cmd, &out), 0);
                raw = unhex(out, &rn);
                se_buf_clear(&enc);
                ck_assert_int_eq(se_buf_append_str(&enc, prefix), 0);
                ck_assert_int_eq(se_buf_append(&enc, raw, rn), 0);
                ck_assert_int_eq(se_transformer_read(t, DSKEY, enc.data, enc.len, &dec, NULL, NULL), 0);
                ck_assert_uint_eq(dec.len, sizeof(pt));
                ck_assert(memcmp(dec.data, pt, sizeof(pt)) == 0);
                ck_assert_int_eq(se_transformer_read(t, "/registry/secrets/x/y", enc.data, enc.len, &dec, NULL,
                                                     NULL),
                                 -ENOKEY);

                se_buf_free(&enc);
                se_buf_free(&dec);
                se_transformer_free(t);
        }
        tl_tmpdir_remove(dir);
}
END_TEST

/* ---- malformed input ---------------------------------------------------------------------------- */

START_TEST(test_malformed_never_crash) {
        const char *spec = "secrets:aescbc key1=" K32A " key2=" K16 ";aesgcm key1=" K32A ";secretbox key1=" KSB
                           ";kms v2 vault;identity";
        se_transformer *t = tr(spec, "secrets");
        static const char *const pt = "0123456789abcdef0123456789abcdef-tail";
        const char *writers[] = {
                "secrets:aescbc key1=" K32A,
                "secrets:aescbc key2=" K16,
                "secrets:aesgcm key1=" K32A,
                "secrets:secretbox key1=" KSB,
        };
        se_buf v = {}, out = {};

        for (size_t w = 0; w < ELEMENTSOF(writers); w++) {
                se_transformer *wt = tr(writers[w], "secrets");
                bool authenticated = !strstr(writers[w], "aescbc");

                ck_assert_int_eq(se_transformer_write(wt, DSKEY, (const uint8_t *) pt, strlen(pt), &v, NULL), 0);
                /* every truncation, including the empty value */
                for (size_t n = 0; n < v.len; n++) {
                        int r = se_transformer_read(t, DSKEY, v.data, n, &out, NULL, NULL);

                        ck_assert_msg(r == -ENOKEY || r == -EBADMSG || (r == 0 && n < 8),
                                      "%s truncated to %zu: %d", writers[w], n, r);
                }
                /* every single-bit flip in the body */
                for (size_t i = 0; i < v.len * 8; i++) {
                        int r;

                        v.data[i / 8] ^= (uint8_t) (1u << (i % 8));
                        r = se_transformer_read(t, DSKEY, v.data, v.len, &out, NULL, NULL);
                        ck_assert_msg(r == 0 || r == -ENOKEY || r == -EBADMSG || r == -EOPNOTSUPP, "%d", r);
                        if (authenticated && r == 0)
                                /* only a flip in the prefix can still read (as identity plaintext) */
                                ck_assert_uint_lt(i / 8, 8);
                        v.data[i / 8] ^= (uint8_t) (1u << (i % 8));
                }
                ck_assert_int_eq(se_transformer_read(t, DSKEY, v.data, v.len, &out, NULL, NULL), 0);
                ck_assert_uint_eq(out.len, strlen(pt));
                se_transformer_free(wt);
        }
        ck_assert_int_eq(se_transformer_read(t, DSKEY, NULL, 0, &out, NULL, NULL), 0);
        se_buf_free(&v);
        se_buf_free(&out);
        se_transformer_free(t);
}
END_TEST

START_TEST(test_output_cap) {
        se_transformer *t = tr("secrets:aescbc key1=" K32A, "secrets");
        uint8_t pt[4096] = { 0 };
        se_buf out = { .max = 1000 }, dec = { .max = 100 };
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, sizeof(pt), &out, &e), -E2BIG);
        ck_assert_uint_eq(out.len, 0);
        out.max = 0;
        ck_assert_int_eq(se_transformer_write(t, DSKEY, pt, sizeof(pt), &out, &e), 0);
        ck_assert_int_eq(se_transformer_read(t, DSKEY, out.data, out.len, &dec, NULL, &e), -E2BIG);
        se_error_done(&e);
        se_buf_free(&out);
        se_buf_free(&dec);
        se_transformer_free(t);
}
END_TEST

/* ---- build, write provider, is_current ---------------------------------------------------------- */

static int new_err(const char *spec, const char *resource, char **ret_msg) {
        se_config *c = cfg(spec);
        se_transformer *t = NULL;
        se_error e = SE_ERROR_NULL;
        int r = se_transformer_new(c, resource, &t, &e);

        *ret_msg = e.message ? strdup(e.message) : NULL;
        se_error_done(&e);
        se_transformer_free(t);
        se_config_free(c);
        return r;
}

START_TEST(test_build_errors) {
        _cleanup_free_ char *m1 = NULL, *m2 = NULL, *m3 = NULL, *m4 = NULL, *m5 = NULL, *m6 = NULL;

        /* upstream TestWildcardMasking cases */
        ck_assert_int_eq(new_err("configmaps,*.:identity|*.*,secrets:identity", "secrets", &m1), -EBADMSG);
        ck_assert_str_eq(m1, "resource \"secrets\" is masked by earlier rule \"*.\"");
        ck_assert_int_eq(new_err("*.:identity|*.:identity", "secrets", &m2), -EBADMSG);
        ck_assert_str_eq(m2, "resource \"*.\" is masked by earlier rule \"*.\"");
        ck_assert_int_eq(new_err("*.*:identity|*.:identity", "secrets", &m3), -EBADMSG);
        ck_assert_str_eq(m3, "resource \"*.\" is masked by earlier rule \"*.*\"");
        ck_assert_int_eq(new_err("*.apps:identity|deployments.apps:identity", "secrets", &m4), -EBADMSG);
        ck_assert_str_eq(m4, "resource \"deployments.apps\" is masked by earlier rule \"*.apps\"");
        /* keys that validation would have refused */
        ck_assert_int_eq(new_err("secrets:secretbox k=" K16, "secrets", &m5), -EBADMSG);
        ck_assert_str_eq(m5, "expected key size 32 for secretbox provider, got 16");
        ck_assert_int_eq(new_err("secrets:aescbc k=c2VjcmV0IGlzIHNlY3VyZSE=", "secrets", &m6), -EBADMSG);
        ck_assert_str_eq(m6, "error while creating cipher for named key k: crypto/aes: invalid key size 17");
}
END_TEST

START_TEST(test_override_lookup) {
        /* exact resource, then "*." (core group), then "*.*", else identity */
        static const struct {
                const char *spec, *resource, *want_prefix;
        } cases[] = {
                { "configmaps:identity|secrets:aesgcm s=" K32A "|*.*:aescbc a=" K32A, "secrets", "k8s:enc:aesgcm:v1:s:" },
                { "secrets.:aesgcm s=" K32A, "secrets", "k8s:enc:aesgcm:v1:s:" },
                { "configmaps:identity|*.:secretbox c=" KSB, "secrets", "k8s:enc:secretbox:v1:c:" },
                { "secrets:aescbc s=" K32A "|*.*:aesgcm a=" K32A, "configmaps", "k8s:enc:aesgcm:v1:a:" },
                { "configmaps:aescbc s=" K32A, "secrets", "" },
                { "deployments.apps:aescbc d=" K32A "|*.*:aesgcm a=" K32A, "deployments.apps",
                  "k8s:enc:aescbc:v1:d:" },
                { "*.apps:aescbc d=" K32A, "deployments.apps", "k8s:enc:aescbc:v1:d:" },
                { "*.apps:aescbc d=" K32A, "deployments", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                se_transformer *t = tr(cases[i].spec, cases[i].resource);
                se_buf out = {};

                ck_assert_int_eq(se_transformer_write(t, DSKEY, (const uint8_t *) "k8s\0x", 5, &out, NULL), 0);
                if (isempty(cases[i].want_prefix))
                        ck_assert(out.len == 5 && memcmp(out.data, "k8s\0x", 5) == 0);
                else
                        ck_assert_msg(startswith((const char *) out.data, cases[i].want_prefix), "case %zu", i);
                se_buf_free(&out);
                se_transformer_free(t);
        }
}
END_TEST

START_TEST(test_kms_write) {
        se_transformer *t = tr("secrets:kms v2 vault;aescbc a=" K32A, "secrets");
        se_buf out = {};
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_transformer_write(t, DSKEY, (const uint8_t *) "x", 1, &out, &e), -EOPNOTSUPP);
        ck_assert_str_eq(e.message, "the write provider is KMS provider \"vault\": KMS values cannot be encrypted "
                                    "by secrets-encrypt");
        ck_assert(se_transformer_is_current(t, (const uint8_t *) "k8s:enc:kms:v2:vault:xyz", 24));
        ck_assert(!se_transformer_is_current(t, (const uint8_t *) "k8s:enc:kms:v2:other:xyz", 24));
        se_error_done(&e);
        se_buf_free(&out);
        se_transformer_free(t);
}
END_TEST

START_TEST(test_is_current) {
        se_transformer *t = tr("secrets:aescbc new=" K32A " old=" K16 ";identity", "secrets");
        se_transformer *id = tr("secrets:identity;aescbc new=" K32A, "secrets");
        se_transformer *none = tr("configmaps:identity", "secrets");
#define CUR(tt, s) se_transformer_is_current(tt, (const uint8_t *) (s), strlen(s))

        ck_assert(CUR(t, "k8s:enc:aescbc:v1:new:xxxx"));
        ck_assert(!CUR(t, "k8s:enc:aescbc:v1:old:xxxx"));
        ck_assert(!CUR(t, "k8s:enc:aescbc:v1:newer:xxxx"));
        ck_assert(!CUR(t, "k8s:enc:aescbc:v1:new"));
        ck_assert(!CUR(t, "k8s:enc:aesgcm:v1:new:xxxx"));
        ck_assert(!CUR(t, "k8s\0"));
        ck_assert(!CUR(t, ""));
        ck_assert(CUR(id, "k8s\0plain"));
        ck_assert(CUR(id, ""));
        ck_assert(!CUR(id, "k8s:enc:aescbc:v1:new:xxxx"));
        ck_assert(CUR(none, "anything"));
        ck_assert(!CUR(none, "k8s:enc:secretbox:v1:k:xxxx"));
#undef CUR
        se_transformer_free(t);
        se_transformer_free(id);
        se_transformer_free(none);
}
END_TEST

START_TEST(test_write_with_iv_checks) {
        se_transformer *t = tr("secrets:aesgcm k=" K32A, "secrets");
        uint8_t iv[16] = { 0 };
        se_buf out = {};

        ck_assert_int_eq(se_transformer_write_with_iv(t, DSKEY, (const uint8_t *) "x", 1, iv, 16, &out, NULL), -EINVAL);
        ck_assert_int_eq(se_transformer_write_with_iv(t, DSKEY, (const uint8_t *) "x", 1, NULL, 0, &out, NULL), -EINVAL);
        ck_assert_int_eq(se_transformer_write_with_iv(t, DSKEY, (const uint8_t *) "x", 1, iv, 12, &out, NULL), 0);
        ck_assert_uint_eq(out.len, strlen("k8s:enc:aesgcm:v1:k:") + 12 + 1 + 16);
        se_buf_free(&out);
        se_transformer_free(t);
}
END_TEST

/* ---- key generation ----------------------------------------------------------------------------- */

START_TEST(test_key_secret_generate) {
        _cleanup_(erase_and_freep) char *a = NULL, *b = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        size_t n;

        ck_assert_int_eq(se_key_secret_generate(&a), 0);
        ck_assert_int_eq(se_key_secret_generate(&b), 0);
        ck_assert_uint_eq(strlen(a), 44);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(se_base64_decode(a, strlen(a), &raw, &n), 0);
        ck_assert_uint_eq(n, 32);
}
END_TEST

static void name_case(const char *tz, se_provider_type type, bool first, time_t now, const char *want) {
        _cleanup_free_ char *name = NULL;

        ck_assert_int_eq(setenv("TZ", tz, 1), 0);
        tzset();
        ck_assert_int_eq(se_key_name_new(type, first, now, &name), 0);
        ck_assert_str_eq(name, want);
}

START_TEST(test_key_names) {
        _cleanup_free_ char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
        char *x = NULL;

        /* 1639176878 = 2021-12-10T22:54:38Z (k3s's documented example) */
        name_case("UTC0", SE_PROVIDER_AESCBC, true, 1639176878, "aescbckey");
        name_case("UTC0", SE_PROVIDER_SECRETBOX, true, 1639176878, "secretboxkey");
        name_case("UTC0", SE_PROVIDER_AESCBC, false, 1639176878, "aescbckey-2021-12-10T22:54:38Z");
        name_case("CET-1", SE_PROVIDER_AESCBC, false, 1639176878, "aescbckey-2021-12-10T23:54:38+01:00");
        name_case("<-0330>3:30", SE_PROVIDER_SECRETBOX, false, 1639176878, "secretboxkey-2021-12-10T19:24:38-03:30");
        /* a zero offset prints Z even outside UTC, as Go does */
        name_case("GMT0", SE_PROVIDER_AESCBC, false, 0, "aescbckey-1970-01-01T00:00:00Z");
        ck_assert_int_eq(se_key_name_new(SE_PROVIDER_AESGCM, true, 0, &x), -EOPNOTSUPP);
        ck_assert_ptr_null(x);

        if (old)
                setenv("TZ", old, 1);
        else
                unsetenv("TZ");
        tzset();
}
END_TEST

static Suite *envelope_suite(void) {
        Suite *s = suite_create("envelope");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_vectors_golden);
        tcase_add_test(tc, test_gcm_aad_is_bound);
        tcase_add_test(tc, test_errors_golden);
        tcase_add_test(tc, test_stale_rotation);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_context_reuse);
        tcase_add_test(tc, test_iv_pool_fork);
        tcase_add_test(tc, test_openssl_cli_aescbc);
        tcase_add_test(tc, test_python_aesgcm);
        tcase_add_test(tc, test_malformed_never_crash);
        tcase_add_test(tc, test_output_cap);
        tcase_add_test(tc, test_build_errors);
        tcase_add_test(tc, test_override_lookup);
        tcase_add_test(tc, test_kms_write);
        tcase_add_test(tc, test_is_current);
        tcase_add_test(tc, test_write_with_iv_checks);
        tcase_add_test(tc, test_key_secret_generate);
        tcase_add_test(tc, test_key_names);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(envelope_suite)
