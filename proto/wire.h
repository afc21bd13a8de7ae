/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user wire format (qemu docs/interop/vhost-user.rst): request ids,
 * flags, feature bits and payload layouts. Shared by the back-end (proto/) and
 * the test front-end (test/frontend.c); nothing here has behaviour.
 */
#ifndef VU_WIRE_H
#define VU_WIRE_H

#include <stdint.h>

/* Front-end → back-end requests. */
enum vu_request {
	VU_REQ_NONE = 0,
	VU_REQ_GET_FEATURES = 1,
	VU_REQ_SET_FEATURES = 2,
	VU_REQ_SET_OWNER = 3,
	VU_REQ_RESET_OWNER = 4,
	VU_REQ_SET_MEM_TABLE = 5,
	VU_REQ_SET_LOG_BASE = 6,
	VU_REQ_SET_LOG_FD = 7,
	VU_REQ_SET_VRING_NUM = 8,
	VU_REQ_SET_VRING_ADDR = 9,
	VU_REQ_SET_VRING_BASE = 10,
	VU_REQ_GET_VRING_BASE = 11,
	VU_REQ_SET_VRING_KICK = 12,
	VU_REQ_SET_VRING_CALL = 13,
	VU_REQ_SET_VRING_ERR = 14,
	VU_REQ_GET_PROTOCOL_FEATURES = 15,
	VU_REQ_SET_PROTOCOL_FEATURES = 16,
	VU_REQ_GET_QUEUE_NUM = 17,
	VU_REQ_SET_VRING_ENABLE = 18,
	VU_REQ_SEND_RARP = 19,
	VU_REQ_NET_SET_MTU = 20,
	VU_REQ_SET_BACKEND_REQ_FD = 21,
	VU_REQ_IOTLB_MSG = 22,
	VU_REQ_SET_VRING_ENDIAN = 23,
	VU_REQ_GET_CONFIG = 24,
	VU_REQ_SET_CONFIG = 25,
	VU_REQ_CREATE_CRYPTO_SESSION = 26,
	VU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VU_REQ_POSTCOPY_ADVISE = 28,
	VU_REQ_POSTCOPY_LISTEN = 29,
	VU_REQ_POSTCOPY_END = 30,
	VU_REQ_GET_INFLIGHT_FD = 31,
	VU_REQ_SET_INFLIGHT_FD = 32,
	VU_REQ_GPU_SET_SOCKET = 33,
	VU_REQ_RESET_DEVICE = 34,
	VU_REQ_VRING_KICK = 35,
	VU_REQ_GET_MAX_MEM_SLOTS = 36,
	VU_REQ_ADD_MEM_REG = 37,
	VU_REQ_REM_MEM_REG = 38,
	VU_REQ_SET_STATUS = 39,
	VU_REQ_GET_STATUS = 40,
	VU_REQ_GET_SHARED_OBJECT = 41,
	VU_REQ_SET_DEVICE_STATE_FD = 42,
	VU_REQ_CHECK_DEVICE_STATE = 43,
	VU_REQ_MAX
};

/* Back-end → front-end requests (on the SET_BACKEND_REQ_FD channel). */
enum vu_backend_request {
	VU_BREQ_IOTLB_MSG = 1,
	VU_BREQ_CONFIG_CHANGE_MSG = 2,
	VU_BREQ_VRING_HOST_NOTIFIER_MSG = 3,
	VU_BREQ_VRING_CALL = 4,
	VU_BREQ_VRING_ERR = 5,
};

/* Header flags. */
#define VU_FLAG_VERSION    0x1u
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_REPLY      (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)

/* Virtio / vhost feature bits (GET/SET_FEATURES). */
#define VIRTIO_F_NOTIFY_ON_EMPTY        24
#define VIRTIO_RING_F_INDIRECT_DESC     28
#define VIRTIO_RING_F_EVENT_IDX         29
#define VHOST_USER_F_PROTOCOL_FEATURES  30
#define VHOST_F_LOG_ALL                 26
#define VIRTIO_F_VERSION_1              32
#define VIRTIO_F_ACCESS_PLATFORM        33
#define VIRTIO_F_RING_PACKED            34
#define VIRTIO_F_IN_ORDER               35
#define VIRTIO_F_RING_RESET             40

