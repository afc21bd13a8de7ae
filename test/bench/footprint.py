#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Footprint of vhostbox builds (test/bench/footprint.sh runs it for the dynamic and
the static build): for each BINARY given,

  caps      wall time of `BINARY NAME --print-capabilities`, spawn to exit, per
            personality (median of ROUNDS, and the fastest: the machine is shared);
  ready     start to READY=1 on NOTIFY_SOCKET (the socket is listening and the
            process confined), one device, no front-end (median);
  rss, pss, private  VmRSS, Pss and private memory (Private_Clean + Private_Dirty)
            of that idle process at READY (KiB): RSS counts every page of a shared
            library it touched, though other processes share them;
  +device   what each further idle device of the same personality adds to one
            process's RSS: (RSS with 1 + EXTRA devices - RSS with 1) / EXTRA (KiB).

A baseline row times spawning /bin/true the same way (the harness's own cost).
input needs an evdev device (none here without umockdev, which a static binary
cannot use), so it is left out; gpu's dynamic capabilities probe virgl (start it).
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
EXTRA = 8
tmp = tempfile.mkdtemp(prefix="vhostbox-footprint.")


def spawn_wait(argv):
    """Milliseconds from spawn to exit (stdout and stderr to /dev/null)."""
    null = os.open(os.devnull, os.O_WRONLY)
    t = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    os.waitpid(pid, 0)
    ms = (time.perf_counter() - t) * 1000
    os.close(null)
    return ms


def device_args(name, i):
    """Arguments of device i (each its own socket, image, host socket)."""
    a = ["--socket-path=%s/%s%d.sock" % (tmp, name, i)]
    if name == "blk":
        img = "%s/disk%d.img" % (tmp, i)
        if not os.path.exists(img):
            with open(img, "wb") as f:
                f.truncate(1 << 20)
        a.append("--blk-file=" + img)
    elif name == "vsock":
        a += ["--guest-cid=%d" % (3 + i), "--uds-path=%s/vsock%d.uds" % (tmp, i)]
    return a


def kib(pid, path, key):
    with open("/proc/%d/%s" % (pid, path)) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def start_ready(binary, name, ndev):
    """(ms to READY=1, RSS, Pss, private KiB) of `binary name` serving ndev idle devices."""
    notify = "%s/notify.sock" % tmp
    if os.path.exists(notify):
        os.unlink(notify)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(notify)
    s.settimeout(10)
    argv = [binary, name]
    for i in range(ndev):
        argv += device_args(name, i)
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    null = os.open(os.devnull, os.O_WRONLY)
    t = time.perf_counter()
    pid = os.posix_spawn(binary, argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, null, 2)])
    try:
        while b"READY=1" not in s.recv(256):
            pass
        ms = (time.perf_counter() - t) * 1000
        time.sleep(0.05)  # anything it does right after READY
        private = kib(pid, "smaps_rollup", "Private_Clean") + kib(pid, "smaps_rollup", "Private_Dirty")
        return ms, kib(pid, "status", "VmRSS"), kib(pid, "smaps_rollup", "Pss"), private
    finally:
        os.kill(pid, 15)
        os.waitpid(pid, 0)
        os.close(null)
        s.close()


def med(xs):
    return statistics.median(xs)


def main():
    print("%-8s %-6s | %8s %8s %9s %8s %8s %8s %9s" % ("build", "name", "caps-ms", "caps-min", "ready-ms", "rss-KiB",
                                                         "pss-KiB", "priv-KiB", "+dev-KiB"))
    base = [spawn_wait(["/bin/true"]) for _ in range(ROUNDS)]
    print("%-8s %-6s | %8.2f %8.2f %9s %8s %8s %8s %9s" % ("-", "true", med(base), min(base), "-", "-", "-", "-", "-"))
    for arg in sys.argv[1:]:
        binary, label = arg.split(",")
        names = [l.split()[0] for l in subprocess.run([binary, "--list"], capture_output=True, text=True).stdout.splitlines()]
        for name in names:
            caps = [spawn_wait([binary, name, "--print-capabilities"]) for _ in range(ROUNDS)]
            if name == "input":
                print("%-8s %-6s | %8.2f %8.2f %9s %8s %8s %8s %9s" % (label, name, med(caps), min(caps), "-", "-", "-", "-",
                                                                       "-"))
                continue
            runs = [start_ready(binary, name, 1) for _ in range(ROUNDS)]
            ready = med([r[0] for r in runs])
            rss = med([r[1] for r in runs])
            pss = med([r[2] for r in runs])
            private = med([r[3] for r in runs])
            more = "-"
            if name in ("rng", "blk", "net", "vsock"):
                many = med([start_ready(binary, name, 1 + EXTRA)[1] for _ in range(ROUNDS)])
                more = "%.1f" % ((many - rss) / EXTRA)
            print("%-8s %-6s | %8.2f %8.2f %9.2f %8d %8d %8d %9s" % (label, name, med(caps), min(caps), ready, rss, pss,
                                                                   private, more))
            sys.stdout.flush()


try:
    main()
finally:
    subprocess.run(["rm", "-rf", tmp])
