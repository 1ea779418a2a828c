#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Proves the private-systemd harness (lib-systemd.sh) and our units on real parts: a Type=notify
# stand-in unit with the shipped k3s drop-in, STATUS= from ExecStartPre= (shell and C), a failing
# ExecStartPre= blocking the start with its exit code visible, and structured events from the
# se_event API in journald (`journalctl -o json`).
set -u
. "$(dirname "$0")/lib-systemd.sh"
se_harness_reexec "$@"

EVENT_SEND="$SE_BUILD/tests/tools/event-send"
if [ ! -x "$EVENT_SEND" ]; then
        echo "not ok - $EVENT_SEND not built (make tests)"
        exit 1
fi

se_harness_start || exit 1
se_ok "journald and systemd --user running in a private namespace"
se_check "private /run/systemd/system exists inside" test -d /run/systemd/system

# ---- journald receives structured events from the C API ----------------------------------------
id=$(SECRETS_ENCRYPT_LOG_TARGET=journal "$EVENT_SEND" stage-changed "Stage changed from start to prepare." \
        SECRETS_ENCRYPT_STAGE=prepare SECRETS_ENCRYPT_PREVIOUS_STAGE=start \
        SECRETS_ENCRYPT_HASH=prepare-0123abcd SECRETS_ENCRYPT_NODE=node-1 2>"$SE_HARNESS_DIR/es.err")
se_check "event-send ran (MESSAGE_ID $id)" test "$id" = b1db07f8234e4246a18e3d3193f89a55
se_journal_wait MESSAGE_ID="$id"
json=$(se_journal_json MESSAGE_ID="$id")
for f in '"MESSAGE_ID":"b1db07f8234e4246a18e3d3193f89a55"' '"PRIORITY":"5"' \
        '"SYSLOG_IDENTIFIER":"secrets-encrypt"' '"MESSAGE":"Stage changed from start to prepare."' \
        '"SECRETS_ENCRYPT_STAGE":"prepare"' '"SECRETS_ENCRYPT_PREVIOUS_STAGE":"start"' \
        '"SECRETS_ENCRYPT_HASH":"prepare-0123abcd"' '"SECRETS_ENCRYPT_NODE":"node-1"' \
        '"CODE_FILE":"tests/tools/event-send.c"' '"CODE_FUNC":"main"' '"_TRANSPORT":"journal"'; do
        se_check "journal -o json has $f" grep -qF -- "$f" <<<"$json"
done
se_check "nothing fell back to stderr" test ! -s "$SE_HARNESS_DIR/es.err"

# the catalog explains it, with the entry's fields substituted
se_check "catalog installed in the namespace" se_catalog_install
xout=$(journalctl --no-pager -x MESSAGE_ID="$id" 2>&1)
se_check "journalctl -x shows the catalog subject with @SECRETS_ENCRYPT_STAGE@ filled in" \
        grep -q "Subject: Encryption stage changed to prepare" <<<"$xout"
se_check "journalctl -x shows the body with the entry's fields" \
        grep -q "node-1 moved from" <<<"$xout"

# a field outside SPEC §7 is refused and does not reach the journal
SECRETS_ENCRYPT_LOG_TARGET=journal "$EVENT_SEND" key-added "Key added." SECRETS_ENCRYPT_KEY_NAME=aescbckey-x \
        SECRETS_ENCRYPT_SECRET=nope >/dev/null 2>&1
rc=$?
se_check "disallowed field refused (exit 3, got $rc)" test "$rc" = 3
se_journal_wait MESSAGE_ID=8dd2feba57664e5fa57a5e28aa77e4d0
json=$(se_journal_json MESSAGE_ID=8dd2feba57664e5fa57a5e28aa77e4d0)
se_check "allowed field of that event kept" grep -qF '"SECRETS_ENCRYPT_KEY_NAME":"aescbckey-x"' <<<"$json"
se_check "disallowed field not in the journal" bash -c '! grep -qF "\"SECRETS_ENCRYPT_SECRET\":" <<<"$1"' _ "$json"

# ---- the shipped drop-in on a Type=notify stand-in named k3s.service --------------------------
# A stub hook in @LIBEXECDIR@/secrets-encrypt/: records its arguments, sends STATUS= the way a shell
# would, then exits with the code in $SE_HARNESS_DIR/hook-exit.
rm -f "$SE_LIBEXECDIR/secrets-encrypt/secrets-encrypt-hook"
cat >"$SE_LIBEXECDIR/secrets-encrypt/secrets-encrypt-hook" <<EOF
#!/bin/bash
echo "\$*" >>"$SE_HARNESS_DIR/hook-args"
echo "CREDENTIALS_DIRECTORY=\${CREDENTIALS_DIRECTORY:-unset}" >>"$SE_HARNESS_DIR/hook-args"
systemd-notify --status="hook: checking encryption config"
sleep 1.5
exit \$(cat "$SE_HARNESS_DIR/hook-exit")
EOF
chmod 0755 "$SE_LIBEXECDIR/secrets-encrypt/secrets-encrypt-hook"
echo 0 >"$SE_HARNESS_DIR/hook-exit"

STANDIN='[Unit]
Description=Stand-in API server (test)

[Service]
Type=notify
ExecStart=/bin/bash -c "systemd-notify --ready --status=serving; exec sleep infinity"
Restart=no'
se_unit_install k3s.service "$STANDIN"
se_dropin_install k3s.service "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf"
se_check "drop-in applied (systemctl cat shows it)" bash -c \
        'systemctl --user cat k3s.service | grep -q "ExecStartPre=.*secrets-encrypt-hook --unit=%n"'
se_check "NotifyAccess=exec from the drop-in" test "$(se_unit_prop k3s.service NotifyAccess)" = exec

