/* test_aws_creds.c - the AWS credentials chain: each source with the
 * environment set per test and files in a mkdtemp directory, the order of
 * the chain, a fake STS and a fake container endpoint on loopback (evhttp on
 * the provider's own event_base) that check what they receive, refresh
 * across an expiry, a failing refresh, and the caps (10 MB answers, an
 * endpoint that never answers, plain http to a host that is not loopback). */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "infergate/aws_creds.h"
#include "infergate/common.h"

enum fake_mode {
    FAKE_STS_OK = 0,
    FAKE_STS_ERR = 1,
    FAKE_CONT_OK = 2,
    FAKE_CONT_500 = 3,
    FAKE_HUGE = 4,         /* 10 MB with a Content-Length */
    FAKE_HUGE_CHUNKED = 5, /* 10 MB, chunked: no length to refuse early */
    FAKE_HANG = 6,         /* never answers */
    FAKE_CONT_LONG = 7,    /* a SecretAccessKey past its cap */
    FAKE_CONT_NOTJSON = 8, /* 200 with a page that is not JSON */
    FAKE_CONT_CTRL = 9,    /* a Token holding a newline */
};

struct fake {
    struct evhttp *http;
    int port;
    enum fake_mode mode;
    int lifetime_s;
    int requests;
    char method[8];
    char path[256];
    char body[8192];
    char ctype[128];
    char auth[1024];
    int has_auth;
    const char *exp_text; /* FAKE_CONT_OK: this Expiration, else now + lifetime_s in UTC */
};

struct fixture {
    char dir[64];
    struct event_base *base;
    struct fake fake;
    int ready;
    char err[1024];
};

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
};

static void iso(time_t t, char *out, size_t cap)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void huge_reply(struct evhttp_request *req, int chunked)
{
    struct evbuffer *b = evbuffer_new();
    static char mb[1024 * 1024];

    memset(mb, 'x', sizeof(mb));
    if (chunked) {
        evhttp_send_reply_start(req, 200, "OK");
        for (int i = 0; i < 10; i++) {
            evbuffer_add(b, mb, sizeof(mb));
            evhttp_send_reply_chunk(req, b);
        }
        evhttp_send_reply_end(req);
    } else {
        for (int i = 0; i < 10; i++)
            evbuffer_add(b, mb, sizeof(mb));
        evhttp_send_reply(req, 200, "OK", b);
    }
    evbuffer_free(b);
}

