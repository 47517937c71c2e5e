/*
 * gateway_int.h - private to gateway.c and transform.c: the gateway's
 * endpoints, lanes and requests, and the few steps of a request's life
 * that the streaming transform (transform.c) shares with InvokeEndpoint.
 */
#ifndef INFERGATE_GATEWAY_INT_H
#define INFERGATE_GATEWAY_INT_H

/* Error types the gateway answers with (gw_errors in gateway.c). */
#define GW_ERROR_TYPES 9

#include <stdint.h>

#include "infergate/batcher.h"
#include "infergate/buf.h"
#include "infergate/codec.h"
#include "infergate/config.h"
#include "infergate/gateway.h"
#include "infergate/metrics.h"
#include "infergate/upstream.h"

struct event;
struct event_base;
struct ig_http_req;
struct ig_http_server;
struct ig_workers;
struct gw_tstream;
struct ts_chunk;

#define GW_ACCOUNT "000000000000"
#define GW_RESPONSE_MAX ((size_t)64 << 20)
#define GW_DRAIN_POLL_US 10000
/* SageMaker's region in the LogStreamArn of ModelError bodies: the gateway
 * is no AWS region, so it names the one every SDK defaults to. */
#define GW_REGION "us-east-1"
/* Bodies up to this size are decoded inline on the loop thread (a 64 KiB
 * body decodes in well under a millisecond, and a worker round trip would
 * cost more than the decode); bigger ones go to the decoder pool, so that a
 * 6 MiB body (tens to hundreds of milliseconds, seconds for a hostile one)
 * never stalls the other connections. */
#define GW_DECODE_INLINE_MAX ((size_t)64 << 10)
/* Bodies waiting for or in a decoder at once; more get ThrottlingException.
 * Their bytes are already held (and capped) by the HTTP layer; this bounds
 * the queue of decode jobs itself. The waiting ones are served one
 * connection at a time in turn (struct gw_flow), and at the cap a body of a
 * connection with fewer waiting takes the place of the newest body of the
 * connection with the most (gw_decode_admit): one client cannot keep the
 * others' big bodies out. */
#define GW_DECODE_QUEUE_MAX 64
/* Requests whose rows, features and predictions take this much are freed
 * on a model worker (short jobs, unlike decodes, so the memory goes back
 * soon); at most GW_FREE_QUEUE_MAX wait (more: freed inline), in slots of
 * their own in the workers' queue, never in the batches' slots. */
#define GW_FREE_OFFLOAD_MIN ((size_t)1 << 20)
#define GW_FREE_QUEUE_MAX 64
/* Decoder threads run this much nicer than the loop: with few cores, the
 * loop thread then wins the CPU whenever it wakes, and a stream of 6 MiB
 * bodies costs the other connections no latency (load/bench-loop-stall.sh). */
#define GW_DECODE_NICE 10
/* Model workers run a little nicer than the loop too: the loop does the
 * I/O of every client and the completions of every batch in short bursts,
 * and must not wait out a worker's time slice to do them. */
#define GW_MODEL_NICE 5

struct gw_endpoint;
struct gw_decode_job;

/* The bodies one connection has waiting for a decoder, in arrival order:
 * decoders serve the connections in turn, so that one client's flood of
 * big bodies delays another client's body by one decode per connection,
 * not by the whole queue. */
struct gw_flow {
    const void *key; /* the connection's share of the budget (one per connection) */
    struct gw_decode_job *head, *tail;
    uint32_t n;
};

/* One batcher and its flush timer: rows of one endpoint for one Accept,
 * and, for an upstream that takes rows as bytes, one Content-Type (a
 * call's rows are all in one format). A remote model has a second set of
 * lanes, the solo lanes (index GW_NLANES_PLAIN and up, same order): a
 * request whose rows go in calls of their own (forwarded headers, a row
 * holding a line break) waits there, a batch each, flushed at once, so
 * that it takes turns for the in-flight slots with the other lanes
 * instead of packing hundreds of calls into a batch that the requests
 * batched with it, and the lanes behind it, wait for. */
