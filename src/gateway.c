/*
 * gateway.c - endpoints, routing, batching lanes, scatter.
 *
 * One request's life (on the loop thread, except where a decoder is named):
 *
 *   on_request -> route -> invoke: negotiate formats, decode the body into
 *   rows (codec: inline up to GW_DECODE_INLINE_MAX bytes, else on the
 *   decoder pool, and back on the loop in gw_decode_done), enqueue the rows
 *   on the endpoint's lane for the client's Accept (batcher), pump the lane.
 *   pump: every due batch goes to the upstream; a timer fires at the next
 *   delay deadline.
 *   on_batch_done: each segment's predictions are copied into their
 *   request by row index; a request whose rows are all answered gets its
 *   response, in its own row order, whatever order the batches finished in.
 *   The deadline (request_timeout_ms from arrival) runs from on_request
 *   through decode, queue and batches: the endpoint's deadline FIFO.
 *
 * A request is referenced by its client side (until the response is sent,
 * the client goes away or the deadline passes), by a decoder job while its
 * body is decoded, and by every in-flight batch segment holding its rows,
 * so neither a worker nor a batch ever points at freed memory.
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "infergate/auth.h"
#include "infergate/batcher.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/convert.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/eventstream.h"
#include "infergate/gateway.h"
#include "infergate/http.h"
#include "infergate/metrics.h"
#include "infergate/model.h"
#include "infergate/upstream.h"
#include "infergate/version.h"
#include "infergate/workers.h"

#include "gateway_int.h"


/* Error types the gateway answers with, their statuses and metric slots. */
static const struct {
    const char *type;
    int status;
} gw_errors[] = {
    {"ValidationError", 400},  {"ThrottlingException", 400}, {"ModelError", 424},
    {"ModelNotReadyException", 429}, {"InternalFailure", 500}, {"ServiceUnavailable", 503},
    {"UnknownOperationException", 404}, {"MethodNotAllowed", 405},
    {"InternalDependencyException", 530}, /* SageMaker's, relayed */
};
_Static_assert(IG_ARRAY_SIZE(gw_errors) == GW_ERROR_TYPES, "gw_errors and errors_by_type");

static size_t gw_error_index(const char *type)
{
    for (size_t i = 0; i < IG_ARRAY_SIZE(gw_errors); i++)
        if (strcmp(gw_errors[i].type, type) == 0)
            return i;
    return 4; /* InternalFailure */
}

void gw_count_status(struct ig_gateway *gw, int status)
{
    gw->answered++;
    if (status >= 100 && status < 600)
        gw->responses[status / 100]++;
}

/*
 * The access log line of a response about to be sent on <http> (which the
 * send frees): <r> is the request when there is one (rows, batches, times),
 * <endpoint> the endpoint the path named (NULL for other routes). Lines
 * for successes are only written with access_log on; errors always reach
 * ig_log_access, which writes them at warn.
 */
static void gw_access(struct ig_http_req *http, const struct gw_request *r, const char *endpoint,
                      int status, const char *etype, uint64_t bytes_out, uint64_t now)
{
    struct ig_access_rec rec = {0};
    size_t len;

    if (!ig_log_access_on && etype == NULL && status < 400)
        return;
    rec.request_id = http ? ig_http_req_id(http) : NULL;
    rec.endpoint = endpoint;
    rec.proto = http == NULL ? NULL
                : strcmp(ig_http_req_proto(http), "h2") == 0 ? "HTTP/2" : "HTTP/1.1";
    rec.error_type = etype;
    rec.status = status;
    if (http) {
        ig_http_req_body(http, &len);
        rec.bytes_in = len;
    }
    rec.bytes_out = bytes_out;
    if (r != NULL) {
        if (!r->decoding)
            rec.rows = r->rs.nrows;
        rec.batch_first = r->batch_first;
        rec.batch_last = r->batch_last;
        if (r->batch_first != 0) {
            rec.queue_us = r->last_flush_us - r->enqueue_us;
            rec.upstream_us = (now ? now : ig_now_us()) - r->first_flush_us;
        }
        rec.total_us = (now ? now : ig_now_us()) - r->start_us;
    }
    ig_log_access(&rec);
}

/* Bytes of the JSON string jansson writes for <msg> (quotes included) in
 * {"message":...}, cut at 1 KiB as ig_http_respond_error cuts it. */
static uint64_t gw_error_body_len(const char *msg)
{
    uint64_t n = sizeof("{\"message\":\"\"}") - 1;

    for (size_t i = 0; msg[i] != '\0' && i < 1023; i++) {
        unsigned char c = (unsigned char)msg[i];

        n += c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t'
                 ? 2
             : c < 0x20 ? 6
                        : 1;
    }
    return n;
}

/* An error answer, with its access log line (<r>, <endpoint>: gw_access). */
void gw_error_for(struct ig_gateway *gw, struct ig_http_req *http, const struct gw_request *r,
                  const char *endpoint, const char *type, const char *msg)
{
    size_t i = gw_error_index(type);

    gw->errors_by_type[i]++;
    gw_count_status(gw, gw_errors[i].status);
    gw_access(http, r, endpoint, gw_errors[i].status, gw_errors[i].type, gw_error_body_len(msg), 0);
    ig_http_respond_error(http, gw_errors[i].status, gw_errors[i].type, "%s", msg);
}

static void gw_error(struct ig_gateway *gw, struct ig_http_req *http, const char *type,
                     const char *msg)
{
    gw_error_for(gw, http, NULL, NULL, type, msg);
}

/*
 * A ModelError as SageMaker sends it (sagemaker-protocols §1.4): 424, and
 * a body with the model's status and message as OriginalStatusCode and
 * OriginalMessage, the endpoint's CloudWatch log group as LogStreamArn, and
 * the service's sentence around them as Message. SDKs re-parse the body
 * with the modeled shape, so the keys are exactly these, capitalised.
 * <orig_status> 0 is SageMaker's "no answer from the container" (timeout).
 */
/* Cut a UTF-8 character that snprintf left incomplete at the end of <s>
 * (jansson refuses invalid UTF-8, and a key it refuses is left out). */
static void gw_utf8_trim(char *s)
{
    size_t n = strlen(s), j = n, need;

    while (j > 0 && n - j < 4 && ((unsigned char)s[j - 1] & 0xC0) == 0x80)
        j--;
    if (j == 0 || ((unsigned char)s[j - 1] & 0x80) == 0)
        return;
    j--; /* the lead byte */
    need = ((unsigned char)s[j] & 0xE0) == 0xC0 ? 2 : ((unsigned char)s[j] & 0xF0) == 0xE0 ? 3 : 4;
    if (j + need > n)
        s[j] = '\0';
}

static void gw_model_error(struct ig_gateway *gw, struct ig_http_req *http,
                           const struct gw_request *r, const struct gw_endpoint *ep,
                           int orig_status, const char *orig_msg)
{
    struct ig_http_hdr hdrs[2] = {
        {"Content-Type", "application/json"},
        {"x-amzn-ErrorType", "ModelError"},
    };
    int client = orig_status >= 400 && orig_status < 500;
    char msg[1024], arn[192];
    json_t *o = json_object();
    char *body;

    snprintf(msg, sizeof(msg), "Received %s error (%d) from %s with message \"%s\".",
             client ? "client" : "server", orig_status, ep->conf->variant, orig_msg);
    gw_utf8_trim(msg);
    snprintf(arn, sizeof(arn),
             "arn:aws:logs:" GW_REGION ":" GW_ACCOUNT ":log-group:/aws/sagemaker/Endpoints/%s",
             ep->conf->name);
    json_object_set_new(o, "ErrorCode",
                        json_string(client ? "CLIENT_ERROR_FROM_MODEL" : "SERVER_ERROR_FROM_MODEL"));
    json_object_set_new(o, "LogStreamArn", json_string(arn));
    json_object_set_new(o, "Message", json_string(msg));
    json_object_set_new(o, "OriginalMessage", json_string(orig_msg));
    json_object_set_new(o, "OriginalStatusCode", json_integer(orig_status));
    body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (body == NULL) {
        gw_error_for(gw, http, r, ep->conf->name, "ModelError", msg);
        return;
    }
    gw->errors_by_type[gw_error_index("ModelError")]++;
    gw_count_status(gw, 424);
    gw_access(http, r, ep->conf->name, 424, "ModelError", strlen(body), 0);
    ig_http_respond(http, 424, hdrs, 2, body, strlen(body));
}

/* ---- requests --------------------------------------------------------- */

static void gw_dl_arm(struct gw_endpoint *ep, uint64_t at, uint64_t now)
{
    uint64_t wait = at > now ? at - now : 0;
    struct timeval tv = {
        .tv_sec = (time_t)(wait / 1000000u),
        .tv_usec = (suseconds_t)(wait % 1000000u),
    };

    evtimer_add(ep->dl_timer, &tv);
    ep->dl_timer_at = at;
}

/* Start <r>'s deadline: request_timeout_ms from its arrival. */
static void gw_dl_link(struct gw_endpoint *ep, struct gw_request *r)
{
    r->deadline_us = r->start_us + ep->timeout_us;
    r->dl_next = NULL;
    r->dl_prev = ep->dl_tail;
    if (ep->dl_tail)
        ep->dl_tail->dl_next = r;
    else
        ep->dl_head = r;
    ep->dl_tail = r;
    r->dl_linked = 1;
    /* An armed timer fires at or before this deadline (FIFO order), and
     * its firing re-arms for whatever the head is then. */
    if (ep->dl_timer_at == UINT64_MAX)
        gw_dl_arm(ep, r->deadline_us, r->start_us);
}

static void gw_dl_unlink(struct gw_endpoint *ep, struct gw_request *r)
{
    if (!r->dl_linked)
        return;
    if (r->dl_prev)
        r->dl_prev->dl_next = r->dl_next;
    else
        ep->dl_head = r->dl_next;
    if (r->dl_next)
        r->dl_next->dl_prev = r->dl_prev;
    else
        ep->dl_tail = r->dl_prev;
    r->dl_prev = r->dl_next = NULL;
    r->dl_linked = 0;
}

static void gw_req_free(struct gw_request *r)
{
    struct gw_endpoint *ep = r->lane ? r->lane->ep : NULL;

    if (r->chunk != NULL)
        ig_ts_chunk_gone(r);
    ig_rowset_clear(&r->rs);
    free(r->own_body);
    free(r->own_aux);
    free(r->conv_body);
    ig_budget_hold_clear(&r->conv_hold);
    free(r->row_fails);
    free(r->preds);
    ig_buf_clear(&r->out);
    ig_budget_hold_clear(&r->hold);
    free(r->attrs_back);
    free(r->variant_back);
    free(r->inb);
    free(r);
    if (ep != NULL)
        gw_ep_unref(ep);
}

/* The budget <r>'s gathered predictions are charged to: the server-wide
 * one. Not the connection's share: that holds the body and the rows
 * already, and a 6 MiB request of the shortest rows, which must be served,
 * would not fit it twice; the server-wide budget is what keeps many such
 * requests from taking memory nobody counted. */
static struct ig_budget *gw_req_pred_budget(const struct gw_request *r)
{
    struct ig_budget *b = r->rs.budget;

    return b != NULL && b->parent != NULL ? b->parent : b;
}

/* Charge what <r>'s predictions will hold once <out> has room for <n> more
 * bytes: 0, IG_ERR_TOOBIG past GW_RESPONSE_MAX, IG_ERR_FULL over the budget. */
static int gw_req_pred_charge(struct gw_request *r, size_t n)
{
    size_t cap = ig_buf_grown_cap(&r->out, n);

    if (cap == 0)
        return IG_ERR_TOOBIG;
    if (cap == r->out.cap && r->preds != NULL)
        return 0;
    return ig_budget_hold_set(&r->hold, gw_req_pred_budget(r),
                              (uint64_t)r->rs.nrows * sizeof(*r->preds) + cap) < 0
               ? IG_ERR_FULL
               : 0;
}

static void gw_req_fail(struct gw_request *r, const char *type, const char *msg);

static void gw_req_pred_refused(struct gw_request *r, int rv)
{
    char msg[256];

    if (rv != IG_ERR_FULL) {
        gw_req_fail(r, "InternalFailure", "The predictions are too large to hold.");
        return;
    }
    snprintf(msg, sizeof(msg),
             "The predictions of this request do not fit in what the gateway may hold for "
             "clients (%llu bytes); retry later or send fewer rows.",
             (unsigned long long)gw_req_pred_budget(r)->cap);
    gw_req_fail(r, "ThrottlingException", msg);
}

struct gw_free_job {
    struct ig_gateway *gw;
    struct gw_request *r;
};

/* Worker thread: free a big request's memory (the rowset's hold, its only
 * owner now, releases its charge). */
static void gw_free_work(void *arg)
{
    struct gw_free_job *j = arg;

    gw_req_free(j->r);
}

static void gw_free_done(void *arg)
{
    struct gw_free_job *j = arg;

    j->gw->freeing--;
    free(j);
}

/* Not inlined: GCC's -Wuse-after-free cannot see that a caller still holds
 * a reference across the inner unref, and warns on the inlined copy. */
static __attribute__((noinline)) void gw_req_unref(struct gw_request *r)
{
    if (--r->refs > 0)
        return;
    /* Freeing tens of megabytes returns pages to the kernel (jemalloc
     * madvises them): milliseconds on the loop for a 6 MiB body's rows.
     * Such a request is freed on a worker. Its rowset's charge goes with
     * it and is released there, when the memory really is: the budget
     * counts what is held, not what is about to be freed. */
    if ((size_t)r->rs.nrows * (r->rs.dim + 2) * sizeof(double) >= GW_FREE_OFFLOAD_MIN &&
        !r->gw->closing && r->gw->freeing < GW_FREE_QUEUE_MAX) {
        struct ig_gateway *gw = r->gw; /* <r> may be gone as soon as it is submitted */
        struct gw_free_job *j = ig_xmalloc(sizeof(*j));

        j->gw = gw;
        j->r = r;
        if (ig_workers_submit(gw->workers, gw_free_work, gw_free_done, j) == 0) {
            gw->freeing++;
            return;
        }
        free(j);
    }
    gw_req_free(r);
}

static void gw_load_unqueue(struct gw_request *r);

/* The client side is done with <r>: answered, gone or timed out. */
void gw_req_finish(struct gw_request *r)
{
    if (r->http) {
        ig_http_req_set_close_cb(r->http, NULL, NULL);
        r->http = NULL;
    }
    /* O(1): a mass disconnect of queued requests must not cost O(n^2). */
    if (r->entry != NULL && r->rows_taken < r->rs.nrows)
        ig_batcher_cancel_entry(r->lane->batcher, r->entry);
    r->entry = NULL;
    gw_load_unqueue(r);
    /* Its batches in flight: one request fewer waits for each. Each leaves
     * the array before it may be cancelled: a cancel pumps the upstream's
     * queue, where another of these batches may complete at once (a call
     * that fails as it starts) and leave the array itself, which an index
     * walking it would then skip. */
    while (r->ninb > 0) {
        struct ig_batch *b = r->inb[--r->ninb];
        struct ig_upstream *up = r->lane->ep->up;

        if (--b->live == 0 && up != NULL && up->ops->cancel_batch != NULL && !r->gw->closing)
            up->ops->cancel_batch(up, b);
    }
    gw_dl_unlink(r->lane->ep, r);
    /* The body belongs to the http request, which is gone now. */
    r->rs.body = NULL;
    gw_req_unref(r);
}