static void on_fake(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req), *out;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *v;
    size_t n = evbuffer_get_length(in);
    char exp[32];
    int k;

    f->requests++;
    k = f->requests;
    snprintf(f->method, sizeof(f->method), "%s",
             evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "GET");
    snprintf(f->path, sizeof(f->path), "%s", evhttp_request_get_uri(req));
    if (n >= sizeof(f->body))
        n = sizeof(f->body) - 1;
    evbuffer_copyout(in, f->body, n);
    f->body[n] = '\0';
    v = evhttp_find_header(h, "Content-Type");
    snprintf(f->ctype, sizeof(f->ctype), "%s", v != NULL ? v : "");
    v = evhttp_find_header(h, "Authorization");
    f->has_auth = v != NULL;
    snprintf(f->auth, sizeof(f->auth), "%s", v != NULL ? v : "");
    iso(time(NULL) + f->lifetime_s, exp, sizeof(exp));
    out = evbuffer_new();
    switch (f->mode) {
    case FAKE_STS_OK:
        evbuffer_add_printf(
            out,
            "<AssumeRoleWithWebIdentityResponse "
            "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
            "  <AssumeRoleWithWebIdentityResult>\n"
            "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/ig-role/ig</Arn>"
            "<AssumedRoleId>AROAEXAMPLE:ig</AssumedRoleId></AssumedRoleUser>\n"
            "    <Credentials>\n"
            "      <SessionToken>FwoGZX&amp;token%d</SessionToken>\n"
            "      <SecretAccessKey>secret/%d+key</SecretAccessKey>\n"
            "      <Expiration>%s</Expiration>\n"
            "      <AccessKeyId>ASIASTS%d</AccessKeyId>\n"
            "    </Credentials>\n"
            "  </AssumeRoleWithWebIdentityResult>\n"
            "</AssumeRoleWithWebIdentityResponse>\n",
            k, k, exp, k);
        evhttp_send_reply(req, 200, "OK", out);
        break;
    case FAKE_STS_ERR:
        evbuffer_add_printf(out,
                            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                            "<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                            "<Message>Token expired: exp &lt; now\n(check the projection)"
                            "</Message></Error><RequestId>r-1</RequestId></ErrorResponse>");
        evhttp_send_reply(req, 400, "Bad Request", out);
        break;
    case FAKE_CONT_OK:
        evbuffer_add_printf(out,
                            "{\"AccessKeyId\":\"ASIACONT%d\",\"SecretAccessKey\":\"csecret%d\","
                            "\"Token\":\"ctoken%d\",\"Expiration\":\"%s\",\"RoleArn\":\"x\"}",
                            k, k, k, f->exp_text != NULL ? f->exp_text : exp);
        evhttp_send_reply(req, 200, "OK", out);
        break;
    case FAKE_CONT_500:
        evbuffer_add_printf(out, "{\"code\":\"Boom\",\"message\":\"agent down\"}");
        evhttp_send_reply(req, 500, "Internal Server Error", out);
        break;
    case FAKE_HUGE:
        huge_reply(req, 0);
        break;
    case FAKE_HUGE_CHUNKED:
        huge_reply(req, 1);
        break;
    case FAKE_HANG:
        break; /* evhttp_free drops it */
    case FAKE_CONT_LONG:
        evbuffer_add_printf(out,
                            "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"%0300d\","
                            "\"Token\":\"t\",\"Expiration\":\"%s\"}",
                            7, exp);
        evhttp_send_reply(req, 200, "OK", out);
        break;
    case FAKE_CONT_NOTJSON:
        evbuffer_add_printf(out, "<html>secret-ish page</html>");
        evhttp_send_reply(req, 200, "OK", out);
        break;
    case FAKE_CONT_CTRL:
        evbuffer_add_printf(out,
                            "{\"AccessKeyId\":\"ASIA\",\"SecretAccessKey\":\"s\","
                            "\"Token\":\"t\\r\\nX-Evil: 1\",\"Expiration\":\"%s\"}",
                            exp);
        evhttp_send_reply(req, 200, "OK", out);
        break;
    }
    evbuffer_free(out);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char path[128];

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_aws_creds.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    for (size_t i = 0; i < IG_ARRAY_SIZE(aws_vars); i++)
        unsetenv(aws_vars[i]);
    /* the fake STS is on loopback: no proxy of the machine in between */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    /* no stray ~/.aws of the machine: the defaults point into the empty dir */
    setenv("HOME", fx->dir, 1);
    snprintf(path, sizeof(path), "%s/credentials", fx->dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    snprintf(path, sizeof(path), "%s/config", fx->dir);
    setenv("AWS_CONFIG_FILE", path, 1);
    fx->base = event_base_new();
    fx->fake.http = evhttp_new(fx->base);
    fx->fake.lifetime_s = 3600;
    bs = evhttp_bind_socket_with_handle(fx->fake.http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl), 0);
    fx->fake.port = ntohs(sin.sin_port);
    evhttp_set_gencb(fx->fake.http, on_fake, &fx->fake);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    evhttp_free(fx->fake.http);
    event_base_free(fx->base);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void write_file(struct fixture *fx, const char *name, const char *text, char *path,
                       size_t cap)
{
    FILE *f;

    snprintf(path, cap, "%s/%s", fx->dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void pump(struct fixture *fx, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

static void on_ready(void *arg)
{
    ((struct fixture *)arg)->ready++;
}

static void wait_ready(struct fixture *fx, int max_ms)
{
    for (int t = 0; t < max_ms && fx->ready == 0; t += 10)
        pump(fx, 10);
    assert_int_equal(fx->ready, 1);
}

static struct ig_aws_creds_provider *new_ok(struct fixture *fx, const struct ig_aws_creds_conf *c)
{
    struct ig_aws_creds_provider *p = NULL;
    int rc = ig_aws_creds_new(fx->base, c, on_ready, fx, &p, fx->err, sizeof(fx->err));

    if (rc != 0)
        fail_msg("ig_aws_creds_new: %d %s", rc, fx->err);
    return p;
}

static void new_fails(struct fixture *fx, int want_rc, const char *want_err)
{
    struct ig_aws_creds_conf c = {"us-east-1", NULL, 0, NULL};
    struct ig_aws_creds_provider *p = NULL;

    assert_int_equal(ig_aws_creds_new(fx->base, &c, on_ready, fx, &p, fx->err, sizeof(fx->err)),
                     want_rc);
    assert_null(p);
    assert_string_equal(fx->err, want_err);
}

/* <name>=http://<host>:<the fake's port><path> */
static void set_port_env(struct fixture *fx, const char *name, const char *host, const char *path)
{
    char url[256];

    snprintf(url, sizeof(url), "http://%s:%d%s", host, fx->fake.port, path);
    setenv(name, url, 1);
}

/* ------------------------------------------------------------ static sources */

static void test_environment(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;

    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret/+=", 1);
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "environment");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKIAENV");
    assert_string_equal(c->secret_key, "envsecret/+=");
    assert_null(c->session_token);
    assert_int_equal(c->expiration, 0);
    ig_aws_creds_free(p);

    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->session_token, "envtoken");
    ig_aws_creds_free(p);

    /* the legacy name, which botocore reads too: the token is not dropped */
    unsetenv("AWS_SESSION_TOKEN");
    setenv("AWS_SECURITY_TOKEN", "legacytoken", 1);
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->session_token, "legacytoken");
    ig_aws_creds_free(p);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->session_token, "envtoken"); /* the standard name wins */
    ig_aws_creds_free(p);
    assert_int_equal(fx->ready, 0); /* static: no ready() */

    unsetenv("AWS_SECRET_ACCESS_KEY");
    new_fails(fx, IG_ERR_CONFIG, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    /* empty is unset, as the SDKs read it */
    setenv("AWS_ACCESS_KEY_ID", "", 1);
    new_fails(fx, IG_ERR_NOTFOUND,
              "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
              "AWS_WEB_IDENTITY_TOKEN_FILE+AWS_ROLE_ARN or AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

static void test_profiles(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char cpath[128], fpath[128], want[512];
    static char longtok[4000], text[8192];

    write_file(fx, "credentials",
               "# a comment\n"
               "; another\n"
               "[default]\n"
               "aws_access_key_id=AKDEF\n"
               "aws_secret_access_key = SKDEF\r\n"
               "\n"
               "  [work]  \n"
               "AWS_Access_Key_ID   =   AKWORK  \n"
               "aws_secret_access_key=SKWORK\n"
               "aws_session_token = TOKWORK\n"
               "[half]\n"
               "aws_access_key_id = AKHALF\n"
               "[legacy]\n"
               "aws_access_key_id = AKLEG\n"
               "aws_secret_access_key = SKLEG\n"
               "aws_security_token = TOKLEG\n",
               cpath, sizeof(cpath));
    memset(longtok, 'T', sizeof(longtok) - 1);
    snprintf(text, sizeof(text),
             "[default]\n"
             "region = us-east-1\n"
             "aws_access_key_id = AKCONFDEF\n"
             "aws_secret_access_key = SKCONFDEF\n"
             "[profile work]\n"
             "aws_access_key_id = AKCONF\n"
             "aws_secret_access_key = SKCONF\n"
             "[profile   cfgonly]\n"
             "aws_access_key_id = AKCFG\n"
             "aws_secret_access_key: SKCFG\n"
             "aws_session_token = %s\n"
             "[cfgnoprefix]\n"
             "aws_access_key_id = AKWRONG\n"
             "[profile sso]\n"
             "sso_start_url = https://example.awsapps.com/start\n",
             longtok);
    write_file(fx, "config", text, fpath, sizeof(fpath));

    /* default profile: the credentials file wins over the config file */
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "profile default");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKDEF");
    assert_string_equal(c->secret_key, "SKDEF");
    assert_null(c->session_token);
    ig_aws_creds_free(p);

    setenv("AWS_PROFILE", "work", 1);
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "profile work");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKWORK");
    assert_string_equal(c->secret_key, "SKWORK");
    assert_string_equal(c->session_token, "TOKWORK");
    ig_aws_creds_free(p);

    /* aws_security_token, the legacy name botocore reads too */
    setenv("AWS_PROFILE", "legacy", 1);
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKLEG");
    assert_non_null(c->session_token);
    assert_string_equal(c->session_token, "TOKLEG");
    ig_aws_creds_free(p);

    /* config-only profile, ':' as the separator, a token longer than any INI line cap */
    setenv("AWS_PROFILE", "cfgonly", 1);
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKCFG");
    assert_string_equal(c->secret_key, "SKCFG");
    assert_string_equal(c->session_token, longtok);
    ig_aws_creds_free(p);

    /* "[cfgnoprefix]" in the config file is not a profile section */
    setenv("AWS_PROFILE", "cfgnoprefix", 1);
    snprintf(want, sizeof(want), "profile 'cfgnoprefix' not found in %s, %s", cpath, fpath);
    new_fails(fx, IG_ERR_NOTFOUND, want);

    setenv("AWS_PROFILE", "nope", 1);
    snprintf(want, sizeof(want), "profile 'nope' not found in %s, %s", cpath, fpath);
    new_fails(fx, IG_ERR_NOTFOUND, want);

    setenv("AWS_PROFILE", "half", 1);
    snprintf(want, sizeof(want),
             "profile 'half' in %s has aws_access_key_id but no aws_secret_access_key", cpath);
    new_fails(fx, IG_ERR_CONFIG, want);

    /* a profile without keys (SSO here) hands over to the next source */
    setenv("AWS_PROFILE", "sso", 1);
    new_fails(fx, IG_ERR_NOTFOUND,
              "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, "
              "AWS_WEB_IDENTITY_TOKEN_FILE+AWS_ROLE_ARN or AWS_CONTAINER_CREDENTIALS_FULL_URI");

    /* a file past the cap is refused, not read whole */
    {
        char *big = malloc(IG_AWS_CREDS_MAX_FILE + 2);

        memset(big, '#', IG_AWS_CREDS_MAX_FILE + 1);
        big[IG_AWS_CREDS_MAX_FILE + 1] = '\0';
        write_file(fx, "credentials", big, cpath, sizeof(cpath));
        free(big);
        snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", cpath);
        new_fails(fx, IG_ERR_CONFIG, want);
    }

    /* the default files under HOME */
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    snprintf(cpath, sizeof(cpath), "%s/.aws", fx->dir);
    assert_int_equal(mkdir(cpath, 0700), 0);
    write_file(fx, ".aws/config",
               "[default]\naws_access_key_id=AKHOME\naws_secret_access_key=SKHOME\n", fpath,
               sizeof(fpath));
    p = new_ok(fx, NULL);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKHOME");
    ig_aws_creds_free(p);
}

