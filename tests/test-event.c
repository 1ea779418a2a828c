/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-event.h"
#include "testlib.h"

#define CATALOG "units/secrets-encrypt.catalog"

/* Capture sink: a copy of every record. */
typedef struct captured {
        int type;
        int priority;
        size_t n;
        char *fields[64];
} captured;

static captured cap[16];
static size_t n_cap;

static void capture_sink(const se_log_record *r, void *userdata) {
        captured *c;

        ck_assert_ptr_eq(userdata, cap);
        ck_assert_uint_lt(n_cap, ELEMENTSOF(cap));
        c = &cap[n_cap++];
        c->type = r->type;
        c->priority = r->priority;
        c->n = r->n_iov;
        ck_assert_uint_le(r->n_iov, ELEMENTSOF(c->fields));
        for (size_t i = 0; i < r->n_iov; i++) {
                const char *s = r->iov[i].iov_base;
                /* the documented guarantee: NUL just past iov_len */
                ck_assert_int_eq(s[r->iov[i].iov_len], 0);
                c->fields[i] = strndup(s, r->iov[i].iov_len);
        }
}

static void capture_start(void) {
        n_cap = 0;
        se_log_set_sink(capture_sink, cap);
}

static void capture_stop(void) {
        se_log_set_sink(NULL, NULL);
        for (size_t i = 0; i < n_cap; i++)
                for (size_t j = 0; j < cap[i].n; j++)
                        free(cap[i].fields[j]);
        n_cap = 0;
}

static const char *cap_get(const captured *c, const char *field) {
        size_t l = strlen(field);
        const char *found = NULL;

        for (size_t i = 0; i < c->n; i++)
                if (strneq(c->fields[i], field, l) && c->fields[i][l] == '=') {
                        ck_assert_msg(!found, "field %s appears twice", field);
                        found = c->fields[i] + l + 1;
                }
        return found;
}

static bool is_id128(const char *s) {
        if (strlen(s) != 32)
                return false;
        for (size_t i = 0; i < 32; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

START_TEST(test_table) {
        for (int i = 0; i < _SE_EVENT_MAX; i++) {
                const se_event_info *a = se_event_get_info(i);

                ck_assert_ptr_nonnull(a);
                ck_assert_msg(is_id128(a->id), "event %d: MESSAGE_ID '%s' not 32 lowercase hex", i, a->id);
                ck_assert_int_ge(a->priority, LOG_EMERG);
                ck_assert_int_le(a->priority, LOG_DEBUG);
                ck_assert_ptr_nonnull(a->name);
                ck_assert_int_eq(se_event_from_id(a->id), i);
                ck_assert_int_eq(se_event_from_name(a->name), i);
                for (int j = 0; j < i; j++) {
                        ck_assert_str_ne(se_event_get_info(j)->id, a->id);
                        ck_assert_str_ne(se_event_get_info(j)->name, a->name);
                }
        }
        ck_assert_ptr_null(se_event_get_info(_SE_EVENT_MAX));
        ck_assert_ptr_null(se_event_get_info(-1));
        ck_assert_int_eq(se_event_from_id("00000000000000000000000000000000"), -ENOENT);
        ck_assert_int_eq(se_event_from_name("no-such-event"), -ENOENT);
        ck_assert_str_eq(se_event_get_info(SE_EVENT_STAGE_CHANGED)->id, SE_MESSAGE_STAGE_CHANGED_STR);
        ck_assert_str_eq(se_event_get_info(SE_EVENT_CONFIG_INVALID)->name, "config-invalid");
}
END_TEST

/* Every MESSAGE_ID has exactly one catalog entry and every catalog entry is an event of ours. */
START_TEST(test_catalog_matches_table) {
        _cleanup_free_ char *text = tl_read_file(CATALOG, NULL);
        bool seen[_SE_EVENT_MAX] = {};
        size_t entries = 0;

        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                const char *id;
                int t;

                if (!startswith(line, "-- "))
                        continue;
                id = line + 3;
                ck_assert_msg(is_id128(id), "catalog: '%s' is not a lowercase 128-bit id", id);
                t = se_event_from_id(id);
                ck_assert_msg(t >= 0, "catalog entry %s is not a MESSAGE_ID in se-event.h", id);
                ck_assert_msg(!seen[t], "catalog entry %s appears twice", id);
                seen[t] = true;
                entries++;
        }
        for (int i = 0; i < _SE_EVENT_MAX; i++)
                ck_assert_msg(seen[i], "event %s (%s) has no catalog entry", se_event_get_info(i)->name,
                              se_event_get_info(i)->id);
        ck_assert_uint_eq(entries, _SE_EVENT_MAX);
}
END_TEST

/* @FIELD@ substitutions in the catalog name fields the code may send. */
START_TEST(test_catalog_fields) {
        _cleanup_free_ char *text = tl_read_file(CATALOG, NULL);
        size_t subst = 0;

        for (const char *p = strchr(text, '@'); p; p = strchr(p, '@')) {
                const char *q = strchr(p + 1, '@');
                _cleanup_free_ char *name = NULL;

                ck_assert_ptr_nonnull(q);
                name = strndup(p + 1, (size_t) (q - p - 1));
                ck_assert_msg(se_field_name_is_allowed(name) && startswith(name, "SECRETS_ENCRYPT_"),
                              "catalog uses @%s@", name);
                subst++;
                p = q + 1;
        }
        ck_assert_uint_gt(subst, 20);
}
END_TEST

START_TEST(test_capture_fields) {
        int line, r;

        capture_start();
        line = __LINE__ + 1;
        r = se_event(SE_EVENT_STAGE_CHANGED, SE_MESSAGE("Stage changed from %s to %s.", "start", "prepare"),
                     SE_FIELD(SE_FIELD_STAGE "=%s", "prepare"), SE_FIELD(SE_FIELD_PREVIOUS_STAGE "=%s", "start"),
                     "SECRETS_ENCRYPT_HASH=%s-%s", "prepare", "abc123");
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(n_cap, 1);
        ck_assert_int_eq(cap[0].type, SE_EVENT_STAGE_CHANGED);
        ck_assert_int_eq(cap[0].priority, LOG_NOTICE);
        ck_assert_str_eq(cap_get(&cap[0], "MESSAGE"), "Stage changed from start to prepare.");
        ck_assert_str_eq(cap_get(&cap[0], "MESSAGE_ID"), SE_MESSAGE_STAGE_CHANGED_STR);
        ck_assert_str_eq(cap_get(&cap[0], "PRIORITY"), "5");
        ck_assert_str_eq(cap_get(&cap[0], "SYSLOG_IDENTIFIER"), "secrets-encrypt");
        ck_assert_str_eq(cap_get(&cap[0], "CODE_FILE"), __FILE__);
        ck_assert_int_eq(atoi(cap_get(&cap[0], "CODE_LINE")), line);
        ck_assert_str_eq(cap_get(&cap[0], "CODE_FUNC"), "test_capture_fields_fn");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_STAGE"), "prepare");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_PREVIOUS_STAGE"), "start");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_HASH"), "prepare-abc123");
        ck_assert_ptr_null(cap_get(&cap[0], "ERRNO"));
        ck_assert_uint_eq(cap[0].n, 10);
        capture_stop();
}
END_TEST

