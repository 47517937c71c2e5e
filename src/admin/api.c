/*
 * api.c - SageMaker's control-plane API (JSON 1.1) for models, endpoint
 * configs and endpoints, on the Redis job store.
 *
 * A call is POST / with X-Amz-Target: SageMaker.<Operation> and a JSON
 * body. It is checked (signature, shape, names) on arrival, then becomes a
 * short chain of store commands, each answered on the loop; the answer has
 * the service's shape, errors included: a missing or duplicate resource is
 * a ValidationException worded as SageMaker words it (the AWS CLI's
 * waiters depend on that). Status changes of an endpoint are atomic: a
 * Lua script sets the new document only if the version ("_V") it was
 * computed from is still the stored one.
 */
#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "infergate/admin.h"
#include "infergate/artifact.h"
#include "infergate/auth.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/gateway.h"
#include "infergate/http.h"
#include "infergate/store.h"

#include "admin_int.h"

const struct adm_kind_info adm_kinds[ADM_NKINDS] = {
    {"model", ADM_PREFIX "model:", ADM_PREFIX "models", "model", "ModelName", "ModelArn", "Models"},
    {"endpoint-config", ADM_PREFIX "endpoint-config:", ADM_PREFIX "endpoint-configs",
     "endpoint configuration", "EndpointConfigName", "EndpointConfigArn", "EndpointConfigs"},
    {"endpoint", ADM_PREFIX "endpoint:", ADM_PREFIX "endpoints", "endpoint", "EndpointName",
     "EndpointArn", "Endpoints"},
};

const char adm_lua_cas[] = "local cur = redis.call('GET', KEYS[1])\n"
                           "if not cur then return -1 end\n"
                           "local d = cjson.decode(cur)\n"
                           "if d._V ~= tonumber(ARGV[1]) then return 0 end\n"
                           "redis.call('SET', KEYS[1], ARGV[2])\n"
                           "redis.call('PUBLISH', ARGV[3], ARGV[4])\n"
                           "return 1\n";

const char adm_lua_del_if[] = "local cur = redis.call('GET', KEYS[1])\n"
                              "if not cur then return -1 end\n"
                              "if ARGV[1] ~= '' then\n"
                              "  local d = cjson.decode(cur)\n"
                              "  if d._V ~= tonumber(ARGV[1]) then return 0 end\n"
                              "end\n"
                              "redis.call('DEL', KEYS[1])\n"
                              "redis.call('ZREM', KEYS[2], ARGV[2])\n"
                              "if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end\n"
                              "return 1\n";

const char adm_lua_list[] = "local names = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
                            "local out = {}\n"
                            "for i, n in ipairs(names) do\n"
                            "  local raw = redis.call('GET', ARGV[1] .. n)\n"
                            "  if raw then\n"
                            "    local d = cjson.decode(raw)\n"
                            "    local s = {}\n"
                            "    for j = 2, #ARGV do s[ARGV[j]] = d[ARGV[j]] end\n"
                            "    out[#out + 1] = cjson.encode(s)\n"
                            "  end\n"
                            "end\n"
                            "return out\n";

/* One page in creation order, when nothing filters: KEYS[1] index; ARGV
 * prefix, "1" for descending, offset, count, members. The total first. */
static const char adm_lua_page[] =
    "local total = redis.call('ZCARD', KEYS[1])\n"
    "local a = tonumber(ARGV[3])\n"
    "local b = a + tonumber(ARGV[4]) - 1\n"
    "local names\n"
    "if ARGV[2] == '1' then names = redis.call('ZREVRANGE', KEYS[1], a, b)\n"
    "else names = redis.call('ZRANGE', KEYS[1], a, b) end\n"
    "local out = {tostring(total)}\n"
    "for i, n in ipairs(names) do\n"
    "  local raw = redis.call('GET', ARGV[1] .. n)\n"
    "  if raw then\n"
    "    local d = cjson.decode(raw)\n"
    "    local s = {}\n"
    "    for j = 5, #ARGV do s[ARGV[j]] = d[ARGV[j]] end\n"
    "    out[#out + 1] = cjson.encode(s)\n"
    "  end\n"
    "end\n"
    "return out\n";

/* KEYS[1] doc, KEYS[2] index. ARGV: doc, score, lname, max, channel, msg. */
static const char adm_lua_create[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])\n"
    "if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end\n"
    "return 1\n";

/* ---- small helpers ----------------------------------------------------- */

void adm_lower(char *dst, const char *src, size_t cap)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

void adm_arn(char *buf, size_t len, enum adm_kind k, const char *name)
{
    char lname[ADM_NAME_MAX + 1];

    adm_lower(lname, name, sizeof(lname));
    snprintf(buf, len, "arn:aws:sagemaker:" ADM_REGION ":" ADM_ACCOUNT ":%s/%s",
             adm_kinds[k].arn_type, lname);
}

double adm_now(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)(tv.tv_usec / 1000) / 1000.0;
}

/* Timestamps are epoch seconds with milliseconds: 13 significant digits
 * after the 10 of the seconds would print noise, 14 keep the millisecond. */
char *adm_dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(14));
}

/* ---- calls ------------------------------------------------------------- */

enum adm_opcode {
    OP_CREATE,
    OP_DESCRIBE,
    OP_DELETE,
    OP_LIST,
    OP_UPDATE,
};

struct adm_call {
    struct ig_admin *a;
    struct ig_http_req *http; /* NULL once the client went away */
    struct adm_call *prev, *next;
    enum adm_kind kind;
    enum adm_opcode op;
    json_t *in;
    json_t *doc;  /* the document being made or changed */
    json_t *vars; /* CreateEndpoint/UpdateEndpoint: the variants resolved */
    json_t *cfg;  /* their endpoint config */
    char name[ADM_NAME_MAX + 1];
    char lname[ADM_NAME_MAX + 1];
    char arn[256];
    int listing; /* counted in a->nlists */
    int tries;   /* compare-and-set attempts lost to a concurrent change */
};

static void adm_call_free(struct adm_call *c)
{
    struct ig_admin *a = c->a;

    if (c->http != NULL)
        ig_http_req_set_close_cb(c->http, NULL, NULL);
    if (c->prev)
        c->prev->next = c->next;
    else if (a->calls == c)
        a->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    a->ncalls--;
    if (c->listing)
        a->nlists--;
    json_decref(c->in);
    json_decref(c->doc);
    json_decref(c->vars);
    json_decref(c->cfg);
    free(c);
}

static void adm_respond(struct adm_call *c, int status, const char *etype, char *body)
{
    struct ig_http_hdr h[2] = {{"Content-Type", "application/x-amz-json-1.1"},
                               {"x-amzn-ErrorType", etype}};

    if (c->http != NULL) {
        ig_http_req_set_close_cb(c->http, NULL, NULL);
        ig_http_respond(c->http, status, h, etype ? 2 : 1, body, body ? strlen(body) : 0);
        c->http = NULL;
    } else {
        free(body);
    }
    adm_call_free(c);
}

/* Answer with an AWS JSON error: both the body's __type (botocore reads
 * only that) and the x-amzn-ErrorType header (the JS SDK reads it first). */
