/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* datastore-endpoint URLs in messages (never their userinfo) and the plain-HTTP policy. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-store.h"
#include "se-util.h"

/* [start, end) of the authority's userinfo plus its '@' in url, or start == end when none. */
static void userinfo_span(const char *url, size_t len, size_t *ret_start, size_t *ret_end) {
        const char *sep = memmem(url, len, "://", 3);
        size_t start, end, at = 0;
        bool found = false;

        *ret_start = *ret_end = 0;
        if (!sep)
                return;
        start = (size_t) (sep - url) + 3;
        for (end = start; end < len && !strchr("/?#", url[end]); end++)
                if (url[end] == '@') {
                        at = end;
                        found = true;
                }
        if (found) {
                *ret_start = start;
                *ret_end = at + 1;
        }
}

_public_ char *se_store_endpoint_redact(const char *endpoint) {
        return se_url_strip_userinfo(endpoint ? endpoint : "");
}

_public_ bool se_store_url_is_loopback(const char *url) {
        _cleanup_free_ char *host = NULL;
        const char *h, *end;
        size_t len = strlen(url), s, t;
        struct in_addr a4;

        h = strstr(url, "://");
        if (!h)
                return false;
        userinfo_span(url, len, &s, &t);
        h = t > s ? url + t : h + 3;
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
