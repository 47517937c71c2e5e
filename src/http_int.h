/*
 * http_int.h - private to http_server.c, http_h1.c and http_h2.c.
 *
 * Ownership: the server owns its connections (srv->conns while open,
 * srv->dead between ig_http_conn_close() and the sweep that frees them); a
 * connection owns its requests (conn->reqs). A request handed to the gateway
 * (HTTP_REQ_DISPATCHED) is unlinked and freed by ig_http_respond(), by the
 * close path (after the close callback), or detached (req->conn = NULL) when
 * its connection goes away without a close callback set; a detached request
 * waits on srv->detached and is freed by the late ig_http_respond().
 *
 * Budgets (budget.h): the server owns the server-wide budget (srv->budget,
 * max_buffered_body_bytes), each connection its share (conn->budget, a
 * child of it, max_conn_buffered_bytes). Everything a
 * request holds - the request itself, its header block as it is decoded,
 * its body as bytes arrive (a declared Content-Length reserves nothing), an
 * h2 response waiting for the client's window - is req->mem bytes, charged
 * through one hold (req->hold) in HTTP_CHARGE_UNIT steps so that a small
 * request costs one charge and one release. Growth is charged before it is
 * allocated; a request that does not fit is answered 400
 * ThrottlingException through the same reject path as a 413. The hold
 * keeps a reference on the share, so a request that outlives its
 * connection (detached) keeps it alive. Bytes in the bufferevent are
 * charged to the share too: output the socket has not taken (h1 responses,
 * h2 frames up to HTTP_OUT_WATERMARK) as conn->out_hold, charged before it
 * is queued (ig_http_conn_out_charge: over the budgets, h2 generates no
 * more frames and h1 parses no further pipelined request until the socket
 * drains; a connection with nothing pending may still queue one frame or
 * one answer of up to HTTP_CHARGE_UNIT, so that nobody is locked out), and
 * input read but not processed yet (pipelined requests behind a busy one,
 * h2 input while the output is blocked) as conn->in_hold, charged after
 * each read (over the budgets: reading stops until the connection's own
 * processing frees it; a remainder under HTTP_CHARGE_UNIT never stops it,
 * so a protocol still being told can always finish). srv->body_held
 * counts request body storage alone (req->body_held, always
 * req->body.cap), for /metrics.
 *
 * Stalls: a request waiting on the client (body incomplete, or an h2
 * response held back) must move srv->min_rate bytes per srv->idle_us
 * period (more when it holds more: ig_http_req_rate_need), each on its own: req->rate_since_us is when its current period
 * began, req->rate_bytes what it moved in it; reaching min_rate starts a
 * new period. One slow stream is cut (h2 RST_STREAM, h1 408) without
 * keeping the others alive or being kept alive by them.
 *
 * Nothing that a libevent or nghttp2 callback may still be using is freed
 * in place: ig_http_conn_close() marks the connection dead, unhooks its
 * bufferevent and queues it; server_on_sweep frees it from a fresh event.
 */
#ifndef INFERGATE_HTTP_INT_H
#define INFERGATE_HTTP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <http_parser.h>

#include "infergate/budget.h"
#include "infergate/buf.h"
#include "infergate/http.h"

struct bufferevent;
struct event;
struct evconnlistener;
struct nghttp2_session;
struct ssl_ctx_st;

/* Output bytes pending in a bufferevent above which h2 stops generating
 * frames and h1 stops parsing further pipelined requests. */
#define HTTP_OUT_WATERMARK (1u << 20)
/* Input bytes buffered before libevent stops reading the socket. */
#define HTTP_READ_HIGH (256u << 10)
/* How long a closing connection may take to flush its last bytes and to see
 * the client's EOF (lingering close) before it is cut. */
#define HTTP_LINGER_US 2000000u
/* Drain: how long an HTTP/2 client has to answer the PING sent with the
 * shutdown notice before the final GOAWAY (last stream id) goes anyway. */
#define HTTP_H2_DRAIN_ACK_US 1000000u
/* Drain: a connection the drain waits on (a request not in yet, or output
 * not taken) that moves no byte either way for this long (or idle_us if
 * shorter) gets its end: 408 for a request not in, its stream reset or
 * the connection closed for output the client does not take. A client
 * cannot hold the drain to drain_timeout_ms by stalling. */
