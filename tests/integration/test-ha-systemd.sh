#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# HA under the private systemd user manager (lib-systemd.sh): a 3-member etcd cluster on
# 127.0.0.1 and three servers, each a real unit stand-in@N.service (Type=notify stand-in API
# server, our shipped drop-in as ExecStartPre=, its own settings file, state dir and node name,
# one cluster token). SPEC §5.2, §5.4, §6; k3s's HA scenarios (reference §9.2):
#   1. first start in order: one server generates, the others install the cluster's config
#   2. rotate-keys on server 1 with the stand-ins running (a rolling rotation in HA), then restarts
#   3. rolling rotation by restarts only: order 1 2 3, then 3 1 2 with server 2 down for a round
#   4. two servers restarting at once during a rolling rotation
#   5. the hook SIGKILLed while it holds the re-encryption lease; its restart resumes, another
#      server's restart meanwhile is not blocked
#   6. journal: config-installed on the servers that installed, hashes converged / mismatch
# After every restart every unit that should run is active, and every running stand-in can read
# every stored secret with the config it loaded (its STATUS= names that config's sha256).
set -u
: "${SE_HARNESS_TIMEOUT:=360}"
export SE_HARNESS_TIMEOUT
. "$(dirname "$0")/lib-systemd.sh"
se_harness_reexec "$@"

for c in etcd etcdctl python3 curl; do
        command -v "$c" >/dev/null || { echo "ok - # SKIP $c missing"; exit 0; }
done
# shellcheck source=tests/integration/lib-etcd.sh
. "$SE_ROOT/tests/integration/lib-etcd.sh"

W="$SE_HARNESS_DIR/work"
# A private copy of the programs ($ORIGIN runpath): a rebuild during the run cannot swap them.
mkdir -p "$W/bin" "$W/libexec/secrets-encrypt" "$W/logs" "$W/seen"
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver; do
        if [ ! -e "$SE_BUILD/$f" ]; then
                echo "not ok - $SE_BUILD/$f not built (make all tests)"
                exit 1
        fi
        cp -L "$SE_BUILD/$f" "$W/bin/" || exit 1
done
cp "$W/bin/secrets-encrypt-hook" "$W/bin/libsecrets-encrypt.so.0" "$W/libexec/secrets-encrypt/" || exit 1
export SE_LIBEXECDIR="$W/libexec"
CLI="$W/bin/secrets-encrypt"
STANDIN="$W/bin/stand-in-apiserver"
LOGS="$W/logs"
SEEN="$W/seen"
# The CLI's events go to our journald too, so every transition is in one place.
export SECRETS_ENCRYPT_LOG_TARGET=journal
unset SECRETS_ENCRYPT_CONFIG
export TMPDIR="$W" # etcd's data dirs, removed with the harness's work dir

se_harness_start || exit 1
se_ok "journald and systemd --user running in a private namespace"

# etcd runs inside the namespace (loopback is shared: only mount and PID namespaces are
# private). The units stop first, then etcd, then the harness's own exit handling.
_ha_exit() {
        local rc=$?
        se_harness_stop
        etcd_stop_all
        (exit "$rc")
        _se_inner_exit
}
trap '_ha_exit' EXIT
# a free port can be taken by someone else before etcd binds it: try again
for _ in 1 2 3; do
        etcd_start 3 2>"$LOGS/etcd-start.err" && break
done
if [ -z "$ETCD_ENDPOINTS" ]; then
        se_not_ok "3-member etcd cluster started"
        sed 's/^/#   /' "$LOGS/etcd-start.err" | tail -n 20
        exit 1
fi
se_ok "3-member etcd cluster on 127.0.0.1 ($ETCD_ENDPOINTS)"

printf 'K10c1a55e5::server:%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$W/token"
chmod 600 "$W/token"

# write_settings I [RATE]: server I's settings file.
write_settings() {
        local i=$1
        mkdir -p "$W/s$i"
        {
                echo "state-dir: $W/s$i/state"
                echo "node-name: server-$i"
                echo "datastore-endpoint: $ETCD_ENDPOINTS"
                echo "datastore-allow-plain-http: true"
                echo "token-file: $W/token"
                echo "unit: stand-in@$i.service"
                echo "timeout: 2m"
                [ -n "${2:-}" ] && echo "reencrypt-rate: $2"
        } >"$W/s$i/config.yaml"
}
for i in 1 2 3; do write_settings "$i"; done

