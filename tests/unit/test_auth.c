/* test_auth.c - SigV4 verification of incoming requests: every case of the
 * aws-c-auth suite verifies with its expected Authorization header at its
 * date and fails when one byte of the body, a signed header, the path or
 * the signature changes; requests signed by botocore (captured once, fixed
 * date) verify; every refusal gives exactly AWS's type, status and
 * message; the skew edges; session-token keys; the keys file. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "infergate/auth.h"
#include "infergate/common.h"
#include "infergate/config.h"

#define T_AK "AKIDEXAMPLE"
#define T_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

#define MSG_MISMATCH                                                                               \
    "The request signature we calculated does not match the signature you provided. Check "        \
    "your AWS Secret Access Key and signing method. Consult the service documentation for "        \
    "details."
#define MSG_BAD_TOKEN "The security token included in the request is invalid."

static char tmpdir[64];

/* --- helpers ----------------------------------------------------------- */

static char *read_file(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    char *p;
    long n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return p;
}

static void write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    FILE *f;

    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The suite, found as test_sigv4.c finds it: ../shared/testdata next to
 * the repository root, else the copy in tests/unit/data. */
static const char *suite_dir(void)
{
    static char dir[1200];
    char root[1024], probe[1200];
    int up;

    if (dir[0] != '\0')
        return dir;
    if (getenv("IG_SIGV4_SUITE") != NULL) {
        snprintf(dir, sizeof(dir), "%s", getenv("IG_SIGV4_SUITE"));
        return dir;
    }
    snprintf(root, sizeof(root), ".");
    for (up = 0; up < 8; up++) {
        snprintf(probe, sizeof(probe), "%s/tests/unit/test_auth.c", root);
        if (access(probe, R_OK) == 0)
            break;
        strncat(root, "/..", sizeof(root) - strlen(root) - 1);
    }
    if (up == 8)
        return NULL;
    snprintf(probe, sizeof(probe), "%s/../shared/testdata/sigv4-test-suite", root);
    if (is_dir(probe))
        snprintf(dir, sizeof(dir), "%s", probe);
    else
        snprintf(dir, sizeof(dir), "%s/tests/unit/data/sigv4-test-suite", root);
    return dir;
}

/* A request as the HTTP layer hands it over; strings live in <store>. */
struct treq {
    const char *method, *uri;
    struct ig_http_hdr hdrs[48];
    size_t nhdrs;
    const char *body;
    size_t bodylen;
    char store[65536];
    size_t used;
};

static char *tr_dup(struct treq *r, const char *s, size_t n)
{
    char *p = r->store + r->used;

    assert_true(n + 1 <= sizeof(r->store) - r->used);
    memcpy(p, s, n);
    p[n] = '\0';
    r->used += n + 1;
    return p;
}

static void tr_add(struct treq *r, const char *name, const char *value)
{
    assert_true(r->nhdrs < IG_ARRAY_SIZE(r->hdrs));
    r->hdrs[r->nhdrs].name = tr_dup(r, name, strlen(name));
    r->hdrs[r->nhdrs].value = tr_dup(r, value, strlen(value));
    r->nhdrs++;
}

/* Replace the value of the first header <name> (any case); <value> NULL
 * removes every one of that name. */
static void tr_set(struct treq *r, const char *name, const char *value)
{
    size_t i, k = 0;
    int done = 0;

    for (i = 0; i < r->nhdrs; i++) {
        if (strcasecmp(r->hdrs[i].name, name) == 0) {
            if (value == NULL)
                continue;
            if (!done) {
                r->hdrs[i].value = tr_dup(r, value, strlen(value));
                done = 1;
            }
        }
        r->hdrs[k++] = r->hdrs[i];
    }
    r->nhdrs = k;
    if (value != NULL && !done)
        tr_add(r, name, value);
}

static const char *tr_get(const struct treq *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->hdrs[i].name, name) == 0)
            return r->hdrs[i].value;
    return NULL;
}

/* "METHOD URI HTTP/1.1", "Name:value" lines (a line starting with a blank
 * continues the previous value, joined with one space as an HTTP parser
 * does), a blank line. */
