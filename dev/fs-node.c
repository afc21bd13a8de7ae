/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inodes the guest knows and the files it has open, by the ids it uses for
 * them. An inode is an O_PATH handle: every name is resolved one component at a
 * time beneath a handle we already hold (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS, never following the last component),
 * so no name the guest sends reaches outside the shared directory. One node per
 * (device, inode) pair: hard links and renames keep their nodeid.
 *
 * Nodes and files are counted under fs->lock: a request holds a reference while
 * it uses one, so a FORGET or RELEASE racing with it only ends the id, and the fd
 * closes when the last request is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dev/fs.h"

#define HASH_SIZE 65536

/* ---- id tables ------------------------------------------------------------------- */

/* Room for ids up to id; false when out of memory. */
static bool table_grow(struct fs_table *t, uint64_t id)
{
	uint64_t size = t->size ? t->size : 1024;

	while (id + 1 >= size)
		size *= 2;
	if (size == t->size)
		return true;
	void **slot = realloc(t->slot, size * sizeof(*slot));
	uint64_t *free_ids = slot ? realloc(t->free_ids, size * sizeof(*free_ids)) : NULL;
	if (slot)
		t->slot = slot;
	if (!free_ids)
		return false;
	t->free_ids = free_ids;
	memset(t->slot + t->size, 0, (size - t->size) * sizeof(*slot));
	t->size = size;
	return true;
}

/* A free id (1 and up), or 0 when out of memory. */
static uint64_t table_add(struct fs_table *t, void *obj)
{
	uint64_t id;

	if (t->nfree) {
		id = t->free_ids[--t->nfree];
	} else {
		if (!table_grow(t, t->used_to + 1))
			return 0;
		id = ++t->used_to;
	}
	t->slot[id] = obj;
	return id;
}

/* obj under a given id past every id in use (a migration's load); the ids skipped are free. */
static bool table_place(struct fs_table *t, uint64_t id, void *obj)
{
	if (id <= t->used_to || !table_grow(t, id))
		return false;
	while (++t->used_to < id)
		t->free_ids[t->nfree++] = t->used_to;
	t->slot[id] = obj;
	return true;
}

static void *table_find(const struct fs_table *t, uint64_t id)
{
	return id && id <= t->used_to ? t->slot[id] : NULL;
}

static void table_remove(struct fs_table *t, uint64_t id)
{
	t->slot[id] = NULL;
	t->free_ids[t->nfree++] = id; /* room: free_ids is as large as slot */
}

/* ---- nodes ----------------------------------------------------------------------- */

static unsigned hash_of(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)dev;
	return (unsigned)(h >> 40) % HASH_SIZE;
}

static struct fs_node *hash_find(struct fs *fs, dev_t dev, ino_t ino)
{
	for (struct fs_node *n = fs->hash[hash_of(dev, ino)]; n; n = n->hash_next)
		if (n->dev == dev && n->ino == ino)
			return n;
	return NULL;
}

static void hash_insert(struct fs *fs, struct fs_node *n)
{
	unsigned h = hash_of(n->dev, n->ino);

	n->hash_next = fs->hash[h];
	fs->hash[h] = n;
}

static void hash_remove(struct fs *fs, struct fs_node *n)
{
	for (struct fs_node **p = &fs->hash[hash_of(n->dev, n->ino)]; *p; p = &(*p)->hash_next)
		if (*p == n) {
			*p = n->hash_next;
			return;
		}
}

/* Under fs->lock: drops one reference; the last one ends the node. */
static void node_unref(struct fs *fs, struct fs_node *n)
{
	if (--n->refs)
		return;
	hash_remove(fs, n);
	table_remove(&fs->nodes, n->id);
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}

/* Under fs->lock: the kernel's references end. */
static void node_drop_lookups(struct fs *fs, struct fs_node *n, uint64_t count)
{
	if (!n->nlookup)
		return;
	n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
	if (!n->nlookup)
		node_unref(fs, n);
}

