/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "se-trust.h"
#include "se-util.h"

/* Owned by root, or by the user the tool runs as (an unprivileged run on its own files). */
static bool owner_trusted(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

static const char *kind_of(mode_t mode) {
        return S_ISDIR(mode) ? "directory" : S_ISLNK(mode) ? "symlink" : "file";
}

static int cannot_examine(const char *path, const char *what, se_error *e) {
        int r = negative_errno();

        return se_error_set(e, r, "%s: cannot examine the %s: %s", path, what, strerror(-r));
}

_public_ int se_trust_check_stat(const struct stat *st, const char *path, const char *what, se_error *e) {
        uid_t euid = geteuid();

        if (!owner_trusted(st->st_uid)) {
                if (euid == 0)
                        return se_error_set(e, -EPERM,
                                            "%s: refusing the %s: the %s is owned by uid %u, not root, so that user "
                                            "could change what runs as root; fix: chown root:root %s; chmod go-w %s",
                                            path, what, kind_of(st->st_mode), (unsigned) st->st_uid, path, path);
                return se_error_set(e, -EPERM,
                                    "%s: refusing the %s: the %s is owned by uid %u, neither root nor the user "
                                    "running secrets-encrypt (uid %u); fix: chown root:root %s; chmod go-w %s",
                                    path, what, kind_of(st->st_mode), (unsigned) st->st_uid, (unsigned) euid, path,
                                    path);
        }
        /* a symlink's own mode bits mean nothing */
        if (!S_ISLNK(st->st_mode) && (st->st_mode & (S_IWGRP | S_IWOTH)))
                return se_error_set(e, -EPERM,
                                    "%s: refusing the %s: the %s is writable by %s (mode %04o), so others could "
                                    "change what runs as root; fix: chown root:root %s; chmod go-w %s",
                                    path, what, kind_of(st->st_mode),
                                    (st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "group and others"
                                    : (st->st_mode & S_IWGRP)                          ? "its group"
                                                                                       : "others",
                                    (unsigned) (st->st_mode & 07777), path, path);
        return 0;
}

_public_ int se_trust_check_fd(int fd, const char *path, const char *what, se_error *e) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return cannot_examine(path, what, e);
        return se_trust_check_stat(&st, path, what, e);
}

_public_ int se_trust_check_at(int dirfd, const char *path, const char *shown, const char *what, se_error *e) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        shown = shown ?: path;
        if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return cannot_examine(shown, what, e);
        r = se_trust_check_stat(&st, shown, what, e);
        if (r < 0 || !S_ISLNK(st.st_mode))
                return r;
        /* the object the link names, through a descriptor: what was checked is what is used */
        fd = openat(dirfd, path, O_PATH | O_CLOEXEC);
        if (fd < 0)
                return cannot_examine(shown, what, e);
        return se_trust_check_fd(fd, shown, what, e);
}

_public_ int se_read_trusted_file(const char *path, size_t max, const char *what, uint8_t **ret, size_t *ret_size,
                                  se_error *e) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno(); /* the caller words the usual errors (missing, a symlink) */
        r = se_trust_check_fd(fd, path, what, e);
        if (r < 0)
                return r;
        return se_read_fd(fd, max, ret, ret_size);
}
