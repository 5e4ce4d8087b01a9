#!/usr/bin/env bash
# Installs what forge's build and test suite need on Debian 12, and only what is missing: when everything
# is there it prints nothing and touches nothing.
set -euo pipefail

packages=(
  g++ make cmake       # the release build, CTest
  clang                # the sanitizer and fuzz builds
  libclang-rt-14-dev   # libFuzzer and the sanitizer runtimes for clang 14
  libgtest-dev         # tests
  libbenchmark-dev     # bench/
  curl                 # the server test's error cases
  nginx                # the load-balancer test (two forge serve replicas behind it)
)

missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
# The server test's openai client. Node may come from outside Debian with npm built in: check the commands.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "install-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
