/*
 * fuzz_auth.c - SigV4 verification of incoming requests (auth.c) and the
 * signer it shares with the SageMaker upstream (sigv4.c), on requests the
 * input describes. The gateway runs ig_auth_check before anything else
 * of an admin request (and of InvokeEndpoint with data_auth = on): every
 * byte it reads is the client's, unauthenticated.
 *
 * Keys: two, from a keys file (a memfd): AKIDFUZZ with a secret, and
 * AKIDTOKEN whose requests must carry and sign its session token.
 *
 * Input: byte 0 is the mode, the rest is the request, in lines:
 *   METHOD \n PATH?QUERY \n NAME:VALUE \n ... \n \n BODY
 * (the headers end at the first empty line; the body is every byte after
 * it). Header lines without ':' are skipped; at most FUZZ_HDRS are kept.
 *   bit 0 clear: raw. ig_auth_check on the request as it is. Nobody signed
 *          it (the input cannot hold an HMAC it did not compute), so it
 *          must be refused: with one of the five documented errors, the
 *          status that goes with it, and a NUL-terminated message that
 *          fits the buffer.
 *   bit 0 set: round trip. The request is signed by ig_sigv4_sign as a
 *          client would (region us-east-1, service sagemaker; bit 3
 *          picks the key with a token), sent with the signer's
 *          Authorization, X-Amz-Date (and token) headers in place of any
 *          it had, and must then be accepted, unless a documented limit
 *          refuses it (more than 64 signed names, an Authorization over
 *          8 KiB, a presigned-looking query, an x-amz-content-sha256 the
 *          client set, a token sent with the key that has none). Once accepted, one tamper (bits 1-2: a body byte,
 *          a path segment added, the Host value, the clock moved past the
 *          skew) must make it refused with InvalidSignatureException 403
 *          (or 400 IncompleteSignatureException where the tamper breaks
 *          the request's form).
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "infergate/auth.h"
#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/sigv4.h"

#define FUZZ_HDRS 48          /* header lines kept from the input */
#define FUZZ_MSG 300          /* the message buffer: truncation happens */
#define FUZZ_NOW 1796083200   /* 2026-12-01T00:00:00Z */
#define FUZZ_SKEW 300

static struct ig_auth *auth;

static const char keys_file[] = "# fuzz keys\n"
                                "AKIDFUZZ wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n"
                                "AKIDTOKEN s3cr3t/with+signs FQoGZXIvYXdzEFUaDFuzzToken==\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ig_config cfg;
    char path[64], err[256];
    int fd;

    (void)argc;
    (void)argv;
    fd = memfd_create("infergate-fuzz-keys", 0);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    FUZZ_CHECK(write(fd, keys_file, sizeof(keys_file) - 1) == (ssize_t)(sizeof(keys_file) - 1),
               "write of the keys file failed");
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    memset(&cfg, 0, sizeof(cfg));
    cfg.admin_auth = 1;
    cfg.admin_keys_file = path;
    cfg.auth_skew_s = FUZZ_SKEW;
    FUZZ_CHECK(ig_auth_new(&cfg, &auth, err, sizeof(err)) == 0, "ig_auth_new: %s", err);
    FUZZ_CHECK(ig_auth_nkeys(auth) == 2, "%zu keys", ig_auth_nkeys(auth));
    return 0;
}

struct req {
    char *method, *uri;
    struct ig_http_hdr hdrs[FUZZ_HDRS + 3];
    size_t nhdrs;
    const char *body;
    size_t bodylen;
};

/* Split <buf> (a NUL-terminated copy of the input, written into) into a
 * request. False when it has no method and path lines. */
static bool parse_req(char *buf, size_t len, struct req *r)
{
    char *p = buf, *end = buf + len, *nl;

    memset(r, 0, sizeof(*r));
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
        return false;
    *nl = '\0';
    r->method = p;
    p = nl + 1;
    if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
        return false;
    *nl = '\0';
    r->uri = p;
    p = nl + 1;
    while (p < end) {
        char *colon;

        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        *nl = '\0';
        if (nl == p) { /* the empty line: the body follows */
            p = nl + 1;
            break;
        }
        colon = strchr(p, ':');
        if (colon != NULL && r->nhdrs < FUZZ_HDRS) {
            *colon = '\0';
            r->hdrs[r->nhdrs].name = p;
            r->hdrs[r->nhdrs].value = colon + 1;
            r->nhdrs++;
        }
        p = nl + 1;
    }
    r->body = p < end ? p : "";
    r->bodylen = p < end ? (size_t)(end - p) : 0;
    return true;
}