#define GW_NLANES_PLAIN (IG_FMT_COUNT * IG_FMT_COUNT)
#define GW_NLANES (3 * GW_NLANES_PLAIN)
/* And a third set, the suspect lanes (index 2 * GW_NLANES_PLAIN and up),
 * batched as the plain ones: a connection one of whose requests a remote
 * model refused (4xx) or raised on (500) sends its requests there for
 * GW_SUSPECT_US (renewed by each such request), so that its next bad row
 * splits a batch of suspects' rows, not one of other clients' (up to
 * 2*log2(n) more calls, and the wait of every request in the batch), and
 * the other clients sharing its connection (a proxy's) are still batched. */
#define GW_SUSPECT_US (10 * 1000000ULL)
/* Its peer too (ig_http_req_peer_key: an IPv4 address, an IPv6 /63), so
 * that a client that opens a new connection for each bad row is still
 * batched apart: GW_PEER_MARKS slots (a power of two), a peer's among
 * GW_PEER_PROBE of them; a new peer takes the slot whose mark ends first. */
#define GW_PEER_MARKS 1024
#define GW_PEER_PROBE 8
struct gw_peer_mark {
    uint64_t key; /* 0: free */
    uint64_t until_us;
};
/* Per peer, its requests in flight (their rows in a batch sent) and when
 * a batch last took one of them, so that when several lanes are due and
 * slots of max_inflight are few, the lane whose oldest request's peer has
 * the fewest in flight, then was served longest ago, goes first: a client
 * that keeps requests waiting on many lanes (each Content-Type x Accept
 * pair is one) does not take a slot per lane ahead of another client's
 * request. GW_PEER_LOADS slots (a power of two), a peer's among
 * GW_PEER_PROBE; the peers that find none share one more slot
 * (gw->peer_overflow), as clients behind one proxy share their address's:
 * past the table, a newcomer is served in turn with the others there, not
 * read as never served ahead of every client already counted. */
#define GW_PEER_LOADS 1024
/* Batches set aside from max_inflight when split (on_batch_split), at
 * most this many times max_inflight per endpoint. */
#define GW_ASIDE_FACTOR 4
struct gw_peer_load {
    uint64_t key;     /* 0: never used; a slot with n 0 and none queued may be taken */
    uint64_t last_us; /* a batch last took one of its requests */
    uint32_t n;
    /* Its requests waiting on a lane (rows not all in batches yet), in the
     * order they were queued (gw_request.qprev, qnext): the first is
     * hoisted ahead of the other peers' later ones on its lane
     * (ig_batcher_hoist); when it leaves, the next is. */
    struct gw_request *qhead, *qtail;
};
struct gw_lane {
    struct gw_endpoint *ep;
    enum ig_format ctype; /* the rows' format (bytes upstreams; else any) */
    enum ig_format accept;
    struct ig_batcher *batcher;
    struct event *timer;
    uint64_t timer_at; /* UINT64_MAX when not armed */
};

struct gw_endpoint {
    struct ig_gateway *gw;
    const struct ig_endpoint_conf *conf;
    /* Endpoints of the admin API (ig_gateway_serve): one gw_endpoint per
     * production variant, all with conf->name the endpoint's name. Replaced
     * or removed ones are retired: no new request is routed to them, and
     * they are freed once no request, stream or batch holds them. */
    struct ig_endpoint_conf *own_conf; /* admin: <conf>, owned */
    double weight;                     /* admin: the variant's share of traffic */
    uint32_t refs;                     /* requests and streams routed to it, not freed yet */
    uint8_t admin;
    uint8_t retired;
    struct event *reap_ev; /* retired: frees it once nothing holds it */
    uint32_t name_hash; /* of conf->name (gw_endpoint_find) */
    size_t name_len;
    char label[160]; /* metric labels: endpoint="NAME" (admin: ,variant="V") */
    struct ig_upstream *up;
    enum ig_format default_ctype;
    enum ig_format default_accept;
    /* Remote models with upstream_content_type / upstream_accept: the
     * formats of the calls (rows and answers converted, convert.h); -1:
     * the client's. */
    int up_ctype, up_accept;
    struct gw_lane lanes[GW_NLANES]; /* [set * GW_NLANES_PLAIN + ctype * IG_FMT_COUNT + accept],
                                        set 0 plain, 1 solo, 2 suspect */
    uint32_t queued_rows;            /* the rows all lanes hold (ig_batcher_set_group) */
    /* Deadlines: every request of an endpoint has the same
     * request_timeout_ms, so arrival order is deadline order. The requests
     * waiting for theirs form a FIFO, and one timer per endpoint is armed at
     * (or before) the head's deadline: O(1) per request, and no limit on the
     * number of distinct timeouts (libevent's common timeouts stop at 256,
     * and past that a deadline silently never fired). The timer is re-armed
     * lazily: an answered head leaves it armed for its old deadline, and the
     * firing re-arms it for the new head. */
    struct gw_request *dl_head, *dl_tail;
    struct event *dl_timer;
    uint64_t dl_timer_at; /* UINT64_MAX when not armed */
    uint64_t timeout_us;

