/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-fs (device id 26): a host directory shared with the guest, FUSE requests
 * over virtqueues (queue 0: the high-priority queue, FORGETs; then --queues request
 * queues). This file is the device around the requests: options, the rings, taking
 * requests in and pushing them back, resets. Requests run on worker threads
 * (dev/fs-pool.c) since file-system calls block; dev/fs.h says what the other files
 * hold.
 *
 * Its service runs as the user the shared files belong to (no DynamicUser); a shared
 * directory outside these ReadWritePaths needs a drop-in that adds it.
 *
 * build: fs.c fs-pool.c fs-node.c fs-ops.c fs-io.c fs-cred.c fs-migrate.c
 * systemd: ReadWritePaths=-/srv -/var/lib/vhostbox
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: PrivateNetwork=yes
 * systemd: SystemCallFilter=@system-service
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev/fs.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

#define DEFAULT_THREADS 4
#define LOCK_RETRY_NS 10000000u     /* a SETLKW that would block is tried again this often */

#define FS_FIELD(f) offsetof(struct fs, f)
static const struct vu_choice cache_modes[] = {
	{ "auto", FS_CACHE_AUTO }, { "always", FS_CACHE_ALWAYS }, { "never", FS_CACHE_NEVER },
	{ "metadata", FS_CACHE_METADATA }, { NULL },
};
static const struct vu_choice log_levels[] = {
	{ "error", VU_LOG_ERROR }, { "warn", VU_LOG_WARN }, { "info", VU_LOG_INFO }, { "debug", VU_LOG_DEBUG },
	{ "trace", VU_LOG_DEBUG }, { "off", VU_LOG_OFF }, { NULL },
};
static const struct vu_option fs_options[] = {
	{ .name = "shared-dir", .kind = VU_OPT_PATH, .offset = FS_FIELD(shared_dir), .arg = "DIR",
	  .help = "the host directory the guest sees (required, here or as -o source=DIR)" },
	{ .name = "cache", .kind = VU_OPT_ENUM, .offset = FS_FIELD(cache), .arg = "MODE",
	  .help = "what the guest may cache: auto (1 s), always, never, metadata (not data)", .choices = cache_modes },
	{ .name = "xattr", .kind = VU_OPT_FLAG, .offset = FS_FIELD(xattr), .help = "serve extended attributes" },
	{ .name = "no-xattr", .kind = VU_OPT_FLAG, .offset = FS_FIELD(no_xattr),
	  .help = "do not serve extended attributes (wins over --xattr)" },
	{ .name = "readonly", .kind = VU_OPT_FLAG, .offset = FS_FIELD(readonly),
	  .help = "refuse every change to the shared directory (EROFS)" },
	{ .name = "announce-submounts", .kind = VU_OPT_FLAG, .offset = FS_FIELD(announce_submounts),
	  .help = "tell the guest where other file systems are mounted beneath the shared directory" },
	{ .name = "thread-pool-size", .kind = VU_OPT_UINT, .offset = FS_FIELD(threads), .arg = "N",
	  .help = "worker threads for file-system calls; 0: all on the event loop", .max = 64 },
	{ .name = "queues", .kind = VU_OPT_UINT, .offset = FS_FIELD(queues), .arg = "N",
	  .help = "request queues (besides the high-priority queue)", .min = 1, .max = FS_MAX_QUEUES },
	{ .name = "log-level", .kind = VU_OPT_ENUM, .offset = FS_FIELD(log_level), .arg = "LEVEL",
	  .help = "the messages shown: error, warn, info, debug (every message), trace (as debug), off",
	  .choices = log_levels },
	{ .name = "uid-map", .kind = VU_OPT_PARSE, .arg = ":NS:HOST:COUNT:", .parse = fs_parse_uid_map,
	  .help = "started without privileges, --sandbox=namespace: the user namespace maps COUNT host uids "
		  "from HOST to NS and up, through newuidmap (/etc/subuid); requests take the guest's uids "
		  "there (repeatable)" },
	{ .name = "gid-map", .kind = VU_OPT_PARSE, .arg = ":NS:HOST:COUNT:", .parse = fs_parse_gid_map,
	  .help = "the same for gids, through newgidmap (/etc/subgid) (repeatable)" },
	{ .name = "o", .short_name = 'o', .kind = VU_OPT_STRING, .offset = FS_FIELD(legacy), .arg = "LIST",
	  .help = "the older virtiofsd form: source=DIR,cache=auto|always|none|metadata,xattr,no_xattr" },
	{ NULL },
};

