"""Adversarial review of 719b631 (http_h2: the response header block built on
the stack by h2_head_build, :status and content-length written by hand) and
dbfe4e7 (http_server: conn_in_recount resumes reading once the input is
processed back to the charged count), against the real gateway:

- h2 answers: :status, content-length == the DATA received (0-length, large,
  errors, HEAD without DATA), x-amzn-requestid on every answer, no
  content-length on a stream head (/transform), lower-case names;
- HTTP/1.1 pipelining of more body bytes than max_conn_buffered_bytes in
  one burst: every request is answered (reading resumes), none lost;
- h2: 12 streams whose bodies (12 MiB) exceed the connection share: every
  stream gets an answer (200, or a 4xx refusal), none hangs or is reset.
"""

import os
import socket
import threading
import time

from iglib import ROOT, Gateway, H2Client, check, check_eq, finish

MODEL = os.path.join(ROOT, "load", "models", "bench-kmeans-10.json")
SHARE = 6291456 + 65536 + 32768  # the least max_conn_buffered_bytes allowed
ROW = b"1,2,3,4,5,6,7,8,9,10\n"


def log(msg):
    print("test_review_h2head: " + msg, flush=True)


def h2_req(port, path, method="POST", body=b"", headers=()):
    c = H2Client(port)
    sid = c.conn.get_next_available_stream_id()
    hdrs = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"),
            (":path", path)] + list(headers)
    c.conn.send_headers(sid, hdrs, end_stream=not body)
    c.flush()
    c.data[sid] = b""
    if body:
        c.send_all(sid, body)
    c.wait(sid, timeout=15)
    out = (c.headers.get(sid, {}), c.data.get(sid, b""), sid in c.ended, c.resets.get(sid))
    c.close()
    return out


def head_ok(h, data, what, length=True):
    check(h.get(":status", "").isdigit() and len(h.get(":status", "")) == 3,
          "%s: a 3-digit :status: %r" % (what, h.get(":status")))
    check(len(h.get("x-amzn-requestid", "")) > 0, "%s: x-amzn-requestid" % what)
    check(all(k == k.lower() for k in h), "%s: lower-case names: %r" % (what, sorted(h)))
    if length:
        check_eq(h.get("content-length"), str(len(data)), "%s: content-length == DATA" % what)


