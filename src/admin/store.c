/*
 * store.c - the job store's Redis client (see include/infergate/store.h).
 *
 * Lifetime rules (hiredis 0.14.1):
 *   - redisAsyncFree inside a reply callback of the same context is
 *     deferred by hiredis (REDIS_IN_CALLBACK); inside onConnect it is not,
 *     so no user code ever runs from onConnect: a connection is "ready"
 *     only on the reply to its probe (DBSIZE, after SELECT) or to SUBSCRIBE.
 *   - A context hiredis tears down itself (read error, EOF) calls every
 *     pending callback with NULL, then onDisconnect: the first of these
 *     detaches it (ac->data, onDisconnect NULL) so nothing later reaches
 *     the store through it.
 *   - Each command's record is owned by hiredis until its callback runs;
 *     ig_store_free orphans records (rec->s = NULL) after calling their
 *     callbacks with NULL, and the orphan is freed when hiredis calls back.
 *   - Every entry from the loop holds s->depth; ig_store_free inside a
 *     callback does all its visible work at once and the memory goes when
 *     the outermost entry leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "infergate/common.h"
#include "infergate/store.h"

/* The embedded redis-server's socket and log, in data_dir. */
#define STORE_SOCK "redis.sock"
#define STORE_LOG "redis.log"
#define CONNECT_TIMEOUT_MS 2000
#define REPLY_TIMEOUT_MS 5000
#define WATCH_MS 500
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define RESTART_MIN_MS 100
#define RESTART_MAX_MS 5000
#define CHILD_POLL_MS 200
#define STARTUP_WAIT_MS 5000
#define STOP_WAIT_MS 5000
#define READER_MAXBUF (64 * 1024)
#define ARRAY_ELEM_COST 48

extern char **environ;

enum { CONN_CMD = 0, CONN_SUB = 1 };

struct req {
    struct req *prev, *next;
    struct ig_store *s; /* NULL: orphaned by ig_store_free */
    ig_store_reply_cb *cb;
    void *arg;
};

struct conn {
    struct ig_store *s;
    int which;
    redisAsyncContext *ac;
    int ready;
    unsigned attempt;          /* failed attempts since last ready (backoff exponent) */
    struct event *timer;       /* connect timeout while connecting; retry while idle */
    int connecting;
    size_t reply_bytes;        /* the reply being parsed */
    struct evdns_getaddrinfo_request *dns_req; /* resolving s->host */
    struct dns_q *dns_q;
    int resolving;
};

/* The evdns base outlives the store while cancelled lookups still owe
 * their (deferred) callbacks: each lookup holds a reference. */
struct dns_holder {
    struct evdns_base *dns;
    struct event_base *base;
    int refs;
};

struct dns_q {
    struct dns_holder *h;
    struct conn *c; /* NULL: abandoned */
};

struct adapter {
    redisAsyncContext *ac;
    struct event *rev, *wev;
};

struct ig_store {
    struct event_base *base;
    ig_store_event_cb *on_event;
    ig_store_state_cb *on_state;
    void *arg;
    char *channel;
    /* target */
    int embedded;
    char *host;   /* TCP host, NULL for unix */
    struct dns_holder *dns; /* host is a name: resolved on the loop */
    int port;
    char *path;   /* unix socket path */
    int db;
    char *data_dir, *redis_server, *pidfile, *logfile;
    /* state */
    struct conn conn[2];
    int up;
    uint64_t down_since_us;
    char why[160];
    struct req *reqs;
    size_t npending;
    /* The watch drops a command connection that stops answering: it
     * counts its own ticks, not the clock, so a loop that was late (the
     * process stopped, a long callback) is not taken for a silent server. */
    struct event *watch;
    uint64_t replies;    /* replies seen on the command connection */
    uint64_t watch_seen; /* replies at the watch's last tick */
    unsigned watch_idle; /* its ticks since, with commands waiting */
    int depth, dying;
    /* embedded child */
    pid_t child;
    struct event *child_timer;
    uint64_t child_started_us, restart_at_us;
    unsigned restart_ms;
};

/* ------------------------------------------------------------------ */
/* small helpers */

static void enter(struct ig_store *s)
{
    s->depth++;
}

static void destroy(struct ig_store *s);

/* Returns 1 when <s> is gone. */
static int leave(struct ig_store *s)
{
    if (--s->depth == 0 && s->dying) {
        destroy(s);
        return 1;
    }
    return 0;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

static unsigned rand_below(unsigned n)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)ig_now_us() ^ (unsigned)getpid();
    return n ? (unsigned)rand_r(&seed) % n : 0;
}

