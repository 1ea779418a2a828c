#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Scheduled rotation (issue 18): the shipped secrets-encrypt-rotate.timer and .service under a
# private systemd user manager + journald (lib-systemd.sh), with its sandboxing as shipped, next to
# a stand-in API server that runs our drop-in, on a kine SQLite datastore:
#   1. the timer's calendar parses, the timer loads and is not enabled
#   2. a start with a key older than rotate-after rotates it: rotate-keys, the API server
#      restarted, every secret re-encrypted under the new key, events in the journal
#   3. a second start is a no-op: same config, the API server not restarted
#   4. a failure is the unit's failed state, with the CLI's error and the journal's event
#
# Only the work directory differs from the shipped units: the harness lives outside /tmp (the
# service has PrivateTmp=) and a drop-in gives the service ReadWritePaths= for it, as an admin
# does for a state-dir elsewhere; the CLI gets --user to reach this user manager.
set -u
# PrivateTmp= would hide a harness in /tmp (and its XDG_RUNTIME_DIR socket) from the service.
export TMPDIR=${SE_ROTATE_TMPDIR:-/var/lib}
. "$(dirname "$0")/lib-systemd.sh"
se_harness_reexec "$@"

command -v python3 >/dev/null || { echo "ok - # SKIP python3 missing"; exit 0; }
command -v systemd-analyze >/dev/null || { echo "ok - # SKIP systemd-analyze missing"; exit 0; }

W="$SE_HARNESS_DIR/work"
mkdir -p "$W/bin" "$W/libexec/secrets-encrypt" "$W/logs"
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver \
        tests/tools/kine-seed; do
        if [ ! -e "$SE_BUILD/$f" ]; then
                echo "not ok - $SE_BUILD/$f not built (make all tests)"
                exit 1
        fi
        cp -L "$SE_BUILD/$f" "$W/bin/" || exit 1
done
cp "$W/bin/secrets-encrypt-hook" "$W/bin/libsecrets-encrypt.so.0" "$W/libexec/secrets-encrypt/" || exit 1
export SE_LIBEXECDIR="$W/libexec" SE_BINDIR="$W/bin"
CLI="$W/bin/secrets-encrypt"
STATE="$W/state"
DB="$W/db.sqlite"
LOGS="$W/logs"
UNIT=stand-in.service
ROT=secrets-encrypt-rotate.service
TIMER=secrets-encrypt-rotate.timer
OLD_KEY=aescbckey-2020-01-01T00:00:00Z
mkdir -p "$STATE"

