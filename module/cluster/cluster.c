/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "macro.h"
#include "se-cluster.h"
#include "se-etcd.h"
#include "se-util.h"
#include "seal-internal.h"

#define NODE_NAME_MAX   253
#define NODE_RECORD_MAX (64u * 1024u)
#define LIST_PAGE       500
/* Node listing gives up after this many pages (LIST_PAGE_MAX * LIST_PAGE records): an etcd that
 * keeps answering "more" must not keep a start or a command busy for ever. */
#define LIST_PAGE_MAX 64

#define NODE_MAC_LABEL    "secrets-encrypt node record v1\n"
#define ROLLING_MAC_LABEL "secrets-encrypt rolling v1\n"
#define TOKEN_ID_LABEL    "secrets-encrypt token id v1\n"
#define KEY_CACHE_LABEL   "secrets-encrypt record key cache v1\n"

struct se_cluster {
        se_store *store;
        char *token;
        /* the record key (seal-internal.h), derived on first use and wiped on close */
        uint8_t record_key[SE_SEAL_KEY_SIZE];
        bool have_record_key;
};

struct se_cluster_lease {
        se_cluster *cluster;
        char *holder;
        int64_t id;
        int64_t ttl;
};

_public_ int se_cluster_open(se_store *store, const char *token, se_cluster **ret, se_error *e) {
        se_cluster *c;

        if (!store || !ret)
                return se_error_set(e, -EINVAL, "no datastore");
        if (se_store_get_kind(store) != SE_STORE_ETCD)
                return se_error_set(e, -EOPNOTSUPP,
                                    "cluster coordination needs an etcd datastore; with SQLite this server is the "
                                    "whole cluster");
        if (token && !*token)
                return se_error_set(e, -EINVAL, "the cluster token is empty");

        c = calloc(1, sizeof(*c));
        if (!c)
                return se_error_set(e, -ENOMEM, "out of memory");
        c->store = store;
        if (token) {
                c->token = strdup(token);
                if (!c->token) {
                        free(c);
                        return se_error_set(e, -ENOMEM, "out of memory");
                }
        }
        *ret = c;
        return 0;
}

_public_ se_cluster *se_cluster_close(se_cluster *c) {
        if (c) {
                erase_and_freep(&c->token);
                explicit_wipe(c->record_key, sizeof(c->record_key));
                free(c);
        }
        return NULL;
}

static int record_key(se_cluster *c, const uint8_t **ret, se_error *e) {
        int r;

        if (!c->token)
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential (node "
                                    "records are authenticated with it)");
        if (!c->have_record_key) {
                r = se_seal_record_key(c->token, c->record_key, e);
                if (r < 0)
                        return r;
                c->have_record_key = true;
        }
        *ret = c->record_key;
        return 0;
}

/* HMAC(key, label ‖ token): proves a cached key was derived from this token. */
static int key_cache_tag(se_cluster *c, const uint8_t key[static SE_SEAL_KEY_SIZE], char ret[static 65]) {
        _cleanup_erase_free_ char *text = NULL;

        if (asprintf(&text, KEY_CACHE_LABEL "%s", c->token) < 0)
                return -ENOMEM;
        return se_seal_mac_hex(key, text, strlen(text), ret);
}

