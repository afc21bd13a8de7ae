/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vuf: a small vhost-user front-end for tests and benchmarks (see frontend.h).
 * Written from docs/interop/vhost-user.rst and the virtio 1.x split ring layout.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test/frontend.h"

#define REPLY_FLAGS (VU_FLAG_REPLY | VU_FLAG_VERSION)

int64_t vuf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int fail(struct vuf *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct vuf *f, int err, const char *fmt, ...)
{
	va_list ap;

	if (f) {
		va_start(ap, fmt);
		vsnprintf(f->error, sizeof(f->error), fmt, ap);
		va_end(ap);
	}
	return err;
}

const char *vuf_error(const struct vuf *f)
{
	return f ? f->error : "no connection";
}

static const char *errname(int err)
{
	switch (err) {
	case -ETIMEDOUT: return "timed out";
	case -EPIPE: return "connection closed by the back-end";
	case -EPROTO: return "protocol violation";
	case -EREMOTEIO: return "back-end acked failure";
	default: return strerror(-err);
	}
}

/* ---- connection ---------------------------------------------------------- */

struct vuf *vuf_connect(const char *socket_path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = vuf_now_ms() + timeout_ms;

	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return NULL;
	strcpy(sa.sun_path, socket_path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return NULL;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			struct vuf *f = calloc(1, sizeof(*f));
			if (!f) {
				close(fd);
				return NULL;
			}
			f->sock = fd;
			f->backend_sock = -1;
			f->timeout_ms = VUF_DEFAULT_TIMEOUT_MS;
			return f;
		}
		int err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED && err != EAGAIN) || vuf_now_ms() >= deadline)
			return NULL;
		sleep_us(5000);
	}
}

void vuf_close(struct vuf *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < VUF_MAX_QUEUES; i++)
		vuf_vq_free(f->vq[i]);
	if (f->sock >= 0)
		close(f->sock);
	if (f->backend_sock >= 0)
		close(f->backend_sock);
	for (unsigned i = 0; i < f->nregions; i++) {
		munmap(f->region[i].host, f->region[i].size);
		close(f->region[i].fd);
	}
	free(f);
}

/* ---- guest RAM ------------------------------------------------------------ */

int vuf_mem_init(struct vuf *f, unsigned n, uint64_t size, uint64_t hole)
{
	long page = sysconf(_SC_PAGESIZE);

	if (f->nregions || n == 0 || n > VUF_MAX_REGIONS || size == 0 || size % page || hole % page)
		return fail(f, -EINVAL, "vuf_mem_init: bad layout");
	for (unsigned i = 0; i < n; i++) {
		struct vuf_region *r = &f->region[i];
		r->fd = memfd_create("vuf-guest-ram", MFD_CLOEXEC);
		if (r->fd < 0 || ftruncate(r->fd, size) < 0)
			return fail(f, -errno, "memfd: %s", strerror(errno));
		r->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
		if (r->host == MAP_FAILED) {
			close(r->fd);
			return fail(f, -errno, "mmap: %s", strerror(errno));
		}
		r->gpa = VUF_RAM_BASE + i * (size + hole);
		r->size = size;
		r->offset = 0;
		r->next = 0;
		f->nregions++;
	}
	return 0;
}

int vuf_mem_init_one_fd(struct vuf *f, unsigned n, uint64_t size, uint64_t hole, uint64_t first_offset)
{
	long page = sysconf(_SC_PAGESIZE);

	if (f->nregions || n == 0 || n > VUF_MAX_REGIONS || size == 0 || size % page || hole % page ||
	    first_offset % page)
		return fail(f, -EINVAL, "vuf_mem_init_one_fd: bad layout");
	int fd = memfd_create("vuf-guest-ram", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, first_offset + n * size) < 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		return fail(f, -err, "memfd: %s", strerror(err));
	}
	for (unsigned i = 0; i < n; i++) {
		struct vuf_region *r = &f->region[i];
		r->offset = first_offset + i * size;
		r->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, r->offset);
		r->fd = r->host == MAP_FAILED ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (r->fd < 0) {
			int err = errno;
			if (r->host != MAP_FAILED)
				munmap(r->host, size);
			close(fd);
			return fail(f, -err, "mapping region %u: %s", i, strerror(err));
		}
		r->gpa = VUF_RAM_BASE + i * (size + hole);
		r->size = size;
		r->next = 0;
		f->nregions++;
	}
	close(fd);
	return 0;
}

