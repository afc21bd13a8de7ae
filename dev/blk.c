/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-blk (device id 2) over a raw image file or block device. Requests are
 * decoded here and handed to dev/blk-io.c, which moves the data between the
 * image and guest memory asynchronously; completions come back on the loop.
 *
 * build: blk.c blk-io.c disk-lock.c disk-queue.c
 * pkg-config: liburing
 * debian: liburing-dev
 * systemd: ReadWritePaths=-/var/lib/vhostbox
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: SystemCallFilter=@system-service
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "dev/blk-io.h"
#include "dev/disk-lock.h"
#include "dev/disk-queue.h"
#include "proto/device.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

/* virtio-blk feature bits, request types and status values (virtio 1.2, 5.2). */
enum {
	F_SIZE_MAX = 1, F_SEG_MAX = 2, F_RO = 5, F_BLK_SIZE = 6, F_FLUSH = 9, F_TOPOLOGY = 10,
	F_CONFIG_WCE = 11, F_MQ = 12, F_DISCARD = 13, F_WRITE_ZEROES = 14,
};
enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

#define SECTOR 512u
#define ID_BYTES 20
#define SEG_MAX 126              /* data segments per request we advertise */
#define MAX_IOV (SEG_MAX + 34)   /* + header, status and region splits */
#define SLOTS_PER_QUEUE 256      /* requests in flight per queue */
#define MAX_QUEUES 64
#define MAX_THREADS 64
#define MAX_DISCARD_SECTORS 0x3fffffu
#define WRITE_ZEROES_UNMAP 1u

struct blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	struct { uint16_t cylinders; uint8_t heads; uint8_t sectors; } geometry;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint8_t secure_erase_and_zoned[36]; /* not offered: reads as zeros */
} __attribute__((packed));

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk_queue;
struct blk;

/* One thread's share: its loop and its io_uring; queue i runs on thread i % nthreads. */
struct blk_thread {
	struct blk *blk;
	unsigned index;
	struct vu_loop *loop;
	struct blk_io *io;
};

struct slot {
	struct disk_slot base;       /* the request as popped (into iov) */
	struct blk_queue *q;
	struct iovec iov[MAX_IOV];
	struct iovec data[MAX_IOV];  /* its data part */
	uint8_t *status;
	uint32_t written;            /* bytes of guest memory written, for used.len */
	int64_t expect;              /* the I/O result that means success */
};

struct blk_queue {
	struct blk *blk;
	struct disk_queue dq;        /* its ring, slots, what they hold and its thread's io_uring */
	struct disk_lock_queue lock; /* its share of the image lock */
};

struct blk {
	struct vu_dev dev;
	const char *path;
	bool read_only, direct, writethrough;
	unsigned block_size;
	const char *serial_arg;
	char serial[ID_BYTES];       /* as GET_ID returns it: not NUL-terminated when full */
	struct blk_image img;
	struct disk_lock lock;       /* --lock, --lock-wait */
	unsigned nthreads;
	struct blk_thread threads[MAX_THREADS];
	struct blk_config config;
	struct blk_queue queues[MAX_QUEUES];
};

#define BLK_FIELD(f) offsetof(struct blk, f)
static const struct vu_choice block_sizes[] = { { "512", 512 }, { "4096", 4096 }, { NULL } };
static const struct vu_option blk_options[] = {
	{ .name = "blk-file", .kind = VU_OPT_PATH, .offset = BLK_FIELD(path), .arg = "PATH",
	  .help = "raw image file or block device to serve (required)", .flags = VU_OPT_CAPABILITY },
	{ .name = "read-only", .kind = VU_OPT_FLAG, .offset = BLK_FIELD(read_only),
	  .help = "serve the disk read-only", .flags = VU_OPT_CAPABILITY },
	{ .name = "num-queues", .kind = VU_OPT_UINT, .offset = BLK_FIELD(dev.num_queues), .arg = "N",
	  .help = "request queues", .min = 1, .max = MAX_QUEUES },
	{ .name = "queue-size", .kind = VU_OPT_UINT, .offset = BLK_FIELD(dev.max_queue_size), .arg = "N",
	  .help = "largest queue (ring) size accepted", .min = 2, .max = VU_VRING_MAX_SIZE, .flags = VU_OPT_POW2 },
	{ .name = "logical-block-size", .kind = VU_OPT_ENUM, .offset = BLK_FIELD(block_size), .arg = "N",
	  .help = "the disk's logical block size in bytes", .choices = block_sizes },
	{ .name = "serial", .kind = VU_OPT_STRING, .offset = BLK_FIELD(serial_arg), .arg = "ID",
	  .help = "disk serial number reported to the guest", .max = ID_BYTES },
	{ .name = "direct", .kind = VU_OPT_FLAG, .offset = BLK_FIELD(direct),
	  .help = "open the image with O_DIRECT (bypass the host page cache)" },
	{ .name = "writethrough", .kind = VU_OPT_FLAG, .offset = BLK_FIELD(writethrough),
	  .help = "start with the write cache off: every write is synced" },
	{ .name = "threads", .kind = VU_OPT_UINT, .offset = BLK_FIELD(nthreads), .arg = "N",
	  .help = "spread the queues over N threads; 1: all on the main loop", .min = 1, .max = MAX_THREADS },
	DISK_LOCK_OPTIONS(BLK_FIELD(lock)),
	{ NULL },
};

