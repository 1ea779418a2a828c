#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Files and processes (issue 16), on real files with the real programs:
#   - a settings file, state-dir, encryption-config.json, hooks-dir or fleet hook that is not
#     root's (or that group or others can write) is refused, the message naming the path and the
#     fix; a refused fleet hook does not run and never fails the command;
#   - a FIFO at metrics-file neither blocks the hook nor fails the start, nor do hanging fleet hooks;
#   - both programs run without core dumps: a fleet hook started by an unprivileged run sees its
#     parent not dumpable (/proc/PID owned by root) and with a core size limit of 0.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
show() { sed 's/^/#   /' | head -n 20; }
se_common_init trust
se_common_copy_programs secrets-encrypt secrets-encrypt-hook tests/tools/kine-seed
[ "$(id -u)" = 0 ] || { skip "needs root (chown to other users)"; exit 0; }
NOBODY=65534

STATE="$W/state"
DB="$W/db.sqlite"
CONF="$W/config.yaml"
mkdir -p "$STATE" "$W/hooks.d"
chmod 700 "$STATE"
chmod 755 "$W/hooks.d"
se_settings "$CONF" "$STATE" "sqlite://$DB" trust-node "hooks-dir: $W/hooks.d" "metrics-file: $W/metrics.prom"
chmod 644 "$CONF"
export SECRETS_ENCRYPT_CONFIG="$CONF"
export SECRETS_ENCRYPT_LOG_TARGET=stderr
export SECRETS_ENCRYPT_FLEET_HOOK_TIMEOUT=5s

KEY=$(head -c 32 /dev/urandom | base64)
printf '{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey-2020-01-01T00:00:00Z","secret":"%s"}]}},{"identity":{}}]}]}' \
        "$KEY" >"$STATE/encryption-config.json"
chmod 600 "$STATE/encryption-config.json"
if "$SEED" "$DB" 5 --config "$STATE/encryption-config.json" >/dev/null 2>&1 && se_capture "$W" "$HOOK"; then
        ok "trusted files: the hook starts the server"
else
        not_ok "seeding or first hook run (exit $rc)"
        show <"$W/err"
        exit 1
fi

# refused WHAT PATH CODE CMD...: CMD exits CODE and its stderr names PATH, the problem and the fix.
refused() {
        local what=$1 path=$2 code=$3
        shift 3
        se_capture "$W" "$@"
        if [ "$rc" = "$code" ] && grep -qF "$path: refusing the $what" "$W/err" &&
                grep -qF "fix: chown root:root $path; chmod go-w $path" "$W/err"; then
                ok "$what $path refused ($*: exit $rc, the message names the path and the fix)"
        else
                not_ok "$what $path not refused as expected ($*: exit $rc, want $code)"
                show <"$W/err"
        fi
}

# ---- the settings file -------------------------------------------------------------------------
chmod 666 "$CONF"
refused "settings file" "$CONF" 64 "$HOOK"
grep -q "writable by group and others (mode 0666)" "$W/err" && ok "settings file: the message says what is wrong" ||
        not_ok "settings file: no 'writable by group and others' in the message"
refused "settings file" "$CONF" 77 "$CLI" status
chmod 644 "$CONF"
chown "$NOBODY" "$CONF"
refused "settings file" "$CONF" 64 "$HOOK"
grep -q "owned by uid $NOBODY, not root" "$W/err" && ok "settings file: the message names the owner" ||
        not_ok "settings file: no 'owned by uid $NOBODY, not root' in the message"
chown 0 "$CONF"