static void gw_req_fail(struct gw_request *r, const char *type, const char *msg)
{
    if (r->chunk != NULL) {
        ig_ts_chunk_fail(r, type, msg);
        gw_req_finish(r);
        return;
    }
    if (strcmp(type, "ModelError") == 0)
        gw_model_error(r->gw, r->http, r, r->lane->ep, 500, msg);
    else
        gw_error_for(r->gw, r->http, r, r->lane->ep->conf->name, type, msg);
    r->http = NULL;
    gw_req_finish(r);
}

/* The request's deadline passed: SageMaker's timeout ModelError. */
static void gw_req_expire(struct gw_request *r)
{
    const char *variant = r->lane->ep->conf->variant;
    char msg[512];

    snprintf(msg, sizeof(msg),
             "Your invocation timed out while waiting for a response from container %s. Review "
             "the latency metrics for each container in Amazon CloudWatch, resolve the issue, "
             "and try again.",
             variant);
    if (r->chunk != NULL) {
        ig_ts_chunk_fail(r, "ModelError", msg);
        gw_req_finish(r);
        return;
    }
    gw_model_error(r->gw, r->http, r, r->lane->ep, 0, msg);
    r->http = NULL;
    gw_req_finish(r);
}

size_t gw_convert_cap(size_t len)
{
    if (len >= (GW_CONVERT_MAX - GW_CONVERT_SLACK) / GW_CONVERT_FACTOR)
        return GW_CONVERT_MAX;
    return len * GW_CONVERT_FACTOR + GW_CONVERT_SLACK;
}

int gw_converts(const struct gw_endpoint *ep, enum ig_format ctype, enum ig_format wire,
                unsigned base)
{
    if (ep->up->dim > 0 || ep->up_ctype < 0)
        return 0;
    return wire != ctype || (ctype == IG_FMT_LIBSVM && base != 0);
}

int gw_req_convert(struct gw_request *r, enum ig_format from, enum ig_format to, size_t cap,
                   struct ig_codec_error *err)
{
    struct ig_budget *budget = r->rs.budget;
    size_t len;
    struct ig_rowset out;
    struct ig_buf body;
    int rv;

    if (cap == 0 || cap > GW_CONVERT_MAX)
        cap = gw_convert_cap(r->rs.body_len);
    /* charged before it is written: the most it may take */
    if (budget != NULL && ig_budget_hold_set(&r->conv_hold, budget, cap) < 0) {
        ig_codec_error_set(err, 0,
                           "The request's rows, converted to %s for the model, do not fit in "
                           "the gateway's memory budget; retry later or send fewer rows.",
                           ig_codec_format_mime(to));
        return IG_ERR_FULL;
    }
    ig_buf_init(&body, cap);
    memset(&out, 0, sizeof(out));
    out.budget = budget;
    rv = ig_convert_rows(from, &r->rs, to, r->lane->ep->conf->feature_dim, &body, &out, err);
    if (rv < 0) {
        ig_buf_clear(&body);
        ig_rowset_clear(&out);
        ig_budget_hold_clear(&r->conv_hold);
        if (rv == IG_ERR_TOOBIG && err != NULL && err->msg[0] == '\0')
            ig_codec_error_set(err, 0,
                               "The request's rows, converted to %s for the model, would take "
                               "more than %zu bytes.",
                               ig_codec_format_mime(to), cap);
        return rv;
    }
    ig_rowset_clear(&r->rs);
    r->rs = out;
    r->conv_body = ig_buf_take(&body, &len);
    r->rs.body = r->conv_body;
    r->rs.body_len = len;
    if (budget != NULL)
        ig_budget_hold_set(&r->conv_hold, budget, len); /* down to what it holds */
    return 0;
}

int gw_req_convert_preds(struct gw_request *r, const char *base, const struct ig_pred *preds,
                         int per_row, struct ig_buf *out, struct ig_pred **cpreds,
                         struct ig_codec_error *err)
{
    struct ig_pred *cp = ig_try_malloc((size_t)(r->rs.nrows ? r->rs.nrows : 1) * sizeof(*cp));
    int rv = 0;

    if (cp == NULL) {
        ig_codec_error_set(err, 0, "Out of memory converting the model's answer.");
        return IG_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < r->rs.nrows && rv == 0; i++) {
        size_t off = out->len;
        uint32_t failed = preds[i].len & IG_PRED_FAILED, len = preds[i].len & ~IG_PRED_FAILED;

        if (failed) { /* why the row failed: as it is */
            rv = ig_buf_append(out, base + preds[i].off, len);
            if (rv < 0)
                ig_codec_error_set(err, i + 1, "Row %u: out of memory.", i + 1);
        } else {
            rv = ig_convert_pred(r->lane->accept, base + preds[i].off, len,
                                 (enum ig_format)r->accept, i + 1, out, err);
            if (rv == IG_ERR_INVALID && per_row) {
                /* this row alone fails: why, without convert's "Row N: " */
                rv = ig_buf_append_str(out, ig_codec_error_reason(err));
                failed = IG_PRED_FAILED;
            }
        }
        cp[i].off = (uint32_t)off;
        cp[i].len = (uint32_t)(out->len - off) | failed;
    }
    if (rv < 0) {
        free(cp);
        return rv;
    }
    *cpreds = cp;
    return 0;
}

static void gw_req_send(struct gw_request *r, const char *base, const struct ig_pred *preds);
static void on_req_closed(struct ig_http_req *http, void *arg);

/* Whether <r>'s answers (<bytes> of them) are converted on a decoder
 * thread rather than on the loop: a unary request's, past
 * GW_CONVERT_INLINE_MAX (a stream's chunk holds at most TS_CHUNK_BYTES of
 * rows). */
static int gw_req_convert_off_loop(const struct gw_request *r, size_t bytes)
{
    return r->accept != r->lane->accept && r->chunk == NULL && bytes > GW_CONVERT_INLINE_MAX;
}

struct gw_conv_job {
    struct gw_request *r;
    struct ig_buf conv;
    struct ig_pred *cpreds;
    struct ig_codec_error cerr;
    int rv;
};

/* Worker thread: r's gathered answers (r->out, r->preds), which the loop
 * leaves alone while r->decoding is set, in the client's format. */
static void gw_conv_work(void *arg)
{
    struct gw_conv_job *j = arg;

    j->rv = gw_req_convert_preds(j->r, j->r->out.data, j->r->preds, 0, &j->conv, &j->cpreds,
                                 &j->cerr);
}

static void gw_conv_done(void *arg)
{
    struct gw_conv_job *j = arg;
    struct gw_request *r = j->r;

    r->decoding = 0;
    if (r->gw->closing) {
        gw_req_fail(r, "ServiceUnavailable", "The gateway is shutting down.");
    } else if (ig_http_req_orphaned(r->http)) {
        gw_access(r->http, r, r->lane->ep->conf->name, 0, NULL, 0, 0);
        ig_http_respond(r->http, 503, NULL, 0, NULL, 0);
        r->http = NULL;
        gw_req_finish(r);
    } else if (r->expired) {
        gw_req_expire(r);
    } else if (j->rv < 0) {
        gw_req_fail(r, "InternalFailure", j->cerr.msg);
    } else {
        gw_req_send(r, j->conv.data, j->cpreds);
    }
    free(j->cpreds);
    ig_buf_clear(&j->conv);
    gw_req_unref(r); /* the job's reference */
    free(j);
}

/* Answer <r> with its predictions: slices <preds> (rs.nrows of them) of
 * <base>, converted to the client's format first when it is not the
 * model's (on a decoder thread when they are many). */
static void gw_req_respond(struct gw_request *r, const char *base, const struct ig_pred *preds)
{
    struct ig_buf conv = {0};
    struct ig_pred *cpreds = NULL;
    struct ig_codec_error cerr;

    if (r->accept == r->lane->accept) {
        gw_req_send(r, base, preds);
        return;
    }
    if (r->preds != NULL && base == r->out.data && gw_req_convert_off_loop(r, r->out.len)) {
        struct gw_conv_job *j = ig_xcalloc(1, sizeof(*j));

        j->r = r;
        ig_buf_init(&j->conv, GW_RESPONSE_MAX);
        r->decoding = 1; /* the deadline waits for it (gw_decode_cancel finds no job) */
        r->refs++;
        /* No close callback while a worker reads r->out: a client that
         * leaves meanwhile leaves its request detached in the HTTP layer
         * (gw_conv_done finds it orphaned), as while a body is decoded;
         * on_req_closed would finish <r> and leave gw_conv_done a NULL
         * http to answer. */
        ig_http_req_set_close_cb(r->http, NULL, NULL);
        if (ig_workers_submit(r->gw->decoders, gw_conv_work, gw_conv_done, j) == 0)
            return;
        ig_http_req_set_close_cb(r->http, on_req_closed, r);
        r->decoding = 0; /* the pool is full: here, then */
        r->refs--;
        ig_buf_clear(&j->conv);
        free(j);
    }
    ig_buf_init(&conv, GW_RESPONSE_MAX);
    if (gw_req_convert_preds(r, base, preds, r->chunk != NULL, &conv, &cpreds, &cerr) < 0) {
        ig_buf_clear(&conv);
        gw_req_fail(r, "InternalFailure", cerr.msg);
        return;
    }
    gw_req_send(r, conv.data, cpreds);
    free(cpreds);
    ig_buf_clear(&conv);
}

/* gw_req_respond with the predictions in the client's format. */
static void gw_req_send(struct gw_request *r, const char *base, const struct ig_pred *preds)
{
    struct gw_endpoint *ep = r->lane->ep;
    struct ig_http_hdr hdrs[4];
    struct ig_buf body;
    size_t nh;
    uint64_t now;
    char *data;
    size_t len;
    int rv;

    if (r->chunk != NULL) {
        ig_ts_chunk_ok(r, base, preds);
        gw_req_finish(r);
        return;
    }
    ig_buf_init(&body, GW_RESPONSE_MAX);
    rv = ig_codec_encode_response((enum ig_format)r->accept, ep->up->json_key, base, preds,
                                  r->rs.nrows, &body);
    if (rv < 0) {
        ig_buf_clear(&body);
        gw_req_fail(r, "InternalFailure", "The response is too large to assemble.");
        return;
    }
    data = ig_buf_take(&body, &len);
    if (r->preds != NULL) {
        /* Gathered over batches: the response has them now, and the HTTP
         * layer charges it; off the budget before it does. */
        free(r->preds);
        r->preds = NULL;
        ig_buf_clear(&r->out);
        ig_budget_hold_clear(&r->hold);
    }
    hdrs[0].name = "Content-Type";
    hdrs[0].value = ig_codec_format_mime((enum ig_format)r->accept);
    hdrs[1].name = "x-Amzn-Invoked-Production-Variant";
    hdrs[1].value = r->variant_back != NULL ? r->variant_back : ep->conf->variant;
    nh = 2;
    if (r->attrs_back != NULL) {
        hdrs[nh].name = "X-Amzn-SageMaker-Custom-Attributes";
        hdrs[nh++].value = r->attrs_back;
    }
    if (r->stream) {
        /* The predictions as PayloadPart events; the model's type moves to
         * X-Amzn-SageMaker-Content-Type, as SageMaker sends it. */
        struct ig_buf ev;

        ig_buf_init(&ev, GW_RESPONSE_MAX + (GW_RESPONSE_MAX / IG_EVENTSTREAM_PART_MAX + 1) * 256);
        if (ig_eventstream_payloads(&ev, data, len) < 0) {
            ig_buf_clear(&ev);
            free(data);
            gw_req_fail(r, "InternalFailure", "The response is too large to assemble.");
            return;
        }
        free(data);
        data = ig_buf_take(&ev, &len);
        hdrs[nh].name = "X-Amzn-SageMaker-Content-Type";
        hdrs[nh++].value = hdrs[0].value;
        hdrs[0].value = "application/vnd.amazon.eventstream";
    }
    now = ig_now_us();
    ig_hist_observe(&ep->request_seconds, (double)(now - r->start_us) / 1e6);
    gw_count_status(r->gw, 200);
    gw_access(r->http, r, ep->conf->name, 200, NULL, len, now);
    ig_http_respond(r->http, 200, hdrs, nh, data, len);
    r->http = NULL;
    gw_req_finish(r);
}

static void on_req_closed(struct ig_http_req *http, void *arg)
{
    struct gw_request *r = arg;

    /* The client went away first: no answer, status 0 in the access log. */
    gw_access(http, r, r->lane->ep->conf->name, 0, NULL, 0, 0);
    r->http = NULL;
    gw_req_finish(r);
}

static void gw_decode_cancel(struct ig_gateway *gw, struct gw_request *r);

/* The endpoint's deadline timer: expire every request at the head of the
 * FIFO whose deadline has passed, then re-arm for the new head. */
static void on_ep_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct gw_endpoint *ep = arg;
    uint64_t now = ig_now_us();
    struct gw_request *r;

    (void)fd;
    (void)what;
    ep->dl_timer_at = UINT64_MAX;
    while ((r = ep->dl_head) != NULL && r->deadline_us <= now) {
        gw_dl_unlink(ep, r);
        if (r->decoding) {
            /* A worker is reading the body, which the answer would free:
             * answer when the decoder hands the request back; a body still
             * waiting for a decoder is answered now. */
            r->expired = 1;
            gw_decode_cancel(ep->gw, r);
            continue;
        }
        gw_req_expire(r);
    }
    if (r != NULL)
        gw_dl_arm(ep, r->deadline_us, now);
}

/* ---- lanes and batches ------------------------------------------------ */

/* Batches of <ep> out: in its slots of max_inflight and set aside. */
static uint32_t gw_ep_out(const struct gw_endpoint *ep)
{
    return ep->inflight + ep->aside;
}

static void gw_lane_pump(struct gw_lane *lane);
static int gw_lane_pump_at(struct gw_lane *lane, uint64_t now);

static uint32_t gw_peer_slot(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (uint32_t)key & (GW_PEER_MARKS - 1);
}

static void gw_lane_dispatch(struct gw_lane *lane, struct ig_batch *b);

/* The slot of <r>'s peer (its key, not 0) in gw->peer_loads, taken for it:
 * the peer's own among its GW_PEER_PROBE, else a free one of them, else
 * &gw->peer_overflow. */
static struct gw_peer_load *gw_load_take(struct gw_request *r)
{
    struct ig_gateway *gw = r->gw;
    struct gw_peer_load *free_slot = NULL;
    uint32_t h;

