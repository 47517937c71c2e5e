"""The gateway's own limits, attacked: deadlines for any number of distinct
request_timeout_ms values, a default queue that admits several maximum-size
requests at once, big bodies decoded off the loop (errors, deadlines and
clients that leave while their body is being decoded), and
application/octet-stream meaning "no content type given"."""

import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
import urllib.request

from iglib import (DEMO_MODEL, Gateway, check, check_eq, csv_body, curl, digits_rows,
                   expected_body, finish, load_model, run)

tmp = tempfile.mkdtemp(prefix="ig-limits-")
demo = load_model(DEMO_MODEL)
rows = digits_rows(3)
good = csv_body(rows)

# feature_dim 1, y = x: the shortest rows there are, and an answer per row
# that is easy to write down.
ONE = os.path.join(tmp, "one.json")
with open(ONE, "w") as f:
    json.dump({"algorithm": "linear-learner", "feature_dim": 1, "predictor_type": "regressor",
               "weights": [1.0], "bias": 0.0}, f)

TIMEOUT_MSG = ("Your invocation timed out while waiting for a response from container AllTraffic. "
               "Review the latency metrics for each container in Amazon CloudWatch, resolve the "
               "issue, and try again.")


def model_timeout(endpoint):
    return json.dumps({
        "ErrorCode": "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/"
                        + endpoint,
        "Message": 'Received server error (0) from AllTraffic with message "%s".' % TIMEOUT_MSG,
        "OriginalMessage": TIMEOUT_MSG,
        "OriginalStatusCode": 0,
    }, separators=(",", ":"))


def write(name, data):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return "@" + path


# ---- deadlines: 300 distinct request_timeout_ms values ----------------------
# libevent's common-timeout table holds 256; past it the deadline never fired.
# The rows wait for a 10 s max_delay_us, so only the deadline can answer.
eps = {}
for i in range(300):
    eps["ep%d" % i] = {"model": DEMO_MODEL, "request_timeout_ms": str(300 + i),
                       "max_delay_us": "10000000", "max_batch_rows": "100000"}
