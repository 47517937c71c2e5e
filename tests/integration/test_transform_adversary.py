"""Adversarial cases for POST /transform/NAME (the duplex streaming transform):
clients that stall, trickle, never end a line, never read, flood one
connection with streams, reset or vanish while batches are in flight,
speak odd HTTP/1.x (bogus chunk sizes, extensions, trailers, pipelining,
HTTP/1.0, Expect), play flow-control games, or meet a SIGTERM; hostile
records (over-long lines at the cap, millions of blank lines, rows whose
prediction overflows, deep or big JSON, JSONPath filters on hostile input);
a container upstream that is slow, fails or never answers.

Each case asserts what a demanding client expects: every non-blank line
gets exactly one output line, in order (a prediction or an error record
naming its line); a stream that does not move is cut within
idle_timeout_ms; memory and the budgets stay bounded; other clients are
served; nothing is left held afterwards; the gateway never crashes (run it
also with INFERGATE_BIN=build/san/infergate).

Some cases fail on purpose against the code they were written for (HEAD
399796a): they document bugs left for the transform's owner to fix:
- a stream holding a partial line (no LF) is never cut by the stall rule
  (h2 and h1), so such streams lock out max_connections and hold the memory
  budget forever;
- a line just over the 512 KiB cap swallows the lines that came with it (and
  the next one); with the stream's end in the same read the cap is not
  applied at all;
- h1: a bogus chunk framing mid-stream writes a 400 into the chunked body and
  frees the request under the stream (ASan: heap-use-after-free);
- streams that do not read hold far more than the budgets (per stream 1 MiB
  of output, times the streams of a connection); partial lines too.
A run prints "output flood" and "partial lines" lines with what was measured."""

import json
import os
import signal
import socket
import struct
import tempfile
import threading
import time

import h2.exceptions

from iglib import (DEMO_MODEL, FakeContainer, Gateway, H2Client, check, check_eq, csv_body,
                   curl, digits_rows, finish, h2_frame, h2_split, load_model, predict, rss_kb,
                   stop_proc, uses_asan)

T0 = time.time()
model = load_model(DEMO_MODEL)
tmp = tempfile.mkdtemp(prefix="ig-tsadv-")
ROWS = digits_rows(400)
LINES = [",".join("%g" % v for v in r) for r in ROWS]
PRED = [predict(model, r) for r in ROWS]  # (json, csv)
IDLE_MS = 1000
CUT_WITHIN = IDLE_MS / 1000.0 * 2 + 1.0  # the stall rule's period, a timer tick, slack
CSV = [("content-type", "text/csv"), ("accept", "text/csv")]
JL = [("content-type", "application/jsonlines"), ("accept", "application/jsonlines")]


def csv_preds(idx):
    return "".join(PRED[i][1] + "\n" for i in idx)


def model_file(name, obj):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


# K-Means whose centroids sit at +-1e308: a row near one centroid is finite,
# a row at the origin overflows the distance (a per-row ModelError).
KM = model_file("km", {"algorithm": "kmeans", "feature_dim": 2,
                       "centroids": [[-1e308, 0], [1e308, 0]]})
KM_WHY = "the model's output is not finite (overflow in the K-Means distance)."


def metric(gw, name):
    st, _, body = curl(gw.url + "/metrics", b"", method="GET")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def settle_metric(gw, name, limit, timeout=3.0):
    """Poll <name> until it is at most <limit> (or <timeout> passes); its value."""
    deadline = time.time() + timeout
    v = metric(gw, name)
    while (v is None or v > limit) and time.time() < deadline:
        time.sleep(0.1)
        v = metric(gw, name)
    return v


def h2_stream(gw, body, headers=CSV, path="/transform/demo", timeout=20):
    """One stream, the whole body sent (reading as it goes) -> (status, body bytes, how it
    ended: 'end', 'rst:CODE', 'goaway', 'closed' or 'open')."""
    c = H2Client(gw.port)
    sid = c.open(path, headers, end=len(body) == 0)
    if body:
        c.send_all(sid, body)
    c.wait(sid, timeout)
    how = ("end" if sid in c.ended else "rst:%d" % c.resets[sid] if sid in c.resets
           else "closed" if c.closed else "open")
    st = int(c.headers.get(sid, {}).get(":status", 0))
    c.close()
    return st, c.data.get(sid, b""), how


def h2_parts(gw, parts, headers=CSV, path="/transform/demo", gap=0.4, timeout=20):
    """Like h2_stream, the body sent as <parts> <gap> s apart (the stream ends with the
    last one): what comes in one part reaches the gateway together."""
    c = H2Client(gw.port)
    sid = c.open(path, headers)
    for i, part in enumerate(parts):
        c.send_all(sid, part, end=i == len(parts) - 1)
        t = time.time()
        while time.time() - t < gap:
            c.pump(0.05)
    c.wait(sid, timeout)
    how = ("end" if sid in c.ended else "rst:%d" % c.resets[sid] if sid in c.resets
           else "closed" if c.closed else "open")
    st = int(c.headers.get(sid, {}).get(":status", 0))
    c.close()
    return st, c.data.get(sid, b""), how


def h1_raw(port, raw, timeout=5, pieces=None):
    """Send <raw> (or the <pieces>, 0.05 s apart) on a new connection; read until
    EOF or <timeout> s without a byte -> (bytes, eof?)."""
    s = socket.create_connection(("127.0.0.1", port))
    for p in (pieces or [raw]):
        s.sendall(p)
        if pieces:
            time.sleep(0.05)
    s.settimeout(timeout)
    got, eof = b"", False
    try:
        while True:
            b = s.recv(65536)
            if not b:
                eof = True
                break
            got += b
    except socket.timeout:
        pass
    except OSError:
        eof = True
    s.close()
    return got, eof


def dechunk(body):
    """A chunked body -> (payload, complete? i.e. ended by the last chunk)."""
    out, p = b"", 0
    while True:
        nl = body.find(b"\r\n", p)
        if nl < 0:
            return out, False
        try:
            size = int(body[p:nl].split(b";")[0], 16)
        except ValueError:  # not chunked framing (e.g. another status line)
            return out, False
        if size == 0:
            return out, True
        out += body[nl + 2:nl + 2 + size]
        p = nl + 2 + size + 2


