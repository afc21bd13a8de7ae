/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-vsock, shared between its files, lowest layer last:
 *
 *   dev/vsock.c       the vhost-user device: options, config space, which ring does
 *                     what, resets and restarts, several VMs and their groups
 *   dev/vsock-pkt.c   the packet state machine: packets from the guest (transmit
 *                     ring), packets to it (receive ring), credit both ways, what
 *                     waits for receive buffers
 *   dev/vsock-host.c  the host side: unix sockets (the listener at --uds-path and its
 *                     "CONNECT <port>" line, connections to <uds-path>_<port>), moving
 *                     bytes between them and guest buffers
 *   dev/vsock-conn.c  connections: the table by ports, lists, buffers, freeing
 *   dev/vsock-group.c sibling VMs (--group): packets relayed from guest to guest
 *
 * Everything runs on the main loop; nothing here is thread-safe.
 *
 * A connection's bytes move without a copy of our own where they can: host to guest,
 * readv() from the unix socket straight into the receive buffer; guest to host,
 * writev() from the transmit buffer straight into the socket. Only what a host
 * reader has not taken yet is copied, into the connection's buffer, which is as large
 * as the credit we give the guest (buf_alloc): a peer that stops reading stalls its
 * own connection, never the others, and never grows memory.
 */
#ifndef VU_DEV_VSOCK_H
#define VU_DEV_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto/device.h"
#include "proto/listen.h"
#include "proto/vring.h"

/* ---- the wire (virtio 1.3, 5.10), little endian ---- */

#define VSOCK_CID_HOST 2
#define VSOCK_CID_MAX 0xfffffffeu      /* Linux keeps CIDs in 32 bits; U32_MAX is "any" */

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));
#define VSOCK_HDR_LEN 44u

enum { VSOCK_TYPE_STREAM = 1, VSOCK_TYPE_SEQPACKET = 2 };
enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
enum { VSOCK_SHUTDOWN_RCV = 1, VSOCK_SHUTDOWN_SEND = 2 };
#define VSOCK_EVENT_TRANSPORT_RESET 0u

enum { VSOCK_RXQ = 0, VSOCK_TXQ = 1, VSOCK_EVQ = 2, VSOCK_NUM_QUEUES = 3 };

/* ---- limits ---- */

#define VSOCK_MAX_IOV 64              /* segments of one packet we look at */
#define VSOCK_MAX_PKT 65536u          /* payload of one packet we send */
#define VSOCK_BATCH 64                /* packets one readv fills (Linux's 4 KiB buffers: 256 KiB), or one writev takes */
#define VSOCK_BATCH_BYTES (256u * 1024) /* bytes one readv asks for at most */
#define VSOCK_SLICES 256              /* segments of one batched readv or writev */
#define VSOCK_RSTQ 256                /* RSTs for packets without a connection, not yet sent */
#define VSOCK_LINE_MAX 32             /* "CONNECT 4294967295\n", "OK 4294967295\n" */
#define VSOCK_PUMP_BUDGET 16          /* packets one connection sends per turn of the loop */
#define VSOCK_REQUEST_TIMEOUT_MS 10000 /* a guest that neither accepts nor refuses */
#define VSOCK_DIAL_TIMEOUT_MS 2000    /* a host listener whose backlog stays full (Linux's connect timeout) */
#define VSOCK_TICK_MS 20              /* timers: retries and timeouts */
#define VSOCK_LOCAL_PORT_FIRST (1u << 30) /* host ports we pick for host-initiated connections */

/* ---- connections ---- */

struct vsock_link {
	struct vsock_link *prev, *next;
};

enum vsock_conn_state {
	CONN_LINE,      /* a host client of --uds-path; its "CONNECT <port>\n" line is being read */
	CONN_REQUEST,   /* we ask the guest (REQUEST owed or sent) and wait for its answer */
	CONN_DIALING,   /* the guest asked; the host listener's backlog was full, we retry */
	CONN_OPEN,      /* established */
	CONN_DEAD,      /* the host side is closed; the connection waits to send its RST */
};

/* Control packets a connection owes the guest, sent in this order as receive buffers come. */
enum {
	OWE_REQUEST = 1,
	OWE_RESPONSE = 2,
	OWE_CREDIT_UPDATE = 4,
	OWE_CREDIT_REQUEST = 8,
	OWE_SHUTDOWN = 16,
	OWE_RST = 32,
};

