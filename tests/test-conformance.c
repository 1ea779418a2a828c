/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"
#include "se-config.h"
#include "testlib.h"

/*
 * The upstream EncryptionConfiguration test files (tests/data/k8s-encryption-config/) must get
 * the verdict their INDEX.md gives, through se_config_load() like kube-apiserver's
 * LoadEncryptionConfig: the exact error text for rejected files, the sha256 for accepted ones.
 * The expectations are read from INDEX.md itself, so every file it lists is checked.
 */

#define DATA_DIR "k8s-encryption-config"
#define KMSV1_ERROR                                                                                                    \
        "error while building transformers: KMSv1 is deprecated and will only receive security updates going "       \
        "forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true to use the deprecated KMSv1 feature."

typedef struct entry {
        char *file;     /* relative to DATA_DIR */
        char *expected; /* rejected: error template from INDEX.md; accepted: NULL */
        char hash[SE_SHA256_HEX_SIZE];
        bool kms_v1_gate; /* accepted: INDEX.md says the build step needs --feature-gates=KMSv1=true */
} entry;

typedef struct index {
        entry *entries;
        size_t n;
        size_t n_rejected, n_accepted;
} index_t;

/* First `…` span at or after p (before end); malloc'd, NULL if none. */
static char *backtick_span(const char *p, const char *end, const char **ret_after) {
        const char *a = memchr(p, '`', (size_t) (end - p)), *b;

        if (!a)
                return NULL;
        b = memchr(a + 1, '`', (size_t) (end - a - 1));
        if (!b)
                return NULL;
        if (ret_after)
                *ret_after = b + 1;
        return strndup(a + 1, (size_t) (b - a - 1));
}

static void index_load(index_t *idx) {
        _cleanup_free_ char *path = tl_data_path(DATA_DIR "/INDEX.md");
        _cleanup_free_ char *text = tl_read_file(path, NULL);
        enum { NONE, REJECTED, ACCEPTED } section = NONE;

        *idx = (index_t){};
        for (char *line = text, *next; line && *line; line = next) {
                char *nl = strchr(line, '\n');
                const char *end, *col2;

                next = nl ? nl + 1 : NULL;
                end = nl ? nl : line + strlen(line);
                if (startswith(line, "## ")) {
                        section = startswith(line, "## Files that must be rejected") ? REJECTED
                                  : startswith(line, "## Files that pass")           ? ACCEPTED
                                                                                      : NONE;
                        continue;
                }
                if (section == NONE || !startswith(line, "| `"))
                        continue;

                idx->entries = realloc(idx->entries, (idx->n + 1) * sizeof(entry));
                ck_assert_ptr_nonnull(idx->entries);
                entry *en = &idx->entries[idx->n++];
                *en = (entry){};
                en->file = backtick_span(line, end, NULL);
                ck_assert_ptr_nonnull(en->file);
                /* the second column starts after the next " | " following the file name */
                col2 = strstr(line + 2, " | ");
                ck_assert_msg(col2 && col2 < end, "malformed INDEX.md row: %.*s", (int) (end - line), line);
                if (section == REJECTED) {
                        en->expected = backtick_span(col2, end, NULL);
                        ck_assert_msg(en->expected && startswith(en->expected, "error while parsing file: "),
                                      "no error text for %s", en->file);
                        idx->n_rejected++;
                } else {
                        const char *h = strstr(col2, "sha256:");

                        ck_assert_msg(h && h + 7 + 64 <= end, "no sha256 for %s", en->file);
                        memcpy(en->hash, h + 7, 64);
                        en->hash[64] = 0;
                        {
                                _cleanup_free_ char *notes = strndup(col2, (size_t) (end - col2));

                                ck_assert_ptr_nonnull(notes);
                                en->kms_v1_gate = strstr(notes, "KMSv1 gate") || strstr(notes, "the gate error");
                        }
                        idx->n_accepted++;
                }
        }
}

static void index_done(index_t *idx) {
        for (size_t i = 0; i < idx->n; i++) {
                free(idx->entries[i].file);
                free(idx->entries[i].expected);
        }
        free(idx->entries);
}

/* Replaces every occurrence of needle with repl; frees s. */
static char *replace(char *s, const char *needle, const char *repl) {
        char *out = NULL, *p;
        size_t nl = strlen(needle);

        p = strstr(s, needle);
        if (!p)
                return s;
        ck_assert_int_ge(asprintf(&out, "%.*s%s%s", (int) (p - s), s, repl, p + nl), 0);
        free(s);
        return replace(out, needle, repl);
}

START_TEST(test_index_complete) {
        index_t idx;

        index_load(&idx);
        /* INDEX.md: 34 files, 11 rejected at parse+validate */
        ck_assert_uint_eq(idx.n_rejected, 11);
        ck_assert_uint_eq(idx.n_accepted, 23);
        {
                size_t gated = 0;

                for (size_t i = 0; i < idx.n; i++)
                        gated += idx.entries[i].kms_v1_gate;
                /* the files with a KMS v1 provider */
                ck_assert_uint_eq(gated, 15);
        }
        for (size_t i = 0; i < idx.n; i++) {
                _cleanup_free_ char *rel = NULL, *path = NULL;
                struct stat st;

                ck_assert_int_ge(asprintf(&rel, DATA_DIR "/%s", idx.entries[i].file), 0);
                path = tl_data_path(rel);
                ck_assert_msg(stat(path, &st) == 0, "%s listed in INDEX.md but missing", path);
        }
        index_done(&idx);
}
END_TEST

