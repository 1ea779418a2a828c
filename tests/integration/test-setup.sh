#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `secrets-encrypt setup` on faithful fake hosts (issue 14), under the private systemd user manager
# (lib-systemd.sh). Each host gets fresh overlays on /etc and /var/lib, so /etc/rancher,
# /var/lib/rancher, /etc/secrets-encrypt and /var/lib/secrets-encrypt are the real paths and the
# machine's own files stay untouched:
#   1. k3s on SQLite: nothing works before setup; dry run changes nothing; setup, idempotent;
#      a rotation through the drop-in keeps every secret readable; undo refused while our keys
#      are in use; a snippet removed by hand makes every mutating command refuse (79)
#   2. k3s that encrypts itself: status reads k3s's own files; setup imports them byte for byte
#      and never writes k3s's server/cred; every value stays readable (independent reader);
#      undo allowed while k3s's files hold our keys, refused after a rotation
#   3. a plain kube-apiserver.service: its own config imported, ExecStart= replaced by a drop-in,
#      rotation, undo refused
#   4. k3s on embedded etcd: a real etcd with client-certificate TLS; the JSON gateway found in
#      k3s's etcd config file (not the gRPC port); a rolling rotation through the hook; a second
#      server whose k3s config differs is refused
#   5. rke2: its config file, the kube-apiserver static pod's extra mount; undo before any key
# k3s itself is a shell stand-in (fake-k3s) that merges config.yaml and config.yaml.d the way
# k3s does, independently of our code, and runs the stand-in API server with the config named.
set -u
. "$(dirname "$0")/lib-systemd.sh"
SE_HARNESS_TIMEOUT=${SE_HARNESS_TIMEOUT:-600}
se_harness_reexec "$@"
. "$SE_ROOT/tests/integration/lib-etcd.sh"

command -v python3 >/dev/null || { echo "ok - # SKIP python3 missing"; exit 0; }

W="$SE_HARNESS_DIR/work"
mkdir -p "$W/bin"
for f in secrets-encrypt secrets-encrypt-hook libsecrets-encrypt.so.0 tests/tools/stand-in-apiserver \
        tests/tools/kine-seed; do
        [ -e "$SE_BUILD/$f" ] || { echo "not ok - $SE_BUILD/$f not built (make all tests)"; exit 1; }
        cp -L "$SE_BUILD/$f" "$W/bin/" || exit 1
done
CLI="$W/bin/secrets-encrypt"
STANDIN="$W/bin/stand-in-apiserver"
SEED="$W/bin/kine-seed"
INSPECT="$SE_ROOT/tests/integration/kine-inspect.py"
OUT="$W/out"
unset SECRETS_ENCRYPT_CONFIG

etcd_install_trap
se_harness_start || exit 1

# cli ARGS...: the helper as an operator runs it (user manager); output in $OUT, exit in $rc.
cli() {
        "$CLI" --user "$@" >"$OUT" 2>&1
        rc=$?
        return 0
}
cli_check() { # cli_check NAME WANT-RC ARGS...
        local name=$1 want=$2
        shift 2
        cli "$@"
        if [ "$rc" = "$want" ]; then
                se_ok "$name"
        else
                se_not_ok "$name (exit $rc, want $want)"
                sed 's/^/#   /' "$OUT" | head -n 20
        fi
}
out_has() { grep -qF -- "$1" "$OUT"; }

