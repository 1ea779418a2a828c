#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The operator's terminal (issue 15), on a kine SQLite datastore without systemd (running the hook
# stands for a restart): a re-encryption survives `| head -1`, SIGHUP and kill -9 and is resumed by
# `reencrypt`; SIGINT stops it at a checkpoint with one line saying how to resume; `status`,
# `facts` and `verify` answer while it runs, with its progress; k3s's flags and conventions; and
# every exit code of README's table against a situation that produces it.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3 sqlite3

se_common_init terminal
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed tests/fault-inject.so

STATE="$W/state"
DB="$W/db.sqlite"
NSEED=400
RATE=100 # secrets/s: a re-encryption of NSEED takes about 4 s, long enough to interrupt
se_settings "$W/config.yaml" "$STATE" "sqlite://$DB"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# the default target (no journald on the host here): plain lines on stderr
unset SECRETS_ENCRYPT_LOG_TARGET JOURNAL_STREAM

se_kine_seed "$SEED" "$DB" "$NSEED"

run() { se_capture "$W" "$CLI" "$@"; }
restart() { "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1; }
stage() { se_stage_of "$CLI" status; }
# wait_for FILE PATTERN: up to 20 s for PATTERN in FILE.
wait_for() {
        local i
        for i in $(seq 200); do
                grep -q -- "$2" "$1" 2>/dev/null && return 0
                sleep 0.1
        done
        return 1
}
# wait_checkpoint: up to 20 s until the re-encryption wrote a checkpoint.
wait_checkpoint() {
        local i
        for i in $(seq 200); do
                [ -s "$STATE/reencrypt.checkpoint" ] && return 0
                sleep 0.1
        done
        return 1
}
# to_rotate: a fresh rotation up to stage rotate, with the server restarted on it (so reencrypt
# runs online now).
to_rotate() {
        "$CLI" prepare >/dev/null 2>&1 && restart && "$CLI" rotate >/dev/null 2>&1 && restart
}
verify_clean() {
        "$CLI" verify >"$W/verify" 2>&1 && grep -q ", 0 unreadable" "$W/verify"
}

restart # first start: the hook generates the config
check "first start: stage start" test "$(stage)" = start
run status
check "plain stderr off the journal stream: no <N> prefixes anywhere" bash -c "! grep -q '^<[0-7]>' '$W/all-output'"

# ---- a reader that leaves: `reencrypt 2>&1 | head -1` ----------------------------------------------------
to_rotate || not_ok "prepare/rotate for the head -1 run"
first=$("$CLI" --reencrypt-rate "$RATE" reencrypt 2>&1 | head -n 1)
rc_cli=${PIPESTATUS[0]}
check "reencrypt | head -1: the command still finished (exit $rc_cli; first line '$first')" test "$rc_cli" = 0
check "reencrypt | head -1: stage reencrypt_finished" test "$(stage)" = reencrypt_finished
check "reencrypt | head -1: every value readable" verify_clean

# ---- SIGHUP (a closed SSH session) ----------------------------------------------------------------------
to_rotate || not_ok "prepare/rotate for the SIGHUP run"
"$CLI" --reencrypt-rate "$RATE" reencrypt >"$W/hup.out" 2>"$W/hup.err" &
pid=$!
BG_PIDS+=("$pid")
wait_for "$W/hup.out" "reencryption started" || not_ok "SIGHUP run: never printed reencryption started"
kill -HUP "$pid"
wait "$pid"
rc_hup=$?
check "SIGHUP: the re-encryption went on and finished (exit $rc_hup)" test "$rc_hup" = 0
check "SIGHUP: reencryption finished printed" grep -qx "reencryption finished" "$W/hup.out"
check "SIGHUP: stage reencrypt_finished" test "$(stage)" = reencrypt_finished

# ---- status, facts and verify while a re-encryption runs --------------------------------------------------
to_rotate || not_ok "prepare/rotate for the status run"
"$CLI" --reencrypt-rate 40 reencrypt >"$W/run.out" 2>"$W/run.err" &
pid=$!
BG_PIDS+=("$pid")
wait_checkpoint || not_ok "no checkpoint within 20 s"
timeout 30 "$CLI" status -o json >"$W/st.json" 2>"$W/st.err"
rc_st=$?
check "status during the re-encryption answers without the lock (exit $rc_st)" test "$rc_st" = 0
check "status -o json: running, with done/total from the checkpoint" python3 - "$W/st.json" "$NSEED" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["progress"]
assert d["stage"] == "reencrypt_active", d
assert p["running"] is True and p["reencrypt_pending"] is True, p
assert 0 < p["done"] <= p["total"] and p["total"] == int(sys.argv[2]), p
assert "wait" in d["next_action"], d
EOF
timeout 30 "$CLI" status >"$W/st.txt" 2>&1
check "text status during the re-encryption: k3s's lines, then one running line" \
        bash -c "grep -qx 'Current Rotation Stage: reencrypt_active' '$W/st.txt' && tail -n 1 '$W/st.txt' | grep -q '^Re-encryption running (pid $pid): [0-9]*/$NSEED secrets'"
timeout 30 "$CLI" facts >"$W/facts.json" 2>"$W/facts.err"
check "facts during the re-encryption: reencrypt_done/_total filled" python3 - "$W/facts.json" "$NSEED" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert 0 < d["reencrypt_done"] <= d["reencrypt_total"] == int(sys.argv[2]), d
EOF
timeout 60 "$CLI" verify -o json >"$W/verify.json" 2>"$W/verify.err"
check "verify -o json during the re-encryption answers (exit $?)" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['unreadable'] == 0 and d['total'] >= $NSEED, d" "$W/verify.json"
wait "$pid"
check "the observed re-encryption finished (exit $?)" test "$(stage)" = reencrypt_finished

# ---- SIGINT: stop at a checkpoint, one line how to resume; `reencrypt` resumes ----------------------------
to_rotate || not_ok "prepare/rotate for the SIGINT run"
"$CLI" --reencrypt-rate 40 reencrypt >"$W/int.out" 2>"$W/int.err" &
pid=$!
BG_PIDS+=("$pid")
wait_checkpoint || not_ok "no checkpoint within 20 s"
kill -INT "$pid"
wait "$pid"
rc_int=$?
check "SIGINT: exit 1 (exit $rc_int)" test "$rc_int" = 1
check "SIGINT: one line saying how to resume" \
        bash -c "tail -n 1 '$W/int.err' | grep -q 'interrupted by SIGINT at [0-9]*/$NSEED secrets.*run \`secrets-encrypt reencrypt\` to resume'"
check "SIGINT: no success line" bash -c "! grep -q 'reencryption finished' '$W/int.out'"
check "SIGINT: stage stays reencrypt_active" test "$(stage)" = reencrypt_active
"$CLI" status >"$W/st-int.txt" 2>&1
check "text status after the interruption: k3s's output, then one line saying what to do" \
        bash -c "tail -n 1 '$W/st-int.txt' | grep -q '^Re-encryption interrupted at [0-9]*/$NSEED secrets.*: run \`secrets-encrypt reencrypt\` to resume it'"
check "text status after the interruption: k3s's table unchanged above the added line" \
        bash -c "head -n -1 '$W/st-int.txt' | tail -n 1 | grep -qx ''"
run reencrypt
check "reencrypt in stage reencrypt_active resumes it (exit $rc)" test "$rc" = 0
check "the resumed run prints k3s's lines" bash -c "grep -qx 'reencryption started' '$W/out' && tail -n 1 '$W/out' | grep -qx 'reencryption finished'"
check "the resumed run: stage reencrypt_finished, every value readable" \
        bash -c "[ \"\$(\"$CLI\" status 2>/dev/null | sed -n 's/^Current Rotation Stage: //p')\" = reencrypt_finished ]"
check "after the resume: every value readable" verify_clean

# ---- kill -9: nothing can catch it; reencrypt resumes ------------------------------------------------------
to_rotate || not_ok "prepare/rotate for the kill -9 run"
"$CLI" --reencrypt-rate 40 reencrypt >"$W/kill.out" 2>"$W/kill.err" &
pid=$!
BG_PIDS+=("$pid")
wait_checkpoint || not_ok "no checkpoint within 20 s"
kill -KILL "$pid"
{ wait "$pid"; } 2>/dev/null
check "kill -9: stage reencrypt_active" test "$(stage)" = reencrypt_active
run reencrypt
check "kill -9, then reencrypt: resumed, not 'incorrect stage' (exit $rc)" test "$rc" = 0
check "kill -9, then reencrypt: reencrypt_finished" test "$(stage)" = reencrypt_finished

# ---- success lines only after the thing happened ------------------------------------------------------------
run reencrypt
check "reencrypt in the wrong stage: exit 79, no 'reencryption started' (exit $rc)" \
        bash -c "[ $rc = 79 ] && ! grep -q started '$W/out'"
check "stage refusal: no internal range, no --force for rotate-keys" \
        bash -c "! grep -q 'start-reencrypt_finished' '$W/err'"
"$CLI" prepare >/dev/null 2>&1
run rotate-keys
check "rotate-keys refused: exit 79, does not suggest --force" bash -c "[ $rc = 79 ] && ! grep -q -- '--force' '$W/err'"
restart && "$CLI" rotate >/dev/null 2>&1 && restart && "$CLI" reencrypt >/dev/null 2>&1

# ---- rotate -f with a single key: nothing is promoted -------------------------------------------------------
run rotate -f
check "rotate -f with one key: succeeds, no 'promoted' event (exit $rc)" \
        bash -c "[ $rc = 0 ] && ! grep -q promoted '$W/err'"
restart
run reencrypt -f
check "reencrypt -f after it: back to reencrypt_finished (exit $rc)" test "$(stage)" = reencrypt_finished

# ---- --quiet, progress once ------------------------------------------------------------------------------
to_rotate || not_ok "prepare/rotate for the quiet run"
run --quiet reencrypt
check "--quiet: only the result lines on stdout, nothing on stderr (exit $rc)" \
        bash -c "[ $rc = 0 ] && [ ! -s '$W/err' ] && tail -n 1 '$W/out' | grep -qx 'reencryption finished'"
to_rotate || not_ok "prepare/rotate for the progress run"
run --reencrypt-rate 200 reencrypt
check "progress shows once: no progress events beside the progress lines" \
        bash -c "grep -q '^reencrypted [0-9]*/$NSEED secrets' '$W/err' && ! grep -q '^reencrypted [0-9]* of ' '$W/err'"

# ---- k3s's flags and conventions ---------------------------------------------------------------------------
run status -o JSON
check "-o JSON (any case, as k3s)" python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$W/out"
run status -o yaml
check "-o yaml: text, as k3s" grep -q '^Encryption Status: ' "$W/out"
run --token 'K10abc::server:SUPERSECRET' status
check "--token VALUE accepted (exit $rc)" test "$rc" = 0
run --tok 'K10abc::server:SUPERSECRET' status
check "an abbreviated long option is refused (64), and its value never printed" \
        bash -c "[ $rc = 64 ] && ! grep -q SUPERSECRET '$W/out' '$W/err'"
run --token=K10abc::server:SUPERSECRET --state-d "$STATE" status
check "--state-d is not --state-dir (exit $rc)" bash -c "[ $rc = 64 ] && ! grep -q SUPERSECRET '$W/err'"
run -s https://10.255.0.1:6443 status
check "--server naming another server: a clear usage error (exit $rc)" bash -c "[ $rc = 64 ] && grep -q 'acts on the server it runs on' '$W/err'"
run -s https://127.0.0.1:6443 status
check "--server naming this server: accepted (exit $rc)" test "$rc" = 0
mkdir -p "$W/k3s/server/db"
cp "$DB" "$W/k3s/server/db/state.db"
run --data-dir "$W/k3s" verify
check "--data-dir: the datastore is <data-dir>/server/db/state.db (exit $rc)" test "$rc" = 0
run -d "$W/nowhere" verify
check "-d without a datastore there: datastore unavailable (exit $rc)" test "$rc" = 69
run prepare --help
check "prepare --help: prepare's flags" bash -c "[ $rc = 0 ] && grep -q -- '--force' '$W/out' && ! grep -q -- '--rolling' '$W/out'"
run help status
check "help status: status's help" bash -c "[ $rc = 0 ] && grep -q -- '--output' '$W/out'"
run --state-dir "$W/never" disable
check "disable with no config: no success line (exit $rc)" bash -c "[ $rc != 0 ] && ! grep -q 'disabled' '$W/out'"

# ---- exit codes: README's table -----------------------------------------------------------------------------
# expect_code CODE NAME CMD...: CMD exits CODE.
expect_code() {
        local code=$1 name=$2
        shift 2
        se_capture "$W" "$@"
        if [ "$rc" = "$code" ]; then
                ok "exit $code: $name"
        else
                not_ok "exit $code: $name (got $rc)"
                sed 's/^/#   /' "$W/err" | head -n 5
        fi
}
expect_code 0 "success (status)" "$CLI" status
[ "$rc_int" = 1 ] && ok "exit 1: other failure: the SIGINT run above" || not_ok "exit 1: the SIGINT run exited $rc_int"
expect_code 64 "usage: unknown option" "$CLI" --no-such-option status
expect_code 64 "usage: --config names a directory" "$CLI" --config "$W" status
python3 - "$W/other.json" <<'EOF'
import base64, json, os, sys
cfg = {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
       "resources": [{"resources": ["secrets"], "providers": [
           {"aescbc": {"keys": [{"name": "aescbckey", "secret": base64.b64encode(os.urandom(32)).decode()}]}},
           {"identity": {}}]}]}
open(sys.argv[1], "w").write(json.dumps(cfg))
EOF
cp "$DB" "$W/undecryptable.db"
"$SEED" "$W/undecryptable.db" 1 --start 90000 --config "$W/other.json" >/dev/null 2>&1
expect_code 65 "undecryptable: a value under a key no config has (verify)" \
        "$CLI" --datastore-endpoint "sqlite://$W/undecryptable.db" verify
expect_code 66 "missing input: --config names a file that does not exist" "$CLI" --config "$W/none.yaml" status
expect_code 66 "missing input: validate FILE that does not exist" "$CLI" validate "$W/none.json"
expect_code 69 "datastore unavailable: no such SQLite file" "$CLI" --datastore-endpoint "sqlite://$W/none.db" verify
cp -a "$STATE" "$W/state-r"
se_standin_unit "$W/state-r"
se_standin_unit "$W/a-file/sub"
cp "$DB" "$W/db-r.sqlite"
expect_code 69 "systemd unavailable: --restart --user without a manager" \
        env XDG_RUNTIME_DIR="$W/no-runtime" "$CLI" --state-dir "$W/state-r" --datastore-endpoint "sqlite://$W/db-r.sqlite" prepare --restart --user
check "--restart failure after the stage changed: says so, and what to run next" \
        bash -c "grep -q 'stage changed to prepare, but --restart failed' '$W/err' && grep -q 'systemctl restart stand-in.service' '$W/err'"
expect_code 79 "precondition: sync on SQLite (needs etcd)" "$CLI" sync --from-local
# A secret a KMS provider wrote: its key is in the KMS plugin, out of our reach. The hook's pending
# re-encryption stops at it, names it and says what to do.
cp -a "$STATE" "$W/state-kms"
cp "$DB" "$W/db-kms.sqlite"
se_settings "$W/config-kms.yaml" "$W/state-kms" "sqlite://$W/db-kms.sqlite"
sqlite3 "$W/db-kms.sqlite" "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value,
        old_value) VALUES ('/registry/secrets/default/from-kms', 1, 0, 0, 0, 0,
        CAST('k8s:enc:kms:v1:vault:' || hex(randomblob(64)) AS BLOB), NULL)"
