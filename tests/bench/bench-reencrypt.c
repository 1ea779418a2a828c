/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Re-encryption throughput against the datastore's own rewrite speed (not a test; `make bench`).
 *
 * kine SQLite: N secrets of 1 KiB (k8s\0 Secret + random bytes) under aescbc key A, config rotated
 * to [B, A], then timed, each on a fresh copy of the same database, in three rounds whose order
 * alternates (median reported):
 *   baseline  one INSERT … SELECT superseding every current row with its own value, in one
 *             transaction, on a fresh copy of the same database (the fastest rewrite SQLite does);
 *             each SQLite phase is timed until its connection is closed, whose checkpoint copies
 *             what the WAL still holds into the database;
 *   engine    se_reencrypt() with its checkpoint;
 *   command   `secrets-encrypt reencrypt` as the CLI runs it after `rotate` (se_ctx_open(),
 *             se_op_reencrypt(), se_ctx_close()): the pass, the check before the prune, the state
 *             writes, the archive of the removed key and the prune, on a state directory where
 *             the API server runs the rotated config.
 * etcd (3 members on loopback), median of three rounds of: the same paged reads and batched
 * compare-and-swap transactions carrying the unchanged values, one txn at a time (sequential) and
 * with requests in flight (ceiling; see run_store_baseline()); then the engine.
 * Each timed phase runs in a fresh process (this binary re-executed), so peak RSS is its own.
 *
 *   SE_BENCH_SECRETS=N   secrets for the main runs (default 100000)
 *   SE_BENCH_ROUNDS=N    rounds of the SQLite comparison (default 3)
 *   SE_BENCH_QUICK=1     skip the 1,000,000-secret memory run
 *   SE_BENCH_ETCD=0      skip etcd; SE_BENCH_ETCD_SECRETS=N (default: SE_BENCH_SECRETS)
 *   SE_BENCH_SQLITE=0    skip the SQLite comparison
 *   SE_BENCH_DIR=DIR     where the databases go (default $TMPDIR or /tmp; needs ~3 GiB free at 1M)
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib-etcd.h"
#include "se-ops.h"
#include "se-util.h"
#include "../reencrypt-helpers.h"

#define VALUE_SIZE 1024
#define SQLITE_CACHE_PRAGMA "PRAGMA cache_size = -16384" /* as the kine store's connection */

static char *driver_dir; /* removed by die() too, so a failed run leaves nothing behind */

static void rm_rf(const char *dir);

