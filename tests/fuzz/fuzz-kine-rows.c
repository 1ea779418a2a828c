/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the kine row reader (module/store/store-kine.c), through the public store
 * API: each input becomes a hostile kine SQLite database in a temporary file (odd names, NULL,
 * mistyped and huge values, tombstones, duplicate ids, schemas and tables that are not kine's,
 * locks, WAL-only rows, damaged pages), then se_store_open (require_data true, then false),
 * se_store_range (whole prefixes, and paged the way verify and reencrypt page), se_store_count
 * and se_store_get run on it (and se_store_update on a flag); the file is removed. Each input is
 * bounded: at most MAX_ROWS rows, values up to the input's size or one of 1 MiB, a 1 ms busy
 * timeout. A value above the reader's 64 MiB limit costs about half a second per read, so it is
 * not part of the input format: LLVMFuzzerInitialize checks it once per process instead (-EFBIG
 * with a message from range and get, the other rows still served).
 *
 * Checked beyond memory safety: an error carries a message; a page holds at most `limit` keys,
 * each under the prefix and not before the start; count agrees with the listing; paging with the
 * library's own loop ends and visits every key the listing has; and for a database with kine's
 * schema and untouched rows, get agrees with range, and a written update reads back. A damaged
 * file (raw bytes, patched pages) gets the first two only: SQLite does not notice an index that
 * disagrees with its table, and then serves keys out of order or outside the range.
 *
 * Defects this target found, fixed in store-kine.c (regress-nul-names-paging and
 * regress-utf16-prefix-range reproduce them):
 *   - a name with a NUL byte came back cut at the NUL, so rows "k\0a", "k\0b", … all listed as
 *     "k" and page + 2 of them made the paging loop of verify and reencrypt run forever; such a
 *     name is now an error;
 *   - in a UTF-16 database the prefix range compared UTF-16 code units ("/registry/secretsį"
 *     listed under "/registry/secrets/"); such a database is now refused as not kine's.
 *
 * Input (tests/fuzz/gen-seeds-data.py writes seeds from kine's real row sequences):
 *   byte 0   bits 0-1  0 rows, 1 rows then byte patches, 2 the rest of the input is the file,
 *                      3 no database: byte 1 picks missing file, empty file, directory, dangling
 *                      symlink
 *            bits 2-4  schema (SCHEMAS[])
 *            bit 5     WAL, the rows left in the -wal file
 *            bit 6     the building connection stays open inside BEGIN EXCLUSIVE
 *            bit 7     also compare-and-swap update some keys
 *   records  tag < 0xc0: a row; the tag is its id (ID below), then NAME, five NUMs (created,
 *                        deleted, create_revision, prev_revision, lease), two VALUEs (value,
 *                        old_value)
 *            tag 0xc0-0xfd: run DIRECTIVES[tag - 0xc0] (hostile SQL; errors ignored)
 *            tag 0xfe: the rest are patches (mode 1): 3 bytes each, offset (big endian, modulo
 *                      the file size; 0xffff truncates the file to value * 512 bytes) and byte
 *            tag 0xff: the end
 *   ID     < 0x80 previous id + tag (0: the same id again); 0x80 NULL; 0x81 8-byte integer;
 *          0x82 text '5'; 0x83 -1; 0x84 INT64_MAX; 0x85 0; 0x86 2.5; else previous id + 1
 *   NAME   0x00 NULL; 0x01 the previous row's name; 0x02 the name (next byte + 1) rows back;
 *          0x03 8-byte integer; 0x04 BLOB (LEN bytes); 0x05 TEXT (LEN bytes); 0x06 real;
 *          0x07 compact_rev_key; 0x08 /registry/health; 0x09-0x0f gap-<id>;
 *          0x10-0x1f NAME_PREFIXES[n - 0x10] + LEN bytes; others /registry/secrets/default/ +
 *          ((n - 0x20) & 0x3f) bytes
 *   NUM    < 0x60 that integer; 0x60-0x7f the id of the row (n - 0x5f) back (0 if none);
 *          0x80 NULL; 0x81 '0'; 0x82 '1'; 0x83 0.0; 0x84 1.5; 0x85 x'00'; 0x86 -1;
 *          0x87 INT64_MIN; 0x88 INT64_MAX; 0x89 1e300; 0x8a 'abc'; 0x8b 8-byte integer; else n
 *   VALUE  0x00 NULL; 0x01 empty BLOB; 0x02 BLOB of LEN bytes; 0x03 TEXT of LEN bytes;
 *          0x04 integer 42; 0x05 real; 0x06 zeroblob(ZEROBLOB_SIZES[next byte & 3]: 0, 4 KiB,
 *          64 KiB, 1 MiB);
 *          0x07-0x3f BLOB of (v - 7) bytes; else BLOB of (v - 0x40) bytes
 *   LEN    one byte; 0xff: two more bytes, big endian
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT_SIZE (256u * 1024u)
#define MAX_ROWS       256
#define KINE_MAX_VALUE 67108864 /* 64 MiB, the reader's limit (store-kine.c) */
#define PAGE           2        /* the paged walk's page size */
#define STRINGIFY_(x)  #x
#define STRINGIFY(x)   STRINGIFY_(x)
#define MAX_GETS       48

enum {
        MODE_ROWS,
        MODE_PATCHED,
        MODE_RAW,
        MODE_SPECIAL,
};

#define KINE_COLUMNS                                                                                                  \
        "id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER, deleted INTEGER, "                         \
        "create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB"
#define KINE_INDEXES                                                                                                  \
        "CREATE INDEX kine_name_index ON kine (name);"                                                                \
        "CREATE INDEX kine_name_id_index ON kine (name,id);"                                                          \
        "CREATE INDEX kine_id_deleted_index ON kine (id,deleted);"                                                    \
        "CREATE INDEX kine_prev_revision_index ON kine (prev_revision);"                                              \
        "CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision);"                           \
        "CREATE INDEX kine_id_compact_rev_key_with_prev_revision_index ON kine(id, name, prev_revision) "             \
        "WHERE name != 'compact_rev_key' AND prev_revision != 0;"

/* Which schemas are kine's own (ids unique, names compared bytewise): there get and range must
 * agree and the listing must be in strcmp order. */
static const struct {
        const char *sql;
        const char *table; /* where rows go */
        bool kine_like;
} SCHEMAS[8] = {
        /* kine's DDL (reference §5.2) */
        {"CREATE TABLE kine (" KINE_COLUMNS ");" KINE_INDEXES, "kine", true},
        /* name with INTEGER affinity ("123" becomes a number), the pre-v0.15 index set */
        {"CREATE TABLE kine (id INTEGER PRIMARY KEY AUTOINCREMENT, name INTEGER, created INTEGER, deleted INTEGER, "
         "create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB);"
         "CREATE INDEX kine_name_index ON kine (name); CREATE INDEX kine_name_id_index ON kine (name,id);"
         "CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision);",
         "kine", true},
        /* no index at all: other query plans */
        {"CREATE TABLE kine (" KINE_COLUMNS ");", "kine", true},
        /* no types, no primary key: duplicate and NULL ids, any type anywhere */
        {"CREATE TABLE kine (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value);"
         "CREATE INDEX kine_name_id_index ON kine (name,id);",
         "kine", false},
        /* columns in another order, an extra one, a case-blind name */
        {"CREATE TABLE kine (value BLOB, name TEXT COLLATE NOCASE, extra TEXT DEFAULT 'x', id INTEGER PRIMARY KEY, "
         "old_value BLOB, lease INTEGER, prev_revision INTEGER, create_revision INTEGER, deleted INTEGER, "
         "created INTEGER); CREATE INDEX kine_name_id_index ON kine (name, id);",
         "kine", false},
        /* WITHOUT ROWID: ids must be given */
        {"CREATE TABLE kine (id INTEGER PRIMARY KEY, name TEXT, created INTEGER, deleted INTEGER, "
         "create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB) WITHOUT ROWID;"
         "CREATE INDEX kine_name_id_index ON kine (name, id);",
         "kine", true},
        /* kine is a view over another table */
        {"CREATE TABLE kine_rows (" KINE_COLUMNS "); CREATE VIEW kine AS SELECT * FROM kine_rows;", "kine_rows",
         false},
        /* kine's DDL in a UTF-16 database */
        {"PRAGMA encoding = 'UTF-16le'; CREATE TABLE kine (" KINE_COLUMNS ");" KINE_INDEXES, "kine", false},
};

static const char *const DIRECTIVES[] = {
        "CREATE TABLE other (name TEXT, value BLOB); INSERT INTO other VALUES ('/registry/secrets/x', x'00')",
        "DROP INDEX IF EXISTS kine_name_id_index",
        "DROP INDEX IF EXISTS kine_name_index",
        "CREATE INDEX IF NOT EXISTS kine_name_desc ON kine (name DESC, id DESC)",
        "CREATE INDEX IF NOT EXISTS kine_name_expr ON kine (substr(name, 1, 12), id)",
        "ANALYZE",
        "ANALYZE; INSERT INTO sqlite_stat1 VALUES ('kine', 'kine_name_id_index', '1000000 1 1'), "
        "('kine', 'kine_name_index', '1 1000000'); ANALYZE sqlite_master",
        "CREATE TRIGGER IF NOT EXISTS kine_ignore BEFORE INSERT ON kine BEGIN SELECT RAISE(IGNORE); END",
        "CREATE TRIGGER IF NOT EXISTS kine_fail BEFORE INSERT ON kine BEGIN SELECT RAISE(FAIL, 'hostile'); END",
        "UPDATE sqlite_sequence SET seq = 9223372036854775807 WHERE name = 'kine'",
        "DELETE FROM kine WHERE id % 3 = 0",
        "UPDATE kine SET deleted = NULL WHERE id % 2 = 1",
        "UPDATE kine SET name = CAST(name AS BLOB) WHERE id % 2 = 0",
        "UPDATE kine SET id = -id WHERE id % 5 = 0",
        "UPDATE kine SET name = name || char(0) || 'x' WHERE id % 2 = 0",
        "UPDATE kine SET value = CAST(value AS TEXT)",
        "UPDATE kine SET value = zeroblob(70000) WHERE id = (SELECT MAX(id) FROM kine)",
        "UPDATE kine SET created = 1, create_revision = -1",
        "ALTER TABLE kine DROP COLUMN old_value",
        "ALTER TABLE kine DROP COLUMN create_revision",
        "ALTER TABLE kine ADD COLUMN extra TEXT DEFAULT 'x'",
        "ALTER TABLE kine RENAME TO Kine",
        "ALTER TABLE kine RENAME TO kine_old",
        "CREATE TABLE kine2 AS SELECT * FROM kine",
        "DROP TABLE kine",
        "DROP VIEW IF EXISTS kine",
        "PRAGMA user_version = 42; PRAGMA application_id = 7",
        "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
        "SELECT name || '/copy', created, deleted, create_revision, prev_revision, lease, value, old_value FROM kine "
        "LIMIT 256",
        "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value) "
        "SELECT name, 0, 1, create_revision, id, 0, NULL FROM kine WHERE deleted = 0 LIMIT 64",
        "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
        "CREATE TEMP TABLE t (x)",
        "PRAGMA wal_checkpoint(TRUNCATE)",
};

static const char *const NAME_PREFIXES[16] = {
        "/registry/secrets/",
        "/registry/secrets/default/",
        "/registry/configmaps/default/",
        "/registry/",
        "/registry/secrets0",
        "/registry/secrets/kube-system/",
        "/registry/secrets/default/a",
        "/registry/secretsz",
        "/",
        "",
        "/registry/secrets/\xff",
        "/registry/\xff\xff",
        "\xff\xff",
        "compact_rev_key",
        "/secrets-encrypt/",
        "/registry/secrets/default/b",
};

static const uint64_t ZEROBLOB_SIZES[4] = {0, 4096, 65536, 1024 * 1024};

/* The prefixes the reads run over; "\xff\xff" has no successor (an unbounded range). */
static const char *const PREFIXES[] = {
        "/registry/secrets/", "/registry/", "", "\xff\xff", "/registry/secrets/default/a",
};

typedef struct reader {
        const uint8_t *p, *end;
} reader;

typedef struct row_name {
        int type; /* SQLITE_TEXT, or another type (never read back as a key) */
        char *text;
        size_t size;
} row_name;

typedef struct build {
        sqlite3 *db;
        sqlite3_stmt *insert;
        unsigned mode, schema;
        bool wal, lock, update;
        bool touched;   /* a directive ran, or the file was patched */
        bool damaged;   /* bytes of the file were written by the input: SQLite may not notice */
        bool nul_names; /* a TEXT name holds a NUL byte */
        bool huge;      /* a value of 1 MiB was written */
        int64_t ids[MAX_ROWS];
        row_name names[MAX_ROWS];
        size_t n_rows;
} build;

static char dir[PATH_MAX - 64], path[PATH_MAX];

static bool rd_u8(reader *r, uint8_t *ret) {
        if (r->p >= r->end)
                return false;
        *ret = *r->p++;
        return true;
}

static uint8_t rd_byte(reader *r) {
        uint8_t b = 0;

        (void) rd_u8(r, &b);
        return b;
}

static int64_t rd_i64(reader *r) {
        uint64_t v = 0;

        for (size_t i = 0; i < 8; i++)
                v = (v << 8) | rd_byte(r);
        return (int64_t) v;
}

static size_t rd_len(reader *r) {
        size_t n = rd_byte(r);

        if (n == 0xff)
                n = ((size_t) rd_byte(r) << 8) | rd_byte(r);
        return n;
}

static const uint8_t *rd_bytes(reader *r, size_t *n) {
        const uint8_t *p = r->p;

        *n = MIN(*n, (size_t) (r->end - r->p));
        r->p += *n;
        return p;
}

static void cleanup_files(void) {
        static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
        char p[PATH_MAX + 16];

        if (!path[0])
                return;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
                if (unlink(p) < 0 && errno == EISDIR)
                        (void) rmdir(p);
        }
        (void) rmdir(path);
}

