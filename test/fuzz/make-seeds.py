#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes seed inputs for fuzz-session: a well-formed negotiation and ring set-up,
# in the record format of fuzz-session.c ([fd-code][header][payload]).
import struct, sys, os

def rec(req, payload=b"", fd_code=0, flags=1):
    return bytes([fd_code]) + struct.pack("<III", req, flags, len(payload)) + payload

u64 = lambda v: struct.pack("<Q", v)
state = lambda i, n: struct.pack("<II", i, n)
UVA = 0x10000000
seq = [
    rec(1), rec(15), rec(16, u64(0x1ffff & ~(1 << 14)), flags=1 | 8),
    rec(2, u64((1 << 32) | (1 << 28) | (1 << 29) | (1 << 30))),
    rec(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), fd_code=1),
    rec(8, state(0, 256)),
    rec(9, struct.pack("<IIQQQQ", 0, 0, UVA + 0x1000, UVA + 0x3000, UVA + 0x2000, 0)),
    rec(10, state(0, 0)),
    rec(12, u64(0), fd_code=1 | (1 << 2)),
    rec(13, u64(0), fd_code=1 | (1 << 2)),
    rec(18, state(0, 1)),
    rec(36), rec(37, u64(0) + struct.pack("<QQQQ", 2 << 20, 1 << 20, UVA + (2 << 20), 0), fd_code=1),
    rec(38, u64(0) + struct.pack("<QQQQ", 2 << 20, 1 << 20, UVA + (2 << 20), 0)),
    rec(39, u64(15)), rec(40), rec(24, struct.pack("<III", 0, 4, 0) + b"\0" * 4),
    rec(11, state(0, 0)), rec(34),
]
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "negotiate"), "wb") as f:
    f.write(b"".join(seq))
