/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * proto/iov.h on its own: vu_copy_small at every length it handles by moves (and
 * past them) and at each short length known when compiled, and each iovec helper's
 * inline case (the range in the first iovec) against its general case (the range
 * across several), byte for byte, with the bytes around each destination checked
 * untouched.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "proto/iov.h"
#include "test/check.h"

#define GUARD 32
#define MAX 160

static uint8_t src[MAX + 2 * GUARD], dst[MAX + 2 * GUARD], want[MAX + 2 * GUARD];

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + 1);
}

static void test_copy_small(void)
{
	unsigned bad = 0, first_bad = 0;

	/* Every length and a few misalignments of each side; the guards must stay. */
	for (size_t len = 0; len <= MAX; len++) {
		for (unsigned so = 0; so < 4; so++) {
			for (unsigned d_off = 0; d_off < 4; d_off++) {
				fill_pattern(src, sizeof(src), (unsigned)len + so);
				memset(dst, 0xa5, sizeof(dst));
				memcpy(want, dst, sizeof(want));
				memcpy(want + GUARD + d_off, src + GUARD + so, len);
				vu_copy_small(dst + GUARD + d_off, src + GUARD + so, len);
				if (memcmp(dst, want, sizeof(dst)) && !bad++)
					first_bad = (unsigned)len;
			}
		}
	}
	if (!CHECK_EQ(bad, 0, "copy-small-every-length-0-to-%d", MAX))
		check_note("first wrong at length %u", first_bad);
}

/*
 * A length known when compiled (under 16 bytes) takes vu_copy_small's other path, in
 * pieces that do not overlap: each length 1-15 through a constant, misaligned.
 */
static void test_copy_small_known_length(void)
{
	unsigned bad = 0, first_bad = 0;

#define COPY_KNOWN(n)                                                   \
	do {                                                            \
		fill_pattern(src, sizeof(src), n);                      \
		memset(dst, 0xa5, sizeof(dst));                         \
		memcpy(want, dst, sizeof(want));                        \
		memcpy(want + GUARD + 1, src + GUARD + 3, n);           \
		vu_copy_small(dst + GUARD + 1, src + GUARD + 3, n);     \
		if (memcmp(dst, want, sizeof(dst)) && !bad++)           \
			first_bad = n;                                  \
	} while (0)
	COPY_KNOWN(1);
	COPY_KNOWN(2);
	COPY_KNOWN(3);
	COPY_KNOWN(4);
	COPY_KNOWN(5);
	COPY_KNOWN(6);
	COPY_KNOWN(7);
	COPY_KNOWN(8);
	COPY_KNOWN(9);
	COPY_KNOWN(10);
	COPY_KNOWN(11);
	COPY_KNOWN(12);
	COPY_KNOWN(13);
	COPY_KNOWN(14);
	COPY_KNOWN(15);
#undef COPY_KNOWN
	if (!CHECK_EQ(bad, 0, "copy-small-known-lengths-1-to-15"))
		check_note("first wrong at length %u", first_bad);
}

/* The same bytes as one iovec and as three pieces of it (5 bytes, 40 bytes, the rest). */
static unsigned split3(uint8_t *base, size_t len, struct iovec *iov)
{
	size_t a = len < 5 ? len : 5, b = len - a < 40 ? len - a : 40;

	iov[0] = (struct iovec){ base, a };
	iov[1] = (struct iovec){ base + a, b };
	iov[2] = (struct iovec){ base + a + b, len - a - b };
	return 3;
}