    if (r->loads > 0 || r->queued) /* its slot is its peer's while it counts there */
        return r->load;
    if (gw->peer_loads == NULL)
        gw->peer_loads = ig_xcalloc(GW_PEER_LOADS, sizeof(*gw->peer_loads));
    h = gw_peer_slot(r->peer_key);
    for (uint32_t i = 0; i < GW_PEER_PROBE; i++) {
        struct gw_peer_load *s = &gw->peer_loads[(h + i) & (GW_PEER_LOADS - 1)];

        if (s->key == r->peer_key)
            return r->load = s;
        if (s->n == 0 && s->qhead == NULL && free_slot == NULL)
            free_slot = s;
    }
    if (free_slot == NULL)
        return r->load = &gw->peer_overflow;
    free_slot->key = r->peer_key;
    free_slot->last_us = 0; /* another peer's before */
    return r->load = free_slot;
}

/* A segment of <r> goes out in a batch made at <now>: its peer has one
 * more in flight. */
static void gw_load_add(struct gw_request *r, uint64_t now)
{
    struct gw_peer_load *s;

    if (r->peer_key == 0)
        return;
    s = gw_load_take(r);
    s->n++;
    s->last_us = now;
    r->loads++;
}

/* <r> (a peer's) waits on its lane now: 1 when its peer had no other
 * request waiting (it goes ahead of the others' later ones), else 0. */
static int gw_load_queue(struct gw_request *r)
{
    struct gw_peer_load *s;

    if (r->peer_key == 0 || r->queued)
        return 0;
    s = gw_load_take(r);
    r->queued = 1;
    r->qnext = NULL;
    r->qprev = s->qtail;
    s->qtail = r;
    if (r->qprev == NULL) {
        s->qhead = r;
        return 1;
    }
    r->qprev->qnext = r;
    return 0;
}

/* <r> waits on its lane no more: all its rows are in batches, or it is
 * gone. When it was its peer's first request waiting, the next one is now
 * (ig_batcher_hoist): else the others' first requests, which keep coming
 * while their clients wait for one answer at a time, would pass it for
 * good. */
static void gw_load_unqueue(struct gw_request *r)
{
    struct gw_peer_load *s = r->load; /* it holds its key while r is queued */
    struct gw_request *next = r->qnext;

    if (!r->queued)
        return;
    r->queued = 0;
    if (r->qprev != NULL) {
        r->qprev->qnext = next;
    } else {
        s->qhead = next;
        /* its entry: not one a batch just took whole (gw_lane_dispatch) */
        if (next != NULL && next->rows_taken < next->rs.nrows)
            ig_batcher_hoist(next->lane->batcher, next->entry);
    }
    if (next != NULL)
        next->qprev = r->qprev;
    else
        s->qtail = r->qprev;
    r->qprev = r->qnext = NULL;
}

/* A segment of <r> is back (answered, failed or cancelled). */
static void gw_load_drop(struct gw_request *r)
{
    if (r->loads > 0) { /* r->load holds its key while its count is above 0 */
        r->load->n--;
        r->loads--;
    }
}

/* How much the peer of the oldest request queued in <lane> has been
 * served: its requests in flight, then when it last was (lower: first).
 * A request queued holds its peer's slot (gw_load_queue; none: no key). */
static void gw_lane_load(struct gw_lane *lane, uint32_t *n, uint64_t *last_us)
{
    const struct gw_request *r = ig_batcher_head_owner(lane->batcher);
    const struct gw_peer_load *s = r != NULL ? r->load : NULL;

    *n = s != NULL ? s->n : 0;
    *last_us = s != NULL ? s->last_us : 0;
}

/*
 * Slots of max_inflight are free (a batch completed after <first>'s): while
 * some are and several lanes are due, the lane whose oldest request's peer
 * has the fewest requests in flight, then was served longest ago, goes
 * first; ties in turn from the lane after <first>. A client that keeps
 * requests waiting on many lanes then takes turns with another client, not
 * a slot per lane ahead of it; with a slot free and one lane due, it goes
 * whoever it is (no slot idles). Then every lane with rows queued arms its
 * delay timer (or goes, as slots allow), starting after <first> so that no
 * lane starves another. The clock is read once, and again only after a lane
 * sent something (most of the GW_NLANES lanes are empty: a read each cost a
 * one-row request ~1.5% of its instructions).
 */
static void gw_endpoint_pump(struct gw_endpoint *ep, const struct gw_lane *first)
{
    size_t start = (size_t)(first - ep->lanes);
    uint64_t now;

    if (ep->queued_rows == 0) /* the lanes' rows (ig_batcher_set_group): none */
        return;
    now = ig_now_us();
    while (ep->inflight < ep->conf->max_inflight && !ep->gw->closing && ep->up != NULL) {
        struct gw_lane *best = NULL;
        uint32_t best_n = UINT32_MAX, n;
        uint64_t best_last = UINT64_MAX, last;
        struct ig_batch *b;

        for (size_t i = 1; i <= GW_NLANES && (best_n > 0 || best_last > 0); i++) {
            struct gw_lane *lane = &ep->lanes[(start + i) % GW_NLANES];

            if (ig_batcher_queued_rows(lane->batcher) == 0 ||
                !ig_batcher_ready(lane->batcher, now))
                continue;
            gw_lane_load(lane, &n, &last);
            if (n < best_n || (n == best_n && last < best_last)) {
                best = lane;
                best_n = n;
                best_last = last;
            }
        }
        if (best == NULL || (b = ig_batcher_next(best->batcher, now)) == NULL)
            break;
        gw_lane_dispatch(best, b);
        start = (size_t)(best - ep->lanes); /* ties: the next lane after it */
        now = ig_now_us();
    }
    for (size_t i = 1; i <= GW_NLANES; i++) {
        struct gw_lane *lane = &ep->lanes[(start + i) % GW_NLANES];

        if (ig_batcher_queued_rows(lane->batcher) != 0 && gw_lane_pump_at(lane, now))
            now = ig_now_us();
    }
}

uint32_t gw_endpoint_queued(const struct gw_endpoint *ep)
{
    return ep->queued_rows;
}

/* Until when <r>'s connection is under suspicion (GW_SUSPECT_US): its
 * mark, or NULL when the request has no connection any more. */
static uint64_t *gw_conn_mark(struct gw_request *r)
{
    return r->http != NULL ? ig_http_req_conn_mark(r->http) : NULL;
}

static void gw_peer_mark(struct ig_gateway *gw, uint64_t key, uint64_t until);

/* <r>'s rows failed the model: its connection and its peer are suspects
 * for GW_SUSPECT_US (their requests batched apart). */
static void gw_req_suspect(struct gw_request *r)
{
    uint64_t *mark = gw_conn_mark(r);

    if (mark != NULL) {
        *mark = ig_now_us() + GW_SUSPECT_US;
        gw_peer_mark(r->gw, r->peer_key, *mark);
    }
}

/* Requests from peer <key> are suspects until <until> (GW_PEER_MARKS). */
static void gw_peer_mark(struct ig_gateway *gw, uint64_t key, uint64_t until)
{
    struct gw_peer_mark *m = NULL;
    uint32_t h = gw_peer_slot(key);

    if (key == 0)
        return;
    if (gw->peer_marks == NULL)
        gw->peer_marks = ig_xcalloc(GW_PEER_MARKS, sizeof(*gw->peer_marks));
    for (uint32_t i = 0; i < GW_PEER_PROBE; i++) {
        struct gw_peer_mark *s = &gw->peer_marks[(h + i) & (GW_PEER_MARKS - 1)];

        if (s->key == key) {
            m = s;
            break;
        }
        if (m == NULL || s->until_us < m->until_us) /* a free slot's is 0 */
            m = s;
    }
    m->key = key;
    m->until_us = until;
    if (until > gw->peer_marks_until)
        gw->peer_marks_until = until;
}

/* Whether peer <key>'s mark lasts past <t>. */
static int gw_peer_marked(const struct ig_gateway *gw, uint64_t key, uint64_t t)
{
    uint32_t h = gw_peer_slot(key);

    if (key == 0 || gw->peer_marks == NULL || gw->peer_marks_until <= t)
        return 0;
    for (uint32_t i = 0; i < GW_PEER_PROBE; i++) {
        const struct gw_peer_mark *s = &gw->peer_marks[(h + i) & (GW_PEER_MARKS - 1)];

        if (s->key == key)
            return s->until_us > t;
    }
    return 0;
}

/* Copy a finished segment's predictions into its request. */
static void gw_scatter(struct gw_request *r, const struct ig_batch *b,
                       const struct ig_batch_seg *seg, uint32_t k)
{
    /* A request whose rows all came in this one batch (every small request)
     * is answered straight from the batch's output: no copy, no arrays of
     * its own. Only a request spread over batches gathers its predictions,
     * in an array allocated at its first batch. */
    int whole = seg->nrows == r->rs.nrows;
    size_t seg_bytes = 0;
    int rv;

    for (uint32_t i = 0; i < seg->nrows; i++) {
        const struct ig_pred *p = &b->preds[k + i];

        if ((p->len & IG_PRED_FAILED) && r->chunk != NULL) {
            /* a stream's row: its error record takes its place, of its type */
            seg_bytes += p->len & ~IG_PRED_FAILED;
            if (!whole && b->fails != NULL) {
                if (r->row_fails == NULL)
                    r->row_fails = ig_xcalloc(r->rs.nrows, sizeof(*r->row_fails));
                r->row_fails[seg->first + i] = b->fails[k + i];
            }
            continue;
        }
        if (p->len & IG_PRED_FAILED) { /* this row alone failed: say which and why */
            const struct ig_row_fail *f = b->fails ? &b->fails[k + i] : NULL;
            int len = (int)(p->len & ~IG_PRED_FAILED);
            char msg[1100];

            if (f != NULL && (f->type == NULL || strcmp(f->type, "ModelError") == 0)) {
                /* the model's own status and words, as SageMaker relays them */
                if (f->status == 500 || (f->status >= 400 && f->status < 500) || f->suspect)
                    gw_req_suspect(r); /* its rows: refused, raised or hung on */
                snprintf(msg, sizeof(msg), "%.*s", len, b->out + p->off);
                gw_model_error(r->gw, r->http, r, r->lane->ep, f->status, msg);
                r->http = NULL;
                gw_req_finish(r);
                return;
            }
            if (f != NULL && f->suspect) /* a split found the answer wrong for its rows alone */
                gw_req_suspect(r);
            snprintf(msg, sizeof(msg), "Row %u: %.*s", seg->first + i + 1, len, b->out + p->off);
            gw_req_fail(r, f != NULL ? f->type : "ModelError", msg);
            return;
        }
        seg_bytes += p->len;
    }
    if (whole && gw_req_convert_off_loop(r, seg_bytes))
        whole = 0; /* gathered, to be converted on a decoder thread */
    if (!whole) {
        /* Charged before anything grows: the slices at the first batch,
         * the text as it needs room (in the buffer's own doubling steps). */
        if ((rv = gw_req_pred_charge(r, seg_bytes)) < 0) {
            gw_req_pred_refused(r, rv);
            return;
        }
        if (r->preds == NULL &&
            (r->preds = ig_try_malloc((size_t)r->rs.nrows * sizeof(*r->preds))) == NULL) {
            gw_req_fail(r, "InternalFailure", "Out of memory for the predictions.");
            return;
        }
        if (ig_buf_reserve(&r->out, seg_bytes) < 0) {
            gw_req_fail(r, "InternalFailure", "Out of memory for the predictions.");
            return;
        }
        for (uint32_t i = 0; i < seg->nrows; i++) {
            const struct ig_pred *p = &b->preds[k + i];
            struct ig_pred *dst = &r->preds[seg->first + i];

            dst->off = (uint32_t)r->out.len;
            dst->len = p->len; /* IG_PRED_FAILED kept (a stream's row) */
            memcpy(r->out.data + r->out.len, b->out + p->off, p->len & ~IG_PRED_FAILED);
            r->out.len += p->len & ~IG_PRED_FAILED;
        }
        r->out.data[r->out.len] = '\0';
    }
    if (whole) {
        r->fails_view = b->fails ? &b->fails[k] : NULL;
        gw_req_respond(r, b->out, &b->preds[k]);
        return;
    }
    r->rows_done += seg->nrows;
    if (r->rows_done == r->rs.nrows)
        gw_req_respond(r, r->out.data, r->preds);
}

/* What the model said back to <r> in segment <s> of <b>. */
static void gw_seg_backs(struct gw_request *r, const struct ig_batch *b, uint32_t s)
{
    const struct ig_seg_back *bk = &b->backs[s];

    if (bk->custom_attributes != NULL) {
        free(r->attrs_back);
        r->attrs_back = ig_xstrdup(bk->custom_attributes);
    }
    if (bk->variant != NULL) {
        free(r->variant_back);
        r->variant_back = ig_xstrdup(bk->variant);
    }
}

/* Take <b> out of the unordered array <a> of <*n> batches (the last one
 * takes its place): 1 when it was there. */
static int gw_batches_remove(struct ig_batch **a, uint32_t *n, const struct ig_batch *b)
{
    for (uint32_t i = 0; i < *n; i++)
        if (a[i] == b) {
            a[i] = a[--*n];
            return 1;
        }
    return 0;
}

/* Drop <b> from the batches <r> waits for: 1 when it was one of them. */
static int gw_req_drop_batch(struct gw_request *r, const struct ig_batch *b)
{
    return gw_batches_remove(r->inb, &r->ninb, b);
}

/* The batches of <ep> that nobody waits for any more are cancelled: their
 * calls still out (the other half of a split, its retries) would hold a
 * slot of max_inflight for nobody. */
static void on_orphans(evutil_socket_t fd, short what, void *arg)
{
    struct gw_endpoint *ep = arg;

    (void)fd;
    (void)what;
    /* each leaves the list before its cancel, which may complete it */
    while (ep->norphans > 0) {
        struct ig_batch *b = ep->orphans[--ep->norphans];

        if (b->live == 0 && ep->up != NULL && ep->up->ops->cancel_batch != NULL &&
            !ep->gw->closing)
            ep->up->ops->cancel_batch(ep->up, b);
    }
}

static void gw_orphan_add(struct gw_endpoint *ep, struct ig_batch *b)
{
    static const struct timeval now = {0, 0};

    if (ep->up == NULL || ep->up->ops->cancel_batch == NULL || ep->gw->closing)
        return;
    if (ep->orphan_ev == NULL)
        ep->orphan_ev = evtimer_new(ep->gw->base, on_orphans, ep);
    if (ep->orphan_ev == NULL)
        return; /* out of memory: its calls run to their end, as before */
    if (ep->norphans == ep->orphans_cap) {
        ep->orphans_cap = ep->orphans_cap ? 2 * ep->orphans_cap : 4;
        ep->orphans = ig_xrealloc(ep->orphans, ep->orphans_cap * sizeof(*ep->orphans));
    }
    ep->orphans[ep->norphans++] = b;
    evtimer_add(ep->orphan_ev, &now);
}

/* Segment <s> of <b> (its first row <first>) is answered while the batch's
 * other calls are still out (ig_batch.seg_done): its request is answered
 * now. <b> leaves the request's batches first, so that answering it never
 * cancels <b> from inside its upstream; the segment is then skipped when
 * the batch completes. */
