/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host side of vsock: unix sockets, all non-blocking on the loop, in the
 * hybrid-vsock convention (Firecracker, Cloud Hypervisor, rust-vmm's
 * vhost-device-vsock):
 *
 *   - a host program connects to --uds-path and writes "CONNECT <port>\n": we open
 *     a stream to the guest's port and answer "OK <host port>\n" once the guest
 *     accepts, or close the socket if it refuses;
 *   - a guest connecting to (CID 2, port P) reaches the host listener at
 *     "<uds-path>_<P>".
 *
 * Bytes move between these sockets and guest buffers here; what they mean to the
 * guest (headers, credit, which packet is owed) is dev/vsock-pkt.c's business.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev/vsock.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

#define ACCEPT_BATCH 64          /* host clients accepted per turn of the loop */
#define RELISTEN_NS 100000000ull /* out of fds: listen again after this long */

static void on_host_event(void *opaque, int fd, uint32_t events);

/*
 * The socket holds as much as the guest's credit (where the system allows): with the
 * host reader a little behind, the guest's bytes still go straight into the socket
 * instead of through the connection's buffer.
 */
static void size_socket(const struct vsock_conn *c)
{
	int size = 0, want = (int)c->buf_alloc;
	socklen_t len = sizeof(size);

	/* The kernel reports twice what it was asked (its bookkeeping): compare like with like. */
	if (getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0 && size / 2 < want)
		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

/* ---- the listener at --uds-path ----------------------------------------------- */

static void stop_listening(struct vsock *v)
{
	if (v->listening)
		vu_loop_unwatch(v->loop, v->listener.fd);
	v->listening = false;
}

static void on_accept(void *opaque, int fd, uint32_t events)
{
	struct vsock *v = opaque;

	for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
		if (v->nconns >= v->max_conns) {
			/* Later clients wait in the backlog until a connection goes (vsock_host_room). */
			stop_listening(v);
			break;
		}
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				vu_warn("vsock: cannot accept a host client: %s; not listening for a while",
					strerror(errno));
				stop_listening(v);
				vu_timer_arm(v->relisten, RELISTEN_NS, 0);
			}
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		struct vsock_conn *c = vsock_conn_new(v, s, CONN_LINE);
		if (!c || vu_loop_watch(v->loop, s, EPOLLIN, on_host_event, c) < 0) {
			v->stats.refused++;
			if (c)
				vsock_conn_release(c); /* closes s */
			else
				close(s);
			continue;
		}
		c->watched = true;
		c->events = EPOLLIN;
		size_socket(c);
	}
	vsock_settle(v);
}

static void on_relisten(void *opaque)
{
	vsock_host_room(opaque);
}

void vsock_host_room(struct vsock *v)
{
	if (v->listening || v->listener.fd < 0 || v->nconns >= v->max_conns)
		return;
	if (vu_loop_watch(v->loop, v->listener.fd, EPOLLIN, on_accept, v) == 0)
		v->listening = true;
}

int vsock_host_listen(struct vsock *v)
{
	if (vu_listen_path(&v->listener, v->uds_path, 0600) < 0)
		return -1; /* said why */
	/* Host clients come in bursts (a hundred at once is ordinary): a deep backlog. */
	if (fcntl(v->listener.fd, F_SETFL, O_NONBLOCK) < 0 || listen(v->listener.fd, SOMAXCONN) < 0) {
		vu_err("vsock: %s: %s", v->uds_path, strerror(errno));
		return -1;
	}
	v->relisten = vu_timer_new(v->loop, on_relisten, v);
	if (!v->relisten)
		return -1;
	vsock_host_room(v);
	return v->listening ? 0 : -1;
}

void vsock_host_unlisten(struct vsock *v)
{
	stop_listening(v);
	vu_listen_close(&v->listener);
	vu_timer_free(v->relisten);
	v->relisten = NULL;
}

/* ---- the "CONNECT <port>\n" line ------------------------------------------------- */

/* The port of "CONNECT <port>" (case does not matter, "\r\n" is fine), or -1. */
static int64_t parse_connect(const char *line, size_t len)
{
	char s[VSOCK_LINE_MAX + 1];
	unsigned long long port;
	int end = 0;

	memcpy(s, line, len);
	s[len] = 0;
	if (strncasecmp(s, "connect ", 8) || sscanf(s + 8, " %10llu%n", &port, &end) != 1 ||
	    port > VSOCK_CID_MAX)
		return -1;
	const char *rest = s + 8 + end;
	return !strcmp(rest, "\n") || !strcmp(rest, "\r\n") ? (int64_t)port : -1;
}

/*
 * Reads the client's line, taking only its bytes: whatever the client sends after it
 * is the stream's, read once the guest accepts.
 */