static void tr_parse_head(struct treq *r, const char *text)
{
    const char *p = text, *nl, *sp, *proto;

    nl = strchr(p, '\n');
    assert_non_null(nl);
    sp = strchr(p, ' ');
    proto = strstr(p, " HTTP/");
    assert_true(sp != NULL && proto != NULL && proto < nl);
    r->method = tr_dup(r, p, (size_t)(sp - p));
    r->uri = tr_dup(r, sp + 1, (size_t)(proto - sp - 1));
    p = nl + 1;
    while (*p != '\0' && *p != '\n') {
        const char *colon;

        nl = strchr(p, '\n');
        if (nl == NULL)
            nl = p + strlen(p);
        if ((*p == ' ' || *p == '\t') && r->nhdrs > 0) {
            struct ig_http_hdr *h = &r->hdrs[r->nhdrs - 1];
            char joined[4096];

            snprintf(joined, sizeof(joined), "%s %.*s", h->value, (int)(nl - p), p);
            h->value = tr_dup(r, joined, strlen(joined));
        } else {
            colon = memchr(p, ':', (size_t)(nl - p));
            assert_non_null(colon);
            assert_true(r->nhdrs < IG_ARRAY_SIZE(r->hdrs));
            r->hdrs[r->nhdrs].name = tr_dup(r, p, (size_t)(colon - p));
            r->hdrs[r->nhdrs].value = tr_dup(r, colon + 1, (size_t)(nl - colon - 1));
            r->nhdrs++;
        }
        if (*nl == '\0')
            break;
        p = nl + 1;
    }
}

static time_t parse_ts(const char *s)
{
    struct tm tm = {0};

    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return timegm(&tm);
}

/* A struct ig_auth from a keys file holding <keys> ("" : no file). */
static struct ig_auth *mk_auth(const char *keys, uint32_t skew)
{
    struct ig_config cfg = {0};
    struct ig_auth *a = NULL;
    char path[128], err[512];

    cfg.admin_auth = 1;
    cfg.auth_skew_s = skew;
    cfg.admin_access_key = (char *)"";
    cfg.admin_secret_key = (char *)"";
    cfg.admin_keys_file = (char *)"";
    if (keys[0] != '\0') {
        write_file("keys", keys, path, sizeof(path));
        cfg.admin_keys_file = path;
    }
    if (ig_auth_new(&cfg, &a, err, sizeof(err)) != 0)
        fail_msg("ig_auth_new: %s", err);
    return a;
}

/* Check <r> against <service>; <type> NULL: must pass; else exactly that
 * type and status, and <msg> when not NULL. */
static void expect(const struct ig_auth *a, const char *service, int no_norm, const struct treq *r,
                   time_t now, const char *type, int status, const char *msg, const char *what)
{
    const char *got_type = (const char *)1;
    int got_status = 0, rc;
    char got_msg[1024];

    rc = ig_auth_check_service(a, service, no_norm, r->method, r->uri, r->hdrs, r->nhdrs, r->body,
                               r->bodylen, now, &got_type, &got_status, got_msg, sizeof(got_msg));
    if (type == NULL) {
        if (rc != 0)
            fail_msg("%s: refused: %s %d %s", what, got_type, got_status, got_msg);
        assert_null(got_type);
        return;
    }
    if (rc == 0)
        fail_msg("%s: accepted, wanted %s", what, type);
    assert_int_equal(rc, status >= 500 ? IG_ERR_IO : IG_ERR_INVALID);
    if (strcmp(got_type, type) != 0 || got_status != status ||
        (msg != NULL && strcmp(got_msg, msg) != 0))
        fail_msg("%s:\n want %s %d %s\n got  %s %d %s", what, type, status, msg ? msg : "(any)",
                 got_type, got_status, got_msg);
}

/* --- the suite --------------------------------------------------------- */

struct suite_case {
    struct treq r;
    time_t now;
    int no_norm, omit_token;
    char keys[1024]; /* the keys file that holds its key */
};

static void load_case(const char *dir, struct suite_case *c)
{
    json_error_t jerr;
    json_t *ctx, *cred;
    char path[1400], *head, *req, *body;
    const char *tok;
    size_t len;

    memset(&c->r, 0, offsetof(struct treq, store));
    c->r.used = 0;
    head = read_file(dir, "header-signed-request.txt", NULL);
    req = read_file(dir, "request.txt", &len);
    assert_non_null(head);
    assert_non_null(req);
    tr_parse_head(&c->r, head);
    body = strstr(req, "\n\n");
    if (body != NULL && (size_t)(body + 2 - req) < len) {
        c->r.bodylen = len - (size_t)(body + 2 - req);
        c->r.body = tr_dup(&c->r, body + 2, c->r.bodylen);
    } else {
        c->r.body = "";
        c->r.bodylen = 0;
    }
    snprintf(path, sizeof(path), "%s/context.json", dir);
    ctx = json_load_file(path, 0, &jerr);
    assert_non_null(ctx);
    cred = json_object_get(ctx, "credentials");
    c->now = parse_ts(json_string_value(json_object_get(ctx, "timestamp")));
    c->no_norm = !json_is_true(json_object_get(ctx, "normalize"));
    c->omit_token = json_is_true(json_object_get(ctx, "omit_session_token"));
    tok = json_string_value(json_object_get(cred, "token"));
    /* An omitted (unsigned) token is verified against a key without one:
     * the unsigned header is then one more header nobody signed. */
    snprintf(c->keys, sizeof(c->keys), "%s %s%s%s\n",
             json_string_value(json_object_get(cred, "access_key_id")),
             json_string_value(json_object_get(cred, "secret_access_key")),
             tok && !c->omit_token ? " " : "", tok && !c->omit_token ? tok : "");
    json_decref(ctx);
    free(head);
    free(req);
}