static void on_seg_done(struct ig_batch *b, uint32_t s, uint32_t first, void *arg)
{
    struct ig_batch_seg *seg = &b->segs[s];
    struct gw_request *r = seg->owner;
    struct gw_lane *lane = arg;

    if (r == NULL)
        return;
    seg->owner = NULL;
    gw_load_drop(r);
    if (gw_req_drop_batch(r, b) && --b->live == 0)
        gw_orphan_add(lane->ep, b);
    if (r->http && b->backs != NULL)
        gw_seg_backs(r, b, s);
    if (r->http || r->chunk)
        gw_scatter(r, b, seg, first);
    gw_req_unref(r);
}

static void gw_batch_finish(struct gw_lane *lane, struct ig_batch *b)
{
    uint32_t k = 0;

    ig_hist_observe(&lane->ep->upstream_seconds, (double)(ig_now_us() - b->created_us) / 1e6);
    for (uint32_t s = 0; s < b->nsegs; s++) {
        const struct ig_batch_seg *seg = &b->segs[s];
        struct gw_request *r = seg->owner;

        if (r == NULL) { /* answered before (on_seg_done) */
            k += seg->nrows;
            continue;
        }
        if (r->http && b->backs != NULL) /* what the model said back to this request */
            gw_seg_backs(r, b, s);
        if (r->http || r->chunk) {
            if (b->status < 0)
                gw_req_fail(r, b->err_type ? b->err_type : "InternalFailure",
                            b->err_msg ? b->err_msg : ig_strerror(b->status));
            else
                gw_scatter(r, b, seg, k);
        }
        k += seg->nrows;
        gw_load_drop(r);
        gw_req_drop_batch(r, b);
        gw_req_unref(r);
    }
    if (lane->ep->norphans > 0) /* it completes: off the list of batches to cancel */
        gw_batches_remove(lane->ep->orphans, &lane->ep->norphans, b);
    if (b->released) /* set aside when it split (on_batch_split) */
        lane->ep->aside--;
    else
        lane->ep->inflight--;
    ig_batcher_done(lane->batcher, b);
    gw_endpoint_pump(lane->ep, lane);
    if (lane->ep->streams_blocked > 0)
        ig_ts_wake(lane->ep);
    if (lane->ep->retired)
        gw_ep_check(lane->ep);
}

static void on_batch_done(struct ig_batch *b, void *arg)
{
    gw_batch_finish(arg, b);
}

struct gw_deferred_fail {
    struct gw_lane *lane;
    struct ig_batch *batch;
};

static void on_deferred_fail(evutil_socket_t fd, short what, void *arg)
{
    struct gw_deferred_fail *d = arg;

    (void)fd;
    (void)what;
    gw_batch_finish(d->lane, d->batch);
    free(d);
}

static void on_ep_pump(evutil_socket_t fd, short what, void *arg)
{
    struct gw_endpoint *ep = arg;

    (void)fd;
    (void)what;
    gw_endpoint_pump(ep, ep->lanes);
}

/*
 * The upstream split <b>'s rows into halves (ig_batch.split): they may
 * cost up to 2n - 1 calls more (a transform stream's records refused one
 * by one), which take turns with the other batches' calls in the
 * upstream's queues. Counted in max_inflight until its last, the batch
 * would keep its slot from every other client's batch for all of them, so
 * it is set aside: another batch goes in its place (pumped from the loop,
 * not from inside the upstream). GW_ASIDE_FACTOR x max_inflight batches
 * at most are aside; past that, a split batch keeps its slot.
 */
static void on_batch_split(struct ig_batch *b, void *arg)
{
    static const struct timeval now = {0, 0};
    struct gw_lane *lane = arg;
    struct gw_endpoint *ep = lane->ep;

    if (b->released || ep->gw->closing ||
        ep->aside >= (uint64_t)GW_ASIDE_FACTOR * ep->conf->max_inflight)
        return;
    if (ep->pump_ev == NULL && (ep->pump_ev = evtimer_new(ep->gw->base, on_ep_pump, ep)) == NULL)
        return; /* out of memory: it keeps its slot */
    ig_batcher_release(lane->batcher, b);
    ep->inflight--;
    ep->aside++;
    evtimer_add(ep->pump_ev, &now);
}

static void gw_lane_dispatch(struct gw_lane *lane, struct ig_batch *b)
{
    struct gw_endpoint *ep = lane->ep;
    struct gw_deferred_fail *d;
    struct timeval now = {0, 0};

    /* Batch ids are gateway-wide, so that an access log line names its
     * batches unambiguously across endpoints and lanes. */
    b->id = ++ep->gw->batch_seq;
    for (uint32_t s = 0; s < b->nsegs; s++) {
        struct gw_request *r = b->segs[s].owner;

        r->refs++;
        r->rows_taken += b->segs[s].nrows;
        if (r->ninb == r->capinb) {
            r->capinb = r->capinb ? 2 * r->capinb : 2;
            r->inb = ig_xrealloc(r->inb, r->capinb * sizeof(*r->inb));
        }
        r->inb[r->ninb++] = b;
        b->live++;
        gw_load_add(r, b->created_us);
        if (r->batch_first == 0) {
            r->batch_first = b->id;
            r->first_flush_us = b->created_us;
        }
        r->batch_last = b->id;
        r->last_flush_us = b->created_us;
    }
    /* Once every request's rows taken are counted: unqueueing one hoists
     * its peer's next, which may be in this batch too (its entry gone). */
    for (uint32_t s = 0; s < b->nsegs; s++) {
        struct gw_request *r = b->segs[s].owner;

        if (r->rows_taken == r->rs.nrows) /* all its rows are in batches */
            gw_load_unqueue(r);
    }
    ep->batches[b->reason]++;
    ep->inflight++;
    ig_hist_observe(&ep->batch_rows, b->nrows);
    b->seg_done = on_seg_done;
    b->seg_done_arg = lane;
    b->split = on_batch_split;
    if (ep->up->ops->submit_batch(ep->up, b, lane->ctype, lane->accept, on_batch_done, lane) == 0)
        return;
    /* The backend is saturated: fail these rows, but not from inside pump. */
    b->status = IG_ERR_FULL;
    b->err_type = "ServiceUnavailable";
    b->err_msg = ig_xstrdup("The model backend is saturated; retry later.");
    d = ig_xmalloc(sizeof(*d));
    d->lane = lane;
    d->batch = b;
    event_base_once(ep->gw->base, -1, EV_TIMEOUT, on_deferred_fail, d, &now);
}

static void on_lane_timer(evutil_socket_t fd, short what, void *arg)
{
    struct gw_lane *lane = arg;

    (void)fd;
    (void)what;
    lane->timer_at = UINT64_MAX;
    gw_lane_pump(lane);
}

/* Send every due batch as of <now> (the clock, read by the caller), then
 * arm the timer for the next delay deadline. 1 when a batch went out
 * (time passed: the caller reads the clock again), else 0. */
static int gw_lane_pump_at(struct gw_lane *lane, uint64_t now)
{
    struct gw_endpoint *ep = lane->ep;
    uint64_t due;
    struct ig_batch *b;
    int sent = 0;

    if (ep->gw->closing || ep->up == NULL)
        return 0; /* completions while the gateway is freed: nothing new goes out */
    while (ep->inflight < ep->conf->max_inflight &&
           (b = ig_batcher_next(lane->batcher, now)) != NULL) {
        gw_lane_dispatch(lane, b);
        sent = 1;
    }
    if (sent)
        now = ig_now_us(); /* the timer below waits from now */
    due = ig_batcher_next_deadline(lane->batcher);
    if (due == UINT64_MAX || ep->inflight >= ep->conf->max_inflight) {
        /* Nothing queued, or a completion will pump again. */
        return sent;
    }
    if (due != lane->timer_at) {
        struct timeval tv;
        uint64_t wait = due > now ? due - now : 0;

        tv.tv_sec = (time_t)(wait / 1000000u);
        tv.tv_usec = (suseconds_t)(wait % 1000000u);
        evtimer_add(lane->timer, &tv);
        lane->timer_at = due;
    }
    return sent;
}

/* Send every due batch, then arm the timer for the next delay deadline. */
static void gw_lane_pump(struct gw_lane *lane)
{
    gw_lane_pump_at(lane, ig_now_us());
}

/* ---- routes ------------------------------------------------------------ */

/* FNV-1a of an endpoint name: routes compare it (and the length) before
 * the bytes, so a request costs about a nanosecond per endpoint served
 * (load/bench-admin.sh with 1000 endpoints). */
static uint32_t gw_name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int gw_ep_named(const struct gw_endpoint *ep, const char *name, size_t len, uint32_t h)
{
    return ep->name_hash == h && ep->name_len == len && memcmp(ep->conf->name, name, len) == 0;
}

static uint64_t gw_rand(struct ig_gateway *gw)
{
    uint64_t x = gw->rng; /* xorshift64 */

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    gw->rng = x;
    return x;
}

/* The endpoint a request for <name> goes to. An admin endpoint with
 * several production variants: the one <target> (TargetVariant) names, else
 * one drawn by weight (all weights 0: each alike). *<no_variant> is set
 * when the endpoint exists but has no variant <target>. */
static struct gw_endpoint *gw_endpoint_find(struct ig_gateway *gw, const char *name, size_t len,
                                            const char *target, int *no_variant)
{
    struct gw_endpoint *first = NULL;
    uint32_t h = gw_name_hash(name, len);
    double total = 0, x;
    size_t n = 0, k;

    *no_variant = 0;
    for (size_t i = 0; i < gw->neps; i++) {
        struct gw_endpoint *ep = gw->eps[i];

        if (ep->retired || !gw_ep_named(ep, name, len, h))
            continue;
        if (!ep->admin)
            return ep;
        if (target != NULL) {
            if (strcmp(ep->conf->variant, target) == 0)
                return ep;
            *no_variant = 1;
            continue;
        }
        if (first == NULL)
            first = ep;
        n++;
        total += ep->weight;
    }
    if (target != NULL || n <= 1)
        return first;
    if (total > 0)
        x = (double)(gw_rand(gw) >> 11) * 0x1.0p-53 * total;
    else
        x = (double)(gw_rand(gw) % n);
    k = 0;
    for (size_t i = 0; i < gw->neps; i++) {
        struct gw_endpoint *ep = gw->eps[i];

        if (ep->retired || !ep->admin || !gw_ep_named(ep, name, len, h))
            continue;
        x -= total > 0 ? ep->weight : 1.0;
        if (x < 0 || ++k == n)
            return ep;
    }
    return first;
}

/* <ep>'s model is a SageMaker endpoint (sagemaker://): it has variants
 * of its own, and is handed the target variant. */
static int gw_sagemaker(const struct gw_endpoint *ep)
{
    return strcmp(ep->up->ops->name, "sagemaker") == 0;
}

/* Header constraints from the InvokeEndpoint model (sagemaker-protocols §1.2). */
static const char *gw_check_headers(struct ig_http_req *http, const struct gw_endpoint *ep,
                                    char *msg, size_t msglen)
{
    const char *v;

    v = ig_http_req_header(http, "X-Amzn-SageMaker-Custom-Attributes");
    if (v && strlen(v) > 1024)
        return "1 validation error detected: Value at 'customAttributes' failed to satisfy "
               "constraint: Member must have length less than or equal to 1024";
    for (size_t i = 0; v != NULL && v[i] != '\0'; i++)
        if ((unsigned char)v[i] >= 0x80)
            return "1 validation error detected: Value at 'customAttributes' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: \\p{ASCII}*";
    v = ig_http_req_header(http, "X-Amzn-SageMaker-Inference-Id");
    if (v && (strlen(v) < 1 || strlen(v) > 64))
        return "1 validation error detected: Value at 'inferenceId' failed to satisfy "
               "constraint: Member must have length between 1 and 64";
    /* \A\S[\p{Print}]*\z: printable ASCII, not starting with a blank (a
     * tab or a byte over 0x7E would reach SageMaker, refused there, and come
     * back as a 500 the client's SDK retries) */
    for (size_t i = 0; v != NULL && v[i] != '\0'; i++)
        if ((unsigned char)v[i] < (i == 0 ? 0x21 : 0x20) || (unsigned char)v[i] > 0x7E)
            return "1 validation error detected: Value at 'inferenceId' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: "
                   "\\A\\S[\\p{Print}]*\\z";
    v = ig_http_req_header(http, "X-Amzn-SageMaker-Target-Variant");
    if (v && gw_sagemaker(ep)) {
        /* SageMaker's endpoint has variants of its own: any name goes to
         * it, and it says whether it has that variant */
        if (strlen(v) > 63)
            return "1 validation error detected: Value at 'targetVariant' failed to satisfy "
                   "constraint: Member must have length less than or equal to 63";
        if (!ig_config_name_ok(v, strlen(v)))
            return "1 validation error detected: Value at 'targetVariant' failed to satisfy "
                   "constraint: Member must satisfy regular expression pattern: "
                   "^[a-zA-Z0-9](-*[a-zA-Z0-9])*";
        return NULL;
    }
    if (v && strcmp(v, ep->conf->variant) != 0) {
        snprintf(msg, msglen, "Variant %.64s not found for endpoint %s.", v, ep->conf->name);
        return msg;
    }
    return NULL;
}

/* Whether a Content-Type value is application/octet-stream (parameters and
 * surrounding blanks aside). */
static int gw_is_octet_stream(const char *v)
{
    static const char os[] = "application/octet-stream";

    while (*v == ' ' || *v == '\t')
        v++;
    if (strncasecmp(v, os, sizeof(os) - 1) != 0)
        return 0;
    v += sizeof(os) - 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v == '\0' || *v == ';';
}

/* The formats of <ep>'s upstream calls for a client's <ctype> / <accept>. */
static enum ig_format gw_wire_ctype(const struct gw_endpoint *ep, enum ig_format ctype)
{
    return ep->up_ctype >= 0 ? (enum ig_format)ep->up_ctype : ctype;
}

static enum ig_format gw_wire_accept(const struct gw_endpoint *ep, enum ig_format accept)
{
    return ep->up_accept >= 0 ? (enum ig_format)ep->up_accept : accept;
}

/* ", "-separated MIME types of the formats in <mask>. */
static void gw_format_list(uint32_t mask, char *out, size_t len)
{
    static const enum ig_format order[] = {IG_FMT_CSV, IG_FMT_JSON, IG_FMT_JSONL,
                                           IG_FMT_RECORDIO, IG_FMT_LIBSVM};
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < IG_ARRAY_SIZE(order) && n < len; i++)
        if (mask & (1u << order[i]))
            n += (size_t)snprintf(out + n, len - n, "%s%s", n ? ", " : "",
                                  ig_codec_format_mime(order[i]));
}

static int gw_negotiate(struct ig_http_req *http, struct gw_endpoint *ep, int stream,
                        enum ig_format *ctype, enum ig_format *accept, char *msg, size_t msglen)
{
    const char *ct = ig_http_req_header(http, "Content-Type");
    const char *ac = ig_http_req_header(http, stream ? "X-Amzn-SageMaker-Accept" : "Accept");

    /* application/octet-stream is what the AWS SDK for JavaScript sends when
     * the caller sets no content type: "none given", so the endpoint's
     * default applies, as with no header. */
    if (ct != NULL && gw_is_octet_stream(ct))
        ct = NULL;

