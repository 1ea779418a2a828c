#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Re-encryption throughput on kine's PostgreSQL and MariaDB datastores (not a test; `make bench`
# runs it after the bench programs). Each server is started from Debian's packages in a temporary
# directory (tests/integration/lib-sql.sh; fsync off for both phases alike) and stopped on exit.
# N secrets of 1 KiB under aescbc key A are written once (through the store, as kine's create rows)
# into a template database, which is vacuumed and analyzed on PostgreSQL (as autovacuum keeps a
# live kine table; each MariaDB copy is analyzed, as InnoDB's persistent statistics keep it).
# Then rounds, each phase on a fresh copy of the template, after the server has written out what
# the copy left behind (PostgreSQL: CHECKPOINT; InnoDB: purge and dirty pages), in alternating
# order (baseline first in odd rounds, engine first in even ones):
#   baseline  one INSERT … SELECT superseding every current secret row with its own value, in one
#             transaction, without crypto (the fastest rewrite the server does);
#   engine    se_reencrypt() A -> B with its checkpoint (bench-reencrypt --engine, its own process:
#             peak RSS is the engine's).
# The figure is the median of the rounds' ratios: single phases vary by up to 40 % on a shared
# 2-core machine.
#
#   SE_BENCH_SECRETS=N    secrets (default 100000)
#   SE_BENCH_ROUNDS=N     rounds (default 5)
#   SE_BENCH_SQL=pg|my    only one server
#   SE_BENCH_AUTOVACUUM=1 PostgreSQL's autovacuum stays on
# shellcheck disable=SC2317 # the per-server functions are called as "${s}_copy", "${s}_run", "${s}_ep"
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
N=${SE_BENCH_SECRETS:-100000}
ROUNDS=${SE_BENCH_ROUNDS:-5}
BENCH="$B/tests/bench/bench-reencrypt"
[ -x "$BENCH" ] || { echo "bench-sql: $BENCH not built (make bench)" >&2; exit 1; }
se_common_init bench-sql
. tests/integration/lib-sql.sh

BASELINE="INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT kv.name, 0, 0, CASE WHEN kv.created <> 0 THEN kv.id ELSE kv.create_revision END, kv.id, kv.lease, kv.value, kv.value
FROM kine AS kv WHERE kv.name LIKE '/registry/secrets/%' AND kv.deleted = 0
AND kv.id = (SELECT MAX(mkv.id) FROM kine AS mkv WHERE mkv.name = kv.name) ORDER BY kv.id;"

now() { date +%s%N; }

# ---- per server: copy the template to DB and let the server settle; run SQL in DB ----------------
pg_copy() {
        pg_sql postgres <<<"SET client_min_messages = warning; DROP DATABASE IF EXISTS $1; CREATE DATABASE $1 TEMPLATE tmpl OWNER kine;" >/dev/null &&
                pg_sql "$1" <<<"CHECKPOINT;" >/dev/null
}
pg_run() { { echo "BEGIN;"; cat; echo "COMMIT;"; } | pg_sql "$1"; }
pg_ep() { printf '%s\n' "${PG_EP/\/kine\?//$1?}"; }

my_copy() {
        local i
        my_sql mysql <<<"DROP DATABASE IF EXISTS $1; CREATE DATABASE $1; CREATE TABLE $1.kine LIKE tmpl.kine;
INSERT INTO $1.kine SELECT * FROM tmpl.kine; ANALYZE TABLE $1.kine;" >/dev/null || return 1
        # until InnoDB has purged the copy's undo log and written its dirty pages (at most 60 s)
        my_sql mysql <<<"SET GLOBAL innodb_max_dirty_pages_pct = 0;" >/dev/null
        for ((i = 0; i < 600; i++)); do
                [ "$(my_sql mysql <<<"SELECT MAX(VARIABLE_VALUE + 0) < 100 FROM information_schema.GLOBAL_STATUS
WHERE VARIABLE_NAME IN ('INNODB_BUFFER_POOL_PAGES_DIRTY', 'INNODB_HISTORY_LIST_LENGTH');")" = 1 ] && break
                sleep 0.1
        done
        my_sql mysql <<<"SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT;" >/dev/null
}
my_run() { { echo "START TRANSACTION;"; cat; echo "COMMIT;"; } | my_sql "$1"; }
my_ep() { printf '%s\n' "${MY_EP%/kine}/$1"; }