# ---- helpers --------------------------------------------------------------------------------------
unit() { echo "stand-in@$1.service"; }
state() { echo "$W/s$1/state"; }

events() { se_journal_events "$@"; } # events MESSAGE_ID [CURSOR]
# from_unit I: a regex for entries logged inside unit I (journald names a unit of this user
# manager _SYSTEMD_UNIT or _SYSTEMD_USER_UNIT).
from_unit() {
        echo "\"_SYSTEMD_(USER_)?UNIT\":\"stand-in@$1\\.service\""
}
dump_events() { se_dump_events "${1:-}"; }
dump_unit() { se_dump_unit "$(unit "$1")"; }

# snap: keeps every server's config by its sha256, so the config a running stand-in loaded can be
# found from its STATUS= (and for the key scan at the end).
snap() {
        local i h f
        for i in 1 2 3; do
                f="$(state "$i")/encryption-config.json"
                [ -f "$f" ] || continue
                h=$(sha256sum <"$f" | cut -d' ' -f1)
                [ -e "$SEEN/$h.json" ] || cp "$f" "$SEEN/$h.json"
        done
}

# cli I ARGS...: the CLI with server I's settings; output in $LOGS/last.{out,err}.
cli() {
        local i=$1 rc
        shift
        "$CLI" --config "$W/s$i/config.yaml" "$@" >"$LOGS/last.out" 2>"$LOGS/last.err"
        rc=$?
        { echo "\$ [server-$i] secrets-encrypt $*"; cat "$LOGS/last.out"; } >>"$LOGS/cli.out"
        cat "$LOGS/last.err" >>"$LOGS/cli.err"
        snap
        return "$rc"
}
cli_check() {
        local name=$1 rc
        shift
        cli "$@"
        rc=$?
        if [ "$rc" = 0 ]; then
                se_ok "$name"
        else
                se_not_ok "$name (exit $rc)"
                sed 's/^/#   /' "$LOGS/last.out" "$LOGS/last.err" | head -n 30
        fi
        return "$rc"
}

# status_line I PREFIX: the rest of that line of server I's `status`; json_field I KEY: a field of
# `status -o json` (a list: its length)
status_line() {
        "$CLI" --config "$W/s$1/config.yaml" status 2>>"$LOGS/status.err" | sed -n "s/^$2: //p"
}
stage_of() { status_line "$1" 'Current Rotation Stage'; }
hashes_of() { status_line "$1" 'Server Encryption Hashes'; }
json_field() {
        "$CLI" --config "$W/s$1/config.yaml" status -o json 2>>"$LOGS/status.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = d.get(sys.argv[1], "-")
print(len(v) if isinstance(v, list) else v)' "$2"
}
n_keys() {
        "$CLI" --config "$W/s$1/config.yaml" status -o json 2>>"$LOGS/status.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print((1 if d.get("activekey") else 0) + len(d.get("inactivekeys") or []))'
}

# expect_converged STAGE: every server at STAGE with All hashes match, byte-identical configs
expect_converged() {
        local i st h
        for i in 1 2 3; do
                st=$(stage_of "$i")
                h=$(hashes_of "$i")
                if [ "$st" != "$1" ] || [ "$h" != "All hashes match" ]; then
                        echo "server-$i: stage '$st', hashes '$h' (want $1, All hashes match)"
                        return 1
                fi
        done
        cmp "$(state 1)/encryption-config.json" "$(state 2)/encryption-config.json" &&
                cmp "$(state 1)/encryption-config.json" "$(state 3)/encryption-config.json"
}

is_active() { test "$(se_unit_prop "$(unit "$1")" ActiveState)" = active; }

