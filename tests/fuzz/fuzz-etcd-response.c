/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the etcd v3 JSON-gateway response parser (module/store/store-etcd.c): each input
 * is served as the HTTP answers of a loopback server, and the store call that sent the requests
 * parses them. Any answer is fine except a crash, a leak, or an error without a message.
 *
 * Input: one op byte, then the body of the first answer; further answers follow, each after the
 * separator "\n=====\n" and starting with a status byte (NEXT_STATUS[b % 16]; the last entry sends
 * the chunk as it is, without a status line or headers). The op byte packs the call
 * (OPS[((b >> 5) * 4 + (b & 3)) % N_OPS]; b < 0x20 keeps the original four: range, get, count,
 * update) and the first answer's status (FIRST_STATUS[(b >> 2) & 7]). After the last answer the
 * listener closes, so a retry meets a refused connection instead of a 5 s failover loop; a call
 * that stops early leaves the remaining answers unsent. tests/fuzz/gen-seeds-data.py writes seeds
 * from real etcd 3.4 answers (tests/fuzz/data/etcd-v3.4/).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "se-etcd.h"
#include "se-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEPARATOR   "\n=====\n"
#define MAX_ANSWERS 4
#define RAW         (-1)

static const int FIRST_STATUS[8] = { 200, 200, 200, 400, 404, 500, 429, 503 };
static const int NEXT_STATUS[16] = { 200, 200, 200, 200, 400, 404, 500, 503, 502, 504, 429, 401, 405, 412, 200, RAW };

typedef enum op {
        OP_RANGE,
        OP_GET,
        OP_COUNT,
        OP_UPDATE,
        OP_RANGE_START,
        OP_PUT_LEASE,
        OP_PUT,
        OP_DELETE,
        OP_LEASE_GRANT,
        OP_LEASE_KEEPALIVE,
        OP_LEASE_REVOKE,
        OP_UPDATE_DUP, /* the same key twice: two transactions */
        N_OPS,
} op;

typedef struct answer {
        int status;
        const uint8_t *body;
        size_t size;
} answer;

typedef struct server {
        int listen_fd;
        int stop_fd; /* read end: the call is over */
        answer answers[MAX_ANSWERS];
        size_t n_answers;
} server;

/* The failover loop sleeps 200 ms between rounds (ETCD_RETRY_SLEEP_USEC); a 503 answer would
 * make that most of the time spent here. This definition replaces libc's for the library objects
 * linked into this target: no sleep, the rounds stay bounded (the listener closes after the last
 * answer, and a refused connection ends the loop). */
int usleep(useconds_t usec) {
        (void) usec;
        return 0;
}

static void read_request(int fd) {
        char buf[65536];
        size_t have = 0, want = SIZE_MAX;

        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                char *end;
                ssize_t n;

                if (poll(&p, 1, 2000) <= 0)
                        return;
                n = read(fd, buf + have, sizeof(buf) - 1 - have);
                if (n <= 0)
                        return;
                have += (size_t) n;
                buf[have] = 0;
                end = strstr(buf, "\r\n\r\n");
                if (end && want == SIZE_MAX) {
                        const char *cl = strcasestr(buf, "content-length:");
                        want = (size_t) (end + 4 - buf) + (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
                }
                if (have >= want || have >= sizeof(buf) - 1)
                        return;
        }
}

static void *serve(void *userdata) {
        server *s = userdata;

        for (size_t i = 0; i < s->n_answers; i++) {
                struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };
                const answer *a = &s->answers[i];
                char head[256];
                int fd, n;

                if (poll(p, 2, 5000) <= 0 || !(p[0].revents & POLLIN))
                        break;
                fd = accept(s->listen_fd, NULL, NULL);
                if (i + 1 == s->n_answers) {
                        close(s->listen_fd); /* a retry finds nobody listening */
                        s->listen_fd = -1;
                }
                if (fd < 0)
                        break;
                read_request(fd);
                if (a->status != RAW) {
                        n = snprintf(head, sizeof(head),
                                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                     "Connection: close\r\n\r\n",
                                     a->status, a->size);
                        if (write(fd, head, (size_t) n) != n) {
                                close(fd);
                                continue;
                        }
                }
                if (a->size > 0)
                        (void) !write(fd, a->body, a->size);
                close(fd);
        }
        return NULL;
}

static void split_answers(server *srv, const uint8_t *data, size_t size) {
        const uint8_t *p = data + 1, *end = data + size;

        srv->answers[0] = (answer){ .status = FIRST_STATUS[(data[0] >> 2) & 7], .body = p };
        srv->n_answers = 1;
        for (;;) {
                answer *a = &srv->answers[srv->n_answers - 1];
                const uint8_t *sep = memmem(a->body, (size_t) (end - a->body), SEPARATOR, STRLEN(SEPARATOR));

                if (!sep || srv->n_answers == MAX_ANSWERS) {
                        a->size = (size_t) (end - a->body);
                        return;
                }
                a->size = (size_t) (sep - a->body);
                p = sep + STRLEN(SEPARATOR);
                if (p == end) /* no status byte: the separator ends the input */
                        return;
                srv->answers[srv->n_answers++] = (answer){ .status = NEXT_STATUS[*p % 16], .body = p + 1 };
        }
}

