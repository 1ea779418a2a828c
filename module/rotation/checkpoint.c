/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "reencrypt-internal.h"

#define CHECKPOINT_MAGIC    "secrets-encrypt reencrypt checkpoint v1"
#define CHECKPOINT_MAX_SIZE (64u * 1024u)

static const char *const default_prefixes[] = {SE_REENCRYPT_DEFAULT_PREFIX, NULL};

const char *const *se_reencrypt_prefixes(const char *const *prefixes) {
        return prefixes && prefixes[0] ? prefixes : default_prefixes;
}

static char *checkpoint_path(const char *dir) {
        char *p;

        if (asprintf(&p, "%s/%s", dir, SE_REENCRYPT_CHECKPOINT_FILE) < 0)
                return NULL;
        return p;
}

void se_checkpoint_done(se_checkpoint *c) {
        if (!c)
                return;
        free(c->key);
        *c = (se_checkpoint){};
}

static bool is_hex64(const char *s) {
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!strchr("0123456789abcdef", *s))
                        return false;
        return true;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!*s || *s == '-')
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int se_checkpoint_load(const char *dir, se_checkpoint *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_(se_checkpoint_done) se_checkpoint c = {};
        unsigned seen = 0;
        size_t size;
        char *line, *next;
        int r;

        path = checkpoint_path(dir);
        if (!path)
                return -ENOMEM;
        r = se_read_file(path, CHECKPOINT_MAX_SIZE, &data, &size);
        if (r < 0)
                return r;
        if (memchr(data, 0, size))
                return -EBADMSG;

        line = (char *) data;
        next = strchr(line, '\n');
        if (!next)
                return -EBADMSG;
        *next++ = 0;
        if (!streq(line, CHECKPOINT_MAGIC))
                return -EBADMSG;

        for (line = next; *line; line = next) {
                char *eq;

                next = strchr(line, '\n');
                if (!next)
                        return -EBADMSG; /* a torn file never passes: the last line must be complete */
                *next++ = 0;
                eq = strchr(line, '=');
                if (!eq)
                        return -EBADMSG;
                *eq++ = 0;

                if (streq(line, "config")) {
                        if (!is_hex64(eq))
                                return -EBADMSG;
                        memcpy(c.config, eq, SE_SHA256_HEX_SIZE);
                        seen |= 1;
                } else if (streq(line, "prefixes")) {
                        if (!is_hex64(eq))
                                return -EBADMSG;
                        memcpy(c.prefixes, eq, SE_SHA256_HEX_SIZE);
                        seen |= 2;
                } else if (streq(line, "prefix-index")) {
                        if (parse_u64(eq, &c.prefix_index) < 0)
                                return -EBADMSG;
                        seen |= 4;
                } else if (streq(line, "key")) {
                        _cleanup_free_ uint8_t *k = NULL;
                        size_t n;

                        if (se_base64_decode(eq, strlen(eq), &k, &n) < 0 || n == 0 || memchr(k, 0, n))
                                return -EBADMSG;
                        free(c.key);
                        c.key = strndup((const char *) k, n);
                        if (!c.key)
                                return -ENOMEM;
                        seen |= 8;
                } else if (streq(line, "done")) {
                        if (parse_u64(eq, &c.done) < 0)
                                return -EBADMSG;
                } else if (streq(line, "rewritten")) {
                        if (parse_u64(eq, &c.rewritten) < 0)
                                return -EBADMSG;
                } else if (streq(line, "skipped")) {
                        if (parse_u64(eq, &c.skipped) < 0)
                                return -EBADMSG;
                } else if (streq(line, "conflicts")) {
                        if (parse_u64(eq, &c.conflicts) < 0)
                                return -EBADMSG;
                } else if (streq(line, "total")) {
                        if (parse_u64(eq, &c.total) < 0)
                                return -EBADMSG;
                }
                /* unknown fields: written by a newer version, ignored */
        }
        if (seen != 15)
                return -EBADMSG;

        *ret = c;
        c = (se_checkpoint){};
        return 0;
}

int se_checkpoint_save(const char *dir, const se_checkpoint *c) {
        _cleanup_free_ char *path = NULL, *key = NULL, *text = NULL;
        int n, r;

        path = checkpoint_path(dir);
        if (!path)
                return -ENOMEM;
        r = se_base64_encode(c->key, strlen(c->key), &key);
        if (r < 0)
                return r;
        n = asprintf(&text,
                     CHECKPOINT_MAGIC "\n"
                                      "config=%s\n"
                                      "prefixes=%s\n"
                                      "prefix-index=%" PRIu64 "\n"
                                      "key=%s\n"
                                      "done=%" PRIu64 "\n"
                                      "rewritten=%" PRIu64 "\n"
                                      "skipped=%" PRIu64 "\n"
                                      "conflicts=%" PRIu64 "\n"
                                      "total=%" PRIu64 "\n",
                     c->config, c->prefixes, c->prefix_index, key, c->done, c->rewritten, c->skipped, c->conflicts,
                     c->total);
        if (n < 0)
                return -ENOMEM;
        return se_write_file_atomic(path, text, (size_t) n, 0600);
}

_public_ int se_reencrypt_checkpoint_progress(const char *state_dir, uint64_t *ret_done, uint64_t *ret_total) {
        _cleanup_(se_checkpoint_done) se_checkpoint c = {};
        int r;

        r = se_checkpoint_load(state_dir, &c);
        if (r < 0)
                return r;
        *ret_done = c.done;
        *ret_total = c.total > 0 ? MAX(c.total, c.done) : 0;
        return 0;
}

