#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Confinement (proto/sandbox.c, README "Security"): for each personality, once a
# front-end is connected, /proc/PID/status shows Seccomp: 2, NoNewPrivs: 1, no
# capabilities, and every thread's root is empty (sanitizer builds: only the /proc
# LeakSanitizer needs); a forbidden system call made once confined (by the test
# build build[/asan]/test/vhostbox-selftest) kills the process with a line naming
# it; --sandbox=seccomp and none; the modes a device refuses (gpu --virgl, input
# --reconnect-device) and its tap; starting as a user without privileges (setpriv)
# and --user; systemd socket activation, --fd, --rlimit-nofile.
# The cases are driven from python3 (below).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
case $VHOSTBOX in /*) ;; *) VHOSTBOX=$PWD/$VHOSTBOX ;; esac
if [ ! -x "$VHOSTBOX" ]; then
	echo "SKIP: sandbox: $VHOSTBOX is not built"
	exit 0
fi
if ! command -v python3 >/dev/null; then
	echo "SKIP: sandbox: python3 is not installed"
	exit 0
fi
# The test programs built with this binary: build/asan/test for build/asan/vhostbox-asan.
TESTDIR=$(dirname "$VHOSTBOX")/test
[ -x "$TESTDIR/vhostbox-selftest" ] || TESTDIR=$REPO/build/test
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t-sandbox.XXXXXX") || exit 1
chmod 0711 "$tmp" # a user without privileges reaches its own directory inside
trap 'rm -rf "$tmp"' EXIT

export VHOSTBOX TESTDIR T=$tmp PYTHONPATH=$REPO/test
exec python3 - "$@" <<'PYEOF'
import glob, os, pwd, signal, socket, subprocess, sys, time

# The front-end side and the case runner are t-cli.sh's.
from cli import Fail, Skip, base_env as clean_env, connect, get_features, listener, run_cases

VB = os.environ["VHOSTBOX"]
TESTDIR = os.environ["TESTDIR"]
TMP = os.environ["T"]
SELFTEST = os.path.join(TESTDIR, "vhostbox-selftest")
MOCK = os.path.join(TESTDIR, "evdev-mock-run")
ROOT = os.geteuid() == 0
with open(VB, "rb") as f:
    SANITIZED = b"__asan_init" in f.read()
# The namespace root: empty; sanitizer builds keep /proc there for LeakSanitizer.
EMPTY_ROOT = ["proc"] if SANITIZED else []
PERSONALITIES = [l.split()[0] for l in
                 subprocess.run([VB, "--list"], capture_output=True, text=True).stdout.splitlines() if l]


n_files = 0


def tmp_path(name):
    global n_files
    n_files += 1
    return os.path.join(TMP, "%d-%s" % (n_files, name))


procs = []


class Proc:
    """A back-end (or a launcher that becomes it, or a parent of it: evdev-mock-run)."""

    def __init__(self, argv, env=None, fds=(), stdin=subprocess.DEVNULL, child=False):
        self.logpath = tmp_path("log")
        self.log = open(self.logpath, "w+")
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=self.log, stderr=self.log,
                                  env=env or clean_env(), pass_fds=fds, start_new_session=True)
        self.child = child
        procs.append(self)

    @property
    def pid(self):
        """The back-end's pid: the process itself, or evdev-mock-run's one child."""
        if not self.child:
            return self.p.pid
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                with open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)) as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                pass
            time.sleep(0.01)
        raise Fail("evdev-mock-run started no back-end: %s" % self.output())

    @property
    def returncode(self):
        return self.p.returncode

    def output(self):
        self.log.flush()
        with open(self.logpath) as f:
            return f.read()

    def short(self):
        return self.output().strip().replace("\n", " | ")[-400:]

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        """Ends it (SIGTERM; evdev-mock-run: end of stdin); it must exit 0."""
        if self.p.poll() is not None:
            raise Fail("had already exited with %d: %s" % (self.p.returncode, self.short()))
        if self.child:
            self.p.stdin.close()
        else:
            self.p.send_signal(signal.SIGTERM)
        rc = self.wait(5)
        if rc != 0:
            raise Fail("exit status %s after SIGTERM: %s" % (rc, self.short()))


def kill_all():
    for p in procs:
        if p.p.poll() is None:
            try:
                os.killpg(p.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.p.wait()
    procs.clear()


def status(pid, task=None):
    path = "/proc/%d/task/%d/status" % (pid, task) if task else "/proc/%d/status" % pid
    with open(path) as f:
        return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)


def tasks(pid):
    return [int(t) for t in os.listdir("/proc/%d/task" % pid)]


def same_file(a, b):
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


# What fs keeps as root to act as the guest's users: chown, dac_override, fowner, fsetid, setgid, setuid.
FS_CAPS = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 6 | 1 << 7


def check_confined(pid, root="empty", mode="namespace", p=None, caps=0):
    """Every thread: Seccomp 2, NoNewPrivs 1, no capabilities but caps (the bounding
    set too then); the root as the mode makes it ("empty", "host" or a directory)."""
    if p and ("sandbox: %s" % mode) not in p.output():
        raise Fail("no 'sandbox: %s' line: %s" % (mode, p.short()))
    for t in tasks(pid):
        st = status(pid, t)
        got = {k: st[k].strip() for k in ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "CapBnd")}
        if got["Seccomp"] != "2" or got["NoNewPrivs"] != "1" or int(got["CapEff"], 16) != caps or \
           int(got["CapPrm"], 16) != caps or (caps and int(got["CapBnd"], 16) != caps):
            raise Fail("thread %d: %s" % (t, got))
        tr = "/proc/%d/task/%d/root" % (pid, t)
        if root == "empty":
            listing = sorted(os.listdir(tr))
            if listing != EMPTY_ROOT:
                raise Fail("thread %d's root holds %s" % (t, listing))
            if same_file(tr, "/"):
                raise Fail("thread %d's root is the host's" % t)
        elif root == "host" and not same_file(tr, "/"):
            raise Fail("thread %d's root is not the host's" % t)
        elif root not in ("empty", "host") and not same_file(tr, root):
            raise Fail("thread %d's root is not %s" % (t, root))
    return "Seccomp 2, NoNewPrivs 1, CapEff %x%s on %d thread(s), root %s" % (
        caps, " = CapBnd" if caps else "", len(tasks(pid)),
        "[%s]" % " ".join(EMPTY_ROOT) if root == "empty" else root)


def ns_of(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def image(owner=None):
    path = tmp_path("disk.img")
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def device_args(pers, owner=None):
    if pers == "blk":
        return ["--blk-file=" + image(owner)]
    if pers == "scsi":
        return ["--lun=" + image(owner)]
    if pers == "input":
        return ["--evdev-path=/dev/input/event0"]
    if pers == "vsock":
        return ["--uds-path=" + tmp_path("vsock.uds")]
    if pers == "fs":
        d = tmp_path("share")
        os.mkdir(d)
        if owner is not None:
            os.chown(d, owner.pw_uid, owner.pw_gid)
        return ["--shared-dir=" + d]
    return []


def start(pers, extra=(), path=None, binary=None, env=None, prefix=(), owner=None):
    """$VHOSTBOX PERSONALITY --socket-path=PATH DEVICE-ARGS EXTRA (input: under evdev-mock-run)."""
    path = path or tmp_path(pers + ".sock")
    argv = list(prefix) + [binary or VB, pers, "--socket-path=" + path] + device_args(pers, owner) + list(extra)
    if pers == "input":
        if not os.access(MOCK, os.X_OK):
            raise Skip("no %s (built by make tests)" % MOCK)
        p = Proc([MOCK, "--device", "0=keyboard", "--"] + argv, env=env, stdin=subprocess.PIPE, child=True)
    else:
        p = Proc(argv, env=env)
    return p, path


def serve_once(p, path):
    """Connects, is answered (so start-up and confinement are done), stays connected."""
    s = connect(path, p)
    get_features(s)
    return s


def end(p, path, s=None):
    if s:
        s.close()
    p.stop()
    if os.path.lexists(path):
        raise Fail("socket %s not unlinked" % path)


def need(pers):
    if pers not in PERSONALITIES:
        raise Skip("%s was built without %s" % (VB, pers))


def serve_confined(pers, extra=(), **want):
    """Starts pers with extra, is served once, checks it is confined as want says
    (check_confined's root, mode, caps) and ends it; returns check_confined's detail."""
    p, path = start(pers, extra)
    s = serve_once(p, path)
    detail = check_confined(p.pid, p=p, **want)
    end(p, path, s)
    return detail


# ---- the default, per personality ------------------------------------------------

def confined_case(pers):
    need(pers)
    p, path = start(pers)
    s = serve_once(p, path)
    pid = p.pid
    detail = check_confined(pid, p=p, caps=FS_CAPS if pers == "fs" and ROOT else 0)
    if ns_of(pid, "mnt") == ns_of(os.getpid(), "mnt"):
        raise Fail("in the host's mount namespace")
    if ns_of(pid, "net") == ns_of(os.getpid(), "net"):
        raise Fail("in the host's network namespace")
    get_features(s)
    end(p, path, s)
    return detail


def case_confined_rng(): return confined_case("rng")
def case_confined_blk(): return confined_case("blk")
def case_confined_net(): return confined_case("net")
def case_confined_gpu(): return confined_case("gpu")
def case_confined_input(): return confined_case("input")
def case_confined_scsi(): return confined_case("scsi")
def case_confined_fs(): return confined_case("fs")


def case_confined_blk_threads():
    """Worker threads start after confinement: they share the empty root."""
    need("blk")
    p, path = start("blk", ["--num-queues=4", "--threads=3"])
    s = serve_once(p, path)
    if len(tasks(p.pid)) < 3:
        raise Fail("%d threads, expected 3" % len(tasks(p.pid)))
    detail = check_confined(p.pid, p=p)
    end(p, path, s)
    return detail


def fs_mode_case(mode, root):
    """fs as root keeps what taking the guest's ids needs in every confining mode, nothing
    more, and no supplementary group (it would count for every guest user)."""
    need("fs")
    if not ROOT:
        raise Skip("needs root")
    p, path = start("fs", ["--sandbox=" + mode])
    s = serve_once(p, path)
    if root is None:
        with open("/proc/%d/cmdline" % p.pid) as f:
            root = [a for a in f.read().split("\0") if a.startswith("--shared-dir=")][0].split("=", 1)[1]
    detail = check_confined(p.pid, root=root, mode=mode, p=p, caps=FS_CAPS)
    if status(p.pid)["Groups"].split():
        raise Fail("supplementary groups %s" % status(p.pid)["Groups"].strip())
    end(p, path, s)
    return detail + ", no supplementary group"


def case_fs_caps_namespace(): return fs_mode_case("namespace", "empty")
def case_fs_caps_seccomp(): return fs_mode_case("seccomp", "host")
def case_fs_caps_chroot(): return fs_mode_case("chroot", None)  # the shared directory


def case_fs_uid_map_as_root():
    """--uid-map maps the user namespace of an unprivileged start: refused for root (as virtiofsd)."""
    need("fs")
    if not ROOT:
        raise Skip("needs root")
    return usage_case([VB, "fs", "--shared-dir=" + TMP, "--uid-map=:0:100000:65536:",
                       "--socket-path=" + tmp_path("x")], "--uid-map and --gid-map")


def case_fs_uid_map_not_namespace():
    """--gid-map with another mode than namespace: refused."""
    need("fs")
    argv = [VB, "fs", "--shared-dir=" + TMP, "--gid-map=:0:100000:65536:", "--sandbox=seccomp",
            "--socket-path=" + tmp_path("x")]
    if ROOT:
        u = nobody()
        argv = ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid, "--clear-groups"] + argv
    return usage_case(argv, "--uid-map and --gid-map")


# ---- a forbidden call kills ----------------------------------------------------------

def kill_case(pers, call, extra=()):
    need(pers)
    if not os.access(SELFTEST, os.X_OK):
        raise Skip("no %s (built by make tests)" % SELFTEST)
    p, path = start(pers, extra, binary=SELFTEST, env=clean_env(VU_SANDBOX_SELFTEST_CALL=call))
    rc = p.wait(10)
    if rc is None:
        raise Fail("still running after calling %s" % call)
    out = p.output()
    if pers == "input":
        rc = 128 + signal.SIGSYS if "signal 31" in out or rc == 128 + signal.SIGSYS else rc
    if rc not in (-signal.SIGSYS, 128 + signal.SIGSYS):
        raise Fail("exit status %d, not killed by SIGSYS: %s" % (rc, p.short()))
    want = "(%s) is not allowed: killed" % call
    line = [l for l in out.splitlines() if want in l]
    if not line:
        raise Fail("no line saying '%s': %s" % (want, p.short()))
    return line[0]


def case_kill_rng(): return kill_case("rng", "socket")
def case_kill_rng_seccomp(): return kill_case("rng", "execve", ["--sandbox=seccomp"])
def case_kill_blk(): return kill_case("blk", "socket")
def case_kill_net(): return kill_case("net", "execve")
def case_kill_gpu(): return kill_case("gpu", "socket")
def case_kill_input(): return kill_case("input", "socket")
def case_kill_scsi(): return kill_case("scsi", "socket")


# ---- the other modes -------------------------------------------------------------

def case_mode_seccomp():
    need("rng")
    return serve_confined("rng", ["--sandbox=seccomp"], root="host", mode="seccomp")


def case_mode_none():
    need("rng")
    p, path = start("rng", ["--sandbox=none"])
    s = serve_once(p, path)
    st = status(p.pid)
    if st["Seccomp"].strip() != "0" or st["NoNewPrivs"].strip() != status(os.getpid())["NoNewPrivs"].strip():
        raise Fail("Seccomp %s, NoNewPrivs %s" % (st["Seccomp"].strip(), st["NoNewPrivs"].strip()))
    if not same_file("/proc/%d/root" % p.pid, "/"):
        raise Fail("its root is not the host's")
    if "sandbox: none" not in p.output():
        raise Fail("no 'sandbox: none' line: %s" % p.short())
    get_features(s)
    end(p, path, s)
    return "Seccomp 0, the host's root"


def usage_case(argv, want):
    r = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), timeout=10)
    if r.returncode != 2:
        raise Fail("exit %d, expected 2: %s" % (r.returncode, r.stderr.strip()))
    if want not in r.stderr or len(r.stderr.strip().splitlines()) != 1:
        raise Fail("stderr is not one line saying '%s': %r" % (want, r.stderr))
    return r.stderr.strip()


def seccomp_default_case(pers, extra, usage_args, why):
    """pers with extra confines with seccomp by default; --sandbox=namespace is refused
    (usage_args: the device's own options for that refusal), stderr naming why."""
    need(pers)
    usage_case([VB, pers] + usage_args + extra + ["--sandbox=namespace", "--socket-path=" + tmp_path("x")], why)
    return serve_confined(pers, extra, root="host", mode="seccomp")


def case_mode_bad():
    return usage_case([VB, "rng", "--sandbox=strict", "--socket-path=" + tmp_path("x")], "--sandbox is one of")


def case_user_unknown():
    return usage_case([VB, "rng", "--user=no-such-user-here", "--socket-path=" + tmp_path("x")], "no such user")


def capability(pers, feature):
    r = subprocess.run([VB, pers, "--print-capabilities"], capture_output=True, text=True, env=clean_env())
    return ('"%s"' % feature) in r.stdout


def case_vsock_seccomp():
    """vsock dials host listeners by path at any time: seccomp by default, namespace refused."""
    detail = seccomp_default_case("vsock", [], ["--uds-path=" + tmp_path("v.uds")], "uds-path")
    left = glob.glob(os.path.join(TMP, "*-vsock.uds"))  # device_args' --uds-path
    if left:
        raise Fail("the host-side socket file is left behind: %s" % left)
    return detail


def case_virgl_seccomp():
    """--virgl: seccomp by default (with its own wider list); namespace refused."""
    need("gpu")
    if not capability("gpu", "virgl"):
        raise Skip("--print-capabilities does not list virgl here")
    return seccomp_default_case("gpu", ["--virgl"], [], "--virgl")


def case_reconnect_seccomp():
    """--reconnect-device: seccomp by default (it opens the path again); namespace refused."""
    return seccomp_default_case("input", ["--reconnect-device"], ["--evdev-path=/dev/null"], "--reconnect-device")


def case_net_tap_host_netns():
    """With a tap the switch keeps the host's network namespace; the rest as always."""
    need("net")
    if not ROOT or not os.path.exists("/dev/net/tun"):
        raise Skip("needs root and /dev/net/tun")
    p, path = start("net", ["--tap=vbxsb%d" % (os.getpid() % 100000)])
    s = serve_once(p, path)
    detail = check_confined(p.pid, p=p)
    if ns_of(p.pid, "net") != ns_of(os.getpid(), "net"):
        raise Fail("not in the host's network namespace")
    end(p, path, s)
    return detail + ", the host's network namespace"


# ---- without privileges ------------------------------------------------------------

def nobody():
    if not ROOT:
        return pwd.getpwuid(os.getuid())
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise Skip("no user nobody")


def unprivileged_case(pers):
    """Started as a user without privileges: namespaces through a user namespace."""
    need(pers)
    u = nobody()
    prefix = []
    if ROOT:
        if not subprocess.run(["sh", "-c", "command -v setpriv"], capture_output=True).returncode == 0:
            raise Skip("no setpriv")
        prefix = ["setpriv", "--reuid=%d" % u.pw_uid, "--regid=%d" % u.pw_gid, "--clear-groups"]
    d = tmp_path("home")
    os.mkdir(d)
    os.chown(d, u.pw_uid, u.pw_gid)
    p, path = start(pers, path=os.path.join(d, pers + ".sock"), prefix=prefix, owner=u)
    s = serve_once(p, path)
    st = status(p.pid)
    if st["Uid"].split()[0] != str(u.pw_uid):
        raise Fail("runs as uid %s" % st["Uid"])
    detail = check_confined(p.pid, p=p)
    end(p, path, s)
    return "as %s: %s" % (u.pw_name, detail)


def case_unprivileged_rng(): return unprivileged_case("rng")
def case_unprivileged_blk(): return unprivileged_case("blk")
def case_unprivileged_net(): return unprivileged_case("net")
def case_unprivileged_gpu(): return unprivileged_case("gpu")
def case_unprivileged_scsi(): return unprivileged_case("scsi")
def case_unprivileged_fs(): return unprivileged_case("fs")  # its own ids only: no capability kept


def user_option_case(pers):
    """Started as root with --user: set up as root (socket, image), then serves as the user."""
    need(pers)
    if not ROOT:
        raise Skip("needs root")
    u = nobody()
    p, path = start(pers, ["--user=" + u.pw_name])
    s = serve_once(p, path)
    st = status(p.pid)
    if st["Uid"].split() != [str(u.pw_uid)] * 4 or st["Gid"].split() != [str(u.pw_gid)] * 4:
        raise Fail("Uid %s, Gid %s" % (st["Uid"].strip(), st["Gid"].strip()))
    if st["Groups"].split() not in ([], [str(u.pw_gid)]):
        raise Fail("supplementary groups %s" % st["Groups"].strip())
    detail = check_confined(p.pid, p=p)
    end(p, path, s)  # the root-owned socket file is unlinked all the same
    return "uid %d: %s" % (u.pw_uid, detail)


def case_user_rng(): return user_option_case("rng")
def case_user_blk(): return user_option_case("blk")
def case_user_net(): return user_option_case("net")
def case_user_gpu(): return user_option_case("gpu")
def case_user_scsi(): return user_option_case("scsi")


# ---- where the socket comes from --------------------------------------------------

def serve_listening(p, path):
    """p was given a listening socket at path: it serves a connection, confined, then
    accepts on that socket again and serves another; ends p. check_confined's detail."""
    s = connect(path, p)
    get_features(s)
    detail = check_confined(p.pid, p=p)
    s.close()
    s = connect(path, p)
    get_features(s)
    s.close()
    p.stop()
    return detail


def case_systemd_socket_activate():
    need("rng")
    tool = subprocess.run(["sh", "-c", "command -v systemd-socket-activate"], capture_output=True, text=True)
    if tool.returncode:
        raise Skip("no systemd-socket-activate (Debian: systemd)")
    path = tmp_path("activate.sock")
    # It listens, and on the first connection execs the back-end with LISTEN_FDS=1 in its place.
    return serve_listening(Proc([tool.stdout.strip(), "-l", path, VB, "rng"]), path)


def case_fd_listening():
    need("rng")
    path = tmp_path("fd.sock")
    l = listener(path)
    p = Proc([VB, "rng", "--fd=%d" % l.fileno()], fds=(l.fileno(),))
    l.close()
    return serve_listening(p, path)


def case_fd_connected():
    need("rng")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    p = Proc([VB, "rng", "--fd=%d" % b.fileno()], fds=(b.fileno(),))
    b.close()
    a.settimeout(5)
    get_features(a)
    detail = check_confined(p.pid, p=p)
    a.close()
    rc = p.wait(5)  # served the one connection it was given
    if rc != 0:
        raise Fail("exit %s after its connection closed: %s" % (rc, p.short()))
    return detail


def case_rlimit_nofile():
    need("rng")
    p, path = start("rng", ["--rlimit-nofile=64"])
    s = serve_once(p, path)
    with open("/proc/%d/limits" % p.pid) as f:
        line = [l for l in f if l.startswith("Max open files")][0].split()
    if line[3:5] != ["64", "64"]:
        raise Fail("limits: %s" % " ".join(line))
    end(p, path, s)
    return " ".join(line)


names = sys.argv[1:] or [n[5:].replace("_", "-") for n in globals() if n.startswith("case_")]
run_cases(names, globals(), "sandbox-", kill_all)
PYEOF