static void test_precedence(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128];

    write_file(fx, "credentials", "[default]\naws_access_key_id=AKFILE\naws_secret_access_key=SK\n",
               path, sizeof(path));
    write_file(fx, "token", "jwt", path, sizeof(path));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "");
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/creds");
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);

    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "environment");
    ig_aws_creds_free(p);

    /* web identity before the shared files, as botocore (and the Java and
     * Go SDKs) order them: an EKS pod with IRSA whose image holds a
     * ~/.aws/credentials takes its role */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "web identity");
    ig_aws_creds_free(p); /* cancels the fetch it started */

    /* AWS_ROLE_ARN alone is no source (botocore): the files serve */
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "profile default");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "AKFILE");
    ig_aws_creds_free(p);

    unsetenv("AWS_ROLE_ARN");
    unlink(path);
    snprintf(path, sizeof(path), "%s/credentials", fx->dir);
    unlink(path);
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "container");
    ig_aws_creds_free(p);

    pump(fx, 50);
    assert_int_equal(fx->ready, 0); /* freed providers never call back */
    assert_int_equal(fx->fake.requests, 0);
}

/* ------------------------------------------------------------ web identity */

static void test_web_identity(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_conf conf = {"us-east-1", NULL, 0, NULL};
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128], url[64], exp[32];
    time_t t0 = time(NULL);

    write_file(fx, "token", "eyJ.tok/en+1=\n", path, sizeof(path));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ig-role", 1);
    setenv("AWS_ROLE_SESSION_NAME", "ig test", 1);
    setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1", 1); /* conf wins over it */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", fx->fake.port);
    conf.sts_endpoint = url;
    p = new_ok(fx, &conf);
    assert_string_equal(ig_aws_creds_source(p), "web identity");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), IG_ERR_AGAIN);
    assert_string_equal(fx->err, "AWS credentials from web identity: first fetch running");
    wait_ready(fx, 3000);
    assert_int_equal(fx->fake.requests, 1);
    assert_string_equal(fx->fake.method, "POST");
    assert_string_equal(fx->fake.path, "/");
    assert_string_equal(fx->fake.ctype, "application/x-www-form-urlencoded");
    assert_string_equal(fx->fake.body,
                        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                        "&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fig-role"
                        "&RoleSessionName=ig%20test&WebIdentityToken=eyJ.tok%2Fen%2B1%3D");
    assert_false(fx->fake.has_auth); /* unsigned */
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "ASIASTS1");
    assert_string_equal(c->secret_key, "secret/1+key");
    assert_string_equal(c->session_token, "FwoGZX&token1");
    iso(c->expiration, exp, sizeof(exp));
    assert_true(c->expiration >= t0 + 3600 && c->expiration <= time(NULL) + 3600);
    assert_int_equal(ig_aws_creds_fetches(p), 1);
    ig_aws_creds_free(p);

    /* the default session name; the endpoint from the environment */
    unsetenv("AWS_ROLE_SESSION_NAME");
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "/sts");
    fx->ready = 0;
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_string_equal(fx->fake.path, "/sts");
    snprintf(url, sizeof(url), "&RoleSessionName=infergate-%ld&", (long)getpid());
    assert_non_null(strstr(fx->fake.body, url));
    ig_aws_creds_free(p);
}

