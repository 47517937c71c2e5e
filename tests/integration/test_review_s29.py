"""Review s29: reproducers for the four commits 7185bf3..5c2fb15.

1. Accept with many quoted strings before a comma: codec_delim scans to
   the end of the value again after each quoted string (quadratic, on the
   event loop, once per request; with HPACK a 64 KiB Accept costs a byte a
   request after the first).
2. seg_done re-entered from inside job_settle: a request answered early
   (its rows refused) cancels its other batch; remote_cancel pumps the
   queue, and a queued call of the same job that fails as it starts (the
   memory budget full) ends the job from inside job_settle: the job and
   the batch are freed under it (use after free, ASan).

Run: INFERGATE_BIN=bin/infergate-san /usr/bin/python3 tests/integration/test_review_s29.py [name]
"""

import http.client
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402
from test_upstream_adversary import (CSV, Hostile, ep_conf, post, section,  # noqa: E402
                                     stop_clean, wait_ready)


def raw_request(port, ep, body, accept, timeout=30):
    """POST over HTTP/1.1 with a raw socket (http.client caps header lines
    at 64 KiB on the way back only; this sends any Accept)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    req = ("POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           "Accept: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
           % (ep, accept, len(body), body)).encode()
    s.sendall(req)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode("utf-8", "replace")


def test_accept_quadratic():
    section("s29-1. an Accept of many quoted strings before a comma: linear, not quadratic")
    hs = Hostile()
    gw = Gateway({"m": ep_conf(hs.url)}, max_header_list_size=1048576)
    try:
        wait_ready(gw)
        # 500,000 quoted strings ("" each) in a parameter, then a comma
        acc = "text/csv;a=" + '""' * 250000 + ",text/csv"
        t0 = time.time()
        st, out = raw_request(gw.port, "m", "1,2\n", acc)
        took = time.time() - t0
        check_eq((st, out), (200, "p1,2\n"), "answered")
        t0 = time.time()
        st2, _, _ = post(gw, "m", "3,4\n")
        check_eq(st2, 200, "another request answered")
        check(took < 0.2, "a 1 MB Accept is parsed in well under 0.2 s (took %.2f s; the "
              "loop is blocked meanwhile)" % took)
    finally:
        stop_clean(gw, "accept quadratic")
        hs.close()


class BudgetModel(Hostile):
    """J1's rows ("slow") answered late; a call holding 666 and the long row
    refused at once; a call of 666 without it refused after 1 s."""

    def answer(self, h, body):
        lines = [l for l in body.split("\n") if l != ""]
        if any(l.startswith("slow") for l in lines):
            time.sleep(3)
            h.send(200, "".join("p\n" for l in lines))
        elif any(l.startswith("666") for l in lines):
            if not any(l.startswith("qqq") for l in lines):
                time.sleep(1.0)
            h.send(400, "row 666 is poison")
        else:
            h.send(200, "".join("p\n" for l in lines))


def test_seg_done_reentry_budget():
    section("s29-2. an early answer cancels the request's other batch; the same job's queued "
            "call fails as it starts (budget full): no use after free")
    hs = BudgetModel()
    gw = Gateway({"m": ep_conf(hs.url, max_batch_rows=4, max_delay_us=200000, max_inflight=2,
                               breaker_failures=100, upstream_timeout_ms=8000)},
                 max_buffered_body_bytes=1048576, max_body_bytes=900000,
                 max_conn_buffered_bytes=1048576)
    try:
        wait_ready(gw)
        hs.reset("custom")
        res = {}
        big = 200000

        def r():  # 4 rows in batch 1 (slow), 2 in batch 2 (one refused)
            res["r"] = post(gw, "m", "slow,1\nslow,2\nslow,3\nslow,4\n666,5\nr,6\n")

        def q():  # joins batch 2 after r's rows: the second half of its split
            res["q"] = post(gw, "m", "qqq" + "x" * big + "\n")

        def z():  # queued while both batches are out: holds the budget
            res["z"] = post(gw, "m", "zzz" + "y" * 540000 + "\n")

        ts = [threading.Thread(target=r)]
        ts[0].start()
        time.sleep(0.05)
        ts.append(threading.Thread(target=q))
        ts[1].start()
        time.sleep(0.5)
        ts.append(threading.Thread(target=z))
        ts[2].start()
        for t in ts:
            t.join(15)
        time.sleep(0.3)
        check(gw.alive(), "the gateway is alive; stderr: %s" % gw.stderr()[-3000:])
        check_eq(res.get("r", (None,))[0], 424, "r: its refused row's 424")
        check(res.get("q", (None,))[0] in (200, 400, 429, 503),
              "q: answered (%r)" % (res.get("q", (None, None, ""))[::2],))
    finally:
        stop_clean(gw, "seg_done re-entry")
        hs.close()


def main():
    only = sys.argv[1:]
    tests = [test_accept_quadratic, test_seg_done_reentry_budget]
    for t in tests:
        if only and not any(o in t.__name__ for o in only):
            continue
        try:
            t()
        except Exception as e:  # a check that crashed is a failed check
            check(False, "%s raised %r" % (t.__name__, e))
    finish()


if __name__ == "__main__":
    main()