static int hex_digit(char ch) {
        return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int unhex(const char *s, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int hi = hex_digit(s[2 * i]), lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -EBADMSG;
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

_public_ int se_cluster_cache_record_key(se_cluster *c, const char *path, se_error *e) {
        _cleanup_erase_free_ char *text = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t key[SE_SEAL_KEY_SIZE];
        const uint8_t *k = NULL;
        char tag[65], hex[65];
        size_t size = 0;
        int r;

        if (!c->token || c->have_record_key)
                return 0;
        /* "<key hex> <tag hex>\n" */
        r = se_read_file(path, 256, &data, &size);
        if (r >= 0 && size == 2 * 64 + 2 && data[64] == ' ' && data[129] == '\n') {
                memcpy(hex, data + 65, 64);
                hex[64] = 0;
                if (unhex((const char *) data, key, sizeof(key)) >= 0 && key_cache_tag(c, key, tag) >= 0 &&
                    se_seal_mac_equal(tag, hex)) {
                        memcpy(c->record_key, key, sizeof(key));
                        c->have_record_key = true;
                        explicit_wipe(key, sizeof(key));
                        explicit_wipe(data, size);
                        return 0;
                }
        }
        explicit_wipe(key, sizeof(key));
        if (data)
                explicit_wipe(data, size);

        r = record_key(c, &k, e);
        if (r < 0)
                return r;
        r = key_cache_tag(c, k, tag);
        if (r >= 0) {
                text = malloc(2 * 64 + 3);
                if (!text)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                for (size_t i = 0; i < SE_SEAL_KEY_SIZE; i++)
                        snprintf(text + 2 * i, 3, "%02x", k[i]);
                snprintf(text + 64, 2 * 64 + 3 - 64, " %s\n", tag);
                /* only a cache: a read-only state dir derives again next time */
                (void) se_write_file_atomic(path, text, strlen(text), 0600);
        }
        return 0;
}

_public_ int se_cluster_token_id(se_cluster *c, char ret[static 65], se_error *e) {
        const uint8_t *key = NULL;
        int r;

        r = record_key(c, &key, e);
        if (r < 0)
                return r;
        r = se_seal_mac_hex(key, TOKEN_ID_LABEL, strlen(TOKEN_ID_LABEL), ret);
        return r < 0 ? se_error_set(e, r, "HMAC-SHA256 failed") : 0;
}

_public_ void se_cluster_config_done(se_cluster_config *cfg) {
        if (!cfg)
                return;
        if (cfg->bytes) {
                explicit_wipe(cfg->bytes, cfg->size);
                free(cfg->bytes);
        }
        *cfg = (se_cluster_config){.stage = SE_STAGE_INVALID};
}

static void sealed_donep(se_sealed *s) {
        se_sealed_done(s);
}

/* Reads and parses the record: -ENOENT when there is none. */
static int read_sealed(se_cluster *c, se_sealed *ret, int64_t *ret_rev, se_error *e) {
        se_kv kv = {};
        int r;

        r = se_store_get(c->store, SE_CLUSTER_CONFIG_KEY, &kv, e);
        if (r == -ENOENT)
                return se_error_set(e, -ENOENT, "the cluster has no sealed encryption configuration in etcd yet");
        if (r < 0)
                return se_error_prefix(e, r, "cannot read %s", SE_CLUSTER_CONFIG_KEY);
        r = se_sealed_parse(kv.value, kv.value_size, ret, e);
        if (r >= 0)
                *ret_rev = kv.mod_revision;
        se_kv_done(&kv);
        return r;
}

_public_ int se_cluster_peek_config(se_cluster *c, se_cluster_config *ret, se_error *e) {
        _cleanup_(sealed_donep) se_sealed s = {};
        int64_t rev = 0;
        int r;

        r = read_sealed(c, &s, &rev, e);
        if (r < 0)
                return r;
        *ret = (se_cluster_config){.generation = s.generation, .stage = s.stage, .mod_revision = rev};
        memcpy(ret->hash, s.hash, sizeof(ret->hash));
        return 0;
}

_public_ int se_cluster_get_config(se_cluster *c, se_cluster_config *ret, se_error *e) {
        _cleanup_(sealed_donep) se_sealed s = {};
        uint8_t *bytes = NULL;
        int64_t rev = 0;
        size_t size = 0;
        int r;

        if (!c->token)
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential");
        r = read_sealed(c, &s, &rev, e);
        if (r < 0)
                return r;
        r = se_sealed_open(&s, c->token, &bytes, &size, e);
        if (r < 0)
                return r;
        *ret = (se_cluster_config){
                .generation = s.generation, .stage = s.stage, .bytes = bytes, .size = size, .mod_revision = rev};
        memcpy(ret->hash, s.hash, sizeof(ret->hash));
        return 0;
}

_public_ int se_cluster_put_config(se_cluster *c, const uint8_t *bytes, size_t size, uint64_t generation,
                                   se_stage stage, int64_t expected_mod_revision, int64_t *ret_new_revision,
                                   se_error *e) {
        _cleanup_free_ char *json = NULL;
        int64_t rev = 0, cur = 0;
        size_t len = 0;
        int r;

        if (!c->token)
                return se_error_set(e, -EINVAL,
                                    "no cluster token: set token-file or the secrets-encrypt-token credential");
        if (expected_mod_revision < 0)
                return se_error_set(e, -EINVAL, "invalid expected revision %" PRIi64, expected_mod_revision);
        r = se_seal(c->token, bytes, size, generation, stage, &json, &len, e);
        if (r < 0)
                return r;
        r = se_etcd_put_cas_lease(c->store, SE_CLUSTER_CONFIG_KEY, json, len, expected_mod_revision, 0, &rev, &cur, e);
        if (r < 0)
                return se_error_prefix(e, r, "cannot write %s", SE_CLUSTER_CONFIG_KEY);
        if (r == 0) {
                se_cluster_config now = {};
                se_error e2 = SE_ERROR_NULL;

                if (se_cluster_peek_config(c, &now, &e2) >= 0)
                        r = se_error_set(e, -ESTALE,
                                         "another server changed the cluster's encryption configuration first (etcd "
                                         "now has generation %" PRIu64 " at stage %s): nothing was written; re-run "
                                         "the command",
                                         now.generation, se_stage_to_string(now.stage));
                else if (cur == 0 && expected_mod_revision > 0)
                        r = se_error_set(e, -ESTALE,
                                         "another server removed the cluster's encryption configuration first: "
                                         "nothing was written; re-run the command");
                else
                        r = se_error_set(e, -ESTALE,
                                         "another server changed the cluster's encryption configuration first: "
                                         "nothing was written; re-run the command");
                se_error_done(&e2);
                return r;
        }
        if (ret_new_revision)
                *ret_new_revision = rev;
        return 0;
}

/* Node records. */

static int check_node_name(const char *name, se_error *e) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > NODE_NAME_MAX ||
            strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n ||
            streq(name, ".") || streq(name, ".."))
                return se_error_set(e, -EINVAL, "invalid node name \"%.64s\": use 1-%d characters of [A-Za-z0-9._-]",
                                    name ? name : "", NODE_NAME_MAX);
        return 0;
}