/* Under fs->lock. */
static void file_unref(struct fs_file *f)
{
	if (--f->refs)
		return;
	if (f->fd >= 0)
		close(f->fd);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int fs_nodes_init(struct fs *fs)
{
	struct stat st;

	fs->hash = calloc(HASH_SIZE, sizeof(*fs->hash));
	struct fs_node *root = calloc(1, sizeof(*root));
	if (!fs->hash || !root || fstat(fs->root_fd, &st) < 0) {
		free(root);
		return -ENOMEM;
	}
	*root = (struct fs_node){ .fd = fs->root_fd, .dev = st.st_dev, .ino = st.st_ino, .type = S_IFDIR,
				  .nlookup = 1, .refs = 1 };
	root->id = table_add(&fs->nodes, root);
	if (root->id != FUSE_ROOT_ID) {
		free(root);
		return -ENOMEM;
	}
	fs->hash[hash_of(root->dev, root->ino)] = root;
	return 0;
}

void fs_nodes_forget_all(struct fs *fs)
{
	pthread_mutex_lock(&fs->lock);
	for (uint64_t id = FUSE_ROOT_ID + 1; id <= fs->nodes.used_to; id++) {
		struct fs_node *n = fs->nodes.slot[id];
		if (n)
			node_drop_lookups(fs, n, n->nlookup);
	}
	for (uint64_t id = 1; id <= fs->files.used_to; id++) {
		struct fs_file *f = fs->files.slot[id];
		if (f) {
			table_remove(&fs->files, id);
			file_unref(f);
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

void fs_nodes_free(struct fs *fs)
{
	if (!fs->hash)
		return;
	fs_nodes_forget_all(fs);
	struct fs_node *root = table_find(&fs->nodes, FUSE_ROOT_ID);
	free(root); /* its fd is fs->root_fd: the device closes it */
	free(fs->nodes.slot);
	free(fs->nodes.free_ids);
	free(fs->files.slot);
	free(fs->files.free_ids);
	free(fs->hash);
	fs->hash = NULL;
}

struct fs_node *fs_node_get(struct fs *fs, uint64_t id)
{
	pthread_mutex_lock(&fs->lock);
	struct fs_node *n = table_find(&fs->nodes, id);
	if (n && n->nlookup && n->fd >= 0)
		n->refs++;
	else
		n = NULL; /* a node the kernel forgot is not its to use any more, a lost one neither */
	pthread_mutex_unlock(&fs->lock);
	return n;
}

void fs_node_put(struct fs *fs, struct fs_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&fs->lock);
	node_unref(fs, n);
	pthread_mutex_unlock(&fs->lock);
}

void fs_node_forget(struct fs *fs, uint64_t id, uint64_t count)
{
	if (id == FUSE_ROOT_ID)
		return; /* the root stays for as long as the device */
	pthread_mutex_lock(&fs->lock);
	struct fs_node *n = table_find(&fs->nodes, id);
	if (n)
		node_drop_lookups(fs, n, count);
	pthread_mutex_unlock(&fs->lock);
}

bool fs_name_ok(const char *name)
{
	size_t len = strnlen(name, NAME_MAX + 1);

	return len && len <= NAME_MAX && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

void fs_node_procname(const struct fs_node *n, char buf[16])
{
	snprintf(buf, 16, "%d", n->fd);
}

uint64_t fs_cache_timeout(const struct fs *fs)
{
	switch (fs->cache) {
	case FS_CACHE_NEVER: return 0;
	case FS_CACHE_AUTO: return 1;
	default: return 86400;
	}
}

static void attr_fill(struct fuse_attr *a, const struct stat *st)
{
	*a = (struct fuse_attr){
		.ino = st->st_ino, .size = st->st_size, .blocks = st->st_blocks,
		.atime = st->st_atim.tv_sec, .mtime = st->st_mtim.tv_sec, .ctime = st->st_ctim.tv_sec,
		.atimensec = st->st_atim.tv_nsec, .mtimensec = st->st_mtim.tv_nsec, .ctimensec = st->st_ctim.tv_nsec,
		.mode = st->st_mode, .nlink = st->st_nlink, .uid = st->st_uid, .gid = st->st_gid,
		.rdev = st->st_rdev, .blksize = st->st_blksize,
	};
}

int fs_node_stat(struct fs *fs, const struct fs_node *n, struct fuse_attr *a)
{
	struct stat st;

	if (fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	attr_fill(a, &st);
	return 0;
}

int fs_node_open(struct fs *fs, const struct fs_node *n, int flags)
{
	char name[16];

	if (n->type != S_IFREG && n->type != S_IFDIR)
		return -EACCES; /* the guest's kernel opens devices, fifos and sockets itself */
	fs_node_procname(n, name);
	/* The magic link of our own handle: it reaches exactly that inode. */
	int fd = openat(fs->proc_fd, name, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int fs_open_beneath(int dir_fd, const char *path, int flags, mode_t mode)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC), .mode = mode,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS };

	return (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
}

int fs_node_lookup(struct fs *fs, struct fs_node *dir, const char *name, struct fuse_entry_out *e)
{
	struct stat st;
	int fd = fs_open_beneath(dir->fd, name, O_PATH, 0);

	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int e2 = -errno;
		close(fd);
		return e2;
	}
	pthread_mutex_lock(&fs->lock);
	struct fs_node *n = hash_find(fs, st.st_dev, st.st_ino);
	if (n && !n->nlookup)
		n->refs++; /* a node still held by a request: the kernel takes it up again */
	if (n) {
		close(fd);
	} else {
		n = calloc(1, sizeof(*n));
		if (n) {
			*n = (struct fs_node){ .fd = fd, .dev = st.st_dev, .ino = st.st_ino,
					       .type = st.st_mode & S_IFMT, .refs = 1 };
			n->id = table_add(&fs->nodes, n);
		}
		if (!n || !n->id) {
			pthread_mutex_unlock(&fs->lock);
			free(n);
			close(fd);
			return -ENOMEM;
		}
		hash_insert(fs, n);
	}
	n->nlookup++;
	uint64_t id = n->id;
	pthread_mutex_unlock(&fs->lock);

	uint64_t t = fs_cache_timeout(fs);
	*e = (struct fuse_entry_out){ .nodeid = id, .entry_valid = t, .attr_valid = t };
	attr_fill(&e->attr, &st);
	if (fs->announce_submounts && st.st_dev != dir->dev && S_ISDIR(st.st_mode))
		e->attr.flags |= FUSE_ATTR_SUBMOUNT;
	return 0;
}

/* ---- open files ------------------------------------------------------------------- */

int fs_file_new(struct fs *fs, int fd, uint64_t *id)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->refs = 1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_lock(&fs->lock);
	f->id = table_add(&fs->files, f);
	pthread_mutex_unlock(&fs->lock);
	if (!f->id) {
		close(fd);
		free(f);
		return -ENOMEM;
	}
	*id = f->id;
	return 0;
}

struct fs_file *fs_file_get(struct fs *fs, uint64_t id)
{
	pthread_mutex_lock(&fs->lock);
	struct fs_file *f = table_find(&fs->files, id);
	if (f && f->fd >= 0)
		f->refs++;
	else
		f = NULL; /* unknown, or lost in a migration */
	pthread_mutex_unlock(&fs->lock);
	return f;
}

void fs_file_put(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->lock);
	file_unref(f);
	pthread_mutex_unlock(&fs->lock);
}

int fs_file_release(struct fs *fs, uint64_t id)
{
	pthread_mutex_lock(&fs->lock);
	struct fs_file *f = table_find(&fs->files, id);
	if (f) {
		table_remove(&fs->files, id);
		file_unref(f);
	}
	pthread_mutex_unlock(&fs->lock);
	return f ? 0 : -EBADF;
}

/* ---- a migration's load (dev/fs-migrate.c) ---------------------------------------- */

void fs_nodes_restart(struct fs *fs)
{
	fs_nodes_forget_all(fs);
	pthread_mutex_lock(&fs->lock);
	fs->nodes.used_to = FUSE_ROOT_ID; /* every node but the root is gone: no id is in use */
	fs->nodes.nfree = 0;
	fs->files.used_to = 0;
	fs->files.nfree = 0;
	pthread_mutex_unlock(&fs->lock);
}

uint64_t fs_node_id_of(struct fs *fs, dev_t dev, ino_t ino)
{
	pthread_mutex_lock(&fs->lock);
	struct fs_node *n = hash_find(fs, dev, ino);
	uint64_t id = n && n->nlookup ? n->id : 0;
	pthread_mutex_unlock(&fs->lock);
	return id;
}

int fs_node_restore(struct fs *fs, uint64_t id, int fd, mode_t type, uint64_t nlookup)
{
	struct fs_node *n = calloc(1, sizeof(*n));
	struct stat st;

	if (!n) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	*n = (struct fs_node){ .id = id, .fd = -1, .type = type, .nlookup = nlookup, .refs = 1 };
	pthread_mutex_lock(&fs->lock);
	/* One node per inode: a second path to one already known is a lost node. */
	if (fd >= 0 && fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
	    (st.st_mode & S_IFMT) == type && !hash_find(fs, st.st_dev, st.st_ino)) {
		n->fd = fd;
		n->dev = st.st_dev;
		n->ino = st.st_ino;
		hash_insert(fs, n);
	} else if (fd >= 0) {
		close(fd);
	}
	if (!table_place(&fs->nodes, id, n)) {
		hash_remove(fs, n);
		pthread_mutex_unlock(&fs->lock);
		if (n->fd >= 0)
			close(n->fd);
		free(n);
		return -ENOMEM;
	}
	pthread_mutex_unlock(&fs->lock);
	return n->fd >= 0 ? 0 : -ESTALE;
}

int fs_file_restore(struct fs *fs, uint64_t id, int fd)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (!f) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	*f = (struct fs_file){ .id = id, .fd = fd, .refs = 1 };
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_lock(&fs->lock);
	bool placed = table_place(&fs->files, id, f);
	pthread_mutex_unlock(&fs->lock);
	if (!placed) {
		if (fd >= 0)
			close(fd);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return -ENOMEM;
	}
	return 0;
}
