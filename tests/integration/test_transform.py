"""POST /transform/NAME: a duplex stream of rows in and predictions out, in
input order, while the client is still sending; HTTP/2 (curl, nghttp, a
python-h2 client that reads as it sends) and HTTP/1.1 chunked both ways.
Joins, filters, bad rows in both error modes, option errors, backpressure
(a client that does not read is held back by flow control, the gateway's
memory stays flat), a client that resets mid-stream, unary requests served
beside a stream, and the container upstream."""

import json
import os
import socket
import subprocess
import tempfile
import threading
import time

from iglib import (DEMO_MODEL, FakeContainer, Gateway, H2Client, check, check_eq, csv_body,
                   curl, digits_rows, expected_body, finish, load_model, predict, rss_kb, run,
                   uses_asan)

model = load_model(DEMO_MODEL)
tmp = tempfile.mkdtemp(prefix="ig-ts-")
ROWS = digits_rows()


def wfile(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def stream(gw, body, headers=(), http2=True, endpoint="demo", chunked=False):
    """POST body to /transform/endpoint with curl -> (rc, status, headers, body bytes)."""
    bf = wfile("body-%f" % time.time(), body)
    hf, of = bf + ".head", bf + ".out"
    cmd = ["curl", "-sS", "-D", hf, "-o", of, "-X", "POST"]
    cmd += ["--http2-prior-knowledge"] if http2 else ["--http1.1"]
    # -T streams the file; with chunked, as Transfer-Encoding: chunked
    cmd += ["-T", bf] if chunked or http2 else ["--data-binary", "@" + bf]
    if chunked:
        cmd += ["-H", "Transfer-Encoding: chunked"]
    for h in headers:
        cmd += ["-H", h]
    p = subprocess.run(cmd + ["%s/transform/%s" % (gw.url, endpoint)], capture_output=True,
                       timeout=300)
    head = open(hf, newline="").read() if os.path.exists(hf) else ""
    blocks = [b for b in head.split("\r\n\r\n") if b.strip()]
    lines = [l for l in (blocks[-1] if blocks else "").split("\r\n") if l]
    status = int(lines[0].split()[1]) if lines else 0
    hdrs = {l.partition(":")[0].strip().lower(): l.partition(":")[2].strip() for l in lines[1:]}
    out = open(of, "rb").read() if os.path.exists(of) else b""
    return p.returncode, status, hdrs, out


def per_row(rows, accept):
    """What the stream answers: one line per row, the endpoint's answer for
    that row alone (JSON: {"predictions":[p]})."""
    if accept == "application/json":
        return "".join(expected_body(model, [r], accept) + "\n" for r in rows)
    return expected_body(model, rows, accept)


def unary(gw, rows, accept):
    """The unary endpoint's answer for many rows, in pieces (the reference
    for streams too long to compute here)."""
    out = []
    for i in range(0, len(rows), 2000):
        st, _, body = curl(gw.invoke_url("demo"), csv_body(rows[i:i + 2000]),
                           ["Content-Type: text/csv", "Accept: " + accept], http2=True)
        check_eq(st, 200, "unary reference call")
        out.append(body)
    return "".join(out)


def metric(gw, name):
    """The first sample of <name> (a name, or a name with its labels)."""
    st, _, body = curl(gw.url + "/metrics", b"", method="GET")
    for line in body.splitlines():
        if line.startswith(name + " ") or ("{" not in name and line.startswith(name + "{")):
            return float(line.rsplit(" ", 1)[1])
    return None



small = ROWS[:40]
fc_log = os.path.join(tmp, "fc")
os.makedirs(fc_log, exist_ok=True)

with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000},
              "slow": {"model": "http://127.0.0.1:1", "max_batch_rows": 64}}) as gw:
    # ---- the basics, over each client and protocol ----------------------
    body = csv_body(small)
    for accept in ("text/csv", "application/jsonlines", "application/json"):
        for http2 in (True, False):
            rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv", "Accept: " + accept],
                                     http2=http2, chunked=not http2)
            check_eq((rc, st, hd.get("content-type"), out.decode()),
                     (0, 200, accept, per_row(small, accept)),
                     "%s over %s: one line per row, the model's math, in order"
                     % (accept, "h2" if http2 else "h1 chunked"))
    # HTTP/1.1 with Content-Length (not chunked) streams too.
    rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv", "Accept: text/csv"], http2=False)
    check_eq((st, hd.get("transfer-encoding"), out.decode()),
             (200, "chunked", per_row(small, "text/csv")),
             "h1 with Content-Length: a chunked response with the predictions")

    # nghttp reads it too.
    bf = wfile("ng.csv", body)
    p = run(["nghttp", "-d", bf, "-H", "content-type: text/csv", "-H", "accept: text/csv",
             gw.url + "/transform/demo"])
    check_eq(p.stdout.decode(), per_row(small, "text/csv"), "nghttp: the exact predictions")

    # CRLF lines, blank lines, no LF at the end.
    crlf = "\r\n".join(",".join("%g" % v for v in r) for r in small[:5]) + "\r\n\r\n\n"
    crlf += ",".join("%g" % v for v in small[5])
    rc, st, hd, out = stream(gw, crlf, ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq(out.decode(), per_row(small[:6], "text/csv"),
             "CRLF, blank lines skipped, a last line without LF: 6 predictions")

    # JSON Lines and JSON input: one JSON row per line.
    jl = "".join(json.dumps(r) + "\n" for r in small[:10])
    for ct in ("application/jsonlines", "application/json"):
        rc, st, hd, out = stream(gw, jl, ["Content-Type: " + ct, "Accept: application/jsonlines"])
        check_eq(out.decode(), per_row(small[:10], "application/jsonlines"),
                 "%s input, one row per line" % ct)

    # ---- a long stream: every prediction, in order ----------------------
    many = ROWS * 60  # ~100k rows, ~16 MB
    rc, st, hd, out = stream(gw, csv_body(many), ["Content-Type: text/csv", "Accept: text/csv"])
    ref = unary(gw, ROWS, "text/csv") * 60
    check_eq((rc, st, len(out.splitlines())), (0, 200, len(many)),
             "a %d-row stream over h2: one line per row" % len(many))
    check(out.decode() == ref, "a %d-row stream: every prediction equals the unary answer, "
          "in input order" % len(many))
    rc, st, hd, out = stream(gw, csv_body(many), ["Content-Type: text/csv", "Accept: text/csv"],
                             http2=False, chunked=True)
    check(rc == 0 and out.decode() == ref, "the same over HTTP/1.1 chunked both ways")

    # ---- joins and filters ----------------------------------------------
    rows5 = small[:5]
    lines5 = [",".join("%g" % v for v in r) for r in rows5]
    preds5 = [predict(model, r) for r in rows5]
    rc, st, hd, out = stream(gw, "\n".join(lines5) + "\n",
                             ["Content-Type: text/csv", "Accept: text/csv", "X-Infergate-Join: input"])
    check_eq(out.decode(), "".join("%s,%s\n" % (l, p[1]) for l, p in zip(lines5, preds5)),
             "CSV join: the input row, then its prediction")
    # input filter: drop the first column (an id) before the model sees it
    idl = ["id%d,%s" % (i, l) for i, l in enumerate(lines5)]
    rc, st, hd, out = stream(gw, "\n".join(idl) + "\n",
                             ["Content-Type: text/csv", "Accept: text/csv",
                              "X-Infergate-Input-Filter: $[1:]", "X-Infergate-Join: input",
                              "X-Infergate-Output-Filter: $[0,-1]"])
    check_eq(out.decode(), "".join("id%d,%s\n" % (i, p[1].split(",")[-1])
                                   for i, p in enumerate(preds5)),
             "CSV: input filter $[1:], join, output filter $[0,-1]: the id and the distance")
    # JSON objects: the row under features, joined with SageMakerOutput
    objs = ['{"id":%d,"features":%s}' % (i, json.dumps(r)) for i, r in enumerate(rows5)]
    rc, st, hd, out = stream(gw, "\n".join(objs) + "\n",
                             ["Content-Type: application/jsonlines", "Accept: application/jsonlines",
                              "X-Infergate-Input-Filter: $.features", "X-Infergate-Join: input"])
    check_eq(out.decode(), "".join('%s,"SageMakerOutput":%s}\n' % (o[:-1], p[0])
                                   for o, p in zip(objs, preds5)),
             "JSON Lines: input filter $.features, join: the object with SageMakerOutput")
    rc, st, hd, out = stream(gw, "\n".join(objs) + "\n",
                             ["Content-Type: application/jsonlines", "Accept: application/jsonlines",
                              "X-Infergate-Input-Filter: $.features", "X-Infergate-Join: input",
                              "X-Infergate-Output-Filter: $.SageMakerOutput.closest_cluster"])
    check_eq(out.decode(), "".join("%s\n" % json.loads(p[0])["closest_cluster"] for p in preds5)
             .replace(".0\n", ".0\n"),
             "JSON Lines: output filter $.SageMakerOutput.closest_cluster")
    arr = "".join(json.dumps(r) + "\n" for r in rows5)
    rc, st, hd, out = stream(gw, arr, ["Content-Type: application/json", "Accept: application/json",
                                       "X-Infergate-Join: input"])
    check_eq(out.decode(), "".join('{"SageMakerInput":%s,"SageMakerOutput":{"predictions":[%s]}}\n'
                                   % (json.dumps(r), p[0]) for r, p in zip(rows5, preds5)),
             "JSON arrays joined: SageMakerInput and SageMakerOutput (the endpoint's answer)")

    # ---- bad rows mid-stream --------------------------------------------
    bad = lines5[:2] + ["1,2,3", "x" + lines5[2]] + lines5[2:]
    rc, st, hd, out = stream(gw, "\n".join(bad) + "\n", ["Content-Type: text/csv",
                                                         "Accept: text/csv"])
    check_eq(out.decode(),
             "%s\n%s\nerror,3,ValidationError,\"Row 3: expected 64 features, found 3.\"\n"
             "error,4,ValidationError,\"Row 4, column 1: 'x%s' is not a number.\"\n%s\n%s\n%s\n"
             % (preds5[0][1], preds5[1][1], lines5[2].split(",")[0], preds5[2][1], preds5[3][1],
                preds5[4][1]),
             "errors inline (the default): an error record names each bad row, the rest go on")
    rc, st, hd, out = stream(gw, "\n".join(bad) + "\n", ["Content-Type: text/csv",
                                                         "Accept: application/jsonlines"])
    recs = [json.loads(l) for l in out.decode().splitlines()]
    check_eq(recs[2], {"error": {"row": 3, "type": "ValidationError",
                                 "message": "Row 3: expected 64 features, found 3."}},
             "a JSON error record: row, type, message")
    # abort: the good predictions, then RST_STREAM(INTERNAL_ERROR)
    bf = wfile("abort.csv", "\n".join(bad) + "\n")
    p = run(["nghttp", "-v", "-d", bf, "-H", "content-type: text/csv", "-H", "accept: text/csv",
             "-H", "x-infergate-errors: abort", gw.url + "/transform/demo"])
    text = p.stdout.decode()
    check("%s\n%s\n" % (preds5[0][1], preds5[1][1]) in text and "error," not in text and
          "recv RST_STREAM frame" in text and "error_code=INTERNAL_ERROR" in text and
          "END_STREAM" not in text.split("recv RST_STREAM")[0].split(":status")[-1],
          "errors abort over h2: the 2 good predictions, then RST_STREAM(INTERNAL_ERROR)")
    rc, st, hd, out = stream(gw, "\n".join(bad) + "\n", ["Content-Type: text/csv",
                                                         "Accept: text/csv", "X-Infergate-Errors: abort"],
                             http2=False, chunked=True)
    check(rc != 0 and out.decode() == "%s\n%s\n" % (preds5[0][1], preds5[1][1]),
          "errors abort over h1: the good predictions, then the chunked body cut (curl rc %d)" % rc)
    # an over-long line is refused alone and skipped
    long_body = lines5[0] + "\n" + "9" * (2 << 20) + "\n" + lines5[1] + "\n"
    rc, st, hd, out = stream(gw, long_body, ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq(out.decode(), "%s\nerror,2,ValidationError,\"Row 2: the record is longer than "
             "524288 bytes.\"\n%s\n" % (preds5[0][1], preds5[1][1]),
             "a 2 MiB line: refused alone (row 2), the stream goes on")

    # ---- options and routes that are refused before the stream ------------
    for hdrs, want in [
        (["X-Infergate-Join: output"], 'X-Infergate-Join: "output" is not input or none.'),
        (["X-Infergate-Errors: ignore"], 'X-Infergate-Errors: "ignore" is not inline or abort.'),
        (["X-Infergate-Join: input", "Accept: application/json"],
         "X-Infergate-Join: input needs CSV output for CSV input and JSON output for JSON input "
         "(Content-Type text/csv, Accept application/json)."),
        (["X-Infergate-Output-Filter: $.a"],
         "X-Infergate-Output-Filter: $.a selects a member; CSV records have only columns."),
    ]:
        if not any(h.startswith("Accept:") for h in hdrs):
            hdrs = hdrs + ["Accept: text/csv"]
        rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv"] + hdrs)
        check_eq((st, hd.get("x-amzn-errortype"), json.loads(out or b"{}").get("message")),
                 (400, "ValidationError", want), "refused: %s" % hdrs)
    rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv",
                                        "X-Infergate-Input-Filter: $[1:x]"])
    check(st == 400 and json.loads(out)["message"].startswith("X-Infergate-Input-Filter: "),
          "a malformed filter: 400 naming the header (%s)" % out[:200])
    rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv"], endpoint="nope")
    check_eq((st, json.loads(out)), (400, {"message": "Endpoint nope of account 000000000000 not found."}),
             "unknown endpoint: 400 ValidationError")
    rc, st, hd, out = stream(gw, body, ["Content-Type: image/png"])
    check(st == 400 and "Content type image/png" in out.decode(), "unsupported Content-Type: 400")
    rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv"], http2=False, chunked=True,
                             endpoint="nope")
    check_eq(st, 400, "unknown endpoint over h1 chunked: 400 (the connection closes after)")

    # ---- full duplex: predictions come back while the client still sends -
    c = H2Client(gw.port)
    sid = c.open("/transform/demo", [("content-type", "text/csv"), ("accept", "text/csv")])
    got_early = True
    for i, r in enumerate(small[:10]):
        line = ",".join("%g" % v for v in r) + "\n"
        # a row split over two DATA frames, the halves apart in time
        c.send(sid, line[:7].encode())
        time.sleep(0.02)
        c.send(sid, line[7:].encode())
        deadline = time.time() + 5
        while c.data[sid].count(b"\n") < i + 1 and time.time() < deadline:
            c.pump(0.2)
        got_early &= c.data[sid].count(b"\n") == i + 1
    c.send(sid, b"", end=True)
    deadline = time.time() + 5
    while sid not in c.ended and time.time() < deadline:
        c.pump(0.2)
    check(got_early, "duplex: each row's prediction came back before the next row was sent "
          "(rows split across DATA frames)")
    check_eq((c.data[sid].decode(), sid in c.ended), (per_row(small[:10], "text/csv"), True),
             "duplex: the exact predictions, then END_STREAM")
    c.close()

    # h1 duplex over a raw socket: chunked request, chunked answer as it goes
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
              b"Accept: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
    line = (",".join("%g" % v for v in small[0]) + "\n").encode()
    s.sendall(b"%x\r\n%s\r\n" % (len(line), line))
    got = b""
    deadline = time.time() + 5
    while preds5[0][1].encode() not in got and time.time() < deadline:
        got += s.recv(65536)
    check(got.startswith(b"HTTP/1.1 200 OK\r\n") and b"Transfer-Encoding: chunked" in got and
          preds5[0][1].encode() in got,
          "h1 duplex: the first prediction arrives while the request body is still open")
    s.sendall(b"0\r\n\r\n")
    while not got.endswith(b"0\r\n\r\n") and time.time() < deadline:
        got += s.recv(65536)
    check(got.endswith(b"\r\n0\r\n\r\n"), "h1 duplex: the last chunk after the body ended")
    s.close()

    # ---- backpressure: a client that does not read ------------------------
    pid = gw.proc.pid
    asan = uses_asan(pid)
    rss_before = rss_kb(pid)
    c = H2Client(gw.port)
    sid = c.open("/transform/demo", [("content-type", "text/csv"), ("accept", "application/json")])
    chunk = csv_body(ROWS).encode()
    sent = 0
    stuck = 0
    t0 = time.time()
    while time.time() - t0 < 20 and stuck < 10:
        n = c.send(sid, chunk[sent % len(chunk):] if sent % len(chunk) else chunk)
        sent += n
        if n == 0:
            stuck += 1
        c.pump(0.1, consume=False)
    rss_stuck = rss_kb(pid)
    check(stuck >= 10 and sent < 64 << 20,
          "a client that never reads is stopped by flow control after %d bytes (< 64 MiB)" % sent)
    # ASan's quarantine keeps freed memory resident: a wider bound there
    limit = (64 + (384 if asan else 0)) * 1024
    check(rss_stuck - rss_before < limit, "the gateway's RSS grew by %d KB while the client "
          "pushed (under %d KB%s)" % (rss_stuck - rss_before, limit, " with ASan" if asan else ""))
    # another client is served meanwhile
    st, _, out = curl(gw.invoke_url("demo"), csv_body(small[:3]),
                      ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, expected_body(model, small[:3], "text/csv")),
             "a unary request is answered while the stalled stream holds its window")
    c.reset(sid)
    c.close()

    # ---- a client that resets mid-stream ------------------------------------
    for k in range(3):
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", [("content-type", "text/csv")])
        c.send(sid, chunk[:200000])
        c.pump(0.2)
        c.reset(sid)
        c.close()
    time.sleep(0.5)
    held = metric(gw, "infergate_buffered_bytes")
    check(held is not None and held < 64 * 1024,
          "after resets mid-stream nothing stays held (%s bytes)" % held)
    rc, st, hd, out = stream(gw, body, ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq(out.decode(), per_row(small, "text/csv"), "streams are served after the resets")

    # ---- unary requests beside a long stream --------------------------------
    results = []

    def long_stream():
        results.append(stream(gw, csv_body(ROWS * 30), ["Content-Type: text/csv",
                                                         "Accept: text/csv"]))

    th = threading.Thread(target=long_stream)
    th.start()
    oks = 0
    for i in range(20):
        st, _, out = curl(gw.invoke_url("demo"), csv_body(small[i:i + 2]),
                          ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
        oks += st == 200 and out == expected_body(model, small[i:i + 2], "text/csv")
    th.join()
    check_eq(oks, 20, "20 unary requests answered exactly while a 50k-row stream runs")
    check(results and results[0][3].decode() == ref[:len(ref) // 2],
          "the stream beside them: every prediction, in order")

    # ---- the stream metrics ------------------------------------------------
    check_eq((metric(gw, 'infergate_transform_streams{endpoint="demo"}'),
              metric(gw, 'infergate_transform_error_records_total{endpoint="demo"}') >= 6,
              metric(gw, 'infergate_transform_streams_total{endpoint="demo"}') >= 30),
             (0.0, True, True),
             "/metrics: no stream open now; error records and streams counted")

    # ---- a model that is down: every row gets its error record --------------
    rc, st, hd, out = stream(gw, "1,2\n3,4\n", ["Content-Type: text/csv", "Accept: text/csv"],
                             endpoint="slow")
    text = out.decode()
    check(st == 200 and text.count("\n") == 2 and text.startswith("error,1,") and
          "\nerror,2," in text,
          "an upstream that cannot be reached: an error record per row (%s)" % text[:300])

# ---- rows of streams and unary requests share batches ---------------------------
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 1000,
                       "max_delay_us": 400000}}) as gw:
    clients = []
    for k in range(3):
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", [("content-type", "text/csv"), ("accept", "text/csv")])
        c.send(sid, csv_body(small[k * 5:k * 5 + 5]).encode())
        clients.append((c, sid))
    unary_out = []

    def one(i):
        unary_out.append((i, curl(gw.invoke_url("demo"), csv_body(small[20 + i:21 + i]),
                                  ["Content-Type: text/csv", "Accept: text/csv"], http2=True)))

    ths = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    for c, sid in clients:
        c.send(sid, b"", end=True)
        c.wait(sid, 10)
    check_eq([c.data[sid].decode() for c, sid in clients],
             [per_row(small[k * 5:k * 5 + 5], "text/csv") for k in range(3)],
             "3 streams of 5 rows: each its predictions")
    check_eq(sorted((i, st, out) for i, (st, _, out) in unary_out),
             [(i, 200, expected_body(model, small[20 + i:21 + i], "text/csv")) for i in range(5)],
             "5 unary requests beside them: each its prediction")
    st, _, body = curl(gw.url + "/metrics", b"", method="GET")
    batches = sorted(l for l in body.splitlines() if l.startswith("infergate_batches_total{"))
    check_eq(batches, ['infergate_batches_total{endpoint="demo",reason="%s"} %d' % (r, r == "delay")
                       for r in ("bytes", "delay", "drain", "rows")],
             "the 15 stream rows and 5 unary rows went upstream in one batch")
    for c, _ in clients:
        c.close()