static void format_time(int64_t t, char buf[static 32]) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                strcpy(buf, "1970-01-01T00:00:00Z");
}

static int64_t parse_time(const char *s) {
        struct tm tm = {};
        const char *end;

        if (!s)
                return 0;
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return 0;
        return (int64_t) timegm(&tm);
}

static char *node_key(const char *name) {
        char *k;

        return asprintf(&k, "%s%s", SE_CLUSTER_NODES_PREFIX, name) < 0 ? NULL : k;
}

/* The MACed text of a node record: every field, length-prefixed, the name included so a record
 * cannot be moved to another node's key. */
static int node_mac(const uint8_t *key, const char *name, const char *annotation, const char *running,
                    uint64_t generation, const char *time, const char *version, char ret[static 65]) {
        _cleanup_free_ char *text = NULL;
        int r;

        if (asprintf(&text,
                     NODE_MAC_LABEL "name=%zu:%s\nannotation=%zu:%s\nrunning=%d:%zu:%s\ngeneration=%" PRIu64
                                    "\ntime=%zu:%s\nversion=%zu:%s\n",
                     strlen(name), name, strlen(annotation), annotation, running ? 1 : 0,
                     running ? strlen(running) : 0, running ? running : "", generation, strlen(time), time,
                     strlen(version), version) < 0)
                return -ENOMEM;
        r = se_seal_mac_hex(key, text, strlen(text), ret);
        return r;
}

/* Writes value unconditionally through compare-and-swap retries (etcd's JSON gateway helper has
 * no blind put). */
static int put_any(se_cluster *c, const char *key, const char *value, se_error *e) {
        for (unsigned attempt = 0; attempt < 8; attempt++) {
                se_kv kv = {};
                int64_t expected = 0;
                int r;

                r = se_store_get(c->store, key, &kv, e);
                if (r >= 0)
                        expected = kv.mod_revision;
                se_kv_done(&kv);
                if (r < 0 && r != -ENOENT)
                        return se_error_prefix(e, r, "cannot read %s", key);
                r = se_etcd_put_cas(c->store, key, value, strlen(value), expected, NULL, e);
                if (r < 0)
                        return se_error_prefix(e, r, "cannot write %s", key);
                if (r > 0)
                        return 0;
        }
        return se_error_set(e, -EAGAIN, "cannot write %s: it keeps changing under us", key);
}

_public_ int se_cluster_publish_node(se_cluster *c, const char *name, const char *annotation, uint64_t generation,
                                     const char *version, se_error *e) {
        return se_cluster_publish_node_running(c, name, annotation, NULL, generation, version, e);
}

