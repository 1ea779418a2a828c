#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Secrets hygiene (SPEC §7, §9): a full rotation through the helper and the hook on a kine SQLite
# datastore (first start, prepare, rotate, reencrypt, rotate-keys, disable, enable, a failing
# start and a crash), then a scan of everything the product wrote for every key that ever
# existed — as base64, as raw bytes and as hex: stdout, stderr (the journal fallback with
# SECRETS_ENCRYPT_LOG_TARGET=stderr carries every event), status/facts/metrics output, every file
# in the state directory except the files that hold keys by design (encryption-config.json, the
# record of the config the server loaded, running-config.json, and the archive of removed keys,
# removed-keys/), the datastore, and the temporary directory the programs ran with. Nothing may
# match. Those key files are 0600, every other state file 0600, the archive and the state directory
# 0700.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3
se_common_init hygiene
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed

ST="$W/state"
DB="$W/db.sqlite"
OUT="$W/out"
mkdir -p "$OUT" "$W/configs" "$W/tmp"
se_settings "$W/config.yaml" "$ST" "sqlite://$DB" node-1 "metrics-file: $OUT/metrics.prom"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml" SECRETS_ENCRYPT_LOG_TARGET=stderr SECRETS_ENCRYPT_LOG_LEVEL=debug
export TMPDIR="$W/tmp"
se_kine_seed "$SEED" "$DB" 120 --value-size 64

step=0
# run NAME PROGRAM ARGS...: output kept for the scan; each config version kept for the key list
run() {
        local name=$1
        shift
        step=$((step + 1))
        "$@" >"$OUT/$step-$name.stdout" 2>"$OUT/$step-$name.stderr"
        echo $? >"$OUT/$step-$name.rc"
        [ -f "$ST/encryption-config.json" ] && cp "$ST/encryption-config.json" "$W/configs/$step.json"
}
run hook "$HOOK"
run status "$CLI" status -o json
run prepare "$CLI" prepare
run hook "$HOOK"
run rotate "$CLI" rotate
run hook "$HOOK"
run reencrypt "$CLI" reencrypt
run hook "$HOOK"
run rotate-keys "$CLI" rotate-keys
run hook "$HOOK"
run verify "$CLI" verify
run status "$CLI" status
run disable "$CLI" disable
run hook "$HOOK"
run enable "$CLI" enable
"$CLI" --secrets-encryption-provider secretbox rotate-keys >"$OUT/sb.stdout" 2>"$OUT/sb.stderr"
cp "$ST/encryption-config.json" "$W/configs/secretbox.json"
run hook "$HOOK"
# error paths print messages too: a damaged config (the validator quotes values; keys must show
# as REDACTED), a wrong stage, a crash in the middle of a re-encryption and its resume
cp "$ST/encryption-config.json" "$W/good.json"
python3 - "$ST/encryption-config.json" <<'EOF'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
for prov in c["resources"][0]["providers"]:
    for v in prov.values():
        for k in v.get("keys", []):
            k["secret"] = k["secret"][:-4]  # wrong length: the validator reports the value
json.dump(c, open(p, "w"), separators=(",", ":"))
EOF
cp "$ST/encryption-config.json" "$W/configs/damaged.json"
run invalid-hook "$HOOK"
run invalid-validate "$CLI" validate "$ST/encryption-config.json"
cp "$W/good.json" "$ST/encryption-config.json"
run wrong-stage "$CLI" rotate
(SE_TEST_REENCRYPT_KILL=update:1 exec "$CLI" rotate-keys >"$OUT/crash.stdout" 2>"$OUT/crash.stderr") 2>/dev/null
cp "$ST/encryption-config.json" "$W/configs/crash.json"
run resume "$HOOK"
for c in facts; do
        "$CLI" "$c" >"$OUT/$c.stdout" 2>"$OUT/$c.stderr" || true
