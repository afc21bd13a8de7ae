#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Writes seed inputs for the libFuzzer targets, OUT/<target>/<name>: the happy paths
# of the tests (t-protocol, t-blk, t-gpu, t-net, t-input), so that every target starts
# from a well-formed set-up and well-formed requests. The formats are those of
# test/fuzz/fuzz-session.c (records) and test/fuzz/fuzz-device.h (header + operations);
# the numbers below follow their enums.
import os
import struct
import sys

u16 = lambda v: struct.pack("<H", v)
u32 = lambda v: struct.pack("<I", v)
u64 = lambda v: struct.pack("<Q", v)

# ---- fuzz-session: [code][header][payload] records after a device byte ------------

def rec(req, payload=b"", fd_code=0, flags=1):
    return bytes([fd_code]) + struct.pack("<III", req, flags, len(payload)) + payload

def kick(i):
    return bytes([0x80 | i])

state = lambda i, n: struct.pack("<II", i, n)
UVA = 0x10000000

def session_ring(q, base):
    # The ring sits in the first memfd (1 MiB at UVA): rings at base, base+0x2000, base+0x1000.
    return [
        rec(8, state(q, 256)),
        rec(9, struct.pack("<IIQQQQ", q, 0, UVA + base, UVA + base + 0x2000, UVA + base + 0x1000, 0)),
        rec(10, state(q, 0)),
        rec(13, u64(q), fd_code=1 | (1 << 2)),
        rec(12, u64(q), fd_code=1 | (1 << 2)),
        rec(18, state(q, 1)),
    ]

# Protocol features every device offers (MQ, REPLY_ACK, BACKEND_REQ, RESET_DEVICE,
# CONFIGURE_MEM_SLOTS, STATUS); blk adds CONFIG and INFLIGHT_SHMFD.
PF_COMMON = 1 << 0 | 1 << 3 | 1 << 5 | 1 << 13 | 1 << 15 | 1 << 16
PF_BLK = PF_COMMON | 1 << 9 | 1 << 12

def negotiate(pf):
    return [
        rec(1), rec(15), rec(16, u64(pf), flags=1 | 8),
        rec(2, u64((1 << 32) | (1 << 28) | (1 << 29) | (1 << 30))),
        rec(5, struct.pack("<II", 1, 0) + struct.pack("<QQQQ", 0, 1 << 20, UVA, 0), fd_code=1),
    ]

def session_seeds():
    tail = [
        rec(36), rec(37, u64(0) + struct.pack("<QQQQ", 2 << 20, 1 << 20, UVA + (2 << 20), 0), fd_code=1),
        rec(38, u64(0) + struct.pack("<QQQQ", 2 << 20, 1 << 20, UVA + (2 << 20), 0)),
        rec(39, u64(15)), rec(40), rec(24, struct.pack("<III", 0, 4, 0) + b"\0" * 4),
        rec(11, state(0, 0)), rec(34),
    ]
    # Eventfds kept in the order sent: per ring, call (2q) then kick (2q + 1).
    rng = bytes([0]) + b"".join(negotiate(PF_COMMON) + session_ring(0, 0x1000) + [kick(1)] + tail)
    inflight = rec(31, struct.pack("<QQHHI", 0, 0, 2, 256, 0))
    blk = bytes([1]) + b"".join(negotiate(PF_BLK) + [inflight] + session_ring(0, 0x1000) +
                                session_ring(1, 0x8000) + [kick(1), kick(3)] + tail)
    return {"negotiate": rng, "blk-inflight": blk}

# ---- the device targets: fuzz-device.h -------------------------------------------

F_EVENT_IDX, F_INDIRECT, F_REPLY_ACK, F_INFLIGHT = 1, 2, 4, 8
F_KICK_NOFD, F_INBAND, F_CALL_NOFD, F_OFFSET = 16, 32, 64, 128
(OP_KICK, OP_REQ, OP_POKE, OP_RING_POKE, OP_AVAIL, OP_REMAP, OP_STOP, OP_START, OP_RESET,
 OP_SETUP, OP_RECONNECT, OP_INFLIGHT, OP_CONFIG, OP_MSG, OP_WAIT, OP_PORT, OP_DEVICE,
 OP_LOG, OP_STATE) = range(19)
NO_SETTLE = 0x80
REQ_INDIRECT, REQ_KICK, REQ_RAW_ADDR = 1, 2, 4
REMAP_SAME, REMAP_GROW, REMAP_MOVE, REMAP_REMOVE, REMAP_ADD = range(5)
RAM_GPA = 0x100000                   # region 0: rings
RAM1_GPA = RAM_GPA + (256 << 10)     # region 1, where requests' buffers go
RAW_BASE = RAM_GPA - 4096            # FZ_REQ_RAW_ADDR addresses count from here

def header(features=0xffffffff, flags=F_EVENT_IDX | F_REPLY_ACK, ring_log2=6, pf_off=0, device=0,
           features1=0xffffffff):
    return struct.pack("<IIBBBB", features, features1, flags, ring_log2, pf_off, device)