static int run(se_store *store, op o, se_error *e) {
        static const char KEY[] = "/secrets-encrypt/fuzz";
        int64_t rev = 0, cur = 0, ttl = 0, id = 0;
        int r;

        switch (o) {
        case OP_RANGE:
        case OP_RANGE_START: {
                const char *start = o == OP_RANGE_START ? "/registry/secrets/default/a" : NULL;
                size_t limit = o == OP_RANGE_START ? 2 : 10;
                se_kv_list l = {};

                r = se_store_range(store, "/registry/secrets/", start, limit, &l, e);
                if (r >= 0) {
                        if (l.n_items > limit)
                                abort();
                        for (size_t i = 0; i < l.n_items; i++)
                                if (!l.items[i].key || (l.items[i].value_size > 0 && !l.items[i].value))
                                        abort();
                }
                se_kv_list_done(&l);
                return r;
        }
        case OP_GET: {
                se_kv kv = {};

                r = se_store_get(store, "/registry/secrets/default/a", &kv, e);
                if (r >= 0 && (!kv.key || !streq(kv.key, "/registry/secrets/default/a")))
                        abort();
                se_kv_done(&kv);
                return r;
        }
        case OP_COUNT: {
                uint64_t n = 0;

                return se_store_count(store, "/registry/secrets/", &n, e);
        }
        case OP_UPDATE:
        case OP_UPDATE_DUP: {
                se_kv_update u[3] = {
                        { .key = "/registry/secrets/default/a", .value = (const uint8_t *) "x", .value_size = 1,
                          .expected_mod_revision = 7 },
                        { .key = "/registry/secrets/default/b", .value = (const uint8_t *) "y", .value_size = 1 },
                        { .key = "/registry/secrets/default/a", .value = (const uint8_t *) "z", .value_size = 1,
                          .expected_mod_revision = 9 },
                };
                size_t n = o == OP_UPDATE_DUP ? 3 : 2;
                int written = 0;

                r = se_store_update(store, u, n, e);
                if (r > (int) n)
                        abort();
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (u[i].conflict && u[i].new_revision != 0)
                                abort();
                        written += u[i].new_revision != 0;
                }
                if (r >= 0 && written != r)
                        abort(); /* the count and the flags disagree */
                return r;
        }
        case OP_PUT_LEASE:
                r = se_etcd_put_cas_lease(store, KEY, "v", 1, 7, 0x1234, &rev, &cur, e);
                if (r > 1 || (r == 1 && rev <= 0))
                        abort();
                return r;
        case OP_PUT:
                r = se_etcd_put_cas(store, KEY, "v", 1, 0, &rev, e);
                if (r > 1 || (r == 1 && rev <= 0))
                        abort();
                return r;
        case OP_DELETE:
                r = se_etcd_delete_cas(store, KEY, 7, e);
                if (r > 1)
                        abort();
                return r;
        case OP_LEASE_GRANT:
                r = se_etcd_lease_grant(store, 30, &id, &ttl, e);
                if (r >= 0 && (id == 0 || ttl <= 0))
                        abort();
                return r;
        case OP_LEASE_KEEPALIVE:
                r = se_etcd_lease_keepalive(store, 0x1234, &ttl, e);
                if (r >= 0 && ttl <= 0)
                        abort();
                return r;
        case OP_LEASE_REVOKE:
                return se_etcd_lease_revoke(store, 0x1234, e);
        default:
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        server srv = { .listen_fd = -1 };
        char endpoint[64];
        se_error e = SE_ERROR_NULL;
        se_store *store = NULL;
        pthread_t thread;
        int stop[2], r;

        if (size < 1 || size > 256 * 1024)
                return 0;
        split_answers(&srv, data, size);

        srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            listen(srv.listen_fd, 4) < 0 || getsockname(srv.listen_fd, (struct sockaddr *) &a, &alen) < 0 ||
            pipe2(stop, O_CLOEXEC) < 0)
                abort();
        srv.stop_fd = stop[0];
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
        if (pthread_create(&thread, NULL, serve, &srv) != 0)
                abort();

        r = se_store_open(&(se_store_options){ .endpoint = endpoint, .timeout_usec = 2000000 }, &store, &e);
        if (r < 0)
                abort();
        r = run(store, (op) ((((unsigned) data[0] >> 5) * 4 + (data[0] & 3u)) % N_OPS), &e);
        if (r < 0 && !e.message)
                abort(); /* an operator would see no reason */

        se_store_close(store);
        (void) !write(stop[1], "", 1);
        pthread_join(thread, NULL);
        if (srv.listen_fd >= 0)
                close(srv.listen_fd);
        close(stop[0]);
        close(stop[1]);
        se_error_done(&e);
        return 0;
}
