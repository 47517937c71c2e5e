/*
 * run.c - igload's engine: N connections x M stream slots on one libevent
 * loop, nghttp2 client sessions, closed or open loop, outcomes.
 *
 * Slots are allocated once (conns x streams); a request takes a free slot
 * of its connection, and the slot is the nghttp2 stream's user data. A
 * slot whose outcome is decided before its stream closes (timeout, a cap)
 * is detached (stream user data NULL, RST_STREAM CANCEL) and free again at
 * once. In-flight slots sit in one list in send order, so timeouts (a
 * fixed --timeout after the send) are found from its head.
 *
 * Open loop: request k is due at t0 + k / rate; the due ones not yet sent
 * are a count (no storage), taken round robin by connections with a free
 * slot; latency counts from the intended time.
 *
 * Frames go to the bufferevent through igl_on_send, which refuses above
 * IGL_SOCK_OUT_HIGH pending bytes; the write callback resumes.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "igload.h"
#include "infergate/addr.h"
#include "infergate/aws_creds.h"
#include "infergate/common.h"
#include "infergate/sigv4.h"
#include "infergate/version.h"

#define IGL_SOCK_OUT_HIGH ((size_t)1 << 20)
#define IGL_SOCK_OUT_LOW ((size_t)64 << 10)
#define IGL_SOCK_READ_MAX ((size_t)256 << 10)
#define IGL_STREAM_WINDOW ((uint32_t)16 << 20)
#define IGL_CONN_WINDOW ((int32_t)1 << 30)
#define IGL_CONNECT_TIMEOUT_MS 10000
#define IGL_RETRY_MS 100
#define IGL_BASE_HDRS 7
#define IGL_OL_GAP_US 100 /* open loop: the shortest time between two sends */

enum { IGL_PH_CONNECTING = 0, IGL_PH_RUNNING, IGL_PH_DRAINING, IGL_PH_DONE };
enum { IGL_C_DEAD = 0, IGL_C_CONNECTING, IGL_C_READY };

struct igl;
struct igl_conn;

struct igl_slot {
    struct igl_conn *c;
    struct igl_slot *next_free;
    struct igl_slot *prev, *next; /* in-flight list */
    int32_t sid;                  /* 0: free */
    int measured;
    uint64_t t_start;             /* latency from here (intended time in open loop) */
    uint64_t t_sent;              /* submitted: the timeout counts from here */
    uint64_t t_io;                /* stream mode: last progress */
    const struct igl_body *body;  /* unary */
    uint64_t off;                 /* request bytes handed to nghttp2 */
    uint64_t total;               /* request bytes in all */
    int status_cur, status, ended, req_done;
    unsigned nhdrs;
    size_t hdr_bytes;
    uint64_t resp_bytes;
    char *buf;                    /* the response (unary) or a partial line (stream) */
    size_t len, cap;
    uint64_t lines, good;         /* stream mode */
    int wrong;
};

struct igl_conn {
    struct igl *g;
    unsigned idx;
    int state;
    int goaway;
    int dirty; /* in g->dirty: fill and send after this event */
    struct bufferevent *bev;
    SSL *ssl;
    nghttp2_session *h2;
    struct igl_slot *slots, *free;
    unsigned inflight;
    struct event *retry_ev;
};

struct igl {
    const struct igl_opts *o;
    struct igl_result *r;
    struct event_base *base;
    SSL_CTX *ssl_ctx;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct igl_conn *conns;
    struct igl_conn **dirty;
    unsigned ndirty;
    nghttp2_nv base_nv[IGL_BASE_HDRS + IGL_MAX_HEADERS];
    size_t nbase;
    char ua[64];
    int phase;
    int start_failed;
    unsigned connecting;
    uint64_t t0, t_measure, t_stop, t_last_done;
    uint64_t timeout_us;
    uint64_t issued_measured;
    uint64_t limit; /* measured requests to issue; 0: no limit */
    uint64_t body_next;
    struct igl_slot inflight; /* list head */
    unsigned ninflight;
    /* open loop */
    double interval_us;
    uint64_t ol_next;
    uint64_t ol_last_wake;
    unsigned rr;
    struct event *ol_ev;
    struct event *tick_ev, *stop_ev, *drain_ev, *sig_ev[2];
    uint64_t stream_total; /* stream mode: bytes of one stream's body */
    /* --sigv4 */
    struct ig_aws_creds_provider *creds;
    int creds_wait;
    struct ig_sigv4_key_cache kc;
};

static const char *const igl_err_names[IGL_E_COUNT] = {
    "timeout", "reset", "goaway", "connect", "closed", "wrong_answer", "lost", "too_large",
    "bad_response",
};

const char *igl_err_name(enum igl_err_type e)
{
    return (unsigned)e < IGL_E_COUNT ? igl_err_names[e] : "?";
}

static uint64_t igl_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void igl_tv(struct timeval *tv, uint64_t us)
{
    tv->tv_sec = (time_t)(us / 1000000u);
    tv->tv_usec = (suseconds_t)(us % 1000000u);
}

static void igl_conn_dirty(struct igl_conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->g->dirty[c->g->ndirty++] = c;
    }
}

static void igl_conn_close(struct igl_conn *c, enum igl_err_type why);
static void igl_flush(struct igl *g);

/* ---- the run's end --------------------------------------------------- */

static void igl_finish(struct igl *g)
{
    if (g->phase == IGL_PH_DONE)
        return;
    if (g->t_stop == 0)
        g->t_stop = g->t_last_done ? g->t_last_done : igl_now();
    g->phase = IGL_PH_DONE;
    event_base_loopbreak(g->base);
}

