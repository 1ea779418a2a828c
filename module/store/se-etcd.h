/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "se-error.h"
#include "se-store.h"

/*
 * Single-key etcd operations beyond the datastore interface, for the HA records under
 * /secrets-encrypt/. Each call needs a store opened on an etcd endpoint and returns -EOPNOTSUPP
 * for any other kind.
 */

/* Writes key if its mod_revision is still expected_mod_revision (0 = key must not exist), as
 * kube-apiserver does. Returns 1 when written (*ret_new_revision = the write's revision), 0 on a
 * conflict (nothing written; *ret_current_revision = the key's mod_revision now, 0 if absent). */
int se_etcd_put_cas(se_store *s, const char *key, const void *value, size_t size, int64_t expected_mod_revision,
                    int64_t *ret_new_revision, se_error *e);
/* The same, attaching the key to a lease (lease 0 = none); a conflict reports the current
 * mod_revision in *ret_current_revision if given. */
int se_etcd_put_cas_lease(se_store *s, const char *key, const void *value, size_t size, int64_t expected_mod_revision,
                          int64_t lease, int64_t *ret_new_revision, int64_t *ret_current_revision, se_error *e);
/* Deletes key if its mod_revision is expected_mod_revision (> 0). Returns 1 when deleted, 0 on a
 * conflict (the key changed or is already gone). */
int se_etcd_delete_cas(se_store *s, const char *key, int64_t expected_mod_revision, se_error *e);

/* Leases (TTL in seconds). keepalive returns the refreshed TTL; -ENOENT when the lease expired
 * or was revoked. revoke of an unknown lease succeeds (the goal is reached). */
int se_etcd_lease_grant(se_store *s, int64_t ttl_sec, int64_t *ret_id, int64_t *ret_ttl, se_error *e);
int se_etcd_lease_keepalive(se_store *s, int64_t id, int64_t *ret_ttl, se_error *e);
int se_etcd_lease_revoke(se_store *s, int64_t id, se_error *e);

/* The client URL that answered last (failover moves it), for messages. */
const char *se_etcd_current_endpoint(se_store *s);
