#!/usr/bin/env bash
# HA over a real 3-member etcd cluster on 127.0.0.1 (SPEC §5.4, §6; k3s's HA scenarios §9.2–§9.3).
# Three servers = three state dirs and node names sharing the etcd datastore and the cluster token.
# A "restart" of server i runs its ExecStartPre hook and then the stand-in API server's start
# check (every stored secret readable with the config it would load). Prints TAP lines.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
# shellcheck source=tests/integration/lib-etcd.sh
. tests/integration/lib-etcd.sh

se_common_init ha
se_common_at_exit etcd_stop_all
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/stand-in-apiserver
export SECRETS_ENCRYPT_LOG_TARGET=null

etcd_start 3 || {
        echo "not ok - etcd cluster started"
        exit 1
}
ok "3-member etcd cluster on loopback"
se_ha_settings "$W" "$ETCD_ENDPOINTS" 3

cli() { # cli I ARGS...
        local i=$1
        shift
        "$CLI" --config "$W/s$i/config.yaml" "$@"
}
restart() { # restart I: the hook, then the stand-in's start check
        local i=$1
        "$HOOK" --config "$W/s$i/config.yaml" || return
        "$STANDIN" --check-only --encryption-provider-config "$W/s$i/cred/encryption-config.json" \
                --datastore "$ETCD_ENDPOINTS" >/dev/null
}
restart_all() {
        local i
        for i in "$@"; do
                restart "$i" || return
        done
}
stage_of() { cli "$1" status | sed -n 's/^Current Rotation Stage: //p'; }
hashes_of() { cli "$1" status | sed -n 's/^Server Encryption Hashes: //p'; }
active_key() { cli "$1" status | sed -n 's/^ \*  *[A-Za-z0-9-]*  *//p'; }
key_count() { cli "$1" status | grep -cE '^ (\*|  )  +(AES-CBC|XSalsa20-POLY1305) '; }
expect_stage() { # expect_stage STAGE I...
        local want=$1 i got
        shift
        for i in "$@"; do
                got=$(stage_of "$i")
                [ "$got" = "$want" ] || {
                        echo "server-$i: stage '$got', want '$want'"
                        return 1
                }
        done
}
expect_match() {
        local i h
        for i in "$@"; do
                h=$(hashes_of "$i")
                [ "$h" = "All hashes match" ] || {
                        echo "server-$i: '$h'"
                        return 1
                }
        done
}
same_config() {
        cmp "$W/s1/cred/encryption-config.json" "$W/s2/cred/encryption-config.json" &&
                cmp "$W/s1/cred/encryption-config.json" "$W/s3/cred/encryption-config.json"
}

# Secrets as kube-apiserver would have stored them before encryption: plaintext protobuf-ish.
for n in $(seq 1 40); do
        etcd_ctl put "/registry/secrets/ns$((n % 4))/secret-$n" "k8s-plain-secret-$n-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >/dev/null
done
etcd_ctl put /unrelated/key untouched >/dev/null

# --- first starts: one server generates, the others install the cluster's config ------------
check "first start of server-1 generates the config" restart 1
check "server-2 and server-3 install the cluster's config (no second key)" restart_all 2 3
check "all three servers hold byte-identical configs" same_config
check "all servers: stage start, All hashes match" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match); CLI=$CLI W=$W; expect_stage start 1 2 3 && expect_match 1 2 3"
[ "$(key_count 1)" = 1 ] && ok "one key after first start" || not_ok "one key after first start ($(key_count 1))"

