/*
 * ns10: a tree of 10 sleeping processes in 5 namespaces of its own (pid,
 * uts, ipc, net, mnt), for the namespace restart benchmark; and the kernel's
 * floor for making the same thing.
 *
 *   ns10             the workload. main (outside the tree) clones R with
 *                    CLONE_NEWPID|NEWUTS|NEWIPC|NEWNET|NEWNS; R is pid 1 of
 *                    its pid namespace and the root of the tree. R becomes a
 *                    session leader, sets the hostname "ns10-bench", makes
 *                    every mount private, detaches every mount but "/" and
 *                    mounts a proc of its own pid namespace on /proc (so the
 *                    mount namespace holds only what both kstate and CRIU can
 *                    take: the root, bound in again at restart, and a proc),
 *                    and execs itself again (`ns10 --tree`, internal) so that
 *                    its program and libraries are mapped through the new
 *                    namespace's mounts. Then R forks 3 children and each of
 *                    them 2 (1 + 3 + 6 = 10). Once all 10 have reported in over a pipe, main
 *                    prints
 *                      READY <host pid of R>
 *                    and waits for R. Every task of the tree closes all its
 *                    descriptors and sleeps (R reaps, as an init must).
 *   ns10 --floor PIDFILE
 *                    the kernel's floor for the same result: unshare() of the
 *                    same 5 namespaces, the fork that makes the pid namespace's
 *                    init, and its 9 forks into the same shape of tree, until
 *                    all 10 have reported in; then it writes the init's pid
 *                    to PIDFILE and exits, leaving the tree running (as
 *                    `kstate restart -d` does). Its caller times it from fork
 *                    to exit. On stderr:
 *                      FLOOR <unshare ns> <fork tree ns>
 *                    (times inside the program, after its exec).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIDS 3
#define GRANDKIDS 2
#define TOTAL (1 + KIDS + KIDS * GRANDKIDS)
#define NS_FLAGS (CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS)
#define HOSTNAME "ns10-bench"

static int ready_w = -1;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reports in, drops every descriptor and sleeps (reaping if `reap`). */
static __attribute__((noreturn)) void settle(int reap)
{
	if (write(ready_w, "r", 1) != 1)
		_exit(1);
	/* No descriptor is left: nothing for either engine to resolve. */
	if (syscall(SYS_close_range, 0U, ~0U, 0U) < 0)
		_exit(1);
	for (;;) {
		if (!reap) {
			pause();
		} else if (wait(NULL) < 0 && errno == ECHILD) {
			pause();
		}
	}
}

/* R's children and grandchildren. */
static void fork_tree(void)
{
	for (int i = 0; i < KIDS; i++) {
		pid_t c = fork();
		if (c < 0)
			_exit(1);
		if (c == 0) {
			for (int j = 0; j < GRANDKIDS; j++) {
				pid_t g = fork();
				if (g < 0)
					_exit(1);
				if (g == 0)
					settle(0);
			}
			settle(1);
		}
	}
}

static int cmp_len_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return (la < lb) - (la > lb);
}

/*
 * Detaches every mount of this (new, private) mount namespace but "/",
 * deepest first, then mounts a proc of the caller's pid namespace.
 */
static int minimal_mounts(void)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -1;
	char *points[256];
	int n = 0;
	char line[4096];
	while (n < 256 && fgets(line, sizeof line, f)) {
		/* id parent major:minor root mountpoint ... */
		char mp[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		if (strcmp(mp, "/") == 0)
			continue;
		points[n] = strdup(mp);
		if (!points[n])
			return -1;
		n++;
	}
	fclose(f);
	qsort(points, n, sizeof points[0], cmp_len_desc);
	for (int i = 0; i < n; i++) {
		/* A mount under one detached already is gone: ignore EINVAL. */
		if (umount2(points[i], MNT_DETACH) < 0 && errno != EINVAL &&
		    errno != ENOENT)
			return -1;
		free(points[i]);
	}
	return mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL);
}

static char r_stack[256 * 1024];
static const char *self_path;

static int r_main(void *arg)
{
	(void)arg;
	setsid();
	if (sethostname(HOSTNAME, strlen(HOSTNAME)) < 0)
		_exit(1);
	if (minimal_mounts() < 0)
		_exit(1);
	/*
	 * Exec again, so that the program and its libraries are mapped through
	 * the mounts of the new mount namespace (mapped before the clone, they
	 * would stay on the host's mount, which CRIU refuses: "Can't lookup
	 * mount"). The ready pipe is passed on as fd 3.
	 */
	if (dup2(ready_w, 3) < 0)
		_exit(1);
	execl(self_path, "ns10", "--tree", (char *)NULL);
	_exit(127);
}

static int workload(void)
{
	int p[2];
	if (pipe(p) < 0)
		return 1;
	ready_w = p[1];
	pid_t r = clone(r_main, r_stack + sizeof r_stack,
			CLONE_NEWPID | NS_FLAGS | SIGCHLD, NULL);
	if (r < 0) {
		perror("ns10: clone");
		return 1;
	}
	close(p[1]);
	char buf[TOTAL];
	int got = 0;
	while (got < TOTAL) {
		ssize_t k = read(p[0], buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "ns10: the tree died after %d of %d\n",
				got, TOTAL);
			kill(r, SIGKILL);
			return 1;
		}
		got += (int)k;
	}
	close(p[0]);
	printf("READY %d\n", (int)r);
	fflush(stdout);
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 1);
		close(fd);
	}
	int st;
	while (waitpid(r, &st, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static int floor_mode(const char *pidfile)
{
	int p[2];
	if (pipe(p) < 0)
		return 1;
	ready_w = p[1];
	long long t0 = now_ns();
	if (unshare(CLONE_NEWPID | NS_FLAGS) < 0) {
		perror("ns10 --floor: unshare");
		return 1;
	}
	long long t1 = now_ns();
	pid_t init = fork();
	if (init < 0) {
		perror("ns10 --floor: fork");
		return 1;
	}
	if (init == 0) {
		close(p[0]);
		fork_tree();
		settle(1);
	}
	close(p[1]);
	char buf[TOTAL];
	int got = 0;
	while (got < TOTAL) {
		ssize_t k = read(p[0], buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "ns10 --floor: the tree died after %d of %d\n",
				got, TOTAL);
			kill(init, SIGKILL);
			return 1;
		}
		got += (int)k;
	}
	long long t2 = now_ns();
	FILE *f = fopen(pidfile, "we");
	if (!f || fprintf(f, "%d\n", (int)init) < 0 || fclose(f) != 0) {
		perror(pidfile);
		kill(init, SIGKILL);
		return 1;
	}
	fprintf(stderr, "FLOOR %lld %lld\n", t1 - t0, t2 - t1);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--floor") == 0)
		return floor_mode(argv[2]);
	if (argc == 2 && strcmp(argv[1], "--tree") == 0) {
		/* R after its exec (internal): the ready pipe is fd 3. */
		ready_w = 3;
		fork_tree();
		settle(1);
	}
	self_path = realpath("/proc/self/exe", NULL);
	if (!self_path) {
		perror("ns10: realpath(/proc/self/exe)");
		return 1;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: ns10 | ns10 --floor PIDFILE\n");
		return 2;
	}
	return workload();
}
