#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Lints what units/ ships: the journald catalog (journalctl --root=DIR --update-catalog, listing,
# -x rendering is in test-systemd-harness.sh) and each drop-in applied to a stand-in unit
# (systemd-analyze verify, any output is a failure), the rotation timer and service (verify, the
# systemd-analyze security exposure), the example settings file, and where `make install` puts
# things (drop-ins inactive under share/). Needs no root and starts nothing.
set -u
cd "$(dirname "$0")/../.." || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/se-units.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

fail=0
ok() { echo "ok - $*"; }
not_ok() {
        echo "not ok - $*"
        fail=1
}
show() { sed 's/^/#   /' | head -n 30; }

CATALOG=units/secrets-encrypt.catalog
ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$CATALOG" | sort)
n_ids=$(grep -c . <<<"$ids")

# ---- catalog ---------------------------------------------------------------------------------------
if ! command -v journalctl >/dev/null; then
        echo "ok - # SKIP journalctl missing"
else
        mkdir -p "$TMP/root/usr/lib/systemd/catalog"
        cp "$CATALOG" "$TMP/root/usr/lib/systemd/catalog/"
        out=$(journalctl --root="$TMP/root" --update-catalog 2>&1)
        rc=$?
        if [ "$rc" = 0 ] && [ -z "$out" ] && [ -s "$TMP/root/var/lib/systemd/catalog/database" ]; then
                ok "journalctl --update-catalog accepts the catalog"
        else
                not_ok "journalctl --update-catalog (exit $rc)"
                show <<<"$out"
        fi

        listed=$(journalctl --root="$TMP/root" --list-catalog 2>&1)
        got=$(awk '{ print $1 }' <<<"$listed" | sort)
        if [ "$got" = "$ids" ] && [ "$n_ids" -ge 18 ]; then
                ok "--list-catalog shows all $n_ids entries"
        else
                not_ok "--list-catalog differs from the ids in $CATALOG"
                diff <(echo "$ids") <(echo "$got") | show
        fi
        if [ "$(grep -c ' secrets-encrypt: ' <<<"$listed")" = "$n_ids" ]; then
                ok "every entry is Defined-By: secrets-encrypt"
        else
                not_ok "entries without Defined-By: secrets-encrypt"
        fi

        # every entry has the headers an operator sees, and a body
        bad=""
        for id in $ids; do
                entry=$(journalctl --root="$TMP/root" --dump-catalog "$id" 2>&1)
                for h in Subject: Defined-By: Support: Documentation:; do
                        grep -q "^$h " <<<"$entry" || bad="$bad $id:$h"
                done
                [ "$(sed '1,/^$/d' <<<"$entry" | grep -c .)" -ge 2 ] || bad="$bad $id:body"
        done
        if [ -z "$bad" ]; then
                ok "--dump-catalog: every entry has Subject, Defined-By, Support, Documentation and a body"
        else
                not_ok "incomplete catalog entries:$bad"
        fi
        entry=$(journalctl --root="$TMP/root" --dump-catalog b1db07f8234e4246a18e3d3193f89a55 2>&1)
        if grep -q '^Subject: Encryption stage changed to @SECRETS_ENCRYPT_STAGE@$' <<<"$entry"; then
                ok "--dump-catalog shows the stage-changed entry with its @SECRETS_ENCRYPT_STAGE@ substitution"
        else
                not_ok "stage-changed entry not found"
                show <<<"$entry"
        fi
        if [ -z "$(awk 'length > 76 && !/^#/' "$CATALOG")" ]; then
                ok "catalog text wrapped at 76 columns"
        else
                not_ok "catalog lines longer than 76 columns"
        fi

        # the check can fail: a payload before the first id is rejected
        mkdir -p "$TMP/bad/usr/lib/systemd/catalog"
        { echo "stray text"; cat "$CATALOG"; } >"$TMP/bad/usr/lib/systemd/catalog/secrets-encrypt.catalog"
        if journalctl --root="$TMP/bad" --update-catalog >/dev/null 2>&1; then
                not_ok "a malformed catalog was accepted (the check cannot fail)"
        else
                ok "a malformed catalog is rejected (negative control)"
        fi
fi

# ---- drop-ins --------------------------------------------------------------------------------------
mkdir -p "$TMP/libexec/secrets-encrypt" "$TMP/units"
printf '#!/bin/sh\nexit 0\n' >"$TMP/libexec/secrets-encrypt/secrets-encrypt-hook"
chmod 0755 "$TMP/libexec/secrets-encrypt/secrets-encrypt-hook"

