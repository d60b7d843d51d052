/*
 * msgcache.c - the in-memory cache of immutable message parts (msgcache.h).
 *
 * 16 shards by key hash, each with a mutex, a chained hash table that
 * doubles when it gets full, an LRU list and a byte count. An entry is one
 * allocation (the struct, then the strings and bytes); the cache holds one
 * reference while the entry is linked, each reader another, and the last
 * release frees it. Budget per shard = cache.message_bytes / 16.
 */
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "groupware/msgcache.h"
#include "server/core/metrics.h"
#include "server/core/util.h"

#define MC_SHARDS 16
#define MC_OVERHEAD 160   /* bytes counted per entry besides its data */

struct mc_node {
	struct mc_entry e;           /* must stay first */
	atomic_int refs;
	bool linked;
	size_t cost;
	struct mc_node *hnext;
	struct mc_node *prev, *next; /* LRU: head = most recent */
};

struct mc_shard {
	pthread_mutex_t lock;
	struct mc_node **buckets;
	size_t n_buckets, n_entries;
	size_t bytes;
	struct mc_node *head, *tail;
};

static struct mc_shard mc_shards[MC_SHARDS];
static _Atomic int64_t mc_budget;      /* per shard */
static atomic_llong mc_hits, mc_misses;
static pthread_once_t mc_once = PTHREAD_ONCE_INIT;

static int64_t mc_gauge_bytes(void *ctx)
{
	int64_t b;

	(void)ctx;
	mc_stats(&b, NULL, NULL, NULL);
	return b;
}

static int64_t mc_gauge_hits(void *ctx)
{
	(void)ctx;
	return atomic_load(&mc_hits);
}

static int64_t mc_gauge_misses(void *ctx)
{
	(void)ctx;
	return atomic_load(&mc_misses);
}

static void mc_init(void)
{
	for (size_t i = 0; i < MC_SHARDS; i++)
		pthread_mutex_init(&mc_shards[i].lock, NULL);
	bu_metric_gauge_fn_register("bureau_message_cache_bytes", mc_gauge_bytes, NULL);
	bu_metric_gauge_fn_register("bureau_message_cache_hits", mc_gauge_hits, NULL);
	bu_metric_gauge_fn_register("bureau_message_cache_misses", mc_gauge_misses, NULL);
}

static uint64_t mc_hash(int64_t account_id, int64_t collection_id, uint32_t uid)
{
	uint64_t h = (uint64_t)account_id * 0x9e3779b97f4a7c15ULL;

	h ^= (uint64_t)collection_id * 0xc2b2ae3d27d4eb4fULL;
	h ^= (uint64_t)uid * 0x165667b19e3779f9ULL;
	h ^= h >> 29;
	return h;
}

static struct mc_shard *mc_shard_of(uint64_t h)
{
	return &mc_shards[(h >> 56) % MC_SHARDS];
}

static bool mc_key_is(const struct mc_node *n, int64_t a, int64_t c, uint32_t uid)
{
	return n->e.f.uid == uid && n->e.collection_id == c && n->e.account_id == a;
}

static void mc_unref(struct mc_node *n)
{
	if (atomic_fetch_sub(&n->refs, 1) == 1)
		free(n);
}

static void lru_unlink(struct mc_shard *s, struct mc_node *n)
{
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		s->head = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		s->tail = n->prev;
	n->prev = n->next = NULL;
}

static void lru_push_front(struct mc_shard *s, struct mc_node *n)
{
	n->prev = NULL;
	n->next = s->head;
	if (s->head != NULL)
		s->head->prev = n;
	s->head = n;
	if (s->tail == NULL)
		s->tail = n;
}

/* unlink n from the table and the list; the caller drops the reference */
static void mc_remove(struct mc_shard *s, struct mc_node *n)
{
	uint64_t h = mc_hash(n->e.account_id, n->e.collection_id, n->e.f.uid);
	struct mc_node **pp = &s->buckets[h % s->n_buckets];

	while (*pp != NULL && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp == n)
		*pp = n->hnext;
	lru_unlink(s, n);
	n->linked = false;
	s->n_entries--;
	s->bytes -= n->cost;
}

