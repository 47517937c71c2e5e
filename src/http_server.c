/*
 * http_server.c - listener, connection lifecycle, requests and responses
 * common to both protocols. Protocol specifics live in http_h1.c
 * (http-parser) and http_h2.c (nghttp2); see http_int.h for ownership.
 *
 * Every connection is driven by conn_process(), called from its bufferevent
 * read/write callbacks, from its kick event (a response was queued, parsing
 * may resume) and from its timer. A connection moves OPEN -> CLOSING (flush
 * the last response or GOAWAY, discard input) -> LINGER (half-close
 * and wait for the client's EOF, so that unread request bytes do not turn
 * into a RST that destroys the response) -> DEAD (queued; freed by the sweep
 * event, never inside a callback that may still hold it).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "http_int.h"
#include "infergate/addr.h"
#include "infergate/common.h"

#define HTTP_DEFAULT_STREAMS 100u
#define HTTP_DEFAULT_HEADER_BYTES 65536u
#define HTTP_DEFAULT_BODY 6291456u
#define HTTP_DEFAULT_BODY_HELD 1073741824u
#define HTTP_DEFAULT_CONN_HELD 67108864u
#define HTTP_DEFAULT_MIN_RATE 4096u
/* What an h1 status line and headers are charged as (they are written
 * before their exact size is known). */
#define HTTP_H1_HEAD_CHARGE 1024u
#define HTTP_ERROR_MSG_MAX 1024
#define HTTP_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HTTP_PREFACE_LEN 24
#define HTTP_BACKLOG 1024

enum conn_timer {
    CONN_TIMER_NONE = 0,
    CONN_TIMER_IDLE,
    CONN_TIMER_HEADER,
    CONN_TIMER_BODY, /* h1: the request body moved less than min_rate in idle_us */
    CONN_TIMER_STALL, /* h2: a stream waiting on the client did (ig_http_req_stall_deadline) */
    CONN_TIMER_CLOSE,
};

static void conn_process(struct http_conn *conn);
static void conn_shutdown_write(struct http_conn *conn);
static void conn_on_drain_in(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);
static void conn_on_drain_out(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                              void *arg);

/* ------------------------------------------------------------------ */
/* small helpers                                                      */


/* splitmix64's finaliser: a bijection on 64-bit words. */
static uint64_t http_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * A UUID v4 in lowercase hex. Ids must be unique, not secret: a counter
 * run through a bijection from a start drawn once from OpenSSL's DRBG (the
 * clock if that fails). A RAND_bytes call per request cost ~10% of a
 * one-row request (load/results). Loop thread only.
 */
static void http_make_id(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    static uint64_t key[2], counter;
    static int seeded;
    unsigned char b[16];
    uint64_t hi, lo;
    size_t o = 0;

    if (!seeded) {
        if (RAND_bytes((unsigned char *)key, sizeof(key)) != 1) {
            key[0] = ig_now_us() * 0x9e3779b97f4a7c15ull;
            key[1] = http_mix(key[0] ^ (uint64_t)getpid());
        }
        seeded = 1;
    }
    counter++;
    hi = http_mix(key[0] + counter * 0x9e3779b97f4a7c15ull); /* unique per counter */
    lo = http_mix(key[1] ^ counter);
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(hi >> (56 - 8 * i));
        b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

const char *ig_http_status_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 424:
        return "Failed Dependency";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 530:
        return "Internal Dependency Failure"; /* SageMaker's InternalDependencyException */
    default:
        return "Unknown";
    }
}

int ig_http_hdr_reserved(const char *name, size_t len)
{
#define HDR_RESERVED(s) {s, sizeof(s) - 1}
    static const struct {
        const char *name;
        size_t len;
    } reserved[] = {
        HDR_RESERVED("content-length"),   HDR_RESERVED("transfer-encoding"),
        HDR_RESERVED("connection"),       HDR_RESERVED("date"),
        HDR_RESERVED("x-amzn-requestid"), HDR_RESERVED("keep-alive"),
        HDR_RESERVED("upgrade"),          HDR_RESERVED("proxy-connection"),
    };
#undef HDR_RESERVED

    for (size_t i = 0; i < IG_ARRAY_SIZE(reserved); i++)
        if (reserved[i].len == len && strncasecmp(reserved[i].name, name, len) == 0)
            return 1;
    return 0;
}

