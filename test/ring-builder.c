/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test/check.h"
#include "test/ring-builder.h"

static const uint64_t ram_gpa[2] = { RB_GPA, RB_GPA + RB_RAM0 };
static const uint64_t ram_size[2] = { RB_RAM0, RB_RAM1 };

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

int rb_memfd(uint64_t size)
{
	int fd = memfd_create("rb-guest-ram", MFD_CLOEXEC);

	if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void count_signal(struct vu_vring *vq)
{
	((struct rb *)vq->owner)->signals++;
}

static void count_defer(struct vu_vring *vq)
{
	((struct rb *)vq->owner)->defers++;
}

/* Region i: our own mapping, and the back-end's through vu_mem_add (which takes a dup). */
static int add_region(struct rb *rb, unsigned i)
{
	int fd = rb_memfd(ram_size[i]);

	if (fd < 0)
		return -1;
	void *p = mmap(NULL, ram_size[i], PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct vu_mem_region d = { .guest_phys_addr = ram_gpa[i], .memory_size = ram_size[i],
				   .userspace_addr = ram_gpa[i] + RB_UVA_DELTA };
	const char *why = p == MAP_FAILED ? "mmap failed" : vu_mem_add(&rb->mem, &d, dup(fd));
	close(fd);
	if (why) {
		check_note("ring builder: region %u: %s", i, why);
		if (p != MAP_FAILED)
			munmap(p, ram_size[i]);
		return -1;
	}
	rb->ram[i] = p;
	return 0;
}

/* A packed ring: the descriptor ring, the driver's event structure, the device's. */
static void lay_out_packed(struct rb *rb, unsigned num)
{
	uint64_t desc = RB_GPA, driver = desc + 16ull * num, device = driver + 4;

	rb->next = align_up(device + 4, 4096);
	rb->pdesc_gpa = desc;
	rb->pdesc = rb_host(rb, desc);
	rb->driver_event = rb_host(rb, driver);
	rb->device_event = rb_host(rb, device);
	rb->avail_wrap = rb->used_wrap = true;
	rb->vq.packed = true;
	rb->vq.desc_uva = desc + RB_UVA_DELTA;
	rb->vq.avail_uva = driver + RB_UVA_DELTA;
	rb->vq.used_uva = device + RB_UVA_DELTA;
	vu_vring_set_base(&rb->vq, VU_PACKED_BASE(0, 1, 0, 1));
}

int rb_init(struct rb *rb, unsigned num, unsigned flags)
{
	memset(rb, 0, sizeof(*rb));
	rb->mem.log.notify_fd = -1;
	vu_vring_init(&rb->vq);
	if (add_region(rb, 0) < 0 || add_region(rb, 1) < 0) {
		rb_fini(rb);
		return -1;
	}
	if (flags & RB_PACKED) {
		rb->chain = calloc(num ? num : 1, sizeof(*rb->chain));
		lay_out_packed(rb, num);
		goto common;
	}

	/* Descriptor table, avail ring, used ring, as a legacy driver lays them out. */
	uint64_t desc = RB_GPA;
	uint64_t avail = desc + 16ull * num;
	uint64_t used = align_up(avail + 6 + 2ull * num, 4096);
	rb->next = align_up(used + 6 + 8ull * num, 4096);
	rb->desc = rb_host(rb, desc);
	rb->avail = rb_host(rb, avail);
	rb->used = rb_host(rb, used);
	rb->used_event = &rb->avail->ring[num];
	rb->avail_event = (uint16_t *)&rb->used->ring[num];

	rb->vq.desc_uva = desc + RB_UVA_DELTA;
	rb->vq.avail_uva = avail + RB_UVA_DELTA;
	rb->vq.used_uva = used + RB_UVA_DELTA;
common:;
	struct vu_vring *vq = &rb->vq;
	vq->num = num;
	vq->event_idx = flags & RB_EVENT_IDX;
	vq->indirect = flags & RB_INDIRECT;
	vq->owner = rb;
	vq->signal_inband = count_signal;
	vq->defer = count_defer;
	vq->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vq->err_fd < 0 || !vu_vring_map(vq, &rb->mem)) {
		check_note("ring builder: a ring of %u entries cannot be mapped", num);
		rb_fini(rb);
		return -1;
	}
	return 0;
}

void rb_fini(struct rb *rb)
{
	vu_vring_free(&rb->vq);
	vu_mem_clear(&rb->mem);
	free(rb->chain);
	rb->chain = NULL;
	for (unsigned i = 0; i < 2; i++) {
		if (rb->ram[i])
			munmap(rb->ram[i], ram_size[i]);
		rb->ram[i] = NULL;
	}
	if (rb->vq.err_fd >= 0)
		close(rb->vq.err_fd);
	rb->vq.err_fd = -1;
}

void *rb_host(struct rb *rb, uint64_t gpa)
{
	for (unsigned i = 0; i < 2; i++)
		if (gpa >= ram_gpa[i] && gpa - ram_gpa[i] < ram_size[i])
			return rb->ram[i] + (gpa - ram_gpa[i]);
	return NULL;
}

void *rb_backend(struct rb *rb, uint64_t gpa)
{
	return vu_mem_gpa(&rb->mem, gpa, 1);
}

uint64_t rb_alloc(struct rb *rb, uint64_t len, uint64_t align)
{
	uint64_t gpa = align_up(rb->next, align);

	if (gpa + len > RB_GPA + RB_RAM0) {
		/* A test asking for more than it planned: make it fail loudly, not corrupt rings. */
		check_note("ring builder: region 0 is full");
		return RB_END + 0x100000;
	}
	rb->next = gpa + len;
	return gpa;
}

void rb_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	*d = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

uint16_t rb_chain(struct rb *rb, struct vring_desc *table, uint16_t first, unsigned n_out,
		  unsigned n_in, uint32_t len)
{
	unsigned n = n_out + n_in;

	for (unsigned i = 0; i < n; i++) {
		uint16_t flags = (i >= n_out ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		rb_desc(&table[(uint16_t)(first + i)], rb_alloc(rb, len, 8), len, flags,
			(uint16_t)(first + i + 1));
	}
	return first;
}

struct vring_desc *rb_table(struct rb *rb, unsigned n, uint64_t *gpa)
{
	*gpa = rb_alloc(rb, 16ull * n, 16);
	return rb_host(rb, *gpa);
}

void rb_offer(struct rb *rb, uint16_t head)
{
	rb->avail->ring[rb->avail_idx & (rb->vq.num - 1)] = head;
	rb->avail_idx++;
	__atomic_store_n(&rb->avail->idx, rb->avail_idx, __ATOMIC_RELEASE);
}

/* ---- packed rings -------------------------------------------------------------- */

uint16_t rb_avail_flags(bool wrap)
{
	return wrap ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED;
}

uint16_t rb_packed_add(struct rb *rb, uint16_t id, const struct vring_packed_desc *d, unsigned n)
{
	uint16_t head = rb->next_avail, head_flags = 0;

	for (unsigned i = 0; i < n; i++) {
		struct vring_packed_desc *r = &rb->pdesc[rb->next_avail];
		uint16_t flags = (d[i].flags & ~(VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED)) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0) | rb_avail_flags(rb->avail_wrap);
		r->addr = d[i].addr;
		r->len = d[i].len;
		r->id = id;
		if (i == 0)
			head_flags = flags;
		else
			r->flags = flags;
		if (++rb->next_avail == rb->vq.num) {
			rb->next_avail = 0;
			rb->avail_wrap = !rb->avail_wrap;
		}
	}
	if (id < rb->vq.num)
		rb->chain[id] = (uint16_t)n;
	__atomic_store_n(&rb->pdesc[head].flags, head_flags, __ATOMIC_RELEASE);
	return head;
}

uint16_t rb_packed_chain(struct rb *rb, uint16_t id, unsigned n_out, unsigned n_in, uint32_t len)
{
	struct vring_packed_desc d[64];
	unsigned n = n_out + n_in;

	if (n > 64)
		n = 64;
	for (unsigned i = 0; i < n; i++)
		d[i] = (struct vring_packed_desc){ .addr = rb_alloc(rb, len, 8), .len = len,
						   .flags = i >= n_out ? VRING_DESC_F_WRITE : 0 };
	return rb_packed_add(rb, id, d, n);
}

int rb_packed_used(struct rb *rb, uint16_t *id, uint32_t *len, uint16_t *flags)
{
	const struct vring_packed_desc *d = &rb->pdesc[rb->next_used];
	uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);

	if (!(f & VRING_PACKED_DESC_F_USED) != !rb->used_wrap || !(f & VRING_PACKED_DESC_F_AVAIL) != !rb->used_wrap)
		return 0;
	uint16_t i = d->id;
	if (id)
		*id = i;
	if (len)
		*len = d->len;
	if (flags)
		*flags = f;
	unsigned skip = i < rb->vq.num && rb->chain[i] ? rb->chain[i] : 1;
	unsigned p = rb->next_used + skip;
	if (p >= rb->vq.num) {
		p -= rb->vq.num;
		rb->used_wrap = !rb->used_wrap;
	}
	rb->next_used = (uint16_t)p;
	return 1;
}