_public_ int se_cluster_publish_node_running(se_cluster *c, const char *name, const char *annotation,
                                             const char *running, uint64_t generation, const char *version,
                                             se_error *e) {
        _cleanup_free_ char *key = NULL;
        char hash[65], when[32], mac[65];
        const uint8_t *rk = NULL;
        json_object *o;
        se_stage st;
        int r;

        r = check_node_name(name, e);
        if (r < 0)
                return r;
        r = record_key(c, &rk, e);
        if (r < 0)
                return r;
        if (se_annotation_parse(annotation, &st, hash) < 0)
                return se_error_set(e, -EINVAL, "invalid annotation \"%.80s\" for node %s: want <stage>-<sha256 hex>",
                                    annotation ? annotation : "", name);
        if (running && se_annotation_parse(running, &st, hash) < 0)
                return se_error_set(e, -EINVAL, "invalid running annotation \"%.80s\" for node %s", running, name);
        if (generation > INT64_MAX)
                return se_error_set(e, -EINVAL, "invalid generation %" PRIu64, generation);
        key = node_key(name);
        o = json_object_new_object();
        if (!key || !o) {
                json_object_put(o);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        format_time((int64_t) (se_now_usec(CLOCK_REALTIME) / 1000000u), when);
        r = node_mac(rk, name, annotation, running, generation, when, version ? version : SE_VERSION, mac);
        if (r < 0) {
                json_object_put(o);
                return se_error_set(e, r, r == -ENOMEM ? "out of memory" : "HMAC-SHA256 failed");
        }
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "annotation", json_object_new_string(annotation));
        if (running)
                json_object_object_add(o, "running", json_object_new_string(running));
        json_object_object_add(o, "generation", json_object_new_int64((int64_t) generation));
        json_object_object_add(o, "time", json_object_new_string(when));
        json_object_object_add(o, "version", json_object_new_string(version ? version : SE_VERSION));
        json_object_object_add(o, "mac", json_object_new_string(mac));
        r = put_any(c, key, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                    e);
        json_object_put(o);
        return r;
}

static json_object *parse_object(const void *data, size_t size) {
        json_tokener *tok;
        json_object *o;

        if (size > NODE_RECORD_MAX)
                return NULL;
        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, data, (int) size);
        if (o && (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != size ||
                  !json_object_is_type(o, json_type_object))) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static const char *obj_str(json_object *o, const char *name) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int64_t obj_int(json_object *o, const char *name) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

/* A record whose fields do not check out, or whose MAC does not (forged in etcd, written by
 * another cluster's token, or by a version before records were authenticated), is kept, marked
 * invalid, under the name in its key: none of its content is used, and it counts as a server that
 * has not restarted, so it blocks rather than drives auto-advance and key removal. key NULL: no
 * token, nothing can be checked. */
static int node_from_kv(const uint8_t *key, const se_kv *kv, se_node_record *ret) {
        const char *name = kv->key + strlen(SE_CLUSTER_NODES_PREFIX), *ann, *run, *when, *version;
        json_object *o = parse_object(kv->value, kv->value_size);
        se_node_record n = {.mod_revision = kv->mod_revision};
        char hash[65], mac[65];
        int64_t gen;
        se_stage st;
        int r = 0;

        ann = obj_str(o, "annotation");
        run = obj_str(o, "running");
        gen = obj_int(o, "generation");
        when = obj_str(o, "time");
        version = obj_str(o, "version");
        n.name = strdup(name);
        if (!n.name) {
                r = -ENOMEM;
                goto finish;
        }
        if (!o || !ann || se_annotation_parse(ann, &st, hash) < 0 || gen < 0 || !obj_str(o, "name") ||
            !streq(obj_str(o, "name"), name) || (run && se_annotation_parse(run, &st, hash) < 0) || !when ||
            !version || !key) {
                n.invalid = true;
                goto finish;
        }
        r = node_mac(key, name, ann, run, (uint64_t) gen, when, version, mac);
        if (r < 0)
                goto finish;
        if (!se_seal_mac_equal(mac, obj_str(o, "mac"))) {
                n.invalid = true;
                goto finish;
        }
        n.annotation = strdup(ann);
        n.running = strdup_null(run);
        n.version = strdup(version);
        n.generation = (uint64_t) gen;
        n.time = parse_time(when);
        if (!n.annotation || (run && !n.running) || !n.version)
                r = -ENOMEM;
finish:
        json_object_put(o);
        if (r < 0) {
                free(n.name);
                free(n.annotation);
                free(n.running);
                free(n.version);
                return r;
        }
        *ret = n;
        return 0;
}

static int cmp_nodes(const void *a, const void *b) {
        return strcmp(((const se_node_record *) a)->name, ((const se_node_record *) b)->name);
}

_public_ void se_node_records_free(se_node_record *r, size_t n) {
        for (size_t i = 0; r && i < n; i++) {
                free(r[i].name);
                free(r[i].annotation);
                free(r[i].running);
                free(r[i].version);
        }
        free(r);
}