/* Stop issuing; end once nothing is in flight or --timeout later. */
static void igl_stop(struct igl *g)
{
    struct timeval tv;

    if (g->phase != IGL_PH_RUNNING)
        return;
    g->phase = IGL_PH_DRAINING;
    if (g->t_stop == 0)
        g->t_stop = igl_now();
    if (g->ol_ev)
        event_del(g->ol_ev);
    if (g->ninflight == 0) {
        igl_finish(g);
        return;
    }
    igl_tv(&tv, g->timeout_us);
    event_add(g->drain_ev, &tv);
}

static int igl_can_issue(const struct igl *g)
{
    return g->phase == IGL_PH_RUNNING && (g->limit == 0 || g->issued_measured < g->limit);
}

/* After a request ended: is the run over? */
static void igl_check_end(struct igl *g)
{
    if (g->phase == IGL_PH_DRAINING && g->ninflight == 0)
        igl_finish(g);
    else if (g->phase == IGL_PH_RUNNING && g->limit && g->issued_measured >= g->limit &&
             g->ninflight == 0) {
        g->t_stop = g->t_last_done ? g->t_last_done : igl_now();
        igl_stop(g);
    }
}

/* ---- outcomes -------------------------------------------------------- */

static void igl_slot_release(struct igl_slot *s)
{
    struct igl_conn *c = s->c;
    struct igl *g = c->g;

    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->sid = 0;
    s->next_free = c->free;
    c->free = s;
    c->inflight--;
    g->ninflight--;
    igl_conn_dirty(c);
}

static void igl_count_err(struct igl *g, struct igl_slot *s, enum igl_err_type e)
{
    if (!s->measured)
        return;
    g->r->failed++;
    g->r->err[e]++;
}

/* Detach <s> from its stream (RST_STREAM CANCEL), count <e>, free it. */
static void igl_slot_abort(struct igl_slot *s, enum igl_err_type e)
{
    struct igl_conn *c = s->c;

    if (s->measured && s->c->g->o->mode == IGL_STREAM)
        c->g->r->rows_ok += s->good;
    igl_count_err(c->g, s, e);
    if (c->h2) {
        (void)nghttp2_session_set_stream_user_data(c->h2, s->sid, NULL);
        (void)nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->sid, NGHTTP2_CANCEL);
    }
    igl_slot_release(s);
}

/* The numbers of a unary answer against its rows' expected ones. */
/* One prediction line of stream row <row>. */
static int igl_line_right(const struct igl_opts *o, uint64_t row, const char *p, size_t n)
{
    uint32_t r = (uint32_t)(row % o->nrows);
    const char *end = p + n;
    double v;

    for (size_t k = o->exp_off[r]; k < o->exp_off[r + 1]; k++)
        if ((p = igl_next_number(p, end, &v)) == NULL || !igl_num_close(v, o->exp[k]))
            return 0;
    return igl_next_number(p, end, &v) == NULL;
}

/* A line format (CSV, JSON lines): one prediction line per row. */
static int igl_line_format(const char *t)
{
    return strncmp(t, "text/csv", 8) == 0 || strstr(t, "jsonlines") != NULL ||
           strstr(t, "jsonl") != NULL;
}

static int igl_unary_right(const struct igl_opts *o, const struct igl_slot *s)
{
    const char *p = s->buf ? s->buf : "", *end = p + s->len;
    uint32_t r = s->body->first_row;
    double v;

    if (igl_line_format(o->accept)) {
        /* row by row, each on its own line: two rows' numbers on one
         * line are a wrong answer even when the numbers are right */
        for (uint64_t j = 0; j < o->rows; j++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

            if (!igl_line_right(o, r, p, n))
                return 0;
            p = nl ? nl + 1 : end;
            if (++r == o->nrows)
                r = 0;
        }
        return igl_next_number(p, end, &v) == NULL;
    }
    for (uint64_t j = 0; j < o->rows; j++) {
        for (size_t k = o->exp_off[r]; k < o->exp_off[r + 1]; k++) {
            if ((p = igl_next_number(p, end, &v)) == NULL || !igl_num_close(v, o->exp[k]))
                return 0;
        }
        if (++r == o->nrows)
            r = 0;
    }
    return igl_next_number(p, end, &v) == NULL;
}

/* The stream closed: count its outcome and free the slot. */
static void igl_slot_done(struct igl_slot *s, uint32_t code)
{
    struct igl_conn *c = s->c;
    struct igl *g = c->g;
    const struct igl_opts *o = g->o;
    struct igl_result *r = g->r;
    uint64_t now = igl_now();

    if (s->measured)
        g->t_last_done = now;
    if (o->mode == IGL_STREAM && s->measured)
        r->rows_ok += s->good;
    if (s->status == 0) {
        igl_count_err(g, s, c->goaway || code == NGHTTP2_REFUSED_STREAM ? IGL_E_GOAWAY : IGL_E_RESET);
    } else if (s->status < 200 || s->status > 299) {
        if (s->measured) {
            r->failed++;
            r->http[s->status >= 100 && s->status < 600 ? s->status : 599]++;
        }
    } else if (!s->ended || code != NGHTTP2_NO_ERROR) {
        igl_count_err(g, s, IGL_E_RESET);
    } else if (o->mode == IGL_STREAM && (s->wrong || s->lines != o->rows || s->len > 0)) {
        igl_count_err(g, s, IGL_E_WRONG);
    } else if (o->mode == IGL_UNARY && o->exp_off && !igl_unary_right(o, s)) {
        igl_count_err(g, s, IGL_E_WRONG);
    } else if (s->measured) {
        r->ok++;
        if (o->mode == IGL_UNARY)
            r->rows_ok += o->rows;
        igl_hist_add(&r->hist, now > s->t_start ? now - s->t_start : 0);
    }
    igl_slot_release(s);
}

