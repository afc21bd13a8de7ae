/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-scsi's shared declarations: the logical units, one SCSI command as
 * the transport (dev/scsi.c) hands it to the command set (dev/scsi-cmd.c,
 * dev/scsi-info.c), and the sense data every error carries.
 */
#ifndef VU_SCSI_H
#define VU_SCSI_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "dev/blk-io.h"

#define SCSI_MAX_LUNS 64
#define SCSI_SERIAL_MAX 32        /* bytes of --lun serial= (VPD page 0x80) */
#define SCSI_SEG_MAX 126          /* data segments per request we advertise */
#define SCSI_MAX_IOV (SCSI_SEG_MAX + 36)  /* + headers and region splits */
#define SCSI_SENSE_LEN 18         /* fixed-format sense data */
#define SCSI_MAX_XFER_BYTES (4u << 20)    /* one READ or WRITE at most (VPD 0xB0, config max_sectors) */
#define SCSI_MAX_WS_BLOCKS 0x400000u      /* MAXIMUM WRITE SAME LENGTH, also the largest UNMAP range */
#define SCSI_MAX_UNMAP_DESC 64u           /* MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT */

/* SAM status, sense keys and the additional sense codes we report (ASC << 8 | ASCQ). */
enum { SCSI_GOOD = 0x00, SCSI_CHECK_CONDITION = 0x02 };
enum {
	SK_NO_SENSE = 0x0, SK_MEDIUM_ERROR = 0x3, SK_HARDWARE_ERROR = 0x4, SK_ILLEGAL_REQUEST = 0x5,
	SK_DATA_PROTECT = 0x7,
};
enum {
	ASC_NONE = 0x0000,
	ASC_WRITE_ERROR = 0x0c00,
	ASC_UNRECOVERED_READ_ERROR = 0x1100,
	ASC_PARAMETER_LIST_LENGTH_ERROR = 0x1a00,
	ASC_INVALID_OPCODE = 0x2000,
	ASC_LBA_OUT_OF_RANGE = 0x2100,
	ASC_INVALID_FIELD_IN_CDB = 0x2400,
	ASC_LUN_NOT_SUPPORTED = 0x2500,
	ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x2600,
	ASC_WRITE_PROTECTED = 0x2700,
	ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900,
	ASC_INTERNAL_TARGET_FAILURE = 0x4400,
};

struct scsi_lun {
	char *spec;               /* --lun's value, split in place: path, then settings */
	const char *path;
	bool read_only, rotational;
	unsigned block_size;
	char serial[SCSI_SERIAL_MAX + 1];
	char ident[SCSI_SERIAL_MAX + 1]; /* VPD 0x83's name of the unit */
	bool wce;                 /* write cache enabled (the caching mode page): else every write is synced */
	struct blk_image img;
	uint64_t blocks;          /* capacity in logical blocks */
};

/* What the command set works on: the units and the I/O engine of the thread running it. */
struct scsi_target {
	struct scsi_lun *luns;
	unsigned nluns;
	bool writethrough;        /* the write caches' default: off */
	struct blk_io *io;
};

/* One command, from the request queue's point of view: what came and what goes back. */
struct scsi_cmd {
	uint8_t cdb[16];
	unsigned lun_id;          /* the LUN addressed */
	struct scsi_lun *lun;     /* NULL: no such unit */
	const struct iovec *out;  /* data-out: device-readable, after the request header */
	unsigned nout;
	uint64_t out_len;
	const struct iovec *in;   /* data-in: device-writable, after the response header */
	unsigned nin;
	uint64_t in_len;

	/* The outcome. */
	uint8_t status;
	uint8_t sense[SCSI_SENSE_LEN];
	unsigned sense_len;
	uint64_t in_done;         /* data-in bytes written */
	uint64_t out_done;        /* data-out bytes used */
	bool overrun;             /* the buffers cannot hold the transfer: no command status */

	/* Operations in flight for it: done() counts them down. */
	unsigned pending;
	bool failed;
	bool reading;             /* a failure is a read error (else a write error) */
	uint64_t expect;          /* what each operation's result must be */
	/* WRITE SAME of a non-zero block: copies left to write, where, and how io holds them. */
	uint64_t ws_left, ws_off;
	unsigned ws_nseg;         /* iovecs one copy takes */
	unsigned ws_chunk;        /* copies the writev in flight writes */
	struct iovec io[SCSI_MAX_IOV];   /* what the current operation transfers */
};

/*
 * Starts cmd, whose fields before io are zero but for its CDB and buffers (the outcome
 * starts GOOD, nothing moved): true when it is complete already, false when done()
 * will finish it.
 */
bool scsi_cmd_start(struct scsi_target *t, struct scsi_cmd *cmd);
/* One operation of cmd completed with result (bytes, or -errno): true when cmd is complete. */
bool scsi_cmd_done(struct scsi_target *t, struct scsi_cmd *cmd, int result);

/* CHECK CONDITION with fixed-format sense data: key, and asc as ASC << 8 | ASCQ. */
void scsi_sense(struct scsi_cmd *cmd, uint8_t key, uint16_t asc);
/*
 * ILLEGAL REQUEST, INVALID FIELD IN CDB (in_cdb) or IN PARAMETER LIST, pointing at
 * the field: its byte, and its most significant bit (bit < 0: the whole byte).
 */
void scsi_invalid(struct scsi_cmd *cmd, bool in_cdb, unsigned byte, int bit);
/* Copies len bytes of buf to data-in, no more than allocation length alloc nor the buffer holds. */
void scsi_data_in(struct scsi_cmd *cmd, const void *buf, uint64_t len, uint64_t alloc);

/* Informational commands (dev/scsi-info.c): they complete at once. */
void scsi_inquiry(struct scsi_target *t, struct scsi_cmd *cmd);
void scsi_report_luns(struct scsi_target *t, struct scsi_cmd *cmd);
void scsi_mode_sense(struct scsi_target *t, struct scsi_cmd *cmd);
void scsi_mode_select(struct scsi_target *t, struct scsi_cmd *cmd);
void scsi_report_opcodes(struct scsi_target *t, struct scsi_cmd *cmd);

/*
 * The commands we carry out (dev/scsi-cmd.c), for dispatch and for REPORT SUPPORTED
 * OPERATION CODES: usage[] is the CDB usage data (the bits a CDB may set).
 */
struct scsi_op {
	uint8_t opcode;
	bool has_sa;
	uint16_t sa;
	uint8_t cdb_len;
	bool any_lun;             /* also answered for a LUN that does not exist */
	void (*run)(struct scsi_target *t, struct scsi_cmd *cmd);
	uint8_t usage[16];
};
extern const struct scsi_op scsi_ops[];
extern const unsigned scsi_nops;

static inline uint16_t scsi_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t scsi_be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | p[1] << 8 | p[2]; }
static inline uint32_t scsi_be32(const uint8_t *p) { return (uint32_t)scsi_be16(p) << 16 | scsi_be16(p + 2); }
static inline uint64_t scsi_be64(const uint8_t *p) { return (uint64_t)scsi_be32(p) << 32 | scsi_be32(p + 4); }
static inline void scsi_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void scsi_put32(uint8_t *p, uint32_t v) { scsi_put16(p, v >> 16); scsi_put16(p + 2, (uint16_t)v); }
static inline void scsi_put64(uint8_t *p, uint64_t v) { scsi_put32(p, v >> 32); scsi_put32(p + 4, (uint32_t)v); }

#endif
