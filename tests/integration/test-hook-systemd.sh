#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# End-to-end: the real hook as ExecStartPre= (our shipped drop-in) of a Type=notify stand-in
# API server under a private systemd user manager + journald (lib-systemd.sh), on a kine SQLite
# datastore (SPEC §5.2, §7, §9):
#   1. first start generates the config; events in the journal with MESSAGE_ID and fields
#   2. classic flow with manual restarts and online re-encryption, then the same with --restart
#   3. rotate-keys --restart in one restart
#   4. kill -9 of the hook mid re-encryption, restart completes it; STATUS= while it runs
#   5. an invalid config blocks the start (78), catalogued event, file untouched; short repeats
#      under Restart=always
#   6. no key bytes (base64 or raw) in the journal or the CLI's output
set -u
. "$(dirname "$0")/lib-systemd.sh"
se_harness_reexec "$@"

command -v python3 >/dev/null || { echo "ok - # SKIP python3 missing"; exit 0; }
command -v sqlite3 >/dev/null || { echo "ok - # SKIP sqlite3 missing"; exit 0; }

W="$SE_HARNESS_DIR/work"
# A private copy of the programs ($ORIGIN runpath): a rebuild during the run cannot swap them.
mkdir -p "$W/bin" "$W/libexec/secrets-encrypt"
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver \
        tests/tools/kine-seed; do
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
SEED="$W/bin/kine-seed"
STATE="$W/state"
DB="$W/db.sqlite"
LOGS="$W/logs"
SEEN="$W/seen-configs"
mkdir -p "$LOGS" "$SEEN"
UNIT=stand-in.service
NSEED=300

write_settings() {
        {
                echo "state-dir: $STATE"
                echo "node-name: node-1"
                echo "datastore-endpoint: sqlite://$DB"
                echo "unit: $UNIT"
                echo "timeout: 5m"
                [ -n "${1:-}" ] && echo "reencrypt-rate: $1"
        } >"$W/config.yaml"
}
write_settings
# Reaches the CLI here and every unit (systemd --user passes its environment on).
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# The CLI's events go to our journald too, so every transition is in one place.
export SECRETS_ENCRYPT_LOG_TARGET=journal

"$SEED" "$DB" "$NSEED" >"$LOGS/seed.log" 2>&1 || { echo "not ok - kine-seed failed"; cat "$LOGS/seed.log"; exit 1; }

se_harness_start || exit 1
se_ok "journald and systemd --user running in a private namespace"

# ---- helpers ------------------------------------------------------------------------------------
# journald names a unit of this user manager _SYSTEMD_UNIT (its cgroup is not under user@.service);
# accept both spellings.
FROM_UNIT="\"_SYSTEMD_(USER_)?UNIT\":\"$UNIT\""

# unit_events MESSAGE_ID [CURSOR]: JSON lines of that event logged from inside the unit.
unit_events() { se_journal_events "$@" | grep -E "$FROM_UNIT"; }
# dump_events CURSOR / dump_unit: comment lines to explain a failed check.
dump_events() { se_dump_events "$1" 30; }
dump_unit() { se_dump_unit "$UNIT" 25; }

n_snap=0
# Keeps every config seen, for the key scan at the end.
snap() {
        [ -f "$STATE/encryption-config.json" ] || return 0
        n_snap=$((n_snap + 1))
        cp "$STATE/encryption-config.json" "$SEEN/config.$n_snap.json"
}

# cli ARGS...: runs the CLI, keeps stdout/stderr (also appended to the scanned logs).
cli() {
        "$CLI" "$@" >"$LOGS/last.out" 2>"$LOGS/last.err"
        local rc=$?
        { echo "\$ secrets-encrypt $*"; cat "$LOGS/last.out"; } >>"$LOGS/cli.out"
        cat "$LOGS/last.err" >>"$LOGS/cli.err"
        snap
        return "$rc"
}

# cli_check NAME ARGS...: a TAP line for a CLI command that must succeed.
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
                case " $* " in *" --restart "*) dump_unit ;; esac
        fi
        return "$rc"
}

