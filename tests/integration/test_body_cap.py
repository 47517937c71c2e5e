"""The server-wide budget (max_buffered_body_bytes) counts request bodies as
their bytes arrive. Partial uploads that declare large lengths and send
little hold little: a large body beside them is served (issue 13 point 1:
a declared Content-Length used to be reserved whole). Once the uploads have
really sent most of their bytes, a large body does not fit beside them and
gets 400 ThrottlingException as it grows, over HTTP/1.1 and HTTP/2, while a
small request still gets its predictions; once the uploads are gone, the
same large request is served."""

import json
import os
import re
import socket
import tempfile
import time

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   expected_body, finish, load_model, read_head, run)

CAP = 1048576
UPLOAD = 300000  # each partial upload declares UPLOAD bytes
NUPLOADS = 3
UNIT = 4096      # requests are charged in steps of this

demo = load_model(DEMO_MODEL)
small_rows = digits_rows(2)
small = csv_body(small_rows)
big_rows = digits_rows(1000)
big = csv_body(big_rows)
tmp = tempfile.mkdtemp(prefix="ig-cap-")
big_path = os.path.join(tmp, "big.csv")
with open(big_path, "w") as f:
    f.write(big)
throttled = json.dumps({"message": "The gateway is holding its limit of %d bytes for clients; "
                        "retry later." % CAP}, separators=(",", ":"))

# The premise: the big body fits alone, not beside the uploads once they sent
# almost all (each then holds UPLOAD + 1 bytes of body, and its header block,
# in 4 KiB units); the small one does. Beside uploads that sent only 1000
# bytes each, everything fits.
free = CAP - NUPLOADS * (UPLOAD + 1 + UNIT)
check(len(big) + 1 > free and len(big) + 1 + UNIT <= CAP,
      "big body (%d bytes) fits only alone" % len(big))
check(len(small) + 1 + UNIT <= free, "small body fits beside the uploads")
check(len(big) + 1 + UNIT <= CAP - NUPLOADS * 2 * UNIT, "big body fits beside declared lengths")


TEXT_CSV = ("Content-Type: text/csv",)


def nghttp(url, body_path):
    """POST over h2 with nghttp, which reads a response that comes while it is
    still uploading (curl 7.88 reports that as error 92, curl#986).
    -> (status, headers dict, body text: content-length bytes from where the
    body starts in the -v trace, where nghttp writes it)."""
    r = run(["nghttp", "-v", "-H", "content-type: text/csv", "-d", body_path, url])
    v = r.stdout.decode("utf-8", "replace")
    hdrs = dict(re.findall(r"recv \(stream_id=\d+(?:, sensitive)?\) ([^:\s][^:]*|:status): (.*)", v))
    status = int(hdrs.pop(":status", 0))
    n = int(hdrs.get("content-length", 0))
    start = v.find("; First response header\n")
    body = v[start + 24:start + 24 + n] if start >= 0 else ""
    return status, hdrs, body


def partial_upload(port):
    """Headers declaring UPLOAD bytes, then part of the body; returns the socket
    once the gateway has taken the request (its 100 Continue came)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("POST /endpoints/demo/invocations HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: text/csv\r\nExpect: 100-continue\r\n"
               "Content-Length: %d\r\n\r\n" % UPLOAD).encode())
    check_eq(read_head(s), b"HTTP/1.1 100 Continue\r\n\r\n", "partial upload: 100 Continue")
    s.sendall(b"0" * 1000)
    return s


def metric(gw, name):
    """One unlabelled sample of the gateway's /metrics."""
    r = run(["curl", "-sS", "-m", "5", gw.url + "/metrics"])
    m = re.search(r"^%s (\d+)" % re.escape(name), r.stdout.decode(), re.M)
    return int(m.group(1)) if m else None


def wait_metric(gw, name, pred, what):
    deadline = time.time() + 5
    v = None
    while time.time() < deadline:
        v = metric(gw, name)
        if v is not None and pred(v):
            break
        time.sleep(0.05)
    check(v is not None and pred(v), "%s (%s = %r)" % (what, name, v))
    return v


def close_upload(s):
    """Half-close and wait for the gateway to close: it frees the request
    (and its reservation) before it closes the socket."""
    s.shutdown(socket.SHUT_WR)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


with Gateway({"demo": {"model": DEMO_MODEL}}, max_buffered_body_bytes=str(CAP),
             max_body_bytes=str(CAP)) as gw:
    url = gw.invoke_url("demo")
    small_path = os.path.join(tmp, "small.csv")
    with open(small_path, "w") as f:
        f.write(small)

    uploads = [partial_upload(gw.port) for _ in range(NUPLOADS)]
    # declared lengths reserve nothing: 1000 bytes each came (1024 held)
    wait_metric(gw, "infergate_buffered_body_bytes", lambda v: v == NUPLOADS * 1024,
                "declared lengths: only the bytes that came are held")
    held = metric(gw, "infergate_buffered_bytes")
    check(held is not None and held <= NUPLOADS * 2 * UNIT,
          "declared lengths: the budget holds %r bytes for %d uploads" % (held, NUPLOADS))
    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        st, hd, out = curl(url, "@" + big_path, TEXT_CSV, h2)
        check_eq((st, hd.get("x-amzn-errortype")), (200, None),
                 p + "big body beside declared lengths: 200")
        check(out == expected_body(demo, big_rows), p + "big body beside declared lengths: "
              "predictions")

    # now the uploads send all but their last byte: they hold it
    for s in uploads:
        s.sendall(b"0" * (UPLOAD - 1000 - 1))
    wait_metric(gw, "infergate_buffered_body_bytes", lambda v: v == NUPLOADS * (UPLOAD + 1),
                "uploads that sent their bytes hold them")

    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        st, hd, out = nghttp(url, big_path) if h2 else curl(url, "@" + big_path, TEXT_CSV, h2)
        check_eq((st, hd.get("x-amzn-errortype"), hd.get("content-type")),
                 (400, "ThrottlingException", "application/json"),
                 p + "big body beside the uploads: status and error type")
        check_eq(out, throttled, p + "big body beside the uploads: body")
        st, hd, out = curl(url, "@" + small_path, TEXT_CSV, h2)
        check_eq((st, out), (200, expected_body(demo, small_rows)),
                 p + "small body beside the uploads: predictions")

    for s in uploads:
        close_upload(s)
    check(gw.alive(), "alive after the uploads went")

    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        st, hd, out = curl(url, "@" + big_path, TEXT_CSV, h2)
        check_eq((st, hd.get("x-amzn-errortype")), (200, None), p + "big body once alone: 200")
        check(out == expected_body(demo, big_rows), p + "big body once alone: predictions")

finish()
