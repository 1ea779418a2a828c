/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The plain-HTTP policy for datastore endpoints (messages show them with se_url_strip_userinfo()). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-store.h"
#include "se-util.h"

_public_ bool se_store_url_is_loopback(const char *url) {
        _cleanup_free_ char *host = NULL, *bare = se_url_strip_userinfo(url);
        const char *h, *end;
        struct in_addr a4;

        h = bare ? strstr(bare, "://") : NULL;
        if (!h)
                return false;
        h += 3;
        if (*h == '[') {
                end = strchr(h, ']');
                if (!end)
                        return false;
                host = strndup(h + 1, (size_t) (end - h - 1));
                return host && streq(host, "::1");
        }
        end = h + strcspn(h, ":/?#");
        host = strndup(h, (size_t) (end - h));
        if (!host)
                return false;
        if (strcasecmp(host, "localhost") == 0)
                return true;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}
