#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# k3s's single-server scenarios (reference/k3s-secrets-encrypt.md §9.1, the single-server parts
# of §9.4) on a kine SQLite datastore with the CLI and the hook, without systemd: running the hook
# directly stands for a restart of the server. Checks k3s's output lines, key names and order,
# preconditions and exit codes, `status -o json` against k3s's shape, and the state-dir lock.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3

se_common_init rotation-cli
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed

STATE="$W/state"
DB="$W/db.sqlite"
NSEED=40
se_settings "$W/config.yaml" "$STATE" "sqlite://$DB"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# events as <N> lines on stderr, never a host journal
export SECRETS_ENCRYPT_LOG_TARGET=stderr
YEAR=$(date -u +%Y)

se_kine_seed "$SEED" "$DB" "$NSEED"

# run ARGS...: the CLI; stdout in $W/out, stderr in $W/err, exit code in $rc.
run() { se_capture "$W" "$CLI" "$@"; }
# restart: the hook, as systemd would run it before the server.
restart() {
        "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1
}
# expect_ok NAME LINE ARGS...: exit 0 and LINE is the last line on stdout.
expect_ok() {
        local name=$1 line=$2
        shift 2
        run "$@"
        if [ "$rc" = 0 ] && [ "$(tail -n 1 "$W/out")" = "$line" ]; then
                ok "$name: \"$line\""
        else
                not_ok "$name (exit $rc)"
                sed 's/^/#   /' "$W/out" "$W/err" | head -n 20
        fi
}
# expect_pending NAME LINE ARGS...: exit 0 and the last line is LINE, then ": <unit> on <node> has not
# started with the current configuration …": the safe part is done, the restart completes it (no
# value is rewritten under a key the running server has not loaded, SPEC §5.0).
expect_pending() {
        local name=$1 line=$2
        shift 2
        run "$@"
        if [ "$rc" = 0 ] && [[ "$(tail -n 1 "$W/out")" == "$line: stand-in.service on node-1 has not started with the current configuration"* ]]; then
                ok "$name: \"$line: …\""
        else
                not_ok "$name (exit $rc)"
                sed 's/^/#   /' "$W/out" "$W/err" | head -n 20
        fi
}
status_has() {
        "$CLI" status >"$W/status" 2>/dev/null && grep -qxF -- "$1" "$W/status"
}
# key_lines: the key table rows (k3s's regex AES-CBC.+aescbckey.* extended to secretbox).
key_lines() {
        "$CLI" status 2>/dev/null | grep -E '(AES-CBC|XSalsa20-POLY1305) +.*key'
}
json_field() {
        "$CLI" status -o json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = d.get(sys.argv[1], "-")
print(len(v) if isinstance(v, list) else v)' "$1"
}
verify_line() {
        "$CLI" verify >"$W/verify" 2>&1
}

# ---- §9.1: classic flow -----------------------------------------------------------------------------
run status
check "no config yet: k3s's one status line" test "$(cat "$W/out")" = "Encryption Status: Disabled, no configuration file found"
check "first start: the hook generates the config" restart
check "start: Encryption Status: Enabled" status_has "Encryption Status: Enabled"
check "start: Current Rotation Stage: start" status_has "Current Rotation Stage: start"
check "start: Server Encryption Hashes: All hashes match" status_has "Server Encryption Hashes: All hashes match"
"$CLI" status >"$W/status" 2>/dev/null
printf 'Encryption Status: Enabled\nCurrent Rotation Stage: start\nServer Encryption Hashes: All hashes match\n\nActive  Key Type  Name\n------  --------  ----\n *      AES-CBC   aescbckey\n\n' >"$W/expected"
check "start: whole status text is k3s's, byte for byte (tabwriter layout, trailing blank line)" cmp "$W/status" "$W/expected"

