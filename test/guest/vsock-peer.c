/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vsock-peer: one end of a stream, for the vsock guest test and the demo. Built
 * static by them (gcc -static) to run in the busybox guest with AF_VSOCK, and used
 * on the host too with unix sockets, so both ends count and checksum the same way.
 *
 *   vsock-peer MODE ADDR [ARG...]
 *
 * ADDR to connect to: vsock:CID:PORT, unix:PATH, or uds:PATH:PORT (a hybrid vsock's
 * host side: connect to PATH, say "CONNECT PORT", expect "OK <port>").
 * ADDR to listen on: vsock:PORT or unix:PATH.
 *
 * Modes (the result is one line on stdout; progress lines "PEER: ..." on stderr):
 *   send ADDR BYTES SEED        send BYTES of stream SEED, shut the write side, wait for EOF
 *   recv ADDR                   read to EOF
 *   serve-recv LADDR [PAUSE_AT PAUSE_MS]  accept one, read to EOF (sleeping PAUSE_MS
 *                               once PAUSE_AT bytes came: a reader that stops)
 *   serve-send LADDR BYTES SEED accept one, send, close
 *   serve-echo LADDR N          accept N connections, echo each until its EOF
 *   serve-close LADDR BYTES     accept one, read BYTES, close (the reader goes mid-stream)
 *   many ADDR N BYTES           N connections at once, each sends BYTES (its own stream)
 *                               and checks that the echo is the same
 *   refused ADDR                expect the connection to fail
 *   until-error ADDR            send until a write fails
 *   hold ADDR                   connect, say so, read until EOF or error
 *   ask ADDR TEXT               send TEXT and a newline, print the line that comes back
 *   serve-reply LADDR TEXT      accept one, print the line that comes, answer TEXT
 *
 * Sums are over the byte stream, whatever the pieces it came in.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK 65536

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "vsock-peer: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (%s)\n", strerror(errno));
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the stream and its sum ---- */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Bytes [off, off + len) of stream seed: byte o is byte o % 8 of word o / 8. */
static void stream_fill(uint8_t *p, uint64_t off, size_t len, uint64_t seed)
{
	size_t i = 0;

	for (; i < len && (off + i) % 8; i++)
		p[i] = (uint8_t)(splitmix(seed << 40 ^ ((off + i) >> 3)) >> (8 * ((off + i) % 8)));
	for (; i < len; i += 8) {
		uint64_t w = splitmix(seed << 40 ^ ((off + i) >> 3));
		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

struct sum {
	uint64_t h, bytes;
	uint8_t carry[8];
	unsigned ncarry;
};

static void mix(struct sum *s, uint64_t w)
{
	s->h = (s->h ^ w) * 0x100000001b3ull;
	s->h ^= s->h >> 29;
}

static void sum_add(struct sum *s, const uint8_t *p, size_t len)
{
	s->bytes += len;
	while (len && s->ncarry) {
		s->carry[s->ncarry++] = *p++;
		len--;
		if (s->ncarry == 8) {
			uint64_t w;
			memcpy(&w, s->carry, 8);
			mix(s, w);
			s->ncarry = 0;
		}
	}
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		mix(s, w);
	}
	memcpy(s->carry, p, len);
	s->ncarry = (unsigned)len;
}

static uint64_t sum_end(struct sum *s)
{
	uint64_t w = 0;
	memcpy(&w, s->carry, s->ncarry);
	mix(s, w ^ s->bytes);
	return s->h;
}

/* ---- addresses ---- */

static int open_addr(const char *addr, bool listening)
{
	int fd;

	if (!strncmp(addr, "vsock:", 6)) {
		struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY };
		unsigned cid, port;
		if (listening ? sscanf(addr + 6, "%u", &port) != 1 : sscanf(addr + 6, "%u:%u", &cid, &port) != 2)
			die("bad address %s", addr);
		if (!listening)
			sa.svm_cid = cid;
		sa.svm_port = port;
		fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket(AF_VSOCK) for %s", addr);
		if (listening ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0
			      : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return -1;
		return fd;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[sizeof(sa.sun_path)];
	unsigned port = 0;
	bool hybrid = !strncmp(addr, "uds:", 4);
	if (hybrid) {
		const char *colon = strrchr(addr + 4, ':');
		if (!colon || sscanf(colon + 1, "%u", &port) != 1 || (size_t)(colon - addr - 4) >= sizeof(path))
			die("bad address %s", addr);
		memcpy(path, addr + 4, colon - addr - 4);
		path[colon - addr - 4] = 0;
	} else if (!strncmp(addr, "unix:", 5) && strlen(addr + 5) < sizeof(path)) {
		strcpy(path, addr + 5);
	} else {
		die("bad address %s", addr);
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listening) {
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 256) < 0)
			die("cannot listen on %s", path);
		return fd;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (hybrid) {
		char line[64];
		int n = snprintf(line, sizeof(line), "CONNECT %u\n", port), got = 0;
		if (write(fd, line, n) != n)
			return -1;
		/* "OK <port>\n", a byte at a time: what follows it is the stream's. */
		while (got < (int)sizeof(line) - 1 && read(fd, line + got, 1) == 1 && line[got++] != '\n')
			;
		line[got] = 0;
		if (strncmp(line, "OK ", 3) || line[got - 1] != '\n') {
			errno = ECONNREFUSED;
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int connect_addr(const char *addr)
{
	int fd = open_addr(addr, false);
	if (fd < 0)
		die("cannot connect to %s", addr);
	return fd;
}

static int accept_one(int lfd)
{
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept%s", "");
	return fd;
}

static int listen_addr(const char *addr)
{
	int fd = open_addr(addr, true);
	if (fd < 0)
		die("cannot listen on %s", addr);
	fprintf(stderr, "PEER: listening\n");
	return fd;
}

/* ---- byte moving ---- */

static void write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("write%s", "");
		p += n;
		len -= n;
	}
}

static void send_stream(int fd, uint64_t bytes, uint64_t seed, struct sum *s)
{
	static uint8_t buf[CHUNK];

	for (uint64_t off = 0; off < bytes; off += CHUNK) {
		size_t n = bytes - off < CHUNK ? bytes - off : CHUNK;
		stream_fill(buf, off, n, seed);
		sum_add(s, buf, n);
		write_all(fd, buf, n);
	}
}

/* Reads to EOF into s; pauses pause_ms once pause_at bytes came. */
static void recv_stream(int fd, struct sum *s, uint64_t pause_at, int pause_ms)
{
	static uint8_t buf[CHUNK];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read%s", "");
		if (n == 0)
			return;
		bool before = s->bytes < pause_at;
		sum_add(s, buf, n);
		if (pause_ms && before && s->bytes >= pause_at) {
			fprintf(stderr, "PEER: pausing\n");
			usleep(pause_ms * 1000);
			fprintf(stderr, "PEER: reading again\n");
		}
	}
}

static void result(const char *what, struct sum *s, long long t0)
{
	uint64_t bytes = s->bytes;
	printf("%s %llu %016llx %lld\n", what, (unsigned long long)bytes, (unsigned long long)sum_end(s), now_ms() - t0);
}

/* ---- many connections at once, each echoed ---- */

struct echo {
	int fd;
	uint8_t buf[CHUNK];
	size_t len, off;
	bool eof;
};

static int serve_echo(const char *laddr, int n)
{
	int lfd = listen_addr(laddr);
	struct echo *e = calloc(n, sizeof(*e));
	struct pollfd *p = calloc(n, sizeof(*p));
	uint64_t total = 0;
	int done = 0;

	for (int i = 0; i < n; i++) {
		e[i].fd = accept_one(lfd);
		fcntl(e[i].fd, F_SETFL, O_NONBLOCK);
	}
	while (done < n) {
		for (int i = 0; i < n; i++) {
			p[i].fd = e[i].fd;
			p[i].events = e[i].len ? POLLOUT : e[i].eof ? 0 : POLLIN;
		}
		if (poll(p, n, -1) < 0 && errno != EINTR)
			die("poll%s", "");
		for (int i = 0; i < n; i++) {
			struct echo *c = &e[i];
			if (c->fd < 0 || !p[i].revents)
				continue;
			if (c->len) {
				ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
				if (w > 0 && (c->off += w) == c->len)
					c->len = c->off = 0;
				else if (w < 0 && errno != EAGAIN)
					die("echo write%s", "");
			} else {
				ssize_t r = read(c->fd, c->buf, sizeof(c->buf));
				if (r > 0) {
					c->len = r;
					total += r;
				} else if (r == 0) {
					c->eof = true;
				} else if (errno != EAGAIN) {
					die("echo read%s", "");
				}
			}
			if (c->eof && !c->len) {
				close(c->fd);
				c->fd = -1;
				p[i].fd = -1;
				done++;
			}
		}
	}
	printf("echoed %d %llu\n", n, (unsigned long long)total);
	return 0;
}

struct client {
	int fd;
	uint64_t sent;
	struct sum out, in;
	bool shut, eof;
};

static int many(const char *addr, int n, uint64_t bytes)
{
	struct client *c = calloc(n, sizeof(*c));
	struct pollfd *p = calloc(n, sizeof(*p));
	static uint8_t buf[CHUNK];
	int done = 0, bad = 0;
	long long t0 = now_ms();

	/* All connected before any byte moves: n connections at once. */
	for (int i = 0; i < n; i++) {
		c[i].fd = connect_addr(addr);
		fcntl(c[i].fd, F_SETFL, O_NONBLOCK);
	}
	fprintf(stderr, "PEER: %d connected\n", n);
	while (done < n) {
		for (int i = 0; i < n; i++) {
			p[i].fd = c[i].eof ? -1 : c[i].fd;
			p[i].events = POLLIN | (c[i].shut ? 0 : POLLOUT);
		}
		if (poll(p, n, 60000) <= 0)
			die("many: nothing moves%s", "");
		for (int i = 0; i < n; i++) {
			struct client *k = &c[i];
			if (!p[i].revents)
				continue;
			if (!k->shut && (p[i].revents & POLLOUT)) {
				uint64_t off = k->sent;
				size_t len = bytes - off < 4096 ? bytes - off : 4096;
				stream_fill(buf, off, len, 1000 + i);
				ssize_t w = send(k->fd, buf, len, MSG_NOSIGNAL);
				if (w > 0) {
					/* The unsent tail is made again next time from the same offset. */
					sum_add(&k->out, buf, w);
					k->sent += w;
				} else if (w < 0 && errno != EAGAIN) {
					die("many: write%s", "");
				}
				if (k->sent == bytes) {
					shutdown(k->fd, SHUT_WR);
					k->shut = true;
				}
			}
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = read(k->fd, buf, sizeof(buf));
				if (r > 0) {
					sum_add(&k->in, buf, r);
				} else if (r == 0 || errno != EAGAIN) {
					k->eof = true;
					done++;
					uint64_t a = sum_end(&k->out), b = sum_end(&k->in);
					if (r < 0 || a != b || k->in.bytes != bytes)
						bad++;
					close(k->fd);
				}
			}
		}
	}
	printf("many %d %s %llu %lld\n", n, bad ? "FAIL" : "ok", (unsigned long long)bytes * n, now_ms() - t0);
	return bad ? 1 : 0;
}

