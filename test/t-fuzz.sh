#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A short libFuzzer run (ASan+UBSan) of each fuzz target; any crash, leak or
# sanitizer report fails. VU_FUZZ_SECONDS sets the run length (default 60).
set -u
cd "$(dirname "$0")/.."
secs=${VU_FUZZ_SECONDS:-60}
# One run is enough: the sanitized pass of `make check` skips it.
if [ -n "${VU_RUN_TAG:-}" ]; then
	echo "SKIP: fuzz: already run in the plain pass"
	exit 0
fi
if ! command -v clang >/dev/null; then
	echo "SKIP: fuzz: clang is not installed"
	exit 0
fi
if ! make -s fuzz >build/fuzz-build.log 2>&1; then
	echo "FAIL: fuzz-build: $(tail -n 3 build/fuzz-build.log | tr '\n' ' ')"
	exit 1
fi
python3 test/fuzz/make-seeds.py build/fuzz/seeds-session
for target in session vring vring-packed; do
	corpus=build/fuzz/corpus-$target
	mkdir -p "$corpus"
	seeds=()
	[ -d build/fuzz/seeds-$target ] && seeds=(build/fuzz/seeds-$target)
	log=build/fuzz/fuzz-$target.log
	if build/fuzz/fuzz-$target -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
		"$corpus" "${seeds[@]}" >"$log" 2>&1; then
		echo "PASS: fuzz-$target: $(grep -o 'Done [0-9]* runs' "$log") in ${secs}s"
	else
		echo "FAIL: fuzz-$target: $(grep -m1 -E 'ERROR|SUMMARY' "$log") (see $log)"
	fi
done
