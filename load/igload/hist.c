/*
 * hist.c - the log-bucketed latency histogram of igload (igload.h): an
 * HdrHistogram with 7 bits of sub-bucket precision, in microseconds.
 */
#include <math.h>
#include <string.h>

#include "igload.h"

void igl_hist_init(struct igl_hist *h)
{
    memset(h, 0, sizeof(*h));
}

unsigned igl_hist_index(uint64_t us)
{
    unsigned msb, e;

    if (us > IGL_HIST_MAX_US)
        us = IGL_HIST_MAX_US;
    if (us < 2u * IGL_HIST_SUB)
        return (unsigned)us;
    msb = 63u - (unsigned)__builtin_clzll(us);
    e = msb - 7u; /* us >> e is in [128, 255] */
    return 2u * IGL_HIST_SUB + (e - 1u) * IGL_HIST_SUB + (unsigned)((us >> e) - IGL_HIST_SUB);
}

void igl_hist_range(unsigned idx, uint64_t *lo, uint64_t *hi)
{
    unsigned e;
    uint64_t m;

    if (idx < 2u * IGL_HIST_SUB) {
        *lo = *hi = idx;
        return;
    }
    e = (idx - 2u * IGL_HIST_SUB) / IGL_HIST_SUB + 1u;
    m = (idx - 2u * IGL_HIST_SUB) % IGL_HIST_SUB + IGL_HIST_SUB;
    *lo = m << e;
    *hi = ((m + 1u) << e) - 1u;
}

void igl_hist_add(struct igl_hist *h, uint64_t us)
{
    h->b[igl_hist_index(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

double igl_hist_mean(const struct igl_hist *h)
{
    return h->count ? (double)h->sum_us / (double)h->count : 0.0;
}

double igl_hist_pct(const struct igl_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (h->count == 0)
        return 0.0;
    if (p >= 100.0)
        return (double)h->max_us;
    if (p < 0.0)
        p = 0.0;
    /* nearest rank, ceil(p / 100 * count), in whole numbers with p in
     * thousandths: in doubles 99.9 / 100 * 1000 is 999.0000000000001
     * and the rank of p99.9 over 1000 samples came out as the max */
    if (h->count < UINT64_MAX / 100000) {
        uint64_t pm = (uint64_t)llround(p * 1000.0);
        rank = (pm * h->count + 99999) / 100000;
    } else {
        rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    }
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < IGL_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            double mid;
            igl_hist_range(i, &lo, &hi);
            mid = ((double)lo + (double)hi) / 2.0;
            return mid > (double)h->max_us ? (double)h->max_us : mid;
        }
    }
    return (double)h->max_us;
}