def h1_split(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


# =============================================================================
# Gateway 1: the local K-Means models, idle_timeout_ms small.
# =============================================================================
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000},
              "km": {"model": KM, "max_batch_rows": 64}},
             idle_timeout_ms=str(IDLE_MS), min_rate_bytes="4096",
             header_timeout_ms="2000") as gw:
    pid = gw.proc.pid
    stalled0 = metric(gw, "infergate_stalled_total") or 0

    # ---- stalls, all at once: each must be cut within CUT_WITHIN s -------------
    cut = {}

    def h2_stall(name, first=b"", every=None, piece=b""):
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", CSV)
        t0 = time.time()
        if first:
            c.send(sid, first)
        nxt = t0 + (every or 1e9)
        stop = t0 + CUT_WITHIN + 2.5
        while not c.done(sid) and time.time() < stop:
            if every and time.time() >= nxt:
                c.send(sid, piece)
                nxt += every
            c.pump(0.05)
        cut[name] = (time.time() - t0 if c.done(sid) else None, c.sent)
        c.close()

    def h1_stall(name, pieces, read=True):
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                  b"Accept: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
        t0 = time.time()
        for p in pieces:
            s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        s.settimeout(0.1)
        stop, eof = t0 + CUT_WITHIN + 2.5, False
        while time.time() < stop and not eof:
            try:
                if s.recv(65536) == b"":
                    eof = True
            except socket.timeout:
                pass
            except OSError:
                eof = True
        cut[name] = (time.time() - t0 if eof else None, 0)
        s.close()

    def zero_window(name):
        """Rows sent as fast as flow control lets, by a client that grants no window
        (INITIAL_WINDOW_SIZE 0): the gateway can send no prediction."""
        c = H2Client(gw.port, window=0)
        sid = c.open("/transform/demo", [("content-type", "text/csv"),
                                         ("accept", "application/json")])
        body = csv_body(ROWS).encode()
        t0 = last = time.time()
        while not c.done(sid) and time.time() - t0 < 12:
            if c.send(sid, body[c.sent % len(body):]) > 0:
                last = time.time()
            c.pump(0.05, consume=False)
        cut[name] = (time.time() - last if c.done(sid) else None, c.sent)
        c.close()

    def h1_flood(name):
        """h1 chunked rows sent while nothing is read."""
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                  b"Accept: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        s.settimeout(0.2)
        body = csv_body(ROWS).encode()
        chunk = b"%x\r\n%s\r\n" % (len(body), body)
        t0, sent, last = time.time(), 0, time.time()
        res = None
        # (up to 30 s in all: under the side-by-side tests' load the
        # gateway once took most of 12 s to hold it back, then the wait
        # for the cut ran out of time: "never")
        while time.time() - t0 < 30:
            try:
                sent += s.send(chunk)
                last = time.time()
            except socket.timeout:
                if time.time() - last > CUT_WITHIN + 2:
                    break
            except OSError:  # reset by the gateway: cut
                res = time.time() - last
                break
        cut[name] = (res, sent)
        s.close()

    stalls = [
        ("h2 stream that sends nothing", lambda n: h2_stall(n)),
        ("h2 stream that sends a partial line (no LF) and stops",
         lambda n: h2_stall(n, first=LINES[0][:20].encode())),
        ("h2 stream that trickles blank lines (5 B/s)",
         lambda n: h2_stall(n, every=0.2, piece=b"\n")),
        ("h2 stream that trickles one line byte by byte (5 B/s)",
         lambda n: h2_stall(n, every=0.2, piece=b"1")),
        ("h1 chunked stream that sends a partial line and stops",
         lambda n: h1_stall(n, [LINES[0][:20].encode()])),
        ("h1 chunked stream that sends nothing after its header block",
         lambda n: h1_stall(n, [])),
    ]
    ths = [threading.Thread(target=f, args=(n,)) for n, f in stalls]
    ths.append(threading.Thread(target=h1_flood, args=("h1 flood",)))
    ths.append(threading.Thread(target=zero_window, args=("zero window",)))
    for t in ths:
        t.start()
    time.sleep(1.0)
    # meanwhile, other clients are served
    st, _, out = curl(gw.invoke_url("demo"), csv_body(ROWS[:3]),
                      ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, csv_preds(range(3))), "a unary request is served beside the stalls")
    for t in ths:
        t.join()
    for name, _ in stalls:
        took, sent = cut[name]
        check(took is not None and took <= CUT_WITHIN,
              "%s: cut within %.1f s by the stall rule (idle_timeout_ms %d): %s"
              % (name, CUT_WITHIN, IDLE_MS, "cut after %.2f s" % took if took is not None
                 else "still open after %.1f s" % (CUT_WITHIN + 2.5)))
    took, sent = cut["zero window"]
    check(took is not None and took <= CUT_WITHIN and sent < 8 << 20,
          "a client that grants no window (INITIAL_WINDOW_SIZE 0) and sends rows: the gateway "
          "stops taking input after %d bytes (< 8 MiB, the predictions it cannot send are not "
          "buffered without bound), then the stall rule cuts it (%s)"
          % (sent, "%.2f s after its last byte" % took if took is not None else "never"))
    took, sent = cut["h1 flood"]
    # the loopback socket buffers take several MiB on their own
    check(took is not None and sent < 24 << 20,
          "h1 client that never reads: held back after %d bytes (< 24 MiB with the kernel's "
          "socket buffers), then cut by the stall rule (%s)"
          % (sent, "%.2f s after its last byte" % took if took else "never"))
    stalled = metric(gw, "infergate_stalled_total") or 0
    check(stalled - stalled0 >= 5, "infergate_stalled_total counts the stalled streams (+%d)"
          % (stalled - stalled0))
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10)
    check(held is not None and held <= 64 << 10,
          "after the stalled streams are cut nothing stays held (infergate_buffered_bytes %s)"
          % held)

    # ---- over-long lines at the cap (524288 bytes), followed by good lines ----
    # The LF of the long line and the lines after it come in the same reads; a
    # bad row in a later part checks the line numbers after it.
    LONG = "Row 2: the record is longer than 524288 bytes."
    for extra in (1, 1000, 8000, 40000):
        part1 = (LINES[0] + "\n" + "x" * (524288 + extra) + "\n" + "\n".join(LINES[1:7]) +
                 "\n").encode()
        st, out, how = h2_parts(gw, [part1, b"1,2\n" + LINES[7].encode() + b"\n"])
        check_eq((st, how, out.decode()),
                 (200, "end", PRED[0][1] + "\nerror,2,ValidationError,\"%s\"\n" % LONG +
                  csv_preds(range(1, 7)) + "error,9,ValidationError,\"Row 9: expected 64 "
                  "features, found 2.\"\n" + csv_preds([7])),
                 "a %d-byte line (cap + %d) then 6 good lines in one write, then a bad row and "
                 "a good one: the long line refused alone, none of the 6 lost, line numbers "
                 "right" % (524288 + extra, extra))
    # the stream's end arriving with the long line must not let it through
    for n in (524289, 900000):
        body = (LINES[0] + "\n" + "x" * n + "\n" + "\n".join(LINES[1:4]) + "\n").encode()
        st, out, how = h2_stream(gw, body)
        check_eq((st, how, out.decode()),
                 (200, "end", PRED[0][1] + "\nerror,2,ValidationError,\"%s\"\n" % LONG +
                  csv_preds(range(1, 4))),
                 "a %d-byte line with the stream's end in the same write: refused as longer "
                 "than the cap like any other" % n)
    body = ("x" * 524288 + "\n" + LINES[1] + "\n").encode()
    st, out, how = h2_stream(gw, body)
    check_eq((st, how, out.decode()),
             (200, "end", "error,1,ValidationError,\"Row 1, column 1: 'xxxxxxxxxxxxxxxxxxxxxxxxx"
              "xxxxxxxxxxxxxxx...' is not a number.\"\n" + csv_preds([1])),
             "a line of exactly 524288 bytes is within the cap: decoded (and refused as a row)")
    # over h1 chunked too (the body still open when the long line is seen)
    p1 = (LINES[0] + "\n" + "x" * (524288 + 1000) + "\n" + "\n".join(LINES[1:4]) + "\n").encode()
    p2 = b"1,2\n"
    got, eof = h1_raw(gw.port, b"", pieces=[
        b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: "
        b"text/csv\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
        b"%x\r\n%s\r\n" % (len(p1), p1), b"%x\r\n%s\r\n0\r\n\r\n" % (len(p2), p2)])
    head, raw = h1_split(got)
    check_eq((head.split("\r\n")[0], dechunk(raw)[0].decode()),
             ("HTTP/1.1 200 OK", PRED[0][1] + "\nerror,2,ValidationError,\"%s\"\n" % LONG +
              csv_preds(range(1, 4)) + "error,6,ValidationError,\"Row 6: expected 64 features, "
              "found 2.\"\n"),
             "h1: a line at the cap + 1000 then 3 good lines, then a bad row: none lost, "
             "line numbers right")

    # ---- millions of blank lines --------------------------------------------
    t = time.time()
    body = b"\n" * 2000000 + b"1,2\n" + b"\r\n" * 1000 + LINES[0].encode() + b"\n"
    st, out, how = h2_stream(gw, body, timeout=30)
    check_eq((st, how, out.decode()),
             (200, "end", "error,2000001,ValidationError,\"Row 2000001: expected 64 features, "
              "found 2.\"\n" + csv_preds([0])),
             "2 million blank lines, a bad row, 1000 CRLF blank lines, a good row: the bad row "
             "named by its line number, one prediction")
    check(time.time() - t < 15, "2 million blank lines take %.1f s (< 15)" % (time.time() - t))

    # ---- a row whose prediction overflows, among good rows in one chunk -------
    body = b"1e308,0\n0,1.7e308\n-1e308,0\n1e307,0\n"
    st, out, how = h2_stream(gw, body, path="/transform/km")
    check_eq((st, how, out.decode()),
             (200, "end", "1.0,0.0\nerror,2,ModelError,\"Row 2: %s\"\n0.0,0.0\n1.0,9e+307\n"
              % KM_WHY),
             "one row whose prediction is not finite: its error record alone, the rows around it "
             "in the same chunk keep their predictions")
    st, out, how = h2_stream(gw, body, path="/transform/km",
                             headers=CSV + [("x-infergate-errors", "abort")])
    check_eq((st, how, out.decode()), (200, "rst:2", "1.0,0.0\n"),
             "errors=abort: the prediction before the overflowing row, then "
             "RST_STREAM(INTERNAL_ERROR)")

    # ---- empty streams --------------------------------------------------------
    st, out, how = h2_stream(gw, b"")
    check_eq((st, how, out), (200, "end", b""),
             "END_STREAM on the HEADERS frame: 200, no body, END_STREAM")
    st, out, how = h2_stream(gw, b"\n\r\n\n")
    check_eq((st, how, out), (200, "end", b""), "only blank lines: 200, no body")

    # ---- hostile JSON lines ---------------------------------------------------
    deep = "[" * 200000 + "]" * 200000
    big = "[" + ", ".join(["%r" % float(v) for v in ROWS[0]]) + " " * (500 << 10) + "]"
    body = (deep + "\n" + big + "\n" + json.dumps(ROWS[1]) + "\n").encode()
    st, out, how = h2_stream(gw, body, headers=JL)
    recs = out.decode().splitlines()
    check_eq((st, how, len(recs)), (200, "end", 3),
             "a 400 KB deeply nested JSON line, a 500 KiB row, a row: three output lines")
    if len(recs) == 3:
        e = json.loads(recs[0]).get("error", {})
        check_eq((e.get("row"), e.get("type")), (1, "ValidationError"),
                 "the deeply nested line: a ValidationError record for row 1 (%s)"
                 % e.get("message"))
        check_eq(recs[1:], [PRED[0][0], PRED[1][0]],
                 "the 500 KiB row (spaces inside the array) and the next row: their predictions")
    # JSONPath input filters on hostile records
    FJ = JL + [("x-infergate-input-filter", "$.features"), ("x-infergate-join", "input")]
    hostile = ['[1,2]', '"features"', '{"features":{"a":1}}', '{"features":' + "[" * 5000 +
               "]" * 5000 + '}', '{"features":' + json.dumps(ROWS[2]) + ',"features":[1]}',
               '{"x":1', '{"features":' + json.dumps(ROWS[3]) + '}']
    st, out, how = h2_stream(gw, ("\n".join(hostile) + "\n").encode(), headers=FJ)
    recs = out.decode().splitlines()
    check_eq((st, how, len(recs)), (200, "end", len(hostile)),
             "input filter $.features on %d hostile lines: one output line each" % len(hostile))
    if len(recs) == len(hostile):
        kinds = [("error" if "error" in json.loads(r) and len(json.loads(r)) == 1 else "ok")
                 for r in recs]
        rows_named = [json.loads(r)["error"]["row"] for r in recs if kinds[recs.index(r)] ==
                      "error"]
        check_eq(kinds[:4] + kinds[5:], ["error"] * 5 + ["ok"],
                 "hostile filter inputs: error records for the 6 bad lines, the good one joined")
        check(all(r in range(1, 8) for r in rows_named), "error records name their lines")
        check_eq(recs[6], '{"features":%s,"SageMakerOutput":%s}' % (json.dumps(ROWS[3]),
                                                                   PRED[3][0]),
                 "the good line after the hostile ones: joined with its prediction")

    # ---- records the decoders refuse: one error record each, valid in its format --
    body = (LINES[0] + '\n"5,' + LINES[1] + '\n3"\n' + LINES[2] + "\n").encode()
    st, out, how = h2_stream(gw, body)
    check_eq((st, how, out.decode()),
             (200, "end", PRED[0][1] + "\nerror,2,ValidationError,\"Row 2, column 1: "
              "unterminated quoted field.\"\nerror,3,ValidationError,\"Row 3, column 1: quote "
              "character in an unquoted field.\"\n" + PRED[2][1] + "\n"),
             "a quoted CSV field spanning two lines: each line refused alone (records are lines)")
    body = ("[1,\n2]\n" + json.dumps(ROWS[0]) + " " + json.dumps(ROWS[1]) + "\n" +
            json.dumps(ROWS[2]) + "\n").encode()
    st, out, how = h2_stream(gw, body, headers=JL)
    check_eq((st, how, [json.loads(l).get("error", {}).get("row") for l in
                        out.decode().splitlines()], out.decode().splitlines()[-1:]),
             (200, "end", [1, 2, 3, None], [PRED[2][0]]),
             "JSON Lines: an array spanning two lines and two arrays on one line are error "
             "records for their lines; the next row is predicted")
    body = (b"\xff\xfe,1\n" + b'x"y,1\n' + b"1\x002\n" + b"\xc3\x28" * 10 + b"\n" +
            LINES[0].encode() + b"\n")
    msgs = ["Row 1, column 1: '??' is not a number.",
            "Row 2, column 1: quote character in an unquoted field.",
            "Row 3, column 1: NUL byte in the field.",
            "Row 4, column 1: '?(?(?(?(?(?(?(?(?(?(' is not a number."]
    st, out, how = h2_stream(gw, body, headers=[("content-type", "text/csv"),
                                                ("accept", "application/jsonlines")])
    check_eq((st, how, out.decode("utf-8", "replace").splitlines()),
             (200, "end", [json.dumps({"error": {"row": i + 1, "type": "ValidationError",
                                                 "message": m}}, separators=(",", ":"))
                           for i, m in enumerate(msgs)] + [PRED[0][0]]),
             "invalid UTF-8, a quote, a NUL byte: JSON error records that are valid UTF-8 JSON")
    st, out, how = h2_stream(gw, body)
    check_eq((st, how, out.decode("utf-8", "replace")),
             (200, "end", "".join('error,%d,ValidationError,"%s"\n' % (i + 1, m)
                                  for i, m in enumerate(msgs)) + PRED[0][1] + "\n"),
             "the same as CSV error records")

    # ---- h2 trailers; a client that opens its window one byte at a time ---------
    c = H2Client(gw.port)
    sid = c.open("/transform/demo", CSV)
    c.send_all(sid, csv_body(ROWS[:3]).encode(), end=False)
    c.conn.send_headers(sid, [("x-checksum", "1")], end_stream=True)
    c.flush()
    c.wait(sid, 5)
    check_eq((c.data[sid].decode(), sid in c.ended), (csv_preds(range(3)), True),
             "h2 trailers end the body: the predictions, then END_STREAM")
    c.close()
    c = H2Client(gw.port, window=1)
    sid = c.open("/transform/demo", CSV)
    c.send_all(sid, csv_body(ROWS[:200]).encode(), end=True)
    t = time.time()
    while not c.done(sid) and time.time() - t < CUT_WITHIN + 2:
        time.sleep(0.2)
        while c.pump(0.01, consume=False):
            pass
        try:
            c.conn.increment_flow_control_window(1, sid)
            c.conn.increment_flow_control_window(1)
        except h2.exceptions.StreamClosedError:
            pass
        c.flush()
    took = time.time() - t
    check(c.done(sid) and sid not in c.ended and took <= CUT_WITHIN,
          "a client that reads its predictions one byte per 0.2 s (a 1-byte window): cut by "
          "the stall rule within %.1f s (%s)" % (CUT_WITHIN, "%.2f s" % took if c.done(sid)
                                                 else "still open"))
    c.close()

    # ---- HTTP/1.x framing games ----------------------------------------------
    hdr = (b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Accept: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
    l0, l1 = (LINES[0] + "\n").encode(), (LINES[1] + "\n").encode()
    # chunk extensions and trailers
    raw = hdr + b"%x;ext=1;q=\"a b\"\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n" % (
        len(l0), l0, len(l1), l1)
    got, eof = h1_raw(gw.port, raw + b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, rest = h1_split(got)
    payload, complete = dechunk(rest)
    check_eq((head.split("\r\n")[0], payload.decode(), complete, b"HTTP/1.1 200" in
              rest.split(b"0\r\n\r\n", 1)[-1]),
             ("HTTP/1.1 200 OK", csv_preds([0, 1]), True, True),
             "h1 chunk extensions and trailers: the predictions, the last chunk, then the "
             "pipelined GET /ping is answered")
    # pipelining: a transform with Content-Length, then a unary request, in one write
    b2 = (LINES[2] + "\n").encode()
    u = csv_body(ROWS[3:4]).encode()
    raw = (b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: "
           b"text/csv\r\nContent-Length: %d\r\n\r\n%s" % (len(b2), b2) +
           b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Accept: text/csv\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(u), u))
    got, eof = h1_raw(gw.port, raw)
    first, _, second = got.partition(b"0\r\n\r\n")
    check_eq((dechunk(h1_split(first + b"0\r\n\r\n")[1]), second.split(b"\r\n")[0],
              h1_split(second)[1].decode()),
             ((csv_preds([2]).encode(), True), b"HTTP/1.1 200 OK", csv_preds([3])),
             "h1 pipelining: the stream's chunked answer, then the unary answer after it")
    # HTTP/1.0: no chunks, the body runs to the close
    raw = (b"POST /transform/demo HTTP/1.0\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(l0 + l1), l0 + l1))
    got, eof = h1_raw(gw.port, raw)
    head, rest = h1_split(got)
    check_eq((head.split("\r\n")[0], "transfer-encoding" in head.lower(), rest.decode(), eof),
             ("HTTP/1.1 200 OK", False, csv_preds([0, 1]), True),
             "HTTP/1.0 stream: no chunked coding, the predictions, then the close")
    # half-close (after the whole body, or short of it): the gateway takes it as the
    # client gone, as for unary requests (http_server.c conn_on_event); it must not
    # hang, and what it sent is a prefix of the answer
    body = (LINES[0] + "\n" + LINES[1] + "\n").encode()
    for short in (False, True):
        s1 = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        s1.sendall(b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                   b"Accept: text/csv\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body) + (100 if short else 0), body))
        s1.shutdown(socket.SHUT_WR)
        t, got, eof = time.time(), b"", False
        s1.settimeout(0.2)
        while time.time() - t < CUT_WITHIN + 1 and not eof:
            try:
                b = s1.recv(65536)
                eof = not b
                got += b
            except socket.timeout:
                continue
            except OSError:
                eof = True
        took = time.time() - t
        s1.close()
        payload, complete = dechunk(h1_split(got)[1])
        check(eof and took <= CUT_WITHIN and csv_preds([0, 1]).startswith(payload.decode()),
              "h1 client that half-closes %s: the connection ends within %.1f s (%.2f s) with "
              "a prefix of the answer (%r)" % ("100 bytes short of its Content-Length" if short
                                                else "after its whole body", CUT_WITHIN, took,
                                                payload[:80]))
    # Expect: 100-continue
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    s.sendall(hdr.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
    first = s.recv(65536)
    s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(l0), l0))
    got = first
    deadline = time.time() + 5
    while not got.endswith(b"0\r\n\r\n") and time.time() < deadline:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    check_eq((got.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
              dechunk(got.split(b"\r\n\r\n", 2)[2])),
             (True, (csv_preds([0]).encode(), True)),
             "Expect: 100-continue: 100, then 200 chunked with the prediction")
    # ---- errors=abort while later chunks are in flight -------------------------
    body = csv_body(ROWS[:300]) + "1,2\n" + csv_body(ROWS[:300])
    st, out, how = h2_stream(gw, body.encode(), headers=CSV + [("x-infergate-errors", "abort")])
    check_eq((st, how, out.decode()), (200, "rst:2", csv_preds(range(300))),
             "errors=abort with chunks in flight after the bad row: exactly the 300 predictions "
             "before it, then RST_STREAM(INTERNAL_ERROR)")

    # ---- resets and closes with batches in flight --------------------------------
    big = csv_body(ROWS * 5).encode()
    for k in range(6):
        c = H2Client(gw.port)
        sids = [c.open("/transform/demo", CSV) for _ in range(4)]
        for sid in sids:
            c.send(sid, big[:300000 + k * 1000])
        c.pump(0.02 * k)
        if k % 2 == 0:
            for sid in sids:
                c.reset(sid)
            c.pump(0.05)
        c.close()  # the TCP connection goes mid-stream
    # churn: streams reset or dropped right after big pieces (chunks on the decoder
    # pool), no pause
    for k in range(20):
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", CSV)
        c.send(sid, big[:100000 + 7919 * k])
        if k % 3 == 0:
            c.reset(sid)
        elif k % 3 == 1:
            c.send(sid, b"", end=True)
        c.close()
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10)
    check(held is not None and held <= 64 << 10,
          "after resets and closes mid-stream nothing stays held (%s bytes)" % held)
    st, out, how = h2_stream(gw, csv_body(ROWS[:50]).encode())
    check_eq((st, how, out.decode()), (200, "end", csv_preds(range(50))),
             "streams are served exactly after the resets and closes")
    check(gw.alive(), "the gateway is alive after the resets")
    # ---- last on this gateway (it may crash here): a bogus chunk size after a good
    # line: the answer so far, then the body cut; no second status line inside the
    # chunked body, no crash
    for bogus in (b"zz\r\n", b"ffffffffffffffffffff\r\n", b"-1\r\n", b"5\r\n123456789\r\n"):
        got, eof = h1_raw(gw.port, b"", pieces=[hdr + b"%x\r\n%s\r\n" % (len(l0), l0),
                                                bogus + l1])
        head, rest = h1_split(got)
        payload, complete = dechunk(rest)
        check_eq((head.split("\r\n")[0], payload.decode(), complete, b"HTTP/1.1 400" in rest,
                  eof),
                 ("HTTP/1.1 200 OK", csv_preds([0]), False, False, True),
                 "h1 bogus chunk framing %r mid-stream: the prediction so far, then the "
                 "connection closed without the last chunk (no 400 written into the body)"
                 % bogus)
        time.sleep(0.3)
        check(gw.alive(), "the gateway is alive after the bogus chunk %r" % bogus)
        if not gw.alive():
            break


# =============================================================================
# Gateway 2: small budgets; one connection floods many streams and reads nothing.
# =============================================================================
SHARE = 4 << 20
TOTAL = 16 << 20
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000}},
             idle_timeout_ms="15000", max_body_bytes="1048576",
             max_conn_buffered_bytes=str(SHARE), max_buffered_body_bytes=str(TOTAL)) as gw:
    pid = gw.proc.pid
    rss0 = rss_kb(pid)
    body = csv_body(ROWS).encode()
    conns = [H2Client(gw.port) for _ in range(2)]
    sids = [(c, c.open("/transform/demo", [("content-type", "text/csv"),
                                           ("accept", "application/json")])) for c in conns
            for _ in range(64)]
    offs = {id(c) * 1000 + s: 0 for c, s in sids}
    t = time.time()
    peak = 0
    while time.time() - t < 7:  # a fixed time: the flood comes in waves
        for c, sid in sids:
            k = id(c) * 1000 + sid  # whole lines: each stream goes on where it stopped
            offs[k] += c.send(sid, body[offs[k] % len(body):])
        for c in conns:
            c.pump(0.02, consume=False)
        peak = max(peak, metric(gw, "infergate_buffered_bytes") or 0)
    peak_conn = metric(gw, "infergate_conn_buffered_bytes_max") or 0
    rss1 = rss_kb(pid)
    sent = sum(offs.values())
    print("output flood: %d bytes taken, RSS +%d KB" % (sent, rss1 - rss0))
    check(peak <= TOTAL, "128 streams on 2 connections that never read: infergate_buffered_bytes "
          "peaked at %d, within max_buffered_body_bytes %d" % (peak, TOTAL))
    check(peak_conn <= SHARE, "... and the busiest connection holds %d, within its share "
          "max_conn_buffered_bytes %d" % (peak_conn, SHARE))
    # (an ASan build's RSS says little: its allocator keeps freed memory aside; and
    # jemalloc's retained pages swing this from 18 to 34 MB run to run, the build of
    # the session before this check's bound was set too: 3x, not 2x, bounds it
    # without flaking, far below what 23 MB sent would cost unbudgeted)
    check(uses_asan(pid) or rss1 - rss0 < 3 * TOTAL // 1024,
          "... the gateway's RSS grew by %d KB (< 3 x max_buffered_body_bytes; the budgets "
          "count %d at most) after %d bytes sent" % (rss1 - rss0, peak, sent))
    st, _, out = curl(gw.invoke_url("demo"), csv_body(ROWS[:3]),
                      ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, csv_preds(range(3))),
             "another client is served while the flood holds its windows")
    for c in conns:
        c.close()
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10, timeout=5)
    check(held is not None and held <= 64 << 10,
          "after the flooding connections close nothing stays held (%s bytes)" % held)

