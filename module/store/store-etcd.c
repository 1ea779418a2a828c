/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd v3 through its JSON gRPC gateway (etcd ≥ 3.4): POST /v3/kv/{range,txn}, base64 keys and
 * values, int64 as strings, zero fields omitted. Writes are kube-apiserver's optimistic
 * transactions (compare mod_revision, put, else range), batched within --max-txn-ops; the txns of
 * one update are sent several at a time (libcurl's multi interface).
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
/* Transactions of one update sent at once (each on its own connection, or multiplexed over
 * HTTP/2): enough to keep a 3-member cluster busy instead of waiting a round trip per txn, and a
 * bound on memory (each carries at most ETCD_MAX_TXN_VALUE_BYTES of values). */
#define ETCD_MAX_IN_FLIGHT 4

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

/* One easy handle with its response buffer. */
typedef struct xfer {
        CURL *curl;
        se_buf resp;
        int write_error;
        char errbuf[CURL_ERROR_SIZE];
} xfer;

/* the handle of se_store_read_ahead()'s range */
#define XF_AHEAD (1 + ETCD_MAX_IN_FLIGHT)

typedef struct etcd {
        /* xf[0] serves one call at a time (curl_easy_perform); xf[1..ETCD_MAX_IN_FLIGHT] the
         * transactions in flight through multi; xf[XF_AHEAD] a range read ahead */
        xfer xf[2 + ETCD_MAX_IN_FLIGHT];
        CURLM *multi;
        struct {
                se_buf body;
                char *prefix, *start; /* as the caller will ask; start NULL = from prefix */
                size_t limit;
                size_t ep;
                bool sent, done;
                CURLcode result;
        } ahead;
        struct curl_slist *headers;
        char **urls;
        char **shown; /* urls without userinfo: the only form any message uses */
        size_t n_urls;
        size_t current; /* the endpoint that answered last; tried first */
        uint64_t timeout_usec;
        bool retried; /* the last call was sent more than once: a write may have landed already */
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
        xfer *x = userdata;
        size_t n = size * nmemb;
        int r;

        r = se_buf_append(&x->resp, ptr, n);
        if (r < 0) {
                x->write_error = r;
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

/* Points x at a POST of body (which must outlive the transfer) to one endpoint. */
static int xfer_prepare(etcd *c, xfer *x, size_t idx, const char *path, const se_buf *body, se_error *e) {
        _cleanup_free_ char *url = NULL;

        if (asprintf(&url, "%s%s", c->urls[idx], path) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");
        se_buf_clear(&x->resp);
        x->write_error = 0;
        x->errbuf[0] = 0;
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_URL, url);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, (const char *) body->data);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body->len);
        return 0;
}

/* The outcome of a finished transfer (cc its result). On failure *ret_failover says whether
 * another endpoint may do better (connection trouble, 503/Unavailable); the message always names
 * the URL. */
static int xfer_result(etcd *c, xfer *x, size_t idx, const char *path, CURLcode cc, json_object **ret,
                       bool *ret_failover, se_error *e) {
        const char *base = c->shown[idx], *why = NULL;
        json_object *j = NULL, *msg;
        long status = 0;
        int r;

        *ret_failover = false;
        if (cc != CURLE_OK) {
                const char *detail = x->errbuf[0] ? x->errbuf : sym_curl_easy_strerror(cc);

                if (cc == CURLE_WRITE_ERROR && x->write_error == -E2BIG)
                        return se_error_set(e, -E2BIG, "response from etcd at %s exceeds %u MiB", base,
                                            ETCD_MAX_RESPONSE / (1024u * 1024u));
                if (cc == CURLE_WRITE_ERROR && x->write_error < 0)
                        return se_error_set(e, x->write_error, "out of memory reading the response of %s", base);
                r = curl_code_to_errno(cc, startswith(base, "https://"), detail);
                *ret_failover = r != -ENOMEM && r != -EINVAL;
                return se_error_set(e, r, "etcd at %s: %s%s", base, detail, r == -EPROTO ? tls_hint(cc, detail) : "");
        }
        (void) sym_curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);

        r = parse_json(x->resp.data, x->resp.len, &j, &why);
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

/* One POST to one endpoint, on the handle for single calls. */
static int etcd_attempt(etcd *c, size_t idx, const char *path, const se_buf *body, json_object **ret,
                        bool *ret_failover, se_error *e) {
        xfer *x = &c->xf[0];
        int r;

        *ret_failover = false;
        r = xfer_prepare(c, x, idx, path, body, e);
        if (r < 0)
                return r;
        return xfer_result(c, x, idx, path, sym_curl_easy_perform(x->curl), ret, ret_failover, e);
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

static void ahead_drop(etcd *c);

static int etcd_call(etcd *c, const char *path, const se_buf *body, json_object **ret, se_error *e) {
        /* Leader elections take a second or two: calls that met a live but leaderless (or slow)
         * cluster are retried for at least this long. */
        uint64_t retry_until = se_now_usec(CLOCK_MONOTONIC) + MAX(c->timeout_usec, ETCD_MIN_RETRY_USEC);
        unsigned attempts = 0;
        int r, best = 0;
        se_buf summary = {.max = 64 * 1024};

        /* any other request between a read ahead and its range could have observed something
         * the early read did not see */
        ahead_drop(c);
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
        if (c->multi)
                ahead_drop(c);
        se_buf_free(&c->ahead.body);
        for (size_t i = 0; i < ELEMENTSOF(c->xf); i++) {
                if (c->xf[i].curl) {
                        if (c->multi && i > 0)
                                (void) sym_curl_multi_remove_handle(c->multi, c->xf[i].curl);
                        sym_curl_easy_cleanup(c->xf[i].curl);
                }
                se_buf_free(&c->xf[i].resp);
        }
        if (c->multi)
                (void) sym_curl_multi_cleanup(c->multi);
        if (c->headers)
                sym_curl_slist_free_all(c->headers);
        for (size_t i = 0; i < c->n_urls; i++) {
                free(c->urls[i]);
                free(c->shown[i]);
        }
        free(c->urls);
        free(c->shown);
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

static int xfer_init(etcd *c, xfer *x, const se_store_options *o, se_error *e) {
        x->resp.max = ETCD_MAX_RESPONSE;
        x->curl = sym_curl_easy_init();
        if (!x->curl)
                return se_error_set(e, -ENOMEM, "libcurl: cannot create a handle");
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_ERRORBUFFER, x->errbuf);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, write_cb);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_PRIVATE, x);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, c->headers);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_POST, 1L);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_PROTOCOLS_STR, "http,https");
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_FOLLOWLOCATION, 0L);
        /* etcd is never reached through http_proxy from the environment */
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_PROXY, "");
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_TCP_KEEPALIVE, 1L);
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, (long) MAX(c->timeout_usec / 1000, 1));
        (void) sym_curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS,
                                    (long) MIN((long) MAX(c->timeout_usec / 1000, 1), ETCD_CONNECT_TIMEOUT_MS));
        if (!isempty(o->cafile))
                (void) sym_curl_easy_setopt(x->curl, CURLOPT_CAINFO, o->cafile);
        if (!isempty(o->certfile))
                (void) sym_curl_easy_setopt(x->curl, CURLOPT_SSLCERT, o->certfile);
        if (!isempty(o->keyfile))
                (void) sym_curl_easy_setopt(x->curl, CURLOPT_SSLKEY, o->keyfile);
        return 0;
}

