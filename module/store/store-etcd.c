/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd v3 through its JSON gRPC gateway (etcd ≥ 3.4): POST /v3/kv/{range,txn}, base64 keys and
 * values, int64 as strings, zero fields omitted. Writes are kube-apiserver's optimistic
 * transactions (compare mod_revision, put, else range), batched within --max-txn-ops.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "curl-dlopen.h"
#include "macro.h"
#include "se-etcd.h"
#include "se-util.h"
#include "store-internal.h"

#define ETCD_DEFAULT_TIMEOUT_USEC (10ULL * 1000000ULL)
#define ETCD_CONNECT_TIMEOUT_MS   5000L
#define ETCD_MAX_RESPONSE         (64u * 1024u * 1024u)
#define ETCD_MAX_REQUEST          (64u * 1024u * 1024u)
#define ETCD_DEFAULT_PAGE         1000
/* etcd's default --max-txn-ops */
#define ETCD_MAX_TXN_OPS 128
/* Raw value bytes per txn: base64 makes it ~1 MiB, under the default 1.5 MiB --max-request-bytes. */
#define ETCD_MAX_TXN_VALUE_BYTES (768u * 1024u)
#define ETCD_RETRY_SLEEP_USEC    200000U
#define ETCD_MIN_RETRY_USEC      (5ULL * 1000000ULL)
#define ETCD_JSON_DEPTH          64

/* gRPC status codes (google.golang.org/grpc/codes). */
enum {
        GRPC_CANCELED = 1,
        GRPC_UNKNOWN = 2,
        GRPC_INVALID_ARGUMENT = 3,
        GRPC_DEADLINE_EXCEEDED = 4,
        GRPC_NOT_FOUND = 5,
        GRPC_ALREADY_EXISTS = 6,
        GRPC_PERMISSION_DENIED = 7,
        GRPC_RESOURCE_EXHAUSTED = 8,
        GRPC_FAILED_PRECONDITION = 9,
        GRPC_ABORTED = 10,
        GRPC_OUT_OF_RANGE = 11,
        GRPC_UNIMPLEMENTED = 12,
        GRPC_INTERNAL = 13,
        GRPC_UNAVAILABLE = 14,
        GRPC_DATA_LOSS = 15,
        GRPC_UNAUTHENTICATED = 16,
};

typedef struct etcd {
        CURL *curl;
        struct curl_slist *headers;
        char **urls;
        char **shown; /* urls without userinfo: the only form any message uses */
        size_t n_urls;
        size_t current; /* the endpoint that answered last; tried first */
        uint64_t timeout_usec;
        se_buf resp;
        int write_error;
        bool retried; /* the last call was sent more than once: a write may have landed already */
        char errbuf[CURL_ERROR_SIZE];
} etcd;

static inline void json_object_putp(json_object **j) {
        if (*j)
                json_object_put(*j);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* ---- request bodies ------------------------------------------------------------------------ */

/* "name":"<base64>" */
static int buf_append_b64(se_buf *b, const char *name, const void *p, size_t n) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = se_base64_encode(p, n, &s);
        if (r < 0)
                return r;
        r = se_buf_printf(b, "\"%s\":\"", name);
        if (r < 0)
                return r;
        r = se_buf_append_str(b, s);
        if (r < 0)
                return r;
        return se_buf_append_str(b, "\"");
}

/* ---- responses ----------------------------------------------------------------------------- */

static int parse_json(const uint8_t *data, size_t len, json_object **ret, const char **ret_why) {
        json_tokener *tok;
        json_object *j;
        enum json_tokener_error err;
        size_t end;

        if (len == 0) {
                *ret_why = "empty body";
                return -EBADMSG;
        }
        if (len > INT_MAX) {
                *ret_why = "body too large";
                return -EBADMSG;
        }
        tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        j = json_tokener_parse_ex(tok, (const char *) data, (int) len);
        err = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!j || err != json_tokener_success) {
                json_object_put(j);
                *ret_why = err == json_tokener_continue ? "truncated JSON" : json_tokener_error_desc(err);
                return -EBADMSG;
        }
        for (; end < len; end++)
                if (!strchr(" \t\r\n", data[end])) {
                        json_object_put(j);
                        *ret_why = "trailing data after the JSON object";
                        return -EBADMSG;
                }
        if (!json_object_is_type(j, json_type_object)) {
                json_object_put(j);
                *ret_why = "not a JSON object";
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

/* int64 fields come as strings (proto3 JSON); numbers are accepted too. Absent = 0. */
static int json_get_int64(json_object *o, const char *name, int64_t *ret, se_error *e) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
                *ret = 0;
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                errno = 0;
                *ret = json_object_get_int64(v);
                return errno == 0 ? 0 : se_error_set(e, -EBADMSG, "field \"%s\" out of range", name);
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                char *end;
                long long x;

                errno = 0;
                x = strtoll(s, &end, 10);
                if (errno == 0 && end != s && *end == '\0') {
                        *ret = x;
                        return 0;
                }
        }
        return se_error_set(e, -EBADMSG, "field \"%s\" is not an integer", name);
}

static int json_get_bool(json_object *o, const char *name, bool *ret, se_error *e) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
                *ret = false;
                return 0;
        }
        if (!json_object_is_type(v, json_type_boolean))
                return se_error_set(e, -EBADMSG, "field \"%s\" is not a boolean", name);
        *ret = json_object_get_boolean(v);
        return 0;
}

/* Absent or null = NULL (not an error); anything else must be an object. */
static int json_get_object(json_object *o, const char *name, json_object **ret, se_error *e) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object))
                return se_error_set(e, -EBADMSG, "field \"%s\" is not an object", name);
        *ret = v;
        return 0;
}

static int json_get_array(json_object *o, const char *name, json_object **ret, size_t *ret_n, se_error *e) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_array))
                return se_error_set(e, -EBADMSG, "field \"%s\" is not an array", name);
        *ret = v;
        *ret_n = json_object_array_length(v);
        return 0;
}

