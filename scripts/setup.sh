#!/usr/bin/env bash
# Installs everything tracery needs to build, run and test, from Debian's packages (and the
# npm registry for the end-to-end tests' OpenTelemetry JS SDK). Safe to run again.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

debian_packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev
  libzstd-dev libsnappy-dev zlib1g-dev libnghttp2-dev libcurl4-openssl-dev libssl-dev
  libyaml-cpp-dev rapidjson-dev libsimdjson-dev libcli11-dev libfmt-dev libspdlog-dev
  libxxhash-dev libre2-dev libgtest-dev libgmock-dev libbenchmark-dev
  prometheus procps nghttp2-client
)
# Node.js runs the end-to-end tests; a machine that already has node and npm keeps its own.
command -v node >/dev/null && command -v npm >/dev/null || debian_packages+=(nodejs npm)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${TRACERY_SKIP_NPM:-0}" != "1" ] && [ -f "$here/tests/e2e/package.json" ]; then
  (cd "$here/tests/e2e" && { [ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; })
fi
