"""An adversarial review of InvokeEndpointWithResponseStream
(/endpoints/NAME/invocations-response-stream) and of the transform stream
in front of a remote model (a container on loopback: a tiny Python
HTTP/1.1 server that misbehaves on purpose), as checks against the real
bin/infergate. Each numbered finding failed before its fix; the rest are
limits that held and must go on holding.

1. A container whose X-Amzn-SageMaker-Custom-Attributes or
   x-Amzn-Invoked-Production-Variant answer holds a control character
   (a VT, an ESC, a DEL...; libcurl itself refuses a NUL): the gateway
   forwarded the value as it was, and an HTTP/2 client refuses such a
   field (RFC 9113 8.2.1; curl, nghttp2: PROTOCOL_ERROR): the whole
   response was lost, its predictions with it (curl: no status at all),
   for every request of the call (the variant goes to all of them). Such
   a value is now not forwarded (the variant falls back to the
   endpoint's), and the blanks around a value (OWS) are not part of it.

2. One client's row that the model hangs on (a row it takes longer than
   upstream_timeout_ms on) made every request batched with it time out
   too (424 ModelError, OriginalStatusCode 0), response streams and
   transform streams included, after the retries; and again at each batch
   its rows joined, since a timeout did not batch that client apart as a
   refusal (4xx) or a raise (500) does. A call of several requests' rows
   that times out after its retries is now split as a refused one is
   (without retries, within the split budget, not while the breaker is
   open): the others are answered by their halves, only the request the
   model hangs on times out, and its client is batched apart for a while.
   It helps only when the retries fit the requests' deadline: with the
   defaults (upstream_timeout_ms = request_timeout_ms = 60 s) the
   requests still expire first, all of them, with no client marked.

3. (Fixed since, checked in test_review_fair.py 1.) A lane was FIFO, and
   the share of max_inflight by client held only between lanes: one
   client that kept many whole-batch requests queued on the lane another
   client's request went to was served ahead of it, batch after batch
   (with 0.3 s calls and two slots, 20 requests of max_batch_rows rows
   made another client's one-row response stream wait ~3.4 s, 10 calls).

4. A transform stream's chunks had no client (peer key 0) in the share of
   max_inflight by client: their lane read as one whose client was never
   served, so it went ahead of every other lane whose client had been
   served once. With one slot and 0.25 s calls, another client's one-row
   request (on its own lane) waited 5.8 s, for all 20 of the stream's
   calls. A chunk now counts for the stream's client: it waits one call.

Limits that held (checked here): a response stream's client that goes away
while the model hangs on its row frees the endpoint's one slot at once; a
model's answer over the per-row cap fails that request with the exact 500;
a one-request call that times out still gets SageMaker's exact timeout
ModelError; a hostile stress of resets, refusals, raises and hangs over both
protocols answers every completed response stream with exactly its own
predictions.

Run: INFERGATE_BIN=bin/infergate /usr/bin/python3 tests/integration/test_review_stream.py
"""

import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, curl, finish  # noqa: E402
from test_review_upstream2 import Hostile, lines_of, post  # noqa: E402
from test_upstream_container import model_error  # noqa: E402
from test_upstream_adversary import ep_conf, section, stop_clean, wait_ready  # noqa: E402

CSV = "text/csv"
VARIANT = "AllTraffic"
TIMEOUT_MSG = ("Your invocation timed out while waiting for a response from container %s. "
               "Review the latency metrics for each container in Amazon CloudWatch, resolve "
               "the issue, and try again." % VARIANT)
tmp = tempfile.mkdtemp(prefix="ig-review-stream-")


def payloads(raw):
    """The PayloadPart payloads of an event stream, joined; None when its
    framing or a CRC is wrong, or an event is not a PayloadPart."""
    out, off = b"", 0
    while off < len(raw):
        if len(raw) - off < 16:
            return None
        total, hl, pcrc = struct.unpack(">III", raw[off:off + 12])
        msg = raw[off:off + total]
        if (len(msg) != total or pcrc != zlib.crc32(raw[off:off + 8])
                or struct.unpack(">I", msg[-4:])[0] != zlib.crc32(msg[:-4])
                or b"\x0bPayloadPart" not in msg[12:12 + hl]):
            return None
        out += msg[12 + hl:-4]
        off += total
    return out


