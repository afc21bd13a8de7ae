/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vuf: a small vhost-user FRONT-END for tests and benchmarks.
 *
 *   - a connection (vuf_connect) with raw messaging (vuf_send / vuf_recv) and one
 *     convenience call per front-end request;
 *   - guest RAM: memfd-backed shared regions with their own guest-physical
 *     addresses, as QEMU sends them (userspace_addr = our own mapping);
 *   - a virtqueue driver (vuf_vq_*) living in that guest RAM: split, or packed
 *     when VIRTIO_F_RING_PACKED was negotiated before the queue is allocated;
 *   - starting and stopping the back-end process (vuf_backend_*).
 *
 * Every wait is bounded. Functions returning int give 0 (or a count/size) on
 * success and a negative errno on failure; vuf_error(f) says what went wrong last:
 *   -ETIMEDOUT   nothing came within the timeout
 *   -EPIPE       the back-end closed the connection
 *   -EPROTO      a reply broke the protocol (wrong request, flags or size)
 *   -EREMOTEIO   the back-end acked with a non-zero u64 (REPLY_ACK)
 */
#ifndef VU_TEST_FRONTEND_H
#define VU_TEST_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "proto/wire.h"

#define VUF_MAX_REGIONS 8
#define VUF_MAX_QUEUES 8
#define VUF_DEFAULT_TIMEOUT_MS 2000
#define VUF_RAM_BASE 0x100000ull /* gpa of the first region: gpa 0 is outside memory */

struct vuf_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;      /* our mapping; also the userspace_addr we send */
	int fd;             /* memfd of this region */
	uint64_t offset;    /* mmap_offset of the region in fd */
	uint64_t next;      /* bump allocator: next free offset in the region */
};

struct vuf_vq;

struct vuf {
	int sock;
	int backend_sock;           /* our end of SET_BACKEND_REQ_FD, or -1 */
	int timeout_ms;             /* replies are waited for this long */
	uint64_t offered_features;  /* what GET_FEATURES said (after vuf_negotiate) */
	uint64_t offered_protocol_features;
	uint64_t features;          /* what we set */
	uint64_t protocol_features;
	bool need_reply;            /* set-type convenience calls use NEED_REPLY (default: when REPLY_ACK) */
	struct vuf_region region[VUF_MAX_REGIONS];
	unsigned nregions;
	struct vuf_vq *vq[VUF_MAX_QUEUES];
	char error[256];            /* the last failure, for messages */
};

/* ---- connection ---- */

/* Connects to the back-end's socket, retrying until it listens or timeout_ms passes. */
struct vuf *vuf_connect(const char *socket_path, int timeout_ms);
/* Closes the connection, frees the queues and guest RAM. NULL is fine. */
void vuf_close(struct vuf *f);
const char *vuf_error(const struct vuf *f);

/* ---- guest RAM ---- */

/*
 * Creates n regions of size bytes each (a multiple of the page size), each its own
 * memfd. Region i starts at VUF_RAM_BASE + i * (size + hole): hole 0 makes them
 * contiguous in guest-physical space although mapped separately.
 */
int vuf_mem_init(struct vuf *f, unsigned n, uint64_t size, uint64_t hole);
/*
 * The same layout carved out of ONE memfd, as QEMU does with a RAM block: region i
 * is mapped from offset first_offset + i * size (page multiples), so mmap_offset
 * is not 0. Each region holds its own dup of the fd.
 */
int vuf_mem_init_one_fd(struct vuf *f, unsigned n, uint64_t size, uint64_t hole, uint64_t first_offset);
/* Local pointer for gpa, if [gpa, gpa + len) lies in one region; else NULL. */
void *vuf_gpa(struct vuf *f, uint64_t gpa, uint64_t len);
/* Copies to/from guest RAM, across regions if needed; -EFAULT if some byte is outside. */
int vuf_gpa_write(struct vuf *f, uint64_t gpa, const void *buf, uint64_t len);
int vuf_gpa_read(struct vuf *f, uint64_t gpa, void *buf, uint64_t len);
/* Allocates from the regions in order (never across a region end); gpa, or 0 if full. */
uint64_t vuf_alloc(struct vuf *f, uint64_t size, uint64_t align);
/* The wire description of region i (userspace_addr = our mapping). */
struct vu_mem_region vuf_region_desc(const struct vuf *f, unsigned i);

/* ---- raw messaging ---- */

/* Sends a message; flags go out exactly as given (include VU_FLAG_VERSION yourself). */
int vuf_send(struct vuf *f, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
	     const int *fds, int nfds);
