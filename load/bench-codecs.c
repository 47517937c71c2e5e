/*
 * bench-codecs.c - throughput of the request codecs and the format
 * conversion on dense rows (issue 18's benchmark).
 *
 *   bin/bench-codecs [ROWS [NAME]]      (make bench-codecs runs it)
 *
 * Generates ROWS (default 1,000,000; also BENCH_ROWS) rows of 50 features
 * in memory, from a fixed seed: short decimals as models are fed
 * (0.123456, -12.5, 1234.567, 3e-05, integers), written as CSV and as JSON
 * Lines ([v1,...,v50]), and the RecordIO-protobuf body the conversion of
 * the CSV makes. Then, for each case, the best of 3 runs (BENCH_RUNS) on
 * this thread, in MB/s (10^6 bytes of the case's input text, or of the
 * CSV written for rows -> CSV) and rows/s, against issue 18's targets:
 *   csv-split     ig_codec_decode(IG_FMT_CSV, dim 0): rows split and
 *                 validated, no number parsed (target 1 GB/s);
 *   csv-recordio  ig_codec_decode(IG_FMT_CSV, dim 0) then
 *                 ig_convert_rows(-> IG_FMT_RECORDIO, width 50): what a
 *                 CSV request to a RecordIO upstream costs (300 MB/s);
 *   recordio-rows ig_codec_decode(IG_FMT_RECORDIO, dim 50): the features
 *                 parsed (300 MB/s);
 *   jsonl-rows    ig_codec_decode(IG_FMT_JSONL, dim 50) (300 MB/s);
 *   rows-csv      the 50 doubles of each row (those the CSV decodes to)
 *                 written back as CSV lines with ig_fmt_double (300 MB/s).
 * and, for information, csv-rows (ig_codec_decode(IG_FMT_CSV, dim 50))
 * and f32rows-csv (the float32 features RecordIO decodes to, written with
 * ig_fmt_float, as the conversion from RecordIO to CSV does).
 *
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user and
 * system, page faults of fresh buffers included; time the machine spent
 * on other processes is not), so one core; memory freed by a run is
 * reused by the next (malloc_conf below). Budget: none (NULL); max_rows
 * 2,000,000. Every output is checked once (rows, features bit for bit,
 * the CSV written reads back to the same doubles).
 *
 * NAME runs one case only (with the data it needs): for callgrind,
 *   BENCH_RUNS=1 valgrind --tool=callgrind --toggle-collect=bench_timed \
 *       bin/bench-codecs 10000 csv-split
 * counts the instructions of the case's work alone (not the setup nor
 * the checks).
 * Exit status: 0 when every case ran (a target missed is reported as
 * BELOW, not an error), 1 when a decode or a check failed, 2 on bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/convert.h"
#include "infergate/rows-t.h"

/*
 * jemalloc (the release build's allocator) gives requests over 8 MiB an
 * arena of their own whose freed pages go back to the kernel at once, so
 * every run of a case would fault in its 400 MB of features afresh (the
 * kernel zeroing pages, a fifth of the RecordIO decode's time). Off here:
 * runs 2 and 3 reuse what run 1 faulted in, as a gateway's allocator does
 * with its bodies (6 MiB at most). MALLOC_CONF=oversize_threshold:8388608
 * puts it back. Ignored without jemalloc (SANITIZE=1 builds).
 */
extern const char *malloc_conf;
const char *malloc_conf = "oversize_threshold:0";

#define BENCH_DIM 50
#define BENCH_MAX_ROWS 2000000u
/* the caps of the buffers the conversions write (< 4 GiB: row offsets) */
#define BENCH_BUF_MAX ((size_t)3 << 30)

/* splitmix64: a fixed, portable sequence. */
static uint64_t bench_rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double bench_cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * One feature's text at <p>: a decimal of at most 7 significant digits
 * (so that float32 keeps it: RecordIO carries float32), in the mix
 *   45% 0.dddddd (0.123456), 20% -ddd.d (-12.5), 10% dddd.ddd (1234.567),
 *   10% de-0d (3e-05), 15% integers (-999 .. 9999).
 * Returns the length written.
 */