# --- classic flow with restarts (k3s §9.3) ------------------------------------------------------
check "prepare on server-1" cli 1 prepare
h=$(hashes_of 1)
case "$h" in "hash does not match between server-1 and server-2") ok "status on server-1 names the mismatch like k3s" ;; *) not_ok "mismatch line: '$h'" ;; esac
[ "$(stage_of 2)" = start ] && ok "server-2 still at start before its restart" || not_ok "server-2 stage $(stage_of 2)"
cli 2 rotate >"$W/out" 2>&1
rc=$?
[ $rc = 79 ] && grep -q "restart stand-in.service on server-2 first" "$W/out" && ok "a command on a server behind the cluster is refused (79) with the remedy" || {
        not_ok "stale server refused (rc $rc)"
        cat "$W/out"
}
cli 1 rotate >"$W/out" 2>&1
rc=$?
[ $rc = 79 ] && grep -q "hash does not match between server-1 and server-2" "$W/out" && ok "rotate before the others restart is refused with k3s's message" || {
        not_ok "rotate refused (rc $rc)"
        cat "$W/out"
}
grep -q "next_action" <(cli 1 status -o json) && cli 1 status -o json | grep -q '"next_action": "restart stand-in.service on server-1, server-2, server-3"' &&
        ok "status JSON next_action names the servers to restart" || not_ok "next_action: $(cli 1 status -o json | grep next_action)"
check "restart all: every server installs prepare and reads every secret" restart_all 1 2 3
check "all at prepare, hashes match" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match); CLI=$CLI W=$W; expect_stage prepare 1 2 3 && expect_match 1 2 3"
check "rotate on server-1" cli 1 rotate
check "restart all after rotate" restart_all 2 3 1
check "reencrypt on server-1 (online)" cli 1 reencrypt
check "server-1 reencrypt_finished" bash -c "$(declare -f cli stage_of expect_stage); CLI=$CLI W=$W; expect_stage reencrypt_finished 1"
check "restart all after reencrypt" restart_all 2 3 1
check "all reencrypt_finished, matching, identical configs" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match same_config); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3 && same_config"
[ "$(key_count 2)" = 1 ] && ok "exactly one key after the classic rotation" || not_ok "keys: $(key_count 2)"
cli 3 verify >"$W/out" 2>&1 && grep -q "0 not under the write key, 0 unreadable" "$W/out" && ok "verify: every secret under the new key" || {
        not_ok "verify"
        cat "$W/out"
}
[ "$(etcd_ctl get /unrelated/key --print-value-only)" = untouched ] && ok "keys outside the prefixes untouched" || not_ok "unrelated key changed"

# --- rolling rotation driven by restarts (SPEC §5.4) ------------------------------------------
rolling_round() { # rolling_round ORDER...: restart each, checking readability after each
        local i
        for i in "$@"; do
                restart "$i" || {
                        echo "restart of server-$i failed"
                        return 1
                }
        done
}
old_key=$(active_key 1)
check "rotate-keys --rolling on server-2" cli 2 rotate-keys --rolling
for round in 1 2 3; do
        check "rolling round $round (order 1 2 3): every restart succeeds and reads every secret" rolling_round 1 2 3
done
check "rolling rotation complete: all reencrypt_finished and matching" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match same_config); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3 && same_config"
new_key=$(active_key 1)
[ -n "$new_key" ] && [ "$new_key" != "$old_key" ] && [ "$(key_count 1)" = 1 ] && ok "rolling rotation replaced the key ($old_key -> $new_key)" || not_ok "keys after rolling: $old_key -> $new_key ($(key_count 1))"

# The same in another order, with server-2 down for a whole round.
old_key=$new_key
check "rotate-keys --rolling on server-3" cli 3 rotate-keys --rolling
check "round 1 (order 3 1, server-2 down)" rolling_round 3 1
[ "$(stage_of 1)" = prepare ] && ok "no advance while server-2 has not restarted" || not_ok "stage advanced without server-2: $(stage_of 1)"
check "server-2 comes back and catches up" restart 2
for round in 2 3 4; do
        check "round $round (order 2 3 1)" rolling_round 2 3 1
done
check "second rolling rotation complete" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match same_config); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3 && same_config"
new_key=$(active_key 2)
[ "$new_key" != "$old_key" ] && [ "$(key_count 2)" = 1 ] && ok "second rolling rotation replaced the key" || not_ok "second rolling: $old_key -> $new_key"

