/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-scsi (device id 8): one target whose logical units are raw images or
 * block devices (--lun, repeatable: LUN 0, 1, ...). This file is the transport:
 * the control, event and request queues, the request and response headers, task
 * management. The command set is dev/scsi-cmd.c and dev/scsi-info.c; data moves
 * between the images and guest memory through blk's io_uring engine (dev/blk-io.c);
 * the images are locked as blk's image is (dev/disk-lock.c).
 *
 * build: scsi.c scsi-cmd.c scsi-info.c blk-io.c disk-lock.c disk-queue.c
 * pkg-config: liburing
 * debian: liburing-dev
 * systemd: ReadWritePaths=-/var/lib/vhostbox
 * systemd: RestrictAddressFamilies=AF_UNIX
 * systemd: SystemCallFilter=@system-service
 */
#include <endian.h>
#include <errno.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev/disk-lock.h"
#include "dev/disk-queue.h"
#include "dev/scsi.h"
#include "proto/device.h"
#include "proto/iov.h"
#include "proto/log.h"
#include "proto/loop.h"

/* virtio-scsi (virtio 1.2, 5.6): queues, request types, response codes, TMF subtypes. */
enum { Q_CONTROL = 0, Q_EVENT = 1, Q_REQUEST = 2 };
enum { T_TMF = 0, T_AN_QUERY = 1, T_AN_SUBSCRIBE = 2 };
/*
 * VIRTIO_SCSI_F_CHANGE: the device may report LUN parameter changes on the event
 * queue. QEMU passes its guest's ack of it through whatever the back-end offered;
 * we offer it: a LUN's parameters never change while served, so no event is due.
 */
enum { F_CHANGE = 2 };
enum {
	S_OK = 0, S_OVERRUN = 1, S_BAD_TARGET = 3, S_FAILURE = 9, S_FUNCTION_SUCCEEDED = 10,
	S_FUNCTION_REJECTED = 11, S_INCORRECT_LUN = 12,
};
enum {
	TMF_ABORT_TASK = 0, TMF_ABORT_TASK_SET = 1, TMF_CLEAR_ACA = 2, TMF_CLEAR_TASK_SET = 3,
	TMF_I_T_NEXUS_RESET = 4, TMF_LOGICAL_UNIT_RESET = 5, TMF_QUERY_TASK = 6, TMF_QUERY_TASK_SET = 7,
};

_Static_assert(SCSI_MAX_LUNS <= DISK_LOCK_MAX_IMAGES, "every LUN's image is in the lock's set");

#define MAX_QUEUES 16              /* request queues */
#define SLOTS_PER_QUEUE 128        /* commands in flight per queue */
#define SENSE_SIZE 96              /* the config's defaults; the driver may change them */
#define CDB_SIZE 32
#define SENSE_MAX 252
#define REQ_HDR 19                 /* lun[8], id, task_attr, prio, crn: then the CDB */
#define RESP_HDR 12                /* sense_len, resid, status_qualifier, status, response: then sense */
#define CTL_MAX_IOV 8

struct scsi_config {
	uint32_t num_queues;
	uint32_t seg_max;
	uint32_t max_sectors;
	uint32_t cmd_per_lun;
	uint32_t event_info_size;
	uint32_t sense_size;
	uint32_t cdb_size;
	uint16_t max_channel;
	uint16_t max_target;
	uint32_t max_lun;
} __attribute__((packed));

struct slot {
	struct disk_slot base;            /* the request as popped (into iov) */
	struct disk_queue *q;
	struct iovec iov[SCSI_MAX_IOV];
	struct iovec out[SCSI_MAX_IOV];   /* its data-out */
	struct iovec in[SCSI_MAX_IOV];    /* its data-in */
	struct scsi_cmd cmd;
	uint64_t tag;                     /* the driver's id of the command (TMFs name it) */
	uint32_t sense_size;              /* the response's layout when the request came */
	uint8_t response;                 /* S_OK unless the transport failed it */
	bool active;                      /* popped and not completed */
};

