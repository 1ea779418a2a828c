# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# The kine-on-SQL-server suite, run by test-store-pgsql.sh (KIND=pg) and test-store-mysql.sh
# (KIND=my) against a real server started by lib-sql.sh:
#   - safety: wrong password, missing database, server down, TLS refused, a table that is not
#     kine's, an empty database, kine's table with nothing under /registry/: each a clear error
#     with its exit code, never an empty store;
#   - a batch with another client's writes to keys in its middle (store-cas): those are conflicts
#     and keep the writer's rows, the others are written, rows kine-exact (on MariaDB also through
#     the per-key statements MySQL gets); on PostgreSQL compressible values stored with lz4; a live
#     row with a NULL value superseded with old_value NULL;
#   - the single-server flow through the CLI and the hook (prepare, rotate, reencrypt, verify) with
#     a concurrent writer superseding rows the way kine does during the re-encryption (no write
#     lost: each of its last writes is current, or was read and rewritten by us);
#   - kine-exact rows after every rewrite: ids ascending, each new row's prev_revision the row it
#     supersedes, create_revision carried over, old_value the superseded value, lease kept, no
#     two rows superseding one revision;
#   - SIGKILL of the re-encryption after the read, the update and the checkpoint of every batch,
#     and at a moment inside a batch, each resumed by the hook (a restart); a clean run adds one
#     row per secret with consecutive ids (kine's pollers see no gap);
#   - TLS: the server certificate verified against datastore-cafile, another CA refused;
#   - a server restart in the middle of a re-encryption, then the resume.
#
#   SE_SQL_SECRETS=N   secrets (default 1100: batches of 500, 500, 100)
#   SE_STRESS=1        every kill point of every batch, and more random kills
#
# Needs: KIND, and the caller's se_common_init done.

set -u
NSEC=${SE_SQL_SECRETS:-1100}
STRESS=${SE_STRESS:-0}
export SECRETS_ENCRYPT_LOG_TARGET=stderr

se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed tests/tools/store-cas
. tests/integration/lib-sql.sh

if [ "$KIND" = pg ]; then
        NAME=PostgreSQL
        sql() { pg_sql "$@"; }
        sql_pg_start
        sql_pg_kine_schema
        EP=$PG_EP
        EP_BASE="postgres://kine:$SQL_PASSWORD@127.0.0.1:$PG_PORT"
        ep_db() { echo "$EP_BASE/$1?sslmode=disable"; }
        ep_wrongpw() { echo "postgres://kine:wrong@127.0.0.1:$PG_PORT/kine?sslmode=disable"; }
        ep_down() { echo "postgres://kine:$SQL_PASSWORD@127.0.0.1:$(_sql_free_port)/kine?sslmode=disable"; }
        # TLS from datastore-cafile: no sslmode in the URI, so verify-full (as kine)
        ep_tls() { echo "postgres://kine:$SQL_PASSWORD@127.0.0.1:$PG_PORT/kine"; }
        TLS_DIR=$PG_DIR/tls
        new_db() { pg_sql postgres <<<"CREATE DATABASE $1 OWNER kine;" >/dev/null; }
        kine_schema() { sql_pg_kine_schema "$1" >/dev/null; }
        server_restart() { sql_pg_restart; }
        HEX="encode(%s, 'hex')"
        BYTES="convert_to('%s', 'UTF8')"
        # kine's update row for name $1 with value $2, as kine's Update writes it; prints "name id"
        kine_write_sql() {
                echo "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT c.name, 0, 0, CASE WHEN c.created <> 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, convert_to('$2', 'UTF8'), c.value
FROM kine AS c WHERE c.id = (SELECT MAX(id) FROM kine WHERE name = '$1') RETURNING name || ' ' || id;"
        }
        # one client session for a stream of statements, errors (a lost race) reported and passed
        sql_stream() { psql -X -q -A -t "postgresql://postgres@127.0.0.1:$PG_PORT/kine" -f - 2>/dev/null; }
        # a shell command line running the SQL in file $2 on database $1 (for store-cas)
        sql_file_cmd() { echo "psql -X -q -A -t -v ON_ERROR_STOP=1 postgresql://postgres@127.0.0.1:$PG_PORT/$1 -f $2"; }
