/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"
#include "se-util.h"

/* kube-apiserver's LoadEncryptionConfig: read, hash, decode, validate, with its message layers. */
_public_ int se_config_load(const char *path, se_config **ret, char *ret_hash, se_error *e) {
        _cleanup_free_ uint8_t *data = NULL;
        se_config *c = NULL;
        char hash[SE_SHA256_HEX_SIZE];
        size_t size = 0;
        int r;

        r = se_read_file(path, SE_CONFIG_MAX_SIZE, &data, &size);
        if (r == -EFBIG)
                return se_error_set(e, -EBADMSG,
                                    "error while parsing file: error while loading file: encryption provider "
                                    "configuration file \"%s\" is larger than %u bytes",
                                    path, SE_CONFIG_MAX_SIZE);
        if (r < 0)
                return se_error_set(e, r,
                                    "error while parsing file: error while loading file: error reading encryption "
                                    "provider configuration file \"%s\": open %s: %s",
                                    path, path, strerror(-r));
        if (size == 0)
                return se_error_set(e, -EBADMSG,
                                    "error while parsing file: error while loading file: encryption provider "
                                    "configuration file \"%s\" is empty",
                                    path);

        r = se_sha256_hex(data, size, hash);
        if (r < 0)
                return se_error_set(e, r, "cannot hash \"%s\"", path);

        r = se_config_parse(path, data, size, &c, e);
        explicit_wipe(data, size);
        if (r < 0)
                return se_error_prefix(e, r, "error while parsing file");

        /* kube's layers: validation errors are "error while parsing file: …", building errors
         * carry their own "error while building transformers: "; our stricter checks last */
        r = se_config_validate_kube(c, false, e);
        if (r < 0)
                r = se_error_prefix(e, r, "error while parsing file");
        if (r >= 0)
                r = se_config_validate_build(c, e);
        if (r >= 0) {
                r = se_config_validate_strict(c, e);
                if (r < 0)
                        r = se_error_prefix(e, r, "error while parsing file");
        }
        if (r < 0) {
                se_config_free(c);
                return r;
        }

        if (ret_hash)
                memcpy(ret_hash, hash, sizeof(hash));
        if (ret)
                *ret = c;
        else
                se_config_free(c);
        return 0;
}