static void run_case(const char *dir, const char *name)
{
    struct suite_case *c = calloc(1, sizeof(*c));
    struct ig_auth *a;
    char what[256], *v, *sig;
    const char *authz;

    assert_non_null(c);
    load_case(dir, c);
    a = mk_auth(c->keys, 300);
    snprintf(what, sizeof(what), "%s as signed", name);
    expect(a, "service", c->no_norm, &c->r, c->now, NULL, 0, NULL, what);

    /* one byte of the body */
    load_case(dir, c);
    if (c->r.bodylen > 0) {
        v = tr_dup(&c->r, c->r.body, c->r.bodylen);
        v[0] ^= 1;
        c->r.body = v;
    } else {
        c->r.body = "x";
        c->r.bodylen = 1;
    }
    snprintf(what, sizeof(what), "%s, body changed", name);
    expect(a, "service", c->no_norm, &c->r, c->now, "InvalidSignatureException", 403, NULL, what);

    /* a signed header: Host, which every case signs */
    load_case(dir, c);
    v = tr_dup(&c->r, tr_get(&c->r, "host"), strlen(tr_get(&c->r, "host")));
    v[strlen(v) - 1] ^= 1;
    tr_set(&c->r, "Host", v);
    snprintf(what, sizeof(what), "%s, Host changed", name);
    expect(a, "service", c->no_norm, &c->r, c->now, "InvalidSignatureException", 403, MSG_MISMATCH,
           what);

    /* the path: one more segment in front (survives normalisation) */
    load_case(dir, c);
    {
        char uri[2048];

        snprintf(uri, sizeof(uri), "/z%s", c->r.uri);
        c->r.uri = tr_dup(&c->r, uri, strlen(uri));
    }
    snprintf(what, sizeof(what), "%s, path changed", name);
    expect(a, "service", c->no_norm, &c->r, c->now, "InvalidSignatureException", 403, MSG_MISMATCH,
           what);

    /* the signature: its last hex digit */
    load_case(dir, c);
    authz = tr_get(&c->r, "authorization");
    v = tr_dup(&c->r, authz, strlen(authz));
    sig = strstr(v, "Signature=");
    assert_non_null(sig);
    v[strlen(v) - 1] = v[strlen(v) - 1] == '0' ? '1' : '0';
    tr_set(&c->r, "Authorization", v);
    snprintf(what, sizeof(what), "%s, signature changed", name);
    expect(a, "service", c->no_norm, &c->r, c->now, "InvalidSignatureException", 403, MSG_MISMATCH,
           what);

    /* the same request for service "sagemaker" (ig_auth_check): wrong scope */
    load_case(dir, c);
    {
        const char *t = NULL;
        int st = 0;
        char m[512];

        assert_int_equal(ig_auth_check(a, c->r.method, c->r.uri, c->r.hdrs, c->r.nhdrs, c->r.body,
                                       c->r.bodylen, c->now, &t, &st, m, sizeof(m)),
                         IG_ERR_INVALID);
        assert_string_equal(t, "InvalidSignatureException");
        assert_int_equal(st, 403);
        assert_string_equal(m, "Credential should be scoped to correct service: 'sagemaker'. ");
    }
    ig_auth_free(a);

    /* a token sent but not signed, for a key that has that token */
    if (c->omit_token) {
        char keys[2048];
        const char *tok = tr_get(&c->r, "x-amz-security-token");

        assert_non_null(tok);
        snprintf(keys, sizeof(keys), "%s %s %s\n", T_AK, T_SK, tok);
        a = mk_auth(keys, 300);
        snprintf(what, sizeof(what), "%s, token key, token unsigned", name);
        expect(a, "service", c->no_norm, &c->r, c->now, "IncompleteSignatureException", 400,
               "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.", what);
        ig_auth_free(a);
    }
    free(c);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_suite(void **state)
{
    const char *dir = suite_dir();
    char *names[512], path[1600];
    size_t n = 0, i;
    struct dirent *de;
    DIR *d;

    (void)state;
    if (dir == NULL)
        fail_msg("repository root not found from the working directory");
    d = opendir(dir);
    if (d == NULL)
        fail_msg("no SigV4 test suite at %s", dir);
    while ((de = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (de->d_name[0] == '.' || !is_dir(path))
            continue;
        assert_true(n < IG_ARRAY_SIZE(names));
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), str_cmp);
    assert_true(n >= 38); /* test_sigv4.c checks the 38 names */
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        run_case(path, names[i]);
        free(names[i]);
    }
    print_message("auth suite: %zu cases verify, and fail with one byte of body, Host, path or "
                  "signature changed\n",
                  n);
}

