/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device fuzzing harness (see fuzz-device.h): ports and their sessions,
 * guest RAM, set-up, the operations, and driving the loop until it is idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/device-state.h"
#include "proto/log.h"
#include "proto/loop.h"
#include "proto/msg.h"
#include "proto/session.h"
#include "proto/sigbus.h"
#include "test/frontend.h"
#include "test/fuzz/fuzz-device.h"

/*
 * Guest RAM of a port: region 0 holds the rings (and indirect tables), region 1
 * the requests' buffers, right after it in guest-physical space so that a buffer
 * may straddle the two. Region 1 can grow in place: its mapping sits at the start
 * of a reservation of RAM1_MAX bytes, so its user address never changes.
 */
#define RAM0_SIZE (256u << 10)
#define RAM1_SIZE (256u << 10)
#define RAM1_MAX (1u << 20)
#define GROW_STEP (64u << 10)
#define PAGE 4096u
#define SETTLE_ROUNDS 64          /* loop and peers taking turns, at most, per step */
#define CORE_FEATURES (1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_USER_F_PROTOCOL_FEATURES)
#define STATUS_OK (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
		   VIRTIO_STATUS_DRIVER_OK)

struct fz {
	const struct fz_target *t;
	struct fz_header hdr;
	struct vu_loop *loop;
	unsigned nq;
	unsigned num;                  /* ring size */
	struct fz_port ports[FZ_MAX_PORTS];
	struct fz_port *cur;
};

/* ---- the input ------------------------------------------------------------ */

size_t fz_bytes(struct fz_input *in, size_t max, const uint8_t **p)
{
	size_t n = max < in->n ? max : in->n;

	*p = in->p;
	in->p += n;
	in->n -= n;
	return n;
}

static uint64_t read_le(struct fz_input *in, size_t len)
{
	const uint8_t *p;
	size_t n = fz_bytes(in, len, &p);
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

uint8_t fz_u8(struct fz_input *in) { return (uint8_t)read_le(in, 1); }
uint16_t fz_u16(struct fz_input *in) { return (uint16_t)read_le(in, 2); }
uint32_t fz_u32(struct fz_input *in) { return (uint32_t)read_le(in, 4); }

/* ---- process and device ------------------------------------------------------ */

static bool tracing;

void fz_init_process(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	const char *log = getenv("VU_FUZZ_LOG");
	tracing = log && !strcmp(log, "1");
	vu_log_set_quiet(!tracing);
	signal(SIGPIPE, SIG_IGN);
	/* Waits for the loop to settle are a few microseconds: no 50 us of timer slack on each. */
	prctl(PR_SET_TIMERSLACK, 1);
}

int fz_set_option(struct vu_dev *dev, const char *option)
{
	const char *eq = strchr(option, '=');
	size_t len = eq ? (size_t)(eq - option) : strlen(option);

	for (const struct vu_option *o = dev->type->options; o && o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, option, len))
			return vu_option_set(dev, o, eq ? eq + 1 : "");
	return -1;
}

