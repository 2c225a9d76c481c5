// The constructor behind package fastexec; see fastexec.go for why it
// exists. It runs before the Go runtime, in every `peapod` process, so it
// must stay plain C, cheap when it does not apply, and return (leaving the
// command to Go) whenever anything is not exactly the case it handles.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CMDLINE_MAX (128 * 1024)
#define PROFILE_MAX (256 * 1024)
#define NAME_MAX_LEN 255

// owned are the buffers to free when the constructor returns into Go: the
// CLI may run for long (logs -f, run in the foreground).
static void *owned[32];
static size_t nowned;

static void *own(void *p)
{
	if (p != NULL && nowned < sizeof owned / sizeof owned[0])
		owned[nowned++] = p;
	return p;
}

static void free_owned(void)
{
	while (nowned > 0)
		free(owned[--nowned]);
}

// read_file reads all of path into a NUL-terminated buffer of at most max
// bytes (freed by free_owned); NULL on any error or when the file is larger.
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
	// Shrunk to what was read: max is an upper bound, not a size.
	char *fit = realloc(buf, n + 1);
	return own(fit != NULL ? fit : buf);
}

// fmt_path formats a path into buf; 0 when it does not fit.
static int fmt_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fmt_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < size;
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
	char **args = own(calloc((size_t)count + 1, sizeof *args));
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
	return ok;
}

// A JSON syntax check, just enough to tell a file the Go path would read
// from one it would call unreadable (a truncated status.json, say), and to
// pick one top-level string out of an object.
struct json {
	const char *p;
	int depth;
	const char *want;  // a top-level key whose string value to copy
	char found[64];    // that value ("" when absent)
};

static void json_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

// json_string checks a string at j->p and copies it into out (when not
// NULL, up to size-1 bytes, escapes kept as written).
static int json_string(struct json *j, char *out, size_t size)
{
	size_t n = 0;
	if (*j->p != '"')
		return 0;
	for (j->p++; *j->p != '"'; j->p++) {
		if ((unsigned char)*j->p < 0x20)
			return 0;
		if (*j->p == '\\') {
			j->p++;
			if (*j->p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!((j->p[i] >= '0' && j->p[i] <= '9') || ((j->p[i] | 0x20) >= 'a' && (j->p[i] | 0x20) <= 'f')))
						return 0;
				j->p += 4;
			} else if (strchr("\"\\/bfnrt", *j->p) == NULL || *j->p == '\0') {
				return 0;
			}
		}
		if (out != NULL && n + 1 < size)
			out[n++] = *j->p;
	}
	j->p++;
	if (out != NULL)
		out[n] = '\0';
	return 1;
}

static int json_value(struct json *j);

static int json_container(struct json *j, char close)
{
	int object = close == '}';
	if (++j->depth > 64)
		return 0;
	j->p++;
	json_ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return 1;
	}
	for (;;) {
		if (object) {
			char key[64];
			if (!json_string(j, key, sizeof key))
				return 0;
			json_ws(j);
			if (*j->p != ':')
				return 0;
			j->p++;
			json_ws(j);
			if (j->depth == 1 && j->want != NULL && strcmp(key, j->want) == 0 && *j->p == '"') {
				if (!json_string(j, j->found, sizeof j->found))
					return 0;
			} else if (!json_value(j)) {
				return 0;
			}
		} else if (!json_value(j)) {
			return 0;
		}
		json_ws(j);
		if (*j->p == ',') {
			j->p++;
			json_ws(j);
			continue;
		}
		if (*j->p != close)
			return 0;
		j->p++;
		j->depth--;
		return 1;
	}
}

static int json_value(struct json *j)
{
	json_ws(j);
	switch (*j->p) {
	case '{':
		return json_container(j, '}');
	case '[':
		return json_container(j, ']');
	case '"':
		return json_string(j, NULL, 0);
	}
	static const char *const words[] = {"true", "false", "null"};
	for (size_t i = 0; i < 3; i++)
		if (strncmp(j->p, words[i], strlen(words[i])) == 0) {
			j->p += strlen(words[i]);
			return 1;
		}
	const char *start = j->p;
	if (*j->p == '-')
		j->p++;
	while ((*j->p >= '0' && *j->p <= '9') || *j->p == '.' || *j->p == 'e' || *j->p == 'E' || *j->p == '+' || *j->p == '-')
		j->p++;
	return j->p != start && (start[0] != '-' || j->p != start + 1);
}

