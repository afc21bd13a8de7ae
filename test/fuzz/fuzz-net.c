/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: two virtio-net ports of the process's learning switch, two
 * sessions in one process as two guests' front-ends would have them, driven
 * through the device harness (fuzz-device.h): frames sent on one port's
 * transmit ring reach the other's receive buffers; the control queue changes
 * filters, offloads and pairs. Each port acks its own features (a port without
 * checksum offload has checksums filled in for it). Queues: 0 receive, 1
 * transmit, then 2 control; with bit 0 of the header's device byte, two pairs
 * (--queues=2): 2 and 3 the second pair, 4 control.
 * FZ_OP_DEVICE: 0 SEND_RARP with 6 bytes of MAC, 1 NET_SET_MTU with a u16.
 */
#include <stdio.h>

#include "proto/wire.h"
#include "test/fuzz/fuzz-device.h"

extern const struct vu_device_type vu_dev_net;

/* Known addresses, so that inputs can send frames to them. */
static int prepare(struct fz_port *p)
{
	char mac[32];

	snprintf(mac, sizeof(mac), "mac=52:54:00:00:00:%02x", p->index + 1);
	if ((p->hdr->device & 1) && fz_set_option(p->dev, "queues=2") < 0)
		return -1;
	return fz_set_option(p->dev, mac);
}

static void net_op(struct fz_port *p, struct fz_input *in)
{
	const uint8_t *b;
	uint64_t v = 0;

	if (fz_u8(in) & 1) {
		v = fz_u16(in);
		fz_send(p, VU_REQ_NET_SET_MTU, &v, sizeof(v), NULL, 0);
		return;
	}
	size_t n = fz_bytes(in, 6, &b);
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	fz_send(p, VU_REQ_SEND_RARP, &v, sizeof(v), NULL, 0);
}

static const struct fz_target net = {
	.type = &vu_dev_net,
	.nports = 2,
	.settle_ns = 0,  /* everything it does, it does on the loop at once */
	.prepare = prepare,
	.op = net_op,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_run(&net, data, size);
}
