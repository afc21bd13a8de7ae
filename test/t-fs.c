/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-fs through the test front-end, which plays the guest's virtiofs driver:
 * FUSE requests are built in guest memory by hand (header and arguments in one
 * device-readable buffer, a write's data in others, the reply in device-writable
 * ones, split to exercise the slicing) and every answer is checked, then the shared
 * directory is checked from here.
 *
 * Every opcode the device serves; before INIT, a second INIT, DESTROY; malformed and
 * hostile requests (short headers, a wrong length, unknown and forgotten nodeids,
 * names with '/', NUL-less names, ".", "..", over-long names, sizes larger than what
 * was sent, FORGET counts larger than what was sent, unknown opcodes); escapes
 * (symlinks out of the share are never followed, magic links, hard links of unknown
 * nodes); SETLKW waiting without stalling other requests, and given up when the ring
 * stops; --readonly; the command line (usage errors, -o); fds back to where they were;
 * SIGTERM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "test/check.h"
#include "test/frontend.h"

#define RING 64
#define REQ_MAX (1u << 20)
#define REPLY_MAX (1u << 20)
#define MANY 5000             /* inodes known when a state is saved */

static char dir[] = "/tmp/t-fs.XXXXXX";
static char share[80], outside[100], sockp[80], logpath[80];

struct conn {
	struct vuf *f;
	struct vuf_vq *hiprio, *req;
	uint64_t in_gpa, data_gpa, out_gpa;
	uint64_t unique;
};

struct reply {
	int error;              /* the header's (a -errno), or 1 when no proper reply came */
	uint32_t len;           /* body bytes */
	uint32_t used;          /* what the device said it wrote */
	uint8_t body[65536 + 4096] __attribute__((aligned(8)));
};

static uint32_t req_uid, req_gid;     /* the ids requests carry */
static uint16_t req_extlen;           /* and their total_extlen (the last bytes of the arguments) */
static pid_t backend_pid;             /* the main back-end's */

static const uint64_t features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
				 1ull << VIRTIO_RING_F_INDIRECT_DESC;
static const uint64_t pfs = 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_MQ | 1ull << VU_PF_RESET_DEVICE |
			   1ull << VU_PF_DEVICE_STATE;

/* Connected and negotiated, no ring set up yet (a migration's destination loads its state first). */
static bool conn_connect(struct conn *c, const char *sock)
{
	memset(c, 0, sizeof(*c));
	c->f = vuf_connect(sock, 3000);
	if (c->f && vuf_mem_init(c->f, 1, 64 << 20, 0) == 0 && vuf_negotiate(c->f, features, pfs) == 0)
		return true;
	check_note("connect: %s", c->f ? vuf_error(c->f) : "no connection");
	vuf_close(c->f);
	c->f = NULL;
	return false;
}

/* The rings started and the request buffers placed. */
static bool conn_rings(struct conn *c)
{
	c->hiprio = vuf_vq_setup(c->f, 0, RING, 0);
	c->req = vuf_vq_setup(c->f, 1, RING, 0);
	c->in_gpa = vuf_alloc(c->f, 65536 + 4096, 64);
	c->data_gpa = vuf_alloc(c->f, REQ_MAX, 4096);
	c->out_gpa = vuf_alloc(c->f, REPLY_MAX + 4096, 4096);
	if (c->hiprio && c->req && c->in_gpa && c->data_gpa && c->out_gpa)
		return true;
	check_note("rings: %s", vuf_error(c->f));
	vuf_close(c->f);
	c->f = NULL;
	return false;
}

static bool conn_open(struct conn *c, const char *sock)
{
	return conn_connect(c, sock) && conn_rings(c);
}

static void conn_close(struct conn *c)
{
	vuf_close(c->f);
	c->f = NULL;
}

/*
 * Puts a request on queue q: header + args (one buffer), then data (a second
 * buffer, for WRITE), then a reply room of out_room bytes in two buffers. raw_len,
 * when not 0, is put in the header's len instead of the true size.
 */
static int post(struct conn *c, struct vuf_vq *q, uint32_t opcode, uint64_t nodeid, const void *args, size_t alen,
		const void *data, size_t dlen, uint32_t out_room, uint32_t raw_len)
{
	struct fuse_in_header h = { .len = (uint32_t)(sizeof(h) + alen + dlen), .opcode = opcode,
				    .unique = ++c->unique, .nodeid = nodeid, .uid = req_uid, .gid = req_gid,
				    .total_extlen = req_extlen };
	struct vuf_buf out[2] = { { c->in_gpa, (uint32_t)(sizeof(h) + alen) }, { c->data_gpa, (uint32_t)dlen } };
	struct vuf_buf in[2] = { { c->out_gpa, 40 }, { c->out_gpa + 40, out_room > 40 ? out_room - 40 : 0 } };

	if (raw_len)
		h.len = raw_len;
	if (vuf_gpa_write(c->f, c->in_gpa, &h, sizeof(h)) < 0 ||
	    (alen && vuf_gpa_write(c->f, c->in_gpa + sizeof(h), args, alen) < 0) ||
	    (dlen && vuf_gpa_write(c->f, c->data_gpa, data, dlen) < 0))
		return -1;
	if (out_room <= 40)
		in[0].len = out_room;
	int head = vuf_vq_add(q, out, dlen ? 2 : 1, in, out_room > 40 ? 2 : out_room ? 1 : 0, false);
	return head < 0 || vuf_vq_kick(q) < 0 ? -1 : 0;
}

/* Waits for the completion on q and reads the reply. */
static void collect(struct conn *c, struct vuf_vq *q, struct reply *r, int timeout_ms)
{
	struct fuse_out_header oh;
	uint32_t id;

	r->error = 1;
	r->len = 0;
	if (vuf_vq_wait_used(q, &id, &r->used, timeout_ms) < 0)
		return;
	if (r->used < sizeof(oh) || vuf_gpa_read(c->f, c->out_gpa, &oh, sizeof(oh)) < 0 || oh.len != r->used ||
	    oh.unique != c->unique)
		return;
	r->error = oh.error;
	r->len = oh.len - (uint32_t)sizeof(oh);
	/* Larger bodies (a 1 MiB read) are read from guest memory by the case itself. */
	if (r->len && r->len <= sizeof(r->body))
		vuf_gpa_read(c->f, c->out_gpa + sizeof(oh), r->body, r->len);
}

/* One request on the request queue with data and a reply room; the reply's error. */
static int call_data(struct conn *c, uint32_t opcode, uint64_t nodeid, const void *args, size_t alen, const void *data,
		     size_t dlen, struct reply *r, uint32_t room)
{
	if (post(c, c->req, opcode, nodeid, args, alen, data, dlen, room, 0) < 0) {
		r->error = 1;
		return 1;
	}
	collect(c, c->req, r, 5000);
	return r->error;
}

static int call(struct conn *c, uint32_t opcode, uint64_t nodeid, const void *args, size_t alen, struct reply *r)
{
	return call_data(c, opcode, nodeid, args, alen, NULL, 0, r, 65536 + 4096);
}

/* Arguments followed by one or two NUL-terminated strings. */
static size_t with_names(uint8_t *buf, const void *args, size_t alen, const char *a, const char *b)
{
	size_t n = alen;

	if (alen)
		memcpy(buf, args, alen);
	memcpy(buf + n, a, strlen(a) + 1);
	n += strlen(a) + 1;
	if (b) {
		memcpy(buf + n, b, strlen(b) + 1);
		n += strlen(b) + 1;
	}
	return n;
}

static struct reply rep;
static struct conn cn;

/* LOOKUP; the nodeid, 0 on failure (*err says why). */
static uint64_t lookup(uint64_t parent, const char *name, int *err)
{
	int e = call(&cn, FUSE_LOOKUP, parent, name, strlen(name) + 1, &rep);
	if (err)
		*err = e;
	return !e && rep.len == sizeof(struct fuse_entry_out) ? ((struct fuse_entry_out *)rep.body)->nodeid : 0;
}

static void forget(uint64_t node, uint64_t n)
{
	struct fuse_forget_in in = { .nlookup = n };
	if (post(&cn, cn.hiprio, FUSE_FORGET, node, &in, sizeof(in), NULL, 0, 0, 0) == 0)
		collect(&cn, cn.hiprio, &rep, 3000);
}

static char *host(const char *name)
{
	static char p[200];
	snprintf(p, sizeof(p), "%s/%s", share, name);
	return p;
}

static uint64_t open_file(uint64_t node, uint32_t flags)
{
	struct fuse_open_in in = { .flags = flags };
	return call(&cn, FUSE_OPEN, node, &in, sizeof(in), &rep) == 0 ? ((struct fuse_open_out *)rep.body)->fh : 0;
}

static void release(uint64_t node, uint64_t fh, bool dir_)
{
	struct fuse_release_in in = { .fh = fh };
	call(&cn, dir_ ? FUSE_RELEASEDIR : FUSE_RELEASE, node, &in, sizeof(in), &rep);
}

/* ---- the cases --------------------------------------------------------------------------- */

static void test_init(void)
{
	struct fuse_getattr_in ga = { 0 };
	CHECK_EQ(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), &rep), -EIO, "before-init-eio");

	struct fuse_init_in in = { .major = 7, .minor = 37, .max_readahead = 131072,
				   .flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS |
					    FUSE_WRITEBACK_CACHE | FUSE_SETXATTR_EXT };
	CHECK_EQ(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep), 0, "init");
	struct fuse_init_out *o = (struct fuse_init_out *)rep.body;
	CHECK(rep.len == sizeof(*o) && o->major == 7 && o->minor == 33 && o->max_write == 1u << 20 && o->max_pages == 256,
	      "init-reply");
	CHECK(o->flags == (FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS),
	      "init-flags-only-what-both-have");
	CHECK_EQ(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep), -EPROTO, "init-twice-refused");
	struct fuse_init_in old = { .major = 7, .minor = 20 };
	CHECK_EQ(call(&cn, FUSE_INIT, 0, &old, sizeof(old), &rep), -EPROTO, "init-too-old-refused");
	CHECK_EQ(call(&cn, FUSE_INIT, 0, &in, 4, &rep), -EINVAL, "init-short-refused");
}

