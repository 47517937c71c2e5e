"""application/x-recordio-protobuf and text/libsvm through the real
bin/infergate, every expected byte computed here by an independent encoder
(Debian's python3-protobuf on proto/record.proto, recordio_vectors.py) and
the models' math of iglib (never copied from the gateway's output):

1. RecordIO in, RecordIO out against local models (the demo K-Means, a PCA,
   a binary and a regressor linear learner written here): the answer is
   byte for byte what the Python encoder writes for the expected labels
   (float32 values, map entries in sorted key order); dense float32,
   float64 and int32 tensors, shapes, sparse rows (keys + shape, an empty
   one), a record split by dmlc's writer (continuation flags 1, 2, 3); CSV
   in, RecordIO out; a float32 overflow fails its row alone;
2. RecordIO in, JSON / JSON Lines / CSV out: the answer to the same rows
   sent as CSV;
3. libsvm in (text/libsvm and text/x-libsvm, 0-based; 1-based on an
   endpoint with libsvm_index_base = 1): the dense CSV answer;
4. a remote container (recordio_container.py, python3-protobuf) behind the
   gateway: the records reach it back to back, byte for byte, and its
   answer comes back exact; a container that drops the last record of an
   answer fails the rows with the count (never fewer rows silently);
5. bad RecordIO bodies: 400 ValidationError with the decoder's message
   naming the record (wrong magic, truncated header / data / padding / split
   record, a length over the cap, a continuation flag out of place,
   protobuf that does not parse, sparse keys out of range, unsorted, keys
   without shape or values, no features["values"], a bytes value, a
   non-finite value, a wrong feature count); nothing reaches the container;
6. over h2c, RecordIO bodies in DATA frames of a few bytes (python-h2), and
   curl --http2-prior-knowledge;
7. XGBoost (tests/data/xgb-*.model): RecordIO answers are libxgboost's own
   scores (ctypes), a sparse row's and a libsvm row's absent features read
   as missing (NaN) as XGBoost reads them, dense RecordIO equal to CSV;
8. conversion for the container (upstream_content_type, upstream_accept,
   feature_dim): CSV / JSON / JSON Lines / libsvm (0- and 1-based) to
   RecordIO records byte for byte as Python writes them, RecordIO to CSV
   lines (float32 values printed shortest, checked against libc's strtof),
   the container's RecordIO, CSV or JSON answers back in the client's
   Accept; the refusals (a value past float32, a libsvm index past
   feature_dim, libsvm without feature_dim, a sparse row past the
   converted-body cap) with no call; a header claiming 512 MiB does not
   grow the gateway's address space.

Needs protoc, python3-protobuf, python3-h2, curl, libxgboost."""

import ctypes
import decimal
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
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recordio_vectors as rv  # noqa: E402
from iglib import (DEMO_MODEL, ROOT, Gateway, H2Client, check, check_eq,  # noqa: E402
                   csv_body, curl, digits_rows, expected_body, finish, fmt, load_model,
                   predict, stop_proc, sum4)

T0 = time.time()
tmp = tempfile.mkdtemp(prefix="ig-recordio-")
pb2 = rv.load_pb2(tmp)
RIO, CSV, JSON, JSONL = ("application/x-recordio-protobuf", "text/csv", "application/json",
                         "application/jsonlines")
MAGIC = rv.MAGIC_BYTES
# a float32 whose four bytes are the RecordIO magic: dmlc's writer splits there
MAGIC_F = struct.unpack("<f", MAGIC)[0]
CAP = (1 << 29) - 1  # the largest RecordIO record (a 29-bit length)
rnd = random.Random(1818)
f32 = rv.f32


def log(msg):
    print("[%5.1f s] %s" % (time.time() - T0, msg), flush=True)


def model_file(name, model):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(model, f)
    return path


DIM = 6
PCA = {"algorithm": "pca", "feature_dim": DIM,
       "mean": [0.5, -1.25, 2.0, 0.0, 3.5, -0.75],
       "components": [[0.1, 0.2, -0.3, 0.4, 0.5, -0.6],
                      [1.5, -2.25, 0.125, 3.0, -0.5, 0.75],
                      [-0.3333, 0.25, 0.8, -1.1, 0.05, 2.5]]}
LLB = {"algorithm": "linear-learner", "feature_dim": DIM, "predictor_type": "binary_classifier",
       "weights": [0.3, -0.7, 1.1, 0.05, -0.2, 0.9], "bias": -0.15}
LLR = {"algorithm": "linear-learner", "feature_dim": DIM, "predictor_type": "regressor",
       "weights": [1.25, -3.5, 0.01, 7.0, -0.375, 2.0], "bias": 10.5}
# a score past float32's range (finite as a double): a RecordIO answer cannot hold it
BIG = {"algorithm": "linear-learner", "feature_dim": 2, "predictor_type": "regressor",
       "weights": [1e38, 1e38], "bias": 0}
KM = load_model(DEMO_MODEL)
MODELS = {"km": (KM, 64), "pca": (PCA, DIM), "llb": (LLB, DIM), "llr": (LLR, DIM)}
PATHS = {"km": DEMO_MODEL, "pca": model_file("pca", PCA), "llb": model_file("llb", LLB),
         "llr": model_file("llr", LLR)}


# ---- the independent encoder ---------------------------------------------------

def feat_payload(values, tensor="f32", keys=None, shape=None, extra_keys=(), key="values"):
    """One Record with features[<key>] a <tensor> tensor (keys, shape when
    given) and empty Values under <extra_keys>, serialized as the Python
    runtime does (deterministic: map entries in key order)."""
    r = pb2.Record()
    for k in extra_keys:
        r.features[k].SetInParent()
    v = r.features[key]
    t = {"f32": v.float32_tensor, "f64": v.float64_tensor, "i32": v.int32_tensor}[tensor]
    t.SetInParent()
    t.values.extend(values)
    if keys is not None:
        t.keys.extend(keys)
    if shape is not None:
        t.shape.extend(shape)
    return r.SerializeToString(deterministic=True)


class Row:
    """A request row: its record payload, the dense doubles it stands for,
    the values stored, and (for conversion) its tensor kind and keys."""

    def __init__(self, payload, dense, stored, tensor="f32", keys=None):
        self.payload, self.dense, self.stored = payload, dense, stored
        self.tensor, self.keys = tensor, keys

    @property
    def csv(self):
        """The CSV fields this row becomes (convert.h): float32 values as
        ig_fmt_float, float64 and int32 ones as repr of the double, absent
        sparse entries "0"."""
        conv = fmt_f32 if self.tensor == "f32" else (lambda v: repr(float(v)))
        if self.keys is None:
            return [conv(v) for v in self.stored]
        out = ["0"] * len(self.dense)
        for k, v in zip(self.keys, self.stored):
            out[k] = conv(v)
        return out


def dense_row(values, tensor="f32", shape=None):
    conv = f32 if tensor == "f32" else float
    return Row(feat_payload(values, tensor, shape=shape), [float(conv(x)) for x in values],
               [float(conv(x)) for x in values], tensor)