/* Items after a non-string argument must still line up (the va_list is advanced per format). */
START_TEST(test_capture_mixed_types) {
        size_t done = 120;
        unsigned long long total = 900;
        double rate = 41.5;

        capture_start();
        ck_assert_int_eq(se_event_full(SE_EVENT_REENCRYPT_PROGRESS, LOG_DEBUG, -EIO,
                                       SE_MESSAGE("Re-encrypted %zu/%llu (%c) %m", done, total, 'x'),
                                       SE_FIELD("SECRETS_ENCRYPT_DONE=%zu", done),
                                       SE_FIELD("SECRETS_ENCRYPT_TOTAL=%llu", total),
                                       SE_FIELD("SECRETS_ENCRYPT_RATE=%.1f", rate),
                                       SE_FIELD("SECRETS_ENCRYPT_GENERATION=%d%s", 7, "")),
                         0);
        ck_assert_uint_eq(n_cap, 1);
        ck_assert_int_eq(cap[0].priority, LOG_DEBUG);
        ck_assert_str_eq(cap_get(&cap[0], "PRIORITY"), "7");
        ck_assert_str_eq(cap_get(&cap[0], "ERRNO"), "5");
        ck_assert_str_eq(cap_get(&cap[0], "MESSAGE"), "Re-encrypted 120/900 (x) Input/output error");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_DONE"), "120");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_TOTAL"), "900");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_RATE"), "41.5");
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_GENERATION"), "7");
        capture_stop();
}
END_TEST