static void adm_send_error(struct ig_http_req *http, int status, const char *type, const char *msg)
{
    struct ig_http_hdr h[2] = {{"Content-Type", "application/x-amz-json-1.1"},
                               {"x-amzn-ErrorType", type}};
    json_t *o = json_pack("{s:s,s:s}", "__type", type, "message", msg);
    char *body = o ? adm_dump(o) : NULL;

    json_decref(o);
    if (body == NULL)
        body = ig_xstrdup("{\"__type\":\"InternalFailure\"}");
    ig_http_respond(http, status, h, 2, body, strlen(body));
}

static void adm_fail(struct adm_call *c, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void adm_fail(struct adm_call *c, int status, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->http != NULL) {
        ig_http_req_set_close_cb(c->http, NULL, NULL);
        adm_send_error(c->http, status, type, msg);
        c->http = NULL;
    }
    adm_call_free(c);
}

static void adm_ok(struct adm_call *c, json_t *out)
{
    char *body = adm_dump(out);

    json_decref(out);
    if (body == NULL) {
        adm_fail(c, 500, "InternalFailure", "The answer could not be encoded.");
        return;
    }
    adm_respond(c, 200, NULL, body);
}

static void adm_not_found(struct adm_call *c, enum adm_kind k, const char *name)
{
    char arn[256];

    adm_arn(arn, sizeof(arn), k, name);
    adm_fail(c, 400, "ValidationException", "Could not find %s \"%s\".", adm_kinds[k].what, arn);
}

static void adm_store_down(struct adm_call *c)
{
    char why[512];

    ig_store_describe(c->a->store, why, sizeof(why));
    adm_fail(c, 503, "ServiceUnavailable", "The job store is unavailable (%s); retry later.", why);
}

/* Send a store command for <c>; on refusal, answer it. 0 when sent. */
static int adm_cmd(struct adm_call *c, ig_store_reply_cb *cb, int argc, const char *const *argv)
{
    size_t lens[16];
    int rv;

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    rv = ig_store_cmd(c->a->store, cb, c, argc, argv, lens);
    if (rv == IG_ERR_FULL) {
        adm_fail(c, 400, "ThrottlingException", "Rate exceeded");
        return rv;
    }
    if (rv < 0) {
        adm_store_down(c);
        return rv;
    }
    return 0;
}

/* A reply that is NULL (connection lost) or an error: answered, 1. */
static int adm_reply_bad(struct adm_call *c, const redisReply *r)
{
    if (r == NULL) {
        adm_store_down(c);
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        ig_log(IG_LOG_ERROR, "admin: store error: %.*s", (int)r->len, r->str);
        adm_fail(c, 500, "InternalFailure", "The job store failed the request.");
        return 1;
    }
    return 0;
}

static void on_call_closed(struct ig_http_req *http, void *arg)
{
    struct adm_call *c = arg;

    (void)http;
    c->http = NULL; /* the store's reply still comes: the call is freed then */
}

/* ---- input checks ------------------------------------------------------ */

int adm_exec_allowed(const struct ig_config *cfg, const char *path, char *real, size_t reallen,
                     char *why, size_t len)
{
    char rp[PATH_MAX], rdir[PATH_MAX], dir[PATH_MAX];
    const char *p = cfg->admin_exec_dirs;

    if (p[0] == '\0') {
        snprintf(why, len,
                 "file:// images (serve programs) are off on this gateway: admin_exec_dirs names "
                 "none");
        return -1;
    }
    if (realpath(path, rp) == NULL) {
        snprintf(why, len, "%.256s: %s", path, strerror(errno));
        return -1;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, ":");

        if (n > 0 && n < sizeof(dir)) {
            memcpy(dir, p, n);
            dir[n] = '\0';
            if (realpath(dir, rdir) != NULL) {
                size_t m = strlen(rdir);

                if (strncmp(rp, rdir, m) == 0 && (rp[m] == '/' || (m == 1 && rdir[0] == '/'))) {
                    snprintf(real, reallen, "%s", rp);
                    return 0;
                }
            }
        }
        p += n + (p[n] == ':');
    }
    snprintf(why, len, "%.256s is not in a directory of admin_exec_dirs", path);
    return -1;
}

/* AWS's wording for a field that breaks its constraints. */
static void adm_invalid(struct adm_call *c, const char *field, const char *value,
                        const char *constraint)
{
    char low[64];

    snprintf(low, sizeof(low), "%s", field);
    low[0] = (char)tolower((unsigned char)low[0]);
    if (value == NULL)
        adm_fail(c, 400, "ValidationException",
                 "1 validation error detected: Value null at '%s' failed to satisfy constraint: "
                 "Member must not be null",
                 low);
    else
        adm_fail(c, 400, "ValidationException",
                 "1 validation error detected: Value '%.256s' at '%s' failed to satisfy "
                 "constraint: %s",
                 value, low, constraint);
}

/* [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}: letters, digits and hyphens, 1..63,
 * no hyphen first or last (ModelName's pattern says the same). */
static int adm_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > ADM_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

#define ADM_NAME_RULE                                                                              \
    "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"

/* A required name member; answered and NULL when missing or bad. */
static const char *adm_need_name(struct adm_call *c, json_t *in, const char *field)
{
    json_t *v = json_object_get(in, field);
    const char *s;

    if (v == NULL || json_is_null(v)) {
        adm_invalid(c, field, NULL, NULL);
        return NULL;
    }
    if (!json_is_string(v)) {
        adm_fail(c, 400, "SerializationException", "%s must be a string.", field);
        return NULL;
    }
    s = json_string_value(v);
    if (!adm_name_ok(s)) {
        adm_invalid(c, field, s, ADM_NAME_RULE);
        return NULL;
    }
    return s;
}

/* An optional string member: NULL when absent; *bad set (and answered)
 * when present and not a string or longer than <max>. */
static const char *adm_opt_str(struct adm_call *c, json_t *in, const char *field, size_t max,
                               int *bad)
{
    json_t *v = json_object_get(in, field);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        adm_fail(c, 400, "SerializationException", "%s must be a string.", field);
        *bad = 1;
        return NULL;
    }
    if (strlen(json_string_value(v)) > max) {
        char rule[96];

        snprintf(rule, sizeof(rule), "Member must have length less than or equal to %zu", max);
        adm_invalid(c, field, json_string_value(v), rule);
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* Environment: string to string, <= 100 entries, keys [a-zA-Z_][a-zA-Z0-9_]*
 * of <= 1024, values <= 1024, 32 KiB in all. */
static int adm_check_env(struct adm_call *c, json_t *env)
{
    const char *k;
    json_t *v;
    size_t total = 0;

    if (env == NULL || json_is_null(env))
        return 0;
    if (!json_is_object(env)) {
        adm_fail(c, 400, "SerializationException", "Environment must be a map of strings.");
        return -1;
    }
    if (json_object_size(env) > 100) {
        adm_fail(c, 400, "ValidationException",
                 "1 validation error detected: Value at 'primaryContainer.environment' failed "
                 "to satisfy constraint: Map value must have at most 100 entries");
        return -1;
    }
    json_object_foreach(env, k, v)
    {
        size_t kl = strlen(k);
        int ok = kl > 0 && kl <= 1024 && (isalpha((unsigned char)k[0]) || k[0] == '_');

        for (size_t i = 1; ok && i < kl; i++)
            ok = isalnum((unsigned char)k[i]) || k[i] == '_';
        if (!ok) {
            adm_fail(c, 400, "ValidationException",
                     "Environment variable name '%.128s' must match [a-zA-Z_][a-zA-Z0-9_]*.", k);
            return -1;
        }
        if (!json_is_string(v) || json_string_length(v) > 1024) {
            adm_fail(c, 400, "ValidationException",
                     "Environment variable '%.128s' must be a string of at most 1024 characters.",
                     k);
            return -1;
        }
        total += kl + json_string_length(v);
    }
    if (total > 32768) {
        adm_fail(c, 400, "ValidationException",
                 "Environment takes at most 32768 bytes of names and values (%zu given).", total);
        return -1;
    }
    return 0;
}

/* ModelDataUrl: file:// to a file that exists; s3:// not yet. */
static int adm_check_data_url(struct adm_call *c, const char *url)
{
    struct stat st;

    if (strncmp(url, "s3://", 5) == 0) {
        adm_fail(c, 400, "ValidationException",
                 "ModelDataUrl %.512s: s3:// model data is not supported yet: use a file:// "
                 "URL to a model.tar.gz or model.json.",
                 url);
        return -1;
    }
    if (strncmp(url, "file://", 7) != 0 || url[7] != '/') {
        adm_fail(c, 400, "ValidationException",
                 "ModelDataUrl %.512s: expected file:///PATH to a model.tar.gz or model.json.",
                 url);
        return -1;
    }
    if (stat(url + 7, &st) != 0 || !S_ISREG(st.st_mode)) {
        adm_fail(c, 400, "ValidationException", "Could not find model data at %.512s.", url);
        return -1;
    }
    return 0;
}

/* ---- describe, delete, list ------------------------------------------- */

/* The document as the API shows it: without the private members. */
static json_t *adm_public(json_t *doc)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;

    json_object_foreach(doc, k, v)
    {
        if (k[0] != '_')
            json_object_set(out, k, v);
    }
    return out;
}

