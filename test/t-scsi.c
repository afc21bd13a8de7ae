/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-scsi through the test front-end: the config space, every SCSI command
 * (good, malformed CDBs, short and long buffers and their residuals, LUNs that do
 * not exist, other targets), the sense data of each error, read-only units, UNMAP
 * and WRITE SAME reaching the image as holes, the control queue's task management
 * and notification queries, hostile requests, inflight resubmission after a
 * back-end restart, and the command line.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/inflight.h"
#include "test/check.h"
#include "test/frontend.h"

#define DISK_SIZE (16u << 20)
#define RO_SIZE (4u << 20)
#define BIG_SIZE (8u << 20)     /* the 4096-byte-block unit */
#define SERIAL "t-scsi-serial-42"
#define REQ_SIZE 51             /* lun[8], id, task_attr, prio, crn, cdb[32] */
#define RESP_SIZE 108           /* sense_len, resid, status_qualifier, status, response, sense[96] */
#define DATA_MAX (4u << 20)

enum { S_OK = 0, S_OVERRUN = 1, S_BAD_TARGET = 3, S_FAILURE = 9, S_SUCCEEDED = 10, S_REJECTED = 11,
       S_INCORRECT_LUN = 12 };
enum { GOOD = 0, CHECK_CONDITION = 2 };

static char dir[] = "/tmp/t-scsi.XXXXXX";
static char image[64], ro_image[64], big_image[64], sock[64];

static const uint64_t all_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |
				     1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
static const uint64_t all_pf = 1ull << VU_PF_MQ | 1ull << VU_PF_REPLY_ACK | 1ull << VU_PF_CONFIG |
			       1ull << VU_PF_INFLIGHT_SHMFD | 1ull << VU_PF_DEVICE_STATE;

struct hba {
	struct vuf_backend *be;
	struct vuf *f;
	struct vuf_vq *ctl, *req;
	uint64_t hdr, resp, data;   /* guest buffers */
};

/* What one command came back with. */
struct result {
	int used;                    /* used.len, or -1: no completion */
	uint8_t response, status;
	uint32_t sense_len, resid;
	uint8_t sense[96];
	uint8_t key, asc, ascq;
};

/* A back-end on path with args, connected with protocol features pf (and its rings started). */
static bool hba_open_pf(struct hba *h, const char *path, const char *const *args, uint64_t pf, bool start_rings)
{
	memset(h, 0, sizeof(*h));
	h->be = vuf_backend_start("scsi", args, path);
	if (!h->be)
		return false;
	h->f = vuf_connect(path, 2000);
	if (!h->f || vuf_mem_init(h->f, 2, 8 << 20, 0) < 0 || vuf_negotiate(h->f, all_features, pf) < 0)
		return false;
	h->hdr = vuf_alloc(h->f, 64, 64);
	h->resp = vuf_alloc(h->f, 128, 64);
	h->data = vuf_alloc(h->f, DATA_MAX + 4096, 4096);
	if (!start_rings)
		return h->hdr && h->resp && h->data;
	h->ctl = vuf_vq_setup(h->f, 0, 128, 0);
	h->req = vuf_vq_setup(h->f, 2, 128, 0);
	return h->ctl && vuf_vq_setup(h->f, 1, 128, 0) && h->req && h->hdr && h->resp && h->data;
}

static bool hba_open_at(struct hba *h, const char *path, const char *const *args, bool start_rings)
{
	return hba_open_pf(h, path, args, all_pf, start_rings);
}

static bool hba_open(struct hba *h, const char *const *args)
{
	return hba_open_at(h, sock, args, true);
}

static void hba_close(struct hba *h)
{
	vuf_close(h->f);
	if (h->be)
		vuf_backend_stop(h->be, 2000);
}

static void lun_field(uint8_t *p, unsigned target, unsigned lun)
{
	p[0] = 1;
	p[1] = (uint8_t)target;
	p[2] = (uint8_t)(0x40 | lun >> 8);
	p[3] = (uint8_t)lun;
}

/*
 * Sends one command to target/lun: the header with cdb, out_len bytes of data-out
 * from the data buffer, in_len bytes of data-in into it. Its head, or -1.
 */
static int cmd_send(struct hba *h, unsigned target, unsigned lun, const uint8_t *cdb, unsigned cdb_len,
		    uint32_t out_len, uint32_t in_len)
{
	uint8_t hdr[REQ_SIZE] = { 0 }, resp[RESP_SIZE];
	struct vuf_buf out[2] = { { h->hdr, REQ_SIZE }, { h->data, out_len } };
	struct vuf_buf in[2] = { { h->resp, RESP_SIZE }, { h->data, in_len } };

	lun_field(hdr, target, lun);
	hdr[8] = 0x42; /* the tag */
	memcpy(hdr + 19, cdb, cdb_len);
	memset(resp, 0xee, sizeof(resp));
	vuf_gpa_write(h->f, h->hdr, hdr, sizeof(hdr));
	vuf_gpa_write(h->f, h->resp, resp, sizeof(resp));
	int head = vuf_vq_add(h->req, out, out_len ? 2 : 1, in, in_len ? 2 : 1, false);
	return head < 0 || vuf_vq_kick(h->req) < 0 ? -1 : head;
}

/* The completion of the command sent as head, waited for up to timeout_ms (used -1: none). */
static struct result cmd_wait(struct hba *h, int head, int timeout_ms)
{
	uint8_t resp[RESP_SIZE];
	struct result r = { .used = -1 };
	uint32_t id, len;

	if (head < 0 || vuf_vq_wait_used(h->req, &id, &len, timeout_ms) < 0 || id != (uint32_t)head)
		return r;
	r.used = (int)len;
	vuf_gpa_read(h->f, h->resp, resp, sizeof(resp));
	memcpy(&r.sense_len, resp, 4);
	memcpy(&r.resid, resp + 4, 4);
	r.sense_len = le32toh(r.sense_len);
	r.resid = le32toh(r.resid);
	r.status = resp[10];
	r.response = resp[11];
	memcpy(r.sense, resp + 12, sizeof(r.sense));
	if (r.sense_len >= 14) {
		r.key = r.sense[2] & 0x0f;
		r.asc = r.sense[12];
		r.ascq = r.sense[13];
	}
	return r;
}

static struct result cmd_to(struct hba *h, unsigned target, unsigned lun, const uint8_t *cdb, unsigned cdb_len,
			    uint32_t out_len, uint32_t in_len)
{
	return cmd_wait(h, cmd_send(h, target, lun, cdb, cdb_len, out_len, in_len), 3000);
}

static struct result cmd(struct hba *h, unsigned lun, const uint8_t *cdb, unsigned cdb_len, uint32_t out_len,
			 uint32_t in_len)
{
	return cmd_to(h, 0, lun, cdb, cdb_len, out_len, in_len);
}

static uint8_t *data(struct hba *h)
{
	return vuf_gpa(h->f, h->data, DATA_MAX);
}

static bool good(struct result r)
{
	return r.used >= 0 && r.response == S_OK && r.status == GOOD && r.sense_len == 0;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* CHECK CONDITION with this sense key and additional sense code. */
static bool sense_is(struct result r, uint8_t key, uint8_t asc, uint8_t ascq)
{
	return r.used >= 0 && r.response == S_OK && r.status == CHECK_CONDITION && r.sense_len == 18 &&
	       r.sense[0] == 0x70 && r.key == key && r.asc == asc && r.ascq == ascq;
}

/* The sense-key specific field pointer: SKSV, C/D (in the CDB), the byte and bit (-1: none). */
static bool field_is(struct result r, bool in_cdb, unsigned byte, int bit)
{
	uint8_t want = 0x80 | (in_cdb ? 0x40 : 0) | (bit >= 0 ? 0x08 | bit : 0);
	return r.sense[15] == want && be16(r.sense + 16) == byte;
}

#define ILLEGAL 0x5
#define INVALID_FIELD(r) sense_is(r, ILLEGAL, 0x24, 0)
#define OUT_OF_RANGE(r) sense_is(r, ILLEGAL, 0x21, 0)
#define PROTECTED(r) sense_is(r, 0x7, 0x27, 0)

static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, (uint16_t)v); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, (uint32_t)v); }

static void fill(uint8_t *p, uint8_t seed, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

static bool holds(const uint8_t *p, uint8_t seed, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(seed + i * 7))
			return false;
	return true;
}