/* The documented refusals: type and status go together. */
static void check_refusal(int rc, const char *type, int status, const char *msg)
{
    static const struct {
        const char *type;
        int status;
    } known[] = {
        {"MissingAuthenticationTokenException", 403}, {"IncompleteSignatureException", 400},
        {"UnrecognizedClientException", 403},         {"InvalidSignatureException", 403},
        {"InternalFailure", 500},
    };
    bool ok = false;

    FUZZ_CHECK(rc == IG_ERR_INVALID || rc == IG_ERR_IO || rc == IG_ERR_NOMEM, "rc %d", rc);
    FUZZ_CHECK(type != NULL, "a refusal without a type (rc %d)", rc);
    for (size_t i = 0; i < IG_ARRAY_SIZE(known); i++)
        if (strcmp(type, known[i].type) == 0) {
            FUZZ_CHECK(status == known[i].status, "%s with status %d", type, status);
            ok = true;
        }
    FUZZ_CHECK(ok, "undocumented error type '%s'", type);
    FUZZ_CHECK((status >= 500) == (rc != IG_ERR_INVALID), "%s %d with rc %d", type, status, rc);
    FUZZ_CHECK(memchr(msg, '\0', FUZZ_MSG) != NULL && msg[0] != '\0', "%s: empty or unterminated "
               "message", type);
}

static int check(const struct req *r, time_t now, const char **type, int *status, char *msg)
{
    int rc;

    memset(msg, 'x', FUZZ_MSG);
    rc = ig_auth_check(auth, r->method, r->uri, r->hdrs, r->nhdrs, r->body, r->bodylen, now, type,
                       status, msg, FUZZ_MSG);
    if (rc != 0)
        check_refusal(rc, *type, *status, msg);
    else
        FUZZ_CHECK(*type == NULL && *status == 200, "accepted with type %s status %d",
                   *type ? *type : "(null)", *status);
    return rc;
}

static bool is_hdr(const struct ig_http_hdr *h, const char *name)
{
    return strcasecmp(h->name, name) == 0;
}

