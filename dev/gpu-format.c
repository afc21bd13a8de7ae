/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The 2D pixel formats of virtio-gpu (all 32-bit, in eight byte orders) and
 * their conversion to what the display takes: x8r8g8b8 (a8r8g8b8 for cursors).
 */
#include <string.h>

#include "dev/gpu.h"

bool gpu_format_valid(uint32_t format)
{
	switch (format) {
	case VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM: case VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM:
	case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM: case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM:
	case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM: case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM:
	case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM: case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM:
		return true;
	}
	return false;
}

/* Byte positions of red, green, blue and alpha (or X) in a pixel of each format. */
static void channels(uint32_t format, unsigned pos[4])
{
	static const unsigned bgra[4] = { 2, 1, 0, 3 }, argb[4] = { 1, 2, 3, 0 },
			      rgba[4] = { 0, 1, 2, 3 }, abgr[4] = { 3, 2, 1, 0 };
	const unsigned *p;

	switch (format) {
	case VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM: case VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM: p = argb; break;
	case VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM: case VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM: p = rgba; break;
	case VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM: case VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM: p = abgr; break;
	default: p = bgra;
	}
	memcpy(pos, p, sizeof(bgra));
}

static bool has_alpha(uint32_t format)
{
	return format == VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM || format == VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM ||
	       format == VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM || format == VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM;
}

void gpu_convert_rows(uint32_t format, const uint8_t *src, size_t src_stride, uint8_t *dst, uint32_t width,
		      uint32_t height, bool keep_alpha)
{
	unsigned p[4];
	bool alpha = keep_alpha && has_alpha(format);

	channels(format, p);
	for (uint32_t y = 0; y < height; y++, src += src_stride, dst += (size_t)width * GPU_BPP) {
		if (p[0] == 2 && p[1] == 1 && p[2] == 0 && (!keep_alpha || alpha)) {
			memcpy(dst, src, (size_t)width * GPU_BPP); /* already B, G, R, A/X in memory */
			continue;
		}
		for (uint32_t x = 0; x < width; x++) {
			const uint8_t *s = src + x * GPU_BPP;
			uint8_t *d = dst + x * GPU_BPP;
			d[0] = s[p[2]];
			d[1] = s[p[1]];
			d[2] = s[p[0]];
			d[3] = alpha ? s[p[3]] : 0xff;
		}
	}
}
