# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for secrets-encrypt(8). The commands and flags come from the program's own
# --help (read once per shell and program), so they cannot drift from the program.

# _secrets_encrypt_help PROG [COMMAND]: the help text, cached in _secrets_encrypt_cache_*.
_secrets_encrypt_help() {
        local prog=$1 cmd=${2:-} key
        key=$(printf '%s' "$prog/$cmd" | cksum | cut -d' ' -f1)
        if ! declare -p "_secrets_encrypt_cache_$key" >/dev/null 2>&1; then
                if [ -n "$cmd" ]; then
                        printf -v "_secrets_encrypt_cache_$key" '%s' "$("$prog" "$cmd" --help 2>/dev/null)"
                else
                        printf -v "_secrets_encrypt_cache_$key" '%s' "$("$prog" --help 2>/dev/null)"
                fi
        fi
        eval "printf '%s\n' \"\$_secrets_encrypt_cache_$key\""
}

# The command names: the first word of each indented line under "Commands:".
_secrets_encrypt_commands() {
        _secrets_encrypt_help "$1" | awk '/^Commands:/ { on = 1; next } on && /^[^ ]/ { on = 0 }
                on && /^  +[a-z]/ { print $1 }'
}

# Every --long flag the help names: for a command, its own help (where the program has one) and the
# global help, whose settings and global flags go with every command.
_secrets_encrypt_flags() {
        local text
        text=$(_secrets_encrypt_help "$1" "$2")
        case "$text" in *--*) text+=$'\n'$(_secrets_encrypt_help "$1" | sed -n '/^Settings/,$p') ;;
        *) text=$(_secrets_encrypt_help "$1") ;; esac
        printf '%s\n' "$text" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
        # flags written as "--datastore-cafile/-certfile/-keyfile"
        printf '%s\n' "$text" | grep -oE -- '--[a-z][a-z0-9-]*(/-[a-z0-9-]+)+' | while IFS=/ read -r first rest; do
                local stem=${first%-*}
                for part in ${rest//\// }; do printf '%s%s\n' "$stem" "$part"; done
        done
        printf '%s\n' "$text" | grep -qE '(^|[ ,])-o[ ,]' && echo -o
        printf '%s\n' "$text" | grep -qE '(^|[ ,])-f[ ,]' && echo -f
        printf '%s\n' "$text" | grep -qE '(^|[ ,])-h[ ,]' && echo -h
}

# Whether a flag takes the next word as its value.
_secrets_encrypt_takes_value() {
        case "$1" in
        -o | --output | --for | --provider | --secrets-encryption-provider | --auto-advance | --unit | \
                --state-dir | --hooks-dir | --data-dir | -d | --config | --token-file | --datastore-cafile | \
                --datastore-certfile | --datastore-keyfile | --metrics-file | --rotated-within | --rotate-after | \
                --removed-key-retention | --timeout | --node-name | --datastore-endpoint | --reencrypt-rate | \
                --token | -t | --server | -s)
                return 0
                ;;
        esac
        return 1
}

# Values of a flag that takes one (COMPREPLY); returns 1 for a flag without a value.
_secrets_encrypt_values() {
        local flag=$1 cur=$2
        case "$flag" in
        -o | --output) mapfile -t COMPREPLY < <(compgen -W 'text json' -- "$cur") ;;
        --for) mapfile -t COMPREPLY < <(compgen -W 'k3s rke2 kube-apiserver' -- "$cur") ;;
        --provider | --secrets-encryption-provider) mapfile -t COMPREPLY < <(compgen -W 'aescbc secretbox' -- "$cur") ;;
        --auto-advance) mapfile -t COMPREPLY < <(compgen -W 'true false' -- "$cur") ;;
        --unit) mapfile -t COMPREPLY < <(compgen -W 'k3s.service rke2-server.service kube-apiserver.service' -- "$cur") ;;
        --state-dir | --hooks-dir | --data-dir | -d)
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -d -- "$cur")
                ;;
        --config | --token-file | --datastore-cafile | --datastore-certfile | --datastore-keyfile | --metrics-file)
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                ;;
        --rotated-within | --rotate-after | --removed-key-retention | --timeout)
                mapfile -t COMPREPLY < <(compgen -W '30d 90d 180d 365d 12h 10m' -- "$cur")
                ;;
        --node-name | --datastore-endpoint | --reencrypt-rate | --token | -t | --server | -s)
                COMPREPLY=()
                ;;
        *) return 1 ;;
        esac
        return 0
}

_secrets_encrypt() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]:-}
        local prog=${COMP_WORDS[0]} cmd="" i w commands
        COMPREPLY=()
        case "$prog" in */*) [ -x "$prog" ] || prog=secrets-encrypt ;; *) prog=secrets-encrypt ;; esac
        command -v "$prog" >/dev/null 2>&1 || return 0
        commands=$(_secrets_encrypt_commands "$prog")

        # the command is the first word that is neither a flag nor a flag's value
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                case "$w" in
                -*=* | =) ;;
                -*) _secrets_encrypt_takes_value "$w" && i=$((i + 1)) ;;
                *) if grep -qxF -- "$w" <<<"$commands"; then cmd=$w && break; fi ;;
                esac
        done

        # --flag=VALUE: one word, or three when COMP_WORDBREAKS has "=" (bash's default)
        if [ "$cur" = "=" ] && _secrets_encrypt_takes_value "$prev"; then
                _secrets_encrypt_values "$prev" ""
                return 0
        fi
        if [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 2 ] && _secrets_encrypt_takes_value "${COMP_WORDS[COMP_CWORD - 2]}"; then
                _secrets_encrypt_values "${COMP_WORDS[COMP_CWORD - 2]}" "$cur"
                return 0
        fi
        if [[ "$cur" == --*=* ]]; then
                local flag=${cur%%=*}
                _secrets_encrypt_values "$flag" "${cur#*=}" || return 0
                return 0
        fi
        if [ "$COMP_CWORD" -gt 1 ] && _secrets_encrypt_takes_value "$prev"; then
                _secrets_encrypt_values "$prev" "$cur"
                return 0
        fi
        if [[ "$cur" == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_secrets_encrypt_flags "$prog" "$cmd")" -- "$cur")
                return 0
        fi
        case "$cmd" in
        "") mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur") ;;
        help) [ "$prev" = help ] && mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur") ;;
        validate | hash)
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                ;;
        esac
        return 0
}

complete -F _secrets_encrypt secrets-encrypt
