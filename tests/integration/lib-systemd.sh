# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# A private systemd for integration tests (SPEC §9): a real systemd-journald and a real
# `systemd --user` inside a private mount + PID namespace, with the test's own units. Nothing on
# the host changes: /run/systemd, /run/log/journal, /var/log/journal and XDG_RUNTIME_DIR are
# tmpfs mounts that exist only in the namespace; the daemons live in a PID namespace, so they
# die with it, even on SIGKILL; systemd --user is confined to a cgroup of its own that the
# outer process removes afterwards.
#
# Usage (the script must run as root, with bash):
#
#   . "$(dirname "$0")/lib-systemd.sh"
#   se_harness_reexec "$@"      # outer: re-runs this script in the namespaces, then cleans up
#                               #   and checks the host; returns only inside the namespace
#   se_harness_start            # journald + systemd --user; stopped by an EXIT trap
#   se_unit_install demo.service "$(printf '[Service]\nType=notify\nExecStart=...\n')"
#   se_dropin_install demo.service units/k3s.service.d/50-secrets-encrypt.conf
#   se_systemctl start demo.service
#   se_unit_prop demo.service ActiveState           # -> active
#   se_journal_json MESSAGE_ID=...                  # our entries, one JSON object per line
#   c=$(se_journal_cursor); se_journal_since "$c"  # the whole journal after a cursor, JSON lines
#   se_journal_events MESSAGE_ID [CURSOR]           # one event's JSON lines, from anywhere
#   se_dump_events [CURSOR [N]] / se_dump_unit UNIT [N]   # TAP comments for a failure
#   se_key_scan SEEN-DIR FILE...                    # "KEYS FOUND": key bytes of SEEN-DIR/*.json in FILEs
#   se_catalog_install; journalctl -x ...           # catalog text with the entries
#   se_ok "name" / se_not_ok "name" / se_check "name" CMD...   # TAP lines
#
# Variables for tests: SE_ROOT (project root), SE_BUILD (absolute build dir), SE_HARNESS_DIR
# (work dir, removed afterwards), SE_UNIT_DIR (where units go), SE_LIBEXECDIR (@LIBEXECDIR@ in
# drop-ins; holds secrets-encrypt/secrets-encrypt-hook -> $SE_BUILD/secrets-encrypt-hook unless
# the test points it elsewhere before se_harness_start), SE_SYSCONFDIR, SE_BINDIR.
# Environment exported before se_harness_start reaches every unit (systemd --user passes its
# environment on); later, use `se_systemctl set-environment K=V`.
# SE_HARNESS_TIMEOUT (seconds, default 300) bounds the whole namespaced run.