START_TEST(test_capture_log_lines) {
        int line;

        capture_start();
        line = __LINE__ + 1;
        ck_assert_int_eq(se_log_error_errno(-ENOENT, "Cannot open '%s': %m", "/x"), -ENOENT);
        ck_assert_int_eq(se_log_error_errno(EACCES, "denied"), -EACCES);
        ck_assert_int_eq(se_log_info("plain %d", 1), 0);
        ck_assert_uint_eq(n_cap, 3);
        ck_assert_int_eq(cap[0].type, _SE_EVENT_NONE);
        ck_assert_ptr_null(cap_get(&cap[0], "MESSAGE_ID"));
        ck_assert_str_eq(cap_get(&cap[0], "MESSAGE"), "Cannot open '/x': No such file or directory");
        ck_assert_str_eq(cap_get(&cap[0], "PRIORITY"), "3");
        ck_assert_str_eq(cap_get(&cap[0], "ERRNO"), "2");
        ck_assert_str_eq(cap_get(&cap[0], "CODE_FUNC"), "test_capture_log_lines_fn");
        ck_assert_int_eq(atoi(cap_get(&cap[0], "CODE_LINE")), line);
        ck_assert_str_eq(cap_get(&cap[1], "ERRNO"), "13");
        ck_assert_str_eq(cap_get(&cap[2], "PRIORITY"), "6");
        ck_assert_str_eq(cap_get(&cap[2], "SYSLOG_IDENTIFIER"), "secrets-encrypt");
        capture_stop();
}
END_TEST

START_TEST(test_field_names) {
        static const char *const valid[] = {
                "MESSAGE", "A", "SECRETS_ENCRYPT_STAGE", "X_1", "A0_",
        };
        static const char *const invalid[] = {
                "", "_PID", "1ABC", "secrets_encrypt_stage", "SECRETS-ENCRYPT", "A B", "Ä", "A=B",
        };
        char name[66];

        for (size_t i = 0; i < ELEMENTSOF(valid); i++)
                ck_assert_msg(se_field_name_is_valid(valid[i]), "'%s' should be valid", valid[i]);
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++)
                ck_assert_msg(!se_field_name_is_valid(invalid[i]), "'%s' should be invalid", invalid[i]);
        ck_assert(!se_field_name_is_valid(NULL));
        /* at most 64 characters */
        memset(name, 'A', 64);
        name[64] = '\0';
        ck_assert(se_field_name_is_valid(name));
        name[64] = 'B';
        name[65] = '\0';
        ck_assert(!se_field_name_is_valid(name));

        /* every SPEC §7 field is allowed and valid; others are not */
        static const char *const spec[] = {SE_FIELD_STAGE,    SE_FIELD_PREVIOUS_STAGE, SE_FIELD_HASH, SE_FIELD_NODE,
                                           SE_FIELD_KEY_NAME, SE_FIELD_PROVIDER,       SE_FIELD_DONE, SE_FIELD_TOTAL,
                                           SE_FIELD_RATE,     SE_FIELD_GENERATION,     SE_FIELD_ERROR};
        for (size_t i = 0; i < ELEMENTSOF(spec); i++)
                ck_assert(se_field_name_is_allowed(spec[i]));
        ck_assert(se_field_name_is_allowed("MESSAGE"));
        ck_assert(!se_field_name_is_allowed("MESSAGE_ID"));
        ck_assert(!se_field_name_is_allowed("PRIORITY"));
        ck_assert(!se_field_name_is_allowed("CODE_FILE"));
        ck_assert(!se_field_name_is_allowed("SECRETS_ENCRYPT_KEY"));
        ck_assert(!se_field_name_is_allowed("secrets_encrypt_stage"));
}
END_TEST

/* A field journald would drop, or one outside SPEC §7, is refused; the rest of the event stays. */
START_TEST(test_bad_fields_dropped) {
        capture_start();
        ck_assert_int_eq(se_event(SE_EVENT_KEY_ADDED, "MESSAGE=added", "secrets_encrypt_stage=x", "_PID=1",
                                  "PRIORITY=0", "NOEQUALS", "SECRETS_ENCRYPT_KEY_NAME=%s", "aescbckey-1"),
                         -EINVAL);
        ck_assert_uint_eq(n_cap, 1);
        ck_assert_ptr_null(cap_get(&cap[0], "secrets_encrypt_stage"));
        ck_assert_ptr_null(cap_get(&cap[0], "_PID"));
        ck_assert_str_eq(cap_get(&cap[0], "PRIORITY"), "5"); /* ours, not the caller's 0 */
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_KEY_NAME"), "aescbckey-1");
        ck_assert_str_eq(cap_get(&cap[0], "MESSAGE"), "added");
        /* unknown type: nothing written */
        ck_assert_int_eq(se_event(_SE_EVENT_MAX, "MESSAGE=x"), -EINVAL);
        ck_assert_uint_eq(n_cap, 1);
        /* no MESSAGE: one is made from the event's name */
        ck_assert_int_eq(se_event(SE_EVENT_HASHES_CONVERGED, "SECRETS_ENCRYPT_STAGE=start"), 0);
        ck_assert_str_eq(cap_get(&cap[1], "MESSAGE"), "secrets-encrypt: hashes-converged");
        capture_stop();
}
END_TEST

