#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# `secrets-encrypt restore-key NAME` end to end on a kine SQLite datastore, without systemd (running
# the hook stands for a restart of the server). Removed keys are planted in the archive the way
# module/rotation/key-archive.c writes them (<state-dir>/removed-keys/<name %-encoded>.json, 0600 in a 0700
# directory), values encrypted with one of them are written into the kine database by an
# independent implementation (python3-cryptography, kube-apiserver's aescbc envelope), and the
# restore must make `verify` read them while the write key and every other entry stay as they were.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3
python3 -c 'import cryptography' 2>/dev/null || { skip "python3-cryptography missing"; exit 0; }

se_common_init restore-key
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed

STATE="$W/state"
DB="$W/db.sqlite"
NSEED=20
NRESTORED=3
se_settings "$W/config.yaml" "$STATE" "sqlite://$DB" node-1 "removed-key-retention: 7d"
export SECRETS_ENCRYPT_CONFIG="$W/config.yaml"
# events as <N> lines on stderr, never a host journal
export SECRETS_ENCRYPT_LOG_TARGET=stderr

# run ARGS...: the CLI; stdout in $W/out, stderr in $W/err, exit code in $rc.
run() { se_capture "$W" "$CLI" "$@"; }
# restart: the hook, as systemd would run it before the server.
restart() {
        "$HOOK" --unit=stand-in.service >>"$W/hook.log" 2>&1
}

# ---- set-up: a config with three entries, keys, the datastore, the archive ---------------------------
# key material from the OS, never printed: files only
python3 - "$W/keys.json" <<'EOF'
import base64, json, os, sys
k = lambda: base64.b64encode(os.urandom(32)).decode()
json.dump({"cm": k(), "write": k(), "restored": k(), "secretbox": k(), "unknown": k()}, open(sys.argv[1], "w"))
EOF
RESTORED="aescbckey-2025-12-01T10:20:30Z"
SBNAME="secretboxkey-2025-11-01T00:00:00Z"
mkdir -m 0700 "$STATE"
python3 - "$W/keys.json" "$STATE/encryption-config.json" <<'EOF'
import json, os, sys
k = json.load(open(sys.argv[1]))
cfg = {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1", "resources": [
    {"resources": ["configmaps"], "providers": [
        {"secretbox": {"keys": [{"name": "cmkey", "secret": k["cm"]}]}}, {"identity": {}}]},
    {"resources": ["secrets"], "providers": [
        {"aescbc": {"keys": [{"name": "aescbckey", "secret": k["write"]}]}}, {"identity": {}}]},
    {"resources": ["*.*"], "providers": [{"identity": {}}]},
]}
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps(cfg, separators=(",", ":")).encode())
os.close(fd)
EOF
cp "$STATE/encryption-config.json" "$W/config-before.json"
se_kine_seed "$SEED" "$DB" "$NSEED" --config "$STATE/encryption-config.json"
check "first start: the hook accepts the three-entry config" restart