static void set_why(struct ig_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(struct ig_store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
}

static const char *target(const struct ig_store *s, char *buf, size_t len)
{
    if (s->host != NULL)
        snprintf(buf, len, "redis://%s:%d/%d", s->host, s->port, s->db);
    else
        snprintf(buf, len, "%sunix:%s", s->embedded ? "embedded " : "", s->path);
    return buf;
}

/* ------------------------------------------------------------------ */
/* reply caps: hiredis 0.14 has none, so its object functions are wrapped */

size_t ig_store_reply_max = IG_STORE_REPLY_MAX;

static int account(const redisReadTask *t, size_t bytes)
{
    struct conn *c = t->privdata;
    if (c == NULL)
        return 0;
    if (t->parent == NULL)
        c->reply_bytes = 0;
    c->reply_bytes += bytes;
    return c->reply_bytes > ig_store_reply_max ? -1 : 0;
}

/* hiredis' own functions (its static defaultFunctions, the same for every
 * context), taken from the first reader. */
static redisReplyObjectFunctions *default_fns;

static redisReplyObjectFunctions *orig_fns(const redisReadTask *t)
{
    (void)t;
    return default_fns;
}

static void *fn_string(const redisReadTask *t, char *str, size_t len)
{
    if (account(t, len + 16) < 0)
        return NULL;
    return orig_fns(t)->createString(t, str, len);
}

static void *fn_array(const redisReadTask *t, int n)
{
    if (account(t, (size_t)(n < 0 ? 0 : n) * ARRAY_ELEM_COST + 16) < 0)
        return NULL;
    return orig_fns(t)->createArray(t, n);
}

static void *fn_integer(const redisReadTask *t, long long v)
{
    if (account(t, 16) < 0)
        return NULL;
    return orig_fns(t)->createInteger(t, v);
}

static void *fn_nil(const redisReadTask *t)
{
    if (account(t, 16) < 0)
        return NULL;
    return orig_fns(t)->createNil(t);
}

static redisReplyObjectFunctions capped_fns = {
    .createString = fn_string,
    .createArray = fn_array,
    .createInteger = fn_integer,
    .createNil = fn_nil,
    .freeObject = freeReplyObject,
};

/* ------------------------------------------------------------------ */
/* libevent adapter (as hiredis' adapters/libevent.h, plus the unparsed-bytes cap) */

static void conn_drop(struct conn *c, const char *why);

static void ad_read(evutil_socket_t fd, short what, void *arg)
{
    struct adapter *a = arg;
    redisAsyncContext *ac = a->ac;
    struct ig_store *s = ac->data;
    (void)fd;
    (void)what;
    if (s == NULL) {
        redisAsyncHandleRead(ac);
        return;
    }
    enter(s);
    redisReader *r = ac->c.reader;
    if (r != NULL && r->len - r->pos > ig_store_reply_max) {
        struct conn *c = s->conn[CONN_CMD].ac == ac ? &s->conn[CONN_CMD] : &s->conn[CONN_SUB];
        c->reply_bytes = r->len - r->pos;
        conn_drop(c, "reply over the cap");
    } else {
        redisAsyncHandleRead(ac);
    }
    leave(s);
}

static void ad_write(evutil_socket_t fd, short what, void *arg)
{
    struct adapter *a = arg;
    redisAsyncContext *ac = a->ac;
    struct ig_store *s = ac->data;
    (void)fd;
    (void)what;
    if (s != NULL)
        enter(s);
    redisAsyncHandleWrite(ac);
    if (s != NULL)
        leave(s);
}

static void ad_add_read(void *p)
{
    event_add(((struct adapter *)p)->rev, NULL);
}

static void ad_del_read(void *p)
{
    event_del(((struct adapter *)p)->rev);
}

static void ad_add_write(void *p)
{
    event_add(((struct adapter *)p)->wev, NULL);
}

static void ad_del_write(void *p)
{
    event_del(((struct adapter *)p)->wev);
}

static void ad_cleanup(void *p)
{
    struct adapter *a = p;
    event_free(a->rev);
    event_free(a->wev);
    free(a);
}

static int ad_attach(redisAsyncContext *ac, struct event_base *base)
{
    struct adapter *a = ig_xcalloc(1, sizeof(*a));
    a->ac = ac;
    a->rev = event_new(base, ac->c.fd, EV_READ, ad_read, a);
    a->wev = event_new(base, ac->c.fd, EV_WRITE, ad_write, a);
    if (a->rev == NULL || a->wev == NULL) {
        if (a->rev != NULL)
            event_free(a->rev);
        if (a->wev != NULL)
            event_free(a->wev);
        free(a);
        return -1;
    }
    ac->ev.data = a;
    ac->ev.addRead = ad_add_read;
    ac->ev.delRead = ad_del_read;
    ac->ev.addWrite = ad_add_write;
    ac->ev.delWrite = ad_del_write;
    ac->ev.cleanup = ad_cleanup;
    event_add(a->rev, NULL);
    event_add(a->wev, NULL);
    return 0;
}

/* ------------------------------------------------------------------ */
/* connections */

static void conn_start(struct conn *c);

static void detach(redisAsyncContext *ac)
{
    ac->data = NULL;
    ac->onConnect = NULL;
    ac->onDisconnect = NULL;
    if (ac->c.reader != NULL)
        ac->c.reader->privdata = NULL;
}

static void schedule_retry(struct conn *c)
{
    unsigned cap = BACKOFF_MIN_MS;
    for (unsigned i = 0; i < c->attempt && cap < BACKOFF_MAX_MS; i++)
        cap *= 2;
    if (cap > BACKOFF_MAX_MS)
        cap = BACKOFF_MAX_MS;
    c->attempt++;
    struct timeval tv = ms_tv(rand_below(cap + 1));
    c->connecting = 0;
    evtimer_add(c->timer, &tv);
}

static void notify(struct ig_store *s, int up)
{
    if (s->on_state != NULL && !s->dying)
        s->on_state(s, up, s->arg);
}

/* The connection's context is gone or going (hiredis frees it, or the
 * caller does): forget it, retry later, and report the store down. */
static void conn_lost(struct conn *c, const char *why)
{
    struct ig_store *s = c->s;
    int capped = c->reply_bytes > ig_store_reply_max; /* hiredis would say "Out of memory" */
    if (capped)
        why = "reply over the cap";
    if (c->ac != NULL) {
        if (!capped && c->ac->errstr != NULL && c->ac->err != 0)
            set_why(s, "%s connection: %s (%s)", c->which == CONN_CMD ? "command" : "subscriber",
                    why, c->ac->errstr);
        else
            set_why(s, "%s connection: %s", c->which == CONN_CMD ? "command" : "subscriber", why);
        detach(c->ac);
        c->ac = NULL;
    }
    c->ready = 0;
    evtimer_del(c->timer);
    if (s->dying)
        return;
    schedule_retry(c);
    if (s->up) {
        s->up = 0;
        s->down_since_us = ig_now_us();
        char t[300];
        ig_log(IG_LOG_WARN, "store: %s down: %s", target(s, t, sizeof(t)), s->why);
        notify(s, 0);
    }
}

/* Our own decision to drop a live context (never from onConnect). */
static void conn_drop(struct conn *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (ac == NULL)
        return;
    conn_lost(c, why);
    redisAsyncFree(ac);
}

static void conn_ready(struct conn *c)
{
    struct ig_store *s = c->s;
    c->ready = 1;
    c->attempt = 0;
    c->connecting = 0;
    evtimer_del(c->timer);
    if (!s->up && s->conn[CONN_CMD].ready && s->conn[CONN_SUB].ready) {
        s->up = 1;
        char t[300];
        ig_log(IG_LOG_INFO, "store: %s up", target(s, t, sizeof(t)));
        notify(s, 1);
    }
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    struct ig_store *s = cac->data;
    (void)status;
    if (s == NULL)
        return;
    enter(s);
    for (int i = 0; i < 2; i++)
        if (s->conn[i].ac == cac)
            conn_lost(&s->conn[i], "disconnected");
    leave(s);
}

/* Probe replies on the command connection: SELECT (if any) then DBSIZE,
 * which a server still loading its AOF refuses (-LOADING). */
static void on_probe(redisAsyncContext *ac, void *r, void *privdata)
{
    struct ig_store *s = ac->data;
    redisReply *reply = r;
    if (s == NULL || s->conn[CONN_CMD].ac != ac)
        return;
    enter(s);
    struct conn *c = &s->conn[CONN_CMD];
    if (reply == NULL) {
        conn_lost(c, "connection lost");
    } else if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "%s refused: %.100s", privdata ? "DBSIZE" : "SELECT",
                 reply->str);
        conn_drop(c, why);
    } else if (privdata != NULL) {
        conn_ready(c);
    }
    leave(s);
}

