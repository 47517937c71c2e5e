/*
 * gateway.h - the stateful core: endpoints, routing, batching lanes and the
 * scatter of predictions back to their requests. It wires the pure modules
 * (codec, batcher) to the stateful ones (http, upstream, workers).
 */
#ifndef INFERGATE_GATEWAY_H
#define INFERGATE_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ig_config;
struct ig_gateway;

/*
 * Load every configured endpoint, start the worker pool and the listener.
 * <cfg> must outlive the gateway. Returns 0, or IG_ERR_CONFIG / IG_ERR_IO
 * with a one-line reason in <err>.
 */
int ig_gateway_new(struct event_base *base, const struct ig_config *cfg, struct ig_gateway **out,
                   char *err, size_t errlen);

/* The port the listener is bound to. */
uint16_t ig_gateway_port(const struct ig_gateway *gw);

/*
 * Graceful stop: stop accepting, flush every queued row, answer every
 * accepted request (a request counts from its first byte: bodies still
 * arriving are waited for), then leave the event loop. The loop is left
 * from a timer that polls for that, never from inside this call. If
 * drain_timeout_ms passes first, leave anyway; ig_gateway_drained() then
 * returns 0. The last log line states the counts: requests answered during
 * the drain, and requests cut off at the timeout.
 */
void ig_gateway_drain(struct ig_gateway *gw);
int ig_gateway_drained(const struct ig_gateway *gw);

void ig_gateway_free(struct ig_gateway *gw);

/*
 * Endpoints of the admin API (src/admin): served beside the configuration
 * file's, under their EndpointName, with one backend per production
 * variant. A request goes to the variant its TargetVariant names, else to
 * one drawn by weight.
 */
#define IG_GATEWAY_MAX_VARIANTS 10         /* ProductionVariants per endpoint (SageMaker's) */
#define IG_GATEWAY_MAX_ADMIN_VARIANTS 4096 /* variants served at once (admin_max_endpoints) */

/*
 * What the admin module adds to the main listener: POST / with X-Amz-Target
 * goes to <admin> when set (admin_on_main); /readyz reports <ready>'s
 * reason as "degraded" (the data plane still serves), and <loading>; with
 * <data_auth>,
 * InvokeEndpoint requests must carry a valid SigV4 signature.
 */
struct ig_auth;
struct ig_http_req;
struct ig_gateway_hooks {
    void (*admin)(void *arg, struct ig_http_req *http);
    int (*ready)(void *arg, char *why, size_t len);
    /* 1 while the endpoints of the job store are being loaded at start: a
     * request for an unknown endpoint then gets 503 ServiceUnavailable (it
     * may be one of them), /readyz 503 */
    int (*loading)(void *arg);
    void *arg;
    const struct ig_auth *data_auth;
};
void ig_gateway_set_hooks(struct ig_gateway *gw, const struct ig_gateway_hooks *h);

struct ig_model;
struct ig_gateway_variant {
    const char *variant;   /* VariantName */
    const char *model_url; /* file://PATH (with <model>: its path, for messages), http(s)://... */
    struct ig_model *model; /* loaded off the loop, or NULL; taken over (also on failure) */
    double weight;          /* InitialVariantWeight */
};

/*
 * Serve endpoint <name> with variants <v>[0..n), replacing any it had: new
 * requests go to the new variants at once; requests already routed to the
 * old ones finish there, and the old ones are freed once idle (an update
 * fails no request in flight). Changes nothing and returns IG_ERR_INVALID
 * (or the upstream's error) with <err> when a variant cannot be opened or
 * <name> is a configuration-file endpoint (case-insensitive).
 */
int ig_gateway_serve(struct ig_gateway *gw, const char *name, struct ig_gateway_variant *v,
                     size_t n, char *err, size_t errlen);
/* Stop routing requests to <name> (a request then gets "Endpoint ... not
 * found"); the ones it holds finish. */
void ig_gateway_unserve(struct ig_gateway *gw, const char *name);
/* 1 when the configuration file has an endpoint <name> (case-insensitive). */
int ig_gateway_is_configured(const struct ig_gateway *gw, const char *name);
/* Requests, streams and batches still open on <name>'s admin variants,
 * current or retired (0: a DeleteEndpoint has drained). */
uint32_t ig_gateway_busy(const struct ig_gateway *gw, const char *name);
/* The same for the retired variants only (not 0 until they are freed). */
uint32_t ig_gateway_retired_busy(const struct ig_gateway *gw, const char *name);
/* The longest <name>'s admin variants, current or retired, hold a request
 * (their request_timeout_ms): whatever they hold now is answered by then. */
uint64_t ig_gateway_hold_ms(const struct ig_gateway *gw, const char *name);

#endif /* INFERGATE_GATEWAY_H */