/* bytes fields: standard base64; absent = empty. The result always has a NUL after the data. */
static int json_get_bytes(json_object *o, const char *name, uint8_t **ret, size_t *ret_size, se_error *e) {
        json_object *v;
        uint8_t *d = NULL, *out;
        size_t n = 0;
        int r;

        if (o && json_object_object_get_ex(o, name, &v) && !json_object_is_type(v, json_type_null)) {
                if (!json_object_is_type(v, json_type_string))
                        return se_error_set(e, -EBADMSG, "field \"%s\" is not a string", name);
                r = se_base64_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), &d, &n);
                if (r == -ENOMEM)
                        return se_error_set(e, r, "out of memory");
                if (r < 0)
                        return se_error_set(e, -EBADMSG, "field \"%s\" is not valid base64", name);
        }
        out = malloc(n + 1);
        if (!out) {
                if (d)
                        explicit_wipe(d, n);
                free(d);
                return se_error_set(e, -ENOMEM, "out of memory");
        }
        if (n > 0)
                memcpy(out, d, n);
        out[n] = 0;
        if (d)
                explicit_wipe(d, n);
        free(d);
        *ret = out;
        *ret_size = n;
        return 0;
}

static int kv_from_json(json_object *o, se_kv *ret, se_error *e) {
        se_kv kv = {};
        size_t klen;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return se_error_set(e, -EBADMSG, "key-value entry is not an object");
        r = json_get_bytes(o, "key", (uint8_t **) &kv.key, &klen, e);
        if (r < 0)
                return r;
        if (klen == 0 || memchr(kv.key, 0, klen)) {
                se_kv_done(&kv);
                return se_error_set(e, -EBADMSG, "key-value entry with an empty key or a NUL byte in its key");
        }
        r = json_get_bytes(o, "value", &kv.value, &kv.value_size, e);
        if (r >= 0)
                r = json_get_int64(o, "mod_revision", &kv.mod_revision, e);
        if (r >= 0)
                r = json_get_int64(o, "create_revision", &kv.create_revision, e);
        if (r < 0) {
                se_kv_done(&kv);
                return r;
        }
        *ret = kv;
        return 0;
}

/* RangeResponse.kvs → list, checking the order etcd promises (ascending keys). */
static int kvs_from_json(json_object *resp, se_kv_list *ret, se_error *e) {
        json_object *kvs;
        se_kv_list l = {};
        size_t n;
        int r;

        r = json_get_array(resp, "kvs", &kvs, &n, e);
        if (r < 0)
                return r;
        if (n > 0) {
                l.items = calloc(n, sizeof(se_kv));
                if (!l.items)
                        return se_error_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
                r = kv_from_json(json_object_array_get_idx(kvs, i), &l.items[i], e);
                if (r < 0) {
                        se_kv_list_done(&l);
                        return r;
                }
                l.n_items++;
                if (i > 0 && strcmp(l.items[i - 1].key, l.items[i].key) >= 0) {
                        se_kv_list_done(&l);
                        return se_error_set(e, -EBADMSG, "range result not in ascending key order");
                }
        }
        r = json_get_bool(resp, "more", &l.more, e);
        if (r < 0) {
                se_kv_list_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

/* ---- transport ----------------------------------------------------------------------------- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        etcd *c = userdata;
        size_t n = size * nmemb;
        int r;

        r = se_buf_append(&c->resp, ptr, n);
        if (r < 0) {
                c->write_error = r;
                return 0;
        }
        return n;
}

static int grpc_code_to_errno(int code) {
        switch (code) {
        case GRPC_CANCELED:
                return -ECANCELED;
        case GRPC_INVALID_ARGUMENT:
                return -EINVAL;
        case GRPC_DEADLINE_EXCEEDED:
                return -ETIMEDOUT;
        case GRPC_NOT_FOUND:
                return -ENOENT;
        case GRPC_ALREADY_EXISTS:
                return -EEXIST;
        case GRPC_PERMISSION_DENIED:
        case GRPC_UNAUTHENTICATED:
                return -EACCES;
        case GRPC_RESOURCE_EXHAUSTED:
                return -ENOSPC; /* "mvcc: database space exceeded" */
        case GRPC_OUT_OF_RANGE:
                return -ERANGE; /* compacted or future revision */
        case GRPC_UNIMPLEMENTED:
                return -EOPNOTSUPP;
        case GRPC_UNAVAILABLE:
                return -EHOSTDOWN; /* no leader, request timed out, stopping */
        case GRPC_FAILED_PRECONDITION:
                return -EPROTO;
        default:
                return -EIO;
        }
}

static bool is_tls_text(const char *s) {
        return strstr(s, "SSL") || strstr(s, "TLS") || strstr(s, "certificate") || strstr(s, "alert");
}

