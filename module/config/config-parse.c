/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"
#include "se-config.h"

/*
 * se_config_parse(): the limits, the JSON/YAML choice (kube's utilyaml.IsJSONBuffer) and the
 * outer message layer; the front ends (config-json.c, config-yaml.c) and the decoder
 * (config-decode.c) do the rest, with the helpers of config-go.c and config-redact.c.
 */

/* unicode.IsSpace over UTF-8; returns the length of the space at p, 0 if none. */
static size_t go_space(const unsigned char *p, size_t n) {
        if (n >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
                return 1;
        if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0))
                return 2;
        if (n >= 3 && p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80)
                return 3;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
                return 3;
        if (n >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F)
                return 3;
        if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80)
                return 3;
        return 0;
}

static bool is_json_buffer(const char *data, size_t size) {
        size_t i = 0, n;

        while (i < size && (n = go_space((const unsigned char *) data + i, size - i)) > 0)
                i += n;
        return i < size && data[i] == '{';
}

/* Go's %q of the path for the message prefix. */
static char *quote_path(const char *path) {
        size_t n = strlen(path);
        char *o = malloc(n * 4 + 3), *q = o;

        if (!o)
                return NULL;
        *q++ = '"';
        for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        *q++ = '\\';
                        *q++ = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f)
                        q += sprintf(q, "\\x%02x", *p);
                else
                        *q++ = (char) *p;
        }
        *q++ = '"';
        *q = '\0';
        return o;
}

_public_ int se_config_parse(const char *path, const void *data, size_t size, se_config **ret, se_error *e) {
        _cleanup_free_ char *qpath = NULL, *err = NULL, *strict = NULL;
        json_object *root = NULL;
        se_config *c = NULL;
        bool yaml;
        int r;

        if (!data && size > 0)
                return se_error_set(e, -EINVAL, "no data");
        if (!data)
                data = "";
        qpath = quote_path(path ? path : "");
        if (!qpath)
                return se_error_set(e, -ENOMEM, "out of memory");

        if (size > SE_CONFIG_MAX_SIZE)
                return se_error_set(
                        e, -E2BIG,
                        "error decoding encryption provider configuration file %s: file is %zu bytes, larger "
                        "than the limit of %u bytes",
                        qpath, size, SE_CONFIG_MAX_SIZE);

        yaml = !is_json_buffer(data, size);
        if (yaml)
                r = se_config_yaml_to_tree(data, size, &root, &strict, &err);
        else
                r = se_config_json_to_tree(data, size, &root, &err);
        if (r >= 0) {
                r = se_config_decode_tree(root, yaml, strict, &c, &err);
                se_json_wipe_secrets(root);
                json_object_put(root);
        }
        if (r == -ENOMEM)
                return se_error_set(e, -ENOMEM,
                                    "error decoding encryption provider configuration file %s: out of memory", qpath);
        if (r < 0)
                return se_error_set(e, r == -E2BIG ? -E2BIG : -EBADMSG,
                                    "error decoding encryption provider configuration file %s: %s", qpath,
                                    err ? err : "invalid input");
        if (ret)
                *ret = c;
        else
                se_config_free(c);
        return 0;
}
