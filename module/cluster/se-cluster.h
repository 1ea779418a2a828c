/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "se-error.h"
#include "se-state.h"
#include "se-store.h"

/*
 * Cluster state for HA servers, in etcd under /secrets-encrypt/ (nothing else is touched):
 *
 *   /secrets-encrypt/config           the encryption config sealed with the cluster token
 *                                     (scrypt N=2^15 r=8 p=1 over a random 16-byte salt →
 *                                     AES-256-GCM, random nonce, AAD binding generation, stage,
 *                                     hash and KDF parameters), with its generation, stage and
 *                                     hash in clear. Written only with compare-and-swap.
 *   /secrets-encrypt/nodes/<name>     {"name","annotation":"<stage>-<hash>","running","generation",
 *                                     "time":"RFC 3339","version","mac"}: k3s's node annotation;
 *                                     "mac" is HMAC-SHA256 under the token's record key over every
 *                                     field (seal-internal.h), so a record written without the
 *                                     token is listed as invalid and none of it is used
 *   /secrets-encrypt/rolling          {"rolling":bool,"generation":N,"mac"}: a rolling rotation was
 *                                     requested at config generation N (MACed the same way)
 *   /secrets-encrypt/reencrypt-lease  {"holder","lease","ttl","time"} attached to an etcd lease, so it
 *                                     vanishes when its holder stops keeping it alive
 *
 * The config bytes are the exact bytes of encryption-config.json, so the hash is k3s's hash on
 * every node. With SQLite (kine) there is no cluster: se_cluster_open() returns -EOPNOTSUPP and
 * the local state directory is the whole truth.
 *
 * errnos (besides the datastore's own, see se_errno_is_unavailable()):
 *   -EOPNOTSUPP    the store is not etcd
 *   -ENOENT        no sealed config / node record / lease holder
 *   -EKEYREJECTED  the token does not open the sealed config (wrong token on this node)
 *   -EBADMSG       the sealed config or a record is malformed or was altered in etcd
 *   -ESTALE        compare-and-swap lost: another server changed the config first; nothing
 *                  was written; re-read and re-run the command
 *   -EBUSY         the re-encryption lease is held by another server (message names it)
 *   -ENOLCK        the lease this process held expired or was revoked: stop re-encrypting
 *   -EINVAL        bad arguments (no token, bad node name or annotation, generation 0)
 *   -E2BIG         config over 1 MiB (etcd's request limit)
 */

#define SE_CLUSTER_PREFIX       "/secrets-encrypt/"
#define SE_CLUSTER_CONFIG_KEY   "/secrets-encrypt/config"
#define SE_CLUSTER_NODES_PREFIX "/secrets-encrypt/nodes/"
#define SE_CLUSTER_LEASE_KEY    "/secrets-encrypt/reencrypt-lease"
#define SE_CLUSTER_ROLLING_KEY  "/secrets-encrypt/rolling"

typedef struct se_cluster se_cluster;

/* store is borrowed and must outlive the handle. token may be NULL: then only peek, node
 * records and the lease work; get/put_config return -EINVAL. The token is copied and wiped on
 * close; nothing decrypted is cached. */
int se_cluster_open(se_store *store, const char *token, se_cluster **ret, se_error *e);
se_cluster *se_cluster_close(se_cluster *c);

typedef struct se_cluster_config {
        uint64_t generation;
        se_stage stage;
        char hash[65];  /* sha256 hex of bytes */
        uint8_t *bytes; /* exact encryption-config.json, NUL-terminated; NULL from peek */
        size_t size;
        int64_t mod_revision; /* pass to se_cluster_put_config() */
} se_cluster_config;

/* Wipes and frees bytes. */
void se_cluster_config_done(se_cluster_config *cfg);

/* Reads and opens the sealed config. -ENOENT when the cluster has none yet. */
int se_cluster_get_config(se_cluster *c, se_cluster_config *ret, se_error *e);
/* generation, stage, hash and revision only: no token, no decryption. */
int se_cluster_peek_config(se_cluster *c, se_cluster_config *ret, se_error *e);

/* Seals bytes and writes them if the record's mod_revision is still expected_mod_revision
 * (0 = there must be none). A lost race returns -ESTALE and writes nothing. Generation ≥ 1;
 * every mutating command passes the previous generation + 1. */
int se_cluster_put_config(se_cluster *c, const uint8_t *bytes, size_t size, uint64_t generation, se_stage stage,
                          int64_t expected_mod_revision, int64_t *ret_new_revision, se_error *e);

typedef struct se_node_record {
        char *name;
        char *annotation; /* "<stage>-<hash>"; NULL if the record is unreadable (invalid = true) */
        char *running;    /* "<stage>-<hash>" the server's API server started with (set by its hook);
                           * NULL when never published */
        uint64_t generation;
        int64_t time;  /* unix seconds of the last publish, 0 if unknown */
        char *version; /* software version of the publisher */
        bool invalid;  /* malformed or unauthenticated record in etcd (listed so it is not silently
                        * ignored; only name and mod_revision are set) */
        int64_t mod_revision;
} se_node_record;