# ---- SIGTERM mid-stream: the rows taken are answered, then the stream ends ----
gw = Gateway({"demo": {"model": DEMO_MODEL}}, drain_timeout_ms=3000)
c = H2Client(gw.port)
sid = c.open("/transform/demo", [("content-type", "text/csv"), ("accept", "text/csv")])
c.send(sid, csv_body(small[:20]).encode())
deadline = time.time() + 5
while c.data[sid].count(b"\n") < 20 and time.time() < deadline:
    c.pump(0.2)
t0 = time.time()
gw.proc.send_signal(15)
c.wait(sid, 10)
code = gw.proc.wait(timeout=30)
check_eq((c.data[sid].decode(), c.resets.get(sid), code),
         (per_row(small[:20], "text/csv"), 2, 0),
         "SIGTERM while a client still sends: its 20 rows answered, then RST_STREAM("
         "INTERNAL_ERROR), exit 0")
check(1.4 < time.time() - t0 < 5, "the stream had half of drain_timeout_ms (3 s) to finish, "
      "then the drain went on without its client (%.1f s)" % (time.time() - t0))
c.close()

# ---- backpressure: a slow model and a fast client -----------------------------
# The container answers a call in 20 ms (at most 2 calls of 50 rows out: about
# 5,000 rows/s); the client pushes rows as fast as flow control lets it for 4 s.
# It must be held to the model's pace (what it could send: the rows answered plus
# the windows), and the gateway's memory must not grow with what it pushed.
with FakeContainer("--latency-us", "20000", model=DEMO_MODEL, logdir=fc_log) as fc, \
        Gateway({"demo": {"model": "http://127.0.0.1:%d" % fc.port, "max_batch_rows": 50,
                          "max_inflight": 2}}) as gw:
    pid = gw.proc.pid
    asan = uses_asan(pid)
    rss0 = rss_kb(pid)
    c = H2Client(gw.port)
    sid = c.open("/transform/demo", [("content-type", "text/csv"), ("accept", "text/csv")])
    chunk = csv_body(ROWS).encode()
    sent, t0 = 0, time.time()
    while time.time() - t0 < 4:
        sent += c.send(sid, chunk[sent % len(chunk):])
        c.pump(0.01)
    answered = c.data[sid].count(b"\n")
    rss1 = rss_kb(pid)
    limit = (32 + (256 if asan else 0)) * 1024
    check(answered > 1000 and sent < answered * (len(chunk) / len(ROWS)) + (4 << 20),
          "a fast client beside a slow model is held to the model's pace: %d bytes sent for %d "
          "rows answered (at most their bytes + 4 MiB of windows)" % (sent, answered))
    check(rss1 - rss0 < limit, "... and the gateway's RSS grew by %d KB (under %d KB%s)"
          % (rss1 - rss0, limit, " with ASan" if asan else ""))
    c.reset(sid)
    c.close()

# ---- the container upstream: rows forwarded as bytes ------------------------
with FakeContainer(model=DEMO_MODEL, logdir=fc_log) as fc, \
        Gateway({"demo": {"model": "http://127.0.0.1:%d" % fc.port, "max_batch_rows": 50}}) as gw:
    rc, st, hd, out = stream(gw, csv_body(ROWS), ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq((st, out.decode()), (200, expected_body(model, ROWS, "text/csv")),
             "container upstream: %d rows streamed, the container's math, in order" % len(ROWS))
    check(fc.calls() >= len(ROWS) // 50, "container upstream: the rows went in batches of at "
          "most 50 (%d calls)" % fc.calls())

finish()