static bool image_holds(const char *path, uint64_t off, uint8_t seed, uint32_t len)
{
	static uint8_t buf[1 << 20];
	int fd = open(path, O_RDONLY);
	bool ok = fd >= 0 && len <= sizeof(buf) && pread(fd, buf, len, off) == (ssize_t)len && holds(buf, seed, len);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Whether [off, off + len) of the image is a hole (deallocated). */
static bool image_hole(const char *path, uint64_t off, uint64_t len)
{
	int fd = open(path, O_RDONLY);
	off_t data = fd >= 0 ? lseek(fd, off, SEEK_DATA) : -1;
	bool hole = fd >= 0 && (data < 0 || (uint64_t)data >= off + len);

	if (fd >= 0)
		close(fd);
	return hole;
}

static void write_image(const char *path, uint64_t off, uint8_t seed, uint32_t len)
{
	static uint8_t buf[1 << 20];
	int fd = open(path, O_WRONLY);

	fill(buf, seed, len);
	if (fd < 0 || pwrite(fd, buf, len, off) != (ssize_t)len)
		check_note("cannot write %s", path);
	if (fd >= 0)
		close(fd);
}

static void rw10(uint8_t *c, uint8_t op, uint32_t lba, uint16_t n)
{
	memset(c, 0, 10);
	c[0] = op;
	put32(c + 2, lba);
	put16(c + 7, n);
}

static void rw16(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	put64(c + 2, lba);
	put32(c + 10, n);
}

static char ro_lun[128], big_lun[128];

static void test_config(struct hba *h)
{
	uint8_t cfg[36] = { 0 };

	CHECK_EQ(vuf_get_config(h->f, 0, 36, cfg), 36 + VU_CONFIG_HDR_SIZE, "scsi-config-read");
	CHECK_EQ(le32toh(*(uint32_t *)cfg), 1, "scsi-config-num-queues");
	CHECK_EQ(le32toh(*(uint32_t *)(cfg + 4)), 126, "scsi-config-seg-max");
	CHECK_EQ(le32toh(*(uint32_t *)(cfg + 8)), 8192, "scsi-config-max-sectors");
	CHECK_EQ(le32toh(*(uint32_t *)(cfg + 20)), 96, "scsi-config-sense-size");
	CHECK_EQ(le32toh(*(uint32_t *)(cfg + 24)), 32, "scsi-config-cdb-size");
	CHECK_EQ(le16toh(*(uint16_t *)(cfg + 30)), 0, "scsi-config-max-target");
	CHECK_EQ(le32toh(*(uint32_t *)(cfg + 32)), 2, "scsi-config-max-lun");
	uint32_t v = htole32(96);
	CHECK(vuf_set_config(h->f, 20, 4, &v) == 0, "scsi-config-sense-size-writable");
	v = htole32(1000);
	CHECK(vuf_set_config(h->f, 20, 4, &v) < 0, "scsi-config-sense-size-too-big-refused");
	CHECK(vuf_set_config(h->f, 0, 4, &v) < 0, "scsi-config-num-queues-read-only");
	CHECK(h->f->offered_protocol_features & (1ull << VU_PF_INFLIGHT_SHMFD), "scsi-offers-inflight");
	uint64_t n = 0;
	CHECK(vuf_get_queue_num(h->f, &n) == 0 && n == 3, "scsi-queue-num-control-event-request");
}

static void test_addressing(struct hba *h)
{
	uint8_t tur[6] = { 0 };

	CHECK(good(cmd(h, 0, tur, 6, 0, 0)), "scsi-tur-good");
	CHECK(good(cmd(h, 2, tur, 6, 0, 0)), "scsi-tur-lun2-good");
	CHECK(sense_is(cmd(h, 3, tur, 6, 0, 0), ILLEGAL, 0x25, 0), "scsi-tur-bad-lun-not-supported");
	struct result r = cmd_to(h, 1, 0, tur, 6, 0, 0);
	CHECK(r.used >= 0 && r.response == S_BAD_TARGET, "scsi-other-target-bad-target");
	/* An odd LUN field (not single-level) names no unit. */
	uint8_t hdr[REQ_SIZE] = { 1, 0, 0x80, 0 };
	vuf_gpa_write(h->f, h->hdr, hdr, sizeof(hdr));
	struct vuf_buf out = { h->hdr, REQ_SIZE }, in = { h->resp, RESP_SIZE };
	uint32_t id, len;
	uint8_t resp[RESP_SIZE];
	int head = vuf_vq_add(h->req, &out, 1, &in, 1, false);
	CHECK(head >= 0 && vuf_vq_kick(h->req) == 0 && vuf_vq_wait_used(h->req, &id, &len, 2000) == 0 &&
	      vuf_gpa_read(h->f, h->resp, resp, sizeof(resp)) == 0 && resp[10] == CHECK_CONDITION &&
	      resp[12 + 12] == 0x25, "scsi-lun-extended-addressing-not-supported");
	uint8_t bad[6] = { 0xff };
	CHECK(sense_is(cmd(h, 0, bad, 6, 0, 0), ILLEGAL, 0x20, 0), "scsi-invalid-opcode");
	CHECK(sense_is(cmd(h, 3, bad, 6, 0, 0), ILLEGAL, 0x25, 0), "scsi-invalid-opcode-bad-lun-not-supported");
	uint8_t naca[6] = { 0, 0, 0, 0, 0, 0x04 };
	r = cmd(h, 0, naca, 6, 0, 0);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 5, 2), "scsi-naca-invalid-field-pointer");
	uint8_t sa[16] = { 0x9e, 0x01 };
	CHECK(INVALID_FIELD(cmd(h, 0, sa, 16, 0, 64)), "scsi-unknown-service-action-invalid-field");
}

static void test_inquiry(struct hba *h)
{
	uint8_t c[6] = { 0x12, 0, 0, 0, 96, 0 };
	struct result r = cmd(h, 0, c, 6, 0, 96);
	uint8_t *d = data(h);

	CHECK(good(r) && r.used == RESP_SIZE + 36 && r.resid == 96 - 36, "scsi-inquiry-standard-residual");
	CHECK(d[0] == 0 && d[2] == 6 && (d[3] & 0x0f) == 2 && !memcmp(d + 8, "VHOSTBOX", 8) &&
	      !memcmp(d + 16, "VIRTUAL DISK", 12), "scsi-inquiry-standard-data");
	c[4] = 5;
	r = cmd(h, 0, c, 6, 0, 96);
	CHECK(good(r) && r.used == RESP_SIZE + 5 && r.resid == 91, "scsi-inquiry-allocation-length");
	c[4] = 96;
	r = cmd(h, 0, c, 6, 0, 8);
	CHECK(good(r) && r.used == RESP_SIZE + 8 && r.resid == 0, "scsi-inquiry-short-buffer");
	r = cmd(h, 7, c, 6, 0, 96);
	CHECK(good(r) && d[0] == 0x7f, "scsi-inquiry-bad-lun-peripheral-qualifier");
	c[1] = 0x02;
	r = cmd(h, 0, c, 6, 0, 96);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 1, 1), "scsi-inquiry-cmddt-invalid-field-pointer");
	c[1] = 0;
	c[2] = 0x80;
	CHECK(INVALID_FIELD(cmd(h, 0, c, 6, 0, 96)), "scsi-inquiry-page-without-evpd-invalid-field");

	uint8_t v[6] = { 0x12, 1, 0x00, 0, 255, 0 };
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && d[1] == 0 && d[3] == 6 && d[4] == 0 && d[5] == 0x80 && d[6] == 0x83 && d[7] == 0xb0 &&
	      d[8] == 0xb1 && d[9] == 0xb2, "scsi-vpd-supported-pages");
	v[2] = 0x80;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && d[3] == strlen(SERIAL) && !memcmp(d + 4, SERIAL, strlen(SERIAL)), "scsi-vpd-serial");
	r = cmd(h, 1, v, 6, 0, 255);
	CHECK(good(r) && d[1] == 0x80 && d[3] == 0, "scsi-vpd-serial-empty-without-one");
	v[2] = 0x83;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && d[4] == 0x02 && d[5] == 0x01 && !memcmp(d + 8, "VHOSTBOX" SERIAL, 8 + strlen(SERIAL)),
	      "scsi-vpd-device-identification");
	v[2] = 0xb0;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && be16(d + 2) == 0x3c && (d[4] & 1) && be32(d + 8) == (4u << 20) / 512 &&
	      be32(d + 20) == 0x400000 && be32(d + 24) == 64 && be64(d + 36) == 0x400000, "scsi-vpd-block-limits");
	r = cmd(h, 2, v, 6, 0, 255);
	CHECK(good(r) && be32(d + 8) == (4u << 20) / 4096 && be32(d + 28) == 1, "scsi-vpd-block-limits-4k");
	v[2] = 0xb1;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && be16(d + 4) == 1, "scsi-vpd-characteristics-non-rotating");
	r = cmd(h, 1, v, 6, 0, 255);
	CHECK(good(r) && be16(d + 4) == 0, "scsi-vpd-characteristics-rotational");
	v[2] = 0xb2;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && (d[5] & 0xe0) == 0xe0 && (d[5] & 0x1c) == 0x04 && (d[6] & 7) == 2,
	      "scsi-vpd-provisioning-thin-unmap-lbprz");
	v[2] = 0x89;
	CHECK(INVALID_FIELD(cmd(h, 0, v, 6, 0, 255)), "scsi-vpd-unknown-page-invalid-field");
	v[2] = 0x80;
	CHECK(sense_is(cmd(h, 5, v, 6, 0, 255), ILLEGAL, 0x25, 0), "scsi-vpd-bad-lun-not-supported");
	v[3] = 0;
	v[4] = 2;
	r = cmd(h, 0, v, 6, 0, 255);
	CHECK(good(r) && r.used == RESP_SIZE + 2 && r.resid == 253, "scsi-vpd-allocation-length");
}

