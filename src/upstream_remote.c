/*
 * upstream_remote.c - the remote backends: a model container that speaks
 * the SageMaker container contract (model = http://HOST:PORT), and
 * SageMaker's InvokeEndpoint (model = sagemaker://REGION/ENDPOINT).
 *
 * A batch becomes one job. At submit its rows' bytes are copied (the
 * requests' bodies may go when a client resets; the job owns what it
 * sends) and it is cut into calls of at most the container's payload
 * limit. Each call is one HTTP POST through libcurl on the gateway's own
 * loop (curl_loop.h): the rows joined (CSV and JSON Lines lines, JSON
 * instances re-wrapped in {"instances":[...]}), no number parsed on the way.
 *
 * A call that fails:
 *   - throttled (429), 5xx, timed out or not connected: retried with capped
 *     exponential backoff and full jitter, while the retry budget allows
 *     (retries <= retry_budget_pct of calls, plus a burst of
 *     REMOTE_RETRY_BURST), up to retry_max times;
 *   - refused by the model (any other 4xx: a row it cannot take): split in
 *     halves (between requests, never inside one) until the rows it refuses
 *     are alone, or one request's; those rows fail with the
 *     model's status and message (a ModelError for their requests), every
 *     other row gets its prediction. One bad row among n costs at most
 *     2*log2(n) more calls;
 *   - answered 2xx with a prediction count unlike its row count, an answer
 *     that is not valid or does not convert, or one larger than its rows
 *     may take: a warning is logged, and a call of several requests' rows
 *     is split as a refused one is (each split within a budget like the
 *     retry budget, but its own), until the rows of the request that made
 *     the answer wrong fail alone with InternalFailure (that client then
 *     batched apart for a while); no row is dropped or shifted.
 * A circuit breaker counts consecutive failed calls (not a model's 4xx):
 * at breaker_failures it opens, and batches fail at once with
 * ServiceUnavailable for breaker_open_ms; then one call goes through as a
 * probe, and its success closes the breaker. A model's 500 on a request's
 * rows counts once, at the end of its retries and splits; before a
 * count opens the breaker, a row the model answered well (the canary) is
 * sent to tell a model that is down from one client's rows (breaker_failure).
 *
 * The container is probed with GET /ping every REMOTE_PING_US (health(),
 * so /readyz); once it answers, GET /execution-parameters is read when it
 * offers it, and caps calls in flight (MaxConcurrentTransforms) and call
 * bytes (MaxPayloadInMB).
 */
#include <ctype.h>
#include <event2/event.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "infergate/aws_creds.h"
#include "infergate/batcher.h"
#include "infergate/budget.h"
#include "infergate/buf.h"
#include "infergate/json_scan.h"
#include "infergate/recordio.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/convert.h"
#include "infergate/curl_loop.h"
#include "infergate/sigv4.h"
#include "infergate/upstream.h"

/* One call's answer at most (the gateway answers 64 MiB at most too), and
 * per row of the call: a model that answers a few rows with megabytes is
 * cut early. */
#define REMOTE_RESP_MAX ((size_t)64 << 20)
/* Header bytes of one answer (all its lines, a 100's included): a model
 * that sends more is refused at once, whatever libcurl's own cap. */
#define REMOTE_HDR_MAX ((size_t)64 << 10)
#define REMOTE_RESP_PER_ROW ((size_t)256 << 10)
/* Readiness probe period and timeout (the contract's 2 s for /ping). */
#define REMOTE_PING_US 1000000
#define REMOTE_PING_TIMEOUT_MS 2000
/* /ping and /execution-parameters answers kept at most. */
#define REMOTE_SMALL_MAX ((size_t)64 << 10)
/* A model's message kept for the client's ModelError. */
#define REMOTE_MSG_MAX 1024
/* Retry budget: tokens held at most (the burst a quiet upstream allows). */
#define REMOTE_RETRY_BURST 10.0
/* A canary row kept at most (breaker_failure). */
#define REMOTE_CANARY_MAX 4096
/* The canary is replaced by a row answered well after it at most this
 * often: a row the model answered long ago (a model updated since) does
 * not speak for it now. */
#define REMOTE_CANARY_FRESH_US 1000000ULL
/* The window over which the model's answer times are kept for the
 * canary's timeout (canary_timeout). */
#define REMOTE_ANSWER_WINDOW_US 10000000ULL
/* Bytes a call's body adds to its rows: a newline per row, or the JSON
 * wrapper and commas. */
#define REMOTE_JSON_WRAP (sizeof("{\"instances\":[]}") - 1)

enum remote_kind { REMOTE_CONTAINER = 0, REMOTE_SAGEMAKER = 1 };
enum { BREAKER_CLOSED = 0, BREAKER_OPEN = 1, BREAKER_HALF = 2 };
enum call_where { CALL_NONE = 0, CALL_QUEUED = 1, CALL_RUNNING = 2, CALL_BACKOFF = 3 };

struct remote_upstream;
struct remote_call;

/* A FIFO of calls (remote_call.qprev/qnext). */
struct call_queue {
    struct remote_call *head, *tail;
};

/* Connections of one libcurl pool, counted as its sockets open and close. */
struct conn_count {
    struct remote_upstream *ru;
    unsigned n;
};

/* A segment's forwarded headers, the job's own copies (NULL: none). */
struct job_pass {
    char *custom_attributes, *inference_id, *target_variant;
    /* a row of the segment holds a line break (a CSV quoted field, a bare
     * CR): the model may read it as two rows, so the segment goes in calls
     * of its own, where a wrong count fails only its request */
    uint8_t line_break;
};

/* One submitted batch. */
struct remote_job {
    struct remote_upstream *ru;
    struct ig_batch *batch;
    enum ig_format ctype, accept;
    ig_upstream_done_cb *cb;
    void *arg;
    char *rows;        /* the rows' bytes back to back: the job's own copy */
    uint32_t *row_off; /* nrows + 1 offsets into <rows> */
    uint32_t nrows;
    uint32_t nsegs;
    uint32_t *seg_first;    /* nsegs + 1: the first row of each segment */
    uint32_t *seg_left;     /* nsegs: rows not answered yet, from a call's end that leaves
                             * others out (job_settle) */
    struct job_pass *pass;  /* nsegs, or NULL when no segment forwards headers */
    struct ig_seg_back *backs; /* nsegs, allocated when the model says something back */
    struct ig_buf out;  /* predictions, and the messages of failed rows */
    struct ig_pred *preds;
    struct ig_row_fail *fails; /* allocated at the first failed row */
    uint32_t pending;          /* calls not finished */
    struct remote_call *calls; /* those calls (jprev/jnext) */
    int cancelled;
    int split_told; /* the gateway was told its rows split (ig_batch.split) */
    struct call_queue halves;          /* its halves waiting for a slot */
    struct remote_job *sq_prev, *sq_next; /* on the upstream's ring while halves wait */
    const char *err_type; /* whole-job failure, set before it completes */
    char *err_msg;
    struct event *later; /* a completion deferred to the loop */
    struct ig_budget_hold hold;     /* rows, offsets, predictions: charged at submit */
    struct ig_budget_hold out_hold; /* <out> */
    struct remote_job *prev, *next; /* the upstream's jobs */
};

/* One HTTP call: rows [lo, hi) of a job. */
struct remote_call {
    struct remote_job *job;
    uint32_t lo, hi;
    uint32_t attempt;
    int probe;  /* the half-open breaker's one call */
    int handed_on; /* split: its rows went to its halves, none answered */
    int half;      /* a half of a split call */
    uint64_t timeout_ms; /* 0: the endpoint's upstream_timeout_ms */
    int opener; /* opens the h2c connection the calls after it share */
    int conn_refused; /* behind the h2c gate, it needed a connection of its own (on_call_socket) */
    const struct job_pass *pass; /* the headers forwarded (one segment's), or NULL */
    enum call_where where;
    CURL *easy;
    struct curl_slist *hdrs;
    struct ig_buf body;
    struct ig_buf resp;
    size_t resp_cap;            /* this call's answer at most */
    struct ig_budget_hold hold; /* body and answer, charged as they grow */
    int over;                   /* 1: the answer passed resp_cap; 2: the budget refused it;
                                 * 3: its headers passed REMOTE_HDR_MAX */
    size_t hdr_bytes;           /* header bytes of the answer so far */
    int cut;                    /* an error answer passed resp_cap: cut (call_cut_error) */
    char tail[64];              /* the last bytes of a cut error answer */
    size_t tail_len;
    uint64_t cut_read; /* bytes of a cut error answer read past the cap */
    char ctype[128];
    int ctype_two;   /* the answer has two Content-Types that differ */
    int hdr_end;     /* the answer's header block ended: what follows are trailers */
    char etype[128]; /* x-amzn-ErrorType, up to its ':' */
    char attrs[1025]; /* X-Amzn-SageMaker-Custom-Attributes answered */
    char variant[64]; /* x-Amzn-Invoked-Production-Variant answered */
    uint64_t start_us;
    struct event *timer; /* backoff */
    struct remote_call *qprev, *qnext; /* the upstream's fresh queue, or its job's halves */
    int qsplit;                        /* queued among its job's halves */
    int qfront;                        /* queued at the front: its turn came already */
    struct remote_call *prev, *next;   /* the upstream's calls */
    struct remote_call *jprev, *jnext; /* the job's calls */
};

struct remote_upstream {
    struct ig_upstream base;
    enum remote_kind kind;
    const struct ig_endpoint_conf *conf;
    struct event_base *evb;
    struct ig_curl_loop *cl;      /* the calls' pool */
    struct ig_curl_loop *cl_probe; /* /ping and /execution-parameters: a pool of their own */
    struct conn_count conns, probe_conns;
    long http_version;            /* a call's CURLOPT_HTTP_VERSION (an opener's, for h2c_gate) */
    int h2c_gate;                 /* h2c on a libcurl that breaks reuse (curl_h2c_reuse_broken) */
    int h2c_opening;              /* an opener is out */
    int h2c_reopen;               /* no h2c connection to share: the next call opens one */
    char *url_invoke, *url_ping, *url_exec;
    char *label; /* "container http://..." / "SageMaker endpoint NAME (REGION)" */
    uint32_t max_calls;
    uint64_t max_payload;
    uint32_t running;
    /* Calls waiting for one of max_calls: a batch's first calls (and those
     * whose turn came already: a canary's, a retry's after its backoff is
     * not), and the halves of split calls, by job. The fresh calls and the
     * jobs' halves take turns for a free slot, and the jobs with halves
     * waiting take turns among themselves (a ring): a batch split record
     * by record (2n - 1 calls) delays another client's call by about one
     * call, and another split batch's halves by about one a job, not by
     * all of its calls. */
    struct call_queue fresh;
    struct remote_job *sq_head, *sq_tail; /* the ring of jobs with halves waiting */
    int split_turn; /* a job's half goes next when both wait */
    struct remote_call *calls;
    struct remote_job *jobs;
    /* readiness (container) */
    int ready;
    char why[256];
    CURL *ping, *exec;
    struct ig_buf ping_resp, exec_resp;
    int exec_done;
    uint32_t exec_fails; /* GET /execution-parameters failed in a row (5xx, 429, no answer) */
    int ping_busy, exec_busy; /* a GET is out: its handle is not touched */
    struct event *ping_timer;
    /* breaker */
    int breaker;
    uint32_t fails_in_row;
    uint32_t open_fails; /* fails_in_row when it opened (said while open) */
    uint64_t open_until_us;
    int probe_out;
    /* The canary: a row the model answered well, kept (its own copy, at
     * most REMOTE_CANARY_MAX bytes) to tell a model that raises on every
     * call from one client's rows that make it raise (breaker_failure). */
    char *canary;
    uint32_t canary_len;
    uint64_t canary_us; /* when it was kept */
    uint64_t canary_ms; /* its call's timeout: 4 times its answer's time then, plus 1 s */
    int canary_asked; /* a canary went out in this streak of failures (breaker_failure) */
    /* the longest a call the model answered took, in this window of
     * REMOTE_ANSWER_WINDOW_US and the one before (canary_timeout) */
    uint64_t answer_us[2], answer_epoch;
    enum ig_format canary_ctype, canary_accept;
    struct ig_batch *canary_batch; /* the canary call's, while it is out */
    /* retry budget */
    double tokens;
    double split_tokens; /* the same for splits of answers wrong for some rows */
    uint64_t rng;
    /* sagemaker */
    char *region;
    char *host;     /* the Host header sent and signed */
    char *uri;      /* the path sent and signed */
    struct ig_aws_creds_provider *creds;
    int creds_wait; /* calls wait for the first credentials */
    struct ig_sigv4_key_cache keys;
};

static void call_start(struct remote_call *c);
static void call_free(struct remote_call *c);
static void job_complete(struct remote_job *job);
static void remote_pump(struct remote_upstream *ru);

static uint64_t remote_rand(struct remote_upstream *ru)
{
    uint64_t x = ru->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ru->rng = x;
    return x;
}

/* ---- curl callbacks ------------------------------------------------------ */

/* Connections open to the backend, counted as libcurl opens and closes
 * their sockets (an idle one in the pool counts). */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct conn_count *cc = arg;
    curl_socket_t fd;

    (void)purpose;
    fd = socket(a->family, a->socktype, a->protocol);
    if (fd != CURL_SOCKET_BAD) {
        cc->n++;
        cc->ru->base.stats.connections++;
    }
    return fd;
}

static int on_close_socket(void *arg, curl_socket_t fd)
{
    struct conn_count *cc = arg;

    cc->n--;
    cc->ru->base.stats.connections--;
    return close(fd);
}

/*
 * A call's new connection. Behind the h2c gate, a call but the opener asks
 * for CURL_HTTP_VERSION_2_0, which over http:// opens a new connection as
 * HTTP/1.1 with Upgrade: h2c when there is no h2 connection to share (the
 * one counted in ru->conns was closed by the container while idle and is
 * found dead only now, or it has no stream to spare:
 * SETTINGS_MAX_CONCURRENT_STREAMS). That connection then stays in the pool
 * and every later call takes it: h2c would be HTTP/1.1 for good (and a
 * container that speaks only HTTP/2 fails every call). Refused instead:
 * on_call_done sends the call again as an opener, by prior knowledge.
 */
static curl_socket_t on_call_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct remote_call *c = arg;
    struct remote_upstream *ru = c->job->ru;

    if (ru->h2c_gate && !c->opener) {
        c->conn_refused = 1;
        return CURL_SOCKET_BAD;
    }
    return on_open_socket(&ru->conns, purpose, a);
}

static void count_sockets(struct conn_count *cc, CURL *easy)
{
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, cc);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, cc);
}

