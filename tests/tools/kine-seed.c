/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kine-seed DB COUNT [--value-size N] [--prefix P] [--namespaces N] [--start N] [--seed N]
 *                    [--config encryption-config.json]
 *
 * Creates (kine's DDL, WAL, compact_rev_key and /registry/health, as k3s leaves a new database)
 * or extends a kine SQLite database with COUNT secrets <prefix>ns-<i % namespaces>/secret-<i>,
 * each a plausible kube-apiserver protobuf value ("k8s\0" + runtime.Unknown wrapping a v1
 * Secret with one random data entry) of about --value-size bytes. Rows are written exactly as
 * kine writes creates (or updates, for keys that already exist). Values are stored as plaintext
 * (the identity provider) unless --config names an EncryptionConfiguration, whose write key
 * then encrypts them through se_transformer_write().
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib-kine.h"
#include "macro.h"
#include "se-config.h"
#include "se-envelope.h"
#include "se-util.h"

#define COMMIT_EVERY 20000

static uint64_t rng_state;

/* xorshift64*: reproducible filler, not security. */
static uint64_t rng_next(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545F4914F6CDD1DULL;
}

static int put_varint(se_buf *b, uint64_t v) {
        uint8_t tmp[10];
        size_t n = 0;

        do {
                tmp[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
        return se_buf_append(b, tmp, n);
}

/* A length-delimited protobuf field. */
static int put_field(se_buf *b, unsigned field, const void *p, size_t n) {
        int r = put_varint(b, (field << 3) | 2);
        if (r >= 0)
                r = put_varint(b, n);
        if (r >= 0)
                r = se_buf_append(b, p, n);
        return r;
}

static int put_str(se_buf *b, unsigned field, const char *s) {
        return put_field(b, field, s, strlen(s));
}

/* k8s\0 + runtime.Unknown{TypeMeta{v1, Secret}, Raw: Secret{metadata, data{"data": random}, type}, "", ""} */
static int build_value(se_buf *out, const char *ns, const char *name, uint64_t index, size_t data_size) {
        se_buf meta = {}, secret = {}, entry = {}, tm = {}, ts = {};
        char uid[37];
        uint8_t *rnd;
        int r;

        snprintf(uid, sizeof(uid), "%08" PRIx64 "-%04x-4%03x-8%03x-%012" PRIx64, rng_next() & 0xffffffffu,
                 (unsigned) (rng_next() & 0xffff), (unsigned) (rng_next() & 0xfff), (unsigned) (rng_next() & 0xfff),
                 (uint64_t) (rng_next() & 0xffffffffffffULL));
        rnd = malloc(MAX(data_size, 1u));
        if (!rnd)
                return -ENOMEM;
        for (size_t i = 0; i < data_size; i += 8) {
                uint64_t v = rng_next();
                memcpy(rnd + i, &v, MIN((size_t) 8, data_size - i));
        }

        r = put_varint(&ts, (1 << 3) | 0); /* Time.seconds */
        if (r >= 0)
                r = put_varint(&ts, 1700000000u + index);
        if (r >= 0)
                r = put_str(&meta, 1, name);
        if (r >= 0)
                r = put_str(&meta, 3, ns);
        if (r >= 0)
                r = put_str(&meta, 5, uid);
        if (r >= 0)
                r = put_field(&meta, 8, ts.data, ts.len);
        if (r >= 0)
                r = put_str(&entry, 1, "data");
        if (r >= 0)
                r = put_field(&entry, 2, rnd, data_size);
        if (r >= 0)
                r = put_field(&secret, 1, meta.data, meta.len);
        if (r >= 0)
                r = put_field(&secret, 2, entry.data, entry.len);
        if (r >= 0)
                r = put_str(&secret, 3, "Opaque");
        if (r >= 0)
                r = put_str(&tm, 1, "v1");
        if (r >= 0)
                r = put_str(&tm, 2, "Secret");

        se_buf_clear(out);
        if (r >= 0)
                r = se_buf_append(out, "k8s\0", 4);
        if (r >= 0)
                r = put_field(out, 1, tm.data, tm.len);
        if (r >= 0)
                r = put_field(out, 2, secret.data, secret.len);
        if (r >= 0)
                r = put_str(out, 3, ""); /* contentEncoding */
        if (r >= 0)
                r = put_str(out, 4, ""); /* contentType */

        free(rnd);
        se_buf_free(&meta);
        se_buf_free(&secret);
        se_buf_free(&entry);
        se_buf_free(&tm);
        se_buf_free(&ts);
        return r;
}

/* Picks the random payload size so the whole value is value_size bytes (or as close as the
 * fixed framing allows). */
static int build_sized_value(se_buf *out, const char *ns, const char *name, uint64_t index, size_t value_size) {
        size_t d = value_size;
        int r;

        for (int i = 0; i < 6; i++) {
                uint64_t saved = rng_state;

                r = build_value(out, ns, name, index, d);
                if (r < 0)
                        return r;
                if (out->len == value_size || i == 5)
                        return 0;
                if (out->len > value_size && d == 0)
                        return 0;
                rng_state = saved; /* same bytes on retry */
                if (out->len > value_size)
                        d -= MIN(d, out->len - value_size);
                else
                        d += value_size - out->len;
        }
        return 0;
}

static const char create_sql[] =
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
        "SELECT ?1, 1, 0, 0, COALESCE(t.id, 0), 0, ?2, t.value "
        "FROM (SELECT 1) LEFT JOIN kine AS t ON t.id = (SELECT MAX(id) FROM kine WHERE name = ?1) "
        "WHERE t.id IS NULL OR t.deleted != 0";
static const char update_sql[] =
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
        "SELECT ?1, 0, 0, CASE WHEN c.created != 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, ?2, c.value "
        "FROM kine AS c WHERE c.id = (SELECT MAX(id) FROM kine WHERE name = ?1) AND c.deleted = 0";

static void usage(FILE *f) {
        fprintf(f, "Usage: kine-seed DB COUNT [--value-size N] [--prefix /registry/secrets/] [--namespaces N]\n"
                   "                 [--start N] [--seed N] [--config encryption-config.json]\n");
}

static int sql_die(sqlite3 *db, const char *what) {
        fprintf(stderr, "kine-seed: %s: %s\n", what, sqlite3_errmsg(db));
        return EXIT_FAILURE;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"value-size", required_argument, NULL, 's'},
                {"prefix", required_argument, NULL, 'p'},
                {"namespaces", required_argument, NULL, 'n'},
                {"start", required_argument, NULL, 'S'},
                {"seed", required_argument, NULL, 'r'},
                {"config", required_argument, NULL, 'c'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *prefix = "/registry/secrets/", *config = NULL, *path;
        unsigned long long count, value_size = 1024, namespaces = 10, start = 0, seed = 1;
        se_transformer *t = NULL;
        sqlite3_stmt *cs = NULL, *us = NULL;
        se_buf plain = {}, enc = {};
        se_error e = SE_ERROR_NULL;
        struct stat st;
        sqlite3 *db;
        int c, ret = EXIT_FAILURE;

        tk_exit_on_error = true;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 's':
                        value_size = strtoull(optarg, NULL, 10);
                        break;
                case 'p':
                        prefix = optarg;
                        break;
                case 'n':
                        namespaces = strtoull(optarg, NULL, 10);
                        break;
                case 'S':
                        start = strtoull(optarg, NULL, 10);
                        break;
                case 'r':
                        seed = strtoull(optarg, NULL, 10);
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return 64;
                }
        if (argc - optind != 2 || namespaces == 0 || value_size > 16u * 1024u * 1024u) {
                usage(stderr);
                return 64;
        }
        path = argv[optind];
        count = strtoull(argv[optind + 1], NULL, 10);
        rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;

        if (config) {
                se_config *cfg = NULL;
                int r = se_config_load(config, &cfg, NULL, &e);
                if (r >= 0)
                        r = se_transformer_new(cfg, "secrets", &t, &e);
                se_config_free(cfg);
                if (r < 0) {
                        fprintf(stderr, "kine-seed: %s: %s\n", config, se_error_message(&e));
                        se_error_done(&e);
                        return EXIT_FAILURE;
                }
        }

        if (stat(path, &st) < 0) {
                db = tk_create(path, true);
        } else {
                db = tk_open(path);
                tk_ensure_schema(db);
        }
        /* fixture writer: durability of an interrupted seed does not matter */
        tk_exec(db, "PRAGMA synchronous = OFF");
        tk_exec(db, "PRAGMA cache_size = -65536");

        if (sqlite3_prepare_v2(db, create_sql, -1, &cs, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, update_sql, -1, &us, NULL) != SQLITE_OK) {
                ret = sql_die(db, "prepare");
                goto finish;
        }

        tk_exec(db, "BEGIN IMMEDIATE");
        for (unsigned long long i = start; i < start + count; i++) {
                char ns[32], name[48], key[4096];
                const se_buf *v = &plain;
                int r;

                snprintf(ns, sizeof(ns), "ns-%llu", i % namespaces);
                snprintf(name, sizeof(name), "secret-%07llu", i);
                if ((size_t) snprintf(key, sizeof(key), "%s%s/%s", prefix, ns, name) >= sizeof(key)) {
                        fprintf(stderr, "kine-seed: prefix too long\n");
                        goto finish;
                }
                r = build_sized_value(&plain, ns, name, i, value_size);
                if (r < 0) {
                        fprintf(stderr, "kine-seed: building a value: %s\n", strerror(-r));
                        goto finish;
                }
                if (t) {
                        r = se_transformer_write(t, key, plain.data, plain.len, &enc, &e);
                        if (r < 0) {
                                fprintf(stderr, "kine-seed: encrypting %s: %s\n", key, se_error_message(&e));
                                goto finish;
                        }
                        v = &enc;
                }

                sqlite3_bind_text(cs, 1, key, -1, SQLITE_STATIC);
                sqlite3_bind_blob(cs, 2, v->len ? (const void *) v->data : "", (int) v->len, SQLITE_STATIC);
                if (sqlite3_step(cs) != SQLITE_DONE) {
                        ret = sql_die(db, key);
                        goto finish;
                }
                sqlite3_reset(cs);
                if (sqlite3_changes(db) == 0) {
                        /* the key is live already: supersede it, as kine's update does */
                        sqlite3_bind_text(us, 1, key, -1, SQLITE_STATIC);
                        sqlite3_bind_blob(us, 2, v->len ? (const void *) v->data : "", (int) v->len, SQLITE_STATIC);
                        if (sqlite3_step(us) != SQLITE_DONE) {
                                ret = sql_die(db, key);
                                goto finish;
                        }
                        sqlite3_reset(us);
                }
                if ((i - start + 1) % COMMIT_EVERY == 0) {
                        tk_exec(db, "COMMIT");
                        tk_exec(db, "BEGIN IMMEDIATE");
                }
        }
        tk_exec(db, "COMMIT");
        printf("kine-seed: %llu secrets under %s in %s (revision %" PRId64 ")\n", count, prefix, path,
               tk_revision(db));
        ret = EXIT_SUCCESS;

finish:
        sqlite3_finalize(cs);
        sqlite3_finalize(us);
        if (ret != EXIT_SUCCESS && !sqlite3_get_autocommit(db))
                (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        tk_close(db);
        se_buf_free(&plain);
        se_buf_free(&enc);
        se_error_done(&e);
        se_transformer_free(t);
        return ret;
}