    /* max_inflight and max_queue_rows hold for the endpoint as a whole,
     * across its lanes: the gateway counts batches in flight here and sums
     * the lanes' queues before it queues a request. */
    uint32_t inflight;
    /* Batches out that no longer count in inflight: their rows were split
     * (on_batch_split). At most GW_ASIDE_FACTOR x max_inflight. */
    uint32_t aside;
    struct event *pump_ev; /* the pump after a batch went aside */
    /* Batches in flight whose last waiting request was answered early
     * (on_seg_done) while the others had gone: cancelled from the loop
     * (orphan_ev), never from inside the upstream that answered it. At
     * most one entry a batch in flight. */
    struct ig_batch **orphans;
    uint32_t norphans, orphans_cap;
    struct event *orphan_ev;

    struct gw_tstream *streams; /* transform streams on this endpoint (transform.c) */
    uint32_t streams_blocked;   /* of them, waiting for room in the queue */
    uint32_t streams_open;
    uint64_t streams_total, stream_records, stream_errors; /* metrics */

    /* metrics */
    uint64_t requests;
    uint64_t rows;
    uint64_t batches[IG_FLUSH_REASON_COUNT];
    struct ig_hist batch_rows;
    struct ig_hist upstream_seconds;
    struct ig_hist request_seconds;
};

/* A converted request body is at most this many times the body's size
 * plus GW_CONVERT_SLACK, and at most GW_CONVERT_MAX bytes; what it may
 * take is charged before it is written. Dense rows stay within it (the
 * widest case, RecordIO float32 to text, is under 4x); sparse rows written
 * densely past it are refused with a message naming the size. */
#define GW_CONVERT_FACTOR 4u
#define GW_CONVERT_SLACK ((size_t)64 << 10)
#define GW_CONVERT_MAX ((size_t)64 << 20)
/* Answers of a unary request converted on the loop up to this many bytes;
 * more on a decoder thread. */
#define GW_CONVERT_INLINE_MAX ((size_t)256 << 10)