# Partial lines (480 KB each, below the line cap, no LF) on 32 streams of each of
# 4 connections: 61 MB the gateway must hold for lines that never end, against a
# server budget of 16 MiB (a gateway of its own: RSS from a clean start).
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000}},
             idle_timeout_ms="15000", max_body_bytes="1048576",
             max_conn_buffered_bytes=str(SHARE), max_buffered_body_bytes=str(TOTAL)) as gw:
    pid = gw.proc.pid
    rss0 = rss_kb(pid)
    part = b"1," * (240 << 10)
    conns = [H2Client(gw.port) for _ in range(4)]
    sids = [(c, c.open("/transform/demo", CSV)) for c in conns for _ in range(32)]
    for c, sid in sids:
        c.send_all(sid, part, end=False, timeout=5)
    t = time.time()
    while time.time() - t < 1.5:
        for c in conns:
            c.pump(0.02)
    sent = sum(c.sent for c in conns)
    grew = rss_kb(pid) - rss0
    print("partial lines: %d bytes taken, RSS +%d KB" % (sent, grew))
    check(uses_asan(pid) or grew < 2 * TOTAL // 1024,
          "128 streams on 4 connections each holding a 480 KB partial line: the gateway took "
          "%d bytes and its RSS grew by %d KB (< 2 x max_buffered_body_bytes %d)"
          % (sent, grew, TOTAL))
    st, _, out = curl(gw.invoke_url("demo"), csv_body(ROWS[:3]),
                      ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, csv_preds(range(3))),
             "another client is served while partial lines are held")
    for c in conns:
        c.close()
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10, timeout=5)
    check(held is not None and held <= 64 << 10,
          "after those connections close nothing stays held (%s bytes)" % held)

