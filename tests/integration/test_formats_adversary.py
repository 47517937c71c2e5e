#!/usr/bin/python3
"""test_formats_adversary.py - the RecordIO-protobuf, libsvm and conversion
paths of issue 18 under attack, through the real bin/infergate and a hostile
model container (formats_container.py, its protobuf written by hand):

1. request amplification: a 6 MB RecordIO int32 record (1 byte a value)
   converted to CSV, a libsvm row "0 999999:1" for a model of a million
   features, sparse JSON shapes of 2^31 and 2^32-1, 100,000 tiny records,
   a record split into 2,000 continuation frames, a varint length claiming
   4 GiB, 100,000 empty map entries; the peak memory each takes (VmHWM,
   reset before) stays a small multiple of its body;
2. a libsvm row of no pairs becomes an all-zero sparse record (shape
   [feature_dim]), first row or not (it was written as a dense record of no
   values when it came first);
3. hostile RecordIO / JSON answers converted to the client's Accept: a 8 MB
   int32 tensor (it took ~370 MB: 24 bytes a number), 16 million empty
   label entries (protobuf-c's 16x of 32 MB), 1,000 and 1,025 labels,
   non-finite float32, float64 and int32 tensors, records split into 2,000
   frames, several records a row, trailing garbage, empty records, JSON
   nested 100,000 deep, 8 million numbers to RecordIO; exact answers or the
   exact refusal, peak memory bounded;
4. budget: after every attack the bytes held (/metrics) are back to what
   they were at idle; an honest client gets exact answers all along; a
   /transform stream of 300 libsvm rows "0 999999:1" for a CSV model (each
   densified to 2 MB to be checked, on the event loop for small chunks)
   stalls the loop well under a second (2.5 s when a column was one
   append);
5. HTTP: a RecordIO body one byte a DATA frame (h2c), a Content-Length
   never sent, a stream that stops sending, client resets racing
   conversions on the decoder threads (bodies over 64 KiB), connections
   closed mid-body;
6. SIGTERM during conversions: exit 0, no sanitizer report.
7. the adversary's findings in the gateway, fixed: stream rows converted
   within their own caps, one answer that cannot be converted failing its
   row alone, big answers converted off the loop, libsvm index bases.

    INFERGATE_BIN=bin/infergate-san /usr/bin/python3 \\
        tests/integration/test_formats_adversary.py
"""
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import formats_container as fc  # noqa: E402
from iglib import (BIN, Gateway, H2Client, check, check_eq, finish, rss_kb,  # noqa: E402
                   stop_proc, uses_asan)

T0 = time.time()
RIO, CSV, JSON, JSONL, LSV = ("application/x-recordio-protobuf", "text/csv", "application/json",
                              "application/jsonlines", "text/libsvm")
KNOWN = os.environ.get("FORMATS_ADVERSARY_KNOWN", "1") == "1"
tmp = tempfile.mkdtemp(prefix="ig-fmt-adv-")
rnd = random.Random(1818)
MiB = 1 << 20


def log(msg):
    print("[%5.1fs] %s" % (time.time() - T0, msg), flush=True)


class Container:
    """formats_container.py on a free port, stderr in tmp."""

    def __init__(self):
        self.err = open(os.path.join(tmp, "container-%d.log" % time.monotonic_ns()), "w+")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "formats_container.py")],
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError("formats_container: %r" % line)
        self.url = "http://" + line.split()[-1]

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=30) as r:
            return json.loads(r.read())

    def calls(self):
        return self.stats()["calls"]

    def mode(self, mode, n=1):
        req = urllib.request.Request(self.url + "/mode", json.dumps({"mode": mode, "n": n})
                                     .encode(), method="POST")
        urllib.request.urlopen(req, timeout=30).read()

    def stop(self):
        return stop_proc(self.proc, signal.SIGTERM, 10)


