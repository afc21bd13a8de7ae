/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user-gpu side channel (qemu docs/interop/vhost-user-gpu.rst): the
 * socket GPU_SET_SOCKET hands over, on which the back-end tells the front-end
 * what to show (SCANOUT, UPDATE, DMABUF_*, CURSOR_*) and asks it about the
 * displays (GET_DISPLAY_INFO, GET_EDID).
 *
 * Nothing here blocks the loop: messages are queued and written as the socket
 * takes them (the control and cursor queues stop taking requests while much is queued),
 * and a request with a reply registers a callback that runs when the reply
 * comes, in order. A command waiting for a reply can be abandoned (the ring
 * stops, or the front-end takes too long): its callback runs with no reply and
 * the late reply, when it comes, is read and dropped.
 *
 * An UPDATE of memfd pixels (gpu-pixels.c) is not copied at all: its header is
 * written, its pixels spliced from the memfd through a pipe into the socket,
 * which then holds references to our pages until the front-end reads them.
 * Each such message's ticket is where it ends in the stream of everything
 * queued; the front-end has surely read up to what we wrote less what the
 * socket still holds (SIOCOUTQ, which counts buffers, never less than their
 * bytes), and only pixels it has read may change. A transfer that would change
 * pixels still being read waits (gpu_chan_when_read), polling the socket.
 * (vmsplice of heap pixels was measured slower than copying them: pinning the
 * pages of every frame costs more. Page-cache pages need no pinning.)
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev/gpu.h"
#include "dev/gpu-chan.h"
#include "proto/log.h"
#include "proto/loop.h"

#define BACKLOG_BYTES (4u << 20)       /* queued output that pauses the control and cursor queues */
#define REPLY_TIMEOUT_NS 5000000000ull /* a command waits this long for the front-end */
#define SEND_BUFFER (8 << 20)         /* asked for; the kernel caps it at net.core.wmem_max */
#define MAX_REPLY sizeof(struct virtio_gpu_resp_edid)
#define MAX_SPLICED 8                  /* queued spliced messages that pause them too */
#define PIPE_SIZE (1 << 20)            /* pages moved per splice: asked for, the kernel may cap it */
#define READ_POLL_NS 100000ull         /* how often a waiting transfer looks at the socket */

struct out_msg {
	struct out_msg *next;
	size_t cap, len, sent;         /* sent counts data, then ext */
	int fd;                        /* sent with the first byte, then closed */
	int ext_fd;                    /* the payload's tail is spliced from here (-1: none) */
	uint64_t ext_off;
	size_t ext_len;
	uint8_t data[];                /* header + payload (or its head) */
};

struct waiter {
	struct waiter *next;
	uint32_t request, reply_size;
	gpu_reply_fn fn;               /* NULL once abandoned */
	struct gpu_cmd *cmd;
};

struct gpu_chan {
	int fd;
	bool broken;                   /* write failed: closed soon, output dropped */
	bool watching_out;
	uint64_t features;
	struct out_msg *head, *tail;
	size_t queued;                 /* bytes copied into queued messages */
	unsigned spliced;              /* queued messages with spliced pixels */
	int pipe[2];                   /* for splicing: -1 if there is none */
	size_t in_pipe;                /* bytes of the head message in the pipe */
	uint64_t written;              /* where what the socket took ends (see gpu->stream_queued) */
	bool stalled;                  /* a queue waits for this channel */
	struct vu_timer *wake;
	/* A transfer waiting for the front-end to read pixels (gpu_chan_when_read). */
	void (*read_fn)(struct gpu *g);
	uint64_t read_ticket;
	unsigned read_polls_left;      /* then waiting is given up */
	struct vu_timer *read_poll;
	struct waiter *waiters, *last_waiter;
	struct vu_timer *timeout, *closer;
	/* The last big message's memory, reused: fresh pages for every frame cost more than the copy. */
	struct out_msg *spare;
	/* Small messages (headers, cursor moves) are reused too: a frame allocates nothing. */
	struct out_msg *small;
	unsigned nsmall;
	size_t rx_len;
	uint8_t rx[sizeof(struct gpu_msg_hdr) + MAX_REPLY];
};

static void on_socket(void *opaque, int fd, uint32_t events);

