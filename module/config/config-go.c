/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-parse-internal.h"
#include "macro.h"

/* Go's text formats the decoders must reproduce exactly: time.ParseDuration with its error
 * messages, and strconv's shortest float text. */

/* time.quote(): like strconv.Quote for ASCII, non-ASCII and control bytes as \xNN. The text is
 * decoded data and may hold NUL bytes, so it comes with its length. */
static char *time_quote(const char *s, size_t n) {
        char *o = malloc(n * 4 + 3), *q = o;

        if (!o)
                return NULL;
        *q++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; p < (const unsigned char *) s + n; p++) {
                if (*p >= 0x80 || *p < 0x20)
                        q += sprintf(q, "\\x%02x", *p);
                else {
                        if (*p == '"' || *p == '\\')
                                *q++ = '\\';
                        *q++ = (char) *p;
                }
        }
        *q++ = '"';
        *q = '\0';
        return o;
}

static int duration_error(const char *what, const char *unit, size_t unit_len, const char *orig, size_t orig_len,
                          char **ret_err) {
        _cleanup_free_ char *qo = time_quote(orig, orig_len), *qu = unit ? time_quote(unit, unit_len) : NULL;

        if (!qo || (unit && !qu))
                return -ENOMEM;
        if (unit) {
                if (asprintf(ret_err, "time: unknown unit %s in duration %s", qu, qo) < 0)
                        return -ENOMEM;
        } else if (asprintf(ret_err, "time: %s %s", what, qo) < 0)
                return -ENOMEM;
        return -EINVAL;
}

static bool is_digit_at(const char *s, const char *end) {
        return s < end && *s >= '0' && *s <= '9';
}

/* Go's time.ParseDuration over exactly len bytes (a NUL byte is just an unknown unit character). */
int se_go_parse_duration(const char *orig, size_t len, int64_t *ret_ns, char **ret_err) {
        static const struct {
                const char *name;
                uint64_t ns;
        } units[] = {
                {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 */
                {"\xce\xbcs", 1000},                                         /* U+03BC */
                {"ms", 1000000},     {"s", 1000000000}, {"m", UINT64_C(60000000000)}, {"h", UINT64_C(3600000000000)},
        };
        const uint64_t limit = UINT64_C(1) << 63;
        const char *s = orig, *end = orig + len;
        uint64_t d = 0;
        bool neg = false;

#define INVALID(what) duration_error(what, NULL, 0, orig, len, ret_err)
        *ret_err = NULL;
        if (s < end && (*s == '-' || *s == '+')) {
                neg = *s == '-';
                s++;
        }
        if (end - s == 1 && *s == '0') {
                *ret_ns = 0;
                return 0;
        }
        if (s == end)
                return INVALID("invalid duration");
        while (s < end) {
                uint64_t v = 0, f = 0, unit = 0;
                double scale = 1;
                bool pre = false, post = false, overflow = false;
                const char *u;
                size_t ul;

                if (!(*s == '.' || is_digit_at(s, end)))
                        return INVALID("invalid duration");
                while (is_digit_at(s, end)) {
                        if (v > limit / 10)
                                return INVALID("invalid duration");
                        v = v * 10 + (uint64_t) (*s - '0');
                        if (v > limit)
                                return INVALID("invalid duration");
                        s++;
                        pre = true;
                }
                if (s < end && *s == '.') {
                        s++;
                        while (is_digit_at(s, end)) {
                                post = true;
                                if (!overflow) {
                                        if (f > (limit - 1) / 10)
                                                overflow = true;
                                        else {
                                                uint64_t y = f * 10 + (uint64_t) (*s - '0');
                                                if (y > limit)
                                                        overflow = true;
                                                else {
                                                        f = y;
                                                        scale *= 10;
                                                }
                                        }
                                }
                                s++;
                        }
                }
                if (!pre && !post)
                        return INVALID("invalid duration");
                u = s;
                while (s < end && *s != '.' && !is_digit_at(s, end))
                        s++;
                ul = (size_t) (s - u);
                if (ul == 0)
                        return INVALID("missing unit in duration");
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (strlen(units[i].name) == ul && memcmp(u, units[i].name, ul) == 0)
                                unit = units[i].ns;
                if (unit == 0)
                        return duration_error(NULL, u, ul, orig, len, ret_err);
                if (v > limit / unit)
                        return INVALID("invalid duration");
                v *= unit;
                if (f > 0) {
                        v += (uint64_t) ((double) f * ((double) unit / scale));
                        if (v > limit)
                                return INVALID("invalid duration");
                }
                d += v;
                if (d > limit)
                        return INVALID("invalid duration");
        }
        if (neg) {
                *ret_ns = d == limit ? INT64_MIN : -(int64_t) d;
                return 0;
        }
        if (d > limit - 1)
                return INVALID("invalid duration");
        *ret_ns = (int64_t) d;
        return 0;
#undef INVALID
}

void se_go_format_float(double v, char *buf, size_t size) {
        char tmp[64];
        int p, exp;
        double a = fabs(v);
        const char *e;

        for (p = 1; p < 17; p++) {
                snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
                if (strtod(tmp, NULL) == v)
                        break;
        }
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        e = strchr(tmp, 'e');
        exp = e ? atoi(e + 1) : 0;
        if (a == 0 || (a >= 1e-6 && a < 1e21)) {
                int decimals = p - 1 - exp;

                snprintf(buf, size, "%.*f", decimals < 0 ? 0 : decimals, v);
                return;
        }
        /* Go's encoding/json turns "e-07" into "e-7" */
        if (e && e[1] == '-' && e[2] == '0' && e[3] != '\0' && e[4] == '\0')
                memmove((char *) e + 2, e + 3, 2);
        snprintf(buf, size, "%s", tmp);
}
