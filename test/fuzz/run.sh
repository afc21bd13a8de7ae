#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs libFuzzer targets (build/fuzz/fuzz-TARGET, `make fuzz-build`) for SECONDS each,
# from their seeds (test/fuzz/make-seeds.py) and the corpus earlier runs kept in
# build/fuzz/corpus-TARGET, and prints one line per target:
#   PASS: fuzz-T: N execs (R/s), cov C, ft F
#   FAIL: fuzz-T: what the sanitizer or libFuzzer reported; crash file, log
#   SKIP: fuzz-T: why the target cannot run here
# Crash files go to build/fuzz/crashes-TARGET/. FUZZ_FORK=N runs N libFuzzer jobs at
# once (-fork). Exits 1 if any target failed.
#
#   test/fuzz/run.sh SECONDS TARGET...
set -u
cd "$(dirname "$0")/../.."
secs=$1
shift
out=build/fuzz
python3 test/fuzz/make-seeds.py "$out/seeds" || exit 1
status=0
for t in "$@"; do
	corpus=$out/corpus-$t crashes=$out/crashes-$t log=$out/fuzz-$t.log
	mkdir -p "$corpus" "$crashes"
	seeds=()
	[ -d "$out/seeds/$t" ] && seeds=("$out/seeds/$t")
	fork=()
	[ -n "${FUZZ_FORK:-}" ] && fork=(-fork="$FUZZ_FORK" -ignore_crashes=0)
	# New inputs go to the first directory: the corpus, never the seeds.
	"$out/fuzz-$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "${fork[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	if grep -q '^SKIP: ' "$log"; then
		grep -m1 '^SKIP: ' "$log"
		continue
	fi
	# The last progress line has the coverage; the final stats (not kept by -fork) or
	# that line the executions.
	last=$(grep -E '^#[0-9]+.* cov: [0-9]+' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([1-9][0-9]*\)/\1/p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *\([1-9][0-9]*\)/\1/p' "$log" | tail -n 1)
	[ -n "$rate" ] || rate=$(sed -n 's/.*exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
	report=$(grep -m1 -E '^SUMMARY: |ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log")
	artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | head -n 1)
	if [ "$rc" = 0 ] && [ -z "$report" ]; then
		echo "PASS: fuzz-$t: ${execs:-0} execs (${rate:-0}/s), cov ${cov:-?}, ft ${ft:-?}"
	else
		echo "FAIL: fuzz-$t: ${report:-exit status $rc}; crash file: ${artifact:-none}; log: $log"
		status=1
	fi
done
exit $status
