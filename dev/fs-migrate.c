/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the guest holds moves with a migration (DEVICE_STATE): the source and the
 * destination share the same tree (the same directory, or a copy under another
 * path), so the state is where to find each inode again, not its data. For every
 * inode the guest knows: its nodeid, lookup count, type and its path beneath the
 * shared directory, found from our O_PATH handle (/proc/self/fd) and checked by
 * opening that path again beneath the shared directory to the same inode; for every
 * open file or directory: its fh, its inode's nodeid and its open flags. The
 * destination opens each path with the rules of a guest's lookup (openat2
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, the path's
 * components checked as names from the guest are) and keeps every id.
 *
 * An inode that has no path any more (unlinked while open, renamed out of the shared
 * directory; the name it was reached by unlinked, though another hard link remains;
 * not there on the destination, or another kind of file there) is
 * lost, and so are the files open on it: the migration goes on, their ids stay
 * taken, and requests on them fail (ESTALE for the inode, EBADF for the file) until
 * the guest forgets or releases them. Failing the whole migration for an unlinked
 * temporary file some program keeps open would make a VM unmigratable for good;
 * the data of such a file is not in the shared tree, so nothing could bring it
 * over anyway. What is lost is logged on both sides.
 *
 * Not moved: POSIX locks (the destination's files hold none), and nothing of the
 * data itself.
 *
 * The stream (host byte order; front-ends carry it between hosts of one kind):
 *   "VUFS", u32 version (1), u32 nodes, u32 files
 *   nodes, ids ascending: u64 id, u64 lookups, u32 type (S_IFMT), u32 path length
 *                         (0: lost), the path (relative, no NUL)
 *   files, ids ascending: u64 fh, u64 node (0: lost), u32 open flags, u32 0
 * The stream is the front-end's to tamper with: a load checks all of it before it
 * changes anything, and any flaw fails it with one line saying what.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev/fs.h"
#include "proto/device-state.h"
#include "proto/log.h"

#define STATE_VERSION 1
#define MAX_ENTRIES (1u << 20)      /* nodes, and files: a bound on what a stream may ask for */
#define MAX_ID (1u << 21)           /* ids index tables: a bound on what a load allocates */
#define FILE_FLAGS (O_ACCMODE | O_APPEND | O_SYNC | O_DSYNC)  /* of those fs-io.c opens with */

struct state_head {
	char magic[4];
	uint32_t version, nodes, files;
};

struct state_node {
	uint64_t id, nlookup;
	uint32_t type, path_len;
};

struct state_file {
	uint64_t id, node;
	uint32_t flags, zero;
};

/* ---- paths ------------------------------------------------------------------------ */

/* A relative path whose every component would pass as a name from the guest. */
static bool path_ok(const char *path, size_t len)
{
	char name[NAME_MAX + 1];

	if (!len || len >= PATH_MAX || memchr(path, '\0', len))
		return false;
	for (size_t at = 0; at <= len;) {
		const char *end = memchr(path + at, '/', len - at);
		size_t n = (end ? (size_t)(end - path) : len) - at;
		if (n > NAME_MAX)
			return false;
		memcpy(name, path + at, n);
		name[n] = '\0';
		if (!fs_name_ok(name))
			return false;
		at += n + 1;
	}
	return true;
}

/* path (checked) beneath the shared directory as a lookup would open it; fd or -1. */
static int open_beneath(const struct fs *fs, const char *path)
{
	return fs_open_beneath(fs->root_fd, path, O_PATH, 0);
}

/* Where fd's magic link says it is: its length, or -1. */
static ssize_t fd_path(const struct fs *fs, int fd, char buf[PATH_MAX])
{
	char name[16];

	snprintf(name, sizeof(name), "%d", fd);
	ssize_t len = readlinkat(fs->proc_fd, name, buf, PATH_MAX - 1);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	return len;
}

/*
 * n's path beneath the shared directory (root: its own path, "" for "/") into buf:
 * its length, or 0 when n cannot be found by a path (unlinked, moved out).
 */
static size_t node_path(const struct fs *fs, const struct fs_node *n, const char *root, char buf[PATH_MAX])
{
	size_t rlen = strlen(root);
	ssize_t len = fd_path(fs, n->fd, buf);
	struct stat st;

	if (len < 0 || (size_t)len <= rlen + 1 || memcmp(buf, root, rlen) || buf[rlen] != '/')
		return 0;
	len -= (ssize_t)rlen + 1;
	memmove(buf, buf + rlen + 1, (size_t)len + 1);
	if (!path_ok(buf, (size_t)len))
		return 0;
	/* The link names what the inode was reached by; the path must still reach it. */
	int fd = open_beneath(fs, buf);
	bool same = fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == n->dev && st.st_ino == n->ino;
	if (fd >= 0)
		close(fd);
	return same ? (size_t)len : 0;
}

/* ---- save ------------------------------------------------------------------------- */

struct out {
	uint8_t *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap && !o->failed) {
		size_t cap = o->cap ? o->cap : 65536;
		while (cap < o->len + n)
			cap *= 2;
		uint8_t *buf = realloc(o->buf, cap);
		o->failed = !buf;
		if (buf) {
			o->buf = buf;
			o->cap = cap;
		}
	}
	if (!o->failed) {
		memcpy(o->buf + o->len, p, n);
		o->len += n;
	}
}