# running_readable I...: each unit is active and its stand-in, with the very config it loaded,
# reads every stored secret now.
running_readable() {
        local i st h
        for i in "$@"; do
                if ! is_active "$i"; then
                        echo "$(unit "$i") is $(se_unit_prop "$(unit "$i")" ActiveState)"
                        dump_unit "$i"
                        return 1
                fi
                st=$(se_unit_prop "$(unit "$i")" StatusText)
                h=$(sed -n 's/^serving with config sha256:\([0-9a-f]\{64\}\).*/\1/p' <<<"$st")
                if [ -z "$h" ] || [ ! -f "$SEEN/$h.json" ]; then
                        echo "$(unit "$i"): STATUS '$st' names no known config"
                        return 1
                fi
                "$STANDIN" --check-only --encryption-provider-config "$SEEN/$h.json" \
                        --datastore "$ETCD_ENDPOINTS" >"$LOGS/check.out" 2>&1 || {
                        echo "$(unit "$i") (config sha256:$h) cannot read every secret:"
                        cat "$LOGS/check.out"
                        return 1
                }
        done
}

# restart_units I...: `systemctl --user restart` of those units in one call; they must come up.
restart_units() {
        local i units=()
        for i in "$@"; do units+=("$(unit "$i")"); done
        se_systemctl restart "${units[@]}" >"$LOGS/restart.err" 2>&1
        local rc=$?
        snap
        if [ "$rc" != 0 ]; then
                echo "systemctl restart ${units[*]}: exit $rc"
                cat "$LOGS/restart.err"
                for i in "$@"; do dump_unit "$i"; done
                return 1
        fi
}

