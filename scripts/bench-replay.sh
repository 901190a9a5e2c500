#!/usr/bin/env bash
# The cost of greylisting, measured (docs/replay.md): generates the synthetic
# trace and replays it under classic /24 triplets, SPF keying, selective
# DNS-list mode, postgrey's defaults, SPF keying with selective mode, and
# greylag's shipped defaults (built-in client-name whitelist included).
# Prints the commands and the table, as BENCHMARKS.md shows them.
#
# Environment:
#   REPLAY_SEED       the generator's seed (default 1)
#   REPLAY_MESSAGES   messages in the trace (default 20000)
#   GREYLAG_BINARY    the greylag to use (default: build it, release)
set -euo pipefail
cd "$(dirname "$0")/.."
SEED="${REPLAY_SEED:-1}"
MESSAGES="${REPLAY_MESSAGES:-20000}"

if [[ -n "${GREYLAG_BINARY:-}" ]]; then
    BIN="$GREYLAG_BINARY"
else
    swift build -c release --product greylag >&2
    BIN="$(swift build -c release --show-bin-path)/greylag"
fi

TRACE="$(mktemp /tmp/greylag-replay.XXXXXX)"
trap 'rm -f "$TRACE"' EXIT

echo "greylag replay generate --seed $SEED --messages $MESSAGES --out trace.jsonl"
"$BIN" replay generate --seed "$SEED" --messages "$MESSAGES" --out "$TRACE"
echo "greylag replay trace.jsonl --profile classic --profile spf --profile selective --profile postgrey --profile spf-selective --profile defaults"
echo
"$BIN" replay "$TRACE" --profile classic --profile spf --profile selective --profile postgrey \
    --profile spf-selective --profile defaults
