/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The SCSI command set of a direct-access block device (SBC-4, SPC-4): dispatch
 * by opcode, CDB checks with their sense data, and the commands that touch the
 * medium, queued on the image's io_uring straight into guest memory. What only
 * describes the unit (INQUIRY, mode pages, REPORT LUNS, ...) is dev/scsi-info.c.
 */
#include <errno.h>
#include <string.h>

#include "dev/scsi.h"
#include "proto/iov.h"

/* Sense data in fixed format, current error: key, ASC and ASCQ (b: SCSI_SENSE_LEN bytes). */
static void fixed_sense(uint8_t *b, uint8_t key, uint16_t asc)
{
	memset(b, 0, SCSI_SENSE_LEN);
	b[0] = 0x70;
	b[2] = key;
	b[7] = SCSI_SENSE_LEN - 8;
	b[12] = asc >> 8;
	b[13] = asc & 0xff;
}

void scsi_sense(struct scsi_cmd *c, uint8_t key, uint16_t asc)
{
	c->status = SCSI_CHECK_CONDITION;
	fixed_sense(c->sense, key, asc);
	c->sense_len = SCSI_SENSE_LEN;
}

void scsi_invalid(struct scsi_cmd *c, bool in_cdb, unsigned byte, int bit)
{
	scsi_sense(c, SK_ILLEGAL_REQUEST, in_cdb ? ASC_INVALID_FIELD_IN_CDB : ASC_INVALID_FIELD_IN_PARAMETER_LIST);
	/* Sense-key specific: SKSV, C/D, BPV and the bit, then the field's byte. */
	c->sense[15] = 0x80 | (in_cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | bit : 0);
	c->sense[16] = byte >> 8;
	c->sense[17] = byte & 0xff;
}

void scsi_data_in(struct scsi_cmd *c, const void *buf, uint64_t len, uint64_t alloc)
{
	uint64_t n = len < alloc ? len : alloc;

	if (n > c->in_len)
		n = c->in_len;
	c->in_done = vu_iov_from_buf(c->in, c->nin, 0, buf, n);
}

/* A transfer the guest's buffers cannot hold: the transport answers OVERRUN, no status. */
static void overrun(struct scsi_cmd *c)
{
	c->overrun = true;
}

/* Where a READ, WRITE or WRITE SAME CDB's block count starts (its most significant byte). */
static unsigned count_byte(const uint8_t *cdb)
{
	static const uint8_t by_group[8] = { 4, 7, 7, 0, 10, 6, 0, 0 };
	return by_group[cdb[0] >> 5];
}

/* The LBA and block count of a READ, WRITE, VERIFY, WRITE SAME or SYNCHRONIZE CACHE CDB. */
static void lba_count(const uint8_t *cdb, uint64_t *lba, uint64_t *n)
{
	switch (cdb[0] >> 5) {
	case 0: /* 6 bytes: a 21-bit LBA; 0 blocks means 256 */
		*lba = scsi_be24(cdb + 1) & 0x1fffff;
		*n = cdb[4] ? cdb[4] : 256;
		break;
	case 5: /* 12 */
		*lba = scsi_be32(cdb + 2);
		*n = scsi_be32(cdb + 6);
		break;
	case 4: /* 16 */
		*lba = scsi_be64(cdb + 2);
		*n = scsi_be32(cdb + 10);
		break;
	default: /* 10 */
		*lba = scsi_be32(cdb + 2);
		*n = scsi_be16(cdb + 7);
	}
}

static bool in_range(struct scsi_cmd *c, uint64_t lba, uint64_t n)
{
	if (lba <= c->lun->blocks && n <= c->lun->blocks - lba)
		return true;
	scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	return false;
}

static bool writable(struct scsi_cmd *c)
{
	if (!c->lun->read_only)
		return true;
	scsi_sense(c, SK_DATA_PROTECT, ASC_WRITE_PROTECTED);
	return false;
}