# --- faults -------------------------------------------------------------------------------
cp "$W/token" "$W/token.good"
echo "K10wrong::server:0000" >"$W/token"
cli 1 prepare >"$W/out" 2>&1
rc=$?
[ $rc = 65 ] && grep -q "token" "$W/out" && ok "wrong token: refused (65) with a message naming the token" || {
        not_ok "wrong token (rc $rc)"
        cat "$W/out"
}
cp "$W/token.good" "$W/token"
cmp -s "$W/s1/cred/encryption-config.json" "$W/s2/cred/encryption-config.json" && ok "nothing changed by the refused command" || not_ok "config changed"

# "newer than datastore": a local generation ahead of the cluster's is refused with the remedy.
python3 - "$W/s3/cred/secrets-encrypt.json" <<'EOF'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["generation"] += 5
json.dump(d, open(p, "w"))
EOF
"$HOOK" --config "$W/s3/config.yaml" >"$W/out" 2>&1
rc=$?
[ $rc = 79 ] && ok "local config newer than the cluster's: the hook refuses (79)" || {
        not_ok "local newer (rc $rc)"
        cat "$W/out"
}
SECRETS_ENCRYPT_LOG_TARGET=stderr "$HOOK" --config "$W/s3/config.yaml" 2>&1 | grep -q "sync --from-cluster" && ok "the refusal names secrets-encrypt sync" || not_ok "no remedy in the refusal"
check "sync --from-cluster resolves it" cli 3 sync --from-cluster
check "server-3 starts again" restart 3

# A server gone for good (SPEC 5.0): it never restarts, so nothing may be rewritten under a key it
# lacks and the rolling rotation waits for it; forget-node, not --force, lets the rotation resume.
mkdir -p "$W/s4"
sed 's/server-3/server-4/; s|/s3/|/s4/|' "$W/s3/config.yaml" >"$W/s4/config.yaml"
se_standin_unit "$W/s4/cred"
check "server-4 joins (installs the cluster's config, publishes its record)" restart 4
check "rotate-keys on server-1 with server-4 about to vanish (HA: the rolling rotation)" cli 1 rotate-keys
for round in 1 2 3; do
        check "round $round without server-4" rolling_round 1 2 3
done
check "the rotation waits for server-4 (still at prepare, nothing rewritten)" bash -c "$(declare -f cli stage_of expect_stage); CLI=$CLI W=$W; expect_stage prepare 1 2 3"
cli 1 forget-node server-1 >"$W/out" 2>&1
rc=$?
[ $rc = 64 ] && ok "forget-node of this server is refused (64)" || not_ok "forget-node self (rc $rc)"
cli 1 forget-node server-9 >"$W/out" 2>&1
rc=$?
[ $rc = 66 ] && ok "forget-node of an unknown server: 66" || not_ok "forget-node unknown (rc $rc)"
check "forget-node server-4 on server-1" cli 1 forget-node server-4
for round in 1 2 3; do
        check "round $round after forget-node" rolling_round 1 2 3
done
check "the rotation completed without server-4" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match same_config); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3 && same_config"
cli 1 status -o json | grep -q '"server-4"' && not_ok "server-4 still listed" || ok "server-4 no longer listed in status"

# --- replay and forged records (issue 16) ---------------------------------------------------
# Anyone able to write /secrets-encrypt/ in etcd, without the token: an older sealed config put
# back, node records and the rolling flag forged. Every server keeps a generation high-water mark
# (state dir, file cluster-generation) and every record carries a MAC under the token.
sealed() { etcd_ctl get --print-value-only /secrets-encrypt/config; }
gen_of() { sed -n 's/.*"generation":\([0-9]*\).*/\1/p' <<<"$1"; }
refused() { # refused NAME WANT_RC PATTERN CMD...: exit WANT_RC and PATTERN in the output
        local name=$1 want=$2 pat=$3 rc
        shift 3
        SECRETS_ENCRYPT_LOG_TARGET=stderr "$@" >"$W/out" 2>&1
        rc=$?
        if [ "$rc" = "$want" ] && grep -q -- "$pat" "$W/out"; then
                ok "$name"
        else
                not_ok "$name (exit $rc)"
                sed 's/^/#   /' "$W/out"
        fi
}
cp "$W/s1/cred/encryption-config.json" "$W/config-before-rotation.json"
old=$(sealed)
check "rotate-keys --rolling: a new generation with a new key, the old one removed" cli 2 rotate-keys --rolling
for round in 1 2 3; do
        check "replay set-up: rolling round $round" rolling_round 1 2 3
