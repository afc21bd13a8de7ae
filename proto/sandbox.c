/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Confinement (--sandbox, --user, --group, --rlimit-nofile), applied once by
 * proto/backend.c after start-up and before the first front-end message:
 *
 *   1. the socket files this process created are handed to a helper process
 *      (forked here, before anything else) that unlinks them when we end: the
 *      back-end itself can no longer reach the file system;
 *   2. chroot mode (devices that name a directory: fs's shared one): chroot(2)
 *      into it, nothing more (it needs root, as the chroot call does);
 *      namespace mode: new mount, ipc and uts namespaces, a new network namespace
 *      unless a device keeps the host's (a tap), a user namespace when not root
 *      (mapping our own ids, or a device's --uid-map/--gid-map through
 *      newuidmap/newgidmap, and then we are its root);
 *      the root becomes an empty read-only tmpfs (pivot_root) and the old one is
 *      detached. The process must be single-threaded here (a mount namespace and
 *      a root are per thread): proto's worker threads start after confinement;
 *   3. --user/--group: the ids change (supplementary groups: only the group);
 *   4. seccomp, chroot and namespace modes: every capability is dropped (bounding,
 *      ambient, permitted, effective, inheritable) but the ones a device keeps
 *      to act as its clients' users where the process may (root, of its user
 *      namespace too: fs's), no_new_privs is set, and a
 *      seccomp allowlist is loaded on every thread (TSYNC): proto's calls, the
 *      devices' declared ones and, in sanitizer builds, the sanitizer runtime's.
 *      A call outside it is trapped: one line on stderr names it, then the
 *      process dies of SIGSYS.
 *
 * Builds with -DVU_SANDBOX_SELFTEST (test/test.mk: build/test/vhostbox-selftest,
 * never installed) make the call named by $VU_SANDBOX_SELFTEST_CALL right after
 * confinement, so a test can watch a violation kill the process. Builds with
 * -DVU_SANDBOX_LOG only log violations to the kernel (audit, dmesg) and let the
 * calls through: for finding what a new device calls.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/libc-compat.h"
#include "proto/log.h"
#include "proto/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define VU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VU_SANITIZED 1
#endif
#endif
#ifdef VU_SANITIZED
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

static const char *const mode_names[] = { "none", "seccomp", "chroot", "namespace" };

const char *vu_sandbox_mode_name(int mode)
{
	return mode >= 0 && mode <= VU_SANDBOX_NAMESPACE ? mode_names[mode] : "?";
}

/* ---- options ------------------------------------------------------------------ */

const char *vu_sandbox_set_mode(struct vu_sandbox *sb, const char *arg)
{
	for (int m = 0; m <= VU_SANDBOX_NAMESPACE; m++)
		if (!strcmp(arg, mode_names[m])) {
			sb->mode = m;
			sb->mode_asked = true;
			return NULL;
		}
	return "--sandbox is one of namespace, chroot, seccomp, none";
}

static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return *s >= '0' && *s <= '9' && !*end && !errno && *out < (uid_t)-1;
}

/* Names are looked up now, while /etc and NSS are still reachable. */
const char *vu_sandbox_set_user(struct vu_sandbox *sb, const char *arg)
{
	unsigned long id;
	struct passwd *pw = parse_id(arg, &id) ? getpwuid((uid_t)id) : getpwnam(arg);

	if (pw) {
		sb->uid = pw->pw_uid;
		if (!sb->set_group)
			sb->gid = pw->pw_gid;
		sb->gid_known = true;
	} else if (parse_id(arg, &id)) {
		sb->uid = (uid_t)id; /* a number without a passwd entry: --group says the group */
	} else {
		return "--user: no such user";
	}
	sb->set_user = true;
	return NULL;
}

const char *vu_sandbox_set_group(struct vu_sandbox *sb, const char *arg)
{
	unsigned long id;
	struct group *gr = parse_id(arg, &id) ? NULL : getgrnam(arg);

	if (!gr && !parse_id(arg, &id))
		return "--group: no such group";
	sb->gid = gr ? gr->gr_gid : (gid_t)id;
	sb->set_group = true;
	sb->gid_known = true;
	return NULL;
}

const char *vu_sandbox_set_nofile(struct vu_sandbox *sb, const char *arg)
{
	unsigned long id;

	if (!parse_id(arg, &id) || id < 16)
		return "--rlimit-nofile needs a number of files, at least 16";
	sb->nofile = id;
	return NULL;
}