else
        NAME=MariaDB
        sql() { my_sql "$@"; }
        sql_my_start
        sql_my_kine_schema
        EP=$MY_EP
        ep_db() { echo "mysql://kine:$SQL_PASSWORD@tcp(127.0.0.1:$MY_PORT)/$1"; }
        ep_wrongpw() { echo "mysql://kine:wrong@tcp(127.0.0.1:$MY_PORT)/kine"; }
        ep_down() { echo "mysql://kine:$SQL_PASSWORD@tcp(127.0.0.1:$(_sql_free_port))/kine"; }
        ep_tls() { echo "mysql://kine:$SQL_PASSWORD@tcp(127.0.0.1:$MY_PORT)/kine"; }
        TLS_DIR=$MY_DIR/tls
        new_db() { my_sql mysql <<<"CREATE DATABASE $1;"; }
        kine_schema() { sql_my_kine_schema "$1"; }
        server_restart() { sql_my_restart; }
        HEX="hex(%s)"
        BYTES="'%s'"
        kine_write_sql() {
                echo "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT c.name, 0, 0, CASE WHEN c.created <> 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, '$2', c.value
FROM kine AS c WHERE c.id = (SELECT MAX(id) FROM kine WHERE name = '$1');
SELECT '$1', LAST_INSERT_ID() FROM DUAL WHERE ROW_COUNT() = 1;"
        }
        sql_stream() { mariadb --no-defaults --socket="$MY_DIR/sock" -uroot -N -B --force kine 2>/dev/null | tr '\t' ' '; }
        sql_file_cmd() { echo "mariadb --no-defaults --socket=$MY_DIR/sock -uroot -N -B $1 <$2 | tr '\t' ' '"; }
fi

ST="$W/state"
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
se_kine_seed "$SEED" "$W/seed.sqlite" "$NSEC" --value-size 256 --namespaces 7
sql_copy_kine "$W/seed.sqlite" "$KIND"
check "$NAME: $NSEC secrets seeded as kine writes them" \
        test "$(sql <<<"SELECT COUNT(*) FROM kine WHERE name LIKE '/registry/secrets/%'")" = "$NSEC"

