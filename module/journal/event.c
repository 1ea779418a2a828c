/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The library's only writer: journal events and log lines (SPEC §7). A thin sink: build one
 * iovec array, hand it to a capture sink, journald, or stderr. */

#include <errno.h>
#include <printf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* We add CODE_FILE/LINE/FUNC of the caller ourselves; the header's macros would add ours. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "macro.h"
#include "se-event.h"
#include "se-redact.h"

#define EVENT(x, prio, n) [SE_EVENT_##x] = {SE_MESSAGE_##x##_STR, prio, n}

static const se_event_info event_table[_SE_EVENT_MAX] = {
        EVENT(CONFIG_GENERATED, LOG_NOTICE, "config-generated"),
        EVENT(CONFIG_VALIDATED, LOG_INFO, "config-validated"),
        EVENT(CONFIG_INVALID, LOG_ERR, "config-invalid"),
        EVENT(CONFIG_INSTALLED, LOG_NOTICE, "config-installed"),
        EVENT(CONFIG_SYNC_REFUSED, LOG_ERR, "config-sync-refused"),
        EVENT(KEY_ADDED, LOG_NOTICE, "key-added"),
        EVENT(KEY_PROMOTED, LOG_NOTICE, "key-promoted"),
        EVENT(KEY_REMOVED, LOG_NOTICE, "key-removed"),
        EVENT(ENCRYPTION_ENABLED, LOG_NOTICE, "encryption-enabled"),
        EVENT(ENCRYPTION_DISABLED, LOG_WARNING, "encryption-disabled"),
        EVENT(STAGE_CHANGED, LOG_NOTICE, "stage-changed"),
        EVENT(HASHES_CONVERGED, LOG_INFO, "hashes-converged"),
        EVENT(HASHES_MISMATCH, LOG_WARNING, "hashes-mismatch"),
        EVENT(REENCRYPT_STARTED, LOG_NOTICE, "reencrypt-started"),
        EVENT(REENCRYPT_PROGRESS, LOG_INFO, "reencrypt-progress"),
        EVENT(REENCRYPT_FINISHED, LOG_NOTICE, "reencrypt-finished"),
        EVENT(REENCRYPT_FAILED, LOG_ERR, "reencrypt-failed"),
        EVENT(HOOK_FAILED, LOG_ERR, "hook-failed"),
        EVENT(HOOK_FAILED_REPEAT, LOG_ERR, "hook-failed-repeat"),
        EVENT(FLEET_HOOK_FAILED, LOG_WARNING, "fleet-hook-failed"),
        EVENT(REENCRYPT_PENDING, LOG_WARNING, "reencrypt-pending"),
        EVENT(NOT_CONFIGURED, LOG_NOTICE, "not-configured"),
};

static const char *const allowed_fields[] = {
        "MESSAGE",     "DOCUMENTATION",     SE_FIELD_STAGE,    SE_FIELD_PREVIOUS_STAGE, SE_FIELD_HASH,
        SE_FIELD_NODE, SE_FIELD_KEY_NAME,   SE_FIELD_PROVIDER, SE_FIELD_DONE,           SE_FIELD_TOTAL,
        SE_FIELD_RATE, SE_FIELD_GENERATION, SE_FIELD_ERROR,
};

static const char *const target_names[_SE_LOG_TARGET_MAX] = {
        [SE_LOG_TARGET_AUTO] = "auto",       [SE_LOG_TARGET_JOURNAL] = "journal", [SE_LOG_TARGET_STDERR] = "stderr",
        [SE_LOG_TARGET_CONSOLE] = "console", [SE_LOG_TARGET_NULL] = "null",
};

static se_log_target log_target = SE_LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static se_log_sink_t log_sink;
static void *log_sink_userdata;
static se_event_observer_t event_observer;
static void *event_observer_userdata;
static bool event_observing;
static char *object_unit;
static uint64_t terminal_events = UINT64_MAX;
static int terminal_max_level = LOG_DEBUG;

#define MAX_ITEMS      64
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

_public_ const se_event_info *se_event_get_info(se_event_type type) {
        if (type < 0 || type >= _SE_EVENT_MAX)
                return NULL;
        return &event_table[type];
}

_public_ int se_event_from_id(const char *id) {
        if (!id)
                return -ENOENT;
        for (int i = 0; i < _SE_EVENT_MAX; i++)
                if (streq(event_table[i].id, id))
                        return i;
        return -ENOENT;
}