def post(gw, ep, body, ctype, accept, attrs=None, timeout=120):
    """-> (status, lower-cased headers, body bytes); (0, {}, b"") when the
    connection failed."""
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
    h = {"Content-Type": ctype, "Accept": accept}
    if attrs:
        h["X-Amzn-SageMaker-Custom-Attributes"] = attrs
    try:
        c.request("POST", "/endpoints/%s/invocations" % ep,
                  body if isinstance(body, bytes) else body.encode(), h)
        r = c.getresponse()
        out = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, out
    except OSError:
        return 0, {}, b""
    finally:
        c.close()


def err_body(msg):
    return json.dumps({"message": msg}, separators=(",", ":")).encode()


def metric(gw, name):
    with urllib.request.urlopen(gw.url + "/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def held_back(gw, want, timeout=15):
    """Wait for infergate_buffered_bytes to come back to <want>; the last value."""
    end = time.time() + timeout
    v = metric(gw, "infergate_buffered_bytes")
    while v != want and time.time() < end:
        time.sleep(0.1)
        v = metric(gw, "infergate_buffered_bytes")
    return v


def peak_kb(pid, fn):
    """Run fn(); -> (its result, the process's peak RSS during it less its RSS
    before, in KiB). VmHWM is reset first (clear_refs 5)."""
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")
    before = rss_kb(pid)
    out = fn()
    with open("/proc/%d/status" % pid) as f:
        hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
    return out, hwm - before


def max_ping_during(gw, fn):
    """Run fn() while another connection GETs /ping every 5 ms: -> (fn's
    result, the slowest /ping in seconds): how long the event loop stalled."""
    stop, lat = threading.Event(), [0.0]

    def pinger():
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=120)
        while not stop.is_set():
            t = time.time()
            c.request("GET", "/ping")
            c.getresponse().read()
            lat.append(time.time() - t)
            stop.wait(0.005)
        c.close()

    th = threading.Thread(target=pinger, daemon=True)
    th.start()
    try:
        return fn(), max(lat)
    finally:
        stop.set()
        th.join(130)


# ---- records written by hand -------------------------------------------------

def feat_record(values, kind="f32", keys=None, shape=None):
    """Record{features{"values": <kind>Tensor{values, keys, shape}}}, fields in
    number order as protobuf-c packs them; empty repeated fields left out."""
    if kind == "f32":
        packed, num = b"".join(struct.pack("<f", v) for v in values), 2
    elif kind == "i32ones":
        packed, num = b"\x01" * values, 7
    else:
        packed, num = b"".join(fc.varint(v) for v in values), 7
    t = fc.field(1, packed) if packed else b""
    if keys:
        t += fc.field(2, b"".join(fc.varint(k) for k in keys))
    if shape:
        t += fc.field(3, b"".join(fc.varint(s) for s in shape))
    return fc.field(1, fc.field(1, b"values") + fc.field(2, fc.field(num, t)))


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(text):
    return struct.pack("<f", float(text))


# ---- an honest client, all along ---------------------------------------------

class Honest(threading.Thread):
    """CSV rows to the RecordIO endpoint (converted both ways), JSON back:
    each answer exact. Own calls (custom attributes): row i scores i."""

    def __init__(self, gw):
        super().__init__(daemon=True)
        self.gw, self.halt, self.n, self.bad = gw, threading.Event(), 0, []

    def run(self):
        r = random.Random(7)
        while not self.halt.is_set():
            k = r.randint(1, 6)
            body = "".join(",".join(repr(r.uniform(-9, 9)) for _ in range(5)) + "\n"
                           for _ in range(k))
            want = b'{"predictions":[%s]}' % b",".join(b'{"score":%d.0}' % i for i in range(k))
            st, _, out = post(self.gw, "honest", body, CSV, JSON, attrs="mode=ok", timeout=120)
            if (st, out) != (200, want):
                self.bad.append((st, out[:300]))
            self.n += 1
            self.halt.wait(0.05)

    def stop(self):
        self.halt.set()
        self.join(180)


# ---- 1. request amplification --------------------------------------------------