bool gpu_chan_busy(struct gpu *g)
{
	struct gpu_chan *c = g->chan;

	if (!c || c->broken)
		return false;
	if (c->queued < BACKLOG_BYTES && c->spliced < MAX_SPLICED)
		return false;
	c->stalled = true;
	return true;
}

/* The queues go on once the channel is no longer busy (from the loop, never nested). */
static void on_wake(void *opaque)
{
	struct gpu *g = opaque;

	if (g->chan && g->chan->stalled && !gpu_chan_busy(g)) {
		g->chan->stalled = false;
		g->resume(g);
	}
}

bool gpu_chan_has_edid(const struct gpu *g)
{
	return g->chan && (g->chan->features & (1ull << GPU_PF_EDID));
}

bool gpu_chan_has_dmabuf2(const struct gpu *g)
{
	return g->chan && (g->chan->features & (1ull << GPU_PF_DMABUF2));
}

#define SPARE_MIN (1u << 20)
#define SMALL_CAP 64                   /* header + payload of the messages kept for reuse ... */
#define SMALL_KEPT 32                  /* ... and how many: frames queue a few each */

static void free_msg(struct gpu_chan *c, struct out_msg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	if (m->ext_fd >= 0) {
		close(m->ext_fd);
		c->spliced--;
	}
	if (m->cap >= SPARE_MIN && (!c->spare || c->spare->cap < m->cap)) {
		free(c->spare);
		c->spare = m;
	} else if (m->cap == SMALL_CAP && c->nsmall < SMALL_KEPT) {
		m->next = c->small;
		c->small = m;
		c->nsmall++;
	} else {
		free(m);
	}
}

/* Stops writing; the channel is closed from the loop, outside whatever is running now. */
static void breaks(struct gpu_chan *c, const char *why)
{
	if (c->broken)
		return;
	vu_warn("gpu: display channel: %s; closing it", why);
	c->broken = true;
	while (c->head) {
		struct out_msg *m = c->head;
		c->head = m->next;
		free_msg(c, m);
	}
	c->tail = NULL;
	c->queued = 0;
	vu_timer_arm(c->closer, 1, 0);
}

static void watch_out(struct gpu *g, bool on)
{
	struct gpu_chan *c = g->chan;

	if (c->watching_out != on && vu_loop_rewatch(g->loop, c->fd, EPOLLIN | (on ? EPOLLOUT : 0)) == 0)
		c->watching_out = on;
}

/* Writes the copied part of m: header and payload, with its fd on the first byte. */
static ssize_t send_data(struct gpu_chan *c, struct out_msg *m)
{
	struct iovec iov = { m->data + m->sent, m->len - m->sent };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (m->fd >= 0 && m->sent == 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &m->fd, sizeof(int));
	}
	ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		c->queued -= n;
	return n;
}

/* Moves the spliced part of m on: from its file into the pipe, from the pipe into the socket. */
static ssize_t send_pages(struct gpu_chan *c, struct out_msg *m)
{
	if (!c->in_pipe) {
		loff_t at = m->ext_off + (m->sent - m->len);
		ssize_t k = splice(m->ext_fd, &at, c->pipe[1], NULL, m->len + m->ext_len - m->sent, SPLICE_F_NONBLOCK);
		if (k <= 0) {
			/* An empty pipe takes pages, and our file holds them: neither can happen. */
			if (k == 0 || errno == EAGAIN)
				errno = EIO;
			return -1;
		}
		c->in_pipe = k;
	}
	ssize_t n = splice(c->pipe[0], NULL, c->fd, NULL, c->in_pipe, SPLICE_F_NONBLOCK);
	if (n > 0)
		c->in_pipe -= n;
	return n;
}

/* Writes what the socket takes. */
static void flush_out(struct gpu *g)
{
	struct gpu_chan *c = g->chan;

	while (c && !c->broken && c->head) {
		struct out_msg *m = c->head;
		ssize_t n = m->sent < m->len ? send_data(c, m) : send_pages(c, m);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			watch_out(g, true);
			break;
		}
		if (n <= 0) {
			breaks(c, strerror(errno));
			return;
		}
		m->sent += n;
		c->written += n;
		if (m->sent == m->len + m->ext_len) {
			c->head = m->next;
			if (!c->head)
				c->tail = NULL;
			free_msg(c, m);
		}
	}
	if (c && !c->broken) {
		if (!c->head)
			watch_out(g, false);
		if (c->stalled) /* maybe no longer busy: look from the loop */
			vu_timer_arm(c->wake, 1, 0);
	}
}