/* A crash (abort, sanitizer report) skips the atexit cleanup: files of processes gone are removed
 * on the next start. */
static void remove_stale(void) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char p[PATH_MAX + 256];
                int pid;

                if (sscanf(de->d_name, "fuzz-kine-rows-%d.db", &pid) != 1 || pid <= 0 || pid == getpid() ||
                    kill(pid, 0) == 0 || errno != ESRCH)
                        continue;
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                if (unlink(p) < 0 && errno == EISDIR)
                        (void) rmdir(p);
        }
        closedir(d);
}

static void setup_path(void) {
        const char *t = getenv("TMPDIR");

        if (path[0])
                return;
        /* tmpfs if there is one: the files are written and removed for every input */
        if (access("/dev/shm", W_OK) == 0)
                t = "/dev/shm";
        else if (!t || !*t)
                t = "/tmp";
        snprintf(dir, sizeof(dir), "%s", t);
        snprintf(path, sizeof(path), "%s/fuzz-kine-rows-%d.db", dir, (int) getpid());
        remove_stale();
        atexit(cleanup_files);
}

static void bind_num(build *b, reader *r, int col) {
        uint8_t n = rd_byte(r);

        if (n < 0x60)
                sqlite3_bind_int64(b->insert, col, n);
        else if (n < 0x80) {
                size_t back = (size_t) n - 0x5f;
                sqlite3_bind_int64(b->insert, col, back <= b->n_rows ? b->ids[b->n_rows - back] : 0);
        } else
                switch (n) {
                case 0x80:
                        sqlite3_bind_null(b->insert, col);
                        break;
                case 0x81:
                        sqlite3_bind_text(b->insert, col, "0", 1, SQLITE_STATIC);
                        break;
                case 0x82:
                        sqlite3_bind_text(b->insert, col, "1", 1, SQLITE_STATIC);
                        break;
                case 0x83:
                        sqlite3_bind_double(b->insert, col, 0.0);
                        break;
                case 0x84:
                        sqlite3_bind_double(b->insert, col, 1.5);
                        break;
                case 0x85:
                        sqlite3_bind_blob(b->insert, col, "", 1, SQLITE_STATIC);
                        break;
                case 0x86:
                        sqlite3_bind_int64(b->insert, col, -1);
                        break;
                case 0x87:
                        sqlite3_bind_int64(b->insert, col, INT64_MIN);
                        break;
                case 0x88:
                        sqlite3_bind_int64(b->insert, col, INT64_MAX);
                        break;
                case 0x89:
                        sqlite3_bind_double(b->insert, col, 1e300);
                        break;
                case 0x8a:
                        sqlite3_bind_text(b->insert, col, "abc", 3, SQLITE_STATIC);
                        break;
                case 0x8b:
                        sqlite3_bind_int64(b->insert, col, rd_i64(r));
                        break;
                default:
                        sqlite3_bind_int64(b->insert, col, n);
                }
}

