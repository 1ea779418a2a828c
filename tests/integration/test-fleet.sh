#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Fleet hooks with real clients (SPEC §8): Ansible reads `facts` as a local fact and runs
# hooks/examples/rolling-rotation.yml twice against a kine SQLite datastore (changed, then not);
# `ensure` --check/--salt/--provider and concurrent runs; hooks.d with a recording, a failing and
# a hanging hook; prometheus-node-exporter scrapes the metrics file through its textfile collector.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
show() { sed 's/^/#   /' | head -n 40; }
se_need python3
se_common_init fleet
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed

# json FILE EXPR: evaluates a Python expression over the JSON object j read from FILE (first line
# that parses when the file has several).
json() {
        python3 - "$1" "$2" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
j = None
for cand in [text] + text.splitlines():
    try:
        j = json.loads(cand)
        break
    except ValueError:
        pass
v = eval(sys.argv[2], {"j": j})
print(json.dumps(v) if not isinstance(v, str) else v)
EOF
}

STATE="$W/state"
DB="$W/db.sqlite"
mkdir -p "$STATE" "$W/hooks.d" "$W/metrics" "$W/facts.d"
se_settings "$W/config.yaml" "$STATE" "sqlite://$DB" fleet-node-1 "hooks-dir: $W/hooks.d" \
        "metrics-file: $W/metrics/secrets-encrypt.prom"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
export SECRETS_ENCRYPT_LOG_TARGET=stderr
export SECRETS_ENCRYPT_FLEET_HOOK_TIMEOUT=1s

# An old timestamped key, as a cluster set up in 2020 would have; secrets written under it.
KEY=$(head -c 32 /dev/urandom | base64)
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey-2020-01-01T00:00:00Z","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$KEY" >"$STATE/encryption-config.json"
chmod 600 "$STATE/encryption-config.json"
if "$SEED" "$DB" 30 --config "$STATE/encryption-config.json" >/dev/null 2>&1 && "$HOOK" >"$W/hook.log" 2>&1; then
        ok "datastore seeded with 30 secrets, hook published stage start"
else
        not_ok "seeding or first hook run"
        show <"$W/hook.log"
        exit 1
fi

# ---- hooks.d: recorder, failing, hanging, and files that must be skipped ----------------------
cat >"$W/hooks.d/10-record" <<EOF
#!/bin/sh
{ env | grep '^SECRETS_ENCRYPT_' | sort; echo ---; } >> "$W/hook-env.log"
EOF
cat >"$W/hooks.d/20-fail" <<'EOF'
#!/bin/sh
echo "20-fail ran" >&2
exit 4
EOF
cat >"$W/hooks.d/30-hang" <<EOF
#!/bin/sh
echo \$\$ >> "$W/hang.pids"
sleep 300
EOF
cat >"$W/hooks.d/40-after" <<EOF
#!/bin/sh
echo "\$SECRETS_ENCRYPT_STAGE" >> "$W/after.log"
EOF
printf '#!/bin/sh\ntouch %s/skipped\n' "$W" >"$W/hooks.d/50-not-executable"
printf '#!/bin/sh\ntouch %s/skipped\n' "$W" >"$W/hooks.d/60-backup~"
printf '#!/bin/sh\ntouch %s/skipped\n' "$W" >"$W/hooks.d/.70-dotfile"
chmod 755 "$W/hooks.d/10-record" "$W/hooks.d/20-fail" "$W/hooks.d/30-hang" "$W/hooks.d/40-after" \
        "$W/hooks.d/60-backup~" "$W/hooks.d/.70-dotfile"

# ---- facts as an Ansible local fact -----------------------------------------------------------
export HOME="$W/home" ANSIBLE_LOCAL_TEMP="$W/ansible-tmp" ANSIBLE_REMOTE_TEMP="$W/ansible-tmp" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 \
        ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_DEPRECATION_WARNINGS=0 \
        ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_GATHERING=explicit SECRETS_ENCRYPT_BIN="$CLI"
mkdir -p "$HOME"
if ! "$CLI" facts >"$W/facts.json" 2>"$W/facts.err"; then
        not_ok "secrets-encrypt facts"
        show <"$W/facts.err"
elif [ "$(json "$W/facts.json" 'j["active_key"]')" = aescbckey-2020-01-01T00:00:00Z ] &&
        [ "$(json "$W/facts.json" 'j["stage"]')" = start ] &&
        [ "$(json "$W/facts.json" 'j["active_key_age_days"] > 365')" = true ] &&
        ! grep -qF "$KEY" "$W/facts.json"; then
        ok "facts: stage, active key and its age, no key material"