static json_t *adm_parse_doc(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING)
        return NULL;
    return json_loadb(r->str, r->len, 0, NULL);
}

static void on_describe(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    json_t *doc;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type == REDIS_REPLY_NIL) {
        adm_not_found(c, c->kind, c->name);
        return;
    }
    doc = adm_parse_doc(r);
    if (doc == NULL) {
        adm_fail(c, 500, "InternalFailure", "The stored %s is corrupt.", adm_kinds[c->kind].what);
        return;
    }
    adm_ok(c, adm_public(doc));
    json_decref(doc);
}

static void adm_describe(struct adm_call *c)
{
    char key[128];
    const char *name = adm_need_name(c, c->in, adm_kinds[c->kind].name_field);
    const char *argv[2];

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    snprintf(key, sizeof(key), "%s%s", adm_kinds[c->kind].key, c->lname);
    argv[0] = "GET";
    argv[1] = key;
    adm_cmd(c, on_describe, 2, argv);
}

static void on_deleted(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        adm_not_found(c, c->kind, c->name);
        return;
    }
    adm_ok(c, json_object());
}

/* DeleteModel, DeleteEndpointConfig: gone at once (an endpoint serving
 * them keeps its own copy, as in SageMaker). */
static void adm_delete(struct adm_call *c)
{
    char key[128];
    const char *name = adm_need_name(c, c->in, adm_kinds[c->kind].name_field);
    const char *argv[9];

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    snprintf(key, sizeof(key), "%s%s", adm_kinds[c->kind].key, c->lname);
    argv[0] = "EVAL";
    argv[1] = adm_lua_del_if;
    argv[2] = "2";
    argv[3] = key;
    argv[4] = adm_kinds[c->kind].index;
    argv[5] = "";
    argv[6] = c->lname;
    argv[7] = ADM_CHANNEL;
    argv[8] = "";
    adm_cmd(c, on_deleted, 9, argv);
}

/* ListX's filters, sort and page. */
struct adm_list {
    const char *contains;
    const char *status;
    double created_after, created_before, modified_after, modified_before;
    int sort_by; /* 0 CreationTime, 1 Name, 2 Status */
    int desc;
    size_t offset, max;
    enum adm_kind kind;
};

static struct adm_list adm_list_q; /* the sort's comparison reads it (loop thread only) */

static int adm_cmp(const void *pa, const void *pb)
{
    json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    const char *nf = adm_kinds[adm_list_q.kind].name_field;
    int d = 0;

    if (adm_list_q.sort_by == 1) {
        d = strcasecmp(json_string_value(json_object_get(a, nf)),
                       json_string_value(json_object_get(b, nf)));
    } else if (adm_list_q.sort_by == 2) {
        const char *sa = json_string_value(json_object_get(a, "EndpointStatus"));
        const char *sb = json_string_value(json_object_get(b, "EndpointStatus"));

        d = strcmp(sa ? sa : "", sb ? sb : "");
    }
    if (d == 0) {
        double ta = json_number_value(json_object_get(a, "CreationTime"));
        double tb = json_number_value(json_object_get(b, "CreationTime"));

        d = ta < tb ? -1 : ta > tb;
    }
    if (d == 0)
        d = strcmp(json_string_value(json_object_get(a, nf)),
                   json_string_value(json_object_get(b, nf)));
    return adm_list_q.desc ? -d : d;
}

static int adm_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return n == 0;
}

/* What ListX shows of each: the Lua script sends only these. */
static const char *const adm_model_keys[] = {"ModelName", "ModelArn", "CreationTime", NULL};
static const char *const adm_config_keys[] = {"EndpointConfigName", "EndpointConfigArn",
                                              "CreationTime", NULL};
static const char *const adm_ep_keys[] = {"EndpointName",     "EndpointArn",    "CreationTime",
                                          "LastModifiedTime", "EndpointStatus", NULL};
static const char *const *const adm_summary_keys[ADM_NKINDS] = {adm_model_keys, adm_config_keys,
                                                                adm_ep_keys};