# restart_check NAME I [RUNNING...]: restart unit(s) I, then every RUNNING unit (default all three)
# must be active and able to read every secret.
restart_check() {
        local name=$1 i=$2 out
        shift 2
        [ $# = 0 ] && set -- 1 2 3
        # shellcheck disable=SC2086 # I may be "1 2": restarted in one call
        if out=$(restart_units $i && running_readable "$@" 2>&1); then
                se_ok "$name"
        else
                se_not_ok "$name"
                sed 's/^/#   /' <<<"$out" | head -n 40
        fi
}

# ---- the units ------------------------------------------------------------------------------------
se_unit_install "stand-in@.service" "[Unit]
Description=Stand-in API server %i (secrets-encrypt HA integration test)
# many restarts in a few seconds here; not a start loop
StartLimitIntervalSec=0

[Service]
Type=notify
Environment=SECRETS_ENCRYPT_CONFIG=$W/s%i/config.yaml
ExecStart=$STANDIN --encryption-provider-config $W/s%i/state/encryption-config.json --datastore $ETCD_ENDPOINTS --write-interval-ms 100
Restart=no
TimeoutStartSec=180"
se_dropin_install "stand-in@.service" "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf"
se_check "drop-in applied to every instance (hook as ExecStartPre=, NotifyAccess=exec)" bash -c \
        "for i in 1 2 3; do
                systemctl --user show -p ExecStartPre --value stand-in@\$i.service | grep -q 'secrets-encrypt-hook --unit=stand-in@'\$i'.service' || exit 1
                test \"\$(systemctl --user show -p NotifyAccess --value stand-in@\$i.service)\" = exec || exit 1
        done"

# Secrets as kube-apiserver stored them before encryption (plaintext).
for n in $(seq 1 30); do
        etcd_ctl put "/registry/secrets/ns$((n % 3))/secret-$n" "k8s-plain-secret-$n" >/dev/null
done

# ---- 1. first start, in order ---------------------------------------------------------------------
echo "# section 1 at ${SECONDS}s"
cursor0=$(se_journal_cursor)
restart_check "first start: stand-in@1 active, reads every secret" 1 1
restart_check "first start: stand-in@2 active" 2 1 2
restart_check "first start: stand-in@3 active; all three read every secret" 3 1 2 3
ev_gen=$(events bf7e709ac08a49c0a37ec4377f7289b6 "$cursor0")
inst1=$(events 70b36004f86f4de8bd9ed77572654ba1 "$cursor0")
se_check "first start: exactly one config generated, by stand-in@1's hook" bash -c \
        "test \"\$(grep -c . <<<'$ev_gen')\" = 1 && grep -qE '$(from_unit 1)' <<<'$ev_gen'"
se_check "first start: all three servers hold the same config" \
        bash -c "cmp '$(state 1)/encryption-config.json' '$(state 2)/encryption-config.json' && cmp '$(state 1)/encryption-config.json' '$(state 3)/encryption-config.json'"
for i in 1 2 3; do
        cli "$i" status
        se_check "first start: status on server-$i: Enabled, start, All hashes match" bash -c \
                "grep -qx 'Encryption Status: Enabled' '$LOGS/last.out' &&
                 grep -qx 'Current Rotation Stage: start' '$LOGS/last.out' &&
                 grep -qx 'Server Encryption Hashes: All hashes match' '$LOGS/last.out'" ||
                sed 's/^/#   /' "$LOGS/last.out"
done
se_check "first start: one key" test "$(n_keys 2)" = 1

# ---- 2. rotate-keys with restarts (k3s §9.2) -------------------------------------------------------
echo "# section 2 at ${SECONDS}s"
# In HA a new write key may be used only once every server can read it (SPEC §5.0): plain
# rotate-keys starts the rolling rotation there. Nothing is re-encrypted while servers 2 and 3 run
# the old config, and the stand-ins go on writing with the old key throughout.
cursor2=$(se_journal_cursor)
key0=$(json_field 1 activekey)
cli 1 rotate-keys
rk_rc=$?
if [ "$rk_rc" = 0 ]; then
        se_check "rotate-keys on server-1 (HA): starts the rolling rotation and says so" \
                grep -q '^rolling rotation started (a new write key must reach every server first)' "$LOGS/last.out"
else
        se_not_ok "rotate-keys on server-1 (HA) (exit $rk_rc)"
        sed 's/^/#   /' "$LOGS/last.out" "$LOGS/last.err" | head -n 20
fi
se_check "rotate-keys: server-1 at prepare, the write key unchanged (the new key is a read key)" \
        test "$(stage_of 1)" = prepare -a "$(json_field 1 activekey)" = "$key0"
for i in 2 3; do
        h=$(hashes_of "$i")
        se_check "rotate-keys: server-$i shows a hash mismatch ('$h'), still at start" bash -c \
                "[[ '$h' == 'hash does not match'* ]] && test '$(stage_of "$i")' = start"
done
sleep 0.5 # every stand-in writes again (old config: old write key)
se_check "rotate-keys: the stand-ins are still active and writing" \
        bash -c "$(declare -f is_active se_unit_prop unit); is_active 1 && is_active 2 && is_active 3"
rk_read=0
"$STANDIN" --check-only --encryption-provider-config "$(state 1)/encryption-config.json" \
        --datastore "$ETCD_ENDPOINTS" >"$LOGS/check.out" 2>&1 && rk_read=1
se_check "rotate-keys: every secret readable with the cluster's config ($(n_keys 1) keys)" \
        test "$rk_read" = 1 || sed 's/^/#   /' "$LOGS/check.out"
for round in 1 2 3; do
        for i in 2 3 1; do
                restart_check "rotate-keys: round $round, restart stand-in@$i; every running server reads every secret" "$i"
        done
done
se_check "rotate-keys: all at reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
se_check "rotate-keys: one key everywhere, not the old one" \
        test "$(n_keys 1)$(n_keys 2)$(n_keys 3)" = 111 -a "$(json_field 3 activekey)" != "$key0"
ev=$(events 943100034f1e4279b3157f0bdb13ef57 "$cursor2")
se_check "rotate-keys: hashes-mismatch event logged by a restarting server's hook" grep -qE "$(from_unit 2)|$(from_unit 3)" <<<"$ev" ||
        dump_events "$cursor2"
ev=$(events 8ea6f59bfe7b43eaa6daa2cbc1e2196e "$cursor2" | grep -F '"SECRETS_ENCRYPT_STAGE":"reencrypt_finished"')
se_check "rotate-keys: hashes-converged event at reencrypt_finished from a unit's hook" grep -qE "$(from_unit '[123]')" <<<"$ev" ||
        dump_events "$cursor2"

# ---- 3. rolling rotation by restarts only ---------------------------------------------------------
echo "# section 3 at ${SECONDS}s"
# rolling_round NAME ORDER...: one-by-one restarts; after each, every running unit reads
# everything. RUNNING (a global) lists the units that must run.
RUNNING="1 2 3"
rolling_round() {
        local name=$1 i
        shift
        for i in "$@"; do
                # shellcheck disable=SC2086
                restart_check "$name: restart stand-in@$i, every running server reads every secret" "$i" $RUNNING
        done
}
key0=$(json_field 1 activekey)
cursor3=$(se_journal_cursor)
cli_check "rolling: rotate-keys --rolling on server-2" 2 rotate-keys --rolling
for round in 1 2 3; do
        rolling_round "rolling (1 2 3) round $round" 1 2 3
done
se_check "rolling (1 2 3): all reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
key1=$(json_field 3 activekey)
se_check "rolling (1 2 3): one new key ($key0 -> $key1)" test "$(n_keys 3)" = 1 -a -n "$key1" -a "$key1" != "$key0"
se_check "rolling (1 2 3): stage-changed to prepare logged by the CLI" bash -c \
        "journalctl --sync; journalctl --no-pager -o json --after-cursor='$cursor3' | grep -F '\"MESSAGE_ID\":\"b1db07f8234e4246a18e3d3193f89a55\"' | grep -qF '\"SECRETS_ENCRYPT_STAGE\":\"prepare\"'"
for s in rotate reencrypt_active reencrypt_finished; do
        se_check "rolling (1 2 3): stage-changed to $s logged from a unit's hook (no operator command)" bash -c \
                "journalctl --sync; journalctl --no-pager -o json --after-cursor='$cursor3' | grep -F '\"MESSAGE_ID\":\"b1db07f8234e4246a18e3d3193f89a55\"' | grep -F '\"SECRETS_ENCRYPT_STAGE\":\"$s\"' | grep -qE '\"_SYSTEMD_(USER_)?UNIT\":\"stand-in@'"
done

# order 3 1 2, stand-in@2 stopped for the first round and started later
cli_check "rolling (3 1 2): rotate-keys --rolling on server-3" 3 rotate-keys --rolling
se_systemctl stop "$(unit 2)"
RUNNING="1 3"
rolling_round "rolling (3 1 2, server 2 down) round 1" 3 1
se_check "rolling: no advance past prepare while server-2 is down" test "$(stage_of 1)/$(stage_of 3)" = prepare/prepare
restart_check "rolling: stand-in@2 started again, catches up" 2 1 2 3
RUNNING="1 2 3"
for round in 2 3 4; do
        rolling_round "rolling (3 1 2) round $round" 3 1 2
        expect_converged reencrypt_finished >/dev/null 2>&1 && break
done
se_check "rolling (3 1 2): after round $round all reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
key2=$(json_field 2 activekey)
se_check "rolling (3 1 2): one new key ($key1 -> $key2)" test "$(n_keys 2)" = 1 -a -n "$key2" -a "$key2" != "$key1"

# ---- 4. two servers restarting at once ------------------------------------------------------------
echo "# section 4 at ${SECONDS}s"
# gen_of I: server I's generation (secrets-encrypt.json in its state dir)
gen_of() {
        python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["generation"])' "$(state "$1")/secrets-encrypt.json" 2>/dev/null
}
key0=$(json_field 1 activekey)
cursor4=$(se_journal_cursor)
cli_check "together: rotate-keys --rolling on server-3 (stand-in@3 keeps running the config from before)" 3 rotate-keys --rolling
restart_check "together: round 1: stand-in@1 and stand-in@2 restarted in one systemctl call, every running server reads every secret" "1 2" 1 2 3
se_check "together: no advance past prepare while stand-in@3 still runs the config from before the command (server-1: $(stage_of 1), server-2: $(stage_of 2))" \
        test "$(stage_of 1)/$(stage_of 2)" = prepare/prepare
