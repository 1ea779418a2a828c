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

/* The exposition text for the facts. */
int se_metrics_format(const se_facts *f, char **ret);
/* Formats and atomically writes path (0644). */
int se_metrics_write(const char *path, const se_facts *f, se_error *e);
