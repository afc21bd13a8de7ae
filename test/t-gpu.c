/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-gpu through the test front-end and a display peer on the side
 * channel: the 2D command set, what the display is shown, hostile commands
 * (huge resources, backing outside guest memory, bad ids, transfers outside the
 * resource), memory limits, fences, the cursor (also with a display that does
 * not read), guest memory changing under resources and waiting transfers, and
 * with --virgl a 3D context that clears a render target to a known colour and
 * reads it back, and copies through buffers as guest memory changes (llvmpipe
 * when there is no GPU).
 */
#include <linux/virtio_gpu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test/check.h"
#include "test/frontend.h"
#include "test/gpu-peer.h"

/* Requests are written as positional initializers; unnamed padding stays zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define RAM_MIB 32
#define W 64
#define H 32

static char sock[64];
static struct gpu_drv d;

#define HDR(t) ((struct virtio_gpu_ctrl_hdr){ .type = (t) })

static uint32_t cmd(const void *req, size_t len)
{
	return gpu_drv_cmd(&d, 0, req, len, NULL, 0);
}

static uint32_t create_2d(uint32_t id, uint32_t format, uint32_t w, uint32_t h)
{
	struct virtio_gpu_resource_create_2d c = { HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), id, format, w, h };
	return cmd(&c, sizeof(c));
}

static uint32_t unref(uint32_t id)
{
	struct virtio_gpu_resource_unref c = { HDR(VIRTIO_GPU_CMD_RESOURCE_UNREF), id };
	return cmd(&c, sizeof(c));
}

/* ATTACH_BACKING with n entries (claimed: nr, which may lie). */
static uint32_t attach(uint32_t id, const struct virtio_gpu_mem_entry *e, unsigned n, uint32_t nr)
{
	struct {
		struct virtio_gpu_resource_attach_backing a;
		struct virtio_gpu_mem_entry e[4];
	} c = { { HDR(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), id, nr } };
	memcpy(c.e, e, n * sizeof(*e));
	return cmd(&c, sizeof(c.a) + n * sizeof(*e));
}

static uint32_t transfer(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t offset)
{
	struct virtio_gpu_transfer_to_host_2d t = { HDR(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), { x, y, w, h }, offset, id };
	return cmd(&t, sizeof(t));
}

static uint32_t set_scanout(uint32_t scanout, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct virtio_gpu_set_scanout s = { HDR(VIRTIO_GPU_CMD_SET_SCANOUT), { x, y, w, h }, scanout, id };
	return cmd(&s, sizeof(s));
}

static uint32_t flush(uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct virtio_gpu_resource_flush f = { HDR(VIRTIO_GPU_CMD_RESOURCE_FLUSH), { x, y, w, h }, id };
	return cmd(&f, sizeof(f));
}

