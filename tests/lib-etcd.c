/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib-etcd.h"
#include "macro.h"
#include "testlib.h"

#define START_TIMEOUT_SEC 40
#define MAX_CLUSTERS      32

static tl_etcd *registry[MAX_CLUSTERS];
static bool cleanup_installed;

static char *xasprintf(const char *fmt, ...) _printf_(1, 2);
static char *xasprintf(const char *fmt, ...) {
        va_list ap;
        char *p;

        va_start(ap, fmt);
        if (vasprintf(&p, fmt, ap) < 0)
                p = NULL;
        va_end(ap);
        if (!p)
                abort();
        return p;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* ---- emergency cleanup --------------------------------------------------------------------- */

static void kill_owned_members(void) {
        pid_t self = getpid();

        for (size_t k = 0; k < MAX_CLUSTERS; k++) {
                tl_etcd *c = registry[k];

                if (!c || c->owner != self)
                        continue;
                for (size_t i = 0; i < c->n_members; i++)
                        if (c->members[i].pid > 0)
                                (void) kill(c->members[i].pid, SIGKILL);
        }
}

static void atexit_cleanup(void) {
        pid_t self = getpid();

        for (size_t k = 0; k < MAX_CLUSTERS; k++)
                if (registry[k] && registry[k]->owner == self)
                        registry[k] = tl_etcd_free(registry[k]);
}

static void signal_cleanup(int sig) {
        kill_owned_members(); /* async-signal-safe: kill() only */
        (void) signal(sig, SIG_DFL);
        (void) raise(sig);
}

static void install_cleanup(void) {
        static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS };

        if (cleanup_installed)
                return;
        cleanup_installed = true;
        (void) atexit(atexit_cleanup);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                struct sigaction old;

                /* leave handlers installed by someone else alone */
                if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
                        (void) signal(sigs[i], signal_cleanup);
        }
}

static void registry_add(tl_etcd *c) {
        install_cleanup();
        for (size_t k = 0; k < MAX_CLUSTERS; k++)
                if (!registry[k]) {
                        registry[k] = c;
                        return;
                }
}

static void registry_remove(tl_etcd *c) {
        for (size_t k = 0; k < MAX_CLUSTERS; k++)
                if (registry[k] == c)
                        registry[k] = NULL;
}

/* Check's forked tests leave with _exit() when an assertion fails, and a test can be killed: the
 * members die with their owner (PDEATHSIG) but the directory stays. Each directory names its
 * owner; directories of dead owners are removed on the next start and when a test binary exits. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw);

static void sweep_stale_dirs(void) {
        const char *base = getenv("TMPDIR");
        _cleanup_free_ char *pattern = xasprintf("%s/se-etcd.*/owner", base ? base : "/tmp");
        glob_t g = {};

        if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
                return;
        for (size_t i = 0; i < g.gl_pathc; i++) {
                FILE *f = fopen(g.gl_pathv[i], "re");
                int pid = 0;

                if (!f)
                        continue;
                if (fscanf(f, "%d", &pid) != 1)
                        pid = 0;
                fclose(f);
                if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH) {
                        char *dir = strdup(g.gl_pathv[i]);

                        if (dir) {
                                *strrchr(dir, '/') = 0;
                                (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
                                free(dir);
                        }
                }
        }
        globfree(&g);
}

static void __attribute__((destructor)) sweep_at_exit(void) {
        sweep_stale_dirs();
}

/* ---- helpers ------------------------------------------------------------------------------- */

bool tl_etcd_available(void) {
        return tl_run("etcd --version >/dev/null 2>&1", NULL) == 0;
}