static void on_sub(redisAsyncContext *ac, void *r, void *privdata)
{
    struct ig_store *s = ac->data;
    redisReply *reply = r;
    (void)privdata;
    if (s == NULL || s->conn[CONN_SUB].ac != ac)
        return;
    enter(s);
    struct conn *c = &s->conn[CONN_SUB];
    if (reply == NULL) {
        conn_lost(c, "connection lost");
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
               reply->element[0]->type == REDIS_REPLY_STRING) {
        const char *kind = reply->element[0]->str;
        redisReply *payload = reply->element[2];
        if (strcmp(kind, "subscribe") == 0) {
            conn_ready(c);
        } else if (strcmp(kind, "message") == 0 && payload->type == REDIS_REPLY_STRING) {
            if (s->on_event != NULL && !s->dying)
                s->on_event(s, payload->str, payload->len, s->arg);
        } else if (strcmp(kind, "unsubscribe") == 0) {
            conn_drop(c, "unsubscribed");
        }
    } else if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "SUBSCRIBE refused: %.100s", reply->str);
        conn_drop(c, why);
    }
    leave(s);
}

/* No user code here: hiredis 0.14 forbids freeing the context in onConnect. */
static void on_connect(const redisAsyncContext *cac, int status)
{
    struct ig_store *s = cac->data;
    if (s == NULL)
        return;
    struct conn *c = cac == s->conn[CONN_CMD].ac ? &s->conn[CONN_CMD] : &s->conn[CONN_SUB];
    if (c->ac != cac)
        return;
    redisAsyncContext *ac = c->ac;
    if (status != REDIS_OK) {
        /* hiredis frees it after this returns; no onDisconnect follows. */
        set_why(s, "%s connection: connect failed: %s",
                c->which == CONN_CMD ? "command" : "subscriber",
                ac->errstr != NULL ? ac->errstr : "?");
        detach(ac);
        c->ac = NULL;
        c->connecting = 0;
        evtimer_del(c->timer);
        schedule_retry(c);
        return;
    }
    if (c->which == CONN_CMD) {
        if (s->db != 0)
            redisAsyncCommand(ac, on_probe, NULL, "SELECT %d", s->db);
        redisAsyncCommand(ac, on_probe, (void *)1, "DBSIZE");
    } else {
        redisAsyncCommand(ac, on_sub, NULL, "SUBSCRIBE %s", s->channel);
    }
}

