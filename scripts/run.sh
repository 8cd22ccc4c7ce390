#!/usr/bin/env bash
# Sets up, builds and starts tracery with its embedded defaults: every role in one process,
# OTLP on :4317 (gRPC) and :4318 (HTTP), Tempo's API on :3200, data under ./data.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
TRACERY_SKIP_NPM=1 "$here/scripts/setup.sh"
"$here/scripts/build.sh"
exec "$here/build/tracery" "$@"