START_TEST(test_key_guard) {
        /* base64 of 32, 16 and 24 bytes */
        static const char *const keys[] = {
                "Kk+3f0xK9r7mFVtT7KQ6S9bP0vQk2mGxqWbqfZf5Vxk=",
                "q83vEjRWeJq8Xm7wXg1h4A==",
                "4bTzM9Qp2Lr7XvK1aN8cY0dWfE6gHj3k",
        };
        static const char *const fine[] = {
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "prepare-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "aescbckey-2024-05-01T10:00:00Z",
                "Stage changed from start to prepare.",
                "bf7e709ac08a49c0a37ec4377f7289b6",
                "/registry/secrets/default/my-secret",
        };

        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                ck_assert_msg(se_log_looks_like_key(keys[i]), "'%s' not caught", keys[i]);
        for (size_t i = 0; i < ELEMENTSOF(fine); i++)
                ck_assert_msg(!se_log_looks_like_key(fine[i]), "'%s' flagged", fine[i]);

        capture_start();
        ck_assert_int_eq(se_event(SE_EVENT_KEY_ADDED, SE_MESSAGE("added key %s", keys[0]),
                                  SE_FIELD("SECRETS_ENCRYPT_ERROR=secret: %s;", keys[1])),
                         -EPERM);
        se_log_info("oops %s", keys[2]);
        ck_assert_uint_eq(n_cap, 2);
        for (size_t i = 0; i < n_cap; i++)
                for (size_t j = 0; j < cap[i].n; j++)
                        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                                ck_assert_ptr_null(strstr(cap[i].fields[j], keys[k]));
        /* by shape, then by field: the value of a secret field runs to the end of its line */
        ck_assert_str_eq(cap_get(&cap[0], "SECRETS_ENCRYPT_ERROR"), "secret: *************************");
        ck_assert(startswith(cap_get(&cap[0], "MESSAGE"), "added key ****"));
        capture_stop();
}
END_TEST

/* Runs fn with fd 2 redirected to a file; returns what was written. */
static char *with_stderr_captured(void (*fn)(void)) {
        char *dir = tl_tmpdir();
        _cleanup_free_ char *p = tl_path(dir, "stderr");
        char *out;
        int fd, saved;

        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        saved = dup(STDERR_FILENO);
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
        close(fd);
        fn();
        ck_assert_int_ge(dup2(saved, STDERR_FILENO), 0);
        close(saved);
        out = tl_read_file(p, NULL);
        tl_tmpdir_remove(dir);
        return out;
}

static void emit_some(void) {
        se_event(SE_EVENT_CONFIG_INVALID, SE_MESSAGE("Invalid config: %s", "no keys"),
                 SE_FIELD("SECRETS_ENCRYPT_ERROR=%s", "no keys"));
        se_event(SE_EVENT_REENCRYPT_FINISHED, "MESSAGE=done");
        se_log_warning("two\nlines");
        se_log_debug("hidden unless debug");
}

START_TEST(test_stderr_format) {
        _cleanup_free_ char *out = NULL;

        setenv("SECRETS_ENCRYPT_LOG_TARGET", "stderr", 1);
        unsetenv("SECRETS_ENCRYPT_LOG_LEVEL");
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_STDERR);
        out = with_stderr_captured(emit_some);
        ck_assert_str_eq(out, "<3>Invalid config: no keys\n<5>done\n<4>two\n<4>lines\n");
}
END_TEST

START_TEST(test_stderr_levels_and_console) {
        _cleanup_free_ char *out = NULL, *out2 = NULL, *out3 = NULL;

        setenv("SECRETS_ENCRYPT_LOG_TARGET", "stderr", 1);
        setenv("SECRETS_ENCRYPT_LOG_LEVEL", "debug", 1);
        out = with_stderr_captured(emit_some);
        ck_assert_str_eq(out, "<3>Invalid config: no keys\n<5>done\n<4>two\n<4>lines\n<7>hidden unless debug\n");

        setenv("SECRETS_ENCRYPT_LOG_LEVEL", "4", 1);
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "console", 1);
        out2 = with_stderr_captured(emit_some);
        ck_assert_str_eq(out2, "Invalid config: no keys\ntwo\nlines\n");

        setenv("SECRETS_ENCRYPT_LOG_TARGET", "null", 1);
        out3 = with_stderr_captured(emit_some);
        ck_assert_str_eq(out3, "");
}
END_TEST

