/*
 * fuzz_config.c - libFuzzer target for the bureau.conf parser.
 *
 * The input is loaded as a configuration file (through a memfd, so no temp
 * files pile up).  When it loads, the result is written back as a sample,
 * loaded again and written again: both samples must be identical, which
 * checks that every value the parser accepts is written in a form that
 * reads back the same (quoting, escapes, size suffixes).
 */
#include "server/core/config.h"
#include "server/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static int memfd_with(const void *data, size_t size)
{
	int fd = memfd_create("bureau.conf", MFD_CLOEXEC);
	const uint8_t *p = data;

	if (fd < 0)
		abort();
	while (size > 0) {
		ssize_t r = write(fd, p, size);

		if (r <= 0)
			abort();
		p += r;
		size -= (size_t)r;
	}
	return fd;
}

static char *fd_contents(int fd, size_t *len_r)
{
	struct bu_buf b;
	char chunk[4096];
	ssize_t r;
	off_t off = 0;

	bu_buf_init(&b, 0);
	while ((r = pread(fd, chunk, sizeof(chunk), off)) > 0) {
		(void)bu_buf_append(&b, chunk, (size_t)r);
		off += r;
	}
	return bu_buf_steal(&b, len_r);
}

/* write cfg as a sample into a new memfd; returns the fd */
static int sample_of(const struct bu_config *cfg, char *path, size_t pathsz)
{
	int fd = memfd_with("", 0);

	snprintf(path, pathsz, "/proc/self/fd/%d", fd);
	if (bu_config_write_sample(path, cfg) < 0)
		abort();
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	bu_log_set_level(BU_LOG_FATAL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bu_config cfg, again;
	const char *error = NULL;
	char path[64], path1[64], path2[64];
	char *s1, *s2;
	size_t l1, l2;
	int fd, fd1, fd2;

	fd = memfd_with(data, size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	bu_config_defaults(&cfg);
	if (bu_config_load(&cfg, path, &error) < 0) {
		/* errors always name the file */
		if (error == NULL || strncmp(error, path, strlen(path)) != 0)
			abort();
		bu_config_free(&cfg);
		close(fd);
		return 0;
	}
	close(fd);

	fd1 = sample_of(&cfg, path1, sizeof(path1));
	bu_config_defaults(&again);
	if (bu_config_load(&again, path1, &error) < 0) {
		fprintf(stderr, "sample does not load back: %s\n", error);
		abort();
	}
	fd2 = sample_of(&again, path2, sizeof(path2));
	s1 = fd_contents(fd1, &l1);
	s2 = fd_contents(fd2, &l2);
	if (l1 != l2 || memcmp(s1, s2, l1) != 0) {
		fprintf(stderr, "sample round trip differs:\n%s\n----\n%s\n", s1, s2);
		abort();
	}
	free(s1);
	free(s2);
	close(fd1);
	close(fd2);
	bu_config_free(&cfg);
	bu_config_free(&again);
	return 0;
}
