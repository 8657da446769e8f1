#!/usr/bin/env bash
# The one place that lists edgelm's system packages (Debian 12). Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev libcli11-dev libsodium-dev libfmt-dev libspdlog-dev
  libhwy-dev libcpp-httplib-dev libphonenumber-dev libssl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3-numpy python3-torch python3-jinja2 python3-regex
)
# Node.js and npm run the test oracles (npm packages are installed by the tests that use them). A
# Node.js that is already on PATH (e.g. a vendor build that bundles npm) is used as it is.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
