/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhostbox --discover TYPE [--feature F]... [--root DIR] [--timeout SECONDS]
 *
 * Picks a vhost-user back-end the way QEMU's docs/interop/vhost-user.json tells
 * management software to: list the *.json files of /usr/share/qemu/vhost-user,
 * /etc/qemu/vhost-user and $XDG_CONFIG_HOME/qemu/vhost-user (general to
 * specific), let a more specific file replace a less specific one of the same
 * name (an empty one hides it), sort by file name, and take the first file of
 * the wanted type whose binary's --print-capabilities lists every wanted
 * feature. Broken files are reported and skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "json/discover.h"

#define ME "vhostbox --discover"
#define EXIT_NO_MATCH 1
#define EXIT_USAGE 2

#define FILE_MAX (1u << 20)   /* a description file larger than this is not one */
#define CAPS_MAX (64u << 10)  /* nor is a capabilities answer */

static const char *const backend_types[] = {
	"9p", "balloon", "block", "caif", "console", "crypto", "gpu", "input",
	"net", "rng", "rpmsg", "rproc-serial", "scsi", "vsock", "fs", NULL
};

struct request {
	const char *type;
	const char **features;
	int nfeatures;
	const char *root;
	int timeout_ms;
};

/* One *.json file found in one of the directories; rank 0 is the most general. */
struct entry {
	char *name;
	char *path;
	int rank;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static bool is_backend_type(const char *s)
{
	for (const char *const *t = backend_types; *t; t++)
		if (!strcmp(s, *t))
			return true;
	return false;
}

static bool has_json_suffix(const char *name)
{
	size_t len = strlen(name);

	return len > 5 && !strcmp(name + len - 5, ".json");
}

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size);
	if (!p) {
		fprintf(stderr, ME ": out of memory\n");
		exit(EXIT_NO_MATCH);
	}
	return p;
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = xrealloc(NULL, la + lb + lc + 1);

	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	return s;
}

/* Adds the *.json names of dir; a missing directory simply has none. */
static void scan_dir(struct entries *list, const char *dir, int rank)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		if (errno != ENOENT && errno != ENOTDIR)
			fprintf(stderr, ME ": %s: %s\n", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		if (!has_json_suffix(de->d_name))
			continue;
		if (list->n == list->cap) {
			list->cap = list->cap ? 2 * list->cap : 16;
			list->v = xrealloc(list->v, list->cap * sizeof(*list->v));
		}
		list->v[list->n++] = (struct entry){
			.name = join(de->d_name, "", ""),
			.path = join(dir, "/", de->d_name),
			.rank = rank,
		};
	}
	closedir(d);
}

/* By name; for one name, the most specific directory first. */
static int entry_cmp(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	return c ? c : b->rank - a->rank;
}

/* Leaves one entry per name, the one that takes effect, sorted by name. */
static void resolve_overrides(struct entries *list)
{
	size_t kept = 0;

	qsort(list->v, list->n, sizeof(*list->v), entry_cmp);
	for (size_t i = 0; i < list->n; i++) {
		if (kept && !strcmp(list->v[kept - 1].name, list->v[i].name)) {
			free(list->v[i].name);
			free(list->v[i].path);
			continue;
		}
		list->v[kept++] = list->v[i];
	}
	list->n = kept;
}

static void free_entries(struct entries *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->v[i].name);
		free(list->v[i].path);
	}
	free(list->v);
}

/* $XDG_CONFIG_HOME, or ~/.config when unset, empty or relative (the XDG rules). */
static char *config_home(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/')
		return join(xdg, "", "");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	return home ? join(home, "/.config", "") : NULL;
}

static void list_files(struct entries *list, const char *root)
{
	char *config = config_home();
	const char *dirs[] = { "/usr/share/qemu/vhost-user", "/etc/qemu/vhost-user", NULL };
	int rank = 0;

	for (; dirs[rank]; rank++) {
		char *dir = join(root, dirs[rank], "");
		scan_dir(list, dir, rank);
		free(dir);
	}
	if (config) {
		char *dir = join(root, config, "/qemu/vhost-user");
		scan_dir(list, dir, rank);
		free(dir);
		free(config);
	}
	resolve_overrides(list);
}

static int ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms > 1000000 ? 1000000 : (int)ms;
}

/*
 * Reads fd to its end into a NUL-terminated buffer, at most max bytes, before the
 * deadline (NULL: none). Returns NULL with errno set: EFBIG too long, ETIMEDOUT.
 */
