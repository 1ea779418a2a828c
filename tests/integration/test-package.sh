#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The packages (issue 18): `make deb` (lintian clean) installed, used and purged in a clean
# Debian 12 root, and `make rpm` with exactly the expected files.
#
# The clean root comes from `debootstrap --variant=minbase bookworm` (with man-db, systemd for
# journalctl, and the libraries the package depends on, so apt needs no network inside the root)
# from the mirror apt is configured with. The downloaded packages are kept as a debootstrap
# tarball in $SE_PACKAGE_CACHE (default /var/cache/secrets-encrypt-test), so later runs unpack
# it without the network. The root case is skipped only when debootstrap cannot reach the
# archive, and says why. The root runs no service: only chroot, no /proc is needed.
set -u
. "$(dirname "$0")/lib-common.sh"
cd "$SE_ROOT" || exit 1
[ "$(id -u)" = 0 ] || { skip "needs root (chroot, debootstrap)"; exit 0; }
se_need dpkg-buildpackage lintian debootstrap rpmbuild rpm chroot python3
se_common_init package

VERSION=$(sed -n 's/^VERSION := //p' Makefile)
ARCH=$(dpkg --print-architecture)
CACHE=${SE_PACKAGE_CACHE:-/var/cache/secrets-encrypt-test}
INCLUDE=man-db,systemd,libyaml-0-2,libjson-c5,libsqlite3-0,libsodium23,libssl3,libsystemd0
ROOT="$W/root"
show() { sed 's/^/#   /' | head -n "${1:-30}"; }

# ---- make deb ------------------------------------------------------------------------------------
if make --no-print-directory deb >"$W/deb.log" 2>&1; then
        ok "make deb: built with dpkg-buildpackage -b, lintian --fail-on error,warning passed"
else
        not_ok "make deb"
        tail -n 40 "$W/deb.log" | show 40
        se_common_finish
fi
DEB=build/pkg/deb/secrets-encrypt_${VERSION}_$ARCH.deb
LIB=build/pkg/deb/libsecrets-encrypt0_${VERSION}_$ARCH.deb
DEV=build/pkg/deb/libsecrets-encrypt-dev_${VERSION}_$ARCH.deb
check "the .debs are named <package>_<version>_<arch>.deb" test -f "$DEB" -a -f "$LIB" -a -f "$DEV"
lintian --display-info build/pkg/deb/secrets-encrypt_"${VERSION}"_"$ARCH".changes >"$W/lintian.out" 2>&1
if ! grep -qE '^[EW]: ' "$W/lintian.out"; then
        ok "lintian: no error or warning ($(grep -cE '^[IPX]: ' "$W/lintian.out") info/pedantic tags)"
else
        not_ok "lintian reports errors or warnings"
        grep -E '^[EW]: ' "$W/lintian.out" | show