_public_ int se_event_from_name(const char *name) {
        if (!name)
                return -ENOENT;
        for (int i = 0; i < _SE_EVENT_MAX; i++)
                if (streq(event_table[i].name, name))
                        return i;
        return -ENOENT;
}

static bool field_name_valid_n(const char *p, size_t n) {
        /* journald's journal_field_valid(): silently drops anything else */
        if (n == 0 || n > 64)
                return false;
        if (p[0] == '_' || (p[0] >= '0' && p[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
                        return false;
        return true;
}

_public_ bool se_field_name_is_valid(const char *name) {
        return name && field_name_valid_n(name, strlen(name));
}

static bool field_allowed_n(const char *p, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(allowed_fields); i++)
                if (strlen(allowed_fields[i]) == n && memcmp(allowed_fields[i], p, n) == 0)
                        return true;
        return false;
}

_public_ bool se_field_name_is_allowed(const char *name) {
        return se_field_name_is_valid(name) && field_allowed_n(name, strlen(name));
}

static bool is_b64_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '=';
}

/* Base64 of 16, 24 or 32 bytes: the AES and secretbox key sizes of an EncryptionConfiguration. */
static bool token_looks_like_key(const char *t, size_t n) {
        bool upper = false, lower = false, digit = false;
        size_t pad = 0;

        while (pad < n && t[n - 1 - pad] == '=')
                pad++;
        if (memchr(t, '=', n - pad))
                return false;
        if (!((n == 24 && pad == 2) || (n == 44 && pad == 1) || (n == 32 && pad == 0)))
                return false;
        if (pad > 0)
                return true;
        /* 32 chars without padding: only mixed-case ones; hex digests are lowercase */
        for (size_t i = 0; i < n; i++) {
                upper = upper || (t[i] >= 'A' && t[i] <= 'Z');
                lower = lower || (t[i] >= 'a' && t[i] <= 'z');
                digit = digit || (t[i] >= '0' && t[i] <= '9');
        }
        return upper && lower && digit;
}

/* Overwrites key-shaped tokens with '*'; returns true if any was found. */
static bool redact_keys(char *s) {
        bool found = false;

        for (char *p = s; *p;) {
                size_t n = 0;

                if (!is_b64_char(*p)) {
                        p++;
                        continue;
                }
                while (is_b64_char(p[n]))
                        n++;
                if (token_looks_like_key(p, n)) {
                        memset(p, '*', n);
                        found = true;
                }
                p += n;
        }
        return found;
}

_public_ bool se_log_looks_like_key(const char *s) {
        if (!s)
                return false;
        for (const char *p = s; *p;) {
                size_t n = 0;

                if (!is_b64_char(*p)) {
                        p++;
                        continue;
                }
                while (is_b64_char(p[n]))
                        n++;
                if (token_looks_like_key(p, n))
                        return true;
                p += n;
        }
        return false;
}

_public_ se_log_target se_log_target_from_string(const char *s) {
        if (!s)
                return _SE_LOG_TARGET_INVALID;
        for (int i = 0; i < _SE_LOG_TARGET_MAX; i++)
                if (streq(target_names[i], s))
                        return i;
        return _SE_LOG_TARGET_INVALID;
}

_public_ const char *se_log_target_to_string(se_log_target t) {
        if (t < 0 || t >= _SE_LOG_TARGET_MAX)
                return NULL;
        return target_names[t];
}

_public_ void se_log_set_target(se_log_target target) {
        if (target >= 0 && target < _SE_LOG_TARGET_MAX)
                log_target = target;
}

_public_ bool se_log_stderr_is_journal(void) {
        const char *e = secure_getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        int consumed = 0;

        /* An inherited variable alone proves nothing: compare it with what fd 2 really is. */
        if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &consumed) != 2 || e[consumed] != '\0')
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* The explicit choice (environment over program), or AUTO: the journal when stderr is the journal
 * stream, else AUTO itself (journal for events, plain lines on stderr). */
static se_log_target log_target_resolve(void) {
        se_log_target t = log_target;
        const char *e = secure_getenv("SECRETS_ENCRYPT_LOG_TARGET");

        if (!isempty(e)) {
                se_log_target o = se_log_target_from_string(e);
                if (o >= 0)
                        t = o;
        }
        if (t != SE_LOG_TARGET_AUTO)
                return t;
        if (se_log_stderr_is_journal())
                return SE_LOG_TARGET_JOURNAL;
        return SE_LOG_TARGET_AUTO;
}

