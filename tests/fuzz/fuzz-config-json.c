/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The JSON path of se_config_parse(): the input is forced to start with '{', so corpus files omit
 * it (tests/fuzz/gen-seeds.py writes them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        uint8_t *buf;
        int r;

        if (size > SE_CONFIG_MAX_SIZE)
                return 0;
        /* an exact-size copy, so any read past the end is caught */
        buf = malloc(size + 1);
        if (!buf)
                return 0;
        buf[0] = '{';
        if (size > 0)
                memcpy(buf + 1, data, size);

        r = se_config_parse("fuzz.json", buf, size + 1, &c, &e);
        if (r >= 0) {
                if (!c)
                        abort();
                se_config_free(c);
        } else if (c || (r != -EBADMSG && r != -ENOMEM) ||
                   !startswith(se_error_message(&e), "error decoding encryption provider configuration file \"fuzz.json\": "))
                abort();
        se_error_done(&e);
        free(buf);
        return 0;
}