const char *ig_http_server_date(struct ig_http_server *srv)
{
    static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct timeval tv;
    struct tm tm;
    time_t t;

    if (event_base_gettimeofday_cached(srv->base, &tv) != 0)
        gettimeofday(&tv, NULL);
    if ((int64_t)tv.tv_sec == srv->date_sec)
        return srv->date;
    t = tv.tv_sec;
    gmtime_r(&t, &tm);
    snprintf(srv->date, sizeof(srv->date), "%s, %02d %s %04d %02d:%02d:%02d GMT",
             days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    srv->date_sec = (int64_t)tv.tv_sec;
    return srv->date;
}

/* ------------------------------------------------------------------ */
/* requests                                                           */

/* The budget <req> charges: its hold's once bound, else its connection's
 * share (NULL only for a request that never charged and has no
 * connection any more). */
static struct ig_budget *req_budget(const struct ig_http_req *req)
{
    if (req->hold.b != NULL)
        return req->hold.b;
    return req->conn != NULL ? req->conn->budget : NULL;
}

/* 1 when a charge of <n> more bytes to <b> would pass its own cap (a
 * connection's share), 0 when a parent refused it (the server's). */
static bool budget_own_cap(const struct ig_budget *b, uint64_t n)
{
    return b != NULL && b->parent != NULL && ig_budget_held(b) + n > b->cap;
}

/*
 * <req> now holds <mem> bytes: charge growth (in HTTP_CHARGE_UNIT steps,
 * so most changes cost no atomic operation), release shrinkage. 0, or
 * IG_ERR_FULL (nothing changed; which level refused is kept in
 * req->full_share for the message).
 */
static int req_mem_set(struct ig_http_req *req, uint64_t mem)
{
    uint64_t want = (mem + HTTP_CHARGE_UNIT - 1) & ~(uint64_t)(HTTP_CHARGE_UNIT - 1);

    if (want > req->hold.n) {
        struct ig_budget *b = req_budget(req);

        if (ig_budget_hold_set(&req->hold, b, want) != 0) {
            req->full_share = budget_own_cap(b, want - req->hold.n);
            return IG_ERR_FULL;
        }
    } else if (want < req->hold.n) {
        ig_budget_hold_set(&req->hold, req->hold.b, want);
    }
    req->mem = mem;
    return 0;
}

/* Make room in <b> (req->hbuf or req->body) for <n> more bytes, its growth
 * charged first. 0, IG_ERR_TOOBIG (the buffer's cap), IG_ERR_FULL (a
 * budget), IG_ERR_NOMEM. */
int ig_http_req_mem_set(struct ig_http_req *req, uint64_t mem)
{
    return req_mem_set(req, mem);
}

static int req_buf_reserve(struct ig_http_req *req, struct ig_buf *b, size_t n)
{
    size_t cap, old = b->cap;
    int rv;

    if (n < b->cap - b->len) /* fits with its NUL: no allocation */
        return 0;
    if (n > b->max - b->len)
        return IG_ERR_TOOBIG;
    cap = ig_buf_grown_cap(b, n); /* what ig_buf_reserve allocates */
    if (req_mem_set(req, req->mem - old + cap) != 0)
        return IG_ERR_FULL;
    rv = ig_buf_reserve(b, n);
    if (b->cap != cap)
        req_mem_set(req, req->mem - cap + b->cap); /* shrinks: cannot fail */
    return rv;
}

struct ig_http_req *ig_http_req_new(struct http_conn *conn)
{
    struct ig_http_server *srv = conn->srv;
    struct ig_http_req *req = ig_xcalloc(1, sizeof(*req));

    req->conn = conn;
    req->srv = srv;
    req->h2 = conn->proto == HTTP_PROTO_H2;
    req->state = HTTP_REQ_HEADERS;
    req->start_us = ig_now_us();
    req->url_off = req->method_off = req->authority_off = -1;
    req->hoff = req->hoff_local;
    req->hoff_cap = HTTP_REQ_LOCAL_HDRS;
    /* room for the counted bytes plus two NULs per field and a "host" */
    ig_buf_init(&req->hbuf, (size_t)srv->max_header_bytes + 2 * HTTP_MAX_HEADERS + 64);
    ig_buf_init(&req->body, (size_t)srv->max_body);
    http_make_id(req->id);
    TAILQ_INSERT_TAIL(&conn->reqs, req, link);
    /* The first unit covers a small request whole; a spent budget refuses
     * the request once its header block has ended (the protocols check
     * req->err there). */
    if (req_mem_set(req, sizeof(*req)) != 0)
        req->err = HTTP_REQ_ERR_BODY_FULL;
    return req;
}

static void req_unlink(struct ig_http_req *req)
{
    struct http_conn *conn = req->conn;

    if (conn == NULL)
        return;
    if (req->h2)
        ig_http_h2_forget(req);
    TAILQ_REMOVE(&conn->reqs, req, link);
    if (TAILQ_EMPTY(&conn->reqs))
        conn->idle_since_us = ig_now_us();
    req->conn = NULL;
}

void ig_http_req_free(struct ig_http_req *req)
{
    if (req == NULL)
        return;
    ig_http_stream_release(req); /* before the unlink: it gives the window back */
    if (req->conn != NULL && req->conn->h2_hdr_req == req)
        req->conn->h2_hdr_req = NULL;
    req_unlink(req);
    if (req->detached && req->srv != NULL)
        TAILQ_REMOVE(&req->srv->detached, req, link);
    ig_http_req_drop_body(req);
    ig_buf_clear(&req->hbuf);
    if (req->hoff != req->hoff_local)
        free(req->hoff);
    if (req->hdrs != req->hdrs_local)
        free(req->hdrs);
    free(req->resp_body);
    ig_budget_hold_clear(&req->hold);
    free(req);
}

void ig_http_req_gone(struct ig_http_req *req)
{
    if (req->state != HTTP_REQ_DISPATCHED) {
        ig_http_req_free(req);
        return;
    }
    req->conn->srv->nactive--;
    if (req->close_cb != NULL) {
        req->close_cb(req, req->close_arg);
        ig_http_req_free(req);
        return;
    }
    /* the gateway may still read the body: it stays counted */
    req_unlink(req);
    req->detached = true;
    TAILQ_INSERT_TAIL(&req->srv->detached, req, link);
}

/* Append <n> bytes to the header block, its growth charged first. The
 * common case (they fit) is a copy: this runs a few times per field. */
static inline int req_hbuf_put(struct ig_http_req *req, const char *p, size_t n)
{
    struct ig_buf *b = &req->hbuf;
    int rv;

    if (n >= b->cap - b->len && (rv = req_buf_reserve(req, b, n)) != 0)
        return rv;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Count <n> bytes against the header cap and store them. */
static int req_hdr_store(struct ig_http_req *req, const char *p, size_t n)
{
    if (n > req->conn->srv->max_header_bytes - req->hdr_bytes)
        return IG_ERR_TOOBIG;
    req->hdr_bytes += n;
    return req_hbuf_put(req, p, n);
}

int ig_http_req_hdr_append(struct ig_http_req *req, const char *p, size_t n)
{
    return req_hdr_store(req, p, n);
}

int ig_http_req_hdr_sep(struct ig_http_req *req)
{
    return req_hbuf_put(req, "", 1);
}

int ig_http_req_hdr_field(struct ig_http_req *req)
{
    if (req->nhdr >= HTTP_MAX_HEADERS)
        return IG_ERR_TOOBIG;
    if (req->nhdr == req->hoff_cap) {
        /* out of hoff_local (counted in sizeof(*req)): the heap array is
         * charged whole, then its growth */
        bool local = req->hoff == req->hoff_local;
        size_t cap = req->hoff_cap * 2;
        size_t add = local ? cap : cap - req->hoff_cap;
        struct http_hdr_off *p;

        if (req_mem_set(req, req->mem + add * sizeof(*req->hoff)) != 0)
            return IG_ERR_FULL;
        p = ig_try_realloc(local ? NULL : req->hoff, cap * sizeof(*req->hoff));
        if (p == NULL) {
            req_mem_set(req, req->mem - add * sizeof(*req->hoff)); /* shrinks: cannot fail */
            return IG_ERR_NOMEM;
        }
        if (local)
            memcpy(p, req->hoff_local, req->nhdr * sizeof(*p));
        req->hoff = p;
        req->hoff_cap = cap;
    }
    req->hoff[req->nhdr].name = (uint32_t)req->hbuf.len;
    req->hoff[req->nhdr].value = UINT32_MAX;
    req->nhdr++;
    return 0;
}

int ig_http_req_hdr_value(struct ig_http_req *req)
{
    int rv = ig_http_req_hdr_sep(req);

    if (rv == 0)
        req->hoff[req->nhdr - 1].value = (uint32_t)req->hbuf.len;
    return rv;
}

int ig_http_req_add_header(struct ig_http_req *req, const char *name, size_t nlen,
                           const char *value, size_t vlen)
{
    struct ig_buf *b = &req->hbuf;
    uint64_t left = req->conn->srv->max_header_bytes - req->hdr_bytes;
    size_t n = nlen + vlen + 2; /* name NUL value NUL */
    int rv;

    /* What the field, name, NUL, value, NUL steps (h1's way) would do, with
     * one check and one reservation: an h2 field comes whole. */
    if ((rv = ig_http_req_hdr_field(req)) != 0)
        return rv;
    if (nlen > left || vlen > left - nlen)
        return IG_ERR_TOOBIG;
    if (n >= b->cap - b->len && (rv = req_buf_reserve(req, b, n)) != 0)
        return rv;
    req->hdr_bytes += nlen + vlen;
    memcpy(b->data + b->len, name, nlen);
    b->data[b->len + nlen] = '\0';
    req->hoff[req->nhdr - 1].value = (uint32_t)(b->len + nlen + 1);
    memcpy(b->data + b->len + nlen + 1, value, vlen);
    b->len += n;
    b->data[b->len - 1] = '\0';
    b->data[b->len] = '\0';
    return 0;
}

int ig_http_req_add_pseudo(struct ig_http_req *req, const char *name, size_t nlen,
                           const char *value, size_t vlen, int64_t *off)
{
    int64_t at = (int64_t)req->hbuf.len;
    int rv;

    /* the name is counted, not stored */
    if (nlen > req->conn->srv->max_header_bytes - req->hdr_bytes)
        return IG_ERR_TOOBIG;
    req->hdr_bytes += nlen;
    (void)name;
    if ((rv = req_hdr_store(req, value, vlen)) != 0 || (rv = ig_http_req_hdr_sep(req)) != 0)
        return rv;
    if (off != NULL && *off < 0)
        *off = at;
    return 0;
}

/* Point req->path at the path of the target <url> (in hbuf, cut in place). */
static void req_set_path(struct ig_http_req *req, char *url)
{
    struct http_parser_url u;
    size_t len = strlen(url);

    if (url[0] == '/') {
        url[strcspn(url, "?#")] = '\0';
        req->path = url;
        return;
    }
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
        url[u.field_data[UF_PATH].off + u.field_data[UF_PATH].len] = '\0';
        req->path = url + u.field_data[UF_PATH].off;
        return;
    }
    req->path = len > 0 && url[0] == '*' ? url : "/";
}

/* req->hfirst's bit for a name starting with <name>[0]. */
static inline uint32_t http_first_bit(const char *name)
{
    unsigned f = (unsigned char)name[0] | 0x20u;

    return f >= 'a' && f <= 'z' ? 1u << (f - 'a') : 1u << 26;
}

int ig_http_req_end_headers(struct ig_http_req *req)
{
    char *base = req->hbuf.data;
    size_t n = 0;

    if (req->nhdr + 1 <= HTTP_REQ_LOCAL_HDRS) {
        req->hdrs = req->hdrs_local; /* in sizeof(*req) */
    } else {
        /* bounded by HTTP_MAX_HEADERS: counted, not refused */
        req_mem_set(req, req->mem + (req->nhdr + 1) * sizeof(*req->hdrs));
        req->hdrs = ig_try_malloc((req->nhdr + 1) * sizeof(*req->hdrs));
        if (req->hdrs == NULL)
            return IG_ERR_NOMEM;
    }
    for (size_t i = 0; i < req->nhdr; i++) {
        if (req->hoff[i].value == UINT32_MAX)
            continue; /* a name without value cannot come from either parser */
        req->hdrs[n].name = base + req->hoff[i].name;
        req->hdrs[n].value = base + req->hoff[i].value;
        n++;
    }
    req->nhdr = n;
    req->hfirst = 0;
    for (size_t i = 0; i < n; i++)
        req->hfirst |= http_first_bit(req->hdrs[i].name);
    if (req->h2 && req->authority_off >= 0 && ig_http_req_header(req, "host") == NULL) {
        req->hdrs[req->nhdr].name = "host";
        req->hdrs[req->nhdr].value = base + req->authority_off;
        req->nhdr++;
        req->hfirst |= http_first_bit("host");
    }
    if (req->h2) {
        req->method = req->method_off >= 0 ? base + req->method_off : "";
        req->head = strcmp(req->method, "HEAD") == 0;
    }
    if (req->url_off >= 0)
        req_set_path(req, base + req->url_off);
    else
        req->path = "/";
    return 0;
}

/* Bring srv->body_held in line with what req->body has allocated now. */
static void req_body_count(struct ig_http_req *req)
{
    struct ig_http_server *srv = req->srv;

    if (srv != NULL)
        srv->body_held = srv->body_held - req->body_held + req->body.cap;
    req->body_held = req->body.cap;
}

void ig_http_req_hdr_fail(struct ig_http_req *req, int rv)
{
    req->err = rv == IG_ERR_TOOBIG ? HTTP_REQ_ERR_HEADER_TOOBIG
               : rv == IG_ERR_FULL ? HTTP_REQ_ERR_BODY_FULL
                                   : HTTP_REQ_ERR_NOMEM;
}

/* Record why the body was refused, for ig_http_req_reject(). */
static int req_body_fail(struct ig_http_req *req, int rv)
{
    if (rv == IG_ERR_TOOBIG)
        req->err = HTTP_REQ_ERR_BODY_TOOBIG;
    else if (rv == IG_ERR_FULL)
        req->err = HTTP_REQ_ERR_BODY_FULL;
    else if (rv != 0)
        req->err = HTTP_REQ_ERR_NOMEM;
    return rv;
}

int ig_http_req_begin_body(struct ig_http_req *req)
{
    int rv = 0;

    ig_http_req_wait(req);
    if (req->err != HTTP_REQ_ERR_NONE) /* refused before the block ended */
        return IG_ERR_FULL;
    if (!req->has_declared_len || req->stream) /* a stream's body is never held */
        return 0;
    if (req->declared_len > req->srv->max_body)
        rv = IG_ERR_TOOBIG;
    else
        /* Nothing is reserved before bytes arrive (a declared length costs
         * the client nothing to send); the declared length caps the
         * buffer, so doubling growth ends at exactly length + 1. */
        ig_buf_init(&req->body, (size_t)req->declared_len);
    return req_body_fail(req, rv);
}

int ig_http_req_add_body(struct ig_http_req *req, const char *data, size_t len)
{
    size_t old = req->body.cap;
    int rv;

    if (len == 0)
        return 0;
    ig_http_req_progress(req, len);
    rv = req_buf_reserve(req, &req->body, len);
    if (req->body.cap != old)
        req_body_count(req);
    if (rv == 0)
        rv = ig_buf_append(&req->body, data, len); /* fits: no allocation */
    return req_body_fail(req, rv);
}

void ig_http_req_drop_body(struct ig_http_req *req)
{
    if (req->body.cap == 0)
        return;
    req_mem_set(req, req->mem - req->body.cap); /* shrinks: cannot fail */
    ig_buf_clear(&req->body);
    req_body_count(req);
}

void ig_http_req_wait(struct ig_http_req *req)
{
    req->rate_since_us = ig_now_us();
    req->rate_bytes = 0;
}

uint64_t ig_http_req_rate_need(const struct ig_http_req *req, uint64_t min_rate)
{
    /* a stream's: its output not sent, and the input it holds while it
     * waits on the client for more (a line not complete) */
    uint64_t held = req->body.len + ig_http_req_resp_left(req) +
                    (req->stream_busy ? 0 : req->stream_held);

    return held >> HTTP_STALL_SHIFT > min_rate ? held >> HTTP_STALL_SHIFT : min_rate;
}

void ig_http_req_progress(struct ig_http_req *req, size_t n)
{
    const struct ig_http_server *srv = req->srv;

    req->rate_bytes += n;
    if (srv != NULL && req->rate_bytes >= srv->min_rate &&
        req->rate_bytes >= ig_http_req_rate_need(req, srv->min_rate))
        ig_http_req_wait(req);
}

uint64_t ig_http_req_stall_deadline(const struct ig_http_req *req)
{
    const struct http_conn *conn = req->conn;
    uint64_t since = req->rate_since_us;

    if (conn == NULL || conn->srv->idle_us == 0)
        return 0;
    if (req->state == HTTP_REQ_DISPATCHED && req->stream) {
        /* a duplex stream waits on its client when it owes input (the
         * gateway waits for more: ig_http_stream_waiting) or has output
         * to take */
        if ((req->stream_in_end || req->stream_busy || !req->stream_open) &&
            ig_http_stream_unsent(req) == 0)
            return 0;
        if (conn->h2_out_blocked && conn->stall_progress_us > since)
            since = conn->stall_progress_us;
    } else if (req->state == HTTP_REQ_ANSWERED) {
        /* behind a socket that is slow to take the output, the stream waits
         * on the connection: the socket's own progress counts */
        if (conn->h2_out_blocked && conn->stall_progress_us > since)
            since = conn->stall_progress_us;
    } else if (req->state != HTTP_REQ_BODY) {
        return 0;
    }
    return since + conn->srv->idle_us;
}

void ig_http_req_dispatch(struct ig_http_req *req)
{
    struct ig_http_server *srv = req->conn->srv;

    req->state = HTTP_REQ_DISPATCHED;
    srv->nactive++;
    srv->on_request(req, srv->arg);
}

/* The access log line of a request this module refuses itself (the
 * gateway never sees it): ig_log_access writes it at warn, like every
 * error, whatever access_log says. */
void ig_http_req_log_refusal(const struct ig_http_req *req, int status, const char *type)
{
    static const char prefix[] = "/endpoints/";
    struct ig_access_rec rec = {0};
    char name[64];

    rec.request_id = req->id;
    rec.proto = req->h2 ? "HTTP/2" : "HTTP/1.1";
    rec.status = status;
    rec.error_type = type;
    rec.bytes_in = req->body.len;
    if (req->path != NULL && strncmp(req->path, prefix, sizeof(prefix) - 1) == 0) {
        const char *n = req->path + sizeof(prefix) - 1;

        snprintf(name, sizeof(name), "%.*s", (int)strcspn(n, "/"), n);
        rec.endpoint = name;
    }
    ig_log_access(&rec);
}

void ig_http_req_reject(struct ig_http_req *req)
{
    const struct ig_http_server *srv = req->conn->srv;

    switch (req->err) {
    case HTTP_REQ_ERR_BODY_TOOBIG:
        ig_http_req_log_refusal(req, 413, "ValidationError");
        if (req->has_declared_len)
            ig_http_respond_error(req, 413, "ValidationError",
                                  "Request body of %llu bytes exceeds the maximum of %llu bytes.",
                                  (unsigned long long)req->declared_len,
                                  (unsigned long long)srv->max_body);
        else
            ig_http_respond_error(req, 413, "ValidationError",
                                  "Request body exceeds the maximum of %llu bytes.",
                                  (unsigned long long)srv->max_body);
        return;
    case HTTP_REQ_ERR_HEADER_TOOBIG:
        ig_http_req_log_refusal(req, 431, "ValidationError");
        ig_http_respond_error(req, 431, "ValidationError",
                              "Request header fields exceed the maximum of %u bytes.",
                              srv->max_header_bytes);
        return;
    case HTTP_REQ_ERR_BODY_FULL:
        ig_http_req_log_refusal(req, 400, "ThrottlingException");
        ig_log(IG_LOG_DEBUG, "http: %s: request refused: %s budget spent (%llu of %llu bytes held)",
               req->conn->peer, req->full_share ? "the connection's" : "the server's",
               (unsigned long long)ig_budget_held(req->full_share ? req->conn->budget
                                                                  : srv->budget),
               (unsigned long long)(req->full_share ? srv->conn_cap : srv->max_body_held));
        if (req->full_share)
            ig_http_respond_error(req, 400, "ThrottlingException",
                                  "This connection is holding its limit of %llu bytes for its "
                                  "requests; retry later or on another connection.",
                                  (unsigned long long)srv->conn_cap);
        else
            ig_http_respond_error(req, 400, "ThrottlingException",
                                  "The gateway is holding its limit of %llu bytes for clients; "
                                  "retry later.",
                                  (unsigned long long)srv->max_body_held);
        return;
    case HTTP_REQ_ERR_NOMEM:
    case HTTP_REQ_ERR_NONE:
    case HTTP_REQ_ERR_STREAM_REFUSED: /* answered by the gateway: not reached */
        break;
    }
    ig_http_req_log_refusal(req, 503, "ServiceUnavailable");
    ig_http_respond_error(req, 503, "ServiceUnavailable",
                          "Out of memory while receiving the request.");
}

const char *ig_http_req_method(const struct ig_http_req *req)
{
    return req->method != NULL ? req->method : "";
}

const char *ig_http_req_path(const struct ig_http_req *req)
{
    return req->path != NULL ? req->path : "/";
}

const char *ig_http_req_header(const struct ig_http_req *req, const char *name)
{
    if (req->hdrs == NULL || !(req->hfirst & http_first_bit(name)))
        return NULL;
    /* The first letter, case-folded, rules out most names before the
     * full comparison (letters, digits and '-' fold right with | 0x20). */
    for (size_t i = 0; i < req->nhdr; i++)
        if ((req->hdrs[i].name[0] | 0x20) == (name[0] | 0x20) &&
            strcasecmp(req->hdrs[i].name, name) == 0)
            return req->hdrs[i].value;
    return NULL;
}

const struct ig_http_hdr *ig_http_req_headers(const struct ig_http_req *req, size_t *n)
{
    *n = req->hdrs != NULL ? req->nhdr : 0;
    return req->hdrs;
}

const char *ig_http_req_body(const struct ig_http_req *req, size_t *len)
{
    if (len != NULL)
        *len = req->body.len;
    return req->body.data != NULL ? req->body.data : "";
}

const char *ig_http_req_proto(const struct ig_http_req *req)
{
    return req->h2 ? "h2" : "http/1.1";
}

struct ig_budget *ig_http_req_budget(const struct ig_http_req *req)
{
    /* A request the gateway holds has charged (its first unit), so its
     * hold references the share, which then outlives the connection. */
    return req_budget(req);
}

uint64_t *ig_http_req_conn_mark(struct ig_http_req *req)
{
    return req->conn != NULL ? &req->conn->app_mark : NULL;
}

uint64_t ig_http_req_peer_key(const struct ig_http_req *req)
{
    return req->conn != NULL ? req->conn->peer_key : 0;
}

const char *ig_http_req_id(const struct ig_http_req *req)
{
    return req->id;
}

void ig_http_req_set_close_cb(struct ig_http_req *req, ig_http_close_cb *cb, void *arg)
{
    req->close_cb = cb;
    req->close_arg = arg;
}

int ig_http_req_orphaned(const struct ig_http_req *req)
{
    /* the same test as ig_http_respond's for dropping an answer */
    return req->conn == NULL || req->conn->state != HTTP_CONN_OPEN;
}

static char *http_error_body(char *msg, size_t *len);

/*
 * Charge a response of <len> bytes before it is queued: h2 as part of the
 * request (its DATA waits for the client's window), h1 to the connection's
 * output hold (what the socket has not taken). 0, or IG_ERR_FULL with
 * *<share> telling which budget refused.
 */
static int respond_charge(struct ig_http_req *req, struct http_conn *conn, size_t len,
                          bool *share)
{
    uint64_t want;

    if (req->h2) {
        if (req_mem_set(req, req->mem + len) == 0)
            return 0;
        *share = req->full_share;
        return IG_ERR_FULL;
    }
    want = evbuffer_get_length(bufferevent_get_output(conn->bev)) + len + HTTP_H1_HEAD_CHARGE;
    if (ig_http_conn_out_charge(conn, want) == 0)
        return 0;
    *share = budget_own_cap(conn->budget, want - conn->out_hold.n);
    /* it may still go (a small answer): nothing more is parsed until the
     * socket has taken it (conn_out_recount) */
    conn->out_full = true;
    return IG_ERR_FULL;
}

void ig_http_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                     size_t nhdrs, char *body, size_t len)
{
    static const struct ig_http_hdr throttled[2] = {
        {"Content-Type", "application/json"},
        {"x-amzn-ErrorType", "ThrottlingException"},
    };
    struct http_conn *conn = req->conn;
    bool share = false;

    if (status < 200 || status > 999) {
        ig_log(IG_LOG_ERROR, "http: response status %d is not a final status; sending 500", status);
        status = 500;
    }
    if (req->state == HTTP_REQ_DISPATCHED && conn != NULL)
        conn->srv->nactive--;
    if (conn == NULL || conn->state != HTTP_CONN_OPEN) {
        /* nobody to answer any more (detached, or the connection is
         * going away); the close path no longer counts this request */
        free(body);
        ig_http_req_free(req);
        return;
    }
    if (body == NULL)
        len = 0;
    /* a stream answered before its body ended (an error at its start):
     * the rest of the body is read and dropped within the bound, as after
     * a refusal, so that the client sees the answer (h2_discard) */
    if (req->stream && !req->stream_in_end && req->h2)
        req->err = HTTP_REQ_ERR_STREAM_REFUSED;
    /* the body is not needed any more: off the budgets before the
     * response is charged; an h1 request is freed right after its
     * response is queued, so the output takes over its charge */
    ig_http_req_drop_body(req);
    if (!req->h2)
        ig_budget_hold_clear(&req->hold);
    /* an answer of up to a charge unit always goes (a refusal would be no
     * smaller): the module's own errors, throttles included, go out when
     * the budgets are spent */
    if (respond_charge(req, conn, len, &share) != 0 && len > HTTP_CHARGE_UNIT) {
        char msg[256];

        snprintf(msg, sizeof(msg),
                 "The response of %zu bytes does not fit in what %s may hold (%llu bytes); "
                 "retry later.",
                 len, share ? "this connection" : "the gateway",
                 (unsigned long long)(share ? conn->srv->conn_cap : conn->srv->max_body_held));
        ig_log(IG_LOG_DEBUG, "http: %s: %s", conn->peer, msg);
        free(body);
        body = http_error_body(msg, &len);
        status = 400;
        hdrs = throttled;
        nhdrs = IG_ARRAY_SIZE(throttled);
        respond_charge(req, conn, len, &share); /* a small answer goes even over */
        if (!req->h2)
            conn->h1_close = true;
    }
    if (req->h2)
        ig_http_h2_respond(req, status, hdrs, nhdrs, body, len);
    else
        ig_http_h1_respond(req, status, hdrs, nhdrs, body, len);
}

