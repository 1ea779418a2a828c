#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The safety invariant (SPEC §5.0): one regression test per path that used to leave stored values
# unreadable while every command reported success, on real kine SQLite databases, the CLI, the
# hook (standing for a restart) and the stand-in API server as a live writer. The database is read
# with tests/integration/kine-inspect.py, which shares no code with the library.
#
#   1. a mistyped datastore path is an error (69), never an empty store; nothing changes
#   2. every resources entry survives every edit; re-encryption covers what the entry covers
#   3. no value is rewritten under a key the running server has not loaded
#   4. pending work that cannot finish never blocks a start; aesgcm is migrated away from
#   5. a deleted config is refused when keys existed; a reset needs an explicit flag
#   plus: KMS values without their provider are unreadable to verify; the write key is never
#   pruned; a failed command leaves the stage and every file as they were.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
command -v python3 >/dev/null || { echo "ok - # SKIP python3 missing"; exit 0; }

se_common_init safety
se_common_copy_programs secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/kine-seed \
        tests/tools/stand-in-apiserver
CLI="$BIN/secrets-encrypt"
HOOK="$BIN/secrets-encrypt-hook"
SEED="$BIN/kine-seed"
STANDIN="$BIN/stand-in-apiserver"
INSPECT="python3 tests/integration/kine-inspect.py"
export SECRETS_ENCRYPT_LOG_TARGET=stderr

key() { head -c 32 /dev/urandom | base64; }

# new_node NAME [provider]: a state dir, a database and a settings file; $S, $DB, $STATE set.
new_node() {
        S="$W/$1"
        DB="$S/db.sqlite"
        STATE="$S/state"
        mkdir -p "$S"
        cat >"$S/settings.yaml" <<EOS
state-dir: $STATE
node-name: $1
datastore-endpoint: sqlite://$DB
unit: stand-in.service
secrets-encryption-provider: ${2:-aescbc}
EOS
        se_standin_unit "$STATE"
        export SECRETS_ENCRYPT_CONFIG="$S/settings.yaml"
}
run() {
        "$CLI" "$@" >"$W/out" 2>"$W/err"
        rc=$?
        return "$rc"
}
restart() { "$HOOK" --unit=stand-in.service >"$W/hook.out" 2>&1; }
count() { $INSPECT count "$DB" "$1" "$2"; }
snapshot() { (cd "$STATE" && find . -type f ! -name '.secrets-encrypt.lock' -exec sha256sum {} + | sort); }
# single_key_config FILE TYPE NAME SECRET: a secrets-only config whose write key is the one given,
# for kine-seed --config to write values under that key.
single_key_config() {
        printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"%s":{"keys":[{"name":"%s","secret":"%s"}]}}]}]}' \
                "$2" "$3" "$4" >"$1"
}

# ---- 1. a missing datastore is not an empty one ----------------------------------------------------
new_node missing
"$SEED" "$DB" 10 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "missing: first start" restart
before=$(snapshot)
for bad in "sqlite://$W/typo/state.db" "sqlite://$S/nonexistent.db"; do
        for cmd in verify "reencrypt -f" rotate-keys disable; do
                # shellcheck disable=SC2086
                run --datastore-endpoint "$bad" $cmd
                if [ "$rc" = 69 ] && grep -q "does not exist" "$W/err"; then
                        ok "missing: $cmd on ${bad#sqlite://$W/} exits 69 naming the path"
                else
                        not_ok "missing: $cmd on ${bad#sqlite://$W/} (exit $rc)"
                        sed 's/^/#   /' "$W/out" "$W/err" | head -5
                fi
                check "missing: $cmd changed no state file" test "$(snapshot)" = "$before"
                check "missing: $cmd printed no success line" test ! -s "$W/out" -o "$cmd" = "reencrypt -f"
        done