def rs_curl(gw, ep, body, http2, headers=(), max_time=30, accept=CSV):
    """POST <body> to ep's invocations-response-stream with the real curl.
    -> (status, headers lower-cased, body bytes); status 0: no response."""
    return curl("%s/endpoints/%s/invocations-response-stream" % (gw.url, ep), body,
                ["Content-Type: " + CSV, "X-Amzn-SageMaker-Accept: " + accept] + list(headers),
                http2=http2, max_time=max_time, raw=True)


def transform(gw, ep, body, timeout=30):
    """A transform stream over HTTP/2 (curl -T) -> (curl's exit, body)."""
    d = tempfile.mkdtemp(dir=tmp)
    bf, of = os.path.join(d, "body"), os.path.join(d, "out")
    with open(bf, "w") as f:
        f.write(body)
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", str(timeout),
                        "-o", of, "-T", bf, "-H", "Content-Type: " + CSV, "-H", "Accept: " + CSV,
                        "%s/transform/%s" % (gw.url, ep)], capture_output=True,
                       timeout=timeout + 10)
    with open(of) as f:
        return p.returncode, f.read()


def echo(h, body):
    h.send(200, "".join("p" + l + "\n" for l in lines_of(body)))


# 1 ---------------------------------------------------------------------------
def test_control_chars_in_answer_headers():
    section("1. a container's custom attributes / variant with control characters")
    said = {"attrs": "", "variant": ""}

    def answer(h, body):
        h.send(200, "".join("p" + l + "\n" for l in lines_of(body)),
               extra=[("X-Amzn-SageMaker-Custom-Attributes", said["attrs"]),
                      ("x-Amzn-Invoked-Production-Variant", said["variant"])])

    hs = Hostile(answer)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=2)})
    try:
        check(wait_ready(gw), "ready")
        fwd = ["X-Amzn-SageMaker-Custom-Attributes: mine"]  # a call of its own: attrs come back
        for attrs, variant, what in (("a\x01b", "v\x0bw", "SOH / VT"),
                                     ("a\x7fb", "v\x7fw", "DEL"),
                                     ("x\x1b[2Jy", "v\x1fw", "ESC / US")):
            said["attrs"], said["variant"] = attrs, variant
            for http2 in (True, False):
                st, hd, out = rs_curl(gw, "m", "1,2\n", http2, fwd)
                check_eq((st, hd.get("x-amzn-invoked-production-variant"),
                          hd.get("x-amzn-sagemaker-custom-attributes"), payloads(out)),
                         (200, VARIANT, None, b"p1,2\n"),
                         "%s over %s: the response stream answered, the values not forwarded "
                         "(the endpoint's variant instead)" % (what, "h2" if http2 else "h1"))
        # values an HTTP client takes still go, the blanks around them (OWS) not
        said["attrs"], said["variant"] = "k=v\tw \t", " Blue-1 "
        for http2 in (True, False):
            st, hd, out = rs_curl(gw, "m", "3,4\n", http2, fwd)
            check_eq((st, hd.get("x-amzn-invoked-production-variant"),
                      hd.get("x-amzn-sagemaker-custom-attributes"), payloads(out)),
                     (200, "Blue-1", "k=v\tw", b"p3,4\n"),
                     "a tab inside a value is kept, the blanks around it dropped (%s)"
                     % ("h2" if http2 else "h1"))
    finally:
        stop_clean(gw, "control characters")
        hs.close()


