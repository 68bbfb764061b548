#!/usr/bin/env bash
# Sets up a fresh host and runs the main job: the demo of a zero-downtime patch (`understudy demo`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec ./bin/understudy demo "$@"
