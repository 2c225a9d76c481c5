// The constructor behind package nsenter; see nsenter.go for why it exists.
// It runs before the Go runtime, so it must stay plain, single-threaded C.
// For `exec` it does everything, up to the workload's execve: the helper's
// Go runtime never starts.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <time.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENV_CONFIG "_PEAPOD_NSENTER"
#define ENV_SECCOMP "_PEAPOD_EXEC_SECCOMP"
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127
#define MAX_FILTER 4096

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

// Namespaces in join order. mnt comes last: joining it changes our root and
// cwd, and everything else is resolved through the host's /proc first.
static const struct {
	const char *name;
	int type;
} ns_order[] = {
	{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
	{"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
};
#define NS_COUNT (sizeof(ns_order) / sizeof(ns_order[0]))

// Capability sets in the order of the "caps=" line.
enum { CAP_BOUNDING, CAP_EFFECTIVE, CAP_PERMITTED, CAP_INHERITABLE, CAP_AMBIENT, CAP_SETS };

struct rlimit_entry {
	int resource;
	struct rlimit limit;
};

// exec_config is the decoded _PEAPOD_NSENTER (see NewExecProfile and ExecProfile.Command).
struct exec_config {
	pid_t target;
	char **cgroups;
	size_t ncgroups;
	char **argv; // NULL-terminated
	size_t argc;
	char **envp; // NULL-terminated
	size_t envc;
	char *cwd;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
	mode_t umask;
	int nnp, terminal, pipes;
	struct rlimit_entry *rlimits;
	size_t nrlimits;
	uint64_t caps[CAP_SETS];
	unsigned long timerslack;
	struct sock_filter *filter;
	unsigned short filter_len;
	int have_uid, have_gid, have_caps, have_umask, have_cwd;
};

static volatile sig_atomic_t forward_to;

static void fail(const char *verb, const char *object)
{
	fprintf(stderr, "peapod exec: failed to %s %s: %s\n", verb, object, strerror(errno));
	_exit(EXIT_CANNOT_EXEC);
}

static void fail_config(const char *what, const char *line)
{
	fprintf(stderr, "peapod exec: invalid " ENV_CONFIG " %s: %.80s\n", what, line);
	_exit(EXIT_CANNOT_EXEC);
}

// helper_mode returns argv[1] (or NULL). A constructor gets no argv from
// every libc, so read it from /proc/self/cmdline.
static const char *helper_mode(char *buf, size_t size)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t len = 0;
	ssize_t n;
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	size_t argv0 = strlen(buf);
	return argv0 + 1 < len ? buf + argv0 + 1 : NULL;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		fail("allocate", "the exec config");
	}
	p = realloc(p, n * size);
	if (p == NULL)
		fail("allocate", "the exec config");
	return p;
}

// append adds s to a NULL-terminated list of *n entries.
static void append(char ***list, size_t *n, char *s)
{
	*list = xrealloc(*list, *n + 2, sizeof **list);
	(*list)[(*n)++] = s;
	(*list)[*n] = NULL;
}

// parse_u64 parses all of s in base; anything else is a config error.
static uint64_t parse_u64(const char *s, int base, const char *line)
{
	char *end;
	errno = 0;
	if (*s == '\0' || *s == '-')
		fail_config("number in", line);
	unsigned long long v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0')
		fail_config("number in", line);
	return (uint64_t)v;
}

static unsigned long parse_id(const char *s, const char *line)
{
	uint64_t v = parse_u64(s, 10, line);
	if (v > UINT32_MAX - 1) // (uid_t)-1 means "unchanged" to setresuid
		fail_config("id in", line);
	return (unsigned long)v;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

// unescape decodes %XX in place (Go's encodeNsenterValue); a NUL would cut
// the string short and is refused.
static char *unescape(char *s, const char *line)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*w++ = *r;
			continue;
		}
		int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
			fail_config("escape in", line);
		*w++ = (char)(hi << 4 | lo);
		r += 2;
	}
	*w = '\0';
	return s;
}

static void parse_caps(struct exec_config *c, char *v, const char *line)
{
	char *save = NULL;
	int i = 0;
	for (char *f = strtok_r(v, ":", &save); f; f = strtok_r(NULL, ":", &save)) {
		if (i == CAP_SETS)
			fail_config("caps", line);
		c->caps[i++] = parse_u64(f, 16, line);
	}
	if (i != CAP_SETS)
		fail_config("caps", line);
	c->have_caps = 1;
}