# 2 ---------------------------------------------------------------------------
def test_hang_row_split():
    section("2. one client's row the model hangs on: the others batched with it answered")

    def answer(h, body):
        if any(l.startswith("hang") for l in lines_of(body)):
            time.sleep(1.2)
        echo(h, body)

    hs = Hostile(answer)
    # (a batch waits 0.6 s for rows: the three clients' rows, sent 30 ms
    # apart, meet in one even when the side-by-side tests load the machine)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=2, max_delay_us=600000,
                               upstream_timeout_ms=400, retry_max=1)})
    try:
        check(wait_ready(gw), "ready")
        res = {}

        def a():  # the hostile client, from its own address
            res["a"] = post(gw, "m", "hang,1\n", source="127.0.0.2")

        def b():
            time.sleep(0.03)
            res["b"] = rs_curl(gw, "m", "7,7\n", True)

        def c():
            time.sleep(0.03)
            res["c"] = transform(gw, "m", "8,1\n8,2\n")

        ts = [threading.Thread(target=f) for f in (a, b, c)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        check_eq(res["a"], (424, model_error("m", 0, TIMEOUT_MSG)),
                 "the request the model hangs on: SageMaker's timeout ModelError")
        b_st, _, b_out = res["b"]
        check_eq((b_st, payloads(b_out)), (200, b"p7,7\n"),
                 "a response stream batched with it: answered by its half of the split")
        check_eq(res["c"], (0, "p8,1\np8,2\n"),
                 "a transform stream's rows batched with it: predictions, not error records")
        check(sorted(lines_of(hs.bodies()[0])) == ["7,7", "8,1", "8,2", "hang,1"],
              "the three clients' rows went in one call: %r" % hs.bodies()[:1])
        check(any(lines_of(x) == ["hang,1"] for x in hs.bodies()),
              "the hanging row was called alone (split)")

        # Its client is batched apart now: its next hanging row does not
        # make another client's request wait for the timeout again.
        res.clear()
        ta = threading.Thread(target=a)
        ta.start()
        time.sleep(0.03)
        b_st, _, b_out = rs_curl(gw, "m", "9,9\n", False)
        ta.join()
        check_eq((b_st, payloads(b_out)), (200, b"p9,9\n"), "the next response stream answered")
        check_eq(res["a"], (424, model_error("m", 0, TIMEOUT_MSG)), "the hanging client: 424")
        check(not any("hang,1" in lines_of(x) and "9,9" in lines_of(x) for x in hs.bodies()),
              "the suspect client's row not batched with the other's")
    finally:
        stop_clean(gw, "hang split")
        hs.close()


# limits ----------------------------------------------------------------------
# 4 ---------------------------------------------------------------------------
def test_stream_share():
    section("4. a transform stream's chunks count for its client in the share of slots")

    def answer(h, body):
        time.sleep(0.25)
        echo(h, body)

    hs = Hostile(answer)
    # one slot; chunks of 4 lines, 2 of a stream open at once (2 x 4 x 1)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=1, max_batch_rows=4)})
    try:
        check(wait_ready(gw), "ready")
        solo = {"X-Amzn-SageMaker-Custom-Attributes": "v"}  # its own lane
        check_eq(post(gw, "m", "9,8\n", headers=solo, source="127.0.0.2"), (200, "p9,8\n"),
                 "the other client, served once before the stream")
        res = {}
        lines = "".join("%d,1\n" % k for k in range(80))  # 20 chunks: 20 calls, 5 s
        t = threading.Thread(target=lambda: res.setdefault("s", transform(gw, "m", lines)))
        t.start()
        end = time.time() + 10
        while len(hs.bodies()) < 3 and time.time() < end:  # the stream's calls under way
            time.sleep(0.01)
        t0 = time.time()
        st = post(gw, "m", "9,9\n", headers=solo, source="127.0.0.2")
        waited = time.time() - t0
        t.join()
        check_eq(st, (200, "p9,9\n"), "the other client answered")
        print("  the other client waited %.2f s" % waited, flush=True)
        check(waited < 2.0, "... after the stream's call in service, not after its other "
              "chunks (waited %.2f s; the stream's 20 calls take 5 s)" % waited)
        check_eq(res.get("s"), (0, "".join("p%d,1\n" % k for k in range(80))),
                 "the stream: every prediction, in order")
    finally:
        stop_clean(gw, "stream share")
        hs.close()


def test_limits():
    section("limits: a reset frees the slot; caps and messages exact")

    def answer(h, body):
        ls = lines_of(body)
        if any(l.startswith("slow") for l in ls):
            time.sleep(2.0)
        if any(l.startswith("big") for l in ls):
            h.send(200, "x" * (400 << 10) + "\n")
            return
        echo(h, body)

    hs = Hostile(answer)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=1, upstream_timeout_ms=600, retry_max=0)})
    try:
        check(wait_ready(gw), "ready")
        # a response stream's client gone while the model hangs on its row
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /endpoints/m/invocations-response-stream HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: text/csv\r\nX-Amzn-SageMaker-Accept: text/csv\r\n"
                  b"Content-Length: 7\r\n\r\nslow,1\n")
        time.sleep(0.2)
        s.close()
        time.sleep(0.05)
        t0 = time.time()
        st, _, out = rs_curl(gw, "m", "5,5\n", True)
        waited = time.time() - t0
        check_eq((st, payloads(out)), (200, b"p5,5\n"), "the next client answered")
        check(waited < 0.5, "the gone client's call freed the one slot (waited %.2f s)" % waited)
        # an answer over its cap (256 KiB a row + 64 KiB)
        st, hd, out = rs_curl(gw, "m", "big,1\n", True)
        check_eq((st, hd.get("x-amzn-errortype"), out.decode()),
                 (500, "InternalFailure",
                  json.dumps({"message": "Row 1: The model's answer is larger than 327680 "
                              "bytes, what 1 rows may take."}, separators=(",", ":"))),
                 "an answer over the per-row cap: 500 InternalFailure, exact")
        # a one-request call not answered in time: SageMaker's timeout, as before
        st, hd, out = rs_curl(gw, "m", "slow,2\n", False)
        check_eq((st, hd.get("x-amzn-errortype"), out.decode()),
                 (424, "ModelError", model_error("m", 0, TIMEOUT_MSG)),
                 "a response stream's own row timed out: 424 ModelError, exact")
    finally:
        stop_clean(gw, "limits")
        hs.close()