struct gw_request {
    struct ig_gateway *gw;
    struct ig_http_req *http; /* NULL once answered or gone */
    uint64_t peer_key;        /* its client's (ig_http_req_peer_key), 0: none */
    uint32_t loads;           /* its segments in flight counted in gw->peer_loads */
    struct gw_peer_load *load; /* their slot there, while loads > 0 or queued */
    struct gw_request *qprev, *qnext; /* its peer's requests queued (load->qhead), while queued */
    struct gw_lane *lane;
    struct ig_rowset rs;
    struct ig_pred *preds; /* rs.nrows, once the rows span batches; filled as they finish */
    struct ig_buf out;     /* the predictions' bytes */
    /* What <preds> and <out> have allocated, charged to the server-wide
     * budget (the share's parent) before they grow: a 6 MiB body of short
     * rows gathers 24 MiB of slices and up to GW_RESPONSE_MAX of text, more
     * than its body and rows, which its connection's share already holds. */
    struct ig_budget_hold hold;
    uint32_t rows_done;
    uint32_t rows_taken;               /* rows handed to batches so far */
    struct ig_batcher_entry *entry;    /* valid while rows_taken < rs.nrows */
    /* Batches in flight that hold its rows (one entry per segment): when
     * the client goes, each loses a live segment, and a batch no request
     * waits for any more is cancelled upstream. At most max_inflight. */
    struct ig_batch **inb;
    uint32_t ninb, capinb;
    uint32_t refs;
    struct gw_request *dl_prev, *dl_next; /* on ep's deadline FIFO while dl_linked */
    uint64_t deadline_us;
    uint64_t start_us;
    /* For the access log: the request's batches (gateway-wide ids) and when
     * its rows were queued, first and last flushed. */
    uint64_t batch_first, batch_last;
    uint64_t enqueue_us, first_flush_us, last_flush_us;
    /* Remote models: the headers forwarded with the rows (pointing into
     * the http request's), and what the model answered back (owned). */
    struct ig_passthrough pass;
    char *attrs_back, *variant_back;
    /* A chunk of a streaming transform (transform.c): its answer goes to
     * the chunk, not to an HTTP response; <own_body> is the chunk's rows'
     * bytes, owned here so that they live as long as any batch holds them. */
    struct ts_chunk *chunk;
    char *own_body, *own_aux; /* aux: the lines as sent when the rows are filtered */
    /* Rows converted to the model's format (upstream_content_type): the
     * converted bytes, which rs indexes, and their charge to the budget. */
    char *conv_body;
    struct ig_budget_hold conv_hold;
    uint8_t accept; /* the client's format (the lane's is the model's) */
    /* A chunk's failed rows: how each is answered (ig_row_fail), the
     * batch's own when its rows came in one batch (fails_view), else
     * gathered (row_fails, rs.nrows, allocated at the first one). */
    const struct ig_row_fail *fails_view;
    struct ig_row_fail *row_fails;
    uint8_t dl_linked;
    uint8_t stream;   /* InvokeEndpointWithResponseStream: the answer as events */
    uint8_t decoding; /* the body is on a decoder: rs belongs to the worker */
    uint8_t expired;  /* the deadline passed while decoding: answer when it is back */
    uint8_t breaks;   /* a row holds a line break in the model's format (gw_rows_break) */
    uint8_t queued;   /* on its peer's list of requests waiting (gw_peer_load.qhead) */
};

struct ig_gateway {
    struct event_base *base;
    const struct ig_config *cfg;
    struct ig_workers *workers;
    struct ig_workers *decoders; /* a pool of its own: a slow body never delays a batch */
    uint32_t decoding;           /* bodies on the decoders, <= GW_DECODE_QUEUE_MAX */
    uint32_t decode_running;     /* of them, handed to a decoder thread */
    uint32_t decode_threads;     /* at most this many running at once */
    struct gw_flow flows[GW_DECODE_QUEUE_MAX]; /* the others, by connection */
    uint32_t nflows;
    uint32_t flow_next; /* the flow whose turn is next */
    uint32_t freeing;            /* requests being freed on workers, <= GW_FREE_QUEUE_MAX */
    int closing;                 /* ig_gateway_free runs: late completions only release */
    struct ig_http_server *http;
    struct gw_endpoint **eps; /* config-file endpoints first, then the admin API's */
    size_t neps, capeps;
    uint64_t rng; /* weighted choice of a variant */
    struct ig_gateway_hooks hooks; /* the admin module's (ig_gateway_set_hooks) */
    int draining;
    int drained;
    struct event *drain_poll;
    uint64_t drain_deadline_us;
    /* Draining: transform streams still sending take input until this
     * (half of drain_timeout_ms), then end once their rows are answered. */
    uint64_t stream_cut_us;
    uint64_t answered;       /* responses handed to the HTTP layer, all time */
    uint64_t batch_seq;      /* the last batch id given, gateway-wide (access log) */
    uint64_t drain_answered; /* <answered> when the drain began */
    struct gw_peer_mark *peer_marks; /* GW_PEER_MARKS, allocated at the first mark */
    uint64_t peer_marks_until;       /* no mark lasts past this: nothing to look up */
    struct gw_peer_load *peer_loads; /* GW_PEER_LOADS, allocated at the first batch */
    struct gw_peer_load peer_overflow; /* the peers that found no slot there */

    /* metrics */
    uint64_t responses[6]; /* by status class 1xx..5xx, index 0 unused */
    uint64_t errors_by_type[GW_ERROR_TYPES];
};

/* ---- shared with transform.c (gateway.c) ---- */

/* The endpoint NAME of InvokeEndpoint (<stream> 1: its Accept in
 * X-Amzn-SageMaker-Accept) with the request's formats, or NULL when the
 * request was answered with the error (no such endpoint, a header
 * SageMaker refuses, a format the endpoint cannot take). */