/*
 * libcurl before 8.0.0 (Debian 12 has 7.88.1) breaks a transfer that
 * reuses an h2c connection opened by prior knowledge ("Error in the HTTP2
 * framing layer", curl issue 10634, fixed by curl PR 10643): on reuse it
 * stacks a second HTTP/2 layer. There, the first call of a connection goes
 * alone with prior knowledge, and the calls after it ask for
 * CURL_HTTP_VERSION_2_0, which takes the open h2 connection as it is.
 */
static int curl_h2c_reuse_broken(void)
{
    return curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
}

/* The HTTP version of <ru>'s calls, once its URL is known (at open). */
static void remote_set_version(struct remote_upstream *ru)
{
    int tls = strncmp(ru->url_invoke, "https:", 6) == 0;

    ru->http_version = !ru->conf->upstream_http2 ? CURL_HTTP_VERSION_1_1
                       : tls                     ? CURL_HTTP_VERSION_2TLS
                                                 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    ru->h2c_gate = ru->conf->upstream_http2 && !tls && curl_h2c_reuse_broken();
}

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
    struct ig_buf *b = arg;

    /* Past the cap: 0 aborts the transfer (CURLE_WRITE_ERROR). */
    return ig_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* Slide <c->tail> over <len> more bytes of the answer: it holds the last
 * sizeof(c->tail) bytes read. */
static void call_tail_push(struct remote_call *c, const char *p, size_t len)
{
    size_t keep;

    if (len >= sizeof(c->tail)) {
        memcpy(c->tail, p + len - sizeof(c->tail), sizeof(c->tail));
        c->tail_len = sizeof(c->tail);
        return;
    }
    keep = c->tail_len + len > sizeof(c->tail) ? sizeof(c->tail) - len : c->tail_len;
    memmove(c->tail, c->tail + c->tail_len - keep, keep);
    memcpy(c->tail + keep, p, len);
    c->tail_len = keep + len;
}

/* An error answer past the cap: what fits is kept, the rest read and
 * dropped but for its last bytes (<c->tail>, where SageMaker's ModelError
 * puts OriginalStatusCode), up to REMOTE_RESP_MAX in all (then the
 * transfer stops, and on_call_done takes what it has). The tail is the
 * answer's last bytes whatever the cap cut: it starts with the last ones
 * kept, so a key the cap falls inside is whole in it. The error still
 * reaches its rows, as the model said it: a 4xx still splits the call, a
 * 5xx is still retried. */
static size_t call_cut_error(struct remote_call *c, const char *p, size_t len)
{
    size_t fit = c->resp_cap > c->resp.len ? c->resp_cap - c->resp.len : 0;

    if (!c->cut) { /* the first cut: the tail starts with the end of what was kept */
        size_t k = c->resp.len < sizeof(c->tail) ? c->resp.len : sizeof(c->tail);

        if (k > 0)
            call_tail_push(c, c->resp.data + c->resp.len - k, k);
    }
    c->cut = 1;
    c->cut_read += len;
    if (c->cut_read > REMOTE_RESP_MAX)
        return 0;
    if (fit > len)
        fit = len;
    if (fit > 0 && c->job->ru->base.budget != NULL &&
        ig_budget_hold_set(&c->hold, c->job->ru->base.budget,
                           c->body.cap + ig_buf_grown_cap(&c->resp, fit)) < 0) {
        c->over = 2;
        return 0;
    }
    if (fit > 0 && ig_buf_append(&c->resp, p, fit) < 0)
        return 0;
    call_tail_push(c, p, len);
    return len;
}

/* A call's answer: capped by its rows, charged to the server-wide budget
 * before the buffer grows; 0 aborts the transfer (c->over says why). */
static size_t on_call_write(char *p, size_t size, size_t n, void *arg)
{
    struct remote_call *c = arg;
    size_t len = size * n, cap;
    long code = 0;

    if (c->resp.len + len > c->resp_cap) {
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300)
            return call_cut_error(c, p, len);
        c->over = 1;
        return 0;
    }
    cap = ig_buf_grown_cap(&c->resp, len);
    if (cap != c->resp.cap && c->job->ru->base.budget != NULL &&
        ig_budget_hold_set(&c->hold, c->job->ru->base.budget, c->body.cap + cap) < 0) {
        c->over = 2;
        return 0;
    }
    return ig_buf_append(&c->resp, p, len) == 0 ? len : 0;
}

/* Copy header <name>'s value out of a raw header line, up to <stop>. */
static void hdr_take(const char *line, size_t len, const char *name, char *dst, size_t cap,
                     char stop)
{
    size_t n = strlen(name), i = 0;

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    line += n + 1;
    len -= n + 1;
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    while (i + 1 < cap && i < len && line[i] != '\r' && line[i] != '\n' && line[i] != stop) {
        dst[i] = line[i];
        i++;
    }
    dst[i] = '\0';
}

/* <s>'s first <n> bytes without the blanks (SP, HTAB) they end with. */
static size_t rtrim_blanks(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

/* hdr_take for a value the gateway answers its client with (the custom
 * attributes, the variant): without the blanks around it (OWS, not the
 * value's), and none at all when it holds a control character (a NUL, a
 * bare CR, ...): an HTTP/2 client refuses such a field, and the response
 * with it (curl, nghttp2: PROTOCOL_ERROR), so the model's answer would
 * lose the request its predictions. Returns whether <line> is <name>'s. */
static int hdr_take_field(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t n = strlen(name), i;

    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return 0;
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    for (i = n + 1; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            dst[0] = '\0';
            return 1;
        }
    }
    hdr_take(line, len, name, dst, cap, '\0');
    dst[rtrim_blanks(dst, strlen(dst))] = '\0';
    return 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct remote_call *c = arg;
    size_t len = size * n;
    char v[2 * sizeof(c->variant)] = "";

    c->hdr_bytes += len;
    if (c->hdr_bytes > REMOTE_HDR_MAX) {
        c->over = 3;
        return 0; /* CURLE_WRITE_ERROR */
    }
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new answer (after a 100): start over */
        c->ctype[0] = c->etype[0] = c->attrs[0] = c->variant[0] = '\0';
        c->ctype_two = c->hdr_end = 0;
        return len;
    }
    /* Trailers (chunked, HTTP/2) come through here too, after the body:
     * they may not say what the body is nor whose it is (RFC 9110 6.5.1),
     * so a trailer's Content-Type or variant does not replace the header's */
    if (c->hdr_end)
        return len;
    if (p[0] == '\r' || p[0] == '\n') {
        c->hdr_end = 1;
        return len;
    }
    if (c->ctype[0] != '\0') {
        /* a second Content-Type: the last one would win, and rows read in a
         * format the body is not in reach the client as predictions */
        char again[sizeof(c->ctype)] = "";
        size_t a, b;

        hdr_take(p, len, "Content-Type", again, sizeof(again), ';');
        /* the same type (blanks before a ';' aside) is no conflict */
        a = rtrim_blanks(again, strlen(again));
        b = rtrim_blanks(c->ctype, strlen(c->ctype));
        if (a > 0 && (a != b || strncasecmp(again, c->ctype, a) != 0))
            c->ctype_two = 1;
    } else {
        hdr_take(p, len, "Content-Type", c->ctype, sizeof(c->ctype), ';');
    }
    hdr_take(p, len, "x-amzn-ErrorType", c->etype, sizeof(c->etype), ':');
    hdr_take_field(p, len, "X-Amzn-SageMaker-Custom-Attributes", c->attrs, sizeof(c->attrs));
    /* A variant is a name (^[a-zA-Z0-9](-*[a-zA-Z0-9])*, 63 at most):
     * anything else (a longer one the buffer would cut into another name,
     * one cut inside a UTF-8 character, bytes past ASCII) is not answered
     * to the client as the variant that served it */
    if (hdr_take_field(p, len, "x-Amzn-Invoked-Production-Variant", v, sizeof(v)))
        snprintf(c->variant, sizeof(c->variant), "%s", ig_config_name_ok(v, strlen(v)) ? v : "");
    return len;
}

/* ---- answers --------------------------------------------------------------- */

/* Nesting a prediction may have: deeper is refused (not valid for us). */
/*
 * Split an answer <b> of <len> bytes in format <fmt> into predictions:
 * <preds> (room for <cap>) gets slices of <b>; returns how many there are,
 * or -1 when the answer is not in that format (counts past <cap> are
 * counted, not stored). CSV and JSON Lines: one line each (a last line may
 * lack its newline; CR before LF is dropped), a JSON Lines line one JSON
 * value. JSON: the elements of the
 * array under <key> in a top-level object, or of a top-level array.
 */
struct remote_rec_split {
    struct ig_pred *preds;
    uint32_t cap;
    long n;
};

static int remote_split_rec(const struct ig_recordio_rec *rec, void *arg)
{
    struct remote_rec_split *sp = arg;

    if ((uint64_t)sp->n < sp->cap) {
        sp->preds[sp->n].off = (uint32_t)rec->frame_off;
        sp->preds[sp->n].len = (uint32_t)rec->frame_len;
    }
    sp->n++;
    return 0;
}

static long remote_split(enum ig_format fmt, const char *key, const char *b, size_t len,
                         struct ig_pred *preds, uint32_t cap)
{
    const char *p = b, *end = b + len;
    long n = 0;

    if (fmt == IG_FMT_RECORDIO) {
        /* one record each, its frames whole (forwarded as they are) */
        struct remote_rec_split sp = {preds, cap, 0};
        struct ig_recordio_dec *d;
        int rv;

        if (len > UINT32_MAX || ig_recordio_dec_new(IG_RECORDIO_MAX_FRAME, &d) < 0)
            return -1;
        rv = ig_recordio_dec_feed(d, b, len, remote_split_rec, &sp, NULL);
        if (rv == 0)
            rv = ig_recordio_dec_end(d, NULL);
        ig_recordio_dec_free(d);
        return rv == 0 ? sp.n : -1;
    }
    if (fmt != IG_FMT_JSON) {
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;

            if (le > p && le[-1] == '\r')
                le--;
            /* JSON Lines: each line one JSON value (the client gets it as is) */
            if (fmt == IG_FMT_JSONL) {
                const char *e = le > p ? ig_json_skip(p, le) : NULL;

                if (e == NULL || ig_json_ws(e, le) != le)
                    return -1;
            }
            if ((uint64_t)n < cap) {
                preds[n].off = (uint32_t)(p - b);
                preds[n].len = (uint32_t)(le - p);
            }
            n++;
            p = nl ? nl + 1 : end;
        }
        return n;
    }
    /* Valid JSON as a whole, nothing after it: the walk below may trust
     * the structure (the client gets these slices re-wrapped). */
    if ((p = ig_json_skip(b, end)) == NULL || ig_json_ws(p, end) != end)
        return -1;
    p = ig_json_ws(b, end);
    if (p < end && *p == '{') {
        const char *arr = NULL;

        p = ig_json_ws(p + 1, end);
        while (p < end && *p != '}') {
            const char *k = p, *ke = ig_json_skip(p, end);

            if (ke == NULL || *k != '"')
                return -1;
            p = ig_json_ws(ke, end);
            if (p >= end || *p != ':')
                return -1;
            p = ig_json_ws(p + 1, end);
            if ((size_t)(ke - k - 2) == strlen(key) && memcmp(k + 1, key, strlen(key)) == 0)
                arr = p;
            if ((p = ig_json_skip(p, end)) == NULL)
                return -1;
            p = ig_json_ws(p, end);
            if (p < end && *p == ',')
                p = ig_json_ws(p + 1, end);
        }
        if (arr == NULL || p >= end)
            return -1;
        p = arr;
    }
    if (p >= end || *p != '[')
        return -1;
    p = ig_json_ws(p + 1, end);
    while (p < end && *p != ']') {
        const char *e = ig_json_skip(p, end);

        if (e == NULL)
            return -1;
        if ((uint64_t)n < cap) {
            preds[n].off = (uint32_t)(p - b);
            preds[n].len = (uint32_t)(e - p);
        }
        n++;
        p = ig_json_ws(e, end);
        if (p < end && *p == ',')
            p = ig_json_ws(p + 1, end);
        else if (p < end && *p != ']')
            return -1;
    }
    return p < end ? n : -1;
}

/* ---- jobs ------------------------------------------------------------------ */

/* Rows [lo, hi) of <job> fail: each is answered <type> (<status>, <msg>). */
static void job_fail_rows(struct remote_job *job, uint32_t lo, uint32_t hi, const char *type,
                          int status, const char *msg, size_t msglen)
{
    size_t off = job->out.len;

    if (job->fails == NULL &&
        (job->fails = ig_try_malloc((size_t)job->nrows * sizeof(*job->fails))) == NULL)
        goto nomem;
    if (msglen > REMOTE_MSG_MAX)
        msglen = REMOTE_MSG_MAX;
    if (ig_buf_append(&job->out, msg, msglen) < 0)
        goto nomem;
    for (uint32_t i = lo; i < hi; i++) {
        job->preds[i].off = (uint32_t)off;
        job->preds[i].len = (uint32_t)msglen | IG_PRED_FAILED;
        job->fails[i].type = type;
        job->fails[i].status = status;
        job->fails[i].suspect = 0;
    }
    return;
nomem:
    if (job->err_type == NULL) {
        job->err_type = "InternalFailure";
        job->err_msg = ig_xstrdup("Out of memory for the model's answer.");
    }
}

static void on_job_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_complete(arg);
}

/* Complete <job> from the loop, not from the caller's stack. */
static void job_complete_later(struct remote_job *job)
{
    struct timeval now = {0, 0};

    if (job->later == NULL)
        job->later = evtimer_new(job->ru->evb, on_job_deferred, job);
    evtimer_add(job->later, &now);
}

static void job_free(struct remote_job *job)
{
    IG_DLIST_UNLINK(job->ru->jobs, job);
    if (job->later != NULL)
        event_free(job->later);
    for (uint32_t i = 0; job->pass != NULL && i < job->nsegs; i++) {
        free(job->pass[i].custom_attributes);
        free(job->pass[i].inference_id);
        free(job->pass[i].target_variant);
    }
    free(job->pass);
    for (uint32_t i = 0; job->backs != NULL && i < job->nsegs; i++) {
        free(job->backs[i].custom_attributes);
        free(job->backs[i].variant);
    }
    free(job->backs);
    free(job->seg_first);
    free(job->seg_left);
    free(job->rows);
    free(job->row_off);
    free(job->preds);
    free(job->fails);
    free(job->err_msg);
    ig_buf_clear(&job->out);
    ig_budget_hold_clear(&job->hold);
    ig_budget_hold_clear(&job->out_hold);
    free(job);
}