def test_stress():
    section("stress: resets, refusals, raises and hangs; every answer its own")

    def answer(h, body):
        ls = lines_of(body)
        if any(l.startswith("bad") for l in ls):
            h.send(400, "bad row")
            return
        if any(l.startswith("raise") for l in ls):
            h.send(500, "raised")
            return
        if any(l.startswith("slow") for l in ls):
            time.sleep(0.6)
        echo(h, body)

    hs = Hostile(answer)
    gw = Gateway({"m": ep_conf(hs.url, max_inflight=3, max_delay_us=20000,
                               upstream_timeout_ms=400, retry_max=1, request_timeout_ms=3000)})
    wrong = []
    try:
        check(wait_ready(gw), "ready")
        stop = time.time() + 6

        def client(i):
            rnd = random.Random(i)
            n = 0
            while time.time() < stop:
                n += 1
                rows = ["%s%d_%d_%d" % (rnd.choice(["ok"] * 6 + ["bad", "slow", "raise"]), i, n, k)
                        for k in range(rnd.randint(1, 3))]
                st, _, out = rs_curl(gw, "m", "".join(r + "\n" for r in rows),
                                     rnd.random() < 0.5, max_time=rnd.choice([0.2, 10, 10]))
                if st == 200 and (payloads(out) != "".join("p" + r + "\n" for r in rows).encode()
                                  or not all(r.startswith(("ok", "slow")) for r in rows)):
                    wrong.append((rows, out[:200]))

        ts = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        check_eq(wrong, [], "every 200 is exactly its own rows' predictions")
        check_eq(post(gw, "m", "okfinal\n", timeout=10), (200, "pokfinal\n"),
                 "served after the stress")
    finally:
        stop_clean(gw, "stress")
        hs.close()


if __name__ == "__main__":
    t0 = time.time()
    test_control_chars_in_answer_headers()
    test_hang_row_split()
    test_stream_share()
    test_limits()
    test_stress()
    print("runtime %.1f s" % (time.time() - t0))
    finish()