static void on_listed(struct ig_store *s, redisReply *r, void *arg)
{
    static const char *const *const *keys = adm_summary_keys;
    struct adm_call *c = arg;
    struct adm_list *q = &adm_list_q;
    json_t **docs, *out, *arr;
    size_t n = 0, first = 0, from = 0, total = 0;
    int page;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        adm_fail(c, 500, "InternalFailure", "The job store answered the listing oddly.");
        return;
    }
    {
        json_int_t off = json_integer_value(json_object_get(c->doc, "off"));
        json_int_t max = json_integer_value(json_object_get(c->doc, "max"));

        q->offset = (size_t)off;
        q->max = (size_t)max;
        q->sort_by = (int)json_integer_value(json_object_get(c->doc, "sort"));
        q->desc = (int)json_integer_value(json_object_get(c->doc, "desc"));
        q->contains = json_string_value(json_object_get(c->doc, "contains"));
        q->status = json_string_value(json_object_get(c->doc, "status"));
        q->created_after = json_number_value(json_object_get(c->doc, "ca"));
        q->created_before = json_number_value(json_object_get(c->doc, "cb"));
        q->modified_after = json_number_value(json_object_get(c->doc, "ma"));
        q->modified_before = json_number_value(json_object_get(c->doc, "mb"));
        q->kind = c->kind;
    }
    page = json_is_true(json_object_get(c->doc, "page"));
    if (page) {
        /* the store sent the page itself, its total first */
        total = r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING
                    ? (size_t)strtoull(r->element[0]->str, NULL, 10)
                    : 0;
        first = 1;
    }
    docs = ig_xcalloc(r->elements + 1, sizeof(*docs));
    for (size_t i = first; i < r->elements; i++) {
        const char *nf = adm_kinds[c->kind].name_field;
        json_t *d = adm_parse_doc(r->element[i]);
        double ct, mt;

        if (d == NULL || !json_is_string(json_object_get(d, nf))) {
            json_decref(d);
            continue;
        }
        ct = json_number_value(json_object_get(d, "CreationTime"));
        mt = json_number_value(json_object_get(d, "LastModifiedTime"));
        if ((q->contains &&
             !adm_contains_ci(json_string_value(json_object_get(d, nf)), q->contains)) ||
            (q->status &&
             strcmp(q->status, json_string_value(json_object_get(d, "EndpointStatus"))
                                   ? json_string_value(json_object_get(d, "EndpointStatus"))
                                   : "") != 0) ||
            (q->created_after > 0 && !(ct > q->created_after)) ||
            (q->created_before > 0 && !(ct < q->created_before)) ||
            (q->modified_after > 0 && !(mt > q->modified_after)) ||
            (q->modified_before > 0 && !(mt < q->modified_before))) {
            json_decref(d);
            continue;
        }
        docs[n++] = d;
    }
    if (!page) {
        qsort(docs, n, sizeof(*docs), adm_cmp);
        total = n;
        from = q->offset;
    }
    out = json_object();
    arr = json_array();
    for (size_t i = from; i < n && i < from + q->max; i++) {
        json_t *sum = json_object();

        for (const char *const *k = keys[c->kind]; *k != NULL; k++) {
            json_t *v = json_object_get(docs[i], *k);

            if (v != NULL)
                json_object_set(sum, *k, v);
        }
        json_array_append_new(arr, sum);
    }
    json_object_set_new(out, adm_kinds[c->kind].list_field, arr);
    if (q->offset + q->max < total) {
        char tok[64];

        snprintf(tok, sizeof(tok), "infergate-page-%zu", q->offset + q->max);
        json_object_set_new(out, "NextToken", json_string(tok));
    }
    for (size_t i = 0; i < n; i++)
        json_decref(docs[i]);
    free(docs);
    adm_ok(c, out);
}

static int adm_opt_time(struct adm_call *c, const char *field, double *out)
{
    json_t *v = json_object_get(c->in, field);

    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        adm_fail(c, 400, "SerializationException",
                 "%s must be a timestamp in epoch seconds (a number).", field);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static void adm_list(struct adm_call *c)
{
    const char *by, *order, *tok, *contains, *status;
    json_t *max = json_object_get(c->in, "MaxResults");
    json_int_t maxv = 10;
    size_t off = 0;
    double t[4];
    int bad = 0, sort_by = 0, n;
    const char *argv[8 + 6];
    char offs[32], cnt[32];

    by = adm_opt_str(c, c->in, "SortBy", 32, &bad);
    order = bad ? NULL : adm_opt_str(c, c->in, "SortOrder", 32, &bad);
    tok = bad ? NULL : adm_opt_str(c, c->in, "NextToken", 8192, &bad);
    contains = bad ? NULL : adm_opt_str(c, c->in, "NameContains", 63, &bad);
    status = bad ? NULL : adm_opt_str(c, c->in, "StatusEquals", 32, &bad);
    if (bad)
        return;
    if (by != NULL) {
        if (strcmp(by, "CreationTime") == 0)
            sort_by = 0;
        else if (strcmp(by, "Name") == 0)
            sort_by = 1;
        else if (strcmp(by, "Status") == 0 && c->kind == ADM_ENDPOINT)
            sort_by = 2;
        else {
            adm_invalid(c, "SortBy", by,
                        c->kind == ADM_ENDPOINT
                            ? "Member must satisfy enum value set: [Name, CreationTime, "
                              "Status]"
                            : "Member must satisfy enum value set: [Name, CreationTime]");
            return;
        }
    }
    if (order != NULL && strcmp(order, "Ascending") != 0 && strcmp(order, "Descending") != 0) {
        adm_invalid(c, "SortOrder", order,
                    "Member must satisfy enum value set: [Ascending, Descending]");
        return;
    }
    if (status != NULL && c->kind != ADM_ENDPOINT)
        status = NULL;
    if (status != NULL) {
        static const char *const st[] = {"OutOfService",   "Creating",    "Updating",
                                         "SystemUpdating", "RollingBack", "InService",
                                         "Deleting",       "Failed",      "UpdateRollbackFailed"};
        size_t i = 0;

        while (i < IG_ARRAY_SIZE(st) && strcmp(st[i], status) != 0)
            i++;
        if (i == IG_ARRAY_SIZE(st)) {
            adm_invalid(c, "StatusEquals", status,
                        "Member must satisfy enum value set: [OutOfService, Creating, "
                        "Updating, SystemUpdating, RollingBack, InService, Deleting, "
                        "Failed, UpdateRollbackFailed]");
            return;
        }
    }
    if (contains != NULL) {
        for (const char *p = contains; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-') {
                adm_invalid(c, "NameContains", contains,
                            "Member must satisfy regular expression pattern: "
                            "[a-zA-Z0-9\\-]+");
                return;
            }
    }
    if (max != NULL && !json_is_null(max)) {
        if (!json_is_integer(max)) {
            adm_fail(c, 400, "SerializationException", "MaxResults must be an integer.");
            return;
        }
        maxv = json_integer_value(max);
        if (maxv < 1 || maxv > 100) {
            char v[32];

            snprintf(v, sizeof(v), "%lld", (long long)maxv);
            {
                adm_invalid(c, "MaxResults", v,
                            maxv < 1 ? "Member must have value greater than or equal to 1"
                                     : "Member must have value less than or equal to 100");
                return;
            }
        }
    }
    if (tok != NULL) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strncmp(tok, "infergate-page-", 15) == 0 ? strtoull(tok + 15, &end, 10) : 0;
        if (strncmp(tok, "infergate-page-", 15) != 0 || errno != 0 || *end != '\0' ||
            tok[15] == '\0' || v > ADM_MAX_RESOURCES) {
            adm_fail(c, 400, "ValidationException", "Invalid pagination token: %.64s", tok);
            return;
        }
        off = (size_t)v;
    }
    if (adm_opt_time(c, "CreationTimeAfter", &t[0]) < 0 ||
        adm_opt_time(c, "CreationTimeBefore", &t[1]) < 0 ||
        adm_opt_time(c, "LastModifiedTimeAfter", &t[2]) < 0 ||
        adm_opt_time(c, "LastModifiedTimeBefore", &t[3]) < 0)
        return;
    c->doc = json_pack("{s:i,s:i,s:I,s:I,s:f,s:f,s:f,s:f}", "sort", sort_by, "desc",
                       order == NULL || strcmp(order, "Descending") == 0, "off", (json_int_t)off,
                       "max", maxv, "ca", t[0], "cb", t[1], "ma", t[2], "mb", t[3]);
    if (contains)
        json_object_set_new(c->doc, "contains", json_string(contains));
    if (status)
        json_object_set_new(c->doc, "status", json_string(status));
    if (c->a->nlists >= ADM_LISTS_MAX) {
        adm_fail(c, 400, "ThrottlingException", "Rate exceeded");
        return;
    }
    argv[0] = "EVAL";
    argv[1] = adm_lua_list;
    argv[2] = "1";
    argv[3] = adm_kinds[c->kind].index;
    argv[4] = adm_kinds[c->kind].key;
    n = 5;
    if (sort_by == 0 && contains == NULL && status == NULL && t[0] == 0 && t[1] == 0 && t[2] == 0 &&
        t[3] == 0) {
        /* the common listing: only its page is read */
        snprintf(offs, sizeof(offs), "%zu", off);
        snprintf(cnt, sizeof(cnt), "%lld", (long long)maxv);
        argv[1] = adm_lua_page;
        argv[5] = order == NULL || strcmp(order, "Descending") == 0 ? "1" : "0";
        argv[6] = offs;
        argv[7] = cnt;
        n = 8;
        json_object_set_new(c->doc, "page", json_true());
    }
    for (const char *const *k = adm_summary_keys[c->kind]; *k != NULL; k++)
        argv[n++] = *k;
    if (adm_cmd(c, on_listed, n, argv) == 0) {
        c->listing = 1;
        c->a->nlists++;
    }
}