/* ---- request bodies -------------------------------------------------- */

static ssize_t igl_on_body_read(nghttp2_session *h2, int32_t sid, uint8_t *buf, size_t len,
                                uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct igl_slot *s = src->ptr;
    const struct igl_opts *o = ((struct igl_conn *)arg)->g->o;
    uint64_t left;
    size_t n = 0;

    (void)h2;
    if (s->sid != sid)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    left = s->total - s->off;
    if (left < len)
        len = (size_t)left;
    if (o->mode == IGL_UNARY) {
        memcpy(buf, s->body->data + s->off, len);
        n = len;
    } else {
        size_t pos = (size_t)(s->off % o->pool_len);
        while (n < len) {
            size_t k = o->pool_len - pos;
            if (k > len - n)
                k = len - n;
            memcpy(buf + n, o->pool_text + pos, k);
            n += k;
            pos = 0;
        }
        s->t_io = igl_now();
    }
    s->off += n;
    if (s->off == s->total)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- --sigv4 --------------------------------------------------------- */

/* Sign one request into <auth> and <date> (and <token>): 0, or -1. */
static int igl_sign(struct igl *g, const struct igl_body *b, char **auth, char *date,
                    const char **token)
{
    const struct igl_opts *o = g->o;
    const struct ig_aws_creds *cr;
    struct ig_sigv4_hdr h[3 + IGL_MAX_HEADERS];
    struct ig_sigv4_in in = {0};
    struct ig_sigv4_out out = {0};
    char err[256];
    size_t n = 0;

    if (ig_aws_creds_get(g->creds, &cr, err, sizeof(err)) != 0) {
        fprintf(stderr, "igload: no AWS credentials: %s\n", err);
        return -1;
    }
    h[n++] = (struct ig_sigv4_hdr){"host", o->authority};
    h[n++] = (struct ig_sigv4_hdr){"content-type", o->content_type};
    h[n++] = (struct ig_sigv4_hdr){"accept", o->accept};
    for (size_t i = 0; i < o->nhdrs; i++)
        h[n++] = (struct ig_sigv4_hdr){o->hdrs[i].name, o->hdrs[i].value};
    in.method = "POST";
    in.uri = o->path;
    in.hdrs = h;
    in.nhdrs = n;
    in.payload_hash = b->sha;
    in.region = o->sigv4_region;
    in.service = "sagemaker";
    in.access_key = cr->access_key;
    in.secret_key = cr->secret_key;
    in.session_token = cr->session_token;
    in.now = time(NULL);
    in.key_cache = &g->kc;
    if (ig_sigv4_sign(&in, &out) != 0) {
        fprintf(stderr, "igload: cannot sign: %s\n", out.error);
        return -1;
    }
    *auth = out.authorization;
    out.authorization = NULL;
    memcpy(date, out.amz_date, sizeof(out.amz_date));
    *token = cr->session_token && *cr->session_token ? cr->session_token : NULL;
    ig_sigv4_out_clear(&out);
    return 0;
}

/* ---- submitting ------------------------------------------------------ */

#define IGL_NV(nv, k, v, fl)                                                                     \
    ((nv) = (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), (fl)})

/* Start one request on <c> (a free slot, a live session): 0, or -1. */
static int igl_submit(struct igl_conn *c, uint64_t t_start, uint64_t now)
{
    struct igl *g = c->g;
    const struct igl_opts *o = g->o;
    struct igl_slot *s = c->free;
    nghttp2_nv nva[IGL_BASE_HDRS + IGL_MAX_HEADERS + 4];
    nghttp2_data_provider prd;
    size_t n = g->nbase;
    char *auth = NULL, date[17];
    const char *token = NULL;
    int32_t sid;

    memcpy(nva, g->base_nv, n * sizeof(nva[0]));
    if (o->mode == IGL_UNARY) {
        s->body = &o->bodies[g->body_next % o->nbodies];
        s->total = s->body->len;
        IGL_NV(nva[n++], "content-length", s->body->clen,
               NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE);
        if (o->sigv4_region) {
            if (igl_sign(g, s->body, &auth, date, &token) != 0)
                return -1;
            IGL_NV(nva[n++], "x-amz-date", date, NGHTTP2_NV_FLAG_NO_COPY_NAME);
            IGL_NV(nva[n++], "authorization", auth, NGHTTP2_NV_FLAG_NO_COPY_NAME);
            if (token)
                IGL_NV(nva[n++], "x-amz-security-token", token, NGHTTP2_NV_FLAG_NO_COPY_NAME);
        }
    } else {
        s->body = NULL;
        s->total = g->stream_total;
    }
    s->off = 0;
    prd.source.ptr = s;
    prd.read_callback = igl_on_body_read;
    sid = nghttp2_submit_request(c->h2, NULL, nva, n, &prd, s);
    free(auth);
    if (sid < 0) {
        /* no stream id left: this connection is spent, make a new one */
        c->goaway = 1;
        return -1;
    }
    g->body_next++;
    c->free = s->next_free;
    s->next_free = NULL;
    s->sid = sid;
    s->t_start = t_start;
    s->t_sent = now;
    s->t_io = now;
    s->measured = t_start >= g->t_measure;
    s->status_cur = s->status = s->ended = s->req_done = 0;
    s->nhdrs = 0;
    s->hdr_bytes = 0;
    s->resp_bytes = 0;
    s->len = 0;
    s->lines = s->good = 0;
    s->wrong = 0;
    /* the in-flight list, in send order */
    s->prev = g->inflight.prev;
    s->next = &g->inflight;
    g->inflight.prev->next = s;
    g->inflight.prev = s;
    c->inflight++;
    g->ninflight++;
    if (s->measured) {
        g->issued_measured++;
        g->r->sent++;
    }
    igl_conn_dirty(c);
    return 0;
}