static size_t bench_feature(uint64_t *seed, char *p)
{
    uint64_t r = bench_rnd(seed);
    unsigned kind = (unsigned)(r % 100);
    uint64_t m;
    int n;

    r >>= 8;
    if (kind < 45) {
        m = 1 + r % 999999;
        n = snprintf(p, 16, "0.%06" PRIu64, m);
    } else if (kind < 65) {
        m = 1 + r % 9999; /* never "-0": JSON reads it as the integer 0 */
        n = snprintf(p, 16, "%s%" PRIu64 ".%" PRIu64, (r >> 20) & 1 ? "-" : "", m / 10, m % 10);
    } else if (kind < 75) {
        m = r % 10000000;
        n = snprintf(p, 16, "%" PRIu64 ".%03" PRIu64, m / 1000, m % 1000);
    } else if (kind < 85) {
        n = snprintf(p, 16, "%de-%02d", 1 + (int)(r % 9), 3 + (int)((r >> 8) % 7));
    } else {
        n = snprintf(p, 16, "%d", (int)(r % 11000) - 1000);
    }
    /* no trailing zeros after a dot: the texts a formatter would write */
    if (memchr(p, '.', (size_t)n) != NULL && memchr(p, 'e', (size_t)n) == NULL) {
        while (p[n - 1] == '0')
            n--;
        if (p[n - 1] == '.')
            n--;
    }
    return (size_t)n;
}

struct bench_data {
    uint32_t rows;
    char *csv, *jsonl;
    size_t csv_len, jsonl_len;
    struct ig_buf recordio; /* CSV converted */
    double *features;       /* rows * BENCH_DIM, the CSV's values */
};

static int bench_generate(struct bench_data *d)
{
    /* the longest feature text is 9 bytes, and a separator */
    size_t cap = (size_t)d->rows * BENCH_DIM * 11 + (size_t)d->rows * 3;
    uint64_t seed = 18;
    size_t c = 0, j = 0;

    d->csv = malloc(cap);
    d->jsonl = malloc(cap);
    if (d->csv == NULL || d->jsonl == NULL)
        return -1;
    for (uint32_t r = 0; r < d->rows; r++) {
        d->jsonl[j++] = '[';
        for (int f = 0; f < BENCH_DIM; f++) {
            size_t n = bench_feature(&seed, d->csv + c);

            memcpy(d->jsonl + j, d->csv + c, n);
            c += n;
            j += n;
            d->csv[c++] = f + 1 < BENCH_DIM ? ',' : '\n';
            if (f + 1 < BENCH_DIM)
                d->jsonl[j++] = ',';
        }
        d->jsonl[j++] = ']';
        d->jsonl[j++] = '\n';
    }
    d->csv_len = c;
    d->jsonl_len = j;
    return 0;
}

/* A decode into a fresh rowset (NULL budget): 0 or the error printed. */
static int bench_decode(const char *what, enum ig_format fmt, const char *body, size_t len,
                        uint32_t dim, struct ig_rowset *rs)
{
    struct ig_codec_error err;
    int rv;

    memset(rs, 0, sizeof(*rs));
    rv = ig_codec_decode(fmt, body, len, dim, BENCH_MAX_ROWS, rs, &err);
    if (rv < 0)
        fprintf(stderr, "bench-codecs: %s: decode failed (%d): %s\n", what, rv, err.msg);
    return rv;
}

/* CSV -> RecordIO: split, then convert. <body> is reset first. */
static int bench_csv_recordio(const struct bench_data *d, struct ig_buf *body)
{
    struct ig_rowset in, out;
    struct ig_codec_error err;
    int rv;

    ig_buf_reset(body);
    rv = bench_decode("csv-recordio", IG_FMT_CSV, d->csv, d->csv_len, 0, &in);
    if (rv < 0)
        return rv;
    memset(&out, 0, sizeof(out));
    rv = ig_convert_rows(IG_FMT_CSV, &in, IG_FMT_RECORDIO, BENCH_DIM, body, &out, &err);
    if (rv < 0)
        fprintf(stderr, "bench-codecs: csv-recordio: convert failed (%d): %s\n", rv, err.msg);
    else if (out.nrows != d->rows)
        rv = IG_ERR_INVALID;
    ig_rowset_clear(&out);
    ig_rowset_clear(&in);
    return rv;
}

/* Rows -> CSV: <n> rows of BENCH_DIM values, as doubles (ig_fmt_double) or
 * float32 (ig_fmt_float), into <out> (reset first). */
static int bench_rows_csv(const double *x, uint32_t n, int f32, struct ig_buf *out)
{
    ig_buf_reset(out);
    for (uint32_t r = 0; r < n; r++) {
        const double *row = x + (size_t)r * BENCH_DIM;
        char *p;
        int rv = ig_buf_reserve(out, BENCH_DIM * (IG_FMT_DOUBLE_MAX + 1));

        if (rv < 0)
            return rv;
        p = out->data + out->len;
        for (int f = 0; f < BENCH_DIM; f++) {
            p += f32 ? ig_fmt_float(p, (float)row[f]) : ig_fmt_double(p, row[f]);
            *p++ = f + 1 < BENCH_DIM ? ',' : '\n';
        }
        out->len = (size_t)(p - out->data);
    }
    if (out->data)
        out->data[out->len] = '\0';
    return 0;
}

