/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "macro.h"
#include "se-metrics.h"
#include "se-util.h"

#define METRICS_MAX_SIZE (256u * 1024u)

static int header(se_buf *b, const char *name, const char *help) {
        return se_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/* Label values escape backslash, double quote and newline (exposition format). */
static int append_label_value(se_buf *b, const char *v) {
        int r = 0;

        for (const char *p = v ? v : ""; *p && r >= 0; p++)
                switch (*p) {
                case '\\':
                        r = se_buf_append_str(b, "\\\\");
                        break;
                case '"':
                        r = se_buf_append_str(b, "\\\"");
                        break;
                case '\n':
                        r = se_buf_append_str(b, "\\n");
                        break;
                default:
                        r = se_buf_append(b, p, 1);
                }
        return r;
}

static int gauge(se_buf *b, const char *name, const char *help, int64_t v) {
        int r = header(b, name, help);

        return r < 0 ? r : se_buf_printf(b, "%s %" PRIi64 "\n", name, v);
}

static int hook_gauges(se_buf *b, int failed, int64_t when) {
        int r = gauge(b, "secrets_encrypt_hook_failed",
                      "Whether secrets-encrypt-hook failed at its last run (the API server did not start).", failed);

        return r < 0 ? r
                     : gauge(b, "secrets_encrypt_hook_last_run_timestamp_seconds",
                             "When secrets-encrypt-hook last ran.", when);
}

/* The hook result this process reported (se_metrics_set_hook_result()). */
static struct {
        int failed; /* -1: none */
        int64_t when;
} hook_result = {-1, -1};

_public_ void se_metrics_set_hook_result(bool failed, int64_t when) {
        hook_result.failed = when < 0 ? -1 : failed;
        hook_result.when = when;
}

/* The metrics file's text as this process last read or wrote it. The file is read once: every
 * event refreshes the metrics, and a read per event would cost each event a file read (and one
 * that is not a regular file must cost nothing at all: se_read_file() refuses a FIFO without
 * blocking). */
static struct {
        char *path;
        char *text; /* NULL: none, unreadable or not a regular file */
} previous;

static const char *previous_text(const char *path) {
        uint8_t *data = NULL;
        size_t size;

        if (previous.path && streq(previous.path, path))
                return previous.text;
        free(previous.path);
        free(previous.text);
        previous.text = NULL;
        previous.path = strdup(path);
        if (previous.path && se_read_file(path, METRICS_MAX_SIZE, &data, &size) >= 0)
                previous.text = (char *) data;
        return previous.text;
}

static void remember(const char *path, const char *text, size_t size) {
        char *p = strdup(path), *t = strndup(text, size);

        free(previous.path);
        free(previous.text);
        previous.path = p;
        previous.text = p ? t : NULL;
        if (!p)
                free(t);
}

_public_ void se_metrics_forget_previous(void) {
        free(previous.path);
        free(previous.text);
        previous.path = previous.text = NULL;
}

_public_ void se_metrics_previous_counts(const char *path, uint64_t *ret_done, uint64_t *ret_total) {
        const char *text = previous_text(path);

        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                unsigned long long v;

                if (sscanf(line, "secrets_encrypt_reencrypt_done %llu", &v) == 1)
                        *ret_done = v;
                else if (sscanf(line, "secrets_encrypt_reencrypt_total %llu", &v) == 1)
                        *ret_total = v;
                line = nl ? nl + 1 : NULL;
        }
}

_public_ void se_metrics_history_parse(const char *text, const char *stage, se_metrics_history *ret) {
        se_metrics_history h = SE_METRICS_HISTORY_NULL;
        int64_t since = -1, hook_run = -1;
        int hook_failed = -1;
        bool same_stage = false;

        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t) (nl - line) : strlen(line);
                char buf[256], name[64];
                long long v;

                if (n < sizeof(buf)) {
                        memcpy(buf, line, n);
                        buf[n] = 0;
                        if (sscanf(buf, "secrets_encrypt_stage{stage=\"%63[a-z_]\"} %lld", name, &v) == 2) {
                                if (v == 1)
                                        same_stage = stage && streq(name, stage);
                        } else if (sscanf(buf, "secrets_encrypt_stage_since_timestamp_seconds %lld", &v) == 1)
                                since = v;
                        else if (sscanf(buf, "secrets_encrypt_hook_failed %lld", &v) == 1)
                                hook_failed = v == 0 || v == 1 ? (int) v : -1;
                        else if (sscanf(buf, "secrets_encrypt_hook_last_run_timestamp_seconds %lld", &v) == 1)
                                hook_run = v;
                }
                line = nl ? nl + 1 : NULL;
        }
        if (same_stage && since > 0)
                h.stage_since = since;
        if (hook_failed >= 0 && hook_run > 0) {
                h.hook_failed = hook_failed;
                h.hook_last_run = hook_run;
        }
        *ret = h;
}

_public_ int se_metrics_format(const se_facts *f, char **ret) {
        return se_metrics_format_full(f, NULL, ret);
}

