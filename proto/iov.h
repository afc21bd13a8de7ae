/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers over iovec arrays that point into guest memory. */
#ifndef VU_IOV_H
#define VU_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Total length of n iovecs. */
size_t vu_iov_size(const struct iovec *iov, unsigned n);
/* Copies up to len bytes starting at offset out of / into the iovecs; returns bytes copied. */
size_t vu_iov_to_buf(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len);
size_t vu_iov_from_buf(const struct iovec *iov, unsigned n, size_t offset, const void *buf, size_t len);
/*
 * Copies len bytes from src (starting at soff) to dst (starting at doff); returns
 * the bytes copied, less than len where either side ends first.
 */
size_t vu_iov_copy(const struct iovec *dst, unsigned dn, size_t doff, const struct iovec *src,
		   unsigned sn, size_t soff, size_t len);
/*
 * Describes bytes [offset, offset+len) of src as iovecs in dst (at most max).
 * Returns the count, or -1 if the range is not inside src or needs more than max.
 */
int vu_iov_slice(const struct iovec *src, unsigned n, size_t offset, size_t len,
		 struct iovec *dst, unsigned max);

#endif