static int curl_code_to_errno(CURLcode cc, bool https, const char *detail) {
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
                /* a TLS alert (e.g. client certificate required) surfaces as a read error */
                if (https && is_tls_text(detail))
                        return -EPROTO;
                return -ECONNRESET;
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_USE_SSL_FAILED:
                return -EPROTO;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static const char *tls_hint(CURLcode cc, const char *detail) {
        /* the server's alert when it wants a (valid) client certificate */
        if (strstr(detail, "alert bad certificate") || strstr(detail, "alert certificate required") ||
            strstr(detail, "alert unknown ca"))
                return " (the server refused the client certificate: check datastore-certfile and "
                       "datastore-keyfile)";
        switch (cc) {
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
                return " (check datastore-cafile)";
        case CURLE_SSL_CERTPROBLEM:
                return " (check datastore-certfile and datastore-keyfile)";
        default:
                return "";
        }
}

/* One POST to one endpoint. On failure *ret_failover says whether another endpoint may do
 * better (connection trouble, 503/Unavailable); the message always names the URL. */
static int etcd_attempt(etcd *c, size_t idx, const char *path, const se_buf *body, json_object **ret,
                        bool *ret_failover, se_error *e) {
        _cleanup_free_ char *url = NULL;
        const char *base = c->shown[idx], *why = NULL;
        json_object *j = NULL, *msg;
        long status = 0;
        CURLcode cc;
        int r;

        *ret_failover = false;
        if (asprintf(&url, "%s%s", c->urls[idx], path) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");

        se_buf_clear(&c->resp);
        c->write_error = 0;
        c->errbuf[0] = 0;
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_URL, url);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *) body->data);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body->len);
        cc = sym_curl_easy_perform(c->curl);
        if (cc != CURLE_OK) {
                const char *detail = c->errbuf[0] ? c->errbuf : sym_curl_easy_strerror(cc);

                if (cc == CURLE_WRITE_ERROR && c->write_error == -E2BIG)
                        return se_error_set(e, -E2BIG, "response from etcd at %s exceeds %u MiB", base,
                                            ETCD_MAX_RESPONSE / (1024u * 1024u));
                if (cc == CURLE_WRITE_ERROR && c->write_error < 0)
                        return se_error_set(e, c->write_error, "out of memory reading the response of %s", base);
                r = curl_code_to_errno(cc, startswith(base, "https://"), detail);
                *ret_failover = r != -ENOMEM && r != -EINVAL;
                return se_error_set(e, r, "etcd at %s: %s%s", base, detail, r == -EPROTO ? tls_hint(cc, detail) : "");
        }
        (void) sym_curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);

        r = parse_json(c->resp.data, c->resp.len, &j, &why);
        if (r == -ENOMEM)
                return se_error_set(e, r, "out of memory");
        if (status == 200) {
                if (r < 0) /* -EPROTO: a broken datastore, not an invalid encryption config */
                        return se_error_set(e, r == -EBADMSG ? -EPROTO : r, "invalid response from etcd at %s: %s",
                                            base, why);
                *ret = j;
                return 0;
        }

        /* grpc-gateway error body: {"error":…,"message":…,"code":N[,"details":…]} */
        if (r >= 0) {
                _cleanup_json_ json_object *body_json = j;
                int64_t code = 0;
                const char *text = NULL;

                if (json_get_int64(body_json, "code", &code, NULL) >= 0 && code > 0) {
                        if (json_object_object_get_ex(body_json, "message", &msg) &&
                            json_object_is_type(msg, json_type_string))
                                text = json_object_get_string(msg);
                        else if (json_object_object_get_ex(body_json, "error", &msg) &&
                                 json_object_is_type(msg, json_type_string))
                                text = json_object_get_string(msg);
                        r = grpc_code_to_errno((int) code);
                        *ret_failover = code == GRPC_UNAVAILABLE || status == 503;
                        if (*ret_failover)
                                r = -EHOSTDOWN;
                        return se_error_set(e, r, "etcd at %s: %s (gRPC code %d, HTTP %ld)", base,
                                            text ? text : "error", (int) code, status);
                }
        }
        if (status == 503 || status == 502 || status == 504) {
                *ret_failover = true;
                return se_error_set(e, status == 504 ? -ETIMEDOUT : -EHOSTDOWN, "etcd at %s: HTTP %ld", base, status);
        }
        if (status == 404 || status == 405)
                return se_error_set(e, -EOPNOTSUPP, "etcd at %s: HTTP %ld for %s: not an etcd v3 (≥ 3.4) JSON gateway",
                                    base, status, path);
        return se_error_set(e, -EPROTO, "invalid response from etcd at %s: HTTP %ld%s%s", base, status,
                            why ? ", " : "", why ? why : "");
}

/* Which failure to report when every endpoint failed: configuration problems (TLS) first, then
 * the "most alive" state seen. */
static int error_rank(int r) {
        switch (r) {
        case -ECONNREFUSED:
                return 1;
        case -EHOSTUNREACH:
        case -ENETUNREACH:
                return 2;
        case -ECONNRESET:
                return 3;
        case -ETIMEDOUT:
                return 4;
        case -EHOSTDOWN:
                return 5;
        default:
                return 6;
        }
}

static int etcd_call(etcd *c, const char *path, const se_buf *body, json_object **ret, se_error *e) {
        /* Leader elections take a second or two: calls that met a live but leaderless (or slow)
         * cluster are retried for at least this long. */
        uint64_t retry_until = se_now_usec(CLOCK_MONOTONIC) + MAX(c->timeout_usec, ETCD_MIN_RETRY_USEC);
        unsigned attempts = 0;
        int r, best = 0;
        se_buf summary = {.max = 64 * 1024};

        c->retried = false;
        for (;;) {
                bool busy = false;
                ssize_t alive = -1;

                best = 0;
                se_buf_clear(&summary);
                for (size_t k = 0; k < c->n_urls; k++) {
                        size_t idx = (c->current + k) % c->n_urls;
                        se_error ae = SE_ERROR_NULL;
                        bool failover;

                        if (attempts++ > 0)
                                c->retried = true;
                        r = etcd_attempt(c, idx, path, body, ret, &failover, &ae);
                        if (r >= 0 || !failover) {
                                c->current = idx;
                                se_buf_free(&summary);
                                if (r < 0) {
                                        r = se_error_set(e, r, "%s", se_error_message(&ae));
                                        se_error_done(&ae);
                                }
                                return r;
                        }
                        if (summary.len > 0)
                                (void) se_buf_append_str(&summary, "; ");
                        (void) se_buf_append_str(&summary, se_error_message(&ae));
                        se_error_done(&ae);
                        if (best == 0 || error_rank(r) > error_rank(best))
                                best = r;
                        if (r == -EHOSTDOWN && alive < 0)
                                alive = (ssize_t) idx;
                        if (r != -ECONNREFUSED && r != -EHOSTUNREACH && r != -EPROTO)
                                busy = true;
                }
                if (!busy || se_now_usec(CLOCK_MONOTONIC) + ETCD_RETRY_SLEEP_USEC >= retry_until)
                        break;
                /* next round starts with a member that answered rather than one that hangs */
                if (alive >= 0)
                        c->current = (size_t) alive;
                (void) usleep(ETCD_RETRY_SLEEP_USEC);
        }

        r = se_error_set(e, best, "%s%s", c->n_urls > 1 ? "no etcd endpoint answered: " : "",
                         summary.data ? (const char *) summary.data : "");
        se_buf_free(&summary);
        return r;
}

