#!/usr/bin/env bash
# Crash safety: builds greylag in release and runs `greylag crash-test`,
# which starts the daemon (SQLite store), loads it with retrying clients,
# kills it with SIGKILL at a random moment, and checks, per triplet over all
# kills so far, that the stored blocked and passed counts hold every
# deferral and pass answered (and no more than was asked) and that SQLite's
# integrity check passes, ROUNDS times (default 20). Prints one line per
# kill and a summary; exits 1 if anything answered was lost.
# GREYLAG_TEST_ANSWER_BEFORE_COMMIT=1 (test only) makes the daemon answer
# before it commits, to see the check fail.
#
# Usage: scripts/crash-test.sh [ROUNDS] [extra crash-test options]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
shift || true
swift build -c release --product greylag >&2
exec .build/release/greylag crash-test --rounds "$rounds" "$@"
