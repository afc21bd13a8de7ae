/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-net (device id 1). Every socket of the process is one port of a
 * learning switch (dev/net-switch.c), with the host's tap interfaces as more
 * ports (--tap, dev/net-tap.c); this file is the device around a port: options,
 * features, config space, the control queue, and which ring does what. The
 * frames themselves move in dev/net-ring.c.
 *
 * build: net.c net-ring.c net-switch.c net-tap.c
 * systemd: DynamicUser=yes
 * systemd: PrivateDevices=yes
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: SystemCallFilter=@system-service
 */
#include <endian.h>
#include <linux/if_tun.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "dev/net.h"
#include "proto/device.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

/* virtio-net feature bits (virtio 1.2, 5.1.3). */
enum {
	F_CSUM = 0, F_GUEST_CSUM = 1, F_CTRL_GUEST_OFFLOADS = 2, F_MTU = 3, F_MAC = 5,
	F_GUEST_TSO4 = 7, F_GUEST_TSO6 = 8, F_GUEST_ECN = 9, F_HOST_TSO4 = 11, F_HOST_TSO6 = 12,
	F_HOST_ECN = 13, F_MRG_RXBUF = 15, F_STATUS = 16, F_CTRL_VQ = 17, F_CTRL_RX = 18,
	F_CTRL_RX_EXTRA = 20, F_GUEST_ANNOUNCE = 21, F_MQ = 22, F_CTRL_MAC_ADDR = 23,
	F_ANY_LAYOUT = 27,
};
#define BIT(f) (1ull << (f))

/* Control queue classes and commands (5.1.6.5). */
enum { C_RX = 0, C_MAC = 1, C_ANNOUNCE = 3, C_MQ = 4, C_GUEST_OFFLOADS = 5 };
enum { RX_PROMISC, RX_ALLMULTI, RX_ALLUNI, RX_NOMULTI, RX_NOUNI, RX_NOBCAST };
enum { MAC_TABLE_SET = 0, MAC_ADDR_SET = 1 };
enum { ACK_OK = 0, ACK_ERR = 1 };
enum { S_LINK_UP = 1, S_ANNOUNCE = 2 };

#define TX_BUDGET 256           /* frames per ring per turn of the loop */
#define CTRL_MAX_IOV 16

struct net_config {
	uint8_t mac[NET_ALEN];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
	uint16_t mtu;
} __attribute__((packed));

struct net {
	struct vu_dev dev;
	struct net_rings rings;     /* first after dev: the port is reached from it */
	struct net_config config;
	uint8_t mac[NET_ALEN];      /* --mac or generated; a driver may change config.mac */
	uint64_t acked;
	unsigned max_pairs;
	unsigned mtu;
	unsigned ageing;            /* --ageing for the whole switch; 0: not given */
	const char *tap_name;
	int tap_fd;
	struct net_port *tap;
	unsigned poll_us;
	uint64_t poll_ns;           /* --poll-us: keep polling a transmit ring this long */
	struct vu_loop *loop;
	struct vu_poller *more;     /* runs transmit rings that have more, or are polled */
	uint32_t tx_pending;        /* pairs whose transmit ring the poller runs */
	struct vu_vring *tx[NET_MAX_PAIRS];
	uint64_t idle_since[NET_MAX_PAIRS]; /* see poll_on */
	struct iovec ctrl_iov[CTRL_MAX_IOV];
};

static unsigned instances;      /* ordinal of each port: its generated MAC */