# status_field KEY: a field of `status -o json` (for lists: the count; for a missing key: "-").
status_field() {
        "$CLI" status -o json 2>>"$LOGS/status.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = d.get(sys.argv[1], "-")
print(len(v) if isinstance(v, list) else v)' "$1"
}

n_keys() {
        "$CLI" status -o json 2>>"$LOGS/status.err" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print((1 if d.get("activekey") else 0) + len(d.get("inactivekeys") or []))'
}

# verify_all: every stored secret readable, none unreadable; prints the total on stdout.
verify_all() {
        local out rc
        out=$("$CLI" verify 2>&1)
        rc=$?
        echo "$out" >>"$LOGS/cli.out"
        [ "$rc" = 0 ] || { echo "$out" >&2; return 1; }
        grep -q ' 0 unreadable' <<<"$out" || { echo "$out" >&2; return 1; }
        sed -nE 's/^([0-9]+) secrets$/\1/p' <<<"$out" | head -n 1
}

unit_is_active() {
        test "$(se_unit_prop "$UNIT" ActiveState)" = active
}

# restart_unit: manual restart as an operator would; the unit must come back active.
restart_unit() {
        se_systemctl restart "$UNIT" >"$LOGS/last.err" 2>&1
        local rc=$?
        snap
        [ "$rc" = 0 ] && unit_is_active && return 0
        dump_unit >&2
        return 1
}

# The stand-in reads the config the hook guards and keeps writing secrets with its write key.
se_unit_install "$UNIT" "[Unit]
Description=Stand-in API server (secrets-encrypt integration test)
# many restarts in a few seconds here; not a start loop
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STANDIN --encryption-provider-config $STATE/encryption-config.json --datastore sqlite://$DB --write-interval-ms 100
Restart=no
TimeoutStartSec=180"
se_dropin_install "$UNIT" "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf"
se_check "drop-in applied to $UNIT" bash -c \
        "systemctl --user cat $UNIT | grep -q 'ExecStartPre=$SE_LIBEXECDIR/secrets-encrypt/secrets-encrypt-hook --unit=%n'"

# ---- 1. first start -----------------------------------------------------------------------------
se_check "no config before the first start" test ! -e "$STATE/encryption-config.json"
se_systemctl start "$UNIT" >"$LOGS/last.err" 2>&1
se_check "first start: $UNIT active" unit_is_active || sed 's/^/#   /' "$LOGS/last.err"
snap
se_check "first start: the hook generated encryption-config.json" test -s "$STATE/encryption-config.json"
se_check "first start: encryption-state.json is start-<sha256 of the config>" bash -c \
        "test \"\$(cat '$STATE/encryption-state.json')\" = \"start-\$(sha256sum <'$STATE/encryption-config.json' | cut -d' ' -f1)\""
cli status
se_check "status: Encryption Status: Enabled" grep -qx 'Encryption Status: Enabled' "$LOGS/last.out"
se_check "status: Current Rotation Stage: start" grep -qx 'Current Rotation Stage: start' "$LOGS/last.out"
se_check "status: All hashes match" grep -qx 'Server Encryption Hashes: All hashes match' "$LOGS/last.out"
se_check "status: one active key aescbckey" grep -qE '^ \*  +AES-CBC  +aescbckey$' "$LOGS/last.out"
hash1=$(sha256sum <"$STATE/encryption-config.json" | cut -d' ' -f1)

ev_gen=$(se_journal_json MESSAGE_ID=bf7e709ac08a49c0a37ec4377f7289b6)
ev_val=$(se_journal_json MESSAGE_ID=b55383721fe9430baf5ad8097f6511d7)
for f in '"MESSAGE_ID":"bf7e709ac08a49c0a37ec4377f7289b6"' '"SECRETS_ENCRYPT_STAGE":"start"' \
        "\"SECRETS_ENCRYPT_HASH\":\"$hash1\"" '"SECRETS_ENCRYPT_NODE":"node-1"' '"SECRETS_ENCRYPT_PROVIDER":"aescbc"' \
        '"SYSLOG_IDENTIFIER":"secrets-encrypt"'; do
        se_check "config-generated event has $f" grep -qF -- "$f" <<<"$ev_gen"