# =============================================================================
# Gateway 3: max_connections 4 held by streams that never end a line.
# =============================================================================
with Gateway({"demo": {"model": DEMO_MODEL}}, idle_timeout_ms=str(IDLE_MS),
             max_connections="4") as gw:
    holders = []
    for i in range(4):
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", CSV)
        c.send(sid, b"1,2,3")
        c.pump(0.05)
        holders.append((c, sid))
    t = time.time()
    served = None
    while time.time() - t < CUT_WITHIN + 1.5 and served is None:
        st, _, out = curl(gw.invoke_url("demo"), csv_body(ROWS[:2]),
                          ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
        if st == 200:
            served = time.time() - t
        else:
            time.sleep(0.2)
        for c, _ in holders:
            c.pump(0.01)
    check(served is not None,
          "max_connections 4 held by 4 streams each holding a partial line: another client is "
          "served within %.1f s (the stalled streams are cut): %s"
          % (CUT_WITHIN + 1.5, "after %.2f s" % served if served is not None
             else "locked out"))
    for c, _ in holders:
        c.close()

# =============================================================================
# Gateway 4: the container upstream, slow, failing, never answering.
# =============================================================================
fc_log = os.path.join(tmp, "fc")
os.makedirs(fc_log, exist_ok=True)
with FakeContainer("--latency-us", "150000", model=DEMO_MODEL, logdir=fc_log) as slow, \
        FakeContainer("--fail-500", "1", model=DEMO_MODEL, logdir=fc_log) as bad, \
        FakeContainer("--timeout", "1", model=DEMO_MODEL, logdir=fc_log) as hang, \
        FakeContainer("--fail-500", "0.3", "--seed", "7", model=DEMO_MODEL,
                      logdir=fc_log) as flaky, \
        Gateway({"slow": {"model": slow.url, "max_batch_rows": 20},
                 "bad": {"model": bad.url, "max_batch_rows": 20},
                 "flaky": {"model": flaky.url, "max_batch_rows": 20},
                 "hang": {"model": hang.url, "max_batch_rows": 20, "request_timeout_ms": "700"}},
                idle_timeout_ms="5000") as gw:
    st, out, how = h2_stream(gw, csv_body(ROWS[:120]).encode(), path="/transform/slow")
    check_eq((st, how, out.decode()), (200, "end", csv_preds(range(120))),
             "a slow container (150 ms a call): every prediction, in order")
    st, out, how = h2_stream(gw, csv_body(ROWS[:30]).encode(), path="/transform/bad", timeout=30)
    lines = out.decode().splitlines()
    check_eq((st, how, len(lines), [l.split(",")[:2] for l in lines]),
             (200, "end", 30, [["error", str(i + 1)] for i in range(30)]),
             "a container that answers 500: one error record per row, in order, then the end")
    st, out, how = h2_stream(gw, csv_body(ROWS[:300]).encode(), path="/transform/flaky",
                             timeout=30)
    lines = out.decode().splitlines()
    ok = [l == PRED[i][1] or l.startswith("error,%d," % (i + 1)) for i, l in enumerate(lines)]
    check_eq((st, how, len(lines), all(ok)), (200, "end", 300, True),
             "a container failing 30%% of its calls: 300 lines, line i the prediction of row i "
             "or its error record, in order (%d predictions)"
             % sum(1 for i, l in enumerate(lines) if l == PRED[i][1]))
    t = time.time()
    st, out, how = h2_stream(gw, csv_body(ROWS[:30]).encode(), path="/transform/hang", timeout=30)
    lines = out.decode().splitlines()
    check_eq((st, how, len(lines), [l.split(",")[:3] for l in lines]),
             (200, "end", 30, [["error", str(i + 1), "ModelError"] for i in range(30)]),
             "a container that never answers (request_timeout_ms 700): a ModelError record per "
             "row, then the end")
    check(time.time() - t < 10, "... within %.1f s" % (time.time() - t))
    # reset and close while the slow container holds batches
    for k in range(4):
        c = H2Client(gw.port)
        sid = c.open("/transform/slow", CSV)
        c.send(sid, csv_body(ROWS[:200]).encode())
        c.pump(0.2)
        if k % 2 == 0:
            c.reset(sid)
            c.pump(0.05)
        c.close()
    time.sleep(0.5)
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10, timeout=5)
    check(held is not None and held <= 64 << 10,
          "resets and closes while the container holds batches: nothing stays held (%s)" % held)
    st, out, how = h2_stream(gw, csv_body(ROWS[:20]).encode(), path="/transform/slow")
    check_eq((st, how, out.decode()), (200, "end", csv_preds(range(20))),
             "the slow endpoint streams exactly after the resets")

