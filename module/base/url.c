/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"

/* For every URL of a comma list, "scheme://user:pass@rest" becomes "scheme://rest". The
 * authority ends at the first '/', '?' or '#'; in the Go DSN of mysql:// ("user:pass@tcp(h:p)/db")
 * a password may hold '/', so there it ends at the last '/' before the query. Within it the last
 * '@' counts: a password with '@' in it is dropped whole. A URL with an empty authority
 * (sqlite:///path) is left alone. */
_public_ char *se_url_strip_userinfo(const char *urls) {
        char *out, *o;

        if (!urls)
                urls = "";
        out = o = malloc(strlen(urls) + 1);
        if (!out)
                return NULL;
        while (*urls) {
                size_t len = strcspn(urls, ",");
                const char *sep = strstr(urls, "://"), *at = NULL;

                if (sep && (size_t) (sep - urls) < len && sep[3] != '/') {
                        const char *auth = sep + 3, *end = urls + len, *stop = auth;

                        if (startswith(urls, "mysql://")) {
                                const char *q = auth;

                                while (q < end && *q != '?')
                                        q++;
                                for (const char *p = auth; p < q; p++)
                                        if (*p == '/')
                                                stop = p;
                                if (stop == auth)
                                        stop = q;
                        } else
                                while (stop < end && !strchr("/?#", *stop))
                                        stop++;
                        for (const char *p = auth; p < stop; p++)
                                if (*p == '@')
                                        at = p;
                        if (at) {
                                memcpy(o, urls, (size_t) (auth - urls));
                                o += auth - urls;
                                memcpy(o, at + 1, (size_t) (end - at - 1));
                                o += end - at - 1;
                        }
                }
                if (!at) {
                        memcpy(o, urls, len);
                        o += len;
                }
                urls += len;
                if (*urls == ',')
                        *o++ = *urls++;
        }
        *o = 0;
        return out;
}