/* The record key takes one scrypt derivation per process (~0.1 s, seconds on a loaded machine):
 * a process of a server keeps it in path (root-only state dir, next to the config's keys), with a
 * MAC proving it belongs to this token, and derives it again when that does not check. Failing
 * to write the cache is not an error. */
int se_cluster_cache_record_key(se_cluster *c, const char *path, se_error *e);

/* An identifier of the token (HMAC under its record key, nothing about the token itself): ties the
 * local generation high-water mark to it, so a new token starts a new mark. -EINVAL without a
 * token. */
int se_cluster_token_id(se_cluster *c, char ret[static 65], se_error *e);

/* The rolling-rotation request and the config generation it was made at. -ENOENT: none;
 * -EBADMSG: malformed, or its MAC fails (forged, or written by an older version): treat as not
 * requested. */
int se_cluster_get_rolling(se_cluster *c, bool *ret_on, uint64_t *ret_generation, se_error *e);
int se_cluster_set_rolling(se_cluster *c, bool on, uint64_t generation, se_error *e);

/* Names: 1-253 characters of [A-Za-z0-9._-] (Kubernetes node names fit). annotation must parse
 * as "<stage>-<sha256 hex>". version NULL = this library's version. Overwrites the record. Needs
 * the token (-EINVAL without): the record is MACed with it. */
int se_cluster_publish_node(se_cluster *c, const char *name, const char *annotation, uint64_t generation,
                            const char *version, se_error *e);
/* The same with the annotation the server is running with (what its hook loaded at the last
 * start). Commands change the annotation (k3s's semantics); only a start changes running, and
 * only running says a server can read a new key. running NULL: leave it out. */
int se_cluster_publish_node_running(se_cluster *c, const char *name, const char *annotation, const char *running,
                                    uint64_t generation, const char *version, se_error *e);
/* Every record, sorted by name (k3s lists Nodes by name). Records whose MAC does not check (or
 * every record, without a token) are listed with invalid set. An etcd that answers out of the
 * range asked for, says "more" without keys, or pages on past LIST_PAGE_MAX pages: -EPROTO. */
int se_cluster_list_nodes(se_cluster *c, se_node_record **ret, size_t *ret_n, se_error *e);
/* Forgets a decommissioned server. -ENOENT if there is no record. */
int se_cluster_remove_node(se_cluster *c, const char *name, se_error *e);
void se_node_records_free(se_node_record *r, size_t n);

/* k3s's check: the first record (in the given order) with an annotation is the reference; the
 * first later one whose whole annotation differs gives "hash does not match between <a> and
 * <b>". *ret_error = NULL when all match. Returns 0, or -ENOMEM. */
int se_cluster_check_hashes(const se_node_record *nodes, size_t n, char **ret_error);

/* The re-encryption lease. */
typedef struct se_cluster_lease se_cluster_lease;

/* Takes the lease for holder (a node name) with an etcd lease of ttl_sec seconds. -EBUSY naming
 * the current holder when another server has it. A lease left by this same holder (a previous
 * run that was killed) is taken over: returns 1 then, 0 for a fresh lease. The caller must hold
 * its state-directory lock, so one node name is one process. */
int se_cluster_lease_acquire(se_cluster *c, const char *holder, int64_t ttl_sec, se_cluster_lease **ret, se_error *e);
/* Refreshes the TTL; call at least every ttl/3. -ENOLCK when the lease was lost. */
int se_cluster_lease_keepalive(se_cluster_lease *l, se_error *e);
/* Revokes the lease (the key goes with it) and frees l, also on failure. */
int se_cluster_lease_release(se_cluster_lease *l, se_error *e);
/* Frees without revoking (the key expires after the TTL). */
se_cluster_lease *se_cluster_lease_free(se_cluster_lease *l);
int64_t se_cluster_lease_id(const se_cluster_lease *l);
/* Who holds the lease now and since when (unix seconds). -ENOENT if nobody. */
int se_cluster_lease_holder(se_cluster *c, char **ret_holder, int64_t *ret_since, se_error *e);

/* Local vs cluster config, by generation (never file times). */
typedef enum se_cluster_sync {
        SE_CLUSTER_SYNC_SAME,          /* same generation and hash */
        SE_CLUSTER_SYNC_CLUSTER_NEWER, /* install the cluster's config here */
        SE_CLUSTER_SYNC_LOCAL_NEWER,   /* refuse: this server has a config the cluster lacks */
        SE_CLUSTER_SYNC_DIVERGED,      /* same generation, different bytes: refuse */
        SE_CLUSTER_SYNC_CLUSTER_EMPTY, /* the cluster has none yet: publish this server's */
        _SE_CLUSTER_SYNC_MAX,
} se_cluster_sync;

const char *se_cluster_sync_to_string(se_cluster_sync s);

/* local_hash NULL = no local config; cluster_hash NULL = no sealed config in etcd. *ret_message
 * says what differs and, for LOCAL_NEWER and DIVERGED, the commands that resolve it
 * (`secrets-encrypt sync --from-cluster` / `--from-local`). Returns 0, -EINVAL, -ENOMEM. */
int se_cluster_classify(uint64_t local_generation, const char *local_hash, uint64_t cluster_generation,
                        const char *cluster_hash, se_cluster_sync *ret, char **ret_message);
