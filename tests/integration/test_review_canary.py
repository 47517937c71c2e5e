"""An adversarial review of the breaker's canary and of suspect connections:
R1. a client whose raised-on requests hold the breaker count at
    breaker_failures - 1: another client's passing 503 (answered on its
    retry) must not open the breaker then;
R2. a canary kept from long ago (a model updated since raises on it): a
    model that answers rows well now is up, the others are not locked out;
R3. SIGTERM while the canary call is out: the drain does not wait for it,
    exit 0, nothing leaked (under ASan too);
R4. one client's bad row on an HTTP/2 connection a proxy shares between
    many clients: the others' requests on it are still batched;
R5. one client's rows that the model takes longer than upstream_timeout_ms
    on (each attempt a failure): the breaker does not open while the
    canary is answered well; a model that hangs on every row opens it;
R6. a model that hangs: the canary's call times out after 4 times the time
    its row took once plus 1 s, not a whole upstream_timeout_ms more;
R7. a model up but slower now than when the canary was kept: the canary's
    timeout is also twice the model's longest answer lately plus 1 s;
R8. a model that hangs behind calls queued for a slot: the canary goes
    ahead of them;
R9. a canary with no verdict (429) by a model that fails all else: one
    canary a streak, then the breaker opens;
R10. SIGTERM while the canary waits in the queue: exit 0, nothing leaked.

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_review_canary.py [filter]
"""

import contextlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402
import test_upstream_adversary as adv  # noqa: E402
from test_upstream_adversary import (ep_conf, hostile_gateway, post, readyz, section,  # noqa: E402
                                     stop_clean, together, wait_ready)


class Hostile2(adv.Hostile):
    """More modes: "blip": rows 666... raise (500), a row 9,9 is answered
    503 the first time it comes (a passing failure, answered on its retry),
    the others answered; "v2": the model was updated (its input changed):
    rows 7,... (the old schema) and 666... raise, the others answered;
    "slowcanary": rows 666... raise, a row 7,7 is answered after 3 s."""

    def __init__(self):
        super().__init__()
        self.blipped = set()

    def answer(self, h, body):
        m = self.mode
        lines = [l for l in body.split("\n") if l != ""]
        if m == "blip":
            if any(l.startswith("666") for l in lines):
                h.send(500, "row 666 crashes the model")
                return
            if "9,9" in lines and "9,9" not in self.blipped:
                self.blipped.add("9,9")
                h.send(503, "a passing failure")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "v2":
            if any(l.startswith("666") or l.startswith("7,") for l in lines):
                h.send(500, "the model raised")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "slow666":  # rows 666... take the model 1 s; the others answered at once
            if any(l.startswith("666") for l in lines):
                time.sleep(1.0)
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "hang5":  # every row takes the model 5 s
            time.sleep(5.0)
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "hang":  # every row takes the model 1 s
            time.sleep(1.0)
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "slowp500":  # every call takes 1.2 s; rows 666... raise
            time.sleep(1.2)
            if any(l.startswith("666") for l in lines):
                h.send(500, "row 666 crashes the model")
                return
            h.send(200, "".join("p" + l + "\n" for l in lines))
        elif m == "down429":  # down (503), but the canary row 1,2 is answered 429
            if "1,2" in lines:
                h.send(429, "slow down")
                return
            h.send(503, "down")
        elif m == "slowcanary":
            if any(l.startswith("666") for l in lines):
                h.send(500, "row 666 crashes the model")
                return
            if "7,7" in lines:
                time.sleep(3)
            h.send(200, "".join("p" + l + "\n" for l in lines))
        else:
            super().answer(h, body)


adv.Hostile = Hostile2  # hostile_gateway builds ours


def test_mixed_streak():
    section("R1. a client's raised-on requests hold the breaker count at breaker_failures - 1:"
            " another client's passing 503 does not open it")
    with hostile_gateway("blip", "mixed streak", breaker_failures=3, retry_max=1,
                         breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        # control: the passing 503 alone is absorbed by the retry
        st, _, body = post(gw, "m", "9,9\n")
        check_eq((st, body), (200, "p9,9\n"), "control: a passing 503 is retried and answered")
        hs.blipped.clear()
        # the attacker: breaker_failures - 1 requests its rows make the model raise on
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(2)]
        check_eq(res, [424, 424], "the attacker's two requests fail (424)")
        # the victim meets the same passing 503 as in the control
        st, _, body = post(gw, "m", "9,9\n")
        check_eq((st, body), (200, "p9,9\n"),
                 "after the attacker's 2 requests, the same passing 503 is still retried and "
                 "answered (got %d %s)" % (st, body[:160]))
        st, _, body = post(gw, "m", "3,3\n")
        check_eq((st, body), (200, "p3,3\n"),
                 "the others are not locked out by the breaker (got %d %s)" % (st, body[:160]))
        check_eq(gw.metric('infergate_upstream_breaker_opens_total{endpoint="m"}'), 0,
                 "the breaker did not open")


