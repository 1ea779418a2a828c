# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# What every integration script sets up the same way: TAP lines, a work directory removed on exit,
# background processes killed on exit (only those the script started), and a private copy of the
# programs (a rebuild during the run cannot swap them; $ORIGIN finds the library beside them).
#
#   . tests/integration/lib-common.sh   # sets SE_ROOT, $B (absolute build dir, from SE_BUILD)
#   se_need python3 …              # "ok - # SKIP python3 missing" and exit 0 when one is absent
#   se_common_init NAME            # $W (work dir), $BIN (private programs), traps
#   se_common_at_exit FUNC         # FUNC also runs on exit, before $W is removed
#                                  #   (SE_KEEP_WORK=1 keeps $W and prints its path)
#   se_common_copy_programs secrets-encrypt tests/tools/kine-seed …
#                                  # from $B into $BIN, with libsecrets-encrypt.so.0; sets
#                                  # CLI HOOK SEED STANDIN FAULT for the programs copied
#   ok "name" / not_ok "name" / skip "why" / check "name" CMD…   # counted in $PASSED, $FAILED
#   bg CMD… ; the pid is in $BG_PID and killed on exit;  stop_bg PID
#   se_settings FILE STATE-DIR ENDPOINT [NODE [LINE…]]
#                                  # a settings file: node NODE (node-1), unit stand-in.service,
#                                  # then each LINE ("key: value") as given; also se_standin_unit
#   se_standin_unit STATE-DIR      # the stand-in API server unit, stand-in.service in
#                                  # $SYSTEMD_UNIT_PATH (set by se_common_init), gains a command
#                                  # that reads STATE-DIR's config: mutating commands and the
#                                  # hook check that the server reads the config they change
#   se_kine_seed SEED DB N [ARG…]  # N secrets into a kine SQLite DB; not ok and exit on failure
#   se_ha_settings DIR ENDPOINTS N # a cluster token DIR/token and N servers DIR/sI/config.yaml
#                                  # (state DIR/sI/cred, node server-I, timeout 2m)
#   se_capture DIR CMD…            # stdout in DIR/out, stderr in DIR/err, both appended to
#                                  # DIR/all-output; the exit code in $rc (and returned)
#   se_stage_of CMD…               # the "Current Rotation Stage" that a status command prints
#   se_common_finish               # "# N ok, M not ok"; exit status from the not-ok count

SE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${SE_BUILD:-build}
case "$B" in /*) ;; *) B="$SE_ROOT/$B" ;; esac
PASSED=0
FAILED=0
BG_PIDS=()
_SE_AT_EXIT=()

ok() {
        echo "ok - $*"
        PASSED=$((PASSED + 1))
}
not_ok() {
        echo "not ok - $*"
        FAILED=$((FAILED + 1))
}
skip() { echo "ok - # SKIP $*"; }
# check NAME CMD...: a TAP line; the output of a failing CMD is shown indented.
check() {
        local name=$1 out rc
        shift
        out=$("$@" 2>&1)
        rc=$?
        if [ "$rc" = 0 ]; then
                ok "$name"
        else
                not_ok "$name (exit $rc)"
                [ -n "$out" ] && sed 's/^/#   /' <<<"$out" | head -n 30
        fi
        return "$rc"
}

se_need() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null || { skip "$c missing"; exit 0; }
        done
}

_se_common_cleanup() {
        local p f live
        # only pids that are still this shell's jobs: a reaped pid may belong to someone else now
        live=" $(jobs -p | tr '\n' ' ') "
        for p in "${BG_PIDS[@]}"; do
                case "$live" in *" $p "*) ;; *) continue ;; esac
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        for f in "${_SE_AT_EXIT[@]}"; do "$f"; done
        [ -n "${W:-}" ] || return 0
        if [ "${SE_KEEP_WORK:-0}" = 1 ]; then echo "# kept $W"; else rm -rf "$W"; fi
}

se_common_init() {
        # `reencrypt` runs in-process, never as a transient unit of the host's systemd
        export SECRETS_ENCRYPT_FOREGROUND=1
        W=$(mktemp -d "${TMPDIR:-/tmp}/se-$1.XXXXXX") || exit 1
        BIN="$W/bin"
        mkdir -p "$BIN" "$W/units"
        # where secrets-encrypt looks for the API server's unit (systemd's own variable)
        export SYSTEMD_UNIT_PATH="$W/units"
        trap _se_common_cleanup EXIT
        trap 'exit 130' INT TERM HUP
}

se_common_at_exit() { _SE_AT_EXIT+=("$@"); }

se_common_copy_programs() {
        local f
        for f in libsecrets-encrypt.so.0 "$@"; do
                [ -e "$B/$f" ] || { echo "not ok - $B/$f not built (make all tests)"; exit 1; }
                cp -L "$B/$f" "$BIN/" || exit 1
                # shellcheck disable=SC2034 # for the sourcing script
                case "${f##*/}" in
                secrets-encrypt) CLI="$BIN/secrets-encrypt" ;;
                secrets-encrypt-hook) HOOK="$BIN/secrets-encrypt-hook" ;;
                kine-seed) SEED="$BIN/kine-seed" ;;
                stand-in-apiserver) STANDIN="$BIN/stand-in-apiserver" ;;
                fault-inject.so) FAULT="$BIN/fault-inject.so" ;;
                esac
        done
}

