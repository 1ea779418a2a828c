/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster state under /secrets-encrypt/ against real etcd members: the sealed config with
 * compare-and-swap, node records and k3s's hash check, the re-encryption lease, failover. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "lib-etcd.h"
#include "lib-kine.h"
#include "macro.h"
#include "se-cluster.h"
#include "se-etcd.h"
#include "se-store.h"
#include "se-util.h"
#include "testlib.h"

#define TOKEN         "K10c0ffee::server:the-cluster-token"
#define WRONG_TOKEN   "K10c0ffee::server:another-clusters-token"
#define NEIGHBOUR_KEY "/registry/secrets/default/neighbour"
#define SIBLING_KEY   "/secrets-encrypt-other/keep"
#define BARE_KEY      "/secrets-encrypt"

static tl_etcd *single;

static void show(const char *what, const se_error *e) {
        if (getenv("SE_TEST_VERBOSE"))
                fprintf(stderr, "%s: %s\n", what, se_error_message(e));
}

static void put_ctl(tl_etcd *c, const char *key, const char *value) {
        char *args, *out = NULL;

        ck_assert_int_ge(asprintf(&args, "put -- '%s' '%s'", key, value), 0);
        ck_assert_msg(tl_etcdctl(c, args, &out) == 0, "etcdctl %s: %s", args, out);
        free(args);
        free(out);
}

static void single_setup(void) {
        single = tl_etcd_start(1);
        ck_assert_msg(single, "cannot start an etcd member");
        /* keys beside ours that must never change */
        put_ctl(single, NEIGHBOUR_KEY, "k8s:enc:aescbc:v1:key1:neighbour");
        put_ctl(single, SIBLING_KEY, "sibling");
        put_ctl(single, BARE_KEY, "bare");
}

static void single_teardown(void) {
        single = tl_etcd_free(single);
}

static se_store *open_store(const char *endpoints) {
        se_store_options o = {.endpoint = endpoints, .timeout_usec = 10 * 1000000ULL};
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;

        ck_assert_msg(se_store_open(&o, &s, &e) == 0, "open %s: %s", endpoints, se_error_message(&e));
        se_error_done(&e);
        return s;
}

static se_cluster *open_cluster(se_store *s, const char *token) {
        se_error e = SE_ERROR_NULL;
        se_cluster *c = NULL;

        ck_assert_msg(se_cluster_open(s, token, &c, &e) == 0, "%s", se_error_message(&e));
        se_error_done(&e);
        return c;
}

/* A k3s-style config with a fresh random key. */
static char *make_config(char **ret_secret, uint8_t ret_raw[static 32]) {
        char *secret = NULL, *cfg = NULL;

        ck_assert_int_eq(RAND_bytes(ret_raw, 32), 1);
        ck_assert_int_eq(se_base64_encode(ret_raw, 32, &secret), 0);
        ck_assert_int_ge(
                asprintf(&cfg,
                         "{\"kind\":\"EncryptionConfiguration\",\"apiVersion\":\"apiserver.config.k8s.io/v1\","
                         "\"resources\":[{\"resources\":[\"secrets\"],\"providers\":[{\"aescbc\":{\"keys\":"
                         "[{\"name\":\"aescbckey-cluster\",\"secret\":\"%s\"}]}},{\"identity\":{}}]}]}",
                         secret),
                0);
        *ret_secret = secret;
        return cfg;
}

/* Deletes everything under /secrets-encrypt/ so each test starts clean (the member is shared). */
static void wipe_ours(void) {
        ck_assert_int_eq(tl_etcdctl(single, "del --prefix /secrets-encrypt/", NULL), 0);
}

static void check_neighbours(tl_etcd *c) {
        const char *keys[] = {NEIGHBOUR_KEY, SIBLING_KEY, BARE_KEY};
        const char *want[] = {"k8s:enc:aescbc:v1:key1:neighbour", "sibling", "bare"};

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char *args, *out = NULL;

                ck_assert_int_ge(asprintf(&args, "get -w fields -- '%s'", keys[i]), 0);
                ck_assert_int_eq(tl_etcdctl(c, args, &out), 0);
                ck_assert_msg(strstr(out, want[i]), "%s changed: %s", keys[i], out);
                /* written once by the setup: version 1 */
                ck_assert_msg(strstr(out, "\"Version\" : 1\n"), "%s was rewritten: %s", keys[i], out);
                free(args);
                free(out);
        }
}

static int put_config(se_cluster *c, const char *cfg, uint64_t gen, se_stage st, int64_t expected, int64_t *ret_rev,
                      char **ret_msg) {
        se_error e = SE_ERROR_NULL;
        int r;

        r = se_cluster_put_config(c, (const uint8_t *) cfg, strlen(cfg), gen, st, expected, ret_rev, &e);
        show("put_config", &e);
        if (ret_msg)
                *ret_msg = strdup(se_error_message(&e));
        se_error_done(&e);
        return r;
}