/* Every call of <job> has ended: hand the batch back. */
static void job_complete(struct remote_job *job)
{
    struct ig_batch *b = job->batch;
    ig_upstream_done_cb *cb = job->cb;
    void *arg = job->arg;

    b->upstream_data = NULL;
    if (job->cancelled) {
        b->status = IG_ERR_CANCELLED;
        b->err_type = "InternalFailure";
        b->err_msg = ig_xstrdup("The request was cancelled.");
    } else if (job->err_type != NULL) {
        b->status = IG_ERR_IO;
        b->err_type = job->err_type;
        b->err_msg = job->err_msg;
        job->err_msg = NULL;
    } else {
        b->status = 0;
        b->out = ig_buf_take(&job->out, &b->out_len);
        b->preds = job->preds;
        b->fails = job->fails;
        b->backs = job->backs;
        job->preds = NULL;
        job->fails = NULL;
        job->backs = NULL;
    }
    job_free(job);
    cb(b, arg);
}

/* ---- breaker and retry budget ---------------------------------------------- */

static void breaker_success(struct remote_upstream *ru, const struct remote_call *c)
{
    ru->fails_in_row = 0;
    ru->canary_asked = 0;
    if (c->probe) {
        ru->probe_out = 0;
        if (ru->breaker != BREAKER_CLOSED)
            ig_log(IG_LOG_INFO, "endpoint %s: %s answered the probe: circuit breaker closed",
                   ru->conf->name, ru->label);
        ru->breaker = BREAKER_CLOSED;
    }
    ru->base.stats.breaker_state = (uint32_t)ru->breaker;
}

static void canary_send(struct remote_upstream *ru, int probe);

/* Whether a failure of <c> now opens the breaker (or keeps a half-open one
 * open). */
static int breaker_would_open(const struct remote_upstream *ru, const struct remote_call *c)
{
    return (c->probe && ru->breaker == BREAKER_HALF) ||
           (ru->breaker == BREAKER_CLOSED && ru->fails_in_row + 1 >= ru->conf->breaker_failures);
}

/*
 * A failed call <c>: a call not answered (timeout, connection, a 5xx but
 * the model's 500), or a request the model raised on (a 500 after its
 * retries and splits, counted once: call_bisect).
 *
 * No failure opens the breaker (or keeps a half-open one open) without
 * the canary's word when there is one: a count may hold one client's
 * requests that the model raised on, or timed out on (rows that take it
 * long: each attempt counts), and then any failure, a passing 503 of
 * another's, would open it; a half-open breaker's probe may be such a
 * request. The canary, a row the model answered well before, is sent
 * instead (with <c>'s probe, if it held it): answered well, the model is
 * up and the count starts again (a half-open breaker closes); not, it is
 * the failure that opens the breaker. A model that is down fails the
 * canary too, one call later.
 */
static void breaker_failure(struct remote_upstream *ru, struct remote_call *c)
{
    /* a canary of this streak came back with no verdict (throttled, refused
     * by the budget, an answer too large): not asked again until a call is
     * answered well or the breaker opens (else each failure sent another,
     * and a model that fails all but the canary never opened it) */
    if (ru->canary != NULL && c->job->batch != ru->canary_batch && breaker_would_open(ru, c) &&
        !(c->probe && ru->canary_batch != NULL) &&
        (ru->canary_batch != NULL || !ru->canary_asked)) {
        if (ru->canary_batch == NULL) {
            canary_send(ru, c->probe);
            c->probe = 0; /* the canary holds it */
        }
        ru->fails_in_row++;
        return;
    }
    ru->fails_in_row++;
    if (c->probe)
        ru->probe_out = 0;
    if ((c->probe && ru->breaker == BREAKER_HALF) ||
        (ru->breaker == BREAKER_CLOSED && ru->fails_in_row >= ru->conf->breaker_failures)) {
        ru->breaker = BREAKER_OPEN;
        ru->open_until_us = ig_now_us() + ru->conf->breaker_open_ms * 1000;
        ru->open_fails = ru->fails_in_row;
        ru->canary_asked = 0;
        ru->base.stats.breaker_opens++;
        ig_log(IG_LOG_WARN,
               "endpoint %s: %s failed %u calls in a row: circuit breaker open for %llu ms",
               ru->conf->name, ru->label, ru->fails_in_row,
               (unsigned long long)ru->conf->breaker_open_ms);
    }
    ru->base.stats.breaker_state = (uint32_t)ru->breaker;
}

/* An open breaker whose breaker_open_ms is up is half-open: the next
 * batch is the probe (breaker_admit); readiness and the gauge say so. */
static void breaker_tick(struct remote_upstream *ru)
{
    if (ru->breaker == BREAKER_OPEN && ig_now_us() >= ru->open_until_us)
        ru->breaker = BREAKER_HALF;
    ru->base.stats.breaker_state = (uint32_t)ru->breaker;
}

/* Whether a new job may go out now; <probe> set when it is the probe. */
static int breaker_admit(struct remote_upstream *ru, int *probe)
{
    *probe = 0;
    if (ru->breaker == BREAKER_CLOSED)
        return 1;
    breaker_tick(ru);
    if (ru->breaker == BREAKER_HALF && !ru->probe_out) {
        ru->probe_out = 1;
        *probe = 1;
        return 1;
    }
    return 0;
}

/* ---- calls ------------------------------------------------------------------ */

static struct remote_call *call_new(struct remote_job *job, uint32_t lo, uint32_t hi)
{
    struct remote_call *c = ig_xcalloc(1, sizeof(*c));

    c->job = job;
    c->lo = lo;
    c->hi = hi;
    ig_buf_init(&c->body, (size_t)UINT32_MAX);
    ig_buf_init(&c->resp, REMOTE_RESP_MAX);
    c->resp_cap = (size_t)(hi - lo) * REMOTE_RESP_PER_ROW + ((size_t)64 << 10);
    if (c->resp_cap > REMOTE_RESP_MAX)
        c->resp_cap = REMOTE_RESP_MAX;
    IG_DLIST_PUSH(job->ru->calls, c);
    c->jprev = NULL;
    c->jnext = job->calls;
    if (job->calls != NULL)
        job->calls->jprev = c;
    job->calls = c;
    job->pending++;
    return c;
}

/* <job> takes its turn on the ring of jobs with halves waiting: at the back. */
static void job_ring_push(struct remote_job *job)
{
    struct remote_upstream *ru = job->ru;

    job->sq_next = NULL;
    job->sq_prev = ru->sq_tail;
    if (ru->sq_tail != NULL)
        ru->sq_tail->sq_next = job;
    else
        ru->sq_head = job;
    ru->sq_tail = job;
}

static void job_ring_unlink(struct remote_job *job)
{
    struct remote_upstream *ru = job->ru;

    if (job->sq_prev != NULL)
        job->sq_prev->sq_next = job->sq_next;
    else
        ru->sq_head = job->sq_next;
    if (job->sq_next != NULL)
        job->sq_next->sq_prev = job->sq_prev;
    else
        ru->sq_tail = job->sq_prev;
    job->sq_prev = job->sq_next = NULL;
}

/* Take <c> off the queue, its transfer or its timer. */
static void call_detach(struct remote_call *c)
{
    struct remote_upstream *ru = c->job->ru;

    if (c->where == CALL_RUNNING) {
        ig_curl_loop_cancel(ru->cl, c->easy);
        ru->running--;
    } else if (c->where == CALL_QUEUED) { /* O(1): a mass cancel is linear */
        struct call_queue *q = c->qsplit ? &c->job->halves : &ru->fresh;

        if (c->qprev != NULL)
            c->qprev->qnext = c->qnext;
        else
            q->head = c->qnext;
        if (c->qnext != NULL)
            c->qnext->qprev = c->qprev;
        else
            q->tail = c->qprev;
        if (c->qsplit && q->head == NULL) /* the job's last half waiting: off the ring */
            job_ring_unlink(c->job);
    } else if (c->where == CALL_BACKOFF) {
        event_del(c->timer);
    }
    c->where = CALL_NONE;
}

static void call_free(struct remote_call *c)
{
    struct remote_upstream *ru = c->job->ru;

    if (c->opener)
        ru->h2c_opening = 0;
    if (c->probe && ru->probe_out) {
        /* the probe ended with no verdict (throttled, too large, not
         * sent): open again, and probe again later */
        ru->probe_out = 0;
        ru->breaker = BREAKER_OPEN;
        ru->open_until_us = ig_now_us() + ru->conf->breaker_open_ms * 1000;
        ru->base.stats.breaker_state = (uint32_t)ru->breaker;
    }
    call_detach(c);
    IG_DLIST_UNLINK(c->job->ru->calls, c);
    if (c->jprev != NULL)
        c->jprev->jnext = c->jnext;
    else
        c->job->calls = c->jnext;
    if (c->jnext != NULL)
        c->jnext->jprev = c->jprev;
    if (c->easy != NULL)
        curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->hdrs);
    if (c->timer != NULL)
        event_free(c->timer);
    ig_buf_clear(&c->body);
    ig_buf_clear(&c->resp);
    ig_budget_hold_clear(&c->hold);
    free(c);
}

static uint32_t job_seg_of(const struct remote_job *job, uint32_t row);

/*
 * Rows [lo, hi) of <job> are answered (predictions, or failed rows) for
 * good, and other calls of it are still out: a segment whose rows now all
 * are goes back to the gateway (batch->seg_done) at once, so that a request
 * batched with rows the model refuses waits for its own half of the split,
 * not for the whole split, and the request holding them learns it as soon
 * as they are alone. Not once the job has failed whole (err_type: its
 * rows may not all be written) or was cancelled.
 */
static void job_settle(struct remote_job *job, uint32_t lo, uint32_t hi)
{
    struct ig_batch *b = job->batch;

    if (job->nsegs < 2 || b->seg_done == NULL)
        return; /* one segment: answered with the job's last call */
    if (job->seg_left == NULL) { /* the first call to end leaving others out */
        job->seg_left = ig_xmalloc(job->nsegs * sizeof(*job->seg_left));
        for (uint32_t s = 0; s < job->nsegs; s++)
            job->seg_left[s] = job->seg_first[s + 1] - job->seg_first[s];
    }
    /* Held across the gateway's callbacks: answering a request may cancel
     * its other batch, whose remote_cancel pumps the queue, where a call of
     * this job may fail as it starts (the budget full) and end the job's
     * last call: completed (and the batch freed) under this loop else. */
    job->pending++;
    for (uint32_t s = lo < hi ? job_seg_of(job, lo) : job->nsegs;
         s < job->nsegs && job->seg_first[s] < hi; s++) {
        uint32_t a = job->seg_first[s] > lo ? job->seg_first[s] : lo;
        uint32_t e = job->seg_first[s + 1] < hi ? job->seg_first[s + 1] : hi;

        job->seg_left[s] -= e - a;
        if (job->seg_left[s] != 0 || job->cancelled || job->err_type != NULL)
            continue;
        b->out = job->out.data;
        b->out_len = job->out.len;
        b->preds = job->preds;
        b->fails = job->fails;
        b->backs = job->backs;
        b->seg_done(b, s, job->seg_first[s], b->seg_done_arg);
        b->out = NULL;
        b->out_len = 0;
        b->preds = NULL;
        b->fails = NULL;
        b->backs = NULL;
    }
    if (--job->pending == 0)
        job_complete(job);
}

/* <c> is over: free it, and complete its job when it was the last; else
 * hand back the segments its rows finished (job_settle). */
static void call_end(struct remote_call *c)
{
    struct remote_job *job = c->job;
    uint32_t lo = c->lo, hi = c->handed_on ? c->lo : c->hi;

    call_free(c);
    if (--job->pending == 0)
        job_complete(job);
    else
        job_settle(job, lo, hi);
}

/* The body of rows [lo, hi): lines, {"instances":[...]}, or RecordIO
 * records back to back. */
static int call_body(struct remote_call *c)
{
    const struct remote_job *job = c->job;
    int json = job->ctype == IG_FMT_JSON, lines = job->ctype != IG_FMT_RECORDIO;
    size_t n = job->row_off[c->hi] - job->row_off[c->lo] + (c->hi - c->lo) + REMOTE_JSON_WRAP;
    int rv;

    ig_buf_reset(&c->body);
    if (job->ru->base.budget != NULL &&
        ig_budget_hold_set(&c->hold, job->ru->base.budget, n + 1 + c->resp.cap) < 0)
        return IG_ERR_FULL;
    if ((rv = ig_buf_reserve(&c->body, n)) < 0)
        return rv;
    if (json)
        ig_buf_append_str(&c->body, "{\"instances\":[");
    for (uint32_t i = c->lo; i < c->hi; i++) {
        if (json && i > c->lo)
            ig_buf_append_char(&c->body, ',');
        ig_buf_append(&c->body, job->rows + job->row_off[i], job->row_off[i + 1] - job->row_off[i]);
        if (!json && lines)
            ig_buf_append_char(&c->body, '\n');
    }
    if (json)
        ig_buf_append_str(&c->body, "]}");
    return 0;
}

static void on_call_done(CURL *easy, CURLcode rc, void *arg);

/*
 * SigV4 for SageMaker: Host, Content-Type and Accept signed with the
 * credentials of the moment (a refresh never waits: the old ones serve
 * until the new ones are in). IG_ERR_AGAIN while the first credentials
 * are being fetched (the call waits for them); another error when there
 * are none (<c> fails).
 */
