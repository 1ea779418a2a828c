# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# Real PostgreSQL and MariaDB servers for the integration tests, from Debian's packages, each in a
# directory under $W on a loopback port of its own; stopped on exit, also on failure. Source after
# lib-common.sh and se_common_init.
#
#   sql_tls_certs DIR              # ca.crt, server.crt/.key (IP 127.0.0.1), other-ca.crt; both
#                                  # servers use DIR=$PG_DIR/tls, $MY_DIR/tls (TLS allowed, not required)
#   sql_pg_start                   # initdb + pg_ctl as the postgres user (it refuses root); a role
#                                  # "kine" (password $SQL_PASSWORD) owning the empty database "kine"
#                                  # sets PG_PORT PG_EP (postgres://kine:…@127.0.0.1:PORT/kine?sslmode=disable)
#   pg_sql [DB] <<<SQL             # psql as the superuser (default database kine), unaligned, no headers
#   sql_pg_stop / sql_pg_restart   # fast shutdown / stop and start on the same port and data
#   sql_pg_kine_schema [DB]        # kine's PostgreSQL DDL (pkg/drivers/pgsql)
#
#   sql_my_start                   # mariadb-install-db + mariadbd; user kine@localhost with all rights
#                                  # on the empty database "kine"; sets MY_PORT MY_EP
#                                  # (mysql://kine:…@tcp(127.0.0.1:PORT)/kine)
#   my_sql [DB] <<<SQL             # the mariadb client as root on the socket, tab-separated, no headers
#   sql_my_stop / sql_my_restart
#   sql_my_kine_schema [DB]        # kine's MySQL DDL (pkg/drivers/mysql)
#
#   sql_copy_kine SQLITE-DB pg|my [DB]   # every row of a kine SQLite database (kine-seed's output,
#                                  # written as kine writes them), ids and all, into DB's kine table

SQL_PASSWORD=kine-Secret-1
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

# a free loopback port (the kernel's choice; the server binds it a moment later)
_sql_free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# sql_tls_certs DIR: a CA (DIR/ca.crt), a server certificate for IP 127.0.0.1 signed by it
# (DIR/server.crt, .key) and a second CA that signed nothing (DIR/other-ca.crt).
sql_tls_certs() {
        local d=$1
        mkdir -p "$d"
        (
                cd "$d" || exit 1
                openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.crt &&
                        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout other-ca.key \
                                -out other-ca.crt &&
                        openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
                        printf 'subjectAltName = IP:127.0.0.1\n' >ext &&
                        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                                -extfile ext -out server.crt
        ) >/dev/null 2>&1 || { echo "not ok - openssl: test certificates"; exit 1; }
}

# ---- PostgreSQL ---------------------------------------------------------------------------------------

_pg_as() { runuser -u postgres -- "$@"; }

sql_pg_start() {
        [ -x "$PG_BIN/initdb" ] || { echo "not ok - PostgreSQL not installed (apt-get install postgresql)"; exit 1; }
        PG_DIR="$W/pg"
        PG_PORT=$(_sql_free_port)
        chmod 755 "$W"
        mkdir -p "$PG_DIR"
        chown postgres: "$PG_DIR"
        sql_tls_certs "$PG_DIR/tls"
        chown -R postgres: "$PG_DIR/tls"
        chmod 600 "$PG_DIR/tls/server.key"
        printf '%s\n' "$SQL_PASSWORD" >"$PG_DIR/pw"
        chown postgres: "$PG_DIR/pw"
        _pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --pwfile="$PG_DIR/pw" --auth=scram-sha-256 \
                --locale=C.UTF-8 -E UTF8 >"$PG_DIR/initdb.log" 2>&1 ||
                { echo "not ok - initdb"; sed 's/^/#   /' "$PG_DIR/initdb.log"; exit 1; }
        cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 64MB
max_wal_size = 1GB
ssl = on
ssl_cert_file = '$PG_DIR/tls/server.crt'
ssl_key_file = '$PG_DIR/tls/server.key'
EOF
        se_common_at_exit sql_pg_stop
        _sql_pg_up first || exit 1
        PGPASSWORD=$SQL_PASSWORD
        export PGPASSWORD
        pg_sql postgres <<<"CREATE ROLE kine LOGIN PASSWORD '$SQL_PASSWORD'; CREATE DATABASE kine OWNER kine;" >/dev/null
        # shellcheck disable=SC2034 # for the sourcing script
        PG_EP="postgres://kine:$SQL_PASSWORD@127.0.0.1:$PG_PORT/kine?sslmode=disable"
}

# The port was free when chosen; on a machine with many loopback connections another socket may
# take it before the server binds it: then (first start only) another port.
_sql_pg_up() {
        local try
        for try in 1 2 3 4 5; do
                _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start >/dev/null 2>&1 && return 0
                [ "${1:-}" = first ] && grep -q "Address already in use" "$PG_DIR/server.log" || break
                PG_PORT=$(_sql_free_port)
                sed -i "s/^port = .*/port = $PG_PORT/" "$PG_DIR/data/postgresql.conf"
        done
        echo "not ok - pg_ctl start"
        sed 's/^/#   /' "$PG_DIR/server.log" | tail -n 20
        return 1
}

