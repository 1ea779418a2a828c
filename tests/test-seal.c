/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The token-sealed config record: scrypt + AES-256-GCM, without a datastore. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "macro.h"
#include "seal-internal.h"
#include "se-util.h"
#include "testlib.h"

#define TOKEN "K10deadbeef::server:correct-horse-battery-staple"

static void show(const char *what, const se_error *e) {
        if (getenv("SE_TEST_VERBOSE"))
                fprintf(stderr, "%s: %s\n", what, se_error_message(e));
}

/* A k3s-style config with a fresh random key; *ret_secret is the base64 secret, *ret_raw the key. */
static char *make_config(char **ret_secret, uint8_t ret_raw[static 32]) {
        char *secret = NULL, *cfg = NULL;

        ck_assert_int_eq(RAND_bytes(ret_raw, 32), 1);
        ck_assert_int_eq(se_base64_encode(ret_raw, 32, &secret), 0);
        ck_assert_int_ge(
                asprintf(&cfg,
                         "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                         "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":"
                         "[{\"name\":\"aescbckey\",\"secret\":\"%s\"}]}},{\"identity\":{}}]}]}",
                         secret),
                0);
        *ret_secret = secret;
        return cfg;
}

static char *seal_str(const char *token, const char *cfg, uint64_t gen, se_stage stage) {
        se_error e = SE_ERROR_NULL;
        char *json = NULL;
        size_t len = 0;
        int r;

        r = se_seal(token, (const uint8_t *) cfg, strlen(cfg), gen, stage, &json, &len, &e);
        ck_assert_msg(r == 0, "seal: %s", se_error_message(&e));
        ck_assert_uint_eq(strlen(json), len);
        se_error_done(&e);
        return json;
}

/* Opens json with token: the errno, the message in *ret_msg (if given), the bytes in *ret_out. */
static int open_str(const char *json, const char *token, char **ret_out, char **ret_msg) {
        se_error e = SE_ERROR_NULL;
        se_sealed s = {};
        uint8_t *out = NULL;
        size_t n = 0;
        int r;

        r = se_sealed_parse(json, strlen(json), &s, &e);
        if (r >= 0) {
                r = se_sealed_open(&s, token, &out, &n, &e);
                se_sealed_done(&s);
        }
        if (r >= 0) {
                ck_assert_uint_eq(strlen((char *) out), n);
                if (ret_out)
                        *ret_out = (char *) out;
                else
                        free(out);
        }
        show("open", &e);
        if (ret_msg)
                *ret_msg = strdup(se_error_message(&e));
        se_error_done(&e);
        return r;
}

/* Re-serializes json with one field replaced (field "kdf.X" edits inside kdf). */
static char *edit(const char *json, const char *field, json_object *value) {
        json_object *root = json_tokener_parse(json), *where = root;
        const char *dot = strchr(field, '.');
        char *out;

        ck_assert_ptr_nonnull(root);
        if (dot) {
                char *parent = strndup(field, (size_t) (dot - field));

                ck_assert(json_object_object_get_ex(root, parent, &where));
                free(parent);
                field = dot + 1;
        }
        if (value)
                json_object_object_add(where, field, value);
        else
                json_object_object_del(where, field);
        out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return out;
}

START_TEST(test_round_trip) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *json = NULL, *json2 = NULL, *out = NULL;
        uint8_t raw[32];
        char hash[65];
        se_error e = SE_ERROR_NULL;
        se_sealed s = {};

        cfg = make_config(&secret, raw);
        json = seal_str(TOKEN, cfg, 7, SE_STAGE_PREPARE);
        ck_assert_int_eq(open_str(json, TOKEN, &out, NULL), 0);
        ck_assert_str_eq(out, cfg);

        /* the clear fields */
        ck_assert_int_eq(se_sealed_parse(json, strlen(json), &s, &e), 0);
        ck_assert_uint_eq(s.version, 1);
        ck_assert_uint_eq(s.generation, 7);
        ck_assert_int_eq(s.stage, SE_STAGE_PREPARE);
        ck_assert_int_eq(se_sha256_hex(cfg, strlen(cfg), hash), 0);
        ck_assert_str_eq(s.hash, hash);
        ck_assert_uint_eq(s.kdf_n, SE_SEAL_SCRYPT_N);
        ck_assert_uint_eq(s.ciphertext_size, strlen(cfg) + SE_SEAL_TAG_SIZE);
        se_sealed_done(&s);
        ck_assert(strstr(json, "\"stage\":\"prepare\""));
        ck_assert(strstr(json, "\"generation\":7"));

        /* nothing secret in the record, in base64 or raw */
        ck_assert_ptr_null(strstr(json, secret));
        ck_assert(!tl_memmem(json, strlen(json), raw, sizeof(raw)));
        ck_assert_ptr_null(strstr(json, "aescbckey"));

        /* fresh salt and nonce every time */
        json2 = seal_str(TOKEN, cfg, 7, SE_STAGE_PREPARE);
        ck_assert_str_ne(json, json2);
        {
                se_sealed a = {}, b = {};

                ck_assert_int_eq(se_sealed_parse(json, strlen(json), &a, &e), 0);
                ck_assert_int_eq(se_sealed_parse(json2, strlen(json2), &b, &e), 0);
                ck_assert(memcmp(a.salt, b.salt, sizeof(a.salt)) != 0);
                ck_assert(memcmp(a.nonce, b.nonce, sizeof(a.nonce)) != 0);
                se_sealed_done(&a);
                se_sealed_done(&b);
        }
        se_error_done(&e);
}
END_TEST

