/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto/mem.c on its own: the guest memory table. Regions are memfds whose
 * bytes follow a pattern of their file offset, so a translation is checked by
 * what it points at, not only by whether it succeeds. Adding (sorted by gpa,
 * overlap and impossible regions refused, the fd always closed), removing and
 * clearing; gpa and uva translation at the edges of regions; ranges crossing
 * regions and holes (vu_mem_gpa_valid, vu_mem_gpa_iov and its entry limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/mem.h"
#include "test/check.h"
#include "test/ring-builder.h"

#define SZ 0x10000ull           /* the usual region size here */
#define UVA 0x7f0000000000ull   /* user addresses of the regions start here */

static struct vu_mem mem;

/* The byte at file offset off of a region file tagged tag. */
static uint8_t pattern(uint64_t off, uint8_t tag)
{
	return (uint8_t)(off * 7 + (off >> 8) + tag);
}

/* A memfd of size bytes following pattern(off, tag), or -1. */
static int pattern_fd(uint64_t size, uint8_t tag)
{
	int fd = rb_memfd(size);

	if (fd < 0)
		return -1;
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return -1;
	}
	for (uint64_t i = 0; i < size; i++)
		p[i] = pattern(i, tag);
	munmap(p, size);
	return fd;
}

static struct vu_mem_region desc(uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off)
{
	return (struct vu_mem_region){ .guest_phys_addr = gpa, .memory_size = size,
				       .userspace_addr = uva, .mmap_offset = off };
}

/* Adds a region of a fresh pattern file of file_size bytes; NULL or the reason. */
static const char *add(uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off, uint64_t file_size,
		       uint8_t tag)
{
	struct vu_mem_region d = desc(gpa, size, uva, off);
	return vu_mem_add(&mem, &d, pattern_fd(file_size, tag));
}

/* True when p is non-NULL and shows the bytes of file offset off of tag's file. */
static bool shows(const void *p, uint64_t off, uint8_t tag)
{
	const uint8_t *b = p;
	return b && b[0] == pattern(off, tag);
}

static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* ---- one region --------------------------------------------------------------- */

static void test_one_region(void)
{
	const uint64_t G = 0x100000, U = UVA;

	CHECK(add(G, SZ, U, 0, SZ, 1) == NULL && mem.n == 1, "one region: added");
	CHECK(shows(vu_mem_gpa(&mem, G, 1), 0, 1), "gpa: first byte");
	CHECK(shows(vu_mem_gpa(&mem, G + 1234, 8), 1234, 1), "gpa: a byte inside");
	CHECK(shows(vu_mem_gpa(&mem, G + SZ - 1, 1), SZ - 1, 1), "gpa: last byte");
	CHECK(shows(vu_mem_gpa(&mem, G, SZ), 0, 1), "gpa: the whole region");
	CHECK(!vu_mem_gpa(&mem, G + SZ, 1), "gpa: the byte after the region");
	CHECK(!vu_mem_gpa(&mem, G - 1, 1), "gpa: the byte before the region");
	CHECK(!vu_mem_gpa(&mem, G - 1, 2), "gpa: a range starting before the region");
	CHECK(!vu_mem_gpa(&mem, G + SZ - 1, 2), "gpa: the last byte and one more");
	CHECK(!vu_mem_gpa(&mem, G, SZ + 1), "gpa: one byte longer than the region");
	CHECK(!vu_mem_gpa(&mem, G + 16, UINT64_MAX), "gpa: length UINT64_MAX");
	CHECK(!vu_mem_gpa(&mem, G + 16, UINT64_MAX - G), "gpa: gpa + length wraps around");
	CHECK(!vu_mem_gpa(&mem, UINT64_MAX, 1), "gpa: address UINT64_MAX");
	CHECK(!vu_mem_gpa(&mem, U, 1), "gpa: a user address is not a gpa");

	CHECK(shows(vu_mem_uva(&mem, U, 1), 0, 1), "uva: first byte");
	CHECK(shows(vu_mem_uva(&mem, U + SZ - 1, 1), SZ - 1, 1), "uva: last byte");
	CHECK(shows(vu_mem_uva(&mem, U + 100, SZ - 100), 100, 1), "uva: up to the end");
	CHECK(!vu_mem_uva(&mem, U + SZ, 1), "uva: the byte after the region");
	CHECK(!vu_mem_uva(&mem, U - 1, 1), "uva: the byte before the region");
	CHECK(!vu_mem_uva(&mem, U + SZ - 1, 2), "uva: the last byte and one more");
	CHECK(!vu_mem_uva(&mem, U + 16, UINT64_MAX), "uva: length UINT64_MAX");
	CHECK(!vu_mem_uva(&mem, G, 1), "uva: a gpa is not a user address");

	/* The back-end's mapping is shared with the front-end's file. */
	uint8_t *p = vu_mem_gpa(&mem, G + 10, 1);
	if (p)
		*p = 0x5a;
	CHECK(p && *(uint8_t *)vu_mem_uva(&mem, U + 10, 1) == 0x5a, "gpa and uva: the same bytes");

	struct vu_mem_region d = desc(G, SZ, U, 0);
	CHECK(vu_mem_remove(&mem, &d) == NULL && mem.n == 0 && !vu_mem_gpa(&mem, G, 1),
	      "one region: removed, no longer translated");
}

