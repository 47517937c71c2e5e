/*
 * aws_creds.h - the AWS credentials chain the sagemaker upstream signs with.
 *
 * Sources, in the AWS SDKs' order; the first one configured wins and an
 * info line names it:
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 *      (+ AWS_SESSION_TOKEN, else AWS_SECURITY_TOKEN); static;
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *      (+ AWS_ROLE_SESSION_NAME) through STS AssumeRoleWithWebIdentity;
 *      the token file is read again at each refresh; AWS_ROLE_ARN alone
 *      is no source (as in botocore, which puts this before the files);
 *   3. shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config), profile AWS_PROFILE ("default");
 *      the credentials file wins over the config file; the token is
 *      aws_session_token, else aws_security_token (botocore); static;
 *   4. container: AWS_CONTAINER_CREDENTIALS_FULL_URI (or _RELATIVE_URI on
 *      169.254.170.2) with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE).
 *
 * Sources 2 and 4 give temporary credentials, fetched through libcurl on
 * the caller's event loop (nothing blocks) and refreshed before they
 * expire: the refresh starts when the lifetime left is below
 * min(300 s, half the lifetime they had when received); the credentials
 * held stay in use while it runs; a failed refresh is retried with backoff
 * (1 s doubling to 30 s). The refresh timer runs on the monotonic clock and
 * expiries are wall-clock times: a get() that finds the refresh due by the
 * wall clock (a VM resumed, the clock stepped forward) starts it at once.
 * Answers are capped (64 KiB, field lengths) and so is each fetch's time;
 * files are read only when regular (never a FIFO). Error texts never hold
 * a secret.
 *
 * A provider lives on one loop thread: every call, and every callback, on
 * the thread that runs <base>.
 */
#ifndef INFERGATE_AWS_CREDS_H
#define INFERGATE_AWS_CREDS_H

#include <stddef.h>
#include <time.h>

struct event_base;
struct ig_curl_loop;
struct ig_aws_creds_provider;

struct ig_aws_creds {                                    /* owned by the provider */
    const char *access_key, *secret_key, *session_token; /* token NULL when none */
    time_t expiration;                                   /* 0: never */
};

struct ig_aws_creds_conf {
    const char *region;       /* for the STS endpoint */
    const char *sts_endpoint; /* NULL: AWS_ENDPOINT_URL_STS, else the regional one */
    /* Optional (0 / NULL: the default). */
    unsigned fetch_timeout_ms; /* one STS or container fetch, connect included; 5000 */
    struct ig_curl_loop *curl; /* fetch on this loop (it outlives the provider); NULL: own */
};

/* The first credentials came, or the first fetch failed (ig_aws_creds_get
 * says which); or a refresh that ig_aws_creds_get() told a caller to wait
 * for ended. Called from the loop, only for the fetched sources; the
 * callback may free the provider. */
typedef void ig_aws_creds_ready_cb(void *arg);

/* Caps on what a source may hand us. */
#define IG_AWS_CREDS_MAX_ANSWER (64 * 1024) /* an STS or container answer body */
#define IG_AWS_CREDS_MAX_FILE (1024 * 1024) /* a credentials, config or token file */
#define IG_AWS_CREDS_MAX_KEY_ID 128         /* AccessKeyId */
#define IG_AWS_CREDS_MAX_SECRET 256         /* SecretAccessKey */
#define IG_AWS_CREDS_MAX_TOKEN 16384        /* SessionToken, web identity and auth tokens */

/*
 * Find the source and, for a fetched one, start its first fetch (ready()
 * tells when it ends). 0 and *out, or IG_ERR_NOTFOUND (no source
 * configured, AWS_PROFILE names no profile), IG_ERR_CONFIG (a source set
 * up wrong: half a key pair, a FULL_URI to a host plain http may not
 * reach, no region for STS, an unreadable token file), IG_ERR_NOMEM,
 * IG_ERR_IO (libcurl would not start), with <err> saying why.
 */
int ig_aws_creds_new(struct event_base *base, const struct ig_aws_creds_conf *conf,
                     ig_aws_creds_ready_cb *ready, void *arg, struct ig_aws_creds_provider **out,
                     char *err, size_t errlen);

/*
 * The credentials to sign with now: 0 and *out valid until the caller
 * returns to the loop (a refresh replaces them only from the loop);
 * never expired ones. IG_ERR_AGAIN while the first fetch runs, or while
 * the refresh of expired credentials runs (the wall clock jumped past
 * both): ready() is called when it ends. Another negative IG_ERR_* with
 * <err> saying what
 * failed (the first fetch, or the refresh of expired credentials), in words
 * fit for a client: the fetch's own error stays in the log and
 * ig_aws_creds_last_error(). Never blocks.
 */
int ig_aws_creds_get(struct ig_aws_creds_provider *p, const struct ig_aws_creds **out, char *err,
                     size_t errlen);

/* The last fetch's error, for the operator ("" after a success): it may
 * name the STS or container endpoint, quote its answer, or a file's path. */
const char *ig_aws_creds_last_error(const struct ig_aws_creds_provider *p);

/* "environment", "profile NAME", "web identity", "container". */
const char *ig_aws_creds_source(const struct ig_aws_creds_provider *p);

/* Fetches completed (successful or not) since creation: for tests and metrics. */
unsigned ig_aws_creds_fetches(const struct ig_aws_creds_provider *p);

/* The domain of AWS's regional endpoints in <region>: "amazonaws.com.cn"
 * for the China regions (cn-*), else "amazonaws.com". */
const char *ig_aws_dns_suffix(const char *region);

/* Cancel a running fetch, wipe the secrets, free. NULL is fine. */
void ig_aws_creds_free(struct ig_aws_creds_provider *p);

#endif /* INFERGATE_AWS_CREDS_H */