static void parse_rlimit(struct exec_config *c, char *v, const char *line)
{
	char *soft = strchr(v, ':'), *hard = soft ? strchr(soft + 1, ':') : NULL;
	if (hard == NULL)
		fail_config("rlimit", line);
	*soft++ = '\0';
	*hard++ = '\0';
	uint64_t res = parse_u64(v, 10, line);
	if (res >= RLIM_NLIMITS)
		fail_config("rlimit resource", line);
	c->rlimits = xrealloc(c->rlimits, c->nrlimits + 1, sizeof *c->rlimits);
	c->rlimits[c->nrlimits].resource = (int)res;
	c->rlimits[c->nrlimits].limit.rlim_cur = (rlim_t)parse_u64(soft, 10, line);
	c->rlimits[c->nrlimits].limit.rlim_max = (rlim_t)parse_u64(hard, 10, line);
	c->nrlimits++;
}

// parse_seccomp decodes the hex filter of ENV_SECCOMP (empty: none).
static void parse_seccomp(struct exec_config *c)
{
	const char *hex = getenv(ENV_SECCOMP);
	size_t n = hex ? strlen(hex) : 0;
	if (n == 0)
		return;
	if (n % (2 * sizeof(struct sock_filter)) != 0 || n / (2 * sizeof(struct sock_filter)) > MAX_FILTER)
		fail_config("seccomp filter length", ENV_SECCOMP);
	unsigned char *buf = xrealloc(NULL, n / 2, 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			fail_config("seccomp filter", ENV_SECCOMP);
		buf[i] = (unsigned char)(hi << 4 | lo);
	}
	c->filter = (struct sock_filter *)buf;
	c->filter_len = (unsigned short)(n / 2 / sizeof(struct sock_filter));
}

// parse_config decodes every line; a line it does not know is an error, so
// a helper older than its caller cannot silently skip a setting.
static void parse_config(struct exec_config *c, const char *config)
{
	char *copy = strdup(config), *save = NULL;
	if (copy == NULL)
		fail("copy", ENV_CONFIG);
	memset(c, 0, sizeof *c);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, '=');
		if (v == NULL)
			fail_config("line", line);
		*v++ = '\0';
		if (strcmp(line, "pid") == 0) {
			uint64_t pid = parse_u64(v, 10, v);
			if (pid == 0 || pid > INT_MAX)
				fail_config("pid", v);
			c->target = (pid_t)pid;
		} else if (strcmp(line, "cgroup") == 0) {
			if (v[0] != '/')
				fail_config("cgroup", v);
			append(&c->cgroups, &c->ncgroups, v);
		} else if (strcmp(line, "arg") == 0) {
			append(&c->argv, &c->argc, unescape(v, line));
		} else if (strcmp(line, "env") == 0) {
			append(&c->envp, &c->envc, unescape(v, line));
		} else if (strcmp(line, "cwd") == 0) {
			c->cwd = unescape(v, line);
			c->have_cwd = 1;
		} else if (strcmp(line, "uid") == 0) {
			c->uid = (uid_t)parse_id(v, v);
			c->have_uid = 1;
		} else if (strcmp(line, "gid") == 0) {
			c->gid = (gid_t)parse_id(v, v);
			c->have_gid = 1;
		} else if (strcmp(line, "group") == 0) {
			c->groups = xrealloc(c->groups, c->ngroups + 1, sizeof *c->groups);
			c->groups[c->ngroups++] = (gid_t)parse_id(v, v);
		} else if (strcmp(line, "umask") == 0) {
			uint64_t m = parse_u64(v, 10, v);
			if (m > 0777)
				fail_config("umask", v);
			c->umask = (mode_t)m;
			c->have_umask = 1;
		} else if (strcmp(line, "nnp") == 0) {
			c->nnp = 1;
		} else if (strcmp(line, "terminal") == 0) {
			c->terminal = 1;
		} else if (strcmp(line, "pipes") == 0) {
			c->pipes = 1;
		} else if (strcmp(line, "rlimit") == 0) {
			parse_rlimit(c, v, v);
		} else if (strcmp(line, "caps") == 0) {
			parse_caps(c, v, v);
		} else if (strcmp(line, "timerslack") == 0) {
			c->timerslack = (unsigned long)parse_u64(v, 10, v);
		} else {
			fail_config("key", line);
		}
	}
	// Everything that decides the process's privileges must be there: a
	// default here would be root with whatever the helper holds.
	if (c->target == 0 || c->argc == 0 || !c->have_uid || !c->have_gid || !c->have_caps || !c->have_umask ||
	    !c->have_cwd)
		fail_config("config", "(pid, arg, uid, gid, caps, umask or cwd missing)");
	if (c->envp == NULL) {
		c->envp = xrealloc(NULL, 1, sizeof *c->envp);
		c->envp[0] = NULL;
	}
	parse_seccomp(c);
}