static int igl_conn_usable(const struct igl_conn *c)
{
    return c->state == IGL_C_READY && !c->goaway && c->free != NULL;
}

static uint64_t igl_ol_due(const struct igl *g, uint64_t now)
{
    if (now < g->t0)
        return 0;
    return (uint64_t)floor((double)(now - g->t0) / g->interval_us) + 1;
}

static uint64_t igl_ol_time(const struct igl *g, uint64_t k)
{
    return g->t0 + (uint64_t)llround((double)k * g->interval_us);
}

/* Arm the open loop's timer for the next request not yet due. */
static void igl_ol_arm(struct igl *g, uint64_t now)
{
    struct timeval tv;
    uint64_t t;

    if (!g->ol_ev || g->phase != IGL_PH_RUNNING || evtimer_pending(g->ol_ev, NULL))
        return;
    if (g->ol_next < igl_ol_due(g, now))
        return; /* a backlog: freed slots take it */
    /* at most one wake-up per IGL_OL_GAP_US: a few requests go out
     * together (their latency still counts from their own intended time) */
    t = igl_ol_time(g, g->ol_next);
    if (t < g->ol_last_wake + IGL_OL_GAP_US)
        t = g->ol_last_wake + IGL_OL_GAP_US;
    igl_tv(&tv, t > now ? t - now : 0);
    evtimer_add(g->ol_ev, &tv);
}

/* Give <c> the requests it can take now. */
static void igl_conn_fill(struct igl_conn *c, uint64_t now)
{
    struct igl *g = c->g;

    if (g->o->rate > 0) {
        uint64_t due = igl_ol_due(g, now);
        while (igl_conn_usable(c) && g->ol_next < due && igl_can_issue(g)) {
            if (igl_submit(c, igl_ol_time(g, g->ol_next), now) != 0)
                break;
            g->ol_next++;
        }
        igl_ol_arm(g, now);
        return;
    }
    while (igl_conn_usable(c) && igl_can_issue(g))
        if (igl_submit(c, now, now) != 0)
            break;
}

static void igl_on_ol(evutil_socket_t fd, short what, void *arg)
{
    struct igl *g = arg;
    uint64_t now = igl_now(), due = igl_ol_due(g, now);
    unsigned misses = 0, n = g->o->conns;

    (void)fd;
    (void)what;
    g->ol_last_wake = now;
    while (g->ol_next < due && igl_can_issue(g) && misses < n) {
        struct igl_conn *c = &g->conns[g->rr];
        g->rr = g->rr + 1 == n ? 0 : g->rr + 1;
        if (!igl_conn_usable(c)) {
            misses++;
            continue;
        }
        if (igl_submit(c, igl_ol_time(g, g->ol_next), now) != 0) {
            misses++;
            continue;
        }
        misses = 0;
        g->ol_next++;
    }
    igl_ol_arm(g, now);
    igl_flush(g);
}

/* ---- nghttp2 callbacks ----------------------------------------------- */

static ssize_t igl_on_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags,
                           void *arg)
{
    struct igl_conn *c = arg;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    (void)h2;
    (void)flags;
    if (evbuffer_get_length(out) >= IGL_SOCK_OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    c->g->r->bytes_sent += len;
    return (ssize_t)len;
}

static int igl_on_begin_headers(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct igl_slot *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);

    (void)arg;
    if (s)
        s->status_cur = 0;
    return 0;
}

static int igl_on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *arg)
{
    struct igl_slot *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);

    (void)flags;
    (void)arg;
    if (!s)
        return 0;
    s->nhdrs++;
    s->hdr_bytes += namelen + valuelen + 32;
    if (s->nhdrs > IGL_RESP_HDR_MAX || s->hdr_bytes > IGL_RESP_HDR_BYTES) {
        igl_slot_abort(s, IGL_E_BAD_RESPONSE);
        return 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0 && valuelen == 3 && value[0] >= '1' &&
        value[0] <= '5' && value[1] >= '0' && value[1] <= '9' && value[2] >= '0' &&
        value[2] <= '9')
        s->status_cur = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static int igl_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct igl_conn *c = arg;
    struct igl_slot *s;

    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = 1;
        igl_conn_dirty(c);
        return 0;
    }
    if (frame->hd.stream_id == 0 ||
        (s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id)) == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && s->status == 0 && s->status_cur >= 200)
        s->status = s->status_cur;
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        s->ended = 1;
        /* a whole answer before the whole request: stop sending */
        if (!s->req_done)
            (void)nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, s->sid, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int igl_on_frame_send(nghttp2_session *h2, const nghttp2_frame *frame, void *arg)
{
    struct igl_slot *s;

    (void)arg;
    if (frame->hd.stream_id == 0 || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
        (s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id)) == NULL)
        return 0;
    s->req_done = 1;
    return 0;
}

/* Stream mode: whole lines of the answer, checked against the model. */
static int igl_stream_lines(struct igl_slot *s, const uint8_t *data, size_t len)
{
    const struct igl_opts *o = s->c->g->o;
    const char *p = (const char *)data, *end = p + len;

    if (!o->exp_off) {
        while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            s->lines++;
            s->good++;
            p++;
        }
        return 0;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if (s->len + n > IGL_LINE_MAX)
            return -1;
        if (!nl || s->len > 0) {
            if (s->len + n > s->cap) {
                size_t cap = s->cap ? s->cap : 256;
                while (cap < s->len + n)
                    cap *= 2;
                char *b = realloc(s->buf, cap);
                if (!b)
                    return -1;
                s->buf = b;
                s->cap = cap;
            }
            memcpy(s->buf + s->len, p, n);
            s->len += n;
        }
        if (!nl)
            break;
        if (s->len > 0) {
            if (igl_line_right(o, s->lines, s->buf, s->len))
                s->good++;
            else
                s->wrong = 1;
            s->len = 0;
        } else if (igl_line_right(o, s->lines, p, n)) {
            s->good++;
        } else {
            s->wrong = 1;
        }
        s->lines++;
        p = nl + 1;
    }
    return 0;
}