else
        not_ok "facts output"
        show <"$W/facts.json"
fi

install -m 0755 hooks/examples/secrets_encrypt.fact "$W/facts.d/secrets_encrypt.fact"
if ! command -v ansible >/dev/null; then
        ok "# SKIP ansible-core missing"
else
        ansible localhost -i localhost, -c local -m setup -a "filter=ansible_local fact_path=$W/facts.d" \
                >"$W/setup.out" 2>&1
        rc=$?
        sed -n '/=> {/,$p' "$W/setup.out" | sed '1s/.*=> {/{/' >"$W/setup.json"
        se='j["ansible_facts"]["ansible_local"]["secrets_encrypt"]'
        if [ "$rc" = 0 ] && [ "$(json "$W/setup.json" "$se[\"stage\"]")" = start ] &&
                [ "$(json "$W/setup.json" "$se[\"active_key\"]")" = aescbckey-2020-01-01T00:00:00Z ] &&
                [ "$(json "$W/setup.json" "$se[\"node\"]")" = fleet-node-1 ] &&
                [ "$(json "$W/setup.json" "$se[\"config_hash\"]")" = "$(json "$W/facts.json" 'j["config_hash"]')" ]; then
                ok "ansible -m setup: ansible_local.secrets_encrypt has stage, active_key, node, config_hash"
        else
                not_ok "ansible -m setup local fact (exit $rc)"
                show <"$W/setup.out"
        fi

        # ---- the example playbook, twice ----------------------------------------------------------
        # No systemd here: the playbook's restart_cmd runs the hook, as the unit's restart would.
        HOOK_CMD="$HOOK"
        play() {
                ansible-playbook -i localhost, -c local "$SE_ROOT/hooks/examples/rolling-rotation.yml" \
                        -e target=localhost -e use_become=false -e restart_unit= \
                        -e "restart_cmd='$HOOK_CMD'" \
                        -e "secrets_encrypt_cmd='$CLI --config $W/config.yaml'" -e max_key_age=90d "$@"
        }
        play --check >"$W/play0.out" 2>&1
        rc0=$?
        keys_before=$("$CLI" status 2>/dev/null | sed -n '/^-----/,$p')
        if [ "$rc0" = 0 ] && grep -q 'would rotate-keys' "$W/play0.out" &&
                grep -qE 'localhost +: ok=[0-9]+ +changed=1 ' "$W/play0.out" &&
                [ "$keys_before" = "$(printf -- '------  --------  ----\n *      AES-CBC   aescbckey-2020-01-01T00:00:00Z')" ]; then
                ok "ansible-playbook --check: would rotate, key table unchanged"
        else
                not_ok "ansible-playbook --check (exit $rc0)"
                show <"$W/play0.out"
                echo "$keys_before" | show
        fi
        play >"$W/play1.out" 2>&1
        rc1=$?
        if [ "$rc1" = 0 ] && grep -qE 'localhost +: ok=[0-9]+ +changed=2 ' "$W/play1.out"; then
                ok "ansible-playbook first run: changed=2 (ensure, then the restart that completes it)"
        else
                not_ok "ansible-playbook first run (exit $rc1)"
                show <"$W/play1.out"
        fi
        play >"$W/play2.out" 2>&1
        rc2=$?
        if [ "$rc2" = 0 ] && grep -qE 'localhost +: ok=[0-9]+ +changed=0 ' "$W/play2.out" &&
                grep -q 'nothing to do' "$W/play2.out"; then
                ok "ansible-playbook second run: changed=0 (idempotent)"
        else
                not_ok "ansible-playbook second run (exit $rc2)"
                show <"$W/play2.out"
        fi
        "$CLI" status >"$W/status.out" 2>&1
        new_key=$(awk '$1 == "*" { print $NF }' "$W/status.out")
        if grep -q '^Current Rotation Stage: reencrypt_finished$' "$W/status.out" &&
                [[ "$new_key" == aescbckey-"$(date -u +%Y)"* || "$new_key" == aescbckey-"$(date +%Y)"* ]] &&
                ! grep -q 'aescbckey-2020' "$W/status.out"; then
                ok "key table really changed: active $new_key, old key removed"
        else
                not_ok "key table after the playbook"
                show <"$W/status.out"
        fi
        if "$CLI" verify >"$W/verify.out" 2>&1 && grep -q "$new_key" "$W/verify.out"; then
                ok "every secret readable, under the new key"
        else
                not_ok "verify after rotation"
                show <"$W/verify.out"
        fi
fi

# ---- hooks.d outcome of the rotation(s) above (or a direct ensure without ansible) -------------
if ! command -v ansible >/dev/null; then
        "$CLI" ensure --rotated-within 90d >/dev/null 2>"$W/ensure-direct.err"
fi
if grep -q '^SECRETS_ENCRYPT_EVENT=stage-changed$' "$W/hook-env.log" 2>/dev/null &&
        grep -q '^SECRETS_ENCRYPT_STAGE=reencrypt_finished$' "$W/hook-env.log" &&
        grep -q '^SECRETS_ENCRYPT_PREVIOUS_STAGE=reencrypt_active$' "$W/hook-env.log" &&
        grep -q '^SECRETS_ENCRYPT_NODE=fleet-node-1$' "$W/hook-env.log" &&
        grep -qE '^SECRETS_ENCRYPT_HASH=[0-9a-f]{64}$' "$W/hook-env.log"; then
        ok "hooks.d: recorder saw stage-changed with STAGE, PREVIOUS_STAGE, NODE, HASH"
else
        not_ok "hooks.d recorder environment"
        show <"$W/hook-env.log"
fi
if grep -q reencrypt_finished "$W/after.log" 2>/dev/null && [ ! -e "$W/skipped" ]; then
        ok "hooks.d: hooks after the failing and hanging ones still ran; skipped files did not"
else
        not_ok "hooks.d ordering/skipping"
fi
alive=""
for p in $(cat "$W/hang.pids" 2>/dev/null); do
        kill -0 "$p" 2>/dev/null && alive="$alive $p"
done
if [ -s "$W/hang.pids" ] && [ -z "$alive" ]; then
        ok "hooks.d: hanging hook killed after its timeout ($(wc -l <"$W/hang.pids") runs)"
else
        not_ok "hanging hooks still alive:$alive"
fi

# ---- ensure directly: --check, --salt, failures, metrics -------------------------------------
"$CLI" ensure --rotated-within 90d --salt >"$W/salt.out" 2>"$W/salt.err"
rc=$?
last=$(tail -n 1 "$W/salt.out")
if [ "$rc" = 0 ] && [[ "$last" == 'changed=no comment="nothing to do'* ]] &&
        [ "$(head -n 1 "$W/salt.out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["changed"], j["failed"], j["rc"])')" = "False False 0" ]; then
        ok "ensure --salt: JSON line, then Salt's stateful last line changed=no"
else
        not_ok "ensure --salt (exit $rc)"
        show <"$W/salt.out"
fi
start=$(date +%s)
"$CLI" ensure --rotated-within 1s --check --salt >"$W/check.out" 2>"$W/check.err"
rc=$?
sleep 2
gen_before=$(sha256sum <"$STATE/encryption-config.json")
"$CLI" ensure --rotated-within 1s --check >"$W/check.out" 2>"$W/check.err"
rc=$?
if [ "$rc" = 0 ] && [ "$(json "$W/check.out" 'j["changed"] and j["check_mode"] and j["actions"] == ["rotate-keys"]')" = true ] &&
        [ "$gen_before" = "$(sha256sum <"$STATE/encryption-config.json")" ]; then
        ok "ensure --check reports rotate-keys and changes nothing"
else
        not_ok "ensure --check (exit $rc)"
        show <"$W/check.out"
fi

"$CLI" ensure --rotated-within 1s >"$W/rot.out" 2>"$W/rot.err"
rc=$?
"$HOOK" >>"$W/rot.err" 2>&1 # the restart that completes it
end=$(date +%s)
if [ "$rc" = 0 ] && [ "$(json "$W/rot.out" 'j["changed"]')" = true ] &&
        grep -q 'Fleet hook .*20-fail failed on stage-changed event: exit status 4' "$W/rot.err" &&
        grep -q '30-hang failed on stage-changed event: timed out' "$W/rot.err" &&
        [ $((end - start)) -lt 60 ]; then
        ok "a failing and a hanging hook are logged (fleet-hook-failed), the rotation succeeds"
else
        not_ok "rotation with failing hooks (exit $rc)"
        show <"$W/rot.err"
fi
if [ "$(head -c 1 "$W/rot.out")" = "{" ] && ! grep -q '20-fail ran' "$W/rot.out"; then
        ok "hook output never mixes into ensure's JSON on stdout"
else
        not_ok "stdout of ensure polluted"
        show <"$W/rot.out"
fi

# concurrent runs on one state directory: the lock serialises them, exactly one acts
rm -f "$W/hooks.d/30-hang" # keep this part quick
"$CLI" ensure --provider secretbox >"$W/c1.out" 2>"$W/c1.err" &
p1=$!
"$CLI" ensure --provider secretbox >"$W/c2.out" 2>"$W/c2.err" &
p2=$!
wait "$p1"
r1=$?
wait "$p2"
r2=$?
"$HOOK" >/dev/null 2>&1 # the restart that completes the migration
c1=$(json "$W/c1.out" 'j["changed"]')
c2=$(json "$W/c2.out" 'j["changed"]')
if [ "$r1$r2" = 00 ] && [ "$(printf '%s\n%s\n' "$c1" "$c2" | sort | tr '\n' ' ')" = "false true " ] &&
        [ "$(json "$W/c1.out" 'j["provider"]')" = secretbox ] && [ "$(json "$W/c2.out" 'j["provider"]')" = secretbox ]; then
        ok "two concurrent ensure --provider secretbox: one migrates, the other finds nothing to do"
else
        not_ok "concurrent ensure ($r1/$r2, changed $c1/$c2)"
        cat "$W/c1.out" "$W/c1.err" "$W/c2.out" "$W/c2.err" | show
fi

"$CLI" --state-dir "$W/empty-state" --metrics-file "$W/empty.prom" --hooks-dir "$W/none" ensure --rotated-within 90d >"$W/fail.out" 2>"$W/fail.err"
rc=$?
if [ "$rc" = 79 ] && [ "$(json "$W/fail.out" 'j["failed"] and j["rc"] == 79 and not j["changed"]')" = true ]; then
        ok "ensure on an unconfigured node: failed=true, rc 79 in JSON and exit code"
else
        not_ok "ensure failure shape (exit $rc)"
        show <"$W/fail.out"
fi

# ---- metrics through prometheus-node-exporter -------------------------------------------------
PROM="$W/metrics/secrets-encrypt.prom"
if [ -f "$PROM" ] && [ "$(stat -c %a "$PROM")" = 644 ] &&
        grep -q '^secrets_encrypt_stage{stage="reencrypt_finished"} 1$' "$PROM" &&
        grep -q '^secrets_encrypt_info{version="[^"]*",node="fleet-node-1",provider="secretbox"} 1$' "$PROM"; then
        ok "metrics-file written (0644) with the current stage and provider"
else
        not_ok "metrics-file"
        [ -f "$PROM" ] && show <"$PROM"
fi

NE=$(command -v prometheus-node-exporter || command -v node_exporter)
if [ -z "$NE" ] || ! command -v curl >/dev/null; then
        ok "# SKIP prometheus-node-exporter or curl missing"
else
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        bg "$NE" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults --collector.textfile \
                --collector.textfile.directory="$W/metrics" >"$W/ne.log" 2>&1
        for _ in $(seq 100); do
                curl -fsS "http://127.0.0.1:$port/metrics" >"$W/scrape.txt" 2>/dev/null && break
                sleep 0.1
        done
        if grep -q '^secrets_encrypt_stage{stage="reencrypt_finished"} 1$' "$W/scrape.txt" &&
                grep -q '^secrets_encrypt_keys [0-9]' "$W/scrape.txt" &&
                grep -q '^secrets_encrypt_last_rotation_timestamp_seconds [1-9]' "$W/scrape.txt" &&
                grep -q '^secrets_encrypt_reencrypt_done 30$' "$W/scrape.txt" &&
                grep -q '^secrets_encrypt_reencrypt_total 30$' "$W/scrape.txt" &&
                grep -q '^secrets_encrypt_hashes_match 1$' "$W/scrape.txt" &&
                grep -q '^# TYPE secrets_encrypt_stage gauge$' "$W/scrape.txt" &&
                grep -q '^node_textfile_scrape_error 0$' "$W/scrape.txt"; then
                ok "node-exporter textfile collector exports our metrics, node_textfile_scrape_error 0"
        else
                not_ok "node-exporter scrape"
                grep -E 'secrets_encrypt|textfile' "$W/scrape.txt" | show
                show <"$W/ne.log"
        fi
        # the check can fail: a broken file makes node-exporter report a scrape error
        echo 'broken metric line {' >"$W/metrics/broken.prom"
        curl -fsS "http://127.0.0.1:$port/metrics" >"$W/scrape2.txt" 2>/dev/null
        rm -f "$W/metrics/broken.prom"
        if grep -q '^node_textfile_scrape_error 1$' "$W/scrape2.txt"; then
                ok "node-exporter flags a malformed textfile (control)"
        else
                not_ok "node-exporter did not flag a malformed file"
        fi
fi

[ "$FAILED" = 0 ]
