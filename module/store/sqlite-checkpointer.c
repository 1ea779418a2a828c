/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A WAL checkpoint on its own connection and thread.
 *
 * SQLite's auto-checkpoint runs inside the committing call: after a commit that leaves the WAL
 * over 1000 pages, the writer itself copies the WAL's pages into the database file and syncs it.
 * In a re-encryption pass that was a quarter of the writer's time, spent while the pages to
 * encrypt next waited. Here the writer's WAL hook only wakes this thread, which runs PASSIVE
 * checkpoints on a second connection while the writer goes on. PASSIVE never waits for a lock
 * and never blocks a reader or writer (kine's included); what it cannot copy yet stays in the WAL,
 * as with auto-checkpoint. Crash safety is SQLite's either way: the WAL is the commit record and
 * a checkpoint only copies what is already durable in it.
 *
 * The WAL stays bounded: past HARD_FRAMES the writer waits for the checkpoint under way, which
 * takes no lock, so it always ends.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>
#include <stdio.h>
#include <time.h>

#include "macro.h"
#include "sqlite-checkpointer.h"
#include "se-util.h"

/* SQLite's own auto-checkpoint threshold, in WAL frames (pages) */
#define SOFT_FRAMES 1000
/* 64 MiB of 4 KiB pages: the most the WAL may grow ahead of the checkpointer */
#define HARD_FRAMES 16384

struct se_wal_checkpointer {
        sqlite3 *writer, *db; /* db: our own connection */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool wanted, running_pass, quit;
        unsigned passes; /* checkpoint passes finished */
};

static void *checkpointer_main(void *userdata) {
        se_wal_checkpointer *c = userdata;

        pthread_mutex_lock(&c->lock);
        for (;;) {
                while (!c->wanted && !c->quit)
                        pthread_cond_wait(&c->cond, &c->lock);
                if (c->quit)
                        break;
                c->wanted = false;
                c->running_pass = true;
                pthread_mutex_unlock(&c->lock);
                /* Errors are not ours to report: what is not copied stays in the WAL, which the next
                 * pass, kine or the last connection's close will copy. */
                (void) sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
                pthread_mutex_lock(&c->lock);
                c->running_pass = false;
                c->passes++;
                pthread_cond_broadcast(&c->cond);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* Runs in the writer's thread after each commit, with the write lock already released. */
static int wal_hook(void *userdata, sqlite3 *db, const char *schema, int n_frames) {
        se_wal_checkpointer *c = userdata;

        (void) db;
        (void) schema;
        if (n_frames < SOFT_FRAMES)
                return SQLITE_OK;

        pthread_mutex_lock(&c->lock);
        if (n_frames >= HARD_FRAMES) {
                /* wait for one whole pass that began after this commit */
                unsigned target = c->passes + (c->running_pass ? 2 : 1);

                c->wanted = true;
                pthread_cond_broadcast(&c->cond);
                while (c->passes < target && !c->quit)
                        pthread_cond_wait(&c->cond, &c->lock);
        } else if (!c->wanted) {
                c->wanted = true;
                pthread_cond_broadcast(&c->cond);
        }
        pthread_mutex_unlock(&c->lock);
        return SQLITE_OK;
}

static bool in_wal_mode(sqlite3 *db) {
        sqlite3_stmt *q = NULL;
        bool wal = false;

        if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL) != SQLITE_OK)
                return false;
        if (sqlite3_step(q) == SQLITE_ROW) {
                const char *mode = (const char *) sqlite3_column_text(q, 0);
                wal = mode && strcasecmp(mode, "wal") == 0;
        }
        sqlite3_finalize(q);
        return wal;
}

int se_wal_checkpointer_start(sqlite3 *writer, const char *path, se_wal_checkpointer **ret) {
        se_wal_checkpointer *c;

        if (!in_wal_mode(writer))
                return 0;
        c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        c->writer = writer;
        /* A PASSIVE checkpoint on a connection that has not read the database yet does nothing:
         * its pager has not opened the WAL. Reading the schema opens it. */
        if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
            sqlite3_exec(c->db, "SELECT COUNT(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK ||
            !in_wal_mode(c->db)) {
                sqlite3_close_v2(c->db);
                free(c);
                return 0;
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
        if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
                pthread_cond_destroy(&c->cond);
                pthread_mutex_destroy(&c->lock);
                sqlite3_close_v2(c->db);
                free(c);
                return 0;
        }
        /* replaces the auto-checkpoint, which is itself a WAL hook */
        sqlite3_wal_hook(writer, wal_hook, c);
        *ret = c;
        return 1;
}

void se_wal_checkpointer_stop(se_wal_checkpointer *c) {
        if (!c)
                return;
        if (getenv("XP_DEBUG")) {
                int lg = 0, ck = 0;
                uint64_t t0 = se_now_usec(CLOCK_MONOTONIC);
                sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &lg, &ck);
                fprintf(stderr, "passes %u log %d ckpt %d last pass %llu us\n", c->passes, lg, ck,
                        (unsigned long long) (se_now_usec(CLOCK_MONOTONIC) - t0));
        }
        sqlite3_wal_autocheckpoint(c->writer, SOFT_FRAMES);
        pthread_mutex_lock(&c->lock);
        c->quit = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        sqlite3_close_v2(c->db);
        free(c);
}
