/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers over iovec arrays that point into guest memory. */
#ifndef VU_IOV_H
#define VU_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

/* Total length of n iovecs. */
size_t vu_iov_size(const struct iovec *iov, unsigned n);
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
		memcpy(buf, (const char *)iov[0].iov_base + offset, len);
		return len;
	}
	return vu_iov_buf_copy(iov, n, offset, buf, len, true);
}

static inline size_t vu_iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf,
				     size_t len)
{
	if (n && offset <= iov[0].iov_len && len <= iov[0].iov_len - offset) {
		memcpy((char *)iov[0].iov_base + offset, buf, len);
		return len;
	}
	return vu_iov_buf_copy(iov, n, offset, (void *)buf, len, false);
}
/*
 * Copies len bytes from src (starting at soff) to dst (starting at doff); returns
 * the bytes copied, less than len where either side ends first.
 */
size_t vu_iov_copy(const struct iovec *dst, unsigned dn, size_t doff, const struct iovec *src,
		   unsigned sn, size_t soff, size_t len);
/*
 * Describes bytes [offset, offset+len) of src as iovecs in dst (at most max).
 * Returns the count, or -1 if the range is not inside src or needs more than max.
 * dst may be src: the slice then replaces what it was cut from.
 */
int vu_iov_slice(const struct iovec *src, unsigned n, size_t offset, size_t len,
		 struct iovec *dst, unsigned max);

#endif