static void bind_value(build *b, reader *r, int col) {
        uint8_t v = rd_byte(r);
        const uint8_t *p;
        size_t n;

        switch (v) {
        case 0x00:
                sqlite3_bind_null(b->insert, col);
                return;
        case 0x01:
                sqlite3_bind_zeroblob(b->insert, col, 0);
                return;
        case 0x02:
        case 0x03:
                n = rd_len(r);
                p = rd_bytes(r, &n);
                if (v == 0x02)
                        sqlite3_bind_blob(b->insert, col, n > 0 ? (const void *) p : "", (int) n, SQLITE_STATIC);
                else
                        sqlite3_bind_text(b->insert, col, n > 0 ? (const char *) p : "", (int) n, SQLITE_STATIC);
                return;
        case 0x04:
                sqlite3_bind_int64(b->insert, col, 42);
                return;
        case 0x05:
                sqlite3_bind_double(b->insert, col, -0.25);
                return;
        case 0x06: {
                uint64_t z = ZEROBLOB_SIZES[rd_byte(r) & 3];

                /* one value of 1 MiB per input, and fewer reads then: each costs milliseconds */
                if (z >= 1024 * 1024) {
                        if (b->huge)
                                z = 4096;
                        b->huge = true;
                }
                sqlite3_bind_zeroblob64(b->insert, col, z);
                return;
        }
        default:
                n = v < 0x40 ? (size_t) v - 7 : (size_t) v - 0x40;
                p = rd_bytes(r, &n);
                sqlite3_bind_blob(b->insert, col, n > 0 ? (const void *) p : "", (int) n, SQLITE_STATIC);
        }
}

