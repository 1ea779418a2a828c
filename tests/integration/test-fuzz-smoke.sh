#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Hostile input (SPEC §9): every libFuzzer target of `make fuzz` (tests/fuzz/fuzz-*.c, ASan+UBSan)
# replays its committed corpus (tests/fuzz/corpus/<target>/) and then fuzzes for a bounded time.
# A crash, leak, sanitizer report or timeout is a failure; every crashing input is kept in
# build-fuzz/crashes/<target>-crash-<sha1> and printed.
#
#   SE_FUZZ_SECONDS=N   fuzzing time per target (default 8; `make stress` / `make fuzz-run`: 300)
#   SE_FUZZ_FORK=N      libFuzzer fork mode with N jobs that goes on past a crash
#                       (-fork=N -ignore_crashes=1), to collect every crash (`make fuzz-run`)
#   SE_FUZZ_ONLY=pat    only the targets whose name contains pat
#   SE_FUZZ_NO_BUILD=1  do not run `make fuzz` for missing targets (skip them)
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib-common.sh
SECS=${SE_FUZZ_SECONDS:-8}
FORK=${SE_FUZZ_FORK:-0}

command -v clang >/dev/null || { skip "clang missing (libFuzzer)"; exit 0; }
targets=()
for src in tests/fuzz/fuzz-*.c; do
        t=$(basename "$src" .c)
        [[ "$t" == *"${SE_FUZZ_ONLY:-}"* ]] && targets+=("$t")
done
[ ${#targets[@]} -gt 0 ] || { echo "ok - # SKIP no fuzz target matches '${SE_FUZZ_ONLY:-}'"; exit 0; }
missing=()
for t in "${targets[@]}"; do
        [ -x "build-fuzz/$t" ] || missing+=("build-fuzz/$t")
done
if [ ${#missing[@]} -gt 0 ] || [ "${SE_STRESS:-0}" = 1 ]; then
        if [ "${SE_FUZZ_NO_BUILD:-0}" != 1 ]; then
                echo "# building ${missing[*]:-fuzz targets}"
                make -s -j"$(nproc 2>/dev/null || echo 2)" "${missing[@]:-fuzz}" >/dev/null 2>&1 ||
                        echo "# make fuzz failed"
        fi
else
        # stale binaries still fuzz the parser they were built from; say so
        newer=$(find module -name '*.[ch]' -newer "build-fuzz/${targets[0]}" | head -n 1)
        [ -n "$newer" ] && echo "# note: build-fuzz/ is older than $newer (make fuzz to refresh)"
fi

se_common_init fuzz-smoke

for t in "${targets[@]}"; do
        bin="build-fuzz/$t"
        if [ ! -x "$bin" ]; then
                echo "ok - # SKIP $t: $bin not built"
                continue
        fi
        corpus="tests/fuzz/corpus/$t"
        n_seeds=$(find "$corpus" -type f 2>/dev/null | wc -l)
        # the committed corpus is read-only input; new units go to a scratch directory
        mkdir -p "$W/$t" "$W/$t-artifacts"
        args=(-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
                -artifact_prefix="$W/$t-artifacts/")
        # fork mode: jobs in child processes, a crash is recorded and fuzzing goes on
        [ "$FORK" -gt 0 ] && args+=(-fork="$FORK" -ignore_crashes=1)
        args+=("$W/$t")
        [ "$n_seeds" -gt 0 ] && args+=("$corpus")
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1" bg "$bin" "${args[@]}" >"$W/$t.log" 2>&1
        wait "$BG_PID"
        rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$W/$t.log" | tail -n 1)
        # fork mode prints "#<total execs>: cov: … oom/timeout/crash: a/b/c time: …" status lines
        [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$W/$t.log" | tail -n 1)
        n_art=$(find "$W/$t-artifacts" -type f | wc -l)
        if [ "$rc" = 0 ] && [ "$n_art" = 0 ] &&
                ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" "$W/$t.log"; then
                ok "$t: $n_seeds seeds replayed, ${execs:-?} inputs in ${SECS} s, no crash or leak"
        else
                not_ok "$t: exit $rc, $n_art crashing inputs, ${execs:-?} inputs in ${SECS} s"
                grep -E "ERROR|runtime error|SUMMARY|^    #[0-9]" "$W/$t.log" | head -n 20 | sed 's/^/#   /'
                shown=0
                for a in "$W/$t-artifacts"/*; do
                        [ -f "$a" ] || continue
                        mkdir -p build-fuzz/crashes
                        cp "$a" "build-fuzz/crashes/$t-$(basename "$a")"
                        shown=$((shown + 1))
                        [ "$shown" -le 5 ] &&
                                echo "#   input kept in build-fuzz/crashes/$t-$(basename "$a") ($(head -c 200 "$a" | od -An -c | head -n 3 | tr -s ' '))"
                done
                [ "$shown" -gt 5 ] && echo "#   … and $((shown - 5)) more in build-fuzz/crashes/$t-*"
        fi
done
exit $((FAILED > 0))