static void test_sense_capacity(struct hba *h)
{
	uint8_t rs[6] = { 0x03, 0, 0, 0, 18, 0 };
	uint8_t *d = data(h);
	struct result r = cmd(h, 0, rs, 6, 0, 252);

	CHECK(good(r) && d[0] == 0x70 && (d[2] & 0xf) == 0 && r.resid == 252 - 18, "scsi-request-sense-no-sense");
	rs[1] = 1;
	r = cmd(h, 0, rs, 6, 0, 252);
	CHECK(good(r) && d[0] == 0x72 && r.used == RESP_SIZE + 8, "scsi-request-sense-descriptor-format");
	rs[1] = 0;
	r = cmd(h, 9, rs, 6, 0, 252);
	CHECK(good(r) && (d[2] & 0xf) == ILLEGAL && d[12] == 0x25, "scsi-request-sense-bad-lun-reports-it");

	uint8_t rc10[10] = { 0x25 };
	r = cmd(h, 0, rc10, 10, 0, 8);
	CHECK(good(r) && be32(d) == DISK_SIZE / 512 - 1 && be32(d + 4) == 512, "scsi-read-capacity-10");
	r = cmd(h, 2, rc10, 10, 0, 8);
	CHECK(good(r) && be32(d) == BIG_SIZE / 4096 - 1 && be32(d + 4) == 4096, "scsi-read-capacity-10-4k");
	r = cmd(h, 0, rc10, 10, 0, 4);
	CHECK(good(r) && r.used == RESP_SIZE + 4, "scsi-read-capacity-10-short-buffer");
	uint8_t rc16[16] = { 0x9e, 0x10 };
	put32(rc16 + 10, 32);
	r = cmd(h, 0, rc16, 16, 0, 32);
	CHECK(good(r) && be64(d) == DISK_SIZE / 512 - 1 && be32(d + 8) == 512 && (d[14] & 0xc0) == 0xc0,
	      "scsi-read-capacity-16-lbpme-lbprz");
	put32(rc16 + 10, 12);
	r = cmd(h, 0, rc16, 16, 0, 32);
	CHECK(good(r) && r.used == RESP_SIZE + 12 && r.resid == 20, "scsi-read-capacity-16-allocation-length");
	uint8_t ssu[6] = { 0x1b, 0, 0, 0, 0x01, 0 };
	CHECK(good(cmd(h, 0, ssu, 6, 0, 0)), "scsi-start-stop-unit");
	CHECK(sense_is(cmd(h, 4, ssu, 6, 0, 0), ILLEGAL, 0x25, 0), "scsi-start-stop-bad-lun");
}

static void test_read_write(struct hba *h)
{
	uint8_t c[16];
	uint8_t *d = data(h);
	struct result r;

	/* WRITE(10) then READ(10), 8 blocks at LBA 100. */
	fill(d, 0x11, 4096);
	rw10(c, 0x2a, 100, 8);
	r = cmd(h, 0, c, 10, 4096, 0);
	CHECK(good(r) && r.used == RESP_SIZE && r.resid == 0, "scsi-write10");
	CHECK(image_holds(image, 100 * 512, 0x11, 4096), "scsi-write10-reaches-image");
	memset(d, 0, 4096);
	rw10(c, 0x28, 100, 8);
	r = cmd(h, 0, c, 10, 0, 4096);
	CHECK(good(r) && r.used == RESP_SIZE + 4096 && holds(d, 0x11, 4096), "scsi-read10");
	/* A larger buffer than the transfer: the rest is the residual. */
	r = cmd(h, 0, c, 10, 0, 8192);
	CHECK(good(r) && r.used == RESP_SIZE + 4096 && r.resid == 4096, "scsi-read10-residual");
	/* A smaller one: OVERRUN, nothing transferred. */
	r = cmd(h, 0, c, 10, 0, 2048);
	CHECK(r.used == RESP_SIZE && r.response == S_OVERRUN, "scsi-read10-short-buffer-overrun");
	rw10(c, 0x2a, 100, 8);
	r = cmd(h, 0, c, 10, 2048, 0);
	CHECK(r.used >= 0 && r.response == S_OVERRUN, "scsi-write10-short-buffer-overrun");

	/* WRITE(6)/READ(6): 21-bit LBA; 0 blocks means 256. */
	fill(d, 0x22, 256 * 512);
	uint8_t c6[6] = { 0x0a, 0x00, 0x01, 0x00, 0, 0 }; /* LBA 256 */
	CHECK(good(cmd(h, 0, c6, 6, 256 * 512, 0)), "scsi-write6-256-blocks");
	CHECK(image_holds(image, 256 * 512, 0x22, 256 * 512), "scsi-write6-reaches-image");
	memset(d, 0, 256 * 512);
	c6[0] = 0x08;
	r = cmd(h, 0, c6, 6, 0, 256 * 512);
	CHECK(good(r) && holds(d, 0x22, 256 * 512), "scsi-read6");
	c6[1] = 0x1f;
	c6[2] = c6[3] = 0xff;
	c6[4] = 1;
	CHECK(OUT_OF_RANGE(cmd(h, 0, c6, 6, 0, 512)), "scsi-read6-out-of-range");

	/* WRITE(12)/READ(12) and WRITE(16) with FUA/READ(16). */
	uint8_t c12[12] = { 0xaa };
	put32(c12 + 2, 2000);
	put32(c12 + 6, 2);
	fill(d, 0x33, 1024);
	CHECK(good(cmd(h, 0, c12, 12, 1024, 0)), "scsi-write12");
	c12[0] = 0xa8;
	memset(d, 0, 1024);
	CHECK(good(cmd(h, 0, c12, 12, 0, 1024)) && holds(d, 0x33, 1024), "scsi-read12");
	rw16(c, 0x8a, DISK_SIZE / 512 - 4, 4);
	c[1] = 0x08; /* FUA */
	fill(d, 0x44, 2048);
	CHECK(good(cmd(h, 0, c, 16, 2048, 0)), "scsi-write16-fua-last-blocks");
	CHECK(image_holds(image, DISK_SIZE - 2048, 0x44, 2048), "scsi-write16-reaches-image");
	rw16(c, 0x88, DISK_SIZE / 512 - 4, 4);
	memset(d, 0, 2048);
	CHECK(good(cmd(h, 0, c, 16, 0, 2048)) && holds(d, 0x44, 2048), "scsi-read16");
	rw16(c, 0x88, DISK_SIZE / 512 - 4, 5);
	CHECK(OUT_OF_RANGE(cmd(h, 0, c, 16, 0, 4096)), "scsi-read16-past-the-end");
	rw16(c, 0x88, ~0ull - 1, 4);
	CHECK(OUT_OF_RANGE(cmd(h, 0, c, 16, 0, 4096)), "scsi-read16-lba-wraps");
	rw16(c, 0x88, 0, 0);
	r = cmd(h, 0, c, 16, 0, 0);
	CHECK(good(r) && r.used == RESP_SIZE, "scsi-read16-zero-blocks");
	rw10(c, 0x28, 0, 8);
	c[1] = 0x20; /* RDPROTECT */
	r = cmd(h, 0, c, 10, 0, 4096);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 1, 7), "scsi-read10-rdprotect-invalid-field-pointer");
	rw16(c, 0x88, 0, (4u << 20) / 512 + 1);
	r = cmd(h, 0, c, 16, 0, 4096);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 10, -1), "scsi-read16-over-max-transfer-invalid-field-pointer");
	/* The 4096-byte-block unit: LBAs count 4 KiB blocks. */
	rw10(c, 0x2a, 3, 2);
	fill(d, 0x55, 8192);
	CHECK(good(cmd(h, 2, c, 10, 8192, 0)) && image_holds(big_image, 3 * 4096, 0x55, 8192), "scsi-write10-4k-unit");
}