START_TEST(test_not_etcd) {
        char *dir = tl_tmpdir(), *db = tl_path(dir, "state.db"), *ep = NULL;
        se_error e = SE_ERROR_NULL;
        se_cluster *c = NULL;
        se_store *s;

        tk_close(tk_create(db, true));
        ck_assert_int_ge(asprintf(&ep, "sqlite://%s", db), 0);
        s = open_store(ep);
        ck_assert_int_eq(se_cluster_open(s, TOKEN, &c, &e), -EOPNOTSUPP);
        ck_assert_ptr_null(c);
        ck_assert(strstr(se_error_message(&e), "etcd"));
        se_store_close(s);
        se_error_done(&e);
        free(ep);
        free(db);
        tl_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_check_hashes) {
        const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
        char a1[80], a2[80];
        char *err = NULL;

        snprintf(a1, sizeof(a1), "start-%s", h1);
        snprintf(a2, sizeof(a2), "prepare-%s", h1);
        se_node_record n[] = {
                {.name = (char *) "etcd-only"}, /* no annotation: skipped, as k3s skips */
                {.name = (char *) "server-1", .annotation = a1},
                {.name = (char *) "server-2", .annotation = a1},
                {.name = (char *) "server-3", .annotation = a1},
        };

        ck_assert_int_eq(se_cluster_check_hashes(n, 0, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(se_cluster_check_hashes(n, ELEMENTSOF(n), &err), 0);
        ck_assert_ptr_null(err);
        n[3].annotation = a2;
        ck_assert_int_eq(se_cluster_check_hashes(n, ELEMENTSOF(n), &err), 0);
        ck_assert_str_eq(err, "hash does not match between server-1 and server-3");
        free(err);
        /* the first mismatch is reported, against the first annotated node */
        n[2].annotation = a2;
        ck_assert_int_eq(se_cluster_check_hashes(n, ELEMENTSOF(n), &err), 0);
        ck_assert_str_eq(err, "hash does not match between server-1 and server-2");
        free(err);
        n[1].annotation = NULL;
        ck_assert_int_eq(se_cluster_check_hashes(n, ELEMENTSOF(n), &err), 0);
        ck_assert_ptr_null(err);
}
END_TEST

START_TEST(test_classify) {
        const char *ha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        const char *hb = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        se_cluster_sync s;
        char *m = NULL;

        ck_assert_int_eq(se_cluster_classify(3, ha, 3, ha, &s, &m), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_SAME);
        ck_assert_str_eq(se_cluster_sync_to_string(s), "same");
        free(m);

        ck_assert_int_eq(se_cluster_classify(3, ha, 4, hb, &s, &m), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_CLUSTER_NEWER);
        ck_assert_msg(strstr(m, "generation 4") && strstr(m, "generation 3") && strstr(m, "installing"), "%s", m);
        free(m);

        ck_assert_int_eq(se_cluster_classify(0, NULL, 4, hb, &s, &m), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_CLUSTER_NEWER);
        free(m);

        ck_assert_int_eq(se_cluster_classify(5, ha, 4, hb, &s, &m), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_LOCAL_NEWER);
        ck_assert_str_eq(
                m, "this server's encryption configuration (generation 5, hash aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa) is newer than the cluster's in etcd (generation 4, hash "
                   "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb), so the other servers do "
                   "not have it: run `secrets-encrypt sync --from-local` on this server to publish it to the "
                   "cluster, or `secrets-encrypt sync --from-cluster` to discard it and install the cluster's");
        free(m);

        ck_assert_int_eq(se_cluster_classify(4, ha, 4, hb, &s, &m), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_DIVERGED);
        ck_assert_msg(strstr(m, "sync --from-cluster") && strstr(m, "sync --from-local") && strstr(m, ha) &&
                              strstr(m, hb),
                      "%s", m);
        free(m);

        ck_assert_int_eq(se_cluster_classify(2, ha, 0, NULL, &s, NULL), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_CLUSTER_EMPTY);
        ck_assert_int_eq(se_cluster_classify(0, NULL, 0, NULL, &s, NULL), 0);
        ck_assert_int_eq(s, SE_CLUSTER_SYNC_CLUSTER_EMPTY);
        ck_assert_ptr_null(se_cluster_sync_to_string(_SE_CLUSTER_SYNC_MAX));
}
END_TEST

START_TEST(test_config_round_trip_and_cas) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *cfg2 = NULL, *secret2 = NULL, *msg = NULL;
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN);
        se_cluster_config got = {}, peek = {};
        se_error e = SE_ERROR_NULL;
        uint8_t raw[32], raw2[32];
        int64_t rev = 0, rev2 = 0;
        char hash[65];

        wipe_ours();
        cfg = make_config(&secret, raw);
        cfg2 = make_config(&secret2, raw2);

        ck_assert_int_eq(se_cluster_get_config(c, &got, &e), -ENOENT);
        ck_assert_int_eq(se_cluster_peek_config(c, &got, &e), -ENOENT);

        ck_assert_int_eq(put_config(c, cfg, 1, SE_STAGE_START, 0, &rev, NULL), 0);
        ck_assert_int_gt(rev, 0);
        ck_assert_msg(se_cluster_get_config(c, &got, &e) == 0, "%s", se_error_message(&e));
        ck_assert_uint_eq(got.generation, 1);
        ck_assert_int_eq(got.stage, SE_STAGE_START);
        ck_assert_uint_eq(got.size, strlen(cfg));
        ck_assert_mem_eq(got.bytes, cfg, got.size);
        ck_assert_int_eq(got.mod_revision, rev);
        ck_assert_int_eq(se_sha256_hex(cfg, strlen(cfg), hash), 0);
        ck_assert_str_eq(got.hash, hash);

        /* create-if-absent loses once it exists */
        ck_assert_int_eq(put_config(c, cfg2, 1, SE_STAGE_START, 0, NULL, &msg), -ESTALE);
        ck_assert_str_eq(msg, "another server changed the cluster's encryption configuration first (etcd now has "
                              "generation 1 at stage start): nothing was written; re-run the command");

        /* the next generation, on the revision read */
        ck_assert_int_eq(put_config(c, cfg2, 2, SE_STAGE_PREPARE, got.mod_revision, &rev2, NULL), 0);
        ck_assert_int_gt(rev2, rev);
        /* a writer still holding the old revision loses, nothing merged */
        free(msg);
        ck_assert_int_eq(put_config(c, cfg, 2, SE_STAGE_ROTATE, got.mod_revision, NULL, &msg), -ESTALE);
        ck_assert_msg(strstr(msg, "generation 2 at stage prepare") && strstr(msg, "re-run the command"), "%s", msg);
        se_cluster_config_done(&got);
        ck_assert_int_eq(se_cluster_get_config(c, &got, &e), 0);
        ck_assert_uint_eq(got.generation, 2);
        ck_assert_int_eq(got.stage, SE_STAGE_PREPARE);
        ck_assert_mem_eq(got.bytes, cfg2, strlen(cfg2));
        ck_assert_int_eq(got.mod_revision, rev2);

        /* peek: the clear fields without the token */
        {
                se_cluster *nt = open_cluster(s, NULL);

                ck_assert_int_eq(se_cluster_peek_config(nt, &peek, &e), 0);
                ck_assert_uint_eq(peek.generation, 2);
                ck_assert_int_eq(peek.stage, SE_STAGE_PREPARE);
                ck_assert_str_eq(peek.hash, got.hash);
                ck_assert_ptr_null(peek.bytes);
                ck_assert_int_eq(peek.mod_revision, rev2);
                ck_assert_int_eq(se_cluster_get_config(nt, &peek, &e), -EINVAL);
                ck_assert_int_eq(put_config(nt, cfg, 3, SE_STAGE_ROTATE, rev2, NULL, NULL), -EINVAL);
                se_cluster_close(nt);
        }
        ck_assert_int_eq(se_cluster_open(s, "", &(se_cluster *){NULL}, &e), -EINVAL);

        se_cluster_config_done(&got);
        ck_assert_ptr_null(got.bytes);
        check_neighbours(single);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

START_TEST(test_wrong_token_and_tampering) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *stored = NULL, *edited = NULL, *args = NULL;
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN), *w = open_cluster(s, WRONG_TOKEN);
        se_cluster_config got = {};
        se_error e = SE_ERROR_NULL;
        uint8_t raw[32];
        char *p;
        int64_t rev = 0;

        wipe_ours();
        cfg = make_config(&secret, raw);
        ck_assert_int_eq(put_config(c, cfg, 4, SE_STAGE_ROTATE, 0, &rev, NULL), 0);

        ck_assert_int_eq(se_cluster_get_config(w, &got, &e), -EKEYREJECTED);
        ck_assert_str_eq(se_error_message(&e), "the cluster token does not open the sealed configuration in etcd: "
                                               "check token-file / the secrets-encrypt-token credential on this node");
        ck_assert_ptr_null(got.bytes);
        /* the wrong token cannot overwrite it blindly either: CAS on what it could not read */
        ck_assert_int_eq(put_config(w, cfg, 5, SE_STAGE_ROTATE, 0, NULL, NULL), -ESTALE);

        /* someone edits the generation in etcd: the AAD no longer matches */
        ck_assert_int_eq(tl_etcdctl(single, "get --print-value-only " SE_CLUSTER_CONFIG_KEY, &stored), 0);
        p = strstr(stored, "\"generation\":4,");
        ck_assert_ptr_nonnull(p);
        p[13] = '9';
        edited = strndup(stored, strcspn(stored, "\n"));
        ck_assert_int_ge(asprintf(&args, "put -- " SE_CLUSTER_CONFIG_KEY " '%s'", edited), 0);
        ck_assert_int_eq(tl_etcdctl(single, args, NULL), 0);
        ck_assert_int_eq(se_cluster_get_config(c, &got, &e), -EBADMSG);
        show("tampered", &e);
        ck_assert_msg(strstr(se_error_message(&e), "generation 9") &&
                              strstr(se_error_message(&e), "altered outside secrets-encrypt"),
                      "%s", se_error_message(&e));
        /* and garbage */
        ck_assert_int_eq(tl_etcdctl(single, "put -- " SE_CLUSTER_CONFIG_KEY " 'garbage'", NULL), 0);
        ck_assert_int_eq(se_cluster_get_config(c, &got, &e), -EBADMSG);
        ck_assert_int_eq(se_cluster_peek_config(c, &got, &e), -EBADMSG);

        check_neighbours(single);
        se_cluster_close(w);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

