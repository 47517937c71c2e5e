/*
 * curl_loop.h - libcurl's multi-socket API driven by the gateway's own
 * libevent loop: no extra thread, nothing blocks.
 *
 * One ig_curl_loop is one CURLM (its connection pool and, with
 * CURLPIPE_MULTIPLEX, its HTTP/2 connections). A transfer is an easy
 * handle the caller set up; the loop runs it and calls back once, on the
 * loop thread, never from inside ig_curl_loop_add.
 */
#ifndef INFERGATE_CURL_LOOP_H
#define INFERGATE_CURL_LOOP_H

#include <curl/curl.h>

struct event_base;
struct ig_curl_loop;

/* <easy> finished with <rc> (CURLE_OK: an HTTP answer came, whatever its
 * status). The handle is out of the multi: the callback may free it, or
 * reset and add it again. */
typedef void ig_curl_done_cb(CURL *easy, CURLcode rc, void *arg);

/*
 * A loop on <base>. <max_host_conns> caps the connections to one host
 * (0: libcurl's default, none); <multiplex> != 0 lets transfers share
 * HTTP/2 connections. Returns NULL when libcurl cannot be set up.
 */
struct ig_curl_loop *ig_curl_loop_new(struct event_base *base, long max_host_conns, int multiplex);

/* Start <easy>. 0, or IG_ERR_INVALID (it runs already: untouched),
 * IG_ERR_NOMEM or IG_ERR_IO (then <cb> never runs for this add). */
int ig_curl_loop_add(struct ig_curl_loop *l, CURL *easy, ig_curl_done_cb *cb, void *arg);

/* Stop <easy> (added, not yet called back): its callback never runs. The
 * handle is the caller's again. */
void ig_curl_loop_cancel(struct ig_curl_loop *l, CURL *easy);

/* Transfers added and not yet called back. */
unsigned ig_curl_loop_running(const struct ig_curl_loop *l);

/* Connections libcurl has open (CURLMINFO-less: counted from its socket
 * callbacks, so a connection idle in the pool counts too). */
unsigned ig_curl_loop_sockets(const struct ig_curl_loop *l);

/* Close every connection of the pool and start an empty one, when no
 * transfer runs (else -1, nothing done). Safe from a done callback: the
 * loop reads its new CURLM from there on. */
int ig_curl_loop_reset(struct ig_curl_loop *l);

/* Free the loop: transfers still running are cancelled without callbacks
 * (their easy handles stay the callers'). NULL is fine. */
void ig_curl_loop_free(struct ig_curl_loop *l);

#endif /* INFERGATE_CURL_LOOP_H */
