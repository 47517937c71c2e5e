"""More of one client's requests against the others' on a lane, as checks
against the real bin/infergate in front of a container on loopback (a
tiny Python HTTP/1.1 server). Each numbered finding failed before its fix.

1. The first request a client has waiting goes ahead of the other
   clients' later ones (ig_batcher_hoist), but only as it was queued: a
   client's second request waiting stayed behind every first request
   queued after it, so two clients that each send their next request as
   the one before is answered (one at a time, the way most clients call)
   passed it for good: it waited until they stopped (or until its
   deadline). Once a client's first request waiting is taken, its next is
   its first and is hoisted too (gw_load_unqueue).

2. The same when the client's first request waiting goes (its client
   hung up): its second stayed behind the first requests queued after.

The order of the container's calls is checked, not times: the container
answers a call only when the test lets it.

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_review_fair2.py
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, finish  # noqa: E402
from test_review_fair import first_call_with, queue_rows, wait_for  # noqa: E402
from test_review_upstream2 import Hostile, lines_of, post, raw_post  # noqa: E402
from test_upstream_adversary import ep_conf, section, stop_clean, wait_ready  # noqa: E402


def pred(body):
    return "".join("p" + l + "\n" for l in lines_of(body))


class Stepped:
    """A container that answers a call (p+line) only when the test lets it
    (step), in front of a gateway with one slot (a request of 4 rows is a
    whole batch); send() posts a client's request in a thread of its own,
    its (status, body) and the body sent kept in res[name]."""

    def __init__(self):
        self.step = threading.Semaphore(0)
        self.hs = Hostile(self.answer)
        self.gw = Gateway({"m": ep_conf(self.hs.url, max_inflight=1, max_batch_rows=4)})
        self.res = {}
        self.threads = []

    def answer(self, h, body):
        self.step.acquire(timeout=60)
        h.send(200, pred(body))

    def send(self, name, source):
        body = "".join("%s,%d\n" % (name, j) for j in range(4))
        t = threading.Thread(target=lambda: self.res.setdefault(
            name, (post(self.gw, "m", body, source=source, timeout=60), body)))
        t.start()
        self.threads.append(t)

    def start(self):
        """Client A's request a0 takes the slot (its call waits)."""
        check(wait_ready(self.gw), "ready")
        self.send("a0", "127.0.0.3")
        check(wait_for(lambda: len(self.hs.bodies()) == 1), "a0 out")

    def release(self, n):
        for _ in range(n):
            self.step.release()

    def join(self):
        for t in self.threads:
            t.join(60)

    def all_answered(self, n):
        return len(self.res) == n and all(st == (200, pred(body))
                                          for st, body in self.res.values())

    def close(self, what):
        self.release(64)
        stop_clean(self.gw, what)
        self.hs.close()


# 1 ---------------------------------------------------------------------------
def test_second_not_starved():
    section("1. a client's second request queued; two clients calling one at a time")

    st = Stepped()
    gw, hs, send = st.gw, st.hs, st.send
    try:
        st.start()
        send("v1", "127.0.0.2")
        check(wait_for(lambda: queue_rows(gw, "m") == 4), "v1 queued")
        send("v2", "127.0.0.2")  # the client's second request waiting
        check(wait_for(lambda: queue_rows(gw, "m") == 8), "v2 queued")
        send("b0", "127.0.0.4")
        check(wait_for(lambda: queue_rows(gw, "m") == 12), "b0 queued")
        # each round: a call is answered, the next batch goes, and the
        # client answered sends its next request
        rounds = 8
        for k in range(rounds):
            st.release(1)
            check(wait_for(lambda: len(hs.bodies()) == 2 + k), "round %d: the next call" % k)
            who = "a" if k % 2 == 0 else "b"
            send("%s%d" % (who, k // 2 + 1), "127.0.0.3" if who == "a" else "127.0.0.4")
            check(wait_for(lambda: queue_rows(gw, "m") == 12), "round %d: queued again" % k)
        st.release(64)
        st.join()
        idx = first_call_with(hs, "v2,0")
        print("  the second request went in call %d of %d" % (idx, len(hs.bodies())),
              flush=True)
        # call 0: a0; 1: v1; then b0, a1 (hoisted as v1 went), v2
        check(0 <= idx <= 4, "... while the others keep calling (call %d; before the fix, "
              "%d: after all of theirs)" % (idx, rounds + 3))
        check(st.all_answered(4 + rounds), "every request its own predictions")
    finally:
        st.close("second request")


# 2 ---------------------------------------------------------------------------
def test_first_gone():
    section("2. a client's first request waiting goes; its second, then another client's")

    st = Stepped()
    gw, hs, send = st.gw, st.hs, st.send
    try:
        st.start()
        s = raw_post(gw, "m", "".join("v1,%d\n" % j for j in range(4)), source="127.0.0.2")
        check(wait_for(lambda: queue_rows(gw, "m") == 4), "v1 queued")
        send("v2", "127.0.0.2")
        check(wait_for(lambda: queue_rows(gw, "m") == 8), "v2 queued")
        s.close()  # v1's client hangs up
        check(wait_for(lambda: queue_rows(gw, "m") == 4), "v1 gone")
        send("c1", "127.0.0.5")
        check(wait_for(lambda: queue_rows(gw, "m") == 8), "c1 queued")
        st.release(8)
        st.join()
        v2, c1 = first_call_with(hs, "v2,0"), first_call_with(hs, "c1,0")
        print("  v2 in call %d, c1 in call %d" % (v2, c1), flush=True)
        check(v2 == 1 and c1 == 2, "the client's second, now its first, goes first (v2 in call "
              "%d, c1 in call %d; before the fix 2 and 1)" % (v2, c1))
        check(st.all_answered(3), "every request its own predictions")
    finally:
        st.close("first gone")


if __name__ == "__main__":
    test_second_not_starved()
    test_first_gone()
    finish()
