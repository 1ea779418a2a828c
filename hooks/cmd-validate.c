/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "macro.h"

static char *default_file(cli *c) {
        char *p;

        return asprintf(&p, "%s/encryption-config.json", c->settings.state_dir) < 0 ? NULL : p;
}

int cmd_validate(cli *c, se_error *e) {
        _cleanup_free_ char *def = NULL;
        const char *path = c->file;
        char hash[SE_SHA256_HEX_SIZE];
        int r;

        if (!path) {
                path = def = default_file(c);
                if (!path)
                        return se_error_set(e, -ENOMEM, "out of memory");
        }
        r = se_config_load(path, NULL, hash, e);
        if (r < 0)
                return se_error_prefix(e, r, "%s", path);
        printf("OK sha256:%s\n", hash);
        return 0;
}

int cmd_hash(cli *c, se_error *e) {
        _cleanup_free_ char *def = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        const char *path = c->file;
        char hash[SE_SHA256_HEX_SIZE];
        size_t size;
        int r;

        if (!path) {
                path = def = default_file(c);
                if (!path)
                        return se_error_set(e, -ENOMEM, "out of memory");
        }
        r = se_read_file(path, SE_CONFIG_MAX_SIZE, &data, &size);
        if (r < 0)
                return se_error_set(e, r, "%s: %s", path, r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
        if (size == 0)
                return se_error_set(e, -EBADMSG, "encryption provider configuration file \"%s\" is empty", path);
        r = se_sha256_hex(data, size, hash);
        explicit_wipe(data, size);
        if (r < 0)
                return se_error_set(e, r, "cannot hash %s", path);
        printf("sha256:%s\n", hash);
        return 0;
}
