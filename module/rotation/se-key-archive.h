/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "se-config.h"
#include "se-error.h"
#include "se-ops.h"

/*
 * The archive of removed keys (SPEC §2 removed-key-retention, §5.0): a key taken out of the
 * configuration is kept for a while so `secrets-encrypt restore-key NAME` can bring it back as a
 * read key, should a value under it turn up after all (a restored backup, a lagging server).
 *
 *   <state-dir>/removed-keys/            mode 0700
 *   <state-dir>/removed-keys/<file>.json mode 0600, one per key, written atomically:
 *     {"name":"aescbckey-2026-01-02T03:04:05Z","provider":"aescbc","secret":"<base64 as in the
 *      config>","removed_at":1767323045,"config_hash":"<sha256 hex of the config it left>"}
 *
 * <file> is the key name with every byte outside [A-Za-z0-9_.-] (and a leading '.') written as
 * %XX, so k3s's names (aescbckey-<RFC 3339>, with ':') are safe on every filesystem; names whose
 * encoding would exceed 200 bytes use "%sha256-<hex of the name>" instead (no encoded name can
 * start like that). Lookups read the name inside the file, never trust the file name alone.
 *
 * Times are unix seconds. Every call is made under the state-directory lock (se_ctx). Nothing here
 * prints; messages never hold key material. Key material read back is wiped when freed.
 */

#define SE_KEY_ARCHIVE_DIR "removed-keys"

typedef struct se_key_archive_entry {
        char *name;
        se_provider_type type; /* aescbc, secretbox or aesgcm */
        int64_t removed_at;    /* unix seconds */
        char config_hash[65];  /* sha256 hex of the config the key was removed from ("" if unknown) */
} se_key_archive_entry;

/* Archives key (aescbc, secretbox or aesgcm) as removed at now from the config with config_hash
 * (may be NULL). A no-op returning 0 when retention_usec is 0. A key archived again under the
 * same name replaces the earlier entry. Creates the directory (0700) when missing and tightens a
 * wider mode. */
int se_key_archive_add(const char *state_dir, se_provider_type type, const se_key *key, const char *config_hash,
                       int64_t now, uint64_t retention_usec, se_error *e);

/* Removes the entries removed more than retention_usec before now (retention 0: every entry), and
 * temporary files a killed writer left. An entry whose content cannot be read counts from its
 * file's mtime. Returns the number of entries removed. A missing archive is empty. */
int se_key_archive_expire(const char *state_dir, int64_t now, uint64_t retention_usec, se_error *e);

/* The archived key named name: its type, the key (name and secret, the caller frees with
 * se_key_archive_key_done()) and its removal time; each ret_* may be NULL. -ENOENT with a
 * message that lists the archived names when there is none; -EBADMSG naming the file when the
 * entry is damaged. */
int se_key_archive_find(const char *state_dir, const char *name, se_provider_type *ret_type, se_key *ret_key,
                        int64_t *ret_removed_at, se_error *e);

/* Every readable entry, oldest removal first (no key material). Damaged files are skipped. */
int se_key_archive_list(const char *state_dir, se_key_archive_entry **ret, size_t *ret_n, se_error *e);
void se_key_archive_entries_free(se_key_archive_entry *entries, size_t n);

/* Frees a key returned by se_key_archive_find(), wiping the secret. */
void se_key_archive_key_done(se_key *k);

/* The archive file name for a key name ("<encoded>.json", see above); NULL on OOM. */
char *se_key_archive_file_name(const char *name);

/*
 * `secrets-encrypt restore-key NAME`: brings an archived key back as a READ key of the resources
 * entry that covers secrets (kube-apiserver's matching: the first entry listing "secrets",
 * "secrets.", "*." or "*.*"), as the last key of the first provider of its type there, or in a new
 * provider of its type right after the first provider (the write provider stays first). Every other
 * entry and provider is kept as it is. Refuses (-ESTALE) when a key of that name is already in the
 * configuration or no entry covers secrets; -ENOENT when the archive has no such key. Commits at the
 * current persisted stage and emits key-added. The API server loads the key at its next restart.
 */
int se_op_restore_key(se_ctx *ctx, const char *name, se_error *e);
