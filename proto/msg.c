/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/msg.h"

/*
 * Payload rules per request id. size < 0 marks a rule checked in code
 * (variable-size payloads). fds_min..fds_max is what the request may carry.
 */
enum { VAR = -1 };
struct rule {
	const char *name;
	int size;
	unsigned char fds_min, fds_max;
	bool reply;
};

#define R(id, sz, fmin, fmax, rep) [VU_REQ_##id] = { #id, sz, fmin, fmax, rep }
static const struct rule rules[VU_REQ_MAX] = {
	R(GET_FEATURES, 0, 0, 0, true),
	R(SET_FEATURES, 8, 0, 0, false),
	R(SET_OWNER, 0, 0, 0, false),
	R(RESET_OWNER, 0, 0, 0, false),
	R(SET_MEM_TABLE, VAR, 1, VU_MEM_TABLE_MAX_REGIONS, false),
	R(SET_LOG_BASE, 16, 0, 1, false),
	R(SET_LOG_FD, 0, 1, 1, false),
	R(SET_VRING_NUM, 8, 0, 0, false),
	R(SET_VRING_ADDR, 40, 0, 0, false),
	R(SET_VRING_BASE, 8, 0, 0, false),
	R(GET_VRING_BASE, 8, 0, 0, true),
	R(SET_VRING_KICK, 8, 0, 1, false),
	R(SET_VRING_CALL, 8, 0, 1, false),
	R(SET_VRING_ERR, 8, 0, 1, false),
	R(GET_PROTOCOL_FEATURES, 0, 0, 0, true),
	R(SET_PROTOCOL_FEATURES, 8, 0, 0, false),
	R(GET_QUEUE_NUM, 0, 0, 0, true),
	R(SET_VRING_ENABLE, 8, 0, 0, false),
	R(SEND_RARP, 8, 0, 0, false),
	R(NET_SET_MTU, 8, 0, 0, false),
	R(SET_BACKEND_REQ_FD, 0, 1, 1, false),
	R(IOTLB_MSG, VAR, 0, 0, false),
	R(SET_VRING_ENDIAN, 8, 0, 0, false),
	R(GET_CONFIG, VAR, 0, 0, true),
	R(SET_CONFIG, VAR, 0, 0, false),
	R(CREATE_CRYPTO_SESSION, VAR, 0, 0, true),
	R(CLOSE_CRYPTO_SESSION, 8, 0, 0, false),
	R(POSTCOPY_ADVISE, 0, 0, 0, true),
	R(POSTCOPY_LISTEN, 0, 0, 0, false),
	R(POSTCOPY_END, 0, 0, 0, false),
	R(GET_INFLIGHT_FD, VAR, 0, 0, true),
	R(SET_INFLIGHT_FD, VAR, 1, 1, false),
	R(GPU_SET_SOCKET, 0, 1, 1, false),
	R(RESET_DEVICE, 0, 0, 0, false),
	R(VRING_KICK, 8, 0, 0, false),
	R(GET_MAX_MEM_SLOTS, 0, 0, 0, true),
	R(ADD_MEM_REG, 40, 1, 1, false),
	R(REM_MEM_REG, 40, 0, 1, false),
	R(SET_STATUS, 8, 0, 0, false),
	R(GET_STATUS, 0, 0, 0, true),
	R(GET_SHARED_OBJECT, 16, 0, 0, true),
	R(SET_DEVICE_STATE_FD, 8, 1, 1, true),
	R(CHECK_DEVICE_STATE, 0, 0, 0, true),
};
#undef R

static const struct rule *rule_of(uint32_t request)
{
	if (request < VU_REQ_MAX && rules[request].name)
		return &rules[request];
	return NULL;
}

const char *vu_msg_name(uint32_t request)
{
	const struct rule *r = rule_of(request);
	return r ? r->name : "UNKNOWN";
}

bool vu_msg_has_reply(uint32_t request)
{
	const struct rule *r = rule_of(request);
	return r && r->reply;
}