#define NET_FIELD(f) offsetof(struct net, f)
static const struct vu_option net_options[] = {
	{ .name = "mac", .kind = VU_OPT_MAC, .offset = NET_FIELD(mac), .arg = "MAC",
	  .help = "the port's MAC address (default: generated, stable for the same command line)" },
	{ .name = "queues", .kind = VU_OPT_UINT, .offset = NET_FIELD(max_pairs), .arg = "N",
	  .help = "queue pairs", .min = 1, .max = NET_MAX_PAIRS },
	{ .name = "mtu", .kind = VU_OPT_UINT, .offset = NET_FIELD(mtu), .arg = "N",
	  .help = "MTU offered to the driver", .min = 68, .max = 65535 },
	{ .name = "tap", .kind = VU_OPT_STRING, .offset = NET_FIELD(tap_name), .arg = "IFNAME",
	  .help = "connect the switch to the host's tap IFNAME (created if absent)", .min = 1, .max = 15 },
	{ .name = "tap-fd", .kind = VU_OPT_FD, .offset = NET_FIELD(tap_fd), .arg = "N",
	  .help = "connect the switch to an open tap fd (IFF_TAP | IFF_VNET_HDR)" },
	{ .name = "poll-us", .kind = VU_OPT_UINT, .offset = NET_FIELD(poll_us), .arg = "N",
	  .help = "busy-poll a transmit ring for N microseconds after it runs empty", .max = 1000000 },
	{ .name = "ageing", .kind = VU_OPT_UINT, .offset = NET_FIELD(ageing), .arg = "SECONDS",
	  .help = "forget a MAC address unseen this long, switch-wide; 300 if not given", .min = 1, .max = 1000000,
	  .unit = "seconds" },
	{ NULL },
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static struct vu_dev *net_create(void)
{
	struct net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->max_pairs = 1;
	n->tap_fd = -1;
	n->mtu = 1500;
	/* Locally administered, from the host name and the port's place on the command line. */
	char host[64] = "";
	uint32_t h = 2166136261u;
	gethostname(host, sizeof(host) - 1);
	for (const char *c = host; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	h = (h ^ instances++) * 16777619u;
	uint8_t mac[NET_ALEN] = { 0x02, 0x76, h >> 24, h >> 16, h >> 8, h };
	memcpy(n->mac, mac, NET_ALEN);
	return &n->dev;
}

static void run_pending(void *opaque);

/* The address and filter a driver starts with: everything, until a control queue says otherwise. */
static void reset_filter(struct net *n)
{
	memcpy(n->config.mac, n->mac, NET_ALEN);
	n->rings.filter = (struct net_filter){ .promisc = true };
	memcpy(n->rings.filter.mac, n->mac, NET_ALEN);
}

static int net_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct net *n = (struct net *)dev;

	if (n->tap_name && n->tap_fd >= 0) {
		vu_err("--tap and --tap-fd are mutually exclusive");
		return -1;
	}
	dev->num_queues = 2 * n->max_pairs + 1;
	n->config.mtu = n->mtu;
	n->poll_ns = (uint64_t)n->poll_us * 1000;
	if (n->ageing)
		net_switch_set_ageing(n->ageing);
	n->loop = loop;
	n->more = vu_poller_new(loop, run_pending, n);
	n->rings.port.ops = &net_ring_ops;
	n->rings.pairs = 1;
	n->rings.hdr_len = NET_HDR_LEN;
	n->config.status = S_LINK_UP;
	n->config.max_virtqueue_pairs = n->max_pairs;
	reset_filter(n);
	if (!n->more || net_switch_attach(&n->rings.port) < 0)
		return -1;
	if (n->tap_name || n->tap_fd >= 0) {
		n->tap = net_tap_get(n->tap_name, n->tap_fd, loop);
		if (!n->tap)
			return -1;
	}
	return 0;
}

static void net_destroy(struct vu_dev *dev)
{
	struct net *n = (struct net *)dev;
	const struct net_stats *s = &n->rings.port.stats;

	if (n->rings.port.id)
		vu_info("port %02x:%02x:%02x:%02x:%02x:%02x: sent %llu, received %llu, dropped %llu, bad %llu",
			n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5], (unsigned long long)s->tx,
			(unsigned long long)s->rx, (unsigned long long)s->rx_dropped,
			(unsigned long long)s->tx_errors);
	if (n->tap)
		net_tap_put(n->tap);
	net_switch_detach(&n->rings.port);
	vu_poller_free(n->more);
	free(n);
}