/* ---- create ------------------------------------------------------------ */

static void on_created(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    json_t *out;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        adm_fail(c, 400, "ValidationException", "Cannot create already existing %s \"%s\".",
                 adm_kinds[c->kind].what, c->arn);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        adm_fail(c, 400, "ResourceLimitExceeded",
                 "The account-level service limit of %d %ss has been reached.", ADM_MAX_RESOURCES,
                 adm_kinds[c->kind].what);
        return;
    }
    out = json_pack("{s:s}", adm_kinds[c->kind].arn_field, c->arn);
    adm_ok(c, out);
}

/* Store c->doc under c->lname, unless it exists. */
static void adm_store_new(struct adm_call *c)
{
    char key[128], score[32], msg[96];
    char *doc = adm_dump(c->doc);
    const char *argv[11];

    if (doc == NULL) {
        adm_fail(c, 500, "InternalFailure", "The document could not be encoded.");
        return;
    }
    if (strlen(doc) > ADM_DOC_MAX) {
        adm_fail(c, 400, "ValidationException",
                 "The %s would take %zu bytes of metadata, over the %zu the store takes (large "
                 "Environment maps in many variants?).",
                 adm_kinds[c->kind].what, strlen(doc), ADM_DOC_MAX);
        free(doc);
        return;
    }
    snprintf(key, sizeof(key), "%s%s", adm_kinds[c->kind].key, c->lname);
    snprintf(score, sizeof(score), "%.0f",
             json_number_value(json_object_get(c->doc, "CreationTime")) * 1000);
    msg[0] = '\0'; /* only endpoints are announced */
    if (c->kind == ADM_ENDPOINT)
        snprintf(msg, sizeof(msg), "endpoint %s", c->lname);
    argv[0] = "EVAL";
    argv[1] = adm_lua_create;
    argv[2] = "2";
    argv[3] = key;
    argv[4] = adm_kinds[c->kind].index;
    argv[5] = doc;
    argv[6] = score;
    argv[7] = c->lname;
    argv[8] = ADM_STR(ADM_MAX_RESOURCES);
    argv[9] = ADM_CHANNEL;
    argv[10] = msg;
    adm_cmd(c, on_created, 11, argv);
    free(doc);
}

/* One container definition, checked: the image one of the kinds served. */
static int adm_check_container(struct adm_call *c, json_t *ct, json_t **norm)
{
    static const char *const fields[] = {"ContainerHostname", "Image", "ModelDataUrl", "Mode",
                                         NULL};
    enum ig_image_kind kind;
    const char *algo, *image, *url;
    char why[512];
    int bad = 0;

    if (!json_is_object(ct)) {
        adm_fail(c, 400, "SerializationException", "PrimaryContainer must be a structure.");
        return -1;
    }
    image = adm_opt_str(c, ct, "Image", 255, &bad);
    if (bad)
        return -1;
    url = adm_opt_str(c, ct, "ModelDataUrl", 1024, &bad);
    if (bad)
        return -1;
    if (image == NULL) {
        adm_fail(c, 400, "ValidationException",
                 "PrimaryContainer.Image is required: a built-in algorithm (kmeans, pca, "
                 "linear-learner, xgboost, or its SageMaker image URI), http://HOST:PORT of a "
                 "running model container, or file:///PATH of a serve program.");
        return -1;
    }
    if (ig_artifact_classify(image, &kind, &algo, why, sizeof(why)) < 0) {
        adm_fail(c, 400, "ValidationException", "%s", why);
        return -1;
    }
    if (kind == IG_IMAGE_BUILTIN && url == NULL) {
        adm_fail(c, 400, "ValidationException",
                 "PrimaryContainer.ModelDataUrl is required for the built-in algorithm %s.", algo);
        return -1;
    }
    if (kind == IG_IMAGE_EXEC) {
        struct stat st;
        char real[PATH_MAX];

        if (adm_exec_allowed(c->a->cfg, image + 7, real, sizeof(real), why, sizeof(why)) < 0) {
            adm_fail(c, 400, "ValidationException", "Image %.256s: %s.", image, why);
            return -1;
        }

        if (stat(image + 7, &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
            adm_fail(c, 400, "ValidationException",
                     "Image %.256s: no executable file there to run as the model server.", image);
            return -1;
        }
    }
    if (url != NULL && adm_check_data_url(c, url) < 0)
        return -1;
    if (adm_check_env(c, json_object_get(ct, "Environment")) < 0)
        return -1;
    *norm = json_object();
    for (const char *const *f = fields; *f; f++) {
        json_t *v = json_object_get(ct, *f);

        if (v != NULL && json_is_string(v))
            json_object_set(*norm, *f, v);
    }
    if (json_object_get(ct, "Environment") != NULL &&
        !json_is_null(json_object_get(ct, "Environment")))
        json_object_set(*norm, "Environment", json_object_get(ct, "Environment"));
    return 0;
}

static void adm_create_model(struct adm_call *c)
{
    const char *name = adm_need_name(c, c->in, "ModelName");
    json_t *pc, *cts, *norm = NULL, *v;
    const char *role;
    int bad = 0;

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    adm_arn(c->arn, sizeof(c->arn), ADM_MODEL, name);
    role = adm_opt_str(c, c->in, "ExecutionRoleArn", 2048, &bad);
    if (bad)
        return;
    pc = json_object_get(c->in, "PrimaryContainer");
    cts = json_object_get(c->in, "Containers");
    if (pc != NULL && cts != NULL) {
        adm_fail(c, 400, "ValidationException",
                 "Specify either PrimaryContainer or Containers, not both.");
        return;
    }
    if (cts != NULL) {
        if (!json_is_array(cts) || json_array_size(cts) != 1) {
            adm_fail(c, 400, "ValidationException",
                     "infergate serves one container per model: Containers must have exactly one "
                     "entry (an inference pipeline of several is not supported).");
            return;
        }
        pc = json_array_get(cts, 0);
    }
    if (pc == NULL) {
        adm_fail(c, 400, "ValidationException",
                 "PrimaryContainer is required (or Containers with one entry).");
        return;
    }
    if (adm_check_container(c, pc, &norm) < 0)
        return;
    c->doc = json_object();
    json_object_set_new(c->doc, "ModelName", json_string(name));
    json_object_set_new(c->doc, "ModelArn", json_string(c->arn));
    json_object_set_new(c->doc, "CreationTime", json_real(adm_now()));
    json_object_set_new(c->doc, "PrimaryContainer", norm);
    if (role != NULL)
        json_object_set_new(c->doc, "ExecutionRoleArn", json_string(role));
    v = json_object_get(c->in, "EnableNetworkIsolation");
    json_object_set_new(c->doc, "EnableNetworkIsolation", json_boolean(json_is_true(v)));
    adm_store_new(c);
}

/* CreateEndpointConfig: after the models are known to exist. */
static void on_config_models(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    json_t *pvs = json_object_get(c->doc, "ProductionVariants");

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            adm_not_found(c, ADM_MODEL,
                          json_string_value(json_object_get(json_array_get(pvs, i), "ModelName")));
            return;
        }
    adm_store_new(c);
}

