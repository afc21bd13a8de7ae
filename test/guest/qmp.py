#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Send one QMP command to QEMU and print its "return" value as JSON.

Usage: qmp.py SOCKET COMMAND [ARGUMENTS-AS-JSON]
  qmp.py /tmp/x/qmp.sock quit
  qmp.py /tmp/x/qmp.sock screendump '{"filename": "/tmp/x/screen.ppm"}'
Exit status: 0 on success, 1 on a QMP error (printed on stderr), 2 when QEMU could
not be reached in QMP_TIMEOUT seconds (default 10). Events are skipped.
"""
import json
import os
import socket
import sys
import time


def connect(path, deadline):
    # QEMU creates the socket shortly after it starts: retry until the deadline.
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def reply(f):
    """The next non-event message; None if QEMU closed the socket."""
    while True:
        line = f.readline()
        if not line:
            return None
        msg = json.loads(line)
        if "event" not in msg:
            return msg


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    path, command = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) == 4 else {}
    timeout = float(os.environ.get("QMP_TIMEOUT", "10"))
    try:
        s = connect(path, time.monotonic() + timeout)
        s.settimeout(timeout)
        f = s.makefile("rwb")
        f.readline()  # greeting
        for cmd, a in (("qmp_capabilities", {}), (command, args)):
            f.write(json.dumps({"execute": cmd, "arguments": a}).encode() + b"\n")
            f.flush()
            msg = reply(f)
            if msg is None:
                if cmd == "quit":  # QEMU may exit before the reply arrives
                    return 0
                print("qmp: QEMU closed the connection", file=sys.stderr)
                return 1
            if "error" in msg:
                print("qmp: %s: %s" % (cmd, msg["error"].get("desc", msg["error"])),
                      file=sys.stderr)
                return 1
        print(json.dumps(msg.get("return", {})))
        return 0
    except (OSError, ValueError) as e:
        print("qmp: %s: %s" % (path, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