static int igl_on_data(nghttp2_session *h2, uint8_t flags, int32_t sid, const uint8_t *data,
                       size_t len, void *arg)
{
    struct igl_slot *s = nghttp2_session_get_stream_user_data(h2, sid);
    const struct igl_opts *o;

    (void)flags;
    (void)arg;
    if (!s)
        return 0;
    o = s->c->g->o;
    s->resp_bytes += len;
    if (s->resp_bytes > IGL_RESP_MAX) {
        igl_slot_abort(s, IGL_E_TOO_LARGE);
        return 0;
    }
    if (s->status < 200 || s->status > 299)
        return 0;
    if (o->mode == IGL_STREAM) {
        s->t_io = igl_now();
        if (igl_stream_lines(s, data, len) != 0)
            igl_slot_abort(s, IGL_E_TOO_LARGE);
        return 0;
    }
    if (!o->exp_off)
        return 0;
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b) {
            igl_slot_abort(s, IGL_E_TOO_LARGE);
            return 0;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

static int igl_on_stream_close(nghttp2_session *h2, int32_t sid, uint32_t code, void *arg)
{
    struct igl_slot *s = nghttp2_session_get_stream_user_data(h2, sid);

    (void)arg;
    if (s)
        igl_slot_done(s, code);
    return 0;
}

/* ---- connections ----------------------------------------------------- */

static int igl_session_start(struct igl_conn *c)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, IGL_STREAM_WINDOW},
    };
    int rv;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, igl_on_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, igl_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, igl_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, igl_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, igl_on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, igl_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, igl_on_stream_close);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_option_set_max_reserved_remote_streams(opt, 0);
    rv = nghttp2_session_client_new2(&c->h2, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0)
        return -1;
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, IGL_CONN_WINDOW) != 0)
        return -1;
    c->state = IGL_C_READY;
    c->goaway = 0;
    igl_conn_dirty(c);
    return 0;
}

static void igl_maybe_start(struct igl *g);

static void igl_on_read(struct bufferevent *bev, void *arg)
{
    struct igl_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (c->h2 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int k = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        for (int i = 0; i < k && i < 8; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->h2, v[i].iov_base, v[i].iov_len);
            if (rv < 0) {
                igl_conn_close(c, IGL_E_CLOSED);
                igl_flush(c->g);
                return;
            }
            used += (size_t)rv;
        }
        c->g->r->bytes_recv += used;
        evbuffer_drain(in, used);
    }
    igl_conn_dirty(c);
    igl_flush(c->g);
}

static void igl_on_write(struct bufferevent *bev, void *arg)
{
    struct igl_conn *c = arg;

    (void)bev;
    igl_conn_dirty(c);
    igl_flush(c->g);
}

static void igl_on_retry(evutil_socket_t fd, short what, void *arg);

static void igl_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct igl_conn *c = arg;
    struct igl *g = c->g;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        int ok = 1;
        if (g->o->tls) {
            const unsigned char *alpn = NULL;
            unsigned int alpn_len = 0;
            SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
            if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
                if (g->phase == IGL_PH_CONNECTING)
                    fprintf(stderr, "igload: %s did not negotiate HTTP/2 (ALPN h2)\n",
                            g->o->authority);
                ok = 0;
            }
        }
        if (ok && igl_session_start(c) != 0)
            ok = 0;
        if (!ok) {
            igl_conn_close(c, IGL_E_CONNECT);
            if (g->phase == IGL_PH_CONNECTING)
                g->start_failed = 1;
        }
        if (g->phase == IGL_PH_CONNECTING) {
            g->connecting--;
            igl_maybe_start(g);
        }
        igl_flush(g);
        return;
    }
    if (c->state == IGL_C_CONNECTING) {
        if (g->phase == IGL_PH_CONNECTING) {
            unsigned long e = bufferevent_get_openssl_error(bev);
            char why[256];
            if (e)
                ERR_error_string_n(e, why, sizeof(why));
            else
                snprintf(why, sizeof(why), "%s",
                         EVUTIL_SOCKET_ERROR() ? strerror(EVUTIL_SOCKET_ERROR())
                                               : "the connection was closed");
            fprintf(stderr, "igload: cannot connect to %s: %s\n", g->o->authority, why);
            g->start_failed = 1;
            g->connecting--;
        }
        igl_conn_close(c, IGL_E_CONNECT);
        if (g->phase == IGL_PH_CONNECTING)
            igl_maybe_start(g);
        igl_flush(g);
        return;
    }
    igl_conn_close(c, IGL_E_CLOSED);
    igl_flush(g);
}

