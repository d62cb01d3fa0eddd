#!/usr/bin/env bash
# layers.sh BUILD... — make check-layers (scripts/check-layers) on the core's
# objects of each BUILD (build/<build>/obj), and the checker's own test: it
# must fail, naming the two files and the symbol, when a copy of hybrid's
# objects has an upward call planted in a low file, a call to a file of the
# same level, or a file missing from the level table.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- hybrid
dirs=()
for b in "$@"; do dirs+=("$B/$b/obj"); done
scripts/check-layers core/internal.h "${dirs[@]}" >"$tmp/out" 2>&1
result $? "layers: every reference between core files goes down the level table of core/internal.h, in $# builds ($(tail -n 1 "$tmp/out"))" "$tmp/out"

# plant FILE SYMBOL: a copy of hybrid's objects in which FILE's object also
# calls SYMBOL (an object linked into it with ld -r); the checker on it.
plant() {
  rm -rf "$tmp/obj" && cp -r "$B/hybrid/obj" "$tmp/obj"
  printf 'extern void %s(void);\nvoid hak_planted_call(void);\nvoid hak_planted_call(void) { %s(); }\n' "$2" "$2" >"$tmp/planted.c"
  cc -c -o "$tmp/planted.o" "$tmp/planted.c" &&
    ld -r -o "$tmp/obj/${1%.c}.o" "$B/hybrid/obj/${1%.c}.o" "$tmp/planted.o" || return 2
  scripts/check-layers core/internal.h "$tmp/obj" >"$tmp/out" 2>&1
}
plant pagemap.c hak_init_slow
st=$?
[ $st = 1 ] && grep -Eq '^check-layers: .*: pagemap\.c \(level [0-9]+\) uses a file above it, init\.c \(level [0-9]+\): hak_init_slow$' "$tmp/out"
result $? "layers: an upward call planted in pagemap.c (to init.c's hak_init_slow) fails the check, naming both files and the symbol (exit $st)" "$tmp/out"

# Two files of one level (the first line of the table with two files).
pair=$(sed -n '/Calls go one way/,/^ \*  *(/p' core/internal.h | grep -Eo '^ \*   [a-z_]+\.c  +[a-z_]+\.c' | head -n 1)
a=$(echo "$pair" | awk '{print $2}') b=$(echo "$pair" | awk '{print $3}')
sym=$(nm "$B/hybrid/obj/${b%.c}.o" | awk '$2 == "T" && $3 ~ /^hak_/ { print $3; exit }')
if [ -n "$a" ] && [ -n "$sym" ]; then
  plant "$a" "$sym"
  st=$?
  [ $st = 1 ] && grep -q "${a} (level [0-9]*) uses a file of its own level, ${b} (level [0-9]*): ${sym}\$" "$tmp/out"
  result $? "layers: a call between two files of one level ($a to $b's $sym) fails the check (exit $st)" "$tmp/out"
else
  result 1 "layers: the table has a level with two files to plant a call between"
fi

# A core file the table does not name.
mkdir -p "$tmp/core"
cp core/*.c "$tmp/core/" && grep -v '^ \*   pagemap\.c' core/internal.h | sed 's/  pagemap\.c//' >"$tmp/core/internal.h"
scripts/check-layers "$tmp/core/internal.h" "$B/hybrid/obj" >"$tmp/out" 2>&1
st=$?
[ $st = 1 ] && grep -q 'pagemap\.c is not in the level table' "$tmp/out"
result $? "layers: a core file missing from the table fails the check (exit $st)" "$tmp/out"

finish layers