static char *read_bounded(int fd, size_t max, const struct timespec *deadline, size_t *len)
{
	char *buf = xrealloc(NULL, max + 1);
	size_t n = 0;

	for (;;) {
		if (deadline) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int r = poll(&pfd, 1, ms_left(deadline));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				errno = r ? errno : ETIMEDOUT;
				break;
			}
		}
		ssize_t got = read(fd, buf + n, max + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		if (got == 0) {
			buf[n] = '\0';
			*len = n;
			return buf;
		}
		n += got;
		if (n > max) {
			errno = EFBIG;
			break;
		}
	}
	int saved = errno;
	free(buf);
	errno = saved;
	return NULL;
}

static json_t *parse_or_report(const char *what, const char *buf, size_t len)
{
	json_error_t err;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);

	if (!root)
		fprintf(stderr, ME ": %s: not JSON (line %d: %s), skipped\n", what, err.line, err.text);
	else if (!json_is_object(root)) {
		fprintf(stderr, ME ": %s: not a JSON object, skipped\n", what);
		json_decref(root);
		root = NULL;
	}
	return root;
}

static bool is_string_array(json_t *a)
{
	size_t i;
	json_t *v;

	if (!json_is_array(a))
		return false;
	json_array_foreach(a, i, v)
		if (!json_is_string(v))
			return false;
	return true;
}

/* Checks one file against @VhostUserBackend; its other members are ignored. */
static const char *backend_error(json_t *o)
{
	json_t *type = json_object_get(o, "type");
	json_t *desc = json_object_get(o, "description");
	json_t *binary = json_object_get(o, "binary");
	json_t *tags = json_object_get(o, "tags");

	if (!json_is_string(type))
		return "\"type\" missing or not a string";
	if (!is_backend_type(json_string_value(type)))
		return "\"type\" is not a VHostUserBackendType";
	if (!json_is_string(desc))
		return "\"description\" missing or not a string";
	if (!json_is_string(binary) || json_string_value(binary)[0] != '/')
		return "\"binary\" missing or not an absolute path";
	if (tags && !is_string_array(tags))
		return "\"tags\" is not an array of strings";
	return NULL;
}

/* The file's description, or NULL when it is empty (hidden) or broken (reported). */
static json_t *load_backend(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t len;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, ME ": %s: %s, skipped\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size == 0) {
		if (!S_ISREG(st.st_mode))
			fprintf(stderr, ME ": %s: not a regular file, skipped\n", path);
		close(fd);
		return NULL;
	}
	char *buf = read_bounded(fd, FILE_MAX, NULL, &len);
	if (!buf)
		fprintf(stderr, ME ": %s: %s, skipped\n", path, strerror(errno));
	close(fd);
	if (!buf)
		return NULL;

	json_t *o = parse_or_report(path, buf, len);
	free(buf);
	const char *why = o ? backend_error(o) : NULL;
	if (why) {
		fprintf(stderr, ME ": %s: %s, skipped\n", path, why);
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* Waits for pid until the deadline, then kills its process group. Returns its status. */
static int reap(pid_t pid, const struct timespec *deadline, bool *timed_out)
{
	int status = 0;

	*timed_out = false;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return status;
		if (r == 0 && !ms_left(deadline))
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 5 * 1000 * 1000 }, NULL);
	}
	*timed_out = true;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

/* Runs `BINARY --print-capabilities`; returns its output, or NULL (reported). */
static char *capabilities(const char *file, const char *binary, int timeout_ms, size_t *len)
{
	struct timespec deadline;
	int p[2];

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, ME ": pipe: %s\n", strerror(errno));
		return NULL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		/* Its own process group, so a timeout kills whatever it started too. */
		setpgid(0, 0);
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(127);
		execl(binary, binary, "--print-capabilities", (char *)NULL);
		fprintf(stderr, ME ": %s: cannot run %s: %s\n", file, binary, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		fprintf(stderr, ME ": fork: %s\n", strerror(errno));
		close(p[0]);
		return NULL;
	}
	setpgid(pid, pid);

	char *out = read_bounded(p[0], CAPS_MAX, &deadline, len);
	int read_errno = errno;
	close(p[0]);
	bool timed_out;
	if (!out) /* do not wait for a program we stopped listening to */
		deadline.tv_sec = 0;
	int status = reap(pid, &deadline, &timed_out);

	if (!out) {
		fprintf(stderr, ME ": %s: %s --print-capabilities: %s, skipped\n", file, binary,
			read_errno == EFBIG ? "output too long" :
			read_errno == ETIMEDOUT ? "timed out" : strerror(read_errno));
	} else if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, ME ": %s: %s --print-capabilities %s, skipped\n", file, binary,
			timed_out ? "did not exit in time" : "failed");
		free(out);
		out = NULL;
	}
	return out;
}