/* Bytes from the guest the host socket has not taken yet: a ring of buf_alloc bytes. */
struct vsock_buf {
	uint8_t *data;          /* allocated when first needed, kept for the connection's life */
	uint32_t size;
	uint32_t head;          /* where the oldest byte is */
	uint32_t len;
};

struct vsock;

struct vsock_conn {
	struct vsock *v;
	int fd;                 /* the host's unix socket, -1 once closed */
	uint32_t events;        /* what the loop watches on fd */
	bool watched;           /* fd is on the loop (a hung-up socket is not: see hup) */
	bool hup;               /* the loop said HUP/ERR: no more events, we read and write it directly */
	bool in_table;
	bool guest_knows;       /* the guest has seen a packet of this connection */
	uint8_t state;          /* enum vsock_conn_state */
	uint8_t owe;            /* OWE_* */
	uint8_t owe_shutdown;   /* flags of the SHUTDOWN owed */
	uint32_t local_port;    /* the host side's port (CID 2) */
	uint32_t peer_port;     /* the guest's port */

	/* guest -> host */
	uint32_t buf_alloc;     /* the credit we give: the size of buf */
	uint32_t rx_cnt;        /* bytes the guest sent us */
	uint32_t fwd_cnt;       /* ... of which the host socket took */
	uint32_t fwd_cnt_sent;  /* fwd_cnt the guest last heard of */
	struct vsock_buf buf;
	bool guest_shut_send;   /* the guest sent SHUTDOWN(SEND): EOF to the host once buf is empty */
	bool guest_shut_recv;   /* the guest sent SHUTDOWN(RCV): we stop reading the host */
	bool host_wr_shut;      /* we shut the host socket's write side */

	/* host -> guest */
	uint32_t tx_cnt;        /* bytes we sent the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool credit_asked;      /* a CREDIT_REQUEST went out since credit ran out */
	bool host_eof;          /* the host socket read end-of-file */

	/* The line to the host client ("OK <port>\n"), or the one read from it. */
	char line[VSOCK_LINE_MAX];
	uint8_t line_len, line_off;

	int64_t deadline_ms;    /* CONN_REQUEST, CONN_DIALING: give up then */
	struct vsock_conn *hnext;       /* hash chain */
	struct vsock_link all;          /* every connection of the device */
	struct vsock_link wait;         /* waiting for receive buffers (on v->waiting) */
	struct vsock_link timed;        /* has a deadline (on v->timed) */
	struct vsock_link gone;          /* released, freed at the end of the turn (on v->released) */
	bool waiting, is_timed, released;
};

/* ---- the device ---- */

struct vsock_stats {
	uint64_t conns, refused, resets_sent, dropped, bytes_in, bytes_out, relayed;
};

struct vsock {
	struct vu_dev dev;
	/* options */
	unsigned guest_cid;
	const char *uds_path;
	uint64_t buf_size;          /* --buffer-size: buf_alloc of each connection */
	unsigned max_conns;
	const char *group;

	struct vu_loop *loop;
	struct vu_listener listener;
	bool listening;             /* the listener is on the loop (off while at the limit) */
	struct vu_timer *tick;
	bool ticking;
	struct vu_timer *relisten;  /* accept() ran out of fds: listen again later */
	struct vu_timer *later;     /* vsock_later() */
	bool up;                    /* a front-end gave guest memory */

	/* Rings the session gave us (kicked), NULL when stopped. */
	struct vu_vring *rx, *tx, *evq;
	bool rx_pushed;             /* pushes to publish */
	bool tx_stalled;            /* the RST queue was full: transmit ring left for later */
	uint16_t left_at[2];        /* rx, tx: where each ring was when it last paused or stopped ... */
	bool paused[2];             /* ... and whether it has not run since */
	bool evq_reset_owed;        /* TRANSPORT_RESET to post on the event queue */
	bool in_tx;                 /* the transmit ring is being processed */

	/* Connections: hash of (local_port, peer_port), lists. */
	struct vsock_conn **table;
	unsigned table_mask;
	unsigned nconns;
	struct vsock_link all, waiting, timed, released;
	uint32_t next_local_port;

	/* RSTs for packets that have no connection (headers as sent). */
	struct vsock_hdr rstq[VSOCK_RSTQ];
	unsigned rstq_head, rstq_n;