expect_ok "prepare" "prepare completed successfully" prepare
check "prepare: stage prepare" status_has "Current Rotation Stage: prepare"
mapfile -t k < <(key_lines)
check "prepare: 2 key lines" test "${#k[@]}" = 2
check "prepare: [0] active aescbckey" test "${k[0]:-}" = " *      AES-CBC   aescbckey"
check "prepare: [1] aescbckey-$YEAR… (inactive)" grep -qE "^ +AES-CBC +aescbckey-$YEAR-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" <<<"${k[1]:-}"
newkey=$(awk '{ print $NF }' <<<"${k[1]:-}")
check "restart after prepare" restart
check "restart: stage still prepare" status_has "Current Rotation Stage: prepare"

expect_ok "rotate" "rotate completed successfully" rotate
check "rotate: stage rotate" status_has "Current Rotation Stage: rotate"
mapfile -t k < <(key_lines)
check "rotate: [0] $newkey is active" grep -qE "^ \* +AES-CBC +$newkey$" <<<"${k[0]:-}"
check "rotate: [1] aescbckey inactive" grep -qE "^ +AES-CBC +aescbckey$" <<<"${k[1]:-}"
check "restart after rotate" restart
check "restart: stage still rotate" status_has "Current Rotation Stage: rotate"

run reencrypt
check "reencrypt: prints reencryption started (exit $rc)" grep -qx "reencryption started" "$W/out"
check "reencrypt: stage reencrypt_finished" status_has "Current Rotation Stage: reencrypt_finished"
mapfile -t k < <(key_lines)
check "reencrypt: exactly one key left, $newkey" test "${#k[@]}/$(awk '{ print $NF }' <<<"${k[0]:-}")" = "1/$newkey"
verify_line
check "verify: all $NSEED secrets under $newkey" grep -qE "^ +aescbc +$newkey +$NSEED$" "$W/verify"
check "verify: 0 stale, 0 unreadable" grep -qx "0 not under the write key, 0 unreadable" "$W/verify"

expect_pending "disable" "secrets-encryption disabled, reencryption pending" disable
check "disable: Encryption Status: Disabled" status_has "Encryption Status: Disabled"
check "disable: no active key (identity first)" bash -c "! \"$CLI\" status 2>/dev/null | grep -q '^ \\*'"
verify_line
check "disable: nothing rewritten before the restart (every secret still under $newkey)" grep -qE "^ +aescbc +$newkey +$NSEED$" "$W/verify"
check "restart after disable" restart
run reencrypt -f --skip
check "reencrypt -f --skip: prints reencryption started (exit $rc)" grep -qx "reencryption started" "$W/out"
check "reencrypt -f --skip: still Disabled" status_has "Encryption Status: Disabled"
check "reencrypt -f --skip: stage kept reencrypt_finished" status_has "Current Rotation Stage: reencrypt_finished"
verify_line
check "disabled + reencrypt: every secret stored as plaintext (identity)" grep -qE "^ +identity +.* $NSEED$" "$W/verify"

expect_pending "enable" "secrets-encryption enabled, reencryption pending" enable
check "enable: Encryption Status: Enabled" status_has "Encryption Status: Enabled"
check "enable: All hashes match" status_has "Server Encryption Hashes: All hashes match"
check "restart after enable" restart
verify_line
check "enabled again: every secret under $newkey" grep -qE "^ +aescbc +$newkey +$NSEED$" "$W/verify"

# ---- §9.4 single-server parts -----------------------------------------------------------------------
expect_pending "rotate-keys" "keys rotated, reencryption pending" rotate-keys
check "rotate-keys: stage reencrypt_active until the restart" status_has "Current Rotation Stage: reencrypt_active"
mapfile -t k < <(key_lines)
check "rotate-keys: the old key is kept until the restart" test "${#k[@]}" = 2
check "restart after rotate-keys (the hook re-encrypts and prunes)" restart
check "rotate-keys: stage reencrypt_finished" status_has "Current Rotation Stage: reencrypt_finished"
mapfile -t k < <(key_lines)
rk=$(awk '{ print $NF }' <<<"${k[0]:-}")
check "rotate-keys: one new key ($rk)" test "${#k[@]}" = 1 -a "$rk" != "$newkey" -a -n "$rk"
verify_line
check "rotate-keys: every secret under $rk" grep -qE "^ +aescbc +$rk +$NSEED$" "$W/verify"

