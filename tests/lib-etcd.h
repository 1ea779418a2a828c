/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Real etcd members for the tests: one member or a cluster on 127.0.0.1 with free ports, data in
 * a temporary directory, optionally TLS with certificates made by the openssl CLI.
 *
 * Cleanup: every member gets PR_SET_PDEATHSIG(SIGKILL), and an atexit() handler plus handlers for
 * the usual termination signals kill the members of every cluster the current process started, so
 * no etcd survives a failing or crashing test. A cluster started in a Check unchecked fixture
 * (the parent process) is shared by the forked tests; they may kill its members but only the
 * parent reaps them. Start clusters from the main thread (the death signal follows the thread).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TL_ETCD_MAX_MEMBERS 5

typedef struct tl_etcd_member {
        char *name;
        char *data_dir;
        char *log_path;
        char *client_url; /* http(s)://127.0.0.1:PORT */
        char *peer_url;
        int client_port;
        int peer_port;
        pid_t pid; /* 0 when not running */
} tl_etcd_member;

typedef struct tl_etcd {
        char *dir; /* temporary directory with data dirs, logs and certificates */
        size_t n_members;
        tl_etcd_member members[TL_ETCD_MAX_MEMBERS];
        char *endpoints; /* every client URL, comma-separated */
        char *initial_cluster;
        bool tls;
        /* TLS only: what a client needs (CA that signed the server, client cert/key) */
        char *cafile;
        char *certfile;
        char *keyfile;
        char *server_certfile;
        char *server_keyfile;
        pid_t owner; /* the process that started it (only it reaps and removes) */
} tl_etcd;

/* True if the etcd binary can be run. */
bool tl_etcd_available(void);

/* Starts n members (1..TL_ETCD_MAX_MEMBERS) and waits until every one reports healthy. NULL on
 * failure, with the reason and the tail of the logs on stderr. */
tl_etcd *tl_etcd_start(size_t n_members);
/* One member serving clients over https only, with --client-cert-auth. */
tl_etcd *tl_etcd_start_tls(void);

/* SIGKILL / SIGTERM one member and wait until it is gone. */
void tl_etcd_kill(tl_etcd *c, size_t i);
void tl_etcd_stop(tl_etcd *c, size_t i);
/* Starts a stopped member again on its data directory and waits for health; 0 or -errno. */
int tl_etcd_restart(tl_etcd *c, size_t i);
/* The member's /health says true. */
bool tl_etcd_member_healthy(tl_etcd *c, size_t i);
/* Index of the member whose client URL is url, or -1. */
int tl_etcd_member_by_url(tl_etcd *c, const char *url);
/* SIGSTOP to member i, then waits until all its threads are stopped; false if they are not. */
bool tl_etcd_pause(tl_etcd *c, size_t i);

/* Stops every member, removes the directory, frees. Always returns NULL. */
tl_etcd *tl_etcd_free(tl_etcd *c);

/* Runs "etcdctl --endpoints=… [TLS flags] ARGS" (ARGS is shell text); exit status, output into
 * *ret_out if given. */
int tl_etcdctl(tl_etcd *c, const char *args, char **ret_out);