struct scsi {
	struct vu_dev dev;
	unsigned req_queues;
	bool direct, writethrough;
	struct scsi_lun luns[SCSI_MAX_LUNS];
	struct scsi_target target;
	struct scsi_config config;
	struct disk_queue queues[Q_REQUEST + MAX_QUEUES]; /* request queues from Q_REQUEST on */
	struct disk_lock lock;            /* every LUN's image: --lock, --lock-wait */
	struct disk_lock_queue locks[Q_REQUEST + MAX_QUEUES]; /* the request queues' shares of it */
	bool draining;                    /* a TMF waits for them: take no new ones meanwhile */
	struct vu_req ctl_req;
	struct iovec ctl_iov[CTL_MAX_IOV];
};

/* --lun=PATH[,ro][,serial=S][,lbs=512|4096][,rotational]: one more unit. */
static int parse_lun(struct vu_dev *dev, const char *arg)
{
	struct scsi *s = (struct scsi *)dev;
	struct scsi_lun *l = &s->luns[s->target.nluns];
	char *save, *tok;

	if (s->target.nluns == SCSI_MAX_LUNS) {
		fprintf(stderr, "%s: --lun: at most %u units\n", vu_log_name(), SCSI_MAX_LUNS);
		return -1;
	}
	if (!*arg || *arg == ',') {
		fprintf(stderr, "%s: --lun needs a path\n", vu_log_name());
		return -1;
	}
	*l = (struct scsi_lun){ .spec = strdup(arg), .block_size = 512, .img.fd = -1 };
	if (!l->spec) {
		fprintf(stderr, "%s: out of memory\n", vu_log_name());
		return -1;
	}
	l->path = strtok_r(l->spec, ",", &save);
	s->target.nluns++; /* freed with the device from here on */
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strcmp(tok, "ro")) {
			l->read_only = true;
		} else if (!strcmp(tok, "rotational")) {
			l->rotational = true;
		} else if (!strcmp(tok, "lbs=512") || !strcmp(tok, "lbs=4096")) {
			l->block_size = (unsigned)atoi(tok + 4);
		} else if (!strncmp(tok, "serial=", 7)) {
			const char *v = tok + 7;
			size_t n = strlen(v);
			bool printable = n > 0 && n <= SCSI_SERIAL_MAX;
			for (size_t i = 0; i < n && printable; i++)
				printable = v[i] > 0x20 && v[i] < 0x7f;
			if (!printable) {
				fprintf(stderr, "%s: --lun: serial= must be 1..%u printable ASCII characters, not '%s'\n",
					vu_log_name(), SCSI_SERIAL_MAX, v);
				return -1;
			}
			memcpy(l->serial, v, n + 1);
		} else {
			fprintf(stderr, "%s: --lun: unknown setting '%s' (ro, serial=S, lbs=512|4096, rotational)\n",
				vu_log_name(), tok);
			return -1;
		}
	}
	return 0;
}

#define SCSI_FIELD(f) offsetof(struct scsi, f)
static const struct vu_option scsi_options[] = {
	{ .name = "lun", .kind = VU_OPT_PARSE, .parse = parse_lun, .arg = "PATH[,SET]...",
	  .help = "a logical unit: a raw image file or block device, with settings ro (read-only), serial=S "
		  "(its serial number), lbs=512|4096 (logical block size), rotational (reported as a "
		  "rotating disk); repeat for LUN 1, 2, ... (at least one)" },
	{ .name = "num-queues", .kind = VU_OPT_UINT, .offset = SCSI_FIELD(req_queues), .arg = "N",
	  .help = "request queues", .min = 1, .max = MAX_QUEUES },
	{ .name = "queue-size", .kind = VU_OPT_UINT, .offset = SCSI_FIELD(dev.max_queue_size), .arg = "N",
	  .help = "largest queue (ring) size accepted", .min = 2, .max = VU_VRING_MAX_SIZE, .flags = VU_OPT_POW2 },
	{ .name = "direct", .kind = VU_OPT_FLAG, .offset = SCSI_FIELD(direct),
	  .help = "open the images with O_DIRECT (bypass the host page cache)" },
	{ .name = "writethrough", .kind = VU_OPT_FLAG, .offset = SCSI_FIELD(writethrough),
	  .help = "start with the write caches off (WCE 0): every write is synced" },
	DISK_LOCK_OPTIONS(SCSI_FIELD(lock)),
	{ NULL },
};