static _noreturn_ void die(const char *fmt, ...) _printf_(1, 2);
static void die(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fputs("bench-reencrypt: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        if (driver_dir)
                rm_rf(driver_dir);
        exit(1);
}

static uint64_t now_usec(void) {
        return se_now_usec(CLOCK_MONOTONIC);
}

static long peak_rss_kib(void) {
        struct rusage ru;

        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static size_t env_size(const char *name, size_t def) {
        const char *v = getenv(name);
        return v && *v ? (size_t) strtoull(v, NULL, 10) : def;
}

static bool env_bool(const char *name, bool def) {
        const char *v = getenv(name);
        return v && *v ? !streq(v, "0") : def;
}

/* ---- phases run in a child process; each prints one result line ------------------------------ */

static void seed_sqlite(const char *path, size_t n) {
        sqlite3 *db = tk_create(path, true);
        se_transformer *t = rt_transformer("aescbc:a");
        sqlite3_stmt *st = NULL;
        uint8_t plain[VALUE_SIZE];
        se_buf out = {};

        /* kine's create row for a key that never existed */
        if (sqlite3_prepare_v2(db,
                               "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, "
                               "old_value) VALUES(?1, 1, 0, 0, 0, 0, ?2, NULL)",
                               -1, &st, NULL) != SQLITE_OK)
                die("prepare: %s", sqlite3_errmsg(db));
        tk_exec(db, "BEGIN IMMEDIATE");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *key = rt_key(i);

                rt_plaintext(i, 0, VALUE_SIZE, plain, sizeof(plain));
                if (se_transformer_write(t, key, plain, sizeof(plain), &out, NULL) < 0)
                        die("encrypt failed");
                sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
                sqlite3_bind_blob(st, 2, out.data, (int) out.len, SQLITE_STATIC);
                if (sqlite3_step(st) != SQLITE_DONE)
                        die("insert: %s", sqlite3_errmsg(db));
                sqlite3_reset(st);
                if (i % 50000 == 49999) {
                        tk_exec(db, "COMMIT");
                        tk_exec(db, "BEGIN IMMEDIATE");
                }
        }
        tk_exec(db, "COMMIT");
        sqlite3_finalize(st);
        tk_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
        tk_close(db);
        se_buf_free(&out);
        se_transformer_free(t);
}

static void run_sqlite_baseline(const char *path) {
        sqlite3 *db = tk_open(path);
        int64_t before, after;
        uint64_t t0, t1;

        tk_exec(db, SQLITE_CACHE_PRAGMA);
        before = tk_row_count(db);
        t0 = now_usec();
        tk_exec(db, "BEGIN IMMEDIATE");
        tk_exec(db, "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                    "SELECT kv.name, 0, 0, CASE WHEN kv.created != 0 THEN kv.id ELSE kv.create_revision END, kv.id, "
                    "kv.lease, kv.value, kv.value FROM kine AS kv "
                    "WHERE kv.name >= '" RT_PREFIX "' AND kv.name < '/registry/secrets0' "
                    "AND kv.id = (SELECT MAX(mkv.id) FROM kine AS mkv WHERE mkv.name = kv.name) AND kv.deleted = 0");
        tk_exec(db, "COMMIT");
        tk_close(db); /* timed: its checkpoint copies what the WAL still holds, as the engine's close */
        t1 = now_usec();
        db = tk_open(path);
        after = tk_row_count(db);
        tk_close(db);
        printf("%" PRIu64 " %ld %" PRId64 "\n", t1 - t0, peak_rss_kib(), after - before);
}

static void run_engine(const char *endpoint, const char *state, const char *keys) {
        se_store *s = NULL;
        se_config *c = rt_config(keys);
        se_reencrypt_result res = {};
        se_error e = SE_ERROR_NULL;
        uint64_t t0, t1;

        if (se_store_open(&(se_store_options){ .endpoint = endpoint }, &s, &e) < 0)
                die("open %s: %s", endpoint, se_error_message(&e));
        t0 = now_usec();
        if (se_reencrypt(s, c,
                         &(se_reencrypt_options){ .state_dir = env_bool("SE_BENCH_NO_CHECKPOINT", false) ? NULL : state,
                                                  .page_size = env_size("SE_BENCH_PAGE", 0),
                                                  .batch_size = env_size("SE_BENCH_BATCH", 0),
                                                  .checkpoint_interval_usec = env_size("SE_BENCH_CP_USEC", 0) },
                         &res, &e) < 0)
                die("reencrypt: %s", se_error_message(&e));
        se_store_close(s); /* timed: the checkpoint of what the WAL still holds */
        t1 = now_usec();
        printf("%" PRIu64 " %ld %" PRIu64 "\n", t1 - t0, peak_rss_kib(), res.rewritten);
        se_reencrypt_result_done(&res);
        se_config_free(c);
}

static void write_state_file(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", dir, name) < 0 || se_write_file_atomic(path, text, strlen(text), 0600) < 0)
                die("cannot write %s/%s", dir, name);
}

/* The state `rotate` leaves with the API server restarted on the rotated config [B, A]: its
 * config, stage and hash, and the config the server loaded. */
static void setup_command_state(const char *state) {
        se_config *c = rt_config("aescbc:b,a");
        _cleanup_free_ char *json = NULL, *stage = NULL, *own = NULL;
        char hash[65];
        size_t size;

        if (se_config_to_json(c, &json, &size) < 0 || se_sha256_hex(json, size, hash) < 0)
                die("cannot serialize the config");
        if (asprintf(&stage, "rotate-%s", hash) < 0 ||
            asprintf(&own, "{\"annotation\":\"rotate-%s\",\"running\":\"rotate-%s\"}", hash, hash) < 0)
                die("oom");
        write_state_file(state, "encryption-config.json", json);
        write_state_file(state, "running-config.json", json);
        write_state_file(state, "encryption-state.json", stage);
        write_state_file(state, "secrets-encrypt.json", own);
        se_config_free(c);
}

static void run_command(const char *endpoint, const char *state) {
        static const char *const under_a[] = {"k8s:enc:aescbc:v1:a:", NULL}, *const under_b[] = {"k8s:enc:aescbc:v1:b:", NULL};
        _cleanup_free_ char *secret_a = rt_secret("a"), *cpath = NULL;
        _cleanup_free_ uint8_t *config = NULL;
        size_t config_size = 0;
        se_settings settings;
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        uint64_t t0, t1, n_a = 0, n_b = 0;
        se_ctx ctx;

        setup_command_state(state);
        setenv("SECRETS_ENCRYPT_LOG_TARGET", "null", 1); /* its events: not timed output */
        if (se_settings_init(&settings) < 0 || se_settings_set(&settings, "state-dir", state, &e) < 0 ||
            se_settings_set(&settings, "node-name", "bench", &e) < 0 ||
            se_settings_set(&settings, "datastore-endpoint", endpoint, &e) < 0)
                die("settings: %s", se_error_message(&e));

        t0 = now_usec();
        if (se_ctx_open(&ctx, &settings, SE_LOCK_WAIT_USEC, &e) < 0)
                die("open the state: %s", se_error_message(&e));
        if (se_op_reencrypt(&ctx, false, false, &e) < 0)
                die("reencrypt: %s", se_error_message(&e));
        se_ctx_close(&ctx);
        t1 = now_usec();

        /* untimed: the key is gone, no value is under A (the library's full scan), every secret is
         * under B */
        if (asprintf(&cpath, "%s/encryption-config.json", state) < 0 ||
            se_read_file(cpath, 1024 * 1024, &config, &config_size) < 0)
                die("cannot read %s", cpath ?: "the config");
        if (memmem(config, config_size, secret_a, strlen(secret_a)))
                die("the command did not remove key A");
        if (se_store_open(&(se_store_options){ .endpoint = endpoint }, &s, &e) < 0 ||
            se_scan_value_prefixes(s, "/registry/", under_a, &n_a, NULL, &e) < 0 ||
            se_store_count_values(s, RT_PREFIX, "/registry/secrets0", 0, 0, under_b, &n_b, &e) < 0)
                die("check: %s", se_error_message(&e));
        if (n_a > 0)
                die("%" PRIu64 " values still under key A", n_a);
        printf("%" PRIu64 " %ld %" PRIu64 "\n", t1 - t0, peak_rss_kib(), n_b);
        se_store_close(s);
        se_settings_done(&settings);
}

/* etcd baselines: what the engine does to the store, minus the crypto. A page is read (the limit
 * asks for one more key, the last one of the previous page, as the engine does) and its values
 * written back unchanged by compare-and-swap.
 *   sequential  one txn per se_store_update() call: one round trip at a time, the request pattern
 *               before issue 20 (the engine matched it at 0.98x);
 *   ceiling     every page's txns in flight together, and the next page read on a second
 *               connection meanwhile: the most this client's requests get out of the cluster. */
typedef struct prefetch {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        const char *endpoint;
        se_store *store; /* NULL: a second connection in a thread of its own reads ahead */
        char *after;
        se_kv_list page[2];
        bool full[2], last[2];
        pthread_t thread;
} prefetch;

static se_store *open_bench_store(const char *endpoint) {
        se_store *s = NULL;
        se_error e = SE_ERROR_NULL;

        if (se_store_open(&(se_store_options){ .endpoint = endpoint }, &s, &e) < 0)
                die("open %s: %s", endpoint, se_error_message(&e));
        return s;
}

/* Reads the page after p->after into slot; true if it was the last one. */
static bool read_bench_page(prefetch *p, se_store *s, size_t slot) {
        se_kv_list *l = &p->page[slot];
        se_error e = SE_ERROR_NULL;
        bool more;

        se_kv_list_done(l);
        if (se_store_range(s, RT_PREFIX, p->after, SE_REENCRYPT_DEFAULT_PAGE + (p->after ? 1 : 0), l, &e) < 0)
                die("range: %s", se_error_message(&e));
        more = l->more && l->n_items > (p->after ? 1u : 0u);
        free(p->after);
        p->after = l->n_items > 0 ? rt_strdup(l->items[l->n_items - 1].key) : NULL;
        return !more;
}

static void *prefetch_main(void *arg) {
        prefetch *p = arg;
        se_store *s = open_bench_store(p->endpoint);
        bool last = false;

        for (size_t slot = 0; !last; slot ^= 1) {
                pthread_mutex_lock(&p->lock);
                while (p->full[slot])
                        pthread_cond_wait(&p->cond, &p->lock);
                pthread_mutex_unlock(&p->lock);
                last = read_bench_page(p, s, slot);
                pthread_mutex_lock(&p->lock);
                p->full[slot] = true;
                p->last[slot] = last;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
        }
        se_store_close(s);
        return NULL;
}

static void run_store_baseline(const char *endpoint, bool ceiling) {
        se_store *s = open_bench_store(endpoint);
        se_error e = SE_ERROR_NULL;
        se_kv_update *u = rt_calloc(SE_REENCRYPT_DEFAULT_PAGE, sizeof(se_kv_update));
        prefetch p = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .endpoint = endpoint };
        _cleanup_free_ char *prev = NULL;
        uint64_t t0, t1, n = 0, total = 0;
        bool last = false;

        t0 = now_usec();
        if (se_store_count(s, RT_PREFIX, &total, &e) < 0)
                die("count: %s", se_error_message(&e));
        if (ceiling && pthread_create(&p.thread, NULL, prefetch_main, &p) != 0)
                die("pthread_create failed");
        for (size_t slot = 0; !last; slot ^= 1) {
                se_kv_list *l = &p.page[slot];
                size_t first, k = 0, step;

                if (ceiling) {
                        pthread_mutex_lock(&p.lock);
                        while (!p.full[slot])
                                pthread_cond_wait(&p.cond, &p.lock);
                        last = p.last[slot];
                        pthread_mutex_unlock(&p.lock);
                } else
                        last = read_bench_page(&p, s, slot);
                first = prev && l->n_items > 0 && streq(l->items[0].key, prev) ? 1 : 0;
                for (size_t i = first; i < l->n_items; i++)
                        u[k++] = (se_kv_update){ .key = l->items[i].key, .value = l->items[i].value,
                                                 .value_size = l->items[i].value_size,
                                                 .expected_mod_revision = l->items[i].mod_revision };
                /* sequential: one txn per call (128 = etcd's --max-txn-ops), which the store sends alone */
                step = ceiling ? MAX(k, 1u) : 128;
                for (size_t i = 0; i < k; i += step) {
                        int r = se_store_update(s, u + i, MIN(step, k - i), &e);

                        if (r < 0)
                                die("update: %s", se_error_message(&e));
                        n += (uint64_t) r;
                }
                free(prev);
                prev = l->n_items > 0 ? rt_strdup(l->items[l->n_items - 1].key) : NULL;
                pthread_mutex_lock(&p.lock);
                p.full[slot] = false;
                pthread_cond_broadcast(&p.cond);
                pthread_mutex_unlock(&p.lock);
        }
        t1 = now_usec();
        if (ceiling)
                pthread_join(p.thread, NULL);
        printf("%" PRIu64 " %ld %" PRIu64 "\n", t1 - t0, peak_rss_kib(), n);
        se_kv_list_done(&p.page[0]);
        se_kv_list_done(&p.page[1]);
        free(p.after);
        free(u);
        se_store_close(s);
}

