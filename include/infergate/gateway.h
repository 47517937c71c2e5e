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

#endif /* INFERGATE_GATEWAY_H */