static int call_sign(struct remote_call *c)
{
    struct remote_upstream *ru = c->job->ru;
    const struct ig_aws_creds *cr;
    struct ig_sigv4_hdr hv[6];
    size_t nh = 3;
    struct ig_sigv4_in in = {0};
    struct ig_sigv4_out out = {0};
    char h[IG_AWS_CREDS_MAX_TOKEN + 64], why[512];
    int rv;

    if ((rv = ig_aws_creds_get(ru->creds, &cr, why, sizeof(why))) < 0)
        return rv;
    hv[0].name = "Host";
    hv[0].value = ru->host;
    hv[1].name = "Content-Type";
    hv[1].value = ig_codec_format_mime(c->job->ctype);
    hv[2].name = "Accept";
    hv[2].value = ig_codec_format_mime(c->job->accept);
    if (c->pass != NULL && c->pass->custom_attributes != NULL) {
        hv[nh].name = "X-Amzn-SageMaker-Custom-Attributes";
        hv[nh++].value = c->pass->custom_attributes;
    }
    if (c->pass != NULL && c->pass->inference_id != NULL) {
        hv[nh].name = "X-Amzn-SageMaker-Inference-Id";
        hv[nh++].value = c->pass->inference_id;
    }
    if (c->pass != NULL && c->pass->target_variant != NULL) {
        hv[nh].name = "X-Amzn-SageMaker-Target-Variant";
        hv[nh++].value = c->pass->target_variant;
    }
    in.method = "POST";
    in.uri = ru->uri;
    in.hdrs = hv;
    in.nhdrs = nh;
    in.body = c->body.data;
    in.body_len = c->body.len;
    in.region = ru->region;
    in.service = "sagemaker";
    in.access_key = cr->access_key;
    in.secret_key = cr->secret_key;
    in.session_token = cr->session_token;
    in.now = time(NULL);
    in.key_cache = &ru->keys;
    if ((rv = ig_sigv4_sign(&in, &out)) < 0) {
        ig_log(IG_LOG_WARN, "endpoint %s: cannot sign the call to %s: %s", ru->conf->name,
               ru->label, out.error);
        return rv;
    }
    snprintf(h, sizeof(h), "Host: %s", ru->host);
    c->hdrs = curl_slist_append(c->hdrs, h);
    snprintf(h, sizeof(h), "X-Amz-Date: %s", out.amz_date);
    c->hdrs = curl_slist_append(c->hdrs, h);
    if (cr->session_token != NULL && cr->session_token[0] != '\0') {
        snprintf(h, sizeof(h), "X-Amz-Security-Token: %s", cr->session_token);
        c->hdrs = curl_slist_append(c->hdrs, h);
    }
    snprintf(h, sizeof(h), "Authorization: %s", out.authorization);
    c->hdrs = curl_slist_append(c->hdrs, h);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
    ig_sigv4_out_clear(&out);
    return 0;
}

/*
 * A forwarded header <name> of <c>'s request (<value> NULL: none). An
 * empty value is sent as one: libcurl drops "Name: " from a list, so it
 * takes its "Name;" form, and SageMaker gets the empty header it was told
 * is signed (boto3 sends CustomAttributes="" as such a header).
 */
static void call_pass_hdr(struct remote_call *c, const char *name, const char *value)
{
    char h[1100];

    if (value == NULL)
        return;
    if (value[0] == '\0')
        snprintf(h, sizeof(h), "%s;", name);
    else
        snprintf(h, sizeof(h), "%s: %s", name, value);
    c->hdrs = curl_slist_append(c->hdrs, h);
}

/* Set up the transfer of <c>. 0, or a negative IG_ERR_* with <c> failed. */
static int call_setup(struct remote_call *c)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    char h[192];
    int rv;

    if (c->easy == NULL && (c->easy = curl_easy_init()) == NULL)
        return IG_ERR_NOMEM;
    curl_easy_reset(c->easy);
    curl_slist_free_all(c->hdrs);
    c->hdrs = NULL;
    ig_buf_reset(&c->resp);
    c->over = c->cut = 0;
    c->hdr_bytes = 0;
    c->tail_len = 0;
    c->cut_read = 0;
    c->ctype[0] = c->etype[0] = '\0';
    c->ctype_two = c->hdr_end = 0;
    if (c->body.len == 0 && (rv = call_body(c)) < 0)
        return rv;
    snprintf(h, sizeof(h), "Content-Type: %s", ig_codec_format_mime(job->ctype));
    c->hdrs = curl_slist_append(c->hdrs, h);
    snprintf(h, sizeof(h), "Accept: %s", ig_codec_format_mime(job->accept));
    c->hdrs = curl_slist_append(c->hdrs, h);
    c->hdrs = curl_slist_append(c->hdrs, "Expect:"); /* no 100-continue round trip */
    /* What SageMaker hands a container too; the target variant is a
     * routing input (the gateway's own, or SageMaker's) */
    if (c->pass != NULL) {
        call_pass_hdr(c, "X-Amzn-SageMaker-Custom-Attributes", c->pass->custom_attributes);
        call_pass_hdr(c, "X-Amzn-SageMaker-Inference-Id", c->pass->inference_id);
    }
    if (ru->kind == REMOTE_SAGEMAKER && c->pass != NULL)
        call_pass_hdr(c, "X-Amzn-SageMaker-Target-Variant", c->pass->target_variant);
    curl_easy_setopt(c->easy, CURLOPT_URL, ru->url_invoke);
    curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body.data);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body.len);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_call_write);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS,
                     (long)(c->timeout_ms ? c->timeout_ms : ru->conf->upstream_timeout_ms));
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    /* behind the h2c gate, the calls after the opener take its connection */
    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION,
                     ru->h2c_gate && !c->opener ? CURL_HTTP_VERSION_2_0 : ru->http_version);
    curl_easy_setopt(c->easy, CURLOPT_PIPEWAIT, 1L); /* h2: share a connection when one comes */
    /* libcurl before 8 reads an h2 answer's header block through this
     * buffer (16 KiB by default): a block larger, with the DATA after it in
     * the same read, stalls the call until its timeout (the curl tool sets
     * 100 KiB, which is why it does not). Room for REMOTE_HDR_MAX and a
     * frame: headers up to it are read, past it refused (on_header). */
    if (ru->conf->upstream_http2)
        curl_easy_setopt(c->easy, CURLOPT_BUFFERSIZE, (long)(REMOTE_HDR_MAX + (16 << 10)));
    count_sockets(&ru->conns, c->easy);
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETFUNCTION, on_call_socket);
    curl_easy_setopt(c->easy, CURLOPT_OPENSOCKETDATA, c);
    c->conn_refused = 0;
    /* an opener never takes a connection of the pool: reusing an h2c one by
     * prior knowledge is what this libcurl breaks (curl_h2c_reuse_broken) */
    if (c->opener)
        curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L);
    if (ru->kind == REMOTE_CONTAINER)
        curl_easy_setopt(c->easy, CURLOPT_PROXY, ""); /* a sidecar: never through a proxy */
    else
        return call_sign(c);
    return 0;
}

/* Send <c> now (a call slot is free). */
static void call_queue(struct remote_call *c, int front);

static void call_send(struct remote_call *c)
{
    struct remote_upstream *ru = c->job->ru;
    int rv;

    /* The half-open breaker's probe asks the container whether it is back,
     * not the connections that failed: an h2 connection the container no
     * longer serves (it takes streams and never answers them) would get
     * every probe, and every call after, for good (a timed-out stream is
     * reset, its connection kept). So it goes on a new connection, with
     * the pool emptied, when no call is out (else its calls' connections
     * stay theirs: a later probe does it). */
    if (c->probe && ru->kind == REMOTE_CONTAINER)
        ig_curl_loop_reset(ru->cl);
    if (ru->h2c_gate && (ru->conns.n == 0 || ru->h2c_reopen)) {
        if (ru->h2c_opening) { /* the opener's connection is on its way */
            call_queue(c, 1);
            return;
        }
        ru->h2c_opening = 1;
        ru->h2c_reopen = 0;
        c->opener = 1;
    }
    if ((rv = call_setup(c)) == IG_ERR_AGAIN) {
        ru->creds_wait = 1; /* the first credentials are on their way */
        if (c->opener) {
            c->opener = 0;
            ru->h2c_opening = 0;
        }
        call_queue(c, 1);
        return;
    }
    if (rv < 0 || (rv = ig_curl_loop_add(ru->cl, c->easy, on_call_done, c)) < 0) {
        char msg[768], why[512] = "";

        if (ru->kind == REMOTE_SAGEMAKER && ru->creds != NULL) {
            const struct ig_aws_creds *cr;

            if (ig_aws_creds_get(ru->creds, &cr, why, sizeof(why)) < 0) {
                snprintf(msg, sizeof(msg), "The gateway has no AWS credentials to call %s: %s",
                         ru->label, why);
                job_fail_rows(c->job, c->lo, c->hi, "InternalFailure", 0, msg, strlen(msg));
                call_end(c);
                return;
            }
        }
        if (rv == IG_ERR_FULL && ru->base.budget != NULL) {
            snprintf(msg, sizeof(msg),
                     "The gateway holds what it may for clients (%llu bytes) and cannot send "
                     "these rows to the model now; retry later.",
                     (unsigned long long)ru->base.budget->cap);
            job_fail_rows(c->job, c->lo, c->hi, "ThrottlingException", 0, msg, strlen(msg));
        } else {
            job_fail_rows(c->job, c->lo, c->hi, "InternalFailure", 0,
                          "The gateway could not start the call to the model.", 50);
        }
        call_end(c);
        return;
    }
    c->where = CALL_RUNNING;
    c->start_us = ig_now_us();
    ru->running++;
    ru->base.stats.calls++;
    ig_hist_observe(&ru->base.stats.call_rows, c->hi - c->lo);
}

/* Whether calls wait for a slot. */
static int remote_queued(const struct remote_upstream *ru)
{
    return ru->fresh.head != NULL || ru->sq_head != NULL;
}

/* Queue <c> at the back of its queue (or at the front of the fresh
 * calls': its turn came already). */
static void call_queue(struct remote_call *c, int front)
{
    struct remote_upstream *ru = c->job->ru;
    struct call_queue *q;

    c->where = CALL_QUEUED;
    c->qsplit = c->half && !front;
    c->qfront = front;
    q = c->qsplit ? &c->job->halves : &ru->fresh;
    if (c->qsplit && q->head == NULL) /* its job's first half waiting: on the ring */
        job_ring_push(c->job);
    if (front) {
        c->qprev = NULL;
        c->qnext = q->head;
        if (q->head != NULL)
            q->head->qprev = c;
        else
            q->tail = c;
        q->head = c;
    } else {
        c->qnext = NULL;
        c->qprev = q->tail;
        if (q->tail != NULL)
            q->tail->qnext = c;
        else
            q->head = c;
        q->tail = c;
    }
}

/* Send <c>, or queue it behind the calls waiting for a slot. */
static void call_start(struct remote_call *c)
{
    struct remote_upstream *ru = c->job->ru;

    if (ru->running < ru->max_calls && !remote_queued(ru) && !ru->creds_wait &&
        !ru->h2c_opening) {
        call_send(c);
        return;
    }
    call_queue(c, 0);
}

/* Start queued calls while slots are free: a fresh call and a job's half
 * in turn, the jobs' halves in turn; a call whose turn came already (a
 * canary, a call that waited for credentials) first. */
static void remote_pump(struct remote_upstream *ru)
{
    while (ru->running < ru->max_calls && remote_queued(ru) && !ru->creds_wait &&
           !ru->h2c_opening) {
        struct remote_call *c;

        if (ru->sq_head != NULL && (ru->fresh.head == NULL ||
                                    (ru->split_turn && !ru->fresh.head->qfront))) {
            struct remote_job *job = ru->sq_head;

            c = job->halves.head;
            call_detach(c); /* off its job's halves (and the job off the ring, the last) */
            if (ru->sq_head == job && job->sq_next != NULL) { /* its next half: after the others' */
                job_ring_unlink(job);
                job_ring_push(job);
            }
            ru->split_turn = 0;
        } else {
            c = ru->fresh.head;
            call_detach(c); /* off the queue */
            ru->split_turn = 1;
        }
        call_send(c);
    }
}

static void on_backoff(evutil_socket_t fd, short what, void *arg)
{
    struct remote_call *c = arg;

    (void)fd;
    (void)what;
    c->where = CALL_NONE;
    call_start(c);
}

/* Retry <c> after a backoff when the budget allows: 1, or 0 (not retried). */
static int call_retry(struct remote_call *c, enum ig_retry_reason why)
{
    struct remote_upstream *ru = c->job->ru;
    uint64_t cap_ms, wait_us;
    struct timeval tv;

    if (c->attempt >= ru->conf->retry_max || c->job->cancelled || ru->breaker == BREAKER_OPEN)
        return 0;
    if (ru->tokens < 1.0) {
        ru->base.stats.retries_denied++;
        return 0;
    }
    ru->tokens -= 1.0;
    cap_ms = ru->conf->retry_base_ms << (c->attempt < 20 ? c->attempt : 20);
    if (cap_ms > ru->conf->retry_max_ms)
        cap_ms = ru->conf->retry_max_ms;
    wait_us = remote_rand(ru) % (cap_ms * 1000 + 1); /* full jitter */
    c->attempt++;
    ru->base.stats.retries[why]++;
    if (c->timer == NULL)
        c->timer = evtimer_new(ru->evb, on_backoff, c);
    tv.tv_sec = (time_t)(wait_us / 1000000);
    tv.tv_usec = (suseconds_t)(wait_us % 1000000);
    c->where = CALL_BACKOFF;
    evtimer_add(c->timer, &tv);
    return 1;
}

