#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Config verdicts through the real programs (issue 16): the hook never lets through a config that
# stops kube-apiserver (KMS v1 with the default KMSv1 gate) and takes it with kms-v1: true;
# validate prints Go's JSON wording; a missing kind never echoes the file, whatever form a key has.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh

se_common_init config-verdicts
se_common_copy_programs secrets-encrypt secrets-encrypt-hook

STATE="$W/state"
mkdir -m 0700 "$STATE"
se_settings "$W/config.yaml" "$STATE" "sqlite://$W/db.sqlite"
export SECRETS_ENCRYPT_LOG_TARGET=stderr
KEY=YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY=
HDR='{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1",'

# A write key, then a KMS v1 provider (apiVersion defaulted) for data written before.
printf '%s"resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"%s"}]}},{"kms":{"name":"old","endpoint":"unix:///run/kms.sock"}},{"identity":{}}]}]}' \
        "$HDR" "$KEY" >"$STATE/encryption-config.json"
chmod 0600 "$STATE/encryption-config.json"

se_capture "$W" "$HOOK" --config "$W/config.yaml"
check "hook: KMS v1 with the default gate is refused, exit 78 (got $rc)" test "$rc" = 78
check "hook: kube-apiserver's KMSv1 message" grep -qF 'KMSv1 is deprecated and will only receive security updates going forward. Use KMSv2 instead.  Set --feature-gates=KMSv1=true' "$W/err"
check "hook: names the setting" grep -qF 'set kms-v1: true in the settings' "$W/err"
check "hook: no state written for it" test ! -e "$STATE/encryption-state.json"
se_capture "$W" "$CLI" --config "$W/config.yaml" validate "$STATE/encryption-config.json"
check "validate: refused the same way (got $rc)" test "$rc" != 0
check "validate: a building error, not a parse error" \
        grep -qF 'encryption-config.json: error while building transformers: KMSv1 is deprecated' "$W/err"
se_capture "$W" "$CLI" --config "$W/config.yaml" --kms-v1 true validate "$STATE/encryption-config.json"
check "validate --kms-v1 true: accepted (got $rc)" test "$rc" = 0

printf 'kms-v1: true\n' >>"$W/config.yaml"
se_capture "$W" "$HOOK" --config "$W/config.yaml"
check "hook with kms-v1: true: the server starts (got $rc)" test "$rc" = 0
check "hook with kms-v1: true: state recorded" test -s "$STATE/encryption-state.json"

# Go's encoding/json words for syntax errors
printf '%s"resources":[]} t' "$HDR" >"$W/trail.json"
se_capture "$W" "$CLI" --config "$W/config.yaml" validate "$W/trail.json"
check "JSON trailing data: Go's message (got $rc)" \
        grep -qF "couldn't get version/kind; json parse error: invalid character 't' after top-level value" "$W/err"

# kind missing: kube-apiserver echoes the file; a folded or escaped key must not reach any output
printf 'apiVersion: v1\nresources:\n- providers:\n  - aescbc:\n      keys:\n      - name: a\n        secret: >-\n          YWJjZGVmZ2hpamts\n          bW5vcHFyc3R1dnd4eXoxMjM0NTY=\n' >"$W/folded.yaml"
printf '{"apiVersion":"v1","resources":[{"providers":[{"aescbc":{"keys":[{"name":"a","secret":"\\u0059WJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY="}]}}]}]}' >"$W/escaped.json"
for f in folded.yaml escaped.json; do
        se_capture "$W" "$CLI" --config "$W/config.yaml" validate "$W/$f"
        check "$f: refused (got $rc)" test "$rc" != 0
        check "$f: kube's message without the file" grep -qF "Object 'Kind' is missing in '…' (the file's content is not shown" "$W/err"
        check "$f: no part of the key in any output" \
                bash -c '! grep -qE "YWJjZGVm|bW5vcHFy|WJjZGVm|hpamts" "$1"/out "$1"/err' _ "$W"
done

se_common_finish
