#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The layout of module/ is its architecture (README "Layout"): folders in dependency order, each
# file using only headers of its own folder or of folders before it, and no two source files
# calling into each other (the three cycles that used to exist: ha.c <-> operation.c, envelope.c
# <-> the ciphers, config-parse.c <-> its front ends). Reads the sources and the objects' symbols.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
ORDER=$(sed -n 's/^MODULE_DIRS := //p' Makefile)
[ -n "$ORDER" ] || { echo "not ok - MODULE_DIRS not found in the Makefile"; exit 1; }

# every .c/.h is in one of the folders, none left at the top but the umbrella header
stray=$(find module -maxdepth 1 -type f ! -name secrets-encrypt.h | paste -sd' ')
check "module/ holds only the folders and secrets-encrypt.h" test -z "$stray"
for d in $(find module -mindepth 1 -maxdepth 1 -type d -printf '%f\n'); do
        check "module/$d is a listed layer" grep -qw "$d" <<<"$ORDER"
done

# rank of each header by the folder it is in
declare -A rank folder_of
i=0
for d in $ORDER; do
        rank[$d]=$i
        for h in module/"$d"/*.h; do
                [ -e "$h" ] && folder_of[$(basename "$h")]=$d
        done
        i=$((i + 1))
done
upward=""
for d in $ORDER; do
        for f in module/"$d"/*.[ch]; do
                [ -e "$f" ] || continue
                for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
                        hd=${folder_of[$h]:-}
                        [ -z "$hd" ] && continue # tests' or system headers
                        [ "${rank[$hd]}" -le "${rank[$d]}" ] || upward="$upward $f→$hd/$h"
                done
        done
done
check "no file includes a header of a folder above its own${upward:+:$upward}" test -z "$upward"

# calls between source files: which object defines and which uses each global symbol
objs=$(for c in module/*/*.c; do o="$B/${c%.c}.o"; [ -e "$o" ] && echo "$o"; done)
if [ -z "$objs" ]; then
        not_ok "no objects under $B/module (make all first)"
else
        cycles=$(for o in $objs; do
                n=${o#"$B"/}
                nm --defined-only -g "$o" | awk -v f="$n" '$2 ~ /[TDBR]/ { print "def", $3, f }'
                nm -u "$o" | awk -v f="$n" '{ print "use", $2, f }'
        done | awk '
                $1 == "def" { def[$2] = $3 }
                $1 == "use" { use[$3, $2] = 1; users[$3] = users[$3] " " $2 }
                END {
                        for (k in use) {
                                split(k, p, SUBSEP)
                                if (!(p[2] in def) || def[p[2]] == p[1]) continue
                                edge[p[1], def[p[2]]] = 1
                        }
                        for (k in edge) {
                                split(k, p, SUBSEP)
                                if ((p[2], p[1]) in edge && p[1] < p[2]) print p[1] " <-> " p[2]
                        }
                }' | sort | paste -sd',')
        check "no two source files call into each other${cycles:+: $cycles}" test -z "$cycles"
fi
se_common_finish