/* n distinct free loopback ports: all sockets stay bound until every port is known. */
static int free_ports(int *ports, size_t n) {
        int fds[2 * TL_ETCD_MAX_MEMBERS + 2];
        int r = 0;

        for (size_t i = 0; i < n; i++)
                fds[i] = -1;
        for (size_t i = 0; i < n; i++) {
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof(a);

                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0 || bind(fds[i], (struct sockaddr *) &a, sizeof(a)) < 0 ||
                    getsockname(fds[i], (struct sockaddr *) &a, &len) < 0) {
                        r = -errno;
                        break;
                }
                ports[i] = ntohs(a.sin_port);
        }
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void print_log_tail(tl_etcd_member *m) {
        _cleanup_free_ char *cmd = xasprintf("tail -n 15 '%s' 2>/dev/null", m->log_path);
        _cleanup_free_ char *out = NULL;

        (void) tl_run(cmd, &out);
        fprintf(stderr, "---- %s log (%s) ----\n%s\n", m->name, m->log_path, out ? out : "");
}

static size_t discard_cb(char *p, size_t size, size_t nmemb, void *userdata) {
        char **body = userdata;
        size_t n = size * nmemb;

        if (!*body && n < 4096) {
                *body = strndup(p, n);
        }
        return n;
}

bool tl_etcd_member_healthy(tl_etcd *c, size_t i) {
        _cleanup_free_ char *url = xasprintf("%s/health", c->members[i].client_url);
        _cleanup_free_ char *body = NULL;
        long status = 0;
        CURL *h;
        CURLcode cc;

        h = curl_easy_init();
        if (!h)
                return false;
        (void) curl_easy_setopt(h, CURLOPT_URL, url);
        (void) curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        (void) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        (void) curl_easy_setopt(h, CURLOPT_PROXY, "");
        (void) curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
        (void) curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        if (c->tls) {
                (void) curl_easy_setopt(h, CURLOPT_CAINFO, c->cafile);
                (void) curl_easy_setopt(h, CURLOPT_SSLCERT, c->certfile);
                (void) curl_easy_setopt(h, CURLOPT_SSLKEY, c->keyfile);
        }
        cc = curl_easy_perform(h);
        if (cc == CURLE_OK)
                (void) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        return cc == CURLE_OK && status == 200 && body && strstr(body, "\"health\":\"true\"");
}

int tl_etcd_member_by_url(tl_etcd *c, const char *url) {
        for (size_t i = 0; i < c->n_members; i++)
                if (url && streq(c->members[i].client_url, url))
                        return (int) i;
        return -1;
}

/* The state letter of /proc/<pid>[/task/<tid>]/stat, 0 when it cannot be read. */
static char proc_state(pid_t pid, const char *tid) {
        char path[96], buf[256], *rp;
        FILE *f;
        size_t n;

        if (tid)
                snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int) pid, tid);
        else
                snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        rp = strrchr(buf, ')');
        return rp && rp[1] == ' ' ? rp[2] : 0;
}

static bool process_gone(tl_etcd *c, pid_t pid) {
        if (c->owner == getpid()) {
                pid_t r = waitpid(pid, NULL, WNOHANG);
                return r == pid || (r < 0 && errno == ECHILD);
        }
        /* a forked test cannot reap the parent's children: a zombie counts as gone */
        char state = proc_state(pid, NULL);
        return state == 0 || state == 'Z' || state == 'X';
}

/* SIGSTOP stops a process's threads one by one, after kill() has returned: a request sent right
 * away could still be served. Waits until every thread is stopped. */
bool tl_etcd_pause(tl_etcd *c, size_t i) {
        pid_t pid = c && i < c->n_members ? c->members[i].pid : 0;
        uint64_t until = now_ms() + 5000;
        char dir[64];

        if (pid <= 0 || kill(pid, SIGSTOP) < 0)
                return false;
        snprintf(dir, sizeof(dir), "/proc/%d/task", (int) pid);
        while (now_ms() < until) {
                DIR *d = opendir(dir);
                struct dirent *de;
                bool all = d != NULL;

                while (all && (de = readdir(d)))
                        if (de->d_name[0] != '.') {
                                char state = proc_state(pid, de->d_name);
                                all = state == 'T' || state == 't';
                        }
                if (d)
                        closedir(d);
                if (all)
                        return true;
                sleep_ms(10);
        }
        return false;
}

