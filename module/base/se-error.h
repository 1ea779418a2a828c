/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

/*
 * Errors: every library call returns 0 (or a positive count) on success and a negative errno on
 * failure. Where the errno alone would not tell an operator what to fix, the call also fills an
 * optional se_error with the full message (kube-apiserver's wording where one exists). Key
 * material never enters a message.
 *
 * errno conventions used across the library, so executables can map them to exit codes:
 *   -EBADMSG        invalid configuration (parse or validation)
 *   -ESTALE         precondition not met (wrong stage, hashes not converged)
 *   -ENOKEY         stored data cannot be decrypted with the configured keys
 *   -EHOSTDOWN etc. datastore unavailable (see se_errno_is_unavailable())
 *   -EBUSY          another command holds the state-directory lock
 */

typedef struct se_error {
        int error;     /* negative errno, 0 when unset */
        char *message; /* owned, NULL when unset */
} se_error;

#define SE_ERROR_NULL ((se_error){0, NULL})

/* Sets the error (if e is non-NULL) and returns -abs(r). An existing message is replaced. */
int se_error_set(se_error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int se_error_setv(se_error *e, int r, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/* Prepends "<prefix>: " to an existing message (or sets one from strerror). Returns -abs(r). */
int se_error_prefix(se_error *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message, or strerror() of the code, or "success". Never NULL. */
const char *se_error_message(const se_error *e);
void se_error_done(se_error *e);

/* Process exit codes of secrets-encrypt and secrets-encrypt-hook (documented in the README). */
enum {
        SE_EXIT_OK = 0,
        SE_EXIT_FAILURE = 1,        /* anything not classified below */
        SE_EXIT_USAGE = 64,         /* EX_USAGE: bad command line or settings file */
        SE_EXIT_UNDECRYPTABLE = 65, /* EX_DATAERR: stored data unreadable with the configured keys */
        SE_EXIT_NOINPUT = 66,       /* EX_NOINPUT: a named input file does not exist */
        SE_EXIT_UNAVAILABLE = 69,   /* EX_UNAVAILABLE: datastore unreachable */
        SE_EXIT_SOFTWARE = 70,      /* EX_SOFTWARE: internal error, out of memory */
        SE_EXIT_CANTCREAT = 73,     /* EX_CANTCREAT: cannot write state */
        SE_EXIT_IOERR = 74,         /* EX_IOERR: I/O error, disk full, read-only */
        SE_EXIT_BUSY = 75,          /* EX_TEMPFAIL: another command holds the lock; retry */
        SE_EXIT_NOPERM = 77,        /* EX_NOPERM: permission denied */
        SE_EXIT_CONFIG = 78,        /* EX_CONFIG: invalid encryption configuration */
        SE_EXIT_PRECONDITION = 79,  /* wrong stage or hashes not converged (k3s's refusals) */
};

bool se_errno_is_unavailable(int r);
/* Maps a negative errno from the library to one of the exit codes above. */
int se_exit_code_from_errno(int r);
