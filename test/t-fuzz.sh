#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A short libFuzzer run (ASan+UBSan) of every fuzz target (test/fuzz/run.sh); any
# crash, leak or sanitizer report fails. VU_FUZZ_SECONDS sets each run's length
# (default 20 s per target). `make fuzz` runs them at length.
set -u
cd "$(dirname "$0")/.."
secs=${VU_FUZZ_SECONDS:-20}
# One run is enough: the sanitized pass of `make check` skips it.
if [ -n "${VU_RUN_TAG:-}" ]; then
	echo "SKIP: fuzz: already run in the plain pass"
	exit 0
fi
if ! command -v clang >/dev/null; then
	echo "SKIP: fuzz: clang is not installed"
	exit 0
fi
mkdir -p build
if ! make -s fuzz-build >build/fuzz-build.log 2>&1; then
	echo "FAIL: fuzz-build: $(tail -n 3 build/fuzz-build.log | tr '\n' ' ')"
	exit 1
fi
# The last line: make may say first which devices it leaves out.
targets=$(make -s --no-print-directory fuzz-targets | tail -n 1)
bash test/fuzz/run.sh "$secs" $targets
