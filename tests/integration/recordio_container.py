#!/usr/bin/python3
"""recordio_container.py - a small model container of the SageMaker
contract that speaks application/x-recordio-protobuf, for
tests/integration/test_recordio.py. Its records are read and written by
Debian's python3-protobuf (proto/record.proto compiled by protoc, as
recordio_vectors.py does), never by the gateway's code.

    /usr/bin/python3 tests/integration/recordio_container.py [--port N]
        [--drop-last]

- GET /ping: 200.
- POST /invocations: the rows of the body (Content-Type
  application/x-recordio-protobuf: RecordIO records, split ones joined as
  dmlc's reader joins them, features["values"] a float32, float64 or int32
  tensor, dense or sparse; text/csv: a line each), and for each row one
  prediction, score = the sum of its values (Python's float sum, in the
  tensor's order): Accept application/x-recordio-protobuf (the default):
  one whole frame a row holding the record label["score"] =
  Float32Tensor([score]) (deterministic serialization); text/csv: the
  score's repr a line; application/json: {"predictions": [{"score": s}...]}.
  A body it cannot read: 400 {"message": ...}.
- --drop-last: every answer leaves out its last prediction (the row count
  mismatch the SageMaker Spark library ignores).
- GET /stats: {"calls": POSTs to /invocations so far, "rows": rows read,
  "content_types": [Content-Type of each call], "accepts": [Accept of each
  call] (the last 100 of each), "last_body": the last call's body in hex}.

Prints "listening on 127.0.0.1:PORT" once it accepts connections; exits 0
on SIGTERM.
"""
import argparse
import http.server
import json
import os
import signal
import struct
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recordio_vectors as rv  # noqa: E402

RECORDIO = "application/x-recordio-protobuf"


class State:
    lock = threading.Lock()
    calls = 0
    rows = 0
    ctypes = []
    accepts = []
    last_body = b""
    drop_last = False
    pb2 = None


def tensor_values(pb2, payload):
    """The values of one record's features["values"] (ValueError if none)."""
    r = pb2.Record()
    try:
        r.ParseFromString(payload)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise ValueError("record does not parse: %s" % e)
    if "values" not in r.features:
        raise ValueError("no features[\"values\"]")
    v = r.features["values"]
    kind = v.WhichOneof("value")
    if kind not in ("float32_tensor", "float64_tensor", "int32_tensor"):
        raise ValueError("features[\"values\"] is %s" % kind)
    return [float(x) for x in getattr(v, kind).values]


def rows_of(ctype, body):
    if ctype == RECORDIO:
        return [tensor_values(State.pb2, p) for p in rv.read_frames(body)]
    if ctype == "text/csv":
        return [[float(x) for x in line.split(",")] for line in body.decode().splitlines()
                if line.strip()]
    raise ValueError("unsupported Content-Type %r" % ctype)


def answer(accept, scores):
    if accept in ("", "*/*", RECORDIO):
        out = b""
        for s in scores:
            r = State.pb2.Record()
            r.label["score"].float32_tensor.values.append(s)
            out += rv.frame_whole(r.SerializeToString(deterministic=True))
        return RECORDIO, out
    if accept == "text/csv":
        return accept, "".join(repr(s) + "\n" for s in scores).encode()
    if accept == "application/json":
        return accept, json.dumps({"predictions": [{"score": s} for s in scores]}).encode()
    raise ValueError("unsupported Accept %r" % accept)


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

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(n + 2)[:n]
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/ping":
            self.send(200, "text/plain", b"")
        elif self.path == "/stats":
            with State.lock:
                st = {"calls": State.calls, "rows": State.rows,
                      "content_types": State.ctypes[-100:], "accepts": State.accepts[-100:],
                      "last_body": State.last_body.hex()}
            self.send(200, "application/json", json.dumps(st).encode())
        else:
            self.send(404, "application/json", b'{"message": "not found"}')

    def do_POST(self):
        body = self.read_body()
        if self.path != "/invocations":
            self.send(404, "application/json", b'{"message": "not found"}')
            return
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        accept = self.headers.get("Accept", "").split(";")[0].strip().lower()
        with State.lock:
            State.calls += 1
            State.ctypes.append(ctype)
            State.accepts.append(accept)
            State.last_body = body
        try:
            rows = rows_of(ctype, body)
            scores = [sum(r) for r in rows]
            if State.drop_last and scores:
                scores = scores[:-1]
            out_type, out = answer(accept, scores)
        except (ValueError, AssertionError, struct.error) as e:
            self.send(400, "application/json", json.dumps({"message": str(e)}).encode())
            return
        with State.lock:
            State.rows += len(rows)
        self.send(200, out_type, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--drop-last", action="store_true")
    a = ap.parse_args()
    State.drop_last = a.drop_last
    tmp = tempfile.mkdtemp(prefix="ig-rio-container-")
    State.pb2 = rv.load_pb2(tmp)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    print("listening on 127.0.0.1:%d" % srv.server_address[1], flush=True)
    srv.serve_forever(poll_interval=0.1)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
