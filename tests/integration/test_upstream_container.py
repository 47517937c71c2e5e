"""The container upstream (model = http://HOST:PORT) against the real
bin/fake-container, driven end to end through the real bin/infergate:

1. every format and Accept type answered exactly as the same model served
   in-process (file://) side by side, over HTTP/1.1 and h2c to the
   container; rows of many concurrent requests packed into few calls;
2. 429s and 503s injected at a fixed seed: retried, every answer exact;
   a container that always fails: the final error after exactly
   retry_max + 1 calls; the retry budget caps the retries;
3. one poisoned row among 1000 concurrent one-row requests: only its
   request fails (424 ModelError with the container's status and words),
   in at most 2*log2(batch) + 1 extra calls;
4. the circuit breaker: open after breaker_failures failed calls
   (ServiceUnavailable at once, no call, /readyz 503), closed by one probe
   once the container is back;
5. wrong prediction counts: InternalFailure naming the counts, never a
   shifted prediction;
6. a container killed and restarted on its port: ServiceUnavailable or an
   exact answer, never a hang, /readyz 503 then 200;
7. the per-call timeout: SageMaker's timeout ModelError in ~300 ms;
8. h2load (20,000 requests) and 2,000 concurrent h2 requests checked one by
   one, over HTTP/1.1 and h2c to the container;
9. clients resetting while their rows are in flight upstream: the gateway
   keeps serving and holds no byte afterwards (run it under ASan too).

Needs bin/fake-container (FAKE_CONTAINER_BIN; by default beside
INFERGATE_BIN), h2load, curl and python3-h2."""

import http.client
import json
import math
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import (DEMO_MODEL, FAKE_BIN, FakeContainer, Gateway, check,  # noqa: E402
                   check_eq, csv_body, curl, digits_rows, expected_body, finish, fmt, load_model,
                   run)

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402

FAKE = FAKE_BIN
tmp = tempfile.mkdtemp(prefix="ig-upc-")
MODEL = load_model(DEMO_MODEL)
ROWS = digits_rows()
CSV, JSONL, JSON = "text/csv", "application/jsonlines", "application/json"
VARIANT = "AllTraffic"
T0 = time.time()
fakes = []  # every container started, stopped at the end whatever happens


class Fake(FakeContainer):
    """A fake container (iglib.FakeContainer) stopped at the end whatever happens."""

    def __init__(self, *args, port=0):
        super().__init__(*args, port=port, logdir=tmp)
        fakes.append(self)


# ---- helpers -------------------------------------------------------------------


def metrics(gw):
    with urllib.request.urlopen(gw.url + "/metrics", timeout=30) as r:
        return r.read().decode()


def metric(gw, name, text=None):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text or metrics(gw), re.M)
    return float(m.group(1)) if m else None


def up_metric(gw, name, ep, extra="", text=None):
    return metric(gw, '%s{endpoint="%s"%s}' % (name, ep, extra), text)


def retries(gw, ep, text=None):
    text = text or metrics(gw)
    return {r: up_metric(gw, "infergate_upstream_retries_total", ep, ',reason="%s"' % r, text)
            for r in ("throttled", "server", "connection", "timeout")}