/* Sends the bytes of iov on any socket, whole, with nfds (<= 16) fds on the first byte. */
int vuf_sendmsg(int sock, struct iovec *iov, int niov, const int *fds, int nfds);
/* Sends arbitrary bytes (for malformed messages), with fds on the first byte. */
int vuf_send_bytes(struct vuf *f, const void *buf, size_t len, const int *fds, int nfds);
/*
 * Receives one message: the header into *hdr and up to max payload bytes. Returns
 * the payload size (hdr->size), -EMSGSIZE if it was bigger than max (the rest is
 * read and dropped), or -ETIMEDOUT / -EPIPE. Received fds are closed.
 */
int vuf_recv(struct vuf *f, struct vu_hdr *hdr, void *payload, size_t max, int timeout_ms);
/* 1 if the back-end closed the connection within timeout_ms, 0 if it is still open. */
int vuf_wait_closed(struct vuf *f, int timeout_ms);
/* A GET_FEATURES round trip: 0 if the back-end still answers properly on this connection. */
int vuf_ping(struct vuf *f);

/*
 * A request whose reply carries a payload: sends, then expects a reply for the
 * same request with flags exactly REPLY|VERSION and exactly reply_size bytes.
 */
int vuf_call(struct vuf *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
	     int nfds, void *reply, uint32_t reply_size);
/*
 * Sends with NEED_REPLY and waits for the u64 ack: returns 0 with *ack set, or a
 * negative errno if no proper ack came.
 */
int vuf_send_ack(struct vuf *f, uint32_t request, const void *payload, uint32_t size,
		 const int *fds, int nfds, uint64_t *ack);
/*
 * A request without a reply of its own: with f->need_reply it is sent with
 * NEED_REPLY and the ack decides (non-zero: -EREMOTEIO); otherwise just sent.
 */
int vuf_request(struct vuf *f, uint32_t request, const void *payload, uint32_t size, const int *fds,
		int nfds);

/* ---- one call per front-end request ---- */

int vuf_get_features(struct vuf *f, uint64_t *features);
int vuf_set_features(struct vuf *f, uint64_t features);
int vuf_get_protocol_features(struct vuf *f, uint64_t *pf);
int vuf_set_protocol_features(struct vuf *f, uint64_t pf);
int vuf_set_owner(struct vuf *f);
int vuf_reset_owner(struct vuf *f);
int vuf_set_mem_table(struct vuf *f);               /* every region, with its fd */
int vuf_add_mem_reg(struct vuf *f, unsigned region);
int vuf_rem_mem_reg(struct vuf *f, unsigned region);
int vuf_set_vring_num(struct vuf *f, unsigned index, unsigned num);
int vuf_set_vring_addr(struct vuf *f, unsigned index, uint64_t desc_uva, uint64_t avail_uva,
		       uint64_t used_uva);
int vuf_set_vring_base(struct vuf *f, unsigned index, unsigned base);
int vuf_get_vring_base(struct vuf *f, unsigned index, unsigned *base);
/* fd < 0 sends the NOFD flag and no fd. */
int vuf_set_vring_kick(struct vuf *f, unsigned index, int fd);
int vuf_set_vring_call(struct vuf *f, unsigned index, int fd);
int vuf_set_vring_err(struct vuf *f, unsigned index, int fd);
int vuf_set_vring_enable(struct vuf *f, unsigned index, bool enable);
int vuf_get_queue_num(struct vuf *f, uint64_t *n);
int vuf_get_max_mem_slots(struct vuf *f, uint64_t *n);
/* Returns the reply's payload size (0: the back-end refused), data into buf. */
int vuf_get_config(struct vuf *f, uint32_t offset, uint32_t size, void *buf);
int vuf_set_config(struct vuf *f, uint32_t offset, uint32_t size, const void *buf);
int vuf_set_status(struct vuf *f, uint8_t status);
int vuf_get_status(struct vuf *f, uint64_t *status);
/* SET_DEVICE_STATE_FD (direction, phase 0) with fd (kept open), CHECK_DEVICE_STATE: the reply's u64, or -1. */
int64_t vuf_set_device_state_fd(struct vuf *f, uint32_t direction, int fd);
int64_t vuf_check_device_state(struct vuf *f);
/*
 * DEVICE_STATE as a migration's front-end does it, rings stopped: the back-end's
 * state saved into *buf (malloc'd, *len bytes; 0, or -1 when the back-end refused
 * or CHECK_DEVICE_STATE failed), or len bytes loaded (CHECK_DEVICE_STATE's answer:
 * 0 loaded; -1 no answer). A load with end false leaves the stream open when
 * CHECK_DEVICE_STATE asks, as a front-end that never ends it would.
 */
