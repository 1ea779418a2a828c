/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"

_public_ int se_parse_duration(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                {"ms", 1000ULL},    {"us", 1ULL},         {"s", 1000000ULL},
                {"m", 60000000ULL}, {"h", 3600000000ULL}, {"d", 86400000000ULL},
        };
        uint64_t total = 0;
        const char *p = s;

        if (isempty(s))
                return -EINVAL;

        while (*p) {
                uint64_t v = 0, mult = 0;
                const char *start = p;
                size_t i;

                while (isdigit((unsigned char) *p)) {
                        if (v > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        v = v * 10 + (uint64_t) (*p - '0');
                        p++;
                }
                if (p == start)
                        return -EINVAL;
                if (*p == '\0') {
                        /* a bare number is seconds, only as the whole value */
                        if (start != s)
                                return -EINVAL;
                        mult = 1000000ULL;
                } else {
                        for (i = 0; i < ELEMENTSOF(units); i++)
                                if (strneq(p, units[i].suffix, strlen(units[i].suffix)) &&
                                    !isalpha((unsigned char) p[strlen(units[i].suffix)])) {
                                        mult = units[i].usec;
                                        p += strlen(units[i].suffix);
                                        break;
                                }
                        if (mult == 0)
                                return -EINVAL;
                }
                if (v > (UINT64_MAX - total) / mult)
                        return -ERANGE;
                total += v * mult;
        }

        *ret_usec = total;
        return 0;
}

/* Fraction digits without trailing zeros, as Go prints them. */
static int append_fraction(char *buf, size_t size, uint64_t whole, uint64_t frac, int digits, const char *unit) {
        char f[32];
        int n;

        n = snprintf(f, sizeof(f), "%0*" PRIu64, digits, frac);
        if (n < 0)
                return -EINVAL;
        while (n > 0 && f[n - 1] == '0')
                f[--n] = 0;
        if (n == 0)
                n = snprintf(buf, size, "%" PRIu64 "%s", whole, unit);
        else
                n = snprintf(buf, size, "%" PRIu64 ".%s%s", whole, f, unit);
        return n < 0 || (size_t) n >= size ? -ENOBUFS : 0;
}

_public_ int se_format_go_duration(int64_t ns, char *buf, size_t size) {
        uint64_t u;
        const char *sign = "";
        char tmp[64];
        int r;

        if (ns == 0)
                return snprintf(buf, size, "0s") >= (int) size ? -ENOBUFS : 0;
        if (ns < 0) {
                sign = "-";
                u = (uint64_t) (-(ns + 1)) + 1;
        } else
                u = (uint64_t) ns;

        if (u < 1000ULL)
                r = snprintf(tmp, sizeof(tmp), "%" PRIu64 "ns", u) < 0 ? -EINVAL : 0;
        else if (u < 1000000ULL)
                r = append_fraction(tmp, sizeof(tmp), u / 1000, u % 1000, 3, "µs");
        else if (u < 1000000000ULL)
                r = append_fraction(tmp, sizeof(tmp), u / 1000000, u % 1000000, 6, "ms");
        else {
                uint64_t secs = u / 1000000000ULL, frac = u % 1000000000ULL;
                uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
                char sec[40], head[40] = "";

                r = append_fraction(sec, sizeof(sec), s, frac, 9, "s");
                if (r >= 0) {
                        if (h > 0)
                                snprintf(head, sizeof(head), "%" PRIu64 "h%" PRIu64 "m", h, m);
                        else if (m > 0)
                                snprintf(head, sizeof(head), "%" PRIu64 "m", m);
                        r = snprintf(tmp, sizeof(tmp), "%s%s", head, sec) < 0 ? -EINVAL : 0;
                }
        }
        if (r < 0)
                return r;
        return snprintf(buf, size, "%s%s", sign, tmp) >= (int) size ? -ENOBUFS : 0;
}