/*
 * The rings are stopped (the session starts no transfer while one runs) and drained:
 * no request uses the tables meanwhile.
 */
int fs_state_save(struct vu_dev *dev, void **buf, size_t *len)
{
	struct fs *fs = (struct fs *)dev;
	struct state_head head = { .magic = "VUFS", .version = STATE_VERSION };
	struct out o = { 0 };
	char root[PATH_MAX], path[PATH_MAX];
	unsigned lost = 0;
	const char *why = NULL;

	if (fd_path(fs, fs->root_fd, root) < 0) {
		vu_err("fs: cannot save the device state: where is the shared directory? %s", strerror(errno));
		return -1;
	}
	if (!strcmp(root, "/"))
		root[0] = '\0'; /* chroot or namespace: paths start right after "/" */
	put(&o, &head, sizeof(head));
	for (uint64_t id = FUSE_ROOT_ID + 1; id <= fs->nodes.used_to && !why; id++) {
		const struct fs_node *n = fs->nodes.slot[id];
		if (!n || !n->nlookup)
			continue;
		size_t plen = n->fd >= 0 ? node_path(fs, n, root, path) : 0;
		struct state_node sn = { .id = id, .nlookup = n->nlookup, .type = n->type, .path_len = (uint32_t)plen };
		lost += !plen;
		if (id >= MAX_ID || ++head.nodes > MAX_ENTRIES)
			why = "more inodes known than a destination takes";
		put(&o, &sn, sizeof(sn));
		put(&o, path, plen);
	}
	for (uint64_t id = 1; id <= fs->files.used_to && !why; id++) {
		const struct fs_file *f = fs->files.slot[id];
		struct stat st;
		if (!f)
			continue;
		struct state_file sf = { .id = id };
		int flags = f->fd >= 0 ? fcntl(f->fd, F_GETFL) : -1;
		if (flags >= 0 && fstat(f->fd, &st) == 0)
			sf.node = fs_node_id_of(fs, st.st_dev, st.st_ino);
		sf.flags = flags >= 0 ? (uint32_t)(flags & FILE_FLAGS) : 0;
		lost += !sf.node;
		if (id >= MAX_ID || ++head.files > MAX_ENTRIES)
			why = "more files open than a destination takes";
		put(&o, &sf, sizeof(sf));
	}
	if (!why && o.failed)
		why = "out of memory";
	if (!why && o.len >= VU_STATE_MAX) /* a destination reads less than VU_STATE_MAX */
		why = "the state is larger than a destination reads";
	if (why) {
		vu_err("fs: cannot save the device state: %s", why);
		free(o.buf);
		return -1;
	}
	memcpy(o.buf, &head, sizeof(head));
	vu_info("fs: device state saved: %u inodes, %u open files (%u without a path: lost on the destination)",
		head.nodes, head.files, lost);
	*buf = o.buf;
	*len = o.len;
	return 0;
}

/* ---- load ------------------------------------------------------------------------- */

/* One record's fixed part, copied out (the stream has no alignment); false at its end. */
static bool take(struct fs_args *a, void *rec, size_t n)
{
	const void *p = fs_take(a, n);

	if (p)
		memcpy(rec, p, n);
	return p != NULL;
}

static bool type_ok(uint32_t type)
{
	switch (type) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		return true;
	default:
		return false;
	}
}