// json_ok reports whether the file at path is one JSON object; with want,
// *found gets that top-level key's string value.
static int json_ok(const char *path, const char *want, char *found, size_t size)
{
	char *b = read_file(path, PROFILE_MAX, NULL);
	if (b == NULL)
		return 0;
	struct json j = {.p = b, .want = want};
	json_ws(&j);
	int ok = *j.p == '{' && json_value(&j);
	json_ws(&j);
	ok = ok && *j.p == '\0';
	if (ok && found != NULL)
		snprintf(found, size, "%s", j.found);
	return ok;
}

// pod_usable is Go's "not stale" (runtime/pod View): a record that reads,
// in phase Created (not being made, stopped or removed), and a status file
// that reads. Anything else is for Go to explain.
static int pod_usable(const char *root, const char *run_dir, const char *uid)
{
	char path[4096], phase[64];
	if (!fmt_path(path, sizeof path, "%s/pods/%s/pod.json", root, uid) || !json_ok(path, "phase", phase, sizeof phase) ||
	    strcmp(phase, "Created") != 0)
		return 0;
	return fmt_path(path, sizeof path, "%s/status.json", run_dir) && json_ok(path, NULL, NULL, 0);
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
	char *out = own(malloc(3 * n + 1)), *w = out;
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

static void try_fastexec(void);

__attribute__((constructor)) static void peapod_fastexec(void)
{
	// Cheap when it does not apply: a getenv, then one read of cmdline.
	if (getenv("PEAPOD_TRACE") || getenv("PEAPOD_DEBUG") || getenv("PEAPOD_NO_FASTEXEC") || geteuid() != 0)
		return;
	try_fastexec();
	free_owned();
}

// try_fastexec execs the helper, or returns when Go is to run the command.
static void try_fastexec(void)
{
	int n = 0;
	char **args = cmdline_args(&n);
	struct request r = {0};
	if (args == NULL || !parse_args(args, n, &r))
		return;

	char path[4096];
	if (strlen(r.ns) + strlen(r.pod) + 1 > NAME_MAX_LEN) // a hashed name index: Go's
		return;
	if (!fmt_path(path, sizeof path, "%s/names/%s_%s", r.root, r.ns, r.pod))
		return;
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
		if (!fmt_path(path, sizeof path, "%s/pods/%s/exec/.default", r.run_root, uid))
			return;
		char *def = read_file(path, 4096, NULL);
		if (def == NULL || (note = strchr(def, '\n')) == NULL)
			return;
		*note++ = '\0';
		if (!is_label(def))
			return;
		r.container = def;
	}

	if (!fmt_path(path, sizeof path, "%s/pods/%s/exec/%s", r.run_root, uid, r.container))
		return;
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

	if (!fmt_path(path, sizeof path, "%s/pods/%s", r.run_root, uid))
		return;
	if (!supervisor_alive(path) || !pod_usable(r.root, path, uid))
		return;
	char helper[4096];
	// layout.HelperMount, protocol 2.
	if (!fmt_path(helper, sizeof helper, "%s/bin/2/peapod-init", r.run_root))
		return;
	if (access(helper, X_OK) != 0)
		return;

	// The config: the profile's lines, the command, and pipes=1 (the
	// helper relays the output, so no descriptor of ours — a terminal —
	// reaches the container, as Go's exec.Cmd pipes do).
	size_t size = strlen(p) + 64;
	for (char **a = r.argv; *a; a++)
		size += 3 * strlen(*a) + 8;
	char *config = own(malloc(size + sizeof "_PEAPOD_NSENTER=")), *w = config;
	if (config == NULL)
		return;
	w += sprintf(w, "_PEAPOD_NSENTER=%s", p);
	for (char **a = r.argv; *a; a++) {
		char *e = escape(*a);
		if (e == NULL)
			return;
		w += sprintf(w, "arg=%s\n", e);
	}
	strcpy(w, "pipes=1\n");
	char *sec = own(malloc(strlen(seccomp) + sizeof "_PEAPOD_EXEC_SECCOMP="));
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