bg() {
        "$@" &
        BG_PID=$!
        BG_PIDS+=("$BG_PID")
}

# stop_bg PID: ends one process this script started.
stop_bg() {
        kill -TERM "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 0
}

se_settings() {
        local f=$1 st=$2 ep=$3 node=${4:-node-1}
        shift 4 2>/dev/null || shift $#
        {
                printf 'state-dir: %s\nnode-name: %s\ndatastore-endpoint: %s\nunit: stand-in.service\n' "$st" "$node" "$ep"
                # the test etcd members listen on plain http://127.0.0.1 (lib-etcd.sh)
                case "$ep" in http://*) echo "datastore-allow-plain-http: true" ;; esac
                case "$ep" in postgres*://* | mysql://*) echo "single-server: true" ;; esac
                [ $# -gt 0 ] && printf '%s\n' "$@"
        } >"$f"
        se_standin_unit "$st"
}

# A oneshot unit may have several ExecStart= commands: one per state directory of the script.
se_standin_unit() {
        local u="${SYSTEMD_UNIT_PATH%%:*}/stand-in.service"
        [ -n "${SYSTEMD_UNIT_PATH:-}" ] || return 0
        [ -f "$u" ] || printf '[Unit]\nDescription=Stand-in API server (never started here)\n\n[Service]\nType=oneshot\n' >"$u"
        grep -qF -- "--encryption-provider-config=$1/encryption-config.json --" "$u" ||
                printf 'ExecStart=/bin/true --encryption-provider-config=%s/encryption-config.json --\n' "$1" >>"$u"
}

se_kine_seed() {
        "$@" >/dev/null 2>&1 || { not_ok "kine-seed $2 $3"; exit 1; }
}

se_ha_settings() {
        local d=$1 ep=$2 n=$3 i
        printf 'K10c1a55e5::server:%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$d/token"
        for ((i = 1; i <= n; i++)); do
                mkdir -p "$d/s$i"
                se_settings "$d/s$i/config.yaml" "$d/s$i/cred" "$ep" "server-$i" "token-file: $d/token" "timeout: 2m"
        done
}

se_capture() {
        local d=$1
        shift
        "$@" >"$d/out" 2>"$d/err"
        rc=$?
        cat "$d/out" "$d/err" >>"$d/all-output"
        return "$rc"
}

se_stage_of() { "$@" 2>/dev/null | sed -n 's/^Current Rotation Stage: //p'; }

se_common_finish() {
        echo "# $PASSED ok, $FAILED not ok"
        [ "$FAILED" = 0 ]
        exit $?
}
