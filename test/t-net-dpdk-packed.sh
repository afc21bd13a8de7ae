#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test/t-net-dpdk.sh with packed virtqueues (virtio-user's packed_vq=1); results end in -packed.
VU_PACKED=1 exec "$(dirname "$0")/t-net-dpdk.sh" "$@"