/* A region mapped from a file offset that is not page aligned. */
static void test_offset(void)
{
	const uint64_t G = 0x100000, OFF = 4096 + 100;

	CHECK(add(G, SZ - OFF, UVA, OFF, SZ, 2) == NULL, "offset: region at file offset 4196 added");
	CHECK(shows(vu_mem_gpa(&mem, G, 1), OFF, 2), "offset: the first gpa shows file byte 4196");
	CHECK(shows(vu_mem_gpa(&mem, G + SZ - OFF - 1, 1), SZ - 1, 2),
	      "offset: the last gpa shows the file's last byte");
	CHECK(shows(vu_mem_uva(&mem, UVA + 5, 1), OFF + 5, 2), "offset: uva likewise");
	vu_mem_clear(&mem);
}

/* ---- several regions ---------------------------------------------------------- */

static void test_sorted(void)
{
	/* Added out of gpa order, with user addresses in yet another order. */
	static const struct { uint64_t gpa, uva; uint8_t tag; } r[] = {
		{ 0x300000, UVA + 0x000000, 3 },
		{ 0x100000, UVA + 0x200000, 1 },
		{ 0x500000, UVA + 0x100000, 5 },
		{ 0x200000, UVA + 0x400000, 2 },
	};
	bool ok = true;

	for (unsigned i = 0; i < 4; i++)
		ok = add(r[i].gpa, SZ, r[i].uva, 0, SZ, r[i].tag) == NULL && ok;
	CHECK(ok && mem.n == 4, "sorted: 4 regions added");
	CHECK(mem.r[0].gpa == 0x100000 && mem.r[1].gpa == 0x200000 && mem.r[2].gpa == 0x300000 &&
	      mem.r[3].gpa == 0x500000, "sorted: by gpa");
	for (unsigned i = 0; i < 4; i++) {
		CHECK(shows(vu_mem_gpa(&mem, r[i].gpa + 77, 1), 77, r[i].tag), "sorted: gpa %#llx translated",
		      (unsigned long long)r[i].gpa);
		CHECK(shows(vu_mem_uva(&mem, r[i].uva + 77, 1), 77, r[i].tag), "sorted: uva of %#llx translated",
		      (unsigned long long)r[i].gpa);
	}
	CHECK(!vu_mem_gpa(&mem, 0x400000, 1), "sorted: the hole at 0x400000 is not memory");

	/* Removing one keeps the rest sorted and translated. */
	struct vu_mem_region d = desc(0x200000, SZ, UVA + 0x400000, 0);
	CHECK(vu_mem_remove(&mem, &d) == NULL && mem.n == 3, "remove: the second of four");
	CHECK(mem.r[0].gpa == 0x100000 && mem.r[1].gpa == 0x300000 && mem.r[2].gpa == 0x500000,
	      "remove: still sorted");
	CHECK(!vu_mem_gpa(&mem, 0x200000, 1) && !vu_mem_uva(&mem, UVA + 0x400000, 1),
	      "remove: the removed region is not translated");
	CHECK(shows(vu_mem_gpa(&mem, 0x300000, 1), 0, 3) && shows(vu_mem_gpa(&mem, 0x500000, 1), 0, 5),
	      "remove: the others are");
	CHECK(vu_mem_remove(&mem, &d) != NULL, "remove: twice is refused");
	d = desc(0x300000, SZ / 2, UVA, 0);
	CHECK(vu_mem_remove(&mem, &d) != NULL && mem.n == 3, "remove: a different size is refused");
	d = desc(0x300000, SZ, UVA + 4096, 0);
	CHECK(vu_mem_remove(&mem, &d) != NULL && mem.n == 3, "remove: a different uva is refused");

	vu_mem_clear(&mem);
	CHECK(mem.n == 0 && !vu_mem_gpa(&mem, 0x100000, 1) && !vu_mem_uva(&mem, UVA, 1),
	      "clear: nothing left");
}

