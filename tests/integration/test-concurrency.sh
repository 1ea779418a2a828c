#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Concurrency on one state directory (SPEC §2, §9): helpers and the hook started together while a
# re-encryption is running. Each must either complete or fail with exit 75 and a message naming
# the lock holder's pid (or be refused by k3s's stage rules once the winner moved the stage);
# never interleave. Afterwards the state is consistent, every secret readable (no lost key) and
# the count unchanged. (Concurrent writers during a re-encryption are test-reencrypt's subject; a
# writer that is not restarted between stages would keep a pruned key, as with k3s.)
#
#   SE_CONCURRENCY_ROUNDS=N  (default 3; 10 with SE_STRESS=1)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_common_init concurrency
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed tests/tools/stand-in-apiserver
export SECRETS_ENCRYPT_LOG_TARGET=stderr

NSEC=${SE_CONCURRENCY_SECRETS:-1500}
ROUNDS=${SE_CONCURRENCY_ROUNDS:-3}
[ "${SE_STRESS:-0}" = 1 ] && ROUNDS=${SE_CONCURRENCY_ROUNDS:-10}
ST="$W/state"
DB="$W/db.sqlite"
# 200 secrets/s: rotate-keys holds the lock ~7 s, past the helpers' 5 s wait, within the hook's 30 s
se_settings "$W/config.yaml" "$ST" "sqlite://$DB" node-1 "timeout: 30s" "reencrypt-rate: 200"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
se_kine_seed "$SEED" "$DB" "$NSEC" --value-size 64
"$HOOK" >/dev/null 2>&1 || { not_ok "first start"; exit 1; }

busy_ok=0
done_ok=0
refused=0
bad=0
for ((round = 1; round <= ROUNDS; round++)); do
        # the first holds the lock through a long re-encryption; the others arrive while it runs
        bg "$CLI" rotate-keys >"$W/a.out" 2>&1
        pa=$BG_PID
        sleep 0.3
        bg "$CLI" prepare >"$W/b.out" 2>&1
        pb=$BG_PID
        bg "$HOOK" >"$W/c.out" 2>&1
        pc=$BG_PID
        bg "$CLI" reencrypt -f --skip >"$W/d.out" 2>&1
        pd=$BG_PID
        for p in a b c d; do
                eval "pid=\$p$p"
                wait "$pid"
                rc=$?
                if [ "$rc" = 0 ]; then
                        done_ok=$((done_ok + 1))
                elif [ "$rc" = 75 ] && grep -qE "locked by another secrets-encrypt process \(pid [0-9]+\)" "$W/$p.out"; then
                        holder=$(grep -oE "pid [0-9]+" "$W/$p.out" | head -n 1 | cut -d' ' -f2)
                        case " $pa $pb $pc $pd " in
                        *" $holder "*) busy_ok=$((busy_ok + 1)) ;;
                        *)
                                bad=$((bad + 1))
                                echo "#   round $round: $p names pid $holder, not one of the racers"
                                ;;
                        esac
                elif [ "$rc" = 79 ] && [ "$p" != a ]; then
                        refused=$((refused + 1)) # k3s's stage rules, after the winner moved the stage
                else
                        bad=$((bad + 1))
                        echo "#   round $round: $p exit $rc: $(grep -v '^<' "$W/$p.out" | tail -n 1)"
                fi
        done
        # a restart completes whatever is pending, then the state must be whole
        "$HOOK" >"$W/restart.out" 2>&1 || {
                bad=$((bad + 1))
                echo "#   round $round: restart failed: $(grep -v '^<' "$W/restart.out" | tail -n 1)"
        }
        st=$(cat "$ST/encryption-state.json")
        sha=$(sha256sum <"$ST/encryption-config.json" | cut -d' ' -f1)
        [ "${st#*-}" = "$sha" ] || {
                bad=$((bad + 1))
                echo "#   round $round: state $st, config sha256 $sha"
        }
        out=$("$CLI" verify 2>&1) || {
                bad=$((bad + 1))
                echo "#   round $round: verify: $(tail -n 2 <<<"$out" | paste -sd' ')"
        }
        n=$(head -n 1 <<<"$out" | cut -d' ' -f1)
        [ "$n" -ge "$NSEC" ] 2>/dev/null || {
                bad=$((bad + 1))
                echo "#   round $round: $n secrets"
        }
        # back to a stage where rotate-keys is allowed for the next round
        if "$CLI" status 2>/dev/null | grep -q "Current Rotation Stage: prepare"; then
                "$CLI" rotate >/dev/null 2>&1
                "$HOOK" >/dev/null 2>&1
                "$CLI" reencrypt >/dev/null 2>&1
                "$HOOK" >/dev/null 2>&1
        fi
done
if [ "$bad" = 0 ]; then
        ok "$ROUNDS rounds of rotate-keys + prepare + hook + reencrypt racing: $done_ok completed, $busy_ok got exit 75 naming the holder's pid, $refused refused by the stage rules"
else
        not_ok "$bad problems in $((ROUNDS * 4)) racing commands"
fi
if [ "$busy_ok" -gt 0 ]; then
        ok "the lock was contended ($busy_ok refusals)"
else
        not_ok "the race never met a held lock (timing too loose)"
fi
# the API server's view: it would start on the final config
"$HOOK" >/dev/null 2>&1
if out=$("$STANDIN" --encryption-provider-config "$ST/encryption-config.json" --datastore "sqlite://$DB" --check-only 2>&1); then
        ok "no lost key: $out"
else
        not_ok "final check: $out"
fi
exit $((FAILED > 0))
