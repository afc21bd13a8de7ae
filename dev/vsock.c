/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-vsock (device id 19) as a hybrid vsock: guest programs use AF_VSOCK, host
 * programs plain unix sockets (dev/vsock-host.c), with no vhost_vsock module and no
 * privileges. Queue 0 takes packets to the guest, queue 1 brings packets from it
 * (dev/vsock-pkt.c), queue 2 carries events (QEMU keeps that one to itself; other
 * front-ends may give it to us). This file is the device around them: options, the
 * config space (guest_cid), resets, restarts and pauses. dev/vsock.h says what the
 * other files hold.
 *
 * Each --socket-path is one VM with its own --guest-cid and --uds-path, all on the one
 * loop of the process; VMs with the same --vm-group reach each other by CID
 * (dev/vsock-group.c).
 *
 * build: vsock.c vsock-pkt.c vsock-host.c vsock-conn.c vsock-group.c
 * systemd: ReadWritePaths=-/run/vhostbox
 * systemd: PrivateNetwork=yes
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: SystemCallFilter=@system-service
 */
#include <endian.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dev/vsock.h"
#include "proto/log.h"
#include "proto/loop.h"

#define DEFAULT_BUF_KIB 256     /* Linux's default buf_alloc */
#define DEFAULT_MAX_CONNS 16384

struct vsock_config {
	uint64_t guest_cid;
} __attribute__((packed));

struct vsock *vsock_instances;

#define VSOCK_FIELD(f) offsetof(struct vsock, f)
static const struct vu_option vsock_options[] = {
	{ .name = "guest-cid", .kind = VU_OPT_UINT, .offset = VSOCK_FIELD(guest_cid), .arg = "CID",
	  .help = "the guest's context id", .min = 3, .max = VSOCK_CID_MAX },
	{ .name = "uds-path", .kind = VU_OPT_PATH, .offset = VSOCK_FIELD(uds_path), .arg = "PATH",
	  .help = "host side: unix socket host programs connect to (\"CONNECT <port>\\n\"); a guest's "
		  "connection to port P reaches the listener at PATH_P (required)" },
	{ .name = "queue-size", .kind = VU_OPT_UINT, .offset = VSOCK_FIELD(dev.max_queue_size), .arg = "N",
	  .help = "largest queue (ring) size accepted", .min = 2, .max = VU_VRING_MAX_SIZE, .flags = VU_OPT_POW2 },
	{ .name = "buffer-size", .kind = VU_OPT_SIZE, .offset = VSOCK_FIELD(buf_size), .arg = "KIB",
	  .help = "per connection: bytes from the guest a host reader may leave unread (the credit given "
		  "to the guest)", .min = 4, .max = 65536, .unit = "KiB", .scale = 1024 },
	{ .name = "max-connections", .kind = VU_OPT_UINT, .offset = VSOCK_FIELD(max_conns), .arg = "N",
	  .help = "connections at once, each way together; more are refused", .min = 1, .max = 1000000 },
	{ .name = "vm-group", .kind = VU_OPT_STRING, .offset = VSOCK_FIELD(group), .arg = "NAME",
	  .help = "VMs of this process in the same group reach each other by CID", .min = 1, .max = 64 },
	{ NULL },
};

static struct vu_dev *vsock_create(void)
{
	struct vsock *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->guest_cid = 3;
	v->buf_size = DEFAULT_BUF_KIB * 1024;
	v->max_conns = DEFAULT_MAX_CONNS;
	v->listener = (struct vu_listener){ .fd = -1, .conn = -1 };
	/* A driver may still hold connections of a back-end before us: tell it they are gone. */
	v->evq_reset_owed = true;
	return &v->dev;
}

static void on_tick(void *opaque)
{
	struct vsock *v = opaque;
	int64_t now = vsock_now_ms();

	for (struct vsock_link *l = v->timed.next, *next; l != &v->timed; l = next) {
		next = l->next;
		struct vsock_conn *c = vsock_container(l, struct vsock_conn, timed);
		if (c->state == CONN_DIALING && vsock_host_redial(c))
			continue;
		if (now >= c->deadline_ms) {
			vu_debug("vsock: guest port %u <-> host port %u: no answer in time", c->peer_port,
				 c->local_port);
			vsock_conn_reset(c, "no answer in time");
		}
	}
	if (vsock_list_empty(&v->timed)) {
		vu_timer_disarm(v->tick);
		v->ticking = false;
	}
	vsock_settle(v);
}