/* --- botocore ---------------------------------------------------------- */

/*
 * Captured once from botocore 1.29.27 (Debian's /usr/bin/python3):
 * SigV4Auth(Credentials(T_AK, T_SK[, token]), "sagemaker", "us-east-1") on
 * AWSRequest(POST http://127.0.0.1:8081/, SageMaker.DescribeEndpoint),
 * datetime.utcnow patched to 2026-11-30T12:00:00Z. Host is what the HTTP
 * client then sends (botocore signs the URL's netloc).
 */
#define BOTO_NOW ((time_t)1796040000) /* 2026-11-30T12:00:00Z */
#define BOTO_BODY "{\"EndpointName\": \"my-endpoint\"}"
#define BOTO_TOKEN "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=="
#define BOTO_AUTH                                                                                  \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "          \
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "                                    \
    "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62"
#define BOTO_AUTH_TOKEN                                                                            \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "          \
    "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, "               \
    "Signature=98d7a9fb1c2bb642b790e73bb77891e0a4cb2c34b6798ec2d0c3783ef8d2a059"

static void boto_req(struct treq *r, int token)
{
    memset(r, 0, offsetof(struct treq, store));
    r->used = 0;
    r->method = "POST";
    r->uri = "/";
    tr_add(r, "Host", "127.0.0.1:8081");
    tr_add(r, "Accept-Encoding", "identity");
    tr_add(r, "Content-Type", "application/x-amz-json-1.1");
    tr_add(r, "X-Amz-Target", "SageMaker.DescribeEndpoint");
    tr_add(r, "User-Agent", "Boto3/1.26 Python/3.11 botocore/1.29.27");
    tr_add(r, "X-Amz-Date", "20261130T120000Z");
    if (token)
        tr_add(r, "X-Amz-Security-Token", BOTO_TOKEN);
    tr_add(r, "Authorization", token ? BOTO_AUTH_TOKEN : BOTO_AUTH);
    tr_add(r, "Content-Length", "31");
    r->body = BOTO_BODY;
    r->bodylen = strlen(BOTO_BODY);
}

static struct treq R; /* big: not on the stack */

static void test_botocore(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300);
    const char *t = (const char *)1;
    int st = 0;
    char m[256];

    (void)state;
    boto_req(&R, 0);
    assert_int_equal(ig_auth_check(a, R.method, R.uri, R.hdrs, R.nhdrs, R.body, R.bodylen, BOTO_NOW,
                                   &t, &st, m, sizeof(m)),
                     0);
    assert_null(t);
    /* h2: lowercase names */
    for (size_t i = 0; i < R.nhdrs; i++) {
        char *n = tr_dup(&R, R.hdrs[i].name, strlen(R.hdrs[i].name));

        for (char *p = n; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        R.hdrs[i].name = n;
    }
    expect(a, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "botocore, lowercase names");
    /* Authorization parameters without the space after ',' (as some SDKs) */
    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request,"
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target,"
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "botocore, no spaces");
    /* an unsigned header added or changed on the way: still fine */
    boto_req(&R, 0);
    tr_set(&R, "User-Agent", "proxy/1.0");
    tr_add(&R, "X-Forwarded-For", "10.0.0.1");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "botocore, unsigned header changed");
    /* a client that signs User-Agent (botocore with its never-signed list
     * emptied, same capture): what it listed is what is verified */
    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;user-agent;x-amz-date;x-amz-target, "
           "Signature=52af4baf034cc88bd50b5d20096761806465353f1d1a1e79c8b6b242697bafc1");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "botocore, User-Agent signed");
    tr_set(&R, "User-Agent", "proxy/1.0");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "botocore, signed User-Agent changed");
    /* a signed one changed: not */
    boto_req(&R, 0);
    tr_set(&R, "X-Amz-Target", "SageMaker.DeleteEndpoint");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "botocore, X-Amz-Target changed");
    /* a second value of a signed header, joined with ',' when signing */
    boto_req(&R, 0);
    tr_add(&R, "X-Amz-Target", "SageMaker.DeleteEndpoint");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "botocore, X-Amz-Target twice");
    /* the body */
    boto_req(&R, 0);
    R.body = "{\"EndpointName\": \"my-endpoinu\"}";
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "botocore, body changed");
    /* an x-amz-content-sha256 that is not the body's */
    boto_req(&R, 0);
    tr_add(&R, "X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403,
           "The provided 'x-amz-content-sha256' header does not match what was computed "
           "(unsigned or streaming payloads are not accepted).",
           "botocore, UNSIGNED-PAYLOAD");
    /* ... or a well-formed hash of another body */
    boto_req(&R, 0);
    tr_add(&R, "X-Amz-Content-SHA256",
           "1f2c1d2d0dbc4a4f0ae7ea6ce2a4a0d4c4c1d0c55d9b5d1bd8f6d0bd0c43d1b9");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, NULL,
           "botocore, another body's hash");
    ig_auth_free(a);
}