sql_pg_stop() {
        [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
                _pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1
        return 0
}

sql_pg_restart() { sql_pg_stop && _sql_pg_up; }

pg_sql() {
        psql -X -q -A -t -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$PG_PORT/${1:-kine}" -f -
}

# kine's DDL for PostgreSQL, as pkg/drivers/pgsql creates it, owned by the role kine
sql_pg_kine_schema() {
        psql -X -q -v ON_ERROR_STOP=1 "postgresql://kine@127.0.0.1:$PG_PORT/${1:-kine}" -f - <<'EOF'
CREATE TABLE IF NOT EXISTS kine (
        id SERIAL PRIMARY KEY,
        name VARCHAR(630),
        created INTEGER,
        deleted INTEGER,
        create_revision INTEGER,
        prev_revision INTEGER,
        lease INTEGER,
        value bytea,
        old_value bytea
);
CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id);
CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted);
CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
EOF
}

# ---- MariaDB ------------------------------------------------------------------------------------------

sql_my_start() {
        command -v mariadbd >/dev/null || { echo "not ok - MariaDB not installed (apt-get install mariadb-server)"; exit 1; }
        MY_DIR="$W/my"
        MY_PORT=$(_sql_free_port)
        mkdir -p "$MY_DIR"
        sql_tls_certs "$MY_DIR/tls"
        mariadb-install-db --no-defaults --user=root --datadir="$MY_DIR/data" --auth-root-authentication-method=socket \
                --skip-test-db >"$MY_DIR/install.log" 2>&1 ||
                { echo "not ok - mariadb-install-db"; sed 's/^/#   /' "$MY_DIR/install.log" | tail -n 20; exit 1; }
        se_common_at_exit sql_my_stop
        _sql_my_up first || exit 1
        my_sql mysql <<<"CREATE DATABASE kine; CREATE USER 'kine'@'127.0.0.1' IDENTIFIED BY '$SQL_PASSWORD';
GRANT ALL ON *.* TO 'kine'@'127.0.0.1';"
        # shellcheck disable=SC2034 # for the sourcing script
        MY_EP="mysql://kine:$SQL_PASSWORD@tcp(127.0.0.1:$MY_PORT)/kine"
}

_sql_my_up() {
        local i try
        for try in 1 2 3 4 5; do
                _sql_my_up_once && return 0
                [ "${1:-}" = first ] && grep -q "Address already in use" "$MY_DIR/server.log" || break
                MY_PORT=$(_sql_free_port)
        done
        echo "not ok - mariadbd did not start"
        sed 's/^/#   /' "$MY_DIR/server.log" | tail -n 20
        return 1
}

_sql_my_up_once() {
        local i
        : >"$MY_DIR/server.log"
        mariadbd --no-defaults --user=root --datadir="$MY_DIR/data" --socket="$MY_DIR/sock" --port="$MY_PORT" \
                --bind-address=127.0.0.1 --pid-file="$MY_DIR/pid" --log-error="$MY_DIR/server.log" \
                --innodb-buffer-pool-size=128M --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 \
                --skip-name-resolve --max-allowed-packet=64M --ssl-ca="$MY_DIR/tls/ca.crt" \
                --ssl-cert="$MY_DIR/tls/server.crt" --ssl-key="$MY_DIR/tls/server.key" >/dev/null 2>&1 &
        MY_PID=$!
        for ((i = 0; i < 600; i++)); do
                mariadb-admin --no-defaults --socket="$MY_DIR/sock" -uroot ping >/dev/null 2>&1 && return 0
                kill -0 "$MY_PID" 2>/dev/null || break
                sleep 0.1
        done
        sql_my_stop
        return 1
}

sql_my_stop() {
        [ -n "${MY_PID:-}" ] || return 0
        kill -TERM "$MY_PID" 2>/dev/null
        wait "$MY_PID" 2>/dev/null
        MY_PID=
        return 0
}

sql_my_restart() { sql_my_stop && _sql_my_up; }

my_sql() {
        mariadb --no-defaults --socket="$MY_DIR/sock" -uroot -N -B "${1:-kine}"
}

# kine's DDL for MySQL, as pkg/drivers/mysql creates it
sql_my_kine_schema() {
        my_sql "${1:-kine}" <<'EOF'
CREATE TABLE IF NOT EXISTS kine (
        id INTEGER AUTO_INCREMENT,
        name VARCHAR(630) CHARACTER SET ascii,
        created INTEGER,
        deleted INTEGER,
        create_revision INTEGER,
        prev_revision INTEGER,
        lease INTEGER,
        value MEDIUMBLOB,
        old_value MEDIUMBLOB,
        PRIMARY KEY (id)
);
CREATE INDEX kine_name_index ON kine (name);
CREATE INDEX kine_name_id_index ON kine (name,id);
CREATE INDEX kine_id_deleted_index ON kine (id,deleted);
CREATE INDEX kine_prev_revision_index ON kine (prev_revision);
CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision);
EOF
}

# ---- rows ---------------------------------------------------------------------------------------------

sql_copy_kine() {
        local db=$1 kind=$2 target=${3:-kine}
        if [ "$kind" = pg ]; then
                blob() { echo "CASE WHEN $1 IS NULL THEN 'NULL' ELSE '''\\x' || hex($1) || '''::bytea' END"; }
        else
                blob() { echo "quote($1)"; }
        fi
        {
                [ "$kind" = pg ] && echo "BEGIN;" || echo "START TRANSACTION;"
                sqlite3 "$db" "SELECT 'INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES(' ||
                        id || ', ' || quote(name) || ', ' || created || ', ' || deleted || ', ' || create_revision || ', ' ||
                        prev_revision || ', ' || lease || ', ' || $(blob value) || ', ' || $(blob old_value) || ');' FROM kine ORDER BY id"
                [ "$kind" = pg ] && echo "SELECT setval(pg_get_serial_sequence('kine', 'id'), (SELECT MAX(id) FROM kine));"
                echo "COMMIT;"
        } | if [ "$kind" = pg ]; then pg_sql "$target" >/dev/null; else my_sql "$target"; fi
}
