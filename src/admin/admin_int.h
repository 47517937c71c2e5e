/*
 * admin_int.h - private to src/admin: the admin module's state, shared by
 * api.c (the JSON 1.1 operations) and deploy.c (what makes the store's
 * endpoints served by this gateway).
 *
 * Key layout in Redis (docs/admin.md):
 *   infergate:model:<lname>            JSON: DescribeModel's output
 *   infergate:endpoint-config:<lname>  JSON: DescribeEndpointConfig's output
 *   infergate:endpoint:<lname>         JSON: DescribeEndpoint's output, plus
 *                                      private members starting with '_'
 *   infergate:models, infergate:endpoint-configs, infergate:endpoints
 *                                      sorted sets: lname by creation time (ms)
 *   channel infergate:events           "endpoint <lname>" on every change
 * <lname> is the name in lower case: names are unique regardless of case,
 * as in SageMaker, and keep their case in the documents.
 */
#ifndef INFERGATE_ADMIN_INT_H
#define INFERGATE_ADMIN_INT_H

#include <jansson.h>
#include <stdint.h>

#include "infergate/store.h"

#define ADM_PREFIX "infergate:"
#define ADM_CHANNEL "infergate:events"
/* Gateways live now: sorted set of ids by the time (ms) their heartbeat
 * lapses. A delete's drain waits for each live one (docs/admin.md). */
#define ADM_GATEWAYS ADM_PREFIX "gateways"
#define ADM_HEARTBEAT_S 1
#define ADM_HEARTBEAT_TTL_MS 5000
#define ADM_ACCOUNT "000000000000"
#define ADM_REGION "us-east-1"
#define ADM_NAME_MAX 63
/* Resources of each kind the store may hold (ResourceLimitExceeded past it). */
#define ADM_MAX_RESOURCES 1000
/* Bytes of one stored document (an endpoint copies its variants' containers,
 * Environment maps included): with ADM_MAX_RESOURCES, what the store may
 * hold is bounded (~256 MiB a kind at worst). */
#define ADM_DOC_MAX ((size_t)256 << 10)
/* ListX calls waiting for the store at once (each reads every summary). */
#define ADM_LISTS_MAX 8
/* The longest start-up may take to read and deploy the store's endpoints. */
#define ADM_LOADING_MAX_US (60ull * 1000000)
/* Calls waiting for the store at once (ThrottlingException past it). */
#define ADM_CALLS_MAX 4096
/* Bytes of a call's body (the API's requests are small). */
#define ADM_BODY_MAX ((size_t)1 << 20)
#define ADM_STR2(x) #x
#define ADM_STR(x) ADM_STR2(x)

struct event;
struct event_base;
struct ig_auth;
struct ig_config;
struct ig_gateway;
struct ig_http_server;
struct ig_store;
struct adm_call;
struct adm_dep;
struct adm_retired;
struct ig_workers;

enum adm_kind { ADM_MODEL = 0, ADM_CONFIG = 1, ADM_ENDPOINT = 2, ADM_NKINDS = 3 };

struct adm_kind_info {
    const char *arn_type;   /* "model" */
    const char *key;        /* "infergate:model:" */
    const char *index;      /* "infergate:models" */
    const char *what;       /* "model" (in messages) */
    const char *name_field; /* "ModelName" */
    const char *arn_field;  /* "ModelArn" */
    const char *list_field; /* "Models" */
};
extern const struct adm_kind_info adm_kinds[ADM_NKINDS];

struct ig_admin {
    struct event_base *base;
    const struct ig_config *cfg;
    struct ig_gateway *gw;
    const struct ig_auth *auth;
    struct ig_store *store;
    struct ig_http_server *http; /* admin_listen's, or NULL */
    struct adm_call *calls;      /* waiting for the store */
    uint32_t ncalls;
    uint32_t nlists; /* of them, ListX */
    int stopping;
    /* deploy.c */
    struct adm_dep *deps;        /* endpoints this gateway knows */
    struct ig_workers *loader;   /* one thread: fetches and loads models */
    struct adm_retired *retired; /* children of variants no longer served */
    struct event *retired_tick;
    int closing;
    char id[33];             /* this gateway, in ADM_GATEWAYS (random hex) */
    struct event *heartbeat; /* renews it */
    /* Start-up: until the store's endpoints are read and deployed (or
     * ADM_LOADING_MAX_US passed), an unknown endpoint may be one of them. */
    int loading;
    int resynced;             /* the first listing came */
    uint32_t initial_pending; /* of its reads, not answered yet */
    uint64_t loading_until;
};

/* "arn:aws:sagemaker:us-east-1:000000000000:<type>/<lname>" */
void adm_arn(char *buf, size_t len, enum adm_kind k, const char *name);
void adm_lower(char *dst, const char *src, size_t cap);
double adm_now(void); /* epoch seconds, milliseconds kept */
/* A document as stored and sent: compact, members in order, timestamps
 * with their milliseconds. */
char *adm_dump(const json_t *j);

/* 0 when the program <path> of a file:// image lies (symlinks resolved)
 * in one of admin_exec_dirs: its resolved path in <real>; else -1 and a
 * sentence in <why>. */
int adm_exec_allowed(const struct ig_config *cfg, const char *path, char *real, size_t reallen,
                     char *why, size_t len);

/* Set endpoint <lname>'s document to <doc> if its version is still <ver>
 * (adm_lua_cas), announcing the change; <cb> gets 1, 0 or -1. Returns
 * ig_store_cmd's code. */
int adm_cas(struct ig_admin *a, const char *lname, json_int_t ver, const char *doc,
            ig_store_reply_cb *cb, void *arg);

/* DescribeEndpoint's ProductionVariants for resolved variants <vars>. */
json_t *adm_variant_summaries(json_t *vars, double when);

/* deploy.c */
/* The store is up (again): read every endpoint and serve what it says. */
void adm_dep_resync(struct ig_admin *a);
/* "endpoint <lname>" came on the channel. */
void adm_dep_event(struct ig_admin *a, const char *msg, size_t len);
/* Renew this gateway's entry in ADM_GATEWAYS every second, from now on. */
void adm_dep_heartbeat(struct ig_admin *a);
/* -1 and a sentence when an endpoint InService in the store failed to
 * deploy on this gateway (it is retried); else 0. */
int adm_dep_failed(const struct ig_admin *a, char *why, size_t len);
/* Remove the model directories that gateways no longer running left in
 * DATA_DIR/models (start-up). */
void adm_dep_clean(const struct ig_admin *a);
/* 1 while an endpoint read at start is still being read or deployed. */
int adm_dep_loading(const struct ig_admin *a);
/* Stop every child and forget every endpoint (the gateway stays up). */
void adm_dep_free_all(struct ig_admin *a);

/* Lua scripts (api.c), also used by deploy.c. */
/* KEYS[1] doc. ARGV: version expected, new doc, channel, message. Sets the
 * doc when its "_V" is the version; returns 1, 0 (another version) or -1
 * (gone). */
extern const char adm_lua_cas[];
/* KEYS[1] doc, KEYS[2] index. ARGV: version expected, lname, channel,
 * message. Deletes when "_V" matches; 1, 0 or -1. */
extern const char adm_lua_del_if[];
/* KEYS[1] index. ARGV[1] key prefix, ARGV[2..] members. Every doc of the
 * index, in index order, with only those members (JSON). */
extern const char adm_lua_list[];

#endif /* INFERGATE_ADMIN_INT_H */
