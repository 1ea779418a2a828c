#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The CLI's events reach the journal whatever its stderr is (SPEC §7, issue 15): a rotation run
# from an operator's shell (stderr a file or a pipe, no SECRETS_ENCRYPT_LOG_TARGET) under a
# private journald + systemd user manager (lib-systemd.sh), with the hook as ExecStartPre= of a
# stand-in API server. Every event of the rotation, the CLI's and the hook's, is in
# `journalctl -u <unit>` (OBJECT_SYSTEMD_UNIT from uid 0, SPEC §11), and the terminal got plain
# lines without <N> prefixes.
set -u
. "$(dirname "$0")/lib-systemd.sh"
se_harness_reexec "$@"

command -v python3 >/dev/null || { echo "ok - # SKIP python3 missing"; exit 0; }

W="$SE_HARNESS_DIR/work"
mkdir -p "$W/bin" "$W/libexec/secrets-encrypt"
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver \
        tests/tools/kine-seed; do
        [ -e "$SE_BUILD/$f" ] || { echo "not ok - $SE_BUILD/$f not built (make all tests)"; exit 1; }
        cp -L "$SE_BUILD/$f" "$W/bin/" || exit 1
done
cp "$W/bin/secrets-encrypt-hook" "$W/bin/libsecrets-encrypt.so.0" "$W/libexec/secrets-encrypt/" || exit 1
export SE_LIBEXECDIR="$W/libexec"
CLI="$W/bin/secrets-encrypt"
STATE="$W/state"
DB="$W/db.sqlite"
UNIT=stand-in.service
printf 'state-dir: %s\nnode-name: node-1\ndatastore-endpoint: sqlite://%s\nunit: %s\ntimeout: 5m\n' \
        "$STATE" "$DB" "$UNIT" >"$W/config.yaml"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# as an operator's shell: nothing chooses the journal
unset SECRETS_ENCRYPT_LOG_TARGET JOURNAL_STREAM

"$W/bin/kine-seed" "$DB" 200 >"$W/seed.log" 2>&1 || { echo "not ok - kine-seed failed"; exit 1; }

se_harness_start || exit 1
se_ok "journald and systemd --user running in a private namespace"

se_unit_install "$UNIT" "[Unit]
Description=Stand-in API server (secrets-encrypt journal test)
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$W/bin/stand-in-apiserver --encryption-provider-config $STATE/encryption-config.json --datastore sqlite://$DB --write-interval-ms 200
Restart=no
TimeoutStartSec=180"
se_dropin_install "$UNIT" "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf"
se_systemctl start "$UNIT" >"$W/start.err" 2>&1
se_check "$UNIT active (the hook generated the config)" test "$(se_unit_prop "$UNIT" ActiveState)" = active

cursor=$(se_journal_cursor)
# cli ARGS...: from the "terminal": stderr a file, as under `| tee`, Ansible or CI
cli() {
        "$CLI" "$@" >>"$W/cli.out" 2>>"$W/cli.err"
}
se_check "prepare --restart" cli --user prepare --restart
se_check "rotate --restart" cli --user rotate --restart
se_check "reencrypt --user: runs in the transient unit, output relayed" cli --user reencrypt
se_check "reencrypt --user: k3s's lines on stdout" bash -c \
        "tail -n 2 '$W/cli.out' | tr '\n' '|' | grep -qx 'reencryption started|reencryption finished|'"
se_check "the work ran in secrets-encrypt-reencrypt.service" bash -c \
        "journalctl --sync; journalctl --no-pager -o json MESSAGE_ID=524867246f734fc3a66ed29daeef1a08 | grep -qE '\"_SYSTEMD_(USER_)?UNIT\":\"secrets-encrypt-reencrypt.service\"'"
"$CLI" --user reencrypt >"$W/refused.out" 2>"$W/refused.err"
rc=$?
se_check "a refusal inside the unit: its exit code (79) and one message (exit $rc)" bash -c \
        "[ $rc = 79 ] && [ \$(grep -c 'incorrect stage' '$W/refused.err') = 1 ] && ! grep -q started '$W/refused.out'"
se_check "prepare --restart (2)" cli --user prepare --restart
se_check "rotate --restart (2)" cli --user rotate --restart
"$CLI" --user --reencrypt-rate 40 reencrypt >"$W/detach.out" 2>"$W/detach.err" &
pid=$!
for _ in $(seq 200); do grep -q 'reencryption started' "$W/detach.out" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
rc=$?
se_check "Ctrl-C detaches (exit $rc) and says how to follow the work" bash -c \
        "[ $rc = 1 ] && grep -q 'journalctl --user -fu secrets-encrypt-reencrypt.service' '$W/detach.err'"
se_check "the detached re-encryption went on" test "$(se_unit_prop secrets-encrypt-reencrypt.service ActiveState)" = active
for _ in $(seq 300); do
        [ "$("$CLI" status 2>/dev/null | sed -n 's/^Current Rotation Stage: //p')" = reencrypt_finished ] && break
        sleep 0.2
done
se_check "the detached re-encryption finished by itself" bash -c \
        "\"$CLI\" status | grep -qx 'Current Rotation Stage: reencrypt_finished'"
se_check "rotate-keys --restart" cli --user rotate-keys --restart

journalctl --sync
se_journal_since "$cursor" | grep -F '"SYSLOG_IDENTIFIER":"secrets-encrypt"' | grep -F '"MESSAGE_ID"' >"$W/all.json"
# (no --after-cursor: with matches, journalctl 252 skips the first entry after it)
journalctl --no-pager -o json -u "$UNIT" 2>/dev/null >"$W/unit.json"

se_check "the CLI's events reached the journal (stage changes, keys, re-encryption)" python3 - "$W/all.json" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
cli = [e for e in ev if e.get("_COMM") == "secrets-encrypt"]
ids = {e["MESSAGE_ID"] for e in cli}
want = {"b1db07f8234e4246a18e3d3193f89a55",  # stage changed
        "8dd2feba57664e5fa57a5e28aa77e4d0",  # key added
        "f8d461312e424423881ebf6b91cdace4",  # key promoted
        "524867246f734fc3a66ed29daeef1a08",  # re-encryption started
        "c541c26f97474e71b87a27e440b2d4a2",  # re-encryption finished
        "6d52a773ba5249c8967b0336c804c4ad"}  # key removed
assert want <= ids, sorted(want - ids)
for e in cli:
    assert e.get("OBJECT_SYSTEMD_UNIT") == "stand-in.service", e
EOF
se_check "every event of the rotation (CLI and hook) is in journalctl -u $UNIT" python3 - "$W/all.json" "$W/unit.json" <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
unit = {json.loads(l)["__CURSOR"] for l in open(sys.argv[2]) if l.strip()}
missing = [e["MESSAGE"] for e in ev if e["__CURSOR"] not in unit]
assert ev and not missing, missing[:10]
print("# %d events, all in the unit's journal" % len(ev))
EOF
se_check "the terminal got plain lines, no <N> prefixes" bash -c \
        "grep -q 'changed from' '$W/cli.err' && ! grep -q '^<[0-7]>' '$W/cli.err'"
se_check "the success lines on stdout" bash -c \
        "grep -qx 'prepare completed successfully' '$W/cli.out' && grep -qx 'reencryption finished' '$W/cli.out'"

se_systemctl stop "$UNIT" >/dev/null 2>&1
exit 0