done
check "missing: the mistyped directory was not created" test ! -e "$W/typo"
check "missing: the mistyped file was not created" test ! -e "$S/nonexistent.db"
: >"$S/empty.db"
run --datastore-endpoint "sqlite://$S/empty.db" verify
check "missing: an empty file is not a datastore (69)" test "$rc" = 69
sqlite3 "$S/other.db" 'CREATE TABLE t(x)' 2>/dev/null || python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('CREATE TABLE t(x)')" "$S/other.db"
run --datastore-endpoint "sqlite://$S/other.db" reencrypt -f
check "missing: an SQLite file that is not kine's is refused (69)" test "$rc" = 69
python3 -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('CREATE TABLE kine(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, created INTEGER, deleted INTEGER, create_revision INTEGER, prev_revision INTEGER, lease INTEGER, value BLOB, old_value BLOB)')" "$S/nodata.db"
run --datastore-endpoint "sqlite://$S/nodata.db" rotate-keys
if [ "$rc" = 69 ] && grep -q "holds no Kubernetes data" "$W/err"; then
        ok "missing: a kine database with nothing under /registry/ is refused (69)"
else
        not_ok "missing: kine database without /registry/ data (exit $rc)"
fi
check "missing: still nothing changed" test "$(snapshot)" = "$before"
check "missing: every secret still under the first key" test "$(count /registry/secrets/ k8s:enc:aescbc:v1:aescbckey:)" = 0 -o "$(count /registry/secrets/ '')" = 10

# ---- 2. every entry survives; re-encryption covers what the rotated entry covers -------------------
new_node entries
K1=$(key) K2=$(key) K3=$(key)
mkdir -p "$STATE" && chmod 0700 "$STATE"
cat >"$STATE/encryption-config.json" <<EOC
{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[
 {"resources":["configmaps"],"providers":[{"aescbc":{"keys":[{"name":"cm1","secret":"$K1"}]}},{"identity":{}}]},
 {"resources":["secrets","leases.coordination.k8s.io"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"$K2"}]}},{"identity":{}}]},
 {"resources":["*.*"],"providers":[{"secretbox":{"keys":[{"name":"sb1","secret":"$K3"}]}},{"identity":{}}]}]}
EOC
chmod 0600 "$STATE/encryption-config.json"
single_key_config "$S/k2.json" aescbc aescbckey "$K2"
single_key_config "$S/k1.json" aescbc cm1 "$K1"
single_key_config "$S/k3.json" secretbox sb1 "$K3"
"$SEED" "$DB" 20 --config "$S/k2.json" >/dev/null 2>&1 &&
        "$SEED" "$DB" 6 --prefix /registry/leases/ --config "$S/k2.json" >/dev/null 2>&1 &&
        "$SEED" "$DB" 7 --prefix /registry/configmaps/ --config "$S/k1.json" >/dev/null 2>&1 &&
        "$SEED" "$DB" 8 --prefix /registry/deployments/ --config "$S/k3.json" >/dev/null 2>&1 ||
        { echo "not ok - kine-seed"; exit 1; }
for i in 0 2; do $INSPECT entry "$STATE/encryption-config.json" $i >"$S/entry$i.orig"; done
check "entries: first start with a three-entry config" restart
for step in prepare rotate reencrypt disable enable; do
        run $step
        check "entries: $step succeeds" test "$rc" = 0
        restart
        for i in 0 2; do
                check "entries: $step keeps entry $i byte for byte" cmp -s "$S/entry$i.orig" \
                        <($INSPECT entry "$STATE/encryption-config.json" $i)
        done
        check "entries: $step keeps the rotated entry's resources" test \
                "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resources"][1]["resources"])' "$STATE/encryption-config.json")" \
                = "['secrets', 'leases.coordination.k8s.io']"
done
run rotate-keys
check "entries: rotate-keys succeeds" test "$rc" = 0
restart
check "entries: rotate-keys leaves the server's hook at reencrypt_finished" grep -q "reencrypt_finished" "$STATE/encryption-state.json"
for i in 0 2; do
        check "entries: rotate-keys keeps entry $i" cmp -s "$S/entry$i.orig" <($INSPECT entry "$STATE/encryption-config.json" $i)
