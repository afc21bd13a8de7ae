/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the command set says about the units (SPC-4, SBC-4): INQUIRY and its VPD
 * pages, REPORT LUNS, the mode pages (read-write error recovery, caching with its
 * changeable WCE, control) through MODE SENSE and MODE SELECT, and REPORT
 * SUPPORTED OPERATION CODES. Everything is built here and copied out at once.
 */
#include <stdio.h>
#include <string.h>

#include "dev/scsi.h"
#include "proto/iov.h"

#define VENDOR  "VHOSTBOX"
#define PRODUCT "VIRTUAL DISK    "
#define REVISION "0001"

static const uint8_t vpd_pages[] = { 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2 };

/* A VPD page's contents after its 4-byte header; the page's length, or -1 when we have no such page. */
static int vpd_page(const struct scsi_lun *lun, uint8_t page, uint8_t *p)
{
	size_t n;

	switch (page) {
	case 0x00: /* supported pages */
		memcpy(p, vpd_pages, sizeof(vpd_pages));
		return sizeof(vpd_pages);
	case 0x80: /* unit serial number */
		n = strlen(lun->serial);
		memcpy(p, lun->serial, n);
		return (int)n;
	case 0x83: /* device identification: one T10 vendor ID designator */
		n = strlen(lun->ident);
		p[0] = 0x02;              /* code set: ASCII */
		p[1] = 0x01;              /* the logical unit; T10 vendor ID based */
		p[3] = (uint8_t)(8 + n);
		memcpy(p + 4, VENDOR, 8);
		memcpy(p + 12, lun->ident, n);
		return (int)(12 + n);
	case 0xb0: /* block limits */
		p[0] = 0x01;              /* WSNZ: WRITE SAME of 0 blocks is refused */
		scsi_put32(p + 4, SCSI_MAX_XFER_BYTES / lun->block_size);
		scsi_put32(p + 16, SCSI_MAX_WS_BLOCKS);     /* MAXIMUM UNMAP LBA COUNT */
		scsi_put32(p + 20, SCSI_MAX_UNMAP_DESC);
		scsi_put32(p + 24, lun->block_size < 4096 ? 4096 / lun->block_size : 1); /* optimal unmap granularity */
		scsi_put32(p + 28, 0x80000000u);             /* UGAVALID, alignment 0 */
		scsi_put64(p + 32, SCSI_MAX_WS_BLOCKS);
		return 0x3c;
	case 0xb1: /* block device characteristics */
		scsi_put16(p, lun->rotational ? 0 : 1); /* 1: non-rotating; 0: rate not reported */
		return 0x3c;
	case 0xb2: /* logical block provisioning: thin, UNMAP and WRITE SAME (16, 10) with UNMAP */
		p[1] = 0x80 | 0x40 | 0x20 | (lun->img.block_device ? 0 : 0x04); /* LBPRZ: a hole reads zeros */
		p[2] = 0x02;
		return 4;
	}
	return -1;
}

void scsi_inquiry(struct scsi_target *t, struct scsi_cmd *c)
{
	bool evpd = c->cdb[1] & 0x01;
	uint8_t page = c->cdb[2];
	uint16_t alloc = scsi_be16(c->cdb + 3);
	uint8_t buf[256] = { 0 };

	if (c->cdb[1] & 0x02) /* CMDDT */
		return scsi_invalid(c, true, 1, 1);
	if (!evpd && page) /* a page without EVPD */
		return scsi_invalid(c, true, 2, -1);
	if (!evpd) {
		buf[0] = c->lun ? 0x00 : 0x7f;     /* a disk, or: no unit can be here */
		buf[2] = 0x06;                     /* SPC-4 */
		buf[3] = 0x12;                     /* HISUP, response data format 2 */
		buf[4] = 36 - 5;
		buf[7] = 0x02;                     /* CMDQUE */
		memcpy(buf + 8, VENDOR, 8);
		memcpy(buf + 16, PRODUCT, 16);
		memcpy(buf + 32, REVISION, 4);
		return scsi_data_in(c, buf, 36, alloc);
	}
	if (!c->lun)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
	int n = vpd_page(c->lun, page, buf + 4);
	if (n < 0)
		return scsi_invalid(c, true, 2, -1);
	buf[1] = page;
	scsi_put16(buf + 2, (uint16_t)n);
	scsi_data_in(c, buf, 4 + n, alloc);
}