with Gateway(eps) as gw:
    for i in (0, 255, 256, 299):
        name = "ep%d" % i
        for h2 in (False, True):
            t0 = time.time()
            st, hd, out = curl(gw.invoke_url(name), good, ["Content-Type: text/csv"], h2)
            took = time.time() - t0
            what = "%s (request_timeout_ms %d, %s)" % (name, 300 + i, "h2" if h2 else "h1")
            check_eq((st, hd.get("x-amzn-errortype"), out), (424, "ModelError", model_timeout(name)),
                     what + ": ModelError at the deadline")
            check(took < 5, what + ": answered in %.2f s" % took)
    # Many requests on many endpoints at once: each one expires on its own.
    results = {}

    def expire(i):
        name = "ep%d" % i
        results[i] = curl(gw.invoke_url(name), good, ["Content-Type: text/csv"])[:2]

    ts = [threading.Thread(target=expire, args=(i,)) for i in range(200, 300, 4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check_eq(sorted(set((s, h.get("x-amzn-errortype")) for s, h in results.values())),
             [(424, "ModelError")], "25 endpoints at once: each request expires")

# ---- the queue default, the octet-stream default, big bodies -----------------
endpoints = {
    "demo": {"model": DEMO_MODEL},
    "json-default": {"model": DEMO_MODEL, "content_type": "application/json"},
    # Rows wait up to 0.5 s for their batch, so concurrent requests really
    # share the queue; max_queue_rows is the default.
    "one": {"model": ONE, "max_delay_us": "500000", "max_batch_rows": "1000000",
            "accept": "text/csv"},
    "one-fast": {"model": ONE, "accept": "text/csv"},
    "slow": {"model": DEMO_MODEL, "max_delay_us": "3000000", "max_batch_rows": "1000000",
             "request_timeout_ms": "300"},
    "instant": {"model": DEMO_MODEL, "request_timeout_ms": "1"},
}
with Gateway(endpoints) as gw:
    # application/octet-stream (the JS SDK's "no content type") takes the
    # endpoint's default, with or without parameters; other types still fail.
    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        for ct in ("application/octet-stream", "Application/Octet-Stream; charset=binary"):
            st, _, out = curl(gw.invoke_url("demo"), good, ["Content-Type: " + ct], h2)
            check_eq((st, out), (200, expected_body(demo, rows)), p + repr(ct) + " is text/csv on demo")
        jbody = json.dumps({"instances": [{"features": r} for r in rows]})
        st, _, out = curl(gw.invoke_url("json-default"), jbody,
                          ["Content-Type: application/octet-stream"], h2)
        check_eq((st, out), (200, expected_body(demo, rows)),
                 p + "octet-stream is application/json where that is the default")
        st, hd, out = curl(gw.invoke_url("demo"), good, ["Content-Type: application/octet-streams"], h2)
        check_eq((st, hd.get("x-amzn-errortype")), (400, "ValidationError"),
                 p + "application/octet-streams is not octet-stream")

    # Two concurrent 60,000-row CSV requests are both answered (the old
    # default of 65,536 queued rows throttled the second).
    body60k = "".join("%d\n" % (i % 10) for i in range(60000))
    want60k = "".join("%s\n" % repr(float(i % 10)) for i in range(60000))
    path60k = write("60k.csv", body60k)
    res = []

    def big(path):
        res.append(curl(gw.invoke_url("one"), path, ["Content-Type: text/csv"]))

    ts = [threading.Thread(target=big, args=(path60k,)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check_eq([(s, h.get("x-amzn-errortype"), o == want60k) for s, h, o in res],
             [(200, None, True)] * 2, "two concurrent 60,000-row requests: both answered exactly")

    # A 6 MiB body of the shortest rows: 3,145,728 rows, more than the old
    # default queue by itself.
    nshort = 6 * 1024 * 1024 // 2
    st, hd, out = curl(gw.invoke_url("one-fast"), write("short.csv", "1\n" * nshort),
                       ["Content-Type: text/csv"])
    check_eq((st, hd.get("x-amzn-errortype"), len(out), out[:8]), (200, None, 4 * nshort, "1.0\n1.0\n"),
             "6 MiB of '1\\n' rows (3,145,728 rows): answered")
    check(out == "1.0\n" * nshort, "6 MiB of short rows: every prediction exact")
    # Several at once, each on its own connection: the queue holds them all.
    shortpath = write("short.csv", "1\n" * nshort)
    res = []

    def short():
        st_, hd_, out_ = curl(gw.invoke_url("one-fast"), shortpath, ["Content-Type: text/csv"])
        res.append((st_, hd_.get("x-amzn-errortype"), out_ == "1.0\n" * nshort))

    ts = [threading.Thread(target=short) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check_eq(res, [(200, None, True)] * 3, "three 6 MiB bodies of short rows at once: all answered")

    # Big bodies go to a decoder: the answers are the same, on both protocols.
    many = digits_rows()
    while len(many) < 4000:
        many = many + many
    many = many[:4000]
    bigcsv = csv_body(many)
    check(len(bigcsv) > 64 * 1024, "the big CSV body is over the inline-decode threshold")
    bigpath = write("big.csv", bigcsv)
    for h2 in (False, True):
        p = "h2: " if h2 else "h1: "
        st, _, out = curl(gw.invoke_url("demo"), bigpath, ["Content-Type: text/csv",
                                                           "Accept: text/csv"], h2)
        check_eq((st, out), (200, expected_body(demo, many, "text/csv")), p + "big CSV body decoded off the loop")
        jpath = write("big.json", json.dumps({"instances": many}))
        st, _, out = curl(gw.invoke_url("demo"), jpath, ["Content-Type: application/json"], h2)
        check_eq((st, out), (200, expected_body(demo, many)), p + "big JSON body decoded off the loop")
        # A decoder's error names the row, as inline.
        badpath = write("bad.csv", bigcsv + "1,2,3\n")
        st, hd, out = curl(gw.invoke_url("demo"), badpath, ["Content-Type: text/csv"], h2)
        check_eq((st, hd.get("x-amzn-errortype"), out),
                 (400, "ValidationError", '{"message":"Row 4001: expected 64 features, found 3."}'),
                 p + "big body's bad row: ValidationError naming it")
        # The deadline covers the decode and the queue.
        st, hd, out = curl(gw.invoke_url("slow"), bigpath, ["Content-Type: text/csv"], h2)
        check_eq((st, hd.get("x-amzn-errortype"), out), (424, "ModelError", model_timeout("slow")),
                 p + "big body past its deadline: ModelError")

    # Clients that leave while their big body is being decoded: nothing is
    # answered to them, their rows are never queued (no model work for
    # nobody), nothing breaks, the gateway keeps serving.
    hostile = ("[" + ",".join(["[]"] * ((6 * 1024 * 1024 - 2) // 3)) + "]").encode()
    huge = (bigcsv * (6 * 1024 * 1024 // len(bigcsv)))[:6 * 1024 * 1024]
    huge = huge[:huge.rindex("\n") + 1].encode()  # ~6 MiB of rows: a decode of tens of ms

    def demo_requests():
        m = run(["curl", "-s", gw.url + "/metrics"]).stdout.decode()
        return [l for l in m.splitlines() if l.startswith('infergate_requests_total{endpoint="demo"}')]

    before = demo_requests()
    for body, ctype in ((huge, "text/csv"), (hostile, "application/json")):
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: " + ctype.encode() + b"\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            s.close()
    time.sleep(2)
    check_eq(demo_requests(), before, "clients gone mid-decode: their rows were never queued")
    # A deadline that passes while a decoder reads the body (a 6 MiB body
    # takes tens of milliseconds, the deadline is 1 ms): the answer waits
    # for the decoder to give the body back, then is the timeout ModelError.
    hugepath = write("huge.csv", huge)
    for h2 in (False, True):
        st, hd, out = curl(gw.invoke_url("instant"), hugepath, ["Content-Type: text/csv"], h2)
        check_eq((st, hd.get("x-amzn-errortype"), out), (424, "ModelError", model_timeout("instant")),
                 "%s: deadline passed during the decode: ModelError" % ("h2" if h2 else "h1"))
    st, _, out = curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"])
    check_eq((st, out), (200, expected_body(demo, rows)), "serving after clients left mid-decode")
    st, _, out = curl(gw.invoke_url("demo"), bigpath, ["Content-Type: text/csv", "Accept: text/csv"])
    check_eq((st, out), (200, expected_body(demo, many, "text/csv")),
             "big bodies still decode after clients left mid-decode")
    # A hostile body answered to a client that stays.
    st, hd, out = curl(gw.invoke_url("demo"), hostile, ["Content-Type: application/json"])
    check_eq((st, hd.get("x-amzn-errortype")), (400, "ValidationError"),
             "hostile [[],[],...] body: ValidationError")
    check(gw.alive(), "alive")

# ---- the decoder queue is capped: ThrottlingException past 64 bodies ----------
# One decoder thread (workers = 1, at nice +10 under a loop busy reading)
# and 100 bodies of 6 MiB arriving at once: the first 64 wait for the
# decoder, the others are refused at once; budgets are out of the way.
huge_rows = csv_body(digits_rows())
huge_rows = (huge_rows * (6 * 1024 * 1024 // len(huge_rows) + 1))[:6 * 1024 * 1024]
huge_rows = huge_rows[:huge_rows.rindex("\n") + 1]
with Gateway({"demo": {"model": DEMO_MODEL, "accept": "text/csv"}}, workers="1",
             max_buffered_body_bytes=str(8 << 30)) as gw:
    raw = huge_rows.encode()
    req = (b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
           b"Content-Length: " + str(len(raw)).encode() + b"\r\n\r\n" + raw)
    socks = [socket.create_connection(("127.0.0.1", gw.port), timeout=120) for _ in range(100)]
    ts = [threading.Thread(target=s.sendall, args=(req,)) for s in socks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    answers = {}
    for s in socks:
        f = s.makefile("rb")
        status = f.readline().split()[1].decode()
        hdrs = {}
        while True:
            line = f.readline().strip()
            if not line:
                break
            k, _, v = line.decode().partition(":")
            hdrs[k.strip().lower()] = v.strip()
        out = f.read(int(hdrs["content-length"])).decode()
        key = (status, hdrs.get("x-amzn-errortype"), out if status != "200" else len(out))
        answers[key] = answers.get(key, 0) + 1
        s.close()
    thr = ("400", "ThrottlingException",
           '{"message":"Too many large request bodies are waiting to be decoded; retry later."}')
    ok = [k for k in answers if k[0] == "200"]
    check(set(answers) - set(ok) == {thr} and answers[thr] >= 1 and sum(answers[k] for k in ok) >= 64,
          "100 bodies for one decoder: at least 64 queued and answered, the rest "
          "ThrottlingException: %r" % answers)
    check_eq(len(set(ok)), 1, "the answered ones are the same size")
    st, _, out = curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"])
    check_eq((st, out), (200, expected_body(demo, rows, "text/csv")), "serving after the decoder queue was full")

# ---- decoded rows over the connection's budget: ThrottlingException -----------
# The smallest share allowed (1 MiB): a short-row body decodes into 8 bytes
# of row and 8 of feature per 2 bytes of body, and the decoder's charge is
# refused at the row where the rowset would outgrow the share.
FULL = re.compile(r'^\{"message":"Row ([0-9]+): the decoded features of this request do not fit '
                  r"in the gateway's memory budget; retry later or send fewer rows\.\"\}$")
with Gateway({"one": {"model": ONE, "accept": "text/csv"}}, max_body_bytes="900000",
             max_conn_buffered_bytes="1048576") as gw:
    for n, how in ((400000, "on a decoder"),):
        for h2 in (False, True):
            st, hd, out = curl(gw.invoke_url("one"), "1\n" * n, ["Content-Type: text/csv"], h2)
            m = FULL.match(out)
            check((st, hd.get("x-amzn-errortype")) == (400, "ThrottlingException") and m
                  and 1 < int(m.group(1)) <= n,
                  "%s, %s: decoded rows over the budget: ThrottlingException naming the row: %r"
                  % (how, "h2" if h2 else "h1", (st, hd.get("x-amzn-errortype"), out[:200])))
    # ... and what fits is served on the same gateway.
    st, _, out = curl(gw.invoke_url("one"), "1\n" * 1000, ["Content-Type: text/csv"])
    check_eq((st, out), (200, "1.0\n" * 1000), "a request that fits the budget is served")

# ---- the access log: one line per request, errors at warn ---------------------
def access_lines(gw):
    out = []
    for line in gw.stderr().splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            check(False, "stderr line is JSON: %r" % line[:200])
            continue
        if j.get("msg") == "access":
            out.append(j)
    return out


KEYS = ["ts", "level", "msg", "request_id", "endpoint", "proto", "status", "error_type", "rows",
        "bytes_in", "bytes_out", "batch_first", "batch_last", "queue_us", "upstream_us", "total_us"]
with Gateway({"demo": {"model": DEMO_MODEL},
              "tiny-queue": {"model": DEMO_MODEL, "max_queue_rows": "4", "max_delay_us": "2000000",
                             "max_batch_rows": "1000"},
              "slow": {"model": DEMO_MODEL, "max_delay_us": "3000000", "max_batch_rows": "1000000",
                       "request_timeout_ms": "200"}},
             access_log="on") as gw:
    st, hd, out = curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"])
    ok_id = hd.get("x-amzn-requestid")
    st2, hd2, out2 = curl(gw.invoke_url("demo"), "1,2\n", ["Content-Type: text/csv"], http2=True)
    st3, hd3, out3 = curl(gw.invoke_url("slow"), good, ["Content-Type: text/csv"])
    res = []

    def fill():
        res.append(curl(gw.invoke_url("tiny-queue"), csv_body(digits_rows(3)),
                        ["Content-Type: text/csv"]))

    ts = [threading.Thread(target=fill) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    bigst, bighd, bigout = curl(gw.invoke_url("demo"), bigpath, ["Content-Type: text/csv"])
    st4, hd4, _ = curl(gw.invoke_url("nope"), good, ["Content-Type: text/csv"])
    time.sleep(0.3)  # the log writer thread
    lines = access_lines(gw)
    by_id = {l["request_id"]: l for l in lines}
    for l in lines:
        check_eq(list(l.keys()), KEYS, "access line keys and order")
    ok = by_id.get(ok_id, {})
    check_eq({k: ok.get(k) for k in ("level", "endpoint", "proto", "status", "error_type", "rows",
                                     "bytes_in", "bytes_out")},
             {"level": "info", "endpoint": "demo", "proto": "HTTP/1.1", "status": 200,
              "error_type": None, "rows": 3, "bytes_in": len(good), "bytes_out": len(out)},
             "access line of a success")
    check(isinstance(ok.get("batch_first"), int) and ok.get("batch_first") == ok.get("batch_last")
          and ok.get("batch_first") >= 1, "success: its batch id %r" % ok.get("batch_first"))
    check(0 <= ok.get("queue_us", -1) <= ok.get("total_us", -1) and
          0 <= ok.get("upstream_us", -1) <= ok.get("total_us", -1),
          "success: queue %r and upstream %r within total %r"
          % (ok.get("queue_us"), ok.get("upstream_us"), ok.get("total_us")))
    bad = by_id.get(hd2.get("x-amzn-requestid"), {})
    check_eq({k: bad.get(k) for k in ("level", "endpoint", "proto", "status", "error_type",
                                      "bytes_in", "bytes_out", "batch_first")},
             {"level": "warn", "endpoint": "demo", "proto": "HTTP/2", "status": 400,
              "error_type": "ValidationError", "bytes_in": 4, "bytes_out": len(out2),
              "batch_first": None},
             "access line of a ValidationError, at warn")
    dl = by_id.get(hd3.get("x-amzn-requestid"), {})
    check_eq({k: dl.get(k) for k in ("level", "endpoint", "status", "error_type", "rows",
                                     "bytes_out", "batch_first")},
             {"level": "warn", "endpoint": "slow", "status": 424, "error_type": "ModelError",
              "rows": 3, "bytes_out": len(out3), "batch_first": None},
             "access line of a deadline expiry, at warn")
    check(dl.get("total_us", 0) >= 200000, "deadline: total_us %r >= 200 ms" % dl.get("total_us"))
    thr = [by_id.get(h.get("x-amzn-requestid"), {}) for s_, h, o in res if s_ == 400]
    check_eq([(t.get("level"), t.get("endpoint"), t.get("status"), t.get("error_type"))
              for t in thr], [("warn", "tiny-queue", 400, "ThrottlingException")],
             "access line of a ThrottlingException, at warn")
    bl = by_id.get(bighd.get("x-amzn-requestid"), {})
    check_eq((bl.get("status"), bl.get("rows"), bl.get("bytes_in"), bl.get("bytes_out")),
             (200, 4000, len(bigcsv), len(bigout)), "access line of a body decoded off the loop")
    un = by_id.get(hd4.get("x-amzn-requestid"), {})
    check_eq((un.get("endpoint"), un.get("status"), un.get("error_type")),
             ("nope", 400, "ValidationError"), "access line of an unknown endpoint names it")

# ---- SIGTERM: the drain's last line states the real counts --------------------
# (log_level info for the drain lines; the environment beats the file)
os.environ["INFERGATE_LOG_LEVEL"] = "info"
gw = Gateway({"demo": {"model": DEMO_MODEL, "max_delay_us": "5000000", "max_batch_rows": "100000"}},
             drain_timeout_ms="5000")
res = []


def post():
    res.append(curl(gw.invoke_url("demo"), good, ["Content-Type: text/csv"])[:3:2])


ts = [threading.Thread(target=post) for _ in range(5)]
for t in ts:
    t.start()
# all five queued behind the 5 s delay (curl takes its time to start on a
# busy machine: a fixed sleep sent the signal before some had connected)
deadline = time.time() + 10
while time.time() < deadline:
    with urllib.request.urlopen(gw.url + "/metrics", timeout=5) as r:
        m = re.search(r'^infergate_queue_rows\{endpoint="demo"\} (\d+)', r.read().decode(), re.M)
    if m and int(m.group(1)) >= 5 * len(rows):
        break
    time.sleep(0.02)
gw.proc.send_signal(signal.SIGTERM)
for t in ts:
    t.join()
code = gw.proc.wait(timeout=30)
check_eq((code, res), (0, [(200, expected_body(demo, rows))] * 5),
         "drain: five queued requests answered, exit 0")
drain_lines = [json.loads(l)["msg"] for l in gw.stderr().splitlines()
               if l.startswith("{") and "drain" in json.loads(l)["msg"]]
check_eq(drain_lines[-1:], ["drained: 5 requests answered during the drain, none cut off"],
         "drain: the last line counts the requests answered")

# A request whose body is still arriving counts as accepted: the drain
# waits for it, and when drain_timeout_ms cuts it off, says so (exit 1).
gw = Gateway({"demo": {"model": DEMO_MODEL}}, drain_timeout_ms="600")
s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
s.sendall(b"POST /endpoints/demo/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
          b"Content-Length: 1000\r\n\r\n1,2,3")
time.sleep(0.2)
t0 = time.time()
gw.proc.send_signal(signal.SIGTERM)
code = gw.proc.wait(timeout=30)
took = time.time() - t0
s.close()
drain_lines = [json.loads(l)["msg"] for l in gw.stderr().splitlines()
               if l.startswith("{") and "drain" in json.loads(l)["msg"]]
check_eq((code, drain_lines[-1:]),
         (1, ["drain timeout after 600 ms: 0 requests answered during the drain, 1 cut off "
              "(0 rows queued, 0 batches in flight)"]),
         "drain: a body still arriving is waited for, then counted as cut off")
check(0.5 < took < 5, "drain: waited drain_timeout_ms for it (%.2f s)" % took)
del os.environ["INFERGATE_LOG_LEVEL"]

finish()
