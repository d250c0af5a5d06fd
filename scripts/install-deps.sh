#!/usr/bin/env bash
# Installs the Debian packages dsv3 builds and tests with, only those missing.
# Usage: scripts/install-deps.sh [--test]   (--test adds what the test suite needs)
set -euo pipefail

# nodejs and npm bundle the chat page (web/) at build time, from the npm registry; liblzma
# decompresses the built-in default model (assets/default-model); Open MPI runs dsv3 across machines.
build_pkgs=(g++ cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libboost-dev libcpp-httplib-dev libicu-dev libedit-dev liblzma-dev libopenmpi-dev openmpi-bin nodejs npm)
# chromium: the chat page's browser tests (tests/web); clang + its runtime: the libFuzzer harnesses (fuzz/).
test_pkgs=(googletest libgtest-dev libbenchmark-dev chromium clang libclang-rt-dev)

pkgs=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then pkgs+=("${test_pkgs[@]}"); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js may come from outside Debian (e.g. /usr/local/bin/node): accept any working node/npm.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]+"${missing[@]}"}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]} == 0)); then exit 0; fi

echo "installing: ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