def readyz(gw):
    try:
        with urllib.request.urlopen(gw.url + "/readyz", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def held(gw):
    return metric(gw, "infergate_buffered_bytes")


def wait_for(cond, timeout=10, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


def err(text):
    """The gateway's error body: {"message": ...}, compact."""
    return json.dumps({"message": text}, separators=(",", ":"))


def model_error(ep, status, orig_msg):
    """SageMaker's 424 ModelError body, as the gateway writes it."""
    client = 400 <= status < 500
    return json.dumps({
        "ErrorCode": "CLIENT_ERROR_FROM_MODEL" if client else "SERVER_ERROR_FROM_MODEL",
        "LogStreamArn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/"
                        + ep,
        "Message": 'Received %s error (%d) from %s with message "%s".'
                   % ("client" if client else "server", status, VARIANT, orig_msg),
        "OriginalMessage": orig_msg,
        "OriginalStatusCode": status}, separators=(",", ":"))


def fake_msg(text):
    """The fake container's error body (json.dumps' default separators)."""
    return '{"message": "%s"}' % text


TIMEOUT_MSG = ("Your invocation timed out while waiting for a response from container %s. "
               "Review the latency metrics for each container in Amazon CloudWatch, resolve "
               "the issue, and try again." % VARIANT)


def csv_row(row):
    return ",".join(fmt(v) for v in row) + "\n"


def post(gw, ep, body, ctype=CSV, accept=None, h2=False):
    hdrs = ["Content-Type: " + ctype]
    if accept:
        hdrs.append("Accept: " + accept)
    return curl(gw.invoke_url(ep), body, hdrs, http2=h2)


def h1_post(port, ep, body, ctype=CSV, accept=CSV, timeout=30):
    """One HTTP/1.1 POST with http.client: (status, error type, body text)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/endpoints/%s/invocations" % ep, body=body,
                  headers={"Content-Type": ctype, "Accept": accept})
        r = c.getresponse()
        return r.status, r.getheader("x-amzn-ErrorType"), r.read().decode()
    finally:
        c.close()


def h2_conn_run(port, reqs, out, base, timeout, reset_after=None, close_after=None):
    """One h2c connection: every request of <reqs> ((path, ctype, accept,
    body)) opened at once, bodies sent as flow control allows; answers into
    out[base + i] as (status, error type, body). <reset_after> s after the
    bodies are sent whole: RST_STREAM on every stream; <close_after> s:
    close the connection then."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    c.initiate_connection()
    c.increment_flow_control_window(1 << 30)
    sids, left = {}, {}
    for i, (path, ctype, accept, body) in enumerate(reqs):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, [(":method", "POST"), (":path", path), (":scheme", "http"),
                             (":authority", "127.0.0.1"), ("content-type", ctype),
                             ("accept", accept), ("content-length", str(len(body)))])
        sids[sid] = i
        left[sid] = body
    status, etype, data, done = {}, {}, {}, set()
    sent_all = None
    end = time.time() + timeout

    def feed():
        for sid in list(left):
            body = left[sid]
            while body:
                n = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, len(body))
                if n <= 0:
                    break
                c.send_data(sid, body[:n], end_stream=n == len(body))
                body = body[n:]
            if body:
                left[sid] = body
            else:
                del left[sid]

    try:
        feed()
        s.sendall(c.data_to_send())
        while len(done) < len(sids) and time.time() < end:
            if not left and sent_all is None:
                sent_all = time.time()
            if sent_all is not None and close_after is not None and \
                    time.time() >= sent_all + close_after:
                break
            if sent_all is not None and reset_after is not None and \
                    time.time() >= sent_all + reset_after:
                for sid in sids:
                    if sid not in done:
                        c.reset_stream(sid)
                s.sendall(c.data_to_send())
                time.sleep(0.05)
                break
            s.settimeout(0.01 if (close_after is not None or reset_after is not None)
                         else max(0.01, end - time.time()))
            try:
                b = s.recv(1 << 20)
            except socket.timeout:
                continue
            if not b:
                break
            for ev in c.receive_data(b):
                if isinstance(ev, h2.events.ResponseReceived):
                    h = dict(ev.headers)
                    status[ev.stream_id] = int(h[b":status"])
                    etype[ev.stream_id] = (h.get(b"x-amzn-errortype") or b"").decode() or None
                elif isinstance(ev, h2.events.DataReceived):
                    data[ev.stream_id] = data.get(ev.stream_id, b"") + ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done.add(ev.stream_id)
                    left.pop(ev.stream_id, None)
            feed()
            s.sendall(c.data_to_send())
    except (OSError, h2.exceptions.ProtocolError):
        pass
    s.close()
    for sid, i in sids.items():
        out[base + i] = (status.get(sid), etype.get(sid), data.get(sid, b"").decode())


def h2_many(port, reqs, per_conn=100, timeout=60):
    """<reqs> ((path, ctype, accept, body)) all at once over h2c, <per_conn>
    streams a connection: the answers in order."""
    out = [None] * len(reqs)
    threads = []
    for base in range(0, len(reqs), per_conn):
        t = threading.Thread(target=h2_conn_run,
                             args=(port, reqs[base:base + per_conn], out, base, timeout))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return [o if o is not None else (None, None, "") for o in out]


def one_row_reqs(ep, rows, accept=CSV):
    return [("/endpoints/%s/invocations" % ep, CSV, accept, csv_row(r).encode()) for r in rows]