_public_ se_log_target se_log_get_target(void) {
        return log_target_resolve();
}

_public_ void se_log_set_object_unit(const char *unit) {
        free(object_unit);
        object_unit = isempty(unit) ? NULL : strdup(unit);
}

_public_ void se_log_set_terminal_filter(uint64_t event_mask, int max_priority) {
        terminal_events = event_mask;
        terminal_max_level = max_priority;
}

static int level_from_string(const char *s) {
        static const char *const names[] = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"};

        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

_public_ void se_log_set_max_level(int priority) {
        if (priority >= LOG_EMERG && priority <= LOG_DEBUG)
                log_max_level = priority;
}

_public_ int se_log_get_max_level(void) {
        const char *e = secure_getenv("SECRETS_ENCRYPT_LOG_LEVEL");

        if (!isempty(e)) {
                int l = level_from_string(e);
                if (l >= 0)
                        return l;
        }
        return log_max_level;
}

_public_ void se_event_set_observer(se_event_observer_t fn, void *userdata) {
        event_observer = fn;
        event_observer_userdata = userdata;
}

_public_ void se_log_set_sink(se_log_sink_t sink, void *userdata) {
        log_sink = sink;
        log_sink_userdata = userdata;
}

_public_ const char *se_log_record_get(const se_log_record *record, const char *field) {
        size_t n;

        if (!record || !field)
                return NULL;
        n = strlen(field);
        for (size_t i = 0; i < record->n_iov; i++) {
                const char *s = record->iov[i].iov_base;

                if (record->iov[i].iov_len > n && memcmp(s, field, n) == 0 && s[n] == '=')
                        return s + n + 1;
        }
        return NULL;
}

typedef struct entry {
        struct iovec iov[MAX_ITEMS];
        char *owned[MAX_ITEMS];
        size_t n;
        const char *message; /* points into iov */
} entry;

static void entry_done(entry *e) {
        for (size_t i = 0; i < e->n; i++)
                free(e->owned[i]);
        e->n = 0;
}

/* Takes ownership of s (a "FIELD=value" string). */
static int entry_add(entry *e, char *s) {
        if (!s)
                return -ENOMEM;
        if (e->n >= MAX_ITEMS) {
                free(s);
                return -E2BIG;
        }
        e->owned[e->n] = s;
        e->iov[e->n] = (struct iovec){.iov_base = s, .iov_len = strlen(s)};
        if (startswith(s, "MESSAGE="))
                e->message = s + STRLEN("MESSAGE=");
        e->n++;
        return 0;
}

static int entry_addf(entry *e, const char *fmt, ...) _printf_(2, 3);
static int entry_addf(entry *e, const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return entry_add(e, k < 0 ? NULL : s);
}

static int add_header(entry *e, int priority, int error, const char *file, int line, const char *func) {
        int r = 0, k;

        k = entry_addf(e, "PRIORITY=%i", priority);
        r = r < 0 ? r : k;
        k = entry_addf(e, "SYSLOG_IDENTIFIER=%s", SE_SYSLOG_IDENTIFIER);
        r = r < 0 ? r : k;
        if (file) {
                k = entry_addf(e, "CODE_FILE=%s", file);
                r = r < 0 ? r : k;
        }
        if (line > 0) {
                k = entry_addf(e, "CODE_LINE=%i", line);
                r = r < 0 ? r : k;
        }
        if (func) {
                k = entry_addf(e, "CODE_FUNC=%s", func);
                r = r < 0 ? r : k;
        }
        if (error != 0) {
                k = entry_addf(e, "ERRNO=%i", error < 0 ? -error : error);
                r = r < 0 ? r : k;
        }
        return r;
}

static bool stderr_gone;

static void write_all(int fd, const char *p, size_t n) {
        if (stderr_gone)
                return;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        /* the reader left (`| head`, a closed terminal): the work goes on, silently
                         * here; events still reach the journal */
                        if (errno == EPIPE || errno == EIO)
                                stderr_gone = true;
                        return;
                }
                p += k;
                n -= (size_t) k;
        }
}