# ---- fake hosts ------------------------------------------------------------------------------------
HOST_N=0
fresh_host() {
        local d
        se_systemctl stop k3s.service rke2-server.service kube-apiserver.service >/dev/null 2>&1
        se_common_unmount
        HOST_N=$((HOST_N + 1))
        d="$W/host$HOST_N"
        mkdir -p "$d/eu" "$d/ew" "$d/vu" "$d/vw"
        mount -t overlay se-etc -o "lowerdir=/etc,upperdir=$d/eu,workdir=$d/ew" /etc || return 1
        mount -t overlay se-varlib -o "lowerdir=/var/lib,upperdir=$d/vu,workdir=$d/vw" /var/lib || return 1
        rm -rf /etc/rancher /var/lib/rancher /etc/secrets-encrypt /var/lib/secrets-encrypt
        rm -rf "$SE_UNIT_DIR"/*
        se_systemctl daemon-reload
}
se_common_unmount() {
        mountpoint -q /var/lib && umount -l /var/lib
        mountpoint -q /etc && umount -l /etc
        return 0
}

# fake-k3s: k3s's config merge (config.yaml, then config.yaml.d/*.yaml|*.yml by name; "key+:"
# appends) reduced to what decides the API server's encryption config, and k3s's rule that
# kube-apiserver-arg overrides its own --encryption-provider-config (server/cred when
# secrets-encryption is on).
cat >"$W/bin/fake-k3s" <<'EOF'
#!/bin/bash
dist=${DIST:-k3s}
files=/etc/rancher/$dist/config.yaml
for f in $(ls /etc/rancher/$dist/config.yaml.d/ 2>/dev/null | grep -E '\.ya?ml$' | sort); do
        files="$files /etc/rancher/$dist/config.yaml.d/$f"
done
enc=false epc=
for f in $files; do
        [ -f "$f" ] || continue
        v=$(sed -n 's/^secrets-encryption: *//p' "$f" | tail -n 1)
        [ -n "$v" ] && enc=$v
        v=$(sed -n 's/^ *- *"\{0,1\}encryption-provider-config=\([^"]*\)"\{0,1\}$/\1/p' "$f" | tail -n 1)
        [ -n "$v" ] && epc=$v
done
[ -z "$epc" ] && [ "$enc" = true ] && epc=/var/lib/rancher/$dist/server/cred/encryption-config.json
[ -z "$epc" ] && epc=$IDENTITY_CONFIG
echo "fake-$dist: kube-apiserver --encryption-provider-config=$epc"
exec "$STANDIN" --encryption-provider-config "$epc" --datastore "$DATASTORE" $TLS_ARGS --write-interval-ms 200
EOF
chmod +x "$W/bin/fake-k3s"
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"identity":{}}]}]}' >"$W/identity.json"

install_dist_unit() { # install_dist_unit UNIT DIST DATASTORE [TLS_ARGS]
        se_unit_install "$1" "[Unit]
Description=fake $2 server (secrets-encrypt setup test)
StartLimitIntervalSec=0

[Service]
Type=notify
Environment=DIST=$2 STANDIN=$STANDIN IDENTITY_CONFIG=$W/identity.json DATASTORE=$3 \"TLS_ARGS=${4:-}\"
ExecStart=$W/bin/fake-k3s server --write-kubeconfig-mode 644
Restart=no
TimeoutStartSec=180"
}

# snapshot: every file setup may touch, with its content hash.
snapshot() { # (the datastores change while the API server runs: left out)
        find /etc/rancher /etc/secrets-encrypt /var/lib/secrets-encrypt /var/lib/rancher "$SE_UNIT_DIR" \
                -path '*/server/db' -prune -o -type f -print0 2>/dev/null | sort -z | xargs -0r sha256sum
}
unit_active() { [ "$(se_unit_prop "$1" ActiveState)" = active ]; }
restart_ok() { # restart_ok NAME UNIT
        if se_systemctl restart "$2" >"$OUT" 2>&1 && unit_active "$2"; then
                se_ok "$1"
        else
                se_not_ok "$1"
                se_dump_unit "$2" 30
        fi
}
# The config the running stand-in was started with (from its own process).
running_config() {
        local pid
        pid=$(se_unit_prop "$1" MainPID)
        tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^--encryption-provider-config$/{n;p}'
}
key_age() { date -u -d "-$1 days" +%Y-%m-%dT%H:%M:%SZ; }

# =================================================================================================
# 1. k3s on SQLite
fresh_host || { se_not_ok "overlays on /etc and /var/lib"; exit 1; }
DB=/var/lib/rancher/k3s/server/db/state.db
mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s/server/db
printf 'write-kubeconfig-mode: "0644"\nkube-apiserver-arg:\n  - audit-log-maxage=30\n' >/etc/rancher/k3s/config.yaml
"$SEED" "$DB" 20 >/dev/null 2>&1 || se_not_ok "kine-seed"
install_dist_unit k3s.service k3s "sqlite://$DB"
restart_ok "k3s/sqlite: k3s runs before setup (no encryption)" k3s.service
operator_cfg=$(sha256sum </etc/rancher/k3s/config.yaml)

