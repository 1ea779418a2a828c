#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# kine on a real PostgreSQL server (started here from Debian's packages, stopped on exit): safety
# errors, the single-server flow with a concurrent writer, kine-exact rows, SIGKILL at every
# batch and a server restart mid-run. The cases are in lib-sql-suite.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3 sqlite3 psql runuser
se_common_init store-pgsql
KIND=pg
. tests/integration/lib-sql-suite.sh