static const char *current_url(etcd *c) {
        return c->shown[c->current];
}

/* Parsing failures after a successful call: say which server sent it. */
static int bad_response(etcd *c, int r, se_error *e) {
        return se_error_prefix(e, r == -EBADMSG ? -EPROTO : r, "invalid response from etcd at %s", current_url(c));
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void etcd_free(etcd *c) {
        if (!c)
                return;
        /* libcurl may never have been loaded when opening failed early */
        if (c->curl)
                sym_curl_easy_cleanup(c->curl);
        if (c->headers)
                sym_curl_slist_free_all(c->headers);
        for (size_t i = 0; i < c->n_urls; i++) {
                free(c->urls[i]);
                free(c->shown[i]);
        }
        free(c->urls);
        free(c->shown);
        se_buf_free(&c->resp);
        free(c);
}

static int parse_endpoints(etcd *c, const char *list, se_plain_http plain_http, se_error *e) {
        _cleanup_free_ char *shown_list = se_url_strip_userinfo(list);
        const char *p = list;

        if (!shown_list)
                return se_error_set(e, -ENOMEM, "out of memory");
        while (*p) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                _cleanup_free_ char *u = NULL, *shown = NULL;
                char **n;

                while (len > 0 && (*p == ' ' || *p == '\t')) {
                        p++;
                        len--;
                }
                while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '/'))
                        len--;
                u = strndup(p, len);
                shown = u ? se_url_strip_userinfo(u) : NULL;
                if (!u || !shown)
                        return se_error_set(e, -ENOMEM, "out of memory");
                if (!(startswith(u, "http://") && strlen(u) > STRLEN("http://")) &&
                    !(startswith(u, "https://") && strlen(u) > STRLEN("https://")))
                        return se_error_set(e, -EINVAL,
                                            "datastore-endpoint \"%s\": \"%s\" is not an http:// or https:// URL",
                                            shown_list, shown);
                if (startswith(u, "http://") && plain_http == SE_PLAIN_HTTP_REFUSE)
                        return se_error_set(e, -EINVAL,
                                            "datastore-endpoint \"%s\": %s is plain HTTP: the sealed configuration, "
                                            "node records and every secret would cross the network unencrypted to "
                                            "whoever answers; use https:// with datastore-cafile, datastore-certfile "
                                            "and datastore-keyfile, or, for an etcd on this machine only, set "
                                            "datastore-allow-plain-http: true",
                                            shown_list, shown);
                if (startswith(u, "http://") && plain_http == SE_PLAIN_HTTP_LOOPBACK && !se_store_url_is_loopback(u))
                        return se_error_set(e, -EINVAL,
                                            "datastore-endpoint \"%s\": %s is plain HTTP to another machine: "
                                            "datastore-allow-plain-http allows only 127.0.0.0/8, [::1] and "
                                            "localhost; use https:// with datastore-cafile, datastore-certfile and "
                                            "datastore-keyfile",
                                            shown_list, shown);
                n = realloc(c->urls, (c->n_urls + 1) * sizeof(char *));
                if (!n)
                        return se_error_set(e, -ENOMEM, "out of memory");
                c->urls = n;
                n = realloc(c->shown, (c->n_urls + 1) * sizeof(char *));
                if (!n)
                        return se_error_set(e, -ENOMEM, "out of memory");
                c->shown = n;
                c->urls[c->n_urls] = TAKE_PTR(u);
                c->shown[c->n_urls++] = TAKE_PTR(shown);
                if (!comma)
                        break;
                p = comma + 1;
        }
        if (c->n_urls == 0)
                return se_error_set(e, -EINVAL, "datastore-endpoint \"%s\" lists no URL", shown_list);
        return 0;
}

/* TLS files with an http:// endpoint would be ignored: say so instead. */
static int check_tls_for_http(etcd *c, const se_store_options *o, se_error *e) {
        const char *setting = !isempty(o->cafile)     ? "datastore-cafile"
                              : !isempty(o->certfile) ? "datastore-certfile"
                              : !isempty(o->keyfile)  ? "datastore-keyfile"
                                                      : NULL;

        if (!setting)
                return 0;
        for (size_t i = 0; i < c->n_urls; i++)
                if (startswith(c->urls[i], "http://"))
                        return se_error_set(e, -EINVAL,
                                            "%s is set but datastore-endpoint %s is plain http://, which would "
                                            "ignore it: use https://",
                                            setting, c->shown[i]);
        return 0;
}

static int check_file(const char *setting, const char *path, se_error *e) {
        if (access(path, R_OK) < 0)
                return se_error_set(e, negative_errno(), "%s %s: %s", setting, path, strerror(errno));
        return 0;
}

static int etcd_open(const se_store_options *o, void **ret_impl, se_error *e) {
        etcd *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return se_error_set(e, -ENOMEM, "out of memory");
        c->resp.max = ETCD_MAX_RESPONSE;
        c->timeout_usec = o->timeout_usec ? o->timeout_usec : ETCD_DEFAULT_TIMEOUT_USEC;

        r = parse_endpoints(c, o->endpoint, o->plain_http, e);
        if (r >= 0)
                r = check_tls_for_http(c, o, e);
        if (r >= 0 && !isempty(o->cafile))
                r = check_file("datastore-cafile", o->cafile, e);
        if (r >= 0 && !isempty(o->certfile))
                r = check_file("datastore-certfile", o->certfile, e);
        if (r >= 0 && !isempty(o->keyfile))
                r = check_file("datastore-keyfile", o->keyfile, e);
        if (r >= 0 && !isempty(o->keyfile) && isempty(o->certfile))
                r = se_error_set(e, -EINVAL, "datastore-keyfile is set but datastore-certfile is not");
        if (r < 0)
                goto fail;

        r = se_dlopen_curl(e);
        if (r < 0)
                goto fail;
        c->curl = sym_curl_easy_init();
        if (!c->curl) {
                r = se_error_set(e, -ENOMEM, "libcurl: cannot create a handle");
                goto fail;
        }
        c->headers = sym_curl_slist_append(NULL, "Content-Type: application/json");
        if (c->headers) {
                /* no "Expect: 100-continue" round trip for larger transactions */
                struct curl_slist *h = sym_curl_slist_append(c->headers, "Expect:");
                if (h)
                        c->headers = h;
                else {
                        sym_curl_slist_free_all(c->headers);
                        c->headers = NULL;
                }
        }
        if (!c->headers) {
                r = se_error_set(e, -ENOMEM, "out of memory");
                goto fail;
        }

        (void) sym_curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->errbuf);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_cb);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
        /* etcd is never reached through http_proxy from the environment */
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long) MAX(c->timeout_usec / 1000, 1));
        (void) sym_curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                                    (long) MIN((long) MAX(c->timeout_usec / 1000, 1), ETCD_CONNECT_TIMEOUT_MS));
        if (!isempty(o->cafile))
                (void) sym_curl_easy_setopt(c->curl, CURLOPT_CAINFO, o->cafile);
        if (!isempty(o->certfile))
                (void) sym_curl_easy_setopt(c->curl, CURLOPT_SSLCERT, o->certfile);
        if (!isempty(o->keyfile))
                (void) sym_curl_easy_setopt(c->curl, CURLOPT_SSLKEY, o->keyfile);

        *ret_impl = c;
        return 0;