static void wait_gone(tl_etcd *c, tl_etcd_member *m, int sig, unsigned grace_ms) {
        uint64_t until;

        if (m->pid <= 0)
                return;
        (void) kill(m->pid, sig);
        until = now_ms() + grace_ms;
        while (!process_gone(c, m->pid)) {
                if (now_ms() > until) {
                        (void) kill(m->pid, SIGKILL);
                        if (c->owner == getpid())
                                (void) waitpid(m->pid, NULL, 0);
                        else
                                while (!process_gone(c, m->pid))
                                        sleep_ms(20);
                        break;
                }
                sleep_ms(20);
        }
        /* the parent still has to reap it: keep the pid there, the forked copy forgets it */
        if (c->owner == getpid())
                m->pid = 0;
        else
                m->pid = -m->pid;
}

void tl_etcd_kill(tl_etcd *c, size_t i) {
        if (c && i < c->n_members)
                wait_gone(c, &c->members[i], SIGKILL, 5000);
}

void tl_etcd_stop(tl_etcd *c, size_t i) {
        if (c && i < c->n_members)
                wait_gone(c, &c->members[i], SIGTERM, 10000);
}

static int spawn_member(tl_etcd *c, size_t i) {
        tl_etcd_member *m = &c->members[i];
        const char *scheme = c->tls ? "https" : "http";
        _cleanup_free_ char *listen = xasprintf("%s://127.0.0.1:%d", scheme, m->client_port);
        _cleanup_free_ char *cluster_token = xasprintf("tl-etcd-%d-%p", (int) c->owner, (void *) c);
        const char *argv[48];
        size_t n = 0;
        pid_t parent = getpid(), pid;

        argv[n++] = "etcd";
        argv[n++] = "--name";
        argv[n++] = m->name;
        argv[n++] = "--data-dir";
        argv[n++] = m->data_dir;
        argv[n++] = "--listen-client-urls";
        argv[n++] = listen;
        argv[n++] = "--advertise-client-urls";
        argv[n++] = m->client_url;
        argv[n++] = "--listen-peer-urls";
        argv[n++] = m->peer_url;
        argv[n++] = "--initial-advertise-peer-urls";
        argv[n++] = m->peer_url;
        argv[n++] = "--initial-cluster";
        argv[n++] = c->initial_cluster;
        argv[n++] = "--initial-cluster-state";
        argv[n++] = "new";
        argv[n++] = "--initial-cluster-token";
        argv[n++] = cluster_token;
        argv[n++] = "--logger";
        argv[n++] = "zap";
        argv[n++] = "--log-outputs";
        argv[n++] = "stderr";
        argv[n++] = "--heartbeat-interval";
        argv[n++] = "100";
        argv[n++] = "--election-timeout";
        argv[n++] = "1000";
        if (c->tls) {
                argv[n++] = "--cert-file";
                argv[n++] = c->server_certfile;
                argv[n++] = "--key-file";
                argv[n++] = c->server_keyfile;
                argv[n++] = "--trusted-ca-file";
                argv[n++] = c->cafile;
                argv[n++] = "--client-cert-auth";
        }
        argv[n] = NULL;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd;

                /* no etcd outlives the test process, whatever kills it */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                (void) setpgid(0, 0);
                fd = open(m->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void) dup2(fd, STDIN_FILENO);
                execvp("etcd", (char *const *) argv);
                _exit(127);
        }
        m->pid = pid;
        return 0;
}

static bool member_exited(tl_etcd *c, size_t i) {
        tl_etcd_member *m = &c->members[i];

        if (m->pid <= 0)
                return true;
        if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
                m->pid = 0;
                return true;
        }
        return false;
}