def check_all_exact(answers, rows, what, accept=CSV):
    """Every answer 200 with its row's exact prediction; report the first
    few that are not."""
    bad = [(i, a) for i, (a, r) in enumerate(zip(answers, rows))
           if a[0] != 200 or a[2] != expected_body(MODEL, [r], accept)]
    for i, a in bad[:3]:
        print("  request %d: got %r want %r" % (i, a, expected_body(MODEL, [rows[i]], accept)))
    return check_eq(len(bad), 0, what + ": every answer 200 with its row's exact prediction")


def section(name):
    print("-- %s (%.1f s)" % (name, time.time() - T0), flush=True)


# ---- 1. formats, side by side with the in-process model; packing ---------------


def jsonl_body(rows, obj=False):
    return "".join((json.dumps({"features": r}) if obj else json.dumps(r)) + "\n" for r in rows)


def test_formats():
    section("1. formats against the local model, HTTP/1.1 and h2c to the container")
    f = Fake()
    local = {"model": DEMO_MODEL}
    c1 = {"model": f.url}
    c2 = {"model": f.url, "upstream_http2": "on"}
    with Gateway({"local": local, "c1": c1, "c2": c2}) as gw:
        check(wait_for(lambda: readyz(gw)[0] == 200), "/readyz 200 once the container answers /ping")
        one, many = ROWS[:1], ROWS[10:47]
        bodies = [
            ("csv 1", CSV, csv_body(one), one),
            ("csv 37", CSV, csv_body(many), many),
            ("jsonl 1", JSONL, jsonl_body(one), one),
            ("jsonl 37 arrays", JSONL, jsonl_body(many), many),
            ("jsonl 37 objects", JSONL, jsonl_body(many, obj=True), many),
            ("json instances features 1", JSON,
             json.dumps({"instances": [{"features": r} for r in one]}), one),
            ("json instances features 37", JSON,
             json.dumps({"instances": [{"features": r} for r in many]}), many),
            ("json instances arrays 37", JSON, json.dumps({"instances": many}), many),
            ("json features 1", JSON, json.dumps({"features": one[0]}), one),
            ("json bare array 37", JSON, json.dumps(many), many),
        ]
        for name, ctype, body, rows in bodies:
            for accept in (JSON, CSV, JSONL):
                want = expected_body(MODEL, rows, accept)
                lst, _, lout = post(gw, "local", body, ctype, accept)
                check_eq((lst, lout), (200, want), "local %s accept %s" % (name, accept))
                for ep, h2c in (("c1", False), ("c2", True)):
                    st, hd, out = post(gw, ep, body, ctype, accept, h2=h2c)
                    check_eq((st, hd.get("content-type"), out), (lst, accept, lout),
                             "%s (%s to the container) %s accept %s: as the local model" %
                             (ep, "h2c" if ep == "c2" else "HTTP/1.1", name, accept))
        # no Accept: the endpoint's default (application/json)
        st, _, out = post(gw, "c1", csv_body(many), CSV)
        check_eq((st, out), (200, expected_body(MODEL, many, JSON)), "c1 without Accept: JSON")

        # many concurrent one-row requests: packed into few calls
        for ep in ("c1", "c2"):
            before = f.calls()
            rows = ROWS[:400]
            answers = h2_many(gw.port, one_row_reqs(ep, rows))
            check_all_exact(answers, rows, "%s: 400 concurrent one-row requests" % ep)
            calls = f.calls() - before
            print("  %s: 400 one-row requests in %d calls to the container" % (ep, calls))
            check(calls < 400 / 4, "%s: rows of 400 concurrent requests packed into few calls "
                  "(%d calls < 100)" % (ep, calls))
        text = metrics(gw)
        # the calls share one h2c connection; /ping has its own (HTTP/1.1)
        check(up_metric(gw, "infergate_upstream_connections", "c2", text=text) == 2.0,
              "c2 (h2c): one connection for 400 requests' calls, and the probes' one; got %s"
              % up_metric(gw, "infergate_upstream_connections", "c2", text=text))
        check(up_metric(gw, "infergate_upstream_calls_total", "c1", text=text) +
              up_metric(gw, "infergate_upstream_calls_total", "c2", text=text) == f.calls(),
              "the gateway's calls_total of both endpoints == the container's /stats calls")
    f.stop()


# ---- 2. retries and backoff, the final error, the retry budget -------------------