/* File f opened again on the destination: fd or -1 (lost). */
static int reopen_file(struct fs *fs, const struct state_file *sf)
{
	struct fs_node *n = sf->node ? fs_node_get(fs, sf->node) : NULL;
	int fd = -1;

	if (!n)
		return -1;
	bool writes = (sf->flags & O_ACCMODE) != O_RDONLY;
	if (n->type == S_IFDIR && !writes)
		fd = fs_node_open(fs, n, O_RDONLY | O_DIRECTORY);
	else if (n->type == S_IFREG && !(writes && fs->readonly))
		fd = fs_node_open(fs, n, (int)sf->flags);
	fs_node_put(fs, n);
	return fd < 0 ? -1 : fd;
}

/*
 * Goes through the stream: checks it (apply false: changes nothing), or installs it
 * (apply true, on a stream already checked). NULL, or what is wrong with it.
 */
static const char *walk(struct fs *fs, const void *buf, size_t len, bool apply, unsigned *lost)
{
	struct fs_args a = { buf, len };
	struct state_head head;
	struct state_node sn;
	struct state_file sf;
	char path[PATH_MAX];
	uint64_t last = FUSE_ROOT_ID;

	if (!take(&a, &head, sizeof(head)) || memcmp(head.magic, "VUFS", 4))
		return "not a virtio-fs state (no VUFS header)";
	if (head.version != STATE_VERSION)
		return "a state version this back-end does not know";
	if (head.nodes > MAX_ENTRIES || head.files > MAX_ENTRIES)
		return "more entries than a state may hold";
	for (uint32_t i = 0; i < head.nodes; i++) {
		if (!take(&a, &sn, sizeof(sn)))
			return "the state ends inside its inodes";
		if (sn.id <= last || sn.id >= MAX_ID)
			return "an inode id out of order or out of range";
		if (!sn.nlookup || !type_ok(sn.type))
			return "an inode without lookups, or of no known type";
		const char *p = sn.path_len ? fs_take(&a, sn.path_len) : NULL;
		if (sn.path_len && (!p || !path_ok(p, sn.path_len)))
			return "an inode path that is cut short, absolute, or has '.', '..', NUL or empty names";
		last = sn.id;
		if (!apply)
			continue;
		int fd = -1;
		if (p) {
			memcpy(path, p, sn.path_len);
			path[sn.path_len] = '\0';
			fd = open_beneath(fs, path);
		}
		int r = fs_node_restore(fs, sn.id, fd, sn.type, sn.nlookup);
		if (r == -ENOMEM)
			return "out of memory";
		*lost += r < 0;
	}
	last = 0;
	for (uint32_t i = 0; i < head.files; i++) {
		if (!take(&a, &sf, sizeof(sf)))
			return "the state ends inside its open files";
		if (sf.id <= last || sf.id >= MAX_ID || sf.node >= MAX_ID)
			return "a file id out of order, or an id out of range";
		if (sf.flags & ~(uint32_t)FILE_FLAGS || (sf.flags & O_ACCMODE) == O_ACCMODE || sf.zero)
			return "open flags a file of ours never has";
		last = sf.id;
		if (!apply)
			continue;
		int fd = reopen_file(fs, &sf);
		*lost += fd < 0;
		if (fs_file_restore(fs, sf.id, fd) < 0)
			return "out of memory";
	}
	return a.left ? "bytes after the last entry" : NULL;
}

int fs_state_load(struct vu_dev *dev, const void *buf, size_t len)
{
	struct fs *fs = (struct fs *)dev;
	unsigned lost = 0;
	const char *why = walk(fs, buf, len, false, &lost);

	if (why) {
		vu_err("fs: device state refused: %s", why); /* and nothing changed */
		return -1;
	}
	fs_nodes_restart(fs);
	if ((why = walk(fs, buf, len, true, &lost))) {
		fs_nodes_restart(fs); /* nothing half loaded stays: the next driver starts from INIT */
		__atomic_store_n(&fs->initialized, false, __ATOMIC_RELEASE);
		vu_err("fs: device state refused: %s", why);
		return -1;
	}
	/* The guest's driver sent INIT to the source: it goes on without one. */
	__atomic_store_n(&fs->initialized, true, __ATOMIC_RELEASE);
	__atomic_store_n(&fs->reset_seen, false, __ATOMIC_RELEASE);
	vu_info("fs: device state loaded (%zu bytes); %u inodes or open files lost (not found beneath the shared directory)",
		len, lost);
	return 0;
}