static struct out_msg *queue(struct gpu *g, uint32_t request, uint32_t size, int fd)
{
	struct gpu_chan *c = g->chan;
	size_t cap = sizeof(struct gpu_msg_hdr) + size;
	struct out_msg *m = NULL;

	if (!c || c->broken) {
		m = NULL;
	} else if (cap <= SMALL_CAP && c->small) {
		m = c->small;
		c->small = m->next;
		c->nsmall--;
	} else if (c->spare && c->spare->cap >= cap && c->spare->cap / 2 <= cap) {
		m = c->spare;
		c->spare = NULL;
	} else {
		/* Small ones all get the same size, so that any can be reused for any. */
		cap = cap < SMALL_CAP ? SMALL_CAP : cap;
		if ((m = malloc(sizeof(*m) + cap)))
			m->cap = cap;
	}
	if (!m) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct gpu_msg_hdr h = { request, 0, size };
	memcpy(m->data, &h, sizeof(h));
	m->next = NULL;
	m->len = sizeof(h) + size;
	m->sent = 0;
	m->fd = fd;
	m->ext_fd = -1;
	m->ext_off = 0;
	m->ext_len = 0;
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	c->queued += m->len;
	g->stream_queued += m->len;
	return m;
}

void *gpu_chan_send_buf(struct gpu *g, uint32_t request, uint32_t size)
{
	struct out_msg *m = queue(g, request, size, -1);

	return m ? m->data + sizeof(struct gpu_msg_hdr) : NULL;
}

void gpu_chan_send(struct gpu *g, uint32_t request, const void *payload, uint32_t size, int fd)
{
	struct out_msg *m = queue(g, request, size, fd);

	if (m && size)
		memcpy(m->data + sizeof(struct gpu_msg_hdr), payload, size);
}

uint64_t gpu_chan_send_pages(struct gpu *g, uint32_t request, const void *head, uint32_t head_size, int fd,
			     uint64_t off, uint32_t len)
{
	struct gpu_chan *c = g->chan;
	int own = c && !c->broken && c->pipe[0] >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	struct out_msg *m = own >= 0 ? queue(g, request, head_size, -1) : NULL;

	if (!m) {
		if (own >= 0)
			close(own);
		return 0;
	}
	memcpy(m->data + sizeof(struct gpu_msg_hdr), head, head_size);
	((struct gpu_msg_hdr *)m->data)->size = head_size + len;
	m->ext_fd = own; /* the message's own: the resource may go before it is sent */
	m->ext_off = off;
	m->ext_len = len;
	g->stream_queued += len;
	c->spliced++;
	return g->stream_queued;
}

bool gpu_chan_reading(struct gpu *g, uint64_t ticket)
{
	struct gpu_chan *c = g->chan;
	int unread;

	if (ticket <= g->stream_read)
		return false;
	if (!c || c->broken) {
		g->stream_read = g->stream_queued; /* no front-end reads them any more */
		return false;
	}
	if (ticket <= c->written && ioctl(c->fd, SIOCOUTQ, &unread) == 0 && unread >= 0 &&
	    c->written - (uint64_t)unread > g->stream_read)
		g->stream_read = c->written - unread;
	return ticket > g->stream_read;
}

/* Ends the wait for pixels to be read; forced: stop protecting any (they count as read). */
static void read_done(struct gpu *g, bool forced)
{
	struct gpu_chan *c = g->chan;
	void (*fn)(struct gpu *g) = c ? c->read_fn : NULL;

	if (!fn)
		return;
	c->read_fn = NULL;
	vu_timer_disarm(c->read_poll);
	if (forced)
		g->stream_read = g->stream_queued;
	fn(g);
}

static void on_read_poll(void *opaque)
{
	struct gpu *g = opaque;
	struct gpu_chan *c = g->chan;

	if (!c || !c->read_fn)
		return;
	if (!gpu_chan_reading(g, c->read_ticket)) {
		read_done(g, false);
	} else if (!--c->read_polls_left) {
		vu_warn("gpu: the front-end has not read an update for %llu s; overwriting its pixels",
			REPLY_TIMEOUT_NS / 1000000000ull);
		read_done(g, true);
	}
}