typedef struct racer {
        const char *endpoints;
        const char *cfg;
        uint64_t generation;
        int64_t expected;
        pthread_barrier_t *barrier;
        int result;
        char *message;
} racer;

static void *race(void *arg) {
        racer *r = arg;
        se_store_options o = {.endpoint = r->endpoints, .timeout_usec = 10 * 1000000ULL};
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        se_cluster *c = NULL;

        if (se_store_open(&o, &s, &e) < 0 || se_cluster_open(s, TOKEN, &c, &e) < 0) {
                r->result = -EIO;
                pthread_barrier_wait(r->barrier);
                goto out;
        }
        pthread_barrier_wait(r->barrier);
        r->result = se_cluster_put_config(c, (const uint8_t *) r->cfg, strlen(r->cfg), r->generation, SE_STAGE_PREPARE,
                                          r->expected, NULL, &e);
out:
        r->message = strdup(se_error_message(&e));
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
        return NULL;
}

START_TEST(test_cas_race_one_winner) {
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN);
        se_error e = SE_ERROR_NULL;
        int64_t rev = 0;

        wipe_ours();
        ck_assert_int_eq(put_config(c, "{\"base\":1}", 1, SE_STAGE_START, 0, &rev, NULL), 0);

        for (unsigned round = 0; round < 4; round++) {
                /* round 0 races on creation (expected 0) after deleting, the others on a revision */
                const char *cfgs[2] = {"{\"writer\":\"a\"}", "{\"writer\":\"b\"}"};
                pthread_barrier_t barrier;
                pthread_t t[2];
                racer rc[2];
                se_cluster_config got = {};
                int wins = 0, winner = -1;
                uint64_t gen;

                if (round == 0) {
                        ck_assert_int_eq(tl_etcdctl(single, "del " SE_CLUSTER_CONFIG_KEY, NULL), 0);
                        rev = 0;
                        gen = 1;
                } else {
                        ck_assert_int_eq(se_cluster_peek_config(c, &got, &e), 0);
                        rev = got.mod_revision;
                        gen = got.generation + 1;
                }
                ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, 2), 0);
                for (int i = 0; i < 2; i++) {
                        rc[i] = (racer){.endpoints = single->endpoints,
                                        .cfg = cfgs[i],
                                        .generation = gen,
                                        .expected = rev,
                                        .barrier = &barrier};
                        ck_assert_int_eq(pthread_create(&t[i], NULL, race, &rc[i]), 0);
                }
                for (int i = 0; i < 2; i++)
                        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
                pthread_barrier_destroy(&barrier);

                for (int i = 0; i < 2; i++) {
                        if (rc[i].result == 0) {
                                wins++;
                                winner = i;
                        } else {
                                ck_assert_msg(rc[i].result == -ESTALE, "round %u: %d %s", round, rc[i].result,
                                              rc[i].message);
                                ck_assert_msg(strstr(rc[i].message, "another server changed") &&
                                                      strstr(rc[i].message, "re-run the command"),
                                              "%s", rc[i].message);
                        }
                }
                ck_assert_int_eq(wins, 1);
                /* etcd holds exactly the winner's bytes */
                ck_assert_int_eq(se_cluster_get_config(c, &got, &e), 0);
                ck_assert_uint_eq(got.generation, gen);
                ck_assert_uint_eq(got.size, strlen(cfgs[winner]));
                ck_assert_mem_eq(got.bytes, cfgs[winner], got.size);
                se_cluster_config_done(&got);
                for (int i = 0; i < 2; i++)
                        free(rc[i].message);
        }
        check_neighbours(single);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

