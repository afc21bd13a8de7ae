/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-fs: what its files share.
 *   dev/fs.c        the device: options, queues, requests in and out, resets
 *   dev/fs-pool.c   worker threads that run the requests (blocking file-system calls)
 *   dev/fs-node.c   inodes (O_PATH handles) and open files, by the ids the guest uses
 *   dev/fs-migrate.c those inodes and open files moved with a migration (DEVICE_STATE)
 *   dev/fs-ops.c    FUSE requests on names and attributes
 *   dev/fs-io.c     FUSE requests on open files and directories, xattrs, locks
 *   dev/fs-cred.c   requests as the guest's user, setuid bits, --uid-map/--gid-map
 */
#ifndef VU_DEV_FS_H
#define VU_DEV_FS_H

#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto/device.h"

#ifndef FUSE_CREATE_SUPP_GROUP      /* FUSE 7.39: newer than Debian 12's headers */
#define FUSE_CREATE_SUPP_GROUP (1ULL << 34)
#define FUSE_EXT_GROUPS 32
struct fuse_supp_groups {
	uint32_t nr_groups;
	uint32_t groups[];
};
#endif

#define FS_MAX_QUEUES 16            /* request queues; queue 0 (hiprio) comes on top */
#define FS_SLOTS 64                 /* requests in flight per queue */
#define FS_MAX_PAGES 256            /* max_pages told to the kernel: 1 MiB reads and writes */
#define FS_MAX_WRITE (FS_MAX_PAGES * 4096u)
#define FS_MAX_IOV (FS_MAX_PAGES + 16)
#define FS_ARG_MAX (65536 + 4096)   /* a request's arguments (not a write's data): a 64 KiB xattr and names */
#define FS_REPLY_MAX 65536          /* a reply built before it is copied out (xattrs, a link target) */

enum fs_cache { FS_CACHE_AUTO, FS_CACHE_ALWAYS, FS_CACHE_NEVER, FS_CACHE_METADATA };

/* One inode the guest knows (or a request is using): an O_PATH handle beneath the shared directory. */
struct fs_node {
	uint64_t id;                /* the FUSE nodeid: 1 is the shared directory */
	int fd;                     /* O_PATH | O_NOFOLLOW */
	dev_t dev;
	ino_t ino;
	mode_t type;                /* S_IFMT bits */
	uint64_t nlookup;           /* the kernel's references (LOOKUP counts up, FORGET down) */
	unsigned refs;              /* requests using it, + 1 while nlookup > 0 */
	struct fs_node *hash_next;
};

/* One open file or directory: FUSE's fh. */
struct fs_file {
	uint64_t id;
	int fd;
	unsigned refs;
	pthread_mutex_t lock;       /* directories: the position, moved by each READDIR */
};

/* id -> object, with ids reused once free (tables of nodes and of files). */
struct fs_table {
	void **slot;
	uint64_t size, used_to;
	uint64_t *free_ids;
	uint64_t nfree;
};

struct fs_req;
struct fs_pool;

struct fs_queue {
	struct fs *fs;
	struct vu_vring *vq;
	struct fs_req *slots;       /* FS_SLOTS, allocated on first use */
	struct fs_req *free;
	unsigned busy;              /* popped and not yet pushed */
	bool starved;               /* ran out of slots with requests left: kick again on a completion */
	bool flush;                 /* completions pushed, not yet flushed */
};

struct fs {
	struct vu_dev dev;
	/* options */
	const char *shared_dir;
	const char *legacy;         /* -o source=DIR,cache=...,xattr,... */
	char *legacy_items;         /* its copy, cut into items: source= points here */
	unsigned cache;
	bool xattr, no_xattr, readonly, announce_submounts;
	unsigned threads;           /* --thread-pool-size: 0 runs every request on the loop */
	unsigned queues;
	unsigned log_level;
	struct vu_id_map uid_map[VU_ID_MAP_MAX], gid_map[VU_ID_MAP_MAX];  /* --uid-map, --gid-map */
	unsigned n_uid_map, n_gid_map;