with Gateway({"km": {"model": MODEL}}, max_conn_buffered_bytes=str(SHARE)) as gw:
    port = gw.port

    log("h2 answers: status, content-length, request id")
    h, d, ended, rst = h2_req(port, "/ping", method="GET")
    check_eq((h.get(":status"), ended, rst), ("200", True, None), "GET /ping")
    head_ok(h, d, "GET /ping")
    hh, hd, ended, rst = h2_req(port, "/ping", method="HEAD")
    check_eq((hh.get(":status"), hd, ended), ("200", b"", True), "HEAD /ping: no DATA")
    check(hh.get("content-length") in (None, str(len(d))),
          "HEAD /ping: content-length of the GET answer: %r vs %d" % (hh.get("content-length"),
                                                                     len(d)))
    for rows in (1, 3000):
        h, d, ended, rst = h2_req(port, "/endpoints/km/invocations", body=ROW * rows,
                                  headers=[("content-type", "text/csv"), ("accept", "text/csv")])
        check_eq((h.get(":status"), d.count(b"\n"), ended), ("200", rows, True),
                 "invoke %d rows over h2" % rows)
        head_ok(h, d, "invoke %d rows" % rows)
    for path, method, body, what in (
            ("/endpoints/nope/invocations", "POST", ROW, "unknown endpoint"),
            ("/endpoints/km/invocations", "POST", b"x,y\n", "bad CSV"),
            ("/endpoints/km/invocations", "GET", b"", "GET on invocations"),
            ("/" + "a" * 3000, "GET", b"", "a long unknown path"),
            ("/endpoints/km/invocations", "POST", b"", "empty body")):
        h, d, ended, rst = h2_req(port, path, method=method, body=body,
                                  headers=[("content-type", "text/csv")])
        check(h.get(":status", "0")[0] in "45" and ended, "%s: a 4xx/5xx answer: %r %r"
              % (what, h.get(":status"), d[:100]))
        head_ok(h, d, what)
    h, d, ended, rst = h2_req(port, "/endpoints/km/invocations", body=ROW * 2,
                              headers=[("content-type", "text/csv"), ("accept", "text/csv"),
                                       ("x-amzn-sagemaker-custom-attributes", "a" * 1024)] +
                              [("x-pad-%d" % i, "v" * 200) for i in range(40)])
    check_eq((h.get(":status"), ended), ("200", True), "invoke with many long request headers")
    head_ok(h, d, "invoke with many long request headers")

    log("stream head: /transform/km")
    h, d, ended, rst = h2_req(port, "/transform/km", body=ROW * 5000,
                              headers=[("content-type", "text/csv"), ("accept", "text/csv")])
    check_eq((h.get(":status"), d.count(b"\n"), ended, rst), ("200", 5000, True, None),
             "transform 5000 rows")
    head_ok(h, d, "transform", length=False)
    check("content-length" not in h, "a stream head has no content-length: %r" % h)

    log("HTTP/1.1 pipelining past the connection share in one burst")
    n, body = 320, ROW * 1500  # 320 x 31.5 KB = 10 MB > the 6.4 MB share
    req = (b"POST /endpoints/km/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Accept: text/csv\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    threading.Thread(target=lambda: s.sendall(req * n), daemon=True).start()
    got, buf, t0 = 0, b"", time.time()
    while got < n and time.time() - t0 < 30:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
        # count whole answers: each holds 1500 lines after its head
        while True:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                break
            head = buf[:i].decode("latin-1")
            cl = [int(x.split(":")[1]) for x in head.split("\r\n")
                  if x.lower().startswith("content-length:")]
            if not cl or len(buf) < i + 4 + cl[0]:
                break
            if not head.startswith("HTTP/1.1 200"):
                check(False, "pipelined answer %d: %s" % (got, head[:40]))
            buf = buf[i + 4 + cl[0]:]
            got += 1
    s.close()
    check_eq(got, n, "pipelining 10 MB past a 6.4 MB share: every request answered in %.1f s"
             % (time.time() - t0))

    log("h2: 12 streams x 1 MiB bodies over one connection")
    c = H2Client(port)
    sids = []
    big = (b",".join([b"1.0000000000"] * 10) + b"\n") * 8000
    # ~1 MiB of 8000 rows (the decoded-features budget refuses 16385+ rows)
    for i in range(12):
        sids.append(c.open("/endpoints/km/invocations",
                           headers=[("content-type", "text/csv"), ("accept", "text/csv")]))
    deadline = time.time() + 40
    left = {sid: 0 for sid in sids}
    while left and time.time() < deadline and not c.closed:
        for sid in list(left):
            left[sid] += c.send(sid, big[left[sid]:], end=True)
            if left[sid] >= len(big) or c.done(sid):
                del left[sid]
        c.pump(0.05)
    for sid in sids:
        c.wait(sid, timeout=max(1, deadline - time.time()))
    ok = [sid for sid in sids if sid in c.ended and c.data[sid].count(b"\n") == 8000]
    refused = [sid for sid in sids if sid in c.ended and
               c.headers.get(sid, {}).get(":status", "")[:1] in ("4", "5")]
    # over the share a stream is refused with an answer (the connection's
    # limit, the features budget): never left hanging, never reset
    log("12 x 1 MiB: %d ok, %d refused with an answer" % (len(ok), len(refused)))
    check(len(ok) + len(refused) == 12 and len(ok) >= 1 and not c.resets and not c.closed,
          "12 x 1 MiB streams over one connection: each answered (ok %d, refused %d), "
          "resets %r" % (len(ok), len(refused), c.resets))
    c.close()
    check(gw.alive(), "the gateway is alive")

finish()
