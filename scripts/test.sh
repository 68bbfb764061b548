#!/usr/bin/env bash
# Sets up a fresh host and runs the whole test suite (unit, component and end-to-end, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
npm run typecheck
npm run lint
npm test
# Fuzzing with a small budget in CI; run `FUZZ_SECONDS=600 npm run fuzz` for a longer session.
FUZZ_SECONDS=${FUZZ_SECONDS:-40} npm run fuzz