def request_tests(gw, cont, asan):
    log("== 1. request bodies that grow when decoded or converted")
    pid = gw.proc.pid
    # a 6 MB int32 record, one byte a value: protobuf-c's int32 array is
    # 4 bytes a value, the converter's vector 8 (16 with keys), then CSV
    n = 6_200_000
    body = fc.frame(feat_record(n, "i32ones"))
    (st, _, out), kb = peak_kb(pid, lambda: post(gw, "csv", body, RIO, CSV))
    got = cont.stats()
    check_eq((st, out, got["last_ctype"], got["last_len"]), (200, b"0.0\n", CSV, 4 * n),
             "a %d-byte int32 record converted to a CSV line of %d values 1.0"
             % (len(body), n))
    log("   peak %d MiB over the %d MiB body" % (kb >> 10, len(body) >> 20))
    if not asan:
        check(kb * 1024 < 20 * len(body),
              "the int32 record's conversion peaks under 20x its body: %d MiB for %d MiB (24x "
              "with a key a dense value)" % (kb >> 10, len(body) >> 20))

    before = cont.calls()
    st, _, out = post(gw, "csv", "0 999999:1\n", LSV, CSV)
    check_eq((st, out), (400, err_body("The request's rows, converted to text/csv, would take "
                                       "more than 65580 bytes.")),
             "libsvm '0 999999:1' for a model of a million features: 2 MB of CSV refused")
    js = {"instances": [{"features": {"keys": [2 ** 31 - 1], "shape": [2 ** 31],
                                      "values": [1]}}]}
    st, _, out = post(gw, "csv", json.dumps(js), JSON, CSV)
    check_eq((st, out), (400, err_body("Row 1: a sparse row of 2147483648 features is too wide "
                                       "to write as text/csv (at most 1000000).")),
             "a sparse JSON row of shape 2^31 to CSV: refused by its width")
    js = {"instances": [{"features": {"keys": [0], "shape": [2 ** 32], "values": [1]}}]}
    st, _, out = post(gw, "rio", json.dumps(js), JSON, CSV)
    check_eq((st, out), (400, err_body("Row 1: the shape [4294967296] is out of range.")),
             "a sparse JSON row of shape 2^32: refused")
    check_eq(cont.calls() - before, 0, "no call for the refused rows")
    js = {"instances": [{"features": {"keys": [2 ** 32 - 2], "shape": [2 ** 32 - 1],
                                      "values": [2.5]}}]}
    st, _, out = post(gw, "rio", json.dumps(js), JSON, CSV)
    check_eq((st, out, bytes.fromhex(cont.stats()["last_body"])),
             (200, b"0.0\n", fc.frame(feat_record([2.5], keys=[2 ** 32 - 2],
                                                  shape=[2 ** 32 - 1]))),
             "a sparse JSON row of shape 2^32-1, key 2^32-2: one sparse record, nothing dense")

    # sparse rows written densely (runs of zeros are written in bulk)
    sp = [(1, [0], [2.5]), (1, [], []), (3, [2], [-1.5]), (600, [0, 255, 256, 599],
                                                          [1.25, -2.0, 3e-7, 4.5]),
          (1000, [], []), (513, [256], [7.0]), (2, [1], [0.1]), (257, [0, 256], [1.0, 2.0])]
    js = {"instances": [{"features": {"keys": k, "shape": [w], "values": v}} for w, k, v in sp]}
    want = ""
    for w, k, v in sp:
        d = ["0"] * w
        for key, val in zip(k, v):
            d[key] = repr(val)
        want += ",".join(d) + "\n"
    st, _, out = post(gw, "csv", json.dumps(js), JSON, CSV, attrs="mode=ok")
    check_eq((st, bytes.fromhex(cont.stats()["last_body"]).decode()), (200, want),
             "sparse JSON rows of widths 1 to 1000 written as dense CSV lines, exactly")

    # many tiny records: 100,000 rows in 2.4 MB
    nrec = 100_000
    body = fc.frame(feat_record([1.0])) * nrec
    t = time.time()
    (st, _, out), kb = peak_kb(pid, lambda: post(gw, "csv", body, RIO, CSV, attrs="mode=ok"))
    lines = out.split(b"\n")
    check_eq((st, len(lines) - 1, lines[0], lines[-1]), (200, nrec, b"0.0", b""),
             "%d tiny records converted to CSV lines: one answer each" % nrec)
    log("   %d records: %.1f s, peak %d MiB" % (nrec, time.time() - t, kb >> 10))

    # a record split into 2,001 frames (its floats hold the magic 2,000 times)
    m = struct.unpack("<f", fc.MAGIC)[0]
    payload = None
    for k in range(4):  # a uid first, so that the floats sit 4-aligned
        payload = fc.field(3, b"u" * k) + feat_record([m] * 2000 + [0.5])
        if fc.split_frames(payload).count(fc.MAGIC) == 2001:
            break
    body = fc.split_frames(payload)
    check_eq(body.count(fc.MAGIC), 2001, "the request record is split into 2001 frames")
    st, _, out = post(gw, "csv", body, RIO, CSV)
    line = bytes.fromhex(cont.stats()["last_body"])
    # last_body keeps 4 KiB: the first values
    vals = line.split(b",")[:-1]
    check_eq((st, all(f32_bits(v) == fc.MAGIC for v in vals), len(vals) > 100),
             (200, True, True),
             "a record of 2001 frames joined: its values the magic's float32, exactly")

    before = cont.calls()
    for what, payload, msg in [
        ("a field whose varint length claims 4 GiB", b"\x0a\xff\xff\xff\xff\x0f",
         "Row 1: the record is not a valid RecordIO-protobuf Record (the protobuf does not "
         "parse)."),
        ("100,000 empty feature map entries", b"\x0a\x00" * 100_000 + feat_record([1.0]),
         "Row 1: the record is too large to decode."),
        ("a frame length of 512 MiB over a 16-byte body", None,
         "Row 1: truncated RecordIO record: the body ends inside its data."),
    ]:
        b = fc.frame(payload) if payload is not None else \
            fc.MAGIC + struct.pack("<I", 512 * MiB - 4) + b"\0" * 8
        st, _, out = post(gw, "csv", b, RIO, CSV)
        check_eq((st, out), (400, err_body(msg)), "%s: refused" % what)
    check_eq(cont.calls() - before, 0, "no call for the bad records")

    log("== 2. a libsvm row of no pairs is an all-zero sparse record")
    zero = fc.frame(feat_record([], shape=[5]))
    for body, want in [("1\n", zero),
                       ("0 2:1\n1\n", fc.frame(feat_record([1.0], keys=[2], shape=[5])) + zero)]:
        st, _, out = post(gw, "rio", body, LSV, CSV, attrs="mode=ok")
        check_eq((st, bytes.fromhex(cont.stats()["last_body"])), (200, want),
                 "libsvm %r to RecordIO: the label-only row is sparse, shape [5], whatever "
                 "row it is" % body)


