/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go-json.h"
#include "macro.h"
#include "se-config.h"
#include "se-util.h"

/*
 * k3s writes encryption-config.json with Go's json.Marshal of the v1 EncryptionConfiguration, so
 * the writer reproduces encoding/json byte for byte: compact, struct field order, omitempty where
 * the v1 json tags say so, HTML-safe string escaping, no trailing newline.
 */

/* Go's utf8.DecodeRuneInString: returns the encoded length, or 1 with U+FFFD for an invalid or
 * truncated sequence (overlong forms, surrogates and values above U+10FFFF are invalid). */
int se_go_utf8_decode(const char *s, size_t n, uint32_t *ret_rune) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t r;
        int len;

        if (n == 0) {
                *ret_rune = 0xFFFD;
                return 0;
        }
        if (p[0] < 0x80) {
                *ret_rune = p[0];
                return 1;
        }
        if (p[0] >= 0xC2 && p[0] <= 0xDF) {
                len = 2;
                r = p[0] & 0x1F;
        } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
                len = 3;
                r = p[0] & 0x0F;
        } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
                len = 4;
                r = p[0] & 0x07;
        } else
                goto invalid;
        if (n < (size_t) len)
                goto invalid;
        for (int i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        goto invalid;
                r = (r << 6) | (p[i] & 0x3F);
        }
        if ((len == 3 && r < 0x800) || (len == 4 && r < 0x10000) || (r >= 0xD800 && r <= 0xDFFF) || r > 0x10FFFF)
                goto invalid;
        *ret_rune = r;
        return len;
invalid:
        *ret_rune = 0xFFFD;
        return 1;
}

/* encoding/json's appendString with escapeHTML (Go ≥ 1.22: \b and \f get short escapes). */
int se_go_json_append_string(se_buf *b, const char *s) {
        static const char hex[] = "0123456789abcdef";
        size_t n = s ? strlen(s) : 0, start = 0;
        int r;

        r = se_buf_append(b, "\"", 1);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                char esc[7];
                size_t esc_len = 0;
                int step = 1;

                if (c < 0x80) {
                        if (c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
                                i++;
                                continue;
                        }
                        esc[0] = '\\';
                        esc_len = 2;
                        switch (c) {
                        case '"':
                        case '\\':
                                esc[1] = (char) c;
                                break;
                        case '\b':
                                esc[1] = 'b';
                                break;
                        case '\f':
                                esc[1] = 'f';
                                break;
                        case '\n':
                                esc[1] = 'n';
                                break;
                        case '\r':
                                esc[1] = 'r';
                                break;
                        case '\t':
                                esc[1] = 't';
                                break;
                        default:
                                memcpy(esc, "\\u00", 4);
                                esc[4] = hex[c >> 4];
                                esc[5] = hex[c & 0xF];
                                esc_len = 6;
                        }
                } else {
                        uint32_t rune;

                        step = se_go_utf8_decode(s + i, n - i, &rune);
                        if (rune == 0xFFFD && step == 1) {
                                memcpy(esc, "\\ufffd", 6);
                                esc_len = 6;
                        } else if (rune == 0x2028 || rune == 0x2029) {
                                memcpy(esc, "\\u202", 5);
                                esc[5] = hex[rune & 0xF];
                                esc_len = 6;
                        } else {
                                i += (size_t) step;
                                continue;
                        }
                }
                r = se_buf_append(b, s + start, i - start);
                if (r < 0)
                        return r;
                r = se_buf_append(b, esc, esc_len);
                if (r < 0)
                        return r;
                i += (size_t) step;
                start = i;
        }
        r = se_buf_append(b, s ? s + start : "", n - start);
        if (r < 0)
                return r;
        return se_buf_append(b, "\"", 1);
}

static int append_member(se_buf *b, bool *first, const char *name) {
        int r;

        if (!*first) {
                r = se_buf_append(b, ",", 1);
                if (r < 0)
                        return r;
        }
        *first = false;
        r = se_go_json_append_string(b, name);
        if (r < 0)
                return r;
        return se_buf_append(b, ":", 1);
}

static int append_keys(se_buf *b, const se_key_list *l) {
        int r;

        /* AESConfiguration{Keys []Key `json:"keys"`}: a nil slice is null */
        r = se_buf_append_str(b, "{\"keys\":");
        if (r < 0)
                return r;
        if (!l->keys && l->n_keys == 0)
                r = se_buf_append_str(b, "null");
        else {
                r = se_buf_append(b, "[", 1);
                for (size_t i = 0; r >= 0 && i < l->n_keys; i++) {
                        if (i > 0)
                                r = se_buf_append(b, ",", 1);
                        if (r >= 0)
                                r = se_buf_append_str(b, "{\"name\":");
                        if (r >= 0)
                                r = se_go_json_append_string(b, l->keys[i].name);
                        if (r >= 0)
                                r = se_buf_append_str(b, ",\"secret\":");
                        if (r >= 0)
                                r = se_go_json_append_string(b, l->keys[i].secret);
                        if (r >= 0)
                                r = se_buf_append(b, "}", 1);
                }
                if (r >= 0)
                        r = se_buf_append(b, "]", 1);
        }
        if (r < 0)
                return r;
        return se_buf_append(b, "}", 1);
}