    if (ig_codec_format_parse(ct, ep->default_ctype, ctype) < 0 ||
        !(ep->up->formats & (1u << *ctype))) {
        char list[256];

        gw_format_list(ep->up->formats, list, sizeof(list));
        snprintf(msg, msglen,
                 "Content type %.128s is not supported by endpoint %s. Supported content types: "
                 "%s.",
                 ct, ep->conf->name, list);
        return IG_ERR_UNSUPPORTED;
    }
    if (ig_codec_accept_parse(ac, ep->default_accept, accept) < 0 ||
        !(ep->up->accepts & (1u << *accept))) {
        char list[256];

        gw_format_list(ep->up->accepts, list, sizeof(list));
        snprintf(msg, msglen,
                 "Accept type %.128s is not supported by endpoint %s. Supported accept types: "
                 "%s.",
                 ac, ep->conf->name, list);
        return IG_ERR_UNSUPPORTED;
    }
    return 0;
}

/* Whether a line boundary for a model that reads lines starts at p[i]:
 * LF, CR, and what Python's str.splitlines() (a container's usual reader)
 * also cuts at: VT, FF, FS, GS, RS, and in UTF-8 NEL, U+2028 and U+2029. */
static int gw_break_at(const unsigned char *p, size_t len, size_t i)
{
    unsigned char ch = p[i];

    if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || (ch >= 0x1C && ch <= 0x1E))
        return 1;
    if (ch == 0xC2)
        return i + 1 < len && p[i + 1] == 0x85;
    if (ch == 0xE2)
        return i + 2 < len && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9);
    return 0;
}

/* Whether <p> holds a line boundary (gw_break_at). Eight bytes at a time:
 * a word none of whose bytes is below 0x20 or from 0x80 up (a row of
 * ASCII numbers and commas) holds none; only the others are looked at
 * byte by byte. */
static int gw_line_break(const unsigned char *p, size_t len)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, p + i, 8);
        if (((w - 0x20 * ones) | w) & highs) /* a byte < 0x20 or >= 0x80 */
            for (size_t k = i; k < i + 8; k++)
                if (gw_break_at(p, len, k))
                    return 1;
    }
    for (; i < len; i++)
        if (gw_break_at(p, len, i))
            return 1;
    return 0;
}

/* Whether a row of <rs> holds a line break (gw_line_break) when <up> is a
 * remote model that gets rows as bytes and reads <wire> a row a line: it
 * may read that row as two, so its request goes in calls of its own
 * (upstream_remote.c, rs->line_breaks), on a solo lane (a transform
 * stream's chunk: calls of its own, on its lane). */
int gw_rows_break(const struct ig_upstream *up, const struct ig_rowset *rs, enum ig_format wire)
{
    if (!up->remote || up->dim != 0 ||
        (wire != IG_FMT_CSV && wire != IG_FMT_JSONL && wire != IG_FMT_LIBSVM))
        return 0;
    for (uint32_t i = 0; i < rs->nrows; i++)
        if (gw_line_break((const unsigned char *)rs->body + rs->rows[i].off, rs->rows[i].len))
            return 1;
    return 0;
}

/* Whether <r> came on a connection, or from a peer, under suspicion
 * (GW_SUSPECT_US). */
static int gw_suspect(struct gw_request *r)
{
    uint64_t *mark = gw_conn_mark(r);

    if (mark == NULL)
        return 0;
    return *mark > r->start_us || (r->gw->peer_marks_until > r->start_us &&
                                   gw_peer_marked(r->gw, r->peer_key,
                                                  r->start_us));
}

/*
 * <r>'s body was decoded (inline, or on a decoder and back on the loop):
 * with <rv> < 0 answer the decoder's error, else queue its rows. <nbytes>
 * is the sum of the row lengths when the decoder computed it, UINT64_MAX
 * otherwise.
 */
void gw_req_decoded(struct gw_request *r, int rv, const struct ig_codec_error *cerr,
                    uint64_t nbytes)
{
    struct gw_endpoint *ep = r->lane->ep;
    /* headers the model is handed: its rows go in calls of their own */
    int forwards = r->pass.custom_attributes || r->pass.inference_id || r->pass.target_variant;
    char msg[512];

    if (rv < 0) {
        /* IG_ERR_FULL: the decoded features did not fit the memory budget. */
        gw_req_fail(r, rv == IG_ERR_FULL ? "ThrottlingException" : "ValidationError", cerr->msg);
        return;
    }
    /* Inline, the request is queued the moment it arrived; from a decoder,
     * now (the batcher's queue is in enqueue-time order). */
    r->enqueue_us = nbytes != UINT64_MAX ? ig_now_us() : r->start_us;
    /* A request whose rows go in calls of their own waits on the solo lane
     * of its formats: a batch of its own, taking turns with the others. */
    if (r->chunk == NULL && ep->up->remote && r->lane < ep->lanes + GW_NLANES_PLAIN) {
        if (r->breaks || forwards)
            r->lane += GW_NLANES_PLAIN;
        else if (gw_suspect(r)) /* batched apart from the others' rows */
            r->lane += 2 * GW_NLANES_PLAIN;
    }
    if (gw_endpoint_queued(ep) + (uint64_t)r->rs.nrows > ep->conf->max_queue_rows)
        rv = IG_ERR_FULL;
    else if (nbytes != UINT64_MAX)
        rv = ig_batcher_enqueue_sized(r->lane->batcher, r, &r->rs, nbytes, r->enqueue_us,
                                      &r->entry);
    else
        rv = ig_batcher_enqueue_entry(r->lane->batcher, r, &r->rs, r->enqueue_us, &r->entry);
    if (rv < 0) {
        if (rv == IG_ERR_FULL) {
            snprintf(msg, sizeof(msg), "Endpoint %s is over its queue limit of %u rows; "
                     "retry later.", ep->conf->name, ep->conf->max_queue_rows);
            gw_req_fail(r, "ThrottlingException", msg);
        } else {
            snprintf(msg, sizeof(msg), "Request has %u rows, more than the %u rows endpoint %s "
                     "can queue.", r->rs.nrows, ep->conf->max_queue_rows, ep->conf->name);
            gw_req_fail(r, "ValidationError", msg);
        }
        return;
    }
    /* The first request its client has waiting goes ahead of the others'
     * later ones: a client's backlog on a lane does not keep another
     * client's request waiting behind all of it (ig_batcher_hoist). */
    if (gw_load_queue(r))
        ig_batcher_hoist(r->lane->batcher, r->entry);
    if (forwards)
        r->rs.pass = &r->pass; /* its rows travel in calls of their own */
    r->rs.line_breaks = r->breaks; /* so do rows holding a line break */
    if (r->chunk == NULL) /* a stream's chunks count in the stream metrics */
        ep->requests++;
    ep->rows += r->rs.nrows;
    if (r->http != NULL)
        ig_http_req_set_close_cb(r->http, on_req_closed, r);
    if (!r->dl_linked)
        gw_dl_link(ep, r);
    gw_lane_pump(r->lane);
}

/* A body handed to a decoder. The request keeps no close callback while a
 * worker reads the body: a client that goes away leaves its request
 * detached in the HTTP layer, body intact, until the gateway answers it
 * (the answer is then dropped), so nothing is freed under the worker. */
struct gw_decode_job {
    struct gw_request *r;
    enum ig_format ctype;
    enum ig_format wire; /* the model's: rows converted to it (gw_req_convert) */
    int convert;         /* gw_converts */
    const char *body;
    size_t len;
    uint32_t dim;
    uint32_t max_rows;
    int rv;
    uint64_t nbytes; /* sum of the row lengths, for an O(1) enqueue */
    const struct ig_upstream *up; /* the model's (gw_rows_break) */
    int breaks;
    struct ig_budget *budget; /* referenced while the worker may charge it */
    struct ig_codec_error cerr;
    const void *flow;             /* its connection's gw_flow key */
    struct gw_decode_job *next;   /* in its flow, while waiting */
};

/* Worker thread: touches only the job and r->rs, which the loop leaves
 * alone while r->decoding is set. */
static void gw_decode_work(void *arg)
{
    struct gw_decode_job *j = arg;
    struct gw_request *r = j->r;
    uint64_t nbytes = 0;

    j->rv = ig_codec_decode(j->ctype, j->body, j->len, j->dim, j->max_rows, &r->rs, &j->cerr);
    if (j->rv == 0 && j->convert)
        j->rv = gw_req_convert(r, j->ctype, j->wire, 0, &j->cerr);
    if (j->rv < 0)
        return;
    for (uint32_t i = 0; i < r->rs.nrows; i++)
        nbytes += r->rs.rows[i].len;
    j->nbytes = nbytes;
    j->breaks = gw_rows_break(j->up, &r->rs, j->wire);
}

static void on_decode_done(void *arg);

/* Loop thread: the decoder is done with the body (or it was never decoded:
 * the gateway closing, the client gone, the deadline passed). */
static void gw_decode_done(void *arg)
{
    struct gw_decode_job *j = arg;
    struct gw_request *r = j->r;
    struct ig_gateway *gw = r->gw;

    gw->decoding--;
    r->decoding = 0;
    /* The rowset's hold keeps its own reference for what it still holds. */
    ig_budget_unref(j->budget);
    if (gw->closing) {
        gw_req_fail(r, "ServiceUnavailable", "The gateway is shutting down.");
    } else if (ig_http_req_orphaned(r->http)) {
        /* The client left while its body was decoded: its rows are not
         * queued (no model work for nobody); the answer, dropped by the
         * HTTP layer, only frees the detached request. */
        gw_access(r->http, r, r->lane->ep->conf->name, 0, NULL, 0, 0);
        ig_http_respond(r->http, 503, NULL, 0, NULL, 0);
        r->http = NULL;
        gw_req_finish(r);
    } else if (r->expired) {
        gw_req_expire(r);
    } else {
        r->breaks = (uint8_t)j->breaks;
        gw_req_decoded(r, j->rv, &j->cerr, j->nbytes);
    }
    gw_req_unref(r); /* the job's reference */
    free(j);
}

#define GW_DECODE_FULL_MSG "Too many large request bodies are waiting to be decoded; retry later."

/* A waiting body that will not be decoded: ThrottlingException. */
static void gw_decode_refuse(struct gw_decode_job *j)
{
    struct gw_request *r = j->r;

    r->gw->decoding--;
    r->decoding = 0;
    ig_budget_unref(j->budget);
    if (r->expired)
        gw_req_expire(r);
    else
        gw_req_fail(r, "ThrottlingException", GW_DECODE_FULL_MSG);
    gw_req_unref(r); /* the job's reference */
    free(j);
}

static struct gw_flow *gw_flow_find(struct ig_gateway *gw, const void *key)
{
    for (uint32_t i = 0; i < gw->nflows; i++)
        if (gw->flows[i].key == key)
            return &gw->flows[i];
    return NULL;
}

/* Remove the empty flow <f>, keeping the others in their turn order (a
 * swap with the last would let the newest connection jump the queue). */
static void gw_flow_remove(struct ig_gateway *gw, struct gw_flow *f)
{
    uint32_t i = (uint32_t)(f - gw->flows);

    memmove(f, f + 1, (gw->nflows - i - 1) * sizeof(*f));
    gw->nflows--;
    if (gw->flow_next > i)
        gw->flow_next--;
    if (gw->flow_next >= gw->nflows)
        gw->flow_next = 0;
}

/* The next body to decode: the head of the flow whose turn it is. */
static struct gw_decode_job *gw_flow_pop(struct ig_gateway *gw)
{
    struct gw_flow *f = &gw->flows[gw->flow_next];
    struct gw_decode_job *j = f->head;

    f->head = j->next;
    if (--f->n == 0)
        gw_flow_remove(gw, f); /* the flow after it moves here: its turn is next */
    else
        gw->flow_next = (gw->flow_next + 1) % gw->nflows;
    return j;
}

/* Hand waiting bodies to free decoder threads, the connections in turn.
 * One whose client left or whose deadline passed while it waited is
 * answered without a decode; with the gateway closing, all of them. */
static void gw_decode_pump(struct ig_gateway *gw)
{
    while (gw->nflows > 0 && (gw->closing || gw->decode_running < gw->decode_threads)) {
        struct gw_decode_job *j = gw_flow_pop(gw);

        if (gw->closing || j->r->expired || ig_http_req_orphaned(j->r->http)) {
            gw_decode_done(j);
            continue;
        }
        if (ig_workers_submit(gw->decoders, gw_decode_work, on_decode_done, j) < 0) {
            gw_decode_refuse(j);
            continue;
        }
        gw->decode_running++;
    }
}

/* If <r>'s body is still waiting for a decoder, take it out of its flow
 * and answer it now (its deadline passed: r->expired). O(waiting bodies),
 * at most GW_DECODE_QUEUE_MAX. */
static void gw_decode_cancel(struct ig_gateway *gw, struct gw_request *r)
{
    for (uint32_t i = 0; i < gw->nflows; i++) {
        struct gw_flow *f = &gw->flows[i];
        struct gw_decode_job *j, *prev = NULL;

        for (j = f->head; j != NULL; prev = j, j = j->next) {
            if (j->r != r)
                continue;
            if (prev != NULL)
                prev->next = j->next;
            else
                f->head = j->next;
            if (f->tail == j)
                f->tail = prev;
            if (--f->n == 0)
                gw_flow_remove(gw, f);
            gw_decode_done(j);
            return;
        }
    }
}

static void on_decode_done(void *arg)
{
    struct gw_decode_job *j = arg;
    struct ig_gateway *gw = j->r->gw;

    gw->decode_running--;
    gw_decode_done(j);
    gw_decode_pump(gw);
}

/*
 * Whether a body of the connection <key> may wait for a decoder: below the
 * cap, yes; at the cap, only by taking the place of the newest body of the
 * connection waiting with the most, when that is at least two more than
 * <key> has waiting (refused then: ThrottlingException). One client can
 * then fill the queue only while no one else needs it.
 */
static int gw_decode_admit(struct ig_gateway *gw, const void *key)
{
    struct gw_flow *heavy = NULL, *mine = gw_flow_find(gw, key);
    struct gw_decode_job *j, *prev = NULL;

    if (gw->decoding < GW_DECODE_QUEUE_MAX)
        return 1;
    for (uint32_t i = 0; i < gw->nflows; i++)
        if (heavy == NULL || gw->flows[i].n > heavy->n)
            heavy = &gw->flows[i];
    if (heavy == NULL || heavy->n <= (mine ? mine->n : 0) + 1)
        return 0;
    for (j = heavy->head; j->next != NULL; j = j->next)
        prev = j;
    if (prev != NULL) {
        prev->next = NULL;
        heavy->tail = prev;
    }
    if (--heavy->n == 0) /* not reached: n >= 2 */
        gw_flow_remove(gw, heavy);
    gw_decode_refuse(j);
    return 1;
}

