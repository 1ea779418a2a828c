/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers shared by test-reencrypt.c, test-reencrypt-crash.c and bench-reencrypt.c: configs built
 * in memory (no parser needed), realistic secret plaintexts, seeding a kine database, checks. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib-kine.h"
#include "macro.h"
#include "se-reencrypt.h"
#include "testlib.h"

#define RT_PREFIX "/registry/secrets/"

/* Deterministic 32-byte key per name, as base64. */
static inline char *rt_secret(const char *name) {
        uint8_t k[32];
        char *b64 = NULL;
        size_t n = strlen(name);

        for (size_t i = 0; i < sizeof(k); i++)
                k[i] = (uint8_t) (name[i % n] * 31 + i * 7);
        if (se_base64_encode(k, sizeof(k), &b64) < 0)
                abort();
        return b64;
}

static inline char *rt_strdup(const char *s) {
        char *d = strdup(s);
        if (!d)
                abort();
        return d;
}

static inline void *rt_calloc(size_t n, size_t size) {
        void *p = calloc(n ? n : 1, size);
        if (!p)
                abort();
        return p;
}

/* spec: providers separated by ';', each "identity" or "<type>:<key>,<key>…", e.g.
 * "aescbc:b,a;identity". One resource entry for "secrets". */
static inline se_config *rt_config(const char *spec) {
        se_config *c = se_config_new();
        se_resource_config *rc;
        char *copy = rt_strdup(spec), *save = NULL;
        size_t np = 1;

        for (const char *s = spec; *s; s++)
                np += *s == ';';
        c->kind = rt_strdup("EncryptionConfiguration");
        c->api_version = rt_strdup("apiserver.config.k8s.io/v1");
        c->resources = rc = rt_calloc(1, sizeof(se_resource_config));
        c->n_resources = 1;
        rc->resources = rt_calloc(1, sizeof(char *));
        rc->resources[0] = rt_strdup("secrets");
        rc->n_resources = 1;
        rc->providers = rt_calloc(np, sizeof(se_provider));

        for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
                se_provider *p = &rc->providers[rc->n_providers++];
                char *colon = strchr(tok, ':'), *ksave = NULL;
                se_key_list *l;

                if (streq(tok, "identity")) {
                        p->identity = true;
                        continue;
                }
                if (!colon)
                        abort();
                *colon = 0;
                if (startswith(tok, "kms")) {
                        p->kms = rt_calloc(1, sizeof(se_kms));
                        p->kms->api_version = rt_strdup("v2");
                        p->kms->name = rt_strdup(colon + 1);
                        p->kms->endpoint = rt_strdup("unix:///run/kms.sock");
                        p->kms->timeout_ns = 3000000000LL;
                        continue;
                }
                l = rt_calloc(1, sizeof(se_key_list));
                l->keys = rt_calloc(16, sizeof(se_key));
                for (char *k = strtok_r(colon + 1, ",", &ksave); k; k = strtok_r(NULL, ",", &ksave)) {
                        l->keys[l->n_keys].name = rt_strdup(k);
                        l->keys[l->n_keys].secret = rt_secret(k);
                        l->n_keys++;
                }
                if (streq(tok, "aescbc"))
                        p->aescbc = l;
                else if (streq(tok, "aesgcm"))
                        p->aesgcm = l;
                else if (streq(tok, "secretbox"))
                        p->secretbox = l;
                else
                        abort();
        }
        free(copy);
        return c;
}

static inline se_transformer *rt_transformer(const char *spec) {
        se_config *c = rt_config(spec);
        se_transformer *t = NULL;
        se_error e = SE_ERROR_NULL;
        int r = se_transformer_new(c, "secrets", &t, &e);

        if (r < 0) {
                fprintf(stderr, "se_transformer_new(%s): %s\n", spec, se_error_message(&e));
                abort();
        }
        se_config_free(c);
        return t;
}

static inline char *rt_key(size_t i) {
        char *k;

        if (asprintf(&k, RT_PREFIX "ns-%zu/secret-%07zu", i / 1000, i) < 0)
                abort();
        return k;
}

/* A Secret as kube-apiserver stores it (k8s\0 + runtime.Unknown), padded to about size bytes with
 * pseudo-random data bytes; gen distinguishes versions of the same secret. */
static inline size_t rt_plaintext(size_t i, unsigned gen, size_t size, uint8_t *buf, size_t bufsize) {
        static const uint8_t head[] = { 'k', '8', 's', 0, 0x0a, 0x0c, 0x0a, 0x02, 'v', '1', 0x12, 0x06,
                                        'S', 'e', 'c', 'r', 'e', 't', 0x12 };
        uint64_t x = (uint64_t) i * 0x9E3779B97F4A7C15ull + gen * 0xBF58476D1CE4E5B9ull + 1;
        size_t n = 0, body;
        char name[64];
        int m = snprintf(name, sizeof(name), "secret-%07zu-gen%u", i, gen);

        if (bufsize < size || size < sizeof(head) + (size_t) m + 16)
                abort();
        memcpy(buf, head, sizeof(head));
        n = sizeof(head);
        body = size - n - 6;
        buf[n++] = 0x80 | (body & 0x7f);
        buf[n++] = (uint8_t) (body >> 7);
        memcpy(buf + n, name, (size_t) m);
        n += (size_t) m;
        while (n < size - 4) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[n++] = (uint8_t) x;
        }
        memcpy(buf + n, "\x1a\x00\x22\x00", 4);
        return size;
}