# =============================================================================
# Gateway 5: SIGTERM while streams run.
# =============================================================================
gw = Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64}}, drain_timeout_ms="2000",
             idle_timeout_ms="10000")
# a stream that ends after the signal: answered in full
c1 = H2Client(gw.port)
s1 = c1.open("/transform/demo", CSV)
c1.send(s1, csv_body(ROWS[:10]).encode())
# a stream that never ends: cut by the drain's bound
c2 = H2Client(gw.port)
s2 = c2.open("/transform/demo", CSV)
c2.send(s2, csv_body(ROWS[:10]).encode())
for c in (c1, c2):
    c.pump(0.2)
t = time.time()
gw.proc.send_signal(signal.SIGTERM)
time.sleep(0.3)
c1.send(s1, csv_body(ROWS[10:20]).encode(), end=True)
c1.wait(s1, 5)
c2.wait(s2, 6, consume=True)
try:  # one signal only: a second one would not be a drain
    code = gw.proc.wait(timeout=max(0.1, 2.0 + 2.5 - (time.time() - t)))
except Exception:
    code = stop_proc(gw.proc, signal.SIGKILL)
took = time.time() - t
# docs/transform.md: a stream whose client has sent its whole body is finished as
# usual; one still sending takes no more input: the rows it gave are answered, then
# RST_STREAM(INTERNAL_ERROR). <c1> sent its last rows and END_STREAM 0.3 s after the
# signal: all 20 answered and END_STREAM, or the first 10 and the reset.
got1 = (c1.data.get(s1, b"").decode(), "end" if s1 in c1.ended else c1.resets.get(s1))
check(got1 in ((csv_preds(range(20)), "end"), (csv_preds(range(10)), 2)),
      "SIGTERM: a stream that sends its rest during the drain: every row it gave answered, "
      "then END_STREAM (or RST_STREAM(INTERNAL_ERROR) after the rows given before): %r"
      % (got1[1], ))
