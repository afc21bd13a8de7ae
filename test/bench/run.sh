#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make bench`: every benchmark in test/bench/*.sh, each side by side with its peer
# on the same run, reported as ratios. Not part of `make check`.
set -u
cd "$(dirname "$0")/../.."
export VHOSTBOX="${VHOSTBOX:-$PWD/vhostbox}"
status=0
for b in test/bench/*.sh; do
	[ "$(basename "$b")" = run.sh ] && continue
	echo "== $(basename "$b" .sh)"
	bash "$b" || status=1
done
exit $status
