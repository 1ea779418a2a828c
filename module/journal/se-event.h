/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Journal events and log lines (SPEC §7).
 *
 * event.c is the one place in the library that writes anything: events to journald with
 * sd_journal_sendv() whenever journald runs, and a plain line to stderr unless stderr is the
 * journal stream ("<N>" priority prefixes only there, when journald cannot be reached).
 *
 *   se_event(SE_EVENT_STAGE_CHANGED,
 *            SE_MESSAGE("Stage changed from %s to %s.", prev, stage),
 *            SE_FIELD("SECRETS_ENCRYPT_STAGE=%s", stage),
 *            SE_FIELD("SECRETS_ENCRYPT_PREVIOUS_STAGE=%s", prev));
 *
 * Each item is its own printf format followed by its arguments (as sd_journal_send()); the macro
 * appends the terminating NULL and the caller's CODE_FILE/CODE_LINE/CODE_FUNC. SE_MESSAGE() and
 * SE_FIELD() make the compiler check every item's format; plain "FIELD=%s", x items work too.
 * Callers may only pass MESSAGE=, DOCUMENTATION= and the SECRETS_ENCRYPT_* fields of SPEC §7;
 * MESSAGE_ID, PRIORITY, SYSLOG_IDENTIFIER, CODE_* and ERRNO are added here. Not thread-safe. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <syslog.h>

typedef enum se_event_type {
        SE_EVENT_CONFIG_GENERATED,
        SE_EVENT_CONFIG_VALIDATED,
        SE_EVENT_CONFIG_INVALID,
        SE_EVENT_CONFIG_INSTALLED, /* installed from the cluster's sealed config */
        SE_EVENT_CONFIG_SYNC_REFUSED,
        SE_EVENT_KEY_ADDED,
        SE_EVENT_KEY_PROMOTED,
        SE_EVENT_KEY_REMOVED,
        SE_EVENT_ENCRYPTION_ENABLED,
        SE_EVENT_ENCRYPTION_DISABLED,
        SE_EVENT_STAGE_CHANGED,
        SE_EVENT_HASHES_CONVERGED,
        SE_EVENT_HASHES_MISMATCH,
        SE_EVENT_REENCRYPT_STARTED,
        SE_EVENT_REENCRYPT_PROGRESS,
        SE_EVENT_REENCRYPT_FINISHED,
        SE_EVENT_REENCRYPT_FAILED,
        SE_EVENT_HOOK_FAILED,        /* full event, logged when the failure changes */
        SE_EVENT_HOOK_FAILED_REPEAT, /* short line for the same failure on a later retry */
        SE_EVENT_FLEET_HOOK_FAILED,  /* a hooks-dir executable failed; never fatal */
        SE_EVENT_REENCRYPT_PENDING,  /* pending work cannot finish yet; the server starts anyway */
        SE_EVENT_NOT_CONFIGURED,     /* hook without a settings file: changes nothing */
        _SE_EVENT_MAX,
        _SE_EVENT_NONE = -1, /* plain log lines */
} se_event_type;

/* MESSAGE_IDs, generated once with `systemd-id128 new`. Each has an entry in
 * units/secrets-encrypt.catalog (checked by tests/test-event.c). */