/* Whether a device gave --uid-map/--gid-map: the user namespace is mapped with them. */
static bool id_maps(const struct vu_sandbox *sb)
{
	return sb->n_uid_map || sb->n_gid_map;
}

/* ---- the plan ----------------------------------------------------------------- */

int vu_sandbox_plan(struct vu_sandbox *sb, struct vu_dev *const *devs, unsigned n)
{
	sb->strictest = VU_SANDBOX_NAMESPACE;
	sb->nlists = 0;
	sb->host_net = false;
	sb->chroot_dir = NULL;
	sb->caps = 0;
	sb->n_uid_map = sb->n_gid_map = 0;
	const char *no_chroot = NULL;   /* why chroot mode cannot be */
	for (unsigned i = 0; i < n; i++) {
		const struct vu_device_type *t = devs[i]->type;
		struct vu_sandbox_needs needs = { .strictest = VU_SANDBOX_NAMESPACE };

		if (t->sandbox)
			t->sandbox(devs[i], &needs);
		if ((int)needs.strictest < sb->strictest) {
			sb->strictest = needs.strictest;
			sb->why = needs.why;
		}
		sb->host_net |= needs.host_net;
		sb->caps |= needs.caps;
		if (needs.n_uid_map || needs.n_gid_map) {
			if (id_maps(sb)) {
				vu_err("--uid-map, --gid-map: one user namespace holds every device: give them once");
				return -1;
			}
			sb->uid_map = needs.uid_map;
			sb->n_uid_map = needs.n_uid_map;
			sb->gid_map = needs.gid_map;
			sb->n_gid_map = needs.n_gid_map;
		}
		if (!needs.chroot_dir)
			no_chroot = "the device has no directory to be confined to";
		else if (n > 1)
			no_chroot = "one process serves several devices, chroot confines it to one directory";
		else
			sb->chroot_dir = needs.chroot_dir;
		const struct vu_syscall *add[2] = { t->syscalls, needs.syscalls };
		for (unsigned k = 0; k < 2; k++) {
			bool have = !add[k];
			for (unsigned l = 0; l < sb->nlists && !have; l++)
				have = sb->lists[l] == add[k];
			if (!have && sb->nlists < sizeof(sb->lists) / sizeof(sb->lists[0]))
				sb->lists[sb->nlists++] = add[k];
		}
	}
	if (sb->set_user && !sb->gid_known) {
		vu_err("--user=%u has no passwd entry: --group says its group", (unsigned)sb->uid);
		return -1;
	}
	if (sb->mode == VU_SANDBOX_CHROOT && no_chroot && sb->strictest >= VU_SANDBOX_CHROOT) {
		vu_err("--sandbox=chroot is not possible here: %s", no_chroot);
		return -1;
	}
	if (sb->mode > sb->strictest) {
		vu_err("--sandbox=%s is not possible here: %s (--sandbox=%s is)", mode_names[sb->mode],
		       sb->why ? sb->why : "a device does not allow it", mode_names[sb->strictest]);
		return -1;
	}
	if (sb->mode < 0)
		sb->mode = sb->strictest;
	/* As virtiofsd: root needs no user namespace, the other modes make none. */
	if (id_maps(sb) && (geteuid() == 0 || sb->mode != VU_SANDBOX_NAMESPACE)) {
		vu_err("--uid-map and --gid-map map the user namespace of --sandbox=namespace, started without privileges");
		return -1;
	}
	return 0;
}

/* ---- 1. the socket files: a helper unlinks them at the end -------------------- */

#define MAX_KEPT 64

static pid_t keeper = -1;
static int keeper_fd = -1;

/*
 * The helper's own allowlist: it waits for one byte, unlinks, and exits. Anything
 * else fails (EPERM) rather than kills: at worst a socket file stays behind.
 */
static void confine_keeper(void)
{
	static const char *const calls[] = { "read", "lstat", "newfstatat", "statx", "unlink", "unlinkat",
					     "exit_group", "exit", "rt_sigprocmask", "rt_sigreturn", NULL };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));

	if (!ctx)
		_exit(1);
	for (const char *const *c = calls; *c; c++) {
		int nr = seccomp_syscall_resolve_name(*c);
		if (nr != __NR_SCMP_ERROR)
			seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(ctx) < 0)
		_exit(1);
}