struct gw_endpoint *gw_route(struct ig_gateway *gw, struct ig_http_req *http, const char *name,
                             size_t namelen, int stream, enum ig_format *ctype,
                             enum ig_format *accept);
/* An error answer with its access-log line (<r> may be NULL). */
void gw_error_for(struct ig_gateway *gw, struct ig_http_req *http, const struct gw_request *r,
                  const char *endpoint, const char *type, const char *msg);
void gw_count_status(struct ig_gateway *gw, int status);
/* A request or stream routed to <ep> is freed (refs were taken by gw_route's
 * caller). */
void gw_ep_unref(struct gw_endpoint *ep);
/* A retired <ep> that nothing holds any more is freed (from the loop). */
void gw_ep_check(struct gw_endpoint *ep);
uint32_t gw_endpoint_queued(const struct gw_endpoint *ep);
/* Whether a row of <rs> holds a line break that <up>, a remote model
 * reading <wire> a row a line, would cut at (see gateway.c). Any thread. */
int gw_rows_break(const struct ig_upstream *up, const struct ig_rowset *rs, enum ig_format wire);
/* Queue <r>'s decoded rows (see gateway.c). */
void gw_req_decoded(struct gw_request *r, int rv, const struct ig_codec_error *cerr,
                    uint64_t nbytes);
/* The client side is done with <r>. */
void gw_req_finish(struct gw_request *r);

/* ---- transform.c ---- */

/* At the end of a request's header block: 1 for POST /transform/... */
int ig_ts_pick(const struct ig_http_req *http, void *arg);
/* POST /transform/NAME (a stream, ig_http_req_is_stream). */
void ig_ts_start(struct ig_gateway *gw, struct ig_http_req *http, const char *name,
                 size_t namelen);
/* A chunk's rows are answered: predictions <preds>[0..rs.nrows) slices of
 * <base>; or the chunk failed as a whole. <r> is finished by the caller
 * afterwards. */
void ig_ts_chunk_ok(struct gw_request *r, const char *base, const struct ig_pred *preds);
void ig_ts_chunk_fail(struct gw_request *r, const char *type, const char *msg);
/* <r> is being freed: its chunk (if any) forgets it. */
void ig_ts_chunk_gone(struct gw_request *r);
/* A batch of <ep> finished: streams waiting for room in its queue try
 * again. */
void ig_ts_wake(struct gw_endpoint *ep);
/* Half of the drain is over (ig_gateway_drain's timer): streams still
 * sending take no more input and end once the rows they gave are answered
 * (reset: the client resumes after the records it got). */
void ig_ts_drain(struct gw_endpoint *ep);

/* The most a converted body of <len> bytes may take (GW_CONVERT_*). */
size_t gw_convert_cap(size_t len);
/* Whether rows of <ctype> (read with libsvm base <base>) are rewritten for
 * <ep>'s model: its upstream_content_type differs, or is libsvm and the
 * client's libsvm is 1-based (the model gets XGBoost's 0-based indices). */
int gw_converts(const struct gw_endpoint *ep, enum ig_format ctype, enum ig_format wire,
                unsigned base);
/* Rewrite <r>'s decoded rows (format <from>) as rows of <to> (convert.h),
 * owned by <r>, in at most <cap> bytes (0: gw_convert_cap of the body): 0,
 * or an error code with <err> set (rows untouched). Any thread (it
 * touches only <r>'s rows and budget). */
int gw_req_convert(struct gw_request *r, enum ig_format from, enum ig_format to, size_t cap,
                   struct ig_codec_error *err);
/* <r>'s predictions (<preds> of <base>, in the lane's format) in the
 * client's format r->accept: new slices in <out> (*cpreds allocated), or
 * an error code with <err> set. With <per_row> (a stream's chunk), a row
 * whose answer cannot be converted fails alone (IG_PRED_FAILED, the reason
 * in <out>) instead. Loop thread. */
int gw_req_convert_preds(struct gw_request *r, const char *base, const struct ig_pred *preds,
                         int per_row, struct ig_buf *out, struct ig_pred **cpreds,
                         struct ig_codec_error *err);

#endif /* INFERGATE_GATEWAY_INT_H */