static void test_web_identity_setup_errors(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_conf conf = {"", NULL, 0, NULL};
    struct ig_aws_creds_provider *p = NULL;
    char path[128], want[256];

    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    new_fails(fx, IG_ERR_CONFIG, "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not");
    snprintf(path, sizeof(path), "%s/missing-token", fx->dir);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "");
    snprintf(want, sizeof(want), "AWS_WEB_IDENTITY_TOKEN_FILE: %s: No such file or directory",
             path);
    new_fails(fx, IG_ERR_CONFIG, want);
    {
        static char big[IG_AWS_CREDS_MAX_TOKEN + 2];

        memset(big, 'j', sizeof(big) - 1);
        write_file(fx, "token", big, path, sizeof(path));
        setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
        snprintf(want, sizeof(want), "AWS_WEB_IDENTITY_TOKEN_FILE: %s: larger than 16384 bytes",
                 path);
        new_fails(fx, IG_ERR_CONFIG, want);
    }
    unsetenv("AWS_ENDPOINT_URL_STS");
    write_file(fx, "token", "jwt", path, sizeof(path));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    assert_int_equal(ig_aws_creds_new(fx->base, &conf, on_ready, fx, &p, fx->err, sizeof(fx->err)),
                     IG_ERR_CONFIG);
    assert_string_equal(fx->err, "web identity credentials need a region for STS (or "
                                 "AWS_ENDPOINT_URL_STS); region '' is not one");
    conf.region = "us-east-1/../evil";
    assert_int_equal(ig_aws_creds_new(fx->base, &conf, on_ready, fx, &p, fx->err, sizeof(fx->err)),
                     IG_ERR_CONFIG);
    /* a regional endpoint is accepted (the fetch is cancelled before it runs) */
    conf.region = "eu-west-3";
    assert_int_equal(ig_aws_creds_new(fx->base, &conf, on_ready, fx, &p, fx->err, sizeof(fx->err)),
                     0);
    ig_aws_creds_free(p);
}