START_TEST(test_node_records) {
        const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
        const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN);
        se_error e = SE_ERROR_NULL;
        se_node_record *n = NULL;
        char a1[80], a2[80], *err = NULL;
        size_t k = 0;
        int64_t now = (int64_t) (se_now_usec(CLOCK_REALTIME) / 1000000u);

        wipe_ours();
        snprintf(a1, sizeof(a1), "prepare-%s", h1);
        snprintf(a2, sizeof(a2), "start-%s", h2);

        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 0);
        se_node_records_free(n, k);

        /* published out of order, listed by name */
        ck_assert_int_eq(se_cluster_publish_node(c, "server-3", a2, 3, NULL, &e), 0);
        ck_assert_int_eq(se_cluster_publish_node(c, "server-1", a1, 4, "9.9.9", &e), 0);
        ck_assert_int_eq(se_cluster_publish_node(c, "server-2", a1, 4, NULL, &e), 0);
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 3);
        ck_assert_str_eq(n[0].name, "server-1");
        ck_assert_str_eq(n[1].name, "server-2");
        ck_assert_str_eq(n[2].name, "server-3");
        ck_assert_str_eq(n[0].annotation, a1);
        ck_assert_str_eq(n[2].annotation, a2);
        ck_assert_uint_eq(n[0].generation, 4);
        ck_assert_uint_eq(n[2].generation, 3);
        ck_assert_str_eq(n[0].version, "9.9.9");
        ck_assert_str_eq(n[1].version, SE_VERSION);
        ck_assert_int_le(llabs(n[1].time - now), 5);
        ck_assert(!n[0].invalid);
        ck_assert_int_gt(n[0].mod_revision, 0);
        ck_assert_int_eq(se_cluster_check_hashes(n, k, &err), 0);
        ck_assert_str_eq(err, "hash does not match between server-1 and server-3");
        free(err);
        se_node_records_free(n, k);

        /* server-3 restarts with the new config: all match */
        ck_assert_int_eq(se_cluster_publish_node(c, "server-3", a1, 4, NULL, &e), 0);
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 3);
        ck_assert_str_eq(n[2].annotation, a1);
        ck_assert_int_eq(se_cluster_check_hashes(n, k, &err), 0);
        ck_assert_ptr_null(err);
        se_node_records_free(n, k);

        /* a broken record is listed as invalid, not dropped, and does not take part in the check */
        put_ctl(single, SE_CLUSTER_NODES_PREFIX "server-0", "{not json");
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 4);
        ck_assert_str_eq(n[0].name, "server-0");
        ck_assert(n[0].invalid);
        ck_assert_ptr_null(n[0].annotation);
        ck_assert_int_eq(se_cluster_check_hashes(n, k, &err), 0);
        ck_assert_ptr_null(err);
        se_node_records_free(n, k);

        /* remove */
        ck_assert_int_eq(se_cluster_remove_node(c, "server-0", &e), 0);
        ck_assert_int_eq(se_cluster_remove_node(c, "server-2", &e), 0);
        ck_assert_int_eq(se_cluster_remove_node(c, "server-2", &e), -ENOENT);
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 2);
        ck_assert_str_eq(n[0].name, "server-1");
        ck_assert_str_eq(n[1].name, "server-3");
        se_node_records_free(n, k);

        /* bad names and annotations are refused before anything is written */
        ck_assert_int_eq(se_cluster_publish_node(c, "../config", a1, 1, NULL, &e), -EINVAL);
        ck_assert_int_eq(se_cluster_publish_node(c, "a/b", a1, 1, NULL, &e), -EINVAL);
        ck_assert_int_eq(se_cluster_publish_node(c, "", a1, 1, NULL, &e), -EINVAL);
        ck_assert_int_eq(se_cluster_publish_node(c, "x", "prepare", 1, NULL, &e), -EINVAL);
        ck_assert_int_eq(se_cluster_publish_node(c, "x", "bogus-1111", 1, NULL, &e), -EINVAL);
        ck_assert_int_eq(se_cluster_remove_node(c, "..", &e), -EINVAL);
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 2);
        se_node_records_free(n, k);

        /* many nodes, more than one page is not needed for correctness but order must hold */
        for (int i = 0; i < 30; i++) {
                char name[32];

                snprintf(name, sizeof(name), "node-%02d", (i * 7) % 30);
                ck_assert_int_eq(se_cluster_publish_node(c, name, a1, 4, NULL, &e), 0);
        }
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 32);
        for (size_t i = 1; i < k; i++)
                ck_assert_int_lt(strcmp(n[i - 1].name, n[i].name), 0);
        se_node_records_free(n, k);

        check_neighbours(single);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

/* A record must carry a MAC under the token's record key: one written without the token (by hand,
 * another cluster, an older version) is listed as invalid, none of its fields used. */
