/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"
#include "se-fleet-hooks.h"
#include "se-settings.h"
#include "se-util.h"
#include "testlib.h"

/* Captured events (the sink replaces journald/stderr). */
static int n_fleet_failed, n_events;
static char last_failure[512];

static void sink(const se_log_record *rec, void *userdata) {
        if (rec->type < 0)
                return;
        n_events++;
        if (rec->type == SE_EVENT_FLEET_HOOK_FAILED) {
                const char *m = se_log_record_get(rec, "MESSAGE");

                n_fleet_failed++;
                snprintf(last_failure, sizeof(last_failure), "%s", m ? m : "");
        }
}

static void setup(void) {
        n_fleet_failed = n_events = 0;
        last_failure[0] = 0;
        se_log_set_sink(sink, NULL);
}

static void teardown(void) {
        se_fleet_observer_remove();
        se_log_set_sink(NULL, NULL);
}

static void script(const char *dir, const char *name, const char *body, mode_t mode) {
        _cleanup_free_ char *p = tl_path(dir, name);
        _cleanup_free_ char *text = NULL;

        ck_assert_int_ge(asprintf(&text, "#!/bin/sh\n%s\n", body), 0);
        tl_write_str(p, text);
        ck_assert_int_eq(chmod(p, mode), 0);
}

static bool process_running(pid_t pid) {
        for (int i = 0; i < 200; i++) {
                _cleanup_free_ char *path = NULL;
                char buf[512] = {}, *p;
                FILE *f;

                ck_assert_int_ge(asprintf(&path, "/proc/%d/stat", (int) pid), 0);
                f = fopen(path, "re");
                if (!f)
                        return false;
                (void) !fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                p = strrchr(buf, ')');
                if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
                        return false;
                usleep(10000);
        }
        return true;
}

