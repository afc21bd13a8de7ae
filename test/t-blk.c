/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-blk through the test front-end: config space, every request type,
 * bad requests, read-only disks, discard/write-zeroes on a sparse image,
 * inflight resubmission after a back-end restart, the pages a request marks in
 * a live migration's dirty log, and the image lock's hand-over (--lock=start).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/inflight.h"
#include "test/check.h"
#include "test/dirty-log.h"
#include "test/frontend.h"

#define SECTOR 512
#define DISK_SIZE (16u << 20)
#define SERIAL "t-blk-serial-0123456"   /* exactly 20 bytes */

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };
enum { F_RO = 5, F_SEG_MAX = 2, F_BLK_SIZE = 6, F_FLUSH = 9, F_TOPOLOGY = 10, F_CONFIG_WCE = 11,
       F_MQ = 12, F_DISCARD = 13, F_WRITE_ZEROES = 14 };

struct req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static char dir[] = "/tmp/t-blk.XXXXXX";
static char image[64], sock[64];

static const uint64_t all_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
				     1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VHOST_USER_F_PROTOCOL_FEATURES |
				     0xffffffull;
static const uint64_t all_pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG |
			       1ull << VU_PF_INFLIGHT_SHMFD | 1ull << VU_PF_DEVICE_STATE;
#define PACKED (1ull << VIRTIO_F_RING_PACKED) /* more features, for the packed cases */

struct disk {
	struct vuf_backend *be;
	struct vuf *f;
	struct vuf_vq *vq;
	uint64_t hdr, data, status; /* guest buffers */
};

/* A back-end on socket path, and a front-end with these (extra) features connected to it. */
static bool disk_open_at(struct disk *d, const char *path, const char *const *args, unsigned queues,
			 uint64_t more_features, uint64_t more_pf)
{
	memset(d, 0, sizeof(*d));
	d->be = vuf_backend_start("blk", args, path);
	if (!d->be)
		return false;
	d->f = vuf_connect(path, 2000);
	if (!d->f || vuf_mem_init(d->f, 2, 8 << 20, 0) < 0 ||
	    vuf_negotiate(d->f, all_features | more_features, all_pf | more_pf) < 0)
		return false;
	for (unsigned i = 0; i < queues; i++) {
		struct vuf_vq *vq = vuf_vq_setup(d->f, i, 128, 0);
		if (!vq)
			return false;
		if (i == 0)
			d->vq = vq;
	}
	d->hdr = vuf_alloc(d->f, 64, 64);
	d->data = vuf_alloc(d->f, 1 << 20, 4096);
	d->status = vuf_alloc(d->f, 64, 64);
	return d->hdr && d->data && d->status;
}

static bool disk_open(struct disk *d, const char *const *args, unsigned queues)
{
	return disk_open_at(d, sock, args, queues, 0, 0);
}

static void disk_close(struct disk *d)
{
	vuf_close(d->f);
	if (d->be)
		vuf_backend_stop(d->be, 2000);
}

/*
 * One request on vq: header, then data (device-readable for OUT-like types,
 * writable for IN-like), then the status byte. Returns the status, or -1 if no
 * completion came; *used gets used.len.
 */
static int do_req(struct disk *d, struct vuf_vq *vq, uint32_t type, uint64_t sector, uint32_t len,
		  bool data_writable, uint32_t *used)
{
	struct req_hdr h = { .type = type, .sector = sector };
	struct vuf_buf out[2] = { { d->hdr, sizeof(h) }, { d->data, len } };
	struct vuf_buf in[2] = { { d->data, len }, { d->status, 1 } };
	uint32_t id, got;
	uint8_t status = 0xee;

	vuf_gpa_write(d->f, d->hdr, &h, sizeof(h));
	vuf_gpa_write(d->f, d->status, &status, 1);
	int head = data_writable || !len ? vuf_vq_add(vq, out, 1, len ? in : in + 1, len ? 2 : 1, false)
					 : vuf_vq_add(vq, out, 2, in + 1, 1, false);
	if (head < 0 || vuf_vq_kick(vq) < 0 || vuf_vq_wait_used(vq, &id, &got, 2000) < 0 ||
	    id != (uint32_t)head)
		return -1;
	if (used)
		*used = got;
	vuf_gpa_read(d->f, d->status, &status, 1);
	return status;
}

/* Queues one request of len bytes at sector (header, data, status) and kicks; the head or -1. */
static int start_req(struct disk *d, uint32_t type, uint64_t sector, uint32_t len)
{
	struct req_hdr h = { .type = type, .sector = sector };
	struct vuf_buf out[2] = { { d->hdr, sizeof(h) }, { d->data, len } };
	struct vuf_buf in[2] = { { d->data, len }, { d->status, 1 } };
	uint8_t status = 0xee;

	vuf_gpa_write(d->f, d->hdr, &h, sizeof(h));
	vuf_gpa_write(d->f, d->status, &status, 1);
	int head = type == T_IN ? vuf_vq_add(d->vq, out, 1, in, 2, false) : vuf_vq_add(d->vq, out, 2, in + 1, 1, false);
	return head >= 0 && vuf_vq_kick(d->vq) == 0 ? head : -1;
}

/* The status of the request start_req queued, once it completes within timeout_ms; else -1. */
static int finish_req(struct disk *d, int head, int timeout_ms)
{
	uint32_t id, len;
	uint8_t status = 0xee;

	if (head < 0 || vuf_vq_wait_used(d->vq, &id, &len, timeout_ms) < 0 || id != (uint32_t)head)
		return -1;
	vuf_gpa_read(d->f, d->status, &status, 1);
	return status;
}

