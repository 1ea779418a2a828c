/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A compacted revision during paging (issue 9, datastore faults): the etcd backend reads each page
 * at the current revision, so compacting etcd between two pages must neither fail the pass nor
 * make it skip or repeat a key. The store's range operation is wrapped to write new revisions and
 * compact to the current revision right after the first page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib-etcd.h"
#include "reencrypt-helpers.h"
#include "se-store.h"
#include "store-internal.h"
#include "testlib.h"

#define N_KEYS 1000u
#define PAGE   64u

static tl_etcd *cluster;
static const se_store_ops *real_ops;
static se_store_ops wrapped_ops;
static unsigned n_ranges, n_compactions;
static unsigned char *seen; /* per key index: times returned by a range */

static unsigned key_index(const char *key) {
        const char *dash = strrchr(key, '-');

        ck_assert_ptr_nonnull(dash);
        return (unsigned) strtoul(dash + 1, NULL, 10);
}

/* New revisions (other keys, and keys of later pages), then compaction to the current revision. */
static void write_and_compact(void) {
        _cleanup_free_ char *out = NULL, *args = NULL;
        char *rev;
        int r;

        for (unsigned i = 0; i < 3; i++) {
                free(args);
                ck_assert_int_ge(asprintf(&args, "put /registry/configmaps/ns/cm-%u value-%u-%u", i, n_compactions, i), 0);
                ck_assert_int_eq(tl_etcdctl(cluster, args, NULL), 0);
        }
        /* a key the pass has not read yet gets a newer (plaintext) revision */
        free(args);
        ck_assert_int_ge(asprintf(&args, "put /registry/secrets/ns/secret-%05u 'k8s-plain-newer-%u'", N_KEYS - 1,
                                  n_compactions),
                         0);
        ck_assert_int_eq(tl_etcdctl(cluster, args, NULL), 0);
        r = tl_etcdctl(cluster, "get /registry/configmaps/ns/cm-0 -w json", &out);
        ck_assert_int_eq(r, 0);
        rev = strstr(out, "\"revision\":");
        ck_assert_ptr_nonnull(rev);
        free(args);
        ck_assert_int_ge(asprintf(&args, "compact %lld", strtoll(rev + strlen("\"revision\":"), NULL, 10)), 0);
        free(out);
        out = NULL;
        r = tl_etcdctl(cluster, args, &out);
        ck_assert_msg(r == 0, "etcdctl %s: %s", args, out ? out : "");
        n_compactions++;
}

static int range_compacting(void *impl, const char *prefix, const char *start, size_t limit, se_kv_list *ret,
                            se_error *e) {
        int r = real_ops->range(impl, prefix, start, limit, ret, e);

        if (r < 0 || !streq(prefix, RT_PREFIX))
                return r;
        for (size_t i = 0; i < ret->n_items; i++) {
                unsigned k;

                /* a pass may restart a page at the last key it handled (start is inclusive) */
                if (start && streq(start, ret->items[i].key))
                        continue;
                k = key_index(ret->items[i].key);
                ck_assert_uint_lt(k, N_KEYS);
                seen[k]++;
        }
        if (++n_ranges == 1)
                write_and_compact();
        return r;
}

static se_store *open_wrapped(void) {
        se_store_options o = {.endpoint = cluster->endpoints};
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;

        ck_assert_msg(se_store_open(&o, &s, &e) == 0, "open: %s", se_error_message(&e));
        real_ops = s->ops;
        wrapped_ops = *real_ops;
        wrapped_ops.range = range_compacting;
        s->ops = &wrapped_ops;
        n_ranges = 0;
        memset(seen, 0, N_KEYS);
        return s;
}