/* 0 when every listed member is healthy, -EADDRINUSE-ish when one died early (ports raced). */
static int wait_healthy(tl_etcd *c, const size_t *which, size_t n) {
        uint64_t until = now_ms() + START_TIMEOUT_SEC * 1000u;

        for (;;) {
                size_t ok = 0;

                for (size_t k = 0; k < n; k++) {
                        if (member_exited(c, which[k]))
                                return -ECHILD;
                        if (tl_etcd_member_healthy(c, which[k]))
                                ok++;
                }
                if (ok == n)
                        return 0;
                if (now_ms() > until)
                        return -ETIMEDOUT;
                sleep_ms(100);
        }
}

static void free_members(tl_etcd *c) {
        for (size_t i = 0; i < c->n_members; i++) {
                tl_etcd_member *m = &c->members[i];

                free(m->name);
                free(m->data_dir);
                free(m->log_path);
                free(m->client_url);
                free(m->peer_url);
                *m = (tl_etcd_member){};
        }
        free(c->endpoints);
        free(c->initial_cluster);
        c->endpoints = c->initial_cluster = NULL;
}

static int layout(tl_etcd *c, size_t n, unsigned attempt) {
        int ports[2 * TL_ETCD_MAX_MEMBERS];
        const char *scheme = c->tls ? "https" : "http";
        int r;

        r = free_ports(ports, 2 * n);
        if (r < 0)
                return r;
        c->n_members = n;
        c->endpoints = calloc(1, 1);
        c->initial_cluster = calloc(1, 1);
        if (!c->endpoints || !c->initial_cluster)
                abort();
        for (size_t i = 0; i < n; i++) {
                tl_etcd_member *m = &c->members[i];
                char *p;

                m->name = xasprintf("m%zu", i);
                m->data_dir = xasprintf("%s/%s.%u", c->dir, m->name, attempt);
                m->log_path = xasprintf("%s/%s.%u.log", c->dir, m->name, attempt);
                m->client_port = ports[2 * i];
                m->peer_port = ports[2 * i + 1];
                m->client_url = xasprintf("%s://127.0.0.1:%d", scheme, m->client_port);
                m->peer_url = xasprintf("http://127.0.0.1:%d", m->peer_port);

                p = xasprintf("%s%s%s", c->endpoints, i ? "," : "", m->client_url);
                free(c->endpoints);
                c->endpoints = p;
                p = xasprintf("%s%s%s=%s", c->initial_cluster, i ? "," : "", m->name, m->peer_url);
                free(c->initial_cluster);
                c->initial_cluster = p;
        }
        return 0;
}

static int make_certs(tl_etcd *c) {
        _cleanup_free_ char *cmd = NULL, *full = NULL, *out = NULL;
        int r;

        c->cafile = xasprintf("%s/ca.crt", c->dir);
        c->server_certfile = xasprintf("%s/server.crt", c->dir);
        c->server_keyfile = xasprintf("%s/server.key", c->dir);
        c->certfile = xasprintf("%s/client.crt", c->dir);
        c->keyfile = xasprintf("%s/client.key", c->dir);

        /* EC P-256 keys: fast to make; SAN 127.0.0.1 for the server, clientAuth for the client. */
        cmd = xasprintf(
                "set -e; cd '%s'; "
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                "  -subj '/CN=tl-etcd-ca' -keyout ca.key -out ca.crt "
                "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; "
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=127.0.0.1' "
                "  -keyout server.key -out server.csr; "
                "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext; "
                "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                "  -extfile server.ext -out server.crt; "
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=secrets-encrypt' "
                "  -keyout client.key -out client.csr; "
                "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; "
                "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                "  -extfile client.ext -out client.crt; "
                "chmod 600 *.key 2>&1",
                c->dir);
        full = xasprintf("(%s) 2>&1", cmd);
        r = tl_run(full, &out);
        if (r != 0) {
                fprintf(stderr, "tl_etcd: openssl failed (%d):\n%s\n", r, out ? out : "");
                return -EIO;
        }
        return 0;
}