# The hook's drop-in without settings (copied by hand, or a package's example): it changes nothing.
mkdir -p "$SE_UNIT_DIR/k3s.service.d"
printf '[Service]\nExecStartPre=%s --unit=%%n\n' "$W/bin/secrets-encrypt-hook" >"$SE_UNIT_DIR/k3s.service.d/50-secrets-encrypt.conf"
se_systemctl daemon-reload
cursor=$(se_journal_cursor)
restart_ok "k3s/sqlite: hook without settings: k3s starts unchanged" k3s.service
se_check "k3s/sqlite: hook without settings: a not-configured event" \
        test -n "$(se_journal_events 9ded1fc177a941adb9304f6488569da6 "$cursor")"
se_check "k3s/sqlite: hook without settings: nothing created" test ! -e /var/lib/secrets-encrypt
se_check "k3s/sqlite: hook without settings: the API server reads no config of ours" \
        test "$(running_config k3s.service)" = "$W/identity.json"
rm -rf "$SE_UNIT_DIR/k3s.service.d"
se_systemctl daemon-reload

cli_check "k3s/sqlite: status before setup answers" 0 status
se_check "k3s/sqlite: status names the detected state dir and datastore" \
        grep -qF "datastore sqlite://$DB" "$OUT"
se_check "k3s/sqlite: status created no directory" test ! -e /var/lib/secrets-encrypt
cli_check "k3s/sqlite: enable before setup is refused" 79 enable
se_check "k3s/sqlite: the refusal says to run setup" out_has "secrets-encrypt setup"
cli_check "k3s/sqlite: rotate-keys before setup is refused" 79 rotate-keys
se_check "k3s/sqlite: nothing written by the refusals" test ! -e /var/lib/secrets-encrypt

before=$(snapshot)
cli_check "k3s/sqlite: setup --dry-run" 0 setup --dry-run
se_check "k3s/sqlite: dry run shows the snippet" out_has "+  - encryption-provider-config=/var/lib/secrets-encrypt/encryption-config.json"
se_check "k3s/sqlite: dry run shows the hook drop-in" out_has "+ExecStartPre=$W/bin/secrets-encrypt-hook --unit=%n"
se_check "k3s/sqlite: dry run changed nothing" test "$before" = "$(snapshot)"

cli_check "k3s/sqlite: setup" 0 setup
se_check "k3s/sqlite: settings name k3s's datastore" grep -qx "datastore-endpoint: \"sqlite://$DB\"" /etc/secrets-encrypt/config.yaml
se_check "k3s/sqlite: state dir is ours, not k3s's server/cred" grep -qx "state-dir: /var/lib/secrets-encrypt" /etc/secrets-encrypt/config.yaml
se_check "k3s/sqlite: snippet appends (kube-apiserver-arg+), turns k3s's management off" bash -c \
        "grep -qx 'kube-apiserver-arg+:' /etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml &&
         grep -qx 'secrets-encryption: false' /etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml"
se_check "k3s/sqlite: the operator's config.yaml is untouched" test "$operator_cfg" = "$(sha256sum </etc/rancher/k3s/config.yaml)"
se_check "k3s/sqlite: setup reloaded the manager: the hook is k3s's ExecStartPre" bash -c \
        "systemctl --user show -p ExecStartPre --value k3s.service | grep -q 'secrets-encrypt-hook --unit=k3s.service'"
se_check "k3s/sqlite: setup printed the one restart" out_has "To take effect: systemctl --user restart k3s.service"
after_setup=$(snapshot)
cli_check "k3s/sqlite: setup again" 0 setup
se_check "k3s/sqlite: a second setup has nothing to change" out_has "nothing to change"
cli_check "k3s/sqlite: dry run after setup" 0 setup --dry-run
se_check "k3s/sqlite: dry run after setup: 0 files" out_has "0 file(s) would change"
se_check "k3s/sqlite: nothing rewritten by the second setup" test "$after_setup" = "$(snapshot)"

restart_ok "k3s/sqlite: restart with the hook" k3s.service
se_check "k3s/sqlite: the API server reads our config" \
        test "$(running_config k3s.service)" = /var/lib/secrets-encrypt/encryption-config.json
