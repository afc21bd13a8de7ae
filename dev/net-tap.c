/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tap interface as a switch port: the guests' way into the host's networking.
 * The tap carries a virtio-net header (IFF_VNET_HDR), so checksum and TSO
 * offloads pass through untouched both ways; what the kernel may hand up
 * (TUNSETOFFLOAD) is what every guest on the switch negotiated.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dev/net.h"
#include "proto/log.h"
#include "proto/loop.h"

#define READ_BATCH 64           /* frames read per wakeup before the switch flushes */

struct tap {
	struct net_port port;
	char name[IFNAMSIZ];
	int fd;
	unsigned users;
	unsigned offloads;          /* NET_OFF_* the kernel may hand up */
	struct vu_loop *loop;
	struct tap *next;
	uint8_t buf[NET_HDR_LEN + NET_MAX_FRAME];
};

static struct tap *taps;

static void tap_write(struct tap *t, const struct net_pkt *pkt)
{
	struct net_hdr h = pkt->hdr;
	struct iovec iov[1 + NET_TX_MAX_IOV];

	if (pkt->niov > NET_TX_MAX_IOV) {
		t->port.stats.rx_dropped++;
		return;
	}
	h.num_buffers = 0;
	iov[0] = (struct iovec){ &h, NET_HDR_LEN };
	memcpy(iov + 1, pkt->iov, pkt->niov * sizeof(*iov));
	if (writev(t->fd, iov, 1 + pkt->niov) < 0)
		t->port.stats.rx_dropped++; /* the interface is down or its queue is full */
	else
		t->port.stats.rx++;
}

static void tap_deliver(struct net_port *p, const struct net_pkt *const *pkts, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		tap_write((struct tap *)p, pkts[i]);
}

/* Lets the kernel hand up only the offloads every guest can take. */
static void tap_peers_changed(struct net_port *p)
{
	struct tap *t = (struct tap *)p;
	unsigned off = net_switch_peer_offloads(p), tun = 0;

	if (off & NET_OFF_CSUM) {
		tun |= TUN_F_CSUM;
		tun |= off & NET_OFF_TSO4 ? TUN_F_TSO4 : 0;
		tun |= off & NET_OFF_TSO6 ? TUN_F_TSO6 : 0;
		tun |= off & NET_OFF_ECN && off & (NET_OFF_TSO4 | NET_OFF_TSO6) ? TUN_F_TSO_ECN : 0;
	}
	if (tun == t->offloads)
		return;
	if (ioctl(t->fd, TUNSETOFFLOAD, tun) < 0)
		vu_warn("tap %s: cannot set offloads %#x: %s", t->name, tun, strerror(errno));
	else
		t->offloads = tun;
}

static const struct net_port_ops tap_ops = {
	.deliver = tap_deliver,
	.peers_changed = tap_peers_changed,
};

static void on_readable(void *opaque, int fd, uint32_t events)
{
	struct tap *t = opaque;

	for (unsigned i = 0; i < READ_BATCH; i++) {
		ssize_t n = read(fd, t->buf, sizeof(t->buf));
		if (n < 0)
			break;
		if ((size_t)n < NET_HDR_LEN + NET_ETH_HLEN) {
			t->port.stats.tx_errors++;
			continue;
		}
		struct iovec iov = { t->buf + NET_HDR_LEN, n - NET_HDR_LEN };
		struct net_pkt pkt = { .iov = &iov, .niov = 1, .len = iov.iov_len };
		memcpy(&pkt.hdr, t->buf, NET_HDR_LEN);
		memcpy(pkt.addrs, iov.iov_base, sizeof(pkt.addrs));
		t->port.stats.tx++;
		net_switch_forward(&t->port, &pkt, 1);
	}
	net_switch_flush();
}

/* Brings an interface we opened by name up; one the caller passed is theirs to manage. */
static void set_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0))
		vu_warn("tap %s: cannot bring it up: %s", name, strerror(errno));
	if (s >= 0)
		close(s);
}

static int open_tap(struct tap *t, const char *ifname, int tap_fd)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr_len = NET_HDR_LEN;

	if (tap_fd >= 0) {
		if (fcntl(tap_fd, F_GETFD) < 0) {
			vu_err("--tap-fd=%d is not an open file descriptor", tap_fd);
			return -1;
		}
		t->fd = tap_fd;
		if (ioctl(t->fd, TUNGETIFF, &ifr) < 0 || !(ifr.ifr_flags & IFF_TAP) ||
		    !(ifr.ifr_flags & IFF_VNET_HDR)) {
			vu_err("--tap-fd=%d is not a tap opened with IFF_VNET_HDR", tap_fd);
			return -1;
		}
		int fl = fcntl(t->fd, F_GETFL);
		if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) < 0)
			return -1;
	} else {
		t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
		if (t->fd < 0 || ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
			vu_err("cannot open tap %s: %s", ifname, strerror(errno));
			return -1;
		}
	}
	memcpy(t->name, ifr.ifr_name, IFNAMSIZ);
	t->name[IFNAMSIZ - 1] = 0;
	if (ioctl(t->fd, TUNSETVNETHDRSZ, &hdr_len) < 0 || ioctl(t->fd, TUNSETOFFLOAD, 0) < 0) {
		vu_err("tap %s: cannot set up its virtio-net header: %s", t->name, strerror(errno));
		return -1;
	}
	if (tap_fd < 0)
		set_up(t->name);
	return 0;
}

struct net_port *net_tap_get(const char *ifname, int tap_fd, struct vu_loop *loop)
{
	for (struct tap *t = taps; t; t = t->next)
		if (tap_fd >= 0 ? t->fd == tap_fd : !strncmp(t->name, ifname, IFNAMSIZ - 1)) {
			t->users++;
			return &t->port;
		}
	struct tap *t = calloc(1, sizeof(*t));
	if (!t) {
		vu_err("out of memory");
		return NULL;
	}
	t->port.ops = &tap_ops;
	t->port.offloads = NET_OFF_CSUM | NET_OFF_TSO4 | NET_OFF_TSO6 | NET_OFF_ECN;
	t->loop = loop;
	t->fd = -1;
	if (open_tap(t, ifname, tap_fd) < 0 || net_switch_attach(&t->port) < 0 ||
	    vu_loop_watch(loop, t->fd, EPOLLIN, on_readable, t) < 0) {
		net_switch_detach(&t->port);
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		return NULL;
	}
	t->users = 1;
	t->port.up = true;
	t->next = taps;
	taps = t;
	tap_peers_changed(&t->port);
	net_switch_changed(&t->port);
	return &t->port;
}

void net_tap_put(struct net_port *p)
{
	struct tap *t = (struct tap *)p;

	if (--t->users)
		return;
	for (struct tap **pp = &taps; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	vu_info("tap %s: sent %llu, received %llu, dropped %llu, bad %llu", t->name,
		(unsigned long long)p->stats.tx, (unsigned long long)p->stats.rx,
		(unsigned long long)p->stats.rx_dropped, (unsigned long long)p->stats.tx_errors);
	vu_loop_unwatch(t->loop, t->fd);
	net_switch_detach(p);
	close(t->fd);
	free(t);
}