START_TEST(test_verdict) {
        _cleanup_free_ char *rel = NULL, *path = NULL, *expected = NULL, *quoted = NULL;
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        char hash[SE_SHA256_HEX_SIZE] = "";
        index_t idx;
        entry *en;
        int r;

        index_load(&idx);
        ck_assert_int_lt(_i, (int) idx.n);
        en = &idx.entries[_i];
        ck_assert_int_ge(asprintf(&rel, DATA_DIR "/%s", en->file), 0);
        path = tl_data_path(rel);

        r = se_config_load(path, &c, hash, &e);
        if (!en->expected && en->kms_v1_gate) {
                /* kube-apiserver ≥ 1.29 with its default gates refuses to start on it (issue 16) */
                ck_assert_msg(r == -EBADMSG, "%s: accepted with the KMSv1 gate off", en->file);
                ck_assert_ptr_null(c);
                ck_assert_str_eq(hash, "");
                ck_assert_msg(startswith(se_error_message(&e), KMSV1_ERROR), "%s: %s", en->file, se_error_message(&e));
                se_error_done(&e);
                /* with the gate on (the kms-v1 setting) it is accepted with its hash */
                se_config_set_kms_v1_gate(true);
                r = se_config_load(path, &c, hash, &e);
                se_config_set_kms_v1_gate(false);
        }
        if (!en->expected) {
                ck_assert_msg(r == 0, "%s rejected: %s", en->file, se_error_message(&e));
                ck_assert_ptr_nonnull(c);
                ck_assert_str_eq(hash, en->hash);
                se_config_free(c);
        } else {
                const char *msg = se_error_message(&e), *scheme;

                ck_assert_msg(r == -EBADMSG, "%s: r=%d, %s", en->file, r, msg);
                ck_assert_ptr_null(c);
                ck_assert_str_eq(hash, ""); /* untouched on failure */

                /* <path> is Go's %q of the path we passed; the scheme name is build-specific */
                ck_assert_int_ge(asprintf(&quoted, "\"%s\"", path), 0);
                expected = replace(strdup(en->expected), "<path>", quoted);
                /* kube-apiserver echoes the file here; we never do (issue 16): same text up to the quote */
                if (strstr(expected, "<entire file content, verbatim>'"))
                        expected = replace(expected, "<entire file content, verbatim>'",
                                           "…' " SE_CONFIG_NOT_ECHOED "; set kind to EncryptionConfiguration");
                scheme = strstr(expected, " in scheme \"");
                if (scheme) {
                        size_t n = (size_t) (scheme - expected) + strlen(" in scheme \"");

                        ck_assert_msg(strncmp(msg, expected, n) == 0, "%s:\n got: %s\nwant: %.*s…", en->file, msg, (int) n,
                                      expected);
                } else
                        ck_assert_msg(streq(msg, expected), "%s:\n got: %s\nwant: %s", en->file, msg, expected);
        }
        se_error_done(&e);
        index_done(&idx);
}
END_TEST

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Every config file on disk is listed (a file added without a verdict would go untested). */
static size_t count_files(const char *dir) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        size_t n = 0;

        d = opendir(dir);
        ck_assert_msg(d, "cannot open %s", dir);
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = NULL;
                struct stat st;
                const char *dot;

                if (de->d_name[0] == '.')
                        continue;
                ck_assert_int_ge(asprintf(&p, "%s/%s", dir, de->d_name), 0);
                ck_assert_int_eq(lstat(p, &st), 0);
                if (S_ISDIR(st.st_mode))
                        n += count_files(p);
                else if ((dot = strrchr(de->d_name, '.')) && (streq(dot, ".yaml") || streq(dot, ".json")))
                        n++;
        }
        return n;
}

START_TEST(test_no_unlisted_files) {
        _cleanup_free_ char *dir = tl_data_path(DATA_DIR);
        index_t idx;

        index_load(&idx);
        ck_assert_uint_eq(count_files(dir), idx.n);
        index_done(&idx);
}
END_TEST

/* Rows in INDEX.md's two verdict tables, counted without Check's asserts (this runs while the
 * suite is built, outside any test); 0 if unreadable, which test_index_complete reports. */
static int count_rows(void) {
        _cleanup_fclose_ FILE *f = fopen("tests/data/" DATA_DIR "/INDEX.md", "re");
        char line[8192];
        bool in_table = false;
        int n = 0;

        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                if (startswith(line, "## "))
                        in_table = startswith(line, "## Files that must be rejected") ||
                                   startswith(line, "## Files that pass");
                else if (in_table && startswith(line, "| `"))
                        n++;
        }
        return n;
}

static Suite *conformance_suite(void) {
        Suite *s = suite_create("conformance");
        TCase *tc = tcase_create("k8s-encryption-config");
        int n = count_rows();

        tcase_add_test(tc, test_index_complete);
        tcase_add_test(tc, test_no_unlisted_files);
        /* one iteration per INDEX.md row */
        tcase_add_loop_test(tc, test_verdict, 0, n > 0 ? n : 1);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(conformance_suite)