static void test_lookup(void)
{
	int err;
	uint64_t n = lookup(FUSE_ROOT_ID, "hello", &err);
	CHECK(n > 1 && ((struct fuse_entry_out *)rep.body)->attr.size == 6, "lookup");
	CHECK_EQ(lookup(FUSE_ROOT_ID, "hello", NULL), n, "lookup-same-node");
	forget(n, 2);
	CHECK_EQ(lookup(FUSE_ROOT_ID, "nothing-here", &err), 0, "lookup-missing");
	CHECK_EQ(err, -ENOENT, "lookup-missing-enoent");

	static const char *const bad[] = { "a/b", "/etc", ".", "..", "", "../outside" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lookup(FUSE_ROOT_ID, bad[i], &err);
		CHECK_EQ(err, -EINVAL, "lookup-refused-%u", i);
	}
	char longname[NAME_MAX + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	lookup(FUSE_ROOT_ID, longname, &err);
	CHECK_EQ(err, -EINVAL, "lookup-name-too-long");
	CHECK_EQ(call(&cn, FUSE_LOOKUP, FUSE_ROOT_ID, "hello", 5, &rep), -EINVAL, "lookup-name-without-nul");
	CHECK_EQ(call(&cn, FUSE_LOOKUP, FUSE_ROOT_ID, "hello\0", 6, &rep), 0, "lookup-name-with-nul");
	forget(((struct fuse_entry_out *)rep.body)->nodeid, 1);
	CHECK_EQ(call(&cn, FUSE_LOOKUP, 12345678, "hello", 6, &rep), -ESTALE, "lookup-unknown-parent");
	CHECK_EQ(call(&cn, FUSE_LOOKUP, 0, "hello", 6, &rep), -ESTALE, "lookup-nodeid-0");
	CHECK_EQ(call(&cn, FUSE_LOOKUP, ~0ull, "hello", 6, &rep), -ESTALE, "lookup-nodeid-max");

	/* FORGET: a node the kernel forgot is unknown. */
	n = lookup(FUSE_ROOT_ID, "hello", NULL);
	lookup(FUSE_ROOT_ID, "hello", NULL);
	forget(n, 1);
	struct fuse_getattr_in ga = { 0 };
	CHECK_EQ(call(&cn, FUSE_GETATTR, n, &ga, sizeof(ga), &rep), 0, "forget-one-of-two");
	forget(n, 1);
	CHECK_EQ(call(&cn, FUSE_GETATTR, n, &ga, sizeof(ga), &rep), -ESTALE, "forgotten-node-stale");
	forget(FUSE_ROOT_ID, 100);
	CHECK_EQ(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), &rep), 0, "root-never-forgotten");

	/* BATCH_FORGET whose count claims more than was sent. */
	uint64_t a = lookup(FUSE_ROOT_ID, "hello", NULL), b = lookup(FUSE_ROOT_ID, "sub", NULL);
	struct {
		struct fuse_batch_forget_in h;
		struct fuse_forget_one one[2];
	} bf = { { .count = 1000000 }, { { a, 1 }, { b, 1 } } };
	CHECK(post(&cn, cn.hiprio, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0, 0, 0) == 0, "batch-forget-posted");
	collect(&cn, cn.hiprio, &rep, 3000);
	CHECK_EQ(rep.used, 0, "batch-forget-no-reply");
	CHECK_EQ(call(&cn, FUSE_GETATTR, a, &ga, sizeof(ga), &rep), -ESTALE, "batch-forget-first");
	CHECK_EQ(call(&cn, FUSE_GETATTR, b, &ga, sizeof(ga), &rep), -ESTALE, "batch-forget-second");
}

static void test_attrs(void)
{
	struct fuse_getattr_in ga = { 0 };
	CHECK(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), &rep) == 0 &&
	      S_ISDIR(((struct fuse_attr_out *)rep.body)->attr.mode), "getattr-root");
	CHECK_EQ(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, 4, &rep), -EINVAL, "getattr-short");

	uint64_t n = lookup(FUSE_ROOT_ID, "hello", NULL);
	struct fuse_setattr_in sa = { .valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME, .mode = 0600, .size = 3,
				      .mtime = 1000000000 };
	CHECK_EQ(call(&cn, FUSE_SETATTR, n, &sa, sizeof(sa), &rep), 0, "setattr");
	struct stat st;
	CHECK(stat(host("hello"), &st) == 0 && (st.st_mode & 07777) == 0600 && st.st_size == 3 &&
	      st.st_mtime == 1000000000, "setattr-host");
	CHECK(((struct fuse_attr_out *)rep.body)->attr.size == 3, "setattr-reply-attr");
	sa = (struct fuse_setattr_in){ .valid = FATTR_FH | FATTR_SIZE, .fh = 999999, .size = 1 };
	CHECK_EQ(call(&cn, FUSE_SETATTR, n, &sa, sizeof(sa), &rep), -EBADF, "setattr-bad-fh");
	sa = (struct fuse_setattr_in){ .valid = FATTR_SIZE, .size = ~0ull };
	CHECK(call(&cn, FUSE_SETATTR, n, &sa, sizeof(sa), &rep) < 0, "setattr-huge-size-refused");
	forget(n, 1);

	CHECK(call(&cn, FUSE_STATFS, FUSE_ROOT_ID, NULL, 0, &rep) == 0 &&
	      ((struct fuse_statfs_out *)rep.body)->st.bsize > 0, "statfs");
	struct fuse_access_in ac = { .mask = R_OK | X_OK };
	CHECK_EQ(call(&cn, FUSE_ACCESS, FUSE_ROOT_ID, &ac, sizeof(ac), &rep), 0, "access");
	ac.mask = 0x100;
	CHECK_EQ(call(&cn, FUSE_ACCESS, FUSE_ROOT_ID, &ac, sizeof(ac), &rep), -EINVAL, "access-bad-mask");
	struct fuse_syncfs_in sf = { 0 };
	CHECK_EQ(call(&cn, FUSE_SYNCFS, FUSE_ROOT_ID, &sf, sizeof(sf), &rep), 0, "syncfs");
}

static void test_names(void)
{
	uint8_t buf[600];
	struct fuse_mkdir_in md = { .mode = 0750 };
	size_t n = with_names(buf, &md, sizeof(md), "newdir", NULL);
	CHECK(call(&cn, FUSE_MKDIR, FUSE_ROOT_ID, buf, n, &rep) == 0 && ((struct fuse_entry_out *)rep.body)->nodeid > 1,
	      "mkdir");
	struct stat st;
	CHECK(stat(host("newdir"), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0750, "mkdir-host");
	uint64_t d = ((struct fuse_entry_out *)rep.body)->nodeid;
	n = with_names(buf, &md, sizeof(md), "../escape", NULL);
	CHECK_EQ(call(&cn, FUSE_MKDIR, FUSE_ROOT_ID, buf, n, &rep), -EINVAL, "mkdir-dotdot-refused");
	CHECK(access(host("../escape"), F_OK) < 0, "mkdir-dotdot-host");

	struct fuse_mknod_in mn = { .mode = S_IFIFO | 0600 };
	n = with_names(buf, &mn, sizeof(mn), "fifo", NULL);
	CHECK(call(&cn, FUSE_MKNOD, d, buf, n, &rep) == 0 && stat(host("newdir/fifo"), &st) == 0 && S_ISFIFO(st.st_mode),
	      "mknod-fifo");
	uint64_t fifo = ((struct fuse_entry_out *)rep.body)->nodeid;
	CHECK_EQ(open_file(fifo, O_RDONLY), 0, "open-fifo-refused");
	mn.mode = S_IFBLK | 0600;
	mn.rdev = makedev(8, 0);
	n = with_names(buf, &mn, sizeof(mn), "disk", NULL);
	CHECK(call(&cn, FUSE_MKNOD, d, buf, n, &rep) == -EPERM && access(host("newdir/disk"), F_OK) < 0,
	      "mknod-device-refused");

	n = with_names(buf, NULL, 0, "link-out", "/etc/passwd");
	CHECK(call(&cn, FUSE_SYMLINK, d, buf, n, &rep) == 0, "symlink");
	uint64_t sl = ((struct fuse_entry_out *)rep.body)->nodeid;
	CHECK(call(&cn, FUSE_READLINK, sl, NULL, 0, &rep) == 0 && rep.len == 11 && !memcmp(rep.body, "/etc/passwd", 11),
	      "readlink");
	CHECK_EQ(call(&cn, FUSE_READLINK, d, NULL, 0, &rep), -EINVAL, "readlink-not-a-link");
	/* Nothing goes through a symlink: not a lookup beneath it, not an open of it. */
	int err;
	lookup(sl, "passwd", &err);
	CHECK_EQ(err, -ENOTDIR, "lookup-through-symlink-refused");
	CHECK_EQ(open_file(sl, O_RDONLY), 0, "open-symlink-refused");
	struct fuse_getattr_in ga = { 0 };
	CHECK(call(&cn, FUSE_GETATTR, sl, &ga, sizeof(ga), &rep) == 0 &&
	      S_ISLNK(((struct fuse_attr_out *)rep.body)->attr.mode), "getattr-symlink-not-followed");
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };
	CHECK_EQ(call(&cn, FUSE_SETATTR, sl, &sa, sizeof(sa), &rep), -EOPNOTSUPP, "chmod-symlink-not-followed");
	CHECK(stat("/etc/passwd", &st) == 0 && (st.st_mode & 0777) != 0777, "chmod-symlink-host-untouched");
	/* A symlink to the outside, then a hard link of it: still just the link. */
	n = with_names(buf, NULL, 0, "out", outside);
	call(&cn, FUSE_SYMLINK, FUSE_ROOT_ID, buf, n, &rep);
	uint64_t out = ((struct fuse_entry_out *)rep.body)->nodeid;
	struct fuse_link_in li = { .oldnodeid = out };
	n = with_names(buf, &li, sizeof(li), "out-hard", NULL);
	CHECK(call(&cn, FUSE_LINK, FUSE_ROOT_ID, buf, n, &rep) == 0 && lstat(host("out-hard"), &st) == 0 &&
	      S_ISLNK(st.st_mode), "link-of-symlink-is-a-symlink");
	struct fuse_open_in oi = { .flags = O_RDONLY };
	CHECK_EQ(call(&cn, FUSE_OPEN, ((struct fuse_entry_out *)rep.body)->nodeid, &oi, sizeof(oi), &rep), -EACCES,
	      "open-link-to-outside-refused");
	li.oldnodeid = 987654321;
	n = with_names(buf, &li, sizeof(li), "bogus", NULL);
	CHECK_EQ(call(&cn, FUSE_LINK, FUSE_ROOT_ID, buf, n, &rep), -ESTALE, "link-unknown-node");
	li.oldnodeid = d;
	n = with_names(buf, &li, sizeof(li), "dirlink", NULL);
	CHECK_EQ(call(&cn, FUSE_LINK, FUSE_ROOT_ID, buf, n, &rep), -EPERM, "link-directory-refused");

	uint64_t h = lookup(FUSE_ROOT_ID, "hello", NULL);
	li.oldnodeid = h;
	n = with_names(buf, &li, sizeof(li), "hello2", NULL);
	CHECK(call(&cn, FUSE_LINK, d, buf, n, &rep) == 0 && ((struct fuse_entry_out *)rep.body)->nodeid == h &&
	      ((struct fuse_entry_out *)rep.body)->attr.nlink == 2, "link-same-node");

	struct fuse_rename_in rn = { .newdir = FUSE_ROOT_ID };
	n = with_names(buf, &rn, sizeof(rn), "hello2", "renamed");
	CHECK(call(&cn, FUSE_RENAME, d, buf, n, &rep) == 0 && access(host("renamed"), F_OK) == 0 &&
	      access(host("newdir/hello2"), F_OK) < 0, "rename");
	n = with_names(buf, &rn, sizeof(rn), "renamed", "../../renamed");
	CHECK_EQ(call(&cn, FUSE_RENAME, FUSE_ROOT_ID, buf, n, &rep), -EINVAL, "rename-out-refused");
	struct fuse_rename2_in r2 = { .newdir = FUSE_ROOT_ID, .flags = RENAME_NOREPLACE };
	n = with_names(buf, &r2, sizeof(r2), "renamed", "hello");
	CHECK_EQ(call(&cn, FUSE_RENAME2, FUSE_ROOT_ID, buf, n, &rep), -EEXIST, "rename2-noreplace");
	r2.flags = RENAME_EXCHANGE;
	n = with_names(buf, &r2, sizeof(r2), "renamed", "hello");
	CHECK_EQ(call(&cn, FUSE_RENAME2, FUSE_ROOT_ID, buf, n, &rep), 0, "rename2-exchange");
	r2.flags = 0x100;
	n = with_names(buf, &r2, sizeof(r2), "renamed", "hello");
	CHECK_EQ(call(&cn, FUSE_RENAME2, FUSE_ROOT_ID, buf, n, &rep), -EINVAL, "rename2-bad-flags");
	struct fuse_rename_in rb = { .newdir = 555555 };
	n = with_names(buf, &rb, sizeof(rb), "renamed", "x");
	CHECK_EQ(call(&cn, FUSE_RENAME, FUSE_ROOT_ID, buf, n, &rep), -ESTALE, "rename-unknown-newdir");

	CHECK_EQ(call(&cn, FUSE_UNLINK, FUSE_ROOT_ID, "renamed", 8, &rep), 0, "unlink");
	CHECK(access(host("renamed"), F_OK) < 0, "unlink-host");
	CHECK_EQ(call(&cn, FUSE_UNLINK, FUSE_ROOT_ID, "..", 3, &rep), -EINVAL, "unlink-dotdot-refused");
	CHECK_EQ(call(&cn, FUSE_RMDIR, FUSE_ROOT_ID, "newdir", 7, &rep), -ENOTEMPTY, "rmdir-not-empty");
	call(&cn, FUSE_UNLINK, d, "fifo", 5, &rep);
	call(&cn, FUSE_UNLINK, d, "link-out", 9, &rep);
	CHECK_EQ(call(&cn, FUSE_RMDIR, FUSE_ROOT_ID, "newdir", 7, &rep), 0, "rmdir");
	CHECK(access(host("newdir"), F_OK) < 0, "rmdir-host");
	forget(fifo, 1);
	forget(sl, 1);
	forget(d, 1);
}