int vuf_state_save(struct vuf *f, uint8_t **buf, size_t *len);
int64_t vuf_state_load(struct vuf *f, const void *buf, size_t len, bool end);
int vuf_reset_device(struct vuf *f);
/* Creates the back-end channel (a socketpair) and sends one end. */
int vuf_set_backend_req_fd(struct vuf *f);
/* In-band kick (INBAND_NOTIFICATIONS). */
int vuf_vring_kick(struct vuf *f, unsigned index);

/*
 * One message the back-end sent on its channel; if it asked for a reply
 * (NEED_REPLY) it is acked with 0. Returns the payload size or a negative errno.
 */
int vuf_backend_recv(struct vuf *f, struct vu_hdr *hdr, void *payload, size_t max, int timeout_ms);

/*
 * The usual start: GET_FEATURES, then (if both sides have F_PROTOCOL_FEATURES)
 * GET/SET_PROTOCOL_FEATURES, SET_OWNER, SET_BACKEND_REQ_FD (if BACKEND_REQ),
 * SET_FEATURES, and SET_MEM_TABLE if guest RAM exists. features and
 * protocol_features are masks of what we want: the back-end's offer decides the rest.
 */
int vuf_negotiate(struct vuf *f, uint64_t features, uint64_t protocol_features);

/*
 * ---- virtqueue driver ----
 * The layout is the negotiated one (f->features) when the queue is allocated. The
 * calls below work for both unless they say "split"; for a packed ring a request's
 * id is its buffer id, desc_gpa/avail_gpa/used_gpa are the descriptor ring, the
 * driver area and the device area.
 */

struct vuf_buf {
	uint64_t gpa;
	uint32_t len;
};

struct vuf_vq {
	struct vuf *f;
	unsigned index;
	uint16_t num;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;    /* our pointers to the rings (write them freely) */
	struct vring_avail *avail;
	struct vring_used *used;
	int kick_fd, call_fd, err_fd;   /* ours; -1 when NOFD was sent */
	bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool manual_used_event;     /* vuf_vq_wait_used leaves used_event alone */
	uint16_t avail_idx;         /* our shadow of avail->idx */
	uint16_t last_used;         /* next used entry we have not consumed */
	uint16_t free_head, num_free;
	uint16_t *link;             /* our copy of chain links / the free list */
	uint16_t *chain_len;        /* descriptors of each in-flight head (0: free) */
	uint64_t *indirect_gpa;     /* per-head indirect table, allocated on first use */

	/* Packed rings (desc, avail and used are NULL). link/chain_len/indirect_gpa are per id. */
	bool packed;
	struct vring_packed_desc *pdesc;
	struct vring_packed_event *driver_event;  /* ours: notify us or not */
	struct vring_packed_event *device_event;  /* the device's: kick it or not */
	uint16_t next_avail;        /* where the next descriptor goes ... */
	bool avail_wrap;            /* ... and our wrap counter there */
	uint16_t next_used;         /* where the next used descriptor will be ... */
	bool used_wrap;             /* ... and the device's wrap counter there */
};
#define VUF_INDIRECT_MAX 64         /* entries of one indirect table */

/* vuf_vq_setup flags */
#define VUF_VQ_NO_ENABLE  0x1   /* do not send SET_VRING_ENABLE 1 */
#define VUF_VQ_KICK_NOFD  0x2   /* SET_VRING_KICK with NOFD (the back-end polls, or in-band kicks) */
#define VUF_VQ_CALL_NOFD  0x4   /* SET_VRING_CALL with NOFD */
#define VUF_VQ_NO_ERR     0x8   /* do not send SET_VRING_ERR */
#define VUF_VQ_NO_KICK    0x10  /* do not send SET_VRING_KICK at all */

/* Allocates the rings of queue index in guest RAM (zeroed) and eventfds; sends nothing. */
struct vuf_vq *vuf_vq_alloc(struct vuf *f, unsigned index, unsigned num);
/*
 * Sends SET_VRING_NUM, ADDR, BASE (base; avail/used idx are set to it), CALL, ERR,
 * KICK and, when F_PROTOCOL_FEATURES was negotiated, SET_VRING_ENABLE 1.
 * Packed: base is ignored; SET_VRING_BASE says avail and used are where the driver
 * expects its next used descriptor (as QEMU does after a back-end restart).
 */
int vuf_vq_start(struct vuf_vq *vq, uint16_t base, unsigned flags);
/* vuf_vq_alloc + vuf_vq_start(base 0); NULL on failure (vuf_error says why). */
struct vuf_vq *vuf_vq_setup(struct vuf *f, unsigned index, unsigned num, unsigned flags);