# ---- 3. hostile answers ------------------------------------------------------------

def answer_tests(gw, cont, asan):
    log("== 3. hostile answers converted to the client's Accept")
    pid = gw.proc.pid
    rows = "1,2,3,4,5\n" * 300  # a 300-row call may be answered in 64 MiB
    two = "1,2,3,4,5\n" * 2

    n = 8_000_000
    (st, _, out), kb = peak_kb(pid, lambda: post(gw, "rio", rows, CSV, CSV,
                                                 attrs="mode=i32-huge;n=%d" % n))
    lines = out.split(b"\n")
    check_eq((st, len(lines[0]), lines[0][:6], lines[1], len(lines)),
             (200, 2 * n - 1, b"1,1,1,", b"1.0", 301),
             "an int32 tensor of %d values (a byte each) as a CSV line" % n)
    log("   %.0f MB answer: peak %d MiB" % (n / 1e6, kb >> 10))
    if not asan:
        check(kb < 120 * 1024, "its conversion peaks under 120 MiB: %d MiB (230 with 24 bytes "
              "a number held)" % (kb >> 10))

    n = 16_000_000
    t = time.time()
    (st, hd, out), kb = peak_kb(pid, lambda: post(gw, "rio", rows, CSV, JSON,
                                                  attrs="mode=maplabels;n=%d" % n))
    check_eq((st, hd.get("x-amzn-errortype"), out),
             (500, "InternalFailure", err_body("Row 1: the model's RecordIO answer is too large "
                                               "to decode.")),
             "%d empty label entries (%.0f MB): refused" % (n, 2 * n / 1e6))
    log("   %.0f MB of empty entries: %.1f s, peak %d MiB" % (2 * n / 1e6, time.time() - t,
                                                             kb >> 10))
    if not asan:
        check(kb < 220 * 1024, "protobuf-c's share is bounded by the response's room: %d MiB "
              "(280 at 16x the answer)" % (kb >> 10))

    # protobuf-c's scan of a field (~40 bytes) and its unknown-field copy
    # (~25) pass 16 times the 2 bytes each takes: refused at the cap
    for n in (1000, 3_000_000):
        (st, _, out), kb = peak_kb(pid, lambda: post(gw, "rio", rows, CSV, JSON,
                                                     attrs="mode=unknown;n=%d" % n))
        check_eq((st, out), (500, err_body("Row 1: the model's RecordIO answer is too large to "
                                           "decode.")),
                 "a tensor of %d unknown fields: refused at protobuf-c's cap" % n)
    log("   3,000,000 unknown fields: peak %d MiB" % (kb >> 10))

    # JSON answers to RecordIO: numbers collected as doubles, bounded by room
    n = 8_000_000
    (st, _, out), kb = peak_kb(pid, lambda: post(gw, "json", rows, CSV, RIO,
                                                 attrs="mode=i32-huge;n=%d" % n))
    recs = fc.read_records(out) if st == 200 else []
    check_eq((st, len(recs), 4 * n < len(recs[0]) < 4 * n + 40 if recs else 0), (200, 300, True),
             "a JSON answer of %d numbers as one RecordIO record of %d floats" % (n, n))
    log("   %d numbers to RecordIO: peak %d MiB" % (n, kb >> 10))
    if not asan:
        check(kb < 250 * 1024, "its conversion peaks under 250 MiB: %d MiB (350 with 24 bytes "
              "a number held)" % (kb >> 10))

    names = ["l%04d" % k for k in range(1000)]
    st, _, out = post(gw, "rio", two, CSV, JSON, attrs="mode=labels;n=1000")
    one = "{" + ",".join('"%s":1.5' % k for k in names) + "}"
    check_eq((st, out.decode()), (200, '{"predictions":[%s,%s]}' % (one, one)),
             "records of 1000 labels as JSON objects")
    st, _, out = post(gw, "rio", two, CSV, CSV, attrs="mode=labels;n=1000")
    check_eq((st, out.decode()), (200, (",".join(["1.5"] * 1000) + "\n") * 2),
             "records of 1000 labels as CSV lines")
    st, _, out = post(gw, "json", two, CSV, RIO, attrs="mode=labels;n=1024")
    check_eq((st, len(fc.read_records(out)) if st == 200 else 0), (200, 2),
             "JSON objects of 1024 members as RecordIO records")
    st, hd, out = post(gw, "json", two, CSV, RIO, attrs="mode=labels;n=1025")
    check_eq((st, out), (500, err_body(
        "Row 1: the model's answer '{\"l0000\":1.5,\"l0001\":1.5,\"l0002\":1.5,\"l0...' cannot be "
        "written as application/x-recordio-protobuf: it has more than 1024 outputs.")),
        "a JSON object of 1025 members to RecordIO: refused")

    for mode, accept, want in [
        ("nonfinite", JSON, (500, err_body(
            "Row 1: the model's RecordIO answer cannot be written as application/json: the label "
            "'score' holds a value that is not a finite number."))),
        ("f64", CSV, (200, b"0.1\n1.1\n")),
        ("f64", JSON, (200, b'{"predictions":[{"score":0.1},{"score":1.1}]}')),
        ("i32", CSV, (200, b"0\n1\n")),
        ("i32", JSONL, (200, b'{"score":0}\n{"score":1}\n')),
        ("empty", JSON, (200, b'{"predictions":[{},{}]}')),
        ("empty", CSV, (500, err_body(
            "Row 1: the model's RecordIO answer cannot be written as text/csv: it holds no "
            "numbers."))),
        ("many", CSV, (500, err_body(
            "Row 1: The model returned 6 predictions for 2 rows; these rows were not "
            "answered."))),
        ("trailing", CSV, (500, err_body(
            "Row 1: The model's answer is not valid application/x-recordio-protobuf."))),
    ]:
        st, _, out = post(gw, "rio", two, CSV, accept, attrs="mode=%s;n=3" % mode)
        check_eq((st, out), want, "a RecordIO answer '%s' as %s" % (mode, accept))

    st, _, out = post(gw, "rio", two, CSV, JSON, attrs="mode=split;n=2000")
    ok = st == 200
    if ok:
        preds = json.loads(out)["predictions"]
        ok = [len(p["score"]) for p in preds] == [2001, 2001] and \
            all(f32_bits(repr(v)) == fc.MAGIC for p in preds for v in p["score"][:-1]) and \
            [p["score"][-1] for p in preds] == [0.0, 1.0]
    check(ok, "records split into 2001 frames each, joined and converted exactly: %d %r"
          % (st, out[:200]))

    t = time.time()
    st, _, out = post(gw, "jsonl", two, CSV, CSV, attrs="mode=deep;n=100000")
    check_eq((st, out), (500, err_body("Row 1: The model's answer is not valid "
                                       "application/jsonlines.")),
             "a JSON Lines answer nested 100,000 deep to CSV: refused (each line is read as "
             "JSON, at most 64 levels deep, as a JSON answer is)")
    st, _, out = post(gw, "json", two, CSV, CSV, attrs="mode=deep;n=100000")
    check_eq((st, out), (500, err_body("Row 1: The model's answer is not valid "
                                       "application/json.")),
             "a JSON answer nested 100,000 deep: refused")
    check(time.time() - t < 10, "deep answers refused in %.1f s" % (time.time() - t))