void vu_msg_close_fds(struct vu_msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

int vu_msg_take_fd(struct vu_msg *m, int i)
{
	if (i >= m->nfds)
		return -1;
	int fd = m->fds[i];
	m->fds[i] = -1;
	return fd;
}

/* Variable-size payloads: the size must match what the payload itself says. */
static const char *check_var_size(const struct vu_msg *m)
{
	uint32_t size = m->hdr.size;

	switch (m->hdr.request) {
	case VU_REQ_SET_MEM_TABLE:
		if (size < 8 || (size - 8) % sizeof(struct vu_mem_region))
			return "memory table size is not 8 + 32 * n";
		if (m->p.mem.nregions == 0 || m->p.mem.nregions > VU_MEM_TABLE_MAX_REGIONS)
			return "memory table region count out of range";
		if (size != 8 + m->p.mem.nregions * sizeof(struct vu_mem_region))
			return "memory table size does not match its region count";
		if ((uint32_t)m->nfds != m->p.mem.nregions)
			return "memory table fd count does not match its region count";
		return NULL;
	case VU_REQ_GET_CONFIG:
	case VU_REQ_SET_CONFIG:
		if (size < VU_CONFIG_HDR_SIZE)
			return "config message shorter than its header";
		if (m->p.config.size > VU_MAX_CONFIG_SIZE ||
		    size != VU_CONFIG_HDR_SIZE + m->p.config.size)
			return "config size does not match the message size";
		return NULL;
	case VU_REQ_GET_INFLIGHT_FD:
	case VU_REQ_SET_INFLIGHT_FD:
		if (size != VU_INFLIGHT_MIN_SIZE && size != sizeof(struct vu_inflight))
			return "inflight description is neither 20 nor 24 bytes";
		return NULL;
	default:
		/* IOTLB, crypto sessions: not supported; any size that fits is read. */
		return NULL;
	}
}

static const char *check(const struct vu_msg *m)
{
	const struct rule *r = rule_of(m->hdr.request);

	if (!r)
		return m->nfds ? "unknown request carries fds" : NULL;
	if (r->size == VAR) {
		const char *why = check_var_size(m);
		if (why)
			return why;
	} else if (m->hdr.size != (uint32_t)r->size) {
		return "payload size is wrong for this request";
	}
	if (m->nfds < r->fds_min || m->nfds > r->fds_max)
		return "wrong number of fds for this request";
	return NULL;
}

/* Collects the SCM_RIGHTS fds of a received header. */
static const char *collect_fds(struct msghdr *mh, struct vu_msg *m)
{
	const char *why = NULL;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const int *fds = (const int *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, fds + i, sizeof(fd));
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else {
				close(fd);
				why = "more than 8 fds";
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		why = "more than 8 fds (control data truncated)";
	return why;
}

/* The header is complete: is it one we can take? */
static const char *check_header(const struct vu_hdr *h)
{
	if ((h->flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION)
		return "unsupported protocol version in flags";
	if (h->flags & VU_FLAG_REPLY)
		return "reply flag set on a request";
	if (h->size > sizeof(union vu_payload))
		return "payload larger than any request allows";
	return NULL;
}

/* Reads more of the message without blocking: >0 bytes, 0 at EOF, -EAGAIN, or -errno. */
static ssize_t read_more(int sock, struct vu_msg_reader *r)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct vu_msg *m = &r->m;
	struct iovec iov = r->got < sizeof(m->hdr) ?
		(struct iovec){ (char *)&m->hdr + r->got, sizeof(m->hdr) - r->got } :
		(struct iovec){ (char *)&m->p + (r->got - sizeof(m->hdr)),
				sizeof(m->hdr) + m->hdr.size - r->got };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	r->why = collect_fds(&mh, m);
	return r->why ? -EPROTO : n;
}

int vu_msg_read(int sock, struct vu_msg_reader *r)
{
	struct vu_msg *m = &r->m;

	if (r->got == 0)
		m->nfds = 0;
	r->why = NULL;
	for (;;) {
		ssize_t n = read_more(sock, r);
		if (n == -EAGAIN)
			return 0; /* the rest comes later; the loop is not held up */
		if (n == 0 && r->got == 0)
			return -1; /* orderly end between messages: why stays NULL */
		if (n <= 0) {
			if (!r->why)
				r->why = n == 0 ? "connection closed in the middle of a message"
						: "socket read failed";
			break;
		}
		r->got += n;
		if (r->got == sizeof(m->hdr) && (r->why = check_header(&m->hdr)))
			break;
		if (r->got >= sizeof(m->hdr) && r->got == sizeof(m->hdr) + m->hdr.size) {
			r->got = 0;
			if ((r->why = check(m)))
				break;
			return 1;
		}
	}
	r->got = 0;
	vu_msg_close_fds(m);
	return -1;
}

int vu_msg_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		const int *fds, int nfds)
{
	struct vu_hdr hdr = { .request = request, .flags = flags, .size = size };
	struct iovec iov[2] = { { &hdr, sizeof(hdr) }, { (void *)payload, size } };
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = size ? 2 : 1 };

	if (nfds > VU_MAX_FDS)
		return -EINVAL;
	if (nfds > 0) {
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	/* Never blocks: a peer that does not read what it asked for is a broken peer. */
	if (n < 0)
		return -errno;
	return (size_t)n == sizeof(hdr) + size ? 0 : -EIO;
}

int vu_msg_reply(int sock, const struct vu_msg *req, const void *payload, uint32_t size)
{
	return vu_msg_send(sock, req->hdr.request, VU_FLAG_REPLY | VU_FLAG_VERSION, payload, size,
			   NULL, 0);
}