static void test_read_only(struct hba *h)
{
	uint8_t c[16];
	uint8_t *d = data(h);

	write_image(ro_image, 4096, 0x66, 4096);
	rw10(c, 0x28, 8, 8);
	CHECK(good(cmd(h, 1, c, 10, 0, 4096)) && holds(d, 0x66, 4096), "scsi-ro-read");
	rw10(c, 0x2a, 8, 8);
	CHECK(PROTECTED(cmd(h, 1, c, 10, 4096, 0)), "scsi-ro-write-protected");
	CHECK(image_holds(ro_image, 4096, 0x66, 4096), "scsi-ro-image-unchanged");
	uint8_t ws[10] = { 0x41, 0x08 };
	put32(ws + 2, 0);
	put16(ws + 7, 8);
	memset(d, 0, 512);
	CHECK(PROTECTED(cmd(h, 1, ws, 10, 512, 0)), "scsi-ro-write-same-protected");
	uint8_t um[10] = { 0x42 };
	put16(um + 7, 24);
	CHECK(PROTECTED(cmd(h, 1, um, 10, 24, 0)), "scsi-ro-unmap-protected");
	uint8_t ms[6] = { 0x1a, 0x08, 0x3f, 0, 255, 0 };
	struct result r = cmd(h, 1, ms, 6, 0, 255);
	CHECK(good(r) && (d[2] & 0x80), "scsi-ro-mode-sense-wp");
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && !(d[2] & 0x80) && (d[2] & 0x10), "scsi-rw-mode-sense-no-wp-dpofua");
	/* An I/O error: the image shrank under the back-end, a read past its end comes back short. */
	CHECK(truncate(ro_image, RO_SIZE / 2) == 0, "scsi-ro-image-shrunk");
	rw10(c, 0x28, RO_SIZE / 512 - 8, 8);
	CHECK(sense_is(cmd(h, 1, c, 10, 0, 4096), 0x3, 0x11, 0), "scsi-read-error-medium-error");
	CHECK(truncate(ro_image, RO_SIZE) == 0, "scsi-ro-image-restored");
}

static void test_verify_sync(struct hba *h)
{
	uint8_t c[16];

	rw10(c, 0x2f, 0, 16);
	CHECK(good(cmd(h, 0, c, 10, 0, 0)), "scsi-verify10");
	c[1] = 0x02; /* BYTCHK */
	struct result r = cmd(h, 0, c, 10, 512, 0);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 1, 2), "scsi-verify10-bytchk-invalid-field-pointer");
	rw16(c, 0x8f, DISK_SIZE / 512, 1);
	CHECK(OUT_OF_RANGE(cmd(h, 0, c, 16, 0, 0)), "scsi-verify16-out-of-range");
	rw10(c, 0x35, 0, 0);
	CHECK(good(cmd(h, 0, c, 10, 0, 0)), "scsi-synchronize-cache10");
	rw16(c, 0x91, 10, 10);
	CHECK(good(cmd(h, 0, c, 16, 0, 0)), "scsi-synchronize-cache16");
	rw16(c, 0x91, DISK_SIZE / 512 + 1, 0);
	CHECK(OUT_OF_RANGE(cmd(h, 0, c, 16, 0, 0)), "scsi-synchronize-cache16-out-of-range");
}

static void test_unmap_write_same(struct hba *h)
{
	uint8_t *d = data(h);
	uint8_t c[16];
	struct result r;

	/* WRITE SAME(16) of a zero block with UNMAP deallocates 1 MiB at 4 MiB. */
	write_image(image, 4 << 20, 0x77, 1 << 20);
	rw16(c, 0x93, (4 << 20) / 512, (1 << 20) / 512);
	c[1] = 0x08;
	memset(d, 0, 512);
	CHECK(good(cmd(h, 0, c, 16, 512, 0)), "scsi-write-same16-unmap");
	CHECK(image_hole(image, 4 << 20, 1 << 20), "scsi-write-same16-unmap-makes-a-hole");
	/* Without UNMAP: zeros, space kept. */
	write_image(image, 6 << 20, 0x78, 65536);
	uint8_t ws10[10] = { 0x41 };
	put32(ws10 + 2, (6 << 20) / 512);
	put16(ws10 + 7, 128);
	struct stat before, after;
	stat(image, &before);
	CHECK(good(cmd(h, 0, ws10, 10, 512, 0)), "scsi-write-same10-zero");
	CHECK(stat(image, &after) == 0 && after.st_blocks >= before.st_blocks, "scsi-write-same10-zero-keeps-space");
	rw10(c, 0x28, (6 << 20) / 512, 128);
	memset(d, 0xff, 65536);
	r = cmd(h, 0, c, 10, 0, 65536);
	bool zero = good(r);
	for (unsigned i = 0; i < 65536 && zero; i++)
		zero = d[i] == 0;
	CHECK(zero, "scsi-write-same10-zero-reads-zeros");
	/* NDOB: no data-out at all. */
	write_image(image, 7 << 20, 0x79, 4096);
	rw16(c, 0x93, (7 << 20) / 512, 8);
	c[1] = 0x09;
	CHECK(good(cmd(h, 0, c, 16, 0, 0)) && image_hole(image, 7 << 20, 4096), "scsi-write-same16-ndob-unmap");
	/* A pattern over 300 blocks: written in several writevs, all from the one guest block. */
	fill(d, 0x5a, 512);
	put32(ws10 + 2, (8 << 20) / 512);
	put16(ws10 + 7, 300);
	CHECK(good(cmd(h, 0, ws10, 10, 512, 0)), "scsi-write-same10-pattern");
	bool all = true;
	for (unsigned i = 0; i < 300 && all; i++)
		all = image_holds(image, (8 << 20) + i * 512, 0x5a, 512);
	CHECK(all, "scsi-write-same10-pattern-every-block");
	CHECK(!image_holds(image, (8 << 20) + 300 * 512, 0x5a, 512), "scsi-write-same10-pattern-no-further");
	put16(ws10 + 7, 0);
	CHECK(INVALID_FIELD(cmd(h, 0, ws10, 10, 512, 0)), "scsi-write-same10-zero-blocks-invalid-field");
	put16(ws10 + 7, 8);
	ws10[1] = 0x10; /* ANCHOR */
	CHECK(INVALID_FIELD(cmd(h, 0, ws10, 10, 512, 0)), "scsi-write-same10-anchor-invalid-field");
	ws10[1] = 0;
	CHECK(cmd(h, 0, ws10, 10, 100, 0).response == S_OVERRUN, "scsi-write-same10-short-buffer-overrun");
	put32(ws10 + 2, DISK_SIZE / 512 - 4);
	CHECK(OUT_OF_RANGE(cmd(h, 0, ws10, 10, 512, 0)), "scsi-write-same10-out-of-range");

	/* UNMAP with two descriptors. */
	write_image(image, 10 << 20, 0x7a, 1 << 20);
	write_image(image, 12 << 20, 0x7b, 1 << 20);
	uint8_t um[10] = { 0x42 };
	uint8_t *p = d;
	memset(p, 0, 40);
	put16(p, 38);
	put16(p + 2, 32);
	put64(p + 8, (10 << 20) / 512);
	put32(p + 16, (1 << 20) / 512);
	put64(p + 24, (12 << 20) / 512);
	put32(p + 32, (1 << 20) / 512);
	put16(um + 7, 40);
	CHECK(good(cmd(h, 0, um, 10, 40, 0)), "scsi-unmap-two-descriptors");
	CHECK(image_hole(image, 10 << 20, 1 << 20) && image_hole(image, 12 << 20, 1 << 20), "scsi-unmap-makes-holes");
	put16(um + 7, 0);
	CHECK(good(cmd(h, 0, um, 10, 0, 0)), "scsi-unmap-empty-list");
	put16(um + 7, 4);
	CHECK(sense_is(cmd(h, 0, um, 10, 4, 0), ILLEGAL, 0x1a, 0), "scsi-unmap-short-list-length-error");
	put16(um + 7, 24);
	put64(p + 8, DISK_SIZE / 512 - 1);
	put32(p + 16, 2);
	CHECK(OUT_OF_RANGE(cmd(h, 0, um, 10, 24, 0)), "scsi-unmap-out-of-range");
	put16(p + 2, 16 * 65);
	put16(um + 7, 8 + 16 * 65);
	memset(p + 8, 0, 16 * 65);
	r = cmd(h, 0, um, 10, 8 + 16 * 65, 0);
	CHECK(sense_is(r, ILLEGAL, 0x26, 0) && field_is(r, false, 2, -1), "scsi-unmap-too-many-descriptors");
	put16(um + 7, 24);
	CHECK(cmd(h, 0, um, 10, 16, 0).response == S_OVERRUN, "scsi-unmap-short-buffer-overrun");
	um[1] = 1;
	CHECK(INVALID_FIELD(cmd(h, 0, um, 10, 24, 0)), "scsi-unmap-anchor-invalid-field");

	/* GET LBA STATUS: at 10 MiB a deallocated extent of 1 MiB, then mapped data at 11 MiB. */
	write_image(image, 11 << 20, 0x7c, 1 << 20);
	uint8_t gs[16] = { 0x9e, 0x12 };
	put64(gs + 2, (10 << 20) / 512);
	put32(gs + 10, 1024);
	r = cmd(h, 0, gs, 16, 0, 1024);
	CHECK(good(r) && be32(d) >= 4 + 32 && be64(d + 8) == (10 << 20) / 512 && be32(d + 16) == (1 << 20) / 512 &&
	      d[20] == 1 && be64(d + 24) == (11 << 20) / 512 && d[36] == 0, "scsi-get-lba-status");
	put32(gs + 10, 24);
	r = cmd(h, 0, gs, 16, 0, 1024);
	CHECK(good(r) && r.used == RESP_SIZE + 24, "scsi-get-lba-status-allocation-length");
	put64(gs + 2, DISK_SIZE / 512);
	CHECK(OUT_OF_RANGE(cmd(h, 0, gs, 16, 0, 1024)), "scsi-get-lba-status-out-of-range");
}