static struct vu_dev *blk_create(void)
{
	struct blk *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->block_size = SECTOR;
	b->nthreads = 1;
	b->img.fd = -1;
	disk_lock_init(&b->lock);
	return &b->dev;
}

static void blk_complete(void *opaque, void *op, int result);
static void blk_batch_end(void *opaque);

static int blk_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct blk *b = (struct blk *)dev;
	struct blk_config *c = &b->config;

	if (!b->path) {
		vu_err("--blk-file is required");
		return -1;
	}
	if (b->read_only)
		dev->features |= 1ull << F_RO;
	if (b->serial_arg)
		memcpy(b->serial, b->serial_arg, strlen(b->serial_arg)); /* at most ID_BYTES: the option says */
	if (disk_lock_open(&b->lock, &b->img, b->path, b->read_only, b->direct, b->block_size) < 0)
		return -1;
	if (b->nthreads > dev->num_queues)
		b->nthreads = dev->num_queues; /* a thread without a queue would idle */
	for (unsigned i = 0; i < b->nthreads; i++) {
		struct blk_thread *t = &b->threads[i];
		t->blk = b;
		t->index = i;
		t->loop = i ? vu_loop_new() : loop;
		t->io = t->loop ? blk_io_new(t->loop, SLOTS_PER_QUEUE * 2, blk_complete, blk_batch_end, t) : NULL;
		if (!t->io || (i && vu_loop_start_thread(t->loop) < 0)) {
			vu_err("cannot set up I/O thread %u", i);
			return -1;
		}
	}
	*c = (struct blk_config){
		.capacity = b->img.size / SECTOR,
		.size_max = 1u << 22,
		.seg_max = SEG_MAX,
		.blk_size = b->block_size,
		.min_io_size = b->block_size / SECTOR,
		.writeback = !b->writethrough,
		.num_queues = dev->num_queues,
		.max_discard_sectors = MAX_DISCARD_SECTORS,
		.max_discard_seg = 1,
		.discard_sector_alignment = b->block_size / SECTOR,
		.max_write_zeroes_sectors = MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = 1,
	};
	for (unsigned i = 0; i < dev->num_queues; i++) {
		struct blk_thread *t = &b->threads[i % b->nthreads];
		b->queues[i].blk = b;
		b->queues[i].dq.io = t->io;
		if (disk_lock_queue_init(&b->lock, &b->queues[i].lock, dev, t->loop) < 0) {
			vu_err("cannot set up queue %u", i);
			return -1;
		}
	}
	return 0;
}

static void blk_destroy(struct vu_dev *dev)
{
	struct blk *b = (struct blk *)dev;

	for (unsigned i = 0; i < b->nthreads; i++) {
		struct blk_thread *t = &b->threads[i];
		if (i && t->loop)
			vu_loop_stop_thread(t->loop);
	}
	for (unsigned i = 0; i < MAX_QUEUES; i++)
		disk_lock_queue_free(&b->queues[i].lock);
	for (unsigned i = 0; i < b->nthreads; i++) {
		struct blk_thread *t = &b->threads[i];
		blk_io_free(t->io);
		if (i)
			vu_loop_free(t->loop);
	}
	blk_image_close(&b->img);
	for (unsigned i = 0; i < MAX_QUEUES; i++)
		disk_queue_free(&b->queues[i].dq);
	disk_lock_destroy(&b->lock);
	free(b);
}

/* ---- requests ---------------------------------------------------------- */

static void finish(struct slot *s, uint8_t status)
{
	struct blk_queue *q = s->q;

	*s->status = status;
	disk_queue_complete(&q->dq, &s->base, s->written + 1);
}

/* Is [sector, sector + bytes/512) inside the disk and aligned to the block size? */
static bool in_range(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = b->config.capacity;
	uint64_t n = bytes / SECTOR;

	return bytes % b->block_size == 0 && (sector * SECTOR) % b->block_size == 0 &&
	       sector <= cap && n <= cap - sector;
}