/* Sign <r> as a client, send it, expect it accepted; then one tamper. */
static void round_trip(struct req *r, uint8_t mode)
{
    bool token = mode & 8;
    const char *ak = token ? "AKIDTOKEN" : "AKIDFUZZ";
    const char *sk = token ? "s3cr3t/with+signs" : "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const char *tok = token ? "FQoGZXIvYXdzEFUaDFuzzToken==" : NULL;
    struct ig_sigv4_hdr sh[FUZZ_HDRS];
    struct ig_sigv4_in in = {0};
    struct ig_sigv4_out out = {0};
    struct req sent;
    const char *type;
    int status, rc;
    char msg[FUZZ_MSG], *uri2 = NULL, *host2 = NULL, *body2 = NULL;
    bool may_refuse = strstr(r->uri, "X-Amz-Algorithm=") != NULL;

    for (size_t i = 0; i < r->nhdrs; i++) {
        sh[i].name = r->hdrs[i].name;
        sh[i].value = r->hdrs[i].value;
        if (is_hdr(&r->hdrs[i], "x-amz-content-sha256") ||
            (tok == NULL && is_hdr(&r->hdrs[i], "x-amz-security-token")))
            may_refuse = true;
    }
    in.method = r->method;
    in.uri = r->uri;
    in.hdrs = sh;
    in.nhdrs = r->nhdrs;
    in.body = r->body;
    in.body_len = r->bodylen;
    in.region = "us-east-1";
    in.service = IG_AUTH_SERVICE;
    in.access_key = ak;
    in.secret_key = sk;
    in.session_token = tok;
    in.now = FUZZ_NOW;
    if (ig_sigv4_sign(&in, &out) != 0) {
        FUZZ_CHECK(out.authorization == NULL && out.error[0] != '\0', "a failed sign");
        return; /* not a request a client could sign */
    }
    /* What goes on the wire: the request's headers but its own
     * Authorization, X-Amz-Date and token, then the signer's. */
    sent = *r;
    sent.nhdrs = 0;
    for (size_t i = 0; i < r->nhdrs; i++)
        if (!is_hdr(&r->hdrs[i], "authorization") && !is_hdr(&r->hdrs[i], "x-amz-date") &&
            !(tok != NULL && is_hdr(&r->hdrs[i], "x-amz-security-token")))
            sent.hdrs[sent.nhdrs++] = r->hdrs[i];
    sent.hdrs[sent.nhdrs++] = (struct ig_http_hdr){"Authorization", out.authorization};
    sent.hdrs[sent.nhdrs++] = (struct ig_http_hdr){"X-Amz-Date", out.amz_date};
    if (tok != NULL)
        sent.hdrs[sent.nhdrs++] = (struct ig_http_hdr){"X-Amz-Security-Token", tok};
    if (strlen(out.authorization) > IG_AUTH_MAX_AUTHORIZATION)
        may_refuse = true;
    {
        /* more than IG_AUTH_MAX_SIGNED names: count the ';' */
        const char *s = strstr(out.authorization, "SignedHeaders="), *e = strstr(s, ", ");
        size_t names = 1;

        for (; s < e; s++)
            names += *s == ';';
        if (names > IG_AUTH_MAX_SIGNED)
            may_refuse = true;
    }
    rc = check(&sent, FUZZ_NOW, &type, &status, msg);
    if (rc != 0) {
        FUZZ_CHECK(may_refuse, "a request signed by ig_sigv4_sign is refused: %s %d: %s\n"
                   "  canonical request:\n%s", type, status, msg, out.canonical_request);
        ig_sigv4_out_clear(&out);
        return;
    }
    /* One tamper: the signature must no longer hold. */
    switch ((mode >> 1) & 3) {
    case 0: /* a body byte */
        if (r->bodylen == 0)
            goto done;
        body2 = ig_xmalloc(r->bodylen);
        memcpy(body2, r->body, r->bodylen);
        body2[r->bodylen / 2] ^= 0x01;
        sent.body = body2;
        break;
    case 1: { /* a path segment added before the query */
        const char *q = strchr(r->uri, '?');
        size_t pn = q ? (size_t)(q - r->uri) : strlen(r->uri);

        uri2 = ig_xmalloc(strlen(r->uri) + 8);
        memcpy(uri2, r->uri, pn);
        strcpy(uri2 + pn, pn > 0 && r->uri[pn - 1] == '/' ? "zz" : "/zz");
        strcat(uri2, q ? q : "");
        sent.uri = uri2;
        break;
    }
    case 2: /* the Host value */
        for (size_t i = 0; i < sent.nhdrs; i++)
            if (is_hdr(&sent.hdrs[i], "host")) {
                host2 = ig_xmalloc(strlen(sent.hdrs[i].value) + 2);
                strcpy(host2, sent.hdrs[i].value);
                strcat(host2, "z");
                sent.hdrs[i].value = host2;
                break; /* the first: the one the signer signed first */
            }
        if (host2 == NULL)
            goto done;
        break;
    default: /* the clock past the skew */
        rc = check(&sent, FUZZ_NOW + FUZZ_SKEW + 1, &type, &status, msg);
        FUZZ_CHECK(rc != 0 && strcmp(type, "InvalidSignatureException") == 0,
                   "a signature %d s old is accepted or refused as %s", FUZZ_SKEW + 1,
                   rc ? type : "nothing");
        goto done;
    }
    rc = check(&sent, FUZZ_NOW, &type, &status, msg);
    FUZZ_CHECK(rc != 0, "a tampered request (tamper %d) is accepted\n  canonical request:\n%s",
               (mode >> 1) & 3, out.canonical_request);
    FUZZ_CHECK(strcmp(type, "InvalidSignatureException") == 0 ||
                   strcmp(type, "IncompleteSignatureException") == 0,
               "a tampered request (tamper %d) refused as %s", (mode >> 1) & 3, type);
done:
    free(body2);
    free(uri2);
    free(host2);
    ig_sigv4_out_clear(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct req r;
    const char *type;
    int status;
    char msg[FUZZ_MSG], *buf;

    if (size < 1 || size > 64 * 1024)
        return 0;
    buf = ig_xmalloc(size);
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    if (parse_req(buf, size - 1, &r)) {
        if (data[0] & 1) {
            round_trip(&r, data[0]);
        } else {
            int rc = check(&r, FUZZ_NOW, &type, &status, msg);

            FUZZ_CHECK(rc != 0, "a request nobody signed is accepted");
        }
    }
    free(buf);
    return 0;
}