/* Binds the name; *ret describes it for the reads later. The text stays valid until the row is
 * inserted (SQLITE_TRANSIENT copies). */
static void bind_name(build *b, reader *r, int64_t id, row_name *ret) {
        uint8_t n = rd_byte(r);
        char buf[512];
        const uint8_t *p;
        size_t len;

        *ret = (row_name){.type = SQLITE_NULL};
        switch (n) {
        case 0x00:
                sqlite3_bind_null(b->insert, 2);
                return;
        case 0x01:
        case 0x02: {
                size_t back = n == 0x01 ? 1 : (size_t) rd_byte(r) + 1;
                const row_name *o = back <= b->n_rows ? &b->names[b->n_rows - back] : NULL;

                if (!o || o->type != SQLITE_TEXT) {
                        sqlite3_bind_null(b->insert, 2);
                        return;
                }
                sqlite3_bind_text(b->insert, 2, o->text, (int) o->size, SQLITE_TRANSIENT);
                *ret = (row_name){.type = SQLITE_TEXT, .size = o->size};
                ret->text = malloc(MAX(o->size, 1u));
                if (!ret->text)
                        abort();
                memcpy(ret->text, o->text, o->size);
                return;
        }
        case 0x03:
                sqlite3_bind_int64(b->insert, 2, rd_i64(r));
                ret->type = SQLITE_INTEGER;
                return;
        case 0x04:
                len = rd_len(r);
                p = rd_bytes(r, &len);
                sqlite3_bind_blob(b->insert, 2, len > 0 ? (const void *) p : "", (int) len, SQLITE_TRANSIENT);
                ret->type = SQLITE_BLOB;
                return;
        case 0x06:
                sqlite3_bind_double(b->insert, 2, 3.25);
                ret->type = SQLITE_FLOAT;
                return;
        default:
                break;
        }

        /* a TEXT name: a fixed one, or a prefix and bytes from the input */
        if (n == 0x05) {
                len = rd_len(r);
                p = rd_bytes(r, &len);
                len = MIN(len, sizeof(buf));
                memcpy(buf, p, len);
        } else if (n == 0x07 || n == 0x08 || n == 0x09 || n < 0x10) {
                len = (size_t) snprintf(buf, sizeof(buf), "%s",
                                        n == 0x07   ? "compact_rev_key"
                                        : n == 0x08 ? "/registry/health"
                                                    : "gap-");
                if (n != 0x07 && n != 0x08)
                        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%lld", (long long) id);
        } else {
                const char *pre = n < 0x20 ? NAME_PREFIXES[n - 0x10] : "/registry/secrets/default/";
                size_t pl = strlen(pre);

                len = n < 0x20 ? rd_len(r) : (size_t) ((n - 0x20) & 0x3f);
                p = rd_bytes(r, &len);
                len = MIN(len, sizeof(buf) - pl);
                memcpy(buf, pre, pl);
                memcpy(buf + pl, p, len);
                len += pl;
        }
        sqlite3_bind_text(b->insert, 2, buf, (int) len, SQLITE_TRANSIENT);
        if (memchr(buf, 0, len))
                b->nul_names = true;
        *ret = (row_name){.type = SQLITE_TEXT, .size = len, .text = malloc(MAX(len, 1u))};
        if (!ret->text)
                abort();
        memcpy(ret->text, buf, len);
}