static void dns_abandon(struct conn *c);

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct ig_store *s = c->s;
    (void)fd;
    (void)what;
    enter(s);
    if (c->connecting && c->resolving) {
        dns_abandon(c);
        set_why(s, "%s connection: no address for %s within 2 s",
                c->which == CONN_CMD ? "command" : "subscriber", s->host);
        schedule_retry(c);
    } else if (c->connecting && c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        conn_lost(c, "no answer within 2 s");
        redisAsyncFree(ac);
    } else if (c->ac == NULL && !s->dying) {
        conn_start(c);
    }
    leave(s);
}

static void conn_connect(struct conn *c, const char *ip);

static void dns_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_holder *h = arg;
    (void)fd;
    (void)what;
    evdns_base_free(h->dns, 0);
    free(h);
}

/* <in_cb>: inside an evdns callback, where the base cannot be freed. */
static void dns_unref(struct dns_holder *h, int in_cb)
{
    if (--h->refs > 0)
        return;
    struct timeval zero = {0, 0};
    if (!in_cb || event_base_once(h->base, -1, EV_TIMEOUT, dns_free_cb, h, &zero) < 0)
        dns_free_cb(-1, 0, h);
}

/* Drop the lookup in flight: its callback comes later and finds no conn. */
static void dns_abandon(struct conn *c)
{
    struct evdns_getaddrinfo_request *req = c->dns_req;
    if (c->dns_q != NULL)
        c->dns_q->c = NULL;
    c->dns_q = NULL;
    c->dns_req = NULL;
    c->resolving = 0;
    if (req != NULL)
        evdns_getaddrinfo_cancel(req);
}

/* hiredis 0.14 resolves names with a blocking getaddrinfo: names go
 * through evdns first, and hiredis gets a numeric address. */
static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct dns_q *q = arg;
    struct conn *c = q->c;
    struct dns_holder *h = q->h;
    free(q);
    if (c == NULL || result == EVUTIL_EAI_CANCEL) { /* abandoned: the store may be gone */
        if (res != NULL)
            evutil_freeaddrinfo(res);
        dns_unref(h, 1);
        return;
    }
    dns_unref(h, 1); /* the store holds its own reference */
    struct ig_store *s = c->s;
    c->resolving = 0;
    c->dns_req = NULL;
    c->dns_q = NULL;
    struct evutil_addrinfo *pick = NULL;
    for (struct evutil_addrinfo *a = res; a != NULL && result == 0; a = a->ai_next)
        if (pick == NULL || (a->ai_family == AF_INET && pick->ai_family != AF_INET))
            pick = a;
    char ip[INET6_ADDRSTRLEN] = "";
    if (pick != NULL && pick->ai_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)pick->ai_addr)->sin_addr, ip,
                  sizeof(ip));
    else if (pick != NULL && pick->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)pick->ai_addr)->sin6_addr, ip,
                  sizeof(ip));
    if (res != NULL)
        evutil_freeaddrinfo(res);
    if (s->dying)
        return;
    evtimer_del(c->timer);
    if (ip[0] == '\0') {
        set_why(s, "%s connection: cannot resolve %s: %s",
                c->which == CONN_CMD ? "command" : "subscriber", s->host,
                result != 0 ? evutil_gai_strerror(result) : "no address");
        schedule_retry(c);
        return;
    }
    conn_connect(c, ip);
}

static void conn_start(struct conn *c)
{
    struct ig_store *s = c->s;
    if (s->dns != NULL) {
        struct evutil_addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        c->connecting = 1;
        c->resolving = 1;
        struct timeval tv = ms_tv(CONNECT_TIMEOUT_MS);
        evtimer_add(c->timer, &tv);
        struct dns_q *q = ig_xcalloc(1, sizeof(*q));
        q->h = s->dns;
        q->c = c;
        s->dns->refs++;
        c->dns_q = q;
        /* The callback may run inside this call (hosts file, cache). */
        struct evdns_getaddrinfo_request *req =
            evdns_getaddrinfo(s->dns->dns, s->host, NULL, &hints, on_resolved, q);
        if (c->resolving)
            c->dns_req = req;
        return;
    }
    conn_connect(c, s->host);
}

