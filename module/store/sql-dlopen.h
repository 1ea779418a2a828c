/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libpq-fe.h>
#include <mysql.h>

#include "se-error.h"

/*
 * The PostgreSQL (libpq) and MySQL/MariaDB (MariaDB Connector/C) client libraries are loaded with
 * dlopen() on first use, as libcurl is: only a kine datastore on such a server needs them, and the
 * hook starts with every start of the API server, mostly on kine SQLite.
 */

/* Every symbol used, each named once: the declarations here, the definitions and the tables
 * dlopen() fills in sql-dlopen.c come from these lists. */
#define SE_LIBPQ_SYMS(X)                                                                                              \
        X(PQconnectdbParams)                                                                                          \
        X(PQstatus)                                                                                                   \
        X(PQerrorMessage)                                                                                             \
        X(PQfinish)                                                                                                   \
        X(PQexec)                                                                                                     \
        X(PQexecParams)                                                                                               \
        X(PQresultStatus)                                                                                             \
        X(PQresultErrorField)                                                                                         \
        X(PQresultErrorMessage)                                                                                       \
        X(PQclear)                                                                                                    \
        X(PQntuples)                                                                                                  \
        X(PQgetvalue)                                                                                                 \
        X(PQgetlength)                                                                                                \
        X(PQgetisnull)                                                                                                \
        X(PQtransactionStatus)                                                                                        \
        X(PQsendQueryParams)                                                                                          \
        X(PQprepare)                                                                                                  \
        X(PQexecPrepared)                                                                                             \
        X(PQsendQueryPrepared)                                                                                        \
        X(PQgetResult)

/* libpq >= 14 only; NULL with an older one */
#define SE_LIBPQ_OPTIONAL_SYMS(X)                                                                                     \
        X(PQenterPipelineMode)                                                                                        \
        X(PQexitPipelineMode)                                                                                         \
        X(PQpipelineSync)

#define SE_MARIADB_SYMS(X)                                                                                            \
        X(mysql_server_init)                                                                                          \
        X(mysql_init)                                                                                                 \
        X(mysql_options)                                                                                              \
        X(mysql_real_connect)                                                                                         \
        X(mysql_error)                                                                                                \
        X(mysql_errno)                                                                                                \
        X(mysql_close)                                                                                                \
        X(mysql_real_query)                                                                                           \
        X(mysql_store_result)                                                                                         \
        X(mysql_fetch_row)                                                                                            \
        X(mysql_fetch_lengths)                                                                                        \
        X(mysql_free_result)                                                                                          \
        X(mysql_next_result)                                                                                          \
        X(mysql_more_results)                                                                                         \
        X(mysql_affected_rows)                                                                                        \
        X(mysql_insert_id)                                                                                            \
        X(mysql_hex_string)                                                                                           \
        X(mysql_real_escape_string)                                                                                   \
        X(mysql_field_count)                                                                                          \
        X(mysql_stmt_init)                                                                                            \
        X(mysql_stmt_prepare)                                                                                         \
        X(mysql_stmt_bind_param)                                                                                      \
        X(mysql_stmt_execute)                                                                                         \
        X(mysql_stmt_bind_result)                                                                                     \
        X(mysql_stmt_fetch)                                                                                           \
        X(mysql_stmt_store_result)                                                                                    \
        X(mysql_stmt_free_result)                                                                                     \
        X(mysql_stmt_close)                                                                                           \
        X(mysql_stmt_errno)                                                                                           \
        X(mysql_stmt_error)

#define SQL_SYM_DECLARE(f) extern typeof(f) *sym_##f;
SE_LIBPQ_SYMS(SQL_SYM_DECLARE)
SE_LIBPQ_OPTIONAL_SYMS(SQL_SYM_DECLARE)
SE_MARIADB_SYMS(SQL_SYM_DECLARE)
#undef SQL_SYM_DECLARE

/* Loads libpq.so.5 once (thread-safe). -EOPNOTSUPP with the loader's message when it is missing
 * (Debian: apt-get install libpq5). */
int se_dlopen_libpq(se_error *e);
/* Loads libmariadb.so.3 once and runs mysql_library_init(). -EOPNOTSUPP when it is missing
 * (Debian: apt-get install libmariadb3). */
int se_dlopen_mariadb(se_error *e);
