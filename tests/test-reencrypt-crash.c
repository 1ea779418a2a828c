/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kill -9 of a process running the re-encryption at many points (after the n-th page read, the
 * n-th committed batch, the n-th checkpoint write, and at random times), then a rerun, then the
 * invariants: every value readable with the new key alone, plaintexts intact, the count unchanged,
 * and exactly one new row per secret (nothing lost, nothing rewritten twice).
 *
 *   SE_TEST_CRASH_TIMED=N   random-time kills (default 16; 6 under SE_SANITIZE=1)
 *   SE_TEST_CRASH_STRIDE=N  kill at every N-th step (default 1; 3 under SE_SANITIZE=1)
 *   SE_TEST_CRASH_SECRETS=N secrets in the store (default 400; page 40, batch 20)
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reencrypt-helpers.h"

#define PAGE 40
#define BATCH 20

typedef struct crash_env {
        char *dir, *template_db, *db, *state;
        size_t n;
        int64_t template_rows;
} crash_env;

static size_t env_size(const char *name, size_t def) {
        const char *v = getenv(name);
        return v && *v ? (size_t) strtoull(v, NULL, 10) : def;
}

static bool sanitized(void) {
        const char *v = getenv("SE_SANITIZE");
        return v && streq(v, "1");
}

static void env_init(crash_env *c) {
        sqlite3 *db;

        *c = (crash_env){ .n = env_size("SE_TEST_CRASH_SECRETS", 400) };
        c->dir = tl_tmpdir();
        c->template_db = tl_path(c->dir, "template.db");
        c->db = tl_path(c->dir, "state.db");
        c->state = tl_path(c->dir, "state");
        ck_assert_int_eq(mkdir(c->state, 0700), 0);
        db = tk_create(c->template_db, true);
        rt_seed(db, "aescbc:a", 0, c->n, 0, RT_PLAIN_SIZE);
        c->template_rows = tk_row_count(db);
        tk_close(db);
}

static void env_done(crash_env *c) {
        free(c->template_db);
        free(c->db);
        free(c->state);
        tl_tmpdir_remove(c->dir);
}

static void remove_suffixed(const char *path, const char *suffix) {
        _cleanup_free_ char *p = NULL;

        ck_assert_int_ge(asprintf(&p, "%s%s", path, suffix), 0);
        (void) unlink(p);
}

/* A fresh copy of the seeded database and an empty state directory. */
static void env_reset(crash_env *c) {
        _cleanup_free_ char *data = NULL, *cp = tl_path(c->state, SE_REENCRYPT_CHECKPOINT_FILE);
        size_t size;

        remove_suffixed(c->db, "-wal");
        remove_suffixed(c->db, "-shm");
        (void) unlink(cp);
        data = tl_read_file(c->template_db, &size);
        tl_write_file(c->db, data, size);
}

static int run_engine(crash_env *c, bool *ret_resumed, se_error *e) {
        se_store *s = rt_store_open(c->db);
        se_config *cfg = rt_config("aescbc:b,a");
        se_reencrypt_result res = {};
        int r;

        r = se_reencrypt(s, cfg,
                         &(se_reencrypt_options){ .state_dir = c->state, .page_size = PAGE, .batch_size = BATCH },
                         &res, e);
        if (ret_resumed)
                *ret_resumed = res.resumed;
        se_reencrypt_result_done(&res);
        se_config_free(cfg);
        se_store_close(s);
        return r;
}

/* Child: runs the engine with the kill hook (if any); exits 0 when it completed. */
static pid_t spawn(crash_env *c, const char *kill_spec) {
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                se_error e = SE_ERROR_NULL;

                if (kill_spec)
                        setenv("SE_TEST_REENCRYPT_KILL", kill_spec, 1);
                if (run_engine(c, NULL, &e) < 0) {
                        fprintf(stderr, "child: %s\n", se_error_message(&e));
                        _exit(1);
                }
                _exit(0);
        }
        return pid;
}