/* The model refused rows [lo, hi): split in halves, or fail the one row. */
/* The segment (request) that row <row> of <job> belongs to. */
static uint32_t job_seg_of(const struct remote_job *job, uint32_t row)
{
    uint32_t lo = 0, hi = job->nsegs;

    while (hi - lo > 1) { /* seg_first[lo] <= row < seg_first[hi] */
        uint32_t mid = lo + (hi - lo) / 2;

        if (job->seg_first[mid] <= row)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the canary ------------------------------------------------------------- */

/* Keep row <i> of <c>'s job, which the model answered well, as the canary
 * when there is none: a row of a request that forwards no headers and
 * holds no line break, of at most REMOTE_CANARY_MAX bytes. */
static void canary_keep(struct remote_call *c, uint32_t i)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    uint32_t len = job->row_off[i + 1] - job->row_off[i];
    uint64_t now;
    char *row;

    if (ru->canary_batch != NULL || c->pass != NULL ||
        len == 0 || len > REMOTE_CANARY_MAX || (job->preds[i].len & IG_PRED_FAILED))
        return;
    now = ig_now_us();
    /* a fresh one (the model as it is now), answered well within a quarter
     * of the timeout (not a row the model takes nearly the timeout on) */
    if ((ru->canary != NULL && now - ru->canary_us < REMOTE_CANARY_FRESH_US) ||
        now - c->start_us > (uint64_t)ru->conf->upstream_timeout_ms * 250)
        return;
    if ((row = ig_try_malloc(len)) == NULL)
        return;
    free(ru->canary);
    ru->canary = row;
    ru->canary_us = now;
    ru->canary_ms = (now - c->start_us) * 4 / 1000 + 1000;
    if (ru->canary_ms > ru->conf->upstream_timeout_ms)
        ru->canary_ms = ru->conf->upstream_timeout_ms;
    memcpy(ru->canary, job->rows + job->row_off[i], len);
    ru->canary_len = len;
    ru->canary_ctype = job->ctype;
    ru->canary_accept = job->accept;
}

static void canary_drop(struct remote_upstream *ru)
{
    free(ru->canary);
    ru->canary = NULL;
    ru->canary_len = 0;
}

/* The canary call is over: its verdict was given as it ended (on_call_done
 * and the breaker); a model that refuses the row now (a 4xx: a new model)
 * is asked another row the next time. */
static void on_canary_done(struct ig_batch *b, void *arg)
{
    struct remote_upstream *ru = arg;

    if (b->status == 0 && b->preds != NULL && (b->preds[0].len & IG_PRED_FAILED) &&
        b->fails != NULL && (b->fails[0].type == NULL || strcmp(b->fails[0].type, "ModelError") == 0) &&
        b->fails[0].status >= 400 && b->fails[0].status < 500)
        canary_drop(ru);
    ru->canary_batch = NULL;
    ig_batch_free(b); /* segs NULL: no request's */
}

/* The model answered a call (any HTTP answer) that took <us>. */
static void answer_time(struct remote_upstream *ru, uint64_t now, uint64_t us)
{
    uint64_t e = now / REMOTE_ANSWER_WINDOW_US;

    if (e != ru->answer_epoch) {
        ru->answer_us[1] = e == ru->answer_epoch + 1 ? ru->answer_us[0] : 0;
        ru->answer_us[0] = 0;
        ru->answer_epoch = e;
    }
    if (us > ru->answer_us[0])
        ru->answer_us[0] = us;
}

/* The canary call's timeout: 4 times its row's time when kept plus 1 s,
 * or twice the longest the model took to answer a call lately plus 1 s
 * when longer (a model up but slower now than then is not taken for
 * down), at most upstream_timeout_ms. */
static uint64_t canary_timeout(struct remote_upstream *ru)
{
    uint64_t ms = ru->canary_ms, recent;

    answer_time(ru, ig_now_us(), 0); /* the windows moved on */
    recent = ru->answer_us[0] > ru->answer_us[1] ? ru->answer_us[0] : ru->answer_us[1];
    if (recent * 2 / 1000 + 1000 > ms)
        ms = recent * 2 / 1000 + 1000;
    return ms < ru->conf->upstream_timeout_ms ? ms : ru->conf->upstream_timeout_ms;
}

/* Send the canary: one call of its row, not retried; <probe>: it stands
 * for the half-open breaker's probe. */
static void canary_send(struct remote_upstream *ru, int probe)
{
    struct remote_job *job = ig_xcalloc(1, sizeof(*job));
    struct ig_batch *b = ig_xcalloc(1, sizeof(*b));
    struct remote_call *c;

    b->nrows = 1;
    b->nbytes = ru->canary_len;
    b->nsegs = 1;
    job->ru = ru;
    job->batch = b;
    job->ctype = ru->canary_ctype;
    job->accept = ru->canary_accept;
    job->cb = on_canary_done;
    job->arg = ru;
    ig_buf_init(&job->out, REMOTE_RESP_MAX + REMOTE_MSG_MAX);
    job->rows = ig_xmalloc(ru->canary_len);
    memcpy(job->rows, ru->canary, ru->canary_len);
    job->row_off = ig_xcalloc(2, sizeof(*job->row_off));
    job->row_off[1] = ru->canary_len;
    job->preds = ig_xcalloc(1, sizeof(*job->preds));
    job->seg_first = ig_xcalloc(2, sizeof(*job->seg_first));
    job->seg_first[1] = 1;
    job->nrows = 1;
    job->nsegs = 1;
    IG_DLIST_PUSH(ru->jobs, job);
    b->upstream_data = job;
    ru->canary_batch = b;
    ru->canary_asked = 1;
    ru->base.stats.canaries++;
    ig_log(IG_LOG_INFO,
           "endpoint %s: %s failed %u calls in a row: a row it answered well before is sent "
           "to tell whether it is down or one client's rows failed it",
           ru->conf->name, ru->label, ru->fails_in_row + 1);
    c = call_new(job, 0, 1);
    c->attempt = ru->conf->retry_max; /* its answer is the verdict: not retried */
    /* a model that hangs is told soon, not after a whole upstream_timeout_ms
     * more of requests sent to it */
    c->timeout_ms = canary_timeout(ru);
    c->probe = probe;
    /* its verdict first: ahead of the calls waiting for a slot (behind
     * them, a model that hangs took every queued call's timeout more) */
    if (remote_queued(ru))
        call_queue(c, 1);
    else
        call_start(c);
}

/*
 * The model refused rows [lo, hi) of <c> (a 4xx), or raised on them (a 500
 * after the retries, <raised>), or answered them in a way that gives them
 * no predictions (type "InternalFailure": a count unlike the rows', an
 * answer that is not valid or does not convert, one larger than the rows
 * may take): split in halves, or fail the rows with <type>. A 500
 * that ends with rows failed is the model's verdict on a request after its
 * retries and splits: it counts once toward the breaker (a model that
 * raises on every request is down; one client's rows count once a request,
 * and any call answered well in between starts the count again). A
 * half-open breaker's probe that is split hands its part to the first half.
 */
/* Whether <c>'s rows are of more than one request. */
static int call_spans_requests(const struct remote_call *c)
{
    return job_seg_of(c->job, c->lo) != job_seg_of(c->job, c->hi - 1);
}

/* Failed rows [lo, hi) of <job> failed for their own sake, not another
 * request's (ig_row_fail.suspect): their clients are batched apart for a
 * while. */
static void job_mark_suspect(struct remote_job *job, uint32_t lo, uint32_t hi)
{
    if (job->fails != NULL)
        for (uint32_t i = lo; i < hi; i++)
            job->fails[i].suspect = 1;
}

/* Whether <c>'s rows may be split. Not rows of one request: it fails whole
 * at its first refused row, so splitting further would only cost calls
 * (2n - 1 for a request of n rows the model refuses); rows that are
 * records apart (a stream's) are split down to the one the model refuses. */
static int call_splits(const struct remote_call *c)
{
    const struct remote_job *job = c->job;

    return c->hi - c->lo > 1 && !job->cancelled &&
           (call_spans_requests(c) || job->batch->segs[job_seg_of(job, c->lo)].rs->rows_apart);
}

static void call_bisect(struct remote_call *c, const char *type, int status, const char *msg,
                        size_t msglen, int raised)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    uint32_t mid;

    if (!call_splits(c)) {
        job_fail_rows(job, c->lo, c->hi, type, status, msg, msglen);
        if (strcmp(type, "ModelError") != 0) /* an answer wrong for these rows */
            job_mark_suspect(job, c->lo, c->hi);
        if (raised)
            breaker_failure(ru, c);
        call_end(c);
        return;
    }
    mid = c->lo + (c->hi - c->lo) / 2;
    if (call_spans_requests(c)) {
        /* Rows of several requests: cut between two of them, the nearest
         * the middle, never inside one (a batch of s requests costs 2s - 1
         * calls at most). */
        uint32_t m = job_seg_of(job, mid), a = job->seg_first[m], b = job->seg_first[m + 1];

        mid = a > c->lo && (b >= c->hi || mid - a <= b - mid) ? a : b;
    }
    ru->base.stats.splits++;
    if (!job->split_told && job->batch->split != NULL) {
        job->split_told = 1;
        job->batch->split(job->batch, job->batch->seg_done_arg);
    }
    for (int half = 0; half < 2; half++) {
        struct remote_call *h = call_new(job, half ? mid : c->lo, half ? c->hi : mid);

        h->pass = c->pass;
        h->half = 1;
        h->attempt = c->attempt; /* the retries a 500's rows had: not again per half */
        if (half == 0 && c->probe && ru->probe_out) { /* still the probe: no verdict yet */
            h->probe = 1;
            c->probe = 0;
        }
        call_start(h);
    }
    c->handed_on = 1;
    call_end(c);
}

/*
 * A 2xx answer that gives some of <c>'s rows no prediction (<msg>): a count
 * unlike the rows', an answer that is not valid or does not convert, one
 * larger than the rows may take. One request's rows may have made it so (a
 * 2-D instance answered a prediction per inner row, a prediction that is
 * not a number, an echo of a large row): a call of several requests' rows
 * is split as a refused one is, so that only that request fails, and only
 * it is told what the model said; its client is then batched apart for a
 * while (ig_row_fail.suspect), as after a ModelError. A split makes two
 * calls more and takes two tokens of a budget like the retries' but its
 * own (split_tokens: draining it does not stop other clients' retries): a
 * model that answers every call so is not sent 2s - 1 calls for each batch
 * of s requests. Past that budget the call's rows fail together, told
 * <shared> (no request's own prediction) when they are several requests'.
 * <c> ends here.
 */
static void call_answer_bad(struct remote_call *c, const char *msg, const char *shared)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    int several = call_splits(c);

    if (several && ru->split_tokens < 2.0) {
        ru->base.stats.retries_denied++;
        if (shared == NULL || job_seg_of(job, c->lo) == job_seg_of(job, c->hi - 1))
            shared = msg; /* one request's rows: its own words */
        job_fail_rows(job, c->lo, c->hi, "InternalFailure", 0, shared, strlen(shared));
        call_end(c);
        return;
    }
    if (several)
        ru->split_tokens -= 2.0;
    call_bisect(c, "InternalFailure", 0, msg, strlen(msg), 0);
}

/* Keep what the model said back for the segments of <c>'s rows: custom
 * attributes only for a call of one request's rows (its own), the variant
 * for every request in the call. */
static void call_keep_backs(struct remote_call *c)
{
    struct remote_job *job = c->job;

    if (c->variant[0] == '\0' && (c->attrs[0] == '\0' || c->pass == NULL))
        return;
    if (job->backs == NULL && (job->backs = calloc(job->nsegs, sizeof(*job->backs))) == NULL)
        return;
    /* the call's segments only: a batch of many one-row requests that
     * forward headers is as many calls, each of one segment */
    for (uint32_t s = job_seg_of(job, c->lo); s < job->nsegs && job->seg_first[s] < c->hi; s++) {
        struct ig_seg_back *bk = &job->backs[s];

        if (c->variant[0] != '\0') {
            free(bk->variant);
            bk->variant = ig_xstrdup(c->variant);
        }
        if (c->attrs[0] != '\0' && c->pass != NULL) {
            free(bk->custom_attributes);
            bk->custom_attributes = ig_xstrdup(c->attrs);
        }
    }
}

/* <c>'s rows fail: their answers do not fit the memory budget. */
static void call_fail_budget(struct remote_call *c)
{
    char msg[256];

    snprintf(msg, sizeof(msg),
             "The model's answers do not fit in what the gateway may hold for clients "
             "(%llu bytes); retry later.",
             (unsigned long long)c->job->ru->base.budget->cap);
    job_fail_rows(c->job, c->lo, c->hi, "ThrottlingException", 0, msg, strlen(msg));
}

/* The answers of <c> (its rows' slices of c->resp, in <from>) in the
 * format asked for: c->resp is replaced by their conversion, capped as the
 * answer was. 0, or -1 with the rows failed, or 1 with <c> split (a
 * prediction that does not convert: only its request's rows fail, and only
 * they are told what it was). */
static int call_convert(struct remote_call *c, enum ig_format from)
{
    struct remote_job *job = c->job;
    struct ig_budget *budget = job->ru->base.budget;
    struct ig_codec_error cerr;
    struct ig_buf conv;
    char msg[512], shared[256];
    int rv = 0;

    ig_buf_init(&conv, c->resp_cap);
    for (uint32_t i = c->lo; i < c->hi && rv == 0; i++) {
        struct ig_pred *p = &job->preds[i];
        size_t off = conv.len;

        rv = ig_convert_pred(from, c->resp.data + p->off, p->len, job->accept, i + 1, &conv,
                             &cerr);
        p->off = (uint32_t)off;
        p->len = (uint32_t)(conv.len - off);
    }
    if (rv == 0 && budget != NULL &&
        ig_budget_hold_set(&c->hold, budget, c->body.cap + conv.cap) < 0) {
        ig_buf_clear(&conv);
        call_fail_budget(c);
        return -1;
    }
    if (rv < 0) {
        /* convert's "Row N: " counts the batch's rows: the clients' differ */
        ig_buf_clear(&conv);
        snprintf(msg, sizeof(msg), "The model answered Content-Type %s, not the %s asked for, "
                 "and its answer does not convert: %s",
                 ig_codec_format_mime(from), ig_codec_format_mime(job->accept),
                 ig_codec_error_reason(&cerr));
        ig_log(IG_LOG_WARN, "endpoint %s: %s", job->ru->conf->name, msg);
        snprintf(shared, sizeof(shared),
                 "The model answered Content-Type %s, not the %s asked for, and its answer for "
                 "some of these rows does not convert.",
                 ig_codec_format_mime(from), ig_codec_format_mime(job->accept));
        call_answer_bad(c, msg, shared);
        return 1;
    }
    ig_buf_clear(&c->resp);
    c->resp = conv;
    return 0;
}

/* A 2xx answer: its predictions, one per row, or the rows fail. An answer
 * in another format than the one asked for (a model that answers in its
 * own whatever the Accept: a bring-your-own container that speaks only
 * CSV) is read in the format its Content-Type names and converted. An
 * answer that is wrong for some rows (the count, the format, a conversion)
 * splits a call of several requests' rows (call_bisect): one client's rows
 * do not fail the others batched with them. 1 when <c> was handed on
 * (ended), else 0. */