restart_check "together: round 1: stand-in@3" 3 1 2 3
# from here on, stand-in@1 and stand-in@2 restart together when everyone is caught up
for round in 2 3 4 5; do
        restart_check "together: round $round: stand-in@1 and stand-in@2 restarted in one systemctl call, all read every secret" "1 2" 1 2 3
        restart_check "together: round $round: stand-in@3" 3 1 2 3
        expect_converged reencrypt_finished >/dev/null 2>&1 && break
done
se_check "together: rotation completed within $round rounds: all reencrypt_finished, hashes match, same config" \
        expect_converged reencrypt_finished
key1=$(json_field 1 activekey)
se_check "together: exactly one key, a new one ($key0 -> $key1)" test "$(n_keys 1)" = 1 -a -n "$key1" -a "$key1" != "$key0"
se_check "together: one generation everywhere ($(gen_of 1)/$(gen_of 2)/$(gen_of 3))" \
        test -n "$(gen_of 1)" -a "$(gen_of 1)" = "$(gen_of 2)" -a "$(gen_of 1)" = "$(gen_of 3)"
n_rotate=$(events b1db07f8234e4246a18e3d3193f89a55 "$cursor4" | grep -cF '"SECRETS_ENCRYPT_STAGE":"rotate"')
n_fin=$(events b1db07f8234e4246a18e3d3193f89a55 "$cursor4" | grep -cF '"SECRETS_ENCRYPT_STAGE":"reencrypt_finished"')
se_check "together: no double advance (one stage change to rotate: $n_rotate, one to reencrypt_finished: $n_fin)" \
        test "$n_rotate/$n_fin" = 1/1