_public_ int se_cluster_list_nodes(se_cluster *c, se_node_record **ret, size_t *ret_n, se_error *e) {
        se_node_record *nodes = NULL;
        _cleanup_free_ char *start = NULL;
        const uint8_t *key = NULL;
        se_kv_list l = {};
        size_t n = 0;
        int r;

        /* without the token every record is listed as invalid (nothing can be checked) */
        if (c->token) {
                r = record_key(c, &key, e);
                if (r < 0)
                        return r;
        }
        for (unsigned page = 0;; page++) {
                se_node_record *grown;

                if (page >= LIST_PAGE_MAX) {
                        r = se_error_set(e, -EPROTO,
                                         "listing %s in etcd did not end after %u pages (%zu records): the datastore "
                                         "keeps answering that more keys follow; refusing to go on",
                                         SE_CLUSTER_NODES_PREFIX, LIST_PAGE_MAX, n);
                        goto fail;
                }
                se_kv_list_done(&l);
                r = se_store_range(c->store, SE_CLUSTER_NODES_PREFIX, start, LIST_PAGE, &l, e);
                if (r < 0) {
                        r = se_error_prefix(e, r, "cannot list %s", SE_CLUSTER_NODES_PREFIX);
                        goto fail;
                }
                if (l.more && l.n_items == 0) {
                        r = se_error_set(e, -EPROTO,
                                         "listing %s in etcd: the datastore said more keys follow but returned none",
                                         SE_CLUSTER_NODES_PREFIX);
                        goto fail;
                }
                grown = reallocarray(nodes, n + l.n_items + 1, sizeof(*nodes));
                if (!grown) {
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto fail;
                }
                nodes = grown;
                for (size_t i = 0; i < l.n_items; i++) {
                        /* every page must move forward: a key at or before where this page was asked
                         * to start (or outside the prefix) is a broken or hostile datastore */
                        if (!startswith(l.items[i].key, SE_CLUSTER_NODES_PREFIX) ||
                            (start && strcmp(l.items[i].key, start) < 0)) {
                                r = se_error_set(e, -EPROTO,
                                                 "listing %s in etcd: the datastore returned a key outside the range "
                                                 "asked for",
                                                 SE_CLUSTER_NODES_PREFIX);
                                goto fail;
                        }
                        if (strlen(l.items[i].key) <= strlen(SE_CLUSTER_NODES_PREFIX))
                                continue;
                        r = node_from_kv(key, &l.items[i], &nodes[n]);
                        if (r < 0) {
                                r = se_error_set(e, r, r == -ENOMEM ? "out of memory" : "HMAC-SHA256 failed");
                                goto fail;
                        }
                        n++;
                }
                if (!l.more)
                        break;
                free(start);
                /* the next key after the last one returned */
                if (asprintf(&start, "%s%c", l.items[l.n_items - 1].key, 1) < 0) {
                        start = NULL;
                        r = se_error_set(e, -ENOMEM, "out of memory");
                        goto fail;
                }
        }
        se_kv_list_done(&l);
        if (n > 1)
                qsort(nodes, n, sizeof(*nodes), cmp_nodes);
        *ret = nodes;
        *ret_n = n;
        return 0;

fail:
        se_kv_list_done(&l);
        se_node_records_free(nodes, n);
        return r;
}

_public_ int se_cluster_remove_node(se_cluster *c, const char *name, se_error *e) {
        _cleanup_free_ char *key = NULL;
        int r;

        r = check_node_name(name, e);
        if (r < 0)
                return r;
        key = node_key(name);
        if (!key)
                return se_error_set(e, -ENOMEM, "out of memory");
        for (unsigned attempt = 0; attempt < 8; attempt++) {
                se_kv kv = {};
                int64_t rev;

                r = se_store_get(c->store, key, &kv, e);
                rev = kv.mod_revision;
                se_kv_done(&kv);
                if (r == -ENOENT)
                        return se_error_set(e, -ENOENT, "no node record for %s in etcd", name);
                if (r < 0)
                        return se_error_prefix(e, r, "cannot read %s", key);
                r = se_etcd_delete_cas(c->store, key, rev, e);
                if (r < 0)
                        return se_error_prefix(e, r, "cannot delete %s", key);
                if (r > 0)
                        return 0;
        }
        return se_error_set(e, -EAGAIN, "cannot delete %s: it keeps changing under us", key);
}

_public_ int se_cluster_check_hashes(const se_node_record *nodes, size_t n, char **ret_error) {
        const se_node_record *first = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!nodes[i].annotation)
                        continue;
                if (!first) {
                        first = &nodes[i];
                        continue;
                }
                if (!streq(first->annotation, nodes[i].annotation)) {
                        char *m;

                        if (asprintf(&m, "hash does not match between %s and %s", first->name, nodes[i].name) < 0)
                                return -ENOMEM;
                        *ret_error = m;
                        return 0;
                }
        }
        *ret_error = NULL;
        return 0;
}

/* The re-encryption lease. */

typedef struct lease_value {
        char *holder;
        int64_t lease;
        int64_t ttl;
        int64_t since;
        int64_t mod_revision;
} lease_value;

