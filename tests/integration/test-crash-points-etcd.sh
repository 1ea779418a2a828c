#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash injection on the etcd datastore (SPEC §9 "Reliability", HA): a 3-member etcd cluster on
# loopback and three servers (three state dirs and settings files, as tests/integration/test-ha.sh).
# A cycle walks a whole rotation: prepare, restarts, rotate, restarts, reencrypt, restarts, then a
# rolling rotate-keys driven by restart rounds. Each step (a CLI command or the hook of one server)
# is a kill target: build/tests/fault-inject.so (LD_PRELOAD) counts its local writes (config,
# state, our own state) and its HTTP requests to etcd (sealed config put, node record put, lease,
# each re-encryption batch transaction) and SIGKILLs it just before or just after the N-th.
# The first cycle is the counting pass (no kill, every call traced); each later cycle kills every
# step once, at a point chosen from that trace, rotating through the kinds of call.
# After each kill: a restart of that server (its hook, then the stand-in API server's start check),
# the command again if its effect was not reached, and checks:
#   - every server's encryption-config.json is valid, 0600, and its encryption-state.json hash agrees,
#   - every secret is readable with every server's config, and the count is unchanged,
#   - after the restarts of all three, the configs are byte-identical and the stages agree,
#   - the rolling rotation converges (reencrypt_finished everywhere, one key) after further rounds.
#
#   SE_STRESS=1                more kill cycles (SE_CRASH_ETCD_CYCLES, default 1 = 22 points; 6 in stress)
#   SE_CRASH_ETCD_KEEP=1       keep the work directory (traces, state dirs) for debugging
#   SE_CRASH_ETCD_SECRETS=N    secrets in etcd (default 600: two 500-value batches)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
# shellcheck source=tests/integration/lib-etcd.sh
. tests/integration/lib-etcd.sh
se_need etcd python3

STRESS=${SE_STRESS:-0}
CYCLES=${SE_CRASH_ETCD_CYCLES:-$([ "$STRESS" = 1 ] && echo 6 || echo 1)}
NSEC=${SE_CRASH_ETCD_SECRETS:-600}
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0"
export SECRETS_ENCRYPT_LOG_TARGET=stderr

# Private copies: a concurrent rebuild must not change the programs mid-run.
se_common_init crash-etcd
se_common_at_exit etcd_stop_all
[ "${SE_CRASH_ETCD_KEEP:-0}" = 1 ] && SE_KEEP_WORK=1
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/stand-in-apiserver tests/fault-inject.so

etcd_start 3 || {
        not_ok "3-member etcd cluster started"
        exit 1
}
ok "3-member etcd cluster on loopback"
se_ha_settings "$W" "$ETCD_ENDPOINTS" 3

# Plaintext secrets, as kube-apiserver stored them before encryption: 100 puts per transaction.
python3 - "${ETCD_CLIENT_URLS[0]}" "$NSEC" <<'EOF' || { not_ok "seeding $NSEC secrets"; exit 1; }
import base64, json, os, sys, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
b = lambda s: base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()
for start in range(0, n, 100):
    ops = [{"request_put": {"key": b("/registry/secrets/ns%d/secret-%05d" % (i % 7, i)),
                            "value": b(b"k8s\0plain-secret-%d-" % i + os.urandom(24).hex().encode())}}
           for i in range(start, min(n, start + 100))]
    req = urllib.request.Request(url + "/v3/kv/txn", json.dumps({"success": ops}).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10).read()
EOF
ok "$NSEC plaintext secrets in etcd"

# run SERVER CMD [ARGS]: one step; "hook" is a restart's ExecStartPre. Fault variables pass through.
run() {
        local i=$1 c=$2
        shift 2
        if [ "$c" = hook ]; then
                "$HOOK" --config "$W/s$i/config.yaml" "$@"
        else
                "$CLI" --config "$W/s$i/config.yaml" "$c" "$@"
        fi
}
cli() {
        local i=$1
        shift
        "$CLI" --config "$W/s$i/config.yaml" "$@"
}
stage_of() { se_stage_of cli "$1" status; }
key_count() { cli "$1" status 2>/dev/null | grep -cE '^ (\*|  )  +(AES-CBC|XSalsa20-POLY1305|AES-GCM) '; }
readable() { # readable I: the stand-in API server of server I would start and read every secret
        local out
        out=$("$STANDIN" --check-only --encryption-provider-config "$W/s$1/cred/encryption-config.json" \
                --datastore "$ETCD_ENDPOINTS" 2>&1) || {
                echo "server-$1: stand-in refuses to start: $(tail -n 1 <<<"$out")"
                return 1
        }
        [[ "$out" == *", $NSEC secrets readable"* ]] || {
                echo "server-$1: secret count changed: $out"
                return 1
        }
}
restart() { # restart I: hook then the start check
        run "$1" hook >"$W/restart.out" 2>&1 || {
                echo "server-$1: hook failed: $(grep -v '^<' "$W/restart.out" | tail -n 1)"
                return 1
        }
        readable "$1"
}
# consistent: every server's files parse and agree with themselves, every secret readable by each.
consistent() {
        local i st sha out
        for i in 1 2 3; do
                [ -e "$W/s$i/cred/encryption-config.json" ] || continue # not started yet
                out=$("$CLI" validate "$W/s$i/cred/encryption-config.json" 2>&1) || {
                        echo "server-$i: config invalid: $out"
                        return 1
                }
                [ "$(stat -c %a "$W/s$i/cred/encryption-config.json")" = 600 ] || {
                        echo "server-$i: config mode $(stat -c %a "$W/s$i/cred/encryption-config.json")"
                        return 1
                }
                st=$(<"$W/s$i/cred/encryption-state.json")
                read -r sha _ < <(sha256sum "$W/s$i/cred/encryption-config.json")
                [ "${st#*-}" = "$sha" ] || {
                        echo "server-$i: encryption-state.json ($st) does not match the config hash $sha"
                        return 1
                }
                readable "$i" || return 1
        done
}
# agree STAGE: all three restarted: identical configs, the same stage.
agree() {
        local i
        cmp -s "$W/s1/cred/encryption-config.json" "$W/s2/cred/encryption-config.json" &&
                cmp -s "$W/s1/cred/encryption-config.json" "$W/s3/cred/encryption-config.json" || {
                echo "configs differ across servers"
                return 1
        }
        for i in 1 2 3; do
                [ "$(stage_of "$i")" = "$1" ] || {
                        echo "server-$i: stage $(stage_of "$i"), want $1"
                        return 1
                }
        done
}