expect_pending "disable/enable cycle: disable" "secrets-encryption disabled, reencryption pending" disable
check "cycle: Disabled" status_has "Encryption Status: Disabled"
run enable
check "cycle: enable while the disable's re-encryption is pending is refused (79), naming the restart" \
        bash -c "[ $rc = 79 ] && grep -q 'restart stand-in.service' '$W/err'"
check "cycle: restart (the hook re-encrypts as plaintext)" restart
expect_pending "disable/enable cycle: enable" "secrets-encryption enabled, reencryption pending" enable
check "cycle: restart (the hook re-encrypts under the key again)" restart
check "cycle: Enabled, stage reencrypt_finished" bash -c \
        "\"$CLI\" status | grep -qx 'Encryption Status: Enabled' && \"$CLI\" status | grep -qx 'Current Rotation Stage: reencrypt_finished'"

expect_pending "secretbox migration: rotate-keys --secrets-encryption-provider secretbox" \
        "keys rotated, reencryption pending" rotate-keys --secrets-encryption-provider secretbox
check "restart during the migration (the hook re-encrypts and prunes)" restart
"$CLI" status >"$W/status" 2>/dev/null
check "secretbox: status shows XSalsa20-POLY1305 as the active key" grep -qE '^ \* +XSalsa20-POLY1305 +secretboxkey' "$W/status"
check "secretbox: the aescbc key was removed" bash -c "! grep -q AES-CBC '$W/status'"
check "secretbox: header widened to the key type" grep -qx 'Active  Key Type           Name' "$W/status"
check "restart after the migration" restart
verify_line
check "secretbox: every secret under the secretbox key" grep -qE "^ +secretbox +secretboxkey[^ ]* +$NSEED$" "$W/verify"
run --secrets-encryption-provider secretbox prepare
check "secretbox: prepare refused with k3s's message" bash -c \
        "[ $rc != 0 ] && grep -q 'prepare does not support secretbox key type, use rotate-keys instead' '$W/err'"

# ---- preconditions, usage, json ----------------------------------------------------------------------
run rotate
check "rotate at reencrypt_finished: exit 79 (got $rc)" test "$rc" = 79
check "rotate at reencrypt_finished: k3s's message" \
        grep -q 'incorrect stage: reencrypt_finished found on node node-1' "$W/err"
run reencrypt
check "reencrypt at reencrypt_finished: exit 79 (got $rc)" test "$rc" = 79
check "reencrypt: k3s's message" grep -q 'incorrect stage: reencrypt_finished found on node node-1' "$W/err"

printf 'state-dir: %s\nnode-name: node-1\nbogus-setting: 1\n' "$STATE" >"$W/bad.yaml"
"$CLI" --config "$W/bad.yaml" status >"$W/out" 2>"$W/err"
rc=$?
check "unknown settings key: exit 64 (got $rc)" test "$rc" = 64
check "unknown settings key: named in the message" grep -q 'bogus-setting' "$W/err"
"$HOOK" --config "$W/bad.yaml" >"$W/out" 2>"$W/err"
rc=$?
check "unknown settings key: the hook exits 64 too (got $rc)" test "$rc" = 64
run --no-such-flag status
check "unknown flag: exit 64 (got $rc)" test "$rc" = 64