#define HTTP_DRAIN_STALL_US 1000000u
/* How often the drain looks at its connections. */
#define HTTP_DRAIN_TICK_US 100000u
/* After an early refusal (413, throttled, ... answered before the body
 * came), this many more body bytes are read and dropped (not buffered;
 * h2: flow-control windows are replenished as they go) so that the client
 * can finish sending and see the answer; beyond it h1 closes and h2 ends
 * the stream with RST_STREAM(NO_ERROR). */
#define HTTP_DISCARD_MAX(srv) ((srv)->max_body * 2 + (1u << 20))
/* The stall rule scales with what a request holds: besides min_rate, a
 * period must move 1/2^HTTP_STALL_SHIFT of the body bytes received (or
 * of the response bytes still to send), so that they are held for at
 * most about 2^HTTP_STALL_SHIFT periods at the rate they move (a header
 * block, at most max_header_list_size, is not counted: a small request's
 * bookkeeping must not raise the rate a tiny min_rate_bytes asks). At
 * min_rate alone, a 6 MiB body cost 4096 bytes per minute to keep: 16
 * connections of a few such bodies held a 1 GiB server budget for 12 KB/s
 * once uploaded. */
#define HTTP_STALL_SHIFT 4
/* At max_connections, a connection this long in its TLS handshake, its
 * first bytes or an h1 header block may be ended to admit a new one (an
 * idle one goes first, at any age). */
#define HTTP_EVICT_PREAMBLE_US 1000000u
/* Requests charge their budget in steps of this many bytes (one charge
 * covers a small request's header block, body and response). */
#define HTTP_CHARGE_UNIT 4096u
/* Header fields per request (a second cap beside the byte cap). */
#define HTTP_MAX_HEADERS 512u
/* Header fields (the resolved table: fields + a "host") kept inside the
 * request before its tables move to the heap. */
#define HTTP_REQ_LOCAL_HDRS 16u
/* HTTP/2 input bytes handed to nghttp2 at once, between back-pressure
 * checks (http_h2.c). */
#define HTTP_H2_RECV_PIECE 16384u
/* HTTP/2 initial windows: per stream and per connection. */
#define HTTP_H2_STREAM_WINDOW (1 << 20)
#define HTTP_H2_CONN_WINDOW (16 << 20)

enum http_proto {
    HTTP_PROTO_UNKNOWN = 0, /* cleartext, waiting for enough bytes to tell */
    HTTP_PROTO_TLS,         /* TLS handshake in progress */
    HTTP_PROTO_H1,
    HTTP_PROTO_H2,
};

enum http_conn_state {
    HTTP_CONN_OPEN = 0,
    HTTP_CONN_CLOSING, /* flushing a last response / GOAWAY, input discarded */
    HTTP_CONN_LINGER,  /* output flushed, waiting (bounded) for the client's EOF */
    HTTP_CONN_DEAD,    /* queued for the sweep; no I/O any more */
};

enum http_req_state {
    HTTP_REQ_HEADERS = 0, /* receiving the header block */
    HTTP_REQ_BODY,        /* receiving the body */
    HTTP_REQ_DISPATCHED,  /* handed to the gateway, awaiting ig_http_respond() */
    HTTP_REQ_ANSWERED,    /* h2: response submitted, DATA still being sent */
};

/* Why a request is answered by the module instead of the gateway. */
enum http_req_err {
    HTTP_REQ_ERR_NONE = 0,
    HTTP_REQ_ERR_BODY_TOOBIG,   /* 413 */
    HTTP_REQ_ERR_HEADER_TOOBIG, /* 431 */
    HTTP_REQ_ERR_NOMEM,         /* 503 */
    HTTP_REQ_ERR_BODY_FULL,     /* 400 ThrottlingException: a budget is spent (req->full_share:
                                   the connection's share, else the server's) */
    HTTP_REQ_ERR_STREAM_REFUSED, /* h2: a stream the gateway answered (refused) before its
                                    body ended: the rest is dropped as after a refusal */
};

struct http_hdr_off {
    uint32_t name; /* offsets into req->hbuf.data */
    uint32_t value;
};

struct http_conn;