SECRETS_ENCRYPT_CONFIG="$W/config-kms.yaml" "$CLI" rotate-keys >/dev/null 2>&1
expect_code 70 "unsupported operation: a KMS-encrypted secret in a re-encryption" \
        env SECRETS_ENCRYPT_CONFIG="$W/config-kms.yaml" "$HOOK" --unit=stand-in.service
check "unsupported operation: names the value and the KMS provider's own rotation" \
        grep -q "/registry/secrets/default/from-kms: value is encrypted by kms provider \"vault\".*use the KMS provider's own rotation" "$W/err"
touch "$W/a-file"
expect_code 73 "cannot create a state file: state-dir under a regular file" "$CLI" --state-dir "$W/a-file/sub" enable
cp -a "$STATE" "$W/state-io"
se_standin_unit "$W/state-io"
expect_code 74 "I/O error: the first state write fails with EIO" \
        env SE_FAULT_OPS=write SE_FAULT_ERRNO_AT=1 SE_FAULT_ERRNO=EIO LD_PRELOAD="$BIN/fault-inject.so" \
        "$CLI" --state-dir "$W/state-io" prepare
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1] + "/.secrets-encrypt.lock", "a")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[1] + "/.held", "w").close()
time.sleep(12)' "$STATE" &
locker=$!
BG_PIDS+=("$locker")
wait_for_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_for_file "$STATE/.held"
expect_code 75 "busy: another process holds the state-directory lock" "$CLI" prepare
check "busy: status still answers while the lock is held" "$CLI" status
stop_bg "$locker"
rm -f "$STATE/.held"
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
        chmod 755 "$W" "$BIN"
        expect_code 77 "permission denied: another user reads the state" \
                setpriv --reuid=nobody --regid=nogroup --clear-groups "$CLI" --config "$W/config.yaml" status
        chmod 700 "$W"
else
        skip "exit 77: no nobody user or setpriv"
fi
cp -a "$STATE" "$W/state-bad"
printf '{"kind":' >"$W/state-bad/encryption-config.json"
expect_code 78 "invalid configuration: a torn encryption-config.json" "$CLI" --state-dir "$W/state-bad" status
cp -a "$STATE" "$W/state-bad2"
printf 'garbage' >"$W/state-bad2/encryption-state.json"
expect_code 78 "invalid state: a corrupt encryption-state.json" "$CLI" --state-dir "$W/state-bad2" status
expect_code 79 "precondition: rotate in stage reencrypt_finished" "$CLI" rotate

se_common_finish