static void mc_grow(struct mc_shard *s)
{
	size_t nb = s->n_buckets == 0 ? 256 : s->n_buckets * 2;
	struct mc_node **b = bu_calloc(nb, sizeof(*b));

	for (size_t i = 0; i < s->n_buckets; i++) {
		struct mc_node *n = s->buckets[i], *next;

		for (; n != NULL; n = next) {
			uint64_t h = mc_hash(n->e.account_id, n->e.collection_id, n->e.f.uid);

			next = n->hnext;
			n->hnext = b[h % nb];
			b[h % nb] = n;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->n_buckets = nb;
}

void mc_configure(int64_t max_bytes)
{
	pthread_once(&mc_once, mc_init);
	atomic_store(&mc_budget, max_bytes > 0 ? max_bytes / MC_SHARDS : 0);
	for (size_t i = 0; i < MC_SHARDS; i++) {
		struct mc_shard *s = &mc_shards[i];

		pthread_mutex_lock(&s->lock);
		while (s->head != NULL) {
			struct mc_node *n = s->head;

			mc_remove(s, n);
			mc_unref(n);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

bool mc_enabled(void)
{
	return atomic_load(&mc_budget) > 0;
}

struct mc_entry *mc_get(int64_t account_id, int64_t collection_id, uint32_t uid)
{
	uint64_t h;
	struct mc_shard *s;
	struct mc_node *n;

	if (!mc_enabled())
		return NULL;
	h = mc_hash(account_id, collection_id, uid);
	s = mc_shard_of(h);
	pthread_mutex_lock(&s->lock);
	n = s->n_buckets > 0 ? s->buckets[h % s->n_buckets] : NULL;
	while (n != NULL && !mc_key_is(n, account_id, collection_id, uid))
		n = n->hnext;
	if (n != NULL) {
		atomic_fetch_add(&n->refs, 1);
		if (s->head != n) {
			lru_unlink(s, n);
			lru_push_front(s, n);
		}
	}
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(n != NULL ? &mc_hits : &mc_misses, 1);
	return n != NULL ? &n->e : NULL;
}

void mc_release(struct mc_entry *e)
{
	if (e != NULL)
		mc_unref((struct mc_node *)e);
}

static char *mc_copy(char **p, const char *src, size_t len)
{
	char *d = *p;

	if (len > 0)
		memcpy(d, src, len);
	d[len] = '\0';
	*p += len + 1;
	return d;
}

void mc_put(int64_t account_id, int64_t collection_id, const struct ms_fetch *f)
{
	int64_t budget = atomic_load(&mc_budget);
	size_t le, lt, lp, data, cost;
	struct mc_node *n, *old;
	struct mc_shard *s;
	uint64_t h;
	char *p;

	if (budget <= 0 || f->raw == NULL || f->structure == NULL)
		return;
	le = f->emailid != NULL ? strlen(f->emailid) : 0;
	lt = f->threadid != NULL ? strlen(f->threadid) : 0;
	lp = f->preview != NULL ? strlen(f->preview) : 0;
	data = f->raw_len + 1 + f->structure_len + 1 + le + 1 + lt + 1 + lp + 1;
	cost = sizeof(*n) + data + MC_OVERHEAD;
	if ((int64_t)cost > budget / 4)    /* a sixty-fourth of the whole */
		return;
	n = bu_malloc(sizeof(*n) + data);
	memset(n, 0, sizeof(*n));
	p = (char *)(n + 1);
	n->e.account_id = account_id;
	n->e.collection_id = collection_id;
	n->e.f.uid = f->uid;
	n->e.f.internaldate = f->internaldate;
	n->e.f.savedate = f->savedate;
	n->e.f.size = f->size;
	n->e.f.raw = (uint8_t *)mc_copy(&p, (const char *)f->raw, f->raw_len);
	n->e.f.raw_len = f->raw_len;
	n->e.f.structure = mc_copy(&p, f->structure, f->structure_len);
	n->e.f.structure_len = f->structure_len;
	n->e.f.emailid = mc_copy(&p, f->emailid, le);
	n->e.f.threadid = mc_copy(&p, f->threadid, lt);
	n->e.f.preview = mc_copy(&p, f->preview, lp);
	n->cost = cost;
	atomic_init(&n->refs, 1);

	h = mc_hash(account_id, collection_id, f->uid);
	s = mc_shard_of(h);
	pthread_mutex_lock(&s->lock);
	old = s->n_buckets > 0 ? s->buckets[h % s->n_buckets] : NULL;
	while (old != NULL && !mc_key_is(old, account_id, collection_id, f->uid))
		old = old->hnext;
	if (old != NULL) {
		/* the same immutable content: keep the one we have */
		pthread_mutex_unlock(&s->lock);
		free(n);
		return;
	}
	while (s->tail != NULL && (int64_t)(s->bytes + cost) > budget) {
		struct mc_node *victim = s->tail;

		mc_remove(s, victim);
		mc_unref(victim);
	}
	if (s->n_entries + 1 > s->n_buckets)
		mc_grow(s);
	n->hnext = s->buckets[h % s->n_buckets];
	s->buckets[h % s->n_buckets] = n;
	lru_push_front(s, n);
	n->linked = true;
	s->n_entries++;
	s->bytes += cost;
	pthread_mutex_unlock(&s->lock);
}

void mc_stats(int64_t *bytes_r, int64_t *entries_r, int64_t *hits_r, int64_t *misses_r)
{
	int64_t bytes = 0, entries = 0;

	for (size_t i = 0; i < MC_SHARDS; i++) {
		struct mc_shard *s = &mc_shards[i];

		pthread_mutex_lock(&s->lock);
		bytes += (int64_t)s->bytes;
		entries += (int64_t)s->n_entries;
		pthread_mutex_unlock(&s->lock);
	}
	if (bytes_r != NULL)
		*bytes_r = bytes;
	if (entries_r != NULL)
		*entries_r = entries;
	if (hits_r != NULL)
		*hits_r = atomic_load(&mc_hits);
	if (misses_r != NULL)
		*misses_r = atomic_load(&mc_misses);
}
