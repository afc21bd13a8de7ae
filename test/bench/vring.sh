#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The ring engine's CPU cost per request, split and packed, one core (test/bench/vring-bench.c).
set -u
cd "$(dirname "$0")/../.."
drv=build/bench/vring-bench
[ -x "$drv" ] || { echo "vring: $drv is not built (make bench-tools)"; exit 1; }
exec taskset -c "$(($(nproc) - 1))" "$drv"
