/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The archive of removed keys (se-key-archive.h) and `restore-key` (se_op_restore_key). free() and
 * realloc() are interposed as in test-key-wipe.c, but exported (_public_: the build's
 * -fvisibility=hidden would keep shared libraries on libc's), so the wipe checks see every block
 * the archive code and json-c free while a check is armed. */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"
#include "se-key-archive.h"
#include "se-ops.h"
#include "se-util.h"
#include "lib-kine.h"
#include "testlib.h"

/* ---- freed-memory scan --------------------------------------------------------------------- */

static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);
static void *(*real_malloc)(size_t);
static volatile int resolving; /* volatile: dlsym() may free, re-entering free() below */
static volatile int armed;
static const char *scan_for; /* base64 secret; a freed block holding half of it is a hit */
static unsigned n_scanned, n_hits;

static void resolve(void) {
        if (real_free || resolving)
                return;
        resolving = 1;
        real_free = (void (*)(void *)) dlsym(RTLD_NEXT, "free");
        real_realloc = (void *(*) (void *, size_t)) dlsym(RTLD_NEXT, "realloc");
        real_malloc = (void *(*) (size_t)) dlsym(RTLD_NEXT, "malloc");
        resolving = 0;
}

static void scan(void *p) {
        size_t n, half;

        if (!armed || !p || !scan_for)
                return;
        armed = 0;
        n = malloc_usable_size(p);
        half = strlen(scan_for) / 2;
        n_scanned++;
        if (memmem(p, n, scan_for, half) || memmem(p, n, scan_for + half, strlen(scan_for) - half))
                n_hits++;
        armed = 1;
}

_public_ void free(void *p) {
        resolve();
        if (!real_free)
                return; /* only while dlsym itself frees during resolution */
        scan(p);
        real_free(p);
}

_public_ void *realloc(void *p, size_t n) {
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
        scan(p);
        real_free(p);
        return q;
}

static void arm(const char *secret) {
        scan_for = secret;
        n_scanned = n_hits = 0;
        armed = 1;
}

static void disarm(void) {
        armed = 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

#define K3S_NAME "aescbckey-2026-01-02T03:04:05Z"
#define NOW      1767323045LL
#define DAY      86400LL
#define RET_7D   (7ULL * 24ULL * 3600ULL * 1000000ULL)
#define HASH_A   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A distinct, valid 32-byte key as base64 (static storage, so nothing to free). */
static const char *secret_n(unsigned n) {
        static char out[8][64];
        uint8_t raw[32];
        char *b64 = NULL;

        ck_assert_uint_lt(n, ELEMENTSOF(out));
        for (size_t i = 0; i < sizeof(raw); i++)
                raw[i] = (uint8_t) (0x5A ^ (i * 29 + n * 101 + 7));
        ck_assert_int_eq(se_base64_encode(raw, sizeof(raw), &b64), 0);
        snprintf(out[n], sizeof(out[n]), "%s", b64);
        explicit_bzero(b64, strlen(b64));
        free(b64);
        return out[n];
}

static void add_ok(const char *dir, se_provider_type t, const char *name, const char *secret, int64_t now) {
        se_error e = SE_ERROR_NULL;
        se_key k = {.name = (char *) name, .secret = (char *) secret};
        int r = se_key_archive_add(dir, t, &k, HASH_A, now, RET_7D, &e);

        ck_assert_msg(r == 0, "add %s: %s", name, se_error_message(&e));
        se_error_done(&e);
}

static char *archive_path(const char *dir, const char *name) {
        _cleanup_free_ char *file = se_key_archive_file_name(name);
        char *p;

        ck_assert_ptr_nonnull(file);
        ck_assert_int_ge(asprintf(&p, "%s/" SE_KEY_ARCHIVE_DIR "/%s", dir, file), 0);
        return p;
}

static bool exists(const char *dir, const char *name) {
        _cleanup_free_ char *p = archive_path(dir, name);

        return access(p, F_OK) == 0;
}

/* ---- the archive ------------------------------------------------------------------------------ */

START_TEST(test_file_names) {
        static const struct {
                const char *name, *file;
        } cases[] = {
                {"aescbckey", "aescbckey.json"},
                {K3S_NAME, "aescbckey-2026-01-02T03%3A04%3A05Z.json"},
                {"a/b", "a%2Fb.json"},
                {"..", "%2E..json"},
                {".hidden", "%2Ehidden.json"},
                {"100%", "100%25.json"},
                {"sp ace\n", "sp%20ace%0A.json"},
                {"caf\xc3\xa9", "caf%C3%A9.json"},
        };
        _cleanup_free_ char *lng = malloc(300), *f = NULL, *g = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = se_key_archive_file_name(cases[i].name);

                ck_assert_ptr_nonnull(got);
                ck_assert_str_eq(got, cases[i].file);
        }
        ck_assert_ptr_null(se_key_archive_file_name(""));

        /* too long to encode: a hash, within NAME_MAX with room for the temporary suffix */
        memset(lng, ':', 299);
        lng[299] = 0;
        f = se_key_archive_file_name(lng);
        ck_assert_ptr_nonnull(f);
        ck_assert(startswith(f, "%sha256-"));
        ck_assert_uint_le(strlen(f) + strlen(".tmpXXXXXX"), 255);
        lng[0] = ';';
        g = se_key_archive_file_name(lng);
        ck_assert_str_ne(f, g);
}
END_TEST