static void test_mode(struct hba *h)
{
	uint8_t *d = data(h);
	uint8_t ms[6] = { 0x1a, 0, 0x3f, 0, 255, 0 };
	struct result r = cmd(h, 0, ms, 6, 0, 255);

	/* header 4 + block descriptor 8 + pages 12 + 20 + 12 */
	CHECK(good(r) && d[0] == 4 + 8 + 44 - 1 && d[3] == 8 && be32(d + 4) == DISK_SIZE / 512 && be32(d + 8) == 512,
	      "scsi-mode-sense6-all-pages");
	CHECK(d[12] == 0x01 && d[24] == 0x08 && (d[26] & 0x04) && d[44] == 0x0a, "scsi-mode-sense6-pages-wce");
	ms[1] = 0x08;
	ms[2] = 0x08;
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && d[0] == 4 + 20 - 1 && d[3] == 0 && d[4] == 0x08, "scsi-mode-sense6-dbd-caching");
	ms[2] = 0x48; /* changeable */
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && d[6] == 0x04, "scsi-mode-sense6-changeable-wce");
	ms[2] = 0xc8; /* saved */
	CHECK(sense_is(cmd(h, 0, ms, 6, 0, 255), ILLEGAL, 0x39, 0), "scsi-mode-sense6-saved-not-supported");
	ms[2] = 0x1c;
	CHECK(INVALID_FIELD(cmd(h, 0, ms, 6, 0, 255)), "scsi-mode-sense6-unknown-page-invalid-field");
	ms[2] = 0x08;
	ms[3] = 1;
	CHECK(INVALID_FIELD(cmd(h, 0, ms, 6, 0, 255)), "scsi-mode-sense6-subpage-invalid-field");
	ms[3] = 0;
	ms[4] = 4;
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && r.used == RESP_SIZE + 4, "scsi-mode-sense6-allocation-length");
	uint8_t ms10[10] = { 0x5a, 0, 0x0a };
	put16(ms10 + 7, 512);
	r = cmd(h, 0, ms10, 10, 0, 512);
	CHECK(good(r) && be16(d) == 8 + 8 + 12 - 2 && be16(d + 6) == 8 && d[16] == 0x0a, "scsi-mode-sense10-control");

	/* MODE SELECT(6): the caching page with WCE off; then on again. */
	ms[1] = 0x08;
	ms[4] = 255;
	r = cmd(h, 0, ms, 6, 0, 255);
	uint8_t page[20];
	memcpy(page, d + 4, 20);
	memset(d, 0, 4);
	memcpy(d + 4, page, 20);
	d[6] &= ~0x04;
	uint8_t sel[6] = { 0x15, 0x10, 0, 0, 24, 0 };
	CHECK(good(cmd(h, 0, sel, 6, 24, 0)), "scsi-mode-select6-wce-off");
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && !(d[6] & 0x04), "scsi-mode-select6-wce-off-reads-back");
	fill(d, 0x10, 512);
	uint8_t c[10];
	rw10(c, 0x2a, 0, 1);
	CHECK(good(cmd(h, 0, c, 10, 512, 0)) && image_holds(image, 0, 0x10, 512), "scsi-write-without-write-cache");
	memset(d, 0, 4);
	memcpy(d + 4, page, 20);
	d[7] = 0x01; /* a bit that cannot change */
	r = cmd(h, 0, sel, 6, 24, 0);
	CHECK(sense_is(r, ILLEGAL, 0x26, 0) && field_is(r, false, 7, 0), "scsi-mode-select6-fixed-field-refused");
	memset(d, 0, 4);
	memcpy(d + 4, page, 20);
	d[6] |= 0x04;
	sel[1] = 0x11; /* SP */
	CHECK(INVALID_FIELD(cmd(h, 0, sel, 6, 24, 0)), "scsi-mode-select6-save-invalid-field");
	sel[1] = 0x10;
	sel[4] = 3;
	CHECK(sense_is(cmd(h, 0, sel, 6, 3, 0), ILLEGAL, 0x1a, 0), "scsi-mode-select6-short-list");
	sel[4] = 24;
	CHECK(cmd(h, 0, sel, 6, 10, 0).response == S_OVERRUN, "scsi-mode-select6-short-buffer-overrun");
	uint8_t sel10[10] = { 0x55, 0x10 };
	put16(sel10 + 7, 28);
	memset(d, 0, 8);
	memcpy(d + 8, page, 20);
	d[10] |= 0x04;
	CHECK(good(cmd(h, 0, sel10, 10, 28, 0)), "scsi-mode-select10-wce-on");
	r = cmd(h, 0, ms, 6, 0, 255);
	CHECK(good(r) && (d[6] & 0x04), "scsi-mode-select10-wce-on-reads-back");
	/* A block descriptor with another block length is refused. */
	put16(sel10 + 7, 36);
	memset(d, 0, 36);
	put16(d + 6, 8);
	put32(d + 12, 4096);
	memcpy(d + 16, page, 20);
	CHECK(sense_is(cmd(h, 0, sel10, 10, 36, 0), ILLEGAL, 0x26, 0), "scsi-mode-select10-block-length-refused");
}

static void test_report(struct hba *h)
{
	uint8_t *d = data(h);
	uint8_t rl[12] = { 0xa0 };
	put32(rl + 6, 256);
	struct result r = cmd(h, 0, rl, 12, 0, 256);

	CHECK(good(r) && be32(d) == 24 && d[9] == 0 && d[17] == 1 && d[25] == 2 && r.resid == 256 - 32,
	      "scsi-report-luns");
	r = cmd(h, 6, rl, 12, 0, 256);
	CHECK(good(r) && be32(d) == 24, "scsi-report-luns-from-a-bad-lun");
	rl[2] = 1;
	r = cmd(h, 0, rl, 12, 0, 256);
	CHECK(good(r) && be32(d) == 0, "scsi-report-luns-well-known-none");
	rl[2] = 0x55;
	CHECK(INVALID_FIELD(cmd(h, 0, rl, 12, 0, 256)), "scsi-report-luns-bad-select-invalid-field");
	rl[2] = 0;
	put32(rl + 6, 8);
	r = cmd(h, 0, rl, 12, 0, 256);
	CHECK(INVALID_FIELD(r) && field_is(r, true, 6, -1), "scsi-report-luns-allocation-under-16");

	uint8_t ro[12] = { 0xa3, 0x0c };
	put32(ro + 6, 4096);
	r = cmd(h, 0, ro, 12, 0, 4096);
	bool has_read10 = false, has_rc16 = false;
	unsigned n = good(r) ? be32(d) / 8 : 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = d + 4 + 8 * i;
		has_read10 |= e[0] == 0x28 && be16(e + 6) == 10;
		has_rc16 |= e[0] == 0x9e && be16(e + 2) == 0x10 && (e[5] & 1) && be16(e + 6) == 16;
	}
	CHECK(n >= 28 && has_read10 && has_rc16, "scsi-report-opcodes-all");
	ro[2] = 0x80;
	r = cmd(h, 0, ro, 12, 0, 4096);
	CHECK(good(r) && be32(d) % 20 == 0 && (d[4 + 5] & 0x02) && be16(d + 4 + 8) == 0x0a, "scsi-report-opcodes-rctd");
	ro[2] = 1;
	ro[3] = 0x2a;
	r = cmd(h, 0, ro, 12, 0, 4096);
	CHECK(good(r) && (d[1] & 7) == 3 && be16(d + 2) == 10 && d[4] == 0x2a && d[5] == 0x18 && d[13] == 0,
	      "scsi-report-opcodes-one-write10");
	ro[3] = 0x9e;
	CHECK(INVALID_FIELD(cmd(h, 0, ro, 12, 0, 4096)), "scsi-report-opcodes-needs-service-action");
	ro[2] = 2;
	put16(ro + 4, 0x10);
	r = cmd(h, 0, ro, 12, 0, 4096);
	CHECK(good(r) && (d[1] & 7) == 3 && be16(d + 2) == 16 && d[4] == 0x9e && (d[5] & 0x1f) == 0x10,
	      "scsi-report-opcodes-read-capacity16");
	ro[2] = 1;
	ro[3] = 0xc0;
	r = cmd(h, 0, ro, 12, 0, 4096);
	CHECK(good(r) && (d[1] & 7) == 1, "scsi-report-opcodes-unsupported");
	ro[2] = 5;
	CHECK(INVALID_FIELD(cmd(h, 0, ro, 12, 0, 4096)), "scsi-report-opcodes-bad-options");
}