START_TEST(test_name_filter) {
        static const char *const good[] = { "10-notify", "slack", "a.sh", "z_last" };
        static const char *const bad[] = { ".hidden", "notify~", "#notify#", "x.bak", "x.swp", "x.orig",
                                           "x.dpkg-old", "x.dpkg-new", "x.rpmnew", "x.rpmsave", "x.ucf-dist", "" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(se_fleet_hook_name_is_valid(good[i]), "%s", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(!se_fleet_hook_name_is_valid(bad[i]), "%s", bad[i]);
        ck_assert(!se_fleet_hook_name_is_valid(NULL));
}
END_TEST

START_TEST(test_run_order_env_failures_timeout) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *hooks = tl_path(dir, "hooks.d"), *log = tl_path(dir, "order.log"),
                            *env = tl_path(dir, "env.log"), *in = tl_path(dir, "stdin.log"),
                            *pidf = tl_path(dir, "hang.pid"), *sub = NULL, *body = NULL, *text = NULL;
        se_fleet_event ev = {
                .event = "stage-changed",
                .message_id = "b1db07f8234e4246a18e3d3193f89a55",
                .stage = "rotate",
                .previous_stage = "prepare",
                .hash = "abc123",
                .node = "node-1",
        };
        unsigned ran = 0;
        uint64_t t0;
        long pid = 0;
        FILE *f;
        int r;

        ck_assert_int_eq(mkdir(hooks, 0755), 0);
        ck_assert_int_ge(asprintf(&body,
                                  "echo 20-record >> %s\nenv | grep '^SECRETS_ENCRYPT_' | sort > %s\ncat > %s", log,
                                  env, in),
                         0);
        script(hooks, "20-record", body, 0755);
        free(body);
        ck_assert_int_ge(asprintf(&body, "echo 10-fail >> %s\nexit 3", log), 0);
        script(hooks, "10-fail", body, 0755);
        free(body);
        /* a child in the hook's process group must die with it */
        ck_assert_int_ge(asprintf(&body, "echo 30-hang >> %s\nsleep 60 &\necho $! > %s\nwait\necho never >> %s", log,
                                  pidf, log),
                         0);
        script(hooks, "30-hang", body, 0755);
        free(body);
        ck_assert_int_ge(asprintf(&body, "echo skipped >> %s", log), 0);
        script(hooks, "15-not-executable", body, 0644);
        script(hooks, ".05-dotfile", body, 0755);
        script(hooks, "25-backup~", body, 0755);
        script(hooks, "26-old.dpkg-old", body, 0755);
        sub = tl_path(hooks, "40-directory");
        ck_assert_int_eq(mkdir(sub, 0755), 0);

        /* a stale value in our own environment is replaced, others are kept */
        setenv("SECRETS_ENCRYPT_STAGE", "stale", 1);
        setenv("SECRETS_ENCRYPT_CONFIG", "/etc/x.yaml", 1);
        t0 = se_now_usec(CLOCK_MONOTONIC);
        r = se_fleet_hooks_run(hooks, &ev, 500 * 1000, &ran);
        unsetenv("SECRETS_ENCRYPT_STAGE");
        unsetenv("SECRETS_ENCRYPT_CONFIG");
        ck_assert_int_eq(r, 2);
        ck_assert_uint_eq(ran, 3);
        ck_assert_uint_lt(se_now_usec(CLOCK_MONOTONIC) - t0, 10ULL * 1000000ULL);
        ck_assert_int_eq(n_fleet_failed, 2);
        ck_assert_msg(strstr(last_failure, "30-hang") && strstr(last_failure, "timed out"), "%s", last_failure);

        text = tl_read_file(log, NULL);
        ck_assert_str_eq(text, "10-fail\n20-record\n30-hang\n");
        free(text);
        text = tl_read_file(env, NULL);
        ck_assert_str_eq(text, "SECRETS_ENCRYPT_CONFIG=/etc/x.yaml\n"
                               "SECRETS_ENCRYPT_EVENT=stage-changed\n"
                               "SECRETS_ENCRYPT_HASH=abc123\n"
                               "SECRETS_ENCRYPT_MESSAGE_ID=b1db07f8234e4246a18e3d3193f89a55\n"
                               "SECRETS_ENCRYPT_NODE=node-1\n"
                               "SECRETS_ENCRYPT_PREVIOUS_STAGE=prepare\n"
                               "SECRETS_ENCRYPT_STAGE=rotate\n");
        free(text);
        text = tl_read_file(in, NULL);
        ck_assert_str_eq(text, ""); /* stdin is /dev/null */

        /* the hanging hook's sleep was killed with its process group (gone, or a zombie not yet
         * reaped by its new parent) */
        f = fopen(pidf, "re");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fscanf(f, "%ld", &pid), 1);
        fclose(f);
        ck_assert(!process_running((pid_t) pid));
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_missing_dir_and_signal) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *missing = tl_path(dir, "none");
        se_fleet_event ev = { .event = "reencrypt-failed", .error = "boom" };
        unsigned ran = 7;

        ck_assert_int_eq(se_fleet_hooks_run(missing, &ev, 0, &ran), 0);
        ck_assert_uint_eq(ran, 0);
        ck_assert_int_eq(se_fleet_hooks_run(NULL, &ev, 0, &ran), 0);

        script(dir, "killed", "kill -TERM $$", 0755);
        ck_assert_int_eq(se_fleet_hooks_run(dir, &ev, 0, &ran), 1);
        ck_assert_uint_eq(ran, 1);
        ck_assert_msg(strstr(last_failure, "signal TERM"), "%s", last_failure);
        tl_tmpdir_remove(dir);
}
END_TEST

/* The observer: hooks on stage-changed and failure events, metrics on every event, no recursion
 * when a hook fails (its fleet-hook-failed event is not observed again). */