static void test_files(void)
{
	uint8_t buf[600];
	struct fuse_create_in cr = { .flags = O_RDWR | O_EXCL, .mode = S_IFREG | 0640 };
	size_t n = with_names(buf, &cr, sizeof(cr), "data", NULL);
	CHECK_EQ(call(&cn, FUSE_CREATE, FUSE_ROOT_ID, buf, n, &rep), 0, "create");
	struct fuse_entry_out *e = (struct fuse_entry_out *)rep.body;
	struct fuse_open_out *o = (struct fuse_open_out *)(rep.body + sizeof(*e));
	uint64_t node = e->nodeid, fh = o->fh;
	CHECK(rep.len == sizeof(*e) + sizeof(*o) && node > 1 && fh, "create-reply");
	CHECK_EQ(call(&cn, FUSE_CREATE, FUSE_ROOT_ID, buf, n, &rep), -EEXIST, "create-excl");

	/* A 1 MiB write from its own buffer, read back into two. */
	static uint8_t data[1 << 20], back[1 << 20];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	struct fuse_write_in wi = { .fh = fh, .offset = 4096, .size = sizeof(data) };
	CHECK(call_data(&cn, FUSE_WRITE, node, &wi, sizeof(wi), data, sizeof(data), &rep, 64) == 0 &&
	      ((struct fuse_write_out *)rep.body)->size == sizeof(data), "write-1mib");
	FILE *hf = fopen(host("data"), "rb");
	CHECK(hf && fseek(hf, 4096, SEEK_SET) == 0 && fread(back, 1, sizeof(back), hf) == sizeof(back) &&
	      !memcmp(back, data, sizeof(data)), "write-host");
	if (hf)
		fclose(hf);
	struct fuse_read_in ri = { .fh = fh, .offset = 4096, .size = sizeof(data) };
	if (post(&cn, cn.req, FUSE_READ, node, &ri, sizeof(ri), NULL, 0, sizeof(data) + 16, 0) == 0) {
		collect(&cn, cn.req, &rep, 5000);
		CHECK(rep.error == 0 && rep.used == sizeof(data) + 16 &&
		      vuf_gpa_read(cn.f, cn.out_gpa + 16, back, sizeof(back)) == 0 && !memcmp(back, data, sizeof(data)),
		      "read-1mib-two-buffers");
	}
	ri = (struct fuse_read_in){ .fh = fh, .offset = 4096 + sizeof(data) - 10, .size = 100 };
	CHECK(call(&cn, FUSE_READ, node, &ri, sizeof(ri), &rep) == 0 && rep.len == 10, "read-short-at-end");
	ri.size = 1u << 30; /* more than the room: what fits */
	CHECK(call_data(&cn, FUSE_READ, node, &ri, sizeof(ri), NULL, 0, &rep, 16 + 4) == 0 && rep.len == 4,
	      "read-clamped-to-room");
	ri.fh = 424242;
	CHECK_EQ(call(&cn, FUSE_READ, node, &ri, sizeof(ri), &rep), -EBADF, "read-bad-fh");

	/* Writes claiming more than they carry. */
	wi = (struct fuse_write_in){ .fh = fh, .offset = 0, .size = 100 };
	CHECK_EQ(call_data(&cn, FUSE_WRITE, node, &wi, sizeof(wi), data, 50, &rep, 64), -EINVAL, "write-size-over-data");
	wi.size = 0xffffffffu;
	CHECK_EQ(call_data(&cn, FUSE_WRITE, node, &wi, sizeof(wi), data, 50, &rep, 64), -EINVAL, "write-huge-size");
	wi = (struct fuse_write_in){ .fh = fh, .offset = ~0ull, .size = 10 };
	CHECK_EQ(call_data(&cn, FUSE_WRITE, node, &wi, sizeof(wi), data, 10, &rep, 64), -EINVAL, "write-huge-offset");

	struct fuse_flush_in fl = { .fh = fh };
	CHECK_EQ(call(&cn, FUSE_FLUSH, node, &fl, sizeof(fl), &rep), 0, "flush");
	struct fuse_fsync_in fs = { .fh = fh, .fsync_flags = 1 };
	CHECK_EQ(call(&cn, FUSE_FSYNC, node, &fs, sizeof(fs), &rep), 0, "fsync");

	struct fuse_fallocate_in fa = { .fh = fh, .offset = 0, .length = 8 << 20 };
	struct stat st;
	CHECK(call(&cn, FUSE_FALLOCATE, node, &fa, sizeof(fa), &rep) == 0 && stat(host("data"), &st) == 0 &&
	      st.st_size == 8 << 20, "fallocate");
	struct fuse_lseek_in ls = { .fh = fh, .offset = 0, .whence = SEEK_DATA };
	CHECK(call(&cn, FUSE_LSEEK, node, &ls, sizeof(ls), &rep) == 0 && rep.len == sizeof(struct fuse_lseek_out),
	      "lseek-data");
	ls.whence = SEEK_SET;
	CHECK_EQ(call(&cn, FUSE_LSEEK, node, &ls, sizeof(ls), &rep), -EINVAL, "lseek-other-whence");

	/* COPY_FILE_RANGE into a second file. */
	n = with_names(buf, &(struct fuse_create_in){ .flags = O_RDWR, .mode = S_IFREG | 0644 }, sizeof(cr), "copy", NULL);
	call(&cn, FUSE_CREATE, FUSE_ROOT_ID, buf, n, &rep);
	uint64_t node2 = ((struct fuse_entry_out *)rep.body)->nodeid;
	uint64_t fh2 = ((struct fuse_open_out *)(rep.body + sizeof(struct fuse_entry_out)))->fh;
	struct fuse_copy_file_range_in cf = { .fh_in = fh, .off_in = 4096, .nodeid_out = node2, .fh_out = fh2,
					      .off_out = 0, .len = 65536 };
	CHECK(call(&cn, FUSE_COPY_FILE_RANGE, node, &cf, sizeof(cf), &rep) == 0 &&
	      ((struct fuse_write_out *)rep.body)->size == 65536, "copy-file-range");
	hf = fopen(host("copy"), "rb");
	CHECK(hf && fread(back, 1, 65536, hf) == 65536 && !memcmp(back, data, 65536), "copy-file-range-host");
	if (hf)
		fclose(hf);
	cf.flags = 1;
	CHECK_EQ(call(&cn, FUSE_COPY_FILE_RANGE, node, &cf, sizeof(cf), &rep), -EINVAL, "copy-file-range-flags");

	/* xattrs (--xattr). */
	uint8_t xb[600];
	struct fuse_setxattr_in sx = { .size = 5 };
	n = with_names(xb, &sx, 8, "user.t", NULL);
	memcpy(xb + n, "hello", 5);
	CHECK_EQ(call(&cn, FUSE_SETXATTR, node, xb, n + 5, &rep), 0, "setxattr");
	char v[16] = "";
	CHECK(getxattr(host("data"), "user.t", v, sizeof(v)) == 5 && !memcmp(v, "hello", 5), "setxattr-host");
	sx.size = 500;
	n = with_names(xb, &sx, 8, "user.t", NULL);
	CHECK_EQ(call(&cn, FUSE_SETXATTR, node, xb, n + 5, &rep), -EINVAL, "setxattr-size-over-data");
	struct fuse_getxattr_in gx = { .size = 0 };
	n = with_names(xb, &gx, sizeof(gx), "user.t", NULL);
	CHECK(call(&cn, FUSE_GETXATTR, node, xb, n, &rep) == 0 && ((struct fuse_getxattr_out *)rep.body)->size == 5,
	      "getxattr-size");
	gx.size = 64;
	n = with_names(xb, &gx, sizeof(gx), "user.t", NULL);
	CHECK(call(&cn, FUSE_GETXATTR, node, xb, n, &rep) == 0 && rep.len == 5 && !memcmp(rep.body, "hello", 5),
	      "getxattr");
	gx.size = 2;
	n = with_names(xb, &gx, sizeof(gx), "user.t", NULL);
	CHECK_EQ(call(&cn, FUSE_GETXATTR, node, xb, n, &rep), -ERANGE, "getxattr-erange");
	gx.size = 256;
	CHECK(call(&cn, FUSE_LISTXATTR, node, &gx, sizeof(gx), &rep) == 0 && memmem(rep.body, rep.len, "user.t", 7),
	      "listxattr");
	CHECK_EQ(call(&cn, FUSE_REMOVEXATTR, node, "user.t", 7, &rep), 0, "removexattr");
	CHECK(getxattr(host("data"), "user.t", v, sizeof(v)) < 0, "removexattr-host");
	CHECK_EQ(call(&cn, FUSE_REMOVEXATTR, node, "user.t", 6, &rep), -EINVAL, "removexattr-name-without-nul");

	release(node2, fh2, false);
	release(node, fh, false);
	CHECK_EQ(call(&cn, FUSE_FLUSH, node, &fl, sizeof(fl), &rep), -EBADF, "flush-after-release");
	struct fuse_release_in rl = { .fh = fh };
	CHECK_EQ(call(&cn, FUSE_RELEASE, node, &rl, sizeof(rl), &rep), -EBADF, "release-twice");
	uint64_t t = open_file(node, O_WRONLY | O_TRUNC);
	CHECK(t != 0, "open-truncate");
	CHECK(stat(host("data"), &st) == 0 && st.st_size == 0, "open-truncate-host");
	release(node, t, false);
	CHECK_EQ(open_file(FUSE_ROOT_ID, O_RDONLY), 0, "open-directory-refused");
	CHECK_EQ(rep.error, -EISDIR, "open-directory-eisdir");
	forget(node, 2);
	forget(node2, 1);
}