done
se_check "config-generated event logged from inside $UNIT (the hook)" grep -qE "$FROM_UNIT" <<<"$ev_gen"
for f in '"MESSAGE_ID":"b55383721fe9430baf5ad8097f6511d7"' "\"SECRETS_ENCRYPT_HASH\":\"$hash1\"" \
        '"SECRETS_ENCRYPT_NODE":"node-1"' '"SECRETS_ENCRYPT_GENERATION":"' '"PRIORITY":"6"' '"CODE_FILE":"'; do
        se_check "config-validated event has $f" grep -qF -- "$f" <<<"$ev_val"
done
se_check "stage-changed to start in the journal" bash -c \
        "journalctl --no-pager -o json MESSAGE_ID=b1db07f8234e4246a18e3d3193f89a55 SECRETS_ENCRYPT_STAGE=start | grep -q ."

# ---- 2a. classic flow, manual restarts, online re-encryption -------------------------------------
# journal_has_stage STAGE: a stage-changed event to STAGE is in the journal (from the CLI).
journal_has_stage() {
        journalctl --sync 2>/dev/null
        [ -n "$(journalctl --no-pager -o cat MESSAGE_ID=b1db07f8234e4246a18e3d3193f89a55 SECRETS_ENCRYPT_STAGE="$1")" ]
}

cli_check "classic: prepare" prepare
se_check "classic: prepare printed k3s's line" grep -qx 'prepare completed successfully' "$LOGS/last.out"
se_check "classic: stage prepare, 2 keys" test "$(status_field stage)/$(n_keys)" = prepare/2
se_check "classic: restart after prepare, stand-in active" restart_unit
se_check "classic: stage still prepare after the restart" test "$(status_field stage)" = prepare
cli_check "classic: rotate" rotate
se_check "classic: stage rotate" test "$(status_field stage)" = rotate
se_check "classic: restart after rotate, stand-in active" restart_unit
writes_before=$(sqlite3 "$DB" "select count(*) from kine where name like '/registry/secrets/stand-in/%'" 2>/dev/null)
cli_check "classic: reencrypt online while the stand-in runs and writes" reencrypt
se_check "classic: stand-in still active after the online reencrypt" unit_is_active
sleep 0.5
writes_after=$(sqlite3 "$DB" "select count(*) from kine where name like '/registry/secrets/stand-in/%'" 2>/dev/null)
se_check "classic: the stand-in kept writing ($writes_before -> $writes_after rows)" test "${writes_after:-0}" -gt "${writes_before:-0}"
se_check "classic: stage reencrypt_finished" test "$(status_field stage)" = reencrypt_finished
se_check "classic: exactly one key left" test "$(n_keys)" = 1
se_check "classic: hashes match" test "$(status_field hashmatch)" = True
se_check "classic: restart after reencrypt, stand-in reads every secret (active)" restart_unit
total=$(verify_all 2>"$LOGS/verify.err")
se_check "classic: verify: every secret readable ($total)" test -n "$total"
se_check "classic: verify: at least the $NSEED seeded secrets" test "${total:-0}" -ge "$NSEED"
se_check "classic: stand-in --check-only accepts the datastore" \
        "$STANDIN" --encryption-provider-config "$STATE/encryption-config.json" --datastore "sqlite://$DB" --check-only
for s in prepare rotate reencrypt_active reencrypt_finished; do
        se_check "classic: journal has stage-changed to $s" journal_has_stage "$s"
done

# ---- 2b. classic flow with --restart --user -------------------------------------------------------
pid_before=$(se_unit_prop "$UNIT" MainPID)
cli_check "--restart: prepare --restart --user" prepare --restart --user
se_check "--restart: prepare printed its line after the restart" grep -qx 'prepare completed successfully' "$LOGS/last.out"
se_check "--restart: the unit was restarted (MainPID $pid_before -> $(se_unit_prop "$UNIT" MainPID))" \
        test "$(se_unit_prop "$UNIT" MainPID)" != "$pid_before"
