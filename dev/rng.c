/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-rng (device id 4): one queue of device-writable buffers, each filled
 * with bytes from getrandom(2) straight into guest memory.
 *
 * build: rng.c
 * systemd: DynamicUser=yes
 * systemd: PrivateDevices=yes
 * systemd: PrivateNetwork=yes
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: SystemCallFilter=@system-service
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "proto/device.h"
#include "proto/log.h"

#define RNG_MAX_IOV 64          /* segments of one request; more is refused as broken */
#define RNG_MAX_BYTES 65536     /* per request: the device may fill less than offered */

struct rng {
	struct vu_dev dev;
	struct iovec iov[RNG_MAX_IOV];
};

static struct vu_dev *rng_create(void)
{
	struct rng *r = calloc(1, sizeof(*r));
	return r ? &r->dev : NULL;
}

static void rng_destroy(struct vu_dev *dev)
{
	free(dev);
}

/*
 * Fills iov with random bytes, at most RNG_MAX_BYTES so one huge request cannot
 * stall the loop; returns how many were written.
 */
static uint32_t fill(const struct iovec *iov, unsigned n)
{
	uint32_t total = 0;

	for (unsigned i = 0; i < n && total < RNG_MAX_BYTES; i++) {
		size_t want = iov[i].iov_len < RNG_MAX_BYTES - total ? iov[i].iov_len : RNG_MAX_BYTES - total;
		size_t done = 0;
		while (done < want) {
			ssize_t got = getrandom((char *)iov[i].iov_base + done, want - done, 0);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				return total;
			done += got;
			total += got;
		}
	}
	return total;
}

static void rng_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct rng *r = (struct rng *)dev;
	struct vu_req req = { .iov = r->iov, .max_iov = RNG_MAX_IOV };

	do {
		vu_vring_kicks(vq, false);
		while (vu_vring_pop(vq, &req) > 0) {
			if (req.out) {
				vu_vring_fail(vq, "rng request with a device-readable buffer");
				return;
			}
			vu_vring_push(vq, &req, fill(req.iov, req.in));
		}
		vu_vring_flush(vq);
	} while (!vq->broken && vu_vring_kicks(vq, true));
}

/* Confined, it only asks the kernel for random bytes. */
static const struct vu_syscall rng_syscalls[] = {
	VU_SYSCALL(getrandom),
	VU_SYSCALL_END,
};

const struct vu_device_type vu_dev_rng = {
	.name = "rng",
	.schema_type = "rng",
	.summary = "virtio-rng entropy source fed by getrandom(2)",
	.qemu_args = "-device vhost-user-rng-pci,chardev=vu0",
	.virtio_id = 4,
	.num_queues = 1,
	.create = rng_create,
	.kick = rng_kick,
	.destroy = rng_destroy,
	.syscalls = rng_syscalls,
};