/* Protocol feature bits (GET/SET_PROTOCOL_FEATURES). */
enum vu_protocol_feature {
	VU_PF_MQ = 0,
	VU_PF_LOG_SHMFD = 1,
	VU_PF_RARP = 2,
	VU_PF_REPLY_ACK = 3,
	VU_PF_NET_MTU = 4,
	VU_PF_BACKEND_REQ = 5,
	VU_PF_CROSS_ENDIAN = 6,
	VU_PF_CRYPTO_SESSION = 7,
	VU_PF_PAGEFAULT = 8,
	VU_PF_CONFIG = 9,
	VU_PF_BACKEND_SEND_FD = 10,
	VU_PF_HOST_NOTIFIER = 11,
	VU_PF_INFLIGHT_SHMFD = 12,
	VU_PF_RESET_DEVICE = 13,
	VU_PF_INBAND_NOTIFICATIONS = 14,
	VU_PF_CONFIGURE_MEM_SLOTS = 15,
	VU_PF_STATUS = 16,
	VU_PF_XEN_MMAP = 17,
	VU_PF_SHARED_OBJECT = 18,
	VU_PF_DEVICE_STATE = 19,
};

#define VU_MAX_FDS 8                 /* SCM_RIGHTS fds per message */
#define VU_MEM_TABLE_MAX_REGIONS 8   /* regions in one SET_MEM_TABLE */
#define VU_MAX_CONFIG_SIZE 256
#define VU_VRING_IDX_MASK 0xffu      /* SET_VRING_KICK/CALL/ERR payload */
#define VU_VRING_NOFD_MASK (1u << 8)
#define VU_VRING_F_LOG 0x1u          /* SET_VRING_ADDR flags */

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
} __attribute__((packed));

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc_user_addr;
	uint64_t used_user_addr;
	uint64_t avail_user_addr;
	uint64_t log_guest_addr;
} __attribute__((packed));

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
} __attribute__((packed));

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MEM_TABLE_MAX_REGIONS];
} __attribute__((packed));

struct vu_mem_single {
	uint64_t padding;
	struct vu_mem_region region;
} __attribute__((packed));

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VU_MAX_CONFIG_SIZE];
} __attribute__((packed));
#define VU_CONFIG_HDR_SIZE 12u

/* QEMU sends this with the C struct's tail padding (24 bytes); 20 is accepted too. */
struct vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
} __attribute__((packed));
#define VU_INFLIGHT_MIN_SIZE 20u

struct vu_vring_area {
	uint64_t u64;
	uint64_t size;
	uint64_t offset;
} __attribute__((packed));

/* Every payload the protocol defines fits in this union. */
/* SET_LOG_BASE with LOG_SHMFD: where the dirty log is in the fd sent with it. */
struct vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
} __attribute__((packed));
#define VU_LOG_PAGE 4096u            /* one bit of the dirty log covers this much guest memory */

union vu_payload {
	uint64_t u64;
	struct vu_log log;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_mem_single mem_one;
	struct vu_config config;
	struct vu_inflight inflight;
	struct vu_vring_area area;
};

/* Split virtqueue layout (virtio 1.x, 2.7). */
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};

#define VU_VRING_MAX_SIZE 32768u

/*
 * Packed virtqueue layout (virtio 1.1+, "Packed Virtqueues"): one descriptor ring
 * the driver and the device both write (SET_VRING_ADDR's desc), the driver's event
 * suppression structure (its avail address) and the device's (its used address).
 * The flags of the split layout (NEXT, WRITE, INDIRECT) keep their values.
 */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED  (1u << 15)
#define VRING_PACKED_EVENT_ENABLE  0u   /* event suppression flags */
#define VRING_PACKED_EVENT_DISABLE 1u
#define VRING_PACKED_EVENT_DESC    2u   /* at the descriptor off_wrap names (EVENT_IDX) */
#define VRING_PACKED_EVENT_WRAP    (1u << 15) /* off_wrap: the wrap counter bit */

struct vring_packed_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t id;
	uint16_t flags;
};

struct vring_packed_event {
	uint16_t off_wrap;
	uint16_t flags;
};

/*
 * SET/GET_VRING_BASE of a packed ring: bits 0-14 the next available descriptor,
 * bit 15 the driver's wrap counter there, bits 16-30 the next used descriptor and
 * bit 31 the device's wrap counter there.
 */
#define VU_PACKED_BASE(avail, avail_wrap, used, used_wrap)                        \
	((uint32_t)(avail) | (uint32_t)!!(avail_wrap) << 15 | (uint32_t)(used) << 16 | \
	 (uint32_t)!!(used_wrap) << 31)

/* Virtio device status bits (SET_STATUS / GET_STATUS). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED      128

#endif