def req(q, out=(), ins=(), flags=REQ_KICK, addrs=None):
    """A request: readable buffers with these bytes, writable ones of these lengths (at addrs)."""
    b = bytes([OP_REQ, q, flags | (REQ_RAW_ADDR if addrs else 0), len(out), len(ins)])
    lens = [len(o) for o in out] + list(ins)
    for i, n in enumerate(lens):
        b += u16(n) + (u32(addrs[i] - RAW_BASE) if addrs else b"")
    return b + b"".join(out)

def op(code, *args):
    return bytes([code]) + b"".join(a if isinstance(a, bytes) else bytes([a]) for a in args)

def msg(req, payload=b"", fd_code=0, flags=8):
    """A raw message; NEED_REPLY by default, so that one the device refuses is acked, not fatal."""
    return op(OP_MSG, req, flags, fd_code, u16(len(payload)), payload)

def messages(q):
    """Well-formed raw messages to start from: queries, a ring disabled and enabled, fds."""
    return (msg(40) + msg(17) + msg(36) + msg(1) + msg(18, state(q, 0)) + msg(18, state(q, 1)) +
            msg(14, u64(q | 0x100)) + msg(13, u64(q), fd_code=1) + msg(35, state(q, 0)) +
            msg(39, u64(0x0f)) + msg(24, struct.pack("<III", 0, 8, 0) + bytes(8)))

def lifecycle(q):
    """Stop and restart a ring, remap memory every way, reconnect, reset and set up again."""
    return (op(OP_STOP, q) + op(OP_START, q) + op(OP_REMAP, REMAP_SAME, 0) + op(OP_REMAP, REMAP_GROW, 1) +
            op(OP_REMAP, REMAP_MOVE, 1) + op(OP_RECONNECT) + op(OP_RESET, 0) + op(OP_SETUP) + messages(q))

def migration(work):
    """A migration's source: the dirty log on while work goes on, the device's state saved."""
    return op(OP_LOG, 1, u16(0)) + work + op(OP_STATE, 0) + op(OP_LOG, 0, u16(0))

# -- blk: queues 0 and 1 --

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13

def blk_hdr(t, sector=0):
    return struct.pack("<IIQ", t, 0, sector)

def blk_requests(q, indirect=0):
    f = REQ_KICK | indirect
    return (req(q, [blk_hdr(T_OUT, 8), bytes(range(256)) * 4], [1], f) +
            req(q, [blk_hdr(T_IN, 8)], [1024, 1], f) +
            req(q, [blk_hdr(T_IN, 0)], [512, 512, 1], f) +
            req(q, [blk_hdr(T_FLUSH)], [1], f) +
            req(q, [blk_hdr(T_GET_ID)], [20, 1], f) +
            req(q, [blk_hdr(T_DISCARD), struct.pack("<QII", 16, 8, 0)], [1], f) +
            req(q, [blk_hdr(T_WRITE_ZEROES), struct.pack("<QII", 24, 8, 1)], [1], f))

def in_flight(q):
    """Requests still in flight when the ring stops, memory changes and the front-end goes."""
    r = blk_requests(q)
    return (bytes([r[0] | NO_SETTLE]) + r[1:] + bytes([OP_STOP | NO_SETTLE, q]) + op(OP_START, q) +
            bytes([r[0] | NO_SETTLE]) + r[1:] + bytes([OP_REMAP | NO_SETTLE, REMAP_GROW, 1]) +
            bytes([r[0] | NO_SETTLE]) + r[1:] + op(OP_RECONNECT))

def straddling(q):
    """Data buffers that cross from region 0 into region 1 (two host mappings)."""
    at, hdr, status = RAM1_GPA - 256, RAM1_GPA + 1024, RAM1_GPA + 1100
    return (req(q, [blk_hdr(T_OUT, 16), bytes(range(256)) * 2], [1], addrs=[hdr, at, status]) +
            req(q, [blk_hdr(T_IN, 16)], [512, 1], addrs=[hdr, at, status]))

def blk_seeds():
    return {
        "straddling": header() + straddling(0) + straddling(1),
        "two-threads": header(device=8) + blk_requests(0) + blk_requests(1) + in_flight(1),
        "in-flight": header(flags=F_EVENT_IDX | F_REPLY_ACK | F_INFLIGHT) + in_flight(0) + in_flight(1),
        # The destination loads what a source saved: "VBLK", version 1, write cache off.
        "migration": header() + migration(blk_requests(0)) + op(OP_STATE, 1, u16(8), b"VBLK\x01\x00\x00\x00") +
                     blk_requests(1),
        "requests": header() + blk_requests(0) + blk_requests(1),
        "inflight": header(flags=F_EVENT_IDX | F_REPLY_ACK | F_INFLIGHT) + blk_requests(1) +
                    op(OP_INFLIGHT, u16(16), 8, bytes([1, 0, 0, 0, 0, 0, 0, 0])) + op(OP_RECONNECT) +
                    blk_requests(0),
        "indirect": header(flags=F_INDIRECT | F_REPLY_ACK | F_OFFSET, ring_log2=3) + blk_requests(0, REQ_INDIRECT),
        "lifecycle": header(flags=F_REPLY_ACK | F_INFLIGHT | F_INBAND | F_KICK_NOFD | F_CALL_NOFD) +
                     blk_requests(0) + lifecycle(0) + blk_requests(0) + op(OP_DEVICE, u16(64)) + blk_requests(1) +
                     op(OP_CONFIG, 1, 32, 1, 0) + op(OP_CONFIG, 0, 0, 60),
    }