static void on_later(void *opaque)
{
	struct vsock *v = opaque;

	if (v->tx_stalled && !v->stalled_on)
		vsock_pkt_tx(v);
	vsock_pkt_rx(v);
	vsock_settle(v);
}

void vsock_later(struct vsock *v)
{
	vu_timer_arm(v->later, 1, 0);
}

static int vsock_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct vsock *v = (struct vsock *)dev;

	if (!v->uds_path) {
		vu_err("vsock: --uds-path is required");
		return -1;
	}
	for (struct vsock *o = vsock_instances; o; o = o->next_instance)
		if (!strcmp(o->uds_path, v->uds_path)) {
			vu_err("vsock: two VMs with --uds-path=%s", v->uds_path);
			return -1;
		}
	dev->num_queues = VSOCK_NUM_QUEUES;
	v->loop = loop;
	vu_device_raise_nofile(); /* thousands of connections are thousands of fds */
	v->tick = vu_timer_new(loop, on_tick, v);
	v->later = vu_timer_new(loop, on_later, v);
	if (!v->tick || !v->later || vsock_conns_init(v) < 0) {
		vu_err("vsock: out of memory");
		return -1;
	}
	if (vsock_group_init(v) < 0)
		return -1;
	/* Listed once it can be a sibling (its timers exist). */
	v->next_instance = vsock_instances;
	vsock_instances = v;
	return vsock_host_listen(v);
}

static void vsock_destroy(struct vu_dev *dev)
{
	struct vsock *v = (struct vsock *)dev;

	for (struct vsock **pp = &vsock_instances; *pp; pp = &(*pp)->next_instance)
		if (*pp == v) {
			*pp = v->next_instance;
			break;
		}
	if (v->loop)
		vu_info("vsock: guest CID %u: %llu connections (%llu refused), %llu bytes to the guest, "
			"%llu from it, %llu RSTs sent, %llu packets dropped, %llu relayed to siblings", v->guest_cid,
			(unsigned long long)v->stats.conns, (unsigned long long)v->stats.refused,
			(unsigned long long)v->stats.bytes_in, (unsigned long long)v->stats.bytes_out,
			(unsigned long long)v->stats.resets_sent, (unsigned long long)v->stats.dropped,
			(unsigned long long)v->stats.relayed);
	vsock_conns_fini(v);
	vsock_group_fini(v);
	vsock_host_unlisten(v);
	vu_timer_free(v->tick);
	vu_timer_free(v->later);
	free(v);
}

/*
 * A ring that comes back (after a pause, a stop, a reset) where it was is the same
 * driver's: QEMU stops the rings and resets the device (SET_STATUS 0) when the VM
 * stops, and starts them again where they were when it resumes. A ring set back to 0
 * is a new driver's (the guest reset or rebooted): the connections of the driver
 * before it are gone with it. (A ring that had taken exactly a multiple of 65536
 * packets looks the same as one that never ran: its connections stay, and end as the
 * new driver refuses their packets.)
 */
static void ring_started(struct vsock *v, struct vu_vring *vq)
{
	unsigned i = vq->index;

	if (!v->paused[i])
		return;
	v->paused[i] = false;
	if (vq->last_avail == v->left_at[i] || vq->last_avail != 0)
		return;
	if (vsock_conns_drop(v, true)) {
		vu_info("vsock: guest CID %u: a new driver; its predecessor's connections are closed", v->guest_cid);
		v->evq_reset_owed = true;
	}
}