run() { se_capture "$W" "$@"; }
restart() { "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1; }
status_has() { "$CLI" status 2>/dev/null | grep -qxF -- "$1"; }
active_key() { "$CLI" status 2>/dev/null | awk '$1 == "*" { print $NF }'; }
stage() { "$CLI" status 2>/dev/null | sed -n 's/^Current Rotation Stage: //p'; }

# expect_refused NAME EXIT PATTERN ENDPOINT [LINE…]: verify through ENDPOINT (and settings LINEs)
# exits EXIT with PATTERN in its message (the state dir is the real one: only the datastore differs).
expect_refused() {
        local name=$1 want=$2 pat=$3 ep=$4
        shift 4
        se_settings "$W/bad.yaml" "$ST" "$ep" node-1 "timeout: 5s" "$@"
        SECRETS_ENCRYPT_CONFIG="$W/bad.yaml" run "$CLI" verify
        if [ "$rc" = "$want" ] && grep -qE -- "$pat" "$W/err"; then
                ok "$NAME: $name: exit $want, \"$(grep -oE -- "$pat" "$W/err" | head -n 1)\""
        else
                not_ok "$NAME: $name (exit $rc, want $want and /$pat/)"
                sed 's/^/#   /' "$W/out" "$W/err" | head -n 10
        fi
        if grep -q "$SQL_PASSWORD" "$W/out" "$W/err"; then not_ok "$NAME: $name: the password appears in the output"; fi
}

# kine_exact [DB [N]]: every row we or the writer added supersedes its predecessor the way kine
# does (N secret names, default NSEC).
kine_exact() {
        local bad db=${1:-kine} n=${2:-$NSEC}
        bad=$(sql "$db" <<<"SELECT COUNT(*) FROM kine AS n JOIN kine AS p ON p.id = n.prev_revision
WHERE n.created = 0 AND n.deleted = 0 AND n.name LIKE '/registry/%' AND (n.name <> p.name OR n.id <= p.id OR
 n.create_revision <> CASE WHEN p.created <> 0 THEN p.id ELSE p.create_revision END OR n.lease <> p.lease OR
 p.deleted <> 0 OR $(printf "$HEX" n.old_value) <> $(printf "$HEX" p.value) OR n.old_value IS NULL)")
        [ "$bad" = 0 ] || { echo "$bad update rows differ from kine's rule"; return 1; }
        bad=$(sql "$db" <<<"SELECT COUNT(*) FROM kine AS n LEFT JOIN kine AS p ON p.id = n.prev_revision
WHERE n.created = 0 AND n.deleted = 0 AND n.name LIKE '/registry/%' AND p.id IS NULL")
        [ "$bad" = 0 ] || { echo "$bad update rows supersede no row"; return 1; }
        bad=$(sql "$db" <<<"SELECT COUNT(*) FROM (SELECT name, prev_revision FROM kine GROUP BY name, prev_revision HAVING COUNT(*) > 1) AS d")
        [ "$bad" = 0 ] || { echo "$bad revisions superseded twice"; return 1; }
        bad=$(sql "$db" <<<"SELECT COUNT(*) FROM (SELECT name FROM kine WHERE name LIKE '/registry/secrets/%' GROUP BY name) AS d")
        [ "$bad" = "$n" ] || { echo "$bad secret names, want $n"; return 1; }
}

# all_under KEY: verify counts every secret under KEY, none stale or unreadable
all_under() {
        run "$CLI" verify || return 1
        grep -qE "^ +aescbc +$1 +$NSEC\$" "$W/out" && grep -qx "0 not under the write key, 0 unreadable" "$W/out"
}

# ---- safety: never an empty store -------------------------------------------------------------------
restart || { not_ok "$NAME: first start (hook)"; sed 's/^/#   /' "$W/hook.log" | tail -n 5; exit 1; }
check "$NAME: first start: stage start" status_has "Current Rotation Stage: start"
run "$CLI" verify
check "$NAME: verify reads all $NSEC secrets (identity)" grep -qE "^ +identity +.* $NSEC\$" "$W/out"
expect_refused "wrong password" 77 "check the user and password" "$(ep_wrongpw)"
expect_refused "missing database" 69 "does not exist|Unknown database" "$(ep_db nosuchdb)"
expect_refused "server down" 69 "cannot connect" "$(ep_down)"
se_settings "$W/tls.yaml" "$ST" "$(ep_tls)" node-1 "datastore-cafile: $TLS_DIR/ca.crt"
SECRETS_ENCRYPT_CONFIG="$W/tls.yaml" run "$CLI" verify
check "$NAME: TLS with datastore-cafile (server certificate verified): verify reads all $NSEC secrets" \
        grep -qE "^ +identity +.* $NSEC\$" "$W/out"
expect_refused "TLS, server certificate from another CA" 69 "TLS failed" "$(ep_tls)" "datastore-cafile: $TLS_DIR/other-ca.crt"
new_db empty_db
expect_refused "a database with no tables" 69 "no tables, not a kine database" "$(ep_db empty_db)"
new_db foreign_db
sql foreign_db <<<"CREATE TABLE kine (id INTEGER PRIMARY KEY, key_name VARCHAR(100), payload TEXT);" >/dev/null
expect_refused "a table \"kine\" that is not kine's" 69 "is not kine's" "$(ep_db foreign_db)"
new_db other_db
sql other_db <<<"CREATE TABLE accounts (id INTEGER PRIMARY KEY);" >/dev/null
expect_refused "a database without kine's table" 69 "no table \"kine\"" "$(ep_db other_db)"
new_db nodata_db
kine_schema nodata_db
expect_refused "kine's table with nothing under /registry/" 69 "no Kubernetes data" "$(ep_db nodata_db)"

# ---- deleted keys across pages ------------------------------------------------------------------------
# A page is read as the current rows of the next names, deleted ones included: 1500 deleted names
# (kine's create row and tombstone each) between live ones fill whole queries, and the reads must
# go on past them. store-cas reads one page (of at most 1000) and writes it; verify pages through.
new_db tomb_db
kine_schema tomb_db
tomb_rows() {
        local i k sep=""
        echo "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES"
        for ((i = 0; i < 1506; i++)); do
                case $i in 0 | 1 | 2) k=a-$i ;; 1503 | 1504 | 1505) k=c-$i ;; *) k=b-$i ;; esac
                printf '%s(%s, 1, 0, 0, 0, 0, %s, NULL)\n' "$sep" "'/registry/secrets/ns/$k'" "$(printf "$BYTES" "v$i")"
                sep=,
        done
        echo ";"
        echo "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT name, 0, 1, id, id, 0, value, value FROM kine WHERE name LIKE '/registry/secrets/ns/b-%';"
}
tomb_rows | sql tomb_db >/dev/null
"$BIN/store-cas" "$(ep_db tomb_db)" /registry/secrets/ true >"$W/tomb.out" 2>"$W/tomb.err"
check "$NAME: one page read past 1500 deleted names: the 6 live keys, in order" \
        test "$(awk '{ print $1 }' "$W/tomb.out" | tr '\n' ' ')" = \
        "/registry/secrets/ns/a-0 /registry/secrets/ns/a-1 /registry/secrets/ns/a-2 /registry/secrets/ns/c-1503 /registry/secrets/ns/c-1504 /registry/secrets/ns/c-1505 written "
