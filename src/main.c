/*
 * main.c - wire the modules: load the configuration, start the gateway, run
 * the loop, drain on SIGTERM/SIGINT.
 *
 * Exit status: 0 after a clean drain (or --check-config / --help), 1 when the
 * gateway cannot start or the drain timed out, 2 for a configuration error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "infergate/common.h"
#include "infergate/config.h"
#include "infergate/gateway.h"

extern char **environ;

/* libevent's own warnings and errors, as JSON lines like every other. */
static void on_event_log(int severity, const char *msg)
{
    int level = severity == EVENT_LOG_DEBUG  ? IG_LOG_DEBUG
                : severity == EVENT_LOG_MSG  ? IG_LOG_INFO
                : severity == EVENT_LOG_WARN ? IG_LOG_WARN
                                             : IG_LOG_ERROR;

    ig_log(level, "libevent: %s", msg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    ig_log(IG_LOG_INFO, "signal %d: draining", (int)sig);
    ig_gateway_drain(arg);
}

int main(int argc, char **argv)
{
    struct ig_config cfg;
    struct ig_gateway *gw = NULL;
    struct event_base *base;
    struct event *sigterm, *sigint;
    char err[512];
    int status = 1;

    if (ig_config_load(&cfg, argc, argv, environ, err, sizeof(err)) < 0) {
        fprintf(stderr, "infergate: %s\n", err);
        return 2;
    }
    if (cfg.help) {
        ig_config_usage(stdout);
        ig_config_clear(&cfg);
        return 0;
    }
    if (cfg.check_only) {
        printf("infergate: configuration %s OK (%zu endpoints)\n",
               cfg.config_path ? cfg.config_path : "(defaults)", cfg.nendpoints);
        ig_config_clear(&cfg);
        return 0;
    }
    ig_log_min_level = cfg.log_level;
    ig_log_access_on = cfg.access_log;
    event_set_log_callback(on_event_log);
    signal(SIGPIPE, SIG_IGN);
    if (ig_log_start() < 0)
        ig_log(IG_LOG_WARN, "cannot start the log writer thread: logging synchronously");

    base = event_base_new();
    if (base == NULL) {
        ig_log(IG_LOG_ERROR, "cannot create the event loop");
        goto out_cfg;
    }
    if (ig_gateway_new(base, &cfg, &gw, err, sizeof(err)) < 0) {
        ig_log(IG_LOG_ERROR, "cannot start: %s", err);
        goto out_base;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, gw);
    sigint = evsignal_new(base, SIGINT, on_signal, gw);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    ig_log(IG_LOG_INFO, "listening on %s (port %u), %zu endpoints", cfg.listen,
           (unsigned)ig_gateway_port(gw), cfg.nendpoints);

    event_base_dispatch(base);
    status = ig_gateway_drained(gw) ? 0 : 1;

    event_free(sigterm);
    event_free(sigint);
    ig_gateway_free(gw);
out_base:
    event_base_free(base);
out_cfg:
    ig_log_stop();
    ig_config_clear(&cfg);
    return status;
}
