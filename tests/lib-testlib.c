/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "testlib.h"

char *tl_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/se-test.XXXXXX", base ? base : "/tmp"), 0);
        ck_assert_ptr_nonnull(mkdtemp(p));
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void tl_tmpdir_remove(char *dir) {
        if (!dir)
                return;
        (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

char *tl_path(const char *dir, const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

void tl_write_file(const char *path, const void *data, size_t size) {
        FILE *f = fopen(path, "we");

        ck_assert_msg(f, "cannot create %s", path);
        ck_assert_uint_eq(fwrite(data, 1, size, f), size);
        ck_assert_int_eq(fclose(f), 0);
}

void tl_write_str(const char *path, const char *s) {
        tl_write_file(path, s, strlen(s));
}

char *tl_read_file(const char *path, size_t *ret_size) {
        uint8_t *data = NULL;
        size_t size = 0;
        int r = se_read_file(path, 256u * 1024u * 1024u, &data, &size);

        ck_assert_msg(r >= 0, "cannot read %s: %s", path, strerror(-r));
        if (ret_size)
                *ret_size = size;
        return (char *) data;
}

char *tl_data_path(const char *rel) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "tests/data/%s", rel), 0);
        return p;
}

bool tl_memmem(const void *hay, size_t h, const void *needle, size_t n) {
        return n > 0 && memmem(hay, h, needle, n) != NULL;
}

int tl_run(const char *cmd, char **ret_out) {
        FILE *p = popen(cmd, "re");
        char *out = NULL;
        size_t len = 0;
        int status;

        if (!p)
                return -1;
        if (ret_out) {
                FILE *m = open_memstream(&out, &len);
                char buf[4096];
                size_t n;

                ck_assert_ptr_nonnull(m);
                while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
                        fwrite(buf, 1, n, m);
                fclose(m);
                *ret_out = out;
        } else {
                char buf[4096];
                while (fread(buf, 1, sizeof(buf), p) > 0)
                        ;
        }
        status = pclose(p);
        if (status < 0 || !WIFEXITED(status))
                return -1;
        return WEXITSTATUS(status);
}

void tl_ck_range_value(const se_kv_list *l, const char *key, const char *value) {
        for (size_t i = 0; i < l->n_items; i++)
                if (streq(l->items[i].key, key)) {
                        ck_assert_uint_eq(l->items[i].value_size, strlen(value));
                        ck_assert_mem_eq(l->items[i].value, value, strlen(value));
                        return;
                }
        ck_abort_msg("%s is not in the range", key);
}