def test_stale_canary():
    section("R2. a model update that raises on an old canary: a newer row the model "
            "answered well speaks for it")
    with hostile_gateway("p500", "stale canary", breaker_failures=3, retry_max=0,
                         breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "7,7\n")[::2], (200, "p7,7\n"), "v1 answers 7,7: the canary")
        time.sleep(1.1)  # some time later (REMOTE_CANARY_FRESH_US in the fix: 1 s)
        hs.reset("v2")  # the model behind the endpoint was updated
        for i in range(3):
            check_eq(post(gw, "m", "1,%d\n" % i)[::2], (200, "p1,%d\n" % i),
                     "v2 answers the others' rows well")
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "the attacker's 3 requests: 424 each")
        time.sleep(0.3)  # the canary goes after the third one's answer
        st, _, body = post(gw, "m", "1,9\n")
        check_eq((st, body), (200, "p1,9\n"),
                 "a model that answered rows well a moment ago is up: the others are not "
                 "locked out (got %d %s; calls %r)" % (st, body[:120], hs.calls[-3:]))


def test_canary_at_sigterm():
    section("R3. SIGTERM (and the drain) while the canary call is out")
    with hostile_gateway("p500", "canary out at SIGTERM", breaker_failures=2, retry_max=0,
                         upstream_timeout_ms=10000) as (hs, gw):
        check_eq(post(gw, "m", "7,7\n")[::2], (200, "p7,7\n"), "the canary")
        hs.reset("slowcanary")
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(2)]
        check_eq(res, [424, 424], "two raised-on requests")
        time.sleep(0.3)
        check_eq(hs.calls[-1:], ["7,7\n"], "the canary is out (3 s)")
        t0 = time.time()
        # hostile_gateway's stop_clean: exit 0, no ASan report (leaks included)
    check(time.time() - t0 < 10, "the drain did not wait for the canary")


def test_suspect_shared_connection():
    section("R4. one client's bad row behind a proxy (an HTTP/2 connection shared by many "
            "clients): the others on it are still batched")
    with hostile_gateway("echo", "suspect shared", max_delay_us=200000) as (hs, gw):
        from iglib import H2Client
        hdrs = [("content-type", "text/csv"), ("accept", "text/csv")]

        def run(bodies):
            c = H2Client(gw.port)
            for b in bodies:
                if b is None:  # wait for the answers so far
                    end = time.time() + 20
                    while not set(c.data) <= c.ended and time.time() < end:
                        c.pump(0.1)
                    continue
                sid = c.open("/endpoints/m/invocations", hdrs)
                c.send_all(sid, b.encode())
            end = time.time() + 20
            while not set(c.data) <= c.ended and time.time() < end:
                c.pump(0.1)
            c.sock.close()

        n0 = hs.ncalls()
        run(["1,1\n"] * 40)
        clean = hs.ncalls() - n0
        n0 = hs.ncalls()
        run(["666,1\n", None] + ["1,1\n"] * 40)  # one client's bad row, then 40 others' on the same connection
        suspect = hs.ncalls() - n0
        print("   calls for 40 one-row requests on one h2 connection: %d clean, %d after one "
              "bad row on it" % (clean, suspect))
        check(suspect <= clean + 3,
              "the other clients' requests on the shared connection are still batched "
              "(%d calls, %d without the bad row)" % (suspect, clean))


def test_slow_rows():
    section("R5. one client's rows the model times out on do not open the breaker")
    with hostile_gateway("slow666", "slow rows", breaker_failures=3, retry_max=1,
                         upstream_timeout_ms=300, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "3 requests of rows the model times out on: 424 each")
        time.sleep(0.2)  # the canary's answer
        st, _, body = post(gw, "m", "3,3\n")
        check_eq((st, body), (200, "p3,3\n"),
                 "6 timeouts in a row, one client's: the others are not locked out "
                 "(got %d %s)" % (st, body[:160]))
        check_eq(gw.metric('infergate_upstream_breaker_opens_total{endpoint="m"}'), 0,
                 "the breaker did not open")
        hs.reset("hang")  # now the model hangs on everything: the canary times out too
        res = [post(gw, "m", "4,%d\n" % i)[0] for i in range(2)]
        check_eq(res, [424] * 2, "a model that hangs: 424 each")
        deadline = time.time() + 5
        while readyz(gw)[0] == 200 and time.time() < deadline:
            time.sleep(0.05)
        st, _, body = post(gw, "m", "5,5\n")
        check(st == 503 and "circuit breaker is open" in body,
              "a model that hangs on every row, the canary too: the breaker opens (got %d %s)"
              % (st, body[:160]))


