# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# What every integration script sets up the same way: TAP lines, a work directory removed on exit,
# background processes killed on exit (only those the script started), and a private copy of the
# programs (a rebuild during the run cannot swap them; $ORIGIN finds the library beside them).
#
#   . "$(dirname "$0")/lib-common.sh"
#   se_common_init NAME            # $W (work dir), $BIN (private programs), traps
#   se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed …
#   ok "name" / not_ok "name" / check "name" CMD…
#   bg CMD… ; the pid is in $BG_PID and killed on exit
#   se_common_finish               # exit status from the not-ok count

SE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${SE_BUILD:-build}
case "$B" in /*) ;; *) B="$SE_ROOT/$B" ;; esac
FAILED=0
BG_PIDS=()

ok() { echo "ok - $*"; }
not_ok() {
        echo "not ok - $*"
        FAILED=$((FAILED + 1))
}
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

_se_common_cleanup() {
        local p
        for p in "${BG_PIDS[@]}"; do
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        [ -n "${W:-}" ] && rm -rf "$W"
}

se_common_init() {
        W=$(mktemp -d "${TMPDIR:-/tmp}/se-$1.XXXXXX") || exit 1
        BIN="$W/bin"
        mkdir -p "$BIN"
        trap _se_common_cleanup EXIT
        trap 'exit 130' INT TERM
}

se_common_copy_programs() {
        local f
        for f in "$@"; do
                [ -e "$B/$f" ] || { echo "not ok - $B/$f not built (make all tests)"; exit 1; }
                cp -L "$B/$f" "$BIN/" || exit 1
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

se_common_finish() {
        [ "$FAILED" = 0 ]
        exit $?
}