static void test_sts_error(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128], want[512];

    fx->fake.mode = FAKE_STS_ERR;
    write_file(fx, "token", "jwt-secret-value", path, sizeof(path));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "");
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), IG_ERR_IO);
    assert_string_equal(fx->err, "AWS credentials from web identity: their fetch failed (the "
                                 "gateway's log says why)");
    snprintf(want, sizeof(want),
             "STS AssumeRoleWithWebIdentity from http://127.0.0.1:%d: HTTP 400 "
             "InvalidIdentityToken: Token expired: exp < now (check the projection)",
             fx->fake.port);
    assert_string_equal(ig_aws_creds_last_error(p), want);
    assert_null(strstr(fx->err, "jwt-secret-value"));
    assert_null(strstr(ig_aws_creds_last_error(p), "jwt-secret-value"));
    ig_aws_creds_free(p);
}

struct free_in_ready {
    struct ig_aws_creds_provider *p;
    int rc;
};

static void on_ready_free(void *arg)
{
    struct free_in_ready *f = arg;
    const struct ig_aws_creds *c = NULL;
    char err[256];

    f->rc = ig_aws_creds_get(f->p, &c, err, sizeof(err));
    ig_aws_creds_free(f->p);
    f->p = NULL;
}

static void test_free_in_ready(void **state)
{
    struct fixture *fx = *state;
    struct free_in_ready f = {NULL, 1};
    char err[256];

    /* the provider freed from its own ready(): its curl loop is still on the stack */
    fx->fake.mode = FAKE_CONT_OK;
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/c");
    assert_int_equal(ig_aws_creds_new(fx->base, NULL, on_ready_free, &f, &f.p, err, sizeof(err)),
                     0);
    for (int t = 0; t < 3000 && f.p != NULL; t += 10)
        pump(fx, 10);
    assert_null(f.p);
    assert_int_equal(f.rc, 0);
    pump(fx, 20); /* the deferred free of its curl loop runs */
}

/* ------------------------------------------------------------ container */

static void test_container(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128];

    fx->fake.mode = FAKE_CONT_OK;
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/v1/credentials?a=b");
    write_file(fx, "auth", "Bearer file-token", path, sizeof(path));
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token", 1); /* the file wins */
    /* a proxy of the environment is not used for the local agent */
    unsetenv("no_proxy");
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    p = new_ok(fx, NULL);
    assert_string_equal(ig_aws_creds_source(p), "container");
    wait_ready(fx, 3000);
    assert_string_equal(fx->fake.method, "GET");
    assert_string_equal(fx->fake.path, "/v1/credentials?a=b");
    assert_string_equal(fx->fake.auth, "Bearer file-token");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "ASIACONT1");
    assert_string_equal(c->secret_key, "csecret1");
    assert_string_equal(c->session_token, "ctoken1");
    ig_aws_creds_free(p);

    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    fx->ready = 0;
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_string_equal(fx->fake.auth, "env-token");
    ig_aws_creds_free(p);

    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    fx->ready = 0;
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_false(fx->fake.has_auth);
    ig_aws_creds_free(p);
    unsetenv("http_proxy");
}

/* ISO 8601's offsets, as a credentials server may write them (botocore
 * reads every one): +HH:MM, +HHMM, +HH; the instant is the same. */
