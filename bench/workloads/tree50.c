/*
 * tree50: a tree of 50 sleeping processes in 3 generations, for the
 * checkpoint/restart benchmark.
 *
 *   tree50           the workload: the root (a session leader) forks 7
 *                    children, each forks 6 grandchildren (1 + 7 + 42 = 50);
 *                    once all 49 have reported in (a pipe, which every task
 *                    closes before it sleeps), the root prints
 *                      READY <pid>
 *                    and every task sleeps in pause() with stdin, stdout and
 *                    stderr on /dev/null.
 *   tree50 --floor N the kernel's floor for the same tree: N times, build it
 *                    exactly as above (until every task has closed the pipe),
 *                    then SIGKILL all 49 and reap them (the caller is their
 *                    subreaper); prints one line per round:
 *                      FLOOR <build ns> <kill+reap ns>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GEN1 7
#define GEN2 6
#define TOTAL (1 + GEN1 + GEN1 * GEN2)

static void sleep_forever(int w)
{
	if (write(w, "x", 1) != 1)
		_exit(1);
	close(w);
	for (;;)
		pause();
}

/*
 * Forks the 49 descendants of the caller (each closes `other` if >= 0);
 * returns how many reported in.
 */
static int build(int r, int w, int other, pid_t *gen1)
{
	for (int i = 0; i < GEN1; i++) {
		pid_t c = fork();
		if (c < 0) {
			gen1[i] = 0;
			continue;
		}
		if (c == 0) {
			close(r);
			if (other >= 0)
				close(other);
			for (int j = 0; j < GEN2; j++) {
				pid_t g = fork();
				if (g < 0)
					_exit(1);
				if (g == 0)
					sleep_forever(w);
			}
			sleep_forever(w);
		}
		gen1[i] = c;
	}
	close(w);
	/* EOF once every task has written its byte and closed the pipe. */
	int n = 0;
	char buf[64];
	for (;;) {
		ssize_t k = read(r, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (int)k;
	}
	close(r);
	return n;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SIGKILLs the 49 descendants (gen1's children from /proc, then gen1). */
static void kill_tree(const pid_t *gen1)
{
	for (int i = 0; i < GEN1; i++) {
		char path[64], list[512];
		if (gen1[i] <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%d/children", gen1[i],
			 gen1[i]);
		int fd = open(path, O_RDONLY);
		if (fd >= 0) {
			ssize_t l = read(fd, list, sizeof list - 1);
			close(fd);
			list[l > 0 ? l : 0] = 0;
			char *s = list, *e;
			for (;;) {
				long pid = strtol(s, &e, 10);
				if (e == s)
					break;
				kill((pid_t)pid, SIGKILL);
				s = e;
			}
		}
		kill(gen1[i], SIGKILL);
	}
}

static int floor_mode(int rounds)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	for (int k = 0; k < rounds; k++) {
		int p[2];
		pid_t gen1[GEN1];
		if (pipe2(p, O_CLOEXEC) < 0)
			return 1;
		long long t0 = now_ns();
		int n = build(p[0], p[1], -1, gen1);
		long long t1 = now_ns();
		if (n != TOTAL - 1) {
			fprintf(stderr, "tree50: %d of %d tasks reported\n", n, TOTAL - 1);
			kill_tree(gen1);
			while (wait(NULL) > 0)
				;
			return 1;
		}
		kill_tree(gen1);
		int reaped = 0;
		while (wait(NULL) > 0)
			reaped++;
		long long t2 = now_ns();
		if (reaped != TOTAL - 1) {
			fprintf(stderr, "tree50: reaped %d of %d\n", reaped, TOTAL - 1);
			return 1;
		}
		printf("FLOOR %lld %lld\n", t1 - t0, t2 - t1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && strcmp(argv[1], "--floor") == 0)
		return floor_mode(atoi(argv[2]));
	setsid();
	int out = dup(1);
	int nul = open("/dev/null", O_RDWR);
	if (out < 0 || nul < 0)
		return 1;
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (nul > 2)
		close(nul);
	int p[2];
	pid_t gen1[GEN1];
	if (pipe(p) < 0)
		return 1;
	int n = build(p[0], p[1], out, gen1);
	if (n != TOTAL - 1) {
		dprintf(out, "FAILED %d of %d tasks reported\n", n, TOTAL - 1);
		kill(0, SIGKILL);
		return 1;
	}
	dprintf(out, "READY %d\n", (int)getpid());
	close(out);
	for (;;)
		pause();
}