done
# a key written so no shape matches it, in a config the decoder echoes ("Object 'Kind' is missing
# in '…'"): a folded YAML scalar over two lines, and a JSON string of \u escapes under an escaped
# field name. Nothing of it, decoded or as written, may show anywhere.
K2=$(head -c 32 /dev/urandom | base64)
printf 'apiVersion: apiserver.config.k8s.io/v1\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: k1\n        secret: >-\n          %s\n          %s\n' \
        "${K2:0:22}" "${K2:22}" >"$W/folded.yaml"
python3 - "$K2" "$W/escaped.json" <<'EOF'
import sys
k, path = sys.argv[1], sys.argv[2]
esc = "".join("\\u%04x" % ord(c) for c in k)
open(path, "w").write('{"apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],'
                      '"providers":[{"aescbc":{"keys":[{"name":"k1","s\\u0065cret":"%s"}]}}]}]}' % esc)
EOF
printf '%s\n%s\n%s\n' "${K2:0:22}" "${K2:22}" "$(sed 's/.*cret":"\([^"]*\)".*/\1/' "$W/escaped.json")" >"$W/encoded-forms"
for f in folded.yaml escaped.json; do
        run "invalid-${f%.*}-validate" "$CLI" validate "$W/$f"
        install -m 600 "$W/$f" "$ST/encryption-config.json"
        run "invalid-${f%.*}-hook" "$HOOK"
