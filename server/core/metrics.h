/*
 * metrics.h - process-wide counters and histograms in Prometheus text format.
 *
 * Names and labels are given as one string: 'bureau_auth_total{proto="imap",result="ok"}'.
 * Series are created on first use. Thread-safe.
 */
#ifndef BU_METRICS_H
#define BU_METRICS_H

#include "util.h"

void bu_metric_add(const char *series, int64_t n);         /* counter */
void bu_metric_set(const char *series, int64_t v);         /* gauge */
/* histogram of seconds: name without labels + labels ("proto=\"imap\",cmd=\"FETCH\"") */
void bu_metric_observe(const char *name, const char *labels, double seconds);
/* A gauge computed at scrape time. */
typedef int64_t bu_metric_gauge_fn(void *ctx);
void bu_metric_gauge_fn_register(const char *series, bu_metric_gauge_fn *fn, void *ctx);
/* render everything, with # TYPE lines */
void bu_metrics_render(struct bu_buf *out);

#endif
