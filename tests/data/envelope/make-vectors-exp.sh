#!/bin/sh
# Regenerates vectors.exp from the reference vectors alone (jq), never from our own output, so the
# golden file stays an independent expectation. Run from the project root.
set -eu
json=tests/data/k8s-encryption-vectors.json
{
        jq -r '.[] |
                (if (.name | startswith("cbc-")) then "aescbc"
                 elif (.name | startswith("gcm-")) then "aesgcm" else "secretbox" end) as $p |
                "\(.name): read \($p)/\(.key_name) stale=no len=\(.plaintext_len) \(.plaintext_hex)",
                "\(.name): write \(.stored_hex)",
                "\(.name): base64 \(.stored_b64)"' "$json"
        # Upstream TestGCMLegacyDataCompatibility (k8s-encryption-vectors.md U1): key
        # "snorlax_awesomes", AAD "bamboo", plaintext "pandas are the best".
        printf 'upstream-gcm-legacy: read aesgcm/key1 stale=no len=19 %s\n' \
                "$(printf 'pandas are the best' | od -An -tx1 -v | tr -d ' \n')"
} > tests/data/envelope/vectors.exp