static int start_keeper(const char *const *paths, unsigned n)
{
	struct stat st[MAX_KEPT];
	int p[2];

	if (n == 0)
		return 0;
	if (n > MAX_KEPT)
		n = MAX_KEPT;
	for (unsigned i = 0; i < n; i++)
		if (lstat(paths[i], &st[i]) < 0)
			st[i].st_ino = 0;
	if (pipe2(p, O_CLOEXEC) < 0) {
		vu_err("sandbox: pipe: %s", strerror(errno));
		return -1;
	}
	pid_t parent = getpid();
	keeper = fork();
	if (keeper < 0) {
		vu_err("sandbox: cannot start the socket-file helper: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (keeper == 0) {
		char c;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		prctl(PR_SET_NAME, "vhostbox-unlink");
		/* Nothing of the back-end's stays open here: guest-facing fds, images, taps. */
		if (p[0] > 3)
			close_range(3, p[0] - 1, 0);
		close_range(p[0] + 1, ~0u, 0);
		confine_keeper();
		/* One byte: the back-end ended cleanly. End of file without it: it died. */
		if (read(p[0], &c, 1) == 1)
			for (unsigned i = 0; i < n; i++) {
				struct stat now;
				/* Only the file we created: a back-end started since may own the path. */
				if (st[i].st_ino && lstat(paths[i], &now) == 0 && now.st_ino == st[i].st_ino &&
				    now.st_dev == st[i].st_dev)
					unlink(paths[i]);
			}
		syscall(SYS_exit_group, 0); /* not _exit: a sanitizer's would do more */
	}
	close(p[0]);
	keeper_fd = p[1];
	return 0;
}

void vu_sandbox_exit(void)
{
	if (keeper < 0)
		return;
	if (write(keeper_fd, "u", 1) != 1)
		vu_warn("sandbox: cannot reach the socket-file helper");
	close(keeper_fd);
	while (waitpid(keeper, NULL, 0) < 0 && errno == EINTR)
		;
	keeper = -1;
	keeper_fd = -1;
}

/* ---- 2. namespaces and an empty root ----------------------------------------- */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
	int e = errno;

	if (fd >= 0)
		close(fd);
	errno = e;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/*
 * The kernel's count. Where /proc is not mounted (an empty root, as the static
 * build runs in an appliance), 1: proto holds its own threads until the process
 * is confined (vu_loop_hold_threads), and the one library that starts threads
 * before that, Mesa (gpu --virgl), is never confined with namespaces.
 */
static int threads_of_this_process(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	int n = -1;

	if (!f && errno == ENOENT && access("/proc", F_OK) < 0)
		return 1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

/* newuidmap or newgidmap PID INSIDE OUTSIDE COUNT...: 0 when it exits 0 (its errors go to stderr). */
static int run_map_tool(const char *tool, pid_t pid, const struct vu_id_map *m, unsigned n)
{
	char *argv[3 + 3 * VU_ID_MAP_MAX];
	char nums[1 + 3 * VU_ID_MAP_MAX][12];
	unsigned k = 0;

	argv[k] = (char *)tool;
	snprintf(nums[k], sizeof(nums[k]), "%d", (int)pid);
	argv[++k] = nums[0];
	for (unsigned i = 0; i < n; i++) {
		const uint32_t v[3] = { m[i].inside, m[i].outside, m[i].count };
		for (unsigned j = 0; j < 3; j++) {
			snprintf(nums[1 + 3 * i + j], sizeof(nums[0]), "%u", v[j]);
			argv[++k] = nums[1 + 3 * i + j];
		}
	}
	argv[++k] = NULL;
	pid_t child = fork();
	if (child == 0) {
		close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
		execvp(tool, argv);
		fprintf(stderr, "%s: error: sandbox: %s: %s\n", vu_log_name(), tool, strerror(errno));
		_exit(127);
	}
	int st;
	return child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* /proc/PID/KIND_map ("uid" or "gid"): the maps through TOOL, or the one line of id itself. */
static int write_id_map(pid_t pid, const char *kind, const char *tool, const struct vu_id_map *m, unsigned n,
			unsigned id)
{
	char path[64], line[64];

	if (n)
		return run_map_tool(tool, pid, m, n);
	snprintf(path, sizeof(path), "/proc/%d/%s_map", (int)pid, kind);
	snprintf(line, sizeof(line), "%u %u 1\n", id, id);
	return write_file(path, line);
}

/*
 * The user namespace of process pid gets its maps: --uid-map/--gid-map's, else our
 * own uid and gid alone (and no setgroups, which a gid map of our own needs). 0 or -1.
 */
static int write_id_maps(const struct vu_sandbox *sb, pid_t pid, uid_t uid, gid_t gid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	return write_id_map(pid, "uid", "newuidmap", sb->uid_map, sb->n_uid_map, uid) < 0 ||
	       (!sb->n_gid_map && write_file(path, "deny") < 0) ||
	       write_id_map(pid, "gid", "newgidmap", sb->gid_map, sb->n_gid_map, gid) < 0 ? -1 : 0;
}

/*
 * --uid-map/--gid-map: the maps of our new user namespace are written from outside
 * it by newuidmap(1) and newgidmap(1) (setuid helpers that check /etc/subuid and
 * /etc/subgid), as virtiofsd does. A child started before unshare() runs them once
 * told (go), and says whether they did (done). A kind given no map gets the one
 * line of our own id, written directly. Returns the child, or -1 after an error line.
 */
static pid_t start_mapper(const struct vu_sandbox *sb, int *go, int *done)
{
	int a[2], b[2];
	pid_t parent = getpid();

	if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0) {
		vu_err("sandbox: pipe: %s", strerror(errno));
		return -1;
	}
	pid_t child = fork();
	if (child == 0) {
		char c;
		close(a[1]);
		close(b[0]);
		bool ok = read(a[0], &c, 1) == 1 && write_id_maps(sb, parent, geteuid(), getegid()) == 0;
		if (ok && write(b[1], "1", 1) != 1)
			ok = false;
		_exit(ok ? 0 : 1);
	}
	close(a[0]);
	close(b[1]);
	if (child < 0) {
		vu_err("sandbox: cannot start the id mapper: %s", strerror(errno));
		close(a[1]);
		close(b[0]);
		return -1;
	}
	*go = a[1];
	*done = b[0];
	return child;
}

/* Tells the mapper to go and waits for it: 0, or -1 after an error line. */
static int finish_mapper(pid_t child, int go, int done, bool unshared)
{
	char c = 0;
	bool ok = unshared && write(go, "1", 1) == 1 && read(done, &c, 1) == 1 && c == '1';

	close(go);
	close(done);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (unshared && !ok) {
		vu_err("sandbox: --uid-map, --gid-map: the user namespace's maps could not be written");
		return -1;
	}
	return 0;
}

/*
 * Returns 0, 1 when the host refuses the namespaces themselves (nothing changed
 * yet: a default mode may fall back), or -1 after an error line.
 */
static int enter_namespaces(const struct vu_sandbox *sb)
{
	int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | (sb->host_net ? 0 : CLONE_NEWNET);
	uid_t uid = geteuid();
	gid_t gid = getegid();

	int threads = threads_of_this_process();
	if (threads != 1) {
		vu_warn("sandbox: %d threads are running: a new root would not reach them all", threads);
		return 1;
	}
	if (uid != 0)
		flags |= CLONE_NEWUSER; /* not root: a user namespace of our own gives the rights */
	bool maps = id_maps(sb);
	int go = -1, done = -1;
	pid_t mapper = maps ? start_mapper(sb, &go, &done) : 0;
	if (mapper < 0)
		return -1;
	bool unshared = unshare(flags) == 0;
	int e = errno;
	if (maps && finish_mapper(mapper, go, done, unshared) < 0)
		return -1;
	if (!unshared) {
		vu_warn("sandbox: cannot create namespaces: %s", strerror(e));
		return 1;
	}
	if (maps) {
		/* Root of the namespace (the outside id the maps give 0), so requests may take the guest's ids. */
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			vu_warn("sandbox: --uid-map, --gid-map: no id 0 in the namespace (%s): requests run as the process",
				strerror(errno));
	} else if (uid != 0 && write_id_maps(sb, getpid(), uid, gid) < 0) {
		goto fail;
	}
	/* Nothing we mount may leak out; a tmpfs on /tmp of this namespace becomes the root. */
	static const char *const bases[] = { "/tmp", "/mnt", "/run", "/dev" };
	const char *base = NULL;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		goto fail;
	for (unsigned i = 0; i < sizeof(bases) / sizeof(bases[0]) && !base; i++)
		if (mount("vhostbox", bases[i], "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=16k,nr_inodes=16,mode=0555") == 0)
			base = bases[i];
	if (!base)
		goto fail;
	if (chdir(base) < 0)
		goto fail;
#ifdef VU_SANITIZED
	/*
	 * Sanitizer builds only: LeakSanitizer lists /proc/self/task and reads
	 * /proc/self/maps at exit. The shipped build's root stays empty.
	 */
	if (mkdir("proc", 0555) < 0 || mount("/proc", "proc", NULL, MS_BIND | MS_REC, NULL) < 0)
		goto fail;
#endif
	if (mount(NULL, ".", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 ||
	    syscall(SYS_pivot_root, ".", ".") < 0 || umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		goto fail;
	return 0;
fail:
	vu_err("sandbox: cannot set up the namespaces' empty root: %s", strerror(errno));
	return -1;
}

/* ---- 3, 4. ids and capabilities ----------------------------------------------- */

static int change_ids(const struct vu_sandbox *sb)
{
	if (!sb->set_user && !sb->set_group)
		return 0;
	uid_t uid = sb->set_user ? sb->uid : getuid();
	gid_t gid = sb->set_group || sb->set_user ? sb->gid : getgid();
	if (geteuid() != 0 && uid == geteuid() && gid == getegid())
		return 0; /* already them */
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		vu_err("cannot become user %u, group %u: %s", (unsigned)uid, (unsigned)gid, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- 4. the allowlist ------------------------------------------------------------ */

/* What proto calls while serving: the loop, messages, guest memory, threads, the end. */
static const struct vu_syscall proto_calls[] = {
	/* the loop: epoll, eventfds, timers, the signalfd */
	VU_SYSCALL(epoll_wait), VU_SYSCALL(epoll_pwait), VU_SYSCALL(epoll_ctl),
	VU_SYSCALL(read), VU_SYSCALL(write), VU_SYSCALL(readv), VU_SYSCALL(writev), VU_SYSCALL(close),
	VU_SYSCALL(eventfd2), VU_SYSCALL(timerfd_create), VU_SYSCALL(timerfd_settime),
	/* front-ends: one connection at a time on the socket we listen on; the back-end channel */
	VU_SYSCALL(accept4), VU_SYSCALL(recvmsg), VU_SYSCALL(sendmsg), VU_SYSCALL(recvfrom),
	VU_SYSCALL(sendto), VU_SYSCALL(shutdown),
	/* a device state load's rest, waited for on its pipe (CHECK_DEVICE_STATE) */
	VU_SYSCALL(poll),
	/* guest memory, dirty log and inflight regions: fds the front-end passes, a memfd */
	VU_SYSCALL_MASK(mmap, 2, PROT_EXEC, 0), VU_SYSCALL_MASK(mprotect, 2, PROT_EXEC, 0),
	VU_SYSCALL(munmap), VU_SYSCALL(mremap), VU_SYSCALL(madvise), VU_SYSCALL(brk),
	VU_SYSCALL(fstat), VU_SYSCALL(newfstatat), VU_SYSCALL(memfd_create), VU_SYSCALL(ftruncate),
	/* fd flags and seals; not F_SETOWN/F_SETSIG, which would aim signals at other processes */
	VU_SYSCALL_IF(fcntl, 1, F_GETFD), VU_SYSCALL_IF(fcntl, 1, F_SETFD), VU_SYSCALL_IF(fcntl, 1, F_GETFL),
	VU_SYSCALL_IF(fcntl, 1, F_SETFL), VU_SYSCALL_IF(fcntl, 1, F_DUPFD_CLOEXEC),
	VU_SYSCALL_IF(fcntl, 1, F_GET_SEALS), VU_SYSCALL_IF(fcntl, 1, F_ADD_SEALS),
	/* signals: SIGBUS on truncated guest memory, the signalfd's mask, SIGSYS here */
	VU_SYSCALL(rt_sigaction), VU_SYSCALL(rt_sigprocmask), VU_SYSCALL(rt_sigreturn),
	VU_SYSCALL(restart_syscall),
	/* threads (proto's worker loops start after confinement) and their locks */
	VU_SYSCALL_MASK(clone, 0, CLONE_THREAD, CLONE_THREAD), VU_SYSCALL(set_robust_list),
	VU_SYSCALL(rseq), VU_SYSCALL(futex), VU_SYSCALL(sched_yield), VU_SYSCALL(gettid),
	VU_SYSCALL(getpid), VU_SYSCALL(exit), VU_SYSCALL(exit_group),
	/* time: the vDSO mostly, the real calls where it cannot */
	VU_SYSCALL(clock_gettime), VU_SYSCALL(clock_nanosleep), VU_SYSCALL(nanosleep),
	/* the end: the socket-file helper is told and waited for */
	VU_SYSCALL(wait4),
	VU_SYSCALL_END,
};

#ifdef VU_SANITIZED
/*
 * The sanitizer runtime (ASan, UBSan, LeakSanitizer) of test builds only: its
 * alternate signal stack, reports, and the leak check at exit, which clones a
 * tracer (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED, not a thread) that
 * ptrace-stops our threads and reads /proc (bound into the namespace root).
 */
static const struct vu_syscall sanitizer_calls[] = {
	VU_SYSCALL(sigaltstack), VU_SYSCALL(prctl), VU_SYSCALL(ptrace), VU_SYSCALL(wait4),
	VU_SYSCALL_MASK(clone, 0, 0xffffffffu, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED),
	VU_SYSCALL_MASK(open, 1, O_ACCMODE | O_CREAT | O_TRUNC, 0),
	VU_SYSCALL_MASK(openat, 2, O_ACCMODE | O_CREAT | O_TRUNC, 0),
	VU_SYSCALL(getdents), VU_SYSCALL(getdents64),
	VU_SYSCALL(lseek), VU_SYSCALL(pread64), VU_SYSCALL(readlink), VU_SYSCALL(getppid),
	VU_SYSCALL(sched_getaffinity), VU_SYSCALL(prlimit64), VU_SYSCALL(getrlimit),
	VU_SYSCALL(mmap), VU_SYSCALL(mprotect), VU_SYSCALL(tgkill), VU_SYSCALL(kill),
	VU_SYSCALL_END,
};
#endif

#ifdef VU_SANDBOX_SELFTEST
/*
 * Test builds only, under umockdev (the tests' emulated evdev devices): its
 * preloaded library checks paths and connects to its ioctl socket whenever a
 * node is opened, which input --reconnect-device does while serving.
 */
static const struct vu_syscall umockdev_calls[] = {
	VU_SYSCALL(access), VU_SYSCALL_IF(socket, 0, AF_UNIX), VU_SYSCALL(connect),
	VU_SYSCALL_END,
};
#endif

/* Syscall names, looked up before confinement: the SIGSYS handler cannot allocate. */
#define MAX_NR 1024
static char *call_names[MAX_NR];

static size_t append(char *buf, size_t at, size_t size, const char *s)
{
	while (*s && at + 1 < size)
		buf[at++] = *s++;
	return at;
}

static size_t append_uint(char *buf, size_t at, size_t size, unsigned long v)
{
	char digits[24];
	int n = 0;

	do
		digits[n++] = '0' + v % 10;
	while ((v /= 10) && n < 23);
	while (n && at + 1 < size)
		buf[at++] = digits[--n];
	return at;
}

/*
 * Capabilities are per thread, and threads a library started during init (Mesa's)
 * keep theirs when the main thread drops its own. Each thread is therefore asked
 * to drop them itself: a SIGSYS sent with tgkill (not a seccomp trap) runs this in
 * the thread it reaches. SIGSYS, because it is the one signal Mesa's threads leave
 * unblocked (for seccomp); everything here is a raw system call.
 */
static pid_t self_pid;
static int last_cap;
static uint64_t keep_caps;      /* what drop_capabilities() leaves: the devices' caps, or nothing */
static int threads_dropped, threads_failed;

static void drop_this_threads_capabilities(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	const uint32_t keep[2] = { (uint32_t)keep_caps, (uint32_t)(keep_caps >> 32) };

	/* The bounding set needs CAP_SETPCAP; a process without privileges has nothing to drop. */
	for (int c = 0; c <= last_cap; c++)
		if (!(keep_caps >> c & 1))
			syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
	syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	bool ok = syscall(SYS_capget, &h, d) == 0;
	for (int i = 0; i < 2; i++) {
		d[i].effective &= keep[i];
		d[i].permitted &= keep[i];
		d[i].inheritable = 0;
	}
	if (!ok || syscall(SYS_capset, &h, d) < 0 || syscall(SYS_capget, &h, d) < 0 ||
	    (d[0].effective | d[0].permitted) & ~keep[0] || (d[1].effective | d[1].permitted) & ~keep[1] ||
	    d[0].inheritable | d[1].inheritable)
		__atomic_add_fetch(&threads_failed, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&threads_dropped, 1, __ATOMIC_RELEASE);
}

static void on_sigsys(int sig, siginfo_t *si, void *ucontext)
{
	char line[256];
	int nr = si->si_syscall;
	size_t n = 0;

	if (si->si_code == SI_TKILL && si->si_pid == self_pid) {
		drop_this_threads_capabilities();
		return;
	}
	n = append(line, n, sizeof(line), vu_log_name());
	n = append(line, n, sizeof(line), ": error: sandbox: system call ");
	n = append_uint(line, n, sizeof(line), (unsigned)nr);
	if (nr >= 0 && nr < MAX_NR && call_names[nr]) {
		n = append(line, n, sizeof(line), " (");
		n = append(line, n, sizeof(line), call_names[nr]);
		n = append(line, n, sizeof(line), ")");
	}
	n = append(line, n, sizeof(line), " is not allowed: killed (--sandbox=none runs unconfined)\n");
	/*
	 * Raw calls only: libc's wrappers may be interposed (a preloaded library)
	 * by code that makes calls of its own, which would trap again in here.
	 */
	syscall(SYS_write, 2, line, n);
	/* Die of SIGSYS: the default action, then the signal (blocked here, delivered on return). */
	struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = { .handler = SIG_DFL };
	syscall(SYS_rt_sigaction, SIGSYS, &dfl, NULL, sizeof(dfl.mask));
	syscall(SYS_tgkill, syscall(SYS_getpid), syscall(SYS_gettid), SIGSYS);
}

static int install_sigsys(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO | SA_RESTART };

	sigemptyset(&sa.sa_mask);
	self_pid = getpid();
	for (int nr = 0; nr < MAX_NR; nr++)
		if (!call_names[nr])
			call_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		vu_err("sandbox: SIGSYS handler: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Every thread's capabilities (bounding, ambient, permitted, effective, inheritable),
 * but keep where the process may act as other users: root, also of its own user
 * namespace (--uid-map). Then it also leaves its supplementary groups, which would
 * count for every user it acts as (where the namespace allows: without --gid-map
 * the only ones are the user's own).
 */
static int drop_capabilities(bool single_thread, uint64_t keep)
{
	int sent = 0;

	keep_caps = geteuid() == 0 ? keep : 0;
	if (keep_caps && setgroups(0, NULL) < 0 && errno != EPERM) {
		vu_err("sandbox: cannot leave the supplementary groups: %s", strerror(errno));
		return -1;
	}

	for (last_cap = 0; prctl(PR_CAPBSET_READ, last_cap + 1, 0, 0, 0) >= 0; last_cap++)
		;
	threads_dropped = threads_failed = 0;
	drop_this_threads_capabilities();
	DIR *d = single_thread ? NULL : opendir("/proc/self/task");
	for (struct dirent *e; d && (e = readdir(d));) {
		pid_t tid = (pid_t)atoi(e->d_name);
		if (tid > 0 && tid != (pid_t)syscall(SYS_gettid) && syscall(SYS_tgkill, self_pid, tid, SIGSYS) == 0)
			sent++;
	}
	if (d)
		closedir(d);
	for (int waited = 0; __atomic_load_n(&threads_dropped, __ATOMIC_ACQUIRE) < sent + 1 && waited < 2000; waited++)
		usleep(1000);
	int done = __atomic_load_n(&threads_dropped, __ATOMIC_ACQUIRE);
	if (done < sent + 1 || threads_failed) {
		vu_err("sandbox: cannot drop capabilities (%d of %d threads did)", done - threads_failed, sent + 1);
		return -1;
	}
	return 0;
}

static int add_calls(scmp_filter_ctx ctx, const struct vu_syscall *list)
{
	for (const struct vu_syscall *c = list; c && c->name; c++) {
		int nr = seccomp_syscall_resolve_name(c->name);
		int r;
		if (nr == __NR_SCMP_ERROR) {
			vu_err("sandbox: no system call named %s here", c->name);
			return -1;
		}
		if (c->arg < 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		else
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
					     SCMP_CMP((unsigned)c->arg, SCMP_CMP_MASKED_EQ, c->mask, c->value));
		if (r < 0 && r != -EEXIST) {
			vu_err("sandbox: cannot allow %s: %s", c->name, strerror(-r));
			return -1;
		}
	}
	return 0;
}

static int load_allowlist(const struct vu_sandbox *sb)
{
#ifdef VU_SANDBOX_LOG
	uint32_t deny = SCMP_ACT_LOG;
#else
	uint32_t deny = SCMP_ACT_TRAP;
#endif
	scmp_filter_ctx ctx = seccomp_init(deny);
	int r = -1;

	if (!ctx) {
		vu_err("sandbox: seccomp_init failed");
		return -1;
	}
	/* Signals go to our own threads only. */
	const struct vu_syscall self[] = {
		VU_SYSCALL_IF(tgkill, 0, (uint64_t)getpid()), VU_SYSCALL_IF(kill, 0, (uint64_t)getpid()),
		VU_SYSCALL_END,
	};
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0 ||
	    add_calls(ctx, proto_calls) < 0 || add_calls(ctx, self) < 0)
		goto out;
	for (unsigned i = 0; i < sb->nlists; i++)
		if (add_calls(ctx, sb->lists[i]) < 0)
			goto out;
#ifdef VU_SANITIZED
	if (add_calls(ctx, sanitizer_calls) < 0)
		goto out;
#endif
#ifdef VU_SANDBOX_SELFTEST
	if (getenv("UMOCKDEV_DIR") && add_calls(ctx, umockdev_calls) < 0)
		goto out;
#endif
	/* glibc starts threads with clone3, whose flags a filter cannot read: it falls back to clone. */
	if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) < 0)
		goto out;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		vu_err("sandbox: no_new_privs: %s", strerror(errno));
		goto out;
	}
	r = seccomp_load(ctx);
	if (r < 0)
		vu_err("sandbox: cannot load the seccomp filter: %s", strerror(-r));
out:
	seccomp_release(ctx);
	return r < 0 ? -1 : 0;
}

/* ---- all of it ------------------------------------------------------------------ */

int vu_sandbox_enter(struct vu_sandbox *sb, const char *const *socket_paths, unsigned n_paths)
{
	int mode = sb->mode;

#ifdef VU_SANITIZED
	/* The sanitizer caches what it would read from /proc and the binaries later. */
	__sanitizer_sandbox_on_notify(NULL);
#endif
	if (sb->nofile) {
		struct rlimit rl = { sb->nofile, sb->nofile };
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			vu_err("--rlimit-nofile=%lu: %s", sb->nofile, strerror(errno));
			return -1;
		}
	}
	if ((mode > VU_SANDBOX_NONE || sb->set_user) && start_keeper(socket_paths, n_paths) < 0)
		return -1;
	if (mode == VU_SANDBOX_NAMESPACE) {
		int r = enter_namespaces(sb);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (sb->mode_asked || id_maps(sb)) {
				vu_err("--sandbox=namespace is not possible here (--sandbox=seccomp is)");
				return -1;
			}
			vu_warn("sandbox: namespaces are not available here: seccomp only");
			mode = VU_SANDBOX_SECCOMP;
		}
	}
	if (mode == VU_SANDBOX_CHROOT) {
#ifdef VU_SANITIZED
		/*
		 * Sanitizer builds only: LeakSanitizer's check at exit needs /proc, which the
		 * device's directory has not (nothing is mounted into it): it runs now instead.
		 */
		__lsan_do_leak_check();
#endif
		if (chroot(*sb->chroot_dir) < 0 || chdir("/") < 0) {
			vu_err("--sandbox=chroot: cannot enter %s: %s", *sb->chroot_dir, strerror(errno));
			return -1;
		}
	}
	if (change_ids(sb) < 0)
		return -1;
	if (mode > VU_SANDBOX_NONE && (install_sigsys() < 0 || drop_capabilities(mode == VU_SANDBOX_NAMESPACE, sb->caps) < 0 ||
				       load_allowlist(sb) < 0))
		return -1;
	sb->mode = mode;
	vu_info("sandbox: %s%s", mode_names[mode], mode == VU_SANDBOX_NAMESPACE && sb->host_net ?
		" (the host's network namespace: a tap)" : "");
#ifdef VU_SANDBOX_SELFTEST
	const char *call = getenv("VU_SANDBOX_SELFTEST_CALL");
	if (call && *call) {
		int nr = seccomp_syscall_resolve_name(call);
		vu_info("sandbox selftest: calling %s (%d)", call, nr);
		syscall(nr, 0, 0, 0, 0, 0, 0);
		vu_info("sandbox selftest: %s returned", call);
	}
#endif
	return 0;
}
