"""Review 2 of the canary / breaker changes (9fc6344..450bfc6).

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_review2.py [filter]
"""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402
import test_upstream_adversary as adv  # noqa: E402
from test_upstream_adversary import ep_conf, post, readyz, section, stop_clean, together, wait_ready  # noqa: E402


class H3(adv.Hostile):
    def answer(self, h, body):
        m = self.mode
        lines = [l for l in body.split("\n") if l != ""]
        if m == "slowp500":  # every call takes 1.5 s; rows 666 raise
            time.sleep(1.5)
            if any(l.startswith("666") for l in lines):
                h.send(500, "row 666 crashes the model")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "hang5":
            time.sleep(5.0)
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "down429":  # down (503) but the canary row 1,2 gets 429
            if "1,2" in lines:
                h.send(429, "slow down")
                return
            h.send(503, "down")
        else:
            super().answer(h, body)


@contextlib.contextmanager
def gateway(mode, what, exec_max=None, **kw):
    hs = H3()
    if exec_max is not None:
        hs.exec_sleep = 0
        hs.exec_max = exec_max
    gw = Gateway({"m": ep_conf(hs.url, **kw)})
    try:
        wait_ready(gw)
        time.sleep(0.3)
        hs.reset(mode)
        yield hs, gw
    finally:
        stop_clean(gw, what)
        hs.close()


def opens(gw):
    return gw.metric('infergate_upstream_breaker_opens_total{endpoint="m"}')


def canaries(gw):
    return gw.metric('infergate_upstream_canaries_total{endpoint="m"}')


def test_slow_model_canary_timeout():
    section("A. a model up but slower now than when its canary was kept: the canary's "
            "4x+1 s timeout opens the breaker for everyone")
    with gateway("echo", "slow model", breaker_failures=3, retry_max=0,
                 upstream_timeout_ms=5000, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row fast: the canary")
        hs.reset("slowp500")
        time.sleep(1.1)
        check_eq(post(gw, "m", "3,1\n")[::2], (200, "p3,1\n"), "the model answers in 1.5 s now")
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "one client's 3 raised-on requests")
        time.sleep(2.0)
        st, _, body = post(gw, "m", "3,3\n")
        print("   canaries %s opens %s" % (canaries(gw), opens(gw)))
        check_eq((st, body[:80]), (200, "p3,3\n"),
                 "a model that answers every good row in 1.5 s (timeout 5 s) is up: not locked "
                 "out (got %d %s)" % (st, body[:120]))
        check_eq(opens(gw), 0, "the breaker did not open")


def test_canary_behind_queue():
    section("B. a model that hangs, calls queued past max_calls (MaxConcurrentTransforms 1): "
            "the canary waits at the back of the queue")
    with gateway("echo", "canary behind queue", exec_max=1, breaker_failures=2, retry_max=0,
                 max_batch_rows=1, max_inflight=8, upstream_timeout_ms=1000,
                 breaker_open_ms=20000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("hang5")
        t0 = time.time()
        opened = [None]
        import threading

        def watch():
            while time.time() - t0 < 15:
                if opens(gw):
                    opened[0] = time.time() - t0
                    return
                time.sleep(0.05)
        w = threading.Thread(target=watch)
        w.start()
        res = together(lambda k: post(gw, "m", k + "\n")[0], ["4,%d" % i for i in range(8)])
        w.join()
        print("   statuses %s; breaker opened after %s s; canaries %s; calls %d" %
              (sorted(res.values()), opened[0], canaries(gw), hs.ncalls()))
        check(opened[0] is not None and opened[0] < 4.5,
              "the breaker opens about one canary call (~1 s) after the 2nd timeout (~2 s), not "
              "after every queued call timed out (opened after %s s)" % opened[0])


def test_canary_no_verdict():
    section("C. the canary answered 429 (no verdict) under a model that fails everything else")
    with gateway("echo", "canary 429", breaker_failures=3, retry_max=0,
                 upstream_timeout_ms=2000, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("down429")
        res = [post(gw, "m", "5,%d\n" % i)[0] for i in range(20)]
        print("   statuses %s; canaries %s opens %s" % (res[-5:], canaries(gw), opens(gw)))
        check(opens(gw) >= 1, "20 failed calls in a row, the breaker opens (opens %s, canaries %s)"
              % (opens(gw), canaries(gw)))


def test_sigterm_canary_queued():
    section("D. SIGTERM while the canary is queued behind a running call")
    with gateway("echo", "canary queued at SIGTERM", exec_max=1, breaker_failures=1, retry_max=0,
                 max_batch_rows=1, upstream_timeout_ms=3000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("hang5")
        import threading
        ts = [threading.Thread(target=lambda i=i: post(gw, "m", "4,%d\n" % i)) for i in range(3)]
        for t in ts:
            t.start()
        time.sleep(3.4)  # the first times out: canary queued behind the second
        print("   canaries %s" % canaries(gw))
    for t in ts:
        t.join()


def main():
    only = sys.argv[1:]
    for t in (test_slow_model_canary_timeout, test_canary_behind_queue, test_canary_no_verdict,
              test_sigterm_canary_queued):
        if only and not any(o in t.__name__ for o in only):
            continue
        t()
    finish()


if __name__ == "__main__":
    main()
