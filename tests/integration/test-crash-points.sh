#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash injection (SPEC §9 "Reliability"): SIGKILL of the helper CLI and of the hook at many
# points of every phase that writes — config write, state write, our own state file, each
# re-encryption batch and its checkpoint, the prune, the SQLite WAL checkpoint at close — on a
# kine SQLite datastore. The kill points come from build/tests/fault-inject.so (LD_PRELOAD): a
# counting pass records every write/fsync/rename/unlink of the command with the file it touches;
# then the command is run again from the same starting state and killed just before or just
# after the N-th of them. After each kill: restart (the hook), rerun the command if its effect
# was not reached, then check
#   - encryption-config.json is valid and 0600, encryption-state.json is "<stage>-<sha256 of it>",
#   - every secret is readable with the resulting config (the stand-in API server's start check),
#   - the secret count is unchanged, the stage is the one the command leads to.
#
#   SE_STRESS=1              every candidate point, sqlite writes sampled densely
#   SE_CRASH_PER_SCENARIO=N  points per scenario in the normal run (default 28)
#   SE_CRASH_ONLY=NAME       only this scenario (debugging)
#   SE_CRASH_SECRETS=N       secrets in the datastore (default 1100: three 500-value batches)
#   SE_CRASH_JOBS=N          parallel points (default: CPUs)
set -u
shopt -s nullglob
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3

NSEC=${SE_CRASH_SECRETS:-1100}
PER=${SE_CRASH_PER_SCENARIO:-28}
JOBS=${SE_CRASH_JOBS:-$(nproc 2>/dev/null || echo 2)}
STRESS=${SE_STRESS:-0}
# ASan wants to be first in the library list; our preload goes first.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0"
export SECRETS_ENCRYPT_LOG_TARGET=stderr

# Private copies: a concurrent rebuild of build/ must not change the programs mid-run.
se_common_init crash-points
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed tests/tools/stand-in-apiserver \
        tests/fault-inject.so

# settings DIR: a settings file for a work directory holding state/ and db.sqlite.
settings() { se_settings "$1/config.yaml" "$1/state" "sqlite://$1/db.sqlite"; }

# cmd DIR COMMAND: runs a scenario command (hook = a restart) in DIR.
cmd() {
        local d=$1 c=$2
        shift 2
        if [ "$c" = hook ]; then
                SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$HOOK" "$@"
        else
                SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$CLI" "$c" "$@"
        fi
}

# status_of DIR: sets ST_STAGE, ST_ACTIVE (the write key), ST_ENC (Enabled/Disabled).
status_of() {
        local out
        out=$(SECRETS_ENCRYPT_CONFIG="$1/config.yaml" "$CLI" status 2>/dev/null)
        ST_STAGE=$(sed -n 's/^Current Rotation Stage: //p' <<<"$out")
        ST_ACTIVE=$(awk '$1 == "*" { print $NF }' <<<"$out")
        ST_ENC=$(sed -n 's/^Encryption Status: \([A-Za-z]*\).*/\1/p' <<<"$out")
}
stage_of() {
        status_of "$1"
        echo "$ST_STAGE"
}
active_key() {
        status_of "$1"
        echo "$ST_ACTIVE"
}

# effect_reached DIR SCENARIO: the command's goal holds (stage, and what it changes).
effect_reached() {
        local d=$1 sc=$2
        status_of "$d"
        case "$sc" in
        first-start) [ "$ST_STAGE" = start ] ;;
        prepare) [ "$ST_STAGE" = prepare ] ;;
        rotate) [ "$ST_STAGE" = rotate ] && [ "$ST_ACTIVE" = "$WANT_KEY" ] ;;
        reencrypt | resume) [ "$ST_STAGE" = reencrypt_finished ] ;;
        rotate-keys) [ "$ST_STAGE" = reencrypt_finished ] && [ "$ST_ACTIVE" != "$OLD_KEY" ] ;;
        disable) [ "$ST_ENC" = Disabled ] ;;
        enable) [ "$ST_ENC" = Enabled ] ;;
        esac
}

