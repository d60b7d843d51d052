/*
 * test_metrics.c - unit tests for server/core/metrics.c: counters, gauges,
 * gauge callbacks, histograms, grouping under # TYPE lines, the exact text
 * rendered, and concurrent updates.
 */
#include "server/core/metrics.h"
#include "server/core/log.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		checks++;                                                                          \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static char *render(void)
{
	struct bu_buf b;

	bu_buf_init(&b, 0);
	bu_metrics_render(&b);
	return bu_buf_steal(&b, NULL);
}

static void check_text(const char *got, const char *want, int line)
{
	checks++;
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: render differs\n--- got\n%s--- want\n%s---\n", __FILE__,
			line, got, want);
		failures++;
	}
}

static int64_t calls;

static int64_t gauge_cb(void *ctx)
{
	calls++;
	return *(int64_t *)ctx;
}

static int64_t reentrant_cb(void *ctx)
{
	/* a callback may touch metrics itself: must not deadlock */
	bu_metric_add("e_callback_runs_total", 1);
	return 7;
}

/*
 * Everything in this process's registry, so the whole rendering can be
 * compared byte for byte.
 */
static void test_exact_render(void)
{
	static int64_t queue_len = 3;
	char *text;

	text = render();
	check_text(text, "", __LINE__); /* nothing yet */
	free(text);

	bu_metric_add("a_logins_total{proto=\"imap\",result=\"ok\"}", 2);
	bu_metric_add("a_logins_total{proto=\"imap\",result=\"fail\"}", 1);
	bu_metric_add("a_logins_total{proto=\"imap\",result=\"ok\"}", 3);
	bu_metric_add("a_logins", 1);	     /* a different metric name */
	bu_metric_add("a_logins_total", 10); /* no labels, same name */
	bu_metric_set("b_sessions{proto=\"pop3\"}", 4);
	bu_metric_set("b_sessions{proto=\"pop3\"}", 2);
	bu_metric_set("b_up", 1);
	bu_metric_add("b_up", -1); /* add moves a gauge */
	bu_metric_add("c_was_counter", 5);
	bu_metric_set("c_was_counter", 9); /* set makes it a gauge */
	bu_metric_gauge_fn_register("d_queue_length", gauge_cb, &queue_len);
	bu_metric_gauge_fn_register("e_reentrant", reentrant_cb, NULL);
	bu_metric_observe("f_cmd_seconds", "proto=\"imap\",cmd=\"FETCH\"", 0.0005);
	bu_metric_observe("f_cmd_seconds", "proto=\"imap\",cmd=\"FETCH\"", 0.001); /* le */
	bu_metric_observe("f_cmd_seconds", "proto=\"imap\",cmd=\"FETCH\"", 0.2);
	bu_metric_observe("f_cmd_seconds", "proto=\"imap\",cmd=\"FETCH\"", 7);
	bu_metric_observe("g_plain_seconds", NULL, 0.05);
	bu_metric_observe("g_plain_seconds", "", -3);	 /* clamps to 0 */
	bu_metric_observe("g_plain_seconds", NULL, NAN); /* clamps to 0 */

	calls = 0;
	text = render();
	check_text(text,
		   "# TYPE a_logins counter\n"
		   "a_logins 1\n"
		   "# TYPE a_logins_total counter\n"
		   "a_logins_total 10\n"
		   "a_logins_total{proto=\"imap\",result=\"fail\"} 1\n"
		   "a_logins_total{proto=\"imap\",result=\"ok\"} 5\n"
		   "# TYPE b_sessions gauge\n"
		   "b_sessions{proto=\"pop3\"} 2\n"
		   "# TYPE b_up gauge\n"
		   "b_up 0\n"
		   "# TYPE c_was_counter gauge\n"
		   "c_was_counter 9\n"
		   "# TYPE d_queue_length gauge\n"
		   "d_queue_length 3\n"
		   "# TYPE e_reentrant gauge\n"
		   "e_reentrant 7\n"
		   "# TYPE f_cmd_seconds histogram\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.001\"} 2\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.005\"} 2\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.01\"} 2\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.05\"} 2\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.1\"} 2\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"0.5\"} 3\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"1\"} 3\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"5\"} 3\n"
		   "f_cmd_seconds_bucket{proto=\"imap\",cmd=\"FETCH\",le=\"+Inf\"} 4\n"
		   "f_cmd_seconds_sum{proto=\"imap\",cmd=\"FETCH\"} 7.2015\n"
		   "f_cmd_seconds_count{proto=\"imap\",cmd=\"FETCH\"} 4\n"
		   "# TYPE g_plain_seconds histogram\n"
		   "g_plain_seconds_bucket{le=\"0.001\"} 2\n"
		   "g_plain_seconds_bucket{le=\"0.005\"} 2\n"
		   "g_plain_seconds_bucket{le=\"0.01\"} 2\n"
		   "g_plain_seconds_bucket{le=\"0.05\"} 3\n"
		   "g_plain_seconds_bucket{le=\"0.1\"} 3\n"
		   "g_plain_seconds_bucket{le=\"0.5\"} 3\n"
		   "g_plain_seconds_bucket{le=\"1\"} 3\n"
		   "g_plain_seconds_bucket{le=\"5\"} 3\n"
		   "g_plain_seconds_bucket{le=\"+Inf\"} 3\n"
		   "g_plain_seconds_sum 0.05\n"
		   "g_plain_seconds_count 3\n",
		   __LINE__);
	free(text);
	CHECK(calls == 1);

	/* callbacks run at every scrape, with current values */
	queue_len = 42;
	text = render();
	CHECK(strstr(text, "\nd_queue_length 42\n") != NULL);
	/* the callback's own counter appeared (created during the scrape
	 * before, rendered now) */
	CHECK(strstr(text, "# TYPE e_callback_runs_total counter\ne_callback_runs_total 1\n") !=
	      NULL);
	free(text);

	/* registering again replaces the callback */
	bu_metric_gauge_fn_register("d_queue_length", reentrant_cb, NULL);
	text = render();
	CHECK(strstr(text, "\nd_queue_length 7\n") != NULL);
	free(text);
}

