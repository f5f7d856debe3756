/*
 * phaserun: reaprun (see reaprun.c) that also says when, by the wall clock,
 * it forked the program, so that a log stamped by the wall clock (env_logger)
 * can be cut into phases counted from that fork.
 *
 *   phaserun PROGRAM [ARGS...]
 *
 * Sets PR_SET_CHILD_SUBREAPER, runs PROGRAM as its child and waits for it;
 * then prints
 *   DONE <wait status> <ns from fork to its end> <CLOCK_REALTIME ns at fork>
 * on stdout and goes on reaping every descendant that ends, at once. Exits 0
 * when it has no child left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns_of(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: phaserun PROGRAM [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 1;
	}
	long long wall = ns_of(CLOCK_REALTIME);
	long long t0 = ns_of(CLOCK_MONOTONIC);
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
	long long t1 = ns_of(CLOCK_MONOTONIC);
	printf("DONE %d %lld %lld\n", st, t1 - t0, wall);
	fflush(stdout);
	for (;;) {
		if (wait(NULL) < 0 && errno == ECHILD)
			return 0;
	}
}