/* {"message":"<msg>"}; a message that is not valid UTF-8 has its non-ASCII
 * bytes replaced so that the body stays valid JSON. */
static char *http_error_body(char *msg, size_t *len)
{
    json_t *obj = json_object();
    json_t *str = json_string(msg);
    char *out;
    size_t n;

    if (str == NULL) {
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        str = json_string(msg);
    }
    if (obj == NULL || str == NULL || json_object_set_new(obj, "message", str) != 0) {
        json_decref(obj);
        *len = strlen("{\"message\":null}");
        return ig_xstrdup("{\"message\":null}");
    }
    n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    out = ig_xmalloc(n + 1);
    n = json_dumpb(obj, out, n, JSON_COMPACT);
    out[n] = '\0';
    json_decref(obj);
    *len = n;
    return out;
}

void ig_http_respond_error(struct ig_http_req *req, int status, const char *type, const char *fmt,
                           ...)
{
    char msg[HTTP_ERROR_MSG_MAX];
    struct ig_http_hdr hdrs[2] = {
        {"Content-Type", "application/json"},
        {"x-amzn-ErrorType", type},
    };
    va_list ap;
    char *body;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = http_error_body(msg, &len);
    ig_http_respond(req, status, hdrs, IG_ARRAY_SIZE(hdrs), body, len);
}