static void setup(void) {
        se_store_options o = {};
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        se_kv_update *u;
        char **vals;

        cluster = tl_etcd_start(1);
        ck_assert_msg(cluster, "cannot start an etcd member");
        seen = rt_calloc(N_KEYS, 1);
        o.endpoint = cluster->endpoints;
        ck_assert_int_eq(se_store_open(&o, &s, &e), 0);
        u = rt_calloc(N_KEYS, sizeof(*u));
        vals = rt_calloc(N_KEYS, sizeof(char *));
        for (unsigned i = 0; i < N_KEYS; i++) {
                char *k;

                ck_assert_int_ge(asprintf(&k, RT_PREFIX "ns/secret-%05u", i), 0);
                ck_assert_int_ge(asprintf(&vals[i], "k8s-plain-secret-%u", i), 0);
                u[i] = (se_kv_update){.key = k, .value = (const uint8_t *) vals[i], .value_size = strlen(vals[i])};
        }
        ck_assert_int_eq(se_store_update(s, u, N_KEYS, &e), (int) N_KEYS);
        for (unsigned i = 0; i < N_KEYS; i++) {
                free((char *) u[i].key);
                free(vals[i]);
        }
        free(u);
        free(vals);
        se_store_close(s);
        se_error_done(&e);
}

static void teardown(void) {
        cluster = tl_etcd_free(cluster);
        free(seen);
        seen = NULL;
}

static void assert_each_once(const char *what) {
        for (unsigned i = 0; i < N_KEYS; i++)
                ck_assert_msg(seen[i] == 1, "%s: key %u returned %u times", what, i, seen[i]);
        ck_assert_uint_gt(n_ranges, N_KEYS / PAGE);
}

START_TEST(range_after_compaction) {
        se_store *s = open_wrapped();
        se_error e = SE_ERROR_NULL;
        _cleanup_free_ char *start = NULL;
        unsigned total = 0;

        for (;;) {
                se_kv_list l = {};

                ck_assert_msg(se_store_range(s, RT_PREFIX, start, PAGE, &l, &e) == 0, "page after compaction: %s",
                              se_error_message(&e));
                if (l.n_items == 0) {
                        se_kv_list_done(&l);
                        break;
                }
                total += l.n_items;
                /* the next page starts at the smallest key after the last one */
                free(start);
                ck_assert_int_ge(asprintf(&start, "%s\x01", l.items[l.n_items - 1].key), 0);
                se_kv_list_done(&l);
        }
        ck_assert_uint_eq(n_compactions, 1);
        ck_assert_uint_eq(total, N_KEYS);
        assert_each_once("range");
        se_store_close(s);
        se_error_done(&e);
}
END_TEST

START_TEST(reencrypt_and_verify_across_compaction) {
        se_config *c = rt_config("aescbc:new;identity");
        se_reencrypt_options ro = {.page_size = PAGE, .batch_size = PAGE};
        se_verify_options vo = {.page_size = PAGE};
        se_reencrypt_result res = {};
        se_verify_report rep = {};
        se_error e = SE_ERROR_NULL;
        se_store *s = open_wrapped();
        int r;

        r = se_reencrypt(s, c, &ro, &res, &e);
        ck_assert_msg(r == 0, "reencrypt across a compaction: %s", se_error_message(&e));
        ck_assert_uint_ge(n_compactions, 1);
        assert_each_once("reencrypt");
        ck_assert_uint_eq(res.done, N_KEYS);
        ck_assert_uint_eq(res.rewritten + res.skipped + res.conflicts, N_KEYS);
        se_reencrypt_result_done(&res);
        se_store_close(s);

        s = open_wrapped();
        r = se_verify(s, c, &vo, &rep, &e);
        ck_assert_msg(r == 0, "verify across a compaction: %s", se_error_message(&e));
        ck_assert_uint_ge(n_compactions, 2);
        assert_each_once("verify");
        ck_assert_uint_eq(rep.total, N_KEYS);
        ck_assert_uint_eq(rep.unreadable, 0);
        /* only the key rewritten in plaintext after its page was read may not be current */
        ck_assert_uint_le(rep.not_current, 1);
        se_verify_report_done(&rep);
        se_store_close(s);
        se_config_free(c);
        se_error_done(&e);
}
END_TEST

static Suite *compaction_suite(void) {
        Suite *s = suite_create("etcd-compaction");
        TCase *tc = tcase_create("paging");

        if (!tl_etcd_available()) {
                tcase_add_test(tc, range_after_compaction); /* fails loudly: etcd is a test dependency */
                suite_add_tcase(s, tc);
                return s;
        }
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, range_after_compaction);
        tcase_add_test(tc, reencrypt_and_verify_across_compaction);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(compaction_suite)