fail:
        etcd_free(c);
        return r;
}

static void etcd_close(void *impl) {
        etcd_free(impl);
}

/* ---- kv ------------------------------------------------------------------------------------ */

/* range_end for a prefix: the next key after all keys starting with it, or "\0" (all keys ≥ key)
 * when there is none (empty prefix, all 0xff). */
static int prefix_end(const char *prefix, char **ret, se_error *e) {
        char *end = se_prefix_range_end(prefix);

        if (!end) {
                for (const char *p = prefix; *p; p++)
                        if ((unsigned char) *p != 0xff)
                                return se_error_set(e, -ENOMEM, "out of memory");
        }
        *ret = end;
        return 0;
}

static int append_range_end(se_buf *b, const char *end) {
        if (!end)
                return se_buf_append_str(b, "\"range_end\":\"AA==\"");
        return buf_append_b64(b, "range_end", end, strlen(end));
}

static int etcd_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        etcd *c = impl;
        _cleanup_free_ char *end = NULL;
        const char *from;
        se_buf body = {.max = ETCD_MAX_REQUEST};
        int r;

        if (!prefix || !ret)
                return se_error_set(e, -EINVAL, "range: no prefix");
        r = prefix_end(prefix, &end, e);
        if (r < 0)
                return r;
        from = start && strcmp(start, prefix) > 0 ? start : prefix;
        if (end && strcmp(from, end) >= 0) {
                *ret = (se_kv_list){};
                return 0;
        }
        if (limit == 0)
                limit = ETCD_DEFAULT_PAGE;

        for (;;) {
                _cleanup_json_ json_object *j = NULL;

                se_buf_clear(&body);
                /* No sort_order: etcd returns keys ascending anyway, and an explicit sort makes it
                 * read the whole range before applying the limit. */
                r = se_buf_append_str(&body, "{");
                if (r >= 0)
                        r = buf_append_b64(&body, "key", from, strlen(from));
                if (r >= 0)
                        r = se_buf_append_str(&body, ",");
                if (r >= 0)
                        r = append_range_end(&body, end);
                if (r >= 0)
                        r = se_buf_printf(&body, ",\"limit\":\"%zu\"}", limit);
                if (r < 0) {
                        se_buf_free(&body);
                        return se_error_set(e, r, "cannot build the range request");
                }

                r = etcd_call(c, "/v3/kv/range", &body, &j, e);
                if (r == -E2BIG && limit > 1) {
                        /* large values: fewer per page */
                        limit /= 2;
                        continue;
                }
                se_buf_free(&body);
                if (r < 0)
                        return r;
                r = kvs_from_json(j, ret, e);
                if (r < 0)
                        return bad_response(c, r, e);
                if (ret->n_items > limit) {
                        se_kv_list_done(ret);
                        return bad_response(c, se_error_set(e, -EBADMSG, "more keys than the limit"), e);
                }
                /* [from, end): a key outside it (a broken or hostile etcd) would make callers page
                 * backwards or never end */
                for (size_t i = 0; i < ret->n_items; i++)
                        if (strcmp(ret->items[i].key, from) < 0 || (end && strcmp(ret->items[i].key, end) >= 0)) {
                                se_kv_list_done(ret);
                                return bad_response(
                                        c, se_error_set(e, -EBADMSG, "range result outside the range asked for"), e);
                        }
                return 0;
        }
}

static int etcd_count(void *impl, const char *prefix, uint64_t *ret, se_error *e) {
        etcd *c = impl;
        _cleanup_free_ char *end = NULL;
        _cleanup_json_ json_object *j = NULL;
        se_buf body = {.max = ETCD_MAX_REQUEST};
        int64_t n;
        int r;

        if (!prefix)
                return se_error_set(e, -EINVAL, "count: no prefix");
        r = prefix_end(prefix, &end, e);
        if (r < 0)
                return r;
        r = se_buf_append_str(&body, "{");
        if (r >= 0)
                r = buf_append_b64(&body, "key", prefix, strlen(prefix));
        if (r >= 0)
                r = se_buf_append_str(&body, ",");
        if (r >= 0)
                r = append_range_end(&body, end);
        if (r >= 0)
                r = se_buf_append_str(&body, ",\"count_only\":true}");
        if (r < 0) {
                se_buf_free(&body);
                return se_error_set(e, r, "cannot build the range request");
        }
        r = etcd_call(c, "/v3/kv/range", &body, &j, e);
        se_buf_free(&body);
        if (r < 0)
                return r;
        r = json_get_int64(j, "count", &n, e);
        if (r < 0)
                return bad_response(c, r, e);
        if (n < 0)
                return bad_response(c, se_error_set(e, -EBADMSG, "negative count"), e);
        *ret = (uint64_t) n;
        return 0;
}