# first starts (not a kill target: covered by the sqlite suite and test-ha.sh)
for i in 1 2 3; do
        restart "$i" >"$W/why" || {
                not_ok "first start of server-$i: $(cat "$W/why")"
                exit 1
        }
done
agree start >"$W/why" && ok "first starts: three servers, one config" || {
        not_ok "first starts: $(cat "$W/why")"
        exit 1
}

# The steps of one cycle: "NAME SERVER COMMAND [ARGS]"; "check STAGE" lines are group checks.
STEPS=(
        "prepare 1 prepare" "restart-1 1 hook" "restart-2 2 hook" "restart-3 3 hook" "check prepare"
        "rotate 1 rotate" "restart-1 1 hook" "restart-2 2 hook" "restart-3 3 hook" "check rotate"
        "reencrypt 1 reencrypt" "restart-1 1 hook" "restart-2 2 hook" "restart-3 3 hook" "check reencrypt_finished"
        "rotate-keys 2 rotate-keys --rolling"
        "roll1-1 1 hook" "roll1-2 2 hook" "roll1-3 3 hook"
        "roll2-1 1 hook" "roll2-2 2 hook" "roll2-3 3 hook"
        "roll3-1 1 hook" "roll3-2 2 hook" "roll3-3 3 hook" "converge"
)

# effect I COMMAND: the CLI command's goal holds on server I (KEYS_BEFORE: keys before it).
effect() {
        case "$2" in
        prepare) [ "$(stage_of "$1")" = prepare ] ;;
        rotate) [ "$(stage_of "$1")" = rotate ] ;;
        reencrypt) [ "$(stage_of "$1")" = reencrypt_finished ] ;;
        # a rolling rotation in progress: the new key, and the rolling mark in our own state
        rotate-keys) [ "$(key_count "$1")" -gt "$KEYS_BEFORE" ] && grep -q '"rolling":true' "$W/s$1/cred/secrets-encrypt.json" ;;
        *) return 0 ;;
        esac
}

# pick CYCLE STEP-INDEX: "N AFTER KIND" from the counting trace of that step, or nothing.
pick() {
        python3 - "$W/trace/$2" "$1" "$2" <<'EOF'
import sys
path, cycle, idx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ops = []
for line in open(path):
    n, call, what = (line.rstrip("\n").split(" ", 2) + ["?"])[:3]
    base = what.rsplit("/", 1)[-1]
    if call == "send":
        if what == "socket":
            continue  # a body continuation: the same request as the line before
        kind = "etcd" + what.split("_", 1)[-1].replace("/v3", "")
    elif base.startswith("encryption-config.json"): kind = "config-write"
    elif base.startswith("encryption-state.json"): kind = "state-write"
    elif base.startswith("secrets-encrypt.json"): kind = "own-state-write"
    else: kind = "local-" + call
    ops.append((int(n), kind))
if not ops:
    sys.exit(0)
kinds = sorted(set(k for _, k in ops))
kind = kinds[(cycle * 7 + idx) % len(kinds)]
ns = [n for n, k in ops if k == kind]
n = ns[(cycle * 3 + idx) % len(ns)]
print(n, (cycle + idx) % 2, kind)
EOF
}

mkdir -p "$W/trace"
FAULT_OPS=write,fsync,rename,unlink,truncate,send
TOTAL=0
KILLED=0
declare -A KIND_COUNT=()
t0=$SECONDS