struct ig_http_req {
    struct http_conn *conn;     /* NULL once detached */
    struct ig_http_server *srv; /* for the body count; NULL once the server is freed */
    TAILQ_ENTRY(ig_http_req) link; /* conn->reqs, or srv->detached once detached */
    enum http_req_state state;
    enum http_req_err err;
    bool h2;
    bool keep_alive;   /* h1: the client allows another request after this one */
    bool http10;       /* h1: the request said HTTP/1.0 */
    bool head;         /* HEAD: the response has no body */
    bool detached;     /* on srv->detached */
    uint8_t h1_last;   /* h1 parser: which kind of callback came last (http_h1.c) */
    int32_t stream_id; /* h2 */
    uint64_t start_us;
    uint64_t declared_len; /* Content-Length, valid when has_declared_len */
    bool has_declared_len;
    char id[37];
    const char *method; /* static (h1) or into hbuf (h2), set when headers end */
    const char *path;   /* into hbuf or static "/" */
    /* Header block: NUL-terminated names and values back to back; offsets
     * in hoff, resolved into hdrs when the block ends (hbuf no longer grows). */
    struct ig_buf hbuf;
    struct http_hdr_off *hoff; /* hoff_local until more fields come */
    size_t nhdr, hoff_cap;
    struct ig_http_hdr *hdrs; /* hdrs_local when the block has few enough fields */
    /* A typical request's field offsets and resolved table live in the
     * request itself (in sizeof(*req), so in req->mem): neither is an
     * allocation of its own. */
    struct http_hdr_off hoff_local[HTTP_REQ_LOCAL_HDRS];
    struct ig_http_hdr hdrs_local[HTTP_REQ_LOCAL_HDRS];
    /* The first letters of the names in hdrs (bit c - 'a', case-folded;
     * bit 26 for any other first byte): a lookup of a name none starts
     * with (most X-Amzn-* ones) answers NULL without a scan. */
    uint32_t hfirst;
    size_t hdr_bytes;      /* names + values (+ target) seen, against the cap */
    int64_t url_off;       /* h1 target / h2 :path in hbuf; -1 none */
    int64_t method_off;    /* h2 :method */
    int64_t authority_off; /* h2 :authority */
    struct ig_buf body;
    size_t body_held; /* body.cap as last counted in srv->body_held */
    struct ig_budget_hold hold; /* req->mem rounded up to HTTP_CHARGE_UNIT */
    uint64_t mem;               /* bytes this request holds: itself, hbuf, hoff, hdrs, body,
                                   h2 response */
    bool full_share;            /* BODY_FULL: the connection's share refused (not the server's) */
    uint64_t rate_since_us;     /* stall rule: when the current period began */
    uint64_t rate_bytes;        /* stall rule: bytes moved in it */
    uint64_t discarded; /* h2: body bytes dropped after an early refusal */
    ig_http_close_cb *close_cb;
    void *close_arg;
    /* h2 response body being sent (owned) */
    char *resp_body;
    size_t resp_len, resp_off;
    /* A duplex stream (http.h, ig_http_stream_*): the body goes to on_body
     * as it arrives, the response out as the gateway writes it. */
    bool stream;          /* picked as a stream at the end of its header block */
    bool stream_open;     /* the gateway took it (ig_http_stream_open) */
    bool stream_in_end;   /* the body ended (delivered to on_body) */
    bool stream_head;     /* the response head is out */
    bool stream_out_end;  /* h2: END_STREAM goes after sout */
    bool stream_reset;    /* h2: RST_STREAM(INTERNAL_ERROR) goes after sout */
    bool stream_writable; /* the gateway waits for unsent <= IG_HTTP_STREAM_LOW */
    bool stream_busy;     /* the gateway holds the client's input back (not waiting on it) */
    uint64_t stream_held; /* body bytes delivered and not consumed */
    uint64_t stream_in;   /* body bytes delivered, all told */
    uint64_t stream_out;  /* response bytes written, all told */
    struct evbuffer *sout; /* h2: response bytes not framed yet */
    uint64_t sout_mem;     /* what of req->mem is sout's */
    ig_http_body_cb *on_body;
    ig_http_writable_cb *on_writable;
    void *stream_arg;
};

TAILQ_HEAD(http_req_list, ig_http_req);

