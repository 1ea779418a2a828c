/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host check before a command: a key changed in a file that no API server reads is a key the
 * cluster never loads, and values re-encrypted under it are lost (SPEC §5.0). So a mutating
 * command runs only when settings exist and the API server is configured to read the config it
 * changes; a read-only one without settings reads what detection finds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "macro.h"
#include "se-host.h"

static bool read_only(const cli *c, const char *command) {
        return streq(command, "status") || streq(command, "verify") || streq(command, "facts") ||
               (streq(command, "ensure") && c->check);
}

static int set(se_settings *s, const char *key, const char *value, se_error *e) {
        return value ? se_settings_set(s, key, value, e) : 0;
}

int cli_settings_set_datastore(se_settings *s, const se_host *h, se_error *e) {
        const struct {
                const char *key, *value;
        } v[] = {
                {"datastore-endpoint", h->datastore_endpoint},
                {"datastore-cafile", h->datastore_cafile},
                {"datastore-certfile", h->datastore_certfile},
                {"datastore-keyfile", h->datastore_keyfile},
        };
        int r = 0;

        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(v); i++)
                r = set(s, v[i].key, v[i].value, e);
        return r;
}

/* No settings file: read where the distribution keeps its data, and say so. */
static int use_detected(cli *c, se_error *e) {
        se_host h = {};
        int r;

        r = se_host_detect(SE_HOST_NONE, NULL, c->user, NULL, &h, NULL);
        if (r < 0)
                return 0; /* nothing detected: the defaults */
        if (h.secrets_encryption)
                r = set(&c->settings, "state-dir", h.dist_cred_dir, e);
        if (r >= 0)
                r = set(&c->settings, "unit", h.unit, e);
        if (r >= 0)
                r = cli_settings_set_datastore(&c->settings, &h, e);
        if (r >= 0 && !c->json)
                fprintf(stderr,
                        "secrets-encrypt: no settings file (%s): detected %s; reading state dir %s and datastore "
                        "%s. Run `secrets-encrypt setup` to manage keys here.\n",
                        SE_SETTINGS_DEFAULT_PATH, se_host_kind_name(h.kind), c->settings.state_dir,
                        c->settings.datastore_endpoint);
        se_host_done(&h);
        return r;
}

int cli_check_host(cli *c, const char *command, se_error *e) {
        if (streq(command, "setup") || streq(command, "validate") || streq(command, "hash"))
                return 0;
        if (read_only(c, command))
                return c->have_settings ? 0 : use_detected(c, e);
        if (!c->have_settings)
                return se_error_set(e, -ESTALE,
                                    "no settings file (%s): run `secrets-encrypt setup` first, so that keys change "
                                    "only in the config the API server reads",
                                    SE_SETTINGS_DEFAULT_PATH);

        return se_host_check_settings(&c->settings, c->user, e);
}