#define SE_MESSAGE_CONFIG_GENERATED_STR    "bf7e709ac08a49c0a37ec4377f7289b6"
#define SE_MESSAGE_CONFIG_VALIDATED_STR    "b55383721fe9430baf5ad8097f6511d7"
#define SE_MESSAGE_CONFIG_INVALID_STR      "4bd0af8868764a20af8eb07fee8ea4f8"
#define SE_MESSAGE_CONFIG_INSTALLED_STR    "70b36004f86f4de8bd9ed77572654ba1"
#define SE_MESSAGE_CONFIG_SYNC_REFUSED_STR "5b3494367b004084a1efe1e6cbc06a9e"
#define SE_MESSAGE_KEY_ADDED_STR           "8dd2feba57664e5fa57a5e28aa77e4d0"
#define SE_MESSAGE_KEY_PROMOTED_STR        "f8d461312e424423881ebf6b91cdace4"
#define SE_MESSAGE_KEY_REMOVED_STR         "6d52a773ba5249c8967b0336c804c4ad"
#define SE_MESSAGE_ENCRYPTION_ENABLED_STR  "397cd4131ddd43d3b8ebc1bb509382dc"
#define SE_MESSAGE_ENCRYPTION_DISABLED_STR "53a99ee65f9e4928bf1844cb7c0afb64"
#define SE_MESSAGE_STAGE_CHANGED_STR       "b1db07f8234e4246a18e3d3193f89a55"
#define SE_MESSAGE_HASHES_CONVERGED_STR    "8ea6f59bfe7b43eaa6daa2cbc1e2196e"
#define SE_MESSAGE_HASHES_MISMATCH_STR     "943100034f1e4279b3157f0bdb13ef57"
#define SE_MESSAGE_REENCRYPT_STARTED_STR   "524867246f734fc3a66ed29daeef1a08"
#define SE_MESSAGE_REENCRYPT_PROGRESS_STR  "bead9f8d948349dfb6c106c99699d075"
#define SE_MESSAGE_REENCRYPT_FINISHED_STR  "c541c26f97474e71b87a27e440b2d4a2"
#define SE_MESSAGE_REENCRYPT_FAILED_STR    "2aac49b3c7054157a652cfe3228edeb7"
#define SE_MESSAGE_HOOK_FAILED_STR         "de8eb27d70f042fcb1621bff6527fa55"
#define SE_MESSAGE_HOOK_FAILED_REPEAT_STR  "350881f3b40447dfa43c3d214416403d"
#define SE_MESSAGE_FLEET_HOOK_FAILED_STR   "2004851d4a4d4c789fc7d872703372dc"
#define SE_MESSAGE_REENCRYPT_PENDING_STR   "4c6bd0112ff34b6689f1eccaba5026ff"
#define SE_MESSAGE_NOT_CONFIGURED_STR      "9ded1fc177a941adb9304f6488569da6"

/* The journal fields of SPEC §7. */
#define SE_FIELD_STAGE          "SECRETS_ENCRYPT_STAGE"
#define SE_FIELD_PREVIOUS_STAGE "SECRETS_ENCRYPT_PREVIOUS_STAGE"
#define SE_FIELD_HASH           "SECRETS_ENCRYPT_HASH"
#define SE_FIELD_NODE           "SECRETS_ENCRYPT_NODE"
#define SE_FIELD_KEY_NAME       "SECRETS_ENCRYPT_KEY_NAME"
#define SE_FIELD_PROVIDER       "SECRETS_ENCRYPT_PROVIDER"
#define SE_FIELD_DONE           "SECRETS_ENCRYPT_DONE"
#define SE_FIELD_TOTAL          "SECRETS_ENCRYPT_TOTAL"
#define SE_FIELD_RATE           "SECRETS_ENCRYPT_RATE"
#define SE_FIELD_GENERATION     "SECRETS_ENCRYPT_GENERATION"
#define SE_FIELD_ERROR          "SECRETS_ENCRYPT_ERROR"

#define SE_SYSLOG_IDENTIFIER "secrets-encrypt"

typedef struct se_event_info {
        const char *id;   /* MESSAGE_ID, 32 lowercase hex digits */
        int priority;     /* default LOG_* priority */
        const char *name; /* short name, e.g. "stage-changed" */
} se_event_info;

/* NULL when type is out of range. */
const se_event_info *se_event_get_info(se_event_type type);
/* Event type for a MESSAGE_ID or a short name; -ENOENT if unknown. */
int se_event_from_id(const char *id);
int se_event_from_name(const char *name);

/* journald's rule for a field name: 1..64 chars of [A-Z0-9_], not starting with '_' or a digit. */
bool se_field_name_is_valid(const char *name);
/* Whether callers may pass this field: MESSAGE, DOCUMENTATION, or a SPEC §7 SECRETS_ENCRYPT_*. */
bool se_field_name_is_allowed(const char *name);
/* Heuristic guard: true if s holds a token shaped like base64 key material (16/24/32 bytes). */
bool se_log_looks_like_key(const char *s);

/* Where output goes. SECRETS_ENCRYPT_LOG_TARGET=auto|journal|stderr|console|null in the
 * environment overrides what the program chose (for tests and debugging). */
typedef enum se_log_target {
        SE_LOG_TARGET_AUTO,    /* stderr is the journal stream (JOURNAL_STREAM vs fstat): JOURNAL;
                                * else events to journald whenever it runs, and a plain line of
                                * everything on stderr (se_log_get_target() returns AUTO then) */
        SE_LOG_TARGET_JOURNAL, /* sd_journal_sendv; <N>-prefixed stderr if that fails */
        SE_LOG_TARGET_STDERR,  /* "<N>message" lines on stderr */
        SE_LOG_TARGET_CONSOLE, /* plain "message" lines on stderr */
        SE_LOG_TARGET_NULL,
        _SE_LOG_TARGET_MAX,
        _SE_LOG_TARGET_INVALID = -EINVAL,
} se_log_target;