START_TEST(test_node_records_forged) {
        const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
        const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN), *other = open_cluster(s, WRONG_TOKEN), *none = open_cluster(s, NULL);
        se_error e = SE_ERROR_NULL;
        se_node_record *n = NULL;
        se_kv kv = {};
        char a1[80], a2[80], *forged = NULL, *copy = NULL;
        size_t k = 0;

        wipe_ours();
        snprintf(a1, sizeof(a1), "rotate-%s", h1);
        snprintf(a2, sizeof(a2), "prepare-%s", h2);
        ck_assert_int_eq(se_cluster_publish_node_running(c, "server-1", a1, a1, 5, NULL, &e), 0);

        /* 2: the genuine record's fields, changed annotation and running, old MAC kept */
        ck_assert_int_eq(se_store_get(s, SE_CLUSTER_NODES_PREFIX "server-1", &kv, &e), 0);
        forged = strndup((const char *) kv.value, kv.value_size);
        se_kv_done(&kv);
        ck_assert_ptr_nonnull(strstr(forged, "\"mac\":\""));
        copy = strdup(forged);
        for (char *p = strstr(forged, h1); p; p = strstr(p, h1))
                memcpy(p, h2, 64);
        put_ctl(single, SE_CLUSTER_NODES_PREFIX "server-2", forged);
        /* 3: a genuine record copied under another node's key */
        put_ctl(single, SE_CLUSTER_NODES_PREFIX "server-3", copy);
        /* 4: the pre-MAC format, as an older version (or anyone) writes it */
        free(forged);
        ck_assert_int_ge(asprintf(&forged,
                                  "{\"name\":\"server-4\",\"annotation\":\"%s\",\"running\":\"%s\",\"generation\":9,"
                                  "\"time\":\"2026-01-01T00:00:00Z\",\"version\":\"0.1\"}",
                                  a1, a1),
                         0);
        put_ctl(single, SE_CLUSTER_NODES_PREFIX "server-4", forged);
        /* 5: written with another cluster's token */
        ck_assert_int_eq(se_cluster_publish_node_running(other, "server-5", a1, a1, 5, NULL, &e), 0);

        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 5);
        ck_assert_str_eq(n[0].name, "server-1");
        ck_assert(!n[0].invalid);
        ck_assert_str_eq(n[0].running, a1);
        ck_assert_uint_eq(n[0].generation, 5);
        for (size_t i = 1; i < k; i++) {
                ck_assert_msg(n[i].invalid, "%s accepted", n[i].name);
                ck_assert_ptr_null(n[i].annotation);
                ck_assert_ptr_null(n[i].running);
                ck_assert_uint_eq(n[i].generation, 0);
        }
        se_node_records_free(n, k);

        /* the other token's view: only its own record checks out */
        ck_assert_int_eq(se_cluster_list_nodes(other, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 5);
        for (size_t i = 0; i < k; i++)
                ck_assert_msg(n[i].invalid == !streq(n[i].name, "server-5"), "%s", n[i].name);
        se_node_records_free(n, k);

        /* without the token nothing can be checked or written */
        ck_assert_int_eq(se_cluster_list_nodes(none, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 5);
        for (size_t i = 0; i < k; i++)
                ck_assert(n[i].invalid);
        se_node_records_free(n, k);
        ck_assert_int_eq(se_cluster_publish_node(none, "server-1", a1, 1, NULL, &e), -EINVAL);

        free(forged);
        free(copy);
        check_neighbours(single);
        se_cluster_close(c);
        se_cluster_close(other);
        se_cluster_close(none);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

START_TEST(test_rolling_flag_authenticated) {
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN), *other = open_cluster(s, WRONG_TOKEN);
        se_error e = SE_ERROR_NULL;
        char id1[65], id2[65], id3[65];
        uint64_t gen = 0;
        bool on = false;

        wipe_ours();
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), -ENOENT);
        ck_assert_int_eq(se_cluster_set_rolling(c, true, 7, &e), 0);
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), 0);
        ck_assert(on);
        ck_assert_uint_eq(gen, 7);
        ck_assert_int_eq(se_cluster_set_rolling(c, false, 9, &e), 0);
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), 0);
        ck_assert(!on);
        ck_assert_uint_eq(gen, 9);

        /* the old plain "1", a flipped value under a genuine MAC, another token's record */
        put_ctl(single, SE_CLUSTER_ROLLING_KEY, "1");
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), -EBADMSG);
        show("old format", &e);
        {
                se_kv kv = {};
                char *v, *p;

                ck_assert_int_eq(se_cluster_set_rolling(c, false, 9, &e), 0);
                ck_assert_int_eq(se_store_get(s, SE_CLUSTER_ROLLING_KEY, &kv, &e), 0);
                v = strndup((const char *) kv.value, kv.value_size);
                se_kv_done(&kv);
                p = strstr(v, "false");
                ck_assert_ptr_nonnull(p);
                memcpy(p, "true ", 5);
                put_ctl(single, SE_CLUSTER_ROLLING_KEY, v);
                free(v);
        }
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), -EBADMSG);
        show("flipped", &e);
        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "fails authentication"));
        ck_assert_int_eq(se_cluster_set_rolling(other, true, 9, &e), 0);
        ck_assert_int_eq(se_cluster_get_rolling(c, &on, &gen, &e), -EBADMSG);
        ck_assert_int_eq(se_cluster_get_rolling(other, &on, &gen, &e), 0);
        ck_assert(on);

        /* the token id: stable for a token, another for another token, nothing of the token */
        ck_assert_int_eq(se_cluster_token_id(c, id1, &e), 0);
        ck_assert_int_eq(se_cluster_token_id(c, id2, &e), 0);
        ck_assert_int_eq(se_cluster_token_id(other, id3, &e), 0);
        ck_assert_str_eq(id1, id2);
        ck_assert_str_ne(id1, id3);
        ck_assert_uint_eq(strlen(id1), 64);

        se_cluster_close(c);
        se_cluster_close(other);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

/* The record key cached in the state dir: used when its MAC says it is this token's, derived again
 * (and the file rewritten) otherwise. */