static int etcd_get(void *impl, const char *key, se_kv *ret, se_error *e) {
        etcd *c = impl;
        _cleanup_json_ json_object *j = NULL;
        se_buf body = {.max = ETCD_MAX_REQUEST};
        se_kv_list l = {};
        int r;

        if (isempty(key))
                return se_error_set(e, -EINVAL, "get: empty key");
        r = se_buf_append_str(&body, "{");
        if (r >= 0)
                r = buf_append_b64(&body, "key", key, strlen(key));
        if (r >= 0)
                r = se_buf_append_str(&body, "}");
        if (r < 0) {
                se_buf_free(&body);
                return se_error_set(e, r, "cannot build the range request");
        }
        r = etcd_call(c, "/v3/kv/range", &body, &j, e);
        se_buf_free(&body);
        if (r < 0)
                return r;
        r = kvs_from_json(j, &l, e);
        if (r < 0)
                return bad_response(c, r, e);
        if (l.n_items == 0) {
                se_kv_list_done(&l);
                return se_error_set(e, -ENOENT, "%s: no such key in etcd", key);
        }
        if (l.n_items > 1 || !streq(l.items[0].key, key)) {
                se_kv_list_done(&l);
                return bad_response(c, se_error_set(e, -EBADMSG, "range of one key returned another"), e);
        }
        *ret = l.items[0];
        l.items[0] = (se_kv){};
        se_kv_list_done(&l);
        return 0;
}

/* ---- transactions -------------------------------------------------------------------------- */

typedef enum txn_op {
        TXN_PUT,
        TXN_DELETE,
} txn_op;

typedef struct txn_item {
        const char *key;
        const uint8_t *value;
        size_t value_size;
        int64_t expected;
        int64_t lease;
        txn_op op;
        /* out */
        int64_t current;    /* mod_revision seen in the failure branch, 0 = absent */
        bool value_matches; /* the current value is the one we meant to write */
} txn_item;

static int txn_body(se_buf *b, txn_item *const *items, size_t n) {
        int r;

        se_buf_clear(b);
        r = se_buf_append_str(b, "{\"compare\":[");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = se_buf_append_str(b, i > 0 ? ",{\"target\":\"MOD\",\"result\":\"EQUAL\","
                                               : "{\"target\":\"MOD\",\"result\":\"EQUAL\",");
                if (r >= 0)
                        r = buf_append_b64(b, "key", items[i]->key, strlen(items[i]->key));
                if (r >= 0)
                        r = se_buf_printf(b, ",\"mod_revision\":\"%" PRId64 "\"}", items[i]->expected);
        }
        if (r >= 0)
                r = se_buf_append_str(b, "],\"success\":[");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const txn_item *t = items[i];

                if (i > 0)
                        r = se_buf_append_str(b, ",");
                if (r >= 0)
                        r = se_buf_append_str(b,
                                              t->op == TXN_PUT ? "{\"request_put\":{" : "{\"request_delete_range\":{");
                if (r >= 0)
                        r = buf_append_b64(b, "key", t->key, strlen(t->key));
                if (r >= 0 && t->op == TXN_PUT) {
                        r = se_buf_append_str(b, ",");
                        if (r >= 0)
                                r = buf_append_b64(b, "value", t->value, t->value_size);
                        if (r >= 0 && t->lease != 0)
                                r = se_buf_printf(b, ",\"lease\":\"%" PRId64 "\"", t->lease);
                }
                if (r >= 0)
                        r = se_buf_append_str(b, "}}");
        }
        if (r >= 0)
                r = se_buf_append_str(b, "],\"failure\":[");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = se_buf_append_str(b, i > 0 ? ",{\"request_range\":{" : "{\"request_range\":{");
                if (r >= 0)
                        r = buf_append_b64(b, "key", items[i]->key, strlen(items[i]->key));
                if (r >= 0)
                        r = se_buf_append_str(b, "}}");
        }
        if (r >= 0)
                r = se_buf_append_str(b, "]}");
        return r;
}

/* One transaction over items: all compares, then all puts/deletes, or a range of each key.
 * Returns 1 if it succeeded (*ret_revision = its revision), 0 if a compare failed (each item's
 * current mod_revision filled in). */
static int txn_once(etcd *c, txn_item *const *items, size_t n, int64_t *ret_revision, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        se_buf body = {.max = ETCD_MAX_REQUEST};
        json_object *header, *responses;
        size_t n_resp;
        bool ok;
        int r;

        r = txn_body(&body, items, n);
        if (r < 0) {
                se_buf_free(&body);
                return se_error_set(e, r, r == -E2BIG ? "transaction too large" : "cannot build the transaction");
        }
        r = etcd_call(c, "/v3/kv/txn", &body, &j, e);
        se_buf_free(&body);
        if (r < 0)
                return r;

        r = json_get_bool(j, "succeeded", &ok, e);
        if (r >= 0)
                r = json_get_object(j, "header", &header, e);
        if (r >= 0)
                r = json_get_int64(header, "revision", ret_revision, e);
        if (r >= 0)
                r = json_get_array(j, "responses", &responses, &n_resp, e);
        if (r < 0)
                return bad_response(c, r, e);
        if (ok) {
                if (*ret_revision <= 0)
                        return bad_response(c, se_error_set(e, -EBADMSG, "transaction without a revision"), e);
                return 1;
        }
        if (n_resp != n)
                return bad_response(c, se_error_set(e, -EBADMSG, "%zu responses for %zu keys", n_resp, n), e);
        for (size_t i = 0; i < n; i++) {
                json_object *op = json_object_array_get_idx(responses, i), *range;
                se_kv_list l = {};

                r = json_get_object(op, "response_range", &range, e);
                if (r >= 0 && !range)
                        r = se_error_set(e, -EBADMSG, "failure branch without response_range");
                if (r >= 0)
                        r = kvs_from_json(range, &l, e);
                if (r < 0)
                        return bad_response(c, r, e);
                items[i]->current = 0;
                items[i]->value_matches = false;
                if (l.n_items > 0) {
                        if (l.n_items > 1 || !streq(l.items[0].key, items[i]->key)) {
                                se_kv_list_done(&l);
                                return bad_response(c, se_error_set(e, -EBADMSG, "range of one key returned another"),
                                                    e);
                        }
                        items[i]->current = l.items[0].mod_revision;
                        items[i]->value_matches =
                                items[i]->op == TXN_PUT && l.items[0].value_size == items[i]->value_size &&
                                (items[i]->value_size == 0 ||
                                 memcmp(l.items[0].value, items[i]->value, items[i]->value_size) == 0);
                }
                se_kv_list_done(&l);
        }
        return 0;
}