void gpu_chan_when_read(struct gpu *g, uint64_t ticket, void (*fn)(struct gpu *g))
{
	struct gpu_chan *c = g->chan;

	if (!gpu_chan_reading(g, ticket)) {
		fn(g);
		return;
	}
	c->read_fn = fn;
	c->read_ticket = ticket;
	c->read_polls_left = REPLY_TIMEOUT_NS / READ_POLL_NS;
	vu_timer_arm(c->read_poll, READ_POLL_NS, READ_POLL_NS);
}

void gpu_chan_flush(struct gpu *g)
{
	flush_out(g);
}

static void arm_timeout(struct gpu_chan *c)
{
	for (struct waiter *w = c->waiters; w; w = w->next)
		if (w->fn) {
			vu_timer_arm(c->timeout, REPLY_TIMEOUT_NS, 0);
			return;
		}
	vu_timer_disarm(c->timeout);
}

bool gpu_chan_call(struct gpu *g, uint32_t request, const void *payload, uint32_t size, uint32_t reply_size,
		   gpu_reply_fn fn, struct gpu_cmd *cmd)
{
	struct gpu_chan *c = g->chan;
	struct waiter *w;

	if (!c || c->broken || reply_size > MAX_REPLY || !(w = calloc(1, sizeof(*w))))
		return false;
	gpu_chan_send(g, request, payload, size, -1);
	*w = (struct waiter){ .request = request, .reply_size = reply_size, .fn = fn, .cmd = cmd };
	if (c->last_waiter)
		c->last_waiter->next = w;
	else
		c->waiters = w;
	c->last_waiter = w;
	arm_timeout(c);
	flush_out(g);
	return true;
}

/*
 * Runs the callbacks of waiters (those of commands, or all) without a reply; the
 * waiters stay to match late replies.
 */
static void abandon(struct gpu *g, bool all)
{
	struct gpu_chan *c = g->chan;

	for (struct waiter *w = c ? c->waiters : NULL; w; w = w->next) {
		gpu_reply_fn fn = w->fn;
		if (!fn || (!all && !w->cmd))
			continue;
		w->fn = NULL;
		fn(g, w->cmd, NULL, 0);
	}
	if (c)
		arm_timeout(c);
}

void gpu_chan_abandon(struct gpu *g)
{
	abandon(g, false);
	read_done(g, true);
}

static void on_timeout(void *opaque)
{
	struct gpu *g = opaque;

	vu_warn("gpu: the front-end did not answer within %llu s", REPLY_TIMEOUT_NS / 1000000000ull);
	abandon(g, true);
}

/* ---- protocol features, negotiated as the channel opens ---- */

static void features_reply(struct gpu *g, struct gpu_cmd *cmd, const void *payload, uint32_t size)
{
	uint64_t offered = 0, want = 1ull << GPU_PF_EDID | 1ull << GPU_PF_DMABUF2;

	if (payload)
		memcpy(&offered, payload, sizeof(offered));
	if (g->chan && payload) {
		g->chan->features = offered & want;
		gpu_chan_send(g, GPU_MSG_SET_PROTOCOL_FEATURES, &g->chan->features, sizeof(uint64_t), -1);
		flush_out(g);
	}
	g->ctrl_waiting = false;
	g->resume(g);
}

/* ---- replies ---- */

static void take_reply(struct gpu *g, const struct gpu_msg_hdr *h, const uint8_t *payload)
{
	struct gpu_chan *c = g->chan;
	struct waiter *w = c->waiters;

	if (!w || h->request != w->request || !(h->flags & GPU_MSG_FLAG_REPLY) || h->size != w->reply_size) {
		breaks(c, w ? "unexpected reply" : "message without a request");
		return;
	}
	c->waiters = w->next;
	if (!c->waiters)
		c->last_waiter = NULL;
	arm_timeout(c);
	if (w->fn)
		w->fn(g, w->cmd, payload, h->size);
	free(w);
}