static void test_kind_mismatch(void)
{
	char *text;

	/* a histogram observed under a counter's series is ignored (logged) */
	bu_metric_add("h_mixed", 1);
	bu_metric_observe("h_mixed", NULL, 0.5);
	bu_metric_set("h_mixed", 5); /* counter -> gauge is allowed */
	text = render();
	CHECK(strstr(text, "# TYPE h_mixed gauge\nh_mixed 5\n") != NULL);
	CHECK(strstr(text, "h_mixed_bucket") == NULL);
	free(text);

	/* values from a gauge callback cannot be overwritten */
	bu_metric_set("d_queue_length", 1000);
	bu_metric_add("d_queue_length", 1000);
	text = render();
	CHECK(strstr(text, "\nd_queue_length 7\n") != NULL);
	free(text);

	/* an over-long histogram series is dropped, not truncated */
	{
		char labels[600];

		memset(labels, 'x', sizeof(labels) - 1);
		labels[sizeof(labels) - 1] = '\0';
		bu_metric_observe("i_long", labels, 1);
		text = render();
		CHECK(strstr(text, "i_long") == NULL);
		free(text);
	}
}

#define THREADS 4
#define ADDS 20000

static void *adder(void *arg)
{
	int i;

	for (i = 0; i < ADDS; i++) {
		bu_metric_add("j_concurrent_total", 1);
		bu_metric_observe("j_concurrent_seconds", "t=\"x\"", 0.002);
		if (i % 1000 == 0) {
			char *text = render();

			free(text);
		}
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	char want[128], *text;
	int i;

	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, adder, NULL);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	text = render();
	snprintf(want, sizeof(want), "\nj_concurrent_total %d\n", THREADS * ADDS);
	CHECK(strstr(text, want) != NULL);
	snprintf(want, sizeof(want), "\nj_concurrent_seconds_count{t=\"x\"} %d\n", THREADS * ADDS);
	CHECK(strstr(text, want) != NULL);
	snprintf(want, sizeof(want), "\nj_concurrent_seconds_bucket{t=\"x\",le=\"0.001\"} 0\n");
	CHECK(strstr(text, want) != NULL);
	free(text);
}

static void test_many_series(void)
{
	char series[64], *text, *p;
	int i, types = 0;

	/* inserted in an order that is not sorted */
	for (i = 0; i < 500; i++) {
		snprintf(series, sizeof(series), "k_many{n=\"%d\"}", (i * 7919) % 500);
		bu_metric_add(series, i);
	}
	text = render();
	for (p = text; (p = strstr(p, "# TYPE k_many ")) != NULL; p++)
		types++;
	CHECK(types == 1);
	CHECK(strstr(text, "k_many{n=\"0\"} 0\n") != NULL);
	CHECK(strstr(text, "k_many{n=\"499\"}") != NULL);
	free(text);

	/* rendering into a limited buffer does not overflow it */
	{
		struct bu_buf b;

		bu_buf_init(&b, 100);
		bu_metrics_render(&b);
		CHECK(b.len <= 100);
		bu_buf_deinit(&b);
	}
}

int main(void)
{
	bu_log_set_level(BU_LOG_ERROR); /* the mismatch warnings are expected */
	test_exact_render();
	test_kind_mismatch();
	test_threads();
	test_many_series();
	printf("test_metrics: %d checks, %d failures\n", checks, failures);
	return failures == 0 ? 0 : 1;
}
