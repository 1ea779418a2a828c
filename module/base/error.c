/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-error.h"

_public_ int se_error_setv(se_error *e, int r, const char *fmt, va_list ap) {
        r = r < 0 ? r : -r;
        if (r == 0)
                r = -EIO;
        if (e) {
                char *m = NULL;

                if (vasprintf(&m, fmt, ap) < 0)
                        m = NULL;
                free(e->message);
                e->message = m;
                e->error = r;
        }
        return r;
}

_public_ int se_error_set(se_error *e, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = se_error_setv(e, r, fmt, ap);
        va_end(ap);
        return r;
}

_public_ int se_error_prefix(se_error *e, int r, const char *fmt, ...) {
        _cleanup_free_ char *prefix = NULL;
        va_list ap;
        char *m;

        r = r < 0 ? r : -r;
        if (r == 0)
                r = -EIO;
        if (!e)
                return r;

        va_start(ap, fmt);
        if (vasprintf(&prefix, fmt, ap) < 0)
                prefix = NULL;
        va_end(ap);
        if (!prefix)
                return r;

        if (asprintf(&m, "%s: %s", prefix, e->message ? e->message : strerror(-r)) < 0)
                return r;
        free(e->message);
        e->message = m;
        e->error = r;
        return r;
}

_public_ const char *se_error_message(const se_error *e) {
        if (!e || e->error == 0)
                return "success";
        if (e->message)
                return e->message;
        return strerror(-e->error);
}

_public_ void se_error_done(se_error *e) {
        if (!e)
                return;
        free(e->message);
        *e = SE_ERROR_NULL;
}

_public_ bool se_errno_is_unavailable(int r) {
        switch (-abs(r)) {
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -ECONNABORTED:
        case -EHOSTDOWN:
        case -EHOSTUNREACH:
        case -ENETDOWN:
        case -ENETUNREACH:
        case -ETIMEDOUT:
        case -ENOTCONN:
        case -EADDRNOTAVAIL:
                return true;
        default:
                return false;
        }
}

_public_ int se_exit_code_from_errno(int r) {
        r = -abs(r);
        if (r == 0)
                return SE_EXIT_OK;
        /* EPROTO: TLS failure or garbled reply; ENOMEDIUM/EMEDIUMTYPE: no datastore at that path, or
         * not kine's */
        if (se_errno_is_unavailable(r) || r == -EPROTO || r == -ENOMEDIUM || r == -EMEDIUMTYPE)
                return SE_EXIT_UNAVAILABLE;

        switch (r) {
        case -EBADMSG:
        case -E2BIG: /* a config over the size limit */
                return SE_EXIT_CONFIG;
        case -ESTALE:
                return SE_EXIT_PRECONDITION;
        case -ENOKEY:
        case -EKEYREJECTED:
                return SE_EXIT_UNDECRYPTABLE;
        case -EBUSY:
        case -EAGAIN:
                return SE_EXIT_BUSY;
        case -ENOENT:
                return SE_EXIT_NOINPUT;
        case -EACCES:
        case -EPERM:
                return SE_EXIT_NOPERM;
        case -EIO:
        case -ENOSPC:
        case -EDQUOT:
        case -EROFS:
        case -EFBIG:
                return SE_EXIT_IOERR;
        case -EEXIST:
        case -ENOTDIR:
        case -EISDIR:
        case -ELOOP:
                return SE_EXIT_CANTCREAT;
        case -EINVAL:
                return SE_EXIT_USAGE;
        case -ENOMEM:
        case -EOPNOTSUPP:
                return SE_EXIT_SOFTWARE;
        default:
                return SE_EXIT_FAILURE;
        }
}
