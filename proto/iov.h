/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers over iovec arrays that point into guest memory. */
#ifndef VU_IOV_H
#define VU_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/*
 * memcpy for the short copies of the per-packet path (headers, addresses, small
 * frames): a head and a tail of the same width, overlapping in the middle, both
 * loaded before either is stored; a call through the library's dispatch costs more
 * than such a copy. A size known when compiled, under 16 bytes, goes in pieces that
 * do not overlap (below). Longer copies go to memcpy.
 */
static inline void vu_copy_small(void *dst, const void *src, size_t len)
{
	char *d = dst;
	const char *s = src;

#define VU_MOVE_PAIR(T)                                              \
	do {                                                         \
		T head_, tail_;                                      \
		memcpy(&head_, s, sizeof(T));                        \
		memcpy(&tail_, s + len - sizeof(T), sizeof(T));      \
		memcpy(d, &head_, sizeof(T));                        \
		memcpy(d + len - sizeof(T), &tail_, sizeof(T));      \
	} while (0)
	/* A vector type: as a struct, it went through the stack. */
	typedef uint8_t vu_move16 __attribute__((vector_size(16)));
	if (__builtin_constant_p(len) && len < 16) {
		/*
		 * A known size (a header, the addresses): pieces that do not overlap, so that
		 * a later load of either part of the copy is forwarded from one store. A load
		 * over two stores waits for them to land, and so for every older store, which
		 * may be one into a guest line still on its way from another core.
		 */
		size_t at = 0;
		if (len & 8) {
			uint64_t v;
			memcpy(&v, s, 8);
			memcpy(d, &v, 8);
			at = 8;
		}
		if (len & 4) {
			uint32_t v;
			memcpy(&v, s + at, 4);
			memcpy(d + at, &v, 4);
			at += 4;
		}
		if (len & 2) {
			uint16_t v;
			memcpy(&v, s + at, 2);
			memcpy(d + at, &v, 2);
			at += 2;
		}
		if (len & 1)
			d[at] = s[at];
	} else if (len > 64) {
		memcpy(d, s, len);
	} else if (len > 32) {
		/* The first and last 32 bytes, each as two 16-byte moves (a 32-byte type spills). */
		vu_move16 a, b, y, z;
		memcpy(&a, s, 16);
		memcpy(&b, s + 16, 16);
		memcpy(&y, s + len - 32, 16);
		memcpy(&z, s + len - 16, 16);
		memcpy(d, &a, 16);
		memcpy(d + 16, &b, 16);
		memcpy(d + len - 32, &y, 16);
		memcpy(d + len - 16, &z, 16);
	} else if (len >= 16) {
		VU_MOVE_PAIR(vu_move16);
	} else if (len >= 8) {
		VU_MOVE_PAIR(uint64_t);
	} else if (len >= 4) {
		VU_MOVE_PAIR(uint32_t);
	} else if (len) {
		char first = s[0], mid = s[len / 2], last = s[len - 1];
		d[0] = first;
		d[len / 2] = mid;
		d[len - 1] = last;
	}
#undef VU_MOVE_PAIR
}

/* Total length of n iovecs. */
static inline size_t vu_iov_size(const struct iovec *iov, unsigned n)
{
	size_t total = 0;

	for (unsigned i = 0; i < n; i++)
		total += iov[i].iov_len;
	return total;
}
/* vu_iov_to_buf (to_buf) or vu_iov_from_buf for any range. */
size_t vu_iov_buf_copy(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len, bool to_buf);

/*
 * Copies up to len bytes starting at offset out of / into the iovecs; returns bytes
 * copied. Inline where the range lies in the first iovec (headers, addresses: the
 * per-packet case, where a call and a loop would cost more than the copy).
 */
static inline size_t vu_iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len)
{
	if (n && offset <= iov[0].iov_len && len <= iov[0].iov_len - offset) {
		vu_copy_small(buf, (const char *)iov[0].iov_base + offset, len);
		return len;
	}
	return vu_iov_buf_copy(iov, n, offset, buf, len, true);
}

static inline size_t vu_iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
				     size_t len)
{
	if (n && offset <= iov[0].iov_len && len <= iov[0].iov_len - offset) {
		vu_copy_small((char *)iov[0].iov_base + offset, buf, len);
		return len;
	}
	return vu_iov_buf_copy(iov, n, offset, (void *)buf, len, false);
}
/*
 * Copies len bytes from src (starting at soff) to dst (starting at doff); returns
 * the bytes copied, less than len where either side ends first.
 */
size_t vu_iov_copy_any(const struct iovec *dst, unsigned dn, size_t doff, const struct iovec *src,
		       unsigned sn, size_t soff, size_t len);
/* Inline where the range lies in the first iovec of both (a frame in one buffer). */
static inline size_t vu_iov_copy(const struct iovec *dst, unsigned dn, size_t doff, const struct iovec *src,
				 unsigned sn, size_t soff, size_t len)
{
	if (dn && sn && doff <= dst[0].iov_len && len <= dst[0].iov_len - doff && soff <= src[0].iov_len &&
	    len <= src[0].iov_len - soff) {
		vu_copy_small((char *)dst[0].iov_base + doff, (const char *)src[0].iov_base + soff, len);
		return len;
	}
	return vu_iov_copy_any(dst, dn, doff, src, sn, soff, len);
}
/*
 * Describes bytes [offset, offset+len) of src as iovecs in dst (at most max).
 * Returns the count, or -1 if the range is not inside src or needs more than max.
 * dst may be src: the slice then replaces what it was cut from.
 */
int vu_iov_slice_any(const struct iovec *src, unsigned n, size_t offset, size_t len,
		     struct iovec *dst, unsigned max);
/* Inline where the range lies in the first iovec. */
static inline int vu_iov_slice(const struct iovec *src, unsigned n, size_t offset, size_t len,
			       struct iovec *dst, unsigned max)
{
	if (n && max && len && offset <= src[0].iov_len && len <= src[0].iov_len - offset) {
		dst[0] = (struct iovec){ (char *)src[0].iov_base + offset, len };
		return 1;
	}
	return vu_iov_slice_any(src, n, offset, len, dst, max);
}

#endif
