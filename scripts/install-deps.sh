#!/usr/bin/env bash
# Installs the Debian packages hakmem's build, tests and benchmarks need.
# Usage: scripts/install-deps.sh [test|bench|traces]
#   test   - what `make test` needs: compiler and sanitizer runtimes, python3 with
#            matplotlib (report tests), time, git and sqlite3 (programs run under hakmem),
#            libunwind (the tracker's call stacks), libzstd (the trace files are zstd-compressed), libdw (elfutils: file:line of
#            stack frames from DWARF, hakmem-symbolize and hakmem-trace), g++ and pkg-config (make
#            test-install: the C++ allocator, hakmem.pc), google-perftools (google-pprof
#            reads the heap profiles), graphviz (its --svg), valgrind (the leak
#            checker's counts are compared with memcheck's), slurm-wlm and munge (the
#            harness's Slurm test starts a one-node cluster of its own)
#   bench  - also the reference allocators and matplotlib for the report
#   traces - also what `make traces` records and the tracker's cost is compared with:
#            redis (server and benchmark), heaptrack
# Installs only what is missing; needs root (or prints what to install and fails).
set -euo pipefail
mode=${1:-test}
pkgs=(build-essential python3 python3-matplotlib coreutils time git sqlite3 libunwind-dev libdw-dev libzstd-dev g++ pkg-config
      google-perftools graphviz valgrind)
# Wanted by one test, which says SKIP without them (tests/harness/scale.sh:
# a one-node Slurm cluster): tried after the others; failing to install them
# is said, not fatal.
optional=(slurm-wlm munge)
if [ "$mode" = bench ] || [ "$mode" = traces ]; then
  pkgs+=(libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev)
fi
if [ "$mode" = traces ]; then
  pkgs+=(redis-server redis-tools heaptrack)
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
opt_missing=()
for p in "${optional[@]}"; do installed "$p" || opt_missing+=("$p"); done
if [ ${#opt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${opt_missing[@]}" >/dev/null 2>&1 \
       || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${opt_missing[@]}" >/dev/null 2>&1; }; }; then
    echo "hakmem: installed ${opt_missing[*]}" >&2
  else
    echo "hakmem: could not install ${opt_missing[*]} (optional: the test that needs them says SKIP)" >&2
  fi
fi
missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "hakmem: missing Debian packages: ${missing[*]} (run as root or: sudo apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "hakmem: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}"; }