static void check_auto_target(void) {
        struct stat st;
        char buf[64];

        /* stderr is a regular file here, not the journal: events to journald, plain lines... */
        unsetenv("JOURNAL_STREAM");
        ck_assert(!se_log_stderr_is_journal());
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_AUTO);
        /* ...an inherited JOURNAL_STREAM naming another file is ignored... */
        setenv("JOURNAL_STREAM", "8:12345", 1);
        ck_assert(!se_log_stderr_is_journal());
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_AUTO);
        setenv("JOURNAL_STREAM", "garbage", 1);
        ck_assert(!se_log_stderr_is_journal());
        /* ...and one matching fd 2's device:inode means journald is on the other end */
        ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", buf, 1);
        ck_assert(se_log_stderr_is_journal());
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_JOURNAL);
        /* the environment override wins over AUTO */
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "stderr", 1);
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_STDERR);
        /* and over the program's choice; garbage is ignored */
        unsetenv("SECRETS_ENCRYPT_LOG_TARGET");
        se_log_set_target(SE_LOG_TARGET_NULL);
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_NULL);
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "bogus", 1);
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_NULL);
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "console", 1);
        ck_assert_int_eq(se_log_get_target(), SE_LOG_TARGET_CONSOLE);
        unsetenv("SECRETS_ENCRYPT_LOG_TARGET");
        unsetenv("JOURNAL_STREAM");
        se_log_set_target(SE_LOG_TARGET_AUTO);
}

START_TEST(test_auto_target) {
        _cleanup_free_ char *out = NULL;

        unsetenv("SECRETS_ENCRYPT_LOG_TARGET");
        out = with_stderr_captured(check_auto_target);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(se_log_target_from_string("journal"), SE_LOG_TARGET_JOURNAL);
        ck_assert_int_eq(se_log_target_from_string("x"), _SE_LOG_TARGET_INVALID);
        ck_assert_str_eq(se_log_target_to_string(SE_LOG_TARGET_STDERR), "stderr");
}
END_TEST

/* Off the journal stream (a terminal, a pipe, a CI log): plain lines, never "<N>" prefixes. */
START_TEST(test_auto_plain_lines) {
        _cleanup_free_ char *out = NULL, *out2 = NULL;

        unsetenv("SECRETS_ENCRYPT_LOG_TARGET");
        unsetenv("SECRETS_ENCRYPT_LOG_LEVEL");
        unsetenv("JOURNAL_STREAM");
        se_log_set_target(SE_LOG_TARGET_AUTO);
        out = with_stderr_captured(emit_some);
        ck_assert_str_eq(out, "Invalid config: no keys\ndone\ntwo\nlines\n");
        /* the program's terminal filter: no events, warnings and worse */
        se_log_set_terminal_filter(0, LOG_WARNING);
        out2 = with_stderr_captured(emit_some);
        se_log_set_terminal_filter(UINT64_MAX, LOG_DEBUG);
        ck_assert_str_eq(out2, "two\nlines\n");
}
END_TEST

START_TEST(test_object_unit) {
        capture_start();
        se_log_set_object_unit("k3s.service");
        ck_assert_int_eq(se_event(SE_EVENT_KEY_ADDED, "MESSAGE=added"), 0);
        se_log_set_object_unit(NULL);
        ck_assert_int_eq(se_event(SE_EVENT_KEY_ADDED, "MESSAGE=added"), 0);
        ck_assert_uint_eq(n_cap, 2);
        ck_assert_str_eq(cap_get(&cap[0], "OBJECT_SYSTEMD_UNIT"), "k3s.service");
        ck_assert_ptr_null(cap_get(&cap[1], "OBJECT_SYSTEMD_UNIT"));
        capture_stop();
}
END_TEST

static Suite *event_suite(void) {
        Suite *s = suite_create("event");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_table);
        tcase_add_test(tc, test_catalog_matches_table);
        tcase_add_test(tc, test_catalog_fields);
        tcase_add_test(tc, test_capture_fields);
        tcase_add_test(tc, test_capture_mixed_types);
        tcase_add_test(tc, test_capture_log_lines);
        tcase_add_test(tc, test_field_names);
        tcase_add_test(tc, test_bad_fields_dropped);
        tcase_add_test(tc, test_key_guard);
        tcase_add_test(tc, test_stderr_format);
        tcase_add_test(tc, test_stderr_levels_and_console);
        tcase_add_test(tc, test_auto_target);
        tcase_add_test(tc, test_auto_plain_lines);
        tcase_add_test(tc, test_object_unit);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(event_suite)