START_TEST(test_every_stage_and_empty) {
        _cleanup_free_ char *out = NULL;

        for (int st = 0; st < _SE_STAGE_MAX; st++) {
                _cleanup_free_ char *json = seal_str(TOKEN, "{}", (uint64_t) st + 1, (se_stage) st);
                se_sealed s = {};

                ck_assert_int_eq(se_sealed_parse(json, strlen(json), &s, NULL), 0);
                ck_assert_int_eq(s.stage, st);
                se_sealed_done(&s);
        }
        /* zero bytes seal and open too */
        {
                _cleanup_free_ char *json = seal_str(TOKEN, "", 1, SE_STAGE_START);

                ck_assert_int_eq(open_str(json, TOKEN, &out, NULL), 0);
                ck_assert_str_eq(out, "");
        }
}
END_TEST

START_TEST(test_wrong_token) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *json = NULL, *msg = NULL;
        uint8_t raw[32];

        cfg = make_config(&secret, raw);
        json = seal_str(TOKEN, cfg, 3, SE_STAGE_ROTATE);
        ck_assert_int_eq(open_str(json, TOKEN "x", NULL, &msg), -EKEYREJECTED);
        ck_assert_str_eq(msg,
                         "the cluster token does not open the sealed configuration in etcd: check token-file / the "
                         "secrets-encrypt-token credential on this node");
        free(msg);
        ck_assert_int_eq(open_str(json, "K10deadbeef::server:correct-horse-battery-stapl", NULL, &msg), -EKEYREJECTED);
        free(msg);
        msg = NULL;
        ck_assert_int_eq(open_str(json, "", NULL, &msg), -EINVAL);
        ck_assert(strstr(msg, "no cluster token"));
        /* the token never shows up in messages or records */
        ck_assert_ptr_null(strstr(json, "correct-horse"));
}
END_TEST