START_TEST(test_add_find_roundtrip_modes) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *adir = tl_path(dir, SE_KEY_ARCHIVE_DIR), *path = archive_path(dir, K3S_NAME);
        _cleanup_free_ char *text = NULL;
        se_error e = SE_ERROR_NULL;
        se_provider_type t = SE_PROVIDER_NONE;
        se_key k = {};
        int64_t at = 0;
        struct stat st;

        add_ok(dir, SE_PROVIDER_AESCBC, K3S_NAME, secret_n(0), NOW);

        ck_assert_int_eq(lstat(adir, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0600);

        /* the documented record */
        text = tl_read_file(path, NULL);
        ck_assert_ptr_nonnull(strstr(text, "\"name\":\"" K3S_NAME "\""));
        ck_assert_ptr_nonnull(strstr(text, "\"provider\":\"aescbc\""));
        ck_assert_ptr_nonnull(strstr(text, "\"removed_at\":1767323045"));
        ck_assert_ptr_nonnull(strstr(text, "\"config_hash\":\"" HASH_A "\""));
        ck_assert_ptr_nonnull(strstr(text, secret_n(0)));

        ck_assert_int_eq(se_key_archive_find(dir, K3S_NAME, &t, &k, &at, &e), 0);
        ck_assert_int_eq(t, SE_PROVIDER_AESCBC);
        ck_assert_str_eq(k.name, K3S_NAME);
        ck_assert_str_eq(k.secret, secret_n(0));
        ck_assert_int_eq(at, NOW);
        se_key_archive_key_done(&k);
        ck_assert_ptr_null(k.name);
        ck_assert_ptr_null(k.secret);

        /* every output optional */
        ck_assert_int_eq(se_key_archive_find(dir, K3S_NAME, NULL, NULL, NULL, &e), 0);

        /* no temporary left behind */
        ck_assert_int_eq(se_key_archive_expire(dir, NOW, RET_7D, &e), 0);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_types_and_replace) {
        char *dir = tl_tmpdir();
        se_error e = SE_ERROR_NULL;
        se_provider_type t;
        se_key k = {};
        se_key bad = {.name = (char *) "x", .secret = (char *) "eHh4"};

        add_ok(dir, SE_PROVIDER_SECRETBOX, "secretboxkey", secret_n(1), NOW);
        add_ok(dir, SE_PROVIDER_AESGCM, "gcm", secret_n(2), NOW);
        ck_assert_int_eq(se_key_archive_find(dir, "secretboxkey", &t, NULL, NULL, &e), 0);
        ck_assert_int_eq(t, SE_PROVIDER_SECRETBOX);
        ck_assert_int_eq(se_key_archive_find(dir, "gcm", &t, NULL, NULL, &e), 0);
        ck_assert_int_eq(t, SE_PROVIDER_AESGCM);

        /* identity and kms have no key to keep */
        ck_assert_int_eq(se_key_archive_add(dir, SE_PROVIDER_IDENTITY, &bad, NULL, NOW, RET_7D, &e), -EINVAL);
        ck_assert_int_eq(se_key_archive_add(dir, SE_PROVIDER_KMS, &bad, NULL, NOW, RET_7D, &e), -EINVAL);
        bad.secret = (char *) "";
        ck_assert_int_eq(se_key_archive_add(dir, SE_PROVIDER_AESCBC, &bad, NULL, NOW, RET_7D, &e), -EINVAL);

        /* archived again under the same name: the later one replaces it */
        add_ok(dir, SE_PROVIDER_AESCBC, "gcm", secret_n(3), NOW + 5);
        ck_assert_int_eq(se_key_archive_find(dir, "gcm", &t, &k, NULL, &e), 0);
        ck_assert_int_eq(t, SE_PROVIDER_AESCBC);
        ck_assert_str_eq(k.secret, secret_n(3));
        se_key_archive_key_done(&k);

        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_retention_zero) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *adir = tl_path(dir, SE_KEY_ARCHIVE_DIR);
        se_error e = SE_ERROR_NULL;
        se_key k = {.name = (char *) "aescbckey", .secret = (char *) secret_n(0)};

        ck_assert_int_eq(se_key_archive_add(dir, SE_PROVIDER_AESCBC, &k, HASH_A, NOW, 0, &e), 0);
        ck_assert_int_ne(access(adir, F_OK), 0); /* nothing created at all */
        ck_assert_int_eq(se_key_archive_find(dir, "aescbckey", NULL, NULL, NULL, &e), -ENOENT);

        /* retention 0 at expiry: everything goes, even a key removed just now */
        add_ok(dir, SE_PROVIDER_AESCBC, "a", secret_n(0), NOW);
        add_ok(dir, SE_PROVIDER_AESCBC, "b", secret_n(1), NOW + 10 * DAY);
        ck_assert_int_eq(se_key_archive_expire(dir, NOW, 0, &e), 2);
        ck_assert(!exists(dir, "a") && !exists(dir, "b"));
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_expire) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *tmp = NULL, *damaged = NULL, *foreign = NULL;
        se_error e = SE_ERROR_NULL;
        struct stat st;

        /* a missing archive is empty */
        ck_assert_int_eq(se_key_archive_expire(dir, NOW, RET_7D, &e), 0);

        add_ok(dir, SE_PROVIDER_AESCBC, "old", secret_n(0), NOW - 8 * DAY);
        add_ok(dir, SE_PROVIDER_AESCBC, "edge", secret_n(1), NOW - 7 * DAY);
        add_ok(dir, SE_PROVIDER_AESCBC, K3S_NAME, secret_n(2), NOW - DAY);
        add_ok(dir, SE_PROVIDER_AESCBC, "future", secret_n(3), NOW + DAY); /* clock went back */

        /* a killed writer's temporary, a damaged entry (old mtime), a file that is not an entry */
        tmp = archive_path(dir, "old");
        tmp = realloc(tmp, strlen(tmp) + 16);
        strcat(tmp, ".tmpAbC123");
        tl_write_str(tmp, "{\"name\":");
        ck_assert_int_ge(asprintf(&damaged, "%s/" SE_KEY_ARCHIVE_DIR "/damaged.json", dir), 0);
        tl_write_str(damaged, "{not json");
        ck_assert_int_eq(
                utimensat(AT_FDCWD, damaged, (struct timespec[2]){{NOW - 30 * DAY, 0}, {NOW - 30 * DAY, 0}}, 0), 0);
        ck_assert_int_ge(asprintf(&foreign, "%s/" SE_KEY_ARCHIVE_DIR "/README", dir), 0);
        tl_write_str(foreign, "hands off");

        ck_assert_int_eq(se_key_archive_expire(dir, NOW, RET_7D, &e), 2); /* old, damaged */
        ck_assert(!exists(dir, "old"));
        ck_assert(exists(dir, "edge")); /* exactly 7 days: not older than the retention */
        ck_assert(exists(dir, K3S_NAME));
        ck_assert(exists(dir, "future"));
        ck_assert_int_ne(stat(tmp, &st), 0);
        ck_assert_int_ne(stat(damaged, &st), 0);
        ck_assert_int_eq(stat(foreign, &st), 0);

        ck_assert_int_eq(se_key_archive_expire(dir, NOW + 1, RET_7D, &e), 1); /* edge */
        ck_assert_int_eq(se_key_archive_expire(dir, NOW + 1, RET_7D, &e), 0);
        ck_assert_int_eq(se_key_archive_find(dir, K3S_NAME, NULL, NULL, NULL, &e), 0);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_not_found_lists_names) {
        char *dir = tl_tmpdir();
        se_error e = SE_ERROR_NULL;
        se_key k = {.name = (char *) "untouched"};

        ck_assert_int_eq(se_key_archive_find(dir, "nope", NULL, &k, NULL, &e), -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "the archive is empty"));
        ck_assert_str_eq(k.name, "untouched"); /* ret_* untouched on failure */

        add_ok(dir, SE_PROVIDER_AESCBC, K3S_NAME, secret_n(0), NOW);
        add_ok(dir, SE_PROVIDER_SECRETBOX, "secretboxkey", secret_n(1), NOW - 60);
        ck_assert_int_eq(se_key_archive_find(dir, "aescbckey-2026-01-02T03:04:06Z", NULL, &k, NULL, &e), -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "no removed key named aescbckey-2026-01-02T03:04:06Z"));
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "archived keys: secretboxkey, " K3S_NAME));
        ck_assert_ptr_null(strstr(se_error_message(&e), secret_n(0)));
        ck_assert_ptr_null(strstr(se_error_message(&e), secret_n(1)));
        ck_assert_str_eq(k.name, "untouched");
        ck_assert_int_eq(se_key_archive_find(dir, "", NULL, NULL, NULL, &e), -EINVAL);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_damaged_entries) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *path = NULL, *text = NULL, *other = NULL;
        se_error e = SE_ERROR_NULL;
        se_key k = {};

        add_ok(dir, SE_PROVIDER_AESCBC, "k", secret_n(0), NOW);
        path = archive_path(dir, "k");

        /* not JSON: named, no secret in the message */
        tl_write_str(path, "{\"name\":\"k\",\"secret\":\"");
        ck_assert_int_eq(se_key_archive_find(dir, "k", NULL, &k, NULL, &e), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), path));

        /* a secretbox record whose secret is an aescbc-sized key */
        ck_assert_int_ge(asprintf(&text,
                                  "{\"name\":\"k\",\"provider\":\"secretbox\",\"removed_at\":1,\"config_hash\":\"\","
                                  "\"secret\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}"),
                         0);
        tl_write_str(path, text);
        ck_assert_int_eq(se_key_archive_find(dir, "k", NULL, &k, NULL, &e), -EBADMSG);
        ck_assert_msg(strstr(se_error_message(&e), "not a valid secretbox key"), "%s", se_error_message(&e));
        ck_assert_ptr_null(strstr(se_error_message(&e), "AAAAAAAAAAAAAAAAAAAAAA=="));
        ck_assert_ptr_null(k.name);

        /* an unknown provider is not an entry */
        tl_write_str(path, "{\"name\":\"k\",\"provider\":\"kms\",\"removed_at\":1,\"secret\":\"eA==\"}");
        ck_assert_int_eq(se_key_archive_find(dir, "k", NULL, &k, NULL, &e), -EBADMSG);

        /* a record placed by hand under another file name is still found by its name */
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_ge(asprintf(&other, "%s/" SE_KEY_ARCHIVE_DIR "/by-hand.json", dir), 0);
        free(text);
        ck_assert_int_ge(asprintf(&text,
                                  "{\"name\": \"k\", \"provider\": \"aescbc\", \"secret\": \"%s\", \"removed_at\": 5}",
                                  secret_n(4)),
                         0);
        tl_write_str(other, text);
        ck_assert_int_eq(se_key_archive_find(dir, "k", NULL, &k, NULL, &e), 0);
        ck_assert_str_eq(k.secret, secret_n(4));
        se_key_archive_key_done(&k);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_dir_hardening) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *adir = tl_path(dir, SE_KEY_ARCHIVE_DIR), *elsewhere = tl_path(dir, "elsewhere");
        se_error e = SE_ERROR_NULL;
        se_key k = {.name = (char *) "k", .secret = (char *) secret_n(0)};
        struct stat st;

        /* a wider directory is tightened */
        ck_assert_int_eq(mkdir(adir, 0755), 0);
        ck_assert_int_eq(chmod(adir, 0755), 0);
        add_ok(dir, SE_PROVIDER_AESCBC, "k", secret_n(0), NOW);
        ck_assert_int_eq(stat(adir, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0700);

        /* a symlink in its place is refused */
        ck_assert_int_eq(rename(adir, elsewhere), 0);
        ck_assert_int_eq(symlink(elsewhere, adir), 0);
        ck_assert_int_eq(se_key_archive_add(dir, SE_PROVIDER_AESCBC, &k, NULL, NOW, RET_7D, &e), -ENOTDIR);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "not a directory"));
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_list) {
        char *dir = tl_tmpdir();
        se_key_archive_entry *l = NULL;
        se_error e = SE_ERROR_NULL;
        size_t n = 99;

        ck_assert_int_eq(se_key_archive_list(dir, &l, &n, &e), 0);
        ck_assert_uint_eq(n, 0);
        se_key_archive_entries_free(l, n);

        add_ok(dir, SE_PROVIDER_AESCBC, K3S_NAME, secret_n(0), NOW);
        add_ok(dir, SE_PROVIDER_SECRETBOX, "sb", secret_n(1), NOW - DAY);
        add_ok(dir, SE_PROVIDER_AESGCM, "gcm", secret_n(2), NOW + DAY);
        ck_assert_int_eq(se_key_archive_list(dir, &l, &n, &e), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(l[0].name, "sb");
        ck_assert_int_eq(l[0].type, SE_PROVIDER_SECRETBOX);
        ck_assert_int_eq(l[0].removed_at, NOW - DAY);
        ck_assert_str_eq(l[1].name, K3S_NAME);
        ck_assert_str_eq(l[1].config_hash, HASH_A);
        ck_assert_str_eq(l[2].name, "gcm");
        ck_assert_int_eq(l[2].type, SE_PROVIDER_AESGCM);
        se_key_archive_entries_free(l, n);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

/* Every block freed while adding, finding, listing and expiring is free of the key (json-c's
 * tokener and objects included); the only copy left is the one handed to the caller. */
START_TEST(test_wipe) {
        char *dir = tl_tmpdir();
        se_error e = SE_ERROR_NULL;
        se_key_archive_entry *l = NULL;
        se_key k = {};
        size_t n = 0;
        const char *s = secret_n(5);
        char *copy;
        unsigned hits;

        /* the detector itself finds an unwiped copy */
        arm(s);
        copy = strdup(s);
        ck_assert_ptr_nonnull(copy);
        free(copy);
        disarm();
        ck_assert_uint_eq(n_hits, 1);

        arm(s);
        add_ok(dir, SE_PROVIDER_AESCBC, K3S_NAME, s, NOW);
        disarm();
        ck_assert_msg(n_hits == 0, "add: %u freed blocks held the key", n_hits);

        arm(s);
        ck_assert_int_eq(se_key_archive_find(dir, K3S_NAME, NULL, &k, NULL, &e), 0);
        disarm();
        hits = n_hits;
        ck_assert_uint_gt(n_scanned, 0);
        ck_assert_msg(hits == 0, "find: %u freed blocks held the key (%u scanned)", hits, n_scanned);
        ck_assert_str_eq(k.secret, s);

        /* a record written by another tool, the secret first: json-c's buffer must not grow
         * (realloc) while it holds the secret */
        {
                _cleanup_free_ char *path = archive_path(dir, "by-hand"), *text = NULL;
                char escaped[6 * 64 + 1] = "";

                /* every character escaped: json-c then appends it to its buffer one at a time */
                for (size_t i = 0; s[i]; i++)
                        snprintf(escaped + 6 * i, 7, "\\u%04x", (unsigned) (unsigned char) s[i] & 0xffu);
                ck_assert_int_ge(asprintf(&text,
                                          "{\"secret\": \"%s\", \"name\": \"by-hand\", \"provider\": \"aescbc\", "
                                          "\"removed_at\": 1}",
                                          escaped),
                                 0);
                explicit_bzero(escaped, sizeof(escaped));
                /* write(2), not stdio: a FILE buffer would leave the key in freed memory */
                ck_assert_int_eq(se_write_file_atomic(path, text, strlen(text), 0600), 0);
                explicit_bzero(text, strlen(text));
        }
        arm(s);
        ck_assert_int_eq(se_key_archive_find(dir, "by-hand", NULL, NULL, NULL, &e), 0);
        disarm();
        ck_assert_msg(n_hits == 0, "find (secret first): %u freed blocks held the key", n_hits);

        arm(s);
        se_key_archive_key_done(&k);
        ck_assert_int_eq(se_key_archive_list(dir, &l, &n, &e), 0);
        se_key_archive_entries_free(l, n);
        ck_assert_int_eq(se_key_archive_find(dir, "missing", NULL, NULL, NULL, &e), -ENOENT);
        ck_assert_int_eq(se_key_archive_expire(dir, NOW, 0, &e), 2);
        disarm();
        ck_assert_msg(n_hits == 0, "done/list/not-found/expire: %u freed blocks held the key", n_hits);

        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

/* ---- restore-key ------------------------------------------------------------------------------ */

static unsigned n_restored_events;

static void sink(const se_log_record *rec, void *userdata) {
        const char *msg = se_log_record_get(rec, "MESSAGE");
        const char *want = userdata;

        if (rec->type == SE_EVENT_KEY_ADDED && msg && streq(msg, want)) {
                const char *p = se_log_record_get(rec, "SECRETS_ENCRYPT_KEY_NAME");

                ck_assert_ptr_nonnull(p);
                n_restored_events++;
        }
}

typedef struct fixture {
        char *dir;
        se_settings s;
        se_ctx ctx;
        bool open;
} fixture;

/* A state directory holding config at stage rotate (hash matching). */
static void fixture_init(fixture *f, const char *config) {
        _cleanup_free_ char *cpath = NULL, *spath = NULL, *state = NULL, *db = NULL, *endpoint = NULL;
        se_error e = SE_ERROR_NULL;
        char hash[65];

        f->dir = tl_tmpdir();
        cpath = tl_path(f->dir, "encryption-config.json");
        spath = tl_path(f->dir, "encryption-state.json");
        tl_write_str(cpath, config);
        ck_assert_int_eq(se_sha256_hex(config, strlen(config), hash), 0);
        ck_assert_int_ge(asprintf(&state, "rotate-%s", hash), 0);
        tl_write_str(spath, state);

        ck_assert_int_eq(se_settings_init(&f->s), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "state-dir", f->dir, &e), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "node-name", "node-1", &e), 0);
        /* a real kine database (with /registry/health): restore-key checks the datastore first */
        db = tl_path(f->dir, "db.sqlite");
        tk_close(tk_create(db, true));
        ck_assert_int_ge(asprintf(&endpoint, "sqlite://%s", db), 0);
        ck_assert_int_eq(se_settings_set(&f->s, "datastore-endpoint", endpoint, &e), 0);
        ck_assert_msg(se_ctx_open(&f->ctx, &f->s, 0, &e) == 0, "%s", se_error_message(&e));
        f->open = true;
        se_error_done(&e);
}

static void fixture_done(fixture *f) {
        if (f->open)
                se_ctx_close(&f->ctx);
        se_settings_done(&f->s);
        tl_tmpdir_remove(f->dir);
}

/* The file as se_config_to_json() writes the expected document. */
static void assert_config_is(fixture *f, const char *expected) {
        _cleanup_free_ char *path = tl_path(f->dir, "encryption-config.json"), *got = NULL, *want = NULL;
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        size_t size = 0;

        ck_assert_msg(se_config_parse("expected", expected, strlen(expected), &c, &e) == 0, "%s",
                      se_error_message(&e));
        ck_assert_int_eq(se_config_to_json(c, &want, &size), 0);
        se_config_free(c);
        got = tl_read_file(path, NULL);
        ck_assert_str_eq(got, want);
        se_error_done(&e);
}

#define HEAD         "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":["
#define KEY(n, s)    "{\"name\":\"" n "\",\"secret\":\"" s "\"}"
#define AESCBC(keys) "{\"aescbc\":{\"keys\":[" keys "]}}"
#define SBOX(keys)   "{\"secretbox\":{\"keys\":[" keys "]}}"
#define GCM(keys)    "{\"aesgcm\":{\"keys\":[" keys "]}}"
#define IDENTITY     "{\"identity\":{}}"

/* Fixed keys, so the configs can be string literals. */
#define S1 "c2VjcmV0LWtleS0wMDAwMDAwMDAwMDAwMDAwMDAwMDE="
#define S2 "c2VjcmV0LWtleS0wMDAwMDAwMDAwMDAwMDAwMDAwMDI="
#define S3 "c2VjcmV0LWtleS0wMDAwMDAwMDAwMDAwMDAwMDAwMDM="
#define S4 "c2VjcmV0LWtleS0wMDAwMDAwMDAwMDAwMDAwMDAwMDQ="

static void archive_fixed(fixture *f, se_provider_type t, const char *name, const char *secret) {
        add_ok(f->dir, t, name, secret, NOW);
}

START_TEST(test_restore_into_secrets_entry) {
        static const char config[] = HEAD "{\"resources\":[\"configmaps\"],\"providers\":[" SBOX(
                KEY("cm", S1)) "," IDENTITY "]},"
                               "{\"resources\":[\"secrets\"],\"providers\":[" AESCBC(KEY(
                                       "aescbckey", S2)) "," IDENTITY "]},"
                                                         "{\"resources\":[\"*.*\"],\"providers\":[" IDENTITY "]}]}";
        static const char after_aescbc[] = HEAD "{\"resources\":[\"configmaps\"],\"providers\":[" SBOX(
                KEY("cm", S1)) "," IDENTITY "]},"
                               "{\"resources\":[\"secrets\"],\"providers\":[" AESCBC(KEY("aescbckey", S2) "," KEY(
                                       K3S_NAME, S3)) "," IDENTITY "]},"
                                                      "{\"resources\":[\"*.*\"],\"providers\":[" IDENTITY "]}]}";
        static const char after_secretbox[] = HEAD "{\"resources\":[\"configmaps\"],\"providers\":[" SBOX(KEY(
                "cm", S1)) "," IDENTITY "]},"
                           "{\"resources\":[\"secrets\"],\"providers\":[" AESCBC(KEY("aescbckey", S2) "," KEY(
                                   K3S_NAME, S3)) "," SBOX(KEY("secretboxkey",
                                                               S4)) "," IDENTITY "]},"
                                                                    "{\"resources\":[\"*.*\"],\"providers\":[" IDENTITY
                                                                    "]}]}";
        se_error e = SE_ERROR_NULL;
        fixture f = {};
        se_stage stage;
        char hash[65];

        fixture_init(&f, config);
        archive_fixed(&f, SE_PROVIDER_AESCBC, K3S_NAME, S3);
        archive_fixed(&f, SE_PROVIDER_SECRETBOX, "secretboxkey", S4);
        archive_fixed(&f, SE_PROVIDER_AESCBC, "cm", S4);

        n_restored_events = 0;
        se_log_set_sink(sink, (void *) "Secrets encryption key " K3S_NAME " restored as a read key on node-1.");
        ck_assert_msg(se_op_restore_key(&f.ctx, K3S_NAME, &e) == 0, "%s", se_error_message(&e));
        se_log_set_sink(NULL, NULL);
        ck_assert_uint_eq(n_restored_events, 1);
        assert_config_is(&f, after_aescbc);

        /* the stage is kept, with the new hash */
        ck_assert(f.ctx.state.has_stage);
        ck_assert_int_eq(f.ctx.state.stage, SE_STAGE_ROTATE);
        ck_assert_str_eq(f.ctx.state.stage_hash, f.ctx.state.hash);
        se_ctx_close(&f.ctx);
        f.open = false;
        {
                _cleanup_free_ char *spath = tl_path(f.dir, "encryption-state.json"), *st = NULL;

                st = tl_read_file(spath, NULL);
                ck_assert_int_eq(se_annotation_parse(st, &stage, hash), 0);
                ck_assert_int_eq(stage, SE_STAGE_ROTATE);
        }
        ck_assert_int_eq(se_ctx_open(&f.ctx, &f.s, 0, &e), 0);
        f.open = true;
        ck_assert_str_eq(hash, f.ctx.state.hash);

        /* a type the entry lacks: a new provider right after the write provider */
        ck_assert_msg(se_op_restore_key(&f.ctx, "secretboxkey", &e) == 0, "%s", se_error_message(&e));
        assert_config_is(&f, after_secretbox);

        /* already there (in any entry): refused, nothing written */
        ck_assert_int_eq(se_op_restore_key(&f.ctx, K3S_NAME, &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "already in the encryption configuration"));
        ck_assert_int_eq(se_op_restore_key(&f.ctx, "cm", &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "resources[0].providers[0].secretbox.keys[0]"));
        assert_config_is(&f, after_secretbox);

        /* not archived: -ENOENT naming what is */
        ck_assert_int_eq(se_op_restore_key(&f.ctx, "nope", &e), -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "archived keys:"));
        ck_assert_ptr_null(strstr(se_error_message(&e), S3));
        ck_assert_int_eq(se_op_restore_key(&f.ctx, "", &e), -EINVAL);

        se_error_done(&e);
        fixture_done(&f);
}
END_TEST