START_TEST(test_observer) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *hooks = tl_path(dir, "hooks.d"), *state = tl_path(dir, "state"),
                            *metrics = tl_path(dir, "m.prom"), *log = tl_path(dir, "events.log"), *body = NULL,
                            *text = NULL;
        se_error e = SE_ERROR_NULL;
        se_settings s;

        ck_assert_int_eq(mkdir(hooks, 0755), 0);
        ck_assert_int_eq(mkdir(state, 0700), 0);
        ck_assert_int_eq(se_settings_init(&s), 0);
        ck_assert_int_eq(se_settings_set(&s, "state-dir", state, &e), 0);
        ck_assert_int_eq(se_settings_set(&s, "hooks-dir", hooks, &e), 0);
        ck_assert_int_eq(se_settings_set(&s, "metrics-file", metrics, &e), 0);
        ck_assert_int_eq(se_settings_set(&s, "node-name", "obs-node", &e), 0);
        ck_assert_int_ge(asprintf(&body, "echo \"$SECRETS_ENCRYPT_EVENT $SECRETS_ENCRYPT_NODE "
                                         "${SECRETS_ENCRYPT_ERROR-unset}\" >> %s\nexit 1",
                                  log),
                         0);
        script(hooks, "50-log", body, 0755);

        se_fleet_observer_install(&s);
        (void) se_event(SE_EVENT_KEY_ADDED, SE_MESSAGE("key added"), SE_FIELD("SECRETS_ENCRYPT_KEY_NAME=k"));
        ck_assert_int_eq(access(log, F_OK), -1); /* not a hook event */
        ck_assert_int_eq(access(metrics, F_OK), 0);
        (void) se_event(SE_EVENT_REENCRYPT_PROGRESS, SE_MESSAGE("progress"), SE_FIELD("SECRETS_ENCRYPT_DONE=5"),
                        SE_FIELD("SECRETS_ENCRYPT_TOTAL=10"));
        text = tl_read_file(metrics, NULL);
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_reencrypt_done 5\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_reencrypt_total 10\n"));
        free(text);
        (void) se_event(SE_EVENT_STAGE_CHANGED, SE_MESSAGE("stage"), SE_FIELD("SECRETS_ENCRYPT_STAGE=prepare"),
                        SE_FIELD("SECRETS_ENCRYPT_PREVIOUS_STAGE=start"));
        (void) se_event(SE_EVENT_REENCRYPT_FAILED, SE_MESSAGE("failed"), SE_FIELD("SECRETS_ENCRYPT_ERROR=disk full"));
        (void) se_event(SE_EVENT_HASHES_CONVERGED, SE_MESSAGE("converged"));
        text = tl_read_file(log, NULL);
        ck_assert_str_eq(text, "stage-changed obs-node unset\nreencrypt-failed obs-node disk full\n");
        free(text);
        ck_assert_int_eq(n_fleet_failed, 2); /* logged, once each */

        /* the counts survive into a later process through the file */
        se_fleet_observer_remove();
        se_fleet_observer_install(&s);
        ck_assert_int_eq(se_fleet_metrics_refresh(&s, &e), 0);
        text = tl_read_file(metrics, NULL);
        ck_assert_ptr_nonnull(strstr(text, "\nsecrets_encrypt_reencrypt_done 5\n"));
        free(text);

        se_fleet_observer_remove();
        (void) se_event(SE_EVENT_STAGE_CHANGED, SE_MESSAGE("stage"), SE_FIELD("SECRETS_ENCRYPT_STAGE=rotate"));
        text = tl_read_file(log, NULL);
        ck_assert_uint_eq(strlen(text), strlen("stage-changed obs-node unset\nreencrypt-failed obs-node disk full\n"));
        se_settings_done(&s);
        se_error_done(&e);
        tl_tmpdir_remove(dir);
}
END_TEST

static Suite *fleet_hooks_suite(void) {
        Suite *s = suite_create("fleet-hooks");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_name_filter);
        tcase_add_test(tc, test_run_order_env_failures_timeout);
        tcase_add_test(tc, test_missing_dir_and_signal);
        tcase_add_test(tc, test_observer);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(fleet_hooks_suite)
