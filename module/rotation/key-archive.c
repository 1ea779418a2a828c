/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "macro.h"
#include "se-key-archive.h"
#include "se-util.h"

#define ENTRY_MAX_SIZE     (16u * 1024u) /* a record is a few hundred bytes */
#define ENCODED_NAME_MAX   200u          /* leaves room for ".json.tmpXXXXXX" under NAME_MAX */
#define USEC_PER_SEC       1000000ULL
#define NAMES_IN_MESSAGE   20u
#define TEMPORARY_INFIX    ".json.tmp"
#define TEMPORARY_SUFFIXES 6u /* mkostemp's XXXXXX */

static char *archive_dir(const char *state_dir) {
        char *p;

        return asprintf(&p, "%s/%s", state_dir, SE_KEY_ARCHIVE_DIR) < 0 ? NULL : p;
}

static bool type_is_archivable(se_provider_type t) {
        return t == SE_PROVIDER_AESCBC || t == SE_PROVIDER_SECRETBOX || t == SE_PROVIDER_AESGCM;
}

static bool name_byte_is_plain(unsigned char c, size_t i) {
        return isascii(c) && (isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0));
}

_public_ char *se_key_archive_file_name(const char *name) {
        static const char hex[] = "0123456789ABCDEF";
        char sha[SE_SHA256_HEX_SIZE], *out, *p;
        size_t n = 0;

        if (isempty(name))
                return NULL;
        for (size_t i = 0; name[i]; i++)
                n += name_byte_is_plain((unsigned char) name[i], i) ? 1 : 3;
        if (n > ENCODED_NAME_MAX) {
                if (se_sha256_hex(name, strlen(name), sha) < 0)
                        return NULL;
                return asprintf(&out, "%%sha256-%s.json", sha) < 0 ? NULL : out;
        }
        out = p = malloc(n + STRLEN(".json") + 1);
        if (!out)
                return NULL;
        for (size_t i = 0; name[i]; i++) {
                unsigned char c = (unsigned char) name[i];

                if (name_byte_is_plain(c, i))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        strcpy(p, ".json");
        return out;
}

/* A JSON string literal; bytes >= 0x80 are copied as they are (names come from a parsed config). */
static int append_json_string(se_buf *b, const char *s) {
        int r = se_buf_append(b, "\"", 1);

        for (const char *p = s; r >= 0 && *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '"' || c == '\\')
                        r = se_buf_printf(b, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        r = se_buf_printf(b, "\\u%04x", c);
                else
                        r = se_buf_append(b, p, 1);
        }
        return r < 0 ? r : se_buf_append(b, "\"", 1);
}

/* Creates <state-dir>/removed-keys (0700), or checks the one there and tightens its mode. */
static int ensure_dir(const char *dir, se_error *e) {
        struct stat st;

        if (mkdir(dir, 0700) >= 0)
                return 0;
        if (errno != EEXIST)
                return se_error_set(e, -errno, "cannot create the removed-key archive %s: %m", dir);
        if (lstat(dir, &st) < 0)
                return se_error_set(e, -errno, "cannot inspect the removed-key archive %s: %m", dir);
        if (!S_ISDIR(st.st_mode))
                return se_error_set(e, -ENOTDIR,
                                    "the removed-key archive %s is not a directory (a symlink or a file is refused); "
                                    "move it away",
                                    dir);
        if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) < 0)
                return se_error_set(e, -errno, "cannot restrict the removed-key archive %s to mode 0700: %m", dir);
        return 0;
}