static bool array_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	return false;
}

/* True if the binary reports the wanted type and every wanted feature. */
static bool capable(const char *file, const char *binary, const struct request *req)
{
	size_t len;
	char *out = capabilities(file, binary, req->timeout_ms, &len);
	bool ok = false;

	if (!out)
		return false;
	char what[4096];
	snprintf(what, sizeof(what), "%s: %s --print-capabilities", file, binary);
	json_t *caps = parse_or_report(what, out, len);
	free(out);
	if (!caps)
		return false;

	json_t *type = json_object_get(caps, "type");
	json_t *features = json_object_get(caps, "features");
	if (!json_is_string(type) || strcmp(json_string_value(type), req->type)) {
		fprintf(stderr, ME ": %s: its \"type\" is not \"%s\", skipped\n", what, req->type);
	} else if (features && !is_string_array(features)) {
		fprintf(stderr, ME ": %s: \"features\" is not an array of strings, skipped\n", what);
	} else {
		ok = true;
		for (int i = 0; ok && i < req->nfeatures; i++)
			ok = features && array_has(features, req->features[i]);
	}
	json_decref(caps);
	return ok;
}

/* Goes through the files in order; prints and returns true at the first match. */
static bool find_backend(const struct request *req)
{
	struct entries list = { 0 };
	bool found = false;

	list_files(&list, req->root);
	for (size_t i = 0; i < list.n && !found; i++) {
		json_t *o = load_backend(list.v[i].path);
		if (!o)
			continue;
		const char *binary = json_string_value(json_object_get(o, "binary"));
		if (!strcmp(json_string_value(json_object_get(o, "type")), req->type) &&
		    (!req->nfeatures || capable(list.v[i].path, binary, req))) {
			printf("%s\n%s\n", list.v[i].path, binary);
			found = true;
		}
		json_decref(o);
	}
	free_entries(&list);
	return found;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: vhostbox --discover TYPE [--feature FEATURE]... [--root DIR] [--timeout SECONDS]\n"
		"Prints the JSON file and the binary of the vhost-user back-end of TYPE that\n"
		"management software would pick (QEMU docs/interop/vhost-user.json rules).\n"
		"  --feature F    the back-end's --print-capabilities must list F\n"
		"  --root DIR     look under DIR/usr/share, DIR/etc, DIR$XDG_CONFIG_HOME\n"
		"  --timeout S    how long a --print-capabilities may take (default 5)\n"
		"Exit status: 0 found, 1 none matches, 2 usage error.\n");
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, ME ": %s%s%s (see vhostbox --help)\n", what, arg ? ": " : "", arg ? arg : "");
	return EXIT_USAGE;
}

static bool parse_timeout(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v > 0) || v > 3600)
		return false;
	*ms = (int)(v * 1000 + 0.5);
	return *ms > 0;
}

int vu_discover_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "discover", required_argument, NULL, 'd' },
		{ "feature", required_argument, NULL, 'f' },
		{ "root", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct request req = { .root = "", .timeout_ms = 5000 };
	const char **features = xrealloc(NULL, (argc + 1) * sizeof(*features));
	int c, status = EXIT_USAGE;

	req.features = features;
	signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would hide the candidates' exit status */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			/* "--discover --help": the next word is an option, not the TYPE. */
			if (optarg[0] == '-' && optarg == argv[optind - 1]) {
				optind--;
				break;
			}
			if (req.type) {
				status = usage_error("one TYPE only", NULL);
				goto out;
			}
			req.type = optarg;
			break;
		case 'f':
			features[req.nfeatures++] = optarg;
			break;
		case 'r':
			req.root = optarg;
			break;
		case 't':
			if (!parse_timeout(optarg, &req.timeout_ms)) {
				status = usage_error("bad --timeout", optarg);
				goto out;
			}
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto out;
		case ':':
			status = usage_error("option needs a value", argv[optind - 1]);
			goto out;
		default:
			status = usage_error("unknown option", argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc)
		status = usage_error("unexpected argument", argv[optind]);
	else if (!req.type)
		status = usage_error("--discover needs a TYPE", NULL);
	else if (!is_backend_type(req.type))
		status = usage_error("not a VHostUserBackendType", req.type);
	else if (find_backend(&req))
		status = 0;
	else {
		fprintf(stderr, ME ": no back-end of type %s%s found\n", req.type,
			req.nfeatures ? " with the requested features" : "");
		status = EXIT_NO_MATCH;
	}
out:
	free(features);
	return status;
}