	/*
	 * Scratch, no allocation per packet: a batch of requests each way. Receive buffers
	 * a readv fills at once; transmit packets of one connection whose data a writev
	 * takes at once (the run), pushed after it.
	 */
	struct vu_req rx_req[VSOCK_BATCH], tx_req[VSOCK_BATCH], ev_req;
	struct iovec rx_iov[VSOCK_BATCH][VSOCK_MAX_IOV], tx_iov[VSOCK_BATCH][VSOCK_MAX_IOV], ev_iov[4];
	struct iovec slice[VSOCK_SLICES + 2];   /* a connection's buffer (2), then packets */
	struct vsock_conn *run_c;
	unsigned run_n;
	uint32_t run_len[VSOCK_BATCH];

	/* Sibling VMs (dev/vsock-group.c): packets for our guest that wait for its buffers. */
	uint8_t *relayq;
	uint32_t relayq_size, relayq_head, relayq_len;
	bool relay_touched;             /* a sibling put packets in our receive ring */
	struct vsock *stalled_on;       /* our transmit ring waits for this sibling's queue */

	struct vsock_stats stats;
	struct vsock *next_instance;    /* every device of the process (groups, checks) */
};

/* Every vsock device of the process. */
extern struct vsock *vsock_instances;
/* Runs v's rings again on the next turn of the loop (not from inside another device's work). */
void vsock_later(struct vsock *v);

/* ---- lists (dev/vsock-conn.c) ---- */

static inline void vsock_list_init(struct vsock_link *l)
{
	l->prev = l->next = l;
}

static inline bool vsock_list_empty(const struct vsock_link *l)
{
	return l->next == l;
}

static inline void vsock_list_add_tail(struct vsock_link *head, struct vsock_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static inline void vsock_list_add_head(struct vsock_link *head, struct vsock_link *l)
{
	vsock_list_add_tail(head->next, l);
}

static inline void vsock_list_del(struct vsock_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = l;
}

#define vsock_container(ptr, type, member) ((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

/* ---- connections (dev/vsock-conn.c) ---- */

int vsock_conns_init(struct vsock *v);
/* A new connection on host socket fd (watched by the caller); NULL at the limit or out of memory. */
struct vsock_conn *vsock_conn_new(struct vsock *v, int fd, enum vsock_conn_state state);
struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local_port, uint32_t peer_port);
/* Enters c into the table under its ports (which no other connection has). */
int vsock_conn_insert(struct vsock_conn *c);
/* A host port for a connection to the guest's peer_port that no other uses. */
uint32_t vsock_conn_pick_port(struct vsock *v, uint32_t peer_port);
/*
 * Ends c: closes the host socket, takes it out of the table and every list. The memory
 * stays until vsock_conns_reap() at the end of the turn, so no caller up the stack
 * holds a freed pointer; a released connection does nothing more.
 */
void vsock_conn_release(struct vsock_conn *c);
/* Closes the host socket, keeping the connection (CONN_DEAD: it still owes the guest an RST). */
void vsock_conn_close_host(struct vsock_conn *c);
/* Frees what was released. */
void vsock_conns_reap(struct vsock *v);
/*
 * Releases every connection the guest knows about (and, unless keep_lines, the host
 * clients still sending their line), and the RSTs not sent yet. Returns how many the
 * guest knew about.
 */
unsigned vsock_conns_drop(struct vsock *v, bool keep_lines);
void vsock_conns_fini(struct vsock *v);
void vsock_conn_set_deadline(struct vsock_conn *c, int64_t deadline_ms);
/* Bytes the connection's buffer holds / can take. */
static inline uint32_t vsock_buf_free(const struct vsock_conn *c)
{
	return c->buf.size - c->buf.len;
}
int vsock_buf_put(struct vsock_conn *c, const struct iovec *iov, unsigned n, size_t off, size_t len);
/* The buffer's bytes as at most two iovecs. */
unsigned vsock_buf_iov(const struct vsock_conn *c, struct iovec iov[2]);
void vsock_buf_take(struct vsock_conn *c, uint32_t n);
int64_t vsock_now_ms(void);

/* ---- the packet state machine (dev/vsock-pkt.c) ---- */

