/*
 * fake_container.c - a SageMaker model container (the inference contract,
 * sagemaker-protocols.md 4.1 and 4.2) for tests and benchmarks of the
 * gateway's upstreams.
 *
 * It serves GET /ping, POST /invocations and GET /execution-parameters on
 * the gateway's own HTTP server (http.h: HTTP/1.1 and h2c on one port, with
 * its caps and timeouts), decodes bodies with the gateway's codecs and
 * predicts with the gateway's models, so a prediction is byte for byte what
 * the gateway's local upstream writes for the same row.
 *
 * What a real container does to a gateway is simulated on one event loop:
 * a service time per call (--latency-us plus --per-row-us per row, a
 * libevent timer, never a busy loop), at most --max-concurrent calls in
 * service with the others waiting FIFO, and faults drawn from a seeded PRNG
 * per call (500, 503, 429, no answer at all, one prediction short) plus a
 * poison value that fails any call holding it with 400. GET /stats counts
 * everything exactly, so that a test can assert how many upstream calls the
 * gateway made.
 *
 * Threading: one thread, one event_base. Nothing blocks.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/common.h"
#include "infergate/http.h"
#include "infergate/model.h"

#define FC_OUT_MAX ((size_t)256 << 20)    /* encoded predictions of one call */
#define FC_STATS_MAX ((size_t)16 << 10)   /* the /stats body */
#define FC_MAX_ROWS 1000000u              /* rows one call may hold */
#define FC_DRAIN_MAX_US (30ull * 1000000) /* SIGTERM: give up on clients after this */
#define FC_DRAIN_HELD_US 1000000ull       /* and on flushing beside held calls */
#define FC_STATUS_MAX 1000                /* calls_by_status slots: 0..999 */

/* What the PRNG drew for a call. */
enum fc_fault {
    FC_FAULT_NONE = 0,
    FC_FAULT_500,
    FC_FAULT_503,
    FC_FAULT_429,
    FC_FAULT_TIMEOUT,
    FC_FAULT_WRONG_COUNT,
    FC_FAULT_POISON, /* not drawn: the body holds the poison value */
    FC_FAULT_COUNT,
};

static const char *const fc_fault_names[FC_FAULT_COUNT] = {
    "none", "500", "503", "429", "timeout", "wrong_count", "poison",
};

struct fc_opts {
    const char *host;
    unsigned port;
    const char *model_path;
    int h2c;
    uint64_t latency_us, per_row_us;
    uint32_t max_concurrent; /* 0: no limit */
    uint32_t max_queue;      /* calls waiting for service; beyond: 503 */
    double rate[FC_FAULT_COUNT];
    uint64_t seed;
    const char *poison_text; /* as given, for the message */
    double poison;
    int has_poison;
    uint32_t max_payload_mb, max_transforms;
    int no_exec_params, ping_fail;
    uint64_t idle_timeout_ms;
};

enum fc_state {
    FC_QUEUED = 0,
    FC_SERVICE,
    FC_HELD, /* a timeout fault: never answered, freed when the client goes */
};

struct fc_call {
    struct fc *fc;
    struct ig_http_req *req; /* NULL once the client went away */
    enum fc_state state;
    enum fc_fault fault;
    enum ig_format accept;
    struct ig_rowset rs;         /* decoded rows; borrows the request's body */
    int status;                  /* 400 when the body did not decode */
    char msg[320];               /* and why */
    struct event *timer;         /* the simulated service time */
    struct fc_call *prev, *next; /* in fc.queue (FC_QUEUED) or fc.service (FC_SERVICE) */
};

struct fc_list {
    struct fc_call *head, *tail;
};

struct fc_stats {
    uint64_t calls, rows, pings, exec_params;
    uint64_t by_status[FC_STATUS_MAX];
    uint64_t faults[FC_FAULT_COUNT];
    uint64_t gone; /* clients that went away before their answer */
    uint32_t in_service, queued, held;
    uint32_t max_in_service, queued_peak;
};

struct fc {
    struct fc_opts o;
    struct event_base *base;
    struct ig_http_server *srv;
    struct ig_model *model;
    struct fc_list queue;   /* calls waiting for service, FIFO */
    struct fc_list service; /* calls in service (freed at exit if a drain gave up) */
    struct fc_stats st;
    uint64_t prng;
    int draining, drain_gave_up;
    uint64_t drain_start_us;
    uint64_t drain_answered_us; /* all but held calls answered since (0: not yet) */
    struct event *drain_tick;
};

/* ---- small helpers ------------------------------------------------------ */

