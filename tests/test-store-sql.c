/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The PostgreSQL and MySQL/MariaDB backends without a server: endpoint forms, passwords kept out
 * of messages, key-prefix patterns, and the errors for an endpoint nobody answers. The backends'
 * behaviour against real servers is tests/integration/test-store-pgsql.sh and test-store-mysql.sh.
 */
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "se-util.h"
#include "se-store.h"
#include "store-internal.h"
#include "testlib.h"

static void check_redact(const char *endpoint, const char *want) {
        _cleanup_free_ char *got = se_url_strip_userinfo(endpoint);

        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, want);
}

START_TEST(test_redact_endpoint) {
        check_redact("postgres://kine:s3cret@db.example:5432/kubernetes?sslmode=verify-full",
                     "postgres://db.example:5432/kubernetes?sslmode=verify-full");
        check_redact("postgresql://kine:pa@ss@10.0.0.1/k3s", "postgresql://10.0.0.1/k3s");
        check_redact("mysql://root:pw@tcp(127.0.0.1:3306)/kine", "mysql://tcp(127.0.0.1:3306)/kine");
        check_redact("mysql://root:p/w@tcp(127.0.0.1:3306)/kine", "mysql://tcp(127.0.0.1:3306)/kine");
        /* userinfo without a password goes too */
        check_redact("postgres://kine@db/kubernetes", "postgres://db/kubernetes");
        check_redact("mysql://tcp(127.0.0.1:3306)/kine", "mysql://tcp(127.0.0.1:3306)/kine");
        check_redact("https://10.0.0.1:2379,https://10.0.0.2:2379", "https://10.0.0.1:2379,https://10.0.0.2:2379");
        check_redact("sqlite:///var/lib/rancher/k3s/server/db/state.db?_journal=WAL",
                     "sqlite:///var/lib/rancher/k3s/server/db/state.db?_journal=WAL");
        /* an '@' in the path or after the query is not the end of a password */
        check_redact("https://h1:2379/x@y", "https://h1:2379/x@y");
        check_redact("postgres://db/k?application_name=a@b", "postgres://db/k?application_name=a@b");
}
END_TEST

static void check_pattern(const char *prefix, const char *want) {
        _cleanup_free_ char *got = se_like_prefix_pattern(prefix);

        ck_assert_ptr_nonnull(got);
        ck_assert_str_eq(got, want);
}

START_TEST(test_like_pattern) {
        check_pattern("/registry/secrets/", "/registry/secrets/%");
        check_pattern("", "%");
        /* LIKE's wildcards in a key are literal characters of the prefix */
        check_pattern("/registry/my_crd/", "/registry/my\\_crd/%");
        check_pattern("/a%b\\c/", "/a\\%b\\\\c/%");
}
END_TEST

/* se_store_open(endpoint) fails with want; the message names the fix and never the password. */
static void check_open_fails(const char *endpoint, int want, const char *fragment) {
        se_error e = SE_ERROR_NULL;
        se_store *s = NULL;
        int r;

        r = se_store_open(&(se_store_options){.endpoint = endpoint, .timeout_usec = 2000000, .require_data = true}, &s,
                          &e);
        ck_assert_msg(r == want, "%s: %d (%s), want %d", endpoint, r, se_error_message(&e), want);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(se_error_message(&e), fragment), "%s: \"%s\" lacks \"%s\"", endpoint,
                      se_error_message(&e), fragment);
        ck_assert_msg(!strstr(se_error_message(&e), "s3cret"), "password in \"%s\"", se_error_message(&e));
        se_error_done(&e);
}

START_TEST(test_mysql_endpoint_forms) {
        check_open_fails("mysql://root:s3cret@tcp(127.0.0.1:3306)", -EINVAL, "\"mysql://tcp(127.0.0.1:3306)\"");
        check_open_fails("mysql://root:s3cret@udp(127.0.0.1:3306)/kine", -EINVAL, "unsupported protocol");
        check_open_fails("mysql://root:s3cret@tcp(127.0.0.1:99999)/kine", -EINVAL, "bad port");
        check_open_fails("mysql://root:s3cret@tcp([::1/kine", -EINVAL, "expected tcp(HOST:PORT)");
        check_open_fails("mysql://root:s3cret@tcp([::1)/kine", -EINVAL, "bad IPv6 address");
}
END_TEST

START_TEST(test_nobody_listening) {
        /* port 1 on loopback: refused at once */
        check_open_fails("postgres://kine:s3cret@127.0.0.1:1/kine?sslmode=disable", -ECONNREFUSED, "cannot connect");
        check_open_fails("postgresql://kine:s3cret@127.0.0.1:1", -ECONNREFUSED, "postgresql://127.0.0.1:1");
        check_open_fails("mysql://kine:s3cret@tcp(127.0.0.1:1)/kine", -ECONNREFUSED, "cannot connect");
        check_open_fails("mysql://kine:s3cret@unix(/nonexistent/mysqld.sock)/kine", -ECONNREFUSED, "cannot connect");
}
END_TEST

START_TEST(test_unsupported_scheme) {
        check_open_fails("mariadb://kine:s3cret@localhost/kine", -EINVAL, "unsupported scheme");
}
END_TEST

static Suite *store_sql_suite(void) {
        Suite *s = suite_create("store-sql");
        TCase *tc = tcase_create("sql");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_redact_endpoint);
        tcase_add_test(tc, test_like_pattern);
        tcase_add_test(tc, test_mysql_endpoint_forms);
        tcase_add_test(tc, test_nobody_listening);
        tcase_add_test(tc, test_unsupported_scheme);
        suite_add_tcase(s, tc);
        return s;
}

SE_TEST_MAIN(store_sql_suite)
