#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `make demo`: a full key rotation on a kine SQLite datastore, with the hook as ExecStartPre= of a
# stand-in API server unit under a private systemd user manager and journald (the same harness as
# the integration tests: private mount + PID namespace, nothing on the host changes).
#
#   SE_BUILD=build       where the programs are (make demo builds them)
#   SE_DEMO_DIR=DIR      keep the datastore, configs and logs in DIR (default: a temporary
#                        directory, removed at the end)
#   SE_DEMO_SECRETS=N    sample secrets (default 300)
set -u

if [ "${SE_HARNESS_INNER:-}" != 1 ] && [ "$(id -u)" != 0 ]; then
        echo "make demo needs root: it starts a private journald and systemd user manager inside a" >&2
        echo "private mount namespace (nothing on the host changes). Run: sudo make demo" >&2
        exit 1
fi

# SE_DEMO_DIR must be absolute before the re-exec (the namespaced run starts elsewhere).
if [ -n "${SE_DEMO_DIR:-}" ]; then
        mkdir -p "$SE_DEMO_DIR" && SE_DEMO_DIR=$(cd "$SE_DEMO_DIR" && pwd) || exit 1
        export SE_DEMO_DIR
fi
export SE_HARNESS_TIMEOUT=${SE_HARNESS_TIMEOUT:-600}

. "$(dirname "$0")/integration/lib-systemd.sh"
if [ "${SE_HARNESS_INNER:-}" != 1 ]; then
        echo "secrets-encrypt demo: starting a private systemd + journald (nothing on the host changes)..."
fi
se_harness_reexec "$@"

# ---- inside the private namespace ---------------------------------------------------------------
W=${SE_DEMO_DIR:-$SE_HARNESS_DIR/demo}
mkdir -p "$W/bin" "$W/libexec/secrets-encrypt" || exit 1
# A copy of the programs (they find the library through their $ORIGIN runpath), so a rebuild in
# another terminal cannot swap them in the middle of the demo.
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver \
        tests/tools/kine-seed; do
        [ -e "$SE_BUILD/$f" ] || { echo "demo: $SE_BUILD/$f is missing; run 'make demo' (it builds everything first)" >&2; exit 1; }
        cp -L "$SE_BUILD/$f" "$W/bin/" || exit 1
done
cp "$W/bin/secrets-encrypt-hook" "$W/bin/libsecrets-encrypt.so.0" "$W/libexec/secrets-encrypt/" || exit 1
export SE_LIBEXECDIR="$W/libexec"
CLI="$W/bin/secrets-encrypt"
STANDIN="$W/bin/stand-in-apiserver"
SEED="$W/bin/kine-seed"
NSECRETS=${SE_DEMO_SECRETS:-300}
UNIT=stand-in.service
STATE="$W/state"
DB="$W/db.sqlite"

if [ -t 1 ]; then
        B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
        B="" D="" G="" R="" N=""