_public_ int se_metrics_format_full(const se_facts *f, const se_metrics_history *h, char **ret) {
        se_buf b = {.max = METRICS_MAX_SIZE};
        int64_t age = se_facts_active_key_age(f);
        int r;

        r = header(&b, "secrets_encrypt_stage",
                   "Secrets encryption rotation stage of this node (1 for the current stage).");
        for (int s = 0; s < _SE_STAGE_MAX && r >= 0; s++)
                r = se_buf_printf(&b, "secrets_encrypt_stage{stage=\"%s\"} %d\n", se_stage_to_string(s),
                                  f->stage && streq(f->stage, se_stage_to_string(s)) ? 1 : 0);
        if (r >= 0 && f->stage)
                r = gauge(&b, "secrets_encrypt_stage_since_timestamp_seconds",
                          "When this node entered its current stage (at the latest: first written with it).",
                          h && h->stage_since > 0 ? h->stage_since : f->now);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_configured", "Whether an encryption configuration file exists.",
                          f->configured);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_enabled",
                          "Whether secrets are written encrypted (1), in plaintext (0), unknown layout (-1).",
                          f->enabled);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_keys", "Number of encryption keys in the configuration.",
                          (int64_t) f->n_keys);
        if (r >= 0 && f->active_key_time >= 0)
                r = gauge(&b, "secrets_encrypt_active_key_created_timestamp_seconds",
                          "When the active key was created (key name timestamp, else config file mtime).",
                          f->active_key_time);
        if (r >= 0 && age >= 0)
                r = gauge(&b, "secrets_encrypt_active_key_age_seconds",
                          "Age of the active key when the metrics were written.", age);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_last_rotation_timestamp_seconds",
                          "When the last key rotation finished (0 = never).", f->last_rotation);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_reencrypt_pending",
                          "Whether a re-encryption is requested or was interrupted.", f->reencrypt_pending);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_reencrypt_done", "Secrets re-encrypted by the current or last run.",
                          (int64_t) f->reencrypt_done);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_reencrypt_total", "Secrets to re-encrypt in the current or last run.",
                          (int64_t) f->reencrypt_total);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_hashes_match",
                          "Whether every server reports the same configuration hash.", f->hashes_match);
        if (r >= 0 && h && h->hook_failed >= 0 && h->hook_last_run > 0)
                r = hook_gauges(&b, h->hook_failed, h->hook_last_run);
        if (r >= 0)
                r = gauge(&b, "secrets_encrypt_metrics_timestamp_seconds", "When this file was written.", f->now);
        if (r >= 0)
                r = header(&b, "secrets_encrypt_info", "Software version, node name and provider of new keys.");
        if (r >= 0)
                r = se_buf_printf(&b, "secrets_encrypt_info{version=\"");
        if (r >= 0)
                r = append_label_value(&b, SE_VERSION);
        if (r >= 0)
                r = se_buf_append_str(&b, "\",node=\"");
        if (r >= 0)
                r = append_label_value(&b, f->node);
        if (r >= 0)
                r = se_buf_append_str(&b, "\",provider=\"");
        if (r >= 0)
                r = append_label_value(&b, f->provider ? f->provider : (f->configured ? "identity" : "none"));
        if (r >= 0)
                r = se_buf_append_str(&b, "\"} 1\n");
        if (r >= 0)
                r = se_buf_append(&b, "", 1);
        if (r < 0) {
                se_buf_free(&b);
                return r;
        }
        *ret = (char *) b.data;
        return 0;
}

_public_ int se_metrics_write(const char *path, const se_facts *f, se_error *e) {
        _cleanup_free_ char *text = NULL;
        se_metrics_history h = SE_METRICS_HISTORY_NULL;
        const char *old = previous_text(path);
        int r;

        if (old)
                se_metrics_history_parse(old, f->stage, &h);
        if (hook_result.failed >= 0) {
                h.hook_failed = hook_result.failed;
                h.hook_last_run = hook_result.when;
        }
        r = se_metrics_format_full(f, &h, &text);
        if (r < 0)
                return se_error_set(e, r, "cannot format metrics: %s", strerror(-r));
        r = se_write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return se_error_set(e, r, "cannot write metrics-file %s: %s", path, strerror(-r));
        remember(path, text, strlen(text));
        return 0;
}

_public_ int se_metrics_write_hook_result(const char *path, se_error *e) {
        se_buf b = {.max = METRICS_MAX_SIZE};
        const char *old;
        int r = 0;

        if (hook_result.failed < 0 || hook_result.when <= 0)
                return 0;
        old = previous_text(path);
        if (!old) {
                /* none yet: no file names the node; anything else must not be replaced blindly */
                struct stat st;

                if (lstat(path, &st) < 0 && errno == ENOENT)
                        return 0;
                return se_error_set(e, -EBADFD, "cannot read metrics-file %s: not a readable regular file", path);
        }
        for (const char *line = old; line && *line && r >= 0;) {
                const char *nl = strchr(line, '\n');
                size_t n = nl ? (size_t) (nl - line) + 1 : strlen(line);

                if (!startswith(line, "secrets_encrypt_hook_") && !startswith(line, "# HELP secrets_encrypt_hook_") &&
                    !startswith(line, "# TYPE secrets_encrypt_hook_")) {
                        r = se_buf_append(&b, line, n);
                        if (r >= 0 && !nl)
                                r = se_buf_append_str(&b, "\n");
                }
                line = nl ? nl + 1 : NULL;
        }
        if (r >= 0)
                r = hook_gauges(&b, hook_result.failed, hook_result.when);
        if (r < 0) {
                se_buf_free(&b);
                return se_error_set(e, r, "cannot format metrics: %s", strerror(-r));
        }
        r = se_write_file_atomic(path, b.data, b.len, 0644);
        if (r >= 0)
                remember(path, (const char *) b.data, b.len);
        se_buf_free(&b);
        if (r < 0)
                return se_error_set(e, r, "cannot write metrics-file %s: %s", path, strerror(-r));
        return 0;
}