settings() {
        cat >"$1" <<EOS
state-dir: $STATE
node-name: node-1
datastore-endpoint: ${2:-sqlite://$DB}
unit: $UNIT
timeout: 5m
rotate-after: 90d
EOS
}
settings "$W/config.yaml"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
export SECRETS_ENCRYPT_LOG_TARGET=journal

# A key created in 2020, with secrets written under it: far older than rotate-after.
KEY=$(head -c 32 /dev/urandom | base64)
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"%s","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$OLD_KEY" "$KEY" >"$STATE/encryption-config.json"
chmod 600 "$STATE/encryption-config.json"
"$W/bin/kine-seed" "$DB" 50 --config "$STATE/encryption-config.json" >"$LOGS/seed.log" 2>&1 ||
        { echo "not ok - kine-seed failed"; sed 's/^/#   /' "$LOGS/seed.log"; exit 1; }

# ---- 1. the calendar and the units ------------------------------------------------------------
cal=$(sed -n 's/^OnCalendar=//p' "$SE_ROOT/units/$TIMER")
out=$(systemd-analyze calendar --iterations=2 "$cal" 2>&1)
if [ "$cal" = weekly ] && grep -q 'Normalized form: Mon \*-\*-\* 00:00:00' <<<"$out" && grep -q 'Next elapse:' <<<"$out"; then
        se_ok "timer: OnCalendar=$cal parses (systemd-analyze calendar: Mon *-*-* 00:00:00)"
else
        se_not_ok "timer: OnCalendar=$cal"
        sed 's/^/#   /' <<<"$out"
fi
if ! systemd-analyze calendar "weekly-ish" >/dev/null 2>&1; then
        se_ok "timer: a malformed calendar is rejected (negative control)"
else
        se_not_ok "systemd-analyze calendar accepted a malformed expression"
fi
for l in Persistent=true RandomizedDelaySec=1h WantedBy=timers.target; do
        se_check "timer: $l" grep -qx "$l" "$SE_ROOT/units/$TIMER"
done

se_harness_start || exit 1
se_ok "journald and systemd --user running in a private namespace"
# The inaccessible nodes the system manager creates at boot (ProtectHome=, InaccessiblePaths=
# mount them over what they hide); the harness's /run/systemd is a fresh tmpfs without them.
mkdir -p /run/systemd/inaccessible
mkdir -m 0000 /run/systemd/inaccessible/dir
install -m 0000 /dev/null /run/systemd/inaccessible/reg
mkfifo -m 0000 /run/systemd/inaccessible/fifo
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("/run/systemd/inaccessible/sock")'
chmod 0000 /run/systemd/inaccessible/sock
mknod -m 0000 /run/systemd/inaccessible/chr c 0 0
mknod -m 0000 /run/systemd/inaccessible/blk b 0 0
chmod 0555 /run/systemd/inaccessible

se_unit_install "$UNIT" "[Unit]
Description=Stand-in API server (secrets-encrypt rotation timer test)
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$W/bin/stand-in-apiserver --encryption-provider-config $STATE/encryption-config.json --datastore sqlite://$DB --write-interval-ms 200
TimeoutStartSec=180"
se_dropin_install "$UNIT" "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf"
# the shipped units; --user makes the CLI restart the stand-in through this user manager
se_subst "$SE_ROOT/units/$ROT" | sed 's|secrets-encrypt ensure|secrets-encrypt --user ensure|' >"$SE_UNIT_DIR/$ROT"
cp "$SE_ROOT/units/$TIMER" "$SE_UNIT_DIR/$TIMER"
mkdir -p "$SE_UNIT_DIR/$ROT.d"
printf '[Service]\nReadWritePaths=%s\n' "$W" >"$SE_UNIT_DIR/$ROT.d/50-test-paths.conf"
# Under this harness journald silently drops native messages (sd_journal_send) from a process
# with these four options (their sendmsg() succeeds; seen with logger --journald too), which would
# hide the events' fields. They only remount /proc and /sys read-only or private; everything
# else stays as shipped. SE_ROTATE_FULL_SANDBOX=1 keeps them.
if [ "${SE_ROTATE_FULL_SANDBOX:-0}" != 1 ]; then
        printf '[Service]\nProtectKernelTunables=no\nProtectControlGroups=no\nProtectProc=default\nProcSubset=all\n' \
                >"$SE_UNIT_DIR/$ROT.d/60-test-harness-journal.conf"
fi
se_systemctl daemon-reload
se_check "rotate service: ExecStart runs ensure --rotate-due --restart" \
        bash -c "systemctl --user cat $ROT | grep -qx 'ExecStart=$W/bin/secrets-encrypt --user ensure --rotate-due --restart'"
se_check "timer loads (LoadState=loaded)" test "$(se_unit_prop "$TIMER" LoadState)" = loaded
se_check "timer shipped disabled (UnitFileState=disabled) and inactive" \
        test "$(se_unit_prop "$TIMER" UnitFileState)/$(se_unit_prop "$TIMER" ActiveState)" = disabled/inactive
se_check "timer triggers $ROT" test "$(se_unit_prop "$TIMER" Triggers)" = "$ROT"
se_check "service sandboxed: ProtectSystem=strict, PrivateTmp, NoNewPrivileges" \
        test "$(se_unit_prop "$ROT" ProtectSystem)/$(se_unit_prop "$ROT" PrivateTmp)/$(se_unit_prop "$ROT" NoNewPrivileges)" = strict/yes/yes

se_systemctl start "$UNIT" >"$LOGS/start.err" 2>&1
se_check "stand-in API server active (hook ran: stage start)" test "$(se_unit_prop "$UNIT" ActiveState)" = active ||
        se_dump_unit "$UNIT"

active_key() { "$CLI" facts 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["active_key"])'; }
stage() { "$CLI" facts 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["stage"])'; }
# the JSON line ensure printed in the unit's newest run
last_result() {
        journalctl --sync
        journalctl --no-pager -o cat _SYSTEMD_UNIT="$ROT" 2>/dev/null | grep '^{' | tail -n 1
}
json() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null; }

# ---- 2. a key older than rotate-after: rotated -------------------------------------------------
se_check "before: active key $OLD_KEY" test "$(active_key)" = "$OLD_KEY"
pid_before=$(se_unit_prop "$UNIT" MainPID)
cursor=$(se_journal_cursor)
se_systemctl start "$ROT" >"$LOGS/rot1.err" 2>&1
rc=$?
res=$(last_result)
if [ "$rc" = 0 ] && [ "$(se_unit_prop "$ROT" Result)" = success ]; then
        se_ok "first start: $ROT succeeded"
else
        se_not_ok "first start: $ROT (systemctl exit $rc, Result=$(se_unit_prop "$ROT" Result))"
        se_dump_unit "$ROT" 30