	struct vu_loop *loop;
	int root_fd;                /* O_PATH, the shared directory */
	int root_dir_fd;            /* the same, opened for reading (syncfs) */
	int proc_fd;                /* /proc/self/fd: reopens an O_PATH handle with real access */
	bool ids_known;             /* switch_ids was found out (on the first kick, confined) */
	bool switch_ids;            /* requests run with the guest's uid and gid (dev/fs-cred.c) */
	bool supp_group;            /* and the supplementary group some carry (FUSE_CREATE_SUPP_GROUP) */

	pthread_mutex_t lock;       /* the tables and every node's and file's counters */
	struct fs_table nodes, files;
	struct fs_node **hash;      /* nodes by (dev, ino) */
	bool initialized;           /* INIT answered (or a migration's state loaded) */
	bool reset_seen;            /* a reset since: the next INIT is a new driver's */

	struct fs_pool *pool;
	int done_fd;                /* eventfd: the pool finished requests */
	pthread_mutex_t done_lock;
	struct fs_req *done;        /* finished by the pool, not yet pushed */
	struct vu_timer *lock_timer;
	struct fs_req *lock_wait;   /* SETLKW that would block: tried again on the timer */
	struct fs_queue q[1 + FS_MAX_QUEUES];
};

/* One request: the descriptors popped, its header and arguments copied, the reply. */
struct fs_req {
	struct fs_queue *q;
	struct fs_req *next;
	struct vu_req vr;           /* as popped: kept until it is pushed */
	struct iovec iov[FS_MAX_IOV];
	struct iovec data[FS_MAX_IOV];  /* a read's or write's data, sliced out of iov */
	struct fuse_in_header in;
	size_t in_bytes;            /* device-readable bytes */
	uint8_t *arg;               /* FS_ARG_MAX: the arguments after the header */
	size_t arg_len;
	uint8_t *reply;             /* FS_REPLY_MAX */
	uint32_t written;           /* bytes written to the device-writable buffers */
	bool again;                 /* a lock that would block: try again later */
};

/* ---- dev/fs-pool.c ---- */
typedef void (*fs_pool_fn)(struct fs *fs, struct fs_req *r);
struct fs_pool *fs_pool_new(struct fs *fs, unsigned threads, fs_pool_fn run, fs_pool_fn done);
/* Queues a request for a worker; done(fs, r) follows on that worker. */
void fs_pool_submit(struct fs_pool *p, struct fs_req *r);
void fs_pool_free(struct fs_pool *p);

/* ---- dev/fs-cred.c ---- */
/* Finds out fs->switch_ids and fs->supp_group (confined, on the first kick). */
void fs_cred_probe(struct fs *fs);
/*
 * The thread takes the request's uid, gid and supplementary group (with
 * fs->switch_ids): 0, -EPERM (an id it cannot take) or -EINVAL (extensions that
 * do not add up).
 */
int fs_cred_enter(const struct fs *fs, const struct fs_req *r);
/* Back to the process's own (after fs_cred_enter, whatever it returned). */
void fs_cred_leave(const struct fs *fs, const struct fs_req *r);
/*
 * kill (a request's KILL_SUIDGID): CAP_FSETID leaves the thread's effective set, so
 * a write or truncate clears setuid and setgid bits; true when it did, for
 * fs_cred_fsetid_on() after the call.
 */
bool fs_cred_fsetid_off(bool kill);
void fs_cred_fsetid_on(bool off);
/* Option parsers (VU_OPT_PARSE): one map more; 0, or -1 after the error line. */
int fs_parse_uid_map(struct vu_dev *dev, const char *arg);
int fs_parse_gid_map(struct vu_dev *dev, const char *arg);

/* ---- dev/fs-node.c ---- */
int fs_nodes_init(struct fs *fs);
void fs_nodes_free(struct fs *fs);
/* Drops every node but the root and closes every file (DESTROY, a reset). */
void fs_nodes_forget_all(struct fs *fs);
/* The node with this id, with a reference the caller puts back; NULL: not known. */
struct fs_node *fs_node_get(struct fs *fs, uint64_t id);
void fs_node_put(struct fs *fs, struct fs_node *n);
/* The kernel forgets n lookups of id. */
void fs_node_forget(struct fs *fs, uint64_t id, uint64_t n);
/*
 * openat2 of path beneath dir_fd as every name from the guest is opened: no symlink
 * followed, no magic link, nothing outside (O_NOFOLLOW | O_CLOEXEC added). fd, or -1
 * with errno.
 */