# Watch StatusText while the pre-start hook runs.
se_systemctl start --no-block k3s.service
saw=""
for _ in $(seq 50); do
        st=$(se_unit_prop k3s.service StatusText)
        sub=$(se_unit_prop k3s.service SubState)
        if [ "$sub" = start-pre ] && [ "$st" = "hook: checking encryption config" ]; then
                saw=1
                break
        fi
        sleep 0.1
done
se_check "STATUS= from ExecStartPre= shown while in start-pre (NotifyAccess=exec)" test -n "$saw"
se_unit_wait k3s.service active failed
se_check "Type=notify server still becomes active (its READY=1 from the main PID)" \
        test "$(se_unit_prop k3s.service ActiveState)/$(se_unit_prop k3s.service SubState)" = active/running
se_check "server's own STATUS= replaces the hook's" test "$(se_unit_prop k3s.service StatusText)" = serving
se_check "hook got --unit=k3s.service (%n)" grep -qx -- "--unit=k3s.service" "$SE_HARNESS_DIR/hook-args"
# The drop-in's ID-only LoadCredential= with no such credential anywhere must not block the start.
se_check "LoadCredential=secrets-encrypt-token sets CREDENTIALS_DIRECTORY for the hook" \
        grep -q "^CREDENTIALS_DIRECTORY=/" "$SE_HARNESS_DIR/hook-args"
se_systemctl stop k3s.service

# Why the drop-ins do not name a token path: a missing source file fails the whole unit.
se_unit_install credpath.service '[Service]
Type=oneshot
LoadCredential=secrets-encrypt-token:/nonexistent/secrets-encrypt/token
ExecStart=/bin/true'
se_systemctl start credpath.service >/dev/null 2>&1
se_check "LoadCredential=ID:PATH with a missing PATH fails the unit (243/CREDENTIALS)" \
        test "$(se_unit_prop credpath.service ExecMainStatus)" = 243
se_systemctl reset-failed credpath.service

# ---- a failing ExecStartPre= blocks the start -------------------------------------------------
echo 78 >"$SE_HARNESS_DIR/hook-exit"
se_systemctl start k3s.service >/dev/null 2>&1
rc=$?
se_check "systemctl start fails when the hook exits 78 (rc $rc)" test "$rc" != 0
se_check "unit failed" test "$(se_unit_prop k3s.service ActiveState)" = failed
se_check "Result=exit-code" test "$(se_unit_prop k3s.service Result)" = exit-code
pre=$(se_unit_prop k3s.service ExecStartPre)
se_check "ExecStartPre status=78 visible in systemctl show ($(grep -o 'status=[0-9]*' <<<"$pre" | tail -n 1))" \
        grep -q 'status=78' <<<"$pre"
se_check "ExecMainPID never set: the server did not run" test "$(se_unit_prop k3s.service ExecMainPID)" = 0
se_check "systemctl status names the code (78/CONFIG)" bash -c \
        'systemctl --user --no-pager status k3s.service 2>&1 | grep -q "status=78/CONFIG"'
se_systemctl reset-failed k3s.service

# ---- the C sd_notify path from ExecStartPre=, and events from inside a unit --------------------
se_unit_install cpre.service "[Unit]
Description=Stand-in with a C pre-start

[Service]
Type=notify
NotifyAccess=exec
ExecStartPre=$EVENT_SEND --status=\"pre-start from C\" --sleep=1.5 reencrypt-progress \"Re-encrypted 120 of 900.\" SECRETS_ENCRYPT_DONE=120 SECRETS_ENCRYPT_TOTAL=900 SECRETS_ENCRYPT_RATE=80.0
ExecStart=/bin/bash -c \"systemd-notify --ready --status=serving; exec sleep infinity\""
se_systemctl start --no-block cpre.service
saw=""
for _ in $(seq 50); do
        [ "$(se_unit_prop cpre.service StatusText)" = "pre-start from C" ] && { saw=1; break; }
        sleep 0.1
done
se_check "STATUS= via sd_notify() from a C ExecStartPre=" test -n "$saw"
se_unit_wait cpre.service active failed
se_check "C pre-start unit active" test "$(se_unit_prop cpre.service ActiveState)" = active
json=$(se_journal_json MESSAGE_ID=bead9f8d948349dfb6c106c99699d075)
se_check "event from inside a unit went over the native protocol (AUTO target via JOURNAL_STREAM)" \
        grep -qF '"_TRANSPORT":"journal"' <<<"$json"
for f in '"SECRETS_ENCRYPT_DONE":"120"' '"SECRETS_ENCRYPT_TOTAL":"900"' '"SECRETS_ENCRYPT_RATE":"80.0"' \
        '"PRIORITY":"6"' '"_SYSTEMD_CGROUP":"/'; do
        se_check "unit event has $f" grep -qF -- "$f" <<<"$json"
done
se_systemctl stop cpre.service

# ---- negative control: without NotifyAccess=exec the pre-start's STATUS= is ignored -------------
se_unit_install nonotify.service "[Service]
Type=notify
ExecStartPre=$EVENT_SEND --status=\"should be ignored\" --sleep=1 config-validated \"Validated.\"
ExecStart=/bin/bash -c \"systemd-notify --ready; exec sleep infinity\""
se_systemctl start --no-block nonotify.service
seen=""
for _ in $(seq 15); do
        [ "$(se_unit_prop nonotify.service StatusText)" = "should be ignored" ] && seen=1
        sleep 0.1
done
se_unit_wait nonotify.service active failed
se_check "control unit ran its pre-start and started" test "$(se_unit_prop nonotify.service ActiveState)" = active
se_check "without NotifyAccess=exec, STATUS= from ExecStartPre= is dropped" test -z "$seen"
se_systemctl stop nonotify.service

exit 0
