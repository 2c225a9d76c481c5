// The constructor behind package fastexec; see fastexec.go for why it
// exists. It runs before the Go runtime, in every `peapod` process, so it
// must stay plain C, cheap when it does not apply, and return (leaving the
// command to Go) whenever anything is not exactly the case it handles.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CMDLINE_MAX (128 * 1024)
#define PROFILE_MAX (256 * 1024)
#define NAME_MAX_LEN 255

// read_file reads all of path into a NUL-terminated malloc'd buffer of at
// most max bytes; NULL on any error or when the file is larger.
static char *read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	size_t n = 0;
	if (buf == NULL) {
		close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || (r > 0 && n + (size_t)r > max)) {
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

// is_label is Go's layout.IsLabel: an RFC 1123 label.
static int is_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return 0;
	return 1;
}

// is_subdomain is an RFC 1123 subdomain: labels joined by dots.
static int is_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return 0;
	char copy[254], *save = NULL;
	memcpy(copy, s, n + 1);
	if (copy[0] == '.' || copy[n - 1] == '.' || strstr(copy, "..") != NULL)
		return 0;
	for (char *l = strtok_r(copy, ".", &save); l; l = strtok_r(NULL, ".", &save))
		if (!is_label(l))
			return 0;
	return 1;
}

// The global flags that take a value and do not matter to exec (cobra's
// persistent flags of peapod; see cmd/peapod/main.go).
static const char *ignored_value_flags[] = {
	"--bridge", "--subnet", "--cgroup-driver", "--network", "--backoff-initial", "--backoff-max", "--log-format", NULL,
};

struct request {
	const char *root, *run_root, *ns, *pod, *container;
	char **argv; // the command, NULL-terminated
};

// flag_value matches arg against --name VALUE and --name=VALUE: 1 when it
// matched (*value set, *i advanced past a separate value), 0 when not, -1
// when the value is missing.
static int flag_value(char **args, int n, int *i, const char *name, const char **value)
{
	size_t len = strlen(name);
	if (strncmp(args[*i], name, len) != 0)
		return 0;
	if (args[*i][len] == '=') {
		*value = args[*i] + len + 1;
		return 1;
	}
	if (args[*i][len] != '\0')
		return 0;
	if (*i + 1 >= n)
		return -1;
	*value = args[++*i];
	return 1;
}

// parse_flag takes one flag at args[*i] that exec may see, anywhere before
// "--"; 0 means it is not one this path handles (Go then runs the command).
static int parse_flag(char **args, int n, int *i, struct request *r)
{
	const char *v = NULL;
	int m;
	if ((m = flag_value(args, n, i, "--root", &r->root)) != 0)
		return m > 0;
	if ((m = flag_value(args, n, i, "--run-root", &r->run_root)) != 0)
		return m > 0;
	if ((m = flag_value(args, n, i, "--namespace", &r->ns)) != 0 || (m = flag_value(args, n, i, "-n", &r->ns)) != 0)
		return m > 0;
	if ((m = flag_value(args, n, i, "--container", &r->container)) != 0 || (m = flag_value(args, n, i, "-c", &r->container)) != 0)
		return m > 0;
	for (const char **f = ignored_value_flags; *f; f++)
		if ((m = flag_value(args, n, i, *f, &v)) != 0)
			return m > 0;
	return 0; // -i, -t, --debug, --help, -cNAME, anything else: Go's
}

// parse_args recognises `peapod [flags] exec [flags] POD [flags] -- CMD...`.
static int parse_args(char **args, int n, struct request *r)
{
	int i = 1, seen_exec = 0;
	r->root = "/var/lib/peapod";
	r->run_root = "/run/peapod";
	r->ns = "default";
	for (; i < n; i++) {
		if (strcmp(args[i], "--") == 0)
			break;
		if (args[i][0] == '-') {
			if (!parse_flag(args, n, &i, r))
				return 0;
		} else if (!seen_exec) {
			if (strcmp(args[i], "exec") != 0)
				return 0;
			seen_exec = 1;
		} else if (r->pod == NULL) {
			r->pod = args[i];
		} else {
			return 0; // cobra wants exactly the pod before "--"
		}
	}
	if (!seen_exec || r->pod == NULL || i + 1 >= n)
		return 0;
	r->argv = args + i + 1;
	return r->root[0] == '/' && r->run_root[0] == '/' && is_label(r->ns) && is_subdomain(r->pod) &&
	       (r->container == NULL || is_label(r->container));
}

// cmdline_args splits /proc/self/cmdline: a constructor gets no argv from
// every libc.
static char **cmdline_args(int *n)
{
	size_t len;
	char *buf = read_file("/proc/self/cmdline", CMDLINE_MAX, &len);
	if (buf == NULL || len == 0 || buf[len - 1] != '\0')
		return NULL;
	int count = 0;
	for (size_t i = 0; i < len; i++)
		count += buf[i] == '\0';
	char **args = calloc((size_t)count + 1, sizeof *args);
	if (args == NULL)
		return NULL;
	char *p = buf;
	for (int k = 0; k < count; k++, p += strlen(p) + 1)
		args[k] = p;
	*n = count;
	return args;
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

// alive checks that pid runs and started at start (clock ticks after boot,
// /proc/PID/stat field 22): the profile's instance, not a reused pid.
static int alive(long pid, unsigned long long start)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	char *stat = read_file(path, 4096, NULL);
	if (stat == NULL)
		return 0;
	char *p = strrchr(stat, ')'); // comm may hold spaces and parentheses
	int ok = 0;
	if (p != NULL && p[1] == ' ') {
		char state = p[2];
		p += 3; // at the space before field 4 (ppid)
		// Move to the start of each field up to 22, starttime.
		for (int field = 4; field <= 22 && p; field++) {
			p = strchr(p, ' ');
			if (p)
				p++;
		}
		ok = p != NULL && state != 'Z' && state != 'X' && strtoull(p, NULL, 10) == start;
	}
	free(stat);
	return ok;
}