typedef enum txn_result {
        TXN_PENDING,
        TXN_WRITTEN,
        TXN_CONFLICT,
} txn_result;

/* Compare-and-swap of a set of distinct keys. The compares of a txn are all-or-nothing, so after
 * a failure the keys that no longer match are set aside as conflicts (the failure branch shows
 * every key at the same revision) and the rest retried together; each round drops at least one
 * key. res[i] and rev[i] receive each key's outcome. Returns the number written. */
static int txn_batch(etcd *c, txn_item *items, size_t n, txn_result *res, int64_t *rev, se_error *e) {
        _cleanup_free_ txn_item **active = calloc(n, sizeof(txn_item *));
        _cleanup_free_ size_t *idx = calloc(n, sizeof(size_t));
        size_t n_active = 0;
        int written = 0, r;

        if (!active || !idx)
                return se_error_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                res[i] = TXN_PENDING;
                rev[i] = 0;
                idx[n_active] = i;
                active[n_active++] = &items[i];
        }

        while (n_active > 0) {
                int64_t revision = 0;
                size_t kept = 0;

                r = txn_once(c, active, n_active, &revision, e);
                if (r < 0)
                        return r;
                if (r > 0) {
                        for (size_t k = 0; k < n_active; k++) {
                                res[idx[k]] = TXN_WRITTEN;
                                rev[idx[k]] = revision;
                        }
                        return written + (int) n_active;
                }
                for (size_t k = 0; k < n_active; k++) {
                        txn_item *t = active[k];

                        if (t->current == t->expected) {
                                idx[kept] = idx[k];
                                active[kept++] = t;
                        } else if (c->retried && t->value_matches && t->current > t->expected) {
                                /* our own write landed before the connection broke */
                                res[idx[k]] = TXN_WRITTEN;
                                rev[idx[k]] = t->current;
                                written++;
                        } else {
                                res[idx[k]] = TXN_CONFLICT;
                                rev[idx[k]] = t->current;
                        }
                }
                if (kept == n_active)
                        return bad_response(
                                c, se_error_set(e, -EBADMSG, "transaction failed although every compare holds"), e);
                n_active = kept;
        }
        return written;
}

static bool batch_has_key(const se_kv_update *u, size_t from, size_t to, const char *key) {
        for (size_t i = from; i < to; i++)
                if (streq(u[i].key, key))
                        return true;
        return false;
}

static int etcd_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        etcd *c = impl;
        _cleanup_free_ txn_item *items = NULL;
        _cleanup_free_ txn_result *res = NULL;
        _cleanup_free_ int64_t *rev = NULL;
        size_t cap = MIN(n, (size_t) ETCD_MAX_TXN_OPS);
        int total = 0, r;

        for (size_t i = 0; i < n; i++) {
                if (isempty(u[i].key) || (!u[i].value && u[i].value_size > 0) || u[i].expected_mod_revision < 0)
                        return se_error_set(e, -EINVAL, "update %zu: invalid key, value or revision", i);
                u[i].conflict = false;
                u[i].new_revision = 0;
        }
        items = calloc(cap, sizeof(*items));
        res = calloc(cap, sizeof(*res));
        rev = calloc(cap, sizeof(*rev));
        if (!items || !res || !rev)
                return se_error_set(e, -ENOMEM, "out of memory");

        for (size_t i = 0; i < n;) {
                size_t j = i, bytes = 0;

                /* etcd refuses a txn that names a key twice; such an update waits for the next one */
                while (j < n && j - i < cap && (j == i || bytes + u[j].value_size <= ETCD_MAX_TXN_VALUE_BYTES) &&
                       !batch_has_key(u, i, j, u[j].key)) {
                        bytes += u[j].value_size;
                        j++;
                }
                for (size_t k = i; k < j; k++)
                        items[k - i] = (txn_item){
                                .key = u[k].key,
                                .value = u[k].value,
                                .value_size = u[k].value_size,
                                .expected = u[k].expected_mod_revision,
                                .op = TXN_PUT,
                        };
                r = txn_batch(c, items, j - i, res, rev, e);
                if (r < 0)
                        return r;
                for (size_t k = i; k < j; k++) {
                        u[k].conflict = res[k - i] == TXN_CONFLICT;
                        u[k].new_revision = res[k - i] == TXN_WRITTEN ? rev[k - i] : 0;
                }
                total += r;
                i = j;
        }
        return total;
}

const se_store_ops se_store_etcd_ops = {
        .kind = SE_STORE_ETCD,
        .open = etcd_open,
        .close = etcd_close,
        .range = etcd_range,
        .count = etcd_count,
        .get = etcd_get,
        .update = etcd_update,
};

/* ---- se-etcd.h ----------------------------------------------------------------------------- */

static int etcd_from_store(se_store *s, etcd **ret, se_error *e) {
        if (!s)
                return se_error_set(e, -EINVAL, "no datastore");
        if (s->ops->kind != SE_STORE_ETCD)
                return se_error_set(e, -EOPNOTSUPP, "this operation needs an etcd datastore");
        *ret = s->impl;
        return 0;
}