static void conn_connect(struct conn *c, const char *ip)
{
    struct ig_store *s = c->s;
    redisAsyncContext *ac =
        ip != NULL ? redisAsyncConnect(ip, s->port) : redisAsyncConnectUnix(s->path);
    if (ac == NULL) {
        set_why(s, "out of memory connecting");
        schedule_retry(c);
        return;
    }
    if (ac->err != 0) {
        set_why(s, "%s connection: connect failed: %s",
                c->which == CONN_CMD ? "command" : "subscriber",
                ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    if (ad_attach(ac, s->base) < 0) {
        set_why(s, "event_new failed");
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    if (ac->c.reader->fn != &capped_fns) {
        if (default_fns == NULL)
            default_fns = ac->c.reader->fn;
        ac->c.reader->fn = &capped_fns;
    }
    ac->c.reader->privdata = c;
    ac->c.reader->maxbuf = READER_MAXBUF;
    ac->data = s;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->connecting = 1;
    c->reply_bytes = 0;
    struct timeval tv = ms_tv(CONNECT_TIMEOUT_MS);
    evtimer_add(c->timer, &tv);
}

/* ------------------------------------------------------------------ */
/* commands */

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct req *q = privdata;
    struct ig_store *s = q->s;
    if (s == NULL) {
        free(q);
        return;
    }
    enter(s);
    s->replies++;
    if (r == NULL && s->conn[CONN_CMD].ac == ac)
        conn_lost(&s->conn[CONN_CMD], "connection lost");
    if (q->s != NULL) { /* not orphaned by an ig_store_free in on_state(0) */
        IG_DLIST_UNLINK(s->reqs, q);
        s->npending--;
        q->cb(s, r, q->arg);
    }
    free(q);
    leave(s);
}

static int cmd_check(struct ig_store *s)
{
    if (s->dying || !s->up || s->conn[CONN_CMD].ac == NULL)
        return IG_ERR_AGAIN;
    if (s->conn[CONN_CMD].ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))
        return IG_ERR_AGAIN;
    if (s->npending >= IG_STORE_PENDING_MAX)
        return IG_ERR_FULL;
    return 0;
}

static struct req *req_new(struct ig_store *s, ig_store_reply_cb *cb, void *arg)
{
    struct req *q = ig_xcalloc(1, sizeof(*q));
    q->s = s;
    q->cb = cb;
    q->arg = arg;
    return q;
}

static void req_link(struct ig_store *s, struct req *q)
{
    IG_DLIST_PUSH(s->reqs, q);
    s->npending++;
}

int ig_store_cmd(struct ig_store *s, ig_store_reply_cb *cb, void *arg, int argc,
                 const char *const *argv, const size_t *argvlen)
{
    int rc = cmd_check(s);
    if (rc != 0)
        return rc;
    if (argc <= 0)
        return IG_ERR_INVALID;
    struct req *q = req_new(s, cb, arg);
    if (redisAsyncCommandArgv(s->conn[CONN_CMD].ac, on_reply, q, argc, (const char **)argv,
                              argvlen) != REDIS_OK) {
        free(q);
        return IG_ERR_NOMEM;
    }
    req_link(s, q);
    return 0;
}

int ig_store_cmdf(struct ig_store *s, ig_store_reply_cb *cb, void *arg, const char *fmt, ...)
{
    int rc = cmd_check(s);
    if (rc != 0)
        return rc;
    struct req *q = req_new(s, cb, arg);
    va_list ap;
    va_start(ap, fmt);
    rc = redisvAsyncCommand(s->conn[CONN_CMD].ac, on_reply, q, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(q);
        return IG_ERR_INVALID;
    }
    req_link(s, q);
    return 0;
}

/* A server that accepts commands but answers none (stopped, hung, a
 * network path gone silent) would hold every call forever: when commands
 * have waited REPLY_TIMEOUT_MS (in WATCH_MS ticks of the loop) with no
 * reply at all, the connection is dropped (their callbacks get NULL) and
 * the store is down until a new one answers its probe. The heartbeat keeps
 * a command in flight, so an idle gateway notices too. Ticks, not the
 * clock: after SIGSTOP/SIGCONT the loop's first turn runs the due timers
 * before it reads the replies that came meanwhile (epoll_wait returns
 * EINTR), and one late tick must not drop a live connection. */
static void watch_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ig_store *s = arg;
    struct conn *c = &s->conn[CONN_CMD];

    (void)fd;
    (void)what;
    if (s->dying || !c->ready || c->ac == NULL || s->npending == 0 ||
        s->replies != s->watch_seen) {
        s->watch_seen = s->replies;
        s->watch_idle = 0;
        return;
    }
    if (++s->watch_idle < REPLY_TIMEOUT_MS / WATCH_MS)
        return;
    s->watch_idle = 0;
    enter(s);
    conn_drop(c, "no reply within 5 s");
    leave(s);
}

/* ------------------------------------------------------------------ */
/* the embedded redis-server */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        ig_errf(err, errlen, "store: data_dir too long");
        return IG_ERR_CONFIG;
    }
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char save = *p;
            *p = '\0';
            if (mkdir(path, 0700) < 0 && errno != EEXIST) {
                ig_errf(err, errlen, "store: mkdir %s: %s", path, strerror(errno));
                return IG_ERR_IO;
            }
            *p = save;
            if (save == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        ig_errf(err, errlen, "store: data_dir %s is not a directory", dir);
        return IG_ERR_IO;
    }
    return 0;
}

