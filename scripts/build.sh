#!/usr/bin/env bash
# Configures and builds tracery (Release with debug info) into ./build. Warnings are errors in CI.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRACERY_WERROR=$werror >/dev/null
ninja -C "$here/build" ${TRACERY_BUILD_TARGETS:-}
