/*
 * store.h - the control plane's job store: a Redis client on the gateway's
 * libevent loop (hiredis 0.14 async API), with one connection for commands
 * and one SUBSCRIBEd to an event channel, reconnecting with capped
 * exponential backoff, optionally supervising an embedded redis-server.
 *
 * Everything runs on the loop thread of <base>; no call blocks except
 * ig_store_new (embedded mode: up to 5 s waiting for the child to answer)
 * and ig_store_free (embedded mode: up to 5 s waiting for the child to
 * exit).
 *
 * Embedded mode (url ""): data_dir is created (mode 0700) and redis-server
 * is started as a child (unix socket DATA_DIR/redis.sock, AOF everysec,
 * log DATA_DIR/redis.log, pid in DATA_DIR/redis.pid, own process group,
 * PR_SET_PDEATHSIG SIGTERM). It is polled with waitpid(pid, WNOHANG) every
 * 200 ms (no SIGCHLD handler, no waitpid(-1): other modules' children are
 * left alone) and restarted when it dies (backoff 100 ms doubling to 5 s).
 * A leftover from an earlier run:
 *   - redis.pid names a live redis-server: it is given 2 s to exit (a
 *     crashed gateway's child gets SIGTERM from PDEATHSIG); still alive,
 *     ig_store_new refuses (IG_ERR_IO, "data_dir ... in use by
 *     redis-server pid N"): it may be another gateway's, which we must not
 *     share or kill;
 *   - redis.sock answers PING without a live pid: refused the same way;
 *   - redis.sock does not answer: a stale file, removed.
 * ig_store_new returns once the child answers, but the store itself comes
 * up (on_state(1)) only once the loop has run the async connects.
 *
 * redis://HOST: a name (not an IP literal) is resolved with evdns on the
 * loop (hiredis 0.14 would call a blocking getaddrinfo), IPv4 first; the
 * 2 s timeout covers lookup, connect and the first answer. No credentials,
 * no TLS. The command connection is ready once DBSIZE answers (after SELECT
 * when a DB is given), so a server still loading its AOF (-LOADING) counts
 * as down. on_event may also run while the store is down (subscriber
 * ready, command connection not): the resync on up=1 covers it either way.
 *
 * Commands waiting 5 s with no reply at all on the command connection drop
 * it (their callbacks get NULL; the store is down until a new connection
 * answers its probe): a stopped or hung server cannot hold them forever.
 *
 * Caps: IG_STORE_PENDING_MAX commands waiting for replies; a reply (all its
 * elements together, about 48 bytes counted per array element) or the
 * unparsed bytes of one reply larger than IG_STORE_REPLY_MAX drop the
 * connection (hiredis 0.14 has no reply cap of its own: the store wraps its
 * reply-object functions and checks the reader's buffer before each read).
 * The reader's maxbuf (an idle buffer above it is freed) is 64 KiB.
 */
#ifndef INFERGATE_STORE_H
#define INFERGATE_STORE_H

#include <stddef.h>
#include <sys/types.h>

struct event_base;
struct redisReply;
struct ig_store;

#define IG_STORE_PENDING_MAX 65536
#define IG_STORE_REPLY_MAX ((size_t)512 << 20)

/* One reply, on the loop thread. <reply> NULL: the command was lost (connection dropped
 * before the reply, or the store is being freed). The reply is freed after the callback. */
typedef void ig_store_reply_cb(struct ig_store *s, struct redisReply *reply, void *arg);
/* A message published on conf->channel (payload bytes, not NUL-terminated). */
typedef void ig_store_event_cb(struct ig_store *s, const char *msg, size_t len, void *arg);
/* The store became usable (up=1: command connection connected AND the subscription to
 * the channel confirmed, so no event published after this call can be missed) or
 * unusable (up=0: either connection dropped). Called on every transition, also the first
 * up. The consumer resyncs everything on up=1. */
typedef void ig_store_state_cb(struct ig_store *s, int up, void *arg);

struct ig_store_conf {
    const char *url;      /* "" = embedded; "redis://HOST[:PORT][/DB]", "unix:///PATH[?db=N]" */
    const char *data_dir; /* embedded: socket, AOF and log live here (created, mode 0700) */
    const char *channel;  /* pub/sub channel to subscribe to, e.g. "infergate:events" */
    ig_store_event_cb *on_event;
    ig_store_state_cb *on_state;
    void *arg;
    const char *redis_server; /* NULL = "redis-server" from PATH (tests may point elsewhere) */
};

/* The reply cap in force (IG_STORE_REPLY_MAX; tests lower it). */
extern size_t ig_store_reply_max;

/* Returns 0, IG_ERR_CONFIG (bad url, data_dir too long for a socket path,
 * no channel) or IG_ERR_IO (embedded redis-server failed to start: <err> holds
 * the tail of redis.log). The store starts down; on_state(1) follows from
 * the loop. */
int ig_store_new(struct event_base *base, const struct ig_store_conf *conf, struct ig_store **out,
                 char *err, size_t errlen);
int ig_store_up(const struct ig_store *s);
/* Send one command. Returns 0 (cb runs exactly once, later, never inside this call), or
 * IG_ERR_AGAIN when the store is not up (cb never runs), IG_ERR_FULL when
 * IG_STORE_PENDING_MAX commands already wait for replies. Arguments are copied. */
int ig_store_cmd(struct ig_store *s, ig_store_reply_cb *cb, void *arg, int argc,
                 const char *const *argv, const size_t *argvlen);
/* The same with a printf-like hiredis format (redisvAsyncCommand); IG_ERR_INVALID
 * when the format is bad. */
int ig_store_cmdf(struct ig_store *s, ig_store_reply_cb *cb, void *arg, const char *fmt, ...);
/* A sentence for /readyz and logs: "redis unix:/.../redis.sock up" /
 * "... down since 3.2 s: <why>" */
void ig_store_describe(const struct ig_store *s, char *buf, size_t len);
/* Commands waiting for replies. */
size_t ig_store_pending(const struct ig_store *s);
/* Embedded mode: the redis-server child's pid, 0 while none runs (or not
 * embedded). For tests (kill -9 it) and logs. */
pid_t ig_store_child_pid(const struct ig_store *s);
/* Stop: every pending callback runs with reply NULL from inside this call; the embedded
 * redis-server is stopped (SIGTERM, waitpid up to 5 s, then SIGKILL). May be called
 * from any store callback (the memory goes when that callback returns). */
void ig_store_free(struct ig_store *s);

#endif /* INFERGATE_STORE_H */