# -- scsi: queue 0 control, 1 event, 2 and 3 requests; LUN 0 and 1 --

SCSI_RESP = 108

def scsi_cmd(cdb, lun=0, target=0):
    return bytes([1, target, 0x40, lun]) + bytes(4) + u64(0x42) + bytes(3) + cdb.ljust(32, b"\0")

def be(v, n):
    return v.to_bytes(n, "big")

def scsi_requests(q, indirect=0):
    f = REQ_KICK | indirect
    rw10 = lambda op, lba, n: bytes([op, 0]) + be(lba, 4) + bytes([0]) + be(n, 2) + bytes([0])
    rw16 = lambda op, lba, n, b1=0: bytes([op, b1]) + be(lba, 8) + be(n, 4) + bytes(2)
    unmap_list = be(22, 2) + be(16, 2) + bytes(4) + be(64, 8) + be(8, 4) + bytes(4)
    caching = bytes([0, 0, 0, 0, 0x08, 18, 0x04]) + bytes(17)
    return (req(q, [scsi_cmd(bytes(6))], [SCSI_RESP], f) +                                  # TEST UNIT READY
            req(q, [scsi_cmd(bytes([0x12, 0, 0, 0, 96, 0]))], [SCSI_RESP, 96], f) +          # INQUIRY
            req(q, [scsi_cmd(bytes([0x12, 1, 0xb0, 0, 255, 0]))], [SCSI_RESP, 255], f) +     # VPD block limits
            req(q, [scsi_cmd(bytes([0x12, 1, 0x80, 0, 255, 0]), lun=5)], [SCSI_RESP, 255], f) +  # a bad LUN
            req(q, [scsi_cmd(bytes([0x03, 0, 0, 0, 18, 0]))], [SCSI_RESP, 18], f) +          # REQUEST SENSE
            req(q, [scsi_cmd(bytes([0x9e, 0x10]) + bytes(8) + be(32, 4) + bytes(2))], [SCSI_RESP, 32], f) +
            req(q, [scsi_cmd(rw10(0x2a, 8, 2)), bytes(range(256)) * 4], [SCSI_RESP], f) +    # WRITE(10)
            req(q, [scsi_cmd(rw10(0x28, 8, 2))], [SCSI_RESP, 512, 512], f) +                  # READ(10)
            req(q, [scsi_cmd(rw16(0x8a, 16, 1, 0x08)), bytes(512)], [SCSI_RESP], f) +         # WRITE(16) FUA
            req(q, [scsi_cmd(rw16(0x93, 32, 8, 0x08)), bytes(512)], [SCSI_RESP], f) +         # WRITE SAME(16) UNMAP
            req(q, [scsi_cmd(bytes([0x41, 0]) + be(48, 4) + bytes([0]) + be(4, 2) + bytes([0])),
                    bytes(range(256)) * 2], [SCSI_RESP], f) +                                # WRITE SAME(10) pattern
            req(q, [scsi_cmd(bytes([0x42]) + bytes(6) + be(24, 2) + bytes([0])), unmap_list], [SCSI_RESP], f) +
            req(q, [scsi_cmd(bytes([0x9e, 0x12]) + be(0, 8) + be(64, 4) + bytes(2))], [SCSI_RESP, 64], f) +
            req(q, [scsi_cmd(bytes([0x1a, 0, 0x3f, 0, 255, 0]))], [SCSI_RESP, 255], f) +     # MODE SENSE(6)
            req(q, [scsi_cmd(bytes([0x15, 0x10, 0, 0, 24, 0])), caching], [SCSI_RESP], f) +  # MODE SELECT(6)
            req(q, [scsi_cmd(bytes([0x35]) + bytes(9))], [SCSI_RESP], f) +                   # SYNCHRONIZE CACHE
            req(q, [scsi_cmd(bytes([0xa0, 0, 0, 0, 0, 0]) + be(256, 4) + bytes(2))], [SCSI_RESP, 256], f) +
            req(q, [scsi_cmd(bytes([0xa3, 0x0c, 0x80, 0, 0, 0]) + be(1024, 4) + bytes(2))], [SCSI_RESP, 1024], f))

def scsi_control():
    tmf = lambda sub, lun: u32(0) + u32(sub) + bytes([1, 0, 0x40, lun]) + bytes(4) + u64(0x42)
    return (req(0, [tmf(5, 0)], [1]) + req(0, [tmf(0, 1)], [1]) + req(0, [tmf(6, 0)], [1]) +
            req(0, [u32(1) + bytes([1, 0, 0x40, 0]) + bytes(4) + u32(0xff)], [5]))

