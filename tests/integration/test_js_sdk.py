"""The AWS SDK for JavaScript v3 (@aws-sdk/client-sagemaker-runtime, with
@smithy/node-http-handler's NodeHttpHandler for HTTP/1.1 and NodeHttp2Handler
for HTTP/2) against the real gateway: every request and response format with
exact predictions, the default Content-Type the SDK sends
(application/octet-stream, meaning none given), every error type with the
exception name, message and HTTP status the SDK surfaces, 200 concurrent
calls over one HTTP/2 session, and early refusal (413, and ThrottlingException
from the cap on request-body bytes, answered before the body has arrived)
that must not strand the connection.

tests/js/sdk_test.mjs makes the calls (installed by `make deps`: npm ci in
tests/js); this script writes its plan, computes every expected answer from
the model, and checks what it reports. Every call has a timeout and the node
run a deadline, so a hang is a failure, never a stuck CI."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from iglib import (DEMO_MODEL, ROOT, Gateway, check, check_eq, csv_body, digits_rows,
                   expected_body, finish, load_model, run)

JS_DIR = os.path.join(ROOT, "tests", "js")
SCRIPT = os.path.join(JS_DIR, "sdk_test.mjs")
NODE_DEADLINE_MS = 45000
CALL_TIMEOUT_MS = 10000
REFUSAL_TIMEOUT_MS = 5000  # "promptly": loopback moves 6 MiB in milliseconds
MAX_BODY = 6291456

demo = load_model(DEMO_MODEL)
allrows = digits_rows()
rows5 = allrows[:5]
tmp = tempfile.mkdtemp(prefix="ig-jssdk-")

FORMATS = ("text/csv", "application/json", "application/jsonlines")


def encode(rows, ctype):
    if ctype == "text/csv":
        return csv_body(rows)
    if ctype == "application/json":
        return json.dumps({"instances": [{"features": r} for r in rows]})
    return "".join(json.dumps({"features": r}) + "\n" for r in rows)


def err(name, status, message):
    return {"ok": False, "name": name, "status": status, "message": message}


MSG_413 = "Request body of %d bytes exceeds the maximum of %d bytes." % (MAX_BODY + 1, MAX_BODY)
TIMEOUT_ORIG = ("Your invocation timed out while waiting for a response from container AllTraffic. "
                "Review the latency metrics for each container in Amazon CloudWatch, resolve the "
                "issue, and try again.")
BAD_CTYPE = ("Content type image/png is not supported by endpoint demo. Supported content types: "
             "text/csv, application/json, application/jsonlines, "
             "application/x-recordio-protobuf, text/libsvm.")
BAD_ACCEPT = ("Accept type image/png is not supported by endpoint demo. Supported accept types: "
              "text/csv, application/json, application/jsonlines, "
              "application/x-recordio-protobuf.")

steps = []      # the plan node runs against the main gateway
cap_steps = []  # ... and against the one with a small cap on request-body bytes
expects = {}    # step name -> list of (what, expectation) per call


def step(name, handler, client, calls, concurrent=False, timeout_ms=CALL_TIMEOUT_MS, plan=None):
    """<calls>: [(what, call dict, expectation)]; an expectation is a dict of
    result fields that must match exactly."""
    (steps if plan is None else plan).append(
        {"name": name, "handler": handler, "client": client, "timeout_ms": timeout_ms,
         "concurrent": concurrent, "calls": [c for _, c, _ in calls]})
    expects[name] = [(what, want) for what, _, want in calls]


def ok(rows, accept, model=demo, variant="AllTraffic"):
    return {"ok": True, "status": 200, "contentType": accept, "variant": variant,
            "body": expected_body(model, rows, accept)}


def call(endpoint, body=None, ctype=None, accept=None, fill=None, delay_ms=None, **more):
    inp = {"EndpointName": endpoint}
    if ctype is not None:
        inp["ContentType"] = ctype
    if accept is not None:
        inp["Accept"] = accept
    inp.update(more)
    c = {"input": inp}
    if fill is not None:
        c["fill"] = fill
    else:
        c["body"] = body
    if delay_ms:
        c["delay_ms"] = delay_ms
    return c


for h in ("h1", "h2"):
    # Every request format against every response format.
    calls = []
    for ct in FORMATS:
        for acc in FORMATS:
            calls.append(("%s -> %s" % (ct, acc), call("demo", encode(rows5, ct), ct, acc),
                          ok(rows5, acc)))
    calls.append(("no Accept: the endpoint's default (application/json)",
                  call("demo", csv_body(rows5), "text/csv"), ok(rows5, "application/json")))
    # The SDK sends Content-Type: application/octet-stream when the caller
    # sets none: it means "none given", so the endpoint's default applies.
    calls.append(("no ContentType (SDK sends application/octet-stream): text/csv default",
                  call("demo", csv_body(rows5), accept="text/csv"), ok(rows5, "text/csv")))
    calls.append(("ContentType application/octet-stream: text/csv default",
                  call("demo", csv_body(rows5), "application/octet-stream", "text/csv"),
                  ok(rows5, "text/csv")))
    calls.append(("no ContentType, endpoint default application/json",
                  call("json-default", encode(rows5, "application/json"),
                       accept="application/jsonlines"),
                  ok(rows5, "application/jsonlines")))
    calls.append(("TargetVariant", call("blue", csv_body(rows5[:2]), "text/csv", "text/csv",
                                        TargetVariant="blue"),
                  ok(rows5[:2], "text/csv", variant="blue")))
    step(h + " formats", h, h, calls)

    # Every error type the gateway sends, as the SDK surfaces it.
    row = csv_body(rows5[:1])
    calls = [
        ("unknown endpoint", call("nope", row, "text/csv"),
         err("ValidationError", 400, "Endpoint nope of account 000000000000 not found.")),
        ("wrong feature count", call("demo", row + "1,2,3\n", "text/csv"),
         err("ValidationError", 400, "Row 2: expected 64 features, found 3.")),
        ("non-numeric field", call("demo", row + row + "abc," + ",".join(["1"] * 63) + "\n",
                                   "text/csv"),
         err("ValidationError", 400, "Row 3, column 1: 'abc' is not a number.")),
        ("invalid JSON", call("demo", '{"instances":[[1,2', "application/json"),
         err("ValidationError", 400, "Request body is not valid JSON: ']' expected near end of "
             "file at line 1 column 18.")),
        ("empty body", call("demo", "", "text/csv"),
         err("ValidationError", 400, "Request body is empty.")),
        ("unsupported content type", call("demo", row, "image/png"),
         err("ValidationError", 400, BAD_CTYPE)),
        ("unsupported accept", call("demo", row, "text/csv", "image/png"),
         err("ValidationError", 400, BAD_ACCEPT)),
        ("unknown variant", call("demo", row, "text/csv", TargetVariant="green"),
         err("ValidationError", 400, "Variant green not found for endpoint demo.")),
        ("more rows than the queue holds", call("tiny-queue", csv_body(allrows[:5]), "text/csv"),
         err("ValidationError", 400, "Request has more than 4 rows.")),
        ("body over 6 MiB", call("demo", ctype="text/csv", fill={"byte": "1", "n": MAX_BODY + 1}),
         err("ValidationError", 413, MSG_413)),
        ("deadline", call("slow", row, "text/csv"),
         dict(err("ModelError", 424, 'Received server error (0) from AllTraffic with message "%s".'
                  % TIMEOUT_ORIG),
              OriginalStatusCode=0, OriginalMessage=TIMEOUT_ORIG, fault="client",
              LogStreamArn="arn:aws:logs:us-east-1:000000000000:log-group:"
                           "/aws/sagemaker/Endpoints/slow")),
        ("still serving after the errors", call("demo", row, "text/csv"),
         ok(rows5[:1], "application/json")),
    ]
    step(h + " errors", h, h, calls)

    # A full queue: the first 3-row request waits for its batch (2 s), the
    # second does not fit beside it and is throttled at once.
    step(h + " throttling", h, h, [
        ("queued request", call("tiny-queue", csv_body(allrows[:3]), "text/csv", "text/csv"),
         ok(allrows[:3], "text/csv")),
        ("request over the queue limit",
         call("tiny-queue", csv_body(allrows[3:6]), "text/csv", "text/csv", delay_ms=300),
         dict(err("ThrottlingException", 400,
                  "Endpoint tiny-queue is over its queue limit of 4 rows; retry later."),
              fault="client")),
    ], concurrent=True)

# 200 concurrent calls over one HTTP/2 session (and 64 over HTTP/1.1
# keep-alive sockets), each with its own rows, formats mixed: every answer
# exact and its own.
for h, n in (("h2", 200), ("h1", 64)):
    calls = []
    for i in range(n):
        mine = allrows[(i * 7) % 1700:(i * 7) % 1700 + 1 + i % 9]
        ct, acc = FORMATS[i % 3], FORMATS[(i // 3) % 3]
        calls.append(("call %d" % i, call("demo", encode(mine, ct), ct, acc), ok(mine, acc)))
    step("%s %d concurrent" % (h, n), h, h, calls, concurrent=True)

# Early refusal (issue 13 point 15): the gateway answers 413 before the body
# has arrived. Two such calls in a row on one connection each get their 413
# promptly, and a normal call on the same client then works.
# What can go wrong on the client: the SDK settles a call on its response,
# while Node may still hold the unsent rest of that call's 6 MiB body; a
# Node http2 session holding more than maxSessionMemory (10 MB by default)
# refuses new streams itself with NGHTTP2_ENHANCE_YOUR_CALM. So a gateway
# that neither takes the rest of the body before the next call starts nor
# frees it (RST_STREAM(NO_ERROR) after the answer, or GOAWAY) fails the
# second call here, with the SDK's default settings, as users run it.
for h in ("h2", "h1"):
    big = call("demo", ctype="text/csv", fill={"byte": "1", "n": MAX_BODY + 1})
    step(h + " early refusal", h, h + "-refusal", [
        ("first over-6-MiB call: 413", big, err("ValidationError", 413, MSG_413)),
        ("second over-6-MiB call on the same connection: 413", big,
         err("ValidationError", 413, MSG_413)),
        ("a normal call on the same client", call("demo", csv_body(rows5), "text/csv", "text/csv"),
         ok(rows5, "text/csv")),
    ], timeout_ms=REFUSAL_TIMEOUT_MS)

# Whatever happened above, a fresh HTTP/2 client is served.
step("h2 fresh client at the end", "h2", "h2-last", [
    ("fresh client", call("demo", csv_body(rows5), "text/csv", "text/csv"),
     ok(rows5, "text/csv"))])

# Early refusal by ThrottlingException: on a gateway holding at most CAP
# bytes of request bodies, a stalled upload holds about HELD; a body of all
# the digits rows does not fit beside it and is refused before it has
# arrived. Twice in a row on one connection, then a small call is served.
CAP = 1048576
HELD = 700000  # the stalled upload declares this many bytes...
SENT = 699000  # ...and sends this many
all_csv = csv_body(allrows)
MSG_CAP = "The gateway is holding its limit of %d bytes for clients; retry later." % CAP
for h in ("h2", "h1"):
    over = call("demo", all_csv, "text/csv", "text/csv")
    step(h + " throttled before the body arrived", h, h + "-cap", [
        ("first body over the cap: ThrottlingException", over,
         dict(err("ThrottlingException", 400, MSG_CAP), fault="client")),
        ("second body over the cap on the same connection: ThrottlingException", over,
         dict(err("ThrottlingException", 400, MSG_CAP), fault="client")),
        ("a small call on the same client", call("demo", csv_body(rows5), "text/csv", "text/csv"),
         ok(rows5, "text/csv")),
    ], timeout_ms=REFUSAL_TIMEOUT_MS, plan=cap_steps)


def node_bin():
    return shutil.which("node") or "/usr/bin/node"


def run_node(url, plan_steps, deadline_ms):
    plan = os.path.join(tmp, "plan.json")
    with open(plan, "w") as f:
        json.dump({"endpoint": url, "deadline_ms": deadline_ms, "steps": plan_steps}, f)
    t0 = time.time()
    try:
        p = subprocess.run([node_bin(), SCRIPT, plan], cwd=JS_DIR, capture_output=True,
                           timeout=deadline_ms / 1000 + 15)
        out, errout, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, errout, rc = e.stdout or b"", e.stderr or b"", -9
    print("node ran %.1f s, exit %d" % (time.time() - t0, rc), flush=True)
    got = {}
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "step" in rec:
            got[rec["step"]] = rec["results"]
    check(rc == 0, "node exit status %d; stderr: %s"
          % (rc, errout.decode("utf-8", "replace")[-1500:]))
    return got


def check_step(name, results):
    want = expects[name]
    if not check(results is not None and len(results) == len(want),
                 "%s: node reported no results (timed out or crashed before it)" % name):
        return
    if name.endswith("concurrent"):
        # One check for the lot, with the first few mismatches shown.
        bad = []
        for (what, w), r in zip(want, results):
            sub = {k: r.get(k) for k in w}
            if sub != w:
                bad.append("%s: %s" % (what, json.dumps({k: r.get(k) for k in
                                                         ("ok", "status", "name", "message",
                                                          "timedOut", "ms")})))
        check(not bad, "%s: %d of %d calls wrong, e.g. %s" % (name, len(bad), len(want),
                                                              "; ".join(bad[:3])))
        return
    for (what, w), r in zip(want, results):
        sub = {k: r.get(k) for k in w}
        if sub != w:
            # Show what the SDK said, whatever was expected.
            for k in ("name", "message", "status"):
                sub.setdefault(k, r.get(k))
            if r.get("timedOut"):
                sub["timed out after ms"] = r.get("ms")
        check_eq(sub, w, "%s: %s" % (name, what))


if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-sagemaker-runtime")):
    check(False, "the JS SDK is not installed in tests/js/node_modules: run `make deps`")
    finish()

with Gateway({"demo": {"model": DEMO_MODEL},
              "json-default": {"model": DEMO_MODEL, "content_type": "application/json"},
              "blue": {"model": DEMO_MODEL, "variant": "blue"},
              "tiny-queue": {"model": DEMO_MODEL, "max_queue_rows": "4",
                             "max_delay_us": "2000000", "max_batch_rows": "1000"},
              "slow": {"model": DEMO_MODEL, "max_delay_us": "2000000",
                       "request_timeout_ms": "200"}}) as gw:
    got = run_node(gw.url, steps, NODE_DEADLINE_MS)
    for s in steps:
        check_step(s["name"], got.get(s["name"]))
    # The request ids the SDK read are SageMaker-shaped (uuid).
    ids = [r.get("requestId") for r in got.get("h2 formats", []) if r.get("ok")]
    check(ids and all(isinstance(i, str) and len(i) == 36 for i in ids),
          "h2: $metadata.requestId is a uuid on every answer")
    refusal = got.get("h2 early refusal") or []
    if refusal:
        print("h2 early refusal: call times (ms): %s" % [r.get("ms") for r in refusal], flush=True)
    check(gw.alive(), "gateway alive after the JS SDK run")


def metric(gw, name):
    m = run(["curl", "-sS", "-m", "5", gw.url + "/metrics"]).stdout.decode()
    found = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % re.escape(name), m, re.M)
    return int(found.group(1)) if found else None


with Gateway({"demo": {"model": DEMO_MODEL}}, max_buffered_body_bytes=str(CAP),
             max_body_bytes=str(CAP)) as gw:
    check(len(all_csv) > CAP - HELD and len(all_csv) <= CAP,
          "all rows (%d bytes) fit under the cap only alone" % len(all_csv))
    upload = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    upload.sendall(("POST /endpoints/demo/invocations HTTP/1.1\r\nHost: t\r\n"
                    "Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n" % HELD).encode())
    upload.sendall(b"0" * SENT)
    deadline = time.monotonic() + 3  # until the gateway holds those bytes
    while time.monotonic() < deadline:
        held = metric(gw, "infergate_buffered_body_bytes")
        if held is not None and held >= SENT:
            break
        time.sleep(0.05)
    got = run_node(gw.url, cap_steps, 20000)
    for s in cap_steps:
        check_step(s["name"], got.get(s["name"]))
    upload.close()
    check(gw.alive(), "capped gateway alive after the JS SDK run")

finish()