static void vsock_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct vsock *v = (struct vsock *)dev;

	switch (vq->index) {
	case VSOCK_RXQ:
		ring_started(v, vq);
		v->rx = vq;
		/* Kicks are asked for only while something waits for buffers (vsock_settle). */
		vu_vring_kicks(vq, false);
		vsock_pkt_rx(v);
		break;
	case VSOCK_TXQ:
		ring_started(v, vq);
		v->tx = vq;
		vsock_pkt_tx(v);
		break;
	case VSOCK_EVQ:
		v->evq = vq;
		vu_vring_kicks(vq, false);
		vsock_pkt_event(v);
		break;
	default:
		vu_vring_fail(vq, "vsock has three queues");
		return;
	}
	vsock_settle(v);
}

static void vsock_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	struct vsock *v = (struct vsock *)dev;

	/* Nothing is ever held across turns: the ring is just forgotten until it starts again. */
	if (vq->index < 2) {
		v->left_at[vq->index] = vq->last_avail;
		v->paused[vq->index] = true;
	}
	if (v->rx == vq) {
		if (v->rx_pushed)
			vu_vring_flush(vq);
		v->rx_pushed = false;
		v->rx = NULL;
	}
	if (v->tx == vq)
		v->tx = NULL;
	if (v->evq == vq)
		v->evq = NULL;
}

static int vsock_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct vsock_config c = { .guest_cid = htole64(((struct vsock *)dev)->guest_cid) };

	memcpy(buf, (uint8_t *)&c + offset, len);
	return 0;
}

/* A reset (SET_STATUS 0, RESET_DEVICE, the front-end left): connections stay for a resume. */
static void vsock_reset(struct vu_dev *dev)
{
	struct vsock *v = (struct vsock *)dev;

	v->rx = v->tx = v->evq = NULL;
	v->rx_pushed = false;
	v->tx_stalled = false;
}

/* No memory is no guest (the front-end left): its connections end, siblings are refused. */
static void vsock_mem_changed(struct vu_dev *dev, const struct vu_mem *mem)
{
	struct vsock *v = (struct vsock *)dev;

	v->up = mem->n > 0;
	if (mem->n)
		return;
	vsock_group_down(v);
	if (vsock_conns_drop(v, true))
		vu_info("vsock: guest CID %u: the front-end left; its connections are closed", v->guest_cid);
	v->evq_reset_owed = true;
	v->paused[0] = v->paused[1] = false;
	vsock_conns_reap(v);
}

/*
 * Confined: host programs are reached by path whenever a guest connects to port P
 * (<uds-path>_P), so the host's file system stays: seccomp, not namespace, with unix
 * sockets made, connected and sized. Its listener's file goes with the ports' to the
 * sandbox's helper (proto/listen.c).
 */
static const struct vu_syscall vsock_syscalls[] = {
	VU_SYSCALL_IF(socket, 0, AF_UNIX), VU_SYSCALL(connect),
	VU_SYSCALL_IF(getsockopt, 2, SO_SNDBUF), VU_SYSCALL_IF(setsockopt, 2, SO_SNDBUF),
	VU_SYSCALL_END,
};

static void vsock_sandbox(const struct vu_dev *dev, struct vu_sandbox_needs *needs)
{
	needs->strictest = VU_SANDBOX_SECCOMP;
	needs->why = "a guest's connect to port P reaches the host listener at <uds-path>_P, "
		     "which the empty root of namespace mode does not have";
}

const struct vu_device_type vu_dev_vsock = {
	.name = "vsock",
	.schema_type = "vsock",
	.summary = "virtio-vsock to host unix sockets: hybrid vsock, as Firecracker and vhost-device-vsock",
	.qemu_args = "-device vhost-user-vsock-pci,chardev=vu0",
	.virtio_id = 19,
	.num_queues = VSOCK_NUM_QUEUES,
	.config_size = sizeof(struct vsock_config),
	.options = vsock_options,
	.create = vsock_create,
	.init = vsock_init,
	.kick = vsock_kick,
	.queue_drain = vsock_queue_drain,
	.get_config = vsock_get_config,
	.reset = vsock_reset,
	.mem_changed = vsock_mem_changed,
	.destroy = vsock_destroy,
	.syscalls = vsock_syscalls,
	.sandbox = vsock_sandbox,
};
