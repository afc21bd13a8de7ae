/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-net, shared between its files: dev/net.c (the vhost-user device: options,
 * features, config space, control queue), dev/net-ring.c (its data path: transmit
 * rings in, receive rings out), dev/net-switch.c (the learning switch that joins
 * every port of the process) and dev/net-tap.c (the host's tap interface as a port).
 */
#ifndef VU_DEV_NET_H
#define VU_DEV_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/vring.h"

#define NET_ALEN 6
#define NET_ETH_HLEN 14
#define NET_MAX_FRAME (65535 + NET_ETH_HLEN + 4)   /* a GSO frame with a VLAN tag */
#define NET_MAX_PAIRS 16
#define NET_MAC_TABLE 64                           /* CTRL_MAC_TABLE_SET entries kept per kind */

/* The virtio-net header (virtio 1.2, 5.1.6), little endian; legacy drivers without
 * MRG_RXBUF use its first 10 bytes. */
struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define NET_HDR_LEN 12u
#define NET_HDR_LEN_LEGACY 10u
enum { NET_HDR_F_NEEDS_CSUM = 1, NET_HDR_F_DATA_VALID = 2 };
enum { NET_GSO_NONE = 0, NET_GSO_TCPV4 = 1, NET_GSO_UDP = 3, NET_GSO_TCPV6 = 4, NET_GSO_ECN = 0x80 };

/* Offloads: which headers a port may be given (receive) or may send (transmit). */
enum { NET_OFF_CSUM = 1, NET_OFF_TSO4 = 2, NET_OFF_TSO6 = 4, NET_OFF_ECN = 8 };

/* A frame passing through the switch: its header and its bytes where they lie. */
struct net_pkt {
	struct net_hdr hdr;        /* num_buffers unused */
	const struct iovec *iov;   /* the frame, from its destination MAC on */
	unsigned niov;
	size_t len;
	union {
		struct {
			uint8_t dst[NET_ALEN], src[NET_ALEN];
		};
		uint8_t addrs[2 * NET_ALEN]; /* both, as the frame starts: copied at once */
	};
	unsigned queue;            /* the source's queue pair: picks the destination's */
};

#define NET_DEFAULT_AGEING 300     /* seconds a learned MAC is kept, as 802.1D suggests */
#define NET_BURST 32               /* frames the switch forwards at once: one transmit batch */

struct net_port;
struct net_port_ops {
	/* Copies the frames its filter takes into the port, in order; a full ring drops (counted). */
	void (*deliver)(struct net_port *p, const struct net_pkt *const *pkts, unsigned n);
	/* Publishes what deliver() added since the last flush (one used-ring update); optional. */
	void (*flush)(struct net_port *p);
	/* Another port came, went or changed its offloads (NULL: not interested). */
	void (*peers_changed)(struct net_port *p);
};

struct net_stats {
	uint64_t rx, tx;           /* frames delivered to / sent by the port */
	uint64_t rx_dropped;       /* no room (full or absent ring), or an offload it lacks */
	uint64_t tx_errors;        /* malformed frames or headers from the port */
};

struct net_port {
	const struct net_port_ops *ops;
	unsigned offloads;         /* NET_OFF_* this port takes in headers given to it */
	bool up;                   /* a driver is there to receive */
	bool dirty;                /* delivered to since the last flush */
	struct net_port *next_dirty;
	/* The frames of the burst being forwarded that go here (dev/net-switch.c). */
	const struct net_pkt *queued[NET_BURST];
	unsigned nqueued;
	struct net_port *next_queued;
	unsigned id;               /* slot on the switch, 0 when not attached */
	struct net_stats stats;
};

/* ---- the switch (dev/net-switch.c): one per process ---- */

int net_switch_attach(struct net_port *p);
void net_switch_detach(struct net_port *p);
/* The port's driver left or reset: forget which MACs were behind it. */
void net_switch_forget(struct net_port *p);
/* Tells the other ports that p came up, went down or changed its offloads. */
void net_switch_changed(struct net_port *p);
/* Offloads every up port other than p takes. */
unsigned net_switch_peer_offloads(const struct net_port *p);
/*
 * Learns where each frame's source is and hands it to its destination: the port its
 * MAC was learned on, else every other port (broadcast, multicast, unknown or aged
 * out). n <= NET_BURST; each destination gets its share of the burst in one call.
 */
void net_switch_forward(struct net_port *from, const struct net_pkt *pkts, unsigned n);
/* Ends a batch: every port forwarded to publishes what it received. */
void net_switch_flush(void);
void net_switch_set_ageing(unsigned seconds);

/* ---- a vhost-user port's data path (dev/net-ring.c) ---- */

/* What the driver lets in (CTRL_RX, CTRL_MAC); without a control queue, everything. */
struct net_filter {
	bool promisc, allmulti, alluni, nomulti, nouni, nobcast;
	uint8_t mac[NET_ALEN];
	unsigned nuni, nmulti;
	uint8_t uni[NET_MAC_TABLE][NET_ALEN], multi[NET_MAC_TABLE][NET_ALEN];
};

#define NET_RX_MAX_BUFS 64         /* buffers one frame may take (MRG_RXBUF) */
#define NET_RX_MAX_IOV 256
/* Receive scratch: room for a burst of small frames, and always for one of the largest. */
#define NET_RX_SCRATCH_BUFS (NET_BURST + NET_RX_MAX_BUFS)
#define NET_RX_SCRATCH_IOV (2 * NET_BURST + NET_RX_MAX_IOV)
#define NET_TX_MAX_IOV 64

/* A frame of a burst being received, and the buffers taken for it in the scratch. */
struct net_rx_slot {
	const struct net_pkt *pkt;
	struct vu_vring *vq;
	unsigned req, nbufs;       /* rx_req[req .. req + nbufs) */
	unsigned iov, niov;        /* rx_iov[iov .. iov + niov) */
};

struct net_rings {
	struct net_port port;
	unsigned hdr_len;          /* NET_HDR_LEN or NET_HDR_LEN_LEGACY */
	bool mrg_rxbuf;
	unsigned tx_offloads;      /* NET_OFF_* the driver may send (CSUM, HOST_TSO*) */
	unsigned pairs;            /* queue pairs in use */
	struct vu_vring *rx[NET_MAX_PAIRS];  /* started receive rings */
	struct net_filter filter;
	/* Scratch (everything runs on the main loop): a burst of transmit requests and their
	 * frames, and the buffers taken for a burst of received frames. */
	struct vu_req tx_req[NET_BURST];
	struct iovec tx_iov[NET_BURST][NET_TX_MAX_IOV];
	struct net_pkt tx_pkt[NET_BURST];
	struct net_rx_slot rx_slot[NET_BURST];
	struct vu_req rx_req[NET_RX_SCRATCH_BUFS];
	uint32_t rx_len[NET_RX_SCRATCH_BUFS]; /* what each of rx_req holds once filled */
	struct iovec rx_iov[NET_RX_SCRATCH_IOV];
	/*
	 * Receive buffers popped ahead for the next frames of a burst (one iovec each)
	 * from ahead_vq: they lie where the next frame's buffers go in rx_req and rx_iov,
	 * and stay there, as each frame takes the first of them and is given its place
	 * after the last it took.
	 */
	struct vu_vring *ahead_vq;
	unsigned ahead;
};

extern const struct net_port_ops net_ring_ops;

/* Takes up to budget frames off a transmit ring into the switch; returns how many. */
unsigned net_ring_tx(struct net_rings *r, struct vu_vring *vq, unsigned budget);
/* Sends a frame the device makes itself (RARP) as if the driver had sent it. */
void net_ring_inject(struct net_rings *r, const void *frame, size_t len);
bool net_filter_accepts(const struct net_filter *f, const uint8_t *dst);

/* ---- the tap uplink (dev/net-tap.c) ---- */

struct vu_loop;
/*
 * The tap interface IFNAME (created if absent) or the tap fd (tap_fd >= 0) as a
 * port of the switch, with a virtio-net header. Ports naming the same interface
 * share it. NULL after logging why.
 */
struct net_port *net_tap_get(const char *ifname, int tap_fd, struct vu_loop *loop);
void net_tap_put(struct net_port *p);

#endif
