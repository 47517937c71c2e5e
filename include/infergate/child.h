/*
 * child.h - supervise bring-your-own model servers (PrimaryContainer.Image
 * "file:///path/to/executable") as child processes of the gateway.
 *
 * The program is started as "<exe> serve", as SageMaker starts a container
 * (sagemaker-protocols.md 4.1), in its own process group, with stdin on
 * /dev/null, stdout and stderr appended to a log file, the model directory
 * as its working directory and a loopback port in SAGEMAKER_BIND_TO_PORT.
 * If it exits while not stopped it is started again on the same port, after
 * 200 ms doubling to 10 s (reset once a run lasted 60 s).
 *
 * Everything here runs on the loop thread of <base> and never blocks it,
 * except ig_child_reap_all_blocking (shutdown only). Reaping is by pid only
 * (waitpid(pid, WNOHANG), never waitpid(-1)), on a SIGCHLD signal event of
 * <base> plus a 1 s timer, so other modules may have children of their own
 * and SIGCHLD events of their own on the same base.
 */
#ifndef INFERGATE_CHILD_H
#define INFERGATE_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct event_base;
struct ig_child;

/* Caps: children at once (running or stopping), extra environment. */
#define IG_CHILD_MAX 64
#define IG_CHILD_ENV_MAX 100
#define IG_CHILD_ENV_ENTRY_MAX 10240
/* Restart backoff: first delay, cap, and the run time that resets it. */
#define IG_CHILD_BACKOFF_MIN_MS 200
#define IG_CHILD_BACKOFF_MAX_MS 10000
#define IG_CHILD_BACKOFF_RESET_MS 60000
/* Longest log line quoted by ig_child_last_exit. */
#define IG_CHILD_LOG_LINE_MAX 200

struct ig_child_conf {
    const char *exe;        /* absolute path of the program (file:// already stripped) */
    const char *const *env; /* extra "KEY=VALUE" entries (the model's Environment),
                             * NULL-terminated, or NULL */
    const char *model_dir;  /* the unpacked model: SM_MODEL_DIR and the child's cwd */
    const char *log_path;   /* the child's stdout and stderr are appended here
                             * (O_APPEND, created 0600) */
    const char *name;       /* for logs: "endpoint/variant" */
};

/*
 * Start "<exe> serve". A free loopback port is picked and passed as
 * SAGEMAKER_BIND_TO_PORT; SM_MODEL_DIR=model_dir; SAGEMAKER_SAFE_PORT_RANGE
 * is never set (dropped from <env> too: no range is reserved); the rest of
 * <env> is passed as given (SAGEMAKER_PROGRAM included, when the model sets
 * it). From the gateway's own environment only PATH, HOME, LANG, LC_ALL,
 * TZ, TMPDIR, USER and LOGNAME are passed (PATH defaults to the usual
 * system one), so the gateway's credentials never reach the model.
 *
 * Returns 0 with *out, or with a message in <err>:
 *   IG_ERR_INVALID  exe not an absolute path to an executable regular file
 *                   (the message says which), bad or over-cap env entries
 *                   (> IG_CHILD_ENV_MAX, > IG_CHILD_ENV_ENTRY_MAX bytes, no
 *                   '='), missing model_dir/log_path, <base> not the base the
 *                   running children use;
 *   IG_ERR_FULL     IG_CHILD_MAX children running or stopping already;
 *   IG_ERR_IO       the log file, a port or fork failed.
 * A program that starts but then fails (exec error, crash, bad port) is
 * seen as exits: ig_child_exits / ig_child_last_exit.
 */
int ig_child_start(struct event_base *base, const struct ig_child_conf *conf,
                   struct ig_child **out, char *err, size_t errlen);
uint16_t ig_child_port(const struct ig_child *c);
/* The current process (its process group has the same id); 0 while it is
 * not running (between an exit and the restart). */
pid_t ig_child_pid(const struct ig_child *c);
/* 1 while the process runs (started and not yet reaped). */
int ig_child_running(const struct ig_child *c);
/* Number of times it exited so far (an unexpected exit or a failed
 * restart); and a sentence on the last one for a FailureReason:
 * "exited with status 3" / "killed by signal 9", then "; log: <the last
 * line it wrote to its log>" when there is one (the line capped at
 * IG_CHILD_LOG_LINE_MAX bytes). "" before the first exit. */
uint32_t ig_child_exits(const struct ig_child *c);
void ig_child_last_exit(const struct ig_child *c, char *buf, size_t len);
/*
 * Stop and free: SIGTERM to its process group, SIGKILL after <grace_ms>
 * (0: SIGKILL at once). The handle is invalid once this returns; the
 * process is reaped later on the loop (or by ig_child_reap_all_blocking).
 * NULL is a no-op.
 */
void ig_child_stop(struct ig_child *c, uint64_t grace_ms);
/* Processes named <name> stopped but not yet reaped: a deployment waits
 * for none before starting the next one of that name. */
unsigned ig_child_stopping(const char *name);
/*
 * Shutdown, off the loop (it blocks, polling every 10 ms): SIGTERM to every
 * child's process group (stopped or not), wait up to <timeout_ms> for them,
 * SIGKILL the rest and reap them (waiting at most 2 s more: a process stuck
 * in uninterruptible sleep is left to init, with an error logged); then
 * free every libevent event of this module, so the event_base can be
 * freed. Handles not yet stopped stay valid but inert (not running, never
 * restarted): ig_child_stop frees them. ig_child_start may be called again
 * afterwards, on any base.
 */
void ig_child_reap_all_blocking(uint64_t timeout_ms);

#endif /* INFERGATE_CHILD_H */