int fz_memfd_option(struct vu_dev *dev, const char *name, uint64_t size, char *opt)
{
	int fd = memfd_create("fuzz-file", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	snprintf(opt, FZ_OPTION_MAX, "%s=/proc/self/fd/%d", name, fd);
	if (ftruncate(fd, size) < 0 || fz_set_option(dev, opt) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct vu_dev *device_new(struct fz_port *p)
{
	const struct fz_target *t = p->h->t;
	struct vu_dev *dev = vu_device_create(t->type);

	p->dev = dev;
	if (!dev)
		return NULL;
	for (const char *const *o = t->options; o && *o; o++)
		if (fz_set_option(dev, *o) < 0)
			goto fail;
	if ((t->prepare && t->prepare(p) < 0) || (t->type->init && t->type->init(dev, p->h->loop) < 0))
		goto fail;
	return dev;
fail:
	fprintf(stderr, "fuzz: the %s device cannot start\n", t->type->name);
	abort();
}

/* ---- guest RAM ------------------------------------------------------------- */

static int ram_init(struct fz_port *p)
{
	struct vuf *f = p->f;
	struct vuf_region *r0 = &f->region[0], *r1 = &f->region[1];
	uint64_t off1 = p->h->hdr.flags & FZ_F_OFFSET ? PAGE : 0;

	r0->fd = memfd_create("fuzz-ram0", MFD_CLOEXEC);
	r1->fd = memfd_create("fuzz-ram1", MFD_CLOEXEC);
	f->nregions = 2;
	r0->host = r1->host = MAP_FAILED;
	if (r0->fd < 0 || r1->fd < 0 || ftruncate(r0->fd, RAM0_SIZE) < 0 || ftruncate(r1->fd, off1 + RAM1_SIZE) < 0)
		return -1;
	r0->host = mmap(NULL, RAM0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r0->fd, 0);
	r1->host = mmap(NULL, RAM1_MAX, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r0->host == MAP_FAILED || r1->host == MAP_FAILED ||
	    mmap(r1->host, RAM1_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r1->fd, off1) == MAP_FAILED)
		return -1;
	*r0 = (struct vuf_region){ .gpa = VUF_RAM_BASE, .size = RAM0_SIZE, .host = r0->host, .fd = r0->fd };
	*r1 = (struct vuf_region){ .gpa = VUF_RAM_BASE + RAM0_SIZE, .size = RAM1_SIZE, .host = r1->host,
				   .fd = r1->fd, .offset = off1, .next = RAM1_SIZE /* vuf_alloc: full */ };
	p->present[0] = p->present[1] = true;
	return 0;
}

static void ram_free(struct vuf *f)
{
	for (unsigned i = 0; i < f->nregions; i++) {
		struct vuf_region *r = &f->region[i];
		if (r->host != MAP_FAILED)
			munmap(r->host, i ? RAM1_MAX : RAM0_SIZE);
		if (r->fd >= 0)
			close(r->fd);
	}
	f->nregions = 0;
}

/* Region 1's memfd takes size bytes, and our mapping with it (the back-end is not told). */
static int ram1_resize(struct fz_port *p, uint64_t size)
{
	struct vuf_region *r = &p->f->region[1];

	if (ftruncate(r->fd, r->offset + size) < 0)
		return -1;
	if (size > r->size &&
	    mmap(r->host + r->size, size - r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->fd,
		 r->offset + r->size) == MAP_FAILED)
		return -1;
	if (size < r->size) /* what is beyond the file is not ours to touch any more */
		mmap(r->host + size, r->size - size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	r->size = size;
	if (p->data_next >= size)
		p->data_next = 0;
	return 0;
}

/* ---- messages ------------------------------------------------------------------ */

static bool acks(const struct fz_port *p)
{
	return p->pf & (1ull << VU_PF_REPLY_ACK);
}

int fz_send(struct fz_port *p, uint32_t request, const void *payload, uint32_t size, const int *fds, int nfds)
{
	uint32_t flags = VU_FLAG_VERSION | (acks(p) && !vu_msg_has_reply(request) ? VU_FLAG_NEED_REPLY : 0);

	return vu_msg_send(p->f->sock, request, flags, payload, size, fds, nfds);
}

static void send_u64(struct fz_port *p, uint32_t request, uint64_t v)
{
	fz_send(p, request, &v, sizeof(v), NULL, 0);
}

static void send_state(struct fz_port *p, uint32_t request, unsigned index, unsigned num)
{
	struct vu_vring_state st = { index, num };
	fz_send(p, request, &st, sizeof(st), NULL, 0);
}

/* SET_VRING_KICK/CALL/ERR: the eventfd, or the NOFD flag. */
static void send_vring_fd(struct fz_port *p, uint32_t request, unsigned index, int fd)
{
	uint64_t v = index | (fd < 0 ? VU_VRING_NOFD_MASK : 0);
	fz_send(p, request, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

/*
 * Reads one whole message without waiting (the back-end writes each in one go):
 * its payload size, or -1 when none is there. An fd that comes along goes to *fd
 * (else it is closed).
 */
static int recv_msg(int sock, struct vu_hdr *hdr, void *payload, size_t max, int *fd)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { hdr, sizeof(*hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };

	if (fd)
		*fd = -1;
	if (sock < 0 || recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != sizeof(*hdr))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(got));
			if (fd && *fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	uint8_t scratch[512];
	if (hdr->size > max || hdr->size > sizeof(scratch))
		return -1; /* nothing the back-end sends is this big */
	if (hdr->size && recv(sock, scratch, hdr->size, MSG_DONTWAIT) != (ssize_t)hdr->size)
		return -1;
	memcpy(payload, scratch, hdr->size);
	return (int)hdr->size;
}

static void unmap_inflight(struct fz_port *p)
{
	if (p->inflight)
		munmap(p->inflight, p->inflight_size);
	if (p->inflight_fd >= 0)
		close(p->inflight_fd);
	p->inflight = NULL;
	p->inflight_fd = -1;
}

static void take_inflight(struct fz_port *p, const struct vu_inflight *in, int fd)
{
	unmap_inflight(p);
	p->inflight_fd = fd;
	if (fd < 0 || !in->mmap_size || in->mmap_size > (64u << 20))
		return;
	p->inflight = mmap(NULL, in->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, in->mmap_offset);
	if (p->inflight == MAP_FAILED)
		p->inflight = NULL;
	else
		p->inflight_size = in->mmap_size;
}

/* Replies to our requests: ring bases and the inflight buffer are kept, the rest read. */
static void read_replies(struct fz_port *p)
{
	union vu_payload pl;
	struct vu_hdr h;
	int fd, n;

	while ((n = recv_msg(p->f->sock, &h, &pl, sizeof(pl), &fd)) >= 0) {
		if (h.request == VU_REQ_GET_VRING_BASE && n == sizeof(pl.state) && pl.state.index < FZ_MAX_QUEUES)
			p->base[pl.state.index] = (uint16_t)pl.state.num;
		else if (h.request == VU_REQ_GET_PROTOCOL_FEATURES && n == sizeof(pl.u64))
			p->pf_offered = pl.u64;
		if (h.request == VU_REQ_GET_INFLIGHT_FD && n >= (int)VU_INFLIGHT_MIN_SIZE)
			take_inflight(p, &pl.inflight, fd);
		else if (fd >= 0)
			close(fd);
	}
}

/* The back-end channel: in-band calls and config changes, acked when asked. */
static bool serve_backend_channel(struct fz_port *p)
{
	union vu_payload pl;
	struct vu_hdr h;
	bool acked = false;

	while (recv_msg(p->backend_sock, &h, &pl, sizeof(pl), NULL) >= 0)
		if (h.flags & VU_FLAG_NEED_REPLY) {
			uint64_t ok = 0;
			vu_msg_send(p->backend_sock, h.request, VU_FLAG_REPLY | VU_FLAG_VERSION, &ok, sizeof(ok), NULL, 0);
			acked = true;
		}
	return acked;
}

/* ---- the loop ----------------------------------------------------------------- */

/*
 * For seed writing: the first word and the last byte the device wrote for a used
 * request (a response's type, a status), from its chain as the ring holds it.
 */
static void trace_used(struct fz_port *p, unsigned q, uint32_t id, uint32_t len)
{
	struct vuf_vq *vq = p->f->vq[q];
	uint64_t first = 0, last = 0;
	uint32_t word = 0;
	uint8_t byte = 0;

	for (unsigned i = id, n = 0; i < vq->num && n < vq->num; n++) {
		const struct vring_desc *d = &vq->desc[i];
		if ((d->flags & VRING_DESC_F_WRITE) && d->len) {
			first = first ? first : d->addr;
			last = d->addr + d->len - 1;
		}
		if (!(d->flags & VRING_DESC_F_NEXT))
			break;
		i = d->next;
	}
	if (first)
		vuf_gpa_read(p->f, first, &word, sizeof(word));
	if (last)
		vuf_gpa_read(p->f, last, &byte, 1);
	fprintf(stderr, "fuzz: port %u queue %u: used %u, %u bytes, first word 0x%x, last byte %u\n", p->index, q,
		id, len, word, byte);
}

/*
 * The driver takes back what the device used (bounded: a poked used idx may say
 * anything). Calls and errors are not read: the device cannot tell.
 */
static void reap_used(struct fz_port *p)
{
	for (unsigned q = 0; q < p->h->nq; q++) {
		struct vuf_vq *vq = p->f->vq[q];
		if (!vq)
			continue;
		for (unsigned i = 0; i < vq->num && vuf_vq_used_pending(vq); i++) {
			uint32_t id, len;
			vuf_vq_wait_used(vq, &id, &len, 0);
			if (tracing)
				trace_used(p, q, id, len);
		}
	}
}

static void settle(struct fz *h)
{
	for (unsigned round = 0; round < SETTLE_ROUNDS; round++) {
		bool more = false;
		vu_loop_run_until_idle(h->loop, h->t->settle_ns);
		for (unsigned i = 0; i < h->t->nports; i++) {
			struct fz_port *p = &h->ports[i];
			read_replies(p);
			more |= serve_backend_channel(p);
			reap_used(p);
			if (h->t->service)
				more |= h->t->service(p);
		}
		if (!more)
			return;
	}
}

/* A request whose reply set-up needs now: the loop runs just until it is answered. */
static void call(struct fz_port *p, uint32_t request)
{
	fz_send(p, request, NULL, 0, NULL, 0);
	vu_loop_run_until_idle(p->h->loop, 0);
	read_replies(p);
}

static void stop_loop(void *opaque)
{
	vu_loop_stop(opaque);
}

/* The loop runs for us microseconds, whatever happens meanwhile. */
static void run_for(struct fz *h, unsigned us)
{
	struct vu_timer *t = vu_timer_new(h->loop, stop_loop, h->loop);

	if (!t)
		return;
	vu_timer_arm(t, (uint64_t)us * 1000u + 1, 0);
	vu_loop_run_until_idle(h->loop, UINT64_MAX / 2);
	vu_timer_free(t);
	settle(h);
}

/* ---- set-up ------------------------------------------------------------------ */

static void on_session_end(void *opaque, struct vu_session *s)
{
	struct fz_port *p = opaque;

	vu_session_free(s);
	p->s = NULL;
}

static int connect_port(struct fz_port *p)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return -1;
	/* Neither side ever waits for the other to read: give both room. */
	int big = 4 << 20;
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	p->f->sock = sv[1];
	p->s = vu_session_new(p->h->loop, sv[0], p->dev, on_session_end, p);
	return p->s ? 0 : -1;
}

/* The back-end's end goes: the session sees the hang-up and ends. */
static void disconnect_port(struct fz_port *p)
{
	if (p->f->sock >= 0)
		close(p->f->sock);
	if (p->backend_sock >= 0)
		close(p->backend_sock);
	p->f->sock = p->backend_sock = -1;
	vu_loop_run_until_idle(p->h->loop, 0);
	if (p->s) /* it did not notice: end it as the back-end would */
		on_session_end(p, p->s);
}

static void send_mem_table(struct fz_port *p)
{
	struct vu_mem_table t = { 0 };
	int fds[2];

	for (unsigned i = 0; i < 2; i++)
		if (p->present[i]) {
			fds[t.nregions] = p->f->region[i].fd;
			t.regions[t.nregions++] = vuf_region_desc(p->f, i);
		}
	if (t.nregions)
		fz_send(p, VU_REQ_SET_MEM_TABLE, &t, 8 + t.nregions * sizeof(t.regions[0]), fds, (int)t.nregions);
}

static bool want_inflight(const struct fz_port *p)
{
	return p->pf & (1ull << VU_PF_INFLIGHT_SHMFD);
}

/* GET_INFLIGHT_FD for every queue at the rings' size, as QEMU asks before starting them. */
static void get_inflight(struct fz_port *p)
{
	struct vu_inflight in = { .num_queues = (uint16_t)p->dev->num_queues, .queue_size = (uint16_t)p->h->num };

	fz_send(p, VU_REQ_GET_INFLIGHT_FD, &in, sizeof(in), NULL, 0);
	vu_loop_run_until_idle(p->h->loop, 0);
	read_replies(p);
}

/* SET_INFLIGHT_FD with the buffer the previous session filled, as QEMU does on a reconnect. */
static void set_inflight(struct fz_port *p)
{
	struct vu_inflight in = { .mmap_size = p->inflight_size, .num_queues = (uint16_t)p->dev->num_queues,
				  .queue_size = (uint16_t)p->h->num };

	if (p->inflight_fd < 0)
		return get_inflight(p);
	fz_send(p, VU_REQ_SET_INFLIGHT_FD, &in, sizeof(in), &p->inflight_fd, 1);
}

/* SET_VRING_ADDR: where the ring is, and whether its used ring is logged. */
static void send_ring_addr(struct fz_port *p, unsigned q)
{
	struct vuf_vq *vq = p->f->vq[q];
	struct vu_vring_addr a = { .index = q, .desc_user_addr = (uintptr_t)vq->desc,
				   .used_user_addr = (uintptr_t)vq->used, .avail_user_addr = (uintptr_t)vq->avail,
				   .flags = p->logging ? VU_VRING_F_LOG : 0, .log_guest_addr = vq->used_gpa };

	fz_send(p, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

/* Sends a ring's set-up (the ring's memory says where the driver is). */
static void start_ring(struct fz_port *p, unsigned q, uint16_t base)
{
	struct vuf_vq *vq = p->f->vq[q];
	uint8_t flags = p->h->hdr.flags;

	vq->event_idx = p->f->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	send_state(p, VU_REQ_SET_VRING_NUM, q, vq->num);
	send_state(p, VU_REQ_SET_VRING_BASE, q, base);
	send_ring_addr(p, q);
	send_vring_fd(p, VU_REQ_SET_VRING_CALL, q, flags & FZ_F_CALL_NOFD ? -1 : vq->call_fd);
	send_vring_fd(p, VU_REQ_SET_VRING_ERR, q, vq->err_fd);
	send_vring_fd(p, VU_REQ_SET_VRING_KICK, q, flags & FZ_F_KICK_NOFD ? -1 : vq->kick_fd);
	send_state(p, VU_REQ_SET_VRING_ENABLE, q, 1);
}

/* The driver forgets its requests and both indexes start at base. */
static void reset_ring_driver(struct vuf_vq *vq, uint16_t base)
{
	vuf_vq_reset_driver(vq);
	vq->avail->idx = vq->used->idx = base;
	vq->avail_idx = vq->last_used = base;
	vq->avail->ring[vq->num] = base; /* used_event */
}

static void set_features(struct fz_port *p)
{
	uint8_t flags = p->h->hdr.flags;
	uint64_t f = CORE_FEATURES | (p->dev->features & p->h->hdr.features[p->index]) |
		     (p->logging ? 1ull << VHOST_F_LOG_ALL : 0) |
		     (flags & FZ_F_EVENT_IDX ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
		     (flags & FZ_F_INDIRECT ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0);

	p->f->features = f;
	send_u64(p, VU_REQ_SET_FEATURES, f);
}

/* The protocol features the header leaves in, of those offered. */
static uint64_t pick_protocol_features(const struct fz_port *p, uint64_t offered)
{
	uint8_t flags = p->h->hdr.flags, off = p->h->hdr.pf_off;
	uint64_t drop = 0;

	if (!(flags & FZ_F_REPLY_ACK))
		drop |= 1ull << VU_PF_REPLY_ACK;
	if (!(flags & FZ_F_INFLIGHT))
		drop |= 1ull << VU_PF_INFLIGHT_SHMFD;
	if (off & FZ_PF_OFF_CONFIG)
		drop |= 1ull << VU_PF_CONFIG;
	if (off & FZ_PF_OFF_STATUS)
		drop |= 1ull << VU_PF_STATUS;
	if (off & FZ_PF_OFF_RESET)
		drop |= 1ull << VU_PF_RESET_DEVICE;
	if (off & FZ_PF_OFF_MEM_SLOTS)
		drop |= 1ull << VU_PF_CONFIGURE_MEM_SLOTS;
	if (off & FZ_PF_OFF_BACKEND_REQ)
		drop |= 1ull << VU_PF_BACKEND_REQ;
	if (off & FZ_PF_OFF_MQ)
		drop |= 1ull << VU_PF_MQ;
	if (flags & FZ_F_INBAND) /* which the spec allows only with these two */
		drop &= ~(1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_BACKEND_REQ);
	else
		drop |= 1ull << VU_PF_INBAND_NOTIFICATIONS;
	return offered & ~drop;
}

static void open_backend_channel(struct fz_port *p)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	fz_send(p, VU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	p->backend_sock = sv[0];
}

/* Everything a driver does once its features are known: inflight, rings, status. */
static void start_driver(struct fz_port *p, bool fresh)
{
	set_features(p);
	if (want_inflight(p))
		fresh ? get_inflight(p) : set_inflight(p);
	for (unsigned q = 0; q < p->h->nq; q++) {
		struct vuf_vq *vq = p->f->vq[q];
		uint16_t base = fresh ? 0 : vq->used->idx;
		if (fresh)
			reset_ring_driver(vq, 0);
		start_ring(p, q, base);
	}
	if (p->pf & (1ull << VU_PF_STATUS))
		send_u64(p, VU_REQ_SET_STATUS, STATUS_OK);
}

/*
 * A front-end's set-up of a new session, as QEMU does it. fresh: a new driver;
 * else the same driver goes on with the rings where they are (a reconnect).
 */
static void setup_session(struct fz_port *p, bool fresh)
{
	p->pf = p->pf_offered = 0;
	fz_send(p, VU_REQ_GET_FEATURES, NULL, 0, NULL, 0);
	call(p, VU_REQ_GET_PROTOCOL_FEATURES);
	p->pf = pick_protocol_features(p, p->pf_offered);
	send_u64(p, VU_REQ_SET_PROTOCOL_FEATURES, p->pf);
	fz_send(p, VU_REQ_SET_OWNER, NULL, 0, NULL, 0);
	if (p->pf & (1ull << VU_PF_BACKEND_REQ))
		open_backend_channel(p);
	send_mem_table(p);
	start_driver(p, fresh);
	if (p->h->t->connected)
		p->h->t->connected(p);
}

static int port_init(struct fz *h, unsigned i, struct vu_dev *kept)
{
	struct fz_port *p = &h->ports[i];

	*p = (struct fz_port){ .h = h, .hdr = &h->hdr, .index = i, .backend_sock = -1, .inflight_fd = -1,
			       .image_fd = -1 };
	p->f = calloc(1, sizeof(*p->f));
	if (!p->f)
		return -1;
	p->f->sock = p->f->backend_sock = -1;
	p->dev = kept ? kept : device_new(p);
	/* Options may change the queue count (blk --num-queues): every port has the same. */
	h->nq = p->dev->num_queues < FZ_MAX_QUEUES ? p->dev->num_queues : FZ_MAX_QUEUES;
	if (ram_init(p) < 0)
		return -1;
	for (unsigned q = 0; q < h->nq; q++) {
		struct vuf_vq *vq = vuf_vq_alloc(p->f, q, h->num);
		if (!vq)
			return -1;
		vq->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		vq->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		vq->err_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vq->kick_fd < 0 || vq->call_fd < 0 || vq->err_fd < 0)
			return -1;
	}
	if (connect_port(p) < 0) {
		/* The loop is the process's: a watch the last input's device left is a bug. */
		fprintf(stderr, "fuzz: cannot start a session (a watch left on the loop?)\n");
		abort();
	}
	setup_session(p, true);
	return 0;
}

static void port_free(struct fz_port *p, bool keep_device)
{
	if (!p->f)
		return;
	disconnect_port(p);
	if (p->h->t->finish)
		p->h->t->finish(p);
	if (p->dev && !keep_device)
		p->dev->type->destroy(p->dev);
	if (p->image_fd >= 0)
		close(p->image_fd);
	unmap_inflight(p);
	ram_free(p->f);
	vuf_close(p->f);
	p->f = NULL;
}

/* ---- operations ----------------------------------------------------------------- */

static struct vuf_vq *queue_arg(struct fz_port *p, struct fz_input *in, unsigned *q)
{
	*q = fz_u8(in) % p->h->nq;
	return p->f->vq[*q];
}

static void kick(struct fz_port *p, unsigned q)
{
	uint8_t flags = p->h->hdr.flags;
	uint64_t one = 1;

	if (!(flags & FZ_F_KICK_NOFD)) {
		if (write(p->f->vq[q]->kick_fd, &one, sizeof(one)) < 0)
			return;
	} else if (p->pf & (1ull << VU_PF_INBAND_NOTIFICATIONS)) {
		send_state(p, VU_REQ_VRING_KICK, q, 0);
	} else {
		run_for(p->h, 1100); /* a polled ring: the session looks every millisecond */
	}
}

/* Room for a buffer of len bytes in region 1 (wrapping round). */
static uint64_t buffer_gpa(struct fz_port *p, uint32_t *len)
{
	const struct vuf_region *r = &p->f->region[1];

	if (*len > r->size)
		*len = (uint32_t)r->size;
	if (p->data_next + *len > r->size)
		p->data_next = 0;
	uint64_t gpa = r->gpa + p->data_next;
	p->data_next = (p->data_next + *len + 7) & ~7ull;
	return gpa;
}

static void op_req(struct fz_port *p, struct fz_input *in)
{
	struct vuf_buf bufs[8];
	unsigned q;
	struct vuf_vq *vq = queue_arg(p, in, &q);
	uint8_t flags = fz_u8(in);
	unsigned nout = fz_u8(in) % 5, nin = fz_u8(in) % 5;

	for (unsigned i = 0; i < nout + nin; i++) {
		uint32_t len = fz_u16(in);
		bufs[i].gpa = flags & FZ_REQ_RAW_ADDR ? VUF_RAM_BASE - PAGE + fz_u32(in) : buffer_gpa(p, &len);
		bufs[i].len = len;
	}
	for (unsigned i = 0; i < nout; i++) {
		const uint8_t *data;
		size_t n = fz_bytes(in, bufs[i].len, &data);
		vuf_gpa_write(p->f, bufs[i].gpa, data, n);
	}
	if (nout + nin && vuf_vq_add(vq, bufs, nout, bufs + nout, nin, flags & FZ_REQ_INDIRECT) >= 0 &&
	    (flags & FZ_REQ_KICK))
		kick(p, q);
}

static void op_poke(struct fz_port *p, struct fz_input *in)
{
	uint64_t ram = RAM0_SIZE + p->f->region[1].size;
	uint64_t gpa = VUF_RAM_BASE + fz_u32(in) % ram;
	const uint8_t *data;
	size_t n = fz_bytes(in, fz_u8(in), &data);

	vuf_gpa_write(p->f, gpa, data, n);
}

static void op_ring_poke(struct fz_port *p, struct fz_input *in)
{
	unsigned q;
	struct vuf_vq *vq = queue_arg(p, in, &q);
	unsigned part = fz_u8(in) % 3;
	size_t size = part == 0 ? 16u * vq->num : part == 1 ? 6u + 2 * vq->num : 6u + 8 * vq->num;
	uint8_t *base = part == 0 ? (uint8_t *)vq->desc : part == 1 ? (uint8_t *)vq->avail : (uint8_t *)vq->used;
	size_t off = fz_u16(in) % size;
	const uint8_t *data;
	size_t n = fz_bytes(in, fz_u8(in), &data);

	memcpy(base + off, data, n < size - off ? n : size - off);
}

static void send_region(struct fz_port *p, uint32_t request, unsigned i)
{
	struct vu_mem_single m = { .region = vuf_region_desc(p->f, i) };

	fz_send(p, request, &m, sizeof(m), &p->f->region[i].fd, request == VU_REQ_ADD_MEM_REG);
}

static void op_remap(struct fz_port *p, struct fz_input *in)
{
	unsigned kind = fz_u8(in) % FZ_REMAP_COUNT, i = fz_u8(in) & 1;
	uint64_t size = p->f->region[1].size;

	switch (kind) {
	case FZ_REMAP_SAME:
		send_mem_table(p);
		break;
	case FZ_REMAP_GROW:
		if (size + GROW_STEP <= RAM1_MAX && ram1_resize(p, size + GROW_STEP) == 0)
			send_mem_table(p);
		break;
	case FZ_REMAP_MOVE:
		send_region(p, VU_REQ_REM_MEM_REG, i);
		send_region(p, VU_REQ_ADD_MEM_REG, i);
		p->present[i] = true;
		break;
	case FZ_REMAP_REMOVE:
		send_region(p, VU_REQ_REM_MEM_REG, i);
		p->present[i] = false;
		break;
	case FZ_REMAP_ADD:
		send_region(p, VU_REQ_ADD_MEM_REG, i);
		p->present[i] = true;
		break;
	case FZ_REMAP_SHRINK:
		/* The back-end keeps its mapping of the old size: touching the rest is SIGBUS,
		 * which must end only that session (proto/sigbus.c). */
		if (size > GROW_STEP)
			ram1_resize(p, size - GROW_STEP);
		break;
	}
}

static void op_start(struct fz_port *p, struct fz_input *in)
{
	unsigned q;
	struct vuf_vq *vq = queue_arg(p, in, &q);

	reset_ring_driver(vq, p->base[q]);
	start_ring(p, q, p->base[q]);
}

static void op_reset(struct fz_port *p, struct fz_input *in)
{
	switch (fz_u8(in) % 3) {
	case 0:
		fz_send(p, VU_REQ_RESET_DEVICE, NULL, 0, NULL, 0);
		break;
	case 1:
		send_u64(p, VU_REQ_SET_STATUS, 0);
		break;
	case 2:
		fz_send(p, VU_REQ_RESET_OWNER, NULL, 0, NULL, 0);
		break;
	}
}

static void op_reconnect(struct fz_port *p)
{
	disconnect_port(p);
	if (connect_port(p) == 0)
		setup_session(p, false);
}

static void op_inflight(struct fz_port *p, struct fz_input *in)
{
	size_t off = fz_u16(in);
	const uint8_t *data;
	size_t n = fz_bytes(in, fz_u8(in), &data);

	if (!p->inflight)
		return;
	off %= p->inflight_size;
	memcpy(p->inflight + off, data, n < p->inflight_size - off ? n : p->inflight_size - off);
}

static void op_config(struct fz_port *p, struct fz_input *in)
{
	bool write = fz_u8(in) & 1;
	struct vu_config c = { .offset = fz_u8(in), .size = fz_u8(in) };
	const uint8_t *data;
	size_t n = fz_bytes(in, write ? c.size : 0, &data);

	memcpy(c.payload, data, n);
	fz_send(p, write ? VU_REQ_SET_CONFIG : VU_REQ_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + c.size, NULL, 0);
}

/* An fd for a raw message: 0 an eventfd, 1 a new memfd, 2 and 3 guest RAM's regions. */
static int msg_fd(struct fz_port *p, unsigned kind)
{
	if (kind >= 2)
		return dup(p->f->region[kind - 2].fd);
	if (kind == 0)
		return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int fd = memfd_create("fuzz-msg", MFD_CLOEXEC);
	if (fd >= 0 && ftruncate(fd, RAM0_SIZE) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void op_msg(struct fz_port *p, struct fz_input *in)
{
	uint32_t request = fz_u8(in) % VU_REQ_MAX; /* unknown ones are fuzz-session's */
	uint32_t flags = (fz_u8(in) & ~VU_FLAG_VERSION_MASK) | VU_FLAG_VERSION;
	unsigned code = fz_u8(in);
	const uint8_t *payload;
	uint32_t len = (uint32_t)fz_bytes(in, fz_u16(in) % (sizeof(union vu_payload) + 1), &payload);
	int fds[3], nfds = code & 3;

	for (int i = 0; i < nfds; i++)
		fds[i] = msg_fd(p, (code >> (2 + 2 * i)) & 3);
	vu_msg_send(p->f->sock, request, flags, payload, len, fds, nfds);
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A migration's dirty log: given and turned on (in the features, by every ring), or off. */
static void op_log(struct fz_port *p, struct fz_input *in)
{
	bool on = fz_u8(in) & 1;
	uint64_t size = fz_u16(in);

	if (on) {
		if (!size)
			size = (VUF_RAM_BASE + RAM0_SIZE + RAM1_MAX) / VU_LOG_PAGE / 8;
		struct vu_log where = { .mmap_size = size };
		int fd = memfd_create("fuzz-log", MFD_CLOEXEC);
		if (fd >= 0 && ftruncate(fd, size) == 0)
			fz_send(p, VU_REQ_SET_LOG_BASE, &where, sizeof(where), &fd, 1);
		if (fd >= 0)
			close(fd);
	}
	p->logging = on;
	set_features(p);
	for (unsigned q = 0; q < p->h->nq; q++)
		send_ring_addr(p, q);
}

/* Saves what the device holds, or loads the input's bytes, as a migration does: rings stopped. */
static void op_state(struct fz_port *p, struct fz_input *in)
{
	bool load = fz_u8(in) & 1;
	const uint8_t *bytes;
	size_t n = load ? fz_bytes(in, fz_u16(in), &bytes) : 0;
	uint64_t direction = load ? VU_STATE_LOAD : VU_STATE_SAVE; /* phase 0 in the high half */
	int pfd[2];

	if (!(p->pf & (1ull << VU_PF_DEVICE_STATE)))
		return; /* the device holds nothing of its own to move */
	for (unsigned q = 0; q < p->h->nq; q++)
		send_state(p, VU_REQ_GET_VRING_BASE, q, 0);
	settle(p->h);
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) == 0) {
		/* A pipe holds 64 KiB: what is loaded fits, what is saved is read after. */
		if (load && n && write(pfd[1], bytes, n) < 0)
			n = 0;
		fz_send(p, VU_REQ_SET_DEVICE_STATE_FD, &direction, sizeof(direction), &pfd[load ? 0 : 1], 1);
		close(pfd[load ? 0 : 1]);
		if (load)
			close(pfd[1]);
		settle(p->h);
		char sink[4096];
		while (!load && read(pfd[0], sink, sizeof(sink)) > 0)
			;
		if (!load)
			close(pfd[0]);
		fz_send(p, VU_REQ_CHECK_DEVICE_STATE, NULL, 0, NULL, 0);
		settle(p->h);
	}
	for (unsigned q = 0; q < p->h->nq; q++) {
		reset_ring_driver(p->f->vq[q], p->base[q]);
		start_ring(p, q, p->base[q]);
	}
}

static bool port_alive(const struct fz *h)
{
	for (unsigned i = 0; i < h->t->nports; i++)
		if (h->ports[i].s)
			return true;
	return false;
}

static void run_op(struct fz *h, struct fz_input *in)
{
	struct fz_port *p = h->cur;
	uint8_t code = fz_u8(in);
	unsigned op = (code & ~FZ_OP_NO_SETTLE) % FZ_OP_COUNT, q;

	if (tracing)
		fprintf(stderr, "fuzz: port %u: operation %u\n", p->index, op);
	switch (op) {
	case FZ_OP_KICK: queue_arg(p, in, &q); kick(p, q); break;
	case FZ_OP_REQ: op_req(p, in); break;
	case FZ_OP_POKE: op_poke(p, in); break;
	case FZ_OP_RING_POKE: op_ring_poke(p, in); break;
	case FZ_OP_AVAIL: vuf_vq_push_avail(queue_arg(p, in, &q), fz_u16(in)); break;
	case FZ_OP_REMAP: op_remap(p, in); break;
	case FZ_OP_STOP: send_state(p, VU_REQ_GET_VRING_BASE, fz_u8(in) % h->nq, 0); break;
	case FZ_OP_START: op_start(p, in); break;
	case FZ_OP_RESET: op_reset(p, in); break;
	case FZ_OP_SETUP: start_driver(p, true); break;
	case FZ_OP_RECONNECT: op_reconnect(p); break;
	case FZ_OP_INFLIGHT: op_inflight(p, in); break;
	case FZ_OP_CONFIG: op_config(p, in); break;
	case FZ_OP_MSG: op_msg(p, in); break;
	case FZ_OP_WAIT: run_for(h, fz_u8(in) % 4 * 500); break;
	case FZ_OP_PORT: h->cur = &h->ports[fz_u8(in) % h->t->nports]; break;
	case FZ_OP_DEVICE:
		if (h->t->op)
			h->t->op(p, in);
		break;
	case FZ_OP_LOG: op_log(p, in); break;
	case FZ_OP_STATE: op_state(p, in); break;
	}
	if (!(code & FZ_OP_NO_SETTLE))
		settle(h);
}

/* ---- one input ---------------------------------------------------------------- */

/*
 * One loop for the whole process: every input leaves it as it found it (a watch a
 * device forgets makes the next input's fail to start). keep_device targets keep
 * the devices of the first input too.
 */
static struct vu_loop *loop;
static struct vu_dev *kept_dev[FZ_MAX_PORTS];

static struct vu_loop *process_loop(void)
{
	if (loop)
		return loop;
	loop = vu_loop_new();
	if (!loop)
		abort();
	/*
	 * Guest memory that shrinks under its mapping raises SIGBUS, which the back-end
	 * survives with its handler (any other SIGBUS still kills: a crash all the same).
	 */
	if (vu_sigbus_init(loop) < 0)
		abort();
	return loop;
}

int fz_run(const struct fz_target *t, const uint8_t *data, size_t size)
{
	static struct fz h;
	struct fz_input in = { data, size };
	const uint8_t *hp;

	fz_init_process();
	h = (struct fz){ .t = t };
	size_t n = fz_bytes(&in, sizeof(h.hdr), &hp);
	memcpy(&h.hdr, hp, n);
	h.num = 2u << (h.hdr.ring_log2 % 10);
	h.loop = process_loop();
	h.cur = &h.ports[0];
	bool ok = true;
	for (unsigned i = 0; i < t->nports && ok; i++)
		ok = port_init(&h, i, t->keep_device ? kept_dev[i] : NULL) == 0;
	if (ok)
		settle(&h);
	while (ok && in.n && port_alive(&h))
		run_op(&h, &in);
	for (unsigned i = 0; i < t->nports; i++) {
		if (t->keep_device && h.ports[i].dev)
			kept_dev[i] = h.ports[i].dev;
		port_free(&h.ports[i], t->keep_device);
	}
	return 0;
}
