#!/usr/bin/env bash
# counts.sh — the test of tests/lib.sh (make test-counts, part of make test).
# A sample test whose checks are known (3 passed, 2 failed, 3 skipped, through
# pass, result, check, skip, result with TEST_SKIP_STATUS and absorb) must
# print exactly its lines and the closing line "sample: 3 passed, 2 failed,
# 3 skipped", and exit 1; one whose checks passed or were skipped must exit 0
# (a skip is no failure) and one that only skipped must count no pass; absorb
# must fail a program that exited non-zero without a FAIL line; make test's
# totals (tests/totals.sh) must sum the closing lines and exit 1 on a failure
# or on make's status. Then copies of lib.sh that count a skip as a pass, or
# exit 0 after a failure, must be caught by the same checks.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
root=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The sample test, run with the lib.sh given as $1.
cat >"$tmp/sample.sh" <<'EOF'
. "$1"
TEST_PREFIX="sample: "
tmp=$2
printf 'one\ntwo\nthree\n' >"$tmp/detail"
printf 'checking\nSKIP: no such device\n' >"$tmp/skipped"
printf 'PASS cxx: vector\nnoise\nSKIP cxx: map: no map\n' >"$tmp/sub"
TEST_DETAIL=2
pass "a"
result 0 "b"
result 1 "c" "$tmp/detail"
check "d" false
skip "e" "no tool"
TEST_SKIP_STATUS=77
result 77 "f" "$tmp/skipped"
absorb "$tmp/sub" 0 "sub: exit 0"
finish sample
EOF
cat >"$tmp/sample.want" <<'EOF'
PASS sample: a
PASS sample: b
FAIL sample: c
    two
    three
FAIL sample: d
SKIP sample: e: no tool
SKIP sample: f: no such device
PASS sample: cxx: vector
SKIP sample: cxx: map: no map
sample: 3 passed, 2 failed, 3 skipped
exit 1
EOF
# Checks that pass or skip: exit 0; only skips: no pass counted.
cat >"$tmp/clean.sh" <<'EOF'
. "$1"
pass "a"
check "b" true
skip "c" "not here"
finish clean
EOF
printf 'PASS a\nPASS b\nSKIP c: not here\nclean: 2 passed, 0 failed, 1 skipped\nexit 0\n' >"$tmp/clean.want"
cat >"$tmp/skips.sh" <<'EOF'
. "$1"
skip "a" "not here"
TEST_SKIP_STATUS=77
result 77 "b" /dev/null
finish skips
EOF
printf 'SKIP a: not here\nSKIP b: \nskips: 0 passed, 0 failed, 2 skipped\nexit 0\n' >"$tmp/skips.want"
# A program that exited 3 with passes only; TEST_LOG shown and emptied.
cat >"$tmp/crash.sh" <<'EOF'
. "$1"
TEST_LOG=$2/log
printf 'PASS x\nSegmentation fault\n' >"$2/sub"
absorb "$2/sub" 3 "sub: exit 3"
echo "said" >"$TEST_LOG"
result 1 "y"
result 1 "z"
finish crash
EOF
printf 'PASS x\nFAIL sub: exit 3\n    PASS x\n    Segmentation fault\nFAIL y\n    said\nFAIL z\ncrash: 1 passed, 3 failed, 0 skipped\nexit 1\n' >"$tmp/crash.want"

# run <lib> <sample>: its output and exit status, the closing line appended to $tmp/totals
run() {
  TEST_TOTALS=$tmp/totals bash "$tmp/$2.sh" "$1" "$tmp" >"$tmp/$2.out" 2>&1
  echo "exit $?" >>"$tmp/$2.out"
}
# verify <lib>: every sample's output as wanted, then the totals; the first difference on stdout
verify() {
  local s st
  rm -f "$tmp/totals"
  for s in sample clean skips crash; do
    run "$1" $s
    diff "$tmp/$s.want" "$tmp/$s.out" >"$tmp/diff" || { echo "$s: $(tr '\n' ' ' <"$tmp/diff")"; return 1; }
  done
  for st in 0 2; do
    bash tests/totals.sh "$tmp/totals" $st >"$tmp/totals.out" 2>&1
    echo "exit $?" >>"$tmp/totals.out"
    if [ $st = 0 ]; then
      printf 'make test: 6 passed, 5 failed, 6 skipped\nexit 1\n'
    else
      printf "make test: a target failed (make's status 2): the totals count the checks that ran\n"
      printf 'make test: 6 passed, 5 failed, 6 skipped\nexit 1\n'
    fi >"$tmp/totals.want"
    diff "$tmp/totals.want" "$tmp/totals.out" >"$tmp/diff" || { echo "totals: $(tr '\n' ' ' <"$tmp/diff")"; return 1; }
  done
  # Clean targets: exit 0, unless make's status says otherwise.
  printf 'a: 1 passed, 0 failed, 1 skipped\nb: 0 passed, 0 failed, 2 skipped\n' >"$tmp/totals"
  bash tests/totals.sh "$tmp/totals" 0 >"$tmp/totals.out" 2>&1 && [ "$(cat "$tmp/totals.out")" = "make test: 1 passed, 0 failed, 3 skipped" ] &&
    ! bash tests/totals.sh "$tmp/totals" 2 >/dev/null 2>&1 ||
    { echo "totals of clean targets: $(tr '\n' ' ' <"$tmp/totals.out")"; return 1; }
}

# The verdicts: kept apart from the counters under test, so that a lib.sh
# that lost a failure cannot pass this test.
wrong=0
verdict() { # verdict <status> <what> [detail file]
  [ "$1" = 0 ] || wrong=$((wrong + 1))
  result "$@"
}
verify tests/lib.sh >"$tmp/verdict"
verdict $? "counts: tests/lib.sh: the samples' lines, closing lines and exit statuses, and make test's totals, as known" "$tmp/verdict"

# plant <name> <sed expression>: a copy of lib.sh changed by it, which verify must reject.
plant() {
  sed "$2" tests/lib.sh >"$tmp/$1.sh"
  if cmp -s tests/lib.sh "$tmp/$1.sh"; then
    verdict 1 "counts: cannot plant '$1': '$2' changes nothing in tests/lib.sh (update this test)"
    return
  fi
  verify "$tmp/$1.sh" >"$tmp/verdict"
  [ $? = 1 ]
  verdict $? "counts: a lib.sh whose $1 is caught ($(head -c 150 "$tmp/verdict"))" "$tmp/verdict"
}
plant "skip counts as a pass" 's/tests_skipped=\$((tests_skipped + 1))/tests_passed=$((tests_passed + 1))/'
plant "failure is not counted" 's/tests_failed=\$((tests_failed + 1))/:/'
plant "finish exits 0 after a failure" 's/^  exit 1$/  exit 0/'
plant "closing line omits the skips" 's/, \$tests_skipped skipped"/"/'

(finish counts)
st=$?
if [ $wrong != 0 ] && [ $st = 0 ]; then echo "FAIL counts: tests/lib.sh let this test end with status 0 after $wrong failed checks"; exit 1; fi
exit $st