static void gw_decode_offload(struct gw_request *r, enum ig_format ctype, const char *body,
                              size_t len)
{
    struct ig_gateway *gw = r->gw;
    struct gw_endpoint *ep = r->lane->ep;
    const void *key = r->rs.budget != NULL ? (const void *)r->rs.budget : (const void *)r;
    struct gw_decode_job *j;
    struct gw_flow *f;

    if (!gw_decode_admit(gw, key))
        goto full;
    j = ig_xcalloc(1, sizeof(*j));
    j->r = r;
    j->ctype = ctype;
    j->wire = r->lane->ctype;
    j->convert = gw_converts(ep, ctype, j->wire, r->rs.index_base);
    j->body = body;
    j->len = len;
    j->dim = ep->up->dim;
    j->up = ep->up;
    j->max_rows = ep->conf->max_queue_rows;
    /* The worker charges the connection's budget while the connection may
     * go away on the loop: hold it for the decode. */
    j->budget = r->rs.budget ? ig_budget_ref(r->rs.budget) : NULL;
    j->flow = key;
    /* From here on, r->rs is the decoder's (waiting, then on a thread). */
    r->decoding = 1;
    gw->decoding++;
    r->refs++;
    gw_dl_link(ep, r);
    if ((f = gw_flow_find(gw, key)) == NULL) {
        f = &gw->flows[gw->nflows++]; /* fits: one flow per waiting body at most */
        f->key = key;
        f->head = NULL;
        f->n = 0;
    }
    if (f->head == NULL)
        f->head = j;
    else
        f->tail->next = j;
    f->tail = j;
    f->n++;
    gw_decode_pump(gw);
    return;

full:
    gw_req_fail(r, "ThrottlingException", GW_DECODE_FULL_MSG);
}

struct gw_endpoint *gw_route(struct ig_gateway *gw, struct ig_http_req *http, const char *name,
                             size_t namelen, int stream, enum ig_format *ctype,
                             enum ig_format *accept)
{
    const char *target = ig_http_req_header(http, "X-Amzn-SageMaker-Target-Variant");
    int no_variant = 0;
    struct gw_endpoint *ep =
        memchr(name, '/', namelen) ? NULL
                                   : gw_endpoint_find(gw, name, namelen, target, &no_variant);
    const char *bad;
    char msg[512];

    if (ep == NULL) {
        char named[64];

        snprintf(named, sizeof(named), "%.*s", (int)(namelen > 63 ? 63 : namelen), name);
        if (no_variant) /* gw_check_headers' words, for one variant */
            snprintf(msg, sizeof(msg), "Variant %.64s not found for endpoint %s.", target, named);
        else if (gw->hooks.loading != NULL && gw->hooks.loading(gw->hooks.arg)) {
            /* just started: the job store's endpoints are being loaded */
            gw_error_for(gw, http, NULL, named, "ServiceUnavailable",
                         "The gateway is loading its endpoints; retry shortly.");
            return NULL;
        } else
            snprintf(msg, sizeof(msg), "Endpoint %s of account " GW_ACCOUNT " not found.", named);
        gw_error_for(gw, http, NULL, named, "ValidationError", msg);
        return NULL;
    }
    if ((bad = gw_check_headers(http, ep, msg, sizeof(msg))) != NULL ||
        gw_negotiate(http, ep, stream, ctype, accept, msg, sizeof(msg)) < 0) {
        gw_error_for(gw, http, NULL, ep->conf->name, "ValidationError", bad ? bad : msg);
        return NULL;
    }
    ep->refs++; /* the caller's request or stream gives it back (gw_ep_unref) */
    return ep;
}

/* InvokeEndpoint, or with <stream> InvokeEndpointWithResponseStream (its
 * Accept in X-Amzn-SageMaker-Accept; the answer framed as event-stream
 * PayloadPart events). */
static void gw_invoke(struct ig_gateway *gw, struct ig_http_req *http, const char *name,
                      size_t namelen, int stream)
{
    enum ig_format ctype, accept;
    struct gw_endpoint *ep = gw_route(gw, http, name, namelen, stream, &ctype, &accept);
    struct ig_codec_error cerr;
    struct gw_request *r;
    const char *body;
    size_t len;
    int rv;

    if (ep == NULL)
        return;
    r = ig_xcalloc(1, sizeof(*r));
    r->gw = gw;
    r->http = http;
    r->peer_key = ig_http_req_peer_key(http);
    r->stream = (uint8_t)stream;
    /* Rows parsed into features mix whatever their format; rows sent as
     * bytes go with rows of their own format. */
    r->lane = &ep->lanes[(ep->up->dim > 0 ? 0 : gw_wire_ctype(ep, ctype)) * IG_FMT_COUNT +
                         gw_wire_accept(ep, accept)];
    r->accept = (uint8_t)accept;
    r->refs = 1;
    r->start_us = ig_now_us();
    ig_buf_init(&r->out, GW_RESPONSE_MAX);
    /* Rows and features are charged to the connection's share of the
     * memory budget as the decoder grows them (IG_ERR_FULL: throttled). */
    r->rs.budget = ig_http_req_budget(http);
    r->rs.index_base = (uint8_t)ep->conf->libsvm_index_base;
    r->rs.missing_nan = ep->up->missing_nan;
    if (ep->up->remote) {
        r->pass.custom_attributes = ig_http_req_header(http, "X-Amzn-SageMaker-Custom-Attributes");
        r->pass.inference_id = ig_http_req_header(http, "X-Amzn-SageMaker-Inference-Id");
        /* a container is not handed the target variant (it routes: the
         * gateway checked it is the endpoint's): no call of its own */
        if (gw_sagemaker(ep))
            r->pass.target_variant = ig_http_req_header(http, "X-Amzn-SageMaker-Target-Variant");
    }
    body = ig_http_req_body(http, &len);
    if (len > GW_DECODE_INLINE_MAX) {
        gw_decode_offload(r, ctype, body, len);
        return;
    }
    rv = ig_codec_decode(ctype, body, len, ep->up->dim, ep->conf->max_queue_rows, &r->rs, &cerr);
    if (rv == 0 && gw_converts(ep, ctype, r->lane->ctype, r->rs.index_base))
        rv = gw_req_convert(r, ctype, r->lane->ctype, 0, &cerr);
    if (rv == 0)
        r->breaks = (uint8_t)gw_rows_break(ep->up, &r->rs, r->lane->ctype);
    gw_req_decoded(r, rv, &cerr, UINT64_MAX);
}

static int gw_render_metrics(struct ig_gateway *gw, struct ig_buf *out);
static size_t gw_metrics_max(const struct ig_gateway *gw);

static void gw_respond_text(struct ig_gateway *gw, struct ig_http_req *http, int status,
                            const char *ctype, char *body, size_t len)
{
    struct ig_http_hdr h = {"Content-Type", ctype};

    gw_count_status(gw, status);
    gw_access(http, NULL, NULL, status, NULL, len, 0);
    ig_http_respond(http, status, &h, ctype ? 1 : 0, body, len);
}

static void gw_ops_route(struct ig_gateway *gw, struct ig_http_req *http, const char *path)
{
    if (strcmp(path, "/ping") == 0) {
        gw_respond_text(gw, http, 200, NULL, NULL, 0);
    } else if (strcmp(path, "/healthz") == 0) {
        gw_respond_text(gw, http, 200, "application/json", ig_xstrdup("{\"status\":\"ok\"}"), 15);
    } else if (strcmp(path, "/readyz") == 0) {
        char why[768] = "", one[768];
        size_t down = 0, live = 0;
        int store_down = 0;

        /* Ready while any endpoint can serve (one model down must not take
         * the local ones out of a Service); "degraded" names the first that
         * cannot. */
        for (size_t i = 0; i < gw->neps; i++) {
            one[0] = '\0';
            if (gw->eps[i]->retired)
                continue;
            live++;
            if (gw->eps[i]->up->ops->health(gw->eps[i]->up, one, sizeof(one)) == 0)
                continue;
            if (down++ == 0) {
                if (one[0] == '\0')
                    snprintf(one, sizeof(one), "endpoint %s is not ready", gw->eps[i]->conf->name);
                memcpy(why, one, sizeof(why));
            }
        }
        one[0] = '\0';
        if (gw->hooks.ready != NULL && gw->hooks.ready(gw->hooks.arg, one, sizeof(one)) < 0) {
            /* the data plane serves on without the job store: degraded */
            store_down = 1;
            if (down == 0)
                memcpy(why, one, sizeof(why));
        }
        if (gw->draining) {
            gw_respond_text(gw, http, 503, "application/json",
                            ig_xstrdup("{\"status\":\"draining\"}"), 21);
        } else if (gw->hooks.loading != NULL && gw->hooks.loading(gw->hooks.arg)) {
            static const char loading[] =
                "{\"status\":\"not ready\",\"reason\":\"loading the job store's endpoints\"}";

            gw_respond_text(gw, http, 503, "application/json", ig_xstrdup(loading),
                            sizeof(loading) - 1);
        } else if (down > 0 || store_down) {
            /* of the variants served: a retired one still answering what it
             * holds takes no new request, so it does not make the gateway
             * ready */
            int all = down > 0 && down == live;
            json_t *o = json_pack("{s:s,s:s}", "status", all ? "not ready" : "degraded", "reason",
                                  why);
            char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

            json_decref(o);
            if (body == NULL)
                body = ig_xstrdup(all ? "{\"status\":\"not ready\"}" : "{\"status\":\"degraded\"}");
            gw_respond_text(gw, http, all ? 503 : 200, "application/json", body, strlen(body));
        } else {
            gw_respond_text(gw, http, 200, "application/json",
                            ig_xstrdup("{\"status\":\"ready\"}"), 18);
        }
    } else {
        struct ig_buf out;
        size_t len;
        char *body;

        ig_buf_init(&out, gw_metrics_max(gw));
        if (gw_render_metrics(gw, &out) < 0) {
            ig_buf_clear(&out);
            gw_error(gw, http, "InternalFailure", "Metrics too large to render.");
            return;
        }
        body = ig_buf_take(&out, &len);
        gw_respond_text(gw, http, 200, "text/plain; version=0.0.4", body, len);
    }
}

void ig_gateway_set_hooks(struct ig_gateway *gw, const struct ig_gateway_hooks *h)
{
    gw->hooks = *h;
}

/* data_auth: the request's SigV4 signature, else its AWS error. A streaming
 * transform's body is not there to hash when it starts: refused. */
static int gw_auth_ok(struct ig_gateway *gw, struct ig_http_req *http)
{
    const struct ig_http_hdr *hdrs;
    const char *type, *body;
    size_t nh, len;
    int status;
    char msg[512];

    if (ig_http_req_is_stream(http)) {
        type = "AccessDeniedException";
        status = 403;
        snprintf(msg, sizeof(msg), "The streaming transform is not available with data_auth = "
                                   "on: its body cannot be signed before it is sent.");
    } else {
        hdrs = ig_http_req_headers(http, &nh);
        body = ig_http_req_body(http, &len);
        if (ig_auth_check(gw->hooks.data_auth, ig_http_req_method(http), ig_http_req_path(http),
                          hdrs, nh, body, len, time(NULL), &type, &status, msg, sizeof(msg)) == 0)
            return 1;
    }
    {
        struct ig_http_hdr h[2] = {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", type}};
        json_t *o = json_pack("{s:s,s:s}", "__type", type, "message", msg);
        char *b = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

        json_decref(o);
        if (b == NULL)
            b = ig_xstrdup("{}");
        gw_count_status(gw, status);
        gw_access(http, NULL, NULL, status, type, strlen(b), 0);
        ig_http_respond(http, status, h, 2, b, strlen(b));
    }
    return 0;
}

static void on_request(struct ig_http_req *http, void *arg)
{
    static const char prefix[] = "/endpoints/";
    static const char *const suffixes[] = {"/invocations", "/invocations-response-stream"};
    struct ig_gateway *gw = arg;
    const char *method = ig_http_req_method(http);
    const char *path = ig_http_req_path(http);
    size_t plen = strlen(path);

    if (strcmp(path, "/ping") == 0 || strcmp(path, "/healthz") == 0 ||
        strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            gw_error(gw, http, "MethodNotAllowed", "Only GET is allowed on this path.");
        else
            gw_ops_route(gw, http, path);
        return;
    }
    if (strcmp(path, "/") == 0 && gw->hooks.admin != NULL) {
        gw->hooks.admin(gw->hooks.arg, http); /* the control plane (admin_on_main) */
        return;
    }
    if (gw->hooks.data_auth != NULL && !gw_auth_ok(gw, http))
        return;
    if (ig_http_req_is_stream(http)) { /* POST /transform/NAME (ig_ts_pick) */
        ig_ts_start(gw, http, path + 11, plen - 11);
        return;
    }
    if (strncmp(path, "/transform/", 11) == 0) {
        gw_error(gw, http, "MethodNotAllowed", "The transform takes POST (or PUT).");
        return;
    }
    for (int stream = 0; stream < 2; stream++) {
        size_t slen = strlen(suffixes[stream]);
        const char *name = path + sizeof(prefix) - 1;
        size_t namelen;

        if (strncmp(path, prefix, sizeof(prefix) - 1) != 0 || plen <= sizeof(prefix) - 1 + slen ||
            strcmp(path + plen - slen, suffixes[stream]) != 0)
            continue;
        namelen = plen - (sizeof(prefix) - 1) - slen;
        if (strcmp(method, "POST") != 0)
            gw_error(gw, http, "MethodNotAllowed", "InvokeEndpoint takes POST.");
        else if (memchr(name, '/', namelen) != NULL)
            gw_error(gw, http, "UnknownOperationException", "No such route.");
        else
            gw_invoke(gw, http, name, namelen, stream);
        return;
    }
    gw_error(gw, http, "UnknownOperationException", "No such route.");
}

/* ---- metrics ----------------------------------------------------------- */

/* The metrics text is bounded by the configuration: a fixed part, plus per
 * endpoint at most ~90 lines (8 samples and 3 histograms of up to 27 lines)
 * of at most ~220 bytes (a 63-character name in every label). Twice that
 * per endpoint leaves room for metrics added later; what is allocated is
 * only what the text takes (1024 endpoints: about 8 MB). */
#define GW_METRICS_FIXED ((size_t)1 << 20)
#define GW_METRICS_PER_ENDPOINT ((size_t)40 << 10)

static size_t gw_metrics_max(const struct ig_gateway *gw)
{
    return GW_METRICS_FIXED + gw->neps * GW_METRICS_PER_ENDPOINT;
}


/* The HTTP budgets (budget.h): the server-wide one and the connections'
 * shares, and the requests the stall rule cut. */
static int gw_render_budgets(struct ig_gateway *gw, struct ig_buf *out)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } rows[] = {
        {"infergate_buffered_bytes", "gauge",
         "Bytes held for clients now (header blocks, bodies, rows, responses waiting), all "
         "connections.", offsetof(struct ig_http_budget_stats, held)},
        {"infergate_buffered_bytes_limit", "gauge",
         "The server-wide budget (max_buffered_body_bytes).",
         offsetof(struct ig_http_budget_stats, cap)},
        {"infergate_buffered_refused_total", "counter",
         "Charges the server-wide budget refused.", offsetof(struct ig_http_budget_stats, refused)},
        {"infergate_conn_buffered_bytes_max", "gauge",
         "Bytes held for the connection that holds the most now.",
         offsetof(struct ig_http_budget_stats, conn_held_max)},
        {"infergate_conn_buffered_bytes_limit", "gauge",
         "Each connection's share (max_conn_buffered_bytes).",
         offsetof(struct ig_http_budget_stats, conn_cap)},
        {"infergate_conn_buffered_refused_total", "counter",
         "Charges a connection's share refused.",
         offsetof(struct ig_http_budget_stats, conn_refused)},
        {"infergate_stalled_total", "counter",
         "Request bodies and held-back responses cut for moving less than min_rate_bytes per "
         "idle_timeout_ms.", offsetof(struct ig_http_budget_stats, stalls)},
    };
    struct ig_http_budget_stats st;
    int rv = 0;

    ig_http_server_budget_stats(gw->http, &st);
    for (size_t i = 0; i < IG_ARRAY_SIZE(rows) && rv == 0; i++) {
        uint64_t v;

        memcpy(&v, (const char *)&st + rows[i].off, sizeof(v));
        rv = ig_metrics_header(out, rows[i].name, rows[i].type, rows[i].help);
        if (rv == 0)
            rv = ig_metrics_sample(out, rows[i].name, "", (double)v);
    }
    return rv;
}

