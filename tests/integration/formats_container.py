#!/usr/bin/python3
"""formats_container.py - a hostile model container of the SageMaker
contract for tests/integration/test_formats_adversary.py: it answers in
RecordIO-protobuf, CSV, JSON or JSON Lines (by Accept) with answers that
try to make the gateway's conversion of them expensive or wrong. Its
protobuf is written by hand here (varints, packed fields), from
proto/record.proto's field numbers, not by the gateway's code.

    /usr/bin/python3 tests/integration/formats_container.py [--port N]

- GET /ping: 200.  GET /stats: {"calls", "rows", "last_ctype",
  "last_accept", "last_len", "last_body" (hex, first 64 KiB)}.
- POST /invocations: counts the rows of the body (RecordIO: records, split
  ones once; JSON: "instances"; other formats: non-empty lines), then
  answers them in the mode named by the custom attributes
  ("mode=NAME;n=N", forwarded by the gateway), else the one POST /mode
  set ({"mode": NAME, "n": N}; at first "ok"):
    ok          one prediction a row: score = the row's number (0-based)
    i32-huge    row 1's RecordIO record holds an Int32Tensor of n 1-byte
                values (JSON/CSV: an array / a line of n ones)
    f64, i32    the score as a Float64Tensor / Int32Tensor
    labels      every record holds n labels l0000.. of one float32 each
                (JSON: an object of n members)
    nonfinite   row 1's score is a float32 NaN (JSON: the string "NaN")
    split       every record is split by the dmlc writer's rule into n+1
                frames (its float32 values hold the magic n times)
    maplabels   row 1's record is n empty label map entries (2 bytes each)
    unknown     row 1's tensor holds n unknown varint fields (2 bytes each)
    empty       every record is empty (no labels)
    many        n records a row
    trailing    the answer and then n garbage bytes
    deep        row 1 is an array nested n deep (JSON / JSON Lines)
    sleep       sleeps n ms, then answers as ok
"""
import argparse
import http.server
import json
import signal
import struct
import sys
import threading
import time

RIO = "application/x-recordio-protobuf"
MAGIC = struct.pack("<I", 0xCED7230A)


class State:
    lock = threading.Lock()
    mode = "ok"  # POST /mode {"mode": ..., "n": ...}: for calls without attributes
    n = 1
    calls = 0
    rows = 0
    last = {"ctype": "", "accept": "", "len": 0, "body": b""}


# ---- protobuf by hand ------------------------------------------------------

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited field."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def tensor(kind, values):
    if kind == "i32ones":  # <values> ones, built fast
        packed, num = b"\x01" * values, 7
    elif kind == "f32":
        packed, num = b"".join(struct.pack("<f", v) for v in values), 2
    elif kind == "f32raw":  # values are 4-byte strings
        packed, num = b"".join(values), 2
    elif kind == "f64":
        packed, num = b"".join(struct.pack("<d", v) for v in values), 3
    else:  # i32: 1-byte varints for small values
        packed, num = b"".join(varint(v & 0xFFFFFFFFFFFFFFFF) for v in values), 7
    return field(num, field(1, packed))  # Value{<kind>_tensor{values}}


def label_record(labels):
    """Record{label: {name: Value}} in the given order."""
    return b"".join(field(2, field(1, name.encode()) + field(2, value)) for name, value in labels)


def frame(payload, cflag=0):
    pad = (4 - len(payload) % 4) % 4
    return MAGIC + struct.pack("<I", cflag << 29 | len(payload)) + payload + b"\0" * pad


def split_frames(payload):
    """dmlc's writer: split where the magic sits at a 4-aligned offset."""
    parts, start = [], 0
    i = 0
    while i + 4 <= len(payload):
        if payload[i:i + 4] == MAGIC:
            parts.append(payload[start:i])
            start = i + 4
        i += 4
    parts.append(payload[start:])
    if len(parts) == 1:
        return frame(payload)
    out = frame(parts[0], 1)
    for p in parts[1:-1]:
        out += frame(p, 2)
    return out + frame(parts[-1], 3)


def read_records(body):
    """Records of a RecordIO body (split ones joined); ValueError if bad."""
    recs, i, cur = [], 0, None
    while i < len(body):
        if i + 8 > len(body) or body[i:i + 4] != MAGIC:
            raise ValueError("bad frame at %d" % i)
        word = struct.unpack("<I", body[i + 4:i + 8])[0]
        n, cf = word & ((1 << 29) - 1), word >> 29
        data = body[i + 8:i + 8 + n]
        i += 8 + n + (4 - n % 4) % 4
        if cf == 0:
            recs.append(data)
        elif cf == 1:
            cur = data
        elif cf == 2:
            cur += MAGIC + data
        else:
            recs.append(cur + MAGIC + data)
            cur = None
    return recs


