#!/usr/bin/env bash
# Runs the test files one after another. Node sorts them by path (component, e2e, unit), and the
# leftover check in test/zz-final runs last.
# (Node 20's test runner does not expand globs itself.)
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
# The namespace driver is retired for operators and runs only in the project's tests (its fast boot
# serves the logic tests); this marks every test process, and the CLI processes they start, as such.
export UNDERSTUDY_TEST_DRIVERS=namespace
files=(test/unit/**/*.test.ts test/component/**/*.test.ts test/e2e/**/*.test.ts test/zz-final/*.test.ts)
if [ "$#" -gt 0 ]; then files=("$@"); fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=900000 "${files[@]}"