static void lease_value_done(lease_value *v) {
        free(v->holder);
        *v = (lease_value){};
}

/* -ENOENT when nobody holds it; a malformed value gives holder NULL. */
static int read_lease(se_cluster *c, lease_value *ret, se_error *e) {
        se_kv kv = {};
        json_object *o;
        lease_value v = {};
        const char *h;
        int r;

        r = se_store_get(c->store, SE_CLUSTER_LEASE_KEY, &kv, e);
        if (r == -ENOENT)
                return se_error_set(e, -ENOENT, "nobody holds the re-encryption lease");
        if (r < 0)
                return se_error_prefix(e, r, "cannot read %s", SE_CLUSTER_LEASE_KEY);
        o = parse_object(kv.value, kv.value_size);
        v.mod_revision = kv.mod_revision;
        se_kv_done(&kv);
        h = obj_str(o, "holder");
        if (h && check_node_name(h, NULL) == 0) {
                v.holder = strdup(h);
                if (!v.holder) {
                        json_object_put(o);
                        return se_error_set(e, -ENOMEM, "out of memory");
                }
        }
        v.lease = obj_int(o, "lease");
        v.ttl = obj_int(o, "ttl");
        v.since = parse_time(obj_str(o, "time"));
        json_object_put(o);
        *ret = v;
        return 0;
}

_public_ int se_cluster_lease_holder(se_cluster *c, char **ret_holder, int64_t *ret_since, se_error *e) {
        lease_value v = {};
        int r;

        r = read_lease(c, &v, e);
        if (r < 0)
                return r;
        if (ret_holder) {
                *ret_holder = v.holder ? TAKE_PTR(v.holder) : strdup("(unknown)");
                if (!*ret_holder) {
                        lease_value_done(&v);
                        return se_error_set(e, -ENOMEM, "out of memory");
                }
        }
        if (ret_since)
                *ret_since = v.since;
        lease_value_done(&v);
        return 0;
}

_public_ int se_cluster_lease_acquire(se_cluster *c, const char *holder, int64_t ttl_sec, se_cluster_lease **ret,
                                      se_error *e) {
        _cleanup_free_ char *value = NULL, *holder_copy = NULL;
        se_cluster_lease *l;
        int64_t id = 0, ttl = 0, rev = 0;
        bool took_over = false;
        char when[32];
        int r;

        r = check_node_name(holder, e);
        if (r < 0)
                return r;
        if (ttl_sec < 1)
                return se_error_set(e, -EINVAL, "invalid lease TTL %" PRIi64 " s", ttl_sec);
        holder_copy = strdup(holder);
        if (!holder_copy)
                return se_error_set(e, -ENOMEM, "out of memory");

        r = se_etcd_lease_grant(c->store, ttl_sec, &id, &ttl, e);
        if (r < 0)
                return se_error_prefix(e, r, "cannot create an etcd lease");
        format_time((int64_t) (se_now_usec(CLOCK_REALTIME) / 1000000u), when);
        if (asprintf(&value, "{\"holder\":\"%s\",\"lease\":%" PRIi64 ",\"ttl\":%" PRIi64 ",\"time\":\"%s\"}", holder,
                     id, ttl, when) < 0) {
                value = NULL;
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto fail;
        }

        for (unsigned attempt = 0;; attempt++) {
                lease_value cur = {};

                r = se_etcd_put_cas_lease(c->store, SE_CLUSTER_LEASE_KEY, value, strlen(value), 0, id, &rev, NULL, e);
                if (r < 0) {
                        r = se_error_prefix(e, r, "cannot write %s", SE_CLUSTER_LEASE_KEY);
                        goto fail;
                }
                if (r > 0)
                        break;
                if (attempt >= 4) {
                        r = se_error_set(e, -EBUSY, "the re-encryption lease keeps changing hands; try again");
                        goto fail;
                }

                r = read_lease(c, &cur, e);
                if (r == -ENOENT)
                        continue; /* it just expired or was released */
                if (r < 0)
                        goto fail;
                if (cur.holder && streq(cur.holder, holder)) {
                        /* our own previous run died holding it: nobody else can be using it */
                        if (cur.lease > 0)
                                r = se_etcd_lease_revoke(c->store, cur.lease, e);
                        if (r >= 0)
                                r = se_etcd_delete_cas(c->store, SE_CLUSTER_LEASE_KEY, cur.mod_revision, e);
                        lease_value_done(&cur);
                        if (r < 0) {
                                r = se_error_prefix(e, r, "cannot take over the re-encryption lease left by %s",
                                                    holder);
                                goto fail;
                        }
                        took_over = true;
                        continue;
                }
                if (cur.since > 0 && cur.ttl > 0) {
                        char t[32];

                        format_time(cur.since, t);
                        r = se_error_set(e, -EBUSY,
                                         "the re-encryption lease is held by %s (since %s): only one server "
                                         "re-encrypts at a time; it is released when that server finishes, or %" PRIi64
                                         " s after it stops",
                                         cur.holder ? cur.holder : "(unknown)", t, cur.ttl);
                } else
                        r = se_error_set(e, -EBUSY,
                                         "the re-encryption lease is held by %s: only one server re-encrypts "
                                         "at a time",
                                         cur.holder ? cur.holder : "(unknown)");
                lease_value_done(&cur);
                goto fail;
        }

        l = calloc(1, sizeof(*l));
        if (!l) {
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto fail;
        }
        *l = (se_cluster_lease){.cluster = c, .holder = TAKE_PTR(holder_copy), .id = id, .ttl = ttl};
        *ret = l;
        return took_over ? 1 : 0;

fail:
        (void) se_etcd_lease_revoke(c->store, id, NULL);
        return r;
}