/* After a crash: rerun to completion, then check every invariant. */
static void rerun_and_check(crash_env *c, const char *what) {
        _cleanup_free_ char *cp = tl_path(c->state, SE_REENCRYPT_CHECKPOINT_FILE);
        se_error e = SE_ERROR_NULL;
        bool had_checkpoint = access(cp, F_OK) == 0, resumed = false;
        se_verify_report rep = {};
        se_config *after = rt_config("aescbc:b");
        sqlite3 *db;
        se_store *s;

        ck_assert_msg(run_engine(c, &resumed, &e) == 0, "%s: rerun failed: %s", what, se_error_message(&e));
        ck_assert_msg(resumed == had_checkpoint, "%s: resumed=%d with checkpoint=%d", what, resumed, had_checkpoint);
        ck_assert_msg(access(cp, F_OK) < 0, "%s: checkpoint left after completion", what);

        db = tk_open(c->db);
        ck_assert_msg(tk_kine_count(db, RT_PREFIX) == (int64_t) c->n, "%s: count changed", what);
        /* one superseding row per secret: nothing lost, nothing rewritten twice */
        ck_assert_msg(tk_row_count(db) == c->template_rows + (int64_t) c->n, "%s: %" PRId64 " new rows for %zu secrets",
                      what, tk_row_count(db) - c->template_rows, c->n);
        tk_close(db);

        s = rt_store_open(c->db);
        rt_check_store(s, "aescbc:b", c->n, NULL, RT_PLAIN_SIZE, "b");
        ck_assert_int_eq(se_prune_check(s, after, NULL, &rep, &e), 0);
        ck_assert_uint_eq(rep.total, c->n);
        se_verify_report_done(&rep);
        se_store_close(s);
        se_config_free(after);
        se_error_done(&e);
}

static void kill_at(crash_env *c, const char *point, unsigned n) {
        _cleanup_free_ char *spec = NULL;
        int status;
        pid_t pid;

        ck_assert_int_ge(asprintf(&spec, "%s:%u", point, n), 0);
        env_reset(c);
        pid = spawn(c, spec);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "%s: child was not killed (status %d)", spec,
                      status);
        rerun_and_check(c, spec);
}

START_TEST(test_kill_at_every_step) {
        crash_env c;
        size_t batches, pages, points = 0;
        unsigned stride = (unsigned) MAX(env_size("SE_TEST_CRASH_STRIDE", sanitized() ? 3 : 1), 1u);

        env_init(&c);
        batches = (c.n + BATCH - 1) / BATCH;
        pages = (c.n + PAGE - 1) / PAGE;
        for (unsigned i = 1; i <= pages; i += stride, points++)
                kill_at(&c, "read", i);
        for (unsigned i = 1; i <= batches; i += stride, points++)
                kill_at(&c, "update", i);
        for (unsigned i = 1; i <= batches; i += stride, points++)
                kill_at(&c, "checkpoint", i);
        fprintf(stderr, "crash: %zu kill points at steps passed\n", points);
        env_done(&c);
}
END_TEST

START_TEST(test_kill_at_random_times) {
        crash_env c;
        size_t n_kills = env_size("SE_TEST_CRASH_TIMED", sanitized() ? 6 : 16), killed = 0;
        uint64_t t0, full;
        unsigned seed = (unsigned) time(NULL);
        int status;
        pid_t pid;

        env_init(&c);
        /* how long an uninterrupted run takes, to spread the kills over it */
        env_reset(&c);
        t0 = se_now_usec(CLOCK_MONOTONIC);
        pid = spawn(&c, NULL);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        full = se_now_usec(CLOCK_MONOTONIC) - t0;
        rerun_and_check(&c, "uninterrupted");

        fprintf(stderr, "crash: random kills over %" PRIu64 " us, seed %u\n", full, seed);
        for (size_t i = 0; i < n_kills; i++) {
                /* the first half: a loaded machine makes the measured run look longer than the next */
                useconds_t delay = (useconds_t) ((uint64_t) rand_r(&seed) % (full / 2 + 1));

                env_reset(&c);
                pid = spawn(&c, NULL);
                usleep(delay);
                (void) kill(pid, SIGKILL);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                if (WIFSIGNALED(status))
                        killed++;
                else
                        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed (status %d)",
                                      status);
                rerun_and_check(&c, "timed");
        }
        fprintf(stderr, "crash: %zu of %zu timed kills hit a running child\n", killed, n_kills);
        ck_assert_uint_gt(killed, 0);
        env_done(&c);
}
END_TEST

/* A second crash while resuming must be just as harmless. */
START_TEST(test_kill_during_resume) {
        crash_env c;
        int status;
        pid_t pid;

        env_init(&c);
        for (unsigned first = 3; first <= 15; first += 6) {
                _cleanup_free_ char *spec = NULL;

                env_reset(&c);
                ck_assert_int_ge(asprintf(&spec, "update:%u", first), 0);
                pid = spawn(&c, spec);
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status));
                pid = spawn(&c, "checkpoint:2");
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFSIGNALED(status));
                rerun_and_check(&c, "double crash");
        }
        env_done(&c);
}
END_TEST

static Suite *crash_suite(void) {
        Suite *s = suite_create("reencrypt-crash");
        TCase *tc = tcase_create("kine");

        tcase_set_timeout(tc, 600);
        tcase_add_test(tc, test_kill_at_every_step);
        tcase_add_test(tc, test_kill_at_random_times);
        tcase_add_test(tc, test_kill_during_resume);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(crash_suite)
