/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where connections come from: --socket-path (we create and listen), --fd
 * (a listening or an already connected socket), or systemd socket activation.
 */
#ifndef VU_LISTEN_H
#define VU_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

struct vu_listener {
	int fd;            /* listening socket, or -1 */
	int conn;          /* a connection handed to us ready-made, or -1 */
	char *path;        /* socket file we created and must unlink, or NULL */
};

/* Creates PATH (refusing one with a live listener, replacing a stale one). */
int vu_listen_path(struct vu_listener *l, const char *path, mode_t mode);
/* Uses fd: listening sockets are accepted on, anything else is the connection. */
int vu_listen_fd(struct vu_listener *l, int fd);
/* LISTEN_PID/LISTEN_FDS: 1 if activation applies and was used, 0 if not set, -1 on error. */
int vu_listen_systemd(struct vu_listener *l);
/* Accepts one connection (blocking is fine: called when the fd is readable). */
int vu_listen_accept(struct vu_listener *l);
void vu_listen_close(struct vu_listener *l);
/* The socket files of the listeners vu_listen_path made and not closed (at most max). */
unsigned vu_listen_paths(const char **paths, unsigned max);
/* Someone else removes those files now: closing the listeners leaves them alone. */
void vu_listen_paths_handed_over(void);

/*
 * Tells systemd (NOTIFY_SOCKET) that we are ready; quiet when not under systemd.
 * vu_notify_open() connects to it beforehand (confined, the path is out of reach).
 */
void vu_notify_open(void);
void vu_notify_ready(void);

#endif