# ---- one phase each; set $usec (and $rss for the engine) -----------------------------------------
baseline() {
        local s=$1 db=$2 t0 t1 rows0 rows1
        rows0=$("${s}_run" "$db" <<<"SELECT COUNT(*) FROM kine;")
        t0=$(now)
        "${s}_run" "$db" <<<"$BASELINE" >/dev/null || { echo "  $s baseline failed"; return 1; }
        t1=$(now)
        rows1=$("${s}_run" "$db" <<<"SELECT COUNT(*) FROM kine;")
        [ "$((rows1 - rows0))" = "$N" ] || { echo "  $s baseline wrote $((rows1 - rows0)) rows, want $N"; return 1; }
        usec=$(((t1 - t0) / 1000))
}

engine() {
        local s=$1 db=$2 out rewritten
        rm -rf "$W/state-$db" && mkdir -p "$W/state-$db"
        out=$("$BENCH" --engine "$("${s}_ep" "$db")" "$W/state-$db") || { echo "  $s engine failed"; return 1; }
        read -r usec rss rewritten <<<"$out"
        [ "$rewritten" = "$N" ] || { echo "  $s engine rewrote $rewritten, want $N"; return 1; }
}

# median of the arguments (thousandths)
median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

# bench NAME s: seeds the template database tmpl, then $ROUNDS rounds
bench() {
        local name=$1 s=$2 t0 t1 round first bsec esec rss=0 ratios=() bsecs=() esecs=() rsss=()
        t0=$(now)
        "$BENCH" --seed-store "$("${s}_ep" tmpl)" "$N" >/dev/null || { echo "  $name seeding failed"; return 1; }
        t1=$(now)
        printf '  %-8s seeded    %8d secrets of 1024 B under key A in %.1f s\n' "$name" "$N" "$(((t1 - t0) / 1000000))e-3"
        if [ "$s" = pg ]; then
                pg_sql tmpl <<<"VACUUM ANALYZE kine;" >/dev/null
        fi
        for ((round = 1; round <= ROUNDS; round++)); do
                for first in $( ((round % 2)) && echo "baseline engine" || echo "engine baseline"); do
                        "${s}_copy" "r$first" || { echo "  $name copy failed"; return 1; }
                        "$first" "$s" "r$first" || return 1
                        if [ "$first" = baseline ]; then bsec=$usec; else esec=$usec; fi
                done
                ratios+=("$((bsec * 1000 / esec))")
                bsecs+=("$bsec")
                esecs+=("$esec")
                rsss+=("$rss")
                printf '  %-8s round %d   baseline %6.2f s  engine %6.2f s  ratio %.2f  peak RSS %5.1f MiB\n' "$name" \
                        "$round" "${bsec}e-6" "${esec}e-6" "${ratios[-1]}e-3" "$((rss * 10 / 1024))e-1"
        done
        printf '  %-8s median    baseline %8.0f secrets/s  engine %8.0f secrets/s  ratio %.2f (engine/baseline secrets/s, median of %d rounds; target >= 0.80)  peak RSS %.1f MiB\n' \
                "$name" "$((N * 1000000 / $(median "${bsecs[@]}")))" "$((N * 1000000 / $(median "${esecs[@]}")))" \
                "$(median "${ratios[@]}")e-3" "$ROUNDS" "$(($(median "${rsss[@]}") * 10 / 1024))e-1"
}

echo "re-encryption on kine SQL servers (aescbc A -> B, 1024 B values, loopback, fsync off)"
rc=0
if [ "${SE_BENCH_SQL:-pg}" = pg ]; then
        sql_pg_start
        # no autovacuum (unless SE_BENCH_AUTOVACUUM=1): its lock conflicts with a batch's (see the
        # README), and it would land in some engine phases and not others
        [ "${SE_BENCH_AUTOVACUUM:-0}" = 1 ] ||
                pg_sql postgres <<<"ALTER SYSTEM SET autovacuum = off; SELECT pg_reload_conf();" >/dev/null
        pg_sql postgres <<<"CREATE DATABASE tmpl OWNER kine;" >/dev/null && sql_pg_kine_schema tmpl >/dev/null
        bench postgres pg || rc=1
        sql_pg_stop
fi
if [ "${SE_BENCH_SQL:-my}" = my ]; then
        sql_my_start
        my_sql mysql <<<"CREATE DATABASE tmpl;" && sql_my_kine_schema tmpl
        bench mariadb my || rc=1
        sql_my_stop
fi
exit "$rc"