static int etcd_open(const se_store_options *o, void **ret_impl, se_error *e) {
        etcd *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return se_error_set(e, -ENOMEM, "out of memory");
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

        for (size_t i = 0; i < ELEMENTSOF(c->xf); i++) {
                r = xfer_init(c, &c->xf[i], o, e);
                if (r < 0)
                        goto fail;
        }

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

static int range_body(se_buf *b, const char *from, const char *end, size_t limit) {
        int r;

        se_buf_clear(b);
        /* No sort_order: etcd returns keys ascending anyway, and an explicit sort makes it read the
         * whole range before applying the limit. */
        r = se_buf_append_str(b, "{");
        if (r >= 0)
                r = buf_append_b64(b, "key", from, strlen(from));
        if (r >= 0)
                r = se_buf_append_str(b, ",");
        if (r >= 0)
                r = append_range_end(b, end);
        if (r >= 0)
                r = se_buf_printf(b, ",\"limit\":\"%zu\"}", limit);
        return r;
}

static int range_result(etcd *c, json_object *j, const char *from, const char *end, size_t limit, se_kv_list *ret,
                        se_error *e) {
        int r;

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
                        return bad_response(c, se_error_set(e, -EBADMSG, "range result outside the range asked for"),
                                            e);
                }
        return 0;
}