# ---- 5. HTTP ----------------------------------------------------------------

def http_tests(gw, cont):
    log("== 5. trickled, stalled, reset and closed bodies")
    rows = [[rnd.uniform(-5, 5) for _ in range(5)] for _ in range(7)]
    body = b"".join(fc.frame(feat_record(r)) for r in rows)
    c = H2Client(gw.port)
    sid = c.open("/endpoints/csv/invocations", [("content-type", RIO), ("accept", CSV),
                                                ("x-amzn-sagemaker-custom-attributes",
                                                 "mode=ok")])
    for i in range(len(body)):
        c.send(sid, body[i:i + 1], end=i == len(body) - 1)
    c.wait(sid, 20)
    got = bytes.fromhex(cont.stats()["last_body"]).decode()
    want = "".join(",".join(repr(f32(x)) for x in r) + "\n" for r in rows)
    check_eq((c.headers.get(sid, {}).get(":status"), c.data.get(sid),
              [[f32(float(v)) for v in line.split(",")] for line in got.splitlines()]),
             ("200", b"".join(b"%d.0\n" % i for i in range(7)),
              [[f32(float(v)) for v in line.split(",")] for line in want.splitlines()]),
             "a RecordIO body one byte a DATA frame (%d frames), converted to CSV" % len(body))
    c.close()

    # a Content-Length never sent, a stream that stops: cut by the stall rule
    s = socket.create_connection(("127.0.0.1", gw.port))
    s.sendall(b"POST /endpoints/csv/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: " +
              RIO.encode() + b"\r\nContent-Length: 5000000\r\n\r\n" + body[:100])
    c = H2Client(gw.port)
    sid = c.open("/endpoints/csv/invocations", [("content-type", RIO), ("accept", CSV)])
    c.send(sid, body[:50])
    s.settimeout(15)
    t = time.time()
    try:
        got = s.recv(65536)
        while got and b"\r\n\r\n" not in got:
            got += s.recv(65536)
    except OSError:
        got = b""
    c.wait(sid, 15)
    log("   stalled bodies cut after %.1f s: %r; h2 %r" % (time.time() - t, got[:40],
                                                            c.resets.get(sid)))
    check(time.time() - t < 14, "a Content-Length never sent is cut by the stall rule")
    check(c.done(sid), "an h2 stream that stops sending is cut by the stall rule")
    s.close()
    c.close()

    # client resets and closes racing conversions on the decoder threads
    big = b"".join(fc.frame(feat_record([rnd.uniform(-1, 1) for _ in range(50)]))
                   for _ in range(3000))  # 700 KB: decoded off the loop
    t = time.time()
    for rnd_i in range(3):
        conns = [H2Client(gw.port) for _ in range(4)]
        for k, c in enumerate(conns):
            for j in range(6):
                sid = c.open("/endpoints/csv/invocations", [("content-type", RIO),
                                                            ("accept", CSV)])
                c.send_all(sid, big, end=True, timeout=20)
                if (j + k) % 3 == 0:
                    c.reset(sid)
            if k % 2 == 0:
                c.close()  # gone with streams in the decoder
        time.sleep(0.05 * rnd_i)
        for c in conns:
            if not c.closed:
                for s_ in list(c.data):
                    c.reset(s_)
                c.close()
    log("   resets and closes over %.1f s" % (time.time() - t))
    check(gw.alive(), "the gateway is alive after resets racing conversions")


