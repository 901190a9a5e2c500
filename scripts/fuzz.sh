#!/usr/bin/env bash
# Fuzzing with libFuzzer: builds `greylag-fuzz` with Swift's
# -sanitize=fuzzer,address (release, in its own scratch path .build-fuzz)
# and runs each target for a bounded time from its seed corpus:
#
#   policy  bytes from a policy client (decoder, session, engine, replies)
#   milter  bytes from an MTA on a milter connection (decoder, session, replies)
#   config  the text of a configuration file (TOML and every key's checks)
#   admin   a JSON body of the admin API's POST /api/whitelist (decoded as
#           the HTTP API does, carried out by AdminService on a SQLite store)
#   numbers a TOML document of numeric keys with values from the input; a
#           value the loader takes must be in its documented range
#   dns     a DNS response (the client's decoder, then the answer read for
#           its own question, CNAME chains followed)
#
# A crash stops that target with its input saved as Fuzz/crashes/TARGET-*;
# fix the bug, then move the input to Fuzz/regressions/TARGET/, where
# FuzzRegressionTests replays it in every test run. Prints one line per
# target with runs, coverage and the result; exits 1 if any target crashed.
#
# Environment: FUZZ_SECONDS per target (default 60), FUZZ_TARGETS (default
# "policy milter config admin numbers dns"), FUZZ_MAX_LEN (default 4096).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-policy milter config admin numbers dns}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"
log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

log "building greylag-fuzz with libFuzzer and AddressSanitizer (.build-fuzz)"
swift build -c release --scratch-path .build-fuzz --product greylag-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DFUZZING >&2
BIN="$(swift build -c release --scratch-path .build-fuzz --show-bin-path)/greylag-fuzz"

mkdir -p Fuzz/crashes
WORK="$(mktemp -d /tmp/greylag-fuzz.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
failed=0
for target in $TARGETS; do
    corpus="$WORK/$target"
    mkdir -p "$corpus"
    cp Fuzz/corpus/"$target"/* "$corpus"/
    find Fuzz/regressions/"$target" -type f ! -name '.*' -exec cp {} "$corpus"/ \;
    log "$target: ${SECONDS_PER_TARGET}s"
    status=0
    # No leak checking: Swift keeps pointers in the spare bits of enum
    # payloads, which LeakSanitizer cannot follow, so it reports memory held
    # by globals (the built-in list's compiled patterns) as leaked; and
    # TOMLKit leaks a few hundred bytes per parsed file (C strings it never
    # frees), which matters only per reload. Crashes, overflows and
    # use-after-free are still caught by AddressSanitizer.
    ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" GREYLAG_FUZZ_TARGET="$target" "$BIN" -max_total_time="$SECONDS_PER_TARGET" -max_len="$MAX_LEN" -detect_leaks=0 \
        -artifact_prefix="Fuzz/crashes/$target-" -print_final_stats=1 "$corpus" >"$WORK/$target.log" 2>&1 || status=$?
    runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$WORK/$target.log" | tail -n 1 || true)"
    cov="$(grep -oE 'cov: [0-9]+' "$WORK/$target.log" | tail -n 1 | cut -d' ' -f2 || true)"
    if [[ $status -eq 0 ]]; then
        echo "$target: ${runs:-?} runs in ${SECONDS_PER_TARGET}s, coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) inputs, no crash"
    else
        failed=1
        echo "$target: CRASHED after ${runs:-?} runs (exit $status); input in Fuzz/crashes/:"
        grep -E 'ERROR|Fatal|SUMMARY|Test unit written' "$WORK/$target.log" | head -n 10 || true
        cp "$WORK/$target.log" "Fuzz/crashes/$target.log"
    fi
done
exit $failed
