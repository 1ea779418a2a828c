#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Shell completion (issue 15): completions/secrets-encrypt.bash called as bash calls it (COMP_WORDS,
# COMP_CWORD), and completions/_secrets-encrypt under zsh with compadd/_files recorded. Both read
# the commands and flags from the program's --help, so each case is checked against what --help
# says today.
set -u
. "$(dirname "$0")/lib-common.sh"
se_common_init completion
se_common_copy_programs secrets-encrypt
export PATH="$BIN:$PATH"

commands=$("$CLI" --help | awk '/^Commands:/ { on = 1; next } on && /^[^ ]/ { on = 0 } on && /^  +[a-z]/ { print $1 }' | sort)
n_commands=$(grep -c . <<<"$commands")
[ "$n_commands" -ge 10 ] || not_ok "--help lists only $n_commands commands"

# bash: complete WORDS... prints COMPREPLY one per line, sorted
bcomplete() {
        bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                _secrets_encrypt; printf "%s\n" "${COMPREPLY[@]}"' _ "$SE_ROOT/completions/secrets-encrypt.bash" "$@" | sort
}
check "bash: registered with complete -F _secrets_encrypt" bash -c \
        ". '$SE_ROOT/completions/secrets-encrypt.bash' && complete -p secrets-encrypt | grep -q -- '-F _secrets_encrypt secrets-encrypt'"
check "bash: every command from --help ($n_commands)" test "$(bcomplete secrets-encrypt '')" = "$commands"
check "bash: 'rotate' -> rotate rotate-keys" test "$(bcomplete secrets-encrypt rotate | tr '\n' ' ')" = "rotate rotate-keys "
check "bash: -o values are text and json (what --output accepts)" test "$(bcomplete secrets-encrypt status -o '' | tr '\n' ' ')" = "json text "
check "bash: --output=j -> json (as one word)" test "$(bcomplete secrets-encrypt status --output=j)" = json
check "bash: --output = (COMP_WORDBREAKS splits at =) -> json text" \
        test "$(bcomplete secrets-encrypt status --output = '' | tr '\n' ' ')" = "json text "
check "bash: ensure --rot -> --rotate-after --rotate-due --rotated-within" \
        test "$(bcomplete secrets-encrypt ensure --rot | tr '\n' ' ')" = "--rotate-after --rotate-due --rotated-within "
check "bash: settings flags: --datastore-c -> --datastore-cafile --datastore-certfile" \
        test "$(bcomplete secrets-encrypt --datastore-c | tr '\n' ' ')" = "--datastore-cafile --datastore-certfile "
keys=$("$CLI" --help | sed -n '/^Settings/,/^$/p' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
all_flags=$(bcomplete secrets-encrypt --)
missing=$(comm -23 <(echo "$keys") <(echo "$all_flags"))
check "bash: every settings flag in --help is offered ($(grep -c . <<<"$keys"))" test -z "$missing"
check "bash: --secrets-encryption-provider -> aescbc secretbox" \
        test "$(bcomplete secrets-encrypt --secrets-encryption-provider '' | tr '\n' ' ')" = "aescbc secretbox "
mkdir -p "$W/dirs/state-a" "$W/dirs/state-b"
check "bash: --state-dir completes directories" \
        test "$(bcomplete secrets-encrypt --state-dir "$W/dirs/sta" | tr '\n' ' ')" = "$W/dirs/state-a $W/dirs/state-b "
check "bash: a flag's value is not taken for the command (--state-dir DIR ens -> ensure)" \
        test "$(bcomplete secrets-encrypt --state-dir /tmp ens)" = ensure
check "bash: after the command, no second command" test -z "$(bcomplete secrets-encrypt status '')"
check "bash: help COMMAND completes command names" test "$(bcomplete secrets-encrypt help '')" = "$commands"
check "bash: --for (setup) -> k3s kube-apiserver rke2" \
        test "$(bcomplete secrets-encrypt setup --for '' | tr '\n' ' ')" = "k3s kube-apiserver rke2 "
# negative control: a program whose --help lists other commands changes the answer
printf '#!/bin/sh\nprintf "Commands:\\n  alpha  A\\n  beta   B\\n\\nOptions:\\n  --gamma\\n"\n' >"$W/secrets-encrypt"
chmod +x "$W/secrets-encrypt"
check "bash: the lists come from the program's --help (a stand-in's commands: alpha beta)" \
        test "$(bcomplete "$W/secrets-encrypt" '' | tr '\n' ' ')" = "alpha beta "

# zsh: the function with compadd, _files, _directories recorded
if ! command -v zsh >/dev/null; then
        skip "zsh missing"
else
        check "zsh -n: the completion file parses" zsh -n "$SE_ROOT/completions/_secrets-encrypt"
        zcomplete() {
                zsh -f -c '
                        compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
                        _files() { print -r -- "<files>"; }
                        _directories() { print -r -- "<directories>"; }
                        _message() { print -r -- "<message>"; }
                        compset() { :; }
                        compdef() { :; }
                        source "$1"; shift
                        words=("$@"); CURRENT=$#
                        _secrets-encrypt' _ "$SE_ROOT/completions/_secrets-encrypt" "$@" | sort
        }
        check "zsh: head line #compdef secrets-encrypt" test "$(head -n 1 "$SE_ROOT/completions/_secrets-encrypt")" = "#compdef secrets-encrypt"
        check "zsh: every command from --help ($n_commands)" test "$(zcomplete secrets-encrypt '')" = "$commands"
        check "zsh: -o values text json" test "$(zcomplete secrets-encrypt status -o '' | tr '\n' ' ')" = "json text "
        check "zsh: --state-dir completes directories" test "$(zcomplete secrets-encrypt --state-dir '')" = "<directories>"
        check "zsh: --config completes files" test "$(zcomplete secrets-encrypt --config '')" = "<files>"
        zflags=$(zcomplete secrets-encrypt ensure --)
        check "zsh: flags include --rotate-due and every settings flag" bash -c \
                "grep -qx -- --rotate-due <<<\"\$1\" && test -z \"\$(comm -23 <(echo \"\$2\") <(echo \"\$1\"))\"" _ "$zflags" "$keys"
        check "zsh: validate completes files" test "$(zcomplete secrets-encrypt validate '')" = "<files>"
        check "zsh: the lists come from the program's --help (stand-in: alpha beta)" \
                test "$(zcomplete "$W/secrets-encrypt" '' | tr '\n' ' ')" = "alpha beta "
fi

se_common_finish
