#!/usr/bin/env bash
# Runs the test files one after another: unit, component, end-to-end, then the leftover check.
# (Node 20's test runner does not expand globs itself.)
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(test/unit/**/*.test.ts test/component/**/*.test.ts test/e2e/**/*.test.ts test/final/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