_public_ int se_etcd_put_cas_lease(se_store *s, const char *key, const void *value, size_t size,
                                   int64_t expected_mod_revision, int64_t lease, int64_t *ret_new_revision,
                                   int64_t *ret_current_revision, se_error *e) {
        txn_item t = {
                .key = key,
                .value = value,
                .value_size = size,
                .expected = expected_mod_revision,
                .lease = lease,
                .op = TXN_PUT,
        };
        txn_result res;
        int64_t rev;
        etcd *c = NULL;
        int r;

        r = etcd_from_store(s, &c, e);
        if (r < 0)
                return r;
        if (isempty(key) || (!value && size > 0) || expected_mod_revision < 0 || lease < 0)
                return se_error_set(e, -EINVAL, "put: invalid key, value, revision or lease");
        r = txn_batch(c, &t, 1, &res, &rev, e);
        if (r < 0)
                return r;
        if (res == TXN_WRITTEN) {
                if (ret_new_revision)
                        *ret_new_revision = rev;
                return 1;
        }
        if (ret_current_revision)
                *ret_current_revision = rev;
        return 0;
}

_public_ int se_etcd_put_cas(se_store *s, const char *key, const void *value, size_t size,
                             int64_t expected_mod_revision, int64_t *ret_new_revision, se_error *e) {
        return se_etcd_put_cas_lease(s, key, value, size, expected_mod_revision, 0, ret_new_revision, NULL, e);
}

_public_ int se_etcd_delete_cas(se_store *s, const char *key, int64_t expected_mod_revision, se_error *e) {
        txn_item t = {
                .key = key,
                .expected = expected_mod_revision,
                .op = TXN_DELETE,
        };
        txn_result res;
        int64_t rev;
        etcd *c = NULL;
        int r;

        r = etcd_from_store(s, &c, e);
        if (r < 0)
                return r;
        if (isempty(key) || expected_mod_revision <= 0)
                return se_error_set(e, -EINVAL, "delete: invalid key or revision");
        r = txn_batch(c, &t, 1, &res, &rev, e);
        if (r < 0)
                return r;
        /* after a retry, "already gone" may be our own delete; either way the key is gone */
        if (res == TXN_CONFLICT && rev == 0 && c->retried)
                return 1;
        return res == TXN_WRITTEN ? 1 : 0;
}

static int lease_call(etcd *c, const char *path, const char *text, json_object **ret, se_error *e) {
        se_buf body = {.max = 4096};
        int r;

        r = se_buf_append_str(&body, text);
        if (r < 0) {
                se_buf_free(&body);
                return se_error_set(e, r, "out of memory");
        }
        r = etcd_call(c, path, &body, ret, e);
        se_buf_free(&body);
        return r;
}

_public_ int se_etcd_lease_grant(se_store *s, int64_t ttl_sec, int64_t *ret_id, int64_t *ret_ttl, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        json_object *err;
        int64_t id, ttl;
        etcd *c = NULL;
        int r;

        r = etcd_from_store(s, &c, e);
        if (r < 0)
                return r;
        if (ttl_sec <= 0)
                return se_error_set(e, -EINVAL, "lease TTL must be positive");
        char text[64];

        (void) snprintf(text, sizeof(text), "{\"TTL\":\"%" PRId64 "\"}", ttl_sec);
        r = lease_call(c, "/v3/lease/grant", text, &j, e);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(j, "error", &err) && json_object_is_type(err, json_type_string) &&
            json_object_get_string_len(err) > 0)
                return se_error_set(e, -EIO, "etcd at %s: lease grant: %s", current_url(c),
                                    json_object_get_string(err));
        r = json_get_int64(j, "ID", &id, e);
        if (r >= 0)
                r = json_get_int64(j, "TTL", &ttl, e);
        if (r < 0)
                return bad_response(c, r, e);
        if (id == 0 || ttl <= 0)
                return bad_response(c, se_error_set(e, -EBADMSG, "lease grant without ID or TTL"), e);
        if (ret_id)
                *ret_id = id;
        if (ret_ttl)
                *ret_ttl = ttl;
        return 0;
}

_public_ int se_etcd_lease_keepalive(se_store *s, int64_t id, int64_t *ret_ttl, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        json_object *result, *err;
        int64_t ttl;
        etcd *c = NULL;
        int r;

        r = etcd_from_store(s, &c, e);
        if (r < 0)
                return r;
        /* a server stream through the gateway: one {"result":…} or {"error":…} per message */
        char text[64];

        (void) snprintf(text, sizeof(text), "{\"ID\":\"%" PRId64 "\"}", id);
        r = lease_call(c, "/v3/lease/keepalive", text, &j, e);
        if (r < 0)
                return r;
        r = json_get_object(j, "error", &err, e);
        if (r >= 0 && err) {
                int64_t code = 0;
                json_object *m;

                (void) json_get_int64(err, "grpc_code", &code, NULL);
                if (code == 0)
                        (void) json_get_int64(err, "code", &code, NULL);
                return se_error_set(e, code ? grpc_code_to_errno((int) code) : -EIO, "etcd at %s: lease keepalive: %s",
                                    current_url(c),
                                    json_object_object_get_ex(err, "message", &m) ? json_object_get_string(m)
                                                                                  : "error");
        }
        if (r >= 0)
                r = json_get_object(j, "result", &result, e);
        if (r >= 0 && !result)
                r = se_error_set(e, -EBADMSG, "keepalive without result");
        if (r >= 0)
                r = json_get_int64(result, "TTL", &ttl, e);
        if (r < 0)
                return bad_response(c, r, e);
        if (ttl <= 0)
                return se_error_set(e, -ENOENT, "etcd lease %" PRIx64 " has expired or was revoked", (uint64_t) id);
        if (ret_ttl)
                *ret_ttl = ttl;
        return 0;
}

_public_ int se_etcd_lease_revoke(se_store *s, int64_t id, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        etcd *c = NULL;
        int r;

        r = etcd_from_store(s, &c, e);
        if (r < 0)
                return r;
        char text[64];

        (void) snprintf(text, sizeof(text), "{\"ID\":\"%" PRId64 "\"}", id);
        r = lease_call(c, "/v3/lease/revoke", text, &j, e);
        if (r == -ENOENT) {
                /* "requested lease not found": expired or revoked already */
                if (e)
                        se_error_done(e);
                return 0;
        }
        return r < 0 ? r : 0;
}

_public_ const char *se_etcd_current_endpoint(se_store *s) {
        etcd *c = NULL;

        if (etcd_from_store(s, &c, NULL) < 0)
                return NULL;
        return current_url(c);
}