struct bench_case {
    const char *name, *label;
    double target; /* MB/s; 0: information only */
};

static const struct bench_case bench_cases[] = {
    {"csv-split", "CSV row splitting", 1000},
    {"csv-recordio", "CSV -> RecordIO", 300},
    {"recordio-rows", "RecordIO -> rows", 300},
    {"jsonl-rows", "JSON lines -> rows", 300},
    {"rows-csv", "rows -> CSV", 300},
    {"csv-rows", "CSV -> rows (info)", 0},
    {"f32rows-csv", "float32 rows -> CSV (info)", 0},
};

/* The work of case <i>, once, nothing else (callgrind collects this
 * function: --toggle-collect=bench_timed). A decoded rowset goes to <rs>
 * for the caller to check. *bytes gets the bytes its figure counts. */
static __attribute__((noinline)) int bench_timed(int i, struct bench_data *d,
                                                 struct ig_rowset *keep, struct ig_buf *scratch,
                                                 struct ig_rowset *rs, size_t *bytes)
{
    switch (i) {
    case 0:
        *bytes = d->csv_len;
        return bench_decode("csv-split", IG_FMT_CSV, d->csv, d->csv_len, 0, rs);
    case 1:
        *bytes = d->csv_len;
        return bench_csv_recordio(d, scratch);
    case 2:
        *bytes = d->recordio.len;
        return bench_decode("recordio-rows", IG_FMT_RECORDIO, d->recordio.data, d->recordio.len,
                            BENCH_DIM, rs);
    case 3:
        *bytes = d->jsonl_len;
        return bench_decode("jsonl-rows", IG_FMT_JSONL, d->jsonl, d->jsonl_len, BENCH_DIM, rs);
    case 4:
        *bytes = d->rows * (size_t)BENCH_DIM; /* set below from the output */
        return bench_rows_csv(d->features, d->rows, 0, scratch);
    case 5:
        *bytes = d->csv_len;
        return bench_decode("csv-rows", IG_FMT_CSV, d->csv, d->csv_len, BENCH_DIM, rs);
    default:
        return bench_rows_csv(keep->features, keep->nrows, 1, scratch);
    }
}

/* Run case <i> once and check what it made: its CPU seconds, or a
 * negative value on failure. *bytes gets the bytes its figure counts. */
static double bench_run(int i, struct bench_data *d, struct ig_rowset *keep, struct ig_buf *scratch,
                        size_t *bytes)
{
    struct ig_rowset rs;
    double t0, t;
    int rv;

    memset(&rs, 0, sizeof(rs));
    t0 = bench_cpu_now();
    rv = bench_timed(i, d, keep, scratch, &rs, bytes);
    t = bench_cpu_now() - t0;
    if (i == 4 || i == 6)
        *bytes = scratch->len;
    if (i == 0 || i == 2 || i == 3 || i == 5) {
        if (rv == 0 && rs.nrows != d->rows) {
            fprintf(stderr, "bench-codecs: %s: %u rows, not %u\n", bench_cases[i].name, rs.nrows,
                    d->rows);
            rv = IG_ERR_INVALID;
        }
        /* the features, bit for bit: the CSV's doubles; through RecordIO
         * those narrowed to float32 */
        if (rv == 0 && i != 0) {
            for (size_t k = 0; k < (size_t)d->rows * BENCH_DIM; k++) {
                double want = i == 2 ? (double)(float)d->features[k] : d->features[k];

                if (memcmp(&rs.features[k], &want, sizeof(want)) != 0) {
                    fprintf(stderr, "bench-codecs: %s: feature %zu is %.17g, not %.17g\n",
                            bench_cases[i].name, k, rs.features[k], want);
                    rv = IG_ERR_INVALID;
                    break;
                }
            }
        }
        ig_rowset_clear(&rs);
    }
    return rv < 0 ? -1 : t;
}

/* The CSV that rows -> CSV wrote reads back to the same doubles. */
static int bench_check_csv(const struct ig_buf *csv, const double *want, uint32_t rows)
{
    struct ig_rowset rs;
    int rv = bench_decode("rows-csv check", IG_FMT_CSV, csv->data, csv->len, BENCH_DIM, &rs);

    if (rv == 0 && (rs.nrows != rows ||
                    memcmp(rs.features, want, (size_t)rows * BENCH_DIM * sizeof(double)) != 0)) {
        fprintf(stderr, "bench-codecs: the CSV written does not read back to the same values\n");
        rv = -1;
    }
    ig_rowset_clear(&rs);
    return rv;
}

