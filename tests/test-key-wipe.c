/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys wiped from memory after use (issue 9, secrets hygiene): free() and realloc() are interposed
 * in this executable (shared libraries resolve them here too: OpenSSL, json-c, libyaml), and while
 * a check is armed every block being freed is scanned for the raw bytes of a distinctive key and
 * for its base64. A hit is recorded with the caller's address, to name the code that let the key
 * linger in freed memory. */
#include <dlfcn.h>
#include <valgrind/memcheck.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"
#include "se-envelope.h"
#include "se-state.h"
#include "se-util.h"
#include "testlib.h"

#define MAX_HITS 16

static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);
static void *(*real_malloc)(size_t);
static int resolving;
static volatile int armed;
static uint8_t key_raw[32];
static char key_b64[64];
static unsigned n_scanned, n_hits;
static void *hit_callers[MAX_HITS];
static char hit_what[MAX_HITS][8];

static void resolve(void) {
        if (real_free || resolving)
                return;
        resolving = 1;
        real_free = (void (*)(void *)) dlsym(RTLD_NEXT, "free");
        real_realloc = (void *(*) (void *, size_t)) dlsym(RTLD_NEXT, "realloc");
        real_malloc = (void *(*) (size_t)) dlsym(RTLD_NEXT, "malloc");
        resolving = 0;
}

static void scan(void *p, void *caller) {
        size_t n;
        const char *what = NULL;

        if (!armed || !p)
                return;
        armed = 0; /* no recursion from malloc_usable_size or memmem */
        n = malloc_usable_size(p);
        n_scanned++;
        /* the slack of a block was never written: under valgrind, scanning it is no error */
        (void) VALGRIND_MAKE_MEM_DEFINED(p, n);
        /* half the key is enough to count as a leak */
        if (memmem(p, n, key_raw, 16) || memmem(p, n, key_raw + 16, 16))
                what = "raw";
        else if (memmem(p, n, key_b64, 22) || memmem(p, n, key_b64 + 22, 20))
                what = "base64";
        if (what) {
                if (n_hits < MAX_HITS) {
                        hit_callers[n_hits] = caller;
                        snprintf(hit_what[n_hits], sizeof(hit_what[n_hits]), "%s", what);
                }
                n_hits++;
        }
        armed = 1;
}

void free(void *p) {
        resolve();
        if (!real_free)
                return; /* only while dlsym itself frees during resolution: leak it */
        scan(p, __builtin_return_address(0));
        real_free(p);
}

/* A moving realloc frees the old block: check it as free() would. */
void *realloc(void *p, size_t n) {
        void *q;
        size_t old;

        resolve();
        if (!armed || !p || n == 0)
                return real_realloc(p, n);
        old = malloc_usable_size(p);
        q = real_malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, MIN(old, n));
        scan(p, __builtin_return_address(0));
        real_free(p);
        return q;
}

static void arm(void) {
        n_scanned = n_hits = 0;
        armed = 1;
}

static void disarm_and_report(const char *what) {
        armed = 0;
        for (unsigned i = 0; i < MIN(n_hits, (unsigned) MAX_HITS); i++) {
                Dl_info info = {};

                (void) dladdr(hit_callers[i], &info);
                fprintf(stderr, "# %s: freed block holds the key (%s), freed from %s %s+%#lx\n", what, hit_what[i],
                        info.dli_fname ? info.dli_fname : "?", info.dli_sname ? info.dli_sname : "?",
                        (unsigned long) ((uintptr_t) hit_callers[i] - (uintptr_t) info.dli_saddr));
        }
}

static char *config_text(void) {
        char *text;

        for (size_t i = 0; i < sizeof(key_raw); i++)
                key_raw[i] = (uint8_t) (0xA5 ^ (i * 37 + 11));
        {
                char *b64 = NULL;
                ck_assert_int_eq(se_base64_encode(key_raw, sizeof(key_raw), &b64), 0);
                snprintf(key_b64, sizeof(key_b64), "%s", b64);
                explicit_bzero(b64, strlen(b64));
                free(b64);
        }
        ck_assert_int_ge(asprintf(&text,
                                  "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                                  "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":"
                                  "[{\"name\":\"wipe-me\",\"secret\":\"%s\"}]}},{\"identity\":{}}]}]}",
                                  key_b64),
                         0);
        return text;
}