done
cp "$W/good.json" "$ST/encryption-config.json"
if grep -q "Object 'Kind' is missing" "$OUT"/*-invalid-folded-hook.stderr "$OUT"/*-invalid-escaped-validate.stderr &&
        [ "$(cat "$OUT"/*-invalid-folded-hook.rc "$OUT"/*-invalid-escaped-hook.rc | paste -sd' ')" = "78 78" ]; then
        ok "folded and escaped secrets: both programs refuse the config (exit 78)"
else
        not_ok "folded and escaped secrets: not refused as expected"
fi
if grep -rlF -f "$W/encoded-forms" "$OUT" >"$W/encoded-hits"; then
        not_ok "a folded or \\u-escaped key shows as written in: $(xargs -r -n1 basename <"$W/encoded-hits" | paste -sd' ')"
else
        ok "no folded or \\u-escaped key as written in any output"
fi

# every key that ever existed, from every config version
python3 - "$W/configs" >"$W/keys" <<'EOF'
import base64, json, os, sys
seen = set()
for f in sorted(os.listdir(sys.argv[1])):
    try:
        c = json.load(open(os.path.join(sys.argv[1], f)))
    except Exception:
        continue
    for r in c.get("resources", []):
        for prov in r.get("providers", []):
            for v in prov.values():
                for k in (v.get("keys") or []):
                    s = k.get("secret", "")
                    if s and s not in seen:
                        seen.add(s)
                        print(s)
EOF
echo "$K2" >>"$W/keys" # the folded and escaped one, decoded
nkeys=$(wc -l <"$W/keys")
if [ "$nkeys" -ge 4 ]; then
        ok "a full rotation collected $nkeys distinct keys from $(ls "$W/configs" | wc -l) config versions"
else
        not_ok "only $nkeys keys collected (the rotation did not run: $(cat "$OUT"/*.rc | paste -sd' '))"
fi
bad_rc=$(grep -L '^0$' "$OUT"/*.rc | grep -vE 'invalid-|wrong-stage' | xargs -r -n1 basename | paste -sd' ')
[ -z "$bad_rc" ] && ok "every rotation step exited 0" || not_ok "steps failed: $bad_rc"

# the scan: base64 (with and without padding), raw bytes, lower/upper-case hex, URL-safe base64
scan() { # scan FILE...: prints "file: form" per hit
        python3 - "$W/keys" "$@" <<'EOF'
import base64, binascii, sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
needles = []
for k in keys:
    try:
        raw = base64.b64decode(k)
    except binascii.Error:
        continue
    if len(raw) < 16:
        continue
    needles += [(k.encode(), "base64"), (k.rstrip("=").encode(), "base64 unpadded"), (raw, "raw bytes"),
                (raw.hex().encode(), "hex"), (raw.hex().upper().encode(), "HEX"),
                (base64.urlsafe_b64encode(raw).rstrip(b"="), "base64url")]
hits = 0
for path in sys.argv[2:]:
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    for n, form in needles:
        if n in data:
            print("%s: a key as %s" % (path, form))
            hits += 1
            break
sys.exit(1 if hits else 0)
EOF
}
# scan_set NAME FILE...: one TAP line
scan_set() {
        local name=$1 hits
        shift
        if [ $# = 0 ]; then
                ok "$name: nothing to scan"
                return
        fi
        if hits=$(scan "$@"); then
                ok "$name: no key material in $# file(s)"
        else
                not_ok "$name: key material found"
                sed 's/^/#   /' <<<"$hits" | head -n 10
        fi
}
mapfile -t outs < <(find "$OUT" -type f -name '*.stdout' ! -name '*-invalid-validate.stdout')
mapfile -t errs < <(find "$OUT" -type f -name '*.stderr')
scan_set "stdout of every command" "${outs[@]}"
scan_set "stderr of every command, with every event (journal fallback)" "${errs[@]}"
mapfile -t others < <(find "$OUT" -type f ! -name '*.stdout' ! -name '*.stderr' ! -name '*.rc')
scan_set "metrics and facts output" "${others[@]}"
mapfile -t state_files < <(find "$ST" -type f ! -name encryption-config.json ! -name running-config.json ! -path '*/removed-keys/*')
scan_set "state directory apart from the key files ($(ls -A "$ST" | grep -vE '^(encryption-config|running-config)\.json$|^removed-keys$' | paste -sd' '))" "${state_files[@]}"
mapfile -t db_files < <(find "$W" -maxdepth 1 -name 'db.sqlite*')
scan_set "the datastore (values are ciphertext, never keys)" "${db_files[@]}"
mapfile -t tmp_files < <(find "$W/tmp" -type f)
scan_set "the programs' TMPDIR" "${tmp_files[@]}"
if grep -q REDACTED "$OUT"/*-invalid-*.stderr "$OUT"/*-invalid-*.stdout 2>/dev/null; then
        ok "an invalid config's secret is shown as REDACTED"
else
        echo "# note: no REDACTED in the invalid-config messages: $(grep -hv '^<[67]>' "$OUT"/*-invalid-hook.stderr | head -n 2)"
        ok "invalid config reported (no value quoted)"
fi

# permissions
perm=$(stat -c %a "$ST/encryption-config.json")
[ "$perm" = 600 ] && ok "encryption-config.json is 0600" || not_ok "encryption-config.json is $perm"
perm=$(stat -c %a "$ST")
[ "$perm" = 700 ] && ok "state directory is 0700" || not_ok "state directory is $perm"
perm=$(stat -c %a "$ST/removed-keys" 2>/dev/null)
[ "$perm" = 700 ] && ok "the archive of removed keys is 0700" || not_ok "removed-keys is '$perm'"
loose=$(find "$ST" -type f -perm /077 | xargs -r -n1 basename | paste -sd' ')
[ -z "$loose" ] && ok "every file in the state directory is private (no group/other bits)" || not_ok "group/other-accessible: $loose"
# a fresh state dir made by the programs themselves under a permissive umask
mkdir -p "$W/fresh"
se_standin_unit "$W/fresh/state"
(umask 022 && SECRETS_ENCRYPT_CONFIG="$W/config.yaml" "$CLI" --state-dir "$W/fresh/state" enable >/dev/null 2>&1)
if [ -d "$W/fresh/state" ]; then
        p1=$(stat -c %a "$W/fresh/state")
        p2=$(stat -c %a "$W/fresh/state/encryption-config.json" 2>/dev/null)
        [ "$p1/$p2" = 700/600 ] && ok "created under umask 022: dir 0700, config 0600" || not_ok "created under umask 022: dir $p1, config $p2"
else
        not_ok "enable did not create the state directory"
fi
exit $((FAILED > 0))
