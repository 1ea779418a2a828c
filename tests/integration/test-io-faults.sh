#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# I/O and datastore faults (SPEC §9): a full disk (a size-limited tmpfs, and ENOSPC injected at
# every write of a command), a read-only state directory, permission denied, damaged state files,
# a config replaced by a symlink; an unreachable etcd, an endpoint answering HTTP errors or
# malformed JSON, a locked and a corrupt SQLite database. Each must give a clear error and the
# README's exit code, leave no temporary file behind and keep the previous good files
# byte-identical.
#
# Runs itself again inside a private mount namespace (unshare --mount) so the tmpfs mounts never
# reach the host. SE_STRESS=1 adds the 30 s SQLite busy-timeout case and every ENOSPC point.
set -u
cd "$(dirname "$0")/../.."
if [ -z "${SE_IO_FAULTS_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
        unshare --mount --propagation private true 2>/dev/null; then
        SE_IO_FAULTS_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. tests/integration/lib-common.sh

ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1
NS=${SE_IO_FAULTS_NS:-0}
STRESS=${SE_STRESS:-0}
export SECRETS_ENCRYPT_LOG_TARGET=stderr
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=0"

# umount_all: the tmpfs mounts under $W (inside the private mount namespace only).
umount_all() {
        [ "$NS" = 1 ] || return 0
        grep -F " $W/" /proc/self/mounts | awk '{ print $2 }' | sort -r | while read -r m; do umount -l "$m"; done
}
se_common_init io-faults
se_common_at_exit umount_all

# Private copies of the programs, readable by everybody (the permission case).
chmod 0755 "$W"
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed tests/tools/stand-in-apiserver \
        tests/fault-inject.so
chmod -R a+rX "$W/bin"

NSEC=30
echo "io-faults-cluster-token" >"$W/token"
chmod 0644 "$W/token"
se_kine_seed "$SEED" "$W/template.db" "$NSEC" --value-size 64

# setup DIR [STATE_DIR] [ENDPOINT]: a node with a good state after one start (config, stage).
setup() {
        local d=$1 st=${2:-$1/state} ep=${3:-sqlite://$1/db.sqlite}
        mkdir -p "$d"
        cp "$W/template.db" "$d/db.sqlite"
        se_settings "$d/config.yaml" "$st" "$ep" node-1 "token-file: $W/token"
        chmod 0644 "$d/config.yaml"
        SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$HOOK" >/dev/null 2>&1 || return 1
        SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$CLI" rotate-keys >/dev/null 2>&1 || return 1
        SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$HOOK" >/dev/null 2>&1 || return 1
        mkdir -p "$d/good"
        cp -a "$st"/encryption-config.json "$st"/encryption-state.json "$st"/secrets-encrypt.json "$d/good/"
        STATE=$st
}

# run DIR PROGRAM ARGS...: $rc, $out (stdout+stderr).
run() {
        local d=$1
        shift
        out=$(SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$@" 2>&1)
        rc=$?
}

# unchanged DIR: the three state files are byte-identical to the good copies, no temp file left.
unchanged() {
        local d=$1 st=${2:-$STATE} f
        for f in encryption-config.json encryption-state.json secrets-encrypt.json; do
                cmp -s "$d/good/$f" "$st/$f" || { echo "$f changed"; return 1; }
        done
        no_temp "$st"
}
no_temp() {
        local t
        t=$(find "$1" -name '*.tmp??????' 2>/dev/null)
        [ -z "$t" ] || { echo "temporary files left: $t"; return 1; }
}
# consistent STATE_DIR: encryption-state.json names the config's hash, the config is valid.
consistent() {
        local st=$1 s sha
        s=$(cat "$st/encryption-state.json")
        sha=$(sha256sum <"$st/encryption-config.json" | cut -d' ' -f1)
        [ "${s#*-}" = "$sha" ] || { echo "state $s does not match config sha256 $sha"; return 1; }
        "$CLI" validate "$st/encryption-config.json" >/dev/null 2>&1 || { echo "config invalid"; return 1; }
}
readable() { # readable DIR: every secret readable with the config, count unchanged
        local d=$1 o
        o=$("$STANDIN" --encryption-provider-config "$STATE/encryption-config.json" --datastore "sqlite://$d/db.sqlite" \
                --check-only 2>&1) && [[ "$o" == *", $NSEC secrets readable"* ]] || { echo "$o"; return 1; }
}

# expect NAME CODE PATTERN: the last run exited with CODE and its output matches PATTERN (grep -E).
expect() {
        local name=$1 code=$2 pat=$3
        if [ "$rc" = "$code" ] && grep -qE -- "$pat" <<<"$out"; then
                ok "$name: exit $code, \"$(grep -E -- "$pat" <<<"$out" | head -n 1 | sed 's/^secrets-encrypt[a-z-]*: //' | cut -c1-150)\""
        else
                not_ok "$name: exit $rc (want $code and /$pat/)"
                sed 's/^/#   /' <<<"$out" | head -n 8
        fi
}
# also NAME CMD...: a follow-up check on the same case.
also() {
        local name=$1 o
        shift
        if o=$("$@" 2>&1); then
                ok "$name"
        else
                not_ok "$name: $o"
        fi
}

# ==== 1. disk full: a 512 KiB tmpfs holding the state directory =====================================
if [ "$NS" = 1 ]; then
        d="$W/full"
        mkdir -p "$d/mnt"
        mount -t tmpfs -o size=512k,mode=0700 tmpfs "$d/mnt"
        setup "$d" "$d/mnt/state" || not_ok "disk full: setup"
        dd if=/dev/zero of="$d/mnt/filler" bs=4k >/dev/null 2>&1
        head -c 100000 /dev/zero >>"$d/mnt/filler" 2>/dev/null
        run "$d" "$CLI" prepare
        expect "disk full: prepare" 74 "No space left on device"
        also "disk full: prepare left the state byte-identical, no temp file" unchanged "$d"
        run "$d" "$HOOK"
        # a start with nothing to write may succeed; one that must write fails cleanly
        if [ "$rc" = 0 ]; then
                ok "disk full: the hook had nothing to write and let the server start"
        else
                expect "disk full: the hook (server start) refuses" 74 "No space left on device"
        fi
        also "disk full: hook left the state byte-identical, no temp file" unchanged "$d"
        rm -f "$d/mnt/filler"
        run "$d" "$CLI" prepare
        expect "disk full: prepare succeeds once space is back" 0 "prepare completed successfully"
        also "disk full: then consistent" consistent "$STATE"
        umount "$d/mnt"
else
        skip "disk full: needs root and unshare --mount"
fi

# ==== 1b. ENOSPC injected at each write/fsync of a command ===============================================
# inject DIR COMMAND: runs COMMAND failing the N-th write for every N (or a sample); each must
# fail with 74 and a message, leave no temp file, and keep the old config unless it had already
# been replaced; a restart and a rerun must then converge.
inject() {
        local base=$1 c=$2 n total step i bad=0 checked=0 why d
        rm -rf "$W/count" && cp -a "$base" "$W/count"
        sed -i "s|$base|$W/count|g" "$W/count/config.yaml"
        se_standin_unit "$W/count/state"
        se_standin_unit "$W/inj/state"
        SE_FAULT_OPS=write,fsync SE_FAULT_COUNT_FILE="$W/count.n" LD_PRELOAD="$FAULT" \
                SECRETS_ENCRYPT_CONFIG="$W/count/config.yaml" "$CLI" $c >/dev/null 2>&1
        total=$(cat "$W/count.n" 2>/dev/null || echo 0)
        step=1
        [ "$STRESS" = 1 ] || step=$(((total + 39) / 40))
        for ((i = 1; i <= total; i += step)); do
                d="$W/inj"
                rm -rf "$d" && cp -a "$base" "$d"
                sed -i "s|$base|$d|g" "$d/config.yaml"
                why=""
                out=$(SE_FAULT_OPS=write,fsync SE_FAULT_ERRNO_AT=$i LD_PRELOAD="$FAULT" \
                        SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$CLI" $c 2>&1)
                rc=$?
                checked=$((checked + 1))
                # SQLite words an ENOSPC from its own writes as "disk I/O error" or "database or disk is full"
                # exit 0 is fine when the failed write did not matter (SQLite's WAL checkpoint at
                # close); the checks below still apply
                if [ "$rc" != 0 ] && { [ "$rc" != 74 ] || ! grep -qE "No space left on device|disk I/O error|disk is full" <<<"$out"; }; then
                        why="exit $rc: $(tail -n 1 <<<"$out")"
                elif ! o=$(no_temp "$d/state"); then
                        why=$o
                elif ! cmp -s "$d/good/encryption-config.json" "$d/state/encryption-config.json" &&
                        ! "$CLI" validate "$d/state/encryption-config.json" >/dev/null 2>&1; then
                        why="a half-written config"
                elif ! SECRETS_ENCRYPT_CONFIG="$d/config.yaml" "$HOOK" >/dev/null 2>&1; then
                        why="the restart after it failed"
                elif ! STATE="$d/state" readable "$d" >/dev/null; then
                        why="secrets unreadable after the restart"
                elif ! o=$(consistent "$d/state"); then
                        why="after the restart: $o"
                fi
                if [ -n "$why" ]; then
                        bad=$((bad + 1))
                        [ "$bad" -le 3 ] && echo "#   $c, ENOSPC at write $i of $total: $why"
                fi
        done
        if [ "$bad" = 0 ] && [ "$checked" -gt 0 ]; then
                ok "ENOSPC at $checked of $total writes of $c: exit 74 (or harmless), no temp file, no half-written config, restart recovers"
        else
                not_ok "ENOSPC during $c: $bad of $checked points misbehaved"
        fi
}
setup "$W/inj-base" && {
        inject "$W/inj-base" prepare
        inject "$W/inj-base" rotate-keys
} || not_ok "ENOSPC injection: setup"

# ==== 2. read-only state directory ==============================================================================
if [ "$NS" = 1 ]; then
        d="$W/ro"
        mkdir -p "$d/mnt"
        mount -t tmpfs -o size=1m,mode=0700 tmpfs "$d/mnt"
        setup "$d" "$d/mnt/state" || not_ok "read-only: setup"
        mount -o remount,ro "$d/mnt"
        run "$d" "$CLI" prepare
        expect "read-only state dir: prepare" 74 "Read-only file system"
        also "read-only: nothing changed" unchanged "$d"
        run "$d" "$HOOK"
        expect "read-only state dir: hook" 74 "Read-only file system"
        run "$d" "$CLI" status
        if [ "$rc" = 0 ]; then ok "read-only state dir: status still works"; else
                echo "# note: status on a read-only state dir exits $rc: $(tail -n 1 <<<"$out")"
                ok "read-only state dir: status fails cleanly (exit $rc) # the lock file needs a writable dir"
        fi
        umount "$d/mnt"
else
        skip "read-only state dir: needs root and unshare --mount"
fi

# ==== 3. permission denied (running as nobody) ==================================================================
if [ "$ROOT" = 1 ] && command -v setpriv >/dev/null; then
        d="$W/perm"
        setup "$d" || not_ok "permission: setup"
        chmod 0755 "$d"
        as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
        out=$(SECRETS_ENCRYPT_CONFIG="$d/config.yaml" as_nobody "$CLI" prepare 2>&1)
        rc=$?
        expect "permission denied: prepare as nobody" 77 "Permission denied"
        also "permission denied: nothing changed" unchanged "$d"
        out=$(SECRETS_ENCRYPT_CONFIG="$d/config.yaml" as_nobody "$HOOK" 2>&1)
        rc=$?
        expect "permission denied: hook as nobody" 77 "Permission denied"
        also "permission denied: state dir is still 0700, config 0600" \
                test "$(stat -c %a "$STATE")/$(stat -c %a "$STATE/encryption-config.json")" = 700/600
else
        skip "permission denied: needs root and setpriv"
fi

# ==== 4. damaged state files ========================================================================================
d="$W/dmg"
setup "$d" || not_ok "damaged: setup"
: >"$STATE/encryption-state.json"
cp "$STATE/encryption-state.json" "$d/good/encryption-state.json"
run "$d" "$CLI" prepare
expect "encryption-state.json truncated to 0 bytes: prepare" 78 "encryption-state.json: invalid content"
run "$d" "$HOOK"
expect "encryption-state.json truncated to 0 bytes: hook" 78 "encryption-state.json"
also "truncated state: nothing changed" unchanged "$d"
printf '\x89garbage\x00\xff-not-a-stage' >"$STATE/encryption-state.json"
cp "$STATE/encryption-state.json" "$d/good/encryption-state.json"
rm -f "$STATE/.hook-last-failure" # a repeated failure is logged short on purpose (SPEC §5.2)
run "$d" "$HOOK"
expect "encryption-state.json holding garbage: hook" 78 "encryption-state.json: invalid content"
run "$d" "$CLI" status
expect "encryption-state.json holding garbage: status" 78 "encryption-state.json"
also "garbage state: nothing changed" unchanged "$d"
# the remedy the message gives: remove it, the next start recreates it from the config
rm -f "$STATE/encryption-state.json"
run "$d" "$HOOK"
expect "encryption-state.json removed: the hook recreates it" 0 ""
also "recreated state matches the config" consistent "$STATE"
cp -a "$STATE"/encryption-state.json "$d/good/"
printf '{"generation": [' >"$STATE/secrets-encrypt.json"
cp "$STATE/secrets-encrypt.json" "$d/good/secrets-encrypt.json"
run "$d" "$HOOK"
expect "secrets-encrypt.json holding garbage: hook" 78 "secrets-encrypt.json: not a JSON object"
also "garbage own state: nothing changed" unchanged "$d"

# ==== 5. config replaced by a symlink (O_NOFOLLOW) ===================================================================
d="$W/link"
setup "$d" || not_ok "symlink: setup"
cp "$STATE/encryption-config.json" "$d/elsewhere.json"
ln -sf "$d/elsewhere.json" "$STATE/encryption-config.json"
run "$d" "$HOOK"
expect "encryption-config.json is a symlink: hook refuses" 73 "encryption-config.json.*(symbolic links|symlink)"
run "$d" "$CLI" rotate-keys
expect "encryption-config.json is a symlink: rotate-keys refuses" 73 "symbolic links|symlink"
also "symlink left alone, its target byte-identical" \
        bash -c "[ -L '$STATE/encryption-config.json' ] && cmp -s '$d/elsewhere.json' '$d/good/encryption-config.json'"
also "symlink: no temp file" no_temp "$STATE"

# ==== 5b. config truncated to 0 bytes while the datastore holds encrypted secrets =====================================
d="$W/empty"
setup "$d" || not_ok "empty config: setup"
: >"$STATE/encryption-config.json"
run "$d" "$HOOK"
if [ "$rc" != 0 ]; then
        ok "empty encryption-config.json with encrypted secrets: the hook refuses (exit $rc): $(tail -n 1 <<<"$out" | cut -c1-150)"
elif readable "$d" >/dev/null; then
        ok "empty encryption-config.json: the hook recovered a config that reads every secret"
else
        not_ok "empty encryption-config.json: the hook generated a new key and the server would start unable to read the $NSEC existing secrets (k3s regenerates an empty file; with encrypted data this loses access)"
fi

# ==== 6. datastore faults ===========================================================================================
# etcd unreachable: nothing listens on the port
port=$((20000 + RANDOM % 12000)) # below the ephemeral range
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
d="$W/etcd-down"
setup "$d" || not_ok "etcd down: setup"
sed -i "s|^datastore-endpoint: .*|datastore-endpoint: http://127.0.0.1:$port|" "$d/config.yaml"
echo "datastore-allow-plain-http: true" >>"$d/config.yaml"
t0=$(date +%s)
run "$d" "$CLI" verify
expect "etcd unreachable: verify" 69 "127\.0\.0\.1:$port.*(refused|connect)"
run "$d" "$CLI" reencrypt -f
expect "etcd unreachable: reencrypt" 69 "127\.0\.0\.1:$port"
also "etcd unreachable: config untouched, no temp file" \
        bash -c "cmp -s '$d/good/encryption-config.json' '$STATE/encryption-config.json' && [ -z \"\$(find '$STATE' -name '*.tmp??????')\" ]"

# an endpoint that answers with HTTP errors or malformed JSON (python3 http.server)
if command -v python3 >/dev/null; then
        cat >"$W/fake-etcd.py" <<'EOF'
import http.server, sys
mode = sys.argv[2]
BODIES = {
    "http500": (500, b"internal error, not JSON"),
    "http400grpc": (400, b'{"error":"etcdserver: mvcc: required revision has been compacted","code":11,"message":"etcdserver: mvcc: required revision has been compacted"}'),
    "badjson": (200, b'{"header":{"revision":"12"},"kvs":[{"key":"L3JlZ2lzdHJ5'),
    "wrongtypes": (200, b'{"header":{"revision":"x"},"kvs":"not-a-list","count":{}}'),
    "badbase64": (200, b'{"header":{"revision":"3"},"kvs":[{"key":"***","value":"%%%","mod_revision":"2","create_revision":"1"}],"count":"1"}'),
    "notobject": (200, b'[1,2,3]'),
    "http404": (404, b'404 page not found'),
    "empty": (200, b''),
}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        code, body = BODIES[mode]
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
s.serve_forever()
EOF
        for mode in http500 http400grpc badjson wrongtypes badbase64 notobject http404 empty; do
                port=$((port + 1))
                while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
                bg python3 "$W/fake-etcd.py" "$port" "$mode" >"$W/fake.out" 2>&1
                for _ in $(seq 50); do grep -q ready "$W/fake.out" 2>/dev/null && break; sleep 0.1; done
                sed -i "s|^datastore-endpoint: .*|datastore-endpoint: http://127.0.0.1:$port|" "$d/config.yaml"
                grep -q '^datastore-allow-plain-http:' "$d/config.yaml" ||
                        echo "datastore-allow-plain-http: true" >>"$d/config.yaml"
                run "$d" "$CLI" verify
                if [ "$rc" -ge 1 ] && [ "$rc" -lt 128 ] && grep -qE "etcd at http://127\.0\.0\.1:$port" <<<"$out" &&
                        ! grep -qE "AddressSanitizer|runtime error" <<<"$out"; then
                        ok "etcd endpoint answering $mode: clean error, exit $rc: $(grep -E 'etcd at' <<<"$out" | head -n 1 | sed 's/^secrets-encrypt: //' | cut -c1-140)"
                else
                        not_ok "etcd endpoint answering $mode: exit $rc"
                        sed 's/^/#   /' <<<"$out" | head -n 5
                fi
                stop_bg "$BG_PID"
        done
        also "etcd faults: config untouched" cmp -s "$d/good/encryption-config.json" "$STATE/encryption-config.json"
else
        skip "fake etcd endpoint: python3 missing"
fi

# SQLite busy: another process holds BEGIN IMMEDIATE for 2 s; the re-encryption waits, then runs
d="$W/busy"
setup "$d" || not_ok "busy: setup"
if command -v python3 >/dev/null; then
        hold_lock() { # hold_lock DB SECONDS
                bg python3 -c '
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")' "$1" "$2" >"$W/lock.out" 2>&1
                for _ in $(seq 50); do grep -q locked "$W/lock.out" 2>/dev/null && break; sleep 0.1; done
        }
        # rotate-keys leaves the re-encryption to the restart (the server runs the old config);
        # the hook then re-encrypts while another writer holds the database
        run "$d" "$CLI" rotate-keys
        expect "busy: rotate-keys leaves the re-encryption to the restart" 0 "reencryption pending"
        hold_lock "$d/db.sqlite" 2
        t0=$(date +%s%N)
        run "$d" "$HOOK"
        t1=$(date +%s%N)
        expect "SQLite locked by another writer for 2 s: the hook's re-encryption waits and completes" 0 "reencrypted"
        also "busy: waited for the lock (>= 1.5 s)" test $(((t1 - t0) / 1000000)) -ge 1500
        also "busy: consistent and readable" bash -c "$(declare -f consistent); CLI='$CLI' consistent '$STATE'"
        wait "$BG_PID" 2>/dev/null
        if [ "$STRESS" = 1 ]; then
                run "$d" "$CLI" rotate-keys
                hold_lock "$d/db.sqlite" 40
                run "$d" "$HOOK"
                expect "SQLite locked longer than the busy timeout: the hook's re-encryption fails" 75 "locked"
        fi
fi

# a corrupt database file
d="$W/corrupt"
setup "$d" || not_ok "corrupt: setup"
rm -f "$d/db.sqlite-wal" "$d/db.sqlite-shm"
printf 'this is not an SQLite database at all, just some text that is long enough............................' |
        dd of="$d/db.sqlite" conv=notrunc bs=1 >/dev/null 2>&1
run "$d" "$CLI" verify
expect "corrupt SQLite file: verify" 74 "damaged or not an SQLite database"
run "$d" "$CLI" rotate-keys
expect "corrupt SQLite file: rotate-keys" 74 "damaged or not an SQLite database"

exit $((FAILED > 0))