/* One control request: out bytes, then in bytes back; -1 if no completion. */
static int control(struct hba *h, const void *req, uint32_t out_len, void *resp, uint32_t in_len)
{
	struct vuf_buf out = { h->hdr, out_len }, in = { h->resp, in_len };
	uint32_t id, len;

	vuf_gpa_write(h->f, h->hdr, req, out_len);
	memset(resp, 0xee, in_len);
	vuf_gpa_write(h->f, h->resp, resp, in_len);
	int head = vuf_vq_add(h->ctl, &out, 1, &in, in_len ? 1 : 0, false);
	if (head < 0 || vuf_vq_kick(h->ctl) < 0 || vuf_vq_wait_used(h->ctl, &id, &len, 2000) < 0)
		return -1;
	vuf_gpa_read(h->f, h->resp, resp, in_len);
	return (int)len;
}

static int tmf(struct hba *h, uint32_t subtype, unsigned target, unsigned lun)
{
	uint8_t req[24] = { 0 }, resp = 0xee;
	uint32_t le = htole32(subtype);

	memcpy(req + 4, &le, 4);   /* type 0 (TMF), then the subtype */
	lun_field(req + 8, target, lun);
	req[16] = 0x42;            /* the tag */
	return control(h, req, sizeof(req), &resp, 1) == 1 ? resp : -1;
}

static void test_control(struct hba *h)
{
	CHECK_EQ(tmf(h, 0, 0, 0), S_OK, "scsi-tmf-abort-task");
	CHECK_EQ(tmf(h, 1, 0, 0), S_OK, "scsi-tmf-abort-task-set");
	CHECK_EQ(tmf(h, 5, 0, 1), S_OK, "scsi-tmf-logical-unit-reset");
	CHECK_EQ(tmf(h, 4, 0, 0), S_OK, "scsi-tmf-i-t-nexus-reset");
	CHECK_EQ(tmf(h, 6, 0, 0), S_OK, "scsi-tmf-query-task-none");
	CHECK_EQ(tmf(h, 2, 0, 0), S_REJECTED, "scsi-tmf-clear-aca-rejected");
	CHECK_EQ(tmf(h, 99, 0, 0), S_REJECTED, "scsi-tmf-unknown-rejected");
	CHECK_EQ(tmf(h, 5, 0, 9), S_INCORRECT_LUN, "scsi-tmf-bad-lun");
	CHECK_EQ(tmf(h, 5, 3, 0), S_BAD_TARGET, "scsi-tmf-bad-target");

	/* A LUN reset with writes queued: it answers, and every write completes. */
	uint8_t c[10];
	rw10(c, 0x2a, 0, 64);
	/* Their own header and response buffers: the TMF uses the usual ones meanwhile. */
	struct vuf_buf out[2] = { { h->data + (1 << 20), REQ_SIZE }, { h->data, 32768 } };
	struct vuf_buf in = { h->data + (2 << 20), RESP_SIZE };
	uint8_t hdr[REQ_SIZE] = { 0 };
	lun_field(hdr, 0, 0);
	memcpy(hdr + 19, c, 10);
	vuf_gpa_write(h->f, out[0].gpa, hdr, sizeof(hdr));
	int heads = 0;
	for (int i = 0; i < 8; i++)
		heads += vuf_vq_add(h->req, out, 2, &in, 1, false) >= 0;
	vuf_vq_kick(h->req);
	CHECK_EQ(tmf(h, 5, 0, 0), S_OK, "scsi-tmf-reset-with-commands-queued");
	uint32_t id, len;
	int done = 0;
	uint8_t resp[RESP_SIZE];
	for (int i = 0; i < 8; i++)
		done += vuf_vq_wait_used(h->req, &id, &len, 2000) == 0 && len == RESP_SIZE;
	CHECK(heads == 8 && done == 8 && vuf_gpa_read(h->f, in.gpa, resp, sizeof(resp)) == 0 && resp[10] == GOOD &&
	      resp[11] == S_OK, "scsi-tmf-reset-commands-complete");

	uint8_t an[16] = { 1 };
	lun_field(an + 4, 0, 0);
	an[12] = 0xff;
	CHECK(control(h, an, 16, resp, 5) == 5 && resp[0] == 0 && resp[1] == 0 && resp[4] == S_OK,
	      "scsi-an-query-no-events");
	an[0] = 2;
	CHECK(control(h, an, 16, resp, 5) == 5 && resp[0] == 0 && resp[4] == S_OK, "scsi-an-subscribe-no-events");
	lun_field(an + 4, 0, 20);
	CHECK(control(h, an, 16, resp, 5) == 5 && resp[4] == S_INCORRECT_LUN, "scsi-an-bad-lun");
}

/* Requests the guest may not send: each fails the request or the queue, and the back-end lives. */
static void test_hostile(void)
{
	const char *args[] = { "--lun", image, NULL };
	struct hba h;

	if (!CHECK(hba_open(&h, args), "scsi-hostile-open")) {
		hba_close(&h);
		return;
	}
	/* A request header cut short: the request fails (response FAILURE). */
	struct vuf_buf out = { h.hdr, 20 }, in = { h.resp, RESP_SIZE };
	uint8_t resp[RESP_SIZE];
	uint32_t id, len;
	int head = vuf_vq_add(h.req, &out, 1, &in, 1, false);
	CHECK(head >= 0 && vuf_vq_kick(h.req) == 0 && vuf_vq_wait_used(h.req, &id, &len, 2000) == 0 &&
	      vuf_gpa_read(h.f, h.resp, resp, sizeof(resp)) == 0 && resp[11] == S_FAILURE, "scsi-short-header-failure");
	/* A short control request fails the control queue only. */
	uint8_t tmf_req[8] = { 0 }, r1;
	CHECK(control(&h, tmf_req, 8, &r1, 1) < 0 && vuf_vq_wait_err(h.ctl, 1000) == 1, "scsi-short-tmf-fails-queue");
	uint8_t tur[6] = { 0 };
	CHECK(good(cmd(&h, 0, tur, 6, 0, 0)), "scsi-request-queue-lives-on");
	/* No room for the response: the request queue is failed. */
	out.len = REQ_SIZE;
	in.len = 20;
	head = vuf_vq_add(h.req, &out, 1, &in, 1, false);
	CHECK(head >= 0 && vuf_vq_kick(h.req) == 0 && vuf_vq_wait_err(h.req, 2000) == 1, "scsi-no-room-for-response-fails-queue");
	CHECK(vuf_ping(h.f) == 0 && vuf_backend_alive(h.be), "scsi-hostile-backend-lives");
	hba_close(&h);
}

