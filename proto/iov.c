/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <string.h>

#include "proto/iov.h"

size_t vu_iov_buf_copy(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len, bool to_buf)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t chunk = iov[i].iov_len - offset;
		if (chunk > len - done)
			chunk = len - done;
		char *g = (char *)iov[i].iov_base + offset;
		if (to_buf)
			memcpy((char *)buf + done, g, chunk);
		else
			memcpy(g, (const char *)buf + done, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

size_t vu_iov_copy_any(const struct iovec *dst, unsigned dn, size_t doff, const struct iovec *src,
		       unsigned sn, size_t soff, size_t len)
{
	unsigned d = 0, s = 0;
	size_t done = 0;

	while (d < dn && doff >= dst[d].iov_len)
		doff -= dst[d++].iov_len;
	while (s < sn && soff >= src[s].iov_len)
		soff -= src[s++].iov_len;
	while (done < len && d < dn && s < sn) {
		size_t chunk = len - done;
		if (chunk > dst[d].iov_len - doff)
			chunk = dst[d].iov_len - doff;
		if (chunk > src[s].iov_len - soff)
			chunk = src[s].iov_len - soff;
		memcpy((char *)dst[d].iov_base + doff, (const char *)src[s].iov_base + soff, chunk);
		done += chunk;
		doff += chunk;
		soff += chunk;
		if (doff == dst[d].iov_len) {
			d++;
			doff = 0;
		}
		if (soff == src[s].iov_len) {
			s++;
			soff = 0;
		}
	}
	return done;
}

int vu_iov_slice_any(const struct iovec *src, unsigned n, size_t offset, size_t len,
		     struct iovec *dst, unsigned max)
{
	unsigned count = 0;

	for (unsigned i = 0; i < n && len; i++) {
		if (offset >= src[i].iov_len) {
			offset -= src[i].iov_len;
			continue;
		}
		if (count == max)
			return -1;
		size_t chunk = src[i].iov_len - offset;
		if (chunk > len)
			chunk = len;
		dst[count].iov_base = (char *)src[i].iov_base + offset;
		dst[count].iov_len = chunk;
		count++;
		len -= chunk;
		offset = 0;
	}
	return len ? -1 : (int)count;
}