static void on_socket(void *opaque, int fd, uint32_t events)
{
	struct gpu *g = opaque;
	struct gpu_chan *c = g->chan;

	if (events & EPOLLOUT) {
		flush_out(g);
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || c->broken)
		return;
	ssize_t n = recv(fd, c->rx + c->rx_len, sizeof(c->rx) - c->rx_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		breaks(c, n ? strerror(errno) : "the front-end closed it");
		return;
	}
	c->rx_len += n;
	while (c == g->chan && !c->broken && c->rx_len >= sizeof(struct gpu_msg_hdr)) {
		struct gpu_msg_hdr h;
		memcpy(&h, c->rx, sizeof(h));
		if (h.size > MAX_REPLY) {
			breaks(c, "oversized message from the front-end");
			return;
		}
		size_t total = sizeof(h) + h.size;
		if (c->rx_len < total)
			return;
		uint8_t payload[MAX_REPLY];
		memcpy(payload, c->rx + sizeof(h), h.size);
		memmove(c->rx, c->rx + total, c->rx_len - total);
		c->rx_len -= total;
		take_reply(g, &h, payload);
	}
}

static void on_close_timer(void *opaque)
{
	struct gpu *g = opaque;
	bool stalled = g->chan->stalled;

	gpu_chan_close(g);
	if (stalled)
		g->resume(g); /* the queues go on without a display */
}

/* Frees c with its socket, queue, pipe and timers. */
static void free_chan(struct gpu_chan *c)
{
	close(c->fd);
	while (c->head) {
		struct out_msg *m = c->head;
		c->head = m->next;
		free_msg(c, m);
	}
	while (c->waiters) {
		struct waiter *w = c->waiters;
		c->waiters = w->next;
		free(w);
	}
	if (c->pipe[0] >= 0) {
		close(c->pipe[0]);
		close(c->pipe[1]);
	}
	vu_timer_free(c->timeout);
	vu_timer_free(c->closer);
	vu_timer_free(c->wake);
	vu_timer_free(c->read_poll);
	free(c->spare);
	while (c->small) {
		struct out_msg *m = c->small;
		c->small = m->next;
		free(m);
	}
	free(c);
}

int gpu_chan_open(struct gpu *g, int fd)
{
	struct gpu_chan *c = calloc(1, sizeof(*c));

	gpu_chan_close(g);
	if (!c) {
		close(fd);
		return -1;
	}
	c->fd = fd;
	c->written = g->stream_queued;
	c->timeout = vu_timer_new(g->loop, on_timeout, g);
	c->closer = vu_timer_new(g->loop, on_close_timer, g);
	c->wake = vu_timer_new(g->loop, on_wake, g);
	c->read_poll = vu_timer_new(g->loop, on_read_poll, g);
	/* A bigger send buffer: fewer wake-ups and writes per full-screen update. */
	int sndbuf = SEND_BUFFER, unread;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/*
	 * Splicing needs a pipe, a socket that does not block the loop (splice goes by
	 * the file's flag), and SIOCOUTQ to tell when the front-end has read the pages.
	 * Without them updates are copied.
	 */
	c->pipe[0] = c->pipe[1] = -1;
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 && ioctl(fd, SIOCOUTQ, &unread) == 0 &&
	    pipe2(c->pipe, O_NONBLOCK | O_CLOEXEC) == 0)
		fcntl(c->pipe[1], F_SETPIPE_SZ, PIPE_SIZE);
	if (!c->timeout || !c->closer || !c->wake || !c->read_poll ||
	    vu_loop_watch(g->loop, fd, EPOLLIN, on_socket, g) < 0) {
		free_chan(c);
		return -1;
	}
	g->chan = c;
	/* The control queue waits for the features: EDID and DMABUF2 depend on them. */
	g->ctrl_waiting = true;
	if (!gpu_chan_call(g, GPU_MSG_GET_PROTOCOL_FEATURES, NULL, 0, sizeof(uint64_t), features_reply, NULL))
		features_reply(g, NULL, NULL, 0);
	return 0;
}

void gpu_chan_close(struct gpu *g)
{
	struct gpu_chan *c = g->chan;

	if (!c)
		return;
	abandon(g, true);
	read_done(g, true);
	g->chan = NULL;
	g->stream_read = g->stream_queued; /* nobody reads our pages any more */
	vu_loop_unwatch(g->loop, c->fd);
	free_chan(c);
}