struct http_conn {
    struct ig_http_server *srv;
    TAILQ_ENTRY(http_conn) link; /* srv->conns, or srv->dead once DEAD */
    struct bufferevent *bev;
    struct event *ev_timer; /* the one deadline: idle, header, closing or linger */
    struct event *ev_kick;  /* run conn processing later in this loop turn */
    enum http_proto proto;
    enum http_conn_state state;
    bool tls;
    bool eof;      /* the client closed its side */
    bool h1_close; /* h1: close after the current response */
    bool h1_discard; /* h1: the parser reads a refused request's body to drop it */
    int h2_drain;  /* 0 none, 1 shutdown notice + PING sent, 2 final GOAWAY sent */
    uint64_t drain_progress_us; /* drain: when bytes last moved either way */
    bool drain_watch;           /* drain: the evbuffer callbacks that note it are on */
    uint64_t accepted_us;
    uint64_t first_byte_us;     /* UNKNOWN: when the first byte came; 0 none */
    uint64_t idle_since_us;     /* when conn->reqs last became empty */
    uint64_t last_read_us;      /* when bytes last came in */
    /* h2: while the output is blocked on the socket (h2_out_blocked), the
     * socket moving min_rate bytes in a period (drain_bytes) starts a new
     * period here for every response waiting behind it: those streams
     * wait on the socket, not on their own windows. */
    uint64_t stall_progress_us;
    bool h2_out_blocked; /* h2: output hit HTTP_OUT_WATERMARK or the budgets; drains count
                            as progress; no input is fed to nghttp2 until it is empty */
    uint64_t close_deadline_us; /* CLOSING / LINGER */
    uint64_t deadline_us;       /* what ev_timer is armed for; 0 = not armed */
    struct http_req_list reqs;  /* h1: at most one */
    struct ig_budget *budget;   /* this connection's share (child of srv->budget) */
    /* Bytes the bufferevent holds for this connection, charged to its share
     * (ig_http_conn_out_charge, conn_out_recount, conn_in_recount in
     * http_server.c): output the socket has not taken (h1 responses, h2
     * frames), input read and not processed yet. */
    struct ig_budget_hold out_hold;
    struct ig_budget_hold in_hold;
    bool out_full; /* h1: an answer went out over the budgets: parse no further
                      request until the socket has taken it */
    bool in_full;  /* input over the budgets: reading is off until it fits */
    bool late_read; /* an idle or header timeout put off once: bytes were waiting */
    size_t in_seen; /* input left unprocessed after the last conn_process() */
    uint64_t drain_bytes;       /* h2: bytes the socket took while blocked, this period */
    char peer[64];
    uint64_t app_mark; /* the application's (ig_http_req_conn_mark), 0 at accept */
    uint64_t peer_key; /* ig_http_req_peer_key */
    http_parser parser;
    struct nghttp2_session *h2;
    /* h2: the request whose header block is being received (set by
     * on_begin_headers), so that each field's callback skips nghttp2's
     * stream lookup; cleared when that stream closes, the request is
     * forgotten (ig_http_h2_forget) or freed. */
    struct ig_http_req *h2_hdr_req;
    int32_t h2_hdr_sid;
};

TAILQ_HEAD(http_conn_list, http_conn);

/* A response header name of the application's, lower-cased for HTTP/2 and
 * kept for the server's life (http_h2.c, h2_name). */
struct http_h2_name {
    char *orig;  /* as the application spells it */
    char *lower; /* handed to nghttp2 without a copy */
    size_t len;
};
#define HTTP_H2_NAMES_MAX 32

struct ig_http_server {
    struct event_base *base;
    struct http_h2_name h2_names[HTTP_H2_NAMES_MAX];
    size_t h2_nnames;
    struct evconnlistener *lst;
    struct ssl_ctx_st *ssl_ctx; /* NULL: cleartext */
    ig_http_request_cb *on_request;
    ig_http_stream_pick_cb *pick; /* NULL: no request is a stream */
    void *arg;
    uint32_t max_connections;
    uint32_t max_streams;
    uint32_t max_header_bytes;
    uint64_t max_body;
    uint64_t max_body_held; /* srv->budget's cap */
    struct ig_budget *budget; /* server-wide budget (max_buffered_body_bytes) */
    uint64_t conn_cap;        /* each connection's share */
    uint64_t min_rate;        /* stall rule: bytes per idle_us period */
    uint64_t share_refused_gone; /* refusals counted by shares of freed connections */
    uint64_t stalls;          /* requests cut by the stall rule */
    uint64_t evicted;         /* idle connections ended to admit a new one (max_connections) */
    uint64_t body_held;     /* bytes of request-body storage allocated, all requests */
    uint64_t idle_us;   /* 0 = never */
    uint64_t header_us; /* 0 = never */
    uint16_t port;
    bool draining;
    uint32_t nconns;  /* conns + dead */
    uint32_t nactive; /* requests in HTTP_REQ_DISPATCHED */
    struct http_conn_list conns, dead;
    struct http_req_list detached; /* dispatched requests whose connection went away */
    struct event *ev_sweep;
    struct event *ev_drain; /* drain: late final GOAWAYs, stalled clients */
    uint64_t drain_since_us;
    int64_t date_sec; /* second cached in date */
    char date[40];    /* IMF-fixdate */
};