_public_ int se_cluster_lease_keepalive(se_cluster_lease *l, se_error *e) {
        int64_t ttl = 0;
        int r;

        r = se_etcd_lease_keepalive(l->cluster->store, l->id, &ttl, e);
        if (r == -ENOENT || (r >= 0 && ttl <= 0))
                return se_error_set(e, -ENOLCK,
                                    "the re-encryption lease of %s expired or was revoked: another server may take "
                                    "over; stopping",
                                    l->holder);
        if (r < 0)
                return se_error_prefix(e, r, "cannot refresh the re-encryption lease");
        l->ttl = ttl;
        return 0;
}

_public_ se_cluster_lease *se_cluster_lease_free(se_cluster_lease *l) {
        if (l) {
                free(l->holder);
                free(l);
        }
        return NULL;
}

_public_ int se_cluster_lease_release(se_cluster_lease *l, se_error *e) {
        int r;

        if (!l)
                return 0;
        r = se_etcd_lease_revoke(l->cluster->store, l->id, e);
        if (r < 0)
                r = se_error_prefix(e, r, "cannot release the re-encryption lease (it expires in %" PRIi64 " s)",
                                    l->ttl);
        se_cluster_lease_free(l);
        return r < 0 ? r : 0;
}

_public_ int64_t se_cluster_lease_id(const se_cluster_lease *l) {
        return l ? l->id : 0;
}

/* The rolling-rotation request. */

static int rolling_mac(const uint8_t *key, bool on, uint64_t generation, char ret[static 65]) {
        char text[128];

        snprintf(text, sizeof(text), ROLLING_MAC_LABEL "rolling=%d\ngeneration=%" PRIu64 "\n", on ? 1 : 0, generation);
        return se_seal_mac_hex(key, text, strlen(text), ret);
}

_public_ int se_cluster_get_rolling(se_cluster *c, bool *ret_on, uint64_t *ret_generation, se_error *e) {
        const uint8_t *key = NULL;
        json_object *o, *v;
        se_kv kv = {};
        char mac[65];
        int64_t gen;
        bool on;
        int r;

        r = record_key(c, &key, e);
        if (r < 0)
                return r;
        r = se_store_get(c->store, SE_CLUSTER_ROLLING_KEY, &kv, e);
        if (r == -ENOENT)
                return se_error_set(e, -ENOENT, "no rolling rotation was ever requested");
        if (r < 0)
                return se_error_prefix(e, r, "cannot read %s", SE_CLUSTER_ROLLING_KEY);
        o = parse_object(kv.value, kv.value_size);
        se_kv_done(&kv);
        gen = obj_int(o, "generation");
        if (!o || !json_object_object_get_ex(o, "rolling", &v) || !json_object_is_type(v, json_type_boolean) ||
            gen < 0) {
                json_object_put(o);
                return se_error_set(e, -EBADMSG,
                                    "%s in etcd is malformed or from an older secrets-encrypt: ignored (run "
                                    "`secrets-encrypt rotate-keys --rolling` again to request a rolling rotation)",
                                    SE_CLUSTER_ROLLING_KEY);
        }
        on = json_object_get_boolean(v);
        r = rolling_mac(key, on, (uint64_t) gen, mac);
        if (r >= 0 && !se_seal_mac_equal(mac, obj_str(o, "mac")))
                r = se_error_set(e, -EBADMSG,
                                 "%s in etcd fails authentication with the cluster token: it was not written by a "
                                 "server of this cluster; ignored",
                                 SE_CLUSTER_ROLLING_KEY);
        else if (r < 0)
                r = se_error_set(e, r, "HMAC-SHA256 failed");
        json_object_put(o);
        if (r < 0)
                return r;
        *ret_on = on;
        if (ret_generation)
                *ret_generation = (uint64_t) gen;
        return 0;
}