static void test_readdir(void)
{
	/* 300 entries: several READDIRs, each starting at the last one's offset. */
	char name[200];
	mkdir(host("many"), 0755);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "%s/many/entry-%03d", share, i);
		close(open(name, O_CREAT | O_WRONLY, 0644));
	}
	uint64_t d = lookup(FUSE_ROOT_ID, "many", NULL);
	for (int plus = 0; plus < 2; plus++) {
		struct fuse_open_in oi = { 0 };
		CHECK_EQ(call(&cn, FUSE_OPENDIR, d, &oi, sizeof(oi), &rep), 0, "opendir-%d", plus);
		uint64_t fh = ((struct fuse_open_out *)rep.body)->fh;
		uint64_t off = 0;
		int names = 0, calls = 0, nodes = 0;
		bool ok = true;
		for (;;) {
			struct fuse_read_in ri = { .fh = fh, .offset = off, .size = 4096 };
			if (call(&cn, plus ? FUSE_READDIRPLUS : FUSE_READDIR, d, &ri, sizeof(ri), &rep) != 0) {
				ok = false;
				break;
			}
			if (!rep.len)
				break;
			calls++;
			for (uint32_t at = 0; at < rep.len;) {
				struct fuse_entry_out *e = plus ? (struct fuse_entry_out *)(rep.body + at) : NULL;
				struct fuse_dirent *de = (struct fuse_dirent *)(rep.body + at + (plus ? sizeof(*e) : 0));
				if (de->namelen > NAME_MAX) {
					ok = false;
					break;
				}
				names += de->namelen > 2 || de->name[0] != '.';
				if (e && e->nodeid) {
					nodes++;
					forget(e->nodeid, 1);
				}
				off = de->off;
				at += plus ? FUSE_DIRENTPLUS_SIZE((struct fuse_direntplus *)(rep.body + at))
					   : FUSE_DIRENT_SIZE(de);
			}
		}
		CHECK(ok && names == 300 && calls > 1, "readdir%s-all-entries", plus ? "plus" : "");
		if (plus)
			CHECK_EQ(nodes, 300, "readdirplus-looked-up");
		struct fuse_fsync_in fs = { .fh = fh };
		CHECK_EQ(call(&cn, FUSE_FSYNCDIR, d, &fs, sizeof(fs), &rep), 0, "fsyncdir-%d", plus);
		release(d, fh, true);
		CHECK_EQ(rep.error, 0, "releasedir-%d", plus);
	}
	struct fuse_open_in oi = { 0 };
	uint64_t f = lookup(FUSE_ROOT_ID, "hello", NULL);
	CHECK_EQ(call(&cn, FUSE_OPENDIR, f, &oi, sizeof(oi), &rep), -ENOTDIR, "opendir-file-refused");
	forget(f, 1);
	forget(d, 1);
}

static void test_locks(void)
{
	uint64_t node = lookup(FUSE_ROOT_ID, "hello", NULL);
	uint64_t a = open_file(node, O_RDWR), b = open_file(node, O_RDWR);
	struct fuse_lk_in lk = { .fh = a, .owner = 1, .lk = { .start = 0, .end = 99, .type = F_WRLCK } };
	CHECK_EQ(call(&cn, FUSE_SETLK, node, &lk, sizeof(lk), &rep), 0, "setlk");
	lk.fh = b;
	lk.owner = 2;
	CHECK_EQ(call(&cn, FUSE_SETLK, node, &lk, sizeof(lk), &rep), -EAGAIN, "setlk-conflict");
	CHECK(call(&cn, FUSE_GETLK, node, &lk, sizeof(lk), &rep) == 0 &&
	      ((struct fuse_lk_out *)rep.body)->lk.type == F_WRLCK && ((struct fuse_lk_out *)rep.body)->lk.end == 99,
	      "getlk");
	lk.lk.type = 77;
	CHECK_EQ(call(&cn, FUSE_SETLK, node, &lk, sizeof(lk), &rep), -EINVAL, "setlk-bad-type");
	lk.lk = (struct fuse_file_lock){ .start = 10, .end = 5, .type = F_RDLCK };
	CHECK_EQ(call(&cn, FUSE_SETLK, node, &lk, sizeof(lk), &rep), -EINVAL, "setlk-bad-range");

	/* SETLKW waits; other requests go on meanwhile; the unlock lets it through. */
	lk.lk = (struct fuse_file_lock){ .start = 0, .end = 99, .type = F_WRLCK };
	uint64_t waiting = cn.unique + 1;
	CHECK(post(&cn, cn.req, FUSE_SETLKW, node, &lk, sizeof(lk), NULL, 0, 64, 0) == 0, "setlkw-posted");
	CHECK_EQ(vuf_vq_wait_used(cn.req, NULL, NULL, 300), -ETIMEDOUT, "setlkw-waits");
	/*
	 * Other requests meanwhile (on the other queue: this one's next completion is the
	 * SETLKW's), with reply room of their own: the waiting request keeps its room.
	 */
	struct fuse_getattr_in ga = { 0 };
	uint64_t save = cn.out_gpa;
	cn.out_gpa += 4096 * 300;
	CHECK(post(&cn, cn.hiprio, FUSE_GETATTR, node, &ga, sizeof(ga), NULL, 0, 256, 0) == 0, "getattr-while-waiting");
	collect(&cn, cn.hiprio, &rep, 3000);
	CHECK_EQ(rep.error, 0, "loop-not-blocked-by-setlkw");
	struct fuse_lk_in un = { .fh = a, .owner = 1, .lk = { .start = 0, .end = 99, .type = F_UNLCK } };
	CHECK(post(&cn, cn.hiprio, FUSE_SETLK, node, &un, sizeof(un), NULL, 0, 256, 0) == 0, "unlock-posted");
	collect(&cn, cn.hiprio, &rep, 3000);
	CHECK_EQ(rep.error, 0, "unlock");
	cn.out_gpa = save;
	uint32_t used;
	struct fuse_out_header oh = { 0 };
	CHECK(vuf_vq_wait_used(cn.req, NULL, &used, 3000) == 0 && vuf_gpa_read(cn.f, cn.out_gpa, &oh, sizeof(oh)) == 0 &&
	      oh.unique == waiting && oh.error == 0, "setlkw-granted-after-unlock");

	/* flock. */
	struct fuse_lk_in fl = { .fh = a, .lk = { .type = F_WRLCK }, .lk_flags = FUSE_LK_FLOCK };
	release(node, b, false);
	CHECK_EQ(call(&cn, FUSE_SETLK, node, &fl, sizeof(fl), &rep), 0, "flock");
	release(node, a, false);
	forget(node, 1);
}

/* SETLKW still waiting when the ring stops: given up with EINTR, the stop does not hang. */
static void test_setlkw_on_stop(struct conn *c)
{
	/* The holder is here, on the host (the device is --readonly: its opens cannot write). */
	int hold = open(host("hello"), O_RDWR);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 10 };
	CHECK(hold >= 0 && fcntl(hold, F_OFD_SETLK, &fl) == 0, "host-holds-lock");
	uint64_t node = lookup(FUSE_ROOT_ID, "hello", NULL);
	uint64_t b = open_file(node, O_RDONLY);
	struct fuse_lk_in lk = { .fh = b, .owner = 1, .lk = { .start = 0, .end = 9, .type = F_RDLCK } };
	post(c, c->req, FUSE_SETLKW, node, &lk, sizeof(lk), NULL, 0, 64, 0);
	CHECK_EQ(vuf_vq_wait_used(c->req, NULL, NULL, 200), -ETIMEDOUT, "setlkw-waits-before-stop");
	unsigned base;
	int64_t t = vuf_now_ms();
	CHECK(vuf_get_vring_base(c->f, 1, &base) == 0 && vuf_now_ms() - t < 2000, "ring-stop-with-setlkw");
	struct fuse_out_header oh = { 0 };
	CHECK(vuf_vq_used_pending(c->req) == 1 && vuf_gpa_read(c->f, c->out_gpa, &oh, sizeof(oh)) == 0 &&
	      oh.error == -EINTR, "setlkw-given-up-eintr");
	close(hold);
}

static void test_hostile(void)
{
	/* Shorter than a header: completed with nothing written, the queue goes on. */
	uint8_t junk[10] = { 0 };
	struct vuf_buf o = { cn.in_gpa, sizeof(junk) }, i = { cn.out_gpa, 64 };
	vuf_gpa_write(cn.f, cn.in_gpa, junk, sizeof(junk));
	vuf_vq_add(cn.req, &o, 1, &i, 1, false);
	vuf_vq_kick(cn.req);
	uint32_t used = 99;
	CHECK(vuf_vq_wait_used(cn.req, NULL, &used, 3000) == 0 && used == 0, "short-header-dropped");
	/* No device-writable room at all. */
	struct fuse_getattr_in ga = { 0 };
	CHECK(post(&cn, cn.req, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, 0, 0) == 0, "no-room-posted");
	CHECK(vuf_vq_wait_used(cn.req, NULL, &used, 3000) == 0 && used == 0, "no-room-nothing-written");
	/* A header whose length is not what was sent. */
	CHECK(post(&cn, cn.req, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, 256, 9999) == 0, "bad-len-posted");
	collect(&cn, cn.req, &rep, 3000);
	CHECK_EQ(rep.error, -EINVAL, "bad-len-einval");
	/* Arguments larger than any request has. */
	static uint8_t big[200000];
	CHECK_EQ(call_data(&cn, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, big, sizeof(big), &rep, 256), -E2BIG, "huge-args");
	/* Unknown and unserved opcodes. */
	static const uint32_t unknown[] = { 0, 7, 19, FUSE_BMAP, FUSE_IOCTL, FUSE_POLL, FUSE_SETUPMAPPING,
					    FUSE_TMPFILE, 4096, 0xffffffffu };
	for (unsigned k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++)
		CHECK_EQ(call(&cn, unknown[k], FUSE_ROOT_ID, &ga, sizeof(ga), &rep), -ENOSYS, "opcode-%u-enosys",
			 unknown[k]);
	/* A reply room too small for the reply: an error, not an overflow. */
	CHECK_EQ(call_data(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, &rep, 20), -ERANGE,
		 "reply-room-too-small");
	/* Every request kind, cut short. */
	static const uint32_t ops[] = { FUSE_SETATTR, FUSE_MKNOD, FUSE_MKDIR, FUSE_RENAME, FUSE_RENAME2, FUSE_LINK,
					FUSE_OPEN, FUSE_READ, FUSE_WRITE, FUSE_RELEASE, FUSE_FSYNC, FUSE_FLUSH,
					FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW, FUSE_ACCESS, FUSE_CREATE,
					FUSE_FALLOCATE, FUSE_LSEEK, FUSE_COPY_FILE_RANGE, FUSE_READDIR, FUSE_GETXATTR,
					FUSE_SETXATTR, FUSE_LISTXATTR };
	for (unsigned k = 0; k < sizeof(ops) / sizeof(ops[0]); k++)
		CHECK_EQ(call(&cn, ops[k], FUSE_ROOT_ID, junk, 3, &rep), -EINVAL, "opcode-%u-short-args", ops[k]);
	/* INTERRUPT has no reply. */
	struct fuse_interrupt_in in = { .unique = 1 };
	CHECK(call(&cn, FUSE_INTERRUPT, 0, &in, sizeof(in), &rep) == 1 && rep.used == 0, "interrupt-no-reply");
	CHECK(vuf_ping(cn.f) == 0, "session-alive-after-hostile");
}

