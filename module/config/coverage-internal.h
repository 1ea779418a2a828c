/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "se-config.h"
#include "se-error.h"
#include "se-strv.h"

/* Which part of a config a rotation owns (coverage.c). */

#define SE_REGISTRY_PREFIX "/registry/"

/* The index of the resources entry kube-apiserver reads secrets with (an entry naming secrets,
 * else "*.", else "*.*"). -ESTALE with the reason when none does, or when several name it. */
int se_config_secrets_entry(const se_config *c, size_t *ret, se_error *e);
/* Whether the entry has a key of that type and name (identity: any identity; kms: the name). */
bool se_entry_has_key(const se_resource_config *rc, se_provider_type t, const char *name);
/* "k8s:enc:<type>:v1:<name>:", the prefix of values under that key. */
int se_value_prefix(se_provider_type t, const char *name, char **ret);
/* The value prefixes of every key of the entry that no other entry has: a value under one of them
 * can only have been written through this entry. NULL-terminated, possibly empty. */
int se_entry_owned_value_prefixes(const se_config *c, size_t entry, char ***ret);
/* Whether the entry names secrets and nothing else. */
bool se_entry_covers_only_secrets(const se_resource_config *rc);
/* The value prefixes of the keys (and KMS providers) of `before` that the same entry of `after`
 * no longer has; *ret NULL when none. */
int se_config_removed_keys(const se_config *before, const se_config *after, char ***ret);

/* Where kube-apiserver stores a resource ("secrets" → "/registry/secrets/", "services" →
 * "/registry/services/specs/", a custom resource "r.g" → "/registry/g/r/"); *ret NULL for a
 * wildcard. */
int se_resource_storage_prefix(const char *group_resource, char **ret);

/* What re-encrypting the entry that covers secrets walks. Under each strict prefix (the storage
 * prefix of a resource the entry names) every value is the entry's: all are rewritten, and one it
 * cannot read is an error. When it also covers resources by wildcard, the whole registry is walked
 * and only values under a key no other entry has (owned) are rewritten. */
typedef struct se_rotation_scope {
        char **walk;   /* prefixes to walk, NULL-terminated */
        char **strict; /* NULL-terminated */
        char **owned;  /* NULL: no wildcard walk */
} se_rotation_scope;

int se_rotation_scope_init(const se_config *c, se_rotation_scope *ret, se_error *e);
void se_rotation_scope_done(se_rotation_scope *sc);