// join_cgroup moves us into the cgroup whose cgroup.procs file is procs.
//
// On a v1 hierarchy it writes "0" to the sibling "tasks" file instead. A
// write to cgroup.procs takes cgroup_threadgroup_rwsem for writing, and the
// first writer after a quiet spell waits out a whole RCU grace period
// (10–20 ms on a 2-core VM, most of an exec) for the rwsem to switch modes.
// Moving only the writing thread skips that lock (cgroup_procs_write_start:
// the current thread cannot exit or exec under us), and we are still one
// thread, so the thread is the whole process. v2 has no "tasks" file (its
// cgroup.threads needs a threaded cgroup): there cgroup.procs it is.
static void join_cgroup(const char *procs)
{
	char tasks[PATH_MAX];
	const char *slash = strrchr(procs, '/');
	int fd = -1;
	if (slash != NULL && strcmp(slash, "/cgroup.procs") == 0 &&
	    snprintf(tasks, sizeof tasks, "%.*s/tasks", (int)(slash - procs), procs) < (int)sizeof tasks)
		fd = open(tasks, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) != 1)
			fail("join cgroup", tasks);
		close(fd);
		return;
	}
	if (errno != ENOENT)
		fail("open", tasks);
	// "0" means the writer; we are still one thread, so nothing is left behind.
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		fail("join cgroup", procs);
	close(fd);
}

// join_namespaces opens every namespace first (while /proc is still the
// host's), skips those we already share, then setns()es into the rest.
static void join_namespaces(pid_t target)
{
	int fds[NS_COUNT];
	char path[64];
	for (size_t i = 0; i < NS_COUNT; i++) {
		struct stat theirs, ours;
		snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)target, ns_order[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0 || fstat(fds[i], &theirs) < 0)
			fail("open", path);
		snprintf(path, sizeof path, "/proc/self/ns/%s", ns_order[i].name);
		if (stat(path, &ours) < 0)
			fail("stat", path);
		if (ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino) {
			close(fds[i]);
			fds[i] = -1;
		}
	}
	for (size_t i = 0; i < NS_COUNT; i++) {
		if (fds[i] < 0)
			continue;
		snprintf(path, sizeof path, "%s namespace of pid %d", ns_order[i].name, (int)target);
		if (setns(fds[i], ns_order[i].type) < 0)
			fail("join", path);
		close(fds[i]);
	}
}

static void forward_signal(int sig)
{
	if (forward_to > 0)
		kill((pid_t)forward_to, sig);
}

// forward_signals makes the signals a terminal or a supervisor sends us
// reach child; they stay blocked until the caller restores its mask.
static void forward_signals(pid_t child)
{
	static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	forward_to = child;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		if (sigaction(forwarded[i], &sa, NULL) < 0)
			fail("install", "signal forwarding");
}