cli_check "k3s/sqlite: rotate-keys --restart" 0 rotate-keys --restart
se_check "k3s/sqlite: k3s's line" out_has "keys rotated, reencryption finished"
se_check "k3s/sqlite: k3s active after the rotation (its start check read every secret)" unit_active k3s.service
newkey=$(python3 "$INSPECT" keys /var/lib/secrets-encrypt/encryption-config.json 0 | head -n 1 | cut -d: -f2-)
se_systemctl stop k3s.service # its writes would race the two counts
se_check "k3s/sqlite: every secret under the new key ($newkey), independent reader" bash -c \
        "test \"\$(python3 '$INSPECT' count '$DB' /registry/secrets/ 'k8s:enc:aescbc:v1:$newkey:')\" = \
              \"\$(python3 '$INSPECT' count '$DB' /registry/secrets/ '')\""

before=$(snapshot)
cli_check "k3s/sqlite: undo refused while our keys are in use" 79 setup --undo
se_check "k3s/sqlite: the refusal names the key and the fix" bash -c "grep -qF '$newkey' '$OUT' && grep -qF 'disable' '$OUT'"
se_check "k3s/sqlite: refused undo changed nothing" test "$before" = "$(snapshot)"

# An operator removes the snippet by hand: k3s would no longer read our config.
mv /etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml "$W/snippet.bak"
for cmd in rotate-keys prepare "disable"; do
        cli_check "k3s/sqlite: snippet gone: $cmd refused" 79 $cmd
done
se_check "k3s/sqlite: the refusal says k3s does not read the config" out_has "does not read /var/lib/secrets-encrypt/encryption-config.json"
se_check "k3s/sqlite: snippet gone: the hook refuses the start" bash -c \
        "! systemctl --user restart k3s.service 2>/dev/null"
mv "$W/snippet.bak" /etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml
restart_ok "k3s/sqlite: snippet back: k3s starts" k3s.service
# k3s's own secrets-encryption switched on again by the operator: keys would change in a file k3s
# ignores (its own server/cred wins only without our kube-apiserver-arg, but it manages it too)
printf 'secrets-encryption: true\n' >/etc/rancher/k3s/config.yaml.d/90-operator.yaml
cli_check "k3s/sqlite: k3s managing encryption again: rotate-keys refused" 79 rotate-keys
rm /etc/rancher/k3s/config.yaml.d/90-operator.yaml
se_systemctl stop k3s.service