static void bench_machine(void)
{
    char line[256], model[200] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        char *c = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && c) {
            snprintf(model, sizeof(model), "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    printf("machine: nproc %ld, %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
}

int main(int argc, char **argv)
{
    struct bench_data d;
    struct ig_rowset keep, csvrows;
    struct ig_buf scratch;
    const char *env = getenv("BENCH_ROWS"), *only = argc > 2 ? argv[2] : NULL;
    long rows = argc > 1 ? atol(argv[1]) : env ? atol(env) : 1000000;
    int runs = getenv("BENCH_RUNS") ? atoi(getenv("BENCH_RUNS")) : 3, failed = 0, known = !only;

    if (rows < 1 || rows > (long)BENCH_MAX_ROWS || runs < 1 || argc > 3) {
        fprintf(stderr, "usage: bench-codecs [ROWS (1..%u) [NAME]]\n", BENCH_MAX_ROWS);
        return 2;
    }
    for (size_t i = 0; only && i < IG_ARRAY_SIZE(bench_cases); i++)
        known |= strcmp(only, bench_cases[i].name) == 0;
    if (!known) {
        fprintf(stderr, "bench-codecs: no case %s\n", only);
        return 2;
    }
    memset(&d, 0, sizeof(d));
    memset(&keep, 0, sizeof(keep));
    d.rows = (uint32_t)rows;
    ig_buf_init(&d.recordio, BENCH_BUF_MAX);
    ig_buf_init(&scratch, BENCH_BUF_MAX);
    if (bench_generate(&d) < 0) {
        fprintf(stderr, "bench-codecs: out of memory\n");
        return 1;
    }
    /* the inputs the cases share: the CSV's doubles, its RecordIO body,
     * and the float32 rows that body decodes to */
    if (bench_decode("setup", IG_FMT_CSV, d.csv, d.csv_len, BENCH_DIM, &csvrows) < 0)
        return 1;
    d.features = csvrows.features;
    if (bench_csv_recordio(&d, &d.recordio) < 0 ||
        bench_decode("setup", IG_FMT_RECORDIO, d.recordio.data, d.recordio.len, BENCH_DIM,
                     &keep) < 0)
        return 1;

    printf("bench-codecs: %u rows x %d features, best of %d runs, CPU time of one thread\n",
           d.rows, BENCH_DIM, runs);
    bench_machine();
    printf("input: CSV %.1f MB, JSON lines %.1f MB, RecordIO %.1f MB (the CSV converted)\n",
           (double)d.csv_len / 1e6, (double)d.jsonl_len / 1e6, (double)d.recordio.len / 1e6);
    printf("%-28s %10s %12s %8s\n", "case", "MB/s", "rows/s", "target");
    for (size_t i = 0; i < IG_ARRAY_SIZE(bench_cases); i++) {
        const struct bench_case *c = &bench_cases[i];
        double best = -1;
        size_t bytes = 0;

        if (only && strcmp(only, c->name) != 0)
            continue;
        for (int k = 0; k < runs; k++) {
            double t = bench_run((int)i, &d, &keep, &scratch, &bytes);

            if (t < 0) {
                best = -1;
                break;
            }
            if (best < 0 || t < best)
                best = t;
        }
        /* both read back to the CSV's doubles: ig_fmt_float writes a
         * float32 of these short decimals as the decimal itself */
        if (best >= 0 && (i == 4 || i == 6) && bench_check_csv(&scratch, d.features, d.rows) < 0)
            best = -1;
        if (best < 0) {
            printf("%-28s FAILED\n", c->label);
            failed = 1;
            continue;
        }
        if (best < 1e-9)
            best = 1e-9;
        {
            double mbs = (double)bytes / 1e6 / best;

            if (c->target > 0)
                printf("%-28s %10.1f %12.0f %8.0f  %s\n", c->label, mbs, d.rows / best, c->target,
                       mbs >= c->target ? "PASS" : "BELOW");
            else
                printf("%-28s %10.1f %12.0f %8s\n", c->label, mbs, d.rows / best, "-");
        }
        fflush(stdout);
    }
    ig_rowset_clear(&keep);
    ig_rowset_clear(&csvrows);
    ig_buf_clear(&scratch);
    ig_buf_clear(&d.recordio);
    free(d.csv);
    free(d.jsonl);
    return failed;
}
