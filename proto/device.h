/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a device module (dev/<name>.c) exports: one const struct vu_device_type.
 * Proto never knows what a request means; a device never parses a message.
 */
#ifndef VU_DEVICE_H
#define VU_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/option.h"
#include "proto/vring.h"

struct vu_loop;
struct vu_dev;
struct vu_session;

/*
 * Confinement (proto/sandbox.c, --sandbox): each mode includes the ones before it.
 *   none       nothing beyond --user/--group/--rlimit-nofile
 *   seccomp    no_new_privs, capabilities dropped, a system call allowlist
 *   chroot     and chroot(2) into the directory the device names (needs root; only
 *              for devices that name one, and never chosen by default)
 *   namespace  seccomp, and new mount, ipc, uts (and net) namespaces with an empty root
 */
enum vu_sandbox_mode { VU_SANDBOX_NONE, VU_SANDBOX_SECCOMP, VU_SANDBOX_CHROOT, VU_SANDBOX_NAMESPACE };

/*
 * A system call a device makes once it serves. arg < 0: with any arguments;
 * else only when (argument arg & mask) == value. Several entries for one call
 * are alternatives. Lists end with a NULL name.
 */
struct vu_syscall {
	const char *name;             /* as in <sys/syscall.h>, without SYS_ */
	int arg;
	uint64_t mask, value;
};
#define VU_SYSCALL(n)              { #n, -1, 0, 0 }
#define VU_SYSCALL_IF(n, a, v)     { #n, a, 0xffffffffu, v }    /* ioctl numbers, fds: 32 bits */
#define VU_SYSCALL_MASK(n, a, m, v) { #n, a, m, v }
#define VU_SYSCALL_END             { NULL, 0, 0, 0 }

/* One line of a user namespace's uid_map or gid_map: count ids from outside, seen as inside. */
struct vu_id_map {
	uint32_t inside, outside, count;
};
#define VU_ID_MAP_MAX 340           /* the kernel's limit of lines */

/* What one instance, as its options made it, needs to keep working confined. */
struct vu_sandbox_needs {
	enum vu_sandbox_mode strictest;      /* preset to VU_SANDBOX_NAMESPACE */
	const char *why;                     /* set with strictest: what a stricter mode would break */
	const struct vu_syscall *syscalls;   /* a list beyond the type's own (e.g. a library's), or NULL */
	bool host_net;                       /* stays in the host's network namespace (a tap) */
	/*
	 * Where the device keeps the directory --sandbox=chroot confines it to (read at
	 * confinement, after init: an option may name it indirectly), or NULL: no chroot.
	 */
	const char *const *chroot_dir;
	/*
	 * Capabilities (1 << CAP_*) kept where the process may act as other users (root,
	 * also of its own user namespace): fs's file server, which takes each request's
	 * ids. The others go, from the bounding set too. 0: all go.
	 */
	uint64_t caps;
	/* The user namespace's maps (fs's --uid-map/--gid-map): unprivileged, namespace mode. */
	const struct vu_id_map *uid_map, *gid_map;
	unsigned n_uid_map, n_gid_map;
};

#define VU_INIT_USAGE (-2)

struct vu_device_type {
	const char *name;             /* personality: vhost-user-<name>, vhostbox <name> */
	const char *const *aliases;   /* more argv[0] names, NULL-terminated, or NULL */
	const char *schema_type;      /* VHostUserBackendType in vhost-user.json */
	const char *summary;
	const char *qemu_args;        /* how QEMU attaches it to chardev vu0 (the manual's example) */
	uint32_t virtio_id;
	unsigned num_queues;          /* default queue count (an option may change it) */
	uint64_t features;            /* device-specific virtio feature bits */
	uint32_t config_size;         /* 0: no config space, CONFIG is not offered */
	bool inflight;                /* completes out of order: offer INFLIGHT_SHMFD */
	/*
	 * The device holds guest state that no front-end carries to a migration's
	 * destination (QEMU 10 migrates a vhost-user-gpu but never restarts it there):
	 * the dirty log (VHOST_F_LOG_ALL, LOG_SHMFD) is not offered, so QEMU refuses to
	 * migrate the VM ("vhost-user backend lacks VHOST_USER_PROTOCOL_F_LOG_SHMFD").
	 */
	bool unmigratable;

	/*
	 * NULL-name terminated, or NULL. Values are stored into the device's struct
	 * (created with its defaults by create) before init; options flagged
	 * VU_OPT_CAPABILITY are the features --print-capabilities lists, unless
	 * cap_available (optional) says this host cannot provide one.
	 */
	const struct vu_option *options;
	bool (*cap_available)(const char *feature);
	/* Features of the schema type that are not options (fs: "separate-options"), NULL-terminated, or NULL. */
	const char *const *schema_features;