# =================================================================================================
# 2. k3s with secrets-encryption on: takeover
fresh_host || exit 1
DB=/var/lib/rancher/k3s/server/db/state.db
CRED=/var/lib/rancher/k3s/server/cred
mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s/server/db "$CRED"
printf 'secrets-encryption: true\n' >/etc/rancher/k3s/config.yaml
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$(head -c 32 /dev/urandom | base64)" >"$CRED/encryption-config.json"
printf 'start-%s' "$(sha256sum <"$CRED/encryption-config.json" | cut -d' ' -f1)" >"$CRED/encryption-state.json"
chmod 0600 "$CRED"/*.json
"$SEED" "$DB" 20 --config "$CRED/encryption-config.json" >/dev/null 2>&1 || se_not_ok "kine-seed (encrypted)"
cred_before=$(sha256sum "$CRED"/*)
install_dist_unit k3s.service k3s "sqlite://$DB"
restart_ok "k3s/own: k3s runs with its own encryption" k3s.service

cli_check "k3s/own: status before setup" 0 status
se_check "k3s/own: status reads k3s's own files: Enabled" grep -qx "Encryption Status: Enabled" "$OUT"
se_check "k3s/own: status: stage start" grep -qx "Current Rotation Stage: start" "$OUT"

before=$(snapshot)
# --secrets-encryption on k3s's command line: a config file cannot turn it off
se_unit_install k3s.service "$(sed 's|^ExecStart=.*|& --secrets-encryption|' "$SE_UNIT_DIR/k3s.service")"
cli_check "k3s/own: --secrets-encryption in ExecStart: setup refused" 79 setup
se_check "k3s/own: the refusal says to remove the flag" out_has "remove the flag"
install_dist_unit k3s.service k3s "sqlite://$DB"
cli_check "k3s/own: setup --dry-run" 0 setup --dry-run
se_check "k3s/own: dry run shows the import without key bytes" bash -c \
        "grep -qF 'keys not shown' '$OUT' && ! grep -qF \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"resources\"][0][\"providers\"][0][\"aescbc\"][\"keys\"][0][\"secret\"])' '$CRED/encryption-config.json')\" '$OUT'"
se_check "k3s/own: dry run changed nothing" test "$before" = "$(snapshot)"
cli_check "k3s/own: setup (takeover)" 0 setup
se_check "k3s/own: config imported byte for byte" cmp -s "$CRED/encryption-config.json" /var/lib/secrets-encrypt/encryption-config.json
se_check "k3s/own: stage imported byte for byte" cmp -s "$CRED/encryption-state.json" /var/lib/secrets-encrypt/encryption-state.json
se_check "k3s/own: snippet turns k3s's management off" grep -qx 'secrets-encryption: false' /etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml
se_check "k3s/own: k3s's server/cred untouched" test "$cred_before" = "$(sha256sum "$CRED"/*)"
restart_ok "k3s/own: restart after the takeover (every value readable)" k3s.service
se_check "k3s/own: the API server reads our copy" \
        test "$(running_config k3s.service)" = /var/lib/secrets-encrypt/encryption-config.json
se_check "k3s/own: every seeded secret still under k3s's key (independent reader)" \
        test "$(python3 "$INSPECT" count "$DB" /registry/secrets/ 'k8s:enc:aescbc:v1:aescbckey:')" -ge 20
cli_check "k3s/own: undo --dry-run allowed: k3s's files hold our keys" 0 setup --undo --dry-run
se_check "k3s/own: undo would remove the snippet and the drop-in" out_has "2 file(s) would change"
cli_check "k3s/own: rotate-keys --restart" 0 rotate-keys --restart
se_check "k3s/own: k3s active after the rotation" unit_active k3s.service
cli_check "k3s/own: undo refused after the rotation (k3s's files lack the new key)" 79 setup --undo
se_check "k3s/own: k3s's server/cred still untouched" test "$cred_before" = "$(sha256sum "$CRED"/*)"
se_systemctl stop k3s.service

# =================================================================================================
# 3. a plain kube-apiserver.service with its own encryption config
fresh_host || exit 1
DB=/var/lib/kube/state.db
mkdir -p /etc/kubernetes /var/lib/kube
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"key1","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$(head -c 32 /dev/urandom | base64)" >/etc/kubernetes/enc.json
"$SEED" "$DB" 15 --config /etc/kubernetes/enc.json >/dev/null 2>&1 || se_not_ok "kine-seed (kube)"
se_unit_install kube-apiserver.service "[Unit]
Description=kube-apiserver stand-in (secrets-encrypt setup test)
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=$STANDIN --encryption-provider-config=/etc/kubernetes/enc.json --datastore sqlite://$DB --write-interval-ms 200
Restart=no"
restart_ok "kube: runs with its own config" kube-apiserver.service
cli_check "kube: setup without a datastore it can detect is refused" 66 setup --for kube-apiserver
se_check "kube: the refusal says to pass --datastore-endpoint" out_has "--datastore-endpoint"
cli_check "kube: setup --for kube-apiserver --datastore-endpoint" 0 setup --for kube-apiserver --datastore-endpoint "sqlite://$DB"
se_check "kube: its config imported byte for byte" cmp -s /etc/kubernetes/enc.json /var/lib/secrets-encrypt/encryption-config.json
se_check "kube: ExecStart now names our config" bash -c \
        "systemctl --user show -p ExecStart --value kube-apiserver.service | grep -qF 'encryption-provider-config=/var/lib/secrets-encrypt/encryption-config.json'"
se_check "kube: settings name the unit" grep -qx "unit: kube-apiserver.service" /etc/secrets-encrypt/config.yaml
cli_check "kube: setup again changes nothing" 0 setup --for kube-apiserver --datastore-endpoint "sqlite://$DB"
se_check "kube: nothing to change" out_has "nothing to change"
restart_ok "kube: restart reads our copy" kube-apiserver.service
se_check "kube: the API server reads our config" \
        test "$(running_config kube-apiserver.service)" = "--encryption-provider-config=/var/lib/secrets-encrypt/encryption-config.json" -o \
        "$(running_config kube-apiserver.service)" = ""
cli_check "kube: rotate-keys --restart" 0 rotate-keys --restart
se_check "kube: active after the rotation (every secret readable)" unit_active kube-apiserver.service
cli_check "kube: undo refused (enc.json lacks the new key)" 79 setup --undo
se_systemctl stop kube-apiserver.service

# =================================================================================================
# 4. k3s on embedded etcd (a real etcd, client-certificate TLS)
if etcd_start_tls >"$W/etcd.log" 2>&1; then
        fresh_host || exit 1
        D=/var/lib/rancher/k3s
        mkdir -p /etc/rancher/k3s "$D/server/db/etcd" "$D/server/tls/etcd"
        cp "$ETCD_CAFILE" "$D/server/tls/etcd/server-ca.crt"
        cp "$ETCD_CERTFILE" "$D/server/tls/etcd/client.crt"
        cp "$ETCD_KEYFILE" "$D/server/tls/etcd/client.key"
        printf 'K10%s::server:%s\n' "$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
                "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$D/server/token"
        # k3s's etcd config file (pkg/etcd ETCDConfig, YAML): gRPC on 2379, the HTTP gateway apart
        cat >"$D/server/db/etcd/config" <<EOF
advertise-client-urls: https://127.0.0.1:2379
client-transport-security:
  cert-file: $D/server/tls/etcd/server-client.crt
  client-cert-auth: true
  key-file: $D/server/tls/etcd/server-client.key
  trusted-ca-file: $D/server/tls/etcd/server-ca.crt
data-dir: $D/server/db/etcd
election-timeout: 5000
heartbeat-interval: 500
listen-client-http-urls: $ETCD_ENDPOINTS
listen-client-urls: https://127.0.0.1:2379
listen-metrics-urls: http://127.0.0.1:2381
listen-peer-urls: https://127.0.0.1:2380
log-outputs:
- stderr
logger: zap
name: server-1
EOF
        printf 'cluster-init: true\n' >/etc/rancher/k3s/config.yaml
        for i in 1 2 3; do etcd_ctl put "/registry/secrets/default/s$i" "plain-$i" >/dev/null; done
        install_dist_unit k3s.service k3s "$ETCD_ENDPOINTS" \
                "--etcd-cafile $D/server/tls/etcd/server-ca.crt --etcd-certfile $D/server/tls/etcd/client.crt --etcd-keyfile $D/server/tls/etcd/client.key"
        before=$(snapshot)
        cli_check "etcd: setup --dry-run" 0 setup --dry-run
        se_check "etcd: the JSON gateway from k3s's etcd config, not gRPC :2379" \
                out_has "+datastore-endpoint: \"$ETCD_ENDPOINTS\""
        se_check "etcd: k3s's etcd client certificate" out_has "+datastore-certfile: $D/server/tls/etcd/client.crt"
        se_check "etcd: the cluster token" out_has "+token-file: $D/server/token"
        se_check "etcd: dry run changed nothing" test "$before" = "$(snapshot)"
        cli_check "etcd: setup" 0 setup
        se_check "etcd: setup reports the datastore" out_has "datastore embedded-etcd $ETCD_ENDPOINTS"
        restart_ok "etcd: first start through the hook (config published to the cluster)" k3s.service
        cli_check "etcd: verify reads etcd over TLS" 0 verify
        cli_check "etcd: status" 0 status
        se_check "etcd: status: stage start" grep -qx "Current Rotation Stage: start" "$OUT"
        key_before=$(python3 "$INSPECT" keys /var/lib/secrets-encrypt/encryption-config.json 0 | head -n 1)
        cli_check "etcd: rotate-keys (HA: the rolling rotation)" 0 rotate-keys
        for round in 1 2 3; do
                restart_ok "etcd: rolling round $round: k3s restarts through the hook, reading every secret" k3s.service
        done
        cli_check "etcd: status after three restarts" 0 status
        se_check "etcd: the rolling rotation finished" grep -qx "Current Rotation Stage: reencrypt_finished" "$OUT"
        key_after=$(python3 "$INSPECT" keys /var/lib/secrets-encrypt/encryption-config.json 0 | head -n 1)
        se_check "etcd: a new write key ($key_before -> $key_after)" test -n "$key_after" -a "$key_before" != "$key_after"
        cli_check "etcd: verify: every value in etcd readable with the new config" 0 verify
        se_systemctl stop k3s.service
        cli_check "etcd: undo refused (the keys are in use)" 79 setup --undo

        # a second server of the same cluster whose k3s encrypts with other keys
        mkdir -p "$W/second"
        cp -a "$D/server" "$W/second/"
        fresh_host || exit 1
        mkdir -p /etc/rancher/k3s /var/lib/rancher/k3s
        cp -a "$W/second/server" /var/lib/rancher/k3s/
        mkdir -p /var/lib/rancher/k3s/server/cred
        printf 'secrets-encryption: true\n' >/etc/rancher/k3s/config.yaml
        printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"%s"}]}},{"identity":{}}]}]}' \
                "$(head -c 32 /dev/urandom | base64)" >/var/lib/rancher/k3s/server/cred/encryption-config.json
        install_dist_unit k3s.service k3s "$ETCD_ENDPOINTS"
        before=$(snapshot)
        cli_check "etcd: a second server with other keys than the cluster's is refused" 79 setup
        se_check "etcd: the refusal says its config does not match the cluster's" out_has "does not match the cluster's"
        se_check "etcd: the refused setup wrote nothing" test "$before" = "$(snapshot)"
        etcd_stop_all
else
        se_not_ok "etcd with TLS did not start"
        sed 's/^/#   /' "$W/etcd.log" | tail -n 20
fi

# =================================================================================================
# 5. rke2
fresh_host || exit 1
D=/var/lib/rancher/rke2
mkdir -p /etc/rancher/rke2 "$D/server/db/etcd"
printf 'listen-client-http-urls: https://127.0.0.1:2382\nlisten-client-urls: https://127.0.0.1:2379\n' >"$D/server/db/etcd/config"
printf 'token: my-shared-secret\n' >/etc/rancher/rke2/config.yaml
install_dist_unit rke2-server.service rke2 "https://127.0.0.1:2382"
cli_check "rke2: setup --dry-run" 0 setup --dry-run --for rke2
se_check "rke2: rke2's gateway" out_has '+datastore-endpoint: "https://127.0.0.1:2382"'
se_check "rke2: rke2's etcd client certificate" out_has "+datastore-certfile: $D/server/tls/etcd/client.crt"
se_check "rke2: the static pod mounts our state dir" out_has "+  - /var/lib/secrets-encrypt:/var/lib/secrets-encrypt:ro"
se_check "rke2: the snippet goes to rke2's config.yaml.d" out_has "+++ /etc/rancher/rke2/config.yaml.d/50-secrets-encrypt.yaml"
cli_check "rke2: setup" 0 setup --for rke2
se_check "rke2: settings name rke2-server.service" grep -qx "unit: rke2-server.service" /etc/secrets-encrypt/config.yaml
se_check "rke2: the hook is rke2's ExecStartPre" bash -c \
        "systemctl --user show -p ExecStartPre --value rke2-server.service | grep -q 'secrets-encrypt-hook --unit=rke2-server.service'"
cli_check "rke2: undo before any key was made" 0 setup --undo --for rke2
se_check "rke2: undo removed the snippet and the drop-in" bash -c \
        "test ! -e /etc/rancher/rke2/config.yaml.d/50-secrets-encrypt.yaml && test ! -e '$SE_UNIT_DIR/rke2-server.service.d/50-secrets-encrypt.conf'"
se_check "rke2: undo kept the operator's config.yaml" grep -qx "token: my-shared-secret" /etc/rancher/rke2/config.yaml
se_check "rke2: the hook is gone from rke2's ExecStartPre" bash -c \
        "! systemctl --user show -p ExecStartPre --value rke2-server.service | grep -q secrets-encrypt-hook"

se_common_unmount
echo "# ${SE_FAILED:-0} not ok"
[ "${SE_FAILED:-0}" = 0 ]
