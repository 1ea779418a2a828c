/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

_public_ int se_metrics_format(const se_facts *f, char **ret) {
        se_buf b = {.max = METRICS_MAX_SIZE};
        int64_t age = se_facts_active_key_age(f);
        int r;

        r = header(&b, "secrets_encrypt_stage",
                   "Secrets encryption rotation stage of this node (1 for the current stage).");
        for (int s = 0; s < _SE_STAGE_MAX && r >= 0; s++)
                r = se_buf_printf(&b, "secrets_encrypt_stage{stage=\"%s\"} %d\n", se_stage_to_string(s),
                                  f->stage && streq(f->stage, se_stage_to_string(s)) ? 1 : 0);
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
        int r;

        r = se_metrics_format(f, &text);
        if (r < 0)
                return se_error_set(e, r, "cannot format metrics: %s", strerror(-r));
        r = se_write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0)
                return se_error_set(e, r, "cannot write metrics-file %s: %s", path, strerror(-r));
        return 0;
}