done
newkey=$($INSPECT keys "$STATE/encryption-config.json" 1 | sed -n 1p | cut -d: -f2-)
check "entries: the old secrets key is gone from the rotated entry" bash -c "! $INSPECT keys '$STATE/encryption-config.json' 1 | grep -qx aescbc:aescbckey"
check "entries: every secret is under the new write key" test "$(count /registry/secrets/ "k8s:enc:aescbc:v1:$newkey:")" = 20
check "entries: leases (covered by the rotated entry) were re-encrypted too" test "$(count /registry/leases/ "k8s:enc:aescbc:v1:$newkey:")" = 6
check "entries: configmaps keep their own entry's key" test "$(count /registry/configmaps/ k8s:enc:aescbc:v1:cm1:)" = 7
check "entries: deployments keep the wildcard entry's key" test "$(count /registry/deployments/ k8s:enc:secretbox:v1:sb1:)" = 8
run verify
check "entries: verify reads everything (exit 0)" test "$rc" = 0
check "entries: verify counted the other resources' encrypted values" grep -q "^21 encrypted values of other resources" "$W/out"
check "entries: the removed key is archived" bash -c "ls '$STATE/removed-keys' | grep -q aescbckey"

# ---- 3. nothing is rewritten under a key the running server has not loaded -------------------------
new_node running
"$SEED" "$DB" 30 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "running: first start" restart
cp "$STATE/encryption-config.json" "$S/loaded.json"
bg "$STANDIN" --encryption-provider-config "$S/loaded.json" --datastore "sqlite://$DB" --write-interval-ms 20
srv=$BG_PID
sleep 0.3
run rotate-keys
if [ "$rc" = 0 ] && grep -q "^keys rotated, reencryption pending: stand-in.service on running has not started" "$W/out"; then
        ok "running: rotate-keys without a restart does the safe part and names the restart"
else
        not_ok "running: rotate-keys without a restart (exit $rc)"
        sed 's/^/#   /' "$W/out" "$W/err" | head -5
fi
newkey=$($INSPECT keys "$STATE/encryption-config.json" 0 | sed -n 1p | cut -d: -f2-)
check "running: no value was written under the new key while the server cannot read it" \
        test "$(count /registry/secrets/ "k8s:enc:aescbc:v1:$newkey:")" = 0
check "running: the old key is still configured" bash -c "$INSPECT keys '$STATE/encryption-config.json' 0 | grep -qx aescbc:aescbckey"
run reencrypt -f
check "running: reencrypt -f is deferred as well (nothing rewritten)" test "$rc" = 0 -a \
        "$(count /registry/secrets/ "k8s:enc:aescbc:v1:$newkey:")" = 0
sleep 0.3
stop_bg "$srv"
check "running: restart (the hook re-encrypts and prunes while the server is down)" restart
cp "$STATE/encryption-config.json" "$S/loaded.json"
check "running: the stand-in starts: every secret it and the hook wrote is readable" \
        "$STANDIN" --encryption-provider-config "$S/loaded.json" --datastore "sqlite://$DB" --check-only
run verify
check "running: verify after the restart: 0 unreadable" test "$rc" = 0
check "running: the old key was removed" bash -c "! $INSPECT keys '$STATE/encryption-config.json' 0 | grep -qx aescbc:aescbckey"
# prepare, then reencrypt before the restart that loads the new key: the server still writes with
# the old key, which must stay
run prepare
run rotate -f
run reencrypt -f
check "running: reencrypt after rotate without a restart is deferred" grep -q "^reencryption pending" "$W/out"
check "running: no key removed before the restart" test "$($INSPECT keys "$STATE/encryption-config.json" 0 | wc -l)" = 2
run reencrypt -f --restart --user 2>/dev/null
restart
check "running: the restart finishes it" grep -q reencrypt_finished "$STATE/encryption-state.json"

# ---- 4. work that cannot finish never blocks a start; aesgcm is migrated away from -----------------
new_node blocked
"$SEED" "$DB" 10 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "blocked: first start" restart
old=$($INSPECT keys "$STATE/encryption-config.json" 0 | head -n 1 | cut -d: -f2-)
single_key_config "$S/old.json" aescbc "$old" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resources"][0]["providers"][0]["aescbc"]["keys"][0]["secret"])' "$STATE/encryption-config.json")"
# a value under the old key outside what the entry covers: the key cannot go while it is there
"$SEED" "$DB" 1 --prefix /registry/configmaps/ --config "$S/old.json" >/dev/null 2>&1
run rotate-keys
restart
hook_rc=$?
check "blocked: the hook lets the server start (exit 0) although the old key cannot be removed" test "$hook_rc" = 0
check "blocked: and says why in an event" grep -q "cannot finish yet" "$W/hook.out"
check "blocked: the old key is kept" bash -c "$INSPECT keys '$STATE/encryption-config.json' 0 | grep -qx 'aescbc:$old'"
check "blocked: a second start succeeds as well" restart