done
check "replay set-up: all reencrypt_finished" bash -c "$(declare -f cli stage_of expect_stage); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3"
cur=$(sealed)
[ "$(gen_of "$old")" -lt "$(gen_of "$cur")" ] && ok "the cluster went from generation $(gen_of "$old") to $(gen_of "$cur")" || not_ok "generations $(gen_of "$old") -> $(gen_of "$cur")"
for i in 1 2 3; do
        grep -q "^generation=$(gen_of "$cur")$" "$W/s$i/cred/cluster-generation" || break
done && ok "every server's high-water mark is at generation $(gen_of "$cur") (root-only: $(stat -c %a "$W/s1/cred/cluster-generation"))" ||
        not_ok "high-water mark: $(cat "$W/s$i/cred/cluster-generation")"
[ "$(stat -c %a "$W/s1/cred/cluster-generation")" = 600 ] && ok "the mark file is mode 0600" || not_ok "mark mode $(stat -c %a "$W/s1/cred/cluster-generation")"

etcd_ctl put /secrets-encrypt/config "$old" >/dev/null
ok "replay: the sealed config of generation $(gen_of "$old") put back (authentic: sealed with the token)"
cp "$W/s1/cred/encryption-config.json" "$W/config-current.json"
refused "replay: the running server's hook refuses (79): the cluster's config went backwards" 79 "went backwards" \
        "$HOOK" --config "$W/s1/config.yaml"
grep -q "possible replay" "$W/out" && grep -q "sync --from-local" "$W/out" && grep -q -- "--allow-rollback" "$W/out" &&
        ! grep -q 'sync --from-cluster`' "$W/out" && ok "replay: the message says replay or restore and never offers a plain sync --from-cluster" ||
        not_ok "replay message: $(cat "$W/out")"
cmp -s "$W/s1/cred/encryption-config.json" "$W/config-current.json" && ok "replay: nothing installed on server-1" || not_ok "server-1's config changed"
refused "replay: sync --from-cluster refuses it without --allow-rollback (79)" 79 "went backwards" cli 2 sync --from-cluster
cmp -s "$W/s2/cred/encryption-config.json" "$W/config-current.json" && ok "replay: server-2 keeps its config" || not_ok "server-2's config changed"
refused "replay: a command on a running server refuses (79) with the same diagnosis" 79 "went backwards" cli 3 prepare
mkdir -p "$W/s5"
sed 's/server-3/server-5/; s|/s3/|/s5/|' "$W/s3/config.yaml" >"$W/s5/config.yaml"
se_standin_unit "$W/s5/cred"
refused "replay: a joining server (no config, no mark) refuses (79): the other servers' records are newer" 79 \
        "authenticated node record of server-" "$HOOK" --config "$W/s5/config.yaml"
[ ! -e "$W/s5/cred/encryption-config.json" ] && ok "replay: the joining server installed nothing (the retired key never reaches it)" ||
        not_ok "server-5 installed $(cat "$W/s5/cred/encryption-config.json")"
check "replay: sync --from-local on server-1 publishes the good config as a new generation" cli 1 sync --from-local
[ "$(gen_of "$(sealed)")" -gt "$(gen_of "$cur")" ] && ok "replay: the cluster is at generation $(gen_of "$(sealed)") again" || not_ok "generation $(gen_of "$(sealed)")"
check "replay: every server starts again, reading every secret" restart_all 1 2 3
check "replay: server-5 now joins" restart 5
cmp -s "$W/s5/cred/encryption-config.json" "$W/config-current.json" && ok "replay: server-5 holds the current config" || not_ok "server-5's config differs"
check "forget-node server-5 (it leaves again)" cli 1 forget-node server-5

