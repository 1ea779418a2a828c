/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The trust check on files that steer what runs as root, and the process hardening (issue 16). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "se-metrics.h"
#include "testlib.h"

/* A uid that is neither root nor us (the suite runs as root or as a user). */
static uid_t other_uid(void) {
        return geteuid() == 65534 ? 65533 : 65534;
}

static void assert_refused(int r, const se_error *e, const char *path, const char *what) {
        _cleanup_free_ char *fix = NULL;

        ck_assert_int_eq(r, -EPERM);
        ck_assert_ptr_nonnull(e->message);
        ck_assert_msg(strstr(e->message, path), "message names the path: %s", e->message);
        ck_assert_msg(strstr(e->message, what), "message names what is wrong (%s): %s", what, e->message);
        ck_assert_int_ge(asprintf(&fix, "chown root:root %s; chmod go-w %s", path, path), 0);
        ck_assert_msg(strstr(e->message, fix), "message gives the fix: %s", e->message);
}

START_TEST(test_owner_and_mode) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *f = tl_path(dir, "settings.yaml"), *d = tl_path(dir, "hooks.d");
        se_error e = SE_ERROR_NULL;

        tl_write_str(f, "node-name: a\n");
        ck_assert_int_eq(mkdir(d, 0755), 0);
        ck_assert_int_eq(chmod(f, 0644), 0);
        ck_assert_int_eq(se_trust_check_at(AT_FDCWD, f, NULL, "settings file", &e), 0);
        ck_assert_int_eq(se_trust_check_at(AT_FDCWD, d, NULL, "hooks-dir", &e), 0);
        ck_assert_ptr_null(e.message);

        /* writable by the group, by others, by both */
        ck_assert_int_eq(chmod(f, 0664), 0);
        assert_refused(se_trust_check_at(AT_FDCWD, f, NULL, "settings file", &e), &e, f, "writable by its group");
        ck_assert_int_eq(chmod(f, 0646), 0);
        assert_refused(se_trust_check_at(AT_FDCWD, f, NULL, "settings file", &e), &e, f, "writable by others");
        ck_assert_int_eq(chmod(d, 01777), 0); /* sticky does not help: others still add files */
        assert_refused(se_trust_check_at(AT_FDCWD, d, NULL, "hooks-dir", &e), &e, d, "group and others");
        ck_assert_int_eq(chmod(d, 0755), 0);
        ck_assert_int_eq(chmod(f, 0600), 0);

        /* owned by someone else (needs root to give it away) */
        if (geteuid() == 0) {
                _cleanup_free_ char *who = NULL;

                ck_assert_int_eq(chown(f, other_uid(), 0), 0);
                ck_assert_int_ge(asprintf(&who, "owned by uid %u, not root", (unsigned) other_uid()), 0);
                assert_refused(se_trust_check_at(AT_FDCWD, f, NULL, "settings file", &e), &e, f, who);
                ck_assert_int_eq(chown(f, 0, 0), 0);
        }

        /* missing: -ENOENT, with a message */
        ck_assert_int_eq(se_trust_check_at(AT_FDCWD, "/nonexistent/x", NULL, "state-dir", &e), -ENOENT);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "/nonexistent/x"));
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

/* A symlink is checked itself (its owner) and then what it points to, without a second lookup. */
START_TEST(test_symlink) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *target = tl_path(dir, "hook"), *link = tl_path(dir, "link");
        se_error e = SE_ERROR_NULL;

        tl_write_str(target, "#!/bin/sh\n");
        ck_assert_int_eq(chmod(target, 0755), 0);
        ck_assert_int_eq(symlink(target, link), 0);
        ck_assert_int_eq(se_trust_check_at(AT_FDCWD, link, NULL, "fleet hook", &e), 0);
        ck_assert_int_eq(chmod(target, 0777), 0);
        assert_refused(se_trust_check_at(AT_FDCWD, link, NULL, "fleet hook", &e), &e, link, "writable by");
        ck_assert_int_eq(chmod(target, 0755), 0);
        if (geteuid() == 0) {
                ck_assert_int_eq(lchown(link, other_uid(), 0), 0);
                assert_refused(se_trust_check_at(AT_FDCWD, link, NULL, "fleet hook", &e), &e, link, "owned by uid");
        }
        /* relative to a directory, named as the caller shows it */
        {
                _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                ck_assert_int_ge(dfd, 0);
                ck_assert_int_eq(chmod(target, 0775), 0);
                assert_refused(se_trust_check_at(dfd, "hook", target, "fleet hook", &e), &e, target, "its group");
        }
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