/* splitmix64: a seeded sequence that is the same on every machine. */
static double fc_random(struct fc *fc)
{
    uint64_t z = (fc->prng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* One draw per call, the rates taken cumulatively in a fixed order, so that
 * each rate is the fraction of calls it hits and a rate of 1 is certain. */
static enum fc_fault fc_draw(struct fc *fc)
{
    static const enum fc_fault order[] = {FC_FAULT_500, FC_FAULT_503, FC_FAULT_429,
                                          FC_FAULT_TIMEOUT, FC_FAULT_WRONG_COUNT};
    double u = fc_random(fc), acc = 0.0;

    for (size_t i = 0; i < IG_ARRAY_SIZE(order); i++) {
        acc += fc->o.rate[order[i]];
        if (u < acc)
            return order[i];
    }
    return FC_FAULT_NONE;
}

/* {"message": "<msg>"}, the shape Python containers write (json.dumps),
 * <msg> JSON-escaped. */
static char *fc_message_body(const char *msg, size_t *len)
{
    struct ig_buf b;

    ig_buf_init(&b, 4096);
    ig_buf_append_str(&b, "{\"message\": \"");
    for (const char *p = msg; *p != '\0' && b.len < 3000; p++) {
        unsigned char c = (unsigned char)*p;

        if (c == '"' || c == '\\')
            ig_buf_printf(&b, "\\%c", c);
        else if (c < 0x20)
            ig_buf_printf(&b, "\\u%04x", c);
        else
            ig_buf_append_char(&b, (char)c);
    }
    ig_buf_append_str(&b, "\"}");
    return ig_buf_take(&b, len);
}

static void fc_count_status(struct fc *fc, int status)
{
    if (status >= 0 && status < FC_STATUS_MAX)
        fc->st.by_status[status]++;
}

/* Answer an /invocations call with an error: <status>, a JSON message and
 * x-amzn-ErrorType (so that the gateway's own rule for error shapes holds
 * here too; the contract relays only status and body). */
static void fc_invoke_error(struct fc *fc, struct ig_http_req *req, int status, const char *type,
                            const char *msg)
{
    struct ig_http_hdr h[2] = {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", type}};
    size_t len;
    char *body = fc_message_body(msg, &len);

    fc_count_status(fc, status);
    ig_http_respond(req, status, h, 2, body, len);
}

/* Answers on the other paths: not counted as calls. */
static void fc_plain(struct ig_http_req *req, int status, const char *ctype, const char *body)
{
    struct ig_http_hdr h = {"Content-Type", ctype};
    size_t len = body ? strlen(body) : 0;

    ig_http_respond(req, status, &h, ctype ? 1 : 0, body ? ig_xstrdup(body) : NULL, len);
}

static void fc_plain_error(struct ig_http_req *req, int status, const char *type, const char *msg)
{
    struct ig_http_hdr h[2] = {{"Content-Type", "application/json"}, {"x-amzn-ErrorType", type}};
    size_t len;
    char *body = fc_message_body(msg, &len);

    ig_http_respond(req, status, h, 2, body, len);
}

/* ---- calls ---------------------------------------------------------------- */

static void fc_call_free(struct fc_call *c)
{
    if (c->timer != NULL)
        event_free(c->timer);
    ig_rowset_clear(&c->rs);
    free(c);
}

static void fc_list_push(struct fc_list *l, struct fc_call *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void fc_list_unlink(struct fc_list *l, struct fc_call *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

/* The client went away: a queued call leaves the queue, a call in service
 * finishes its service time with no one to answer, a held call is freed. */
static void fc_on_close(struct ig_http_req *req, void *arg)
{
    struct fc_call *c = arg;
    struct fc *fc = c->fc;

    (void)req;
    c->req = NULL;
    ig_rowset_clear(&c->rs); /* its rows borrow the body, freed after this */
    fc->st.gone++;
    switch (c->state) {
    case FC_QUEUED:
        fc_list_unlink(&fc->queue, c);
        fc->st.queued--;
        fc_call_free(c);
        break;
    case FC_HELD:
        fc->st.held--;
        fc_call_free(c);
        break;
    case FC_SERVICE:
        break; /* the timer frees it */
    }
}

/* The first row holding the poison value (1-based), or 0. */
static uint32_t fc_poison_row(const struct fc *fc, const struct ig_rowset *rs)
{
    size_t n = (size_t)rs->nrows * rs->dim;

    if (!fc->o.has_poison)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (rs->features[i] == fc->o.poison)
            return (uint32_t)(i / rs->dim) + 1;
    return 0;
}

/* Predict every row and answer 200, one prediction short for a wrong-count
 * fault; a row whose output is not finite fails the call with 400 naming it. */
static void fc_answer_predictions(struct fc *fc, struct fc_call *c)
{
    const struct ig_model *m = fc->model;
    uint32_t n = c->rs.nrows, dim = c->rs.dim;
    struct ig_pred *preds = ig_try_malloc((size_t)(n ? n : 1) * sizeof(*preds));
    struct ig_buf rows, out;
    struct ig_http_hdr h = {"Content-Type", ig_codec_format_mime(c->accept)};
    char msg[512];
    size_t len;
    char *body;
    int rv = 0;

    ig_buf_init(&rows, FC_OUT_MAX);
    ig_buf_init(&out, FC_OUT_MAX);
    if (preds == NULL) {
        rv = IG_ERR_NOMEM;
        goto cleanup;
    }
    for (uint32_t i = 0; i < n && rv == 0; i++) {
        size_t before = rows.len;

        rv = ig_model_predict_row(m, c->rs.features + (size_t)i * dim, c->accept, &rows);
        if (rv == IG_MODEL_NOT_FINITE) {
            snprintf(msg, sizeof(msg), "Row %u: %s", i + 1, ig_model_not_finite_msg(m));
            goto cleanup;
        }
        preds[i].off = (uint32_t)before;
        preds[i].len = (uint32_t)(rows.len - before);
    }
    if (rv == 0 && c->fault == FC_FAULT_WRONG_COUNT && n > 0)
        n--;
    if (rv == 0)
        rv = ig_codec_encode_response(c->accept, ig_model_json_key(m), rows.data, preds, n, &out);

cleanup:
    free(preds);
    ig_buf_clear(&rows);
    ig_rowset_clear(&c->rs); /* before the answer: the rows borrow its body */
    if (rv == IG_MODEL_NOT_FINITE) {
        ig_buf_clear(&out);
        fc_invoke_error(fc, c->req, 400, "ValidationError", msg);
    } else if (rv < 0) {
        ig_buf_clear(&out);
        fc_invoke_error(fc, c->req, 500, "InternalFailure", "Predictions too large to encode.");
    } else {
        body = ig_buf_take(&out, &len);
        fc_count_status(fc, 200);
        ig_http_respond(c->req, 200, &h, 1, body, len);
    }
}

/* The call's service time is over: answer what was decided. */
static void fc_finish(struct fc_call *c)
{
    struct fc *fc = c->fc;

    if (c->req == NULL) /* the client went away meanwhile */
        return;
    if (c->status != 0) {
        ig_rowset_clear(&c->rs);
        fc_invoke_error(fc, c->req, c->status, "ValidationError", c->msg);
        return;
    }
    switch (c->fault) {
    case FC_FAULT_500:
        ig_rowset_clear(&c->rs);
        fc_invoke_error(fc, c->req, 500, "InternalFailure", "injected fault: 500");
        return;
    case FC_FAULT_POISON:
        ig_rowset_clear(&c->rs);
        fc_invoke_error(fc, c->req, 400, "ValidationError", c->msg);
        return;
    case FC_FAULT_TIMEOUT:
        /* Never answered: the request stays until its client goes. */
        ig_rowset_clear(&c->rs);
        c->state = FC_HELD;
        fc->st.held++;
        return;
    default:
        break;
    }
    fc_answer_predictions(fc, c);
}

/* The end of <c>'s service: answer it, free its slot. */
static void fc_service_end(struct fc_call *c)
{
    struct fc *fc = c->fc;

    fc_list_unlink(&fc->service, c);
    fc->st.in_service--;
    fc_finish(c);
    if (c->req == NULL || c->state != FC_HELD)
        fc_call_free(c);
}

static void fc_start_next(struct fc *fc);

static void fc_on_service_done(evutil_socket_t fd, short what, void *arg)
{
    struct fc_call *c = arg;
    struct fc *fc = c->fc;

    (void)fd;
    (void)what;
    fc_service_end(c);
    fc_start_next(fc);
}

/* Put <c> in service: its time is a timer, so that any number of calls in
 * service cost nothing but memory. */
static void fc_serve(struct fc *fc, struct fc_call *c)
{
    uint64_t us = fc->o.latency_us;
    struct timeval tv;

    if (c->rs.nrows > 0 && fc->o.per_row_us > (UINT64_MAX - us) / c->rs.nrows)
        us = UINT64_MAX / 2;
    else
        us += fc->o.per_row_us * c->rs.nrows;
    c->state = FC_SERVICE;
    fc_list_push(&fc->service, c);
    if (++fc->st.in_service > fc->st.max_in_service)
        fc->st.max_in_service = fc->st.in_service;
    tv.tv_sec = (time_t)(us / 1000000);
    tv.tv_usec = (suseconds_t)(us % 1000000);
    /* No simulated time: answer now (one loop turn saved); the caller
     * starts the next call, so no recursion. */
    if (us == 0 || (c->timer = evtimer_new(fc->base, fc_on_service_done, c)) == NULL ||
        evtimer_add(c->timer, &tv) < 0)
        fc_service_end(c);
}

static int fc_slot_free(const struct fc *fc)
{
    return fc->o.max_concurrent == 0 || fc->st.in_service < fc->o.max_concurrent;
}

static void fc_start_next(struct fc *fc)
{
    while (fc->queue.head != NULL && fc_slot_free(fc)) {
        struct fc_call *c = fc->queue.head;

        fc_list_unlink(&fc->queue, c);
        fc->st.queued--;
        fc_serve(fc, c);
    }
}

/* POST /invocations. The front door (content types, 503 and 429 faults,
 * the queue's cap) answers at once; everything else takes its turn in
 * service and is answered when its service time is over. */
static void fc_invocations(struct fc *fc, struct ig_http_req *req)
{
    const char *ct = ig_http_req_header(req, "Content-Type");
    const char *ac = ig_http_req_header(req, "Accept");
    struct ig_codec_error cerr;
    enum ig_format ctype, accept;
    struct fc_call *c;
    const char *body;
    char msg[512];
    size_t len;
    uint32_t prow;
    int rv;

    fc->st.calls++;
    if (ct == NULL || ig_codec_format_parse(ct, IG_FMT_CSV, &ctype) < 0) {
        snprintf(msg, sizeof(msg),
                 "Content type %.128s is not supported by this container. Supported content "
                 "types: text/csv, application/json, application/jsonlines.",
                 ct ? ct : "(none)");
        fc_invoke_error(fc, req, 415, "UnsupportedMediaType", msg);
        return;
    }
    if (ig_codec_accept_parse(ac, ctype, &accept) < 0) {
        snprintf(msg, sizeof(msg),
                 "Accept type %.128s is not supported by this container. Supported accept "
                 "types: text/csv, application/json, application/jsonlines.",
                 ac);
        fc_invoke_error(fc, req, 406, "NotAcceptable", msg);
        return;
    }
    c = ig_xcalloc(1, sizeof(*c));
    c->fc = fc;
    c->req = req;
    c->accept = accept;
    c->fault = fc_draw(fc);
    if (c->fault == FC_FAULT_503 || c->fault == FC_FAULT_429) {
        /* An overloaded front door refuses before it reads the body. */
        fc->st.faults[c->fault]++;
        fc_invoke_error(fc, req, c->fault == FC_FAULT_503 ? 503 : 429,
                        c->fault == FC_FAULT_503 ? "ServiceUnavailable" : "ThrottlingException",
                        c->fault == FC_FAULT_503 ? "injected fault: 503" : "injected fault: 429");
        free(c);
        return;
    }
    if (fc->o.max_queue > 0 && fc->st.queued >= fc->o.max_queue) {
        snprintf(msg, sizeof(msg), "%u calls are already waiting for service (--max-queue).",
                 fc->st.queued);
        fc_invoke_error(fc, req, 503, "ServiceUnavailable", msg);
        free(c);
        return;
    }
    /* Decoded now, so that its rows set its service time; the rows and
     * features are charged to the connection's share of the budget. */
    c->rs.budget = ig_http_req_budget(req);
    body = ig_http_req_body(req, &len);
    rv = ig_codec_decode(ctype, body, len, ig_model_dim(fc->model), FC_MAX_ROWS, &c->rs, &cerr);
    if (rv < 0) {
        c->status = rv == IG_ERR_FULL ? 429 : 400;
        snprintf(c->msg, sizeof(c->msg), "%s", cerr.msg);
    } else {
        fc->st.rows += c->rs.nrows;
        /* A poisoned batch that got past the door fails whatever the draw
         * (500, timeout, wrong count): tests of row isolation need it
         * certain. */
        if ((prow = fc_poison_row(fc, &c->rs)) != 0) {
            c->fault = FC_FAULT_POISON;
            snprintf(c->msg, sizeof(c->msg), "poison value %s in row %u", fc->o.poison_text, prow);
        }
        if (c->fault != FC_FAULT_NONE)
            fc->st.faults[c->fault]++;
    }
    ig_http_req_set_close_cb(req, fc_on_close, c);
    if (fc->queue.head == NULL && fc_slot_free(fc)) {
        fc_serve(fc, c);
        return;
    }
    c->state = FC_QUEUED;
    fc_list_push(&fc->queue, c);
    if (++fc->st.queued > fc->st.queued_peak)
        fc->st.queued_peak = fc->st.queued;
}

/* ---- the other paths --------------------------------------------------- */

static void fc_stats(struct fc *fc, struct ig_http_req *req)
{
    const struct fc_stats *s = &fc->st;
    struct ig_buf b;
    const char *sep = "";
    size_t len;
    char *body;

    ig_buf_init(&b, FC_STATS_MAX);
    ig_buf_printf(&b, "{\"calls\":%llu,\"rows\":%llu,\"calls_by_status\":{",
                  (unsigned long long)s->calls, (unsigned long long)s->rows);
    for (int i = 0; i < FC_STATUS_MAX; i++) {
        if (s->by_status[i] == 0)
            continue;
        ig_buf_printf(&b, "%s\"%d\":%llu", sep, i, (unsigned long long)s->by_status[i]);
        sep = ",";
    }
    ig_buf_append_str(&b, "},\"faults\":{");
    for (int i = FC_FAULT_NONE + 1; i < FC_FAULT_COUNT; i++)
        ig_buf_printf(&b, "%s\"%s\":%llu", i > 1 ? "," : "", fc_fault_names[i],
                      (unsigned long long)s->faults[i]);
    ig_buf_printf(&b,
                  "},\"in_service\":%u,\"max_in_service\":%u,\"queued\":%u,\"queued_peak\":%u,"
                  "\"held\":%u,\"gone\":%llu,\"pings\":%llu,\"execution_parameters\":%llu}",
                  s->in_service, s->max_in_service, s->queued, s->queued_peak, s->held,
                  (unsigned long long)s->gone, (unsigned long long)s->pings,
                  (unsigned long long)s->exec_params);
    body = ig_buf_take(&b, &len);
    ig_http_respond(req, 200, &(struct ig_http_hdr){"Content-Type", "application/json"}, 1, body,
                    len);
}

static void fc_exec_params(struct fc *fc, struct ig_http_req *req)
{
    char body[192];

    fc->st.exec_params++;
    if (fc->o.no_exec_params) {
        fc_plain_error(req, 404, "NotFound",
                       "This container does not offer /execution-parameters.");
        return;
    }
    snprintf(body, sizeof(body),
             "{\"MaxConcurrentTransforms\": %u, \"BatchStrategy\": \"MULTI_RECORD\", "
             "\"MaxPayloadInMB\": %u}",
             fc->o.max_transforms, fc->o.max_payload_mb);
    fc_plain(req, 200, "application/json", body);
}

static void fc_on_request(struct ig_http_req *req, void *arg)
{
    struct fc *fc = arg;
    const char *method = ig_http_req_method(req);
    const char *path = ig_http_req_path(req);
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (!fc->o.h2c && strcmp(ig_http_req_proto(req), "h2") == 0) {
        fc_plain_error(req, 505, "HTTPVersionNotSupported",
                       "This container serves HTTP/1.1 only (--h2c off).");
    } else if (strcmp(path, "/invocations") == 0) {
        if (strcmp(method, "POST") != 0)
            fc_plain_error(req, 405, "MethodNotAllowed", "/invocations takes POST.");
        else
            fc_invocations(fc, req);
    } else if (strcmp(path, "/ping") == 0 && get) {
        fc->st.pings++;
        if (fc->o.ping_fail)
            fc_plain_error(req, 503, "ServiceUnavailable", "not ready (--ping-fail)");
        else
            fc_plain(req, 200, NULL, NULL);
    } else if (strcmp(path, "/execution-parameters") == 0 && get) {
        fc_exec_params(fc, req);
    } else if (strcmp(path, "/stats") == 0 && get) {
        fc_stats(fc, req);
    } else if (strcmp(path, "/ping") == 0 || strcmp(path, "/execution-parameters") == 0 ||
               strcmp(path, "/stats") == 0) {
        fc_plain_error(req, 405, "MethodNotAllowed", "This path takes GET.");
    } else {
        fc_plain_error(req, 404, "NotFound", "No such path.");
    }
}

/* ---- drain ---------------------------------------------------------------- */

/* Done when every call is answered and every answer is written. Held
 * calls never will be: their connections never flush, so once all else is
 * answered they get FC_DRAIN_HELD_US for the other answers to be written,
 * then the exit drops them with their connections. */
static void fc_on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    struct fc *fc = arg;
    uint64_t now = ig_now_us();
    int answered = ig_http_server_active_requests(fc->srv) <= fc->st.held &&
                   ig_http_server_pending_requests(fc->srv) == 0 && fc->st.in_service == 0 &&
                   fc->st.queued == 0;

    (void)fd;
    (void)what;
    if (!answered || fc->st.held == 0)
        fc->drain_answered_us = 0;
    else if (fc->drain_answered_us == 0)
        fc->drain_answered_us = now;
    if (answered && (ig_http_server_flushed(fc->srv) ||
                     (fc->drain_answered_us && now - fc->drain_answered_us > FC_DRAIN_HELD_US))) {
        event_base_loopexit(fc->base, NULL);
    } else if (now - fc->drain_start_us > FC_DRAIN_MAX_US) {
        fprintf(stderr,
                "fake-container: drain: gave up after %llu s with %u calls in service, "
                "%u queued\n",
                (unsigned long long)(FC_DRAIN_MAX_US / 1000000), fc->st.in_service, fc->st.queued);
        fc->drain_gave_up = 1;
        event_base_loopexit(fc->base, NULL);
    }
}

static void fc_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct fc *fc = arg;
    struct timeval tv = {0, 10000};

    (void)what;
    if (fc->draining)
        return;
    fprintf(stderr, "fake-container: signal %d: draining\n", (int)sig);
    fc->draining = 1;
    fc->drain_start_us = ig_now_us();
    ig_http_server_stop_accepting(fc->srv);
    fc->drain_tick = event_new(fc->base, -1, EV_PERSIST, fc_on_drain_tick, fc);
    if (fc->drain_tick == NULL || event_add(fc->drain_tick, &tv) < 0)
        event_base_loopexit(fc->base, NULL);
}

/* ---- options -------------------------------------------------------------- */

static void fc_usage(FILE *f)
{
    fputs("usage: fake-container --model PATH [options]\n"
          "A SageMaker model container (GET /ping, POST /invocations, GET\n"
          "/execution-parameters) for tests and benchmarks; GET /stats counts calls.\n"
          "  --model PATH                 model.json (K-Means, PCA, Linear Learner)\n"
          "  --host HOST                  address to listen on (default 127.0.0.1)\n"
          "  --port P                     port; 0 picks a free one (default 8080); the\n"
          "                               line 'listening on HOST:PORT' goes to stdout\n"
          "  --h2c on|off                 serve HTTP/2 prior knowledge too (default on);\n"
          "                               off: h2 requests get 505\n"
          "  --latency-us N               service time per call (default 0)\n"
          "  --per-row-us N               service time per row (default 0)\n"
          "  --max-concurrent N           calls in service at once, the rest wait FIFO\n"
          "                               (default 0: no limit)\n"
          "  --max-queue N                calls waiting at most; beyond: 503 (default 100000)\n"
          "  --fail-500 RATE              fraction of calls answered 500 after service\n"
          "  --fail-503 RATE              fraction of calls answered 503 at once\n"
          "  --fail-429 RATE              fraction of calls answered 429 at once\n"
          "  --timeout RATE               fraction of calls never answered (held until\n"
          "                               the client goes away)\n"
          "  --wrong-count RATE           fraction of calls answered one prediction short\n"
          "  --seed S                     PRNG seed for the rates (default 1)\n"
          "  --poison VALUE               a call holding a feature equal to VALUE fails\n"
          "                               with 400 'poison value VALUE in row N'\n"
          "  --max-payload-mb M           MaxPayloadInMB of /execution-parameters and the\n"
          "                               body cap, 1..100 (default 6)\n"
          "  --max-concurrent-transforms N  MaxConcurrentTransforms of\n"
          "                               /execution-parameters (default: --max-concurrent,\n"
          "                               or 8 when that is 0)\n"
          "  --no-execution-parameters    answer 404 on /execution-parameters\n"
          "  --ping-fail                  answer 503 on /ping (not ready)\n"
          "  --idle-timeout-ms N          close idle connections (default 60000; 0 never)\n"
          "  --help                       this text\n"
          "RATE is a fraction 0..1; the rates of one call are drawn together and must\n"
          "add up to at most 1. SIGTERM or SIGINT: stop accepting, answer the calls\n"
          "accepted, exit 0.\n",
          f);
}

static int fc_parse_u64(const char *name, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v > max) {
        fprintf(stderr, "fake-container: --%s: '%s' is not an integer 0..%llu\n", name, s,
                (unsigned long long)max);
        return IG_ERR_CONFIG;
    }
    *out = v;
    return 0;
}

static int fc_parse_rate(const char *name, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (s[0] == '\0' || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
        fprintf(stderr, "fake-container: --%s: '%s' is not a fraction 0..1\n", name, s);
        return IG_ERR_CONFIG;
    }
    *out = v;
    return 0;
}

enum {
    OPT_MODEL = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_H2C,
    OPT_LATENCY,
    OPT_PER_ROW,
    OPT_MAX_CONC,
    OPT_MAX_QUEUE,
    OPT_F500,
    OPT_F503,
    OPT_F429,
    OPT_TIMEOUT,
    OPT_WRONG,
    OPT_SEED,
    OPT_POISON,
    OPT_PAYLOAD,
    OPT_TRANSFORMS,
    OPT_NO_EXEC,
    OPT_PING_FAIL,
    OPT_IDLE,
    OPT_HELP,
};

/* In the order of the enum above: fc_parse_opts names a flag by its index. */
static const struct option fc_long_opts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"h2c", required_argument, NULL, OPT_H2C},
    {"latency-us", required_argument, NULL, OPT_LATENCY},
    {"per-row-us", required_argument, NULL, OPT_PER_ROW},
    {"max-concurrent", required_argument, NULL, OPT_MAX_CONC},
    {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
    {"fail-500", required_argument, NULL, OPT_F500},
    {"fail-503", required_argument, NULL, OPT_F503},
    {"fail-429", required_argument, NULL, OPT_F429},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"wrong-count", required_argument, NULL, OPT_WRONG},
    {"seed", required_argument, NULL, OPT_SEED},
    {"poison", required_argument, NULL, OPT_POISON},
    {"max-payload-mb", required_argument, NULL, OPT_PAYLOAD},
    {"max-concurrent-transforms", required_argument, NULL, OPT_TRANSFORMS},
    {"no-execution-parameters", no_argument, NULL, OPT_NO_EXEC},
    {"ping-fail", no_argument, NULL, OPT_PING_FAIL},
    {"idle-timeout-ms", required_argument, NULL, OPT_IDLE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* 0, 1 for --help, or IG_ERR_CONFIG (a message is on stderr). */
static int fc_parse_opts(int argc, char **argv, struct fc_opts *o)
{
    uint64_t v, transforms = UINT64_MAX;
    double sum = 0.0;
    int opt, rv = 0;

    *o = (struct fc_opts){.host = "127.0.0.1",
                          .port = 8080,
                          .h2c = 1,
                          .max_queue = 100000,
                          .seed = 1,
                          .max_payload_mb = 6,
                          .idle_timeout_ms = 60000};
    while (rv == 0 && (opt = getopt_long(argc, argv, "h", fc_long_opts, NULL)) != -1) {
        const char *name =
            opt >= OPT_MODEL && opt <= OPT_HELP ? fc_long_opts[opt - OPT_MODEL].name : "?";
        switch (opt) {
        case OPT_MODEL:
            o->model_path = optarg;
            break;
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            if ((rv = fc_parse_u64(name, optarg, 65535, &v)) == 0)
                o->port = (unsigned)v;
            break;
        case OPT_H2C:
            if (strcmp(optarg, "on") == 0 || strcmp(optarg, "off") == 0) {
                o->h2c = strcmp(optarg, "on") == 0;
            } else {
                fprintf(stderr, "fake-container: --h2c: '%s' is not on or off\n", optarg);
                rv = IG_ERR_CONFIG;
            }
            break;
        case OPT_LATENCY:
            rv = fc_parse_u64(name, optarg, 3600000000ull, &o->latency_us);
            break;
        case OPT_PER_ROW:
            rv = fc_parse_u64(name, optarg, 60000000ull, &o->per_row_us);
            break;
        case OPT_MAX_CONC:
            if ((rv = fc_parse_u64(name, optarg, 1000000, &v)) == 0)
                o->max_concurrent = (uint32_t)v;
            break;
        case OPT_MAX_QUEUE:
            if ((rv = fc_parse_u64(name, optarg, 10000000, &v)) == 0)
                o->max_queue = (uint32_t)v;
            break;
        case OPT_F500:
            rv = fc_parse_rate(name, optarg, &o->rate[FC_FAULT_500]);
            break;
        case OPT_F503:
            rv = fc_parse_rate(name, optarg, &o->rate[FC_FAULT_503]);
            break;
        case OPT_F429:
            rv = fc_parse_rate(name, optarg, &o->rate[FC_FAULT_429]);
            break;
        case OPT_TIMEOUT:
            rv = fc_parse_rate(name, optarg, &o->rate[FC_FAULT_TIMEOUT]);
            break;
        case OPT_WRONG:
            rv = fc_parse_rate(name, optarg, &o->rate[FC_FAULT_WRONG_COUNT]);
            break;
        case OPT_SEED:
            rv = fc_parse_u64(name, optarg, UINT64_MAX, &o->seed);
            break;
        case OPT_POISON: {
            char *end;

            o->poison = strtod(optarg, &end);
            if (optarg[0] == '\0' || *end != '\0' || !isfinite(o->poison)) {
                fprintf(stderr, "fake-container: --poison: '%s' is not a number\n", optarg);
                rv = IG_ERR_CONFIG;
            }
            o->poison_text = optarg;
            o->has_poison = 1;
            break;
        }
        case OPT_PAYLOAD:
            if ((rv = fc_parse_u64(name, optarg, 100, &v)) == 0 && v == 0) {
                fprintf(stderr, "fake-container: --max-payload-mb: must be 1..100\n");
                rv = IG_ERR_CONFIG;
            }
            o->max_payload_mb = (uint32_t)v;
            break;
        case OPT_TRANSFORMS:
            rv = fc_parse_u64(name, optarg, 1000000, &transforms);
            break;
        case OPT_NO_EXEC:
            o->no_exec_params = 1;
            break;
        case OPT_PING_FAIL:
            o->ping_fail = 1;
            break;
        case OPT_IDLE:
            rv = fc_parse_u64(name, optarg, 86400000ull, &o->idle_timeout_ms);
            break;
        case OPT_HELP:
        case 'h':
            return 1;
        default:
            return IG_ERR_CONFIG; /* getopt said why */
        }
    }
    if (rv < 0)
        return rv;
    if (optind < argc) {
        fprintf(stderr, "fake-container: unexpected argument '%s'\n", argv[optind]);
        return IG_ERR_CONFIG;
    }
    if (o->model_path == NULL) {
        fprintf(stderr, "fake-container: --model PATH is required\n");
        return IG_ERR_CONFIG;
    }
    for (int i = 0; i < FC_FAULT_COUNT; i++)
        sum += o->rate[i];
    if (sum > 1.0 + 1e-9) {
        fprintf(stderr, "fake-container: the fault rates add up to %g; at most 1\n", sum);
        return IG_ERR_CONFIG;
    }
    o->max_transforms = transforms != UINT64_MAX ? (uint32_t)transforms
                        : o->max_concurrent > 0  ? o->max_concurrent
                                                 : 8;
    return 0;
}

int main(int argc, char **argv)
{
    struct ig_http_server_conf hc = {0};
    struct event *sigterm = NULL, *sigint = NULL;
    struct event_config *evcfg;
    struct fc fc = {0};
    char listen[300], err[512];
    uint64_t body_max;
    int status = 1, rv;

    rv = fc_parse_opts(argc, argv, &fc.o);
    if (rv != 0) {
        fc_usage(rv > 0 ? stdout : stderr);
        return rv > 0 ? 0 : 2;
    }
    ig_log_min_level = IG_LOG_WARN;
    fc.prng = fc.o.seed;
    if (ig_model_load_file(fc.o.model_path, &fc.model, err, sizeof(err)) < 0) {
        fprintf(stderr, "fake-container: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Service times are a few milliseconds: epoll's own timeout rounds to
     * whole milliseconds (a 2 ms call took 3-4), a timerfd does not. */
    if ((evcfg = event_config_new()) != NULL &&
        event_config_set_flag(evcfg, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
        fc.base = event_base_new_with_config(evcfg);
    if (evcfg != NULL)
        event_config_free(evcfg);
    if (fc.base == NULL) {
        fprintf(stderr, "fake-container: event_base_new failed\n");
        goto cleanup;
    }
    /* The HTTP module's caps: bodies up to MaxPayloadInMB (413 beyond),
     * and room in each connection's share for one such body plus its
     * decoded features (8 bytes a feature, up to 4 per body byte). */
    body_max = (uint64_t)fc.o.max_payload_mb << 20;
    snprintf(listen, sizeof(listen), strchr(fc.o.host, ':') ? "[%s]:%u" : "%s:%u", fc.o.host,
             fc.o.port);
    hc.listen = listen;
    hc.max_connections = 4096;
    hc.max_concurrent_streams = 256;
    hc.max_body_bytes = body_max;
    hc.max_conn_buffered_bytes = 6 * body_max + (8u << 20);
    hc.max_buffered_body_bytes = 8 * hc.max_conn_buffered_bytes;
    hc.idle_timeout_ms = fc.o.idle_timeout_ms;
    hc.header_timeout_ms = 10000;
    rv = ig_http_server_new(fc.base, &hc, fc_on_request, &fc, &fc.srv, err, sizeof(err));
    if (rv < 0) {
        fprintf(stderr, "fake-container: %s\n", err);
        goto cleanup;
    }
    sigterm = evsignal_new(fc.base, SIGTERM, fc_on_signal, &fc);
    sigint = evsignal_new(fc.base, SIGINT, fc_on_signal, &fc);
    if (sigterm == NULL || sigint == NULL || event_add(sigterm, NULL) < 0 ||
        event_add(sigint, NULL) < 0) {
        fprintf(stderr, "fake-container: cannot watch signals\n");
        goto cleanup;
    }
    printf(strchr(fc.o.host, ':') ? "listening on [%s]:%u\n" : "listening on %s:%u\n", fc.o.host,
           (unsigned)ig_http_server_port(fc.srv));
    fflush(stdout);
    event_base_dispatch(fc.base);
    status = fc.drain_gave_up ? 1 : 0;

cleanup:
    /* Held calls (and, when a drain gave up, queued ones) get their close
     * callback; calls in service are left only when a drain gave up. */
    if (fc.srv != NULL)
        ig_http_server_free(fc.srv);
    while (fc.service.head != NULL) {
        struct fc_call *c = fc.service.head;

        fc_list_unlink(&fc.service, c);
        fc_call_free(c);
    }
    if (fc.drain_tick)
        event_free(fc.drain_tick);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (fc.base)
        event_base_free(fc.base);
    ig_model_free(fc.model);
    return status;
}