def transform_tests(gw, cont, asan):
    log("== 4b. a transform stream of wide sparse rows for a CSV model")
    from iglib import curl
    # each "0 999999:1" is 2 MB of CSV: the stream checks each record alone
    # (16 KiB chunks on the event loop itself): densifying a million columns
    # one append each stalled the loop 2.5 s for these 3.3 KB
    body = "0 999999:1\n" * 300
    (st, _, out), lat = max_ping_during(gw, lambda: curl(
        gw.url + "/transform/csv", body, ["Content-Type: " + LSV, "Accept: " + CSV], http2=True))
    check_eq((st, out.count("error,")), (200, 300), "300 rows of 2 MB of CSV each: refused")
    log("   the event loop stalled %.2f s" % lat)
    limit = 3.0 if asan else 1.0
    check(lat < limit, "300 wide libsvm rows in a transform stream stall the loop < %.0f s: "
          "%.2f s" % (limit, lat))


# ---- 6. SIGTERM -------------------------------------------------------------

def sigterm_test(cont):
    log("== 6. SIGTERM while conversions run")
    gw = Gateway({"csv": {"model": cont.url, "upstream_content_type": CSV,
                          "upstream_accept": CSV, "feature_dim": "50", "retry_max": "0"}})
    big = b"".join(fc.frame(feat_record([0.25] * 50)) for _ in range(12000))  # 2.8 MB
    stop = threading.Event()

    def client():
        while not stop.is_set():
            post(gw, "csv", big, RIO, JSON, timeout=30)

    ts = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for t in ts:
        t.start()
    time.sleep(1.0)
    code = gw.stop(timeout=30)
    stop.set()
    for t in ts:
        t.join(40)
    err = gw.stderr()
    check_eq(code, 0, "SIGTERM during conversions: exit 0; stderr: " + err[-800:])
    return err