static void free_text(char *text) {
        explicit_bzero(text, strlen(text));
        free(text);
}

/* The detector itself: a copy of the key freed without a wipe must be found. */
START_TEST(detector_finds_unwiped_copy) {
        char *text = config_text(), *copy;

        arm();
        copy = strdup(key_b64);
        ck_assert_ptr_nonnull(copy);
        free(copy);
        armed = 0;
        ck_assert_uint_eq(n_hits, 1);
        free_text(text);
}
END_TEST

/* The transformer: its construction, a write and a read, its free. The config is parsed before
 * the check is armed (the parser is covered by its own test below). */
START_TEST(transformer_wipes_keys) {
        char *text = config_text();
        se_config *c = NULL;
        se_transformer *t = NULL;
        se_error e = SE_ERROR_NULL;
        se_buf enc = {}, dec = {};

        ck_assert_int_eq(se_config_parse("wipe.json", text, strlen(text), &c, &e), 0);
        arm();
        ck_assert_int_eq(se_transformer_new(c, "secrets", &t, &e), 0);
        ck_assert_int_eq(se_transformer_write(t, "/registry/secrets/ns/a", (const uint8_t *) "plain", 5, &enc, &e), 0);
        ck_assert_int_eq(se_transformer_read(t, "/registry/secrets/ns/a", enc.data, enc.len, &dec, NULL, &e), 0);
        ck_assert_mem_eq(dec.data, "plain", 5);
        t = se_transformer_free(t);
        disarm_and_report("transformer");
        ck_assert_uint_gt(n_scanned, 0);
        ck_assert_msg(n_hits == 0, "%u freed blocks of the transformer still held the key", n_hits);
        se_buf_free(&enc);
        se_buf_free(&dec);
        se_config_free(c);
        free_text(text);
        se_error_done(&e);
}
END_TEST

/* se_config_free, and the parse path that builds the config. */
START_TEST(config_free_wipes_keys) {
        char *text = config_text();
        se_config *c = NULL;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_config_parse("wipe.json", text, strlen(text), &c, &e), 0);
        arm();
        c = se_config_free(c);
        disarm_and_report("se_config_free");
        ck_assert_uint_gt(n_scanned, 0);
        ck_assert_msg(n_hits == 0, "%u blocks freed by se_config_free still held the key", n_hits);
        free_text(text);
        se_error_done(&e);
}
END_TEST

START_TEST(config_parse_wipes_keys) {
        char *text = config_text();
        se_config *c = NULL;
        se_error e = SE_ERROR_NULL;
        unsigned hits;

        arm();
        ck_assert_int_eq(se_config_parse("wipe.json", text, strlen(text), &c, &e), 0);
        disarm_and_report("se_config_parse (JSON)");
        hits = n_hits;
        se_config_free(c);
        free_text(text);
        se_error_done(&e);
        ck_assert_msg(hits == 0, "%u blocks freed while parsing still held the key", hits);
}
END_TEST

/* The state directory: load (reads the config file), done. */
START_TEST(state_done_wipes_keys) {
        char *dir = tl_tmpdir(), *path = tl_path(dir, "encryption-config.json");
        char *text = config_text();
        se_state st = {};
        se_error e = SE_ERROR_NULL;
        int r;
        unsigned hits;

        tl_write_str(path, text);
        free(path);
        arm();
        r = se_state_load(dir, &st, &e);
        if (r >= 0)
                se_state_done(&st);
        disarm_and_report("se_state_load/se_state_done");
        hits = n_hits;
        free_text(text);
        tl_tmpdir_remove(dir);
        se_error_done(&e);
        ck_assert_msg(r >= 0, "state load: %s", se_error_message(&e));
        ck_assert_msg(hits == 0, "%u blocks freed by the state load/done still held the key", hits);
}
END_TEST

static Suite *key_wipe_suite(void) {
        Suite *s = suite_create("key-wipe");
        TCase *tc = tcase_create("free-scan");

        tcase_add_test(tc, detector_finds_unwiped_copy);
        tcase_add_test(tc, transformer_wipes_keys);
        tcase_add_test(tc, config_free_wipes_keys);
        tcase_add_test(tc, config_parse_wipes_keys);
        tcase_add_test(tc, state_done_wipes_keys);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(key_wipe_suite)
