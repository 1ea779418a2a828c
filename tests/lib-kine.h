/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Test helpers that write kine SQLite databases exactly as kine does (reference
 * k8s-encryption-at-rest.md §5.2): kine's DDL, create/update/delete rows in the ≤ v0.15 or v0.16
 * column style, gap- fill rows, compact_rev_key and kine's compaction; and kine's read semantics
 * (what kine would serve for a key), to compare our store's view against.
 *
 * Failures abort the current Check test (ck_abort_msg); programs outside a Check runner set
 * tk_exit_on_error = true to get a message on stderr and exit(1) instead.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern bool tk_exit_on_error;

typedef enum tk_style {
        TK_V015, /* kine ≤ v0.15 (k3s up to ~1.33) */
        TK_V016, /* kine v0.16 (HEAD) */
} tk_style;

/* Creates path with kine's exact DDL (v0.15+ index set) in WAL mode, then does what kine does at
 * start: the compact_rev_key row (value '') and /registry/health. wal=false keeps the default
 * rollback journal (to check we leave the mode alone). Returns an open connection. */
sqlite3 *tk_create(const char *path, bool wal);
/* Runs kine's DDL (CREATE … IF NOT EXISTS), as kine does on every start. */
void tk_ensure_schema(sqlite3 *db);
/* Opens an existing database read-write with a 5 s busy timeout. */
sqlite3 *tk_open(const char *path);
void tk_close(sqlite3 *db);
/* Runs SQL, aborting on error. */
void tk_exec(sqlite3 *db, const char *sql);

/* kine's create: the key must be absent or deleted (else aborts). Returns the new row id. */
int64_t tk_create_key(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size);
/* kine's update of the current live row (aborts if none). Returns the new row id. */
int64_t tk_update_key(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size);
/* create or update, whichever applies. */
int64_t tk_put(sqlite3 *db, tk_style style, const char *key, const void *value, size_t size);
static inline int64_t tk_put_str(sqlite3 *db, tk_style style, const char *key, const char *value) {
        return tk_put(db, style, key, value, value ? strlen(value) : 0);
}
/* kine's delete: a tombstone row superseding the current live row (aborts if none). */
int64_t tk_delete_key(sqlite3 *db, tk_style style, const char *key);

/* Makes a revision hole and fills it the way kine's poller does: the AUTOINCREMENT counter is
 * advanced by one (as by a writer whose id was consumed), then a "gap-<id>" row (created 0,
 * deleted 1, no values) is inserted with that id. Returns the gap id. */
int64_t tk_gap(sqlite3 *db);
/* kine's compaction up to target (no min-retain): deletes superseded rows and tombstones with
 * id ≤ target, then moves compact_rev_key's prev_revision to target. */
void tk_compact(sqlite3 *db, int64_t target);
/* MAX(id): the store revision. */
int64_t tk_revision(sqlite3 *db);
/* Number of rows in the table. */
int64_t tk_row_count(sqlite3 *db);

typedef struct tk_row {
        int64_t id;
        char *name;
        int64_t created, deleted, create_revision, prev_revision, lease;
        uint8_t *value; /* NULL when the column is NULL */
        size_t value_size;
        uint8_t *old_value;
        size_t old_value_size;
} tk_row;

/* The row with this id; false if none. */
bool tk_row_get(sqlite3 *db, int64_t id, tk_row *ret);
void tk_row_done(tk_row *r);

/* What kine serves for key: the MAX(id) row of the name unless deleted; create_revision is the
 * row's id for a create row, else its column. False if absent or deleted. Outputs may be NULL. */
bool tk_kine_get(sqlite3 *db, const char *key, uint8_t **ret_value, size_t *ret_size, int64_t *ret_mod_revision,
                 int64_t *ret_create_revision);
/* Number of live keys kine would list under prefix. */
int64_t tk_kine_count(sqlite3 *db, const char *prefix);