_public_ int se_key_archive_add(const char *state_dir, se_provider_type type, const se_key *key,
                                const char *config_hash, int64_t now, uint64_t retention_usec, se_error *e) {
        _cleanup_free_ char *dir = NULL, *file = NULL, *path = NULL;
        se_buf b = {.max = ENTRY_MAX_SIZE};
        int r;

        if (retention_usec == 0)
                return 0;
        if (!type_is_archivable(type))
                return se_error_set(e, -EINVAL, "cannot archive a key of provider type %s",
                                    se_provider_type_to_string(type) ?: "(none)");
        if (!key || isempty(key->name) || isempty(key->secret))
                return se_error_set(e, -EINVAL, "cannot archive a key without a name or a secret");

        dir = archive_dir(state_dir);
        file = se_key_archive_file_name(key->name);
        if (!dir || !file || asprintf(&path, "%s/%s", dir, file) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");

        r = ensure_dir(dir, e);
        if (r < 0)
                return r;

        r = se_buf_append_str(&b, "{\"name\":");
        if (r >= 0)
                r = append_json_string(&b, key->name);
        if (r >= 0)
                r = se_buf_printf(&b, ",\"provider\":\"%s\",\"removed_at\":%" PRId64 ",\"config_hash\":",
                                  se_provider_type_to_string(type), now);
        if (r >= 0)
                r = append_json_string(&b, config_hash ? config_hash : "");
        if (r >= 0)
                r = se_buf_append_str(&b, ",\"secret\":");
        if (r >= 0)
                r = append_json_string(&b, key->secret);
        if (r >= 0)
                r = se_buf_append_str(&b, "}\n");
        if (r < 0) {
                se_buf_free(&b);
                if (r == -E2BIG)
                        return se_error_set(e, r, "key %s is too large to archive", key->name);
                return se_error_set(e, r, "out of memory");
        }

        r = se_write_file_atomic(path, b.data, b.len, 0600);
        se_buf_free(&b); /* wipes: it held the secret */
        if (r < 0)
                return se_error_set(e, r, "cannot archive removed key %s in %s: %s", key->name, path, strerror(-r));
        return 0;
}

/* One record, parsed. The tokener's buffer is sized for the whole file first, so it never grows
 * (json-c grows it with realloc(), which would leave copies of the secret behind), and every copy
 * of the secret is wiped before it is freed. */
typedef struct record {
        char *name;
        se_provider_type type;
        int64_t removed_at;
        char config_hash[65];
        char *secret; /* only when asked for */
} record;

static void record_done(record *rec) {
        free(rec->name);
        erase_and_freep(&rec->secret);
        *rec = (record){};
}

static const char *get_string(json_object *root, const char *field) {
        json_object *v;

        if (!json_object_object_get_ex(root, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int parse_record(const uint8_t *data, size_t size, bool want_secret, record *ret) {
        struct json_tokener *tok;
        json_object *root, *v;
        const char *name, *provider, *secret, *hash;
        record rec = {.type = SE_PROVIDER_NONE};
        int r = -EBADMSG;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        if (printbuf_memset(tok->pb, 0, 0, (int) size + 1) < 0) {
                json_tokener_free(tok);
                return -ENOMEM;
        }
        printbuf_reset(tok->pb);
        root = json_tokener_parse_ex(tok, (const char *) data, (int) size);
        if (json_tokener_get_error(tok) != json_tokener_success)
                root = (json_object_put(root), NULL);
        explicit_wipe(tok->pb->buf, (size_t) tok->pb->size);
        json_tokener_free(tok);
        if (!root)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object))
                goto finish;

        name = get_string(root, "name");
        provider = get_string(root, "provider");
        secret = get_string(root, "secret");
        hash = get_string(root, "config_hash");
        if (isempty(name) || !provider || isempty(secret) || !json_object_object_get_ex(root, "removed_at", &v) ||
            !json_object_is_type(v, json_type_int))
                goto finish;
        rec.type = se_provider_type_from_string(provider);
        if (!type_is_archivable(rec.type))
                goto finish;
        rec.removed_at = json_object_get_int64(v);
        if (hash && strlen(hash) < sizeof(rec.config_hash))
                strcpy(rec.config_hash, hash);
        rec.name = strdup(name);
        if (want_secret)
                rec.secret = strdup(secret);
        if (!rec.name || (want_secret && !rec.secret)) {
                r = -ENOMEM;
                goto finish;
        }
        *ret = rec;
        rec = (record){};
        r = 0;
finish:
        secret = get_string(root, "secret");
        if (secret)
                explicit_wipe((char *) secret, strlen(secret));
        json_object_put(root);
        record_done(&rec);
        return r;
}

static int read_record(const char *path, bool want_secret, record *ret) {
        uint8_t *data = NULL;
        size_t size = 0;
        int r;

        r = se_read_file(path, ENTRY_MAX_SIZE, &data, &size);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        r = parse_record(data, size, want_secret, ret);
        explicit_wipe(data, size);
        free(data);
        return r;
}

/* "<encoded>.json", not a dotfile, not a temporary. */
static bool is_entry_file(const char *n) {
        size_t l = strlen(n);

        return n[0] != '.' && l > STRLEN(".json") && streq(n + l - STRLEN(".json"), ".json");
}

static bool is_temporary(const char *n) {
        const char *p = strstr(n, TEMPORARY_INFIX);

        return p && strlen(p) == STRLEN(TEMPORARY_INFIX) + TEMPORARY_SUFFIXES;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int entry_cmp(const void *a, const void *b) {
        const se_key_archive_entry *x = a, *y = b;

        if (x->removed_at != y->removed_at)
                return x->removed_at < y->removed_at ? -1 : 1;
        return strcmp(x->name, y->name);
}

_public_ void se_key_archive_entries_free(se_key_archive_entry *entries, size_t n) {
        for (size_t i = 0; entries && i < n; i++)
                free(entries[i].name);
        free(entries);
}

_public_ int se_key_archive_list(const char *state_dir, se_key_archive_entry **ret, size_t *ret_n, se_error *e) {
        _cleanup_free_ char *dir = archive_dir(state_dir);
        _cleanup_(closedirp) DIR *d = NULL;
        se_key_archive_entry *list = NULL;
        struct dirent *de;
        size_t n = 0;

        if (!dir)
                return se_error_set(e, -ENOMEM, "out of memory");
        d = opendir(dir);
        if (!d && errno != ENOENT)
                return se_error_set(e, -errno, "cannot read the removed-key archive %s: %m", dir);
        while (d && (errno = 0, de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                se_key_archive_entry *nl;
                record rec = {};
                int r;

                if (!is_entry_file(de->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        goto oom;
                r = read_record(path, false, &rec);
                if (r == -ENOMEM)
                        goto oom;
                if (r < 0)
                        continue; /* damaged or vanished: list what can be read */
                nl = reallocarray(list, n + 1, sizeof(*list));
                if (!nl) {
                        record_done(&rec);
                        goto oom;
                }
                list = nl;
                list[n] = (se_key_archive_entry){
                        .name = TAKE_PTR(rec.name), .type = rec.type, .removed_at = rec.removed_at};
                memcpy(list[n].config_hash, rec.config_hash, sizeof(rec.config_hash));
                n++;
                record_done(&rec);
        }
        if (d && errno != 0) {
                int r = -errno;

                se_key_archive_entries_free(list, n);
                return se_error_set(e, r, "cannot read the removed-key archive %s: %s", dir, strerror(-r));
        }
        if (n > 1)
                qsort(list, n, sizeof(*list), entry_cmp);
        *ret = list;
        *ret_n = n;
        return 0;
oom:
        se_key_archive_entries_free(list, n);
        return se_error_set(e, -ENOMEM, "out of memory");
}

_public_ int se_key_archive_expire(const char *state_dir, int64_t now, uint64_t retention_usec, se_error *e) {
        _cleanup_free_ char *dir = archive_dir(state_dir);
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int removed = 0, r = 0;

        if (!dir)
                return se_error_set(e, -ENOMEM, "out of memory");
        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0
                                       : se_error_set(e, -errno, "cannot read the removed-key archive %s: %m", dir);
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                record rec = {};
                int64_t removed_at;
                bool expired;
                int k;

                if (is_temporary(de->d_name)) { /* a killed writer's; the caller holds the lock */
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }
                if (!is_entry_file(de->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        return se_error_set(e, -ENOMEM, "out of memory");
                k = read_record(path, false, &rec);
                if (k == -ENOMEM)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (k >= 0)
                        removed_at = rec.removed_at;
                else {
                        struct stat st;

                        /* damaged: its age is the file's; it may still hold a secret */
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        removed_at = (int64_t) st.st_mtime;
                }
                record_done(&rec);

                expired = retention_usec == 0 ||
                          (now > removed_at && (uint64_t) (now - removed_at) > retention_usec / USEC_PER_SEC);
                if (!expired)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        if (errno != ENOENT && r == 0)
                                r = se_error_set(e, -errno, "cannot remove expired archived key %s: %m", path);
                        continue;
                }
                removed++;
        }
        if (errno != 0 && r == 0)
                r = se_error_set(e, -errno, "cannot read the removed-key archive %s: %m", dir);
        if (removed > 0 && fsync(dirfd(d)) < 0 && r == 0)
                r = se_error_set(e, -errno, "cannot sync the removed-key archive %s: %m", dir);
        return r < 0 ? r : removed;
}

/* The names in the archive for a not-found message: "a, b, c" (at most NAMES_IN_MESSAGE). */
static char *archived_names(const char *state_dir) {
        se_key_archive_entry *list = NULL;
        se_buf b = {};
        size_t n = 0;
        char *s;
        int r;

        if (se_key_archive_list(state_dir, &list, &n, NULL) < 0)
                return NULL;
        r = se_buf_append_str(&b, "");
        for (size_t i = 0; r >= 0 && i < n && i < NAMES_IN_MESSAGE; i++)
                r = se_buf_printf(&b, "%s%s", i > 0 ? ", " : "", list[i].name);
        if (r >= 0 && n > NAMES_IN_MESSAGE)
                r = se_buf_printf(&b, " and %zu more", n - NAMES_IN_MESSAGE);
        se_key_archive_entries_free(list, n);
        if (r < 0) {
                se_buf_free(&b);
                return NULL;
        }
        s = (char *) TAKE_PTR(b.data);
        return s;
}

static int not_found(const char *state_dir, const char *dir, const char *name, se_error *e) {
        _cleanup_free_ char *names = archived_names(state_dir);

        if (isempty(names))
                return se_error_set(e, -ENOENT, "no removed key named %s in the archive %s (the archive is empty)",
                                    name, dir);
        return se_error_set(e, -ENOENT, "no removed key named %s in the archive %s (archived keys: %s)", name, dir,
                            names);
}

/* The secret must decode to a key of its provider's size (kube-apiserver's rule), so a damaged
 * entry is refused here and not as an invalid configuration later. */
static bool secret_fits(se_provider_type type, const char *secret) {
        uint8_t *raw = NULL;
        size_t size = 0;
        bool ok;

        if (se_base64_decode(secret, strlen(secret), &raw, &size) < 0)
                return false;
        ok = type == SE_PROVIDER_SECRETBOX ? size == 32 : (size == 16 || size == 24 || size == 32);
        explicit_wipe(raw, size);
        free(raw);
        return ok;
}

/* Scans every entry for name: a file placed by hand under another name still counts. */
static int find_by_scan(const char *dir, const char *name, record *ret) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return errno == ENOENT ? -ENOENT : -errno;
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL;
                record rec = {};
                int r;

                if (!is_entry_file(de->d_name))
                        continue;
                if (asprintf(&path, "%s/%s", dir, de->d_name) < 0)
                        return -ENOMEM;
                r = read_record(path, false, &rec);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !streq(rec.name, name)) {
                        record_done(&rec);
                        continue;
                }
                record_done(&rec);
                r = read_record(path, true, ret);
                return r == -ENOMEM ? r : r < 0 ? -ENOENT : 0;
        }
        return -ENOENT;
}

_public_ int se_key_archive_find(const char *state_dir, const char *name, se_provider_type *ret_type, se_key *ret_key,
                                 int64_t *ret_removed_at, se_error *e) {
        _cleanup_free_ char *dir = NULL, *file = NULL, *path = NULL;
        record rec = {};
        int r;

        if (isempty(name))
                return se_error_set(e, -EINVAL, "no key name given");
        dir = archive_dir(state_dir);
        file = se_key_archive_file_name(name);
        if (!dir || !file || asprintf(&path, "%s/%s", dir, file) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");

        r = read_record(path, true, &rec);
        if (r == -EBADMSG)
                return se_error_set(e, r,
                                    "the archived key file %s is damaged (not a removed-key record); restore it from "
                                    "a backup",
                                    path);
        if (r >= 0 && !streq(rec.name, name)) {
                record_done(&rec);
                r = -ENOENT;
        }
        if (r == -ENOENT)
                r = find_by_scan(dir, name, &rec);
        if (r == -ENOENT)
                return not_found(state_dir, dir, name, e);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        if (r < 0)
                return se_error_set(e, r, "cannot read the archived key %s in %s: %s", name, dir, strerror(-r));

        if (!secret_fits(rec.type, rec.secret)) {
                se_provider_type t = rec.type;

                record_done(&rec);
                return se_error_set(e, -EBADMSG,
                                    "the archived key %s in %s is damaged: its secret is not a valid %s key", name,
                                    dir, se_provider_type_to_string(t));
        }
        if (ret_type)
                *ret_type = rec.type;
        if (ret_removed_at)
                *ret_removed_at = rec.removed_at;
        if (ret_key)
                *ret_key = (se_key){.name = TAKE_PTR(rec.name), .secret = TAKE_PTR(rec.secret)};
        record_done(&rec);
        return 0;
}

_public_ void se_key_archive_key_done(se_key *k) {
        if (!k)
                return;
        free(k->name);
        erase_and_freep(&k->secret);
        *k = (se_key){};
}
