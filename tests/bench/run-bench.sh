#!/usr/bin/env bash
# Runs every benchmark program built under $SE_BUILD/tests/bench/ (bench-*), then every
# tests/bench/bench-*.sh script (those start their own servers), one after the other,
# with a header per program. Benchmarks print their own figures; exit status is non-zero if any
# of them failed. Extra arguments are passed to every program.
#
#   SE_BUILD=build     build directory (make bench sets it)
#   ONLY=pattern       run only benchmarks whose name contains pattern
set -u
cd "$(dirname "$0")/../.."
B=${SE_BUILD:-build}
failed=()
ran=0

for b in "$B"/tests/bench/bench-*; do
        [ -f "$b" ] && [ -x "$b" ] || continue
        case "$b" in *.o | *.d) continue ;; esac
        name=$(basename "$b")
        [ -n "${ONLY:-}" ] && [[ "$name" != *"$ONLY"* ]] && continue
        echo "==> $name"
        if ! "$b" "$@"; then
                failed+=("$name")
                echo "==> $name FAILED"
        fi
        ran=$((ran + 1))
        echo
done

# benchmarks that drive servers of their own (bench-sql.sh: PostgreSQL, MariaDB)
for b in tests/bench/bench-*.sh; do
        [ -f "$b" ] || continue
        name=$(basename "$b")
        [ -n "${ONLY:-}" ] && [[ "$name" != *"$ONLY"* ]] && continue
        echo "==> $name"
        if ! SE_BUILD="$B" bash "$b" "$@"; then
                failed+=("$name")
                echo "==> $name FAILED"
        fi
        ran=$((ran + 1))
        echo
done

if [ "$ran" = 0 ]; then
        echo "no benchmarks found under $B/tests/bench (run make bench)" >&2
        exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
        echo "failed: ${failed[*]}"
        exit 1
fi