START_TEST(test_tampering_detected) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *json = NULL;
        uint8_t raw[32];
        char other_hash[65];

        cfg = make_config(&secret, raw);
        json = seal_str(TOKEN, cfg, 5, SE_STAGE_PREPARE);
        ck_assert_int_eq(se_sha256_hex("other", 5, other_hash), 0);

        struct {
                const char *field;
                json_object *value;
                int want;
        } cases[] = {
                /* AAD: the clear fields cannot be changed without the token */
                {"generation", json_object_new_int64(6), -EBADMSG},
                {"generation", json_object_new_int64(4), -EBADMSG},
                {"stage", json_object_new_string("rotate"), -EBADMSG},
                {"hash", json_object_new_string(other_hash), -EBADMSG},
                /* the KDF inputs change the derived key: reported as a token mismatch */
                {"kdf.salt", json_object_new_string("AAAAAAAAAAAAAAAAAAAAAA=="), -EKEYREJECTED},
                {"kdf.N", json_object_new_int64(65536), -EKEYREJECTED},
                {"check", json_object_new_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), -EKEYREJECTED},
                {"nonce", json_object_new_string("AAAAAAAAAAAAAAAA"), -EBADMSG},
                /* malformed */
                {"version", json_object_new_int64(2), -EBADMSG},
                {"generation", json_object_new_int64(0), -EBADMSG},
                {"generation", json_object_new_string("5"), -EBADMSG},
                {"stage", json_object_new_string("bogus"), -EBADMSG},
                {"hash", json_object_new_string("abc"), -EBADMSG},
                {"cipher", json_object_new_string("aes-128-gcm"), -EBADMSG},
                {"kdf.name", json_object_new_string("pbkdf2"), -EBADMSG},
                {"kdf.N", json_object_new_int64(1 << 30), -EBADMSG}, /* would need 128 GiB */
                {"kdf.N", json_object_new_int64(1024), -EBADMSG},    /* too weak */
                {"kdf.N", json_object_new_int64(50000), -EBADMSG},   /* not a power of 2 */
                {"kdf.r", json_object_new_int64(1000), -EBADMSG},
                {"kdf.p", json_object_new_int64(0), -EBADMSG},
                {"kdf.salt", json_object_new_string("AAAA"), -EBADMSG},
                {"nonce", json_object_new_string("!!"), -EBADMSG},
                {"ciphertext", json_object_new_string("AAAA"), -EBADMSG},
                {"ciphertext", NULL, -EBADMSG},
                {"kdf", NULL, -EBADMSG},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *edited = edit(json, cases[i].field, cases[i].value), *msg = NULL;
                int r = open_str(edited, TOKEN, NULL, &msg);

                ck_assert_msg(r == cases[i].want, "case %zu (%s): %d (%s), want %d", i, cases[i].field, r, msg,
                              cases[i].want);
                if (r == -EBADMSG && (streq(cases[i].field, "generation") || streq(cases[i].field, "stage")) && i < 3)
                        ck_assert_msg(strstr(msg, "altered outside secrets-encrypt"), "%s", msg);
        }

        /* one flipped ciphertext bit */
        {
                se_sealed s = {};
                uint8_t *out = NULL;
                size_t n;
                se_error e = SE_ERROR_NULL;

                ck_assert_int_eq(se_sealed_parse(json, strlen(json), &s, NULL), 0);
                for (size_t at = 0; at < s.ciphertext_size; at += s.ciphertext_size / 7 + 1) {
                        s.ciphertext[at] ^= 0x01;
                        ck_assert_int_eq(se_sealed_open(&s, TOKEN, &out, &n, &e), -EBADMSG);
                        s.ciphertext[at] ^= 0x01;
                }
                ck_assert_int_eq(se_sealed_open(&s, TOKEN, &out, &n, &e), 0);
                free(out);
                se_sealed_done(&s);
                se_error_done(&e);
        }

        /* not JSON, trailing garbage, not an object */
        {
                _cleanup_free_ char *trail = NULL;

                ck_assert_int_ge(asprintf(&trail, "%s x", json), 0);
                ck_assert_int_eq(open_str(trail, TOKEN, NULL, NULL), -EBADMSG);
                ck_assert_int_eq(open_str("not json", TOKEN, NULL, NULL), -EBADMSG);
                ck_assert_int_eq(open_str("[1]", TOKEN, NULL, NULL), -EBADMSG);
                ck_assert_int_eq(open_str("", TOKEN, NULL, NULL), -EBADMSG);
        }
}
END_TEST

START_TEST(test_limits_and_arguments) {
        se_error e = SE_ERROR_NULL;
        char *json = NULL;
        size_t len;
        uint8_t *big = calloc(1, SE_SEAL_PLAINTEXT_MAX + 1);

        ck_assert_ptr_nonnull(big);
        ck_assert_int_eq(se_seal(TOKEN, big, SE_SEAL_PLAINTEXT_MAX + 1, 1, SE_STAGE_START, &json, &len, &e), -E2BIG);
        ck_assert_int_eq(se_seal(TOKEN, big, 10, 0, SE_STAGE_START, &json, &len, &e), -EINVAL);
        ck_assert_int_eq(se_seal(TOKEN, big, 10, 1, SE_STAGE_INVALID, &json, &len, &e), -EINVAL);
        ck_assert_int_eq(se_seal(NULL, big, 10, 1, SE_STAGE_START, &json, &len, &e), -EINVAL);
        ck_assert_int_eq(se_seal("", big, 10, 1, SE_STAGE_START, &json, &len, &e), -EINVAL);
        ck_assert_ptr_null(json);
        /* the maximum itself fits and stays under etcd's 1.5 MiB request limit */
        ck_assert_int_eq(se_seal(TOKEN, big, SE_SEAL_PLAINTEXT_MAX, 1, SE_STAGE_START, &json, &len, &e), 0);
        ck_assert_uint_lt(len, 1536u * 1024u - 4096u);
        free(json);
        free(big);
        se_error_done(&e);
}
END_TEST

static Suite *seal_suite(void) {
        Suite *s = suite_create("seal");
        TCase *tc = tcase_create("seal");

        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_every_stage_and_empty);
        tcase_add_test(tc, test_wrong_token);
        tcase_add_test(tc, test_tampering_detected);
        tcase_add_test(tc, test_limits_and_arguments);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(seal_suite)