# The archive, as se_key_archive_add() writes it.
python3 - "$W/keys.json" "$STATE" "$RESTORED" "$SBNAME" <<'EOF'
import json, os, sys, time, urllib.parse
k = json.load(open(sys.argv[1]))
d = os.path.join(sys.argv[2], "removed-keys")
os.mkdir(d, 0o700)
def put(name, provider, secret):
    fn = urllib.parse.quote(name, safe="-_.")  # the archive's file-name encoding: %XX outside [A-Za-z0-9_.-]
    rec = {"name": name, "provider": provider, "removed_at": int(time.time()) - 3600,
           "config_hash": "0" * 64, "secret": secret}
    fd = os.open(os.path.join(d, fn + ".json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())
    os.close(fd)
put(sys.argv[3], "aescbc", k["restored"])
put(sys.argv[4], "secretbox", k["secretbox"])
EOF

# Values under the removed key: kube-apiserver's aescbc envelope, kine create rows.
python3 - "$W/keys.json" "$DB" "$RESTORED" "$NRESTORED" <<'EOF'
import base64, json, os, sqlite3, sys
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key = base64.b64decode(json.load(open(sys.argv[1]))["restored"])
name, n = sys.argv[3], int(sys.argv[4])
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA busy_timeout = 10000")
db.execute("BEGIN IMMEDIATE")
for i in range(n):
    plain = b"k8s\x00" + b"restored secret %d " % i + os.urandom(24)
    p = padding.PKCS7(128).padder()
    padded = p.update(plain) + p.finalize()
    iv = os.urandom(16)
    e = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    value = b"k8s:enc:aescbc:v1:" + name.encode() + b":" + iv + e.update(padded) + e.finalize()
    db.execute("INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) "
               "VALUES(?, 1, 0, 0, 0, 0, ?, NULL)", ("/registry/secrets/restored/secret-%d" % i, value))
db.execute("COMMIT")
EOF

"$CLI" verify >"$W/verify" 2>&1
rc=$?
check "before the restore: verify fails with 65 (got $rc)" test "$rc" = 65
check "before the restore: $NRESTORED values unreadable" grep -q " $NRESTORED unreadable$" "$W/verify"
stage_before=$(cut -d- -f1 "$STATE/encryption-state.json")

# ---- usage and refusals ---------------------------------------------------------------------------
run restore-key
check "restore-key without NAME: exit 64 (got $rc)" test "$rc" = 64
check "restore-key without NAME: says a name is needed" grep -q 'restore-key NAME' "$W/err"
run restore-key a b
check "restore-key with two names: exit 64 (got $rc)" test "$rc" = 64
run restore-key --force "$RESTORED"
check "restore-key -f: not an option of restore-key, exit 64 (got $rc)" test "$rc" = 64
run restore-key aescbckey-2025-12-01T10:20:31Z
check "an unknown name: exit 66 (got $rc)" test "$rc" = 66
check "an unknown name: the archived names are listed" \
        bash -c 'grep "archived keys: " "$1" | grep -F "$2" | grep -qF "$3"' _ "$W/err" "$RESTORED" "$SBNAME"
run restore-key aescbckey
check "a name already in the config: exit 79 (got $rc)" test "$rc" = 79
check "a name already in the config: says where" grep -qF 'resources[1].providers[0].aescbc.keys[0]' "$W/err"
check "the refusals left the config untouched" cmp "$STATE/encryption-config.json" "$W/config-before.json"

# ---- the restore -----------------------------------------------------------------------------------
run restore-key "$RESTORED"
check "restore-key $RESTORED: exit 0 (got $rc)" test "$rc" = 0
check "restore-key: the success line names the key and the restart" \
        test "$(cat "$W/out")" = "key $RESTORED restored as a read key: restart stand-in.service to load it"
check "restore-key: a key-added event" \
        grep -qF "Secrets encryption key $RESTORED restored as a read key on node-1." "$W/err"
check "the config gained the key as the last read key of the secrets entry; all else unchanged" \
        python3 - "$W/config-before.json" "$STATE/encryption-config.json" "$W/keys.json" "$RESTORED" <<'EOF'
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
k, name = json.load(open(sys.argv[3])), sys.argv[4]
assert after["kind"] == before["kind"] and after["apiVersion"] == before["apiVersion"]
assert len(after["resources"]) == 3, after["resources"]
assert after["resources"][0] == before["resources"][0], "configmaps entry changed"
assert after["resources"][2] == before["resources"][2], "*.* entry changed"
e = after["resources"][1]
assert e["resources"] == ["secrets"]
assert [list(p) for p in e["providers"]] == [["aescbc"], ["identity"]], e["providers"]
assert e["providers"][0]["aescbc"]["keys"] == [
    {"name": "aescbckey", "secret": k["write"]}, {"name": name, "secret": k["restored"]}], "keys"
EOF
check "encryption-config.json stays 0600" test "$(stat -c %a "$STATE/encryption-config.json")" = 600
check "the stage is kept ($stage_before), with the new config's hash" test "$(cat "$STATE/encryption-state.json")" = \
        "$stage_before-$(sha256sum "$STATE/encryption-config.json" | cut -d' ' -f1)"
check "the archive keeps the entry (0600 in a 0700 directory)" \
        test "$(stat -c %a "$STATE/removed-keys")/$(stat -c %a "$STATE/removed-keys/aescbckey-2025-12-01T10%3A20%3A30Z.json")" = 700/600
"$CLI" status -o json >"$W/status.json" 2>/dev/null
check "status: the restored key is an inactive key, aescbckey still writes" python3 - "$W/status.json" "$RESTORED" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["activekey"] == "AES-CBC aescbckey", d["activekey"]
assert "AES-CBC " + sys.argv[2] in d.get("inactivekeys", []), d.get("inactivekeys")
EOF

"$CLI" verify >"$W/verify" 2>&1
rc=$?
check "after the restore: verify exits 0 (got $rc)" test "$rc" = 0
check "verify: the $NRESTORED values read under $RESTORED" grep -qE "^ +aescbc +$RESTORED +$NRESTORED$" "$W/verify"
check "verify: the $NSEED seeded values still under aescbckey" grep -qE "^ +aescbc +aescbckey +$NSEED$" "$W/verify"
check "verify: 0 unreadable" grep -q ' 0 unreadable$' "$W/verify"

run restore-key "$RESTORED"
check "restoring it twice: exit 79 (got $rc)" test "$rc" = 79

# a type the secrets entry lacks: a new provider right after the write provider
run restore-key "$SBNAME"
check "restore-key $SBNAME (secretbox): exit 0 (got $rc)" test "$rc" = 0
check "secretbox: a new provider at providers[1], the write provider still first" \
        python3 - "$W/config-before.json" "$STATE/encryption-config.json" "$W/keys.json" "$SBNAME" <<'EOF'
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
k, name = json.load(open(sys.argv[3])), sys.argv[4]
assert after["resources"][0] == before["resources"][0] and after["resources"][2] == before["resources"][2]
p = after["resources"][1]["providers"]
assert [list(x) for x in p] == [["aescbc"], ["secretbox"], ["identity"]], p
assert p[0]["aescbc"]["keys"][0]["name"] == "aescbckey"
assert p[1]["secretbox"]["keys"] == [{"name": name, "secret": k["secretbox"]}]
EOF

check "restart with the restored keys: the hook accepts the config" restart
"$CLI" verify >"$W/verify" 2>&1
check "after the restart: verify still reads everything" grep -q ' 0 unreadable$' "$W/verify"

# the retention setting is a flag (and a settings key) like the others
run --removed-key-retention forever status
check "--removed-key-retention forever: exit 64 (got $rc)" test "$rc" = 64
check "--removed-key-retention: the message names the setting" grep -q 'removed-key-retention' "$W/err"
run --removed-key-retention 0 status
check "--removed-key-retention 0: accepted (got $rc)" test "$rc" = 0

# ---- no key material in anything printed ----------------------------------------------------------
cat "$W/hook.log" >>"$W/all-output"
check "no key (base64 or raw) in the CLI's or the hook's output" python3 - "$W/keys.json" "$W/all-output" <<'EOF'
import base64, json, sys
keys = json.load(open(sys.argv[1])).values()
blob = open(sys.argv[2], "rb").read()
for s in keys:
    assert s.encode() not in blob and base64.b64decode(s) not in blob, "key material printed"
EOF

[ "$FAILED" = 0 ]
