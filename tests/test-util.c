/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "testlib.h"

START_TEST(test_sha256_hex) {
        char hex[SE_SHA256_HEX_SIZE];

        ck_assert_int_eq(se_sha256_hex("", 0, hex), 0);
        ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        ck_assert_int_eq(se_sha256_hex("abc", 3, hex), 0);
        ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(test_base64_roundtrip) {
        static const char *const cases[][2] = {
                { "", "" },         { "f", "Zg==" },         { "fo", "Zm8=" },
                { "foo", "Zm9v" },  { "foob", "Zm9vYg==" },  { "fooba", "Zm9vYmE=" },
                { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *enc = NULL;
                _cleanup_free_ uint8_t *dec = NULL;
                size_t n = 0;

                ck_assert_int_eq(se_base64_encode(cases[i][0], strlen(cases[i][0]), &enc), 0);
                ck_assert_str_eq(enc, cases[i][1]);
                ck_assert_int_eq(se_base64_decode(enc, strlen(enc), &dec, &n), 0);
                ck_assert_uint_eq(n, strlen(cases[i][0]));
                ck_assert(memcmp(dec, cases[i][0], n) == 0);
        }
}
END_TEST

START_TEST(test_base64_go_rules) {
        _cleanup_free_ uint8_t *d = NULL;
        size_t n;

        /* CR/LF ignored anywhere, as Go's StdEncoding */
        ck_assert_int_eq(se_base64_decode("Zm\r\n9v\n", 7, &d, &n), 0);
        ck_assert_uint_eq(n, 3);
        free(TAKE_PTR(d));
        /* only newlines: zero bytes, not an error */
        ck_assert_int_eq(se_base64_decode("\n", 1, &d, &n), 0);
        ck_assert_uint_eq(n, 0);
        free(TAKE_PTR(d));
        /* padding required, alphabet strict, nothing after padding */
        ck_assert_int_eq(se_base64_decode("Zm8", 3, &d, &n), -EINVAL);
        ck_assert_int_eq(se_base64_decode("Zm-v", 4, &d, &n), -EINVAL);
        ck_assert_int_eq(se_base64_decode("Zg==Zg==", 8, &d, &n), -EINVAL);
        ck_assert_int_eq(se_base64_decode("Z===", 4, &d, &n), -EINVAL);
        ck_assert_int_eq(se_base64_decode("Zm9v YmFy", 9, &d, &n), -EINVAL);
        /* non-zero trailing bits accepted (Go's non-strict mode) */
        ck_assert_int_eq(se_base64_decode("Zh==", 4, &d, &n), 0);
        ck_assert_uint_eq(n, 1);
        free(TAKE_PTR(d));
        /* whole quads go four characters a step, the rest one at a time: a newline or a foreign
         * character inside a quad, and the padded end, all between whole quads */
        ck_assert_int_eq(se_base64_decode("Zm9vYmFy\nZm9\r\nvYmFy/+8=", 23, &d, &n), 0);
        ck_assert_uint_eq(n, 14);
        ck_assert_mem_eq(d, "foobarfoobar\xff\xef", 14);
        free(TAKE_PTR(d));
        ck_assert_int_eq(se_base64_decode("Zm9vYmFyZm9v\x80mFy", 16, &d, &n), -EINVAL);
        ck_assert_int_eq(se_base64_decode("Zm9vYmFyZm9vY=Fy", 16, &d, &n), -EINVAL);
}
END_TEST

START_TEST(test_atomic_write) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *p = tl_path(dir, "f.json");
        _cleanup_free_ char *got = NULL;
        struct stat st;
        size_t n;

        ck_assert_int_eq(se_write_file_atomic(p, "one", 3, 0600), 0);
        ck_assert_int_eq(se_write_file_atomic(p, "second", 6, 0600), 0);
        got = tl_read_file(p, &n);
        ck_assert_uint_eq(n, 6);
        ck_assert_str_eq(got, "second");
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        /* no temp files left behind */
        {
                _cleanup_free_ char *cmd = NULL, *out = NULL;
                ck_assert_int_ge(asprintf(&cmd, "ls -A '%s'", dir), 0);
                ck_assert_int_eq(tl_run(cmd, &out), 0);
                ck_assert_str_eq(out, "f.json\n");
        }
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_read_file_limits) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *p = tl_path(dir, "big"), *l = tl_path(dir, "link");
        _cleanup_free_ uint8_t *d = NULL;
        size_t n;

        tl_write_str(p, "0123456789");
        ck_assert_int_eq(se_read_file(p, 9, &d, &n), -EFBIG);
        ck_assert_int_eq(se_read_file(p, 10, &d, &n), 0);
        ck_assert_uint_eq(n, 10);
        ck_assert_int_eq(symlink(p, l), 0);
        free(TAKE_PTR(d));
        ck_assert_int_eq(se_read_file(l, 100, &d, &n), -ELOOP);
        ck_assert_int_eq(se_read_file(dir, 100, &d, &n), -EISDIR);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_lock_names_holder) {
        char *dir = tl_tmpdir();
        int fd = -1, pipefd[2];
        pid_t pid, holder = 0;
        char c;

        ck_assert_int_eq(pipe(pipefd), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int cfd;
                if (se_lock_dir(dir, 0, &cfd, NULL) < 0)
                        _exit(1);
                (void) write(pipefd[1], "x", 1);
                pause();
                _exit(0);
        }
        ck_assert_int_eq(read(pipefd[0], &c, 1), 1);
        ck_assert_int_eq(se_lock_dir(dir, 50 * 1000, &fd, &holder), -EBUSY);
        ck_assert_int_eq(holder, pid);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* the kernel releases the lock of a killed holder */
        ck_assert_int_eq(se_lock_dir(dir, 1000 * 1000, &fd, &holder), 0);
        se_unlock_dir(fd);
        close(pipefd[0]);
        close(pipefd[1]);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_durations) {
        uint64_t u;
        char buf[64];

        ck_assert_int_eq(se_parse_duration("10m", &u), 0);
        ck_assert_uint_eq(u, 600000000ULL);
        ck_assert_int_eq(se_parse_duration("1h30m", &u), 0);
        ck_assert_uint_eq(u, 5400000000ULL);
        ck_assert_int_eq(se_parse_duration("90d", &u), 0);
        ck_assert_uint_eq(u, 90ULL * 86400000000ULL);
        ck_assert_int_eq(se_parse_duration("15", &u), 0);
        ck_assert_uint_eq(u, 15000000ULL);
        ck_assert_int_eq(se_parse_duration("abc", &u), -EINVAL);
        ck_assert_int_eq(se_parse_duration("5x", &u), -EINVAL);

        ck_assert_int_eq(se_format_go_duration(3000000000LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "3s");
        ck_assert_int_eq(se_format_go_duration(-15000000000LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "-15s");
        ck_assert_int_eq(se_format_go_duration(0, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "0s");
        ck_assert_int_eq(se_format_go_duration(100000000LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "100ms");
        ck_assert_int_eq(se_format_go_duration(90500000000LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "1m30.5s");
        ck_assert_int_eq(se_format_go_duration(3661000000000LL, buf, sizeof(buf)), 0);
        ck_assert_str_eq(buf, "1h1m1s");
}
END_TEST

START_TEST(test_exit_codes) {
        ck_assert_int_eq(se_exit_code_from_errno(-EBADMSG), SE_EXIT_CONFIG);
        ck_assert_int_eq(se_exit_code_from_errno(-ECONNREFUSED), SE_EXIT_UNAVAILABLE);
        ck_assert_int_eq(se_exit_code_from_errno(-EBUSY), SE_EXIT_BUSY);
        ck_assert_int_eq(se_exit_code_from_errno(-ESTALE), SE_EXIT_PRECONDITION);
        ck_assert_int_eq(se_exit_code_from_errno(-ENOKEY), SE_EXIT_UNDECRYPTABLE);
        for (int r = 1; r < 134; r++)
                ck_assert_int_lt(se_exit_code_from_errno(-r), 200);
}
END_TEST

START_TEST(test_error_prefix) {
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(se_error_set(&e, EINVAL, "inner %d", 1), -EINVAL);
        ck_assert_int_eq(se_error_prefix(&e, -EINVAL, "outer"), -EINVAL);
        ck_assert_str_eq(se_error_message(&e), "outer: inner 1");
        se_error_done(&e);
        ck_assert_str_eq(se_error_message(&e), "success");
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_sha256_hex);
        tcase_add_test(tc, test_base64_roundtrip);
        tcase_add_test(tc, test_base64_go_rules);
        tcase_add_test(tc, test_atomic_write);
        tcase_add_test(tc, test_read_file_limits);
        tcase_add_test(tc, test_lock_names_holder);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_exit_codes);
        tcase_add_test(tc, test_error_prefix);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(util_suite)
