/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <curl/curl.h>

#include "se-error.h"

/*
 * libcurl is loaded with dlopen() on first use, as systemd does for optional dependencies: it
 * pulls in some thirty libraries (TLS, Kerberos, LDAP, …) that only the etcd datastore needs, and
 * the hook runs on every start of the API server, mostly with kine SQLite.
 */

extern CURLcode (*sym_curl_global_init)(long flags);
extern CURL *(*sym_curl_easy_init)(void);
extern CURLcode (*sym_curl_easy_setopt)(CURL *curl, CURLoption option, ...);
extern CURLcode (*sym_curl_easy_perform)(CURL *curl);
extern CURLcode (*sym_curl_easy_getinfo)(CURL *curl, CURLINFO info, ...);
extern void (*sym_curl_easy_cleanup)(CURL *curl);
extern const char *(*sym_curl_easy_strerror)(CURLcode code);
extern struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *list, const char *s);
extern void (*sym_curl_slist_free_all)(struct curl_slist *list);
/* several transactions in flight (store-etcd.c's updates) */
extern CURLM *(*sym_curl_multi_init)(void);
extern CURLMcode (*sym_curl_multi_setopt)(CURLM *multi, CURLMoption option, ...);
extern CURLMcode (*sym_curl_multi_add_handle)(CURLM *multi, CURL *curl);
extern CURLMcode (*sym_curl_multi_remove_handle)(CURLM *multi, CURL *curl);
extern CURLMcode (*sym_curl_multi_perform)(CURLM *multi, int *running_handles);
extern CURLMcode (*sym_curl_multi_poll)(CURLM *multi, struct curl_waitfd extra_fds[], unsigned extra_nfds,
                                        int timeout_ms, int *ret);
extern CURLMsg *(*sym_curl_multi_info_read)(CURLM *multi, int *msgs_in_queue);
extern const char *(*sym_curl_multi_strerror)(CURLMcode code);
extern CURLMcode (*sym_curl_multi_cleanup)(CURLM *multi);

/* Loads libcurl.so.4 and runs curl_global_init() once (thread-safe). -EOPNOTSUPP with the
 * loader's message when libcurl is missing (Debian: apt-get install libcurl4). */
int se_dlopen_curl(se_error *e);
