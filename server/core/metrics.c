/*
 * metrics.c - process-wide counters, gauges and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Series live in one array sorted by (metric name, series), behind one
 * mutex; lookups are a binary search.  Series are never removed, so the
 * structs (and their strings) stay put and rendering can snapshot them,
 * drop the lock and only then call the gauge callbacks: a callback may
 * itself touch metrics without deadlocking.
 *
 * Kinds: bu_metric_add() creates a counter, bu_metric_set() a gauge (it also
 * turns an existing counter into a gauge, and bu_metric_add() on a gauge
 * moves it up or down), bu_metric_observe() a histogram and
 * bu_metric_gauge_fn_register() a gauge computed at scrape time.  Label
 * values are the caller's business: pass only fixed strings (protocol,
 * command name, result), never client input.
 */
#include "metrics.h"
#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_kind { METRIC_COUNTER, METRIC_GAUGE, METRIC_GAUGE_FN, METRIC_HISTOGRAM };

static const double hist_bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };
#define HIST_BUCKETS (BU_N_ELEMENTS(hist_bounds) + 1) /* + Inf */
static const char *const hist_le[HIST_BUCKETS] = { "0.001", "0.005", "0.01", "0.05", "0.1",
						   "0.5",   "1",     "5",    "+Inf" };

struct series {
	char *series; /* full series: name{labels} */
	char *name;   /* metric name: series up to '{' */
	char *labels; /* between the braces, "" if none (histograms) */
	enum metric_kind kind;
	int64_t value;
	bu_metric_gauge_fn *fn;
	void *fn_ctx;
	uint64_t buckets[HIST_BUCKETS]; /* not cumulative */
	uint64_t count;
	double sum;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series **all; /* sorted by (name, series) */
static size_t all_count, all_cap;

/* ---- lookup ------------------------------------------------------------ */

static int cmp_key(const char *name, size_t name_len, const char *series, const struct series *s)
{
	size_t slen = strlen(s->name);
	int c = memcmp(name, s->name, name_len < slen ? name_len : slen);

	if (c != 0)
		return c;
	if (name_len != slen)
		return name_len < slen ? -1 : 1;
	return strcmp(series, s->series);
}

/* index of series, or where it would be inserted (*found_r false) */
static size_t find(const char *series, size_t name_len, bool *found_r)
{
	size_t lo = 0, hi = all_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_key(series, name_len, series, all[mid]);

		if (c == 0) {
			*found_r = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found_r = false;
	return lo;
}

/* find or create the series; caller holds metrics_lock */
static struct series *get(const char *series, enum metric_kind kind)
{
	size_t name_len = strcspn(series, "{");
	struct series *s;
	bool found;
	size_t i = find(series, name_len, &found);

	if (found)
		return all[i];
	if (all_count == all_cap) {
		all_cap = all_cap ? all_cap * 2 : 64;
		all = bu_realloc(all, bu_size_mul(all_cap, sizeof(struct series *)));
	}
	s = bu_malloc(sizeof(*s));
	s->series = bu_strdup(series);
	s->name = bu_strndup(series, name_len);
	if (series[name_len] == '{') {
		const char *l = series + name_len + 1;
		size_t llen = strlen(l);

		s->labels = bu_strndup(l, llen > 0 && l[llen - 1] == '}' ? llen - 1 : llen);
	} else {
		s->labels = bu_strdup("");
	}
	s->kind = kind;
	memmove(all + i + 1, all + i, (all_count - i) * sizeof(struct series *));
	all[i] = s;
	all_count++;
	return s;
}

static bool kind_ok(struct series *s, enum metric_kind want)
{
	bool hist = s->kind == METRIC_HISTOGRAM;

	if (hist == (want == METRIC_HISTOGRAM))
		return true;
	bu_warn("event=metric_kind_mismatch series=%s", bu_log_q(s->series));
	return false;
}

/* ---- updates ----------------------------------------------------------- */

void bu_metric_add(const char *series, int64_t n)
{
	struct series *s;

	pthread_mutex_lock(&metrics_lock);
	s = get(series, METRIC_COUNTER);
	if (kind_ok(s, METRIC_COUNTER) && s->kind != METRIC_GAUGE_FN)
		s->value += n;
	pthread_mutex_unlock(&metrics_lock);
}

void bu_metric_set(const char *series, int64_t v)
{
	struct series *s;

	pthread_mutex_lock(&metrics_lock);
	s = get(series, METRIC_GAUGE);
	if (kind_ok(s, METRIC_GAUGE) && s->kind != METRIC_GAUGE_FN) {
		s->kind = METRIC_GAUGE;
		s->value = v;
	}
	pthread_mutex_unlock(&metrics_lock);
}

void bu_metric_observe(const char *name, const char *labels, double seconds)
{
	char buf[512];
	struct series *s;
	size_t i;
	int n;

	if (labels != NULL && labels[0] != '\0')
		n = snprintf(buf, sizeof(buf), "%s{%s}", name, labels);
	else
		n = snprintf(buf, sizeof(buf), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		bu_warn("event=metric_name_too_long name=%s", bu_log_q(name));
		return;
	}
	if (!(seconds >= 0))
		seconds = 0; /* also catches NaN */
	for (i = 0; i < BU_N_ELEMENTS(hist_bounds); i++) {
		if (seconds <= hist_bounds[i])
			break;
	}
	pthread_mutex_lock(&metrics_lock);
	s = get(buf, METRIC_HISTOGRAM);
	if (kind_ok(s, METRIC_HISTOGRAM)) {
		s->buckets[i]++;
		s->count++;
		s->sum += seconds;
	}
	pthread_mutex_unlock(&metrics_lock);
}

void bu_metric_gauge_fn_register(const char *series, bu_metric_gauge_fn *fn, void *ctx)
{
	struct series *s;

	pthread_mutex_lock(&metrics_lock);
	s = get(series, METRIC_GAUGE_FN);
	if (kind_ok(s, METRIC_GAUGE_FN)) {
		s->kind = METRIC_GAUGE_FN;
		s->fn = fn;
		s->fn_ctx = ctx;
	}
	pthread_mutex_unlock(&metrics_lock);
}

/* ---- rendering --------------------------------------------------------- */

static const char *kind_name(enum metric_kind k)
{
	switch (k) {
	case METRIC_COUNTER:
		return "counter";
	case METRIC_GAUGE:
	case METRIC_GAUGE_FN:
		return "gauge";
	case METRIC_HISTOGRAM:
		return "histogram";
	}
	return "untyped";
}

static void render_histogram(struct bu_buf *out, const struct series *s)
{
	const char *sep = s->labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i < HIST_BUCKETS; i++) {
		cum += s->buckets[i];
		(void)bu_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", s->name,
				    s->labels, sep, hist_le[i], cum);
	}
	if (s->labels[0] != '\0') {
		(void)bu_buf_printf(out, "%s_sum{%s} %.9g\n", s->name, s->labels, s->sum);
		(void)bu_buf_printf(out, "%s_count{%s} %" PRIu64 "\n", s->name, s->labels,
				    s->count);
	} else {
		(void)bu_buf_printf(out, "%s_sum %.9g\n", s->name, s->sum);
		(void)bu_buf_printf(out, "%s_count %" PRIu64 "\n", s->name, s->count);
	}
}

/*
 * Appends to out (whose max, if any, the caller chose; output that does not
 * fit is dropped).  Series of one metric are grouped under one # TYPE line.
 */
void bu_metrics_render(struct bu_buf *out)
{
	struct series *snap;
	const char *prev_name = NULL;
	size_t n, i;

	/* Snapshot values under the lock; strings are never freed. */
	pthread_mutex_lock(&metrics_lock);
	n = all_count;
	snap = bu_calloc(n ? n : 1, sizeof(*snap));
	for (i = 0; i < n; i++)
		snap[i] = *all[i];
	pthread_mutex_unlock(&metrics_lock);

	for (i = 0; i < n; i++) {
		struct series *s = &snap[i];

		if (s->kind == METRIC_GAUGE_FN)
			s->value = s->fn(s->fn_ctx);
		if (prev_name == NULL || strcmp(prev_name, s->name) != 0) {
			(void)bu_buf_printf(out, "# TYPE %s %s\n", s->name, kind_name(s->kind));
			prev_name = s->name;
		}
		if (s->kind == METRIC_HISTOGRAM)
			render_histogram(out, s);
		else
			(void)bu_buf_printf(out, "%s %" PRId64 "\n", s->series, s->value);
	}
	free(snap);
}