/* The last bytes of redis.log, one line, into err. */
static void log_tail(const struct ig_store *s, char *out, size_t outlen)
{
    char buf[600];
    size_t n = 0;
    int fd = open(s->logfile, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
        ssize_t got = pread(fd, buf, sizeof(buf) - 1, from);
        n = got > 0 ? (size_t)got : 0;
        close(fd);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = '|';
    snprintf(out, outlen, "%s", n ? buf : "(redis.log empty or missing)");
}

/* A copy of <name> resolved on PATH (or itself when it holds a '/'). */
static char *resolve_exe(const char *name)
{
    if (strchr(name, '/') != NULL)
        return ig_xstrdup(name);
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path != '\0') {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        char cand[PATH_MAX];
        if (n > 0 &&
            snprintf(cand, sizeof(cand), "%.*s/%s", (int)n, path, name) < (int)sizeof(cand) &&
            access(cand, X_OK) == 0)
            return ig_xstrdup(cand);
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

static int child_spawn(struct ig_store *s, char *err, size_t errlen)
{
    char *exe = resolve_exe(s->redis_server);
    if (exe == NULL) {
        ig_errf(err, errlen, "store: %s not found on PATH", s->redis_server);
        return IG_ERR_IO;
    }
    /* The child runs in data_dir, and redis is given its files by their
     * names there: it would read a relative path given with --dir (the
     * shipped ./var) from data_dir again, since --dir changes its working
     * directory as the arguments are read. */
    const char *argv[] = {exe, "--port", "0", "--unixsocket", STORE_SOCK, "--unixsocketperm",
                          "700", "--dir", ".", "--appendonly", "yes", "--appendfsync", "everysec",
                          "--save", "", "--daemonize", "no", "--logfile", STORE_LOG,
                          "--protected-mode", "yes", NULL};
    pid_t parent = getpid();
    /* All signals blocked across the fork: until the child resets the
     * dispositions, a signal would run the gateway's handlers (libevent's
     * write into its signal socketpair) in the child. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only, then exec. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0); /* no terminal Ctrl-C; its AOF rewrite child goes with it */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1); /* redis logs to its logfile */
        }
        close_range(3, ~0U, 0);
        if (chdir(s->data_dir) != 0)
            _exit(127);
        execve(exe, (char *const *)argv, environ);
        _exit(127);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(exe);
    if (pid < 0) {
        ig_errf(err, errlen, "store: fork: %s", strerror(fork_errno));
        return IG_ERR_IO;
    }
    s->child = pid;
    s->child_started_us = ig_now_us();
    FILE *f = fopen(s->pidfile, "we");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    ig_log(IG_LOG_INFO, "store: started redis-server pid %d on %s", (int)pid, s->path);
    return 0;
}

/* Reap the child if it exited; returns 1 when it did. Its process group's
 * stragglers (an AOF rewrite child) get SIGKILL while the zombie still pins
 * the group id. <expected>: we stopped it (logged at info). */
static int child_reap(struct ig_store *s, int expected)
{
    if (s->child <= 0)
        return 0;
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)s->child, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
        if (si.si_pid == 0)
            return 0;
        kill(-s->child, SIGKILL);
    } else if (errno == EINTR) {
        return 0;
    }
    int st = 0;
    pid_t r = waitpid(s->child, &st, WNOHANG);
    if (r == 0)
        return 0;
    if (r == s->child) {
        int lvl = expected ? IG_LOG_INFO : IG_LOG_WARN;
        if (WIFSIGNALED(st))
            ig_log(lvl, "store: redis-server pid %d killed by signal %d", (int)s->child,
                   WTERMSIG(st));
        else
            ig_log(lvl, "store: redis-server pid %d exited with status %d", (int)s->child,
                   WEXITSTATUS(st));
    } else {
        ig_log(IG_LOG_WARN, "store: redis-server pid %d reaped by someone else", (int)s->child);
    }
    s->child = 0;
    return 1;
}

static void child_stop(struct ig_store *s)
{
    if (s->child <= 0)
        return;
    kill(s->child, SIGTERM);
    uint64_t deadline = ig_now_us() + (uint64_t)STOP_WAIT_MS * 1000;
    while (!child_reap(s, 1) && ig_now_us() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (s->child > 0) {
        ig_log(IG_LOG_WARN, "store: redis-server pid %d ignored SIGTERM for 5 s: SIGKILL",
               (int)s->child);
        kill(-s->child, SIGKILL);
        kill(s->child, SIGKILL);
        waitpid(s->child, NULL, 0);
        s->child = 0;
    }
    unlink(s->pidfile);
}

static void child_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ig_store *s = arg;
    (void)fd;
    (void)what;
    if (s->dying)
        return;
    uint64_t now = ig_now_us();
    if (s->child > 0) {
        if (!child_reap(s, 0))
            return;
        if (now - s->child_started_us > 10 * 1000 * 1000)
            s->restart_ms = RESTART_MIN_MS;
        s->restart_at_us = now + (uint64_t)s->restart_ms * 1000;
        s->restart_ms = s->restart_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : s->restart_ms * 2;
        return;
    }
    if (now < s->restart_at_us)
        return;
    char err[256];
    if (child_spawn(s, err, sizeof(err)) < 0) {
        ig_log(IG_LOG_ERROR, "%s", err);
        s->restart_at_us = now + (uint64_t)RESTART_MAX_MS * 1000;
    }
}

/* A synchronous probe: 1 when <path> answers DBSIZE with an integer. */
static int sync_probe(const char *path, int timeout_ms)
{
    struct timeval tv = ms_tv((unsigned)timeout_ms);
    redisContext *c = redisConnectUnixWithTimeout(path, tv);
    int ok = 0;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "DBSIZE");
        ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

static int answers_ping(const char *path)
{
    struct timeval tv = ms_tv(300);
    redisContext *c = redisConnectUnixWithTimeout(path, tv);
    int ok = 0;
    if (c != NULL && c->err == 0) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r != NULL)
            freeReplyObject(r);
    }
    if (c != NULL)
        redisFree(c);
    return ok;
}

static int is_redis_pid(pid_t pid)
{
    char p[64], comm[64] = "";
    snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(p, "re");
    if (f == NULL)
        return 0;
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "redis-server", 12) == 0 || strncmp(comm, "redis-check", 11) == 0;
}

