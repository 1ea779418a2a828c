#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Prometheus alerting rules (units/secrets-encrypt.rules.yml) with Debian's prometheus package:
#
#   1. `promtool check rules`; the six alerts, each with severity, node, summary and runbook
#   2. `promtool test rules` on tests/data/alerts/*.test.yml: synthetic series, every alert firing
#      and staying silent; a control: the same tests fail on copies with a threshold changed
#   3. a real rotation on a kine SQLite datastore (kine-seed; secrets-encrypt-hook standing for the
#      API server's restarts; secrets-encrypt) writes the metrics file, prometheus-node-exporter's
#      textfile collector serves it on 127.0.0.1, and a short-lived prometheus scrapes it every
#      second and evaluates a copy of the rules made the documented way (every `for:` at 0s, the
#      stuck-stage threshold at 0; the key-age threshold stays 90d). After each step the firing
#      alerts are read from prometheus's /api/v1/alerts and must be exactly the expected ones.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh

RULES=units/secrets-encrypt.rules.yml
DATA=tests/data/alerts
ALERTS="RotationStuck HashMismatch KeyTooOld ReencryptPending HookFailing MetricsAbsent"
NODE=alerts-node-1

PROMTOOL=$(command -v promtool)
if [ -z "$PROMTOOL" ]; then
        echo "ok - # SKIP promtool missing (Debian package prometheus)"
        exit 0
fi
se_common_init alerts
show() { sed 's/^/#   /' | head -n "${1:-40}"; }

# ---- 1. the rules file -------------------------------------------------------------------------
if out=$("$PROMTOOL" check rules "$RULES" 2>&1) && grep -q 'SUCCESS: 6 rules found' <<<"$out"; then
        ok "promtool check rules $RULES: 6 rules"
else
        not_ok "promtool check rules $RULES"
        show <<<"$out"
fi

# Each alert's block: its severity, node label, summary and runbook.
bad=""
for a in $ALERTS; do
        block=$(awk -v a="SecretsEncryption$a" '$0 ~ "^      - alert: " { on = ($3 == a) } on' "$RULES")
        if [ -z "$block" ] || ! grep -qE '^          severity: (warning|critical)$' <<<"$block" ||
                ! grep -qF "          node: \"{{ \$labels.node }}\"" <<<"$block" ||
                ! grep -q '^          summary: ' <<<"$block" || ! grep -q '^          runbook: ' <<<"$block" ||
                ! grep -q '^        for: ' <<<"$block"; then
                bad="$bad $a"
        fi
done
if [ -z "$bad" ] && [ "$(grep -c '^      - alert: ' "$RULES")" = 6 ]; then
        ok "six alerts, each with labels severity and node, annotations summary and runbook, and a for:"
else
        not_ok "alerts missing or incomplete:${bad:- (not six alerts)}"
fi

