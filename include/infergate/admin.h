/*
 * admin.h - the control plane: SageMaker's JSON 1.1 API (models, endpoint
 * configs, endpoints) over the Redis job store, and the deployments that
 * make its endpoints served by the gateway.
 *
 * The API is served on admin_listen, and on the main listener when
 * admin_on_main is on (the gateway hands it POST / with X-Amz-Target).
 * Every piece of metadata lives in Redis (docs/admin.md has the key
 * layout); each gateway sharing a Redis serves every endpoint in it, told
 * of changes on a pub/sub channel. All of it runs on the loop thread.
 */
#ifndef INFERGATE_ADMIN_H
#define INFERGATE_ADMIN_H

#include <stddef.h>

struct event_base;
struct ig_auth;
struct ig_config;
struct ig_gateway;
struct ig_http_req;
struct ig_admin;

/*
 * Connect to the job store (or start the embedded redis-server), open the
 * admin listener when configured, and start serving the endpoints the
 * store holds. <cfg>, <gw> and <auth> (NULL: no SigV4 check) must outlive
 * the admin module. Returns 0, or IG_ERR_CONFIG / IG_ERR_IO with <err>.
 */
int ig_admin_new(struct event_base *base, const struct ig_config *cfg, struct ig_gateway *gw,
                 const struct ig_auth *auth, struct ig_admin **out, char *err, size_t errlen);

/* One API call (POST / with X-Amz-Target), answered now or later. */
void ig_admin_handle(struct ig_admin *a, struct ig_http_req *http);

/* 0 when the store is reachable; else -1 and a sentence in <why>. */
int ig_admin_ready(const struct ig_admin *a, char *why, size_t len);

/* 1 from the start until the job store's endpoints are read and served
 * (at most 60 s): a request for an unknown endpoint may be for one of them. */
int ig_admin_loading(struct ig_admin *a);

/* The port of the admin listener (0: none). */
unsigned ig_admin_port(const struct ig_admin *a);

/* Stop taking calls (the drain). */
void ig_admin_stop_accepting(struct ig_admin *a);

/* Stop the children (bring-your-own model servers, the embedded Redis),
 * close the listener and free. */
void ig_admin_free(struct ig_admin *a);

#endif /* INFERGATE_ADMIN_H */
