/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "sql-dlopen.h"

#define SQL_SYM(f) typeof(f) *sym_##f
SQL_SYM(PQconnectdbParams);
SQL_SYM(PQstatus);
SQL_SYM(PQerrorMessage);
SQL_SYM(PQfinish);
SQL_SYM(PQexec);
SQL_SYM(PQexecParams);
SQL_SYM(PQresultStatus);
SQL_SYM(PQresultErrorField);
SQL_SYM(PQresultErrorMessage);
SQL_SYM(PQclear);
SQL_SYM(PQntuples);
SQL_SYM(PQgetvalue);
SQL_SYM(PQgetlength);
SQL_SYM(PQgetisnull);
SQL_SYM(PQtransactionStatus);
SQL_SYM(PQsendQueryParams);
SQL_SYM(PQgetResult);
SQL_SYM(PQenterPipelineMode);
SQL_SYM(PQexitPipelineMode);
SQL_SYM(PQpipelineSync);

SQL_SYM(mysql_server_init);
SQL_SYM(mysql_init);
SQL_SYM(mysql_options);
SQL_SYM(mysql_real_connect);
SQL_SYM(mysql_error);
SQL_SYM(mysql_errno);
SQL_SYM(mysql_close);
SQL_SYM(mysql_real_query);
SQL_SYM(mysql_store_result);
SQL_SYM(mysql_fetch_row);
SQL_SYM(mysql_fetch_lengths);
SQL_SYM(mysql_free_result);
SQL_SYM(mysql_next_result);
SQL_SYM(mysql_more_results);
SQL_SYM(mysql_affected_rows);
SQL_SYM(mysql_insert_id);
SQL_SYM(mysql_hex_string);
SQL_SYM(mysql_real_escape_string);
SQL_SYM(mysql_field_count);
SQL_SYM(mysql_stmt_init);
SQL_SYM(mysql_stmt_prepare);
SQL_SYM(mysql_stmt_bind_param);
SQL_SYM(mysql_stmt_execute);
SQL_SYM(mysql_stmt_bind_result);
SQL_SYM(mysql_stmt_fetch);
SQL_SYM(mysql_stmt_store_result);
SQL_SYM(mysql_stmt_free_result);
SQL_SYM(mysql_stmt_close);
SQL_SYM(mysql_stmt_errno);
SQL_SYM(mysql_stmt_error);
#undef SQL_SYM

typedef struct sym {
        void **sym;
        const char *name;
} sym;

#define S(f)                                                                                                          \
        { (void **) &sym_##f, #f }

static const sym pq_syms[] = {
        S(PQconnectdbParams),
        S(PQstatus),
        S(PQerrorMessage),
        S(PQfinish),
        S(PQexec),
        S(PQexecParams),
        S(PQresultStatus),
        S(PQresultErrorField),
        S(PQresultErrorMessage),
        S(PQclear),
        S(PQntuples),
        S(PQgetvalue),
        S(PQgetlength),
        S(PQgetisnull),
        S(PQtransactionStatus),
        S(PQsendQueryParams),
        S(PQgetResult),
};

/* Pipeline mode saves a batch two round trips; without it (libpq < 14) the statements go one by one. */
static const sym pq_optional_syms[] = {
        S(PQenterPipelineMode),
        S(PQexitPipelineMode),
        S(PQpipelineSync),
};

static const sym mariadb_syms[] = {
        S(mysql_server_init),
        S(mysql_init),
        S(mysql_options),
        S(mysql_real_connect),
        S(mysql_error),
        S(mysql_errno),
        S(mysql_close),
        S(mysql_real_query),
        S(mysql_store_result),
        S(mysql_fetch_row),
        S(mysql_fetch_lengths),
        S(mysql_free_result),
        S(mysql_next_result),
        S(mysql_more_results),
        S(mysql_affected_rows),
        S(mysql_insert_id),
        S(mysql_hex_string),
        S(mysql_real_escape_string),
        S(mysql_field_count),
        S(mysql_stmt_init),
        S(mysql_stmt_prepare),
        S(mysql_stmt_bind_param),
        S(mysql_stmt_execute),
        S(mysql_stmt_bind_result),
        S(mysql_stmt_fetch),
        S(mysql_stmt_store_result),
        S(mysql_stmt_free_result),
        S(mysql_stmt_close),
        S(mysql_stmt_errno),
        S(mysql_stmt_error),
};

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
