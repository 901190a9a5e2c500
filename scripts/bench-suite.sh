#!/usr/bin/env bash
# The whole benchmark suite, one script after the other on this machine:
#
#   scripts/bench.sh          greylag vs the do-nothing responder, gross,
#                             postgrey and sqlgrey, 16/64 connections, 30%/90%
#                             new triplets (the ratios come from one run), with
#                             CPU per decision
#   scripts/bench-scale.sh    rate, p99, CPU per decision and resident memory
#                             with 10 thousand, 1 million and 10 million records
#   scripts/bench-milter.sh   the milter path beside the policy path and the
#                             do-nothing responder, with CPU per decision
#   scripts/bench-qmail.sh    time per invocation of the qmail-spp helper
#   scripts/bench-hostile.sh  1,000 idle and 1,000 byte-at-a-time connections
#
# Each prints its own figures; record them in BENCHMARKS.md. Takes about
# 15 minutes, most of it filling and measuring 10 million records.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in bench.sh bench-scale.sh bench-milter.sh bench-qmail.sh bench-hostile.sh; do
    printf '\n=== scripts/%s ===\n' "$script"
    bash "scripts/$script"
done