/* Offloads the driver takes (receive side) from its GUEST_* bits. */
static unsigned guest_offloads(uint64_t f)
{
	return (f & BIT(F_GUEST_CSUM) ? NET_OFF_CSUM : 0) | (f & BIT(F_GUEST_TSO4) ? NET_OFF_TSO4 : 0) |
	       (f & BIT(F_GUEST_TSO6) ? NET_OFF_TSO6 : 0) | (f & BIT(F_GUEST_ECN) ? NET_OFF_ECN : 0);
}

static void net_set_features(struct vu_dev *dev, uint64_t f)
{
	struct net *n = (struct net *)dev;
	struct net_rings *r = &n->rings;

	n->acked = f;
	r->mrg_rxbuf = f & BIT(F_MRG_RXBUF);
	r->hdr_len = r->mrg_rxbuf || (f & BIT(VIRTIO_F_VERSION_1)) ? NET_HDR_LEN : NET_HDR_LEN_LEGACY;
	r->tx_offloads = (f & BIT(F_CSUM) ? NET_OFF_CSUM : 0) | (f & BIT(F_HOST_TSO4) ? NET_OFF_TSO4 : 0) |
			 (f & BIT(F_HOST_TSO6) ? NET_OFF_TSO6 : 0) | (f & BIT(F_HOST_ECN) ? NET_OFF_ECN : 0);
	r->port.offloads = guest_offloads(f);
	/* With a control queue the driver picks the pairs (from 1); without, every enabled ring is used. */
	r->pairs = (f & BIT(F_MQ)) && !(f & BIT(F_CTRL_VQ)) ? n->max_pairs : 1;
	r->port.up = true;
	net_switch_changed(&r->port);
}

static void net_reset(struct vu_dev *dev)
{
	struct net *n = (struct net *)dev;

	n->acked = 0;
	n->tx_pending = 0;
	vu_poller_set(n->more, false);
	memset(n->tx, 0, sizeof(n->tx));
	memset(n->rings.rx, 0, sizeof(n->rings.rx));
	n->config.status = S_LINK_UP;
	reset_filter(n);
	n->rings.port.up = false;
	n->rings.port.offloads = 0;
	net_switch_forget(&n->rings.port);
	net_switch_changed(&n->rings.port);
}

/* ---- control queue ---------------------------------------------------------- */

static bool read_at(const struct vu_req *req, size_t off, void *buf, size_t len)
{
	return vu_iov_to_buf(req->iov, req->out, off, buf, len) == len;
}

/* One MAC table of CTRL_MAC_TABLE_SET at *off; too many entries mean "accept all of that kind". */
static bool read_table(const struct vu_req *req, size_t *off, uint8_t (*macs)[NET_ALEN], unsigned *n,
		       bool *overflow)
{
	uint32_t entries;

	if (!read_at(req, *off, &entries, sizeof(entries)))
		return false;
	entries = le32toh(entries);
	*off += sizeof(entries);
	*overflow = entries > NET_MAC_TABLE;
	*n = *overflow ? 0 : entries;
	if (!*overflow && *n && !read_at(req, *off, macs, *n * NET_ALEN))
		return false;
	*off += (size_t)entries * NET_ALEN;
	return *off <= vu_iov_size(req->iov, req->out);
}

static uint8_t ctrl_rx(struct net *n, uint8_t cmd, const struct vu_req *req)
{
	struct net_filter *f = &n->rings.filter;
	bool *flags[] = { &f->promisc, &f->allmulti, &f->alluni, &f->nomulti, &f->nouni, &f->nobcast };
	uint8_t on;

	if (cmd > RX_NOBCAST || !(n->acked & BIT(cmd <= RX_ALLMULTI ? F_CTRL_RX : F_CTRL_RX_EXTRA)) ||
	    !read_at(req, 2, &on, 1))
		return ACK_ERR;
	*flags[cmd] = on;
	return ACK_OK;
}