static tl_etcd *start(size_t n, bool tls) {
        tl_etcd *c;
        const char *base = getenv("TMPDIR");

        if (n == 0 || n > TL_ETCD_MAX_MEMBERS)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (!c)
                abort();
        c->owner = getpid();
        c->tls = tls;
        c->dir = xasprintf("%s/se-etcd.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(c->dir)) {
                fprintf(stderr, "tl_etcd: mkdtemp: %m\n");
                free(c->dir);
                free(c);
                return NULL;
        }
        {
                _cleanup_free_ char *owner = xasprintf("%s/owner", c->dir);
                _cleanup_free_ char *pid = xasprintf("%d\n", (int) c->owner);

                tl_write_str(owner, pid);
        }
        registry_add(c);
        sweep_stale_dirs();
        (void) curl_global_init(CURL_GLOBAL_DEFAULT);

        if (tls && make_certs(c) < 0)
                return tl_etcd_free(c);

        /* a port taken between probing and etcd's bind makes a member exit: retry on new ports */
        for (unsigned attempt = 0; attempt < 3; attempt++) {
                size_t which[TL_ETCD_MAX_MEMBERS];
                int r;

                if (layout(c, n, attempt) < 0)
                        break;
                for (size_t i = 0; i < n; i++) {
                        which[i] = i;
                        if (spawn_member(c, i) < 0) {
                                fprintf(stderr, "tl_etcd: cannot fork: %m\n");
                                return tl_etcd_free(c);
                        }
                }
                r = wait_healthy(c, which, n);
                if (r == 0)
                        return c;
                fprintf(stderr, "tl_etcd: %zu-member cluster %s (attempt %u)\n", n,
                        r == -ETIMEDOUT ? "not healthy in time" : "lost a member during start-up", attempt + 1);
                for (size_t i = 0; i < n; i++) {
                        print_log_tail(&c->members[i]);
                        wait_gone(c, &c->members[i], SIGKILL, 5000);
                }
                free_members(c);
                if (r == -ETIMEDOUT)
                        break;
        }
        return tl_etcd_free(c);
}

tl_etcd *tl_etcd_start(size_t n_members) {
        return start(n_members, false);
}

tl_etcd *tl_etcd_start_tls(void) {
        return start(1, true);
}

int tl_etcd_restart(tl_etcd *c, size_t i) {
        int r;

        if (!c || i >= c->n_members)
                return -EINVAL;
        if (c->members[i].pid > 0)
                return -EBUSY;
        r = spawn_member(c, i);
        if (r < 0)
                return r;
        return wait_healthy(c, &i, 1);
}

tl_etcd *tl_etcd_free(tl_etcd *c) {
        if (!c)
                return NULL;
        registry_remove(c);
        if (c->owner == getpid()) {
                for (size_t i = 0; i < c->n_members; i++) {
                        tl_etcd_member *m = &c->members[i];

                        if (m->pid < 0)
                                m->pid = -m->pid;
                        wait_gone(c, m, SIGKILL, 5000); /* test data: no graceful stop needed */
                }
                if (c->dir)
                        (void) nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        } else
                /* a forked copy of the parent's cluster: the parent owns the processes and files */
                for (size_t i = 0; i < c->n_members; i++)
                        c->members[i].pid = 0;
        free_members(c);
        free(c->dir);
        free(c->cafile);
        free(c->certfile);
        free(c->keyfile);
        free(c->server_certfile);
        free(c->server_keyfile);
        free(c);
        return NULL;
}

int tl_etcdctl(tl_etcd *c, const char *args, char **ret_out) {
        _cleanup_free_ char *tls = NULL, *cmd = NULL;

        if (c->tls)
                tls = xasprintf(" --cacert='%s' --cert='%s' --key='%s'", c->cafile, c->certfile, c->keyfile);
        cmd = xasprintf("ETCDCTL_API=3 etcdctl --endpoints='%s' --dial-timeout=5s --command-timeout=10s%s %s 2>&1",
                        c->endpoints, tls ? tls : "", args);
        return tl_run(cmd, ret_out);
}