/* Create <c>'s bufferevent on <fd> (-1: connect it now, non-blocking). */
static int igl_conn_open(struct igl_conn *c, int fd)
{
    struct igl *g = c->g;
    int opts = BEV_OPT_CLOSE_ON_FREE;

    if (g->o->tls) {
        unsigned char ip[16];
        c->ssl = SSL_new(g->ssl_ctx);
        if (!c->ssl)
            return -1;
        if (inet_pton(AF_INET, g->o->host, ip) != 1 && inet_pton(AF_INET6, g->o->host, ip) != 1)
            SSL_set_tlsext_host_name(c->ssl, g->o->host);
        else if (!g->o->insecure &&
                 X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), g->o->host) != 1)
            return -1;
        if (!g->o->insecure && inet_pton(AF_INET, g->o->host, ip) != 1 &&
            inet_pton(AF_INET6, g->o->host, ip) != 1 && SSL_set1_host(c->ssl, g->o->host) != 1)
            return -1;
        c->bev = bufferevent_openssl_socket_new(g->base, fd, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                opts);
        if (!c->bev) {
            SSL_free(c->ssl);
            c->ssl = NULL;
            return -1;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(g->base, fd, opts);
        if (!c->bev)
            return -1;
    }
    bufferevent_set_max_single_read(c->bev, IGL_SOCK_READ_MAX);
    bufferevent_set_max_single_write(c->bev, IGL_SOCK_READ_MAX);
    bufferevent_setwatermark(c->bev, EV_WRITE, IGL_SOCK_OUT_LOW, 0);
    bufferevent_setcb(c->bev, igl_on_read, igl_on_write, igl_on_event, c);
    c->state = IGL_C_CONNECTING;
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (fd == -1) {
        int one = 1;
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&g->addr, (int)g->addrlen) != 0)
            return -1;
        fd = bufferevent_getfd(c->bev);
        if (fd != -1)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else if (!g->o->tls) {
        /* a connected plain socket: no event will say so */
        if (igl_session_start(c) != 0)
            return -1;
        if (g->phase == IGL_PH_CONNECTING)
            g->connecting--;
    }
    return 0;
}

/* Close <c>; its requests in flight end with <why>; reconnect while running. */
static void igl_conn_close(struct igl_conn *c, enum igl_err_type why)
{
    struct igl *g = c->g;
    struct timeval tv = {0, IGL_RETRY_MS * 1000};

    for (unsigned i = 0; i < g->o->streams; i++) {
        struct igl_slot *s = &c->slots[i];
        if (s->sid == 0)
            continue;
        if (s->measured && g->o->mode == IGL_STREAM)
            g->r->rows_ok += s->good;
        igl_count_err(g, s, c->goaway && why == IGL_E_CLOSED && s->status == 0 ? IGL_E_GOAWAY : why);
        igl_slot_release(s);
    }
    if (why == IGL_E_CONNECT && g->phase != IGL_PH_CONNECTING)
        g->r->err[IGL_E_CONNECT]++;
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    } else if (c->ssl) {
        SSL_free(c->ssl);
    }
    c->ssl = NULL;
    c->state = IGL_C_DEAD;
    c->goaway = 0;
    if (why != IGL_E_CONNECT && why != IGL_E_CLOSED)
        tv.tv_usec = 1000; /* a spent connection: its successor soon */
    if (g->phase == IGL_PH_RUNNING)
        evtimer_add(c->retry_ev, &tv);
    igl_check_end(g);
}

static void igl_on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct igl_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->g->phase != IGL_PH_RUNNING || c->state != IGL_C_DEAD)
        return;
    if (igl_conn_open(c, -1) != 0)
        igl_conn_close(c, IGL_E_CONNECT);
    igl_flush(c->g);
}

/* After an event: fill and send on every connection it touched. */
static void igl_flush(struct igl *g)
{
    uint64_t now = igl_now();

    /* a stack: <c> keeps its flag while it is worked on, so it is in the
     * stack at most once and the stack never holds more than conns */
    while (g->ndirty > 0) {
        struct igl_conn *c = g->dirty[--g->ndirty];
        int rv = 0;
        for (int round = 0; round < 2 && c->state == IGL_C_READY && c->h2; round++) {
            if (!c->goaway)
                igl_conn_fill(c, now);
            if ((rv = nghttp2_session_send(c->h2)) != 0)
                break;
            if (!igl_conn_usable(c) || !igl_can_issue(c->g))
                break;
        }
        c->dirty = 0;
        if (c->state != IGL_C_READY || !c->h2)
            continue;
        if (rv != 0) {
            igl_conn_close(c, IGL_E_CLOSED);
            continue;
        }
        if (c->goaway && c->inflight == 0) {
            /* spent: a new connection takes its place */
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 ||
                g->phase != IGL_PH_RUNNING)
                igl_conn_close(c, IGL_E_GOAWAY);
        } else if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
            igl_conn_close(c, IGL_E_CLOSED);
        }
    }
    igl_check_end(g);
}

/* ---- timers ---------------------------------------------------------- */

static void igl_on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct igl *g = arg;
    uint64_t now = igl_now();

    (void)fd;
    (void)what;
    if (g->o->mode == IGL_UNARY) {
        while (g->inflight.next != &g->inflight && now - g->inflight.next->t_sent >= g->timeout_us)
            igl_slot_abort(g->inflight.next, IGL_E_TIMEOUT);
    } else {
        struct igl_slot *s = g->inflight.next;
        while (s != &g->inflight) {
            struct igl_slot *next = s->next;
            if (now - s->t_io >= g->timeout_us)
                igl_slot_abort(s, IGL_E_TIMEOUT);
            s = next;
        }
    }
    igl_flush(g);
    igl_check_end(g);
}

static void igl_on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct igl *g = arg;

    (void)fd;
    (void)what;
    g->t_stop = igl_now();
    igl_stop(g);
}

static void igl_on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    igl_finish(arg);
}

static void igl_on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct igl *g = arg;

    (void)sig;
    (void)what;
    if (g->phase == IGL_PH_RUNNING) {
        g->t_stop = igl_now();
        igl_stop(g);
    } else {
        igl_finish(g);
    }
}

static void igl_on_creds(void *arg)
{
    struct igl *g = arg;

    g->creds_wait = 0;
    igl_maybe_start(g);
}