/* Captured on the wire from the AWS SDK for JavaScript v3 (3.1141.0,
 * DescribeEndpoint; node 20) against http://127.0.0.1:18084, keys T_AK and
 * T_SK: it signs nine headers, x-amz-content-sha256 among them. */
static void test_js_sdk(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300);
    time_t now = BOTO_NOW + 37671; /* 2026-11-30T22:27:51Z */

    (void)state;
    memset(&R, 0, offsetof(struct treq, store));
    R.used = 0;
    R.method = "POST";
    R.uri = "/";
    tr_add(&R, "content-type", "application/x-amz-json-1.1");
    tr_add(&R, "x-amz-target", "SageMaker.DescribeEndpoint");
    tr_add(&R, "content-length", "30");
    tr_add(&R, "x-amz-user-agent", "aws-sdk-js/3.1141.0");
    tr_add(&R, "user-agent",
           "aws-sdk-js/3.1141.0 ua/2.1 os/linux#6.18.44-fc-v657 lang/js "
           "md/nodejs#20.20.2 api/sagemaker#3.1141.0 m/N,E,e");
    tr_add(&R, "host", "127.0.0.1:18084");
    tr_add(&R, "amz-sdk-invocation-id", "1f44921a-d364-460b-a8fd-1444845cff93");
    tr_add(&R, "amz-sdk-request", "attempt=1; max=1");
    tr_add(&R, "x-amz-date", "20261130T222751Z");
    tr_add(&R, "x-amz-content-sha256",
           "630c70603c02eb84b16e881e7a580a946a072f523d8d83086dc473f50edf967f");
    tr_add(&R, "authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;"
           "x-amz-content-sha256;x-amz-date;x-amz-target;x-amz-user-agent, "
           "Signature=ba808cc9a9cd383fe5f5bc4e424aadc279bf317c3b0aaa70de2811d1a329de2c");
    tr_add(&R, "Connection", "keep-alive");
    R.body = "{\"EndpointName\":\"my-endpoint\"}";
    R.bodylen = strlen(R.body);
    expect(a, "sagemaker", 0, &R, now, NULL, 0, NULL, "JS SDK v3");
    /* the body no longer matches its declared (signed) hash */
    R.body = "{\"EndpointName\":\"my-endpoinu\"}";
    expect(a, "sagemaker", 0, &R, now, "InvalidSignatureException", 403,
           "The provided 'x-amz-content-sha256' header does not match what was computed "
           "(unsigned or streaming payloads are not accepted).",
           "JS SDK v3, body changed");
    ig_auth_free(a);
}

