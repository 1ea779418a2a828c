/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Private to the EncryptionConfiguration decoder. Both front ends (JSON via json-c, YAML via
 * libyaml) produce one generic json_object tree, which config-decode.c decodes strictly into the
 * model the way kube-apiserver's codec does.
 *
 * The JSON front end attaches to every object the order of its keys as written, duplicates
 * included (json-c keeps only the last of duplicate keys), so the decoder can report duplicate
 * fields like sigs.k8s.io/json. YAML objects carry no order: kube-apiserver converts YAML to a Go
 * map and re-marshals it, so keys are decoded in sorted order there.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "se-config.h"

/* The scheme name kube-apiserver prints in "no kind … is registered" (build-specific call site). */
#define SE_CONFIG_SCHEME_NAME "k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go:142"

/* Upper bound on tree nodes after YAML alias expansion, so alias bombs stay cheap. */
#define SE_CONFIG_MAX_NODES 200000u

typedef struct se_key_order {
        size_t n;
        char **keys; /* as written, duplicates included */
} se_key_order;

/*
 * Front ends. On failure they return a negative errno and (for -EBADMSG) set *ret_err to the
 * detail text that follows `error decoding encryption provider configuration file "x": `.
 */
int se_config_json_to_tree(const char *data, size_t size, json_object **ret, char **ret_err);
/* *ret_strict is go-yaml's strict error for duplicate keys ("yaml: unmarshal errors:\n  line …"),
 * or NULL. */
int se_config_yaml_to_tree(const char *data, size_t size, json_object **ret, char **ret_strict, char **ret_err);

/* Strict decode of the tree into the model, with kube-apiserver's defaulting. */
int se_config_decode_tree(json_object *root, bool from_yaml, const char *yaml_strict, se_config **ret, char **ret_err);

/* Helpers shared by the front ends and the decoder. */
const se_key_order *se_json_key_order(json_object *o);
/* Wipes every string value in the tree stored under a "secret" key. */
void se_json_wipe_secrets(json_object *o);
/* Go's time.ParseDuration over len bytes (decoded text may hold NUL bytes); on failure *ret_err is
 * Go's message. */
int se_go_parse_duration(const char *s, size_t len, int64_t *ret_ns, char **ret_err);
/* Go's json.Marshal text for a float64 (shortest round-trip, 'e' outside [1e-6, 1e21)). */
void se_go_format_float(double v, char *buf, size_t size);
/* Copy of the file with every secret value replaced by REDACTED. */
char *se_config_redact(const char *data, size_t size, json_object *root);