/* ---- the rest ---- */

static const char *errname(int e)
{
	switch (e) {
	case ECONNRESET: return "ECONNRESET";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EPIPE: return "EPIPE";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENOTCONN: return "ENOTCONN";
	case ENODEV: return "ENODEV";
	case ESHUTDOWN: return "ESHUTDOWN";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	struct sum s = { 0 };
	long long t0 = now_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3) {
		fprintf(stderr, "usage: vsock-peer MODE ADDR [ARG...] (see the source)\n");
		return 2;
	}
	const char *mode = argv[1], *addr = argv[2];
	if (!strcmp(mode, "send") && argc == 5) {
		int fd = connect_addr(addr);
		send_stream(fd, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), &s);
		shutdown(fd, SHUT_WR);
		char c;
		while (read(fd, &c, 1) > 0)
			;
		result("sent", &s, t0);
	} else if (!strcmp(mode, "recv")) {
		int fd = connect_addr(addr);
		recv_stream(fd, &s, 0, 0);
		result("received", &s, t0);
	} else if (!strcmp(mode, "serve-recv")) {
		int fd = accept_one(listen_addr(addr));
		t0 = now_ms();
		recv_stream(fd, &s, argc > 4 ? strtoull(argv[3], NULL, 0) : 0, argc > 4 ? atoi(argv[4]) : 0);
		result("received", &s, t0);
	} else if (!strcmp(mode, "serve-send") && argc == 5) {
		int fd = accept_one(listen_addr(addr));
		t0 = now_ms();
		send_stream(fd, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), &s);
		close(fd);
		result("sent", &s, t0);
	} else if (!strcmp(mode, "serve-echo") && argc == 4) {
		return serve_echo(addr, atoi(argv[3]));
	} else if (!strcmp(mode, "serve-close") && argc == 4) {
		int fd = accept_one(listen_addr(addr));
		static uint8_t buf[CHUNK];
		uint64_t want = strtoull(argv[3], NULL, 0);
		while (s.bytes < want) {
			ssize_t n = read(fd, buf, want - s.bytes < sizeof(buf) ? want - s.bytes : sizeof(buf));
			if (n <= 0)
				break;
			sum_add(&s, buf, n);
		}
		close(fd);
		printf("closed-after %llu\n", (unsigned long long)s.bytes);
	} else if (!strcmp(mode, "many") && argc == 5) {
		return many(addr, atoi(argv[3]), strtoull(argv[4], NULL, 0));
	} else if (!strcmp(mode, "refused")) {
		int fd = open_addr(addr, false);
		if (fd >= 0) {
			printf("connected\n");
			return 1;
		}
		printf("refused %s\n", errname(errno));
	} else if (!strcmp(mode, "until-error")) {
		int fd = connect_addr(addr);
		static uint8_t buf[CHUNK];
		for (uint64_t off = 0;; off += CHUNK) {
			stream_fill(buf, off, CHUNK, 9);
			ssize_t n = send(fd, buf, CHUNK, MSG_NOSIGNAL);
			if (n < 0) {
				printf("error %s after %llu\n", errname(errno), (unsigned long long)s.bytes);
				break;
			}
			s.bytes += n;
		}
	} else if (!strcmp(mode, "hold")) {
		int fd = connect_addr(addr);
		char c;
		fprintf(stderr, "PEER: holding\n");
		ssize_t n = read(fd, &c, 1);
		printf("hold-ended %s\n", n == 0 ? "eof" : n > 0 ? "data" : errname(errno));
	} else if (!strcmp(mode, "ask") && argc == 4) {
		int fd = connect_addr(addr);
		char line[256];
		int got = 0;
		dprintf(fd, "%s\n", argv[3]);
		while (got < (int)sizeof(line) - 1 && read(fd, line + got, 1) == 1 && line[got] != '\n')
			got++;
		line[got] = 0;
		printf("%s\n", line);
	} else if (!strcmp(mode, "serve-reply") && argc == 4) {
		int fd = accept_one(listen_addr(addr));
		char line[256];
		int got = 0;
		while (got < (int)sizeof(line) - 1 && read(fd, line + got, 1) == 1 && line[got] != '\n')
			got++;
		line[got] = 0;
		printf("%s\n", line);
		dprintf(fd, "%s\n", argv[3]);
		close(fd);
	} else {
		fprintf(stderr, "vsock-peer: bad mode or arguments (see the source)\n");
		return 2;
	}
	return 0;
}