n_add=$(events 8dd2feba57664e5fa57a5e28aa77e4d0 "$cursor4" | grep -c .)
se_check "together: one key added ($n_add)" test "$n_add" = 1
v=$("$CLI" --config "$W/s2/config.yaml" verify 2>&1)
se_check "together: verify: every secret under the write key, none unreadable" grep -q '0 not under the write key, 0 unreadable' <<<"$v" ||
        sed 's/^/#   /' <<<"$v"

# ---- 5. the hook killed while it holds the re-encryption lease -----------------------------------
echo "# section 5 at ${SECONDS}s"
# a few thousand secrets (plaintext, as before encryption), in transactions through etcd's gateway
NSEED=2000
python3 - "${ETCD_CLIENT_URLS[0]}" "$NSEED" >"$LOGS/seed.log" 2>&1 <<'PYEOF'
import base64, json, sys, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
b64 = lambda s: base64.b64encode(s.encode()).decode()
for start in range(0, n, 100):
    ops = [{"requestPut": {"key": b64("/registry/secrets/bulk/secret-%05d" % i),
                           "value": b64("k8s-bulk-secret-%d-%s" % (i, "x" * 200))}}
           for i in range(start, min(n, start + 100))]
    req = urllib.request.Request(url + "/v3/kv/txn", json.dumps({"success": ops}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
PYEOF
n_bulk=$(etcd_ctl get --prefix --keys-only /registry/secrets/bulk/ 2>/dev/null | grep -c '^/registry/secrets/bulk/')
se_check "kill: $NSEED secrets seeded ($n_bulk)" test "${n_bulk:-0}" = "$NSEED" || sed 's/^/#   /' "$LOGS/seed.log"
for i in 1 2 3; do write_settings "$i" 200; done # secrets/s: the hook's re-encryption takes ~10 s
key0=$(json_field 1 activekey)
cursor5=$(se_journal_cursor)
cli_check "kill: rotate-keys --rolling on server-1" 1 rotate-keys --rolling
rolling_round "kill: round 1" 1 2 3
# Round 2: the restart that finds everyone at rotate re-encrypts; the restarts are not waited for
# so the test can see which hook re-encrypts.
victim=""
hook_pid=""
status_seen=""
for i in 1 2 3; do
        se_systemctl restart --no-block "$(unit "$i")"
        for _ in $(seq 300); do
                st=$(se_unit_prop "$(unit "$i")" StatusText)
                case "$st" in "Re-encrypting secrets: "*) status_seen=$st ;; esac
                if [ -n "$status_seen" ] &&
                        [ -n "$(events bead9f8d948349dfb6c106c99699d075 "$cursor5" | grep -E "$(from_unit "$i")")" ]; then
                        victim=$i
                        hook_pid=$(se_unit_prop "$(unit "$i")" ControlPID)
                        break
                fi
                [ "$(se_unit_prop "$(unit "$i")" ActiveState)" = active ] && break
                sleep 0.1
        done
        [ -n "$victim" ] && break
        if running_readable 1 2 3 >"$LOGS/check.out" 2>&1; then
                se_ok "kill: round 2: restart stand-in@$i (no re-encryption for it), every running server reads every secret"
        else
                se_not_ok "kill: round 2: restart stand-in@$i"
                sed 's/^/#   /' "$LOGS/check.out" | head -n 30
        fi
done
se_check "kill: a restarting server re-encrypts (stand-in@$victim), its STATUS= shows progress ('$status_seen')" \
        test -n "$victim" -a -n "$status_seen"
lease=$(etcd_ctl get --print-value-only /secrets-encrypt/reencrypt-lease 2>/dev/null)
se_check "kill: server-$victim holds the re-encryption lease" grep -qF "\"holder\":\"server-$victim\"" <<<"$lease" ||
        echo "#   lease: $lease"
if [ -n "$hook_pid" ] && [ "$hook_pid" != 0 ] && grep -q secrets-encrypt-hook "/proc/$hook_pid/cmdline" 2>/dev/null; then
        kill -KILL "$hook_pid"
        se_ok "kill: SIGKILL to the hook (pid $hook_pid, ControlPID of stand-in@$victim)"
else
        se_not_ok "kill: ControlPID '$hook_pid' of stand-in@$victim is not the hook"
fi
[ -z "$victim" ] && victim=3
for _ in $(seq 100); do
        case "$(se_unit_prop "$(unit "$victim")" ActiveState)" in failed | inactive) break ;; esac
        sleep 0.1