/*
 * Adds one request: nout device-readable buffers then nin device-writable ones,
 * chained in the descriptor table or (indirect) in an indirect table. Publishes
 * it in the avail ring. Returns the head index or a negative errno.
 */
int vuf_vq_add(struct vuf_vq *vq, const struct vuf_buf *out, unsigned nout,
	       const struct vuf_buf *in, unsigned nin, bool indirect);
/* Kicks: the eventfd, or VRING_KICK in-band if the kick was set with NOFD. */
int vuf_vq_kick(struct vuf_vq *vq);
/*
 * Whether the device wants a kick after what we added since old_avail (EVENT_IDX or
 * NO_NOTIFY; packed: the device's event suppression flags).
 */
bool vuf_vq_kick_needed(const struct vuf_vq *vq, uint16_t old_avail);
/*
 * Waits (polling used->idx) for the next used element: 0 with *id and *len, or
 * -ETIMEDOUT. Frees the chain; with EVENT_IDX, moves used_event to the new last_used
 * (packed: the driver event structure to DESC mode at the next used descriptor).
 */
int vuf_vq_wait_used(struct vuf_vq *vq, uint32_t *id, uint32_t *len, int timeout_ms);
/* Used elements not consumed yet (packed: 1 if the next one is there, else 0). */
uint16_t vuf_vq_used_pending(const struct vuf_vq *vq);
/* 1 if the call eventfd fired within timeout_ms (it is drained), else 0. */
int vuf_vq_wait_call(struct vuf_vq *vq, int timeout_ms);
/* 1 if the err eventfd fired within timeout_ms (it is drained), else 0. */
int vuf_vq_wait_err(struct vuf_vq *vq, int timeout_ms);
/*
 * used_event (EVENT_IDX): the driver wants a call once the used idx passes it.
 * Packed: idx is the driver event's off_wrap (position | wrap << 15), in DESC mode.
 */
void vuf_vq_set_used_event(struct vuf_vq *vq, uint16_t idx);
/*
 * Asks for a call at the next used buffer and keeps used_event there (manual mode)
 * until the test sets it again. For a test that waits for a used buffer and then
 * for its call: moved on as the buffer is taken, the event may be read by the
 * back-end after the move, and then rightly brings no call.
 */
void vuf_vq_want_call_at_next(struct vuf_vq *vq);
/* avail->flags (packed: the driver event's flags, VRING_PACKED_EVENT_*). */
void vuf_vq_set_avail_flags(struct vuf_vq *vq, uint16_t flags);
/* Raw, split: puts head into the next avail slot and publishes avail->idx += 1. */
void vuf_vq_push_avail(struct vuf_vq *vq, uint16_t head);
/* Raw, split: stores avail->idx (and our shadow). */
void vuf_vq_set_avail_idx(struct vuf_vq *vq, uint16_t idx);
/* Raw, split: writes descriptor i of the ring's table. */
void vuf_vq_write_desc(struct vuf_vq *vq, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		       uint16_t next);
/* Forgets the driver state (chains in flight); the rings' memory stays. */
void vuf_vq_reset_driver(struct vuf_vq *vq);
void vuf_vq_free(struct vuf_vq *vq);

/* ---- the back-end process ---- */

struct vuf_backend {
	pid_t pid;
	bool reaped;
	int status;        /* waitpid status once reaped */
	char socket_path[108];
};

/*
 * Starts "$VHOSTBOX" (default ./vhostbox) as `$VHOSTBOX PERSONALITY
 * --socket-path=PATH EXTRA...` (extra_args NULL-terminated, may be NULL) and waits
 * until the socket exists. $VUF_BACKEND_LOG, if set, receives its stderr.
 */
struct vuf_backend *vuf_backend_start(const char *personality, const char *const *extra_args,
				      const char *socket_path);
/*
 * SIGTERM, then waits up to timeout_ms (SIGKILL after). Returns the exit status
 * (0-255), 128 + signal if it died of one, -ETIMEDOUT if it had to be killed.
 * Frees b.
 */
int vuf_backend_stop(struct vuf_backend *b, int timeout_ms);
bool vuf_backend_alive(struct vuf_backend *b);
/* Entries in /proc/PID/fd, or -1. */
int vuf_backend_fd_count(const struct vuf_backend *b);
/* VmRSS in KiB from /proc/PID/status, or -1. */
long vuf_backend_rss_kb(const struct vuf_backend *b);
/* Waits up to timeout_ms for the fd count to be <= want; returns the last count seen. */
int vuf_backend_wait_fd_count(const struct vuf_backend *b, int want, int timeout_ms);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t vuf_now_ms(void);

#endif