static void read_line(struct vsock_conn *c)
{
	for (;;) {
		char peek[VSOCK_LINE_MAX];
		size_t room = sizeof(c->line) - c->line_len;
		ssize_t n = recv(c->fd, peek, room, MSG_PEEK);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			vsock_conn_release(c); /* gone before its line */
			return;
		}
		char *nl = memchr(peek, '\n', n);
		size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;
		if (recv(c->fd, c->line + c->line_len, take, 0) != (ssize_t)take) {
			vsock_conn_release(c);
			return;
		}
		c->line_len += take;
		if (nl)
			break;
		if (c->line_len == sizeof(c->line)) {
			vu_debug("vsock: host client line too long");
			vsock_conn_release(c);
			return;
		}
	}
	int64_t port = parse_connect(c->line, c->line_len);
	c->line_len = 0;
	if (port < 0) {
		vu_debug("vsock: host client sent no CONNECT line");
		vsock_conn_release(c);
		return;
	}
	struct vsock *v = c->v;
	c->peer_port = (uint32_t)port;
	c->local_port = vsock_conn_pick_port(v, c->peer_port);
	vsock_conn_insert(c);
	c->state = CONN_REQUEST;
	c->owe = OWE_REQUEST;
	/* The guest gives its credit in its answer; until then we send nothing. */
	vsock_conn_progress(c, false);
}

void vsock_host_accepted(struct vsock_conn *c)
{
	c->state = CONN_OPEN;
	vsock_conn_set_deadline(c, 0);
	c->line_len = (uint8_t)snprintf(c->line, sizeof(c->line), "OK %u\n", c->local_port);
	c->line_off = 0;
	vsock_host_flush(c);
}

/* ---- connections to <uds-path>_<port> -------------------------------------------- */

bool vsock_host_redial(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->uds_path, c->local_port) >=
	    sizeof(sa.sun_path)) {
		vsock_conn_reset(c, "the host path is too long");
		return true;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return false; /* the listener's backlog is full: the tick tries again */
		vu_debug("vsock: guest port %u -> host port %u: %s", c->peer_port, c->local_port, strerror(errno));
		v->stats.refused++;
		vsock_conn_reset(c, "connect");
		return true;
	}
	if (vu_loop_watch(v->loop, c->fd, 0, on_host_event, c) < 0) {
		vsock_conn_reset(c, "cannot watch the socket: %s", strerror(errno));
		return true;
	}
	c->watched = true;
	c->state = CONN_OPEN;
	vsock_conn_set_deadline(c, 0);
	c->owe |= OWE_RESPONSE;
	vsock_conn_progress(c, false);
	return true;
}

bool vsock_host_dial(struct vsock *v, uint32_t local_port, uint32_t peer_port, const struct vsock_hdr *req)
{
	struct vsock_conn *c = vsock_conn_new(v, -1, CONN_DIALING);

	if (!c) {
		v->stats.refused++;
		return false;
	}
	c->local_port = local_port;
	c->peer_port = peer_port;
	c->guest_knows = true;
	c->peer_buf_alloc = le32toh(req->buf_alloc);
	c->peer_fwd_cnt = le32toh(req->fwd_cnt);
	vsock_conn_insert(c);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		vu_warn("vsock: socket: %s", strerror(errno));
		vsock_conn_reset(c, "socket: %s", strerror(errno));
		return true;
	}
	size_socket(c);
	if (!vsock_host_redial(c))
		vsock_conn_set_deadline(c, vsock_now_ms() + VSOCK_DIAL_TIMEOUT_MS);
	return true;
}

/* ---- bytes ---------------------------------------------------------------------- */

static bool line_pending(const struct vsock_conn *c)
{
	return c->state == CONN_OPEN && c->line_off < c->line_len;
}