/* The payload hash header, right: accepted (signed or not). */
static void test_content_sha256_right(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300);
    unsigned char md[32];
    char hex[65];
    unsigned int mdlen = 0;

    (void)state;
    assert_int_equal(EVP_Digest(BOTO_BODY, strlen(BOTO_BODY), md, &mdlen, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    boto_req(&R, 0);
    tr_add(&R, "x-amz-content-sha256", hex);
    expect(a, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "unsigned x-amz-content-sha256");
    ig_auth_free(a);
}

/* --- errors ------------------------------------------------------------ */

static void test_errors(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300);

    (void)state;
    boto_req(&R, 0);
    tr_set(&R, "Authorization", NULL);
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "MissingAuthenticationTokenException", 403,
           "Missing Authentication Token", "no Authorization");

    boto_req(&R, 0);
    tr_set(&R, "Authorization", NULL);
    R.uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x";
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "MissingAuthenticationTokenException", 403,
           "Missing Authentication Token (presigned URLs, X-Amz-Algorithm in the query, are not "
           "supported: send an Authorization header)",
           "presigned");

    boto_req(&R, 0);
    tr_set(&R, "Authorization", "Bearer abc");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Unsupported authorization type: 'Bearer' (only AWS4-HMAC-SHA256 is accepted). "
           "Authorization=Bearer abc",
           "Bearer");

    boto_req(&R, 0);
    tr_set(&R, "Authorization", "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Authorization header requires 'Credential' parameter. Authorization header requires "
           "'Signature' parameter. Authorization=AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date",
           "no Credential, no Signature");

    boto_req(&R, 0);
    tr_set(&R, "Authorization", "AWS4-HMAC-SHA256");
    tr_set(&R, "X-Amz-Date", NULL);
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Authorization header requires 'Credential' parameter. Authorization header requires "
           "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
           "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
           "header. Authorization=AWS4-HMAC-SHA256",
           "nothing");

    boto_req(&R, 0);
    tr_set(&R, "X-Amz-Date", NULL);
    tr_add(&R, "Date", "Mon, 30 Nov 2026 12:00:00 GMT");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
           "header. Authorization=" BOTO_AUTH,
           "no X-Amz-Date");

    boto_req(&R, 0);
    tr_set(&R, "X-Amz-Date", "2026-11-30T12:00:00Z");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Date must be in ISO-8601 'basic format'. Got '2026-11-30T12:00:00Z'. See "
           "http://en.wikipedia.org/wiki/ISO_8601",
           "X-Amz-Date extended format");
    tr_set(&R, "X-Amz-Date", "20261131T120000Z"); /* November 31st */
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Date must be in ISO-8601 'basic format'. Got '20261131T120000Z'. See "
           "http://en.wikipedia.org/wiki/ISO_8601",
           "X-Amz-Date no such day");

    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker, "
           "SignedHeaders=host;x-amz-date, Signature=00");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Credential should be of the form ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request, "
           "not 'AKIDEXAMPLE/20261130/us-east-1/sagemaker'.",
           "scope of 4 parts");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws5_request, "
           "SignedHeaders=host;x-amz-date, Signature=00");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Credential should be scoped with a valid terminator: 'aws4_request', not "
           "'aws5_request'. ",
           "terminator");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/US_EAST/sagemaker/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=00");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "Credential should be scoped to a valid region, not 'US_EAST'. ", "region");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=host;x-amz-date, Signature=00, Signature=11");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400, NULL,
           "Signature twice");

    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDOTHER/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "UnrecognizedClientException", 403, MSG_BAD_TOKEN,
           "unknown key");

    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403,
           "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
           "HTTP: '20261129' != '20261130', from '20261130T120000Z'.",
           "scope date");

    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemakerx/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403,
           "Credential should be scoped to correct service: 'sagemaker'. ", "service");

    boto_req(&R, 0);
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;x-amz-date;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
           "host unsigned");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.", "date unsigned");
    /* SignedHeaders naming a header the request lacks, or not sorted */
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-extra, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "signed header absent");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=host;content-type;x-amz-date;x-amz-target, "
           "Signature=cd8f8bb558768271de030ee9c4a242ce428165431ba83cadb5734ec8df356e62");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "SignedHeaders unsorted");
    tr_set(&R, "Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/sagemaker/aws4_request, "
           "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=cd8f");
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "InvalidSignatureException", 403, MSG_MISMATCH,
           "short signature");

    boto_req(&R, 0);
    tr_add(&R, "Authorization", BOTO_AUTH);
    expect(a, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "More than one Authorization header.", "two Authorization headers");
    ig_auth_free(a);
}

/* Exactly auth_skew_s either way passes; one second more fails. */
static void test_skew(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300), *b;

    (void)state;
    boto_req(&R, 0);
    expect(a, "sagemaker", 0, &R, BOTO_NOW + 300, NULL, 0, NULL, "300 s late");
    expect(a, "sagemaker", 0, &R, BOTO_NOW - 300, NULL, 0, NULL, "300 s early");
    expect(a, "sagemaker", 0, &R, BOTO_NOW + 301, "InvalidSignatureException", 403,
           "Signature expired: 20261130T120000Z is now earlier than 20261130T120001Z "
           "(20261130T120501Z - 5 min.)",
           "301 s late");
    expect(a, "sagemaker", 0, &R, BOTO_NOW + 1500, "InvalidSignatureException", 403,
           "Signature expired: 20261130T120000Z is now earlier than 20261130T122000Z "
           "(20261130T122500Z - 5 min.)",
           "25 min late");
    expect(a, "sagemaker", 0, &R, BOTO_NOW - 301, "InvalidSignatureException", 403,
           "Signature not yet current: 20261130T120000Z is still later than 20261130T115959Z "
           "(20261130T115459Z + 5 min.)",
           "301 s early");
    b = mk_auth(T_AK " " T_SK "\n", 90);
    expect(b, "sagemaker", 0, &R, BOTO_NOW + 90, NULL, 0, NULL, "90 s late, skew 90");
    expect(b, "sagemaker", 0, &R, BOTO_NOW + 91, "InvalidSignatureException", 403,
           "Signature expired: 20261130T120000Z is now earlier than 20261130T120001Z "
           "(20261130T120131Z - 90 sec.)",
           "91 s late, skew 90");
    ig_auth_free(a);
    ig_auth_free(b);
}