static void seed_store(const char *endpoint, size_t n) {
        se_store *s = NULL;
        se_error e = SE_ERROR_NULL;
        se_transformer *t = rt_transformer("aescbc:a");
        const size_t batch = 500;
        se_kv_update *u = rt_calloc(batch, sizeof(se_kv_update));
        char **keys = rt_calloc(batch, sizeof(char *));
        se_buf *vals = rt_calloc(batch, sizeof(se_buf));
        uint8_t plain[VALUE_SIZE];

        if (se_store_open(&(se_store_options){ .endpoint = endpoint }, &s, &e) < 0)
                die("open %s: %s", endpoint, se_error_message(&e));
        for (size_t i = 0; i < n; i += batch) {
                size_t k = MIN(batch, n - i);

                for (size_t j = 0; j < k; j++) {
                        free(keys[j]);
                        keys[j] = rt_key(i + j);
                        rt_plaintext(i + j, 0, VALUE_SIZE, plain, sizeof(plain));
                        if (se_transformer_write(t, keys[j], plain, sizeof(plain), &vals[j], NULL) < 0)
                                die("encrypt failed");
                        u[j] = (se_kv_update){ .key = keys[j], .value = vals[j].data, .value_size = vals[j].len };
                }
                if (se_store_update(s, u, k, &e) != (int) k)
                        die("seed: %s", se_error_message(&e));
        }
        for (size_t j = 0; j < batch; j++) {
                free(keys[j]);
                se_buf_free(&vals[j]);
        }
        free(keys);
        free(vals);
        free(u);
        se_transformer_free(t);
        se_store_close(s);
}

