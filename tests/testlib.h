/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared helpers for the Check suites: temporary directories, files, test data. */

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secrets-encrypt.h"

/* One main() per test binary: runs the suite, prints Check's summary line, exits non-zero on
 * failure. */
#define SE_TEST_MAIN(suite_fn)                                          \
        int main(void) {                                                \
                SRunner *sr = srunner_create(suite_fn());               \
                int nf;                                                 \
                srunner_run_all(sr, CK_NORMAL);                         \
                nf = srunner_ntests_failed(sr);                         \
                srunner_free(sr);                                       \
                return nf == 0 ? 0 : 1;                                 \
        }

/* A fresh directory under $TMPDIR; removed recursively by tl_tmpdir_remove(). */
char *tl_tmpdir(void);
void tl_tmpdir_remove(char *dir);
/* dir + "/" + name, malloc'd. */
char *tl_path(const char *dir, const char *name);
void tl_write_file(const char *path, const void *data, size_t size);
void tl_write_str(const char *path, const char *s);
/* Whole file, NUL-terminated; aborts the test if unreadable. */
char *tl_read_file(const char *path, size_t *ret_size);
/* Path of a file under tests/data/ (the tests run from the project root). */
char *tl_data_path(const char *rel);
/* Asserts that the page l holds key, with value (a string) as its value. */
void tl_ck_range_value(const se_kv_list *l, const char *key, const char *value);
/* True if needle (n bytes) occurs in hay (h bytes). */
bool tl_memmem(const void *hay, size_t h, const void *needle, size_t n);
/* Runs a shell command, returns its exit status (or -1). Output captured into *ret_out if given. */
int tl_run(const char *cmd, char **ret_out);