static struct vu_dev *fs_create(void)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->threads = DEFAULT_THREADS;
	fs->queues = 1;
	fs->log_level = VU_LOG_INFO;
	fs->root_fd = fs->root_dir_fd = fs->proc_fd = fs->done_fd = -1;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->done_lock, NULL);
	return &fs->dev;
}

/* -o source=DIR,cache=MODE,xattr,no_xattr: 0, or -1 after the error line. */
static int parse_legacy(struct fs *fs)
{
	char *list = fs->legacy_items = strdup(fs->legacy), *save = NULL;
	int r = list ? 0 : -1;

	for (char *item = strtok_r(list, ",", &save); item && !r; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');
		if (value)
			*value++ = '\0';
		if (!strcmp(item, "source") && value && *value) {
			fs->shared_dir = value;
		} else if (!strcmp(item, "cache") && value) {
			unsigned i;
			const char *mode = strcmp(value, "none") ? value : "never";
			for (i = 0; cache_modes[i].name && strcmp(cache_modes[i].name, mode); i++)
				;
			if (!cache_modes[i].name)
				r = -1;
			else
				fs->cache = cache_modes[i].value;
		} else if (!strcmp(item, "xattr") && !value) {
			fs->xattr = true;
		} else if (!strcmp(item, "no_xattr") && !value) {
			fs->no_xattr = true;
		} else {
			r = -1;
		}
		if (r)
			vu_err("-o: '%s%s%s' is not one of source=DIR, cache=auto|always|none|metadata, xattr, no_xattr",
			       item, value ? "=" : "", value ? value : "");
	}
	return r;
}

static void on_done(void *opaque, int fd, uint32_t events);
static void lock_retry(void *opaque);