START_TEST(test_restore_wildcards_and_types) {
        static const struct {
                const char *config;
                se_provider_type type;
                const char *expected;
        } cases[] = {
                /* "*." covers core secrets before "*.*" does */
                {HEAD "{\"resources\":[\"configmaps\"],\"providers\":[" AESCBC(
                         KEY("a", S1)) "]},"
                                       "{\"resources\":[\"*.\"],\"providers\":[" IDENTITY
                                       "," AESCBC(KEY("b", S2)) "]},"
                                                                "{\"resources\":[\"*.*\"],\"providers\":[" AESCBC(
                                                                        KEY("c", S4)) "]}]}",
                 SE_PROVIDER_AESCBC,
                 HEAD "{\"resources\":[\"configmaps\"],\"providers\":[" AESCBC(KEY(
                         "a", S1)) "]},"
                                   "{\"resources\":[\"*.\"],\"providers\":[" IDENTITY "," AESCBC(KEY("b", S2) "," KEY(
                                           "r", S3)) "]},"
                                                     "{\"resources\":[\"*.*\"],\"providers\":[" AESCBC(
                                                             KEY("c", S4)) "]}]}"},
                /* "secrets." and an aesgcm key: inserted after the first provider */
                {HEAD "{\"resources\":[\"secrets.\"],\"providers\":[" AESCBC(KEY("a", S1)) "," IDENTITY "]}]}",
                 SE_PROVIDER_AESGCM,
                 HEAD "{\"resources\":[\"secrets.\"],\"providers\":[" AESCBC(KEY("a", S1)) "," GCM(
                         KEY("r", S3)) "," IDENTITY "]}]}"},
                /* "*.*" and a disabled config: identity stays the write provider */
                {HEAD "{\"resources\":[\"*.*\"],\"providers\":[" IDENTITY "," AESCBC(KEY("a", S1)) "]}]}",
                 SE_PROVIDER_SECRETBOX,
                 HEAD "{\"resources\":[\"*.*\"],\"providers\":[" IDENTITY
                      "," SBOX(KEY("r", S3)) "," AESCBC(KEY("a", S1)) "]}]}"},
                /* the key goes to the first provider of its type, the write provider included: as its last key */
                {HEAD
                 "{\"resources\":[\"secrets\"],\"providers\":[" AESCBC(KEY("a", S1)) "," AESCBC(KEY("b", S2)) "]}]}",
                 SE_PROVIDER_AESCBC,
                 HEAD "{\"resources\":[\"secrets\"],\"providers\":[" AESCBC(KEY("a", S1) "," KEY("r", S3)) "," AESCBC(
                         KEY("b", S2)) "]}]}"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                se_error e = SE_ERROR_NULL;
                fixture f = {};

                fixture_init(&f, cases[i].config);
                archive_fixed(&f, cases[i].type, "r", S3);
                se_log_set_target(SE_LOG_TARGET_NULL);
                ck_assert_msg(se_op_restore_key(&f.ctx, "r", &e) == 0, "case %zu: %s", i, se_error_message(&e));
                assert_config_is(&f, cases[i].expected);
                se_error_done(&e);
                fixture_done(&f);
        }
}
END_TEST

START_TEST(test_restore_refusals) {
        static const char no_secrets[] =
                HEAD "{\"resources\":[\"configmaps\",\"*.apps\"],\"providers\":[" AESCBC(KEY("a", S1)) "]}]}";
        se_error e = SE_ERROR_NULL;
        fixture f = {};
        char *dir = tl_tmpdir();
        se_settings s;
        se_ctx ctx;

        fixture_init(&f, no_secrets);
        archive_fixed(&f, SE_PROVIDER_AESCBC, "r", S3);
        ck_assert_int_eq(se_op_restore_key(&f.ctx, "r", &e), -ESTALE);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "covers secrets"));
        fixture_done(&f);

        /* no configuration at all */
        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(se_settings_set(&s, "state-dir", dir, &e), 0);
        ck_assert_int_eq(se_ctx_open(&ctx, &s, 0, &e), 0);
        ck_assert_int_eq(se_op_restore_key(&ctx, "r", &e), -ESTALE);
        se_ctx_close(&ctx);
        se_settings_done(&s);
        tl_tmpdir_remove(dir);
        se_error_done(&e);
}
END_TEST

