"""load/fake-container: the SageMaker model container the upstream tests and
benchmarks run against. Every prediction is checked against the model's
math (iglib.predict) over HTTP/1.1 (curl, http.client) and h2c (curl with
prior knowledge, nghttp with 8 streams); /ping, /execution-parameters, each
fault flag at rate 1 and a mixed-rate run against the same seeded PRNG
written in Python; the poison row; FIFO queueing at --max-concurrent and
its cap; clients that go away while queued, in service or held; /stats
compared whole; SIGTERM finishes what is in service and exits 0."""

import http.client
import json
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import (DEMO_MODEL, FAKE_BIN, ROOT, FakeContainer, check, check_eq,  # noqa: E402
                   csv_body, curl, digits_rows, expected_body, finish, fmt, load_model, run)

FAKE = FAKE_BIN
DATA = os.path.join(ROOT, "tests", "data")
tmp = tempfile.mkdtemp(prefix="ig-fake-")

CSV, JSONL, JSON = "text/csv", "application/jsonlines", "application/json"


def Fake(*args, model=DEMO_MODEL):
    return FakeContainer(*args, model=model, logdir=tmp)


def post(f, body, ctype=CSV, accept=None, h2=False):
    hdrs = ["Content-Type: " + ctype] if ctype else []
    if accept:
        hdrs.append("Accept: " + accept)
    return curl(f.url + "/invocations", body, hdrs, http2=h2)


def get(f, path, h2=False, method=None):
    return curl(f.url + path, b"", http2=h2, method=method or "GET")


def raw_post(port, body, ctype=CSV, accept=None, max_time=None):
    """One HTTP/1.1 POST with curl, optionally given up on after
    <max_time> s: -> (status or 0, body)."""
    path = os.path.join(tmp, "body-%d" % time.monotonic_ns())
    with open(path, "wb") as fh:
        fh.write(body.encode() if isinstance(body, str) else body)
    cmd = ["curl", "-sS", "--http1.1", "-o", "-", "-w", "\n%{http_code}", "--data-binary",
           "@" + path, "-H", "Content-Type: " + ctype]
    if accept:
        cmd += ["-H", "Accept: " + accept]
    if max_time:
        cmd += ["--max-time", str(max_time)]
    p = run(cmd + ["http://127.0.0.1:%d/invocations" % port])
    out, _, code = p.stdout.decode().rpartition("\n")
    return int(code or 0), out


def msg(text):
    return '{"message": "%s"}' % text


def stats_want(**kw):
    """The whole /stats object with everything zero but <kw>."""
    s = {"calls": 0, "rows": 0, "calls_by_status": {},
         "faults": {"500": 0, "503": 0, "429": 0, "timeout": 0, "wrong_count": 0, "poison": 0},
         "in_service": 0, "max_in_service": 0, "queued": 0, "queued_peak": 0, "held": 0,
         "gone": 0, "pings": 0, "execution_parameters": 0}
    for k, v in kw.items():
        if k == "faults":
            s["faults"].update(v)
        else:
            s[k] = v
    return s