#define RT_PLAIN_SIZE 200

/* Seeds keys [from, to) with generation gen under the write key of spec ("identity" = plaintext). */
static inline void rt_seed(sqlite3 *db, const char *spec, size_t from, size_t to, unsigned gen, size_t size) {
        se_transformer *t = rt_transformer(spec);
        uint8_t *plain = rt_calloc(1, size);
        se_buf out = {};

        tk_exec(db, "BEGIN IMMEDIATE");
        for (size_t i = from; i < to; i++) {
                _cleanup_free_ char *key = rt_key(i);
                size_t n = rt_plaintext(i, gen, size, plain, size);
                se_error e = SE_ERROR_NULL;

                if (se_transformer_write(t, key, plain, n, &out, &e) < 0) {
                        fprintf(stderr, "write %s: %s\n", key, se_error_message(&e));
                        abort();
                }
                tk_put(db, TK_V016, key, out.data, out.len);
        }
        tk_exec(db, "COMMIT");
        se_buf_free(&out);
        free(plain);
        se_transformer_free(t);
}

static inline se_store *rt_store_open_endpoint(const char *ep) {
        se_store *s = NULL;
        se_error e = SE_ERROR_NULL;

        if (se_store_open(&(se_store_options){ .endpoint = ep }, &s, &e) < 0) {
                fprintf(stderr, "se_store_open(%s): %s\n", ep, se_error_message(&e));
                abort();
        }
        return s;
}

static inline char *rt_sqlite_endpoint(const char *db_path) {
        char *ep;

        if (asprintf(&ep, "sqlite://%s", db_path) < 0)
                abort();
        return ep;
}

static inline se_store *rt_store_open(const char *db_path) {
        _cleanup_free_ char *ep = rt_sqlite_endpoint(db_path);
        return rt_store_open_endpoint(ep);
}

/* Seeds keys [from, to) through the store API (creates), for etcd. */
static inline void rt_seed_store(se_store *s, const char *spec, size_t from, size_t to, unsigned gen, size_t size) {
        se_transformer *t = rt_transformer(spec);
        uint8_t *plain = rt_calloc(1, size);
        se_kv_update u[100];
        char *keys[100] = {};
        se_buf vals[100] = {};

        for (size_t i = from; i < to; i += 100) {
                size_t k = MIN((size_t) 100, to - i);
                se_error e = SE_ERROR_NULL;

                for (size_t j = 0; j < k; j++) {
                        free(keys[j]);
                        keys[j] = rt_key(i + j);
                        rt_plaintext(i + j, gen, size, plain, size);
                        if (se_transformer_write(t, keys[j], plain, size, &vals[j], NULL) < 0)
                                abort();
                        u[j] = (se_kv_update){ .key = keys[j], .value = vals[j].data, .value_size = vals[j].len };
                }
                if (se_store_update(s, u, k, &e) != (int) k) {
                        fprintf(stderr, "seed: %s\n", se_error_message(&e));
                        abort();
                }
        }
        for (size_t j = 0; j < 100; j++) {
                free(keys[j]);
                se_buf_free(&vals[j]);
        }
        free(plain);
        se_transformer_free(t);
}

/* Every key [0, n) holds, readable with read_spec, the plaintext of generation gens[i] (0 if
 * gens is NULL), under the write key expect_key (NULL = do not check). */
static inline void rt_check_store(se_store *s, const char *read_spec, size_t n, const unsigned *gens, size_t size,
                                  const char *expect_key) {
        se_transformer *t = rt_transformer(read_spec);
        uint8_t *plain = rt_calloc(1, size);
        se_buf out = {};

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *key = rt_key(i);
                se_kv kv = {};
                se_read_info info = {};
                se_error e = SE_ERROR_NULL;
                size_t m = rt_plaintext(i, gens ? gens[i] : 0, size, plain, size);
                int r;

                r = se_store_get(s, key, &kv, &e);
                ck_assert_msg(r >= 0, "get %s: %s", key, se_error_message(&e));
                r = se_transformer_read(t, key, kv.value, kv.value_size, &out, &info, &e);
                ck_assert_msg(r >= 0, "read %s: %s", key, se_error_message(&e));
                ck_assert_msg(out.len == m && memcmp(out.data, plain, m) == 0, "%s: wrong plaintext", key);
                if (expect_key) {
                        ck_assert_msg(info.key_name && streq(info.key_name, expect_key) && !info.stale,
                                      "%s: under %s, expected %s", key, info.key_name ?: "identity", expect_key);
                        ck_assert(se_transformer_is_current(t, kv.value, kv.value_size));
                }
                se_kv_done(&kv);
                se_error_done(&e);
        }
        se_buf_free(&out);
        free(plain);
        se_transformer_free(t);
}