/* ------------------------------------------------------------------ */
/* connections                                                        */

void ig_http_conn_kick(struct http_conn *conn)
{
    if (conn->state != HTTP_CONN_DEAD)
        event_active(conn->ev_kick, EV_TIMEOUT, 0);
}

int ig_http_conn_out_charge(struct http_conn *conn, uint64_t want)
{
    want = (want + HTTP_CHARGE_UNIT - 1) & ~(uint64_t)(HTTP_CHARGE_UNIT - 1);
    if (want <= conn->out_hold.n)
        return 0;
    return ig_budget_hold_set(&conn->out_hold, conn->budget, want);
}

void ig_http_conn_close(struct http_conn *conn)
{
    struct ig_http_server *srv = conn->srv;

    if (conn->state == HTTP_CONN_DEAD)
        return;
    conn->state = HTTP_CONN_DEAD;
    bufferevent_setcb(conn->bev, NULL, NULL, NULL, NULL);
    bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
    event_del(conn->ev_timer);
    event_del(conn->ev_kick);
    TAILQ_REMOVE(&srv->conns, conn, link);
    TAILQ_INSERT_TAIL(&srv->dead, conn, link);
    event_active(srv->ev_sweep, EV_TIMEOUT, 0);
}

void ig_http_conn_finish(struct http_conn *conn)
{
    if (conn->state != HTTP_CONN_OPEN)
        return;
    conn->state = HTTP_CONN_CLOSING;
    conn->close_deadline_us = ig_now_us() + HTTP_LINGER_US;
    /* reading stays on: input is discarded and EOF noticed */
    if (!conn->eof)
        bufferevent_enable(conn->bev, EV_READ);
    ig_http_conn_kick(conn);
}

/*
 * The server is going away (the drain is over, or timed out): end <conn>
 * without a reset. Cleartext output still queued (a final GOAWAY submitted
 * now if none was) goes to the socket if it takes it at once; our side is
 * shut (TLS: close_notify); the client's unread bytes are read and dropped
 * so that close() sends FIN, not RST, which would make the client's kernel
 * throw away the answer it has not read yet.
 */
static void conn_end_quietly(struct http_conn *conn)
{
    evutil_socket_t fd = bufferevent_getfd(conn->bev);
    char buf[16384];

    if (fd < 0 || conn->state == HTTP_CONN_DEAD)
        return;
    if (conn->state != HTTP_CONN_LINGER) {
        if (conn->proto == HTTP_PROTO_H2)
            ig_http_h2_last_words(conn);
        if (!conn->tls) {
            struct evbuffer *out = bufferevent_get_output(conn->bev);

            /* a socket bufferevent keeps the start of its output frozen
             * (only its own write callback takes from it): evbuffer_write
             * would fail and the last words never leave */
            evbuffer_unfreeze(out, 1);
            while (evbuffer_get_length(out) > 0 && evbuffer_write(out, fd) > 0)
                ;
            evbuffer_freeze(out, 1);
        }
        if (conn->tls || evbuffer_get_length(bufferevent_get_output(conn->bev)) == 0)
            conn_shutdown_write(conn);
    }
    for (int i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
        ;
}

/* Free <conn> now. Requests the gateway holds get their close callback. */
static void conn_destroy(struct http_conn *conn)
{
    struct ig_http_req *req;

    conn->state = HTTP_CONN_DEAD;
    /* one at a time: a close callback may answer (and free) other requests */
    while ((req = TAILQ_FIRST(&conn->reqs)) != NULL)
        ig_http_req_gone(req);
    ig_http_h2_free(conn);
    if (conn->drain_watch) {
        evbuffer_remove_cb(bufferevent_get_input(conn->bev), conn_on_drain_in, conn);
        evbuffer_remove_cb(bufferevent_get_output(conn->bev), conn_on_drain_out, conn);
    }
    bufferevent_free(conn->bev);
    ig_budget_hold_clear(&conn->out_hold);
    ig_budget_hold_clear(&conn->in_hold);
    /* detached requests may keep the share alive: its refusals are
     * counted now, the rest of it goes with them */
    conn->srv->share_refused_gone += ig_budget_refused(conn->budget);
    ig_budget_unref(conn->budget);
    event_free(conn->ev_timer);
    event_free(conn->ev_kick);
    conn->srv->nconns--;
    free(conn);
}

static void server_on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct ig_http_server *srv = arg;
    struct http_conn *conn;

    (void)fd;
    (void)what;
    while ((conn = TAILQ_FIRST(&srv->dead)) != NULL) {
        TAILQ_REMOVE(&srv->dead, conn, link);
        conn_destroy(conn);
    }
}

/* Which deadline applies to <conn> now, and when it is. */
static enum conn_timer conn_deadline(const struct http_conn *conn, uint64_t *deadline)
{
    const struct ig_http_server *srv = conn->srv;
    const struct ig_http_req *req;
    uint64_t start = 0, stall = 0, d;