/*
 * The walker says why it refuses a ring only in its log (stderr): the pop runs
 * with stderr on a memfd, whose text is kept in rb->log and passed on to stderr.
 */
/* vu_vring_pop (burst false) or vu_vring_pop_burst, what it logs caught in rb->log. */
static int pop_logged(struct rb *rb, struct vu_req *reqs, unsigned n, bool burst)
{
	static int log_fd = -1;
	int r;

	if (log_fd < 0)
		log_fd = memfd_create("rb-log", MFD_CLOEXEC);
	fflush(stderr);
	int saved = dup(2);
	if (log_fd < 0 || saved < 0 || ftruncate(log_fd, 0) < 0 ||
	    lseek(log_fd, 0, SEEK_SET) < 0 || dup2(log_fd, 2) < 0) {
		if (saved >= 0)
			close(saved);
		rb->log[0] = 0;
		return burst ? vu_vring_pop_burst(&rb->vq, reqs, n) : vu_vring_pop(&rb->vq, reqs);
	}
	r = burst ? vu_vring_pop_burst(&rb->vq, reqs, n) : vu_vring_pop(&rb->vq, reqs);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);

	ssize_t len = pread(log_fd, rb->log, sizeof(rb->log) - 1, 0);
	rb->log[len > 0 ? len : 0] = 0;
	if (len > 0 && write(2, rb->log, (size_t)len) < 0)
		rb->log[len] = 0; /* stderr gone: the text is still in rb->log */
	return r;
}

int rb_pop(struct rb *rb, struct vu_req *req)
{
	return pop_logged(rb, req, 1, false);
}

int rb_pop_burst(struct rb *rb, struct vu_req *reqs, unsigned n)
{
	return pop_logged(rb, reqs, n, true);
}

unsigned rb_errors(struct rb *rb)
{
	uint64_t v = 0;

	if (read(rb->vq.err_fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return (unsigned)v;
}