# The scenarios: name, starting snapshot, command, and the command's own arguments.
SCENARIOS=(first-start prepare rotate reencrypt resume rotate-keys disable enable)
[ -n "${SE_CRASH_ONLY:-}" ] && SCENARIOS=("$SE_CRASH_ONLY")
declare -A SC_CMD=([first-start]=hook [prepare]=prepare [rotate]=rotate [reencrypt]=reencrypt [resume]=hook
        [rotate-keys]=rotate-keys [disable]=disable [enable]=enable)

# ---- snapshots: the state before each scenario's command ----------------------------------------
snap() { # snap NAME FROM-DIR
        mkdir -p "$W/snap/$1"
        cp -a "$2/state" "$2/db.sqlite" "$W/snap/$1/" 2>/dev/null
        for f in "$2"/db.sqlite-wal "$2"/db.sqlite-shm; do [ -e "$f" ] && cp -a "$f" "$W/snap/$1/"; done
        settings "$W/snap/$1"
}
restore() { # restore NAME DIR
        rm -rf "$2"
        cp -a "$W/snap/$1" "$2"
        settings "$2"
}

D="$W/build"
mkdir -p "$D"
settings "$D"
se_kine_seed "$SEED" "$D/db.sqlite" "$NSEC" --value-size 64 --namespaces 7
mkdir -p "$D/state" && chmod 0700 "$D/state"
snap first-start "$D"
prep_ok=1
cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap prepare "$D"
cmd "$D" prepare >/dev/null 2>&1 && cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap rotate "$D"
WANT_KEY=$(SECRETS_ENCRYPT_CONFIG="$D/config.yaml" "$CLI" status 2>/dev/null | awk '$1 != "*" && /AES-CBC/ { print $NF }')
cmd "$D" rotate >/dev/null 2>&1 && cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap reencrypt "$D"
# an interrupted re-encryption for the hook to resume: killed in its second batch
restore reencrypt "$W/r"
SE_TEST_REENCRYPT_KILL=update:2 cmd "$W/r" reencrypt >/dev/null 2>&1
[ -n "$(grep -o '"pending_reencrypt":true' "$W/r/state/secrets-encrypt.json")" ] || prep_ok=0
snap resume "$W/r"
cmd "$D" reencrypt >/dev/null 2>&1 && cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap rotate-keys "$D"
OLD_KEY=$(active_key "$D")
cmd "$D" rotate-keys >/dev/null 2>&1 && cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap disable "$D"
cmd "$D" disable >/dev/null 2>&1 && cmd "$D" hook >/dev/null 2>&1 || prep_ok=0
snap enable "$D"
if [ "$prep_ok" = 1 ]; then
        ok "snapshots before each of ${#SCENARIOS[@]} commands (kine SQLite, $NSEC secrets)"
else
        not_ok "building the snapshots failed"
        exit 1
fi

# ---- counting passes: every write/fsync/rename/unlink of each command, with its file -------------
mkdir -p "$W/trace"
for sc in "${SCENARIOS[@]}"; do
        restore "$sc" "$W/count"
        SE_FAULT_TRACE="$W/trace/$sc" SE_FAULT_COUNT_FILE="$W/trace/$sc.count" LD_PRELOAD="$FAULT" \
                cmd "$W/count" "${SC_CMD[$sc]}" >/dev/null 2>&1
        rc=$?
        if [ "$rc" != 0 ] || [ ! -s "$W/trace/$sc" ]; then
                not_ok "counting pass of $sc (exit $rc)"
                exit 1
        fi
done
ok "counting passes: $(cat "$W"/trace/*.count | awk '{ s += $1 } END { print s }') state-changing calls over ${#SCENARIOS[@]} commands"

