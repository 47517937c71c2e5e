"""One client's backlog on a lane against another client's request, as
checks against the real bin/infergate in front of a container on loopback
(a tiny Python HTTP/1.1 server). Each numbered finding failed before its
fix.

1. A lane was FIFO: one client that kept many whole-batch requests queued
   on the lane another client's request joined was served ahead of it,
   batch after batch (with 20 such requests queued, the other client's
   one-row request went in the 21st call). The first request a client has
   waiting now goes ahead of the other clients' later ones
   (ig_batcher_hoist): behind at most one request of each other client
   waiting, here the 4th call.

2. The same through a transform stream whose records the model refuses:
   each chunk's refused call is split down to each record (2n - 1 calls a
   chunk of n). Another client's one-row request waited behind every
   chunk queued before it (call 125 here), then, with 1., behind the
   chunks in flight, which held their slots of max_inflight for all of
   their splits (call 63; with 64-record chunks and 5 ms calls, 12 s). A
   batch whose rows split is now set aside from max_inflight (another
   batch goes in its place), and the halves of split calls wait in a
   queue of their own, by batch, taking turns with the batches' first
   calls: the other client's row is answered within a few calls.

3. Set aside, split batches are still bounded: 4 x max_inflight of them
   at most (GW_ASIDE_FACTOR), whatever the number of streams refused.

The order of the container's calls is checked, not times, and the
container answers nothing until every request is queued: the same on a
busy machine and under ASan.

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_review_fair.py
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402
from test_review_stream import transform  # noqa: E402
from test_review_upstream2 import Hostile, lines_of, post  # noqa: E402
from test_upstream_adversary import ep_conf, section, stop_clean, wait_ready  # noqa: E402


def queue_rows(gw, ep):
    for line in gw.metrics().splitlines():
        if line.startswith('infergate_queue_rows{endpoint="%s"}' % ep):
            return int(line.split()[-1])
    return -1


def wait_for(cond, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def first_call_with(hs, needle):
    """The index of the container's first call whose body holds <needle>, or -1."""
    for i, b in enumerate(hs.bodies()):
        if needle in lines_of(b):
            return i
    return -1


def gated_container():
    """A container whose calls wait until the gate is set (every request
    queued), then answer each line p+line, or 400 to a call holding a line
    that starts with "bad". -> (Hostile, gate)."""
    gate = threading.Event()

    def answer(h, body):
        gate.wait(30)
        if any(l.startswith("bad") for l in lines_of(body)):
            h.send(400, "refused")
        else:
            h.send(200, "".join("p" + l + "\n" for l in lines_of(body)))

    return Hostile(answer), gate


def other_client(gw, gate, queued):
    """Another client (127.0.0.2) posts one row; once it is queued (the
    endpoint's queue at <queued> rows) the container's gate opens. -> its
    (status, body)."""
    res = {}
    t = threading.Thread(target=lambda: res.setdefault(
        "st", post(gw, "m", "9,9\n", source="127.0.0.2")))
    t.start()
    check(wait_for(lambda: queue_rows(gw, "m") == queued), "the other client's row queued")
    gate.set()
    t.join()
    return res.get("st")


# 1 ---------------------------------------------------------------------------
def test_lane_backlog():
    section("1. a client's 20 whole-batch requests queued on a lane; another client's one row")

    hs, gate = gated_container()
    # two slots; a request of 4 rows is a whole batch
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=2, max_batch_rows=4)})
    try:
        check(wait_ready(gw), "ready")
        res = {}

        def flood(k):
            body = "".join("%d,%d\n" % (k, j) for j in range(4))
            res[k] = (post(gw, "m", body, source="127.0.0.1"), body)

        ts = [threading.Thread(target=flood, args=(k,)) for k in range(20)]
        for t in ts:
            t.start()
        # two of its calls out, the other 18 requests queued (72 rows)
        check(wait_for(lambda: len(hs.bodies()) >= 2 and queue_rows(gw, "m") == 72),
              "the flood: 2 calls out, 18 requests queued (queue rows %d)" % queue_rows(gw, "m"))
        st = other_client(gw, gate, 73)
        for t in ts:
            t.join()
        check_eq(st, (200, "p9,9\n"), "the other client answered")
        idx = first_call_with(hs, "9,9")
        print("  the other client's row went in call %d of %d" % (idx, len(hs.bodies())),
              flush=True)
        # calls 0 and 1: the flood's first two; 2: its first request waiting
        # (queued before the other client's); 3: the other client's
        check(0 <= idx <= 3, "... in the 4th call at the latest, not after the flood's "
              "20 (call %d)" % idx)
        check(all(res[k][0] == (200, "".join("p" + l + "\n" for l in lines_of(res[k][1])))
                  for k in range(20)), "the flood: every request its own predictions")
        check_eq(len(hs.bodies()), 21, "21 calls: a request each")
    finally:
        stop_clean(gw, "lane backlog")
        hs.close()


