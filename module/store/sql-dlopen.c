/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "sql-dlopen.h"

#define SQL_SYM_DEFINE(f) typeof(f) *sym_##f;
SE_LIBPQ_SYMS(SQL_SYM_DEFINE)
SE_LIBPQ_OPTIONAL_SYMS(SQL_SYM_DEFINE)
SE_MARIADB_SYMS(SQL_SYM_DEFINE)
#undef SQL_SYM_DEFINE

typedef struct sym {
        void **sym;
        const char *name;
} sym;

#define S(f) {(void **) &sym_##f, #f},

static const sym pq_syms[] = {SE_LIBPQ_SYMS(S)};

/* Pipeline mode saves a batch two round trips; without it (libpq < 14) the statements go one by one. */
static const sym pq_optional_syms[] = {SE_LIBPQ_OPTIONAL_SYMS(S)};

static const sym mariadb_syms[] = {SE_MARIADB_SYMS(S)};

#undef S

/* The handles stay open for the life of the process: neither library can be unloaded safely. */
static bool load(const char *soname, const sym *syms, size_t n, const sym *optional, size_t n_optional, char *error,
                 size_t error_size) {
        void *dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        bool all = true;

        if (!dl) {
                snprintf(error, error_size, "%s", dlerror() ?: "unknown error");
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                *syms[i].sym = dlsym(dl, syms[i].name);
                if (!*syms[i].sym) {
                        snprintf(error, error_size, "%s lacks %s", soname, syms[i].name);
                        return false;
                }
        }
        for (size_t i = 0; i < n_optional; i++) {
                *optional[i].sym = dlsym(dl, optional[i].name);
                all = all && *optional[i].sym;
        }
        if (!all) /* a set works only whole */
                for (size_t i = 0; i < n_optional; i++)
                        *optional[i].sym = NULL;
        return true;
}

static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static bool pq_loaded;
static char pq_error[256];

static void pq_load(void) {
        pq_loaded = load("libpq.so.5", pq_syms, ELEMENTSOF(pq_syms), pq_optional_syms, ELEMENTSOF(pq_optional_syms),
                         pq_error, sizeof(pq_error));
}

int se_dlopen_libpq(se_error *e) {
        (void) pthread_once(&pq_once, pq_load);
        if (!pq_loaded)
                return se_error_set(e, -EOPNOTSUPP,
                                    "the PostgreSQL datastore needs libpq: %s (Debian: apt-get install libpq5)",
                                    pq_error);
        return 0;
}

static pthread_once_t mariadb_once = PTHREAD_ONCE_INIT;
static bool mariadb_loaded;
static char mariadb_error[256];

static void mariadb_load(void) {
        mariadb_loaded = load("libmariadb.so.3", mariadb_syms, ELEMENTSOF(mariadb_syms), NULL, 0, mariadb_error,
                              sizeof(mariadb_error));
        /* mysql_init() would do it too, but not thread-safely */
        if (mariadb_loaded && sym_mysql_server_init(0, NULL, NULL) != 0) {
                snprintf(mariadb_error, sizeof(mariadb_error), "mysql_library_init failed");
                mariadb_loaded = false;
        }
}

int se_dlopen_mariadb(se_error *e) {
        (void) pthread_once(&mariadb_once, mariadb_load);
        if (!mariadb_loaded)
                return se_error_set(e, -EOPNOTSUPP,
                                    "the MySQL/MariaDB datastore needs the MariaDB Connector/C: %s (Debian: apt-get "
                                    "install libmariadb3)",
                                    mariadb_error);
        return 0;
}