se_check "--restart: active after prepare" unit_is_active
se_check "--restart: stage prepare" test "$(status_field stage)" = prepare
cli_check "--restart: rotate --restart --user" rotate --restart --user
se_check "--restart: active after rotate, stage rotate" test "$(se_unit_prop "$UNIT" ActiveState)/$(status_field stage)" = active/rotate
cli_check "--restart: reencrypt --restart --user (done by the hook)" reencrypt --restart --user
se_check "--restart: reencrypt printed reencryption started" grep -qx 'reencryption started' "$LOGS/last.out"
se_check "--restart: active after reencrypt" unit_is_active
se_check "--restart: stage reencrypt_finished" test "$(status_field stage)" = reencrypt_finished
se_check "--restart: exactly one key" test "$(n_keys)" = 1
se_check "--restart: the hook did the re-encryption (re-encryption finished from the unit)" \
        test -n "$(unit_events c541c26f97474e71b87a27e440b2d4a2)"
t2=$(verify_all 2>"$LOGS/verify.err")
se_check "--restart: verify: every secret readable ($t2)" test -n "$t2"

# ---- 3. rotate-keys --restart ---------------------------------------------------------------------
old_key=$(status_field activekey)
cli_check "rotate-keys --restart --user" rotate-keys --restart --user
se_check "rotate-keys: printed k3s's line" grep -qx 'keys rotated, reencryption finished' "$LOGS/last.out"
se_check "rotate-keys: active, stage reencrypt_finished" \
        test "$(se_unit_prop "$UNIT" ActiveState)/$(status_field stage)" = active/reencrypt_finished
new_key=$(status_field activekey)
se_check "rotate-keys: a new single key ($old_key -> $new_key)" \
        test "$(n_keys)" = 1 -a "$new_key" != "$old_key" -a -n "$new_key"
t3=$(verify_all 2>"$LOGS/verify.err")
se_check "rotate-keys: verify: every secret readable ($t3)" test -n "$t3"

# ---- 4. kill -9 of the hook mid re-encryption ------------------------------------------------------
se_systemctl stop "$UNIT"
"$SEED" "$DB" 4000 --start 100000 --config "$STATE/encryption-config.json" >"$LOGS/seed2.log" 2>&1
total_before=$(verify_all 2>"$LOGS/verify.err")
se_check "kill: 4000 more secrets seeded ($total_before in all)" test "${total_before:-0}" -ge 4300
write_settings 400 # secrets/s, so the hook's re-encryption takes ~10 s
se_systemctl start "$UNIT"
cursor=$(se_journal_cursor)

cli rotate-keys --restart --user &
cli_pid=$!
hook_pid=""
status_seen=""
for _ in $(seq 300); do
        st=$(se_unit_prop "$UNIT" StatusText)
        case "$st" in "Re-encrypting secrets: "*) status_seen=$st ;; esac
        if [ -n "$status_seen" ] && [ -n "$(unit_events bead9f8d948349dfb6c106c99699d075 "$cursor")" ]; then
                hook_pid=$(se_unit_prop "$UNIT" ControlPID)
                break
        fi
        sleep 0.1
done
se_check "STATUS= from the hook while it re-encrypts ('$status_seen')" test -n "$status_seen"
se_check "kill: re-encryption progress event from the hook in the unit" test -n "$hook_pid" -a "$hook_pid" != 0
if [ -n "$hook_pid" ] && [ "$hook_pid" != 0 ] && grep -q secrets-encrypt-hook "/proc/$hook_pid/cmdline" 2>/dev/null; then
        kill -KILL "$hook_pid"
        se_ok "kill: killed the hook (pid $hook_pid, the unit's ControlPID) with SIGKILL"
else
        se_not_ok "kill: ControlPID '$hook_pid' is not the hook"
fi
wait "$cli_pid"
cli_rc=$?
se_check "kill: rotate-keys --restart reports the failed restart (exit $cli_rc)" test "$cli_rc" != 0
se_check "kill: unit failed (the server did not start)" test "$(se_unit_prop "$UNIT" ActiveState)" = failed
se_check "kill: the re-encryption was interrupted, not finished" \
        test -z "$(se_journal_events c541c26f97474e71b87a27e440b2d4a2 "$cursor")"
se_check "kill: STATUS= still names the re-encryption after the kill" bash -c \
        "systemctl --user show -p StatusText --value $UNIT | grep -q 'Re-encrypting secrets'"
