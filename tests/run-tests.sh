#!/usr/bin/env bash
# Runs every unit-test binary (Check) and every integration script, then prints one closing line
# "N passed, N failed". Exit status is non-zero if anything failed.
#
#   SE_BUILD=build       build directory
#   SE_VALGRIND=1        run the unit tests under valgrind (CK_FORK=no)
#   --unit-only          skip the integration scripts
#   ONLY=pattern         run only tests whose name contains pattern
set -u
cd "$(dirname "$0")/.."
B=${SE_BUILD:-build}
unit_only=0
[ "${1:-}" = --unit-only ] && unit_only=1

passed=0
failed=0
failed_names=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/se-test-logs.XXXXXX")

run_unit() {
        local t=$1 name log rc line n f e
        name=$(basename "$t")
        log="$logdir/$name.log"
        if [ "${SE_VALGRIND:-0}" = 1 ]; then
                CK_FORK=no valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
                        --track-fds=no "$t" >"$log" 2>&1
        else
                "$t" >"$log" 2>&1
        fi
        rc=$?
        line=$(grep -E '^[0-9]+%: Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" | tail -n 1)
        if [ -n "$line" ]; then
                n=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
                f=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
                e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
                passed=$((passed + n - f - e))
                failed=$((failed + f + e))
                if [ "$rc" != 0 ] && [ $((f + e)) = 0 ]; then
                        failed=$((failed + 1)) # e.g. valgrind or sanitizer exit after all checks passed
                fi
        else
                failed=$((failed + 1))
                line="no Check summary (exit $rc)"
        fi
        if [ "$rc" != 0 ]; then
                failed_names+=("$name")
                printf 'FAIL %-28s %s\n' "$name" "$line"
                grep -vE '^(Running suite|[0-9]+%: Checks)' "$log" | tail -n 40 | sed 's/^/    /'
        else
                printf 'PASS %-28s %s\n' "$name" "$line"
        fi
}

# Integration scripts print "ok - NAME" / "not ok - NAME" per case (TAP style).
run_script() {
        local s=$1 name log rc ok nok
        name=$(basename "$s" .sh)
        log="$logdir/$name.log"
        SE_BUILD="$B" bash "$s" >"$log" 2>&1
        rc=$?
        # a log that vanished counts as a failure, never as a pass
        ok=$(grep -cE '^ok - ' "$log" 2>/dev/null) || ok=0
        nok=$(grep -cE '^not ok - ' "$log" 2>/dev/null) || nok=0
        [ -r "$log" ] || rc=1
        passed=$((passed + ok))
        failed=$((failed + nok))
        if [ "$rc" != 0 ] || [ "$nok" != 0 ] || [ "$ok" = 0 ]; then
                [ "$nok" = 0 ] && failed=$((failed + 1))
                failed_names+=("$name")
                printf 'FAIL %-28s %d ok, %d not ok (exit %d)\n' "$name" "$ok" "$nok" "$rc"
                tail -n 60 "$log" | sed 's/^/    /'
        else
                printf 'PASS %-28s %d ok\n' "$name" "$ok"
        fi
}

for t in "$B"/tests/test-*; do
        [ -x "$t" ] || continue
        case "$t" in *.o | *.d) continue ;; esac
        [ -n "${ONLY:-}" ] && [[ "$t" != *"$ONLY"* ]] && continue
        run_unit "$t"
done

if [ "$unit_only" = 0 ]; then
        for s in tests/integration/test-*.sh; do
                [ -f "$s" ] || continue
                [ -n "${ONLY:-}" ] && [[ "$s" != *"$ONLY"* ]] && continue
                run_script "$s"
        done
fi

if [ ${#failed_names[@]} -gt 0 ]; then
        echo "failed: ${failed_names[*]} (logs in $logdir)"
else
        rm -rf "$logdir"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