static void test_destroy(void)
{
	uint64_t n = lookup(FUSE_ROOT_ID, "hello", NULL);
	CHECK_EQ(call(&cn, FUSE_DESTROY, 0, NULL, 0, &rep), 0, "destroy");
	struct fuse_getattr_in ga = { 0 };
	CHECK_EQ(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), &rep), -EIO, "after-destroy-eio");
	struct fuse_init_in in = { .major = 7, .minor = 31 };
	CHECK(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep) == 0 && ((struct fuse_init_out *)rep.body)->minor == 31,
	      "init-after-destroy");
	CHECK_EQ(call(&cn, FUSE_GETATTR, n, &ga, sizeof(ga), &rep), -ESTALE, "destroy-forgot-nodes");
}

static void init_conn(struct conn *c)
{
	struct fuse_init_in in = { .major = 7, .minor = 37, .flags = FUSE_MAX_PAGES };
	call(c, FUSE_INIT, 0, &in, sizeof(in), &rep);
}

static void test_readonly(void)
{
	char sock2[100], src[200];
	snprintf(sock2, sizeof(sock2), "%s/ro.sock", dir);
	snprintf(src, sizeof(src), "source=%s,cache=never", share);
	const char *args[] = { "-o", src, "--readonly", "--thread-pool-size=0", NULL };
	struct vuf_backend *ro = vuf_backend_start("fs", args, sock2);
	struct conn c;
	if (!CHECK(ro && conn_open(&c, sock2), "readonly-start"))
		return;
	struct conn keep = cn;
	cn = c;
	init_conn(&cn);
	uint64_t n = lookup(FUSE_ROOT_ID, "hello", NULL);
	CHECK(n && open_file(n, O_RDONLY), "readonly-open-read");
	CHECK(((struct fuse_open_out *)rep.body)->open_flags & FOPEN_DIRECT_IO, "cache-never-direct-io");
	CHECK(open_file(n, O_RDWR) == 0 && rep.error == -EROFS, "readonly-open-write-refused");
	uint8_t buf[100];
	struct fuse_mkdir_in md = { .mode = 0755 };
	size_t len = with_names(buf, &md, sizeof(md), "nope", NULL);
	CHECK_EQ(call(&cn, FUSE_MKDIR, FUSE_ROOT_ID, buf, len, &rep), -EROFS, "readonly-mkdir-refused");
	CHECK_EQ(call(&cn, FUSE_UNLINK, FUSE_ROOT_ID, "hello", 6, &rep), -EROFS, "readonly-unlink-refused");
	struct fuse_setxattr_in sx = { .size = 1 };
	CHECK_EQ(call(&cn, FUSE_SETXATTR, n, &sx, 8, &rep), -EROFS, "readonly-setxattr-refused");
	CHECK(access(host("hello"), F_OK) == 0 && access(host("nope"), F_OK) < 0, "readonly-host-unchanged");
	/* Without --xattr the kernel is told to stop asking. */
	struct fuse_getxattr_in gx = { .size = 64 };
	len = with_names(buf, &gx, sizeof(gx), "user.t", NULL);
	CHECK_EQ(call(&cn, FUSE_GETXATTR, n, buf, len, &rep), -ENOSYS, "no-xattr-enosys");
	test_setlkw_on_stop(&cn);
	cn = keep;
	conn_close(&c);
	CHECK_EQ(vuf_backend_stop(ro, 5000), 0, "readonly-clean-exit");
}

/* The file CREATE makes in dir (a host path) as uid, gid; its owner on the host as "uid:gid". */
static void create_as(uint64_t parent, const char *hostdir, const char *name, uint32_t uid, uint32_t gid, char *owner,
		      size_t size)
{
	uint8_t buf[100];
	struct fuse_create_in cr = { .flags = O_RDWR, .mode = S_IFREG | 0644 };
	size_t n = with_names(buf, &cr, sizeof(cr), name, NULL);
	char path[300];
	struct stat st;

	req_uid = uid;
	req_gid = gid;
	int err = call(&cn, FUSE_CREATE, parent, buf, n, &rep);
	req_uid = req_gid = 0;
	snprintf(path, sizeof(path), "%s/%s", hostdir, name);
	if (err || stat(path, &st) < 0)
		snprintf(owner, size, "error %d", err);
	else
		snprintf(owner, size, "%u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
}

/* The file CREATE makes as uid 4321, gid 4322 (the share is opened to them meanwhile). */
static void create_as_guest_ids(const char *name, char *owner, size_t size)
{
	chmod(share, 0777);
	create_as(FUSE_ROOT_ID, share, name, 4321, 4322, owner, size);
	chmod(share, 0755);
}

/* OPEN of the share's name as uid; the reply's error (0: opened, and released). */
static int open_as(const char *name, uint32_t uid, uint32_t flags)
{
	uint64_t n = lookup(FUSE_ROOT_ID, name, NULL);
	req_uid = req_gid = uid;
	uint64_t fh = n ? open_file(n, flags) : 0;
	req_uid = req_gid = 0;
	int err = n ? rep.error : 1;
	if (fh)
		release(n, fh, false);
	return err;
}

/*
 * Confined as root (the default sandbox: namespace), requests take the guest's
 * ids: what the guest's user creates is that user's on the host, and a file of
 * another user's is out of its reach where the host says so; the guest's root
 * keeps root's reach (CAP_DAC_OVERRIDE).
 */
static void test_confined_ids(void)
{
	char owner[64];

	if (geteuid() != 0) {
		SKIP("confined-guest-ids", "needs root");
		return;
	}
	create_as_guest_ids("confined-create", owner, sizeof(owner));
	CHECK(!strcmp(owner, "4321:4322"), "confined-root-takes-guest-ids");
	int fd = open(host("root-0600"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	CHECK_EQ(open_as("root-0600", 4321, O_RDONLY), -EACCES, "confined-user-eacces-on-root-0600");
	CHECK_EQ(open_as("confined-create", 4321, O_RDWR), 0, "confined-user-opens-its-own");
	chmod(host("confined-create"), 0600);
	CHECK_EQ(open_as("confined-create", 0, O_RDWR), 0, "confined-root-dac-override");
	CHECK_EQ(open_as("confined-create", 5000, O_RDONLY), -EACCES, "confined-other-user-eacces");
	/* An id the process cannot take (none can be -1) fails the request, never runs it as root. */
	CHECK_EQ(open_as("root-0600", UINT32_MAX, O_RDONLY), -EPERM, "unmapped-id-refused");
	/* Every thread, the workers too, is back to root's ids, no group and the capabilities kept. */
	char path[300], line[200];
	unsigned threads = 0, right = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)backend_pid);
	DIR *d = opendir(path);
	for (struct dirent *de; d && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)backend_pid, de->d_name);
		FILE *f = fopen(path, "r");
		unsigned ok = 0;
		while (f && fgets(line, sizeof(line), f))
			ok += !strcmp(line, "CapEff:\t00000000000000db\n") || !strncmp(line, "Uid:\t0\t0\t0\t0", 12) ||
			      !strncmp(line, "Gid:\t0\t0\t0\t0", 12) ||
			      (!strncmp(line, "Groups:", 7) && strspn(line + 7, " \t\n") == strlen(line + 7));
		if (f)
			fclose(f);
		threads++;
		right += ok == 4;
	}
	if (d)
		closedir(d);
	CHECK(threads >= 3 && right == threads, "threads-back-to-root-ids-and-caps");
}

/* The host's permission bits (setuid and setgid with them) of the share's name. */
static mode_t mode_of(const char *name)
{
	struct stat st;
	return stat(host(name), &st) == 0 ? st.st_mode & 07777 : 0;
}

/* A WRITE of 4 bytes as uid with write_flags; the file's mode after it. */
static mode_t write_as(uint64_t node, uint64_t fh, uint32_t uid, uint32_t flags)
{
	struct fuse_write_in wi = { .fh = fh, .size = 4, .write_flags = flags };
	chown(host("suid"), 4321, 4322);
	chmod(host("suid"), 06777);
	req_uid = req_gid = uid;
	int err = call_data(&cn, FUSE_WRITE, node, &wi, sizeof(wi), "abcd", 4, &rep, 64);
	req_uid = req_gid = 0;
	return err ? 1 : mode_of("suid");
}

/* SETATTR of attributes (valid) as root; the file's mode after it. */
static mode_t setattr_root(uint64_t node, struct fuse_setattr_in *in)
{
	chown(host("suid"), 4321, 4322);
	chmod(host("suid"), 06777);
	return call(&cn, FUSE_SETATTR, node, in, sizeof(*in), &rep) ? 1 : mode_of("suid");
}

/*
 * Setuid and setgid bits (FUSE_HANDLE_KILLPRIV_V2): a write or truncate by a user
 * without CAP_FSETID clears them (setgid: where the group may execute), one by
 * root keeps them unless the guest says KILL_SUIDGID (its caller lacks
 * CAP_FSETID); a chown clears them whoever asks.
 */
static void test_killpriv(void)
{
	if (geteuid() != 0) {
		SKIP("killpriv", "needs root");
		return;
	}
	CHECK_EQ(call(&cn, FUSE_DESTROY, 0, NULL, 0, &rep), 0, "killpriv-destroy");
	struct fuse_init_in in = { .major = 7, .minor = 38, .flags = FUSE_HANDLE_KILLPRIV_V2 | FUSE_MAX_PAGES };
	CHECK(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep) == 0 &&
	      ((struct fuse_init_out *)rep.body)->flags & FUSE_HANDLE_KILLPRIV_V2, "init-handle-killpriv-v2");
	int fd = open(host("suid"), O_CREAT | O_WRONLY, 0644);
	close(fd);
	uint64_t n = lookup(FUSE_ROOT_ID, "suid", NULL);
	uint64_t fh = n ? open_file(n, O_RDWR) : 0;
	if (!CHECK(fh != 0, "killpriv-open"))
		return;
	CHECK_EQ(write_as(n, fh, 4321, 0), 0777, "write-by-owner-kills-suid-sgid");
	CHECK_EQ(write_as(n, fh, 5000, 0), 0777, "write-by-non-owner-kills-suid-sgid");
	CHECK_EQ(write_as(n, fh, 0, 0), 06777, "write-by-root-keeps-suid-sgid");
	CHECK_EQ(write_as(n, fh, 0, FUSE_WRITE_KILL_SUIDGID), 0777, "write-kill-suidgid");
	chmod(host("suid"), 02767); /* setgid without group execute: kept by a write of the group's */
	req_uid = 4321;
	req_gid = 4322;
	struct fuse_write_in wi = { .fh = fh, .size = 4 };
	call_data(&cn, FUSE_WRITE, n, &wi, sizeof(wi), "abcd", 4, &rep, 64);
	req_uid = req_gid = 0;
	CHECK_EQ(mode_of("suid"), 02767, "write-keeps-sgid-without-group-exec");
	release(n, fh, false);

	struct fuse_setattr_in sa = { .valid = FATTR_SIZE, .size = 1 };
	CHECK_EQ(setattr_root(n, &sa), 06777, "truncate-by-root-keeps-suid");
	sa.valid |= FATTR_KILL_SUIDGID;
	CHECK_EQ(setattr_root(n, &sa), 0777, "truncate-kill-suidgid");
	sa = (struct fuse_setattr_in){ .valid = FATTR_UID | FATTR_GID, .uid = 4321, .gid = 4322 };
	CHECK_EQ(setattr_root(n, &sa), 0777, "chown-kills-suid-sgid");

	chmod(host("suid"), 06777);
	struct fuse_open_in oi = { .flags = O_WRONLY | O_TRUNC };
	uint64_t f2 = call(&cn, FUSE_OPEN, n, &oi, sizeof(oi), &rep) == 0 ? ((struct fuse_open_out *)rep.body)->fh : 0;
	CHECK(f2 && mode_of("suid") == 06777, "open-trunc-by-root-keeps-suid");
	release(n, f2, false);
	oi.open_flags = FUSE_OPEN_KILL_SUIDGID;
	f2 = call(&cn, FUSE_OPEN, n, &oi, sizeof(oi), &rep) == 0 ? ((struct fuse_open_out *)rep.body)->fh : 0;
	CHECK(f2 && mode_of("suid") == 0777, "open-trunc-kill-suidgid");
	release(n, f2, false);
	forget(n, 1);
}