write_settings
se_systemctl reset-failed "$UNIT"
se_systemctl start "$UNIT" >"$LOGS/last.err" 2>&1
snap
se_check "kill: restart completes: unit active" unit_is_active || sed 's/^/#   /' "$LOGS/last.err"
se_check "kill: the restart finished the re-encryption (event from the unit)" \
        test -n "$(unit_events c541c26f97474e71b87a27e440b2d4a2 "$cursor")" || dump_events "$cursor"
se_check "kill: stage reencrypt_finished, one key" test "$(status_field stage)/$(n_keys)" = reencrypt_finished/1
total_after=$(verify_all 2>"$LOGS/verify.err")
se_check "kill: every secret readable, count unchanged ($total_before -> $total_after)" \
        test -n "$total_after" -a "$total_after" = "$total_before"
sv=$("$CLI" verify 2>/dev/null)
se_check "kill: every secret is under the write key" grep -q '^0 not under the write key' <<<"$sv"
se_check "kill: hook's final STATUS= replaced by the server's" bash -c \
        "systemctl --user show -p StatusText --value $UNIT | grep -q '^serving with config sha256:'"

# ---- 5. an invalid config blocks the start ----------------------------------------------------------
se_systemctl stop "$UNIT"
cp -p "$STATE/encryption-config.json" "$W/good-config.json"
bad_secret=$(head -c 17 /dev/urandom | base64)
printf '%s' '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"'"$bad_secret"'"}]}},{"identity":{}}]}]}' \
        >"$STATE/encryption-config.json"
snap
cp "$STATE/encryption-config.json" "$W/bad-config.json"
cursor=$(se_journal_cursor)
se_systemctl start "$UNIT" >/dev/null 2>&1
rc=$?
se_check "invalid: systemctl start fails (rc $rc)" test "$rc" != 0
se_check "invalid: unit failed" test "$(se_unit_prop "$UNIT" ActiveState)" = failed
pre=$(se_unit_prop "$UNIT" ExecStartPre)
se_check "invalid: ExecStartPre status=78 in systemctl show" grep -q 'status=78' <<<"$pre"
se_check "invalid: the server never ran" test "$(se_unit_prop "$UNIT" ExecMainPID)" = 0
se_check "invalid: systemctl status names 78/CONFIG" bash -c \
        "systemctl --user --no-pager status $UNIT 2>&1 | grep -q 'status=78/CONFIG'"
se_check "invalid: config file untouched (same bytes)" cmp -s "$STATE/encryption-config.json" "$W/bad-config.json"
ev=$(se_journal_events 4bd0af8868764a20af8eb07fee8ea4f8 "$cursor")
se_check "invalid: one config-invalid event (MESSAGE_ID 4bd0af88…)" test "$(grep -c . <<<"$ev")" = 1 ||
        dump_events "$cursor"
se_check "invalid: the event has SECRETS_ENCRYPT_ERROR" grep -qF '"SECRETS_ENCRYPT_ERROR":"' <<<"$ev"
se_check "invalid: the event names the key length problem" grep -qiE '"MESSAGE":"[^"]*(key|17)' <<<"$ev"
se_check "invalid: the event comes from the unit's hook" grep -qE "$FROM_UNIT" <<<"$ev"
se_check "invalid: the event is catalogued" grep -q '^-- 4bd0af8868764a20af8eb07fee8ea4f8' "$SE_ROOT/units/secrets-encrypt.catalog"

# Restart=always: the same failure again and again logs the short event, not the full one.
mkdir -p "$SE_UNIT_DIR/$UNIT.d"
printf '[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nRestart=always\nRestartSec=300ms\n' \
        >"$SE_UNIT_DIR/$UNIT.d/60-restart.conf"
se_systemctl daemon-reload
se_systemctl reset-failed "$UNIT"
se_systemctl start --no-block "$UNIT"
n_rep=0
for _ in $(seq 100); do
        n_rep=$(se_journal_events 350881f3b40447dfa43c3d214416403d "$cursor" | grep -c .)
        [ "$n_rep" -ge 3 ] && break
        sleep 0.1
