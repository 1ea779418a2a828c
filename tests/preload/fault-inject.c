/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * LD_PRELOAD fault injector for the reliability tests: counts the calls that change persistent
 * state (write/pwrite to regular files, fsync/fdatasync, rename, unlink, ftruncate) in the process
 * it is loaded into, and at the N-th one either SIGKILLs the process or fails the call with an
 * errno. No library change is needed: libsecrets-encrypt.so and libsqlite3 reach these functions
 * through the PLT, so the preload wins.
 *
 *   SE_FAULT_OPS=write,fsync,rename,unlink,truncate   which calls count (default: all of them)
 *                               add "send" to also count send/sendto/sendmsg and write on sockets
 *                               (the etcd datastore's HTTP requests); not counted by default
 *   SE_FAULT_KILL_AT=N          SIGKILL at the N-th counted call
 *   SE_FAULT_KILL_AFTER=1       ... after the call has been made (default: just before it)
 *   SE_FAULT_ERRNO_AT=N         fail the N-th counted write (and every later one; unlink and rename
 *                               still work, as on a full disk) with
 *   SE_FAULT_ERRNO=ENOSPC|EIO|EROFS|EDQUOT   (default ENOSPC)
 *   SE_FAULT_COUNT_FILE=PATH    write the number of counted calls there at exit
 *   SE_FAULT_TRACE=PATH         append "<n> <call> <path>" per counted call (phase statistics);
 *                               for a send, <path> is the HTTP request line (e.g. "POST /v3/kv/txn")
 *                               or "socket" for a continuation
 *
 * The variables are removed from the environment at load so child processes are not affected.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum {
        OP_WRITE = 1 << 0,
        OP_FSYNC = 1 << 1,
        OP_RENAME = 1 << 2,
        OP_UNLINK = 1 << 3,
        OP_TRUNCATE = 1 << 4,
        OP_SEND = 1 << 5,
};

static unsigned ops_mask = OP_WRITE | OP_FSYNC | OP_RENAME | OP_UNLINK | OP_TRUNCATE;
static unsigned long count, kill_at, errno_at;
static bool kill_after;
static int fail_errno = ENOSPC;
static char count_file[PATH_MAX], trace_file[PATH_MAX];
static bool active;

static unsigned long env_ulong(const char *name) {
        const char *v = getenv(name);
        return v && *v ? strtoul(v, NULL, 10) : 0;
}

static void copy_env(const char *name, char *dst, size_t size) {
        const char *v = getenv(name);

        if (v && strlen(v) < size)
                strcpy(dst, v);
}

__attribute__((constructor)) static void fault_init(void) {
        const char *v = getenv("SE_FAULT_OPS");

        if (v && *v) {
                ops_mask = 0;
                if (strstr(v, "write"))
                        ops_mask |= OP_WRITE;
                if (strstr(v, "fsync"))
                        ops_mask |= OP_FSYNC;
                if (strstr(v, "rename"))
                        ops_mask |= OP_RENAME;
                if (strstr(v, "unlink"))
                        ops_mask |= OP_UNLINK;
                if (strstr(v, "truncate"))
                        ops_mask |= OP_TRUNCATE;
                if (strstr(v, "send"))
                        ops_mask |= OP_SEND;
        }
        kill_at = env_ulong("SE_FAULT_KILL_AT");
        kill_after = env_ulong("SE_FAULT_KILL_AFTER") != 0;
        errno_at = env_ulong("SE_FAULT_ERRNO_AT");
        v = getenv("SE_FAULT_ERRNO");
        if (v && strcmp(v, "EIO") == 0)
                fail_errno = EIO;
        else if (v && strcmp(v, "EROFS") == 0)
                fail_errno = EROFS;
        else if (v && strcmp(v, "EDQUOT") == 0)
                fail_errno = EDQUOT;
        copy_env("SE_FAULT_COUNT_FILE", count_file, sizeof(count_file));
        copy_env("SE_FAULT_TRACE", trace_file, sizeof(trace_file));
        active = true;

        static const char *const vars[] = { "SE_FAULT_OPS",   "SE_FAULT_KILL_AT",    "SE_FAULT_KILL_AFTER",
                                            "SE_FAULT_ERRNO_AT", "SE_FAULT_ERRNO",   "SE_FAULT_COUNT_FILE",
                                            "SE_FAULT_TRACE", "LD_PRELOAD" };
        for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
                unsetenv(vars[i]);
}

__attribute__((destructor)) static void fault_done(void) {
        FILE *f;

        if (!count_file[0])
                return;
        active = false;
        f = fopen(count_file, "we");
        if (f) {
                fprintf(f, "%lu\n", count);
                fclose(f);
        }
}

static void *real(const char *name) {
        void *p = dlsym(RTLD_NEXT, name);

        if (!p)
                abort();
        return p;
}

static void trace(const char *call, int fd, const char *path) {
        char link[64], target[PATH_MAX];
        ssize_t n;
        int tfd;
        char line[PATH_MAX + 64];
        int len;

        if (!trace_file[0])
                return;
        if (!path && fd >= 0) {
                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                n = readlink(link, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = 0;
                path = target;
        }
        len = snprintf(line, sizeof(line), "%lu %s %s\n", count, call, path ? path : "?");
        active = false; /* our own write must not count */
        tfd = open(trace_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (tfd >= 0) {
                if (write(tfd, line, (size_t) len) < 0) {
                }
                close(tfd);
        }
        active = true;
}

/* Returns 0 to go on, or -1 with errno set to fail the call; may not return at all. */
static int before(unsigned op, const char *call, int fd, const char *path) {
        if (!active || !(ops_mask & op))
                return 0;
        count++;
        trace(call, fd, path);
        if (kill_at && count == kill_at && !kill_after)
                raise(SIGKILL);
        if (errno_at && count >= errno_at && (op & (OP_WRITE | OP_FSYNC | OP_TRUNCATE))) {
                errno = fail_errno;
                return -1;
        }
        return 0;
}

static void after(void) {
        if (active && kill_at && count == kill_at && kill_after)
                raise(SIGKILL);
}

static bool is_regular(int fd) {
        struct stat st;

        return fstat(fd, &st) >= 0 && S_ISREG(st.st_mode);
}

static bool is_socket(int fd) {
        struct stat st;

        return fstat(fd, &st) >= 0 && S_ISSOCK(st.st_mode);
}

/* "POST /v3/kv/txn" for the first chunk of an HTTP request, "socket" otherwise. */
static const char *request_line(const void *buf, size_t n, char *what, size_t size) {
        const char *b = buf;
        size_t i, sp = 0;

        if (!b || n < 5 || (memcmp(b, "POST ", 5) != 0 && memcmp(b, "GET ", 4) != 0 && memcmp(b, "PUT ", 4) != 0))
                return "socket";
        for (i = 0; i < n && i + 1 < size && b[i] != '\r' && b[i] != '\n'; i++) {
                if (b[i] == ' ' && ++sp == 2)
                        break;
                what[i] = b[i] == ' ' ? '_' : b[i];
        }
        what[i] = 0;
        return what;
}

ssize_t write(int fd, const void *buf, size_t n) {
        static ssize_t (*f)(int, const void *, size_t);
        ssize_t r;

        if (!f)
                f = real("write");
        if (active && (ops_mask & OP_SEND) && is_socket(fd)) {
                char what[64];

                if (before(OP_SEND, "send", -1, request_line(buf, n, what, sizeof(what))) < 0)
                        return -1;
        } else if (active && (ops_mask & OP_WRITE) && is_regular(fd) && before(OP_WRITE, "write", fd, NULL) < 0)
                return -1;
        r = f(fd, buf, n);
        after();
        return r;
}

/* The etcd client's requests: one counted call per send, described by its HTTP request line. */
ssize_t send(int fd, const void *buf, size_t n, int flags) {
        static ssize_t (*f)(int, const void *, size_t, int);
        char what[64];
        ssize_t r;

        if (!f)
                f = real("send");
        if (active && (ops_mask & OP_SEND) && before(OP_SEND, "send", -1, request_line(buf, n, what, sizeof(what))) < 0)
                return -1;
        r = f(fd, buf, n, flags);
        after();
        return r;
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t tolen) {
        static ssize_t (*f)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
        char what[64];
        ssize_t r;

        if (!f)
                f = real("sendto");
        if (active && (ops_mask & OP_SEND) && before(OP_SEND, "send", -1, request_line(buf, n, what, sizeof(what))) < 0)
                return -1;
        r = f(fd, buf, n, flags, to, tolen);
        after();
        return r;
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags) {
        static ssize_t (*f)(int, const struct msghdr *, int);
        char what[64];
        ssize_t r;

        if (!f)
                f = real("sendmsg");
        if (active && (ops_mask & OP_SEND) &&
            before(OP_SEND, "send", -1,
                   m && m->msg_iovlen > 0 ? request_line(m->msg_iov[0].iov_base, m->msg_iov[0].iov_len, what, sizeof(what))
                                          : "socket") < 0)
                return -1;
        r = f(fd, m, flags);
        after();
        return r;
}

#define PWRITE(name, off_type)                                                                    \
        ssize_t name(int fd, const void *buf, size_t n, off_type off) {                           \
                static ssize_t (*f)(int, const void *, size_t, off_type);                         \
                ssize_t r;                                                                        \
                if (!f)                                                                           \
                        f = real(#name);                                                          \
                if (active && (ops_mask & OP_WRITE) && before(OP_WRITE, #name, fd, NULL) < 0)     \
                        return -1;                                                                \
                r = f(fd, buf, n, off);                                                           \
                after();                                                                          \
                return r;                                                                         \
        }
PWRITE(pwrite, off_t)
PWRITE(pwrite64, off64_t)

#define FD_CALL(name, op)                                                                         \
        int name(int fd) {                                                                        \
                static int (*f)(int);                                                             \
                int r;                                                                            \
                if (!f)                                                                           \
                        f = real(#name);                                                          \
                if (before(op, #name, fd, NULL) < 0)                                              \
                        return -1;                                                                \
                r = f(fd);                                                                        \
                after();                                                                          \
                return r;                                                                         \
        }
FD_CALL(fsync, OP_FSYNC)
FD_CALL(fdatasync, OP_FSYNC)

int ftruncate(int fd, off_t len) {
        static int (*f)(int, off_t);
        int r;

        if (!f)
                f = real("ftruncate");
        if (before(OP_TRUNCATE, "ftruncate", fd, NULL) < 0)
                return -1;
        r = f(fd, len);
        after();
        return r;
}

int ftruncate64(int fd, off64_t len) {
        static int (*f)(int, off64_t);
        int r;

        if (!f)
                f = real("ftruncate64");
        if (before(OP_TRUNCATE, "ftruncate64", fd, NULL) < 0)
                return -1;
        r = f(fd, len);
        after();
        return r;
}

int rename(const char *from, const char *to) {
        static int (*f)(const char *, const char *);
        int r;

        if (!f)
                f = real("rename");
        if (before(OP_RENAME, "rename", -1, to) < 0)
                return -1;
        r = f(from, to);
        after();
        return r;
}

int unlink(const char *path) {
        static int (*f)(const char *);
        int r;

        if (!f)
                f = real("unlink");
        if (before(OP_UNLINK, "unlink", -1, path) < 0)
                return -1;
        r = f(path);
        after();
        return r;
}
