/*
 * test_msgcache.c - the cache of immutable message parts: hits return what
 * was put, keys do not mix, the budget holds, a reader's entry outlives
 * its eviction, and a disabled cache keeps nothing. Threads put and get
 * at once (run under ASan/TSan to see races and use-after-free).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/msgcache.h"

static int checks, failures;

#define CHECK(expr)                                                           \
	do {                                                                  \
		checks++;                                                     \
		if (!(expr)) {                                                \
			failures++;                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #expr);                             \
		}                                                             \
	} while (0)

static struct ms_fetch msg(uint32_t uid, size_t len, char fill)
{
	static char buf[8][1 << 16];
	static int next;
	char *raw = buf[next++ % 8];
	struct ms_fetch f;

	memset(&f, 0, sizeof(f));
	memset(raw, fill, len);
	f.uid = uid;
	f.size = (int64_t)len;
	f.internaldate = 1700000000 + uid;
	f.savedate = 1700000100;
	f.emailid = "Mabc";
	f.threadid = "Tdef";
	f.preview = NULL;
	f.structure = "M1-tree";
	f.structure_len = 7;
	f.raw = (const uint8_t *)raw;
	f.raw_len = len;
	return f;
}

static void test_basic(void)
{
	struct ms_fetch f = msg(7, 1000, 'x');
	struct mc_entry *e;

	mc_configure(16 * 1024 * 1024);
	CHECK(mc_enabled());
	CHECK(mc_get(1, 2, 7) == NULL);
	mc_put(1, 2, &f);
	e = mc_get(1, 2, 7);
	CHECK(e != NULL);
	if (e != NULL) {
		CHECK(e->f.uid == 7 && e->account_id == 1 && e->collection_id == 2);
		CHECK(e->f.raw_len == 1000 && e->f.raw[0] == 'x' && e->f.raw[999] == 'x');
		CHECK(e->f.structure_len == 7 && memcmp(e->f.structure, "M1-tree", 7) == 0);
		CHECK(strcmp(e->f.emailid, "Mabc") == 0 && strcmp(e->f.threadid, "Tdef") == 0);
		CHECK(strcmp(e->f.preview, "") == 0);
		CHECK(e->f.internaldate == 1700000007 && e->f.savedate == 1700000100 && e->f.size == 1000);
		mc_release(e);
	}
	/* other folder, other account, other UID: misses */
	CHECK(mc_get(1, 3, 7) == NULL);
	CHECK(mc_get(2, 2, 7) == NULL);
	CHECK(mc_get(1, 2, 8) == NULL);
	/* without raw bytes or structure nothing is kept */
	f = msg(9, 10, 'y');
	f.raw = NULL;
	mc_put(1, 2, &f);
	CHECK(mc_get(1, 2, 9) == NULL);
	/* too big for the budget: not kept */
	mc_configure(64 * 1024);
	f = msg(10, 60000, 'z');
	mc_put(1, 2, &f);
	CHECK(mc_get(1, 2, 10) == NULL);
}

static void test_budget_and_eviction(void)
{
	int64_t bytes, entries, hits0, hits1;
	struct mc_entry *held = NULL;

	mc_configure(4 * 1024 * 1024);      /* 256 KiB per shard */
	for (uint32_t uid = 1; uid <= 2000; uid++) {
		struct ms_fetch f = msg(uid, 10000, (char)('a' + uid % 26));

		mc_put(5, 6, &f);
		if (uid == 1) {
			held = mc_get(5, 6, 1);
			CHECK(held != NULL);
		}
	}
	mc_stats(&bytes, &entries, &hits0, NULL);
	CHECK(bytes <= 4 * 1024 * 1024);
	CHECK(entries > 100 && entries < 2000);
	/* the oldest are gone, the newest are there */
	CHECK(mc_get(5, 6, 1) == NULL);
	{
		struct mc_entry *e = mc_get(5, 6, 2000);

		CHECK(e != NULL && e->f.raw[0] == (char)('a' + 2000 % 26));
		mc_release(e);
	}
	/* the evicted entry a reader holds is still whole */
	CHECK(held != NULL && held->f.uid == 1 && held->f.raw_len == 10000 && held->f.raw[9999] == 'b');
	mc_release(held);
	mc_stats(NULL, NULL, &hits1, NULL);
	CHECK(hits1 == hits0 + 1);

	/* recently used entries survive: touch uid 2000 while filling more */
	for (uint32_t uid = 3000; uid < 5000; uid++) {
		struct ms_fetch f = msg(uid, 10000, 'q');
		struct mc_entry *e = mc_get(5, 6, 2000);

		CHECK(e != NULL);
		mc_release(e);
		mc_put(5, 6, &f);
	}
	mc_configure(0);
	CHECK(!mc_enabled());
	CHECK(mc_get(5, 6, 2000) == NULL);
	mc_stats(&bytes, &entries, NULL, NULL);
	CHECK(bytes == 0 && entries == 0);
}

static void *hammer(void *arg)
{
	uintptr_t t = (uintptr_t)arg;

	for (uint32_t i = 0; i < 20000; i++) {
		uint32_t uid = (uint32_t)((i * 7919u + t * 104729u) % 3000u) + 1;
		struct mc_entry *e = mc_get(9, 9, uid);

		if (e != NULL) {
			if (e->f.uid != uid || e->f.raw_len != 3000 || e->f.raw[2999] != (char)('a' + uid % 26))
				__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
			mc_release(e);
		} else {
			/* msg() shares static buffers: build our own */
			struct ms_fetch f;
			char *raw = malloc(3000);

			memset(&f, 0, sizeof(f));
			memset(raw, 'a' + uid % 26, 3000);
			f.uid = uid;
			f.structure = "M1";
			f.structure_len = 2;
			f.raw = (const uint8_t *)raw;
			f.raw_len = 3000;
			mc_put(9, 9, &f);
			free(raw);
		}
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[4];

	mc_configure(2 * 1024 * 1024);
	for (uintptr_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, (void *)i);
	for (size_t i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	checks++;
	mc_configure(0);
}

int main(void)
{
	test_basic();
	test_budget_and_eviction();
	test_threads();
	printf("test_msgcache: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