/* DISCARD and WRITE_ZEROES: one range, as advertised. */
static uint8_t start_range_op(struct blk *b, struct slot *s, uint32_t type, size_t out_bytes)
{
	struct blk_range r;

	if (b->read_only)
		return S_IOERR;
	if (out_bytes != sizeof(struct blk_req_hdr) + sizeof(r) ||
	    vu_iov_to_buf(s->base.req.iov, s->base.req.out, sizeof(struct blk_req_hdr), &r, sizeof(r)) != sizeof(r))
		return S_IOERR; /* more segments than max_*_seg, or a torn one */
	if (r.num_sectors > MAX_DISCARD_SECTORS || !in_range(b, r.sector, (uint64_t)r.num_sectors * SECTOR))
		return S_IOERR;
	if (type == T_DISCARD ? r.flags != 0 : (r.flags & ~WRITE_ZEROES_UNMAP))
		return S_UNSUPP;

	uint64_t off = r.sector * SECTOR, len = (uint64_t)r.num_sectors * SECTOR;
	enum blk_zero how = type == T_DISCARD ? BLK_DISCARD : (r.flags & WRITE_ZEROES_UNMAP) ? BLK_ZERO_UNMAP : BLK_ZERO;
	s->expect = 0;
	int done = blk_io_zero(s->q->dq.io, &b->img, how, off, len, s);
	return done < 0 ? S_IOERR : done ? S_OK : 0xff;
}

/*
 * Starts one request. Returns a status to complete it with now, or 0xff when
 * an I/O operation was queued and the completion will finish it.
 */
static uint8_t start(struct blk *b, struct slot *s)
{
	struct vu_req *req = &s->base.req;
	struct blk_req_hdr h;
	size_t out_bytes = vu_iov_size(req->iov, req->out);
	size_t in_data = req->in_bytes - 1; /* the last writable byte is the status */
	int n;

	if (vu_iov_to_buf(req->iov, req->out, 0, &h, sizeof(h)) != sizeof(h))
		return S_IOERR;
	switch (h.type) {
	case T_IN:
		n = vu_iov_slice(req->iov + req->out, req->in, 0, in_data, s->data, MAX_IOV);
		if (n < 0 || in_data % SECTOR || !in_range(b, h.sector, in_data))
			return S_IOERR;
		s->expect = in_data;
		s->written = in_data;
		return blk_io_readv(s->q->dq.io, b->img.fd, s->data, n, h.sector * SECTOR, s) < 0 ? S_IOERR : 0xff;
	case T_OUT: {
		size_t len = out_bytes - sizeof(h);
		if (b->read_only)
			return S_IOERR;
		n = vu_iov_slice(req->iov, req->out, sizeof(h), len, s->data, MAX_IOV);
		if (n < 0 || len % SECTOR || !in_range(b, h.sector, len))
			return S_IOERR;
		s->expect = len;
		return blk_io_writev(s->q->dq.io, b->img.fd, s->data, n, h.sector * SECTOR,
				     !b->config.writeback, s) < 0 ? S_IOERR : 0xff;
	}
	case T_FLUSH:
		s->expect = 0;
		return blk_io_fdatasync(s->q->dq.io, b->img.fd, s) < 0 ? S_IOERR : 0xff;
	case T_GET_ID: {
		size_t len = in_data < ID_BYTES ? in_data : ID_BYTES;
		s->written = vu_iov_from_buf(req->iov + req->out, req->in, 0, b->serial, len);
		return S_OK;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES:
		return start_range_op(b, s, h.type, out_bytes);
	default:
		return S_UNSUPP;
	}
}

static void blk_complete(void *opaque, void *op, int result)
{
	struct slot *s = op;

	if (result != s->expect)
		s->written = 0;
	finish(s, result == s->expect ? S_OK : S_IOERR);
}

/* Publishes a batch of completions per queue, then refills queues that ran out of slots. */
static void blk_batch_end(void *opaque)
{
	struct blk_thread *t = opaque;
	struct blk *b = t->blk;

	for (unsigned i = t->index; i < b->dev.num_queues; i += b->nthreads) {
		struct disk_queue *dq = &b->queues[i].dq;
		disk_queue_publish(dq);
		if (disk_queue_refill(dq))
			b->dev.type->kick(&b->dev, dq->vq);
	}
}

/* The front-end stopped a ring, rings paused: the image lock may go (dev/disk-lock.c). */
static void blk_queue_stop(struct vu_dev *dev, struct vu_vring *vq)
{
	disk_lock_stop(&((struct blk *)dev)->queues[vq->index].lock);
}

/* A request popped into a slot of queue q (disk_queue_kick): checked, then started. */
static enum disk_start take(void *opaque, struct disk_queue *dq, struct disk_slot *ds)
{
	struct blk_queue *q = opaque;
	struct slot *s = (struct slot *)ds;
	struct vu_req *req = &ds->req;

	if (req->in == 0 || req->truncated) {
		vu_vring_fail(dq->vq, req->in ? "block request with more segments than seg_max" :
						"block request without a status byte");
		return DISK_BROKEN;
	}
	const struct iovec *last = &req->iov[req->out + req->in - 1];
	s->q = q;
	s->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	s->written = 0;
	uint8_t status = start(q->blk, s);
	if (status == 0xff)
		return DISK_QUEUED;
	finish(s, status);
	return DISK_DONE;
}

static void blk_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct blk *b = (struct blk *)dev;
	struct blk_queue *q = &b->queues[vq->index];

	q->dq.vq = vq;
	if (!disk_lock_kick(&q->lock, vq))
		return;
	if (!disk_queue_slots(&q->dq, SLOTS_PER_QUEUE, sizeof(struct slot), offsetof(struct slot, iov), MAX_IOV)) {
		vu_vring_fail(vq, "out of memory for request slots");
		return;
	}
	disk_queue_kick(&q->dq, take, q);
}