static void test_overlap(void)
{
	const uint64_t G = 0x200000;
	static const struct { const char *name; uint64_t gpa, size; } bad[] = {
		{ "the same range", G, SZ },
		{ "starting inside", G + SZ / 2, SZ },
		{ "ending inside", G - SZ / 2, SZ },
		{ "containing it", G - SZ, 3 * SZ },
		{ "inside it", G + 4096, 4096 },
		{ "its last byte", G + SZ - 1, SZ },
		{ "its first byte", G - SZ + 1, SZ },
	};

	CHECK(add(G, SZ, UVA, 0, 4 * SZ, 1) == NULL, "overlap: first region");
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vu_mem_region d = desc(bad[i].gpa, bad[i].size, UVA + 0x100000, 0);
		int fd = pattern_fd(4 * SZ, 9);
		const char *why = vu_mem_add(&mem, &d, fd);
		CHECK(why && strstr(why, "overlaps") && mem.n == 1, "overlap: refused: %s", bad[i].name);
		CHECK(fd_closed(fd), "overlap: %s: the fd is closed", bad[i].name);
	}
	CHECK(add(G + SZ, SZ, UVA + 0x100000, 0, SZ, 2) == NULL, "overlap: a region right after is not");
	CHECK(add(G - SZ, SZ, UVA + 0x200000, 0, SZ, 3) == NULL, "overlap: a region right before is not");
	CHECK(mem.n == 3 && mem.r[0].gpa == G - SZ && mem.r[2].gpa == G + SZ, "overlap: three, sorted");
	vu_mem_clear(&mem);
}