void scsi_report_luns(struct scsi_target *t, struct scsi_cmd *c)
{
	uint8_t select = c->cdb[2];
	uint32_t alloc = scsi_be32(c->cdb + 6);
	uint8_t buf[8 + 8 * SCSI_MAX_LUNS] = { 0 };

	if (select > 2)
		return scsi_invalid(c, true, 2, -1);
	if (alloc < 16)
		return scsi_invalid(c, true, 6, -1);
	unsigned n = select == 1 ? 0 : t->nluns; /* 1: well-known LUNs only, of which we have none */
	for (unsigned i = 0; i < n; i++)
		buf[8 + 8 * i + 1] = (uint8_t)i;  /* peripheral addressing, bus 0 (LUNs < 256) */
	scsi_put32(buf, 8 * n);
	scsi_data_in(c, buf, 8 + 8 * n, alloc);
}

enum { PC_CURRENT, PC_CHANGEABLE, PC_DEFAULT, PC_SAVED };

/* A mode page as pc asks (current, changeable mask, default); its length, or 0 when we have none. */
static unsigned mode_page(const struct scsi_target *t, const struct scsi_lun *lun, uint8_t page, int pc,
			  uint8_t *p)
{
	switch (page) {
	case 0x01: /* read-write error recovery: nothing to set */
		memset(p, 0, 12);
		p[0] = 0x01;
		p[1] = 10;
		return 12;
	case 0x08: /* caching: WCE is the write cache; the rest is fixed */
		memset(p, 0, 20);
		p[0] = 0x08;
		p[1] = 18;
		if (pc == PC_CHANGEABLE || (pc == PC_CURRENT ? lun->wce : !t->writethrough))
			p[2] = 0x04;
		return 20;
	case 0x0a: /* control */
		memset(p, 0, 12);
		p[0] = 0x0a;
		p[1] = 10;
		if (pc != PC_CHANGEABLE) {
			p[3] = 0x10;              /* QUEUE ALGORITHM MODIFIER 1: unrestricted reordering */
			scsi_put16(p + 8, 0xffff); /* BUSY TIMEOUT PERIOD: unlimited */
		}
		return 12;
	}
	return 0;
}

static const uint8_t mode_pages[] = { 0x01, 0x08, 0x0a };

void scsi_mode_sense(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	bool ten = c->cdb[0] == 0x5a, dbd = c->cdb[1] & 0x08;
	int pc = c->cdb[2] >> 6;
	uint8_t page = c->cdb[2] & 0x3f, subpage = c->cdb[3];
	uint16_t alloc = ten ? scsi_be16(c->cdb + 7) : c->cdb[4];
	uint8_t buf[256] = { 0 };
	unsigned hl = ten ? 8 : 4, len = hl;

	if (pc == PC_SAVED)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED);
	if (subpage && subpage != 0xff) /* we have subpage 0 of each page only */
		return scsi_invalid(c, true, 3, -1);
	if (!dbd) { /* the short block descriptor: number of blocks, block length */
		scsi_put32(buf + len, lun->blocks > 0xffffffffu ? 0xffffffffu : (uint32_t)lun->blocks);
		scsi_put32(buf + len + 4, lun->block_size);
		len += 8;
	}
	for (unsigned i = 0; i < sizeof(mode_pages); i++)
		if (page == 0x3f || page == mode_pages[i])
			len += mode_page(t, lun, mode_pages[i], pc, buf + len);
	if (page != 0x3f && len == hl + (dbd ? 0 : 8))
		return scsi_invalid(c, true, 2, 5);
	uint8_t dsp = (lun->read_only ? 0x80 : 0) | 0x10; /* WP, DPOFUA */
	if (ten) {
		scsi_put16(buf, (uint16_t)(len - 2));
		buf[3] = dsp;
		buf[7] = dbd ? 0 : 8;
	} else {
		buf[0] = (uint8_t)(len - 1);
		buf[2] = dsp;
		buf[3] = dbd ? 0 : 8;
	}
	scsi_data_in(c, buf, len, alloc);
}

/*
 * MODE SELECT: the whole parameter list is checked against what may change (only
 * the caching page's WCE) before any of it applies.
 */