/* A write the killed back-end took but never completed is done by the next one. */
static void test_inflight(void)
{
	const char *args[] = { "--lun", image, NULL };
	size_t qsize = vu_inflight_queue_size(128);
	int fd = memfd_create("inflight", 0);
	struct hba h;

	if (fd < 0 || ftruncate(fd, 3 * qsize) < 0) {
		CHECK(false, "scsi-inflight-buffer");
		return;
	}
	uint8_t *base = mmap(NULL, 3 * qsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct vu_inflight_queue *q = (struct vu_inflight_queue *)(base + 2 * qsize);
	if (!CHECK(hba_open_at(&h, sock, args, false), "scsi-inflight-open")) {
		hba_close(&h);
		close(fd);
		return;
	}
	struct vuf_vq *vq = vuf_vq_alloc(h.f, 2, 128);
	uint8_t hdr[REQ_SIZE] = { 0 }, c[10];
	lun_field(hdr, 0, 0);
	rw10(c, 0x2a, 500, 8);
	memcpy(hdr + 19, c, 10);
	vuf_gpa_write(h.f, h.hdr, hdr, sizeof(hdr));
	fill(data(&h), 0x99, 4096);
	struct vuf_buf out[2] = { { h.hdr, REQ_SIZE }, { h.data, 4096 } }, in = { h.resp, RESP_SIZE };
	int head = vq ? vuf_vq_add(vq, out, 2, &in, 1, false) : -1;
	for (int i = 0; i < 3; i++) {
		struct vu_inflight_queue *qi = (struct vu_inflight_queue *)(base + i * qsize);
		qi->version = 1;
		qi->desc_num = 128;
	}
	if (head >= 0) {
		q->desc[head].inflight = 1;
		q->desc[head].counter = 1;
	}
	struct vu_inflight in_msg = { .mmap_size = 3 * qsize, .num_queues = 3, .queue_size = 128 };
	CHECK(vuf_request(h.f, VU_REQ_SET_INFLIGHT_FD, &in_msg, sizeof(in_msg), &fd, 1) == 0, "scsi-inflight-set-fd");
	CHECK(vq && vuf_vq_start(vq, 0, VUF_VQ_NO_ENABLE) == 0, "scsi-inflight-ring-start");
	if (vq)
		vuf_vq_set_avail_idx(vq, 1);
	CHECK(vuf_set_vring_enable(h.f, 2, true) == 0, "scsi-inflight-ring-enable");
	uint32_t id, len;
	CHECK(vq && vuf_vq_wait_used(vq, &id, &len, 2000) == 0 && id == (uint32_t)head, "scsi-inflight-resubmitted");
	CHECK(image_holds(image, 500 * 512, 0x99, 4096), "scsi-inflight-data-written");
	CHECK(q->desc[head < 0 ? 0 : head].inflight == 0 && q->used_idx == 1, "scsi-inflight-buffer-updated");
	munmap(base, 3 * qsize);
	close(fd);
	hba_close(&h);
}

/* The caching page's WCE of lun, by MODE SENSE(6); -1 if it failed. */
static int wce_of(struct hba *h, unsigned lun)
{
	uint8_t ms[6] = { 0x1a, 0x08, 0x08, 0, 255, 0 };
	struct result r = cmd(h, lun, ms, 6, 0, 255);
	return good(r) ? !!(data(h)[6] & 0x04) : -1;
}

/* DEVICE_STATE: the units' write caches as the guest set them move to a new back-end. */
static void test_device_state(void)
{
	char big[128];
	snprintf(big, sizeof(big), "%s,lbs=4096", big_image);
	const char *args[] = { "--lun", image, "--lun", big, NULL };
	uint8_t saved[64];
	size_t nsaved = 0;
	struct hba h;
	int p[2];

	if (!CHECK(hba_open(&h, args), "scsi-state-open") ||
	    !CHECK(h.f->protocol_features & (1ull << VU_PF_DEVICE_STATE), "scsi-state-offered")) {
		hba_close(&h);
		return;
	}
	uint8_t *d = data(&h);
	uint8_t sel[6] = { 0x15, 0x10, 0, 0, 24, 0 };
	memset(d, 0, 24);
	d[4] = 0x08;
	d[5] = 18;
	CHECK(good(cmd(&h, 1, sel, 6, 24, 0)) && wce_of(&h, 1) == 0 && wce_of(&h, 0) == 1, "scsi-state-lun1-wce-off");
	unsigned base;
	for (unsigned q = 0; q < 3; q++)
		vuf_get_vring_base(h.f, q, &base);
	if (CHECK(pipe(p) == 0 && vuf_set_device_state_fd(h.f, 0, p[1]) == 0x100, "scsi-state-save-started")) {
		close(p[1]);
		ssize_t n;
		while (nsaved < sizeof(saved) && (n = read(p[0], saved + nsaved, sizeof(saved) - nsaved)) > 0)
			nsaved += n;
		close(p[0]);
		CHECK(nsaved == 16 && vuf_check_device_state(h.f) == 0, "scsi-state-saved");
	}
	hba_close(&h);

	if (!CHECK(hba_open_at(&h, sock, args, false), "scsi-state-destination-open")) {
		hba_close(&h);
		return;
	}
	CHECK(vuf_state_load(h.f, "garbage", 7, true) != 0, "scsi-state-garbage-refused");
	uint8_t other[16];
	memcpy(other, saved, sizeof(other));
	other[5] = 3; /* another number of LUNs */
	CHECK(vuf_state_load(h.f, other, sizeof(other), true) != 0, "scsi-state-other-lun-count-refused");
	CHECK(vuf_state_load(h.f, saved, nsaved, true) == 0, "scsi-state-loaded");
	h.ctl = vuf_vq_setup(h.f, 0, 128, 0);
	h.req = vuf_vq_setup(h.f, 2, 128, 0);
	CHECK(h.req && vuf_vq_setup(h.f, 1, 128, 0) && wce_of(&h, 1) == 0 && wce_of(&h, 0) == 1,
	      "scsi-state-wce-restored");
	hba_close(&h);
}

static void test_queues(void)
{
	const char *args[] = { "--lun", image, "--num-queues=2", NULL };
	struct hba h;

	if (!CHECK(hba_open(&h, args), "scsi-two-queues-open")) {
		hba_close(&h);
		return;
	}
	uint64_t n = 0;
	CHECK(vuf_get_queue_num(h.f, &n) == 0 && n == 4, "scsi-two-queues-queue-num");
	h.req = vuf_vq_setup(h.f, 3, 128, 0);
	uint8_t c[10];
	rw10(c, 0x28, 100, 8);
	CHECK(h.req && good(cmd(&h, 0, c, 10, 0, 4096)), "scsi-second-request-queue");
	/*
	 * QEMU moves a restarted ring's call to another eventfd after the ring runs: the
	 * new one is signalled at once, so a completion sent to the old one is not lost.
	 */
	int efd = eventfd(0, EFD_NONBLOCK);
	struct pollfd p = { .fd = efd, .events = POLLIN };
	CHECK(efd >= 0 && vuf_set_vring_call(h.f, 3, efd) == 0 && poll(&p, 1, 2000) == 1,
	      "scsi-new-call-fd-of-a-running-ring-signalled");
	if (efd >= 0)
		close(efd);
	hba_close(&h);
}

/*
 * --lock=start, the hand-over of a live migration, as blk's: two back-ends on the
 * same LUNs (one written, one read-only, its lock shared) both start; the images
 * are locked by the one whose device runs, and the other's commands wait until it
 * stops its request ring (GET_VRING_BASE, as QEMU does at the switch-over), is
 * reset (RESET_DEVICE) or disconnects. A --lock=open back-end cannot start while a
 * device holds the lock.
 */
static void test_lock_handover(void)
{
	const char *args[] = { "--lun", image, "--lun", ro_lun, "--lock=start", NULL };
	const char *open_args[] = { "--lun", image, NULL };
	const uint64_t pf = all_pf | 1ull << VU_PF_STATUS | 1ull << VU_PF_RESET_DEVICE;
	char sock2[80], sock3[80];
	struct hba a, b;
	unsigned base = 0;
	uint8_t rd[10], wr[10];

	snprintf(sock2, sizeof(sock2), "%s/second.sock", dir);
	snprintf(sock3, sizeof(sock3), "%s/third.sock", dir);
	rw10(rd, 0x28, 600, 8);
	rw10(wr, 0x2a, 600, 8);
	memset(&b, 0, sizeof(b));
	if (!CHECK(hba_open_pf(&a, sock, args, pf, true) && hba_open_pf(&b, sock2, args, pf, true),
		   "scsi-lock-start-two-backends-start"))
		goto out;
	fill(data(&a), 0x3c, 4096);
	CHECK(good(cmd(&a, 0, wr, 10, 4096, 0)), "scsi-lock-start-first-device-runs");
	int head = cmd_send(&b, 0, 0, rd, 10, 0, 4096);
	CHECK(head >= 0 && cmd_wait(&b, head, 300).used == -1, "scsi-lock-start-second-device-waits");
	CHECK(vuf_get_vring_base(a.f, 2, &base) == 0 && base == 1, "scsi-lock-start-first-stops-its-ring");
	CHECK(good(cmd_wait(&b, head, 5000)), "scsi-lock-start-second-runs-when-first-stopped");
	CHECK(holds(data(&b), 0x3c, 4096), "scsi-lock-start-second-reads-first-write");

	/* The first starts again: it waits until the second is reset. */
	CHECK(vuf_vq_start(a.req, (uint16_t)base, 0) == 0, "scsi-lock-start-first-restarts");
	head = cmd_send(&a, 0, 1, rd, 10, 0, 4096); /* the read-only LUN: the set is locked as one */
	CHECK(head >= 0 && cmd_wait(&a, head, 300).used == -1, "scsi-lock-start-restarted-first-waits");
	/* Status 0 with the ring still running (QEMU stops the rings first): the lock stays. */
	CHECK(vuf_set_status(b.f, 0xf) == 0 && vuf_set_status(b.f, 0) == 0, "scsi-lock-start-second-status-0");
	CHECK(cmd_wait(&a, head, 300).used == -1, "scsi-lock-start-status-0-with-running-ring-keeps-lock");
	CHECK(vuf_reset_device(b.f) == 0, "scsi-lock-start-second-reset");
	CHECK(good(cmd_wait(&a, head, 5000)), "scsi-lock-start-reset-unlocks");

	/* The second sets up its ring again: its next command waits until the first disconnects. */
	CHECK(vuf_set_features(b.f, b.f->features) == 0 && vuf_vq_start(b.req, 0, 0) == 0,
	      "scsi-lock-start-second-restarts");
	head = cmd_send(&b, 0, 0, rd, 10, 0, 4096);
	CHECK(head >= 0 && cmd_wait(&b, head, 300).used == -1, "scsi-lock-start-second-waits-again");
	CHECK(vuf_backend_start("scsi", open_args, sock3) == NULL, "scsi-lock-open-refused-while-a-device-holds");
	vuf_close(a.f);
	a.f = NULL;
	CHECK(good(cmd_wait(&b, head, 5000)), "scsi-lock-start-disconnect-unlocks");
	CHECK(vuf_backend_alive(a.be) && vuf_backend_alive(b.be), "scsi-lock-start-backends-survive");
out:
	hba_close(&a);
	hba_close(&b);
}

/*
 * A started device that cannot get the lock (a --lock=open back-end has one of its
 * LUNs) fails its request queue; read-only LUNs share theirs.
 */
static void test_lock_wait_expires(void)
{
	const char *open_args[] = { "--lun", ro_lun, "--lun", big_image, NULL };
	const char *wait_args[] = { "--lun", ro_lun, "--lun", big_image, "--lock=start", "--lock-wait=1", NULL };
	const char *ro_args[] = { "--lun", ro_lun, "--lock=start", NULL };
	char sock2[80], sock3[80];
	struct hba c, r;
	uint8_t tur[6] = { 0 };

	snprintf(sock2, sizeof(sock2), "%s/second.sock", dir);
	snprintf(sock3, sizeof(sock3), "%s/third.sock", dir);
	memset(&c, 0, sizeof(c));
	memset(&r, 0, sizeof(r));
	struct vuf_backend *a = vuf_backend_start("scsi", open_args, sock);
	if (CHECK(a && hba_open_at(&c, sock2, wait_args, true), "scsi-lock-start-beside-open-starts")) {
		int head = cmd_send(&c, 0, 0, tur, 6, 0, 0);
		CHECK(head >= 0 && vuf_vq_wait_err(c.req, 10000) == 1, "scsi-lock-wait-expires-queue-fails");
		CHECK(vuf_backend_alive(c.be) && vuf_ping(c.f) == 0, "scsi-lock-wait-expired-connection-survives");
	}
	if (CHECK(a && hba_open_at(&r, sock3, ro_args, true), "scsi-lock-start-read-only-beside-open-starts"))
		CHECK(good(cmd(&r, 0, tur, 6, 0, 0)), "scsi-lock-read-only-lun-shared");
	hba_close(&r);
	hba_close(&c);
	if (a)
		vuf_backend_stop(a, 2000);
}

/* The back-end's exit status and how many lines it wrote on stderr. */
static int cli(const char *args, int *lines)
{
	char line[512], command[1024];
	const char *bin = getenv("VHOSTBOX") ? getenv("VHOSTBOX") : "./vhostbox";

	snprintf(command, sizeof(command), "%s scsi --socket-path=%s/cli.sock %s 2>&1 >/dev/null", bin, dir, args);
	FILE *p = popen(command, "r");
	*lines = 0;
	while (p && fgets(line, sizeof(line), p))
		(*lines)++;
	int st = p ? pclose(p) : -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_options(void)
{
	char args[256];
	int lines;

	snprintf(args, sizeof(args), "--lun=%s,bogus", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-lun-unknown-setting-usage-error");
	snprintf(args, sizeof(args), "--lun=%s,lbs=1024", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-lun-bad-block-size-usage-error");
	snprintf(args, sizeof(args), "--lun=%s,serial=0123456789012345678901234567890123", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-lun-serial-too-long-usage-error");
	CHECK(cli("--lun=,ro", &lines) == 2 && lines == 1, "scsi-lun-without-path-usage-error");
	snprintf(args, sizeof(args), "--lun=%s --num-queues=0", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-num-queues-range-usage-error");
	CHECK(cli("", &lines) != 0 && lines == 1, "scsi-no-lun-refused");
	snprintf(args, sizeof(args), "--lun=%s --lun=%s", image, image);
	CHECK(cli(args, &lines) != 0, "scsi-same-image-twice-refused-by-lock");
	snprintf(args, sizeof(args), "--lun=%s --lun=%s,ro --lock=start", image, image);
	CHECK(cli(args, &lines) == 1 && lines == 1, "scsi-lock-start-same-image-twice-refused");
	snprintf(args, sizeof(args), "--lun=%s --lock=never", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-lock-bad-mode-usage-error");
	snprintf(args, sizeof(args), "--lun=%s --lock-wait=0", image);
	CHECK(cli(args, &lines) == 2 && lines == 1, "scsi-lock-wait-range-usage-error");
	char odd[80];
	snprintf(odd, sizeof(odd), "%s/odd.img", dir);
	int fd = open(odd, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1000) == 0, "scsi-odd-size-image");
	if (fd >= 0)
		close(fd);
	snprintf(args, sizeof(args), "--lun=%s", odd);
	CHECK(cli(args, &lines) == 1, "scsi-odd-size-refused");
	unlink(odd);
	CHECK(vuf_backend_start("scsi", (const char *[]){ "--lun=/nonexistent/disk.img", NULL }, sock) == NULL,
	      "scsi-missing-image-refused");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	check_deadline(120);
	snprintf(image, sizeof(image), "%s/disk.img", dir);
	snprintf(ro_image, sizeof(ro_image), "%s/ro.img", dir);
	snprintf(big_image, sizeof(big_image), "%s/big.img", dir);
	snprintf(sock, sizeof(sock), "%s/scsi.sock", dir);
	const char *imgs[] = { image, ro_image, big_image };
	const unsigned sizes[] = { DISK_SIZE, RO_SIZE, BIG_SIZE };
	for (int i = 0; i < 3; i++) {
		int fd = open(imgs[i], O_CREAT | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, sizes[i]) < 0)
			return 1;
		close(fd);
	}
	char first[128];
	snprintf(first, sizeof(first), "%s,serial=%s", image, SERIAL);
	snprintf(ro_lun, sizeof(ro_lun), "%s,ro,rotational", ro_image);
	snprintf(big_lun, sizeof(big_lun), "%s,lbs=4096", big_image);
	const char *args[] = { "--lun", first, "--lun", ro_lun, "--lun", big_lun, NULL };

	struct hba h;
	if (CHECK(hba_open(&h, args), "scsi-open")) {
		test_config(&h);
		test_addressing(&h);
		test_inquiry(&h);
		test_sense_capacity(&h);
		test_read_write(&h);
		test_read_only(&h);
		test_verify_sync(&h);
		test_unmap_write_same(&h);
		test_mode(&h);
		test_report(&h);
		test_control(&h);
	}
	hba_close(&h);
	test_hostile();
	test_inflight();
	test_device_state();
	test_queues();
	test_lock_handover();
	test_lock_wait_expires();
	test_options();

	for (int i = 0; i < 3; i++)
		unlink(imgs[i]);
	rmdir(dir);
	return check_exit();
}
