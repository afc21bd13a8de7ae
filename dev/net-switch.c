/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The learning L2 switch that joins every port of the process: vhost-user ports
 * and tap uplinks. Source MACs are learned per port and age out; frames to a
 * known unicast MAC go to its port, the rest are flooded. A frame never goes
 * back out of the port it came in on, and a delivered frame never re-enters
 * the switch, so the switch itself cannot loop.
 */
#include <string.h>
#include <time.h>

#include "dev/net.h"
#include "proto/log.h"

#define MAX_PORTS 128
#define BUCKETS 1024            /* MAC table: BUCKETS x WAYS entries */
#define WAYS 4

struct fdb_entry {
	uint8_t mac[NET_ALEN];
	uint16_t port;              /* port id; 0: empty */
	uint32_t seen;              /* seconds */
};

static struct {
	struct net_port *ports[MAX_PORTS];   /* by id; slot 0 unused */
	unsigned nports;                     /* highest id in use */
	struct net_port *dirty;
	uint32_t now;
	struct fdb_entry fdb[BUCKETS][WAYS];
} sw;
/* Apart from sw: initialized, it would put all of sw (50 KiB) into the binary's data. */
static uint32_t ageing = NET_DEFAULT_AGEING;

static void tick(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	sw.now = (uint32_t)ts.tv_sec;
}

void net_switch_set_ageing(unsigned seconds)
{
	ageing = seconds;
}

int net_switch_attach(struct net_port *p)
{
	for (unsigned id = 1; id < MAX_PORTS; id++) {
		if (sw.ports[id])
			continue;
		sw.ports[id] = p;
		p->id = id;
		if (id > sw.nports)
			sw.nports = id;
		return 0;
	}
	vu_err("more than %u switch ports", MAX_PORTS - 1);
	return -1;
}

void net_switch_forget(struct net_port *p)
{
	for (unsigned b = 0; b < BUCKETS; b++)
		for (unsigned w = 0; w < WAYS; w++)
			if (sw.fdb[b][w].port == p->id)
				sw.fdb[b][w].port = 0;
}

void net_switch_detach(struct net_port *p)
{
	if (!p->id)
		return;
	if (p->dirty)
		net_switch_flush();
	net_switch_forget(p);
	sw.ports[p->id] = NULL;
	p->id = 0;
	p->up = false;
	net_switch_changed(p);
}

void net_switch_changed(struct net_port *p)
{
	for (unsigned id = 1; id <= sw.nports; id++) {
		struct net_port *q = sw.ports[id];
		if (q && q != p && q->ops->peers_changed)
			q->ops->peers_changed(q);
	}
}

unsigned net_switch_peer_offloads(const struct net_port *p)
{
	unsigned off = NET_OFF_CSUM | NET_OFF_TSO4 | NET_OFF_TSO6 | NET_OFF_ECN;
	bool any = false;

	for (unsigned id = 1; id <= sw.nports; id++) {
		struct net_port *q = sw.ports[id];
		if (q && q != p && q->up) {
			off &= q->offloads;
			any = true;
		}
	}
	return any ? off : 0;
}

static struct fdb_entry *bucket(const uint8_t *mac)
{
	uint32_t h = 2166136261u;

	for (unsigned i = 0; i < NET_ALEN; i++)
		h = (h ^ mac[i]) * 16777619u;
	return sw.fdb[(h ^ (h >> 16)) % BUCKETS];
}

static bool fresh(const struct fdb_entry *e)
{
	return e->port && sw.now - e->seen < ageing;
}

/* Which slot a new MAC takes: an empty one, else an aged-out one, else the least recently seen. */
static unsigned rank(const struct fdb_entry *e)
{
	return !e->port ? 0 : !fresh(e) ? 1 : 2;
}

static void learn(const uint8_t *mac, unsigned port)
{
	struct fdb_entry *b = bucket(mac), *victim = &b[0];

	if (mac[0] & 1)
		return; /* a group address is never a source */
	for (unsigned w = 0; w < WAYS; w++) {
		if (b[w].port && !memcmp(b[w].mac, mac, NET_ALEN)) {
			b[w].port = port; /* a station that moved is found on its new port */
			b[w].seen = sw.now;
			return;
		}
		if (rank(&b[w]) < rank(victim) || (rank(&b[w]) == rank(victim) && b[w].seen < victim->seen))
			victim = &b[w];
	}
	memcpy(victim->mac, mac, NET_ALEN);
	victim->port = port;
	victim->seen = sw.now;
}

static struct net_port *lookup(const uint8_t *mac)
{
	struct fdb_entry *b = bucket(mac);

	for (unsigned w = 0; w < WAYS; w++)
		if (fresh(&b[w]) && !memcmp(b[w].mac, mac, NET_ALEN))
			return sw.ports[b[w].port];
	return NULL;
}

/* Adds pkt to what `to` gets of this burst; *queued lists the ports that get some. */
static void queue(struct net_port **queued, struct net_port *to, const struct net_pkt *pkt)
{
	if (!to->nqueued) {
		to->next_queued = *queued;
		*queued = to;
	}
	to->queued[to->nqueued++] = pkt;
}

void net_switch_forward(struct net_port *from, const struct net_pkt *pkts, unsigned n)
{
	struct net_port *queued = NULL;

	/*
	 * A burst mostly repeats one source and one destination: a source learned just
	 * before is not learned again (the same entry, the same second), a destination
	 * looked up just before is not looked up again unless learning has changed the
	 * table since.
	 */
	const uint8_t *learned = NULL, *looked_up = NULL;
	struct net_port *found = NULL;

	tick();
	for (unsigned i = 0; i < n; i++) {
		const struct net_pkt *pkt = &pkts[i];
		if (!learned || memcmp(learned, pkt->src, NET_ALEN)) {
			learn(pkt->src, from->id);
			learned = pkt->src;
			looked_up = NULL;
		}
		struct net_port *to = NULL;
		if (!(pkt->dst[0] & 1)) {
			if (!looked_up || memcmp(looked_up, pkt->dst, NET_ALEN)) {
				found = lookup(pkt->dst);
				looked_up = pkt->dst;
			}
			to = found;
		}
		if (to) {
			if (to != from && to->up)
				queue(&queued, to, pkt);
			continue; /* a frame for the segment it came from stays there */
		}
		for (unsigned id = 1; id <= sw.nports; id++) {
			to = sw.ports[id];
			if (to && to != from && to->up)
				queue(&queued, to, pkt);
		}
	}
	/* Each destination takes its frames at once: its ring is walked once for all of them. */
	while (queued) {
		struct net_port *to = queued;
		queued = to->next_queued;
		to->ops->deliver(to, to->queued, to->nqueued);
		to->nqueued = 0;
		if (!to->dirty) {
			to->dirty = true;
			to->next_dirty = sw.dirty;
			sw.dirty = to;
		}
	}
}

void net_switch_flush(void)
{
	while (sw.dirty) {
		struct net_port *p = sw.dirty;
		sw.dirty = p->next_dirty;
		p->dirty = false;
		if (p->ops->flush)
			p->ops->flush(p);
	}
}