# The sealed config deleted: a joining server must not generate a key of its own.
etcd_ctl del /secrets-encrypt/config >/dev/null
mkdir -p "$W/s6"
sed 's/server-3/server-6/; s|/s3/|/s6/|' "$W/s3/config.yaml" >"$W/s6/config.yaml"
se_standin_unit "$W/s6/cred"
refused "deleted config: a joining server refuses (79) instead of generating a key" 79 "missing from etcd" \
        "$HOOK" --config "$W/s6/config.yaml"
[ ! -e "$W/s6/cred/encryption-config.json" ] && [ -z "$(sealed)" ] && ok "deleted config: no key generated, nothing published" ||
        not_ok "server-6 generated or published a config"
check "deleted config: sync --from-local on server-1 publishes it again" cli 1 sync --from-local
check "deleted config: every server starts" restart_all 1 2 3

# Restored on purpose: --allow-rollback installs it, and the mark follows.
same=$(sealed)
check "rollback set-up: sync --from-local (the same config, one generation up)" cli 1 sync --from-local
check "rollback set-up: server-2 installs it" restart 2
etcd_ctl put /secrets-encrypt/config "$same" >/dev/null
refused "rollback: server-2's hook refuses the older generation" 79 "went backwards" "$HOOK" --config "$W/s2/config.yaml"
check "rollback: sync --from-cluster --allow-rollback on server-2 installs it" cli 2 sync --from-cluster --allow-rollback
grep -q "^generation=$(gen_of "$same")$" "$W/s2/cred/cluster-generation" && ok "rollback: server-2's mark follows to generation $(gen_of "$same")" ||
        not_ok "server-2's mark: $(cat "$W/s2/cred/cluster-generation")"
check "rollback: server-2 starts" restart 2
refused "rollback: --allow-rollback only goes with --from-cluster (64)" 64 "allow-rollback" cli 2 sync --from-local --allow-rollback
check "rollback: sync --from-local on server-1 again, every server starts" bash -c "$(declare -f cli restart restart_all); CLI=$CLI HOOK=$HOOK STANDIN=$STANDIN W=$W ETCD_ENDPOINTS=$ETCD_ENDPOINTS; cli 1 sync --from-local >/dev/null && restart_all 1 2 3"

# Another token is another cluster history: its mark does not hold this one back.
sed -i "s/^token=.*/token=$(printf '0%.0s' $(seq 64))/" "$W/s3/cred/cluster-generation"
sed -i "s/^generation=.*/generation=999999/" "$W/s3/cred/cluster-generation"
check "a mark left by another token is no mark: server-3 starts" restart 3
grep -q "^generation=$(gen_of "$(sealed)")$" "$W/s3/cred/cluster-generation" && ok "server-3's mark restarts at the cluster's generation" ||
        not_ok "server-3's mark: $(cat "$W/s3/cred/cluster-generation")"

# Forged node records: a record claiming server-2 already runs the new config (copied from
# server-1's genuine one, or written by hand) must not let the rolling rotation advance.
check "forged records set-up: rotate-keys --rolling on server-1" cli 1 rotate-keys --rolling
check "forged records set-up: servers 1 and 3 restart (server-2 has not)" rolling_round 1 3
etcd_ctl get --print-value-only /secrets-encrypt/nodes/server-1 | sed 's/"name":"server-1"/"name":"server-2"/' >"$W/forged"
etcd_ctl put /secrets-encrypt/nodes/server-2 "$(cat "$W/forged")" >/dev/null
check "forged node record: server-1 restarts" restart 1
[ "$(stage_of 1)" = prepare ] && ok "forged node record (copied, renamed): no advance past prepare" || not_ok "advanced on a forged record: $(stage_of 1)"
cli 1 status -o json | grep -q '"next_action": "restart stand-in.service on server-2"' && ok "forged node record: status still asks for server-2's restart" ||
        not_ok "status: $(cli 1 status -o json | grep next_action)"