def wait_for(cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# ---- the command line -------------------------------------------------------

p = run([FAKE, "--help"])
check_eq(p.returncode, 0, "--help exits 0")
helptext = p.stdout.decode()
for flag in ("--port", "--model", "--h2c", "--latency-us", "--per-row-us", "--max-concurrent",
             "--fail-500", "--fail-503", "--fail-429", "--timeout", "--wrong-count", "--seed",
             "--poison", "--max-payload-mb", "--max-concurrent-transforms",
             "--no-execution-parameters", "--ping-fail", "--max-queue"):
    check(flag + " " in helptext, "--help lists " + flag)
for args, why in ((["--fail-500", "1.5"], "--fail-500: '1.5' is not a fraction 0..1"),
                  (["--fail-500", "0.6", "--timeout", "0.6"], "the fault rates add up to 1.2"),
                  (["--h2c", "maybe"], "--h2c: 'maybe' is not on or off"),
                  (["--latency-us", "-1"], "--latency-us: '-1' is not an integer"),
                  (["--poison", "x"], "--poison: 'x' is not a number"),
                  (["--max-payload-mb", "0"], "--max-payload-mb: must be 1..100")):
    p = run([FAKE, "--model", DEMO_MODEL, "--port", "0"] + args, timeout=10)
    check_eq(p.returncode, 2, "exit status for %s" % args)
    check(why in p.stderr.decode(), "%s says %r: %r" % (args, why, p.stderr.decode()))
p = run([FAKE, "--port", "0"], timeout=10)
check(p.returncode == 2 and "--model PATH is required" in p.stderr.decode(), "--model required")
p = run([FAKE, "--model", os.path.join(tmp, "none.json")], timeout=10)
check(p.returncode == 2 and "cannot open" in p.stderr.decode(), "a missing model: exit 2")

# ---- predictions: every format, every algorithm, both protocols ---------------

digits = digits_rows(5)
demo = load_model(DEMO_MODEL)


def jsonl_body(rows):
    return "".join("[%s]\n" % ",".join(fmt(v) for v in r) for r in rows)


def json_body(rows):
    return '{"instances":[%s]}' % ",".join("[%s]" % ",".join(fmt(v) for v in r) for r in rows)


BODIES = {CSV: csv_body, JSONL: jsonl_body, JSON: json_body}

with Fake() as f:
    for h2 in (False, True):
        proto = "h2c" if h2 else "HTTP/1.1"
        for ctype, mk in BODIES.items():
            for accept in (None, CSV, JSONL, JSON):
                st, hd, body = post(f, mk(digits), ctype, accept, h2=h2)
                want_type = accept or ctype  # Accept defaults to the content type
                check_eq((st, hd.get("content-type"), body),
                         (200, want_type, expected_body(demo, digits, want_type)),
                         "%s %s -> %s" % (proto, ctype, accept))
    # nghttp: 8 streams on one connection, each answered exactly.
    path = os.path.join(tmp, "digits.csv")
    with open(path, "w") as fh:
        fh.write(csv_body(digits[:1]))
    p = run(["nghttp", "-m", "8", "-d", path, "-H", "content-type: text/csv",
             "-H", "accept: text/csv", f.url + "/invocations"])
    check_eq(p.stdout.decode(), expected_body(demo, digits[:1], CSV) * 8,
             "nghttp, 8 concurrent streams: 8 exact answers")
    check_eq(f.stats(), stats_want(calls=32, rows=24 * 5 + 8, calls_by_status={"200": 32},
                                   max_in_service=1),
             "/stats after 32 calls (no latency: one in service at a time)")

rows4 = [[1.0, 2.0, 3.0, 4.0], [0.5, -1.25, 2.0, 0.0], [-3.0, 0.0, 1e-3, 7.5]]
for name, rows in (("kmeans-2d", [[0.0, 0.5], [3.9, 0.2], [0.1, 2.8], [2.0, 1.5]]),
                   ("pca-3to2", [[1.0, 2.0, 3.0], [4.0, -1.0, 0.5], [0.25, 8.0, -2.0]]),
                   ("ll-binary", rows4), ("ll-regressor", rows4)):
    mpath = os.path.join(DATA, name + ".json")
    model = load_model(mpath)
    with Fake(model=mpath) as f:
        for accept in (CSV, JSONL, JSON):
            for ctype, mk in BODIES.items():
                st, hd, body = post(f, mk(rows), ctype, accept, h2=(ctype == JSON))
                check_eq((st, body), (200, expected_body(model, rows, accept)),
                         "%s: %s -> %s" % (name, ctype, accept))

# ---- the contract's other paths, and bad input ------------------------------

with Fake() as f:
    for h2 in (False, True):
        st, hd, body = get(f, "/ping", h2=h2)
        check_eq((st, body, hd.get("content-length")), (200, "", "0"), "/ping: 200, empty")
        st, hd, body = get(f, "/execution-parameters", h2=h2)
        check_eq((st, hd.get("content-type"), body),
                 (200, "application/json", '{"MaxConcurrentTransforms": 8, "BatchStrategy": '
                  '"MULTI_RECORD", "MaxPayloadInMB": 6}'), "/execution-parameters defaults")
    st, hd, body = post(f, "1,2\n", "text/plain")
    check_eq((st, hd.get("x-amzn-errortype"), body),
             (415, "UnsupportedMediaType", msg("Content type text/plain is not supported by this "
                                               "container. Supported content types: text/csv, "
                                               "application/json, application/jsonlines.")),
             "unknown content type: 415")
    st, hd, body = post(f, "1,2\n", None)
    check_eq(st, 415, "no content type: 415 (the gateway always names one)")
    st, hd, body = post(f, csv_body(digits), CSV, "image/png")
    check_eq((st, body), (406, msg("Accept type image/png is not supported by this container. "
                                   "Supported accept types: text/csv, application/json, "
                                   "application/jsonlines.")), "unknown accept: 406")
    st, hd, body = post(f, csv_body(digits[:2]) + "1,2,3\n", CSV, h2=True)
    check_eq((st, hd.get("content-type"), hd.get("x-amzn-errortype"), body),
             (400, "application/json", "ValidationError",
              msg("Row 3: expected 64 features, found 3.")), "a short row: 400 naming row 3")
    st, hd, body = post(f, '{"instances":[[1,2],[3', JSON)
    check(st == 400 and body.startswith('{"message": "') and json.loads(body)["message"],
          "malformed JSON: 400 with a message: %r" % body)
    st, hd, body = get(f, "/invocations")
    check_eq(st, 405, "GET /invocations: 405")
    st, hd, body = get(f, "/nowhere")
    check_eq((st, body), (404, msg("No such path.")), "unknown path: 404")
    check_eq(f.stats(), stats_want(calls=5, rows=0, calls_by_status={"400": 2, "406": 1, "415": 2},
                                   max_in_service=1, pings=2, execution_parameters=2),
             "/stats: errors counted by status; bad bodies decode no rows")

# A row whose output overflows fails its call with 400 naming the row.
REG = os.path.join(tmp, "reg.json")
with open(REG, "w") as fh:
    json.dump({"algorithm": "linear-learner", "feature_dim": 2, "predictor_type": "regressor",
               "weights": [1e308, -1e308], "bias": 0}, fh)
with Fake(model=REG) as f:
    st, hd, body = post(f, "0,0\n10,-10\n", CSV, JSON)
    check_eq((st, body), (400, msg("Row 2: the model's output is not finite (overflow in the "
                                   "linear learner score).")), "an overflow in row 2: 400")
    st, hd, body = post(f, "1e-300,0\n", CSV, JSON)
    check_eq((st, body), (200, expected_body(load_model(REG), [[1e-300, 0.0]], JSON)),
             "a finite row: answered")

with Fake("--max-concurrent", "3", "--max-payload-mb", "1", "--ping-fail") as f:
    st, hd, body = get(f, "/execution-parameters")
    check_eq(body, '{"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", '
             '"MaxPayloadInMB": 1}', "MaxConcurrentTransforms follows --max-concurrent")
    st, hd, body = get(f, "/ping")
    check_eq((st, body), (503, msg("not ready (--ping-fail)")), "--ping-fail: 503 on /ping")
    # The body cap is MaxPayloadInMB: 1 MiB + 1 is refused by the HTTP layer.
    big = ("1," * 63 + "1\n") * (1 + (1 << 20) // 128)
    st, hd, body = post(f, big, CSV)
    check_eq(st, 413, "a body over --max-payload-mb: 413")
    ok = ("1," * 63 + "1\n") * ((1 << 20) // 128)
    st, hd, body = post(f, ok, CSV, CSV)
    check_eq((st, body.count("\n")), (200, (1 << 20) // 128), "a body of exactly 1 MiB: answered")

with Fake("--max-concurrent-transforms", "5", "--max-payload-mb", "20") as f:
    st, hd, body = get(f, "/execution-parameters")
    check_eq(body, '{"MaxConcurrentTransforms": 5, "BatchStrategy": "MULTI_RECORD", '
             '"MaxPayloadInMB": 20}', "--max-concurrent-transforms, --max-payload-mb")
with Fake("--no-execution-parameters") as f:
    st, hd, body = get(f, "/execution-parameters")
    check_eq((st, body), (404, msg("This container does not offer /execution-parameters.")),
             "--no-execution-parameters: 404")

with Fake("--h2c", "off") as f:
    st, hd, body = post(f, csv_body(digits[:1]), CSV, h2=True)
    check_eq((st, body), (505, msg("This container serves HTTP/1.1 only (--h2c off).")),
             "--h2c off: an h2 call gets 505")
    st, hd, body = post(f, csv_body(digits[:1]), CSV)
    check_eq((st, body), (200, expected_body(demo, digits[:1], CSV)), "--h2c off: HTTP/1.1 works")

# ---- faults at rate 1, and the poison value -----------------------------------

one = csv_body(digits[:1])
two = csv_body(digits[:2])
for flag, status, etype, text, kind in (
        ("--fail-500", 500, "InternalFailure", "injected fault: 500", "500"),
        ("--fail-503", 503, "ServiceUnavailable", "injected fault: 503", "503"),
        ("--fail-429", 429, "ThrottlingException", "injected fault: 429", "429")):
    with Fake(flag, "1") as f:
        for h2 in (False, True):
            st, hd, body = post(f, two, CSV, h2=h2)
            check_eq((st, hd.get("x-amzn-errortype"), body), (status, etype, msg(text)),
                     "%s 1 (%s)" % (flag, "h2c" if h2 else "HTTP/1.1"))
        # 503 and 429 refuse at the door: the body is never decoded.
        check_eq(f.stats(), stats_want(calls=2, rows=4 if kind == "500" else 0,
                                       calls_by_status={str(status): 2}, faults={kind: 2},
                                       max_in_service=1 if kind == "500" else 0),
                 "/stats after two %s faults" % kind)

with Fake("--wrong-count", "1") as f:
    for accept, want in ((CSV, expected_body(demo, digits[:1], CSV)),
                         (JSON, expected_body(demo, digits[:1], JSON)),
                         (JSONL, expected_body(demo, digits[:1], JSONL))):
        st, hd, body = post(f, two, CSV, accept)
        check_eq((st, body), (200, want), "--wrong-count 1: two rows, one prediction (%s)" % accept)
    st, hd, body = post(f, one, CSV, JSON)
    check_eq((st, body), (200, '{"predictions":[]}'), "--wrong-count 1: one row, none")
    st, hd, body = post(f, one, CSV, CSV)
    check_eq((st, body), (200, ""), "--wrong-count 1: one row, an empty CSV answer")
    check_eq(f.stats()["faults"]["wrong_count"], 5, "wrong_count faults counted")

with Fake("--timeout", "1", "--latency-us", "20000") as f:
    t0 = time.time()
    st, body = raw_post(f.port, one, max_time=1)
    check_eq(st, 0, "--timeout 1: no answer within 1 s")
    check(time.time() - t0 >= 0.9, "the client gave up, not the container")
    check(wait_for(lambda: f.stats()["gone"] == 1), "the held call freed when its client left")
    check_eq(f.stats(), stats_want(calls=1, rows=1, faults={"timeout": 1}, max_in_service=1,
                                   gone=1), "/stats after a timeout")
    # A held call does not hold a service slot, nor the drain.
    threading.Thread(target=raw_post, args=(f.port, one), kwargs={"max_time": 20},
                     daemon=True).start()
    check(wait_for(lambda: f.stats()["held"] == 1), "a second call held")
    t0 = time.time()
    code = f.stop()
    check(code == 0 and time.time() - t0 < 5, "SIGTERM with a held call: exit 0 at once (%d)" % code)

poison_rows = [digits[0], digits[1][:10] + [666.0] + digits[1][11:], digits[2]]
with Fake("--poison", "666") as f:
    for ctype, mk in BODIES.items():
        st, hd, body = post(f, mk(poison_rows), ctype, CSV)
        check_eq((st, hd.get("x-amzn-errortype"), body),
                 (400, "ValidationError", msg("poison value 666 in row 2")),
                 "poison in row 2 of 3 (%s)" % ctype)
        st, hd, body = post(f, mk(poison_rows[1:]), ctype, CSV, h2=True)
        check_eq((st, body), (400, msg("poison value 666 in row 1")), "poison in row 1 of 2")
        st, hd, body = post(f, mk(poison_rows[::2]), ctype, CSV)
        check_eq((st, body), (200, expected_body(demo, poison_rows[::2], CSV)),
                 "the rows without it: answered")
    st, hd, body = post(f, "666" + ",1" * 63 + "\n", CSV)
    check_eq((st, body), (400, msg("poison value 666 in row 1")), "poison as the first feature")
    check_eq(f.stats(), stats_want(calls=10, rows=3 * 7 + 1, faults={"poison": 7},
                                   calls_by_status={"200": 3, "400": 7}, max_in_service=1),
             "/stats after poison calls")

with Fake("--poison", "666", "--fail-500", "0.5", "--timeout", "0.5") as f:
    for i in range(6):
        st, hd, body = post(f, csv_body(poison_rows), CSV, CSV)
        check_eq((st, body), (400, msg("poison value 666 in row 2")),
                 "poison wins over a drawn 500 or timeout (call %d)" % i)
    s = f.stats()
    check_eq((s["faults"], s["held"]), ({"500": 0, "503": 0, "429": 0, "timeout": 0,
                                         "wrong_count": 0, "poison": 6}, 0),
             "only poison faults counted")


# ---- mixed rates: the same draws as the container's PRNG -------------------------

def splitmix(seed):
    state = seed
    m = (1 << 64) - 1
    while True:
        state = (state + 0x9e3779b97f4a7c15) & m
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & m
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & m
        z ^= z >> 31
        yield (z >> 11) * 2.0 ** -53


RATES = [("500", 0.3), ("503", 0.2), ("429", 0.1), ("timeout", 0.0), ("wrong_count", 0.2)]
with Fake("--fail-500", "0.3", "--fail-503", "0.2", "--fail-429", "0.1",
          "--wrong-count", "0.2", "--seed", "42") as f:
    draws = splitmix(42)
    conn = http.client.HTTPConnection("127.0.0.1", f.port, timeout=10)
    counts = {k: 0 for k, _ in RATES}
    bad = 0
    for i in range(200):
        u, acc, kind = next(draws), 0.0, None
        for k, r in RATES:
            acc += r
            if u < acc:
                kind = k
                break
        row = digits[i % 5]
        conn.request("POST", "/invocations", body=csv_body([row, row]),
                     headers={"Content-Type": CSV, "Accept": CSV})
        r = conn.getresponse()
        got = (r.status, r.read().decode())
        if kind in ("500", "503", "429"):
            want = (int(kind), msg("injected fault: " + kind))
        elif kind == "wrong_count":
            want = (200, expected_body(demo, [row], CSV))
        else:
            want = (200, expected_body(demo, [row, row], CSV))
        if kind:
            counts[kind] += 1
        if got != want:
            bad += 1
            if bad <= 3:
                check_eq(got, want, "mixed rates, call %d (%s)" % (i, kind))
    conn.close()
    check_eq(bad, 0, "200 calls at mixed rates: each outcome the seeded PRNG's")
    check(all(counts[k] > 0 for k in ("500", "503", "429", "wrong_count")), "every kind drawn")
    s = f.stats()
    check_eq(s["faults"], dict(counts, poison=0), "/stats faults = the draws")
    check_eq(s["calls_by_status"], {k: v for k, v in (
        ("200", 200 - counts["500"] - counts["503"] - counts["429"]), ("429", counts["429"]),
        ("500", counts["500"]), ("503", counts["503"])) if v}, "/stats calls_by_status")


# ---- queueing at --max-concurrent ----------------------------------------------

def concurrent(port, n, body, accept=CSV, max_time=None):
    out = [None] * n

    def one_call(i):
        out[i] = raw_post(port, body, CSV, accept, max_time)

    ts = [threading.Thread(target=one_call, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


with Fake("--max-concurrent", "2", "--latency-us", "200000") as f:
    t0 = time.time()
    res = concurrent(f.port, 8, one)
    took = time.time() - t0
    check_eq(res, [(200, expected_body(demo, digits[:1], CSV))] * 8,
             "8 concurrent calls, max 2 in service: all answered exactly")
    check(0.79 <= took < 3.0, "4 rounds of 200 ms: %.2f s" % took)
    check_eq(f.stats(), stats_want(calls=8, rows=8, calls_by_status={"200": 8}, max_in_service=2,
                                   queued_peak=6), "/stats: max_in_service 2, queued_peak 6")
    # The same over one h2c connection: 8 streams.
    t0 = time.time()
    path = os.path.join(tmp, "one.csv")
    with open(path, "w") as fh:
        fh.write(one)
    p = run(["nghttp", "-m", "8", "-d", path, "-H", "content-type: text/csv",
             f.url + "/invocations"])
    took = time.time() - t0
    check_eq(p.stdout.decode(), expected_body(demo, digits[:1], CSV) * 8,
             "h2c: 8 streams queued at max 2, all answered exactly")
    check(0.79 <= took < 3.0, "h2c: 4 rounds of 200 ms: %.2f s" % took)
    s = f.stats()
    check_eq((s["calls"], s["max_in_service"], s["queued_peak"]), (16, 2, 6), "h2c /stats")

# Per-row time: 50 rows at 10 ms a row, one call in service.
with Fake("--per-row-us", "10000", "--latency-us", "100000") as f:
    rows50 = digits_rows(50)
    t0 = time.time()
    st, body = raw_post(f.port, csv_body(rows50), CSV, CSV)
    took = time.time() - t0
    check_eq((st, body), (200, expected_body(demo, rows50, CSV)), "50 rows answered exactly")
    check(0.59 <= took < 2.5, "100 ms + 50 x 10 ms: %.2f s" % took)

# The queue's cap: 1 in service, 2 waiting, the 4th refused with 503.
# (2 s a call: the 4 calls must all arrive within the first one's service;
# with 400 ms, once in a full run under the side-by-side tests' load, they
# did not)
with Fake("--max-concurrent", "1", "--max-queue", "2", "--latency-us", "2000000") as f:
    res = [None] * 4
    ts = []
    for i in range(4):
        def call(i=i):
            res[i] = raw_post(f.port, one, CSV, CSV)
        ts.append(threading.Thread(target=call))
        ts[-1].start()
        # In order: the 4th arrives when one is in service and two wait.
        wait_for(lambda i=i: f.stats()["calls"] == i + 1, 5)
    for t in ts:
        t.join()
    check_eq(res, [(200, expected_body(demo, digits[:1], CSV))] * 3 +
             [(503, msg("2 calls are already waiting for service (--max-queue)."))],
             "--max-queue 2: the 4th call refused, the first 3 answered in turn")
    check_eq(f.stats(), stats_want(calls=4, rows=3, calls_by_status={"200": 3, "503": 1},
                                   max_in_service=1, queued_peak=2),
             "/stats after the queue's cap")

# Clients that go away while queued or in service.
with Fake("--max-concurrent", "1", "--latency-us", "500000") as f:
    first = threading.Thread(target=lambda: res.__setitem__(0, raw_post(f.port, one, CSV, CSV)))
    res = [None]
    first.start()
    check(wait_for(lambda: f.stats()["in_service"] == 1), "the first call in service")
    st, body = raw_post(f.port, one, max_time=0.2)  # queued, then gone
    check_eq(st, 0, "the queued client gave up")
    check(wait_for(lambda: f.stats()["gone"] == 1), "the queued call left when its client did")
    s = f.stats()
    check_eq((s["queued"], s["in_service"]), (0, 1), "queue empty, one in service")
    first.join()
    check_eq(res[0], (200, expected_body(demo, digits[:1], CSV)), "the first call answered")
    st, body = raw_post(f.port, one, max_time=0.2)  # in service, then gone
    check_eq(st, 0, "a client gone while in service")
    check(wait_for(lambda: f.stats()["in_service"] == 0, 5), "its service time ends anyway")
    check_eq(f.stats(), stats_want(calls=3, rows=3, calls_by_status={"200": 1}, max_in_service=1,
                                   queued_peak=1, gone=2), "/stats after two clients went away")
    st, body = raw_post(f.port, one, CSV, CSV)
    check_eq((st, body), (200, expected_body(demo, digits[:1], CSV)), "still serving")

# ---- memory: rows capped, decoded rows charged to the connection's budget -------

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402


def h2_calls(port, bodies, ctype=CSV, accept=CSV):
    """All <bodies> as concurrent streams of one h2c connection:
    -> [(status, body text)] in order."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.increment_flow_control_window(1 << 30)
    s.sendall(c.data_to_send())
    sids, sent, raw = [], {}, {}
    for b in bodies:
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "POST"), (":path", "/invocations"), (":scheme", "http"),
                             (":authority", "x"), ("content-type", ctype), ("accept", accept),
                             ("content-length", str(len(b)))])
        sids.append(sid)
        sent[sid], raw[sid] = 0, b.encode()
    status, out, done = {}, {}, set()
    while len(done) < len(sids):
        for sid in sids:
            while sent[sid] < len(raw[sid]):
                w = min(c.local_flow_control_window(sid), c.max_outbound_frame_size,
                        len(raw[sid]) - sent[sid])
                if w <= 0:
                    break
                c.send_data(sid, raw[sid][sent[sid]:sent[sid] + w],
                            end_stream=sent[sid] + w == len(raw[sid]))
                sent[sid] += w
        s.sendall(c.data_to_send())
        data = s.recv(1 << 20)
        if not data:
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status[ev.stream_id] = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                out[ev.stream_id] = out.get(ev.stream_id, b"") + ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done.add(ev.stream_id)
                sent[ev.stream_id] = len(raw[ev.stream_id])
        s.sendall(c.data_to_send())
    s.close()
    return [(status.get(sid, 0), out.get(sid, b"").decode()) for sid in sids]


KM2 = os.path.join(DATA, "kmeans-2d.json")
km2 = load_model(KM2)
with Fake("--max-payload-mb", "6", model=KM2) as f:
    # 1,000,001 rows of 4 bytes fit in 6 MiB: the row cap refuses them.
    st, hd, body = post(f, "0,0\n" * 1000001, CSV, CSV)
    check_eq((st, body), (400, msg("Request has more than 1000000 rows.")),
             "1,000,001 rows: 400, the row cap")
    st, hd, body = post(f, "0,0\n" * 1000000, CSV, CSV)
    check_eq((st, len(body)), (200, len(expected_body(km2, [[0.0, 0.0]], CSV)) * 1000000),
             "1,000,000 rows: answered")

# Each 1 MiB body of 262,144 short rows decodes to 6 MiB of rows and
# features, charged to its connection's share (14 MiB with 1 MiB bodies)
# while it waits for service: one connection cannot queue 4 of them.
with Fake("--max-payload-mb", "1", "--max-concurrent", "1", "--latency-us", "300000",
          model=KM2) as f:
    nrows = (1 << 20) // 4
    want = expected_body(km2, [[0.0, 0.0]], CSV) * nrows
    res = h2_calls(f.port, ["0,0\n" * nrows] * 4)
    refused = [r for r in res if r[0] != 200]
    check(res[0] == (200, want), "the first big call answered exactly")
    check(all(r == (200, want) for r in res if r[0] == 200), "every call answered is exact")
    full = re.compile(r'\{"message": "Row [0-9]+: the decoded features of this request do not '
                      r"fit in the gateway's memory budget; retry later or send fewer rows.\"\}$")
    check(len(refused) >= 1 and all(r[0] == 429 and full.match(r[1]) for r in refused),
          "4 big calls queued on one connection: the budget refuses some with 429: %s"
          % [(r[0], r[1][:120]) for r in res])
    check_eq(h2_calls(f.port, ["0,0\n" * nrows]), [(200, want)],
             "afterwards a new connection's big call is answered (nothing left held)")

# ---- SIGTERM: stop accepting, answer what is in service and queued, exit 0 -------

f = Fake("--max-concurrent", "2", "--latency-us", "300000")
res = [None] * 4
ts = [threading.Thread(target=lambda i=i: res.__setitem__(i, raw_post(f.port, one, CSV, CSV)))
      for i in range(4)]
for t in ts:
    t.start()
check(wait_for(lambda: f.stats()["calls"] == 4), "4 calls in (2 in service, 2 queued)")
f.proc.send_signal(signal.SIGTERM)
for t in ts:
    t.join()
code = f.proc.wait(timeout=10)
check_eq(res, [(200, expected_body(demo, digits[:1], CSV))] * 4,
         "SIGTERM: the calls in service and queued all answered")
check_eq(code, 0, "SIGTERM: exit 0; stderr: " + f.stderr()[-500:])
st, body = raw_post(f.port, one, max_time=1)
check_eq(st, 0, "after the drain: nothing listens")

finish()
