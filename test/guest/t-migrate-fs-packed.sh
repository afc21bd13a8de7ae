#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test/guest/t-migrate-fs.sh with packed virtqueues (QEMU's packed=on); results end in -packed.
VU_PACKED=1 exec "$(dirname "$0")/t-migrate-fs.sh" "$@"
