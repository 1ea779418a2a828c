/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curl-dlopen.h"
#include "macro.h"

CURLcode (*sym_curl_global_init)(long flags);
CURL *(*sym_curl_easy_init)(void);
CURLcode (*sym_curl_easy_setopt)(CURL *curl, CURLoption option, ...);
CURLcode (*sym_curl_easy_perform)(CURL *curl);
CURLcode (*sym_curl_easy_getinfo)(CURL *curl, CURLINFO info, ...);
void (*sym_curl_easy_cleanup)(CURL *curl);
const char *(*sym_curl_easy_strerror)(CURLcode code);
struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *list, const char *s);
void (*sym_curl_slist_free_all)(struct curl_slist *list);
CURLM *(*sym_curl_multi_init)(void);
CURLMcode (*sym_curl_multi_setopt)(CURLM *multi, CURLMoption option, ...);
CURLMcode (*sym_curl_multi_add_handle)(CURLM *multi, CURL *curl);
CURLMcode (*sym_curl_multi_remove_handle)(CURLM *multi, CURL *curl);
CURLMcode (*sym_curl_multi_perform)(CURLM *multi, int *running_handles);
CURLMcode (*sym_curl_multi_poll)(CURLM *multi, struct curl_waitfd extra_fds[], unsigned extra_nfds, int timeout_ms,
                                 int *ret);
CURLMsg *(*sym_curl_multi_info_read)(CURLM *multi, int *msgs_in_queue);
const char *(*sym_curl_multi_strerror)(CURLMcode code);
CURLMcode (*sym_curl_multi_cleanup)(CURLM *multi);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];
static CURLcode init_result = CURLE_FAILED_INIT;

static void load(void) {
        /* The handle stays open for the life of the process: libcurl cannot be unloaded safely. */
        void *dl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
        const struct {
                void **sym;
                const char *name;
        } syms[] = {
                {(void **) &sym_curl_global_init, "curl_global_init"},
                {(void **) &sym_curl_easy_init, "curl_easy_init"},
                {(void **) &sym_curl_easy_setopt, "curl_easy_setopt"},
                {(void **) &sym_curl_easy_perform, "curl_easy_perform"},
                {(void **) &sym_curl_easy_getinfo, "curl_easy_getinfo"},
                {(void **) &sym_curl_easy_cleanup, "curl_easy_cleanup"},
                {(void **) &sym_curl_easy_strerror, "curl_easy_strerror"},
                {(void **) &sym_curl_slist_append, "curl_slist_append"},
                {(void **) &sym_curl_slist_free_all, "curl_slist_free_all"},
                {(void **) &sym_curl_multi_init, "curl_multi_init"},
                {(void **) &sym_curl_multi_setopt, "curl_multi_setopt"},
                {(void **) &sym_curl_multi_add_handle, "curl_multi_add_handle"},
                {(void **) &sym_curl_multi_remove_handle, "curl_multi_remove_handle"},
                {(void **) &sym_curl_multi_perform, "curl_multi_perform"},
                {(void **) &sym_curl_multi_poll, "curl_multi_poll"},
                {(void **) &sym_curl_multi_info_read, "curl_multi_info_read"},
                {(void **) &sym_curl_multi_strerror, "curl_multi_strerror"},
                {(void **) &sym_curl_multi_cleanup, "curl_multi_cleanup"},
        };

        if (!dl) {
                snprintf(load_error, sizeof(load_error), "%s", dlerror() ?: "unknown error");
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
                *syms[i].sym = dlsym(dl, syms[i].name);
                if (!*syms[i].sym) {
                        snprintf(load_error, sizeof(load_error), "libcurl.so.4 lacks %s", syms[i].name);
                        return;
                }
        }
        init_result = sym_curl_global_init(CURL_GLOBAL_DEFAULT);
        if (init_result != CURLE_OK)
                snprintf(load_error, sizeof(load_error), "curl_global_init: %s", sym_curl_easy_strerror(init_result));
}

int se_dlopen_curl(se_error *e) {
        (void) pthread_once(&once, load);
        if (init_result != CURLE_OK)
                return se_error_set(e, -EOPNOTSUPP,
                                    "the etcd datastore needs libcurl: %s (Debian: apt-get install libcurl4)",
                                    load_error);
        return 0;
}
