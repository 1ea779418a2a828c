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

#define SQL_SYM(f) extern typeof(f) *sym_##f

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
/* libpq >= 14 only; NULL with an older one */
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

/* Loads libpq.so.5 once (thread-safe). -EOPNOTSUPP with the loader's message when it is missing
 * (Debian: apt-get install libpq5). */
int se_dlopen_libpq(se_error *e);
/* Loads libmariadb.so.3 once and runs mysql_library_init(). -EOPNOTSUPP when it is missing
 * (Debian: apt-get install libmariadb3). */
int se_dlopen_mariadb(se_error *e);
