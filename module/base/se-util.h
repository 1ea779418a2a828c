/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Growable byte buffer with a hard cap (curl's dynbuf idea): appends past max fail with -E2BIG. */
typedef struct se_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
        size_t max; /* 0 = SE_BUF_DEFAULT_MAX */
} se_buf;

#define SE_BUF_DEFAULT_MAX (64u * 1024u * 1024u)

int se_buf_reserve(se_buf *b, size_t extra);
int se_buf_append(se_buf *b, const void *p, size_t n);
int se_buf_append_str(se_buf *b, const char *s);
int se_buf_printf(se_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void se_buf_clear(se_buf *b); /* len = 0, keeps memory (contents wiped) */
void se_buf_free(se_buf *b);  /* wipes, frees, resets */
/* Ends a text built in b: with r >= 0 (the last append's result), NUL-terminates it and hands it
 * over in *ret (b is reset); else frees b. Returns r or the NUL append's error. */
int se_buf_take_str(se_buf *b, int r, char **ret);

/* A copy of a URL (or comma list of URLs, e.g. a datastore-endpoint) without user names and
 * passwords, for messages; NULL reads as "". NULL on out of memory. */
char *se_url_strip_userinfo(const char *urls);

/* Reads a whole regular file, refusing symlinks (O_NOFOLLOW), anything but a regular file (-EBADFD,
 * without blocking on a FIFO) and files larger than max (-EFBIG).
 * The result is NUL-terminated (not counted in ret_size). */
int se_read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_size);
/* The same from an open descriptor (read from its current offset); only a regular file is read. */
int se_read_fd(int fd, size_t max, uint8_t **ret, size_t *ret_size);

/* temp file in the same directory, fsync, rename, fsync the directory; mode applied before the
 * rename so the file is never visible with wider permissions. */
int se_write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Exclusive lock on <dir>/.secrets-encrypt.lock. Waits up to timeout_usec (0 = try once).
 * On -EBUSY, *ret_holder (if given) is the pid of the holder, 0 if unknown. */
int se_lock_dir(const char *dir, uint64_t timeout_usec, int *ret_fd, pid_t *ret_holder);
void se_unlock_dir(int fd);
/* The pid holding that lock (0: nobody), without taking or waiting for it: readers use it to tell
 * a running command from an interrupted one. */
int se_lock_dir_holder(const char *dir, pid_t *ret_holder);

/* SHA-256 of the bytes, lowercase hex, NUL-terminated (65 bytes). */
#define SE_SHA256_HEX_SIZE 65
int se_sha256_hex(const void *data, size_t size, char ret[static SE_SHA256_HEX_SIZE]);

/* Standard base64 (with padding). Decoding follows Go's base64.StdEncoding: CR and LF are
 * ignored, padding is required. */
int se_base64_encode(const void *data, size_t size, char **ret);
int se_base64_decode(const char *text, size_t len, uint8_t **ret, size_t *ret_size);

/* Durations like "10m", "90s", "1h30m", "100ms"; also plain seconds. */
int se_parse_duration(const char *s, uint64_t *ret_usec);
/* Go's time.Duration.String() for a nanosecond count ("3s", "-15s", "1m30s", "100ms"). */
int se_format_go_duration(int64_t ns, char *buf, size_t size);

uint64_t se_now_usec(int clock);

/* At the start of a program that holds keys: no core dumps (PR_SET_DUMPABLE 0, RLIMIT_CORE 0).
 * 0, or the first negative errno (the rest is still done). */
int se_process_harden(void);
/* madvise(MADV_DONTDUMP) over the pages of a long-lived key buffer; best effort. */
void se_dontdump(const void *p, size_t size);
