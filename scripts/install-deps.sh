#!/usr/bin/env bash
# Installs the Debian packages hakmem's build, tests and benchmarks need.
# Usage: scripts/install-deps.sh [test|bench|traces]
#   test   - what `make test` needs: compiler and sanitizer runtimes, python3 with
#            matplotlib (report tests), time, git and sqlite3 (programs run under hakmem),
#            libunwind (the tracker's call stacks), g++ and pkg-config (make
#            test-install: the C++ allocator, hakmem.pc), google-perftools (google-pprof
#            reads the heap profiles), graphviz (its --svg), valgrind (the leak
#            checker's counts are compared with memcheck's)
#   bench  - also the reference allocators and matplotlib for the report
#   traces - also what `make traces` records and the tracker's cost is compared with:
#            redis (server and benchmark), heaptrack
# Installs only what is missing; needs root (or prints what to install and fails).
set -euo pipefail
mode=${1:-test}
pkgs=(build-essential python3 python3-matplotlib coreutils time git sqlite3 libunwind-dev g++ pkg-config
      google-perftools graphviz valgrind)
if [ "$mode" = bench ] || [ "$mode" = traces ]; then
  pkgs+=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev)
fi
if [ "$mode" = traces ]; then
  pkgs+=(redis-server redis-tools heaptrack)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hakmem: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "hakmem: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}"; }