# ---- the findings in the gateway (fixed) -----------------------------------

def known_tests(gw, cont):
    log("== the adversary's findings in gateway.c and transform.c")
    from iglib import curl
    body = "".join("0 %d:1\n" % (i + 1) for i in range(10))
    st, _, out = curl(gw.url + "/transform/csv20k", body, ["Content-Type: " + LSV,
                                                            "Accept: " + CSV], http2=True)
    check_eq((st, out.count("error,")), (200, 0),
             "transform.c: 10 libsvm rows of 40 KB of CSV each (each fits alone, as a unary "
             "request of that row does) all answered: %r" % out[:200])
    cont.mode("nonfinite")
    st, _, out = curl(gw.url + "/transform/rio", "1,2,3,4,5\n" * 5,
                      ["Content-Type: " + CSV, "Accept: " + CSV], http2=True)
    cont.mode("ok")
    check_eq((st, out.count("error,")), (200, 1),
             "gateway.c: one answer that cannot be converted fails its record alone in a "
             "transform stream: %r" % out[:300])
    body = "0 999999:1\n" * 20000
    t = time.time()
    (st, _, out), lat = max_ping_during(gw, lambda: curl(
        gw.url + "/transform/csv", body, ["Content-Type: " + LSV, "Accept: " + CSV], http2=True))
    check(time.time() - t < 1.0 and lat < 0.2,
          "transform.c: 220 KB of libsvm rows refused in < 1 s (each densified to 2 MB first, "
          "on the loop for small chunks): %.2f s, loop stalled %.2f s" % (time.time() - t, lat))
    (st, _, out), lat = max_ping_during(gw, lambda: post(
        gw, "rio", "1,2,3,4,5\n" * 300, CSV, CSV, attrs="mode=i32-huge;n=30000000"))
    log("   30 MB of RecordIO answered as 60 MB of CSV: the event loop stalled %.2f s" % lat)
    check(st == 200 and lat < 0.5,
          "gateway.c: a 30 MB RecordIO answer converted to 60 MB of CSV off the event loop: "
          "loop stalled %.2f s" % lat)
    # libsvm_index_base = 1, upstream text/libsvm: the same row two ways
    post(gw, "lsv1", "5,0,0,0,2\n", CSV, CSV, attrs="mode=ok")
    from_csv = bytes.fromhex(cont.stats()["last_body"])
    post(gw, "lsv1", "0 1:5 5:2\n", LSV, CSV, attrs="mode=ok")
    from_lsv = bytes.fromhex(cont.stats()["last_body"])
    check_eq(from_lsv.replace(b".0", b""), from_csv.replace(b".0", b""),
             "gateway.c: a 1-based libsvm row reaches a libsvm model as the same CSV row does "
             "(0-based)")