int se_checkpoint_remove(const char *dir) {
        _cleanup_free_ char *path = checkpoint_path(dir);

        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

static int add_field(se_buf *b, char tag, const char *s) {
        int r;

        r = se_buf_append(b, &tag, 1);
        if (r < 0)
                return r;
        if (s) {
                r = se_buf_append_str(b, s);
                if (r < 0)
                        return r;
        }
        /* NUL separates fields so no two different models serialize alike */
        return se_buf_append(b, "", 1);
}

static int add_keys(se_buf *b, const se_key_list *l) {
        int r;

        if (!l)
                return 0;
        for (size_t i = 0; i < l->n_keys; i++) {
                r = add_field(b, 'k', l->keys[i].name);
                if (r < 0)
                        return r;
                r = add_field(b, 's', l->keys[i].secret);
                if (r < 0)
                        return r;
        }
        return 0;
}

int se_config_fingerprint(const se_config *c, char ret[static SE_SHA256_HEX_SIZE]) {
        se_buf b = {.max = 16u * 1024u * 1024u};
        int r = 0;

        for (size_t i = 0; i < c->n_resources && r >= 0; i++) {
                const se_resource_config *rc = &c->resources[i];

                r = add_field(&b, 'R', NULL);
                for (size_t j = 0; j < rc->n_resources && r >= 0; j++)
                        r = add_field(&b, 'r', rc->resources[j]);
                for (size_t j = 0; j < rc->n_providers && r >= 0; j++) {
                        const se_provider *p = &rc->providers[j];
                        se_provider_type t = se_provider_get_type(p, NULL);

                        r = add_field(&b, 'p', se_provider_type_to_string(t));
                        if (r >= 0)
                                r = add_keys(&b, se_provider_keys(p));
                        if (r >= 0 && t == SE_PROVIDER_KMS && p->kms) {
                                r = add_field(&b, 'n', p->kms->name);
                                if (r >= 0)
                                        r = add_field(&b, 'v', p->kms->api_version);
                                if (r >= 0)
                                        r = add_field(&b, 'e', p->kms->endpoint);
                        }
                }
        }
        if (r >= 0)
                r = se_sha256_hex(b.data ? b.data : (const uint8_t *) "", b.len, ret);
        se_buf_free(&b);
        return r;
}

int se_prefixes_fingerprint(const char *const *prefixes, const char *resource, char ret[static SE_SHA256_HEX_SIZE]) {
        se_buf b = {};
        int r;

        r = add_field(&b, 'g', resource);
        for (size_t i = 0; prefixes[i] && r >= 0; i++)
                r = add_field(&b, 'P', prefixes[i]);
        if (r >= 0)
                r = se_sha256_hex(b.data, b.len, ret);
        se_buf_free(&b);
        return r;
}

bool se_value_is_kms(const uint8_t *v, size_t n, char **ret_name) {
        static const char p1[] = "k8s:enc:kms:v1:", p2[] = "k8s:enc:kms:v2:";
        const uint8_t *name, *colon;

        if (n < STRLEN(p1) || (memcmp(v, p1, STRLEN(p1)) != 0 && memcmp(v, p2, STRLEN(p2)) != 0))
                return false;
        if (ret_name) {
                name = v + STRLEN(p1);
                colon = memchr(name, ':', n - STRLEN(p1));
                *ret_name = strndup((const char *) name, colon ? (size_t) (colon - name) : 0);
        }
        return true;
}

char *se_value_describe(const uint8_t *v, size_t n) {
        static const char enc[] = "k8s:enc:";
        const uint8_t *p, *end = v + n, *c1, *c2, *c3;
        char *s;

        if (n < STRLEN(enc) || memcmp(v, enc, STRLEN(enc)) != 0)
                return strdup("plaintext (identity)");

        /* k8s:enc:<provider>:v1:<name>:… — the name ends at the next ':' (names cannot hold one) */
        p = v + STRLEN(enc);
        c1 = memchr(p, ':', (size_t) (end - p));
        c2 = c1 ? memchr(c1 + 1, ':', (size_t) (end - c1 - 1)) : NULL;
        c3 = c2 ? memchr(c2 + 1, ':', (size_t) (end - c2 - 1)) : NULL;
        if (!c3 || c1 - p > 32 || c3 - c2 - 1 > 256)
                return strdup("data with an unknown k8s:enc: prefix");
        if (asprintf(&s, "%.*s %s \"%.*s\"", (int) (c1 - p), (const char *) p,
                     strneq((const char *) p, "kms:", 4) ? "provider" : "key", (int) (c3 - c2 - 1),
                     (const char *) c2 + 1) < 0)
                return NULL;
        return s;
}

int se_path_list_add(char ***list, size_t *n, size_t max, const char *path) {
        char **l, *d;

        if (*n >= max)
                return 0;
        d = strdup(path);
        if (!d)
                return -ENOMEM;
        l = reallocarray(*list, *n + 1, sizeof(char *));
        if (!l) {
                free(d);
                return -ENOMEM;
        }
        l[(*n)++] = d;
        *list = l;
        return 0;
}

void se_path_list_free(char **list, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        free(list);
}
