/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The YAML path of se_config_parse(): a leading comment line keeps the JSON sniffing away. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char lead[] = "#\n";
        se_error e = SE_ERROR_NULL;
        se_config *c = NULL;
        size_t n = STRLEN(lead) + size;
        uint8_t *buf;
        int r;

        if (size > SE_CONFIG_MAX_SIZE - STRLEN(lead))
                return 0;
        buf = malloc(n);
        if (!buf)
                return 0;
        memcpy(buf, lead, STRLEN(lead));
        if (size > 0)
                memcpy(buf + STRLEN(lead), data, size);

        r = se_config_parse("fuzz.yaml", buf, n, &c, &e);
        if (r >= 0) {
                if (!c)
                        abort();
                se_config_free(c);
        } else if (c || (r != -EBADMSG && r != -ENOMEM) ||
                   !startswith(se_error_message(&e), "error decoding encryption provider configuration file \"fuzz.yaml\": "))
                abort();
        se_error_done(&e);
        free(buf);
        return 0;
}
