/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/rand.h>

#include "macro.h"
#include "se-envelope.h"

#define SE_KEY_SECRET_SIZE 32u

_public_ int se_key_secret_generate(char **ret_secret) {
        uint8_t key[SE_KEY_SECRET_SIZE];
        char *s = NULL;
        int r;

        if (!ret_secret)
                return -EINVAL;
        if (RAND_bytes(key, sizeof(key)) != 1) {
                explicit_wipe(key, sizeof(key));
                return -EIO;
        }
        r = se_base64_encode(key, sizeof(key), &s);
        explicit_wipe(key, sizeof(key));
        if (r < 0)
                return r;
        *ret_secret = s;
        return 0;
}

/* Go's time.Format(time.RFC3339) = "2006-01-02T15:04:05Z07:00": "Z" whenever the offset is zero,
 * otherwise ±hh:mm (seconds of odd historical offsets are dropped, as Go does). */
static int format_rfc3339(time_t t, char *buf, size_t size) {
        struct tm tm;
        long off, h, m;
        size_t n;

        if (!localtime_r(&t, &tm))
                return -EOVERFLOW;
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return -ENOBUFS;

        off = tm.tm_gmtoff;
        if (off == 0) {
                if (snprintf(buf + n, size - n, "Z") >= (int) (size - n))
                        return -ENOBUFS;
                return 0;
        }
        h = labs(off) / 3600;
        m = labs(off) / 60 % 60;
        if (snprintf(buf + n, size - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', h, m) >= (int) (size - n))
                return -ENOBUFS;
        return 0;
}

_public_ int se_key_name_new(se_provider_type t, bool first, time_t now, char **ret) {
        const char *base;
        char stamp[64];
        char *s;
        int r;

        if (!ret)
                return -EINVAL;
        /* k3s only generates these two */
        switch (t) {
        case SE_PROVIDER_AESCBC:
                base = "aescbckey";
                break;
        case SE_PROVIDER_SECRETBOX:
                base = "secretboxkey";
                break;
        default:
                return -EOPNOTSUPP;
        }

        if (first)
                s = strdup(base);
        else {
                r = format_rfc3339(now, stamp, sizeof(stamp));
                if (r < 0)
                        return r;
                if (asprintf(&s, "%s-%s", base, stamp) < 0)
                        s = NULL;
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