new_node aesgcm
G=$(key) C=$(key)
mkdir -p "$STATE" && chmod 0700 "$STATE"
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"%s"}]}},{"aesgcm":{"keys":[{"name":"gcm1","secret":"%s"}]}},{"identity":{}}]}]}' "$C" "$G" >"$STATE/encryption-config.json"
single_key_config "$S/g.json" aesgcm gcm1 "$G"
"$SEED" "$DB" 12 --config "$S/g.json" >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "aesgcm: first start with an aesgcm read key" restart
run reencrypt -f
check "aesgcm: reencrypt -f succeeds (exit 0)" test "$rc" = 0
check "aesgcm: its values were rewritten under the write key" test "$(count /registry/secrets/ k8s:enc:aescbc:v1:aescbckey:)" = 12
check "aesgcm: the aesgcm key was removed after the scan" bash -c "! $INSPECT keys '$STATE/encryption-config.json' 0 | grep -q aesgcm"
check "aesgcm: the next start succeeds" restart
run verify
check "aesgcm: verify 0 unreadable" test "$rc" = 0

# ---- 5. a deleted config is refused ---------------------------------------------------------------
new_node deleted
"$SEED" "$DB" 5 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "deleted: first start" restart
rm "$STATE/encryption-config.json"
restart
hook_rc=$?
check "deleted: the hook refuses to start (78)" test "$hook_rc" = 78
check "deleted: and names the recovery" grep -q "Restore the file from a backup" "$W/hook.out"
check "deleted: no new key was generated" test ! -e "$STATE/encryption-config.json"
run reset-state
check "deleted: reset-state without --discard-keys is a usage error (64)" test "$rc" = 64
run reset-state --discard-keys
check "deleted: reset-state --discard-keys" test "$rc" = 0
check "deleted: the next start generates a config again" restart

# ---- plus: KMS values, the write key, failed commands ---------------------------------------------
new_node kms
"$SEED" "$DB" 3 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "kms: first start" restart
$INSPECT put "$DB" /registry/secrets/default/kms-one "k8s:enc:kms:v2:vault:opaque"
run verify
check "kms: a KMS value with no such provider is unreadable (65)" test "$rc" = 65
check "kms: and listed" grep -q "unreadable: /registry/secrets/default/kms-one" "$W/out"

new_node writekey
SB=$(key) CB=$(key)
mkdir -p "$STATE" && chmod 0700 "$STATE"
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"secretbox":{"keys":[{"name":"sbkey","secret":"%s"}]}},{"aescbc":{"keys":[{"name":"aescbckey","secret":"%s"}]}},{"identity":{}}]}]}' "$SB" "$CB" >"$STATE/encryption-config.json"
single_key_config "$S/sb.json" secretbox sbkey "$SB"
"$SEED" "$DB" 9 --config "$S/sb.json" >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "writekey: first start, secretbox first, provider aescbc" restart
run reencrypt -f
check "writekey: reencrypt -f" test "$rc" = 0
check "writekey: the secretbox write key is still there" bash -c "$INSPECT keys '$STATE/encryption-config.json' 0 | grep -qx secretbox:sbkey"
run verify
check "writekey: verify 0 unreadable" test "$rc" = 0

new_node failed
"$SEED" "$DB" 4 >/dev/null 2>&1 || { echo "not ok - kine-seed"; exit 1; }
check "failed: first start" restart
before=$(snapshot)
stage=$("$CLI" status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stage"])')
run --datastore-endpoint "sqlite://$S/gone.db" reencrypt -f
check "failed: reencrypt -f on a datastore that cannot be opened exits 69" test "$rc" = 69
check "failed: ... and no success line" bash -c "! grep -q 'reencryption finished' '$W/out'"
check "failed: the stage is as it was" test "$("$CLI" status -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stage"])')" = "$stage"
check "failed: every state file is as it was" test "$(snapshot)" = "$before"

se_common_finish