/* A leftover redis-server from an earlier run (see store.h). */
static int leftover_check(struct ig_store *s, char *err, size_t errlen)
{
    FILE *f = fopen(s->pidfile, "re");
    if (f != NULL) {
        int pid = 0;
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
        uint64_t deadline = ig_now_us() + 2000 * 1000;
        while (pid > 0 && kill(pid, 0) == 0 && is_redis_pid(pid) && ig_now_us() < deadline) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (pid > 0 && kill(pid, 0) == 0 && is_redis_pid(pid)) {
            ig_errf(err, errlen,
                    "store: data_dir %s is in use by redis-server pid %d (another gateway on the "
                    "same data_dir?); stop it first",
                    s->data_dir, pid);
            return IG_ERR_IO;
        }
        unlink(s->pidfile);
    }
    if (access(s->path, F_OK) == 0) {
        if (answers_ping(s->path)) {
            ig_errf(err, errlen,
                    "store: a redis-server not started by this gateway already serves %s; stop it "
                    "or choose another data_dir",
                    s->path);
            return IG_ERR_IO;
        }
        unlink(s->path);
    }
    return 0;
}

static int embedded_start(struct ig_store *s, char *err, size_t errlen)
{
    int rc = mkdir_p(s->data_dir, err, errlen);
    if (rc < 0)
        return rc;
    rc = leftover_check(s, err, errlen);
    if (rc < 0)
        return rc;
    rc = child_spawn(s, err, errlen);
    if (rc < 0)
        return rc;
    uint64_t deadline = ig_now_us() + (uint64_t)STARTUP_WAIT_MS * 1000;
    for (;;) {
        if (child_reap(s, 0)) {
            char tail[600];
            log_tail(s, tail, sizeof(tail));
            ig_errf(err, errlen, "store: redis-server exited at start; redis.log: %s", tail);
            return IG_ERR_IO;
        }
        if (sync_probe(s->path, 200))
            return 0;
        if (ig_now_us() >= deadline)
            break;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    char tail[600];
    log_tail(s, tail, sizeof(tail));
    kill(-s->child, SIGKILL);
    kill(s->child, SIGKILL);
    waitpid(s->child, NULL, 0);
    s->child = 0;
    unlink(s->pidfile);
    ig_errf(err, errlen, "store: redis-server did not answer on %s within 5 s; redis.log: %s",
            s->path, tail);
    return IG_ERR_IO;
}

/* ------------------------------------------------------------------ */
/* URL */

static int parse_db(const char *p, int *db)
{
    if (*p == '\0')
        return 0;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > INT_MAX || end == p)
        return -1;
    *db = (int)v;
    return 0;
}

static int parse_url(struct ig_store *s, const char *url)
{
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        if (*p != '/')
            return -1;
        s->path = q ? ig_xstrndup(p, (size_t)(q - p)) : ig_xstrdup(p);
        if (q != NULL &&
            (strncmp(q, "?db=", 4) != 0 || q[4] == '\0' || parse_db(q + 4, &s->db) < 0))
            return -1;
        return strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path) || s->path[1] == '\0'
                   ? -1
                   : 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8, *hend, *rest;
    if (strchr(p, '@') != NULL)
        return -1; /* no credentials support */
    if (*p == '[') {
        hend = strchr(p, ']');
        if (hend == NULL)
            return -1;
        s->host = ig_xstrndup(p + 1, (size_t)(hend - p - 1));
        rest = hend + 1;
    } else {
        hend = p + strcspn(p, ":/");
        s->host = ig_xstrndup(p, (size_t)(hend - p));
        rest = hend;
    }
    if (s->host[0] == '\0')
        return -1;
    s->port = 6379;
    if (*rest == ':') {
        char *end;
        errno = 0;
        long v = strtol(rest + 1, &end, 10);
        if (errno != 0 || end == rest + 1 || v <= 0 || v > 65535)
            return -1;
        s->port = (int)v;
        rest = end;
    }
    if (*rest == '/')
        return parse_db(rest + 1, &s->db);
    return *rest == '\0' ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* life cycle */

static void destroy(struct ig_store *s)
{
    if (s->dns != NULL)
        dns_unref(s->dns, 0);
    for (int i = 0; i < 2; i++)
        if (s->conn[i].timer != NULL)
            event_free(s->conn[i].timer);
    if (s->child_timer != NULL)
        event_free(s->child_timer);
    if (s->watch != NULL)
        event_free(s->watch);
    free(s->channel);
    free(s->host);
    free(s->path);
    free(s->data_dir);
    free(s->redis_server);
    free(s->pidfile);
    free(s->logfile);
    free(s);
}