/* Every connection is up (and the credentials came): start the clock. */
static void igl_maybe_start(struct igl *g)
{
    const struct igl_opts *o = g->o;
    struct timeval tv;
    uint64_t now;

    if (g->phase != IGL_PH_CONNECTING || g->connecting > 0 || g->creds_wait)
        return;
    if (g->start_failed) {
        g->phase = IGL_PH_DONE;
        event_base_loopbreak(g->base);
        return;
    }
    if (g->creds) {
        const struct ig_aws_creds *cr;
        char err[256];
        if (ig_aws_creds_get(g->creds, &cr, err, sizeof(err)) != 0) {
            fprintf(stderr, "igload: no AWS credentials: %s\n", err);
            g->start_failed = 1;
            g->phase = IGL_PH_DONE;
            event_base_loopbreak(g->base);
            return;
        }
    }
    event_base_update_cache_time(g->base); /* the timers below count from now */
    now = igl_now();
    g->t0 = now;
    g->t_measure = now + (uint64_t)(o->warmup_s * 1e6);
    g->phase = IGL_PH_RUNNING;
    if (o->requests) {
        g->limit = o->requests;
    } else if (o->mode == IGL_STREAM && !o->duration_given) {
        g->limit = (uint64_t)o->conns * o->streams;
    }
    if (g->limit == 0 || o->duration_given) {
        igl_tv(&tv, (uint64_t)((o->warmup_s + o->duration_s) * 1e6));
        event_add(g->stop_ev, &tv);
    }
    igl_tv(&tv, g->timeout_us / 4 < 50000 ? (g->timeout_us / 4 ? g->timeout_us / 4 : 1) : 50000);
    event_add(g->tick_ev, &tv);
    for (unsigned i = 0; i < o->conns; i++)
        igl_conn_dirty(&g->conns[i]);
    if (g->ol_ev)
        igl_ol_arm(g, now);
}

/* ---- setup ----------------------------------------------------------- */

/* Resolve and connect the first connection, keeping the address that worked. */
static int igl_first_connect(struct igl *g)
{
    char err[256];
    int fd = ig_addr_dial(g->o->host, g->o->port, g->o->authority, IGL_CONNECT_TIMEOUT_MS,
                          &g->addr, &g->addrlen, err, sizeof(err));

    if (fd == -1)
        fprintf(stderr, "igload: %s\n", err);
    return fd;
}

static int igl_tls_setup(struct igl *g)
{
    const struct igl_opts *o = g->o;

    g->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!g->ssl_ctx)
        goto ssl_fail;
    SSL_CTX_set_min_proto_version(g->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_set_alpn_protos(g->ssl_ctx, (const unsigned char *)"\x02h2", 3) != 0)
        goto ssl_fail;
    if (o->insecure) {
        SSL_CTX_set_verify(g->ssl_ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(g->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if (o->cacert ? SSL_CTX_load_verify_locations(g->ssl_ctx, o->cacert, NULL) != 1
                      : SSL_CTX_set_default_verify_paths(g->ssl_ctx) != 1) {
            char e[256];
            ERR_error_string_n(ERR_get_error(), e, sizeof(e));
            fprintf(stderr, "igload: cannot load the CA certificates%s%s: %s\n",
                    o->cacert ? " of --cacert " : "", o->cacert ? o->cacert : "", e);
            return -1;
        }
    }
    return 0;
ssl_fail:
    fprintf(stderr, "igload: cannot set up TLS: %s\n", ERR_reason_error_string(ERR_get_error()));
    return -1;
}

static void igl_base_headers(struct igl *g)
{
    const struct igl_opts *o = g->o;
    const uint8_t fl = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    size_t n = 0;
    int have_ua = 0;

    for (size_t i = 0; i < o->nhdrs; i++)
        if (strcmp(o->hdrs[i].name, "user-agent") == 0)
            have_ua = 1;
    snprintf(g->ua, sizeof(g->ua), "igload/%s", IG_VERSION);
    IGL_NV(g->base_nv[n++], ":method", "POST", fl);
    IGL_NV(g->base_nv[n++], ":scheme", o->tls ? "https" : "http", fl);
    IGL_NV(g->base_nv[n++], ":authority", o->authority, fl);
    IGL_NV(g->base_nv[n++], ":path", o->path, fl);
    IGL_NV(g->base_nv[n++], "content-type", o->content_type, fl);
    IGL_NV(g->base_nv[n++], "accept", o->accept, fl);
    if (!have_ua)
        IGL_NV(g->base_nv[n++], "user-agent", g->ua, fl);
    for (size_t i = 0; i < o->nhdrs; i++)
        IGL_NV(g->base_nv[n++], o->hdrs[i].name, o->hdrs[i].value, fl);
    g->nbase = n;
}

static void igl_free(struct igl *g)
{
    for (unsigned i = 0; g->conns && i < g->o->conns; i++) {
        struct igl_conn *c = &g->conns[i];
        /* a plain connection says goodbye (GOAWAY), best effort, no wait */
        if (c->h2 && c->bev && !g->o->tls && c->state == IGL_C_READY &&
            nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR) == 0 &&
            nghttp2_session_send(c->h2) == 0)
            (void)evbuffer_write(bufferevent_get_output(c->bev), bufferevent_getfd(c->bev));
        if (c->h2)
            nghttp2_session_del(c->h2);
        if (c->bev)
            bufferevent_free(c->bev);
        else if (c->ssl)
            SSL_free(c->ssl);
        if (c->retry_ev)
            event_free(c->retry_ev);
        for (unsigned j = 0; c->slots && j < g->o->streams; j++)
            free(c->slots[j].buf);
        free(c->slots);
    }
    free(g->conns);
    free(g->dirty);
    ig_aws_creds_free(g->creds);
    ig_sigv4_key_cache_clear(&g->kc);
    struct event *evs[] = {g->ol_ev, g->tick_ev, g->stop_ev, g->drain_ev, g->sig_ev[0],
                           g->sig_ev[1]};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    if (g->ssl_ctx)
        SSL_CTX_free(g->ssl_ctx);
    if (g->base)
        event_base_free(g->base);
}