# ---- 2. promtool unit tests ----------------------------------------------------------------------
for t in "$DATA"/*.test.yml; do
        out=$("$PROMTOOL" test rules "$t" 2>&1)
        rc=$?
        n=$(grep -c '^  - name: ' "$t")
        if [ "$rc" = 0 ] && grep -q SUCCESS <<<"$out"; then
                ok "promtool test rules $(basename "$t"): $n cases"
        else
                not_ok "promtool test rules $(basename "$t") (exit $rc)"
                show 60 <<<"$out"
        fi
done
for a in $ALERTS; do
        fires=$(grep -h -A1 'alertname: SecretsEncryption'"$a"'$' "$DATA"/*.test.yml | grep -c 'exp_alerts:$')
        silent=$(grep -h -A1 'alertname: SecretsEncryption'"$a"'$' "$DATA"/*.test.yml | grep -c 'exp_alerts: \[\]')
        if [ "$fires" -ge 1 ] && [ "$silent" -ge 2 ]; then
                ok "unit tests for SecretsEncryption$a: $fires firing, $silent silent"
        else
                not_ok "SecretsEncryption$a: $fires firing and $silent silent unit-test cases (want ≥ 1 and ≥ 2)"
        fi
done

# Control: the unit tests catch a changed threshold (copies keep the relative rule_files path).
control() { # NAME TESTFILE SED-EXPR
        local d="$W/control-$1"
        mkdir -p "$d/units" "$d/$DATA"
        sed -e "$3" "$RULES" >"$d/$RULES"
        cp "$DATA/$2" "$d/$DATA/"
        if cmp -s "$RULES" "$d/$RULES"; then
                not_ok "control $1: the edit changed nothing"
        elif "$PROMTOOL" test rules "$d/$DATA/$2" >"$d/out" 2>&1; then
                not_ok "control $1: the unit tests pass on rules with a changed threshold"
        else
                ok "control: the unit tests fail when $1"
        fi
}
control "the stuck-stage threshold is 7h" secrets-encrypt.test.yml 's/> 6 \* 3600)/> 7 * 3600)/'
control "the key-age grace is 12h" secrets-encrypt-days.test.yml 's/^        for: 1d /        for: 12h /'

# ---- 3. a real rotation, scraped ----------------------------------------------------------------
NE=$(command -v prometheus-node-exporter || command -v node_exporter)
PROM=$(command -v prometheus)
for tool in "$NE" "$PROM" "$(command -v curl)" "$(command -v jq)"; do
        if [ -z "$tool" ]; then
                echo "ok - # SKIP live scrape: prometheus, prometheus-node-exporter, curl or jq missing"
                se_common_finish
        fi
done
se_common_copy_programs secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/kine-seed
CLI="$BIN/secrets-encrypt"
HOOK="$BIN/secrets-encrypt-hook"
export SECRETS_ENCRYPT_LOG_TARGET=stderr

# Loopback ports below the kernel's ephemeral range (32768+) with no listener, as lib-etcd.sh.
taken=" "
free_port() {
        local p i
        for ((i = 0; i < 200; i++)); do
                p=$((20000 + RANDOM % 12000))
                case "$taken" in *" $p "*) continue ;; esac
                if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                        taken="$taken$p "
                        port=$p
                        return 0
                fi
        done
        return 1
}
wrap=()
if setpriv --help 2>/dev/null | grep -q -- --pdeathsig; then
        wrap=(setpriv --pdeathsig KILL --) # they die with this script even if it is SIGKILLed
fi

STATE="$W/state"
PROMFILE="$W/metrics/secrets-encrypt.prom"
mkdir -p "$STATE" "$W/metrics"
cat >"$W/settings.yaml" <<EOF
state-dir: $STATE
node-name: $NODE
datastore-endpoint: sqlite://$W/db.sqlite
unit: stand-in.service
metrics-file: $PROMFILE
EOF
se_standin_unit "$STATE"
export SECRETS_ENCRYPT_CONFIG="$W/settings.yaml"
# A key from 2020, secrets written under it.
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey-2020-01-01T00:00:00Z","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$(head -c 32 /dev/urandom | base64)" >"$STATE/encryption-config.json"
chmod 600 "$STATE/encryption-config.json"
restart() { "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1; }
if "$BIN/kine-seed" "$W/db.sqlite" 20 --config "$STATE/encryption-config.json" >/dev/null 2>&1 && restart &&
        grep -q '^secrets_encrypt_stage{stage="start"} 1$' "$PROMFILE" &&
        grep -q '^secrets_encrypt_stage_since_timestamp_seconds [1-9][0-9]*$' "$PROMFILE"; then
        ok "kine datastore seeded, hook ran: metrics file at stage start, with the stage-since time"
else
        not_ok "seeding, first hook run or metrics file"
        show <"$W/hook.log"
        [ -f "$PROMFILE" ] && show <"$PROMFILE"
        se_common_finish
fi

# The copy of the rules prometheus evaluates: thresholds overridden the documented way.
sed -E -e 's/^( +for:) [0-9]+[smhd]( .*)?$/\1 0s/' -e 's/> 6 \* 3600\)/> 0)/' "$RULES" >"$W/rules.yml"
if [ "$(grep -cE '^ +for: 0s$' "$W/rules.yml")" = 6 ] && grep -q 'stage_since_timestamp_seconds > 0)' "$W/rules.yml" &&
        "$PROMTOOL" check rules "$W/rules.yml" >/dev/null 2>&1; then
        ok "copy of the rules with every for: at 0s and the stuck threshold at 0 passes promtool check rules"
else
        not_ok "threshold override by a copy"
fi

if free_port && NE_PORT=$port && free_port; then
        PROM_PORT=$port
else
        not_ok "no free loopback port"
        se_common_finish
fi
bg "${wrap[@]}" "$NE" --web.listen-address="127.0.0.1:$NE_PORT" --collector.disable-defaults \
        --collector.textfile --collector.textfile.directory="$W/metrics" >"$W/ne.log" 2>&1
cat >"$W/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $W/rules.yml
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ["127.0.0.1:$NE_PORT"]
EOF
bg "${wrap[@]}" "$PROM" --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/tsdb" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$W/prometheus.log" 2>&1
API="http://127.0.0.1:$PROM_PORT/api/v1"
get() { curl -fsS --noproxy '*' -m 3 "$@" 2>/dev/null; }

# query EXPR: the value of the first series, empty if none.
query() {
        get -G --data-urlencode "query=$1" "$API/query" | jq -r '.data.result[0].value[1] // empty'
}
up=""
for _ in $(seq 150); do
        up=$(query 'up{job="node"}' 2>/dev/null)
        [ "$up" = 1 ] && break
        sleep 0.2
done
if [ "$up" = 1 ]; then
        ok "prometheus on 127.0.0.1:$PROM_PORT scrapes node-exporter on 127.0.0.1:$NE_PORT"
else
        not_ok "prometheus or node-exporter did not come up (up=$up)"
        show 20 <"$W/prometheus.log"
        show 20 <"$W/ne.log"
        se_common_finish
fi

# The firing alerts, "Name[stage]" sorted, one line; $W/alerts.json keeps the answer.
firing() {
        get "$API/alerts" >"$W/alerts.json" || return 1
        jq -r '[.data.alerts[] | select(.state == "firing") | (.labels.alertname | sub("^SecretsEncryption"; ""))
                + (if .labels.stage then "[" + .labels.stage + "]" else "" end)] | sort | join(" ")' "$W/alerts.json"
}
# field NAME labels|annotations KEY: from the last firing() answer.
field() {
        jq -r --arg n "SecretsEncryption$1" --arg k "$2" --arg f "$3" \
                'first(.data.alerts[] | select(.state == "firing" and .labels.alertname == $n)) | .[$k][$f] // ""' \
                "$W/alerts.json"
}
# expect STEP "Name[stage] …": waits (≤ 20 s) until exactly those alerts fire.
expect() {
        local got="" i
        for ((i = 0; i < 100; i++)); do
                got=$(firing) && [ "$got" = "$2" ] && break
                sleep 0.2
        done
        if [ "$got" = "$2" ]; then
                ok "$1: firing ${2:-nothing}"
                return 0
        fi
        not_ok "$1: firing '${got}', expected '${2}'"
        grep -v '^#' "$PROMFILE" 2>/dev/null | show 30
        show 10 <"$W/prometheus.log"
        return 1
}
# labels_ok NAME SEVERITY RUNBOOK-PREFIX: node, instance, severity, summary and runbook as promised.
labels_ok() {
        local node inst sev summary runbook
        node=$(field "$1" labels node)
        inst=$(field "$1" labels instance)
        sev=$(field "$1" labels severity)
        summary=$(field "$1" annotations summary)
        runbook=$(field "$1" annotations runbook)
        if [ "$node" = "$NODE" ] && [ "$inst" = "127.0.0.1:$NE_PORT" ] && [ "$sev" = "$2" ] &&
                [[ "$summary" == *"$NODE"* ]] && [[ "$runbook" == "$3"* ]]; then
                ok "$1: node=$node severity=$sev, runbook \"$3…\""
        else
                not_ok "$1 labels/annotations: node=$node instance=$inst severity=$sev"
                printf 'summary: %s\nrunbook: %s\n' "$summary" "$runbook" | show
        fi
}

# start, with the 2020 key: only the key age (the real 90d threshold) fires
if expect "stage start, active key from 2020" "KeyTooOld"; then
        labels_ok KeyTooOld warning "secrets-encrypt rotate-keys --restart on $NODE"
fi
created=$(query "secrets_encrypt_active_key_created_timestamp_seconds{instance=\"127.0.0.1:$NE_PORT\"}")
since=$(query 'secrets_encrypt_stage_since_timestamp_seconds')
if [ "$created" = 1577836800 ] &&
        grep -q "^secrets_encrypt_stage_since_timestamp_seconds $since\$" "$PROMFILE"; then
        ok "scraped values are the file's: key created 2020-01-01 (1577836800), stage since $since"
else
        not_ok "scraped values: key created '$created', stage since '$since'"
fi

"$CLI" prepare >"$W/cmd.log" 2>&1 || { not_ok "secrets-encrypt prepare"; show <"$W/cmd.log"; }
if expect "prepare" "KeyTooOld RotationStuck[prepare]"; then
        labels_ok RotationStuck warning "secrets-encrypt rotate --restart on $NODE"
fi

if ! restart || ! "$CLI" rotate >"$W/cmd.log" 2>&1; then
        not_ok "restart, secrets-encrypt rotate"
        show <"$W/cmd.log"
fi
if expect "rotate (the new key writes: key age resolved)" "RotationStuck[rotate]"; then
        labels_ok RotationStuck warning "secrets-encrypt reencrypt --restart on $NODE"
fi

# reencrypt before the restart: the safe part only, the re-encryption stays pending
"$CLI" reencrypt >"$W/cmd.log" 2>&1
if grep -q 'reencryption pending' "$W/cmd.log" && grep -q '^secrets_encrypt_reencrypt_pending 1$' "$PROMFILE"; then
        ok "reencrypt before a restart leaves the re-encryption pending"
else
        not_ok "reencrypt before a restart"
        show <"$W/cmd.log"
fi
if expect "re-encryption pending" "ReencryptPending RotationStuck[reencrypt_active]"; then
        labels_ok ReencryptPending warning "systemctl restart k3s on $NODE"
        labels_ok RotationStuck warning "systemctl restart k3s on $NODE"
fi

# the restart (runbook) finishes it: a completed rotation, nothing fires
restart || { not_ok "restart after reencrypt"; show <"$W/hook.log"; }
if expect "restart: rotation finished" "" &&
        [ "$(query 'secrets_encrypt_stage{stage="reencrypt_finished"}')" = 1 ] &&
        [ "$(query 'secrets_encrypt_reencrypt_done')" = 20 ]; then
        ok "scraped: stage reencrypt_finished, 20 secrets re-encrypted"
fi

# a hook failing at the start: an invalid config (the API server would not start)
cp -p "$STATE/encryption-config.json" "$W/config.good"
printf '{"kind":"EncryptionConfiguration"' >"$STATE/encryption-config.json"
restart
rc=$?
if [ "$rc" != 0 ]; then
        ok "hook refuses an invalid config (exit $rc)"
else
        not_ok "hook accepted an invalid config"
fi
if grep -q '^secrets_encrypt_hook_failed ' "$PROMFILE"; then
        if expect "hook failed" "HookFailing"; then
                labels_ok HookFailing critical "journalctl -xu k3s SYSLOG_IDENTIFIER=secrets-encrypt"
        fi
        cp -p "$W/config.good" "$STATE/encryption-config.json"
        restart || not_ok "hook after the config was restored"
        expect "config restored, restart" ""
else
        echo "# SecretsEncryptionHookFailing not checked live: this secrets-encrypt-hook does not report its result"
        echo "# (se_metrics_set_hook_result()); the promtool cases cover the rule"
        cp -p "$W/config.good" "$STATE/encryption-config.json"
        restart || not_ok "hook after the config was restored"
fi
echo "# SecretsEncryptionHashMismatch needs several servers: the promtool cases cover it"

# the metrics vanish (file removed): absent, named by the node that reported; the runbook's
# `secrets-encrypt status` writes the file again
mv "$PROMFILE" "$W/away.prom"
if expect "metrics file removed" "MetricsAbsent"; then
        labels_ok MetricsAbsent warning "secrets-encrypt status on $NODE"
fi
"$CLI" status >"$W/cmd.log" 2>&1 || { not_ok "secrets-encrypt status"; show <"$W/cmd.log"; }
expect "secrets-encrypt status rewrote the metrics file" ""

se_common_finish
