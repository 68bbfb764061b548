#!/usr/bin/env bash
# Sets up a fresh host and runs the whole test suite (unit, component and end-to-end, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
npm run typecheck
npm run lint
npm test