static void add_row(build *b, reader *r, uint8_t tag) {
        /* wraps past INT64_MAX like SQLite's own ids cannot: that is a hostile id too */
        int64_t prev = b->n_rows > 0 ? b->ids[b->n_rows - 1] : 0, id = (int64_t) ((uint64_t) prev + 1);
        row_name name;

        if (b->n_rows >= MAX_ROWS) {
                r->p = r->end;
                return;
        }
        if (tag < 0x80)
                id = (int64_t) ((uint64_t) prev + tag);
        switch (tag) {
        case 0x80:
                sqlite3_bind_null(b->insert, 1);
                break;
        case 0x81:
                id = rd_i64(r);
                break;
        case 0x82:
                sqlite3_bind_text(b->insert, 1, "5", 1, SQLITE_STATIC);
                id = 5;
                break;
        case 0x83:
                id = -1;
                break;
        case 0x84:
                id = INT64_MAX;
                break;
        case 0x85:
                id = 0;
                break;
        case 0x86:
                sqlite3_bind_double(b->insert, 1, 2.5);
                break;
        default:
                break;
        }
        if (tag != 0x80 && tag != 0x82 && tag != 0x86)
                sqlite3_bind_int64(b->insert, 1, id);
        bind_name(b, r, id, &name);
        for (int col = 3; col <= 7; col++)
                bind_num(b, r, col);
        bind_value(b, r, 8);
        bind_value(b, r, 9);

        if (sqlite3_step(b->insert) == SQLITE_DONE) {
                /* a WITHOUT ROWID table leaves last_insert_rowid alone */
                b->ids[b->n_rows] = tag == 0x80 || tag == 0x86 ? sqlite3_last_insert_rowid(b->db) : id;
                b->names[b->n_rows++] = name;
        } else
                free(name.text);
        sqlite3_reset(b->insert);
        sqlite3_clear_bindings(b->insert);
}

static void apply_patches(reader *r) {
        struct stat st;
        int fd = open(path, O_RDWR | O_CLOEXEC);

        if (fd < 0)
                return;
        while (r->end - r->p >= 3) {
                unsigned off = ((unsigned) r->p[0] << 8) | r->p[1];
                uint8_t v = r->p[2];

                r->p += 3;
                if (fstat(fd, &st) < 0 || st.st_size == 0)
                        break;
                if (off == 0xffff)
                        (void) !ftruncate(fd, (off_t) v * 512);
                else
                        (void) !pwrite(fd, &v, 1, (off_t) (off % (unsigned) st.st_size));
        }
        close(fd);
}

