/*
 * metrics.h - counters and histograms in Prometheus text format.
 *
 * Metrics are plain integers updated on the loop thread only (worker
 * results come back to the loop before anything is counted), so no atomics.
 * The owner of each metric renders it with these helpers.
 */
#ifndef INFERGATE_METRICS_H
#define INFERGATE_METRICS_H

#include <stdint.h>

struct ig_buf;

#define IG_HIST_MAX_BOUNDS 24

struct ig_hist {
    const double *bounds;                    /* upper bounds, ascending, static */
    uint32_t nbounds;                        /* <= IG_HIST_MAX_BOUNDS */
    uint64_t counts[IG_HIST_MAX_BOUNDS + 1]; /* per bucket, last is +Inf */
    uint64_t count;
    double sum;
};

/* Bucket bounds for batch sizes in rows (1 .. 65536) and latencies in seconds. */
extern const double ig_hist_rows_bounds[];
extern const uint32_t ig_hist_rows_nbounds;
extern const double ig_hist_seconds_bounds[];
extern const uint32_t ig_hist_seconds_nbounds;

void ig_hist_init(struct ig_hist *h, const double *bounds, uint32_t nbounds);
void ig_hist_observe(struct ig_hist *h, double v);

/* "# HELP name help\n# TYPE name type\n". */
int ig_metrics_header(struct ig_buf *out, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; <labels> like `endpoint="demo"` or "" for none. */
int ig_metrics_sample(struct ig_buf *out, const char *name, const char *labels, double value);
/* The _bucket (cumulative, with le), _sum and _count lines of a histogram. */
int ig_metrics_hist(struct ig_buf *out, const char *name, const char *labels,
                    const struct ig_hist *h);

#endif /* INFERGATE_METRICS_H */