/* ---- the driver ---------------------------------------------------------------------------- */

typedef struct phase_result {
        uint64_t usec;
        long rss_kib;
        uint64_t rows;
} phase_result;

static phase_result run_phase(const char *args) {
        _cleanup_free_ char *cmd = NULL;
        phase_result p = {};
        FILE *f;
        int status;

        if (asprintf(&cmd, "/proc/%d/exe %s", (int) getpid(), args) < 0)
                die("oom");
        f = popen(cmd, "re");
        if (!f)
                die("cannot run %s", cmd);
        if (fscanf(f, "%" SCNu64 " %ld %" SCNu64, &p.usec, &p.rss_kib, &p.rows) != 3)
                die("no result from: %s", args);
        status = pclose(f);
        if (status != 0)
                die("phase failed: %s", args);
        return p;
}

static void copy_file(const char *from, const char *to) {
        _cleanup_free_ char *cmd = NULL;

        if (asprintf(&cmd, "cp --sparse=never '%s' '%s'", from, to) < 0 || system(cmd) != 0)
                die("cannot copy %s", from);
}

static void rm_rf(const char *dir) {
        _cleanup_free_ char *cmd = NULL;

        if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0)
                (void) system(cmd);
}

static double rate(uint64_t n, uint64_t usec) {
        return usec ? (double) n * 1e6 / (double) usec : 0;
}

