/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The display end of the vhost-user-gpu side channel, for the gpu fuzz targets
 * (fuzz-gpu.c, fuzz-virgl.c): a socketpair handed over with GPU_SET_SOCKET whose
 * far end the harness reads on its own thread between steps, answering what the
 * back-end asks (protocol features, display info, EDID) and dropping what it
 * shows. Per operation it reads, stalls or closes, and it can answer wrongly.
 *
 * FZ_OP_DEVICE: an action byte (% FZ_DISPLAY_COUNT) and its arguments.
 */
#ifndef VU_TEST_FUZZ_DISPLAY_H
#define VU_TEST_FUZZ_DISPLAY_H

#include <stdbool.h>

struct fz_port;
struct fz_input;

enum fz_display_action {
	FZ_DISPLAY_READ,       /* n: read and answer again, n * 256 bytes a turn (0: all there is) */
	FZ_DISPLAY_STALL,      /* read nothing: the socket fills up */
	FZ_DISPLAY_CLOSE,      /* our end closes */
	FZ_DISPLAY_NEW,        /* a new channel (GPU_SET_SOCKET) replaces the old */
	FZ_DISPLAY_SIZE,       /* u16 width, u16 height (0: disabled): what GET_DISPLAY_INFO says */
	FZ_DISPLAY_RAW,        /* len, bytes: written as they are (unasked replies, garbage) */
	FZ_DISPLAY_FAULT,      /* kind: the next reply has the wrong size (1), request (2) or flags (3) */
	FZ_DISPLAY_FEATURES,   /* the protocol features offered (EDID 1, DMABUF2 2) */
	FZ_DISPLAY_COUNT
};

/* The fz_target hooks. */
void fz_display_connected(struct fz_port *p);
bool fz_display_service(struct fz_port *p);
void fz_display_op(struct fz_port *p, struct fz_input *in);
void fz_display_finish(struct fz_port *p);

#endif
