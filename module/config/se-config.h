/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"

/*
 * The EncryptionConfiguration model (apiserver.config.k8s.io/v1), after kube-apiserver's
 * defaulting. It keeps what the file said closely enough to validate with kube-apiserver's rules
 * and to write k3s's exact JSON back.
 */

#define SE_CONFIG_MAX_SIZE  (1024u * 1024u) /* bytes; larger files are refused before parsing */
#define SE_CONFIG_MAX_KEYS  1000u           /* keys over all providers */
#define SE_CONFIG_MAX_DEPTH 32u             /* nesting; the schema needs 7 */

/* Where kube-apiserver echoes the whole file ("Object 'Kind' is missing in '<file>'"), we print
 * '…' and this note instead: no redaction can know every form a key may be written in. */
#define SE_CONFIG_NOT_ECHOED "(the file's content is not shown: it may hold key material)"

typedef enum se_provider_type {
        SE_PROVIDER_AESGCM,
        SE_PROVIDER_AESCBC,
        SE_PROVIDER_SECRETBOX,
        SE_PROVIDER_IDENTITY,
        SE_PROVIDER_KMS,
        _SE_PROVIDER_MAX,
        SE_PROVIDER_NONE = -1,
} se_provider_type;

typedef struct se_key {
        char *name;
        char *secret; /* base64 text exactly as in the file; wiped when freed */
} se_key;

typedef struct se_key_list {
        se_key *keys; /* NULL when the file had no keys / keys: null */
        size_t n_keys;
} se_key_list;

typedef struct se_kms {
        char *api_version; /* defaulted to "v1" when absent or empty */
        char *name;
        char *endpoint;
        bool has_cachesize; /* defaulted to 1000 when absent and api_version is "v1" */
        int32_t cachesize;
        int64_t timeout_ns; /* defaulted to 3s when absent */
} se_kms;

/* One element of providers[]; kube-apiserver requires exactly one member set. */
typedef struct se_provider {
        se_key_list *aesgcm; /* NULL = member absent or null */
        se_key_list *aescbc;
        se_key_list *secretbox;
        bool identity;
        se_kms *kms;
} se_provider;

typedef struct se_resource_config {
        char **resources;
        size_t n_resources;
        se_provider *providers;
        size_t n_providers;
} se_resource_config;

typedef struct se_config {
        char *kind;        /* "EncryptionConfiguration" or legacy "EncryptionConfig" */
        char *api_version; /* "apiserver.config.k8s.io/v1" or legacy "v1" */
        se_resource_config *resources;
        size_t n_resources;
} se_config;

se_config *se_config_new(void);
/* Frees a key list, wiping its secrets; returns NULL. */
se_key_list *se_key_list_free(se_key_list *l);
se_kms *se_kms_free(se_kms *k);
/* Frees every member of one providers[] element and zeroes it. */
void se_provider_done(se_provider *p);
se_config *se_config_free(se_config *c); /* wipes key material; returns NULL */
int se_config_copy(const se_config *c, se_config **ret);

const char *se_provider_type_to_string(se_provider_type t); /* "aescbc", …, NULL for NONE */
se_provider_type se_provider_type_from_string(const char *s);
/* The member that is set (the first in the order aesgcm, aescbc, secretbox, identity, kms), or
 * SE_PROVIDER_NONE; *ret_count (if given) is how many are set. */
se_provider_type se_provider_get_type(const se_provider *p, unsigned *ret_count);
/* The key list of an aesgcm/aescbc/secretbox provider, NULL otherwise. */
se_key_list *se_provider_keys(const se_provider *p);

/*
 * Decoding, as kube-apiserver: first non-space byte '{' → JSON (json-c), otherwise YAML (libyaml,
 * YAML 1.1 scalars, first document only). Strict: unknown and duplicate fields are errors. Applies
 * kube-apiserver's defaults. Does not validate. path is used in messages only.
 * On failure: -EBADMSG (or -E2BIG for over-limit input, -ENOMEM) and the message as
 * kube-apiserver returns it without the "error while parsing file: " prefix, e.g.
 * `error decoding encryption provider configuration file "x": strict decoding error: …`.
 */
int se_config_parse(const char *path, const void *data, size_t size, se_config **ret, se_error *e);

/* kube-apiserver's ValidateEncryptionConfiguration, its transformer-building checks, then our
 * stricter rotation checks. -EBADMSG with kube's aggregate text (no prefix) on failure; the
 * building checks' messages start with "error while building transformers: " as kube's do. */
int se_config_validate(const se_config *c, bool reload, se_error *e);
/* kube-apiserver's rules only (for conformance). */
int se_config_validate_kube(const se_config *c, bool reload, se_error *e);
/* What kube-apiserver refuses when it builds the transformers, after validation: a resource masked
 * by an earlier "*.group" or "*.*" rule, a KMS v1 provider while the KMSv1 gate is off. */
int se_config_validate_build(const se_config *c, se_error *e);
/* Our stricter checks (README "Stricter than kube-apiserver"). */
int se_config_validate_strict(const se_config *c, se_error *e);

/* kube-apiserver's KMSv1 feature gate (default off, as in Kubernetes 1.29+). The settings' kms-v1
 * turns it on for clusters that run kube-apiserver with --feature-gates=KMSv1=true; executables set
 * it once, before any config is checked. */
void se_config_set_kms_v1_gate(bool enabled);
bool se_config_get_kms_v1_gate(void);
#define SE_CONFIG_KMS_V1_HINT                                                                                         \
        "(secrets-encrypt: if kube-apiserver runs with that gate, set kms-v1: true in the settings)"

/*
 * Reads, parses and validates a config file the way kube-apiserver's LoadEncryptionConfig does;
 * messages start with "error while parsing file: " like kube-apiserver's. Optionally returns the
 * sha256 hex of the exact bytes. Files over SE_CONFIG_MAX_SIZE are refused before parsing.
 */
int se_config_load(const char *path, se_config **ret, char *ret_hash /* [65] or NULL */, se_error *e);

/* k3s's compact JSON (Go json.Marshal layout, no trailing newline). */
int se_config_to_json(const se_config *c, char **ret, size_t *ret_size);