static void test_session_token(void **state)
{
    struct ig_auth *tk = mk_auth(T_AK " " T_SK " " BOTO_TOKEN "\n", 300);
    struct ig_auth *plain = mk_auth(T_AK " " T_SK "\n", 300);

    (void)state;
    boto_req(&R, 1);
    expect(tk, "sagemaker", 0, &R, BOTO_NOW, NULL, 0, NULL, "token key, token signed");
    /* the same request, the key without a token: a token it never had */
    expect(plain, "sagemaker", 0, &R, BOTO_NOW, "UnrecognizedClientException", 403, MSG_BAD_TOKEN,
           "plain key, token signed");
    /* another token */
    tr_set(&R, "X-Amz-Security-Token", "IQoJb3JpZ2luX2VjEXAMPLETOKEN+/=A");
    expect(tk, "sagemaker", 0, &R, BOTO_NOW, "UnrecognizedClientException", 403, MSG_BAD_TOKEN,
           "token changed");
    /* no token */
    tr_set(&R, "X-Amz-Security-Token", NULL);
    expect(tk, "sagemaker", 0, &R, BOTO_NOW, "UnrecognizedClientException", 403, MSG_BAD_TOKEN,
           "token removed");
    /* a request signed without a token, for the key with one */
    boto_req(&R, 0);
    expect(tk, "sagemaker", 0, &R, BOTO_NOW, "UnrecognizedClientException", 403, MSG_BAD_TOKEN,
           "token key, no token");
    /* the token sent but not signed */
    tr_add(&R, "X-Amz-Security-Token", BOTO_TOKEN);
    expect(tk, "sagemaker", 0, &R, BOTO_NOW, "IncompleteSignatureException", 400,
           "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
           "token unsigned");
    ig_auth_free(tk);
    ig_auth_free(plain);
}

/* Random damage to a good request never crashes, never passes, and always
 * says why (ASan/UBSan builds check the rest). */
static void test_random_damage(void **state)
{
    struct ig_auth *a = mk_auth(T_AK " " T_SK "\n", 300);
    static const char alphabet[] = "AWS4-HMAC-SHA256 Credential=/,;= SignedHeaders\t%x0";
    unsigned seed = 12345;

    (void)state;
    for (int iter = 0; iter < 3000; iter++) {
        char v[sizeof(BOTO_AUTH) + 8], m[256];
        const char *t = NULL;
        int st = 0, rc, k = 1 + iter % 4;
        size_t n;

        memcpy(v, BOTO_AUTH, sizeof(BOTO_AUTH));
        n = strlen(v);
        while (k-- > 0) {
            size_t pos = (size_t)rand_r(&seed) % n;

            if (rand_r(&seed) % 5 == 0)
                v[pos] = '\0', n = pos > 0 ? pos : 1;
            else
                v[pos] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
        }
        if (strcmp(v, BOTO_AUTH) == 0)
            continue;
        boto_req(&R, 0);
        tr_set(&R, "Authorization", v);
        rc = ig_auth_check(a, R.method, R.uri, R.hdrs, R.nhdrs, R.body, R.bodylen, BOTO_NOW, &t,
                           &st, m, sizeof(m));
        if (rc == 0) {
            /* only harmless damage (extra blanks) may pass */
            continue;
        }
        assert_non_null(t);
        assert_true(st == 400 || st == 403);
        assert_true(m[0] != '\0');
    }
    ig_auth_free(a);
}

/* --- keys ------------------------------------------------------------- */

static void expect_new_error(struct ig_config *cfg, const char *want)
{
    struct ig_auth *a = (struct ig_auth *)1;
    char err[512];

    assert_int_equal(ig_auth_new(cfg, &a, err, sizeof(err)), IG_ERR_CONFIG);
    assert_null(a);
    assert_string_equal(err, want);
}

static void cfg_keys(struct ig_config *cfg, const char *keys, char *path, size_t pathlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->admin_auth = 1;
    cfg->auth_skew_s = 300;
    cfg->admin_access_key = (char *)"";
    cfg->admin_secret_key = (char *)"";
    cfg->admin_keys_file = (char *)"";
    if (keys != NULL) {
        write_file("keys", keys, path, pathlen);
        cfg->admin_keys_file = path;
    }
}