static int fs_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct fs *fs = (struct fs *)dev;

	if (fs->legacy && parse_legacy(fs) < 0)
		return VU_INIT_USAGE;
	if (!fs->shared_dir) {
		vu_err("--shared-dir is required (see --help)");
		return VU_INIT_USAGE;
	}
	fs->xattr &= !fs->no_xattr;
	if (fs->log_level != VU_LOG_INFO) /* the default leaves --verbose its say */
		vu_log_set_level(fs->log_level);
	dev->num_queues = 1 + fs->queues;
	fs->loop = loop;
	fs->root_fd = open(fs->shared_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0 || (fs->root_dir_fd = open(fs->shared_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		vu_err("--shared-dir %s: %s", fs->shared_dir, strerror(errno));
		return -1;
	}
	/* Opened now: confined, /proc is out of reach, but this directory stays ours. */
	fs->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd < 0) {
		vu_err("/proc/self/fd: %s", strerror(errno));
		return -1;
	}
	/* Modes the guest asks for are the modes files get. */
	umask(0);
	vu_device_raise_nofile(); /* an O_PATH handle per inode the guest knows */
	fs->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fs->lock_timer = vu_timer_new(loop, lock_retry, fs);
	if (fs->done_fd < 0 || !fs->lock_timer || vu_loop_watch(loop, fs->done_fd, EPOLLIN, on_done, fs) < 0 ||
	    fs_nodes_init(fs) < 0) {
		vu_err("fs: cannot set up: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < dev->num_queues; i++)
		fs->q[i].fs = fs;
	return 0;
}

static void fs_destroy(struct vu_dev *dev)
{
	struct fs *fs = (struct fs *)dev;

	fs_pool_free(fs->pool);
	fs_nodes_free(fs);
	for (unsigned i = 0; i <= FS_MAX_QUEUES; i++) {
		struct fs_queue *q = &fs->q[i];
		for (unsigned s = 0; q->slots && s < FS_SLOTS; s++) {
			free(q->slots[s].arg);
			free(q->slots[s].reply);
		}
		free(q->slots);
	}
	if (fs->done_fd >= 0) {
		vu_loop_unwatch(fs->loop, fs->done_fd);
		close(fs->done_fd);
	}
	vu_timer_free(fs->lock_timer);
	for (int *fd = &fs->root_fd; fd <= &fs->proc_fd; fd++)
		if (*fd >= 0)
			close(*fd);
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->done_lock);
	free(fs->legacy_items);
	free(fs);
}

/* ---- requests in and out ----------------------------------------------------------- */

static int queue_slots(struct fs_queue *q)
{
	q->slots = calloc(FS_SLOTS, sizeof(*q->slots));
	if (!q->slots)
		return -1;
	for (unsigned s = 0; s < FS_SLOTS; s++) {
		struct fs_req *r = &q->slots[s];
		r->q = q;
		r->arg = malloc(FS_ARG_MAX);
		r->reply = malloc(FS_REPLY_MAX);
		if (!r->arg || !r->reply)
			return -1;
		r->next = q->free;
		q->free = r;
	}
	return 0;
}

/* The one place a request goes back to the driver (flushed by the caller). */
static void complete(struct fs_req *r)
{
	struct fs_queue *q = r->q;

	vu_vring_push(q->vq, &r->vr, r->written);
	q->flush = true;
	q->busy--;
	r->next = q->free;
	q->free = r;
}

/* Publishes what complete() pushed. */
static void flush_all(struct fs *fs)
{
	for (unsigned i = 0; i < fs->dev.num_queues; i++) {
		struct fs_queue *q = &fs->q[i];
		if (q->flush) {
			q->flush = false;
			vu_vring_flush(q->vq);
		}
	}
}

/* On a worker: hands the finished request to the loop. */
static void finished(struct fs *fs, struct fs_req *r)
{
	pthread_mutex_lock(&fs->done_lock);
	r->next = fs->done;
	fs->done = r;
	pthread_mutex_unlock(&fs->done_lock);
	uint64_t one = 1;
	if (write(fs->done_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		vu_err("fs: cannot wake the loop: %s", strerror(errno));
}

/* As the guest's user where we may (dev/fs-cred.c). */
static void run(struct fs *fs, struct fs_req *r)
{
	r->again = false;
	int err = fs_cred_enter(fs, r);
	if (err)
		fs_reply_err(r, err);
	else
		fs_op_run(fs, r);
	fs_cred_leave(fs, r);
}

/* The request is ready to run: on a worker, or here (FORGETs, no pool). */
static void dispatch(struct fs *fs, struct fs_req *r)
{
	uint32_t op = r->in.opcode;

	if (!fs->pool || op == FUSE_FORGET || op == FUSE_BATCH_FORGET || op == FUSE_INTERRUPT) {
		run(fs, r);
		if (!r->again) {
			complete(r);
			return;
		}
		r->next = fs->lock_wait;
		fs->lock_wait = r;
		vu_timer_arm(fs->lock_timer, LOCK_RETRY_NS, LOCK_RETRY_NS);
		return;
	}
	fs_pool_submit(fs->pool, r);
}

/*
 * Reads the header and copies the arguments (never a write's data): false when the
 * request is unusable and was completed (answered where there is a header to answer).
 */
static bool take_in(struct fs_req *r)
{
	r->in_bytes = vu_iov_size(r->iov, r->vr.out);
	r->written = 0;
	if (r->vr.truncated || vu_iov_to_buf(r->iov, r->vr.out, 0, &r->in, sizeof(r->in)) != sizeof(r->in)) {
		vu_debug("fs: queue %u: an unusable request (%zu bytes, %u descriptors%s)",
			 r->q->vq->index, r->in_bytes, r->vr.out + r->vr.in, r->vr.truncated ? ", too many" : "");
		if (r->in_bytes >= sizeof(r->in) && vu_iov_to_buf(r->iov, r->vr.out, 0, &r->in, sizeof(r->in)))
			fs_reply(r, -EINVAL, NULL, 0); /* too many descriptors: say so */
		return false;
	}
	size_t args = r->in_bytes - sizeof(r->in);
	if (r->in.opcode == FUSE_WRITE && args > sizeof(struct fuse_write_in))
		args = sizeof(struct fuse_write_in); /* the data stays in guest memory */
	if (r->in.len != r->in_bytes || args > FS_ARG_MAX) {
		fs_reply(r, r->in.len != r->in_bytes ? -EINVAL : -E2BIG, NULL, 0);
		return false;
	}
	r->arg_len = vu_iov_to_buf(r->iov, r->vr.out, sizeof(r->in), r->arg, args);
	return true;
}

static void take_requests(struct fs *fs, struct fs_queue *q)
{
	struct vu_vring *vq = q->vq;

	do {
		vu_vring_kicks(vq, false);
		while (q->free) {
			struct fs_req *r = q->free;
			r->vr = (struct vu_req){ .iov = r->iov, .max_iov = FS_MAX_IOV };
			if (vu_vring_pop(vq, &r->vr) <= 0)
				break;
			q->free = r->next;
			q->busy++;
			if (take_in(r))
				dispatch(fs, r);
			else
				complete(r);
		}
		q->starved = !q->free;
		if (q->flush) {
			q->flush = false;
			vu_vring_flush(vq);
		}
	} while (!q->starved && !vq->broken && vu_vring_kicks(vq, true));
}

static void fs_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct fs *fs = (struct fs *)dev;
	struct fs_queue *q = &fs->q[vq->index];

	if (!fs->ids_known) {
		/* Confined by now: whether the ids may change is known. */
		fs->ids_known = true;
		fs_cred_probe(fs);
		if (fs->switch_ids)
			vu_info("fs: requests run with the guest's uid and gid");
	}
	if (fs->threads && !fs->pool && !(fs->pool = fs_pool_new(fs, fs->threads, run, finished))) {
		vu_vring_fail(vq, "fs: cannot start the worker threads");
		return;
	}
	if (!q->slots && queue_slots(q) < 0) {
		vu_vring_fail(vq, "fs: out of memory for requests");
		return;
	}
	q->vq = vq;
	take_requests(fs, q);
}

/* Pushes what the workers finished, flushes, and takes more where slots ran out. */
static void drain_done(struct fs *fs)
{
	uint64_t n;

	if (read(fs->done_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		vu_err("fs: completion eventfd: %s", strerror(errno));
	pthread_mutex_lock(&fs->done_lock);
	struct fs_req *list = fs->done;
	fs->done = NULL;
	pthread_mutex_unlock(&fs->done_lock);
	while (list) {
		struct fs_req *r = list;
		list = r->next;
		if (r->again) {
			r->next = fs->lock_wait;
			fs->lock_wait = r;
			vu_timer_arm(fs->lock_timer, LOCK_RETRY_NS, LOCK_RETRY_NS);
		} else {
			complete(r);
		}
	}
	flush_all(fs);
}

static void on_done(void *opaque, int fd, uint32_t events)
{
	struct fs *fs = opaque;

	drain_done(fs);
	for (unsigned i = 0; i < fs->dev.num_queues; i++) {
		struct fs_queue *q = &fs->q[i];
		if (q->starved && q->free && vu_vring_ready(q->vq))
			take_requests(fs, q);
	}
}

static void lock_retry(void *opaque)
{
	struct fs *fs = opaque;
	struct fs_req *list = fs->lock_wait;

	fs->lock_wait = NULL;
	vu_timer_disarm(fs->lock_timer);
	while (list) {
		struct fs_req *r = list;
		list = r->next;
		dispatch(fs, r);
	}
	flush_all(fs);
}

/* The SETLKWs of queue q that wait for their lock are given up (EINTR). */
static void give_up_locks(struct fs *fs, struct fs_queue *q)
{
	for (struct fs_req **p = &fs->lock_wait; *p;) {
		struct fs_req *r = *p;
		if (r->q != q) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		fs_reply(r, -EINTR, NULL, 0);
		complete(r);
	}
}

/* Everything this ring has in flight ends, locks waited for included. */
static void fs_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct fs *fs = (struct fs *)dev;
	struct fs_queue *q = &fs->q[vq->index];

	give_up_locks(fs, q);
	while (q->busy) {
		struct pollfd pfd = { .fd = fs->done_fd, .events = POLLIN };
		poll(&pfd, 1, 1000);
		drain_done(fs);
		give_up_locks(fs, q); /* a lock a worker found taken meanwhile */
	}
	flush_all(fs);
	q->starved = false;
}

/*
 * QEMU stops a VM with SET_STATUS(0), a reset to us, and a stopped VM may go on
 * (cont) or migrate; a front-end that reconnects brings its guest back: the
 * driver's inodes and open files stay. A new driver (a reboot) starts from INIT,
 * which drops them then (dev/fs-ops.c).
 */
static void fs_reset(struct vu_dev *dev)
{
	struct fs *fs = (struct fs *)dev;

	__atomic_store_n(&fs->reset_seen, true, __ATOMIC_RELEASE);
}

/*
 * chroot mode confines the process to the shared directory itself. Where it may
 * act as other users, it keeps what acting as them takes, as virtiofsd does
 * (not CAP_MKNOD: device nodes are refused; not CAP_SETFCAP: no file
 * capabilities from the guest). Of the calls that change ids, the allowlist has
 * setfsuid, setfsgid and setgroups only (dev/fs-cred.c, per request).
 */
static void fs_sandbox(const struct vu_dev *dev, struct vu_sandbox_needs *needs)
{
	const struct fs *fs = (const struct fs *)dev;

	needs->chroot_dir = &fs->shared_dir; /* -o source= sets it in init */
	needs->caps = 1ull << CAP_CHOWN | 1ull << CAP_DAC_OVERRIDE | 1ull << CAP_FOWNER | 1ull << CAP_FSETID |
		      1ull << CAP_SETGID | 1ull << CAP_SETUID;
	needs->uid_map = fs->uid_map;
	needs->n_uid_map = fs->n_uid_map;
	needs->gid_map = fs->gid_map;
	needs->n_gid_map = fs->n_gid_map;
}

/* What serving a directory calls, beyond proto: every one on handles we hold. */
static const struct vu_syscall fs_syscalls[] = {
	VU_SYSCALL(openat2), VU_SYSCALL(openat), VU_SYSCALL(newfstatat), VU_SYSCALL(statx), VU_SYSCALL(fstatfs),
	VU_SYSCALL(readlinkat), VU_SYSCALL(symlinkat), VU_SYSCALL(mknodat), VU_SYSCALL(mkdirat),
	VU_SYSCALL(unlinkat), VU_SYSCALL(renameat), VU_SYSCALL(renameat2), VU_SYSCALL(linkat), VU_SYSCALL(fchmodat),
	VU_SYSCALL(fchownat), VU_SYSCALL(utimensat), VU_SYSCALL(faccessat2),
	VU_SYSCALL(preadv), VU_SYSCALL(pwritev), VU_SYSCALL(lseek), VU_SYSCALL(getdents64),
	VU_SYSCALL(fsync), VU_SYSCALL(fdatasync), VU_SYSCALL(syncfs), VU_SYSCALL(fallocate),
	VU_SYSCALL(copy_file_range), VU_SYSCALL(flock), VU_SYSCALL_IF(fcntl, 1, F_OFD_GETLK),
	VU_SYSCALL_IF(fcntl, 1, F_OFD_SETLK), VU_SYSCALL(fsetxattr), VU_SYSCALL(fgetxattr),
	VU_SYSCALL(flistxattr), VU_SYSCALL(fremovexattr), VU_SYSCALL(umask),
	VU_SYSCALL(setfsuid), VU_SYSCALL(setfsgid), VU_SYSCALL(setgroups), VU_SYSCALL(geteuid), VU_SYSCALL(capget),
	VU_SYSCALL(capset),
	VU_SYSCALL_END,
};

static const char *const fs_features[] = { "migrate-precopy", "separate-options", NULL };

const struct vu_device_type vu_dev_fs = {
	.name = "fs",
	.schema_type = "fs",
	.summary = "virtio-fs: a host directory shared with the guest (FUSE passthrough)",
	.qemu_args = "-device vhost-user-fs-pci,chardev=vu0,tag=myfs",
	.virtio_id = 26,
	.num_queues = 2,
	.options = fs_options,
	.schema_features = fs_features,
	.create = fs_create,
	.init = fs_init,
	.kick = fs_kick,
	.queue_drain = fs_queue_drain,
	.reset = fs_reset,
	.destroy = fs_destroy,
	.state_save = fs_state_save,
	.state_load = fs_state_load,
	.syscalls = fs_syscalls,
	.sandbox = fs_sandbox,
};
