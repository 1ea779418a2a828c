#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Re-encryption throughput on kine's PostgreSQL and MariaDB datastores (not a test; `make bench`
# runs it after the bench programs). Each server is started from Debian's packages in a temporary
# directory (tests/integration/lib-sql.sh; fsync off for both phases alike) and stopped on exit.
# N secrets of 1 KiB under aescbc key A (written through the store as kine's create rows), then:
#   baseline  one INSERT … SELECT superseding every current secret row with its own value, in one
#             transaction, without crypto (the fastest rewrite the server does);
#   engine    se_reencrypt() A -> B with its checkpoint (bench-reencrypt --engine, its own process:
#             peak RSS is the engine's).
#
#   SE_BENCH_SECRETS=N    secrets (default 100000)
#   SE_BENCH_SQL=pg|my    only one server
#   SE_BENCH_ANALYZE=0    no ANALYZE of the table after the baseline (default: analyzed)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
N=${SE_BENCH_SECRETS:-100000}
BENCH="$B/tests/bench/bench-reencrypt"
[ -x "$BENCH" ] || { echo "bench-sql: $BENCH not built (make bench)" >&2; exit 1; }
se_common_init bench-sql
. tests/integration/lib-sql.sh

BASELINE="INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT kv.name, 0, 0, CASE WHEN kv.created <> 0 THEN kv.id ELSE kv.create_revision END, kv.id, kv.lease, kv.value, kv.value
FROM kine AS kv WHERE kv.name LIKE '/registry/secrets/%' AND kv.deleted = 0
AND kv.id = (SELECT MAX(mkv.id) FROM kine AS mkv WHERE mkv.name = kv.name) ORDER BY kv.id;"

now() { date +%s%N; }

# round NAME ENDPOINT SQL-CLIENT-FUNCTION
round() {
        local name=$1 ep=$2 client=$3 t0 t1 rows0 rows1 out usec rss rewritten bsec esec
        t0=$(now)
        "$BENCH" --seed-store "$ep" "$N" >/dev/null || { echo "  $name seeding failed"; return 1; }
        t1=$(now)
        printf '  %-8s seeded    %8d secrets of 1024 B under key A in %.1f s\n' "$name" "$N" "$(((t1 - t0) / 1000000))e-3"

        rows0=$("$client" <<<"SELECT COUNT(*) FROM kine")
        t0=$(now)
        "$client" <<<"$BASELINE COMMIT;" >/dev/null || { echo "  $name baseline failed"; return 1; }
        t1=$(now)
        rows1=$("$client" <<<"SELECT COUNT(*) FROM kine")
        [ "$((rows1 - rows0))" = "$N" ] || { echo "  $name baseline wrote $((rows1 - rows0)) rows, want $N"; return 1; }
        bsec=$(((t1 - t0) / 1000))
        # statistics, as autovacuum (PostgreSQL) and InnoDB's persistent statistics keep them on a
        # live kine table: plans for a table just written without them can differ wildly
        if [ "${SE_BENCH_ANALYZE:-1}" = 1 ]; then
                if [ "$name" = postgres ]; then
                        "$client" <<<"ANALYZE kine; COMMIT;" >/dev/null
                else
                        "$client" <<<"ANALYZE TABLE kine; COMMIT;" >/dev/null
                fi
        fi
        printf '  %-8s baseline  %8d secrets  %7.2f s  %8.0f secrets/s\n' "$name" "$N" "${bsec}e-6" \
                "$((N * 1000000 / (bsec > 0 ? bsec : 1)))"

        mkdir -p "$W/state-$name"
        out=$("$BENCH" --engine "$ep" "$W/state-$name") || { echo "  $name engine failed"; return 1; }
        read -r usec rss rewritten <<<"$out"
        [ "$rewritten" = "$N" ] || { echo "  $name engine rewrote $rewritten, want $N"; return 1; }
        printf '  %-8s engine    %8d secrets  %7.2f s  %8.0f secrets/s  peak RSS %6.1f MiB\n' "$name" "$N" \
                "${usec}e-6" "$((N * 1000000 / usec))" "$((rss * 10 / 1024))e-1"
        printf '  %-8s ratio     %.2f (engine/baseline secrets/s; target >= 0.80)\n' "$name" \
                "$((bsec * 1000 / usec))e-3"
}

echo "re-encryption on kine SQL servers (aescbc A -> B, 1024 B values, loopback, fsync off)"
rc=0
if [ "${SE_BENCH_SQL:-pg}" = pg ] || [ -z "${SE_BENCH_SQL:-}" ]; then
        sql_pg_start && sql_pg_kine_schema >/dev/null
        pg_begin() { { echo "BEGIN;"; cat; } | pg_sql; }
        round postgres "$PG_EP" pg_begin || rc=1
        sql_pg_stop
fi
if [ "${SE_BENCH_SQL:-my}" = my ] || [ -z "${SE_BENCH_SQL:-}" ]; then
        sql_my_start && sql_my_kine_schema
        my_begin() { { echo "START TRANSACTION;"; cat; } | my_sql; }
        round mariadb "$MY_EP" my_begin || rc=1
        sql_my_stop
fi
exit "$rc"