static void test_keys(void **state)
{
    struct ig_config cfg;
    struct ig_auth *a;
    char path[128], want[1024], err[512], *big;
    size_t i, n;

    (void)state;
    /* comments, blank lines, tabs, CRLF, the option's key */
    cfg_keys(&cfg, "# keys\n\n  AK1 SK1\r\n\tAK2\tSK2 TOK2 \n#AK3 SK3\n", path, sizeof(path));
    cfg.admin_access_key = (char *)"AK0";
    cfg.admin_secret_key = (char *)"SK0";
    assert_int_equal(ig_auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_int_equal(ig_auth_nkeys(a), 3);
    ig_auth_free(a);
    ig_auth_free(NULL);

    cfg_keys(&cfg, "AK1 SK1\n# c\n\nAK2\n", path, sizeof(path));
    snprintf(want, sizeof(want), "%s:4: expected ACCESS_KEY SECRET [SESSION_TOKEN]", path);
    expect_new_error(&cfg, want);
    cfg_keys(&cfg, "AK1 SK1 TOK EXTRA\n", path, sizeof(path));
    snprintf(want, sizeof(want), "%s:1: expected ACCESS_KEY SECRET [SESSION_TOKEN]", path);
    expect_new_error(&cfg, want);
    cfg_keys(&cfg, "AK1 SK1\nAK2 SK2\nAK1 SK3\n", path, sizeof(path));
    snprintf(want, sizeof(want), "%s:3: access key 'AK1' is defined twice", path);
    expect_new_error(&cfg, want);
    cfg_keys(&cfg, "AK/1 SK1\n", path, sizeof(path));
    snprintf(want, sizeof(want),
             "%s:1: access key id must be 1..128 printable characters without space, '/', ',' or "
             "'='",
             path);
    expect_new_error(&cfg, want);
    cfg_keys(&cfg, "AK0 SK0\n", path, sizeof(path));
    cfg.admin_access_key = (char *)"AK0";
    cfg.admin_secret_key = (char *)"SKX";
    snprintf(want, sizeof(want), "%s:1: access key 'AK0' is defined twice", path);
    expect_new_error(&cfg, want);

    /* a line of 4096 bytes with its newline is fine; 4097 is not */
    big = malloc(3 * 4096);
    assert_non_null(big);
    memset(big, 'S', 4094);
    memcpy(big, "AK ", 3);
    big[4095] = '\n';
    big[4096] = '\0';
    big[4094] = 'S';
    cfg_keys(&cfg, big, path, sizeof(path));
    snprintf(want, sizeof(want), "%s:1: secret key of 'AK' must be 1..256 printable characters",
             path);
    expect_new_error(&cfg, want); /* read whole: the secret is what is wrong */
    memset(big, 'S', 4096);
    memcpy(big, "AK ", 3);
    big[4096] = '\n';
    big[4097] = '\0';
    cfg_keys(&cfg, big, path, sizeof(path));
    snprintf(want, sizeof(want), "%s:1: line longer than 4096 bytes", path);
    expect_new_error(&cfg, want);
    free(big);

    /* 1000 keys, then one more */
    n = 1001 * 24;
    big = malloc(n);
    assert_non_null(big);
    big[0] = '\0';
    for (i = 0; i < 1000; i++)
        snprintf(big + strlen(big), n - strlen(big), "AK%zu SK%zu\n", i, i);
    cfg_keys(&cfg, big, path, sizeof(path));
    assert_int_equal(ig_auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_int_equal(ig_auth_nkeys(a), 1000);
    ig_auth_free(a);
    snprintf(big + strlen(big), n - strlen(big), "AKX SKX\n");
    cfg_keys(&cfg, big, path, sizeof(path));
    snprintf(want, sizeof(want), "%s:1001: more than 1000 keys", path);
    expect_new_error(&cfg, want);
    free(big);

    cfg_keys(&cfg, NULL, path, sizeof(path));
    snprintf(path, sizeof(path), "%s/no-such-file", tmpdir);
    cfg.admin_keys_file = path;
    snprintf(want, sizeof(want), "%s: cannot open (admin_keys_file): No such file or directory",
             path);
    expect_new_error(&cfg, want);

    cfg_keys(&cfg, NULL, path, sizeof(path));
    expect_new_error(&cfg, "admin_auth is on but no key is configured: set admin_access_key and "
                           "admin_secret_key, or admin_keys_file (or admin_auth = off with the "
                           "admin API on loopback only)");
    cfg.admin_auth = 0;
    cfg.data_auth = 1;
    expect_new_error(&cfg, "data_auth is on but no key is configured: set admin_access_key and "
                           "admin_secret_key, or admin_keys_file");
    cfg.data_auth = 0;
    assert_int_equal(ig_auth_new(&cfg, &a, err, sizeof(err)), 0);
    assert_int_equal(ig_auth_nkeys(a), 0);
    ig_auth_free(a);
    cfg.admin_access_key = (char *)"AK0";
    expect_new_error(&cfg, "admin_access_key and admin_secret_key: set both or neither");
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_auth.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suite),         cmocka_unit_test(test_botocore),
        cmocka_unit_test(test_js_sdk),        cmocka_unit_test(test_content_sha256_right),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_skew),
        cmocka_unit_test(test_session_token), cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_keys),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