static void adm_create_config(struct adm_call *c)
{
    const char *name = adm_need_name(c, c->in, "EndpointConfigName");
    json_t *pvs, *out;
    const char *argv[2 + IG_GATEWAY_MAX_VARIANTS];
    char keys[IG_GATEWAY_MAX_VARIANTS][128];
    size_t n;

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    adm_arn(c->arn, sizeof(c->arn), ADM_CONFIG, name);
    pvs = json_object_get(c->in, "ProductionVariants");
    if (pvs == NULL || json_is_null(pvs)) {
        adm_invalid(c, "ProductionVariants", NULL, NULL);
        return;
    }
    if (!json_is_array(pvs)) {
        adm_fail(c, 400, "SerializationException", "ProductionVariants must be a list.");
        return;
    }
    n = json_array_size(pvs);
    if (n < 1 || n > IG_GATEWAY_MAX_VARIANTS) {
        adm_fail(c, 400, "ValidationException",
                 "1 validation error detected: Value at 'productionVariants' failed to satisfy "
                 "constraint: Member must have length between 1 and %d",
                 IG_GATEWAY_MAX_VARIANTS);
        return;
    }
    out = json_array();
    c->doc = json_object();
    json_object_set_new(c->doc, "EndpointConfigName", json_string(name));
    json_object_set_new(c->doc, "EndpointConfigArn", json_string(c->arn));
    json_object_set_new(c->doc, "ProductionVariants", out);
    json_object_set_new(c->doc, "CreationTime", json_real(adm_now()));
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        json_t *pv = json_array_get(pvs, i), *o, *w, *cnt, *to;
        const char *vn, *mn, *itype;
        double weight = 1.0;
        int bad = 0;

        if (!json_is_object(pv)) {
            adm_fail(c, 400, "SerializationException",
                     "ProductionVariants[%zu] must be a structure.", i);
            return;
        }
        if ((vn = adm_need_name(c, pv, "VariantName")) == NULL)
            return;
        if ((mn = adm_need_name(c, pv, "ModelName")) == NULL)
            return;
        itype = adm_opt_str(c, pv, "InstanceType", 64, &bad);
        if (bad)
            return;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(vn, json_string_value(
                                   json_object_get(json_array_get(out, j), "VariantName"))) == 0) {
                adm_fail(c, 400, "ValidationException",
                         "The VariantName %s appears more than once in ProductionVariants.", vn);
                return;
            }
        w = json_object_get(pv, "InitialVariantWeight");
        if (w != NULL && !json_is_null(w)) {
            if (!json_is_number(w) || json_number_value(w) < 0 || json_number_value(w) > 1e9) {
                adm_fail(c, 400, "ValidationException",
                         "ProductionVariants[%zu].InitialVariantWeight must be a number >= 0.", i);
                return;
            }
            weight = json_number_value(w);
        }
        cnt = json_object_get(pv, "InitialInstanceCount");
        if (cnt != NULL && !json_is_null(cnt) &&
            (!json_is_integer(cnt) || json_integer_value(cnt) < 1)) {
            adm_fail(c, 400, "ValidationException",
                     "ProductionVariants[%zu].InitialInstanceCount must be an integer >= 1.", i);
            return;
        }
        to = json_object_get(pv, "ContainerStartupHealthCheckTimeoutInSeconds");
        if (to != NULL && !json_is_null(to) &&
            (!json_is_integer(to) || json_integer_value(to) < 1 || json_integer_value(to) > 3600)) {
            adm_fail(c, 400, "ValidationException",
                     "ProductionVariants[%zu].ContainerStartupHealthCheckTimeoutInSeconds must "
                     "be 1..3600.",
                     i);
            return;
        }
        o = json_pack("{s:s,s:s,s:I,s:f}", "VariantName", vn, "ModelName", mn,
                      "InitialInstanceCount",
                      cnt && json_is_integer(cnt) ? json_integer_value(cnt) : (json_int_t)1,
                      "InitialVariantWeight", weight);
        if (itype != NULL)
            json_object_set_new(o, "InstanceType", json_string(itype));
        if (to != NULL && json_is_integer(to))
            json_object_set(o, "ContainerStartupHealthCheckTimeoutInSeconds", to);
        json_array_append_new(out, o);
        {
            char lm[ADM_NAME_MAX + 1];

            adm_lower(lm, mn, sizeof(lm));
            snprintf(keys[i], sizeof(keys[i]), "%s%s", adm_kinds[ADM_MODEL].key, lm);
            argv[1 + i] = keys[i];
        }
    }
    adm_cmd(c, on_config_models, (int)(1 + n), argv);
}

/* ---- endpoints --------------------------------------------------------- */

/* The variants of endpoint config <cfg> with their models' containers
 * (<r> the models' documents, in order): what a deployment needs, copied
 * so that deleting the model or config later changes nothing served. */
static json_t *adm_resolve(struct adm_call *c, json_t *cfg, const redisReply *r)
{
    json_t *pvs = json_object_get(cfg, "ProductionVariants"), *vars = json_array();

    for (size_t i = 0; i < json_array_size(pvs); i++) {
        json_t *pv = json_array_get(pvs, i);
        const char *mn = json_string_value(json_object_get(pv, "ModelName"));
        json_t *m = i < r->elements ? adm_parse_doc(r->element[i]) : NULL, *ct, *v;

        if (m == NULL) {
            json_decref(vars);
            adm_not_found(c, ADM_MODEL, mn ? mn : "");
            return NULL;
        }
        ct = json_object_get(m, "PrimaryContainer");
        v = json_pack("{s:O,s:s,s:O,s:O}", "VariantName", json_object_get(pv, "VariantName"),
                      "ModelName", mn, "Weight", json_object_get(pv, "InitialVariantWeight"),
                      "Container", ct ? ct : json_null());
        if (json_object_get(pv, "ContainerStartupHealthCheckTimeoutInSeconds") != NULL)
            json_object_set(v, "StartupTimeout",
                            json_object_get(pv, "ContainerStartupHealthCheckTimeoutInSeconds"));
        json_array_append_new(vars, v);
        json_decref(m);
    }
    return vars;
}

/* DescribeEndpoint's ProductionVariants for <vars>. */
json_t *adm_variant_summaries(json_t *vars, double when)
{
    json_t *out = json_array();

    for (size_t i = 0; i < json_array_size(vars); i++) {
        json_t *v = json_array_get(vars, i);
        json_t *img = json_object_get(json_object_get(v, "Container"), "Image");

        json_array_append_new(out, json_pack("{s:O,s:[{s:O,s:O,s:f}],s:O,s:O,s:i,s:i}",
                                             "VariantName", json_object_get(v, "VariantName"),
                                             "DeployedImages", "SpecifiedImage",
                                             img ? img : json_string(""), "ResolvedImage",
                                             img ? img : json_string(""), "ResolutionTime", when,
                                             "CurrentWeight", json_object_get(v, "Weight"),
                                             "DesiredWeight", json_object_get(v, "Weight"),
                                             "CurrentInstanceCount", 1, "DesiredInstanceCount", 1));
    }
    return out;
}

