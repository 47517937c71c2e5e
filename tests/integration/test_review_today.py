"""Review of the change abc4ac5..8c8061c (aws_creds refresh and waiters,
the gateway's orphaned batches, the conversion without a close callback,
and upstream_remote's split of a 2xx answer wrong for some rows), as checks
against the real bin/infergate in front of a model container on loopback
(test_review_upstream2's Hostile). Each failed before its fix.

1. A split of a call whose 2xx answer is wrong for one request's rows
   (call_answer_bad) took two tokens of the retry budget, the one retries
   of every client's calls (a 503, a timeout) draw on, and the request it
   isolated failed with InternalFailure, which gave no suspect mark. One
   client alone drained the budget cheaply (a 2-D JSON instance batched
   with 7 other requests costs 3 splits, 6 of the 10 tokens): then its
   splits were refused and the other clients batched with it failed with
   it (500), and another client's call that the model answers 503 once was
   not retried (424). Now splits have a budget of their own, and a client
   whose rows a split isolated is batched apart for a while (from its own
   address, 127.0.0.3 here), as after a ModelError.

2. When the split budget is spent, a call holding a client's prediction
   that does not convert to the Accept (a model that answers CSV whatever
   it is asked) fails whole; each of the other clients was told that
   client's prediction in its 500's message ("the model's answer
   'secret-of-client-x' is not a CSV line of numbers"). They are now told
   only that the answer for some of the call's rows does not convert.

Run: INFERGATE_BIN=bin/infergate-san /usr/bin/python3 tests/integration/test_review_today.py
"""

import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402
from test_review_upstream2 import (CSV, JSON, Hostile, ep_conf, lines_of, post,  # noqa: E402
                                   section, stop_clean, wait_ready)


class Once:
    """Which call bodies the model has answered 503 already: each call
    whose rows hold the marker is refused once (a transient failure), then
    answered (its retry)."""

    def __init__(self):
        self.seen = set()
        self.lock = threading.Lock()

    def first(self, body):
        with self.lock:
            new = body not in self.seen
            self.seen.add(body)
            return new


def together(fns):
    """Run the calls <fns> at once (one batch); their results by key."""
    res = {}
    ts = [threading.Thread(target=lambda k=k, f=f: res.setdefault(k, f())) for k, f in fns.items()]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return res


# 1 ---------------------------------------------------------------------------
def test_client_drains_split_budget():
    section("1. one client's 2-D instances: batchmates answered, retries not denied")
    once = Once()

    def answer(h, body):
        insts = json.loads(body)["instances"]
        if any(i and i[0] == 503 for i in insts) and once.first(body):
            h.send(503, "busy, try again", "text/plain")
            return
        preds = []
        for inst in insts:
            if inst and isinstance(inst[0], list):  # 2-D: a prediction per inner row
                preds += [sum(x) for x in inst]
            else:
                preds.append(sum(inst))
        h.send(200, json.dumps({"predictions": preds}), JSON)

    hs = Hostile(answer)
    conf = ep_conf(hs.url, content_type=JSON, accept=JSON, max_delay_us=300000)
    gw = Gateway({"m": conf, "ctl": dict(conf)})  # ctl: the same model, a budget of its own

    def j(ep, body, source=None):
        return lambda: post(gw, ep, body, ctype=JSON, accept=JSON, source=source)

    try:
        wait_ready(gw)
        rounds = []
        for _ in range(3):
            fns = {k: j("m", '{"instances":[[%d,2]]}' % k) for k in range(7)}
            fns["2d"] = j("m", '{"instances":[[[1,2],[3,4]]]}', source="127.0.0.3")
            rounds.append(together(fns))
        print("  calls (instances each): %s"
              % [len(json.loads(b)["instances"]) for b in hs.bodies()])
        check([k for k in range(7) if rounds[0].get(k) != (200, '{"predictions":[%d]}' % (k + 2))]
              == [], "round 1 (the budget full): every other client answered, the 2-D one "
              "isolated by splits (%r)" % rounds[0])
        failed = sum(1 for r in rounds[1:] for k in range(7)
                     if r.get(k) != (200, '{"predictions":[%d]}' % (k + 2)))
        check(failed == 0, "rounds 2-3: the other clients batched with the same client's 2-D "
              "instance are still answered, not failed with it once its splits spent the "
              "retry budget (%d of 14 failed: %r)" % (failed, rounds[2].get(0)))
        for r in rounds:
            check(r.get("2d", (0,))[0] == 500, "the 2-D request itself fails (%r)" % (r.get("2d"),))
        ctl = post(gw, "ctl", '{"instances":[[503,1]]}', ctype=JSON, accept=JSON)
        check_eq(ctl, (200, '{"predictions":[504]}'),
                 "control: a call the model answers 503 once is retried")
        got = post(gw, "m", '{"instances":[[503,2]]}', ctype=JSON, accept=JSON)
        check_eq(got[0], 200, "another client's call that the model answers 503 once is still "
                 "retried after that client's 2-D instances (got %d %s; retries denied: %r)"
                 % (got[0], got[1][:120],
                    gw.metric('infergate_upstream_retries_denied_total{endpoint="m"}')))
    finally:
        stop_clean(gw, "split budget")
        hs.close()


# 2 ---------------------------------------------------------------------------
def test_convert_leak_after_budget():
    section("2. the split budget spent: one client's prediction is not shown to the others")

    def answer(h, body):  # speaks CSV whatever the Accept: its rows back
        h.send(200, "".join(l + "\n" for l in lines_of(body)), CSV)

    hs = Hostile(answer)
    gw = Gateway({"m": ep_conf(hs.url, max_delay_us=300000)})
    shared = ("Row 1: The model answered Content-Type text/csv, not the application/json asked "
              "for, and its answer for some of these rows does not convert.")
    try:
        wait_ready(gw)
        seen_shared = 0
        for rnd in range(5):  # 2 splits (4 tokens) a round of 4: the budget of 10 runs out
            fns = {k: (lambda k=k: post(gw, "m", "%d,2\n" % k, accept=JSON)) for k in range(3)}
            fns["x"] = lambda: post(gw, "m", "secret-of-client-x\n", accept=JSON)
            res = together(fns)
            for k in range(3):
                st, out = res.get(k, (0, ""))
                check("secret-of-client-x" not in out,
                      "round %d: client %d is not shown another client's prediction (%d %s)"
                      % (rnd, k, st, out[:240]))
                ok = (st == 200 and out.startswith('{"predictions":['))
                check(ok or (st == 500 and out == '{"message":"%s"}' % shared),
                      "round %d: client %d answered, or told only that some rows did not "
                      "convert (%d %s)" % (rnd, k, st, out[:240]))
                seen_shared += not ok
            st, out = res.get("x", (0, ""))
            check(st == 500 and ("secret-of-client-x" in out or shared in out),
                  "round %d: the request whose prediction does not convert fails (%d %s)"
                  % (rnd, st, out[:200]))
        check(seen_shared > 0, "the budget ran out: some calls failed whole, with the words "
              "that name no prediction (%d requests)" % seen_shared)
        m = gw.metric('infergate_upstream_retries_denied_total{endpoint="m"}')
        check(m is not None and m > 0, "the splits refused are counted (%r)" % m)
    finally:
        stop_clean(gw, "convert leak")
        hs.close()


if __name__ == "__main__":
    test_client_drains_split_budget()
    test_convert_leak_after_budget()
    finish()