	/* Creates the device with its defaults. */
	struct vu_dev *(*create)(void);
	/*
	 * Acts on the options (checks what a table cannot); failure ends the program before
	 * serving: -1 (status 1), or VU_INIT_USAGE after the one line (the options do not
	 * go together, or a value is wrong in a way the table cannot say: status 2).
	 */
	int (*init)(struct vu_dev *dev, struct vu_loop *loop);

	/* The ring has (maybe) new requests; it is started, enabled and mapped. */
	void (*kick)(struct vu_dev *dev, struct vu_vring *vq);
	/*
	 * Finish everything in flight on this ring before returning: the ring stops
	 * (GET_VRING_BASE, reset, disconnect) or guest memory is about to be remapped.
	 */
	void (*queue_drain)(struct vu_dev *dev, struct vu_vring *vq);
	/*
	 * The front-end stopped this ring (GET_VRING_BASE, RESET_DEVICE, the front-end
	 * left), whether or not it ran since it was set up; on the main thread, rings
	 * paused and already drained. Optional: for devices that hold something only
	 * while their rings run.
	 */
	void (*queue_stop)(struct vu_dev *dev, struct vu_vring *vq);
	/* The loop whose thread processes queue index (NULL hook: the main loop). */
	struct vu_loop *(*queue_loop)(struct vu_dev *dev, unsigned index);
	int (*get_config)(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len);
	int (*set_config)(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t len);
	/*
	 * The device is reset (RESET_DEVICE) or its front-end left: drop per-guest state
	 * so the next driver starts clean. Rings are already drained and stopped.
	 */
	void (*reset)(struct vu_dev *dev);
	void (*destroy)(struct vu_dev *dev);
	/*
	 * The front-end acked these features (SET_FEATURES); rings are paused. Devices
	 * whose data layout depends on them (virtio-net's header size) look here.
	 */
	void (*set_features)(struct vu_dev *dev, uint64_t features);
	/*
	 * Guest memory changed (SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG, the front-end
	 * left): every address the device translated before is void. Rings are paused
	 * (drained) and already remapped; mem is the new table, valid until the next call.
	 * When the front-end leaves, mem comes empty and is freed with the session after
	 * the call: a device keeps no pointer to an empty table.
	 */
	void (*mem_changed)(struct vu_dev *dev, const struct vu_mem *mem);
	/*
	 * State the device holds that QEMU does not carry, moved with a migration
	 * (DEVICE_STATE; every ring is stopped). save hands back a buffer it allocated
	 * (malloc; the caller frees it); load gets what the source saved and must check
	 * it (it comes from the front-end). Both 0 or -1. Devices with them offer
	 * VHOST_USER_PROTOCOL_F_DEVICE_STATE.
	 */
	int (*state_save)(struct vu_dev *dev, void **buf, size_t *len);
	int (*state_load)(struct vu_dev *dev, const void *buf, size_t len);

	/*
	 * Device-specific front-end messages, decoded by the session. A hook that is
	 * set makes the session accept the message (and offer its protocol feature).
	 * Each returns 0 or -1 (the request failed).
	 */
	int (*set_gpu_socket)(struct vu_dev *dev, int fd);               /* GPU_SET_SOCKET; owns fd */
	int (*send_rarp)(struct vu_dev *dev, const uint8_t mac[6]);       /* SEND_RARP (F_RARP) */
	int (*set_mtu)(struct vu_dev *dev, uint16_t mtu);                 /* NET_SET_MTU (F_NET_MTU) */

	/*
	 * Confinement (proto/sandbox.c). syscalls: what the device calls while serving
	 * (rings, requests, resets, its own threads, its exit), beyond what proto calls;
	 * NULL: nothing more. sandbox (optional), called once the options are set and
	 * before init: what this instance needs besides (a mode limit, a wider list,
	 * the host's network).
	 */
	const struct vu_syscall *syscalls;
	void (*sandbox)(const struct vu_dev *dev, struct vu_sandbox_needs *needs);
};

/* Every device instance starts with this; the device's own state follows. */
struct vu_dev {
	const struct vu_device_type *type;
	unsigned num_queues;          /* type->num_queues unless an option changed it */
	uint64_t features;            /* type->features plus what options add (e.g. RO) */
	unsigned max_queue_size;      /* largest ring accepted (SET_VRING_NUM); 32768 unless set */
	struct vu_session *session;   /* the front-end being served (set by the session), or NULL */
};

/*
 * Tells the front-end that the config space changed (BACKEND_CONFIG_CHANGE_MSG on the
 * back-end channel); nothing when there is no front-end or it gave no channel.
 */
void vu_dev_config_changed(struct vu_dev *dev);

/*
 * For devices that hold an fd per connection or per file (vsock, fs), in init: the
 * soft limit on open files goes up to the hard one (--rlimit-nofile, applied at
 * confinement, still has the last word).
 */
void vu_device_raise_nofile(void);

/* Creates an instance of the type with the type's defaults filled in. */
struct vu_dev *vu_device_create(const struct vu_device_type *type);

#endif