void se_log_set_target(se_log_target target);
/* The target that the next line will use, after the environment override and AUTO. */
se_log_target se_log_get_target(void);
se_log_target se_log_target_from_string(const char *s);
const char *se_log_target_to_string(se_log_target t);
/* Lines with a priority above this are dropped (default LOG_INFO; SECRETS_ENCRYPT_LOG_LEVEL=
 * 0..7 or debug|info|notice|warning|err|crit|alert|emerg overrides it). */
void se_log_set_max_level(int priority);
int se_log_get_max_level(void);
/* Events carry OBJECT_SYSTEMD_UNIT=unit (the API server's unit they concern), so that
 * `journalctl -u unit` shows them; NULL or "" removes it. */
void se_log_set_object_unit(const char *unit);
/* What stderr shows when it is not the journal (AUTO, CONSOLE, STDERR): events whose bit
 * (1 << type) is in event_mask and plain lines up to max_priority. The journal still gets every
 * event. Default: everything (UINT64_MAX, LOG_DEBUG). */
void se_log_set_terminal_filter(uint64_t event_mask, int max_priority);
/* True if stderr is connected to the journal (JOURNAL_STREAM matches fstat(2) of fd 2). */
bool se_log_stderr_is_journal(void);

/* What a capture sink receives. Every iov entry is "FIELD=value" and is NUL-terminated just past
 * iov_len. */
typedef struct se_log_record {
        int type; /* se_event_type, or _SE_EVENT_NONE for plain log lines */
        int priority;
        const struct iovec *iov;
        size_t n_iov;
} se_log_record;

typedef void (*se_log_sink_t)(const se_log_record *record, void *userdata);

/* Every line and event goes to sink instead of journald/stderr; NULL restores normal output. */
void se_log_set_sink(se_log_sink_t sink, void *userdata);
/* Called for every event (not plain log lines) after it was written or given to the sink; output
 * is unchanged. Events logged while the observer runs are not observed (no recursion). NULL
 * removes it. */
typedef void (*se_event_observer_t)(const se_log_record *record, void *userdata);
void se_event_set_observer(se_event_observer_t fn, void *userdata);
/* Value of a field in a record (points into the record), or NULL. */
const char *se_log_record_get(const se_log_record *record, const char *field);

/* Returns 0, or a negative errno when something was dropped or redacted (a field not allowed or
 * not valid, a value that looks like key material, a bad format): the entry is still written
 * without it. Unreachable journald is not an error (stderr fallback). */
int se_event_internal(se_event_type type, int priority, int error, const char *file, int line, const char *func,
                      const char *format, ...) __attribute__((format(printf, 7, 0))) __attribute__((sentinel));

/* Returns -abs(error) if error != 0 (so "return se_log_error_errno(r, ...)" works), else 0. */
int se_log_internal(int priority, int error, const char *file, int line, const char *func, const char *format, ...)
        __attribute__((format(printf, 6, 7)));

/* Makes the compiler check an item's format and arguments; prints nothing extra ("%.0d" of 0). */
#define SE_ITEM(fmt, ...)    "%.0d" fmt, (0 && printf(fmt, ##__VA_ARGS__)), ##__VA_ARGS__
#define SE_MESSAGE(fmt, ...) SE_ITEM("MESSAGE=" fmt, ##__VA_ARGS__)
#define SE_FIELD(fmt, ...)   SE_ITEM(fmt, ##__VA_ARGS__)

/* Event with the table's priority. */
#define se_event(type, ...) se_event_internal((type), -1, 0, __FILE__, __LINE__, __func__, __VA_ARGS__, NULL)
/* Event with ERRNO= (error may be negative) and an explicit priority (-1: the table's). */
#define se_event_full(type, priority, error, ...)                                                                     \
        se_event_internal((type), (priority), (error), __FILE__, __LINE__, __func__, __VA_ARGS__, NULL)

#define se_log_full(priority, ...) se_log_internal((priority), 0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define se_log_debug(...)          se_log_full(LOG_DEBUG, __VA_ARGS__)
#define se_log_info(...)           se_log_full(LOG_INFO, __VA_ARGS__)
#define se_log_notice(...)         se_log_full(LOG_NOTICE, __VA_ARGS__)
#define se_log_warning(...)        se_log_full(LOG_WARNING, __VA_ARGS__)
#define se_log_error(...)          se_log_full(LOG_ERR, __VA_ARGS__)
/* "%m" in the format expands to strerror(error). */
#define se_log_full_errno(priority, error, ...)                                                                       \
        se_log_internal((priority), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define se_log_warning_errno(error, ...) se_log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define se_log_error_errno(error, ...)   se_log_full_errno(LOG_ERR, (error), __VA_ARGS__)