/* Regions that cannot be right: refused with a reason, nothing added, the fd closed. */
static void test_refused(void)
{
	static const struct {
		const char *name;
		uint64_t gpa, size, uva, off, file;
		const char *why;
	} bad[] = {
		{ "size 0", 0x100000, 0, UVA, 0, SZ, "size 0" },
		{ "gpa + size overflows", 0xfffffffffffff000ull, SZ, UVA, 0, SZ, "overflows" },
		{ "uva + size overflows", 0x100000, SZ, 0xfffffffffffff000ull, 0, SZ, "overflows" },
		{ "mmap_offset + size overflows", 0x100000, SZ, UVA, 0xfffffffffffff000ull, SZ, "overflows" },
		{ "size beyond half the address space", 0x100000, (uint64_t)SIZE_MAX / 2 + 1, UVA, 0, SZ,
		  "overflows" },
		{ "size beyond the end of the fd", 0x100000, 2 * SZ, UVA, 0, SZ, "beyond the end of its fd" },
		{ "offset + size one byte beyond the fd", 0x100000, SZ, UVA, 1, SZ, "beyond the end of its fd" },
		{ "offset at the end of the fd", 0x100000, 1, UVA, SZ, SZ, "beyond the end of its fd" },
		{ "offset far beyond the fd", 0x100000, SZ, UVA, 64ull << 20, SZ, "beyond the end of its fd" },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vu_mem_region d = desc(bad[i].gpa, bad[i].size, bad[i].uva, bad[i].off);
		int fd = pattern_fd(bad[i].file, 1);
		const char *why = vu_mem_add(&mem, &d, fd);
		if (!CHECK(why && strstr(why, bad[i].why) && mem.n == 0, "refused: %s", bad[i].name))
			check_note("%s: got \"%s\", want \"%s\"", bad[i].name, why ? why : "(accepted)",
				   bad[i].why);
		CHECK(fd_closed(fd), "refused: %s: the fd is closed", bad[i].name);
		vu_mem_clear(&mem);
	}

	struct vu_mem_region d = desc(0x100000, SZ, UVA, 0);
	const char *why = vu_mem_add(&mem, &d, -1);
	CHECK(why && strstr(why, "cannot be examined") && mem.n == 0, "refused: fd -1");
	int p[2];
	if (pipe(p) == 0) {
		why = vu_mem_add(&mem, &d, p[0]);
		CHECK(why && strstr(why, "cannot be mapped") && mem.n == 0 && fd_closed(p[0]),
		      "refused: a pipe (cannot be mapped), its fd closed");
		close(p[1]);
	}
	CHECK(add(0x100000, SZ, UVA, 0, SZ, 1) == NULL, "accepted: a region filling its fd exactly");
	CHECK(add(0x200000, SZ / 2, UVA + SZ, SZ / 2, SZ, 1) == NULL,
	      "accepted: a region ending at the end of its fd");
	int fd = pattern_fd(SZ, 1);
	d = desc(0x300000, SZ, UVA + 2 * SZ, 0);
	CHECK(vu_mem_add(&mem, &d, fd) == NULL && fd_closed(fd), "accepted: the fd is closed too");
	vu_mem_clear(&mem);
}

static void test_slots(void)
{
	int fd = pattern_fd(4096, 1);
	unsigned added = 0;

	for (unsigned i = 0; i < VU_MAX_MEM_SLOTS; i++) {
		struct vu_mem_region d = desc(0x100000 + 8192ull * i, 4096, UVA + 8192ull * i, 0);
		if (vu_mem_add(&mem, &d, dup(fd)) == NULL)
			added++;
	}
	CHECK_EQ(added, VU_MAX_MEM_SLOTS, "slots: %u regions", VU_MAX_MEM_SLOTS);
	struct vu_mem_region d = desc(0x10000000, 4096, UVA + 0x10000000, 0);
	const char *why = vu_mem_add(&mem, &d, dup(fd));
	CHECK(why && strstr(why, "no free memory slot") && mem.n == VU_MAX_MEM_SLOTS,
	      "slots: one more is refused");
	CHECK(shows(vu_mem_gpa(&mem, 0x100000 + 8192ull * (VU_MAX_MEM_SLOTS - 1) + 4095, 1), 4095, 1),
	      "slots: the last region is translated");
	vu_mem_clear(&mem);
	close(fd);
}

/* ---- ranges across regions ------------------------------------------------------ */

/*
 * A, B and C are contiguous in gpa (separate files and mappings), then a hole,
 * then D:  A [1M, 1M+64K)  B [1M+64K, 1M+128K)  C [1M+128K, 1M+192K)  hole  D [2M, 2M+64K).
 */
#define A 0x100000ull
#define END_C (A + 3 * SZ)
#define D 0x200000ull