/* Waits for everything this queue has in flight. */
static void blk_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct blk *b = (struct blk *)dev;
	struct blk_queue *q = &b->queues[vq->index];

	disk_queue_drain(&q->dq);
}

static struct vu_loop *blk_queue_loop(struct vu_dev *dev, unsigned index)
{
	struct blk *b = (struct blk *)dev;
	return b->threads[index % b->nthreads].loop;
}

static int blk_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	memcpy(buf, (uint8_t *)&((struct blk *)dev)->config + offset, len);
	return 0;
}

/* Only the write-cache byte is writable (CONFIG_WCE). */
static int blk_set_config(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct blk *b = (struct blk *)dev;
	const uint32_t wce = offsetof(struct blk_config, writeback);

	if (offset != wce || len != 1 || buf[0] > 1)
		return -1;
	b->config.writeback = buf[0];
	return 0;
}

/*
 * The state QEMU does not carry across a migration: the write cache mode the guest
 * chose (config writeback, which QEMU reads from us and does not save).
 */
struct blk_state {
	char magic[4];          /* "VBLK" */
	uint8_t version;        /* 1 */
	uint8_t writeback;
	uint8_t reserved[2];
};

static int blk_state_save(struct vu_dev *dev, void **buf, size_t *len)
{
	struct blk_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -1;
	memcpy(st->magic, "VBLK", 4);
	st->version = 1;
	st->writeback = ((struct blk *)dev)->config.writeback;
	*buf = st;
	*len = sizeof(*st);
	return 0;
}

static int blk_state_load(struct vu_dev *dev, const void *buf, size_t len)
{
	struct blk_state st;

	if (len != sizeof(st))
		return -1;
	memcpy(&st, buf, sizeof(st));
	if (memcmp(st.magic, "VBLK", 4) || st.version != 1 || st.writeback > 1)
		return -1;
	((struct blk *)dev)->config.writeback = st.writeback;
	return 0;
}

/*
 * Confined: io_uring (set up in init, its operations restricted to these four,
 * dev/blk-io.c), the two ioctls of a block device's DISCARD and WRITE_ZEROES, and
 * the image's lock taken and released as devices start and stop (--lock=start).
 */
static const struct vu_syscall blk_syscalls[] = {
	VU_SYSCALL(io_uring_enter),
	VU_SYSCALL_IF(ioctl, 1, BLKDISCARD), VU_SYSCALL_IF(ioctl, 1, BLKZEROOUT),
	DISK_LOCK_SYSCALLS,
	VU_SYSCALL_END,
};

static const char *const blk_aliases[] = { "block", NULL };

const struct vu_device_type vu_dev_blk = {
	.name = "blk",
	.aliases = blk_aliases,
	.schema_type = "block",
	.summary = "virtio-blk disk backed by a raw image or block device (io_uring)",
	.qemu_args = "-device vhost-user-blk-pci,chardev=vu0",
	.virtio_id = 2,
	.num_queues = 1,
	.features = 1ull << F_SIZE_MAX | 1ull << F_SEG_MAX | 1ull << F_BLK_SIZE | 1ull << F_FLUSH |
		    1ull << F_TOPOLOGY | 1ull << F_CONFIG_WCE | 1ull << F_MQ | 1ull << F_DISCARD |
		    1ull << F_WRITE_ZEROES,
	.config_size = sizeof(struct blk_config),
	.inflight = true,
	.options = blk_options,
	.create = blk_create,
	.init = blk_init,
	.kick = blk_kick,
	.queue_drain = blk_queue_drain,
	.queue_stop = blk_queue_stop,
	.queue_loop = blk_queue_loop,
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.state_save = blk_state_save,
	.state_load = blk_state_load,
	.destroy = blk_destroy,
	.syscalls = blk_syscalls,
};