/* --- http_server.c: requests --- */

/* A fresh request on <conn> (appended to conn->reqs), HEADERS state. */
struct ig_http_req *ig_http_req_new(struct http_conn *conn);
/* Unlink <req> from its connection (if any) and free it with its buffers. */
void ig_http_req_free(struct ig_http_req *req);
/* The peer is gone for <req> (stream closed or connection lost): a request
 * the gateway holds gets its close callback and is freed, or, without one,
 * is detached (onto srv->detached) and waits for the gateway's
 * ig_http_respond(); any other is freed. */
void ig_http_req_gone(struct ig_http_req *req);

/*
 * Building the header block. Every function returns 0, IG_ERR_TOOBIG (a cap
 * was hit: the caller answers 431), IG_ERR_FULL (a budget is spent: 400
 * ThrottlingException, HTTP_REQ_ERR_BODY_FULL) or IG_ERR_NOMEM. Growth of
 * the block is charged before it is allocated. Bytes appended with
 * ig_http_req_hdr_append() count against max_header_bytes; separators do not.
 *   _field: a new field starts (its name is appended next)
 *   _value: the name ended, its value is appended next
 *   _sep:   end the current string (value or h1 target)
 */
/* <req> now holds <mem> bytes (growth charged in HTTP_CHARGE_UNIT steps,
 * shrinkage released): 0, or IG_ERR_FULL (nothing changed). */
int ig_http_req_mem_set(struct ig_http_req *req, uint64_t mem);
/* Record in req->err why one of these failed (<rv> != 0): 431, throttled or
 * 503, as h1 and h2 answer it. */
void ig_http_req_hdr_fail(struct ig_http_req *req, int rv);
int ig_http_req_hdr_append(struct ig_http_req *req, const char *p, size_t n);
int ig_http_req_hdr_field(struct ig_http_req *req);
int ig_http_req_hdr_value(struct ig_http_req *req);
int ig_http_req_hdr_sep(struct ig_http_req *req);
/* A whole field at once (h2). */
int ig_http_req_add_header(struct ig_http_req *req, const char *name, size_t nlen,
                           const char *value, size_t vlen);
/* A pseudo-header (h2): the value is stored (not listed among the headers)
 * and its offset saved in *<off> when <off> is non-NULL and still -1. */
int ig_http_req_add_pseudo(struct ig_http_req *req, const char *name, size_t nlen,
                           const char *value, size_t vlen, int64_t *off);
/* Resolve offsets into req->hdrs, method (h2), head (h2) and path once the
 * block is complete. 0 or IG_ERR_NOMEM. */
int ig_http_req_end_headers(struct ig_http_req *req);
/*
 * The header block ended (state HTTP_REQ_BODY): the body's stall period
 * starts; a declared Content-Length is checked against max_body_bytes and
 * caps the body buffer, but reserves nothing (storage grows as bytes
 * arrive). A request already refused (req->err set while its header block
 * was built) fails here too. On failure req->err is set
 * (HTTP_REQ_ERR_BODY_TOOBIG, _BODY_FULL or _NOMEM) for
 * ig_http_req_reject(). 0, IG_ERR_TOOBIG, IG_ERR_FULL, IG_ERR_NOMEM.
 */
int ig_http_req_begin_body(struct ig_http_req *req);
/* Append received body bytes (stall progress); growth (doubling, up to the
 * declared length) is charged to the budgets before it is allocated. On
 * failure req->err is set as by ig_http_req_begin_body(). 0,
 * IG_ERR_TOOBIG (413), IG_ERR_FULL (throttled), IG_ERR_NOMEM. */