int igl_run(const struct igl_opts *o, struct igl_result *r)
{
    static struct igl g0;
    struct igl *g = &g0;
    struct event_config *cfg;
    int rc = IGL_EXIT_FAIL, fd;

    memset(g, 0, sizeof(*g));
    memset(r, 0, sizeof(*r));
    igl_hist_init(&r->hist);
    g->o = o;
    g->r = r;
    g->timeout_us = (uint64_t)(o->timeout_s * 1e6);
    if (g->timeout_us == 0)
        g->timeout_us = 1;
    g->inflight.next = g->inflight.prev = &g->inflight;
    if (o->mode == IGL_STREAM)
        g->stream_total = (o->rows / o->nrows) * (uint64_t)o->pool_len +
                          (uint64_t)o->row_off[o->rows % o->nrows];
    cfg = event_config_new();
    if (!cfg)
        goto out;
    if (o->rate > 0)
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    g->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!g->base)
        goto out;
    g->conns = calloc(o->conns, sizeof(*g->conns));
    g->dirty = calloc(o->conns, sizeof(*g->dirty));
    g->tick_ev = event_new(g->base, -1, EV_PERSIST, igl_on_tick, g);
    g->stop_ev = evtimer_new(g->base, igl_on_stop, g);
    g->drain_ev = evtimer_new(g->base, igl_on_drain, g);
    g->sig_ev[0] = evsignal_new(g->base, SIGINT, igl_on_signal, g);
    g->sig_ev[1] = evsignal_new(g->base, SIGTERM, igl_on_signal, g);
    if (o->rate > 0) {
        g->interval_us = 1e6 / o->rate;
        g->ol_ev = evtimer_new(g->base, igl_on_ol, g);
    }
    if (!g->conns || !g->dirty || !g->tick_ev || !g->stop_ev || !g->drain_ev || !g->sig_ev[0] ||
        !g->sig_ev[1] || (o->rate > 0 && !g->ol_ev)) {
        fprintf(stderr, "igload: out of memory\n");
        goto out;
    }
    event_add(g->sig_ev[0], NULL);
    event_add(g->sig_ev[1], NULL);
    for (unsigned i = 0; i < o->conns; i++) {
        struct igl_conn *c = &g->conns[i];
        c->g = g;
        c->idx = i;
        c->slots = calloc(o->streams, sizeof(*c->slots));
        c->retry_ev = evtimer_new(g->base, igl_on_retry, c);
        if (!c->slots || !c->retry_ev) {
            fprintf(stderr, "igload: out of memory\n");
            goto out;
        }
        for (unsigned j = o->streams; j-- > 0;) {
            c->slots[j].c = c;
            c->slots[j].next_free = c->free;
            c->free = &c->slots[j];
        }
    }
    igl_base_headers(g);
    if (o->sigv4_region) {
        struct ig_aws_creds_conf cc = {.region = o->sigv4_region};
        char err[512];
        int crc = ig_aws_creds_new(g->base, &cc, igl_on_creds, g, &g->creds, err, sizeof(err));
        if (crc != 0) {
            fprintf(stderr, "igload: --sigv4: no AWS credentials: %s\n", err);
            goto out;
        }
        const struct ig_aws_creds *cr;
        if (ig_aws_creds_get(g->creds, &cr, err, sizeof(err)) == IG_ERR_AGAIN)
            g->creds_wait = 1;
    }
    if (o->tls && igl_tls_setup(g) != 0)
        goto out;
    g->phase = IGL_PH_CONNECTING;
    g->connecting = o->conns;
    for (unsigned i = 0; i < o->conns; i++) {
        fd = i == 0 ? igl_first_connect(g)
                    : ig_addr_connect((struct sockaddr *)&g->addr, g->addrlen,
                                      IGL_CONNECT_TIMEOUT_MS);
        if (fd == -1) {
            if (i > 0)
                fprintf(stderr, "igload: cannot connect to %s: %s\n", o->authority,
                        strerror(errno));
            goto out;
        }
        if (igl_conn_open(&g->conns[i], fd) != 0) {
            fprintf(stderr, "igload: cannot set up connection %u\n", i);
            goto out;
        }
    }
    igl_maybe_start(g);
    igl_flush(g);
    if (g->phase != IGL_PH_DONE)
        event_base_dispatch(g->base);
    if (g->start_failed || g->phase == IGL_PH_CONNECTING)
        goto out;
    if (g->t_stop == 0)
        g->t_stop = igl_now();
    /* what is still in flight never got its answer */
    for (struct igl_slot *s = g->inflight.next; s != &g->inflight; s = s->next) {
        if (!s->measured)
            continue;
        r->lost++;
        r->err[IGL_E_LOST]++;
        if (o->mode == IGL_STREAM)
            r->rows_ok += s->good;
    }
    if (o->rate > 0 && o->requests == 0) {
        uint64_t due = igl_ol_due(g, g->t_stop);
        if (due > g->ol_next && igl_ol_time(g, g->ol_next) >= g->t_measure)
            r->unsent = due - g->ol_next;
    }
    r->duration_s = (double)(g->t_stop > g->t_measure ? g->t_stop - g->t_measure : 0) / 1e6;
    rc = IGL_EXIT_OK;
out:
    igl_free(g);
    return rc;
}