# ---- the state directory -----------------------------------------------------------------------
chmod 777 "$STATE"
refused "state-dir" "$STATE" 77 "$HOOK"
refused "state-dir" "$STATE" 77 "$CLI" status
refused "state-dir" "$STATE" 77 "$CLI" facts
chmod 700 "$STATE"
chown "$NOBODY" "$STATE"
refused "state-dir" "$STATE" 77 "$HOOK"
chown 0 "$STATE"
# the lock file and the other state files (restored from a backup with the wrong owner, say)
chown "$NOBODY" "$STATE/.secrets-encrypt.lock"
refused "lock file" "$STATE/.secrets-encrypt.lock" 77 "$HOOK"
chown 0 "$STATE/.secrets-encrypt.lock"
chmod 666 "$STATE/encryption-state.json"
refused "stage file" "$STATE/encryption-state.json" 77 "$CLI" status
chmod 600 "$STATE/encryption-state.json"

# ---- the encryption configuration --------------------------------------------------------------
chown "$NOBODY" "$STATE/encryption-config.json"
chmod 644 "$STATE/encryption-config.json"
refused "encryption configuration" "$STATE/encryption-config.json" 77 "$HOOK"
chown 0 "$STATE/encryption-config.json"
chmod 660 "$STATE/encryption-config.json"
refused "encryption configuration" "$STATE/encryption-config.json" 77 "$CLI" status
chmod 600 "$STATE/encryption-config.json"
check "all trusted again: the hook starts the server" "$HOOK"

# ---- fleet hooks ---------------------------------------------------------------------------------
# 10-good is root's; 20-foreign another user's; 30-groupw group-writable; 40-link a root-owned
# symlink to another user's file. Only 10-good may run, and the command still succeeds.
for h in 10-good 20-foreign 30-groupw 41-target; do
        printf '#!/bin/sh\necho "$SECRETS_ENCRYPT_EVENT" >> %s/ran-%s\n' "$W" "$h" >"$W/hooks.d/$h"
        chmod 755 "$W/hooks.d/$h"
done
mv "$W/hooks.d/41-target" "$W/target-hook"
ln -s "$W/target-hook" "$W/hooks.d/40-link"
chown "$NOBODY" "$W/hooks.d/20-foreign" "$W/target-hook"
chmod 775 "$W/hooks.d/30-groupw"
se_capture "$W" "$CLI" prepare
check "prepare with untrusted hooks in hooks-dir succeeds (exit $rc)" test "$rc" = 0
check "the trusted hook ran on stage-changed" grep -qx stage-changed "$W/ran-10-good"
for h in 20-foreign 30-groupw 41-target; do
        check "untrusted hook $h did not run" test ! -e "$W/ran-$h"
done
check "refused hooks are logged with the path and the fix" bash -c \
        "grep -qF 'fix: chown root:root $W/hooks.d/20-foreign; chmod go-w $W/hooks.d/20-foreign' '$W/err' &&
         grep -qF '$W/hooks.d/30-groupw: refusing the fleet hook' '$W/err' &&
         grep -qF '$W/hooks.d/40-link: refusing the fleet hook' '$W/err'"
rm -f "$W/ran-10-good"
chmod 777 "$W/hooks.d"
se_capture "$W" "$CLI" rotate
check "rotate with a world-writable hooks-dir succeeds (exit $rc)" test "$rc" = 0
check "no hook ran from the world-writable hooks-dir" test ! -e "$W/ran-10-good"
check "the refused hooks-dir is logged with the fix" \
        grep -qF "fix: chown root:root $W/hooks.d; chmod go-w $W/hooks.d" "$W/err"
chmod 755 "$W/hooks.d"
rm -f "$W/hooks.d/"*

# ---- hanging fleet hooks: a budget for all of them ------------------------------------------------
# timeout 8s: each hook may take min(30 s, 8 s), so three hanging ones would take 24 s, three times
# the hook's deadline. Together they get a quarter of the timeout setting; the rest are logged and
# not run, and the hook gives its own verdict.
for h in 1 2 3; do
        printf '#!/bin/sh\nexec sleep 300\n' >"$W/hooks.d/$h-hang"
        chmod 755 "$W/hooks.d/$h-hang"