def test_retries():
    section("2. retries: injected 429 and 503, the final error, the budget")
    f = Fake("--fail-429", "0.15", "--fail-503", "0.15", "--seed", "7")
    # batches of 4 rows: about 75 jobs, so about 100 calls to draw faults on
    ep = {"model": f.url, "retry_max": "10", "retry_budget_pct": "100", "retry_base_ms": "1",
          "retry_max_ms": "10", "breaker_failures": "1000", "max_batch_rows": "4"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        rows = ROWS[:300]
        answers = []
        for k in range(0, 300, 50):  # waves: several batches, so several calls
            answers += h2_many(gw.port, one_row_reqs("c", rows[k:k + 50]))
        check_all_exact(answers, rows, "30% of calls 429 or 503")
        r = retries(gw, "c")
        st = f.stats()
        print("  retries %s; container %s" % (r, st["calls_by_status"]))
        check(st["calls"] >= 75, "faults drawn on many calls (%d)" % st["calls"])
        check(r["throttled"] > 0 and r["server"] > 0,
              "retries by reason: throttled (429) and server (503) both > 0: %s" % r)
        check_eq(r["throttled"] + r["server"], st["faults"]["429"] + st["faults"]["503"],
                 "every injected 429 and 503 was retried")
        check_eq(up_metric(gw, "infergate_upstream_calls_total", "c"), float(st["calls"]),
                 "calls_total == the container's calls")
    f.stop()

    for code, opt in ((503, "--fail-503"), (429, "--fail-429")):
        f = Fake(opt, "1.0")
        ep = {"model": f.url, "retry_max": "3", "retry_budget_pct": "100", "retry_base_ms": "1",
              "retry_max_ms": "5", "breaker_failures": "1000"}
        with Gateway({"c": ep}) as gw:
            wait_for(lambda: readyz(gw)[0] == 200)
            before = f.calls()
            st, hd, out = post(gw, "c", csv_row(ROWS[0]), CSV, CSV)
            calls = f.calls() - before
            body = f.stats()
            if code == 503:  # the container's own status and words, as SageMaker relays them
                want = (424, "ModelError",
                        model_error("c", 503, fake_msg("injected fault: 503")))
            else:  # still throttled after the retries: the client's SDK retries this one
                want = (400, "ThrottlingException",
                        err("Row 1: The model backend (container %s) is throttling calls (429 "
                            "ThrottlingException) and did not take this one after 3 retries; "
                            "retry later." % f.url))
            check_eq((st, hd.get("x-amzn-errortype"), out), want,
                     "%s 1.0: the final answer after retry_max retries" % opt)
            check_eq(calls, 4, "--%s 1.0, retry_max 3: exactly retry_max + 1 calls for one "
                     "request (container /stats)" % opt)
            check_eq(body["calls_by_status"], {str(code): 4}, "container /stats: %d x4" % code)
        f.stop()

    section("2b. the retry budget")
    f = Fake("--fail-503", "1.0")
    ep = {"model": f.url, "retry_max": "3", "retry_budget_pct": "5", "retry_base_ms": "1",
          "retry_max_ms": "2", "breaker_failures": "1000", "max_delay_us": "200"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        n_fail = 0
        lock = threading.Lock()

        def client(k):
            nonlocal n_fail
            for i in range(25):
                st, et, _ = h1_post(gw.port, "c", csv_row(ROWS[k * 25 + i]))
                if (st, et) == (424, "ModelError"):
                    with lock:
                        n_fail += 1
        ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check_eq(n_fail, 200, "200 requests to a container that always fails: every one a "
                 "ModelError")
        text = metrics(gw)
        r = sum(retries(gw, "c", text).values())
        calls = up_metric(gw, "infergate_upstream_calls_total", "c", text=text)
        denied = up_metric(gw, "infergate_upstream_retries_denied_total", "c", text=text)
        print("  retry budget 5%%: %d calls, %d retries, %d denied" % (calls, r, denied))
        check(r <= 0.05 * calls + 10, "retries %d <= 5%% of calls (%d) + 10" % (r, calls))
        check(denied > 0, "the budget refused retries (retries_denied_total %s)" % denied)
        check_eq(float(f.calls()), calls, "container calls == the gateway's calls_total")
    f.stop()


# ---- 3. bisection: one poisoned row among 1000 concurrent requests ----------------


def hist_max_le(text, name, ep):
    """The smallest bucket bound holding every observation of a histogram."""
    count = metric(None, '%s_count{endpoint="%s"}' % (name, ep), text)
    for m in re.finditer(r'^%s_bucket\{endpoint="%s",le="([^"]+)"\} (\S+)$'
                         % (re.escape(name), ep), text, re.M):
        if float(m.group(2)) == count:
            return float(m.group(1))
    return None


def test_bisection():
    section("3. bisection: one poisoned row among 1000 concurrent one-row requests")
    f = Fake("--poison", "666")
    ep = {"model": f.url, "max_batch_rows": "256", "max_delay_us": "5000"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        rows = [list(r) for r in ROWS[:1000]]
        victim = 517
        rows[victim][13] = 666.0
        answers = h2_many(gw.port, one_row_reqs("c", rows, JSON))
        want_orig = fake_msg("poison value 666 in row 1")
        check_eq(answers[victim], (424, "ModelError", model_error("c", 400, want_orig)),
                 "the request holding the poisoned row: 424 ModelError with the container's "
                 "400 and its words")
        others = [a for i, a in enumerate(answers) if i != victim]
        orows = [r for i, r in enumerate(rows) if i != victim]
        check_all_exact(others, orows, "the 999 other requests", JSON)
        text = metrics(gw)
        splits = up_metric(gw, "infergate_upstream_splits_total", "c", text=text)
        batches = sum(metric(gw, 'infergate_batches_total{endpoint="c",reason="%s"}' % r, text)
                      for r in ("rows", "bytes", "delay", "drain"))
        calls = f.calls()
        biggest = hist_max_le(text, "infergate_batch_rows", "c")
        extra = calls - batches
        print("  %d batches (largest <= %d rows), %d calls, %d splits, %d extra calls"
              % (batches, biggest, calls, splits, extra))
        check_eq(extra, 2 * splits, "calls == batches + 2 x splits (no retry, nothing else)")
        check(1 <= splits and extra <= 2 * math.log2(biggest) + 1,
              "extra calls %d <= 2*log2(%d)+1 for the one batch that held the poison"
              % (extra, biggest))
        check_eq(f.stats()["faults"]["poison"], int(splits) + 1,
                 "container: one refused call per level, down to the row alone")
    f.stop()


# ---- 4. the circuit breaker ------------------------------------------------------------


def test_breaker():
    section("4. breaker: open after breaker_failures, ServiceUnavailable at once, probe closes")
    f = Fake("--fail-503", "1.0")
    port = f.port
    ep = {"model": f.url, "retry_max": "0", "breaker_failures": "3", "breaker_open_ms": "1500",
          "max_delay_us": "200"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        for i in range(3):
            st, hd, out = post(gw, "c", csv_row(ROWS[i]), CSV, CSV)
            check_eq((st, hd.get("x-amzn-errortype"), out),
                     (424, "ModelError", model_error("c", 503, fake_msg("injected fault: 503"))),
                     "call %d of a container answering 503 (down): its ModelError" % (i + 1))
        check_eq(up_metric(gw, "infergate_upstream_breaker_state", "c"), 1.0,
                 "after breaker_failures (3) failed calls: breaker_state 1 (open)")
        rz = readyz(gw)
        label = "container http://127.0.0.1:%d" % port
        check_eq(rz, (503, json.dumps({"status": "not ready", "reason":
                                       "%s: circuit breaker open after 3 failed calls in a row"
                                       % label}, separators=(",", ":"))),
                 "/readyz 503 naming the breaker")
        calls = f.calls()
        t = time.time()
        st, hd, out = post(gw, "c", csv_row(ROWS[5]), CSV, CSV)
        dt = time.time() - t
        check_eq((st, hd.get("x-amzn-errortype"), out),
                 (503, "ServiceUnavailable",
                  err("The model backend (%s) is failing: the circuit breaker is open after 3 "
                      "failed calls in a row; retry later." % label)),
                 "while open: ServiceUnavailable")
        check(dt < 0.5, "while open: answered at once (%.3f s)" % dt)
        check_eq(f.calls(), calls, "while open: no call reached the container")
        check_eq(up_metric(gw, "infergate_upstream_breaker_opens_total", "c"), 1.0,
                 "breaker_opens_total 1")
        # the container comes back healthy on the same port, slow enough
        # (300 ms a call) that the half-open state can be seen
        f.stop()
        time.sleep(1.6)
        g = Fake("--latency-us", "300000", port=port)
        check_eq(g.port, port, "the container restarted on the same port")
        check(wait_for(lambda: readyz(gw)[0] == 200, timeout=5),
              "/readyz 200 again once breaker_open_ms passed and /ping answers")
        check_eq(up_metric(gw, "infergate_upstream_breaker_state", "c"), 2.0,
                 "breaker_open_ms passed, no request since: breaker_state 2 (half-open), "
                 "not still 1")
        probe = {}
        t = threading.Thread(target=lambda: probe.update(
            a=post(gw, "c", csv_row(ROWS[6]), CSV, CSV)))
        t.start()
        check(wait_for(lambda: "a probe call is out" in readyz(gw)[1], timeout=2, step=0.005),
              "while the probe is out: /readyz says so")
        check_eq(up_metric(gw, "infergate_upstream_breaker_state", "c"), 2.0,
                 "while the probe is out: breaker_state 2 (half-open)")
        st, hd, out = post(gw, "c", csv_row(ROWS[8]), CSV, CSV)
        check_eq((st, hd.get("x-amzn-errortype")), (503, "ServiceUnavailable"),
                 "half-open: a second request is not a second probe: ServiceUnavailable")
        t.join()
        st, hd, out = probe["a"]
        check_eq((st, out), (200, expected_body(MODEL, [ROWS[6]], CSV)),
                 "after breaker_open_ms: the probe request answered exactly")
        check_eq(g.calls(), 1, "one probe call closed the breaker (container /stats)")
        check_eq(up_metric(gw, "infergate_upstream_breaker_state", "c"), 0.0,
                 "breaker_state 0 (closed) after the probe")
        rows = ROWS[100:150]
        check_all_exact(h2_many(gw.port, one_row_reqs("c", rows)), rows,
                        "closed again: 50 concurrent requests")
    g.stop()


# ---- 5. wrong prediction counts ------------------------------------------------------


def test_wrong_count():
    section("5. wrong prediction counts")
    f = Fake("--wrong-count", "1.0")
    with Gateway({"c": {"model": f.url, "max_delay_us": "200"}}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        for accept in (CSV, JSON, JSONL):
            st, hd, out = post(gw, "c", csv_body(ROWS[:3]), CSV, accept)
            check_eq((st, hd.get("x-amzn-errortype"), out),
                     (500, "InternalFailure",
                      err("Row 1: The model returned 2 predictions for 3 rows; these rows were "
                          "not answered.")),
                     "3 rows answered with 2 predictions (accept %s): InternalFailure with "
                     "the counts" % accept)
        log = gw.stderr()
        check("The model returned 2 predictions for 3 rows" in log,
              "the wrong count is logged")
    f.stop()

    f = Fake("--wrong-count", "0.5", "--seed", "3")
    with Gateway({"c": {"model": f.url, "max_delay_us": "1000"}}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        reqs, want = [], []
        for i in range(600):
            n = 1 + i % 4
            rows = ROWS[i:i + n]
            reqs.append(("/endpoints/c/invocations", CSV, CSV, csv_body(rows).encode()))
            want.append(expected_body(MODEL, rows, CSV))
        answers = []
        for k in range(0, 600, 100):
            answers += h2_many(gw.port, reqs[k:k + 100])
        ok = sum(1 for a, w in zip(answers, want) if a[0] == 200 and a[2] == w)
        wrong200 = sum(1 for a, w in zip(answers, want) if a[0] == 200 and a[2] != w)
        pat = re.compile(r'^\{"message":"Row 1: The model returned (\d+) predictions for (\d+) '
                         r'rows; these rows were not answered\."\}$')
        failed = 0
        for a in answers:
            m = pat.match(a[2]) if a[0] == 500 and a[1] == "InternalFailure" else None
            if m and int(m.group(1)) + 1 == int(m.group(2)):
                failed += 1
        print("  --wrong-count 0.5: %d exact 200s, %d InternalFailure" % (ok, failed))
        check_eq(wrong200, 0, "--wrong-count 0.5: no 200 answer holds a shifted or wrong "
                 "prediction")
        check_eq(ok + failed, 600, "every answer is exact or InternalFailure with n-1 for n")
        check(ok > 0 and failed > 0, "both kinds seen")
    f.stop()


# ---- 6. a container that dies and comes back --------------------------------------------

def test_outage():
    section("6. the container SIGKILLed and restarted on its port")
    f = Fake()
    port = f.port
    label = "container http://127.0.0.1:%d" % port
    ok_re = re.compile(r'^\{"message":"(Row 1: )?The model backend \(%s\) (cannot be reached: [^"]+\.|is '
                       r'failing: the circuit breaker is open after \d+ failed calls in a row; '
                       r'retry later\.)"\}$' % re.escape(label))
    ep = {"model": f.url, "retry_max": "3", "retry_base_ms": "20", "retry_max_ms": "100",
          "upstream_timeout_ms": "1000", "request_timeout_ms": "4000", "max_delay_us": "500",
          "breaker_failures": "5", "breaker_open_ms": "500"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        stop = threading.Event()
        results = []
        lock = threading.Lock()

        def client(k):
            i = 0
            while not stop.is_set():
                row = ROWS[(k * 97 + i) % len(ROWS)]
                t = time.time()
                try:
                    st, et, out = h1_post(gw.port, "c", csv_row(row), timeout=10)
                except OSError as e:
                    st, et, out = None, None, repr(e)
                with lock:
                    results.append((t, time.time() - t, st, et, out, row))
                i += 1
                time.sleep(0.01)
        ts = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        time.sleep(0.5)
        f.stop(signal.SIGKILL)
        down = wait_for(lambda: readyz(gw)[0] == 503, timeout=5)
        rz_down = readyz(gw)
        check(down, "/readyz 503 while the container is gone")
        time.sleep(1.0)
        g = Fake(port=port)
        t_back = time.time()
        up = wait_for(lambda: readyz(gw)[0] == 200, timeout=5)
        check(up, "/readyz 200 again once the container is back (%s)" % (readyz(gw),))
        time.sleep(1.5)
        stop.set()
        for t in ts:
            t.join()
        print("  /readyz while down: %s" % (rz_down,))
        bad, n503, n200, slow = [], 0, 0, 0
        for t, dt, st, et, out, row in results:
            if st == 200 and out == expected_body(MODEL, [row], CSV):
                n200 += 1
            elif st == 503 and et == "ServiceUnavailable" and ok_re.match(out):
                n503 += 1
            else:
                bad.append((st, et, out[:200]))
            if dt > 4.5:
                slow += 1
        for b in bad[:3]:
            print("  unexpected answer: %r" % (b,))
        print("  %d requests: %d exact 200, %d ServiceUnavailable" % (len(results), n200, n503))
        check_eq(bad, [], "every answer through the outage: exact 200 or ServiceUnavailable")
        check_eq(slow, 0, "no request took longer than its deadline (4 s)")
        check(n503 > 0, "requests during the outage got ServiceUnavailable")
        # (the breaker may have opened just before: breaker_open_ms 500, then a probe)
        after = [r for r in results if r[0] > t_back + 1.0]
        check(len(after) > 0 and all(r[2] == 200 for r in after),
              "every request sent 1 s after the container is back: 200 (%d)" % len(after))
    g.stop()


# ---- 7. the per-call timeout ------------------------------------------------------------


def test_timeout():
    section("7. the per-call timeout")
    f = Fake("--timeout", "1.0")
    ep = {"model": f.url, "upstream_timeout_ms": "300", "retry_max": "0", "max_delay_us": "200"}
    with Gateway({"c": ep}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        for h2c in (False, True):
            t = time.time()
            st, hd, out = post(gw, "c", csv_row(ROWS[0]), CSV, CSV, h2=h2c)
            dt = time.time() - t
            check_eq((st, hd.get("x-amzn-errortype"), out),
                     (424, "ModelError", model_error("c", 0, TIMEOUT_MSG)),
                     "a container that never answers (%s client): SageMaker's timeout "
                     "ModelError, OriginalStatusCode 0" % ("h2" if h2c else "HTTP/1.1"))
            check(0.28 <= dt < 0.8, "answered after upstream_timeout_ms (300 ms): %.3f s" % dt)
        check_eq(retries(gw, "c")["timeout"], 0.0, "retry_max 0: no retry")
    f.stop()


# ---- 8. h2load, then 2000 concurrent requests checked one by one --------------------------


def test_h2load():
    section("8. h2load and 2000 concurrent h2 requests, HTTP/1.1 and h2c to the container")
    f = Fake()
    ep1 = {"model": f.url}
    ep2 = {"model": f.url, "upstream_http2": "on"}
    row = ROWS[7]
    body = os.path.join(tmp, "row.csv")
    with open(body, "w") as fh:
        fh.write(csv_row(row))
    with Gateway({"c1": ep1, "c2": ep2}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        for ep in ("c1", "c2"):
            p = run(["h2load", "-n", "20000", "-c", "16", "-m", "16", "-d", body,
                     "-H", "content-type: text/csv", "-H", "accept: text/csv",
                     gw.invoke_url(ep)], timeout=120)
            out = p.stdout.decode()
            m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored", out)
            sc = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
            rate = re.search(r"finished in [^,]+, ([\d.]+) req/s", out)
            print("  h2load %s: %s req/s" % (ep, rate.group(1) if rate else "?"))
            check_eq((m.groups() if m else None, sc.groups() if sc else None),
                     (("20000", "20000", "20000", "20000", "0", "0"), ("20000", "0", "0", "0")),
                     "h2load -n 20000 -c 16 -m 16 against %s: all 2xx" % ep)
            rows = [ROWS[(i * 7) % len(ROWS)] for i in range(2000)]
            answers = h2_many(gw.port, one_row_reqs(ep, rows), per_conn=100)
            check_all_exact(answers, rows, "%s: 2000 concurrent h2 requests" % ep)
    f.stop()


# ---- 9. clients resetting while their rows are in flight upstream -------------------------


def test_resets():
    section("9. client resets while their rows are in flight upstream")
    f = Fake("--latency-us", "200000")
    with Gateway({"c": {"model": f.url, "max_delay_us": "1000"},
                  "c2": {"model": f.url, "upstream_http2": "on", "max_delay_us": "1000"}}) as gw:
        wait_for(lambda: readyz(gw)[0] == 200)
        idle = held(gw)
        for ep in ("c", "c2"):
            # HTTP/1.1: send a whole request and close at once, 40 times
            raw = csv_row(ROWS[3]).encode()
            req = (b"POST /endpoints/%s/invocations HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % (ep.encode(),
                                                                               len(raw)) + raw)
            socks = []
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", gw.port))
                s.sendall(req)
                socks.append(s)
            for s in socks:
                s.close()
            # HTTP/2: HEADERS + DATA, RST_STREAM once the rows are upstream; and a
            # connection closed with its streams in flight
            reqs = one_row_reqs(ep, ROWS[200:260])
            ts = [threading.Thread(target=h2_conn_run,
                                   args=(gw.port, reqs, [None] * 60, 0, 10),
                                   kwargs={"reset_after": 0.05}),
                  threading.Thread(target=h2_conn_run,
                                   args=(gw.port, reqs, [None] * 60, 0, 10),
                                   kwargs={"close_after": 0.1})]
            for t in ts:
                t.start()
            # an honest client at the same time: exact answers
            rows = ROWS[300:340]
            answers = h2_many(gw.port, one_row_reqs(ep, rows))
            for t in ts:
                t.join()
            check_all_exact(answers, rows, "%s: an honest client beside the resets" % ep)
        time.sleep(0.5)  # the calls of the reset clients finish upstream
        st, _, out = post(gw, "c", csv_row(ROWS[9]), CSV, CSV, h2=True)
        check_eq((st, out), (200, expected_body(MODEL, [ROWS[9]], CSV)),
                 "after the resets: the gateway still answers")
        deadline = time.time() + 10
        h = held(gw)
        while h != idle and time.time() < deadline:
            time.sleep(0.1)
            h = held(gw)
        check_eq(h, idle, "infergate_buffered_bytes back to its idle value")
        for ep in ("c", "c2"):
            check(wait_for(lambda: metric(gw, 'infergate_inflight_batches{endpoint="%s"}' % ep)
                           == 0.0, timeout=5), "%s: no batch left in flight" % ep)
        check(gw.alive(), "the gateway is alive")
        gone = f.stats()["gone"]
        print("  container: %d calls, %d given up by the gateway" % (f.calls(), gone))
    f.stop()


def main():
    if not os.path.exists(FAKE):
        print("FAIL: %s not found (make all builds it)" % FAKE)
        check(False, "fake-container present")
        finish()
    try:
        for t in (test_formats, test_retries, test_bisection, test_breaker, test_wrong_count,
                  test_outage, test_timeout, test_h2load, test_resets):
            try:
                t()
            except Exception as e:  # a broken section fails, the others still run
                import traceback
                traceback.print_exc()
                check(False, "%s raised %r" % (t.__name__, e))
    finally:
        for f in fakes:
            if f.proc.poll() is None:
                f.proc.kill()
                f.proc.wait()
    print("-- done in %.1f s" % (time.time() - T0))
    finish()


if __name__ == "__main__":
    main()