# ---- main ------------------------------------------------------------------------

cont = Container()
hcont = Container()  # the honest client's: its stats are not the attacks'
conv = {"model": cont.url, "retry_max": "0", "breaker_failures": "1000",
        "max_batch_rows": "1000", "request_timeout_ms": "120000"}
eps = {
    "rio": dict(conv, upstream_content_type=RIO, upstream_accept=RIO, feature_dim="5"),
    "csv": dict(conv, upstream_content_type=CSV, upstream_accept=CSV, feature_dim="1000000"),
    "csv20k": dict(conv, upstream_content_type=CSV, upstream_accept=CSV, feature_dim="20000"),
    "json": dict(conv, upstream_accept=JSON),
    "jsonl": dict(conv, upstream_accept=JSONL),
    "lsv1": dict(conv, upstream_content_type=LSV, upstream_accept=CSV, feature_dim="5",
                 libsvm_index_base="1"),
    "honest": dict(conv, model=hcont.url, upstream_content_type=RIO, upstream_accept=RIO,
                   feature_dim="5"),
}
sig_err = ""
try:
    with Gateway(eps, idle_timeout_ms="3000") as gw:
        asan = uses_asan(gw.proc.pid)
        idle = held_back(gw, 0, timeout=1)
        log("bytes held at idle: %s" % idle)
        honest = Honest(gw)
        honest.start()
        request_tests(gw, cont, asan)
        check_eq(held_back(gw, idle), idle, "bytes held back to idle after the request attacks")
        answer_tests(gw, cont, asan)
        check_eq(held_back(gw, idle), idle, "bytes held back to idle after the answer attacks")
        transform_tests(gw, cont, asan)
        http_tests(gw, cont)
        check_eq(held_back(gw, idle, timeout=30), idle,
                 "bytes held back to idle after stalls, resets and closes")
        if KNOWN:
            known_tests(gw, cont)
        honest.stop()
        log("honest client: %d requests, %d wrong" % (honest.n, len(honest.bad)))
        check(honest.n > 0 and not honest.bad,
              "the honest client got exact answers throughout: %r" % honest.bad[:3])
        check(gw.alive(), "the gateway is alive after all of it")
    err = gw.stderr()
    sig_err = sigterm_test(cont)
    for text in (err, sig_err):
        for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            at = text.find(bad)
            check(at < 0, "sanitizer report in the gateway's stderr: %s"
                  % text[max(0, at - 200):at + 1500])
finally:
    for c in (cont, hcont):
        check_eq(c.stop(), 0, "formats_container exit status on SIGTERM")
log("done (%s)" % os.path.basename(BIN))
finish()