def sparse_row(keys, values, dim, tensor="f32"):
    conv = f32 if tensor == "f32" else float
    d = [0.0] * dim
    for k, x in zip(keys, values):
        d[k] = float(conv(x))
    return Row(feat_payload(values, tensor, keys=keys, shape=[dim]), d,
               [float(conv(x)) for x in values], tensor, list(keys))


def split_row(dim):
    """A float32 row holding the magic's bytes at a 4-aligned offset of its
    record (an empty features entry before "values" shifts the tensor until
    it is), framed by dmlc's writer: parts with flags 1, 2..., 3."""
    vals = [MAGIC_F, 1.0, MAGIC_F, MAGIC_F] + [float(i % 7) for i in range(dim - 5)] + [MAGIC_F]
    for pad in ("", "a", "aa", "aaa", "aaaa"):
        p = feat_payload(vals, extra_keys=(pad,) if pad else ())
        framed = rv.frame_dmlc(p)
        if struct.unpack_from("<I", framed, 4)[0] >> 29 == 1:
            return Row(p, [float(f32(x)) for x in vals], [float(f32(x)) for x in vals]), framed
    raise RuntimeError("no alignment puts the magic at a 4-aligned offset")


def frames(rows):
    return b"".join(rv.frame_whole(r.payload) for r in rows)


def label_frame(labels):
    """One framed record: label[name] = Float32Tensor(values) each."""
    r = pb2.Record()
    for name, vals in labels.items():
        r.label[name].float32_tensor.values.extend(float(v) for v in vals)
    return rv.frame_whole(r.SerializeToString(deterministic=True))


def model_labels(model, x):
    """The outputs iglib's model math gives for <x>, by label name (the JSON
    object's numbers, exact as repr writes them)."""
    try:
        obj = json.loads(predict(model, x)[0])
    except OverflowError:
        # a binary classifier's exp(-z) past the double range: C's exp says
        # infinity and the score is 0 (Python raises)
        z = sum4([xi * wi for xi, wi in zip(x, model["weights"])]) + model["bias"]
        assert model["predictor_type"] == "binary_classifier" and z < -700, z
        obj = {"score": 0.0, "predicted_label": 0.0}
    return {k: (v if isinstance(v, list) else [v]) for k, v in obj.items()}


def want_rio(model, dense_rows):
    return b"".join(label_frame(model_labels(model, x)) for x in dense_rows)


def container_answer(rows):
    """recordio_container.py's answer: label["score"] = f32(sum of the stored values)."""
    return b"".join(label_frame({"score": [sum(r.stored)]}) for r in rows)


def err_body(msg):
    return json.dumps({"message": msg}, separators=(",", ":"))


# ---- clients -------------------------------------------------------------------

