#!/usr/bin/env bash
# Geo-redundancy takeover: three real `murmur serve` controllers (release build, SQLite stores),
# the simulated fleet reporting to each site's owner every 10 s over HTTP, heartbeats every
# 1 s with a threshold of 3; then SIGKILL of sc-dallas. Prints a Markdown table for
# BENCHMARKS.md: detection, the groups' move and every site reporting to its new owner,
# measured from the kill.
#   scripts/bench-takeover.sh [SIZES...]    (default: 1000 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p server --bench takeover -- "$@"