/* The read checks the descriptor it reads, and a FIFO neither blocks nor is read. */
START_TEST(test_read_trusted) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *f = tl_path(dir, "encryption-config.json"), *fifo = tl_path(dir, "fifo");
        _cleanup_free_ uint8_t *data = NULL;
        se_error e = SE_ERROR_NULL;
        size_t size;

        tl_write_str(f, "{}");
        ck_assert_int_eq(chmod(f, 0600), 0);
        ck_assert_int_eq(se_read_trusted_file(f, 1024, "encryption configuration", &data, &size, &e), 0);
        ck_assert_uint_eq(size, 2);
        free(TAKE_PTR(data));
        ck_assert_int_eq(chmod(f, 0620), 0);
        assert_refused(se_read_trusted_file(f, 1024, "encryption configuration", &data, &size, &e), &e, f,
                       "writable by its group");
        ck_assert_ptr_null(data);

        /* nothing writes to the FIFO: a blocking open would hang the test (Check's timeout fails it) */
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(se_read_trusted_file(fifo, 1024, "settings file", &data, &size, &e), -EBADFD);
        ck_assert_int_eq(se_read_file(fifo, 1024, &data, &size), -EBADFD);
        ck_assert_int_eq(se_read_trusted_file("/nonexistent", 1024, "settings file", &data, &size, &e), -ENOENT);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

/* A FIFO at the metrics file is neither read nor waited for; a regular file is read once per
 * process. */
START_TEST(test_metrics_fifo) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *fifo = tl_path(dir, "m.prom");
        uint64_t done = 7, total = 9;
        se_error e = SE_ERROR_NULL;

        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        se_metrics_forget_previous();
        se_metrics_previous_counts(fifo, &done, &total);
        ck_assert_uint_eq(done, 7);
        ck_assert_uint_eq(total, 9);
        se_metrics_set_hook_result(true, 1714561000);
        ck_assert_int_eq(se_metrics_write_hook_result(fifo, &e), -EBADFD);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), fifo));
        se_metrics_set_hook_result(false, -1);
        se_error_done(&e);

        /* a regular file is read once, not at every event */
        {
                _cleanup_free_ char *f = tl_path(dir, "r.prom");

                tl_write_str(f, "secrets_encrypt_reencrypt_done 5\nsecrets_encrypt_reencrypt_total 6\n");
                se_metrics_forget_previous();
                se_metrics_previous_counts(f, &done, &total);
                ck_assert_uint_eq(done, 5);
                ck_assert_uint_eq(total, 6);
                tl_write_str(f, "secrets_encrypt_reencrypt_done 7\nsecrets_encrypt_reencrypt_total 8\n");
                se_metrics_previous_counts(f, &done, &total);
                ck_assert_uint_eq(done, 5);
                se_metrics_forget_previous();
                se_metrics_previous_counts(f, &done, &total);
                ck_assert_uint_eq(done, 7);
                ck_assert_uint_eq(total, 8);
        }
        se_metrics_forget_previous();
        tl_tmpdir_remove(dir);
}
END_TEST

static bool smaps_dontdump(const void *p) {
        _cleanup_free_ char *text = tl_read_file("/proc/self/smaps", NULL);
        uintptr_t a = (uintptr_t) p;
        bool inside = false;

        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                unsigned long lo, hi;

                if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
                        inside = a >= lo && a < hi;
                else if (inside && startswith(line, "VmFlags:"))
                        return strstr(line, " dd") != NULL;
        }
        return false;
}

/* In a child: the calling process must stay dumpable for the other tests. */
START_TEST(test_process_harden) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                struct rlimit rl;
                void *key = malloc(64 * 1024);

                if (!key || prctl(PR_GET_DUMPABLE) != 1)
                        _exit(10);
                if (se_process_harden() < 0)
                        _exit(11);
                if (prctl(PR_GET_DUMPABLE) != 0)
                        _exit(12);
                if (getrlimit(RLIMIT_CORE, &rl) < 0 || rl.rlim_cur != 0 || rl.rlim_max != 0)
                        _exit(13);
                if (smaps_dontdump(key))
                        _exit(14);
                se_dontdump(key, 64 * 1024);
                if (!smaps_dontdump(key))
                        _exit(15);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child check %d failed",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

static Suite *trust_suite(void) {
        Suite *s = suite_create("trust");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_owner_and_mode);
        tcase_add_test(tc, test_symlink);
        tcase_add_test(tc, test_read_trusted);
        tcase_add_test(tc, test_metrics_fifo);
        tcase_add_test(tc, test_process_harden);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(trust_suite)