/* One write(2) per entry, so concurrent writers do not interleave inside a line. */
static void write_stderr(int priority, const char *message, bool prefix) {
        _cleanup_free_ char *buf = NULL;
        size_t len = strlen(message), n = 0, lines = 1;

        for (const char *p = message; *p; p++)
                lines += *p == '\n';
        buf = malloc(len + lines * 4 + 2);
        if (!buf)
                return;
        for (const char *p = message;;) {
                const char *nl = strchr(p, '\n');
                size_t l = nl ? (size_t) (nl - p) : strlen(p);

                if (prefix) {
                        buf[n++] = '<';
                        buf[n++] = (char) ('0' + priority);
                        buf[n++] = '>';
                }
                memcpy(buf + n, p, l);
                n += l;
                buf[n++] = '\n';
                if (!nl || nl[1] == '\0')
                        break;
                p = nl + 1;
        }
        write_all(STDERR_FILENO, buf, n);
}

static bool journal_send(entry *e) {
        /* sd_journal_sendv() returns 0 without sending when the socket is missing, and
         * -ECONNREFUSED when journald is gone but left the socket behind */
        return access(JOURNAL_SOCKET, F_OK) >= 0 && sd_journal_sendv(e->iov, (int) e->n) >= 0;
}

/* The terminal's copy: what the program chose to show there (se_log_set_terminal_filter()). */
static bool terminal_wants(int type, int priority) {
        if (type >= 0)
                return type < 64 && (terminal_events & (UINT64_C(1) << type));
        return priority <= terminal_max_level;
}

static void entry_emit(entry *e, int type, int priority) {
        const char *msg = e->message ? e->message : "";

        if (log_sink) {
                se_log_record rec = {.type = type, .priority = priority, .iov = e->iov, .n_iov = e->n};
                log_sink(&rec, log_sink_userdata);
                return;
        }
        if (priority > se_log_get_max_level())
                return;
        switch (log_target_resolve()) {
        case SE_LOG_TARGET_JOURNAL:
                if (!journal_send(e))
                        write_stderr(priority, msg, true);
                return;
        case SE_LOG_TARGET_AUTO:
                /* stderr is not the journal (a terminal, a pipe, a CI log): every event still goes to
                 * the journal whenever journald runs, and the reader gets a plain line */
                if (type >= 0)
                        (void) journal_send(e);
                if (terminal_wants(type, priority))
                        write_stderr(priority, msg, false);
                return;
        case SE_LOG_TARGET_CONSOLE:
                if (terminal_wants(type, priority))
                        write_stderr(priority, msg, false);
                return;
        case SE_LOG_TARGET_NULL:
                return;
        default:
                if (terminal_wants(type, priority))
                        write_stderr(priority, msg, true);
                return;
        }
}

/* Skips the arguments that format consumes, as vasprintf() would. */
#define VA_FORMAT_ADVANCE(format, ap, ret)                                                                            \
        do {                                                                                                          \
                int _types[128] = {};                                                                                 \
                size_t _k = parse_printf_format((format), ELEMENTSOF(_types), _types);                                \
                if (_k > ELEMENTSOF(_types)) {                                                                        \
                        (ret) = -E2BIG;                                                                               \
                        break;                                                                                        \
                }                                                                                                     \
                for (size_t _i = 0; _i < _k; _i++) {                                                                  \
                        if (_types[_i] & PA_FLAG_PTR) {                                                               \
                                (void) va_arg(ap, void *);                                                            \
                                continue;                                                                             \
                        }                                                                                             \
                        switch (_types[_i]) {                                                                         \
                        case PA_INT:                                                                                  \
                        case PA_INT | PA_FLAG_SHORT:                                                                  \
                        case PA_CHAR:                                                                                 \
                                (void) va_arg(ap, int);                                                               \
                                break;                                                                                \
                        case PA_INT | PA_FLAG_LONG:                                                                   \
                                (void) va_arg(ap, long);                                                              \
                                break;                                                                                \
                        case PA_INT | PA_FLAG_LONG_LONG:                                                              \
                                (void) va_arg(ap, long long);                                                         \
                                break;                                                                                \
                        case PA_WCHAR:                                                                                \
                                (void) va_arg(ap, int);                                                               \
                                break;                                                                                \
                        case PA_WSTRING:                                                                              \
                        case PA_STRING:                                                                               \
                        case PA_POINTER:                                                                              \
                                (void) va_arg(ap, void *);                                                            \
                                break;                                                                                \
                        case PA_FLOAT:                                                                                \
                        case PA_DOUBLE:                                                                               \
                                (void) va_arg(ap, double);                                                            \
                                break;                                                                                \
                        case PA_DOUBLE | PA_FLAG_LONG_DOUBLE:                                                         \
                                (void) va_arg(ap, long double);                                                       \
                                break;                                                                                \
                        default:                                                                                      \
                                (ret) = -EINVAL;                                                                      \
                                break;                                                                                \
                        }                                                                                             \
                }                                                                                                     \
        } while (false)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

