// The constructor behind package nsenter; see nsenter.go for why it exists.
// It runs before the Go runtime, so it must stay plain, single-threaded C.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define ENV_CONFIG "_PEAPOD_NSENTER"
#define ENV_JOINED "_PEAPOD_NSENTER_JOINED"
#define EXIT_CANNOT_EXEC 126

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

static volatile sig_atomic_t forward_to;

static void fail(const char *verb, const char *object)
{
	fprintf(stderr, "peapod exec: failed to %s %s: %s\n", verb, object, strerror(errno));
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

static void join_cgroup(const char *procs)
{
	// "0" means the writer; we are still one thread, so nothing is left behind.
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		fail("join cgroup", procs);
	close(fd);
}

// apply_config joins each "cgroup=" line's cgroup and returns the "pid=" line's pid.
static pid_t apply_config(const char *config)
{
	char *copy = strdup(config), *save = NULL, *end;
	pid_t target = 0;
	if (copy == NULL)
		fail("copy", ENV_CONFIG);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "cgroup=", 7) == 0) {
			join_cgroup(line + 7);
		} else if (strncmp(line, "pid=", 4) == 0) {
			errno = 0;
			long pid = strtol(line + 4, &end, 10);
			if (errno != 0 || *end != '\0' || pid <= 0 || pid != (pid_t)pid) {
				errno = EINVAL;
				fail("parse target", line);
			}
			target = (pid_t)pid;
		} else {
			errno = EINVAL;
			fail("parse " ENV_CONFIG " line", line);
		}
	}
	free(copy);
	if (target == 0) {
		errno = EINVAL;
		fail("find the target pid in", ENV_CONFIG);
	}
	return target;
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

// wait_and_exit makes the parent mirror the child: forward the signals a
// terminal or a supervisor sends, then exit with the child's status.
static void wait_and_exit(pid_t child, const sigset_t *restore)
{
	static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa;
	int status;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	forward_to = child;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		if (sigaction(forwarded[i], &sa, NULL) < 0)
			fail("install", "signal forwarding");
	sigprocmask(SIG_SETMASK, restore, NULL);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			fail("wait for", "the exec child");
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}

// fork_into_pid_namespace forks because setns(CLONE_NEWPID) only moves our
// future children. It returns in the child only.
static void fork_into_pid_namespace(void)
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
	if (child > 0)
		wait_and_exit(child, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	// A killed exec (a probe's timeout) must not leave its process behind.
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		fail("set", "parent death signal");
	// getppid() is 0 while the parent lives outside our pid namespace, and
	// is the parent's pid otherwise; any other value means it already died.
	pid_t ppid = getppid();
	if (ppid != 0 && ppid != parent)
		_exit(EXIT_CANNOT_EXEC);
}

// mark_joined tells containerinit.ExecMain that the joins happened. It writes into the
// variable's original string because the Go runtime reads the environment
// from the initial envp, not through libc's environ: setenv() is invisible.
static void mark_joined(void)
{
	char *joined = getenv(ENV_JOINED);
	if (joined != NULL && strcmp(joined, "0") == 0)
		joined[0] = '1';
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
	const char *config = getenv(ENV_CONFIG);
	if (config == NULL || strcmp(mode, "exec") != 0)
		return;
	// Cgroups before namespaces: the paths are the host's cgroupfs.
	pid_t target = apply_config(config);
	join_namespaces(target);
	fork_into_pid_namespace();
	mark_joined();
}