fi
new_key=$(active_key)
se_check "first start: the active key is a new one ($new_key)" test "$new_key" != "$OLD_KEY" -a -n "$new_key"
se_check "first start: ensure reported changed, rotate-keys, reason names the age and 90d" \
        test "$(json "$res" 'j["changed"] and j["actions"] == ["rotate-keys"] and "wanted rotated within 90d" in j["msg"]')" = True ||
        echo "#   $res"
se_check "first start: stage reencrypt_finished" test "$(stage)" = reencrypt_finished
pid_after=$(se_unit_prop "$UNIT" MainPID)
se_check "first start: the API server was restarted (MainPID $pid_before -> $pid_after) and is active" \
        test "$pid_after" != "$pid_before" -a "$(se_unit_prop "$UNIT" ActiveState)" = active
out=$("$CLI" verify 2>&1)
se_check "first start: every secret readable, the old key gone" \
        bash -c "grep -q ' 0 unreadable' <<<\"\$1\" && ! grep -q '$OLD_KEY' '$STATE/encryption-config.json'" _ "$out" ||
        echo "$out" | sed 's/^/#   /'
since=$(se_journal_since "$cursor")
se_check "journal: key-added event from $ROT" \
        bash -c "grep -F '\"MESSAGE_ID\":\"8dd2feba57664e5fa57a5e28aa77e4d0\"' | grep -qE '\"_SYSTEMD_(USER_)?UNIT\":\"$ROT\"'" <<<"$since"
se_check "journal: re-encryption finished (in the API server's hook)" \
        grep -qF '"MESSAGE_ID":"c541c26f97474e71b87a27e440b2d4a2"' <<<"$since"

# ---- 3. a second start: nothing to do ----------------------------------------------------------
hash_before=$(sha256sum <"$STATE/encryption-config.json")
pid_before=$(se_unit_prop "$UNIT" MainPID)
cursor=$(se_journal_cursor)
se_systemctl start "$ROT" >"$LOGS/rot2.err" 2>&1
rc=$?
res=$(last_result)
se_check "second start: $ROT succeeded" test "$rc/$(se_unit_prop "$ROT" Result)" = 0/success
se_check "second start: ensure reported nothing to do (changed false, no actions)" \
        test "$(json "$res" 'not j["changed"] and j["actions"] == [] and j["msg"].startswith("nothing to do")')" = True ||
        echo "#   $res"
se_check "second start: config unchanged, same active key" \
        test "$(sha256sum <"$STATE/encryption-config.json")/$(active_key)" = "$hash_before/$new_key"
se_check "second start: the API server was not restarted" test "$(se_unit_prop "$UNIT" MainPID)" = "$pid_before"
se_check "second start: no key event in the journal" \
        bash -c "! grep -qF '\"MESSAGE_ID\":\"8dd2feba57664e5fa57a5e28aa77e4d0\"'" <<<"$(se_journal_since "$cursor")"

# ---- 4. a failure: the unit's failed state and the journal -------------------------------------
# rotate-after 1s makes the new key due; the datastore is gone, so the rotation cannot run.
settings "$W/broken.yaml" "sqlite://$W/missing/db.sqlite"
sed -i 's/^rotate-after: .*/rotate-after: 1s/' "$W/broken.yaml"
sleep 2
se_systemctl set-environment SECRETS_ENCRYPT_CONFIG="$W/broken.yaml"
cursor=$(se_journal_cursor)
se_systemctl start "$ROT" >"$LOGS/rot3.err" 2>&1
rc=$?
se_systemctl set-environment SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
res=$(last_result)
status=$(se_unit_prop "$ROT" ExecMainStatus)
se_check "failure: systemctl start fails (exit $rc), the unit is failed (Result=exit-code)" \
        test "$rc" != 0 -a "$(se_unit_prop "$ROT" ActiveState)/$(se_unit_prop "$ROT" Result)" = failed/exit-code
se_check "failure: exit status $status is the JSON rc, failed true" \
        test "$(json "$res" 'j["failed"] and j["rc"]')" = "$status" || echo "#   $res"
since=$(se_journal_since "$cursor")
se_check "failure: the CLI's error is in the unit's journal" \
        bash -c "grep -F '\"MESSAGE\":\"secrets-encrypt: ' | grep -qE '\"_SYSTEMD_(USER_)?UNIT\":\"$ROT\"'" <<<"$since"
se_check "failure: the service manager's unit-failed event (MESSAGE_ID d9b373ed…) for $ROT" \
        bash -c "grep -F '\"MESSAGE_ID\":\"d9b373ed55a64feb8242e02dbe79a49c\"' | grep -qF '$ROT'" <<<"$since" ||
        se_dump_events "$cursor"
se_check "failure: nothing changed (same config, same key)" \
        test "$(sha256sum <"$STATE/encryption-config.json")/$(active_key)" = "$hash_before/$new_key"