// exit_as exits as the child did: its code, or 128+N when killed by N.
static void exit_as(int status)
{
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

// wait_and_exit makes the parent mirror the child: forward the signals a
// terminal or a supervisor sends, then exit with the child's status.
static void wait_and_exit(pid_t child, const sigset_t *restore)
{
	int status;

	forward_signals(child);
	sigprocmask(SIG_SETMASK, restore, NULL);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			fail("wait for", "the exec child");
	exit_as(status);
}

// write_all writes all of buf to fd; an error drops the rest (the reader
// went away: the child's output is still drained, so it never blocks).
static void write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// OUTPUT_GRACE_MS bounds the wait for the output once the child exited: a
// daemon it left behind may hold the pipes open forever (Go's exec.Cmd
// WaitDelay in the CLI's path, cmd/peapod's ioGrace).
#define OUTPUT_GRACE_MS 500

// relay_and_exit is wait_and_exit for pipes=1: it also copies the child's
// stdout and stderr pipes (out, err) to its own, until both reach EOF or
// the grace after the child's exit runs out.
static void relay_and_exit(pid_t child, const sigset_t *restore, int out, int err)
{
	int status = 0, exited = 0;
	long long deadline = 0;
	char buf[16384];

	forward_signals(child);
	// A reader of our stdout that went away must not kill us: the exit
	// status is the child's.
	signal(SIGPIPE, SIG_IGN);
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0)
		fail("open", "a pidfd of the exec child");
	sigprocmask(SIG_SETMASK, restore, NULL);
	struct pollfd fds[3] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}, {.fd = pidfd, .events = POLLIN}};
	for (;;) {
		if (exited && fds[0].fd < 0 && fds[1].fd < 0)
			break;
		int timeout = -1;
		if (exited) {
			long long left = deadline - now_ms();
			if (left <= 0)
				break;
			timeout = (int)left;
		}
		int n = poll(fds, 3, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("poll", "the exec child's output");
		if (n == 0)
			continue; // the deadline check above ends the loop
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			ssize_t r = read(fds[i].fd, buf, sizeof buf);
			if (r > 0) {
				write_all(i == 0 ? 1 : 2, buf, (size_t)r);
			} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
		if (fds[2].fd >= 0 && fds[2].revents != 0) {
			while (waitpid(child, &status, 0) < 0)
				if (errno != EINTR)
					fail("wait for", "the exec child");
			exited = 1;
			fds[2].fd = -1;
			deadline = now_ms() + OUTPUT_GRACE_MS;
		}
	}
	if (!exited)
		while (waitpid(child, &status, 0) < 0)
			if (errno != EINTR)
				fail("wait for", "the exec child");
	exit_as(status);
}

// exec_stdio is the child's stdio in pipes=1 mode: /dev/null (opened while
// the host's /dev is reachable) and the write ends of two pipes.
struct exec_stdio {
	int null, out[2], err[2];
};