done
se_check "kill: stand-in@$victim did not start" test "$(se_unit_prop "$(unit "$victim")" ActiveState)" = failed
se_check "kill: the re-encryption did not finish" \
        test -z "$(events c541c26f97474e71b87a27e440b2d4a2 "$cursor5")"
lease=$(etcd_ctl get --print-value-only /secrets-encrypt/reencrypt-lease 2>/dev/null)
se_check "kill: the dead hook's lease is still in etcd" grep -qF "\"holder\":\"server-$victim\"" <<<"$lease"
others=""
for i in 1 2 3; do [ "$i" != "$victim" ] && others="$others $i"; done
other=${others# }
other=${other%% *}
for i in 1 2 3; do write_settings "$i"; done
t0=$SECONDS
# shellcheck disable=SC2086
restart_check "kill: stand-in@$other restarts meanwhile and is not blocked by the lease" "$other" $others
se_check "kill: ... it came up in $((SECONDS - t0)) s (the lease's TTL is 60 s)" test $((SECONDS - t0)) -lt 30
cursor5b=$(se_journal_cursor)
restart_check "kill: stand-in@$victim restarted: its hook resumes, all read every secret" "$victim" 1 2 3
se_check "kill: the resumed re-encryption finished in stand-in@$victim" \
        test -n "$(events c541c26f97474e71b87a27e440b2d4a2 "$cursor5b" | grep -E "$(from_unit "$victim")")" ||
        dump_events "$cursor5b"
se_check "kill: the lease is released" test -z "$(etcd_ctl get --print-value-only /secrets-encrypt/reencrypt-lease 2>/dev/null)"
se_check "kill: server-$victim at reencrypt_finished" test "$(stage_of "$victim")" = reencrypt_finished
rolling=$(etcd_ctl get --print-value-only /secrets-encrypt/rolling 2>/dev/null)
se_check "kill: the rolling rotation is over after the resumed re-encryption (rolling flag '$rolling')" \
        bash -c '! grep -q "\"rolling\":true" <<<"$1"' _ "$rolling"
for i in $others; do
        restart_check "kill: stand-in@$i restarts and installs the final config" "$i" 1 2 3
done
se_check "kill: all reencrypt_finished, All hashes match, same config, no new rotation started (stages $(stage_of 1)/$(stage_of 2)/$(stage_of 3))" \
        expect_converged reencrypt_finished
key1=$(json_field 1 activekey)
se_check "kill: one key, a new one ($key0 -> $key1)" test "$(n_keys 1)" = 1 -a "$key1" != "$key0"
v=$("$CLI" --config "$W/s1/config.yaml" verify 2>&1)
se_check "kill: verify: $NSEED+ secrets, all under the write key, none unreadable" grep -q '0 not under the write key, 0 unreadable' <<<"$v" ||
        sed 's/^/#   /' <<<"$v"

# ---- 6. the journal ---------------------------------------------------------------------------------
echo "# section 6 at ${SECONDS}s"
# has_event JSON-LINES UNIT-INDEX [FIXED-STRING...]: an entry logged inside that unit with all strings
has_event() {
        local lines=$1 i=$2 f
        shift 2
        lines=$(grep -E "$(from_unit "$i")" <<<"$lines") || return 1
        for f in "$@"; do
                lines=$(grep -F -- "$f" <<<"$lines") || return 1
        done
}
for i in 2 3; do
        se_check "journal: at the first start config-installed (70b36004…) from stand-in@$i's hook, SECRETS_ENCRYPT_NODE=server-$i" \
                has_event "$inst1" "$i" "\"SECRETS_ENCRYPT_NODE\":\"server-$i\"" '"SECRETS_ENCRYPT_STAGE":"start"' \
                '"SECRETS_ENCRYPT_GENERATION":"' '"SECRETS_ENCRYPT_HASH":"'
done
se_check "journal: at the first start server-1 generated and did not install" bash -c "! grep -qE '$(from_unit 1)'" <<<"$inst1"
inst=$(events 70b36004f86f4de8bd9ed77572654ba1 "$cursor0")
for i in 1 2 3; do
        se_check "journal: config-installed from stand-in@$i over the run ($(grep -c . <<<"$inst") events in all)" \
                has_event "$inst" "$i" "\"SECRETS_ENCRYPT_NODE\":\"server-$i\""
done
conv=$(se_journal_since "$cursor0" | grep -F '"MESSAGE_ID":"8ea6f59bfe7b43eaa6daa2cbc1e2196e"')
mism=$(se_journal_since "$cursor0" | grep -F '"MESSAGE_ID":"943100034f1e4279b3157f0bdb13ef57"')
se_check "journal: hashes-converged events ($(grep -c . <<<"$conv")) from the units' hooks, PRIORITY 6, stage and hash" \
        has_event "$conv" '[123]' '"PRIORITY":"6"' '"SECRETS_ENCRYPT_STAGE":"' '"SECRETS_ENCRYPT_HASH":"'
se_check "journal: hashes-mismatch events ($(grep -c . <<<"$mism")) from the units' hooks, PRIORITY 4, naming the servers" \
        bash -c "grep -E '\"_SYSTEMD_(USER_)?UNIT\":\"stand-in@' | grep -F '\"PRIORITY\":\"4\"' | grep -qE '\"MESSAGE\":\"[^\"]*hash does not match between server-[123] and server-[123]'" <<<"$mism"
se_check "journal: hashes-converged and mismatch are catalogued" bash -c \
        "grep -q '^-- 8ea6f59bfe7b43eaa6daa2cbc1e2196e' '$SE_ROOT/units/secrets-encrypt.catalog' && grep -q '^-- 943100034f1e4279b3157f0bdb13ef57' '$SE_ROOT/units/secrets-encrypt.catalog'"

# no key material (base64, raw, hex) of any config seen in the journal or the CLI's output
journalctl --sync
journalctl --no-pager -o export >"$LOGS/journal.export" 2>/dev/null
scan=$(se_key_scan "$SEEN" "$LOGS/journal.export" "$LOGS/cli.out" "$LOGS/cli.err")
read -r n_secrets n_found <<<"$(head -n 1 <<<"$scan")"
se_check "key scan: keys of every config seen collected ($n_secrets)" test "${n_secrets:-0}" -ge 5
se_check "key scan: no key in the journal or the CLI's output ($n_found found)" test "${n_found:-x}" = 0

exit 0