#define EXT_GROUPS 32               /* FUSE_EXT_GROUPS (FUSE 7.39) */

/* MKDIR of name in the share as uid 4321 (gid 4321) with extensions ext (len bytes, 8-byte units); the reply's error. */
static int mkdir_with_ext(const char *name, const void *ext, size_t len)
{
	uint8_t buf[200];
	struct fuse_mkdir_in md = { .mode = 0755 };
	size_t n = with_names(buf, &md, sizeof(md), name, NULL);
	uint64_t grp = lookup(FUSE_ROOT_ID, "grp", NULL);

	memset(buf + n, 0, (8 - n % 8) % 8); /* the kernel pads the arguments before the extensions */
	n += (8 - n % 8) % 8;
	if (len)
		memcpy(buf + n, ext, len);
	req_uid = req_gid = 4321;
	req_extlen = (uint16_t)(len / 8);
	int err = grp ? call(&cn, FUSE_MKDIR, grp, buf, n + len, &rep) : 1;
	req_uid = req_gid = req_extlen = 0;
	return err;
}

/*
 * FUSE_CREATE_SUPP_GROUP: a request that creates carries the caller's
 * supplementary group that owns the parent directory, and runs with it: a guest
 * user creates in a directory of that group's (0770) only with it. Extensions
 * that do not add up are refused.
 */
static void test_supp_group(void)
{
	if (geteuid() != 0) {
		SKIP("supp-group", "needs root");
		return;
	}
	CHECK_EQ(call(&cn, FUSE_DESTROY, 0, NULL, 0, &rep), 0, "supp-group-destroy");
	struct fuse_init_in in = { .major = 7, .minor = 39, .flags = FUSE_INIT_EXT | FUSE_MAX_PAGES, .flags2 = 1u << 2 };
	struct fuse_init_out *o = (struct fuse_init_out *)rep.body;
	CHECK(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep) == 0 && o->flags & FUSE_INIT_EXT && o->flags2 == 1u << 2,
	      "init-create-supp-group");
	mkdir(host("grp"), 0770);
	chown(host("grp"), 0, 4400);
	chmod(host("grp"), 0770);
	struct {
		struct fuse_ext_header h;
		uint32_t nr, group;
	} ext = { { sizeof(ext), EXT_GROUPS }, 1, 4400 };
	CHECK_EQ(mkdir_with_ext("without", NULL, 0), -EACCES, "supp-group-none-eacces");
	CHECK_EQ(mkdir_with_ext("with", &ext, sizeof(ext)), 0, "supp-group-creates");
	struct stat st;
	CHECK(stat(host("grp/with"), &st) == 0 && st.st_uid == 4321, "supp-group-owner");
	ext.group = 4401;
	CHECK_EQ(mkdir_with_ext("other", &ext, sizeof(ext)), -EACCES, "supp-group-another-eacces");
	ext.group = 4400;
	ext.nr = 2;
	CHECK_EQ(mkdir_with_ext("two", &ext, sizeof(ext)), -EINVAL, "supp-group-two-refused");
	ext.nr = 1;
	ext.h.size = 64;
	CHECK_EQ(mkdir_with_ext("long", &ext, sizeof(ext)), -EINVAL, "supp-group-size-past-end");
	ext.h.size = 12;
	CHECK_EQ(mkdir_with_ext("odd", &ext, sizeof(ext)), -EINVAL, "supp-group-size-not-aligned");
	req_extlen = 100; /* more than the arguments */
	req_uid = req_gid = 4321;
	struct fuse_getattr_in ga = { 0 };
	CHECK_EQ(call(&cn, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), &rep), -EINVAL, "extensions-past-arguments");
	req_extlen = 0;
	req_uid = req_gid = 0;
	/* A kind not asked for is skipped; the request is served. */
	struct fuse_ext_header other = { sizeof(other), 1 };
	CHECK_EQ(mkdir_with_ext("skipped", &other, sizeof(other)), -EACCES, "unknown-extension-skipped");
	/* The group is the request's only (every thread is back to none: test_confined_ids). */
	CHECK_EQ(mkdir_with_ext("after", NULL, 0), -EACCES, "supp-group-not-kept");
}

/*
 * Unconfined root (--sandbox=none) takes the guest's ids per request as well;
 * --announce-submounts and a second request queue.
 */