"$CLI" status -o json >"$W/json" 2>/dev/null
check "status -o json parses" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/json"
check "status -o json: k3s's fields first, in order, tab-indented" python3 - "$W/json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text)
keys = list(d)
assert keys[:2] == ["stage", "activekey"], keys
k3s = [k for k in keys if k in ("stage", "activekey", "enable", "hashmatch", "hasherror", "inactivekeys")]
order = ["stage", "activekey", "enable", "hashmatch", "hasherror", "inactivekeys"]
assert k3s == [k for k in order if k in k3s], k3s
assert d["stage"] == "reencrypt_finished", d["stage"]
assert d["activekey"].startswith("XSalsa20-POLY1305 secretboxkey"), d["activekey"]
assert d["enable"] is True
assert d["hashmatch"] is True
assert "hasherror" not in d
assert "inactivekeys" not in d, "omitempty: no inactive keys"
assert text.startswith("{\n\t\"stage\": "), repr(text[:20])
EOF
# A hand edit on a single server: k3s compares annotations only between servers, so hashmatch stays
# true; our next_action asks for the restart that republishes the hash.
cp "$STATE/encryption-config.json" "$W/cfg.bak"
printf '\n' >>"$STATE/encryption-config.json"
"$CLI" status -o json >"$W/json" 2>/dev/null
check "status -o json after a hand edit: hashmatch as k3s (true), next_action is a restart" python3 - "$W/json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("hashmatch") is True, d
assert "restart" in d.get("next_action", ""), d
assert d.get("safe_to_proceed") is False, d
EOF
cp "$W/cfg.bak" "$STATE/encryption-config.json"

# no config: k3s's { "stage": "", "activekey": "" }
"$CLI" --state-dir "$W/empty" status -o json >"$W/json" 2>/dev/null
check "status -o json without a config: stage and activekey empty, nothing else of k3s's" python3 - "$W/json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("stage") == "" and d.get("activekey") == "", d
for k in ("enable", "hashmatch", "inactivekeys"):
    assert k not in d, k
EOF

# ---- the state-dir lock: two mutating commands at once -------------------------------------------------
# A slow reencrypt (throttled, online: the server runs the current config) holds the lock longer
# than the 5 s a second command waits: the second one fails with 75 and names the holder's pid.
"$SEED" "$DB" 30 --start 1000 --config "$STATE/encryption-config.json" >/dev/null 2>&1
restart
"$CLI" --reencrypt-rate 8 reencrypt -f >"$W/slow.out" 2>"$W/slow.err" &
slow=$!
BG_PIDS+=("$slow")
for _ in $(seq 100); do
        grep -q 'started' "$W/slow.err" 2>/dev/null && break
        sleep 0.1
done
t0=$(date +%s)
run prepare
t1=$(date +%s)
check "concurrent prepare: exit 75 (got $rc)" test "$rc" = 75
check "concurrent prepare: names the holder's pid $slow" grep -qw "$slow" "$W/err"
check "concurrent prepare: waited for the lock first ($((t1 - t0)) s)" test $((t1 - t0)) -ge 4
wait "$slow"
src=$?
BG_PIDS=()
check "the slow reencrypt completed (exit $src)" test "$src" = 0
check "after both: stage reencrypt_finished, one key" \
        test "$(json_field stage)/$(json_field inactivekeys)" = "reencrypt_finished/-"
# a short holder: the second command waits and then runs
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(2)' "$STATE/.secrets-encrypt.lock" >"$W/locker.out" &
locker=$!
BG_PIDS+=("$locker")
for _ in $(seq 50); do
        grep -q locked "$W/locker.out" 2>/dev/null && break
        sleep 0.1
done
expect_ok "prepare while the lock is held for 2 s: waits, then succeeds" "prepare completed successfully" prepare
wait "$locker"
BG_PIDS=()
verify_line
check "verify at the end: nothing unreadable" grep -q ' 0 unreadable$' "$W/verify"

# ---- no key material in anything printed ----------------------------------------------------------------
cat "$W/hook.log" >>"$W/all-output"
check "no key (base64 or raw) in the CLI's or the hook's output" python3 - "$STATE/encryption-config.json" "$W/cfg.bak" "$W/all-output" <<'EOF'
import base64, json, sys
secrets = set()
for p in sys.argv[1:3]:
    for r in json.load(open(p))["resources"]:
        for prov in r["providers"]:
            for v in prov.values():
                for k in (v or {}).get("keys", []):
                    secrets.add(k["secret"])
blob = open(sys.argv[3], "rb").read()
assert secrets
for s in secrets:
    assert s.encode() not in blob and base64.b64decode(s) not in blob, "key material printed"
EOF

[ "$FAILED" = 0 ]
