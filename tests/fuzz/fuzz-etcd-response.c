/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for the etcd v3 JSON-gateway response parser (module/store/store-etcd.c): each input
 * is served as the HTTP response of a one-shot loopback server, and the store call that sent the
 * request parses it. The first byte picks the call (range, get, count, update) and the HTTP
 * status; the rest is the body. The listener closes after one connection, so a retry meets a
 * refused connection instead of a 5 s failover loop. Any answer is fine except a crash, a leak,
 * or an error without a message.
 */
#include <arpa/inet.h>
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
#include "se-store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct server {
        int listen_fd;
        int status;
        const uint8_t *body;
        size_t body_size;
} server;

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
        struct pollfd p = { .fd = s->listen_fd, .events = POLLIN };
        char head[256];
        int fd, n;

        if (poll(&p, 1, 2000) <= 0)
                return NULL;
        fd = accept(s->listen_fd, NULL, NULL);
        close(s->listen_fd); /* a retry finds nobody listening */
        s->listen_fd = -1;
        if (fd < 0)
                return NULL;
        read_request(fd);
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     s->status, s->body_size);
        if (write(fd, head, (size_t) n) == n && s->body_size > 0)
                (void) !write(fd, s->body, s->body_size);
        close(fd);
        return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const int statuses[] = { 200, 200, 200, 400, 404, 500, 429, 200 };
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        server srv = { .listen_fd = -1 };
        char endpoint[64];
        se_error e = SE_ERROR_NULL;
        se_store *store = NULL;
        pthread_t thread;
        unsigned op;
        int r;

        if (size < 1 || size > 256 * 1024)
                return 0;
        op = data[0] & 3;
        srv.status = statuses[(data[0] >> 2) & 7];
        srv.body = data + 1;
        srv.body_size = size - 1;

        srv.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (srv.listen_fd < 0 || bind(srv.listen_fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            listen(srv.listen_fd, 4) < 0 || getsockname(srv.listen_fd, (struct sockaddr *) &a, &alen) < 0)
                abort();
        snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(a.sin_port));
        if (pthread_create(&thread, NULL, serve, &srv) != 0)
                abort();

        r = se_store_open(&(se_store_options){ .endpoint = endpoint, .timeout_usec = 2000000 }, &store, &e);
        if (r < 0)
                abort();
        switch (op) {
        case 0: {
                se_kv_list l = {};

                r = se_store_range(store, "/registry/secrets/", NULL, 10, &l, &e);
                if (r >= 0)
                        for (size_t i = 0; i < l.n_items; i++)
                                if (!l.items[i].key || (l.items[i].value_size > 0 && !l.items[i].value))
                                        abort();
                se_kv_list_done(&l);
                break;
        }
        case 1: {
                se_kv kv = {};

                r = se_store_get(store, "/registry/secrets/default/a", &kv, &e);
                if (r >= 0 && !kv.key)
                        abort();
                se_kv_done(&kv);
                break;
        }
        case 2: {
                uint64_t n = 0;

                r = se_store_count(store, "/registry/secrets/", &n, &e);
                break;
        }
        default: {
                se_kv_update u[2] = {
                        { .key = "/registry/secrets/default/a", .value = (const uint8_t *) "x", .value_size = 1,
                          .expected_mod_revision = 7 },
                        { .key = "/registry/secrets/default/b", .value = (const uint8_t *) "y", .value_size = 1 },
                };

                r = se_store_update(store, u, 2, &e);
                if (r > 2)
                        abort();
        }
        }
        if (r < 0 && !e.message)
                abort(); /* an operator would see no reason */

        se_store_close(store);
        pthread_join(thread, NULL);
        if (srv.listen_fd >= 0)
                close(srv.listen_fd);
        se_error_done(&e);
        return 0;
}