    *deadline = 0;
    if (conn->state == HTTP_CONN_CLOSING || conn->state == HTTP_CONN_LINGER) {
        *deadline = conn->close_deadline_us;
        return CONN_TIMER_CLOSE;
    }
    if (conn->state != HTTP_CONN_OPEN)
        return CONN_TIMER_NONE;
    if (conn->proto == HTTP_PROTO_TLS)
        start = conn->accepted_us;
    else if (conn->proto == HTTP_PROTO_UNKNOWN)
        start = conn->first_byte_us;
    /* the earliest header deadline, and the earliest stall deadline of
     * the requests waiting on the client (each on its own: h1 has one, a
     * body trickling in; h2 bodies and held-back responses) */
    TAILQ_FOREACH(req, &conn->reqs, link) {
        if (req->state == HTTP_REQ_HEADERS) {
            if (start == 0 || req->start_us < start)
                start = req->start_us;
        } else if ((d = ig_http_req_stall_deadline(req)) != 0 && (stall == 0 || d < stall)) {
            stall = d;
        }
    }
    if (start != 0 && srv->header_us != 0 &&
        (stall == 0 || start + srv->header_us <= stall)) {
        *deadline = start + srv->header_us;
        return CONN_TIMER_HEADER;
    }
    if (stall != 0 && (conn->proto == HTTP_PROTO_H1 || conn->proto == HTTP_PROTO_H2)) {
        *deadline = stall;
        return conn->proto == HTTP_PROTO_H1 ? CONN_TIMER_BODY : CONN_TIMER_STALL;
    }
    if (TAILQ_EMPTY(&conn->reqs) && srv->idle_us != 0) {
        *deadline = conn->idle_since_us + srv->idle_us;
        return CONN_TIMER_IDLE;
    }
    return CONN_TIMER_NONE;
}

static void conn_arm_timer(struct http_conn *conn)
{
    uint64_t deadline, now, delta;
    struct timeval tv;

    conn_deadline(conn, &deadline);
    if (deadline == conn->deadline_us)
        return;
    conn->deadline_us = deadline;
    if (deadline == 0) {
        evtimer_del(conn->ev_timer);
        return;
    }
    now = ig_now_us();
    delta = deadline > now ? deadline - now : 0;
    tv.tv_sec = (time_t)(delta / 1000000u);
    tv.tv_usec = (suseconds_t)(delta % 1000000u);
    evtimer_add(conn->ev_timer, &tv);
}

/* Bytes from the client waiting in the socket while reading is on, <have>
 * bytes in the bufferevent (not those held back by the watermark or the
 * budgets: the gateway's own backpressure on a client that does not read
 * is no reason to wait). */
static bool conn_kernel_input(struct http_conn *conn, size_t have)
{
    int n = 0;

    return have < HTTP_READ_HIGH && (bufferevent_get_enabled(conn->bev) & EV_READ) &&
           ioctl(bufferevent_getfd(conn->bev), FIONREAD, &n) == 0 && n > 0;
}

static void conn_on_read(struct bufferevent *bev, void *arg);

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *conn = arg;
    uint64_t deadline;
    enum conn_timer kind = conn_deadline(conn, &deadline);

    (void)fd;
    (void)what;
    conn->deadline_us = 0;
    if (kind == CONN_TIMER_NONE || deadline > ig_now_us()) {
        conn_arm_timer(conn);
        return;
    }
    if ((kind == CONN_TIMER_IDLE || kind == CONN_TIMER_HEADER) && !conn->in_full) {
        size_t have = evbuffer_get_length(bufferevent_get_input(conn->bev));

        if (have > conn->in_seen) {
            /* The bufferevent has read bytes whose callback is deferred
             * behind this timer (the loop was late: stopped, or busy with
             * others): the client was on time. They are looked at now, as
             * the callback would, and the deadline is taken again from
             * there (a header deadline stays where it was). */
            conn_on_read(conn->bev, conn);
            return;
        }
        if (!conn->late_read && conn_kernel_input(conn, have)) {
            /* The client's bytes wait in the kernel: the loop was busy
             * with others when this fired, the client is not idle. Once,
             * until they are read: a new look one tick later, after the
             * read (which the case above takes if its callback is still
             * deferred then). */
            struct timeval tick = {0, 1000};

            conn->late_read = true;
            conn->deadline_us = ig_now_us() + 1000;
            evtimer_add(conn->ev_timer, &tick);
            return;
        }
    }
    ig_log(IG_LOG_DEBUG, "http: %s: %s timeout", conn->peer,
           kind == CONN_TIMER_IDLE     ? "idle"
           : kind == CONN_TIMER_HEADER ? "header"
           : kind == CONN_TIMER_BODY   ? "body"
           : kind == CONN_TIMER_STALL  ? "stalled stream"
                                       : "close");
    if (kind == CONN_TIMER_CLOSE || conn->proto == HTTP_PROTO_UNKNOWN ||
        conn->proto == HTTP_PROTO_TLS || (kind == CONN_TIMER_IDLE && conn->proto == HTTP_PROTO_H1))
        ig_http_conn_close(conn);
    else if (conn->proto == HTTP_PROTO_H2 && kind == CONN_TIMER_STALL)
        ig_http_h2_on_stall(conn); /* counts the streams it cuts */
    else if (conn->proto == HTTP_PROTO_H2)
        ig_http_h2_on_timeout(conn);
    else {
        if (kind == CONN_TIMER_BODY)
            conn->srv->stalls++;
        ig_http_h1_on_stall(conn, kind == CONN_TIMER_HEADER);
    }
    conn_process(conn);
}

static void conn_on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_process(arg);
}

/* Cleartext: the HTTP/2 preface picks h2, anything else h1. */
static void conn_detect(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    size_t n = evbuffer_get_length(in);
    char head[HTTP_PREFACE_LEN];

    if (n == 0)
        return;
    if (conn->first_byte_us == 0)
        conn->first_byte_us = ig_now_us();
    if (n > HTTP_PREFACE_LEN)
        n = HTTP_PREFACE_LEN;
    evbuffer_copyout(in, head, n);
    if (memcmp(head, HTTP_PREFACE, n) != 0) {
        ig_http_h1_start(conn);
        return;
    }
    if (n < HTTP_PREFACE_LEN)
        return; /* could still be either */
    if (ig_http_h2_start(conn) != 0) {
        ig_log(IG_LOG_DEBUG, "http: %s: cannot start an HTTP/2 session", conn->peer);
        ig_http_conn_close(conn);
    }
}

static void conn_process_open(struct http_conn *conn)
{
    if (conn->proto == HTTP_PROTO_UNKNOWN)
        conn_detect(conn);
    if (conn->state != HTTP_CONN_OPEN)
        return;
    if (conn->proto == HTTP_PROTO_H1)
        ig_http_h1_process(conn);
    else if (conn->proto == HTTP_PROTO_H2)
        ig_http_h2_process(conn);
}