done
se_systemctl stop "$UNIT"
n_full=$(se_journal_events 4bd0af8868764a20af8eb07fee8ea4f8 "$cursor" | grep -c .)
se_check "invalid + Restart=always: repeats logged as the short event ($n_rep)" test "$n_rep" -ge 3
se_check "invalid + Restart=always: the full event was not repeated ($n_full)" test "$n_full" = 1
se_check "invalid + Restart=always: config file still untouched" cmp -s "$STATE/encryption-config.json" "$W/bad-config.json"
rm -f "$SE_UNIT_DIR/$UNIT.d/60-restart.conf"
se_systemctl daemon-reload

cp -p "$W/good-config.json" "$STATE/encryption-config.json"
se_systemctl reset-failed "$UNIT" 2>/dev/null
se_systemctl start "$UNIT" >"$LOGS/last.err" 2>&1
se_check "invalid: with the good config back the unit starts" unit_is_active
se_check "invalid: stage still reencrypt_finished" test "$(status_field stage)" = reencrypt_finished
se_systemctl stop "$UNIT"

# ---- 5b. a key no shape matches, in a config the decoder echoes: not in STATUS=, nor the journal --
# A folded YAML scalar without kind ("Object 'Kind' is missing in '…'" echoes the file). STATUS= is
# readable by every local user: one fixed phrase per failure class, never the error text.
K3=$(head -c 32 /dev/urandom | base64)
printf 'apiVersion: apiserver.config.k8s.io/v1\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k1\n        secret: >-\n          %s\n          %s\n' \
        "${K3:0:22}" "${K3:22}" >"$STATE/encryption-config.json"
cursor=$(se_journal_cursor)
se_systemctl reset-failed "$UNIT" 2>/dev/null
status_seen=""
se_systemctl start --no-block "$UNIT"
for _ in $(seq 100); do
        st=$(se_unit_prop "$UNIT" StatusText)
        case "$st" in *"encryption configuration is invalid"*) status_seen=$st ;; esac
        [ "$(se_unit_prop "$UNIT" ActiveState)" = failed ] && break
        sleep 0.1
done
st=$(se_unit_prop "$UNIT" StatusText)
[ -n "$status_seen" ] || status_seen=$st
se_check "folded secret: the start fails with 78" grep -q 'status=78' <<<"$(se_unit_prop "$UNIT" ExecStartPre)"
se_check "folded secret: STATUS= is the fixed phrase ('$status_seen')" \
        test "$status_seen" = "secrets-encrypt: the encryption configuration is invalid; see the journal"
journalctl --sync
journalctl --no-pager -o export --after-cursor="$cursor" >"$LOGS/folded.export" 2>/dev/null
se_check "folded secret: the journal has the failure" grep -q "Object 'Kind' is missing" "$LOGS/folded.export"
se_check "folded secret: no piece of the key in the journal, decoded or as written" bash -c \
        "! grep -qF -e '${K3:0:22}' -e '${K3:22}' -e '$K3' '$LOGS/folded.export'"
cp -p "$W/good-config.json" "$STATE/encryption-config.json"
se_systemctl reset-failed "$UNIT" 2>/dev/null

# ---- 6. no key bytes anywhere -----------------------------------------------------------------------
journalctl --sync
journalctl --no-pager -o export >"$LOGS/journal.export" 2>/dev/null
se_check "journal export is not empty" test -s "$LOGS/journal.export"
scan=$(se_key_scan "$SEEN" "$LOGS/journal.export" "$LOGS/cli.out" "$LOGS/cli.err")
echo "$scan" | sed -n '2,$p'
read -r n_secrets n_found <<<"$(head -n 1 <<<"$scan")"
se_check "key scan: collected the keys of every config seen ($n_secrets keys)" test "${n_secrets:-0}" -ge 4
se_check "key scan: no key (base64, raw, hex) in journal export or CLI output ($n_found found)" test "${n_found:-x}" = 0

if [ -s "$LOGS/status.err" ]; then
        echo "# status -o json wrote to stderr:"
        sed 's/^/#   /' "$LOGS/status.err" | head -n 20
fi
exit 0