static struct vuf_region *region_of(struct vuf *f, uint64_t gpa)
{
	for (unsigned i = 0; i < f->nregions; i++) {
		struct vuf_region *r = &f->region[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *vuf_gpa(struct vuf *f, uint64_t gpa, uint64_t len)
{
	struct vuf_region *r = region_of(f, gpa);

	if (!r || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

static int gpa_copy(struct vuf *f, uint64_t gpa, void *buf, uint64_t len, bool to_guest)
{
	uint8_t *p = buf;

	while (len) {
		struct vuf_region *r = region_of(f, gpa);
		if (!r)
			return -EFAULT;
		uint64_t off = gpa - r->gpa;
		uint64_t chunk = r->size - off < len ? r->size - off : len;
		if (to_guest)
			memcpy(r->host + off, p, chunk);
		else
			memcpy(p, r->host + off, chunk);
		p += chunk;
		gpa += chunk;
		len -= chunk;
	}
	return 0;
}

int vuf_gpa_write(struct vuf *f, uint64_t gpa, const void *buf, uint64_t len)
{
	return gpa_copy(f, gpa, (void *)buf, len, true);
}

int vuf_gpa_read(struct vuf *f, uint64_t gpa, void *buf, uint64_t len)
{
	return gpa_copy(f, gpa, buf, len, false);
}

uint64_t vuf_alloc(struct vuf *f, uint64_t size, uint64_t align)
{
	if (align == 0)
		align = 1;
	for (unsigned i = 0; i < f->nregions; i++) {
		struct vuf_region *r = &f->region[i];
		uint64_t gpa = (r->gpa + r->next + align - 1) / align * align;
		if (gpa - r->gpa <= r->size && size <= r->size - (gpa - r->gpa)) {
			r->next = gpa - r->gpa + size;
			return gpa;
		}
	}
	fail(f, 0, "vuf_alloc: guest RAM full");
	return 0;
}

struct vu_mem_region vuf_region_desc(const struct vuf *f, unsigned i)
{
	const struct vuf_region *r = &f->region[i];

	return (struct vu_mem_region){ .guest_phys_addr = r->gpa, .memory_size = r->size,
				       .userspace_addr = (uintptr_t)r->host,
				       .mmap_offset = r->offset };
}

/* ---- raw messaging -------------------------------------------------------- */

int vuf_sendmsg(int sock, struct iovec *iov, int niov, const int *fds, int nfds)
{
	union {
		char buf[CMSG_SPACE(16 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = niov };
	size_t total = 0;

	if (nfds < 0 || nfds > 16)
		return -EINVAL;
	for (int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	/* Unix stream sockets take a small message whole; loop for the odd partial send. */
	while (total) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;
		total -= n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (n > 0 && mh.msg_iovlen) {
			if ((size_t)n >= mh.msg_iov->iov_len) {
				n -= mh.msg_iov->iov_len;
				mh.msg_iov++;
				mh.msg_iovlen--;
			} else {
				mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
				mh.msg_iov->iov_len -= n;
				n = 0;
			}
		}
	}
	return 0;
}

int vuf_send(struct vuf *f, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, int nfds)
{
	struct vu_hdr hdr = { .request = request, .flags = flags, .size = size };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, size } };
	int r = vuf_sendmsg(f->sock, iov, size ? 2 : 1, fds, nfds);

	return r < 0 ? fail(f, r, "sending request %u: %s", request, errname(r)) : 0;
}

int vuf_send_bytes(struct vuf *f, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { (void *)buf, len };
	int r = vuf_sendmsg(f->sock, &iov, 1, fds, nfds);

	return r < 0 ? fail(f, r, "sending raw bytes: %s", errname(r)) : 0;
}

/* Reads exactly len bytes before deadline; fds that come along are closed. */
static int read_exact(int sock, void *buf, size_t len, int64_t deadline)
{
	char *p = buf;

	while (len) {
		int64_t left = deadline - vuf_now_ms();
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		if (left < 0)
			left = 0;
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		if (pr == 0)
			return -ETIMEDOUT;

		union {
			char buf[CMSG_SPACE(16 * sizeof(int))];
			struct cmsghdr align;
		} control;
		struct iovec iov = { p, len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf) };
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -EPIPE : -errno;
		if (n == 0)
			return -EPIPE;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nf; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
				close(fd);
			}
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int recv_msg(int sock, struct vu_hdr *hdr, void *payload, size_t max, int timeout_ms)
{
	int64_t deadline = vuf_now_ms() + timeout_ms;
	int r = read_exact(sock, hdr, sizeof(*hdr), deadline);

	if (r < 0)
		return r;
	if (hdr->size <= max)
		return (r = read_exact(sock, payload, hdr->size, deadline)) < 0 ? r : (int)hdr->size;
	/* Too big for the caller: keep the stream in step, then say so. */
	char scratch[4096];
	for (uint32_t left = hdr->size; left;) {
		uint32_t chunk = left < sizeof(scratch) ? left : sizeof(scratch);
		if ((r = read_exact(sock, scratch, chunk, deadline)) < 0)
			return r;
		left -= chunk;
	}
	return -EMSGSIZE;
}

int vuf_recv(struct vuf *f, struct vu_hdr *hdr, void *payload, size_t max, int timeout_ms)
{
	int r = recv_msg(f->sock, hdr, payload, max, timeout_ms);

	return r < 0 ? fail(f, r, "receiving: %s", errname(r)) : r;
}

int vuf_wait_closed(struct vuf *f, int timeout_ms)
{
	int64_t deadline = vuf_now_ms() + timeout_ms;
	char scratch[4096];

	for (;;) {
		int64_t left = deadline - vuf_now_ms();
		struct pollfd pfd = { .fd = f->sock, .events = POLLIN | POLLRDHUP };
		if (left < 0)
			return 0;
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return 0;
		/* Whatever arrives before the end is read and dropped. */
		ssize_t n = recv(f->sock, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
	}
}

static int check_reply(struct vuf *f, const struct vu_hdr *hdr, uint32_t request, uint32_t size)
{
	if (hdr->request != request)
		return fail(f, -EPROTO, "reply for request %u to request %u", hdr->request, request);
	if (hdr->flags != REPLY_FLAGS)
		return fail(f, -EPROTO, "reply to request %u has flags 0x%x, not 0x5", request, hdr->flags);
	if (hdr->size != size)
		return fail(f, -EPROTO, "reply to request %u has size %u, not %u", request, hdr->size, size);
	return 0;
}

int vuf_call(struct vuf *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
	     int nfds, void *reply, uint32_t reply_size)
{
	union vu_payload p;
	struct vu_hdr hdr;
	int r = vuf_send(f, request, VU_FLAG_VERSION, payload, size, fds, nfds);

	if (r < 0)
		return r;
	r = vuf_recv(f, &hdr, &p, sizeof(p), f->timeout_ms);
	if (r == -EMSGSIZE)
		return fail(f, -EPROTO, "reply to request %u is bigger than any payload", request);
	if (r < 0)
		return fail(f, r, "waiting for the reply to request %u: %s", request, errname(r));
	if ((r = check_reply(f, &hdr, request, reply_size)) < 0)
		return r;
	memcpy(reply, &p, reply_size);
	return 0;
}

int vuf_send_ack(struct vuf *f, uint32_t request, const void *payload, uint32_t size,
		 const int *fds, int nfds, uint64_t *ack)
{
	union vu_payload p;
	struct vu_hdr hdr;
	int r = vuf_send(f, request, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, payload, size, fds, nfds);

	if (r < 0)
		return r;
	r = vuf_recv(f, &hdr, &p, sizeof(p), f->timeout_ms);
	if (r == -EMSGSIZE)
		return fail(f, -EPROTO, "ack to request %u is bigger than any payload", request);
	if (r < 0)
		return fail(f, r, "waiting for the ack to request %u: %s", request, errname(r));
	if ((r = check_reply(f, &hdr, request, sizeof(uint64_t))) < 0)
		return r;
	*ack = p.u64;
	return 0;
}

int vuf_request(struct vuf *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
		int nfds)
{
	uint64_t ack;

	if (!f->need_reply)
		return vuf_send(f, request, VU_FLAG_VERSION, payload, size, fds, nfds);
	int r = vuf_send_ack(f, request, payload, size, fds, nfds, &ack);
	if (r < 0)
		return r;
	if (ack)
		return fail(f, -EREMOTEIO, "request %u acked with %llu", request, (unsigned long long)ack);
	return 0;
}

int vuf_ping(struct vuf *f)
{
	uint64_t v;

	return vuf_get_features(f, &v);
}

/* ---- one call per request ------------------------------------------------- */

static int get_u64(struct vuf *f, uint32_t request, uint64_t *v)
{
	return vuf_call(f, request, NULL, 0, NULL, 0, v, sizeof(*v));
}

static int set_u64(struct vuf *f, uint32_t request, uint64_t v)
{
	return vuf_request(f, request, &v, sizeof(v), NULL, 0);
}

static int set_state(struct vuf *f, uint32_t request, unsigned index, unsigned num)
{
	struct vu_vring_state st = { .index = index, .num = num };

	return vuf_request(f, request, &st, sizeof(st), NULL, 0);
}

int vuf_get_features(struct vuf *f, uint64_t *features)
{
	return get_u64(f, VU_REQ_GET_FEATURES, features);
}

int vuf_set_features(struct vuf *f, uint64_t features)
{
	int r = set_u64(f, VU_REQ_SET_FEATURES, features);

	if (!r)
		f->features = features;
	return r;
}

int vuf_get_protocol_features(struct vuf *f, uint64_t *pf)
{
	return get_u64(f, VU_REQ_GET_PROTOCOL_FEATURES, pf);
}

int vuf_set_protocol_features(struct vuf *f, uint64_t pf)
{
	int r = set_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, pf);

	if (!r) {
		f->protocol_features = pf;
		f->need_reply = pf & (1ull << VU_PF_REPLY_ACK);
	}
	return r;
}

int vuf_set_owner(struct vuf *f)
{
	return vuf_request(f, VU_REQ_SET_OWNER, NULL, 0, NULL, 0);
}

int vuf_reset_owner(struct vuf *f)
{
	return vuf_request(f, VU_REQ_RESET_OWNER, NULL, 0, NULL, 0);
}

int vuf_set_mem_table(struct vuf *f)
{
	struct vu_mem_table t = { .nregions = f->nregions };
	int fds[VUF_MAX_REGIONS];

	for (unsigned i = 0; i < f->nregions; i++) {
		t.regions[i] = vuf_region_desc(f, i);
		fds[i] = f->region[i].fd;
	}
	return vuf_request(f, VU_REQ_SET_MEM_TABLE, &t, 8 + f->nregions * sizeof(t.regions[0]), fds,
			   (int)f->nregions);
}

int vuf_add_mem_reg(struct vuf *f, unsigned region)
{
	struct vu_mem_single m = { .region = vuf_region_desc(f, region) };

	return vuf_request(f, VU_REQ_ADD_MEM_REG, &m, sizeof(m), &f->region[region].fd, 1);
}

int vuf_rem_mem_reg(struct vuf *f, unsigned region)
{
	struct vu_mem_single m = { .region = vuf_region_desc(f, region) };

	return vuf_request(f, VU_REQ_REM_MEM_REG, &m, sizeof(m), NULL, 0);
}

int vuf_set_vring_num(struct vuf *f, unsigned index, unsigned num)
{
	return set_state(f, VU_REQ_SET_VRING_NUM, index, num);
}

int vuf_set_vring_addr(struct vuf *f, unsigned index, uint64_t desc_uva, uint64_t avail_uva,
		       uint64_t used_uva)
{
	struct vu_vring_addr a = { .index = index, .desc_user_addr = desc_uva,
				   .avail_user_addr = avail_uva, .used_user_addr = used_uva };

	return vuf_request(f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
}

int vuf_set_vring_base(struct vuf *f, unsigned index, unsigned base)
{
	return set_state(f, VU_REQ_SET_VRING_BASE, index, base);
}

int vuf_get_vring_base(struct vuf *f, unsigned index, unsigned *base)
{
	struct vu_vring_state st = { .index = index }, reply;
	int r = vuf_call(f, VU_REQ_GET_VRING_BASE, &st, sizeof(st), NULL, 0, &reply, sizeof(reply));

	if (r < 0)
		return r;
	if (reply.index != index)
		return fail(f, -EPROTO, "GET_VRING_BASE reply for ring %u, not %u", reply.index, index);
	*base = reply.num;
	return 0;
}

static int set_vring_fd(struct vuf *f, uint32_t request, unsigned index, int fd)
{
	uint64_t v = index & VU_VRING_IDX_MASK;

	if (fd < 0)
		v |= VU_VRING_NOFD_MASK;
	return vuf_request(f, request, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

int vuf_set_vring_kick(struct vuf *f, unsigned index, int fd)
{
	return set_vring_fd(f, VU_REQ_SET_VRING_KICK, index, fd);
}

int vuf_set_vring_call(struct vuf *f, unsigned index, int fd)
{
	return set_vring_fd(f, VU_REQ_SET_VRING_CALL, index, fd);
}

int vuf_set_vring_err(struct vuf *f, unsigned index, int fd)
{
	return set_vring_fd(f, VU_REQ_SET_VRING_ERR, index, fd);
}

int vuf_set_vring_enable(struct vuf *f, unsigned index, bool enable)
{
	return set_state(f, VU_REQ_SET_VRING_ENABLE, index, enable);
}

int vuf_get_queue_num(struct vuf *f, uint64_t *n)
{
	return get_u64(f, VU_REQ_GET_QUEUE_NUM, n);
}

int vuf_get_max_mem_slots(struct vuf *f, uint64_t *n)
{
	return get_u64(f, VU_REQ_GET_MAX_MEM_SLOTS, n);
}

int vuf_get_config(struct vuf *f, uint32_t offset, uint32_t size, void *buf)
{
	struct vu_config c = { .offset = offset, .size = size };
	union vu_payload p;
	struct vu_hdr hdr;

	if (size > VU_MAX_CONFIG_SIZE)
		return fail(f, -EINVAL, "GET_CONFIG of more than 256 bytes");
	int r = vuf_send(f, VU_REQ_GET_CONFIG, VU_FLAG_VERSION, &c, VU_CONFIG_HDR_SIZE + size, NULL, 0);
	if (r < 0)
		return r;
	r = vuf_recv(f, &hdr, &p, sizeof(p), f->timeout_ms);
	if (r == -EMSGSIZE)
		return fail(f, -EPROTO, "GET_CONFIG reply bigger than any payload");
	if (r < 0)
		return r;
	if (hdr.size != 0 && (r = check_reply(f, &hdr, VU_REQ_GET_CONFIG, VU_CONFIG_HDR_SIZE + size)) < 0)
		return r;
	if (hdr.size == 0 && (r = check_reply(f, &hdr, VU_REQ_GET_CONFIG, 0)) < 0)
		return r;
	if (hdr.size)
		memcpy(buf, p.config.payload, size);
	return (int)hdr.size;
}

int vuf_set_config(struct vuf *f, uint32_t offset, uint32_t size, const void *buf)
{
	struct vu_config c = { .offset = offset, .size = size };

	if (size > VU_MAX_CONFIG_SIZE)
		return fail(f, -EINVAL, "SET_CONFIG of more than 256 bytes");
	memcpy(c.payload, buf, size);
	return vuf_request(f, VU_REQ_SET_CONFIG, &c, VU_CONFIG_HDR_SIZE + size, NULL, 0);
}

int vuf_set_status(struct vuf *f, uint8_t status)
{
	return set_u64(f, VU_REQ_SET_STATUS, status);
}

int vuf_get_status(struct vuf *f, uint64_t *status)
{
	return get_u64(f, VU_REQ_GET_STATUS, status);
}

int vuf_reset_device(struct vuf *f)
{
	return vuf_request(f, VU_REQ_RESET_DEVICE, NULL, 0, NULL, 0);
}

int64_t vuf_set_device_state_fd(struct vuf *f, uint32_t direction, int fd)
{
	uint64_t params = direction, reply; /* phase 0 in the high half */
	return vuf_call(f, VU_REQ_SET_DEVICE_STATE_FD, &params, sizeof(params), &fd, 1, &reply, sizeof(reply)) < 0 ?
		       -1 : (int64_t)reply;
}

int64_t vuf_check_device_state(struct vuf *f)
{
	uint64_t reply;
	return vuf_call(f, VU_REQ_CHECK_DEVICE_STATE, NULL, 0, NULL, 0, &reply, sizeof(reply)) < 0 ? -1 : (int64_t)reply;
}

int vuf_state_save(struct vuf *f, uint8_t **buf, size_t *len)
{
	size_t cap = 0;
	ssize_t n = 0;
	int p[2];

	*buf = NULL;
	*len = 0;
	if (pipe(p) < 0)
		return -1;
	int64_t r = vuf_set_device_state_fd(f, 0, p[1]);
	close(p[1]);
	if (r != 0x100) { /* 0x100: our fd is used, no other comes back */
		close(p[0]);
		return -1;
	}
	do { /* until the back-end closes its end */
		if (*len == cap) {
			uint8_t *b = realloc(*buf, cap = cap ? 2 * cap : 65536);
			if (!b) {
				n = -1;
				break;
			}
			*buf = b;
		}
		n = read(p[0], *buf + *len, cap - *len);
		*len += n > 0 ? (size_t)n : 0;
	} while (n > 0);
	close(p[0]);
	return n == 0 && vuf_check_device_state(f) == 0 ? 0 : -1;
}

int64_t vuf_state_load(struct vuf *f, const void *buf, size_t len, bool end)
{
	int p[2];

	if (pipe(p) < 0)
		return -1;
	int64_t r = vuf_set_device_state_fd(f, 1, p[0]);
	close(p[0]);
	/* The back-end reads as it goes: written in pieces the pipe takes. */
	for (size_t done = 0; r == 0x100 && done < len;) {
		ssize_t n = write(p[1], (const uint8_t *)buf + done, len - done);
		if (n <= 0)
			r = -1;
		done += n > 0 ? (size_t)n : 0;
	}
	if (end)
		close(p[1]);
	int64_t check = r == 0x100 ? vuf_check_device_state(f) : -1;
	if (!end)
		close(p[1]);
	return check;
}

int vuf_set_backend_req_fd(struct vuf *f)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(f, -errno, "socketpair: %s", strerror(errno));
	int r = vuf_request(f, VU_REQ_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	if (f->backend_sock >= 0)
		close(f->backend_sock);
	f->backend_sock = sv[0];
	return 0;
}

int vuf_vring_kick(struct vuf *f, unsigned index)
{
	return set_state(f, VU_REQ_VRING_KICK, index, 0);
}

int vuf_backend_recv(struct vuf *f, struct vu_hdr *hdr, void *payload, size_t max, int timeout_ms)
{
	if (f->backend_sock < 0)
		return fail(f, -EBADF, "no back-end channel");
	int r = recv_msg(f->backend_sock, hdr, payload, max, timeout_ms);
	if (r < 0 && r != -EMSGSIZE)
		return fail(f, r, "back-end channel: %s", errname(r));
	if (hdr->flags & VU_FLAG_NEED_REPLY) {
		uint64_t ok = 0;
		struct vu_hdr rh = { .request = hdr->request, .flags = REPLY_FLAGS, .size = sizeof(ok) };
		struct iovec iov[2] = { { &rh, sizeof(rh) }, { &ok, sizeof(ok) } };
		int s = vuf_sendmsg(f->backend_sock, iov, 2, NULL, 0);
		if (s < 0)
			return fail(f, s, "acking a back-end request: %s", errname(s));
	}
	return r;
}

int vuf_negotiate(struct vuf *f, uint64_t features, uint64_t protocol_features)
{
	uint64_t offered;
	int r;

	if ((r = vuf_get_features(f, &offered)) < 0)
		return r;
	f->offered_features = offered;
	features &= offered;
	if (features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
		uint64_t pf;
		if ((r = vuf_get_protocol_features(f, &pf)) < 0)
			return r;
		f->offered_protocol_features = pf;
		if ((r = vuf_set_protocol_features(f, pf & protocol_features)) < 0)
			return r;
	}
	if ((r = vuf_set_owner(f)) < 0)
		return r;
	if ((f->protocol_features & (1ull << VU_PF_BACKEND_REQ)) && (r = vuf_set_backend_req_fd(f)) < 0)
		return r;
	if ((r = vuf_set_features(f, features)) < 0)
		return r;
	if (f->nregions && (r = vuf_set_mem_table(f)) < 0)
		return r;
	return 0;
}

/* ---- virtqueue driver: split, or packed -------------------------------- */

static uint16_t *used_event_of(struct vuf_vq *vq)
{
	return &vq->avail->ring[vq->num];
}

static uint16_t *avail_event_of(const struct vuf_vq *vq)
{
	return (uint16_t *)&vq->used->ring[vq->num];
}

/* The used event that asks for a call at the next used buffer (packed: position and wrap). */
static uint16_t next_used_event(const struct vuf_vq *vq)
{
	if (vq->packed)
		return (uint16_t)(vq->next_used | (vq->used_wrap ? VRING_PACKED_EVENT_WRAP : 0));
	return vq->last_used;
}

void vuf_vq_reset_driver(struct vuf_vq *vq)
{
	for (unsigned i = 0; i < vq->num; i++) {
		vq->link[i] = (uint16_t)(i + 1);
		vq->chain_len[i] = 0;
	}
	vq->free_head = 0;
	vq->num_free = vq->num;
}

struct vuf_vq *vuf_vq_alloc(struct vuf *f, unsigned index, unsigned num)
{
	if (index >= VUF_MAX_QUEUES || f->vq[index] || num == 0 || num > VU_VRING_MAX_SIZE) {
		fail(f, 0, "vuf_vq_alloc: bad queue %u / size %u", index, num);
		return NULL;
	}
	struct vuf_vq *vq = calloc(1, sizeof(*vq));
	if (!vq)
		return NULL;
	vq->f = f;
	vq->index = index;
	vq->num = (uint16_t)num; /* 32768 fits */
	vq->kick_fd = vq->call_fd = vq->err_fd = -1;
	vq->packed = f->features & (1ull << VIRTIO_F_RING_PACKED);
	vq->desc_gpa = vuf_alloc(f, 16ull * num, 4096);
	/* Packed: the driver and device areas (event suppression), 4 bytes each. */
	vq->avail_gpa = vuf_alloc(f, vq->packed ? 4 : 6 + 2ull * num, 64);
	vq->used_gpa = vuf_alloc(f, vq->packed ? 4 : 6 + 8ull * num, vq->packed ? 64 : 4096);
	vq->link = calloc(num, sizeof(*vq->link));
	vq->chain_len = calloc(num, sizeof(*vq->chain_len));
	vq->indirect_gpa = calloc(num, sizeof(*vq->indirect_gpa));
	if (!vq->desc_gpa || !vq->avail_gpa || !vq->used_gpa || !vq->link || !vq->chain_len ||
	    !vq->indirect_gpa) {
		fail(f, 0, "vuf_vq_alloc: out of guest RAM or memory");
		free(vq->link);
		free(vq->chain_len);
		free(vq->indirect_gpa);
		free(vq);
		return NULL;
	}
	if (vq->packed) {
		vq->pdesc = vuf_gpa(f, vq->desc_gpa, 16ull * num);
		vq->driver_event = vuf_gpa(f, vq->avail_gpa, 4);
		vq->device_event = vuf_gpa(f, vq->used_gpa, 4);
		vq->avail_wrap = vq->used_wrap = true;
	} else {
		vq->desc = vuf_gpa(f, vq->desc_gpa, 16ull * num);
		vq->avail = vuf_gpa(f, vq->avail_gpa, 6 + 2ull * num);
		vq->used = vuf_gpa(f, vq->used_gpa, 6 + 8ull * num);
	}
	vuf_vq_reset_driver(vq);
	f->vq[index] = vq;
	return vq;
}

static int new_eventfd(struct vuf *f, int *fd)
{
	if (*fd < 0)
		*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? fail(f, -errno, "eventfd: %s", strerror(errno)) : 0;
}

int vuf_vq_start(struct vuf_vq *vq, uint16_t base, unsigned flags)
{
	struct vuf *f = vq->f;
	int r;

	vq->event_idx = f->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	uint32_t ring_base = base;
	if (vq->packed) {
		ring_base = VU_PACKED_BASE(vq->next_used, vq->used_wrap, vq->next_used, vq->used_wrap);
		if (vq->event_idx && !vq->manual_used_event)
			vuf_vq_set_used_event(vq, next_used_event(vq));
	} else {
		__atomic_store_n(&vq->avail->idx, base, __ATOMIC_RELEASE);
		__atomic_store_n(&vq->used->idx, base, __ATOMIC_RELEASE);
		vq->avail_idx = base;
		vq->last_used = base;
		*used_event_of(vq) = base;
	}

	if (!(flags & VUF_VQ_CALL_NOFD) && (r = new_eventfd(f, &vq->call_fd)) < 0)
		return r;
	if (!(flags & VUF_VQ_NO_ERR) && (r = new_eventfd(f, &vq->err_fd)) < 0)
		return r;
	if (!(flags & (VUF_VQ_KICK_NOFD | VUF_VQ_NO_KICK)) && (r = new_eventfd(f, &vq->kick_fd)) < 0)
		return r;
	if ((r = vuf_set_vring_num(f, vq->index, vq->num)) < 0 ||
	    (r = vuf_set_vring_base(f, vq->index, ring_base)) < 0 ||
	    (r = vuf_set_vring_addr(f, vq->index, (uintptr_t)vuf_gpa(f, vq->desc_gpa, 1),
				    (uintptr_t)vuf_gpa(f, vq->avail_gpa, 1),
				    (uintptr_t)vuf_gpa(f, vq->used_gpa, 1))) < 0)
		return r;
	if (!(flags & VUF_VQ_NO_ERR) && (r = vuf_set_vring_err(f, vq->index, vq->err_fd)) < 0)
		return r;
	if ((r = vuf_set_vring_call(f, vq->index, vq->call_fd)) < 0)
		return r;
	if (!(flags & VUF_VQ_NO_KICK) && (r = vuf_set_vring_kick(f, vq->index, vq->kick_fd)) < 0)
		return r;
	if ((f->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) && !(flags & VUF_VQ_NO_ENABLE) &&
	    (r = vuf_set_vring_enable(f, vq->index, true)) < 0)
		return r;
	return 0;
}

struct vuf_vq *vuf_vq_setup(struct vuf *f, unsigned index, unsigned num, unsigned flags)
{
	struct vuf_vq *vq = vuf_vq_alloc(f, index, num);

	if (vq && vuf_vq_start(vq, 0, flags) < 0) {
		vuf_vq_free(vq);
		return NULL;
	}
	return vq;
}

void vuf_vq_free(struct vuf_vq *vq)
{
	if (!vq)
		return;
	if (vq->kick_fd >= 0)
		close(vq->kick_fd);
	if (vq->call_fd >= 0)
		close(vq->call_fd);
	if (vq->err_fd >= 0)
		close(vq->err_fd);
	if (vq->f->vq[vq->index] == vq)
		vq->f->vq[vq->index] = NULL;
	free(vq->link);
	free(vq->chain_len);
	free(vq->indirect_gpa);
	free(vq);
}

void vuf_vq_write_desc(struct vuf_vq *vq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		       uint16_t next)
{
	struct vring_desc *d = &vq->desc[i % vq->num];

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

void vuf_vq_push_avail(struct vuf_vq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx % vq->num] = head;
	vq->avail_idx++;
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

void vuf_vq_set_avail_idx(struct vuf_vq *vq, uint16_t idx)
{
	vq->avail_idx = idx;
	__atomic_store_n(&vq->avail->idx, idx, __ATOMIC_RELEASE);
}

/* The flags that make a packed descriptor available in the lap of wrap counter wrap. */
static uint16_t avail_flags(bool wrap)
{
	return wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

/* A packed ring: buffer id from the free list, descriptors at next_avail, the head's flags last. */
static int add_packed(struct vuf_vq *vq, const struct vuf_buf *out, unsigned nout, const struct vuf_buf *in,
		      unsigned nin, bool indirect)
{
	struct vuf *f = vq->f;
	unsigned total = nout + nin, ndesc = indirect ? 1 : total;

	if ((indirect && total > VUF_INDIRECT_MAX) || ndesc > vq->num_free)
		return fail(f, -ENOSPC, "vuf_vq_add: %u descriptors wanted, %u free", ndesc, vq->num_free);
	uint16_t id = vq->free_head;
	struct vring_packed_desc one = { 0 };
	const struct vuf_buf *b;
	if (indirect) {
		if (!vq->indirect_gpa[id] && !(vq->indirect_gpa[id] = vuf_alloc(f, 16 * VUF_INDIRECT_MAX, 16)))
			return fail(f, -ENOMEM, "vuf_vq_add: no guest RAM for an indirect table");
		struct vring_packed_desc *t = vuf_gpa(f, vq->indirect_gpa[id], 16 * VUF_INDIRECT_MAX);
		for (unsigned i = 0; i < total; i++) {
			b = i < nout ? &out[i] : &in[i - nout];
			t[i] = (struct vring_packed_desc){ .addr = b->gpa, .len = b->len,
							   .flags = i < nout ? 0 : VRING_DESC_F_WRITE };
		}
		one = (struct vring_packed_desc){ .addr = vq->indirect_gpa[id], .len = 16 * total,
						  .flags = VRING_DESC_F_INDIRECT };
	}
	vq->free_head = vq->link[id];
	uint16_t head = vq->next_avail, head_flags = 0;
	for (unsigned k = 0; k < ndesc; k++) {
		struct vring_packed_desc *d = &vq->pdesc[vq->next_avail];
		if (!indirect) {
			b = k < nout ? &out[k] : &in[k - nout];
			one = (struct vring_packed_desc){ .addr = b->gpa, .len = b->len,
							  .flags = k < nout ? 0 : VRING_DESC_F_WRITE };
		}
		uint16_t flags = one.flags | (k + 1 < ndesc ? VRING_DESC_F_NEXT : 0) | avail_flags(vq->avail_wrap);
		d->addr = one.addr;
		d->len = one.len;
		d->id = id;
		if (k == 0)
			head_flags = flags;
		else
			d->flags = flags;
		if (++vq->next_avail == vq->num) {
			vq->next_avail = 0;
			vq->avail_wrap = !vq->avail_wrap;
		}
	}
	vq->chain_len[id] = (uint16_t)ndesc;
	vq->num_free -= ndesc;
	vq->avail_idx += ndesc;
	__atomic_store_n(&vq->pdesc[head].flags, head_flags, __ATOMIC_RELEASE);
	return id;
}

int vuf_vq_add(struct vuf_vq *vq, const struct vuf_buf *out, unsigned nout,
	       const struct vuf_buf *in, unsigned nin, bool indirect)
{
	struct vuf *f = vq->f;
	unsigned total = nout + nin;

	if (total == 0)
		return fail(f, -EINVAL, "vuf_vq_add: empty request");
	if (vq->packed)
		return add_packed(vq, out, nout, in, nin, indirect);
	if (indirect) {
		if (total > VUF_INDIRECT_MAX || vq->num_free < 1)
			return fail(f, -ENOSPC, "vuf_vq_add: no room");
		uint16_t head = vq->free_head;
		if (!vq->indirect_gpa[head] &&
		    !(vq->indirect_gpa[head] = vuf_alloc(f, 16 * VUF_INDIRECT_MAX, 16)))
			return fail(f, -ENOMEM, "vuf_vq_add: no guest RAM for an indirect table");
		struct vring_desc *t = vuf_gpa(f, vq->indirect_gpa[head], 16 * VUF_INDIRECT_MAX);
		for (unsigned i = 0; i < total; i++) {
			const struct vuf_buf *b = i < nout ? &out[i] : &in[i - nout];
			t[i] = (struct vring_desc){ .addr = b->gpa, .len = b->len,
						    .flags = (i < nout ? 0 : VRING_DESC_F_WRITE) |
							     (i + 1 < total ? VRING_DESC_F_NEXT : 0),
						    .next = (uint16_t)(i + 1 < total ? i + 1 : 0) };
		}
		vq->free_head = vq->link[head];
		vq->num_free--;
		vq->chain_len[head] = 1;
		vuf_vq_write_desc(vq, head, vq->indirect_gpa[head], 16 * total, VRING_DESC_F_INDIRECT, 0);
		vuf_vq_push_avail(vq, head);
		return head;
	}
	if (total > vq->num_free)
		return fail(f, -ENOSPC, "vuf_vq_add: %u descriptors wanted, %u free", total, vq->num_free);
	uint16_t head = vq->free_head, i = head;
	for (unsigned k = 0; k < total; k++) {
		const struct vuf_buf *b = k < nout ? &out[k] : &in[k - nout];
		uint16_t next = vq->link[i];
		vuf_vq_write_desc(vq, i, b->gpa, b->len,
				  (k < nout ? 0 : VRING_DESC_F_WRITE) |
					  (k + 1 < total ? VRING_DESC_F_NEXT : 0),
				  k + 1 < total ? next : 0);
		if (k + 1 < total)
			i = next;
		else
			vq->free_head = next;
	}
	vq->num_free -= total;
	vq->chain_len[head] = (uint16_t)total;
	vuf_vq_push_avail(vq, head);
	return head;
}

/* Returns head's chain to the free list (the chain links are our own copy). */
static void free_chain(struct vuf_vq *vq, uint16_t head)
{
	uint16_t n = vq->chain_len[head], last = head;

	if (!n)
		return;
	for (uint16_t k = 1; k < n; k++)
		last = vq->link[last];
	vq->link[last] = vq->free_head;
	vq->free_head = head;
	vq->num_free += n;
	vq->chain_len[head] = 0;
}

int vuf_vq_kick(struct vuf_vq *vq)
{
	uint64_t one = 1;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->kick_fd >= 0)
		return write(vq->kick_fd, &one, sizeof(one)) == sizeof(one) ? 0 :
			fail(vq->f, -errno, "kick: %s", strerror(errno));
	if (vq->f->protocol_features & (1ull << VU_PF_INBAND_NOTIFICATIONS))
		return vuf_vring_kick(vq->f, vq->index);
	return 0; /* NOFD without in-band kicks: the back-end polls */
}

bool vuf_vq_kick_needed(const struct vuf_vq *vq, uint16_t old_avail)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->packed)
		return __atomic_load_n(&vq->device_event->flags, __ATOMIC_RELAXED) != VRING_PACKED_EVENT_DISABLE;
	if (vq->event_idx) {
		uint16_t event = __atomic_load_n(avail_event_of(vq), __ATOMIC_RELAXED);
		return (uint16_t)(vq->avail_idx - event - 1) < (uint16_t)(vq->avail_idx - old_avail);
	}
	return !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
}

/* Packed: the descriptor at next_used is a used one of the device's current lap. */
static bool packed_used(const struct vuf_vq *vq)
{
	uint16_t f = __atomic_load_n(&vq->pdesc[vq->next_used].flags, __ATOMIC_ACQUIRE);

	return !(f & VRING_PACKED_DESC_F_USED) == !vq->used_wrap && !(f & VRING_PACKED_DESC_F_AVAIL) == !vq->used_wrap;
}

/* Packed: takes the used descriptor at next_used, frees its id and skips its chain. */
static void take_packed(struct vuf_vq *vq, uint32_t *id, uint32_t *len)
{
	const struct vring_packed_desc *d = &vq->pdesc[vq->next_used];
	uint16_t eid = d->id;
	unsigned skip = eid < vq->num && vq->chain_len[eid] ? vq->chain_len[eid] : 1;

	*id = eid;
	*len = d->len;
	if (eid < vq->num && vq->chain_len[eid]) {
		vq->num_free += vq->chain_len[eid];
		vq->chain_len[eid] = 0;
		vq->link[eid] = vq->free_head;
		vq->free_head = eid;
	}
	vq->next_used += skip;
	if (vq->next_used >= vq->num) {
		vq->next_used -= vq->num;
		vq->used_wrap = !vq->used_wrap;
	}
	vq->last_used++;
	if (vq->event_idx && !vq->manual_used_event)
		vuf_vq_set_used_event(vq, next_used_event(vq));
}

uint16_t vuf_vq_used_pending(const struct vuf_vq *vq)
{
	if (vq->packed)
		return packed_used(vq);
	return (uint16_t)(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) - vq->last_used);
}

int vuf_vq_wait_used(struct vuf_vq *vq, uint32_t *id, uint32_t *len, int timeout_ms)
{
	int64_t deadline = vuf_now_ms() + timeout_ms;

	for (unsigned spin = 0;; spin++) {
		if (vq->packed && packed_used(vq)) {
			uint32_t eid, elen;
			take_packed(vq, &eid, &elen);
			if (id)
				*id = eid;
			if (len)
				*len = elen;
			return 0;
		}
		if (!vq->packed && vuf_vq_used_pending(vq)) {
			const struct vring_used_elem *e = &vq->used->ring[vq->last_used % vq->num];
			uint32_t eid = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
			uint32_t elen = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
			vq->last_used++;
			if (eid < vq->num)
				free_chain(vq, (uint16_t)eid);
			if (vq->event_idx && !vq->manual_used_event)
				__atomic_store_n(used_event_of(vq), vq->last_used, __ATOMIC_RELEASE);
			if (id)
				*id = eid;
			if (len)
				*len = elen;
			return 0;
		}
		if (vuf_now_ms() >= deadline)
			return fail(vq->f, -ETIMEDOUT, "queue %u: no used element within %d ms",
				    vq->index, timeout_ms);
		if (spin > 200)
			sleep_us(spin > 2000 ? 1000 : 50);
	}
}

static int wait_eventfd(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (fd < 0)
		return -EBADF;
	int64_t deadline = vuf_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - vuf_now_ms();
		int pr = poll(&pfd, 1, left < 0 ? 0 : (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return 0;
		if (read(fd, &v, sizeof(v)) == sizeof(v))
			return 1;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

int vuf_vq_wait_call(struct vuf_vq *vq, int timeout_ms)
{
	return wait_eventfd(vq->call_fd, timeout_ms);
}

int vuf_vq_wait_err(struct vuf_vq *vq, int timeout_ms)
{
	return wait_eventfd(vq->err_fd, timeout_ms);
}

void vuf_vq_set_used_event(struct vuf_vq *vq, uint16_t idx)
{
	if (vq->packed) {
		__atomic_store_n(&vq->driver_event->off_wrap, idx, __ATOMIC_RELEASE);
		__atomic_store_n(&vq->driver_event->flags, VRING_PACKED_EVENT_DESC, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		return;
	}
	__atomic_store_n(used_event_of(vq), idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void vuf_vq_want_call_at_next(struct vuf_vq *vq)
{
	vq->manual_used_event = true;
	vuf_vq_set_used_event(vq, next_used_event(vq));
}

void vuf_vq_set_avail_flags(struct vuf_vq *vq, uint16_t flags)
{
	__atomic_store_n(vq->packed ? &vq->driver_event->flags : &vq->avail->flags, flags, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- the back-end process ------------------------------------------------ */

struct vuf_backend *vuf_backend_start(const char *personality, const char *const *extra_args,
				      const char *socket_path)
{
	const char *bin = getenv("VHOSTBOX");
	const char *log = getenv("VUF_BACKEND_LOG");
	char sockopt[160];
	const char *argv[64];
	int argc = 0;

	if (!bin || !*bin)
		bin = "./vhostbox";
	struct vuf_backend *b = calloc(1, sizeof(*b));
	if (!b || strlen(socket_path) >= sizeof(b->socket_path)) {
		free(b);
		return NULL;
	}
	strcpy(b->socket_path, socket_path);
	snprintf(sockopt, sizeof(sockopt), "--socket-path=%s", socket_path);
	argv[argc++] = bin;
	argv[argc++] = personality;
	argv[argc++] = sockopt;
	for (unsigned i = 0; extra_args && extra_args[i] && argc < 63; i++)
		argv[argc++] = extra_args[i];
	argv[argc] = NULL;
	unlink(socket_path);

	pid_t parent = getpid();
	b->pid = fork();
	if (b->pid < 0) {
		free(b);
		return NULL;
	}
	if (b->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (log && *log) {
			int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
			if (fd >= 0)
				dup2(fd, 2);
		}
		execv(bin, (char *const *)argv);
		fprintf(stderr, "vuf: cannot run %s: %s\n", bin, strerror(errno));
		_exit(127);
	}
	/* Ready when the socket exists; connecting retries over the bind-to-listen gap. */
	int64_t deadline = vuf_now_ms() + 5000;
	for (;;) {
		struct stat st;
		if (stat(socket_path, &st) == 0 && S_ISSOCK(st.st_mode))
			return b;
		if (!vuf_backend_alive(b) || vuf_now_ms() >= deadline) {
			vuf_backend_stop(b, 1000);
			return NULL;
		}
		sleep_us(2000);
	}
}

bool vuf_backend_alive(struct vuf_backend *b)
{
	if (!b)
		return false;
	if (b->reaped)
		return false;
	int status;
	pid_t r = waitpid(b->pid, &status, WNOHANG);
	if (r == b->pid) {
		b->reaped = true;
		b->status = status;
		return false;
	}
	return r == 0;
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int vuf_backend_stop(struct vuf_backend *b, int timeout_ms)
{
	int result;

	if (!b)
		return -EINVAL;
	if (vuf_backend_alive(b)) {
		kill(b->pid, SIGTERM);
		int64_t deadline = vuf_now_ms() + timeout_ms;
		while (vuf_backend_alive(b) && vuf_now_ms() < deadline)
			sleep_us(2000);
	}
	if (b->reaped) {
		result = exit_code(b->status);
	} else {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
		result = -ETIMEDOUT;
	}
	unlink(b->socket_path);
	free(b);
	return result;
}

int vuf_backend_fd_count(const struct vuf_backend *b)
{
	char path[64];
	int n = 0;

	if (!b || b->reaped)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)b->pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

long vuf_backend_rss_kb(const struct vuf_backend *b)
{
	char path[64], line[256];
	long kb = -1;

	if (!b || b->reaped)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)b->pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

int vuf_backend_wait_fd_count(const struct vuf_backend *b, int want, int timeout_ms)
{
	int64_t deadline = vuf_now_ms() + timeout_ms;
	int n;

	while ((n = vuf_backend_fd_count(b)) > want && vuf_now_ms() < deadline)
		sleep_us(2000);
	return n;
}