int ig_http_conn_input_waiting(const struct http_conn *conn)
{
    evutil_socket_t fd = bufferevent_getfd(conn->bev);
    char c;

    if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
        return 1;
    return fd >= 0 && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* End our direction: TLS close_notify (written straight to the socket:
 * the bufferevent's output is empty by now), then FIN, so that the client
 * sees the end at once rather than when the linger runs out. */
static void conn_shutdown_write(struct http_conn *conn)
{
    evutil_socket_t fd = bufferevent_getfd(conn->bev);

    if (conn->tls && conn->proto != HTTP_PROTO_TLS) {
        SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);

        if (ssl != NULL && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
            SSL_shutdown(ssl);
        ERR_clear_error();
    }
    if (fd >= 0)
        shutdown(fd, SHUT_WR);
}

static void conn_discard_input(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);

    evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * CLOSING: once the last bytes are out, half-close (TLS: close_notify
 * first) and linger until the client's EOF: closing a socket with unread
 * input makes the kernel send a RST, which can destroy the response (or
 * GOAWAY) the client has not read yet.
 */
static void conn_step_closing(struct http_conn *conn)
{
    conn_discard_input(conn);
    if (conn->proto == HTTP_PROTO_H2 &&
        (!ig_http_h2_flush(conn) || conn->state != HTTP_CONN_CLOSING))
        return;
    if (evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
        return;
    if (conn->eof) {
        ig_http_conn_close(conn);
        return;
    }
    conn_shutdown_write(conn);
    conn->state = HTTP_CONN_LINGER;
    conn->close_deadline_us = ig_now_us() + HTTP_LINGER_US;
}

/* Release what the socket has taken of the charged output (h1 and h2; the
 * charge is taken before bytes are queued, ig_http_conn_out_charge). Once
 * the output is within its charge again, h1 parses the next request. */
static void conn_out_recount(struct http_conn *conn)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(conn->bev));

    if (n < conn->out_hold.n)
        ig_budget_hold_set(&conn->out_hold, conn->out_hold.b, n);
    if (n <= conn->out_hold.n)
        conn->out_full = false;
}

/*
 * After processing: charge the input left in the bufferevent (read, not
 * processed: behind a busy h1 request or blocked h2 output). Over the
 * budgets, reading stops (its bytes are still there: held over by at most
 * what one read brought); what the connection processes next frees it, and
 * reading resumes once the rest fits. A remainder under HTTP_CHARGE_UNIT
 * never stops reading: bytes short of telling the protocol wait for more.
 * Almost always nothing is left, nothing was held, and this costs a load.
 */
static void conn_in_recount(struct http_conn *conn)
{
    size_t n = evbuffer_get_length(bufferevent_get_input(conn->bev));

    /* a refused charge leaves in_hold as it was: with reading stopped, the
     * input processed back down to that same count must still resume it */
    if (n == conn->in_hold.n && !conn->in_full)
        return;
    if (ig_budget_hold_set(&conn->in_hold, conn->budget, n) == 0 || n < HTTP_CHARGE_UNIT) {
        if (conn->in_full) {
            conn->in_full = false;
            if (!conn->eof)
                bufferevent_enable(conn->bev, EV_READ);
        }
    } else if (!conn->in_full) {
        conn->in_full = true;
        bufferevent_disable(conn->bev, EV_READ);
    }
}

static void conn_process(struct http_conn *conn)
{
    if ((conn->out_hold.n != 0 || conn->out_full) && conn->state != HTTP_CONN_DEAD)
        conn_out_recount(conn);
    if (conn->state == HTTP_CONN_OPEN)
        conn_process_open(conn);
    if (conn->state == HTTP_CONN_OPEN)
        ig_http_stream_notify(conn);
    if (conn->state == HTTP_CONN_CLOSING)
        conn_step_closing(conn);
    if (conn->state == HTTP_CONN_LINGER) {
        conn_discard_input(conn);
        if (conn->eof)
            ig_http_conn_close(conn);
    }
    if (conn->state != HTTP_CONN_DEAD) {
        conn_in_recount(conn);
        conn->in_seen = evbuffer_get_length(bufferevent_get_input(conn->bev));
        conn_arm_timer(conn);
    }
}

/*
 * libevent 2.1 reads a socket at most 4 KiB at a time (EVBUFFER_MAX_READ):
 * a system call, an ioctl and a loop turn for each 4 KiB of a stream of
 * rows. A cleartext connection whose read filled that reads on here, in
 * pieces of up to 64 KiB, to HTTP_READ_HIGH at most (the watermark and the
 * budgets then apply as to any read: conn_in_recount).
 */
static void conn_read_more(struct http_conn *conn)
{
    struct evbuffer *in = bufferevent_get_input(conn->bev);
    evutil_socket_t fd = bufferevent_getfd(conn->bev);
    size_t have = evbuffer_get_length(in);

    if (conn->tls || fd < 0 || have < 4096 || conn->in_full || conn->eof)
        return;
    /* a socket bufferevent keeps the end of its input frozen (only its
     * own read adds there) */
    evbuffer_unfreeze(in, 0);
    while (have < HTTP_READ_HIGH) {
        size_t want = HTTP_READ_HIGH - have < 65536 ? HTTP_READ_HIGH - have : 65536;
        struct evbuffer_iovec v[2];
        ssize_t n;

        if (evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2) < 1)
            break;
        if (v[0].iov_len > want)
            v[0].iov_len = want;
        n = recv(fd, v[0].iov_base, v[0].iov_len, MSG_DONTWAIT);
        if (n <= 0) { /* drained (or EOF, an error: bufferevent's own read sees it) */
            evbuffer_commit_space(in, v, 0);
            break;
        }
        v[0].iov_len = (size_t)n;
        evbuffer_commit_space(in, v, 1);
        have += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    evbuffer_freeze(in, 0);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
    struct http_conn *conn = arg;

    (void)bev;
    conn->last_read_us = ig_now_us();
    conn->late_read = false;
    conn_read_more(conn);
    conn_process(conn);
}

static void conn_on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void conn_tls_ready(struct http_conn *conn)
{
    SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;

    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alen == 2 && memcmp(alpn, "h2", 2) == 0) {
        if (ig_http_h2_start(conn) != 0) {
            ig_log(IG_LOG_DEBUG, "http: %s: cannot start an HTTP/2 session", conn->peer);
            ig_http_conn_close(conn);
            return;
        }
    } else {
        ig_http_h1_start(conn);
    }
    conn_process(conn);
}

static void conn_log_error(struct http_conn *conn, short what)
{
    unsigned long e = conn->tls ? bufferevent_get_openssl_error(conn->bev) : 0;
    char buf[256];

    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        ig_log(IG_LOG_DEBUG, "http: %s: TLS error: %s", conn->peer, buf);
    } else if (what & BEV_EVENT_ERROR) {
        ig_log(IG_LOG_DEBUG, "http: %s: connection error: %s", conn->peer,
               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    } else {
        ig_log(IG_LOG_DEBUG, "http: %s: client closed the connection", conn->peer);
    }
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *conn = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        conn_tls_ready(conn);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    conn->eof = true;
    if (ig_log_min_level <= IG_LOG_DEBUG)
        conn_log_error(conn, what);
    if (what & BEV_EVENT_ERROR) {
        ig_http_conn_close(conn);
        return;
    }
    if (conn->state == HTTP_CONN_OPEN && conn->proto == HTTP_PROTO_H1) {
        /* a half-close: answer what was received in full, unless the
         * gateway is still working on it (then the client is gone) */
        conn_process(conn);
        if (conn->state == HTTP_CONN_OPEN) {
            if (ig_http_h1_busy(conn))
                ig_http_conn_close(conn);
            else
                ig_http_conn_finish(conn);
        }
        return;
    }
    if (conn->state == HTTP_CONN_OPEN)
        ig_http_conn_close(conn);
    else
        conn_process(conn); /* CLOSING: finish flushing, then close */
}

static void conn_peer_name(struct http_conn *conn, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        conn->peer_key = (uint64_t)ntohl(in->sin_addr.s_addr) << 1 | 1;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        uint64_t k = 0;

        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            k = (uint64_t)a[12] << 24 | (uint64_t)a[13] << 16 | (uint64_t)a[14] << 8 | a[15];
            conn->peer_key = k << 1 | 1;
        } else {
            for (int i = 0; i < 8; i++) /* its /64, less the last bit: one site */
                k = k << 8 | a[i];
            conn->peer_key = (k & ~(uint64_t)1) != 0 ? k & ~(uint64_t)1 : 2;
        }
    }
    snprintf(conn->peer, sizeof(conn->peer), "%s:%u", host, port);
}

static struct bufferevent *server_new_bev(struct ig_http_server *srv, evutil_socket_t fd)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    SSL *ssl;

    if (srv->ssl_ctx == NULL)
        return bufferevent_socket_new(srv->base, fd, opts);
    ssl = SSL_new(srv->ssl_ctx);
    if (ssl == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* 1 when <conn> holds nothing for its client: no request started, no
 * byte read, waiting in the socket or to write (h2: no frame nghttp2
 * still wants to send), not in a TLS handshake, not dropping a refused
 * body. Only looked at when max_connections is reached. */
static bool conn_idle(const struct http_conn *conn)
{
    if (conn->state != HTTP_CONN_OPEN || conn->proto == HTTP_PROTO_TLS || conn->h1_discard ||
        !TAILQ_EMPTY(&conn->reqs) || evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
        return false;
    if (conn->proto == HTTP_PROTO_H2 && conn->h2 != NULL && nghttp2_session_want_write(conn->h2))
        return false;
    /* a request already in the socket, not read yet: an h1 client would
     * see its keep-alive connection close under it (an h2 one would learn
     * from the GOAWAY that it was not processed, but it is busy too) */
    return !ig_http_conn_input_waiting(conn);
}

/* When <conn> began a stage that holds no request the gateway has: its
 * TLS handshake, the first bytes before the protocol is known, an h1
 * request's header block, an h1 refused body being dropped; 0 when it is
 * in none. */
static uint64_t conn_preamble_since(const struct http_conn *conn)
{
    const struct ig_http_req *req = TAILQ_FIRST(&conn->reqs);

    if (conn->state != HTTP_CONN_OPEN)
        return 0;
    if (conn->proto == HTTP_PROTO_TLS)
        return conn->accepted_us;
    if (conn->proto == HTTP_PROTO_UNKNOWN)
        return conn->first_byte_us;
    if (conn->proto == HTTP_PROTO_H1 && req != NULL && req->state == HTTP_REQ_HEADERS)
        return req->start_us;
    /* dropping the rest of a refused body (answered already): since the
     * answer, when the request went */
    if (conn->proto == HTTP_PROTO_H1 && req == NULL && conn->h1_discard)
        return conn->idle_since_us;
    return 0;
}

/*
 * max_connections is reached: make room by ending the oldest idle
 * connection (the first in accept order: under a flood of idle
 * connections, at once), else the one longest in a TLS handshake, in its
 * first bytes or in an h1 header block, if that is over
 * HTTP_EVICT_PREAMBLE_US (no client of ours takes that long where it is
 * not slowed down on purpose). Without this, connections that send
 * nothing (a connect costs the client nothing) hold every slot for
 * idle_timeout_ms, or trickle a header for header_timeout_ms, and lock
 * every new client out. A connection with a request the gateway holds,
 * a body arriving or an answer going out is never ended for a newcomer.
 * The connection goes at once (no linger: the slot is needed); an h2
 * client gets its GOAWAY (last stream id, NO_ERROR) first, so it knows no
 * request was lost. 1 when one was ended.
 */
static int server_evict(struct ig_http_server *srv)
{
    struct http_conn *conn, *victim = NULL;
    uint64_t oldest = ig_now_us() - HTTP_EVICT_PREAMBLE_US, since;

    TAILQ_FOREACH(conn, &srv->conns, link) {
        if (conn_idle(conn)) {
            victim = conn;
            break;
        }
        if ((since = conn_preamble_since(conn)) != 0 && since < oldest) {
            oldest = since;
            victim = conn;
        }
    }
    if (victim == NULL)
        return 0;
    ig_log(IG_LOG_DEBUG, "http: connection limit %u reached; ending %s to make room",
           srv->max_connections, victim->peer);
    conn_end_quietly(victim);
    ig_http_conn_close(victim);
    srv->evicted++;
    return 1;
}

static void server_on_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                             int salen, void *arg)
{
    struct ig_http_server *srv = arg;
    struct http_conn *conn;
    int one = 1;

    (void)lst;
    (void)salen;
    if (srv->max_connections != 0 && srv->nconns >= srv->max_connections &&
        !server_evict(srv)) {
        ig_log(IG_LOG_DEBUG, "http: connection limit %u reached; closing a new connection",
               srv->max_connections);
        evutil_closesocket(fd);
        return;
    }
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    conn = ig_xcalloc(1, sizeof(*conn));
    conn->srv = srv;
    conn->tls = srv->ssl_ctx != NULL;
    conn->proto = conn->tls ? HTTP_PROTO_TLS : HTTP_PROTO_UNKNOWN;
    conn->accepted_us = conn->idle_since_us = conn->last_read_us = ig_now_us();
    TAILQ_INIT(&conn->reqs);
    conn->budget = ig_budget_new(srv->conn_cap, srv->budget);
    conn_peer_name(conn, sa);
    conn->bev = server_new_bev(srv, fd);
    conn->ev_timer = evtimer_new(srv->base, conn_on_timer, conn);
    conn->ev_kick = event_new(srv->base, -1, 0, conn_on_kick, conn);
    if (conn->bev == NULL || conn->ev_timer == NULL || conn->ev_kick == NULL) {
        ig_log(IG_LOG_WARN, "http: %s: cannot set up the connection", conn->peer);
        if (conn->bev != NULL)
            bufferevent_free(conn->bev);
        else
            evutil_closesocket(fd);
        if (conn->ev_timer != NULL)
            event_free(conn->ev_timer);
        if (conn->ev_kick != NULL)
            event_free(conn->ev_kick);
        ig_budget_unref(conn->budget);
        free(conn);
        return;
    }
    bufferevent_setcb(conn->bev, conn_on_read, conn_on_write, conn_on_event, conn);
    bufferevent_setwatermark(conn->bev, EV_READ, 0, HTTP_READ_HIGH);
    bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&srv->conns, conn, link);
    srv->nconns++;
    conn_arm_timer(conn);
}

