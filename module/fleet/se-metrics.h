/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "se-error.h"
#include "se-facts.h"
#include "se-settings.h"

/*
 * The metrics-file setting: Prometheus text exposition format for node-exporter's textfile
 * collector (SPEC §8), e.g.
 *
 *   # HELP secrets_encrypt_stage Current secrets encryption stage of this node (1 = current).
 *   # TYPE secrets_encrypt_stage gauge
 *   secrets_encrypt_stage{stage="start"} 1
 *   secrets_encrypt_stage{stage="prepare"} 0
 *   ...
 *
 * The file is replaced atomically (temp file + rename) with mode 0644, so a scrape never sees
 * half of it.
 */

/* What the facts do not hold, carried from one write of the file to the next (the state has no
 * place for them):
 *   secrets_encrypt_stage_since_timestamp_seconds    when this node entered its current stage (the
 *                                                    first write that saw it: at the latest)
 *   secrets_encrypt_hook_failed                      1 when secrets-encrypt-hook failed at its last
 *                                                    run (the API server did not start), else 0
 *   secrets_encrypt_hook_last_run_timestamp_seconds  when that run was
 * The two hook metrics are written once a hook run reported its result (se_metrics_set_hook_result()),
 * and kept by every later write of any process until the next hook run. */
typedef struct se_metrics_history {
        int64_t stage_since;   /* unix seconds; -1: unknown, the facts' now is written */
        int hook_failed;       /* 1 failed, 0 succeeded, -1 unknown (not written) */
        int64_t hook_last_run; /* unix seconds; -1 unknown */
} se_metrics_history;

#define SE_METRICS_HISTORY_NULL ((se_metrics_history){.stage_since = -1, .hook_failed = -1, .hook_last_run = -1})

/* The exposition text for the facts (no history: the stage entered now, no hook result). */
int se_metrics_format(const se_facts *f, char **ret);
/* The same with history (NULL: none). */
int se_metrics_format_full(const se_facts *f, const se_metrics_history *h, char **ret);
/* The history in an earlier file's text: its stage-since timestamp when its current stage is stage
 * (else unknown), its hook result. Text that is not ours gives SE_METRICS_HISTORY_NULL. */
void se_metrics_history_parse(const char *text, const char *stage, se_metrics_history *ret);
/* The result of this process's secrets-encrypt-hook run (failed, at unix seconds when), written by
 * every later se_metrics_write() of the process; when < 0 forgets it. Not thread-safe. */
void se_metrics_set_hook_result(bool failed, int64_t when);
/* Formats and atomically writes path (0644), with the history read from the file it replaces and
 * the hook result set in this process. */
int se_metrics_write(const char *path, const se_facts *f, se_error *e);
/* When the facts cannot be read (an invalid config, an unreadable state directory): replaces only
 * the hook metrics in the existing file at path with the result set in this process, keeping the
 * rest as it was. 0 without doing anything when no result was set or the file does not exist. */
int se_metrics_write_hook_result(const char *path, se_error *e);
/* The re-encryption counts in the file at path as this process last read or wrote it (the file is
 * read once per process, never per event; a FIFO or anything else that is not a regular file is
 * not read and leaves the counts as they are). */
void se_metrics_previous_counts(const char *path, uint64_t *ret_done, uint64_t *ret_total);
/* Forgets the text remembered from the file, so the next write reads it again (tests). */
void se_metrics_forget_previous(void);