# cycle C: C=0 counts and traces, C>0 kills every step once.
cycle() {
        local c=$1 idx=0 line name srv cmd args n after kind rc why i round
        for line in "${STEPS[@]}"; do
                idx=$((idx + 1))
                read -r name srv cmd args <<<"$line"
                if [ "$name" = check ]; then
                        why=$(agree "$srv" && consistent)
                        if [ $? = 0 ]; then ok "cycle $c: all restarted at $srv: identical configs, every secret readable"; else
                                not_ok "cycle $c: all restarted at $srv: $why"
                                return 1
                        fi
                        continue
                fi
                if [ "$name" = converge ]; then
                        why=
                        for round in 4 5 6; do
                                agree reencrypt_finished >/dev/null 2>&1 && [ "$(key_count 1)" = 1 ] && break
                                for i in 1 2 3; do why=$(restart "$i") || break 2; done
                        done
                        if [ -z "$why" ] && why=$(agree reencrypt_finished && consistent) && [ "$(key_count 1)" = 1 ]; then
                                ok "cycle $c: rolling rotation converged (reencrypt_finished everywhere, one key)"
                        else
                                not_ok "cycle $c: rolling rotation did not converge: $why (keys $(key_count 1))"
                                for i in 1 2 3; do cli "$i" status 2>&1 | sed "s/^/#   server-$i: /"; done
                                return 1
                        fi
                        continue
                fi
                # shellcheck disable=SC2086
                set -- $args
                KEYS_BEFORE=$(key_count "$srv")
                why=
                if [ "$c" = 0 ]; then
                        rm -f "$W/trace/$idx"
                        SE_FAULT_OPS=$FAULT_OPS SE_FAULT_TRACE="$W/trace/$idx" LD_PRELOAD="$FAULT" \
                                run "$srv" "$cmd" "$@" >"$W/step.out" 2>&1
                        rc=$?
                        [ "$rc" = 0 ] || why="counting pass: exit $rc: $(grep -v '^<' "$W/step.out" | tail -n 1)"
                        [ "$cmd" != hook ] || why=${why:-$(readable "$srv")}
                        [ -z "$why" ] || {
                                not_ok "cycle 0 $name (server-$srv $cmd): $why"
                                return 1
                        }
                        continue
                fi
                read -r n after kind < <(pick "$c" "$idx")
                if [ -n "${SE_CRASH_ETCD_ONLY:-}" ] && [ "$name" != "$SE_CRASH_ETCD_ONLY" ]; then
                        run "$srv" "$cmd" "$@" >/dev/null 2>&1
                        [ "$cmd" != hook ] || readable "$srv" >/dev/null
                        continue
                fi
                [ -n "${n:-}" ] || continue
                TOTAL=$((TOTAL + 1))
                SE_FAULT_OPS=$FAULT_OPS SE_FAULT_KILL_AT=$n SE_FAULT_KILL_AFTER=$after LD_PRELOAD="$FAULT" \
                        run "$srv" "$cmd" "$@" >"$W/step.out" 2>&1
                rc=$?
                if [ "$rc" = 137 ]; then
                        KILLED=$((KILLED + 1))
                        KIND_COUNT[$kind]=$((${KIND_COUNT[$kind]:-0} + 1))
                elif [ "$rc" != 0 ]; then
                        why="not killed, exit $rc: $(grep -v '^<' "$W/step.out" | tail -n 1)"
                fi
                # recovery: the server restarts; a CLI command is run again if its effect is missing
                [ -n "$why" ] || why=$(restart "$srv")
                if [ -z "$why" ] && [ "$cmd" != hook ] && ! effect "$srv" "$cmd"; then
                        if ! run "$srv" "$cmd" "$@" >"$W/rerun.out" 2>&1; then
                                why="rerun of $cmd failed: $(grep -v '^<' "$W/rerun.out" | tail -n 1)"
                        elif ! effect "$srv" "$cmd"; then
                                why="$cmd on server-$srv did not take effect (stage $(stage_of "$srv"), $(key_count "$srv") keys)"
                        fi
                fi
                [ -n "$why" ] || why=$(consistent)
                if [ -n "$why" ]; then
                        not_ok "cycle $c $name (server-$srv $cmd): kill at $n/$kind after=$after (exit $rc): $why"
                        return 1
                fi
                echo "# cycle $c $name: kill at #$n ($kind, $([ "$after" = 1 ] && echo after || echo before)): exit $rc, recovered (${SECONDS}s)"
        done
}

cycle 0 || exit 1
ok "counting cycle: $(cat "$W"/trace/* | wc -l) counted calls over the steps of one rotation cycle"
for ((c = 1; c <= CYCLES; c++)); do
        cycle "$c" || break
done
kinds=$(for k in "${!KIND_COUNT[@]}"; do echo "$k×${KIND_COUNT[$k]}"; done | sort | paste -sd, -)
echo "# $TOTAL kill points in $((SECONDS - t0)) s, $KILLED killed the process [$kinds]"
min=$((CYCLES * 15))
if [ "$FAILED" = 0 ] && [ "$KILLED" -ge "$min" ]; then
        ok "$KILLED kill points on etcd exercised and recovered (at least $min)"
else
        not_ok "$KILLED kill points killed the process (want at least $min), $FAILED failures"
fi
se_common_finish