static void server_on_accept_error(struct evconnlistener *lst, void *arg)
{
    (void)lst;
    (void)arg;
    ig_log(IG_LOG_WARN, "http: accept failed: %s",
           evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ------------------------------------------------------------------ */
/* server                                                             */

static int server_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char protos[] = "\x02h2\x08http/1.1";

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, protos, sizeof(protos) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    return SSL_TLSEXT_ERR_OK;
}

static void server_ssl_err(char *err, size_t errlen, const char *what, const char *path)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    ig_errf(err, errlen, "%s %s: %s", what, path, buf);
}

static int server_tls_init(struct ig_http_server *srv, const struct ig_http_server_conf *conf,
                           char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        ig_errf(err, errlen, "cannot create a TLS context");
        return IG_ERR_NOMEM;
    }
    srv->ssl_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* TLS 1.2 suites acceptable to HTTP/2 (RFC 7540 9.2.2) */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->tls_cert) != 1) {
        server_ssl_err(err, errlen, "cannot load certificate", conf->tls_cert);
        return IG_ERR_CONFIG;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        server_ssl_err(err, errlen, "cannot use private key", conf->tls_key);
        return IG_ERR_CONFIG;
    }
    SSL_CTX_set_alpn_select_cb(ctx, server_on_alpn, NULL);
    return 0;
}

static int server_listen(struct ig_http_server *srv, const char *listen, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = (int)sizeof(ss);
    socklen_t blen = sizeof(ss);
    char why[512];

    memset(&ss, 0, sizeof(ss));
    /* the resolver --check-config uses: numeric hosts, [IPv6], names, port 0 */
    if (listen == NULL || ig_addr_resolve(listen, &ss, &sslen, why, sizeof(why)) != 0) {
        ig_errf(err, errlen, "invalid listen address %s", listen ? why : "(none)");
        return IG_ERR_CONFIG;
    }
    srv->lst =
        evconnlistener_new_bind(srv->base, server_on_accept, srv,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                HTTP_BACKLOG, (struct sockaddr *)&ss, sslen);
    if (srv->lst == NULL) {
        ig_errf(err, errlen, "cannot listen on %s: %s", listen,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return IG_ERR_IO;
    }
    evconnlistener_set_error_cb(srv->lst, server_on_accept_error);
    if (getsockname(evconnlistener_get_fd(srv->lst), (struct sockaddr *)&ss, &blen) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)(void *)&ss)->sin_port);
    return 0;
}

static void server_copy_conf(struct ig_http_server *srv, const struct ig_http_server_conf *conf)
{
    srv->max_connections = conf->max_connections;
    srv->max_streams =
        conf->max_concurrent_streams ? conf->max_concurrent_streams : HTTP_DEFAULT_STREAMS;
    srv->max_header_bytes =
        conf->max_header_list_size ? conf->max_header_list_size : HTTP_DEFAULT_HEADER_BYTES;
    srv->max_body = conf->max_body_bytes ? conf->max_body_bytes : HTTP_DEFAULT_BODY;
    srv->max_body_held =
        conf->max_buffered_body_bytes ? conf->max_buffered_body_bytes : HTTP_DEFAULT_BODY_HELD;
    srv->conn_cap =
        conf->max_conn_buffered_bytes ? conf->max_conn_buffered_bytes : HTTP_DEFAULT_CONN_HELD;
    srv->min_rate = conf->min_rate_bytes ? conf->min_rate_bytes : HTTP_DEFAULT_MIN_RATE;
    srv->idle_us = conf->idle_timeout_ms * 1000u;
    srv->header_us = conf->header_timeout_ms * 1000u;
    /* http-parser's own cap on a header block (process-wide, compiled in
     * at 80 KiB) must not undercut ours; it also counts CRLFs and ": " */
    if (srv->max_header_bytes > HTTP_MAX_HEADER_SIZE / 2)
        http_parser_set_max_header_size(2 * srv->max_header_bytes + 8192);
}

int ig_http_server_new(struct event_base *base, const struct ig_http_server_conf *conf,
                       ig_http_request_cb *on_request, void *arg, struct ig_http_server **out,
                       char *err, size_t errlen)
{
    struct ig_http_server *srv = ig_xcalloc(1, sizeof(*srv));
    int rv;

    *out = NULL;
    srv->base = base;
    srv->on_request = on_request;
    srv->arg = arg;
    srv->date_sec = -1;
    TAILQ_INIT(&srv->conns);
    TAILQ_INIT(&srv->dead);
    TAILQ_INIT(&srv->detached);
    server_copy_conf(srv, conf);
    srv->budget = ig_budget_new(srv->max_body_held, NULL);
    srv->ev_sweep = event_new(base, -1, 0, server_on_sweep, srv);
    if (srv->ev_sweep == NULL) {
        ig_errf(err, errlen, "cannot create an event");
        rv = IG_ERR_NOMEM;
        goto fail;
    }
    if (conf->tls_cert != NULL && conf->tls_cert[0] != '\0' && conf->tls_key != NULL &&
        conf->tls_key[0] != '\0' && (rv = server_tls_init(srv, conf, err, errlen)) != 0)
        goto fail;
    if ((rv = server_listen(srv, conf->listen, err, errlen)) != 0)
        goto fail;
    *out = srv;
    return 0;
fail:
    ig_http_server_free(srv);
    return rv;
}

uint16_t ig_http_server_port(const struct ig_http_server *srv)
{
    return srv->port;
}

/* Drain: HTTP/2 clients that have not acked the drain PING in time get
 * their final GOAWAY now (the last stream id is what reached us). */
void ig_http_req_drain_timeout(struct ig_http_req *req, uint64_t bound_us)
{
    ig_http_req_log_refusal(req, 408, "ValidationError");
    ig_http_respond_error(req, 408, "ValidationError",
                          "The request was not received in full: no byte came for %llu ms "
                          "while the gateway was shutting down.",
                          (unsigned long long)(bound_us / 1000u));
}

/* Drain: <conn>'s client moved no byte for HTTP_DRAIN_STALL_US while the
 * drain waits on it: end what it holds up (see HTTP_DRAIN_STALL_US).
 * Requests the gateway holds are not the client's doing: left alone. */
static void conn_drain_stall(struct http_conn *conn, uint64_t now)
{
    const struct ig_http_server *srv = conn->srv;
    uint64_t bound = HTTP_DRAIN_STALL_US;
    size_t out = evbuffer_get_length(bufferevent_get_output(conn->bev));
    struct ig_http_req *req;

    if (srv->idle_us != 0 && srv->idle_us < bound)
        bound = srv->idle_us;
    if (now - conn->drain_progress_us < bound || conn->state == HTTP_CONN_LINGER)
        return;
    conn->drain_progress_us = now; /* what follows is progress too */
    if (conn->state != HTTP_CONN_OPEN || conn->proto == HTTP_PROTO_UNKNOWN ||
        conn->proto == HTTP_PROTO_TLS) {
        ig_http_conn_close(conn); /* output stuck, or a protocol never told */
        return;
    }
    if (conn->proto == HTTP_PROTO_H2) {
        ig_http_h2_drain_stall(conn, bound);
        return;
    }
    req = TAILQ_FIRST(&conn->reqs);
    if (req != NULL && (req->state == HTTP_REQ_HEADERS || req->state == HTTP_REQ_BODY)) {
        conn->h1_close = true;
        ig_http_req_drain_timeout(req, bound);
    } else if (out > 0 || (req == NULL && ig_http_conn_input_waiting(conn))) {
        ig_http_conn_close(conn); /* answers not taken, or bytes short of a request */
    }
}