static void fill(struct disk *d, uint8_t seed, uint32_t len)
{
	uint8_t *p = vuf_gpa(d->f, d->data, len);
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static bool image_holds(uint64_t off, uint8_t seed, uint32_t len)
{
	uint8_t buf[65536];
	int fd = open(image, O_RDONLY);
	bool ok = fd >= 0 && len <= sizeof(buf) && pread(fd, buf, len, off) == (ssize_t)len;

	for (uint32_t i = 0; ok && i < len; i++)
		ok = buf[i] == (uint8_t)(seed + i * 7);
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool image_zero(uint64_t off, uint32_t len)
{
	uint8_t buf[65536];
	int fd = open(image, O_RDONLY);
	bool ok = fd >= 0 && len <= sizeof(buf) && pread(fd, buf, len, off) == (ssize_t)len;

	for (uint32_t i = 0; ok && i < len; i++)
		ok = buf[i] == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static void test_config(void)
{
	/* Two queues on two threads (--threads): queue 1 runs on a worker thread. */
	const char *args[] = { "--blk-file", image, "--num-queues=2", "--threads=2", "--serial=" SERIAL, NULL };
	struct disk d;

	if (!CHECK(disk_open(&d, args, 2), "blk-open")) {
		disk_close(&d);
		return;
	}
	uint64_t want = 1ull << F_SEG_MAX | 1ull << F_BLK_SIZE | 1ull << F_FLUSH | 1ull << F_TOPOLOGY |
			1ull << F_CONFIG_WCE | 1ull << F_MQ | 1ull << F_DISCARD | 1ull << F_WRITE_ZEROES;
	CHECK((d.f->offered_features & want) == want, "blk-features-offered");
	CHECK(!(d.f->offered_features & (1ull << F_RO)), "blk-no-ro-when-writable");
	CHECK(d.f->offered_protocol_features & (1ull << VU_PF_INFLIGHT_SHMFD), "blk-offers-inflight");

	uint8_t cfg[96] = { 0 };
	CHECK_EQ(vuf_get_config(d.f, 0, 60, cfg), 60 + VU_CONFIG_HDR_SIZE, "blk-config-read");
	uint64_t capacity;
	uint32_t seg_max, blk_size, max_discard, max_wz;
	uint16_t nq;
	memcpy(&capacity, cfg, 8);
	memcpy(&seg_max, cfg + 12, 4);
	memcpy(&blk_size, cfg + 20, 4);
	memcpy(&nq, cfg + 34, 2);
	memcpy(&max_discard, cfg + 36, 4);
	memcpy(&max_wz, cfg + 48, 4);
	CHECK_EQ(capacity, DISK_SIZE / SECTOR, "blk-config-capacity");
	CHECK(seg_max >= 1 && seg_max <= 126, "blk-config-seg-max");
	CHECK_EQ(blk_size, 512, "blk-config-blk-size");
	CHECK_EQ(nq, 2, "blk-config-num-queues");
	CHECK_EQ(cfg[32], 1, "blk-config-writeback-default");
	CHECK(max_discard > 0 && max_wz > 0 && cfg[56] == 1, "blk-config-discard-limits");
	CHECK_EQ(vuf_get_config(d.f, 90, 10, cfg), 0, "blk-config-read-past-end-refused");

	uint8_t off = 0;
	CHECK_EQ(vuf_set_config(d.f, 32, 1, &off), 0, "blk-config-wce-write");
	CHECK_EQ(vuf_get_config(d.f, 32, 1, cfg), 1 + VU_CONFIG_HDR_SIZE, "blk-config-wce-reread");
	CHECK_EQ(cfg[0], 0, "blk-config-wce-now-off");
	CHECK(vuf_set_config(d.f, 0, 8, cfg) < 0, "blk-config-capacity-not-writable");

	/* GET_ID on queue 1: the serial, used.len = 20 + status byte. */
	uint32_t used = 0;
	CHECK_EQ(do_req(&d, d.f->vq[1], T_GET_ID, 0, 20, true, &used), S_OK, "blk-get-id");
	char id[21] = { 0 };
	vuf_gpa_read(d.f, d.data, id, 20);
	CHECK(!strcmp(id, SERIAL), "blk-get-id-serial");
	CHECK_EQ(used, 21, "blk-get-id-used-len");
	for (unsigned i = 0; i < 2; i++) {
		fill(&d, (uint8_t)(0x60 + i), 4096);
		CHECK_EQ(do_req(&d, d.f->vq[i], T_OUT, 64 + 8 * i, 4096, false, NULL), S_OK,
			 "blk-threads-write-queue-%u", i);
		CHECK(image_holds((64 + 8 * i) * SECTOR, (uint8_t)(0x60 + i), 4096), "blk-threads-image-queue-%u", i);
	}
	disk_close(&d);
}

static void test_io(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	struct disk d;
	uint32_t used;

	if (!CHECK(disk_open(&d, args, 1), "blk-io-open")) {
		disk_close(&d);
		return;
	}
	fill(&d, 0x11, 8192);
	CHECK_EQ(do_req(&d, d.vq, T_OUT, 24, 8192, false, &used), S_OK, "blk-write");
	CHECK_EQ(used, 1, "blk-write-used-len");
	CHECK(image_holds(24 * SECTOR, 0x11, 8192), "blk-write-reaches-image");
	memset(vuf_gpa(d.f, d.data, 8192), 0, 8192);
	CHECK_EQ(do_req(&d, d.vq, T_IN, 24, 8192, true, &used), S_OK, "blk-read");
	CHECK_EQ(used, 8193, "blk-read-used-len");
	uint8_t *p = vuf_gpa(d.f, d.data, 8192);
	CHECK(p[0] == 0x11 && p[8191] == (uint8_t)(0x11 + 8191 * 7), "blk-read-data");
	CHECK_EQ(do_req(&d, d.vq, T_FLUSH, 0, 0, false, NULL), S_OK, "blk-flush");

	/* A read split over several writable buffers, in an indirect table. */
	struct req_hdr h = { .type = T_IN, .sector = 24 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	struct vuf_buf out = { d.hdr, sizeof(h) };
	struct vuf_buf in[4] = { { d.data + 65536, 512 }, { d.data + 131072, 3584 },
				 { d.data + 200000, 4096 }, { d.status, 1 } };
	uint32_t id, len;
	int head = vuf_vq_add(d.vq, &out, 1, in, 4, true);
	CHECK(head >= 0 && vuf_vq_kick(d.vq) == 0 && vuf_vq_wait_used(d.vq, &id, &len, 2000) == 0,
	      "blk-read-indirect-completes");
	uint8_t st = 0xee, *q = vuf_gpa(d.f, d.data + 200000, 4096);
	vuf_gpa_read(d.f, d.status, &st, 1);
	CHECK(st == S_OK && len == 8193 && q[4095] == (uint8_t)(0x11 + 8191 * 7), "blk-read-indirect-data");

	/* A buffer that crosses from guest region 0 into region 1. */
	uint64_t cross = VUF_RAM_BASE + (8 << 20) - 2048;
	fill(&d, 0x5a, 4096);
	vuf_gpa_write(d.f, cross, vuf_gpa(d.f, d.data, 4096), 4096);
	h = (struct req_hdr){ .type = T_OUT, .sector = 100 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	struct vuf_buf wout[2] = { { d.hdr, sizeof(h) }, { cross, 4096 } };
	struct vuf_buf win = { d.status, 1 };
	head = vuf_vq_add(d.vq, wout, 2, &win, 1, false);
	CHECK(head >= 0 && vuf_vq_kick(d.vq) == 0 && vuf_vq_wait_used(d.vq, &id, &len, 2000) == 0 &&
	      image_holds(100 * SECTOR, 0x5a, 4096), "blk-write-across-regions");

	/* Bad requests get IOERR or UNSUPP, and the queue goes on. */
	CHECK_EQ(do_req(&d, d.vq, T_IN, DISK_SIZE / SECTOR, 512, true, NULL), S_IOERR, "blk-read-past-end");
	CHECK_EQ(do_req(&d, d.vq, T_OUT, DISK_SIZE / SECTOR - 1, 1024, false, NULL), S_IOERR, "blk-write-straddling-end");
	CHECK_EQ(do_req(&d, d.vq, T_IN, ~0ull / 2, 512, true, NULL), S_IOERR, "blk-read-huge-sector");
	CHECK_EQ(do_req(&d, d.vq, T_OUT, 8, 100, false, NULL), S_IOERR, "blk-write-partial-sector");
	CHECK_EQ(do_req(&d, d.vq, 99, 0, 0, false, NULL), S_UNSUPP, "blk-unknown-type");
	CHECK_EQ(do_req(&d, d.vq, T_IN, 0, 512, true, NULL), S_OK, "blk-queue-still-works");

	/* Discard and write zeroes on the sparse image. */
	fill(&d, 0x33, 65536);
	CHECK_EQ(do_req(&d, d.vq, T_OUT, 2048, 65536, false, NULL), S_OK, "blk-write-before-discard");
	struct range r = { .sector = 2048, .num_sectors = 128 };
	vuf_gpa_write(d.f, d.data, &r, sizeof(r));
	CHECK_EQ(do_req(&d, d.vq, T_DISCARD, 0, sizeof(r), false, NULL), S_OK, "blk-discard");
	int fd = open(image, O_RDONLY);
	off_t hole = lseek(fd, 2048 * SECTOR, SEEK_HOLE);
	close(fd);
	CHECK(hole == 2048 * SECTOR && image_zero(2048 * SECTOR, 65536), "blk-discard-punches-hole");
	fill(&d, 0x44, 65536);
	CHECK_EQ(do_req(&d, d.vq, T_OUT, 4096, 65536, false, NULL), S_OK, "blk-write-before-zeroes");
	r = (struct range){ .sector = 4096, .num_sectors = 64, .flags = 0 };
	vuf_gpa_write(d.f, d.data, &r, sizeof(r));
	CHECK_EQ(do_req(&d, d.vq, T_WRITE_ZEROES, 0, sizeof(r), false, NULL), S_OK, "blk-write-zeroes");
	CHECK(image_zero(4096 * SECTOR, 32768) && image_holds(4160 * SECTOR, (uint8_t)(0x44 + 32768 * 7), 4096),
	      "blk-write-zeroes-exact-range");
	r = (struct range){ .sector = 4160, .num_sectors = 64, .flags = 1 };
	vuf_gpa_write(d.f, d.data, &r, sizeof(r));
	CHECK_EQ(do_req(&d, d.vq, T_WRITE_ZEROES, 0, sizeof(r), false, NULL), S_OK, "blk-write-zeroes-unmap");
	CHECK(image_zero(4160 * SECTOR, 32768), "blk-write-zeroes-unmap-reads-zero");
	r = (struct range){ .sector = DISK_SIZE / SECTOR - 8, .num_sectors = 16 };
	vuf_gpa_write(d.f, d.data, &r, sizeof(r));
	CHECK_EQ(do_req(&d, d.vq, T_DISCARD, 0, sizeof(r), false, NULL), S_IOERR, "blk-discard-past-end");

	/* A request with no writable status byte breaks the queue, and only that. */
	h = (struct req_hdr){ .type = T_IN, .sector = 0 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	head = vuf_vq_add(d.vq, &out, 1, NULL, 0, false);
	vuf_vq_kick(d.vq);
	CHECK(head >= 0 && vuf_vq_wait_err(d.vq, 2000) == 1, "blk-no-status-breaks-queue");
	CHECK(vuf_ping(d.f) == 0, "blk-no-status-connection-survives");
	disk_close(&d);
}

static void test_read_only(void)
{
	const char *args[] = { "--blk-file", image, "--read-only", NULL };
	struct disk d;

	if (!CHECK(disk_open(&d, args, 1), "blk-ro-open")) {
		disk_close(&d);
		return;
	}
	CHECK(d.f->offered_features & (1ull << F_RO), "blk-ro-feature");
	fill(&d, 0x77, 4096);
	CHECK_EQ(do_req(&d, d.vq, T_OUT, 24, 4096, false, NULL), S_IOERR, "blk-ro-write-refused");
	CHECK(image_holds(24 * SECTOR, 0x11, 4096), "blk-ro-image-unchanged");
	struct range r = { .sector = 24, .num_sectors = 8 };
	vuf_gpa_write(d.f, d.data, &r, sizeof(r));
	CHECK_EQ(do_req(&d, d.vq, T_DISCARD, 0, sizeof(r), false, NULL), S_IOERR, "blk-ro-discard-refused");
	CHECK_EQ(do_req(&d, d.vq, T_IN, 24, 4096, true, NULL), S_OK, "blk-ro-read");
	disk_close(&d);
}

/*
 * Inflight resubmission: a request the previous back-end took but never completed
 * (marked in flight in the shared buffer, avail idx ahead of used idx) is done by
 * the next back-end, which gets the buffer back with SET_INFLIGHT_FD.
 */
static void test_inflight(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	struct disk d;
	struct vu_inflight in = { .num_queues = 1, .queue_size = 128 };

	if (!CHECK(disk_open(&d, args, 0), "blk-inflight-open")) {
		disk_close(&d);
		return;
	}
	/* GET_INFLIGHT_FD gives the buffer; a second connection gets it back. */
	struct vu_hdr hdr;
	if (vuf_send(d.f, VU_REQ_GET_INFLIGHT_FD, VU_FLAG_VERSION, &in, sizeof(in), NULL, 0) < 0 ||
	    vuf_recv(d.f, &hdr, &in, sizeof(in), 2000) < 0) {
		CHECK(false, "blk-inflight-get-fd");
		disk_close(&d);
		return;
	}
	CHECK(in.mmap_size >= vu_inflight_queue_size(128), "blk-inflight-get-fd");
	disk_close(&d);
	/*
	 * The frontend library closes received fds, so the buffer is rebuilt here as the
	 * front-end would keep it: a memfd holding one queue region.
	 */
	int fd = memfd_create("inflight", 0);
	size_t size = vu_inflight_queue_size(128);
	if (ftruncate(fd, size) < 0) {
		CHECK(false, "blk-inflight-buffer");
		return;
	}
	struct vu_inflight_queue *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (!CHECK(disk_open(&d, args, 0), "blk-inflight-reopen")) {
		disk_close(&d);
		close(fd);
		return;
	}
	/*
	 * One write the "dead" back-end took but never completed: its head is marked in
	 * flight, avail idx is 1 and used idx 0. The ring restarts with base 0, as QEMU
	 * restarts it after a crash (last avail = used idx).
	 */
	struct vuf_vq *vq = vuf_vq_alloc(d.f, 0, 128);
	fill(&d, 0x99, 4096);
	struct req_hdr h = { .type = T_OUT, .sector = 300 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	struct vuf_buf out[2] = { { d.hdr, sizeof(h) }, { d.data, 4096 } };
	struct vuf_buf st = { d.status, 1 };
	int head = vq ? vuf_vq_add(vq, out, 2, &st, 1, false) : -1;
	if (!CHECK(head >= 0, "blk-inflight-request")) {
		disk_close(&d);
		close(fd);
		return;
	}
	q->version = 1;
	q->desc_num = 128;
	q->used_idx = 0;
	q->desc[head].inflight = 1;
	q->desc[head].counter = 1;
	in = (struct vu_inflight){ .mmap_size = size, .num_queues = 1, .queue_size = 128 };
	CHECK(vuf_request(d.f, VU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) == 0, "blk-inflight-set-fd");
	/*
	 * The guest kicked for it before the crash and will not kick again, and the
	 * front-end does not signal the new kick eventfd: the back-end must go on alone.
	 */
	CHECK(vuf_vq_start(vq, 0, VUF_VQ_NO_ENABLE) == 0, "blk-inflight-ring-start");
	vuf_vq_set_avail_idx(vq, 1); /* as the guest left it (vuf_vq_start wrote the base) */
	CHECK(vuf_set_vring_enable(d.f, 0, true) == 0, "blk-inflight-ring-enable");
	uint32_t id, len;
	CHECK(vuf_vq_wait_used(vq, &id, &len, 2000) == 0 && id == (uint32_t)head, "blk-inflight-resubmitted-without-a-kick");
	CHECK(image_holds(300 * SECTOR, 0x99, 4096), "blk-inflight-data-written");
	CHECK(q->desc[head].inflight == 0 && q->used_idx == 1, "blk-inflight-buffer-updated");
	unsigned base = 99;
	CHECK(vuf_get_vring_base(d.f, 0, &base) == 0 && base == 1, "blk-inflight-base-after");
	munmap(q, size);
	close(fd);
	disk_close(&d);
}

/*
 * Packed rings end to end: the usual requests, then 32 writes and 32 reads in flight
 * at once (their completions come as the I/O finishes, in any order), and the
 * ring's position after them.
 */
static void test_packed_io(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	struct disk d;
	uint32_t used, id, len;

	if (!CHECK(disk_open_at(&d, sock, args, 1, PACKED, 0) && d.vq->packed, "blk-packed-open")) {
		disk_close(&d);
		return;
	}
	fill(&d, 0x21, 8192);
	CHECK(do_req(&d, d.vq, T_OUT, 40, 8192, false, &used) == S_OK && used == 1 &&
	      image_holds(40 * SECTOR, 0x21, 8192), "blk-packed-write");
	memset(vuf_gpa(d.f, d.data, 8192), 0, 8192);
	CHECK(do_req(&d, d.vq, T_IN, 40, 8192, true, &used) == S_OK && used == 8193 &&
	      ((uint8_t *)vuf_gpa(d.f, d.data, 8192))[8191] == (uint8_t)(0x21 + 8191 * 7), "blk-packed-read");
	CHECK_EQ(do_req(&d, d.vq, T_FLUSH, 0, 0, false, NULL), S_OK, "blk-packed-flush");
	struct req_hdr h = { .type = T_IN, .sector = 40 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	struct vuf_buf out = { d.hdr, sizeof(h) };
	struct vuf_buf in[4] = { { d.data + 65536, 512 }, { d.data + 131072, 3584 }, { d.data + 200000, 4096 },
				 { d.status, 1 } };
	int head = vuf_vq_add(d.vq, &out, 1, in, 4, true);
	uint8_t st = 0xee;
	CHECK(head >= 0 && vuf_vq_kick(d.vq) == 0 && vuf_vq_wait_used(d.vq, &id, &len, 2000) == 0 && id == (uint32_t)head &&
	      vuf_gpa_read(d.f, d.status, &st, 1) == 0 && st == S_OK && len == 8193, "blk-packed-read-indirect");

	/* 32 requests in flight: each its own header, data and status. */
	enum { N = 32 };
	uint64_t hdr = vuf_alloc(d.f, 16 * N, 16), data = vuf_alloc(d.f, 4096 * N, 4096), stat = vuf_alloc(d.f, N, 1);
	for (unsigned pass = 0; pass < 2; pass++) {
		int ids[N];
		bool seen[N] = { false };
		unsigned done = 0, good = 0;
		for (unsigned i = 0; i < N; i++) {
			struct req_hdr rh = { .type = pass ? T_IN : T_OUT, .sector = 1000 + 8 * i };
			vuf_gpa_write(d.f, hdr + 16 * i, &rh, sizeof(rh));
			memset(vuf_gpa(d.f, data + 4096 * i, 4096), pass ? 0 : 0x80 + i, 4096);
			struct vuf_buf o[2] = { { hdr + 16 * i, sizeof(rh) }, { data + 4096 * i, 4096 } };
			struct vuf_buf w[2] = { { data + 4096 * i, 4096 }, { stat + i, 1 } };
			ids[i] = pass ? vuf_vq_add(d.vq, o, 1, w, 2, i % 2) : vuf_vq_add(d.vq, o, 2, w + 1, 1, i % 2);
		}
		vuf_vq_kick(d.vq);
		while (done < N && vuf_vq_wait_used(d.vq, &id, &len, 5000) == 0) {
			for (unsigned i = 0; i < N; i++) {
				if (ids[i] != (int)id || seen[i])
					continue;
				seen[i] = true;
				uint8_t s = 0xee, *p = vuf_gpa(d.f, data + 4096 * i, 4096);
				vuf_gpa_read(d.f, stat + i, &s, 1);
				good += s == S_OK && (!pass || (p[0] == 0x80 + i && p[4095] == 0x80 + i));
			}
			done++;
		}
		CHECK(done == N && good == N, "blk-packed-%s-32-in-flight", pass ? "read" : "write");
	}
	unsigned base = 0;
	CHECK(vuf_get_vring_base(d.f, 0, &base) == 0 &&
	      base == VU_PACKED_BASE(d.vq->next_avail, d.vq->avail_wrap, d.vq->next_used, d.vq->used_wrap),
	      "blk-packed-base-after");
	disk_close(&d);
}

/*
 * Inflight resubmission with a packed ring: a write the "dead" back-end took (3 ring
 * descriptors, recorded in the packed inflight region) whose ring slots were since
 * overwritten (by another completion, say) is done by the next back-end from the
 * record, without a kick; the region and the ring's base then show it done.
 */
static void test_inflight_packed(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	struct disk d;
	size_t size = vu_inflight_queue_size(128);
	int fd = memfd_create("inflight", 0);

	if (!CHECK(fd >= 0 && ftruncate(fd, size) == 0, "blk-inflight-packed-buffer") ||
	    !CHECK(disk_open_at(&d, sock, args, 0, PACKED, 0), "blk-inflight-packed-open")) {
		disk_close(&d);
		if (fd >= 0)
			close(fd);
		return;
	}
	struct vu_inflight_packed *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct vuf_vq *vq = vuf_vq_alloc(d.f, 0, 128);
	fill(&d, 0x6b, 4096);
	struct req_hdr h = { .type = T_OUT, .sector = 320 };
	vuf_gpa_write(d.f, d.hdr, &h, sizeof(h));
	struct vuf_buf out[2] = { { d.hdr, sizeof(h) }, { d.data, 4096 } };
	struct vuf_buf st = { d.status, 1 };
	int id = vq && vq->packed ? vuf_vq_add(vq, out, 2, &st, 1, false) : -1;
	if (!CHECK(id >= 0 && q != MAP_FAILED, "blk-inflight-packed-request")) {
		disk_close(&d);
		close(fd);
		return;
	}
	/* The record: entries 0-2 hold the chain's descriptors, 3 on are free. */
	q->version = 1;
	q->desc_num = 128;
	q->used_wrap_counter = q->old_used_wrap_counter = 1;
	q->free_head = q->old_free_head = 3;
	for (unsigned i = 0; i < 128; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	for (unsigned i = 0; i < 3; i++) {
		q->desc[i].addr = vq->pdesc[i].addr;
		q->desc[i].len = vq->pdesc[i].len;
		q->desc[i].flags = vq->pdesc[i].flags;
		q->desc[i].id = vq->pdesc[i].id;
	}
	q->desc[0].num = 3;
	q->desc[0].last = 2;
	q->desc[0].counter = 1;
	q->desc[0].inflight = 1;
	/* The ring slots no longer say what the request was: only the record does. */
	for (unsigned i = 0; i < 3; i++)
		vq->pdesc[i].addr = 0xdead000;
	struct vu_inflight in = { .mmap_size = size, .num_queues = 1, .queue_size = 128 };
	CHECK(vuf_request(d.f, VU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) == 0, "blk-inflight-packed-set-fd");
	/* QEMU restarts the ring where its stale state says, avail = used = 0. */
	CHECK(vuf_vq_start(vq, 0, VUF_VQ_NO_ENABLE) == 0, "blk-inflight-packed-ring-start");
	CHECK(vuf_set_vring_enable(d.f, 0, true) == 0, "blk-inflight-packed-ring-enable");
	uint32_t got, len;
	CHECK(vuf_vq_wait_used(vq, &got, &len, 2000) == 0 && got == (uint32_t)id,
	      "blk-inflight-packed-resubmitted-without-a-kick");
	CHECK(image_holds(320 * SECTOR, 0x6b, 4096), "blk-inflight-packed-data-written");
	CHECK(q->desc[0].inflight == 0 && q->used_idx == 3 && q->old_used_idx == 3 && q->used_wrap_counter == 1,
	      "blk-inflight-packed-region-updated");
	/* The ring goes on after the resubmitted chain. */
	CHECK_EQ(do_req(&d, vq, T_IN, 320, 4096, true, NULL), S_OK, "blk-inflight-packed-next-request");
	unsigned base = 0;
	CHECK(vuf_get_vring_base(d.f, 0, &base) == 0 && base == VU_PACKED_BASE(6, 1, 6, 1), "blk-inflight-packed-base-after");
	munmap(q, size);
	close(fd);
	disk_close(&d);
}

/* GET_INFLIGHT_FD with this geometry on an open disk; true if the back-end gave a buffer. */
static bool get_inflight(struct disk *d, uint16_t num_queues, uint16_t queue_size)
{
	struct vu_inflight in = { .num_queues = num_queues, .queue_size = queue_size };
	struct vu_hdr hdr;

	return vuf_send(d->f, VU_REQ_GET_INFLIGHT_FD, VU_FLAG_VERSION, &in, sizeof(in), NULL, 0) == 0 &&
	       vuf_recv(d->f, &hdr, &in, sizeof(in), 2000) == sizeof(in) && in.mmap_size > 0;
}

/*
 * A hostile front-end must not make the back-end index the inflight buffer past
 * its mapping: a queue beyond the buffer's num_queues, or a ring made larger
 * after its kick attached a region sized for the old size.
 */
static void test_inflight_hostile(void)
{
	const char *args[] = { "--blk-file", image, "--num-queues=2", NULL };
	struct disk d;

	/* A buffer for queue 0 only; queue 1 (of size 4096) must not get a region. */
	if (CHECK(disk_open(&d, args, 0), "blk-inflight-queue-beyond-open") &&
	    CHECK(get_inflight(&d, 1, 4096), "blk-inflight-queue-beyond-get")) {
		struct vuf_vq *vq = vuf_vq_alloc(d.f, 1, 4096);
		CHECK(vq && vuf_vq_start(vq, 0, 0) == -EREMOTEIO, "blk-inflight-queue-beyond-refused");
		CHECK(vuf_backend_alive(d.be) && vuf_ping(d.f) == 0, "blk-inflight-queue-beyond-survives");
	}
	disk_close(&d);

	/* A 2-entry ring whose kick is set: SET_VRING_NUM 32768 is refused, head 32767 breaks it. */
	if (CHECK(disk_open(&d, args, 0), "blk-inflight-grow-open") &&
	    CHECK(get_inflight(&d, 1, 2), "blk-inflight-grow-get")) {
		struct vuf_vq *vq = vuf_vq_setup(d.f, 0, 2, 0);
		CHECK(vq && vuf_set_vring_num(d.f, 0, 32768) == -EREMOTEIO, "blk-inflight-grow-refused");
		if (vq) {
			vuf_vq_push_avail(vq, 32767);
			vuf_vq_kick(vq);
			CHECK(vuf_vq_wait_err(vq, 2000) == 1, "blk-inflight-grow-bad-head-breaks-queue");
		}
		CHECK(vuf_backend_alive(d.be) && vuf_ping(d.f) == 0, "blk-inflight-grow-survives");
	}
	disk_close(&d);

	/* The front-end shrinks the inflight buffer it gave: the connection ends, not the process. */
	size_t size = vu_inflight_queue_size(128);
	int fd = memfd_create("inflight", 0);
	struct vu_inflight in = { .mmap_size = size, .num_queues = 1, .queue_size = 128 };
	if (CHECK(fd >= 0 && ftruncate(fd, size) == 0, "blk-inflight-shrunk-buffer") &&
	    CHECK(disk_open(&d, args, 0), "blk-inflight-shrunk-open") &&
	    CHECK(vuf_request(d.f, VU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) == 0,
		  "blk-inflight-shrunk-set-fd")) {
		struct vuf_vq *vq = vuf_vq_setup(d.f, 0, 128, 0);
		CHECK(vq && ftruncate(fd, 0) == 0, "blk-inflight-shrunk-truncate");
		/* The request itself may complete: the fault is in the back-end's bookkeeping. */
		if (vq)
			do_req(&d, vq, T_IN, 0, 4096, true, NULL);
		CHECK_EQ(vuf_wait_closed(d.f, 2000), 1, "blk-inflight-shrunk-connection-closed");
		CHECK(vuf_backend_alive(d.be), "blk-inflight-shrunk-backend-survives");
	}
	if (fd >= 0)
		close(fd);
	disk_close(&d);
	CHECK(disk_open(&d, args, 1) && do_req(&d, d.vq, T_IN, 0, 4096, true, NULL) == S_OK,
	      "blk-after-hostile-inflight-serves");
	disk_close(&d);
}

/*
 * The back-end's own state (DEVICE_STATE): the guest's write cache choice moves
 * from a stopped source to a new back-end; bad streams are refused, never hang it.
 */
static void test_device_state(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	uint8_t zero = 0, saved[64], cfg[4];
	size_t nsaved = 0;
	struct disk d;
	int p[2];

	if (!CHECK(disk_open(&d, args, 1), "blk-state-open") ||
	    !CHECK(d.f->protocol_features & (1ull << VU_PF_DEVICE_STATE), "blk-state-offered")) {
		disk_close(&d);
		return;
	}
	int q[2];
	CHECK(do_req(&d, d.vq, T_IN, 0, 512, true, NULL) == S_OK && pipe(q) == 0 &&
	      vuf_set_device_state_fd(d.f, 0, q[1]) == (0x100 | 1), "blk-state-refused-while-ring-runs");
	close(q[0]);
	close(q[1]);
	unsigned base;
	CHECK(vuf_set_config(d.f, 32, 1, &zero) == 0 && vuf_get_vring_base(d.f, 0, &base) == 0,
	      "blk-state-writethrough-then-stop");
	CHECK(pipe(q) == 0 && vuf_set_device_state_fd(d.f, 2, q[1]) == (0x100 | 1),
	      "blk-state-unknown-direction-refused");
	close(q[0]);
	close(q[1]);
	CHECK(vuf_check_device_state(d.f) != 0, "blk-state-check-without-transfer-fails");
	if (CHECK(pipe(p) == 0 && vuf_set_device_state_fd(d.f, 0, p[1]) == 0x100, "blk-state-save-started")) {
		close(p[1]);
		ssize_t n;
		while (nsaved < sizeof(saved) &&
		       (n = read(p[0], saved + nsaved, sizeof(saved) - nsaved)) > 0) /* ends at the back-end's close */
			nsaved += n;
		close(p[0]);
		CHECK(nsaved > 0 && vuf_check_device_state(d.f) == 0, "blk-state-saved");
	}
	disk_close(&d);

	if (!CHECK(disk_open(&d, args, 0), "blk-state-destination-open")) {
		disk_close(&d);
		return;
	}
	CHECK(vuf_state_load(d.f, "garbage", 7, true) != 0, "blk-state-garbage-refused");
	CHECK(vuf_get_config(d.f, 32, 1, cfg) > 0 && cfg[0] == 1, "blk-state-garbage-changes-nothing");
	int64_t t0 = vuf_now_ms();
	CHECK(vuf_state_load(d.f, saved, nsaved, false) != 0 && vuf_backend_alive(d.be),
	      "blk-state-unfinished-stream-refused");
	check_note("a stream never ended took %lld ms to refuse", (long long)(vuf_now_ms() - t0));
	CHECK(vuf_state_load(d.f, saved, nsaved, true) == 0, "blk-state-loaded");
	CHECK(vuf_get_config(d.f, 32, 1, cfg) > 0 && cfg[0] == 0, "blk-state-writethrough-restored");
	disk_close(&d);
}

/* Pages of the used ring marked in the log (where the device's used writes go). */
static unsigned used_pages_marked(const struct vuf_log *log, const struct vuf_vq *vq)
{
	return vuf_log_count_range(log, vq->used_gpa, 6 + 8 * vq->num);
}

/*
 * With VHOST_F_LOG_ALL and a log: a read marks the pages its data went to and the
 * status byte's page, not the header's (the device only reads it); a write marks
 * only the status byte's page. Plus, each time, the used ring's.
 */
static void test_dirty_log(void)
{
	const char *args[] = { "--blk-file", image, NULL };
	const uint64_t f_log = 1ull << VHOST_F_LOG_ALL, pf_log = 1ull << VU_PF_LOG_SHMFD;
	struct vuf_log log = { .fd = -1 };
	struct disk d;

	if (!CHECK(disk_open_at(&d, sock, args, 1, f_log, pf_log) && (d.f->features & f_log) &&
		   (d.f->protocol_features & pf_log) && vuf_log_init(&log, 4096), "blk-log-negotiated"))
		goto out;
	/* Header, data (two pages) and status byte each on pages of their own. */
	d.hdr = vuf_alloc(d.f, VU_LOG_PAGE, VU_LOG_PAGE);
	d.data = vuf_alloc(d.f, 2 * VU_LOG_PAGE, VU_LOG_PAGE);
	d.status = vuf_alloc(d.f, VU_LOG_PAGE, VU_LOG_PAGE);
	if (!CHECK(d.hdr && d.data && d.status && vuf_log_send(d.f, &log) == 0 && vuf_log_ring(d.vq) == 0,
		   "blk-log-base-and-ring"))
		goto out;

	fill(&d, 0x21, 8192);
	CHECK_EQ(finish_req(&d, start_req(&d, T_OUT, 40, 8192), 2000), S_OK, "blk-log-write");
	CHECK(vuf_log_marked(&log, d.status), "blk-log-write-marks-status");
	CHECK(vuf_log_count_range(&log, d.data, 8192) == 0 && !vuf_log_marked(&log, d.hdr),
	      "blk-log-write-leaves-data-and-header");
	unsigned used = used_pages_marked(&log, d.vq);
	CHECK(used >= 1, "blk-log-write-marks-used-ring");
	CHECK_EQ(vuf_log_count(&log) - used, 1, "blk-log-write-marks-nothing-else");

	vuf_log_clear(&log);
	memset(vuf_gpa(d.f, d.data, 8192), 0, 8192);
	CHECK_EQ(finish_req(&d, start_req(&d, T_IN, 40, 8192), 2000), S_OK, "blk-log-read");
	const uint8_t *p = vuf_gpa(d.f, d.data, 8192);
	CHECK(p[0] == 0x21 && p[8191] == (uint8_t)(0x21 + 8191 * 7), "blk-log-read-data");
	CHECK_EQ(vuf_log_count_range(&log, d.data, 8192), 2, "blk-log-read-marks-both-data-pages");
	CHECK(vuf_log_marked(&log, d.status), "blk-log-read-marks-status");
	CHECK(!vuf_log_marked(&log, d.hdr), "blk-log-read-leaves-header");
	used = used_pages_marked(&log, d.vq);
	CHECK_EQ(vuf_log_count(&log) - used, 3, "blk-log-read-marks-nothing-else");
out:
	vuf_log_free(&log);
	disk_close(&d);
}

/*
 * --lock=start, the hand-over of a live migration: two back-ends on one image both
 * start; the image is locked by the one whose device runs, and the other's
 * requests wait until it stops its rings (GET_VRING_BASE, as QEMU does at the
 * switch-over), is reset (RESET_DEVICE) or disconnects. A --lock=open back-end
 * cannot start while a device holds the lock.
 */
static void test_lock_handover(void)
{
	const char *args[] = { "--blk-file", image, "--lock=start", NULL };
	const char *open_args[] = { "--blk-file", image, NULL };
	const uint64_t pf = 1ull << VU_PF_STATUS | 1ull << VU_PF_RESET_DEVICE;
	char sock2[80], sock3[80];
	struct disk a, b;
	unsigned base = 0;

	snprintf(sock2, sizeof(sock2), "%s/second.sock", dir);
	snprintf(sock3, sizeof(sock3), "%s/third.sock", dir);
	memset(&b, 0, sizeof(b));
	if (!CHECK(disk_open_at(&a, sock, args, 1, 0, pf) && disk_open_at(&b, sock2, args, 1, 0, pf),
		   "blk-lock-start-two-backends-start"))
		goto out;
	fill(&a, 0x3c, 4096);
	CHECK_EQ(finish_req(&a, start_req(&a, T_OUT, 80, 4096), 2000), S_OK, "blk-lock-start-first-device-runs");
	int head = start_req(&b, T_IN, 80, 4096);
	CHECK_EQ(finish_req(&b, head, 300), -1, "blk-lock-start-second-device-waits");
	CHECK(vuf_get_vring_base(a.f, 0, &base) == 0 && base == 1, "blk-lock-start-first-stops-its-ring");
	CHECK_EQ(finish_req(&b, head, 5000), S_OK, "blk-lock-start-second-runs-when-first-stopped");
	const uint8_t *p = vuf_gpa(b.f, b.data, 4096);
	CHECK(p[0] == 0x3c && p[4095] == (uint8_t)(0x3c + 4095 * 7), "blk-lock-start-second-reads-first-write");

	/* The first starts again: it waits until the second is reset. */
	CHECK(vuf_vq_start(a.vq, (uint16_t)base, 0) == 0, "blk-lock-start-first-restarts");
	head = start_req(&a, T_IN, 80, 4096);
	CHECK_EQ(finish_req(&a, head, 300), -1, "blk-lock-start-restarted-first-waits");
	/* Status 0 with the ring still running (QEMU stops the rings first): the lock stays. */
	CHECK(vuf_set_status(b.f, 0xf) == 0 && vuf_set_status(b.f, 0) == 0, "blk-lock-start-second-status-0");
	CHECK_EQ(finish_req(&a, head, 300), -1, "blk-lock-start-status-0-with-running-ring-keeps-lock");
	CHECK(vuf_reset_device(b.f) == 0, "blk-lock-start-second-reset");
	CHECK_EQ(finish_req(&a, head, 5000), S_OK, "blk-lock-start-reset-unlocks");

	/* The second sets up its ring again: its next request waits until the first disconnects. */
	CHECK(vuf_set_features(b.f, b.f->features) == 0 && vuf_vq_start(b.vq, 0, 0) == 0,
	      "blk-lock-start-second-restarts");
	head = start_req(&b, T_IN, 80, 4096);
	CHECK_EQ(finish_req(&b, head, 300), -1, "blk-lock-start-second-waits-again");
	CHECK(vuf_backend_start("blk", open_args, sock3) == NULL, "blk-lock-open-refused-while-a-device-holds");
	vuf_close(a.f);
	a.f = NULL;
	CHECK_EQ(finish_req(&b, head, 5000), S_OK, "blk-lock-start-disconnect-unlocks");
	CHECK(vuf_backend_alive(a.be) && vuf_backend_alive(b.be), "blk-lock-start-backends-survive");
out:
	disk_close(&a);
	disk_close(&b);
}

/* A started device that cannot get the lock (a --lock=open back-end has it) fails its queue. */
static void test_lock_wait_expires(void)
{
	const char *open_args[] = { "--blk-file", image, NULL };
	const char *wait_args[] = { "--blk-file", image, "--lock=start", "--lock-wait=1", NULL };
	char sock2[80];
	struct disk c;

	snprintf(sock2, sizeof(sock2), "%s/second.sock", dir);
	memset(&c, 0, sizeof(c));
	struct vuf_backend *a = vuf_backend_start("blk", open_args, sock);
	if (CHECK(a && disk_open_at(&c, sock2, wait_args, 1, 0, 0), "blk-lock-start-beside-open-starts")) {
		int head = start_req(&c, T_IN, 0, 4096);
		CHECK(head >= 0 && vuf_vq_wait_err(c.vq, 10000) == 1, "blk-lock-wait-expires-queue-fails");
		CHECK(vuf_backend_alive(c.be) && vuf_ping(c.f) == 0, "blk-lock-wait-expired-connection-survives");
	}
	disk_close(&c);
	if (a)
		vuf_backend_stop(a, 2000);
}

static void test_bad_options(void)
{
	/* --queue-size caps the rings the front-end may set up. */
	const char *small[] = { "--blk-file", image, "--queue-size=64", NULL };
	struct vuf_backend *be = vuf_backend_start("blk", small, sock);
	struct vuf *f = be ? vuf_connect(sock, 2000) : NULL;
	if (f && vuf_mem_init(f, 1, 1 << 20, 0) == 0 && vuf_negotiate(f, all_features, all_pf) == 0) {
		CHECK(vuf_set_vring_num(f, 0, 128) < 0, "blk-queue-size-larger-refused");
		CHECK(vuf_set_vring_num(f, 0, 64) == 0, "blk-queue-size-equal-accepted");
	} else {
		CHECK(false, "blk-queue-size-session");
	}
	vuf_close(f);
	if (be)
		vuf_backend_stop(be, 2000);
	const char *bad_qs[] = { "--blk-file", image, "--queue-size=100", NULL };
	CHECK(vuf_backend_start("blk", bad_qs, sock) == NULL, "blk-queue-size-not-power-of-2-refused");

	const char *missing[] = { "--blk-file=/nonexistent/disk.img", NULL };
	CHECK(vuf_backend_start("blk", missing, sock) == NULL, "blk-missing-file-refused");

	char odd[80];
	snprintf(odd, sizeof(odd), "%s/odd.img", dir);
	int fd = open(odd, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1000) == 0, "blk-odd-size-image");
	close(fd);
	const char *odd_args[] = { "--blk-file", odd, NULL };
	CHECK(vuf_backend_start("blk", odd_args, sock) == NULL, "blk-odd-size-refused");

	/* Two writers on one image: the second is refused by the lock. */
	const char *args[] = { "--blk-file", image, NULL };
	struct vuf_backend *a = vuf_backend_start("blk", args, sock);
	char sock2[80];
	snprintf(sock2, sizeof(sock2), "%s/second.sock", dir);
	struct vuf_backend *b = vuf_backend_start("blk", args, sock2);
	CHECK(a && !b, "blk-image-lock");
	if (b)
		vuf_backend_stop(b, 2000);
	if (a)
		vuf_backend_stop(a, 2000);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(image, sizeof(image), "%s/disk.img", dir);
	snprintf(sock, sizeof(sock), "%s/blk.sock", dir);
	int fd = open(image, O_CREAT | O_RDWR, 0600);
	if (fd < 0 || ftruncate(fd, DISK_SIZE) < 0)
		return 1;
	close(fd);

	test_config();
	test_io();
	test_read_only();
	test_inflight();
	test_inflight_hostile();
	test_packed_io();
	test_inflight_packed();
	test_device_state();
	test_dirty_log();
	test_lock_handover();
	test_lock_wait_expires();
	test_bad_options();

	unlink(image);
	char odd[80];
	snprintf(odd, sizeof(odd), "%s/odd.img", dir);
	unlink(odd);
	rmdir(dir);
	return check_exit();
}