sed -E 's/"mac":"[0-9a-f]*"/"mac":"'"$(printf 'a%.0s' $(seq 64))"'"/' "$W/forged" >"$W/forged2"
etcd_ctl put /secrets-encrypt/nodes/server-2 "$(cat "$W/forged2")" >/dev/null
check "forged node record (made-up MAC): server-3 restarts" restart 3
[ "$(stage_of 3)" = prepare ] && ok "forged node record (made-up MAC): no advance past prepare" || not_ok "advanced: $(stage_of 3)"
rolling_on=$(etcd_ctl get --print-value-only /secrets-encrypt/rolling)
grep -q '"rolling":true' <<<"$rolling_on" && grep -q '"mac":"' <<<"$rolling_on" && ok "the rolling flag in etcd is MACed: $rolling_on" || not_ok "rolling flag: $rolling_on"
for round in 1 2 3; do
        check "forged records: rolling round $round with server-2" rolling_round 2 1 3
done
check "forged records: the rotation completed" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match same_config); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3 && same_config"

# Forged rolling flags: the old plain "1", a made-up MAC, and the genuine request of the rotation
# that just finished put back: none starts a rotation.
gen_before=$(gen_of "$(sealed)")
for forged in 1 '{"rolling":true,"generation":999,"mac":"'"$(printf 'b%.0s' $(seq 64))"'"}' "$rolling_on"; do
        etcd_ctl put /secrets-encrypt/rolling "$forged" >/dev/null
        check "forged rolling flag '${forged:0:40}…': every server restarts" rolling_round 1 2 3
        [ "$(gen_of "$(sealed)")" = "$gen_before" ] && [ "$(stage_of 1)" = reencrypt_finished ] &&
                ok "forged rolling flag '${forged:0:40}…': no rotation started" || not_ok "a rotation started on a forged flag: $(stage_of 1)"
done
etcd_ctl put /secrets-encrypt/rolling '{"rolling":false}' >/dev/null

# Plain HTTP: the test members listen on http://127.0.0.1, so se_ha_settings allows it.
refused "http:// without datastore-allow-plain-http: refused (64) naming the setting" 64 "datastore-allow-plain-http: true" \
        cli 1 --datastore-allow-plain-http false status
check "http:// on 127.0.0.1 with datastore-allow-plain-http: true works" cli 1 status
refused "http:// to another machine: refused even with the setting" 64 "only 127.0.0.0/8" \
        cli 1 --datastore-endpoint http://192.0.2.1:2379 status
for allow in true false; do
        SECRETS_ENCRYPT_LOG_TARGET=stderr cli 1 --datastore-allow-plain-http $allow \
                --datastore-endpoint "http://admin:s3cret@127.0.0.1:1" status >"$W/out" 2>&1
        ! grep -q "s3cret\|admin" "$W/out" && grep -q "127.0.0.1:1" "$W/out" && ok "userinfo in the endpoint (allow $allow) is never echoed: $(head -c 160 "$W/out")" ||
                not_ok "userinfo echoed: $(cat "$W/out")"
done

# An etcd member dies mid-rotation: the rest go on through the endpoint list.
check "rotate-keys --rolling before killing a member" cli 1 rotate-keys --rolling
etcd_kill_member 0
ok "killed etcd member 0 (${ETCD_CLIENT_URLS[0]})"
for round in 1 2 3; do
        check "round $round with a member down" rolling_round 1 2 3
done
check "rotation completed with a member down" bash -c "$(declare -f cli stage_of hashes_of expect_stage expect_match); CLI=$CLI W=$W; expect_stage reencrypt_finished 1 2 3 && expect_match 1 2 3"

# No key material in etcd outside the secrets themselves.
leak=0
for i in 1 2 3; do
        for k in $(grep -oE '"secret":"[^"]+"' "$W/s$i/cred/encryption-config.json" | cut -d'"' -f4); do
                if etcd_ctl get /secrets-encrypt/ --prefix -w json | grep -qF "$k"; then leak=1; fi
        done
done
[ $leak = 0 ] && ok "no key in clear under /secrets-encrypt/" || not_ok "key material found in etcd"

se_common_finish
