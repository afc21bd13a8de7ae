# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of t-cli.sh. `cli.py caps TYPE < output`: checks a --print-capabilities
# output. `cli.py CASE...`: runs socket cases, printing PASS/FAIL lines.
# t-sandbox.sh imports it for the front-end side (connect, get_features) and run_cases.
import errno, json, os, select, signal, socket, stat, struct, sys, time

TYPES = ["9p", "balloon", "block", "caif", "console", "crypto", "gpu", "input",
         "net", "rng", "rpmsg", "rproc-serial", "scsi", "vsock", "fs"]
FEATURES = {"block": {"read-only", "blk-file"}, "input": {"evdev-path", "no-grab"},
            "gpu": {"render-node", "virgl"}, "fs": {"migrate-precopy", "separate-options"}}


def check_caps(want_type, text):
    try:
        caps = json.loads(text)
    except ValueError as e:
        return "not JSON: %s" % e
    if not isinstance(caps, dict):
        return "not a JSON object"
    if caps.get("type") not in TYPES:
        return "type %r is not a VHostUserBackendType" % caps.get("type")
    if caps["type"] != want_type:
        return "type %r, expected %r" % (caps["type"], want_type)
    allowed = {"type", "features"} if want_type in FEATURES else {"type"}
    if set(caps) - allowed:
        return "members the schema does not have for %s: %s" % (want_type, sorted(set(caps) - allowed))
    if "features" in caps:
        f = caps["features"]
        if not isinstance(f, list) or not all(isinstance(x, str) for x in f):
            return "features is not a list of strings"
        if set(f) - FEATURES[want_type]:
            return "features not in the schema: %s" % sorted(set(f) - FEATURES[want_type])
        if len(set(f)) != len(f):
            return "features listed twice"
    if text.rstrip("\n") != json.dumps(caps, indent=2):
        return "not pretty-printed with a two-space indent: %r" % text[:200]
    return None


VB = os.environ.get("VHOSTBOX")
TMP = os.environ.get("T")
RNG = os.environ.get("RNG")


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")}
    env.update(extra)
    return env


procs = []


class Proc:
    """A back-end started with fork/exec; fds maps child fd -> our fd."""

    def __init__(self, argv, env=None, fds=None):
        self.log = open(os.path.join(TMP, "log.%d" % len(procs)), "w+")
        self.returncode = None
        env = env or base_env()
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(self.log.fileno(), 1)
                os.dup2(self.log.fileno(), 2)
                for target, src in (fds or {}).items():
                    if target == src:
                        os.set_inheritable(target, True)
                    else:
                        os.dup2(src, target)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid = pid
        procs.append(self)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().strip().replace("\n", " | ")[:300]

    def wait(self, timeout):
        """Exit status (-N: killed by signal N) or None if still running after timeout."""
        end = time.monotonic() + timeout
        while self.returncode is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(st)
            elif time.monotonic() > end:
                break
            else:
                time.sleep(0.0005)
        return self.returncode

    def signal(self, sig=signal.SIGTERM, timeout=5):
        """Sends sig; returns (status or None, seconds until it exited)."""
        if self.returncode is not None:
            raise Fail("had already exited with %d: %s" % (self.returncode, self.output()))
        t0 = time.monotonic()
        os.kill(self.pid, sig)
        rc = self.wait(timeout)
        return rc, time.monotonic() - t0

    def stop(self):
        """SIGTERM; must exit 0."""
        rc, _ = self.signal()
        if rc is None:
            raise Fail("still running 5 s after SIGTERM")
        if rc != 0:
            raise Fail("exit status %d after SIGTERM: %s" % (rc, self.output()))


def kill_all():
    for p in procs:
        if p.returncode is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(5)


n_paths = 0


def sock_path(name):
    global n_paths
    n_paths += 1
    return os.path.join(TMP, "s%d-%s" % (n_paths, name))


def free_fd(start=20):
    fd = start
    while True:
        try:
            os.fstat(fd)
        except OSError:
            return fd
        fd += 1


