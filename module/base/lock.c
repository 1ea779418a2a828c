/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "se-trust.h"
#include "se-util.h"

/*
 * A process-associated POSIX record lock on <dir>/.secrets-encrypt.lock: the kernel drops it when
 * the holder dies (kill -9 included), and F_GETLK tells a waiter who holds it.
 */

/* The lock files this process holds locked (see se_lock_dir_holder()). */
static int held[4] = {-1, -1, -1, -1};

static pid_t lock_holder(int fd) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

        if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
                return 0;
        return fl.l_pid;
}

_public_ int se_lock_dir(const char *dir, uint64_t timeout_usec, int *ret_fd, pid_t *ret_holder) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        uint64_t deadline = se_now_usec(CLOCK_MONOTONIC) + timeout_usec;

        if (asprintf(&path, "%s/.secrets-encrypt.lock", dir) < 0)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0)
                return negative_errno();
        /* a lock file someone else owns or can write is no lock */
        if (se_trust_check_fd(fd, path, "lock file", NULL) < 0)
                return -EPERM;

        for (;;) {
                struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

                if (fcntl(fd, F_SETLK, &fl) >= 0)
                        break;
                if (errno != EACCES && errno != EAGAIN)
                        return negative_errno();
                if (se_now_usec(CLOCK_MONOTONIC) >= deadline) {
                        if (ret_holder)
                                *ret_holder = lock_holder(fd);
                        return -EBUSY;
                }
                (void) usleep(20 * 1000);
        }

        for (size_t i = 0; i < ELEMENTSOF(held); i++)
                if (held[i] < 0) {
                        held[i] = fd;
                        break;
                }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

_public_ int se_lock_dir_holder(const char *dir, pid_t *ret_holder) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (asprintf(&path, "%s/.secrets-encrypt.lock", dir) < 0)
                return -ENOMEM;
        /* Closing any descriptor of the file drops this process's record lock on it: a lock we
         * hold is answered from our own table, without opening the file. */
        if (stat(path, &st) >= 0)
                for (size_t i = 0; i < ELEMENTSOF(held); i++) {
                        struct stat hs;

                        if (held[i] >= 0 && fstat(held[i], &hs) >= 0 && hs.st_dev == st.st_dev &&
                            hs.st_ino == st.st_ino) {
                                *ret_holder = getpid();
                                return 0;
                        }
                }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret_holder = 0; /* never locked */
                return 0;
        }
        *ret_holder = lock_holder(fd);
        return 0;
}

_public_ void se_unlock_dir(int fd) {
        for (size_t i = 0; fd >= 0 && i < ELEMENTSOF(held); i++)
                if (held[i] == fd)
                        held[i] = -1;
        if (fd >= 0)
                (void) close(fd);
}

_public_ uint64_t se_now_usec(int clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}