static void test_ids(void)
{
	char owner[64], sock4[100], sd[100];

	if (geteuid() != 0) {
		SKIP("guest-ids", "needs root");
		return;
	}
	snprintf(sock4, sizeof(sock4), "%s/ids.sock", dir);
	snprintf(sd, sizeof(sd), "--shared-dir=%s", share);
	const char *args[] = { sd, "--sandbox=none", "--announce-submounts", "--queues=2", NULL };
	/* A file system mounted beneath the share, for --announce-submounts. */
	bool mounted = mkdir(host("mnt"), 0755) == 0 && mount("t-fs", host("mnt"), "tmpfs", 0, "size=64k") == 0;
	struct vuf_backend *b = vuf_backend_start("fs", args, sock4);
	struct conn c;
	if (!CHECK(b && conn_open(&c, sock4), "ids-start"))
		return;
	struct conn keep = cn;
	cn = c;
	struct fuse_init_in in = { .major = 7, .minor = 37, .flags = FUSE_SUBMOUNTS };
	CHECK(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep) == 0 &&
	      ((struct fuse_init_out *)rep.body)->flags == FUSE_SUBMOUNTS, "init-submounts");
	if (mounted) {
		CHECK(lookup(FUSE_ROOT_ID, "mnt", NULL) && ((struct fuse_entry_out *)rep.body)->attr.flags & FUSE_ATTR_SUBMOUNT,
		      "announce-submount");
		CHECK(lookup(FUSE_ROOT_ID, "sub", NULL) && !(((struct fuse_entry_out *)rep.body)->attr.flags & FUSE_ATTR_SUBMOUNT),
		      "same-fs-not-a-submount");
	} else {
		SKIP("announce-submount", "cannot mount a tmpfs beneath the share");
	}
	/* A second request queue. */
	struct vuf_vq *q2 = vuf_vq_setup(cn.f, 2, RING, 0);
	struct fuse_getattr_in ga = { 0 };
	CHECK(q2 && post(&cn, q2, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, 256, 0) == 0, "queue-2-posted");
	if (q2) {
		collect(&cn, q2, &rep, 3000);
		CHECK_EQ(rep.error, 0, "queue-2-served");
	}
	create_as_guest_ids("guest-owned", owner, sizeof(owner));
	CHECK(!strcmp(owner, "4321:4322"), "unconfined-root-takes-guest-ids");
	/* As that uid, a root-only file is out of reach. */
	int fd = open(host("root-only"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	uint64_t n = lookup(FUSE_ROOT_ID, "root-only", NULL);
	req_uid = req_gid = 4321;
	CHECK(n && open_file(n, O_RDONLY) == 0 && rep.error == -EACCES, "guest-ids-permissions");
	req_uid = req_gid = 0;
	cn = keep;
	conn_close(&c);
	CHECK_EQ(vuf_backend_stop(b, 5000), 0, "ids-clean-exit");
	if (mounted)
		umount(host("mnt"));
	rmdir(host("mnt"));
}

/*
 * Started without privileges (uid 4000) with --uid-map/--gid-map: the user
 * namespace maps its root to 4000 and its 1.. to 200000.. (subordinate ids of
 * /etc/subuid, /etc/subgid, written by newuidmap/newgidmap). The guest's root
 * creates files of 4000's, its uid 1000 those of 200999; an id beyond the maps is
 * refused. The back-end runs in a mount namespace of its own whose /etc is a
 * copy with that user and those ids (the host's stays as it is), through a
 * wrapper script given as $VHOSTBOX.
 */
static void test_uid_map(void)
{
	char wrapper[120], etc[120], cmd[1000], vb[PATH_MAX], was[PATH_MAX], sockdir[100], sock6[120], mapshare[100], owner[64], sd[120];
	const char *bin = getenv("VHOSTBOX");
	bool had = bin != NULL;

	if (geteuid() != 0) {
		SKIP("uid-map", "needs root (to stand for a user with subordinate ids)");
		return;
	}
	if (system("(command -v newuidmap && command -v newgidmap && command -v setpriv && command -v unshare) >/dev/null") != 0) {
		SKIP("uid-map", "needs newuidmap, newgidmap (Debian: uidmap), setpriv and unshare");
		return;
	}
	snprintf(was, sizeof(was), "%s", had ? bin : "./vhostbox");
	if (!CHECK(realpath(was, vb) != NULL, "uid-map-binary"))
		return;
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(wrapper, sizeof(wrapper), "%s/as-4000.sh", dir);
	snprintf(mapshare, sizeof(mapshare), "%s/mapshare", dir);
	snprintf(sockdir, sizeof(sockdir), "%s/mapsock", dir);
	snprintf(sock6, sizeof(sock6), "%s/map.sock", sockdir);
	mkdir(sockdir, 0755);
	snprintf(cmd, sizeof(cmd),
		 "set -e; mkdir %s; cp -a /etc/. %s; cd %s; echo 'vbxmap:x:4000:4000::/nonexistent:/bin/false' >> passwd; "
		 "echo 'vbxmap:x:4000:' >> group; echo 'vbxmap:200000:65536' > subuid; cp subuid subgid",
		 etc, etc, etc);
	FILE *w = fopen(wrapper, "w");
	if (w) {
		fprintf(w, "#!/bin/sh\nexec unshare -m sh -c 'mount --bind %s /etc && exec setpriv --reuid=4000 "
			   "--regid=4000 --clear-groups %s \"$@\"' sh \"$@\"\n", etc, vb);
		fclose(w);
	}
	chmod(wrapper, 0755);
	mkdir(mapshare, 0777);
	chmod(mapshare, 0777);
	chmod(dir, 0711); /* uid 4000 reaches the share and its socket's directory */
	if (!CHECK(w && system(cmd) == 0 && chown(mapshare, 4000, 4000) == 0 && chown(sockdir, 4000, 4000) == 0,
		   "uid-map-setup"))
		return;
	snprintf(sd, sizeof(sd), "--shared-dir=%s", mapshare);
	const char *args[] = { sd, "--uid-map=:0:4000:1:", "--uid-map=:1:200000:65536:", "--gid-map=/0/4000/1/",
			       "--gid-map=/1/200000/65536/", "--thread-pool-size=1", NULL };
	setenv("VHOSTBOX", wrapper, 1);
	struct vuf_backend *b = vuf_backend_start("fs", args, sock6);
	if (had)
		setenv("VHOSTBOX", was, 1);
	else
		unsetenv("VHOSTBOX");
	struct conn c;
	if (!CHECK(b && conn_open(&c, sock6), "uid-map-start")) {
		if (b)
			vuf_backend_stop(b, 5000);
		return;
	}
	struct conn keep = cn;
	cn = c;
	init_conn(&cn);
	create_as(FUSE_ROOT_ID, mapshare, "by-guest-root", 0, 0, owner, sizeof(owner));
	CHECK(!strcmp(owner, "4000:4000"), "uid-map-guest-root-is-4000");
	create_as(FUSE_ROOT_ID, mapshare, "by-guest-1000", 1000, 1000, owner, sizeof(owner));
	CHECK(!strcmp(owner, "200999:200999"), "uid-map-guest-1000-is-200999");
	create_as(FUSE_ROOT_ID, mapshare, "by-guest-70000", 70000, 70000, owner, sizeof(owner));
	CHECK(!strcmp(owner, "error -1"), "uid-map-unmapped-refused");
	cn = keep;
	conn_close(&c);
	CHECK_EQ(vuf_backend_stop(b, 5000), 0, "uid-map-clean-exit");
}

/* The back-end's exit status for a command line (stderr kept for the note). */
static int run_cli(const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execv(getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox", (char *const *)argv);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* What a back-end started with argv says on stderr until SIGTERM, once it listens. */
static bool startup_output(const char *const *argv, const char *sock, char *out, size_t size)
{
	char path[120];
	snprintf(path, sizeof(path), "%s/stderr.txt", dir);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(sock, F_OK) < 0; i++)
		usleep(10000);
	usleep(100000);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, size - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	return f != NULL;
}

static void test_cli(void)
{
	char sp[100], sd[100], src[200], bad[200];
	snprintf(sp, sizeof(sp), "--socket-path=%s/cli.sock", dir);
	snprintf(sd, sizeof(sd), "--shared-dir=%s", share);
	snprintf(src, sizeof(src), "source=%s,cache=none,xattr", share);
	snprintf(bad, sizeof(bad), "source=%s,writeback", share);
	const char *vb = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";
	const char *no_dir[] = { vb, "fs", sp, NULL };
	const char *bad_cache[] = { vb, "fs", sp, sd, "--cache=sometimes", NULL };
	const char *bad_o[] = { vb, "fs", sp, "-o", bad, NULL };
	const char *o_no_value[] = { vb, "fs", sp, "-o", NULL };
	const char *too_many[] = { vb, "fs", sp, sd, "--thread-pool-size=1000", NULL };
	const char *missing[] = { vb, "fs", sp, "--shared-dir=/nonexistent/dir", NULL };
	const char *chroot_rng[] = { vb, "rng", sp, "--sandbox=chroot", NULL };
	CHECK_EQ(run_cli(no_dir), 2, "cli-no-shared-dir");
	CHECK_EQ(run_cli(bad_cache), 2, "cli-bad-cache");
	CHECK_EQ(run_cli(bad_o), 2, "cli-bad-o");
	CHECK_EQ(run_cli(o_no_value), 2, "cli-o-without-value");
	CHECK_EQ(run_cli(too_many), 2, "cli-thread-pool-too-large");
	CHECK_EQ(run_cli(missing), 1, "cli-shared-dir-missing");
	CHECK_EQ(run_cli(chroot_rng), 2, "cli-chroot-refused-for-rng");

	/* --log-level: info (the default) says how it is confined, warn and error do not. */
	char sock5[100], sp5[120], said[4096];
	snprintf(sock5, sizeof(sock5), "%s/log.sock", dir);
	snprintf(sp5, sizeof(sp5), "--socket-path=%s", sock5);
	const char *info[] = { vb, "fs", sp5, sd, NULL };
	const char *quiet[] = { vb, "fs", sp5, sd, "--log-level=warn", NULL };
	CHECK(startup_output(info, sock5, said, sizeof(said)) && strstr(said, "sandbox: namespace"), "log-level-info");
	CHECK(startup_output(quiet, sock5, said, sizeof(said)) && !strstr(said, "sandbox:"), "log-level-warn");

	/* The legacy form serves, and --sandbox=chroot confines to the shared directory. */
	char sock3[100];
	snprintf(sock3, sizeof(sock3), "%s/o.sock", dir);
	const char *args[] = { "-o", src, "--sandbox=chroot", NULL };
	struct vuf_backend *b = vuf_backend_start("fs", args, sock3);
	struct conn c;
	if (geteuid() != 0) {
		SKIP("cli-legacy-o-chroot", "--sandbox=chroot needs root");
		if (b)
			vuf_backend_stop(b, 5000);
		return;
	}
	if (!CHECK(b && conn_open(&c, sock3), "cli-legacy-o-chroot"))
		return;
	struct conn keep = cn;
	cn = c;
	init_conn(&cn);
	uint64_t n = lookup(FUSE_ROOT_ID, "hello", NULL);
	uint64_t fh = n ? open_file(n, O_RDONLY) : 0;
	struct fuse_read_in ri = { .fh = fh, .size = 100 };
	CHECK(fh && call(&cn, FUSE_READ, n, &ri, sizeof(ri), &rep) == 0 && rep.len > 0, "chroot-serves");
	char owner[64];
	create_as_guest_ids("chroot-create", owner, sizeof(owner));
	CHECK(!strcmp(owner, "4321:4322"), "chroot-takes-guest-ids");
	struct fuse_getxattr_in gx = { .size = 0 };
	uint8_t buf[64];
	size_t len = with_names(buf, &gx, sizeof(gx), "user.none", NULL);
	CHECK_EQ(call(&cn, FUSE_GETXATTR, n, buf, len, &rep), -ENODATA, "legacy-o-xattr-on");
	/* Chrooted, the shared directory is "/": a saved state's paths are still relative to it. */
	unsigned base;
	uint8_t *st = NULL;
	size_t nst = 0;
	uint32_t plen = 0;
	CHECK(vuf_get_vring_base(cn.f, 0, &base) == 0 && vuf_get_vring_base(cn.f, 1, &base) == 0 &&
	      vuf_state_save(cn.f, &st, &nst) == 0 && nst >= 16 + 24 + 5 && memcpy(&plen, st + 36, 4) && plen == 5 &&
	      !memcmp(st + 40, "hello", 5), "chroot-state-path");
	free(st);
	cn = keep;
	conn_close(&c);
	CHECK_EQ(vuf_backend_stop(b, 5000), 0, "chroot-clean-exit");
}

/* ---- migration (DEVICE_STATE) ------------------------------------------------------------ */

/* A state stream laid out as dev/fs-migrate.c says, for the hostile cases: one node, one file. */
static size_t craft(uint8_t *buf, uint32_t version, uint32_t nodes, uint64_t id, uint32_t type, const char *path,
		    size_t plen, uint64_t fh, uint32_t flags)
{
	uint32_t head[4] = { 0, version, nodes, fh ? 1 : 0 };
	struct { uint64_t id, nlookup; uint32_t type, len; } n = { id, 1, type, (uint32_t)plen };
	struct { uint64_t id, node; uint32_t flags, zero; } f = { fh, id, flags, 0 };
	size_t at = 0;

	memcpy(head, "VUFS", 4);
	memcpy(buf, head, sizeof(head));
	at += sizeof(head);
	memcpy(buf + at, &n, sizeof(n));
	at += sizeof(n);
	memcpy(buf + at, path, plen);
	at += plen;
	if (fh) {
		memcpy(buf + at, &f, sizeof(f));
		at += sizeof(f);
	}
	return at;
}

/* A load refused with the back-end alive and the connection still answering. */
static bool refused(struct conn *c, const void *buf, size_t len)
{
	return vuf_state_load(c->f, buf, len, true) > 0 && vuf_ping(c->f) == 0;
}

static void test_state_hostile(struct conn *c, const uint8_t *saved, size_t nsaved)
{
	uint8_t buf[8192];
	size_t n;

	CHECK(refused(c, "garbage", 7), "state-garbage-refused");
	CHECK(refused(c, saved, nsaved - 5), "state-truncated-refused");
	uint8_t *more = malloc(nsaved + 1);
	if (more) {
		memcpy(more, saved, nsaved);
		more[nsaved] = 0;
	}
	CHECK(more && refused(c, more, nsaved + 1), "state-trailing-byte-refused");
	free(more);
	n = craft(buf, 2, 1, 2, S_IFREG, "hello", 5, 0, 0);
	CHECK(refused(c, buf, n), "state-unknown-version-refused");
	n = craft(buf, 1, 0xffffffffu, 2, S_IFREG, "hello", 5, 0, 0);
	CHECK(refused(c, buf, n), "state-huge-count-refused");
	const char *bad_paths[] = { "../outside", "sub/../../outside", "/etc/passwd", "sub//hello", "sub/", ".", "sub/./x" };
	bool all = true;
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		n = craft(buf, 1, 1, 2, S_IFREG, bad_paths[i], strlen(bad_paths[i]), 0, 0);
		if (!refused(c, buf, n)) {
			check_note("path '%s' loaded", bad_paths[i]);
			all = false;
		}
	}
	CHECK(all, "state-escaping-paths-refused");
	n = craft(buf, 1, 1, 2, S_IFREG, "hel\0lo", 6, 0, 0);
	CHECK(refused(c, buf, n), "state-path-with-nul-refused");
	static char longp[5000];
	memset(longp, 'a', sizeof(longp));
	n = craft(buf, 1, 1, 2, S_IFREG, longp, sizeof(longp), 0, 0);
	CHECK(refused(c, buf, n), "state-long-path-refused");
	n = craft(buf, 1, 1, 2, S_IFREG, longp, 50, 0, 0); /* says 50 bytes, the stream ends after 5 */
	CHECK(refused(c, buf, 16 + 24 + 5), "state-cut-path-refused");
	n = craft(buf, 1, 1, FUSE_ROOT_ID, S_IFDIR, "sub", 3, 0, 0);
	CHECK(refused(c, buf, n), "state-root-id-refused");
	n = craft(buf, 1, 1, 1ull << 40, S_IFREG, "hello", 5, 0, 0);
	CHECK(refused(c, buf, n), "state-huge-id-refused");
	n = craft(buf, 1, 1, 2, 0170000, "hello", 5, 0, 0);
	CHECK(refused(c, buf, n), "state-unknown-type-refused");
	n = craft(buf, 1, 1, 2, S_IFREG, "hello", 5, 3, O_RDWR | O_CREAT);
	CHECK(refused(c, buf, n), "state-file-flags-refused");
	int64_t t0 = vuf_now_ms();
	CHECK(vuf_state_load(c->f, saved, nsaved, false) > 0 && vuf_ping(c->f) == 0, "state-unended-stream-refused");
	check_note("a stream never ended took %lld ms to refuse", (long long)(vuf_now_ms() - t0));
}

/*
 * Source: the main back-end, its guest knowing a directory, a file open for writing,
 * a directory open, a file renamed on the host since its lookup, and a file unlinked
 * while open. Destination: a new back-end on a copy of the tree at another path; it
 * loads the state with no ring running, then serves the same ids without an INIT.
 */
static void test_migrate(void)
{
	struct fuse_getattr_in ga = { 0 };
	struct fuse_open_in oi = { 0 };
	uint8_t *saved = NULL;
	size_t nsaved = 0;
	char cmd[400];

	CHECK((cn.f->protocol_features & (1ull << VU_PF_DEVICE_STATE)) != 0, "state-offered");
	mkdir(host("mig"), 0755);
	mkdir(host("mig/d"), 0755);
	FILE *hf = fopen(host("mig/f"), "w");
	fputs("before\n", hf);
	fclose(hf);
	close(open(host("mig/moving"), O_CREAT | O_WRONLY, 0644));
	close(open(host("mig/gone"), O_CREAT | O_WRONLY, 0644));
	mkdir(host("mig/away"), 0755);
	uint64_t nm = lookup(FUSE_ROOT_ID, "mig", NULL), nd = lookup(nm, "d", NULL);
	uint64_t nf = lookup(nm, "f", NULL), nmv = lookup(nm, "moving", NULL), ng = lookup(nm, "gone", NULL);
	uint64_t naway = lookup(nm, "away", NULL);
	lookup(nm, "f", NULL); /* two lookups of f: FORGET 1 on the destination leaves it known */
	uint64_t fh = open_file(nf, O_RDWR), gfh = open_file(ng, O_RDONLY);
	uint64_t dfh = call(&cn, FUSE_OPENDIR, nd, &oi, sizeof(oi), &rep) == 0 ? ((struct fuse_open_out *)rep.body)->fh : 0;
	if (!CHECK(nm && nd && nf && nmv && ng && naway && fh && gfh && dfh, "state-source-setup"))
		return;
	/* Many inodes known: the state's size and how long it takes, in the notes. */
	char from[200];
	mkdir(host("mig/many"), 0755);
	uint64_t nmany = lookup(nm, "many", NULL), last = 0;
	bool all = nmany != 0;
	for (int i = 0; i < MANY && all; i++) {
		snprintf(from, sizeof(from), "%s/mig/many/file-with-a-longer-name-%05d", share, i);
		close(open(from, O_CREAT | O_WRONLY, 0644));
		all = (last = lookup(nmany, strrchr(from, '/') + 1, NULL)) != 0;
	}
	CHECK(all, "state-source-many-looked-up");
	snprintf(from, sizeof(from), "%s", host("mig/moving"));
	char away[200];
	snprintf(away, sizeof(away), "%s/away", dir); /* out of the shared directory */
	/* away moves out, and another directory takes its name: that one is not the guest's inode. */
	CHECK(rename(from, host("mig/moved")) == 0 && unlink(host("mig/gone")) == 0 && rename(host("mig/away"), away) == 0 &&
	      mkdir(host("mig/away"), 0755) == 0, "state-source-host-changes");
	unsigned base;
	CHECK(vuf_get_vring_base(cn.f, 0, &base) == 0 && vuf_get_vring_base(cn.f, 1, &base) == 0, "state-source-stopped");
	int64_t t0 = vuf_now_ms();
	CHECK(vuf_state_save(cn.f, &saved, &nsaved) == 0 && nsaved > 16, "state-saved");
	check_note("saved %d inodes and more: %zu bytes in %lld ms", MANY, nsaved, (long long)(vuf_now_ms() - t0));
	if (!saved || nsaved <= 16) {
		free(saved);
		return;
	}

	/* The destination: the same tree under another path. */
	char share2[100], sock2[100], sd[140];
	snprintf(share2, sizeof(share2), "%s/share-dst", dir);
	snprintf(sock2, sizeof(sock2), "%s/dst.sock", dir);
	snprintf(sd, sizeof(sd), "--shared-dir=%s", share2);
	snprintf(cmd, sizeof(cmd), "cp -a %s %s", share, share2);
	const char *args[] = { sd, "--thread-pool-size=2", NULL };
	struct vuf_backend *be = system(cmd) == 0 ? vuf_backend_start("fs", args, sock2) : NULL;
	struct conn c;
	if (!CHECK(be && conn_connect(&c, sock2), "state-destination-start")) {
		free(saved);
		return;
	}
	test_state_hostile(&c, saved, nsaved);
	t0 = vuf_now_ms();
	CHECK_EQ(vuf_state_load(c.f, saved, nsaved, true), 0, "state-loaded");
	check_note("loaded in %lld ms", (long long)(vuf_now_ms() - t0));
	struct conn keep = cn;
	cn = c;
	if (!CHECK(conn_rings(&cn), "state-destination-rings")) {
		cn = keep;
		free(saved);
		vuf_backend_stop(be, 5000);
		return;
	}
	/* No INIT: the guest's driver goes on. */
	CHECK_EQ(call(&cn, FUSE_GETATTR, nf, &ga, sizeof(ga), &rep), 0, "state-node-known");
	struct fuse_read_in ri = { .fh = fh, .size = 100 };
	CHECK(call(&cn, FUSE_READ, nf, &ri, sizeof(ri), &rep) == 0 && rep.len == 7 && !memcmp(rep.body, "before\n", 7),
	      "state-open-file-reads");
	struct fuse_write_in wi = { .fh = fh, .offset = 7, .size = 6 };
	CHECK(call_data(&cn, FUSE_WRITE, nf, &wi, sizeof(wi), "after\n", 6, &rep, 64) == 0, "state-open-file-writes");
	char back[64] = "";
	snprintf(cmd, sizeof(cmd), "%s/mig/f", share2);
	hf = fopen(cmd, "r");
	CHECK(hf && fread(back, 1, sizeof(back) - 1, hf) == 13 && !strcmp(back, "before\nafter\n"),
	      "state-write-on-destination-host");
	if (hf)
		fclose(hf);
	ri = (struct fuse_read_in){ .fh = dfh, .size = 4096 };
	CHECK(call(&cn, FUSE_READDIR, nd, &ri, sizeof(ri), &rep) == 0 && rep.len > 0, "state-open-dir-reads");
	CHECK(lookup(nm, "f", NULL) == nf, "state-same-nodeid-on-lookup");
	CHECK_EQ(call(&cn, FUSE_GETATTR, nmv, &ga, sizeof(ga), &rep), 0, "state-renamed-node-found");
	CHECK_EQ(call(&cn, FUSE_GETATTR, last, &ga, sizeof(ga), &rep), 0, "state-many-found");
	CHECK_EQ(call(&cn, FUSE_GETATTR, ng, &ga, sizeof(ga), &rep), -ESTALE, "state-unlinked-node-stale");
	CHECK_EQ(call(&cn, FUSE_GETATTR, naway, &ga, sizeof(ga), &rep), -ESTALE, "state-moved-out-node-stale");
	ri = (struct fuse_read_in){ .fh = gfh, .size = 100 };
	CHECK_EQ(call(&cn, FUSE_READ, ng, &ri, sizeof(ri), &rep), -ESTALE, "state-unlinked-file-fails");
	release(ng, gfh, false);
	CHECK_EQ(rep.error, 0, "state-unlinked-file-released");
	release(ng, gfh, false);
	CHECK_EQ(rep.error, -EBADF, "state-unlinked-file-gone");
	forget(ng, 1);
	uint8_t buf[100];
	struct fuse_create_in ci = { .flags = O_WRONLY, .mode = 0644 };
	size_t len = with_names(buf, &ci, sizeof(ci), "new", NULL);
	CHECK(call(&cn, FUSE_CREATE, nm, buf, len, &rep) == 0 && ((struct fuse_entry_out *)rep.body)->nodeid != nf &&
	      ((struct fuse_entry_out *)rep.body)->nodeid != nm, "state-create-after");
	release(nf, fh, false);
	CHECK_EQ(rep.error, 0, "state-release-after");

	/* A destination whose tree lacks an inode: that one is lost, the rest works. */
	snprintf(cmd, sizeof(cmd), "rm -f %s/mig/f", share2);
	conn_close(&cn);
	cn = keep;
	struct conn c3;
	if (system(cmd) == 0 && CHECK(conn_connect(&c3, sock2), "state-missing-reconnect")) {
		CHECK_EQ(vuf_state_load(c3.f, saved, nsaved, true), 0, "state-missing-path-loaded");
		cn = c3;
		if (conn_rings(&cn)) {
			CHECK(call(&cn, FUSE_GETATTR, nf, &ga, sizeof(ga), &rep) == -ESTALE &&
			      call(&cn, FUSE_GETATTR, nd, &ga, sizeof(ga), &rep) == 0, "state-missing-path-lost");
			conn_close(&cn);
		}
		cn = keep;
	}
	/*
	 * A front-end that left and came back (a reset to the device, as QEMU's stop is)
	 * finds its driver's inodes; a new driver's INIT drops them.
	 */
	struct conn c4;
	if (CHECK(conn_open(&c4, sock2), "reset-reconnect")) {
		cn = c4;
		CHECK_EQ(call(&cn, FUSE_GETATTR, nd, &ga, sizeof(ga), &rep), 0, "reset-keeps-nodes");
		struct fuse_init_in in = { .major = 7, .minor = 37 };
		CHECK_EQ(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep), 0, "init-after-reset");
		CHECK_EQ(call(&cn, FUSE_GETATTR, nd, &ga, sizeof(ga), &rep), -ESTALE, "init-after-reset-forgets");
		CHECK_EQ(call(&cn, FUSE_INIT, 0, &in, sizeof(in), &rep), -EPROTO, "init-twice-after-reset-refused");
		conn_close(&cn);
		cn = keep;
	}
	CHECK_EQ(vuf_backend_stop(be, 5000), 0, "state-destination-clean-exit");
	free(saved);
}