_public_ int se_event_internal(se_event_type type, int priority, int error, const char *file, int line,
                               const char *func, const char *format, ...) {
        const se_event_info *info = se_event_get_info(type);
        entry e = {.n = 0};
        int saved_errno = errno, r = 0, k;
        va_list ap;

        if (!info)
                return -EINVAL;
        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                priority = info->priority;

        k = entry_addf(&e, "MESSAGE_ID=%s", info->id);
        r = r < 0 ? r : k;
        k = add_header(&e, priority, error, file, line, func);
        r = r < 0 ? r : k;

        va_start(ap, format);
        for (const char *f = format; f; f = va_arg(ap, const char *)) {
                char *s = NULL, *eq;
                va_list aq;
                int adv = 0;

                va_copy(aq, ap);
                errno = error < 0 ? -error : error; /* for %m */
                if (vasprintf(&s, f, aq) < 0)
                        s = NULL;
                va_end(aq);
                VA_FORMAT_ADVANCE(f, ap, adv);
                if (adv < 0) {
                        /* cannot find the next item safely: stop here */
                        free(s);
                        r = r < 0 ? r : adv;
                        break;
                }
                if (!s) {
                        r = r < 0 ? r : -ENOMEM;
                        continue;
                }
                eq = strchr(s, '=');
                if (!eq || !field_name_valid_n(s, (size_t) (eq - s)) || !field_allowed_n(s, (size_t) (eq - s))) {
                        free(s);
                        r = r < 0 ? r : -EINVAL;
                        continue;
                }
                if (redact_keys(eq + 1))
                        r = r < 0 ? r : -EPERM;
                (void) se_redact_fields(eq + 1); /* by field: a secret in any form (se-redact.h) */
                k = entry_add(&e, s);
                r = r < 0 ? r : k;
        }
        va_end(ap);

        if (!e.message) {
                k = entry_addf(&e, "MESSAGE=secrets-encrypt: %s", info->name);
                r = r < 0 ? r : k;
        }
        /* `journalctl -u UNIT` shows uid 0's entries that carry OBJECT_SYSTEMD_UNIT=UNIT */
        if (object_unit) {
                k = entry_addf(&e, "OBJECT_SYSTEMD_UNIT=%s", object_unit);
                r = r < 0 ? r : k;
        }
        entry_emit(&e, type, priority);
        /* events the observer itself causes are logged, not observed again */
        if (event_observer && !event_observing) {
                se_log_record rec = {.type = type, .priority = priority, .iov = e.iov, .n_iov = e.n};

                event_observing = true;
                event_observer(&rec, event_observer_userdata);
                event_observing = false;
        }
        entry_done(&e);
        errno = saved_errno;
        return r;
}

_public_ int se_log_internal(int priority, int error, const char *file, int line, const char *func, const char *format,
                             ...) {
        entry e = {.n = 0};
        int saved_errno = errno;
        char *m = NULL;
        va_list ap;

        if (priority < LOG_EMERG || priority > LOG_DEBUG)
                priority = LOG_INFO;
        /* cheap exit for debug lines nobody wants */
        if (!log_sink && priority > se_log_get_max_level())
                goto finish;

        va_start(ap, format);
        errno = error < 0 ? -error : error;
        if (vasprintf(&m, format, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m)
                goto finish;
        {
                /* "MESSAGE=" in front, without a second copy of m */
                size_t l = strlen(m);
                char *s = malloc(STRLEN("MESSAGE=") + l + 1);

                if (s) {
                        memcpy(s, "MESSAGE=", STRLEN("MESSAGE="));
                        memcpy(s + STRLEN("MESSAGE="), m, l + 1);
                        (void) redact_keys(s + STRLEN("MESSAGE="));
                        (void) se_redact_fields(s + STRLEN("MESSAGE="));
                }
                explicit_wipe(m, l);
                free(m);
                if (entry_add(&e, s) < 0)
                        goto finish;
        }
        (void) add_header(&e, priority, error, file, line, func);
        entry_emit(&e, _SE_EVENT_NONE, priority);
        entry_done(&e);
finish:
        errno = saved_errno;
        return error == 0 ? 0 : (error < 0 ? error : -error);
}

#pragma GCC diagnostic pop