static void test_expiration_offsets(void **state)
{
    struct fixture *fx = *state;
    static const struct {
        int off_min;
        const char *suffix;
    } cases[] = {{0, "Z"},          {0, "+00:00"},  {0, "+0000"},  {120, "+02:00"},
                 {120, "+0200"},    {120, "+02"},   {-330, "-0530"}, {-330, "-05:30"},
                 {60, ".250+0100"}};
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    time_t t = time(NULL) + 3600;
    char text[64];

    fx->fake.mode = FAKE_CONT_OK;
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/creds");
    for (size_t i = 0; i < IG_ARRAY_SIZE(cases); i++) {
        time_t local = t + cases[i].off_min * 60;
        struct tm tm;

        gmtime_r(&local, &tm);
        strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
        strcat(text, cases[i].suffix);
        fx->fake.exp_text = text;
        fx->ready = 0;
        p = new_ok(fx, NULL);
        wait_ready(fx, 3000);
        if (ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)) != 0)
            fail_msg("Expiration %s: %s", text, fx->err);
        assert_int_equal(c->expiration, t);
        ig_aws_creds_free(p);
    }
    fx->fake.exp_text = NULL;
}

static void test_container_token_crlf(void **state)
{
    struct fixture *fx = *state;
    char path[128], want[256];

    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/c");
    write_file(fx, "auth", "tok\r\nX-Injected: 1", path, sizeof(path));
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    snprintf(want, sizeof(want),
             "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: the token in %s holds a CR or LF (not a "
             "legal header value)",
             path);
    new_fails(fx, IG_ERR_CONFIG, want);
    write_file(fx, "auth", "tok\n", path, sizeof(path));
    new_fails(fx, IG_ERR_CONFIG, want);
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\nb", 1);
    new_fails(fx, IG_ERR_CONFIG,
              "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a CR or LF or is longer than 16384 bytes");
    assert_int_equal(fx->fake.requests, 0);
}

static void test_container_token_rotates(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128];

    /* a refresh re-reads the token file; a token gone bad fails that fetch only */
    fx->fake.mode = FAKE_CONT_OK;
    fx->fake.lifetime_s = 3;
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "localhost", "/c");
    write_file(fx, "auth", "first", path, sizeof(path));
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_string_equal(fx->fake.auth, "first");
    write_file(fx, "auth", "second", path, sizeof(path));
    for (int t = 0; t < 8000 && fx->fake.requests < 2; t += 10)
        pump(fx, 10);
    assert_int_equal(fx->fake.requests, 2);
    assert_string_equal(fx->fake.auth, "second");
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "ASIACONT2");
    ig_aws_creds_free(p);
}

static void test_container_hosts(void **state)
{
    struct fixture *fx = *state;
    static const char *const refused[] = {
        "http://10.1.2.3/creds",  "http://example.com:80/c",        "http://[fd00:ec2::24]/c",
        "http://169.254.170.3/c", "http://127.0.0.1.example.com/c", "http://[::2]/"};
    static const char *const allowed[] = {"http://127.0.0.1:1/c",
                                          "http://127.9.9.9:1/",
                                          "http://localhost:1/",
                                          "http://LOCALHOST:1/",
                                          "http://[::1]:1/",
                                          "http://169.254.170.2/v2/credentials/x",
                                          "http://169.254.170.23/v1/credentials",
                                          "http://[fd00:ec2::23]/v1/credentials",
                                          "https://example.com/creds"};
    char want[512];

    for (size_t i = 0; i < IG_ARRAY_SIZE(refused); i++) {
        char host[64];
        const char *h = refused[i] + 7;
        size_t n = strcspn(h, "/");

        snprintf(host, sizeof(host), "%.*s", (int)n, h);
        if (host[0] != '[' && strchr(host, ':') != NULL)
            *strchr(host, ':') = '\0';
        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i], 1);
        snprintf(want, sizeof(want),
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http to host %s refused: only a "
                 "loopback host (127.0.0.0/8, ::1, localhost) or 169.254.170.2, 169.254.170.23, "
                 "fd00:ec2::23 may be reached without https",
                 host);
        new_fails(fx, IG_ERR_CONFIG, want);
    }
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/c", 1);
    new_fails(fx, IG_ERR_CONFIG,
              "AWS_CONTAINER_CREDENTIALS_FULL_URI: scheme ftp is neither http nor https");
    for (size_t i = 0; i < IG_ARRAY_SIZE(allowed); i++) {
        struct ig_aws_creds_provider *p = NULL;

        setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i], 1);
        p = new_ok(fx, NULL);
        ig_aws_creds_free(p); /* before the loop runs: nothing is sent */
    }
    /* the relative URI (ECS) wins over the full one, and must be a path */
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/6d3c", 1);
    {
        struct ig_aws_creds_provider *p = new_ok(fx, NULL);

        assert_string_equal(ig_aws_creds_source(p), "container");
        ig_aws_creds_free(p);
    }
    setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "@evil.example/x", 1);
    new_fails(fx, IG_ERR_CONFIG, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path ('/...')");
}

/* ------------------------------------------------------------ refresh */

