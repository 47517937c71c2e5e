/*
 * igload.h - bin/igload, the load generator of issue 19 (load/igload/README.md).
 *
 * An nghttp2 client on one libevent loop, no threads: N connections x M
 * concurrent streams, unary (one POST per request) or stream mode (one
 * long POST /transform/NAME per stream slot), closed loop or open loop at
 * a rate with latency from the intended send time.
 *
 *   main.c   the command line, the rows (input file or generated), the
 *            request bodies, the expected predictions, the report
 *   run.c    connections, nghttp2 sessions, scheduling, outcomes
 *   hist.c   the log-bucketed latency histogram
 *   check.c  the number scanner that compares an answer with the model's
 */
#ifndef IGLOAD_H
#define IGLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Exit statuses. */
#define IGL_EXIT_OK 0
#define IGL_EXIT_FAIL 1  /* could not run: connect refused at start, bad file, ... */
#define IGL_EXIT_USAGE 2 /* a bad command line */

/* Caps. */
#define IGL_MAX_CONNS 20000u
#define IGL_MAX_STREAMS 10000u              /* per connection */
#define IGL_MAX_SLOTS 1000000u              /* connections x streams */
#define IGL_MAX_HEADERS 32                  /* -H */
#define IGL_RESP_MAX ((size_t)64 << 20)     /* one response body */
#define IGL_RESP_HDR_MAX 128                /* response header fields per stream */
#define IGL_RESP_HDR_BYTES ((size_t)64 << 10) /* response header block */
#define IGL_LINE_MAX ((size_t)1 << 20)      /* one prediction line (stream mode, --model) */
#define IGL_INPUT_MAX ((size_t)1 << 30)     /* --input FILE */
#define IGL_POOL_ROWS 1024u                 /* generated rows */
#define IGL_BODIES_BYTES ((size_t)64 << 20) /* distinct unary bodies kept */
#define IGL_HOST_MAX 255
#define IGL_PATH_MAX 8192

/* ---- histogram (hist.c) ---------------------------------------------- */

/*
 * Values in microseconds, 1 us .. IGL_HIST_MAX_US; below 256 us exact,
 * above in buckets 1/128 of their power of two wide (at most 0.8 % apart;
 * a percentile is reported as its bucket's middle: within 0.4 %). Larger
 * values land in the last bucket; max and mean are exact.
 */
#define IGL_HIST_MAX_US 100000000ull /* 100 s */
#define IGL_HIST_SUB 128u
#define IGL_HIST_BUCKETS (2u * IGL_HIST_SUB + 21u * IGL_HIST_SUB)

struct igl_hist {
    uint64_t count, sum_us, max_us;
    uint64_t b[IGL_HIST_BUCKETS];
};

void igl_hist_init(struct igl_hist *h);
void igl_hist_add(struct igl_hist *h, uint64_t us);
/* The value at percentile <p> (0..100) in microseconds; 0 when empty. */
double igl_hist_pct(const struct igl_hist *h, double p);
double igl_hist_mean(const struct igl_hist *h);
/* Index of the bucket of <us> and the [lo, hi] range it covers (for tests). */
unsigned igl_hist_index(uint64_t us);
void igl_hist_range(unsigned idx, uint64_t *lo, uint64_t *hi);

/* ---- checking (check.c) ---------------------------------------------- */

/*
 * Scan the numbers of <p>[0, n) (CSV or JSON text; a number starts at a
 * digit, or a '-' or '.' before one) into out[0, cap). Returns how many
 * there were (may exceed cap: the extra ones are counted, not stored).
 */
size_t igl_scan_numbers(const char *p, size_t n, double *out, size_t cap);
/* The next number in [p, end) into *v and the byte after it; NULL: none. */
const char *igl_next_number(const char *p, const char *end, double *v);
/* a and b agree: within 1e-6 relative (or 1e-12 absolute near zero). */
int igl_num_close(double a, double b);

/* ---- options and run (main.c, run.c) --------------------------------- */

enum igl_mode { IGL_UNARY = 0, IGL_STREAM = 1 };

struct igl_hdr {
    const char *name;  /* lower case, owned */
    const char *value; /* owned */
};

/* One distinct unary request body (request k uses bodies[k % nbodies]). */
struct igl_body {
    char *data;
    size_t len;
    uint32_t first_row; /* index of its first row in the pool */
    char clen[24];      /* content-length */
    char sha[65];       /* SHA-256 hex of the body (--sigv4) */
};

struct igl_opts {
    /* the URL */
    int tls;
    char host[IGL_HOST_MAX + 1];
    char port[8];
    char authority[IGL_HOST_MAX + 10];
    char path[IGL_PATH_MAX];
    const char *url;

    uint32_t conns, streams;
    double rate;          /* 0: closed loop */
    double duration_s;    /* measured seconds */
    int duration_given;
    double warmup_s;
    uint64_t requests;    /* -n; 0: by duration */
    enum igl_mode mode;
    uint64_t rows;        /* rows per request (unary) or per stream */
    const char *content_type, *accept;
    const char *sigv4_region;
    double timeout_s;
    const char *json_path;
    int quiet, fail_on_error, insecure;
    const char *cacert;
    struct igl_hdr hdrs[IGL_MAX_HEADERS];
    size_t nhdrs;

    /* the rows: pool_text holds every row followed by '\n';
     * row i is pool_text[row_off[i], row_off[i + 1]) */
    char *pool_text;
    size_t pool_len;
    size_t *row_off;      /* nrows + 1 */
    uint32_t nrows;
    /* unary bodies */
    struct igl_body *bodies;
    uint32_t nbodies;
    /* expected numbers per row (--model): exp[exp_off[i], exp_off[i + 1]) */
    double *exp;
    size_t *exp_off;      /* NULL: no checking */
};

/* Counters of one run. */
enum igl_err_type {
    IGL_E_TIMEOUT = 0,
    IGL_E_RESET,
    IGL_E_GOAWAY,
    IGL_E_CONNECT,
    IGL_E_CLOSED,
    IGL_E_WRONG,
    IGL_E_LOST,
    IGL_E_TOO_LARGE,
    IGL_E_BAD_RESPONSE,
    IGL_E_COUNT,
};

struct igl_result {
    uint64_t sent, ok, failed, lost, unsent;
    uint64_t rows_ok;
    uint64_t bytes_sent, bytes_recv;
    uint64_t err[IGL_E_COUNT];
    uint64_t http[600]; /* http_<status> of non-2xx answers, 100..599 */
    double duration_s;
    struct igl_hist hist;
};

const char *igl_err_name(enum igl_err_type e);

/*
 * Run the load <o> describes into <r>. Returns IGL_EXIT_OK when the run
 * took place (errors are in <r>), IGL_EXIT_FAIL (after a message on
 * stderr) when it could not start.
 */
int igl_run(const struct igl_opts *o, struct igl_result *r);

#endif /* IGLOAD_H */