static void test_ranges(void)
{
	bool ok = add(A, SZ, UVA, 0, SZ, 10) == NULL && add(A + SZ, SZ, UVA + 0x100000, 0, SZ, 11) == NULL &&
		  add(A + 2 * SZ, SZ, UVA + 0x200000, 0, SZ, 12) == NULL &&
		  add(D, SZ, UVA + 0x300000, 0, SZ, 13) == NULL;
	if (!CHECK(ok, "ranges: regions A, B, C, hole, D"))
		return;

	CHECK(!vu_mem_gpa(&mem, A + SZ - 4, 8), "ranges: vu_mem_gpa does not cross regions");
	CHECK(vu_mem_gpa_valid(&mem, A + SZ - 4, 8), "valid: across A and B");
	CHECK(vu_mem_gpa_valid(&mem, A, 3 * SZ), "valid: all of A, B and C");
	CHECK(vu_mem_gpa_valid(&mem, END_C - 1, 1), "valid: the last byte of C");
	CHECK(!vu_mem_gpa_valid(&mem, A, 3 * SZ + 1), "valid: one byte into the hole");
	CHECK(!vu_mem_gpa_valid(&mem, END_C - 4, D - END_C + 8), "valid: across the hole");
	CHECK(!vu_mem_gpa_valid(&mem, A - 1, 2), "valid: starting before A");
	CHECK(!vu_mem_gpa_valid(&mem, D + 8, UINT64_MAX), "valid: gpa + length overflows");
	CHECK(vu_mem_gpa_valid(&mem, D + SZ - 8, 8), "valid: the last bytes of D");
	CHECK(!vu_mem_gpa_valid(&mem, D + SZ - 8, 9), "valid: one past the end of D");

	struct iovec iov[4];
	int n = vu_mem_gpa_iov(&mem, A + 100, 200, iov, 4);
	CHECK(n == 1 && iov[0].iov_len == 200 && shows(iov[0].iov_base, 100, 10), "iov: inside A is one");
	n = vu_mem_gpa_iov(&mem, A + SZ - 10, 30, iov, 4);
	CHECK(n == 2 && iov[0].iov_len == 10 && shows(iov[0].iov_base, SZ - 10, 10) &&
	      iov[1].iov_len == 20 && shows(iov[1].iov_base, 0, 11), "iov: across A and B is two");
	n = vu_mem_gpa_iov(&mem, A + SZ - 10, SZ + 20, iov, 4);
	CHECK(n == 3 && iov[0].iov_len == 10 && iov[1].iov_len == SZ && shows(iov[1].iov_base, 0, 11) &&
	      iov[2].iov_len == 10 && shows(iov[2].iov_base, 0, 12), "iov: across A, B and C is three");
	CHECK_EQ(vu_mem_gpa_iov(&mem, A + SZ - 10, SZ + 20, iov, 3), 3, "iov: three with max 3");
	CHECK_EQ(vu_mem_gpa_iov(&mem, A + SZ - 10, SZ + 20, iov, 2), -1, "iov: three with max 2 fails");
	CHECK_EQ(vu_mem_gpa_iov(&mem, A, 8, iov, 0), -1, "iov: one with max 0 fails");
	n = vu_mem_gpa_iov(&mem, END_C - 16, 16, iov, 4);
	CHECK(n == 1 && iov[0].iov_len == 16 && shows(iov[0].iov_base, SZ - 16, 12),
	      "iov: up to the last byte of C");
	CHECK_EQ(vu_mem_gpa_iov(&mem, END_C - 16, 17, iov, 4), -1, "iov: one byte into the hole fails");
	CHECK_EQ(vu_mem_gpa_iov(&mem, END_C + 16, 16, iov, 4), -1, "iov: inside the hole fails");
	CHECK_EQ(vu_mem_gpa_iov(&mem, D + 8, UINT64_MAX - 4, iov, 4), -1, "iov: gpa + length overflows");
	CHECK_EQ(vu_mem_gpa_iov(&mem, D + 8, 0, iov, 4), 0, "iov: length 0 is no iovec");

	/* The bytes through the iovecs are A's, then B's, then C's, each from its file. */
	n = vu_mem_gpa_iov(&mem, A + SZ - 3, SZ + 6, iov, 4);
	bool same = n == 3;
	for (int i = 0; same && i < n; i++) {
		uint64_t off = i == 0 ? SZ - 3 : 0;
		for (size_t j = 0; same && j < iov[i].iov_len; j++)
			same = ((uint8_t *)iov[i].iov_base)[j] == pattern(off + j, (uint8_t)(10 + i));
	}
	CHECK(same, "iov: every byte from the right file");
	vu_mem_clear(&mem);
}

int main(void)
{
	check_deadline(60);
	test_one_region();
	test_offset();
	test_sorted();
	test_overlap();
	test_refused();
	test_slots();
	test_ranges();
	return check_exit();
}