/* The first key of a range and its end; *ret_from NULL when the range is empty. */
static int range_bounds(const char *prefix, const char *start, const char **ret_from, char **ret_end, se_error *e) {
        const char *from;
        int r;

        r = prefix_end(prefix, ret_end, e);
        if (r < 0)
                return r;
        from = start && strcmp(start, prefix) > 0 ? start : prefix;
        *ret_from = *ret_end && strcmp(from, *ret_end) >= 0 ? NULL : from;
        return 0;
}

/* ---- read ahead ---------------------------------------------------------------------------- */

static int ensure_multi(etcd *c) {
        if (!c->multi)
                c->multi = sym_curl_multi_init();
        return c->multi ? 0 : -ENOMEM;
}

static void ahead_drop(etcd *c) {
        if (c->ahead.sent && !c->ahead.done)
                (void) sym_curl_multi_remove_handle(c->multi, c->xf[XF_AHEAD].curl);
        c->ahead.sent = c->ahead.done = false;
        free(c->ahead.prefix);
        free(c->ahead.start);
        c->ahead.prefix = c->ahead.start = NULL;
}

/* A message of multi about the read ahead; false if it is about another transfer. */
static bool ahead_finished(etcd *c, CURLMsg *m) {
        if (m->msg != CURLMSG_DONE || m->easy_handle != c->xf[XF_AHEAD].curl || !c->ahead.sent || c->ahead.done)
                return false;
        (void) sym_curl_multi_remove_handle(c->multi, m->easy_handle);
        c->ahead.result = m->data.result;
        c->ahead.done = true;
        return true;
}

/* Sends the range the caller says it asks next (see se_store_read_ahead()); it travels while the
 * caller's updates are in flight. Only a hint: any failure just leaves nothing read ahead. */
static void etcd_read_ahead(void *impl, const char *prefix, const char *start, size_t limit) {
        etcd *c = impl;
        _cleanup_free_ char *end = NULL;
        const char *from;
        int running;

        ahead_drop(c);
        if (!prefix || ensure_multi(c) < 0 || range_bounds(prefix, start, &from, &end, NULL) < 0 || !from)
                return;
        c->ahead.body.max = ETCD_MAX_REQUEST;
        c->ahead.prefix = strdup(prefix);
        c->ahead.start = start ? strdup(start) : NULL;
        c->ahead.limit = limit;
        c->ahead.ep = c->current;
        if (!c->ahead.prefix || (start && !c->ahead.start) ||
            range_body(&c->ahead.body, from, end, limit ?: ETCD_DEFAULT_PAGE) < 0 ||
            xfer_prepare(c, &c->xf[XF_AHEAD], c->ahead.ep, "/v3/kv/range", &c->ahead.body, NULL) < 0 ||
            sym_curl_multi_add_handle(c->multi, c->xf[XF_AHEAD].curl) != CURLM_OK) {
                ahead_drop(c);
                return;
        }
        c->ahead.sent = true;
        (void) sym_curl_multi_perform(c->multi, &running);
}