bool vsock_host_write(struct vsock_conn *c, const struct vsock_piece *p, unsigned np)
{
	struct vsock *v = c->v;
	unsigned whole = 0;     /* pieces the writev was given whole */
	size_t wrote = 0;

	if (!line_pending(c)) {
		/*
		 * What the buffer holds, then the pieces straight from the guest's memory, in one
		 * writev: the kernel's copy is the only one, and only what the socket cannot take
		 * now is copied into the buffer.
		 */
		unsigned cnt = vsock_buf_iov(c, v->slice);
		for (; whole < np; whole++) {
			int k = vu_iov_slice(p[whole].iov, p[whole].n, p[whole].off, p[whole].len, v->slice + cnt,
					     VSOCK_SLICES + 2 - cnt);
			if (k < 0)
				break;
			cnt += (unsigned)k;
		}
		ssize_t w = cnt ? writev(c->fd, v->slice, (int)cnt) : 0;
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			vsock_conn_reset(c, "writev: %s", strerror(errno));
			return false;
		}
		wrote = w < 0 ? 0 : (size_t)w;
		uint32_t from_buf = wrote < c->buf.len ? (uint32_t)wrote : c->buf.len;
		vsock_buf_take(c, from_buf);
		c->fwd_cnt += (uint32_t)wrote;
		v->stats.bytes_out += wrote;
		wrote -= from_buf;
	}
	/* What the socket did not take, in order, into the buffer (the credit keeps room for it). */
	for (unsigned i = 0; i < np; i++) {
		size_t done = i < whole ? (wrote < p[i].len ? wrote : p[i].len) : 0;
		wrote -= done;
		if (done < p[i].len && vsock_buf_put(c, p[i].iov, p[i].n, p[i].off + done, p[i].len - done) < 0) {
			vsock_conn_reset(c, "the connection's buffer");
			return false;
		}
	}
	if (c->buf.len)
		vsock_host_update(c);
	return true;
}

void vsock_host_flush(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (c->state != CONN_OPEN)
		return;
	while (c->line_off < c->line_len) {
		ssize_t w = send(c->fd, c->line + c->line_off, c->line_len - c->line_off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			goto out;
		if (w <= 0) {
			vsock_conn_reset(c, "writing the line: %s", strerror(errno));
			return;
		}
		c->line_off += (uint8_t)w;
	}
	c->line_len = c->line_off = 0;
	while (c->buf.len) {
		struct iovec iov[2];
		ssize_t w = writev(c->fd, iov, vsock_buf_iov(c, iov));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			vsock_conn_reset(c, "writev from the buffer: %s", strerror(errno));
			return;
		}
		vsock_buf_take(c, (uint32_t)w);
		c->fwd_cnt += (uint32_t)w;
		v->stats.bytes_out += (uint64_t)w;
	}
	if (!c->buf.len && c->guest_shut_send && !c->host_wr_shut) {
		shutdown(c->fd, SHUT_WR); /* the host reads end-of-file after everything the guest sent */
		c->host_wr_shut = true;
	}
	vsock_conn_credit_changed(c);
out:
	vsock_host_update(c);
}

ssize_t vsock_host_read(struct vsock_conn *c, const struct iovec *iov, unsigned n)
{
	ssize_t r;

	do
		r = readv(c->fd, iov, (int)n);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		c->v->stats.bytes_in += (uint64_t)r;
	return r;
}

void vsock_host_shutdown(struct vsock_conn *c)
{
	/* The guest will not read: the host's writes fail from now on (EPIPE). */
	if (c->guest_shut_recv && c->fd >= 0)
		shutdown(c->fd, SHUT_RD);
	if (c->guest_shut_send)
		vsock_host_flush(c);
	else
		vsock_host_update(c);
}

/* Whether c reads its socket now: the guest must be able to take it. */
static bool wants_input(const struct vsock_conn *c)
{
	return c->state == CONN_OPEN && !c->host_eof && !c->guest_shut_recv && !c->waiting &&
	       !(c->owe & (OWE_RESPONSE | OWE_RST)) && vsock_peer_free(c) > 0;
}

void vsock_host_update(struct vsock_conn *c)
{
	uint32_t ev = 0;

	if (c->fd < 0 || !c->watched)
		return;
	if (c->state == CONN_LINE)
		ev = EPOLLIN;
	else if (c->state == CONN_OPEN)
		ev = (wants_input(c) ? EPOLLIN : 0) | (c->buf.len || line_pending(c) ? EPOLLOUT : 0);
	/* A socket watched for nothing still reports HUP and ERR: we learn that the host went. */
	if (ev != c->events && vu_loop_rewatch(c->v->loop, c->fd, ev) == 0)
		c->events = ev;
}

static void on_host_event(void *opaque, int fd, uint32_t events)
{
	struct vsock_conn *c = opaque;
	struct vsock *v = c->v;

	if (events & (EPOLLHUP | EPOLLERR)) {
		/*
		 * Level-triggered and always reported: from now on the socket is read and
		 * written directly when the guest side allows (it never blocks: whatever is
		 * left is there, then end-of-file or EPIPE).
		 */
		vu_loop_unwatch(v->loop, fd);
		c->watched = false;
		c->hup = true;
	}
	switch (c->state) {
	case CONN_LINE:
		read_line(c);
		break;
	case CONN_REQUEST:
		/* The client left before the guest answered. */
		if (c->hup)
			vsock_conn_reset(c, "the host client left before the guest answered");
		break;
	case CONN_OPEN:
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			vsock_host_flush(c);
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			vsock_conn_progress(c, true);
		else
			vsock_conn_progress(c, false);
		break;
	}
	vsock_settle(v);
}