static int call_answered(struct remote_call *c)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    uint32_t n = c->hi - c->lo;
    enum ig_format got = job->accept;
    char msg[256];
    long k;

    if (c->ctype_two ||
        (c->ctype[0] != '\0' && (ig_codec_format_parse(c->ctype, job->accept, &got) < 0 ||
                                 (got != job->accept && got == IG_FMT_LIBSVM)))) {
        if (c->ctype_two)
            snprintf(msg, sizeof(msg),
                     "The model answered two different Content-Types (%.64s first); %s was "
                     "asked for.",
                     c->ctype, ig_codec_format_mime(job->accept));
        else
            snprintf(msg, sizeof(msg), "The model answered Content-Type %.64s; %s was asked for.",
                     c->ctype, ig_codec_format_mime(job->accept));
        ig_log(IG_LOG_WARN, "endpoint %s: %s", ru->conf->name, msg);
        job_fail_rows(job, c->lo, c->hi, "InternalFailure", 0, msg, strlen(msg));
        return 0;
    }
    k = remote_split(got, ru->base.json_key, c->resp.data ? c->resp.data : "", c->resp.len,
                     job->preds + c->lo, n);
    if (k != (long)n) {
        if (k < 0)
            snprintf(msg, sizeof(msg), "The model's answer is not valid %s.",
                     ig_codec_format_mime(got));
        else
            snprintf(msg, sizeof(msg),
                     "The model returned %ld predictions for %u rows; these rows were not "
                     "answered.",
                     k, n);
        ig_log(IG_LOG_WARN, "endpoint %s: %s (call of rows %u..%u of batch %llu)", ru->conf->name,
               msg, c->lo + 1, c->hi, (unsigned long long)job->batch->id);
        call_answer_bad(c, msg, NULL);
        return 1;
    }
    if (got != job->accept && (k = call_convert(c, got)) != 0)
        return k > 0;
    call_keep_backs(c);
    /* The slices index c->resp: move them into the job's output (the
     * whole answer and its charge, when it is the job's only call). */
    if (job->out.len == 0 && c->lo == 0 && c->hi == job->nrows) {
        ig_buf_clear(&job->out);
        ig_budget_hold_clear(&job->out_hold);
        job->out = c->resp;
        job->out_hold = c->hold;
        memset(&c->hold, 0, sizeof(c->hold));
        ig_buf_init(&c->resp, REMOTE_RESP_MAX);
        return 0;
    }
    if (ru->base.budget != NULL &&
        ig_budget_hold_set(&job->out_hold, ru->base.budget,
                           ig_buf_grown_cap(&job->out, c->resp.len)) < 0) {
        call_fail_budget(c);
        return 0;
    }
    if (ig_buf_reserve(&job->out, c->resp.len) < 0) {
        job_fail_rows(job, c->lo, c->hi, "InternalFailure", 0, "Out of memory for the answer.", 29);
        return 0;
    }
    for (uint32_t i = c->lo; i < c->hi; i++) {
        struct ig_pred *p = &job->preds[i];
        uint32_t off = (uint32_t)job->out.len;

        ig_buf_append(&job->out, c->resp.data + p->off, p->len);
        p->off = off;
    }
    return 0;
}

/* A model error's message for the client: the body, cut, as text. */
/* Length of the valid UTF-8 sequence at s (< end), or 0. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
             : (s[0] & 0xF8) == 0xF0                     ? 4
                                                         : 0;
    uint32_t cp;

    if (n == 0 || (size_t)(end - s) < n)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    cp = n == 1 ? s[0] : n == 2 ? (s[0] & 0x1Fu) : n == 3 ? (s[0] & 0x0Fu) : (s[0] & 0x07u);
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (s[i] & 0x3Fu);
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, out of range, surrogate */
    return n;
}

/* A model's message for the client: <len> bytes of <src> as valid UTF-8
 * text (control characters as spaces, invalid bytes as '?'), cut on a
 * character boundary to fit <cap> with its NUL. Returns its length. */
static size_t text_clean(const char *src, size_t len, char *msg, size_t cap)
{
    const unsigned char *p = (const unsigned char *)src, *end = p + len;
    size_t n = 0;

    while (p < end) {
        size_t k = utf8_seq(p, end);

        if (k == 0 || (k == 1 && *p < 0x20)) {
            if (n + 1 >= cap)
                break;
            msg[n++] = k == 0 ? '?' : ' ';
            p++;
            continue;
        }
        if (n + k >= cap)
            break;
        memcpy(msg + n, p, k);
        n += k;
        p += k;
    }
    while (n > 0 && msg[n - 1] == ' ')
        n--;
    msg[n] = '\0';
    return n;
}

static size_t call_model_msg(const struct remote_call *c, char *msg, size_t cap)
{
    return text_clean(c->resp.data ? c->resp.data : "", c->resp.len, msg, cap);
}

/*
 * SageMaker's own words (a refusal, a 5xx), for the client and the log. A
 * refused signature (InvalidSignatureException) quotes the canonical
 * string, and so the value of x-amz-security-token: that value becomes
 * "(redacted)" (what is left of it, when <cap> cut it). An AWS account id
 * (12 digits alone) becomes zeros.
 */
static size_t call_sm_msg(const struct remote_call *c, char *msg, size_t cap)
{
    static const char key[] = "x-amz-security-token:", mark[] = "(redacted)";
    size_t n = call_model_msg(c, msg, cap);
    char *p = msg;

    while ((p = strcasestr(p, key)) != NULL) {
        char *v = p + sizeof(key) - 1, *e = v;
        size_t room, mk, tail;

        for (;;) {
            if (*e != '\0' && (isalnum((unsigned char)*e) || strchr("+/=_-%", *e) != NULL))
                e++;
            else if (e[0] == '\\' && e[1] == '/') /* JSON may write '/' as "\/" */
                e += 2;
            else
                break;
        }
        if (e == v) {
            p = v;
            continue;
        }
        room = cap - 1 - (size_t)(v - msg); /* bytes from v to the end of msg */
        mk = sizeof(mark) - 1 < room ? sizeof(mark) - 1 : room;
        tail = n - (size_t)(e - msg);
        if (tail > room - mk)
            tail = room - mk;
        memmove(v + mk, e, tail);
        memcpy(v, mark, mk);
        n = (size_t)(v - msg) + mk + tail;
        msg[n] = '\0';
        p = v + mk;
    }
    /* The gateway's AWS account (an AccessDenied names its role by ARN, a
     * ValidationError says "of account N"): 12 digits alone become zeros,
     * as in the LogStreamArn a ModelError carries */
    for (size_t i = 0, k; i < n; i = k > i ? k : i + 1) {
        for (k = i; k < n && isdigit((unsigned char)msg[k]);)
            k++;
        if (k - i == 12)
            memset(msg + i, '0', 12);
    }
    return n;
}

/*
 * Where member "<key>"'s value starts in [b, b + len) (after the colon and
 * blanks), or NULL: a scan for what JSON cut short no parser reads. The
 * key is matched as a quoted string anywhere, as a ModelError body's keys
 * are found in SageMaker's few top-level members.
 */
static const char *json_scan_val(const char *b, size_t len, const char *key)
{
    size_t kl = strlen(key);
    const char *end = b + len;

    for (const char *q = b; q + kl + 2 < end; q++) {
        const char *v;

        if (q[0] != '"' || memcmp(q + 1, key, kl) != 0 || q[kl + 1] != '"')
            continue;
        v = q + kl + 2;
        while (v < end && (*v == ' ' || *v == ':'))
            v++;
        return v < end ? v : NULL;
    }
    return NULL;
}

/* The integer value of member "<key>" in [b, b + len) (digits read while it
 * is under 1000, so at most 9999), or -1. */
static int json_scan_int(const char *b, size_t len, const char *key)
{
    const char *v = json_scan_val(b, len, key), *end = b + len;
    int n = 0;

    if (v == NULL || !isdigit((unsigned char)*v))
        return -1;
    while (v < end && isdigit((unsigned char)*v) && n < 1000)
        n = n * 10 + (*v++ - '0');
    return n;
}

/* The start of string member "<key>"'s text in [b, b + len), or NULL. */
static const char *json_scan_str(const char *b, size_t len, const char *key)
{
    const char *v = json_scan_val(b, len, key);

    return v != NULL && *v == '"' ? v + 1 : NULL;
}

/*
 * A ModelError body cut at the answer's cap (call_cut_error): no longer
 * JSON, so its status is looked for in the bytes kept and in the last
 * ones, and its message is the start of OriginalMessage as it was written
 * (escapes left as they are), cut as every model message is; when the
 * cut came before it (SageMaker's keys are in order, Message first, which
 * quotes it), the start of what Message quotes.
 */
/* Whether <st> can be a ModelError's OriginalStatusCode: an HTTP status,
 * or SageMaker's 0 (no answer). Anything else is no model's status: a
 * larger one cut to an int (4294967696 read as a model's 400) would have
 * its rows bisected and their client taken for a suspect. */
static int sm_status_ok(json_int_t st)
{
    return st == 0 || (st >= 100 && st <= 599);
}

static int call_sm_cut_model_error(const struct remote_call *c, int *status, char *msg,
                                   size_t cap)
{
    static const char quoted[] = "with message \\\"";
    const char *b = c->resp.data ? c->resp.data : "", *end = b + c->resp.len, *m;
    int st = json_scan_int(b, c->resp.len, "OriginalStatusCode");

    if (st < 0)
        st = json_scan_int(c->tail, c->tail_len, "OriginalStatusCode");
    if (!sm_status_ok(st))
        return -1;
    *status = st;
    msg[0] = '\0';
    if ((m = json_scan_str(b, c->resp.len, "OriginalMessage")) == NULL &&
        (m = json_scan_str(b, c->resp.len, "Message")) != NULL) {
        const char *w = memmem(m, (size_t)(end - m) < 256 ? (size_t)(end - m) : 256, quoted,
                               sizeof(quoted) - 1);

        m = w != NULL ? w + sizeof(quoted) - 1 : m;
    }
    if (m != NULL)
        text_clean(m, (size_t)(end - m), msg, cap);
    return 0;
}

/* SageMaker's ModelError: the model's status and message from its body. */
static int call_sm_model_error(const struct remote_call *c, int *status, char *msg, size_t cap)
{
    json_t *o = json_loadb(c->resp.data ? c->resp.data : "", c->resp.len, 0, NULL);
    json_t *st = o ? json_object_get(o, "OriginalStatusCode") : NULL;
    json_t *om = o ? json_object_get(o, "OriginalMessage") : NULL;

    if (o == NULL && c->cut)
        return call_sm_cut_model_error(c, status, msg, cap);
    if (!json_is_integer(st) || !sm_status_ok(json_integer_value(st))) {
        json_decref(o);
        return -1;
    }
    *status = (int)json_integer_value(st);
    if (json_is_string(om))
        text_clean(json_string_value(om), json_string_length(om), msg, cap);
    else
        msg[0] = '\0';
    json_decref(o);
    return 0;
}

/* The type a client gets for SageMaker's own failure (not the model's),
 * after the retries: InvokeEndpoint's modeled server errors by their names
 * (the client's SDK knows them: InternalDependencyException is 530), any
 * other 5xx as InternalFailure. */
static const char *sm_own_error(long code, const char *etype)
{
    if (code == 503 || strcmp(etype, "ServiceUnavailable") == 0)
        return "ServiceUnavailable";
    if (code == 530 || strcmp(etype, "InternalDependencyException") == 0)
        return "InternalDependencyException";
    return "InternalFailure";
}

/*
 * <c> was not answered in time, its retries spent (<msg> says so). A call
 * of several requests' rows may wait on one client's rows (a row the model
 * takes long on), and every request batched with them would time out with
 * them, again at each batch that client's rows join: it is split as a
 * refused call is, without retries, so that the others are answered by
 * their halves and only the request whose rows the model hangs on times
 * out (its client then batched apart for a while, as after a ModelError).
 * Not while the breaker is open (the model looks down: each half would
 * wait out the timeout again), nor past the split budget (split_tokens: a
 * model that hangs on every call is not sent 2s - 1 calls a batch).
 * Otherwise the rows fail with the timeout. <c> ends here.
 */
static void call_timed_out(struct remote_call *c, const char *msg)
{
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    int several = call_spans_requests(c);

    if (several && !job->cancelled && ru->breaker != BREAKER_OPEN && ru->split_tokens >= 2.0) {
        ru->split_tokens -= 2.0;
        c->attempt = ru->conf->retry_max; /* the halves: no retries */
        call_bisect(c, "ModelError", 0, msg, strlen(msg), 0);
        return;
    }
    job_fail_rows(job, c->lo, c->hi, "ModelError", 0, msg, strlen(msg));
    if (c->half && !several) /* a split left them alone: its own rows */
        job_mark_suspect(job, c->lo, c->hi);
    call_end(c);
}