static void print_row(const char *store, const char *what, size_t n, const phase_result *p) {
        printf("  %-7s %-9s %8zu secrets  %7.2f s  %8.0f secrets/s  peak RSS %6.1f MiB\n", store, what, n,
               (double) p->usec / 1e6, rate(n, p->usec), (double) p->rss_kib / 1024.0);
}

static char *make_dir(const char *base, const char *name) {
        char *d;

        if (asprintf(&d, "%s/%s", base, name) < 0 || mkdir(d, 0700) < 0)
                die("cannot create %s/%s", base, name);
        return d;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

typedef enum sqlite_kind {
        KIND_BASELINE,
        KIND_ENGINE,
        KIND_COMMAND,
        _KIND_MAX,
} sqlite_kind;

/* One timed run of kind on a fresh copy of the seeded database (and a fresh state directory). */
static phase_result sqlite_round(const char *dir, const char *seeded, sqlite_kind kind, size_t n) {
        static const char *const what[] = {"baseline", "engine", "command"};
        _cleanup_free_ char *db = NULL, *state = NULL, *args = NULL;
        phase_result p;

        if (asprintf(&db, "%s/%s.db", dir, what[kind]) < 0 || asprintf(&state, "%s/state-%s", dir, what[kind]) < 0)
                die("oom");
        copy_file(seeded, db);
        if (mkdir(state, 0700) < 0)
                die("cannot create %s", state);
        if ((kind == KIND_BASELINE ? asprintf(&args, "--sqlite-baseline '%s'", db)
                                   : asprintf(&args, "--%s 'sqlite://%s' '%s'", what[kind], db, state)) < 0)
                die("oom");
        p = run_phase(args);
        if (p.rows != n)
                die("%s rewrote %" PRIu64 " values, expected %zu", what[kind], p.rows, n);
        rm_rf(state);
        for (const char *suffix = ""; suffix; suffix = streq(suffix, "") ? "-wal" : streq(suffix, "-wal") ? "-shm" : NULL) {
                _cleanup_free_ char *f = NULL;

                if (asprintf(&f, "%s%s", db, suffix) >= 0)
                        (void) unlink(f);
        }
        return p;
}

static void bench_sqlite(const char *base, size_t n, bool compare) {
        static const char *const what[] = {"baseline", "engine", "command"};
        _cleanup_free_ char *dir = NULL, *db = NULL, *args = NULL;
        size_t rounds = MAX(env_size("SE_BENCH_ROUNDS", 3), (size_t) 1);
        uint64_t *usec[_KIND_MAX];
        phase_result med[_KIND_MAX] = {};
        uint64_t t0;

        if (asprintf(&dir, "%s/sqlite-%zu", base, n) < 0 || mkdir(dir, 0700) < 0)
                die("mkdir");
        if (asprintf(&db, "%s/seeded.db", dir) < 0)
                die("oom");

        t0 = now_usec();
        if (asprintf(&args, "--seed-sqlite '%s' %zu", db, n) < 0)
                die("oom");
        (void) run_phase(args);
        printf("  sqlite  seeded    %8zu secrets of %d B under key A in %.1f s\n", n, VALUE_SIZE,
               (double) (now_usec() - t0) / 1e6);

        if (!compare) {
                /* the memory run: the engine once */
                phase_result p = sqlite_round(dir, db, KIND_ENGINE, n);

                print_row("sqlite", "engine", n, &p);
                rm_rf(dir);
                return;
        }

        for (size_t k = 0; k < _KIND_MAX; k++)
                usec[k] = rt_calloc(rounds, sizeof(uint64_t));
        for (size_t r = 0; r < rounds; r++) {
                /* the order turns each round: no kind always runs first on a cold cache */
                printf("  sqlite  round %zu  ", r + 1);
                for (size_t i = 0; i < _KIND_MAX; i++) {
                        sqlite_kind k = (sqlite_kind) ((i + r) % _KIND_MAX);
                        phase_result p = sqlite_round(dir, db, k, n);

                        usec[k][r] = p.usec;
                        med[k].rss_kib = MAX(med[k].rss_kib, p.rss_kib);
                        printf(" %s %.2f s", what[k], (double) p.usec / 1e6);
                }
                printf("  (engine %.2fx, command %.2fx)\n", (double) usec[KIND_BASELINE][r] / (double) usec[KIND_ENGINE][r],
                       (double) usec[KIND_BASELINE][r] / (double) usec[KIND_COMMAND][r]);
        }
        for (size_t k = 0; k < _KIND_MAX; k++) {
                qsort(usec[k], rounds, sizeof(uint64_t), cmp_u64);
                med[k].usec = usec[k][rounds / 2];
                print_row("sqlite", what[k], n, &med[k]);
                free(usec[k]);
        }
        printf("  sqlite  ratio     engine %.2f, whole command %.2f (secrets/s against the baseline, medians of %zu "
               "rounds; targets >= 0.80 and >= 1.00)\n",
               rate(n, med[KIND_ENGINE].usec) / rate(n, med[KIND_BASELINE].usec),
               rate(n, med[KIND_COMMAND].usec) / rate(n, med[KIND_BASELINE].usec), rounds);
        rm_rf(dir);
}

#define ETCD_ROUNDS 3

static phase_result median_of(phase_result *r) {
        uint64_t t[ETCD_ROUNDS];
        phase_result m = r[0];

        for (size_t i = 0; i < ETCD_ROUNDS; i++)
                t[i] = r[i].usec;
        qsort(t, ETCD_ROUNDS, sizeof(t[0]), cmp_u64);
        m.usec = t[ETCD_ROUNDS / 2];
        for (size_t i = 0; i < ETCD_ROUNDS; i++)
                m.rss_kib = MAX(m.rss_kib, r[i].rss_kib);
        return m;
}

/* Every full rewrite adds a revision per key: compact after each round, so the rounds stay far
 * from etcd's 2 GiB backend quota. */
static void compact_etcd(tl_etcd *c) {
        _cleanup_free_ char *out = NULL, *args = NULL;
        const char *p;

        if (tl_etcdctl(c, "get / --prefix --keys-only --limit=1 -w json", &out) != 0 || !out ||
            !(p = strstr(out, "\"revision\":")))
                die("etcdctl get: %s", out ?: "no output");
        if (asprintf(&args, "compact %llu --physical >/dev/null", strtoull(p + 11, NULL, 10)) < 0 ||
            tl_etcdctl(c, args, NULL) != 0)
                die("etcdctl compact failed");
}

static phase_result etcd_phase(const char *args, size_t n, const char *what) {
        phase_result p = run_phase(args);

        if (p.rows != n)
                die("etcd %s rewrote %" PRIu64 " values, expected %zu", what, p.rows, n);
        return p;
}

static void bench_etcd(size_t n) {
        _cleanup_free_ char *args = NULL;
        phase_result seq[ETCD_ROUNDS], ceil[ETCD_ROUNDS], eng[ETCD_ROUNDS], m_seq, m_ceil, m_eng;
        tl_etcd *c;
        uint64_t t0;

        if (!tl_etcd_available()) {
                printf("  etcd    skipped: no etcd binary\n");
                return;
        }
        c = tl_etcd_start(3);
        if (!c) {
                printf("  etcd    skipped: cluster did not start\n");
                return;
        }

        t0 = now_usec();
        if (asprintf(&args, "--seed-store '%s' %zu", c->endpoints, n) < 0)
                die("oom");
        (void) run_phase(args);
        printf("  etcd    seeded    %8zu secrets of %d B under key A in %.1f s (3 members)\n", n, VALUE_SIZE,
               (double) (now_usec() - t0) / 1e6);

        for (size_t round = 0; round < ETCD_ROUNDS; round++) {
                _cleanup_free_ char *state = NULL, *name = NULL;

                if (asprintf(&name, "state%zu", round) < 0)
                        die("oom");
                state = make_dir(c->dir, name);
                /* the order turns each round, so a change in the machine's load does not
                 * always hit the same phase */
                for (size_t k = 0; k < 3; k++) {
                        size_t phase = (round + k) % 3;

                        free(args);
                        if (phase == 0 && asprintf(&args, "--store-sequential '%s'", c->endpoints) >= 0)
                                seq[round] = etcd_phase(args, n, "sequential baseline");
                        else if (phase == 1 && asprintf(&args, "--store-ceiling '%s'", c->endpoints) >= 0)
                                ceil[round] = etcd_phase(args, n, "ceiling");
                        else if (phase == 2 && asprintf(&args, "--engine '%s' '%s' %s", c->endpoints, state,
                                                        round % 2 == 0 ? "aescbc:b,a" : "aescbc:a,b") >= 0)
                                eng[round] = etcd_phase(args, n, "engine");
                        else
                                die("oom");
                }
                printf("  etcd    round %zu   sequential %.0f, ceiling %.0f, engine %.0f secrets/s\n", round + 1,
                       rate(n, seq[round].usec), rate(n, ceil[round].usec), rate(n, eng[round].usec));
                compact_etcd(c);
        }
        m_seq = median_of(seq);
        m_ceil = median_of(ceil);
        m_eng = median_of(eng);
        printf("  (median of %d rounds; sequential = one txn at a time, as before issue 20; ceiling = the same\n"
               "   reads and txns with every page's txns in flight and the next page read meanwhile)\n",
               ETCD_ROUNDS);
        print_row("etcd", "sequent.", n, &m_seq);
        print_row("etcd", "ceiling", n, &m_ceil);
        print_row("etcd", "engine", n, &m_eng);
        printf("  etcd    ratio     %.2f (engine/ceiling secrets/s; target >= 0.90)\n",
               rate(n, m_eng.usec) / rate(n, m_ceil.usec));
        printf("  etcd    gain      %.2f (engine/sequential baseline secrets/s)\n",
               rate(n, m_eng.usec) / rate(n, m_seq.usec));
        tl_etcd_free(c);
}

static size_t etcd_secrets;

START_TEST(bench_etcd_test) {
        bench_etcd(etcd_secrets);
}
END_TEST

int main(int argc, char *argv[]) {
        _cleanup_free_ char *base = NULL;
        const char *tmp;
        size_t n;

        tk_exit_on_error = true;
        if (argc == 4 && streq(argv[1], "--seed-sqlite")) {
                seed_sqlite(argv[2], (size_t) strtoull(argv[3], NULL, 10));
                printf("0 %ld 0\n", peak_rss_kib());
                return 0;
        }
        if (argc == 4 && streq(argv[1], "--seed-store")) {
                seed_store(argv[2], (size_t) strtoull(argv[3], NULL, 10));
                printf("0 %ld 0\n", peak_rss_kib());
                return 0;
        }
        if (argc == 3 && streq(argv[1], "--sqlite-baseline")) {
                run_sqlite_baseline(argv[2]);
                return 0;
        }
        if (argc == 3 && (streq(argv[1], "--store-sequential") || streq(argv[1], "--store-ceiling"))) {
                run_store_baseline(argv[2], streq(argv[1], "--store-ceiling"));
                return 0;
        }
        if ((argc == 4 || argc == 5) && streq(argv[1], "--engine")) {
                /* etcd rounds alternate the direction: A -> B, then B -> A, ... */
                run_engine(argv[2], argv[3], argc == 5 ? argv[4] : "aescbc:b,a");
                return 0;
        }
        if (argc == 4 && streq(argv[1], "--command")) {
                run_command(argv[2], argv[3]);
                return 0;
        }
        if (argc != 1)
                die("usage: bench-reencrypt (settings come from SE_BENCH_* variables)");

        tmp = getenv("SE_BENCH_DIR") ?: getenv("TMPDIR") ?: "/tmp";
        if (asprintf(&base, "%s/se-bench.XXXXXX", tmp) < 0 || !mkdtemp(base))
                die("cannot create a directory under %s", tmp);
        setvbuf(stdout, NULL, _IOLBF, 0);
        driver_dir = base;

        n = env_size("SE_BENCH_SECRETS", 100000);
        printf("re-encryption (aescbc A -> B, %d B values, page %u, batch %u, checkpoint per batch)\n", VALUE_SIZE,
               SE_REENCRYPT_DEFAULT_PAGE, SE_REENCRYPT_DEFAULT_BATCH);
        if (env_bool("SE_BENCH_SQLITE", true))
                bench_sqlite(base, n, true);
        if (env_bool("SE_BENCH_ETCD", true)) {
                /* the etcd helpers report through Check: run that part as a Check test */
                Suite *su = suite_create("bench");
                TCase *tc = tcase_create("etcd");
                SRunner *sr;

                etcd_secrets = env_size("SE_BENCH_ETCD_SECRETS", n);
                tcase_set_timeout(tc, 3600);
                tcase_add_test(tc, bench_etcd_test);
                suite_add_tcase(su, tc);
                sr = srunner_create(su);
                srunner_set_fork_status(sr, CK_NOFORK);
                srunner_run_all(sr, CK_SILENT);
                if (srunner_ntests_failed(sr) > 0)
                        printf("  etcd    failed\n");
                srunner_free(sr);
        }
        if (!env_bool("SE_BENCH_QUICK", false)) {
                printf("memory at scale (target: peak RSS <= 64 MiB)\n");
                bench_sqlite(base, 1000000, false);
        }
        rm_rf(base);
        driver_dir = NULL;
        return 0;
}