int ig_http_req_add_body(struct ig_http_req *req, const char *data, size_t len);
/* Free the body storage and take it off the server's count and the
 * request's charge (idempotent; ig_http_req_body() then gives ""). */
void ig_http_req_drop_body(struct ig_http_req *req);
/* The stall rule (see the top): <req> starts waiting on the client (a new
 * period begins); <n> more bytes moved for it (a body received, response
 * DATA sent); when it must have moved min_rate bytes by (0: it does not
 * wait on the client now: headers, dispatched). */
void ig_http_req_wait(struct ig_http_req *req);
void ig_http_req_progress(struct ig_http_req *req, size_t n);
/* What <req> must move in one period: min_rate, or more when it holds
 * more than 2^HTTP_STALL_SHIFT times that (see HTTP_STALL_SHIFT). */
uint64_t ig_http_req_rate_need(const struct ig_http_req *req, uint64_t min_rate);
uint64_t ig_http_req_stall_deadline(const struct ig_http_req *req);
/* Hand <req> to the gateway. */
void ig_http_req_dispatch(struct ig_http_req *req);
/* The access-log line (warn: it is an error) for an answer the module
 * sends itself, or status 0 for a stream it resets with no answer. */
void ig_http_req_log_refusal(const struct ig_http_req *req, int status, const char *type);
/* Drain: <req>'s client moved no byte for <bound_us> before its request
 * was in: 408, with its access-log line (h1 and h2 alike). */
void ig_http_req_drain_timeout(struct ig_http_req *req, uint64_t bound_us);
/* Answer a request the module rejects (413, 431, 400 throttled, 503 per
 * req->err). */
void ig_http_req_reject(struct ig_http_req *req);

/* --- http_server.c: connections --- */

/* Mark <conn> dead and queue it for the sweep (idempotent). */
void ig_http_conn_close(struct http_conn *conn);
/* Flush what is queued, then close (lingering close). */
void ig_http_conn_finish(struct http_conn *conn);
/* Run conn processing later in this loop turn. */
void ig_http_conn_kick(struct http_conn *conn);
/* The bufferevent's output is about to hold <want> bytes the socket has not
 * taken: charge conn->out_hold up to them (in HTTP_CHARGE_UNIT steps; a
 * hold already that large costs nothing). 0, or IG_ERR_FULL (the hold is
 * left as it was). Released as the socket takes the bytes (conn_process). */
int ig_http_conn_out_charge(struct http_conn *conn, uint64_t want);
/* 1 when client bytes wait to be processed: read into the bufferevent, or
 * still in the socket (the drain must not close on a request's first
 * bytes). */
int ig_http_conn_input_waiting(const struct http_conn *conn);
/* The cached Date header value. */
const char *ig_http_server_date(struct ig_http_server *srv);
/* Reason phrase for <status>. */
const char *ig_http_status_reason(int status);
/* 1 when <name> (of <len> bytes) is a header the module writes itself or a
 * hop-by-hop one (content-length, connection, ...). */
int ig_http_hdr_reserved(const char *name, size_t len);

/* --- http_stream.c --- */

/* At the end of <req>'s header block (not refused): ask the gateway
 * whether it is a stream (req->stream). */
bool ig_http_stream_pick(struct ig_http_req *req);
/* <len> body bytes of the stream <req> arrived. */
void ig_http_stream_input(struct ig_http_req *req, const char *data, size_t len);
/* The body of the stream <req> ended. */
void ig_http_stream_input_end(struct ig_http_req *req);
/* Output of <conn> moved: writable notices due go out. */
void ig_http_stream_notify(struct http_conn *conn);
/* Response bytes of <req> still to send (h2: resp_body and sout). */
size_t ig_http_req_resp_left(const struct ig_http_req *req);
/* <req> is freed: body bytes still held go back to the connection's
 * flow control (h2), its output buffer goes. */
