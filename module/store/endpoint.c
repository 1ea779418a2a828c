/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-store.h"

/* Datastore endpoints as they may be shown: SQL endpoints carry a password. */

_public_ char *se_store_redact_endpoint(const char *endpoint) {
        const char *auth = strstr(endpoint, "://"), *at, *colon;
        char *m;

        if (!auth)
                return strdup(endpoint);
        auth += 3;
        /* the last '@' before the query: a password may hold '@', a host never does */
        at = memrchr(auth, '@', strcspn(auth, "?"));
        colon = at ? memchr(auth, ':', (size_t) (at - auth)) : NULL;
        if (!colon)
                return strdup(endpoint);
        if (asprintf(&m, "%.*s***%s", (int) (colon + 1 - endpoint), endpoint, at) < 0)
                return NULL;
        return m;
}