/* The transmit ring has packets: every one is handled now (or the ring is left for later, see tx_stalled). */
void vsock_pkt_tx(struct vsock *v);
/* The receive ring has buffers: sends what waits for them. */
void vsock_pkt_rx(struct vsock *v);
/* Posts TRANSPORT_RESET on the event queue if one is owed and a buffer is there. */
void vsock_pkt_event(struct vsock *v);
/*
 * Sends what c owes the guest and, when its host socket is readable (or hung up), what
 * the socket has for the guest, as credit and receive buffers allow; then puts the
 * socket's watch in line.
 */
void vsock_conn_progress(struct vsock_conn *c, bool readable);
/* Aborts c: the guest is told (RST) if it knows about c, the host side is closed. why: for --verbose. */
void vsock_conn_reset(struct vsock_conn *c, const char *why, ...) __attribute__((format(printf, 2, 3)));
/* The guest may have been told less credit than it now has: tells it if that matters. */
void vsock_conn_credit_changed(struct vsock_conn *c);
/* Frees c when both directions are over (after the RST that ends it). */
void vsock_conn_check_done(struct vsock_conn *c);
/* Credit the guest gives us now. */
uint32_t vsock_peer_free(const struct vsock_conn *c);
/* At the end of every entry point: publish receive-ring pushes, retry what waits. */
void vsock_settle(struct vsock *v);
/* Takes a receive buffer of v into slot i: true with *room (bytes after the header), false if none now. */
bool vsock_rx_get(struct vsock *v, unsigned i, size_t *room);
/* Writes h into slot i's buffer, with len bytes of data already after it, and pushes it. */
void vsock_rx_put(struct vsock *v, unsigned i, const struct vsock_hdr *h, uint32_t len);

/* ---- sibling VMs (dev/vsock-group.c) ---- */

int vsock_group_init(struct vsock *v);
void vsock_group_fini(struct vsock *v);
/* v's sibling with that CID, or NULL. */
struct vsock *vsock_group_find(struct vsock *v, uint64_t cid);
enum { VSOCK_RELAY_DONE, VSOCK_RELAY_REFUSED, VSOCK_RELAY_FULL };
/* A packet (h, len bytes of data in req) from v's guest for sib's: DONE, REFUSED (sib has no front-end), FULL (wait). */
int vsock_group_relay(struct vsock *v, struct vsock *sib, const struct vsock_hdr *h, const struct vu_req *req,
		      uint32_t len);
/* Puts what siblings queued for v into its receive buffers; senders held up by it go on. */
void vsock_group_drain(struct vsock *v);
/* After v's turn: siblings it relayed to publish their receive rings. */
void vsock_group_settle(struct vsock *v);
/* v's front-end left: what waits for its guest is dropped; its senders go on (refused from now). */
void vsock_group_down(struct vsock *v);

/* ---- the host side (dev/vsock-host.c) ---- */

int vsock_host_listen(struct vsock *v);
void vsock_host_unlisten(struct vsock *v);
/* A connection went: a listener held back at the connection limit listens again. */
void vsock_host_room(struct vsock *v);
/*
 * The guest asked (req) for host port local_port from its peer_port: connects to
 * <uds-path>_<local_port>. False when no connection could be made at all (the limit):
 * the caller refuses the request.
 */
bool vsock_host_dial(struct vsock *v, uint32_t local_port, uint32_t peer_port, const struct vsock_hdr *req);
/* A CONN_DIALING connection tries again; false when it is still waiting. */
bool vsock_host_redial(struct vsock_conn *c);
/* The guest accepted a host client's connection: tell the client "OK <port>". */
void vsock_host_accepted(struct vsock_conn *c);
/* Bytes from the guest: len of them at off in a request's n iovecs. */
struct vsock_piece {
	const struct iovec *iov;
	unsigned n;
	size_t off, len;
};
/* The pieces, in order, go to the host socket (or c's buffer); false: c was reset. */
bool vsock_host_write(struct vsock_conn *c, const struct vsock_piece *p, unsigned np);
/* Writes what c holds for the host socket (its line, then its buffer). */
void vsock_host_flush(struct vsock_conn *c);
/* Puts the socket's watch in line with what c wants (reading needs credit, writing something to write). */
void vsock_host_update(struct vsock_conn *c);
/* The guest shut a direction: the host socket follows. */
void vsock_host_shutdown(struct vsock_conn *c);
/*
 * Reads from the host socket into iov (the receive buffer's payload part); returns the
 * bytes read, 0 at end of file, -1 with errno (EAGAIN: nothing now).
 */
ssize_t vsock_host_read(struct vsock_conn *c, const struct iovec *iov, unsigned n);

#endif