void scsi_mode_select(struct scsi_target *t, struct scsi_cmd *c)
{
	struct scsi_lun *lun = c->lun;
	bool ten = c->cdb[0] == 0x55;
	uint16_t plen = ten ? scsi_be16(c->cdb + 7) : c->cdb[4];
	unsigned hl = ten ? 8 : 4;
	uint8_t buf[256], cur[32], mask[32];

	if (!(c->cdb[1] & 0x10)) /* PF: the standard format only */
		return scsi_invalid(c, true, 1, 4);
	if (c->cdb[1] & 0x01) /* SP: nothing is saved */
		return scsi_invalid(c, true, 1, 0);
	if (!plen)
		return;
	if (plen > sizeof(buf) || plen < hl)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	if (c->out_len < plen) {
		c->overrun = true;
		return;
	}
	c->out_done = vu_iov_to_buf(c->out, c->nout, 0, buf, plen);
	unsigned bdl = ten ? scsi_be16(buf + 6) : buf[3];
	if (bdl != 0 && bdl != 8)
		return scsi_invalid(c, false, ten ? 6 : 3, -1);
	if (hl + bdl > plen)
		return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
	if (bdl && scsi_be32(buf + hl + 4) != lun->block_size) /* the block length cannot change */
		return scsi_invalid(c, false, hl + 5, -1);
	for (int apply = 0; apply < 2; apply++)
		for (unsigned pos = hl + bdl; pos < plen;) {
			if (pos + 2 > plen || pos + 2u + buf[pos + 1] > plen)
				return scsi_sense(c, SK_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR);
			const uint8_t *p = buf + pos;
			unsigned n = p[1] + 2u;
			if (apply) {
				if ((p[0] & 0x3f) == 0x08)
					lun->wce = p[2] & 0x04;
			} else {
				if (p[0] & 0x40) /* SPF: no subpages */
					return scsi_invalid(c, false, pos, 6);
				unsigned have = mode_page(t, lun, p[0] & 0x3f, PC_CURRENT, cur);
				if (!have) /* a page we do not have */
					return scsi_invalid(c, false, pos, 5);
				if (have != n) /* its PAGE LENGTH */
					return scsi_invalid(c, false, pos + 1, -1);
				mode_page(t, lun, p[0] & 0x3f, PC_CHANGEABLE, mask);
				for (unsigned i = 2; i < n; i++) {
					uint8_t fixed = (p[i] ^ cur[i]) & ~mask[i];
					if (fixed) /* a field that cannot change, at its highest bit changed */
						return scsi_invalid(c, false, pos + i, 31 - __builtin_clz(fixed));
				}
			}
			pos += n;
		}
}

/* One command's descriptor in the all-commands list; 8 bytes, 20 with its timeouts descriptor. */
static unsigned opcode_descriptor(const struct scsi_op *o, bool rctd, uint8_t *d)
{
	d[0] = o->opcode;
	scsi_put16(d + 2, o->sa);
	d[5] = (o->has_sa ? 0x01 : 0) | (rctd ? 0x02 : 0); /* SERVACTV, CTDP */
	scsi_put16(d + 6, o->cdb_len);
	if (!rctd)
		return 8;
	scsi_put16(d + 8, 0x0a); /* a timeouts descriptor with no timeouts given */
	return 20;
}

void scsi_report_opcodes(struct scsi_target *t, struct scsi_cmd *c)
{
	bool rctd = c->cdb[2] & 0x80;
	uint8_t options = c->cdb[2] & 0x07, opcode = c->cdb[3];
	uint16_t sa = scsi_be16(c->cdb + 4);
	uint32_t alloc = scsi_be32(c->cdb + 6);
	uint8_t buf[4 + 20 * 32] = { 0 };
	unsigned len = 4;

	if (options == 0) {
		for (unsigned i = 0; i < scsi_nops && len + 20 <= sizeof(buf); i++)
			len += opcode_descriptor(&scsi_ops[i], rctd, buf + len);
		scsi_put32(buf, len - 4);
		return scsi_data_in(c, buf, len, alloc);
	}
	if (options > 3) /* REPORTING OPTIONS */
		return scsi_invalid(c, true, 2, 2);
	const struct scsi_op *found = NULL;
	bool has_sa = false;
	for (unsigned i = 0; i < scsi_nops; i++) {
		const struct scsi_op *o = &scsi_ops[i];
		if (o->opcode != opcode)
			continue;
		has_sa = o->has_sa;
		if (!o->has_sa || o->sa == sa)
			found = o;
	}
	/* 1: an opcode without service actions; 2: one with them; 3: either. */
	if ((options == 1 && has_sa) || (options == 2 && found && !has_sa)) /* REQUESTED OPERATION CODE */
		return scsi_invalid(c, true, 3, -1);
	buf[1] = (rctd ? 0x80 : 0) | (found ? 0x03 : 0x01); /* CTDP; SUPPORT: supported, or not */
	if (found) {
		scsi_put16(buf + 2, found->cdb_len);
		memcpy(buf + 4, found->usage, found->cdb_len);
		buf[4] = found->opcode;
		if (found->has_sa)
			buf[5] = (uint8_t)((found->usage[1] & 0xe0) | found->sa);
		len += found->cdb_len;
		if (rctd) {
			scsi_put16(buf + len, 0x0a);
			len += 12;
		}
	}
	scsi_data_in(c, buf, len, alloc);
}