static uint8_t ctrl_mac(struct net *n, uint8_t cmd, const struct vu_req *req)
{
	struct net_filter *f = &n->rings.filter, t = *f;
	size_t off = 2;
	bool uni_over, multi_over;

	if (cmd == MAC_ADDR_SET) {
		uint8_t mac[NET_ALEN];
		if (!(n->acked & BIT(F_CTRL_MAC_ADDR)) || !read_at(req, 2, mac, NET_ALEN) || (mac[0] & 1))
			return ACK_ERR;
		memcpy(n->config.mac, mac, NET_ALEN);
		memcpy(f->mac, mac, NET_ALEN);
		return ACK_OK;
	}
	if (cmd != MAC_TABLE_SET || !(n->acked & BIT(F_CTRL_RX)) ||
	    !read_table(req, &off, t.uni, &t.nuni, &uni_over) ||
	    !read_table(req, &off, t.multi, &t.nmulti, &multi_over))
		return ACK_ERR;
	/* Overflowing a table opens the filter for that kind, as QEMU does. */
	t.alluni = uni_over;
	t.allmulti = multi_over;
	*f = t;
	return ACK_OK;
}

static uint8_t ctrl_command(struct net *n, const struct vu_req *req)
{
	uint8_t cls_cmd[2];
	uint16_t pairs;
	uint64_t offloads;

	if (!read_at(req, 0, cls_cmd, 2))
		return ACK_ERR;
	uint8_t cmd = cls_cmd[1];
	switch (cls_cmd[0]) {
	case C_RX:
		return ctrl_rx(n, cmd, req);
	case C_MAC:
		return ctrl_mac(n, cmd, req);
	case C_ANNOUNCE:
		if (cmd != 0 || !(n->acked & BIT(F_GUEST_ANNOUNCE)))
			return ACK_ERR;
		n->config.status &= ~S_ANNOUNCE;
		return ACK_OK;
	case C_MQ:
		if (cmd != 0 || !(n->acked & BIT(F_MQ)) || !read_at(req, 2, &pairs, 2) ||
		    le16toh(pairs) < 1 || le16toh(pairs) > n->max_pairs)
			return ACK_ERR;
		n->rings.pairs = le16toh(pairs);
		return ACK_OK;
	case C_GUEST_OFFLOADS:
		if (cmd != 0 || !(n->acked & BIT(F_CTRL_GUEST_OFFLOADS)) ||
		    !read_at(req, 2, &offloads, 8))
			return ACK_ERR;
		offloads = le64toh(offloads);
		if (offloads & ~(n->acked & (BIT(F_GUEST_CSUM) | BIT(F_GUEST_TSO4) | BIT(F_GUEST_TSO6) | BIT(F_GUEST_ECN))))
			return ACK_ERR;
		n->rings.port.offloads = guest_offloads(offloads);
		net_switch_changed(&n->rings.port);
		return ACK_OK;
	}
	return ACK_ERR;
}

static void ctrl_kick(struct net *n, struct vu_vring *vq)
{
	struct vu_req req = { .iov = n->ctrl_iov, .max_iov = CTRL_MAX_IOV };

	do {
		vu_vring_kicks(vq, false);
		while (vu_vring_pop(vq, &req) > 0) {
			if (!req.in || req.truncated) {
				vu_vring_fail(vq, "control request without room for its ack");
				return;
			}
			uint8_t ack = ctrl_command(n, &req);
			vu_iov_from_buf(req.iov + req.out, req.in, 0, &ack, 1);
			vu_vring_push(vq, &req, 1);
		}
		vu_vring_flush(vq);
	} while (!vq->broken && vu_vring_kicks(vq, true));
}

/* ---- rings ------------------------------------------------------------------ */

/*
 * Woken by kicks (no --poll-us), a transmit ring that just gave a burst is polled a
 * little longer before kicks are asked for again, as long as frames keep coming:
 * under load the next ones come sooner than a kick would, and every kick costs the
 * driver a system call and us a wake-up. At low rates (no bursts) nothing changes.
 */
#define BURST_MIN 8               /* requests in one run that make a burst */
#define BURST_POLL_NS 50000u      /* polled this long after the last frames of a burst */
#define POLLING_BUSY UINT64_MAX   /* idle_since: the last turn was busy */
_Static_assert(TX_BUDGET >= BURST_MIN, "a turn that used up its budget is busy");

