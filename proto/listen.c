/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/listen.h"
#include "proto/log.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -1;
	strcpy(sa->sun_path, path);
	return 0;
}

/* True if something accepts connections on path right now. */
static bool path_is_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;

	if (fd >= 0)
		close(fd);
	return live;
}

/*
 * The listeners vu_listen_path made and nobody closed yet: their socket files are
 * handed to the sandbox's helper, which removes them at the end (a confined process
 * cannot). Listener structs stay where they are while listening.
 */
#define MAX_LISTENERS 128
static struct vu_listener *made[MAX_LISTENERS];
static unsigned nmade;

unsigned vu_listen_paths(const char **paths, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < nmade && n < max; i++)
		if (made[i]->path)
			paths[n++] = made[i]->path;
	return n;
}

void vu_listen_paths_handed_over(void)
{
	for (unsigned i = 0; i < nmade; i++) {
		free(made[i]->path);
		made[i]->path = NULL;
	}
}

static void forget(struct vu_listener *l)
{
	for (unsigned i = 0; i < nmade; i++)
		if (made[i] == l) {
			made[i] = made[--nmade];
			return;
		}
}

int vu_listen_path(struct vu_listener *l, const char *path, mode_t mode)
{
	struct sockaddr_un sa;
	struct stat st;

	*l = (struct vu_listener){ .fd = -1, .conn = -1 };
	if (fill_addr(&sa, path) < 0) {
		vu_err("socket path too long: %s", path);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			vu_err("%s exists and is not a socket", path);
			return -1;
		}
		if (path_is_live(&sa)) {
			vu_err("%s: another back-end is listening there", path);
			return -1;
		}
		unlink(path); /* stale: nobody listens any more */
	}
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		vu_err("socket: %s", strerror(errno));
		return -1;
	}
	/* Create the file with no access for anyone else, then open it up as asked. */
	mode_t old = umask(0177);
	int r = bind(l->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		vu_err("cannot bind %s: %s", path, strerror(errno));
		vu_listen_close(l);
		return -1;
	}
	l->path = strdup(path);
	if (chmod(path, mode) < 0 || listen(l->fd, 16) < 0) {
		vu_err("cannot listen on %s: %s", path, strerror(errno));
		vu_listen_close(l);
		return -1;
	}
	if (nmade < MAX_LISTENERS)
		made[nmade++] = l;
	return 0;
}

int vu_listen_fd(struct vu_listener *l, int fd)
{
	int acceptconn = 0;
	socklen_t len = sizeof(acceptconn);

	*l = (struct vu_listener){ .fd = -1, .conn = -1 };
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptconn, &len) < 0) {
		vu_err("fd %d is not a socket: %s", fd, strerror(errno));
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if (acceptconn)
		l->fd = fd;
	else
		l->conn = fd;
	return 0;
}

int vu_listen_systemd(struct vu_listener *l)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");

	if (!pid || !fds)
		return 0;
	if (strtol(pid, NULL, 10) != getpid())
		return 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (strtol(fds, NULL, 10) != 1) {
		vu_err("socket activation passed %s sockets; exactly 1 is served", fds);
		return -1;
	}
	return vu_listen_fd(l, 3) < 0 ? -1 : 1;
}

int vu_listen_accept(struct vu_listener *l)
{
	int fd;

	if (l->conn >= 0) {
		fd = l->conn;
		l->conn = -1;
		return fd;
	}
	do
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		vu_warn("accept: %s", strerror(errno));
	return fd;
}

void vu_listen_close(struct vu_listener *l)
{
	forget(l);
	if (l->fd >= 0)
		close(l->fd);
	if (l->conn >= 0)
		close(l->conn);
	if (l->path) {
		unlink(l->path);
		free(l->path);
	}
	*l = (struct vu_listener){ .fd = -1, .conn = -1 };
}

static int notify_fd = -1;

void vu_notify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;

	if (notify_fd >= 0 || !path || !*path || fill_addr(&sa, path) < 0)
		return;
	socklen_t len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd >= 0 && connect(notify_fd, (struct sockaddr *)&sa, len) < 0) {
		vu_warn("cannot reach systemd's notify socket: %s", strerror(errno));
		close(notify_fd);
		notify_fd = -1;
	}
}

void vu_notify_ready(void)
{
	vu_notify_open();
	if (notify_fd < 0)
		return;
	if (send(notify_fd, "READY=1", 7, MSG_NOSIGNAL) < 0)
		vu_warn("cannot notify systemd: %s", strerror(errno));
	close(notify_fd);
	notify_fd = -1;
}
