/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>

/* Copies a WAL database's committed pages back into the database file on a thread of its own,
 * so that a writer's commits do not wait for it (sqlite-checkpointer.c). */
typedef struct se_wal_checkpointer se_wal_checkpointer;

/* For writer, an open connection to path. Returns 1 and *ret when started; 0 (nothing to do,
 * writer keeps SQLite's own auto-checkpoint) when the database is not in WAL mode or no thread
 * or connection could be had. Never fails. */
int se_wal_checkpointer_start(sqlite3 *writer, const char *path, se_wal_checkpointer **ret);

/* Stops the thread, closes its connection and gives writer back SQLite's auto-checkpoint.
 * Call it before writer is closed. NULL is a no-op. */
void se_wal_checkpointer_stop(se_wal_checkpointer *c);