/* ---- settings ------------------------------------------------------------------------------- */

START_TEST(test_setting) {
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_uint_eq(s.removed_key_retention_usec, RET_7D);
        ck_assert(s.keep_removed_keys);
        ck_assert(se_settings_is_key("removed-key-retention"));
        ck_assert_int_eq(se_settings_set(&s, "removed-key-retention", "36h", &e), 0);
        ck_assert_uint_eq(s.removed_key_retention_usec, 36ULL * 3600ULL * 1000000ULL);
        ck_assert(s.keep_removed_keys);
        ck_assert_int_eq(se_settings_set(&s, "removed-key-retention", "0", &e), 0);
        ck_assert_uint_eq(s.removed_key_retention_usec, 0);
        ck_assert(!s.keep_removed_keys);
        ck_assert_int_eq(se_settings_set(&s, "removed-key-retention", "0d", &e), 0);
        ck_assert(!s.keep_removed_keys);
        ck_assert_int_eq(se_settings_set(&s, "removed-key-retention", "a week", &e), -EINVAL);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "removed-key-retention: invalid duration \"a week\""));
        ck_assert_uint_eq(s.removed_key_retention_usec, 0); /* unchanged */
        se_settings_done(&s);
        se_error_done(&e);
}
END_TEST

static Suite *key_archive_suite(void) {
        Suite *s = suite_create("key-archive");
        TCase *tc = tcase_create("archive");
        TCase *tr = tcase_create("restore-key");

        tcase_add_test(tc, test_file_names);
        tcase_add_test(tc, test_add_find_roundtrip_modes);
        tcase_add_test(tc, test_types_and_replace);
        tcase_add_test(tc, test_retention_zero);
        tcase_add_test(tc, test_expire);
        tcase_add_test(tc, test_not_found_lists_names);
        tcase_add_test(tc, test_damaged_entries);
        tcase_add_test(tc, test_dir_hardening);
        tcase_add_test(tc, test_list);
        /* valgrind replaces the allocator, so the freed-memory scan sees nothing there */
        if (!strstr(getenv("LD_PRELOAD") ?: "", "vgpreload"))
                tcase_add_test(tc, test_wipe);
        tcase_add_test(tc, test_setting);
        suite_add_tcase(s, tc);
        tcase_add_test(tr, test_restore_into_secrets_entry);
        tcase_add_test(tr, test_restore_wildcards_and_types);
        tcase_add_test(tr, test_restore_refusals);
        suite_add_tcase(s, tr);
        return s;
}

static Suite *suite_with_quiet_log(void) {
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "null", 1);
        return key_archive_suite();
}

SE_TEST_MAIN(suite_with_quiet_log)