/* Drain: bytes came in, or the socket took output: the client moves. An
 * answer added to the output starts a new period too: the client cannot
 * take what was not there, and the time the gateway spent making it (a
 * long decode, a full queue) is not the client's stall. Without this the
 * drain tick could close a connection between the answer's add and the
 * socket's next write event: the answer counted, never sent. */
static void conn_on_drain_in(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_added > 0)
        ((struct http_conn *)arg)->drain_progress_us = ig_now_us();
}

static void conn_on_drain_out(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                              void *arg)
{
    (void)buf;
    if (info->n_deleted > 0 || info->n_added > 0)
        ((struct http_conn *)arg)->drain_progress_us = ig_now_us();
}

/* Drain: note <conn>'s progress from now on (only while draining: no cost
 * on the hot path otherwise). */
static void conn_drain_watch(struct http_conn *conn)
{
    conn->drain_progress_us = ig_now_us();
    if (conn->drain_watch)
        return;
    conn->drain_watch =
        evbuffer_add_cb(bufferevent_get_input(conn->bev), conn_on_drain_in, conn) != NULL;
    if (conn->drain_watch &&
        evbuffer_add_cb(bufferevent_get_output(conn->bev), conn_on_drain_out, conn) == NULL) {
        evbuffer_remove_cb(bufferevent_get_input(conn->bev), conn_on_drain_in, conn);
        conn->drain_watch = false;
    }
}

/* Drain tick: HTTP/2 clients that have not acked the drain PING in time
 * get their final GOAWAY (the last stream id is what reached us);
 * stalled clients get their end (conn_drain_stall). */
static void server_on_drain(evutil_socket_t fd, short what, void *arg)
{
    struct ig_http_server *srv = arg;
    struct http_conn *conn, *next;
    uint64_t now = ig_now_us();
    struct timeval tv = {0, HTTP_DRAIN_TICK_US};

    (void)fd;
    (void)what;
    for (conn = TAILQ_FIRST(&srv->conns); conn != NULL; conn = next) {
        next = TAILQ_NEXT(conn, link);
        if (conn->state == HTTP_CONN_OPEN && conn->proto == HTTP_PROTO_H2 &&
            now - srv->drain_since_us >= HTTP_H2_DRAIN_ACK_US)
            ig_http_h2_drain_goaway(conn);
        conn_drain_stall(conn, now);
    }
    if (!TAILQ_EMPTY(&srv->conns))
        evtimer_add(srv->ev_drain, &tv);
}

void ig_http_server_stop_accepting(struct ig_http_server *srv)
{
    struct http_conn *conn, *next;

    if (srv->draining)
        return;
    srv->draining = true;
    if (srv->lst != NULL) {
        evconnlistener_free(srv->lst);
        srv->lst = NULL;
    }
    for (conn = TAILQ_FIRST(&srv->conns); conn != NULL; conn = next) {
        next = TAILQ_NEXT(conn, link);
        conn_drain_watch(conn);
        if (conn->state != HTTP_CONN_OPEN)
            continue;
        if (conn->proto == HTTP_PROTO_H1)
            ig_http_h1_drain(conn);
        else if (conn->proto == HTTP_PROTO_H2)
            ig_http_h2_drain(conn);
        else if (conn->proto == HTTP_PROTO_TLS || !ig_http_conn_input_waiting(conn))
            ig_http_conn_close(conn); /* no byte of a request read */
        /* else: bytes came before the protocol is known; it drains once
         * they tell (ig_http_h1_drain / ig_http_h2_start) */
    }
    srv->drain_since_us = ig_now_us();
    srv->ev_drain = evtimer_new(srv->base, server_on_drain, srv);
    if (srv->ev_drain != NULL) {
        struct timeval tv = {0, HTTP_DRAIN_TICK_US};

        evtimer_add(srv->ev_drain, &tv);
    }
}

uint32_t ig_http_server_pending_requests(const struct ig_http_server *srv)
{
    const struct http_conn *conn;
    uint32_t n = 0;

    TAILQ_FOREACH(conn, &srv->conns, link) {
        if (conn->state != HTTP_CONN_OPEN)
            continue; /* input is dropped: its last answer is being flushed */
        if (conn->proto == HTTP_PROTO_H1)
            n += (uint32_t)ig_http_h1_pending(conn);
        else if (conn->proto == HTTP_PROTO_H2)
            n += ig_http_h2_pending(conn);
        else if (conn->proto == HTTP_PROTO_UNKNOWN)
            n += (uint32_t)ig_http_conn_input_waiting(conn);
    }
    return n;
}

/* Bytes on <conn>'s socket the client has not acknowledged (sent or not,
 * the FIN of a half-close included); 0 when that cannot be told. */
static int conn_unacked(const struct http_conn *conn)
{
    evutil_socket_t fd = bufferevent_getfd(conn->bev);
    int n = 0;

    return fd >= 0 && ioctl(fd, SIOCOUTQ, &n) == 0 ? n : 0;
}

int ig_http_server_acked(const struct ig_http_server *srv)
{
    const struct http_conn *conn;

    TAILQ_FOREACH(conn, &srv->conns, link)
        if (conn->state == HTTP_CONN_LINGER && conn_unacked(conn))
            return 0;
    return 1;
}

int ig_http_server_flushed(const struct ig_http_server *srv)
{
    const struct http_conn *conn;

    TAILQ_FOREACH(conn, &srv->conns, link) {
        if (!srv->draining || conn->state == HTTP_CONN_CLOSING)
            return 0;
        if (conn->state != HTTP_CONN_OPEN)
            continue; /* LINGER: all written, waiting for the client's EOF */
        if (evbuffer_get_length(bufferevent_get_output(conn->bev)) > 0)
            return 0;
        if (conn->proto == HTTP_PROTO_H2 && !ig_http_h2_flushed(conn))
            return 0;
        if (conn->proto == HTTP_PROTO_H1 && !TAILQ_EMPTY(&conn->reqs))
            return 0;
    }
    return 1;
}

uint32_t ig_http_server_active_requests(const struct ig_http_server *srv)
{
    return srv->nactive;
}

struct ig_budget *ig_http_server_budget(struct ig_http_server *srv)
{
    return srv->budget;
}

uint32_t ig_http_server_connections(const struct ig_http_server *srv)
{
    return srv->nconns;
}

void ig_http_server_budget_stats(const struct ig_http_server *srv,
                                 struct ig_http_budget_stats *out)
{
    const struct http_conn *conn;

    memset(out, 0, sizeof(*out));
    out->held = ig_budget_held(srv->budget);
    out->cap = srv->max_body_held;
    out->refused = ig_budget_refused(srv->budget);
    out->conn_cap = srv->conn_cap;
    out->conn_refused = srv->share_refused_gone;
    out->stalls = srv->stalls;
    out->evicted = srv->evicted;
    TAILQ_FOREACH(conn, &srv->conns, link) {
        uint64_t h = ig_budget_held(conn->budget);

        if (h > out->conn_held_max)
            out->conn_held_max = h;
        out->conn_refused += ig_budget_refused(conn->budget);
    }
    TAILQ_FOREACH(conn, &srv->dead, link)
    out->conn_refused += ig_budget_refused(conn->budget);
}

uint64_t ig_http_server_buffered_body_bytes(const struct ig_http_server *srv)
{
    return srv->body_held;
}

void ig_http_server_free(struct ig_http_server *srv)
{
    struct http_conn *conn;
    struct ig_http_req *req;

    if (srv == NULL)
        return;
    if (srv->lst != NULL)
        evconnlistener_free(srv->lst);
    while ((conn = TAILQ_FIRST(&srv->conns)) != NULL) {
        TAILQ_REMOVE(&srv->conns, conn, link);
        conn_end_quietly(conn);
        conn_destroy(conn);
    }
    while ((conn = TAILQ_FIRST(&srv->dead)) != NULL) {
        TAILQ_REMOVE(&srv->dead, conn, link);
        conn_destroy(conn);
    }
    /* requests the gateway still holds outlive the server and its count */
    while ((req = TAILQ_FIRST(&srv->detached)) != NULL) {
        TAILQ_REMOVE(&srv->detached, req, link);
        req->detached = false;
        req->srv = NULL;
    }
    if (srv->ev_sweep != NULL)
        event_free(srv->ev_sweep);
    if (srv->ev_drain != NULL)
        event_free(srv->ev_drain);
    SSL_CTX_free(srv->ssl_ctx);
    for (size_t i = 0; i < srv->h2_nnames; i++) {
        free(srv->h2_names[i].orig);
        free(srv->h2_names[i].lower);
    }
    /* requests still held keep it (through their shares) until they go */
    ig_budget_unref(srv->budget);
    free(srv);
    ig_http_h2_cache_flush(); /* every session of this thread is gone */
}