int ig_store_new(struct event_base *base, const struct ig_store_conf *conf, struct ig_store **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    if (conf->channel == NULL || conf->channel[0] == '\0') {
        ig_errf(err, errlen, "store: no pub/sub channel");
        return IG_ERR_CONFIG;
    }
    struct ig_store *s = ig_xcalloc(1, sizeof(*s));
    int rc = IG_ERR_CONFIG;
    s->base = base;
    s->on_event = conf->on_event;
    s->on_state = conf->on_state;
    s->arg = conf->arg;
    s->channel = ig_xstrdup(conf->channel);
    s->down_since_us = ig_now_us();
    set_why(s, "not connected yet");
    s->restart_ms = RESTART_MIN_MS;
    const char *url = conf->url != NULL ? conf->url : "";
    if (url[0] == '\0') {
        if (conf->data_dir == NULL || conf->data_dir[0] == '\0') {
            ig_errf(err, errlen, "store: embedded redis (url \"\") needs a data_dir");
            goto fail;
        }
        s->embedded = 1;
        s->data_dir = ig_xstrdup(conf->data_dir);
        s->redis_server = ig_xstrdup(conf->redis_server ? conf->redis_server : "redis-server");
        size_t n = strlen(s->data_dir) + 32;
        s->path = ig_xmalloc(n);
        s->pidfile = ig_xmalloc(n);
        s->logfile = ig_xmalloc(n);
        snprintf(s->path, n, "%s/" STORE_SOCK, s->data_dir);
        snprintf(s->pidfile, n, "%s/redis.pid", s->data_dir);
        snprintf(s->logfile, n, "%s/" STORE_LOG, s->data_dir);
        if (strlen(s->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            ig_errf(err, errlen, "store: data_dir %s is too long for a unix socket path (%zu max)",
                    s->data_dir, sizeof(((struct sockaddr_un *)0)->sun_path) - 12);
            goto fail;
        }
    } else if (parse_url(s, url) < 0) {
        ig_errf(err, errlen,
                "store: url '%s' is not \"\" (embedded), redis://HOST[:PORT][/DB] or "
                "unix:///PATH[?db=N] (no credentials, no TLS)",
                url);
        goto fail;
    }
    if (s->host != NULL) {
        struct in6_addr a6;
        if (inet_pton(AF_INET, s->host, &a6) != 1 && inet_pton(AF_INET6, s->host, &a6) != 1) {
            struct evdns_base *dns = evdns_base_new(
                base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
            if (dns != NULL) {
                s->dns = ig_xcalloc(1, sizeof(*s->dns));
                s->dns->dns = dns;
                s->dns->base = base;
                s->dns->refs = 1;
            }
            if (dns == NULL) {
                ig_errf(err, errlen, "store: cannot set up DNS (/etc/resolv.conf) for %s", s->host);
                rc = IG_ERR_IO;
                goto fail;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        s->conn[i].s = s;
        s->conn[i].which = i;
        s->conn[i].timer = evtimer_new(base, conn_timer, &s->conn[i]);
        if (s->conn[i].timer == NULL) {
            ig_errf(err, errlen, "store: evtimer_new failed");
            rc = IG_ERR_NOMEM;
            goto fail;
        }
    }
    s->watch = event_new(base, -1, EV_PERSIST, watch_timer, s);
    if (s->watch == NULL) {
        ig_errf(err, errlen, "store: event_new failed");
        rc = IG_ERR_NOMEM;
        goto fail;
    }
    if (s->embedded) {
        s->child_timer = event_new(base, -1, EV_PERSIST, child_timer, s);
        if (s->child_timer == NULL) {
            ig_errf(err, errlen, "store: event_new failed");
            rc = IG_ERR_NOMEM;
            goto fail;
        }
        rc = embedded_start(s, err, errlen);
        if (rc < 0)
            goto fail;
        struct timeval tv = ms_tv(CHILD_POLL_MS);
        event_add(s->child_timer, &tv);
    }
    struct timeval wtv = ms_tv(WATCH_MS);
    event_add(s->watch, &wtv);
    for (int i = 0; i < 2; i++)
        conn_start(&s->conn[i]);
    *out = s;
    return 0;
fail:
    child_stop(s);
    destroy(s);
    return rc;
}

int ig_store_up(const struct ig_store *s)
{
    return s->up && !s->dying;
}

size_t ig_store_pending(const struct ig_store *s)
{
    return s->npending;
}

pid_t ig_store_child_pid(const struct ig_store *s)
{
    return s->child > 0 ? s->child : 0;
}

void ig_store_describe(const struct ig_store *s, char *buf, size_t len)
{
    char t[300];
    target(s, t, sizeof(t));
    if (s->up) {
        snprintf(buf, len, "redis %s up", t);
        return;
    }
    double secs = (double)(ig_now_us() - s->down_since_us) / 1e6;
    snprintf(buf, len, "redis %s down since %.1f s: %s", t, secs, s->why);
}

void ig_store_free(struct ig_store *s)
{
    if (s == NULL || s->dying)
        return;
    s->dying = 1;
    s->up = 0;
    enter(s);
    for (int i = 0; i < 2; i++)
        evtimer_del(s->conn[i].timer);
    if (s->child_timer != NULL)
        event_del(s->child_timer);
    if (s->watch != NULL)
        event_del(s->watch);
    /* Callbacks first, each exactly once; hiredis later frees the orphans. */
    struct req *q = s->reqs; /* oldest first: the list is pushed at its head */
    while (q != NULL && q->next != NULL)
        q = q->next;
    while (q != NULL) {
        struct req *prev = q->prev;
        IG_DLIST_UNLINK(s->reqs, q);
        s->npending--;
        q->s = NULL;
        q->cb(s, NULL, q->arg);
        q = prev;
    }
    for (int i = 0; i < 2; i++) {
        dns_abandon(&s->conn[i]);
        redisAsyncContext *ac = s->conn[i].ac;
        if (ac != NULL) {
            detach(ac);
            s->conn[i].ac = NULL;
            redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
        }
    }
    child_stop(s);
    leave(s);
}
