#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The scenario explorer (tests/explorer/explorer.py, issue 12): seeded random sequences of every
# command, restarts (the hook, then the stand-in API server on the config now on disk), live
# writers, mistyped datastores and SIGKILLs on kine SQLite databases; after every step an
# independent reader checks that every stored value is readable with the config on disk and with
# the config the running server loaded, and the command contracts hold. One TAP line per scenario.
#
#   SE_STRESS=1            10,000 steps (make stress) instead of 500
#   SE_EXPLORER_STEPS=N    N steps in total
#   SE_EXPLORER_JOBS=N     parallel explorers (default 2; each gets its own seeds)
#   SEED=S                 replay: one explorer starting with the scenario of seed S
#                          (make check uses fixed seeds; make stress draws new ones each run)
#   SE_EXPLORER_ARGS=…     more explorer options, e.g. "--keep-going --ignore CLASS,…" for triage
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
B=${SE_BUILD:-build}
LABEL=$B
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac

PY=
for p in /usr/bin/python3 python3; do
        if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import cryptography, nacl.secret' 2>/dev/null; then
                PY=$p
                break
        fi
done
[ -n "$PY" ] || {
        echo "ok - # SKIP no python3 with the cryptography and nacl modules (apt-get install python3-cryptography python3-nacl)"
        exit 0
}

W=$(mktemp -d "${TMPDIR:-/tmp}/se-explorer.XXXXXX") || exit 1
BG_PIDS=()
cleanup() {
        local p
        for p in "${BG_PIDS[@]}"; do
                kill -TERM "$p" 2>/dev/null # the explorer kills the programs it started, then exits
        done
        for p in "${BG_PIDS[@]}"; do
                wait "$p" 2>/dev/null
        done
        rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy of the programs ($ORIGIN runpath): a rebuild during the run cannot swap them.
mkdir -p "$W/bin/tests/tools" "$W/work" || exit 1
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/kine-seed tests/tools/stand-in-apiserver; do
        [ -e "$B/$f" ] || { echo "not ok - $B/$f not built (make tests)"; exit 1; }
        cp -L "$B/$f" "$W/bin/$f" || exit 1
done

if [ "${SE_STRESS:-0}" = 1 ]; then
        steps=${SE_EXPLORER_STEPS:-10000}
else
        steps=${SE_EXPLORER_STEPS:-500}
fi
njobs=${SE_EXPLORER_JOBS:-2}
if [ -n "${SEED:-}" ]; then
        base=$SEED
        njobs=1
elif [ "${SE_STRESS:-0}" = 1 ]; then
        base=$(( (RANDOM << 15 | RANDOM) % 1000000000 )) # new scenarios on every stress run
else
        base=20261206 # make check: the same scenarios every run (kill and writer timing still vary)
fi
[ "$njobs" -ge 1 ] 2>/dev/null || njobs=1
echo "# scenario explorer: $steps steps, $njobs explorer(s), base seed $base"

export SE_EXPLORER_BUILD_LABEL=$LABEL SE_EXPLORER_ROOT=$ROOT
for ((i = 0; i < njobs; i++)); do
        n=$((steps / njobs))
        [ "$i" = $((njobs - 1)) ] && n=$((steps - n * (njobs - 1)))
        # shellcheck disable=SC2086 # SE_EXPLORER_ARGS is a list of options
        "$PY" "$ROOT/tests/explorer/explorer.py" --build "$W/bin" --steps "$n" --seed $((base + i * 1000000)) \
                --workdir "$W/work" ${SE_EXPLORER_ARGS:-} >"$W/out.$i" 2>&1 &
        BG_PIDS+=($!)
done
rc=0
for ((i = 0; i < njobs; i++)); do
        wait "${BG_PIDS[$i]}" || rc=1
done
BG_PIDS=()
for ((i = 0; i < njobs; i++)); do
        cat "$W/out.$i"
done
if grep -q '^not ok - ' "$W"/out.*; then
        rc=1
        # the headlines again, after the long step logs (run-tests.sh shows a log's tail)
        echo "# violations found (the step logs are above):"
        grep -h -A2 '^not ok - ' "$W"/out.* | grep -E '^(not ok - |# replay|#     or)' | sed 's/^not ok - /#   /'
elif ! grep -q '^ok - ' "$W"/out.*; then
        echo "not ok - scenario explorer: no scenario ran"
        tail -n 30 "$W"/out.* | sed 's/^/#   /'
        rc=1
fi
exit "$rc"