// supervisor_alive connects to the pod's supervisor socket: only a live
// supervisor listens there. Go refuses exec into a pod whose supervisor
// was lost, and so does this path by leaving it to Go.
static int supervisor_alive(const char *run_dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/supervisor.sock", run_dir) >= sizeof sa.sun_path)
		return 0; // too long for sun_path: Go's
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

// escape is Go's encodeNsenterValue: '%' and newlines as %XX.
static char *escape(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *w = out;
	if (out == NULL)
		return NULL;
	for (; *s; s++) {
		if (*s == '%' || *s == '\n') {
			w += sprintf(w, "%%%02x", (unsigned char)*s);
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return out;
}

// line_after returns the value of the "key=" line starting at *p and moves
// *p to the next line; NULL when the line is another key.
static char *take_line(char **p, const char *key)
{
	size_t len = strlen(key);
	if (strncmp(*p, key, len) != 0)
		return NULL;
	char *v = *p + len, *nl = strchr(v, '\n');
	if (nl == NULL)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return v;
}

__attribute__((constructor)) static void peapod_fastexec(void)
{
	// Cheap when it does not apply: a getenv, then one read of cmdline.
	if (getenv("PEAPOD_TRACE") || getenv("PEAPOD_DEBUG") || getenv("PEAPOD_NO_FASTEXEC") || geteuid() != 0)
		return;
	int n = 0;
	char **args = cmdline_args(&n);
	struct request r = {0};
	if (args == NULL || !parse_args(args, n, &r))
		return;

	char path[4096];
	if (strlen(r.ns) + strlen(r.pod) + 1 > NAME_MAX_LEN) // a hashed name index: Go's
		return;
	snprintf(path, sizeof path, "%s/names/%s_%s", r.root, r.ns, r.pod);
	char *uid = read_file(path, 128, NULL);
	if (uid == NULL)
		return;
	trim(uid);
	for (char *c = uid; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f') || *c == '-'))
			return;
	if (uid[0] == '\0')
		return;

	char *note = NULL;
	if (r.container == NULL) {
		snprintf(path, sizeof path, "%s/pods/%s/exec/.default", r.run_root, uid);
		char *def = read_file(path, 4096, NULL);
		if (def == NULL || (note = strchr(def, '\n')) == NULL)
			return;
		*note++ = '\0';
		if (!is_label(def))
			return;
		r.container = def;
	}

	snprintf(path, sizeof path, "%s/pods/%s/exec/%s", r.run_root, uid, r.container);
	char *profile = read_file(path, PROFILE_MAX, NULL), *p = profile;
	if (profile == NULL)
		return;
	char *boot = take_line(&p, "boot="), *start = boot ? take_line(&p, "start=") : NULL;
	char *seccomp = start ? take_line(&p, "seccomp=") : NULL;
	if (seccomp == NULL || strncmp(p, "pid=", 4) != 0)
		return;
	char *now = read_file("/proc/sys/kernel/random/boot_id", 128, NULL);
	if (now == NULL)
		return;
	trim(now);
	char *end;
	long pid = strtol(p + 4, &end, 10);
	if (strcmp(now, boot) != 0 || pid <= 0 || *end != '\n' || !alive(pid, strtoull(start, NULL, 10)))
		return; // the instance is gone: Go says so properly

	snprintf(path, sizeof path, "%s/pods/%s", r.run_root, uid);
	if (!supervisor_alive(path))
		return;
	char helper[4096];
	// layout.HelperMount, protocol 2.
	snprintf(helper, sizeof helper, "%s/bin/2/peapod-init", r.run_root);
	if (access(helper, X_OK) != 0)
		return;

	// The config: the profile's lines, the command, and pipes=1 (the
	// helper relays the output, so no descriptor of ours — a terminal —
	// reaches the container, as Go's exec.Cmd pipes do).
	size_t size = strlen(p) + 64;
	for (char **a = r.argv; *a; a++)
		size += 3 * strlen(*a) + 8;
	char *config = malloc(size + sizeof "_PEAPOD_NSENTER="), *w = config;
	if (config == NULL)
		return;
	w += sprintf(w, "_PEAPOD_NSENTER=%s", p);
	for (char **a = r.argv; *a; a++) {
		char *e = escape(*a);
		if (e == NULL)
			return;
		w += sprintf(w, "arg=%s\n", e);
		free(e);
	}
	strcpy(w, "pipes=1\n");
	char *sec = malloc(strlen(seccomp) + sizeof "_PEAPOD_EXEC_SECCOMP=");
	if (sec == NULL)
		return;
	sprintf(sec, "_PEAPOD_EXEC_SECCOMP=%s", seccomp);

	if (note != NULL && *note != '\0') {
		// kubectl's line about the default container, as the Go path prints it.
		trim(note);
		fprintf(stderr, "%s\n", note);
	}
	char *env[] = {config, sec, NULL};
	char *hargv[] = {helper, "exec", NULL};
	execve(helper, hargv, env);
	// Nothing was done yet that Go would redo: let it try and report.
}