_public_ int se_cluster_set_rolling(se_cluster *c, bool on, uint64_t generation, se_error *e) {
        const uint8_t *key = NULL;
        char mac[65], value[256];
        int r;

        if (generation > INT64_MAX)
                return se_error_set(e, -EINVAL, "invalid generation %" PRIu64, generation);
        r = record_key(c, &key, e);
        if (r < 0)
                return r;
        r = rolling_mac(key, on, generation, mac);
        if (r < 0)
                return se_error_set(e, r, "HMAC-SHA256 failed");
        snprintf(value, sizeof(value), "{\"rolling\":%s,\"generation\":%" PRIu64 ",\"mac\":\"%s\"}",
                 on ? "true" : "false", generation, mac);
        return put_any(c, SE_CLUSTER_ROLLING_KEY, value, e);
}

/* Generations. */

static const char *const sync_names[_SE_CLUSTER_SYNC_MAX] = {
        [SE_CLUSTER_SYNC_SAME] = "same",
        [SE_CLUSTER_SYNC_CLUSTER_NEWER] = "cluster-newer",
        [SE_CLUSTER_SYNC_LOCAL_NEWER] = "local-newer",
        [SE_CLUSTER_SYNC_DIVERGED] = "diverged",
        [SE_CLUSTER_SYNC_CLUSTER_EMPTY] = "cluster-empty",
};

_public_ const char *se_cluster_sync_to_string(se_cluster_sync s) {
        return s >= 0 && s < _SE_CLUSTER_SYNC_MAX ? sync_names[s] : NULL;
}

_public_ int se_cluster_classify(uint64_t local_generation, const char *local_hash, uint64_t cluster_generation,
                                 const char *cluster_hash, se_cluster_sync *ret, char **ret_message) {
        se_cluster_sync s;
        char *m = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        if (!cluster_hash) {
                s = SE_CLUSTER_SYNC_CLUSTER_EMPTY;
                r = local_hash
                            ? asprintf(&m,
                                       "the cluster has no sealed encryption configuration in etcd yet: this "
                                       "server's (generation %" PRIu64 ", hash %s) is published",
                                       local_generation, local_hash)
                            : asprintf(&m, "neither this server nor the cluster has an encryption configuration yet");
        } else if (!local_hash || cluster_generation > local_generation) {
                s = SE_CLUSTER_SYNC_CLUSTER_NEWER;
                r = local_hash
                            ? asprintf(&m,
                                       "the cluster's encryption configuration (generation %" PRIu64 ", hash %s) is "
                                       "newer than this server's (generation %" PRIu64 ", hash %s): installing "
                                       "the cluster's (as `secrets-encrypt sync --from-cluster` does)",
                                       cluster_generation, cluster_hash, local_generation, local_hash)
                            : asprintf(&m,
                                       "this server has no encryption configuration: installing the cluster's "
                                       "(generation %" PRIu64 ", hash %s)",
                                       cluster_generation, cluster_hash);
        } else if (local_generation > cluster_generation) {
                s = SE_CLUSTER_SYNC_LOCAL_NEWER;
                r = asprintf(&m,
                             "this server's encryption configuration (generation %" PRIu64 ", hash %s) is newer than "
                             "the cluster's in etcd (generation %" PRIu64 ", hash %s), so the other servers do not "
                             "have it: run `secrets-encrypt sync --from-local` on this server to publish it to the "
                             "cluster, or `secrets-encrypt sync --from-cluster` to discard it and install the "
                             "cluster's",
                             local_generation, local_hash, cluster_generation, cluster_hash);
        } else if (!streq(local_hash, cluster_hash)) {
                s = SE_CLUSTER_SYNC_DIVERGED;
                r = asprintf(&m,
                             "this server's encryption configuration and the cluster's in etcd both have generation "
                             "%" PRIu64 " but differ (this server: hash %s, cluster: hash %s): run `secrets-encrypt "
                             "sync --from-cluster` to install the cluster's here, or `secrets-encrypt sync "
                             "--from-local` to make this server's the cluster's",
                             local_generation, local_hash, cluster_hash);
        } else {
                s = SE_CLUSTER_SYNC_SAME;
                r = asprintf(&m,
                             "this server's encryption configuration is the cluster's (generation %" PRIu64
                             ", hash %s)",
                             local_generation, local_hash);
        }
        if (r < 0)
                return -ENOMEM;
        *ret = s;
        if (ret_message)
                *ret_message = m;
        else
                free(m);
        return 0;
}