def scsi_seeds():
    return {
        "requests": header() + scsi_requests(2) + scsi_requests(3) + scsi_control(),
        "device-settings": header(device=15) + scsi_requests(2) + scsi_control() + scsi_requests(3),
        "in-flight-tmf": header(flags=F_EVENT_IDX | F_REPLY_ACK | F_INFLIGHT) +
                         bytes([OP_REQ | NO_SETTLE]) + scsi_requests(2)[1:] + scsi_control() + op(OP_RECONNECT) +
                         scsi_requests(3),
        "indirect": header(flags=F_INDIRECT | F_REPLY_ACK | F_OFFSET, ring_log2=3) + scsi_requests(2, REQ_INDIRECT),
        "lifecycle": header(flags=F_REPLY_ACK | F_INFLIGHT | F_INBAND | F_KICK_NOFD | F_CALL_NOFD) +
                     scsi_requests(2) + lifecycle(2) + scsi_requests(3) + op(OP_DEVICE, u16(64)) + scsi_requests(2) +
                     op(OP_CONFIG, 1, 20, 4, u32(18)) + op(OP_CONFIG, 0, 0, 36),
    }

# -- gpu: queue 0 control, 1 cursor --

def gpu_hdr(t, flags=0, fence=0, ctx=0):
    return struct.pack("<IIQIBBBB", t, flags, fence, ctx, 0, 0, 0, 0)

def gpu_cmd(body, resp=24, q=0):
    return req(q, [body], [resp] if resp else [])

BACKING = RAM1_GPA + (160 << 10)   # a guest area requests' buffers reach only late

def gpu_2d(res=1, w=64, h=64):
    rect = struct.pack("<IIII", 0, 0, w, h)
    return (gpu_cmd(gpu_hdr(0x100), 408) +                                              # GET_DISPLAY_INFO
            gpu_cmd(gpu_hdr(0x10a) + u32(0) + u32(0), 1056) +                           # GET_EDID
            gpu_cmd(gpu_hdr(0x101) + struct.pack("<IIII", res, 2, w, h)) +              # RESOURCE_CREATE_2D
            op(OP_POKE, u32(BACKING - RAM_GPA), 64, bytes(range(64))) +
            gpu_cmd(gpu_hdr(0x106) + struct.pack("<II", res, 1) + struct.pack("<QII", BACKING, w * h * 4, 0)) +
            gpu_cmd(gpu_hdr(0x103) + rect + struct.pack("<II", 0, res)) +                # SET_SCANOUT
            gpu_cmd(gpu_hdr(0x105) + rect + u64(0) + struct.pack("<II", res, 0)) +       # TRANSFER_TO_HOST_2D
            gpu_cmd(gpu_hdr(0x104) + rect + struct.pack("<II", res, 0)) +                # RESOURCE_FLUSH
            gpu_cmd(gpu_hdr(0x300) + struct.pack("<IIII", 0, 10, 20, 0) + struct.pack("<IIII", res, 1, 1, 0), 0, q=1) +
            gpu_cmd(gpu_hdr(0x301) + struct.pack("<IIII", 0, 30, 40, 0) + bytes(16), 0, q=1))

def gpu_teardown(res=1):
    return (gpu_cmd(gpu_hdr(0x103) + bytes(16) + struct.pack("<II", 0, 0)) +            # scanout off
            gpu_cmd(gpu_hdr(0x107) + struct.pack("<II", res, 0)) +                       # DETACH_BACKING
            gpu_cmd(gpu_hdr(0x102) + struct.pack("<II", res, 0)))                        # UNREF