fi
step_no=0
step() {
        step_no=$((step_no + 1))
        printf '\n%s==> %d. %s%s\n' "$B" "$step_no" "$1" "$N"
        shift
        [ $# -gt 0 ] && printf '    %s\n' "$@"
        return 0
}
fail() {
        printf '\n%sdemo failed: %s%s\n' "$R" "$*" "$N"
        if [ -n "${SE_SYSTEMD_PID:-}" ]; then
                echo "--- systemctl --user status $UNIT"
                systemctl --user --no-pager status "$UNIT" 2>&1 | sed 's/^/    /'
                echo "--- the unit's journal (last 20 lines)"
                journalctl --no-pager -n 20 -o short-monotonic _SYSTEMD_UNIT="$UNIT" 2>&1 | sed 's/^/    /'
        fi
        exit 1
}
# show CMD...: prints the command as a user would type it, then runs it; output indented.
show() {
        local shown=$* out rc
        shown=${shown//$CLI/secrets-encrypt}
        shown=${shown//$SEED/kine-seed}
        printf '%s$ %s%s\n' "$D" "$shown" "$N"
        out=$("$@" 2>&1)
        rc=$?
        [ -n "$out" ] && sed 's/^/    /' <<<"$out"
        return "$rc"
}
status() {
        show "$CLI" status || fail "secrets-encrypt status failed"
}
restart() {
        show systemctl --user restart "$UNIT" || fail "restarting $UNIT failed"
        [ "$(se_unit_prop "$UNIT" ActiveState)" = active ] || fail "$UNIT is not active after the restart"
        printf '    %s%s is active again: the stand-in read every secret with the new config%s\n' "$G" "$UNIT" "$N"
}

cat <<EOF
${B}secrets-encrypt demo${N}
Work directory: $W$([ -z "${SE_DEMO_DIR:-}" ] && echo " (removed at the end; set SE_DEMO_DIR=DIR to keep one)")
This walks a full key rotation the way an operator would on a k3s server, with:
  - a kine SQLite datastore (k3s's default) holding $NSECRETS sample Secrets,
  - a stand-in API server unit ($UNIT) that, like kube-apiserver, reads the encryption
    config, refuses to start if any stored secret is unreadable, and keeps writing secrets,
  - our drop-in on that unit: secrets-encrypt-hook runs as its ExecStartPre=,
  - the secrets-encrypt CLI, with the same commands and output as 'k3s secrets-encrypt'.
EOF

# ---- setup ------------------------------------------------------------------------------------
cat >"$W/config.yaml" <<EOF
state-dir: $STATE
node-name: node-1
datastore-endpoint: sqlite://$DB
unit: $UNIT
EOF
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# no SECRETS_ENCRYPT_LOG_TARGET: as from an operator's shell, the CLI's events reach the journal
# (and `journalctl -u $UNIT`) whatever its stderr is, and the terminal gets plain lines
unset SECRETS_ENCRYPT_LOG_TARGET

step "Create the datastore" "A kine SQLite database with $NSECRETS Secrets, stored in plaintext (encryption never enabled)."
rm -rf "$DB" "$DB-wal" "$DB-shm" "$STATE" # a kept SE_DEMO_DIR from an earlier run
show "$SEED" "$DB" "$NSECRETS" || fail "kine-seed failed"
printf '%s$ cat %s%s\n' "$D" "\$SECRETS_ENCRYPT_CONFIG" "$N"
sed 's/^/    /' "$W/config.yaml"

se_harness_start || fail "the private systemd did not start"
echo "    private journald (pid $SE_JOURNALD_PID) and systemd --user (pid $SE_SYSTEMD_PID) are running"

se_unit_install "$UNIT" "[Unit]
Description=Stand-in Kubernetes API server (secrets-encrypt demo)
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STANDIN --encryption-provider-config $STATE/encryption-config.json --datastore sqlite://$DB --write-interval-ms 200
Restart=no" || fail "cannot install $UNIT"
se_dropin_install "$UNIT" "$SE_ROOT/units/k3s.service.d/50-secrets-encrypt.conf" || fail "cannot install the drop-in"
printf '%s$ systemctl --user cat %s%s   (comments left out)\n' "$D" "$UNIT" "$N"
systemctl --user cat "$UNIT" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/^/    /'

step "First start" "No encryption config exists yet: the hook generates one (one aescbc key, identity last)" \
        "at stage 'start', then the server starts with it."
show systemctl --user start "$UNIT" || fail "the first start failed"
[ -s "$STATE/encryption-config.json" ] || fail "no encryption config was generated"
show systemctl --user show -p ActiveState -p StatusText "$UNIT"
status

step "prepare" "Adds a new key as a read key: every server can read what it will write once it is the write key."
show "$CLI" prepare || fail "prepare failed"
restart
status

step "rotate" "Makes the new key the write key (it moves to the top of the list)."
show "$CLI" rotate || fail "rotate failed"
restart
status

step "reencrypt" "Rewrites every secret with the write key while the server keeps running and writing," \
        "then removes the old key."
show "$CLI" reencrypt || fail "reencrypt failed"
[ "$(se_unit_prop "$UNIT" ActiveState)" = active ] || fail "$UNIT stopped during the online re-encryption"
restart
status

step "rotate-keys --restart" "All of the above in one command: a new write key, then one restart of $UNIT, during which" \
        "the hook re-encrypts every secret while the server is down and removes the old key." \
        "(--user: the demo's private user manager; on a real server it is the system manager.)"
show "$CLI" rotate-keys --restart --user || fail "rotate-keys --restart failed"
[ "$(se_unit_prop "$UNIT" ActiveState)" = active ] || fail "$UNIT is not active after rotate-keys"
status

step "verify" "Decrypts every stored secret read-only and counts them per key."
show "$CLI" verify || fail "verify found unreadable secrets"
show systemctl --user stop "$UNIT"

# ---- the journal ------------------------------------------------------------------------------
step "Journal events" "Every change was logged as a structured event (SYSLOG_IDENTIFIER=secrets-encrypt) with a fixed" \
        "MESSAGE_ID, explained in units/secrets-encrypt.catalog, and SECRETS_ENCRYPT_* fields."
journalctl --sync 2>/dev/null
finished=c541c26f97474e71b87a27e440b2d4a2 # re-encryption finished, the last one is the hook's
printf '%s$ journalctl -o verbose MESSAGE_ID=%s -n 1%s   (the hook'"'"'s re-encryption inside the restart)\n' \
        "$D" "$finished" "$N"
journalctl --no-pager -o verbose MESSAGE_ID="$finished" -n 1 2>&1 | sed 's/^/    /'
[ -n "$(journalctl --no-pager -o cat MESSAGE_ID="$finished" -n 1 2>/dev/null)" ] ||
        fail "no re-encryption-finished event in the journal"

echo
printf '%s$ journalctl -o json SYSLOG_IDENTIFIER=secrets-encrypt   (as a table)%s\n' "$D" "$N"
journalctl --no-pager -o json SYSLOG_IDENTIFIER=secrets-encrypt 2>/dev/null >"$W/events.json"
python3 - "$SE_ROOT/module/journal/se-event.h" "$W/events.json" "$W" <<'EOF' || fail "cannot print the event table"
import json, re, sys, time
workdir = sys.argv[3].rstrip("/") + "/"
names = {}
for m in re.finditer(r'#define SE_MESSAGE_(\w+)_STR\s+"([0-9a-f]{32})"', open(sys.argv[1]).read()):
    names[m.group(2)] = m.group(1).lower().replace("_", "-")
rows = []
for line in open(sys.argv[2]):
    d = json.loads(line)
    mid = d.get("MESSAGE_ID")
    if not mid:
        continue
    t = time.strftime("%H:%M:%S", time.localtime(int(d["__REALTIME_TIMESTAMP"]) / 1e6))
    who = "hook" if "_SYSTEMD_UNIT" in d and d["_SYSTEMD_UNIT"].endswith(".service") else "cli"
    msg = d.get("MESSAGE", "")
    if isinstance(msg, list):
        msg = "(binary)"
    # shorter lines: paths relative to the work directory, hashes abbreviated
    msg = re.sub(r"(sha256:[0-9a-f]{12})[0-9a-f]{52}", r"\1...", msg.replace(workdir, ""))
    rows.append((t, who, names.get(mid, mid[:8]), d.get("SECRETS_ENCRYPT_STAGE", ""), msg))
if not rows:
    sys.exit(1)
w = [max(len(r[i]) for r in rows + [("TIME", "FROM", "EVENT", "STAGE", "")]) for i in range(4)]
fmt = "    %%-%ds  %%-%ds  %%-%ds  %%-%ds  %%s" % tuple(w)
print(fmt % ("TIME", "FROM", "EVENT", "STAGE", "MESSAGE"))
for r in rows:
    print(fmt % r)
print("    (%d events)" % len(rows))
EOF

printf '\n%sDemo finished: key rotated twice, every secret readable, journal events above.%s\n' "$G" "$N"
echo "Stopping the private systemd and journald; the checks below confirm the host is unchanged."
exit 0