/* The remote upstreams' own metrics (ig_upstream_stats), one series per
 * endpoint with a remote model. */
static int gw_render_upstreams(struct ig_gateway *gw, struct ig_buf *out)
{
    static const char *const why[IG_RETRY_REASON_COUNT] = {"throttled", "server", "connection",
                                                           "timeout"};
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } counters[] = {
        {"infergate_upstream_calls_total", "counter",
         "Calls to the model (retries and bisection halves included).",
         offsetof(struct ig_upstream_stats, calls)},
        {"infergate_upstream_calls_failed_total", "counter",
         "Calls that failed (5xx, timeout, connection; not a model's 4xx).",
         offsetof(struct ig_upstream_stats, calls_failed)},
        {"infergate_upstream_retries_denied_total", "counter",
         "Retries the retry budget refused.", offsetof(struct ig_upstream_stats, retries_denied)},
        {"infergate_upstream_splits_total", "counter",
         "Calls split in halves to isolate the rows a model refuses.",
         offsetof(struct ig_upstream_stats, splits)},
        {"infergate_upstream_breaker_opens_total", "counter", "Times the circuit breaker opened.",
         offsetof(struct ig_upstream_stats, breaker_opens)},
        {"infergate_upstream_canaries_total", "counter",
         "Calls of a row the model answered well, sent before failures open the breaker.",
         offsetof(struct ig_upstream_stats, canaries)},
    };
    char labels[192];
    int rv = 0;

#define REMOTE_EPS(code)                                                                           \
    for (size_t i = 0; i < gw->neps && rv == 0; i++) {                                             \
        const struct ig_upstream_stats *st = &gw->eps[i]->up->stats;                               \
        if (!gw->eps[i]->up->remote || gw->eps[i]->retired)                                        \
            continue;                                                                              \
        snprintf(labels, sizeof(labels), "%s", gw->eps[i]->label);                                 \
        code;                                                                                      \
    }
    for (size_t c = 0; c < IG_ARRAY_SIZE(counters) && rv == 0; c++) {
        rv = ig_metrics_header(out, counters[c].name, counters[c].type, counters[c].help);
        REMOTE_EPS(rv = ig_metrics_sample(
                       out, counters[c].name, labels,
                       (double)*(const uint64_t *)((const char *)st + counters[c].off)))
    }
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_retries_total", "counter",
                               "Calls retried, by reason.");
    REMOTE_EPS(for (int j = 0; j < IG_RETRY_REASON_COUNT && rv == 0; j++) {
        char l2[256];

        snprintf(l2, sizeof(l2), "%s,reason=\"%s\"", labels, why[j]);
        rv = ig_metrics_sample(out, "infergate_upstream_retries_total", l2, (double)st->retries[j]);
    })
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_breaker_state", "gauge",
                               "Circuit breaker: 0 closed, 1 open, 2 half-open.");
    /* health() brings the state up to date: an open breaker whose time is
     * up is half-open, request or not */
    REMOTE_EPS(gw->eps[i]->up->ops->health(gw->eps[i]->up, NULL, 0);
               rv = ig_metrics_sample(out, "infergate_upstream_breaker_state", labels,
                                      st->breaker_state))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_connections", "gauge",
                               "Connections open to the model.");
    REMOTE_EPS(rv = ig_metrics_sample(out, "infergate_upstream_connections", labels,
                                      st->connections))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_call_rows", "histogram", "Rows per call.");
    REMOTE_EPS(rv = ig_metrics_hist(out, "infergate_upstream_call_rows", labels, &st->call_rows))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_call_seconds", "histogram",
                               "Time from a call's start to its answer.");
    REMOTE_EPS(
        rv = ig_metrics_hist(out, "infergate_upstream_call_seconds", labels, &st->call_seconds))
#undef REMOTE_EPS
    return rv;
}

static int gw_render_metrics(struct ig_gateway *gw, struct ig_buf *out)
{
    static const char *const reasons[] = {"rows", "bytes", "delay", "drain"};
    char labels[192];
    int rv = 0;

#define ALL_EPS(code)                                                                              \
    for (size_t i = 0; i < gw->neps && rv == 0; i++) {                                             \
        struct gw_endpoint *ep = gw->eps[i];                                                       \
        if (ep->retired)                                                                           \
            continue;                                                                              \
        snprintf(labels, sizeof(labels), "%s", ep->label);                                         \
        code;                                                                                      \
    }

    rv = ig_metrics_header(out, "infergate_requests_total", "counter",
                           "InvokeEndpoint requests accepted for batching.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_requests_total", labels, (double)ep->requests))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_rows_total", "counter", "Rows accepted.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_rows_total", labels, (double)ep->rows))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_batches_total", "counter",
                               "Batches sent upstream, by flush reason.");
    ALL_EPS(for (size_t j = 0; j < IG_ARRAY_SIZE(reasons) && rv == 0; j++) {
        char l2[256];

        snprintf(l2, sizeof(l2), "%s,reason=\"%s\"", labels, reasons[j]);
        rv = ig_metrics_sample(out, "infergate_batches_total", l2, (double)ep->batches[j]);
    })
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_queue_rows", "gauge", "Rows waiting in batchers.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_queue_rows", labels, gw_endpoint_queued(ep)))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_inflight_batches", "gauge",
                               "Batches sent upstream and not yet answered.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_inflight_batches", labels, gw_ep_out(ep)))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_batch_rows", "histogram", "Rows per batch.");
    ALL_EPS(rv = ig_metrics_hist(out, "infergate_batch_rows", labels, &ep->batch_rows))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_upstream_latency_seconds", "histogram",
                               "Time from batch flush to its answer.");
    ALL_EPS(rv = ig_metrics_hist(out, "infergate_upstream_latency_seconds", labels,
                                 &ep->upstream_seconds))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_request_latency_seconds", "histogram",
                               "Time from a request's arrival to its successful response.");
    ALL_EPS(rv = ig_metrics_hist(out, "infergate_request_latency_seconds", labels,
                                 &ep->request_seconds))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_transform_streams", "gauge",
                               "Transform streams open (POST /transform).");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_transform_streams", labels, ep->streams_open))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_transform_streams_total", "counter",
                               "Transform streams started.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_transform_streams_total", labels,
                                   (double)ep->streams_total))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_transform_records_total", "counter",
                               "Output records written by transform streams, error records "
                               "included.");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_transform_records_total", labels,
                                   (double)ep->stream_records))
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_transform_error_records_total", "counter",
                               "Records of transform streams that failed (an error record, or "
                               "the stream's end with errors=abort).");
    ALL_EPS(rv = ig_metrics_sample(out, "infergate_transform_error_records_total", labels,
                                   (double)ep->stream_errors))
    if (rv == 0)
        rv = gw_render_upstreams(gw, out);
#undef ALL_EPS
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_errors_total", "counter",
                               "Error responses, by SageMaker error type.");
    for (size_t i = 0; i < IG_ARRAY_SIZE(gw_errors) && rv == 0; i++) {
        snprintf(labels, sizeof(labels), "type=\"%s\"", gw_errors[i].type);
        rv = ig_metrics_sample(out, "infergate_errors_total", labels,
                               (double)gw->errors_by_type[i]);
    }
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_responses_total", "counter",
                               "HTTP responses, by status class.");
    for (int c = 1; c <= 5 && rv == 0; c++) {
        snprintf(labels, sizeof(labels), "code=\"%dxx\"", c);
        rv = ig_metrics_sample(out, "infergate_responses_total", labels,
                               (double)gw->responses[c]);
    }
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_log_dropped_total", "counter",
                               "Log lines dropped because stderr did not keep up.");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_log_dropped_total", "", (double)ig_log_dropped());
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_connections", "gauge", "Open client connections.");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_connections", "",
                               ig_http_server_connections(gw->http));
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_buffered_body_bytes", "gauge",
                               "Request-body bytes the HTTP server holds, across all connections.");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_buffered_body_bytes", "",
                               (double)ig_http_server_buffered_body_bytes(gw->http));
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_decode_waiting", "gauge",
                               "Request bodies waiting for a decoder thread.");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_decode_waiting", "",
                               (double)(gw->decoding - gw->decode_running));
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_decode_running", "gauge",
                               "Request bodies being decoded on decoder threads.");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_decode_running", "", (double)gw->decode_running);
    if (rv == 0)
        rv = gw_render_budgets(gw, out);
    if (rv == 0)
        rv = ig_metrics_header(out, "infergate_build_info", "gauge",
                               "The running version and build (the value is always 1).");
    if (rv == 0)
        rv = ig_metrics_sample(out, "infergate_build_info",
                               "version=\"" IG_VERSION "\",build=\"" IG_BUILD "\"", 1);
    return rv;
}

/* ---- set-up and drain -------------------------------------------------- */

static void gw_endpoint_clear(struct gw_endpoint *ep);
static void on_ep_reap(evutil_socket_t fd, short what, void *arg);

/* upstream_content_type / upstream_accept of <conf>: -1 when empty. */
static int gw_endpoint_wire(const struct ig_endpoint_conf *conf, int *ct, int *ac, char *err,
                            size_t errlen)
{
    const char *u = conf->upstream_content_type, *a = conf->upstream_accept;
    int remote = strncmp(conf->model, "file://", 7) != 0;
    enum ig_format f;

    if ((u[0] != '\0' || a[0] != '\0') && !remote) {
        snprintf(err, errlen,
                 "endpoint %s: upstream_content_type and upstream_accept are for remote models "
                 "(http://, https://, sagemaker://); a file:// model reads every format",
                 conf->name);
        return -1;
    }
    if (u[0] != '\0') {
        if (ig_codec_format_parse(u, IG_FMT_CSV, &f) < 0) {
            snprintf(err, errlen, "endpoint %s: upstream_content_type %s is not a format the "
                     "gateway converts to", conf->name, u);
            return -1;
        }
        *ct = (int)f;
    }
    if (a[0] != '\0') {
        if (ig_codec_format_parse(a, IG_FMT_CSV, &f) < 0 || f == IG_FMT_LIBSVM) {
            snprintf(err, errlen, "endpoint %s: upstream_accept %s is not a format the gateway "
                     "converts from", conf->name, a);
            return -1;
        }
        *ac = (int)f;
    }
    return 0;
}

/* A new endpoint (or admin variant) for <conf>, with <model> already
 * loaded (owned from here on, also on failure) or NULL. */
static int gw_endpoint_new(struct ig_gateway *gw, const struct ig_endpoint_conf *conf,
                           struct ig_model *model, struct gw_endpoint **out, char *err,
                           size_t errlen)
{
    struct ig_upstream_env env = {
        .workers = gw->workers, .base = gw->base, .conf = conf, .model = model};
    struct ig_batcher_limits lim = {
        .max_batch_rows = conf->max_batch_rows,
        .max_batch_bytes = conf->max_batch_bytes,
        .max_delay_us = conf->max_delay_us,
        .max_inflight = conf->max_inflight,
        .max_queue_rows = conf->max_queue_rows,
    };
    /* solo lanes: a request a batch, sent at once (waiting would add none) */
    struct ig_batcher_limits solo = lim;
    struct gw_endpoint *ep;
    char why[384];
    int rv;

    solo.max_delay_us = 0;
    solo.max_batch_segs = 1;
    *out = NULL;
    ep = ig_xcalloc(1, sizeof(*ep));
    ep->gw = gw;
    ep->conf = conf;
    ep->timeout_us = conf->request_timeout_ms * 1000;
    ep->name_len = strlen(conf->name);
    ep->name_hash = gw_name_hash(conf->name, ep->name_len);
    snprintf(ep->label, sizeof(ep->label), "endpoint=\"%s\"", conf->name);
    if (ig_codec_format_parse(conf->content_type, IG_FMT_CSV, &ep->default_ctype) < 0 ||
        ig_codec_accept_parse(conf->accept, IG_FMT_JSON, &ep->default_accept) < 0) {
        snprintf(err, errlen, "endpoint %s: unsupported content_type or accept", conf->name);
        ig_model_free(model);
        free(ep);
        return IG_ERR_CONFIG;
    }
    ep->up_ctype = ep->up_accept = -1;
    if (gw_endpoint_wire(conf, &ep->up_ctype, &ep->up_accept, err, errlen) < 0) {
        ig_model_free(model);
        free(ep);
        return IG_ERR_CONFIG;
    }
    rv = ig_upstream_open(conf->model, &env, &ep->up, why, sizeof(why));
    if (rv < 0) {
        /* the local backend takes <model> over only when it opens */
        if (model != NULL && strncmp(conf->model, "file://", 7) != 0)
            ig_model_free(model);
        snprintf(err, errlen, "endpoint %s: %s", conf->name, why);
        free(ep);
        return rv;
    }
    if (gw->http != NULL) /* remote models charge it too */
        ep->up->budget = ig_http_server_budget(gw->http);
    ep->dl_timer = evtimer_new(gw->base, on_ep_deadline, ep);
    ep->dl_timer_at = UINT64_MAX;
    ep->reap_ev = evtimer_new(gw->base, on_ep_reap, ep);
    for (int f = 0; f < GW_NLANES; f++) {
        struct gw_lane *lane = &ep->lanes[f];

        lane->ep = ep;
        lane->ctype = (enum ig_format)(f % GW_NLANES_PLAIN / IG_FMT_COUNT);
        lane->accept = (enum ig_format)(f % IG_FMT_COUNT);
        lane->batcher = ig_batcher_new(f / GW_NLANES_PLAIN == 1 ? &solo : &lim);
        if (lane->batcher != NULL)
            ig_batcher_set_group(lane->batcher, &ep->queued_rows);
        lane->timer = evtimer_new(gw->base, on_lane_timer, lane);
        lane->timer_at = UINT64_MAX;
    }
    ig_hist_init(&ep->batch_rows, ig_hist_rows_bounds, ig_hist_rows_nbounds);
    ig_hist_init(&ep->upstream_seconds, ig_hist_seconds_bounds, ig_hist_seconds_nbounds);
    ig_hist_init(&ep->request_seconds, ig_hist_seconds_bounds, ig_hist_seconds_nbounds);
    ig_log(IG_LOG_INFO, "endpoint %s: %s upstream, %u features per row", conf->name,
           ep->up->ops->name, ep->up->dim);
    *out = ep;
    return 0;
}