static void on_call_done(CURL *easy, CURLcode rc, void *arg)
{
    struct remote_call *c = arg;
    struct remote_job *job = c->job;
    struct remote_upstream *ru = job->ru;
    long code = 0;
    char msg[REMOTE_MSG_MAX + 1];
    size_t mlen;
    int ostatus;
    enum ig_retry_reason why;

    c->where = CALL_NONE;
    ru->running--;
    if (c->conn_refused) {
        /* not sent (on_call_socket): it goes again, first, as an opener
         * (or after the one out), not counted as a call or a failure */
        c->conn_refused = 0;
        ru->base.stats.calls--;
        ru->h2c_reopen = 1;
        call_queue(c, 1);
        remote_pump(ru);
        return;
    }
    if (c->opener) { /* its connection is open (or failed): the others go */
        c->opener = 0;
        ru->h2c_opening = 0;
        ru->h2c_reopen = 0; /* they try its connection first */
    }
    ig_hist_observe(&ru->base.stats.call_seconds, (double)(ig_now_us() - c->start_us) / 1e6);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_WRITE_ERROR && c->cut && c->over == 0)
        rc = CURLE_OK; /* an error answer stopped past REMOTE_RESP_MAX: what it said */
    if (rc == CURLE_OK && code != 0) {
        uint64_t now = ig_now_us();

        answer_time(ru, now, now - c->start_us);
    }
    if (rc == CURLE_OK && code >= 200 && code < 300) {
        breaker_success(ru, c);
        if (call_answered(c) == 0) {
            canary_keep(c, c->lo);
            call_end(c);
        }
        remote_pump(ru);
        return;
    }
    if (rc == CURLE_OK) {
        /* SageMaker throttles with 400 and x-amzn-ErrorType
         * ThrottlingException: retried, never a refusal of the rows. */
        int model_4xx = code >= 400 && code < 500 && code != 429 &&
                        strcmp(c->etype, "ThrottlingException") != 0;
        /* The model's own 500: it raised on these rows, and answered. */
        int model_500 = ru->kind == REMOTE_CONTAINER && code == 500;

        if (ru->kind == REMOTE_SAGEMAKER && code == 424 &&
            call_sm_model_error(c, &ostatus, msg, sizeof(msg)) == 0) {
            model_4xx = ostatus >= 400 && ostatus < 500 && ostatus != 429;
            model_500 = ostatus == 500;
            mlen = strlen(msg);
        } else if (ru->kind == REMOTE_SAGEMAKER && model_4xx) {
            /* not the model: SageMaker refused the call itself */
            char body[512];

            call_sm_msg(c, body, sizeof(body));
            snprintf(msg, sizeof(msg), "SageMaker refused the call (%ld %s): %s", code,
                     c->etype[0] ? c->etype : "error", body);
            ig_log(IG_LOG_WARN, "endpoint %s: %s", ru->conf->name, msg);
            breaker_success(ru, c); /* it answers: not down */
            /* a call that names the client's own TargetVariant: a
             * ValidationError is SageMaker's verdict on it (a variant its
             * endpoint does not have), the client's 400, not retried */
            job_fail_rows(job, c->lo, c->hi,
                          code == 400 && strcmp(c->etype, "ValidationError") == 0 &&
                                  c->pass != NULL && c->pass->target_variant != NULL
                              ? "ValidationError"
                              : "InternalFailure",
                          0, msg, strlen(msg));
            call_end(c);
            remote_pump(ru);
            return;
        } else {
            ostatus = (int)code;
            mlen = call_model_msg(c, msg, sizeof(msg));
        }
        if (model_4xx) {
            breaker_success(ru, c); /* the model answers: it is up */
            call_bisect(c, "ModelError", ostatus, msg, mlen, 0);
            remote_pump(ru);
            return;
        }
        why = code == 429 || strcmp(c->etype, "ThrottlingException") == 0 ? IG_RETRY_THROTTLED
                                                                          : IG_RETRY_SERVER;
        if (why == IG_RETRY_SERVER) {
            /* A model's 500 may say that these rows failed it, not that
             * it is down (that is 502, 503, 504, a timeout, a broken
             * connection): each call counted, one client's rows that
             * crash the model would open the breaker for every client.
             * Nor is it an answer that the model is up (a model that
             * raises on everything is down, and a probe it answers 500
             * must not close the breaker): it counts once a request,
             * when the split is over (call_bisect). */
            if (!model_500)
                breaker_failure(ru, c);
            ru->base.stats.calls_failed++;
        }
        if (call_retry(c, why)) {
            remote_pump(ru);
            return;
        }
        if (why == IG_RETRY_THROTTLED && ru->kind == REMOTE_SAGEMAKER &&
            strcmp(c->etype, "ModelNotReadyException") == 0) {
            /* a modeled error of InvokeEndpoint (429: a serverless endpoint
             * or a multi-model endpoint still loading): the client's SDK
             * knows it by that name, as from SageMaker itself */
            char body[512];

            call_sm_msg(c, body, sizeof(body));
            snprintf(msg, sizeof(msg), "SageMaker answered %ld %s: %s", code, c->etype, body);
            job_fail_rows(job, c->lo, c->hi, "ModelNotReadyException", 0, msg, strlen(msg));
        } else if (why == IG_RETRY_THROTTLED) {
            /* the client's SDK retries a ThrottlingException */
            snprintf(msg, sizeof(msg),
                     "The model backend (%s) is throttling calls (%ld %s) and did not take this "
                     "one after %u retries; retry later.",
                     ru->label, code, c->etype[0] ? c->etype : "Too Many Requests", c->attempt);
            job_fail_rows(job, c->lo, c->hi, "ThrottlingException", 0, msg, strlen(msg));
        } else if (ru->kind == REMOTE_SAGEMAKER && code != 424) {
            /* SageMaker's own failure (not the model's): its type, its words */
            char body[512];

            call_sm_msg(c, body, sizeof(body));
            snprintf(msg, sizeof(msg), "SageMaker answered %ld %s: %s", code,
                     c->etype[0] ? c->etype : "error", body);
            job_fail_rows(job, c->lo, c->hi, sm_own_error(code, c->etype), 0, msg, strlen(msg));
        } else if (model_500) {
            /* Rows that make the model raise, retried: split as a 4xx
             * is, so that only the requests holding them fail, not every
             * request batched with them (nor with another's message). */
            c->attempt = ru->conf->retry_max; /* the halves: no retries (a budget cut it short) */
            call_bisect(c, "ModelError", ostatus, msg, mlen, 1);
            remote_pump(ru);
            return;
        } else {
            job_fail_rows(job, c->lo, c->hi, "ModelError", ostatus, msg, mlen);
        }
    } else {
        why = rc == CURLE_OPERATION_TIMEDOUT ? IG_RETRY_TIMEOUT : IG_RETRY_CONNECTION;
        if (rc == CURLE_WRITE_ERROR && c->over == 2) {
            snprintf(msg, sizeof(msg),
                     "The model's answer does not fit in what the gateway may hold for clients "
                     "(%llu bytes); retry later.",
                     (unsigned long long)ru->base.budget->cap);
            job_fail_rows(job, c->lo, c->hi, "ThrottlingException", 0, msg, strlen(msg));
            call_end(c);
            remote_pump(ru);
            return;
        }
        if (rc == CURLE_WRITE_ERROR) {
            if (c->over == 3)
                snprintf(msg, sizeof(msg), "The model's answer has more than %zu bytes of headers.",
                         REMOTE_HDR_MAX);
            else
                snprintf(msg, sizeof(msg),
                         "The model's answer is larger than %zu bytes, what %u rows may take.",
                         c->resp_cap, c->hi - c->lo);
            if (c->over == 3) {
                job_fail_rows(job, c->lo, c->hi, "InternalFailure", 0, msg, strlen(msg));
                call_end(c);
            } else {
                call_answer_bad(c, msg, NULL); /* one request's rows may have made it large */
            }
            remote_pump(ru);
            return;
        }
        breaker_failure(ru, c);
        ru->base.stats.calls_failed++;
        if (call_retry(c, why)) {
            remote_pump(ru);
            return;
        }
        if (why == IG_RETRY_TIMEOUT) {
            snprintf(msg, sizeof(msg),
                     "Your invocation timed out while waiting for a response from container "
                     "%s. Review the latency metrics for each container in Amazon CloudWatch, "
                     "resolve the issue, and try again.",
                     ru->conf->variant);
            call_timed_out(c, msg);
            remote_pump(ru);
            return;
        } else {
            snprintf(msg, sizeof(msg), "The model backend (%s) cannot be reached: %s.", ru->label,
                     curl_easy_strerror(rc));
            job_fail_rows(job, c->lo, c->hi, "ServiceUnavailable", 0, msg, strlen(msg));
        }
    }
    call_end(c);
    remote_pump(ru);
}

/* ---- the vtable ------------------------------------------------------------- */

/* Copy the batch's rows: the job sends its own bytes. */
static int job_copy_rows(struct remote_job *job)
{
    const struct ig_batch *b = job->batch;
    uint32_t k = 0;
    size_t off = 0;

    if (b->nbytes >= UINT32_MAX)
        return IG_ERR_TOOBIG;
    job->rows = ig_try_malloc(b->nbytes ? b->nbytes : 1);
    job->row_off = ig_try_malloc(((size_t)b->nrows + 1) * sizeof(*job->row_off));
    job->preds = ig_try_malloc((size_t)b->nrows * sizeof(*job->preds));
    job->seg_first = ig_try_malloc(((size_t)b->nsegs + 1) * sizeof(*job->seg_first));
    if (job->rows == NULL || job->row_off == NULL || job->preds == NULL || job->seg_first == NULL)
        return IG_ERR_NOMEM;
    job->nsegs = b->nsegs;
    for (uint32_t s = 0; s < b->nsegs; s++) {
        const struct ig_batch_seg *seg = &b->segs[s];
        const struct ig_passthrough *ps = seg->rs->pass;

        job->seg_first[s] = k;
        if ((ps != NULL || seg->rs->line_breaks) && job->pass == NULL &&
            (job->pass = calloc(b->nsegs, sizeof(*job->pass))) == NULL)
            return IG_ERR_NOMEM;
        /* a row the model may read as two (the gateway looked: LF, CR, what
         * splitlines() cuts at, in a format read a row a line) */
        if (seg->rs->line_breaks)
            job->pass[s].line_break = 1;
        if (ps != NULL) { /* the job's own copies: the request may go */
            job->pass[s].custom_attributes = ps->custom_attributes ? ig_xstrdup(ps->custom_attributes) : NULL;
            job->pass[s].inference_id = ps->inference_id ? ig_xstrdup(ps->inference_id) : NULL;
            job->pass[s].target_variant = ps->target_variant ? ig_xstrdup(ps->target_variant) : NULL;
        }

        for (uint32_t i = 0; i < seg->nrows; i++, k++) {
            const struct ig_row *row = &seg->rs->rows[seg->first + i];
            const char *src = seg->rs->body + row->off;

            if (off + row->len > b->nbytes)
                return IG_ERR_INVALID;
            job->row_off[k] = (uint32_t)off;
            memcpy(job->rows + off, src, row->len);
            off += row->len;
        }
    }
    job->row_off[k] = (uint32_t)off;
    job->seg_first[b->nsegs] = k;
    job->nrows = k;
    return k == b->nrows ? 0 : IG_ERR_INVALID;
}

/* The segment goes in calls of its own: it forwards headers, or a row of it
 * holds a line break. */
static int pass_set(const struct job_pass *p)
{
    return p != NULL &&
           (p->custom_attributes || p->inference_id || p->target_variant || p->line_break);
}

/* A call for rows [lo, hi) of <job>, with the forwarded headers of their
 * segment when it has some. */
static void call_launch(struct remote_job *job, uint32_t lo, uint32_t hi, int probe)
{
    struct remote_call *c = call_new(job, lo, hi);
    uint32_t s = job_seg_of(job, lo);

    if (job->pass != NULL && s < job->nsegs && pass_set(&job->pass[s]))
        c->pass = &job->pass[s];
    c->probe = probe;
    call_start(c);
}

static int remote_submit(struct ig_upstream *u, struct ig_batch *batch, enum ig_format ctype,
                         enum ig_format accept, ig_upstream_done_cb *cb, void *arg)
{
    struct remote_upstream *ru = (struct remote_upstream *)u;
    struct remote_job *job = ig_xcalloc(1, sizeof(*job));
    uint64_t extra = ctype == IG_FMT_JSON ? REMOTE_JSON_WRAP : 0;
    int probe = 0;
    uint32_t lo = 0, end;
    uint64_t bytes = extra;

    job->ru = ru;
    job->batch = batch;
    job->ctype = ctype;
    job->accept = accept;
    job->cb = cb;
    job->arg = arg;
    ig_buf_init(&job->out, REMOTE_RESP_MAX + (size_t)batch->nrows * REMOTE_MSG_MAX);
    IG_DLIST_PUSH(ru->jobs, job);
    if (ru->base.budget != NULL &&
        ig_budget_hold_set(&job->hold, ru->base.budget,
                           batch->nbytes + ((uint64_t)batch->nrows + 1) * (sizeof(*job->row_off) +
                                                                           sizeof(*job->preds)) +
                               ((uint64_t)batch->nsegs + 1) * sizeof(*job->seg_first)) < 0) {
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "The gateway holds what it may for clients (%llu bytes) and cannot send these "
                 "rows to the model now; retry later.",
                 (unsigned long long)ru->base.budget->cap);
        batch->upstream_data = job;
        job->err_type = "ThrottlingException";
        job->err_msg = ig_xstrdup(msg);
        job_complete_later(job);
        return 0;
    }
    if (job_copy_rows(job) < 0) {
        job_free(job);
        return IG_ERR_FULL;
    }
    batch->upstream_data = job;
    if (!breaker_admit(ru, &probe)) {
        char msg[384];

        snprintf(msg, sizeof(msg),
                 "The model backend (%s) is failing: the circuit breaker is open after %u "
                 "failed calls in a row; retry later.",
                 ru->label, ru->open_fails);
        job->err_type = "ServiceUnavailable";
        job->err_msg = ig_xstrdup(msg);
        job_complete_later(job);
        return 0;
    }
    /* a batch sent (not one the breaker refuses) earns its share of
     * retries, and of splits of answers wrong for some rows */
    ru->tokens = fmin(ru->tokens + ru->conf->retry_budget_pct / 100.0, REMOTE_RETRY_BURST);
    ru->split_tokens =
        fmin(ru->split_tokens + ru->conf->retry_budget_pct / 100.0, REMOTE_RETRY_BURST);
    end = job->nrows;
    /* Calls of at most max_payload bytes (a row larger goes alone), and a
     * segment that forwards headers, or holds a row with a line break, in
     * calls of its own. The probe is one call, whatever the size: rows of
     * the batch that need calls of their own are refused, as another
     * batch's would be while the probe is out. A call may fail as it
     * starts (no credentials): the job is held meanwhile, and completes
     * from the loop, never from inside this call. */
    job->pending++;
    for (uint32_t i = 0, s = 0; i < job->nrows; i++) {
        uint64_t len = job->row_off[i + 1] - job->row_off[i] + 1;
        int seg_start = 0;
        const struct job_pass *prev;

        while (s < job->nsegs && job->seg_first[s + 1] <= i)
            s++;
        seg_start = s < job->nsegs && job->seg_first[s] == i && i > 0;
        prev = job->pass != NULL && s > 0 ? &job->pass[s - 1] : NULL;
        if (i > lo && ((!probe && bytes + len > ru->max_payload) ||
                       (seg_start && job->pass != NULL &&
                        (pass_set(&job->pass[s]) || pass_set(prev))))) {
            if (probe) {
                end = i;
                break;
            }
            call_launch(job, lo, i, 0);
            lo = i;
            bytes = extra;
        }
        bytes += len;
    }
    call_launch(job, lo, end, probe);
    if (end < job->nrows) {
        char msg[384];

        snprintf(msg, sizeof(msg),
                 "The model backend (%s) is failing: the circuit breaker is half-open and its "
                 "probe call is out; retry later.",
                 ru->label);
        job_fail_rows(job, end, job->nrows, "ServiceUnavailable", 0, msg, strlen(msg));
    }
    if (--job->pending == 0)
        job_complete_later(job);
    return 0;
}

static void remote_cancel(struct ig_upstream *u, struct ig_batch *batch)
{
    struct remote_upstream *ru = (struct remote_upstream *)u;
    struct remote_job *job = batch->upstream_data;
    struct remote_call *c, *next;

    if (job == NULL || job->cancelled)
        return;
    job->cancelled = 1;
    for (c = job->calls; c != NULL; c = next) {
        next = c->jnext;
        if (c->probe)
            ru->probe_out = 0;
        call_free(c);
        job->pending--;
    }
    if (job->pending == 0)
        job_complete_later(job);
    remote_pump(ru);
}

static int remote_health(struct ig_upstream *u, char *why, size_t whylen)
{
    struct remote_upstream *ru = (struct remote_upstream *)u;

    breaker_tick(ru);
    if (ru->breaker == BREAKER_OPEN) {
        if (why)
            snprintf(why, whylen, "%s: circuit breaker open after %u failed calls in a row",
                     ru->label, ru->open_fails);
        return IG_ERR_IO;
    }
    if (ru->breaker == BREAKER_HALF && ru->probe_out) {
        if (why)
            snprintf(why, whylen, "%s: circuit breaker half-open, a probe call is out", ru->label);
        return IG_ERR_IO;
    }
    if (ru->kind == REMOTE_CONTAINER && !ru->ready) {
        if (why)
            snprintf(why, whylen, "%s: %s", ru->label, ru->why);
        return IG_ERR_AGAIN;
    }
    if (ru->kind == REMOTE_SAGEMAKER) {
        const struct ig_aws_creds *cr;
        char e[512];
        int rv = ig_aws_creds_get(ru->creds, &cr, e, sizeof(e));

        if (rv < 0 && why)
            snprintf(why, whylen, "%s: %s", ru->label,
                     rv == IG_ERR_AGAIN ? "waiting for AWS credentials" : e);
        return rv < 0 ? rv : 0;
    }
    return 0;
}