/*
 * Whether a transmit ring is polled on: for window ns after its last busy turn.
 * *idle_since is 0 while it is not polled on (woken by kicks), POLLING_BUSY after a
 * busy turn, else when the first idle turn after that one began. The clock is read
 * on idle turns only: under load every turn is busy, and a clock read per burst was
 * ~4 % of the polled back-end's time (64-byte frames).
 */
static bool poll_on(uint64_t *idle_since, bool busy, uint64_t window)
{
	if (busy) {
		*idle_since = POLLING_BUSY;
		return true;
	}
	if (!*idle_since)
		return false;
	uint64_t now = now_ns();
	if (*idle_since == POLLING_BUSY)
		*idle_since = now;
	if (now - *idle_since < window)
		return true;
	*idle_since = 0;
	return false;
}

/* Runs a transmit ring; if it has more, or is polled, the poller runs it again on the next turn. */
static void tx_run(struct net *n, unsigned pair)
{
	struct vu_vring *vq = n->tx[pair];
	unsigned done = net_ring_tx(&n->rings, vq, TX_BUDGET);
	/* Polled (--poll-us): after any frames; woken by kicks: after a burst, while frames keep coming. */
	bool busy = n->poll_ns ? done > 0 : done >= BURST_MIN || (done && n->idle_since[pair]);
	bool more = poll_on(&n->idle_since[pair], busy, n->poll_ns ? n->poll_ns : BURST_POLL_NS);

	if (!more && !vq->broken)
		more = vu_vring_kicks(vq, true);
	if (more)
		n->tx_pending |= 1u << pair;
	else
		n->tx_pending &= ~(1u << pair);
	vu_poller_set(n->more, n->tx_pending);
}

static void run_pending(void *opaque)
{
	struct net *n = opaque;
	uint32_t pending = n->tx_pending;

	n->tx_pending = 0;
	for (unsigned pair = 0; pending; pair++, pending >>= 1)
		if ((pending & 1) && n->tx[pair])
			tx_run(n, pair);
	vu_poller_set(n->more, n->tx_pending);
}

static void net_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct net *n = (struct net *)dev;
	unsigned pair = vq->index / 2;
	/* Pairs come first, then the control queue: after pair 0 unless MQ was negotiated. */
	unsigned data_queues = n->acked & BIT(F_MQ) ? 2 * n->max_pairs : 2;

	if (vq->index == data_queues && (n->acked & BIT(F_CTRL_VQ))) {
		ctrl_kick(n, vq);
	} else if (vq->index >= data_queues) {
		vu_vring_fail(vq, "ring beyond the negotiated queue pairs");
	} else if (vq->index % 2 == 0) {
		/* A receive ring is filled when frames come; its kicks are not needed. */
		n->rings.rx[pair] = vq;
		vu_vring_kicks(vq, false);
	} else {
		n->tx[pair] = vq;
		tx_run(n, pair);
	}
}

static void net_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct net *n = (struct net *)dev;
	unsigned pair = vq->index / 2;

	if (pair >= NET_MAX_PAIRS)
		return;
	if (n->rings.rx[pair] == vq)
		n->rings.rx[pair] = NULL;
	if (n->tx[pair] == vq) {
		n->tx[pair] = NULL;
		n->tx_pending &= ~(1u << pair);
		n->idle_since[pair] = 0;
		vu_poller_set(n->more, n->tx_pending);
	}
}

static int net_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct net *n = (struct net *)dev;
	struct net_config c = n->config;

	c.status = htole16(c.status);
	c.max_virtqueue_pairs = htole16(c.max_virtqueue_pairs);
	c.mtu = htole16(c.mtu);
	memcpy(buf, (uint8_t *)&c + offset, len);
	return 0;
}