/* The operation could not be queued (the ring is full even after submitting). */
static void queue_failed(struct scsi_cmd *c)
{
	scsi_sense(c, SK_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
}

static void test_unit_ready(struct scsi_target *t, struct scsi_cmd *c)
{
}

/* Sense data is returned with each CHECK CONDITION, so there is none pending here. */
static void request_sense(struct scsi_target *t, struct scsi_cmd *c)
{
	uint8_t key = c->lun ? SK_NO_SENSE : SK_ILLEGAL_REQUEST;
	uint16_t asc = c->lun ? ASC_NONE : ASC_LUN_NOT_SUPPORTED;
	uint8_t buf[SCSI_SENSE_LEN] = { 0 };

	if (c->cdb[1] & 0x01) { /* DESC: descriptor format, no descriptors */
		buf[0] = 0x72;
		buf[1] = key;
		buf[2] = asc >> 8;
		buf[3] = asc & 0xff;
		scsi_data_in(c, buf, 8, c->cdb[4]);
		return;
	}
	fixed_sense(buf, key, asc);
	scsi_data_in(c, buf, sizeof(buf), c->cdb[4]);
}

static void start_stop_unit(struct scsi_target *t, struct scsi_cmd *c)
{
	/* A fixed disk that is always ready: power conditions and stopping change nothing. */
}

/* READ and WRITE (6, 10, 12, 16): one readv or writev between the image and the guest's buffers. */
static void read_write(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	bool write = (c->cdb[0] & 0x1f) == 0x0a;
	uint64_t lba, n;

	if ((c->cdb[0] >> 5) && (c->cdb[1] & 0xe0)) /* RDPROTECT/WRPROTECT: no protection information */
		return scsi_invalid(c, true, 1, 7);
	lba_count(c->cdb, &lba, &n);
	uint64_t bytes = n * lun->block_size;
	if (bytes > SCSI_MAX_XFER_BYTES)
		return scsi_invalid(c, true, count_byte(c->cdb), -1);
	if ((write ? c->out_len : c->in_len) < bytes)
		return overrun(c);
	if (!in_range(c, lba, n) || (write && !writable(c)) || !n)
		return;
	int k = vu_iov_slice(write ? c->out : c->in, write ? c->nout : c->nin, 0, bytes, c->io, SCSI_MAX_IOV);
	if (k < 0)
		return queue_failed(c);
	c->expect = bytes;
	c->reading = !write;
	bool fua = (c->cdb[0] >> 5) && (c->cdb[1] & 0x08);
	int r = write ? blk_io_writev(t->io, lun->img.fd, c->io, k, lba * lun->block_size, fua || !lun->wce, c)
		      : blk_io_readv(t->io, lun->img.fd, c->io, k, lba * lun->block_size, c);
	if (r < 0)
		return queue_failed(c);
	if (write)
		c->out_done = bytes;
	else
		c->in_done = bytes;
	c->pending = 1;
}

/* VERIFY (10, 16) without BYTCHK: the range is checked; the medium has no errors to find. */
static void verify(struct scsi_target *t, struct scsi_cmd *c)
{
	uint64_t lba, n;

	if (c->cdb[1] & 0xe0) /* VRPROTECT */
		return scsi_invalid(c, true, 1, 7);
	if (c->cdb[1] & 0x06) /* BYTCHK: no comparison offered */
		return scsi_invalid(c, true, 1, 2);
	lba_count(c->cdb, &lba, &n);
	in_range(c, lba, n);
}

static void synchronize_cache(struct scsi_target *t, struct scsi_cmd *c)
{
	uint64_t lba, n;

	lba_count(c->cdb, &lba, &n);
	if (!in_range(c, lba, n))
		return;
	c->expect = 0;
	c->reading = false;
	if (blk_io_fdatasync(t->io, c->lun->img.fd, c) < 0)
		return queue_failed(c);
	c->pending = 1;
}

/* Whether the first len bytes of the iovecs are all zero. */
static bool all_zero(const struct iovec *iov, unsigned n, uint64_t len)
{
	for (unsigned i = 0; i < n && len; i++) {
		const uint8_t *p = iov[i].iov_base;
		uint64_t m = iov[i].iov_len < len ? iov[i].iov_len : len;
		for (uint64_t j = 0; j < m; j++)
			if (p[j])
				return false;
		len -= m;
	}
	return true;
}

/* The next writev of a WRITE SAME's pattern: as many copies as c->io describes, at most ws_left. */
static bool write_same_next(struct scsi_target *t, struct scsi_cmd *c)
{
	unsigned nseg = c->ws_nseg, copies = SCSI_MAX_IOV / nseg;

	if (copies > c->ws_left)
		copies = (unsigned)c->ws_left;
	c->ws_chunk = copies;
	c->expect = (uint64_t)copies * c->lun->block_size;
	return blk_io_writev(t->io, c->lun->img.fd, c->io, copies * nseg, c->ws_off, !c->lun->wce, c) == 0;
}

/*
 * WRITE SAME (10, 16): a zero block (or NDOB) becomes a fallocate that zeroes, or
 * deallocates with UNMAP; any other block is written over the range from the
 * guest's buffer itself, described again and again in one iovec array.
 */
static void write_same(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	bool ndob = c->cdb[0] == 0x93 && (c->cdb[1] & 0x01);
	bool unmap = c->cdb[1] & 0x08;
	uint64_t lba, n;

	if (c->cdb[1] & 0xf0) /* WRPROTECT, ANCHOR */
		return scsi_invalid(c, true, 1, c->cdb[1] & 0xe0 ? 7 : 4);
	lba_count(c->cdb, &lba, &n);
	if (!n || n > SCSI_MAX_WS_BLOCKS) /* WSNZ: 0 blocks is not "to the end" here */
		return scsi_invalid(c, true, count_byte(c->cdb), -1);
	if (!ndob && c->out_len < lun->block_size)
		return overrun(c);
	if (!in_range(c, lba, n) || !writable(c))
		return;
	c->reading = false;
	c->expect = 0;
	if (!ndob)
		c->out_done = lun->block_size;
	if (ndob || all_zero(c->out, c->nout, lun->block_size)) {
		int r = blk_io_zero(t->io, &lun->img, unmap ? BLK_ZERO_UNMAP : BLK_ZERO, lba * lun->block_size,
				    n * lun->block_size, c);
		if (r < 0)
			scsi_sense(c, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
		else if (r == 0)
			c->pending = 1;
		return;
	}
	int nseg = vu_iov_slice(c->out, c->nout, 0, lun->block_size, c->io, SCSI_MAX_IOV);
	if (nseg < 0)
		return queue_failed(c);
	for (unsigned i = nseg; i + nseg <= SCSI_MAX_IOV; i += nseg)
		memcpy(&c->io[i], c->io, nseg * sizeof(c->io[0]));
	c->ws_nseg = nseg;
	c->ws_left = n;
	c->ws_off = lba * lun->block_size;
	if (!write_same_next(t, c))
		return queue_failed(c);
	c->pending = 1;
}

/* UNMAP: every block descriptor checked first, then each range deallocated. */
static void unmap(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	uint16_t plen = scsi_be16(c->cdb + 7);
	uint8_t hdr[8], d[16];

	if (c->cdb[1] & 0x01) /* ANCHOR */
		return scsi_invalid(c, true, 1, 0);
	if (!writable(c) || !plen)
		return;
	if (plen < 8)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	if (c->out_len < plen)
		return overrun(c);
	c->out_done = plen;
	vu_iov_to_buf(c->out, c->nout, 0, hdr, sizeof(hdr));
	unsigned bd_len = scsi_be16(hdr + 2);
	unsigned ndesc = (bd_len < plen - 8u ? bd_len : plen - 8u) / 16; /* a partial one is ignored */
	if (ndesc > SCSI_MAX_UNMAP_DESC) /* BLOCK DESCRIPTOR DATA LENGTH */
		return scsi_invalid(c, false, 2, -1);
	for (unsigned i = 0; i < ndesc; i++) {
		vu_iov_to_buf(c->out, c->nout, 8 + 16 * i, d, sizeof(d));
		if (scsi_be32(d + 8) > SCSI_MAX_WS_BLOCKS) /* the descriptor's NUMBER OF LOGICAL BLOCKS */
			return scsi_invalid(c, false, 16 + 16 * i, -1);
		if (!in_range(c, scsi_be64(d), scsi_be32(d + 8)))
			return;
	}
	c->reading = false;
	c->expect = 0;
	for (unsigned i = 0; i < ndesc; i++) {
		vu_iov_to_buf(c->out, c->nout, 8 + 16 * i, d, sizeof(d));
		uint32_t n = scsi_be32(d + 8);
		int r = n ? blk_io_zero(t->io, &lun->img, BLK_DISCARD, scsi_be64(d) * lun->block_size,
					(uint64_t)n * lun->block_size, c) : 1;
		if (r < 0)
			c->failed = true;
		else if (r == 0)
			c->pending++;
	}
	if (c->failed && !c->pending)
		scsi_sense(c, SK_MEDIUM_ERROR, ASC_WRITE_ERROR);
}

/* GET LBA STATUS: the image's extents from the LBA on, allocated or holes. */
static void get_lba_status(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	uint64_t lba = scsi_be64(c->cdb + 2);
	uint32_t alloc = scsi_be32(c->cdb + 10);
	uint8_t buf[8 + 16 * 32] = { 0 };
	unsigned n = 0;

	if (lba >= lun->blocks)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
	while (lba < lun->blocks && n < 32 && (n == 0 || 8 + 16 * n < alloc)) {
		uint64_t left = lun->blocks - lba, same;
		bool allocated;
		if (left > 0xffffffffu)
			left = 0xffffffffu;
		if (blk_image_extent(&lun->img, lba * lun->block_size, left * lun->block_size, &allocated, &same) < 0)
			return scsi_sense(c, SK_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
		uint64_t blocks = same / lun->block_size;
		if (!blocks) { /* an extent ending inside a block: the block holds data */
			allocated = true;
			blocks = 1;
		}
		uint8_t *d = buf + 8 + 16 * n++;
		scsi_put64(d, lba);
		scsi_put32(d + 8, (uint32_t)blocks);
		d[12] = allocated ? 0 : 1; /* mapped, or deallocated */
		lba += blocks;
	}
	scsi_put32(buf, 4 + 16 * n);
	scsi_data_in(c, buf, 8 + 16 * n, alloc);
}

/* READ CAPACITY (10): the last LBA (all ones when it does not fit) and the block size. */
static void read_capacity10(struct scsi_target *t, struct scsi_cmd *c)
{
	uint8_t buf[8];
	uint64_t last = c->lun->blocks - 1;

	scsi_put32(buf, last > 0xfffffffe ? 0xffffffff : (uint32_t)last);
	scsi_put32(buf + 4, c->lun->block_size);
	scsi_data_in(c, buf, sizeof(buf), sizeof(buf));
}

/* READ CAPACITY (16): also thin provisioning (LBPME) and whether deallocated blocks read zeros. */
static void read_capacity16(struct scsi_target *t, struct scsi_cmd *c)
{
	uint8_t buf[32] = { 0 };

	scsi_put64(buf, c->lun->blocks - 1);
	scsi_put32(buf + 8, c->lun->block_size);
	buf[14] = 0x80 | (c->lun->img.block_device ? 0 : 0x40); /* LBPME, LBPRZ (a hole reads zeros) */
	scsi_data_in(c, buf, sizeof(buf), scsi_be32(c->cdb + 10));
}

#define RW6      { 0, 0x1f, 0xff, 0xff, 0xff, 0x00 }
#define RW10     { 0, 0x18, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0x00 }
#define RW12     { 0, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00 }
#define RW16     { 0, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x00 }

/* Sorted by opcode, then service action. usage[0] (the opcode) is filled in when reported. */
const struct scsi_op scsi_ops[] = {
	{ 0x00, false, 0, 6, false, test_unit_ready, { 0 } },
	{ 0x03, false, 0, 6, true, request_sense, { 0, 0x01, 0, 0, 0xff, 0 } },
	{ 0x08, false, 0, 6, false, read_write, RW6 },
	{ 0x0a, false, 0, 6, false, read_write, RW6 },
	{ 0x12, false, 0, 6, true, scsi_inquiry, { 0, 0x01, 0xff, 0xff, 0xff, 0 } },
	{ 0x15, false, 0, 6, false, scsi_mode_select, { 0, 0x10, 0, 0, 0xff, 0 } },
	{ 0x1a, false, 0, 6, false, scsi_mode_sense, { 0, 0x08, 0xff, 0xff, 0xff, 0 } },
	{ 0x1b, false, 0, 6, false, start_stop_unit, { 0, 0x01, 0, 0x0f, 0xf7, 0 } },
	{ 0x25, false, 0, 10, false, read_capacity10, { 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, 0 } },
	{ 0x28, false, 0, 10, false, read_write, RW10 },
	{ 0x2a, false, 0, 10, false, read_write, RW10 },
	{ 0x2f, false, 0, 10, false, verify, { 0, 0x10, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0 } },
	{ 0x35, false, 0, 10, false, synchronize_cache, { 0, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0 } },
	{ 0x41, false, 0, 10, false, write_same, { 0, 0x08, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, 0 } },
	{ 0x42, false, 0, 10, false, unmap, { 0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0xff, 0 } },
	{ 0x55, false, 0, 10, false, scsi_mode_select, { 0, 0x10, 0, 0, 0, 0, 0, 0xff, 0xff, 0 } },
	{ 0x5a, false, 0, 10, false, scsi_mode_sense, { 0, 0x08, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0 } },
	{ 0x88, false, 0, 16, false, read_write, RW16 },
	{ 0x8a, false, 0, 16, false, read_write, RW16 },
	{ 0x8f, false, 0, 16, false, verify, { 0, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					       0xff, 0xff, 0xff, 0xff, 0x3f, 0 } },
	{ 0x91, false, 0, 16, false, synchronize_cache, { 0, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
							  0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0 } },
	{ 0x93, false, 0, 16, false, write_same, { 0, 0x09, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
						   0xff, 0xff, 0xff, 0xff, 0x3f, 0 } },
	{ 0x9e, true, 0x10, 16, false, read_capacity16, { 0, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0 } },
	{ 0x9e, true, 0x12, 16, false, get_lba_status, { 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
							 0xff, 0xff, 0xff, 0xff, 0, 0 } },
	{ 0xa0, false, 0, 12, true, scsi_report_luns, { 0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0 } },
	{ 0xa3, true, 0x0c, 12, false, scsi_report_opcodes, { 0, 0x1f, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
							      0xff, 0, 0 } },
	{ 0xa8, false, 0, 12, false, read_write, RW12 },
	{ 0xaa, false, 0, 12, false, read_write, RW12 },
};
const unsigned scsi_nops = sizeof(scsi_ops) / sizeof(scsi_ops[0]);

bool scsi_cmd_start(struct scsi_target *t, struct scsi_cmd *c)
{
	const struct scsi_op *op = NULL;
	bool opcode_known = false;

	for (unsigned i = 0; i < scsi_nops && !op; i++) {
		const struct scsi_op *o = &scsi_ops[i];
		if (o->opcode != c->cdb[0])
			continue;
		opcode_known = true;
		if (!o->has_sa || o->sa == (c->cdb[1] & 0x1f))
			op = o;
	}
	if (!c->lun && !(op && op->any_lun)) {
		scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		return true;
	}
	if (!op) {
		if (opcode_known) /* a service action we do not have */
			scsi_invalid(c, true, 1, 4);
		else
			scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return true;
	}
	if (c->cdb[op->cdb_len - 1] & 0x04) { /* NACA: no auto contingent allegiance */
		scsi_invalid(c, true, op->cdb_len - 1u, 2);
		return true;
	}
	op->run(t, c);
	return c->pending == 0;
}

bool scsi_cmd_done(struct scsi_target *t, struct scsi_cmd *c, int result)
{
	if (result < 0 || (uint64_t)result != c->expect)
		c->failed = true;
	else if (c->ws_left) {
		c->ws_left -= c->ws_chunk;
		c->ws_off += c->expect;
		if (c->ws_left) {
			if (write_same_next(t, c))
				return false;
			c->failed = true;
		}
	}
	if (--c->pending)
		return false;
	if (c->failed) {
		c->in_done = 0;
		scsi_sense(c, SK_MEDIUM_ERROR, c->reading ? ASC_UNRECOVERED_READ_ERROR : ASC_WRITE_ERROR);
	}
	return true;
}
