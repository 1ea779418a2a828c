#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The settings tables cannot drift (issue 15): README.md's table and the man page's SETTINGS list
# are what tests/tools/settings-doc.py writes from `secrets-encrypt --list-settings` (the table in
# module/base/settings-doc.c, which --help prints too), and every settings key is documented.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
se_need python3

se_common_init settings-doc
se_common_copy_programs secrets-encrypt

check "every settings key has a default and a meaning in module/base/settings-doc.c" \
        bash -c "\"$CLI\" --list-settings | awk -F'\t' 'NF != 3 || \$2 == \"\" || \$3 == \"\" { bad = 1 } END { exit bad }'"
check "README.md and man/secrets-encrypt.8 match settings-doc.c (fix: tests/tools/settings-doc.py --write)" \
        python3 tests/tools/settings-doc.py --check "$CLI" README.md man/secrets-encrypt.8
check "--help lists every settings key with its default" bash -c "
        help=\$(\"$CLI\" --help)
        \"$CLI\" --list-settings | while IFS=\$'\t' read -r k d m; do
                grep -qF -- \"--\$k VALUE\" <<<\"\$help\" && grep -qF -- \"(default: \$d)\" <<<\"\$help\" || { echo \"missing: \$k\"; exit 1; }
        done"
# the check must be able to fail: an edited README row is caught
cp README.md man/secrets-encrypt.8 "$W/"
sed -i 's/^| `timeout` | `10m` |/| `timeout` | `5m` |/' "$W/README.md"
check "a README row edited by hand is caught" bash -c "! python3 tests/tools/settings-doc.py --check '$CLI' '$W/README.md' '$W/secrets-encrypt.8' >/dev/null"

se_common_finish
