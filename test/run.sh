#!/bin/bash
# Runs the test suite and prints one closing line: N passed, N failed, N skipped.
#
# Every test is a program that prints one line per case:
#   PASS: name            FAIL: name: why            SKIP: name: why
# Tests are found by name: build/test/t-* (C programs, test/t-*.c) and test/t-*.sh.
# Guest tests (test/guest/t-*.sh) boot QEMU and are slower; VU_SKIP_GUEST=1 leaves them out.
# VHOSTBOX names the binary under test (default ./vhostbox). `run.sh --check` (make check)
# runs the fast tests with the plain build, the front-end and guest tests of the static
# build (vhostbox-static), then all tests with the ASan+UBSan build.
# `run.sh TEST...` runs just those.
set -u
cd "$(dirname "$0")/.."
export VHOSTBOX="${VHOSTBOX:-$PWD/vhostbox}"
log_dir=build/test-logs
mkdir -p "$log_dir"

passed=0 failed=0 skipped=0
run_one() {
	local t=$1 name out rc
	name=$(basename "$t")
	out="$log_dir/$name${VU_RUN_TAG:-}.log"
	local start=$SECONDS
	timeout --kill-after=10 "${VU_TEST_TIMEOUT:-900}" "$t" > "$out" 2>&1
	rc=$?
	local p f s
	p=$(grep -c '^PASS: ' "$out"); f=$(grep -c '^FAIL: ' "$out"); s=$(grep -c '^SKIP: ' "$out")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "FAIL: $name: exited with status $rc" >> "$out"; f=1
	fi
	if [ "$p$f$s" = 000 ]; then
		echo "FAIL: $name: reported no test case" >> "$out"; f=1
	fi
	grep -E '^(FAIL|SKIP): ' "$out" | sed "s|^|  [$name${VU_RUN_TAG:-}] |"
	printf '%-28s %3d passed %3d failed %3d skipped  (%ds)\n' "$name${VU_RUN_TAG:-}" "$p" "$f" "$s" $((SECONDS - start))
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

# run_suite BUILD_DIR BINARY TAG WITH_GUEST
run_suite() {
	export VHOSTBOX=$2 VU_RUN_TAG=$3
	for t in "$1"/test/t-* test/t-*.sh; do [ -x "$t" ] && run_one "$t"; done
	if [ "$4" = 1 ] && [ "${VU_SKIP_GUEST:-0}" != 1 ]; then
		for t in test/guest/t-*.sh; do
			case $t in */t-static*) continue ;; esac   # run_static's
			[ -x "$t" ] && run_one "$t"
		done
	fi
}

# The static build (make static): the front-end tests (those that start a back-end)
# against vhostbox-static, and its guest tests (an empty root).
run_static() {
	export VHOSTBOX=$PWD/vhostbox-static VU_RUN_TAG="[static]"
	for t in $(grep -l 'vuf_backend_start\|VHOSTBOX' test/t-*.c); do
		t=build/test/$(basename "$t" .c)
		[ -x "$t" ] && run_one "$t"
	done
	if [ "${VU_SKIP_GUEST:-0}" != 1 ]; then
		for t in test/guest/t-static*.sh; do [ -x "$t" ] && run_one "$t"; done
	fi
}

if [ "${1:-}" = --check ]; then
	# Fast tests with the plain build, then everything with the sanitized one.
	run_suite build "$PWD/vhostbox" "" 0
	run_static
	run_suite build/asan "$PWD/build/asan/vhostbox-asan" "[asan]" 1
elif [ $# -gt 0 ]; then
	for t in "$@"; do run_one "$t"; done
else
	run_suite build "$VHOSTBOX" "" 1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