static struct vu_dev *scsi_create(void)
{
	struct scsi *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->req_queues = 1;
	s->target.luns = s->luns;
	disk_lock_init(&s->lock);
	return &s->dev;
}

static void scsi_complete(void *opaque, void *op, int result);
static void scsi_batch_end(void *opaque);

static void default_config(struct scsi *s)
{
	s->config = (struct scsi_config){
		.num_queues = s->req_queues,
		.seg_max = SCSI_SEG_MAX,
		.max_sectors = SCSI_MAX_XFER_BYTES / 512,
		.cmd_per_lun = SLOTS_PER_QUEUE,
		.event_info_size = 16,
		.sense_size = SENSE_SIZE,
		.cdb_size = CDB_SIZE,
		.max_target = 0,
		.max_lun = s->target.nluns - 1,
	};
	for (unsigned i = 0; i < s->target.nluns; i++)
		s->luns[i].wce = !s->writethrough;
}

static int scsi_init(struct vu_dev *dev, struct vu_loop *loop)
{
	struct scsi *s = (struct scsi *)dev;

	if (!s->target.nluns) {
		vu_err("--lun is required");
		return -1;
	}
	for (unsigned i = 0; i < s->target.nluns; i++) {
		struct scsi_lun *l = &s->luns[i];
		struct stat st;
		if (disk_lock_open(&s->lock, &l->img, l->path, l->read_only, s->direct, l->block_size) < 0 ||
		    fstat(l->img.fd, &st) < 0)
			return -1;
		l->blocks = l->img.size / l->block_size;
		/* VPD 0x83 names the unit by its serial, else by the image's identity on the host. */
		if (l->serial[0])
			memcpy(l->ident, l->serial, sizeof(l->ident)); /* the same size, NUL-terminated */
		else
			snprintf(l->ident, sizeof(l->ident), "%llx-%llx", (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
	}
	dev->num_queues = Q_REQUEST + s->req_queues;
	s->target.writethrough = s->writethrough;
	s->target.io = blk_io_new(loop, SLOTS_PER_QUEUE * 2, scsi_complete, scsi_batch_end, s);
	if (!s->target.io)
		return -1;
	for (unsigned i = Q_REQUEST; i < dev->num_queues; i++) {
		s->queues[i].io = s->target.io;
		if (disk_lock_queue_init(&s->lock, &s->locks[i], dev, loop) < 0)
			return -1;
	}
	s->ctl_req.iov = s->ctl_iov;
	s->ctl_req.max_iov = CTL_MAX_IOV;
	default_config(s);
	return 0;
}

static void scsi_destroy(struct vu_dev *dev)
{
	struct scsi *s = (struct scsi *)dev;

	blk_io_free(s->target.io);
	for (unsigned i = 0; i < Q_REQUEST + MAX_QUEUES; i++)
		disk_lock_queue_free(&s->locks[i]);
	disk_lock_destroy(&s->lock);
	for (unsigned i = 0; i < s->target.nluns; i++) {
		blk_image_close(&s->luns[i].img);
		free(s->luns[i].spec);
	}
	for (unsigned i = 0; i < Q_REQUEST + MAX_QUEUES; i++)
		disk_queue_free(&s->queues[i]);
	free(s);
}

/*
 * The LUN field: 1, the target, then the LUN in single-level format (peripheral
 * or flat addressing). Returns false for another target; *lun is ~0u when the
 * field names no LUN we could have.
 */
static bool address(const uint8_t f[8], unsigned *lun)
{
	if (f[0] != 1 || f[1] != 0)
		return false;
	*lun = ~0u;
	if (f[4] | f[5] | f[6] | f[7])
		return true;
	if ((f[2] >> 6) == 0 && (f[2] & 0x3f) == 0)
		*lun = f[3];
	else if ((f[2] >> 6) == 1)
		*lun = (f[2] & 0x3fu) << 8 | f[3];
	return true;
}

/* Writes the response header and sense data, then completes the request. */
static void finish(struct scsi *s, struct slot *sl)
{
	struct scsi_cmd *c = &sl->cmd;
	uint8_t resp[RESP_HDR + SENSE_MAX] = { 0 };
	uint32_t resp_size = RESP_HDR + sl->sense_size;

	if (c->overrun && sl->response == S_OK)
		sl->response = S_OVERRUN;
	if (sl->response != S_OK)
		c->in_done = c->out_done = 0;
	uint32_t sense_len = c->sense_len < sl->sense_size ? c->sense_len : sl->sense_size;
	uint64_t resid = c->in_len ? c->in_len - c->in_done : c->out_len - c->out_done;
	uint32_t le32;

	le32 = htole32(sense_len);
	memcpy(resp, &le32, 4);
	le32 = htole32(resid > UINT32_MAX ? UINT32_MAX : (uint32_t)resid);
	memcpy(resp + 4, &le32, 4);
	resp[10] = sl->response == S_OK ? c->status : 0;
	resp[11] = sl->response;
	memcpy(resp + RESP_HDR, c->sense, sense_len);
	vu_iov_from_buf(sl->base.req.iov + sl->base.req.out, sl->base.req.in, 0, resp, resp_size);
	sl->active = false;
	disk_queue_complete(sl->q, &sl->base, resp_size + (uint32_t)c->in_done);
}

/*
 * Decodes a command request and starts it. True when it is complete already.
 * The response's room was checked when it was popped.
 */
static bool start(struct scsi *s, struct slot *sl)
{
	struct vu_req *req = &sl->base.req;
	struct scsi_cmd *c = &sl->cmd;
	uint32_t cdb_size = s->config.cdb_size;
	uint32_t req_size = REQ_HDR + cdb_size, resp_size = RESP_HDR + sl->sense_size;
	uint64_t out_total = vu_iov_size(req->iov, req->out);
	uint8_t hdr[REQ_HDR + sizeof(c->cdb)] = { 0 };
	unsigned lun;

	memset(c, 0, offsetof(struct scsi_cmd, io));
	sl->response = S_OK;
	if (out_total < req_size) {
		sl->response = S_FAILURE; /* a request header cut short */
		return true;
	}
	vu_iov_to_buf(req->iov, req->out, 0, hdr, REQ_HDR + (cdb_size < sizeof(c->cdb) ? cdb_size : sizeof(c->cdb)));
	memcpy(&sl->tag, hdr + 8, 8);
	sl->tag = le64toh(sl->tag);
	if (!address(hdr, &lun)) {
		sl->response = S_BAD_TARGET;
		return true;
	}
	memcpy(c->cdb, hdr + REQ_HDR, sizeof(c->cdb));
	c->lun_id = lun;
	c->lun = lun < s->target.nluns ? &s->luns[lun] : NULL;
	/* Each part is a slice of what was popped: no more segments than that. */
	int nout = vu_iov_slice(req->iov, req->out, req_size, out_total - req_size, sl->out, SCSI_MAX_IOV);
	int nin = vu_iov_slice(req->iov + req->out, req->in, resp_size, req->in_bytes - resp_size, sl->in,
			       SCSI_MAX_IOV);
	if (nout < 0 || nin < 0) {
		sl->response = S_FAILURE;
		return true;
	}
	c->out = sl->out;
	c->nout = (unsigned)nout;
	c->out_len = out_total - req_size;
	c->in = sl->in;
	c->nin = (unsigned)nin;
	c->in_len = req->in_bytes - resp_size;
	return scsi_cmd_start(&s->target, c);
}

static void scsi_complete(void *opaque, void *op, int result)
{
	struct scsi *s = opaque;
	struct slot *sl = (struct slot *)((char *)op - offsetof(struct slot, cmd));

	if (scsi_cmd_done(&s->target, &sl->cmd, result))
		finish(s, sl);
}

static void scsi_kick(struct vu_dev *dev, struct vu_vring *vq);

/* Publishes a batch of completions per queue, then refills queues that ran out of slots. */
static void scsi_batch_end(void *opaque)
{
	struct scsi *s = opaque;

	blk_io_submit(s->target.io); /* what completions queued (WRITE SAME's next part) */
	for (unsigned i = Q_REQUEST; i < s->dev.num_queues; i++) {
		struct disk_queue *q = &s->queues[i];
		disk_queue_publish(q);
		if (!s->draining && disk_queue_refill(q))
			scsi_kick(&s->dev, q->vq);
	}
}

/* Waits until every command in flight has completed (a TMF's promise). */
static void drain_all(struct scsi *s)
{
	s->draining = true;
	blk_io_submit(s->target.io);
	for (unsigned i = Q_REQUEST; i < s->dev.num_queues; i++)
		while (s->queues[i].busy) /* every queue's I/O goes to the one engine */
			blk_io_wait(s->target.io);
	s->draining = false;
	for (unsigned i = Q_REQUEST; i < s->dev.num_queues; i++)
		if (disk_queue_refill(&s->queues[i]))
			scsi_kick(&s->dev, s->queues[i].vq);
}

/* Whether a command of this LUN (and this tag, unless any) is in flight. */
static bool in_flight(struct scsi *s, unsigned lun, bool any, uint64_t tag)
{
	for (unsigned i = Q_REQUEST; i < s->dev.num_queues; i++) {
		struct disk_queue *q = &s->queues[i];
		for (unsigned j = 0; q->busy && j < q->nslots; j++) {
			struct slot *sl = (struct slot *)disk_queue_slot(q, j);
			if (sl->active && sl->cmd.lun_id == lun && (any || sl->tag == tag))
				return true;
		}
	}
	return false;
}

/*
 * Task management. Commands are not cancelled mid-I/O: the ones a TMF concerns are
 * waited for, so they have completed when it answers, as virtio-scsi requires.
 */
static uint8_t tmf(struct scsi *s, uint32_t subtype, const uint8_t lun_field[8], uint64_t tag)
{
	unsigned lun;

	if (!address(lun_field, &lun))
		return S_BAD_TARGET;
	if (subtype != TMF_I_T_NEXUS_RESET && lun >= s->target.nluns)
		return S_INCORRECT_LUN;
	switch (subtype) {
	case TMF_ABORT_TASK:
	case TMF_ABORT_TASK_SET:
	case TMF_CLEAR_TASK_SET:
	case TMF_I_T_NEXUS_RESET:
	case TMF_LOGICAL_UNIT_RESET:
		drain_all(s);
		return S_OK; /* FUNCTION COMPLETE */
	case TMF_QUERY_TASK:
	case TMF_QUERY_TASK_SET:
		return in_flight(s, lun, subtype == TMF_QUERY_TASK_SET, tag) ? S_FUNCTION_SUCCEEDED : S_OK;
	default: /* CLEAR ACA (we never enter ACA) and what we do not know */
		return S_FUNCTION_REJECTED;
	}
}

/* One control request; the bytes written, or -1 when the ring is failed for it. */
static int control_one(struct scsi *s, struct vu_vring *vq, const struct vu_req *req)
{
	size_t out = vu_iov_size(req->iov, req->out);
	const struct iovec *in = req->iov + req->out;
	uint8_t buf[24];
	uint32_t type;

	if (vu_iov_to_buf(req->iov, req->out, 0, &type, 4) != 4) {
		vu_vring_fail(vq, "control request without a type");
		return -1;
	}
	switch (le32toh(type)) {
	case T_TMF: { /* type, subtype, lun[8], id; response: one byte */
		if (out < 24 || req->in_bytes < 1) {
			vu_vring_fail(vq, "task management request too short");
			return -1;
		}
		vu_iov_to_buf(req->iov, req->out, 0, buf, 24);
		uint32_t subtype;
		uint64_t tag;
		memcpy(&subtype, buf + 4, 4);
		memcpy(&tag, buf + 16, 8);
		uint8_t response = tmf(s, le32toh(subtype), buf + 8, le64toh(tag));
		return (int)vu_iov_from_buf(in, req->in, 0, &response, 1);
	}
	case T_AN_QUERY:
	case T_AN_SUBSCRIBE: { /* type, lun[8], event_requested; response: event_actual, response */
		uint8_t resp[5] = { 0 };  /* no asynchronous events are supported: event_actual 0 */
		unsigned lun;
		if (out < 16 || req->in_bytes < 5) {
			vu_vring_fail(vq, "asynchronous notification request too short");
			return -1;
		}
		vu_iov_to_buf(req->iov, req->out, 0, buf, 16);
		resp[4] = !address(buf + 4, &lun) ? S_BAD_TARGET : lun >= s->target.nluns ? S_INCORRECT_LUN : S_OK;
		return (int)vu_iov_from_buf(in, req->in, 0, resp, sizeof(resp));
	}
	default:
		vu_vring_fail(vq, "unknown control request type");
		return -1;
	}
}

static void control(struct scsi *s, struct vu_vring *vq)
{
	do {
		vu_vring_kicks(vq, false);
		while (vu_vring_pop(vq, &s->ctl_req) > 0) {
			if (s->ctl_req.truncated) {
				vu_vring_fail(vq, "control request with too many segments");
				break;
			}
			int written = control_one(s, vq, &s->ctl_req);
			if (written < 0)
				break;
			/* The control queue's completions; commands' are disk_queue_complete's. */
			vu_vring_push(vq, &s->ctl_req, (uint32_t)written);
		}
		vu_vring_flush(vq);
	} while (!vq->broken && vu_vring_kicks(vq, true));
}

/* A command popped into a slot (disk_queue_kick): checked, then started. */
static enum disk_start take(void *opaque, struct disk_queue *q, struct disk_slot *ds)
{
	struct scsi *s = opaque;
	struct slot *sl = (struct slot *)ds;

	sl->sense_size = s->config.sense_size;
	if (ds->req.truncated || ds->req.in_bytes < RESP_HDR + sl->sense_size) {
		vu_vring_fail(q->vq, ds->req.truncated ? "command request with more segments than seg_max" :
							"command request without room for its response");
		return DISK_BROKEN;
	}
	sl->q = q;
	sl->active = true;
	if (!start(s, sl))
		return DISK_QUEUED;
	finish(s, sl);
	return DISK_DONE;
}

static void scsi_kick(struct vu_dev *dev, struct vu_vring *vq)
{
	struct scsi *s = (struct scsi *)dev;
	struct disk_queue *q = &s->queues[vq->index];

	if (vq->index == Q_CONTROL)
		return control(s, vq);
	if (vq->index == Q_EVENT)
		return; /* no events are offered: the driver's buffers stay on the ring */
	q->vq = vq;
	if (!disk_lock_kick(&s->locks[vq->index], vq))
		return;
	if (!disk_queue_slots(q, SLOTS_PER_QUEUE, sizeof(struct slot), offsetof(struct slot, iov), SCSI_MAX_IOV)) {
		vu_vring_fail(vq, "out of memory for request slots");
		return;
	}
	disk_queue_kick(q, take, s);
}

static void scsi_queue_drain(struct vu_dev *dev, struct vu_vring *vq)
{
	if (vq->index >= Q_REQUEST) /* the others hold nothing across turns */
		disk_queue_drain(&((struct scsi *)dev)->queues[vq->index]);
}

/* The front-end stopped a ring, rings paused: the images' lock may go (dev/disk-lock.c). */
static void scsi_queue_stop(struct vu_dev *dev, struct vu_vring *vq)
{
	if (vq->index >= Q_REQUEST) /* only request queues take the lock */
		disk_lock_stop(&((struct scsi *)dev)->locks[vq->index]);
}

static int scsi_get_config(struct vu_dev *dev, uint8_t *buf, uint32_t offset, uint32_t len)
{
	memcpy(buf, (uint8_t *)&((struct scsi *)dev)->config + offset, len);
	return 0;
}

/* The driver may set sense_size and cdb_size (virtio 1.2, 5.6.4); nothing else. */
static int scsi_set_config(struct vu_dev *dev, const uint8_t *buf, uint32_t offset, uint32_t len)
{
	struct scsi *s = (struct scsi *)dev;
	uint32_t v;

	if (len != 4 || (offset != offsetof(struct scsi_config, sense_size) &&
			 offset != offsetof(struct scsi_config, cdb_size)))
		return -1;
	memcpy(&v, buf, 4);
	v = le32toh(v);
	if (offset == offsetof(struct scsi_config, sense_size)) {
		if (v > SENSE_MAX)
			return -1;
		s->config.sense_size = v;
	} else {
		if (v < 6 || v > 255)
			return -1;
		s->config.cdb_size = v;
	}
	return 0;
}

/* A new driver starts with the defaults: header layout and write caches. */
static void scsi_reset(struct vu_dev *dev)
{
	default_config((struct scsi *)dev);
}

/*
 * The state QEMU does not carry across a migration: each unit's write cache, which
 * the guest may have switched with MODE SELECT (QEMU neither sees nor saves it).
 */
struct scsi_state {
	char magic[4];          /* "VSCS" */
	uint8_t version;        /* 1 */
	uint8_t nluns;          /* the destination must have as many */
	uint8_t reserved[2];
	uint64_t wce;           /* bit i: LUN i's write cache is on */
};

static int scsi_state_save(struct vu_dev *dev, void **buf, size_t *len)
{
	struct scsi *s = (struct scsi *)dev;
	struct scsi_state *st = calloc(1, sizeof(*st));

	if (!st)
		return -1;
	memcpy(st->magic, "VSCS", 4);
	st->version = 1;
	st->nluns = (uint8_t)s->target.nluns;
	for (unsigned i = 0; i < s->target.nluns; i++)
		st->wce |= (uint64_t)s->luns[i].wce << i;
	st->wce = htole64(st->wce);
	*buf = st;
	*len = sizeof(*st);
	return 0;
}

static int scsi_state_load(struct vu_dev *dev, const void *buf, size_t len)
{
	struct scsi *s = (struct scsi *)dev;
	struct scsi_state st;

	if (len != sizeof(st))
		return -1;
	memcpy(&st, buf, sizeof(st));
	uint64_t wce = le64toh(st.wce);
	if (memcmp(st.magic, "VSCS", 4) || st.version != 1 || st.nluns != s->target.nluns ||
	    (st.nluns < 64 && wce >> st.nluns))
		return -1;
	for (unsigned i = 0; i < s->target.nluns; i++)
		s->luns[i].wce = wce >> i & 1;
	return 0;
}

/*
 * Confined: io_uring (set up in init, its operations restricted, dev/blk-io.c), a
 * block device's discard and zeroing ioctls, GET LBA STATUS's look for holes, and
 * the images' lock taken and released as devices start and stop (--lock=start).
 */
static const struct vu_syscall scsi_syscalls[] = {
	VU_SYSCALL(io_uring_enter),
	VU_SYSCALL_IF(ioctl, 1, BLKDISCARD), VU_SYSCALL_IF(ioctl, 1, BLKZEROOUT),
	VU_SYSCALL_IF(lseek, 2, SEEK_DATA), VU_SYSCALL_IF(lseek, 2, SEEK_HOLE),
	DISK_LOCK_SYSCALLS,
	VU_SYSCALL_END,
};

const struct vu_device_type vu_dev_scsi = {
	.name = "scsi",
	.schema_type = "scsi",
	.summary = "virtio-scsi controller whose LUNs are raw images or block devices (io_uring)",
	.qemu_args = "-device vhost-user-scsi-pci,chardev=vu0",
	.virtio_id = 8,
	.num_queues = Q_REQUEST + 1,
	.features = 1ull << F_CHANGE,
	.config_size = sizeof(struct scsi_config),
	.inflight = true,
	.options = scsi_options,
	.create = scsi_create,
	.init = scsi_init,
	.kick = scsi_kick,
	.queue_drain = scsi_queue_drain,
	.queue_stop = scsi_queue_stop,
	.get_config = scsi_get_config,
	.set_config = scsi_set_config,
	.reset = scsi_reset,
	.state_save = scsi_state_save,
	.state_load = scsi_state_load,
	.destroy = scsi_destroy,
	.syscalls = scsi_syscalls,
};
