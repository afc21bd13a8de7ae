/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The harness of the device-level libFuzzer targets (test/fuzz/fuzz-<device>.c).
 *
 * Everything runs on one thread: the device's real session serves one end of a
 * socketpair, the harness is the front-end at the other end and the guest
 * driver in the guest RAM it shares (memfd regions; rings and buffers written
 * with test/frontend.c's split-ring driver). After every step the device's loop
 * runs until it is idle, so that asynchronous work (io_uring completions, timers
 * about to fire) is done before the next step; then the harness plays its part
 * (replies, the back-end channel, used buffers, the target's own peers).
 *
 * An input is a set-up header (struct fz_header: features, ring size, how kicks
 * and calls travel, inflight) and then a sequence of operations (enum fz_op),
 * each an opcode byte and its arguments; test/fuzz/make-seeds.py writes the same
 * format. Bytes missing at the end of the input read as zeros.
 */
#ifndef VU_TEST_FUZZ_DEVICE_H
#define VU_TEST_FUZZ_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/device.h"

#define FZ_MAX_PORTS 2
#define FZ_MAX_QUEUES 5
#define FZ_OPTION_MAX 64

/* The input, consumed front to back. */
struct fz_input {
	const uint8_t *p;
	size_t n;
};
uint8_t fz_u8(struct fz_input *in);
uint16_t fz_u16(struct fz_input *in);
uint32_t fz_u32(struct fz_input *in);
/* Up to max bytes (fewer at the end of the input): returns how many, *p points at them. */
size_t fz_bytes(struct fz_input *in, size_t max, const uint8_t **p);

/* The set-up header, first in every input. */
struct fz_header {
	uint32_t features[FZ_MAX_PORTS]; /* per port: device feature bits 0-31 acked (of those offered) */
	uint8_t flags;          /* FZ_F_* */
	uint8_t ring_log2;      /* ring size: 2 << (ring_log2 % 10), 2..1024 */
	uint8_t pf_off;         /* FZ_PF_OFF_*: protocol features left out */
	uint8_t device;         /* the target's own set-up byte */
} __attribute__((packed));

enum {
	FZ_F_EVENT_IDX = 1 << 0,
	FZ_F_INDIRECT = 1 << 1,
	FZ_F_REPLY_ACK = 1 << 2,    /* every request asks for an ack: failures do not end the session */
	FZ_F_INFLIGHT = 1 << 3,     /* INFLIGHT_SHMFD, when the device offers it */
	FZ_F_KICK_NOFD = 1 << 4,    /* rings are polled, or kicked in-band with FZ_F_INBAND */
	FZ_F_INBAND = 1 << 5,       /* INBAND_NOTIFICATIONS (brings REPLY_ACK and BACKEND_REQ) */
	FZ_F_CALL_NOFD = 1 << 6,    /* calls come in-band (with FZ_F_INBAND) or not at all */
	FZ_F_OFFSET = 1 << 7,       /* region 1 starts a page into its memfd (mmap_offset) */
};

enum {
	FZ_PF_OFF_CONFIG = 1 << 0,
	FZ_PF_OFF_STATUS = 1 << 1,
	FZ_PF_OFF_RESET = 1 << 2,
	FZ_PF_OFF_MEM_SLOTS = 1 << 3,
	FZ_PF_OFF_BACKEND_REQ = 1 << 4,
	FZ_PF_OFF_MQ = 1 << 5,
};

/*
 * Operations: the opcode byte (without FZ_OP_NO_SETTLE) modulo FZ_OP_COUNT, then
 * the arguments in order (bytes unless said; q is a queue index modulo the
 * device's queue count). After an operation the loop runs until it is idle,
 * unless the opcode has FZ_OP_NO_SETTLE: the next one then meets the device with
 * its work still in flight (a message right behind a kick, say).
 */
#define FZ_OP_NO_SETTLE 0x80
enum fz_op {
	FZ_OP_KICK,        /* q: the kick eventfd, VRING_KICK in-band, or a poll period */
	FZ_OP_REQ,         /* q, flags (FZ_REQ_*), nout, nin (each % 5), then per buffer a u16
			    * length (and a u32 guest address with FZ_REQ_RAW_ADDR), then the
			    * readable buffers' bytes: a request as a driver adds it */
	FZ_OP_POKE,        /* u32 offset into guest RAM, len, bytes */
	FZ_OP_RING_POKE,   /* q, part (0 desc, 1 avail, 2 used), u16 offset, len, bytes */
	FZ_OP_AVAIL,       /* q, u16 head: published as it is */
	FZ_OP_REMAP,       /* kind (enum fz_remap), region */
	FZ_OP_STOP,        /* q: GET_VRING_BASE */
	FZ_OP_START,       /* q: the ring set up again from where it stopped */
	FZ_OP_RESET,       /* kind: 0 RESET_DEVICE, 1 SET_STATUS 0, 2 RESET_OWNER */
	FZ_OP_SETUP,       /* features and every ring set up anew, as a driver after a reset */
	FZ_OP_RECONNECT,   /* the front-end leaves and comes back (the inflight buffer kept) */
	FZ_OP_INFLIGHT,    /* u16 offset, len, bytes: written into the inflight buffer */
	FZ_OP_CONFIG,      /* write, offset, size, bytes: SET_CONFIG or GET_CONFIG */
	FZ_OP_MSG,         /* request (% VU_REQ_MAX), flags, fd code, u16 len, payload: any message;
			    * fd code bits 0-1 attach that many fds, bits 2-3, 4-5, 6-7 say what
			    * each is: 0 an eventfd, 1 a new memfd, 2 and 3 regions 0 and 1's */
	FZ_OP_WAIT,        /* n (% 4): the loop runs n * 500 us (timers fire: polls, retries) */
	FZ_OP_PORT,        /* port: later operations go to it */
	FZ_OP_DEVICE,      /* the target's own operation (its arguments are its business) */
	FZ_OP_LOG,         /* on, u16 size (0: all guest RAM): a migration's dirty log starts
			    * (SET_LOG_BASE, LOG_ALL, rings logged) or stops */
	FZ_OP_STATE,       /* load, then with load a u16 len and bytes: the rings stop, the
			    * device's state is saved, or loaded from those bytes
			    * (SET_DEVICE_STATE_FD, CHECK_DEVICE_STATE), the rings start again */
	FZ_OP_COUNT
};

enum { FZ_REQ_INDIRECT = 1, FZ_REQ_KICK = 2, FZ_REQ_RAW_ADDR = 4 };

enum fz_remap {
	FZ_REMAP_SAME,     /* SET_MEM_TABLE with the same regions */
	FZ_REMAP_GROW,     /* region 1's memfd grows; SET_MEM_TABLE with the larger region */
	FZ_REMAP_MOVE,     /* REM_MEM_REG then ADD_MEM_REG of the region */
	FZ_REMAP_REMOVE,   /* REM_MEM_REG of the region: its buffers or rings vanish */
	FZ_REMAP_ADD,      /* ADD_MEM_REG of the region */
	FZ_REMAP_SHRINK,   /* region 1's memfd shrinks under the live mapping (FUZZ_SHRINK) */
	FZ_REMAP_COUNT
};

struct vuf;
struct vu_loop;
struct vu_session;
struct fz_port;

/* What a target is: its device, how it is set up, and its own parts. */
struct fz_target {
	const struct vu_device_type *type;
	const char *const *options;     /* "name" or "name=value", NULL-terminated */
	unsigned nports;                /* sessions, each with its own device (net: two switch ports) */
	bool keep_device;               /* made once per process, each input a new session */
	uint64_t settle_ns;             /* idle: nothing happened for this long */
	/* Per port, before init: options that need per-input resources (an image file). */
	int (*prepare)(struct fz_port *p);
	/* After each set-up of a session (GPU_SET_SOCKET...). */
	void (*connected)(struct fz_port *p);
	/* FZ_OP_DEVICE. */
	void (*op)(struct fz_port *p, struct fz_input *in);
	/* After the loop went idle: the target's own peers; true if that gave the device work. */
	bool (*service)(struct fz_port *p);
	/* The port's input is over: frees what prepare and connected made for it. */
	void (*finish)(struct fz_port *p);
};

/* One front-end, its guest and the device it drives. */
struct fz_port {
	struct fz *h;
	const struct fz_header *hdr;    /* this input's */
	unsigned index;
	struct vu_dev *dev;
	struct vu_session *s;           /* NULL once the session ended */
	struct vuf *f;                  /* our socket end, guest RAM, rings (test/frontend.h) */
	void *priv;                     /* the target's */
	/* The rest is the harness's. */
	int backend_sock;               /* our end of the back-end channel, or -1 */
	uint64_t pf;                    /* protocol features negotiated */
	uint64_t pf_offered;            /* what GET_PROTOCOL_FEATURES said last */
	bool present[2];                /* regions the back-end was given */
	bool logging;                   /* FZ_OP_LOG turned the dirty log on */
	uint64_t data_next;             /* next request buffer in region 1 */
	uint16_t base[FZ_MAX_QUEUES];   /* from GET_VRING_BASE */
	int inflight_fd;
	uint8_t *inflight;
	size_t inflight_size;
	int image_fd;                   /* fz_memfd_option's, closed with the port */
	char image_option[FZ_OPTION_MAX];
};

/*
 * Sets a device option by name ("name=value" or "name"); 0 or -1. Devices keep
 * pointers to string values: option must live as long as the device.
 */
int fz_set_option(struct vu_dev *dev, const char *option);
/*
 * A memfd of size bytes given to the device as file option `name` (/proc/self/fd/N):
 * the fd, or -1. The option's text is written to opt (FZ_OPTION_MAX bytes), which
 * must live as long as the device: devices keep their options' strings.
 */
int fz_memfd_option(struct vu_dev *dev, const char *name, uint64_t size, char *opt);
/* Sends a front-end message (NEED_REPLY when acks were negotiated); 0 or -errno. */
int fz_send(struct fz_port *p, uint32_t request, const void *payload, uint32_t size, const int *fds, int nfds);
/*
 * Quiets the device's logging and ignores SIGPIPE, as back-ends do. VU_FUZZ_LOG=1
 * keeps the logging and traces every used element the driver takes back.
 */
void fz_init_process(void);
/* Runs one input against the target; returns 0 (libFuzzer's convention). */
int fz_run(const struct fz_target *t, const uint8_t *data, size_t size);

#endif