static void test_refresh_before_expiry(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128], first_key[32] = "", last_key[32] = "";
    time_t first_exp = 0;
    int switches = 0;
    int64_t switched_at = 0, end;

    fx->fake.lifetime_s = 3;
    write_file(fx, "token", "token-one", path, sizeof(path));
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "");
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_non_null(strstr(fx->fake.body, "&WebIdentityToken=token-one"));
    write_file(fx, "token", "token-two", path, sizeof(path)); /* EKS rotates it */
    end = wall_ms() + 5500;
    while (wall_ms() < end) {
        int64_t now = wall_ms();

        if (ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)) != 0)
            fail_msg("get failed at +%lld ms: %s", (long long)(end - now), fx->err);
        /* never expired ones */
        assert_true((int64_t)c->expiration * 1000 > now);
        if (first_key[0] == '\0') {
            snprintf(first_key, sizeof(first_key), "%s", c->access_key);
            first_exp = c->expiration;
        }
        if (strcmp(last_key, c->access_key) != 0) {
            if (last_key[0] != '\0' && switched_at == 0)
                switched_at = now;
            switches++;
            snprintf(last_key, sizeof(last_key), "%s", c->access_key);
        }
        pump(fx, 10);
    }
    assert_string_equal(first_key, "ASIASTS1");
    /* a new set came before the first one expired, and again after */
    assert_true(switched_at != 0 && switched_at < (int64_t)first_exp * 1000);
    assert_true(switches >= 3);
    print_message("refresh: the second set came %lld ms before the first expired; %d sets in "
                  "5.5 s of lifetimes of about 3 s\n",
                  (long long)((int64_t)first_exp * 1000 - switched_at), switches);
    assert_int_equal(fx->fake.requests, (int)ig_aws_creds_fetches(p));
    assert_non_null(strstr(fx->fake.body, "&WebIdentityToken=token-two"));
    ig_aws_creds_free(p);
}

static void test_refresh_fails(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char want[512], exp[32];
    time_t first_exp;
    int rc;

    fx->fake.mode = FAKE_CONT_OK;
    fx->fake.lifetime_s = 3;
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/c");
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    first_exp = c->expiration;
    fx->fake.mode = FAKE_CONT_500;
    /* the old set serves every call until the second it expires */
    for (;;) {
        int64_t before = wall_ms();

        rc = ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err));
        if (rc != 0)
            break;
        assert_string_equal(c->access_key, "ASIACONT1");
        assert_true((int64_t)c->expiration * 1000 > before);
        pump(fx, 10);
    }
    assert_true(wall_ms() >= (int64_t)first_exp * 1000);
    assert_true(wall_ms() < (int64_t)first_exp * 1000 + 500);
    assert_true(ig_aws_creds_fetches(p) >= 2); /* the refresh and at least one retry */
    assert_int_equal(rc, IG_ERR_IO);
    iso(first_exp, exp, sizeof(exp));
    snprintf(want, sizeof(want),
             "AWS credentials from container expired at %s; their refresh failed (the gateway's "
             "log says why)",
             exp);
    assert_string_equal(fx->err, want);
    snprintf(want, sizeof(want),
             "container credentials from http://127.0.0.1:%d: HTTP 500 Boom: agent down",
             fx->fake.port);
    assert_string_equal(ig_aws_creds_last_error(p), want);
    /* the retries go on: the endpoint back, the credentials back */
    fx->fake.mode = FAKE_CONT_OK;
    for (int t = 0; t < 9000 && ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)) != 0; t += 10)
        pump(fx, 10);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    ig_aws_creds_free(p);
}

/* A FIFO where a token or credentials file should be: refused, never read.
 * Before, open() waited for a writer: start-up hung on it, and a token
 * file turned into a FIFO held the event loop at the next refresh. The
 * alarm turns a hang into a failure. */
static void on_alarm(int sig)
{
    static const char msg[] = "test_fifo_files: blocked on a FIFO (open or read)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(2);
    _exit(1);
}

/* A credentials endpoint that hands out lives of under a second: before,
 * each refresh came at half the life left, so the fetches followed each
 * other faster and faster up to the second's end (about 10 a second);
 * now at most one a second. */
static void test_short_lives(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    int64_t end;

    fx->fake.mode = FAKE_CONT_OK;
    fx->fake.lifetime_s = 1; /* Expiration: the next whole second, 0 to 1 s away */
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/creds");
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    end = wall_ms() + 3000;
    while (wall_ms() < end)
        pump(fx, 10);
    print_message("short lives: %u fetches in 3 s\n", ig_aws_creds_fetches(p));
    assert_true(ig_aws_creds_fetches(p) >= 3);
    assert_true(ig_aws_creds_fetches(p) <= 4);
    ig_aws_creds_free(p);
}