static int append_kms(se_buf *b, const se_kms *k) {
        char num[32], dur[64];
        bool first = true;
        int r;

        r = se_buf_append(b, "{", 1);
        if (r >= 0)
                r = append_member(b, &first, "apiVersion");
        if (r >= 0)
                r = se_go_json_append_string(b, k->api_version);
        if (r >= 0)
                r = append_member(b, &first, "name");
        if (r >= 0)
                r = se_go_json_append_string(b, k->name);
        if (r >= 0 && k->has_cachesize) { /* *int32 `json:"cachesize,omitempty"` */
                snprintf(num, sizeof(num), "%" PRId32, k->cachesize);
                r = append_member(b, &first, "cachesize");
                if (r >= 0)
                        r = se_buf_append_str(b, num);
        }
        if (r >= 0)
                r = append_member(b, &first, "endpoint");
        if (r >= 0)
                r = se_go_json_append_string(b, k->endpoint);
        if (r < 0)
                return r;
        /* the model always carries the (defaulted) timeout, as kube's decoded object does */
        r = se_format_go_duration(k->timeout_ns, dur, sizeof(dur));
        if (r < 0)
                return r;
        r = append_member(b, &first, "timeout");
        if (r >= 0)
                r = se_go_json_append_string(b, dur);
        if (r < 0)
                return r;
        return se_buf_append(b, "}", 1);
}

static int append_provider(se_buf *b, const se_provider *p) {
        bool first = true;
        int r;

        r = se_buf_append(b, "{", 1);
        /* v1.ProviderConfiguration: every member is a pointer with omitempty */
        if (r >= 0 && p->aesgcm) {
                r = append_member(b, &first, "aesgcm");
                if (r >= 0)
                        r = append_keys(b, p->aesgcm);
        }
        if (r >= 0 && p->aescbc) {
                r = append_member(b, &first, "aescbc");
                if (r >= 0)
                        r = append_keys(b, p->aescbc);
        }
        if (r >= 0 && p->secretbox) {
                r = append_member(b, &first, "secretbox");
                if (r >= 0)
                        r = append_keys(b, p->secretbox);
        }
        if (r >= 0 && p->identity) {
                r = append_member(b, &first, "identity");
                if (r >= 0)
                        r = se_buf_append_str(b, "{}");
        }
        if (r >= 0 && p->kms) {
                r = append_member(b, &first, "kms");
                if (r >= 0)
                        r = append_kms(b, p->kms);
        }
        if (r < 0)
                return r;
        return se_buf_append(b, "}", 1);
}

static int append_resource_config(se_buf *b, const se_resource_config *rc) {
        int r;

        r = se_buf_append_str(b, "{\"resources\":");
        if (r < 0)
                return r;
        if (!rc->resources && rc->n_resources == 0)
                r = se_buf_append_str(b, "null");
        else {
                r = se_buf_append(b, "[", 1);
                for (size_t i = 0; r >= 0 && i < rc->n_resources; i++) {
                        if (i > 0)
                                r = se_buf_append(b, ",", 1);
                        if (r >= 0)
                                r = se_go_json_append_string(b, rc->resources[i]);
                }
                if (r >= 0)
                        r = se_buf_append(b, "]", 1);
        }
        if (r >= 0)
                r = se_buf_append_str(b, ",\"providers\":");
        if (r < 0)
                return r;
        if (!rc->providers && rc->n_providers == 0)
                r = se_buf_append_str(b, "null");
        else {
                r = se_buf_append(b, "[", 1);
                for (size_t i = 0; r >= 0 && i < rc->n_providers; i++) {
                        if (i > 0)
                                r = se_buf_append(b, ",", 1);
                        if (r >= 0)
                                r = append_provider(b, &rc->providers[i]);
                }
                if (r >= 0)
                        r = se_buf_append(b, "]", 1);
        }
        if (r < 0)
                return r;
        return se_buf_append(b, "}", 1);
}

_public_ int se_config_to_json(const se_config *c, char **ret, size_t *ret_size) {
        se_buf b = {.max = SE_CONFIG_MAX_SIZE * 8};
        bool first = true;
        int r = 0;

        if (!c || !ret)
                return -EINVAL;

        r = se_buf_append(&b, "{", 1);
        /* metav1.TypeMeta inlined: kind then apiVersion, both omitempty */
        if (r >= 0 && !isempty(c->kind)) {
                r = append_member(&b, &first, "kind");
                if (r >= 0)
                        r = se_go_json_append_string(&b, c->kind);
        }
        if (r >= 0 && !isempty(c->api_version)) {
                r = append_member(&b, &first, "apiVersion");
                if (r >= 0)
                        r = se_go_json_append_string(&b, c->api_version);
        }
        if (r >= 0)
                r = append_member(&b, &first, "resources");
        if (r >= 0) {
                if (!c->resources && c->n_resources == 0)
                        r = se_buf_append_str(&b, "null");
                else {
                        r = se_buf_append(&b, "[", 1);
                        for (size_t i = 0; r >= 0 && i < c->n_resources; i++) {
                                if (i > 0)
                                        r = se_buf_append(&b, ",", 1);
                                if (r >= 0)
                                        r = append_resource_config(&b, &c->resources[i]);
                        }
                        if (r >= 0)
                                r = se_buf_append(&b, "]", 1);
                }
        }
        if (r >= 0)
                r = se_buf_append(&b, "}", 1);
        if (r < 0) {
                se_buf_free(&b); /* wipes: the buffer held key material */
                return r;
        }

        /* se_buf keeps a NUL after the data, so the block is a C string as it stands */
        if (ret_size)
                *ret_size = b.len;
        *ret = (char *) TAKE_PTR(b.data);
        return 0;
}
