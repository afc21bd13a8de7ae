/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vsock connections: the table that finds one by its ports, the lists it is on, its
 * buffer of bytes for the host, and the end of its life. The lowest vsock layer: it
 * knows nothing of packets or of what the sockets carry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dev/vsock.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

#define TABLE_FIRST 256

int64_t vsock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vsock_conns_init(struct vsock *v)
{
	vsock_list_init(&v->all);
	vsock_list_init(&v->waiting);
	vsock_list_init(&v->timed);
	vsock_list_init(&v->released);
	v->next_local_port = VSOCK_LOCAL_PORT_FIRST;
	v->table = calloc(TABLE_FIRST, sizeof(*v->table));
	v->table_mask = TABLE_FIRST - 1;
	return v->table ? 0 : -1;
}

static unsigned bucket(const struct vsock *v, uint32_t local_port, uint32_t peer_port)
{
	uint64_t k = ((uint64_t)local_port << 32 | peer_port) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(k >> 32) & v->table_mask;
}

struct vsock_conn *vsock_conn_new(struct vsock *v, int fd, enum vsock_conn_state state)
{
	if (v->nconns >= v->max_conns)
		return NULL;
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->v = v;
	c->fd = fd;
	c->state = state;
	c->buf_alloc = (uint32_t)v->buf_size;
	c->buf.size = (uint32_t)v->buf_size;
	vsock_list_init(&c->wait);
	vsock_list_init(&c->timed);
	vsock_list_init(&c->gone);
	vsock_list_add_tail(&v->all, &c->all);
	v->nconns++;
	v->stats.conns++;
	return c;
}

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port, uint32_t peer_port)
{
	for (struct vsock_conn *c = v->table[bucket(v, local_port, peer_port)]; c; c = c->hnext)
		if (c->local_port == local_port && c->peer_port == peer_port)
			return c;
	return NULL;
}

/* Doubles the table once it holds more connections than buckets (allocation per connection, not per packet). */
static void grow(struct vsock *v)
{
	unsigned size = (v->table_mask + 1) * 2;
	struct vsock_conn **t = calloc(size, sizeof(*t));

	if (!t)
		return; /* longer chains, still correct */
	struct vsock_conn **old = v->table;
	unsigned old_size = v->table_mask + 1;
	v->table = t;
	v->table_mask = size - 1;
	for (unsigned i = 0; i < old_size; i++)
		for (struct vsock_conn *c = old[i], *next; c; c = next) {
			next = c->hnext;
			unsigned b = bucket(v, c->local_port, c->peer_port);
			c->hnext = t[b];
			t[b] = c;
		}
	free(old);
}

int vsock_conn_insert(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (v->nconns > v->table_mask + 1)
		grow(v);
	unsigned b = bucket(v, c->local_port, c->peer_port);
	c->hnext = v->table[b];
	v->table[b] = c;
	c->in_table = true;
	return 0;
}

static void table_remove(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (!c->in_table)
		return;
	for (struct vsock_conn **pp = &v->table[bucket(v, c->local_port, c->peer_port)]; *pp; pp = &(*pp)->hnext)
		if (*pp == c) {
			*pp = c->hnext;
			break;
		}
	c->in_table = false;
}

uint32_t vsock_conn_pick_port(struct vsock *v, uint32_t peer_port)
{
	for (;;) {
		uint32_t p = v->next_local_port++;
		if (v->next_local_port > VSOCK_CID_MAX || v->next_local_port < VSOCK_LOCAL_PORT_FIRST)
			v->next_local_port = VSOCK_LOCAL_PORT_FIRST;
		if (!vsock_conn_find(v, p, peer_port))
			return p; /* at most nconns + 1 tries */
	}
}

void vsock_conn_close_host(struct vsock_conn *c)
{
	if (c->fd >= 0) {
		if (c->watched)
			vu_loop_unwatch(c->v->loop, c->fd);
		close(c->fd);
	}
	c->fd = -1;
	c->watched = false;
	c->events = 0;
	c->state = CONN_DEAD;
}

void vsock_conn_set_deadline(struct vsock_conn *c, int64_t deadline_ms)
{
	struct vsock *v = c->v;

	c->deadline_ms = deadline_ms;
	if (!deadline_ms) {
		if (c->is_timed)
			vsock_list_del(&c->timed);
		c->is_timed = false;
		return;
	}
	if (!c->is_timed)
		vsock_list_add_tail(&v->timed, &c->timed);
	c->is_timed = true;
	if (!v->ticking) {
		vu_timer_arm(v->tick, VSOCK_TICK_MS * 1000000ull, VSOCK_TICK_MS * 1000000ull);
		v->ticking = true;
	}
}

void vsock_conn_release(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (c->released)
		return;
	vsock_conn_close_host(c);
	table_remove(c);
	vsock_conn_set_deadline(c, 0);
	if (c->waiting)
		vsock_list_del(&c->wait);
	c->waiting = false;
	c->owe = 0;
	c->released = true;
	vsock_list_del(&c->all);
	vsock_list_add_tail(&v->released, &c->gone);
	v->nconns--;
	vsock_host_room(v);
}

void vsock_conns_reap(struct vsock *v)
{
	while (!vsock_list_empty(&v->released)) {
		struct vsock_conn *c = vsock_container(v->released.next, struct vsock_conn, gone);
		vsock_list_del(&c->gone);
		free(c->buf.data);
		free(c);
	}
}

unsigned vsock_conns_drop(struct vsock *v, bool keep_lines)
{
	unsigned known = 0;

	for (struct vsock_link *l = v->all.next, *next; l != &v->all; l = next) {
		next = l->next;
		struct vsock_conn *c = vsock_container(l, struct vsock_conn, all);
		if (keep_lines && c->state == CONN_LINE)
			continue;
		known += c->guest_knows;
		vsock_conn_release(c);
	}
	v->rstq_head = v->rstq_n = 0;
	return known;
}

void vsock_conns_fini(struct vsock *v)
{
	if (!v->table)
		return;
	vsock_conns_drop(v, false);
	vsock_conns_reap(v);
	free(v->table);
	v->table = NULL;
}

int vsock_buf_put(struct vsock_conn *c, const struct iovec *iov, unsigned n, size_t off, size_t len)
{
	struct vsock_buf *b = &c->buf;

	if (len > vsock_buf_free(c))
		return -1;
	if (!b->data && !(b->data = malloc(b->size)))
		return -1;
	uint32_t tail = (b->head + b->len) % b->size;
	size_t first = len < b->size - tail ? len : b->size - tail;
	if (vu_iov_to_buf(iov, n, off, b->data + tail, first) != first ||
	    vu_iov_to_buf(iov, n, off + first, b->data, len - first) != len - first)
		return -1;
	b->len += (uint32_t)len;
	return 0;
}

unsigned vsock_buf_iov(const struct vsock_conn *c, struct iovec iov[2])
{
	const struct vsock_buf *b = &c->buf;

	if (!b->len)
		return 0;
	uint32_t first = b->len < b->size - b->head ? b->len : b->size - b->head;
	iov[0] = (struct iovec){ b->data + b->head, first };
	if (first == b->len)
		return 1;
	iov[1] = (struct iovec){ b->data, b->len - first };
	return 2;
}

void vsock_buf_take(struct vsock_conn *c, uint32_t n)
{
	struct vsock_buf *b = &c->buf;

	b->head = (b->head + n) % b->size;
	b->len -= n;
	if (!b->len)
		b->head = 0;
}
