/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "se-store.h"

/* se_store_read_ahead() for a backend whose client blocks: the range is read on a second
 * instance of the backend (its own connection), on a thread of its own, while the caller writes
 * on the first (read-ahead.c; store.c runs it for backends with open_reader). */
typedef struct se_read_ahead se_read_ahead;

/* Reads a range on the reader's instance (which only the reader's thread uses). Errors need no
 * message: a failed read ahead is read again the usual way. */
typedef int (*se_read_ahead_range_fn)(void *conn, const char *prefix, const char *start, size_t limit,
                                      se_kv_list *ret);

/* Starts the thread for conn; -errno if it cannot. */
int se_read_ahead_new(se_read_ahead_range_fn range, void *conn, se_read_ahead **ret);
/* Drops what is asked or read and stops the thread; conn is the caller's again. NULL is a no-op. */
void se_read_ahead_free(se_read_ahead *a);

/* Asks for the range (dropping any earlier one); the thread reads it now. */
void se_read_ahead_ask(se_read_ahead *a, const char *prefix, const char *start, size_t limit);
/* The range read ahead, if it was asked with exactly these arguments and read without error
 * (waiting for it if it is being read); -ESTALE if not. Either way nothing stays asked. */
int se_read_ahead_take(se_read_ahead *a, const char *prefix, const char *start, size_t limit, se_kv_list *ret);
/* Forgets what was asked, waiting for a read under way to end. NULL is a no-op. */
void se_read_ahead_drop(se_read_ahead *a);
/* Whether a write of key could change the range asked. NULL: false. */
bool se_read_ahead_covers(const se_read_ahead *a, const char *key);