check_eq((c2.data.get(s2, b"").decode(), c2.resets.get(s2)), (csv_preds(range(10)), 2),
         "SIGTERM: a stream that never ends: the predictions of the rows it gave, then "
         "RST_STREAM(INTERNAL_ERROR)")
check_eq((c1.goaway, c2.goaway), (0, 0), "SIGTERM: both connections got a GOAWAY(NO_ERROR)")
check(code in (0, 1) and took < 2.0 + 2.5,
      "SIGTERM: the gateway exits (status %d, 0 or 1) within drain_timeout_ms + slack (%.2f s)"
      % (code, took))
c1.close()
c2.close()

# =============================================================================
# Second review (HEAD 9364456: after the fixes of 08980ce, the 64 KiB reads of
# 3448a67/0e4a841 and the 32 KiB rule of ts_cut_all). Cases that fail on purpose:
# - an honest client running 3 streams on one connection (reading everything, sending
#   within the windows the gateway grants, 3 MiB against a 4 MiB share) gets rows
#   replaced by ThrottlingException records (the decoded features do not fit the
#   share: ts_may_cut checks what the stream holds, not what its chunks will decode to);
#   with 8 streams, some are reset by ts_run's ThrottlingException rule, and about 1
#   run in 5 the connection deadlocks with its share full (nothing moves until the
#   stall rule cuts every stream, RST_STREAM(CANCEL), 15 s later);
# - the stall rule's 1/16 of what a request holds (docs/limits.md) is not applied to
#   a stream: a partial line of 480 KB held, or a backlog of predictions, needs only
#   min_rate_bytes per period (a trickle holds the budget for as long as it likes);
# - a container row failure that is not the model's (InternalFailure: a wrong
#   prediction count) becomes a ModelError record in a stream;
# - a client sending one line and waiting for its prediction is cut by the stall rule
#   while the gateway waits on a slow model;
# - SIGTERM after a client sent its whole body (END_STREAM sent, not yet processed by
#   the gateway): the stream is reset as one "still sending", its last rows dropped.
# =============================================================================
JLOUT = [("content-type", "text/csv"), ("accept", "application/jsonlines")]


def stream_how(c, sid):
    return ("end" if sid in c.ended else "rst:%d" % c.resets[sid] if sid in c.resets
            else "closed" if c.closed else "open")


# ---- Gateway 6: a 4 MiB connection share; one client, 8 streams, reading everything ----
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000}},
             idle_timeout_ms="15000", max_body_bytes="1048576",
             max_conn_buffered_bytes=str(SHARE), max_buffered_body_bytes=str(TOTAL)) as gw:
    body = csv_body(ROWS * 10).encode()  # 4000 rows, 1.1 MB
    want = "".join(PRED[i % 400][0] + "\n" for i in range(4000))

    def tally(data):
        lines = data.decode().splitlines()
        return sum(1 for l in lines if '"ThrottlingException"' in l)

    def streams(n):
        """<n> streams on one connection, each sending <body> within its windows,
        everything read -> [(how it ended, lines, ThrottlingException records,
        all predictions)]."""
        c = H2Client(gw.port)
        sids = [c.open("/transform/demo", JLOUT) for _ in range(n)]
        off = dict.fromkeys(sids, 0)
        t = time.time()
        while time.time() - t < 20 and not all(c.done(s) for s in sids):
            for s in sids:
                if off[s] < len(body) and not c.done(s):
                    # 64 KiB at a time, reading in between: one blocking sendall of a
                    # whole 1 MiB window, while the gateway's answers wait for this
                    # (single-threaded) client to read, could stall the socket both
                    # ways and time the client out (seen once in CI, under load)
                    piece = body[off[s]:off[s] + (64 << 10)]
                    off[s] += c.send(s, piece, end=off[s] + len(piece) == len(body))
            c.pump(0.05)
        got = [(stream_how(c, s), len(c.data[s].decode().splitlines()), tally(c.data[s]),
                c.data[s].decode() == want) for s in sids]
        c.close()
        return got

    # 3 streams: their windows (3 x 1 MiB) are below the share
    check_eq(streams(3), [("end", 4000, 0, True)] * 3,
             "3 streams of 4000 rows on one connection (max_conn_buffered_bytes %d, their "
             "windows 3 MiB), the client reading everything: every prediction in order, none "
             "replaced by a ThrottlingException record ('the decoded features of this request "
             "do not fit'): the gateway holds the client back instead; (how it ended, lines, "
             "ThrottlingException records, all predictions)" % SHARE)
    # 8 streams: their windows (8 MiB) pass the 4 MiB share. Once a bug: the
    # gateway stopped reading the connection when the unread input could not be
    # charged to a full share, and its input processed back down to what was
    # charged before left reading stopped for good (the refused charge had not
    # moved the hold): both sides blocked until the client gave up (seen in CI
    # after test_transform.py, about one run in three under load)
    # (three times: the stop came in about one run in three)
    for attempt in range(3):
        check_eq(streams(8), [("end", 4000, 0, True)] * 8,
                 "8 streams of 4000 rows on one connection (max_conn_buffered_bytes %d), the "
                 "client sending within its windows and reading everything (run %d of 3): each "
                 "stream held back by flow control, every prediction in order, END_STREAM (none "
                 "reset with ThrottlingException); (how it ended, lines, ThrottlingException "
                 "records, all predictions)" % (SHARE, attempt + 1))
    throttled = gw.stderr().count("ThrottlingException: the bytes held for clients")
    check_eq(throttled, 0, "... and no stream reset for the budgets in the log")
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10, timeout=5)
    check(held is not None and held <= 64 << 10, "after them nothing stays held (%s)" % held)