def test_hang_canary_timeout():
    section("R6. a model that hangs: the canary's own timeout is short")
    with hostile_gateway("echo", "hang, canary timeout", breaker_failures=3, retry_max=0,
                         max_batch_rows=1,
                         upstream_timeout_ms=3000, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("hang5")
        t0 = time.time()
        res = together(lambda k: post(gw, "m", k + "\n")[0], ["4,1", "4,2", "4,3"])
        check_eq(sorted(res.values()), [424] * 3, "3 calls time out (3 s)")
        while readyz(gw)[0] == 200 and time.time() - t0 < 8:
            time.sleep(0.05)
        dt = time.time() - t0
        check(readyz(gw)[0] == 503 and dt < 5.5,
              "the breaker opens once the canary times out, about 1 s after the third "
              "timeout, not a whole upstream_timeout_ms (3 s) later (%.1f s)" % dt)


@contextlib.contextmanager
def gateway(mode, what, exec_max=None, **kw):
    hs = Hostile2()
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
    section("R7. a model up but slower now than when its canary was kept: not taken for down")
    with gateway("echo", "slow model", breaker_failures=3, retry_max=0,
                 upstream_timeout_ms=4000, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row fast: the canary")
        hs.reset("slowp500")
        check_eq(post(gw, "m", "3,1\n")[::2], (200, "p3,1\n"), "the model answers in 1.2 s now")
        res = [post(gw, "m", "666,%d\n" % i)[0] for i in range(3)]
        check_eq(res, [424] * 3, "one client's 3 raised-on requests")
        time.sleep(2.0)
        st, _, body = post(gw, "m", "3,3\n")
        print("   canaries %s opens %s" % (canaries(gw), opens(gw)))
        check_eq((st, body[:80]), (200, "p3,3\n"),
                 "a model that answers every good row in 1.2 s (timeout 4 s) is up: not locked "
                 "out (got %d %s)" % (st, body[:120]))
        check_eq(opens(gw), 0, "the breaker did not open")


def test_canary_behind_queue():
    section("R8. a model that hangs, calls queued past MaxConcurrentTransforms: the canary "
            "goes first")
    with gateway("echo", "canary behind queue", exec_max=1, breaker_failures=2, retry_max=0,
                 max_batch_rows=1, max_inflight=8, upstream_timeout_ms=1000,
                 breaker_open_ms=20000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("hang5")
        t0 = time.time()
        opened = [None]

        def watch():
            while time.time() - t0 < 15:
                if opens(gw):
                    opened[0] = time.time() - t0
                    return
                time.sleep(0.05)
        w = threading.Thread(target=watch)
        w.start()
        res = together(lambda k: post(gw, "m", k + "\n")[0], ["4,%d" % i for i in range(5)])
        w.join()
        print("   statuses %s; breaker opened after %s s; canaries %s; calls %d" %
              (sorted(res.values()), opened[0], canaries(gw), hs.ncalls()))
        check(opened[0] is not None and opened[0] < 4.5,
              "the breaker opens about one canary call (~1 s) after the 2nd timeout (~2 s), not "
              "after every queued call timed out (~5 s; opened after %s s)" % opened[0])


def test_canary_no_verdict():
    section("R9. the canary answered 429 (no verdict) by a model that fails all else: it opens")
    with gateway("echo", "canary 429", breaker_failures=3, retry_max=0,
                 upstream_timeout_ms=2000, breaker_open_ms=5000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("down429")
        res = [post(gw, "m", "5,%d\n" % i)[0] for i in range(20)]
        print("   statuses %s; canaries %s opens %s" % (res[-5:], canaries(gw), opens(gw)))
        check(opens(gw) >= 1, "20 failed calls in a row, the breaker opens (opens %s, canaries %s)"
              % (opens(gw), canaries(gw)))


def test_sigterm_canary_queued():
    section("R10. SIGTERM while the canary is queued behind a running call")
    with gateway("echo", "canary queued at SIGTERM", exec_max=1, breaker_failures=1, retry_max=0,
                 max_batch_rows=1, upstream_timeout_ms=3000) as (hs, gw):
        check_eq(post(gw, "m", "1,2\n")[::2], (200, "p1,2\n"), "a good row: the canary")
        hs.reset("hang5")
        ts = [threading.Thread(target=lambda i=i: post(gw, "m", "4,%d\n" % i)) for i in range(3)]
        for t in ts:
            t.start()
        time.sleep(3.4)  # the first times out: canary queued behind the second
        print("   canaries %s" % canaries(gw))
    for t in ts:
        t.join()


def main():
    only = sys.argv[1:]
    for t in (test_mixed_streak, test_stale_canary, test_canary_at_sigterm,
              test_suspect_shared_connection, test_slow_rows, test_hang_canary_timeout,
              test_slow_model_canary_timeout, test_canary_behind_queue, test_canary_no_verdict,
              test_sigterm_canary_queued):
        if only and not any(o in t.__name__ for o in only):
            continue
        t()
    finish()


if __name__ == "__main__":
    main()