SE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SE_BUILD=${SE_BUILD:-build}
case "$SE_BUILD" in /*) ;; *) SE_BUILD="$SE_ROOT/$SE_BUILD" ;; esac
export SE_ROOT SE_BUILD

SE_JOURNALD=${SE_JOURNALD:-/lib/systemd/systemd-journald}
SE_SYSTEMD=${SE_SYSTEMD:-/lib/systemd/systemd}

se_ok() { echo "ok - $*"; }
se_not_ok() { echo "not ok - $*"; SE_FAILED=$((${SE_FAILED:-0} + 1)); }
# se_check NAME CMD... : runs CMD, prints ok/not ok; output of a failing CMD is shown indented.
se_check() {
        local name=$1 out rc
        shift
        out=$("$@" 2>&1)
        rc=$?
        if [ "$rc" = 0 ]; then
                se_ok "$name"
        else
                se_not_ok "$name (exit $rc)"
                [ -n "$out" ] && sed 's/^/#   /' <<<"$out" | head -n 40
        fi
        return "$rc"
}

# Mount points of every cgroup hierarchy (v1 and v2).
_se_cgroup_mounts() {
        awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } }
             t == "cgroup" || t == "cgroup2" { print $5 }' /proc/self/mountinfo
}

_se_skip_all() {
        echo "ok - # SKIP $*"
        exit 0
}

# ---- outer side -------------------------------------------------------------------------------

_se_outer_cleanup() {
        local mnt d i p
        # the PID namespace is gone, so these are normally empty; anything left is ours
        for mnt in $(_se_cgroup_mounts); do
                [ -d "$mnt/$SE_HARNESS_CGROUP" ] || continue
                while read -r d; do
                        for i in $(seq 50); do
                                for p in $(cat "$d/cgroup.procs" 2>/dev/null); do
                                        kill -KILL "$p" 2>/dev/null
                                done
                                rmdir "$d" 2>/dev/null && break
                                sleep 0.1
                        done
                done < <(find "$mnt/$SE_HARNESS_CGROUP" -depth -type d)
        done
        [ -n "${SE_HARNESS_DIR:-}" ] && [ -d "$SE_HARNESS_DIR" ] && rm -rf "$SE_HARNESS_DIR"
}

_se_host_snapshot() {
        echo "run-systemd: $(ls -A /run/systemd 2>/dev/null | tr '\n' ' ')"
        echo "run-systemd-system: $([ -e /run/systemd/system ] && echo present || echo absent)"
        echo "run-log-journal: $(ls -A /run/log/journal 2>/dev/null | tr '\n' ' ')"
        echo "var-log-journal: $(ls -A /var/log/journal 2>/dev/null | tr '\n' ' ')"
        echo "catalog-db: $(cksum </var/lib/systemd/catalog/database 2>/dev/null)"
        echo "pid1-cgroup: $(tr '\n' ' ' </proc/1/cgroup)"
        echo "self-cgroup: $(tr '\n' ' ' </proc/self/cgroup)"
}

# Re-runs the calling script inside the namespaces; in the namespace it returns at once.
se_harness_reexec() {
        local before after rc leftover mnt
        if [ "${SE_HARNESS_INNER:-}" = 1 ]; then
                return 0
        fi
        [ "$(id -u)" = 0 ] || _se_skip_all "needs root (private mount namespace, systemd-journald)"
        command -v unshare >/dev/null || _se_skip_all "unshare (util-linux) missing"
        { [ -x "$SE_JOURNALD" ] && [ -x "$SE_SYSTEMD" ]; } || _se_skip_all "systemd not installed"
        unshare --mount --propagation private true 2>/dev/null || _se_skip_all "unshare --mount not permitted here"

        SE_HARNESS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/se-systemd.XXXXXX") || exit 1
        SE_HARNESS_CGROUP="se-harness-$$-$RANDOM"
        export SE_HARNESS_DIR SE_HARNESS_CGROUP
        before=$(_se_host_snapshot)
        trap '_se_outer_cleanup' EXIT
        trap 'exit 130' INT TERM

        SE_HARNESS_INNER=1 timeout --kill-after=10 "${SE_HARNESS_TIMEOUT:-300}" \
                unshare --mount --propagation private --pid --fork --mount-proc --kill-child \
                bash "$0" "$@"
        rc=$?
        [ "$rc" = 124 ] && echo "not ok - harness timed out after ${SE_HARNESS_TIMEOUT:-300}s"

        _se_outer_cleanup
        trap - EXIT
        if [ "${SE_HARNESS_HOST_CHECKS:-1}" = 1 ]; then
                after=$(_se_host_snapshot)
                if [ "$before" = "$after" ]; then
                        echo "ok - host unchanged (/run/systemd, journals, catalog database, cgroups of PID 1 and of the test)"
                else
                        echo "not ok - host changed by the harness"
                        diff <(echo "$before") <(echo "$after") | sed 's/^/#   /'
                        rc=1
                fi
                if grep -q 'run-systemd-system: absent' <<<"$before" && [ -e /run/systemd/system ]; then
                        echo "not ok - /run/systemd/system exists on the host after the test"
                        rc=1
                fi
                leftover=""
                for mnt in $(_se_cgroup_mounts); do
                        [ -e "$mnt/$SE_HARNESS_CGROUP" ] && leftover="$leftover $mnt/$SE_HARNESS_CGROUP"
                done
                if [ -n "$leftover" ]; then
                        echo "not ok - cgroups left behind:$leftover"
                        rc=1
                elif [ -e "$SE_HARNESS_DIR" ]; then
                        echo "not ok - work directory $SE_HARNESS_DIR left behind"
                        rc=1
                else
                        echo "ok - no cgroup, process or work directory left behind"
                fi
        fi
        exit "$rc"
}

# ---- inner side (PID 1 of the namespace) ------------------------------------------------------

SE_JOURNALD_PID=
SE_SYSTEMD_PID=

# Waits up to $1 tenths of a second for the command to succeed.
_se_wait() {
        local n=$1 i
        shift
        for ((i = 0; i < n; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

_se_stop_pid() {
        local pid=$1 i
        [ -n "$pid" ] || return 0
        kill -TERM "$pid" 2>/dev/null || return 0
        for i in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 0
}

se_harness_stop() {
        _se_stop_pid "$SE_SYSTEMD_PID"
        SE_SYSTEMD_PID=
        _se_stop_pid "$SE_JOURNALD_PID"
        SE_JOURNALD_PID=
}

_se_inner_exit() {
        local rc=$?
        se_harness_stop
        if [ "${SE_FAILED:-0}" != 0 ] && [ "$rc" = 0 ]; then
                rc=1
        fi
        exit "$rc"
}

se_harness_start() {
        local mnt d
        [ "${SE_HARNESS_INNER:-}" = 1 ] || { echo "not ok - se_harness_start outside se_harness_reexec"; exit 1; }
        trap '_se_inner_exit' EXIT
        trap 'exit 130' INT TERM

        # A cgroup of our own: systemd --user moves every process of its root cgroup into its
        # init.scope, which must not be the host's root cgroup.
        for mnt in $(_se_cgroup_mounts); do
                d="$mnt/$SE_HARNESS_CGROUP"
                mkdir -p "$d" 2>/dev/null || continue
                echo 0 >"$d/cgroup.procs" 2>/dev/null || rmdir "$d" 2>/dev/null # e.g. cpuset v1
        done

        mount -t tmpfs -o mode=0755 se-run-systemd /run/systemd || return 1
        mkdir -p /run/log/journal /run/systemd/system /run/systemd/journald.conf.d
        mount -t tmpfs -o mode=0755 se-run-log-journal /run/log/journal || return 1
        # journald would write a persistent journal here; keep the host's out of our reads too
        [ -d /var/log/journal ] && { mount -t tmpfs -o mode=0755 se-var-log-journal /var/log/journal || return 1; }
        # /run/systemd/journald.conf.d is read by journald; it is our tmpfs
        cat >/run/systemd/journald.conf.d/99-se-harness.conf <<'EOF'
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitIntervalSec=0
EOF

        mkdir -p "$SE_HARNESS_DIR/runtime" "$SE_HARNESS_DIR/config" "$SE_HARNESS_DIR/data" \
                "$SE_HARNESS_DIR/state" "$SE_HARNESS_DIR/cache"
        mount -t tmpfs -o mode=0700 se-xdg-runtime "$SE_HARNESS_DIR/runtime" || return 1
        export XDG_RUNTIME_DIR="$SE_HARNESS_DIR/runtime"
        export XDG_CONFIG_HOME="$SE_HARNESS_DIR/config" XDG_DATA_HOME="$SE_HARNESS_DIR/data"
        export XDG_STATE_HOME="$SE_HARNESS_DIR/state" XDG_CACHE_HOME="$SE_HARNESS_DIR/cache"
        unset DBUS_SESSION_BUS_ADDRESS NOTIFY_SOCKET JOURNAL_STREAM INVOCATION_ID
        export SE_UNIT_DIR="$XDG_CONFIG_HOME/systemd/user"
        mkdir -p "$SE_UNIT_DIR"
        # The manager, the hook it runs and the helper all read units from here first (the trailing
        # ':' keeps systemd's own user directories after it).
        export SYSTEMD_UNIT_PATH="$SE_UNIT_DIR:"

        if [ -z "${SE_LIBEXECDIR:-}" ]; then
                SE_LIBEXECDIR="$SE_HARNESS_DIR/libexec"
                mkdir -p "$SE_LIBEXECDIR/secrets-encrypt"
                ln -sf "$SE_BUILD/secrets-encrypt-hook" "$SE_LIBEXECDIR/secrets-encrypt/secrets-encrypt-hook"
        fi
        export SE_LIBEXECDIR SE_BINDIR=${SE_BINDIR:-$SE_BUILD} SE_SYSCONFDIR=${SE_SYSCONFDIR:-$SE_HARNESS_DIR/etc}

        # Not socket-activated, journald binds /run/systemd/journal/{socket,stdout,dev-log} itself.
        # Its own messages go to its log file, never to the host's /dev/kmsg.
        SYSTEMD_LOG_TARGET=console "$SE_JOURNALD" >"$SE_HARNESS_DIR/journald.log" 2>&1 &
        SE_JOURNALD_PID=$!
        if ! _se_wait 100 test -S /run/systemd/journal/socket -a -S /run/systemd/journal/stdout; then
                echo "not ok - systemd-journald did not start"
                sed 's/^/#   /' "$SE_HARNESS_DIR/journald.log"
                return 1
        fi

        # /run/systemd/system/ must exist or systemd --user refuses to start.
        # its own messages (unit failures, exit codes) go to our journald
        "$SE_SYSTEMD" --user --log-target=journal >"$SE_HARNESS_DIR/systemd.log" 2>&1 &
        SE_SYSTEMD_PID=$!
        local state=
        if _se_wait 200 test -S "$XDG_RUNTIME_DIR/systemd/private"; then
                # "degraded" (a default user unit of the host failed) is good enough for us
                state=$(timeout 30 systemctl --user is-system-running --wait 2>/dev/null)
        fi
        if [ "$state" != running ] && [ "$state" != degraded ]; then
                echo "not ok - systemd --user did not start (state '$state')"
                sed 's/^/#   /' "$SE_HARNESS_DIR/systemd.log"
                return 1
        fi
        return 0
}

se_systemctl() {
        systemctl --user --no-pager "$@"
}

# se_unit_prop UNIT PROPERTY -> the value
se_unit_prop() {
        systemctl --user show -p "$2" --value "$1"
}

# se_unit_install NAME CONTENT: writes the unit file and reloads.
se_unit_install() {
        printf '%s\n' "$2" >"$SE_UNIT_DIR/$1" && se_systemctl daemon-reload
}

# Replaces the @…@ placeholders that `make install` substitutes.
se_subst() {
        sed -e "s|@LIBEXECDIR@|$SE_LIBEXECDIR|g" -e "s|@BINDIR@|$SE_BINDIR|g" \
                -e "s|@SYSCONFDIR@|$SE_SYSCONFDIR|g" "$1"
}

# se_dropin_install UNIT FILE [NAME]: FILE (with placeholders substituted) as UNIT.d/NAME.
se_dropin_install() {
        local name=${3:-$(basename "$2")}
        mkdir -p "$SE_UNIT_DIR/$1.d" && se_subst "$2" >"$SE_UNIT_DIR/$1.d/$name" && se_systemctl daemon-reload
}

# se_journal_json [MATCH...] [journalctl options]: our entries (SYSLOG_IDENTIFIER=secrets-encrypt)
# as JSON lines, after waiting until journald has written what was sent so far.
se_journal_json() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -o json SYSLOG_IDENTIFIER=secrets-encrypt "$@"
}

# se_catalog_install [FILE]: makes `journalctl -x` in the namespace show our catalog (FILE,
# default units/secrets-encrypt.catalog) beside systemd's own; the host's catalog is untouched
# (bind mounts over /usr/lib/systemd/catalog and /var/lib/systemd/catalog).
se_catalog_install() {
        local file=${1:-$SE_ROOT/units/secrets-encrypt.catalog}
        local src="$SE_HARNESS_DIR/catalog-src" db="$SE_HARNESS_DIR/catalog-db"
        [ -d /usr/lib/systemd/catalog ] || return 1
        mkdir -p "$src" "$db"
        cp /usr/lib/systemd/catalog/*.catalog "$src/" 2>/dev/null
        cp "$file" "$src/" || return 1
        mount --bind "$src" /usr/lib/systemd/catalog || return 1
        if [ -d /var/lib/systemd/catalog ]; then
                mount --bind "$db" /var/lib/systemd/catalog || return 1
        else
                mount -t tmpfs -o mode=0755 se-var-lib-systemd /var/lib/systemd || return 1
                mkdir -p /var/lib/systemd/catalog
        fi
        journalctl --update-catalog
}

# se_journal_wait MATCH... : waits (10 s) until an entry with these matches appears.
se_journal_wait() {
        local i
        for i in $(seq 100); do
                [ -n "$(journalctl --no-pager -o cat -n 1 "$@" 2>/dev/null)" ] && return 0
                sleep 0.1
        done
        return 1
}

# se_unit_wait UNIT STATE... : waits (30 s) until ActiveState is one of STATEs.
se_unit_wait() {
        local unit=$1 i s want
        shift
        for i in $(seq 300); do
                s=$(se_unit_prop "$unit" ActiveState)
                for want in "$@"; do [ "$s" = "$want" ] && return 0; done
                sleep 0.1
        done
        return 1
}

# se_journal_cursor: the cursor of the newest entry, so later queries only see what came after it.
se_journal_cursor() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -n 1 --show-cursor -o cat 2>/dev/null | sed -n 's/^-- cursor: //p'
}

# se_journal_since [CURSOR]: the journal after CURSOR (all of it without) as JSON lines. No field
# matches: with matches, journalctl 252 skips the first matching entry after the cursor.
se_journal_since() {
        journalctl --sync 2>/dev/null
        journalctl --no-pager -o json ${1:+--after-cursor="$1"} 2>/dev/null
}

# se_journal_events MESSAGE_ID [CURSOR]: JSON lines of that event since CURSOR, from anywhere.
se_journal_events() {
        se_journal_since "${2:-}" | grep -F "\"MESSAGE_ID\":\"$1\""
}

# se_dump_events [CURSOR [N]]: our last N (20) entries since CURSOR as "#   ID UNIT MESSAGE" lines.
se_dump_events() {
        se_journal_since "${1:-}" | grep -F '"SYSLOG_IDENTIFIER":"secrets-encrypt"' |
                python3 -c '
import json, sys
for l in sys.stdin:
    d = json.loads(l)
    print("#   %s %s %s" % (d.get("MESSAGE_ID", "-"), d.get("_SYSTEMD_UNIT", d.get("_COMM", "-")), d.get("MESSAGE")))' |
                tail -n "${2:-20}"
}

# se_dump_unit UNIT [N]: `systemctl --user status` and the last N (15) journal lines of UNIT, as
# TAP comments.
se_dump_unit() {
        {
                systemctl --user --no-pager status "$1" 2>&1 | head -n 12
                journalctl --sync 2>/dev/null
                journalctl --no-pager -o short-monotonic -n "${2:-15}" _SYSTEMD_UNIT="$1" 2>&1
        } | sed 's/^/#   /'
}

# se_key_scan SEEN FILE...: the key material (base64, raw, hex) of every "secret" in the configs
# SEEN/*.json, looked for in each FILE that exists. Prints "KEYS FOUND", then one
# "#   key material I found in FILE" line per hit.
se_key_scan() {
        python3 - "$@" <<'PYEOF'
import base64, glob, json, os, sys
seen, files = sys.argv[1], sys.argv[2:]
secrets = set()
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "secret" and isinstance(v, str):
                secrets.add(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
for p in glob.glob(os.path.join(seen, "*.json")):
    with open(p, "rb") as f:
        walk(json.load(f))
needles = []
for s in secrets:
    raw = base64.b64decode(s)
    needles += [s.encode(), raw, raw.hex().encode()]
blobs = {p: open(p, "rb").read() for p in files if os.path.exists(p)}
found = [(p, i) for p, b in blobs.items() for i, n in enumerate(needles) if n in b]
print(len(secrets), len(found))
for p, i in found:
    print("#   key material %d found in %s" % (i, os.path.basename(p)))
PYEOF
}