/*
 * After a migration the front-end asks us to make the switch (and the LAN) learn the
 * guest's MAC: a RARP from it to every other port. QEMU asks only for guests without
 * GUEST_ANNOUNCE (it runs the announcement itself for the others, on its own control
 * queue); a front-end that gives us the control queue of a driver with GUEST_ANNOUNCE
 * also gets the driver asked to announce every address it has (S_ANNOUNCE, acked on
 * the control queue).
 */
static int net_send_rarp(struct vu_dev *dev, const uint8_t mac[6])
{
	struct net *n = (struct net *)dev;
	uint8_t f[60] = { 0 };

	if ((n->acked & BIT(F_GUEST_ANNOUNCE)) && (n->acked & BIT(F_CTRL_VQ)) && (n->acked & BIT(F_STATUS))) {
		n->config.status |= S_ANNOUNCE;
		vu_dev_config_changed(dev);
	}

	memset(f, 0xff, NET_ALEN);
	memcpy(f + 6, mac, NET_ALEN);
	f[12] = 0x80, f[13] = 0x35;           /* RARP */
	f[15] = 1;                            /* Ethernet */
	f[16] = 0x08;                         /* IPv4 */
	f[18] = NET_ALEN, f[19] = 4;
	f[21] = 3;                            /* reverse request */
	memcpy(f + 22, mac, NET_ALEN);
	memcpy(f + 32, mac, NET_ALEN);
	net_ring_inject(&n->rings, f, sizeof(f));
	return 0;
}

static int net_set_mtu(struct vu_dev *dev, uint16_t mtu)
{
	((struct net *)dev)->config.mtu = mtu;
	return 0;
}

/*
 * Confined, frames move between rings and the tap's fd with calls proto allows;
 * a tap's offloads follow the guests' (TUNSETOFFLOAD). A switch without a tap
 * needs no network at all: only with one does it stay in the host's network
 * namespace (the interface it brought up lives there).
 */
static const struct vu_syscall net_syscalls[] = {
	VU_SYSCALL_IF(ioctl, 1, TUNSETOFFLOAD),
	VU_SYSCALL_END,
};

static void net_sandbox(const struct vu_dev *dev, struct vu_sandbox_needs *needs)
{
	const struct net *n = (const struct net *)dev;

	needs->host_net = n->tap_name || n->tap_fd >= 0;
}

static const char *const net_aliases[] = { "network", NULL };

const struct vu_device_type vu_dev_net = {
	.name = "net",
	.aliases = net_aliases,
	.schema_type = "net",
	.summary = "virtio-net ports of a learning switch, with an optional tap uplink",
	.qemu_args = "-netdev vhost-user,id=net0,chardev=vu0 -device virtio-net-pci,netdev=net0",
	.virtio_id = 1,
	.num_queues = 3,
	.features = BIT(F_CSUM) | BIT(F_GUEST_CSUM) | BIT(F_CTRL_GUEST_OFFLOADS) | BIT(F_MTU) |
		    BIT(F_MAC) | BIT(F_GUEST_TSO4) | BIT(F_GUEST_TSO6) | BIT(F_GUEST_ECN) |
		    BIT(F_HOST_TSO4) | BIT(F_HOST_TSO6) | BIT(F_HOST_ECN) | BIT(F_MRG_RXBUF) |
		    BIT(F_STATUS) | BIT(F_CTRL_VQ) | BIT(F_CTRL_RX) | BIT(F_CTRL_RX_EXTRA) |
		    BIT(F_GUEST_ANNOUNCE) | BIT(F_MQ) | BIT(F_CTRL_MAC_ADDR) | BIT(F_ANY_LAYOUT) |
		    /* Every ring's requests are completed in the order they were taken. */
		    BIT(VIRTIO_F_IN_ORDER),
	.config_size = sizeof(struct net_config),
	.options = net_options,
	.create = net_create,
	.init = net_init,
	.kick = net_kick,
	.queue_drain = net_queue_drain,
	.get_config = net_get_config,
	.set_features = net_set_features,
	.reset = net_reset,
	.destroy = net_destroy,
	.send_rarp = net_send_rarp,
	.set_mtu = net_set_mtu,
	.syscalls = net_syscalls,
	.sandbox = net_sandbox,
};