def wait_socket(path, p, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.wait(0) is not None:
            raise Fail("exited with %d before creating %s: %s" % (p.returncode, path, p.output()))
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    raise Fail("no socket at %s after %d s: %s" % (path, timeout, p.output()))


def connect(path, p=None, timeout=5):
    """Connects, retrying while nobody listens yet."""
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as e:
            s.close()
            if p and p.wait(0) is not None:
                raise Fail("exited with %d: %s" % (p.returncode, p.output()))
            if time.monotonic() > end:
                raise Fail("cannot connect to %s: %s" % (path, e))
            time.sleep(0.005)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = s.recv(n - len(buf))
        except socket.timeout:
            raise Fail("no reply within 5 s")
        if not chunk:
            raise Fail("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def get_features(s):
    """GET_FEATURES (request 1, flags 1, size 0): the reply has flags 0x5, size 8."""
    s.settimeout(5)
    s.sendall(struct.pack("=III", 1, 1, 0))
    req, flags, size = struct.unpack("=III", recv_exact(s, 12))
    if (req, flags, size) != (1, 5, 8):
        raise Fail("GET_FEATURES reply header request=%d flags=%#x size=%d" % (req, flags, size))
    return struct.unpack("=Q", recv_exact(s, 8))[0]


def listener(path):
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(path)
    l.listen(4)
    return l


def mode_case(args, want):
    path = sock_path("mode")
    p = Proc([RNG] + [a.replace("PATH", path) for a in args])
    # The mode that counts is the one once it listens (a chmod may follow the bind).
    connect(path, p).close()
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    p.stop()
    if mode != want:
        raise Fail("socket mode %o, expected %o" % (mode, want))
    return "%o" % mode


def case_mode_default():
    return mode_case(["--socket-path=PATH"], 0o600)


def case_mode_0660():
    return mode_case(["--socket-mode=0660", "--socket-path", "PATH"], 0o660)


def case_mode_space_form():
    return mode_case(["--socket-path", "PATH", "--socket-mode", "0640"], 0o640)


def serve_case(argv_head, args):
    path = sock_path("serve")
    p = Proc(argv_head + [a.replace("PATH", path) for a in args])
    s = connect(path, p)
    get_features(s)
    s.close()
    p.stop()
    if os.path.lexists(path):
        raise Fail("%s still exists after exit" % path)


def case_serve_equals_form():
    serve_case([RNG], ["--socket-path=PATH"])


def case_serve_space_form():
    serve_case([VB, "rng"], ["--socket-path", "PATH"])


def case_reconnect():
    path = sock_path("reconnect")
    p = Proc([RNG, "--socket-path=" + path])
    for _ in range(3):
        s = connect(path, p)
        get_features(s)
        s.close()
    p.stop()


def signal_case(sig, client):
    path = sock_path("signal")
    p = Proc([RNG, "--socket-path=" + path])
    wait_socket(path, p)
    if client:
        s = connect(path, p)
        get_features(s)
    else:
        time.sleep(0.1)
    rc, secs = p.signal(sig)
    ms = secs * 1000
    if rc is None:
        raise Fail("still running 5 s after the signal")
    if rc != 0:
        raise Fail("exit status %d: %s" % (rc, p.output()))
    if os.path.lexists(path):
        raise Fail("socket %s not unlinked" % path)
    if ms > 500:
        raise Fail("exited %.0f ms after the signal (target 100 ms)" % ms)
    return "exit 0 in %.1f ms%s" % (ms, " (over the 100 ms target)" if ms > 100 else "")


def case_sigterm_idle():
    return signal_case(signal.SIGTERM, False)


def case_sigint_idle():
    return signal_case(signal.SIGINT, False)


def case_sigterm_client():
    return signal_case(signal.SIGTERM, True)


def case_sigint_client():
    return signal_case(signal.SIGINT, True)


def case_live_listener_refused():
    path = sock_path("live")
    l = listener(path)
    p = Proc([RNG, "--socket-path=" + path])
    rc = p.wait(5)
    if rc is None:
        raise Fail("still running with another listener on its path")
    if rc == 0:
        raise Fail("exit 0")
    if not p.output():
        raise Fail("exit %d without a message" % rc)
    c = connect(path, timeout=1)
    l.settimeout(2)
    try:
        l.accept()[0].close()
    except socket.timeout:
        raise Fail("the first listener no longer gets connections")
    c.close()
    l.close()
    return "exit %d: %s" % (rc, p.output()[:100])


def case_stale_socket_replaced():
    path = sock_path("stale")
    listener(path).close()   # the file stays, nobody listens
    if not os.path.lexists(path):
        raise Fail("test setup: no stale socket file")
    p = Proc([RNG, "--socket-path=" + path])
    s = connect(path, p)
    get_features(s)
    s.close()
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    p.stop()
    if mode != 0o600:
        raise Fail("replaced socket has mode %o" % mode)


def case_fd_listening():
    path = sock_path("fd")
    l = listener(path)
    n = free_fd()
    os.dup2(l.fileno(), n)
    p = Proc([RNG, "--fd=%d" % n], fds={n: n})
    os.close(n)
    l.close()
    for _ in range(2):   # a listening fd is accepted on again after a disconnect
        s = connect(path, p)
        get_features(s)
        s.close()
    p.stop()
    return "fd %d" % n


def case_fd_connected():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    n = free_fd()
    os.dup2(b.fileno(), n)
    p = Proc([VB, "rng", "--fd", str(n)], fds={n: n})
    os.close(n)
    b.close()
    get_features(a)
    p.stop()
    a.close()
    return "fd %d" % n


def systemd_proc(path, listen_pid=None):
    """Execs the back-end with LISTEN_FDS=1 and the listening socket at fd 3."""
    l = listener(path)
    log = open(os.path.join(TMP, "log.systemd.%d" % len(procs)), "w+")
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            if l.fileno() == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(l.fileno(), 3)
            env = base_env(LISTEN_PID=str(listen_pid or os.getpid()), LISTEN_FDS="1")
            os.execve(RNG, [RNG], env)
        finally:
            os._exit(127)
    l.close()
    p = Proc.__new__(Proc)
    p.pid, p.log, p.returncode = pid, log, None
    procs.append(p)
    return p


def case_systemd_activation():
    path = sock_path("systemd")
    p = systemd_proc(path)
    s = connect(path, p)
    get_features(s)
    s.close()
    p.stop()


def case_systemd_other_pid_ignored():
    path = sock_path("systemd-other")
    p = systemd_proc(path, listen_pid=1)
    rc = p.wait(5)
    if rc is None:
        raise Fail("served sockets meant for pid 1")
    if rc != 2:
        raise Fail("exit %d, expected 2 (no socket to serve): %s" % (rc, p.output()))


def notify_case(addr, env_value):
    d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    d.bind(addr)
    path = sock_path("notify")
    p = Proc([RNG, "--socket-path=" + path], env=base_env(NOTIFY_SOCKET=env_value))
    end = time.monotonic() + 5
    got = []
    while b"READY=1" not in got:
        left = end - time.monotonic()
        r = select.select([d], [], [], max(left, 0))[0]
        if not r:
            raise Fail("no READY=1 within 5 s (got %r): %s" % (got, p.output()))
        got += d.recv(4096).split(b"\n")
    # Ready means ready: the socket takes connections now, without retrying.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
    except OSError as e:
        raise Fail("READY=1 sent before the socket took connections: %s" % e)
    get_features(s)
    s.close()
    p.stop()
    d.close()


def case_notify_ready():
    path = sock_path("notify-sock")
    notify_case(path, path)


def case_notify_ready_abstract():
    name = "vhostbox-t-cli-%d" % os.getpid()
    notify_case("\0" + name, "@" + name)


def run_cases(names, cases, prefix="", cleanup=kill_all):
    """Runs cases["case_" + name] for each name (dashes as underscores), one
    PASS/FAIL/SKIP line each (PASS with the detail it returns), cleanup after each."""
    for name in names:
        fn = cases["case_" + name.replace("-", "_")]
        try:
            detail = fn()
            print("PASS: %s%s%s" % (prefix, name, ": " + detail if detail else ""))
        except Skip as e:
            print("SKIP: %s%s: %s" % (prefix, name, e))
        except Fail as e:
            print("FAIL: %s%s: %s" % (prefix, name, e))
        except Exception as e:
            print("FAIL: %s%s: test error %r" % (prefix, name, e))
        finally:
            cleanup()
        sys.stdout.flush()


def main():
    if sys.argv[1] == "caps":
        why = check_caps(sys.argv[2], sys.stdin.read())
        if why:
            print(why)
            sys.exit(1)
        return
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    run_cases(sys.argv[1:], globals())


if __name__ == "__main__":
    main()