# ---- choose the kill points ---------------------------------------------------------------------
# Every call on a state file, before and after it; sqlite writes: a few per batch segment (every
# 5th in stress). Normal runs keep PER points per scenario, one of each phase first.
python3 - "$W/trace" "$PER" "$STRESS" "${SCENARIOS[@]}" >"$W/points" <<'EOF'
import os, random, re, sys
tdir, per, stress, scen = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4:]
rng = random.Random(int(os.environ.get("SE_CRASH_SEED", "0")) or None)
for sc in scen:
    ops = []
    for line in open(os.path.join(tdir, sc)):
        n, call, path = line.rstrip("\n").split(" ", 2)
        ops.append((int(n), call, path))
    cls_prev, batch, segs = None, 0, []
    for n, call, path in ops:
        base = os.path.basename(path)
        if base.startswith("encryption-config.json"): c = "config-write"
        elif base.startswith("encryption-state.json"): c = "state-write"
        elif base.startswith("secrets-encrypt.json"): c = "own-state-write"
        elif base.startswith("reencrypt.checkpoint"): c = "checkpoint"
        elif base.startswith(".hook-last-failure"): c = "hook-failure-record"
        elif base.endswith(".sqlite-wal") or base.endswith(".sqlite-shm"):
            c = "db-batch"
        elif base.endswith(".sqlite"): c = "db-wal-checkpoint"
        elif call == "fsync" and cls_prev: c = cls_prev  # the directory fsync after a rename
        else: c = "other"
        if c == "db-batch" and call == "fdatasync":
            segs.append((n, c, call)); batch += 1; cls_prev = c; continue
        if c == "db-batch":
            c = "db-batch-%d" % (batch // 2 + 1)  # a commit syncs the WAL twice at most
        segs.append((n, c, call)); cls_prev = c.split("-batch")[0] if c.startswith("db-batch") else c
    cands = []  # (n, after, phase)
    bycls = {}
    for n, c, call in segs:
        bycls.setdefault(c, []).append(n)
    for c, ns in bycls.items():
        if c.startswith("db-") and not stress:
            pick = sorted(set([ns[0], ns[-1], ns[len(ns) // 2]] + rng.sample(ns, min(2, len(ns)))))
            cands += [(n, 0, c) for n in pick]
        elif c.startswith("db-"):
            cands += [(n, 0, c) for n in ns[::5]] + [(ns[-1], 1, c)]
        else:
            cands += [(n, a, c) for n in ns for a in (0, 1)]
    if not stress and len(cands) > per:
        first, seen, rest = [], set(), []
        rng.shuffle(cands)
        for p in cands:
            (rest if p[2] in seen else first).append(p); seen.add(p[2])
        cands = first + rest
        cands = cands[:per]
    for n, a, c in sorted(cands):
        print(sc, n, a, c)
EOF
NPOINTS=$(wc -l <"$W/points")
[ "$NPOINTS" -gt 0 ] || { not_ok "no kill points chosen"; exit 1; }

# ---- one point: kill, recover, check ---------------------------------------------------------------
# point ID SCENARIO N AFTER PHASE: writes "<result> <scenario> <phase> <killed> <detail>" to $W/res/ID
point() {
        local id=$1 sc=$2 n=$3 after=$4 phase=$5 d="$W/p/$1" rc killed=0 why="" st sha out reran=0 lefts
        restore "$sc" "$d"
        SE_FAULT_KILL_AT=$n SE_FAULT_KILL_AFTER=$after LD_PRELOAD="$FAULT" cmd "$d" "${SC_CMD[$sc]}" >"$d/.out" 2>&1
        rc=$?
        [ "$rc" = 137 ] && killed=1
        if [ "$rc" != 137 ] && [ "$rc" != 0 ]; then
                why="not killed, exit $rc: $(tail -n 1 "$d/.out")"
        fi
        lefts=("$d"/state/*.tmp??????)
        lefts=${#lefts[@]}
        # recovery: a restart, then the command again if its effect is not there yet
        if [ -z "$why" ] && ! cmd "$d" hook >"$d/.hook" 2>&1; then
                why="hook after the kill failed: $(grep -v '^<' "$d/.hook" | tail -n 1)"
        fi
        if [ -z "$why" ] && ! effect_reached "$d" "$sc"; then
                reran=1
                if [ "${SC_CMD[$sc]}" != hook ] && ! cmd "$d" "${SC_CMD[$sc]}" >"$d/.rerun" 2>&1; then
                        why="rerun of $sc failed: $(grep -v '^<' "$d/.rerun" | tail -n 1)"
                elif ! cmd "$d" hook >"$d/.hook" 2>&1; then
                        why="hook after the rerun failed: $(grep -v '^<' "$d/.hook" | tail -n 1)"
                elif ! effect_reached "$d" "$sc"; then
                        why="$sc did not converge: stage $ST_STAGE, write key $ST_ACTIVE, $ST_ENC"
                fi
        fi
        if [ -z "$why" ]; then
                st=$(<"$d/state/encryption-state.json")
                read -r sha _ < <(sha256sum "$d/state/encryption-config.json")
                if ! out=$("$CLI" validate "$d/state/encryption-config.json" 2>&1); then
                        why="config invalid: $out"
                elif [ "${st#*-}" != "$sha" ]; then
                        why="encryption-state.json ($st) does not match the config hash $sha"
                elif [ "$(stat -c %a "$d/state/encryption-config.json")" != 600 ]; then
                        why="config mode $(stat -c %a "$d/state/encryption-config.json")"
                elif ! out=$("$STANDIN" --encryption-provider-config "$d/state/encryption-config.json" \
                        --datastore "sqlite://$d/db.sqlite" --check-only 2>&1); then
                        why="stand-in API server refuses to start: $out"
                elif [[ "$out" != *", $NSEC secrets readable"* ]]; then
                        why="secret count changed: $out"
                fi
        fi
        if [ -z "$why" ]; then
                echo "ok $sc $phase $killed $reran $lefts" >"$W/res/$id"
                rm -rf "$d"
        else
                echo "fail $sc $phase $killed $reran $lefts kill at $n${after:+ (after=$after)}: $why" >"$W/res/$id"
        fi
}

mkdir -p "$W/res" "$W/p"
t0=$(date +%s)
i=0
while read -r sc n after phase; do
        i=$((i + 1))
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n 2>/dev/null; done
        bg point "$i" "$sc" "$n" "$after" "$phase"
done <"$W/points"
wait
t1=$(date +%s)

# ---- report --------------------------------------------------------------------------------------------
cat "$W"/res/* >"$W/results"
total=$(wc -l <"$W/results")
killed=$(awk '$4 == 1' "$W/results" | wc -l)
for sc in "${SCENARIOS[@]}"; do
        n=$(awk -v s="$sc" '$2 == s' "$W/results" | wc -l)
        k=$(awk -v s="$sc" '$2 == s && $4 == 1' "$W/results" | wc -l)
        bad=$(awk -v s="$sc" '$2 == s && $1 == "fail"' "$W/results" | wc -l)
        phases=$(awk -v s="$sc" '$2 == s && $4 == 1 { print $3 }' "$W/results" | sort | uniq -c |
                awk '{ printf "%s%s×%d", (NR > 1 ? ", " : ""), $2, $1 }')
        if [ "$bad" = 0 ] && [ "$n" -gt 0 ]; then
                ok "$sc (${SC_CMD[$sc]}): $k of $n kill points killed it, all recovered and consistent [$phases]"
        else
                not_ok "$sc (${SC_CMD[$sc]}): $bad of $n kill points left an inconsistent state"
                awk -v s="$sc" '$2 == s && $1 == "fail"' "$W/results" | head -n 5 | sed 's/^/#   /'
        fi
done
reran=$(awk '$5 == 1' "$W/results" | wc -l)
lefts=$(awk '$6 > 0' "$W/results" | wc -l)
echo "# $total kill points in $((t1 - t0)) s ($JOBS parallel), $killed killed the process; $reran needed the command again after the restart"
echo "# $lefts kills left temporary files (*.tmpXXXXXX) in the state directory"
min=200
[ "$STRESS" = 1 ] && min=400
if [ "$killed" -ge "$min" ] || [ -n "${SE_CRASH_PER_SCENARIO:-}" ]; then
        ok "$killed kill points exercised (at least $min)"
else
        not_ok "only $killed kill points killed the process (want at least $min)"
fi
exit $((FAILED > 0))