static void test_queries(void)
{
	struct virtio_gpu_ctrl_hdr h = HDR(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	struct virtio_gpu_resp_display_info info;
	uint32_t t = gpu_drv_cmd(&d, 0, &h, sizeof(h), &info, sizeof(info));
	CHECK_EQ(t, VIRTIO_GPU_RESP_OK_DISPLAY_INFO, "gpu-display-info");
	CHECK(info.pmodes[0].r.width == 640 && info.pmodes[0].r.height == 480 && info.pmodes[0].enabled,
	      "gpu-display-info-from-front-end");
	CHECK(!info.pmodes[1].enabled, "gpu-display-info-only-our-outputs");
	CHECK_EQ(d.peer->features_set, 3, "gpu-side-channel-protocol-features");

	struct virtio_gpu_cmd_get_edid e = { HDR(VIRTIO_GPU_CMD_GET_EDID), 0 };
	struct virtio_gpu_resp_edid edid;
	t = gpu_drv_cmd(&d, 0, &e, sizeof(e), &edid, sizeof(edid));
	CHECK(t == VIRTIO_GPU_RESP_OK_EDID && edid.size == GPU_PEER_EDID_SIZE && edid.edid[1] == 0xa5, "gpu-edid");
	e.scanout = 1;
	CHECK_EQ(cmd(&e, sizeof(e)), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID, "gpu-edid-bad-scanout");

	struct virtio_gpu_config cfg;
	CHECK(vuf_get_config(d.f, 0, sizeof(cfg), &cfg) > 0 && cfg.num_scanouts == 1 && cfg.num_capsets == 0,
	      "gpu-config-space");

	/* Not migratable (its resources stay here): no dirty log offered, so QEMU refuses to migrate. */
	CHECK(!(d.f->offered_features & 1ull << VHOST_F_LOG_ALL) &&
	      !(d.f->offered_protocol_features & 1ull << VU_PF_LOG_SHMFD), "gpu-no-dirty-log-offered");
}

static void test_formats(void)
{
	static const uint32_t formats[] = { 1, 2, 3, 4, 67, 68, 121, 134 };
	bool ok = true;
	for (unsigned i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		ok &= create_2d(100 + i, formats[i], 16, 16) == VIRTIO_GPU_RESP_OK_NODATA &&
		      unref(100 + i) == VIRTIO_GPU_RESP_OK_NODATA;
	CHECK(ok, "gpu-create-2d-every-format");
}

/* Draws a pattern in guest memory, shows it and checks the peer got the same pixels. */
static void test_display(void)
{
	uint64_t mem = vuf_alloc(d.f, W * H * 4, 4096);
	uint32_t px[W * H];
	for (unsigned i = 0; i < W * H; i++)
		px[i] = 0x00010203u * (i % 61) + i / W;
	vuf_gpa_write(d.f, mem, px, sizeof(px));
	/* Two entries, split mid-row, as a guest's scattered pages would be. */
	struct virtio_gpu_mem_entry e[2] = { { mem, 1000 }, { mem + 1000, sizeof(px) - 1000 } };
	CHECK_EQ(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, W, H), VIRTIO_GPU_RESP_OK_NODATA, "gpu-create-2d");
	CHECK_EQ(attach(1, e, 2, 2), VIRTIO_GPU_RESP_OK_NODATA, "gpu-attach-backing");
	CHECK_EQ(transfer(1, 0, 0, W, H, 0), VIRTIO_GPU_RESP_OK_NODATA, "gpu-transfer-full");
	CHECK_EQ(set_scanout(0, 1, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA, "gpu-set-scanout");
	unsigned before = gpu_peer_updates(d.peer);
	CHECK_EQ(flush(1, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA, "gpu-flush");
	bool got = gpu_peer_wait_updates(d.peer, before + 1, 2000);
	pthread_mutex_lock(&d.peer->lock);
	bool same = got && d.peer->scanout_w == W && d.peer->scanout_h == H && d.peer->fb;
	for (unsigned i = 0; same && i < W * H; i++)
		same = (d.peer->fb[i] & 0xffffff) == (px[i] & 0xffffff);
	pthread_mutex_unlock(&d.peer->lock);
	CHECK(same, "gpu-display-shows-the-pixels");

	/* A partial transfer of a changed rectangle, and a partial flush. */
	for (unsigned y = 4; y < 12; y++)
		for (unsigned x = 8; x < 24; x++)
			px[y * W + x] = 0x00abcdefu;
	vuf_gpa_write(d.f, mem, px, sizeof(px));
	CHECK_EQ(transfer(1, 8, 4, 16, 8, (4 * W + 8) * 4), VIRTIO_GPU_RESP_OK_NODATA, "gpu-transfer-rect");
	before = gpu_peer_updates(d.peer);
	CHECK_EQ(flush(1, 8, 4, 16, 8), VIRTIO_GPU_RESP_OK_NODATA, "gpu-flush-rect");
	got = gpu_peer_wait_updates(d.peer, before + 1, 2000);
	pthread_mutex_lock(&d.peer->lock);
	same = got && d.peer->last_x == 8 && d.peer->last_y == 4 && d.peer->last_w == 16 && d.peer->last_h == 8 &&
	       (d.peer->fb[5 * W + 9] & 0xffffff) == 0xabcdef && (d.peer->fb[5 * W + 7] & 0xffffff) != 0xabcdef;
	pthread_mutex_unlock(&d.peer->lock);
	CHECK(same, "gpu-partial-update");

	/* R8G8B8A8 is converted to what the display takes (x8r8g8b8). */
	uint64_t m2 = vuf_alloc(d.f, 16 * 16 * 4, 4096);
	uint8_t rgba[16 * 16 * 4];
	for (unsigned i = 0; i < 16 * 16; i++)
		memcpy(rgba + i * 4, (uint8_t[]){ 0x11, 0x22, 0x33, 0x44 }, 4);
	vuf_gpa_write(d.f, m2, rgba, sizeof(rgba));
	struct virtio_gpu_mem_entry e2 = { m2, sizeof(rgba) };
	create_2d(2, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 16, 16);
	attach(2, &e2, 1, 1);
	transfer(2, 0, 0, 16, 16, 0);
	set_scanout(0, 2, 0, 0, 16, 16);
	before = gpu_peer_updates(d.peer);
	flush(2, 0, 0, 16, 16);
	got = gpu_peer_wait_updates(d.peer, before + 1, 2000);
	pthread_mutex_lock(&d.peer->lock);
	same = got && d.peer->fb && (d.peer->fb[0] & 0xffffff) == 0x112233;
	pthread_mutex_unlock(&d.peer->lock);
	CHECK(same, "gpu-format-conversion");

	/* Cursor: a 64x64 image and a move; resource 0 hides it. */
	uint64_t m3 = vuf_alloc(d.f, 64 * 64 * 4, 4096);
	uint32_t cur[64 * 64];
	for (unsigned i = 0; i < 64 * 64; i++)
		cur[i] = 0x80ff0000u;
	vuf_gpa_write(d.f, m3, cur, sizeof(cur));
	struct virtio_gpu_mem_entry e3 = { m3, sizeof(cur) };
	create_2d(3, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64);
	attach(3, &e3, 1, 1);
	transfer(3, 0, 0, 64, 64, 0);
	struct virtio_gpu_update_cursor uc = { HDR(VIRTIO_GPU_CMD_UPDATE_CURSOR), { 0, 10, 20 }, 3, 1, 1 };
	gpu_drv_cmd(&d, 1, &uc, sizeof(uc), NULL, 0);
	uc.hdr.type = VIRTIO_GPU_CMD_MOVE_CURSOR;
	gpu_drv_cmd(&d, 1, &uc, sizeof(uc), NULL, 0);
	uc.hdr.type = VIRTIO_GPU_CMD_UPDATE_CURSOR;
	uc.resource_id = 0;
	gpu_drv_cmd(&d, 1, &uc, sizeof(uc), NULL, 0);
	usleep(100000);
	pthread_mutex_lock(&d.peer->lock);
	CHECK(d.peer->cursor_updates == 1 && d.peer->cursor_moves == 1 && d.peer->cursor_hides == 1 &&
	      d.peer->cursor_pixel == 0x80ff0000u, "gpu-cursor");
	pthread_mutex_unlock(&d.peer->lock);

	/* Fences: the response carries the fence. */
	struct virtio_gpu_resource_flush f = { { VIRTIO_GPU_CMD_RESOURCE_FLUSH, VIRTIO_GPU_FLAG_FENCE, 77, 0, 0 },
					       { 0, 0, 16, 16 }, 2 };
	struct virtio_gpu_ctrl_hdr r;
	uint32_t t = gpu_drv_cmd(&d, 0, &f, sizeof(f), &r, sizeof(r));
	CHECK(t == VIRTIO_GPU_RESP_OK_NODATA && (r.flags & VIRTIO_GPU_FLAG_FENCE) && r.fence_id == 77, "gpu-fence");

	/* Unref of a scanned-out resource turns the scanout off; detach works once. */
	struct virtio_gpu_resource_detach_backing db = { HDR(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING), 1 };
	CHECK_EQ(cmd(&db, sizeof(db)), VIRTIO_GPU_RESP_OK_NODATA, "gpu-detach-backing");
	CHECK_EQ(cmd(&db, sizeof(db)), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-detach-twice");
	CHECK_EQ(transfer(1, 0, 0, W, H, 0), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-transfer-without-backing");
	CHECK_EQ(unref(2), VIRTIO_GPU_RESP_OK_NODATA, "gpu-unref-scanout-resource");
	unref(1);
	unref(3);
}

/* A guest reboot: QEMU stops the rings and writes status 0; the next driver reuses ids. */
static void test_status_reset(void)
{
	CHECK_EQ(create_2d(77, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16, 16), VIRTIO_GPU_RESP_OK_NODATA,
		 "gpu-status-reset-create");
	CHECK(vuf_set_status(d.f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK) == 0 &&
	      vuf_set_status(d.f, 0) == 0, "gpu-status-reset-acked");
	CHECK_EQ(create_2d(77, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16, 16), VIRTIO_GPU_RESP_OK_NODATA,
		 "gpu-status-reset-id-free-again");
	CHECK_EQ(unref(77), VIRTIO_GPU_RESP_OK_NODATA, "gpu-status-reset-unref");
}

/* Set (under the peer's lock order: before it reads again) by resume_later: a command that returned after it waited. */
static bool peer_resumed;

static void *resume_later(void *peer)
{
	usleep(200000);
	__atomic_store_n(&peer_resumed, true, __ATOMIC_SEQ_CST);
	gpu_peer_pause(peer, false);
	return NULL;
}

/* Runs fn(peer) on a thread: false if it could not start. */
static bool later(pthread_t *t, void *(*fn)(void *), struct gpu_peer *peer)
{
	__atomic_store_n(&peer_resumed, false, __ATOMIC_SEQ_CST);
	return pthread_create(t, NULL, fn, peer) == 0;
}

static bool waited(void)
{
	return __atomic_load_n(&peer_resumed, __ATOMIC_SEQ_CST);
}

static void fill(uint32_t *px, size_t n, uint32_t v)
{
	for (size_t i = 0; i < n; i++)
		px[i] = v;
}

/* The last pixel of the n-th update from now (counting from the peer's updates at `before`). */
static uint32_t update_tail(unsigned before, unsigned n)
{
	pthread_mutex_lock(&d.peer->lock);
	uint32_t v = d.peer->tails[(before + n) % GPU_PEER_TAILS];
	pthread_mutex_unlock(&d.peer->lock);
	return v;
}

/* Queues a request (copied to guest memory at req, answered at req + 2048) and kicks; nothing waits. */
static bool queue_cmd(struct vuf_vq *vq, uint64_t req, const void *body, uint32_t len)
{
	struct vuf_buf out = { req, len }, in = { req + 2048, sizeof(struct virtio_gpu_ctrl_hdr) };

	return len <= 2048 && vuf_gpa_write(d.f, req, body, len) == 0 && vuf_vq_add(vq, &out, 1, &in, 1, false) >= 0 &&
	       vuf_vq_kick(vq) == 0;
}

/* Waits until the back-end took every request queued on vq: with EVENT_IDX it then asks for a kick past them. */
static bool all_taken(struct vuf_vq *vq)
{
	const volatile uint16_t *avail_event = (const volatile uint16_t *)&vq->used->ring[vq->num];

	for (int ms = 0; ms < 5000; ms++, usleep(1000))
		if (*avail_event == vq->avail_idx)
			return true;
	return false;
}

/* The response type of the next request vq completes, one queue_cmd() put at req (0 if none came). */
static uint32_t next_answer(struct vuf_vq *vq, uint64_t req)
{
	struct virtio_gpu_ctrl_hdr h = { 0 };
	uint32_t id, len;

	if (vuf_vq_wait_used(vq, &id, &len, 10000) < 0 || vuf_gpa_read(d.f, req + 2048, &h, sizeof(h)) < 0)
		return 0;
	return h.type;
}

/*
 * The front-end announces its guest RAM anew (SET_MEM_TABLE): size bytes of the
 * same memfd, grown first if need be (as RAM hot-plug would). The back-end
 * unmaps what it had and maps the new table (grown, it does not fit where the
 * old one was, so stale pointers fault). The test keeps its own mapping as it was.
 */
static bool remap_ram(uint64_t size)
{
	struct vuf_region *r = &d.f->region[0];
	struct vu_mem_table t = { .nregions = 1, .regions = { vuf_region_desc(d.f, 0) } };
	struct stat st;

	t.regions[0].memory_size = size;
	if (fstat(r->fd, &st) < 0 || ((uint64_t)st.st_size < r->offset + size && ftruncate(r->fd, r->offset + size) < 0))
		return false;
	return vuf_request(d.f, VU_REQ_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), &r->fd, 1) == 0;
}

/* Backing pages out of order in guest memory: each must land where its entry says. */
static void test_scattered_backing(void)
{
	enum { SW = 32, SH = 64, HALF = SW * SH * 2 };
	uint64_t mem = vuf_alloc(d.f, 2 * HALF, 4096);
	uint32_t px[SW * SH];
	for (unsigned i = 0; i < SW * SH; i++)
		px[i] = 0x00102030u + i;
	/* The resource's first half lives in the second page, its second half in the first. */
	vuf_gpa_write(d.f, mem + HALF, px, HALF);
	vuf_gpa_write(d.f, mem, (uint8_t *)px + HALF, HALF);
	struct virtio_gpu_mem_entry e[2] = { { mem + HALF, HALF }, { mem, HALF } };
	create_2d(30, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, SW, SH);
	attach(30, e, 2, 2);
	transfer(30, 0, 0, SW, SH, 0);
	set_scanout(0, 30, 0, 0, SW, SH);
	unsigned before = gpu_peer_updates(d.peer);
	flush(30, 0, 0, SW, SH);
	bool same = gpu_peer_wait_updates(d.peer, before + 1, 2000);
	pthread_mutex_lock(&d.peer->lock);
	for (unsigned i = 0; same && i < SW * SH; i++)
		same = d.peer->fb && (d.peer->fb[i] & 0xffffff) == (px[i] & 0xffffff);
	pthread_mutex_unlock(&d.peer->lock);
	CHECK(same, "gpu-scattered-backing");
	unref(30);
}

/*
 * One backing entry across two memory regions (two mappings, so two iovecs that do
 * not merge): found by fuzz-gpu, gpu_backing_map read past the entry's iovecs.
 */
static void test_backing_across_regions(void)
{
	enum { SW = 64, SH = 64, BYTES = SW * SH * 4 };
	struct vuf_region *r = &d.f->region[0];
	uint64_t half = r->size / 2;
	struct vu_mem_table t = { .nregions = 2, .regions = { vuf_region_desc(d.f, 0), vuf_region_desc(d.f, 0) } };
	t.regions[0].memory_size = t.regions[1].memory_size = half;
	t.regions[1].guest_phys_addr += half;
	t.regions[1].userspace_addr += half;
	t.regions[1].mmap_offset += half;
	int fds[2] = { r->fd, r->fd };
	uint32_t px[SW * SH];
	for (unsigned i = 0; i < SW * SH; i++)
		px[i] = 0x00405060u + i;
	uint64_t at = r->gpa + half - 8192;
	struct virtio_gpu_mem_entry e = { at, BYTES };

	bool split = vuf_request(d.f, VU_REQ_SET_MEM_TABLE, &t, 8 + 2 * sizeof(t.regions[0]), fds, 2) == 0;
	vuf_gpa_write(d.f, at, px, BYTES);
	CHECK(split && create_2d(31, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA &&
	      attach(31, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA &&
	      transfer(31, 0, 0, SW, SH, 0) == VIRTIO_GPU_RESP_OK_NODATA &&
	      set_scanout(0, 31, 0, 0, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA, "gpu-backing-across-regions-set-up");
	unsigned before = gpu_peer_updates(d.peer);
	flush(31, 0, 0, SW, SH);
	bool same = gpu_peer_wait_updates(d.peer, before + 1, 2000);
	pthread_mutex_lock(&d.peer->lock);
	for (unsigned i = 0; same && i < SW * SH; i++)
		same = d.peer->fb && (d.peer->fb[i] & 0xffffff) == (px[i] & 0xffffff);
	pthread_mutex_unlock(&d.peer->lock);
	CHECK(same, "gpu-backing-across-regions");
	set_scanout(0, 0, 0, 0, 0, 0);
	unref(31);
	CHECK(remap_ram(r->size), "gpu-backing-across-regions-one-region-again");
}

/*
 * The cursor queue waits while the display channel is backed up, as the control
 * queue does (issue 13: every update queued 16 KiB, without bound). With the
 * display not reading, the back-end takes a bounded number of updates and leaves
 * the rest in the ring; once the display reads again all arrive, the last one last.
 */
static void test_cursor_backlog(void)
{
	enum { N = 8192, A = 60, B = 61, PIXELS = 64 * 64, MSG = 12 + 20 + PIXELS * 4 /* a CURSOR_UPDATE message */ };
	/* What the back-end may hold: its 4 MiB backlog plus a socket buffer of up to 2 x 8 MiB, and then some. */
	const unsigned max_taken = (32u << 20) / MSG;
	uint64_t img = vuf_alloc(d.f, PIXELS * 4, 4096), req = vuf_alloc(d.f, 2 * 4096, 4096);
	struct virtio_gpu_mem_entry e = { img, PIXELS * 4 };
	uint32_t cur[PIXELS];
	bool ok = img && req;

	for (unsigned id = A; ok && id <= B; id++) {
		fill(cur, PIXELS, id == A ? 0x80112233u : 0x80445566u);
		ok = vuf_gpa_write(d.f, img, cur, sizeof(cur)) == 0 &&
		     create_2d(id, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64) == VIRTIO_GPU_RESP_OK_NODATA &&
		     attach(id, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA &&
		     transfer(id, 0, 0, 64, 64, 0) == VIRTIO_GPU_RESP_OK_NODATA;
	}
	CHECK(ok, "gpu-cursor-backlog-setup");
	if (!ok)
		return;
	struct virtio_gpu_update_cursor ua = { HDR(VIRTIO_GPU_CMD_UPDATE_CURSOR), { 0, 10, 20 }, A, 1, 1 }, ub = ua;
	ub.resource_id = B;
	struct vuf_buf out_a = { req, sizeof(ua) }, out_b = { req + 4096, sizeof(ub) };
	vuf_gpa_write(d.f, req, &ua, sizeof(ua));
	vuf_gpa_write(d.f, req + 4096, &ub, sizeof(ub));
	pthread_mutex_lock(&d.peer->lock);
	unsigned shown = d.peer->cursor_updates;
	pthread_mutex_unlock(&d.peer->lock);

	gpu_peer_pause(d.peer, true);
	unsigned sent = 0, taken = 0;
	uint32_t id, len;
	while (sent < N) {
		if (d.cursor->num_free > 1) { /* one slot stays for the last update */
			ok &= vuf_vq_add(d.cursor, &out_a, 1, NULL, 0, false) >= 0 && vuf_vq_kick(d.cursor) == 0;
			sent++;
		} else if (vuf_vq_wait_used(d.cursor, &id, &len, 1000) == 0) {
			taken++;
		} else {
			break; /* the back-end holds back: the rest wait in the ring */
		}
	}
	ok &= vuf_vq_add(d.cursor, &out_b, 1, NULL, 0, false) >= 0 && vuf_vq_kick(d.cursor) == 0;
	sent++;
	CHECK(ok && taken <= max_taken, "gpu-cursor-backlog-bounded: %u of %u updates taken while the display did not read",
	      taken, sent);

	gpu_peer_pause(d.peer, false);
	while (taken < sent && vuf_vq_wait_used(d.cursor, &id, &len, 10000) == 0)
		taken++;
	bool all = false;
	uint32_t last = 0;
	for (int ms = 0; ms < 10000 && !all; ms++, usleep(1000)) {
		pthread_mutex_lock(&d.peer->lock);
		all = d.peer->cursor_updates == shown + sent;
		last = d.peer->cursor_pixel;
		pthread_mutex_unlock(&d.peer->lock);
	}
	CHECK(taken == sent && all && last == 0x80445566u, "gpu-cursor-backlog-all-arrive-last-one-last: %u of %u taken, last %08x",
	      taken, sent, last);
	unref(A);
	unref(B);
}

/*
 * Full-width updates of a big scanout resource are spliced from its memfd: the
 * display reads the pages themselves, so pixels it has not read yet never
 * change. A transfer of every pixel fills the resource's second buffer instead;
 * with both buffers unread, or for a transfer of a part, the transfer waits for
 * the display. A device reset meanwhile drops the queue with the display
 * channel, and the control queue goes on.
 */
static void test_lent_pixels(void)
{
	/* Bigger than what the socket holds (its buffer is at most a few MiB). */
	enum { LW = 2048, LH = 2048, ID = 40 };
	const size_t bytes = (size_t)LW * LH * 4;
	static const char *const args[] = { NULL };

	gpu_drv_close(&d);
	if (!gpu_drv_open(&d, sock, args, 64, true, LW, LH)) {
		CHECK(false, "gpu-lent-start");
		return;
	}
	uint64_t mem = vuf_alloc(d.f, bytes, 4096);
	uint32_t *px = vuf_gpa(d.f, mem, bytes);
	struct virtio_gpu_mem_entry e = { mem, bytes };
	for (size_t i = 0; px && i < bytes / 4; i++)
		px[i] = 0x00aaaaaa;
	CHECK(px && create_2d(ID, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, LW, LH) == VIRTIO_GPU_RESP_OK_NODATA &&
	      attach(ID, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA && transfer(ID, 0, 0, LW, LH, 0) == VIRTIO_GPU_RESP_OK_NODATA &&
	      set_scanout(0, ID, 0, 0, LW, LH) == VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-setup");
	if (!px)
		return;

	/*
	 * The display stops reading; the flush is answered, its pixels wait unread. A
	 * whole transfer goes to the second buffer at once (were it to wait, the display
	 * would get the new pixels in the first update, after a 5 s give-up).
	 */
	gpu_peer_pause(d.peer, true);
	unsigned before = gpu_peer_updates(d.peer);
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush");
	fill(px, bytes / 4, 0x00555555);
	CHECK_EQ(transfer(ID, 0, 0, LW, LH, 0), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-whole-transfer-to-second-buffer");
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush-second-buffer");
	/* Both buffers unread: the next whole transfer waits for the display. */
	fill(px, bytes / 4, 0x00333333);
	pthread_t t;
	bool resumer = later(&t, resume_later, d.peer);
	CHECK_EQ(transfer(ID, 0, 0, LW, LH, 0), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-third-transfer");
	CHECK(!resumer || waited(), "gpu-lent-third-transfer-waited-for-the-display");
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush-third");
	bool got = gpu_peer_wait_updates(d.peer, before + 3, 5000);
	if (resumer)
		pthread_join(t, NULL);
	uint32_t first = update_tail(before, 0), second = update_tail(before, 1), third = update_tail(before, 2);
	CHECK(got && first == 0x00aaaaaa && second == 0x00555555 && third == 0x00333333,
	      "gpu-lent-pixels-unchanged-until-read: %08x %08x %08x", first, second, third);

	/* A transfer of a part (the bottom rows) waits for the display to read the update. */
	gpu_peer_pause(d.peer, true);
	before = gpu_peer_updates(d.peer);
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush-before-part");
	fill(px, bytes / 4, 0x00777777);
	resumer = later(&t, resume_later, d.peer);
	CHECK_EQ(transfer(ID, 0, LH / 2, LW, LH / 2, (uint64_t)LH / 2 * LW * 4), VIRTIO_GPU_RESP_OK_NODATA,
		 "gpu-lent-part-transfer");
	CHECK(!resumer || waited(), "gpu-lent-part-transfer-waited-for-the-display");
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush-part");
	got = gpu_peer_wait_updates(d.peer, before + 2, 5000);
	if (resumer)
		pthread_join(t, NULL);
	first = update_tail(before, 0), second = update_tail(before, 1);
	CHECK(got && first == 0x00333333 && second == 0x00777777, "gpu-lent-part-after-read: %08x %08x", first, second);

	/* A reset (guest reboot) while the pixels wait: the channel and its queue go. */
	gpu_peer_pause(d.peer, true);
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-lent-flush-before-reset");
	CHECK(vuf_set_status(d.f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK) == 0 &&
	      vuf_set_status(d.f, 0) == 0, "gpu-lent-reset");
	gpu_peer_pause(d.peer, false);
	bool closed = false;
	for (int i = 0; i < 200 && !closed; i++, usleep(10000)) {
		pthread_mutex_lock(&d.peer->lock);
		closed = d.peer->closed;
		pthread_mutex_unlock(&d.peer->lock);
	}
	CHECK(closed, "gpu-lent-reset-closes-the-display-channel");
	CHECK_EQ(create_2d(ID, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 16, 16), VIRTIO_GPU_RESP_OK_NODATA,
		 "gpu-lent-commands-after-reset");
}

/* Whether the peer's picture of scanout 0 (sw wide) matches px in every pixel (x8r8g8b8). */
static bool picture_is(const uint32_t *px, unsigned sw, unsigned sh)
{
	bool same = true;

	pthread_mutex_lock(&d.peer->lock);
	if (!d.peer->fb || d.peer->scanout_w != sw || d.peer->scanout_h != sh)
		same = false;
	for (unsigned i = 0; same && i < sw * sh; i++)
		same = (d.peer->fb[i] & 0xffffff) == (px[i] & 0xffffff);
	pthread_mutex_unlock(&d.peer->lock);
	return same;
}

static void *hang_up_later(void *peer)
{
	usleep(200000);
	__atomic_store_n(&peer_resumed, true, __ATOMIC_SEQ_CST);
	shutdown(((struct gpu_peer *)peer)->fd, SHUT_RDWR);
	return NULL;
}

/*
 * Spliced updates carry exactly the pixels: whole frames, parts of rows (copied
 * from the memfd), single rows; more big scanout resources than memfds are kept
 * for are copied from the heap; a display that hangs up frees a waiting transfer.
 */
static void test_spliced_pixels(void)
{
	enum { SW = 1024, SH = 256, N = 34 }; /* 1 MiB each: the smallest that moves to a memfd */
	const size_t bytes = (size_t)SW * SH * 4;
	static const char *const args[] = { "--max-memory=128", NULL };

	gpu_drv_close(&d);
	if (!gpu_drv_open(&d, sock, args, 64, true, SW, SH)) {
		CHECK(false, "gpu-spliced-start");
		return;
	}
	uint64_t mem = vuf_alloc(d.f, bytes, 4096);
	uint32_t *px = vuf_gpa(d.f, mem, bytes);
	struct virtio_gpu_mem_entry e = { mem, bytes };
	if (!px) {
		CHECK(false, "gpu-spliced-memory");
		return;
	}
	for (unsigned i = 0; i < SW * SH; i++)
		px[i] = i * 2654435761u;
	/* Resources 1..N, each shown in turn: the last ones stay on the heap (GPU_MAX_SHARED is 32). */
	for (unsigned id = 1; id <= N; id++) {
		bool ok = create_2d(id, id % 2 ? VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM : VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, SW,
				    SH) == VIRTIO_GPU_RESP_OK_NODATA &&
			  attach(id, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA &&
			  transfer(id, 0, 0, SW, SH, 0) == VIRTIO_GPU_RESP_OK_NODATA &&
			  set_scanout(0, id, 0, 0, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA;
		unsigned before = gpu_peer_updates(d.peer);
		ok = ok && flush(id, 0, 0, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA &&
		     gpu_peer_wait_updates(d.peer, before + 1, 2000) && picture_is(px, SW, SH);
		if (id == 1 || id == N || !ok)
			CHECK(ok, "gpu-spliced-whole-frame-resource-%u", id);
		px[id] ^= 0xffffff; /* every resource a different picture */
	}
	/* Part of some rows of resource 1 (its memfd pixels, copied into the message), then one row, part of it. */
	CHECK_EQ(set_scanout(0, 1, 0, 0, SW, SH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-spliced-back-to-1");
	for (unsigned i = 0; i < SW * SH; i++)
		px[i] = ~i;
	unsigned before = gpu_peer_updates(d.peer);
	CHECK(flush(1, 0, 0, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA && gpu_peer_wait_updates(d.peer, before + 1, 2000),
	      "gpu-spliced-reshow");
	uint32_t *want = malloc(bytes);
	pthread_mutex_lock(&d.peer->lock);
	if (want && d.peer->fb)
		memcpy(want, d.peer->fb, bytes);
	pthread_mutex_unlock(&d.peer->lock);
	const uint32_t x = 100, y = 10, w = 200, h = 20, row = 77;
	for (uint32_t j = y; want && j < y + h; j++)
		memcpy(want + (size_t)j * SW + x, px + (size_t)j * SW + x, w * 4);
	memcpy(want + (size_t)row * SW + 8, px + (size_t)row * SW + 8, 16 * 4);
	before = gpu_peer_updates(d.peer);
	CHECK(want && transfer(1, x, y, w, h, ((uint64_t)y * SW + x) * 4) == VIRTIO_GPU_RESP_OK_NODATA &&
	      flush(1, x, y, w, h) == VIRTIO_GPU_RESP_OK_NODATA &&
	      transfer(1, 8, row, 16, 1, ((uint64_t)row * SW + 8) * 4) == VIRTIO_GPU_RESP_OK_NODATA &&
	      flush(1, 8, row, 16, 1) == VIRTIO_GPU_RESP_OK_NODATA &&
	      gpu_peer_wait_updates(d.peer, before + 2, 2000) && picture_is(want, SW, SH),
	      "gpu-spliced-partial-updates");
	free(want);

	/* A transfer waits for a display that stops reading; it hangs up: the transfer goes on. */
	gpu_peer_pause(d.peer, true);
	CHECK_EQ(flush(1, 0, 0, SW, SH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-spliced-flush-unread");
	pthread_t t;
	bool hanger = later(&t, hang_up_later, d.peer);
	CHECK_EQ(transfer(1, 0, 0, SW, SH / 2, 0), VIRTIO_GPU_RESP_OK_NODATA, "gpu-spliced-transfer-after-hang-up");
	CHECK(!hanger || waited(), "gpu-spliced-transfer-waited-until-the-hang-up");
	if (hanger)
		pthread_join(t, NULL);
	for (unsigned id = 1; id <= N; id++)
		unref(id);
	gpu_drv_close(&d);

	/* A resource freed while its spliced pixels wait: the display still gets them, intact. */
	if (!gpu_drv_open(&d, sock, args, 64, true, SW, SH) || !(mem = vuf_alloc(d.f, bytes, 4096)) ||
	    !(px = vuf_gpa(d.f, mem, bytes))) {
		CHECK(false, "gpu-spliced-restart");
		return;
	}
	e = (struct virtio_gpu_mem_entry){ mem, bytes };
	fill(px, SW * SH, 0x00abcdef);
	CHECK(create_2d(1, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA &&
	      attach(1, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA && transfer(1, 0, 0, SW, SH, 0) == VIRTIO_GPU_RESP_OK_NODATA &&
	      set_scanout(0, 1, 0, 0, SW, SH) == VIRTIO_GPU_RESP_OK_NODATA, "gpu-spliced-free-setup");
	gpu_peer_pause(d.peer, true);
	before = gpu_peer_updates(d.peer);
	for (int i = 0; i < 6; i++)
		flush(1, 0, 0, SW, SH);
	CHECK_EQ(unref(1), VIRTIO_GPU_RESP_OK_NODATA, "gpu-spliced-unref-while-queued");
	gpu_peer_pause(d.peer, false);
	CHECK(gpu_peer_wait_updates(d.peer, before + 6, 5000) && update_tail(before, 5) == 0x00abcdef,
	      "gpu-spliced-freed-pixels-still-arrive");
	gpu_drv_close(&d);
}

/*
 * Guest memory changes while a transfer waits for the display (issue 13: the
 * waiting transfer translated its backing into the old mapping, which stayed in
 * use after it was unmapped). The waiting transfer ends before the change; every
 * backing is translated into the new memory before anything reads through it;
 * a backing the new memory no longer holds is dropped.
 */
static void test_remap_waiting_transfer(void)
{
	enum { LW = 2048, LH = 2048, ID = 50, RAM = 64 };
	const size_t bytes = (size_t)LW * LH * 4;
	static const char *const args[] = { NULL };

	gpu_drv_close(&d);
	if (!gpu_drv_open(&d, sock, args, RAM, true, LW, LH)) {
		CHECK(false, "gpu-remap-start");
		return;
	}
	uint64_t req = vuf_alloc(d.f, 4096, 4096), mem = vuf_alloc(d.f, bytes, 4096);
	uint32_t *px = vuf_gpa(d.f, mem, bytes);
	struct virtio_gpu_mem_entry e = { mem, bytes };
	if (px)
		fill(px, bytes / 4, 0x00aaaaaa);
	CHECK(req && px && create_2d(ID, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, LW, LH) == VIRTIO_GPU_RESP_OK_NODATA &&
	      attach(ID, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA && transfer(ID, 0, 0, LW, LH, 0) == VIRTIO_GPU_RESP_OK_NODATA &&
	      set_scanout(0, ID, 0, 0, LW, LH) == VIRTIO_GPU_RESP_OK_NODATA, "gpu-remap-setup");
	if (!req || !px)
		return;

	/* The display does not read the flushed pixels: a transfer of the bottom half waits. */
	gpu_peer_pause(d.peer, true);
	unsigned before = gpu_peer_updates(d.peer);
	CHECK_EQ(flush(ID, 0, 0, LW, LH), VIRTIO_GPU_RESP_OK_NODATA, "gpu-remap-flush-unread");
	fill(px, bytes / 4, 0x00bbbbbb);
	struct virtio_gpu_transfer_to_host_2d t = { HDR(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), { 0, LH / 2, LW, LH / 2 },
						    (uint64_t)LH / 2 * LW * 4, ID };
	CHECK(queue_cmd(d.ctrl, req, &t, sizeof(t)) && all_taken(d.ctrl) && !vuf_vq_used_pending(d.ctrl),
	      "gpu-remap-transfer-waits-for-the-display");
	/* RAM grows: the back-end maps it anew; the waiting transfer is done by then. */
	CHECK(remap_ram((uint64_t)2 * RAM << 20), "gpu-remap-grown");
	CHECK_EQ(next_answer(d.ctrl, req), VIRTIO_GPU_RESP_OK_NODATA, "gpu-remap-waiting-transfer-answered");
	fill(px, bytes / 4, 0x00cccccc);
	CHECK_EQ(transfer(ID, 0, 0, LW, LH, 0), VIRTIO_GPU_RESP_OK_NODATA, "gpu-remap-transfer-after-the-change");
	gpu_peer_pause(d.peer, false);
	bool got = flush(ID, 0, 0, LW, LH) == VIRTIO_GPU_RESP_OK_NODATA && gpu_peer_wait_updates(d.peer, before + 2, 5000);
	uint32_t tail = update_tail(before, 1);
	CHECK(got && tail == 0x00cccccc, "gpu-remap-pixels-from-the-new-mapping: %08x", tail);

	/* RAM shrinks to end where the backing starts: the resource is left without backing. */
	CHECK(remap_ram(mem - VUF_RAM_BASE), "gpu-remap-shrunk");
	CHECK_EQ(transfer(ID, 0, 0, LW, LH, 0), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-remap-backing-outside-memory-dropped");
	CHECK_EQ(attach(ID, &e, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-remap-attach-outside-memory");
	CHECK_EQ(unref(ID), VIRTIO_GPU_RESP_OK_NODATA, "gpu-remap-unref");
	gpu_drv_close(&d);
}

static void test_hostile(void)
{
	uint64_t mem = vuf_alloc(d.f, 16 * 16 * 4, 4096);
	struct virtio_gpu_mem_entry ok = { mem, 16 * 16 * 4 };

	CHECK_EQ(create_2d(0, 2, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-resource-id-0");
	CHECK_EQ(create_2d(5, 2, 16, 16), VIRTIO_GPU_RESP_OK_NODATA, "gpu-hostile-setup");
	CHECK_EQ(create_2d(5, 2, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-duplicate-id");
	CHECK_EQ(create_2d(6, 2, 16384, 16384), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY, "gpu-hostile-huge-resource");
	CHECK_EQ(create_2d(6, 2, 100000, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-too-wide");
	CHECK_EQ(create_2d(6, 2, 0, 16), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-zero-width");
	CHECK_EQ(create_2d(6, 5, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-bad-format");

	struct virtio_gpu_mem_entry low = { 0x1000, 4096 }, high = { VUF_RAM_BASE + (RAM_MIB << 20) - 4096, 8192 },
				    wrap = { ~0ull - 100, 4096 };
	CHECK_EQ(attach(5, &low, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-backing-below-ram");
	CHECK_EQ(attach(5, &high, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-backing-past-ram");
	CHECK_EQ(attach(5, &wrap, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-backing-wraps");
	CHECK_EQ(attach(5, &ok, 1, 100000), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-too-many-entries");
	CHECK_EQ(attach(5, &ok, 1, 3), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-entries-missing");
	CHECK_EQ(attach(9, &ok, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-attach-unknown");
	CHECK_EQ(attach(5, &ok, 1, 1), VIRTIO_GPU_RESP_OK_NODATA, "gpu-hostile-attach-good");
	CHECK_EQ(attach(5, &ok, 1, 1), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-hostile-attach-twice");

	CHECK_EQ(transfer(5, 0, 0, 17, 16, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-transfer-too-wide");
	CHECK_EQ(transfer(5, 8, 8, 16, 8, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-transfer-outside");
	CHECK_EQ(transfer(5, 0xffffffffu, 0, 2, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-transfer-x-wraps");
	CHECK_EQ(transfer(5, 0, 0, 16, 16, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-transfer-past-backing");
	CHECK_EQ(transfer(5, 0, 0, 16, 16, ~0ull), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-transfer-offset-wraps");
	CHECK_EQ(transfer(9, 0, 0, 1, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-transfer-unknown");
	CHECK_EQ(flush(9, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-flush-unknown");
	CHECK_EQ(flush(5, 0, 0, 32, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-flush-outside");
	CHECK_EQ(set_scanout(16, 5, 0, 0, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID, "gpu-hostile-scanout-id");
	CHECK_EQ(set_scanout(0, 5, 8, 0, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER, "gpu-hostile-scanout-rect");
	CHECK_EQ(set_scanout(0, 9, 0, 0, 16, 16), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-scanout-unknown");
	CHECK_EQ(unref(9), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID, "gpu-hostile-unref-unknown");

	struct virtio_gpu_ctrl_hdr h = HDR(0x999);
	CHECK_EQ(cmd(&h, sizeof(h)), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-hostile-unknown-command");
	h.type = VIRTIO_GPU_CMD_CTX_CREATE;
	CHECK_EQ(cmd(&h, sizeof(h)), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-3d-without-virgl");
	CHECK_EQ(cmd(&h, 8), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-hostile-short-header");
	struct virtio_gpu_resource_create_2d half = { HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), 6, 2 };
	CHECK_EQ(cmd(&half, sizeof(half) - 8), VIRTIO_GPU_RESP_ERR_UNSPEC, "gpu-hostile-short-request");

	/* --max-memory=32: 24 MiB fits, 16 more do not until the first is gone. */
	CHECK_EQ(create_2d(7, 2, 2048, 3072), VIRTIO_GPU_RESP_OK_NODATA, "gpu-memory-limit-fits");
	CHECK_EQ(create_2d(8, 2, 2048, 2048), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY, "gpu-memory-limit-enforced");
	unref(7);
	CHECK_EQ(create_2d(8, 2, 2048, 2048), VIRTIO_GPU_RESP_OK_NODATA, "gpu-memory-limit-released");
	unref(8);
	unref(5);
	CHECK(vuf_ping(d.f) == 0, "gpu-hostile-back-end-still-serves");
}

/*
 * A refused create charges nothing and frees nothing (issue 13: each refusal made
 * room for one more). With --max-memory reached, every further create is refused
 * however many were refused before; freeing one resource makes room for one.
 */
static void test_memory_limit_refusals(void)
{
	enum { FIRST = 200, SIDE = 1024, MAX = 64 }; /* 4 MiB each */
	unsigned live = 0;

	while (live < MAX && create_2d(FIRST + live, 2, SIDE, SIDE) == VIRTIO_GPU_RESP_OK_NODATA)
		live++;
	CHECK(live > 0 && live <= 8, "gpu-memory-limit-filled: %u resources of 4 MiB in 32 MiB", live);
	unsigned refused = 0;
	for (unsigned i = 0; i < 20; i++)
		refused += create_2d(FIRST + live, 2, SIDE, SIDE) == VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	CHECK(refused == 20, "gpu-memory-limit-refusals-free-nothing: %u of 20 refused", refused);
	if (refused < 20)
		live++;
	CHECK_EQ(unref(FIRST), VIRTIO_GPU_RESP_OK_NODATA, "gpu-memory-limit-unref-one");
	CHECK_EQ(create_2d(FIRST, 2, SIDE, SIDE), VIRTIO_GPU_RESP_OK_NODATA, "gpu-memory-limit-room-for-one");
	CHECK_EQ(create_2d(FIRST + MAX, 2, SIDE, SIDE), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY, "gpu-memory-limit-room-for-one-only");
	for (unsigned i = 0; i <= live; i++)
		unref(FIRST + i);
	unref(FIRST + MAX);
}

/* ---- 3D: clear a render target through a virgl command stream and read it back ---- */

enum { CCMD_CREATE_OBJECT = 1, CCMD_SET_FRAMEBUFFER_STATE = 5, CCMD_CLEAR = 7, CCMD_COPY_TRANSFER3D = 45, OBJ_SURFACE = 8 };
#define CMD0(cmd, obj, len) ((cmd) | (obj) << 8 | (len) << 16)
#define PIPE_CLEAR_COLOR0 (1 << 2)
#define COPY_SYNCHRONIZED 1
#define COPY_READ_FROM_HOST 2

static uint32_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/*
 * SUBMIT_3D of a COPY_TRANSFER3D between an s x s texture and a buffer (at offset 0)
 * whose pages virglrenderer reads (or, READ_FROM_HOST, writes) when it decodes it.
 */
static uint32_t copy_transfer(uint32_t ctx, uint32_t tex, uint32_t buf, uint32_t s, uint32_t flags)
{
	struct {
		struct virtio_gpu_cmd_submit h;
		uint32_t cs[15];
	} sub = { { { VIRTIO_GPU_CMD_SUBMIT_3D, 0, 0, ctx }, sizeof(sub.cs) },
		  { CMD0(CCMD_COPY_TRANSFER3D, 0, 14), tex, 0, 0, s * 4, 0, 0, 0, 0, s, s, 1, buf, 0, flags } };
	return cmd(&sub, sizeof(sub));
}

/*
 * Guest memory changes under virglrenderer (issue 13: it kept the iovecs of the
 * old mapping, refreshed only by TRANSFER_* commands, and a COPY_TRANSFER3D read
 * or wrote through them). Every backing is handed to it anew; one the new memory
 * no longer holds is taken away, and copies through it fail cleanly.
 */
static void test_virgl_remap(const char *tag, uint32_t ctx, uint32_t tex, uint32_t s, uint64_t tex_mem)
{
	enum { STG = 11, PIPE_BUFFER = 0, FORMAT_R8_UNORM = 64, BIND_STAGING = 1 << 19 };
	const uint32_t bytes = s * s * 4;
	uint64_t mem = vuf_alloc(d.f, bytes, 4096);
	uint8_t *stg = vuf_gpa(d.f, mem, bytes), *px = malloc(bytes);
	struct virtio_gpu_resource_create_3d rc = { HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D), STG, PIPE_BUFFER, FORMAT_R8_UNORM,
						    BIND_STAGING, bytes, 1, 1, 1, 0, 0, 0 };
	struct virtio_gpu_mem_entry e = { mem, bytes };
	struct virtio_gpu_ctx_resource ca = { { VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, ctx }, STG };

	CHECK(stg && px && cmd(&rc, sizeof(rc)) == VIRTIO_GPU_RESP_OK_NODATA &&
	      attach(STG, &e, 1, 1) == VIRTIO_GPU_RESP_OK_NODATA && cmd(&ca, sizeof(ca)) == VIRTIO_GPU_RESP_OK_NODATA,
	      "%s-remap-setup", tag);
	if (!stg || !px) {
		free(px);
		return;
	}
	/* RAM grows: the cleared texture is copied into the staging buffer's pages, where they are now. */
	memset(stg, 0, bytes);
	CHECK(remap_ram((uint64_t)2 * RAM_MIB << 20), "%s-remap-grown", tag);
	CHECK_EQ(copy_transfer(ctx, tex, STG, s, COPY_SYNCHRONIZED | COPY_READ_FROM_HOST), VIRTIO_GPU_RESP_OK_NODATA,
		 "%s-remap-copy-from-host", tag);
	CHECK(stg[1] >= 0x7f && stg[1] <= 0x80 && stg[2] == 0xff && stg[bytes - 2] == 0xff,
	      "%s-remap-copy-from-host-lands-in-the-new-mapping: %02x %02x %02x", tag, stg[0], stg[1], stg[2]);

	/* Again: a pattern from the staging buffer into the texture, read back through the texture's backing. */
	for (uint32_t i = 0; i < bytes; i++)
		stg[i] = (uint8_t)(i * 7 + i / 4096);
	memcpy(px, stg, bytes);
	CHECK(remap_ram((uint64_t)3 * RAM_MIB << 20), "%s-remap-grown-again", tag);
	CHECK_EQ(copy_transfer(ctx, tex, STG, s, COPY_SYNCHRONIZED), VIRTIO_GPU_RESP_OK_NODATA, "%s-remap-copy-to-host", tag);
	struct virtio_gpu_transfer_host_3d tf = { { VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D, 0, 0, ctx },
						  { 0, 0, 0, s, s, 1 }, 0, tex, 0, s * 4, 0 };
	uint8_t *back = vuf_gpa(d.f, tex_mem, bytes);
	if (back)
		memset(back, 0, bytes);
	CHECK_EQ(cmd(&tf, sizeof(tf)), VIRTIO_GPU_RESP_OK_NODATA, "%s-remap-read-back", tag);
	bool same = back != NULL;
	for (uint32_t i = 0; same && i < bytes; i++)
		same = i % 4 == 3 || back[i] == px[i]; /* X8: the fourth byte is not kept */
	CHECK(same, "%s-remap-copy-to-host-read-from-the-new-mapping", tag);

	/* RAM shrinks to end where the staging buffer starts: it is left without backing. */
	CHECK(remap_ram(mem - VUF_RAM_BASE), "%s-remap-shrunk", tag);
	CHECK(copy_transfer(ctx, tex, STG, s, COPY_SYNCHRONIZED) != VIRTIO_GPU_RESP_OK_NODATA && vuf_ping(d.f) == 0,
	      "%s-remap-copy-without-backing-refused", tag);
	CHECK_EQ(unref(STG), VIRTIO_GPU_RESP_OK_NODATA, "%s-remap-unref", tag);
	free(px);
}

/* tag names the variant in the case names; args start the back-end. */
static void test_virgl(const char *tag, const char *const *args)
{
	enum { CTX = 1, RES = 10, SURF = 1, S = 64 };

	gpu_drv_close(&d);
	if (!gpu_drv_open(&d, sock, args, RAM_MIB, true, 640, 480)) {
		CHECK(false, "%s-start", tag);
		return;
	}
	struct virtio_gpu_config cfg;
	CHECK(vuf_get_config(d.f, 0, sizeof(cfg), &cfg) > 0 && cfg.num_capsets >= 1, "%s-capsets", tag);
	struct virtio_gpu_get_capset_info ci = { HDR(VIRTIO_GPU_CMD_GET_CAPSET_INFO), 0 };
	struct virtio_gpu_resp_capset_info info;
	uint32_t t = gpu_drv_cmd(&d, 0, &ci, sizeof(ci), &info, sizeof(info));
	CHECK(t == VIRTIO_GPU_RESP_OK_CAPSET_INFO && info.capset_id == VIRTIO_GPU_CAPSET_VIRGL && info.capset_max_size,
	      "%s-capset-info", tag);
	struct virtio_gpu_get_capset gc = { HDR(VIRTIO_GPU_CMD_GET_CAPSET), VIRTIO_GPU_CAPSET_VIRGL, 1 };
	struct virtio_gpu_ctrl_hdr rh;
	CHECK_EQ(gpu_drv_cmd(&d, 0, &gc, sizeof(gc), &rh, sizeof(rh)), VIRTIO_GPU_RESP_OK_CAPSET, "%s-capset", tag);

	struct virtio_gpu_ctx_create cc = { { VIRTIO_GPU_CMD_CTX_CREATE, 0, 0, CTX }, 4, 0, "test" };
	CHECK_EQ(cmd(&cc, sizeof(cc)), VIRTIO_GPU_RESP_OK_NODATA, "%s-ctx-create", tag);
	struct virtio_gpu_resource_create_3d rc = { HDR(VIRTIO_GPU_CMD_RESOURCE_CREATE_3D), RES, 2 /* 2D texture */,
						    VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 2 /* render target */, S, S, 1, 1,
						    0, 0, 0 };
	CHECK_EQ(cmd(&rc, sizeof(rc)), VIRTIO_GPU_RESP_OK_NODATA, "%s-create-3d", tag);
	uint64_t mem = vuf_alloc(d.f, S * S * 4, 4096);
	struct virtio_gpu_mem_entry e = { mem, S * S * 4 };
	CHECK_EQ(attach(RES, &e, 1, 1), VIRTIO_GPU_RESP_OK_NODATA, "%s-attach-backing", tag);
	struct virtio_gpu_ctx_resource ca = { { VIRTIO_GPU_CMD_CTX_ATTACH_RESOURCE, 0, 0, CTX }, RES };
	CHECK_EQ(cmd(&ca, sizeof(ca)), VIRTIO_GPU_RESP_OK_NODATA, "%s-ctx-attach", tag);

	/* A surface on the texture, the framebuffer, a clear to (1, 0.5, 0, 1). */
	struct {
		struct virtio_gpu_cmd_submit s;
		uint32_t cs[6 + 4 + 9];
	} sub = { { { VIRTIO_GPU_CMD_SUBMIT_3D, VIRTIO_GPU_FLAG_FENCE, 5, CTX }, sizeof(sub.cs) },
		  { CMD0(CCMD_CREATE_OBJECT, OBJ_SURFACE, 5), SURF, RES, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 0,
		    CMD0(CCMD_SET_FRAMEBUFFER_STATE, 0, 3), 1, 0, SURF,
		    CMD0(CCMD_CLEAR, 0, 8), PIPE_CLEAR_COLOR0, fbits(1.0f), fbits(0.5f), fbits(0.0f), fbits(1.0f), 0, 0, 0 } };
	CHECK_EQ(cmd(&sub, sizeof(sub)), VIRTIO_GPU_RESP_OK_NODATA, "%s-submit-3d", tag);
	struct virtio_gpu_transfer_host_3d tf = { { VIRTIO_GPU_CMD_TRANSFER_FROM_HOST_3D, VIRTIO_GPU_FLAG_FENCE, 6, CTX },
						  { 0, 0, 0, S, S, 1 }, 0, RES, 0, S * 4, 0 };
	CHECK_EQ(cmd(&tf, sizeof(tf)), VIRTIO_GPU_RESP_OK_NODATA, "%s-transfer-from-host", tag);
	uint8_t px[S * S * 4];
	vuf_gpa_read(d.f, mem, px, sizeof(px));
	bool same = true;
	for (unsigned i = 0; i < S * S && same; i++)
		same = px[i * 4] == 0 && (px[i * 4 + 1] == 0x7f || px[i * 4 + 1] == 0x80) && px[i * 4 + 2] == 0xff;
	CHECK(same, "%s-clear-reads-back", tag);
	if (!same)
		check_note("first pixel %02x %02x %02x %02x", px[0], px[1], px[2], px[3]);

	/* The result on a scanout reaches the display as pixels (no render node here) or a dmabuf. */
	unsigned before = gpu_peer_updates(d.peer);
	CHECK_EQ(set_scanout(0, RES, 0, 0, S, S), VIRTIO_GPU_RESP_OK_NODATA, "%s-set-scanout", tag);
	CHECK_EQ(flush(RES, 0, 0, S, S), VIRTIO_GPU_RESP_OK_NODATA, "%s-flush", tag);
	if (gpu_peer_wait_updates(d.peer, before + 1, 2000)) {
		pthread_mutex_lock(&d.peer->lock);
		CHECK(d.peer->fb && (d.peer->fb[0] & 0xff00ff) == 0xff0000, "%s-scanout-pixels", tag);
		pthread_mutex_unlock(&d.peer->lock);
	} else {
		char name[80];
		snprintf(name, sizeof(name), "%s-scanout-pixels", tag);
		SKIP(name, "scanouts go as dmabufs here");
	}
	test_virgl_remap(tag, CTX, RES, S, mem);
	struct virtio_gpu_ctx_destroy cd = { { VIRTIO_GPU_CMD_CTX_DESTROY, 0, 0, CTX } };
	CHECK_EQ(cmd(&cd, sizeof(cd)), VIRTIO_GPU_RESP_OK_NODATA, "%s-ctx-destroy", tag);
	CHECK_EQ(unref(RES), VIRTIO_GPU_RESP_OK_NODATA, "%s-unref", tag);
}

/* Does `gpu --print-capabilities` list the feature here? */
static bool capability(const char *feature)
{
	char line[256];
	const char *bin = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";
	snprintf(line, sizeof(line), "'%s' gpu --print-capabilities 2>/dev/null | grep -q '\"%s\"'", bin, feature);
	return system(line) == 0;
}

/* The first render node, as the back-end's default would pick it. */
static const char *render_node(void)
{
	static char path[64];
	for (int i = 128; i < 192; i++) {
		snprintf(path, sizeof(path), "/dev/dri/renderD%d", i);
		if (access(path, R_OK | W_OK) == 0)
			return path;
	}
	return NULL;
}

int main(void)
{
	static const char *const args[] = { "--max-memory=32", NULL };
	char dir[] = "/tmp/t-gpu.XXXXXX";

	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/gpu.sock", dir);
	if (!gpu_drv_open(&d, sock, args, RAM_MIB, true, 640, 480)) {
		CHECK(false, "gpu-start: %s", d.f ? vuf_error(d.f) : "no connection");
		gpu_drv_close(&d);
		return check_exit();
	}
	test_queries();
	test_formats();
	test_display();
	test_hostile();
	test_memory_limit_refusals();
	test_scattered_backing();
	test_backing_across_regions();
	test_cursor_backlog();
	test_status_reset();
	test_lent_pixels();
	test_spliced_pixels();
	test_remap_waiting_transfer();
	static const char *const surfaceless[] = { "--virgl", NULL };
	if (capability("virgl"))
		test_virgl("gpu-virgl", surfaceless);
	else
		SKIP("gpu-virgl", "--print-capabilities does not list virgl here");
	/* The render-node path (GBM, dmabuf scanouts) needs a GPU this machine may not have. */
	char node_arg[80];
	const char *node = render_node();
	if (node && capability("render-node")) {
		snprintf(node_arg, sizeof(node_arg), "--render-node=%s", node);
		const char *const with_node[] = { "--virgl", node_arg, NULL };
		test_virgl("gpu-virgl-render-node", with_node);
	} else {
		SKIP("gpu-virgl-render-node", node ? "--print-capabilities does not list render-node here"
						   : "no /dev/dri render node on this host");
	}
	gpu_drv_close(&d);
	rmdir(dir);
	return check_exit();
}