START_TEST(test_record_key_cache) {
        const char *a = "start-1111111111111111111111111111111111111111111111111111111111111111";
        char *dir = tl_tmpdir(), *path = tl_path(dir, ".record-key"), *first, *again;
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN), *c2, *other;
        se_error e = SE_ERROR_NULL;
        se_node_record *n = NULL;
        struct stat st;
        size_t k = 0;

        wipe_ours();
        ck_assert_int_eq(se_cluster_cache_record_key(c, path, &e), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_mode & 0777, 0600);
        first = tl_read_file(path, NULL);
        ck_assert_uint_eq(strlen(first), 130);
        ck_assert_int_eq(se_cluster_publish_node(c, "server-1", a, 1, NULL, &e), 0);

        /* a second process of the same server: the cached key, records still check */
        c2 = open_cluster(s, TOKEN);
        ck_assert_int_eq(se_cluster_cache_record_key(c2, path, &e), 0);
        ck_assert_int_eq(se_cluster_list_nodes(c2, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 1);
        ck_assert(!n[0].invalid);
        se_node_records_free(n, k);
        se_cluster_close(c2);

        /* a damaged cache (key changed, tag kept) is not used: derived again, file rewritten */
        first[0] = first[0] == '0' ? '1' : '0';
        tl_write_str(path, first);
        c2 = open_cluster(s, TOKEN);
        ck_assert_int_eq(se_cluster_cache_record_key(c2, path, &e), 0);
        ck_assert_int_eq(se_cluster_list_nodes(c2, &n, &k, &e), 0);
        ck_assert(!n[0].invalid);
        se_node_records_free(n, k);
        se_cluster_close(c2);
        again = tl_read_file(path, NULL);
        ck_assert_str_ne(again, first);
        free(again);

        /* another token: the cache is not its key */
        other = open_cluster(s, WRONG_TOKEN);
        ck_assert_int_eq(se_cluster_cache_record_key(other, path, &e), 0);
        ck_assert_int_eq(se_cluster_list_nodes(other, &n, &k, &e), 0);
        ck_assert(n[0].invalid);
        se_node_records_free(n, k);
        se_cluster_close(other);

        free(first);
        free(path);
        tl_tmpdir_remove(dir);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

/* A mock etcd (tests/tools/mock-etcd.py): a real etcd cannot answer "more" with keys outside the
 * range or keep paging for ever, which is what a hostile or broken one does. */
typedef struct mock_etcd {
        pid_t pid;
        char *dir, *log, *endpoint;
} mock_etcd;

static void mock_etcd_start(mock_etcd *m, const char *mode) {
        char *portfile, *port = NULL;

        m->dir = tl_tmpdir();
        portfile = tl_path(m->dir, "port");
        m->log = tl_path(m->dir, "log");
        m->pid = fork();
        ck_assert_int_ge(m->pid, 0);
        if (m->pid == 0) {
                execlp("python3", "python3", "tests/tools/mock-etcd.py", portfile, mode, m->log, (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 200 && access(portfile, F_OK) < 0; i++)
                usleep(50000);
        port = tl_read_file(portfile, NULL);
        ck_assert_ptr_nonnull(port);
        ck_assert_int_ge(asprintf(&m->endpoint, "http://127.0.0.1:%s", port), 0);
        free(port);
        free(portfile);
}

static size_t mock_etcd_requests(mock_etcd *m) {
        char *log = tl_read_file(m->log, NULL);
        size_t n = 0;

        for (const char *p = log; p && (p = strchr(p, '\n')); p++)
                n++;
        free(log);
        return n;
}

static void mock_etcd_stop(mock_etcd *m) {
        if (m->pid > 0) {
                kill(m->pid, SIGTERM);
                waitpid(m->pid, NULL, 0);
        }
        tl_tmpdir_remove(m->dir);
        free(m->log);
        free(m->endpoint);
        *m = (mock_etcd){};
}

START_TEST(test_mock_etcd_hostile_paging) {
        static const struct {
                const char *mode;
                size_t max_requests;
                const char *why;
        } cases[] = {
                {"below", 1, "outside the range asked for"},
                {"outside", 1, "outside the range asked for"},
                {"repeat", 2, "outside the range asked for"},
                {"empty", 1, "more keys follow but returned none"},
                {"endless", 64, "did not end after 64 pages"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                mock_etcd m = {};
                se_error e = SE_ERROR_NULL;
                se_node_record *n = NULL;
                se_kv_list l = {};
                se_store *s;
                se_cluster *c;
                size_t k = 0, requests;
                int r;

                mock_etcd_start(&m, cases[i].mode);
                s = open_store(m.endpoint);
                c = open_cluster(s, TOKEN);
                r = se_cluster_list_nodes(c, &n, &k, &e);
                requests = mock_etcd_requests(&m);
                show(cases[i].mode, &e);
                ck_assert_msg(r == -EPROTO, "mock etcd %s: %d %s", cases[i].mode, r, se_error_message(&e));
                ck_assert_msg(strstr(se_error_message(&e), cases[i].why), "mock etcd %s: %s", cases[i].mode,
                              se_error_message(&e));
                ck_assert_msg(requests >= 1 && requests <= cases[i].max_requests, "mock etcd %s: %zu requests",
                              cases[i].mode, requests);
                ck_assert_ptr_null(n);
                se_error_done(&e);

                /* the store itself refuses keys outside [start, range_end), for every paging caller */
                if (streq(cases[i].mode, "below") || streq(cases[i].mode, "outside")) {
                        ck_assert_int_eq(se_store_range(s, "/registry/secrets/", NULL, 10, &l, &e), -EPROTO);
                        ck_assert_ptr_nonnull(strstr(se_error_message(&e), "range result outside the range"));
                        se_error_done(&e);
                }
                se_cluster_close(c);
                se_store_close(s);
                mock_etcd_stop(&m);
        }
}
END_TEST

static int acquire(se_cluster *c, const char *holder, int64_t ttl, se_cluster_lease **ret, char **ret_msg) {
        se_error e = SE_ERROR_NULL;
        int r;

        r = se_cluster_lease_acquire(c, holder, ttl, ret, &e);
        show("acquire", &e);
        if (ret_msg)
                *ret_msg = strdup(se_error_message(&e));
        se_error_done(&e);
        return r;
}

START_TEST(test_lease) {
        se_store *s = open_store(single->endpoints), *s2 = open_store(single->endpoints);
        se_cluster *a = open_cluster(s, NULL), *b = open_cluster(s2, NULL);
        se_cluster_lease *la = NULL, *lb = NULL;
        se_error e = SE_ERROR_NULL;
        char *msg = NULL, *holder = NULL;
        int64_t since = 0;
        int r;

        wipe_ours();
        ck_assert_int_eq(se_cluster_lease_holder(a, &holder, &since, &e), -ENOENT);

        ck_assert_int_eq(acquire(a, "server-1", 30, &la, NULL), 0);
        ck_assert_int_ne(se_cluster_lease_id(la), 0);
        ck_assert_int_eq(acquire(b, "server-2", 30, &lb, &msg), -EBUSY);
        ck_assert_ptr_null(lb);
        ck_assert_msg(strstr(msg, "the re-encryption lease is held by server-1 (since "), "%s", msg);
        free(msg);
        /* the wait named is the holder's TTL, not the asker's */
        ck_assert_int_eq(acquire(b, "server-2", 45, &lb, &msg), -EBUSY);
        ck_assert_msg(strstr(msg, "or 30 s after it stops"), "%s", msg);
        free(msg);
        ck_assert_int_eq(se_cluster_lease_holder(b, &holder, &since, &e), 0);
        ck_assert_str_eq(holder, "server-1");
        ck_assert_int_gt(since, 0);
        free(holder);
        ck_assert_int_eq(se_cluster_lease_keepalive(la, &e), 0);

        /* released: the other server gets it at once */
        ck_assert_int_eq(se_cluster_lease_release(la, &e), 0);
        ck_assert_int_eq(acquire(b, "server-2", 30, &lb, NULL), 0);
        ck_assert_int_eq(acquire(a, "server-1", 30, &la, &msg), -EBUSY);
        ck_assert(strstr(msg, "held by server-2"));
        free(msg);

        /* revoked behind the holder's back (e.g. by etcdctl): keepalive reports the loss */
        {
                char args[64];

                snprintf(args, sizeof(args), "lease revoke %" PRIx64, (uint64_t) se_cluster_lease_id(lb));
                ck_assert_int_eq(tl_etcdctl(single, args, NULL), 0);
        }
        ck_assert_int_eq(se_cluster_lease_keepalive(lb, &e), -ENOLCK);
        ck_assert(strstr(se_error_message(&e), "server-2"));
        lb = se_cluster_lease_free(lb);
        ck_assert_int_eq(se_cluster_lease_holder(a, &holder, NULL, &e), -ENOENT);

        /* a holder that dies (2 s TTL, no keepalive) blocks only until the lease expires */
        ck_assert_int_eq(acquire(a, "server-1", 2, &la, NULL), 0);
        la = se_cluster_lease_free(la); /* "killed": nobody revokes or refreshes */
        ck_assert_int_eq(acquire(b, "server-2", 30, &lb, NULL), -EBUSY);
        r = -EBUSY;
        for (int i = 0; i < 100 && r == -EBUSY; i++) {
                usleep(200 * 1000);
                r = acquire(b, "server-2", 30, &lb, NULL);
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(se_cluster_lease_release(lb, &e), 0);

        /* the same holder restarting after being killed takes its own lease over at once */
        ck_assert_int_eq(acquire(a, "server-1", 60, &la, NULL), 0);
        {
                int64_t old = se_cluster_lease_id(la);

                la = se_cluster_lease_free(la);
                ck_assert_int_eq(acquire(b, "server-2", 30, &lb, NULL), -EBUSY);
                ck_assert_int_eq(acquire(a, "server-1", 60, &la, NULL), 1);
                ck_assert_int_ne(se_cluster_lease_id(la), old);
        }
        ck_assert_int_eq(se_cluster_lease_holder(b, &holder, NULL, &e), 0);
        ck_assert_str_eq(holder, "server-1");
        free(holder);
        ck_assert_int_eq(se_cluster_lease_release(la, &e), 0);
        ck_assert_int_eq(se_cluster_lease_holder(b, &holder, NULL, &e), -ENOENT);

        /* bad arguments */
        ck_assert_int_eq(acquire(a, "a/b", 30, &la, NULL), -EINVAL);
        ck_assert_int_eq(acquire(a, "server-1", 0, &la, NULL), -EINVAL);

        check_neighbours(single);
        se_cluster_close(a);
        se_cluster_close(b);
        se_store_close(s);
        se_store_close(s2);
        se_error_done(&e);
}
END_TEST

/* Every value we wrote: no key material in clear, base64 or raw; nothing outside our prefix. */
START_TEST(test_no_key_material_in_etcd) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *dump = NULL;
        se_store *s = open_store(single->endpoints);
        se_cluster *c = open_cluster(s, TOKEN);
        se_cluster_lease *l = NULL;
        se_error e = SE_ERROR_NULL;
        se_kv_list list = {};
        uint8_t raw[32];
        char hash[65], ann[80];
        int64_t rev = 0;

        wipe_ours();
        cfg = make_config(&secret, raw);
        ck_assert_int_eq(se_sha256_hex(cfg, strlen(cfg), hash), 0);
        snprintf(ann, sizeof(ann), "start-%s", hash);
        ck_assert_int_eq(put_config(c, cfg, 1, SE_STAGE_START, 0, &rev, NULL), 0);
        ck_assert_int_eq(put_config(c, cfg, 2, SE_STAGE_PREPARE, rev, &rev, NULL), 0);
        ck_assert_int_eq(se_cluster_publish_node(c, "server-1", ann, 2, NULL, &e), 0);
        ck_assert_int_eq(acquire(c, "server-1", 30, &l, NULL), 0);

        ck_assert_int_eq(se_store_range(s, SE_CLUSTER_PREFIX, NULL, 1000, &list, &e), 0);
        ck_assert_uint_eq(list.n_items, 3); /* config, one node, the lease */
        for (size_t i = 0; i < list.n_items; i++) {
                const se_kv *kv = &list.items[i];

                ck_assert_msg(!tl_memmem(kv->value, kv->value_size, secret, strlen(secret)), "%s holds the secret",
                              kv->key);
                ck_assert_msg(!tl_memmem(kv->value, kv->value_size, raw, sizeof(raw)), "%s holds the raw key",
                              kv->key);
                ck_assert_msg(!tl_memmem(kv->value, kv->value_size, "aescbckey-cluster", 17), "%s holds the config",
                              kv->key);
                ck_assert_msg(!tl_memmem(kv->value, kv->value_size, "the-cluster-token", 17), "%s holds the token",
                              kv->key);
        }
        se_kv_list_done(&list);

        /* etcd's own view of everything, history included (compaction has not run) */
        ck_assert_int_eq(tl_etcdctl(single, "get --prefix / -w json", &dump), 0);
        ck_assert_ptr_null(strstr(dump, secret));
        {
                /* the JSON output is base64 of values: check the encodings of the secret there too */
                _cleanup_free_ char *b64 = NULL;

                ck_assert_int_eq(se_base64_encode(secret, strlen(secret), &b64), 0);
                /* a substring that does not depend on the alignment of the surrounding value */
                b64[20] = 0;
                ck_assert_ptr_null(strstr(dump, b64 + 4));
        }
        free(dump);
        dump = NULL;
        ck_assert_int_eq(tl_etcdctl(single, "get --prefix /secrets-encrypt/ --print-value-only", &dump), 0);
        ck_assert_ptr_null(strstr(dump, secret));
        ck_assert_ptr_null(strstr(dump, "aescbckey-cluster"));

        ck_assert_int_eq(se_cluster_lease_release(l, &e), 0);
        check_neighbours(single);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

START_TEST(test_three_members_one_killed) {
        _cleanup_free_ char *secret = NULL, *cfg = NULL, *cfg2 = NULL, *secret2 = NULL;
        tl_etcd *t = tl_etcd_start(3);
        se_store *s;
        se_cluster *c;
        se_cluster_config got = {};
        se_cluster_lease *l = NULL, *l2 = NULL;
        se_node_record *n = NULL;
        se_error e = SE_ERROR_NULL;
        uint8_t raw[32], raw2[32];
        char hash[65], ann[80], *err = NULL;
        int64_t rev = 0;
        size_t k = 0;
        int victim;

        ck_assert_msg(t, "cannot start a 3-member cluster");
        s = open_store(t->endpoints);
        c = open_cluster(s, TOKEN);
        cfg = make_config(&secret, raw);
        cfg2 = make_config(&secret2, raw2);
        ck_assert_int_eq(se_sha256_hex(cfg, strlen(cfg), hash), 0);
        snprintf(ann, sizeof(ann), "start-%s", hash);
        ck_assert_int_eq(put_config(c, cfg, 1, SE_STAGE_START, 0, &rev, NULL), 0);
        for (int i = 1; i <= 3; i++) {
                char name[16];

                snprintf(name, sizeof(name), "server-%d", i);
                ck_assert_int_eq(se_cluster_publish_node(c, name, ann, 1, NULL, &e), 0);
        }
        ck_assert_int_eq(acquire(c, "server-1", 30, &l, NULL), 0);

        /* the member we talk to dies */
        victim = tl_etcd_member_by_url(t, se_etcd_current_endpoint(s));
        ck_assert_int_ge(victim, 0);
        tl_etcd_kill(t, (size_t) victim);

        ck_assert_msg(se_cluster_get_config(c, &got, &e) == 0, "after kill: %s", se_error_message(&e));
        ck_assert_mem_eq(got.bytes, cfg, strlen(cfg));
        ck_assert_int_ne(tl_etcd_member_by_url(t, se_etcd_current_endpoint(s)), victim);
        ck_assert_int_eq(put_config(c, cfg2, 2, SE_STAGE_PREPARE, got.mod_revision, NULL, NULL), 0);
        se_cluster_config_done(&got);
        ck_assert_int_eq(se_cluster_lease_keepalive(l, &e), 0);
        ck_assert_int_eq(acquire(c, "server-2", 30, &l2, NULL), -EBUSY);
        ck_assert_int_eq(se_cluster_list_nodes(c, &n, &k, &e), 0);
        ck_assert_uint_eq(k, 3);
        ck_assert_int_eq(se_cluster_check_hashes(n, k, &err), 0);
        ck_assert_ptr_null(err);
        se_node_records_free(n, k);

        /* a fresh server whose endpoint list starts with the dead member */
        {
                _cleanup_free_ char *list = NULL;
                se_store *s2;
                se_cluster *c2;

                ck_assert_int_ge(asprintf(&list, "%s,%s", t->members[victim].client_url, t->endpoints), 0);
                s2 = open_store(list);
                c2 = open_cluster(s2, TOKEN);
                ck_assert_msg(se_cluster_get_config(c2, &got, &e) == 0, "%s", se_error_message(&e));
                ck_assert_uint_eq(got.generation, 2);
                ck_assert_mem_eq(got.bytes, cfg2, strlen(cfg2));
                se_cluster_config_done(&got);
                se_cluster_close(c2);
                se_store_close(s2);
        }

        ck_assert_int_eq(se_cluster_lease_release(l, &e), 0);
        ck_assert_int_eq(acquire(c, "server-2", 30, &l2, NULL), 0);
        ck_assert_int_eq(se_cluster_lease_release(l2, &e), 0);
        se_cluster_close(c);
        se_store_close(s);
        se_error_done(&e);
        tl_etcd_free(t);
}
END_TEST

static Suite *cluster_suite(void) {
        Suite *s = suite_create("cluster");
        TCase *tc;

        tc = tcase_create("offline");
        tcase_add_test(tc, test_not_etcd);
        tcase_add_test(tc, test_check_hashes);
        tcase_add_test(tc, test_classify);
        tcase_add_test(tc, test_mock_etcd_hostile_paging);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        if (!tl_etcd_available()) {
                fprintf(stderr, "etcd not available: skipping the etcd tests\n");
                return s;
        }

        tc = tcase_create("single");
        tcase_add_unchecked_fixture(tc, single_setup, single_teardown);
        tcase_add_test(tc, test_config_round_trip_and_cas);
        tcase_add_test(tc, test_wrong_token_and_tampering);
        tcase_add_test(tc, test_cas_race_one_winner);
        tcase_add_test(tc, test_node_records);
        tcase_add_test(tc, test_node_records_forged);
        tcase_add_test(tc, test_rolling_flag_authenticated);
        tcase_add_test(tc, test_record_key_cache);
        tcase_add_test(tc, test_lease);
        tcase_add_test(tc, test_no_key_material_in_etcd);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);

        tc = tcase_create("cluster");
        tcase_add_test(tc, test_three_members_one_killed);
        tcase_set_timeout(tc, 180);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(cluster_suite)
