#!/usr/bin/env bash
# totals.sh FILE STATUS — the last lines of make test: the closing lines its
# targets' scripts appended to FILE (tests/lib.sh's finish, through
# TEST_TOTALS) summed into "make test: N passed, N failed, N skipped".
# STATUS is make's over those targets: when it is not 0 (a target failed, or
# a step before its checks), a line says so first, as the sum is then of the
# checks that ran. Exits 1 when STATUS is not 0 or a line counted a failure.
set -u
. "$(dirname "$0")/lib.sh"
file=$1 st=$2
[ -f "$file" ] || file=/dev/null # no suite got as far as its closing line
[ "$st" = 0 ] || echo "make test: a target failed (make's status $st): the totals count the checks that ran"
totals "make test" "$file" || exit 1
[ "$st" = 0 ]
