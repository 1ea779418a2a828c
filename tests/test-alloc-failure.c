/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Allocation-failure injection (curl's torture idea): every operation is run once to count its
 * allocations, then again with the 1st, 2nd, … N-th allocation failing, until a run sees no
 * injected failure. Each failing run must return an error (-ENOMEM, with a message), not crash,
 * and free everything it took; ASan (make check SANITIZE=1) checks the memory accesses.
 *
 * The binary is linked with -Wl,--wrap for malloc, calloc, realloc, reallocarray, free, strdup,
 * strndup, asprintf and vasprintf (see the Makefile), so the allocations of the library's own
 * code are the ones that fail; those made inside json-c, libyaml, OpenSSL and SQLite are not
 * (their failure paths are their projects' to test).
 *
 *   SE_TEST_ALLOC_STRIDE=N   test every N-th allocation only (default 1)
 */
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reencrypt-helpers.h"
#include "se-config.h"
#include "se-settings.h"
#include "se-state.h"

/* ---- the wrappers ---------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_reallocarray(void *p, size_t n, size_t size);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **ret, const char *fmt, va_list ap);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_reallocarray(void *p, size_t n, size_t size);
void __wrap_free(void *p);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **ret, const char *fmt, va_list ap);
int __wrap_asprintf(char **ret, const char *fmt, ...);

/* Live allocations made while tracking, in an open-addressing set (linear probing, tombstones). */
#define SET_SIZE (1u << 18)
#define TOMB     ((void *) 1)

static void **live, **live_caller;
/* volatile: the compiler takes strdup() and friends for builtins that cannot read our flags */
static volatile size_t n_live;
static volatile bool tracking;
static volatile unsigned long n_allocs, fail_at;
static volatile bool failed;
static void *fail_caller; /* return address of the failed call, for the report */

/* the re-encryption's worker threads allocate too */
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t slot(void *p) {
        return ((uintptr_t) p >> 4) * 2654435761u % SET_SIZE;
}

#define set_add(p) set_add_at((p), __builtin_return_address(0))
static void set_add_at(void *p, void *caller) {
        if (!tracking || !p)
                return;
        pthread_mutex_lock(&set_lock);
        for (size_t i = slot(p);; i = (i + 1) % SET_SIZE)
                if (!live[i] || live[i] == TOMB) {
                        live[i] = p;
                        live_caller[i] = caller;
                        n_live++;
                        break;
                }
        pthread_mutex_unlock(&set_lock);
}

static void set_del(void *p) {
        if (!live || !p)
                return;
        pthread_mutex_lock(&set_lock);
        for (size_t i = slot(p), k = 0; n_live > 0 && live[i] && k < SET_SIZE; i = (i + 1) % SET_SIZE, k++)
                if (live[i] == p) {
                        live[i] = TOMB;
                        n_live--;
                        break;
                }
        pthread_mutex_unlock(&set_lock);
}

static void *fail_stack[24];
static int fail_depth;
#define INJECT()                                                                                       \
        (inject() ? (fail_caller = __builtin_return_address(0), fail_depth = backtrace(fail_stack, 24), true) \
                  : false)

/* the call stack of the failed allocation, as file+offset for addr2line */
static void print_stack(void) {
        char buf[512];
        const char *where(void *addr, char *b, size_t size);

        for (int i = 1; i < fail_depth; i++)
                fprintf(stderr, "alloc-failure:     #%d %s\n", i, where(fail_stack[i], buf, sizeof(buf)));
}

/* true: this allocation fails. */
static bool inject(void) {
        bool fail;

        if (!tracking)
                return false;
        pthread_mutex_lock(&set_lock);
        n_allocs++;
        fail = fail_at && n_allocs == fail_at;
        if (fail)
                failed = true;
        pthread_mutex_unlock(&set_lock);
        return fail;
}

void *__wrap_malloc(size_t n) {
        void *p;

        if (INJECT())
                return NULL;
        p = __real_malloc(n);
        set_add(p);
        return p;
}

void *__wrap_calloc(size_t n, size_t size) {
        void *p;

        if (INJECT())
                return NULL;
        p = __real_calloc(n, size);
        set_add(p);
        return p;
}

void *__wrap_realloc(void *p, size_t n) {
        void *q;

        if (INJECT())
                return NULL;
        q = __real_realloc(p, n);
        if (q) {
                set_del(p);
                set_add(q);
        }
        return q;
}

void *__wrap_reallocarray(void *p, size_t n, size_t size) {
        void *q;

        if (INJECT())
                return NULL;
        q = __real_reallocarray(p, n, size);
        if (q) {
                set_del(p);
                set_add(q);
        }
        return q;
}

void __wrap_free(void *p) {
        set_del(p);
        __real_free(p);
}

char *__wrap_strdup(const char *s) {
        char *p;

        if (INJECT())
                return NULL;
        p = __real_strdup(s);
        set_add(p);
        return p;
}

char *__wrap_strndup(const char *s, size_t n) {
        char *p;

        if (INJECT())
                return NULL;
        p = __real_strndup(s, n);
        set_add(p);
        return p;
}

int __wrap_vasprintf(char **ret, const char *fmt, va_list ap) {
        int r;

        if (INJECT())
                return -1;
        r = __real_vasprintf(ret, fmt, ap);
        if (r >= 0)
                set_add(*ret);
        return r;
}

int __wrap_asprintf(char **ret, const char *fmt, ...) {
        va_list ap;
        int r;

        if (INJECT())
                return -1;
        va_start(ap, fmt);
        r = __real_vasprintf(ret, fmt, ap);
        va_end(ap);
        if (r >= 0)
                set_add(*ret);
        return r;
}

static void track_start(unsigned long n) {
        if (!live) {
                live = __real_calloc(SET_SIZE, sizeof(void *));
                live_caller = __real_calloc(SET_SIZE, sizeof(void *));
                ck_assert_ptr_nonnull(live);
                ck_assert_ptr_nonnull(live_caller);
        }
        memset(live, 0, SET_SIZE * sizeof(void *));
        n_live = 0;
        n_allocs = 0;
        fail_at = n;
        failed = false;
        tracking = true;
}

static void track_stop(void) {
        tracking = false;
}

/* Check's assertions allocate (the binary links Check statically): never inside the window. */
#define PAUSED(stmt)                      \
        do {                              \
                bool _t = tracking;       \
                tracking = false;         \
                stmt;                     \
                tracking = _t;            \
        } while (0)

/* "file+0xoffset" of a code address, for addr2line. */
const char *where(void *addr, char *buf, size_t size);
const char *where(void *addr, char *buf, size_t size) {
        Dl_info info;

        if (addr && dladdr(addr, &info) && info.dli_fname)
                snprintf(buf, size, "%s+%#lx", info.dli_fname, (unsigned long) ((char *) addr - (char *) info.dli_fbase));
        else
                snprintf(buf, size, "%p", addr);
        return buf;
}

static void print_leaks(const char *what) {
        char buf[512];

        for (size_t i = 0, k = 0; i < SET_SIZE && k < 5; i++)
                if (live[i] && live[i] != TOMB) {
                        fprintf(stderr, "alloc-failure: %s: leaked allocation from %s\n", what,
                                where(live_caller[i], buf, sizeof(buf)));
                        k++;
                }
}

/* ---- the driver ------------------------------------------------------------------------------- */

/* One operation: returns 0 or a negative errno, fills e; everything it allocates is freed before
 * it returns (results are checked inside and then freed). */
typedef int (*op_fn)(void *userdata, se_error *e);

typedef struct torture_stats {
        unsigned long allocations, runs, enomem, no_message, other_errors, swallowed;
} torture_stats;

static size_t env_size(const char *name, size_t def) {
        const char *v = getenv(name);
        return v && *v ? (size_t) strtoull(v, NULL, 10) : def;
}

/* Runs op with allocation n failing (0 = none); the error message is copied out of the tracked
 * heap so that only what the operation itself kept counts as a leak. */
static int run_op(op_fn op, void *userdata, unsigned long n, char **ret_msg) {
        se_error e = SE_ERROR_NULL;
        int r;

        track_start(n);
        r = op(userdata, &e);
        track_stop();
        /* what the programs print: the message, else strerror() of the code, else "success" */
        *ret_msg = e.error != 0 ? __real_strdup(se_error_message(&e)) : NULL;
        se_error_done(&e);
        return r;
}

static void torture(const char *what, op_fn op, void *userdata, void (*reset)(void *), torture_stats *ret) {
        torture_stats st = {};
        unsigned long stride = MAX(env_size("SE_TEST_ALLOC_STRIDE", 1), 1ul);
        char *msg = NULL, buf[512];
        int r;

        /* a clean run: it must succeed, leak nothing, and tells how many allocations there are */
        if (reset)
                reset(userdata);
        r = run_op(op, userdata, 0, &msg);
        ck_assert_msg(r >= 0, "%s: the run without failures failed: %s", what, msg);
        if (n_live > 0)
                print_leaks(what);
        ck_assert_msg(n_live == 0, "%s: %zu allocations leaked by a successful run", what, n_live);
        __real_free(msg);
        st.allocations = n_allocs;
        ck_assert_msg(st.allocations > 0, "%s: no allocation seen (is the --wrap link in place?)", what);

        for (unsigned long n = 1;; n += stride) {
                if (reset)
                        reset(userdata);
                r = run_op(op, userdata, n, &msg);
                if (!failed) { /* past the last allocation: the run must now succeed */
                        ck_assert_msg(r >= 0, "%s: failed with no injected failure: %s", what, msg);
                        __real_free(msg);
                        break;
                }
                st.runs++;
                if (n_live > 0)
                        print_leaks(what);
                ck_assert_msg(n_live == 0, "%s: allocation %lu failed (r=%d: %s): %zu allocations leaked", what, n, r,
                              msg, n_live);
                if (r == -ENOMEM && msg && strlen(msg) > 0)
                        st.enomem++;
                else if (r == -ENOMEM) {
                        st.no_message++;
                        fprintf(stderr, "alloc-failure: %s: allocation %lu (at %s): -ENOMEM without an error set\n", what,
                                n, where(fail_caller, buf, sizeof(buf)));
                        print_stack();
                } else if (r < 0) {
                        st.other_errors++;
                        fprintf(stderr, "alloc-failure: %s: allocation %lu (at %s): error %d instead of -ENOMEM: %s\n",
                                what, n, where(fail_caller, buf, sizeof(buf)), r, msg);
                        print_stack();
                } else
                        st.swallowed++; /* the op checked its own output: a tolerated fallback */
                __real_free(msg);
        }
        fprintf(stderr,
                "alloc-failure: %-28s %4lu allocations, %4lu failing runs: %lu -ENOMEM with a message, %lu without, "
                "%lu other errors, %lu succeeded anyway\n",
                what, st.allocations, st.runs, st.enomem, st.no_message, st.other_errors, st.swallowed);
        ck_assert_uint_gt(st.runs, 0);
        ck_assert_msg(st.no_message == 0, "%s: %lu allocation failures without an error message", what, st.no_message);
        /* an allocation failure reported as something else would mislead an operator */
        ck_assert_msg(st.other_errors == 0, "%s: %lu allocation failures reported as another error", what,
                      st.other_errors);
        if (ret)
                *ret = st;
}

/* ---- operations ---------------------------------------------------------------------------------- */

#define K1 "dGhpcyBpcyBhIDMyIGJ5dGUga2V5IGZvciB0ZXN0cyE="
#define K2 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define K3 "MTIzNDU2Nzg5MDEyMzQ1Ng=="

static const char config_json[] =
        "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{"
        "\"resources\":[\"secrets\",\"configmaps\"],\"providers\":["
        "{\"aescbc\":{\"keys\":[{\"name\":\"aescbckey-2024-01-01T00:00:00Z\",\"secret\":\"" K1 "\"},"
        "{\"name\":\"aescbckey\",\"secret\":\"" K2 "\"}]}},"
        "{\"secretbox\":{\"keys\":[{\"name\":\"sb\",\"secret\":\"" K1 "\"}]}},"
        "{\"aesgcm\":{\"keys\":[{\"name\":\"gcm\",\"secret\":\"" K3 "\"}]}},"
        "{\"kms\":{\"apiVersion\":\"v2\",\"name\":\"vault\",\"endpoint\":\"unix:///run/kms.sock\",\"timeout\":\"3s\"}},"
        "{\"identity\":{}}]}]}";

static const char config_yaml[] = "apiVersion: apiserver.config.k8s.io/v1\n"
                                  "kind: EncryptionConfiguration\n"
                                  "resources:\n"
                                  "  - resources:\n"
                                  "      - secrets\n"
                                  "      - '*.apps'\n"
                                  "    providers:\n"
                                  "      - aesgcm:\n"
                                  "          keys:\n"
                                  "            - name: key1\n"
                                  "              secret: " K3 "\n"
                                  "      - aescbc:\n"
                                  "          keys:\n"
                                  "            - name: key2\n"
                                  "              secret: " K1 "\n"
                                  "      - identity: {}\n";

typedef struct parse_case {
        const char *name, *text;
        char *reference; /* the k3s JSON of the clean run's model */
} parse_case;

static int op_parse_validate_write(void *userdata, se_error *e) {
        parse_case *pc = userdata;
        se_config *c = NULL;
        char *json = NULL;
        size_t size;
        int r;

        r = se_config_parse(pc->name, (const uint8_t *) pc->text, strlen(pc->text), &c, e);
        if (r >= 0)
                r = se_config_validate(c, false, e);
        if (r >= 0) {
                r = se_config_to_json(c, &json, &size);
                if (r < 0)
                        se_error_set(e, r, "cannot serialize");
        }
        if (r >= 0) {
                /* a failure that was absorbed must not have changed the result */
                if (!pc->reference) {
                        track_stop();
                        pc->reference = strdup(json);
                        tracking = true;
                } else
                        PAUSED(ck_assert_msg(streq(json, pc->reference), "%s: different model after an absorbed failure",
                                             pc->name));
        }
        free(json);
        se_config_free(c);
        return r;
}

START_TEST(test_parse_json) {
        parse_case pc = { .name = "encryption-config.json", .text = config_json };

        torture("parse+validate+write JSON", op_parse_validate_write, &pc, NULL, NULL);
        free(pc.reference);
}
END_TEST

START_TEST(test_parse_yaml) {
        parse_case pc = { .name = "encryption-config.yaml", .text = config_yaml };

        torture("parse+validate+write YAML", op_parse_validate_write, &pc, NULL, NULL);
        free(pc.reference);
}
END_TEST

static int op_invalid_config(void *userdata, se_error *e) {
        static const char bad[] = "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                                  "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":"
                                  "[{\"name\":\"a:b\",\"secret\":\"c2hvcnQ=\"},{\"name\":\"a:b\",\"secret\":\"\"}]}}]}]}";
        se_config *c = NULL;
        int r;

        r = se_config_parse("bad.json", (const uint8_t *) bad, strlen(bad), &c, e);
        if (r >= 0)
                r = se_config_validate(c, false, e);
        se_config_free(c);
        /* the verdict is "invalid": that is this operation's success */
        if (r == -EBADMSG) {
                PAUSED(ck_assert_int_eq(e->error, -EBADMSG));
                se_error_done(e);
                return 0;
        }
        return r < 0 ? r : -EINVAL;
}

START_TEST(test_invalid_config) {
        torture("validate an invalid config", op_invalid_config, NULL, NULL, NULL);
}
END_TEST

/* Go's JSON scanner and its U+FFFD replacement (issue 16): each input gets its verdict or -ENOMEM. */
static int op_go_json(void *userdata, se_error *e) {
        static const struct {
                const char *text;
                int verdict;
        } inputs[] = {
                { "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"resources\":[{"
                  "\"resources\":[\"secr\xffts\"],\"providers\":[{\"aescbc\":{\"keys\":[{\"name\":\"k\xc0\","
                  "\"secret\":\"c2VjcmV0IGlzIHNlY3VyZQ==\"}]}}]}]}",
                  0 },
                { /* a string, not a number: json-c frees a number's literal, out of the tracker's sight */
                  "{\"kind\":\"EncryptionConfiguration\",\"x\xff\":\"v\",\"apiVersion\":\"apiserver.config.k8s.io/v1\"}",
                  -EBADMSG },
                { "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":1.}", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(inputs); i++) {
                se_config *c = NULL;
                int r;

                r = se_config_parse("go.json", (const uint8_t *) inputs[i].text, strlen(inputs[i].text), &c, e);
                if (r >= 0)
                        r = se_config_validate(c, false, e);
                se_config_free(c);
                if (r == -ENOMEM)
                        return r;
                PAUSED(ck_assert_msg(r == inputs[i].verdict, "input %zu: %d %s", i, r, se_error_message(e)));
                se_error_done(e);
        }
        return 0;
}

START_TEST(test_go_json) {
        torture("Go JSON scanner and UTF-8 replacement", op_go_json, NULL, NULL, NULL);
}
END_TEST

typedef struct settings_case {
        char *path;
} settings_case;

static int op_settings(void *userdata, se_error *e) {
        settings_case *sc = userdata;
        se_settings s;
        int r;

        r = se_settings_init(&s);
        if (r < 0)
                return se_error_set(e, r, "out of memory");
        r = se_settings_load(&s, sc->path, false, e);
        if (r >= 0)
                PAUSED(ck_assert_str_eq(s.node_name, "node-7"));
        se_settings_done(&s);
        return r < 0 ? r : 0;
}

START_TEST(test_settings) {
        _cleanup_free_ char *dir = tl_tmpdir();
        settings_case sc = { .path = tl_path(dir, "config.yaml") };

        tl_write_str(sc.path, "state-dir: /var/lib/x\nnode-name: node-7\ndatastore-endpoint: sqlite:///tmp/x.db\n"
                              "secrets-encryption-provider: secretbox\ntimeout: 1m30s\nreencrypt-rate: 50\n"
                              "auto-advance: true\nhooks-dir: /etc/x/hooks.d\n");
        torture("settings YAML", op_settings, &sc, NULL, NULL);
        free(sc.path);
        tl_tmpdir_remove(TAKE_PTR(dir));
}
END_TEST

/* state directory: load, write a new config and stage, save our own state */
typedef struct state_case {
        char *dir;
        char *good; /* the config file's bytes */
} state_case;

static void state_reset(void *userdata) {
        state_case *sc = userdata;
        _cleanup_free_ char *p = tl_path(sc->dir, "encryption-config.json");
        _cleanup_free_ char *s = tl_path(sc->dir, "encryption-state.json");

        tl_write_str(p, sc->good);
        tl_write_str(s, "start-0000000000000000000000000000000000000000000000000000000000000000");
}

static int op_state(void *userdata, se_error *e) {
        state_case *sc = userdata;
        se_state st;
        int r;

        r = se_state_load(sc->dir, &st, e);
        if (r < 0)
                return r;
        r = se_state_write_config(&st, st.config, e);
        if (r >= 0)
                r = se_state_write_stage(&st, SE_STAGE_PREPARE, e);
        if (r >= 0)
                r = se_state_save_own(&st, e);
        se_state_done(&st);
        return r;
}

START_TEST(test_state) {
        state_case sc = { .dir = tl_tmpdir(), .good = (char *) config_json };

        torture("state load+write", op_state, &sc, state_reset, NULL);
        tl_tmpdir_remove(sc.dir);
}
END_TEST

/* re-encryption of a small kine database, then the prune gate */
#define RE_N 24

typedef struct reencrypt_case {
        char *dir, *template_db, *db;
} reencrypt_case;

static void reencrypt_reset(void *userdata) {
        reencrypt_case *rc = userdata;
        _cleanup_free_ char *data = NULL, *wal = NULL, *shm = NULL;
        _cleanup_free_ char *cp = tl_path(rc->dir, SE_REENCRYPT_CHECKPOINT_FILE);
        size_t size;

        (void) unlink(cp); /* a checkpoint of the last run would skip keys of the fresh copy */
        ck_assert_int_ge(asprintf(&wal, "%s-wal", rc->db), 0);
        ck_assert_int_ge(asprintf(&shm, "%s-shm", rc->db), 0);
        (void) unlink(wal);
        (void) unlink(shm);
        data = tl_read_file(rc->template_db, &size);
        tl_write_file(rc->db, data, size);
}

static int op_reencrypt(void *userdata, se_error *e) {
        reencrypt_case *rc = userdata;
        _cleanup_free_ char *ep = NULL;
        se_store *s = NULL;
        se_config *c = NULL, *after = NULL;
        se_reencrypt_result res = {};
        se_verify_report rep = {};
        int r;

        /* the configs and the endpoint string are set up outside the failing window */
        track_stop();
        c = rt_config("aescbc:new,old;identity");
        after = rt_config("aescbc:new;identity");
        ep = rt_sqlite_endpoint(rc->db);
        tracking = true;

        r = se_store_open(&(se_store_options){ .endpoint = ep }, &s, e);
        if (r >= 0)
                r = se_reencrypt(s, c,
                                 &(se_reencrypt_options){ .state_dir = rc->dir, .page_size = 7, .batch_size = 5 },
                                 &res, e);
        if (r >= 0) {
                PAUSED(ck_assert_uint_eq(res.total, RE_N));
                r = se_prune_check(s, after, NULL, &rep, e);
        }
        if (r >= 0)
                PAUSED(ck_assert_uint_eq(rep.total, RE_N));
        se_verify_report_done(&rep);
        se_reencrypt_result_done(&res);
        se_store_close(s);

        track_stop();
        se_config_free(c);
        se_config_free(after);
        free(TAKE_PTR(ep));
        tracking = true;
        return r;
}

START_TEST(test_reencrypt) {
        reencrypt_case rc = { .dir = tl_tmpdir() };
        sqlite3 *db;

        rc.template_db = tl_path(rc.dir, "template.db");
        rc.db = tl_path(rc.dir, "state.db");
        db = tk_create(rc.template_db, true);
        rt_seed(db, "aescbc:old", 0, RE_N, 0, 100);
        tk_close(db);

        torture("re-encrypt + prune check", op_reencrypt, &rc, reencrypt_reset, NULL);
        free(rc.template_db);
        free(rc.db);
        tl_tmpdir_remove(rc.dir);
}
END_TEST

static Suite *alloc_suite(void) {
        Suite *s = suite_create("alloc-failure");
        TCase *tc = tcase_create("torture");

        tcase_set_timeout(tc, 300);
        tcase_add_test(tc, test_parse_json);
        tcase_add_test(tc, test_go_json);
        tcase_add_test(tc, test_parse_yaml);
        tcase_add_test(tc, test_invalid_config);
        tcase_add_test(tc, test_settings);
        tcase_add_test(tc, test_state);
        tcase_add_test(tc, test_reencrypt);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(alloc_suite)