int fs_open_beneath(int dir_fd, const char *path, int flags, mode_t mode);
/*
 * Looks name up beneath dir (counting one lookup) and fills e; 0 or -errno.
 * name must have passed fs_name_ok().
 */
int fs_node_lookup(struct fs *fs, struct fs_node *dir, const char *name, struct fuse_entry_out *e);
/* A single path component: not empty, no '/', not "." or "..", at most NAME_MAX bytes. */
bool fs_name_ok(const char *name);
/* "N" of n's fd, for *at(proc_fd, "N", ...): the inode through our handle's magic link. */
void fs_node_procname(const struct fs_node *n, char buf[16]);
/* Opens n for real I/O (regular files and directories only); fd or -errno. */
int fs_node_open(struct fs *fs, const struct fs_node *n, int flags);
/* Attributes into a, with the cache's timeouts. */
int fs_node_stat(struct fs *fs, const struct fs_node *n, struct fuse_attr *a);
/* The timeouts (seconds) the cache mode gives entries and attributes. */
uint64_t fs_cache_timeout(const struct fs *fs);

/* An open file: fs_file_new takes fd (closed on failure); get/put as for nodes. */
int fs_file_new(struct fs *fs, int fd, uint64_t *id);
struct fs_file *fs_file_get(struct fs *fs, uint64_t id);
void fs_file_put(struct fs *fs, struct fs_file *f);
/* RELEASE: the id goes; the fd closes when the last request using it ends. 0 or -EBADF. */
int fs_file_release(struct fs *fs, uint64_t id);

/*
 * A migration's load: every node but the root and every file goes and no id is in use;
 * then nodes and files come back under the source's ids, in ascending order. fd -1 (or
 * an fd that turns out to reach another inode) makes a lost one: its id stays taken
 * (the guest still holds it), requests on it fail (ESTALE, EBADF) until the guest
 * forgets or releases it. restore: 0, -ESTALE (placed, lost) or -ENOMEM (not placed).
 */
void fs_nodes_restart(struct fs *fs);
int fs_node_restore(struct fs *fs, uint64_t id, int fd, mode_t type, uint64_t nlookup);
int fs_file_restore(struct fs *fs, uint64_t id, int fd);
/* The id of the node the guest knows for this inode, or 0. */
uint64_t fs_node_id_of(struct fs *fs, dev_t dev, ino_t ino);

/* ---- dev/fs-migrate.c: DEVICE_STATE ---- */
int fs_state_save(struct vu_dev *dev, void **buf, size_t *len);
int fs_state_load(struct vu_dev *dev, const void *buf, size_t len);

/* ---- request decoding and replies (dev/fs-ops.c) ---- */
struct fs_args {
	const uint8_t *p;
	size_t left;
};
/* The next n bytes of the arguments, or NULL when fewer are left. */
const void *fs_take(struct fs_args *a, size_t n);
/* The next NUL-terminated string (at most max bytes before the NUL), or NULL. */
const char *fs_take_str(struct fs_args *a, size_t max);
/* Writes the reply: header with error (a -errno or 0) then len bytes of body. */
void fs_reply(struct fs_req *r, int error, const void *body, size_t len);
static inline void fs_reply_err(struct fs_req *r, int error)
{
	fs_reply(r, error, NULL, 0);
}
/* Runs one request (any opcode) and replies to it; on a worker or the loop. */
void fs_op_run(struct fs *fs, struct fs_req *r);

/* ---- dev/fs-io.c: one handler per opcode, each replies ---- */
typedef void (*fs_op_fn)(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_open(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_create(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_read(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_write(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_release(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_flush(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_fsync(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_readdir(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_lk(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_fallocate(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_lseek(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_copy_file_range(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);
void fs_op_xattr(struct fs *fs, struct fs_req *r, struct fs_node *n, struct fs_args *a);

#endif