done
cp "$CONF" "$W/config.saved"
echo "timeout: 8s" >>"$CONF"
cp "$STATE/encryption-config.json" "$W/good.json"
printf 'kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: 7\n' >"$STATE/encryption-config.json"
SECRETS_ENCRYPT_FLEET_HOOK_TIMEOUT= se_capture "$W" "$HOOK"
check "three hanging fleet hooks: the hook gives its own verdict, invalid config (exit $rc)" \
        test "$rc" = 78
check "the hooks past the budget are logged, not run" grep -q "not run: the fleet hooks of this run used up" "$W/err"
install -m 600 "$W/good.json" "$STATE/encryption-config.json"
cp "$W/config.saved" "$CONF"
rm -f "$W/hooks.d/"*

# ---- a FIFO at metrics-file ----------------------------------------------------------------------
rm -f "$W/metrics.prom"
mkfifo "$W/metrics.prom"
# nothing ever writes to the FIFO: a blocking open would hang until the safety timeout
se_capture "$W" timeout 120 "$HOOK"
check "a FIFO at metrics-file: the hook neither blocks nor fails (exit $rc)" test "$rc" = 0
check "the metrics file was written in the FIFO's place" bash -c \
        "test -f '$W/metrics.prom' && grep -q '^secrets_encrypt_hook_failed 0' '$W/metrics.prom'"

# ---- no core dumps -------------------------------------------------------------------------------
# An unprivileged run on its own files (owner = the invoking user is trusted); its fleet hook looks
# at its parent: /proc/PID/environ is root's when the process is not dumpable (the kernel's
# task_dump_owner()), and the core limit is 0.
if command -v setpriv >/dev/null; then
        U="$W/unpriv"
        mkdir -p "$U/state" "$U/hooks.d"
        chmod 711 "$W" "$BIN"
        se_settings "$U/config.yaml" "$U/state" "sqlite://$U/db.sqlite" unpriv-node "hooks-dir: $U/hooks.d"
        # an invalid configuration: the failure event runs the hooks
        printf 'kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: 7\n' \
                >"$U/state/encryption-config.json"
        cat >"$U/hooks.d/probe" <<EOF
#!/bin/sh
p=\$PPID
{ echo "owner=\$(stat -c %u /proc/\$p/environ)"; echo "ulimit=\$(ulimit -c)"
  grep '^Max core file size' /proc/\$p/limits; } > "$U/probe-\$(cat /proc/\$p/comm)"
EOF
        chmod 755 "$U/hooks.d/probe"
        chmod 700 "$U/state"
        chown -R "$NOBODY:$NOBODY" "$U"
        priv() { setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$@"; }
        se_capture "$W" priv "$HOOK" --config "$U/config.yaml"
        check "unprivileged hook on its own files: the invalid config fails it (exit $rc)" test "$rc" = 78
        se_capture "$W" priv "$CLI" --config "$U/config.yaml" prepare
        for prog in secrets-encrypt-hook secrets-encrypt; do
                f="$U/probe-${prog:0:15}"
                if [ -s "$f" ]; then
                        check "$prog is not dumpable (its /proc/PID/environ is root's, not uid $NOBODY's)" \
                                grep -qx "owner=0" "$f"
                        check "$prog runs with a core size limit of 0" bash -c \
                                "grep -qx 'ulimit=0' '$f' && grep -Eq '^Max core file size +0 +0 ' '$f'"
                else
                        not_ok "$prog: the probe hook did not run (exit $rc)"
                        show <"$W/err"
                fi
        done
        # the negative control: a process that does not harden itself is dumpable
        priv sh -c 'stat -c %u /proc/$$/environ' >"$W/control" 2>&1
        check "control: an ordinary unprivileged process's /proc/PID/environ is its own" grep -qx "$NOBODY" "$W/control"
        chmod 700 "$W"
else
        skip "setpriv missing: core-dump checks through the programs"
fi

se_common_finish