static void remote_destroy(struct ig_upstream *u)
{
    struct remote_upstream *ru = (struct remote_upstream *)u;

    while (ru->calls != NULL) {
        struct remote_call *c = ru->calls;

        c->job->pending--;
        call_free(c);
    }
    while (ru->jobs != NULL) { /* handed back, cancelled */
        ru->jobs->cancelled = 1;
        job_complete(ru->jobs);
    }
    if (ru->ping_timer != NULL)
        event_free(ru->ping_timer);
    if (ru->ping != NULL) {
        ig_curl_loop_cancel(ru->cl_probe, ru->ping);
        curl_easy_cleanup(ru->ping);
    }
    if (ru->exec != NULL) {
        ig_curl_loop_cancel(ru->cl_probe, ru->exec);
        curl_easy_cleanup(ru->exec);
    }
    ig_aws_creds_free(ru->creds); /* its fetches run on ru->cl: first */
    ig_curl_loop_free(ru->cl);
    ig_curl_loop_free(ru->cl_probe);
    ig_buf_clear(&ru->ping_resp);
    ig_buf_clear(&ru->exec_resp);
    free(ru->url_invoke);
    free(ru->url_ping);
    free(ru->url_exec);
    free(ru->label);
    free(ru->region);
    free(ru->host);
    free(ru->uri);
    canary_drop(ru);
    free(ru);
}

static const struct ig_upstream_ops container_ops = {
    .name = "container",
    .submit_batch = remote_submit,
    .cancel_batch = remote_cancel,
    .health = remote_health,
    .destroy = remote_destroy,
};

static const struct ig_upstream_ops sagemaker_ops = {
    .name = "sagemaker",
    .submit_batch = remote_submit,
    .cancel_batch = remote_cancel,
    .health = remote_health,
    .destroy = remote_destroy,
};

/* ---- the container's readiness and execution parameters ----------------------- */

static void ping_arm(struct remote_upstream *ru, uint64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

    evtimer_add(ru->ping_timer, &tv);
}

static void on_exec_done(CURL *easy, CURLcode rc, void *arg)
{
    struct remote_upstream *ru = arg;
    long code = 0;
    json_t *o, *v;

    ru->exec_busy = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK || code == 429 || code >= 500) {
        char what[160];

        if (rc != CURLE_OK)
            snprintf(what, sizeof(what), "failed: %s", curl_easy_strerror(rc));
        else
            snprintf(what, sizeof(what), "answered %ld", code);
        if (ru->exec_fails++ == 0) /* said once until it answers */
            ig_log(IG_LOG_INFO,
                   "endpoint %s: %s: GET /execution-parameters %s: asked again after the next "
                   "good ping", ru->conf->name, ru->label, what);
        return;
    }
    ru->exec_done = 1;
    ru->exec_fails = 0;
    /* the configured caps, lowered by what this container says (a
     * container restarted may say otherwise) */
    ru->max_calls = ru->conf->max_inflight;
    ru->max_payload = ru->conf->max_batch_bytes;
    if (code != 200) {
        ig_log(IG_LOG_INFO, "endpoint %s: %s offers no /execution-parameters (%ld)",
               ru->conf->name, ru->label, code);
        remote_pump(ru);
        return;
    }
    o = json_loadb(ru->exec_resp.data ? ru->exec_resp.data : "", ru->exec_resp.len, 0, NULL);
    if ((v = json_object_get(o, "MaxConcurrentTransforms")) != NULL && json_is_integer(v) &&
        json_integer_value(v) >= 1 && (uint64_t)json_integer_value(v) < ru->max_calls)
        ru->max_calls = (uint32_t)json_integer_value(v);
    if ((v = json_object_get(o, "MaxPayloadInMB")) != NULL && json_is_integer(v) &&
        json_integer_value(v) >= 1 &&
        (uint64_t)json_integer_value(v) < (ru->max_payload >> 20))
        ru->max_payload = (uint64_t)json_integer_value(v) << 20;
    ig_log(IG_LOG_INFO,
           "endpoint %s: %s execution parameters: %u calls at once, %llu bytes a call",
           ru->conf->name, ru->label, ru->max_calls, (unsigned long long)ru->max_payload);
    json_decref(o);
    remote_pump(ru); /* max_calls raised (a container restarted): the queued calls go now */
}

/* GET <url> into <resp> on the probes' pool, unless the last one is still
 * out (*busy): a handle in flight is never reset. 1 when started. */
static int small_get(struct remote_upstream *ru, CURL **easy, int *busy, const char *url,
                     struct ig_buf *resp, ig_curl_done_cb *cb)
{
    if (*busy)
        return 0;
    if (*easy == NULL && (*easy = curl_easy_init()) == NULL)
        return 0;
    curl_easy_reset(*easy);
    ig_buf_reset(resp);
    curl_easy_setopt(*easy, CURLOPT_URL, url);
    curl_easy_setopt(*easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(*easy, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(*easy, CURLOPT_TIMEOUT_MS, (long)REMOTE_PING_TIMEOUT_MS);
    curl_easy_setopt(*easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(*easy, CURLOPT_PROXY, "");
    curl_easy_setopt(*easy, CURLOPT_PROTOCOLS_STR, "http,https");
    count_sockets(&ru->probe_conns, *easy);
    curl_easy_setopt(*easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1); /* a pool of its own */
    if (ig_curl_loop_add(ru->cl_probe, *easy, cb, ru) < 0) {
        curl_easy_cleanup(*easy);
        *easy = NULL;
        return 0;
    }
    *busy = 1;
    return 1;
}

static void on_ping_done(CURL *easy, CURLcode rc, void *arg)
{
    struct remote_upstream *ru = arg;
    long code = 0;
    int was = ru->ready;

    ru->ping_busy = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    ru->ready = rc == CURLE_OK && code == 200;
    if (rc != CURLE_OK)
        snprintf(ru->why, sizeof(ru->why), "GET /ping failed: %s", curl_easy_strerror(rc));
    else if (code != 200)
        snprintf(ru->why, sizeof(ru->why), "GET /ping answered %ld", code);
    if (ru->ready != was)
        ig_log(ru->ready ? IG_LOG_INFO : IG_LOG_WARN, "endpoint %s: %s is %s%s%s", ru->conf->name,
               ru->label, ru->ready ? "ready" : "not ready: ", ru->ready ? "" : ru->why, "");
    if (!ru->ready) {
        ru->exec_done = 0; /* back, it may be another container: asked again */
        if (ru->exec_busy) {
            /* its answer would be the container's before /ping failed: a
             * restarted one may say otherwise (the next good ping asks) */
            ig_curl_loop_cancel(ru->cl_probe, ru->exec);
            ru->exec_busy = 0;
        }
    }
    if (ru->ready && !ru->exec_done)
        small_get(ru, &ru->exec, &ru->exec_busy, ru->url_exec, &ru->exec_resp, on_exec_done);
    ping_arm(ru, REMOTE_PING_US);
}

static void on_ping_timer(evutil_socket_t fd, short what, void *arg)
{
    struct remote_upstream *ru = arg;

    (void)fd;
    (void)what;
    if (!small_get(ru, &ru->ping, &ru->ping_busy, ru->url_ping, &ru->ping_resp, on_ping_done))
        ping_arm(ru, REMOTE_PING_US); /* else on_ping_done arms the next */
}

/* ---- opening -------------------------------------------------------------------- */

static struct remote_upstream *remote_new(const struct ig_upstream_env *env, enum remote_kind kind)
{
    struct remote_upstream *ru = ig_xcalloc(1, sizeof(*ru));
    const struct ig_endpoint_conf *conf = env->conf;

    ru->kind = kind;
    ru->conf = conf;
    ru->evb = env->base;
    ru->base.remote = 1;
    ru->base.dim = 0; /* rows go as bytes */
    ru->base.json_key = "predictions";
    ru->base.formats = 1u << IG_FMT_CSV | 1u << IG_FMT_JSON | 1u << IG_FMT_JSONL |
                       1u << IG_FMT_RECORDIO | 1u << IG_FMT_LIBSVM;
    ru->base.accepts =
        1u << IG_FMT_CSV | 1u << IG_FMT_JSON | 1u << IG_FMT_JSONL | 1u << IG_FMT_RECORDIO;
    ig_hist_init(&ru->base.stats.call_rows, ig_hist_rows_bounds, ig_hist_rows_nbounds);
    ig_hist_init(&ru->base.stats.call_seconds, ig_hist_seconds_bounds, ig_hist_seconds_nbounds);
    ru->max_calls = conf->max_inflight;
    ru->max_payload = conf->max_batch_bytes;
    ru->tokens = REMOTE_RETRY_BURST;
    ru->split_tokens = REMOTE_RETRY_BURST;
    ru->rng = (ig_now_us() ^ ((uint64_t)getpid() << 32)) | 1;
    ig_buf_init(&ru->ping_resp, REMOTE_SMALL_MAX);
    ig_buf_init(&ru->exec_resp, REMOTE_SMALL_MAX);
    snprintf(ru->why, sizeof(ru->why), "no answer to GET /ping yet");
    ru->conns.ru = ru;
    ru->probe_conns.ru = ru;
    ru->cl = ig_curl_loop_new(env->base, (long)conf->max_inflight + 2, conf->upstream_http2);
    ru->cl_probe = ig_curl_loop_new(env->base, 2, 0); /* /ping beside a slow exec GET */
    return ru;
}

int ig_upstream_container_open(const char *url, const struct ig_upstream_env *env,
                               struct ig_upstream **out, char *err, size_t errlen)
{
    struct remote_upstream *ru;
    size_t n = strlen(url);

    if (env->base == NULL || env->conf == NULL) {
        snprintf(err, errlen, "model '%s': no event loop for a remote model", url);
        return IG_ERR_INVALID;
    }
    while (n > 0 && url[n - 1] == '/')
        n--;
    ru = remote_new(env, REMOTE_CONTAINER);
    if (ru->cl == NULL || ru->cl_probe == NULL) {
        remote_destroy(&ru->base);
        snprintf(err, errlen, "model '%s': libcurl cannot be set up", url);
        return IG_ERR_IO;
    }
    ru->base.ops = &container_ops;
    ru->url_invoke = ig_xmalloc(n + 32);
    ru->url_ping = ig_xmalloc(n + 32);
    ru->url_exec = ig_xmalloc(n + 32);
    snprintf(ru->url_invoke, n + 32, "%.*s/invocations", (int)n, url);
    snprintf(ru->url_ping, n + 32, "%.*s/ping", (int)n, url);
    snprintf(ru->url_exec, n + 32, "%.*s/execution-parameters", (int)n, url);
    remote_set_version(ru);
    ru->label = ig_xmalloc(n + 16);
    snprintf(ru->label, n + 16, "container %.*s", (int)n, url);
    ru->ping_timer = evtimer_new(env->base, on_ping_timer, ru);
    ping_arm(ru, 0);
    *out = &ru->base;
    return 0;
}

/* The first credentials came (or their fetch failed): calls go. */
static void on_creds_ready(void *arg)
{
    struct remote_upstream *ru = arg;

    ru->creds_wait = 0;
    remote_pump(ru);
}

int ig_upstream_sagemaker_open(const char *spec, const struct ig_upstream_env *env,
                               struct ig_upstream **out, char *err, size_t errlen)
{
    const struct ig_endpoint_conf *conf = env->conf;
    struct ig_aws_creds_conf cc = {0};
    struct remote_upstream *ru;
    const char *slash = strchr(spec, '/'), *base, *auth, *path;
    char why[512], dflt[160];
    size_t blen;
    int rv;

    if (env->base == NULL || conf == NULL || slash == NULL || slash == spec || slash[1] == '\0') {
        snprintf(err, errlen, "sagemaker://%s: not sagemaker://REGION/ENDPOINT, or no event loop",
                 spec);
        return IG_ERR_INVALID;
    }
    ru = remote_new(env, REMOTE_SAGEMAKER);
    ru->base.ops = &sagemaker_ops;
    ru->region = ig_xmalloc((size_t)(slash - spec) + 1);
    memcpy(ru->region, spec, (size_t)(slash - spec));
    ru->region[slash - spec] = '\0';
    snprintf(dflt, sizeof(dflt), "https://runtime.sagemaker.%s.%s", ru->region,
             ig_aws_dns_suffix(ru->region));
    base = conf->endpoint_url != NULL && conf->endpoint_url[0] != '\0' ? conf->endpoint_url : dflt;
    blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    auth = strstr(base, "://") + 3;
    path = memchr(auth, '/', blen - (size_t)(auth - base));
    if (path == NULL)
        path = base + blen;
    ru->host = ig_xmalloc((size_t)(path - auth) + 1);
    memcpy(ru->host, auth, (size_t)(path - auth));
    ru->host[path - auth] = '\0';
    ru->uri = ig_xmalloc((size_t)(base + blen - path) + strlen(slash) + 32);
    sprintf(ru->uri, "%.*s/endpoints%s/invocations", (int)(base + blen - path), path, slash);
    ru->url_invoke = ig_xmalloc((size_t)(path - base) + strlen(ru->uri) + 1);
    sprintf(ru->url_invoke, "%.*s%s", (int)(path - base), base, ru->uri);
    remote_set_version(ru);
    ru->label = ig_xmalloc(strlen(spec) + 64);
    sprintf(ru->label, "SageMaker endpoint %s (%s)", slash + 1, ru->region);
    if (ru->cl == NULL) {
        remote_destroy(&ru->base);
        snprintf(err, errlen, "sagemaker://%s: libcurl cannot be set up", spec);
        return IG_ERR_IO;
    }
    cc.region = ru->region;
    cc.curl = ru->cl;
    rv = ig_aws_creds_new(env->base, &cc, on_creds_ready, ru, &ru->creds, why, sizeof(why));
    if (rv < 0) {
        remote_destroy(&ru->base);
        snprintf(err, errlen, "sagemaker://%s: %s", spec, why);
        return rv == IG_ERR_CONFIG ? IG_ERR_INVALID : rv;
    }
    ru->creds_wait = 0; /* calls find out (IG_ERR_AGAIN) whether they must wait */
    ig_log(IG_LOG_INFO, "endpoint %s: %s at %s, credentials from %s", conf->name, ru->label,
           ru->url_invoke, ig_aws_creds_source(ru->creds));
    *out = &ru->base;
    return 0;
}
