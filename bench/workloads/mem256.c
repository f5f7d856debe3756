/*
 * mem256: one process holding MiB of private anonymous memory filled with
 * pseudo-random (xorshift64) data, for the checkpoint/restart benchmark.
 *
 *   mem256 [MiB]      (default 256)
 *
 * Becomes a session leader, fills the mapping, points stdin/stdout/stderr at
 * /dev/null after printing
 *   READY <pid> <addr hex> <len>
 * and then sleeps in pause() forever.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long mib = 256;
	if (argc > 1) {
		char *end;
		errno = 0;
		mib = strtoul(argv[1], &end, 10);
		if (errno || *end || mib == 0 || mib > (1UL << 20)) {
			fprintf(stderr, "mem256: bad size %s (MiB)\n", argv[1]);
			return 2;
		}
	}
	setsid();
	size_t len = mib << 20;
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mem256: mmap: %s\n", strerror(errno));
		return 1;
	}
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x;
	}
	printf("READY %d %" PRIxPTR " %zu\n", (int)getpid(), (uintptr_t)p, len);
	if (fflush(stdout) != 0)
		return 1;
	int nul = open("/dev/null", O_RDWR);
	if (nul < 0)
		return 1;
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(nul, 2);
	if (nul > 2)
		close(nul);
	for (;;)
		pause();
}
