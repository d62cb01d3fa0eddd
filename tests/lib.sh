# tests/lib.sh — what every shell test of `make test` shares, sourced first
# (`. "$(dirname "$0")/lib.sh"`): one set of counters, the lines people read,
# and the closing line. One line per check:
#
#   PASS <what>
#   FAIL <what>           then the end of the check's output, indented by 4
#   SKIP <what>: <why>    a check that could not run here: never a pass
#
# and, last, `<name>: N passed, N failed, N skipped` (finish), after which the
# script exits 1 exactly when a check failed, else 0. tests/counts.sh checks
# this file.
#
# Settings, for a script to set after sourcing:
#   TEST_PREFIX       put before <what> on every line ("harness: ")
#   TEST_DETAIL       how many lines of a failed check's output are shown (20)
#   TEST_LOG          a file: check writes its command's output there, and
#                     result without a detail file shows it on a failure and
#                     then empties it (unset: check discards the output)
#   TEST_SKIP_STATUS  a status that result reports as SKIP, the reason taken
#                     from the detail's first "SKIP: <why>" (core.sh: 77, the
#                     test programs' "could not run here"); unset: none
# From the environment:
#   TEST_TOTALS       a file finish appends the closing line to (make test
#                     sums them with tests/totals.sh)

tests_passed=0 tests_failed=0 tests_skipped=0
TEST_PREFIX= TEST_DETAIL=20 TEST_LOG= TEST_SKIP_STATUS=

pass() { # pass <what>
  echo "PASS $TEST_PREFIX$1"
  tests_passed=$((tests_passed + 1))
}
fail() { # fail <what> [detail file]
  echo "FAIL $TEST_PREFIX$1"
  tests_failed=$((tests_failed + 1))
  if [ -s "${2:-}" ]; then sed 's/^/    /' "$2" | tail -n "$TEST_DETAIL"; fi
  return 0
}
skip() { # skip <what> <why>
  echo "SKIP $TEST_PREFIX$1: $2"
  tests_skipped=$((tests_skipped + 1))
}
# result <status> <what> [detail file]: PASS when the status is 0, SKIP when
# it is TEST_SKIP_STATUS, else FAIL with the end of the detail file (TEST_LOG
# when none is given).
result() {
  local detail=${3:-$TEST_LOG}
  if [ "$1" = 0 ]; then pass "$2"
  elif [ -n "$TEST_SKIP_STATUS" ] && [ "$1" = "$TEST_SKIP_STATUS" ]; then
    skip "$2" "$(grep -m1 SKIP "${detail:-/dev/null}" 2>/dev/null | sed 's/.*SKIP: //')"
  else fail "$2" "$detail"; fi
  if [ -z "${3:-}" ] && [ -n "$TEST_LOG" ]; then : >"$TEST_LOG"; fi
  return 0
}
# check <what> <command...>: result of the command (its output to TEST_LOG,
# or discarded).
check() {
  local what=$1
  shift
  "$@" >"${TEST_LOG:-/dev/null}" 2>&1
  result $? "$what"
}
# absorb <file> <status> <what>: another test program's output (file) and exit
# status: its PASS/FAIL/SKIP lines shown (with TEST_PREFIX) and counted here;
# FAIL <what> with the end of its output when it exited non-zero with no FAIL
# line, or passed nothing.
absorb() {
  local line np=0 nf=0
  while IFS= read -r line; do
    case $line in
      "PASS "*) pass "${line#PASS }"; np=$((np + 1)) ;;
      "FAIL "*) fail "${line#FAIL }"; nf=$((nf + 1)) ;;
      "SKIP "*) echo "SKIP $TEST_PREFIX${line#SKIP }"; tests_skipped=$((tests_skipped + 1)) ;;
    esac
  done <"$1"
  if { [ "$2" != 0 ] && [ $nf = 0 ]; } || [ $np = 0 ]; then fail "$3" "$1"; fi
  return 0
}
# finish <name>: the closing line (appended to TEST_TOTALS too when set), then
# exit: 1 when a check failed, else 0.
finish() {
  local line="$1: $tests_passed passed, $tests_failed failed, $tests_skipped skipped"
  echo "$line"
  if [ -n "${TEST_TOTALS:-}" ]; then echo "$line" >>"$TEST_TOTALS"; fi
  if [ "$tests_failed" = 0 ]; then exit 0; fi
  exit 1
}
# totals <name> <file>: the closing lines in file summed, printed as one
# closing line; status 1 when one counted a failure or is not a closing line.
totals() {
  awk -v name="$1" '
    /^[^ ].*: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { p += $(NF-5); f += $(NF-3); s += $(NF-1); next }
    { bad++; print name ": not a closing line in " FILENAME ": " $0 }
    END { printf "%s: %d passed, %d failed, %d skipped\n", name, p, f, s; exit (f > 0 || bad > 0) }' "$2"
}
