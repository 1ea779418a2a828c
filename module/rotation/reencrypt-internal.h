/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Private helpers shared by reencrypt.c, verify.c and checkpoint.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-reencrypt.h"
#include "se-util.h"

/* What a re-encryption run has finished: every key up to and including `key` under
 * prefixes[prefix_index] (and every earlier prefix), for one config and prefix list. */
typedef struct se_checkpoint {
        char config[SE_SHA256_HEX_SIZE];
        char prefixes[SE_SHA256_HEX_SIZE];
        uint64_t prefix_index;
        char *key;
        uint64_t done;
        uint64_t rewritten;
        uint64_t skipped;
        uint64_t conflicts;
        uint64_t total; /* values when the run that wrote it started (0: unknown, an older file) */
} se_checkpoint;

/* -ENOENT when there is none; -EBADMSG when it cannot be parsed. */
int se_checkpoint_load(const char *dir, se_checkpoint *ret);
int se_checkpoint_save(const char *dir, const se_checkpoint *c);
int se_checkpoint_remove(const char *dir);
void se_checkpoint_done(se_checkpoint *c);

/* sha256 hex over the whole config model, key material included (only the digest is kept). */
int se_config_fingerprint(const se_config *c, char ret[static SE_SHA256_HEX_SIZE]);
/* sha256 hex of the NUL-separated prefix list and the resource. */
int se_prefixes_fingerprint(const char *const *prefixes, const char *resource, char ret[static SE_SHA256_HEX_SIZE]);

/* The prefixes to walk: o's or the default list. */
const char *const *se_reencrypt_prefixes(const char *const *prefixes);

/* True for "k8s:enc:kms:v1:<name>:" / "k8s:enc:kms:v2:<name>:" values; the name, if asked, is
 * malloc'd (NULL on allocation failure). */
bool se_value_is_kms(const uint8_t *v, size_t n, char **ret_name);
/* "aescbc key \"name\"", "kms provider \"name\"", "plaintext" … for messages (malloc'd). */
char *se_value_describe(const uint8_t *v, size_t n);

/* Appends a copy of path to a list bounded by max; counts either way. */
int se_path_list_add(char ***list, size_t *n, size_t max, const char *path);
void se_path_list_free(char **list, size_t n);