se_settings "$W/tomb.yaml" "$ST" "$(ep_db tomb_db)" node-1 "timeout: 30s"
SECRETS_ENCRYPT_CONFIG="$W/tomb.yaml" run "$CLI" verify
check "$NAME: verify pages past 1500 deleted names: 6 secrets" grep -qx "6 secrets" "$W/out"

# ---- a conflict in the middle of a batch --------------------------------------------------------------
# store-cas reads 12 secrets, another client then writes three of them in the middle (kine's update
# rows), and the batch of 12 goes in one update: those three are conflicts (the writer's rows stay
# current, nothing of ours is added for them), the other nine are written, the rows kine-exact.
new_db cas_db
kine_schema cas_db
se_kine_seed "$SEED" "$W/cas.sqlite" 12 --value-size 64 --namespaces 1
sql_copy_kine "$W/cas.sqlite" "$KIND" cas_db
cas_key() { printf '/registry/secrets/ns-0/secret-%07d' "$1"; }
# cas_round NAME WRITER-INDEXES… [env for store-cas in CAS_ENV]
cas_round() {
        local name=$1 i bad=0 key line cur want got
        shift
        : >"$W/cas-writer.sql"
        for i in "$@"; do kine_write_sql "$(cas_key "$i")" "$name-writer-$i" >>"$W/cas-writer.sql"; done
        # shellcheck disable=SC2086 # CAS_ENV: words on purpose
        env ${CAS_ENV:-} "$BIN/store-cas" "$(ep_db cas_db)" /registry/secrets/ \
                "$(sql_file_cmd cas_db "$W/cas-writer.sql") >$W/cas-writes" >"$W/cas.out" 2>"$W/cas.err" ||
                { not_ok "$NAME: $name: store-cas failed"; sed 's/^/#   /' "$W/cas.err"; return; }
        for ((i = 0; i < 12; i++)); do
                key=$(cas_key "$i")
                line=$(grep -F "$key " "$W/cas.out")
                cur=$(sql cas_db <<<"SELECT id, prev_revision, $(printf "$HEX" value) FROM kine WHERE name = '$key' ORDER BY id DESC LIMIT 1" | tr '|\t' '  ')
                if [[ " $* " == *" $i "* ]]; then
                        # the writer's row is current, and it is the row the writer reported
                        [ "$line" = "$key conflict" ] && [ "${cur%% *}" = "$(awk -v k="$key" '$1 == k { print $2 }' "$W/cas-writes")" ] ||
                                { bad=$((bad + 1)); echo "# $key: $line; current $cur"; }
                else
                        want=$(printf 'cas-%d' "$i" | od -An -tx1 | tr -d ' \n')
                        got=${cur##* }
                        [ "$line" = "$key written ${cur%% *}" ] && [ "${got,,}" = "$want" ] ||
                                { bad=$((bad + 1)); echo "# $key: $line; current $cur"; }
                fi
        done
        check "$NAME: $name: a batch of 12 with $# keys written meanwhile by another client: those are conflicts and keep the writer's rows, the other $((12 - $#)) are written ($(tail -n 1 "$W/cas.out"))" \
                test "$bad" = 0 -a "$(tail -n 1 "$W/cas.out")" = "written $((12 - $#))"
        check "$NAME: $name: rows kine-exact" kine_exact cas_db 12
}
cas_round "CAS batch" 3 7 8
CAS_ENV=STORE_CAS_READ_AHEAD=1 cas_round "CAS batch read ahead on the second connection" 1 10
[ "$KIND" = my ] && CAS_ENV=SE_TEST_MYSQL_NO_RETURNING=1 cas_round "CAS batch, one statement per key (MySQL, no RETURNING)" 0 5 11

# PostgreSQL: our session writes with lz4 (the server offers it); a value that compresses is stored
# so and reads back whole (ciphertext does not compress with either method).
if [ "$KIND" = pg ]; then
        STORE_CAS_VALUE_SIZE=8192 "$BIN/store-cas" "$(ep_db cas_db)" /registry/secrets/ true >"$W/cas.out" 2>"$W/cas.err" ||
                { not_ok "$NAME: store-cas failed"; sed 's/^/#   /' "$W/cas.err"; }
        check "$NAME: 12 compressible values of 8 KiB written by the store: stored with lz4, read back whole" \
                test "$(sql cas_db <<<"SELECT COUNT(*) FROM kine AS kv WHERE kv.id = (SELECT MAX(id) FROM kine WHERE name = kv.name)
AND pg_column_compression(kv.value) = 'lz4' AND kv.value = convert_to(rpad('cas-' || substr(kv.name, 31)::int, 8192, '.'), 'UTF8')")" = 12
        check "$NAME: the 8 KiB values: rows kine-exact" kine_exact cas_db 12
fi

# A live row whose value is NULL (kine never writes one, a table may hold one): a batch over it
# supersedes it like any other, its successor's old_value NULL (MariaDB binds it as NULL).
null_key=$(cas_key 4)
null_id=$(sql cas_db <<<"INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
SELECT c.name, 0, 0, CASE WHEN c.created <> 0 THEN c.id ELSE c.create_revision END, c.id, c.lease, NULL, c.value
FROM kine AS c WHERE c.id = (SELECT MAX(id) FROM kine WHERE name = '$null_key');
SELECT MAX(id) FROM kine WHERE name = '$null_key';" | tail -n 1)
"$BIN/store-cas" "$(ep_db cas_db)" /registry/secrets/ true >"$W/cas.out" 2>"$W/cas.err" ||
        { not_ok "$NAME: store-cas over a NULL value failed"; sed 's/^/#   /' "$W/cas.err"; }
check "$NAME: a live row with a NULL value is superseded, old_value NULL ($(grep -F "$null_key " "$W/cas.out"))" \
        test "$(sql cas_db <<<"SELECT prev_revision, CASE WHEN old_value IS NULL THEN 'null' ELSE 'set' END, $(printf "$HEX" value) FROM kine WHERE name = '$null_key' ORDER BY id DESC LIMIT 1" | tr '|\t' '  ' | tr 'A-F' 'a-f')" = "$null_id null $(printf 'cas-4' | od -An -tx1 | tr -d ' \n')"
check "$NAME: the batch over a NULL value wrote all 12 ($(tail -n 1 "$W/cas.out"))" test "$(tail -n 1 "$W/cas.out")" = "written 12"

# ---- the single-server flow, a concurrent writer during the re-encryption ---------------------------
run "$CLI" prepare && restart && run "$CLI" rotate && restart
check "$NAME: prepare, rotate (with restarts): stage rotate" status_has "Current Rotation Stage: rotate"
newkey=$(active_key)
rows_before=$(sql <<<"SELECT COUNT(*) FROM kine")

# the writer: kine update rows on secrets of every namespace while the re-encryption runs slowly
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s" "reencrypt-rate: 500"
bg "$CLI" reencrypt >"$W/reencrypt.out" 2>&1
rpid=$BG_PID
w=0
while kill -0 "$rpid" 2>/dev/null && [ "$w" -lt 3000 ]; do
        w=$((w + 1))
        i=$(((w * 37) % NSEC))
        kine_write_sql "$(printf '/registry/secrets/ns-%d/secret-%07d' $((i % 7)) "$i")" "writer-$w"
        sleep 0.003
done | sql_stream | grep -v '^$' >"$W/writes"
wait "$rpid"
rrc=$?
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s"
check "$NAME: reencrypt beside a writer: exit 0 (it wrote $(wc -l <"$W/writes") rows meanwhile; $(grep -o '[0-9]* newer writes by the server' "$W/reencrypt.out"))" test "$rrc" = 0
check "$NAME: stage reencrypt_finished" status_has "Current Rotation Stage: reencrypt_finished"

# no write lost: each key's last writer row is current, or our rewrite of it is (we read it)
lost=0
declare -A last
while read -r key id; do last[$key]=$id; done <"$W/writes"
for key in "${!last[@]}"; do
        cur=$(sql <<<"SELECT id, prev_revision FROM kine WHERE name = '$key' ORDER BY id DESC LIMIT 1" | tr '|\t' '  ')
        read -r cid cprev <<<"$cur"
        if [ "$cid" != "${last[$key]}" ] && [ "$cprev" != "${last[$key]}" ]; then
                lost=$((lost + 1))
                echo "# $key: writer's row ${last[$key]}, current $cid (prev $cprev)"
        fi
done
check "$NAME: no write lost: ${#last[@]} keys the writer changed hold its value or our rewrite of it" test "$lost" = 0
# values the writer stored after our pass are plaintext until the next pass: verify says how many
run "$CLI" verify
stale=$(sed -n 's/^\([0-9]*\) not under the write key, 0 unreadable$/\1/p' "$W/out")
under=$(sed -n "s/^ *aescbc *$newkey *\([0-9]*\)\$/\1/p" "$W/out")
check "$NAME: verify: every secret under $newkey or a writer's later plaintext ($under + ${stale:-?} = $NSEC)" \
        test "$((${under:-0} + ${stale:-0}))" = "$NSEC" -a -n "$stale"
check "$NAME: kine-exact rows after the rewrite" kine_exact
added=$(($(sql <<<"SELECT COUNT(*) FROM kine") - rows_before))
check "$NAME: one new row per rewrite or write ($added rows added for $NSEC secrets and $(wc -l <"$W/writes") writes)" \
        test "$added" -ge "$NSEC" -a "$added" -le $((NSEC + $(wc -l <"$W/writes") * 2))
# the writer's plaintext: a forced re-encryption pass leaves nothing stale
run "$CLI" reencrypt -f
frc=$rc
restart
check "$NAME: reencrypt -f (exit $frc) and a restart: every secret under $newkey" all_under "$newkey"

# ---- crash points: SIGKILL after the read, the update, the checkpoint of every batch; the hook resumes --
nb=$(((NSEC + 499) / 500))
points=()
for ((b = 1; b <= nb; b++)); do
        if [ "$STRESS" = 1 ] || [ "$b" = 1 ] || [ "$b" = "$nb" ]; then
                points+=("read:$b" "update:$b" "checkpoint:$b")
        else
                points+=("update:$b")
        fi
done
# rotate-keys changes the write key: the re-encryption then runs in the hook (the restart)
hook() { "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1; }
crash_ok=0
for p in "${points[@]}"; do
        old=$(active_key)
        run "$CLI" rotate-keys
        (SE_TEST_REENCRYPT_KILL=$p hook) 2>/dev/null
        killed=$?
        hook
        k=$(active_key)
        if [ "$killed" = 137 ] && [ "$(stage)" = reencrypt_finished ] && [ "$k" != "$old" ] && all_under "$k" &&
                kine_exact >/dev/null; then
                crash_ok=$((crash_ok + 1))
        else
                not_ok "$NAME: hook killed at $p (exit $killed), resumed by the next start: stage $(stage), key $k"
                sed 's/^/#   /' "$W/out" "$W/err" | head -n 10
                tail -n 5 "$W/hook.log" | sed 's/^/#   /'
        fi
done
[ "$crash_ok" = "${#points[@]}" ] && ok "$NAME: re-encryption killed at ${#points[@]} points (${points[*]}); each resumed by the next start, every secret under the new key, rows kine-exact"

# a clean run: one new row per secret, with ids in one unbroken run (kine's pollers read rows by
# ascending id and would wait on, then fill, any gap)
old=$(active_key)
max_before=$(sql <<<"SELECT MAX(id) FROM kine")
run "$CLI" rotate-keys
hook
ids=$(sql <<<"SELECT COUNT(*), MAX(id) - MIN(id) + 1, MIN(id) - $max_before FROM kine WHERE id > $max_before" | tr '|\t' '  ')
check "$NAME: rotate-keys and a restart: $NSEC new rows with consecutive ids right after the last one (count, span, offset: $ids)" \
        test "$ids" = "$NSEC $NSEC 1"
clean_ok() { [ "$(active_key)" != "$old" ] && all_under "$(active_key)" && kine_exact; }
check "$NAME: rotate-keys and a restart: every secret under the new key, rows kine-exact" clean_ok

# SIGKILL at a moment inside a batch (rate-limited so that a batch takes a while)
rounds=1
[ "$STRESS" = 1 ] && rounds=4
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s" "reencrypt-rate: 1500"
for ((r = 1; r <= rounds; r++)); do
        old=$(active_key)
        run "$CLI" rotate-keys
        bg "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1
        sleep "0.$((2 + r))"
        kill -KILL "$BG_PID" 2>/dev/null
        { wait "$BG_PID"; } 2>/dev/null
        hook
        k=$(active_key)
        check "$NAME: re-encryption killed $r/$rounds at 0.$((2 + r)) s, resumed by the next start" \
                test "$(stage)/$([ "$k" != "$old" ] && echo new)" = "reencrypt_finished/new"
        check "$NAME: after the kill: every secret under $k" all_under "$k"
        check "$NAME: after the kill: rows kine-exact" kine_exact
done

# ---- a server restart in the middle of the re-encryption --------------------------------------------
old=$(active_key)
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s" "reencrypt-rate: 400"
run "$CLI" rotate-keys
bg "$HOOK" --unit=stand-in.service >"$W/rk.out" 2>&1
rpid=$BG_PID
sleep 1
server_restart || { not_ok "$NAME: server restart"; exit 1; }
wait "$rpid"
rrc=$?
if [ "$rrc" = 0 ]; then
        ok "$NAME: server restarted during the re-encryption: the run reconnected and went on (exit 0)"
else
        not_ok "$NAME: server restarted during the re-encryption: exit $rrc"
        sed 's/^/#   /' "$W/rk.out" | head -n 10
fi
grep -q "connection lost\|cannot connect" "$W/rk.out" && echo "# $(grep -m1 "connection lost\|cannot connect" "$W/rk.out")"
hook
k=$(active_key)
check "$NAME: after the server restart the next start completes it" test "$(stage)/$([ "$k" != "$old" ] && echo new)" = "reencrypt_finished/new"
check "$NAME: after the server restart: every secret under $k" all_under "$k"
check "$NAME: after the server restart: rows kine-exact" kine_exact
se_settings "$W/config.yaml" "$ST" "$EP" node-1 "timeout: 30s"

se_common_finish