int main(void)
{
	check_deadline(300);
	signal(SIGPIPE, SIG_IGN); /* a state load the back-end stops reading fails a write, not the test */
	if (!mkdtemp(dir))
		return 1;
	snprintf(share, sizeof(share), "%s/share", dir);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	snprintf(sockp, sizeof(sockp), "%s/fs.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/backend.log", dir);
	mkdir(share, 0755);
	mkdir(host("sub"), 0755);
	FILE *f = fopen(host("hello"), "w");
	fputs("hello\n", f);
	fclose(f);
	f = fopen(outside, "w");
	fputs("SECRET\n", f);
	fclose(f);
	setenv("VUF_BACKEND_LOG", logpath, 1);

	char sd[100];
	snprintf(sd, sizeof(sd), "--shared-dir=%s", share);
	const char *args[] = { sd, "--xattr", "--thread-pool-size=2", NULL };
	struct vuf_backend *be = vuf_backend_start("fs", args, sockp);
	if (!CHECK(be != NULL, "backend-start") || !CHECK(conn_open(&cn, sockp), "connect"))
		return check_exit();
	int fds = vuf_backend_fd_count(be);
	backend_pid = be->pid;

	test_init();
	test_lookup();
	test_attrs();
	test_names();
	test_files();
	test_readdir();
	test_locks();
	test_hostile();
	test_destroy();
	int now_fds = vuf_backend_wait_fd_count(be, fds, 2000);
	if (!CHECK(now_fds <= fds, "no-fd-leak")) {
		char cmd[100];
		snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)be->pid);
		check_note("%d fds, %d before", now_fds, fds);
		if (system(cmd) != 0)
			check_note("cannot list the fds");
	}
	test_killpriv();
	test_supp_group();
	test_confined_ids();
	test_readonly();
	test_ids();
	test_uid_map();
	test_cli();
	test_migrate(); /* last: it stops the main connection's rings */

	conn_close(&cn);
	CHECK(vuf_backend_alive(be), "backend-survived");
	CHECK_EQ(vuf_backend_stop(be, 5000), 0, "backend-clean-exit");
	FILE *lf = fopen(logpath, "r");
	char line[512];
	bool killed = false;
	while (lf && fgets(line, sizeof(line), lf))
		killed |= strstr(line, "is not allowed") != NULL;
	if (lf)
		fclose(lf);
	CHECK(!killed, "sandbox-allowlist-complete");
	if (!check_failures()) {
		char cmd[200];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			check_note("cannot remove %s", dir);
	}
	return check_exit();
}