# ---- Gateway 7: idle_timeout_ms 1000; the stall rule's share of what a stream holds ----
with Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64, "max_delay_us": 1000}},
             idle_timeout_ms=str(IDLE_MS), min_rate_bytes="4096") as gw:
    cut2 = {}

    def trickle_partial(name):
        """A 480 KB partial line held, then 5000 more bytes of it every 0.5 s (10 KB/s:
        over min_rate_bytes, under 1/16 of the 480 KB held per period)."""
        c = H2Client(gw.port)
        sid = c.open("/transform/demo", CSV)
        c.send_all(sid, b"1," * (240 << 10), end=False, timeout=5)
        t0 = nxt = time.time()
        while time.time() - t0 < CUT_WITHIN + 2 and not c.done(sid):
            if time.time() >= nxt:
                c.send(sid, b"1," * 2500)
                nxt += 0.5
            c.pump(0.05)
        cut2[name] = time.time() - t0 if c.done(sid) else None
        c.close()

    def slow_reader(name):
        """~450 KB of predictions waiting, the client taking 5000 bytes every 0.5 s."""
        c = H2Client(gw.port, window=0)
        sid = c.open("/transform/demo", [("content-type", "text/csv"),
                                         ("accept", "application/json")])
        rows = csv_body(ROWS * 20).encode()
        c.send_all(sid, rows[:rows.rfind(b"\n", 0, 1 << 20) + 1], end=False, timeout=5)
        t0 = nxt = time.time()
        while time.time() - t0 < CUT_WITHIN + 2 and not c.done(sid):
            if time.time() >= nxt:
                try:
                    c.conn.increment_flow_control_window(5000, sid)
                    c.conn.increment_flow_control_window(5000)
                except h2.exceptions.StreamClosedError:
                    pass
                c.flush()
                nxt += 0.5
            c.pump(0.05, consume=False)
        cut2[name] = time.time() - t0 if c.done(sid) else None
        c.close()

    ths = [threading.Thread(target=trickle_partial, args=("partial",)),
           threading.Thread(target=slow_reader, args=("reader",))]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    check(cut2["partial"] is not None and cut2["partial"] <= CUT_WITHIN,
          "a stream holding a 480 KB partial line that adds 10 KB/s to it (over min_rate_bytes, "
          "under 1/16 of what it holds per idle_timeout_ms, docs/limits.md): cut within %.1f s "
          "(%s)" % (CUT_WITHIN, "after %.2f s" % cut2["partial"] if cut2["partial"] is not None
                    else "still open after %.1f s" % (CUT_WITHIN + 2)))
    check(cut2["reader"] is not None and cut2["reader"] <= CUT_WITHIN,
          "a stream with ~450 KB of predictions waiting whose client takes 10 KB/s: cut within "
          "%.1f s (%s)" % (CUT_WITHIN, "after %.2f s" % cut2["reader"]
                           if cut2["reader"] is not None
                           else "still open after %.1f s" % (CUT_WITHIN + 2)))

    # DATA frames with 200 bytes of padding each (one line per frame): the padding is
    # given back to the windows (no_auto_window_update), the stream goes on past them
    c = H2Client(gw.port)
    sid = c.open("/transform/demo", CSV)
    lines = [(LINES[i % 400] + "\n").encode() for i in range(6000)]
    i, t = 0, time.time()
    while i < len(lines) and time.time() - t < 10 and not c.done(sid):
        while i < len(lines) and c.conn.local_flow_control_window(sid) >= len(lines[i]) + 201:
            c.conn.send_data(sid, lines[i], pad_length=200)
            i += 1
        c.flush()
        c.pump(0.02)
    c.send(sid, b"", end=True)
    c.wait(sid, 10)
    check_eq((i, stream_how(c, sid), c.data[sid].decode() == csv_preds([k % 400 for k in
                                                                       range(6000)])),
             (6000, "end", True),
             "6000 lines in DATA frames padded with 200 bytes each (1.3 MB of padding, more than "
             "the stream window): every prediction, END_STREAM")
    c.close()

    # joins and filters on CRLF input; an input filter picking 64 numbers of a 300 KB array
    body = "".join(LINES[i] + "\r\n" for i in range(3)).encode()
    st, out, how = h2_stream(gw, body, headers=CSV + [("x-infergate-join", "input")])
    check_eq((st, how, out.decode()),
             (200, "end", "".join(LINES[i] + "," + PRED[i][1] + "\n" for i in range(3))),
             "CSV join on CRLF lines: input,prediction with no CR inside")
    body = "".join(json.dumps({"id": i, "f": ROWS[i]}) + "\r\n" for i in range(3)).encode()
    st, out, how = h2_stream(gw, body, headers=JL + [("x-infergate-join", "input"),
                                                     ("x-infergate-input-filter", "$.f")])
    check_eq((st, how, out.decode()),
             (200, "end", "".join(json.dumps({"id": i, "f": ROWS[i]})[:-1] +
                                  ',"SageMakerOutput":' + PRED[i][0] + "}\n" for i in range(3))),
             "JSON join with an input filter on CRLF lines: the record as sent plus "
             "SageMakerOutput")
    big = json.dumps({"a": ROWS[0] + [0.0] * 60000, "b": 1})
    st, out, how = h2_stream(gw, (big + "\n" + json.dumps({"a": ROWS[1]}) + "\n").encode(),
                             headers=JL + [("x-infergate-input-filter", "$.a[0:64]")])
    check_eq((st, how, out.decode()), (200, "end", PRED[0][0] + "\n" + PRED[1][0] + "\n"),
             "input filter $.a[0:64] on a 300 KB array: the first 64 numbers predicted")

    # h1: a unary request pipelined behind a stream with a Content-Length body
    b = csv_body(ROWS[:300]).encode()
    u = csv_body(ROWS[:2]).encode()
    got, eof = h1_raw(gw.port, b"POST /transform/demo HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"text/csv\r\nAccept: text/csv\r\nContent-Length: %d\r\n\r\n" % len(b) + b +
                      b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"text/csv\r\nAccept: text/csv\r\nContent-Length: %d\r\nConnection: "
                      b"close\r\n\r\n" % len(u) + u)
    head, rest = h1_split(got)
    payload, complete = dechunk(rest)
    second = rest[rest.find(b"0\r\n\r\n") + 5:] if complete else b""
    check_eq((head.split("\r\n")[0], payload.decode(), complete,
              second.split(b"\r\n")[0], second.split(b"\r\n\r\n", 1)[-1], eof),
             ("HTTP/1.1 200 OK", csv_preds(range(300)), True, b"HTTP/1.1 200 OK",
              csv_preds(range(2)).encode(), True),
             "h1: a stream of 300 rows and a unary request pipelined in one write: the stream's "
             "predictions, its last chunk, then the unary answer")

    # 2000 tiny streams opened, given a line and reset on one connection (nghttp2 may end
    # the connection for rapid resets); nothing stays held, a new client is served
    c = H2Client(gw.port)
    for k in range(2000):
        if c.closed:
            break
        sid = c.open("/transform/demo", CSV)
        c.send(sid, (LINES[k % 400] + "\n").encode())
        c.reset(sid)
        if k % 50 == 0:
            c.pump(0.001)
    c.close()
    held = settle_metric(gw, "infergate_buffered_bytes", 64 << 10, timeout=5)
    check(held is not None and held <= 64 << 10,
          "2000 streams opened and reset: nothing stays held (%s)" % held)
    st, out, how = h2_stream(gw, csv_body(ROWS[:50]).encode())
    check_eq((st, how, out.decode()), (200, "end", csv_preds(range(50))),
             "a stream after the churn is served exactly")