// fork_into_pid_namespace forks because setns(CLONE_NEWPID) only moves our
// future children. It returns in the child only. With io, the child's
// stdio become io's, and the parent relays the pipes.
static void fork_into_pid_namespace(const struct exec_stdio *io)
{
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	// Blocked until the parent's forwarding handlers exist, so an early
	// SIGTERM is forwarded instead of killing the parent and orphaning the child.
	if (sigprocmask(SIG_BLOCK, &block, &old) < 0)
		fail("block", "signals");
	pid_t parent = getpid();
	pid_t child = fork();
	if (child < 0)
		fail("fork", "into the target's pid namespace");
	if (child > 0) {
		if (io == NULL)
			wait_and_exit(child, &old);
		close(io->null);
		close(io->out[1]);
		close(io->err[1]);
		relay_and_exit(child, &old, io->out[0], io->err[0]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	// A killed exec (a probe's timeout) must not leave its process behind.
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail("set", "parent death signal");
	// getppid() is 0 while the parent lives outside our pid namespace, and
	// is the parent's pid otherwise; any other value means it already died.
	pid_t ppid = getppid();
	if (ppid != 0 && ppid != parent)
		_exit(EXIT_CANNOT_EXEC);
	// dup2 leaves the copies without CLOEXEC; the originals close at execve.
	if (io != NULL && (dup2(io->null, 0) < 0 || dup2(io->out[1], 1) < 0 || dup2(io->err[1], 2) < 0))
		fail("set up", "the exec's stdio");
}

// apply_rlimits sets each limit, clamped so no hard limit is ever raised:
// without CAP_SYS_RESOURCE (missing on some hosts) that is EPERM.
static void apply_rlimits(const struct exec_config *c)
{
	for (size_t i = 0; i < c->nrlimits; i++) {
		struct rlimit cur, want = c->rlimits[i].limit;
		char what[32];
		snprintf(what, sizeof what, "rlimit %d", c->rlimits[i].resource);
		if (getrlimit(c->rlimits[i].resource, &cur) < 0)
			fail("read", what);
		if (want.rlim_max > cur.rlim_max)
			want.rlim_max = cur.rlim_max;
		if (want.rlim_cur > want.rlim_max)
			want.rlim_cur = want.rlim_max;
		if (setrlimit(c->rlimits[i].resource, &want) < 0)
			fail("set", what);
	}
}

static void load_seccomp(const struct exec_config *c)
{
	if (c->filter_len == 0)
		return;
	struct sock_fprog prog = {.len = c->filter_len, .filter = c->filter};
	// Only this thread is filtered (no TSYNC): it is the only one.
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		fail("load", "the seccomp filter");
}

// held_caps is what the helper may hand on: in its bounding and its
// permitted set. A privileged container gets the runtime's own set, never
// an error for a capability the host withholds (CAP_SYS_RESOURCE here).
static uint64_t held_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		fail("read", "own capabilities");
	uint64_t permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted, held = 0;
	for (int i = 0; i < 64; i++)
		if ((permitted >> i & 1) && prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
			held |= 1ULL << i;
	return held;
}

// apply_credentials switches to the user and its capabilities in runc's
// order: bounding set → keepcaps → groups/gid/uid → capset(E, P, I) → ambient.
static void apply_credentials(const struct exec_config *c)
{
	uint64_t held = held_caps(), want[CAP_SETS];
	for (int i = 0; i < CAP_SETS; i++)
		want[i] = c->caps[i] & held;
	// EINVAL past the kernel's last capability ends the loop.
	for (int i = 0; i < 64; i++) {
		if (want[CAP_BOUNDING] >> i & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break;
			fail("drop", "bounding capabilities");
		}
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail("set", "keepcaps");
	// Raw system calls: one thread, nothing for glibc's setxid broadcast to do.
	if (syscall(SYS_setgroups, c->ngroups, c->groups) < 0)
		fail("set", "supplementary groups");
	if (syscall(SYS_setresgid, c->gid, c->gid, c->gid) < 0)
		fail("set", "gid");
	if (syscall(SYS_setresuid, c->uid, c->uid, c->uid) < 0)
		fail("set", "uid");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail("clear", "keepcaps");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(want[CAP_EFFECTIVE] >> (32 * i));
		data[i].permitted = (uint32_t)(want[CAP_PERMITTED] >> (32 * i));
		data[i].inheritable = (uint32_t)(want[CAP_INHERITABLE] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("set", "capabilities");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		fail("clear", "ambient capabilities");
	for (int i = 0; i < 64; i++)
		if ((want[CAP_AMBIENT] >> i & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
			fail("raise", "ambient capabilities");
}

// enter_cwd changes to the working directory and checks it lies inside the
// new root: a cwd reached through a leaked host descriptor shows up as
// unreachable (CVE-2024-21626).
static void enter_cwd(const char *cwd)
{
	char wd[PATH_MAX];
	if (cwd[0] == '\0')
		cwd = "/";
	if (chdir(cwd) < 0)
		fail("change to working directory", cwd);
	// The system call, not glibc's getcwd, which may make up a path.
	long n = syscall(SYS_getcwd, wd, sizeof wd);
	if (n < 0)
		fail("check working directory", cwd);
	if (wd[0] != '/') {
		errno = EXDEV;
		fail("stay inside the container root with working directory", cwd);
	}
}

// env_lookup is the last value of key in envp, or def (Go's EnvLookup).
static const char *env_lookup(char *const *envp, const char *key, const char *def)
{
	size_t n = strlen(key);
	const char *v = def;
	for (; *envp; envp++)
		if (strncmp(*envp, key, n) == 0 && (*envp)[n] == '=')
			v = *envp + n + 1;
	return v;
}

// executable accepts a regular file with an execute bit; otherwise errno is
// set and it returns 0.
static int executable(const char *p)
{
	struct stat st;
	if (stat(p, &st) < 0)
		return 0;
	if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) {
		errno = EACCES;
		return 0;
	}
	return 1;
}

// find_executable resolves name as execve would after a PATH search of the
// container's own PATH; a miss exits 127, as a shell does.
static const char *find_executable(const char *name, const char *path)
{
	if (strchr(name, '/') != NULL) {
		if (executable(name))
			return name;
		fprintf(stderr, "peapod exec: executable \"%s\": %s\n", name, strerror(errno));
		// As a shell: 127 for a missing file, 126 for one it cannot run.
		_exit(errno == ENOENT || errno == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
	}
	size_t len = strlen(name);
	for (const char *dir = path;; dir++) {
		const char *end = strchrnul(dir, ':');
		size_t dlen = (size_t)(end - dir);
		char *p = xrealloc(NULL, dlen + len + 3, 1);
		if (dlen == 0)
			memcpy(p, ".", 2), dlen = 1;
		else
			memcpy(p, dir, dlen);
		p[dlen] = '/';
		memcpy(p + dlen + 1, name, len + 1);
		if (executable(p))
			return p;
		free(p);
		if (*end == '\0')
			break;
		dir = end;
	}
	fprintf(stderr, "peapod exec: executable \"%s\" not found in PATH \"%s\"\n", name, path);
	_exit(EXIT_NOT_FOUND);
}

// become_process is the exec child's life after the joins: the same steps,
// in the same order, as the init stage's becomeProcess (containerinit).
static void become_process(const struct exec_config *c)
{
	// A session of our own, so the process has no controlling terminal of
	// the caller's: opening /dev/tty would reach the terminal `peapod exec`
	// was typed in, and TIOCSTI on it would type into the caller's shell.
	// The fork made us no group leader, so setsid cannot fail with EPERM.
	if (setsid() < 0)
		fail("start", "a session");
	if (c->terminal && ioctl(0, TIOCSCTTY, 0) < 0)
		fail("make stdin", "the controlling terminal");
	apply_rlimits(c);
	if (c->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("set", "no_new_privs");
	// Loading a filter needs no_new_privs or CAP_SYS_ADMIN. Without
	// no_new_privs, load it now, while we still hold every capability; with
	// it, just before execve, so it constrains our own set-up least.
	if (!c->nnp)
		load_seccomp(c);
	apply_credentials(c);
	umask(c->umask);
	enter_cwd(c->cwd);
	const char *path = find_executable(c->argv[0], env_lookup(c->envp, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	// CVE-2024-21626: nothing of the runtime's may survive into the container.
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		fail("mark", "descriptors close-on-exec");
	// The supervisor's large timer slack is inherited and kept by execve;
	// the workload gets the kernel's default back.
	if (c->timerslack != 0 && prctl(PR_SET_TIMERSLACK, c->timerslack, 0, 0, 0) < 0)
		fail("reset", "the timer slack");
	if (c->nnp)
		load_seccomp(c);
	execve(path, c->argv, c->envp);
	fail("exec", path);
}

__attribute__((constructor)) static void peapod_nsenter(void)
{
	char cmdline[4096];
	const char *mode = helper_mode(cmdline, sizeof cmdline);
	if (mode == NULL)
		return;
	// The in-namespace stages must not be ptraceable or expose /proc/self/exe
	// to the container before they execve (CVE-2016-9962, CVE-2019-5736).
	if (strcmp(mode, "init") == 0 || strcmp(mode, "exec") == 0 || strcmp(mode, "reaper") == 0)
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			fail("make", "the helper non-dumpable");
	if (strcmp(mode, "exec") != 0)
		return;
	// exec never returns into Go: without a config there is nothing to run,
	// and running anything here would be running it on the host.
	const char *config = getenv(ENV_CONFIG);
	if (config == NULL) {
		errno = EINVAL;
		fail("find", ENV_CONFIG);
	}
	static struct exec_config c;
	parse_config(&c, config);
	// Cgroups before namespaces: the paths are the host's cgroupfs.
	for (size_t i = 0; i < c.ncgroups; i++)
		join_cgroup(c.cgroups[i]);
	static struct exec_stdio io;
	if (c.pipes) {
		// Before the mount namespace changes: the host's /dev/null, as
		// exec.Cmd gives a command without stdin.
		io.null = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (io.null < 0 || pipe2(io.out, O_CLOEXEC) < 0 || pipe2(io.err, O_CLOEXEC) < 0)
			fail("create", "the exec's stdio pipes");
	}
	join_namespaces(c.target);
	fork_into_pid_namespace(c.pipes ? &io : NULL);
	become_process(&c);
}