static void gw_endpoint_clear(struct gw_endpoint *ep)
{
    /* First: a remote upstream hands its batches back (cancelled), and
     * their completions need the lanes. */
    ig_upstream_free(ep->up);
    ep->up = NULL;
    for (int f = 0; f < GW_NLANES; f++) {
        if (ep->lanes[f].timer)
            event_free(ep->lanes[f].timer);
        ig_batcher_free(ep->lanes[f].batcher);
    }
    if (ep->dl_timer)
        event_free(ep->dl_timer);
    if (ep->reap_ev)
        event_free(ep->reap_ev);
    if (ep->orphan_ev)
        event_free(ep->orphan_ev);
    if (ep->pump_ev)
        event_free(ep->pump_ev);
    free(ep->orphans);
    if (ep->own_conf != NULL)
        ig_config_endpoint_free(ep->own_conf);
    free(ep);
}

static void gw_eps_add(struct ig_gateway *gw, struct gw_endpoint *ep)
{
    if (gw->neps == gw->capeps) {
        gw->capeps = gw->capeps ? 2 * gw->capeps : 16;
        gw->eps = ig_xrealloc(gw->eps, gw->capeps * sizeof(*gw->eps));
    }
    gw->eps[gw->neps++] = ep;
}

/* A retired endpoint nothing holds any more is freed, from the loop (never
 * inside the completion or free that let it go). */
static void on_ep_reap(evutil_socket_t fd, short what, void *arg)
{
    struct gw_endpoint *ep = arg;
    struct ig_gateway *gw = ep->gw;

    (void)fd;
    (void)what;
    if (ep->refs > 0 || gw_ep_out(ep) > 0 || ep->streams != NULL || gw_endpoint_queued(ep) > 0)
        return; /* taken again meanwhile: the next release checks anew */
    for (size_t i = 0; i < gw->neps; i++)
        if (gw->eps[i] == ep) {
            memmove(&gw->eps[i], &gw->eps[i + 1], (gw->neps - i - 1) * sizeof(*gw->eps));
            gw->neps--;
            break;
        }
    ig_log(IG_LOG_INFO, "endpoint %s: variant %s retired and freed", ep->conf->name,
           ep->conf->variant);
    gw_endpoint_clear(ep);
}

void gw_ep_check(struct gw_endpoint *ep)
{
    struct timeval now = {0, 0};

    if (!ep->retired || ep->gw->closing || ep->refs > 0 || gw_ep_out(ep) > 0)
        return;
    evtimer_add(ep->reap_ev, &now);
}

void gw_ep_unref(struct gw_endpoint *ep)
{
    ep->refs--;
    gw_ep_check(ep);
}

int ig_gateway_is_configured(const struct ig_gateway *gw, const char *name)
{
    for (size_t i = 0; i < gw->neps; i++)
        if (!gw->eps[i]->admin && strcasecmp(gw->eps[i]->conf->name, name) == 0)
            return 1;
    return 0;
}

int ig_gateway_serve(struct ig_gateway *gw, const char *name, struct ig_gateway_variant *v,
                     size_t n, char *err, size_t errlen)
{
    struct gw_endpoint **fresh;
    int rv = 0;

    if (n == 0 || n > IG_GATEWAY_MAX_VARIANTS) {
        snprintf(err, errlen, "endpoint %s: %zu variants (1..%d)", name, n,
                 IG_GATEWAY_MAX_VARIANTS);
        for (size_t i = 0; i < n; i++)
            ig_model_free(v[i].model), v[i].model = NULL;
        return IG_ERR_INVALID;
    }
    if (ig_gateway_is_configured(gw, name)) {
        snprintf(err, errlen, "endpoint %s is served from the configuration file", name);
        for (size_t i = 0; i < n; i++)
            ig_model_free(v[i].model), v[i].model = NULL;
        return IG_ERR_INVALID;
    }
    fresh = ig_xcalloc(n, sizeof(*fresh));
    for (size_t i = 0; i < n; i++) {
        struct ig_endpoint_conf *c = NULL;

        if (rv == 0)
            rv = ig_config_endpoint_new(name, v[i].variant, v[i].model_url, &c, err, errlen);
        if (rv == 0)
            rv = gw_endpoint_new(gw, c, v[i].model, &fresh[i], err, errlen);
        else
            ig_model_free(v[i].model);
        v[i].model = NULL;
        if (rv < 0) {
            if (c != NULL)
                ig_config_endpoint_free(c);
            continue;
        }
        fresh[i]->own_conf = c;
        fresh[i]->admin = 1;
        fresh[i]->weight = v[i].weight;
        snprintf(fresh[i]->label, sizeof(fresh[i]->label), "endpoint=\"%s\",variant=\"%s\"",
                 name, c->variant);
    }
    if (rv < 0) {
        for (size_t i = 0; i < n; i++)
            if (fresh[i] != NULL)
                gw_endpoint_clear(fresh[i]);
        free(fresh);
        return rv;
    }
    ig_gateway_unserve(gw, name); /* the old variants finish what they hold */
    for (size_t i = 0; i < n; i++)
        gw_eps_add(gw, fresh[i]);
    free(fresh);
    return 0;
}

void ig_gateway_unserve(struct ig_gateway *gw, const char *name)
{
    for (size_t i = 0; i < gw->neps; i++) {
        struct gw_endpoint *ep = gw->eps[i];

        if (!ep->admin || ep->retired || strcmp(ep->conf->name, name) != 0)
            continue;
        ep->retired = 1;
        for (int f = 0; f < GW_NLANES; f++) /* flush what waits for the delay */
            ig_batcher_set_drain(ep->lanes[f].batcher, 1);
        for (int f = 0; f < GW_NLANES; f++)
            gw_lane_pump(&ep->lanes[f]);
        gw_ep_check(ep);
    }
}

uint32_t ig_gateway_retired_busy(const struct ig_gateway *gw, const char *name)
{
    uint32_t n = 0;

    for (size_t i = 0; i < gw->neps; i++)
        if (gw->eps[i]->admin && gw->eps[i]->retired && strcmp(gw->eps[i]->conf->name, name) == 0)
            n += gw->eps[i]->refs + gw_ep_out(gw->eps[i]) + 1; /* +1: not freed yet */
    return n;
}

uint64_t ig_gateway_hold_ms(const struct ig_gateway *gw, const char *name)
{
    uint64_t ms = 0;

    for (size_t i = 0; i < gw->neps; i++)
        if (gw->eps[i]->admin && strcmp(gw->eps[i]->conf->name, name) == 0 &&
            gw->eps[i]->conf->request_timeout_ms > ms)
            ms = gw->eps[i]->conf->request_timeout_ms;
    return ms;
}

uint32_t ig_gateway_busy(const struct ig_gateway *gw, const char *name)
{
    uint32_t n = 0;

    for (size_t i = 0; i < gw->neps; i++)
        if (gw->eps[i]->admin && strcmp(gw->eps[i]->conf->name, name) == 0)
            n += gw->eps[i]->refs + gw_ep_out(gw->eps[i]);
    return n;
}

int ig_gateway_new(struct event_base *base, const struct ig_config *cfg, struct ig_gateway **out,
                   char *err, size_t errlen)
{
    struct ig_gateway *gw = ig_xcalloc(1, sizeof(*gw));
    struct ig_http_server_conf hc = {
        .listen = cfg->listen,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .max_connections = cfg->max_connections,
        .max_concurrent_streams = cfg->max_concurrent_streams,
        .max_header_list_size = cfg->max_header_list_size,
        .max_body_bytes = cfg->max_body_bytes,
        .max_buffered_body_bytes = cfg->max_buffered_body_bytes,
        .max_conn_buffered_bytes = cfg->max_conn_buffered_bytes,
        .min_rate_bytes = cfg->min_rate_bytes,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .header_timeout_ms = cfg->header_timeout_ms,
    };
    uint32_t max_jobs = 16 + GW_FREE_QUEUE_MAX;
    int rv;

    gw->base = base;
    gw->cfg = cfg;
    for (size_t i = 0; i < cfg->nendpoints; i++)
        max_jobs += GW_NLANES_PLAIN * cfg->endpoints[i].max_inflight; /* local: plain lanes */
    /* the admin API's endpoints: each batch in flight is one job */
    max_jobs += IG_GATEWAY_MAX_ADMIN_VARIANTS * 8;
    if (ig_workers_new_nice(base, cfg->workers, max_jobs, GW_MODEL_NICE, &gw->workers) < 0 ||
        ig_workers_new_nice(base, cfg->workers, GW_DECODE_QUEUE_MAX, GW_DECODE_NICE,
                            &gw->decoders) < 0) {
        snprintf(err, errlen, "cannot start worker threads");
        rv = IG_ERR_IO;
        goto fail;
    }
    gw->decode_threads = ig_workers_threads(gw->decoders);
    gw->rng = ig_now_us() | 1;
    for (size_t i = 0; i < cfg->nendpoints; i++) {
        struct gw_endpoint *ep;

        rv = gw_endpoint_new(gw, &cfg->endpoints[i], NULL, &ep, err, errlen);
        if (rv < 0)
            goto fail;
        gw_eps_add(gw, ep);
    }
    rv = ig_http_server_new(base, &hc, on_request, gw, &gw->http, err, errlen);
    if (rv == 0)
        ig_http_server_set_stream_pick(gw->http, ig_ts_pick);
    for (size_t i = 0; rv == 0 && i < gw->neps; i++) /* remote models charge it too */
        gw->eps[i]->up->budget = ig_http_server_budget(gw->http);
    if (rv < 0)
        goto fail;
    *out = gw;
    return 0;

fail:
    ig_gateway_free(gw);
    return rv;
}

uint16_t ig_gateway_port(const struct ig_gateway *gw)
{
    return ig_http_server_port(gw->http);
}

/* Requests accepted and not answered: handed to the gateway (waiting for
 * a decoder, queued, in a batch) or still arriving (a request counts from
 * its first byte). */
static uint32_t gw_open_requests(const struct ig_gateway *gw)
{
    return ig_http_server_active_requests(gw->http) + ig_http_server_pending_requests(gw->http);
}

/* Nothing left to answer or to write: every accepted request answered,
 * every last response and GOAWAY on its socket, no body on a decoder. */
static int gw_idle(const struct ig_gateway *gw)
{
    if (gw_open_requests(gw) > 0 || gw->decoding > 0 || !ig_http_server_flushed(gw->http))
        return 0;
    for (size_t i = 0; i < gw->neps; i++)
        if (gw_ep_out(gw->eps[i]) > 0 || gw_endpoint_queued(gw->eps[i]) > 0)
            return 0;
    return 1;
}

static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    struct ig_gateway *gw = arg;
    struct timeval tv = {0, GW_DRAIN_POLL_US};
    unsigned long long answered = (unsigned long long)(gw->answered - gw->drain_answered);

    (void)fd;
    (void)what;
    if (!gw->drained && gw_idle(gw)) {
        gw->drained = 1;
        ig_log(IG_LOG_INFO, "drained: %llu requests answered during the drain, none cut off",
               answered);
    }
    if (gw->drained) {
        /* every answer on its socket: exit once the clients have them
         * (ig_http_server_acked), or at the deadline (the drain is done) */
        if (ig_http_server_acked(gw->http) || ig_now_us() >= gw->drain_deadline_us)
            event_base_loopexit(gw->base, NULL);
        else
            evtimer_add(gw->drain_poll, &tv);
        return;
    }
    if (ig_now_us() >= gw->drain_deadline_us) {
        uint32_t queued = 0, inflight = 0;

        for (size_t i = 0; i < gw->neps; i++) {
            queued += gw_endpoint_queued(gw->eps[i]);
            inflight += gw_ep_out(gw->eps[i]);
        }
        ig_log(IG_LOG_ERROR,
               "drain timeout after %llu ms: %llu requests answered during the drain, %u cut off "
               "(%u rows queued, %u batches in flight)",
               (unsigned long long)gw->cfg->drain_timeout_ms, answered, gw_open_requests(gw),
               queued, inflight);
        event_base_loopexit(gw->base, NULL);
        return;
    }
    evtimer_add(gw->drain_poll, &tv);
}

/* Half the drain is over: transform streams still sending stop taking
 * input. */
static void on_stream_cut(evutil_socket_t fd, short what, void *arg)
{
    struct ig_gateway *gw = arg;

    (void)fd;
    (void)what;
    gw->stream_cut_us = ig_now_us(); /* the timer may fire a hair before its time */
    for (size_t i = 0; i < gw->neps; i++)
        ig_ts_drain(gw->eps[i]);
}

void ig_gateway_drain(struct ig_gateway *gw)
{
    struct timeval now = {0, 0};

    if (gw->draining)
        return;
    gw->draining = 1;
    gw->drain_answered = gw->answered;
    gw->drain_deadline_us = ig_now_us() + gw->cfg->drain_timeout_ms * 1000;
    gw->stream_cut_us = ig_now_us() + gw->cfg->drain_timeout_ms * 500;
    ig_log(IG_LOG_INFO, "draining: no new connections, finishing %u requests",
           gw_open_requests(gw));
    ig_http_server_stop_accepting(gw->http);
    for (size_t i = 0; i < gw->neps; i++) {
        for (int f = 0; f < GW_NLANES; f++) {
            ig_batcher_set_drain(gw->eps[i]->lanes[f].batcher, 1);
            gw_lane_pump(&gw->eps[i]->lanes[f]);
        }
    }
    {
        /* streams still sending get half the drain to finish */
        struct timeval cut = {(time_t)(gw->cfg->drain_timeout_ms / 2000),
                              (suseconds_t)(gw->cfg->drain_timeout_ms / 2 % 1000 * 1000)};

        event_base_once(gw->base, -1, EV_TIMEOUT, on_stream_cut, gw, &cut);
    }
    /* The first check runs from the loop, never from inside this call: the
     * caller may be anywhere, and leaving the loop is the poll's job. */
    gw->drain_poll = evtimer_new(gw->base, on_drain_poll, gw);
    evtimer_add(gw->drain_poll, &now);
}

int ig_gateway_drained(const struct ig_gateway *gw)
{
    return gw->drained;
}

void ig_gateway_free(struct ig_gateway *gw)
{
    if (gw == NULL)
        return;
    gw->closing = 1;
    /* Closing connections fails their requests through the close callbacks. */
    ig_http_server_free(gw->http);
    /* Joins the workers; their completions run here and release requests:
     * the decoders' first, as their requests may still reach a lane. */
    ig_workers_free(gw->decoders);
    gw->decoders = NULL;
    gw_decode_pump(gw); /* bodies still waiting: answered, none decoded */
    ig_workers_free(gw->workers);
    for (size_t i = 0; i < gw->neps; i++)
        gw_endpoint_clear(gw->eps[i]);
    gw->neps = 0;
    if (gw->drain_poll)
        event_free(gw->drain_poll);
    free(gw->eps);
    free(gw->peer_marks);
    free(gw->peer_loads);
    free(gw);
}