def gpu_big(res=7, w=512, h=512, stall=True):
    """A scanout big enough for memfd pixels spliced to the display: whole and partial updates."""
    rect = struct.pack("<IIII", 0, 0, w, h)
    part = struct.pack("<IIII", 8, 8, 64, 64)
    entries = b"".join(struct.pack("<QII", RAM1_GPA, 64 << 10, 0) for _ in range(w * h * 4 // (64 << 10)))
    frame = lambda r: (gpu_cmd(gpu_hdr(0x105) + r + u64(0) + struct.pack("<II", res, 0)) +
                       gpu_cmd(gpu_hdr(0x104) + r + struct.pack("<II", res, 0)))
    return (gpu_cmd(gpu_hdr(0x101) + struct.pack("<IIII", res, 1, w, h)) +
            gpu_cmd(gpu_hdr(0x106) + struct.pack("<II", res, len(entries) // 16) + entries) +
            gpu_cmd(gpu_hdr(0x103) + rect + struct.pack("<II", 0, res)) +
            frame(rect) + frame(rect) + (op(OP_DEVICE, 1) if stall else b"") + frame(rect) + frame(rect) +
            frame(part) + op(OP_WAIT, 3) + op(OP_DEVICE, 0, 16) + frame(part) + op(OP_DEVICE, 0, 0) + frame(rect))

def gpu_seeds():
    stall = op(OP_DEVICE, 1) + gpu_2d(2) + op(OP_DEVICE, 0, 0)
    return {
        "2d": header() + gpu_2d() + gpu_teardown(),
        "display-stalls": header() + gpu_2d() + stall + op(OP_DEVICE, 2) + gpu_2d(3) + op(OP_DEVICE, 3) +
                          gpu_2d(4),
        "display-faults": header() + op(OP_DEVICE, 6, 1) + op(OP_DEVICE, 4, u16(640), u16(480)) + gpu_2d() +
                          op(OP_DEVICE, 5, 12, u32(3) + u32(4) + u32(0)),
        "lifecycle": header(flags=F_REPLY_ACK | F_EVENT_IDX) + gpu_2d() + lifecycle(0) + gpu_2d(5),
        "migration": header() + migration(gpu_2d() + gpu_big(9)),
        "big-scanout": header() + gpu_big() + op(OP_DEVICE, 2) + gpu_big(8, stall=False),
    }

CTX = 1

def virgl_3d(res=10, s=64):
    cs = [1 | 8 << 8 | 5 << 16, 1, res, 2, 0, 0,                    # CREATE_OBJECT surface
          5 | 0 << 8 | 3 << 16, 1, 0, 1,                            # SET_FRAMEBUFFER_STATE
          7 | 0 << 8 | 8 << 16, 4, 0x3f800000, 0x3f000000, 0, 0x3f800000, 0, 0, 0]   # CLEAR
    cs = b"".join(u32(v) for v in cs)
    box = struct.pack("<IIIIII", 0, 0, 0, s, s, 1)
    return (gpu_cmd(gpu_hdr(0x108) + u32(0) + u32(0), 40) +                             # GET_CAPSET_INFO
            gpu_cmd(gpu_hdr(0x109) + u32(1) + u32(1), 4096) +                           # GET_CAPSET
            gpu_cmd(gpu_hdr(0x200, ctx=CTX) + u32(4) + u32(0) + b"fuzz".ljust(64, b"\0")) +
            gpu_cmd(gpu_hdr(0x204) + struct.pack("<IIIIIIIIIIII", res, 2, 2, 2, s, s, 1, 1, 0, 0, 0, 0)) +
            gpu_cmd(gpu_hdr(0x106) + struct.pack("<II", res, 1) + struct.pack("<QII", BACKING, s * s * 4, 0)) +
            gpu_cmd(gpu_hdr(0x202, ctx=CTX) + struct.pack("<II", res, 0)) +
            gpu_cmd(gpu_hdr(0x207, 1, 5, CTX) + struct.pack("<II", len(cs), 0) + cs) +    # SUBMIT_3D, fenced
            gpu_cmd(gpu_hdr(0x206, 1, 6, CTX) + box + u64(0) + struct.pack("<IIII", res, 0, s * 4, 0)) +
            gpu_cmd(gpu_hdr(0x205, 1, 7, CTX) + box + u64(0) + struct.pack("<IIII", res, 0, s * 4, 0)) +
            gpu_cmd(gpu_hdr(0x103) + struct.pack("<IIII", 0, 0, s, s) + struct.pack("<II", 0, res)) +
            gpu_cmd(gpu_hdr(0x104) + struct.pack("<IIII", 0, 0, s, s) + struct.pack("<II", res, 0)))

def virgl_seeds():
    return {
        "3d": header() + virgl_3d() + gpu_cmd(gpu_hdr(0x201, ctx=CTX)) + gpu_teardown(10),
        "2d-on-virgl": header() + gpu_2d() + gpu_teardown(),
        "lifecycle": header() + virgl_3d() + lifecycle(0) + virgl_3d(11),
        "migration": header() + migration(virgl_3d()),
    }

# -- net: two ports; queues 0 receive, 1 transmit, 2 control --

MAC1, MAC2 = bytes([0x52, 0x54, 0, 0, 0, 1]), bytes([0x52, 0x54, 0, 0, 0, 2])
BCAST = b"\xff" * 6

def frame(dst, src, size=60, gso=None):
    hdr = bytes(12) if not gso else struct.pack("<BBHHHHH", 1, gso, 54, 1448, 34, 16, 0)
    eth = dst + src + b"\x08\x00"
    return hdr + eth + bytes((i * 7) & 0xff for i in range(size - len(eth)))

def rx_buffers(n, size=2048, port=None):
    return (op(OP_PORT, port) if port is not None else b"") + b"".join(req(0, [], [size]) for _ in range(n))

def ctrl(cls, cmd, data, q=2):
    return req(q, [bytes([cls, cmd]) + data], [1])

def csum_frame(dst, src, size=120):
    """A frame whose sender left the checksum (NEEDS_CSUM, no GSO) to whoever receives it."""
    eth = dst + src + b"\x08\x00"
    return struct.pack("<BBHHHHH", 1, 0, 0, 0, 34, 16, 0) + eth + bytes(size - len(eth))

def net_seeds():
    traffic = (rx_buffers(8, port=1) + rx_buffers(8, port=0) +
               op(OP_PORT, 0) + req(1, [frame(MAC2, MAC1)]) + req(1, [frame(BCAST, MAC1, 200)]) +
               op(OP_PORT, 1) + req(1, [frame(MAC1, MAC2, 1514)]) +
               req(1, [frame(MAC1, MAC2, 4000, gso=1)[:12], frame(MAC1, MAC2, 4000, gso=1)[12:]]))
    control = (op(OP_PORT, 1) + ctrl(0, 0, b"\0") + ctrl(1, 0, u32(1) + MAC2 + u32(1) + b"\x01\x00\x5e\0\0\1") +
               ctrl(1, 1, b"\x52\x54\0\0\0\x22") + ctrl(4, 0, u16(1)) + ctrl(5, 0, u64(0x82)) + ctrl(3, 0, b""))
    return {
        "traffic": header() + traffic,
        "control": header() + control + traffic + op(OP_DEVICE, 0, MAC1) + op(OP_DEVICE, 1, u16(9000)),
        "mergeable-small-ring": header(ring_log2=2) + rx_buffers(3, 256, port=1) + op(OP_PORT, 0) +
                                req(1, [frame(MAC2, MAC1, 700)]),
        "lifecycle": header() + traffic + op(OP_PORT, 1) + lifecycle(0) + traffic,
        "migration": header() + op(OP_PORT, 1) + migration(traffic),
        "straddling": header() + op(OP_PORT, 1) + req(0, [], [2048], addrs=[RAM1_GPA - 100]) + op(OP_PORT, 0) +
                      req(1, [frame(MAC2, MAC1, 300)], addrs=[RAM1_GPA - 50]),
        # Port 1 takes no checksum offload (GUEST_CSUM, bit 1, and the TSO bits off).
        "checksum-filled": header(features1=0xffffffff & ~(1 << 1 | 1 << 7 | 1 << 8 | 1 << 9)) +
                           rx_buffers(4, port=1) + op(OP_PORT, 0) + req(1, [csum_frame(MAC2, MAC1)]) +
                           req(1, [csum_frame(MAC2, MAC1, 600)[:40], csum_frame(MAC2, MAC1, 600)[40:]]),
        "two-pairs": header(device=1) + op(OP_PORT, 1) + ctrl(4, 0, u16(2), q=4) +
                     b"".join(req(q, [], [2048]) for q in (0, 2, 0, 2)) + op(OP_PORT, 0) + ctrl(4, 0, u16(2), q=4) +
                     req(3, [frame(MAC2, MAC1)]) + req(1, [frame(MAC2, MAC1)]) + req(3, [frame(BCAST, MAC1)]),
    }

# -- input: queue 0 events, 1 status --

EV_SYN, EV_KEY, EV_REL, EV_ABS, EV_MSC, EV_LED = 0, 1, 2, 3, 4, 0x11

def host_events(*evs):
    return op(OP_DEVICE, len(evs)) + b"".join(bytes([t]) + u16(c) + u32(v & 0xffffffff) for t, c, v in evs)

def event_buffers(n):
    return b"".join(req(0, [], [8]) for _ in range(n))

def input_seeds():
    config = b"".join(op(OP_CONFIG, 1, 0, 2, bytes([sel, sub])) + op(OP_CONFIG, 0, 0, 136)
                      for sel, sub in [(1, 0), (2, 0), (3, 0), (0x10, 0), (0x11, EV_KEY), (0x12, 0)])
    keys = host_events((EV_MSC, 4, 0x70004), (EV_KEY, 30, 1), (EV_SYN, 0, 0), (EV_KEY, 30, 0), (EV_SYN, 0, 0))
    return {
        "keyboard": header() + event_buffers(16) + keys + req(1, [struct.pack("<HHI", EV_LED, 1, 1)]) + config,
        "tablet": header(device=1) + event_buffers(8) +
                  host_events((EV_ABS, 0, 100), (EV_ABS, 1, 200), (EV_KEY, 0x14a, 1), (EV_SYN, 0, 0)) + config,
        "frame-waits": header(ring_log2=1) + event_buffers(1) + keys + event_buffers(4) + host_events((EV_SYN, 3, 0)),
        "lifecycle": header() + event_buffers(8) + keys + lifecycle(0) + event_buffers(8) + keys,
        "migration": header() + migration(event_buffers(8) + keys + req(1, [struct.pack("<HHI", EV_LED, 1, 1)])),
        "straddling": header() + b"".join(req(0, [], [8], addrs=[RAM1_GPA - 4 + 8 * i]) for i in range(3)) + keys +
                      req(1, [struct.pack("<HHI", EV_LED, 1, 1)], addrs=[RAM1_GPA - 3]),
    }

# -- fs: queue 0 high priority (FORGETs), 1 requests; the share holds a, d/, out -> ../outside --

(LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN,
 READ, WRITE, STATFS, RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, INIT, OPENDIR,
 READDIR, RELEASEDIR, FSYNCDIR, GETLK, SETLK, SETLKW, ACCESS, CREATE, DESTROY, BATCH_FORGET, FALLOCATE,
 READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE, SYNCFS) = (
    1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
    31, 32, 33, 34, 35, 38, 42, 43, 44, 45, 46, 47, 50)

def fuse(opcode, node=1, args=b"", data=b"", room=4096, q=1):
    """A FUSE request as the virtiofs driver lays it out: header and arguments, data, reply room."""
    hdr = struct.pack("<IIQQIIIHH", 40 + len(args) + len(data), opcode, 7, node, 0, 0, 0, 0, 0)
    return req(q, [hdr + args] + ([data] if data else []), [16, room - 16] if room > 16 else [room] if room else [])

def name(*names):
    return b"".join(n.encode() + b"\0" for n in names)

def fs_session():
    rd = lambda fh, size=16: struct.pack("<QQIIQII", fh, 0, size, 0, 0, 0, 0)
    lk = lambda fh, t, cmd=SETLK: fuse(cmd, 2, struct.pack("<QQQQII", fh, 1, 0, 99, t, 0) + struct.pack("<II", 0, 0))
    return (fuse(INIT, 0, struct.pack("<IIII", 7, 37, 131072, 0x1fffffff)) +
            fuse(LOOKUP, 1, name("a")) + fuse(GETATTR, 2, bytes(16)) +
            fuse(OPEN, 2, struct.pack("<II", 2, 0)) + fuse(READ, 2, rd(1)) +
            fuse(WRITE, 2, struct.pack("<QQIIQII", 1, 4, 8, 0, 0, 0, 0), b"ABCDEFGH") +
            fuse(SETATTR, 2, struct.pack("<IIQQQQQQIIIIIIII", 8 | 16, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0o600, 0, 0, 0, 0)) +
            lk(1, 1) + lk(1, 1, GETLK) + lk(1, 2, SETLKW) +
            fuse(FALLOCATE, 2, struct.pack("<QQQII", 1, 0, 8192, 0, 0)) +
            fuse(LSEEK, 2, struct.pack("<QQII", 1, 0, 3, 0)) +
            fuse(SETXATTR, 2, struct.pack("<II", 3, 0) + name("user.x") + b"abc") +
            fuse(GETXATTR, 2, struct.pack("<II", 64, 0) + name("user.x")) +
            fuse(LISTXATTR, 2, struct.pack("<II", 64, 0)) + fuse(REMOVEXATTR, 2, name("user.x")) +
            fuse(CREATE, 1, struct.pack("<IIII", 2, 0o100644, 0, 0) + name("c")) +
            fuse(COPY_FILE_RANGE, 2, struct.pack("<QQQQQQQ", 1, 0, 3, 2, 0, 16, 0)) +
            fuse(MKDIR, 1, struct.pack("<II", 0o755, 0) + name("m")) +
            fuse(MKNOD, 1, struct.pack("<IIII", 0o10644, 0, 0, 0) + name("p")) +
            fuse(SYMLINK, 1, name("s", "a")) + fuse(READLINK, 5) +
            fuse(LINK, 1, u64(2) + name("h")) +
            fuse(RENAME, 1, u64(1) + name("h", "h2")) + fuse(RENAME2, 1, struct.pack("<QII", 1, 2, 0) + name("a", "c")) +
            fuse(OPENDIR, 1, bytes(8)) + fuse(READDIR, 1, rd(3, 4096)) + fuse(READDIRPLUS, 1, rd(3, 4096)) +
            fuse(FSYNCDIR, 1, struct.pack("<QII", 3, 0, 0)) + fuse(RELEASEDIR, 1, struct.pack("<QIIQ", 3, 0, 0, 0)) +
            fuse(LOOKUP, 1, name("out")) + fuse(OPEN, 8, struct.pack("<II", 0, 0)) +
            fuse(STATFS, 1) + fuse(ACCESS, 1, struct.pack("<II", 4, 0)) + fuse(SYNCFS, 1, bytes(8)) +
            fuse(FLUSH, 2, struct.pack("<QIIQ", 1, 0, 0, 0)) + fuse(FSYNC, 2, struct.pack("<QII", 1, 1, 0)) +
            fuse(RELEASE, 2, struct.pack("<QIIQ", 1, 0, 0, 0)) +
            fuse(UNLINK, 1, name("h2")) + fuse(RMDIR, 1, name("m")) +
            fuse(FORGET, 2, u64(1), room=0, q=0) +
            fuse(BATCH_FORGET, 0, struct.pack("<II", 2, 0) + u64(3) + u64(1) + u64(4) + u64(1), room=0, q=0))

def fs_state(nodes, files):
    """A virtio-fs device state (dev/fs-migrate.c): nodes (id, lookups, type, path), files (fh, node, flags)."""
    return (b"VUFS" + struct.pack("<III", 1, len(nodes), len(files)) +
            b"".join(struct.pack("<QQII", i, n, t, len(p)) + p for i, n, t, p in nodes) +
            b"".join(struct.pack("<QQII", i, n, f, 0) for i, n, f in files))

def fs_seeds():
    hostile = (fuse(INIT, 0, struct.pack("<IIII", 7, 37, 0, 0)) + fuse(LOOKUP, 1, b"../outside\0") +
               fuse(LOOKUP, 1, b"a") + fuse(LOOKUP, 99, name("a")) + fuse(MKDIR, 1, struct.pack("<II", 0o755, 0) + b"x/y\0") +
               fuse(WRITE, 1, struct.pack("<QQIIQII", 1, 0, 60000, 0, 0, 0, 0), b"z") + fuse(9999, 1) +
               fuse(BATCH_FORGET, 0, struct.pack("<II", 1000000, 0) + u64(2) + u64(1), room=0, q=0) +
               fuse(GETATTR, 1, bytes(16), room=20))
    S_IFREG, S_IFDIR = 0o100000, 0o040000
    state = fs_state([(2, 1, S_IFREG, b"a"), (3, 2, S_IFDIR, b"d"), (4, 1, S_IFREG, b"gone")], [(1, 2, 2), (2, 3, 0)])
    bad = fs_state([(2, 1, S_IFREG, b"d/../../outside")], [])
    return {
        "session": header() + fs_session(),
        "workers": header(device=1 | 8) + fs_session() + lifecycle(1) + fuse(INIT, 0, struct.pack("<IIII", 7, 31, 0, 0)),
        "readonly-never": header(device=2 | 4) + fs_session(),
        "hostile": header(device=8) + hostile,
        "destroy": header(device=8) + fs_session() + fuse(DESTROY, 0) + fs_session(),
        "migration": header(device=1) + fuse(INIT, 0, struct.pack("<IIII", 7, 37, 0, 0)) + fuse(LOOKUP, 1, name("a")) +
                     fuse(LOOKUP, 1, name("d")) + fuse(OPEN, 2, struct.pack("<II", 2, 0)) +
                     migration(fuse(READ, 2, struct.pack("<QQIIQII", 1, 0, 16, 0, 0, 0, 0))) +
                     op(OP_STATE, 1, u16(len(state)), state) + fuse(READ, 2, struct.pack("<QQIIQII", 1, 0, 16, 0, 0, 0, 0)) +
                     fuse(LOOKUP, 3, name("x")) + fuse(FORGET, 4, u64(1), room=0, q=0) +
                     op(OP_STATE, 1, u16(len(bad)), bad) + fuse(GETATTR, 2, bytes(16)),
    }

# -- vsock: guest CID 3; queues 0 receive, 1 transmit, 2 events; port 1000 listens on the host --

STREAM, V_REQUEST, V_RESPONSE, V_RST, V_SHUTDOWN, V_RW, V_CREDIT_UPDATE, V_CREDIT_REQUEST = 1, 1, 2, 3, 4, 5, 6, 7

def vpkt(op_, sport=5000, dport=1000, payload=b"", src=3, dst=2, buf_alloc=65536, fwd=0, flags=0, length=None):
    return struct.pack("<QQIIIHHIII", src, dst, sport, dport, len(payload) if length is None else length,
                       STREAM, op_, flags, buf_alloc, fwd) + payload

def vsock_seeds():
    rx = b"".join(req(0, [], [4096]) for _ in range(8)) + req(2, [], [8])
    stream = (req(1, [vpkt(V_REQUEST)]) + req(1, [vpkt(V_RW, payload=bytes(range(200)))]) +
              req(1, [vpkt(V_RW, payload=b"x" * 3000)[:44], b"x" * 3000]) + req(1, [vpkt(V_CREDIT_REQUEST)]) +
              req(1, [vpkt(V_CREDIT_UPDATE, fwd=100)]) + req(1, [vpkt(V_SHUTDOWN, flags=3)]) + req(1, [vpkt(V_RST)]))
    host = op(OP_DEVICE, 1, u16(7000)) + rx + op(OP_DEVICE, 0, b"hello from the host") + req(1, [vpkt(V_RESPONSE, 7000, 1024)])
    hostile = (req(1, [vpkt(V_RW, length=70000)]) + req(1, [vpkt(9)]) + req(1, [vpkt(V_REQUEST, src=7)]) +
               req(1, [vpkt(V_REQUEST, dport=1001)]) + req(1, [vpkt(V_RW, payload=b"ab")[:20]]))
    return {
        "stream": header() + rx + stream,
        "host-connect": header() + host + stream,
        "hostile": header() + rx + hostile + stream,
        "lifecycle": header() + rx + stream + lifecycle(1) + rx + stream,
    }

TARGETS = {"session": session_seeds, "blk": blk_seeds, "scsi": scsi_seeds, "gpu": gpu_seeds, "virgl": virgl_seeds,
           "net": net_seeds, "input": input_seeds, "fs": fs_seeds, "vsock": vsock_seeds}

def main():
    out = sys.argv[1]
    for target, make in TARGETS.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in make().items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)

main()