static void test_fifo_files(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char path[128], want[512];
    int64_t end;

    signal(SIGALRM, on_alarm);
    alarm(8);
    /* the shared credentials file */
    snprintf(path, sizeof(path), "%s/credentials", fx->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    snprintf(want, sizeof(want), "%s: not a regular file", path);
    new_fails(fx, IG_ERR_CONFIG, want);
    unlink(path);
    /* the web identity token at creation */
    snprintf(path, sizeof(path), "%s/fifo-token", fx->dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", path, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r", 1);
    set_port_env(fx, "AWS_ENDPOINT_URL_STS", "127.0.0.1", "");
    snprintf(want, sizeof(want), "AWS_WEB_IDENTITY_TOKEN_FILE: %s: not a regular file", path);
    new_fails(fx, IG_ERR_CONFIG, want);
    unlink(path);
    /* ... and at a refresh: the loop goes on, the old set serves */
    fx->fake.lifetime_s = 4; /* 3 to 4 s left: refreshed 1.5 to 2 s in */
    write_file(fx, "fifo-token", "jwt", path, sizeof(path));
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    end = wall_ms() + 2200;
    while (wall_ms() < end)
        pump(fx, 10);
    assert_int_equal(fx->fake.requests, 1); /* the refresh did not start: no token */
    assert_true(ig_aws_creds_fetches(p) == 1);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), 0);
    assert_string_equal(c->access_key, "ASIASTS1");
    /* a file again: the retry (1 s after the failed start) fetches */
    unlink(path);
    write_file(fx, "fifo-token", "jwt", path, sizeof(path));
    for (int t = 0; t < 3000 && fx->fake.requests < 2; t += 10)
        pump(fx, 10);
    assert_int_equal(fx->fake.requests, 2);
    ig_aws_creds_free(p);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
}

/* ------------------------------------------------------------ caps */

static void fetch_fails(struct fixture *fx, enum fake_mode mode, unsigned timeout_ms, int want_rc,
                        const char *tail)
{
    struct ig_aws_creds_conf conf = {"us-east-1", NULL, timeout_ms, NULL};
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char want[512];
    int64_t t0 = wall_ms();

    fx->fake.mode = mode;
    fx->ready = 0;
    p = new_ok(fx, &conf);
    wait_ready(fx, 4000);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), want_rc);
    assert_string_equal(fx->err, "AWS credentials from container: their fetch failed (the "
                                 "gateway's log says why)");
    snprintf(want, sizeof(want), "container credentials from http://127.0.0.1:%d: %s",
             fx->fake.port, tail);
    assert_string_equal(ig_aws_creds_last_error(p), want);
    assert_true(wall_ms() - t0 < 3000);
    ig_aws_creds_free(p);
}

static void test_caps(void **state)
{
    struct fixture *fx = *state;

    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/c");
    fetch_fails(fx, FAKE_HUGE, 0, IG_ERR_TOOBIG, "answer larger than 65536 bytes");
    fetch_fails(fx, FAKE_HUGE_CHUNKED, 0, IG_ERR_TOOBIG, "answer larger than 65536 bytes");
    fetch_fails(fx, FAKE_HANG, 300, IG_ERR_TIMEOUT, "no answer within 300 ms");
    fetch_fails(fx, FAKE_CONT_LONG, 0, IG_ERR_INVALID,
                "SecretAccessKey missing, empty, too long or not printable ASCII");
    fetch_fails(fx, FAKE_CONT_NOTJSON, 0, IG_ERR_INVALID, "the answer is not a JSON object");
    fetch_fails(fx, FAKE_CONT_CTRL, 0, IG_ERR_INVALID,
                "session token empty, too long or not printable ASCII");
}

static void test_bad_answers(void **state)
{
    struct fixture *fx = *state;
    struct ig_aws_creds_provider *p;
    const struct ig_aws_creds *c = NULL;
    char want[256];

    /* an answer already expired is refused, not served */
    set_port_env(fx, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "127.0.0.1", "/c");
    fx->fake.mode = FAKE_CONT_OK;
    fx->fake.lifetime_s = -10;
    p = new_ok(fx, NULL);
    wait_ready(fx, 3000);
    assert_int_equal(ig_aws_creds_get(p, &c, fx->err, sizeof(fx->err)), IG_ERR_INVALID);
    snprintf(want, sizeof(want),
             "container credentials from http://127.0.0.1:%d: credentials already expired at ",
             fx->fake.port);
    assert_memory_equal(ig_aws_creds_last_error(p), want, strlen(want));
    ig_aws_creds_free(p);
}

/* The China regions' endpoints are under amazonaws.com.cn. */
static void test_dns_suffix(void **state)
{
    (void)state;
    assert_string_equal(ig_aws_dns_suffix("us-east-1"), "amazonaws.com");
    assert_string_equal(ig_aws_dns_suffix("us-gov-west-1"), "amazonaws.com");
    assert_string_equal(ig_aws_dns_suffix("cn-north-1"), "amazonaws.com.cn");
    assert_string_equal(ig_aws_dns_suffix("cn-northwest-1"), "amazonaws.com.cn");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity_setup_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sts_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiration_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_token_crlf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_token_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_before_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_lives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
        cmocka_unit_test(test_dns_suffix),
    };

    ig_log_min_level = IG_LOG_ERROR; /* the warn lines are the errors the tests check */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