/* Writes the database the input describes; with bit 6, b->db stays open holding the lock. */
static void build_db(build *b, const uint8_t *data, size_t size) {
        reader r = {data + 1, data + size};
        char sql[256];
        uint8_t tag = 0xff;
        int fd;

        b->mode = data[0] & 3;
        b->schema = (data[0] >> 2) & 7;
        b->wal = data[0] & 0x20;
        b->lock = data[0] & 0x40;
        b->update = data[0] & 0x80;

        switch (b->mode) {
        case MODE_RAW:
                b->touched = b->damaged = true;
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0 || (size > 1 && write(fd, data + 1, size - 1) != (ssize_t) (size - 1)))
                        abort();
                close(fd);
                return;
        case MODE_SPECIAL:
                b->touched = true;
                switch (rd_byte(&r) & 3) {
                case 0:
                        return; /* no file */
                case 1:
                        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                        if (fd < 0)
                                abort();
                        close(fd);
                        return;
                case 2:
                        if (mkdir(path, 0700) < 0)
                                abort();
                        return;
                default:
                        snprintf(sql, sizeof(sql), "%s/fuzz-kine-rows-nowhere-%d", dir, (int) getpid());
                        if (symlink(sql, path) < 0)
                                abort();
                        return;
                }
        default:
                break;
        }

        if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
                abort();
        /* the schema's own PRAGMA encoding must come first */
        if (startswith(SCHEMAS[b->schema].sql, "PRAGMA encoding"))
                (void) sqlite3_exec(b->db, "PRAGMA encoding = 'UTF-16le'", NULL, NULL, NULL);
        if (b->wal) {
                (void) sqlite3_exec(b->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
                /* the rows stay in the -wal file when this connection closes */
                (void) sqlite3_db_config(b->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        } else
                (void) sqlite3_exec(b->db, "PRAGMA journal_mode = OFF", NULL, NULL, NULL);
        (void) sqlite3_exec(b->db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
        if (sqlite3_exec(b->db, SCHEMAS[b->schema].sql, NULL, NULL, NULL) != SQLITE_OK)
                abort();
        snprintf(
                sql, sizeof(sql),
                "INSERT INTO %s (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                SCHEMAS[b->schema].table);
        if (sqlite3_prepare_v2(b->db, sql, -1, &b->insert, NULL) != SQLITE_OK)
                abort();

        while (rd_u8(&r, &tag)) {
                if (tag < 0xc0)
                        add_row(b, &r, tag);
                else if (tag < 0xfe) {
                        const char *d = DIRECTIVES[(tag - 0xc0u) % ELEMENTSOF(DIRECTIVES)];

                        /* the insert statement may no longer prepare after this: rebuild it */
                        sqlite3_finalize(b->insert);
                        b->insert = NULL;
                        (void) sqlite3_exec(b->db, d, NULL, NULL, NULL);
                        b->touched = true;
                        b->nul_names = b->nul_names || strstr(d, "char(0)");
                        if (sqlite3_prepare_v2(b->db, sql, -1, &b->insert, NULL) != SQLITE_OK) {
                                /* no more rows: skip to the patches */
                                while (rd_u8(&r, &tag) && tag != 0xfe)
                                        ;
                                break;
                        }
                } else
                        break; /* 0xfe: patches; 0xff: end */
        }
        sqlite3_finalize(b->insert);
        b->insert = NULL;

        if (b->lock) {
                (void) sqlite3_exec(b->db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
                return;
        }
        if (sqlite3_close(b->db) != SQLITE_OK)
                abort();
        b->db = NULL;
        if (b->mode == MODE_PATCHED && tag == 0xfe) {
                b->touched = b->damaged = true;
                apply_patches(&r);
        }
}

static void build_done(build *b) {
        if (b->db) {
                (void) sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
                sqlite3_close(b->db);
        }
        for (size_t i = 0; i < b->n_rows; i++)
                free(b->names[i].text);
}

static void check_error(int r, const se_error *e) {
        if (r > 0)
                abort(); /* reads return 0 or a negative errno */
        if (r < 0 && isempty(e->message))
                abort(); /* an operator would see no reason */
}

/* The contract of one page: at most limit keys, in the range, in order for kine's schema. */
static void check_page(const build *b, const se_kv_list *l, const char *prefix, const char *start, size_t limit) {
        bool bounded = false;

        for (const char *c = prefix; *c; c++)
                bounded = bounded || (unsigned char) *c != 0xff;
        if (l->n_items > limit || (l->more && l->n_items != limit))
                abort();
        for (size_t i = 0; i < l->n_items; i++) {
                const se_kv *kv = &l->items[i];

                if (!kv->key || !kv->value || kv->value_size > KINE_MAX_VALUE)
                        abort();
                /* a damaged file (an index that disagrees with its table) breaks any promise
                 * below without an error: only memory safety and messages are checked there */
                if (b->damaged)
                        continue;
                if (bounded ? !startswith(kv->key, prefix) : strcmp(kv->key, prefix) < 0)
                        abort();
                if (start && strcmp(kv->key, start) < 0 && strcmp(prefix, start) < 0)
                        abort();
                if ((SCHEMAS[b->schema].kine_like || b->schema == 7) && i > 0 &&
                    strcmp(l->items[i - 1].key, kv->key) > 0)
                        abort();
        }
}

static bool in_list(char *const *keys, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (streq(keys[i], key))
                        return true;
        return false;
}

/* verify.c's and reencrypt.c's loop: ask one more than a page after the last key, drop that key.
 * It must end, and visit every key of the whole listing. */
static void paged_walk(const build *b, se_store *s, const char *prefix, const se_kv_list *all) {
        se_kv_list l = {};
        char **seen, *after = NULL;
        size_t n_seen = 0, pages = 0;
        se_error e = SE_ERROR_NULL;
        int r;

        seen = calloc(all->n_items + 1, sizeof(char *));
        if (!seen)
                abort();
        for (;;) {
                size_t first = 0, limit = PAGE + (after ? 1 : 0);

                if (++pages > all->n_items + 3) {
                        /* a damaged index */
                        if (b->damaged) {
                                r = -ELOOP;
                                break;
                        }
                        abort(); /* the walk does not end: such a row set stalls verify and reencrypt */
                }
                r = se_store_range(s, prefix, after, limit, &l, &e);
                check_error(r, &e);
                if (r < 0)
                        break;
                check_page(b, &l, prefix, after, limit);
                if (after && l.n_items > 0 && streq(l.items[0].key, after))
                        first = 1;
                for (size_t i = first; i < l.n_items; i++)
                        if (n_seen < all->n_items && !in_list(seen, n_seen, l.items[i].key)) {
                                seen[n_seen] = strdup(l.items[i].key);
                                if (!seen[n_seen++])
                                        abort();
                        }
                if (!l.more || l.n_items <= first)
                        break;
                free(after);
                after = strdup(l.items[l.n_items - 1].key);
                if (!after)
                        abort();
        }
        if (r >= 0 && !b->damaged)
                for (size_t i = 0; i < all->n_items; i++)
                        if (!in_list(seen, n_seen, all->items[i].key))
                                abort(); /* a key the walk skipped: reencrypt would leave it under the old key */
        for (size_t i = 0; i < n_seen; i++)
                free(seen[i]);
        free(seen);
        free(after);
        se_kv_list_done(&l);
        se_error_done(&e);
}

static void check_get(se_store *s, const char *key, const se_kv *want) {
        se_error e = SE_ERROR_NULL;
        se_kv kv = {};
        int r;

        r = se_store_get(s, key, &kv, &e);
        check_error(r, &e);
        if (r == 0 && (!kv.key || !streq(kv.key, key) || !kv.value || kv.value_size > KINE_MAX_VALUE))
                abort();
        /* kine's schema, rows as written: get serves what range listed */
        if (want && (r != 0 || kv.mod_revision != want->mod_revision ||
                     (want->create_revision >= 0 && kv.create_revision != want->create_revision) ||
                     kv.value_size != want->value_size ||
                     (kv.value_size > 0 && memcmp(kv.value, want->value, kv.value_size) != 0)))
                abort();
        se_kv_done(&kv);
        se_error_done(&e);
}

static void check_update(se_store *s, const se_kv_list *secrets, bool sane) {
        se_kv_update u[5] = {};
        se_error e = SE_ERROR_NULL;
        size_t n = 0;
        int r, written = 0;

        for (size_t i = 0; i < secrets->n_items && n < 4; i++)
                u[n++] = (se_kv_update){.key = secrets->items[i].key,
                                        .value = (const uint8_t *) "x",
                                        .value_size = 1,
                                        .expected_mod_revision = secrets->items[i].mod_revision};
        u[n++] = (se_kv_update){.key = "/registry/secrets/fuzz/new", .value = (const uint8_t *) "y", .value_size = 1};
        /* a key listed twice (a hostile row set) cannot be checked back */
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(u[i].key, u[j].key))
                                sane = false;

        r = se_store_update(s, u, n, &e);
        if (r < 0 && isempty(e.message))
                abort();
        if (r > (int) n)
                abort();
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (u[i].conflict && u[i].new_revision != 0)
                        abort();
                written += u[i].new_revision != 0;
        }
        if (r >= 0 && written != r)
                abort();
        for (size_t i = 0; sane && r >= 0 && i < n; i++)
                if (u[i].new_revision != 0)
                        check_get(s, u[i].key,
                                  &(se_kv){.mod_revision = u[i].new_revision,
                                           /* a create is its own create revision; an update carries
                                            * over what a mistyped `created` makes of it: not checked */
                                           .create_revision = i + 1 < n ? -1 : u[i].new_revision,
                                           .value = (uint8_t *) u[i].value,
                                           .value_size = 1});
        se_error_done(&e);
}

static void reads(const build *b, se_store *s) {
        /* kine's schema with the rows as written: get must agree with range */
        bool sane = b->mode == MODE_ROWS && !b->touched && SCHEMAS[b->schema].kine_like && !b->nul_names;
        se_kv_list secrets = {};

        for (size_t p = 0; p < (b->huge ? 1 : ELEMENTSOF(PREFIXES)); p++) {
                se_error e = SE_ERROR_NULL;
                se_kv_list all = {};
                uint64_t count = 0;
                int r, rc;

                r = se_store_range(s, PREFIXES[p], NULL, 1u << 20, &all, &e);
                check_error(r, &e);
                se_error_done(&e);
                rc = se_store_count(s, PREFIXES[p], &count, &e);
                check_error(rc, &e);
                se_error_done(&e);
                if (r < 0)
                        continue;
                check_page(b, &all, PREFIXES[p], NULL, 1u << 20);
                if (rc == 0 && count != all.n_items && !b->damaged)
                        abort(); /* count and range disagree */
                if (!b->huge)
                        paged_walk(b, s, PREFIXES[p], &all);
                if (streq(PREFIXES[p], ""))
                        for (size_t i = 0; i < all.n_items && i < MAX_GETS; i++)
                                check_get(s, all.items[i].key, sane ? &all.items[i] : NULL);
                if (p == 0)
                        secrets = all;
                else
                        se_kv_list_done(&all);
        }

        /* kine's own keys, and the names the rows were given (not another read of a huge value) */
        if (!b->huge || secrets.n_items == 0)
                check_get(s, "/registry/secrets/default/a", NULL);
        check_get(s, "compact_rev_key", NULL);
        check_get(s, "", NULL);
        for (size_t i = 0, n = 0; i < b->n_rows && n < (b->huge ? 0u : 16u); i++)
                if (b->names[i].type == SQLITE_TEXT && !memchr(b->names[i].text, 0, b->names[i].size)) {
                        char *k = strndup(b->names[i].text, b->names[i].size);

                        if (!k)
                                abort();
                        check_get(s, k, NULL);
                        free(k);
                        n++;
                }

        if (b->update)
                check_update(s, &secrets, sane);
        se_kv_list_done(&secrets);
}

/* A value one byte over the reader's limit, next to an ordinary one: range and get refuse it by
 * name with -EFBIG, count and the other key are still served. Once per process (see the top). */
static void check_over_limit(void) {
        char endpoint[PATH_MAX + 16], sql[2048];
        se_error e = SE_ERROR_NULL;
        se_kv_list l = {};
        se_store *s = NULL;
        sqlite3 *db = NULL;
        uint64_t n = 0;
        se_kv kv = {};

        cleanup_files();
        snprintf(sql, sizeof(sql),
                 "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; CREATE TABLE kine (" KINE_COLUMNS
                 ");" KINE_INDEXES
                 "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value) VALUES "
                 "('compact_rev_key', 1, 0, 0, 0, 0, ''), ('/registry/health', 1, 0, 0, 0, 0, 'h'), "
                 "('/registry/secrets/default/big', 1, 0, 0, 0, 0, zeroblob(%u)), "
                 "('/registry/secrets/default/ok', 1, 0, 0, 0, 0, 'v')",
                 KINE_MAX_VALUE + 1u);
        if (strlen(sql) + 1 >= sizeof(sql))
                abort();
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK || sqlite3_close(db) != SQLITE_OK)
                abort();
        snprintf(endpoint, sizeof(endpoint), "sqlite://%s", path);
        if (se_store_open(&(se_store_options){.endpoint = endpoint, .timeout_usec = 1000}, &s, &e) < 0)
                abort();
        if (se_store_range(s, "/registry/secrets/", NULL, 0, &l, &e) != -EFBIG || !strstr(se_error_message(&e), "big"))
                abort();
        se_error_done(&e);
        if (se_store_get(s, "/registry/secrets/default/big", &kv, &e) != -EFBIG || isempty(e.message))
                abort();
        se_error_done(&e);
        if (se_store_count(s, "/registry/secrets/", &n, &e) != 0 || n != 2)
                abort();
        if (se_store_get(s, "/registry/secrets/default/ok", &kv, &e) != 0 || kv.value_size != 1)
                abort();
        se_kv_done(&kv);
        se_store_close(s);
        cleanup_files();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc;
        (void) argv;
        setup_path();
        check_over_limit();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char endpoint[PATH_MAX + 16];
        build b = {};

        if (size < 1 || size > MAX_INPUT_SIZE)
                return 0;
        setup_path();
        cleanup_files();
        build_db(&b, data, size);
        snprintf(endpoint, sizeof(endpoint), "sqlite://%s", path);

        for (int pass = 0; pass < 2; pass++) {
                se_store_options o = {.endpoint = endpoint, .timeout_usec = 1000, .require_data = pass == 0};
                se_error e = SE_ERROR_NULL;
                se_store *s = NULL;
                int r;

                r = se_store_open(&o, &s, &e);
                if (r < 0 ? !!s || isempty(e.message) : !s)
                        abort();
                if (r >= 0) {
                        if (pass == 0 && !b.huge) {
                                /* what every command does first */
                                se_kv_list l = {};

                                r = se_store_range(s, "/registry/secrets/", NULL, 0, &l, &e);
                                check_error(r, &e);
                                if (r == 0)
                                        check_page(&b, &l, "/registry/secrets/", NULL, 1000);
                                se_kv_list_done(&l);
                        } else if (pass == 1)
                                reads(&b, s);
                        se_store_close(s);
                }
                se_error_done(&e);
        }

        build_done(&b);
        cleanup_files();
        return 0;
}