static void test_helpers_agree(void)
{
	enum { LEN = 120 };
	uint8_t one[LEN], pieces[LEN], buf[LEN], from_one[LEN], from_pieces[LEN];
	struct iovec io = { one, LEN }, ip[3];
	unsigned np = split3(pieces, LEN, ip), bad_to = 0, bad_from = 0, bad_copy = 0, bad_slice = 0;

	for (size_t off = 0; off <= LEN; off += 3) {
		for (size_t len = 0; off + len <= LEN + 4; len += 5) {
			/* to_buf: what both give, and how much. */
			fill_pattern(one, LEN, 1);
			memcpy(pieces, one, LEN);
			memset(from_one, 0, LEN);
			memset(from_pieces, 0, LEN);
			size_t n1 = vu_iov_to_buf(&io, 1, off, from_one, len < LEN ? len : LEN);
			size_t n2 = vu_iov_to_buf(ip, np, off, from_pieces, len < LEN ? len : LEN);
			bad_to += n1 != n2 || memcmp(from_one, from_pieces, LEN);
			/* from_buf into both, then the whole of each compared. */
			fill_pattern(buf, LEN, 2);
			n1 = vu_iov_from_buf(&io, 1, off, buf, len < LEN ? len : LEN);
			n2 = vu_iov_from_buf(ip, np, off, buf, len < LEN ? len : LEN);
			bad_from += n1 != n2 || memcmp(one, pieces, LEN);
			/* copy: one iovec to one, against pieces to pieces, from offset 7 of the source. */
			uint8_t s1[LEN], s2[LEN];
			struct iovec is1 = { s1, LEN }, is2[3];
			unsigned ns = split3(s2, LEN, is2);
			fill_pattern(s1, LEN, 3);
			memcpy(s2, s1, LEN);
			n1 = vu_iov_copy(&io, 1, off, &is1, 1, 7, len);
			n2 = vu_iov_copy(ip, np, off, is2, ns, 7, len);
			bad_copy += n1 != n2 || memcmp(one, pieces, LEN);
			/* slice: the same bytes described, or -1 from both. */
			struct iovec so[3], sp[3];
			int k1 = vu_iov_slice(&io, 1, off, len, so, 3);
			int k2 = vu_iov_slice(ip, np, off, len, sp, 3);
			size_t t1 = k1 > 0 ? vu_iov_to_buf(so, (unsigned)k1, 0, from_one, LEN) : 0;
			size_t t2 = k2 > 0 ? vu_iov_to_buf(sp, (unsigned)k2, 0, from_pieces, LEN) : 0;
			bad_slice += (k1 < 0) != (k2 < 0) || t1 != t2 || memcmp(from_one, from_pieces, t1) ||
				     (k1 >= 0 && t1 != len);
		}
	}
	CHECK_EQ(bad_to, 0, "to-buf-one-iovec-and-pieces-agree");
	CHECK_EQ(bad_from, 0, "from-buf-one-iovec-and-pieces-agree");
	CHECK_EQ(bad_copy, 0, "copy-one-iovec-and-pieces-agree");
	CHECK_EQ(bad_slice, 0, "slice-one-iovec-and-pieces-agree");

	/* The edges: past the end copies what there is, slices fail, a slice may replace its source. */
	CHECK_EQ(vu_iov_to_buf(&io, 1, LEN - 4, buf, 10), 4, "to-buf-past-the-end-is-short");
	CHECK_EQ(vu_iov_to_buf(&io, 1, LEN + 1, buf, 1), 0, "to-buf-beyond-the-end-is-nothing");
	CHECK_EQ(vu_iov_copy(&io, 1, LEN - 3, &io, 1, 0, 10), 3, "copy-stops-where-the-destination-ends");
	CHECK_EQ(vu_iov_slice(&io, 1, LEN - 4, 5, ip, 3), -1, "slice-past-the-end-fails");
	CHECK_EQ(vu_iov_slice(&io, 1, 0, 8, ip, 0), -1, "slice-into-no-room-fails");
	CHECK_EQ(vu_iov_slice(&io, 1, 3, 0, ip, 3), 0, "slice-of-nothing-is-no-iovec");
	struct iovec self = io;
	CHECK(vu_iov_slice(&self, 1, 10, 20, &self, 1) == 1 && self.iov_base == one + 10 && self.iov_len == 20,
	      "slice-replaces-its-source");
	np = split3(pieces, LEN, ip);
	CHECK_EQ(vu_iov_size(ip, np), LEN, "size-of-the-pieces");
}

int main(void)
{
	check_deadline(30);
	test_copy_small();
	test_copy_small_known_length();
	test_helpers_agree();
	return check_exit();
}