fi
# every override names its reason on the line before
bad=""
for f in debian/*lintian-overrides; do
        [ -f "$f" ] || continue
        awk '!/^#/ && NF && prev !~ /^# ./ { bad = 1 } { prev = $0 } END { exit bad }' "$f" || bad="$bad $f"
done
check "every lintian override has a one-line reason above it" test -z "$bad"

dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$W/deb.files"
dpkg-deb -I "$DEB" conffiles >"$W/deb.conffiles" 2>/dev/null
check "conffiles: exactly /etc/secrets-encrypt/config.yaml" test "$(cat "$W/deb.conffiles")" = /etc/secrets-encrypt/config.yaml
check "no drop-in where systemd reads it; the three under /usr/share/secrets-encrypt/dropins/" bash -c "
        ! grep -E '/(lib|etc)/systemd/system/[^/]+\\.service\\.d/' '$W/deb.files' &&
        test \$(grep -cE '^/usr/share/secrets-encrypt/dropins/(k3s|rke2-server|kube-apiserver)\\.service\\.d/50-secrets-encrypt\\.conf\$' '$W/deb.files') = 3"
for f in /usr/bin/secrets-encrypt /usr/libexec/secrets-encrypt/secrets-encrypt-hook \
        /usr/lib/systemd/catalog/secrets-encrypt.catalog /usr/share/man/man8/secrets-encrypt.8.gz \
        /usr/share/bash-completion/completions/secrets-encrypt /usr/share/zsh/vendor-completions/_secrets-encrypt \
        /lib/systemd/system/secrets-encrypt-rotate.service /lib/systemd/system/secrets-encrypt-rotate.timer; do
        grep -qx "$f" "$W/deb.files" || not_ok "secrets-encrypt.deb lacks $f"
done
ok "secrets-encrypt.deb holds the programs, catalog, man page, completions and timer units"
deps=$(dpkg-deb -f "$DEB" Depends)
check "Depends from shlibs (libsystemd0, libjson-c5, the library), libcurl only recommended" bash -c "
        grep -q 'libsystemd0' <<<'$deps' && grep -q 'libsecrets-encrypt0 (= $VERSION)' <<<'$deps' &&
        ! grep -q curl <<<'$deps' && test '$(dpkg-deb -f "$DEB" Recommends)' = libcurl4"

# ---- a clean Debian 12 root ----------------------------------------------------------------------
# The mirror apt uses for bookworm (not the security archive); SE_DEBIAN_MIRROR overrides it.
mirror=${SE_DEBIAN_MIRROR:-$(python3 - <<'PYEOF'
import glob, re
found = []
for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
    try:
        text = open(p).read()
    except OSError:
        continue
    if p.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            f = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if "bookworm" in f.get("Suites", "").split() and "deb" in f.get("Types", "").split():
                found += f.get("URIs", "").split()
    else:
        for line in text.splitlines():
            m = re.match(r"^\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
            if m:
                found.append(m.group(2))
print(found[0] if found else "")
PYEOF
)}
key=$(printf '%s %s %s' bookworm "$ARCH" "$INCLUDE" | sha256sum | cut -c1-12)
TARBALL="$CACHE/bookworm-minbase-$ARCH-$key.tgz"
ROOT_OK=0
if [ ! -s "$TARBALL" ]; then
        mkdir -p "$CACHE"
        if [ -z "$mirror" ]; then
                skip "clean root: no bookworm mirror in /etc/apt/sources.list(.d) (set SE_DEBIAN_MIRROR)"
        elif debootstrap --variant=minbase --include="$INCLUDE" --make-tarball="$TARBALL.tmp" bookworm \
                "$W/make-tarball" "$mirror" >"$W/debootstrap-make.log" 2>&1; then
                mv "$TARBALL.tmp" "$TARBALL"
        else
                rm -f "$TARBALL.tmp"
                skip "clean root: debootstrap cannot reach $mirror: $(grep -E '^E:' "$W/debootstrap-make.log" | head -n 1)"
        fi
fi
if [ -s "$TARBALL" ]; then
        if debootstrap --variant=minbase --include="$INCLUDE" --unpack-tarball="$TARBALL" bookworm "$ROOT" \
                "${mirror:-http://deb.debian.org/debian}" >"$W/debootstrap.log" 2>&1; then
                ok "clean Debian 12 root (debootstrap --variant=minbase, cached $TARBALL)"
                ROOT_OK=1
        else
                not_ok "debootstrap --unpack-tarball $TARBALL"
                tail -n 20 "$W/debootstrap.log" | show
        fi
fi
# debootstrap mounts /proc and /sys in the root while it installs; nothing may stay mounted
unmount_root() {
        local m
        [ -d "$ROOT" ] || return 0
        for m in $(awk -v r="$ROOT" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
                umount -l "$m" 2>/dev/null
        done
}
se_common_at_exit unmount_root

# in_root CMD...: runs CMD in the root with a clean environment
in_root() {
        chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
                DEBIAN_FRONTEND=noninteractive "$@"
}

if [ "$ROOT_OK" = 1 ]; then
        check "no /proc or /sys left mounted in the root" bash -c "! awk '{ print \$5 }' /proc/self/mountinfo | grep -q '^$ROOT/'"
        cp "$DEB" "$LIB" "$ROOT/tmp/"
        # an API-server drop-in activated as `secrets-encrypt setup` would, and an edited one
        mkdir -p "$ROOT/etc/systemd/system/rke2-server.service.d"
        printf '[Service]\nExecStartPre=/usr/libexec/secrets-encrypt/secrets-encrypt-hook --unit=%%n\n# edited\n' \
                >"$ROOT/etc/systemd/system/rke2-server.service.d/50-secrets-encrypt.conf"
        if in_root apt-get install -y --no-install-recommends "/tmp/${DEB##*/}" "/tmp/${LIB##*/}" >"$W/apt-install.log" 2>&1; then
                ok "apt-get install ./secrets-encrypt_${VERSION}_$ARCH.deb ./libsecrets-encrypt0_… in the root"
        else
                not_ok "apt-get install in the root"
                tail -n 30 "$W/apt-install.log" | show
        fi
        check "secrets-encrypt --version: secrets-encrypt $VERSION" \
                test "$(in_root secrets-encrypt --version 2>&1)" = "secrets-encrypt $VERSION"
        check "man -w secrets-encrypt: /usr/share/man/man8/secrets-encrypt.8.gz" \
                test "$(in_root man -w secrets-encrypt 2>&1)" = /usr/share/man/man8/secrets-encrypt.8.gz
        ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' units/secrets-encrypt.catalog | sort)
        listed=$(in_root journalctl --list-catalog 2>/dev/null | awk '$2 == "secrets-encrypt:" { print $1 }' | sort)
        check "journalctl --list-catalog in the root: all $(grep -c . <<<"$ids") of our entries" \
                test -n "$ids" -a "$listed" = "$ids"
        cat >"$ROOT/tmp/sample.json" <<'EOS'
{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{"resources":["secrets"],"providers":[{"aescbc":{"keys":[{"name":"aescbckey","secret":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}},{"identity":{}}]}]}
EOS
        out=$(in_root secrets-encrypt validate /tmp/sample.json 2>&1)
        check "secrets-encrypt validate on a sample: OK sha256:…" grep -qE '^OK sha256:[0-9a-f]{64}$' <<<"$out" || show <<<"$out"
        check "the example config changes nothing: every setting commented out, and it loads" bash -c "
                ! grep -vE '^\\s*(#|\$)' '$ROOT/etc/secrets-encrypt/config.yaml' &&
                chroot '$ROOT' secrets-encrypt --config /etc/secrets-encrypt/config.yaml facts >/dev/null"
        check "installing enabled nothing: no timer link, no active drop-in added" bash -c "
                ! ls '$ROOT'/etc/systemd/system/*.wants/secrets-encrypt-* 2>/dev/null &&
                test ! -e '$ROOT/etc/systemd/system/k3s.service.d/50-secrets-encrypt.conf'"
        check "bash completion registered for secrets-encrypt" bash -c \
                "chroot '$ROOT' bash -c '. /usr/share/bash-completion/completions/secrets-encrypt && complete -p secrets-encrypt' | grep -q _secrets_encrypt"

        # setup in the clean root: a k3s unit as get.k3s.io writes it, SQLite datastore
        printf '[Unit]\nDescription=k3s\n[Service]\nType=notify\nExecStart=/usr/local/bin/k3s server\n' \
                >"$ROOT/etc/systemd/system/k3s.service"
        check "secrets-encrypt setup in the clean root" chroot "$ROOT" env -u SYSTEMD_UNIT_PATH secrets-encrypt setup
        check "setup's drop-in runs the installed hook" grep -qx \
                'ExecStartPre=/usr/libexec/secrets-encrypt/secrets-encrypt-hook --unit=%n' \
                "$ROOT/etc/systemd/system/k3s.service.d/50-secrets-encrypt.conf"
        check "setup pointed k3s at the config in /var/lib/secrets-encrypt" grep -qx \
                '  - encryption-provider-config=/var/lib/secrets-encrypt/encryption-config.json' \
                "$ROOT/etc/rancher/k3s/config.yaml.d/50-secrets-encrypt.yaml"

        # remove: the drop-in setup wrote goes with the hook, one edited by hand stays
        mkdir -p "$ROOT/var/lib/secrets-encrypt"
        echo "key material stand-in" >"$ROOT/var/lib/secrets-encrypt/encryption-config.json"
        if in_root apt-get purge -y secrets-encrypt libsecrets-encrypt0 >"$W/apt-purge.log" 2>&1; then
                ok "apt-get purge secrets-encrypt libsecrets-encrypt0"
        else
                not_ok "apt-get purge"
                tail -n 30 "$W/apt-purge.log" | show
        fi
        check "purge: the state directory is kept, and the purge says so" bash -c "
                test -s '$ROOT/var/lib/secrets-encrypt/encryption-config.json' &&
                grep -q '/var/lib/secrets-encrypt (encryption keys and rotation state) is kept' '$W/apt-purge.log'"
        check "purge: programs and the conffile are gone" \
                test ! -e "$ROOT/usr/bin/secrets-encrypt" -a ! -e "$ROOT/etc/secrets-encrypt/config.yaml"
        check "remove: the k3s drop-in setup wrote is removed with the hook" \
                test ! -e "$ROOT/etc/systemd/system/k3s.service.d/50-secrets-encrypt.conf"
        check "remove: the edited rke2 drop-in is left, with a warning" bash -c "
                test -e '$ROOT/etc/systemd/system/rke2-server.service.d/50-secrets-encrypt.conf' &&
                grep -q 'rke2-server.service.d/50-secrets-encrypt.conf was not written by secrets-encrypt setup' '$W/apt-purge.log'"
        check "purge: the catalog entries are gone from journalctl --list-catalog" bash -c \
                "! chroot '$ROOT' journalctl --list-catalog 2>/dev/null | grep -q ' secrets-encrypt: '"
fi

# ---- make rpm ------------------------------------------------------------------------------------
if make --no-print-directory rpm >"$W/rpm.log" 2>&1; then
        ok "make rpm: rpmbuild -bb packaging/rpm/secrets-encrypt.spec"
else
        not_ok "make rpm"
        tail -n 40 "$W/rpm.log" | show 40
        se_common_finish
fi
RPMS=build/pkg/rpm/RPMS/$(uname -m)
headers=$(cd module && ls secrets-encrypt.h */se-*.h | sed 's|.*/||' | sort | sed 's|^|/usr/include/secrets-encrypt/|')
expect_main="/etc/secrets-encrypt
/etc/secrets-encrypt/config.yaml
/usr/bin/secrets-encrypt
/usr/lib/systemd/catalog/secrets-encrypt.catalog
/usr/lib/systemd/system/secrets-encrypt-rotate.service
/usr/lib/systemd/system/secrets-encrypt-rotate.timer
/usr/libexec/secrets-encrypt
/usr/libexec/secrets-encrypt/secrets-encrypt-hook
/usr/share/bash-completion/completions/secrets-encrypt
/usr/share/doc/secrets-encrypt-$VERSION
/usr/share/doc/secrets-encrypt-$VERSION/README.md
/usr/share/man/man8/secrets-encrypt.8
/usr/share/secrets-encrypt
/usr/share/secrets-encrypt/dropins
/usr/share/secrets-encrypt/dropins/k3s.service.d
/usr/share/secrets-encrypt/dropins/k3s.service.d/50-secrets-encrypt.conf
/usr/share/secrets-encrypt/dropins/kube-apiserver.service.d
/usr/share/secrets-encrypt/dropins/kube-apiserver.service.d/50-secrets-encrypt.conf
/usr/share/secrets-encrypt/dropins/rke2-server.service.d
/usr/share/secrets-encrypt/dropins/rke2-server.service.d/50-secrets-encrypt.conf
/usr/share/secrets-encrypt/secrets-encrypt.rules.yml
/usr/share/zsh/site-functions/_secrets-encrypt"
expect_libs="/usr/lib64/libsecrets-encrypt.so.0
/usr/lib64/libsecrets-encrypt.so.0.1.0"
expect_devel="/usr/include/secrets-encrypt
$headers
/usr/lib64/libsecrets-encrypt.so"
# rpm -qlp, without the /usr/lib/.build-id/ links (one per ELF file, named by its build id)
files_of() { rpm -qlp "$1" 2>/dev/null | grep -v '^/usr/lib/\.build-id' | sed 's/\.8\.gz$/.8/' | sort; }
for p in main libs devel; do
        case $p in
        main) f=$RPMS/secrets-encrypt-$VERSION-1.$(uname -m).rpm want=$expect_main ;;
        libs) f=$RPMS/secrets-encrypt-libs-$VERSION-1.$(uname -m).rpm want=$expect_libs ;;
        devel) f=$RPMS/secrets-encrypt-devel-$VERSION-1.$(uname -m).rpm want=$expect_devel ;;
        esac
        got=$(files_of "$f")
        if [ "$got" = "$(sort <<<"$want")" ]; then
                ok "rpm -qlp ${f##*/}: exactly the $(grep -c . <<<"$got") expected files"
        else
                not_ok "rpm -qlp ${f##*/} differs from the expected files"
                diff <(sort <<<"$want") <(echo "$got") | show
        fi
done
scripts=$(rpm -qp --scripts "$RPMS/secrets-encrypt-$VERSION-1.$(uname -m).rpm" 2>/dev/null)
check "rpm scriptlets: preset on first install, disable on erase, daemon-reload; no enable or start" bash -c "
        grep -q 'preset secrets-encrypt-rotate.service secrets-encrypt-rotate.timer' <<<\"\$1\" &&
        grep -q 'disable --now' <<<\"\$1\" && grep -q 'daemon-reload' <<<\"\$1\" &&
        ! grep -qE 'systemctl( [a-z-]+)* (enable|start|restart) ' <<<\"\$1\"" _ "$scripts"
check "rpm: config.yaml is %config(noreplace)" bash -c \
        "rpm -qp --configfiles '$RPMS/secrets-encrypt-$VERSION-1.$(uname -m).rpm' | grep -qx /etc/secrets-encrypt/config.yaml"
check "rpm: libcurl recommended, not required" bash -c "
        rpm -qp --recommends '$RPMS/secrets-encrypt-$VERSION-1.$(uname -m).rpm' | grep -q '^libcurl' &&
        ! rpm -qpR '$RPMS/secrets-encrypt-$VERSION-1.$(uname -m).rpm' | grep -q curl"

se_common_finish