void ig_http_stream_release(struct ig_http_req *req);
/* h2 parts (http_h2.c) */
void ig_http_h2_stream_consume(struct ig_http_req *req, size_t n);
void ig_http_h2_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                            size_t nhdrs);
void ig_http_h2_stream_resume(struct ig_http_req *req);
void ig_http_h2_stream_rst(struct ig_http_req *req);
/* h1 parts (http_h1.c) */
void ig_http_h1_stream_head(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                            size_t nhdrs);
int ig_http_h1_stream_write(struct ig_http_req *req, const char *data, size_t len);
void ig_http_h1_stream_end(struct ig_http_req *req, bool reset);

/* --- http_h1.c --- */

void ig_http_h1_start(struct http_conn *conn);
/* Parse buffered input and dispatch requests while allowed. */
void ig_http_h1_process(struct http_conn *conn);
/* 1 while a request waits for the gateway's response. */
int ig_http_h1_busy(const struct http_conn *conn);
/* The header deadline passed (<headers>) or the body stalled: 408 and
 * close. */
void ig_http_h1_on_stall(struct http_conn *conn, bool headers);
/* Write the response (ig_http_respond after the common checks). */
void ig_http_h1_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                        size_t nhdrs, char *body, size_t len);
/* stop_accepting: close when nothing of a request was read; otherwise
 * answer every request whose first byte was read, the last one with
 * "Connection: close", then close. */
void ig_http_h1_drain(struct http_conn *conn);
/* Drain: 1 when a request was started on <conn> and not dispatched yet
 * (bytes being parsed, or read and waiting behind the current one). */
int ig_http_h1_pending(const struct http_conn *conn);

/* --- http_h2.c --- */

/* Create the nghttp2 session and queue our SETTINGS. 0 or IG_ERR_NOMEM
 * (the caller closes the connection). */
int ig_http_h2_start(struct http_conn *conn);
/* Give the freed nghttp2 blocks the calling thread keeps for reuse back to
 * malloc (http_h2.c; ig_http_server_free calls it). */
void ig_http_h2_cache_flush(void);
/* Feed buffered input to nghttp2, then send what it has. */
void ig_http_h2_process(struct http_conn *conn);
/* CLOSING: write what nghttp2 still has; 1 when nothing more is to come. */
int ig_http_h2_flush(struct http_conn *conn);
/* Idle or header deadline passed: GOAWAY and close. */
void ig_http_h2_on_timeout(struct http_conn *conn);
/* A stall deadline passed (ig_http_req_stall_deadline: a stream waiting on
 * the client moved less than min_rate in idle_us): when those streams are
 * all the connection has, GOAWAY(NO_ERROR) and close; otherwise
 * RST_STREAM(CANCEL) them alone and keep serving the others. */
void ig_http_h2_on_stall(struct http_conn *conn);
void ig_http_h2_respond(struct ig_http_req *req, int status, const struct ig_http_hdr *hdrs,
                        size_t nhdrs, char *body, size_t len);
/* stop_accepting: shutdown notice + PING now, final GOAWAY on the PING ack
 * (or from ig_http_h2_drain_goaway() when the ack is late). */
void ig_http_h2_drain(struct http_conn *conn);
/* Submit the final GOAWAY (last processed stream id) now if the drain's
 * PING has not been acked; 1 when one was submitted. */
int ig_http_h2_drain_goaway(struct http_conn *conn);
/* The server is being freed: queue the final GOAWAY if none was, and
 * hand nghttp2's queued frames to the bufferevent. */
void ig_http_h2_last_words(struct http_conn *conn);
/* Drain: the client of <conn> moved nothing for <bound_us>: streams it
 * holds up get their end (408 for a body not in, RST_STREAM(CANCEL) for a
 * response it does not take); a header block cut short, or nothing to
 * answer while output is stuck: the connection goes. */
void ig_http_h2_drain_stall(struct http_conn *conn, uint64_t bound_us);
/* Drain: streams started and not dispatched yet (header block or body
 * still arriving, not refused). */
uint32_t ig_http_h2_pending(const struct http_conn *conn);
/* Drain: 1 when the final GOAWAY is submitted and nghttp2 has nothing
 * more to send (no frame queued, no response DATA left). */
int ig_http_h2_flushed(const struct http_conn *conn);
/* Forget <req> in the session's stream table (req is being freed). */
void ig_http_h2_forget(struct ig_http_req *req);
/* Delete the session (no callbacks run). */
void ig_http_h2_free(struct http_conn *conn);

#endif /* INFERGATE_HTTP_INT_H */