# ---- Gateway 8: containers that refuse poisoned rows, or answer one prediction short ----
with FakeContainer("--poison", "7777", model=DEMO_MODEL, logdir=fc_log) as poi, \
        FakeContainer("--wrong-count", "1", model=DEMO_MODEL, logdir=fc_log) as wc, \
        Gateway({"poi": {"model": poi.url, "max_batch_rows": 64, "max_delay_us": 2000},
                 "wc": {"model": wc.url, "max_batch_rows": 20}}, idle_timeout_ms="5000") as gw:
    rows = [list(r) for r in ROWS[:200]]
    bad = set(range(3, 200, 10))
    for i in bad:
        rows[i][5] = 7777
    st, out, how = h2_stream(gw, csv_body(rows).encode(), path="/transform/poi", timeout=30)
    lines = out.decode().splitlines()
    ok = [(l.startswith("error,%d,ModelError," % (i + 1)) and "poison value 7777" in l)
          if i in bad else l == PRED[i][1] for i, l in enumerate(lines)]
    check_eq((st, how, len(lines), all(ok)), (200, "end", 200, True),
             "a container refusing (400) every call holding a poisoned row: the 20 poisoned "
             "rows get ModelError records, the 180 others their predictions, in order")
    calls0 = poi.stats()["calls"]
    rows = [list(r) for r in ROWS[:256]]
    for r in rows:
        r[0] = 7777
    st, out, how = h2_stream(gw, csv_body(rows).encode(), path="/transform/poi", timeout=30)
    calls = poi.stats()["calls"] - calls0
    check_eq((st, how, [l.split(",")[:3] for l in out.decode().splitlines()]),
             (200, "end", [["error", str(i + 1), "ModelError"] for i in range(256)]),
             "a container refusing every row of a 256-row stream: 256 ModelError records")
    check(calls <= 2 * 256, "... the bisection costs %d calls (at most 2 per row)" % calls)
    st, hdrs, _ = curl(gw.invoke_url("wc"), csv_body(ROWS[:5]),
                       ["Content-Type: text/csv", "Accept: text/csv"])
    utype = "%d %s" % (st, hdrs.get("x-amzn-errortype"))
    st, out, how = h2_stream(gw, csv_body(ROWS[:20]).encode(), path="/transform/wc")
    lines = out.decode().splitlines()
    check_eq((st, how, [l.split(",")[:3] for l in lines]),
             (200, "end", [["error", str(i + 1), "InternalFailure"] for i in range(20)]),
             "a container answering one prediction short (unary: %s): each row's error record "
             "names InternalFailure, as the unary answer does, not ModelError" % utype)

# ---- Gateway 8b: a model slower than idle_timeout_ms; a client that sends one line and
# waits for its prediction before the next (request/response over one stream). What it
# sent was consumed, but the gateway is the one waiting (on the model): the stall rule
# must not cut it, as it does not cut the unary request next to it.
with FakeContainer("--latency-us", "2000000", model=DEMO_MODEL, logdir=fc_log) as slow2, \
        Gateway({"slow2": {"model": slow2.url, "max_batch_rows": 20}},
                idle_timeout_ms=str(IDLE_MS), min_rate_bytes="64") as gw:
    c = H2Client(gw.port)
    sid = c.open("/transform/slow2", CSV)
    rounds = []
    for i in range(2):
        t = time.time()
        c.send(sid, (LINES[i] + "\n").encode())
        while len(c.data[sid]) < len(csv_preds(range(i + 1))) and time.time() - t < 4 and \
                not c.done(sid):
            c.pump(0.02)
        rounds.append(stream_how(c, sid))
    c.send(sid, b"", end=True)
    c.wait(sid, 5)
    check_eq((rounds, stream_how(c, sid), c.data[sid].decode()),
             (["open", "open"], "end", csv_preds(range(2))),
             "a model taking 2 s (idle_timeout_ms %d, min_rate_bytes 64), a client sending one "
             "line and waiting for its prediction, twice: both predictions, the stream open in "
             "between, then END_STREAM (not cut while the gateway waits on the model)" % IDLE_MS)
    c.close()
    st, _, out = curl(gw.invoke_url("slow2"), csv_body(ROWS[:1]),
                      ["Content-Type: text/csv", "Accept: text/csv"], http2=True)
    check_eq((st, out), (200, csv_preds([0])), "... as a unary request on that model is answered")

# ---- Gateway 9: SIGTERM after a client sent its whole body, its output backed up -------
# The client does not read for 1.5 s: the gateway's output to it backs up and it stops
# processing that connection's input. Stream 1 then sends its last 73 rows and END_STREAM;
# 0.3 s later, SIGTERM. docs/transform.md: a stream whose client has sent its whole body
# is finished as usual.
gw = Gateway({"demo": {"model": DEMO_MODEL, "max_batch_rows": 64}}, drain_timeout_ms="4000",
             idle_timeout_ms="10000")
c = H2Client(gw.port, window=(1 << 31) - 1, conn_window=(1 << 31) - 1 - 65535)
c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
hd = CSV + [("x-infergate-join", "input")]
body = csv_body(ROWS * 10).encode()
first = body[:body.rfind(b"\n", 0, 1000000) + 1]
rest = body[len(first):len(first) + 20000]
rest = rest[:rest.rfind(b"\n") + 1]
sids = [c.open("/transform/demo", hd) for _ in range(6)]
c.pump(0.1, consume=False)  # the gateway's SETTINGS (its stream window)
for s in sids:
    c.send(s, first if s == sids[0] else body[:1000000])
time.sleep(1.5)
n = c.send(sids[0], rest, end=True)
time.sleep(0.3)
gw.proc.send_signal(signal.SIGTERM)
c.wait(sids[0], 8)
try:
    code = gw.proc.wait(timeout=8)
except Exception:
    code = stop_proc(gw.proc, signal.SIGKILL)
nrows = first.count(b"\n") + rest.count(b"\n")
out = c.data[sids[0]].decode()
check_eq((n == len(rest), stream_how(c, sids[0]), len(out.splitlines()),
          out == "".join(l + "," + PRED[i % 400][1] + "\n"
                         for i, l in enumerate(body.decode().splitlines()[:nrows])),
          code),
         (True, "end", nrows, True, 0),
         "SIGTERM 0.3 s after a client sent the last rows of its stream and END_STREAM (its "
         "output backed up, 5 other streams still sending): all %d records, END_STREAM, exit 0; "
         "(all sent, how it ended, records, all right, exit status)" % nrows)
c.close()

print("runtime %.1f s" % (time.time() - T0))
finish()
