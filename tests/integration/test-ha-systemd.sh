#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# HA under the private systemd user manager (lib-systemd.sh): a 3-member etcd cluster on
# 127.0.0.1 and three servers, each a real unit stand-in@N.service (Type=notify stand-in API
# server, our shipped drop-in as ExecStartPre=, its own settings file, state dir and node name,
# one cluster token). SPEC §5.2, §5.4, §6; k3s's HA scenarios (reference §9.2):
#   1. first start in order: one server generates, the others install the cluster's config
#   2. rotate-keys on server 1 with the stand-ins running, then restarts
#   3. rolling rotation by restarts only: order 1 2 3, then 3 1 2 with server 2 down for a round
#   4. two servers restarting at once during a rolling rotation
#   5. the hook SIGKILLed while it holds the re-encryption lease; its restart resumes, another
#      server's restart meanwhile is not blocked
#   6. journal: config-installed on the servers that installed, hashes converged / mismatch
# After every restart every unit that should run is active, and every running stand-in can read
# every stored secret with the config it loaded (its STATUS= names that config's sha256).
set -u
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
if ! etcd_start 3 2>"$LOGS/etcd-start.err"; then
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

journal_cursor() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -n 1 --show-cursor -o cat 2>/dev/null | sed -n 's/^-- cursor: //p'
}
# journal_since [CURSOR]: JSON lines (no field matches: journalctl 252 skips the first match
# after a cursor when matches are given).
journal_since() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -o json ${1:+--after-cursor="$1"} 2>/dev/null
}
# events MESSAGE_ID [CURSOR]
events() {
        journal_since "${2:-}" | grep -F "\"MESSAGE_ID\":\"$1\""
}
# from_unit I: a regex for entries logged inside unit I (journald names a unit of this user
# manager _SYSTEMD_UNIT or _SYSTEMD_USER_UNIT).
from_unit() {
        echo "\"_SYSTEMD_(USER_)?UNIT\":\"stand-in@$1\\.service\""
}
dump_events() {
        journal_since "${1:-}" | grep -F '"SYSLOG_IDENTIFIER":"secrets-encrypt"' |
                python3 -c '
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    print("#   %s %s %s" % (d.get("MESSAGE_ID", "-"), d.get("_SYSTEMD_UNIT", d.get("_COMM", "-")), d.get("MESSAGE")))' |
                tail -n 20
}
dump_unit() {
        {
                systemctl --user --no-pager status "$(unit "$1")" 2>&1 | head -n 12
                journalctl --sync 2>/dev/null
                journalctl --no-pager -o short-monotonic -n 15 _SYSTEMD_UNIT="$(unit "$1")" 2>&1
        } | sed 's/^/#   /'
}

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

# status_text I / status_json_field I KEY
status_line() { # status_line I PREFIX -> the rest of that line of `status`
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

# expect_all CHECK-DESCRIPTION: every server at stage $1 with All hashes match and one config
expect_converged() { # expect_converged STAGE
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

# restart_check NAME I [RUNNING...]: restart unit I, then every RUNNING unit (default all three)
# must be active and able to read every secret.
restart_check() {
        local name=$1 i=$2 out
        shift 2
        [ $# = 0 ] && set -- 1 2 3
        if out=$(restart_units "$i" && running_readable "$@" 2>&1); then
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
cursor0=$(journal_cursor)
restart_check "first start: stand-in@1 active, reads every secret" 1 1
restart_check "first start: stand-in@2 active" 2 1 2
restart_check "first start: stand-in@3 active; all three read every secret" 3 1 2 3
ev_gen=$(events bf7e709ac08a49c0a37ec4377f7289b6 "$cursor0")
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
cursor2=$(journal_cursor)
key0=$(json_field 1 activekey)
cli_check "rotate-keys on server-1 while the three stand-ins run and write" 1 rotate-keys
se_check "rotate-keys: printed k3s's line" grep -qx 'keys rotated, reencryption finished' "$LOGS/last.out"
se_check "rotate-keys: server-1 at reencrypt_finished, one new key" \
        test "$(stage_of 1)/$(n_keys 1)" = reencrypt_finished/1 -a "$(json_field 1 activekey)" != "$key0"
for i in 2 3; do
        h=$(hashes_of "$i")
        se_check "rotate-keys: server-$i shows a hash mismatch ('$h'), still at start" bash -c \
                "[[ '$h' == 'hash does not match'* ]] && test '$(stage_of "$i")' = start"
done
se_check "rotate-keys: the running stand-ins are all still active (they kept writing)" \
        bash -c "$(declare -f is_active se_unit_prop unit); is_active 1 && is_active 2 && is_active 3"
restart_check "rotate-keys: restart stand-in@2, it installs the new config" 2 2
restart_check "rotate-keys: restart stand-in@3" 3 2 3
# no automatic config reload in the stand-in, unlike kube-apiserver: server 1 restarts too
restart_check "rotate-keys: restart stand-in@1; all three read every secret" 1 1 2 3
se_check "rotate-keys: all at reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
se_check "rotate-keys: one key everywhere" test "$(n_keys 1)$(n_keys 2)$(n_keys 3)" = 111
ev=$(events 943100034f1e4279b3157f0bdb13ef57 "$cursor2")
se_check "rotate-keys: hashes-mismatch event logged by a restarting server's hook" grep -qE "$(from_unit 2)|$(from_unit 3)" <<<"$ev" ||
        dump_events "$cursor2"
ev=$(events 8ea6f59bfe7b43eaa6daa2cbc1e2196e "$cursor2")
se_check "rotate-keys: hashes-converged event once every server restarted" grep -qF '"SECRETS_ENCRYPT_STAGE":"reencrypt_finished"' <<<"$ev" ||
        dump_events "$cursor2"

# ---- 3. rolling rotation by restarts only ---------------------------------------------------------
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
cursor3=$(journal_cursor)
cli_check "rolling: rotate-keys --rolling on server-2" 2 rotate-keys --rolling
for round in 1 2 3; do
        rolling_round "rolling (1 2 3) round $round" 1 2 3
done
se_check "rolling (1 2 3): all reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
key1=$(json_field 3 activekey)
se_check "rolling (1 2 3): one new key ($key0 -> $key1)" test "$(n_keys 3)" = 1 -a -n "$key1" -a "$key1" != "$key0"
for s in prepare rotate reencrypt_finished; do
        se_check "rolling (1 2 3): stage-changed to $s logged from a unit's hook" bash -c \
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
done
se_check "rolling (3 1 2): all reencrypt_finished, All hashes match, same config" expect_converged reencrypt_finished
key2=$(json_field 2 activekey)
se_check "rolling (3 1 2): one new key ($key1 -> $key2)" test "$(n_keys 2)" = 1 -a -n "$key2" -a "$key2" != "$key1"

echo "# done so far"
exit 0
