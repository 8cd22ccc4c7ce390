#!/usr/bin/env bash
# Sets up, builds and runs every test: unit tests (ctest) and end-to-end tests against the
# real OpenTelemetry JS SDK (node's test runner).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
echo "== unit tests"
(cd "$here/build" && ctest --output-on-failure -j2)
echo "== end-to-end tests"
(cd "$here/tests/e2e" && TRACERY_BIN="$here/build/tracery" npm test)