static void on_endpoint_doc(struct ig_store *s, redisReply *r, void *arg);

static void on_cas_done(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -1) {
        adm_not_found(c, ADM_ENDPOINT, c->name);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        /* It changed since it was read (a deployment moved its status):
         * read it again and decide anew, as the service would. */
        if (c->tries++ < 8) {
            char key[128];
            const char *argv[2];

            json_decref(c->doc);
            json_decref(c->cfg);
            json_decref(c->vars);
            c->doc = c->cfg = c->vars = NULL;
            snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, c->lname);
            argv[0] = "GET";
            argv[1] = key;
            adm_cmd(c, on_endpoint_doc, 2, argv);
            return;
        }
        adm_fail(c, 400, "ThrottlingException", "Rate exceeded");
        return;
    }
    adm_ok(c, c->op == OP_DELETE ? json_object() : json_pack("{s:s}", "EndpointArn", c->arn));
}

int adm_cas(struct ig_admin *a, const char *lname, json_int_t ver, const char *doc,
            ig_store_reply_cb *cb, void *arg)
{
    char key[128], vs[32], msg[96];
    const char *argv[8];
    size_t lens[8];

    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, lname);
    snprintf(vs, sizeof(vs), "%lld", (long long)ver);
    snprintf(msg, sizeof(msg), "endpoint %s", lname);
    argv[0] = "EVAL";
    argv[1] = adm_lua_cas;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = vs;
    argv[5] = doc;
    argv[6] = ADM_CHANNEL;
    argv[7] = msg;
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(argv[i]);
    return ig_store_cmd(a->store, cb, arg, 8, argv, lens);
}

/* Store c->doc over version <ver>. */
static void adm_store_cas(struct adm_call *c, json_int_t ver)
{
    char *doc = adm_dump(c->doc);
    int rv;

    if (doc == NULL) {
        adm_fail(c, 500, "InternalFailure", "The document could not be encoded.");
        return;
    }
    if (strlen(doc) > ADM_DOC_MAX) {
        adm_fail(c, 400, "ValidationException",
                 "The endpoint would take %zu bytes of metadata, over the %zu the store takes "
                 "(large Environment maps in many variants?).",
                 strlen(doc), ADM_DOC_MAX);
        free(doc);
        return;
    }
    rv = adm_cas(c->a, c->lname, ver, doc, on_cas_done, c);
    free(doc);
    if (rv == IG_ERR_FULL)
        adm_fail(c, 400, "ThrottlingException", "Rate exceeded");
    else if (rv < 0)
        adm_store_down(c);
}

/* CreateEndpoint / UpdateEndpoint, last step: the models' documents. */
static void on_endpoint_models(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    double now = adm_now();

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        adm_fail(c, 500, "InternalFailure", "The job store answered oddly.");
        return;
    }
    c->vars = adm_resolve(c, c->cfg, r);
    if (c->vars == NULL)
        return;
    if (c->op == OP_CREATE) {
        c->doc = json_object();
        json_object_set_new(c->doc, "EndpointName", json_string(c->name));
        json_object_set_new(c->doc, "EndpointArn", json_string(c->arn));
        json_object_set(c->doc, "EndpointConfigName",
                        json_object_get(c->cfg, "EndpointConfigName"));
        json_object_set_new(c->doc, "ProductionVariants", adm_variant_summaries(c->vars, now));
        json_object_set_new(c->doc, "EndpointStatus", json_string("Creating"));
        json_object_set_new(c->doc, "CreationTime", json_real(now));
        json_object_set_new(c->doc, "LastModifiedTime", json_real(now));
        /* Versions start from the creation time (ms) x 1000: a document
         * re-created under the same name never reuses a version of the
         * one deleted before it, whose late compare-and-sets and
         * delete-if-version must miss it. (Exact in Lua's doubles.) */
        json_object_set_new(c->doc, "_V", json_integer((json_int_t)(now * 1000) * 1000));
        json_object_set_new(c->doc, "_D", json_integer((json_int_t)(now * 1000) * 1000));
        json_object_set(c->doc, "_Variants", c->vars);
        adm_store_new(c);
        return;
    }
    /* UpdateEndpoint: the new variants wait in _Pending until deployed */
    {
        json_int_t ver = json_integer_value(json_object_get(c->doc, "_V"));

        json_object_set_new(c->doc, "EndpointStatus", json_string("Updating"));
        json_object_set_new(c->doc, "LastModifiedTime", json_real(now));
        json_object_del(c->doc, "FailureReason");
        json_object_set_new(c->doc, "_Pending",
                            json_pack("{s:O,s:O}", "EndpointConfigName",
                                      json_object_get(c->cfg, "EndpointConfigName"), "Variants",
                                      c->vars));
        json_object_set_new(c->doc, "_V", json_integer(ver + 1));
        json_object_set_new(c->doc, "_D", json_integer(ver + 1));
        adm_store_cas(c, ver);
    }
}

static void on_endpoint_config(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    json_t *pvs;
    const char *argv[1 + IG_GATEWAY_MAX_VARIANTS];
    char keys[IG_GATEWAY_MAX_VARIANTS][128];
    size_t n;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    c->cfg = adm_parse_doc(r);
    if (c->cfg == NULL) {
        adm_not_found(c, ADM_CONFIG,
                      json_string_value(json_object_get(c->in, "EndpointConfigName")));
        return;
    }
    pvs = json_object_get(c->cfg, "ProductionVariants");
    n = json_array_size(pvs);
    if (n < 1 || n > IG_GATEWAY_MAX_VARIANTS) {
        adm_fail(c, 500, "InternalFailure", "The stored endpoint configuration is corrupt.");
        return;
    }
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        char lm[ADM_NAME_MAX + 1];
        const char *mn = json_string_value(json_object_get(json_array_get(pvs, i), "ModelName"));

        adm_lower(lm, mn ? mn : "", sizeof(lm));
        snprintf(keys[i], sizeof(keys[i]), "%s%s", adm_kinds[ADM_MODEL].key, lm);
        argv[1 + i] = keys[i];
    }
    adm_cmd(c, on_endpoint_models, (int)(1 + n), argv);
}

/* Read the endpoint config named in the call, then its models. */
static void adm_read_config(struct adm_call *c)
{
    const char *cn = adm_need_name(c, c->in, "EndpointConfigName");
    char key[128], lc[ADM_NAME_MAX + 1];
    const char *argv[2];

    if (cn == NULL)
        return;
    adm_lower(lc, cn, sizeof(lc));
    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_CONFIG].key, lc);
    argv[0] = "GET";
    argv[1] = key;
    adm_cmd(c, on_endpoint_config, 2, argv);
}

static void adm_create_endpoint(struct adm_call *c)
{
    const char *name = adm_need_name(c, c->in, "EndpointName");

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    adm_arn(c->arn, sizeof(c->arn), ADM_ENDPOINT, name);
    if (ig_gateway_is_configured(c->a->gw, name)) {
        adm_fail(c, 400, "ValidationException", "Cannot create already existing endpoint \"%s\".",
                 c->arn);
        return;
    }
    adm_read_config(c);
}

