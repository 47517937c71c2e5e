/*
 * metrics.c - histogram buckets and the Prometheus text renderer.
 */
#include <stdio.h>
#include <string.h>

#include "infergate/buf.h"
#include "infergate/common.h"
#include "infergate/metrics.h"

const double ig_hist_rows_bounds[] = {1,   2,   4,    8,    16,   32,    64,    128,  256,
                                      512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
const uint32_t ig_hist_rows_nbounds = IG_ARRAY_SIZE(ig_hist_rows_bounds);

const double ig_hist_seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                         1,      2.5,     5,      10,    30,     60};
const uint32_t ig_hist_seconds_nbounds = IG_ARRAY_SIZE(ig_hist_seconds_bounds);

void ig_hist_init(struct ig_hist *h, const double *bounds, uint32_t nbounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds < IG_HIST_MAX_BOUNDS ? nbounds : IG_HIST_MAX_BOUNDS;
}

void ig_hist_observe(struct ig_hist *h, double v)
{
    uint32_t i = 0;

    while (i < h->nbounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

int ig_metrics_header(struct ig_buf *out, const char *name, const char *type, const char *help)
{
    return ig_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int ig_metrics_sample(struct ig_buf *out, const char *name, const char *labels, double value)
{
    char num[IG_FMT_DOUBLE_MAX];

    /* Counts print as integers; other values in the shortest exact form. */
    if (value >= 0 && value < 9007199254740992.0 && value == (double)(uint64_t)value)
        snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
    else
        ig_fmt_double(num, value);
    if (labels[0] == '\0')
        return ig_buf_printf(out, "%s %s\n", name, num);
    return ig_buf_printf(out, "%s{%s} %s\n", name, labels, num);
}

int ig_metrics_hist(struct ig_buf *out, const char *name, const char *labels,
                    const struct ig_hist *h)
{
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    char num[IG_FMT_DOUBLE_MAX], sum[IG_FMT_DOUBLE_MAX];
    int rv = 0;

    for (uint32_t i = 0; i < h->nbounds && rv == 0; i++) {
        cum += h->counts[i];
        ig_fmt_double(num, h->bounds[i]);
        rv = ig_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, num,
                           (unsigned long long)cum);
    }
    if (rv == 0)
        rv = ig_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                           (unsigned long long)h->count);
    ig_fmt_double(sum, h->sum);
    if (rv == 0 && labels[0] == '\0')
        rv = ig_buf_printf(out, "%s_sum %s\n%s_count %llu\n", name, sum, name,
                           (unsigned long long)h->count);
    else if (rv == 0)
        rv = ig_buf_printf(out, "%s_sum{%s} %s\n%s_count{%s} %llu\n", name, labels, sum, name,
                           labels, (unsigned long long)h->count);
    return rv;
}