def post(gw, ep, body, ctype=RIO, accept=RIO):
    """HTTP/1.1 POST: (status, headers lower-cased, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    hdrs = {"Content-Type": ctype}
    if accept is not None:
        hdrs["Accept"] = accept
    try:
        c.request("POST", "/endpoints/%s/invocations" % ep, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def h2_post(gw, ep, body, ctype=RIO, accept=RIO, piece=7):
    """One h2c stream whose body goes in DATA frames of <piece> bytes, each
    flushed on its own: (status, headers, body bytes, DATA frames sent)."""
    c = H2Client(gw.port)
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sid = c.open("/endpoints/%s/invocations" % ep,
                     [("content-type", ctype), ("accept", accept),
                      ("content-length", str(len(body)))])
        nframes, off = 0, 0
        deadline = time.time() + 20
        while off < len(body) and time.time() < deadline and not c.done(sid):
            n = min(piece, len(body) - off, c.conn.local_flow_control_window(sid))
            if n <= 0:
                c.pump(0.05)
                continue
            c.conn.send_data(sid, body[off:off + n], end_stream=off + n == len(body))
            c.flush()
            off += n
            nframes += 1
        if not body:
            c.conn.end_stream(sid)
            c.flush()
        c.wait(sid, 20)
        h = c.headers.get(sid, {})
        return int(h.get(":status", 0)), h, c.data.get(sid, b""), nframes
    finally:
        c.close()


def expect_ok(gw, ep, body, want, what, ctype=RIO, accept=RIO):
    st, hd, out = post(gw, ep, body, ctype, accept)
    check_eq((st, hd.get("content-type"), out), (200, accept, want), what)


def expect_bad(gw, ep, body, msg, what, h2=False):
    if h2:
        st, hd, out, _ = h2_post(gw, ep, body)
    else:
        st, hd, out = post(gw, ep, body)
    check_eq((st, hd.get("x-amzn-errortype"), out.decode("utf-8", "replace")),
             (400, "ValidationError", err_body(msg)), what)


class Container:
    """recordio_container.py on a free port (stderr in tmp); stopped with
    SIGTERM at the end, exit status 0."""

    def __init__(self, *args):
        self.err = open(os.path.join(tmp, "container-%d.log" % time.monotonic_ns()), "w+")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                              "recordio_container.py")] + list(args),
            stdout=subprocess.PIPE, stderr=self.err, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError("recordio_container: %r; %s" % (line, self.stderr()))
        self.port = int(line.rsplit(":", 1)[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def stderr(self):
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.loads(r.read())

    def calls(self):
        return self.stats()["calls"]

    def stop(self):
        return stop_proc(self.proc, signal.SIGTERM, 10)


def vm_size_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    return 0


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait_for(cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# ---- the rows ------------------------------------------------------------------

DIGITS = digits_rows(12)


def rand_rows(n, dim, lo=-3.0, hi=3.0):
    return [[rnd.uniform(lo, hi) for _ in range(dim)] for _ in range(n)]


_row_sets = {}


def row_sets(ep):
    """{name: [Row...]} of every tensor kind for endpoint <ep>'s dimension
    (made once, the same rows at every call)."""
    if ep not in _row_sets:
        _row_sets[ep] = _make_row_sets(ep)
    return _row_sets[ep]


def _make_row_sets(ep):
    dim = MODELS[ep][1] if ep in MODELS else 5
    base = DIGITS[:4] if dim == 64 else rand_rows(4, dim)
    sets = {}
    sets["dense f32"] = [dense_row(r) for r in base]
    # float64: values no float32 holds (the double is used as it is)
    sets["dense f64"] = [dense_row([x + 1.0 / 3.0 + 1e-9 * i for i, x in enumerate(r)], "f64")
                         for r in base[:3]]
    sets["dense i32"] = [dense_row([int(x) * (-1) ** i for i, x in enumerate(r)], "i32")
                         for r in base[:3]]
    sets["dense f32 with shape"] = [dense_row(base[0], shape=[dim]),
                                    dense_row(base[1], shape=[2, dim // 2])]
    sp = []
    for i in range(4):
        keys = sorted(rnd.sample(range(dim), rnd.randint(1, min(dim, 9))))
        sp.append(sparse_row(keys, [rnd.uniform(-20, 20) for _ in keys], dim))
    sp.append(sparse_row([], [], dim))  # an all-zero row, as the SDK writes one
    sp.append(sparse_row([0, dim - 1], [2.5, -7.0], dim, "f64"))
    sp.append(sparse_row([1, 2], [3, -4], dim, "i32"))
    sets["sparse"] = sp
    sets["mixed"] = [sets["dense f32"][0], sp[0], sets["dense f64"][0], sp[4],
                     sets["dense i32"][1], sp[6]]
    return sets


# ---- 1, 2, 5, 6: local models --------------------------------------------------

def local_tests(gw):
    for ep, (model, dim) in MODELS.items():
        log("== %s: RecordIO in, RecordIO / JSON / CSV out" % ep)
        for name, rows in row_sets(ep).items():
            what = "%s %s (%d rows)" % (ep, name, len(rows))
            body = frames(rows)
            dense = [r.dense for r in rows]
            expect_ok(gw, ep, body, want_rio(model, dense), what + ": RecordIO out")
            # 2. the answer to the same rows as CSV, and the model's math
            for accept in (JSON, JSONL, CSV):
                _, _, via_csv = post(gw, ep, csv_body(dense), CSV, accept)
                st, hd, out = post(gw, ep, body, RIO, accept)
                check_eq((st, hd.get("content-type"), out), (200, accept, via_csv),
                         "%s: %s out equals the CSV request's answer" % (what, accept))
                check_eq(out.decode(), expected_body(model, dense, accept),
                         "%s: %s out is the model's math" % (what, accept))
        # a record split by dmlc's writer, between whole ones
        srow, sframed = split_row(dim)
        flags = [w >> 29 for w in _frame_words(sframed)]
        check(flags[0] == 1 and flags[-1] == 3 and 2 in flags,
              "%s: the split record has parts with flags 1, 2 and 3: %r" % (ep, flags))
        other = row_sets(ep)["dense f32"][:2]
        body = rv.frame_whole(other[0].payload) + sframed + rv.frame_whole(other[1].payload)
        want = want_rio(model, [other[0].dense, srow.dense, other[1].dense])
        expect_ok(gw, ep, body, want, "%s: a split record (flags %r) between whole ones"
                  % (ep, flags))
        _, _, via_csv = post(gw, ep, csv_body([other[0].dense, srow.dense, other[1].dense]),
                             CSV, CSV)
        st, _, out = post(gw, ep, body, RIO, CSV)
        check_eq((st, out), (200, via_csv), "%s: a split record, CSV out: the CSV answer" % ep)
        # CSV in, RecordIO out
        dense = [r.dense for r in row_sets(ep)["dense f64"]]
        expect_ok(gw, ep, csv_body(dense), want_rio(model, dense), "%s: CSV in, RecordIO out" % ep,
                  ctype=CSV)
        # JSON Lines in, RecordIO out
        jl = "".join(json.dumps(r) + "\n" for r in dense)
        expect_ok(gw, ep, jl, want_rio(model, dense), "%s: JSON Lines in, RecordIO out" % ep,
                  ctype=JSONL)

    log("== defaults")
    rows = row_sets("km")["dense f32"][:2]
    st, hd, out = post(gw, "km", frames(rows), RIO, None)
    check_eq((st, hd.get("content-type"), out.decode()),
             (200, JSON, expected_body(KM, [r.dense for r in rows])),
             "RecordIO in without Accept: JSON out, as the built-in K-Means answers")
    expect_bad(gw, "km", b"", "Request body is empty.", "an empty RecordIO body")

    log("== a float32 overflow in a RecordIO answer")
    expect_ok(gw, "big", frames([dense_row([1.0, 0.0])]), label_frame({"score": [1e38]}),
              "score 1e38 fits a float32")
    st, hd, out = post(gw, "big", frames([dense_row([1.0, 0.0]), dense_row([2.0, 2.0])]))
    try:
        orig = json.loads(out).get("OriginalMessage")
    except ValueError:
        orig = out
    check_eq((st, hd.get("x-amzn-errortype"), orig),
             (424, "ModelError", "Row 2: the model's output is not finite (overflow in the "
                                 "linear learner score)."),
             "score 4e38 (past float32) fails its row, no bare infinity in a record")
    st, _, out = post(gw, "big", frames([dense_row([2.0, 2.0])]), RIO, JSON)
    check_eq((st, out), (200, b'{"predictions":[{"score":4e+38}]}'),
             "the same row with JSON out: the double")

    log("== 5. bad RecordIO bodies (local K-Means, 64 features)")
    for what, body, msg in bad_bodies(64):
        expect_bad(gw, "km", body, msg, "km: " + what)
    for what, body, msg in bad_count_bodies(64):
        expect_bad(gw, "km", body, msg, "km: " + what)

    # a header claiming 2^29 - 1 bytes allocates nothing until they come
    # (it once reserved the claimed 512 MiB for a 40-byte body)
    before = vm_size_kb(gw.proc.pid)
    for body in (MAGIC + struct.pack("<I", CAP) + b"\0" * 32,
                 MAGIC + struct.pack("<I", 1 << 29 | CAP) + b"\0" * 32):
        for _ in range(3):
            post(gw, "km", body)
    grown = vm_size_kb(gw.proc.pid) - before
    check(grown < 128 * 1024, "six bodies of 40 bytes claiming 512 MiB records: the gateway's "
          "address space grew %d KiB (at most 128 MiB)" % grown)

    log("== 6. h2c: RecordIO bodies in DATA frames of a few bytes")
    rows = row_sets("km")["mixed"]
    srow, sframed = split_row(64)
    body = frames(rows[:3]) + sframed + frames(rows[3:])
    dense = [r.dense for r in rows[:3]] + [srow.dense] + [r.dense for r in rows[3:]]
    for piece in (1, 7, 4096):
        st, hd, out, n = h2_post(gw, "km", body, piece=piece)
        check_eq((st, hd.get("content-type"), out), (200, RIO, want_rio(KM, dense)),
                 "h2 km: %d bytes in %d DATA frames of %d" % (len(body), n, piece))
    rows = row_sets("pca")["sparse"]
    st, hd, out, n = h2_post(gw, "pca", frames(rows), piece=5)
    check_eq((st, out), (200, want_rio(PCA, [r.dense for r in rows])),
             "h2 pca sparse: in %d DATA frames" % n)
    st, hd, out, n = h2_post(gw, "llb", frames(row_sets("llb")["dense f32"]), accept=JSON, piece=3)
    check_eq((st, out.decode()), (200, expected_body(LLB, [r.dense for r in
                                                            row_sets("llb")["dense f32"]])),
             "h2 llb: RecordIO in (3-byte DATA frames), JSON out")
    for what, body, msg in bad_bodies(64)[:6]:
        expect_bad(gw, "km", body, msg, "h2 km: " + what, h2=True)
    # curl over h2c with prior knowledge
    path = os.path.join(tmp, "h2body.rec")
    with open(path, "wb") as f:
        f.write(frames(row_sets("km")["dense f32"]))
    st, hd, out = curl(gw.invoke_url("km"), "@" + path,
                       ["Content-Type: " + RIO, "Accept: " + CSV], http2=True)
    check_eq((st, out), (200, expected_body(KM, [r.dense for r in row_sets("km")["dense f32"]],
                                            CSV)), "curl --http2-prior-knowledge: RecordIO in")


def _frame_words(body):
    words, pos = [], 0
    while pos < len(body):
        w = struct.unpack_from("<I", body, pos + 4)[0]
        words.append(w)
        n = w & CAP
        pos += 8 + n + (4 - n % 4) % 4
    return words


def bad_bodies(dim):
    """(what, body, the decoder's message) for bodies any endpoint refuses."""
    good = [dense_row([float(i) for i in range(dim)]), dense_row([1.0] * dim)]
    g1 = rv.frame_whole(good[0].payload)
    g2 = rv.frame_whole(good[1].payload)
    out = []
    bad = b"\x01\x02\x03\x04" + g1[4:]
    out.append(("wrong magic in record 1", bad + g2,
                "Row 1: bad RecordIO magic 0x04030201 at byte 0 (expected 0xced7230a)."))
    out.append(("wrong magic in record 3", g1 + g2 + b"\x0a\x23\xd7\xcf" + g2[4:],
                "Row 3: bad RecordIO magic 0xcfd7230a at byte %d (expected 0xced7230a)."
                % (len(g1) + len(g2))))
    out.append(("a text body", b"1,2,3,4,5\n", "Row 1: bad RecordIO magic 0x2c322c31 at byte 0 "
                                           "(expected 0xced7230a)."))
    out.append(("truncated header", g1 + g2[:6],
                "Row 2: truncated RecordIO record: the body ends inside its header."))
    out.append(("truncated data", g1 + g2 + g1[:len(g1) - 12],
                "Row 3: truncated RecordIO record: the body ends inside its data."))
    # a payload whose length is 1 mod 4: three bytes of padding
    odd = feat_payload([1.0] * dim, extra_keys=("a",))
    for k in ("ab", "abc", "abcd"):
        if len(odd) % 4 == 1:
            break
        odd = feat_payload([1.0] * dim, extra_keys=(k,))
    assert len(odd) % 4 == 1, len(odd)
    fo = rv.frame_whole(odd)
    out.append(("truncated padding (%d-byte record)" % len(odd), g1 + fo[:-1],
                "Row 2: truncated RecordIO record: the body ends inside its padding."))
    out.append(("a header claiming the largest length, a few bytes of data",
                MAGIC + struct.pack("<I", CAP) + b"\0" * 32,
                "Row 1: truncated RecordIO record: the body ends inside its data."))
    part1 = MAGIC + struct.pack("<I", 1 << 29 | 4) + b"\x0a\x0b\x0c\x0d"
    out.append(("a split record without its last part", g1 + part1,
                "Row 2: truncated RecordIO record: the body ends before its last part."))
    # first part of 4 bytes, then a last part claiming 2^29 - 1: 4 + 4 + 2^29 - 1
    out.append(("a split record over the 2^29 - 1 byte cap",
                part1 + MAGIC + struct.pack("<I", 3 << 29 | CAP) + b"\0" * 16,
                "Row 1: RecordIO record of %d bytes or more is larger than the %d-byte limit."
                % (4 + 4 + CAP, CAP)))
    out.append(("a last part without a first", g1 + MAGIC + struct.pack("<I", 3 << 29 | 4)
                + b"abcd", "Row 2: RecordIO continuation flag 3 at byte %d without a first part."
                % len(g1)))
    out.append(("a whole record inside a split one", part1 + g2,
                "Row 1: RecordIO continuation flag 0 at byte 12 inside a split record."))
    out.append(("continuation flag 5", g1 + MAGIC + struct.pack("<I", 5 << 29 | 4) + b"abcd",
                "Row 2: bad RecordIO continuation flag 5 at byte %d." % len(g1)))
    # protobuf that does not parse: a truncated varint, a field of wire type 7
    out.append(("protobuf that does not parse (truncated varint)",
                g1 + rv.frame_whole(b"\x0a\xff\xff"),
                "Row 2: the record is not a valid RecordIO-protobuf Record (the protobuf does "
                "not parse)."))
    out.append(("protobuf that does not parse (wire type 7)",
                g1 + g2 + rv.frame_whole(b"\x0f\x00\x00\x00"),
                "Row 3: the record is not a valid RecordIO-protobuf Record (the protobuf does "
                "not parse)."))
    out.append(("protobuf that does not parse (a features entry longer than the record)",
                rv.frame_whole(good[0].payload[:-3]),
                "Row 1: the record is not a valid RecordIO-protobuf Record (the protobuf does "
                "not parse)."))
    out.append(("an empty record (no features)", g1 + rv.frame_whole(b""),
                "Row 2: the record has no features[\"values\"] tensor."))
    out.append(("a features map without \"values\"",
                rv.frame_whole(feat_payload([1.0] * dim, key="value")),
                "Row 1: the record has no features[\"values\"] tensor."))
    out.append(("a label map only", g1 + label_frame({"values": [1.0] * dim}),
                "Row 2: the record has no features[\"values\"] tensor."))
    byt = pb2.Record()
    byt.features["values"].bytes.value.append(b"\x00" * 8)
    out.append(("features[\"values\"] of bytes", g1 + g2 + rv.frame_whole(
        byt.SerializeToString(deterministic=True)),
        "Row 3: features[\"values\"] is not a float32, float64 or int32 tensor."))
    out.append(("sparse key out of range", g1 + rv.frame_whole(
        feat_payload([1.0, 2.0], keys=[1, dim], shape=[dim])),
        "Row 2: sparse key %d is out of range (shape of %d elements)." % (dim, dim)))
    out.append(("sparse key far out of range", rv.frame_whole(
        feat_payload([1.0], keys=[1 << 40], shape=[dim])),
        "Row 1: sparse key %d is out of range (shape of %d elements)." % (1 << 40, dim)))
    out.append(("unsorted sparse keys", g1 + g2 + rv.frame_whole(
        feat_payload([1.0, 2.0, 3.0], keys=[2, 7, 5], shape=[dim])),
        "Row 3: sparse keys are not strictly increasing (5 after 7)."))
    out.append(("a repeated sparse key", rv.frame_whole(
        feat_payload([1.0, 2.0], keys=[3, 3], shape=[dim])),
        "Row 1: sparse keys are not strictly increasing (3 after 3)."))
    out.append(("sparse keys without a shape", g1 + rv.frame_whole(
        feat_payload([1.0, 2.0], keys=[1, 2])),
        "Row 2: sparse features[\"values\"] (keys) without a shape."))
    out.append(("more keys than values", rv.frame_whole(
        feat_payload([1.0], keys=[1, 2], shape=[dim])),
        "Row 1: sparse features[\"values\"] has 2 keys for 1 values."))
    out.append(("a NaN value", g1 + rv.frame_whole(
        feat_payload([1.0, 2.0, float("nan")] + [0.0] * (dim - 3))),
        "Row 2: feature 3 is not a finite number."))
    out.append(("an infinite float64 value", rv.frame_whole(
        feat_payload([float("inf")] + [0.0] * (dim - 1), "f64")),
        "Row 1: feature 1 is not a finite number."))
    out.append(("a NaN sparse value", rv.frame_whole(
        feat_payload([1.0, float("nan")], keys=[4, 9], shape=[dim])),
        "Row 1: feature 10 is not a finite number."))
    out.append(("a dense shape unlike the values", rv.frame_whole(
        feat_payload([1.0] * dim, shape=[dim + 1])),
        "Row 1: features[\"values\"] holds %d values for a shape of %d elements."
        % (dim, dim + 1)))
    return out


def bad_count_bodies(dim):
    """Bodies only an endpoint that knows its feature count refuses."""
    g1 = rv.frame_whole(dense_row([1.0] * dim).payload)
    return [
        ("one feature too few", g1 + rv.frame_whole(dense_row([1.0] * (dim - 1)).payload),
         "Row 2: expected %d features, found %d." % (dim, dim - 1)),
        ("one feature too many (int32)", g1 + g1 + rv.frame_whole(
            dense_row([1] * (dim + 1), "i32").payload),
         "Row 3: expected %d features, found %d." % (dim, dim + 1)),
        ("a sparse shape unlike the model's", rv.frame_whole(
            feat_payload([1.0], keys=[0], shape=[dim - 1])),
         "Row 1: expected %d features, the sparse shape has %d." % (dim, dim - 1)),
        ("an empty dense tensor", rv.frame_whole(feat_payload([])),
         "Row 1: expected %d features, found 0." % dim),
    ]


# ---- 3: libsvm ------------------------------------------------------------------

def libsvm_body(rows, base=0, label=lambda i: i % 3):
    """Each row's non-zero features as idx:val (idx from <base>), a label first."""
    lines = []
    for i, r in enumerate(rows):
        items = ["%d:%s" % (j + base, fmt(x)) for j, x in enumerate(r) if x != 0.0]
        lines.append(" ".join([str(label(i))] + items))
    return "\n".join(lines) + "\n"


def libsvm_tests(gw):
    log("== 3. libsvm in")
    for ep, (model, dim) in MODELS.items():
        rows = DIGITS[:8] if dim == 64 else [[f32(x) if i % 2 else 0.0 for i, x in enumerate(r)]
                                             for r in rand_rows(6, dim)]
        rows.append([0.0] * dim)  # a label and no feature
        for accept in (CSV, JSON, RIO):
            _, _, via_csv = post(gw, ep, csv_body(rows), CSV, accept)
            for ctype in ("text/libsvm", "text/x-libsvm"):
                st, hd, out = post(gw, ep, libsvm_body(rows), ctype, accept)
                check_eq((st, out), (200, via_csv), "%s: %s 0-based, %s out: the dense CSV answer"
                         % (ep, ctype, accept))
        check_eq(via_csv, want_rio(model, rows), "%s: the CSV answer in RecordIO is the math" % ep)
    rows = DIGITS[:8]
    for accept in (CSV, RIO):
        _, _, via_csv = post(gw, "km", csv_body(rows), CSV, accept)
        st, _, out = post(gw, "km1", libsvm_body(rows, 1), "text/libsvm", accept)
        check_eq((st, out), (200, via_csv), "km1 (libsvm_index_base = 1): 1-based libsvm, %s out"
                 % accept)
    # the same 1-based body on the 0-based endpoint: index k is column k,
    # every feature one column to the right
    rows = [r[:-1] + [0.0] for r in rows]
    st, _, out = post(gw, "km", libsvm_body(rows, 1), "text/libsvm", CSV)
    check_eq((st, out.decode()), (200, expected_body(KM, [[0.0] + r[:-1] for r in rows], CSV)),
             "km (index base 0): a 1-based body reads one column to the right")


# ---- 4: remote ------------------------------------------------------------------

def remote_tests(gw, cont, drop):
    log("== 4. a remote RecordIO container")
    check(wait_for(lambda: readyz(gw) == 200), "/readyz 200 once the containers answer /ping")
    sets = row_sets("km")
    srow, sframed = split_row(64)
    for name, rows in sets.items():
        body = frames(rows)
        before = cont.stats()
        st, hd, out = post(gw, "remote", body)
        after = cont.stats()
        check_eq((st, hd.get("content-type"), out), (200, RIO, container_answer(rows)),
                 "remote %s: the container's answer, exact" % name)
        check_eq((after["calls"] - before["calls"], after["content_types"][-1:],
                  after["accepts"][-1:], after["last_body"]),
                 (1, [RIO], [RIO], body.hex()),
                 "remote %s: one call, the records back to back as the client sent them" % name)
    rows = sets["dense f32"]
    body = rv.frame_whole(rows[0].payload) + sframed + rv.frame_whole(rows[1].payload)
    st, hd, out = post(gw, "remote", body)
    check_eq((st, out), (200, container_answer([rows[0], srow, rows[1]])),
             "remote: a split record between whole ones")
    check_eq(cont.stats()["last_body"], body.hex(), "remote: the split record's frames as sent")
    # rows the container reads as numbers of another count: the gateway knows no dimension
    odd = [dense_row([1.5, 2.5, 3.0]), sparse_row([3, 70], [1.0, 2.0], 100)]
    st, hd, out = post(gw, "remote", frames(odd))
    check_eq((st, out), (200, container_answer(odd)),
             "remote: rows of 3 and 100 features (no feature count without feature_dim)")
    # CSV in, RecordIO out: the container's records split per row
    dense = [r.dense for r in sets["dense f32"]]
    st, hd, out = post(gw, "remote", csv_body(dense), CSV, RIO)
    check_eq((st, hd.get("content-type"), out),
             (200, RIO, b"".join(label_frame({"score": [sum(r)]}) for r in dense)),
             "remote: CSV in, RecordIO out")
    # h2c to the gateway, the body in small DATA frames
    rows = sets["mixed"]
    st, hd, out, n = h2_post(gw, "remote", frames(rows), piece=9)
    check_eq((st, out), (200, container_answer(rows)),
             "remote over h2c: the body in %d DATA frames" % n)

    # more rows than a batch holds (max_batch_rows 256): several calls, each
    # answer split per record, the request's answer in its own order
    many = [dense_row([f32(rnd.uniform(-9, 9)) for _ in range(5)]) for _ in range(600)]
    before = cont.calls()
    st, hd, out = post(gw, "remote", frames(many))
    check_eq((st, out), (200, container_answer(many)), "remote: 600 rows, the exact answer")
    check_eq(cont.calls() - before, 3, "remote: 600 rows in 3 calls (max_batch_rows 256)")
    # concurrent requests packed into shared calls: each gets its own records
    reqs = [[dense_row([float(i), float(j), 0.5]) for j in range(1 + i % 4)] for i in range(12)]
    res = {}

    def one(i):
        res[i] = post(gw, "remote", frames(reqs[i]))
    before = cont.calls()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check_eq([(res[i][0], res[i][2]) for i in range(len(reqs))],
             [(200, container_answer(r)) for r in reqs],
             "remote: 12 concurrent RecordIO requests, each its own records back")
    calls = cont.calls() - before
    check(1 <= calls <= len(reqs), "remote: 12 concurrent requests in %d calls" % calls)

    log("== 4. a container that drops the last record of each answer")
    for k in (3, 1):
        rows = sets["dense f32"][:k]
        before = drop.calls()
        st, hd, out = post(gw, "drop", frames(rows))
        check_eq((st, hd.get("x-amzn-errortype"), out.decode()),
                 (500, "InternalFailure",
                  err_body("Row 1: The model returned %d predictions for %d rows; these rows "
                           "were not answered." % (k - 1, k))),
                 "drop: %d rows, %d records back: the rows fail with the counts" % (k, k - 1))
        check_eq(drop.calls() - before, 1, "drop: %d rows: one call (a count is not retried)" % k)
    st, hd, out, n = h2_post(gw, "drop", frames(sets["sparse"]), piece=11)
    check_eq((st, out.decode()), (500, err_body(
        "Row 1: The model returned %d predictions for %d rows; these rows were not answered."
        % (len(sets["sparse"]) - 1, len(sets["sparse"])))), "drop over h2c")

    log("== 5. bad bodies never reach the container")
    before = cont.calls()
    for what, body, msg in bad_bodies(64):
        expect_bad(gw, "remote", body, msg, "remote: " + what)
    for what, body, msg in bad_bodies(64)[:4]:
        expect_bad(gw, "remote", body, msg, "remote h2: " + what, h2=True)
    check_eq(cont.calls() - before, 0, "remote: no call for any bad body")
    # a bad record after good ones: nothing of that request goes either
    good = frames(sets["dense f32"])
    expect_bad(gw, "remote", good + rv.frame_whole(b"\x0a\xff\xff"),
               "Row 5: the record is not a valid RecordIO-protobuf Record (the protobuf does not "
               "parse).", "remote: four good records, then a bad one")
    check_eq(cont.calls() - before, 0, "remote: the good records of a bad body did not go either")


# ---- XGBoost ---------------------------------------------------------------------

XGB = {"xgb": os.path.join(ROOT, "tests", "data", "xgb-binary.model"),
       "xgbm": os.path.join(ROOT, "tests", "data", "xgb-multi.ubj")}


def xgb_predict(path, rows):
    """libxgboost's own predictions (C API, a float32 DMatrix, NaN missing),
    one list a row."""
    lib = ctypes.CDLL("libxgboost.so.0")
    ncol = len(rows[0])
    data = (ctypes.c_float * (len(rows) * ncol))(*[v for r in rows for v in r])
    dm, bst = ctypes.c_void_p(), ctypes.c_void_p()
    n = ctypes.c_uint64()
    out = ctypes.POINTER(ctypes.c_float)()
    try:
        if (lib.XGDMatrixCreateFromMat(data, ctypes.c_uint64(len(rows)), ctypes.c_uint64(ncol),
                                       ctypes.c_float(float("nan")), ctypes.byref(dm)) or
                lib.XGBoosterCreate(None, ctypes.c_uint64(0), ctypes.byref(bst)) or
                lib.XGBoosterLoadModel(bst, path.encode()) or
                lib.XGBoosterPredict(bst, dm, 0, 0, 0, ctypes.byref(n), ctypes.byref(out))):
            raise RuntimeError("libxgboost failed on " + path)
        flat = [out[i] for i in range(n.value)]
    finally:
        if bst:
            lib.XGBoosterFree(bst)
        if dm:
            lib.XGDMatrixFree(dm)
    k = len(flat) // len(rows)
    return [flat[i * k:(i + 1) * k] for i in range(len(rows))]


def xgb_tests(gw):
    log("== XGBoost: RecordIO in and out against libxgboost")
    rows = [dense_row([f32(rnd.uniform(-3, 5)) for _ in range(3)]) for _ in range(5)]
    rows += [dense_row([1, -2, 3], "i32"), sparse_row([1], [2.5], 3), dense_row([0.0, 0.0, 0.0])]
    dense = [r.dense for r in rows]
    # XGBoost reads a sparse row's absent features as missing (NaN), not
    # 0.0: so does the gateway for an XGBoost model (RecordIO sparse rows,
    # libsvm); dense rows carry their zeros
    nan = float("nan")
    as_read = [[x if (r.keys is None or j in r.keys) else nan for j, x in enumerate(r.dense)]
               for r in rows]
    libsvm_read = [[x if x != 0.0 else nan for x in r] for r in dense]
    for ep, path in XGB.items():
        want = b"".join(label_frame({"score": p}) for p in xgb_predict(path, as_read))
        expect_ok(gw, ep, frames(rows), want, "%s: RecordIO out is libxgboost's score" % ep)
        dense_only = [r for r in rows if r.keys is None]
        _, _, via_csv = post(gw, ep, csv_body([r.dense for r in dense_only]), CSV, CSV)
        st, _, out = post(gw, ep, frames(dense_only), RIO, CSV)
        check_eq((st, out), (200, via_csv), "%s: dense RecordIO in, CSV out: the CSV answer" % ep)
        want = b"".join(label_frame({"score": p}) for p in xgb_predict(path, libsvm_read))
        st, _, out = post(gw, ep, libsvm_body(dense), "text/libsvm", RIO)
        check_eq((st, out), (200, want),
                 "%s: libsvm in: libxgboost's score with absent features missing" % ep)


# ---- conversion: upstream_content_type / upstream_accept -------------------------

_libc = ctypes.CDLL(None)
_libc.strtof.restype = ctypes.c_float
_libc.strtof.argtypes = [ctypes.c_char_p, ctypes.c_void_p]


def fmt_f32(x):
    """A float32 value as the gateway prints one (ig_fmt_float, written here
    from its contract in buf.h): the shortest digits that read back to it
    through libc's strtof and through a double narrowed to float32, the
    nearest of that length, laid out as Python's repr."""
    x = float(x)
    if x == 0.0:
        return repr(x)
    want = decimal.Decimal(x)
    for p in range(1, 12):
        d, e = ("%.*e" % (p - 1, x)).split("e")
        sign = "-" if d.startswith("-") else ""
        digits = int(d.lstrip("-").replace(".", ""))
        cands = []
        for k in (digits - 1, digits, digits + 1):
            s = "%s%de%d" % (sign, k, int(e) - (p - 1))
            if k > 0 and float(_libc.strtof(s.encode(), None)) == x and f32(float(s)) == x:
                cands.append((abs(decimal.Decimal(s) - want), s))
        if cands:
            return repr(float(min(cands)[1]))
    raise ValueError(x)


def convert_tests(gw, cont):
    log("== conversion: client formats to a RecordIO container (upstream_content_type)")
    rows = [[0.1, -2.5, 1e-3, 123456.789, 7.0], [1.0 / 3.0, 0.0, -0.0, 2.0, 1e30],
            [5.0, 4.0, 3.0, 2.0, 1.0]]
    f32rows = [[f32(x) for x in r] for r in rows]
    rio_body = b"".join(rv.frame_whole(feat_payload(r)) for r in rows)
    scores = [fmt_f32(f32(sum(r))) for r in f32rows]
    cases = [
        ("CSV in, CSV out", CSV, csv_body(rows), CSV, "".join(s + "\n" for s in scores)),
        ("JSON in, JSON out", JSON, json.dumps({"instances": rows}), JSON,
         '{"predictions":[%s]}' % ",".join('{"score":%s}' % s for s in scores)),
        ("JSON Lines in, JSON Lines out", JSONL, "".join(json.dumps(r) + "\n" for r in rows),
         JSONL, "".join('{"score":%s}\n' % s for s in scores)),
        ("CSV in, JSON out", CSV, csv_body(rows), JSON,
         '{"predictions":[%s]}' % ",".join('{"score":%s}' % s for s in scores)),
    ]
    for what, ctype, body, accept, want in cases:
        before = cont.calls()
        st, hd, out = post(gw, "to-rio", body, ctype, accept)
        got = cont.stats()
        check_eq((st, hd.get("content-type"), out.decode()), (200, accept, want),
                 "to-rio %s: the container's records as the client's format" % what)
        check_eq((got["calls"] - before, got["content_types"][-1:], got["accepts"][-1:],
                  got["last_body"]), (1, [RIO], [RIO], rio_body.hex()),
                 "to-rio %s: the container got the rows as float32 records (Python's bytes)"
                 % what)
    # RecordIO in, RecordIO out: nothing converted, the records as sent
    body = frames(row_sets("remote5")["mixed"])
    st, hd, out = post(gw, "to-rio", body)
    check_eq((st, out, cont.stats()["last_body"]),
             (200, container_answer(row_sets("remote5")["mixed"]), body.hex()),
             "to-rio: RecordIO in and out passes through")
    # libsvm (sparse) in: sparse records of feature_dim = 5
    sp = [([0, 3], [0.25, -8.5]), ([], []), ([1, 2, 4], [1e-7, 3.0, 0.1])]
    lsv = "".join(" ".join(["1"] + ["%d:%s" % (k, fmt(v)) for k, v in zip(keys, vals)]) + "\n"
                  for keys, vals in sp)
    want_body = b"".join(rv.frame_whole(feat_payload(vals, keys=keys, shape=[5]))
                         for keys, vals in sp)
    st, hd, out = post(gw, "to-rio", lsv, "text/libsvm", CSV)
    check_eq((st, out.decode(), cont.stats()["last_body"]),
             (200, "".join(fmt_f32(f32(sum(f32(v) for v in vals))) + "\n" for _, vals in sp),
              want_body.hex()),
             "to-rio: libsvm in: sparse float32 records with shape [5], CSV out")
    before = cont.calls()
    expect_bad2(gw, "to-rio", "1,2,3,4,5\n1,1e300,3,4,5\n", CSV,
                "Row 2: the value 1e+300 does not fit a float32 (application/x-recordio-protobuf "
                "carries float32 features).", "to-rio: a CSV value past float32")
    expect_bad2(gw, "to-rio", "0 1:1 5:2\n", "text/libsvm",
                "Row 1: feature index 5 is out of range: the model takes 5 features (indices 0 "
                "to 4).", "to-rio: a libsvm index past feature_dim")
    check_eq(cont.calls() - before, 0, "to-rio: no call for a row that cannot be converted")

    log("== conversion: RecordIO and libsvm to a CSV container")
    rset = row_sets("remote5")
    for name in ("dense f32", "dense f64", "dense i32", "sparse", "mixed"):
        rs = rset[name]
        lines = [",".join(r.csv) for r in rs]
        sums = [sum(float(t) for t in line.split(",")) for line in lines]
        st, hd, out = post(gw, "to-csv", frames(rs))
        check_eq((st, hd.get("content-type"), out, cont.stats()["last_body"]),
                 (200, RIO, b"".join(label_frame({"score": [v]}) for v in sums),
                  "".join(line + "\n" for line in lines).encode().hex()),
                 "to-csv RecordIO %s: the container got CSV lines, the client RecordIO" % name)
        st, hd, out = post(gw, "to-csv", frames(rs), RIO, JSON)
        check_eq((st, out.decode()), (200, '{"predictions":[%s]}'
                                      % ",".join(repr(v) for v in sums)),
                 "to-csv RecordIO %s, JSON out: the container's numbers" % name)
    st, hd, out = post(gw, "to-csv", lsv, "text/libsvm", CSV)
    dense = []
    for keys, vals in sp:
        d = ["0"] * 5
        for k, v in zip(keys, vals):
            d[k] = repr(float(v))
        dense.append(",".join(d) + "\n")
    check_eq((st, cont.stats()["last_body"]), (200, "".join(dense).encode().hex()),
             "to-csv: libsvm in: dense CSV lines, absent features 0")
    before = cont.calls()
    expect_bad2(gw, "to-csv-nodim", lsv, "text/libsvm",
                "Row 1: a libsvm row has no width; set the endpoint option feature_dim to the "
                "model's feature count to convert it to text/csv.",
                "to-csv without feature_dim: libsvm cannot become CSV")
    check_eq(cont.calls() - before, 0, "to-csv-nodim: no call")
    # a sparse row grows when written densely: at most 4x the body + 64 KiB
    before = cont.calls()
    body = frames([sparse_row([3], [1.0], 1000000)])
    expect_bad(gw, "to-csv", body, "The request's rows, converted to text/csv, would take more "
               "than %d bytes." % (4 * len(body) + 65536),
               "to-csv: a sparse row of a million features (%d bytes) past the converted-body cap"
               % len(body))
    rows = [sparse_row([3, 19999], [1.0, 2.0], 20000)]
    st, hd, out = post(gw, "to-csv", frames(rows))
    check_eq((st, out), (200, label_frame({"score": [3.0]})),
             "to-csv: a sparse row of 20000 features fits (40000 bytes of CSV)")
    check_eq(cont.calls() - before, 1, "to-csv: no call for the refused sparse row")

    log("== conversion: a JSON answer to RecordIO, libsvm 1-based, h2c")
    rs = rset["mixed"]
    sums = [sum(float(t) for t in r.csv) for r in rs]
    st, hd, out = post(gw, "to-json", frames(rs))
    got = cont.stats()
    check_eq((st, out, got["content_types"][-1:], got["accepts"][-1:]),
             (200, b"".join(label_frame({"score": [v]}) for v in sums), [CSV], [JSON]),
             "to-json: RecordIO in, CSV and JSON to the container, its JSON objects as "
             "RecordIO labels")
    lsv1 = "".join(" ".join(["0"] + ["%d:%s" % (k + 1, fmt(v)) for k, v in zip(keys, vals)])
                   + "\n" for keys, vals in sp)
    st, hd, out = post(gw, "to-rio1", lsv1, "text/libsvm", CSV)
    check_eq((st, cont.stats()["last_body"]), (200, want_body.hex()),
             "to-rio1 (libsvm_index_base = 1): 1-based libsvm as the same sparse records")
    rows = [[rnd.uniform(-100, 100) for _ in range(5)] for _ in range(7)]
    st, hd, out, n = h2_post(gw, "to-rio", csv_body(rows).encode(), CSV, JSON, piece=6)
    check_eq((st, out.decode(), cont.stats()["last_body"]),
             (200, '{"predictions":[%s]}' % ",".join(
                 '{"score":%s}' % fmt_f32(f32(sum(f32(x) for x in r))) for r in rows),
              b"".join(rv.frame_whole(feat_payload(r)) for r in rows).hex()),
             "to-rio over h2c: CSV in %d DATA frames of 6 bytes, converted both ways" % n)


def expect_bad2(gw, ep, body, ctype, msg, what):
    st, hd, out = post(gw, ep, body, ctype, CSV)
    check_eq((st, hd.get("x-amzn-errortype"), out.decode("utf-8", "replace")),
             (400, "ValidationError", err_body(msg)), what)


# ---- main ----------------------------------------------------------------------

# ---- the streaming transform: POST /transform/{name} ------------------------

def transform(gw, ep, body, ctype=RIO, accept=CSV, extra=()):
    """curl over h2c: (curl's exit status, HTTP status, body bytes)."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(body)
    try:
        r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-",
                            "-w", "\n%{http_code}", "-H", "Content-Type: " + ctype,
                            "-H", "Accept: " + accept] + [a for h in extra for a in ("-H", h)]
                           + ["--data-binary", "@" + f.name,
                              "http://127.0.0.1:%d/transform/%s" % (gw.port, ep)],
                           capture_output=True, timeout=60)
    finally:
        os.unlink(f.name)
    out, _, code = r.stdout.rpartition(b"\n")
    return r.returncode, int(code or 0), out


def transform_tests(gw):
    log("== 10. RecordIO on the streaming transform")
    rows = [dense_row([float(x) for x in r]) for r in digits_rows(300)]
    body = frames(rows)
    for accept in (CSV, JSONL, RIO):
        st, _, unary = post(gw, "km", body, RIO, accept)
        rc, code, out = transform(gw, "km", body, RIO, accept)
        check_eq((rc, code, out), (0, 200, unary),
                 "transform: 300 RecordIO records, %s out: the unary answer" % accept)
    # a split record and sparse rows in the stream too
    srow, sframed = split_row(64)
    mixed = sframed + frames([sparse_row([3, 40], [2.5, 7.0], 64)] + rows[:5]) + sframed
    rc, code, out = transform(gw, "km", mixed, RIO, CSV)
    want = post(gw, "km", mixed, RIO, CSV)[2]
    check_eq((rc, code, out, want.count(b"\n")), (0, 200, want, 8),
             "transform: split and sparse records")
    want3 = post(gw, "km", frames(rows[:3]), RIO, CSV)[2]
    # the framing lost after 3 records: their answers, then the error record
    rc, code, out = transform(gw, "km", frames(rows[:3]) + b"\x01\x02\x03\x04" + b"\0" * 60)
    check_eq((rc, code, out), (0, 200, want3 + b'error,4,ValidationError,"Row 4: bad RecordIO '
                                b'magic 0x04030201 (expected 0xced7230a); the rest of the stream '
                                b'is not read."\n'), "transform: a bad magic after 3 records")
    rc, code, out = transform(gw, "km", frames(rows[:4])[:-10])
    check_eq((rc, code, out), (0, 200, want3 + b'error,4,ValidationError,"Row 4: truncated '
                                b'RecordIO record: the stream ends inside it."\n'),
             "transform: the stream ends inside record 4")
    big = rv.frame_whole(b"\0" * (600 << 10))
    rc, code, out = transform(gw, "km", frames(rows[:3]) + big + frames(rows[:2]), RIO, JSONL)
    want = post(gw, "km", frames(rows[:3]), RIO, JSONL)[2]
    check_eq((rc, code, out), (0, 200, want + b'{"error":{"row":4,"type":"ValidationError",'
                                b'"message":"Row 4: the record is longer than 524288 bytes; the '
                                b'rest of the stream is not read."}}\n'),
             "transform: a record over 512 KiB")
    # a record that decodes badly is refused alone; the others answered
    bad = rv.frame_whole(b"\x0a\xff\xff")
    rc, code, out = transform(gw, "km", frames(rows[:2]) + bad + frames(rows[2:3]))
    check_eq((rc, code, out), (0, 200, post(gw, "km", frames(rows[:2]), RIO, CSV)[2]
                               + b'error,3,ValidationError,"Row 3: the record is not a valid '
                               b'RecordIO-protobuf Record (the protobuf does not parse)."\n'
                               + post(gw, "km", frames(rows[2:3]), RIO, CSV)[2]),
             "transform: a record that does not parse, refused alone")
    # RecordIO out has no error records: the good ones, then a reset
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(frames(rows[:2]) + bad + frames(rows[2:3]))
    r = subprocess.run(["nghttp", "-H", "content-type: " + RIO, "-H", "accept: " + RIO,
                        "-d", f.name, "http://127.0.0.1:%d/transform/km" % gw.port],
                       capture_output=True, timeout=60)
    os.unlink(f.name)
    check_eq(r.stdout, post(gw, "km", frames(rows[:2]), RIO, RIO)[2],
             "transform: RecordIO out, a bad record: the records before it (nghttp)")
    check(b"not processed" in r.stderr,
          "transform: RecordIO out, a bad record: then a reset, the stream not complete "
          "(nghttp exit %d, %r)" % (r.returncode, r.stderr[-300:]))
    for extra, msg in ((("X-Infergate-Errors: inline",),
                        "X-Infergate-Errors: inline needs a text Accept: "
                        "application/x-recordio-protobuf has no error records (errors reset the "
                        "stream)."),
                       (("X-Infergate-Join: input",),
                        "X-Infergate-Join and the filters take CSV or JSON records, not "
                        "application/x-recordio-protobuf.")):
        rc, code, out = transform(gw, "km", body, RIO, RIO if "Errors" in extra[0] else CSV,
                                  extra)
        check_eq((code, json.loads(out or b"{}").get("message")), (400, msg),
                 "transform: refused: %s" % extra[0])
    # conversion on the stream: RecordIO rows to a CSV container
    rc, code, out = transform(gw, "to-csv", frames(rows[:4]), RIO, RIO)
    st, _, unary = post(gw, "to-csv", frames(rows[:4]), RIO, RIO)
    check_eq((rc, code, out), (0, 200, unary), "transform: converted for a CSV container")


cont = Container()
drop = Container("--drop-last")
try:
    eps = {ep: {"model": PATHS[ep]} for ep in MODELS}
    eps["km1"] = {"model": DEMO_MODEL, "libsvm_index_base": "1"}
    eps["big"] = {"model": model_file("big", BIG)}
    eps.update({ep: {"model": path} for ep, path in XGB.items()})
    conv = {"model": cont.url, "retry_max": "0", "breaker_failures": "1000"}
    eps["to-rio"] = dict(conv, upstream_content_type=RIO, upstream_accept=RIO, feature_dim="5")
    eps["to-csv"] = dict(conv, upstream_content_type=CSV, upstream_accept=CSV, feature_dim="5")
    eps["to-csv-nodim"] = dict(conv, upstream_content_type=CSV, upstream_accept=CSV)
    eps["to-json"] = dict(conv, upstream_content_type=CSV, upstream_accept=JSON, feature_dim="5")
    eps["to-rio1"] = dict(conv, upstream_content_type=RIO, upstream_accept=RIO, feature_dim="5",
                          libsvm_index_base="1")
    eps["remote"] = {"model": cont.url, "retry_max": "0", "max_delay_us": "5000"}
    eps["drop"] = {"model": drop.url, "retry_max": "0"}
    with Gateway(eps) as gw:
        local_tests(gw)
        remote_tests(gw, cont, drop)
        libsvm_tests(gw)
        xgb_tests(gw)
        convert_tests(gw, cont)
        transform_tests(gw)
        check(gw.alive(), "the gateway is alive after all of it")
    err = gw.stderr()
    for bad in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
        check(bad not in err, "sanitizer report in the gateway's stderr: %s"
              % err[err.find(bad) - 200:err.find(bad) + 1500])
finally:
    for c in (cont, drop):
        check_eq(c.stop(), 0, "recordio_container exit status on SIGTERM; stderr: "
                 + c.stderr()[-500:])
log("done")
finish()
