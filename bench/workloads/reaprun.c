/*
 * reaprun: runs a command under a child subreaper and times it.
 *
 *   reaprun PROGRAM [ARGS...]
 *
 * Sets PR_SET_CHILD_SUBREAPER, runs PROGRAM as its child and waits for it;
 * then prints
 *   DONE <wait status> <ns from fork to its end>
 * on stdout and goes on reaping every descendant that ends (a tree that
 * PROGRAM restored and left running, as `kstate restart -d` and
 * `criu restore -d` do, is reparented here), at once, so its pids are free
 * again without waiting for the machine's PID 1. Exits 0 when it has no
 * child left. Used by the benchmark to time a detached restore.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: reaprun PROGRAM [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	long long t0 = now_ns();
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		execvp(argv[1], argv + 1);
		perror("exec");
		_exit(127);
	}
	int st;
	while (waitpid(child, &st, 0) < 0) {
		if (errno != EINTR) {
			perror("waitpid");
			return 1;
		}
	}
	long long t1 = now_ns();
	printf("DONE %d %lld\n", st, t1 - t0);
	fflush(stdout);
	for (;;) {
		if (wait(NULL) < 0 && errno == ECHILD)
			return 0;
	}
}