/* UpdateEndpoint, DeleteEndpoint: the endpoint's document first. */
static void on_endpoint_doc(struct ig_store *s, redisReply *r, void *arg)
{
    struct adm_call *c = arg;
    const char *st;

    (void)s;
    if (adm_reply_bad(c, r))
        return;
    c->doc = adm_parse_doc(r);
    if (c->doc == NULL) {
        adm_not_found(c, ADM_ENDPOINT, c->name);
        return;
    }
    st = json_string_value(json_object_get(c->doc, "EndpointStatus"));
    st = st ? st : "";
    if (c->op == OP_DELETE) {
        json_int_t ver = json_integer_value(json_object_get(c->doc, "_V"));

        if (strcmp(st, "Deleting") == 0) {
            adm_ok(c, json_object());
            return;
        }
        json_object_set_new(c->doc, "EndpointStatus", json_string("Deleting"));
        json_object_set_new(c->doc, "LastModifiedTime", json_real(adm_now()));
        json_object_set_new(c->doc, "_V", json_integer(ver + 1));
        adm_store_cas(c, ver);
        return;
    }
    if (strcmp(st, "InService") != 0) {
        adm_fail(c, 400, "ValidationException", "Cannot update %s endpoint \"%s\".",
                 strcmp(st, "Failed") == 0 ? "failed" : "in-progress", c->arn);
        return;
    }
    adm_read_config(c);
}

static void adm_change_endpoint(struct adm_call *c)
{
    const char *name = adm_need_name(c, c->in, "EndpointName");
    char key[128];
    const char *argv[2];

    if (name == NULL)
        return;
    snprintf(c->name, sizeof(c->name), "%s", name);
    adm_lower(c->lname, name, sizeof(c->lname));
    adm_arn(c->arn, sizeof(c->arn), ADM_ENDPOINT, name);
    if (c->op == OP_UPDATE && adm_need_name(c, c->in, "EndpointConfigName") == NULL)
        return;
    snprintf(key, sizeof(key), "%s%s", adm_kinds[ADM_ENDPOINT].key, c->lname);
    argv[0] = "GET";
    argv[1] = key;
    adm_cmd(c, on_endpoint_doc, 2, argv);
}

/* ---- dispatch ---------------------------------------------------------- */

static void adm_create(struct adm_call *c)
{
    if (c->kind == ADM_MODEL)
        adm_create_model(c);
    else if (c->kind == ADM_CONFIG)
        adm_create_config(c);
    else
        adm_create_endpoint(c);
}

static const struct adm_op {
    const char *name;
    enum adm_kind kind;
    enum adm_opcode op;
    void (*fn)(struct adm_call *c);
} adm_ops[] = {
    {"CreateModel", ADM_MODEL, OP_CREATE, adm_create},
    {"DescribeModel", ADM_MODEL, OP_DESCRIBE, adm_describe},
    {"DeleteModel", ADM_MODEL, OP_DELETE, adm_delete},
    {"ListModels", ADM_MODEL, OP_LIST, adm_list},
    {"CreateEndpointConfig", ADM_CONFIG, OP_CREATE, adm_create},
    {"DescribeEndpointConfig", ADM_CONFIG, OP_DESCRIBE, adm_describe},
    {"DeleteEndpointConfig", ADM_CONFIG, OP_DELETE, adm_delete},
    {"ListEndpointConfigs", ADM_CONFIG, OP_LIST, adm_list},
    {"CreateEndpoint", ADM_ENDPOINT, OP_CREATE, adm_create},
    {"DescribeEndpoint", ADM_ENDPOINT, OP_DESCRIBE, adm_describe},
    {"UpdateEndpoint", ADM_ENDPOINT, OP_UPDATE, adm_change_endpoint},
    {"DeleteEndpoint", ADM_ENDPOINT, OP_DELETE, adm_change_endpoint},
    {"ListEndpoints", ADM_ENDPOINT, OP_LIST, adm_list},
};

void ig_admin_handle(struct ig_admin *a, struct ig_http_req *http)
{
    const char *target = ig_http_req_header(http, "X-Amz-Target");
    const char *method = ig_http_req_method(http);
    const char *path = ig_http_req_path(http);
    const struct adm_op *op = NULL;
    struct adm_call *c;
    json_error_t jerr;
    const char *body;
    size_t len, nh;

    if (strcmp(method, "POST") != 0 || (strcmp(path, "/") != 0 && strncmp(path, "/?", 2) != 0)) {
        adm_send_error(http, 404, "UnknownOperationException",
                       "The control plane takes POST / with X-Amz-Target: SageMaker.<Operation>.");
        return;
    }
    if (a->auth != NULL) {
        const struct ig_http_hdr *hdrs = ig_http_req_headers(http, &nh);
        const char *type;
        int status;
        char msg[512];

        body = ig_http_req_body(http, &len);
        if (ig_auth_check(a->auth, method, path, hdrs, nh, body, len, time(NULL), &type, &status,
                          msg, sizeof(msg)) != 0) {
            adm_send_error(http, status, type, msg);
            return;
        }
    }
    if (target == NULL || strncmp(target, "SageMaker.", 10) != 0) {
        adm_send_error(http, 400, "UnknownOperationException",
                       "X-Amz-Target must be SageMaker.<Operation>.");
        return;
    }
    for (size_t i = 0; i < IG_ARRAY_SIZE(adm_ops); i++)
        if (strcmp(adm_ops[i].name, target + 10) == 0)
            op = &adm_ops[i];
    if (op == NULL) {
        char msg[256];

        snprintf(msg, sizeof(msg), "Operation %.64s is not supported by infergate.", target + 10);
        adm_send_error(http, 400, "UnknownOperationException", msg);
        return;
    }
    if (a->stopping) {
        adm_send_error(http, 503, "ServiceUnavailable", "The gateway is shutting down.");
        return;
    }
    if (!ig_store_up(a->store)) {
        char why[512], msg[640];

        ig_store_describe(a->store, why, sizeof(why));
        snprintf(msg, sizeof(msg), "The job store is unavailable (%s); retry later.", why);
        adm_send_error(http, 503, "ServiceUnavailable", msg);
        return;
    }
    if (a->ncalls >= ADM_CALLS_MAX) {
        adm_send_error(http, 400, "ThrottlingException", "Rate exceeded");
        return;
    }
    body = ig_http_req_body(http, &len);
    if (len > ADM_BODY_MAX) {
        adm_send_error(http, 413, "ValidationException", "The request body is over 1 MiB.");
        return;
    }
    c = ig_xcalloc(1, sizeof(*c));
    c->a = a;
    c->http = http;
    c->kind = op->kind;
    c->op = op->op;
    c->in = json_loadb(len ? body : "{}", len ? len : 2, JSON_REJECT_DUPLICATES, &jerr);
    c->next = a->calls;
    if (a->calls)
        a->calls->prev = c;
    a->calls = c;
    a->ncalls++;
    ig_http_req_set_close_cb(http, on_call_closed, c);
    if (c->in == NULL || !json_is_object(c->in)) {
        adm_fail(c, 400, "SerializationException", "The body is not a JSON object: %s",
                 c->in ? "not an object" : jerr.text);
        return;
    }
    op->fn(c);
}
