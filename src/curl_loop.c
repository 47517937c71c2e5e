/*
 * curl_loop.c - libcurl's multi-socket API on a libevent loop.
 *
 * libcurl says which sockets to watch (sock_cb) and when to call it back
 * (timer_cb); libevent watches and calls curl_multi_socket_action. Finished
 * transfers are collected after each action and called back outside of
 * libcurl's own call stack, so a callback may add or cancel transfers.
 */
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>

#include "infergate/common.h"
#include "infergate/curl_loop.h"

/* A running transfer (CURLOPT_PRIVATE); listed so that free can cancel
 * what runs (this libcurl has no curl_multi_get_handles). */
struct curl_xfer {
    ig_curl_done_cb *cb;
    void *arg;
    CURL *easy;
    struct curl_xfer *prev, *next;
};

struct curl_sock {
    struct event *ev;
    struct ig_curl_loop *l;
    curl_socket_t fd;
    struct curl_sock *prev, *next;
};

struct ig_curl_loop {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    unsigned running; /* added, not called back */
    unsigned sockets; /* sockets libcurl asked us to watch */
    struct curl_xfer *xfers;
    struct curl_sock *socks;
    long max_host_conns; /* the CURLM's options, for ig_curl_loop_reset */
    int multiplex;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_global(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Call back every finished transfer. */
static void curl_loop_reap(struct ig_curl_loop *l)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(l->multi, &left)) != NULL) {
        struct curl_xfer *x = NULL;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(l->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x != NULL) {
            ig_curl_done_cb *cb = x->cb;
            void *arg = x->arg;

            l->running--;
            IG_DLIST_UNLINK(l->xfers, x);
            free(x);
            cb(easy, rc, arg);
        }
    }
}

static void curl_loop_action(struct ig_curl_loop *l, curl_socket_t fd, int flags)
{
    int still;

    curl_multi_socket_action(l->multi, fd, flags, &still);
    curl_loop_reap(l);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct curl_sock *s = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);

    curl_loop_action(s->l, (curl_socket_t)fd, flags);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    curl_loop_action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct ig_curl_loop *l = userp;
    struct curl_sock *s = socketp;
    short kind;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            event_free(s->ev);
            IG_DLIST_UNLINK(l->socks, s);
            free(s);
            l->sockets--;
        }
        curl_multi_assign(l->multi, fd, NULL);
        return 0;
    }
    kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return -1;
        s->l = l;
        s->fd = fd;
        l->sockets++;
        IG_DLIST_PUSH(l->socks, s);
        curl_multi_assign(l->multi, fd, s);
    } else {
        event_free(s->ev);
    }
    s->ev = event_new(l->base, fd, kind, on_sock_event, s);
    if (s->ev == NULL) {
        IG_DLIST_UNLINK(l->socks, s);
        curl_multi_assign(l->multi, fd, NULL);
        free(s);
        l->sockets--;
        return -1;
    }
    event_add(s->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct ig_curl_loop *l = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(l->timer);
        return 0;
    }
    /* 0: act soon, but from the loop, never from inside libcurl's call */
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    evtimer_add(l->timer, &tv);
    return 0;
}

/* A CURLM with <l>'s callbacks and options. */
static CURLM *curl_loop_multi(struct ig_curl_loop *l)
{
    CURLM *m = curl_multi_init();

    if (m == NULL)
        return NULL;
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, l);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(m, CURLMOPT_TIMERDATA, l);
    curl_multi_setopt(m, CURLMOPT_PIPELINING, l->multiplex ? CURLPIPE_MULTIPLEX : CURLPIPE_NOTHING);
    if (l->max_host_conns > 0) {
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, l->max_host_conns);
        /* idle connections kept for reuse: as many as may be busy */
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, l->max_host_conns);
    }
    return m;
}

struct ig_curl_loop *ig_curl_loop_new(struct event_base *base, long max_host_conns, int multiplex)
{
    struct ig_curl_loop *l;

    pthread_once(&curl_once, curl_global);
    if (curl_init_rc != 0)
        return NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->base = base;
    l->max_host_conns = max_host_conns;
    l->multiplex = multiplex;
    l->multi = curl_loop_multi(l);
    l->timer = evtimer_new(base, on_timer, l);
    if (l->multi == NULL || l->timer == NULL) {
        ig_curl_loop_free(l);
        return NULL;
    }
    return l;
}

/* Drop the sockets libcurl did not REMOVE (the pool's, at cleanup). */
static void curl_loop_drop_socks(struct ig_curl_loop *l)
{
    while (l->socks != NULL) {
        struct curl_sock *s = l->socks;

        IG_DLIST_UNLINK(l->socks, s);
        event_free(s->ev);
        free(s);
        l->sockets--;
    }
}

int ig_curl_loop_reset(struct ig_curl_loop *l)
{
    CURLM *m;

    if (l->running > 0 || (m = curl_loop_multi(l)) == NULL)
        return -1;
    curl_multi_cleanup(l->multi); /* closes the pool's connections */
    curl_loop_drop_socks(l);
    evtimer_del(l->timer);
    l->multi = m;
    return 0;
}

int ig_curl_loop_add(struct ig_curl_loop *l, CURL *easy, ig_curl_done_cb *cb, void *arg)
{
    struct curl_xfer *x = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x != NULL)
        return IG_ERR_INVALID; /* running already: left as it is */
    if ((x = malloc(sizeof(*x))) == NULL)
        return IG_ERR_NOMEM;
    x->cb = cb;
    x->arg = arg;
    x->easy = easy;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(l->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return IG_ERR_IO;
    }
    l->running++;
    IG_DLIST_PUSH(l->xfers, x);
    return 0;
}

void ig_curl_loop_cancel(struct ig_curl_loop *l, CURL *easy)
{
    struct curl_xfer *x = NULL;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    if (x == NULL)
        return; /* not ours, or already called back */
    curl_multi_remove_handle(l->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    IG_DLIST_UNLINK(l->xfers, x);
    free(x);
    l->running--;
}

unsigned ig_curl_loop_running(const struct ig_curl_loop *l)
{
    return l->running;
}

unsigned ig_curl_loop_sockets(const struct ig_curl_loop *l)
{
    return l->sockets;
}

void ig_curl_loop_free(struct ig_curl_loop *l)
{
    if (l == NULL)
        return;
    while (l->xfers != NULL) { /* straight from the list: never through a handle's state */
        struct curl_xfer *x = l->xfers;

        curl_multi_remove_handle(l->multi, x->easy);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
        IG_DLIST_UNLINK(l->xfers, x);
        free(x);
        l->running--;
    }
    if (l->multi != NULL)
        curl_multi_cleanup(l->multi);
    curl_loop_drop_socks(l); /* the pool's sockets libcurl did not REMOVE */
    if (l->timer != NULL)
        event_free(l->timer);
    free(l);
}