/* The response read ahead, if it was for exactly this range and arrived whole. */
static int ahead_take(etcd *c, const char *prefix, const char *start, size_t limit, json_object **ret) {
        bool failover;

        if (!c->ahead.sent || !streq(c->ahead.prefix, prefix) ||
            !(c->ahead.start && start ? streq(c->ahead.start, start) : c->ahead.start == start) ||
            c->ahead.limit != limit)
                return -ESTALE;
        while (!c->ahead.done) {
                CURLMsg *m;
                int running = 0, queued;

                if (sym_curl_multi_perform(c->multi, &running) != CURLM_OK)
                        return -EIO;
                while ((m = sym_curl_multi_info_read(c->multi, &queued)))
                        (void) ahead_finished(c, m);
                /* the transfer has its own CURLOPT_TIMEOUT_MS */
                if (!c->ahead.done && sym_curl_multi_poll(c->multi, NULL, 0, 1000, NULL) != CURLM_OK)
                        return -EIO;
        }
        if (xfer_result(c, &c->xf[XF_AHEAD], c->ahead.ep, "/v3/kv/range", c->ahead.result, ret, &failover, NULL) < 0)
                return -EIO;
        c->current = c->ahead.ep;
        return 0;
}

static int etcd_range(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret, se_error *e) {
        etcd *c = impl;
        _cleanup_free_ char *end = NULL;
        const char *from;
        se_buf body = {.max = ETCD_MAX_REQUEST};
        size_t asked = limit;
        int r;

        if (!prefix || !ret)
                return se_error_set(e, -EINVAL, "range: no prefix");
        r = range_bounds(prefix, start, &from, &end, e);
        if (r < 0)
                return r;
        if (!from) {
                ahead_drop(c);
                *ret = (se_kv_list){};
                return 0;
        }
        if (limit == 0)
                limit = ETCD_DEFAULT_PAGE;

        if (c->ahead.sent) {
                _cleanup_json_ json_object *j = NULL;

                /* anything but a whole answer to this very range: read it again, the usual way */
                r = ahead_take(c, prefix, start, asked, &j);
                ahead_drop(c);
                if (r >= 0)
                        return range_result(c, j, from, end, limit, ret, e);
        }

        for (;;) {
                _cleanup_json_ json_object *j = NULL;

                r = range_body(&body, from, end, limit);
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
                return range_result(c, j, from, end, limit, ret, e);
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

/* Reads a txn response over items. Returns 1 if it succeeded (*ret_revision = its revision), 0
 * if a compare failed (each item's current mod_revision filled in). */
static int txn_parse(etcd *c, json_object *j, txn_item *const *items, size_t n, int64_t *ret_revision, se_error *e) {
        json_object *header, *responses;
        size_t n_resp;
        bool ok;
        int r;

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

/* One transaction over items: all compares, then all puts/deletes, or a range of each key. As
 * txn_parse(); c->retried says whether it was sent more than once. */
static int txn_once(etcd *c, txn_item *const *items, size_t n, int64_t *ret_revision, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        se_buf body = {.max = ETCD_MAX_REQUEST};
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
        return txn_parse(c, j, items, n, ret_revision, e);
}

typedef enum txn_result {
        TXN_PENDING,
        TXN_WRITTEN,
        TXN_CONFLICT,
} txn_result;

/* Compare-and-swap of a set of distinct keys, one txn (and its retries) at a time. The compares
 * of a txn are all-or-nothing, so after a failure the keys that no longer match are set aside as
 * conflicts (the failure branch shows every key at the same revision) and the rest retried
 * together; each round drops at least one key. res[i] and rev[i] receive each key's outcome. */
typedef struct txn_group {
        txn_item *items;
        size_t n;
        txn_result *res;
        int64_t *rev;
        txn_item **active; /* still to write; active[k] is items[idx[k]] */
        size_t *idx;
        size_t n_active;
        int written;
        /* the attempt in flight failed where another endpoint may do better: it may have landed */
        bool resend;
} txn_group;

static int txn_group_init(txn_group *g, txn_item *items, size_t n, txn_result *res, int64_t *rev, se_error *e) {
        *g = (txn_group){.items = items, .n = n, .res = res, .rev = rev};
        g->active = calloc(n, sizeof(txn_item *));
        g->idx = calloc(n, sizeof(size_t));
        if (!g->active || !g->idx)
                return se_error_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                res[i] = TXN_PENDING;
                rev[i] = 0;
                g->idx[i] = i;
                g->active[i] = &items[i];
        }
        g->n_active = n;
        return 0;
}

static void txn_group_done(txn_group *g) {
        free(g->active);
        free(g->idx);
        g->active = NULL;
        g->idx = NULL;
}

/* Takes in the outcome of one txn over the active keys (ok: txn_parse()'s result; retried: it may
 * have been sent more than once). */
static int txn_group_apply(etcd *c, txn_group *g, int ok, int64_t revision, bool retried, se_error *e) {
        size_t kept = 0;

        if (ok > 0) {
                for (size_t k = 0; k < g->n_active; k++) {
                        g->res[g->idx[k]] = TXN_WRITTEN;
                        g->rev[g->idx[k]] = revision;
                }
                g->written += (int) g->n_active;
                g->n_active = 0;
                return 0;
        }
        for (size_t k = 0; k < g->n_active; k++) {
                txn_item *t = g->active[k];

                if (t->current == t->expected) {
                        g->idx[kept] = g->idx[k];
                        g->active[kept++] = t;
                } else if (retried && t->value_matches && t->current > t->expected) {
                        /* our own write landed before the connection broke */
                        g->res[g->idx[k]] = TXN_WRITTEN;
                        g->rev[g->idx[k]] = t->current;
                        g->written++;
                } else {
                        g->res[g->idx[k]] = TXN_CONFLICT;
                        g->rev[g->idx[k]] = t->current;
                }
        }
        if (kept == g->n_active)
                return bad_response(c, se_error_set(e, -EBADMSG, "transaction failed although every compare holds"),
                                    e);
        g->n_active = kept;
        return 0;
}

/* Sends the group's active keys one txn at a time, with endpoint failover, until none is left. */
static int txn_group_run(etcd *c, txn_group *g, se_error *e) {
        int r;

        while (g->n_active > 0) {
                int64_t revision = 0;

                r = txn_once(c, g->active, g->n_active, &revision, e);
                if (r < 0)
                        return r;
                r = txn_group_apply(c, g, r, revision, c->retried || g->resend, e);
                if (r < 0)
                        return r;
                g->resend = false;
        }
        return 0;
}

/* Returns the number written. */
static int txn_batch(etcd *c, txn_item *items, size_t n, txn_result *res, int64_t *rev, se_error *e) {
        txn_group g;
        int r;

        r = txn_group_init(&g, items, n, res, rev, e);
        if (r >= 0)
                r = txn_group_run(c, &g, e);
        txn_group_done(&g);
        return r < 0 ? r : g.written;
}

/* ---- transactions in flight ---------------------------------------------------------------- */

typedef struct flight {
        se_buf body[1 + ETCD_MAX_IN_FLIGHT];
        txn_group *group[1 + ETCD_MAX_IN_FLIGHT]; /* NULL = the handle is free */
        size_t n_busy;
} flight;

static int multi_fail(CURLMcode mc, se_error *e) {
        return se_error_set(e, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO, "libcurl: %s", sym_curl_multi_strerror(mc));
}

static int flight_send(etcd *c, flight *f, size_t ep, txn_group *g, se_error *e) {
        size_t s = 1;
        CURLMcode mc;
        int r;

        while (f->group[s])
                s++;
        r = txn_body(&f->body[s], g->active, g->n_active);
        if (r < 0)
                return se_error_set(e, r, r == -E2BIG ? "transaction too large" : "cannot build the transaction");
        r = xfer_prepare(c, &c->xf[s], ep, "/v3/kv/txn", &f->body[s], e);
        if (r < 0)
                return r;
        mc = sym_curl_multi_add_handle(c->multi, c->xf[s].curl);
        if (mc != CURLM_OK)
                return multi_fail(mc, e);
        f->group[s] = g;
        f->n_busy++;
        return 0;
}

/* A finished transfer: its group takes in the outcome, or is marked for a resend through
 * etcd_call()'s failover. */
static int flight_done(etcd *c, flight *f, size_t ep, CURLMsg *m, se_error *e) {
        _cleanup_json_ json_object *j = NULL;
        se_error ae = SE_ERROR_NULL;
        xfer *x = NULL;
        txn_group *g;
        int64_t revision = 0;
        bool failover;
        size_t s;
        int r;

        if (ahead_finished(c, m))
                return 0;
        (void) sym_curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &x);
        s = x ? (size_t) (x - c->xf) : 0;
        if (s == 0 || s > ETCD_MAX_IN_FLIGHT || !f->group[s])
                return se_error_set(e, -EIO, "libcurl reported a transfer that was not started");
        (void) sym_curl_multi_remove_handle(c->multi, x->curl);
        g = TAKE_PTR(f->group[s]);
        f->n_busy--;

        r = xfer_result(c, x, ep, "/v3/kv/txn", m->data.result, &j, &failover, &ae);
        if (r < 0 && failover) {
                se_error_done(&ae);
                g->resend = true;
                return 0;
        }
        if (r < 0) {
                r = se_error_set(e, r, "%s", se_error_message(&ae));
                se_error_done(&ae);
                return r;
        }
        r = txn_parse(c, j, g->active, g->n_active, &revision, e);
        if (r < 0)
                return r;
        return txn_group_apply(c, g, r, revision, false, e);
}

/* The first txn of every group with up to ETCD_MAX_IN_FLIGHT in flight, all to the endpoint that
 * answered last; then, one at a time with failover, whatever is left (keys whose txn failed on
 * another key's conflict, txns a failing endpoint dropped). The groups hold distinct keys, so
 * the order in which their txns land does not matter. A failure ends the call with an error,
 * whatever landed already: as a sequential call that fails halfway. */
static int txn_groups_run(etcd *c, txn_group *groups, size_t n_groups, se_error *e) {
        const size_t ep = c->current;
        flight f = {};
        size_t next = 0;
        int r = 0;

        if (ensure_multi(c) < 0)
                return se_error_set(e, -ENOMEM, "libcurl: cannot create a multi handle");
        for (size_t s = 1; s < ELEMENTSOF(f.body); s++)
                f.body[s].max = ETCD_MAX_REQUEST;

        while (r >= 0) {
                CURLMcode mc;
                CURLMsg *m;
                int running = 0, queued;

                while (r >= 0 && next < n_groups && f.n_busy < ETCD_MAX_IN_FLIGHT)
                        r = flight_send(c, &f, ep, &groups[next++], e);
                if (r < 0 || f.n_busy == 0)
                        break;
                mc = sym_curl_multi_perform(c->multi, &running);
                if (mc != CURLM_OK) {
                        r = multi_fail(mc, e);
                        break;
                }
                while (r >= 0 && (m = sym_curl_multi_info_read(c->multi, &queued)))
                        if (m->msg == CURLMSG_DONE)
                                r = flight_done(c, &f, ep, m, e);
                if (r >= 0 && running > 0) {
                        /* each transfer has its own CURLOPT_TIMEOUT_MS */
                        mc = sym_curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
                        if (mc != CURLM_OK)
                                r = multi_fail(mc, e);
                }
        }
        /* after an error: abandon what is still in flight */
        for (size_t s = 1; s < ELEMENTSOF(f.body); s++) {
                if (f.group[s])
                        (void) sym_curl_multi_remove_handle(c->multi, c->xf[s].curl);
                se_buf_free(&f.body[s]);
        }
        for (size_t i = 0; r >= 0 && i < n_groups; i++)
                r = txn_group_run(c, &groups[i], e);
        return r;
}

static bool batch_has_key(const se_kv_update *u, size_t from, size_t to, const char *key) {
        for (size_t i = from; i < to; i++)
                if (streq(u[i].key, key))
                        return true;
        return false;
}

static int cmp_str_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* A key named twice must be written in order: such a call sends one txn at a time. */
static int has_duplicate_key(const se_kv_update *u, size_t n, bool *ret) {
        _cleanup_free_ const char **keys = calloc(n, sizeof(char *));

        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                keys[i] = u[i].key;
        qsort(keys, n, sizeof(char *), cmp_str_ptr);
        *ret = false;
        for (size_t i = 1; i < n; i++)
                if (streq(keys[i - 1], keys[i]))
                        *ret = true;
        return 0;
}

/* Whether an update writes a key in the range read ahead. */
static bool ahead_overlaps(etcd *c, const se_kv_update *u, size_t n) {
        _cleanup_free_ char *end = NULL;
        const char *from;

        if (range_bounds(c->ahead.prefix, c->ahead.start, &from, &end, NULL) < 0 || !from)
                return true;
        for (size_t i = 0; i < n; i++)
                if (strcmp(u[i].key, from) >= 0 && (!end || strcmp(u[i].key, end) < 0))
                        return true;
        return false;
}

static int etcd_update(void *impl, se_kv_update *u, size_t n, se_error *e) {
        etcd *c = impl;
        _cleanup_free_ txn_item *items = NULL;
        _cleanup_free_ txn_result *res = NULL;
        _cleanup_free_ int64_t *rev = NULL;
        _cleanup_free_ txn_group *groups = NULL;
        size_t n_groups = 0;
        bool dup = false;
        int total = 0, r = 0;

        for (size_t i = 0; i < n; i++) {
                if (isempty(u[i].key) || (!u[i].value && u[i].value_size > 0) || u[i].expected_mod_revision < 0)
                        return se_error_set(e, -EINVAL, "update %zu: invalid key, value or revision", i);
                u[i].conflict = false;
                u[i].new_revision = 0;
        }
        if (n == 0)
                return 0;
        items = calloc(n, sizeof(*items));
        res = calloc(n, sizeof(*res));
        rev = calloc(n, sizeof(*rev));
        groups = calloc(n, sizeof(*groups));
        if (!items || !res || !rev || !groups || has_duplicate_key(u, n, &dup) < 0)
                return se_error_set(e, -ENOMEM, "out of memory");

        for (size_t i = 0; i < n; i++)
                items[i] = (txn_item){
                        .key = u[i].key,
                        .value = u[i].value,
                        .value_size = u[i].value_size,
                        .expected = u[i].expected_mod_revision,
                        .op = TXN_PUT,
                };
        for (size_t i = 0; r >= 0 && i < n;) {
                size_t j = i, bytes = 0;

                /* etcd refuses a txn that names a key twice; such an update waits for the next one */
                while (j < n && j - i < ETCD_MAX_TXN_OPS &&
                       (j == i || bytes + u[j].value_size <= ETCD_MAX_TXN_VALUE_BYTES) &&
                       !(dup && batch_has_key(u, i, j, u[j].key))) {
                        bytes += u[j].value_size;
                        j++;
                }
                r = txn_group_init(&groups[n_groups++], items + i, j - i, res + i, rev + i, e);
                i = j;
        }
        if (r >= 0 && c->ahead.sent && ahead_overlaps(c, u, n))
                ahead_drop(c); /* the range read ahead must not miss our own writes */
        if (r >= 0 && !dup && n_groups > 1)
                r = txn_groups_run(c, groups, n_groups, e);
        else
                for (size_t i = 0; r >= 0 && i < n_groups; i++)
                        r = txn_group_run(c, &groups[i], e);
        for (size_t i = 0; i < n_groups; i++) {
                total += groups[i].written;
                txn_group_done(&groups[i]);
        }
        if (r < 0)
                return r;
        for (size_t k = 0; k < n; k++) {
                u[k].conflict = res[k] == TXN_CONFLICT;
                u[k].new_revision = res[k] == TXN_WRITTEN ? rev[k] : 0;
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
        .read_ahead = etcd_read_ahead,
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
