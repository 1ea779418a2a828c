/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "se-error.h"

/*
 * Files that steer what runs as root (the settings file, the state directory and its
 * encryption-config.json, hooks-dir and its hooks) are trusted only when nobody but root can
 * change them: owned by root (or by the user running the tool, when it runs unprivileged) and
 * not writable by group or others. Each check fails with -EPERM and a message naming the path,
 * what is wrong and the fix.
 */

/* The check on a stat result; what names the file in the message ("settings file", "state-dir"). */
int se_trust_check_stat(const struct stat *st, const char *path, const char *what, se_error *e);
/* The check on an open file descriptor (no path lookup between the check and the use). */
int se_trust_check_fd(int fd, const char *path, const char *what, se_error *e);
/* The check on path without following a final symlink (fstatat(AT_SYMLINK_NOFOLLOW)) relative to
 * dirfd (AT_FDCWD for the working directory). A symlink is itself checked for its owner, then the
 * object it points to like any other. -ENOENT (message set) when path does not exist. Messages
 * name shown (NULL: path). */
int se_trust_check_at(int dirfd, const char *path, const char *shown, const char *what, se_error *e);
/* se_read_file() of a regular file that passes the check on the opened descriptor: -EPERM with e
 * set when it does not; other errors as se_read_file() returns them, e untouched. */
int se_read_trusted_file(const char *path, size_t max, const char *what, uint8_t **ret, size_t *ret_size, se_error *e);
