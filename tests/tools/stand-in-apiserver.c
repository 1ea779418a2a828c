/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A stand-in for kube-apiserver in integration tests and the demo (a real part cannot run here):
 * like kube-apiserver it loads --encryption-provider-config, refuses to start when any stored
 * secret is unreadable with it, reports READY=1 (Type=notify), and keeps writing secrets with the
 * write key while it runs.
 *
 *   stand-in-apiserver --encryption-provider-config FILE --datastore sqlite://DB|https://…
 *                      [--write-interval-ms N] [--check-only]
 *                      [--etcd-cafile F --etcd-certfile F --etcd-keyfile F]   (kube-apiserver's names)
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "macro.h"
#include "secrets-encrypt.h"

static volatile sig_atomic_t stop;

static void on_term(int sig) {
        stop = 1;
}

/* Decrypts every current value under /registry/secrets/; returns the count or -ENOKEY. */
static int check_all(se_store *s, se_transformer *t, uint64_t *ret_stale, se_error *e) {
        _cleanup_free_ char *start = NULL;
        se_buf plain = {};
        uint64_t n = 0, stale = 0;
        int r = 0;

        for (;;) {
                se_kv_list l = {};

                r = se_store_range(s, "/registry/secrets/", start, 500, &l, e);
                if (r < 0)
                        break;
                for (size_t i = 0; i < l.n_items && r >= 0; i++) {
                        se_read_info info;

                        r = se_transformer_read(t, l.items[i].key, l.items[i].value, l.items[i].value_size, &plain,
                                                &info, e);
                        if (r >= 0) {
                                n++;
                                stale += info.stale;
                        }
                }
                if (r < 0 || !l.more || l.n_items == 0) {
                        se_kv_list_done(&l);
                        break;
                }
                free(start);
                /* next page starts just after the last key */
                if (asprintf(&start, "%s%c", l.items[l.n_items - 1].key, '\x01') < 0)
                        start = NULL;
                se_kv_list_done(&l);
                if (!start) {
                        r = -ENOMEM;
                        break;
                }
        }
        se_buf_free(&plain);
        if (r < 0)
                return r;
        *ret_stale = stale;
        return (int) MIN(n, (uint64_t) INT32_MAX);
}

/* One update of a stand-in-owned secret, as kube-apiserver would: read, encrypt, CAS. */
static int write_one(se_store *s, se_transformer *t, unsigned idx, se_error *e) {
        char key[128], payload[256];
        se_kv cur = {};
        se_buf out = {};
        se_kv_update u;
        int r, n;

        snprintf(key, sizeof(key), "/registry/secrets/stand-in/writer-%u", idx % 16);
        n = snprintf(payload, sizeof(payload), "k8s%cstand-in secret %u written at %lld", 0, idx,
                     (long long) time(NULL));
        r = se_store_get(s, key, &cur, e);
        if (r < 0 && r != -ENOENT)
                return r;
        r = se_transformer_write(t, key, (const uint8_t *) payload, (size_t) n, &out, e);
        if (r >= 0) {
                u = (se_kv_update){ .key = key, .value = out.data, .value_size = out.len,
                                    .expected_mod_revision = cur.key ? cur.mod_revision : 0 };
                r = se_store_update(s, &u, 1, e);
        }
        se_kv_done(&cur);
        se_buf_free(&out);
        return r;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "encryption-provider-config", required_argument, NULL, 'c' },
                { "datastore", required_argument, NULL, 'd' },
                { "write-interval-ms", required_argument, NULL, 'i' },
                { "check-only", no_argument, NULL, 'k' },
                { "etcd-cafile", required_argument, NULL, 'A' },
                { "etcd-certfile", required_argument, NULL, 'C' },
                { "etcd-keyfile", required_argument, NULL, 'K' },
                {},
        };
        const char *config_path = NULL, *endpoint = NULL, *cafile = NULL, *certfile = NULL, *keyfile = NULL;
        unsigned interval_ms = 200, idx = 0;
        bool check_only = false;
        se_config *config = NULL;
        se_transformer *t = NULL;
        se_store *store = NULL;
        se_error e = SE_ERROR_NULL;
        char hash[65];
        uint64_t stale = 0;
        int opt, r, n;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'd':
                        endpoint = optarg;
                        break;
                case 'i':
                        interval_ms = (unsigned) atoi(optarg);
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 'A':
                        cafile = optarg;
                        break;
                case 'C':
                        certfile = optarg;
                        break;
                case 'K':
                        keyfile = optarg;
                        break;
                default:
                        return 2;
                }
        if (!config_path || !endpoint) {
                fprintf(stderr, "usage: stand-in-apiserver --encryption-provider-config FILE --datastore URL\n");
                return 2;
        }

        r = se_config_load(config_path, &config, hash, &e);
        if (r >= 0)
                r = se_transformer_new(config, "secrets", &t, &e);
        if (r >= 0) {
                se_store_options o = {
                        .endpoint = endpoint, .cafile = cafile, .certfile = certfile, .keyfile = keyfile
                };
                r = se_store_open(&o, &store, &e);
        }
        if (r >= 0)
                r = n = check_all(store, t, &stale, &e);
        if (r < 0) {
                fprintf(stderr, "stand-in-apiserver: %s\n", se_error_message(&e));
                goto finish;
        }
        printf("stand-in-apiserver: config sha256:%s, %d secrets readable (%" PRIu64 " stale)\n", hash, n, stale);
        fflush(stdout);
        if (check_only)
                goto finish;

        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        (void) sd_notifyf(0, "READY=1\nSTATUS=serving with config sha256:%s", hash);
        while (!stop) {
                if (interval_ms > 0) {
                        r = write_one(store, t, idx++, &e);
                        if (r < 0 && r != -EBUSY) {
                                fprintf(stderr, "stand-in-apiserver: write failed: %s\n", se_error_message(&e));
                                goto finish;
                        }
                        se_error_done(&e);
                }
                usleep((interval_ms ? interval_ms : 1000) * 1000);
        }
        r = 0;
finish:
        se_store_close(store);
        se_transformer_free(t);
        se_config_free(config);
        se_error_done(&e);
        return r < 0 ? 1 : 0;
}