# 2 ---------------------------------------------------------------------------
def test_stream_refused_backlog():
    section("2. a transform stream of refused records; another client's one row")

    hs, gate = gated_container()
    # chunks of 16 lines (max_batch_rows), 31 calls each when all are
    # refused; 2 slots: 2 chunks out, 2 more queued (the stream's cap of
    # max_batch_rows x max_inflight x 2 rows open)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=2, max_batch_rows=16)})
    try:
        check(wait_ready(gw), "ready")
        res = {}
        lines = "".join("bad%d\n" % k for k in range(128))  # 8 chunks, 248 calls
        t = threading.Thread(target=lambda: res.setdefault("s", transform(gw, "m", lines,
                                                                          timeout=120)))
        t.start()
        check(wait_for(lambda: queue_rows(gw, "m") == 32 and len(hs.bodies()) >= 2),
              "the stream: 2 chunks out, 2 queued (queue rows %d)" % queue_rows(gw, "m"))
        n0 = len(hs.bodies())
        st = other_client(gw, gate, 33)
        t.join()
        check_eq(st, (200, "p9,9\n"), "the other client answered")
        rc, out = res.get("s", (None, ""))
        check_eq(rc, 0, "the stream completed")
        check_eq(out, "".join('error,%d,ModelError,"Row %d: refused"\n' % (k + 1, k + 1)
                              for k in range(128)),
                 "the stream: each record's own refusal, in order")
        idx = first_call_with(hs, "9,9")
        alone = [i for i, b in enumerate(hs.bodies()) if lines_of(b) == ["9,9"]]
        print("  the stream's calls when the other client came: %d; its row went in call %d, "
              "alone in call %s, of %d" % (n0, idx, alone, len(hs.bodies())), flush=True)
        # the two chunks out split and are set aside: the other client's row
        # goes with the next batch (a queued chunk's 15 rows), which is
        # split too, and its half waits its job's turn among the split
        # batches, in turn with the first calls
        check(0 <= idx <= 8, "... in one of the first calls after the chunks' first two, not "
              "after their splits (call %d; 62 before the fix, 124 before 1.)" % idx)
        check(len(alone) == 1 and alone[0] <= 20, "... and alone (answered) within 20 calls "
              "(call %s)" % alone)
        # 7 chunks of 31 calls; the chunk whose first 15 rows went with the
        # other client's row: that call, the row alone, 29 for the 15, 1
        # for its 16th (in a batch of its own)
        check_eq(len(hs.bodies()), 7 * 31 + 1 + 1 + 29 + 1, "every call accounted for")
    finally:
        stop_clean(gw, "stream refused backlog")
        hs.close()


# 3 ---------------------------------------------------------------------------
def test_aside_bounded():
    section("3. eight streams of refused records: at most 4 x max_inflight batches set aside")

    def answer(h, body):
        time.sleep(0.01)
        h.send(400, "refused")

    hs = Hostile(answer)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=1, max_batch_rows=16)})
    try:
        check(wait_ready(gw), "ready")
        res = {}
        lines = "".join("bad%d\n" % k for k in range(64))
        ts = [threading.Thread(target=lambda k=k: res.setdefault(k, transform(gw, "m", lines,
                                                                              timeout=120)))
              for k in range(8)]
        for t in ts:
            t.start()
        peak = 0
        while any(t.is_alive() for t in ts):
            for line in gw.metrics().splitlines():
                if line.startswith('infergate_inflight_batches{endpoint="m"}'):
                    peak = max(peak, int(float(line.split()[-1])))
            time.sleep(0.005)
        for t in ts:
            t.join()
        want = "".join('error,%d,ModelError,"Row %d: refused"\n' % (k + 1, k + 1)
                       for k in range(64))
        check(all(res.get(k) == (0, want) for k in range(8)),
              "each stream: each record's own refusal, in order")
        print("  batches out at most: %d" % peak, flush=True)
        check(2 <= peak <= 5, "batches out: 1 in the slot + 4 aside at most, and some aside "
              "(peak %d)" % peak)
        check_eq(len(hs.bodies()), 8 * 4 * 31, "31 calls a chunk of 16 refused records")
    finally:
        stop_clean(gw, "aside bounded")
        hs.close()


if __name__ == "__main__":
    test_lane_backlog()
    test_stream_refused_backlog()
    test_aside_bounded()
    finish()
