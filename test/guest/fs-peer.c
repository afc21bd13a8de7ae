/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest side of test/guest/t-fs.sh, for what busybox cannot do on a virtiofs mount:
 *   fs-peer xattr FILE   set, get, list and remove user.vhostbox
 *   fs-peer lock FILE    POSIX locks between two processes: a conflict is seen,
 *                        F_SETLKW waits until the holder unlocks; then flock
 *   fs-peer mmap FILE    a shared writable mapping, msync, read back with read(2)
 * Each prints "OK WHAT [details]" or "BAD WHAT: why" and exits 0 or 1.
 *   fs-peer as ID PROG ARGS...   runs PROG as uid and gid ID, no supplementary group
 *                                (busybox's setpriv cannot change ids)
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static int bad(const char *what, const char *why)
{
	printf("BAD %s: %s (%s)\n", what, why, strerror(errno));
	return 1;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int xattr(const char *path)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	if (fd < 0)
		return bad("xattr", "create");
	close(fd);
	if (setxattr(path, "user.vhostbox", "value-1", 7, 0) < 0)
		return bad("xattr", "setxattr");
	n = getxattr(path, "user.vhostbox", buf, sizeof(buf));
	if (n != 7 || memcmp(buf, "value-1", 7))
		return bad("xattr", "getxattr gave something else");
	n = listxattr(path, buf, sizeof(buf));
	int found = 0;
	for (ssize_t i = 0; n > 0 && i < n; i += (ssize_t)strlen(buf + i) + 1)
		found |= !strcmp(buf + i, "user.vhostbox");
	if (!found)
		return bad("xattr", "listxattr lacks user.vhostbox");
	if (setxattr(path, "user.vhostbox", "x", 1, XATTR_CREATE) == 0 || errno != EEXIST)
		return bad("xattr", "XATTR_CREATE over an existing one did not fail with EEXIST");
	if (removexattr(path, "user.vhostbox") < 0)
		return bad("xattr", "removexattr");
	if (getxattr(path, "user.vhostbox", buf, sizeof(buf)) >= 0 || errno != ENODATA)
		return bad("xattr", "still there after removexattr");
	/* Leave one for the host to see. */
	if (setxattr(path, "user.host", "seen", 4, 0) < 0)
		return bad("xattr", "setxattr user.host");
	printf("OK xattr\n");
	return 0;
}

static int setlk(int fd, short type, int cmd)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100 };
	return fcntl(fd, cmd, &fl);
}

static int lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644), p[2];

	if (fd < 0 || pipe(p) < 0)
		return bad("lock", "open");
	if (setlk(fd, F_WRLCK, F_SETLK) < 0)
		return bad("lock", "F_SETLK in the holder");
	pid_t child = fork();
	if (child == 0) {
		int cfd = open(path, O_RDWR);
		char c = 'n';
		/* A conflict: refused at once. */
		if (setlk(cfd, F_WRLCK, F_SETLK) == 0 || (errno != EAGAIN && errno != EACCES))
			c = 'c';
		else {
			struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_len = 100 };
			if (fcntl(cfd, F_GETLK, &fl) < 0 || fl.l_type != F_WRLCK)
				c = 'g';
		}
		if (write(p[1], &c, 1) != 1)
			_exit(3);
		if (c != 'n')
			_exit(2);
		double t = now();
		if (setlk(cfd, F_WRLCK, F_SETLKW) < 0)
			_exit(4);
		printf("child waited %.2f s\n", now() - t);
		_exit(now() - t > 0.5 ? 0 : 5);
	}
	char c;
	if (read(p[0], &c, 1) != 1 || c != 'n') {
		waitpid(child, NULL, 0);
		errno = 0;
		return bad("lock", c == 'c' ? "a conflicting F_SETLK succeeded" : "F_GETLK did not show the lock");
	}
	sleep(1);
	setlk(fd, F_UNLCK, F_SETLK);
	int st;
	waitpid(child, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		errno = 0;
		return bad("lock", "the waiting F_SETLKW did not get the lock after the unlock (or did not wait)");
	}
	/* flock: exclusive against another open. */
	int a = open(path, O_RDWR), b = open(path, O_RDWR);
	if (flock(a, LOCK_EX | LOCK_NB) < 0)
		return bad("lock", "flock LOCK_EX");
	if (flock(b, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		return bad("lock", "a second flock LOCK_EX succeeded");
	flock(a, LOCK_UN);
	if (flock(b, LOCK_EX | LOCK_NB) < 0)
		return bad("lock", "flock after LOCK_UN");
	printf("OK lock\n");
	return 0;
}

static int map(const char *path)
{
	const size_t size = 1 << 20;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
		return bad("mmap", "open/ftruncate");
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return bad("mmap", "mmap");
	for (size_t i = 0; i < size; i++)
		m[i] = (unsigned char)(i * 7 + 3);
	if (msync(m, size, MS_SYNC) < 0)
		return bad("mmap", "msync");
	munmap(m, size);
	close(fd);
	unsigned char *back = malloc(size);
	fd = open(path, O_RDONLY);
	if (!back || fd < 0 || read(fd, back, size) != (ssize_t)size)
		return bad("mmap", "read back");
	for (size_t i = 0; i < size; i++)
		if (back[i] != (unsigned char)(i * 7 + 3)) {
			errno = 0;
			return bad("mmap", "the bytes read back differ from those written through the mapping");
		}
	printf("OK mmap\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 3 && !strcmp(argv[1], "xattr"))
		return xattr(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "lock"))
		return lock(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "mmap"))
		return map(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "as")) {
		unsigned id = (unsigned)atoi(argv[2]);
		if (setgroups(0, NULL) < 0 || setresgid(id, id, id) < 0 || setresuid(id, id, id) < 0)
			return bad("as", "cannot change ids");
		execv(argv[3], argv + 3);
		return bad("as", argv[3]);
	}
	fprintf(stderr, "usage: fs-peer xattr|lock|mmap FILE, or fs-peer as ID PROG ARGS...\n");
	return 2;
}