# the substitution `make install` does
subst() {
        sed -e "s|@LIBEXECDIR@|$TMP/libexec|g" -e "s|@BINDIR@|/usr/local/bin|g" -e "s|@SYSCONFDIR@|/etc|g" "$1"
}

verify() {
        SYSTEMD_UNIT_PATH="$TMP/units:" systemd-analyze verify --man=no "$TMP/units/$1" 2>&1
}

dropins=(units/*.service.d/50-secrets-encrypt.conf)
for want in k3s rke2-server kube-apiserver; do
        [ -f "units/$want.service.d/50-secrets-encrypt.conf" ] || not_ok "units/$want.service.d/50-secrets-encrypt.conf missing"
done

for f in "${dropins[@]}"; do
        d=$(basename "$(dirname "$f")")
        unit=${d%.d}
        name="$unit drop-in"

        lines=$(grep -E '^ExecStartPre=' "$f")
        if [ "$(grep -c . <<<"$lines")" = 1 ] && grep -qE '^ExecStartPre=@LIBEXECDIR@/secrets-encrypt/secrets-encrypt-hook( |$)' <<<"$lines"; then
                ok "$name: one ExecStartPre= running the hook, no '-' prefix, not empty"
        else
                not_ok "$name: ExecStartPre= lines wrong"
                show <<<"$lines"
        fi
        if grep -qx 'NotifyAccess=exec' "$f"; then ok "$name: NotifyAccess=exec"; else not_ok "$name: NotifyAccess=exec missing"; fi
        if grep -qE '^LoadCredential=secrets-encrypt-token$' "$f"; then
                ok "$name: LoadCredential=secrets-encrypt-token (ID only, missing credential not fatal)"
        else
                not_ok "$name: LoadCredential= line"
        fi
        if grep -qE '^(TimeoutStartSec|ProtectSystem|PrivateTmp|Type|Restart)=' "$f"; then
                not_ok "$name: sets something that would change the server itself"
        else
                ok "$name: no sandboxing or timeouts that would hit the server"
        fi

        if ! command -v systemd-analyze >/dev/null; then
                echo "ok - # SKIP systemd-analyze missing"
                continue
        fi
        rm -rf "$TMP/units" && mkdir -p "$TMP/units/$d"
        printf '[Unit]\nDescription=Stand-in for %s\n\n[Service]\nType=notify\nExecStart=/bin/sleep infinity\n' \
                "$unit" >"$TMP/units/$unit"
        subst "$f" >"$TMP/units/$d/50-secrets-encrypt.conf"
        if grep -q '@[A-Z]*@' "$TMP/units/$d/50-secrets-encrypt.conf"; then
                not_ok "$name: placeholders left after substitution"
        fi
        out=$(verify "$unit")
        rc=$?
        if [ "$rc" = 0 ] && [ -z "$out" ]; then
                ok "$name: systemd-analyze verify is silent"
        else
                not_ok "$name: systemd-analyze verify (exit $rc)"
                show <<<"$out"
        fi

        # the check can fail: the drop-in really is loaded, and a bad key is reported
        printf '\n[Service]\nTimeoutStartSc=5\n' >>"$TMP/units/$d/50-secrets-encrypt.conf"
        out=$(verify "$unit")
        if grep -q 'TimeoutStartSc' <<<"$out"; then
                ok "$name: verify reports a broken drop-in (negative control)"
        else
                not_ok "$name: verify did not load the drop-in"
                show <<<"$out"
        fi
done

# ---- rotation timer and service -------------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
        rm -rf "$TMP/units" && mkdir -p "$TMP/units" "$TMP/bin"
        printf '#!/bin/sh\nexit 0\n' >"$TMP/bin/secrets-encrypt" && chmod 0755 "$TMP/bin/secrets-encrypt"
        sed -e "s|@BINDIR@|$TMP/bin|g" units/secrets-encrypt-rotate.service >"$TMP/units/secrets-encrypt-rotate.service"
        cp units/secrets-encrypt-rotate.timer "$TMP/units/"
        out=$(SYSTEMD_UNIT_PATH="$TMP/units:" systemd-analyze verify --man=no "$TMP/units/secrets-encrypt-rotate.timer" \
                "$TMP/units/secrets-encrypt-rotate.service" 2>&1)
        rc=$?
        if [ "$rc" = 0 ] && [ -z "$out" ]; then
                ok "rotate timer and service: systemd-analyze verify is silent"
        else
                not_ok "rotate timer and service: systemd-analyze verify (exit $rc)"
                show <<<"$out"
        fi
        score=$(systemd-analyze security --offline=true "$TMP/units/secrets-encrypt-rotate.service" 2>/dev/null |
                sed -n 's/.*Overall exposure level for secrets-encrypt-rotate.service: \([0-9.]*\).*/\1/p')
        if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
                ok "rotate service: systemd-analyze security exposure $score (at most 2.0, README records it)"
        else
                not_ok "rotate service: systemd-analyze security exposure '$score' (want at most 2.0)"
        fi
else
        echo "ok - # SKIP systemd-analyze missing"
fi
if grep -q '^\[Install\]' units/secrets-encrypt-rotate.service; then
        not_ok "rotate service has an [Install] section (only the timer is enabled)"
else
        ok "rotate service: no [Install], started by the timer only"
fi

# ---- the example settings file --------------------------------------------------------------------
# every key is there, commented out: installing it changes no setting
keys=$(sed -n '/se_settings_keys\[\] = {/,/NULL/p' module/base/settings.c | sed -n 's/^ *"\([a-z-]*\)",$/\1/p')
missing=""
for k in $keys; do grep -qE "^#$k: " packaging/config.yaml || missing="$missing $k"; done
if [ -n "$keys" ] && [ -z "$missing" ] && ! grep -vqE '^(#|$)' packaging/config.yaml; then
        ok "packaging/config.yaml: all $(wc -w <<<"$keys") settings, each commented out"
else
        not_ok "packaging/config.yaml: missing or active settings:$missing"
fi

# ---- make install: where things go -----------------------------------------------------------------
B=${SE_BUILD:-build}
if [ -x "$B/secrets-encrypt" ] && [ -e "$B/libsecrets-encrypt.so.0" ]; then
        if make --no-print-directory B="$B" install DESTDIR="$TMP/dest" PREFIX=/usr SYSTEMDUNITDIR=/usr/lib/systemd/system \
                BASHCOMPDIR=/usr/share/bash-completion/completions ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
                >"$TMP/install.log" 2>&1; then
                ok "make install DESTDIR=…"
        else
                not_ok "make install"
                show <"$TMP/install.log"
        fi
        if [ -z "$(find "$TMP/dest" -path '*/systemd/system/*.service.d' 2>/dev/null)" ] &&
                [ "$(find "$TMP/dest/usr/share/secrets-encrypt/dropins" -name 50-secrets-encrypt.conf | wc -l)" = 3 ]; then
                ok "make install: no drop-in where systemd reads it; three under share/secrets-encrypt/dropins/"
        else
                not_ok "make install: drop-ins in the wrong place"
                find "$TMP/dest" -name '*.conf' | show
        fi
        if grep -q '@[A-Z]*@' -r "$TMP/dest/usr/share/secrets-encrypt/dropins" "$TMP/dest/usr/lib/systemd/system"; then
                not_ok "make install: placeholders left in installed units"
        elif grep -qx 'ExecStartPre=/usr/libexec/secrets-encrypt/secrets-encrypt-hook --unit=%n' \
                "$TMP/dest/usr/share/secrets-encrypt/dropins/k3s.service.d/50-secrets-encrypt.conf" &&
                grep -qx 'ExecStart=/usr/bin/secrets-encrypt ensure --rotate-due --restart' \
                        "$TMP/dest/usr/lib/systemd/system/secrets-encrypt-rotate.service"; then
                ok "make install: @LIBEXECDIR@ and @BINDIR@ substituted in the drop-ins and the rotate service"
        else
                not_ok "make install: substitution"
        fi
        for f in usr/lib/systemd/system/secrets-encrypt-rotate.timer usr/share/bash-completion/completions/secrets-encrypt \
                usr/share/zsh/vendor-completions/_secrets-encrypt etc/secrets-encrypt/config.yaml; do
                [ -f "$TMP/dest/$f" ] || not_ok "make install: /$f missing"
        done
        ok "make install: timer, completions and the example config installed"
        echo "state-dir: /srv/mine" >"$TMP/dest/etc/secrets-encrypt/config.yaml"
        make --no-print-directory B="$B" install DESTDIR="$TMP/dest" PREFIX=/usr >/dev/null 2>&1
        if [ "$(cat "$TMP/dest/etc/secrets-encrypt/config.yaml")" = "state-dir: /srv/mine" ]; then
                ok "make install: an existing config.yaml is never replaced"
        else
                not_ok "make install replaced an existing config.yaml"
        fi
else
        echo "ok - # SKIP make install: $B not built"
fi

exit "$fail"