def count_rows(ctype, body):
    if ctype == RIO:
        return len(read_records(body))
    if ctype == "application/json":
        v = json.loads(body)
        return len(v["instances"] if isinstance(v, dict) else v)
    return sum(1 for line in body.split(b"\n") if line.strip())


# ---- answers -----------------------------------------------------------------

def answer(mode, n, accept, nrows):
    rio = accept in ("", "*/*", RIO)
    preds = []  # one per row: (record payload or None, text value)
    for i in range(nrows):
        rec, text = label_record([("score", tensor("f32", [float(i)]))]), repr(float(i))
        if mode == "i32-huge" and i == 0:
            rec = label_record([("score", tensor("i32ones", n))])
            ones = ("1," * n)[:-1]
            text = "[" + ones + "]" if accept != "text/csv" else ones
        elif mode == "f64":
            rec = label_record([("score", tensor("f64", [i + 0.1]))])
            text = repr(i + 0.1)
        elif mode == "i32":
            rec, text = label_record([("score", tensor("i32", [i]))]), str(i)
        elif mode == "labels":
            names = ["l%04d" % k for k in range(n)]
            rec = label_record([(k, tensor("f32", [1.5])) for k in names])
            text = "{" + ",".join('"%s":1.5' % k for k in names) + "}"
        elif mode == "nonfinite" and i == 0:
            rec = label_record([("score", tensor("f32raw", [struct.pack("<I", 0x7FC00000)]))])
            text = '"NaN"' if accept != "text/csv" else "nan"
        elif mode == "split":
            body = label_record([("score", tensor("f32raw", [MAGIC] * n + [struct.pack(
                "<f", float(i))]))])
            # a uid first, of the length that puts the floats 4-aligned
            for k in range(4):
                rec = field(3, b"u" * k) + body
                if split_frames(rec).count(MAGIC) == n + 1:
                    break
        elif mode == "maplabels" and i == 0:  # n empty label map entries
            rec = b"\x12\x00" * n
        elif mode == "unknown" and i == 0:  # a label whose tensor holds n unknown fields
            rec = label_record([("score", field(2, field(1, struct.pack("<f", 1.0)) +
                                                b"\x20\x00" * n))])
        elif mode == "empty":
            rec, text = b"", "{}"
        elif mode == "deep" and i == 0:
            text = "[" * n + "1" + "]" * n
        preds.append((rec, text))
    if rio:
        parts = []  # joined once: += copied a large first record for every row
        for rec, _ in preds:
            one = split_frames(rec) if mode == "split" else frame(rec)
            parts.append(one * (n if mode == "many" else 1))
        out = b"".join(parts)
        ctype = RIO
    elif accept == "text/csv":
        out, ctype = "".join(t + "\n" for _, t in preds).encode(), accept
    elif accept == "application/json":
        out = ('{"predictions":[' + ",".join(t for _, t in preds) + "]}").encode()
        ctype = accept
    else:
        out, ctype = "".join(t + "\n" for _, t in preds).encode(), accept
    if mode == "many" and not rio:
        out = out * n
    if mode == "trailing":
        out += b"\x01" * n
    return ctype, out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/ping":
            self.send(200, "text/plain", b"")
        elif self.path == "/stats":
            with State.lock:
                st = {"calls": State.calls, "rows": State.rows,
                      "last_ctype": State.last["ctype"], "last_accept": State.last["accept"],
                      "last_len": State.last["len"], "last_body": State.last["body"][:65536].hex()}
            self.send(200, "application/json", json.dumps(st).encode())
        else:
            self.send(404, "application/json", b'{"message": "not found"}')

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.path == "/mode":
            m = json.loads(body)
            with State.lock:
                State.mode, State.n = m.get("mode", "ok"), int(m.get("n", 1))
            self.send(200, "application/json", b"{}")
            return
        if self.path != "/invocations":
            self.send(404, "application/json", b'{"message": "not found"}')
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        accept = (self.headers.get("Accept") or "").split(";")[0].strip()
        attrs = dict(kv.split("=", 1) for kv in
                     (self.headers.get("X-Amzn-SageMaker-Custom-Attributes") or "").split(";")
                     if "=" in kv)
        with State.lock:
            mode, arg = attrs.get("mode", State.mode), int(attrs.get("n", State.n))
        try:
            nrows = count_rows(ctype, body)
        except Exception as e:  # noqa: BLE001 - any bad body is the client's 400
            self.send(400, "application/json", json.dumps({"message": str(e)}).encode())
            return
        with State.lock:
            State.calls += 1
            State.rows += nrows
            State.last = {"ctype": ctype, "accept": accept, "len": len(body), "body": body}
        if mode == "sleep":
            time.sleep(arg / 1000.0)
        rtype, out = answer(mode, arg, accept, nrows)
        self.send(200, rtype, out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # a gateway that hung up on an answer: nothing to report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
